"""Finding the file (or frame folder) an annotation names, without ever guessing.

Two kinds of names reach here:

* a **relative path** (``ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi``: UCF101 and HMDB51 lists,
  ``split_files``): the record is that file or it is missing. The path is tried under
  ``data_dir`` and, for archives unpacked one level deeper (``data_dir/UCF-101/…``), under any
  folder below it — but always with every folder of the path (compared ignoring case); a
  same-named file in another class folder is never taken.
* a **bare name or id** (Kinetics clips, Something-Something ids): looked up by name anywhere
  under ``data_dir`` (downloaders lay these out flat, in ``train/`` / ``val/`` or in class
  folders). A name found in two places is reported as ambiguous and skipped, not resolved.

The tree is walked once, on the first lookup that needs it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from datamodules.annotations import VIDEO_EXTENSIONS

__all__ = ["Found", "VideoIndex", "VideoLocator"]


@dataclass(frozen=True)
class Found:
    """Result of a lookup: ``path`` when exactly one match; else ``None`` and the
    ``candidates`` (none: missing; several: ambiguous)."""

    path: str | None
    candidates: tuple[str, ...] = ()

    @property
    def ambiguous(self) -> bool:
        return self.path is None and len(self.candidates) > 1


class VideoIndex:
    """Every video (or frame folder) under ``root``, by name without extension.

    Names seen more than once keep every path (sorted walk order), so lookups can report them.
    Values are plain strings (a tuple for a repeated name): no per-entry container objects for
    the garbage collector to walk, and touch, in every forked DataLoader worker.

    Args:
        root: the folder to search.
        frames: index folders (frame folders, named after their video) instead of files.
        extensions: video file extensions (lower case, with the dot).
    """

    def __init__(self, root: str | os.PathLike, *, frames: bool = False,
                 extensions: Iterable[str] = VIDEO_EXTENSIONS) -> None:
        self.root = str(root)
        self.frames = frames
        self.extensions = tuple(e.lower() for e in extensions)
        self._paths: dict[str, str | tuple[str, ...]] | None = None

    def _build(self) -> dict[str, str | tuple[str, ...]]:
        paths: dict[str, str | tuple[str, ...]] = {}
        extensions = frozenset(self.extensions)
        for folder, dirs, files in os.walk(self.root, followlinks=True):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            prefix = os.path.join(folder, "")
            # string slicing, not os.path per file: Kinetics folders hold 100Ks of files
            for name in (dirs if self.frames else sorted(files)):
                stem = name
                if not self.frames:
                    dot = name.rfind(".")  # os.path.splitext's split: the last dot, but
                    stem = name[:dot]  # not one that only leading dots precede
                    if dot <= 0 or name[dot:].lower() not in extensions or not stem.strip("."):
                        continue
                path = prefix + name
                seen = paths.get(stem)
                if seen is None:
                    paths[stem] = path
                else:
                    paths[stem] = (*((seen,) if isinstance(seen, str) else seen), path)
        return paths

    @property
    def paths(self) -> dict[str, str | tuple[str, ...]]:
        """``{name: path or (paths, …)}`` of everything found (walks the tree on first use)."""
        if self._paths is None:
            self._paths = self._build()
        return self._paths

    def places(self, name: str) -> tuple[str, ...]:
        """Every path of the video called ``name`` (no extension)."""
        found = self.paths.get(name, ())
        return (found,) if isinstance(found, str) else found

    @property
    def duplicates(self) -> dict[str, tuple[str, ...]]:
        """Names found in more than one place."""
        return {name: found for name, found in self.paths.items() if isinstance(found, tuple)}

    def find(self, name: str) -> Found:
        """The video called ``name`` (no extension)."""
        found = self.places(name)
        return Found(found[0] if len(found) == 1 else None, found)

    def resolve(self, name: str) -> str | tuple[str, ...] | None:
        """:meth:`find` as a plain value: the path, the places of an ambiguous name, or
        ``None`` (a dictionary lookup: for 100Ks of names)."""
        return self.paths.get(name)

    def __len__(self) -> int:
        return len(self.paths)


class VideoLocator:
    """Resolves annotation names to files under ``root`` (see the module docstring).

    Args:
        root: ``data_dir``.
        frames: the videos are frame folders (``video_backend="frames"``): ``a/b.avi`` names
            the folder ``a/b``.
    """

    def __init__(self, root: str, *, frames: bool = False) -> None:
        self.root = root
        self.frames = frames
        self.index = VideoIndex(root, frames=frames)

    def _strip(self, name: str) -> tuple[str, str]:
        """``(name without a video extension, extension)``: ids may hold dots of their own."""
        root, ext = os.path.splitext(name)
        return (root, ext.lower()) if ext.lower() in VIDEO_EXTENSIONS else (name, "")

    def find(self, name: str) -> Found:
        """The file (or frame folder) that the annotation's ``name`` designates."""
        found = self.resolve(name)
        if isinstance(found, str):
            return Found(found, (found,))
        return Found(None, found or ())

    def resolve(self, name: str) -> str | tuple[str, ...] | None:
        """:meth:`find` as a plain value: the path, the places of an ambiguous name (two or
        more), or ``None`` when missing."""
        name = name.replace("\\", "/").removeprefix("./")
        stem, ext = self._strip(name)
        if "/" in stem:
            return self._find_path(stem, ext)
        if not self.frames and ext:
            direct = os.path.join(self.root, name)
            if os.path.isfile(direct):  # the official flat layout costs one stat
                return direct
        return self.index.resolve(stem)

    def _find_path(self, stem: str, ext: str) -> str | tuple[str, ...] | None:
        """A relative path: exactly that file, under ``root`` or under a folder below it."""
        if self.frames:
            direct = os.path.join(self.root, stem)
            if os.path.isdir(direct):
                return direct
        elif ext:
            direct = os.path.join(self.root, stem + ext)
            if os.path.isfile(direct):
                return direct
        # folders compared ignoring case: lists written on Windows spell them loosely (UCF101's
        # test lists say HandStandPushups/ for the folder HandstandPushups/)
        tail = (os.sep + os.path.normpath(stem)).casefold()
        basename = os.path.basename(stem)
        matches = [p for p in self.index.places(basename)
                   if (p if self.frames else os.path.splitext(p)[0]).casefold().endswith(tail)]
        if len(matches) > 1 and ext:  # the listed extension breaks a tie (a.avi beside a.mp4)
            same = [p for p in matches if p.lower().endswith(ext)]
            matches = same or matches
        if len(matches) == 1:
            return matches[0]
        return tuple(matches) or None
