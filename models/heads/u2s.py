"""Universal-to-specific head (Du et al., "Universal-to-specific framework for complex action
recognition", u2s paper in ``papers/``).

Three sub-networks (u2s §III-A, Fig. 2–3):

* universal network (UN) = the backbone; GAP + dropout + dense on its last stage → ``universal``;
* category-specific network (CSN) = a fresh copy of the backbone's 3D stages after the 2D→3D
  transition (``transition_stage``…``stage5``), fed by the shared 2D stages' output;
* mask network (MN) = a 1×1×1 conv from the UN's last features to ``M`` category masks; their GAP
  are the ``bridge`` logits (loss ``L_M``). The masks of the classes that the category similarity
  matrix (CSM) marks as confusable with the UN's prediction are averaged into one
  ``[B, 1, T, H, W]`` mask that weights the CSN's features → ``specific`` (loss ``L_C``).

The CSM (eqs. 1–2) comes from per-class channel sparsity of the UN's last features, binarised at
the threshold α that makes the mean number of positives per column equal ``num_confusing``.
Category regularisation (eqs. 4–6) pushes apart the mask-conv weight vectors of confusing classes.
Loss (eq. 3): ``L = L_U + L_C + L_M + λ·w_regular``. ``fused`` is the mean of the three softmax
outputs (§IV-C-1, Table I).

Three-stage schedule (§IV-B "Training"), chosen by ``stage``:

1. UN only (backbone + ``universal``); the MN and CSN are neither run nor trained.
2. CSN + MN (+ their classifiers), with the CSM; the UN is frozen (no gradients, BatchNorm and
   dropout in eval mode so its statistics and its predictions stay put).
3. Everything jointly (the paper lowers the learning rate to 1e-4 — an optimiser setting).

The head only says which of its parts belong to which network (``universal_modules``,
``specific_modules``); the freezing itself — of the backbone too, which the head does not own —
is :class:`lightning_modules.callbacks.U2SStageFreezing` (a Lightning ``BaseFinetuning``).
"""

from __future__ import annotations

import math
import warnings
from typing import Literal

import torch
from einops import rearrange, reduce
from jsonargparse.typing import NonNegativeFloat
from torch import Tensor, nn
from torch.nn import functional as F

from models.heads.base import DropoutRate, Head, HeadOutput, load_backbone_stage_weights

Distance = Literal["l1", "euclidean", "cosine"]
RegSimilarity = Literal["cosine", "distance"]


def channel_sparsity(features: Tensor) -> Tensor:
    """Per-sample channel sparsity Ξ^c = 1 − Q^c (u2s eq. 1).

    ``features``: ``[B, D, T, H, W]`` → ``[B, D]`` in ``[0, 1]``. ``Q^c`` is the fraction of the
    T×H×W responses of channel ``c`` that are non-zero; counted as ``> 0``, which equals non-zero
    for post-ReLU features and is "what a ReLU would let through" for pre-activation ones.
    """
    return 1.0 - (features > 0).float().mean(dim=(2, 3, 4))


def category_similarity(sparsity: Tensor, distance: Distance = "l1") -> Tensor:
    """Similarity ``S = 1 − f_dist(Ξ_i, Ξ_j)`` (u2s eq. 2) of per-class sparsity vectors.

    ``sparsity``: ``[M, D]`` class-mean Ξ in ``[0, 1]`` → ``S``: ``[M, M]`` in ``[0, 1]``.
    The paper only asks ``f_dist`` to map into ``[0, 1]``; offered: ``l1`` (mean absolute
    difference), ``euclidean`` (L2 / √D) and ``cosine`` (1 − cos, in [0, 1] as Ξ ≥ 0).
    """
    dim = sparsity.shape[1]
    if distance == "l1":
        dist = torch.cdist(sparsity, sparsity, p=1) / dim
    elif distance == "euclidean":
        dist = torch.cdist(sparsity, sparsity, p=2) / math.sqrt(dim)
    elif distance == "cosine":
        unit = F.normalize(sparsity, dim=1)
        dist = 1.0 - unit @ unit.T
    else:
        raise ValueError(f"distance must be 'l1', 'euclidean' or 'cosine', got {distance!r}")
    similarity = (1.0 - dist).clamp(0.0, 1.0)
    return (similarity + similarity.T) / 2  # exact symmetry despite float rounding


def weight_similarity(weight: Tensor, kind: RegSimilarity = "cosine",
                      distance: Distance = "l1") -> Tensor:
    """``S^w`` (u2s eq. 4) of the rows ``w_i`` of ``weight`` ``[M, D]`` → ``[M, M]`` in [0, 1].

    The paper leaves ``s(·,·)`` open ("similar to eq. 2"). ``kind``:

    * ``"cosine"`` (default): ``max(0, cos(w_i, w_j))``. Scale-free, so the regulariser cannot
      be met by shrinking or growing weight norms (which ``L_M`` also shapes); zero for
      orthogonal vectors — masks built from different features already satisfy it — and it
      does not push pairs on towards opposite vectors, i.e. towards one mask being the other's
      negative.
    * ``"distance"``: eq. 2's own form ``1 − f_dist(ŵ_i, ŵ_j)`` on unit vectors ``ŵ`` with the
      head's ``distance`` scaled into [0, 1] (``l1``: ``‖ŵ_i − ŵ_j‖₁ / 2√D``, ``euclidean``:
      ``‖ŵ_i − ŵ_j‖₂ / 2``, ``cosine``: ``(1 − cos) / 2``). It reaches 0 only for opposite
      vectors, so it keeps pushing orthogonal pairs apart.
    """
    unit = F.normalize(weight, dim=1)
    if kind == "cosine":
        return (unit @ unit.T).clamp(min=0.0)
    if kind != "distance":
        raise ValueError(f"reg_similarity must be 'cosine' or 'distance', got {kind!r}")
    dim = unit.shape[1]
    if distance == "l1":
        dist = torch.cdist(unit, unit, p=1) / (2 * math.sqrt(dim))
    elif distance == "euclidean":
        dist = torch.cdist(unit, unit, p=2) / 2
    elif distance == "cosine":
        dist = (1.0 - unit @ unit.T) / 2
    else:
        raise ValueError(f"distance must be 'l1', 'euclidean' or 'cosine', got {distance!r}")
    return (1.0 - dist).clamp(0.0, 1.0)


def binarize_similarity(
    similarity: Tensor, num_confusing: float, valid: Tensor | None = None
) -> tuple[Tensor, float]:
    """Binary CSM from ``S`` at the threshold α giving ``num_confusing`` positives per column.

    Counting the diagonal (a class is always in its own candidate set), the mean column sum is
    ``num_confusing``, i.e. on average ``num_confusing − 1`` *other* classes per class — the
    analogue of the top-N candidate set the u2s paper uses to choose α (§IV-B). It is exact when
    ``M·(num_confusing − 1)`` is even (pairs come in symmetric twos), otherwise off by ``1/M``.
    ``num_confusing = 1`` gives the identity (the paper's "simple" variant, Table III b).

    α is the similarity of the weakest selected pair; ties at α are broken by ``topk`` so the
    count is exact. Classes marked invalid (no samples) are confused with nothing.

    Returns ``(csm [M, M] float {0, 1}, alpha)``.
    """
    m = similarity.shape[0]
    csm = torch.eye(m, dtype=similarity.dtype, device=similarity.device)
    rows, cols = torch.triu_indices(m, m, offset=1, device=similarity.device)
    values = similarity[rows, cols]
    if valid is not None:
        ok = valid[rows] & valid[cols]
        rows, cols, values = rows[ok], cols[ok], values[ok]
    num_pairs = min(round(m * (num_confusing - 1) / 2), values.numel())
    if num_pairs <= 0:
        return csm, math.inf
    top = values.topk(num_pairs).indices
    csm[rows[top], cols[top]] = 1.0
    csm[cols[top], rows[top]] = 1.0
    return csm, float(values[top].min())


class U2SHead(Head):
    """Universal network head + mask network + category-specific network (u2s §III).

    Args:
        backbone: the universal network; exposes ``out_channels``, ``stage_names`` and
            ``copy_stages``. The head does not freeze it: ``U2SStageFreezing`` does, in stage 2.
        num_classes: ``M``.
        transition_stage: first 3D stage; the CSN is a fresh copy of ``transition_stage`` …
            ``feature_stage`` fed by the previous stage's output (the shared 2D part). The paper
            puts the 2D→3D transition between ResNet groups 1 and 2, i.e. ``"stage4"``.
        num_confusing: ``N``, mean number of positives per CSM column, diagonal included (see
            :func:`binarize_similarity`). Default 5.
        reg_weight: λ for the category regulariser (0.5 in §IV-B).
        stage: 1, 2 or 3, the training stage (see the module docstring). Stage 1 returns only the
            ``universal`` branch.
        dropout: dropout before the universal and specific classifiers.
        distance: ``f_dist`` of eq. 2 (``"l1"``, ``"euclidean"``, ``"cosine"``).
        mask_activation: ``"sigmoid"`` squashes each category mask to (0, 1) before averaging
            and weighting the CSN features (the paper does not name one; a soft attention gate as
            in the residual-attention work it cites keeps features' sign) or ``"none"``.
        feature_stage: the UN stage whose features feed the MN, the CSM statistics and the
            universal classifier (ResNet "group 3" = ``stage5``).
        csn_init: ``"random"`` (fresh copy, as every branching head here) or ``"backbone"``
            (start the CSN from the backbone's weights *at construction*, like the paper's CSN
            that starts from the same Kinetics-pretrained Res3D weights as the UN, §IV-B). When
            resuming stage 2 from a stage-1 checkpoint, the checkpoint's (random) CSN weights
            overwrite this copy, so it only matters for a head built on a pretrained backbone.
        reg_similarity: ``s(·,·)`` of the category regulariser (eq. 4): ``"cosine"`` (clamped
            cosine, default) or ``"distance"`` (eq. 2's ``1 − f_dist`` with ``distance``); see
            :func:`weight_similarity`.

    Output logits (``[B, M]`` each): ``universal``; with ``stage >= 2`` also ``bridge``,
    ``specific`` and ``fused``. ``fused`` holds ``log(mean_k softmax(z_k))`` over the three
    branches — log-probabilities, so ``softmax(fused)`` is exactly the paper's averaged score
    and its argmax is the fused prediction. Final branch: ``universal`` in stage 1, else
    ``fused``. Extras (stage ≥ 2): ``mask`` ``[B, 1, T, H, W]`` (the selected, averaged mask) and
    ``guide`` ``[B]`` (the class whose CSM column selected it).

    The CSM lives in the buffers ``csm`` ``[M, M]``, ``csm_is_set`` (bool), ``csm_similarity``
    (``S``) and ``csm_threshold`` (α), so checkpoints carry it. Fill it with
    :meth:`update_csm_statistics` over the training set then :meth:`compute_csm` (the
    ``CategorySimilarityCallback`` does that, across DDP ranks). Until it is set the identity is
    used (only the predicted class's own mask).
    """

    loss_branches = ("universal", "specific", "bridge")
    classifier_layers = ("universal_fc", "specific_fc", "mask_conv", "csm", "csm_is_set",
                         "csm_similarity", "csm_threshold")
    source_classifier = "universal_fc"

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        transition_stage: str = "stage4",
        num_confusing: float = 5,
        reg_weight: NonNegativeFloat = 0.5,
        stage: Literal[1, 2, 3] = 3,
        dropout: DropoutRate = 0.5,
        distance: Distance = "l1",
        mask_activation: Literal["sigmoid", "none"] = "sigmoid",
        feature_stage: str = "stage5",
        csn_init: Literal["random", "backbone"] = "random",
        reg_similarity: RegSimilarity = "cosine",
    ) -> None:
        super().__init__(num_classes)
        stage_names = list(backbone.stage_names)
        for name, value in (
            ("transition_stage", transition_stage),
            ("feature_stage", feature_stage),
        ):
            if value not in stage_names:
                raise ValueError(f"{name}={value!r} is not a backbone stage ({stage_names})")
        first = stage_names.index(transition_stage)
        if first == 0 or first > stage_names.index(feature_stage):
            raise ValueError(
                f"transition_stage={transition_stage!r} must come after {stage_names[0]!r} and "
                f"not after feature_stage={feature_stage!r}"
            )
        if csn_init not in ("random", "backbone"):
            raise ValueError(f"csn_init must be 'random' or 'backbone', got {csn_init!r}")
        if stage not in (1, 2, 3):
            raise ValueError(f"stage must be 1, 2 or 3, got {stage!r}")
        if not 1 <= num_confusing <= num_classes:
            raise ValueError(f"num_confusing must be in [1, {num_classes}], got {num_confusing}")
        if reg_similarity not in ("cosine", "distance"):
            raise ValueError(
                f"reg_similarity must be 'cosine' or 'distance', got {reg_similarity!r}")
        if reg_weight < 0:
            raise ValueError(f"reg_weight must be >= 0, got {reg_weight}")
        if distance not in ("l1", "euclidean", "cosine"):
            raise ValueError(f"distance must be 'l1', 'euclidean' or 'cosine', got {distance!r}")
        if mask_activation not in ("sigmoid", "none"):
            raise ValueError(
                f"mask_activation must be 'sigmoid' or 'none', got {mask_activation!r}"
            )

        self.stage = int(stage)
        self.num_confusing = num_confusing
        self.reg_weight = reg_weight
        self.reg_similarity: RegSimilarity = reg_similarity
        self.distance: Distance = distance
        self.mask_activation = mask_activation
        self.feature_stage = feature_stage
        self.transition_stage = transition_stage
        self.csn_input_stage = stage_names[first - 1]
        channels = backbone.out_channels[feature_stage]

        # universal network classifier
        self.universal_dropout = nn.Dropout(dropout)
        self.universal_fc = nn.Linear(channels, num_classes)
        # category-specific network: fresh copy of the 3D stages (Fig. 2) + its classifier
        self.csn = backbone.copy_stages(transition_stage, feature_stage)
        self.csn_init = csn_init
        if csn_init == "backbone":
            load_backbone_stage_weights(backbone, self.csn)
        self.specific_dropout = nn.Dropout(dropout)
        self.specific_fc = nn.Linear(channels, num_classes)
        # mask network: conv1×1×1 D → M category masks (Fig. 3); its weight rows are the w_i
        self.mask_conv = nn.Conv3d(channels, num_classes, kernel_size=1)
        for fc in (self.universal_fc, self.specific_fc):
            nn.init.normal_(fc.weight, std=0.01)
            nn.init.zeros_(fc.bias)

        m = num_classes
        self.register_buffer("csm", torch.eye(m))
        self.register_buffer("csm_is_set", torch.tensor(False))
        self.register_buffer("csm_similarity", torch.zeros(m, m))
        self.register_buffer("csm_threshold", torch.tensor(float("nan")))
        # running sums for eq. 1–2; not persistent: only the resulting CSM belongs in checkpoints
        self.register_buffer(
            "csm_sparsity_sum", torch.zeros(m, channels, dtype=torch.float64), persistent=False
        )
        self.register_buffer("csm_count", torch.zeros(m, dtype=torch.float64), persistent=False)
        self._warned_unset = False
        self._warned_trainable = False

    def backbone_copies(self) -> dict[str, nn.Module]:
        return {"csn": self.csn} if self.csn_init == "backbone" else {}

    @property
    def branches(self) -> tuple[str, ...]:
        if self.stage == 1:
            return ("universal",)
        return ("universal", "bridge", "specific", "fused")

    @property
    def final_branch(self) -> str:
        return "universal" if self.stage == 1 else "fused"

    # ------------------------------------------------------------------ training stages
    @property
    def universal_modules(self) -> list[nn.Module]:
        """This head's part of the universal network (its classifier); the backbone, which the
        head does not own, is the rest. ``U2SStageFreezing`` freezes both in stage 2."""
        return [self.universal_fc, self.universal_dropout]

    @property
    def specific_modules(self) -> list[nn.Module]:
        """The mask network and the category-specific network with its classifier (not run in
        stage 1, where ``U2SStageFreezing`` freezes them)."""
        return [self.csn, self.specific_fc, self.specific_dropout, self.mask_conv]

    # ------------------------------------------------------------------ CSM (eqs. 1–2)
    @torch.no_grad()
    def reset_csm_statistics(self) -> None:
        """Zero the running per-class sparsity sums (float64 again even after ``.half()``)."""
        for name in ("csm_sparsity_sum", "csm_count"):
            buffer = getattr(self, name)
            setattr(self, name, torch.zeros_like(buffer, dtype=torch.float64))

    @torch.no_grad()
    def update_csm_statistics(self, features: dict[str, Tensor], target: Tensor) -> None:
        """Add a batch's per-sample channel sparsity (eq. 1) to its classes' running sums.

        ``features``: the backbone's stage dict; ``target``: ``[B]`` class ids.
        """
        sparsity = channel_sparsity(features[self.feature_stage]).to(self.csm_sparsity_sum)
        self.csm_sparsity_sum.index_add_(0, target, sparsity)
        self.csm_count.index_add_(0, target, torch.ones_like(target, dtype=self.csm_count.dtype))

    @torch.no_grad()
    def compute_csm(
        self, sparsity_sum: Tensor | None = None, count: Tensor | None = None
    ) -> Tensor:
        """Set the CSM from (gathered) statistics; defaults to this module's running sums.

        ``sparsity_sum``: ``[M, D]`` summed Ξ per class; ``count``: ``[M]`` samples per class.
        Classes without samples are confused with nothing (and warned about). Returns the CSM.
        """
        sparsity_sum = self.csm_sparsity_sum if sparsity_sum is None else sparsity_sum
        count = self.csm_count if count is None else count
        valid = count > 0
        if not bool(valid.any()):
            raise RuntimeError("no CSM statistics accumulated: call update_csm_statistics first")
        if not bool(valid.all()):
            missing = torch.nonzero(~valid).flatten().tolist()
            warnings.warn(
                f"CSM: {len(missing)} classes have no training samples ({missing[:10]}…); they "
                "are marked confusable with no other class",
                stacklevel=2,
            )
        mean = (sparsity_sum / count.clamp(min=1).unsqueeze(1)).float()  # Ξ_m, [M, D]
        similarity = category_similarity(mean, self.distance)
        csm, alpha = binarize_similarity(similarity, self.num_confusing, valid)
        self.csm.copy_(csm)
        self.csm_similarity.copy_(similarity)
        self.csm_threshold.fill_(alpha)
        self.csm_is_set.fill_(True)
        return self.csm

    def set_csm(self, csm: Tensor) -> None:
        """Use a given binary, symmetric CSM ``[M, M]`` (ones on the diagonal are enforced)."""
        csm = csm.to(self.csm).clone()
        if csm.shape != self.csm.shape:
            raise ValueError(f"CSM must be {tuple(self.csm.shape)}, got {tuple(csm.shape)}")
        csm.fill_diagonal_(1.0)
        with torch.no_grad():
            self.csm.copy_(csm)
            self.csm_is_set.fill_(True)

    # ------------------------------------------------------------------ forward
    def select_mask(self, masks: Tensor, guide: Tensor) -> Tensor:
        """Average the masks of the classes in the CSM column of ``guide`` (§III-A, Fig. 3).

        ``masks``: ``[B, M, T, H, W]`` (activated); ``guide``: ``[B]`` class ids →
        ``[B, 1, T, H, W]``.
        """
        column = rearrange(self.csm[:, guide], "m b -> b m")  # C[:, i]: classes confused with i
        weights = column / column.sum(dim=1, keepdim=True)  # ≥ 1 positive: the diagonal
        return torch.einsum("bm,bmthw->bthw", weights.to(masks.dtype), masks).unsqueeze(1)

    def universal_logits(self, features: dict[str, Tensor]) -> Tensor:
        """The universal network's prediction ``[B, M]`` alone (GAP, dropout, dense)."""
        pooled = reduce(features[self.feature_stage], "b d t h w -> b d", "mean")
        return self.universal_fc(self.universal_dropout(pooled))

    def forward(self, features: dict[str, Tensor], guide: Tensor | None = None) -> HeadOutput:
        """Stage dict → ``HeadOutput`` (see class docstring).

        ``guide``: optional ``[B]`` class ids that select the masks instead of the universal
        prediction — pass the labels for the paper's "oracle" upper bound (Table III f).
        """
        universal = features[self.feature_stage]  # [B, D, T, H, W]
        z_universal = self.universal_logits(features)
        if self.stage == 1:
            return HeadOutput(logits={"universal": z_universal}, final=self.final_branch)

        if (self.training and self.stage == 2 and universal.requires_grad
                and not self._warned_trainable):
            warnings.warn(
                "U2SHead(stage=2): the universal network is being trained; stage 2 trains only "
                "the mask and category-specific networks — add "
                "lightning_modules.callbacks.U2SStageFreezing", stacklevel=2)
            self._warned_trainable = True
        if self.training and not bool(self.csm_is_set) and not self._warned_unset:
            warnings.warn(
                "U2SHead: the category similarity matrix is not set, so each sample uses only "
                "its predicted class's mask; add CategorySimilarityCallback to compute it",
                stacklevel=2,
            )
            self._warned_unset = True

        mask_logits = self.mask_conv(universal)  # [B, M, T, H, W]
        z_bridge = reduce(mask_logits, "b m t h w -> b m", "mean")
        masks = torch.sigmoid(mask_logits) if self.mask_activation == "sigmoid" else mask_logits
        if guide is None:
            guide = z_universal.detach().argmax(dim=1)
        mask = self.select_mask(masks, guide)  # [B, 1, T, H, W]

        specific = self.csn(features[self.csn_input_stage])  # [B, D, T, H, W]
        if specific.shape[2:] != mask.shape[2:]:
            raise RuntimeError(
                f"category-specific features {tuple(specific.shape[2:])} and universal features "
                f"{tuple(mask.shape[2:])} differ in T×H×W; the CSN must mirror the backbone"
            )
        pooled_specific = reduce(specific * mask, "b d t h w -> b d", "mean")
        z_specific = self.specific_fc(self.specific_dropout(pooled_specific))

        log_probs = torch.stack(
            [F.log_softmax(z, dim=1) for z in (z_universal, z_bridge, z_specific)]
        )
        z_fused = torch.logsumexp(log_probs, dim=0) - math.log(3)  # log of the mean probability
        return HeadOutput(
            logits={
                "universal": z_universal,
                "bridge": z_bridge,
                "specific": z_specific,
                "fused": z_fused,
            },
            final=self.final_branch,
            extras={"mask": mask.detach(), "guide": guide},
        )

    # ------------------------------------------------------------------ loss (eqs. 3–6)
    def weight_similarity(self) -> Tensor:
        """``S^w`` (eq. 4): ``[M, M]`` similarity of the mask-conv weight vectors ``w_i``, in
        [0, 1] as eq. 4 requires (:func:`weight_similarity`, ``reg_similarity``)."""
        return weight_similarity(self.mask_conv.weight.flatten(1), self.reg_similarity,
                                 self.distance)

    def category_regularization(self) -> Tensor:
        """``w_regular`` (eqs. 5–6): mean ``S^w`` over the confusing pairs ``M = C − I``."""
        pairs = self.csm - torch.eye(self.num_classes, device=self.csm.device, dtype=self.csm.dtype)
        num_pos = pairs.sum()
        if num_pos == 0:
            return self.mask_conv.weight.new_zeros(())
        return (self.weight_similarity() * pairs).sum() / num_pos

    def loss(self, output: HeadOutput, target: Tensor) -> dict[str, Tensor]:
        """``loss_universal``, ``loss_specific``, ``loss_bridge``, ``loss_regular`` and ``loss``.

        ``loss = L_U + L_C + L_M + λ·w_regular`` (eq. 3); in stage 1 only ``L_U``. In stage 2
        ``L_U`` has no gradient (frozen UN) but stays in the total so it reads the same in every
        stage.
        """
        losses = {"loss_universal": F.cross_entropy(output.logits["universal"], target)}
        if "specific" not in output.logits:
            losses["loss"] = losses["loss_universal"]
            return losses
        losses["loss_specific"] = F.cross_entropy(output.logits["specific"], target)
        losses["loss_bridge"] = F.cross_entropy(output.logits["bridge"], target)
        losses["loss_regular"] = self.category_regularization()
        losses["loss"] = (
            losses["loss_universal"]
            + losses["loss_specific"]
            + losses["loss_bridge"]
            + self.reg_weight * losses["loss_regular"]
        )
        return losses


__all__ = [
    "U2SHead",
    "binarize_similarity",
    "category_similarity",
    "channel_sparsity",
    "weight_similarity",
]
