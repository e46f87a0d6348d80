"""Exceptions kbench raises for bad input: each names the file, line or value and what to do."""
from __future__ import annotations


class KBenchError(Exception):
    """Base class of every error kbench raises on purpose."""


class KGFormatError(KBenchError, ValueError):
    """A triple file has a malformed line; the message names the file and line number."""

    def __init__(self, message: str, path: str | None = None, line_number: int | None = None):
        super().__init__(message)
        self.path = path
        self.line_number = line_number


class UnknownNameError(KBenchError, KeyError):
    """A name (KG, dataset, model size, profile) is not one kbench knows."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class InputError(KBenchError, ValueError):
    """A sentence or argument cannot be used as given (empty, too long, wrong type)."""


class DataError(KBenchError, OSError):
    """External data is missing, cannot be fetched, or fails its checksum."""


class ChecksumError(DataError):
    """A file's sha256 differs from the one its manifest entry declares."""


class BaselineError(KBenchError):
    """A baseline file is missing or malformed."""
