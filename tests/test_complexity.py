"""FLOPs as multiply-accumulates, counted without real arithmetic; the papers' figures as checks."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from models import complexity, create_backbone


def test_one_conv_counts_its_multiply_accumulates() -> None:
    conv = nn.Conv3d(4, 8, (3, 3, 3), padding=1, bias=False)
    result = complexity(conv, (1, 4, 2, 5, 5))
    assert result["gflops"] * 1e9 == pytest.approx(8 * 2 * 5 * 5 * 4 * 27)
    assert result["params_m"] * 1e6 == 8 * 4 * 27


def test_counting_leaves_the_model_as_it_was() -> None:
    net = create_backbone("i3d_resnet18", width_multiplier=0.125).train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    complexity(net, (1, 3, 4, 32, 32))
    assert net.training
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_torchvision_r3d_18_matches_its_documented_40_70_gflops() -> None:
    # torchvision's model table: r3d_18, 16×112², 40.70 GFLOPS (multiply-accumulates)
    with torch.device("meta"):
        net = torchvision.models.video.r3d_18()
    result = complexity(net, (1, 3, 16, 112, 112))
    assert result["gflops"] == pytest.approx(40.70, abs=0.01)
    assert result["params_m"] == pytest.approx(33.37, abs=0.01)


def test_our_r3d_18_costs_what_torchvision_r3d_18_costs() -> None:
    with torch.device("meta"):
        ours = create_backbone("r3d_18")
    assert complexity(ours, (1, 3, 16, 112, 112))["gflops"] == pytest.approx(40.70, abs=0.01)


@pytest.mark.parametrize("name,expected", [("i3d_resnet50", 335.3), ("tam_resnet50", 171.5)])
def test_unified_analysis_table_2_flops_at_32_frames_256px(name: str, expected: float) -> None:
    with torch.device("meta"):  # no memory, no arithmetic: just shapes
        net = create_backbone(name)
    assert complexity(net, (1, 3, 32, 256, 256))["gflops"] == pytest.approx(expected, rel=0.01)


def test_s3d_three_by_three_layout_costs_what_torchvision_documents_for_its_s3d() -> None:
    """torchvision's S3D (Kinetics-400 weights' meta: 8,320,048 params, 17.979 GFLOPs at
    16×224²) is the separable 3×3-branch layout with a separable stem; ours gives the same."""
    import torchvision

    meta = torchvision.models.video.S3D_Weights.KINETICS400_V1.meta
    with torch.device("meta"):
        net = create_backbone("s3d_inception", s3d_all_branches=False)
    result = complexity(net, (1, 3, 16, 224, 224))
    logits = 1024 * 400 + 400  # torchvision's classifier: a 1×1×1 conv 1024 → 400 with bias
    assert round(result["params_m"] * 1e6) + logits == meta["num_params"]
    assert result["gflops"] == pytest.approx(meta["_ops"], abs=0.002)
