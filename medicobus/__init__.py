"""The ``medicobus`` command: composition of the parts into processes."""
