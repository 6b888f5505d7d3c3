import os
import zlib

import numpy as np
import pytest


@pytest.fixture
def rng(request):
    # fresh data per test, reproducible per test id
    # crc32, not hash(): str hashes change per process (PYTHONHASHSEED)
    seed = zlib.crc32(request.node.nodeid.encode())
    return np.random.default_rng(seed)


def pytest_addoption(parser):
    parser.addoption("--shard", default=None, metavar="K/N",
                     help="run the K-th of N interleaved shares of the collected tests (0 <= K < N): "
                          "test_gpu_emulated.py runs gpu_emulated_cases.py as N processes side by side")


@pytest.hookimpl(trylast=True)  # after any plugin that reorders: every shard must cut the same order
def pytest_collection_modifyitems(config, items):
    shard = config.getoption("--shard")
    if not shard:
        return
    k, n = (int(v) for v in shard.split("/"))
    if not 0 <= k < n:
        raise pytest.UsageError(f"--shard {shard}: expected K/N with 0 <= K < N")
    config.hook.pytest_deselected(items=[it for i, it in enumerate(items) if i % n != k])
    items[:] = items[k::n]


def pytest_report_header(config):
    return f"cudrift tests: CUDRIFT_BACKEND={os.environ.get('CUDRIFT_BACKEND', 'auto')}"


# Importing it installs a fake CuPy: test_gpu_emulated.py runs it in a process of its own, naming it on the
# command line (which collects a file even when it is listed here).
collect_ignore = ["gpu_emulated_cases.py"]


@pytest.fixture
def via_arrow(monkeypatch):
    """Names of the cuDF columns read on the host (through Arrow), as they are read."""
    from cudrift.backends import _gpu_source

    names = []
    read = _gpu_source._column_from_arrow

    def recorded(name, arr):
        names.append(name)
        return read(name, arr)

    monkeypatch.setattr(_gpu_source, "_column_from_arrow", recorded)
    return names
