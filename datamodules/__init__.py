"""Video data for Lightning: records, samplers, decoders, transforms and one datamodule per source.

Imports neither ``models`` nor ``lightning_modules``: usable on its own in other projects.
"""

from datamodules.base import VideoDataModule
from datamodules.dataset import VideoDataset
from datamodules.records import VideoRecord
from datamodules.synthetic import SyntheticFineGrainedDataModule

__all__ = [
    "SyntheticFineGrainedDataModule",
    "VideoDataModule",
    "VideoDataset",
    "VideoRecord",
]
