"""``tfhe``: encrypted inference with TFHE (Zama's Concrete), in its own interpreter.

Concrete 2.11 needs NumPy < 2 and the rest of rnnbench NumPy >= 2, so this backend's
points run in the interpreter of ``.venv-tfhe`` (``make tfhe-env``): the runner starts
that interpreter for the point's child and exchanges plain data with it
(:attr:`Backend.interpreter`). The main environment never imports Concrete: this module
and :mod:`.scheme` are NumPy-only; :mod:`.circuit` is imported only inside the child.

Protocol (see docs/tfhe.md): the client holds the secret key, encrypts each step's
input ``x_t`` and a zero state; the server holds the clear integer weights and the
evaluation keys and applies one compiled step circuit T times to its own encrypted
output (``mode=composed``), returning each step's encrypted ``h`` for the client to
decrypt.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rnnbench.backends.base import Backend, InvalidParams, Prepared
from rnnbench.backends.tfhe import scheme
from rnnbench.cells import Weights

REPO_ROOT = Path(__file__).resolve().parents[3]
ENV_COMMAND = "make tfhe-env"
# Keys past this estimate are refused before key generation: the machine has 24 GiB, and a
# point's peak memory was 1.7x its keys (7.8 GB of keys, 13.5 GB resident; GRU, H=4, I=16,
# default widths), so 10 GiB of keys is about the most that fits beside the rest.
DEFAULT_MAX_KEY_BYTES = 10 * 2**30
DEFAULTS: dict[str, Any] = {
    "weight_bits": 5, "act_bits": 5, "form": "literal", "mode": "composed", "security": 128,
    "global_p_error": 1e-5, "max_key_gb": DEFAULT_MAX_KEY_BYTES / 2**30, "simulate": False,
}
MODES = ("composed", "unrolled")


def interpreter_path() -> Path:
    """The TFHE environment's Python (``RNNBENCH_TFHE_PYTHON`` overrides ``.venv-tfhe``)."""
    return Path(os.environ.get("RNNBENCH_TFHE_PYTHON", REPO_ROOT / ".venv-tfhe" / "bin" / "python"))


def validate(params: Mapping[str, Any]) -> dict[str, Any]:
    """Params with defaults filled in; one-line :class:`InvalidParams` for anything that cannot work."""
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        raise InvalidParams(f"unknown tfhe parameter(s) {unknown}; valid: {sorted(DEFAULTS)}")
    p = {**DEFAULTS, **params}
    try:
        p["weight_bits"], p["act_bits"], p["security"] = (int(p["weight_bits"]), int(p["act_bits"]),
                                                          int(p["security"]))
        p["global_p_error"], p["max_key_gb"] = float(p["global_p_error"]), float(p["max_key_gb"])
    except ValueError as exc:
        raise InvalidParams(f"tfhe: {exc}") from None
    p["simulate"] = str(p["simulate"]).lower() in ("1", "true", "yes")
    if p["security"] < 128:
        raise InvalidParams(f"tfhe.security={p['security']} is insecure; "
                            "rnnbench runs TFHE at 128 bits or more")
    if p["security"] not in (128, 132):
        raise InvalidParams(f"tfhe.security={p['security']}: Concrete offers 128 or 132")
    if not 2 <= p["weight_bits"] <= 8:
        raise InvalidParams(f"tfhe.weight_bits={p['weight_bits']}: use 2 to 8")
    if not p["act_bits"] >= 2 or p["act_bits"] + scheme.LUT_EXTRA_BITS > scheme.MAX_LOOKUP_BITS:
        raise InvalidParams(f"tfhe.act_bits={p['act_bits']}: lookups would exceed "
                            f"{scheme.MAX_LOOKUP_BITS} bits (Concrete's limit); use 2 to "
                            f"{scheme.MAX_LOOKUP_BITS - scheme.LUT_EXTRA_BITS}")
    if p["form"] not in scheme.FORMS:
        raise InvalidParams(f"tfhe.form={p['form']!r}; valid: {', '.join(scheme.FORMS)}")
    if p["mode"] not in MODES:
        raise InvalidParams(f"tfhe.mode={p['mode']!r}; valid: {', '.join(MODES)}")
    if not 0 < p["global_p_error"] < 0.5:
        raise InvalidParams(f"tfhe.global_p_error={p['global_p_error']}: must be in (0, 0.5)")
    return p


class EncryptedCell(Prepared):
    """A quantized cell compiled to a TFHE step circuit, keys generated (unless simulating)."""

    def __init__(self, weights: Weights, params: dict[str, Any], calibration: np.ndarray,
                 batch: int) -> None:
        from rnnbench.backends.tfhe import circuit  # only ever in the TFHE environment

        self.params = params
        self.qc = scheme.quantize(weights, calibration, params["weight_bits"], params["act_bits"],
                                  params["form"])
        self.model = scheme.analyse(self.qc, batch)
        scheme.check_widths(self.model)
        simulate = params["simulate"]
        start = time.perf_counter()
        if params["mode"] == "composed":
            compiled = circuit.compile_step(self.qc, batch, params, simulate)
        else:
            compiled = circuit.compile_unrolled(self.qc, batch, calibration.shape[0], params, simulate)
        self.compile_s = time.perf_counter() - start
        self.key_bytes = (int(compiled.size_of_bootstrap_keys), int(compiled.size_of_keyswitch_keys))
        key_bytes = sum(self.key_bytes)
        if not simulate and key_bytes > params["max_key_gb"] * 2**30:
            raise InvalidParams(f"tfhe: keys would take {key_bytes / 2**30:.1f} GiB, over the limit of "
                                f"{params['max_key_gb']:g} GiB (tfhe.max_key_gb)")
        self.runner = circuit.StepRunner(compiled, self.qc, simulate, params["mode"])
        self.stats = self.runner.statistics()
        self.runs = 0
        self.last: tuple[np.ndarray, np.ndarray] | None = None

    def run(self, x: np.ndarray) -> np.ndarray:
        xq = scheme.quantize_inputs(x, self.qc)
        out = self.runner.run(xq)
        self.runs += 1
        self.last = (np.asarray(x), out)
        return scheme.dequantize(out, self.qc)

    def facts(self) -> dict[str, Any]:
        steps = max(self.runner.steps, 1)
        stats = self.stats
        pbs = stats.get("programmable_bootstrap_count", 0)
        facts: dict[str, Any] = {
            "tfhe_form": self.qc.form,
            "tfhe_mode": self.params["mode"],
            "tfhe_simulated": self.params["simulate"],
            "tfhe_weight_bits": self.qc.weight_bits,
            "tfhe_act_bits": self.qc.act_bits,
            "tfhe_compile_s": self.compile_s,
            "tfhe_keygen_s": self.runner.keygen_s,
            "tfhe_bootstrap_key_bytes": self.key_bytes[0],
            "tfhe_keyswitch_key_bytes": self.key_bytes[1],
            **{f"tfhe_{phase}_s": self.runner.times[phase] / steps
               for phase in ("encrypt", "eval", "decrypt")},
            # Concrete counts the circuit it compiled: one step (composed) or all T (unrolled).
            "tfhe_pbs_per_step": pbs if self.params["mode"] == "composed"
            else pbs / max(self.runner.seq_len, 1),
            "tfhe_pbs_model": self.model.pbs_count(),
            "tfhe_lut_bits_hist": json.dumps(self.model.lookup_histogram()),
            "tfhe_max_lut_bits": max([*self.model.lookup_histogram(), 0]),
            "tfhe_max_value_bits": self.model.max_value_bits,
            **self.runner.crypto_parameters(),
            "tfhe_global_p_error": self.runner.global_p_error(),
            "tfhe_p_error": self.runner.p_error(),
            "tfhe_security_bits": self.params["security"],
        }
        if self.last is not None:
            x, out = self.last
            facts["tfhe_mismatches"] = int(np.count_nonzero(out != scheme.run_reference(self.qc, x)))
        return facts


class TfheBackend(Backend):
    name = "tfhe"
    description = "TFHE homomorphic encryption (Concrete): quantized cells, lookups as PBS, composable step"
    # One encrypted run takes seconds to minutes and nothing warms up: the accuracy run is the sample.
    sample_cap = {"warmup": 0, "repeats": 1}
    first_run_is_sample = True
    fork_safe = False
    # The saturating scales are fitted to the calibration inputs (scheme.calibrate): a few
    # sequences would fit them to those; the circuit itself is compiled for the run's batch.
    calibration_sequences = 512

    def eval_limit(self, params: Mapping[str, Any]) -> int | None:
        """Simulation scores the whole test set; real encryption one circuit over the first 8 items
        (keys and PBS grow with them)."""
        return None if validate(params)["simulate"] else 8

    @property
    def interpreter(self) -> str:
        return str(interpreter_path())

    def skip_reason(self, cell: str, params: Mapping[str, Any]) -> str | None:
        if not interpreter_path().exists():
            return f"the TFHE environment is missing ({interpreter_path()}): run `{ENV_COMMAND}`"
        return None

    def validate_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return validate(params)

    def check_cell(self, cell: str, params: Mapping[str, Any], seq_len: int) -> None:
        validate(params)

    def prepare(self, weights: Weights, params: Mapping[str, Any], calibration: np.ndarray,
                threads: int = 1) -> Prepared:
        return self.prepare_for(weights, params, calibration, calibration.shape[1], threads)

    def prepare_for(self, weights: Weights, params: Mapping[str, Any], calibration: np.ndarray,
                    batch_size: int, threads: int = 1) -> Prepared:
        return EncryptedCell(weights, validate(params), calibration, batch_size)


BACKEND = TfheBackend()
