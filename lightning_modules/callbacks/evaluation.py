"""Evaluation callbacks: result files, predictions, confusion analysis, accuracy vs clips,
reversed-frame-order test. Every one reads the recognizer's gathered, de-duplicated per-video
results (:meth:`VideoRecognizer.collect_test_results`), so each video counts once under DDP.

YAML (``trainer.callbacks``)::

    - class_path: lightning_modules.callbacks.ConfusionAnalysis
      init_args: {top_pairs: 10, baseline: runs/baseline/analysis/test_predictions.pt}
    - class_path: lightning_modules.callbacks.AccuracyVsClips
    - class_path: lightning_modules.callbacks.ReversedTimeEvaluation
    - class_path: lightning_modules.callbacks.TestPredictionsWriter
    - class_path: lightning_modules.callbacks.VideoPredictionWriter   # for `cli.py predict`
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter
from pytorch_lightning.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor

from datamodules.predict import relative_path
from lightning_modules.analysis.confusion import (
    ClassGroups,
    compare_confusions,
    compare_group_accuracy,
    confusion_matrix,
    load_class_groups,
    most_confused_pairs,
    per_class_accuracy,
    per_group_accuracy,
)
from lightning_modules.analysis.figures import (
    accuracy_vs_clips_figure,
    compare_confusion_figure,
    confusion_figure,
)
from lightning_modules.analysis.predictions import load_predictions, save_predictions
from lightning_modules.analysis.report import AnalysisReporter, write_table
from lightning_modules.evaluation import (
    ResultAccumulator,
    VideoResults,
    accuracy_vs_clips,
    average_views,
)
from lightning_modules.metrics import score, video_metric_names


# ---- helpers ---------------------------------------------------------------------------------
def class_names_of(trainer: pl.Trainer, pl_module: pl.LightningModule, k: int) -> list[str]:
    """The run's class names: the module's (linked from the data), the datamodule's, or ids."""
    names = getattr(pl_module, "class_names", None)
    if not names:
        names = getattr(getattr(trainer, "datamodule", None), "classes", None)
    return list(names) if names and len(names) == k else [str(i) for i in range(k)]


def records_of(trainer: pl.Trainer, stage: str = "test") -> list[Any] | None:
    """The evaluated split's ``VideoRecord`` list (video ids), if the loader's dataset has one."""
    loaders = trainer.predict_dataloaders if stage == "predict" else trainer.test_dataloaders
    loader = loaders[0] if isinstance(loaders, Sequence) else loaders
    dataset = getattr(loader, "dataset", None)
    if dataset is None:
        datamodule = getattr(trainer, "datamodule", None)
        dataset = getattr(datamodule, "datasets", {}).get("test")
    return getattr(dataset, "records", None)


def video_root_of(trainer: pl.Trainer, stage: str = "test") -> str | None:
    """The folder the evaluated videos' relative paths start from (the datamodule's
    ``video_root``), or ``None`` for data that does not say."""
    video_root = getattr(getattr(trainer, "datamodule", None), "video_root", None)
    return video_root(stage) if callable(video_root) else None


def video_ids_of(records: list[Any] | None, index: Tensor, root: str | None = None) -> list[str]:
    """Each video's path relative to ``root`` (two ``006.mp4`` in different class folders
    stay apart); without a root, the record's ``video_id``; without records, the index."""
    if records is None:
        return [str(i) for i in index.tolist()]
    if root is not None:
        return [relative_path(records[i].path, root) for i in index.tolist()]
    return [getattr(records[i], "video_id", str(i)) for i in index.tolist()]


def _results(pl_module: pl.LightningModule) -> VideoResults:
    collect = getattr(pl_module, "collect_test_results", None)
    if collect is None:
        raise TypeError(f"{type(pl_module).__name__} has no collect_test_results(); the "
                        "evaluation callbacks need lightning_modules.VideoRecognizer")
    return collect()


# ---- result files ----------------------------------------------------------------------------
class TestPredictionsWriter(pl.Callback):
    """After ``test``, write the per-video probabilities of every branch and the test metrics.

    Files (global-zero rank): ``<dirpath>/<name>.pt`` (or ``.npz``, see
    :mod:`lightning_modules.analysis.predictions`) and ``<dirpath>/<name>_metrics.json``
    (``{"metrics": {...}, "num_videos": N}``) — the result files that ``cli.py analyze
    contribution`` / ``compare`` read.

    Args:
        dirpath: default: the run's analysis folder (:class:`AnalysisReporter`).
        name: file stem.
        format: ``"pt"`` or ``"npz"``.
    """

    __test__ = False  # its name starts with "Test": keep pytest from collecting it

    def __init__(self, dirpath: str | None = None, name: str = "test_predictions",
                 format: str = "pt") -> None:
        super().__init__()
        if format not in ("pt", "npz"):
            raise ValueError(f"format must be 'pt' or 'npz', got {format!r}")
        self.dirpath, self.name, self.format = dirpath, name, format
        self.path: Path | None = None
        self.metrics_path: Path | None = None

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # on_test_end runs after the module's on_test_epoch_end: metrics and results are final
        results = getattr(pl_module, "test_results", None)
        if results is None or not trainer.is_global_zero:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()
                   if k.startswith("test/")}
        directory = AnalysisReporter(trainer, self.dirpath).directory
        names = class_names_of(trainer, pl_module, results.video[results.final].shape[1])
        self.path = save_predictions(
            directory / f"{self.name}.{self.format}",
            video_ids=video_ids_of(records_of(trainer), results.index, video_root_of(trainer)),
            index=results.index,
            labels=results.label, class_names=names,
            probs={b: results.probabilities(b) for b in results.branches}, final=results.final,
            metrics=metrics)
        self.metrics_path = directory / f"{self.name}_metrics.json"
        self.metrics_path.write_text(json.dumps(
            {"metrics": metrics, "num_videos": len(results), "final_branch": results.final},
            indent=2, sort_keys=True))
        rank_zero_info(f"TestPredictionsWriter: {self.path} and {self.metrics_path}")


class VideoPredictionWriter(BasePredictionWriter):
    """``predict``: per-video probabilities of every branch → one ``.pt`` or ``.npz`` file.

    The recognizer gathers the epoch's rows from every rank, one per dataset index
    (:meth:`VideoRecognizer.collect_predict_results`); the global-zero rank writes ``output``
    with video ids and class names (layout in :mod:`lightning_modules.analysis.predictions`).
    Works whether or not the trainer returns predictions.

    Args:
        output: file to write (suffix ``.pt`` or ``.npz``); relative paths are taken from the
            run's analysis folder; default ``predictions.pt`` there.
    """

    def __init__(self, output: str = "predictions.pt") -> None:
        super().__init__(write_interval="epoch")
        if Path(output).suffix not in (".pt", ".npz"):
            raise ValueError(f"output must end in .pt or .npz, got {output!r}")
        self.output = output
        self.path: Path | None = None

    def write_on_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           predictions: Sequence[Any], batch_indices: Sequence[Any]) -> None:
        if not hasattr(pl_module, "collect_predict_results"):
            raise TypeError(f"{type(pl_module).__name__} has no collect_predict_results(); "
                            "VideoPredictionWriter needs lightning_modules.VideoRecognizer")
        results = _predictions_to_write(trainer, pl_module, type(self).__name__)
        if results is None:
            return
        output = _run_file(trainer, self.output)
        k = results.video[results.final].shape[1]
        self.path = save_predictions(
            output, video_ids=video_ids_of(records_of(trainer, "predict"), results.index,
                                           video_root_of(trainer, "predict")),
            index=results.index, labels=results.label,
            class_names=class_names_of(trainer, pl_module, k), probs=results.video,
            final=results.final)
        rank_zero_info(f"VideoPredictionWriter: {len(results)} videos written to {self.path}")


def _predictions_to_write(trainer: pl.Trainer, pl_module: pl.LightningModule,
                          writer: str) -> VideoResults | None:
    """The predict epoch's results gathered from every rank (a collective: every rank calls
    this); ``None`` except on the global-zero rank, or when there is nothing to write."""
    try:
        results = pl_module.collect_predict_results()
    except RuntimeError:
        rank_zero_warn(f"{writer}: no predictions to write")
        return None
    return results if trainer.is_global_zero else None


def _run_file(trainer: pl.Trainer, output: str) -> Path:
    """``output``, a relative path taken from the run's analysis folder."""
    path = Path(output)
    return path if path.is_absolute() else AnalysisReporter(trainer).directory / path


def prediction_rows(results: VideoResults, video_ids: Sequence[str], class_names: Sequence[str],
                    top_k: int = 5) -> tuple[list[str], list[list[Any]]]:
    """``(columns, rows)`` of a predictions table: one row per video with its path, the true
    class (empty when unlabelled), the final branch's ``top_k`` classes with probabilities,
    and every branch's top-1 class and probability."""
    k = min(top_k, len(class_names))
    columns = ["path", "true_class"]
    columns += [c for i in range(1, k + 1) for c in (f"class_{i}", f"prob_{i}")]
    columns += [c for b in results.branches for c in (f"top1_{b}", f"prob_top1_{b}")]
    final = results.probabilities()
    top_probs, top_ids = final.topk(k, dim=-1)
    best = {b: results.probabilities(b).max(dim=-1) for b in results.branches}
    rows = []
    for n, (video, label) in enumerate(zip(video_ids, results.label.tolist(), strict=True)):
        row: list[Any] = [video, class_names[label] if label >= 0 else ""]
        for p, c in zip(top_probs[n].tolist(), top_ids[n].tolist(), strict=True):
            row += [class_names[c], p]
        for branch in results.branches:
            row += [class_names[int(best[branch].indices[n])], float(best[branch].values[n])]
        rows.append(row)
    return columns, rows


class PredictionCSVWriter(BasePredictionWriter):
    """``predict``: one CSV row per video — its path relative to the data root, the top-5
    classes with probabilities, every branch's top-1 (:func:`prediction_rows`).

    ``cli.py predict`` always has one (``--prediction_csv.output=…``; ``null`` turns it off),
    so predicting new videos writes and says where without configuring anything.

    Args:
        output: CSV file; a relative path is taken from the run's analysis folder.
        top_k: classes listed per video.
    """

    def __init__(self, output: str | None = "predictions.csv", top_k: int = 5) -> None:
        super().__init__(write_interval="epoch")
        self.output, self.top_k = output, top_k
        self.path: Path | None = None

    def write_on_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           predictions: Sequence[Any], batch_indices: Sequence[Any]) -> None:
        if self.output is None or not hasattr(pl_module, "collect_predict_results"):
            return
        results = _predictions_to_write(trainer, pl_module, type(self).__name__)
        if results is None:
            return
        output = _run_file(trainer, self.output)
        ids = video_ids_of(records_of(trainer, "predict"), results.index,
                           video_root_of(trainer, "predict"))
        names = class_names_of(trainer, pl_module, results.video[results.final].shape[1])
        columns, rows = prediction_rows(results, ids, names, self.top_k)
        self.path = write_table(output, columns, rows)
        root = video_root_of(trainer, "predict")
        rank_zero_info(f"predictions for {len(rows)} videos"
                       f"{f' (paths relative to {root})' if root else ''} written to {self.path}")


# ---- confusion analysis ----------------------------------------------------------------------
class ConfusionAnalysis(pl.Callback):
    """Most-confused pairs, per-class and per-group accuracy, and a baseline comparison.

    After the test epoch (dfb §5.2): the confusion matrix of the final branch (image), the
    ``top_pairs`` most-confused (true → predicted) pairs with counts (table, dfb Table 3),
    per-class accuracy (table) and per-group accuracy given a class→group map (table and
    ``test/group_acc1/<group>`` scalars). With ``baseline`` (a predictions file of another model
    on the same test set, e.g. the GAP baseline's ``test_predictions.pt``), also the pairs this
    model confuses less / more than the baseline with both counts (dfb Table 3), the per-group
    improvement (dfb Table 2, also as ``test/group_gain/<group>`` scalars) and both confusion
    matrices side by side (dfb Fig. 3).

    Args:
        top_pairs: pairs to list.
        symmetric: count ``a→b`` and ``b→a`` as one pair.
        class_groups: ``{group: [classes]}`` or ``{class: group}``, or a JSON/CSV file of it;
            default: the datamodule's ``class_groups`` when it has one (synthetic benchmark).
        baseline: predictions file (``.pt``/``.npz``) of the model to compare against.
        branch: branch to analyse (default: the head's final branch).
        log_group_scalars: log per-group accuracy as scalars too.
        dirpath: folder for PNG/CSV files (default: the run's analysis folder).

    After the test, ``matrix``, ``pairs``, ``class_accuracy``, ``group_accuracy`` and
    ``comparison`` hold the results.
    """

    def __init__(self, top_pairs: int = 10, symmetric: bool = False,
                 class_groups: dict[str, list[str]] | dict[str, str] | str | None = None,
                 baseline: str | None = None, branch: str | None = None,
                 log_group_scalars: bool = True, dirpath: str | None = None) -> None:
        super().__init__()
        self.top_pairs, self.symmetric, self.branch = top_pairs, symmetric, branch
        self.class_groups = class_groups
        self.baseline = baseline
        self.log_group_scalars = log_group_scalars
        self.dirpath = dirpath
        self.matrix: Tensor | None = None
        self.pairs: list = []
        self.class_accuracy: Tensor | None = None
        self.group_accuracy: dict[str, float] = {}
        self.comparison: dict[str, list] = {}

    def _groups(self, trainer: pl.Trainer) -> ClassGroups | None:
        if isinstance(self.class_groups, str):
            return load_class_groups(self.class_groups)
        if self.class_groups is not None:
            return self.class_groups
        return getattr(getattr(trainer, "datamodule", None), "class_groups", None)

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        results = _results(pl_module)  # collective: every rank
        branch = self.branch or results.final
        k = results.video[branch].shape[1]
        names = class_names_of(trainer, pl_module, k)
        self.matrix = confusion_matrix(results.predictions(branch), results.label, k)
        self.pairs = most_confused_pairs(self.matrix, names, self.top_pairs, self.symmetric)
        self.class_accuracy = per_class_accuracy(self.matrix)
        groups = self._groups(trainer)
        self.group_accuracy = per_group_accuracy(self.matrix, names, groups) if groups else {}
        if self.log_group_scalars:
            # same values on every rank (gathered results): the mean sync_dist takes is exact
            for group, value in self.group_accuracy.items():
                if value == value:  # NaN: a group without test videos
                    pl_module.log(f"test/group_acc1/{group}", value, sync_dist=True)
        baseline_matrix = self._baseline_matrix(results, names, k) if self.baseline else None
        if baseline_matrix is not None:
            self.comparison = compare_confusions(baseline_matrix, self.matrix, names,
                                                 self.top_pairs)
            if groups:
                self.comparison["groups"] = compare_group_accuracy(
                    baseline_matrix, self.matrix, names, groups)
                if self.log_group_scalars:
                    for group, _, _, gain in self.comparison["groups"]:
                        if gain == gain:  # NaN: a group without test videos
                            pl_module.log(f"test/group_gain/{group}", gain, sync_dist=True)
        if trainer.is_global_zero:
            self._report(trainer, names, baseline_matrix)

    def _baseline_matrix(self, results: VideoResults, names: list[str], k: int) -> Tensor:
        baseline = load_predictions(self.baseline)
        if list(baseline["class_names"]) != names:
            raise ValueError(f"baseline {self.baseline} has other classes than this model")
        # align on dataset index: both files come from the same test split
        position = {int(i): n for n, i in enumerate(baseline["index"].tolist())}
        missing = [int(i) for i in results.index.tolist() if int(i) not in position]
        if missing:
            raise ValueError(f"baseline {self.baseline} lacks {len(missing)} of this test's "
                             f"videos (dataset indices {missing[:5]}…)")
        rows = torch.tensor([position[int(i)] for i in results.index.tolist()], dtype=torch.long)
        base_probs = baseline["probs"][baseline["final"]][rows]
        return confusion_matrix(base_probs.argmax(-1), results.label.cpu(), k)

    def _report(self, trainer: pl.Trainer, names: list[str], baseline: Tensor | None) -> None:
        report = AnalysisReporter(trainer, self.dirpath)
        assert self.matrix is not None and self.class_accuracy is not None
        report.image("test/confusion_matrix", confusion_figure(self.matrix, names))
        report.table("test/most_confused_pairs", ["true", "predicted", "videos", "of", "rate"],
                     [[p.true, p.predicted, p.count, p.of, p.rate] for p in self.pairs])
        sizes = self.matrix.sum(1)
        report.table("test/per_class_accuracy", ["class", "accuracy", "videos"],
                     [[n, float(a), int(s)] for n, a, s in
                      zip(names, self.class_accuracy.tolist(), sizes.tolist(), strict=True)])
        if self.group_accuracy:
            report.table("test/per_group_accuracy", ["group", "accuracy"],
                         [[g, a] for g, a in self.group_accuracy.items()])
        if baseline is not None:
            for kind in ("improved", "worsened"):
                report.table(f"test/confusion_{kind}_vs_baseline",
                             ["true", "predicted", "baseline", "model", "change"],
                             [[r.true, r.predicted, r.baseline, r.model, r.change]
                              for r in self.comparison[kind]])
            if "groups" in self.comparison:
                report.table("test/group_accuracy_vs_baseline",
                             ["group", "baseline", "model", "improvement"],
                             [list(r) for r in self.comparison["groups"]])
            report.image("test/confusion_vs_baseline",
                         compare_confusion_figure(baseline, self.matrix, names))
        lines = [f"  {p.true} → {p.predicted}: {p.count}/{p.of}" for p in self.pairs[:5]]
        rank_zero_info("ConfusionAnalysis: most-confused pairs\n" + "\n".join(lines)
                       + (f"\n  files in {report.directory}" if report.written else ""))


# ---- accuracy vs number of clips -------------------------------------------------------------
class AccuracyVsClips(pl.Callback):
    """Video accuracy with 1, 2, … of the test clips, from the one pass over all views
    (unified-analysis Fig. 8, left).

    For ``k`` clips it averages all crops of ``k`` clips spread evenly over the video (see
    :func:`~lightning_modules.evaluation.subset_clip_indices`). Logs
    ``test/acc1_video_clips<k>`` and ``test/acc5_video_clips<k>``, a line plot and a table.

    Args:
        crops: spatial views per clip; default: the datamodule's ``test_views_per_clip`` (else
            ``test_crops``, else 1).
        branch: default: the head's final branch.
        dirpath: folder for PNG/CSV files.
    """

    def __init__(self, crops: int | None = None, branch: str | None = None,
                 dirpath: str | None = None) -> None:
        super().__init__()
        self.crops, self.branch, self.dirpath = crops, branch, dirpath
        self.top1: dict[int, float] = {}
        self.top5: dict[int, float] = {}

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "test":
            pl_module.keep_view_logits = True  # the [N, V, K] logits are needed here only

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        results = _results(pl_module)
        branch = self.branch or results.final
        if branch not in results.views:
            rank_zero_warn("AccuracyVsClips: no per-view logits kept; skipped")
            return
        datamodule = getattr(trainer, "datamodule", None)
        crops = self.crops or int(getattr(datamodule, "test_views_per_clip",
                                          getattr(datamodule, "test_crops", 1)))
        views, label = results.views[branch], results.label
        how = getattr(pl_module, "test_average", "prob")
        per_k = accuracy_vs_clips(views, label, crops, how)
        self.top1 = {k: m["acc1"] for k, m in per_k.items() if m}
        self.top5 = {k: m["acc5"] for k, m in per_k.items() if m}
        if not self.top1:  # an unlabelled test split
            return
        for k in self.top1:
            pl_module.log(f"test/acc1_video_clips{k}", self.top1[k], sync_dist=True)
            pl_module.log(f"test/acc5_video_clips{k}", self.top5[k], sync_dist=True)
        if trainer.is_global_zero:
            report = AnalysisReporter(trainer, self.dirpath)
            report.image("test/accuracy_vs_clips", accuracy_vs_clips_figure(
                {f"{branch} ({crops} crop{'s' if crops > 1 else ''})": self.top1}))
            report.table("test/accuracy_vs_clips", ["clips", "views", "acc1", "acc5"],
                         [[k, k * crops, self.top1[k], self.top5[k]] for k in self.top1])


# ---- reversed frame order --------------------------------------------------------------------
class ReversedTimeEvaluation(pl.Callback):
    """Test again with every clip's frames in reversed order (s3d Table 1). Logs
    ``test/acc1_video_reversed``, ``test/acc5_video_reversed`` and
    ``test/mean_class_acc_reversed`` (final branch), beside the normal ``test/acc1_video``.

    The test views are deterministic, so a reversed view is exactly the decoded view flipped
    along time: each test batch's views are flipped on the device and run once more, with no
    second decoding pass over the test set. The reversed scores are collected, gathered and
    scored like the normal ones (:class:`ResultAccumulator`, :func:`score`). A 2D model with
    average consensus scores the same both ways; a model that uses the arrow of time does not.
    Not defined for the optical-flow stream (``video_backend="flow"``: a reversed video's flow
    is not its flow frames in reversed order, every vector is negated too): skipped there with
    a warning.
    """

    def __init__(self) -> None:
        super().__init__()
        self.metrics: dict[str, float] = {}
        self._rows = ResultAccumulator()
        self._skip = False

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._rows.reset()
        self._skip = bool(getattr(trainer.datamodule, "flow", False))
        if self._skip:
            rank_zero_warn("ReversedTimeEvaluation is skipped on optical flow (a reversed "
                           "video's flow is not its flow frames in reversed order)")

    @torch.no_grad()
    def on_test_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                          outputs: Any, batch: Any, batch_idx: int,
                          dataloader_idx: int = 0) -> None:
        # flow, or a batch whose videos were all unreadable
        if self._skip or batch["label"].numel() == 0:
            return
        final = pl_module.final_branch
        logits = pl_module.view_logits(batch["video"].flip(-3))  # [B, V, C, T, H, W]: T is -3
        self._rows.append(batch["index"], label=batch["label"],
                          video=average_views(logits[final], pl_module.test_average))

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._skip:
            return
        rows = self._rows.gather(pl_module)  # collective: every rank
        names = video_metric_names("_reversed")
        # the same definition as test/acc1_video and test/mean_class_acc, so the two compare
        self.metrics = {names[k]: v for k, v in score(rows["video"], rows["label"]).items()}
        self._rows.reset()
        if self.metrics:  # an unlabelled test split has nothing to score
            pl_module.log_dict(self.metrics, sync_dist=True)


__all__ = [
    "AccuracyVsClips",
    "ConfusionAnalysis",
    "PredictionCSVWriter",
    "ReversedTimeEvaluation",
    "TestPredictionsWriter",
    "VideoPredictionWriter",
    "class_names_of",
    "prediction_rows",
    "records_of",
    "video_ids_of",
    "video_root_of",
]
