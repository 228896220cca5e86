"""Executors decide where points run; every executor yields the same rows for the same points.

``Sequential`` (the default) runs one point after another on this machine. ``DaskCluster``
submits every point as a task to a Dask distributed cluster (a local one of N
single-threaded worker processes, or an existing one by scheduler address) and yields
the rows as points finish. Either way each point is measured by
:func:`rnnbench.runner.run_point` in its own child process, so the rows (including
their provenance: host name, CPU model) come from the machine that measured them.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import traceback
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import CancelledError
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, Protocol

from rnnbench import backends
from rnnbench.grid import Point
from rnnbench.measure import Settings
from rnnbench.results.rows import failure_row
from rnnbench.runner import Stopped, run_point

if TYPE_CHECKING:
    from distributed import Client, Future

# A point whose worker dies is retried on this many further workers before it is
# recorded as an error: a point that kills its worker (out of memory, a crash in a
# native library) must not take the whole cluster down one worker after another.
ALLOWED_FAILURES = 1

LOCAL_CLUSTER_CONFIG = {
    # The runner measures each point in a child process; Dask starts its worker
    # processes as daemons by default, and daemonic processes may not have children.
    "distributed.worker.daemon": False,
    # Hand a worker its next point only when it is free: a point queued on a worker that
    # dies would be counted as a failed attempt too, and lost with the guilty point.
    "distributed.scheduler.worker-saturation": 1.0,
    # A worker killed mid-point is restarted by its nanny; the restart imports the numeric
    # stack and can take longer than Dask's default 15 s on a busy machine, after which the
    # cluster would close that nanny for good and the sweep would go on with fewer workers.
    "distributed.deploy.lost-worker-timeout": "10 minutes",
}

# Provenance columns that describe the measuring machine: unknown for a point whose
# worker died (its rows are written by the client, which did not measure it).
_MACHINE_COLUMNS = ("machine_id", "hostname", "cpu_model", "cpu_count")


class Executor(Protocol):
    description: str  # where the points run, recorded with the run

    def map(
        self, points: Iterable[Point], settings: Settings, stop: threading.Event | None = None
    ) -> Iterator[tuple[Point, list[dict[str, Any]]]]:
        """Run every point, yielding ``(point, rows)`` as each finishes (in any order).

        Raises :class:`rnnbench.runner.Stopped` once ``stop`` is set.
        """
        ...

    def close(self) -> None: ...


class Sequential:
    """One point at a time on this machine, each in its own child process (the default)."""

    description = "sequential, a child process per point"

    def map(
        self, points: Iterable[Point], settings: Settings, stop: threading.Event | None = None
    ) -> Iterator[tuple[Point, list[dict[str, Any]]]]:
        for point in points:
            yield point, run_point(point, settings, stop)

    def close(self) -> None:
        pass


class ClusterError(Exception):
    """The Dask cluster cannot be reached or was lost; points already written are kept."""


def worker_problem() -> str | None:
    """Why this Dask worker process cannot measure points (``None``: it can)."""
    if multiprocessing.current_process().daemon:
        return ("a daemonic process cannot start the child process each point runs in; "
                "start workers with DASK_DISTRIBUTED__WORKER__DAEMON=False")
    return None


def measure_on_worker(point: Point, settings: Settings, target: str) -> list[dict[str, Any]]:
    """The task a Dask worker runs: register the point's backend by name, then measure it.

    Backends registered at run time in the client (plugins, tests) exist on the worker
    only once registered there too; the runner's child process re-registers the same way.
    """
    problem = worker_problem()
    if problem:
        raise RuntimeError(f"this Dask worker cannot measure points: {problem}")
    backends.register(point.backend, target)
    return run_point(point, settings)


def check_cluster(client: Client, timeout: float = 10.0) -> None:
    """Refuse a cluster whose points would fail or be mis-timed: :class:`ClusterError` says why.

    At least one worker must join within ``timeout`` seconds; the scheduler and every
    worker must import the client's rnnbench version (tasks are rnnbench objects);
    workers must run one task at a time, and may not be daemonic.
    """
    import rnnbench

    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError:
        raise ClusterError(f"no worker joined the scheduler within {timeout:g} s; start workers with "
                           f"`dask worker {client.scheduler.address} --nthreads 1`") from None
    versions = client.get_versions(packages=["rnnbench"])
    places = {"the scheduler": versions["scheduler"],
              **{f"worker {address}": info for address, info in versions["workers"].items()}}
    for place, info in places.items():
        found = info["packages"].get("rnnbench")
        if found != rnnbench.__version__:
            raise ClusterError(f"{place} has rnnbench {found or 'not installed'}, this client "
                               f"{rnnbench.__version__}; install the same rnnbench everywhere")
    busy = {address: n for address, n in client.nthreads().items() if n != 1}
    if busy:
        address, n = next(iter(busy.items()))
        raise ClusterError(f"worker {address} runs {n} threads, so points would share cores; "
                           "start workers with --nthreads 1")
    problems = {address: p for address, p in client.run(worker_problem).items() if p}
    if problems:
        address, problem = next(iter(problems.items()))
        raise ClusterError(f"worker {address}: {problem}")


def worker_lost_row(point: Point, worker: str, attempts: int) -> dict[str, Any]:
    """The error row of a point whose worker process died while measuring it, every attempt."""
    row = failure_row(point, "error", "WorkerLost",
                      f"worker lost: the worker measuring this point died ({attempts} attempts, "
                      f"last on {worker})")
    return {**row, **dict.fromkeys(_MACHINE_COLUMNS)}


class DaskCluster:
    """Points as tasks on a Dask distributed cluster, yielded as they finish.

    Every worker must run one task at a time (one thread per worker), so points never
    share a core with each other; give each worker its own machine or pinned cores.
    Points not yet finished when the consumer stops (Ctrl-C, an error) are cancelled.
    ``close`` releases what this object started (the client, a local cluster); wrapping
    an existing ``Client`` leaves it open.
    """

    def __init__(self, client: Client, resources: ExitStack | None = None, description: str = "") -> None:
        self.client = client
        self._resources = resources or ExitStack()
        self.description = description or f"dask cluster {client.scheduler.address}"

    @classmethod
    def local(cls, workers: int, allowed_failures: int = ALLOWED_FAILURES) -> DaskCluster:
        """Start a cluster of ``workers`` single-threaded worker processes on this machine."""
        import dask
        from distributed import Client, LocalCluster

        resources = ExitStack()
        try:
            # Kept set while the cluster lives: the nanny reads it again when it restarts a worker.
            resources.enter_context(dask.config.set(LOCAL_CLUSTER_CONFIG))
            cluster = resources.enter_context(LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                silence_logs=logging.CRITICAL, scheduler_kwargs={"allowed_failures": allowed_failures},
            ))
            client = resources.enter_context(Client(cluster, set_as_default=False))
        except BaseException:
            resources.close()
            raise
        return cls(client, resources, f"local dask cluster, {workers} worker processes")

    @classmethod
    def connect(cls, address: str, timeout: float = 10.0) -> DaskCluster:
        """Connect to a running scheduler; :class:`ClusterError` if it cannot be reached."""
        import asyncio

        from distributed import Client
        from distributed.comm import connect

        async def probe() -> None:
            comm = await connect(address, timeout=timeout)
            await comm.close()

        # Probed first: a Client that fails in its constructor complains again when collected.
        try:
            asyncio.run(probe())
        except (OSError, TimeoutError, ValueError, TypeError) as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ClusterError(f"cannot connect to Dask scheduler {address!r}: {message}") from None
        client = Client(address, timeout=timeout, set_as_default=False)
        resources = ExitStack()
        resources.callback(client.close)
        try:
            check_cluster(client, timeout)
        except BaseException:
            resources.close()
            raise
        workers = len(client.scheduler_info().get("workers", {}))
        return cls(client, resources, f"dask cluster {address}, {workers} workers")

    def map(
        self, points: Iterable[Point], settings: Settings, stop: threading.Event | None = None
    ) -> Iterator[tuple[Point, list[dict[str, Any]]]]:
        from distributed import as_completed

        run_token = uuid.uuid4().hex[:8]
        pending: dict[Future, Point] = {
            self.client.submit(measure_on_worker, point, settings, backends.target(point.backend),
                               key=f"rnnbench-point-{point.point_id}-{run_token}"): point
            for point in points
        }
        try:
            for future in as_completed(list(pending), loop=self.client.loop):
                if stop is not None and stop.is_set():
                    raise Stopped
                point = pending.pop(future)
                yield point, self._rows(point, future)
        finally:
            if pending:  # interrupted: do not leave points queued on the cluster
                self.client.cancel(list(pending))

    @staticmethod
    def _rows(point: Point, future: Future) -> list[dict[str, Any]]:
        from distributed.scheduler import KilledWorker

        try:
            return future.result()
        except KilledWorker as exc:
            worker = getattr(exc.last_worker, "address", str(exc.last_worker))
            return [worker_lost_row(point, worker, exc.allowed_failures + 1)]
        except CancelledError:
            raise ClusterError("lost the Dask cluster (scheduler gone or points cancelled)") from None
        except Exception as exc:  # the task itself failed on the worker (e.g. rnnbench missing there)
            detail = traceback.format_exception_only(exc)[-1].strip()
            return [failure_row(point, "error", type(exc).__name__, detail)]
        finally:
            future.release()

    def close(self) -> None:
        self._resources.close()
