"""Registers, spills and the instruction mix of the profile kernels' main loop, without a GPU.

The fused profile pass is bound by the instructions it spends per value (see
RESULTS.md), and those can be counted offline: numba-cuda compiles a kernel
to PTX for sm_90 with NVVM alone, ``ptxas`` turns it into a cubin and reports
registers and spills, and ``cuobjdump -sass`` (which calls ``nvdisasm``)
lists the machine code. The main loop is found as the longest backward
branch that contains the window's loads. Run from the repository root::

    python3 benchmarks/kernel_sass.py                   # row and column kernel, float32 and float64 binning
    python3 benchmarks/kernel_sass.py --caps 0,64,80    # under register caps (0: none)
    python3 benchmarks/kernel_sass.py --only "rows, float32" --caps 0   # one kernel and binning
    python3 benchmarks/kernel_sass.py --banks           # shared-memory bank model of the histogram step

The tools come from NVIDIA's wheels, no toolkit install needed (versions
used on 2026-11-26)::

    pip download --no-deps -d wheels nvidia-cuda-nvcc-cu12==12.9.86 nvidia-cuda-nvrtc-cu12==12.9.86 \\
        nvidia-cuda-cuobjdump nvidia-cuda-nvdisasm
    (cd wheels && for w in *.whl; do unzip -qo "$w" -d tools; done)
    CUDA_HOME=wheels/tools/nvidia/cuda_nvcc LD_LIBRARY_PATH=wheels/tools/nvidia/cuda_nvrtc/lib \\
        PATH=$PATH:wheels/tools/nvidia/cu13/bin python3 benchmarks/kernel_sass.py

``ptxas`` 12.9 reads PTX up to version 8.8, so the PTX's ``.version`` line
is lowered to that (numba-cuda's NVVM writes a newer one; the code is the
same). Static counts are not timings: a loop's instructions are all its
paths, and only a card says which are taken how often.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

_INSTR = re.compile(r"\s+/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;")


def profile_args(x, x_layout: str, cmp, general: bool = False) -> tuple:
    """Numba argument types of a profile kernel launch: window dtype ``x`` in layout ``x_layout``, comparison
    edges of dtype ``cmp``; of the fast kernels (:func:`profile_rows_kernel`, :func:`profile_kernel`), or with
    ``general`` of the general ones (a null mask, ``has_mask`` and ``private`` besides).

    Shared with ``tests/test_kernels_ptx.py``, which compiles the same launches.
    """
    from numba.cuda import types as T

    f64, i64, u8, b1 = T.float64, T.int64, T.uint8, T.boolean
    window = (T.Array(x, 2, x_layout),) + ((T.Array(b1, 2, x_layout), b1) if general else ())
    edges = (T.Array(f64, 2, "C"), T.Array(cmp, 2, "C"), T.Array(i64, 1, "C"), T.Array(u8, 1, "C"))
    plan = (b1, i64, i64) if general else (i64, i64)
    return window + edges + plan + (T.Array(i64, 2, "C"), T.Array(i64, 2, "C"), T.Array(f64, 1, "C"),
                                    T.Array(f64, 1, "C"), T.Array(i64, 2, "C"), T.Array(f64, 2, "C"),
                                    T.Array(f64, 2, "C"))


def signatures():
    """``{name: (kernel, argument types)}``: the profile kernels as the backend launches them on float32 windows."""
    from numba.cuda import types as T

    from cudrift.kernels import profile

    f64, f32 = T.float64, T.float32
    return {
        "rows, float32 binning": (profile.profile_rows_kernel, profile_args(f32, "A", f32)),
        "rows C, float32 binning": (profile.profile_rows_kernel, profile_args(f32, "C", f32)),
        "rows, float64 binning": (profile.profile_rows_kernel, profile_args(f32, "A", f64)),
        "column, float32 binning": (profile.profile_kernel, profile_args(f32, "F", f32)),
        "column, float64 binning": (profile.profile_kernel, profile_args(f32, "F", f64)),
    }


def _opcode(text: str) -> str:
    return re.sub(r"^@!?U?P[T0-9]+\s+", "", text).split()[0]


def main_loop(sass: str) -> collections.Counter:
    """Opcode counts of the longest loop (backward branch) that loads from global memory."""
    ins = [(int(a, 16), t) for a, t in _INSTR.findall(sass)]
    loops = []
    for addr, text in ins:
        if _opcode(text).startswith("BRA"):
            target = re.search(r"0x([0-9a-f]+)", text)
            if target and int(target.group(1), 16) < addr:
                loops.append((int(target.group(1), 16), addr))
    for start, end in sorted(loops, key=lambda s_e: s_e[0] - s_e[1]):
        ops = collections.Counter(_opcode(t) for a, t in ins if start <= a <= end)
        if any(k.startswith(("LD.E", "LDG")) for k in ops):
            return ops
    return collections.Counter()


def summarize(ops: collections.Counter) -> dict:
    """The loop's size and the classes that cost most per value."""
    def count(pred):
        return sum(v for k, v in ops.items() if pred(k))

    return {
        "instructions": sum(ops.values()),
        "fp64": count(lambda k: k.startswith(("DADD", "DMUL", "DFMA", "DSETP", "DMNMX"))),
        "fp32": count(lambda k: k.startswith(("FADD", "FMUL", "FFMA", "FSETP", "FMNMX"))),
        "conversions": count(lambda k: k.startswith(("F2F", "F2I", "I2F"))),
        "shared loads": count(lambda k: k.startswith("LDS")),
        "shared atomics": count(lambda k: k.startswith("ATOMS")),
        "spill loads/stores": count(lambda k: k.startswith(("LDL", "STL"))),
        "branches": count(lambda k: k.startswith("BRA")),
    }


def bank_passes(cols: int = 32, bins: int = 100, threads: int = 256, rows: int = 2048, seed: int = 7,
                kernel: str = "rows") -> dict:
    """Shared-memory passes per warp access of a profile kernel's histogram step, for both shared layouts.

    A model, not a timing: float32 N(0, 1) values over ``cols`` columns
    against ``bins`` equal-mass float32 edges (gpu_check's profile case),
    laid out by the kernels' own ``slab_slot`` / ``slab_offsets`` /
    ``cell_at``. ``kernel="rows"``: slabs planned by ``_rows_plan``, each
    warp 32 consecutive threads of a block (column ``t % S``, row ``t //
    S``, the copy of the column's data ``slab_slot`` gives).
    ``kernel="column"``: the column kernel's slab of one column planned by
    ``_columns_plan`` (``cols`` is ignored), a warp 32 consecutive rows of
    it. Each warp looks up each in-range value's cell-table byte and the
    two edges around it and adds 1 to its bin; an access takes as many
    passes as the most distinct 4-byte words any one of the 32 banks holds
    (words read by several threads are broadcast). Walks of more than one
    step and the timing of atomics are not modelled.
    Returns ``{layout: {"pitch": the plan's pitch, access: mean passes}}``
    for the plans with and without ``interleave`` ("interleaved", and
    "column after column" or for the column kernel "one copy"; pitch 1
    where no interleaved layout fits).
    """
    import numpy as np

    from cudrift.kernels import profile as kp
    from cudrift.sketches.histogram import equal_mass_edges

    if kernel == "column":
        cols = 1
    rng = np.random.default_rng(seed)
    edges = equal_mass_edges(np.sort(rng.normal(size=200_000)), bins)
    me = len(edges)
    x = rng.standard_normal((rows, cols)).astype(np.float32)
    k_all = np.searchsorted(edges, x, side="right")
    k_all[x == edges[-1]] = me - 1
    out = {}
    for interleave in (True, False):
        if kernel == "column":
            slab, (private, cells, pitch) = 1, kp._columns_plan(me, threads, None, 4, interleave)
        else:
            slab, private, cells, pitch = kp._rows_plan(cols, me, threads, None, 4, interleave)
        assert private and cells
        width = slab if pitch == 1 else pitch
        ho, lo8 = kp.slab_regions.py_func(width, me, 4)  # float32 edges first
        block = slab * max(1, threads // slab)
        t = np.arange(block)
        col, row = t % slab, t // slab
        passes = {"cell table": [], "edges": [], "atomic": []}
        # the slot (copy of its column's data) each thread uses
        slots = kp.slab_slots.py_func(slab, pitch)
        slot = np.array([kp.slab_slot.py_func(int(tt), slab, slots) for tt in t])
        for r0 in range(0, rows - block // slab + 1, block // slab):
            for w0 in range(0, block, 32):
                c, r = col[w0:w0 + 32], row[w0:w0 + 32] + r0
                v, k = x[r, c], k_all[r, c]
                inside = (k >= 1) & (k <= me - 1)
                offs = [kp.slab_offsets.py_func(int(s), me, cells, pitch) for s in slot[w0:w0 + 32]]
                eo = np.array([o[0] for o in offs])
                hc = np.array([o[1] for o in offs])
                g = np.clip(((v - edges[0]) * (cells / (edges[-1] - edges[0]))).astype(np.int64), 0, cells - 1)
                lut = np.array([int(kp.cell_at.py_func(lo8 + o[2], o[3], int(gg))) // 4 for o, gg in zip(offs, g)])
                j = np.clip(k - 1, 0, me - 2)
                for name, words in (("cell table", [lut[inside]]),
                                    ("edges", [(eo + j * pitch)[inside], (eo + (j + 1) * pitch)[inside]]),
                                    ("atomic", [ho + hc + k * pitch])):
                    for wd in words:
                        if wd.size:
                            uniq = np.unique(wd)
                            passes[name].append(int(np.bincount(uniq % 32, minlength=32).max()))
        out["interleaved" if interleave else "one copy" if kernel == "column" else "column after column"] = {
            "pitch": pitch, **{name: round(float(np.mean(p)), 2) for name, p in passes.items()}}
    return out


def analyse(kernel, sig, cap: int, tools: dict, work: Path) -> dict:
    from numba import cuda

    ptx, _ = cuda.compile_ptx(kernel.py_func, sig, cc=(9, 0))
    ptx = re.sub(r"^\.version \d+\.\d+", ".version 8.8", ptx, flags=re.M)
    src, cubin = work / "k.ptx", work / "k.cubin"
    src.write_text(ptx)
    cmd = [tools["ptxas"], "-arch=sm_90", "-O3", "-v", str(src), "-o", str(cubin)]
    if cap:
        cmd.insert(3, f"-maxrregcount={cap}")
    info = subprocess.run(cmd, capture_output=True, text=True, check=True).stderr
    out = {"registers": int(re.search(r"Used (\d+) registers", info).group(1))}
    spill = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", info)
    out["spill_stores"], out["spill_loads"] = (int(spill.group(1)), int(spill.group(2))) if spill else (0, 0)
    if tools.get("cuobjdump"):
        sass = subprocess.run([tools["cuobjdump"], "-sass", str(cubin)], capture_output=True, text=True).stdout
        out["main loop"] = summarize(main_loop(sass))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--caps", default="0,64", help="register caps, e.g. '0,64,80' (0: none)")
    ap.add_argument("--only", default="", help="the kernels whose name starts with this, e.g. 'rows, float32'")
    ap.add_argument("--banks", action="store_true",
                    help="only the shared-memory bank model of the profile kernels' histogram step (no tools needed)")
    args = ap.parse_args(argv)
    if args.banks:
        os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")  # the model calls device functions' Python bodies
        for kernel in ("rows", "column"):
            for layout, passes in bank_passes(kernel=kernel).items():
                print(f"{kernel + ' kernel, ' + layout:34s} passes per warp access: {passes}")
        return 0
    # real compiles, not the simulator; set here, not at import, so that importing this module (its test
    # does) leaves the simulator setting of the test session alone
    os.environ["NUMBA_ENABLE_CUDASIM"] = "0"
    home = os.environ.get("CUDA_HOME", "")
    tools = {"ptxas": shutil.which("ptxas") or (str(Path(home, "bin", "ptxas")) if home else None),
             "cuobjdump": shutil.which("cuobjdump")}
    if not tools["ptxas"] or not Path(tools["ptxas"]).exists():
        print("ptxas not found: set CUDA_HOME to the nvidia-cuda-nvcc wheel's cuda_nvcc folder (see the docstring)")
        return 2
    if not tools["cuobjdump"]:
        print("cuobjdump not on PATH: registers and spills only (see the docstring for the instruction mix)")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (kernel, sig) in signatures().items():
            if not name.startswith(args.only):
                continue
            for cap in (int(c) for c in args.caps.split(",")):
                res = analyse(kernel, sig, cap, tools, Path(tmp))
                loop = res.pop("main loop", None)
                print(f"{name:26s} cap {cap or 'none':>4}: {res}")
                if loop:
                    print(f"{'':26s} main loop: {loop}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
