"""`python -m datamodules.prepare`: frame extraction and short-side re-encoding."""

from __future__ import annotations

import numpy as np
import pytest

from datamodules import prepare
from datamodules.decoders import get_decoder
from datamodules.records import VideoRecord
from tests import videos as V

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding capabilities")


def _rec(path) -> VideoRecord:
    return VideoRecord(path=str(path), label=0)


@pytest.fixture
def source(tmp_path):
    src = tmp_path / "src"
    (src / "jump").mkdir(parents=True)
    (src / "run").mkdir()
    V.write_video(src / "jump" / "a.mp4", 14, codec="libx264", gop=5, bframes=2)
    V.write_video(src / "run" / "b.webm", 10, codec="libvpx-vp9", width=48, height=64)
    (src / "run" / "notes.txt").write_text("not a video")
    return src


def test_frames_mirror_layout_and_resume(source, tmp_path, capsys):
    dst = tmp_path / "frames"
    argv = ["frames", str(source), str(dst), "--workers", "1", "--short-side", "32",
            "--no-progress"]
    assert prepare.main(argv) == 0
    assert "2 done, 0 skipped" in capsys.readouterr().out
    frames = get_decoder("frames")
    assert frames.num_frames(_rec(dst / "jump" / "a")) == 14
    assert frames.num_frames(_rec(dst / "run" / "b")) == 10
    assert frames.read(_rec(dst / "jump" / "a"), [0]).shape == (1, 32, 43, 3)
    assert frames.read(_rec(dst / "run" / "b"), [0]).shape == (1, 43, 32, 3)
    assert (dst / "jump" / "a" / "00001.jpg").exists()  # 1-based by default
    # an interrupted job leaves only a .partial folder: it is redone, finished ones are skipped
    (dst / "run" / "b").rename(dst / "run" / "b.partial")
    assert prepare.main(argv) == 0
    assert "1 done, 1 skipped" in capsys.readouterr().out
    assert frames.num_frames(_rec(dst / "run" / "b")) == 10
    assert not (dst / "run" / "b.partial").exists()


def test_frames_equal_decoder_frames_losslessly(tmp_path):
    video = V.write_video(tmp_path / "v.mkv", 9, codec="libx264", gop=4, bframes=2)
    n = prepare.extract_frames(video, tmp_path / "v", template="{:04d}.png", start_index=0)
    assert n == 9
    a = get_decoder("pyav").read(_rec(video), range(9))
    b = get_decoder("frames", template="{:04d}.png").read(_rec(tmp_path / "v"), range(9))
    assert np.array_equal(a.numpy(), b.numpy())


def test_resize_reencodes_short_side(source, tmp_path, capsys):
    dst = tmp_path / "resized"
    argv = ["resize", str(source), str(dst), "--short-side", "32", "--workers", "2",
            "--keyint-sec", "0.2", "--no-progress"]
    assert prepare.main(argv) == 0
    pyav = get_decoder("pyav")
    a, b = dst / "jump" / "a.mp4", dst / "run" / "b.mp4"
    assert pyav.num_frames(_rec(a)) == 14 and pyav.num_frames(_rec(b)) == 10
    assert pyav.read(_rec(a), [13]).shape == (1, 32, 44, 3)  # 42.7 → even
    assert pyav.read(_rec(b), [0]).shape == (1, 44, 32, 3)
    assert len(pyav.timeline(str(a)).keyframes) >= 3  # a key frame every 5 frames at 25 fps
    capsys.readouterr()
    assert prepare.main(argv) == 0
    assert "0 done, 2 skipped" in capsys.readouterr().out


def test_failures_are_reported_not_fatal(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    V.write_video(src / "good.mp4", 6)
    (src / "bad.mp4").write_text("garbage")
    code = prepare.main(["frames", str(src), str(tmp_path / "out"), "--workers", "1",
                         "--no-progress"])
    captured = capsys.readouterr()
    assert code == 1
    assert "1 done" in captured.out and "1 failed" in captured.out
    assert "bad.mp4" in captured.err
    assert not (tmp_path / "out" / "bad").exists()
    assert not (tmp_path / "out" / "bad.partial").exists()
