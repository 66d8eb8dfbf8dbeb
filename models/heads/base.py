"""What every head returns, and the shared loss convention."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from jsonargparse.typing import restricted_number_type
from torch import Tensor, nn

# a dropout probability, checked when a config is parsed (constructors check it for Python)
DropoutRate = restricted_number_type("DropoutRate", float, [(">=", 0), ("<", 1)])


@dataclass
class HeadOutput:
    """A head's predictions.

    Attributes:
        logits: one ``[B, num_classes]`` tensor per branch name.
        final: the branch whose prediction is *the* model's prediction (``val/acc1`` reads it).
        extras: anything else a callback may want (filter locations, masks …).
    """

    logits: dict[str, Tensor]
    final: str
    extras: dict[str, Tensor] = field(default_factory=dict)

    @property
    def final_logits(self) -> Tensor:
        return self.logits[self.final]


class Head(nn.Module):
    """Base class: ``Head(backbone, num_classes, **options)`` called on the backbone's stage dict.

    ``loss(output, target)`` returns per-branch losses named ``loss_<branch>`` plus ``"loss"``,
    the total that is optimised. The default is the sum of cross-entropies over all branches
    that are not derived from others (override ``loss_branches``).
    """

    #: branches that get their own cross-entropy term in the default loss
    loss_branches: tuple[str, ...] = ()
    #: parameters / buffers (name prefixes) whose shape follows the class count: fine-tuning onto
    #: another class count re-initialises them together (``VideoRecognizer(init_weights=…)``)
    classifier_layers: tuple[str, ...] = ()
    #: the linear layer that plays a plain network's classifier (torchvision's ``fc``)
    source_classifier: str | None = None

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.num_classes = num_classes

    @property
    def branches(self) -> tuple[str, ...]:
        """Names of the branches ``forward`` returns (known before any forward pass, so metrics
        per branch can be created up front). Default: ``loss_branches``."""
        return self.loss_branches

    @property
    def final_branch(self) -> str:
        """The branch whose prediction is *the* model's prediction (``val/acc1``,
        ``test/acc1_video`` read it), fixed by the head's configuration and equal to every
        forward's ``HeadOutput.final``. Default: the first of ``branches``."""
        return self.branches[0]

    def backbone_copies(self) -> dict[str, nn.Module]:
        """Child modules (by name) that start as copies of the backbone's stages; loading other
        weights into the backbone later (``init_weights``) copies them again."""
        return {}

    def loss(self, output: HeadOutput, target: Tensor) -> dict[str, Tensor]:
        branches = self.loss_branches or tuple(output.logits)
        losses = {
            f"loss_{name}": nn.functional.cross_entropy(output.logits[name], target)
            for name in branches
        }
        losses["loss"] = torch.stack(list(losses.values())).sum()
        return losses


def load_backbone_stage_weights(backbone: nn.Module, copy: nn.Module) -> None:
    """Load the backbone's current weights into a ``backbone.copy_stages(...)`` module.

    ``copy.stage_names`` names the copied stages; each ``copy.stages[name]`` receives
    ``backbone.<name>``'s state dict (strictly, so a structural mismatch is an error). Used by the
    heads' ``*_init="backbone"`` options; the default everywhere is a fresh random copy.
    """
    names = getattr(copy, "stage_names", None)
    stages = getattr(copy, "stages", None)
    if names is None or stages is None:
        raise TypeError(
            f"{type(copy).__name__} lacks stage_names/stages; cannot copy backbone weights into it"
        )
    for name in names:
        source = getattr(backbone, name, None)
        if not isinstance(source, nn.Module):
            raise AttributeError(f"backbone {type(backbone).__name__} has no stage module {name!r}")
        stages[name].load_state_dict(source.state_dict())
