"""U2S category similarity matrix (u2s §III-A "CSM", eqs. 1–2; §IV-B "Training").

The CSM is computed once, from the trained universal network over the training set, before the
category-specific network is trained (stage 2). :class:`CategorySimilarityCallback` does that at
the start of training when the model's :class:`~models.heads.u2s.U2SHead` has none yet: each DDP
rank runs its shard of the training set (each video on one rank, once) through the backbone, the
per-class sparsity sums are summed over ranks, and every rank sets the same CSM. The CSM lives in
the head's buffers, so the checkpoints that follow carry it and stage 3 (resumed from stage 2) does
not recompute it.

The number of confusing categories ``N`` (the mean number of positives per CSM column) depends on
the dataset (u2s §IV-B): the smallest ``N`` whose top-``N`` accuracy of the trained universal
network reaches a high standard — 85 % on Something-Something v2, 95 % on UCF101 and Stanford
Cars, 90 % on HMDB51 and Stanford Dogs (:data:`TOP_N_STANDARDS`). With ``top_n_standard`` the
callback measures the universal network's top-``N`` accuracy on the validation set (every
validation video once over all ranks) and sets the head's ``num_confusing`` before the CSM is
binarised; without it the head's fixed ``num_confusing`` is used.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BaseFinetuning
from pytorch_lightning.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor, nn
from torch.utils.data import DataLoader, IterableDataset

from lightning_modules.analysis.figures import csm_figure
from lightning_modules.analysis.report import AnalysisReporter
from lightning_modules.callbacks.evaluation import class_names_of
from lightning_modules.evaluation import ResultAccumulator

#: u2s §IV-B: the top-N accuracy the universal network must reach for N confusing categories
TOP_N_STANDARDS: dict[str, float] = {
    "something_v2": 0.85,
    "ucf101": 0.95,
    "stanford_cars": 0.95,
    "hmdb51": 0.90,
    "stanford_dogs": 0.90,
}


def top_n_accuracy(scores: Tensor, label: Tensor) -> Tensor:
    """``[M]`` top-``n`` accuracy for ``n = 1 .. M`` of ``scores`` ``[N, M]`` against ``label``.

    A video counts as top-``n`` correct when fewer than ``n`` classes score strictly higher than
    its true class.
    """
    true_score = scores.gather(1, label[:, None])
    rank = (scores > true_score).sum(1)  # [N], 0 = top-1 correct
    counts = torch.bincount(rank, minlength=scores.shape[1]).cumsum(0)
    return counts.double() / max(1, label.numel())


def choose_num_confusing(top_n: Sequence[float] | Tensor, standard: float) -> int:
    """u2s §IV-B: the smallest ``N`` whose top-``N`` accuracy (``top_n[N - 1]``) reaches
    ``standard`` (a fraction), so that ``N`` candidates include most confusing categories."""
    values = torch.as_tensor(top_n, dtype=torch.float64)
    if not 0.0 < standard <= 1.0:
        raise ValueError(f"standard must be a fraction in (0, 1], got {standard}")
    reached = torch.nonzero(values >= standard - 1e-12).flatten()
    return int(reached[0]) + 1 if reached.numel() else int(values.numel())


def resolve_standard(standard: float | str | None) -> float | None:
    """A top-N standard given as a fraction or as a dataset name of :data:`TOP_N_STANDARDS`."""
    if standard is None or isinstance(standard, float | int):
        return None if standard is None else float(standard)
    key = standard.lower().replace("-", "_")
    if key not in TOP_N_STANDARDS:
        raise ValueError(f"top_n_standard {standard!r} is neither a fraction nor one of "
                         f"{sorted(TOP_N_STANDARDS)}")
    return TOP_N_STANDARDS[key]


def _find_u2s_head(pl_module: nn.Module) -> nn.Module | None:
    head = getattr(pl_module, "head", None)
    if head is not None and hasattr(head, "compute_csm"):
        return head
    return next((m for m in pl_module.modules() if hasattr(m, "update_csm_statistics")), None)


class CategorySimilarityCallback(pl.Callback):
    """Compute the U2S head's CSM over the training set when it is not yet set; log its heat map.

    Runs at ``on_train_start`` (loaders are ready there and a resumed checkpoint has already
    restored the head's ``csm_is_set``). It skips heads in ``stage=1`` (the universal network is
    still being trained; the CSM must come from the trained one) unless ``in_stage1``.

    Args:
        max_batches: use at most this many training batches per rank (``None``: the whole
            training set, as in the paper).
        recompute: compute even when the head already has a CSM.
        in_stage1: also compute in stage 1 (e.g. to inspect the CSM of a pretrained network).
        top_n_standard: choose ``N`` (the head's ``num_confusing``) as the smallest ``N``
            whose top-``N`` validation accuracy of the universal network reaches this fraction,
            or a dataset name of :data:`TOP_N_STANDARDS` (u2s §IV-B: ``something_v2`` 0.85,
            ``ucf101`` 0.95, ``hmdb51`` 0.90); ``None``: keep the head's fixed ``num_confusing``.
        log_key: name of the logged image and the PNG's stem.
        backbone_attr: attribute of the LightningModule holding the backbone.
        video_key / label_key: batch keys (the project's loaders yield dicts); tuple batches
            ``(video, label, ...)`` are accepted too.

    The heat map (similarity ``S`` left, binary CSM right) goes to the logger's ``log_image``
    (W&B), TensorBoard's ``add_image``, or, for other loggers, a PNG in the log directory.
    """

    def __init__(
        self,
        max_batches: int | None = None,
        recompute: bool = False,
        in_stage1: bool = False,
        top_n_standard: float | str | None = None,
        log_key: str = "u2s/csm",
        backbone_attr: str = "backbone",
        video_key: str = "video",
        label_key: str = "label",
    ) -> None:
        super().__init__()
        if max_batches is not None and max_batches < 1:
            raise ValueError(f"max_batches must be >= 1 or None, got {max_batches}")
        self.max_batches = max_batches
        self.recompute = recompute
        self.in_stage1 = in_stage1
        self.top_n_standard = resolve_standard(top_n_standard)
        #: after a CSM computation with ``top_n_standard``: ``[M]`` top-n validation accuracy
        self.top_n: Tensor | None = None
        self.log_key = log_key
        self.backbone_attr = backbone_attr
        self.video_key = video_key
        self.label_key = label_key
        self.image_path: str | None = None

    # ------------------------------------------------------------------ hooks
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        head = _find_u2s_head(pl_module)
        if head is None:
            rank_zero_warn("CategorySimilarityCallback: the model has no U2SHead; nothing to do")
            return
        if head.stage == 1 and not self.in_stage1:
            return
        if bool(head.csm_is_set) and not self.recompute:
            rank_zero_info("CategorySimilarityCallback: the U2S head already has a CSM; kept")
            return
        if self.top_n_standard is not None:
            self.choose_num_confusing(trainer, pl_module, head)
        self.compute(trainer, pl_module, head)
        self.log_heatmap(trainer, head, pl_module)

    # ------------------------------------------------------------------ work
    def _split_batch(self, batch: Any) -> tuple[Tensor, Tensor]:
        if isinstance(batch, Mapping):
            return batch[self.video_key], batch[self.label_key]
        if isinstance(batch, Sequence) and len(batch) >= 2:
            return batch[0], batch[1]
        raise TypeError(
            f"CategorySimilarityCallback cannot find video and label in a {type(batch).__name__} "
            f"batch; set video_key/label_key"
        )

    @torch.no_grad()
    def choose_num_confusing(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                             head: nn.Module) -> int:
        """Set ``head.num_confusing`` from the universal network's top-N validation accuracy.

        Every validation video is scored once over all ranks (:meth:`_statistics_loader`), the
        rows gathered by :class:`~lightning_modules.evaluation.ResultAccumulator`; every rank
        gets the same ``N``.
        """
        standard = self.top_n_standard
        if standard is None:
            raise ValueError("choose_num_confusing needs top_n_standard")
        loader = trainer.val_dataloaders
        if isinstance(loader, Sequence):
            loader = loader[0] if loader else None
        if loader is None:
            raise RuntimeError("CategorySimilarityCallback(top_n_standard=...) needs the "
                               "validation loader; give the datamodule a val split")
        rows = ResultAccumulator()
        was_training = pl_module.training
        pl_module.eval()
        try:
            for batch in self._statistics_loader(trainer, loader):
                batch = pl_module._apply_batch_transfer_handler(batch)
                video, label = self._split_batch(batch)
                features = getattr(pl_module, self.backbone_attr)(video)
                universal = head.universal_logits(features)
                rows.append(batch["index"], label=label, universal=universal)
            gathered = rows.gather(pl_module)
        finally:
            pl_module.train(was_training)
        self.top_n = top_n_accuracy(gathered["universal"].float(), gathered["label"])
        head.num_confusing = choose_num_confusing(self.top_n, standard)
        n = head.num_confusing
        rank_zero_info(
            f"CategorySimilarityCallback: N={n} confusing categories (top-{n} validation "
            f"accuracy {100 * float(self.top_n[n - 1]):.1f} % >= "
            f"{100 * standard:.0f} %; top-1 {100 * float(self.top_n[0]):.1f} %, "
            f"over {len(gathered['label'])} videos)")
        return n

    @staticmethod
    def _statistics_loader(trainer: pl.Trainer, loader: Any) -> Any:
        """Every training video exactly once over all ranks: rank ``r`` takes every
        ``world_size``-th video of a fixed permutation of the training set. The training loader's
        DistributedSampler would pad a rank with repeats and its ``drop_last`` drop videos, both
        changing the per-class statistics (and making them differ from a single-process run).
        Any other loader (not a map-style ``DataLoader``) is used as it is."""
        dataset = getattr(loader, "dataset", None)
        if not isinstance(loader, DataLoader) or dataset is None or isinstance(
            dataset, IterableDataset
        ):
            return loader
        order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))
        shard = order[trainer.global_rank :: trainer.world_size].tolist()
        return DataLoader(
            dataset,
            batch_size=loader.batch_size or 1,
            sampler=shard,
            num_workers=loader.num_workers,
            collate_fn=loader.collate_fn,
            pin_memory=loader.pin_memory,
            worker_init_fn=loader.worker_init_fn,
        )

    @torch.no_grad()
    def compute(self, trainer: pl.Trainer, pl_module: pl.LightningModule, head: nn.Module) -> None:
        """Accumulate eq. 1 statistics on this rank's shard, sum over ranks, set the CSM."""
        loader = trainer.train_dataloader
        if loader is None:
            raise RuntimeError("CategorySimilarityCallback needs the training dataloader")
        loader = self._statistics_loader(trainer, loader)
        backbone = getattr(pl_module, self.backbone_attr)
        was_training = pl_module.training
        pl_module.eval()  # BN running stats untouched; deterministic features
        head.reset_csm_statistics()
        try:
            for i, batch in enumerate(loader):
                if self.max_batches is not None and i >= self.max_batches:
                    break
                # the module's own device transfer + on_after_batch_transfer (normalisation)
                batch = pl_module._apply_batch_transfer_handler(batch)
                video, label = self._split_batch(batch)
                # uint8 still when the datamodule hands raw video on (normalize=None)
                prepare = getattr(pl_module, "normalization", None)
                head.update_csm_statistics(backbone(prepare(video) if prepare else video), label)
            sparsity_sum, count = head.csm_sparsity_sum, head.csm_count
            if trainer.world_size > 1:
                # every rank saw a disjoint shard (_statistics_loader): sum the class statistics
                sparsity_sum = pl_module.all_gather(sparsity_sum).sum(dim=0)
                count = pl_module.all_gather(count).sum(dim=0)
            head.compute_csm(sparsity_sum, count)
            num_clips = int(count.sum().item())  # before the reset below (may alias the buffer)
        finally:
            head.reset_csm_statistics()
            pl_module.train(was_training)
        positives = head.csm.sum(dim=0).mean().item()
        rank_zero_info(
            f"CategorySimilarityCallback: CSM over {num_clips} clips, "
            f"alpha={head.csm_threshold.item():.4f}, mean positives per column={positives:.2f}"
        )

    def log_heatmap(self, trainer: pl.Trainer, head: nn.Module,
                    pl_module: pl.LightningModule) -> None:
        """The heat map (S and the binary CSM, class names on the axes) to every logger that
        takes images and as a PNG in the run's analysis folder (global-zero rank)."""
        report = AnalysisReporter(trainer)
        if not report.enabled:
            return
        names = class_names_of(trainer, pl_module, int(head.csm.shape[0]))
        path = report.image(self.log_key, csm_figure(head.csm_similarity, head.csm, names),
                            caption="S | CSM (binary)")
        if path is not None:
            self.image_path = str(path)
            rank_zero_info(f"CategorySimilarityCallback: heat map written to {path}")


class U2SStageFreezing(BaseFinetuning):
    """The U2S three-stage schedule (u2s §IV-B) as freezing: what the head's ``stage`` does not
    train gets no gradients, stays out of the optimiser (built from trainable parameters only)
    and is kept in eval mode, so BatchNorm statistics and dropout stay as the previous stage left
    them.

    - stage 1: the mask and category-specific networks (``head.specific_modules``; not run);
    - stage 2: the universal network — the backbone and ``head.universal_modules``;
    - stage 3: nothing (joint training).

    Args:
        backbone_attr: attribute of the LightningModule holding the backbone.
    """

    def __init__(self, backbone_attr: str = "backbone") -> None:
        super().__init__()
        self.backbone_attr = backbone_attr
        self.frozen: list[nn.Module] = []

    def frozen_modules(self, pl_module: pl.LightningModule) -> list[nn.Module]:
        """The modules the model's U2S head's stage leaves untrained."""
        head = _find_u2s_head(pl_module)
        if head is None:
            rank_zero_warn("U2SStageFreezing: the model has no U2SHead; nothing is frozen")
            return []
        if head.stage == 1:
            return list(head.specific_modules)
        if head.stage == 2:
            return [getattr(pl_module, self.backbone_attr), *head.universal_modules]
        return []

    def freeze_before_training(self, pl_module: pl.LightningModule) -> None:
        self.frozen = self.frozen_modules(pl_module)
        self.freeze(self.frozen, train_bn=False)
        for module in self.frozen:
            module.eval()

    def finetune_function(self, pl_module: pl.LightningModule, epoch: int,
                          optimizer: torch.optim.Optimizer) -> None:
        """Nothing thaws within a run: each stage is its own run from the previous weights."""

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                             batch: Any, batch_idx: int) -> None:
        # anything may have called .train() since (Lightning's loops, the CSM callback)
        for module in self.frozen:
            module.eval()


class InitWeightsFromCheckpoint(pl.Callback):
    """Start a fit from another run's *weights only* (the U2S stage chain, u2s §IV-B).

    Each U2S stage trains a different set of parameters with its own optimiser and schedule, so
    ``--ckpt_path`` (which also restores optimiser state and epoch counters) does not fit;
    this loads the checkpoint's ``state_dict`` into the LightningModule in ``setup("fit")``,
    before the optimiser is built. Buffers travel too — the U2S CSM among them.

    Args:
        path: the previous stage's checkpoint (e.g. ``runs/u2s/stage1/last.ckpt``).
        strict: require exactly matching keys and shapes; with ``False``, entries missing on
            either side and entries whose shape differs (a classifier for another class
            count) are left as initialised, and listed.
    """

    def __init__(self, path: str, strict: bool = True) -> None:
        super().__init__()
        self.path = path
        self.strict = strict

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        if not os.path.isfile(self.path):
            raise FileNotFoundError(
                f"InitWeightsFromCheckpoint: no checkpoint at {self.path!r}; run the previous "
                "stage's config first (or point init_args.path at its checkpoint)"
            )
        checkpoint = torch.load(self.path, map_location="cpu", weights_only=True)
        state, reshaped = checkpoint["state_dict"], []
        if not self.strict:  # load_state_dict raises on a shape mismatch even when not strict
            own = pl_module.state_dict()
            reshaped = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
            state = {k: v for k, v in state.items() if k not in reshaped}
        result = pl_module.load_state_dict(state, strict=self.strict)
        missing = [k for k in result.missing_keys if k not in reshaped]
        notes = [f"{label} {keys}" for label, keys in (
            ("missing", missing), ("unexpected", result.unexpected_keys),
            ("other shape, left as initialised", reshaped)) if keys]
        rank_zero_info(f"InitWeightsFromCheckpoint: weights from {self.path}"
                       + (f" ({'; '.join(notes)})" if notes else ""))


__all__ = [
    "TOP_N_STANDARDS",
    "CategorySimilarityCallback",
    "InitWeightsFromCheckpoint",
    "U2SStageFreezing",
    "choose_num_confusing",
    "resolve_standard",
    "top_n_accuracy",
]
