"""Backbone zoo: the stage-dict contract, every preset at tiny size, temporal modules' semantics."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from models import InceptionV1Video, VideoResNet, create_backbone, list_backbones
from models.resnet import resolve_stages
from models.temporal import FeatureGating, NonLocalBlock, TemporalAggregation, TemporalShift

TINY = {"width_multiplier": 0.125}
STAGES = ("stage1", "stage2", "stage3", "stage4", "stage5")


def clip(b: int = 2, t: int = 8, size: int = 32, c: int = 3) -> torch.Tensor:
    return torch.randn(b, c, t, size, size, generator=torch.Generator().manual_seed(0))


def check_contract(net: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    out = net(x)
    assert tuple(out) == STAGES == net.stage_names
    for name, feat in out.items():
        assert feat.dim() == 5, name
        assert feat.shape[0] == x.shape[0], name
        assert feat.shape[1] == net.out_channels[name], name
    return out


# -- presets -------------------------------------------------------------------------------------


def test_list_backbones_names_the_papers_models() -> None:
    names = set(list_backbones())
    for prefix in ("tsn", "i3d", "s3d", "r2plus1d", "tam", "tsm"):
        for depth in (18, 34, 50, 101, 152):
            assert f"{prefix}_resnet{depth}" in names
    for prefix in ("i2d", "i3d", "s3d", "s3d_g", "fast_s3d", "top_heavy", "bottom_heavy"):
        assert f"{prefix}_inception" in names
    assert {"dfb_i3d_resnet50", "r3d_18", "r2plus1d_18"} <= names


@pytest.mark.parametrize("name", list_backbones())
def test_every_preset_at_tiny_size(name: str) -> None:
    # shapes only, so on the meta device: no arithmetic, ResNet-152 costs what ResNet-18 does
    with torch.device("meta"):
        net = create_backbone(name, **TINY).eval()  # eval: 1×1×1 maps cannot batch-normalise
    x = clip(b=1, t=8).to("meta")
    with torch.no_grad():
        out = check_contract(net, x)
    pooled_stem = getattr(net, "stem_pool", True)  # r3d_18 / r2plus1d_18 have none
    assert out["stage1"].shape[-1] == (8 if pooled_stem else 16)
    assert out["stage5"].shape[-1] == (1 if pooled_stem else 2)


def test_unknown_preset_names_close_matches() -> None:
    with pytest.raises(KeyError, match="i3d_resnet50"):
        create_backbone("i3d_resnet5O")


def test_overrides_reach_the_constructor() -> None:
    net = create_backbone("i3d_resnet50", depth=18, temporal_pooling=True, **TINY)
    assert isinstance(net, VideoResNet) and net.depth == 18 and net.temporal_pooling


# -- VideoResNet -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["i3d_resnet50", "s3d_g_inception", "dfb_i3d_resnet18"])
def test_presets_run_for_real(name: str) -> None:
    net = create_backbone(name, **TINY)
    out = check_contract(net, clip(b=2, t=8))
    out["stage5"].mean().backward()
    assert torch.isfinite(out["stage5"]).all()


@pytest.mark.parametrize("temporal", ["none", "i3d", "s3d", "r2plus1d", "tam", "tsm"])
def test_tiny_resnet_forward_backward_is_fast(temporal: str) -> None:
    net = VideoResNet(depth=18, temporal=temporal, **TINY)
    x = clip()
    seconds = []
    threads = torch.get_num_threads()
    # one thread: on a shared, oversubscribed CPU a descheduled OpenMP worker stalls every op
    # of a multi-threaded run at its barrier, which measures the machine, not the model
    torch.set_num_threads(1)
    try:
        for _ in range(5):  # the first pass pays one-off kernel selection
            start = time.perf_counter()
            out = check_contract(net, x)
            sum(v.mean() for v in out.values()).backward()
            seconds.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    assert min(seconds[1:]) < 1.0
    assert out["stage5"].shape == (2, 64, 8, 1, 1)
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


@pytest.mark.parametrize("depth,channels", [(18, 64), (34, 64), (50, 256)])
def test_depths_and_widths(depth: int, channels: int) -> None:
    net = VideoResNet(depth=depth, **TINY)
    assert net.out_channels == {
        "stage1": 8,
        "stage2": channels // 8,
        "stage3": channels // 4,
        "stage4": channels // 2,
        "stage5": channels,
    }


def test_stage_resolutions() -> None:
    out = VideoResNet(depth=18, temporal="i3d", **TINY)(clip(b=1, t=4, size=64))
    sizes = {k: tuple(v.shape[2:]) for k, v in out.items()}
    assert sizes == {
        "stage1": (4, 16, 16),
        "stage2": (4, 16, 16),
        "stage3": (4, 8, 8),
        "stage4": (4, 4, 4),
        "stage5": (4, 2, 2),
    }


@pytest.mark.parametrize("temporal", ["none", "i3d", "tsm"])
def test_temporal_pooling_halves_time_at_stages_3_to_5(temporal: str) -> None:
    x = clip(b=2, t=8)
    on = VideoResNet(depth=18, temporal=temporal, temporal_pooling=True, **TINY)(x)
    off = VideoResNet(depth=18, temporal=temporal, temporal_pooling=False, **TINY)(x)
    assert [on[s].shape[2] for s in STAGES] == [8, 8, 4, 2, 1]
    assert [off[s].shape[2] for s in STAGES] == [8] * 5


def test_temporal_pooling_by_stride_matches_maxpool_lengths() -> None:
    net = VideoResNet(depth=18, temporal="i3d", temporal_pooling=True,
                      temporal_downsample="stride", **TINY)
    out = net(clip(b=2, t=8))
    assert [out[s].shape[2] for s in STAGES] == [8, 8, 4, 2, 1]


def test_dfb_stem_reduces_time_by_four() -> None:
    out = create_backbone("dfb_i3d_resnet50", **TINY)(clip(b=1, t=16))
    assert [out[s].shape[2] for s in STAGES] == [4] * 5
    assert out["stage1"].shape[-1] == 8


def test_stride_on_the_3x3_conv_of_the_first_block() -> None:
    net = VideoResNet(depth=50, **TINY)
    first = net.stage3.blocks[0]
    assert first.conv1.stride == (1, 1, 1)
    assert first.conv2.stride == (1, 2, 2)


def test_temporal_stage_layouts() -> None:
    assert resolve_stages("top_heavy") == {"stage4", "stage5"}
    assert resolve_stages("bottom_heavy") == {"stage1", "stage2", "stage3"}
    assert resolve_stages(["stage3"]) == {"stage3"}
    with pytest.raises(ValueError, match="stage9"):
        resolve_stages(["stage9"])
    net = VideoResNet(depth=18, temporal="i3d", temporal_stages="top_heavy", **TINY)
    assert net.stage1.conv.kernel_size == (1, 7, 7)
    assert net.stage3.blocks[0].conv1.kernel_size == (1, 3, 3)
    assert net.stage4.blocks[0].conv1.kernel_size == (3, 3, 3)
    net = VideoResNet(depth=18, temporal="i3d", temporal_stages="bottom_heavy", **TINY)
    assert net.stage1.conv.kernel_size == (3, 7, 7)
    assert net.stage4.blocks[0].conv1.kernel_size == (1, 3, 3)


def test_separable_convs_do_not_expand_channels() -> None:
    net = VideoResNet(depth=50, temporal="s3d", **TINY)
    conv = net.stage3.blocks[0].conv2
    assert conv.spatial.kernel_size == (1, 3, 3) and conv.temporal.kernel_size == (3, 1, 1)
    assert conv.spatial.out_channels == conv.temporal.out_channels == 16
    expanded = VideoResNet(depth=18, temporal="r2plus1d", r2plus1d_expand=True)
    # torchvision / Tran et al.: 64·64·27 / (64·9 + 3·64) = 144
    assert expanded.stage2.blocks[0].conv1.spatial.out_channels == 144


def test_gating_and_non_local_are_inserted() -> None:
    net = VideoResNet(depth=50, temporal="s3d", gating=True,
                      non_local_stages=["stage3", "stage4"], **TINY)
    assert isinstance(net.stage2.blocks[0].gate2, FeatureGating)
    assert sorted(net.stage3.non_local) == ["1", "3"]  # Wang et al.: 2 in res3, 3 in res4
    assert sorted(net.stage4.non_local) == ["1", "3", "5"]
    check_contract(net, clip(b=1, t=4))
    tsm = VideoResNet(depth=18, temporal="tsm", gating=True, **TINY)
    assert isinstance(tsm.stage2.blocks[0].gate0, FeatureGating)


def test_bad_config_is_named() -> None:
    with pytest.raises(ValueError, match="depth"):
        VideoResNet(depth=20)
    with pytest.raises(ValueError, match="temporal"):
        VideoResNet(depth=18, temporal="c3d")
    with pytest.raises(ValueError, match="expects"):
        VideoResNet(depth=18, **TINY)(torch.randn(2, 3, 32, 32))


# -- copy_stages -----------------------------------------------------------------------------------


@pytest.mark.parametrize("backbone", [
    lambda: VideoResNet(depth=18, temporal="i3d", **TINY),
    lambda: VideoResNet(depth=18, temporal="none", temporal_pooling=True, **TINY),
    lambda: InceptionV1Video(temporal="s3d", **TINY),
])
def test_copy_stages_is_fresh_and_shape_compatible(backbone) -> None:
    net = backbone()
    out = net(clip(b=2, t=8))
    copy = net.copy_stages("stage4")
    assert copy.stage_names == ("stage4", "stage5")
    assert copy(out["stage3"]).shape == out["stage5"].shape
    mine = dict(net.stage5.named_parameters())
    for name, p in copy.stages["stage5"].named_parameters():
        assert p.data_ptr() != mine[name].data_ptr()
        if p.dim() > 1:
            assert not torch.equal(p, mine[name]), name  # re-drawn, not copied
    single = net.copy_stages("stage5", "stage5")
    assert single(out["stage4"]).shape == out["stage5"].shape
    with pytest.raises(ValueError):
        net.copy_stages("stage5", "stage4")


# -- temporal modules ------------------------------------------------------------------------------


def test_tsm_shifts_one_eighth_each_way_zero_padded() -> None:
    t, c = 4, 16
    x = torch.arange(1, t + 1, dtype=torch.float).view(1, 1, t, 1, 1).expand(1, c, t, 2, 2)
    y = TemporalShift(fold_div=8)(x)
    frames = y[0, :, :, 0, 0]  # [C, T]
    assert torch.equal(frames[:2], torch.tensor([[2.0, 3, 4, 0]] * 2))  # sees t+1; last is zero
    assert torch.equal(frames[2:4], torch.tensor([[0.0, 1, 2, 3]] * 2))  # sees t-1; first zero
    assert torch.equal(frames[4:], x[0, 4:, :, 0, 0])


def test_tsm_on_a_static_video_changes_only_the_border_frames() -> None:
    net = VideoResNet(depth=18, temporal="tsm", **TINY).eval()
    x = clip(b=1, t=1, size=8, c=net.out_channels["stage1"]).expand(-1, -1, 6, -1, -1)
    shifted = net.stage2.blocks[0].mixer(x)
    assert torch.equal(shifted[:, :, 1:-1], x[:, :, 1:-1])
    assert not torch.equal(shifted[:, :, :1], x[:, :, :1])


def test_tam_starts_as_identity() -> None:
    tam = TemporalAggregation(4)
    x = torch.rand(2, 4, 5, 3, 3)  # ≥ 0: a block input after ReLU
    assert torch.equal(tam(x), x)
    assert tam.conv.groups == 4 and tam.conv.kernel_size == (3, 1, 1)


def test_feature_gating_scales_channels_by_a_sigmoid_of_the_pooled_input() -> None:
    gate = FeatureGating(3)
    x = torch.randn(2, 3, 4, 5, 5)
    expected = torch.sigmoid(gate.fc(x.mean(dim=(2, 3, 4))))[:, :, None, None, None] * x
    assert torch.allclose(gate(x), expected)
    with torch.no_grad():
        gate.fc.weight.zero_()
        gate.fc.bias.fill_(-100.0)
    assert gate(x).abs().max() < 1e-30  # a closed gate silences the channel


def test_non_local_starts_as_identity() -> None:
    block = NonLocalBlock(8).eval()
    x = torch.randn(1, 8, 3, 4, 4)
    assert torch.equal(block(x), x)


# -- InceptionV1Video ------------------------------------------------------------------------------


def test_inception_out_channels_and_time() -> None:
    net = InceptionV1Video(temporal="i3d")
    assert net.out_channels == {
        "stage1": 64, "stage2": 192, "stage3": 480, "stage4": 832, "stage5": 1024,
    }
    tiny = InceptionV1Video(temporal="i3d", **TINY)
    out = check_contract(tiny, clip(b=1, t=16))
    assert [out[s].shape[2] for s in STAGES] == [8, 8, 8, 4, 2]  # 64 → 8 at full length
    flat = InceptionV1Video(temporal="i3d", temporal_pooling=False, **TINY)(clip(b=1, t=16))
    assert [flat[s].shape[2] for s in STAGES] == [16] * 5
    i2d = InceptionV1Video(temporal="none", **TINY)(clip(b=1, t=16))
    assert [i2d[s].shape[2] for s in STAGES] == [8, 8, 8, 4, 2]  # strided like I3D


def test_inception_layouts() -> None:
    top = InceptionV1Video(temporal="s3d", temporal_layout="top_heavy", transition="mixed_4b")
    assert top.modes["mixed_3c"] == "2d" and top.modes["mixed_4b"] == "sep"
    bottom = InceptionV1Video(temporal="i3d", temporal_layout="bottom_heavy",
                              transition="mixed_4b")
    assert bottom.modes["conv_1a"] == "3d" and bottom.modes["mixed_4b"] == "2d"
    fast = create_backbone("fast_s3d_inception")
    assert [fast.modes[k] for k in ("mixed_3c", "mixed_4b", "mixed_5c")] == ["2d", "sep", "sep"]
    with pytest.raises(ValueError, match="transition"):
        InceptionV1Video(transition="mixed_9z")


def test_s3d_blocks_are_separable_on_all_four_branches_and_gated() -> None:
    net = create_backbone("s3d_g_inception", **TINY)
    block = net.stage3.layers["mixed_3b"]
    assert block.branch2[1].conv.kernel_size == (1, 3, 3)
    assert block.branch2[1].temporal.kernel_size == (3, 1, 1)
    assert block.branch1.temporal.kernel_size == (3, 1, 1)  # footnote 5
    assert block.branch4[1].temporal.kernel_size == (3, 1, 1)
    assert all(isinstance(b.gate, FeatureGating)
               for b in (block.branch1, block.branch2[1], block.branch3[1], block.branch4[1]))
    two = InceptionV1Video(temporal="s3d", s3d_all_branches=False, **TINY)
    assert not hasattr(two.stage3.layers["mixed_3b"].branch1, "temporal")


def test_inception_stem_options_give_the_released_s3d_g_stem() -> None:
    """Released nets/s3dg.py: a non-separable 3×7×7 stem (never gated; gating starts at
    conv_2c), gates without a bias; ``stem="auto"`` keeps S3D's separable 1×7×7 → 7×1×1."""
    released = InceptionV1Video(temporal="s3d", gating=True, s3d_all_branches=False, stem="3d",
                                stem_temporal_kernel=3, gate_bias=False, **TINY)
    stem = released.stage1.layers["conv_1a"]
    assert stem.conv.kernel_size == (3, 7, 7) and stem.conv.stride == (2, 2, 2)
    assert isinstance(stem.gate, torch.nn.Identity)
    conv_2c = released.stage2.layers["conv_2c"]
    assert isinstance(conv_2c.gate, FeatureGating) and conv_2c.gate.fc.bias is None
    auto = InceptionV1Video(temporal="s3d", gating=True, **TINY).stage1.layers["conv_1a"]
    assert auto.conv.kernel_size == (1, 7, 7) and auto.temporal.kernel_size == (7, 1, 1)
    assert isinstance(auto.gate, FeatureGating)
    x = clip(b=2, t=8)
    assert check_contract(released, x)["stage5"].shape == check_contract(
        InceptionV1Video(temporal="s3d", **TINY), x)["stage5"].shape
    with pytest.raises(ValueError, match="stem"):
        InceptionV1Video(stem="sep")


def test_i2d_ignores_frame_order() -> None:
    # S3D §4.1, Table 1: a 2D model is invariant to reversing the frames (up to the pooled order)
    net = InceptionV1Video(temporal="none", temporal_pooling=False, **TINY).eval()
    x = clip(b=1, t=4)
    a = net(x)["stage5"]
    b = net(x.flip(2))["stage5"].flip(2)
    assert torch.allclose(a, b, atol=1e-5)
    i3d = InceptionV1Video(temporal="i3d", temporal_pooling=False, **TINY).eval()
    assert not torch.allclose(i3d(x)["stage5"], i3d(x.flip(2))["stage5"].flip(2), atol=1e-5)


@pytest.mark.parametrize("depth", [18, 50])
def test_preact_blocks_keep_a_clean_identity_path(depth: int) -> None:
    """u2s §III-A, ref. [63] (He et al. 2016b): BN → ReLU → conv, nothing after the addition."""
    from models.resnet import PreActBasicBlock, PreActBottleneck

    torch.manual_seed(0)
    net = VideoResNet(depth=depth, temporal="i3d", width_multiplier=0.125, preact=True).eval()
    block = net.stage3.blocks[1]  # no projection: out = x + F(x)
    assert isinstance(block, PreActBottleneck if depth == 50 else PreActBasicBlock)
    channels = net.out_channels["stage3"]
    x = torch.randn(2, channels, 2, 8, 8)
    last = block.conv3 if depth == 50 else block.conv2
    nn.init.zeros_(last.weight)  # the residual branch adds nothing
    with torch.no_grad():
        torch.testing.assert_close(block(x), x)  # negative values too: no ReLU after the sum
    assert block.bn1.num_features == channels  # the first BN normalises the block's input
    # the last stage ends with BN → ReLU; inner stages hand on raw residual sums
    with torch.no_grad():
        features = net(torch.randn(1, 3, 4, 64, 64))
    assert features["stage5"].min() >= 0 and features["stage4"].min() < 0
    post = VideoResNet(depth=depth, temporal="i3d", width_multiplier=0.125)
    for name in net.stage_names:
        assert net.out_channels[name] == post.out_channels[name]
        assert features[name].shape == post(torch.randn(1, 3, 4, 64, 64))[name].shape


def test_preact_trains_and_refuses_post_activation_weights() -> None:
    import torchvision

    from models import WeightLoadError, create_backbone

    net = VideoResNet(depth=18, temporal="none", width_multiplier=0.125, preact=True)
    net(torch.randn(2, 3, 2, 32, 32))["stage5"].mean().backward()
    assert all(p.grad is not None for p in net.parameters())
    copy = net.copy_stages("stage5")  # a head's fresh top stage ends with BN → ReLU too
    assert copy.stages["stage5"].final_norm is not None
    # torchvision's (post-activation) ResNet-18 state dict: loads into the plain net only
    state = torchvision.models.resnet18().state_dict()
    assert create_backbone("tsn_resnet18", pretrained=state) is not None
    with pytest.raises(WeightLoadError, match="torchvision"):
        create_backbone("tsn_resnet18", preact=True, pretrained=state)
