"""CPU clip transforms (in DataLoader workers) and the device-side normalisation.

Workers keep clips as ``uint8`` — 4× less to collate, pin and copy than float — and every
spatial decision is made once per clip, so all frames of a clip share one crop and one flip.
Normalisation (and any batched augmentation) runs on the device: ``datamodules.normalize``.

Train transforms (``ClipTransform`` subclasses: ``TrainTransform``, ``ResizeRandomCrop``,
``MultiScaleCrop``, and ``V2Transform`` for any torchvision.transforms.v2 transform) and test
views (``ClipViews`` subclasses: ``TestViews``, ``FullFrameViews``) are chosen in a datamodule's
config by ``class_path`` (``train_transform`` / ``test_views``).

Shapes: decoders give ``[T, H, W, 3]``; a train clip is ``[3, T, crop, crop]``; test views are
``[V, 3, T, h, w]``. For the optical-flow stream (``flow = True``, which a datamodule with
``video_backend="flow"`` sets on its transforms) the frames are encoded flow stacks
``[T, H, W, 2L]`` (``datamodules.flow``): the geometry is the same, and every mirroring also
negates the x components (``mirror_flow``: a mirrored video's motion mirrors too).
"""

from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch
import torchvision.transforms.v2.functional as TF
from torch import Tensor
from torchvision import tv_tensors
from torchvision.transforms import v2

from datamodules.flow import mirror_flow

# normalisation lives in datamodules.normalize; its names stay importable from here
from datamodules.normalize import IMAGENET_MEAN, IMAGENET_STD, normalize

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "BoxCrop",
    "ClipTransform",
    "ClipViews",
    "FullFrameViews",
    "MultiScaleCrop",
    "ResizeRandomCrop",
    "ShortSideCrop",
    "TestViews",
    "TrainTransform",
    "V2Transform",
    "normalize",
    "resize_short_side",
    "short_side_size",
]


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


def _mirror(x: Tensor, flow: bool) -> Tensor:
    """Horizontally mirror ``[T, C, H, W]``; flow also has its x components negated."""
    return mirror_flow(x, channel_dim=1) if flow else x.flip(-1)


def _randint(low: int, high: int, generator: torch.Generator | None) -> int:
    """A uniform integer in ``[low, high]`` (both included)."""
    return int(torch.randint(low, high + 1, (1,), generator=generator))


def _fixed_size(size: Sequence[int] | None) -> tuple[int, int] | None:
    """A fixed ``[h, w]`` resize, checked (``None``: no fixed resize)."""
    if size is None:
        return None
    height, width = (int(v) for v in size)
    if min(height, width) <= 0:
        raise ValueError(f"size must be positive, got {list(size)}")
    return height, width


def _to_source(
    box: tuple[int, int, int, int], nominal: tuple[int, int], source: tuple[int, int]
) -> tuple[int, int, int, int]:
    """Map ``(top, left, h, w)`` drawn in a frame resized to ``nominal`` back to the decoded
    ``source`` frame, so the clip is cut there and resampled once (the geometry of "resize,
    then crop" without resizing the whole frame first)."""
    (top, left, h, w), (nh, nw), (height, width) = box, nominal, source
    if (nh, nw) == (height, width):
        return box
    sy, sx = height / nh, width / nw
    top, left = min(height - 1, round(top * sy)), min(width - 1, round(left * sx))
    return (top, left, max(1, min(height - top, round(h * sy))),
            max(1, min(width - left, round(w * sx))))


class ClipTransform(ABC):
    """A train transform: one random crop (and flip) per clip, the same for every frame.

    The contract every train transform keeps (the dataset calls it so):
    ``transform(frames uint8 [T, H, W, 3], label, generator=g) -> (uint8 [3, T, crop, crop],
    label)``. Every random draw comes from ``g`` (a ``torch.Generator``; ``None``: torch's
    global RNG), so a sample is a function of the generator's seed. A subclass makes the crop
    (``transform_clip``: a box cut from the decoded frame, ``BoxCrop``, or torchvision v2
    transforms, ``V2Transform``); this class then mirrors the clip with probability 0.5 when
    ``flip`` is on, swapping the labels of ``flip_label_map``. Normalisation is not done here:
    it runs on the device, batched.

    Args:
        crop_size: output side; ``None`` takes the datamodule's ``train_crop_size``.
        flip: random horizontal flip with probability 0.5.
        flip_label_map: labels that change when the clip is mirrored (Something-Something's
            "left"/"right" classes): ``{label: mirrored_label}``; applied as given, so list both
            directions of a pair. ``None``: the datamodule's ``flip_label_map``.

    ``flow`` (set by ``bound`` for the flow stream): the frames are flow stacks
    ``[T, H, W, 2L]`` and a flip also negates their x components.
    """

    flow: bool = False

    def __init__(
        self,
        crop_size: int | None = None,
        flip: bool = True,
        flip_label_map: Mapping[int, int] | None = None,
    ) -> None:
        if crop_size is not None and crop_size <= 0:
            raise ValueError(f"crop_size must be positive, got {crop_size}")
        self.crop_size = crop_size
        self.flip = flip
        self.flip_label_map = {int(k): int(v) for k, v in (flip_label_map or {}).items()}

    def bound(
        self, crop_size: int, flip: bool, flip_label_map: Mapping[int, int], flow: bool = False
    ) -> ClipTransform:
        """A copy with the datamodule's settings filled in: ``crop_size`` where this one has
        none, mirroring off when the dataset forbids it (``flip=False``: mirror-sensitive
        labels), ``flip_label_map`` where this one has none, and ``flow``."""
        bound = copy.copy(self)
        bound.flow = flow
        if bound.crop_size is None:
            bound.crop_size = crop_size
        bound.flip = self.flip and flip
        if not bound.flip_label_map:
            bound.flip_label_map = {int(k): int(v) for k, v in flip_label_map.items()}
        return bound

    @abstractmethod
    def transform_clip(self, clip: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``clip`` ``uint8 [T, C, H, W]`` → ``uint8 [T, C, crop_size, crop_size]``: the crop
        (and any other change but the flip), one random draw for the whole clip."""

    def __call__(
        self, frames: Tensor, label: int, generator: torch.Generator | None = None
    ) -> tuple[Tensor, int]:
        _check_frames(frames, self.flow)
        if self.crop_size is None:
            raise ValueError(f"{type(self).__name__}: crop_size is not set (a datamodule "
                             "sets it from train_crop_size)")
        x = self.transform_clip(frames.permute(0, 3, 1, 2), generator)  # [T, C, c, c]
        if self.flip and bool(torch.rand(1, generator=generator) < 0.5):
            x = _mirror(x, self.flow)
            label = self.flip_label_map.get(int(label), label)
        return x.permute(1, 0, 2, 3).contiguous(), label

    def _repr_args(self) -> str:
        return ""

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(crop_size={self.crop_size}{self._repr_args()}, "
                f"flip={self.flip}, flip_label_map={self.flip_label_map or None})")


class BoxCrop(ClipTransform):
    """A train transform that cuts one box of the decoded frame (``source_box``) from every
    frame and resizes it to ``crop_size`` (torchvision.transforms.v2's ``resized_crop``,
    antialiased): the geometry of "resize, then crop" with a single resampling."""

    @abstractmethod
    def source_box(
        self, height: int, width: int, generator: torch.Generator | None = None
    ) -> tuple[int, int, int, int]:
        """``(top, left, h, w)`` of the crop in a decoded ``height × width`` frame."""

    def transform_clip(self, clip: Tensor, generator: torch.Generator | None = None) -> Tensor:
        top, left, h, w = self.source_box(*clip.shape[-2:], generator)
        return TF.resized_crop(clip, top, left, h, w, [self.crop_size, self.crop_size],
                               antialias=True)


class ShortSideCrop(BoxCrop):
    """A crop drawn by ``crop_box`` in the frame resized to short side ``short_side``
    (``None``: the decoded frame), then mapped back to the decoded frame."""

    def __init__(
        self,
        crop_size: int | None = None,
        short_side: int | None = None,
        flip: bool = True,
        flip_label_map: Mapping[int, int] | None = None,
    ) -> None:
        super().__init__(crop_size, flip, flip_label_map)
        if short_side is not None and short_side <= 0:
            raise ValueError(f"short_side must be positive, got {short_side}")
        self.short_side = short_side

    @abstractmethod
    def crop_box(
        self, height: int, width: int, generator: torch.Generator | None = None
    ) -> tuple[int, int, int, int]:
        """``(top, left, h, w)`` of a random crop inside a ``height × width`` frame."""

    def source_box(
        self, height: int, width: int, generator: torch.Generator | None = None
    ) -> tuple[int, int, int, int]:
        if self.short_side is None:
            return self.crop_box(height, width, generator)
        nominal = short_side_size(height, width, self.short_side)
        return _to_source(self.crop_box(*nominal, generator), nominal, (height, width))


class TrainTransform(ShortSideCrop):
    """Random-resized crop + horizontal flip (the default train transform).

    The crop covers a fraction in ``scale`` of the frame area with an aspect ratio in ``ratio``
    (log-uniform), as torchvision's ``RandomResizedCrop``, and is resized to
    ``crop_size × crop_size``. The box is drawn in the coordinates of the frame after the
    short-side resize and cut straight from the decoded frame.

    Args:
        crop_size: output side.
        short_side: nominal short side the crop geometry refers to (``None``: the decoded size).
        scale: range of the crop area as a fraction of the frame area.
        ratio: range of the crop aspect ratio (width / height).
        flip, flip_label_map: as ``ClipTransform``.
    """

    def __init__(
        self,
        crop_size: int | None = None,
        short_side: int | None = None,
        scale: tuple[float, float] = (0.25, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        flip: bool = True,
        flip_label_map: Mapping[int, int] | None = None,
    ) -> None:
        super().__init__(crop_size, short_side, flip, flip_label_map)
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"scale must satisfy 0 < min <= max <= 1, got {scale}")
        if not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"ratio must satisfy 0 < min <= max, got {ratio}")
        self.scale = (float(scale[0]), float(scale[1]))
        self.ratio = (float(ratio[0]), float(ratio[1]))

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
                top = _randint(0, height - h, generator)
                left = _randint(0, width - w, generator)
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

    def _repr_args(self) -> str:
        return f", short_side={self.short_side}, scale={self.scale}, ratio={self.ratio}"


class ResizeRandomCrop(BoxCrop):
    """Resize every frame, then one ``crop_size`` square at a uniformly random place.

    The resize is one of:

    * ``size=[h, w]``: every frame to ``h × w``, aspect ratio not kept (s3d §3.2: "resize
      input frames to 256 × 256 and then take random crops of size 224 × 224");
    * ``short_side=s``: the shorter side to ``s`` (u2s §IV-B: short side 240, a 224 crop "at
      the same location for the frames in a whole video clip");
    * ``short_side=[lo, hi]``: the shorter side to a size drawn uniformly from ``lo..hi`` per
      clip (dfb §4.2's "random resizing"; scale jitter in the I3D/non-local recipe that dfb
      builds on uses ``[256, 320]``);
    * neither: the decoded size.

    A frame whose resized side is below ``crop_size`` is enlarged to it. The crop is cut from
    the decoded frame at the place the resized frame's crop covers (one resampling).

    Args:
        crop_size: output side (``None``: the datamodule's ``train_crop_size``).
        short_side: the short-side resize, a size or a ``[lo, hi]`` range (see above).
        size: ``[h, w]`` of the fixed resize; excludes ``short_side``.
        flip, flip_label_map: as ``ClipTransform``.
    """

    def __init__(
        self,
        crop_size: int | None = None,
        short_side: int | tuple[int, int] | None = None,
        size: tuple[int, int] | None = None,
        flip: bool = True,
        flip_label_map: Mapping[int, int] | None = None,
    ) -> None:
        super().__init__(crop_size, flip, flip_label_map)
        if size is not None and short_side is not None:
            raise ValueError("give short_side or size, not both")
        if isinstance(short_side, Sequence):
            low, high = (int(v) for v in short_side)
            if not 0 < low <= high:
                raise ValueError(f"short_side range must satisfy 0 < lo <= hi, got {short_side}")
            short_side = (low, high)
        elif short_side is not None and short_side <= 0:
            raise ValueError(f"short_side must be positive, got {short_side}")
        self.short_side = short_side
        self.size = _fixed_size(size)

    def resized_size(
        self, height: int, width: int, generator: torch.Generator | None = None
    ) -> tuple[int, int]:
        """``(h, w)`` of a ``height × width`` frame after the resize (a draw for a range)."""
        if self.size is not None:
            nominal = self.size
        elif isinstance(self.short_side, tuple):
            nominal = short_side_size(height, width, _randint(*self.short_side, generator))
        elif self.short_side is not None:
            nominal = short_side_size(height, width, self.short_side)
        else:
            nominal = (height, width)
        c = self.crop_size or 1
        return max(nominal[0], c), max(nominal[1], c)

    def source_box(
        self, height: int, width: int, generator: torch.Generator | None = None
    ) -> tuple[int, int, int, int]:
        nh, nw = self.resized_size(height, width, generator)
        c = self.crop_size or 1
        box = (_randint(0, nh - c, generator), _randint(0, nw - c, generator), c, c)
        return _to_source(box, (nh, nw), (height, width))

    def _repr_args(self) -> str:
        return f", short_side={self.short_side}, size={self.size}"


class MultiScaleCrop(ShortSideCrop):
    """The multi-scale crop of TSN, as the unified-analysis authors' released code trains with.

    Described from IBM/action-recognition-pytorch (``utils/video_transforms.py``,
    ``GroupMultiScaleCrop``, used by ``get_augmentor`` with scales ``[1, .875, .75, .66]``,
    then a random horizontal flip), on frames whose short side was resized to 256 when they
    were extracted. Per clip, in the frame after the ``short_side`` resize:

    1. candidate sides are ``int(min(H, W) * s)`` for each ``s`` in ``scales``, a side within
       3 px of ``crop_size`` becoming exactly ``crop_size``;
    2. the crop's (width, height) is drawn uniformly from the pairs of candidate sides whose
       positions in ``scales`` differ by at most ``max_distort`` (aspect ratios near square);
    3. its top-left corner is drawn uniformly from a fixed grid with steps
       ``((W - w) // 4, (H - h) // 4)``: the 4 corners and the centre, plus (``more_fix_crop``)
       the 4 edge midpoints and the 4 quarter points — 13 places; with ``fix_crop=False``,
       anywhere;
    4. the crop is resized to ``crop_size × crop_size``.

    Args:
        crop_size: output side (``None``: the datamodule's ``train_crop_size``).
        short_side: short side the geometry refers to (``None``: the decoded size).
        scales: crop sides as fractions of the short side.
        max_distort: largest index distance between the width's and the height's scale.
        fix_crop: corners from the fixed grid (else uniformly anywhere).
        more_fix_crop: the 13-place grid instead of the 5-place one.
        flip, flip_label_map: as ``ClipTransform``.
    """

    def __init__(
        self,
        crop_size: int | None = None,
        short_side: int | None = 256,
        scales: Sequence[float] = (1.0, 0.875, 0.75, 0.66),
        max_distort: int = 1,
        fix_crop: bool = True,
        more_fix_crop: bool = True,
        flip: bool = True,
        flip_label_map: Mapping[int, int] | None = None,
    ) -> None:
        super().__init__(crop_size, short_side, flip, flip_label_map)
        if not scales or not all(0 < s <= 1 for s in scales):
            raise ValueError(f"scales must be fractions in (0, 1], got {scales}")
        if max_distort < 0:
            raise ValueError(f"max_distort must be >= 0, got {max_distort}")
        self.scales = tuple(float(s) for s in scales)
        self.max_distort = max_distort
        self.fix_crop = fix_crop
        self.more_fix_crop = more_fix_crop

    def crop_sizes(self, height: int, width: int) -> list[tuple[int, int]]:
        """The ``(w, h)`` pairs a crop of a ``height × width`` frame is drawn from."""
        c = self.crop_size or 0
        sides = [int(min(height, width) * s) for s in self.scales]
        sides = [c if abs(side - c) < 3 else side for side in sides]
        return [(w, h) for i, h in enumerate(sides) for j, w in enumerate(sides)
                if abs(i - j) <= self.max_distort]

    def corners(self, height: int, width: int, h: int, w: int) -> list[tuple[int, int]]:
        """``(top, left)`` places of an ``h × w`` crop on the fixed grid."""
        sy, sx = (height - h) // 4, (width - w) // 4
        grid = [(0, 0), (0, 4), (4, 0), (4, 4), (2, 2)]  # (row, column) in steps
        if self.more_fix_crop:
            grid += [(2, 0), (2, 4), (4, 2), (0, 2), (1, 1), (1, 3), (3, 1), (3, 3)]
        return [(r * sy, q * sx) for r, q in grid]

    def crop_box(
        self, height: int, width: int, generator: torch.Generator | None = None
    ) -> tuple[int, int, int, int]:
        """``(top, left, h, w)`` of a random crop inside a ``height × width`` frame."""
        pairs = self.crop_sizes(height, width)
        w, h = pairs[_randint(0, len(pairs) - 1, generator)]
        h, w = min(h, height), min(w, width)
        if self.fix_crop:
            places = self.corners(height, width, h, w)
            top, left = places[_randint(0, len(places) - 1, generator)]
        else:
            top = _randint(0, height - h, generator)
            left = _randint(0, width - w, generator)
        return top, left, h, w

    def _repr_args(self) -> str:
        return (f", short_side={self.short_side}, scales={self.scales}, "
                f"max_distort={self.max_distort}, fix_crop={self.fix_crop}, "
                f"more_fix_crop={self.more_fix_crop}")


class V2Transform(ClipTransform):
    """Any torchvision.transforms.v2 transform as a train transform: one draw for the clip.

    ``transforms`` (one v2 transform, or a list run in order as by ``v2.Compose``; by
    ``class_path`` in YAML) gets the whole clip at once, as a ``tv_tensors.Video``
    ``uint8 [T, C, H, W]``: a v2 transform draws its parameters once per call and applies them
    to every frame of a video, so the crop's place, the jitter's factors or RandAugment's ops
    are the clip's, not each frame's. The transforms must end at ``crop_size × crop_size``
    (e.g. a ``RandomResizedCrop`` of the datamodule's ``train_crop_size``) and keep ``uint8``
    (normalisation runs on the device). Example: ``experiments/transforms/v2_example.yaml``.

    Randomness: v2 transforms take no generator; they draw from torch's global RNG. In a
    DataLoader worker that RNG is seeded per worker and advanced by every sample the worker
    loaded before, so a clip would depend on ``num_workers``, on the DDP rank and on a resume,
    breaking the contract that a sample is a function of ``(seed, epoch, index)``
    (``datamodules.randomness``). The call therefore draws one seed from the sample's
    ``generator`` and runs the transforms inside ``torch.random.fork_rng``, with the CPU RNG
    seeded from it: their draws become a function of the generator, and the global RNG is
    restored afterwards, so code that shares the process (dropout with ``num_workers=0``)
    draws what it would have drawn without them. ``generator=None`` leaves the global RNG be.

    Mirroring is this class's own ``flip`` (after the transforms): it swaps the labels of
    ``flip_label_map``, obeys a datamodule's ``flip: false`` and negates flow's x components.
    ``v2.RandomHorizontalFlip`` is refused among ``transforms``, since it can do none of this.
    On the flow stream (``flow``) the stack's ``2L`` channels are the video's channels: use
    geometric transforms only.

    Args:
        transforms: the v2 transform(s).
        crop_size: the side the transforms end at (``None``: the datamodule's
            ``train_crop_size``); checked on every clip.
        flip, flip_label_map: as ``ClipTransform``.
    """

    def __init__(
        self,
        transforms: v2.Transform | Sequence[v2.Transform],
        crop_size: int | None = None,
        flip: bool = True,
        flip_label_map: Mapping[int, int] | None = None,
    ) -> None:
        super().__init__(crop_size, flip, flip_label_map)
        steps = list(transforms) if isinstance(transforms, Sequence) else [transforms]
        if not steps:
            raise ValueError("V2Transform needs at least one transform")
        for step in _nested(steps):
            if isinstance(step, v2.RandomHorizontalFlip):
                raise ValueError("V2Transform: use its flip option, not RandomHorizontalFlip "
                                 "(which cannot swap flip_label_map's labels, obey the "
                                 "datamodule's flip: false or mirror optical flow)")
        self.transforms = steps[0] if len(steps) == 1 else v2.Compose(steps)

    def transform_clip(self, clip: Tensor, generator: torch.Generator | None = None) -> Tensor:
        video = tv_tensors.Video(clip)
        if generator is None:
            out = self.transforms(video)
        else:
            seed = int(torch.randint(2**63 - 1, (1,), generator=generator))
            with torch.random.fork_rng(devices=[]):  # the CPU RNG only; restored on exit
                torch.default_generator.manual_seed(seed)
                out = self.transforms(video)
        out = out.as_subclass(Tensor)
        expected = (clip.shape[0], clip.shape[1], self.crop_size, self.crop_size)
        if tuple(out.shape) != expected or out.dtype != torch.uint8:
            raise ValueError(
                f"V2Transform: the transforms gave {out.dtype} {list(out.shape)}, expected "
                f"uint8 {list(expected)} [T, C, crop, crop]: end them at crop_size "
                f"{self.crop_size} (the datamodule's train_crop_size) and keep uint8")
        return out

    def _repr_args(self) -> str:
        return f", transforms={self.transforms!r}"


def _nested(transforms: Iterable[Any]) -> Iterator[Any]:
    """Every transform in ``transforms`` and inside their containers (``Compose``,
    ``RandomApply``, ``RandomChoice``, ``RandomOrder``: a ``transforms`` attribute)."""
    for transform in transforms:
        yield transform
        yield from _nested(getattr(transform, "transforms", None) or [])


class ClipViews(ABC):
    """Deterministic test views: every clip of a video → its views, clip-major.

    Call: ``clips uint8 [K, T, H, W, 3]`` (or one clip ``[T, H, W, 3]``) →
    ``uint8 [K * views_per_clip, 3, T, h, w]``; view ``k * views_per_clip`` is clip ``k``'s
    first (centre) view. ``fixed_size`` says whether every video's views have the same shape
    (so test batches of several videos stack); a datamodule tests one video per batch
    otherwise. With ``flow`` (set by the datamodule, through ``bound``, for the flow stream)
    the clips are flow stacks ``[K, T, H, W, 2L]`` and mirrored views negate their x components.
    """

    __test__ = False  # not a pytest class

    views_per_clip: int = 1
    fixed_size: bool = True
    flow: bool = False

    def bound(self, crop_size: int, flow: bool = False) -> ClipViews:
        """A copy with the datamodule's settings filled in: ``flow``, and the crop side where
        the views have one and it is unset (``TestViews``)."""
        bound = copy.copy(self)
        bound.flow = flow
        return bound

    @abstractmethod
    def clip_views(self, clip: Tensor, clip_index: int) -> Tensor:
        """``clip`` ``uint8 [T, 3, H, W]`` (clip number ``clip_index``) → ``[v, 3, T, h, w]``."""

    def __call__(self, clips: Tensor) -> Tensor:
        if clips.ndim == 4:
            clips = clips.unsqueeze(0)
        if clips.ndim != 5:
            raise ValueError(f"expected clips [K, T, H, W, 3], got shape {tuple(clips.shape)}")
        _check_frames(clips[0], self.flow)
        return torch.cat([self.clip_views(clip.permute(0, 3, 1, 2), k)
                          for k, clip in enumerate(clips)])


class TestViews(ClipViews):
    """Square crops of each clip (the default test views).

    The clip is resized — so that its short side is ``short_side`` (``None``: left as
    decoded), or with ``size=[h, w]`` to ``h × w`` whatever its aspect ratio; never below
    ``crop_size`` — then cut into ``num_crops`` squares of ``crop_size``:

    * 1: the centre;
    * 3: centre, then the start and the end of the long side (centred on the short side);
    * 5: centre, top-left, top-right, bottom-left, bottom-right;
    * 10: the 5 crops, then the same 5 mirrored.

    View 0 is always the centre crop (what validation uses). ``size=[256, 256]`` with one
    224 crop is s3d's test view (§3.2: "During evaluation, we use all frames and take
    224 × 224 center crops from the resized frames", frames resized to 256 × 256 as in
    training: ``ResizeRandomCrop(size=[256, 256])``).

    Args:
        crop_size: side of the crops (``None``: the datamodule's ``test_crop_size``).
        short_side: the short-side resize; excludes ``size``.
        num_crops: 1, 3, 5 or 10.
        size: ``[h, w]`` of a fixed resize (aspect ratio not kept).
    """

    def __init__(
        self,
        crop_size: int | None = None,
        short_side: int | None = None,
        num_crops: int = 1,
        size: tuple[int, int] | None = None,
    ) -> None:
        if num_crops not in (1, 3, 5, 10):
            raise ValueError(f"num_crops must be 1, 3, 5 or 10, got {num_crops}")
        if crop_size is not None and crop_size <= 0:
            raise ValueError(f"crop_size must be positive, got {crop_size}")
        if short_side is not None and short_side <= 0:
            raise ValueError(f"short_side must be positive, got {short_side}")
        if size is not None and short_side is not None:
            raise ValueError("give short_side or size, not both")
        self.crop_size = crop_size
        self.short_side = short_side
        self.size = _fixed_size(size)
        self.num_crops = num_crops
        self.views_per_clip = num_crops

    def bound(self, crop_size: int, flow: bool = False) -> TestViews:
        bound = super().bound(crop_size, flow)
        if bound.crop_size is None:
            bound.crop_size = crop_size
        return bound

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

    def clip_views(self, clip: Tensor, clip_index: int) -> Tensor:
        c = self.crop_size
        if c is None:
            raise ValueError("TestViews: crop_size is not set (a datamodule sets it from "
                             "test_crop_size)")
        if self.size is not None:
            size = [max(self.size[0], c), max(self.size[1], c)]
            x = clip if size == list(clip.shape[-2:]) else TF.resize(clip, size, antialias=True)
        else:
            x = resize_short_side(clip, max(self.short_side or min(clip.shape[-2:]), c))
        height, width = x.shape[-2:]
        views = [x[:, :, t : t + c, l : l + c] for t, l in self.boxes(height, width)]
        if self.num_crops == 10:
            views += [_mirror(v, self.flow) for v in views]
        return torch.stack(views).permute(0, 2, 1, 3, 4).contiguous()  # [V, 3, T, c, c]

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(crop_size={self.crop_size}, "
                f"short_side={self.short_side}, num_crops={self.num_crops}, size={self.size})")


class FullFrameViews(ClipViews):
    """The whole frame as one view per clip, for fully-convolutional inference.

    dfb §4.2, 3D test: "Instead of resizing each frame to a pre-defined input size, we run
    fully convolutional inference and average the predictions. Finally, we flip horizontally
    every other segment." Each clip is resized to short side ``short_side`` at its own aspect
    ratio (full width, no crop); with ``flip_alternate`` clips 1, 3, 5, … are mirrored. Views of
    videos of different shapes do not stack, so a datamodule tests one video per batch.
    """

    fixed_size = False

    def __init__(self, short_side: int | None = 256, flip_alternate: bool = True) -> None:
        if short_side is not None and short_side <= 0:
            raise ValueError(f"short_side must be positive, got {short_side}")
        self.short_side = short_side
        self.flip_alternate = flip_alternate

    def clip_views(self, clip: Tensor, clip_index: int) -> Tensor:
        x = clip if self.short_side is None else resize_short_side(clip, self.short_side)
        if self.flip_alternate and clip_index % 2 == 1:
            x = _mirror(x, self.flow)
        return x.permute(1, 0, 2, 3).unsqueeze(0).contiguous()  # [1, 3, T, H', W']

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(short_side={self.short_side}, "
                f"flip_alternate={self.flip_alternate})")

