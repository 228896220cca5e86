"""``ckks``: encrypted inference with the CKKS scheme (SEAL through TenSEAL).

Protocol (see docs/ckks.md): the client holds the inputs and the secret key, the server
holds the weights in plaintext and sees only ciphertexts. The client encrypts the input
sequences and a zero state; the server runs the cell step by step, sending each step's
output back; there is no bootstrapping, so every ``refresh_every`` steps the client
re-encrypts the state it has just received (a refresh round trip). ``Prepared.run`` does
all of it for a batch, each phase timed and every server operation counted.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np

from rnnbench.backends.base import Backend, Prepared
from rnnbench.backends.ckks import params as ckks_params
from rnnbench.backends.ckks import poly
from rnnbench.backends.ckks.he import Enc, EncOps, Engine
from rnnbench.backends.ckks.packing import PACKINGS
from rnnbench.cells import Weights
from rnnbench.cells.costs import elementwise_counts
from rnnbench.cells.reference import STEPS
from rnnbench.cells.weights import run_numpy
from rnnbench.results.stats import error_metrics

PHASES = ("encrypt", "eval", "refresh", "decrypt")


class EncryptedCell(Prepared):
    """A cell ready to run under CKKS: keys generated, polynomials fitted."""

    def __init__(self, weights: Weights, params: Mapping[str, Any], calibration: np.ndarray,
                 batch_size: int) -> None:
        self.weights = weights
        self.params = dict(params)
        self.polys = ckks_params.stand_ins(weights, params, calibration)
        self.setup = ckks_params.choose(weights.cell, params, calibration.shape[0], self.polys)
        self.packing = self._packing(params["packing"], batch_size)
        start = time.perf_counter()
        self.engine = Engine(self.setup, self.packing.rotation_steps())
        self.keygen_s = time.perf_counter() - start
        self.packing.encode_weights(self.engine)
        self.ops = EncOps(self.polys, self._refresh_value if self.setup.mid_step_refresh else None)
        self.times: Counter[str] = Counter()
        self.traffic: Counter[str] = Counter()
        self.runs = 0
        self.step_groups = 0  # (time step, ciphertext group) pairs evaluated
        self.refreshes = 0  # round trips
        self.mid_step_refreshes = 0  # values refreshed within steps (per unit in the batch packing)
        self.last: tuple[np.ndarray, np.ndarray] | None = None  # the newest run's inputs and outputs

    def _packing(self, name: str, batch: int):
        """The packing asked for, or (``auto``) the one whose step costs fewer key switches for ``batch``.

        Key switches (relinearisations and rotations) dominate CKKS evaluation: the batch
        packing pays ``H x`` a unit's products once per ciphertext of up to N/2 sequences,
        the vector packing one unit's products plus the rotations once per sequence.
        """
        if name != "auto":
            return PACKINGS[name](self.weights)
        slots = self.setup.poly_degree // 2

        def key_switches(packing) -> int:
            model = self.model_counts(packing)
            return (model["ct_ct_mul"] + model["rotations"]) * packing.evaluations(batch, slots)

        return min((cls(self.weights) for cls in PACKINGS.values()), key=key_switches)

    def _tick(self, phase: str, start: float) -> float:
        now = time.perf_counter()
        self.times[phase] += now - start
        return now

    def _send(self, direction: str, cts) -> None:
        self.traffic[direction] += sum(self.engine.nbytes(ct) for ct in cts)

    def run(self, x: np.ndarray) -> np.ndarray:
        seq_len, batch, _ = x.shape
        hidden, cell = self.weights.hidden_size, self.weights.cell
        out = np.empty((seq_len, batch, hidden))
        engine, packing = self.engine, self.packing
        lstm = cell == "lstm"
        for group in packing.groups(batch, engine.slots):
            xg = np.asarray(x[:, group], np.float64)
            size = xg.shape[1]
            clock = time.perf_counter()
            inputs = packing.encrypt_inputs(engine, xg)
            zeros = np.zeros((size, hidden))
            state = tuple(packing.encrypt_state(engine, zeros) for _ in range(2 if lstm else 1))
            clock = self._tick("encrypt", clock)
            for cts in inputs:
                self._send("to_server", cts)
            for part in state:
                self._send("to_server", part.cts)
            for t in range(seq_len):
                if t and t % self.setup.refresh_every == 0:
                    clock = time.perf_counter()
                    state = self._refresh(state, out[t - 1, group], size)
                    self._tick("refresh", clock)
                clock, refreshing = time.perf_counter(), self.times["refresh"]
                state = self.step(state, inputs[t])
                sent = [engine.mod_switch(ct, 0) for ct in state[0].cts]  # smallest form to send
                clock = self._tick("eval", clock)
                self.times["eval"] -= self.times["refresh"] - refreshing  # mid-step refreshes
                self._send("to_client", sent)
                out[t, group] = packing.decrypt_state(engine, Enc(engine, sent), size)
                self._tick("decrypt", clock)
                self.step_groups += packing.evaluations(size, engine.slots)
        self.runs += 1
        self.last = (np.asarray(x), out)
        return out.astype(np.float32)

    def step(self, state: tuple[Enc, ...], inputs: list) -> tuple[Enc, ...]:
        """One time step on the server: both matrix products, then the cell's own equations.

        The batch packing goes unit by unit (units are independent once the products are
        done), so only one unit's temporaries are alive at a time: at N=32768 a value of 32
        ciphertexts is 400 MB.
        """
        w, lstm = self.weights, self.weights.cell == "lstm"
        level = state[0].level - 1
        parts = []
        for unit in self.packing.units():
            gh = self.packing.project(self.engine, state[0].cts, w.weight_hh, w.bias_hh, level, unit)
            gi = self.packing.project(self.engine, inputs, w.weight_ih, w.bias_ih, level, unit)
            own = tuple(part.select(unit) for part in state)
            new = STEPS[w.cell](self.ops, gi, gh, own if lstm else own[0])
            parts.append(new if lstm else (new,))
        return tuple(Enc(self.engine, [ct for unit in parts for ct in unit[i].cts])
                     for i in range(len(state)))

    def _refresh(self, state: tuple[Enc, ...], h_values: np.ndarray, size: int) -> tuple[Enc, ...]:
        """The client re-encrypts the state at the top level; it already holds ``h`` (the output)."""
        engine, packing = self.engine, self.packing
        values = [h_values]
        for part in state[1:]:  # LSTM's c is not an output: the server sends it first
            sent = [engine.mod_switch(ct, 0) for ct in part.cts]
            self._send("to_client", sent)
            values.append(packing.decrypt_state(engine, Enc(engine, sent), size))
        fresh = tuple(packing.encrypt_state(engine, v) for v in values)
        for part in fresh:
            self._send("to_server", part.cts)
        self.refreshes += 1
        return fresh

    def _refresh_value(self, value: Enc) -> Enc:
        """A mid-step refresh: the client decrypts ``value`` and sends it back at the top level."""
        engine, clock = self.engine, time.perf_counter()
        sent = [engine.mod_switch(ct, 0) for ct in value.cts]
        self._send("to_client", sent)
        fresh = Enc(engine, [engine.encrypt(engine.decrypt(ct)) for ct in sent])
        self._send("to_server", fresh.cts)
        self.mid_step_refreshes += 1
        self._tick("refresh", clock)
        return fresh

    def model_counts(self, packing=None) -> dict[str, int]:
        """Cost model per step and ciphertext group: cell equations x polynomial structure x layout."""
        packing = packing or self.packing
        unit = elementwise_counts(self.weights.cell)
        width = self.weights.hidden_size if packing.name == "batch" else 1
        polys = self.polys
        return {
            "ct_ct_mul": width * (
                unit["data_mul"] + sum(unit[k] * poly.ct_mults(polys[k]) for k in poly.KINDS)),
            "ct_pt_mul": packing.model_pt_mults() + width * (
                unit["weight_mul"] + sum(unit[k] * poly.pt_mults(polys[k]) for k in poly.KINDS)),
            "rotations": packing.model_rotations(),
        }

    def counted(self) -> dict[str, float]:
        """Server operations per step and ciphertext group, as counted while running."""
        groups = max(self.step_groups, 1)
        return {k: v / groups for k, v in self.engine.counts.items()}

    def facts(self) -> dict[str, Any]:
        runs = max(self.runs, 1)
        counted = self.counted()
        facts: dict[str, Any] = {
            "ckks_keygen_s": self.keygen_s,
            **{f"ckks_{phase}_s": self.times[phase] / runs for phase in PHASES},
            "ckks_depth_per_step": ckks_params.levels_needed(self.weights.cell, self.polys, 1),
            # Round trips: step boundaries, plus each mid-step refresh site once per step (the
            # batch packing evaluates units one by one, but a site's units would travel together).
            "ckks_refreshes": round((self.refreshes + self.mid_step_refreshes / len(self.packing.units()))
                                    / runs),
            "ckks_packing": self.packing.name,
            **{f"ckks_{k}": round(counted.get(k, 0))
               for k in ("ct_ct_mul", "ct_pt_mul", "rotations", "additions")},
            "ckks_bytes_to_server": round(self.traffic["to_server"] / runs),
            "ckks_bytes_to_client": round(self.traffic["to_client"] / runs),
            "ckks_context_bytes": self.engine.context_bytes(),
            "ckks_poly_degree": self.setup.poly_degree,
            "ckks_scale_bits": self.setup.scale_bits,
            "ckks_coeff_modulus_bits": sum(self.setup.coeff_bits),
            "ckks_refresh_every": self.setup.refresh_every,
            "ckks_polys": json.dumps({k: p.describe() for k, p in self.polys.items()}),
        }
        if self.last is not None:
            x, out = self.last
            probe = poly.PlainOps(self.polys)
            plain = run_numpy(self.weights, x, probe)
            facts["ckks_out_of_range_frac"] = probe.outside / max(probe.evaluated, 1)
            facts["ckks_poly_max_abs_err"] = error_metrics(out, plain)["max_abs_err"]
        return facts


class CkksBackend(Backend):
    name = "ckks"
    description = "CKKS homomorphic encryption (SEAL via TenSEAL): batch or vector packing, client refreshes"
    # One encrypted run takes seconds to minutes and SEAL has nothing to warm up (no JIT, no
    # cache): the runner's accuracy run is the one timed sample.
    sample_cap = {"warmup": 0, "repeats": 1}
    first_run_is_sample = True
    # Polynomial intervals come from the largest inputs seen: 4096 sequences leave well under
    # 0.1% of inputs outside them (1 or 8 sequences, the run's own batch, left about 4%).
    calibration_sequences = 4096

    def eval_limit(self, params: Mapping[str, Any]) -> int | None:
        return 256

    def validate_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return ckks_params.validate(params)

    def check_cell(self, cell: str, params: Mapping[str, Any], seq_len: int) -> None:
        ckks_params.choose(cell, self.validate_params(params), seq_len)

    def prepare(self, weights: Weights, params: Mapping[str, Any], calibration: np.ndarray,
                threads: int = 1) -> Prepared:
        return self.prepare_for(weights, params, calibration, calibration.shape[1], threads)

    def prepare_for(self, weights: Weights, params: Mapping[str, Any], calibration: np.ndarray,
                    batch_size: int, threads: int = 1) -> Prepared:
        return EncryptedCell(weights, self.validate_params(params), calibration, batch_size)


BACKEND = CkksBackend()
