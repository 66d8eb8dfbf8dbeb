"""Per-video prediction files a user can load: ``.pt`` (``torch.load(..., weights_only=True)``)
or ``.npz`` (``numpy.load``), with video ids and class names.

Contents (both formats):

- ``video_ids``: ``N`` strings (``VideoRecord.video_id``), ``index``: ``[N]`` positions in the
  split's records, ``labels``: ``[N]`` true class ids (``-1`` where unknown);
- ``class_names``: ``K`` strings; ``final``: the head's final branch;
- ``probs``: per branch ``[N, K]`` float32 video-level probabilities (views averaged);
- ``metrics`` (optional): the run's test metrics.

In ``.npz`` the per-branch arrays are stored as ``probs/<branch>``, strings as arrays of str,
``metrics`` as a JSON string.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor


def save_predictions(
    path: str | Path,
    *,
    video_ids: Sequence[str],
    index: Tensor,
    labels: Tensor,
    class_names: Sequence[str],
    probs: Mapping[str, Tensor],
    final: str,
    metrics: Mapping[str, float] | None = None,
) -> Path:
    """Write one predictions file; the suffix (``.pt`` or ``.npz``) picks the format."""
    path = Path(path)
    if path.suffix not in (".pt", ".npz"):
        raise ValueError(f"predictions file must end in .pt or .npz, got {path}")
    n = len(video_ids)
    for branch, value in probs.items():
        if tuple(value.shape) != (n, len(class_names)):
            raise ValueError(f"probs[{branch!r}] is {tuple(value.shape)}, expected "
                             f"({n}, {len(class_names)})")
    path.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {
        "video_ids": [str(v) for v in video_ids],
        "index": index.detach().long().cpu(),
        "labels": labels.detach().long().cpu(),
        "class_names": [str(c) for c in class_names],
        "final": str(final),
        "probs": {b: v.detach().float().cpu() for b, v in probs.items()},
        "metrics": {k: float(v) for k, v in (metrics or {}).items()},
    }
    if path.suffix == ".pt":
        torch.save(payload, path)
        return path
    arrays: dict[str, np.ndarray] = {
        "video_ids": np.asarray(payload["video_ids"], dtype=str),
        "index": payload["index"].numpy(),
        "labels": payload["labels"].numpy(),
        "class_names": np.asarray(payload["class_names"], dtype=str),
        "final": np.asarray(payload["final"]),
        "metrics": np.asarray(json.dumps(payload["metrics"])),
    }
    for branch, value in payload["probs"].items():
        arrays[f"probs/{branch}"] = value.numpy()
    np.savez_compressed(path, **arrays)
    return path


def load_predictions(path: str | Path) -> dict[str, Any]:
    """Read a file written by :func:`save_predictions` (either format) into the ``.pt`` layout
    (tensors for ``index``/``labels``/``probs``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"predictions file not found: {path}")
    if path.suffix == ".pt":
        return torch.load(path, map_location="cpu", weights_only=True)
    if path.suffix != ".npz":
        raise ValueError(f"{path}: predictions files are .pt or .npz")
    with np.load(path, allow_pickle=False) as data:
        return {
            "video_ids": [str(v) for v in data["video_ids"]],
            "index": torch.from_numpy(data["index"]),
            "labels": torch.from_numpy(data["labels"]),
            "class_names": [str(c) for c in data["class_names"]],
            "final": str(data["final"]),
            "probs": {k.split("/", 1)[1]: torch.from_numpy(data[k])
                      for k in data.files if k.startswith("probs/")},
            "metrics": json.loads(str(data["metrics"])),
        }


__all__ = ["load_predictions", "save_predictions"]
