"""Intel MKL's packed sgemm, called from numba kernels.

PyTorch's CPU build links MKL and exports its BLAS entry points from ``libtorch_cpu``, so
the library every backend here already loads also gives our kernels a well-kept GEMM with
its own CPU dispatch (AVX-512 on Xeon, AVX2/AVX-512 paths on EPYC). Its packed API
(``cblas_sgemm_pack`` once, ``cblas_sgemm_compute`` per step) keeps a weight matrix in
the micro-kernel's layout, as ONNX Runtime's MLAS does, so no step re-packs it. MKL
threads through PyTorch's OpenMP runtime: ``torch.set_num_threads`` sets its thread count.

Numba calls C functions by address through :func:`c_call`, an intrinsic whose generated
code depends only on argument types; the addresses are passed as integers at run time,
so kernels that use it stay cacheable (a ctypes object captured as a global would not be).

:func:`set_local_threads` gives one calling thread its own MKL thread count, so that
several Python threads can each run products on one core (the float backend's splits
at ``--threads N``).
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

_LIB = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so"))

ROW_MAJOR, NO_TRANS, TRANS, PACKED = 101, 111, 112, 151
_B_MATRIX = 162
_ALIGN = 64


def _address(name: str) -> int:
    return ctypes.cast(getattr(_LIB, name), ctypes.c_void_p).value


SGEMM_COMPUTE = _address("cblas_sgemm_compute")
"""``cblas_sgemm_compute(layout, transa, transb, m, n, k, a, lda, b, ldb, beta, c, ldc)``:
``c = a @ b + beta * c`` where ``a`` or ``b`` may be packed (``PACKED``); ints are 32-bit."""

_LIB.cblas_sgemm_pack_get_size.restype = ctypes.c_size_t
_LIB.cblas_sgemm_pack_get_size.argtypes = [ctypes.c_int] * 4
_LIB.cblas_sgemm_pack.restype = None
_LIB.cblas_sgemm_pack.argtypes = [ctypes.c_int] * 6 + [ctypes.c_float, ctypes.c_void_p,
                                                        ctypes.c_int, ctypes.c_void_p]


# MKL's C service functions are the mixed-case names and take ints by value. The lowercase
# ``mkl_set_num_threads_local`` that libtorch_cpu also exports is the Fortran interface,
# which takes a pointer: called with an int it reads address 1 and crashes the process.
_LIB.MKL_Set_Num_Threads_Local.argtypes = [ctypes.c_int]
_LIB.MKL_Set_Num_Threads_Local.restype = ctypes.c_int


def set_local_threads(threads: int) -> int:
    """Threads MKL uses for products called from this thread only (0: the process-wide
    count again); returns this thread's previous setting."""
    return _LIB.MKL_Set_Num_Threads_Local(threads)


@contextmanager
def one_thread_here() -> Iterator[None]:
    """MKL on one thread for products called from this thread, inside the block."""
    previous = set_local_threads(1)
    try:
        yield
    finally:
        set_local_threads(previous)


def pack_weights(weight: np.ndarray, rows_of_a: int = 1) -> np.ndarray:
    """MKL's packed form of ``weight.T`` as the right operand (``b``) of ``x @ weight.T``.

    ``weight`` is [N, K] float32 (PyTorch's layout, e.g. ``weight_hh`` [G*H, H]); the
    packed buffer serves products with any number of left-hand rows.
    """
    weight = np.ascontiguousarray(weight, dtype=np.float32)
    n, k = weight.shape
    size = _LIB.cblas_sgemm_pack_get_size(_B_MATRIX, rows_of_a, n, k)
    raw = np.empty(size + _ALIGN, np.uint8)
    start = -raw.ctypes.data % _ALIGN
    packed = raw[start : start + size]
    _LIB.cblas_sgemm_pack(ROW_MAJOR, _B_MATRIX, TRANS, rows_of_a, n, k, 1.0,
                          weight.ctypes.data, k, packed.ctypes.data)
    return packed


@intrinsic
def c_call(typingctx, address, args):
    """Call the C function at ``address`` (an integer) with the tuple ``args``; no result.

    Arrays are passed as pointers to their data; numbers as themselves, so their numba
    types must match the C prototype (``np.int32`` for ``int``, ``np.float32`` for ``float``).
    """
    if not isinstance(address, types.Integer) or not isinstance(args, types.BaseTuple):
        return None

    def codegen(context, builder, signature, llargs):
        fn_address, packed_args = llargs
        values = []
        for i, arg_type in enumerate(signature.args[1].types):
            value = builder.extract_value(packed_args, i)
            if isinstance(arg_type, types.Array):
                value = context.make_array(arg_type)(context, builder, value=value).data
                value = builder.bitcast(value, ir.IntType(8).as_pointer())
            values.append(value)
        fn_type = ir.FunctionType(ir.VoidType(), [v.type for v in values])
        builder.call(builder.inttoptr(fn_address, fn_type.as_pointer()), values)
        return context.get_dummy_value()

    return types.void(address, args), codegen
