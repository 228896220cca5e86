"""A spinning barrier for compiled kernels that run on several threads at once.

The float backend splits a step's hidden units across threads (see
:mod:`rnnbench.backends.float32`): every thread needs the whole new state before the
next step, so the threads meet once per step. At a few microseconds per step a futex
wait and wake-up (tens of microseconds on a virtual machine) would cost more than the
step, so a thread that arrives early spins on an atomic counter, as OpenMP runtimes and
ONNX Runtime's thread pool do, and yields its core to the scheduler only after about
``SPINS`` polls (on a loaded machine the other thread may not be running at all).

Numba has no atomics for CPU code; :func:`atomic_add` and :func:`atomic_load` are
intrinsics over LLVM's ``atomicrmw`` and atomic ``load``.
"""

from __future__ import annotations

import ctypes

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from rnnbench.backends.mkl import c_call

SCHED_YIELD = ctypes.cast(ctypes.CDLL(None).sched_yield, ctypes.c_void_p).value
"""Address of libc's ``sched_yield``."""

SPINS = 1000

# A barrier's state: arrivals, generation (bumped when the last thread arrives), threads.
_ARRIVED, _GENERATION, _THREADS = 0, 1, 2


def new_barrier(threads: int) -> np.ndarray:
    """The shared state of a barrier for ``threads`` threads (one makes :func:`wait` a no-op)."""
    return np.array([0, 0, threads], np.int64)


def _element_pointer(context, builder, array_type, array, index):
    array = context.make_array(array_type)(context, builder, array)
    return cgutils.get_item_pointer(context, builder, array_type, array, [index])


@intrinsic
def atomic_add(typingctx, array, index, value):
    """``array[index] += value`` atomically (int64 array); returns the old value."""
    def codegen(context, builder, signature, args):
        pointer = _element_pointer(context, builder, signature.args[0], args[0], args[1])
        return builder.atomic_rmw("add", pointer, args[2], "seq_cst")

    return types.int64(array, index, value), codegen


@intrinsic
def atomic_load(typingctx, array, index):
    """``array[index]`` read atomically, so a loop that polls it is not folded away."""
    def codegen(context, builder, signature, args):
        pointer = _element_pointer(context, builder, signature.args[0], args[0], args[1])
        return builder.load_atomic(pointer, "acquire", 8)

    return types.int64(array, index), codegen


@intrinsic
def _cpu_pause(typingctx):
    """x86's ``pause``: a spin loop's hint that frees the core's resources for a moment."""
    def codegen(context, builder, signature, args):
        pause = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse2.pause")
        builder.call(pause, [])
        return context.get_dummy_value()

    return types.void(), codegen


@njit(cache=True, nogil=True)
def wait(barrier, sched_yield):
    """Return once every thread sharing ``barrier`` has called ``wait`` this many times."""
    threads = barrier[_THREADS]
    if threads == 1:
        return
    generation = atomic_load(barrier, _GENERATION)
    if atomic_add(barrier, _ARRIVED, 1) == threads - 1:  # the last to arrive releases the others
        atomic_add(barrier, _ARRIVED, -threads)
        atomic_add(barrier, _GENERATION, 1)
        return
    spins = 0
    while atomic_load(barrier, _GENERATION) == generation:
        spins += 1
        if spins < SPINS:
            _cpu_pause()
        else:
            c_call(sched_yield, ())
