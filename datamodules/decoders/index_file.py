"""PyAV timelines saved to a JSON file (``python -m datamodules.check --save-index``) and
loaded by ``get_decoder("pyav", index=FILE)``, so DataLoader workers need not rescan.

An entry is used only while the file keeps the size and modification time it had when it was
checked; a replaced file is scanned again.
"""

from __future__ import annotations

import json
import os
from fractions import Fraction
from typing import Any

import numpy as np

from datamodules.decoders._common import file_key
from datamodules.decoders.pyav import Timeline

__all__ = ["load_index", "timeline_from_json", "timeline_to_json"]


def timeline_to_json(path: str, timeline: Timeline) -> dict[str, Any]:
    """``timeline`` of ``path`` as plain JSON values, with the file's size and mtime."""
    _, size, mtime_ns = file_key(path)
    return {
        "path": os.path.abspath(path), "size": size, "mtime_ns": mtime_ns,
        "pts": None if timeline.pts is None else timeline.pts.tolist(),
        "keyframes": timeline.keyframes.tolist(), "times": timeline.times.tolist(),
        "width": timeline.width, "height": timeline.height,
        "time_base": [timeline.time_base.numerator, timeline.time_base.denominator],
        "header_frames": timeline.header_frames, "source": timeline.source,
        "reordered": timeline.reordered, "damage": list(timeline.damage),
        "pix_fmt": timeline.pix_fmt, "reorders": timeline.reorders,
    }


def timeline_from_json(entry: dict[str, Any]) -> Timeline:
    return Timeline(
        pts=None if entry["pts"] is None else np.asarray(entry["pts"], dtype=np.int64),
        keyframes=np.asarray(entry["keyframes"], dtype=np.int64),
        times=np.asarray(entry["times"], dtype=np.float64),
        width=int(entry["width"]), height=int(entry["height"]),
        time_base=Fraction(*entry["time_base"]), header_frames=int(entry["header_frames"]),
        source=str(entry["source"]), reordered=bool(entry["reordered"]),
        damage=tuple(entry["damage"]), pix_fmt=str(entry["pix_fmt"]),
        reorders=bool(entry["reorders"]),
    )


def load_index(index: str | os.PathLike) -> dict[tuple[str, int, int], Timeline]:
    """``{file key: timeline}`` of the entries whose file is unchanged since the check.

    Keys use the path as the check saw it (absolute) and as the records may name it."""
    with open(index, encoding="utf-8") as f:
        data = json.load(f)
    if data.get("version") != 1:
        raise ValueError(f"{index}: not a datamodules.check index (version {data.get('version')})")
    out = {}
    for entry in data["timelines"]:
        timeline = timeline_from_json(entry)
        out[(entry["path"], int(entry["size"]), int(entry["mtime_ns"]))] = timeline
    return out
