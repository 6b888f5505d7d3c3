"""Every kernel compiles to PTX for a real GPU, for the argument types the Python layer passes.

The simulator runs the kernels as Python and cannot catch what only the
CUDA target's type inference rejects; compiling to PTX needs NVVM (the CUDA
toolkit, or the ``nvidia-cuda-nvcc-cu12`` and ``nvidia-cuda-nvrtc-cu12``
wheels) but no GPU and no driver. The compile runs in a subprocess with the
simulator off; the test is skipped where NVVM cannot be found.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("numba_cuda", reason="numba-cuda is not installed (pip install numba-cuda)")

# Exit status of the subprocess when NVVM / NVRTC cannot be loaded.
_NO_TOOLKIT = 77

_SCRIPT = textwrap.dedent(
    """
    import sys
    from numba import cuda
    from numba.cuda import types as T

    def trivial(out):
        out[0] = 1.0

    try:
        cuda.compile_ptx(trivial, (T.Array(T.float64, 1, "C"),), cc=(8, 0))
    except Exception as exc:  # any failure to load NVVM / NVRTC
        print(f"{type(exc).__name__}: {exc}")
        sys.exit(%(no_toolkit)d)

    from cudrift.kernels import categorical, mmd, profile, quantiles, rank

    f64, f32, i64, i32, i8, u8, b1 = T.float64, T.float32, T.int64, T.int32, T.int8, T.uint8, T.boolean
    def a1(t):
        return T.Array(t, 1, "C")
    def a2(t, layout="C"):
        return T.Array(t, 2, layout)

    sys.path.insert(0, %(benchmarks)r)
    from kernel_sass import profile_args  # the launch signatures kernel_sass.py analyses

    jobs = {
        "profile float32 C": (profile.profile_kernel, profile_args(f32, "C", f32)),
        "profile float32 C, float64 edges": (profile.profile_kernel, profile_args(f32, "C", f64)),
        "profile float64 F": (profile.profile_kernel, profile_args(f64, "F", f64)),
        "profile int64 A": (profile.profile_kernel, profile_args(i64, "A", f64)),
        "profile int8 C": (profile.profile_kernel, profile_args(i8, "C", f64)),
        "profile bool C": (profile.profile_kernel, profile_args(b1, "C", f64)),
        "profile rows float32 slab": (profile.profile_rows_kernel, profile_args(f32, "A", f32)),
        "profile rows float32 slab, float64 edges": (profile.profile_rows_kernel, profile_args(f32, "A", f64)),
        "profile rows int64 C": (profile.profile_rows_kernel, profile_args(i64, "C", f64)),
        "profile general float64 F": (profile.profile_general_kernel, profile_args(f64, "F", f64, general=True)),
        "profile rows general float32 slab": (profile.profile_rows_general_kernel,
                                              profile_args(f32, "A", f32, general=True)),
        "rank many f32 cur": (rank.rank_kernel, (a1(f64), a1(i64), a1(f32), a1(i64), i64, a1(i64), a1(i64), i64,
                                                 T.Array(f64, 3, "C"), T.Array(i64, 3, "C"))),
        "categorical int32": (categorical.categorical_kernel, (a2(i32, "A"), a1(i64), i64, a2(i64), a2(i64))),
        "categorical int8": (categorical.categorical_kernel, (a2(i8, "F"), a1(i64), i64, a2(i64), a2(i64))),
        "quantile points": (quantiles.quantile_points_kernel, (a1(f32), i64, a1(f64), a1(i64), a1(i64))),
        "quantile points many": (quantiles.quantile_points_many_kernel,
                                 (a1(f32), a1(i64), a1(i64), i64, a1(f64), a1(i64), a1(i64))),
        "run ends": (quantiles.run_ends_kernel, (a1(f64), a1(i64), a1(f64), a1(i64))),
        "rank splits": (rank.rank_splits_kernel, (a1(f64), a1(i64), a1(f32), a1(i64), i64, a1(i64), a1(i64))),
        "mmd tiles": (mmd.mmd_tiles_kernel, (a2(f64), a2(f64), f64, a1(f64), a1(f64))),
        "mmd finalize": (mmd.mmd_finalize_kernel, (a2(u8), a1(f64), a1(f64), i64, a1(f64))),
    }
    failed = []
    for name, (kernel, sig) in jobs.items():
        try:
            ptx, _ = cuda.compile_ptx(kernel.py_func, sig, cc=(8, 0))
        except Exception as exc:
            failed.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        if "shfl" in ptx:
            failed.append(f"{name}: uses warp shuffles, which the simulator cannot run")
    print("\\n".join(failed))
    sys.exit(1 if failed else 0)
    """
    % {"no_toolkit": _NO_TOOLKIT, "benchmarks": str(Path(__file__).resolve().parents[1] / "benchmarks")}
)


def test_kernels_compile_to_ptx():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0")
    proc = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode == _NO_TOOLKIT:
        pytest.skip(f"NVVM is not available to compile PTX ({proc.stdout.strip()[:200]})")
    assert proc.returncode == 0, proc.stdout + proc.stderr
