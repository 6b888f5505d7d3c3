"""Drift monitoring inside NVIDIA Triton Inference Server.

- :class:`TritonPythonModel`: the monitor, a python-backend model. Each
  request's rows go into the open window; a window closes after N rows or
  S seconds (tumbling, or sliding over K windows), is compared with the
  reference profile, and the result is published as Triton custom metrics
  on Triton's metrics port. The window is checkpointed atomically.
- :func:`write_repository` (``cudrift triton repo``): a ready model
  repository with the monitor and, for a served model, an ensemble that
  feeds the model's inputs and outputs into the monitor.
- :mod:`cudrift.integrations.triton.local_server`: run the ``tritonserver``
  of the ``nvidia-pytriton`` wheel on loopback (tests, benchmarks, trials).
"""

from cudrift.integrations.triton._config import MonitorSettings
from cudrift.integrations.triton._layout import FeatureLayout, InputGroup
from cudrift.integrations.triton._metrics import BAD_REQUEST_REASONS, METRIC_NAMES
from cudrift.integrations.triton._state import ClosedWindow, WindowState
from cudrift.integrations.triton.model import BadRequest, TritonPythonModel
from cudrift.integrations.triton.repository import ENSEMBLE_OUTPUT, Repository, read_model_config, write_repository

__all__ = [
    "TritonPythonModel",
    "BadRequest",
    "write_repository",
    "read_model_config",
    "Repository",
    "ENSEMBLE_OUTPUT",
    "MonitorSettings",
    "FeatureLayout",
    "InputGroup",
    "WindowState",
    "ClosedWindow",
    "BAD_REQUEST_REASONS",
    "METRIC_NAMES",
]
