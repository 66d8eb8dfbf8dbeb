"""Clip transforms: shapes, clip consistency, view geometry, label swapping, normalisation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from jsonargparse import ArgumentParser
from torchvision.transforms import v2

from datamodules.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ClipTransform,
    ClipViews,
    FullFrameViews,
    ResizeRandomCrop,
    TestViews,
    TrainTransform,
    V2Transform,
    normalize,
    resize_short_side,
    short_side_size,
)


def _clip(t=4, h=48, w=64, seed=0) -> torch.Tensor:
    return torch.randint(0, 256, (t, h, w, 3), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(seed))


def _index_clip(t=3, h=40, w=60) -> torch.Tensor:
    """Each pixel encodes its own (x, y, t): crops can be located exactly."""
    y, x = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    frames = torch.stack([x, y, torch.zeros_like(x)], dim=-1).expand(t, h, w, 3).clone()
    frames[..., 2] = torch.arange(t).view(t, 1, 1) * 50
    return frames.to(torch.uint8)


def test_short_side_size():
    assert short_side_size(240, 320, 128) == (128, 171)
    assert short_side_size(320, 240, 128) == (171, 128)
    x = torch.zeros(2, 3, 240, 320, dtype=torch.uint8)
    assert resize_short_side(x, 120).shape == (2, 3, 120, 160)


def test_train_shapes_and_dtype():
    tf = TrainTransform(crop_size=32, short_side=40)
    clip, label = tf(_clip(), 3, generator=torch.Generator().manual_seed(0))
    assert clip.shape == (3, 4, 32, 32) and clip.dtype == torch.uint8 and label == 3


def test_train_one_crop_for_the_whole_clip():
    # a clip of four identical frames must stay four identical frames, whatever the crop
    frames = _clip(t=1).expand(4, -1, -1, -1).clone()
    tf = TrainTransform(crop_size=24, scale=(0.1, 0.5))
    for seed in range(10):
        clip, _ = tf(frames, 0, generator=torch.Generator().manual_seed(seed))
        for t in range(1, 4):
            assert torch.equal(clip[:, t], clip[:, 0])


def test_train_is_deterministic_given_a_generator():
    tf = TrainTransform(crop_size=32)
    a, _ = tf(_clip(), 0, generator=torch.Generator().manual_seed(5))
    b, _ = tf(_clip(), 0, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    crops = {tf.crop_box(48, 64, torch.Generator().manual_seed(s)) for s in range(20)}
    assert len(crops) > 10


def test_crop_box_area_and_ratio():
    tf = TrainTransform(crop_size=8, scale=(0.25, 0.5), ratio=(0.75, 4 / 3))
    for seed in range(50):
        top, left, h, w = tf.crop_box(100, 200, torch.Generator().manual_seed(seed))
        assert top >= 0 and top + h <= 100 and left >= 0 and left + w <= 200
        assert 0.23 <= h * w / 20000 <= 0.52
        assert 0.7 <= w / h <= 1.4


def test_flip_swaps_mapped_labels():
    tf = TrainTransform(crop_size=20, scale=(1.0, 1.0), ratio=(60 / 40, 60 / 40),
                        flip_label_map={3: 4, 4: 3})
    frames = _index_clip()
    flipped = kept = 0
    for seed in range(40):
        clip, label = tf(frames, 3, generator=torch.Generator().manual_seed(seed))
        # full-frame crop: x channel increases left to right unless flipped
        mirrored = clip[0, 0, 0, 0] > clip[0, 0, 0, -1]
        assert label == (4 if mirrored else 3)
        flipped += int(mirrored)
        kept += int(not mirrored)
        assert tf(frames, 7, generator=torch.Generator().manual_seed(seed))[1] == 7
    assert flipped and kept
    no_flip = TrainTransform(crop_size=20, flip=False, flip_label_map={3: 4})
    for seed in range(10):
        assert no_flip(frames, 3, generator=torch.Generator().manual_seed(seed))[1] == 3


@pytest.mark.parametrize("num_crops", [1, 3, 5, 10])
def test_test_views_shapes(num_crops):
    views = TestViews(crop_size=32, short_side=40, num_crops=num_crops)(_clip())
    assert views.shape == (num_crops, 3, 4, 32, 32) and views.dtype == torch.uint8


def test_test_view_positions():
    frames = _index_clip(h=40, w=60)  # channel 0 = x, channel 1 = y
    corner = lambda v: (int(v[0, 0, 0, 0]), int(v[1, 0, 0, 0]))  # noqa: E731 (x, y) top-left
    views = TestViews(crop_size=20, short_side=None, num_crops=10)(frames)
    assert [corner(v) for v in views[:5]] == [(20, 10), (0, 0), (40, 0), (0, 20), (40, 20)]
    assert torch.equal(views[5:], views[:5].flip(-1))
    three = TestViews(crop_size=20, short_side=None, num_crops=3)(frames)
    assert [corner(v) for v in three] == [(20, 10), (0, 10), (40, 10)]
    tall = TestViews(crop_size=20, short_side=None, num_crops=3)(frames.transpose(1, 2))
    # transposed: channel 0 now holds the row, channel 1 the column
    assert [corner(v) for v in tall] == [(20, 10), (0, 10), (40, 10)]
    centre = TestViews(crop_size=20, short_side=None, num_crops=1)(frames)
    assert torch.equal(centre[0], views[0])
    # time is untouched: channel 2 holds t * 50
    assert views[0, 2, :, 0, 0].tolist() == [0, 50, 100]


def test_test_views_upscale_small_frames():
    views = TestViews(crop_size=56, short_side=None, num_crops=5)(_clip(h=48, w=64))
    assert views.shape == (5, 3, 4, 56, 56)


def test_bad_arguments():
    for make in (lambda: TestViews(32, 40, num_crops=4), lambda: TrainTransform(0),
                 lambda: TrainTransform(32, scale=(0.5, 0.1))):
        with pytest.raises(ValueError):
            make()
    with pytest.raises(ValueError, match="uint8"):
        TrainTransform(8)(torch.zeros(2, 8, 8, 3), 0)
    with pytest.raises(ValueError, match=r"\[T, H, W, 3\]"):
        TestViews(8)(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))


def test_normalize_channel_dim_is_minus_four():
    x = torch.full((2, 5, 3, 4, 8, 8), 255, dtype=torch.uint8)  # [B, V, C, T, H, W]
    y = normalize(x, IMAGENET_MEAN, IMAGENET_STD)
    assert y.dtype == torch.float32 and y.shape == x.shape
    for c in range(3):
        expected = (1.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
        assert torch.allclose(y[:, :, c], torch.tensor(expected), atol=1e-5)
    z = normalize(torch.zeros(3, 2, 4, 4, dtype=torch.uint8), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert torch.allclose(z, torch.tensor(-1.0))
    f = normalize(torch.ones(3, 1, 2, 2), (0.5,) * 3, (0.25,) * 3)
    assert torch.allclose(f, torch.tensor(2.0))
    with pytest.raises(ValueError):
        normalize(torch.zeros(4, 2, 4, 4, dtype=torch.uint8))


# ---- the papers' train transforms (experiments/transforms/*.yaml) ------------------------------
TRANSFORMS = Path(__file__).resolve().parents[1] / "experiments" / "transforms"


def component(file: str, kind: type = ClipTransform):
    """A component file of ``experiments/transforms/``, read as the CLI reads it."""
    parser = ArgumentParser()
    parser.add_argument("--component", type=kind)
    config = parser.parse_object({"component": yaml.safe_load((TRANSFORMS / file).read_text())})
    return parser.instantiate(config).component


def paper_transform(name: str, crop_size: int = 224, flip: bool = True,
                    flip_label_map: dict[int, int] | None = None) -> ClipTransform:
    """The component a paper's rows name, read as the CLI reads it, bound as a datamodule binds
    it (``flip=False``: a Something-Something datamodule)."""
    transform = component(f"{name}_train.yaml")
    return transform.bound(crop_size, flip, flip_label_map or {})


def _seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _boxes_and_flips(tf: ClipTransform, frames: torch.Tensor, seeds=range(40)):
    """Per seed: the source box, and whether the clip came out mirrored (label 0 → 1)."""
    out = []
    for seed in seeds:
        box = tf.source_box(frames.shape[1], frames.shape[2], _seeded(seed))
        clip, label = tf(frames, 0, generator=_seeded(seed))
        assert clip.shape == (3, frames.shape[0], tf.crop_size, tf.crop_size)
        out.append((box, label == 1, clip))
    return out


def test_u2s_crop_is_224_at_one_place_for_the_whole_clip() -> None:
    """u2s §IV-B: short side 240, a 224 crop at the same location for every frame."""
    frames = _clip(t=3, h=240, w=320)  # short side already 240: the crop is an exact cut
    tf = paper_transform("u2s", flip_label_map={0: 1})
    places = set()
    for (top, left, h, w), mirrored, clip in _boxes_and_flips(tf, frames, range(12)):
        assert (h, w) == (224, 224)
        expected = frames[:, top : top + 224, left : left + 224].permute(3, 0, 1, 2)
        assert torch.equal(clip, expected.flip(-1) if mirrored else expected)  # every frame
        places.add((top, left))
    assert len(places) > 6  # a random place, drawn per clip
    # on Something-Something (datamodule flip: false) never mirrored
    ssv2 = paper_transform("u2s", flip=False, flip_label_map={0: 1})
    assert not any(m for _, m, _ in _boxes_and_flips(ssv2, frames, range(20)))


def test_s3d_resizes_to_256_square_then_crops_224() -> None:
    """s3d §3.2: frames resized to 256 × 256 (aspect not kept), random 224 crops."""
    frames = _clip(t=2, h=128, w=192)
    tf = paper_transform("s3d", flip_label_map={0: 1})
    results = _boxes_and_flips(tf, frames)
    # 224 of 256 rows / columns → 7/8 of the decoded height and width
    assert {box[2:] for box, _, _ in results} == {(112, 168)}
    tops = {box[0] for box, _, _ in results}
    lefts = {box[1] for box, _, _ in results}
    assert min(tops) >= 0 and max(tops) <= 16 and len(tops) > 5
    assert min(lefts) >= 0 and max(lefts) <= 24 and len(lefts) > 5
    assert 0 < sum(m for _, m, _ in results) < len(results)  # flipped sometimes (Kinetics)


def test_dfb_random_resizing_random_crop_and_flip() -> None:
    """dfb §4.2: horizontal flip, random resizing (short side in [256, 320]), 224 crop."""
    frames = _clip(t=2, h=256, w=320)
    tf = paper_transform("dfb", flip_label_map={0: 1})
    results = _boxes_and_flips(tf, frames)
    sides = set()
    for (top, left, h, w), _, _ in results:
        # 224 of a 256..320 short side (±1 px: the resized width is rounded)
        assert abs(h - w) <= 1 and round(224 * 256 / 320) <= h <= 224
        assert top + h <= 256 and left + w <= 320
        sides.add(h)
    assert len(sides) > 5  # the resize is drawn per clip
    assert 0 < sum(m for _, m, _ in results) < len(results)


def test_unified_multi_scale_crop_follows_the_released_code() -> None:
    """unified: TSN multi-scale crop (scales 1, .875, .75, .66; neighbouring scales pair;
    13 grid places), resized to 224."""
    frames = _clip(t=2, h=256, w=340)  # short side 256, as the authors extract frames
    tf = paper_transform("unified")
    sides = [256, 224, 192, 168]  # int(256 * s) for the four scales
    allowed = set()
    for i, h in enumerate(sides):
        for j, w in enumerate(sides):
            if abs(i - j) <= 1:
                sy, sx = (256 - h) // 4, (340 - w) // 4
                for r, q in [(0, 0), (0, 4), (4, 0), (4, 4), (2, 2), (2, 0), (2, 4), (4, 2),
                             (0, 2), (1, 1), (1, 3), (3, 1), (3, 3)]:
                    allowed.add((r * sy, q * sx, h, w))
    results = _boxes_and_flips(tf, frames, range(60))
    boxes = {box for box, _, _ in results}
    assert boxes <= allowed
    assert len({box[2:] for box in boxes}) > 4 and len(boxes) > 20
    # on another frame size the geometry is the 256-short-side frame's, mapped back
    small = _clip(t=2, h=128, w=170)
    top, left, h, w = tf.source_box(128, 170, _seeded(0))
    assert top + h <= 128 and left + w <= 170 and 84 <= min(h, w) <= 128
    assert tf(small, 0, generator=_seeded(0))[0].shape == (3, 2, 224, 224)


@pytest.mark.parametrize("name", ["dfb", "u2s", "s3d", "unified"])
def test_paper_transforms_are_deterministic_given_a_generator(name: str) -> None:
    frames = _clip(t=2, h=120, w=160)
    tf = paper_transform(name, crop_size=64, flip_label_map={0: 1})
    a = tf(frames, 0, generator=_seeded(3))
    b = tf(frames, 0, generator=_seeded(3))
    assert torch.equal(a[0], b[0]) and a[1] == b[1]
    outputs = {tf(frames, 0, generator=_seeded(s))[0].float().sum().item() for s in range(8)}
    assert len(outputs) > 1


def test_a_datamodule_binds_its_settings_into_an_injected_transform() -> None:
    tf = ResizeRandomCrop(short_side=40)
    with pytest.raises(ValueError, match="crop_size"):
        tf(_clip(), 0)
    bound = tf.bound(24, flip=False, flip_label_map={1: 2})
    assert (bound.crop_size, bound.flip, bound.flip_label_map) == (24, False, {1: 2})
    assert tf.crop_size is None and tf.flip  # the configured object is left as it was
    own = ResizeRandomCrop(16, flip_label_map={5: 6}).bound(24, True, {1: 2})
    assert (own.crop_size, own.flip_label_map) == (16, {5: 6})
    with pytest.raises(ValueError, match="not both"):
        ResizeRandomCrop(8, short_side=10, size=(10, 10))


# ---- torchvision v2 transforms (V2Transform) ---------------------------------------------------
def test_v2_transform_is_a_function_of_the_generator_alone() -> None:
    tf = V2Transform([v2.RandomResizedCrop(24, scale=(0.2, 1.0)), v2.ColorJitter(0.4, 0.4, 0.4),
                      v2.RandAugment()]).bound(24, True, {})
    frames = _clip(t=3)
    a = tf(frames, 0, generator=_seeded(7))
    torch.manual_seed(123)  # whatever state the global RNG (a worker's) is in
    state = torch.get_rng_state()
    b = tf(frames, 0, generator=_seeded(7))
    assert torch.equal(a[0], b[0]) and a[0].shape == (3, 3, 24, 24) and a[0].dtype == torch.uint8
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is left as it was
    outputs = {tf(frames, 0, generator=_seeded(s))[0].float().sum().item() for s in range(6)}
    assert len(outputs) == 6


def test_v2_transform_draws_once_for_the_whole_clip() -> None:
    """One crop place for every frame, one jitter for every frame."""
    frames = _index_clip(t=3, h=40, w=60)  # channel 0 = x, channel 1 = y, channel 2 = 50 t
    crop = V2Transform(v2.RandomCrop(20), flip=False).bound(20, True, {})
    places = set()
    for seed in range(10):
        clip, _ = crop(frames, 0, generator=_seeded(seed))  # [3, T, 20, 20]
        x0, y0 = int(clip[0, 0, 0, 0]), int(clip[1, 0, 0, 0])
        expected = frames[:, y0 : y0 + 20, x0 : x0 + 20].permute(3, 0, 1, 2)
        assert torch.equal(clip, expected)  # every frame cut at (x0, y0)
        places.add((x0, y0))
    assert len(places) > 5
    same = _clip(t=1).expand(4, -1, -1, -1).clone()  # four identical frames stay identical
    jitter = V2Transform([v2.RandomResizedCrop(24, scale=(0.1, 0.5)),
                          v2.ColorJitter(0.5, 0.5, 0.5, 0.2)]).bound(24, True, {})
    for seed in range(5):
        clip, _ = jitter(same, 0, generator=_seeded(seed))
        assert all(torch.equal(clip[:, t], clip[:, 0]) for t in range(1, 4))


def test_v2_transform_flips_itself_and_refuses_a_v2_flip() -> None:
    frames = _index_clip()
    tf = V2Transform(v2.CenterCrop(20), flip_label_map={3: 4}).bound(20, True, {})
    mirrored = {tf(frames, 3, generator=_seeded(s))[1] for s in range(20)}
    assert mirrored == {3, 4}  # mirrored sometimes, the label swapped then
    assert {tf.bound(20, False, {})(frames, 3, generator=_seeded(s))[1] for s in range(20)} == {3}
    nested = v2.RandomApply([v2.Compose([v2.RandomHorizontalFlip()])], p=0.5)
    for flipping in (v2.RandomHorizontalFlip(), nested):
        with pytest.raises(ValueError, match="flip option"):
            V2Transform([v2.RandomCrop(8), flipping])
    with pytest.raises(ValueError, match="crop_size 24"):
        V2Transform(v2.RandomCrop(20)).bound(24, True, {})(frames, 0, generator=_seeded(0))
    with pytest.raises(ValueError, match="uint8"):
        V2Transform([v2.RandomCrop(20), v2.ToDtype(torch.float32, scale=True)]).bound(
            20, True, {})(frames, 0, generator=_seeded(0))


def test_v2_example_component_parses_and_runs() -> None:
    """``experiments/transforms/v2_example.yaml``: v2 transforms by class_path, as the CLI reads
    them (``experiments/synthetic/v2_augment.yaml`` names it; tests/test_experiment_configs.py
    parses that command through the project's CLI)."""
    tf = component("v2_example.yaml")
    assert isinstance(tf, V2Transform)
    tf = tf.bound(32, True, {})
    clip, _ = tf(_clip(t=2, h=64, w=64), 0, generator=_seeded(0))
    assert clip.shape == (3, 2, 32, 32)
    assert torch.equal(clip, tf(_clip(t=2, h=64, w=64), 0, generator=_seeded(0))[0])


# ---- test views ---------------------------------------------------------------------------------
def test_full_frame_views_keep_the_whole_frame_and_flip_every_other_clip() -> None:
    """dfb §4.2 3D test: short side 256, full width, no crop, every other clip mirrored."""
    clip = _clip(t=2, h=48, w=80)
    clips = clip.expand(4, -1, -1, -1, -1)  # four identical clips [K, T, H, W, 3]
    views = FullFrameViews(short_side=32)(clips)
    assert views.shape == (4, 3, 2, 32, 53) and views.dtype == torch.uint8
    assert torch.equal(views[2], views[0]) and torch.equal(views[1], views[0].flip(-1))
    assert torch.equal(views[3], views[1])
    expected = resize_short_side(clip.permute(0, 3, 1, 2), 32).permute(1, 0, 2, 3)
    assert torch.equal(views[0], expected)
    plain = FullFrameViews(short_side=None, flip_alternate=False)(clips)
    assert plain.shape == (4, 3, 2, 48, 80) and torch.equal(plain[1], plain[0])
    assert not FullFrameViews().fixed_size and TestViews(8).fixed_size


def test_test_views_of_several_clips_are_clip_major() -> None:
    clips = torch.stack([_clip(seed=s) for s in range(3)])
    views = TestViews(crop_size=32, short_side=40, num_crops=3)(clips)
    assert views.shape == (9, 3, 4, 32, 32)
    for k in range(3):
        assert torch.equal(views[3 * k : 3 * k + 3], TestViews(32, 40, 3)(clips[k]))


@pytest.mark.parametrize("height, width", [(40, 60), (72, 36)])  # two aspect ratios
def test_s3d_test_view_resizes_to_256_square_then_takes_the_centre_224(height, width) -> None:
    """s3d §3.2: evaluation takes 224 centre crops of the frames resized to 256 × 256 (aspect
    not kept), ``experiments/transforms/s3d_test.yaml``; here at 1/8 scale (32², crop 28)."""
    views = component("s3d_test.yaml", ClipViews)
    assert isinstance(views, TestViews) and views.crop_size is None  # the datamodule's side
    assert views.size == (256, 256) and views.bound(224).crop_size == 224
    small = TestViews(crop_size=28, size=(32, 32))
    frames = _index_clip(t=3, h=height, w=width)
    (view,) = small(frames)  # [3, T, 28, 28]
    assert view.shape == (3, 3, 28, 28)
    square = torch.nn.functional.interpolate(  # the 32 × 32 frame, whatever the aspect ratio
        frames.permute(0, 3, 1, 2).float(), size=(32, 32), mode="bilinear", antialias=True,
        align_corners=False).round().clamp(0, 255).to(torch.uint8)
    expected = square[:, :, 2:30, 2:30].permute(1, 0, 2, 3)
    assert (view.int() - expected.int()).abs().max() <= 1
    with pytest.raises(ValueError, match="not both"):
        TestViews(28, short_side=32, size=(32, 32))
    with pytest.raises(ValueError, match="crop_size is not set"):
        TestViews(size=(32, 32))(frames)
