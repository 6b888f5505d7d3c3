"""Integrations of cudrift with serving and monitoring systems.

:mod:`cudrift.integrations.triton`
    A drift monitor that runs inside NVIDIA Triton Inference Server (a
    python-backend model) and the writer of a model repository that puts it
    next to a served model in an ensemble.
"""
