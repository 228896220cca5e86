"""int8 matrix-vector products on the CPU's integer dot-product instruction (AVX-512 VNNI).

``vpdpbusd`` multiplies 64 unsigned bytes by 64 signed bytes and adds each group of four
products into one of 16 int32 lanes: four times the multiply-adds of ``vpmaddwd`` on
bytes widened to 16 bits, which is what LLVM makes of the plain loop. Numba exposes no
vector types, so :func:`dot_rows_u8s8` is an intrinsic that writes the loop in LLVM IR.

The arithmetic is exact: the lanes hold int32 sums of at most ``K * 255 * 127`` in
magnitude (``K`` < 2**16 here), so the result equals the int64 product of the NumPy
reference bit for bit. A signed vector ``h`` is made unsigned as ``u = h + 128``, and
``W h = W u - 128 * rowsum(W)``.

Both CPUs this project runs on (an Intel Xeon with AMX, AMD Zen 4) have AVX-512 VNNI; elsewhere
:data:`HAS_VNNI` is false and the kernels keep their plain loops.
"""

from __future__ import annotations

import llvmlite.binding as llvm
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

HAS_VNNI = bool(llvm.get_host_cpu_features().get("avx512vnni", False))

LANES_BYTES = 64  # one zmm register of bytes
ROW_BLOCK = 4  # rows per pass
SEQ_BLOCK = 2  # sequences per pass: 4 x 2 independent accumulators hide vpdpbusd's latency


def pad_for_vnni(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``weight`` [rows, K] int8 zero-padded to whole row blocks and 64-byte rows, and
    ``128 * rowsum(weight)`` (int32) per padded row, for :func:`dot_rows_u8s8`."""
    rows, k_len = weight.shape
    padded = np.zeros((-(-rows // ROW_BLOCK) * ROW_BLOCK, -(-k_len // LANES_BYTES) * LANES_BYTES),
                      np.int8)
    padded[:rows, :k_len] = weight
    offset = 128 * padded.astype(np.int32).sum(axis=1, dtype=np.int32)
    return padded, offset


@intrinsic
def dot_rows_u8s8(typingctx, weight, u, acc):
    """``acc[b, r] = sum_k u[b, k] * weight[r, k]`` (int32) for ``weight`` [R, K] int8, ``u``
    [B, K] uint8 and ``acc`` [B, R] int32, all C-contiguous, with ``R`` a multiple of 4 and
    ``K`` of 64 (see :func:`pad_for_vnni`). A block of four rows serves every ``b`` (two at a
    time: eight accumulators) before the next is loaded, so at ``B`` > 1 the weights are
    read from L1 rather than memory."""
    if not (isinstance(weight, types.Array) and weight.dtype == types.int8 and weight.ndim == 2
            and isinstance(u, types.Array) and u.dtype == types.uint8 and u.ndim == 2
            and isinstance(acc, types.Array) and acc.dtype == types.int32 and acc.ndim == 2):
        return None

    def codegen(context, builder, signature, args):
        w_arr = context.make_array(signature.args[0])(context, builder, args[0])
        u_arr = context.make_array(signature.args[1])(context, builder, args[1])
        acc_arr = context.make_array(signature.args[2])(context, builder, args[2])
        rows, k_len = cgutils.unpack_tuple(builder, w_arr.shape, 2)
        batch, u_len = cgutils.unpack_tuple(builder, u_arr.shape, 2)
        acc_len = cgutils.unpack_tuple(builder, acc_arr.shape, 2)[1]
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        vec = ir.VectorType(i32, 16)
        dpbusd = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vec, [vec, vec, vec]), "llvm.x86.avx512.vpdpbusd.512")
        reduce_add = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(i32, [vec]), "llvm.vector.reduce.add.v16i32")
        w_data = builder.bitcast(w_arr.data, i8p)
        u_data = builder.bitcast(u_arr.data, i8p)
        sums = [[cgutils.alloca_once(builder, vec) for _ in range(ROW_BLOCK)] for _ in range(SEQ_BLOCK)]

        def load_vec(base, offset):
            return builder.load(builder.bitcast(builder.gep(base, [offset]), vec.as_pointer()), align=1)

        def block(row_ptrs, row, first_b, n_seq):
            """The dot products of the four rows at ``row_ptrs`` with sequences ``first_b`` ..
            ``first_b + n_seq - 1``, stored into ``acc``."""
            seqs = [builder.add(first_b, ir.Constant(batch.type, j)) for j in range(n_seq)]
            u_rows = [builder.gep(u_data, [builder.mul(b, u_len)]) for b in seqs]
            for per_seq in sums[:n_seq]:
                for s in per_seq:
                    builder.store(ir.Constant(vec, None), s)
            with cgutils.for_range_slice(builder, ir.Constant(k_len.type, 0), k_len,
                                         ir.Constant(k_len.type, LANES_BYTES)) as (k, _):
                uvs = [load_vec(u_row, k) for u_row in u_rows]
                for i, row_ptr in enumerate(row_ptrs):
                    wv = load_vec(row_ptr, k)
                    for j, uv in enumerate(uvs):
                        s = sums[j][i]
                        builder.store(builder.call(dpbusd, [builder.load(s), uv, wv]), s)
            for j, b in enumerate(seqs):
                acc_row = builder.add(builder.mul(b, acc_len), row)
                for i, s in enumerate(sums[j]):
                    total = builder.call(reduce_add, [builder.load(s)])
                    r = builder.add(acc_row, ir.Constant(rows.type, i))
                    builder.store(total, builder.gep(acc_arr.data, [r]))

        paired = builder.mul(builder.udiv(batch, ir.Constant(batch.type, SEQ_BLOCK)),
                             ir.Constant(batch.type, SEQ_BLOCK))
        with cgutils.for_range_slice(builder, ir.Constant(rows.type, 0), rows,
                                     ir.Constant(rows.type, ROW_BLOCK)) as (row, _):
            row_ptrs = [builder.gep(w_data, [builder.mul(builder.add(row, ir.Constant(rows.type, i)),
                                                         k_len)]) for i in range(ROW_BLOCK)]
            with cgutils.for_range_slice(builder, ir.Constant(batch.type, 0), paired,
                                         ir.Constant(batch.type, SEQ_BLOCK)) as (b, _):
                block(row_ptrs, row, b, SEQ_BLOCK)
            with builder.if_then(builder.icmp_signed("<", paired, batch)):
                block(row_ptrs, row, paired, 1)  # an odd batch's last sequence
        return context.get_dummy_value()

    return types.void(weight, u, acc), codegen
