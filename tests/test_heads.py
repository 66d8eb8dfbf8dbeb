"""DFBHead and U2SHead on tiny backbones (issue 8 acceptance; dfb §3, u2s §III)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lightning_modules.callbacks import U2SStageFreezing
from models import VideoResNet
from models.heads import DFBHead, GAPHead, U2SHead
from models.heads.u2s import binarize_similarity, weight_similarity

NUM_CLASSES = 6
CLIP = (2, 3, 8, 64, 64)  # stage4 4×4, stage5 2×2: enough room for argmax locations


def tiny_backbone(temporal: str = "i3d") -> VideoResNet:
    return VideoResNet(depth=18, temporal=temporal, width_multiplier=0.125)


@pytest.fixture(scope="module")
def clip() -> torch.Tensor:
    return torch.randn(*CLIP, generator=torch.Generator().manual_seed(0))


def features_of(backbone: nn.Module, clip: torch.Tensor) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        return backbone.eval()(clip)


# ---------------------------------------------------------------------------- DFB
@pytest.mark.parametrize("temporal", ["i3d", "none"])
@pytest.mark.parametrize("local_branch", [True, False])
def test_dfb_comb_is_sum_and_loss_is_four_terms(temporal, local_branch, clip):
    torch.manual_seed(0)
    backbone = tiny_backbone(temporal)
    head = DFBHead(backbone, NUM_CLASSES, filters_per_class=3, local_branch=local_branch)
    out = head.eval()(features_of(backbone, clip))
    assert set(out.logits) == {"avg", "xchannel", "max", "comb"} and out.final == "comb"
    z = out.logits
    torch.testing.assert_close(z["comb"], z["avg"] + z["xchannel"] + z["max"])
    target = torch.tensor([1, 4])
    losses = head.loss(out, target)
    expected = {b: F.cross_entropy(z[b], target) for b in ("comb", "avg", "max", "xchannel")}
    for branch, value in expected.items():
        torch.testing.assert_close(losses[f"loss_{branch}"], value)
    torch.testing.assert_close(losses["loss"], sum(expected.values()))
    assert set(losses) == {"loss", "loss_comb", "loss_avg", "loss_max", "loss_xchannel"}


@pytest.mark.parametrize("local_branch", [True, False])
def test_2d_dfb_clip_scores_are_the_mean_of_its_per_frame_scores(local_branch, clip):
    """dfb §3.2 / §4.2: on a 2D (TSN) backbone every frame is scored alone, then averaged."""
    torch.manual_seed(0)
    backbone = tiny_backbone("none")
    assert backbone.is_2d and not tiny_backbone("i3d").is_2d
    head = DFBHead(backbone, NUM_CLASSES, filters_per_class=3, local_branch=local_branch).eval()
    assert head.per_frame
    with torch.no_grad():
        out = head(features_of(backbone, clip))
        # each frame as its own one-frame clip through backbone and head
        per_frame = [head(features_of(backbone, clip[:, :, t : t + 1])) for t in
                     range(clip.shape[2])]
    for branch in head.branches:
        expected = torch.stack([o.logits[branch] for o in per_frame]).mean(0)
        torch.testing.assert_close(out.logits[branch], expected, rtol=1e-4, atol=1e-5)
    # the extras name each filter's strongest frame and its place in that frame
    responses = torch.stack([o.extras["filter_response"] for o in per_frame], 1)  # [B, T, F]
    strongest, frame = responses.max(1)
    torch.testing.assert_close(out.extras["filter_response"], strongest)
    location = out.extras["filter_location"]
    assert torch.equal(location[..., 0], frame)
    for b, f in ((0, 0), (1, 5)):
        t = int(frame[b, f])
        assert torch.equal(location[b, f, 1:], per_frame[t].extras["filter_location"][b, f, 1:])


@pytest.mark.parametrize("local_branch", [True, False])
def test_dfb_xchannel_depends_only_on_own_filters(local_branch, clip):
    torch.manual_seed(0)
    backbone = tiny_backbone()
    n = 3
    head = DFBHead(backbone, NUM_CLASSES, filters_per_class=n, local_branch=local_branch).eval()
    feats = features_of(backbone, clip)
    with torch.no_grad():
        before = head(feats).logits["xchannel"]
        other = slice(2 * n, 3 * n)  # class 2's filters
        for weight in (head.filters_main, head.filters_skip, head.filters_bias):
            if weight is not None:
                weight[other] += torch.randn_like(weight[other])
        after = head(feats).logits["xchannel"]
    keep = [c for c in range(NUM_CLASSES) if c != 2]
    torch.testing.assert_close(after[:, keep], before[:, keep], rtol=0, atol=0)
    assert not torch.allclose(after[:, 2], before[:, 2])


def test_dfb_local_branch_is_fresh_copy_not_backbone_weights():
    torch.manual_seed(0)
    backbone = tiny_backbone()
    head = DFBHead(backbone, NUM_CLASSES)
    backbone_ptrs = {p.data_ptr() for p in backbone.parameters()}
    local = dict(head.local.stages["stage5"].named_parameters())
    source = dict(backbone.stage5.named_parameters())
    assert local.keys() == source.keys()
    assert not backbone_ptrs & {p.data_ptr() for p in head.parameters()}
    differs = [n for n, p in local.items() if p.dim() > 1 and not torch.equal(p, source[n])]
    assert differs, "random (§4.2) local branch equals the backbone's stage5"
    # the other §4.2 choice: start from the backbone's weights, still separate storage
    copied = DFBHead(backbone, NUM_CLASSES, local_init="backbone")
    for name, p in copied.local.stages["stage5"].named_parameters():
        assert torch.equal(p, source[name]) and p.data_ptr() != source[name].data_ptr()


def test_dfb_filter_bank_equals_conv_over_concatenation(clip):
    """The factored computation is the paper's 1×1×1 conv over cat(stage4, up(local)) + max."""
    torch.manual_seed(0)
    backbone = tiny_backbone()
    head = DFBHead(backbone, NUM_CLASSES, filters_per_class=2).eval()
    feats = features_of(backbone, clip)
    with torch.no_grad():
        out = head(feats)
        skip = feats["stage4"]
        up = F.interpolate(
            head.local(skip), size=skip.shape[2:], mode="trilinear", align_corners=False
        )
        volume = torch.cat([skip, up], dim=1)  # [B, 3072-analogue, T, H4, W4]
        weight = head.filter_weight[:, :, None, None, None]
        responses = F.conv3d(volume, weight, head.filters_bias)  # [B, C·N, T, H, W]
        reference, flat = responses.flatten(2).max(dim=2)
    torch.testing.assert_close(out.extras["filter_response"], reference, atol=1e-5, rtol=1e-5)
    loc = out.extras["filter_location"]
    assert loc.shape == (CLIP[0], NUM_CLASSES * 2, 3) and loc.dtype == torch.long
    t, y, x = loc.unbind(-1)
    picked = responses[torch.arange(CLIP[0])[:, None], torch.arange(NUM_CLASSES * 2)[None], t, y, x]
    torch.testing.assert_close(picked, reference, atol=1e-5, rtol=1e-5)
    assert flat.shape == t.shape


def test_dfb_trains_all_its_parts(clip):
    torch.manual_seed(0)
    backbone = tiny_backbone("none")  # 2D (TSN) backbone: T folded inside
    head = DFBHead(backbone, NUM_CLASSES)
    out = head(backbone(clip))
    head.loss(out, torch.tensor([0, 5]))["loss"].backward()
    for name, p in [*head.named_parameters(), *backbone.named_parameters()]:
        assert p.grad is not None, name


def test_gap_head_still_works(clip):
    backbone = tiny_backbone()
    out = GAPHead(backbone, NUM_CLASSES)(features_of(backbone, clip))
    assert out.final == "avg" and out.final_logits.shape == (CLIP[0], NUM_CLASSES)


# ---------------------------------------------------------------------------- U2S: CSM
@pytest.mark.parametrize(("m", "n"), [(10, 5), (12, 3), (7, 3), (6, 1)])
def test_csm_mean_positives_symmetric_ones_on_diagonal(m, n):
    torch.manual_seed(m)
    backbone = tiny_backbone()
    head = U2SHead(backbone, m, num_confusing=n)
    d = backbone.out_channels["stage5"]
    counts = torch.randint(1, 5, (m,)).double()
    sums = torch.rand(m, d, dtype=torch.float64) * counts[:, None]
    csm = head.compute_csm(sums, counts)
    assert bool(head.csm_is_set)
    assert torch.equal(csm, csm.T)
    assert torch.equal(csm.diagonal(), torch.ones(m))
    assert set(csm.unique().tolist()) <= {0.0, 1.0}
    assert csm.sum(0).mean().item() == pytest.approx(n)  # M·(N−1) even in every case here
    # α separates the selected pairs from the rest
    s, off = head.csm_similarity, ~torch.eye(m, dtype=torch.bool)
    alpha = head.csm_threshold.item()
    if n > 1:
        assert (s[off & (csm == 1)] >= alpha).all() and (s[off & (csm == 0)] <= alpha).all()


def test_csm_from_backbone_statistics_and_checkpoint_roundtrip(clip):
    torch.manual_seed(0)
    backbone = tiny_backbone()
    head = U2SHead(backbone, 4, num_confusing=2)
    feats = features_of(backbone, torch.cat([clip, clip.flip(3)]))
    head.update_csm_statistics(feats, torch.tensor([0, 1, 2, 3]))
    head.compute_csm()
    assert head.csm.sum(0).mean().item() == pytest.approx(2)
    state = head.state_dict()
    assert {"csm", "csm_is_set", "csm_similarity", "csm_threshold"} <= state.keys()
    assert "csm_sparsity_sum" not in state  # running sums are not checkpoint material
    fresh = U2SHead(tiny_backbone(), 4, num_confusing=2)
    assert not bool(fresh.csm_is_set)
    fresh.load_state_dict(state)
    assert bool(fresh.csm_is_set) and torch.equal(fresh.csm, head.csm)


def test_binarize_one_confusing_is_identity():
    csm, alpha = binarize_similarity(torch.rand(5, 5), 1)
    assert torch.equal(csm, torch.eye(5)) and alpha == float("inf")


# ---------------------------------------------------------------------------- U2S: forward
def test_mask_is_selected_from_predicted_class_column(clip):
    torch.manual_seed(0)
    backbone = tiny_backbone()
    m = 5
    head = U2SHead(backbone, m).eval()
    # deliberately asymmetric so that column and row differ: column 3 = {0, 3, 4}
    csm = torch.eye(m)
    csm[[0, 4], 3] = 1.0
    csm[3, 1] = 1.0  # row 3 would add class 1
    head.set_csm(csm)
    with torch.no_grad():
        head.universal_fc.weight.zero_()
        head.universal_fc.bias.copy_(F.one_hot(torch.tensor(3), m).float())  # predict class 3
        feats = features_of(backbone, clip)
        out = head(feats)
        masks = torch.sigmoid(head.mask_conv(feats["stage5"]))  # [B, M, T, H, W]
    assert out.extras["guide"].tolist() == [3, 3]
    expected = masks[:, [0, 3, 4]].mean(dim=1, keepdim=True)
    assert out.extras["mask"].shape == (CLIP[0], 1, *feats["stage5"].shape[2:])
    torch.testing.assert_close(out.extras["mask"], expected)
    # an explicit guide (the paper's oracle, Table III f) picks that column instead
    with torch.no_grad():
        oracle = head(feats, guide=torch.tensor([2, 1]))
    torch.testing.assert_close(oracle.extras["mask"][0], masks[0, [2]].mean(0, keepdim=True))
    torch.testing.assert_close(oracle.extras["mask"][1], masks[1, [1, 3]].mean(0, keepdim=True))


def test_regulariser_zero_for_orthogonal_confusing_weights():
    torch.manual_seed(0)
    backbone = tiny_backbone()
    m = 4
    head = U2SHead(backbone, m, num_confusing=2)
    csm = torch.eye(m)
    csm[0, 1] = csm[1, 0] = csm[2, 3] = csm[3, 2] = 1.0
    head.set_csm(csm)
    d = head.mask_conv.weight.shape[1]
    with torch.no_grad():
        w = torch.randn(m, d)
        w[1] -= (w[1] @ w[0]) / (w[0] @ w[0]) * w[0]  # 1 ⟂ 0
        w[3] -= (w[3] @ w[2]) / (w[2] @ w[2]) * w[2]  # 3 ⟂ 2
        head.mask_conv.weight.copy_(w[:, :, None, None, None])
    assert head.category_regularization().item() == pytest.approx(0.0, abs=1e-6)
    with torch.no_grad():  # identical weights for the confusing pairs: maximal, 1
        head.mask_conv.weight[1] = head.mask_conv.weight[0]
        head.mask_conv.weight[3] = 2 * head.mask_conv.weight[2]
    assert head.category_regularization().item() == pytest.approx(1.0, abs=1e-6)


def test_u2s_loss_is_eq3_and_fused_is_log_mean_probability(clip):
    torch.manual_seed(0)
    backbone = tiny_backbone()
    head = U2SHead(backbone, NUM_CLASSES, num_confusing=3, reg_weight=0.5)
    head.set_csm(torch.ones(NUM_CLASSES, NUM_CLASSES))
    out = head(backbone(clip))
    assert set(out.logits) == {"universal", "bridge", "specific", "fused"}
    assert out.final == "fused"
    z = out.logits
    mean_prob = torch.stack([z[b].softmax(1) for b in ("universal", "bridge", "specific")]).mean(0)
    torch.testing.assert_close(z["fused"].exp(), mean_prob)
    target = torch.tensor([2, 3])
    losses = head.loss(out, target)
    assert set(losses) == {"loss", "loss_universal", "loss_specific", "loss_bridge", "loss_regular"}
    expected = (
        F.cross_entropy(z["universal"], target)
        + F.cross_entropy(z["specific"], target)
        + F.cross_entropy(z["bridge"], target)
        + 0.5 * head.category_regularization()
    )
    torch.testing.assert_close(losses["loss"], expected)
    assert losses["loss_regular"] > 0  # random weights of confusing classes are not orthogonal
    losses["loss"].backward()
    assert head.mask_conv.weight.grad is not None and head.csn.stages["stage4"] is not None


# ---------------------------------------------------------------------------- U2S: stages
def _trainable(module: nn.Module) -> bool:
    return all(p.requires_grad for p in module.parameters())


def _frozen(module: nn.Module) -> bool:
    return not any(p.requires_grad for p in module.parameters())


def _stage_model(stage: int, **options) -> nn.Module:
    """A backbone + U2S head pair as the recognizer holds them, frozen by the stage callback."""
    backbone = tiny_backbone()
    model = nn.ModuleDict({"backbone": backbone,
                           "head": U2SHead(backbone, NUM_CLASSES, stage=stage, **options)})
    U2SStageFreezing().freeze_before_training(model)
    return model


def test_u2s_stage1_universal_only(clip):
    model = _stage_model(1)
    backbone, head = model["backbone"], model["head"]
    out = head(backbone(clip))
    assert set(out.logits) == {"universal"} and out.final == "universal"
    assert set(head.loss(out, torch.tensor([0, 1]))) == {"loss", "loss_universal"}
    assert _trainable(backbone) and _trainable(head.universal_fc)
    assert _frozen(head.csn) and _frozen(head.mask_conv) and _frozen(head.specific_fc)


def test_u2s_stage2_freezes_universal_network(clip):
    model = _stage_model(2, transition_stage="stage3")
    backbone, head = model["backbone"], model["head"]
    assert head.csn_input_stage == "stage2" and list(head.csn.stages) == [
        "stage3",
        "stage4",
        "stage5",
    ]
    assert _frozen(backbone) and _frozen(head.universal_fc)
    assert _trainable(head.csn) and _trainable(head.mask_conv) and _trainable(head.specific_fc)
    assert not backbone.training and not head.universal_dropout.training
    running = backbone.stage1.bn.running_mean.clone()
    with pytest.warns(UserWarning, match="not set"):  # no CSM yet: told, not silent
        out = head(backbone(clip))
    assert torch.equal(backbone.stage1.bn.running_mean, running)  # eval: statistics kept
    head.loss(out, torch.tensor([0, 1]))["loss"].backward()
    assert all(p.grad is None for p in backbone.parameters())


def test_u2s_stage2_without_the_freezing_callback_warns(clip):
    backbone = tiny_backbone()
    head = U2SHead(backbone, NUM_CLASSES, stage=2)
    head.set_csm(torch.eye(NUM_CLASSES))
    with pytest.warns(UserWarning, match="U2SStageFreezing"):
        head.train()(backbone.train()(clip))


def test_u2s_stage3_trains_everything():
    backbone = tiny_backbone()
    head = U2SHead(backbone, NUM_CLASSES, stage=3)
    assert _trainable(backbone) and _trainable(head)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"stage": 4},
        {"num_confusing": 0},
        {"transition_stage": "stage1"},
        {"transition_stage": "stage9"},
        {"distance": "manhattan"},
    ],
)
def test_u2s_rejects_bad_config(kwargs):
    with pytest.raises(ValueError):
        U2SHead(tiny_backbone(), NUM_CLASSES, **kwargs)


def test_dfb_rejects_bad_config():
    with pytest.raises(ValueError):
        DFBHead(tiny_backbone(), NUM_CLASSES, filters_per_class=0)


@pytest.mark.parametrize(
    "make",
    [
        lambda bb: GAPHead(bb, NUM_CLASSES),
        lambda bb: DFBHead(bb, NUM_CLASSES),
        lambda bb: DFBHead(bb, NUM_CLASSES, local_branch=False),
        lambda bb: U2SHead(bb, NUM_CLASSES, stage=1),
        lambda bb: U2SHead(bb, NUM_CLASSES, stage=3),
    ],
)
def test_branches_and_final_branch_are_known_before_forward(make, clip):
    backbone = tiny_backbone()
    head = make(backbone).eval()
    with torch.no_grad():
        out = head(features_of(backbone, clip))
    assert tuple(out.logits) == head.branches and out.final == head.final_branch


def test_u2s_regulariser_similarity_cosine_and_eq2_form():
    """u2s eq. 4: S^w in [0, 1], 1 on the diagonal; clamped cosine (default) vs eq. 2's form."""
    w = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]])  # orthogonal, then opposite to w_0
    cosine = weight_similarity(w)
    torch.testing.assert_close(cosine, torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0],
                                                     [0.0, 0.0, 1.0]]))
    eq2 = weight_similarity(w, "distance", "euclidean")  # 1 − ‖ŵ_i − ŵ_j‖ / 2
    half = 1 - 2**0.5 / 2
    torch.testing.assert_close(eq2, torch.tensor([[1.0, half, 0.0], [half, 1.0, half],
                                                  [0.0, half, 1.0]]))
    for distance in ("l1", "cosine"):
        s = weight_similarity(torch.randn(5, 7), "distance", distance)
        assert s.min() >= 0 and s.max() <= 1 and torch.allclose(s.diagonal(), torch.ones(5))
    backbone = tiny_backbone()
    head = U2SHead(backbone, NUM_CLASSES, reg_similarity="distance", distance="euclidean")
    expected = weight_similarity(head.mask_conv.weight.flatten(1), "distance", "euclidean")
    torch.testing.assert_close(head.weight_similarity(), expected)
