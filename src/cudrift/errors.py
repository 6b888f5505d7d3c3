"""Exceptions raised by cudrift.

Every error subclasses a builtin so callers can catch what they already know
(``ValueError``, ``ImportError``) and messages name the offending column,
dtype, shape or value.
"""

from __future__ import annotations

__all__ = [
    "CudriftError",
    "SchemaError",
    "EmptyInputError",
    "BackendUnavailableError",
    "FormatError",
    "IncompatibleSketchError",
    "UnreadableColumnsError",
]


class CudriftError(Exception):
    """Base class of every cudrift error."""


class SchemaError(CudriftError, ValueError):
    """Columns, dtypes or kinds do not fit what was expected."""


class UnreadableColumnsError(SchemaError):
    """No column of the input could be read; ``errors`` maps each column to why."""

    def __init__(self, message: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.errors = dict(errors or {})


class EmptyInputError(CudriftError, ValueError):
    """A window, column or sample holds no usable values."""


class BackendUnavailableError(CudriftError, ImportError):
    """The requested compute backend cannot be used on this machine."""


class FormatError(CudriftError, ValueError):
    """Serialized bytes are truncated, corrupted, foreign or of an unknown version."""


class IncompatibleSketchError(CudriftError, ValueError):
    """Two sketches or profiles built with different settings were merged or compared."""
