"""``benchmarks/kernel_sass.py``: the main-loop finder and the instruction classes it reports.

The tool itself needs NVVM, ptxas and cuobjdump (NVIDIA wheels, see its
docstring), which CI does not install; its SASS parsing is checked here on a
hand-written listing in ``cuobjdump -sass`` format. Its bank model needs
none of them and runs here on the kernels' own layout functions.
"""

import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")  # the bank model calls the kernels' device functions

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import kernel_sass  # noqa: E402

# Two loops: a longer one without global loads (a reduction, 0x0010-0x0130)
# and the main loop (0x0140-0x01c0, with a global load, a predicated branch
# and spills).
SASS = """
        /*0000*/                   MOV R1, c[0x0][0x28] ;                 /* 0x00000a0000017a02 */
        /*0010*/                   IMAD.MOV.U32 R2, RZ, RZ, RZ ;          /* 0x000000ffff027224 */
""" + "".join(f"        /*{a:04x}*/                   NOP ;  /* 0x0000000000007918 */\n"
             for a in range(0x20, 0x120, 0x10)) + """
        /*0120*/                   ISETP.NE.AND P0, PT, R2, RZ, PT ;      /* 0x000000ff0200720c */
        /*0130*/               @P0 BRA 0x10 ;                             /* 0x0000000000000947 */
        /*0140*/                   LD.E R4, desc[UR4][R6.64] ;            /* 0x0000000406047980 */
        /*0150*/                   F2F.F64.F32 R8, R4 ;                   /* 0x0000000400087310 */
        /*0160*/                   DADD R10, R10, R8 ;                    /* 0x000000000a0a7229 */
        /*0170*/                   FSETP.GEU.AND P1, PT, |R4|, +INF , PT ; /* 0x7f8000000400780b */
        /*0180*/                   LDS R12, [R14] ;                       /* 0x000000000e0c7984 */
        /*0190*/                   ATOMS.POPC.INC.32 RZ, [R16] ;          /* 0x00000000ff10738c */
        /*01a0*/                   STL.64 [R1], R10 ;                     /* 0x0000000a01007387 */
        /*01b0*/                   LDL.64 R10, [R1] ;                     /* 0x00000000010a7983 */
        /*01c0*/              @!P1 BRA 0x140 ;                             /* 0x0000000000008947 */
        /*01d0*/                   EXIT ;                                 /* 0x000000000000794d */
"""


def test_main_loop_is_the_loop_that_loads_the_window():
    ops = kernel_sass.main_loop(SASS)
    assert sum(ops.values()) == 9 and ops["LD.E"] == 1
    assert kernel_sass.summarize(ops) == {
        "instructions": 9, "fp64": 1, "fp32": 1, "conversions": 1, "shared loads": 1, "shared atomics": 1,
        "spill loads/stores": 2, "branches": 1,
    }


def test_without_ptxas_it_says_how_to_get_it():
    env = {"PATH": "/nonexistent", "CUDA_HOME": ""}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "kernel_sass.py")], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=120)
    assert proc.returncode == 2 and "ptxas not found" in proc.stdout


@pytest.mark.parametrize("kernel, cols", [("rows", 32), ("rows", 8), ("column", 1)])
def test_bank_model_interleaved_slabs_never_conflict(kernel, cols):
    """The interleaved layouts: one pass per warp access at 100 bins. The row kernel over gpu_check's 32 columns
    and over 8 (four rows per warp, each on its own copy of the slab's data), the column kernel (32 rows of its
    column per warp, each lane on its own copy); the layouts with one copy need several (random bins meet in a
    bank)."""
    pytest.importorskip("numba_cuda", reason="numba-cuda is not installed (pip install numba-cuda)")
    passes = kernel_sass.bank_passes(cols=cols, rows=256, kernel=kernel)
    assert passes["interleaved"] == {"pitch": 32, "cell table": 1.0, "edges": 1.0, "atomic": 1.0}
    old = passes["one copy" if kernel == "column" else "column after column"]
    assert old.pop("pitch") == 1 and min(old.values()) > (2.0 if kernel == "column" else 2.5), passes
