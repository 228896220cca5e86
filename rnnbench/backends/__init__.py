"""Registry of backends: the CLI, the grid and the dashboard list the same names.

Backends are imported lazily, so listing or validating names never imports
TenSEAL or ONNX Runtime.
"""

from __future__ import annotations

import importlib

from rnnbench.backends.base import Backend, InvalidParams, Prepared, Unsupported

# name -> "module:attribute" of a Backend instance.
_REGISTRY: dict[str, str] = {
    "float": "rnnbench.backends.float32:BACKEND",
    "torch": "rnnbench.backends.pytorch:BACKEND",
    "onnxruntime": "rnnbench.backends.onnxrt:BACKEND",
    "int8": "rnnbench.backends.integer.backend:INT8",
    "int16": "rnnbench.backends.integer.backend:INT16",
    "torch-int8": "rnnbench.backends.torch_int8:BACKEND",
    "ckks": "rnnbench.backends.ckks:BACKEND",
    "tfhe": "rnnbench.backends.tfhe:BACKEND",
}


def register(name: str, target: str) -> None:
    """Add a backend (``"package.module:ATTRIBUTE"`` naming a Backend instance), e.g. a plugin."""
    _REGISTRY[name] = target


def unregister(name: str) -> None:
    """Remove a backend added with :func:`register` (a plugin's or a test's); unknown names are ignored."""
    _REGISTRY.pop(name, None)


def target(name: str) -> str:
    """Where backend ``name`` lives (``"module:attribute"``), so a child process can load it."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown backend {name!r}; valid backends: {', '.join(names())}") from None


def names() -> list[str]:
    """Backend names, in a stable order."""
    return list(_REGISTRY)


def get(name: str) -> Backend:
    """The backend called ``name``; ``KeyError`` lists the valid names."""
    module, attribute = target(name).split(":")
    return getattr(importlib.import_module(module), attribute)


__all__ = ["Backend", "InvalidParams", "Prepared", "Unsupported", "get", "names", "register", "target",
           "unregister"]
