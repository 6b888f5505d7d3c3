import os

import numpy as np
import pytest


@pytest.fixture
def rng(request):
    # fresh data per test, reproducible per test id
    seed = abs(hash(request.node.nodeid)) % (2**32)
    return np.random.default_rng(seed)


def pytest_report_header(config):
    return f"cudrift tests: CUDRIFT_BACKEND={os.environ.get('CUDRIFT_BACKEND', 'auto')}"
