"""Fine-grained heads: each is ``Head(backbone, num_classes, **options)`` → ``HeadOutput``."""

from models.heads.base import Head, HeadOutput
from models.heads.dfb import DFBHead
from models.heads.gap import GAPHead
from models.heads.u2s import U2SHead

__all__ = ["DFBHead", "GAPHead", "Head", "HeadOutput", "U2SHead"]
