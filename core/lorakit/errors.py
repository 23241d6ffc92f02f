"""Errors that library code raises and the CLI turns into one clear message.

Every message says what went wrong and what to do about it; the CLI prints it
without a traceback and exits non-zero.
"""

from pathlib import Path
from typing import Iterable


class LorakitError(Exception):
    """Base class of every error meant for the user."""

    exit_code = 1


class ConfigError(LorakitError):
    """A recipe, a flag or a config value is wrong."""

    exit_code = 2


class DataError(LorakitError):
    """The user's data cannot be read or fails validation."""


class BaseModelError(LorakitError):
    """The base model named by --base cannot be loaded."""


class AdapterError(LorakitError):
    """An adapter folder is missing, broken, or does not fit the base."""


class PluginError(LorakitError):
    """A plugin or task cannot be found or does not meet the contract."""


class OutputError(LorakitError):
    """The output folder cannot be written as asked."""


class TrainingError(LorakitError):
    """Training stopped on a condition it cannot recover from (e.g. a NaN loss)."""


class DiskFull(OutputError):
    """A write found no room; ``path`` was left as it was before."""

    def __init__(self, reason: str, path: Path):
        self.reason, self.path = reason, Path(path)
        super().__init__(f"{reason} while writing {path}: nothing was written there (the partial files are removed). "
                         "Free space (or raise the limit) and run the same command again")


def did_you_mean(word: str, choices: Iterable[str], prefix: str = "") -> str:
    """`` (did you mean --batch_size?)`` for the choice closest to a misspelt
    ``word`` (``prefix`` written before it), or "" when none is close."""
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""
