"""Samplers against hand-worked cases (DESIGN.md "Public interfaces")."""

from __future__ import annotations

import pytest
import torch

from datamodules.sampling import (
    clip_indices,
    dense_indices,
    uniform_indices,
    uniform_test_indices,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- uniform -------------------------------------------------------------------------------


def test_uniform_test_hand_worked():
    # floor((i + 0.5) * 10 / 4) = floor(1.25), floor(3.75), floor(6.25), floor(8.75)
    assert uniform_indices(10, 4, train=False).tolist() == [1, 3, 6, 8]
    assert uniform_indices(8, 8, train=False).tolist() == list(range(8))
    assert uniform_indices(1, 3, train=False).tolist() == [0, 0, 0]


def test_uniform_test_fewer_frames_than_segments():
    # floor((i + 0.5) * 3 / 8): 0.19 0.56 0.94 1.31 1.69 2.06 2.44 2.81
    assert uniform_indices(3, 8, train=False).tolist() == [0, 0, 0, 1, 1, 2, 2, 2]


def test_uniform_train_one_frame_per_segment():
    for seed in range(20):
        idx = uniform_indices(100, 4, train=True, generator=_gen(seed))
        assert idx.dtype == torch.int64 and idx.shape == (4,)
        for i, v in enumerate(idx.tolist()):
            assert 25 * i <= v < 25 * (i + 1)


def test_uniform_train_uneven_segments_stay_in_their_part():
    # N=10, S=3: parts [0,3), [3,6), [6,10)
    seen = [set(), set(), set()]
    for seed in range(200):
        idx = uniform_indices(10, 3, train=True, generator=_gen(seed)).tolist()
        for part, v in zip(seen, idx, strict=True):
            part.add(v)
    assert seen == [{0, 1, 2}, {3, 4, 5}, {6, 7, 8, 9}]


def test_uniform_train_short_video_repeats_sorted():
    for seed in range(20):
        idx = uniform_indices(3, 8, train=True, generator=_gen(seed))
        assert idx.tolist() == sorted(idx.tolist())
        assert idx.min() >= 0 and idx.max() < 3
        assert set(idx.tolist()) == {0, 1, 2}  # every frame is some segment's only frame


def test_uniform_generator_determinism():
    a = uniform_indices(300, 8, train=True, generator=_gen(7))
    b = uniform_indices(300, 8, train=True, generator=_gen(7))
    c = uniform_indices(300, 8, train=True, generator=_gen(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_uniform_test_clips_interleave():
    # offsets 0.25 and 0.75 inside segments of 5 frames
    assert uniform_test_indices(10, 2, 2).tolist() == [[1, 6], [3, 8]]
    # K=1 is the centre
    assert torch.equal(uniform_test_indices(37, 8, 1)[0], uniform_indices(37, 8, train=False))
    many = uniform_test_indices(1000, 8, 5)
    assert many.shape == (5, 8)
    assert (many[1:] > many[:-1]).all()  # clips interleave, strictly later offset each


# --- dense ---------------------------------------------------------------------------------


def test_dense_test_hand_worked():
    # L = 7*2+1 = 15; avg = 86/3; starts floor(14.33)=14, floor(43)=43, floor(71.67)=71
    idx = dense_indices(100, 8, 2, num_clips=3, train=False)
    assert idx.shape == (3, 8)
    assert idx[:, 0].tolist() == [14, 43, 71]
    assert idx[0].tolist() == list(range(14, 30, 2))
    # one clip: centred window
    assert dense_indices(20, 4, 1, train=False).tolist() == [[8, 9, 10, 11]]
    # exactly as long as the span
    assert dense_indices(13, 4, 4, train=False).tolist() == [[0, 4, 8, 12]]


def test_dense_short_video_wraps():
    # L = 13 > 10: start 0, indices modulo 10
    assert dense_indices(10, 4, 4, train=False).tolist() == [[0, 4, 8, 2]]
    for seed in range(10):
        assert dense_indices(10, 4, 4, train=True, generator=_gen(seed)).tolist() == [
            [0, 4, 8, 2]
        ]
    assert dense_indices(1, 3, 2, num_clips=2, train=False).tolist() == [[0, 0, 0], [0, 0, 0]]


def test_dense_train_start_range_and_determinism():
    starts = set()
    for seed in range(300):
        idx = dense_indices(20, 4, 2, train=True, generator=_gen(seed))  # L = 7
        assert idx.shape == (1, 4)
        s = idx[0, 0].item()
        assert idx[0].tolist() == [s, s + 2, s + 4, s + 6]
        starts.add(s)
    assert starts == set(range(14))  # [0, N - L]
    a = dense_indices(500, 16, 4, train=True, generator=_gen(3))
    b = dense_indices(500, 16, 4, train=True, generator=_gen(3))
    assert torch.equal(a, b)


@pytest.mark.parametrize("n", [1, 2, 5, 17, 64, 301])
def test_all_indices_in_range(n):
    for train in (True, False):
        u = uniform_indices(n, 8, train=train, generator=_gen(n))
        d = dense_indices(n, 8, 3, num_clips=1 if train else 4, train=train, generator=_gen(n))
        for idx in (u, d, uniform_test_indices(n, 8, 3)):
            assert idx.dtype == torch.int64
            assert idx.min() >= 0 and idx.max() < n


# --- dispatcher and errors -----------------------------------------------------------------


def test_clip_indices_dispatch():
    u = clip_indices(10, sampling="uniform", num_frames=4, frame_interval=9, train=False)
    assert u.tolist() == [[1, 3, 6, 8]]  # frame_interval ignored for uniform
    u2 = clip_indices(10, sampling="uniform", num_frames=2, num_clips=2, train=False)
    assert u2.tolist() == [[1, 6], [3, 8]]
    d = clip_indices(100, sampling="dense", num_frames=8, frame_interval=2, num_clips=3,
                     train=False)
    assert torch.equal(d, dense_indices(100, 8, 2, num_clips=3, train=False))
    t = clip_indices(100, sampling="uniform", num_frames=8, train=True, generator=_gen(1))
    assert torch.equal(t[0], uniform_indices(100, 8, train=True, generator=_gen(1)))
    t = clip_indices(100, sampling="dense", num_frames=8, frame_interval=2, train=True,
                     generator=_gen(1))
    assert torch.equal(t, dense_indices(100, 8, 2, train=True, generator=_gen(1)))


@pytest.mark.parametrize(
    "call",
    [
        lambda: uniform_indices(0, 8, train=True),
        lambda: uniform_indices(10, 0, train=False),
        lambda: uniform_test_indices(10, 8, 0),
        lambda: dense_indices(-1, 8, 1, train=True),
        lambda: dense_indices(10, 8, 0, train=True),
        lambda: dense_indices(10, 8, 1, num_clips=0, train=False),
        lambda: clip_indices(10, sampling="uniform", num_frames=8, num_clips=2, train=True),
        lambda: clip_indices(10, sampling="random", num_frames=8, train=True),
    ],
)
def test_bad_arguments_raise(call):
    with pytest.raises(ValueError):
        call()
