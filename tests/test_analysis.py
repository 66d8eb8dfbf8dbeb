"""The analyses on small known inputs: confusion pairs, per-class/group accuracy, comparisons,
Φ/Ψ on the unified-analysis paper's own Table 5 numbers, accuracy vs clips, prediction files,
figures and the ``cli.py analyze`` subcommands."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lightning_modules.analysis import (
    average_contribution,
    compare_confusions,
    compare_group_accuracy,
    confusion_matrix,
    contribution_from_files,
    group_confusion,
    load_accuracy,
    load_class_groups,
    load_predictions,
    most_confused_pairs,
    normalize_groups,
    per_class_accuracy,
    per_group_accuracy,
    save_predictions,
    spatial_temporal_contribution,
)
from lightning_modules.analysis.commands import main as analyze
from lightning_modules.analysis.figures import (
    FramePanel,
    accuracy_vs_clips_figure,
    compare_confusion_figure,
    confusion_figure,
    panel_grid,
    similarity_figure,
)
from lightning_modules.callbacks.visualization import filter_box
from lightning_modules.evaluation import accuracy_vs_clips, subset_clip_indices

NAMES = ["a", "b", "c", "d"]


def known_matrix() -> torch.Tensor:
    """Rows = true class. b→c is the most confused pair (5), then a→b (2)."""
    return torch.tensor([[8, 2, 0, 0],
                         [0, 4, 5, 1],
                         [0, 1, 9, 0],
                         [0, 0, 0, 0]])


def test_confusion_matrix_counts_true_rows_predicted_columns() -> None:
    labels = torch.tensor([0, 0, 1, 1, 1, 2])
    predictions = torch.tensor([0, 1, 2, 2, 1, 2])
    matrix = confusion_matrix(predictions, labels, 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 2], [0, 0, 1]]


def test_most_confused_pairs_known_top_pair() -> None:
    pairs = most_confused_pairs(known_matrix(), NAMES, top=3)
    assert [(p.true, p.predicted, p.count, p.of) for p in pairs] == [
        ("b", "c", 5, 10), ("a", "b", 2, 10), ("b", "d", 1, 10)]
    assert pairs[0].rate == pytest.approx(0.5)
    # unordered: b↔c = 5 + 1
    (top,) = most_confused_pairs(known_matrix(), NAMES, top=1, symmetric=True)
    assert (top.true, top.predicted, top.count) == ("b", "c", 6)
    # no off-diagonal mass → no pairs
    assert most_confused_pairs(torch.eye(3, dtype=torch.long) * 4, NAMES[:3]) == []


def test_per_class_and_per_group_accuracy() -> None:
    accuracy = per_class_accuracy(known_matrix())
    torch.testing.assert_close(accuracy[:3], torch.tensor([0.8, 0.4, 0.9]))
    assert torch.isnan(accuracy[3])  # no test videos of class d
    by_group = {"ab": ["a", "b"], "cd": ["c", "d"]}
    by_class = {"a": "ab", "b": "ab", "c": "cd", "d": "cd"}
    for groups in (by_group, by_class):
        result = per_group_accuracy(known_matrix(), NAMES, groups)
        assert result == pytest.approx({"ab": 0.6, "cd": 0.9})  # d has no videos: left out
    with pytest.raises(KeyError, match="'z'"):
        per_group_accuracy(known_matrix(), NAMES, {"g": ["a", "z"]})
    assert group_confusion(known_matrix(), [1, 2]).tolist() == [[4, 5], [1, 9]]


def test_class_group_files(tmp_path) -> None:
    (tmp_path / "g.json").write_text(json.dumps({"a": "ab", "b": "ab", "c": "cd"}))
    (tmp_path / "g.csv").write_text("class,group\na,ab\nb,ab\nc,cd\n")
    for name in ("g.json", "g.csv"):
        assert load_class_groups(tmp_path / name) == {"ab": ["a", "b"], "cd": ["c"]}
    with pytest.raises(FileNotFoundError, match="nope.json"):
        load_class_groups(tmp_path / "nope.json")
    # Kinetics' parent-class lists spell the annotation CSV's classes their own way
    kinetics = ["riding a bike", "riding_unicycle", "Playing Guitar"]
    parents = {"cycling": ["Riding_a_bike", "riding unicycle"], "music": ['"playing guitar"']}
    assert normalize_groups(parents, kinetics) == {"cycling": [0, 1], "music": [2]}


def test_compare_two_models_confusions() -> None:
    baseline = known_matrix()
    model = torch.tensor([[9, 1, 0, 0],
                          [0, 8, 1, 1],
                          [0, 3, 7, 0],
                          [0, 0, 0, 0]])
    comparison = compare_confusions(baseline, model, NAMES)
    improved = [(r.true, r.predicted, r.baseline, r.model) for r in comparison["improved"]]
    assert improved == [("b", "c", 5, 1), ("a", "b", 2, 1)]
    worsened = [(r.true, r.predicted, r.baseline, r.model) for r in comparison["worsened"]]
    assert worsened == [("c", "b", 1, 3)]
    rows = compare_group_accuracy(baseline, model, NAMES, {"ab": ["a", "b"], "c": ["c"]})
    assert rows[0][0] == "ab" and rows[0][3] == pytest.approx(0.25)  # 0.6 → 0.85
    assert rows[1][3] == pytest.approx(-0.2)


def test_phi_psi_on_the_papers_table5() -> None:
    """unified-analysis eq. 1 on Table 5 (Mini-SSV2, ResNet50, f=8): TSN 33.9, I3D 62.6."""
    phi, psi = spatial_temporal_contribution(62.6, 33.9)
    assert phi == pytest.approx(33.9 / 62.6) and round(phi, 3) == 0.542
    assert psi == pytest.approx(28.7 / 66.1) and round(psi, 3) == 0.434
    # Mini-Kinetics, InceptionV1, f=8: I3D 68.1 is below TSN 70.4 → Φ = 1, Ψ < 0 (harmful)
    phi, psi = spatial_temporal_contribution(68.1, 70.4)
    assert phi == 1.0 and psi == pytest.approx(-2.3 / 29.6)
    # fractions are read as such
    assert spatial_temporal_contribution(0.626, 0.339) == pytest.approx((33.9 / 62.6,
                                                                         28.7 / 66.1))
    # Table 7's averages: the mean over (backbone, frames) pairs, here ResNet50 TAM f=8, f=16
    phi_bar, psi_bar = average_contribution([(65.4, 33.9), (68.6, 35.3)])
    assert phi_bar == pytest.approx((33.9 / 65.4 + 35.3 / 68.6) / 2)
    assert psi_bar == pytest.approx((31.5 / 66.1 + 33.3 / 64.7) / 2)
    with pytest.raises(ValueError, match="accuracy"):
        spatial_temporal_contribution(120.0, 30.0)


def test_phi_psi_from_two_result_files(tmp_path, capsys) -> None:
    model, tsn = tmp_path / "i3d_metrics.json", tmp_path / "tsn" / "metrics.csv"
    model.write_text(json.dumps({"metrics": {"test/acc1_video": 0.626}}))
    tsn.parent.mkdir()
    tsn.write_text("epoch,step,test/acc1_video,val/acc1\n0,10,,0.2\n0,10,0.339,\n")
    assert load_accuracy(tsn) == pytest.approx(33.9)
    result = contribution_from_files(model, tsn)
    assert result["phi"] == pytest.approx(33.9 / 62.6)
    assert result["psi"] == pytest.approx(28.7 / 66.1)
    out = tmp_path / "phi.json"
    assert analyze(["contribution", "--model", str(model), "--baseline", str(tsn),
                    "--json", str(out)]) == 0
    assert "phi=0.542 psi=0.434" in capsys.readouterr().out
    assert json.loads(out.read_text())["pairs"][0]["S_a"] == pytest.approx(62.6)
    with pytest.raises(KeyError, match="test/acc5"):
        load_accuracy(model, "test/acc5")


def test_accuracy_vs_clips_from_one_pass() -> None:
    assert subset_clip_indices(10, 1) == [5]
    assert subset_clip_indices(10, 2) == [2, 7]
    assert subset_clip_indices(4, 4) == [0, 1, 2, 3]
    # 1 video, 3 clips × 2 crops; only the middle clip (views 2, 3) votes for the true class 1
    logits = torch.zeros(1, 6, 2)
    logits[0, :, 0] = 1.0
    logits[0, 2:4] = torch.tensor([0.0, 5.0])
    result = accuracy_vs_clips(logits, torch.tensor([1]), crops=2)
    assert result[1]["acc1"] == 1.0  # the middle clip alone
    assert result[2]["acc1"] == 0.0  # clips 0 and 2 (evenly spread), both wrong
    assert result[3]["acc1"] == 1.0  # all: mean of softmax favours class 1
    assert result[2]["acc5"] == 1.0  # two classes: top-2 always holds the true one
    with pytest.raises(ValueError, match="crops"):
        accuracy_vs_clips(logits, torch.tensor([1]), crops=4)


@pytest.mark.parametrize("suffix", [".pt", ".npz"])
def test_predictions_file_round_trip(tmp_path, suffix) -> None:
    probs = {"avg": torch.rand(3, 4).softmax(1), "comb": torch.rand(3, 4).softmax(1)}
    path = save_predictions(tmp_path / f"p{suffix}", video_ids=["x", "y", "z"],
                            index=torch.tensor([0, 1, 2]), labels=torch.tensor([1, 0, 3]),
                            class_names=NAMES, probs=probs, final="comb",
                            metrics={"test/acc1_video": 0.5})
    loaded = load_predictions(path)
    assert loaded["video_ids"] == ["x", "y", "z"] and loaded["class_names"] == NAMES
    assert loaded["final"] == "comb" and loaded["metrics"] == {"test/acc1_video": 0.5}
    for branch in probs:
        torch.testing.assert_close(loaded["probs"][branch], probs[branch])
    expected = float((probs["comb"].argmax(1) == torch.tensor([1, 0, 3])).float().mean()) * 100
    assert load_accuracy(path) == pytest.approx(expected)
    with pytest.raises(ValueError, match="shape|expected"):
        save_predictions(tmp_path / "bad.pt", video_ids=["x"], index=torch.tensor([0]),
                         labels=torch.tensor([0]), class_names=NAMES,
                         probs={"avg": torch.rand(2, 4)}, final="avg")


def nonblank(image: np.ndarray, min_side: int = 100) -> None:
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert min(image.shape[:2]) >= min_side
    assert image.std() > 5


def test_figures_are_images() -> None:
    nonblank(confusion_figure(known_matrix(), NAMES))
    nonblank(confusion_figure(torch.randint(0, 5, (50, 50))))  # many classes: no cell labels
    nonblank(compare_confusion_figure(known_matrix(), known_matrix().T, NAMES))
    nonblank(accuracy_vs_clips_figure({"U": {1: 0.5, 2: 0.6}, "D": {1: 0.3, 2: 0.55}}))
    similarity = torch.rand(5, 5)
    nonblank(similarity_figure({"without": similarity, "with": similarity / 2}, NAMES + ["e"]))
    frame = (np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)
    nonblank(panel_grid([[FramePanel(frame, "f0", box=(4, 4, 20, 20)),
                          FramePanel(frame, "f1", heat=np.random.rand(32, 32))]], ["row"]))


def test_filter_box_maps_feature_cells_to_pixels() -> None:
    # a 2×4×4 grid over an 8×32×32 clip: cell (1, 2, 3) → frame 6, centre (28, 20), cells 8 px
    frame, box = filter_box((1, 2, 3), (2, 4, 4), (8, 32, 32), box_scale=1.0)
    assert frame == 6
    assert box == (24.0, 16.0, 32.0, 24.0)
    _, box = filter_box((0, 0, 0), (2, 4, 4), (8, 32, 32), box_scale=2.0)
    assert box == (0.0, 0.0, 12.0, 12.0)  # clipped at the border


def _predictions(path, labels, predicted, ids) -> None:
    probs = torch.nn.functional.one_hot(torch.tensor(predicted), 4).float()
    save_predictions(path, video_ids=ids, index=torch.arange(len(ids)),
                     labels=torch.tensor(labels), class_names=NAMES, probs={"avg": probs},
                     final="avg")


def test_analyze_confusion_and_compare_commands(tmp_path, capsys) -> None:
    labels = [0, 0, 1, 1, 1, 2]
    ids = [f"v{i}" for i in range(6)]
    _predictions(tmp_path / "base.pt", labels, [0, 1, 2, 2, 1, 2], ids)
    # the model's file lists the videos in another order: aligned by video id
    order = [5, 4, 3, 2, 1, 0]
    _predictions(tmp_path / "model.npz", [labels[i] for i in order],
                 [[0, 0, 1, 2, 1, 2][i] for i in order], [ids[i] for i in order])
    (tmp_path / "groups.json").write_text(json.dumps({"ab": ["a", "b"], "c": ["c"]}))
    assert analyze(["confusion", str(tmp_path / "base.pt"), "--out", str(tmp_path / "c"),
                    "--groups", str(tmp_path / "groups.json")]) == 0
    assert "b -> c: 2/3" in capsys.readouterr().out
    nonblank(np.asarray(__import__("PIL.Image").Image.open(tmp_path / "c" / "confusion.png")
                        .convert("RGB")))
    assert analyze(["compare", str(tmp_path / "base.pt"), str(tmp_path / "model.npz"),
                    "--out", str(tmp_path / "cmp"), "--groups",
                    str(tmp_path / "groups.json")]) == 0
    out = capsys.readouterr().out
    assert "a -> b: 1 / 0" in out and "b -> c: 2 / 1" in out
    assert (tmp_path / "cmp" / "confusion_compare.png").stat().st_size > 1000
    assert "ab" in (tmp_path / "cmp" / "group_accuracy.csv").read_text()
    # dfb Table 2 from `analyze confusion`: per-group accuracy and its gain over a baseline.
    # group ab: baseline a 1/2, b 1/3 → 0.417; model a 2/2, b 2/3 → 0.833; c 1/1 both
    assert analyze(["confusion", str(tmp_path / "model.npz"), "--out", str(tmp_path / "g"),
                    "--groups", str(tmp_path / "groups.json"),
                    "--baseline", str(tmp_path / "base.pt")]) == 0
    out = capsys.readouterr().out
    assert "ab: 41.7 -> 83.3 (+41.7)" in out and "c: 100.0 -> 100.0 (+0.0)" in out
    rows = (tmp_path / "g" / "group_accuracy.csv").read_text().splitlines()
    assert rows[0] == "group,baseline,model,improvement" and rows[1].startswith("ab,")
    with pytest.raises(SystemExit, match="--groups"):
        analyze(["confusion", str(tmp_path / "model.npz"), "--baseline",
                 str(tmp_path / "base.pt"), "--out", str(tmp_path / "refused")])
    assert not (tmp_path / "refused").exists()  # refused before writing anything
    # files of other videos are refused in one line naming what is missing
    _predictions(tmp_path / "other.pt", labels, [0, 1, 2, 2, 1, 2], [f"w{i}" for i in range(6)])
    with pytest.raises(SystemExit, match="the baseline lacks 6 of the 6 videos"):
        analyze(["compare", str(tmp_path / "other.pt"), str(tmp_path / "model.npz"),
                 "--out", str(tmp_path / "cmp2")])


def test_analyze_weight_similarity_from_checkpoints(tmp_path, capsys) -> None:
    torch.manual_seed(0)
    shared = torch.randn(1, 16)
    clustered = shared + 0.1 * torch.randn(6, 16)  # similar masks: high S^w
    spread = torch.linalg.qr(torch.randn(16, 6)).Q.T  # orthogonal masks: S^w ≈ 0 off-diagonal
    for name, weight in (("without", clustered), ("with", spread)):
        state = {"head.mask_conv.weight": weight.view(6, 16, 1, 1, 1)}
        torch.save({"state_dict": state}, tmp_path / f"{name}.ckpt")
    out = tmp_path / "fig7.png"
    assert analyze(["weight-similarity", "--without", str(tmp_path / "without.ckpt"),
                    "--with", str(tmp_path / "with.ckpt"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    values = [float(line.rsplit("=", 1)[1]) for line in printed.splitlines() if "S^w" in line]
    assert values[0] > 0.8 and values[1] < 0.2
    assert out.stat().st_size > 1000
