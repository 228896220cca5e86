"""Safe file writing, the one way every rnnbench file is written.

A file is written to a hidden temporary beside it and renamed over it, so a reader
(or a crash) sees the old file or the new one, never half of one. Temporaries carry
the writer's process id; one left behind by a writer that was killed is removed by
the next write to the same file. ``locked`` serialises read-modify-write cycles of
several processes on one file (an advisory ``flock`` on a hidden lock file).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import socket
from collections.abc import Callable, Iterator
from pathlib import Path


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def _writer_is_gone(temporary: Path) -> bool:
    """Whether the process that named ``temporary`` has ended (only decidable on this host)."""
    head, pid, _token, _ = temporary.name.rsplit(".", 3)  # .NAME.HOST.PID.TOKEN.tmp
    if not head.endswith(f".{socket.gethostname()}") or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete temporaries of ``path`` whose writer was killed mid-write; returns what was deleted."""
    removed = []
    for temporary in path.parent.glob(f".{path.name}.*.*.*.tmp"):
        if _writer_is_gone(temporary):
            temporary.unlink(missing_ok=True)
            removed.append(temporary)
    return removed


def write_atomic(path: str | os.PathLike, write: Callable[[Path], None], clean: bool = True) -> None:
    """Create or replace ``path`` with what ``write(temporary)`` writes, atomically.

    The file gets the permissions the umask allows (as ``open`` would give), and the
    temporary is removed if ``write`` fails, so a failed write leaves the old file as it was.
    ``clean=False`` skips looking for stale temporaries, for a file written once in a folder
    of many that is removed as a whole (a run's fragments).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if clean:
        remove_stale_temporaries(path)
    temporary = _temporary(path)
    umask = os.umask(0)
    os.umask(umask)
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 & ~umask)
        os.close(fd)
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def locked(path: str | os.PathLike, shared: bool = False) -> Iterator[None]:
    """Hold a lock on ``path`` (its hidden ``.NAME.lock`` beside it) for a block.

    Every process that rewrites a shared file takes the exclusive lock first, so two
    sweeps appending to one results file take turns instead of overwriting each other's
    rows; a reader that must not see a rewrite half done takes the ``shared`` one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def check_writable(directory: Path) -> None:
    """Raise ``OSError`` unless a file can be created in ``directory`` (checked before any work)."""
    directory.mkdir(parents=True, exist_ok=True)
    probe = _temporary(directory / "probe")
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    probe.unlink()
