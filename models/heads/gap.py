"""Global-average-pooling baseline head (the dfb paper's "GB" global branch, §3)."""

from __future__ import annotations

from torch import Tensor, nn

from models.heads.base import DropoutRate, Head, HeadOutput


class GAPHead(Head):
    """Average over T×H×W of ``stage5``, dropout, linear.

    With a 2D backbone the T frames are pooled together, which is TSN's average consensus
    over segments (the unified-analysis paper's TSN).

    Args:
        backbone: any backbone exposing ``out_channels[in_stage]``.
        num_classes: number of classes.
        dropout: dropout before the classifier (0.5 in the dfb and unified-analysis papers).
        in_stage: which stage's feature map to pool.
    """

    loss_branches = ("avg",)
    classifier_layers = ("fc",)
    source_classifier = "fc"

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        dropout: DropoutRate = 0.5,
        in_stage: str = "stage5",
    ) -> None:
        super().__init__(num_classes)
        self.in_stage = in_stage
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(backbone.out_channels[in_stage], num_classes)
        nn.init.normal_(self.fc.weight, std=0.01)
        nn.init.zeros_(self.fc.bias)

    def forward(self, features: dict[str, Tensor]) -> HeadOutput:
        """``features[in_stage]``: ``[B, C, T, H, W]`` → ``logits["avg"]``: ``[B, num_classes]``."""
        pooled = features[self.in_stage].mean(dim=(2, 3, 4))
        return HeadOutput(logits={"avg": self.fc(self.dropout(pooled))}, final=self.final_branch)
