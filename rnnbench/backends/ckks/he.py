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
from rnnbench.backends.ckks.poly import Poly, _degree, _split, depth
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
        """Product, relinearised at once: rescaling a 3-part ciphertext would multiply its
        rounding noise by the secret key squared (errors of 1e-4 instead of 1e-7)."""
        out = seal.Ciphertext()
        self.evaluator.multiply(a, b, out)
        self.evaluator.relinearize_inplace(out, self.relin_keys)
        self.counts["ct_ct_mul"] += 1
        return out

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
    """One encrypted value of the cell equations: same-level ciphertexts at the canonical scale."""

    def __init__(self, engine: Engine, cts: list[seal.Ciphertext]) -> None:
        self.engine, self.cts = engine, cts

    @property
    def level(self) -> int:
        return self.engine.level(self.cts[0])

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
        if isinstance(other, Enc):
            a, b = self._aligned(other)
            return a._map(self.engine.add, b)
        if other == 0:
            return self
        plain = self._constant(other)
        return self._map(lambda c: self.engine.add_plain(c, plain))

    __radd__ = __add__

    def __neg__(self) -> Enc:
        return self._map(self.engine.negate)

    def __sub__(self, other: Enc | float) -> Enc:
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
            target = a.level - 1
            return a._map(lambda x, y: engine.rescale(engine.mul(x, y), engine.scales[target]), b)
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

    def __init__(self, polys: dict[str, Poly], refresh: Callable[[Enc], Enc] | None = None) -> None:
        self.polys, self.refresh = polys, refresh

    def apply(self, kind: str, x: Enc) -> Enc:
        p = self.polys[kind]
        if self.refresh is not None and x.level < depth(p):
            x = self.refresh(x)
        return evaluate(p, x)


def evaluate(p: Poly, x: Enc) -> Enc:
    """``p(x)`` at depth :func:`~rnnbench.backends.ckks.poly.depth`, on the canonical scale of its level.

    The leaves ``c0 + c1 u`` get ``c1 / a`` times ``x``. For the powers, ``u = x / a`` is
    normally a change of scale: the square of ``x`` is declared at ``a^2`` times its scale,
    so every higher power is ``u^(2^j)`` itself; on a wide interval (``p.prescaled``) ``u``
    is computed with a plaintext product instead. Each sub-polynomial is computed straight
    at the level and scale its consumer needs, so no product ever meets mismatched scales.
    """
    engine = x.engine

    def power(j: int) -> tuple[list[seal.Ciphertext], float]:
        while len(powers) <= j:
            cts, scale = powers[-1]
            level = engine.level(cts[0]) - 1
            squared = [engine.rescale(engine.mul(c, c), scale**2 / engine.primes[level + 1]) for c in cts]
            scale = scale**2 / engine.primes[level + 1] * (declared if len(powers) == 1 else 1.0)
            for c in squared:
                c.scale = scale
            powers.append((squared, scale))
        return powers[j]

    def product(cts: list[seal.Ciphertext], factor: float, level: int, scale: float) -> list:
        """``factor`` times ``cts`` (any scale, level above ``level``) at ``(level, scale)``."""
        src = [engine.mod_switch(c, level + 1) for c in cts]
        plain = engine.plain(float(factor), level + 1, scale * engine.primes[level + 1] / src[0].scale)
        return [engine.rescale(engine.mul_plain(c, plain), scale) for c in src]

    def plus_constant(cts: list, value: float, level: int, scale: float) -> list:
        if value == 0:
            return cts
        plain = engine.plain(float(value), level, scale)
        return [engine.add_plain(c, plain) for c in cts]

    def at(coeffs: tuple[float, ...], level: int, scale: float) -> list | float:
        """The sub-polynomial ``coeffs`` at ``(level, scale)``, or a float if it is constant."""
        deg = _degree(coeffs)
        if deg == 0:
            return float(coeffs[0])
        if deg == 1:
            linear = product(x.cts, coeffs[1] / p.half_width, level, scale)
            return plus_constant(linear, coeffs[0], level, scale)
        j, low, high = _split(coeffs)
        p_cts, p_scale = power(j)
        r_scale = scale * engine.primes[level + 1] / p_scale
        r = at(high, level + 1, r_scale)
        if isinstance(r, float):
            term = product(p_cts, r, level, scale) if r else None
        else:
            term = [engine.rescale(engine.mul(engine.mod_switch(pc, level + 1), rc), scale)
                    for pc, rc in zip(p_cts, r, strict=True)]
        q = at(low, level, scale)
        if term is None:
            return q
        if isinstance(q, float):
            return plus_constant(term, q, level, scale)
        return [engine.accumulate(a, b) for a, b in zip(term, q, strict=True)]

    if p.prescaled:
        below = x.level - 1
        u = (product(x.cts, 1.0 / p.half_width, below, engine.scales[below]), engine.scales[below])
        declared = 1.0  # the factor the square of the first power is declared at
    else:
        u, declared = (x.cts, engine.scales[x.level]), p.half_width**2
    powers: list[tuple[list[seal.Ciphertext], float]] = [u]
    target = x.level - depth(p)
    result = at(p.coeffs, target, engine.scales[target])
    if isinstance(result, float):  # a constant polynomial: an encryption-free constant is not an Enc
        raise ValueError(f"{p.kind} polynomial of degree 0 is not supported")
    return Enc(engine, result)
