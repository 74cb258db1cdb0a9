"""Errors raised for bad configuration, always naming the key and the allowed values."""


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key and what is allowed."""


def check(condition: bool, key: str, value, allowed: str) -> None:
    if not condition:
        raise ConfigError(f"invalid {key}={value!r}: {allowed}")
