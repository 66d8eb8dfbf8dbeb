"""Inflation: 2D kernels into video kernels, and the first conv across input modalities.

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
own initialisation. Which key goes where is the business of the key maps next to each model and
of ``models.weights``; this module only reshapes tensors.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

InflateMode = Literal["mean", "center"]


def inflate_conv_weight(weight_2d: Tensor, shape: torch.Size, mode: InflateMode) -> Tensor:
    """``[O, I, kh, kw]`` (or ``[O, I, 1, kh, kw]``) → ``shape = [O, I', kt, kh, kw]`` by ``mode``
    ("mean" | "center").

    When ``I' != I`` (optical flow, grey input) the kernel goes through
    :func:`cross_modality_weight` first.
    """
    if mode not in ("mean", "center"):
        raise ValueError(f"inflate must be 'mean' or 'center', got {mode!r}")
    out_c, in_c, kt, kh, kw = shape
    w = weight_2d
    if w.dim() == 5 and w.shape[2] == 1:
        w = w.squeeze(2)
    if w.dim() != 4 or w.shape[0] != out_c or tuple(w.shape[2:]) != (kh, kw):
        raise ValueError(f"cannot inflate {tuple(weight_2d.shape)} into {tuple(shape)}")
    if w.shape[1] != in_c:
        w = cross_modality_weight(w, in_c)
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


def cross_modality_weight(weight: Tensor, in_channels: int) -> Tensor:
    """TSN's cross-modality initialisation (Wang et al., TSN §3.2): the first conv's filters
    ``[O, I, …]`` averaged over their ``I`` (colour) channels and replicated ``in_channels`` times
    — 2 for a 3D net on optical flow (x, y), 2·L for TSN's stack of L flow fields."""
    return weight.mean(dim=1, keepdim=True).expand(-1, in_channels, *weight.shape[2:]).clone()
