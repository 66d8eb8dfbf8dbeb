"""Named backbone presets: ``create_backbone(name, **overrides)`` and ``list_backbones()``.

Every backbone in the papers' tables is a preset (or a preset plus overrides), so YAML configs
name it instead of repeating its options:

- ``{tsn,i3d,s3d,r2plus1d,tam,tsm}_resnet{18,34,50,101,152}`` — the unified-analysis paper's
  module × backbone grid (§4, Table 1; no temporal pooling, its default). ``i3d_resnet50``
  inflates every 3×3 to 3×3×3 with a 3×7×7 stem (335.3 GFLOPs at 32×256², Table 2).
- ``dfb_i3d_resnet{…}`` — the dfb paper's I3D (§4.2): 5×7×7 stem, time ÷ 4 at the stem.
- ``r3d_18``, ``r2plus1d_18`` — torchvision's video ResNets (no stem pool, stride-2 time
  downsampling in stages 3–5; R(2+1)D with Tran et al.'s mid width), for cross-checks.
- ``{i2d,i3d,s3d,s3d_g,fast_s3d,top_heavy,bottom_heavy}_inception`` — the S3D paper's
  InceptionV1 family (§4, Fig. 2; Tables 2–3). ``top_heavy`` / ``bottom_heavy`` take
  ``transition=`` and ``temporal=`` (``"i3d"`` or ``"s3d"``) overrides.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from torch import nn

from models.inception import InceptionV1Video
from models.resnet import DEPTHS, VideoResNet

_PRESETS: dict[str, tuple[Callable[..., nn.Module], dict[str, Any]]] = {}


def register_backbone(name: str, builder: Callable[..., nn.Module], **defaults: Any) -> None:
    """Add a preset: ``create_backbone(name, **o)`` calls ``builder(**{**defaults, **o})``."""
    if name in _PRESETS:
        raise ValueError(f"backbone preset {name!r} is already registered")
    _PRESETS[name] = (builder, defaults)


def list_backbones() -> list[str]:
    """Names of all presets, sorted."""
    return sorted(_PRESETS)


def backbone_defaults(name: str) -> dict[str, Any]:
    """The options a preset pins (before overrides)."""
    return dict(_lookup(name)[1])


def create_backbone(name: str, **overrides: Any) -> nn.Module:
    """Build preset ``name``; ``overrides`` replace or add constructor options
    (``pretrained=``, ``inflate=``, ``temporal_pooling=``, ``width_multiplier=`` …)."""
    builder, defaults = _lookup(name)
    return builder(**{**defaults, **overrides})


def _lookup(name: str) -> tuple[Callable[..., nn.Module], dict[str, Any]]:
    if name not in _PRESETS:
        close = difflib.get_close_matches(name, _PRESETS, n=5)
        hint = f"; did you mean {close}?" if close else "; see models.list_backbones()"
        raise KeyError(f"unknown backbone {name!r}{hint}")
    return _PRESETS[name]


def _register_defaults() -> None:
    modules = {"tsn": "none", "i3d": "i3d", "s3d": "s3d", "r2plus1d": "r2plus1d", "tam": "tam"}
    modules["tsm"] = "tsm"
    for depth in DEPTHS:
        for prefix, temporal in modules.items():
            name = f"{prefix}_resnet{depth}"
            register_backbone(name, VideoResNet, depth=depth, temporal=temporal)
        register_backbone(
            f"dfb_i3d_resnet{depth}", VideoResNet, depth=depth, temporal="i3d", stem="dfb"
        )
    torchvision_like = dict(
        depth=18, stem_pool=False, temporal_pooling=True, temporal_downsample="stride"
    )
    register_backbone("r3d_18", VideoResNet, temporal="i3d", stem="3d", **torchvision_like)
    register_backbone(
        "r2plus1d_18",
        VideoResNet,
        temporal="r2plus1d",
        stem="separable",
        r2plus1d_expand=True,
        **torchvision_like,
    )
    inception = {
        "i2d": dict(temporal="none"),
        "i3d": dict(temporal="i3d"),
        "s3d": dict(temporal="s3d"),
        "s3d_g": dict(temporal="s3d", gating=True),
        # "the top 2 layers" (S3D §4.4) read as the top two Inception levels, Mixed_4 and
        # Mixed_5 — the transition at Max4b that §4.5 uses too; it gives 42.8 G vs the paper's
        # 43.47 G, while only Mixed_5 separable would give 37.5 G
        "fast_s3d": dict(temporal="s3d", temporal_layout="top_heavy", transition="mixed_4b"),
        "top_heavy": dict(temporal="i3d", temporal_layout="top_heavy", transition="mixed_4b"),
        "bottom_heavy": dict(
            temporal="i3d", temporal_layout="bottom_heavy", transition="mixed_4b"
        ),
    }
    for prefix, options in inception.items():
        register_backbone(f"{prefix}_inception", InceptionV1Video, **options)


_register_defaults()
