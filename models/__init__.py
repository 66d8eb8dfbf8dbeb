"""Backbones, temporal modules, heads, weight loading and complexity counting (no Lightning).

Backbones (``models.backbone.VideoBackbone``) take ``[B, C, T, H, W]`` and return
``{"stage1": …, …, "stage5": …}`` (5-D each), with ``out_channels``, ``feature_info``,
``stage_names`` and ``copy_stages(first, last)``; heads take that dict. ``create_backbone`` builds
a preset and loads its weights (``models.weights``).
"""

from models.backbone import FeatureInfo, VideoBackbone
from models.complexity import complexity
from models.heads import DFBHead, GAPHead, Head, HeadOutput, U2SHead
from models.inception import InceptionV1Video
from models.registry import (
    create_backbone,
    inception_v1_video,
    list_backbones,
    register_backbone,
    video_resnet,
)
from models.resnet import VideoResNet
from models.weights import LoadReport, WeightLoadError, load_weights

__all__ = [
    "DFBHead",
    "FeatureInfo",
    "GAPHead",
    "Head",
    "HeadOutput",
    "InceptionV1Video",
    "LoadReport",
    "U2SHead",
    "VideoBackbone",
    "VideoResNet",
    "WeightLoadError",
    "complexity",
    "create_backbone",
    "inception_v1_video",
    "list_backbones",
    "load_weights",
    "register_backbone",
    "video_resnet",
]
