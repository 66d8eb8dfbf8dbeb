"""Late fusion of two streams' prediction files (`cli.py analyze fuse`)."""

from __future__ import annotations

import csv

import pytest
import torch

from lightning_modules.analysis import load_predictions, save_predictions
from lightning_modules.analysis.commands import main as analyze
from lightning_modules.analysis.fusion import align, fuse

NAMES = ["open", "close", "push"]
RGB = {"a": [0.6, 0.3, 0.1], "b": [0.2, 0.5, 0.3], "c": [0.1, 0.2, 0.7], "d": [0.5, 0.4, 0.1]}
FLOW = {"a": [0.2, 0.7, 0.1], "b": [0.1, 0.1, 0.8], "c": [0.3, 0.3, 0.4], "d": [0.1, 0.8, 0.1]}
LABELS = {"a": 1, "b": 1, "c": 2, "d": 1}


def _write(path, probs: dict[str, list[float]], order: list[str]) -> None:
    save_predictions(path, video_ids=order, index=torch.arange(len(order)),
                     labels=torch.tensor([LABELS[v] for v in order]), class_names=NAMES,
                     probs={"avg": torch.tensor([probs[v] for v in order])}, final="avg")


def _csv(path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_fusion_is_the_weighted_mean_by_video(tmp_path, capsys) -> None:
    _write(tmp_path / "rgb.pt", RGB, ["a", "b", "c", "d"])
    _write(tmp_path / "flow.npz", FLOW, ["d", "c", "b", "a"])  # another order: matched by id
    assert analyze(["fuse", str(tmp_path / "rgb.pt"), str(tmp_path / "flow.npz"),
                    "--weights", "1", "1.5", "--names", "rgb", "flow",
                    "--out", str(tmp_path / "out"), "--save", str(tmp_path / "fused.pt")]) == 0
    fused = load_predictions(tmp_path / "fused.pt")
    assert fused["video_ids"] == ["a", "b", "c", "d"] and fused["final"] == "fused"
    by_hand = torch.tensor([[(r + 1.5 * f) / 2.5 for r, f in zip(RGB[v], FLOW[v], strict=True)]
                            for v in "abcd"])
    assert torch.allclose(fused["probs"]["fused"], by_hand)
    # rgb: a→open ✗, b→close ✓, c→push ✓, d→open ✗ = 50 %; flow: a ✓, b ✗ (push), c ✓, d ✓
    out = capsys.readouterr().out
    assert "rgb" in out and " 50.00" in out and " 75.00" in out
    rows = {r["stream"]: r for r in _csv(tmp_path / "out" / "fusion_accuracy.csv")}
    # fused: a (0.32, 0.54, 0.10) ✓, b (0.14, 0.26, 0.60) ✗, c ✓, d (0.26, 0.64, 0.10) ✓
    assert float(rows["fused"]["acc1"]) == pytest.approx(0.75)
    assert float(rows["rgb"]["acc1"]) == pytest.approx(0.5)
    assert float(rows["flow"]["acc5"]) == pytest.approx(1.0)
    per_class = {r["class"]: r for r in _csv(tmp_path / "out" / "fusion_per_class_accuracy.csv")}
    assert float(per_class["close"]["fused"]) == pytest.approx(2 / 3)  # a, d of a, b, d
    assert per_class["open"]["fused"] == ""  # no video of that class: undefined, not 0
    # the fused file is a predictions file like any other
    assert analyze(["confusion", str(tmp_path / "fused.pt"), "--out", str(tmp_path / "c")]) == 0


def test_equal_weights_by_default_and_mismatches_named(tmp_path) -> None:
    _write(tmp_path / "rgb.pt", RGB, ["a", "b", "c", "d"])
    _write(tmp_path / "flow.pt", FLOW, ["a", "b", "c", "d"])
    streams = [load_predictions(tmp_path / "rgb.pt"), load_predictions(tmp_path / "flow.pt")]
    fused = fuse(streams)
    assert torch.allclose(fused["probs"]["fused"][0], torch.tensor([0.4, 0.5, 0.1]))
    _write(tmp_path / "short.pt", FLOW, ["a", "b"])
    with pytest.raises(SystemExit, match="lacks 2 of the 4 videos"):
        analyze(["fuse", str(tmp_path / "rgb.pt"), str(tmp_path / "short.pt")])
    with pytest.raises(ValueError, match="2 weights for 3 streams"):
        fuse(streams + streams[:1], [1, 1])


def test_streams_match_by_path_without_the_video_extension(tmp_path) -> None:
    """An RGB run names ``<class>/<video>.avi``, a flow run the flow folder ``<class>/<video>``."""
    rgb_ids = {"a": "x/a.avi", "b": "x/b.AVI", "c": "y.v2/c.mp4", "d": "y.v2/d"}  # d: frames
    flow_ids = {"a": "x/a", "b": "x/b", "c": "y.v2/c", "d": "y.v2/d"}
    streams = (("rgb", RGB, rgb_ids, "abcd"), ("flow", FLOW, flow_ids, "dcba"))
    for name, probs, ids, order in streams:
        save_predictions(tmp_path / f"{name}.pt", video_ids=[ids[v] for v in order],
                         index=torch.arange(4), labels=torch.tensor([LABELS[v] for v in order]),
                         class_names=NAMES, probs={"avg": torch.tensor([probs[v] for v in order])},
                         final="avg")
    streams = [load_predictions(tmp_path / f"{s}.pt") for s in ("rgb", "flow")]
    rgb_order, flow_order = align(streams, ["rgb", "flow"])
    assert rgb_order.tolist() == [0, 1, 2, 3] and flow_order.tolist() == [3, 2, 1, 0]
