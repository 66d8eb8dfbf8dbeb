"""New, unlabelled videos for ``predict``: a folder, a glob pattern, a list, or a file listing them.

``--data.init_args.predict_paths=DIR|GLOB|LIST`` works with every datamodule: the model's
classes come from the datamodule as in training, the videos from here, each a ``VideoRecord``
with label ``-1``. Results name each video by its path relative to :func:`common_root`, so two
``006.mp4`` in different folders stay two rows.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence

from datamodules.annotations import VIDEO_EXTENSIONS, read_lines
from datamodules.records import VideoRecord

__all__ = ["PredictPaths", "common_root", "find_predict_videos", "predict_records", "relative_path"]

PredictPaths = str | list[str]

_LIST_SUFFIXES = (".txt", ".lst", ".list", ".csv")
_FRAME_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def _is_video(path: str) -> bool:
    return path.lower().endswith(VIDEO_EXTENSIONS)


def _is_frame_folder(path: str) -> bool:
    return os.path.isdir(path) and any(name.lower().endswith(_FRAME_SUFFIXES)
                                       for name in os.listdir(path))


def _under(folder: str, frames: bool) -> list[str]:
    """Every video (or frame folder) below ``folder``, sorted."""
    found = []
    for parent, dirs, files in os.walk(folder):
        dirs.sort()
        if frames:
            if any(f.lower().endswith(_FRAME_SUFFIXES) for f in files):
                found.append(parent)
        else:
            found += [os.path.join(parent, f) for f in sorted(files) if _is_video(f)]
    return found


def _expand(item: str, frames: bool) -> list[str]:
    path = os.path.expanduser(item)
    if any(c in path for c in "*?["):
        matches = sorted(glob.glob(path, recursive=True))
        return [m for m in matches if (_is_frame_folder(m) if frames else _is_video(m))]
    if os.path.isdir(path) and not (frames and _is_frame_folder(path)):
        return _under(path, frames)
    if os.path.isfile(path) and path.lower().endswith(_LIST_SUFFIXES):
        base = os.path.dirname(path)
        lines = [text.split(",")[0].strip() for _, text in read_lines(path)]
        return [os.path.join(base, os.path.expanduser(line)) for line in lines if line]
    return [path] if os.path.exists(path) else []


def find_predict_videos(paths: PredictPaths, *, frames: bool = False) -> list[str]:
    """The videos ``paths`` names, in the given order (each folder's content sorted).

    ``paths``: a folder (every video below it), a glob pattern (``**`` allowed), a text file
    with one path per line (relative to the file's folder), a single video, or a list of any
    of these. ``frames``: videos are frame folders (``video_backend="frames"``).
    """
    items = [paths] if isinstance(paths, str) else list(paths)
    found: list[str] = []
    for item in items:
        videos = _expand(str(item), frames)
        if not videos:
            what = "frame folders" if frames else f"videos ({', '.join(VIDEO_EXTENSIONS)})"
            raise FileNotFoundError(f"predict_paths: no {what} found for {item!r}")
        found += videos
    return list(dict.fromkeys(os.path.abspath(v) for v in found))


def common_root(paths: PredictPaths, videos: Sequence[str]) -> str:
    """The folder relative paths start from: a single given folder itself, else the deepest
    folder holding every video."""
    if isinstance(paths, str) and os.path.isdir(os.path.expanduser(paths)):
        return os.path.abspath(os.path.expanduser(paths))
    parents = [os.path.dirname(v) for v in videos]
    return os.path.commonpath(parents) if parents else os.getcwd()


def predict_records(paths: PredictPaths, *, frames: bool = False) -> tuple[str, list[VideoRecord]]:
    """``(root, records)`` for ``paths``: unlabelled records (label ``-1``) and the folder
    their relative paths start from."""
    videos = find_predict_videos(paths, frames=frames)
    return common_root(paths, videos), [VideoRecord(path=v, label=-1) for v in videos]


def relative_path(path: str, root: str | None) -> str:
    """``path`` relative to ``root`` (``/`` separators); the path itself when outside it."""
    if root:
        relative = os.path.relpath(path, root)
        if not relative.startswith(".."):
            return relative.replace(os.sep, "/")
    return path
