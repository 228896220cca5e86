"""Backends that misbehave on purpose (or count their runs), registered by tests of the runner.

They are real plugin backends (registered with ``rnnbench.backends.register``), so
they travel to the runner's child process exactly as a third-party backend would.
"""

from __future__ import annotations

import os
import time

import numpy as np
import psutil

from rnnbench.backends.base import Backend, Prepared


class _Sleeping(Prepared):
    def run(self, x: np.ndarray) -> np.ndarray:
        time.sleep(3600)
        raise AssertionError("unreachable")


class SleepingBackend(Backend):
    name = "test-sleeping"

    def prepare(self, weights, params, calibration, threads=1):
        return _Sleeping()


class FailingBackend(Backend):
    name = "test-failing"

    def prepare(self, weights, params, calibration, threads=1):
        raise RuntimeError("this backend always fails to prepare")


class AllocatorReportingBackend(Backend):
    """Fails with the allocator setting its process sees (a point child's environment)."""

    name = "test-allocator"

    def prepare(self, weights, params, calibration, threads=1):
        raise RuntimeError(f"MALLOC_TRIM_THRESHOLD_={os.environ.get('MALLOC_TRIM_THRESHOLD_')}")


class _Crashing(Prepared):
    def run(self, x: np.ndarray) -> np.ndarray:
        os._exit(3)


class CrashingBackend(Backend):
    name = "test-crashing"

    def prepare(self, weights, params, calibration, threads=1):
        return _Crashing()


class _Counting(Prepared):
    """Zero outputs after a short sleep (one run lasts a sample); reports its runs as ``n_eval``."""

    def __init__(self, hidden: int) -> None:
        self.hidden, self.runs = hidden, 0

    def run(self, x: np.ndarray) -> np.ndarray:
        self.runs += 1
        time.sleep(0.005)
        return np.zeros((*x.shape[:2], self.hidden), np.float32)

    def facts(self):
        return {"n_eval": self.runs}


class FirstRunTimedBackend(Backend):
    name = "test-first-run-timed"
    first_run_is_sample = True

    def prepare(self, weights, params, calibration, threads=1):
        return _Counting(weights.hidden_size)


class _BadFacts(_Counting):
    def facts(self):
        return {"n_eval": self.runs, "not_a_results_column": 1.0}


class BadFactsBackend(Backend):
    """Reports a fact the results schema has no column for (a plugin's bug)."""

    name = "test-bad-facts"

    def prepare(self, weights, params, calibration, threads=1):
        return _BadFacts(weights.hidden_size)


class WorkerKillingBackend(Backend):
    """Kills the Dask worker measuring it: the loss of a worker machine, mid-point.

    The point runs in a child forked by the runner's fork server, which the worker
    process started, so the worker is the grandparent. ``RNNBENCH_TEST_PID`` names the
    test process, which must never be the one killed (e.g. if run without Dask).
    """

    name = "test-worker-killing"

    def prepare(self, weights, params, calibration, threads=1):
        worker = psutil.Process().parent().parent()
        if worker.pid == int(os.environ.get("RNNBENCH_TEST_PID", "0")):
            raise RuntimeError("not running on a Dask worker; refusing to kill the test process")
        worker.kill()
        os._exit(4)


SLEEPING = SleepingBackend()
FAILING = FailingBackend()
CRASHING = CrashingBackend()
FIRST_RUN_TIMED = FirstRunTimedBackend()
WORKER_KILLING = WorkerKillingBackend()
ALLOCATOR_REPORTING = AllocatorReportingBackend()
BAD_FACTS = BadFactsBackend()
