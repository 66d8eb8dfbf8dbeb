"""torchcodec backend: same counts and pixels as PyAV; skipped where it is not installed."""

from __future__ import annotations

import numpy as np
import pytest

from datamodules.decoders import DecodeError, available_decoders, get_decoder
from datamodules.decoders.torchcodec import torchcodec_available
from datamodules.records import VideoRecord
from tests import videos as V

needs_torchcodec = pytest.mark.skipif(
    not torchcodec_available(), reason="torchcodec or FFmpeg's shared libraries not installed"
)


def _rec(path, **kw) -> VideoRecord:
    return VideoRecord(path=str(path), label=0, **kw)


def test_listed_only_when_usable():
    assert ("torchcodec" in available_decoders()) == torchcodec_available()
    if not torchcodec_available():
        with pytest.raises(ImportError, match="pip install torchcodec"):
            get_decoder("torchcodec")


def test_missing_torchcodec_is_a_clear_import_error(monkeypatch):
    import datamodules.decoders.torchcodec as backend

    monkeypatch.setattr(backend, "torchcodec_available", lambda: False)
    with pytest.raises(ImportError, match="apt-get install ffmpeg"):
        get_decoder("torchcodec")
    assert "torchcodec" not in available_decoders()
    assert get_decoder("pyav") is not None  # the default backend does not care


@needs_torchcodec
@pytest.mark.parametrize(
    ("name", "kw"),
    [
        ("h264.mp4", dict(codec="libx264", gop=25, bframes=3)),
        ("mpeg4.avi", dict(codec="mpeg4", gop=12, bframes=2)),
        ("vp9.webm", dict(codec="libvpx-vp9", gop=15)),
        ("mjpeg.mkv", dict(codec="mjpeg")),
    ],
)
def test_same_pixels_as_sequential_decode(tmp_path, name, kw):
    path = V.write_video(tmp_path / name, 45, **kw)
    ref = V.reference_frames(path)
    decoder = get_decoder("torchcodec")
    assert decoder.num_frames(_rec(path)) == len(ref) == 45
    indices = [44, 0, 30, 30, 12, 26, 25]
    out = decoder.read(_rec(path), indices).numpy()
    assert out.shape == (len(indices), *ref.shape[1:])
    for i, j in enumerate(indices):
        np.testing.assert_array_equal(out[i], ref[j])
    if not name.endswith(".avi"):
        # torchcodec itself served the frames (AVI with B-frames carries decode-order
        # timestamps that torchcodec reports differently: those reads fall back to PyAV)
        assert decoder.fallbacks == 0


@needs_torchcodec
def test_lying_and_cut_files(tmp_path):
    decoder = get_decoder("torchcodec")
    lying = V.write_video(tmp_path / "lying.avi", 30, codec="mpeg4", gop=10, bframes=2)
    V.set_avi_frame_count(lying, 130)
    cut = V.truncate(V.write_video(tmp_path / "full.mkv", 40, codec="libx264", gop=10,
                                   bframes=2), 0.6, tmp_path / "cut.mkv")
    vfr = V.write_vfr(tmp_path / "vfr.mkv", [0, 40, 80, 200, 240, 600, 640, 680, 1000, 1300])
    paths = [lying, cut, vfr]
    if V.ffmpeg_cli() is not None:
        source = V.write_video(tmp_path / "src.mp4", 50, codec="libx264", gop=20, bframes=3)
        paths.append(V.cut_with_edit_list(source, tmp_path / "edit_list.mp4", 0.5))
    for path in paths:
        ref = V.reference_frames(path)
        n = decoder.num_frames(_rec(path))
        assert n == len(ref)
        out = decoder.read(_rec(path), [n - 1, 0, n // 2]).numpy()
        for i, j in enumerate([n - 1, 0, n // 2]):
            np.testing.assert_array_equal(out[i], ref[j])
        with pytest.raises(DecodeError):
            decoder.read(_rec(path), [n])
    assert decoder.fallbacks <= 1  # the AVI (decode-order timestamps) may need PyAV


@needs_torchcodec
def test_trim_and_errors(tmp_path):
    path = V.write_video(tmp_path / "v.mp4", 40, codec="libx264", gop=10, bframes=2)
    ref = V.reference_frames(path)
    decoder = get_decoder("torchcodec")
    rec = _rec(path, start_sec=0.4, end_sec=1.0)  # frames 10..24
    assert decoder.num_frames(rec) == 15
    np.testing.assert_array_equal(decoder.read(rec, [0])[0].numpy(), ref[10])
    with pytest.raises(DecodeError, match="not found"):
        decoder.num_frames(_rec(tmp_path / "missing.mp4"))
