"""Backbones, temporal modules, heads, weight inflation and complexity counting (no Lightning).

Backbones take ``[B, C, T, H, W]`` and return ``{"stage1": …, …, "stage5": …}`` (5-D each), with
``out_channels``, ``stage_names`` and ``copy_stages(first, last)``; heads take that dict.
"""

from models.complexity import complexity
from models.heads import DFBHead, GAPHead, Head, HeadOutput, U2SHead
from models.inception import InceptionV1Video
from models.registry import create_backbone, list_backbones, register_backbone
from models.resnet import VideoResNet

__all__ = [
    "DFBHead",
    "GAPHead",
    "Head",
    "HeadOutput",
    "InceptionV1Video",
    "U2SHead",
    "VideoResNet",
    "complexity",
    "create_backbone",
    "list_backbones",
    "register_backbone",
]
