"""Launch geometry for every kernel: block sizes, grid sizes, tile constants.

Grids are sized from the work and the device's multiprocessor count: enough
blocks to fill every SM a few times over, never more than the work needs.
Kernels loop (grid-stride) over whatever a capped grid leaves, so the grid
size only changes how the work is shared, never the answer. Per-block
outputs (partial moments, rank partial sums) are therefore sized by the
caller from these same functions.

The simulator runs each CUDA thread as a Python thread, so its defaults are
small: 32 threads per block and a device that pretends to have 2 SMs.
"""

from __future__ import annotations

from ._cuda import SIMULATOR, device_limits, shared_per_sm

__all__ = [
    "MMD_TILE",
    "MMD_FEATURE_CHUNK",
    "threads_per_block",
    "target_blocks",
    "blocks_1d",
    "row_blocks",
    "rank_items",
    "rank_blocks",
    "mmd_tile_pairs",
    "mmd_blocks",
    "shared_limit",
    "shared_per_sm",
    "resident_blocks",
    "ROWS_MAX_REGISTERS",
    "COLUMNS_MAX_REGISTERS",
    "MAX_GRID_Y",
]

#: Points per side of one MMD kernel tile; also that kernel's block size. A
#: compile-time constant because it sizes shared and local arrays.
MMD_TILE = 32
#: Features staged in shared memory at a time by the MMD kernel.
MMD_FEATURE_CHUNK = 16

#: Register cap of :func:`cudrift.kernels.profile.profile_rows_kernel`
#: (``max_registers``; the simulator takes none). As measured on an H200
#: (2026-11-26, before float32 binning): uncapped it took 128 registers,
#: which leaves 16 warps per SM; capped at 64 it spilled 152 bytes per
#: thread to local memory and still ran 12% (equal-mass histogram) to 16%
#: (no histogram) faster (``benchmarks/profile_sweep.py --registers``,
#: benchmarks/RESULTS.md). Now 112-116 registers uncapped with float32
#: binning (``benchmarks/kernel_sass.py``); the sweep re-times the caps.
#: Since 2026-11-27 (register-lean read loop, not yet timed on a card): 84
#: uncapped, 3 spill loads/stores in the loop at 64 (ptxas 12.9, sm_90).
ROWS_MAX_REGISTERS = 64
#: Register cap of :func:`cudrift.kernels.profile.profile_kernel` (the
#: column-major mapping, which the host-window path's staged blocks take).
#: Uncapped it took 69 registers with float32 binning (3 blocks of 256
#: threads per SM); under 64 ptxas 12.9 fits it in 62 with no spill (4
#: blocks), float64 binning with 26 spill loads and stores in the loop
#: (2026-11-27, ``benchmarks/kernel_sass.py``; not yet timed on a card: the
#: sweep's ``--registers 0,64`` times both).
COLUMNS_MAX_REGISTERS = 64

_GPU_THREADS = 256
_SIM_THREADS = 32
# Resident blocks aimed for per SM: enough to hide memory latency on a
# memory-bound pass without launching blocks that would only wait.
_BLOCKS_PER_SM = 4
#: CUDA's limit on gridDim.y (and z).
MAX_GRID_Y = 65535
_GPU_RANK_ITEMS = 8
_SIM_RANK_ITEMS = 4


def threads_per_block() -> int:
    """Default block size: 256 on a GPU, 32 in the simulator."""
    return _SIM_THREADS if SIMULATOR else _GPU_THREADS


def target_blocks() -> int:
    """Blocks that fill the device: ``4 x`` its SM count (8 in the simulator)."""
    sm_count, _ = device_limits()
    return _BLOCKS_PER_SM * sm_count


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def blocks_1d(n_items: int, threads: int) -> int:
    """Grid size for ``n_items`` one-thread-per-item work items (at least 1).

    Parameters
    ----------
    n_items
        Work items (array elements, output entries).
    threads
        Block size.
    """
    return max(1, min(_ceil_div(n_items, threads), target_blocks()))


def row_blocks(n_rows: int, n_cols: int, threads: int, row_major: bool = False) -> int:
    """Row blocks of a (rows x columns) profile pass (the per-block outputs' second dimension).

    Column mapping (``row_major=False``): the grid is ``(n_cols,
    row_blocks)`` and the total of ``n_cols * row_blocks`` blocks aims at
    :func:`target_blocks`. Row mapping (``row_major=True``, see
    :func:`cudrift.kernels.profile.rows_layout`): every block covers all
    columns of a slab, so ``row_blocks`` alone aims at twice
    :func:`target_blocks` (the row kernel's blocks are short of shared
    memory, not of registers). Either way each column gets at least one
    block and no block gets no rows (except that an empty chunk still gets
    one block, which writes the identities).

    Parameters
    ----------
    n_rows, n_cols
        Shape of the chunk.
    threads
        Block size.
    row_major
        Whether the chunk takes the row mapping.
    """
    if row_major:
        rows_per_step = max(1, threads // max(1, min(n_cols, threads)))
        return max(1, min(2 * target_blocks(), _ceil_div(n_rows, rows_per_step)))
    wanted = _ceil_div(target_blocks(), max(n_cols, 1))
    return max(1, min(wanted, _ceil_div(n_rows, threads), MAX_GRID_Y))


def rank_items() -> int:
    """Merged values per thread in the rank kernel: 8 on a GPU, 4 in the simulator."""
    return _SIM_RANK_ITEMS if SIMULATOR else _GPU_RANK_ITEMS


def rank_blocks(n_merged: int, threads: int, items: int) -> int:
    """Grid size of the rank kernel: one tile is ``threads * items`` merged values.

    Parameters
    ----------
    n_merged
        ``len(reference) + len(current)``.
    threads, items
        Block size and values per thread.
    """
    return blocks_1d(_ceil_div(n_merged, items), threads)


def mmd_tile_pairs(n_points: int) -> int:
    """Tile pairs ``(a, b)`` with ``a <= b`` that cover a pooled sample of ``n_points``."""
    t = _ceil_div(n_points, MMD_TILE)
    return t * (t + 1) // 2


def mmd_blocks(n_points: int) -> int:
    """Grid size of the MMD tile kernel (blocks loop over tile pairs)."""
    return max(1, min(mmd_tile_pairs(n_points), 8 * target_blocks()))


def shared_limit() -> int:
    """Dynamic shared memory a block may use without opting in (bytes)."""
    _, shared = device_limits()
    return shared


def resident_blocks() -> int:
    """Blocks of the default size aimed to be resident per SM (also what :func:`target_blocks` counts)."""
    return _BLOCKS_PER_SM


def column_range(a, j0: int, j1: int):
    """Columns ``j0:j1`` of a 2-D Numba device array, made in constant time.

    Numba's own slicing (``DeviceNDArray.__getitem__``) lists the contiguous
    extents of a result that is not contiguous, one per row: 100 million
    Python iterations (minutes, and gigabytes of tuples) for a column range of
    a 100M-row row-major window, where the kernel itself takes milliseconds.
    This view is built from the pointer instead: same shape, strides and
    owner as ``a[:, j0:j1]``. Simulator arrays (and arrays with a negative
    stride or no elements) slice as before.
    """
    if j0 == 0 and j1 == a.shape[1]:
        return a
    data = getattr(a, "gpu_data", None)
    if data is None or a.size == 0 or j1 <= j0 or min(a.strides) < 0:
        return a[:, j0:j1]
    from numba.cuda.cudadrv.devicearray import DeviceNDArray

    return DeviceNDArray(shape=(a.shape[0], j1 - j0), strides=a.strides, dtype=a.dtype,
                         gpu_data=data.view(j0 * a.strides[1]), stream=a.stream)
