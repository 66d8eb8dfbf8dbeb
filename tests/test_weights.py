"""Weights from outside: torchvision's video models and image models (random weights — nothing is
downloaded), Finegrain checkpoints, key maps; the load report and the errors for wrong files."""

from __future__ import annotations

import os

import pytest
import torch
import torchvision
from torch import nn

from models import WeightLoadError, create_backbone, list_backbones
from tests.test_inflation import randomise_bn

TINY = {"width_multiplier": 0.125}


def clip(b: int = 1, c: int = 3, t: int = 8, size: int = 32) -> torch.Tensor:
    return torch.randn(b, c, t, size, size, generator=torch.Generator().manual_seed(0))


def torchvision_trunk(name: str, net: nn.Module) -> nn.Module:
    """torchvision's video model up to its last feature map (what our ``stage5`` is)."""
    if name == "s3d":
        return net.features
    return nn.Sequential(net.stem, net.layer1, net.layer2, net.layer3, net.layer4)


@pytest.mark.slow  # four full-width torchvision video models, written to files and read back
@torch.no_grad()
@pytest.mark.parametrize("name,preset", [
    ("r3d_18", "r3d_18"), ("mc3_18", "mc3_18"), ("r2plus1d_18", "r2plus1d_18"),
    ("s3d", "torchvision_s3d"),
])
def test_torchvision_video_weights_load_into_their_presets(name, preset, tmp_path) -> None:
    torch.manual_seed(0)
    theirs = randomise_bn(getattr(torchvision.models.video, name)(weights=None))
    path = tmp_path / f"{name}.pth"
    torch.save(theirs.state_dict(), path)
    ours = create_backbone(preset, pretrained=str(path)).eval()
    report = ours.load_report
    assert len(report.loaded) == report.total and not report.problems
    assert report.ignored  # their classifier, never a backbone's
    x = clip(t=8, size=48)
    assert torch.allclose(ours(x)["stage5"], torchvision_trunk(name, theirs)(x), atol=1e-4)


def test_kinetics_tag_names_torchvisions_weights(monkeypatch, tmp_path) -> None:
    """``pretrained="imagenet"`` / ``"kinetics400"`` read torchvision's cache, so a file put
    there (a machine without network) is used as is."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(0)
    resnet = torchvision.models.resnet18(weights=None)
    url = torchvision.models.get_model_weights("resnet18").DEFAULT.url
    os.makedirs(tmp_path / "hub" / "checkpoints")
    torch.save(resnet.state_dict(), tmp_path / "hub" / "checkpoints" / os.path.basename(url))
    net = create_backbone("tsn_resnet18", pretrained="imagenet")
    assert torch.equal(net.stage1.conv.weight[:, :, 0], resnet.conv1.weight)
    assert "IMAGENET1K" in net.load_report.source
    with pytest.raises(FileNotFoundError, match="kinetics400"):  # a tag only video presets have
        create_backbone("tsn_resnet18", pretrained="kinetics400")


# -- wrong files


def test_wrong_files_fail_with_a_short_message_naming_what_was_expected(tmp_path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("these are not weights\n")
    with pytest.raises(WeightLoadError, match="not a PyTorch weights file") as err:
        create_backbone("i3d_resnet18", pretrained=str(text))
    assert len(str(err.value)) < 300
    image_model = tmp_path / "mobilenet.pth"  # an image model this project has no map for
    torch.save(torchvision.models.mobilenet_v3_small(weights=None).state_dict(), image_model)
    with pytest.raises(WeightLoadError, match="is no state dict VideoResNet knows") as err:
        create_backbone("i3d_resnet18", pretrained=str(image_model))
    assert "torchvision 2D ResNet" in str(err.value) and len(str(err.value)) < 700
    googlenet = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False)
    with pytest.raises(WeightLoadError, match="looks like a torchvision GoogLeNet"):
        create_backbone("i3d_resnet18", pretrained=googlenet.state_dict())
    # a checkpoint of another architecture
    inception = create_backbone("i3d_inception", **TINY)
    ckpt = tmp_path / "inception.ckpt"
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in inception.state_dict().items()},
                "pytorch-lightning_version": "2.6"}, ckpt)
    with pytest.raises(WeightLoadError, match="looks like a Finegrain InceptionV1Video") as err:
        create_backbone("i3d_resnet18", pretrained=str(ckpt), **TINY)
    assert len(str(err.value)) < 700
    with pytest.raises(WeightLoadError, match="r3d_18"):  # a video ResNet of another depth
        create_backbone("i3d_resnet50", pretrained=torchvision.models.video.r3d_18().state_dict())


# -- Finegrain checkpoints, key maps, prefixes


def test_a_finegrain_checkpoint_gives_its_backbone_at_any_width(tmp_path) -> None:
    trained = create_backbone("tam_resnet18", **TINY)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(1.0)  # distinct from any fresh init
    state = {f"backbone.{k}": v for k, v in trained.state_dict().items()}
    state["head.fc.weight"] = torch.zeros(5, 64)
    path = tmp_path / "run.ckpt"
    torch.save({"state_dict": state, "epoch": 3}, path)
    net = create_backbone("tam_resnet18", pretrained=str(path), **TINY)
    for key, value in trained.state_dict().items():
        assert torch.equal(net.state_dict()[key], value), key
    assert "[backbone.*]" in net.load_report.source


def test_a_finegrain_2d_network_inflates_into_a_3d_one() -> None:
    tsn = create_backbone("tsn_resnet18", **TINY)
    i3d = create_backbone("i3d_resnet18", pretrained=tsn.state_dict(), inflate="center", **TINY)
    w = i3d.stage3.blocks[0].conv1.weight
    assert torch.equal(w[:, :, 1], tsn.stage3.blocks[0].conv1.weight[:, :, 0])
    assert not w[:, :, [0, 2]].any()
    assert any("inflated (center)" in how for how in i3d.load_report.adapted.values())


def test_prefix_and_key_map_read_other_layouts() -> None:
    source = create_backbone("tsn_resnet18", **TINY)
    wrapped = {f"encoder.{k}": v for k, v in source.state_dict().items()}
    net = create_backbone("tsn_resnet18", pretrained=wrapped, prefix="encoder.", **TINY)
    assert torch.equal(net.stage5.blocks[1].bn2.running_var,
                       source.stage5.blocks[1].bn2.running_var)
    renamed = {k.replace("stage1.", "stem."): v for k, v in source.state_dict().items()}
    net = create_backbone("tsn_resnet18", pretrained=renamed, key_map={"stage1.": "stem."}, **TINY)
    assert torch.equal(net.stage1.conv.weight, source.stage1.conv.weight)


# -- input channels: optical flow from RGB weights


def test_flow_first_conv_is_the_rgb_filters_averaged_and_replicated() -> None:
    """TSN §3.2 cross-modality initialisation: 2·L channels (TSN flow) and 2 (3D flow)."""
    torch.manual_seed(0)
    resnet = torchvision.models.resnet18(weights=None)
    tsn = create_backbone("tsn_resnet18", in_channels=10, pretrained=resnet.state_dict())
    mean = resnet.conv1.weight.mean(dim=1, keepdim=True)
    assert torch.allclose(tsn.stage1.conv.weight[:, :, 0], mean.expand(-1, 10, -1, -1))
    assert "cross-modality" in tsn.load_report.adapted["stage1.conv.weight"]
    assert tsn(clip(c=10, t=2))["stage5"].shape[1] == 512
    r3d = torchvision.models.video.r3d_18(weights=None)
    flow3d = create_backbone("r3d_18", in_channels=2, pretrained=r3d.state_dict())
    expected = r3d.stem[0].weight.mean(dim=1, keepdim=True).expand(-1, 2, -1, -1, -1)
    assert torch.allclose(flow3d.stage1.conv.weight, expected)
    assert len(flow3d.load_report.loaded) == flow3d.load_report.total


# -- feature_info


@pytest.mark.parametrize("name", ["i3d_resnet18", "r3d_18", "dfb_i3d_resnet18", "s3d_inception",
                                  "torchvision_s3d"])
def test_feature_info_gives_channels_and_strides_of_every_stage(name: str) -> None:
    net = create_backbone(name, **TINY).eval()
    x = clip(t=16, size=64)
    with torch.no_grad():
        out = net(x)
    for info in net.feature_info:
        feat = out[info.name]
        assert feat.shape[1] == info.channels == net.out_channels[info.name]
        assert feat.shape[-1] == -(-64 // info.stride), info  # ceil: "SAME" / ceil-mode pools
        assert feat.shape[2] == -(-16 // info.temporal_stride), info


def test_presets_include_torchvisions_video_models() -> None:
    assert {"r3d_18", "mc3_18", "r2plus1d_18", "torchvision_s3d"} <= set(list_backbones())
