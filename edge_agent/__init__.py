"""The agent that runs on the bus: serial readers, batching, MQTT publishing."""
