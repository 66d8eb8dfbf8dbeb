"""Starting a fit from other weights, and the papers' fine-tuning knobs.

- :func:`load_init_weights`: a Finegrain checkpoint, a whole-model state dict, a torchvision video
  state dict or a plain backbone state dict into a ``VideoRecognizer``: every tensor whose shape
  fits is kept; the head's classifier layers (``Head.classifier_layers``) start fresh when the
  class count differs; head stages copied from the backbone (``Head.backbone_copies``) start
  from the loaded backbone when the source has none (u2s §IV-B: the category-specific net starts
  from the same Kinetics weights as the universal net).
- :func:`frozen_bn_layers` / :func:`backbone_param_groups`: TSN's partial BN (Wang et al., TSN
  §3.2: BN statistics frozen in every layer but the first), frozen stages and a backbone
  learning-rate multiplier (a smaller rate for pretrained layers than for the new classifier).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from models.heads.base import load_backbone_stage_weights
from models.weights import (
    detect_format,
    load_weights,
    read_state_dict,
    select_prefix,
)

BatchNormMode = Literal["train", "partial", "frozen"]


def load_init_weights(model: nn.Module, source: Any) -> list[str]:
    """Load ``source`` into ``model`` (``.backbone`` and ``.head``); returns the report's lines.

    The backbone must take most of what the source offers (else :class:`WeightLoadError` naming
    the format the source looked like); the head keeps what fits.
    """
    state, where = read_state_dict(source)
    whole_model = any(k.startswith(("backbone.", "head.")) for k in state)
    backbone_state = select_prefix(state, "backbone.") if whole_model else state
    head_state = {k[5:]: v for k, v in state.items() if k.startswith("head.")}
    if not whole_model:  # a torchvision video net's classifier may still be the head's
        fmt = detect_format(state)
        head_state = _torchvision_classifier(model.head, state, fmt.classifier if fmt else ())
    report = load_weights(model.backbone, backbone_state, strict=False, log=False)
    report.source = where
    lines = str(report).splitlines()
    lines += _load_head(model.head, head_state)
    for name, copy in model.head.backbone_copies().items():
        if not any(k.startswith(name + ".") for k in head_state):
            load_backbone_stage_weights(model.backbone, copy)
            lines.append(f"  head: {', '.join(copy.stage_names)} copy started from the loaded "
                         "backbone (the source has none)")
    return lines


def _torchvision_classifier(
    head: nn.Module, state: Mapping[str, Tensor], prefixes: Iterable[str]
) -> dict[str, Tensor]:
    """The source's classifier (torchvision's ``fc``) named as the head's plain-network
    classifier (``Head.source_classifier``); used where the shapes fit (same class count)."""
    target = getattr(head, "source_classifier", None)
    prefix = next(iter(prefixes), None)
    if target is None or prefix is None:
        return {}
    return {f"{target}.{k[len(prefix) + 1:]}": v for k, v in state.items()
            if k.startswith(prefix + ".")}


def _load_head(head: nn.Module, state: Mapping[str, Tensor]) -> list[str]:
    """Head tensors that fit; classifier layers as a group, fresh when any of them differs."""
    target = head.state_dict()
    classifier = tuple(getattr(head, "classifier_layers", ()))

    def is_classifier(key: str) -> bool:
        return any(key == c or key.startswith(c + ".") for c in classifier)

    fresh_classifier = any(
        is_classifier(k) and k in state and state[k].shape != target[k].shape for k in target)
    loaded, kept, mismatched = [], [], []
    updates = {}
    for key, value in target.items():
        if key not in state:
            continue
        if is_classifier(key) and fresh_classifier:
            kept.append(key)
        elif state[key].shape == value.shape:
            updates[key] = state[key]
            loaded.append(key)
        else:
            mismatched.append(key)
    with torch.no_grad():
        for key, value in updates.items():
            target[key].copy_(value)
    lines = [f"  head: {len(loaded)}/{len(target)} tensors loaded"]
    if fresh_classifier:
        num = head.num_classes
        lines.append(f"  head: classifier re-initialised ({len(kept)} tensors: the source has "
                     f"another class count than {num}): {', '.join(kept[:4])}")
    if mismatched:
        lines.append(f"  head: shapes that do not fit, kept their init ({len(mismatched)}): "
                     + ", ".join(mismatched[:4]))
    return lines


def frozen_bn_layers(
    backbone: nn.Module, mode: BatchNormMode, frozen_stages: Sequence[str] = ()
) -> list[nn.Module]:
    """BatchNorm layers whose statistics stay fixed: all but the first (``partial``, TSN §3.2),
    all (``frozen``), and every one inside ``frozen_stages``."""
    if mode not in ("train", "partial", "frozen"):
        raise ValueError(f"batch_norm must be 'train', 'partial' or 'frozen', got {mode!r}")
    layers = [m for m in backbone.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    chosen = {"train": [], "partial": layers[1:], "frozen": layers}[mode]
    for name in frozen_stages:
        chosen += [m for m in _stage(backbone, name).modules()
                   if isinstance(m, nn.modules.batchnorm._BatchNorm) and m not in chosen]
    return chosen


def freeze_stages(backbone: nn.Module, names: Sequence[str]) -> None:
    """No gradient for the parameters of the named backbone stages."""
    for name in names:
        _stage(backbone, name).requires_grad_(False)


def _stage(backbone: nn.Module, name: str) -> nn.Module:
    stages = tuple(getattr(backbone, "stage_names", ()))
    if name not in stages:
        raise ValueError(f"frozen_stages: {name!r} is not a backbone stage ({list(stages)})")
    return getattr(backbone, name)


def backbone_param_groups(model: nn.Module, backbone_lr_mult: float) -> list[dict[str, Any]]:
    """Trainable parameters as two groups, the backbone's tagged ``lr_mult`` (applied to the
    optimiser's learning rate once it exists: :func:`scale_group_lrs`)."""
    backbone = [p for p in model.backbone.parameters() if p.requires_grad]
    ids = {id(p) for p in model.backbone.parameters()}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in ids]
    groups = [{"params": backbone, "lr_mult": backbone_lr_mult}, {"params": rest}]
    return [g for g in groups if g["params"]]


def scale_group_lrs(optimizer: torch.optim.Optimizer) -> None:
    for group in optimizer.param_groups:
        group["lr"] = group["lr"] * group.get("lr_mult", 1.0)
