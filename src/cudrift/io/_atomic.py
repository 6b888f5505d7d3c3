"""Atomic file writes shared by profiles and checkpoints."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path


def write_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: temporary file in the same folder, fsync, rename, fsync the folder.

    A crash at any point leaves either the previous file or the new one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    except OSError as exc:  # (an unwritable folder) named as open(path, "wb") would name it
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    try:
        # mkstemp creates the file 0600; give it the mode open() would: the replaced file's, or 0666 less
        # the umask for a new one, so a profile or checkpoint can be read by whoever reads the folder
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except FileNotFoundError:
            mode = 0o666 & ~_umask()
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename == tmp:
            # (a directory at ``path`` fails the rename) the temporary file's name means nothing to the caller
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise
    # The rename is durable only once the directory entry is on disk.
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return path


def _umask() -> int:
    """The process's umask, read without changing it where Linux allows (``os.umask`` alone must set one)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
