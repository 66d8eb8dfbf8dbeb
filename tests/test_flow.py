"""Optical flow: ``prepare flow`` (TV-L1), flow stacks from the flow backend, mirroring."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.io import decode_jpeg, encode_jpeg, read_file

from datamodules import prepare
from datamodules.decoders import DecodeError, get_decoder
from datamodules.flow import BOUND, decode_flow, encode_flow, mirror_flow
from datamodules.records import VideoRecord
from datamodules.transforms import TestViews, TrainTransform
from tests import videos as V

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding capabilities")


def _bar_video(num_frames: int = 6, step: int = 2, size: int = 48) -> np.ndarray:
    """uint8 ``[T, size, size, 3]``: a textured vertical bar moving ``step`` px right per frame
    over a still textured background (texture gives TV-L1 something to match everywhere)."""
    rng = np.random.default_rng(0)

    def blocks(height: int, width: int, low: int, high: int) -> np.ndarray:
        cells = rng.integers(low, high, (height // 3 + 1, width // 3 + 1), dtype=np.uint8)
        return np.repeat(np.repeat(cells, 3, 0), 3, 1)[:height, :width]

    texture = blocks(size, 12, 0, 256)
    frames = np.repeat(blocks(size, size, 60, 120)[None, ..., None], num_frames, 0)
    frames = np.repeat(frames, 3, -1)
    for t in range(num_frames):
        left = 8 + step * t
        frames[t, :, left : left + 12] = texture[..., None]
    return frames


def _read(path) -> np.ndarray:
    return decode_jpeg(read_file(str(path)))[0].numpy()


@pytest.fixture
def bar_video(tmp_path):
    src = tmp_path / "src" / "push"
    src.mkdir(parents=True)
    V.write_video(src / "bar.mp4", frames=_bar_video(), width=48, height=48,
                  options={"qp": "0"})
    return tmp_path / "src"


def test_tvl1_flow_of_a_bar_moving_right(bar_video, tmp_path, capsys) -> None:
    pytest.importorskip("cv2")
    dst = tmp_path / "flow"
    argv = ["flow", str(bar_video), str(dst), "--workers", "1", "--no-progress", "--rgb"]
    assert prepare.main(argv) == 0
    folder = dst / "push" / "bar"
    # 6 frames → 5 pairs, numbered like the frames (MMAction2 / TSN layout)
    assert sorted(p.name for p in folder.glob("flow_x_*")) == [
        f"flow_x_{k:05d}.jpg" for k in range(1, 6)]
    assert (folder / "flow_y_00005.jpg").exists() and (folder / "img_00006.jpg").exists()
    x, y = _read(folder / "flow_x_00002.jpg"), _read(folder / "flow_y_00002.jpg")
    inside = (slice(8, 40), slice(14, 26))  # the bar's interior in frames 2 and 3
    dx, dy = decode_flow(x[inside]), decode_flow(y[inside])
    # 2 px to the right: x above 128 (about 128 + 2 · 255 / 40 ≈ 141), y at 128
    assert np.median(x[inside]) > 134 and abs(np.median(dx) - 2.0) < 0.6
    assert abs(np.median(y[inside]) - 128) <= 2 and abs(np.median(dy)) < 0.3
    # far from the bar nothing moves
    assert abs(np.median(x[:, 40:]) - 128) <= 1
    capsys.readouterr()
    assert prepare.main(argv) == 0  # resumable: a finished folder is skipped
    assert "0 done, 1 skipped" in capsys.readouterr().out


def test_flow_of_the_mirrored_video_is_the_mirrored_flow(bar_video, tmp_path) -> None:
    pytest.importorskip("cv2")
    from datamodules.flow import extract_flow

    mirrored = tmp_path / "mirrored.mp4"
    V.write_video(mirrored, frames=_bar_video()[:, :, ::-1].copy(), width=48, height=48,
                  options={"qp": "0"})
    extract_flow(bar_video / "push" / "bar.mp4", tmp_path / "a")
    extract_flow(mirrored, tmp_path / "b")
    decoder = get_decoder("flow", flow_length=1)
    a = decoder.read(VideoRecord(path=str(tmp_path / "a"), label=0), [1])  # [1, H, W, 2]
    b = decoder.read(VideoRecord(path=str(tmp_path / "b"), label=0), [1])
    expected = mirror_flow(a.permute(0, 3, 1, 2), channel_dim=1).permute(0, 2, 3, 1)
    rows, cols = slice(8, 40), slice(22, 34)  # the mirrored bar's interior
    diff = (b[0, rows, cols].int() - expected[0, rows, cols].int()).abs()
    assert float(diff.float().median()) <= 2
    assert np.median(b[0, rows, cols, 0].numpy()) < 122  # it moves left now


def test_prepare_flow_into_a_folder_of_frames_keeps_them(bar_video, tmp_path) -> None:
    pytest.importorskip("cv2")
    dst = tmp_path / "frames"
    assert prepare.main(["frames", str(bar_video), str(dst), "--workers", "1",
                         "--no-progress", "--template", "img_{:05d}.jpg"]) == 0
    assert prepare.main(["flow", str(bar_video), str(dst), "--workers", "1",
                         "--no-progress", "--short-side", "32"]) == 0
    folder = dst / "push" / "bar"
    record = VideoRecord(path=str(folder), label=0)
    assert get_decoder("frames", template="img_{:05d}.jpg").num_frames(record) == 6
    assert get_decoder("flow", flow_length=1).read(record, [0]).shape == (1, 32, 32, 2)
    assert not list((dst / "push").glob("*.partial"))


def test_encoding_is_linear_and_mirror_symmetric() -> None:
    f = np.array([-30.0, -BOUND, -1.0, 0.0, 1.0, BOUND, 30.0])
    v = encode_flow(f)
    assert v.tolist() == [0, 0, 121, 128, 134, 255, 255]
    # -f encodes as 255 - v (mirroring), except at 0 itself: 127.5 rounds up to 128 = no motion
    moving = f != 0
    assert (encode_flow(-f)[moving].astype(int) == 255 - v[moving].astype(int)).all()
    assert np.abs(decode_flow(v)[1:-1] - f[1:-1]).max() <= 20 / 255 + 1e-5  # half a step


def _write_flow_folder(folder, pairs: int, size: int = 16) -> None:
    """Constant images: ``flow_x_k`` = 10·k, ``flow_y_k`` = 10·k + 5 (k = 1..pairs)."""
    folder.mkdir(parents=True)
    for k in range(1, pairs + 1):
        for axis, value in (("x", 10 * k), ("y", 10 * k + 5)):
            image = torch.full((1, size, size), value, dtype=torch.uint8)
            (folder / f"flow_{axis}_{k:05d}.jpg").write_bytes(
                encode_jpeg(image, quality=100).numpy().tobytes())


def test_flow_stacks_have_2l_channels_in_x_y_order(tmp_path) -> None:
    _write_flow_folder(tmp_path / "v", pairs=7)
    record = VideoRecord(path=str(tmp_path / "v"), label=0)
    decoder = get_decoder("flow", flow_length=3)
    assert decoder.num_frames(record) == 5  # stacks of 3 that fit in 7 pairs
    stacks = decoder.read(record, [4, 0])
    assert stacks.shape == (2, 16, 16, 6) and stacks.dtype == torch.uint8
    # stack at 4 holds pairs 5, 6, 7 (1-based names): x5, y5, x6, y6, x7, y7
    assert stacks[0, 3, 3].tolist() == [50, 55, 60, 65, 70, 75]
    assert stacks[1, 3, 3].tolist() == [10, 15, 20, 25, 30, 35]
    with pytest.raises(DecodeError, match="only 5 frames"):
        decoder.read(record, [5])
    with pytest.raises(DecodeError, match="fewer than flow_length"):
        get_decoder("flow", flow_length=8).num_frames(record)


def test_mirror_negates_x_only() -> None:
    x = torch.randint(0, 256, (3, 4, 5, 6), dtype=torch.uint8)  # [T, C=2·2, H, W]
    m = mirror_flow(x, channel_dim=1)
    assert torch.equal(m[:, 0], 255 - x[:, 0].flip(-1))
    assert torch.equal(m[:, 1], x[:, 1].flip(-1))
    assert torch.equal(m[:, 2], 255 - x[:, 2].flip(-1))
    assert torch.equal(m[:, 3], x[:, 3].flip(-1))
    assert torch.equal(mirror_flow(m, channel_dim=1), x)
    with pytest.raises(ValueError, match="x/y channel pairs"):
        mirror_flow(x[:, :3], channel_dim=1)


def test_train_flip_and_test_mirror_views_negate_x() -> None:
    from datamodules.transforms import FullFrameViews

    frames = torch.randint(0, 256, (2, 8, 8, 4), dtype=torch.uint8)  # [T, H, W, 2L]
    # a crop of the whole frame at its own size: the only change left is the flip
    transform = TrainTransform(8, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=True).bound(
        8, True, {}, flow=True)
    plain = frames.permute(3, 0, 1, 2)
    mirrored = mirror_flow(plain, channel_dim=0)
    outcomes = set()
    for seed in range(8):
        clip, _ = transform(frames, 0, generator=torch.Generator().manual_seed(seed))
        assert clip.shape == (4, 2, 8, 8)
        assert torch.equal(clip, plain) or torch.equal(clip, mirrored)
        outcomes.add(torch.equal(clip, mirrored))
    assert outcomes == {True, False}
    views = TestViews(8, num_crops=10)
    views.flow = True
    crops = views(frames)  # [10, 2L, T, 8, 8]
    assert torch.equal(crops[0], plain)
    assert torch.equal(crops[5], mirrored)
    full = FullFrameViews(short_side=None)
    full.flow = True
    both = full(torch.stack([frames, frames]))  # clip 1 of 2 is the flipped one
    assert torch.equal(both[0], plain) and torch.equal(both[1], mirrored)
    with pytest.raises(ValueError, match=r"\[T, H, W, 3\]"):
        TrainTransform(8)(frames, 0)


def test_flow_fit_and_test_on_a_tiny_synthetic_set(synthetic_root, tmp_path) -> None:
    pytest.importorskip("cv2")
    import warnings

    import pytorch_lightning as pl

    import models
    from datamodules import SyntheticFineGrainedDataModule
    from datamodules.flow import FLOW_MEAN, FLOW_STD
    from lightning_modules import VideoRecognizer
    from lightning_modules.analysis import load_predictions
    from lightning_modules.analysis.fusion import fuse
    from lightning_modules.callbacks import ReversedTimeEvaluation, TestPredictionsWriter
    from tests.conftest import TINY_SYNTHETIC

    tiny = {**TINY_SYNTHETIC, "train_per_class": 2, "val_per_class": 1, "test_per_class": 1,
            "frames_per_video": 8, "size": 32, "short_side": None, "train_crop_size": 24,
            "test_crop_size": 24, "test_crops": 10}
    dm = SyntheticFineGrainedDataModule(data_dir=str(synthetic_root), video_backend="flow",
                                        flow_length=2, **tiny)
    assert dm.in_channels == 4
    backbone = models.VideoResNet(depth=18, temporal="none", width_multiplier=0.125,
                                  in_channels=dm.in_channels)
    model = VideoRecognizer(backbone, models.GAPHead, num_classes=dm.num_classes,
                            mean=[FLOW_MEAN], std=[FLOW_STD])
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         accelerator="cpu", num_sanity_val_steps=0,
                         default_root_dir=str(tmp_path),
                         callbacks=[ReversedTimeEvaluation(),
                                    TestPredictionsWriter(dirpath=str(tmp_path / "flow"))])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(model, datamodule=dm)
        results = trainer.test(model, datamodule=dm, verbose=False)
    # frames played backwards are not a reversed video's flow: that test is skipped, said so
    assert "test/acc1_video_reversed" not in results[0]
    assert any("skipped on optical flow" in str(w.message) for w in caught)
    batch = next(iter(dm.test_dataloader()))
    assert batch["video"].shape[1:] == (10, 4, 4, 24, 24)  # [B, V, 2L, T, H, W]
    assert results[0]["test/num_videos"] == dm.num_classes
    # late fusion with the RGB stream of the same videos: the two result files name them alike
    rgb_dm = SyntheticFineGrainedDataModule(data_dir=str(synthetic_root), **tiny)
    rgb = VideoRecognizer(models.VideoResNet(depth=18, temporal="none", width_multiplier=0.125),
                          models.GAPHead, num_classes=dm.num_classes)
    pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False,
               accelerator="cpu", default_root_dir=str(tmp_path),
               callbacks=[TestPredictionsWriter(dirpath=str(tmp_path / "rgb"))]
               ).test(rgb, datamodule=rgb_dm, verbose=False)
    streams = [load_predictions(tmp_path / s / "test_predictions.pt") for s in ("rgb", "flow")]
    assert streams[0]["video_ids"][0].endswith(".mp4")
    assert len(fuse(streams)["video_ids"]) == dm.num_classes


@pytest.mark.parametrize("sampling", ["uniform", "dense"])
def test_folder_datamodule_serves_flow_clips(tmp_path, sampling) -> None:
    from datamodules import VideoFolderDataModule

    for name in ("push", "pull"):
        for i in range(2):
            _write_flow_folder(tmp_path / name / f"v{i}", pairs=9)
    dm = VideoFolderDataModule(str(tmp_path), val_fraction=0.5, video_backend="flow",
                               sampling=sampling, num_frames=3, short_side=None,
                               train_crop_size=8, test_crop_size=8, batch_size=2,
                               num_workers=0)
    dm.setup("fit")
    assert dm.classes == ["pull", "push"]
    channels = 10 if sampling == "uniform" else 2  # TSN stacks 5 pairs; dense clips are x, y
    assert dm.in_channels == channels
    record = dm.datasets["train"].records[0]
    assert record.num_frames == 9 - channels // 2 + 1
    batch = next(iter(dm.train_dataloader()))
    assert batch["video"].shape == (2, channels, 3, 8, 8)
    # pair k has x = 10·k (255 - 10·k once flipped) and y = 10·k + 5, pairs in order
    video = batch["video"][:, :, :, 4, 4].int()  # [B, 2L, T]
    x, y = video[:, 0::2], video[:, 1::2]
    flipped = x % 10 == 5
    assert (flipped == flipped[:, :1, :1]).all()  # one flip decision per clip
    x = torch.where(flipped, 255 - x, x)
    assert torch.equal(y - 5, x)
    if sampling == "uniform":
        assert (x.diff(dim=1) == 10).all()  # consecutive pairs within a stack


@pytest.mark.parametrize(("name", "channels"), [("tsn_resnet18", 10), ("i3d_resnet18", 2)])
def test_flow_backbones_get_cross_modality_init(name, channels) -> None:
    """TSN §3.2: the first conv's ImageNet filters averaged over RGB, replicated over the flow
    channels (here from torchvision's own ResNet-18 state dict, randomly initialised)."""
    import torchvision

    from models import create_backbone

    state = torchvision.models.resnet18().state_dict()
    backbone = create_backbone(name, in_channels=channels, pretrained=state, inflate="center")
    weight = backbone.stage1.conv.weight  # [64, C, kt, 7, 7]
    assert weight.shape[1] == channels
    expected = state["conv1.weight"].mean(1)  # [64, 7, 7]
    centre = weight.shape[2] // 2
    for c in range(channels):
        assert torch.allclose(weight[:, c, centre], expected)
    out = backbone(torch.randn(1, channels, 4, 32, 32))
    assert out["stage5"].shape[:2] == (1, 512)


def test_prepare_flow_without_opencv_says_what_to_install(bar_video, tmp_path, monkeypatch,
                                                         capsys) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "cv2", None)  # "import cv2" now raises ImportError
    with pytest.raises(SystemExit) as exit_info:
        prepare.main(["flow", str(bar_video), str(tmp_path / "out"), "--no-progress"])
    assert exit_info.value.code == 2
    assert "pip install 'finegrain-video[flow]'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
