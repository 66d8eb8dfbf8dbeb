"""ImageNet initialisation: torchvision 2D weights (random here — nothing is downloaded) inflated
into the video backbones, and the identities that make inflation trustworthy."""

from __future__ import annotations

import pytest
import torch
import torchvision
from einops import rearrange
from torch import nn

from models import WeightLoadError, create_backbone, inception_v1_video, video_resnet
from models.inception import googlenet_key_map
from models.inflation import inflate_conv_weight
from models.resnet import resnet_key_map

STAGES = ("stage1", "stage2", "stage3", "stage4", "stage5")


def randomise_bn(net: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BN statistics and affine terms, so that mapping mistakes cannot hide."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)
    return net.eval()


@pytest.fixture(scope="module")
def resnet18() -> nn.Module:
    torch.manual_seed(0)
    return randomise_bn(torchvision.models.resnet18(weights=None))


@pytest.fixture(scope="module")
def googlenet() -> nn.Module:
    torch.manual_seed(0)
    net = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False)
    return randomise_bn(net)


def resnet2d_stages(net: nn.Module, frames: torch.Tensor) -> dict[str, torch.Tensor]:
    """torchvision ResNet's feature maps named as our stages, ``frames``: ``[N, 3, H, W]``."""
    x = net.maxpool(net.relu(net.bn1(net.conv1(frames))))
    out = {"stage1": x}
    for i, layer in enumerate((net.layer1, net.layer2, net.layer3, net.layer4)):
        x = layer(x)
        out[f"stage{i + 2}"] = x
    return out


def googlenet2d_stages(net: nn.Module, frames: torch.Tensor) -> dict[str, torch.Tensor]:
    x = net.maxpool1(net.conv1(frames))
    out = {"stage1": x}
    x = net.conv3(net.conv2(x))
    out["stage2"] = x
    x = net.inception3b(net.inception3a(net.maxpool2(x)))
    out["stage3"] = x
    x = net.maxpool3(x)
    for name in ("4a", "4b", "4c", "4d", "4e"):
        x = getattr(net, f"inception{name}")(x)
    out["stage4"] = x
    out["stage5"] = net.inception5b(net.inception5a(net.maxpool4(x)))
    return out


def frames_of(video: torch.Tensor) -> torch.Tensor:
    return rearrange(video, "b c t h w -> (b t) c h w")


@torch.no_grad()
def test_tsn_with_loaded_weights_equals_torchvision_per_frame(resnet18: nn.Module) -> None:
    video = torch.randn(2, 3, 3, 64, 64)
    net = video_resnet(depth=18, temporal="none", pretrained=resnet18.state_dict()).eval()
    ours = net(video)
    ref = resnet2d_stages(resnet18, frames_of(video))
    for name in STAGES:
        assert torch.allclose(frames_of(ours[name]), ref[name], atol=1e-5), name


@torch.no_grad()
@pytest.mark.parametrize("name", ["i3d_resnet18", "dfb_i3d_resnet18"])
def test_center_inflation_on_a_repeated_frame_gives_the_2d_maps(
    resnet18: nn.Module, name: str
) -> None:
    frame = torch.randn(2, 3, 64, 64)
    video = frame.unsqueeze(2).expand(-1, -1, 8, -1, -1)
    net = create_backbone(name, pretrained=resnet18.state_dict(), inflate="center").eval()
    ours = net(video)
    ref = resnet2d_stages(resnet18, frame)
    for stage in STAGES:
        t = ours[stage].shape[2]
        expected = ref[stage].unsqueeze(2).expand(-1, -1, t, -1, -1)
        assert torch.allclose(ours[stage], expected, atol=1e-5), stage


@torch.no_grad()
def test_center_inflated_i3d_inception_on_a_repeated_frame_gives_googlenet_maps(
    googlenet: nn.Module,
) -> None:
    frame = torch.randn(1, 3, 64, 64)
    video = frame.unsqueeze(2).expand(-1, -1, 8, -1, -1)
    net = inception_v1_video(temporal="i3d", pretrained=googlenet.state_dict(), inflate="center")
    ours = net.eval()(video)
    ref = googlenet2d_stages(googlenet, frame)
    for stage in STAGES:
        t = ours[stage].shape[2]
        expected = ref[stage].unsqueeze(2).expand(-1, -1, t, -1, -1)
        assert torch.allclose(ours[stage], expected, atol=1e-5), stage


@torch.no_grad()
def test_i2d_inception_equals_googlenet_per_frame(googlenet: nn.Module) -> None:
    video = torch.randn(1, 3, 2, 64, 64)
    net = inception_v1_video(temporal="none", temporal_pooling=False,
                           pretrained=googlenet.state_dict()).eval()
    ours, ref = net(video), googlenet2d_stages(googlenet, frames_of(video))
    for stage in STAGES:
        assert torch.allclose(frames_of(ours[stage]), ref[stage], atol=1e-5), stage


def test_mean_inflation_replicates_and_divides() -> None:
    w = torch.randn(4, 3, 3, 3)
    inflated = inflate_conv_weight(w, torch.Size([4, 3, 5, 3, 3]), "mean")
    assert torch.allclose(inflated.sum(dim=2), w, atol=1e-6)
    assert torch.allclose(inflated[:, :, 0], w / 5)
    centre = inflate_conv_weight(w, torch.Size([4, 3, 3, 3, 3]), "center")
    assert torch.equal(centre[:, :, 1], w) and not centre[:, :, [0, 2]].any()
    # away from the temporal borders a mean-inflated conv answers a static video as the 2D conv
    frame = torch.randn(1, 3, 8, 8)
    video = frame.unsqueeze(2).expand(-1, -1, 5, -1, -1)
    y3 = nn.functional.conv3d(video, inflated, padding=(2, 1, 1))
    y2 = nn.functional.conv2d(frame, w, padding=1)
    assert torch.allclose(y3[:, :, 2], y2, atol=1e-5)


def test_input_channels_other_than_rgb_average_the_kernel(resnet18: nn.Module) -> None:
    flow = video_resnet(depth=18, in_channels=2, pretrained=resnet18.state_dict())
    expected = resnet18.conv1.weight.mean(dim=1, keepdim=True).expand(-1, 2, -1, -1)
    assert torch.allclose(flow.stage1.conv.weight[:, :, 0], expected)


def test_separable_and_extra_modules_load_and_keep_their_own_init(resnet18: nn.Module) -> None:
    net = video_resnet(depth=18, temporal="s3d", gating=True, non_local_stages=["stage4"],
                      pretrained=resnet18.state_dict(), inflate="center")
    conv = net.stage3.blocks[0].conv1
    assert torch.equal(conv.spatial.weight[:, :, 0], resnet18.layer2[0].conv1.weight)
    eye = torch.eye(conv.temporal.weight.shape[0])
    assert torch.equal(conv.temporal.weight[:, :, 1, 0, 0], eye)  # identity in time
    tam = create_backbone("tam_resnet18", pretrained=resnet18.state_dict())
    assert torch.equal(tam.stage5.blocks[1].conv2.weight[:, :, 0],
                       resnet18.layer4[1].conv2.weight)


def test_weights_load_from_a_file(tmp_path, resnet18: nn.Module) -> None:
    path = tmp_path / "resnet18.pth"
    torch.save(resnet18.state_dict(), path)
    net = create_backbone("i3d_resnet18", pretrained=str(path))
    assert torch.allclose(net.stage1.bn.running_var, resnet18.bn1.running_var)
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        create_backbone("i3d_resnet18", pretrained=str(tmp_path / "nope.pth"))


def test_googlenet_weights_load_into_s3d(googlenet: nn.Module) -> None:
    net = create_backbone("s3d_g_inception", pretrained=googlenet.state_dict())
    unit = net.stage4.layers["mixed_4c"].branch2[1]
    assert torch.equal(unit.conv.weight[:, :, 0], googlenet.inception4b.branch2[1].conv.weight)


def test_weights_that_do_not_fit_are_one_short_error(resnet18: nn.Module) -> None:
    with pytest.raises(WeightLoadError) as err:  # ResNet-18 weights, ResNet-34 layout
        video_resnet(depth=34, pretrained=resnet18.state_dict())
    message = str(err.value)
    assert "torchvision 2D ResNet" in message and "missing from the source" in message
    assert "stage2.blocks.2.conv1.weight <- layer1.2.conv1.weight" in message
    assert len(message) < 1500  # names a few keys and counts the rest
    extra = dict(resnet18.state_dict(), **{"layer9.0.conv1.weight": torch.zeros(1)})
    with pytest.raises(WeightLoadError, match="unexpected in the source .1.: layer9.0.conv1"):
        video_resnet(depth=18, pretrained=extra)
    with pytest.raises(WeightLoadError, match="only 0 of the 100"):  # nothing fits at another width
        video_resnet(depth=18, width_multiplier=0.5, pretrained=resnet18.state_dict())
    with pytest.raises(TypeError, match="pretrained"):
        video_resnet(depth=18, pretrained=3)
    # not strict: the same load is reported, not refused
    net = create_backbone("i3d_resnet18", pretrained=extra, strict=False)
    assert net.load_report.unexpected == ["layer9.0.conv1.weight"]


def test_key_maps() -> None:
    assert resnet_key_map("stage1.conv.weight") == "conv1.weight"
    assert resnet_key_map("stage1.conv.spatial.weight") == "conv1.weight"
    assert resnet_key_map("stage3.blocks.1.bn2.running_var") == "layer2.1.bn2.running_var"
    assert resnet_key_map("stage5.blocks.0.downsample.0.weight") == "layer4.0.downsample.0.weight"
    assert resnet_key_map("stage3.blocks.1.conv1.temporal.weight") is None
    assert resnet_key_map("stage3.non_local.1.theta.weight") is None
    assert (googlenet_key_map("stage3.layers.mixed_3b.branch4.1.bn.running_mean")
            == "inception3a.branch4.1.bn.running_mean")
    assert googlenet_key_map("stage1.layers.conv_1a.conv.weight") == "conv1.conv.weight"
    assert googlenet_key_map("stage3.layers.mixed_3b.branch1.temporal_bn.weight") is None
    assert googlenet_key_map("stage3.layers.mixed_3b.branch1.gate.fc.weight") is None
