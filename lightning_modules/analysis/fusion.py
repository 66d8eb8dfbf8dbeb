"""Late fusion of two-stream predictions (TSN §3.1; dfb Table 4, u2s Tables V–VI, s3d Table 4):
the weighted mean of each stream's per-video softmax probabilities.

Streams are prediction files (:mod:`lightning_modules.analysis.predictions`) of the same test
split, matched by video id — each video's path relative to its run's data root — with a video
file's extension left out: the RGB run reads ``<class>/<video>.mp4`` (or the frame folder
``<class>/<video>/``), the flow run ``<class>/<video>/flow_*.jpg`` under its own root, and both
are ``<class>/<video>``. TSN weights the flow stream 1.5
against RGB 1 (Wang et al., §4.2 "Two-stream fusion"), the common choice; equal weights are the
s3d/I3D choice (the average of the two streams' predictions).
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from datamodules.annotations import VIDEO_EXTENSIONS
from lightning_modules.analysis.confusion import confusion_matrix, per_class_accuracy


def stream_key(video_id: str) -> str:
    """The id streams are matched by: ``video_id`` without a video file's extension."""
    stem, extension = posixpath.splitext(video_id)
    return stem if extension.lower() in VIDEO_EXTENSIONS else video_id


def align(streams: Sequence[dict[str, Any]], names: Sequence[str]) -> list[Tensor]:
    """Row order that puts every stream's videos in the first stream's order.

    Raises ``ValueError`` naming the stream and a few of the videos it lacks, or when class
    lists, labels or video ids do not allow a match.
    """
    first = streams[0]
    ids = [stream_key(v) for v in first["video_ids"]]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{names[0]}: video ids repeat, so streams cannot be matched by id")
    rows = []
    for stream, name in zip(streams, names, strict=True):
        if stream["class_names"] != first["class_names"]:
            raise ValueError(f"{name} has another class list than {names[0]}")
        position = {stream_key(v): i for i, v in enumerate(stream["video_ids"])}
        if len(position) != len(stream["video_ids"]):
            raise ValueError(f"{name}: video ids repeat, so streams cannot be matched by id")
        missing = [v for v in ids if v not in position]
        if missing:
            raise ValueError(f"{name} lacks {len(missing)} of the {len(ids)} videos of "
                             f"{names[0]}, e.g. {missing[:3]}")
        order = torch.tensor([position[v] for v in ids], dtype=torch.long)
        if not torch.equal(stream["labels"][order], first["labels"]):
            raise ValueError(f"{name} gives other labels than {names[0]} for the same videos")
        rows.append(order)
    return rows


def fuse(
    streams: Sequence[dict[str, Any]],
    weights: Sequence[float] | None = None,
    names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Weighted mean of the streams' final-branch probabilities, video by video.

    Args:
        streams: loaded prediction files (``load_predictions``), two or more.
        weights: one per stream (default: equal); normalised to sum to 1.
        names: for messages (default ``stream0``, ``stream1``, …).

    Returns:
        A predictions dict in the file layout (``video_ids``, ``labels``, ``class_names``,
        ``index``, ``probs``) whose ``probs`` hold one branch per stream (its name) and
        ``"fused"``, with ``final="fused"``; ``save_predictions(path, **result)`` writes it.
    """
    if len(streams) < 2:
        raise ValueError("fusion needs two or more prediction files")
    names = list(names or [f"stream{i}" for i in range(len(streams))])
    weights = [1.0] * len(streams) if weights is None else [float(w) for w in weights]
    if len(weights) != len(streams):
        raise ValueError(f"{len(weights)} weights for {len(streams)} streams")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"weights must be >= 0 with a positive sum, got {weights}")
    rows = align(streams, names)
    probs = {name: s["probs"][s["final"]][order].float()
             for name, s, order in zip(names, streams, rows, strict=True)}
    total = sum(weights)
    fused = sum(w / total * probs[n] for n, w in zip(names, weights, strict=True))
    first = streams[0]
    return {"video_ids": list(first["video_ids"]), "index": first["index"],
            "labels": first["labels"], "class_names": list(first["class_names"]),
            "probs": {**probs, "fused": fused}, "final": "fused"}


def accuracy_table(probs: Tensor, labels: Tensor) -> dict[str, Any]:
    """Top-1, top-5 (top-``K`` below 5 classes), mean class accuracy and per-class accuracy
    (``[K]``, NaN for a class without videos) of ``probs`` ``[N, K]`` over labelled videos."""
    labelled = labels >= 0
    probs, labels = probs[labelled], labels[labelled]
    if labels.numel() == 0:
        raise ValueError("no labelled videos: accuracy is undefined")
    k = probs.shape[1]
    top = probs.topk(min(5, k), dim=1).indices
    per_class = per_class_accuracy(confusion_matrix(top[:, 0], labels, k))
    return {"acc1": float((top[:, 0] == labels).float().mean()),
            "acc5": float((top == labels[:, None]).any(1).float().mean()),
            "mean_class_acc": float(per_class.nanmean()), "per_class": per_class}


__all__ = ["accuracy_table", "align", "fuse"]
