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

The names below are imported from their submodules on first use (PEP 562),
so that the command line, which needs :class:`MonitorSettings` only, does
not import the monitor and the repository writer on every command.
"""

import importlib

# Each public name and the submodule that defines it.
_SUBMODULE = {
    "TritonPythonModel": "model",
    "BadRequest": "model",
    "write_repository": "repository",
    "read_model_config": "repository",
    "Repository": "repository",
    "ENSEMBLE_OUTPUT": "repository",
    "MonitorSettings": "_config",
    "FeatureLayout": "_layout",
    "InputGroup": "_layout",
    "WindowState": "_state",
    "ClosedWindow": "_state",
    "BAD_REQUEST_REASONS": "_metrics",
    "METRIC_NAMES": "_metrics",
}
__all__ = list(_SUBMODULE)


def __getattr__(name: str):
    if name not in _SUBMODULE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_SUBMODULE[name]}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
