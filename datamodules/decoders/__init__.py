"""Decoders: turn a ``VideoRecord`` and frame indices into ``uint8 [T, H, W, 3]`` frames.

Every backend has the same two methods (``Decoder``):

* ``num_frames(record) -> int``: frames that really decode (after ``start_sec``/``end_sec``
  trimming), cached per path in the calling process;
* ``read(record, indices) -> uint8 [T, H, W, 3]``: full resolution, RGB, in the order of
  ``indices`` (which may repeat and be unsorted); frame ``i`` is the ``i``-th frame a plain
  sequential decode yields.

Backends: ``"pyav"`` (default, always available), ``"torchcodec"`` (optional, needs the system
FFmpeg libraries), ``"frames"`` (folders of JPEG frames) and ``"flow"`` (folders of flow JPEGs,
read as stacks ``uint8 [T, H, W, 2 · flow_length]``: ``datamodules.decoders.flow``). A file
that cannot be read raises ``DecodeError``, which names the file; the dataset decides whether
to skip or stop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from torch import Tensor

from datamodules.records import VideoRecord

__all__ = ["DecodeError", "Decoder", "Indices", "get_decoder", "available_decoders"]

Indices = Sequence[int] | Tensor


class DecodeError(RuntimeError):
    """A video (file or frame folder) that cannot give the requested frames.

    Attributes:
        path: the file or folder.
        reason: what went wrong, in words.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason

    def __reduce__(self):  # keeps the two-argument form picklable across DataLoader workers
        return (type(self), (self.path, self.reason))


@runtime_checkable
class Decoder(Protocol):
    """What the dataset needs from a backend."""

    def num_frames(self, record: VideoRecord) -> int:
        """Frames that decode in the record's window."""
        ...

    def read(self, record: VideoRecord, indices: Indices) -> Tensor:
        """``uint8 [len(indices), H, W, 3]`` in the order of ``indices``."""
        ...


def get_decoder(name: str = "pyav", **options: Any) -> Decoder:
    """Build a decoder by name: ``"pyav"``, ``"torchcodec"``, ``"frames"`` or ``"flow"``.

    ``options`` go to the backend's constructor (e.g. ``thread_count`` for PyAV,
    ``template``/``start_index`` for frames). Backends are imported lazily so that an optional
    one (torchcodec) costs nothing when unused.
    """
    if name == "pyav":
        from datamodules.decoders.pyav import PyAVDecoder

        return PyAVDecoder(**options)
    if name == "torchcodec":
        from datamodules.decoders.torchcodec import TorchCodecDecoder

        return TorchCodecDecoder(**options)
    if name == "frames":
        from datamodules.decoders.frames import FrameFolderDecoder

        return FrameFolderDecoder(**options)
    if name == "flow":
        from datamodules.decoders.flow import FlowFolderDecoder

        return FlowFolderDecoder(**options)
    raise ValueError(f"unknown video backend {name!r}; choose 'pyav', 'torchcodec', 'frames' "
                     "or 'flow'")


def available_decoders() -> list[str]:
    """Backends usable on this machine (torchcodec only when it and FFmpeg load)."""
    from datamodules.decoders.torchcodec import torchcodec_available

    names = ["pyav", "frames"]
    if torchcodec_available():
        names.insert(1, "torchcodec")
    return names
