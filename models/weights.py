"""Loading weights into a built backbone, timm-style (never inside a constructor), with a report.

``load_weights(backbone, pretrained)`` accepts:

- ``"imagenet"`` — torchvision's ImageNet weights of the backbone's 2D counterpart (its
  ``imagenet_arch``), from torchvision's cache (``$TORCH_HOME/hub/checkpoints``) or the network;
  other tags (``"kinetics400"``) where the preset names a torchvision video model;
- a path (``.pth`` state dict or a Lightning ``.ckpt``) or an in-memory state dict.

The source's *format* is recognised from its keys — a torchvision 2D ResNet / GoogLeNet (inflated
to 3D by ``inflate``), a torchvision video ResNet (``r3d_18``, ``mc3_18``, ``r2plus1d_18``) or
S3D, a Finegrain backbone or checkpoint (its ``backbone.`` part, any width), or anything with a
``key_map`` / ``prefix`` — and mapped onto the backbone by the key map that lives next to the
model (``models.resnet``, ``models.inception``). Every load returns (and logs) a
:class:`LoadReport`: tensors loaded, adapted (inflated, cross-modality), kept at their own
initialisation and why, missing, mismatched, unexpected. A load that leaves most of the network
unloaded is an error that names the format the source looked like; with ``strict`` (the default
for backbones) so is any missing, mismatched or unexpected tensor.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from models.inflation import (
    InflateMode,
    cross_modality_weight,
    identity_temporal_weight,
    inflate_conv_weight,
)

logger = logging.getLogger(__name__)

KeyMap = Callable[[str, nn.Module], "str | None"]

#: what ``pretrained`` / ``init_weights`` accept (the type the command line sees)
WeightsSource = str | dict | None


class WeightLoadError(ValueError):
    """Weights that do not fit the network, or a file that holds no usable weights."""


@dataclass(frozen=True)
class WeightFormat:
    """A kind of state dict: how to recognise it and map it onto a model.

    ``key_map(model_key, model)`` names the source key for a model key (``None``: the source has
    no counterpart); ``None`` means the keys are the model's own. ``inflate``: 2D kernels to be
    inflated (and ``*.temporal.weight`` convs started as the identity). ``classifier``: key
    prefixes of the source's own classifier(s), which a backbone never loads.
    """

    name: str
    description: str
    detect: Callable[[Mapping[str, Any]], bool]
    key_map: KeyMap | None
    inflate: bool = False
    classifier: tuple[str, ...] = ()


_FORMATS: dict[str, WeightFormat] = {}


def register_format(fmt: WeightFormat) -> WeightFormat:
    """Make ``fmt`` known (recognised in error messages); models list the names they load."""
    _FORMATS[fmt.name] = fmt
    return fmt


def detect_format(state: Mapping[str, Any]) -> WeightFormat | None:
    """The known format ``state``'s keys look like, or ``None``."""
    return next((f for f in _FORMATS.values() if f.detect(state)), None)


@dataclass
class LoadReport:
    """What a load did. ``loaded`` counts the model's tensors that now hold source values."""

    source: str
    format: str
    total: int
    loaded: list[str] = field(default_factory=list)
    adapted: dict[str, str] = field(default_factory=dict)
    kept: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    mismatched: dict[str, str] = field(default_factory=dict)
    unexpected: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    @property
    def mappable(self) -> int:
        """Tensors the source should have given (all but those with no counterpart in it)."""
        return self.total - len(self.kept)

    @property
    def problems(self) -> bool:
        return bool(self.missing or self.mismatched or self.unexpected)

    def __str__(self) -> str:
        lines = [f"weights from {self.source} ({self.format}): {len(self.loaded)}/{self.total} "
                 "tensors loaded"]
        for how, keys in _group(self.adapted).items():
            lines.append(f"  adapted ({len(keys)}, {how}): {_names(keys)}")
        for why, keys in _group(self.kept).items():
            lines.append(f"  kept their own init ({len(keys)}, {why}): {_names(keys)}")
        if self.missing:
            lines.append(f"  missing from the source ({len(self.missing)}): "
                         + _names([f"{k} <- {v}" for k, v in self.missing.items()]))
        if self.mismatched:
            lines.append(f"  shapes that do not fit ({len(self.mismatched)}): "
                         + _names([f"{k} {v}" for k, v in self.mismatched.items()]))
        if self.unexpected:
            lines.append(f"  unexpected in the source ({len(self.unexpected)}): "
                         + _names(self.unexpected))
        if self.ignored:
            lines.append(f"  not loaded: the source's classifier ({len(self.ignored)}): "
                         + _names(self.ignored))
        return "\n".join(lines)


def _group(reasons: Mapping[str, str]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for key, why in reasons.items():
        groups.setdefault(why, []).append(key)
    return groups


def _names(keys: list[str], limit: int = 3) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", … ({len(keys) - limit} more)" if len(keys) > limit else "")


# -- reading a source ---------------------------------------------------------------------------


def read_state_dict(
    pretrained: Any, named: Mapping[str, str] | None = None
) -> tuple[dict[str, Any], str]:
    """``pretrained`` → ``(state dict, a description of where it came from)``.

    ``named`` maps tags (``"imagenet"``, ``"kinetics400"``) to torchvision builder names. A
    Lightning checkpoint gives its ``state_dict``. Raises ``FileNotFoundError`` for a missing
    file and :class:`WeightLoadError` for one that holds no state dict.
    """
    named = dict(named or {})
    if isinstance(pretrained, Mapping):
        return _state_of(pretrained, "the given state dict")
    if isinstance(pretrained, str) and pretrained in named:
        return _torchvision_state(named[pretrained], pretrained)
    if isinstance(pretrained, (str, os.PathLike)):
        path = os.fspath(pretrained)
        if not os.path.isfile(path):
            hint = f" (named weights here: {sorted(named)})" if named else ""
            raise FileNotFoundError(f"pretrained weights file not found: {path}{hint}")
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # torch.load fails in many ways on what is not its format
            first = str(err).strip().splitlines()[0][:120] if str(err).strip() else ""
            raise WeightLoadError(
                f"{path} is not a PyTorch weights file (torch.load: {type(err).__name__}: "
                f"{first}); expected a state dict (.pth) or a Finegrain checkpoint (.ckpt)"
            ) from None
        if not isinstance(loaded, Mapping):
            raise WeightLoadError(
                f"{path} holds a {type(loaded).__name__}, not a state dict; expected a state dict "
                "(.pth) or a Finegrain checkpoint (.ckpt)"
            )
        return _state_of(loaded, path)
    raise TypeError(
        "pretrained must be None, a tag (" + ", ".join(repr(t) for t in sorted(named))
        + "), a path to a state dict or checkpoint, or a state dict; "
        f"got {type(pretrained).__name__}"
    )


def _state_of(obj: Mapping, where: str) -> tuple[dict[str, Any], str]:
    if isinstance(obj.get("state_dict"), Mapping):  # a Lightning / Finegrain checkpoint
        obj, where = obj["state_dict"], f"checkpoint {where}"
    state = {k: v for k, v in obj.items() if isinstance(v, Tensor)}
    if not state or not all(isinstance(k, str) for k in state):
        raise WeightLoadError(
            f"{where} holds no tensors keyed by name: expected a state dict or a checkpoint"
        )
    return state, where


def _torchvision_state(arch: str, tag: str) -> tuple[dict[str, Any], str]:
    import torchvision

    weights = torchvision.models.get_model_weights(arch).DEFAULT
    cached = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(weights.url))
    try:
        state = weights.get_state_dict(progress=False)
    except OSError as err:  # URLError is an OSError: offline and not in torchvision's cache
        raise WeightLoadError(
            f"pretrained={tag!r} needs torchvision's {weights} and cannot fetch it ({err}); "
            f"download {weights.url} and put it at {cached}, or pass the file's path as "
            "pretrained"
        ) from None
    return dict(state), f"torchvision {weights}"


# -- mapping a source onto a model -------------------------------------------------------------


def select_prefix(state: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """The entries under ``prefix`` with it stripped (``"backbone."``, ``"module."`` …)."""
    selected = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not selected:
        raise WeightLoadError(f"no key starts with {prefix!r} (first keys: {_names(list(state))})")
    return selected


def load_weights(
    model: nn.Module,
    pretrained: Any,
    *,
    inflate: InflateMode = "mean",
    key_map: KeyMap | Mapping[str, str] | None = None,
    prefix: str | None = None,
    strict: bool = True,
    named: Mapping[str, str] | None = None,
    log: bool = True,
) -> LoadReport:
    """Load ``pretrained`` into the built backbone ``model``; returns (and logs) the report.

    Args:
        model: a ``VideoBackbone`` (its ``weight_formats`` name the formats it maps).
        pretrained: a tag (``"imagenet"``, or one of ``named``), a path or a state dict.
        inflate: ``"mean"`` or ``"center"`` for 2D sources (``models.inflation``).
        key_map: for other layouts: a callable ``(model_key, model) -> source key | None`` or a
            mapping of model-key prefixes to source-key prefixes (``{"stage1.": "stem."}``).
        prefix: take only the source keys under this prefix, stripped (a Finegrain checkpoint's
            ``"backbone."`` is stripped without asking).
        strict: missing, mismatched or unexpected tensors are an error (else only reported).
        named: extra tags → torchvision builder names (a preset's ``"kinetics400"``).
        log: log the report (callers that extend it log it themselves).
    """
    if inflate not in ("mean", "center"):
        raise ValueError(f"inflate must be 'mean' or 'center', got {inflate!r}")
    tags = {"imagenet": model.imagenet_arch} if getattr(model, "imagenet_arch", None) else {}
    tags.update(named or {})
    state, where = read_state_dict(pretrained, tags)
    if prefix is not None:
        state, where = select_prefix(state, prefix), f"{where} [{prefix}*]"
    elif any(k.startswith("backbone.") for k in state):  # a whole Finegrain model
        state, where = select_prefix(state, "backbone."), f"{where} [backbone.*]"
    fmt = _format_for(model, state, where, key_map)
    report = map_weights(model, state, fmt, where, inflate)
    model_name = type(model).__name__
    if len(report.loaded) < max(report.mappable / 2, 1):
        raise WeightLoadError(
            f"{where} looks like {fmt.description}, but only {len(report.loaded)} of the "
            f"{report.mappable} {model_name} tensors it should give fit it; "
            f"{_accepted(model)}\n{report}"
        )
    if strict and report.problems:
        raise WeightLoadError(
            f"{where} ({fmt.description}) does not match this {model_name} (did you set a "
            f"different depth, width_multiplier or layout?):\n{report}"
        )
    if log:
        logger.info("%s", report)
    return report


def _format_for(
    model: nn.Module, state: Mapping[str, Any], where: str, key_map: KeyMap | Mapping | None
) -> WeightFormat:
    if key_map is not None:
        mapper = key_map if callable(key_map) else _prefix_map(dict(key_map))
        return WeightFormat("key map", "a state dict read through the given key map",
                            lambda s: True, mapper)
    own = set(model.state_dict())
    if sum(k in own for k in state) >= len(own) / 2:
        return WeightFormat(f"Finegrain {type(model).__name__}",
                            f"a Finegrain {type(model).__name__} backbone", lambda s: True, None)
    fmt = detect_format(state)
    if fmt is not None and fmt.name in getattr(model, "weight_formats", ()):
        return fmt
    if fmt is not None:
        raise WeightLoadError(f"{where} looks like {fmt.description}; {_accepted(model)}")
    raise WeightLoadError(
        f"{where} is no state dict {type(model).__name__} knows (first keys: "
        f"{_names(list(state))}); {_accepted(model)}"
    )


def _accepted(model: nn.Module) -> str:
    names = [n for n in getattr(model, "weight_formats", ()) if n in _FORMATS]
    kinds = [_FORMATS[n].description for n in names]
    if not any(n.startswith("Finegrain") for n in names):
        kinds.append(f"a Finegrain {type(model).__name__} checkpoint of the same configuration")
    return f"{type(model).__name__} loads " + "; ".join(kinds) + " (or pass key_map / prefix)"


def _prefix_map(prefixes: dict[str, str]) -> KeyMap:
    def mapper(key: str, model: nn.Module) -> str | None:
        for ours, theirs in prefixes.items():
            if key.startswith(ours):
                return theirs + key[len(ours):]
        return key

    return mapper


def map_weights(
    model: nn.Module, state: Mapping[str, Any], fmt: WeightFormat, where: str, inflate: InflateMode
) -> LoadReport:
    """Copy every tensor of ``state`` that ``fmt`` maps onto ``model`` and whose shape fits
    (after inflation or cross-modality averaging); report the rest. Never raises for a mismatch."""
    target = model.state_dict()
    # BN's step counters are bookkeeping, not weights: copied when present, never counted
    counters = {k for k in target if k.endswith("num_batches_tracked")}
    report = LoadReport(where, fmt.name, len(target) - len(counters))
    # the first conv is the one that sees the input: the only one cross-modality may adapt
    first_conv = next((k for k, v in target.items() if v.dim() == 5), None)
    used: set[str] = set()
    updates: dict[str, Tensor] = {}
    for key, value in target.items():
        src = key if fmt.key_map is None else fmt.key_map(key, model)
        if src is None and key in counters:
            continue
        if src is None:
            square = value.dim() == 5 and value.shape[0] == value.shape[1]
            if fmt.inflate and key.endswith("temporal.weight") and square:
                updates[key] = identity_temporal_weight(value.shape, inflate)
                report.kept[key] = f"temporal conv, no 2D counterpart: identity ({inflate})"
            else:
                report.kept[key] = f"no counterpart in {fmt.name}"
            continue
        if src not in state:
            if key not in counters:
                report.missing[key] = src
            continue
        used.add(src)
        if key in counters:
            updates[key] = state[src]
            continue
        adapted, how = adapt_tensor(state[src], value, inflate, key == first_conv)
        if adapted is None:
            report.mismatched[key] = f"{tuple(value.shape)} <- {src} {tuple(state[src].shape)}"
            continue
        updates[key] = adapted
        report.loaded.append(key)
        if how:
            report.adapted[key] = how
    for src in state:
        if src in used or src.endswith("num_batches_tracked"):
            continue
        if any(src.startswith(prefix + ".") for prefix in fmt.classifier):
            report.ignored.append(src)
        else:
            report.unexpected.append(src)
    with torch.no_grad():
        for key, value in updates.items():
            target[key].copy_(value)
    return report


def adapt_tensor(
    source: Tensor, target: Tensor, inflate: InflateMode, input_conv: bool = False
) -> tuple[Tensor | None, str]:
    """``source`` shaped like ``target`` → ``(tensor, how)`` or ``(None, "")`` if it cannot be.

    Same shape: as is. Conv kernels: a 2D ``[O, I, k, k]`` or ``[O, I, 1, k, k]`` kernel into a
    ``[O, I, kt, k, k]`` one by ``inflate``; on the ``input_conv`` only, ``I`` colour channels
    into another count by TSN's cross-modality averaging.
    """
    if source.shape == target.shape:
        return source.detach().clone(), ""
    if target.dim() != 5 or source.dim() not in (4, 5):
        return None, ""
    if source.dim() == 5 and source.shape[2] != 1:
        same_but_inputs = (source.shape[0], source.shape[2:]) == (target.shape[0], target.shape[2:])
        if input_conv and same_but_inputs:
            return cross_modality_weight(source, target.shape[1]), _cross(source, target)
        return None, ""
    if source.shape[1] != target.shape[1] and not input_conv:
        return None, ""
    try:
        inflated = inflate_conv_weight(source, target.shape, inflate)
    except ValueError:
        return None, ""
    hows = []
    if target.shape[2] > 1:
        hows.append(f"inflated ({inflate})")
    if source.shape[1] != target.shape[1]:
        hows.append(_cross(source, target))
    return inflated, ", ".join(hows)


def _cross(source: Tensor, target: Tensor) -> str:
    return (f"cross-modality: {source.shape[1]}-channel filters averaged, replicated over "
            f"{target.shape[1]} input channels")
