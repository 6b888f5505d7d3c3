#!/usr/bin/env bash
# One prepared call for a lent GPU machine: everything the next card run should measure, in under 10 minutes.
#
#   bash benchmarks/gpu_session.sh            # from the repository root; results under $OUT (or ./gpu_session_out)
#
# Before spending a card on it, on any machine: python3 benchmarks/gpu_check.py --emulate --out /tmp/e.json
# must end with "steps failed: none" (the same steps at tiny sizes, CuPy emulated, kernels in the simulator).
#
# 1. installs the tree without dependencies (the lent machines have CuPy, numba-cuda, pytest, hypothesis,
#    pytest-benchmark and nvidia-ml-py, and no internet);
# 2. benchmarks/gpu_check.py: the card, the GPU tests, every timed row against its target, and the A/B rows
#    that say whether the changes made since the last card run helped (float32 binning of the profile pass,
#    both profile kernels' interleaved shared layouts, one summary launch per group, host windows staged in
#    column groups), in one process;
# 3. benchmarks/profile_sweep.py --variants "4,0;4,16" [--baseline .ab/profile.py] --registers 0,64: the moments'
#    two schemes, another revision's kernels when carried, and both profile kernels under each register cap, with
#    float32 and float64 binning, with each kernel's other shared layout and with PREFETCH on (is
#    a cap for the column kernel worth it? is 64 still right for the row kernel? do the interleaved layouts
#    and software-pipelined loads pay?);
# 4. prints the tail of each log; the JSON and logs stay under $OUT for benchmarks/RESULTS.md.
#
# A session has 15 minutes of device time in all, starts included: this script must leave room for a rerun.
# gpu_check gets a 350 s watchdog (2026-11-27 on an H200: GPU tests 137 s, kernel warm-up 68 s, the timed
# rows 60 s; since then the NumPy compare at the full size, its detector's build and one or two compares,
# about 40 s, when 3.5x the scaled figure + 30 s is left), the sweep 130 s (its processes in order of use:
# a process past the limit loses only the rest).
# Run it with timeout_s=520.
set -u
OUT=${OUT:-gpu_session_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if [ -d .whl ]; then
    # carried wheels (benchmarks/README.md, "Triton on a lent GPU machine"): gpu_check's KIND_GPU Triton step
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl >> "$OUT/install.log" 2>&1
    export PYTHONPATH=/tmp/site:$PWD/.whl/py${PYTHONPATH:+:$PYTHONPATH}
fi
if ! python3 -m pip install -q --no-deps --no-build-isolation -e . >> "$OUT/install.log" 2>&1; then
    tail -20 "$OUT/install.log"
    exit 1
fi
timeout 365 python3 benchmarks/gpu_check.py --out "$OUT/gpu_check.json" --deadline 350 > "$OUT/gpu_check.log" 2>&1
echo "gpu_check exit status $?"
# a server the watchdog's exit may have left behind: only cudrift's (LocalTritonServer names its shared memory)
pkill -f 'tritonserver.*shm-region-prefix-name=cudrift' 2>/dev/null
# The library's moments (one run of sums per thread, GROUP 0) against groups of 16 (before 2026-11-27), then, when
# carried (see benchmarks/README.md, "A/B against an earlier revision"), the kernels of .ab/profile.py, then caps.
# (with the baseline, which has the groups of 16 among the rest, the 4,16 variant is left out for time)
BASELINE=()
VARIANTS="4,0;4,16"
[ -f .ab/profile.py ] && BASELINE=(--baseline .ab/profile.py) && VARIANTS="4,0"
timeout 130 python3 benchmarks/profile_sweep.py --rows 50000000 --variants "$VARIANTS" "${BASELINE[@]}" \
    --registers 0,64 --timeout 60 --out "$OUT/sweep.json" > "$OUT/sweep.txt" 2>&1
echo "profile_sweep exit status $?"
tail -45 "$OUT/gpu_check.log"
echo "----- sweep"
tail -25 "$OUT/sweep.txt"
