"""ImageNet initialisation: torchvision 2D ResNet / GoogLeNet weights inflated into video nets.

Inflation (Carreira & Zisserman, I3D §2.2; S3D §3; dfb §4.2 "Network Initialization") turns a
2D kernel ``w: [O, I, k, k]`` into a ``kt×k×k`` kernel:

- ``"mean"``: ``w`` repeated ``kt`` times along time and divided by ``kt`` — a video of one
  repeated frame gives the 2D response away from the temporal borders.
- ``"center"``: ``w`` at the centre tap, zeros elsewhere — the 3D net *is* the 2D net applied per
  frame, so a repeated-frame video gives the 2D feature maps exactly (borders included).

``1×k×k`` kernels (2D and separable spatial convs) take ``w`` as is. Temporal ``kt×1×1`` convs of
separable blocks have no 2D counterpart: they start as the identity (``center``) or a uniform
``1/kt`` average over their own channel (``mean``), the two inflations of a 1×1 identity.
Modules the 2D net lacks (gating, TAM, non-local, the separable blocks' middle BN) keep their
own initialisation. A 2D key that has no place in the video net, or a shape that does not fit, is
an error that lists every such key at once.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

InflateMode = str  # "mean" | "center"

#: 2D keys that are the image classifier, not the backbone; never loaded, never an error
_CLASSIFIER_KEYS = re.compile(r"^(fc|aux1|aux2)\.")


def inflate_conv_weight(weight_2d: Tensor, shape: torch.Size, mode: InflateMode) -> Tensor:
    """``[O, I, kh, kw]`` → ``shape = [O, I', kt, kh, kw]`` by ``mode`` ("mean" | "center").

    When ``I' != I`` (e.g. optical flow or grey input) the kernel is averaged over its input
    channels and replicated ``I'`` times (TSN's cross-modality initialisation).
    """
    if mode not in ("mean", "center"):
        raise ValueError(f"inflate must be 'mean' or 'center', got {mode!r}")
    out_c, in_c, kt, kh, kw = shape
    if weight_2d.shape[0] != out_c or tuple(weight_2d.shape[2:]) != (kh, kw):
        raise ValueError(f"cannot inflate {tuple(weight_2d.shape)} into {tuple(shape)}")
    w = weight_2d
    if w.shape[1] != in_c:
        w = w.mean(dim=1, keepdim=True).expand(-1, in_c, -1, -1)
    if kt == 1:
        return w.unsqueeze(2).clone()
    if mode == "mean":
        return w.unsqueeze(2).repeat(1, 1, kt, 1, 1) / kt
    out = w.new_zeros(shape)
    out[:, :, kt // 2] = w
    return out


def identity_temporal_weight(shape: torch.Size, mode: InflateMode) -> Tensor:
    """A ``[C, C, kt, 1, 1]`` temporal kernel that is the identity (``center``) or a per-channel
    average over ``kt`` frames (``mean``)."""
    out_c, in_c, kt, _, _ = shape
    w = torch.zeros(shape)
    eye = torch.eye(out_c, in_c)
    if mode == "center":
        w[:, :, kt // 2, 0, 0] = eye
    else:
        w[:, :, :, 0, 0] = eye.unsqueeze(-1) / kt
    return w


def resolve_state_dict(pretrained: Any, arch: str) -> dict[str, Tensor]:
    """``pretrained`` as given to a backbone → a 2D state dict.

    ``arch`` is torchvision's builder name (``"resnet50"``, ``"googlenet"``), used for
    ``"imagenet"``, which downloads torchvision's default weights (needs internet).
    """
    if isinstance(pretrained, Mapping):
        return dict(pretrained)
    if pretrained == "imagenet":
        import torchvision

        weights = torchvision.models.get_model_weights(arch).DEFAULT
        return dict(weights.get_state_dict(progress=False))
    if isinstance(pretrained, (str, os.PathLike)):
        if not os.path.isfile(pretrained):
            raise FileNotFoundError(f"pretrained weights file not found: {os.fspath(pretrained)}")
        loaded = torch.load(pretrained, map_location="cpu", weights_only=True)
        if isinstance(loaded, Mapping) and "state_dict" in loaded:
            loaded = loaded["state_dict"]
        if not isinstance(loaded, Mapping):
            raise ValueError(f"{os.fspath(pretrained)} does not hold a state dict")
        return dict(loaded)
    raise TypeError(
        "pretrained must be None, 'imagenet', a path to a state dict or a state dict; "
        f"got {type(pretrained).__name__}"
    )


def load_inflated(
    model: nn.Module,
    state_dict_2d: Mapping[str, Tensor],
    key_map: Callable[[str], str | None],
    inflate: InflateMode,
    source: str = "2D state dict",
) -> list[str]:
    """Copy ``state_dict_2d`` into ``model``, inflating conv kernels.

    ``key_map(video_key)`` names the 2D key that initialises ``video_key`` or ``None`` when the
    parameter is new (it keeps its init; temporal convs ``*.temporal.weight`` get the identity).
    Returns the video keys that were left at their own initialisation. Raises ``KeyError``
    listing every 2D key that was not used and every mapped key missing from the 2D dict, and
    ``ValueError`` listing every shape that does not fit.
    """
    target = model.state_dict()
    used: set[str] = set()
    missing, bad_shape, new = [], [], []
    updates: dict[str, Tensor] = {}
    for key, value in target.items():
        src = key_map(key)
        if src is None:
            square = value.dim() == 5 and value.shape[0] == value.shape[1]
            if key.endswith("temporal.weight") and square:
                updates[key] = identity_temporal_weight(value.shape, inflate)
            new.append(key)
            continue
        if src not in state_dict_2d:
            missing.append(f"{key} <- {src}")
            continue
        used.add(src)
        w = state_dict_2d[src]
        if value.dim() == 5 and w.dim() == 4:
            try:
                updates[key] = inflate_conv_weight(w, value.shape, inflate)
            except ValueError:
                bad_shape.append(f"{key} {tuple(value.shape)} <- {src} {tuple(w.shape)}")
        elif w.shape == value.shape:
            updates[key] = w.clone()
        else:
            bad_shape.append(f"{key} {tuple(value.shape)} <- {src} {tuple(w.shape)}")
    unused = sorted(
        k for k in state_dict_2d if k not in used and not _CLASSIFIER_KEYS.match(k)
    )
    if missing or unused:
        lines = [f"{source} does not match {type(model).__name__}:"]
        if missing:
            lines.append(f"  video keys whose 2D key is missing ({len(missing)}): "
                         + ", ".join(missing))
        if unused:
            lines.append(f"  2D keys with no place in the video net ({len(unused)}): "
                         + ", ".join(unused))
        raise KeyError("\n".join(lines))
    if bad_shape:
        raise ValueError(
            f"{source}: shapes do not fit (did you set width_multiplier or a different depth?): "
            + "; ".join(bad_shape)
        )
    with torch.no_grad():
        for key, value in updates.items():
            target[key].copy_(value)
    return new


# -- ResNet ---------------------------------------------------------------------------------------

_RESNET_PATTERNS: list[tuple[re.Pattern, str]] = [
    (re.compile(r"^stage1\.conv(?:\.spatial)?\.weight$"), "conv1.weight"),
    (re.compile(r"^stage1\.bn\.(.+)$"), r"bn1.\1"),
    (
        re.compile(r"^stage(\d)\.blocks\.(\d+)\.(conv\d)(?:\.spatial)?\.weight$"),
        r"layer{L}.\2.\3.weight",
    ),
    (re.compile(r"^stage(\d)\.blocks\.(\d+)\.(bn\d)\.(.+)$"), r"layer{L}.\2.\3.\4"),
    (re.compile(r"^stage(\d)\.blocks\.(\d+)\.downsample\.(.+)$"), r"layer{L}.\2.downsample.\3"),
]


def resnet_key_map(key: str) -> str | None:
    """``VideoResNet`` key → torchvision ``ResNet`` key (stage k ↔ ``layer{k-1}``), or ``None``."""
    for pattern, template in _RESNET_PATTERNS:
        m = pattern.match(key)
        if m:
            if "{L}" in template:
                template = template.replace("{L}", str(int(m.group(1)) - 1))
            return m.expand(template)
    return None


def load_resnet2d(model: nn.Module, pretrained: Any, inflate: InflateMode = "mean") -> list[str]:
    """Initialise a ``VideoResNet`` from a torchvision ResNet of the same depth (see module doc)."""
    state = resolve_state_dict(pretrained, f"resnet{model.depth}")
    if model.width_multiplier != 1.0:
        raise ValueError("pretrained weights need width_multiplier=1.0")
    return load_inflated(model, state, resnet_key_map, inflate, f"ResNet-{model.depth} weights")


# -- InceptionV1 / GoogLeNet ----------------------------------------------------------------------


def googlenet_key_map(key: str) -> str | None:
    """``InceptionV1Video`` key → torchvision ``GoogLeNet`` key, or ``None`` for new parameters.

    ``stage3.layers.mixed_3b.branch2.1.conv.weight`` → ``inception3a.branch2.1.conv.weight``;
    a separable unit's spatial conv and first BN map, its ``temporal*`` and ``gate`` do not.
    """
    from models.inception import TORCHVISION_NAMES

    m = re.match(r"^stage\d\.layers\.([a-z0-9_]+)\.(.+)$", key)
    if m is None or m.group(1) not in TORCHVISION_NAMES:
        return None
    rest = m.group(2)
    if not re.search(r"(^|\.)(conv\.weight|bn\.[a-z_]+)$", rest):
        return None
    return f"{TORCHVISION_NAMES[m.group(1)]}.{rest}"


def load_googlenet2d(model: nn.Module, pretrained: Any, inflate: InflateMode = "mean") -> list[str]:
    """Initialise an ``InceptionV1Video`` from torchvision's GoogLeNet (see module doc).

    torchvision's ImageNet GoogLeNet was trained with ``transform_input=True`` (it re-normalises
    ImageNet-normalised input to [-1, 1] internally); feed such weights [-1, 1]-scaled frames.
    """
    state = resolve_state_dict(pretrained, "googlenet")
    if model.width_multiplier != 1.0:
        raise ValueError("pretrained weights need width_multiplier=1.0")
    return load_inflated(model, state, googlenet_key_map, inflate, "GoogLeNet weights")
