"""``python -m datamodules.check``: the dataset doctor on files with known faults."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from datamodules import check
from datamodules.decoders import get_decoder
from datamodules.decoders.pyav import PyAVDecoder
from datamodules.records import VideoRecord
from tests import videos as V


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("doctor")
    V.write_video(root / "good.mp4", 30, gop=10, bframes=2)
    clean = V.write_video(root / "src.mp4", 40, gop=10, bframes=2)
    V.remux(clean, root / "pts_as_dts.mp4", pts_as_dts=True)
    shutil.copy(clean, root / "damaged.mp4")
    V.damage(root / "damaged.mp4", 0.55, length=48)
    clean.unlink()
    (root / "empty.mp4").write_bytes(b"")
    (root / "notes.avi").write_text("not a video\n" * 40)
    # two MPEG-TS streams of different sizes, one after the other: the size changes mid-file
    big = V.write_video(root / "big.ts", 12, width=64, height=48)
    small = V.write_video(root / "small.ts", 12, width=32, height=24)
    (root / "resized.ts").write_bytes(big.read_bytes() + small.read_bytes())
    big.unlink()
    small.unlink()
    return root


def by_name(reports) -> dict[str, check.VideoReport]:
    return {Path(r.path).name: r for r in reports}


def test_each_fault_is_named(folder) -> None:
    reports = by_name(check.check_video(p, verify=True) for p in check.find_videos(folder))
    assert reports["good.mp4"].status == "ok" and reports["good.mp4"].index == "packets"
    assert reports["good.mp4"].verified_frames > 0 and reports["good.mp4"].mismatched_frames == []
    wrong = reports["pts_as_dts.mp4"]
    assert wrong.status == "problems" and wrong.index == "decode order, seekable"
    assert any("follow decode order" in p for p in wrong.problems)
    assert any("go backwards" in p for p in wrong.problems)
    assert wrong.mismatched_frames == []  # the decoder reads it right all the same
    damaged = reports["damaged.mp4"]
    # whether FFmpeg rejects the damaged packet or decodes it with errors depends on what its
    # buffers held before (it changes between runs of one process); either is named
    assert any("rejected by the decoder" in p or "decoded with errors" in p
               for p in damaged.problems), damaged.problems
    assert damaged.decoder_frames == damaged.decoded_frames
    assert reports["empty.mp4"].status == "unreadable" and "empty" in reports["empty.mp4"].error
    assert reports["notes.avi"].status == "unreadable"
    resized = reports["resized.ts"]
    assert resized.frame_sizes == [[64, 48], [32, 24]]
    assert any("frame size changes: 64x48 -> 32x24 at frame 12" in p for p in resized.problems)


def test_command_line_report_and_index(folder, tmp_path, monkeypatch, capsys) -> None:
    report, index = tmp_path / "report.json", tmp_path / "index.json"
    status = check.main([str(folder), "--workers", "2", "--json", str(report), "--save-index",
                         str(index), "--no-progress"])
    assert status == 1  # problems found
    data = json.loads(report.read_text())
    assert data["summary"]["videos"] == 6 and data["summary"]["unreadable"] == 2
    assert data["summary"]["ok"] == 1
    assert {Path(v["path"]).name for v in data["videos"]} == {
        "good.mp4", "pts_as_dts.mp4", "damaged.mp4", "empty.mp4", "notes.avi", "resized.ts"}
    out = capsys.readouterr().out
    assert "pts_as_dts.mp4" in out and "6 videos: 1 ok, 3 with problems, 2 unreadable" in out
    # a decoder given the index never scans those files, and reads them right
    monkeypatch.setattr(PyAVDecoder, "_scan", lambda self, path: pytest.fail(f"scanned {path}"))
    decoder = get_decoder("pyav", index=str(index))
    path = str(folder / "pts_as_dts.mp4")
    got = decoder.read(VideoRecord(path, 0), [0, 17, 33]).numpy()
    np.testing.assert_array_equal(got, V.reference_frames(path)[[0, 17, 33]])
    assert decoder.timeline(path).reordered
