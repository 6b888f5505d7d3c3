"""cudrift: drift computation for ML monitoring, on NVIDIA GPUs and on any CPU.

profile → merge → compare: :func:`profile` turns a window into mergeable
per-column sketches, profiles merge with ``+``, and :class:`DriftDetector`
compares a current window with a reference into a :class:`DriftReport`.
"""

from cudrift.detect.detector import DriftDetector
from cudrift.detect.report import DriftReport, FeatureDrift, Finding
from cudrift.errors import (
    BackendUnavailableError,
    CudriftError,
    EmptyInputError,
    FormatError,
    IncompatibleSketchError,
    SchemaError,
    UnreadableColumnsError,
)
from cudrift.sketches.config import ProfileConfig, Schema
from cudrift.sketches.profile import Profile, profile
from cudrift.stats._result import TestResult

__version__ = "0.1.0"

__all__ = [
    "profile",
    "Profile",
    "ProfileConfig",
    "Schema",
    "DriftDetector",
    "DriftReport",
    "FeatureDrift",
    "Finding",
    "TestResult",
    "CudriftError",
    "SchemaError",
    "EmptyInputError",
    "BackendUnavailableError",
    "FormatError",
    "IncompatibleSketchError",
    "UnreadableColumnsError",
    "__version__",
]
