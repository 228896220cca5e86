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
        self.relin_keys = seal.RelinKeys()
        keygen.create_relin_keys(self.relin_keys)
        self.galois_keys = seal.GaloisKeys()
        steps = sorted({s % self.slots for s in rotation_steps} - {0})
        if steps:
            keygen.create_galois_keys([galois_element(s, n) for s in steps], self.galois_keys)
        # The client that encrypts holds the secret key: symmetric encryption (no public key;
        # measured 2x faster than public-key encryption, and as secure).
        self.encryptor = seal.Encryptor(self.context, keygen.secret_key())
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
        self.encryptor.encrypt_symmetric(plain, ct)
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
        if a is b:
            self.evaluator.square(a, out)  # 3 polynomial products instead of 4
        else:
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
        self._switched: dict[int, list[seal.Ciphertext]] = {}

    def switched(self, level: int) -> list[seal.Ciphertext]:
        """The ciphertexts mod-switched down to ``level`` (same scale), once per level."""
        if level == self.level:
            return self.cts
        if level not in self._switched:
            self._switched[level] = [self.engine.mod_switch(ct, level) for ct in self.cts]
        return self._switched[level]

    @property
    def cts(self) -> list[seal.Ciphertext]:
        """The ciphertexts, relinearised and rescaled (settling a pending product)."""
        return self.settle()._cts

    def settle(self) -> Enc:
        """This value with a pending product relinearised and rescaled (itself)."""
        if self.pending:
            engine = self.engine
            scale = engine.scales[self.level]
            self._cts = [engine.rescale(engine.relinearize(c) if c.size() > 2 else c, scale)
                         for c in self._cts]
            self.pending = False
        return self

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

    def __add__(self, other: Enc | LinComb | Sum | float) -> Enc | LinComb | Sum:
        if isinstance(other, LinComb | Sum):
            return other + self
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

    def __sub__(self, other: Enc | LinComb | float) -> Enc | LinComb:
        if isinstance(other, Sum):
            other = other.settled()
        if isinstance(other, LinComb):
            return -other + self
        if self._pending_with(other):
            pairs = zip(self._cts, other._cts, strict=True)
            return Enc(self.engine, [self.engine.sub(a, b) for a, b in pairs], pending=True)
        if isinstance(other, Enc):
            a, b = self._aligned(other)
            return a._map(self.engine.sub, b)
        return self + (-other)

    def __rsub__(self, other: float) -> Enc:
        return (-self) + other

    def __mul__(self, other: Enc | LinComb | float) -> Enc | LinComb | float:
        engine = self.engine
        if isinstance(other, Sum):
            other = other.settled()
        if isinstance(other, LinComb):
            return other * self
        if isinstance(other, Enc):
            a, b = self._aligned(other)
            return Enc(engine, [engine.mul(x, y) for x, y in zip(a.cts, b.cts, strict=True)], pending=True)
        return LinComb.of(self, float(other))

    __rmul__ = __mul__


class LinComb:
    """``sum c_i v_i + const`` over :class:`Enc` values, computed only when a consumer needs it.

    A scalar product computed at once (plaintext product, rescale) lands one level below
    its operand, and a sum of such products from different levels then needs a "level
    adjust" (a product with 1 and a rescale) for each higher term. Deferred, the
    combination is computed where its consumer is, in one go: each term is mod-switched
    (dropping primes: no product) to one level above the target and multiplied by its
    coefficient encoded at the scale that lands it on the target's scale, the products
    are summed and rescaled once. A product with a ciphertext ``e`` of more levels
    needs no adjust either: ``e`` is mod-switched down and the combination computed at
    the scale that makes the product canonical (``S[m]^2 / e.scale``). A sum with a
    ciphertext of more levels than the combination takes it in as a term (coefficient 1);
    one of fewer levels (or a pending product) gets the combination computed at its level.
    So Paterson-Stockmeyer leaves, ``x / a`` and sums of scaled values cost one rescale.
    :attr:`level` is where the level tracer puts the value, so depth is unchanged.
    """

    def __init__(self, engine: Engine, terms: list[tuple[Enc, float]], const: float = 0.0,
                 sums: dict[int, Enc] | None = None) -> None:
        self.engine, self.terms, self.const = engine, terms, const
        # ``sum c_i v_i`` (without ``const``) per level computed: shared by combinations that
        # differ only in ``const`` (clip's ``relu(u + 1) - relu(u - 1)``).
        self._sums = {} if sums is None else sums

    @staticmethod
    def of(value: Enc, coeff: float) -> LinComb | float:
        return LinComb(value.engine, [(value, coeff)]) if coeff != 0.0 else 0.0

    @property
    def level(self) -> int:
        """The highest level it can be computed at: one below its lowest term."""
        return min(v.level for v, _ in self.terms) - 1

    @property
    def cts(self) -> list[seal.Ciphertext]:
        return self.at(self.level).cts

    def at(self, level: int) -> Enc:
        """The combination computed at ``level`` with the canonical scale (the sum once per level)."""
        if level not in self._sums:
            self._sums[level] = Enc(self.engine, self._compute(level, self.engine.scales[level], const=False))
        return self._sums[level] + self.const

    def _compute(self, level: int, scale: float, pending: bool = False,
                 const: bool = True) -> list[seal.Ciphertext]:
        """Each term at ``level + 1``, times its coefficient, summed (plus ``const``): products of
        scale ``scale x q``, rescaled to ``level`` unless ``pending``."""
        engine = self.engine
        target = scale * engine.primes[level + 1]
        if self._sums:  # computed before at another level: these products replace level adjusts
            engine.counts["level_adjusts"] += len(self.terms)
        plains, sources = [], []
        for value, coeff in self.terms:
            cts = value.switched(level + 1)
            plains.append(engine.plain(coeff, level + 1, target / cts[0].scale))
            sources.append(cts)
        const = engine.plain(self.const, level + 1, target) if const and self.const != 0.0 else None
        out = []
        for i in range(len(sources[0])):
            acc = None
            for cts, plain in zip(sources, plains, strict=True):
                term = engine.mul_plain(cts[i], plain)
                acc = term if acc is None else engine.accumulate(acc, term)
            if const is not None:
                engine.evaluator.add_plain_inplace(acc, const)
                engine.counts["additions"] += 1
            out.append(acc if pending else engine.rescale(acc, scale))
        return out

    def _merged(self, terms: list[tuple[Enc, float]], const: float) -> LinComb | float:
        coeffs: dict[int, tuple[Enc, float]] = {}
        for value, coeff in self.terms + terms:
            held = coeffs.get(id(value))
            coeffs[id(value)] = (value, coeff + (held[1] if held else 0.0))
        kept = [(v, c) for v, c in coeffs.values() if c != 0.0]
        return LinComb(self.engine, kept, const) if kept else const

    def _scaled(self, k: float) -> LinComb | float:
        return LinComb(self.engine, [(v, c * k) for v, c in self.terms], self.const * k) if k != 0.0 else 0.0

    def _plus(self, other: Enc | LinComb | Sum | float, sign: float) -> Enc | LinComb | Sum | float:
        if isinstance(other, Sum):
            return other + self if sign > 0 else -other + self
        if isinstance(other, LinComb):
            return self._merged([(v, sign * c) for v, c in other.terms], self.const + sign * other.const)
        if not isinstance(other, Enc):
            return LinComb(self.engine, self.terms, self.const + sign * float(other), self._sums)
        if other.level > self.level:  # ``other`` has levels to spare: one more term, no adjust
            self.engine.counts["level_adjusts"] += 1
            return self._merged([(other, sign)], self.const)
        if other.pending:  # computed unrescaled at the product's level, added, rescaled together
            mine = Enc(self.engine, self._compute(other.level, self.engine.scales[other.level], True),
                       pending=True)
            return mine + other if sign > 0 else mine - other
        return self.at(other.level) + other if sign > 0 else self.at(other.level) - other

    def __add__(self, other: Enc | LinComb | float) -> Enc | LinComb | float:
        return self._plus(other, 1.0)

    __radd__ = __add__

    def __sub__(self, other: Enc | LinComb | float) -> Enc | LinComb | float:
        return self._plus(other, -1.0)

    def __rsub__(self, other: float) -> LinComb | float:
        return self._scaled(-1.0) + other

    def __neg__(self) -> LinComb | float:
        return self._scaled(-1.0)

    def __mul__(self, other: Enc | LinComb | float) -> Enc | LinComb | float:
        engine = self.engine
        if isinstance(other, LinComb):
            level = min(self.level, other.level)
            return self.at(level) * other.at(level)
        if isinstance(other, Sum):
            return self * other.settled()
        if not isinstance(other, Enc):
            return self._scaled(float(other))
        return Sum(engine, [(self, other)])

    def _product(self, other: Enc, level: int) -> list[seal.Ciphertext]:
        """``self x other`` not yet relinearised or rescaled, at ``level + 1`` (the product's level
        is ``level``): ``other`` mod-switched there, ``self`` computed at the scale that makes the
        product canonical (``S[level + 1]^2 / other.scale``)."""
        engine = self.engine
        theirs = other.switched(level + 1)
        mine = self._compute(level + 1, engine.scales[level + 1] ** 2 / theirs[0].scale)
        return [engine.mul(a, b) for a, b in zip(mine, theirs, strict=True)]

    __rmul__ = __mul__


class Sum:
    """``sum_j l_j e_j + r``: products of a :class:`LinComb` and a ciphertext, plus a combination,
    computed when a consumer needs them, all at one level, relinearised and rescaled once.

    Paterson-Stockmeyer's ``q T_G + r`` has ``r = q' T_g + r'`` one level above ``q T_G``:
    computed eagerly, ``r`` is relinearised and rescaled on its own and then lowered by a
    level adjust; deferred, ``q' T_g`` is computed at ``q T_G``'s level (``T_g`` mod-switched,
    ``q'`` at the scale that keeps the product canonical) and the two products share one
    relinearisation and one rescale (lazy relinearisation that fires). A sum used other than
    in another sum (a product, a polynomial's input, negated) is computed once, at its level.
    """

    def __init__(self, engine: Engine, products: list[tuple[LinComb, Enc]],
                 rest: LinComb | float = 0.0) -> None:
        self.engine, self.products, self.rest = engine, products, rest
        self._settled: Enc | None = None

    @property
    def level(self) -> int:
        rest = self.rest.level if isinstance(self.rest, LinComb) else 10**9
        return min([rest] + [min(lc.level, e.level) - 1 for lc, e in self.products])

    @property
    def pending(self) -> bool:
        return False

    def compute(self, level: int) -> Enc:
        """All of it at ``level`` (at most :attr:`level`), summed, not yet relinearised or rescaled."""
        engine = self.engine
        parts = [lc._product(e, level) for lc, e in self.products]
        if isinstance(self.rest, LinComb):
            parts.append(self.rest._compute(level, engine.scales[level], pending=True))
        total = parts[0]
        for part in parts[1:]:
            total = [engine.accumulate(a, b) for a, b in zip(total, part, strict=True)]
        value = Enc(engine, total, pending=True)
        if isinstance(self.rest, float) and self.rest != 0.0:
            plain = engine.plain(self.rest, level + 1, engine.scales[level] * engine.primes[level + 1])
            for ct in total:
                engine.evaluator.add_plain_inplace(ct, plain)
                engine.counts["additions"] += 1
        return value

    def settled(self) -> Enc:
        if self._settled is None:
            self._settled = self.compute(self.level).settle()
        return self._settled

    @property
    def cts(self) -> list[seal.Ciphertext]:
        return self.settled().cts

    def __add__(self, other: Enc | LinComb | Sum | float) -> Enc | Sum:
        engine = self.engine
        if isinstance(other, Sum):  # a product in both (``p + p``) is computed once, its factor added up
            products: dict[tuple[int, int], tuple[LinComb, Enc]] = {}
            for lc, e in self.products + other.products:
                held = products.get((id(lc), id(e)))
                products[id(lc), id(e)] = (lc if held is None else held[0] + lc, e)
            return Sum(engine, list(products.values()), self.rest + other.rest)
        if isinstance(other, LinComb | float | int):
            return Sum(engine, self.products, self.rest + other)
        if other.level > self.level:  # levels to spare: it joins the combination (no adjust)
            engine.counts["level_adjusts"] += 1
            return Sum(engine, self.products, LinComb(engine, [(other.settle(), 1.0)]) + self.rest)
        mine = self.compute(other.level)
        return mine + other if other.pending else mine.settle() + other

    __radd__ = __add__

    def __sub__(self, other: Enc | LinComb | Sum | float) -> Enc | Sum:
        if isinstance(other, Sum):
            other = other.settled()
        return self + (-other)

    def __rsub__(self, other: float) -> Enc | LinComb:
        return other - self.settled()

    def __neg__(self) -> Enc:
        return -self.settled()

    def __mul__(self, other: Enc | LinComb | Sum | float) -> Enc | LinComb | Sum:
        return self.settled() * other

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

    def apply(self, kind: str, x: Enc | LinComb) -> Enc | LinComb:
        if self.refresh is not None and x.level < self.depths[kind]:
            x = self.refresh(Enc(x.engine, x.cts))  # computed here (server time), then refreshed
        elif isinstance(x, Sum) or (isinstance(x, LinComb) and len(x.terms) > 1):
            x = x.at(x.level) if isinstance(x, LinComb) else x.settled()  # used many times: computed once
        return self.polys[kind].evaluate(x)
