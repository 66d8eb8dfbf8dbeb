"""Clip transforms: shapes, clip consistency, view geometry, label swapping, normalisation."""

from __future__ import annotations

import pytest
import torch

from datamodules.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    TestViews,
    TrainTransform,
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
