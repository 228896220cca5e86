"""A small CKKS evaluator on SEAL (TenSEAL's ``tenseal.sealapi`` bindings) with exact scales.

TenSEAL's high-level vectors rescale after every product and then overwrite the
ciphertext's scale with the nominal one, an error of ``|q_i / 2^bits - 1|`` per level,
and they expose no rotations by chosen steps. This evaluator keeps scales exact
instead: every level ``l`` has one canonical scale ``S[l]`` (``S[l-1] = S[l]^2 / q_l``),
products of canonical operands land on the canonical scale of the next level,
plaintexts are encoded at the scale that makes that true, and an operand with levels
to spare is brought down by a product with an encoded 1 (a "level adjust"). Additions
then never meet mismatched scales.

:class:`Enc` is one encrypted value of the cell equations: a list of ciphertexts that
all sit at the same level (one per hidden unit in the batch packing, one per sequence
in the vector packing), with Python operators, so the cell step functions of
:mod:`rnnbench.cells.equations` run on it unchanged. Every operation is counted.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
import tenseal.sealapi as seal

from rnnbench.backends.ckks.params import Setup
from rnnbench.backends.ckks.poly import StandIn, depth
from rnnbench.cells.equations import NonlinearityOps


def galois_element(step: int, poly_degree: int) -> int:
    """SEAL's Galois element of a left rotation by ``step`` slots."""
    return pow(3, step % (poly_degree // 2), 2 * poly_degree)


class Engine:
    """Keys (client side), evaluator (server side) and the per-level parameters of one context."""

    def __init__(self, setup: Setup, rotation_steps: Sequence[int] = ()) -> None:
        n = setup.poly_degree
        parms = seal.EncryptionParameters(seal.SCHEME_TYPE.CKKS)
        parms.set_poly_modulus_degree(n)
        parms.set_coeff_modulus(seal.CoeffModulus.Create(n, setup.coeff_bits))
        self.context = seal.SEALContext(parms, True, seal.SEC_LEVEL_TYPE.TC128)
        if not self.context.parameters_set():
            raise ValueError(f"SEAL refused the parameters: {self.context.parameters_error_message()}")
        self.setup = setup
        self.slots = n // 2
        keygen = seal.KeyGenerator(self.context)
        self.public_key = seal.PublicKey()
        keygen.create_public_key(self.public_key)
        self.relin_keys = seal.RelinKeys()
        keygen.create_relin_keys(self.relin_keys)
        self.galois_keys = seal.GaloisKeys()
        steps = sorted({s % self.slots for s in rotation_steps} - {0})
        if steps:
            keygen.create_galois_keys([galois_element(s, n) for s in steps], self.galois_keys)
        self.encryptor = seal.Encryptor(self.context, self.public_key)
        self.decryptor = seal.Decryptor(self.context, keygen.secret_key())
        self.encoder = seal.CKKSEncoder(self.context)
        self.evaluator = seal.Evaluator(self.context)

        self.parms_ids: dict[int, list[int]] = {}
        self.primes: dict[int, int] = {}
        data = self.context.first_context_data()
        while data is not None:
            level = data.chain_index()
            self.parms_ids[level] = data.parms_id()
            self.primes[level] = data.parms().coeff_modulus()[-1].value()
            data = data.next_context_data()
        self.top = max(self.parms_ids)
        self._level_of = {tuple(p): level for level, p in self.parms_ids.items()}
        self.scales = {self.top: 2.0 ** setup.scale_bits}
        for level in range(self.top, 0, -1):
            self.scales[level - 1] = self.scales[level] ** 2 / self.primes[level]
        self.counts: Counter[str] = Counter()
        self._bytes: dict[tuple[int, int], int] = {}

    # -- client side -------------------------------------------------------------------
    def encrypt(self, values: np.ndarray) -> seal.Ciphertext:
        """A fresh ciphertext of ``values`` (up to ``slots`` reals) at the top level."""
        plain = seal.Plaintext()
        self.encoder.encode(np.asarray(values, np.float64).tolist(), self.parms_ids[self.top],
                            self.scales[self.top], plain)
        ct = seal.Ciphertext()
        self.encryptor.encrypt(plain, ct)
        return ct

    def decrypt(self, ct: seal.Ciphertext) -> np.ndarray:
        plain = seal.Plaintext()
        self.decryptor.decrypt(ct, plain)
        return np.asarray(self.encoder.decode_double(plain))

    # -- bookkeeping -------------------------------------------------------------------
    def level(self, ct: seal.Ciphertext) -> int:
        """Rescaling levels ``ct`` has left (0: only the first prime remains)."""
        return self._level_of[tuple(ct.parms_id())]

    def nbytes(self, ct: seal.Ciphertext) -> int:
        """Serialized size of ``ct`` (SEAL's default compression), measured once per level and size."""
        key = (self.level(ct), ct.size())
        if key not in self._bytes:
            self._bytes[key] = saved_size(ct)
        return self._bytes[key]

    def context_bytes(self) -> int:
        """What the client sends the server once: parameters, relinearisation and Galois keys."""
        size = saved_size(self.relin_keys)
        if self.galois_keys.size():
            size += saved_size(self.galois_keys)
        return size + saved_size(self.context.key_context_data().parms())

    # -- primitives (counted) ------------------------------------------------------------
    def plain(self, value: float | Sequence[float], level: int, scale: float) -> seal.Plaintext:
        plain = seal.Plaintext()
        value = value if isinstance(value, float) else np.asarray(value, np.float64).tolist()
        self.encoder.encode(value, self.parms_ids[level], scale, plain)
        return plain

    def mod_switch(self, ct: seal.Ciphertext, level: int) -> seal.Ciphertext:
        if self.level(ct) == level:
            return ct
        out = seal.Ciphertext()
        self.evaluator.mod_switch_to(ct, self.parms_ids[level], out)
        return out

    def rescale(self, ct: seal.Ciphertext, scale: float) -> seal.Ciphertext:
        """Drop one level; ``scale`` is the exact scale the result has (set to remove float drift)."""
        out = seal.Ciphertext()
        self.evaluator.rescale_to_next(ct, out)
        assert abs(out.scale / scale - 1) < 1e-9, (out.scale, scale)
        out.scale = scale
        self.counts["rescales"] += 1
        return out

    def mul_plain(self, ct: seal.Ciphertext, plain: seal.Plaintext) -> seal.Ciphertext:
        out = seal.Ciphertext()
        self.evaluator.multiply_plain(ct, plain, out)
        self.counts["ct_pt_mul"] += 1
        return out

    def mul(self, a: seal.Ciphertext, b: seal.Ciphertext) -> seal.Ciphertext:
        """Product, not yet relinearised (3 parts): see :meth:`Enc.settle`."""
        out = seal.Ciphertext()
        self.evaluator.multiply(a, b, out)
        self.counts["ct_ct_mul"] += 1
        return out

    def relinearize(self, ct: seal.Ciphertext) -> seal.Ciphertext:
        self.evaluator.relinearize_inplace(ct, self.relin_keys)
        self.counts["relinearizations"] += 1
        return ct

    def add(self, a: seal.Ciphertext, b: seal.Ciphertext) -> seal.Ciphertext:
        out = seal.Ciphertext()
        self.evaluator.add(a, b, out)
        self.counts["additions"] += 1
        return out

    def accumulate(self, total: seal.Ciphertext, ct: seal.Ciphertext) -> seal.Ciphertext:
        """``total += ct`` in place (no new ciphertext): ``total`` must be a temporary of the caller's."""
        self.evaluator.add_inplace(total, ct)
        self.counts["additions"] += 1
        return total

    def sub(self, a: seal.Ciphertext, b: seal.Ciphertext) -> seal.Ciphertext:
        out = seal.Ciphertext()
        self.evaluator.sub(a, b, out)
        self.counts["additions"] += 1
        return out

    def add_plain(self, ct: seal.Ciphertext, plain: seal.Plaintext) -> seal.Ciphertext:
        out = seal.Ciphertext()
        self.evaluator.add_plain(ct, plain, out)
        self.counts["additions"] += 1
        return out

    def negate(self, ct: seal.Ciphertext) -> seal.Ciphertext:
        out = seal.Ciphertext()
        self.evaluator.negate(ct, out)
        self.counts["additions"] += 1
        return out

    def rotate(self, ct: seal.Ciphertext, step: int) -> seal.Ciphertext:
        """Left rotation by ``step`` slots (one key switch: a key exists for every step used)."""
        out = seal.Ciphertext()
        self.evaluator.rotate_vector(ct, step, self.galois_keys, out)
        self.counts["rotations"] += 1
        return out

    def lower(self, ct: seal.Ciphertext, level: int) -> seal.Ciphertext:
        """``ct`` (canonical scale) brought down to ``level`` with the canonical scale there."""
        have = self.level(ct)
        if have == level:
            return ct
        ct = self.mod_switch(ct, level + 1)
        one = self.plain(1.0, level + 1, self.scales[level] * self.primes[level + 1] / ct.scale)
        self.counts["level_adjusts"] += 1
        return self.rescale(self.mul_plain(ct, one), self.scales[level])


def saved_size(obj) -> int:
    """Bytes of ``obj.save`` (SEAL serializes to files only in these bindings)."""
    fd, path = tempfile.mkstemp(prefix="rnnbench-ckks-",
                                dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    os.close(fd)
    try:
        obj.save(path)
        return os.path.getsize(path)
    finally:
        os.unlink(path)


class Enc:
    """One encrypted value of the cell equations: same-level ciphertexts at the canonical scale.

    A product stays *pending* (neither relinearised nor rescaled) until it is used:
    pending values at the same level add up as they are, so a sum of products (GRU's
    ``(1 - z) n + z h``, LSTM's ``f c + i g``, or the two matrix products ``W_ih x + W_hh h``
    of a gate in the batch packing) costs one relinearisation and one rescale, not one per
    product. Products of canonical operands and plaintext products made for the next
    level's canonical scale have the same scale, so they mix. Relinearisation (of the
    3-part ciphertexts only) always comes before the rescale:
    rescaling a 3-part ciphertext would multiply its rounding noise by the secret key
    squared (errors of 1e-4 instead of 1e-7).
    """

    def __init__(self, engine: Engine, cts: list[seal.Ciphertext], pending: bool = False) -> None:
        self.engine, self._cts, self.pending = engine, cts, pending

    @property
    def cts(self) -> list[seal.Ciphertext]:
        """The ciphertexts, relinearised and rescaled (settling a pending product)."""
        if self.pending:
            engine = self.engine
            scale = engine.scales[self.level]
            self._cts = [engine.rescale(engine.relinearize(c) if c.size() > 2 else c, scale)
                         for c in self._cts]
            self.pending = False
        return self._cts

    @property
    def level(self) -> int:
        """Levels left (a pending product counts as rescaled already)."""
        return self.engine.level(self._cts[0]) - self.pending

    def _pending_with(self, other: object) -> bool:
        return (isinstance(other, Enc) and self.pending and other.pending
                and self.engine.level(self._cts[0]) == self.engine.level(other._cts[0]))

    def select(self, indices: list[int] | None) -> Enc:
        """The ciphertexts at ``indices`` (all of them for ``None``)."""
        return self if indices is None else Enc(self.engine, [self.cts[i] for i in indices])

    def _map(self, fn, *others: Enc) -> Enc:
        return Enc(self.engine, [fn(*cts) for cts in zip(self.cts, *(o.cts for o in others), strict=True)])

    def at(self, level: int) -> Enc:
        return self if self.level == level else self._map(lambda c: self.engine.lower(c, level))

    def _aligned(self, other: Enc) -> tuple[Enc, Enc]:
        level = min(self.level, other.level)
        return self.at(level), other.at(level)

    def _constant(self, value: float) -> seal.Plaintext:
        return self.engine.plain(float(value), self.level, self.engine.scales[self.level])

    def __add__(self, other: Enc | float) -> Enc:
        if self._pending_with(other):
            pairs = zip(self._cts, other._cts, strict=True)
            return Enc(self.engine, [self.engine.add(a, b) for a, b in pairs], pending=True)
        if isinstance(other, Enc):
            a, b = self._aligned(other)
            return a._map(self.engine.add, b)
        if other == 0:
            return self
        plain = self._constant(other)
        return self._map(lambda c: self.engine.add_plain(c, plain))

    __radd__ = __add__

    def __neg__(self) -> Enc:
        if self.pending:
            return Enc(self.engine, [self.engine.negate(c) for c in self._cts], pending=True)
        return self._map(self.engine.negate)

    def __sub__(self, other: Enc | float) -> Enc:
        if self._pending_with(other):
            pairs = zip(self._cts, other._cts, strict=True)
            return Enc(self.engine, [self.engine.sub(a, b) for a, b in pairs], pending=True)
        if isinstance(other, Enc):
            a, b = self._aligned(other)
            return a._map(self.engine.sub, b)
        return self + (-other)

    def __rsub__(self, other: float) -> Enc:
        return (-self) + other

    def __mul__(self, other: Enc | float) -> Enc:
        engine = self.engine
        if isinstance(other, Enc):
            a, b = self._aligned(other)
            return Enc(engine, [engine.mul(x, y) for x, y in zip(a.cts, b.cts, strict=True)], pending=True)
        level = self.level
        plain = engine.plain(float(other), level,
                             engine.scales[level - 1] * engine.primes[level] / engine.scales[level])
        return self._map(lambda c: engine.rescale(engine.mul_plain(c, plain), engine.scales[level - 1]))

    __rmul__ = __mul__


class EncOps(NonlinearityOps):
    """The ``ops`` namespace of the cell equations on :class:`Enc` values, with polynomial nonlinearities.

    With ``refresh`` (mid-step refreshes), a polynomial whose input lacks the levels it
    needs gets that input re-encrypted by the client first: the rule
    :class:`rnnbench.backends.ckks.params.LevelTracer` applies when choosing parameters.
    """

    def __init__(self, polys: dict[str, StandIn], refresh: Callable[[Enc], Enc] | None = None) -> None:
        self.polys, self.refresh = polys, refresh
        self.depths = {kind: depth(p) for kind, p in polys.items()}

    def apply(self, kind: str, x: Enc) -> Enc:
        if self.refresh is not None and x.level < self.depths[kind]:
            x = self.refresh(x)
        return self.polys[kind].evaluate(x)
