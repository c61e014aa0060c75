"""Device simulators on virtual serial ports, driven along the itinerary."""
