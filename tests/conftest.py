from __future__ import annotations

import signal

import pytest

from rnnbench import backends
from rnnbench.measure import Settings

# Short measurements: tests check behaviour, never timings.
FAST = Settings(min_time=0.01, repeats=2, max_repeats=3, warmup=1, sample_time=0.001, timeout=60)


@pytest.fixture
def plugin_backends():
    """Register the misbehaving test backends for the duration of a test."""
    added = {"test-sleeping": "tests.plugin_backends:SLEEPING",
             "test-failing": "tests.plugin_backends:FAILING",
             "test-crashing": "tests.plugin_backends:CRASHING",
             "test-first-run-timed": "tests.plugin_backends:FIRST_RUN_TIMED",
             "test-bad-facts": "tests.plugin_backends:BAD_FACTS"}
    for name, target in added.items():
        backends.register(name, target)
    yield list(added)
    for name in added:
        backends.unregister(name)


def default_sigint() -> None:
    """``preexec_fn`` for children a test interrupts: Ctrl-C handled as in a terminal.

    A shell starts background jobs (CI's, for one) with SIGINT ignored, children inherit
    that, and Python then never raises KeyboardInterrupt: the test would prove nothing.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
