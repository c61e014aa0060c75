"""One router per audience of the API."""
