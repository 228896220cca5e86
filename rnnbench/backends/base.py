"""The one small interface every way of executing a cell implements.

A backend turns a cell's :class:`~rnnbench.cells.Weights` into a :class:`Prepared`
executable once (quantize, compile, generate keys: timed separately), then the
runner times ``Prepared.run`` on batches of sequences. Backends know nothing about
the grid, the runner or the results store.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rnnbench.cells import Weights


class Unsupported(Exception):
    """This backend cannot run this point; the point is recorded with status ``skipped``."""


class InvalidParams(ValueError):
    """Backend parameters that can never work (e.g. an insecure CKKS modulus); refused up front."""


class Prepared(ABC):
    """A cell made ready to run by one backend."""

    @abstractmethod
    def run(self, x: np.ndarray) -> np.ndarray:
        """Run sequences ``x`` [T, B, I] float32 from a zero state; return outputs [T, B, H]."""

    def facts(self) -> dict[str, Any]:
        """Non-timing columns for the results rows (counters, quantization error, ...).

        Called after the timed runs, so a backend may report what it counted while running.
        Keys must be columns of :data:`rnnbench.results.store.SCHEMA`.
        """
        return {}


class Backend(ABC):
    """A way of executing cells: ``float``, ``torch``, ``onnxruntime``, ..."""

    name: str = ""
    description: str = ""
    # False where the backend's library misbehaves in a process forked after it was
    # imported; the runner then starts that point in a fresh interpreter instead.
    fork_safe: bool = True
    # The Python interpreter this backend's point children run in (another virtual
    # environment, e.g. TFHE's with NumPy < 2); None: this interpreter. The runner then
    # starts that interpreter and exchanges plain data with it (see rnnbench.runner).
    interpreter: str | None = None
    # Upper bounds on the runner's samples per point, for backends whose single run takes
    # seconds (e.g. {"warmup": 0, "repeats": 2}); empty: the sweep's settings apply as given.
    sample_cap: Mapping[str, int] = {}
    # True where nothing warms up (no JIT, no caches) and one run takes seconds: the runner's
    # accuracy run (the first ever) then also counts as the first timed sample, unless
    # warm-up samples are asked for.
    first_run_is_sample: bool = False
    # Backends that fit something to the range of their inputs (CKKS polynomial intervals)
    # want a calibration sample of at least this many sequences, whatever the run's batch:
    # the largest input of one or a few sequences says little about the next ones.
    calibration_sequences: int = 0

    def eval_limit(self, params: Mapping[str, Any]) -> int | None:
        """Test items an accuracy point scores by default (the first ones); ``None``: all of them.

        Backends too slow for a whole test set score a sample (``--n-eval`` overrides).
        """
        return None

    def skip_reason(self, cell: str, params: Mapping[str, Any]) -> str | None:
        """``None`` when this backend runs ``cell``; otherwise why not (recorded as ``skipped``)."""
        return None

    def require_supported(self, cell: str, params: Mapping[str, Any]) -> None:
        """Raise :class:`Unsupported` with :meth:`skip_reason`'s reason (for ``prepare`` called directly)."""
        reason = self.skip_reason(cell, params)
        if reason:
            raise Unsupported(reason)

    def validate_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Check and normalise user-given parameters; raise :class:`InvalidParams` if they cannot work."""
        if params:
            raise InvalidParams(f"backend {self.name!r} takes no parameters, got {sorted(params)}")
        return {}

    def param_variants(self, given: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
        """The parameter sets to measure: the cross product of the user's values, validated.

        ``given`` maps a parameter name to the values asked for on the command line
        (``--param ckks.packing=batch,vector``); a backend may add defaults here.
        """
        keys = sorted(given)
        return [self.validate_params(dict(zip(keys, values, strict=True)))
                for values in itertools.product(*(given[k] for k in keys))]

    def check_cell(self, cell: str, params: Mapping[str, Any], seq_len: int) -> None:
        """Raise :class:`InvalidParams` if ``params`` cannot work for ``cell`` (e.g. too little CKKS depth).

        Called by the CLI before a sweep starts, so an impossible setting is refused up front.
        """
        return None

    @abstractmethod
    def prepare(
        self,
        weights: Weights,
        params: Mapping[str, Any],
        calibration: np.ndarray,
        threads: int = 1,
    ) -> Prepared:
        """Make ``weights`` ready to run on ``threads`` threads.

        ``calibration`` is a sample of inputs [T, B, I] of the shape that will be run.
        """

    def prepare_for(self, weights: Weights, params: Mapping[str, Any], calibration: np.ndarray,
                    batch_size: int, threads: int = 1) -> Prepared:
        """:meth:`prepare` for runs of ``batch_size`` sequences.

        ``calibration`` [T, N, I] may hold more sequences than a run (N >=
        :attr:`calibration_sequences`); by default a backend sees only the first ``batch_size``.
        """
        return self.prepare(weights, params, calibration[:, :batch_size], threads)
