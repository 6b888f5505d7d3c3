"""Where the fused profile pass spends its time on a GPU: launch geometry and compile-time constants, swept.

A diagnostic companion of ``gpu_check.py`` (which reports the pass against
its target); run from the repository root on a machine with a GPU::

    python3 benchmarks/profile_sweep.py --out sweep.json            # about a minute on an H200
    python3 benchmarks/profile_sweep.py --rows 10000000             # smaller
    python3 benchmarks/profile_sweep.py --variants "4,0"            # the library's constants only
    python3 benchmarks/profile_sweep.py --variants "4,0;4,16"       # one run of sums per thread vs groups of 16
    python3 benchmarks/profile_sweep.py --variants "" --registers 0,64,80   # register caps (0: none)
    git show REV:kernels/profile.py > /tmp/old.py
    python3 benchmarks/profile_sweep.py --variants "4,0" --baseline /tmp/old.py   # A/B against REV
    python3 benchmarks/profile_sweep.py --emulate --variants "" --registers 0,64   # no GPU (64 x 4): checks the script

On one row-major float32 window (default 1e8 x 32) it times, with CUDA events:

* the read ceilings of this layout: ``cupy`` sum of the whole window, and a
  read-only kernel with the row kernel's own thread mapping (each thread one
  column, consecutive threads consecutive values of a row);
* :func:`cudrift.kernels.profile.launch_profile` on equal-mass edges (the
  cell table), uniform edges (closed-form bin) and no histogram, over block
  sizes and grid sizes, for each compile-time variant of ``UNROLL`` and
  ``GROUP`` (each variant compiles in its own process, since Numba freezes
  module constants at compile time), and over cell-table sizes and global
  (unprivatized) histograms;
* with ``--registers``, the row kernel (on the row-major window) and the
  column kernel (on a column-major copy) recompiled under each register cap
  (``max_registers``), with float32 and float64 binning of the float32
  window, and with ``PREFETCH`` on (software-pipelined loads, off in the
  library until measured; float32 binning, equal-mass edges); with
  ``--baseline``, the kernels of another file
  (another revision's ``kernels/profile.py``), in a process of their own;
* the registers, local memory and shared memory of each compiled kernel.

Every timed launch is checked: the histogram counts of each column add up to
its rows, so a broken variant is reported, not timed. Nothing here changes
the library's defaults; the figures say which to change.

``--emulate`` runs the same code without a GPU, as ``gpu_check.py
--emulate`` does (CuPy emulated by NumPy, the kernels in Numba's simulator,
each timing once, 64 x 4 unless ``--rows`` / ``--cols`` say otherwise): it
checks the script, not the card; the simulator has no registers to report.
"""

from __future__ import annotations

import argparse
import inspect
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np  # noqa: E402
# shared with the GPU check, whose import turns the simulator off
from gpu_check import _emulate, _gpu_timed  # noqa: E402

# With --emulate the kernels run in the simulator instead: decided before Numba is imported.
EMULATE = "--emulate" in sys.argv[1:]
if EMULATE:
    _emulate()
from numba import cuda  # noqa: E402

VARIANTS = ((4, 0), (4, 16), (8, 0), (2, 0), (8, 16))


@cuda.jit
def read_rows(x, out):
    """Sum of each thread's values with the row kernel's mapping (a read ceiling for that mapping)."""
    t = cuda.threadIdx.x
    nt = cuda.blockDim.x
    n_cols = x.shape[1]
    rps = nt // n_cols
    c = t % n_cols
    acc = np.float32(0.0)
    if t < rps * n_cols:
        step = cuda.gridDim.x * rps
        for r in range(cuda.blockIdx.x * rps + t // n_cols, x.shape[0], step):
            acc += x[r, c]
    out[cuda.blockIdx.x * nt + t] = acc


def _kernels_module(path: str | None):
    """``cudrift.kernels.profile``, or the same module from another revision's file (an A/B baseline)."""
    if not path:
        import cudrift.kernels.profile as kp

        return kp
    import importlib.util

    import cudrift.kernels  # noqa: F401 - the package its relative imports resolve against

    spec = importlib.util.spec_from_file_location("cudrift.kernels._baseline_profile", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def _resources(kernel) -> list:
    """``(signature, {regs, local_bytes, shared_static})`` of each compiled overload of ``kernel`` (none emulated)."""
    if EMULATE:
        return []
    return [(sig, {"regs": ov.regs_per_thread, "local_bytes": ov.local_mem_per_thread,
                   "shared_static": ov.shared_mem_per_block}) for sig, ov in kernel.overloads.items()]


def variant(unroll: int, group: int, rows: int, cols: int, full: bool, baseline: str | None = None,
            registers: tuple = ()) -> dict:
    """Time one compile-time variant in this process (fresh: nothing compiled yet)."""
    import cupy

    from cudrift.backends._gpu import _arg

    kp = _kernels_module(baseline)
    from cudrift.backends import _gpu_host as gh
    from cudrift.kernels import _host, _launch
    from cudrift.sketches.histogram import equal_mass_edges

    if baseline is None:
        kp.UNROLL = unroll
        kp.GROUP = group
    else:  # another revision's kernels run with their own constants (GROUP 0 meant no groups only from 2026-11-27)
        unroll, group = kp.UNROLL, kp.GROUP
    rng = np.random.default_rng(7)
    sample = np.sort(rng.normal(size=200_000))
    edge_sets = {
        "equal-mass": gh.pack_edges([equal_mass_edges(sample, 100)] * cols),
        "uniform": gh.pack_edges([np.linspace(-4.0, 4.0, 101)] * cols),
        "none": gh.pack_edges([None] * cols),
    }
    x = cupy.random.standard_normal((rows, cols), dtype=np.float32)
    nbytes = rows * cols * 4
    sm = _launch.target_blocks() // 4
    out: dict = {"unroll": unroll, "group": group, "rows": rows, "cols": cols, "sms": sm, "runs": [],
                 "baseline": baseline}

    on_device = {id(p): [cupy.asarray(a) for a in p] for p in edge_sets.values()}  # copied once, not per launch
    # float32 comparison edges, as the backend passes them for float32 windows (a baseline
    # file from before float32_edges bins in float64 only)
    has_f32 = "edges32" in inspect.signature(kp.launch_profile).parameters
    has_layouts = "interleave" in inspect.signature(kp.launch_profile).parameters  # the shared layouts
    on_device32 = {id(p): cupy.asarray(_host.float32_edges(p[0])) for p in edge_sets.values()} if has_f32 else {}

    # launch_profile's own default layout: None (2026-11-27 on: interleaved rows, one copy per column block),
    # True in the trees between the seventh and tenth sessions
    layout_default = inspect.signature(kp.launch_profile).parameters["interleave"].default if has_layouts else None

    def launch(packed, nt, rb, privatize=None, window=x, f32=True, interleave=None):
        dev = on_device[id(packed)]
        o = kp.profile_outputs(cols, packed[0].shape[1], rb, cupy.full)
        extra = {"edges32": _arg(on_device32[id(packed)])} if f32 and has_f32 else {}
        if has_layouts and interleave is not None:  # (None: the module's default, also for a --baseline file)
            extra["interleave"] = interleave
        kp.launch_profile(*(_arg(a) for a in (window, *dev)), **{k: _arg(v) for k, v in o.items()},
                          threads=nt, privatize=privatize, stream=0, **extra)
        return o

    def timed(label, packed, nt, rb, privatize=None, window=x, f32=True, interleave=None, **extra):
        row = {"edges": label, "threads": nt, "row_blocks": rb, "privatize": privatize,
               "binning": "float32" if f32 and has_f32 else "float64", **extra}
        # the row kernel's slab column after column, the column kernel's single copy per block (a --baseline
        # file from before its copies has the row kernel's layouts only)
        rows_kernel = extra.get("kernel", "profile_rows_kernel") == "profile_rows_kernel"
        if has_layouts and (rows_kernel or hasattr(kp, "_columns_plan")):
            used = interleave if interleave is not None else rows_kernel if layout_default is None else layout_default
            row["shared_layout"] = "interleaved" if used else "column after column" if rows_kernel else "one copy"
        try:
            o = launch(packed, nt, rb, privatize, window, f32, interleave)
            cupy.cuda.runtime.deviceSynchronize()
            if packed[1][0] >= 2:
                per_col = cupy.asnumpy(o["hist"].sum(axis=1))
                row["counts_ok"] = bool((per_col == rows).all())
            row["seconds"] = _gpu_timed(cupy, lambda: launch(packed, nt, rb, privatize, window, f32, interleave),
                                        repeat=5)
            row["gb_per_s"] = nbytes / row["seconds"] / 1e9
        except Exception as exc:  # noqa: BLE001 - a configuration that cannot launch is a finding
            row["error"] = f"{type(exc).__name__}: {exc}"[:300]
        out["runs"].append(row)
        print(json.dumps(row), flush=True)

    per_sm = (4, 8, 16) if full else (8,)
    threads = (128, 256, 512) if full else (256,)
    for label, packed in (edge_sets.items() if full or not registers else ()):
        for nt in threads:
            for k in per_sm:
                rows_per_step = max(1, nt // cols)
                rb = max(1, min(k * sm, -(-rows // rows_per_step)))
                timed(label, packed, nt, rb)
    if full:
        rb = 8 * sm
        for cells in ((256,), (64,), ()):
            kp._CELLS = cells
            timed("equal-mass", edge_sets["equal-mass"], 256, rb, cells=list(cells))
        kp._CELLS = (256, 64)
        timed("equal-mass", edge_sets["equal-mass"], 256, rb, privatize=False)
    xf = cupy.asfortranarray(x) if registers else None  # the column kernel's layout (host groups, F-order frames)
    nt = _launch.threads_per_block()  # 256 (32 in the simulator)
    col_rb = _launch.row_blocks(rows, cols, nt, row_major=False)
    rows_rb = _launch.row_blocks(rows, cols, nt, row_major=True)  # 8 x the SMs, fewer where the rows run out
    # PREFETCH (software-pipelined loads) is read when a kernel compiles: each recompile below takes its value
    # (the register job runs this tree's kernels, never a --baseline file)
    for cap, prefetch in ((c, f) for c in registers for f in (False, True)):
        # each kernel compiled again with a register cap (more resident warps, maybe spills); 0: no cap
        kp.PREFETCH = prefetch
        opts = {} if EMULATE else {"max_registers": cap or None}  # the simulator takes no register cap
        kp.profile_rows_kernel = cuda.jit(**opts)(kp.profile_rows_kernel.py_func)
        kp.profile_kernel = cuda.jit(**opts)(kp.profile_kernel.py_func)
        tag = {"max_registers": cap, "prefetch": prefetch}
        for name, window, rb in (("profile_rows_kernel", x, rows_rb), ("profile_kernel", xf, col_rb)):
            first = len(out["runs"])
            for label in ("equal-mass", "none") if not prefetch else ("equal-mass",):
                timed(label, edge_sets[label], nt, rb, window=window, kernel=name, **tag)
            if not prefetch:  # the float64 binning of float32 values, for the A/B under each cap
                timed("equal-mass", edge_sets["equal-mass"], nt, rb, window=window, f32=False, kernel=name, **tag)
                # and with no histogram: the pass without one took 11.0 ms on an H200 before float32 binning
                # (compiled for float64 edges) and 15.9 ms after (2026-11-27): is it the float32 compile?
                timed("none", edge_sets["none"], nt, rb, window=window, f32=False, kernel=name, **tag)
            if not prefetch and has_layouts:  # the other shared layout: the row kernel's slab column after
                # column, the column kernel's 32 per-lane copies (each kernel's default is the other one)
                timed("equal-mass", edge_sets["equal-mass"], nt, rb, window=window,
                      interleave=name != "profile_rows_kernel", kernel=name, **tag)
            # each row with the resources of the compile it launched (float32 and float64 edges compile apart)
            # sig[4]: the comparison edges' type
            compiled = {str(sig[4].dtype): res for sig, res in _resources(getattr(kp, name))}
            for row in out["runs"][first:]:
                row["resources"] = compiled.get(row["binning"])
    if not registers:  # (with them, each row carries its own compile's resources; the last compile is no summary)
        resources = {name: {str(sig): res for sig, res in _resources(getattr(kp, name))}
                     for name in ("profile_rows_kernel", "profile_kernel") if getattr(kp, name).overloads}
        out["resources"] = resources
        print(json.dumps({"resources": resources}), flush=True)
    if full:
        for nt in (256, 512):
            rb = 8 * sm
            acc = cupy.empty(rb * nt, dtype=np.float32)
            read_rows[rb, nt](_arg(x), _arg(acc))
            s = _gpu_timed(cupy, lambda: read_rows[rb, nt](_arg(x), _arg(acc)), repeat=5)
            out["runs"].append({"edges": "read-only kernel, row mapping", "threads": nt, "row_blocks": rb,
                                "seconds": s, "gb_per_s": nbytes / s / 1e9})
        s = _gpu_timed(cupy, lambda: x.sum(), repeat=5)
        out["runs"].append({"edges": "cupy x.sum() (read ceiling)", "seconds": s, "gb_per_s": nbytes / s / 1e9})
        print(json.dumps(out["runs"][-3:]), flush=True)
    return out


def main(argv=None) -> int:
    # no abbreviations: --emulate is read from sys.argv before Numba is imported
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    ap.add_argument("--rows", type=int, default=64 if EMULATE else 100_000_000)
    ap.add_argument("--cols", type=int, default=4 if EMULATE else 32)
    ap.add_argument("--out", default="profile_sweep.json")
    ap.add_argument("--variant", help="UNROLL,GROUP: time this variant only, in this process (used internally)")
    ap.add_argument("--full", action="store_true", help="with --variant: the whole geometry sweep")
    ap.add_argument("--emulate", action="store_true",
                    help="no GPU needed: CuPy emulated by NumPy and the kernels in Numba's simulator (64 x 4 "
                         "unless --rows / --cols say otherwise); checks the script, its figures mean nothing")
    ap.add_argument("--timeout", type=float, default=90.0, help="seconds per variant process")
    ap.add_argument("--baseline", help="a profile.py from another revision (git show REV:kernels/profile.py > F): "
                                       "timed with the library's constants next to this tree's")
    ap.add_argument("--registers", default="",
                    help="register caps to try, e.g. '64,80,96': the kernels recompiled with max_registers, "
                         "in one more process")
    ap.add_argument("--variants", default=";".join(f"{u},{g}" for u, g in VARIANTS),
                    help="UNROLL,GROUP pairs separated by ';' (the first gets the whole sweep); default: "
                         + ";".join(f"{u},{g}" for u, g in VARIANTS))
    args = ap.parse_args(argv)
    if args.variant:
        u, g = (int(v) for v in args.variant.split(","))
        caps = tuple(int(v) for v in args.registers.split(",") if v)
        res = variant(u, g, args.rows, args.cols, args.full, args.baseline, caps)
        print("RESULT " + json.dumps(res), flush=True)
        return 0
    results = []
    variants = [tuple(int(v) for v in pair.split(",")) for pair in args.variants.split(";") if pair]
    jobs = [(u, g, i == 0, None) for i, (u, g) in enumerate(variants)]
    if args.baseline:
        import cudrift.kernels.profile as kp

        jobs.append((kp.UNROLL, kp.GROUP, False, str(Path(args.baseline).resolve())))
    if args.registers:
        import cudrift.kernels.profile as kp

        jobs.append((kp.UNROLL, kp.GROUP, False, None, args.registers))
    for u, g, full, baseline, *caps in jobs:
        cmd = [sys.executable, __file__, "--variant", f"{u},{g}", "--rows", str(args.rows), "--cols", str(args.cols)]
        if full:
            cmd.append("--full")
        if baseline:
            cmd += ["--baseline", baseline]
        if caps:
            cmd += ["--registers", caps[0]]
        if args.emulate:
            cmd.append("--emulate")
        t = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
            text = proc.stdout + proc.stderr
        except subprocess.TimeoutExpired as exc:
            text = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            text += "\n[timeout]"
        found = [ln[len("RESULT "):] for ln in text.splitlines() if ln.startswith("RESULT ")]
        # a process that ran out of time keeps the rows it printed as it went
        rows = [json.loads(ln) for ln in text.splitlines() if ln.startswith('{"edges"')]
        res = json.loads(found[-1]) if found else {"unroll": u, "group": g, "runs": rows, "error": text[-3000:]}
        res["process_seconds"] = round(time.perf_counter() - t, 1)
        results.append(res)
        Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"\n{'UNROLL':>6} {'GROUP':>5} {'edges':<32} {'thr':>4} {'blocks':>6} {'ms':>8} {'GB/s':>7}  notes")
    for res in results:
        if res.get("error"):
            print(f"{res['unroll']:>6} {res['group']:>5} failed: {res['error'][-300:]}")
        if not res.get("runs"):
            continue
        for r in res["runs"]:
            note = r.get("error", "") + (" BASELINE " + Path(res["baseline"]).name if res.get("baseline") else "")
            if r.get("counts_ok") is False:
                note += " COUNTS WRONG"
            if "cells" in r:
                note += f" cells={r['cells']}"
            if r.get("privatize") is False:
                note += " global histogram"
            if "max_registers" in r:
                note += f" {r.get('kernel', '')} max_registers={r['max_registers']} {json.dumps(r.get('resources'))}"
            if r.get("prefetch"):
                note += " PREFETCH"
            if r.get("binning") == "float64":
                note += " float64 binning"
            sec = r.get("seconds")
            print(f"{res['unroll']:>6} {res['group']:>5} {r['edges'][:32]:<32} {r.get('threads', '-'):>4} "
                  f"{r.get('row_blocks', '-'):>6} {sec * 1e3 if sec else float('nan'):8.2f} "
                  f"{r.get('gb_per_s', float('nan')):7.0f}  {note}")
        for kernel, sigs in (res.get("resources") or {}).items():
            for sig, r in sigs.items():
                dtype = sig.split(",")[0].lstrip("(") + ")"
                print(f"       {kernel} [{dtype}]: {r['regs']} registers per thread, {r['local_bytes']} bytes of "
                      f"local memory, {r['shared_static']} bytes of static shared memory")
    return 0


if __name__ == "__main__":
    sys.exit(main())
