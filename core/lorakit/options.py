"""Validators for task options: recipes and flags hand over text, and a bad
value must be refused with the option's name."""

from __future__ import annotations

from typing import Any

from lorakit.errors import ConfigError


def whole_number(name: str, value: Any, low: int, high: int) -> int:
    """``value`` as an int in [low, high]; "4" is accepted, True is not."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"options.{name} must be a whole number from {low} to {high}, got {value!r}")
    return value


def text(name: str, value: Any) -> str:
    """``value`` as text with whitespace collapsed; None is empty."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ConfigError(f"options.{name} must be text, got {value!r}")
    return " ".join(value.split())


def number(name: str, value: Any, low: float, high: float) -> float:
    """``value`` as a float in [low, high]; "0.5" is accepted, True is not."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"options.{name} must be a number from {low:g} to {high:g}, got {value!r}") from None
    if isinstance(value, bool) or not low <= result <= high:
        raise ConfigError(f"options.{name} must be a number from {low:g} to {high:g}, got {value!r}")
    return result
