"""The TFHE-quantized cells, written once for the cleartext reference and the Concrete circuit.

Nothing here imports Concrete: the same code runs in the main environment (NumPy 2, the
cleartext integer reference) and in the TFHE environment (NumPy 1, tracing the circuit).
The only difference between the two is the :class:`Engine`, which supplies the handful of
primitives that differ between plain integers and encrypted ones (a table lookup, a
two-input lookup, a rounding of low bits, a product of two values). Everything else,
including the cell's own equations from :mod:`rnnbench.cells.equations`, runs on
:class:`QValue`, so the circuit and the reference cannot drift apart.

The scheme (``A`` = ``act_bits``, ``W`` = ``weight_bits``):

- weights: per output row, symmetric, ``W`` bits with a power-of-two scale; the rows of one
  matrix are brought to a common scale by exact shifts (folded into the clear weights);
  biases are clear integers at the accumulator's scale (clear additions are free);
- inputs ``x`` and the state ``h``: ``A``-bit signed fixed point (``h`` with ``A - 1``
  fractional bits, ``x`` calibrated like the integer backend); LSTM's ``c`` has ``A`` bits
  and a calibrated scale;
- additions align to the finer of the two scales (an exact multiplication by a power of
  two, no bootstrap);
- every nonlinearity, rescale and saturation is one table lookup (one PBS per element); a
  lookup's input is first rounded (Concrete's ``round_bit_pattern``) to at most
  ``A + LUT_EXTRA_BITS`` bits;
- gates (sigmoid, tanh outputs) are ``A``-bit signed with ``A - 1`` fractional bits;
- a product of two encrypted values takes operands of at most ``A + 1`` bits (wider ones are
  narrowed to ``A`` bits by a rescaling lookup first) and is exact;
- calibrated scales: where a wide value is narrowed to ``A`` bits (a pre-activation entering a
  product or an inhibition; LSTM's ``c``), the scale is the power of two with the least squared
  error on the calibration inputs, saturation included (:func:`least_error_frac`). A lookup
  saturates for free, so clipping rare outliers buys resolution for the common values; the
  worst-case scale (no saturation at all) left pre-activations one to four bits coarser.

Bounds: every value carries its exact interval ``[lo, hi]`` (interval arithmetic through the
equations; a lookup's output interval is the table's range over its input interval), so the
bit width of every value is known before anything is compiled, and nothing can overflow.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnnbench.backends.base import InvalidParams
from rnnbench.backends.integer.quantize import finest_frac, float_ranges
from rnnbench.cells import equations
from rnnbench.cells.equations import GATES
from rnnbench.cells.weights import Weights

# A lookup's input is rounded to at most act_bits + this many bits (sign included).
LUT_EXTRA_BITS = 2
# Concrete compiles table lookups of at most 16 bits.
MAX_LOOKUP_BITS = 16
ACC_MAX_BITS = MAX_LOOKUP_BITS - 1  # accumulators: exact, so capped by the widest lookup
# Packed form: a product of two encrypted values, or an inhibition, is one two-input lookup
# when the packed operands fit this many bits; wider, the literal form (Concrete's
# multiplication: two PBS one bit wider; three narrower ReLU lookups) is cheaper.
PACKED_MAX_BITS = 8
FORMS = ("literal", "packed")
STEPS = {"gru": equations.gru_step, "lstm": equations.lstm_step, "reluadd": equations.reluadd_step}


def signed_bits(lo: int, hi: int) -> int:
    """Bits of the smallest integer type (signed if ``lo < 0``) holding ``[lo, hi]``, as in Concrete."""
    if lo >= 0:
        return max(int(hi).bit_length(), 1)
    return max(int(hi).bit_length(), int(-lo - 1).bit_length()) + 1


def shift_round(q: Any, s: int) -> Any:
    """``q * 2**-s`` rounded half up for ``s > 0``; exact ``q * 2**-s`` for ``s <= 0`` (plain ints only)."""
    if s > 0:
        return (q + (1 << (s - 1))) >> s
    return q * (1 << -s)


def round_low_bits(q: Any, k: int) -> Any:
    """Concrete's ``round_bit_pattern(q, k)``: ``q`` to the nearest multiple of ``2**k``, half up."""
    return shift_round(q, k) << k


class Engine:
    """The primitives that differ between clear integers and Concrete tracers."""

    def lookup(self, q: Any, table: Callable[[np.ndarray], np.ndarray]) -> Any:
        raise NotImplementedError

    def lookup2(self, a: Any, b: Any, table: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Any:
        raise NotImplementedError

    def round(self, q: Any, k: int) -> Any:
        raise NotImplementedError

    def multiply(self, a: Any, b: Any) -> Any:
        return a * b

    def hint(self, q: Any, lo: int, hi: int) -> Any:
        return q


class NumpyEngine(Engine):
    """Clear int64 arrays: the reference."""

    def lookup(self, q, table):
        return table(np.asarray(q, np.int64))

    def lookup2(self, a, b, table):
        return table(np.asarray(a, np.int64), np.asarray(b, np.int64))

    def round(self, q, k):
        return round_low_bits(np.asarray(q, np.int64), k)


@dataclass
class QValue:
    """An integer tensor (clear or encrypted) at ``frac`` fractional bits, with its exact interval."""

    q: Any
    frac: int
    lo: int
    hi: int
    ops: TfheOps
    product: bool = False  # the result of a product of two encrypted values
    node: int = -1  # its group in ops.widths (Concrete's bit-width assignment)

    @property
    def bits(self) -> int:
        return signed_bits(self.lo, self.hi)

    def _at(self, frac: int) -> QValue:
        """The same value at ``frac >= self.frac`` fractional bits (an exact clear multiplication)."""
        d = frac - self.frac
        if d == 0:
            return self
        m = 1 << d
        return self.ops.made(self.q * m, frac, self.lo * m, self.hi * m, self.product,
                             joins=(self.node, self.ops.constant(m)), uses=(self.node,))

    def _const(self, c: int) -> QValue:
        v = int(c) << max(self.frac, 0)
        return QValue(v, self.frac, v, v, self.ops, node=self.ops.constant(v))

    def _combine(self, other: QValue | int, sign: int) -> QValue:
        a = self if isinstance(other, QValue) or self.frac >= 0 else self._at(0)
        b = other if isinstance(other, QValue) else a._const(other)
        # Concrete gives the operands of an addition one bit width, also to the product that
        # made one of them; so a product never meets a wide value: that one is narrowed first.
        if a.product and not b.product:
            b = self.ops.narrow(b)
        elif b.product and not a.product:
            a = self.ops.narrow(a)
        frac = max(a.frac, b.frac)
        a, b = a._at(frac), b._at(frac)
        if sign > 0:
            q, lo, hi = a.q + b.q, a.lo + b.lo, a.hi + b.hi
        else:
            q, lo, hi = a.q - b.q, a.lo - b.hi, a.hi - b.lo
        return self.ops.made(q, frac, lo, hi, a.product or b.product, joins=(a.node, b.node),
                             uses=(a.node, b.node))

    def __add__(self, other: QValue | int) -> QValue:
        return self._combine(other, 1)

    __radd__ = __add__

    def __sub__(self, other: QValue | int) -> QValue:
        return self._combine(other, -1)

    def __rsub__(self, other: int) -> QValue:
        return (-self)._combine(other, 1)

    def __neg__(self) -> QValue:
        return self.ops.made(-self.q, self.frac, -self.hi, -self.lo, self.product, joins=(self.node,),
                             uses=(self.node,))

    def __mul__(self, other: QValue) -> QValue:
        return self.ops.product(self, other)


class Widths:
    """Concrete's bit-width assignment, reproduced: values tied by an operation share one width.

    Concrete (``AssignBitWidths``) ties the operands and result of additions, negations,
    clear multiplications, matrix products with clear weights, slices and roundings; the two
    operands of an encrypted product (each with a bit to spare); and a composed circuit's
    wired outputs to their inputs. A lookup's or a product's result starts a group of its
    own. Each group gets the widest width a member needs (the smallest assignment).
    """

    def __init__(self) -> None:
        self.parent: list[int] = []
        self.need: list[int] = []

    def new(self, bits: int) -> int:
        self.parent.append(len(self.parent))
        self.need.append(bits)
        return len(self.parent) - 1

    def find(self, n: int) -> int:
        while self.parent[n] != n:
            self.parent[n] = self.parent[self.parent[n]]
            n = self.parent[n]
        return n

    def join(self, *nodes: int) -> None:
        roots = {self.find(n) for n in nodes if n >= 0}
        if len(roots) > 1:
            root, *rest = roots
            for r in rest:
                self.parent[r] = root
                self.need[root] = max(self.need[root], self.need[r])

    def require(self, n: int, bits: int) -> None:
        r = self.find(n)
        self.need[r] = max(self.need[r], bits)

    def width(self, n: int) -> int:
        return self.need[self.find(n)]


def constant_bits(c: Any) -> int:
    """Bits of a clear constant (scalar or array) as Concrete types it."""
    c = np.asarray(c)
    return signed_bits(min(int(c.min()), 0), max(int(c.max()), 0))


def _table_of(values: np.ndarray, start: int, step: int) -> Callable[[np.ndarray], np.ndarray]:
    """A function on integers that are multiples of ``step`` from ``start`` on, given by ``values``."""
    last = len(values) - 1

    def table(q: np.ndarray) -> np.ndarray:
        index = np.clip((np.asarray(q, np.int64) - start) // step, 0, last)
        return values[index]

    return table


def _sigmoid(x: float) -> float:
    # Python's math (the C library), not NumPy's SIMD routines: the same table in both environments.
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


_REAL = {"sigmoid": _sigmoid, "tanh": math.tanh}


@dataclass
class TfheOps(equations.NonlinearityOps):
    """The ``ops`` namespace of :mod:`rnnbench.cells.equations` for :class:`QValue`.

    Records what it builds (``events``: lookups, roundings, products, two-input lookups, with
    the groups of their inputs in ``widths``), so the PBS of the compiled circuit and their
    widths are known from the trace alone (:meth:`pbs_count`, :meth:`lookup_histogram`):
    a lookup is one PBS per element; Concrete's exact rounding one PBS per element and
    removed bit (of the input's assigned width); an encrypted product two PBS per element;
    a two-input lookup three (each input cast, then the packed lookup).
    """

    engine: Engine
    act_bits: int
    form: str
    # Scales of the narrowing sites (wide values narrowed to act_bits, in the order a step
    # meets them; see :meth:`narrow`): calibrated by :func:`quantize`; a site past the end
    # (the calibration pass itself) gets the worst-case scale ``default_frac``.
    site_fracs: tuple[int, ...] = ()
    default_frac: int = 0
    site: int = 0  # the next site's index within the step being traced
    observed: dict | None = None  # calibration pass: site -> the real values met there
    widths: Widths = field(default_factory=Widths)
    events: list = field(default_factory=list)  # (kind, input node, elements, bits)
    rounded: dict = field(default_factory=dict)  # (node, bits removed) -> (rounded value, bits kept)
    reads: dict = field(default_factory=dict)  # node -> the nodes it is computed from
    outputs: list = field(default_factory=list)  # the circuit's output nodes
    inputs: list = field(default_factory=list)  # its state input nodes
    lookup_outputs: set = field(default_factory=set)  # nodes made by a table lookup
    max_value_bits: int = 0

    def __post_init__(self) -> None:
        if self.form == "packed":  # the override points of equations.inh / equations.clip
            self.inh = self._packed_inh
            self.clip = self._packed_clip

    @property
    def qmax(self) -> int:
        return (1 << (self.act_bits - 1)) - 1

    @property
    def gate_frac(self) -> int:
        return self.act_bits - 1

    def made(self, q: Any, frac: int, lo: int, hi: int, product: bool = False,
             joins: Sequence[int] = (), uses: Sequence[int] = ()) -> QValue:
        """A new value with exact interval ``[lo, hi]``: shares its width with ``joins``, reads ``uses``."""
        bits = signed_bits(lo, hi)
        self.max_value_bits = max(self.max_value_bits, bits)
        node = self.widths.new(bits)
        self.widths.join(node, *joins)
        self.reads[node] = tuple(uses)
        return QValue(self.engine.hint(q, lo, hi), frac, int(lo), int(hi), self, product, node)

    def value(self, q: Any, frac: int, bound: int) -> QValue:
        """An input of the circuit in ``[-bound, bound]``."""
        return QValue(q, frac, -bound, bound, self, node=self.widths.new(signed_bits(-bound, bound)))

    def constant(self, c: Any) -> int:
        """The group of a clear constant (Concrete gives it the width of what it is added to)."""
        return self.widths.new(constant_bits(c))

    def _record(self, kind: str, v: QValue, out: QValue, bits: int = 0) -> QValue:
        """A PBS-costing operation on ``v`` (counted if its result ``out`` is used)."""
        self.events.append((kind, v.node, int(np.prod(v.q.shape)), bits, out.node))
        return out

    def _looked_up(self, v: QValue) -> QValue:
        self.lookup_outputs.add(v.node)
        return v

    # -- table lookups -------------------------------------------------------------------

    def lookup(self, v: QValue, real: Callable[[np.ndarray], np.ndarray], frac: int,
               copies: int = 1) -> QValue | list[QValue]:
        """``real`` (a function of the real input, vectorised, giving integers at ``frac``) as one lookup.

        The input is first rounded to ``act_bits + LUT_EXTRA_BITS`` bits if it is wider.
        ``copies > 1`` applies the table that many times to the one rounded input and returns
        the list: separate ciphertexts that Concrete may give different widths.
        """
        k = max(v.bits - (self.act_bits + LUT_EXTRA_BITS), 0)
        start, stop = int(round_low_bits(v.lo, k)), int(round_low_bits(v.hi, k))
        # The rounded value is hinted no narrower than its input: Concrete takes a rounding whose
        # width differs from its input's for one that overflows, and would keep a bit too many
        # (scaling the lookup's table by two) where rounding narrows the range instead.
        lookup_in, kept = v, 0  # kept: the bits the lookup runs at after rounding (0: the input's width)
        if k and (v.node, k) in self.rounded:  # Concrete merges equal roundings of one value
            lookup_in, kept = self.rounded[v.node, k]
        elif k:
            lo, hi = min(start, v.lo), max(stop, v.hi)
            lookup_in = self.made(self.engine.round(v.q, k), v.frac, lo, hi, joins=(v.node,), uses=(v.node,))
            overflow = signed_bits(lo, hi) != v.bits  # Concrete then keeps one more bit
            kept = v.bits - k + overflow
            self.rounded[v.node, k] = lookup_in, kept
            self._record("round", v, lookup_in, k)
        inputs = np.arange(start, stop + 1, 1 << k, dtype=np.int64)
        values = np.asarray(real(inputs * 2.0**-v.frac), np.int64)
        table = _table_of(values, start, 1 << k)
        constant = values.min() == values.max()  # Concrete turns a constant table into a constant
        outs = []
        for _ in range(copies):
            out = self._looked_up(self.made(self.engine.lookup(lookup_in.q, table), frac, int(values.min()),
                                            int(values.max()), uses=() if constant else (lookup_in.node,)))
            outs.append(out if constant else self._record("lookup", lookup_in, out, kept))
        return outs if copies > 1 else outs[0]

    def _grid(self, frac: int, lo: int, hi: int) -> Callable[[np.ndarray], np.ndarray]:
        """Real values to integers at ``frac``, rounded half up, saturated to ``[lo, hi]``."""
        return lambda x: np.clip(np.floor(np.asarray(x, np.float64) * 2.0**frac + 0.5), lo, hi)

    def apply(self, kind: str, v: QValue) -> QValue:
        if kind == "relu":
            return self.relu(v)
        grid = self._grid(self.gate_frac, -self.qmax, self.qmax)
        fn = np.vectorize(_REAL[kind], otypes=[np.float64])
        return self.lookup(v, lambda x: grid(fn(x)), self.gate_frac)

    def relu(self, v: QValue) -> QValue:
        """``max(v, 0)`` at the scale left after rounding the input (exact on the rounded value)."""
        k = max(v.bits - (self.act_bits + LUT_EXTRA_BITS), 0)
        frac = v.frac - k
        return self.lookup(v, lambda x: np.maximum(np.rint(x * 2.0**frac), 0), frac)

    def store(self, v: QValue, frac: int, bound: int, copies: int = 1) -> QValue | list[QValue]:
        """``v`` at ``frac`` fractional bits, saturated to ``[-bound, bound]``: a lookup unless a no-op.

        ``copies > 1``: that many lookups of one rounded input (see :meth:`lookup`), never a no-op.
        """
        if copies == 1 and v.frac == frac and -bound <= v.lo and v.hi <= bound:
            return v
        return self.lookup(v, self._grid(frac, -bound, bound), frac, copies)

    def narrow(self, v: QValue) -> QValue:
        """``v`` at ``act_bits`` (a rescaling lookup) if it is wider than an operand of a product may be.

        A value within [-1, 1] keeps the gates' scale; a wider one (a pre-activation) is a
        calibrated site: its scale is ``site_fracs[i]`` for the step's ``i``-th such value.
        """
        if v.bits <= self.act_bits + 1:
            return v
        if -(1 << v.frac) <= v.lo and v.hi <= (1 << v.frac):
            return self.store(v, self.gate_frac, self.qmax)
        site, self.site = self.site, self.site + 1
        self.observe(site, v)
        frac = self.site_fracs[site] if site < len(self.site_fracs) else self.default_frac
        return self.store(v, frac, self.qmax)

    def observe(self, site: Any, v: QValue) -> None:
        """Calibration pass: keep the real values ``v`` takes at ``site``."""
        if self.observed is not None:
            self.observed.setdefault(site, []).append(np.asarray(v.q, np.float64).ravel() * 2.0**-v.frac)

    # -- products of two encrypted values ------------------------------------------------
    def product(self, a: QValue, b: QValue) -> QValue:
        a, b = self.narrow(a), self.narrow(b)
        corners = [a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi]
        frac, lo, hi = a.frac + b.frac, min(corners), max(corners)
        if self.form == "packed" and a.bits + b.bits <= PACKED_MAX_BITS:
            return self._lookup2(a, b, lambda x, y: x * y, frac, lo, hi)
        a_bits, b_bits = self._signed_operand(a, b), self._signed_operand(b, a)
        self.widths.join(a.node, b.node)
        self.widths.require(a.node, max(a_bits, b_bits) + 1)  # Concrete: one more bit than each operand
        out = self.made(self.engine.multiply(a.q, b.q), frac, lo, hi, product=True, uses=(a.node, b.node))
        return self._record("product", a, out)

    def _lookup2(self, a: QValue, b: QValue, table: Callable, frac: int, lo: int, hi: int) -> QValue:
        """One two-input lookup (``fhe.multivariate``): Concrete casts each input (a PBS), packs, looks up."""
        out = self._looked_up(self.made(self.engine.lookup2(a.q, b.q, table), frac, lo, hi,
                                        uses=(a.node, b.node)))
        self._record("cast", a, out)
        self._record("cast", b, out)
        return self._record("lookup2", a, out, a.bits + b.bits)

    def _signed_operand(self, v: QValue, other: QValue) -> int:
        """``v``'s width as an operand: with a sign bit if it is unsigned, ``other`` signed and ``v`` as wide.

        Concrete multiplies an unsigned by a signed encrypted value by reading the unsigned one
        as signed at the common width, which wraps its upper half (``4 * -3`` at 3 bits gives
        ``-4 * -3``); hinting ``v`` down to -1 makes Concrete size it with a sign bit.
        """
        if v.lo >= 0 and other.lo < 0 and v.bits >= other.bits:
            self.engine.hint(v.q, -1, v.hi)
            bits = signed_bits(-1, v.hi)
            self.widths.require(v.node, bits)
            return bits
        return v.bits

    # -- the packed form's override points -------------------------------------------------
    def _packed_inh(self, v: QValue, s: QValue) -> QValue:
        """``inh(v, s)`` as ``a = relu(-s)`` (one lookup) and one two-input lookup of ``(v, a)``.

        ``a`` is produced at ``v``'s scale and saturated at ``max |v|`` (a larger cut gives 0
        all the same), so the packed pair is as narrow as it can be. Wider than
        :data:`PACKED_MAX_BITS` packed, the ReLU form (:func:`equations.relu_inh`) is cheaper.
        """
        width = v.bits if v.bits <= self.act_bits + 1 else self.act_bits  # what narrow() leaves
        if 2 * width - 1 > PACKED_MAX_BITS:  # v and a cut of at most |v|, packed
            return equations.relu_inh(self, v, s)
        v = self.narrow(v)
        reach = max(-v.lo, v.hi)
        a = self.lookup(-s, lambda x: np.clip(np.floor(x * 2.0**v.frac + 0.5), 0, reach), v.frac)
        frac = v.frac

        def table(x: np.ndarray, y: np.ndarray) -> np.ndarray:
            return np.maximum(x - y, 0) - np.maximum(-x - y, 0)

        inputs = np.arange(v.lo, v.hi + 1, dtype=np.int64)
        cut = np.arange(a.lo, a.hi + 1, dtype=np.int64)
        values = table(inputs[:, None], cut[None, :])
        return self._lookup2(v, a, table, frac, int(values.min()), int(values.max()))

    def _packed_clip(self, u: QValue) -> QValue:
        """``clip(u)`` fused with storing the result at the state's scale: one lookup."""
        grid = self._grid(self.gate_frac, -self.qmax, self.qmax)
        return self.lookup(u, lambda x: grid(np.clip(x, -1.0, 1.0)), self.gate_frac)

    # -- statistics ----------------------------------------------------------------------
    def live(self) -> set[int]:
        """The nodes the outputs are computed from (Concrete removes the rest)."""
        live, todo = set(), list(self.outputs)
        while todo:
            n = todo.pop()
            if n not in live:
                live.add(n)
                todo.extend(self.reads.get(n, ()))
        return live

    def pbs_histogram(self) -> dict[str, Counter]:
        """PBS per evaluation by kind and by the precision they run at (Concrete's assigned widths).

        A lookup runs at its input's width (after rounding: the bits kept); a rounding costs one
        PBS per removed bit (Concrete first shifts a value narrower than its group to the top,
        so that is the bits asked for, also on overflow, where the group is one bit wider),
        counted here at its input's width; a product runs two PBS at
        its operands' width; a cast of a two-input lookup runs at its input's width, the packed
        lookup at the two widths' sum. A lookup of a value that only it reads, made by another
        lookup, costs nothing: Concrete fuses the two tables; a constant table costs nothing,
        nor does anything the outputs do not depend on.
        """
        hist: dict[str, Counter] = {"lookup": Counter(), "round": Counter(), "product": Counter()}
        live = self.live()
        uses = Counter(self.outputs)
        for n in live:
            uses.update(self.reads.get(n, ()))
        for kind, node, elements, bits, out in self.events:
            width = self.widths.width(node)
            if out not in live:
                continue
            if kind in ("lookup", "cast") and node in self.lookup_outputs and uses[node] == 1:
                continue  # Concrete fuses a lookup of a lookup's only use into that lookup
            if kind == "lookup":
                hist["lookup"][bits if bits else width] += elements
            elif kind == "round":
                hist["round"][width] += elements * bits
            elif kind == "product":
                hist["product"][width] += 2 * elements
            elif kind == "cast":
                hist["lookup"][width] += elements
            else:  # lookup2
                hist["lookup"][bits] += elements
        return hist

    def pbs_count(self) -> int:
        """PBS per evaluation of the traced circuit, roundings included (Concrete's count)."""
        return sum(sum(c.values()) for c in self.pbs_histogram().values())

    def lookup_histogram(self) -> dict[int, int]:
        """PBS of lookups and products by the bit width they run at (roundings left out)."""
        hist = self.pbs_histogram()
        return dict(sorted((hist["lookup"] + hist["product"]).items()))


# -- quantization -------------------------------------------------------------------------
@dataclass(frozen=True)
class Projection:
    """``W v + b`` with clear integer weights at a common power-of-two scale per matrix."""

    weight: np.ndarray  # [rows, K] int64, rows already shifted to the common scale
    bias: np.ndarray  # [rows] int64 at the accumulator's scale
    frac: int  # fractional bits of the accumulator (weights' + input's)
    row_lo: np.ndarray  # [rows] exact bounds of the accumulator per row
    row_hi: np.ndarray


@dataclass(frozen=True)
class TfheCell:
    """Everything the reference and the circuit need: clear weights, scales, widths."""

    cell: str
    weight_bits: int
    act_bits: int
    form: str
    input_proj: Projection
    recurrent_proj: Projection
    frac_x: int
    frac_pre: int  # worst-case scale of a pre-activation (no saturation): sites not calibrated
    frac_c: int
    site_fracs: tuple[int, ...] = ()  # calibrated scales of the narrowing sites (TfheOps.narrow)
    # Encrypted state inputs of a step: (h, c) for LSTM; (h, narrow copy of h) for GRU and
    # reluadd, or (h,) alone where the step's outputs do not depend on h elementwise
    # (see :func:`step`; an input nothing reads would get no key of its own from Concrete).
    state_inputs: int = 2

    @property
    def hidden_size(self) -> int:
        return self.recurrent_proj.weight.shape[1]

    @property
    def input_size(self) -> int:
        return self.input_proj.weight.shape[1]

    @property
    def qmax(self) -> int:
        return (1 << (self.act_bits - 1)) - 1

    @property
    def frac_h(self) -> int:
        return self.act_bits - 1

    @property
    def lstm(self) -> bool:
        return self.cell == "lstm"


def _projection(w: np.ndarray, b: np.ndarray, weight_bits: int, frac_in: int, in_bound: int) -> Projection:
    """Per-row power-of-two quantization, rows shifted to one scale, accumulators kept within 16 bits."""
    qw = (1 << (weight_bits - 1)) - 1
    w = np.asarray(w, np.float64)
    row_max = np.abs(w).max(axis=1)
    row_frac = np.array([finest_frac(m, qw, lowest=-16, highest=24) for m in row_max])
    frac_w = int(row_frac.max())
    while True:  # the finest common scale whose accumulators stay within 16 bits
        step = np.minimum(row_frac, frac_w)
        q = np.clip(np.rint(w * 2.0 ** step[:, None]), -qw, qw).astype(np.int64)
        q = q << (frac_w - step)[:, None]
        bias = np.rint(np.asarray(b, np.float64) * 2.0 ** (frac_w + frac_in)).astype(np.int64)
        reach = np.abs(q).sum(axis=1) * in_bound
        row_lo, row_hi = bias - reach, bias + reach
        if signed_bits(int(row_lo.min()), int(row_hi.max())) <= ACC_MAX_BITS or frac_w <= -16:
            return Projection(q, bias, frac_w + frac_in, row_lo, row_hi)
        frac_w -= 1


def quantize(weights: Weights, calibration: np.ndarray, weight_bits: int, act_bits: int,
             form: str) -> TfheCell:
    """Quantize ``weights`` for TFHE; scales calibrated on ``calibration`` [T, B, I] as for integers."""
    qmax = (1 << (act_bits - 1)) - 1
    calibration = np.asarray(calibration, np.float32)
    frac_x = finest_frac(float(np.abs(calibration).max(initial=0.0)), qmax, lowest=-8, highest=act_bits + 8)
    max_pre, max_c = float_ranges(weights, calibration)
    qc = TfheCell(
        cell=weights.cell, weight_bits=weight_bits, act_bits=act_bits, form=form,
        input_proj=_projection(weights.weight_ih, weights.bias_ih, weight_bits, frac_x, qmax),
        recurrent_proj=_projection(weights.weight_hh, weights.bias_hh, weight_bits, act_bits - 1, qmax),
        frac_x=frac_x,
        frac_pre=finest_frac(max_pre, qmax, lowest=-8, highest=act_bits + 8),
        frac_c=finest_frac(max_c, qmax, lowest=-8, highest=act_bits - 1),
    )
    qc = calibrate(qc, calibration)
    ops = analyse(qc)
    if not qc.lstm and ops.inputs[1] not in ops.live():
        qc = dataclasses.replace(qc, state_inputs=1)
    return qc


def least_error_frac(values: np.ndarray, qmax: int, coarsest: int, finest: int) -> int:
    """The scale ``f`` in ``[coarsest, finest]`` whose ``qmax``-saturated grid fits ``values`` best.

    Squared error of rounding to multiples of ``2**-f`` and saturating at ``qmax * 2**-f``:
    the finest scale that saturates nothing (``coarsest``) is the worst-case choice; each
    finer one halves the rounding error of the common values and clips the rare large ones.
    """
    values = np.asarray(values, np.float64)

    def error(f: int) -> float:
        q = np.clip(np.floor(values * 2.0**f + 0.5), -qmax, qmax) * 2.0**-f
        return float(np.mean((q - values) ** 2))

    return min(range(coarsest, finest + 1), key=error)


def calibrate(qc: TfheCell, calibration: np.ndarray) -> TfheCell:
    """``qc`` with its saturating scales fitted to the calibration inputs [T, B, I].

    One pass of the integer reference at worst-case scales records the real values met at
    each narrowing site and LSTM's new ``c``; each gets the least-error scale
    (:func:`least_error_frac`, at most 16x finer than the worst case).
    """
    ops = make_ops(qc, NumpyEngine())
    ops.observed = {}
    _run(ops, qc, quantize_inputs(calibration, qc))
    sites = sorted(k for k in ops.observed if isinstance(k, int))
    fitted = {k: least_error_frac(np.concatenate(ops.observed[k]), qc.qmax, start, start + 4)
              for k, start in [*((k, qc.frac_pre) for k in sites), ("c", qc.frac_c)] if k in ops.observed}
    return dataclasses.replace(qc, site_fracs=tuple(fitted[k] for k in sites),
                               frac_c=fitted.get("c", qc.frac_c))


def quantize_inputs(x: np.ndarray, qc: TfheCell) -> np.ndarray:
    """Inputs [..., I] as ``act_bits`` fixed point at ``frac_x`` (rounded half up, saturated)."""
    scaled = np.floor(np.asarray(x, np.float32).astype(np.float64) * 2.0**qc.frac_x + 0.5)
    return np.clip(scaled, -qc.qmax, qc.qmax).astype(np.int64)


def _project(ops: TfheOps, v: QValue, p: Projection, gates: int) -> list[QValue]:
    acc = v.q @ p.weight.T + p.bias
    rows = p.weight.shape[0] // gates
    joins = (v.node, ops.constant(p.weight), ops.constant(p.bias))  # a matmul keeps its input's width
    parts = []
    for g in range(gates):
        lo, hi = int(p.row_lo[g * rows:(g + 1) * rows].min()), int(p.row_hi[g * rows:(g + 1) * rows].max())
        parts.append(ops.made(acc[:, g * rows:(g + 1) * rows], p.frac, lo, hi, joins=joins, uses=(v.node,)))
    return parts


def step(ops: TfheOps, qc: TfheCell, x: Any, state: Sequence[Any]) -> tuple[Any, ...]:
    """One time step on integers ``x`` [B, I] and the state ``(h, s)`` or ``(h,)`` [B, H] each.

    ``s`` is LSTM's ``c``; for GRU and reluadd it is ``h`` again. A ciphertext that enters the
    matrix product is encoded as wide as the product's accumulators (Concrete's ``matmul``
    keeps its input's width), so a step that also uses ``h`` elementwise (GRU's ``z * h``,
    reluadd's ``inh(h, s_z)``) takes a second, narrow copy of it for that, and returns both
    (two lookups of the one rounded new state). Runs the cell's own equations on
    :class:`QValue`; returns the new state's integers (``qc.state_inputs`` arrays).
    """
    gates = GATES[qc.cell]
    ops.site = 0
    xv = ops.value(x, qc.frac_x, qc.qmax)
    h = ops.value(state[0], qc.frac_h, qc.qmax)
    gi = _project(ops, xv, qc.input_proj, gates)
    gh = _project(ops, h, qc.recurrent_proj, gates)
    if qc.lstm:
        s = ops.value(state[1], qc.frac_c, qc.qmax)
        h_new, c_new = STEPS[qc.cell](ops, tuple(gi), tuple(gh), (h, s))
        ops.observe("c", c_new)
        out = ops.store(h_new, qc.frac_h, qc.qmax), ops.store(c_new, qc.frac_c, qc.qmax)
    else:
        s = ops.value(state[1], qc.frac_h, qc.qmax) if len(state) == 2 else h
        out = ops.store(STEPS[qc.cell](ops, tuple(gi), tuple(gh), s), qc.frac_h, qc.qmax,
                        copies=len(state))
        out = out if len(state) == 2 else [out]
    ops.inputs = [h.node, s.node][:len(state)]
    for o, i in zip(out, ops.inputs, strict=True):
        ops.widths.join(o.node, i)  # the composition wires each output to its input
    ops.outputs = [o.node for o in out]
    return tuple(o.q for o in out)


def make_ops(qc: TfheCell, engine: Engine) -> TfheOps:
    return TfheOps(engine=engine, act_bits=qc.act_bits, form=qc.form, site_fracs=qc.site_fracs,
                   default_frac=qc.frac_pre)


def analyse(qc: TfheCell, batch: int = 1) -> TfheOps:
    """Trace one step on zeros: the ops' counters hold the lookups, products and widths of a step."""
    ops = make_ops(qc, NumpyEngine())
    zeros = np.zeros((batch, qc.hidden_size), np.int64)
    step(ops, qc, np.zeros((batch, qc.input_size), np.int64), (zeros,) * qc.state_inputs)
    return ops


def check_widths(ops: TfheOps) -> None:
    """Refuse (one line) a circuit with a lookup or a product Concrete cannot compile (over 16 bits)."""
    widest = max([*ops.lookup_histogram(), 0])
    if widest > MAX_LOOKUP_BITS:
        raise InvalidParams(f"tfhe: a table lookup would take {widest} bits; Concrete compiles at most "
                            f"{MAX_LOOKUP_BITS} (lower tfhe.act_bits or tfhe.weight_bits)")


def run_reference(qc: TfheCell, x: np.ndarray) -> np.ndarray:
    """The cleartext integer reference: hidden states [T, B, H] as integers at ``frac_h``."""
    return _run(make_ops(qc, NumpyEngine()), qc, quantize_inputs(x, qc))[:, 0]


def trajectory(qc: TfheCell, x: np.ndarray) -> list[tuple[np.ndarray, ...]]:
    """The reference's real-valued state after each step: ``(h,)``, or ``(h, c)`` for LSTM."""
    states = _run(make_ops(qc, NumpyEngine()), qc, quantize_inputs(x, qc))
    h = dequantize(states[:, 0], qc)
    if not qc.lstm:
        return [(h_t,) for h_t in h]
    c = states[:, 1].astype(np.float32) * np.float32(2.0**-qc.frac_c)
    return list(zip(h, c, strict=True))


def _run(ops: TfheOps, qc: TfheCell, xq: np.ndarray) -> np.ndarray:
    """Integer states [T, state_inputs, B, H] of the step applied to ``xq`` [T, B, I] from zero."""
    seq_len, batch, _ = xq.shape
    state = (np.zeros((batch, qc.hidden_size), np.int64),) * qc.state_inputs
    out = np.empty((seq_len, qc.state_inputs, batch, qc.hidden_size), np.int64)
    for t in range(seq_len):
        state = step(ops, qc, xq[t], state)
        out[t] = state
    return out


def dequantize(h: np.ndarray, qc: TfheCell) -> np.ndarray:
    """Hidden-state integers at ``frac_h`` as float32."""
    return np.asarray(h, np.float64).astype(np.float32) * np.float32(2.0**-qc.frac_h)
