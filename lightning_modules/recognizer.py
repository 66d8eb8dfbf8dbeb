"""The LightningModule that joins a backbone and a head: training, validation, multi-view test."""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from einops import rearrange
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable
from pytorch_lightning.core.mixins.hparams_mixin import _given_hyperparameters
from pytorch_lightning.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor, nn
from torchmetrics import MeanMetric, SumMetric

from datamodules.normalize import IMAGENET_MEAN, IMAGENET_STD, Normalization
from lightning_modules.cli_errors import plain_values
from lightning_modules.evaluation import (
    Average,
    ResultAccumulator,
    VideoResults,
    average_views,
    gather_variable,
)
from lightning_modules.finetuning import (
    BatchNormMode,
    backbone_param_groups,
    freeze_stages,
    frozen_bn_layers,
    load_init_weights,
    scale_group_lrs,
)
from lightning_modules.metrics import classification_metrics, score, video_metric_names
from models.heads import GAPHead, Head, HeadOutput

HeadFactory = Callable[[nn.Module, int], Head]

# With one of the project's datamodules, Lightning uses the datamodule's
# ``on_after_batch_transfer`` (device-side normalisation, datamodules.normalize) and warns that
# the module overrides it too; the module's hook is for data that comes without one.
warnings.filterwarnings("ignore", message=r"You have overridden `on_after_batch_transfer`")
# A DDP rank whose validation videos were all unreadable never updates its metrics, and still
# computes them at epoch end, to join the other ranks' reduction: its states (zeros) are right.
warnings.filterwarnings("ignore", message=r"The ``compute`` method of metric Multiclass")


class VideoRecognizer(pl.LightningModule):
    """Backbone + head, both injected (YAML ``class_path``), trained on multi-branch losses.

    Args:
        backbone: a video backbone returning the stage dict (``models``).
        head: a head class or partial (``Head(backbone, num_classes, **options)``): in YAML a
            ``class_path`` with ``init_args`` lacking ``backbone`` and ``num_classes``.
        num_classes: linked from the datamodule by the CLI.
        optimizer / lr_scheduler: callables taking parameters / optimizer (LightningCLI style).
        mean / std: per-channel normalisation of input that reaches the model as ``uint8``
            (the datamodules normalise on the device already, ``normalize=``; float input is
            used as it comes, so nothing is normalised twice).
        test_average: how views of a test video are combined (``prob``, ``score`` or ``max``).
        views_per_forward: cap on clips per forward pass in test (memory); ``None``: all at once.
        class_names: for logging and predictions; linked from the datamodule by the CLI.
        init_weights: start from other weights (a Finegrain ``.ckpt``, a whole-model or backbone
            state dict, a torchvision video state dict), loaded in ``setup`` (so ``--ckpt_path``
            still wins): every tensor that fits is kept, classifiers of another class count
            start fresh (:func:`~lightning_modules.finetuning.load_init_weights`).
        backbone_lr_mult: the backbone's learning rate is the optimiser's times this.
        batch_norm: ``"train"``; ``"partial"`` (TSN §3.2: statistics frozen in every BN layer
            of the backbone but the first); ``"frozen"`` (all of them).
        frozen_stages: backbone stages trained not at all (no gradient, BN statistics fixed).

    Logged: ``train/loss`` and ``train/acc1`` (every step, in the progress bar),
    ``train/loss_<branch>`` (on the steps Lightning writes to the loggers, every
    ``log_every_n_steps``), ``train/skipped_videos`` (per epoch, over all
    ranks: training samples whose unreadable video was replaced by the next readable one);
    ``val/loss``, ``val/acc1``, ``val/acc5``, ``val/mean_class_acc`` (final branch:
    ``head.final_branch``), ``val/acc1_<branch>``, ``val/acc5_<branch>``,
    ``val/mean_class_acc_<branch>`` (:func:`~lightning_modules.metrics.classification_metrics`);
    ``val/skipped_videos``; ``test/acc1_video``, ``test/acc5_video``, ``test/acc1_clip`` (the
    centre view of the middle clip alone), ``test/mean_class_acc``, ``test/num_videos`` (videos
    evaluated), ``test/skipped_videos`` (unreadable videos, left out of every metric and
    prediction: the datasets never substitute in evaluation) and the per-branch
    ``test/acc1_video_<branch>``.

    Multi-view test: every view of a video is evaluated on the rank that loaded it, in one
    (optionally chunked) forward; per-rank outputs are gathered and de-duplicated by dataset
    index (:class:`ResultAccumulator`), so the DistributedSampler's padding never counts a video
    twice; test and predict batches are ``[B, V, C, T, H, W]`` after the transfer (a single-view
    loader's clips get ``V = 1``). After the test epoch,
    :attr:`test_results` holds the per-video outputs (:class:`VideoResults`); callbacks read
    them with :meth:`collect_test_results` (and set :attr:`keep_view_logits` to get every
    view's logits too).
    """

    def __init__(
        self,
        backbone: nn.Module,
        head: HeadFactory = GAPHead,
        num_classes: int = 2,
        optimizer: OptimizerCallable = torch.optim.SGD,
        lr_scheduler: LRSchedulerCallable | None = None,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        test_average: Average = "prob",
        views_per_forward: int | None = None,
        class_names: list[str] | None = None,
        init_weights: str | None = None,
        backbone_lr_mult: float = 1.0,
        batch_norm: BatchNormMode = "train",
        frozen_stages: Sequence[str] = (),
    ) -> None:
        super().__init__()
        # Built by LightningCLI, the hyper-parameters are the parsed config (class paths and
        # plain values), enough to rebuild the model from the checkpoint alone; built in Python,
        # the modules themselves are left out (they are in the state dict, and the checkpoint
        # must stay loadable with weights_only=True).
        from_config = _given_hyperparameters.get() is not None
        self.save_hyperparameters(
            ignore=[] if from_config else ["backbone", "head", "optimizer", "lr_scheduler"])
        self.backbone = backbone
        self.head = head(backbone, num_classes)
        self.num_classes = num_classes
        self.optimizer_factory = optimizer
        self.scheduler_factory = lr_scheduler
        self.normalization = Normalization(tuple(mean), tuple(std))
        self.test_average = test_average
        self.views_per_forward = views_per_forward
        self.class_names = class_names
        # up front: Lightning maps logged metrics to attributes once, at the first log call
        # a metric, not a logged tensor: Lightning's mean over ranks divides the summed video
        # count by the world size in integers, wrong when ranks scored different numbers
        self.val_loss = MeanMetric()
        self.val_metrics = nn.ModuleDict({
            branch: classification_metrics(num_classes) for branch in self.head.branches})
        # replaced training videos; a metric so that the epoch's count is summed over ranks and
        # written at the epoch's end however it ends (last batch, max_steps, limit_train_batches)
        self.train_skipped = SumMetric()
        self._train_skipped_logged = False
        self._test_rows = ResultAccumulator()
        self._test_unreadable: list[Tensor] = []  # dataset indices of unreadable test videos
        self._predict_rows = ResultAccumulator()
        #: keep every view's logits in the test results (accuracy vs clips needs them; off by
        #: default because ``[N, V, K]`` for a large test set is big)
        self.keep_view_logits = False
        #: per-video outputs of the last test / predict epoch (``None`` before one has run)
        self.test_results: VideoResults | None = None
        self.predict_results: VideoResults | None = None
        self.init_weights = init_weights
        self.backbone_lr_mult = backbone_lr_mult
        freeze_stages(backbone, frozen_stages)
        self._frozen_bn = frozen_bn_layers(backbone, batch_norm, frozen_stages)

    # ---- starting weights, frozen parts --------------------------------------------------
    def setup(self, stage: str) -> None:
        if self.init_weights is not None and not getattr(self, "_init_weights_loaded", False):
            for line in load_init_weights(self, self.init_weights):
                rank_zero_info(line)
            self._init_weights_loaded = True
        # one clip of the data's shape, so the model summary counts real FLOPs (and shapes)
        datamodule = getattr(self._trainer, "datamodule", None)  # setup() may run trainer-less
        frames = getattr(datamodule, "num_frames", None)
        size = getattr(datamodule, "train_crop_size", None)
        if self.example_input_array is None and frames and size:
            channels = getattr(self.backbone, "in_channels", 3)
            self.example_input_array = torch.zeros(1, channels, frames, size, size)

    def train(self, mode: bool = True) -> VideoRecognizer:
        super().train(mode)
        for layer in getattr(self, "_frozen_bn", ()):  # set at the end of __init__
            layer.eval()
        return self

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # jsonargparse's restricted numbers (PositiveInt, …) re-enter at instantiation and reach
        # the checkpoint through hparams and the stateful loader's snapshot; their classes are
        # refused by torch.load(weights_only=True), so everything but the weights goes plain
        for key in list(checkpoint):
            if key != "state_dict":
                checkpoint[key] = plain_values(checkpoint[key])

    # ---- forward ---------------------------------------------------------------------------
    def forward(self, video: Tensor) -> HeadOutput:
        """``video``: normalised float (or raw ``uint8``) ``[B, C, T, H, W]`` → ``HeadOutput``."""
        return self.head(self.backbone(self.normalization(video)))

    def on_after_batch_transfer(self, batch: dict[str, Any], dataloader_idx: int) -> dict:
        # used when the data comes without its own hook (datamodules.VideoDataModule's
        # normalises and already gives test views as [B, V, C, T, H, W])
        trainer = self._trainer
        if (trainer is not None and (trainer.testing or trainer.predicting)
                and batch["video"].ndim == 5):
            # a single-view loader: test and predict batches are always [B, V, C, T, H, W]
            batch["video"] = batch["video"].unsqueeze(1)
        return batch

    # ---- training / validation -------------------------------------------------------------
    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        output = self(batch["video"])
        losses = self.head.loss(output, batch["label"])
        batch_size = batch["label"].shape[0]
        acc = (output.logits[self.final_branch].argmax(-1) == batch["label"]).float().mean()
        # Each self.log costs Lightning's bookkeeping (about 0.3 ms of CPU, benchmarks/
        # train_throughput.py): every step logs only what the progress bar shows; the
        # per-branch losses, which only loggers read, go on the steps Lightning writes to
        # them (every log_every_n_steps), and the replaced videos once per epoch.
        self.log("train/loss", losses["loss"], prog_bar=True, batch_size=batch_size)
        self.log("train/acc1", acc, prog_bar=True, batch_size=batch_size)
        trainer = self.trainer
        if trainer.log_every_n_steps and (self.global_step + 1) % trainer.log_every_n_steps == 0:
            for name, value in losses.items():
                if name != "loss":
                    self.log(f"train/{name}", value, batch_size=batch_size)
        # replaced unreadable videos: the batch counts them (host-side, no device sync). The
        # metric is logged once per epoch, on every rank alike; Lightning computes it (the sum
        # over steps and ranks) when the epoch ends and then resets it.
        replaced = batch.get("num_replaced", 0)
        # updated at least once an epoch: torchmetrics warns on compute() before any update
        if replaced or not self._train_skipped_logged:
            self.train_skipped.update(float(replaced))
        if not self._train_skipped_logged:
            self.log("train/skipped_videos", self.train_skipped, on_step=False, on_epoch=True)
            self._train_skipped_logged = True
        return losses["loss"]

    def on_train_epoch_start(self) -> None:
        self._train_skipped_logged = False

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._count_unreadable("val", batch)
        batch_size = batch["label"].shape[0]
        if batch_size == 0:
            # every video of the batch was unreadable: nothing to score, but the same keys are
            # logged with no weight, so that under DDP a rank whose videos were all unreadable
            # still joins the epoch-end reductions of the others (or they would wait forever)
            loss, logits = torch.zeros((), device=self.device), {}
        else:
            output = self(batch["video"])
            loss, logits = self.head.loss(output, batch["label"])["loss"], output.logits
        self.val_loss.update(loss, weight=batch_size)
        self.log("val/loss", self.val_loss)
        for branch in self.head.branches:  # one order on every rank, whatever it decoded
            metrics = self.val_metrics[branch]
            if batch_size:
                metrics.update(logits[branch], batch["label"])
            for name, metric in metrics.items():
                self.log(f"val/{name}_{branch}", metric, batch_size=batch_size)
                if branch == self.final_branch:
                    self.log(f"val/{name}", metric, batch_size=batch_size,
                             prog_bar=name != "mean_class_acc")

    # ---- multi-view test -------------------------------------------------------------------
    @property
    def final_branch(self) -> str:
        """The head's final branch: *the* model's prediction (``val/acc1``, ``test/acc1_video``)."""
        return self.head.final_branch

    def view_logits(self, views: Tensor) -> dict[str, Tensor]:
        """``views`` ``[B, V, C, T, H, W]`` → per-branch ``[B, V, K]`` logits.

        All views of the batch go through the network together (``B·V`` clips), in chunks of
        ``views_per_forward`` clips. If a chunk runs out of accelerator memory, the chunk is
        halved and the batch retried, and the smaller chunk is kept for the rest of the run.
        """
        num_videos = views.shape[0]
        clips = rearrange(views, "b v c t h w -> (b v) c t h w")
        while True:
            chunk = self.views_per_forward or clips.shape[0]
            try:
                pieces = self._chunked_logits(clips, chunk)
                break
            except torch.OutOfMemoryError:
                if chunk <= 1:
                    raise
                self.views_per_forward = max(1, chunk // 2)
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                rank_zero_warn(f"test views ran out of memory in chunks of {chunk} clips; "
                               f"retrying with views_per_forward={self.views_per_forward}")
        return {
            branch: rearrange(torch.cat(parts), "(b v) k -> b v k", b=num_videos)
            for branch, parts in pieces.items()
        }

    def _chunked_logits(self, clips: Tensor, chunk: int) -> dict[str, list[Tensor]]:
        """``clips`` ``[N, C, T, H, W]`` in forwards of ``chunk`` → per-branch ``[n, K]`` pieces."""
        pieces: dict[str, list[Tensor]] = defaultdict(list)
        for start in range(0, clips.shape[0], chunk):
            for branch, logits in self(clips[start : start + chunk]).logits.items():
                pieces[branch].append(logits)
        return pieces

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Any] | None:
        """Returns ``index`` ``[B]``, ``label`` ``[B]``, ``logits`` (per branch ``[B, V, K]``)
        and ``video`` (per branch ``[B, K]``) for callbacks' ``on_test_batch_end``; ``None`` for
        a batch whose videos were all unreadable."""
        if "unreadable_index" in batch:
            self._test_unreadable.append(batch["unreadable_index"])
        if batch["label"].numel() == 0:
            return None
        logits = self.view_logits(batch["video"])
        video = {branch: average_views(lg, self.test_average) for branch, lg in logits.items()}
        # the clip-level view: the dataset names it (the middle clip's centre view), else view 0
        clip_view = batch.get("clip_view", torch.zeros_like(batch["index"]))
        rows = torch.arange(clip_view.shape[0], device=clip_view.device)
        self._test_rows.append(
            batch["index"], label=batch["label"], video=video,
            clip={branch: lg[rows, clip_view] for branch, lg in logits.items()},
            **({"views": logits} if self.keep_view_logits else {}))
        return {"index": batch["index"], "label": batch["label"], "logits": logits,
                "video": video}

    def on_test_epoch_start(self) -> None:
        self._test_rows.reset()
        self._test_unreadable.clear()
        self.test_results = None

    def _count_unreadable(self, stage: str, batch: dict[str, Any]) -> None:
        """``<stage>/skipped_videos``: records left out of the metrics (summed over the epoch)."""
        if "unreadable_index" in batch:
            self.log(f"{stage}/skipped_videos", float(batch["unreadable_index"].numel()),
                     reduce_fx="sum", on_step=False, on_epoch=True, batch_size=1,
                     sync_dist=True)

    def _skipped_test_videos(self) -> int:
        """Distinct unreadable test videos over every rank (DDP padding repeats indices)."""
        local = (torch.cat(self._test_unreadable) if self._test_unreadable
                 else torch.zeros(0, dtype=torch.long))
        self._test_unreadable.clear()
        return int(gather_variable(self, local.to(self.device)).unique().numel())

    def collect_test_results(self) -> VideoResults:
        """Gather this epoch's test outputs from every rank, one row per distinct video.

        A collective call under DDP (every rank must make it); computed once per epoch and
        cached, so callbacks' ``on_test_epoch_end`` (which Lightning runs *before* the module's)
        and the module share one gather. Every rank gets the same :class:`VideoResults`.
        """
        if self.test_results is None:
            self.test_results = VideoResults.from_rows(
                self._test_rows.gather(self), self.final_branch, self.test_average)
        return self.test_results

    def on_test_epoch_end(self) -> None:
        results = self.collect_test_results()
        metrics = {"test/num_videos": float(len(results)),
                   "test/skipped_videos": float(self._skipped_test_videos())}
        # unlabelled records (label -1, e.g. an official test split without answers) have no
        # accuracy; they still count as videos and are there for ``predict``
        if not (results.label >= 0).any():
            rank_zero_warn("the test split has no labels: accuracy is not computed; use "
                           "`cli.py predict` to write the predictions")
        for branch in results.branches:
            suffix = "" if branch == results.final else f"_{branch}"
            names = video_metric_names(suffix)
            metrics.update({names[k]: v for k, v in score(results.video[branch],
                                                          results.label).items()})
            clip = score(results.clip[branch], results.label)
            if clip:
                metrics[f"test/acc1_clip{suffix}"] = clip["acc1"]
        # every rank holds the same gathered values, so the mean over ranks that sync_dist
        # takes is each value itself (exactly); declaring it keeps Lightning from warning, once
        # per metric, that epoch-level values are not synchronised
        self.log_dict(metrics, sync_dist=True)
        self._test_rows.reset()

    # ---- predict ---------------------------------------------------------------------------
    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Any] | None:
        """Returns ``index`` ``[B]``, ``label`` ``[B]`` and ``probs`` (per branch ``[B, K]``,
        the mean of the views' softmax); the epoch's rows are gathered by
        :meth:`collect_predict_results`. ``None`` for a batch whose videos were all unreadable
        (they are left out of the predictions)."""
        if batch["label"].numel() == 0:
            return None
        probs = {branch: average_views(lg, "prob")
                 for branch, lg in self.view_logits(batch["video"]).items()}
        self._predict_rows.append(batch["index"], label=batch["label"], video=probs)
        return {"index": batch["index"], "label": batch["label"], "probs": probs,
                "final": self.final_branch}

    def on_predict_epoch_start(self) -> None:
        self._predict_rows.reset()
        self.predict_results = None

    def collect_predict_results(self) -> VideoResults:
        """Like :meth:`collect_test_results`, for ``predict`` (``video`` holds probabilities;
        ``clip`` is empty)."""
        if self.predict_results is None:
            self.predict_results = VideoResults.from_rows(
                self._predict_rows.gather(self), self.final_branch, "prob")
        return self.predict_results

    # ---- optimisation ----------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        if self.backbone_lr_mult != 1.0:
            optimizer = self.optimizer_factory(backbone_param_groups(self, self.backbone_lr_mult))
            scale_group_lrs(optimizer)
        else:
            optimizer = self.optimizer_factory([p for p in self.parameters() if p.requires_grad])
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self.scheduler_factory(optimizer)}
