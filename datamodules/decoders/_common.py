"""Helpers shared by the backends: index checking, trim windows, a small LRU cache."""

from __future__ import annotations

import os
import warnings
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

import numpy as np
import torch

from datamodules.decoders import DecodeError, Indices

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# tolerance for comparing frame times with start_sec / end_sec (timestamps are rationals)
TIME_EPS = 1e-6


def as_index_array(indices: Indices) -> np.ndarray:
    """Any 1-D sequence or tensor of ints → int64 ndarray ``[T]``."""
    if isinstance(indices, torch.Tensor):
        arr = indices.detach().cpu().numpy()
    else:
        arr = np.asarray(list(indices) if not isinstance(indices, np.ndarray) else indices)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"indices must be a 1-D sequence of ints, got shape {arr.shape} "
                         f"dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def check_indices(path: str, arr: np.ndarray, num_frames: int) -> None:
    """Negative indices are a caller bug; indices past the end mean the file is shorter than
    the annotation said, which is a property of the file (``DecodeError``)."""
    if arr.size == 0:
        return
    if arr.min() < 0:
        raise ValueError(f"negative frame index {int(arr.min())} for {path}")
    if arr.max() >= num_frames:
        raise DecodeError(
            path, f"frame {int(arr.max())} requested but only {num_frames} frames decode"
        )


def trim_window(
    times: np.ndarray, start_sec: float | None, end_sec: float | None
) -> tuple[int, int]:
    """``[lo, hi)`` positions of the frames with ``start_sec <= t < end_sec``.

    ``times``: float64 ``[N]`` seconds from the first frame, sorted.
    """
    lo = 0 if start_sec is None else int(np.searchsorted(times, start_sec - TIME_EPS, "left"))
    hi = len(times) if end_sec is None else int(
        np.searchsorted(times, end_sec - TIME_EPS, "left")
    )
    return lo, max(lo, hi)


def file_key(path: str) -> tuple[str, int, int]:
    """Cache key that changes when the file is replaced; raises ``DecodeError`` if missing."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise DecodeError(path, "file not found") from None
    except OSError as error:
        raise DecodeError(path, f"cannot stat: {error}") from None
    return (path, st.st_size, st.st_mtime_ns)


class LRUCache(Generic[K, V]):
    """Bounded per-process cache (each DataLoader worker holds its own copy after fork)."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        self._data.clear()


def quiet_image_codec_deprecation() -> None:
    """torchvision 0.29 deprecates its image codecs (in favour of torchcodec's) with a warning on
    every call; they stay the dependency-free JPEG path here (torchcodec is optional), so only
    that warning is silenced."""
    warnings.filterwarnings(
        "ignore",
        message="The image decoding and encoding capabilities of TorchVision are deprecated",
        category=DeprecationWarning,
    )
