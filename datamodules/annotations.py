"""Reading the official annotation files of video datasets, with errors that say what to fix.

Published annotation files are messier than their documentation: Windows line endings (UCF101),
trailing spaces (HMDB51), a UTF-8 byte-order mark, quoted CSV labels holding commas, parentheses
and apostrophes (Kinetics), ``;``-separated labels holding commas (Something-Something v1). The
helpers here absorb all of that, and every error they raise names the file and, where there is
one, the line.

Also here, because every source needs it: the class list as a lookup (``ClassIndex``), locating
an annotation file among the names the different releases use, and deriving a horizontal-flip
label map from "left"/"right" class names.
"""

from __future__ import annotations

import csv
import gc
import io
import json
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "AnnotationError",
    "ClassIndex",
    "Entry",
    "EntryTable",
    "VIDEO_EXTENSIONS",
    "derive_flip_label_map",
    "find_annotation",
    "find_annotations",
    "gc_paused",
    "read_csv_columns",
    "read_csv_rows",
    "read_json",
    "read_lines",
    "read_name_list",
]

# what users' copies of the datasets contain (Kinetics downloaders write .mp4, .mkv or .webm)
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv",
                    ".ogv", ".ts", ".m2ts", ".mts", ".3gp", ".wmv")


class AnnotationError(ValueError):
    """An annotation file that is missing or says something impossible.

    The message always names the file (and line, when the problem sits on one).
    """


@dataclass(frozen=True)
class Entry:
    """One video as an annotation file lists it, before its file is located.

    Attributes:
        name: what identifies the video on disk: a path relative to the data folder
            (``"ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi"``) or a bare name / id
            (``"100218"``, ``"abc_000010_000020"``).
        label: class index in the dataset's full class list (``-1``: unlabelled).
        where: ``"file:line"`` of the annotation, for messages.
        start_sec / end_sec: trim window, when the file is an untrimmed source video.
    """

    name: str
    label: int
    where: str = ""
    start_sec: float | None = None
    end_sec: float | None = None


class EntryTable:
    """A split's entries as columns: what a list of 100Ks of videos (Kinetics, SSv2) gives,
    without an :class:`Entry` object per video.

    Args:
        names: ``[N]`` names (:attr:`Entry.name`).
        labels: ``[N]`` class indices (``-1``: unlabelled).
        start_sec / end_sec: ``[N]`` trim windows, NaN where none (default: none).
        file / lines: where the entries are listed: one file and each entry's line number.
        wheres: instead of ``file`` / ``lines``: each entry's ``where``.
    """

    def __init__(self, names: list[str], labels: np.ndarray, *,
                 start_sec: np.ndarray | None = None, end_sec: np.ndarray | None = None,
                 file: str = "", lines: Sequence[int] | None = None,
                 wheres: Sequence[str] | None = None) -> None:
        self.names = names
        self.labels = np.asarray(labels, dtype=np.int64)
        none = np.full(len(names), np.nan)
        self.start_sec = none if start_sec is None else np.asarray(start_sec, dtype=np.float64)
        self.end_sec = none if end_sec is None else np.asarray(end_sec, dtype=np.float64)
        self._file, self._lines, self._wheres = file, lines, wheres

    @classmethod
    def from_entries(cls, entries: Sequence[Entry]) -> EntryTable:
        nan = float("nan")
        return cls([e.name for e in entries], np.array([e.label for e in entries], np.int64),
                   start_sec=np.array([nan if e.start_sec is None else e.start_sec
                                       for e in entries], np.float64),
                   end_sec=np.array([nan if e.end_sec is None else e.end_sec
                                     for e in entries], np.float64),
                   wheres=[e.where for e in entries])

    def __len__(self) -> int:
        return len(self.names)

    def where(self, i: int) -> str:
        """``"file:line"`` of entry ``i`` (for messages)."""
        if self._wheres is not None:
            return self._wheres[i]
        return _where(self._file, self._lines[i]) if self._lines is not None else self._file

    def select(self, keep: np.ndarray) -> EntryTable:
        """The entries where the boolean mask ``keep`` ``[N]`` holds, in order."""
        rows = np.flatnonzero(keep).tolist()
        lines, wheres = ([column[i] for i in rows] if column is not None else None
                         for column in (self._lines, self._wheres))
        return EntryTable([self.names[i] for i in rows], self.labels[rows],
                          start_sec=self.start_sec[rows], end_sec=self.end_sec[rows],
                          file=self._file, lines=lines, wheres=wheres)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused (then restored) while 100Ks of rows, names and
    paths are made: each of its passes walks every object made so far, so on a Kinetics-size
    list they take most of the time, and find nothing (strings and lists of strings hold no
    cycles)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _where(path: str | os.PathLike, line: int | None) -> str:
    return f"{path}:{line}" if line is not None else str(path)


def _read_text(path: str | os.PathLike) -> str:
    """The whole file as text: UTF-8 (a BOM is dropped), falling back to Latin-1.

    Latin-1 never fails, so an odd byte in an old annotation file costs a mangled character in
    one label rather than the run.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise AnnotationError(f"annotation file not found: {path}") from None
    except OSError as error:
        raise AnnotationError(f"cannot read annotation file {path}: {error}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def read_lines(path: str | os.PathLike) -> list[tuple[int, str]]:
    """Non-blank lines as ``(line number, text)``, without line endings or surrounding spaces.

    Handles ``\\n``, ``\\r\\n`` and lone ``\\r`` line endings (``splitlines``).
    """
    return [
        (number, line.strip())
        for number, line in enumerate(_read_text(path).splitlines(), start=1)
        if line.strip()
    ]


def _csv_table(path: str | os.PathLike, required: Sequence[str], delimiter: str
               ) -> tuple[list[str], list[int], list[list[str]]]:
    """``(header, line numbers, rows)`` of a CSV: blank rows dropped, header lower-cased."""
    text = _read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next((row for row in reader if "".join(row).strip()), None)
    if header is None:
        raise AnnotationError(f"{path}: empty CSV file (no header)")
    header = [cell.strip().lower() for cell in header]
    missing = [c for c in required if c not in header]
    if missing:
        raise AnnotationError(
            f"{_where(path, reader.line_num)}: header {header} lacks column(s) {missing}")
    width = len(header)
    lines: list[int] = []
    rows: list[list[str]] = []
    for row in reader:
        # checks in the order of their cost: a full row whose first cell is set is not blank
        if len(row) != width or not row[0].strip():
            if not "".join(row).strip():
                continue
            if len(row) > width:
                raise AnnotationError(
                    f"{_where(path, reader.line_num)}: {len(row)} fields for {width} "
                    f"columns {header} (an unquoted label with a comma?)")
        lines.append(reader.line_num)
        rows.append(row)
    return header, lines, rows


def read_csv_rows(
    path: str | os.PathLike,
    *,
    required: Sequence[str] = (),
    delimiter: str = ",",
) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of a CSV with a header as ``(line number, {column: value})``, values stripped.

    Quoted fields may hold the delimiter (``"passing American football (in game)"``,
    ``"massaging person's head"``). ``required`` columns must be in the header, else
    ``AnnotationError`` naming the file and the header it found.
    """
    header, lines, rows = _csv_table(path, required, delimiter)
    for line, row in zip(lines, rows, strict=True):
        yield line, {name: (row[i].strip() if i < len(row) else "")
                     for i, name in enumerate(header)}


def read_csv_columns(
    path: str | os.PathLike,
    *,
    required: Sequence[str] = (),
    delimiter: str = ",",
) -> tuple[list[int], dict[str, list[str]]]:
    """:func:`read_csv_rows` as columns: ``(line numbers, {column: values})``, values stripped
    (short rows filled with ``""``). No object per row: for files of 100Ks of rows."""
    header, lines, rows = _csv_table(path, required, delimiter)
    width = len(header)
    if any(len(row) < width for row in rows):
        rows = [row + [""] * (width - len(row)) for row in rows]
    values = zip(*rows, strict=True) if rows else ([] for _ in header)
    return lines, {name: list(map(str.strip, column))
                   for name, column in zip(header, values, strict=True)}


def read_json(path: str | os.PathLike) -> Any:
    """Parsed JSON; a syntax error names the file, line and column."""
    text = _read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise AnnotationError(
            f"{_where(path, error.lineno)}: invalid JSON (column {error.colno}): {error.msg}"
        ) from None


def read_name_list(path: str | os.PathLike) -> list[str]:
    """One name per line (class lists): blank lines skipped, surrounding quotes removed."""
    names = []
    for _, line in read_lines(path):
        if len(line) >= 2 and line[0] == line[-1] and line[0] in "\"'":
            line = line[1:-1].strip()
        names.append(line)
    return names


def _normalise(name: str) -> str:
    """Case- and spacing-insensitive key: releases disagree on both (``HandStandPushups``)."""
    return " ".join(name.replace("_", " ").split()).casefold()


class ClassIndex:
    """A dataset's class list as a lookup: name → label, forgiving only where releases differ.

    Releases disagree on case and spacing (UCF101's ``classInd.txt`` spells
    ``HandstandPushups``, its split lists ``HandStandPushups``), so a name is matched exactly
    first, then ignoring case, ``_`` vs space and repeated spaces; a loose key shared by two
    classes matches neither loosely.

    Args:
        names: class names; position = label.
    """

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self._exact = {name: label for label, name in enumerate(self.names)}
        loose: dict[str, int] = {}
        clashes: set[str] = set()
        for label, name in enumerate(self.names):
            key = _normalise(name)
            if key in loose:
                clashes.add(key)
            loose[key] = label
        self._loose = {key: label for key, label in loose.items() if key not in clashes}

    def __len__(self) -> int:
        return len(self.names)

    def get(self, name: str) -> int | None:
        """Label of ``name`` (exact, then loose), or ``None``."""
        label = self._exact.get(name)
        return label if label is not None else self._loose.get(_normalise(name))

    def label(self, name: str, where: str) -> int:
        """Label of ``name``; ``where`` (``"file:line"``) goes into the error.

        Raises:
            AnnotationError: the class list lacks ``name``; the message names file, line and
                the closest-looking known names.
        """
        label = self.get(name)
        if label is not None:
            return label
        import difflib

        close = difflib.get_close_matches(name, self.names, n=3)
        hint = f"; did you mean {close}?" if close else ""
        raise AnnotationError(
            f"{where}: class {name!r} is not in the class list ({len(self)} classes){hint}")


def find_annotation(
    directory: str | os.PathLike, candidates: Sequence[str], what: str, *, depth: int = 2
) -> Path:
    """The first of ``candidates`` (file names) found in ``directory`` or below it.

    Official archives put annotations in a sub-folder (``ucfTrainTestlist/``,
    ``testTrainMulti_7030_splits/``), so folders up to ``depth`` levels down are searched too,
    nearest first.

    Raises:
        AnnotationError: none found; names every path looked for and the files that are there.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise AnnotationError(
            f"annotation folder {directory} does not exist (looking for the {what}: "
            f"{', '.join(candidates)})")
    for folder in _folders(directory, depth):
        for name in candidates:
            path = folder / name
            if path.is_file():
                return path
    found = sorted(
        str(p.relative_to(directory))
        for folder in _folders(directory, depth)
        for p in folder.iterdir()
        if p.is_file()
    )
    shown = ", ".join(found[:20]) + (f", … ({len(found)} files)" if len(found) > 20 else "")
    raise AnnotationError(
        f"no {what} found: looked for {[str(directory / c) for c in candidates]} (and in "
        f"sub-folders up to {depth} levels down); files there: {shown or 'none'}")


def find_annotations(
    directory: str | os.PathLike, pattern: str, *, depth: int = 2
) -> list[Path]:
    """Every file whose name matches the regular expression ``pattern``, in the nearest folder
    holding any (so a second copy further down does not duplicate them); sorted by name."""
    regex = re.compile(pattern)
    for folder in _folders(Path(directory), depth):
        hits = sorted(p for p in folder.iterdir() if p.is_file() and regex.fullmatch(p.name))
        if hits:
            return hits
    return []


def _folders(root: Path, depth: int) -> Iterator[Path]:
    """``root`` and its sub-folders up to ``depth`` levels, breadth first, sorted."""
    level = [root]
    for _ in range(depth + 1):
        next_level: list[Path] = []
        for folder in level:
            yield folder
            try:
                next_level.extend(sorted(p for p in folder.iterdir()
                                         if p.is_dir() and not p.name.startswith(".")))
            except OSError:
                continue
        level = next_level


_LEFT_RIGHT = re.compile(r"\b(left|right)\b", re.IGNORECASE)


def derive_flip_label_map(classes: Sequence[str]) -> dict[int, int]:
    """``{label: mirrored label}`` for classes whose names differ only by "left" ↔ "right".

    Something-Something has such pairs ("Pushing something from left to right" / "… from right
    to left"; "Turning the camera left while filming something" / "… right …"): a horizontally
    flipped clip of one is a clip of the other. Both directions are listed. A class that names
    one side with no mirrored counterpart (e.g. only "left") is left alone: it is not provably
    mirror-symmetric, so keep ``flip`` off for it rather than trust this map.
    """
    def swap(match: re.Match[str]) -> str:
        word = match.group(0)
        other = "right" if word.lower() == "left" else "left"
        return other.capitalize() if word[0].isupper() else other

    index = {name: label for label, name in enumerate(classes)}
    mapping: dict[int, int] = {}
    for label, name in enumerate(classes):
        if not _LEFT_RIGHT.search(name):
            continue
        mirrored = index.get(_LEFT_RIGHT.sub(swap, name))
        if mirrored is not None and mirrored != label:
            mapping[label] = mirrored
    return mapping
