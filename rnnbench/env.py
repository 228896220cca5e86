"""Environment capture: small functions that each fill part of one record.

The full record goes into the results file's footer; the per-row provenance
(:func:`provenance`) is the subset that identifies where and with what a sample ran,
so rows from different machines or commits stay distinguishable after a merge.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import rnnbench

LIBRARIES = ("numpy", "numba", "torch", "onnxruntime", "tenseal", "pyarrow", "scipy")


def cpu_model() -> str:
    """The CPU's marketing name, from /proc/cpuinfo where available."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_id() -> str:
    """A stable identifier of this machine (systemd's machine-id, else the host name)."""
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            value = Path(path).read_text().strip()
        except OSError:
            continue
        if value:
            return value
    return socket.gethostname()


def _git(*args: str) -> str | None:
    root = Path(__file__).resolve().parent.parent
    try:
        result = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def git_state() -> dict[str, Any]:
    """Commit of the rnnbench checkout and whether it had uncommitted changes."""
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"git_commit": commit, "git_dirty": bool(status) if status is not None else None}


def library_versions() -> dict[str, str | None]:
    """Installed versions of the libraries that shape the numbers (``None``: not installed)."""
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cpu_state() -> dict[str, Any]:
    """Logical CPUs, the CPUs this process may use, frequency governor and memory."""
    record: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "cpu_affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
    }
    governor = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    record["cpu_governor"] = governor.read_text().strip() if governor.exists() else None
    try:
        import psutil

        record["memory_total_bytes"] = psutil.virtual_memory().total
        record["load_average"] = list(os.getloadavg())
    except (ImportError, OSError):
        record["memory_total_bytes"] = None
    return record


def thread_settings() -> dict[str, str | None]:
    """Threading environment variables that change what the libraries do."""
    keys = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
            "NUMBA_NUM_THREADS", "OPENBLAS_CORETYPE")
    return {key: os.environ.get(key) for key in keys}


@functools.lru_cache(maxsize=1)
def provenance() -> dict[str, Any]:
    """The provenance columns repeated on every results row (cached per process)."""
    versions = library_versions()
    return {
        "rnnbench_version": rnnbench.__version__,
        **git_state(),
        "machine_id": machine_id(),
        "hostname": socket.gethostname(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "os": f"{platform.system()} {platform.release()}",
        "python_version": platform.python_version(),
        **{f"{name}_version": version for name, version in versions.items()},
    }


def collect() -> dict[str, Any]:
    """The full environment record of a run (for the file footer and ``rnnbench env``)."""
    return {
        **provenance(),
        "platform": platform.platform(),
        "python_executable": sys.executable,
        **cpu_state(),
        "threads_env": thread_settings(),
    }
