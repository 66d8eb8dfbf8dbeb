"""Video data for Lightning: records, samplers, decoders, transforms and one datamodule per source.

Imports neither ``models`` nor ``lightning_modules``: usable on its own in other projects.
"""

from datamodules.annotated import AnnotatedVideoDataModule
from datamodules.annotations import AnnotationError
from datamodules.base import VideoDataModule
from datamodules.dataset import VideoDataset
from datamodules.folder import VideoFolderDataModule
from datamodules.kinetics import KineticsDataModule
from datamodules.records import VideoRecord
from datamodules.something import SomethingSomethingV1DataModule, SomethingSomethingV2DataModule
from datamodules.synthetic import SyntheticFineGrainedDataModule
from datamodules.ucf_hmdb import HMDB51DataModule, UCF101DataModule

__all__ = [
    "AnnotatedVideoDataModule",
    "AnnotationError",
    "HMDB51DataModule",
    "KineticsDataModule",
    "SomethingSomethingV1DataModule",
    "SomethingSomethingV2DataModule",
    "SyntheticFineGrainedDataModule",
    "UCF101DataModule",
    "VideoDataModule",
    "VideoDataset",
    "VideoFolderDataModule",
    "VideoRecord",
]
