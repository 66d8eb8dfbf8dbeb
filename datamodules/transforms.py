"""CPU clip transforms (in DataLoader workers) and the device-side normalisation.

Workers keep clips as ``uint8`` — 4× less to collate, pin and copy than float — and every
spatial decision is made once per clip, so all frames of a clip share one crop and one flip.
Normalisation (and any batched augmentation) runs on the device: ``normalize``.

Shapes: decoders give ``[T, H, W, 3]``; a train clip is ``[3, T, crop, crop]``; test views are
``[V, 3, T, crop, crop]``. With ``flow=True`` the frames are encoded optical-flow stacks
``[T, H, W, 2L]`` (``datamodules.flow``): the geometry is the same, and mirroring also negates
the x components (``mirror_flow``: a mirrored video's motion mirrors too).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torchvision.transforms.v2.functional as TF
from torch import Tensor

from datamodules.flow import mirror_flow

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "TrainTransform",
    "TestViews",
    "normalize",
    "resize_short_side",
    "short_side_size",
]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def _check_frames(frames: Tensor, flow: bool = False) -> None:
    if flow:
        if frames.ndim != 4 or frames.shape[-1] % 2:
            raise ValueError(f"expected flow stacks [T, H, W, 2L], got shape "
                             f"{tuple(frames.shape)}")
    elif frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected frames [T, H, W, 3], got shape {tuple(frames.shape)}")
    if frames.dtype != torch.uint8:
        raise ValueError(f"expected uint8 frames, got {frames.dtype}")


def short_side_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """``(h, w)`` with the shorter side equal to ``short_side``, aspect ratio kept."""
    if height <= width:
        return short_side, max(1, round(width * short_side / height))
    return max(1, round(height * short_side / width)), short_side


def resize_short_side(x: Tensor, short_side: int) -> Tensor:
    """Resize ``[..., C, H, W]`` so that ``min(H, W) == short_side`` (antialiased bilinear)."""
    h, w = x.shape[-2:]
    size = short_side_size(h, w, short_side)
    if size == (h, w):
        return x
    return TF.resize(x, list(size), antialias=True)


class TrainTransform:
    """Random-resized crop + horizontal flip, one draw per clip.

    The crop covers a fraction in ``scale`` of the frame area with an aspect ratio in ``ratio``
    (log-uniform), as torchvision's ``RandomResizedCrop``, and is resized to
    ``crop_size × crop_size``. The box is drawn in the coordinates of the frame after the
    short-side resize and cut straight from the decoded frame, so the clip is resampled once
    (the same geometry as "resize to ``short_side`` then crop", at a fraction of the cost).

    Args:
        crop_size: output side.
        short_side: nominal short side the crop geometry refers to (``None``: the decoded size).
            Only the resampling changes with it; it is kept for configs that state the usual
            "short side 256, crop 224" recipe.
        scale: range of the crop area as a fraction of the frame area.
        ratio: range of the crop aspect ratio (width / height).
        flip: random horizontal flip with probability 0.5.
        flip_label_map: labels that change when the clip is mirrored (Something-Something's
            "left"/"right" classes): ``{label: mirrored_label}``; it is applied as given, so list
            both directions of a pair.
        flow: the frames are flow stacks ``[T, H, W, 2L]``; a flip negates their x components.

    Call: ``(frames uint8 [T, H, W, C], label, generator=None) -> (uint8 [C, T, crop, crop],
    label)`` with ``C = 3`` (RGB) or ``2L`` (flow).
    """

    def __init__(
        self,
        crop_size: int,
        short_side: int | None = None,
        scale: tuple[float, float] = (0.25, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        flip: bool = True,
        flip_label_map: Mapping[int, int] | None = None,
        flow: bool = False,
    ) -> None:
        if crop_size <= 0:
            raise ValueError(f"crop_size must be positive, got {crop_size}")
        if short_side is not None and short_side <= 0:
            raise ValueError(f"short_side must be positive, got {short_side}")
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"scale must satisfy 0 < min <= max <= 1, got {scale}")
        if not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"ratio must satisfy 0 < min <= max, got {ratio}")
        self.crop_size = crop_size
        self.short_side = short_side
        self.scale = (float(scale[0]), float(scale[1]))
        self.ratio = (float(ratio[0]), float(ratio[1]))
        self.flip = flip
        self.flip_label_map = {int(k): int(v) for k, v in (flip_label_map or {}).items()}
        self.flow = flow

    def crop_box(
        self, height: int, width: int, generator: torch.Generator | None = None
    ) -> tuple[int, int, int, int]:
        """``(top, left, h, w)`` of a random crop inside a ``height × width`` frame."""
        area = height * width
        log_lo, log_hi = math.log(self.ratio[0]), math.log(self.ratio[1])
        for _ in range(10):
            u = torch.rand(2, generator=generator, dtype=torch.float64).tolist()
            target = area * (self.scale[0] + u[0] * (self.scale[1] - self.scale[0]))
            aspect = math.exp(log_lo + u[1] * (log_hi - log_lo))
            w = round(math.sqrt(target * aspect))
            h = round(math.sqrt(target / aspect))
            if 0 < w <= width and 0 < h <= height:
                top = int(torch.randint(0, height - h + 1, (1,), generator=generator))
                left = int(torch.randint(0, width - w + 1, (1,), generator=generator))
                return top, left, h, w
        # fallback (as torchvision): the largest centred crop with a ratio inside the range
        in_ratio = width / height
        if in_ratio < self.ratio[0]:
            w, h = width, round(width / self.ratio[0])
        elif in_ratio > self.ratio[1]:
            h, w = height, round(height * self.ratio[1])
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def __call__(
        self, frames: Tensor, label: int, generator: torch.Generator | None = None
    ) -> tuple[Tensor, int]:
        _check_frames(frames, self.flow)
        _, height, width, _ = frames.shape
        if self.short_side is not None:
            # draw the box at the nominal resolution, then map it back to the decoded frame
            nh, nw = short_side_size(height, width, self.short_side)
            top, left, h, w = self.crop_box(nh, nw, generator)
            sy, sx = height / nh, width / nw
            top, left = round(top * sy), round(left * sx)
            h = max(1, min(height - top, round(h * sy)))
            w = max(1, min(width - left, round(w * sx)))
        else:
            top, left, h, w = self.crop_box(height, width, generator)
        x = frames.permute(0, 3, 1, 2)[:, :, top : top + h, left : left + w]  # [T, C, h, w]
        x = TF.resize(x, [self.crop_size, self.crop_size], antialias=True)
        if self.flip and bool(torch.rand(1, generator=generator) < 0.5):
            x = mirror_flow(x, channel_dim=1) if self.flow else x.flip(-1)
            label = self.flip_label_map.get(int(label), label)
        return x.permute(1, 0, 2, 3).contiguous(), label

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(crop_size={self.crop_size}, short_side={self.short_side}, "
                f"scale={self.scale}, ratio={self.ratio}, flip={self.flip}, "
                f"flip_label_map={self.flip_label_map or None}, flow={self.flow})")


class TestViews:
    """Deterministic spatial test views of one clip.

    The clip is resized so that its short side is ``short_side`` (or left as decoded when
    ``None``; never below ``crop_size``), then cut into ``num_crops`` squares of ``crop_size``:

    * 1: the centre;
    * 3: centre, then the start and the end of the long side (centred on the short side);
    * 5: centre, top-left, top-right, bottom-left, bottom-right;
    * 10: the 5 crops, then the same 5 mirrored.

    View 0 is always the centre crop (what validation uses). With ``flow=True`` the frames are
    flow stacks ``[T, H, W, 2L]`` and the mirrored views negate their x components.

    Call: ``frames uint8 [T, H, W, C] -> uint8 [num_crops, C, T, crop, crop]``.
    """

    __test__ = False  # not a pytest class, despite the name

    def __init__(self, crop_size: int, short_side: int | None = None, num_crops: int = 1,
                 flow: bool = False) -> None:
        if num_crops not in (1, 3, 5, 10):
            raise ValueError(f"num_crops must be 1, 3, 5 or 10, got {num_crops}")
        if crop_size <= 0:
            raise ValueError(f"crop_size must be positive, got {crop_size}")
        if short_side is not None and short_side <= 0:
            raise ValueError(f"short_side must be positive, got {short_side}")
        self.crop_size = crop_size
        self.short_side = short_side
        self.num_crops = num_crops
        self.flow = flow

    def boxes(self, height: int, width: int) -> list[tuple[int, int]]:
        """``(top, left)`` of each unmirrored crop in a ``height × width`` frame."""
        c = self.crop_size
        cy, cx = (height - c) // 2, (width - c) // 2
        if self.num_crops == 1:
            return [(cy, cx)]
        if self.num_crops == 3:
            if width >= height:
                return [(cy, cx), (cy, 0), (cy, width - c)]
            return [(cy, cx), (0, cx), (height - c, cx)]
        return [(cy, cx), (0, 0), (0, width - c), (height - c, 0), (height - c, width - c)]

    def __call__(self, frames: Tensor) -> Tensor:
        _check_frames(frames, self.flow)
        x = frames.permute(0, 3, 1, 2)  # [T, C, H, W]
        short = max(self.short_side or min(x.shape[-2:]), self.crop_size)
        x = resize_short_side(x, short)
        height, width = x.shape[-2:]
        c = self.crop_size
        views = [x[:, :, t : t + c, l : l + c] for t, l in self.boxes(height, width)]
        if self.num_crops == 10:
            views += [mirror_flow(v, channel_dim=1) if self.flow else v.flip(-1) for v in views]
        return torch.stack(views).permute(0, 2, 1, 3, 4).contiguous()  # [V, C, T, c, c]

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(crop_size={self.crop_size}, "
                f"short_side={self.short_side}, num_crops={self.num_crops}, flow={self.flow})")


def normalize(
    x: Tensor,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """``uint8 [..., C, T, H, W]`` → ``(x / 255 - mean) / std`` as ``dtype``, on ``x``'s device.

    ``mean``/``std`` are in [0, 1] units (ImageNet's by default), one value per channel or one
    value for all (flow stacks: ``datamodules.flow.FLOW_MEAN``/``FLOW_STD``); the channel dim is
    ``-4`` so the same call serves a clip, a batch ``[B, C, T, H, W]`` and test views
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
