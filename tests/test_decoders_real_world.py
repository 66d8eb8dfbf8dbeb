"""Frame ``i`` is the ``i``-th frame of a sequential decode on the files real datasets hold.

Each fixture is one class of real-world breakage (``tests.videos.broken_videos``): timestamps
that do not describe presentation order (B-frames muxed with pts = dts into MP4 / MKV / TS,
H.264 and MPEG-4 Part 2 B-frames in AVI), damaged packets, variable frame rate, rotation
metadata, odd frame sizes and yuvj420p / yuv444p / 10-bit pixel formats. Every backend —
``pyav``, ``torchcodec`` (where installed) and ``frames`` (folders written by ``prepare
frames``) — is checked against ``tests.videos.reference_frames`` at uniform and dense indices.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from datamodules.decoders import get_decoder
from datamodules.decoders._common import file_key
from datamodules.decoders.pyav import Timeline
from datamodules.decoders.torchcodec import torchcodec_available
from datamodules.prepare import extract_frames
from datamodules.records import VideoRecord
from datamodules.sampling import clip_indices
from tests import videos as V

NAMES = ["h264_bframes.mp4", "h264_pts_as_dts.mp4", "h264_pts_as_dts.mkv", "h264_pts_as_dts.ts",
         "h264_bframes.avi", "mpeg4_bframes.avi", "mpeg4_bframes_pts_as_dts.avi",
         "xvid_packed_bframes.avi",
         "h264_damaged.mp4", "vfr.mp4", "rotated.mp4", "odd_size_444.mp4", "odd_size_420.mp4",
         "yuvj420p.mp4", "yuv420p10.mp4", "yuv420p10.mkv"]
BACKENDS = ["pyav", "torchcodec", "frames"]


@dataclasses.dataclass
class Broken:
    path: Path
    frames_dir: Path  # what ``prepare frames`` wrote (lossless PNG, so pixels compare exactly)
    reference: np.ndarray  # uint8 [N, H, W, 3] of a sequential decode
    defined: list[int]  # frames whose pixels are defined (all but damaged ones)


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Broken]:
    folder = tmp_path_factory.mktemp("broken")
    files = V.broken_videos(folder)
    clean = V.reference_frames(files["h264_bframes.mp4"])
    out = {}
    for name, path in files.items():
        reference = V.reference_frames(path)
        frames_dir = folder / "frames" / name.replace(".", "_")
        extract_frames(path, frames_dir, template="{:05d}.png")
        defined = list(range(len(reference)))
        if name == "h264_damaged.mp4":
            # error concealment leaves undefined pixels (they differ between two plain decodes
            # in one process); frames that decode as before the damage must match exactly
            intact = {frame.tobytes() for frame in clean}
            defined = [i for i in defined if reference[i].tobytes() in intact]
            assert len(reference) <= len(clean) and len(defined) >= len(reference) - 12
        out[name] = Broken(path, frames_dir, reference, defined)
    return out


def index_sets(n: int) -> list[np.ndarray]:
    """Test-time uniform and dense clips, seeded train clips, and every frame backwards."""
    sets = [clip_indices(n, sampling="uniform", num_frames=8, num_clips=3, train=False),
            clip_indices(n, sampling="dense", num_frames=8, frame_interval=3, num_clips=2,
                         train=False)]
    for seed in range(2):
        g = torch.Generator().manual_seed(seed)
        sets.append(clip_indices(n, sampling="uniform", num_frames=8, train=True, generator=g))
        sets.append(clip_indices(n, sampling="dense", num_frames=8, frame_interval=2,
                                 train=True, generator=g))
    return [s.flatten().numpy() for s in sets] + [np.arange(n)[::-1].copy()]


def make(backend: str, case: Broken):
    if backend == "torchcodec" and not torchcodec_available():
        pytest.skip("torchcodec (and the FFmpeg libraries it needs) not installed")
    if backend == "frames":
        return get_decoder("frames", template="{:05d}.png"), VideoRecord(str(case.frames_dir), 0)
    return get_decoder(backend), VideoRecord(str(case.path), 0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", NAMES)
def test_frame_i_is_the_ith_frame_of_a_sequential_decode(broken, backend, name) -> None:
    if name not in broken:
        pytest.skip(f"{name} needs the ffmpeg program with libxvid")
    case = broken[name]
    decoder, record = make(backend, case)
    n = len(case.reference)
    for indices in index_sets(n):
        got = decoder.read(record, indices).numpy()
        assert got.shape == (len(indices), *case.reference.shape[1:])
        keep = [j for j, i in enumerate(indices.tolist()) if i in set(case.defined)]
        np.testing.assert_array_equal(got[keep], case.reference[indices[keep]], err_msg=name)
    # a damaged file's count is corrected by the first read that meets the damage
    assert decoder.num_frames(record) == n


@pytest.mark.parametrize("name", ["h264_pts_as_dts.mp4", "h264_bframes.avi",
                                  "h264_pts_as_dts.mkv", "xvid_packed_bframes.avi"])
def test_wrong_timestamps_are_found_at_the_scan_and_reads_still_seek(broken, name) -> None:
    """The file's packets look in order although its codec reorders (or the decoder's first
    frames contradict them): the timeline is built in decode-output order, and a frame late in
    the file still costs one seek and one GOP."""
    if name not in broken:
        pytest.skip(f"{name} needs the ffmpeg program with libxvid")
    decoder = get_decoder("pyav")
    record = VideoRecord(str(broken[name].path), 0)
    n = decoder.num_frames(record)
    timeline = decoder.timeline(record.path)
    assert timeline.source == "decode" and timeline.reordered
    decoder.read(record, [n - 2])
    assert decoder.last_stats.seeks == 1 and decoder.last_stats.decoded <= 12


def _packet_timeline(path: Path) -> Timeline:
    """The timeline a demuxer-only scan would build, trusting the packets' pts."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        packets = [(p.pts, p.is_keyframe) for p in container.demux(stream) if p.size]
        time_base = Fraction(stream.time_base)
        width, height = stream.codec_context.width, stream.codec_context.height
    order = sorted(range(len(packets)), key=lambda k: packets[k][0])
    pts = np.array([packets[k][0] for k in order], dtype=np.int64)
    keys = np.flatnonzero([packets[k][1] for k in order]).astype(np.int64)
    return Timeline(pts=pts, keyframes=keys, times=(pts - pts[0]) * float(time_base),
                    width=width, height=height, time_base=time_base,
                    header_frames=len(pts), source="demux")


@pytest.mark.parametrize("name", ["h264_pts_as_dts.mkv", "h264_bframes.avi"])
def test_out_of_order_output_found_at_read_time(broken, name) -> None:
    """Were the scan fooled, the first read that sees decoder output pts fail to increase
    rebuilds the timeline and returns the right frames."""
    case = broken[name]
    decoder = get_decoder("pyav")
    decoder._timelines.put(file_key(str(case.path)), _packet_timeline(case.path))
    indices = [3, 4, 5, 30, 31, 47]
    got = decoder.read(VideoRecord(str(case.path), 0), indices).numpy()
    np.testing.assert_array_equal(got, case.reference[indices])
    assert decoder.timeline(str(case.path)).reordered


def test_dataset_resamples_when_a_read_finds_the_file_shorter(broken) -> None:
    """A damaged file whose packets promised one frame more: the sample is drawn again from
    the count the decoder found, not lost."""
    from datamodules.dataset import VideoDataset
    from datamodules.transforms import TestViews

    case = broken["h264_damaged.mp4"]
    dataset = VideoDataset([VideoRecord(str(case.path), 0)], get_decoder("pyav"), mode="val",
                           sampling="uniform", num_frames=30,
                           test_views=TestViews(32, 48, 1))
    sample = dataset[0]
    assert sample["video"] is not None and sample["unreadable"] == []
    assert dataset.decoder.num_frames(dataset.records[0]) == len(case.reference)
