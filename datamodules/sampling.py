"""Frame-index samplers: which frames of a video make up a clip.

Two families, both from the papers behind the project (see DESIGN.md "Public interfaces"):

* **uniform** (TSN segments): split ``[0, num_frames)`` into ``num_segments`` equal parts and take
  one frame per part. Covers the whole video, whatever its length.
* **dense** (I3D / SlowFast clips): ``clip_len`` frames ``frame_interval`` apart, i.e. a window of
  ``L = (clip_len - 1) * frame_interval + 1`` consecutive frames.

Every function returns int64 indices in ``[0, num_frames)``; passing a seeded ``torch.Generator``
makes the result reproducible. Test-mode positions use integer arithmetic so that they are exact
(no float rounding drift between machines).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

__all__ = [
    "uniform_indices",
    "uniform_test_indices",
    "dense_indices",
    "dense_span",
    "clip_indices",
]


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or int(value) != value or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def uniform_indices(
    num_frames: int,
    num_segments: int,
    *,
    train: bool,
    generator: torch.Generator | None = None,
) -> Tensor:
    """TSN segment sampling.

    Segment ``i`` holds the frames ``[floor(i*N/S), floor((i+1)*N/S))``.
    Train: one uniformly random frame of each segment (a segment that holds no frame, which
    happens when ``N < S``, yields its start, so indices repeat but stay sorted).
    Test: ``floor((i + 0.5) * N / S)``.

    Returns:
        LongTensor ``[num_segments]``, sorted, every value in ``[0, num_frames)``.
    """
    _check_positive(num_frames=num_frames, num_segments=num_segments)
    if not train:
        return uniform_test_indices(num_frames, num_segments, 1)[0]
    seg = torch.arange(num_segments + 1, dtype=torch.int64)
    bounds = seg * num_frames // num_segments  # exact integer floor(i*N/S)
    lo, length = bounds[:-1], bounds[1:] - bounds[:-1]
    u = torch.rand(num_segments, dtype=torch.float64, generator=generator)
    # floor(u * length) < length for u in [0, 1); clamp guards the length-0 (N < S) segments.
    offset = torch.minimum((u * length).long(), (length - 1).clamp(min=0))
    return lo + offset


def uniform_test_indices(num_frames: int, num_segments: int, num_clips: int) -> Tensor:
    """Temporal test views for uniform sampling: ``num_clips`` interleaved segment offsets.

    Clip ``k`` of ``K`` takes offset ``(k + 0.5) / K`` inside every segment:
    ``index[k, i] = floor((i + (k + 0.5) / K) * N / S)``, computed exactly as
    ``((2*K*i + 2*k + 1) * N) // (2*K*S)``. ``K = 1`` equals ``uniform_indices(train=False)``.

    Returns:
        LongTensor ``[num_clips, num_segments]``.
    """
    _check_positive(num_frames=num_frames, num_segments=num_segments, num_clips=num_clips)
    i = torch.arange(num_segments, dtype=torch.int64).unsqueeze(0)  # [1, S]
    k = torch.arange(num_clips, dtype=torch.int64).unsqueeze(1)  # [K, 1]
    numerator = (2 * num_clips * i + 2 * k + 1) * num_frames
    return numerator // (2 * num_clips * num_segments)


def dense_span(clip_len: int, frame_interval: int) -> int:
    """Frames covered by one dense clip: ``(clip_len - 1) * frame_interval + 1``."""
    return (clip_len - 1) * frame_interval + 1


def dense_indices(
    num_frames: int,
    clip_len: int,
    frame_interval: int,
    *,
    num_clips: int = 1,
    train: bool,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Dense clip sampling.

    Train: each clip starts at a uniformly random frame in ``[0, max(N - L, 0)]``.
    Test: ``avg = (N - L + 1) / num_clips`` and clip ``i`` starts at ``floor(i*avg + avg/2)``
    when ``N >= L``, else at 0. Indices past the end wrap (modulo ``N``), so a video shorter than
    the clip span loops.

    Returns:
        LongTensor ``[num_clips, clip_len]``.
    """
    _check_positive(
        num_frames=num_frames,
        clip_len=clip_len,
        frame_interval=frame_interval,
        num_clips=num_clips,
    )
    span = dense_span(clip_len, frame_interval)
    if train:
        high = max(num_frames - span, 0) + 1
        starts = torch.randint(0, high, (num_clips,), generator=generator, dtype=torch.int64)
    elif num_frames >= span:
        # floor(i*avg + avg/2) with avg = (N-L+1)/K, in integers: ((2i+1)(N-L+1)) // (2K)
        i = torch.arange(num_clips, dtype=torch.int64)
        starts = ((2 * i + 1) * (num_frames - span + 1)) // (2 * num_clips)
    else:
        starts = torch.zeros(num_clips, dtype=torch.int64)
    offsets = torch.arange(clip_len, dtype=torch.int64) * frame_interval
    return (starts.unsqueeze(1) + offsets.unsqueeze(0)) % num_frames


def clip_indices(
    num_video_frames: int,
    *,
    sampling: Literal["uniform", "dense"],
    num_frames: int,
    frame_interval: int = 1,
    num_clips: int = 1,
    train: bool,
    generator: torch.Generator | None = None,
) -> Tensor:
    """One entry point for the dataset: the frame indices of every clip of one sample.

    Args:
        num_video_frames: frames that decode in the video (``decoder.num_frames(record)``).
        sampling: ``"uniform"`` (TSN segments; ``frame_interval`` is ignored) or ``"dense"``.
        num_frames: frames per clip (segments for uniform, clip length for dense).
        frame_interval: dense only, the stride between sampled frames.
        num_clips: temporal test views; must be 1 when ``train``.
        train: random (train) or deterministic (val/test) positions.

    Returns:
        LongTensor ``[num_clips, num_frames]``.
    """
    if train and num_clips != 1:
        raise ValueError(f"train sampling takes one clip per sample, got num_clips={num_clips}")
    if sampling == "uniform":
        if train:
            return uniform_indices(
                num_video_frames, num_frames, train=True, generator=generator
            ).unsqueeze(0)
        return uniform_test_indices(num_video_frames, num_frames, num_clips)
    if sampling == "dense":
        return dense_indices(
            num_video_frames,
            num_frames,
            frame_interval,
            num_clips=num_clips,
            train=train,
            generator=generator,
        )
    raise ValueError(f"sampling must be 'uniform' or 'dense', got {sampling!r}")
