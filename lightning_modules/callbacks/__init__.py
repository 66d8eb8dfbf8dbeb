"""Callbacks for what is not training: U2S category similarity, confusion analysis, visuals."""

from lightning_modules.callbacks.csm import CategorySimilarityCallback, InitWeightsFromCheckpoint

__all__ = ["CategorySimilarityCallback", "InitWeightsFromCheckpoint"]
