"""PyAV decoder against a plain sequential decode, on well-formed and lying files."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from datamodules.decoders import DecodeError, Decoder, get_decoder
from datamodules.records import VideoRecord
from tests import videos as V


def _rec(path, **kw) -> VideoRecord:
    return VideoRecord(path=str(path), label=0, **kw)


def _assert_matches(decoder, path, indices, ref, **kw):
    out = decoder.read(_rec(path, **kw), indices)
    assert out.dtype == torch.uint8 and out.shape == (len(indices), *ref.shape[1:])
    for i, j in enumerate(indices):
        np.testing.assert_array_equal(out[i].numpy(), ref[j], err_msg=f"{path} frame {j}")


FORMATS = {
    "h264_bframes_longgop.mp4": dict(codec="libx264", gop=25, bframes=3),
    "h264_gop10.mkv": dict(codec="libx264", gop=10, bframes=2),
    "mpeg4_bframes.avi": dict(codec="mpeg4", gop=12, bframes=2),
    "mjpeg.avi": dict(codec="mjpeg"),
    "vp9.webm": dict(codec="libvpx-vp9", gop=15),
}


@pytest.fixture(scope="module")
def format_files(tmp_path_factory) -> dict[str, tuple[Path, np.ndarray]]:
    root = tmp_path_factory.mktemp("formats")
    out = {}
    for name, kw in FORMATS.items():
        path = V.write_video(root / name, 53, **kw)
        out[name] = (path, V.reference_frames(path))
    return out


@pytest.mark.parametrize("name", list(FORMATS))
def test_every_frame_matches_sequential_decode(format_files, name):
    path, ref = format_files[name]
    assert len(ref) == 53
    decoder = get_decoder("pyav")
    assert isinstance(decoder, Decoder)
    assert decoder.num_frames(_rec(path)) == 53
    rng = np.random.default_rng(0)
    # unsorted, repeated, sparse, spanning GOPs
    for indices in ([52, 0, 26, 26, 13, 51], rng.permutation(53).tolist(), [7], [30, 29, 30]):
        _assert_matches(decoder, path, indices, ref)


def test_tensor_indices_and_empty(format_files):
    path, ref = format_files["h264_bframes_longgop.mp4"]
    decoder = get_decoder("pyav")
    _assert_matches(decoder, path, torch.tensor([3, 40, 3]), ref)
    assert decoder.read(_rec(path), []).shape == (0, *ref.shape[1:])


def test_decodes_only_what_indices_need(tmp_path):
    path = V.write_video(tmp_path / "long_gop.mp4", 100, codec="libx264", gop=25, bframes=3)
    ref = V.reference_frames(path)
    decoder = get_decoder("pyav", thread_type="NONE")
    decoder.num_frames(_rec(path))
    _assert_matches(decoder, path, [80, 81], ref)
    stats = decoder.last_stats
    assert stats.converted == 2 and stats.seeks == 1
    # seek to key frame 75, decode 75..81 (+ decoder look-ahead of the B-frame pyramid)
    assert stats.decoded <= 10, stats
    _assert_matches(decoder, path, [2, 60], ref)  # two runs: frames 0..2, then GOP at 50
    assert decoder.last_stats.converted == 2 and decoder.last_stats.decoded <= 3 + 11 + 4


def test_unreferenced_frames_are_skipped(tmp_path):
    path = V.write_video(tmp_path / "b.mp4", 50, codec="libx264", gop=50, bframes=3)
    ref = V.reference_frames(path)
    skipping = get_decoder("pyav", thread_type="NONE")
    plain = get_decoder("pyav", thread_type="NONE", skip_nonref=False)
    for decoder in (skipping, plain):
        _assert_matches(decoder, path, [40, 48], ref)
    assert skipping.last_stats.decoded < plain.last_stats.decoded  # ~ half of the B-frames
    assert skipping.decode_only(_rec(path), [40, 48]).converted == 0


def test_threading_gives_the_same_pixels(format_files):
    path, ref = format_files["h264_bframes_longgop.mp4"]
    for options in ({"thread_type": "NONE"}, {"thread_type": "AUTO", "thread_count": 2},
                    {"verify": "full"}, {"verify": "none"}, {"verify": "tail"},
                    {"seek_gap": 0}, {"seek_gap": 1000}, {"skip_nonref": False}):
        _assert_matches(get_decoder("pyav", **options), path, [50, 1, 49, 25, 24], ref)


# --- files that lie ------------------------------------------------------------------------


@pytest.mark.parametrize("verify", ["auto", "tail"])
@pytest.mark.parametrize("claimed", [20, 47, 49, 148])
def test_avi_header_count_wrong(tmp_path, claimed, verify):
    path = V.write_video(tmp_path / "lying.avi", 48, codec="mpeg4", gop=10, bframes=2)
    V.set_avi_frame_count(path, claimed)
    assert V.header_frames(path) == claimed  # the lie is in place
    ref = V.reference_frames(path)
    assert len(ref) == 48
    decoder = get_decoder("pyav", verify=verify)
    assert decoder.num_frames(_rec(path)) == 48
    _assert_matches(decoder, path, [47, 0, 46, 24], ref)


@pytest.mark.skipif(V.ffmpeg_cli() is None, reason="needs the ffmpeg program")
def test_mp4_edit_list_hides_leading_frames(tmp_path):
    source = V.write_video(tmp_path / "src.mp4", 60, codec="libx264", gop=25, bframes=3)
    path = V.cut_with_edit_list(source, tmp_path / "cut.mp4", 0.5)
    ref = V.reference_frames(path)
    assert V.header_frames(path) > len(ref)  # the header counts the hidden frames
    decoder = get_decoder("pyav")
    assert decoder.num_frames(_rec(path)) == len(ref)
    _assert_matches(decoder, path, list(range(len(ref)))[::-1], ref)


def test_fallback_paths_give_the_same_frames(format_files, monkeypatch):
    from dataclasses import replace

    from datamodules.decoders.pyav import PyAVDecoder

    path, ref = format_files["h264_bframes_longgop.mp4"]
    indices = [52, 3, 30, 3]
    # a seek that lands after its target (no frame comes out of the run): front-to-back decode
    late = get_decoder("pyav")
    monkeypatch.setattr(late, "_decode_run", lambda *args, **kwargs: None)
    _assert_matches(late, path, indices, ref)
    # timestamps unusable (missing or repeated): frames addressed by decode order
    sequential = get_decoder("pyav")
    timeline = replace(PyAVDecoder(verify="full").timeline(str(path)), pts=None)
    monkeypatch.setattr(sequential, "timeline", lambda _path: timeline)
    _assert_matches(sequential, path, indices, ref)
    assert sequential.num_frames(_rec(path)) == 53


def test_variable_frame_rate(tmp_path):
    """Irregular timestamps: indices follow decode order, trimming follows real time."""
    times_ms = [0, 40, 80, 200, 240, 600, 640, 680, 1000, 1300]
    path = V.write_vfr(tmp_path / "vfr.mkv", times_ms)
    ref = V.reference_frames(path)
    assert [round(t * 1000) for t in V.frame_times(path)] == times_ms
    decoder = get_decoder("pyav")
    assert decoder.num_frames(_rec(path)) == 10
    _assert_matches(decoder, path, [9, 0, 5, 4, 8], ref)
    window = _rec(path, start_sec=0.2, end_sec=0.65)  # 200, 240, 600, 640 ms
    assert decoder.num_frames(window) == 4
    np.testing.assert_array_equal(decoder.read(window, [2])[0].numpy(), ref[5])


def test_webm_has_no_header_count(format_files):
    path, ref = format_files["vp9.webm"]
    assert V.header_frames(path) == 0
    assert get_decoder("pyav").num_frames(_rec(path)) == len(ref)


@pytest.mark.parametrize(
    ("name", "kw", "container_options"),
    [
        ("cut.mp4", dict(codec="libx264", gop=10, bframes=2), {"movflags": "faststart"}),
        ("cut.mkv", dict(codec="libx264", gop=10, bframes=2), None),
        ("cut.avi", dict(codec="mjpeg"), None),
        ("cut.webm", dict(codec="libvpx-vp9", gop=10), None),
    ],
)
@pytest.mark.parametrize("fraction", [0.45, 0.8])
def test_stream_cut_short(tmp_path, name, kw, container_options, fraction):
    full = V.write_video(tmp_path / f"full_{name}", 40, container_options=container_options, **kw)
    path = V.truncate(full, fraction, tmp_path / name)
    ref = V.reference_frames(path)
    assert 0 < len(ref) < 40
    decoder = get_decoder("pyav")
    n = decoder.num_frames(_rec(path))
    assert n == len(ref), (V.header_frames(path), n, len(ref))
    _assert_matches(decoder, path, [n - 1, 0, n // 2, n - 1], ref)
    with pytest.raises(DecodeError, match=name):
        decoder.read(_rec(path), [n])


@pytest.mark.parametrize("thread_type", ["AUTO", "NONE"])
def test_damaged_packets_intra_codec(tmp_path, thread_type):
    path = V.write_video(tmp_path / "damaged.avi", 40, codec="mjpeg")
    clean = V.reference_frames(path)
    V.damage(path, 0.5, length=200)
    ref = V.reference_frames(path)
    decoder = get_decoder("pyav", thread_type=thread_type)
    n = decoder.num_frames(_rec(path))
    assert n == len(ref)
    out = decoder.read(_rec(path), list(range(n))[::-1]).numpy()[::-1]
    # The pixels of a damaged frame are whatever the decoder left in a recycled buffer (they
    # change with threading and timing even between two plain decodes); every frame that
    # decodes as it did before the damage must match exactly.
    defined = [i for i in range(n) if np.array_equal(ref[i], clean[i])]
    assert len(defined) >= n - 2
    np.testing.assert_array_equal(out[defined], ref[defined])


def test_claimed_frames_beyond_the_file(format_files):
    path, _ = format_files["mjpeg.avi"]
    decoder = get_decoder("pyav")
    with pytest.raises(DecodeError, match="only 53 frames"):
        decoder.read(_rec(path, num_frames=100), [0, 60])
    with pytest.raises(ValueError):
        decoder.read(_rec(path), [-1])


# --- trimming ------------------------------------------------------------------------------


def test_start_end_sec_window(format_files):
    path, ref = format_files["h264_bframes_longgop.mp4"]  # 25 fps: frame k at k/25 s
    decoder = get_decoder("pyav")
    rec = _rec(path, start_sec=0.4, end_sec=1.2)  # frames 10..29
    assert decoder.num_frames(rec) == 20
    out = decoder.read(rec, [0, 19, 5])
    for i, j in enumerate([10, 29, 15]):
        np.testing.assert_array_equal(out[i].numpy(), ref[j])
    assert decoder.num_frames(_rec(path, start_sec=1.5)) == 53 - 38 + 1 - 1  # 38..52
    assert decoder.num_frames(_rec(path, end_sec=100.0)) == 53
    with pytest.raises(DecodeError, match="no frames between"):
        decoder.num_frames(_rec(path, start_sec=5.0))
    with pytest.raises(DecodeError):
        decoder.read(rec, [20])


# --- unreadable inputs ---------------------------------------------------------------------


def test_unreadable_files_raise_decode_error(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    folder = tmp_path / "frames_dir"
    folder.mkdir()
    headless = V.truncate(V.write_video(tmp_path / "x.mp4", 20), 0.5, tmp_path / "nomoov.mp4")
    decoder = get_decoder("pyav")
    for path, reason in [
        (tmp_path / "missing.mp4", "not found"),
        (empty, "empty"),
        (text, "cannot open"),
        (folder, "folder"),
        (headless, None),  # mp4 whose index (moov, at the end) was cut off
    ]:
        with pytest.raises(DecodeError, match=reason) as info:
            decoder.num_frames(_rec(path))
        assert str(path) in str(info.value) and info.value.path == str(path)
        assert isinstance(info.value, RuntimeError)
        with pytest.raises(DecodeError):
            decoder.read(_rec(path), [0])


def test_audio_only_file(tmp_path):
    import av

    path = tmp_path / "audio.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), dtype=np.int16), format="s16",
                                           layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    with pytest.raises(DecodeError, match="no video stream"):
        get_decoder("pyav").num_frames(_rec(path))


def test_decode_error_pickles():
    error = pickle.loads(pickle.dumps(DecodeError("/x/y.mp4", "bad")))
    assert error.path == "/x/y.mp4" and error.reason == "bad" and "/x/y.mp4" in str(error)


def test_unknown_backend():
    with pytest.raises(ValueError, match="unknown video backend"):
        get_decoder("opencv")


# --- worker safety -------------------------------------------------------------------------


class _Frames(torch.utils.data.Dataset):
    def __init__(self, decoder, path, n):
        self.decoder, self.path, self.n = decoder, str(path), n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return self.decoder.read(_rec(self.path), [i])[0]


def test_decoder_in_forked_workers(format_files):
    path, ref = format_files["h264_bframes_longgop.mp4"]
    decoder = get_decoder("pyav")
    decoder.num_frames(_rec(path))  # warm the parent's cache: children inherit plain data
    loader = torch.utils.data.DataLoader(
        _Frames(decoder, path, 12), batch_size=4, num_workers=2,
        multiprocessing_context="fork",
    )
    out = torch.cat(list(loader))
    np.testing.assert_array_equal(out.numpy(), ref[:12])
    decoder.read(_rec(path), [0])  # now it also holds a (C) swscale context
    clone = pickle.loads(pickle.dumps(decoder))  # spawn-style workers pickle the decoder
    _assert_matches(clone, path, [5], ref)


def test_loader_workers_forked_after_decoding_in_the_parent_read(synthetic_root) -> None:
    """Workers forked from a process that had decoded hung on their first clip: each freed
    the inherited swscale context, whose slice threads exist only in the parent."""
    from torch.utils.data import DataLoader

    from datamodules import SyntheticFineGrainedDataModule
    from datamodules.dataset import collate_samples
    from tests.conftest import TINY_SYNTHETIC

    dm = SyntheticFineGrainedDataModule(data_dir=str(synthetic_root), **TINY_SYNTHETIC)
    dm.prepare_data()
    dm.setup("fit")
    dataset = dm.datasets["val"]  # deterministic clips: the parent's equals the worker's
    in_parent = dataset[0]["video"]  # the parent decodes first
    # a generous timeout turns a hang into a failure (the bug waited forever)
    loader = DataLoader(dataset, batch_size=4, num_workers=2, collate_fn=collate_samples,
                        timeout=300, multiprocessing_context="fork")
    batches = list(loader)
    assert sum(len(b["index"]) for b in batches) == len(dataset)
    first = batches[0]
    assert torch.equal(first["video"][first["index"].tolist().index(0)], in_parent)
