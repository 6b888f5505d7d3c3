"""Atomic file writes shared by profiles and checkpoints."""

from __future__ import annotations

import errno
import os
import re
import stat
import tempfile
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # (Windows: no flock, so no writer's leftovers are removed; writes are as atomic)
    fcntl = None

#: A temporary file of ``write_atomic`` this old, that no writer holds, was left by a writer that died.
STALE_SECONDS = 300.0


def write_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: temporary file in the same folder, fsync, rename, fsync the folder.

    A crash at any point leaves either the previous file or the new one. A
    writer killed before its rename leaves its temporary file
    (``<name>.cudrift-<random>.tmp``); once a later write of ``path`` has
    succeeded, such files are removed when no live writer holds them (each
    writer holds a lock on its own until it is renamed) and they are older
    than :data:`STALE_SECONDS`.
    """
    given = Path(path)
    path, mode = _target(given)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=path.name + _TEMP_INFIX, suffix=".tmp", dir=path.parent)
    except OSError as exc:  # (an unwritable folder) named as open(path, "wb") would name it
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            # held until the file is renamed (closing it releases the lock): another writer's cleanup leaves it be
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            # ... or 0666 less the umask for a new one, so a profile or checkpoint can be read by whoever reads
            # the folder
            if hasattr(os, "fchmod"):  # (not on Windows before Python 3.13)
                os.fchmod(fd, 0o666 & ~_umask() if mode is None else mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            if fcntl is not None:
                os.replace(tmp, path)
        if fcntl is None:
            os.replace(tmp, path)  # (after closing it: Windows renames no open file)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename == tmp:
            # (a directory at ``path`` fails the rename) the temporary file's name means nothing to the caller
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise
    # The rename is durable only once the directory entry is on disk (Windows opens no directory to fsync it).
    if os.name != "nt":
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    _remove_stale_temps(path)
    return given


def check_target(path: str | os.PathLike, stream: bool = False) -> None:
    """Raise the ``OSError`` that writing ``path`` would raise, before the costly work whose result it is to hold
    (the CLI checks ``--out`` and ``--json`` first): what is at ``path`` (a directory; a device, FIFO or pipe,
    unless ``stream``: see :func:`write_output`), and a folder on the way to it that is a file or that this
    process cannot write."""
    given = Path(path)
    if stream and _streamed(given):
        return
    path, _ = _target(given)
    folder = path.parent
    while not os.path.lexists(folder) and folder != folder.parent:
        folder = folder.parent  # (made by the write)
    if not folder.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(folder))
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(folder))


def write_output(path: str | os.PathLike, data: bytes) -> None:
    """Write a report where the user points it: a regular file atomically (:func:`write_atomic`), a pipe, a
    terminal or a device (``--json /dev/stdout | jq``, ``>(jq .)``, ``/dev/null``) by writing into it as it
    is. A FIFO no process reads is refused (ENXIO) rather than waited on for good."""
    given = Path(path)
    if not _streamed(given):
        write_atomic(given, data)
        return
    try:
        fd = os.open(given, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise OSError(errno.ENXIO, "a FIFO that no process reads", str(given)) from None
        raise
    os.set_blocking(fd, True)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _streamed(given: Path) -> bool:
    """Whether ``given`` is (or links to) something written into rather than replaced: a FIFO, pipe, socket or
    character device (``/dev/stdout`` is a link to the process's pipe or terminal)."""
    try:
        kind = os.stat(given).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(kind) or stat.S_ISCHR(kind) or stat.S_ISSOCK(kind)


def _target(given: Path) -> tuple[Path, int | None]:
    """The file a write of ``given`` replaces, and its mode (None: no file there yet)."""
    # a link is followed, and its target replaced (the link kept; errors then name the target); anything but a
    # regular file at the path (a device, a FIFO: --out /dev/null) is refused, which the rename would replace.
    # (stat follows the link itself: /dev/stdout's target, /proc/self/fd/1, reads as "pipe:[N]", not a path)
    try:
        kind = os.stat(given).st_mode
        # the temporary file gets the mode open() would keep: the replaced file's (mkstemp's is 0600) ...
        mode = stat.S_IMODE(kind)
    except (FileNotFoundError, NotADirectoryError):  # (no file there: mkdir names a file in the way)
        kind, mode = stat.S_IFREG, None
    path = Path(os.path.realpath(given)) if given.is_symlink() else given
    if stat.S_ISDIR(kind):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    if not stat.S_ISREG(kind):
        raise OSError(errno.EINVAL, "not a regular file (a profile or checkpoint is written as one)", str(path))
    return path, mode


# Temporary names are <name>.cudrift-<mkstemp's 8 random characters>.tmp: distinct from names people give files.
_TEMP_INFIX = ".cudrift-"


def _remove_stale_temps(path: Path) -> None:
    """Remove the temporary files of writes of ``path`` whose writer died (see :func:`write_atomic`); never raises.

    A file is removed only if its name is one :func:`write_atomic` gives for ``path``, it is a regular file
    older than :data:`STALE_SECONDS`, and its lock can be taken: a live writer, in this process or another,
    holds its own from just after creating it until after renaming it (the age covers that instant, and file
    systems where locks are per process, as NFS's emulated ``flock``).
    """
    if fcntl is None:
        return
    pattern = re.compile(re.escape(path.name + _TEMP_INFIX) + r"[a-z0-9_]{8}\.tmp")
    try:
        with os.scandir(path.parent) as it:
            names = [e.name for e in it if pattern.fullmatch(e.name)]
    except OSError:
        return
    now = time.time()
    for name in names:
        p = os.path.join(path.parent, name)
        try:
            # (read-only: flock needs no write access, and a leftover takes the mode of the file it was to replace,
            # 0444 for a read-only profile)
            fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:  # gone (renamed by its writer, removed by another cleanup), or not ours to open
            continue
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or now - st.st_mtime < STALE_SECONDS:
                continue
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # OSError: a live writer holds it
            here = os.stat(p, follow_symlinks=False)
            if (here.st_dev, here.st_ino) == (st.st_dev, st.st_ino):  # still the file locked
                os.unlink(p)
        except OSError:
            pass
        finally:
            os.close(fd)


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
