"""Handwritten digits: scikit-learn's 8x8 images, or a user's MNIST-style ``.npz`` file.

An image is read as a sequence, either row by row (T = image height, I = width) or
pixel by pixel (T = height x width, I = 1); the sequence length picks the layout.
scikit-learn's ``load_digits`` (1,797 images, shipped with the library, no download)
is split into train and test sets stratified by class with a fixed seed, so every
model sees the same split. An ``.npz`` file brings its own split (``x_train``,
``y_train``, ``x_test``, ``y_test``; images [N, S, S] or [N, S*S]).
"""

from __future__ import annotations

import functools
import math
import zipfile
from pathlib import Path

import numpy as np

from rnnbench.tasks.base import Classification, TaskData, TaskError

CLASSES = 10
TEST_FRACTION = 0.25
SPLIT_SEED = 0
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


@functools.cache
def sklearn_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's digits as ``(x_train, y_train, x_test, y_test)``, images [N, 8, 8] in [0, 1].

    Cached (read-only arrays): every model and backend in a process uses the same split.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target, test_size=TEST_FRACTION, random_state=SPLIT_SEED,
        stratify=digits.target,
    )
    split = x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64)
    for array in split:
        array.flags.writeable = False
    return split


def _square_images(x: np.ndarray, path: Path, key: str) -> np.ndarray:
    if x.ndim == 2:
        side = math.isqrt(x.shape[1])
        if side * side != x.shape[1]:
            raise TaskError(f"{path}: {key} rows have {x.shape[1]} values, not a square image")
        x = x.reshape(len(x), side, side)
    if x.ndim != 3 or x.shape[1] != x.shape[2] or len(x) == 0:
        raise TaskError(f"{path}: {key} has shape {x.shape}; expected [N, S, S] or [N, S*S] images")
    return x


def npz_split(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A user's MNIST-style file as ``(x_train, y_train, x_test, y_test)``, images scaled to [0, 1]."""
    if path.exists() and not path.is_dir() and not zipfile.is_zipfile(path):
        raise TaskError(f"{path}: not an .npz file (not a zip archive of arrays)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in NPZ_KEYS if k not in archive.files]
            if missing:
                raise TaskError(f"{path}: missing arrays {', '.join(missing)} "
                                f"(needs {', '.join(NPZ_KEYS)})")
            arrays = {k: archive[k] for k in NPZ_KEYS}
    except FileNotFoundError:
        raise TaskError(f"{path}: no such file") from None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        if isinstance(exc, TaskError):
            raise
        raise TaskError(f"{path}: not a readable .npz file ({exc})") from None
    images = {}
    for split in ("train", "test"):
        x = _square_images(arrays[f"x_{split}"], path, f"x_{split}")
        if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
            raise TaskError(f"{path}: x_{split} must hold real numbers, not {x.dtype}")
        if not np.isfinite(x).all():
            raise TaskError(f"{path}: x_{split} holds NaN or infinite values")
        y = arrays[f"y_{split}"].reshape(-1)
        if len(y) != len(x):
            raise TaskError(f"{path}: {len(x)} x_{split} images but {len(y)} y_{split} labels")
        if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= CLASSES:
            raise TaskError(f"{path}: y_{split} must hold integer labels 0..{CLASSES - 1}")
        images[split] = (x, y.astype(np.int64))
    if images["train"][0].shape[1:] != images["test"][0].shape[1:]:
        raise TaskError(f"{path}: train and test images differ in size")
    scale = 255.0 if max(images["train"][0].max(), images["test"][0].max()) > 1.0 else 1.0
    (x_train, y_train), (x_test, y_test) = images["train"], images["test"]
    return ((x_train / scale).astype(np.float32), y_train,
            (x_test / scale).astype(np.float32), y_test)


def as_sequences(images: np.ndarray, seq_len: int) -> np.ndarray:
    """Images [N, S, S] -> sequences [T, N, I]: rows (T = S) or pixels (T = S*S)."""
    n, side, _ = images.shape
    if seq_len == side:
        sequences = images
    elif seq_len == side * side:
        sequences = images.reshape(n, seq_len, 1)
    else:
        raise TaskError(f"{side}x{side} digits are read as {side} rows (--seq-len {side}) or "
                        f"{side * side} pixels (--seq-len {side * side}), not T={seq_len}")
    return np.ascontiguousarray(sequences.transpose(1, 0, 2))


def load(seq_len: int | None = None, data: str | Path | None = None) -> TaskData:
    """Digits read row by row (default) or pixel by pixel; ``data``: an MNIST-style ``.npz`` file."""
    if data is None:
        x_train, y_train, x_test, y_test = sklearn_split()
        tag, source = "digits", "scikit-learn digits"
    else:
        path = Path(data)
        x_train, y_train, x_test, y_test = npz_split(path)
        tag, source = f"digits:{path.stem}", str(path)
    side = x_train.shape[1]
    seq_len = seq_len or side
    train = as_sequences(x_train, seq_len)
    test = as_sequences(x_test, seq_len)

    def sample(rng: np.random.Generator, batch: int) -> tuple[np.ndarray, np.ndarray]:
        chosen = rng.integers(0, train.shape[1], batch)
        return train[:, chosen], y_train[chosen]

    layout = "rows" if seq_len == side else "pixels"
    return TaskData(
        tag=tag, seq_len=seq_len, input_size=train.shape[2], objective=Classification(CLASSES),
        x_test=test, y_test=y_test, sample=sample, default_steps=2000,
        description=f"{source}, {side}x{side} images as {layout} (T={seq_len}), "
                    f"{train.shape[1]} train / {test.shape[1]} test",
    )
