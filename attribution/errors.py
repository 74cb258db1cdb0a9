"""Errors raised for bad configuration, and the value checks that raise them.

Every message names the key and what is allowed: ``invalid <key>=<value>: <allowed>``. Catch
:class:`ConfigError` for any of them; the subclasses say which kind of mistake it was.
"""
from __future__ import annotations

import math
from collections.abc import Iterable


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key and what is allowed."""


class UnknownNameError(ConfigError, KeyError):
    """A name that no registry entry has (a method, metric, dataset ...); the message lists the choices."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class UnknownOptionError(ConfigError, TypeError):
    """A keyword option that the entry does not take; the message lists the ones it does."""


def check(condition: bool, key: str, value, allowed: str) -> None:
    """Raise ``ConfigError("invalid key=value: allowed")`` unless ``condition``."""
    if not condition:
        raise ConfigError(f"invalid {key}={value!r}: {allowed}")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_int(key: str, value, minimum: int | None = None, *, allow_none: bool = False,
              allowed: str | None = None) -> int | None:
    """An integer (not a bool) >= ``minimum``; None passes where ``allow_none``. Returns the value."""
    if value is None and allow_none:
        return None
    if allowed is None:
        allowed = "an integer" if minimum is None else (
            "a positive integer" if minimum == 1 else f"an integer >= {minimum}")
        allowed += " or None" if allow_none else ""
    check(_is_int(value) and (minimum is None or value >= minimum), key, value, allowed)
    return value


def check_real(key: str, value, low: float | None = None, high: float | None = None, *, low_open: bool = False,
               high_open: bool = False, finite: bool = True, allow_none: bool = False,
               allowed: str | None = None) -> float | None:
    """A real number (int or float, not a bool, finite unless ``finite=False``) within the given bounds.

    ``low``/``high`` are inclusive unless ``low_open``/``high_open``. Returns the value as a float."""
    if value is None and allow_none:
        return None
    if allowed is None:
        allowed = _range_text(low, high, low_open, high_open, finite) + (" or None" if allow_none else "")
    ok = _is_real(value) and not math.isnan(value) and (not finite or math.isfinite(value))
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    check(ok, key, value, allowed)
    return float(value)


def _range_text(low, high, low_open, high_open, finite) -> str:
    noun = "a finite number" if finite and high is None and low is not None else "a number"
    if low is not None and high is not None:
        return f"a number in the range {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{noun} {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{noun} {'<' if high_open else '<='} {high:g}"
    return "a finite number" if finite else "a number"


def check_choice(key: str, value, choices: Iterable, *, allowed: str | None = None):
    """One of ``choices``; the message lists them. Returns the value."""
    choices = list(choices)
    check(isinstance(value, (str, int, float, bool, type(None))) and value in choices, key, value,
          allowed or f"choose one of {choices}")
    return value


def check_bool(key: str, value) -> bool:
    """True or False (not 0/1, not a string)."""
    check(isinstance(value, bool), key, value, "true or false")
    return value
