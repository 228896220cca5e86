"""Backends that misbehave on purpose, registered by tests to exercise failure handling.

They are real plugin backends (registered with ``rnnbench.backends.register``), so
they travel to the runner's child process exactly as a third-party backend would.
"""

from __future__ import annotations

import os
import time

import numpy as np

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


class _Crashing(Prepared):
    def run(self, x: np.ndarray) -> np.ndarray:
        os._exit(3)


class CrashingBackend(Backend):
    name = "test-crashing"

    def prepare(self, weights, params, calibration, threads=1):
        return _Crashing()


SLEEPING = SleepingBackend()
FAILING = FailingBackend()
CRASHING = CrashingBackend()
