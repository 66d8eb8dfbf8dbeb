"""Device-side normalisation: ``uint8`` clips → ``float`` ``(x / 255 - mean) / std``, batched.

Workers keep clips as ``uint8`` (4× less to collate, pin and copy than float); each datamodule
normalises the whole batch on the device in its ``on_after_batch_transfer``, so any model —
``VideoRecognizer`` or a plain ``LightningModule`` of another project — receives float input.
``VideoDataModule(normalize=None)`` hands raw ``uint8`` to a model that normalises itself.
``VideoRecognizer`` uses the same :class:`Normalization` for input that still arrives as
``uint8``; float input passes through untouched, so nothing is normalised twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

__all__ = ["IMAGENET", "IMAGENET_MEAN", "IMAGENET_STD", "Normalization", "normalize"]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def normalize(
    x: Tensor,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """``uint8 [..., C, T, H, W]`` → ``(x / 255 - mean) / std`` as ``dtype``, on ``x``'s device.

    ``mean``/``std`` are in [0, 1] units (ImageNet's by default), one value per channel or one
    value for all (flow stacks); the channel dim is ``-4`` so
    the same call serves a clip, a batch ``[B, C, T, H, W]`` and test views
    ``[B, V, C, T, H, W]``. Float input is taken as already in [0, 1].
    """
    if x.ndim < 4:
        raise ValueError(f"expected [..., C, T, H, W], got shape {tuple(x.shape)}")
    channels = x.shape[-4]
    scale = 255.0 if x.dtype == torch.uint8 else 1.0
    m = torch.as_tensor(mean, dtype=dtype, device=x.device).flatten()
    s = torch.as_tensor(std, dtype=dtype, device=x.device).flatten()
    if m.numel() not in (1, channels) or s.numel() not in (1, channels):
        raise ValueError(f"mean/std have {m.numel()}/{s.numel()} values for {channels} channels")
    m, s = m.view(-1, 1, 1, 1) * scale, s.view(-1, 1, 1, 1) * scale
    return (x.to(dtype) - m) / s


@dataclass(frozen=True)
class Normalization:
    """Per-channel ``mean`` / ``std`` in [0, 1] units, applied to ``uint8`` video only.

    In YAML: ``normalize: {mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5]}`` (or ``null``).
    """

    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    def __post_init__(self) -> None:
        if len(self.mean) != len(self.std):
            raise ValueError(f"normalize: {len(self.mean)} mean values but {len(self.std)} std")
        if any(s <= 0 for s in self.std):
            raise ValueError(f"normalize: std values must be > 0, got {self.std}")

    def __call__(self, video: Tensor) -> Tensor:
        """``uint8 [..., C, T, H, W]`` → normalised float; float input is returned as is."""
        if video.dtype != torch.uint8:
            return video
        return normalize(video, self.mean, self.std)

    def apply(self, batch: Any) -> Any:
        """A batch dict's ``"video"`` (or a bare tensor) normalised; the rest untouched."""
        if isinstance(batch, Tensor):
            return self(batch)
        if isinstance(batch, dict) and isinstance(batch.get("video"), Tensor):
            return {**batch, "video": self(batch["video"])}
        return batch


#: torchvision's ImageNet statistics, the default of every datamodule
IMAGENET = Normalization()
