"""The TFHE step circuit with Concrete; imported only in the TFHE environment (NumPy < 2).

One step of the cell (:func:`rnnbench.backends.tfhe.scheme.step`, the same code as the
cleartext reference) is traced on Concrete tracers and compiled once as a composable
module: its encrypted state output is wired back to its state input, so the server
applies it T times without the client (``mode=composed``). ``mode=unrolled`` compiles T
steps inline instead (its keys and compile time grow with T).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from concrete import fhe
from concrete.fhe.compilation.configuration import SecurityLevel
from concrete.fhe.representation import Graph

from rnnbench.backends.base import InvalidParams
from rnnbench.backends.tfhe import scheme
from rnnbench.backends.tfhe.scheme import TfheCell


class ConcreteEngine(scheme.Engine):
    """Table lookups, rounding and products on Concrete tracers."""

    def lookup(self, q, table):
        return fhe.univariate(table)(q)

    def lookup2(self, a, b, table):
        return fhe.multivariate(table)(a, b)

    def round(self, q, k):
        return fhe.round_bit_pattern(q, lsbs_to_remove=k)

    def hint(self, q, lo, hi):
        """Record the value's exact interval on its graph node (see :func:`_update_with_bounds`)."""
        node = q if q.last_version is None else q.last_version
        node.computation.properties[_BOUNDS] = (lo, hi)
        return q


_BOUNDS = "rnnbench_interval"
_measured_update = Graph.update_with_bounds


def _update_with_bounds(self: Graph, bounds: dict) -> None:
    """Concrete's bounds measured on the inputset, widened to each value's exact interval.

    Concrete sizes every value (bit width and sign) by the range it saw on the inputset;
    a value that the inputset does not drive to its extremes would overflow at run time.
    The scheme knows each value's exact interval, so that is what Concrete is given.
    """
    for node in bounds:
        interval = node.properties.get(_BOUNDS)
        if interval is not None:
            lo, hi = interval
            measured = bounds[node]
            bounds[node] = {"min": np.minimum(measured["min"], lo), "max": np.maximum(measured["max"], hi)}
    _measured_update(self, bounds)


Graph.update_with_bounds = _update_with_bounds


def configuration(params: dict[str, Any], simulate: bool) -> fhe.Configuration:
    return fhe.Configuration(
        global_p_error=params["global_p_error"],
        p_error=None,
        security_level=SecurityLevel(params["security"]),
        fhe_simulation=simulate,
        fhe_execution=not simulate,
        detect_overflow_in_simulation=simulate,
        show_progress=False,
        show_statistics=False,
        dataflow_parallelize=False,
        auto_parallelize=False,
    )


def _inputset(qc: TfheCell, batch: int, trajectory: Sequence[tuple[np.ndarray, ...]]) -> list[tuple]:
    """Samples that reach every value's extremes (worst-case signs per row) plus a calibration trajectory.

    The intervals of :mod:`.scheme` are exact for the projections; Concrete measures the
    bounds on this set, and the hints carry the computed widths where a sample cannot reach them.
    """
    h_count = qc.state_inputs
    rows = []
    for proj_ih, proj_hh in [(qc.input_proj, qc.recurrent_proj)]:
        for r in range(proj_ih.weight.shape[0]):
            for sign in (1, -1):
                x = sign * np.sign(proj_ih.weight[r]) * qc.qmax
                h = sign * np.sign(proj_hh.weight[r]) * qc.qmax
                rows.append((x.astype(np.int64), *([h.astype(np.int64)] * h_count)))
    rng = np.random.default_rng(0)
    for _ in range(16):
        rows.append((rng.integers(-qc.qmax, qc.qmax + 1, qc.input_size),
                     *(rng.integers(-qc.qmax, qc.qmax + 1, qc.hidden_size) for _ in range(h_count))))
    samples = [tuple(np.stack([rows[(i + b) % len(rows)][j] for b in range(batch)])
                     for j in range(1 + h_count))
               for i in range(0, len(rows), max(batch, 1))]
    samples.extend(tuple(np.asarray(v, np.int64) for v in s) for s in trajectory)
    return samples


@contextlib.contextmanager
def _no_parameters_is_bad_input(params: dict[str, Any]) -> Iterator[None]:
    """Concrete finding no cryptographic parameters: one line that says which knobs help.

    Wide accumulators with large clear weights amplify the noise a lookup must tolerate; past
    what any parameter set achieves at ``global_p_error``, Concrete stops with a long message.
    """
    try:
        yield
    except RuntimeError as exc:
        text = str(exc)
        if "Unfeasible noise constraint" not in text and "NoParametersFound" not in text:
            raise
        raise InvalidParams(
            f"tfhe: Concrete finds no parameters for this circuit at global_p_error="
            f"{params['global_p_error']:g} (weight_bits={params['weight_bits']}, "
            f"act_bits={params['act_bits']}): lower tfhe.weight_bits or tfhe.act_bits") from None


def compile_step(qc: TfheCell, batch: int, params: dict[str, Any], simulate: bool,
                 trajectory: Sequence[tuple[np.ndarray, ...]] = ()) -> fhe.Module:
    """The composable module: ``step(x, h[, s]) -> h[, s]`` with the state outputs wired to its inputs."""
    engine = ConcreteEngine()
    if qc.state_inputs == 2:
        @fhe.module()
        class Step2:
            @fhe.function({"x": "encrypted", "h": "encrypted", "s": "encrypted"})
            def step(x, h, s):
                return scheme.step(scheme.make_ops(qc, engine), qc, x, (h, s))

            composition = fhe.Wired({fhe.Wire(fhe.Output(step, 0), fhe.Input(step, 1)),
                                     fhe.Wire(fhe.Output(step, 1), fhe.Input(step, 2))})

        module = Step2
    else:
        @fhe.module()
        class Step1:
            @fhe.function({"x": "encrypted", "h": "encrypted"})
            def step(x, h):
                return scheme.step(scheme.make_ops(qc, engine), qc, x, (h,))[0]

            composition = fhe.Wired({fhe.Wire(fhe.Output(step, 0), fhe.Input(step, 1))})

        module = Step1
    with _no_parameters_is_bad_input(params):
        return module.compile({"step": _inputset(qc, batch, trajectory)}, configuration(params, simulate))


def compile_unrolled(qc: TfheCell, batch: int, seq_len: int, params: dict[str, Any], simulate: bool,
                     trajectory: Sequence[tuple[np.ndarray, ...]] = ()) -> fhe.Circuit:
    """T steps inline in one circuit: inputs ``x`` [T, B, I]; outputs every step's ``h`` [T, B, H]."""
    engine = ConcreteEngine()

    @fhe.compiler({"x": "encrypted"})
    def unrolled(x):
        ops = scheme.make_ops(qc, engine)
        state = tuple(fhe.zeros((batch, qc.hidden_size)) for _ in range(qc.state_inputs))
        outs = []
        for t in range(seq_len):
            state = scheme.step(ops, qc, x[t], state)
            outs.append(state[0])
        return fhe.array(outs)

    rng = np.random.default_rng(0)
    inputset = [rng.integers(-qc.qmax, qc.qmax + 1, (seq_len, batch, qc.input_size)) for _ in range(32)]
    inputset += [np.full((seq_len, batch, qc.input_size), s * qc.qmax) for s in (1, -1)]
    with _no_parameters_is_bad_input(params):
        return unrolled.compile(inputset, configuration(params, simulate))


def _tuple(result: Any) -> tuple:
    """A module function's result as a tuple (one output comes back bare)."""
    return result if isinstance(result, tuple) else (result,)


class StepRunner:
    """A compiled step (or unrolled sequence) with its keys: encrypts, runs, decrypts; times each phase.

    Keys are generated once here and reused by every run.
    """

    def __init__(self, compiled: Any, qc: TfheCell, simulate: bool, mode: str = "composed") -> None:
        self.compiled, self.qc, self.simulate, self.mode = compiled, qc, simulate, mode
        self.keygen_s = 0.0
        if not simulate:
            start = time.perf_counter()
            compiled.keygen()
            self.keygen_s = time.perf_counter() - start
        self.times = {"encrypt": 0.0, "eval": 0.0, "decrypt": 0.0}
        self.steps = 0
        self.seq_len = 0

    def run(self, xq: np.ndarray) -> np.ndarray:
        """Integers ``xq`` [T, B, I] -> hidden states [T, B, H] (integers at ``frac_h``)."""
        self.seq_len = xq.shape[0]
        out = self._unrolled(xq) if self.mode == "unrolled" else self._composed(xq)
        self.steps += xq.shape[0]
        return out

    def _tick(self, phase: str, start: float) -> float:
        now = time.perf_counter()
        self.times[phase] += now - start
        return now

    def _unrolled(self, xq: np.ndarray) -> np.ndarray:
        circuit = self.compiled
        if self.simulate:
            return np.asarray(circuit.simulate(xq), np.int64)
        clock = time.perf_counter()
        encrypted = circuit.encrypt(xq)
        clock = self._tick("encrypt", clock)
        result = circuit.run(encrypted)
        clock = self._tick("eval", clock)
        out = np.asarray(circuit.decrypt(result), np.int64)
        self._tick("decrypt", clock)
        return out

    def _composed(self, xq: np.ndarray) -> np.ndarray:
        step = self.compiled.step
        seq_len, batch, _ = xq.shape
        n_state = self.qc.state_inputs
        zeros = np.zeros((batch, self.qc.hidden_size), np.int64)
        out = np.empty((seq_len, batch, self.qc.hidden_size), np.int64)
        if self.simulate:
            state: tuple = (zeros,) * n_state
            for t in range(seq_len):
                state = _tuple(step.simulate(xq[t], *state))
                out[t] = state[0]
            return out
        clock = time.perf_counter()
        state = tuple(step.encrypt(None, *([zeros] * n_state))[1:])
        clock = self._tick("encrypt", clock)
        for t in range(seq_len):
            x_enc = step.encrypt(xq[t], *([None] * n_state))[0]
            clock = self._tick("encrypt", clock)
            state = _tuple(step.run(x_enc, *state))
            clock = self._tick("eval", clock)
            out[t] = step.decrypt(state[0])
            clock = self._tick("decrypt", clock)
        return out

    def _target(self) -> Any:
        return self.compiled.step if self.mode == "composed" else self.compiled

    def statistics(self) -> dict[str, Any]:
        return dict(self._target().statistics)

    def p_error(self) -> float:
        return float(self.compiled.p_error)

    def global_p_error(self) -> float:
        return float(self.compiled.global_p_error)

    def crypto_parameters(self) -> dict[str, Any]:
        def get(p: Any, name: str) -> int:  # attributes in simulation, methods with keys
            v = getattr(p, name)
            return int(v() if callable(v) else v)

        """The bootstrap parameters in use (the largest, by PBS count) and all of them as JSON."""
        per_param = self.statistics().get("programmable_bootstrap_count_per_parameter", {})
        keyswitch = self.statistics().get("key_switch_count_per_parameter", {})
        if not per_param:
            return {}
        main = max(per_param, key=lambda p: (get(p, "polynomial_size") * get(p, "glwe_dimension"),
                                             per_param[p]))
        return {
            "tfhe_lwe_dimension": get(main, 'input_lwe_dimension'),
            "tfhe_glwe_dimension": get(main, 'glwe_dimension'),
            "tfhe_polynomial_size": get(main, 'polynomial_size'),
            "tfhe_pbs_levels": get(main, 'level'),
            "tfhe_ks_levels": max((get(k, 'level') for k in keyswitch), default=None),
            "tfhe_crypto_params": json.dumps([
                {"pbs": int(n), "lwe_dimension": get(p, 'input_lwe_dimension'),
                 "glwe_dimension": get(p, 'glwe_dimension'), "polynomial_size": get(p, 'polynomial_size'),
                 "level": get(p, 'level'), "base_log": get(p, 'base_log')} for p, n in per_param.items()]),
        }
