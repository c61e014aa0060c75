"""Configuration of the on-bus hardware and agent, and the settings loader every process uses."""

from firmware_config.agent import AgentConfig, BrokerConfig, GpsPortConfig
from firmware_config.loader import ConfigError, load_settings

__all__ = ["AgentConfig", "BrokerConfig", "ConfigError", "GpsPortConfig", "load_settings"]
