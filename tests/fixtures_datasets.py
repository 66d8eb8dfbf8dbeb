"""Tiny copies of the published datasets, in their exact on-disk formats.

Each ``build_*`` writes generated videos (PyAV) or JPEG frames and the annotation files the
official release ships — Windows line endings, trailing spaces, quoted labels holding commas,
parentheses and apostrophes included — under a caller-given root, and returns what a test
needs to know about it. Frames are 32×32 and videos 10–12 frames, so every dataset builds in
well under a second.
"""

from __future__ import annotations

import csv
import io
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torchvision.io import encode_jpeg

from tests.videos import pattern, write_video

SIZE = 32
FRAMES = 10


def tiny_video(path: Path, *, codec: str = "libx264", seed: int = 0,
               num_frames: int = FRAMES) -> Path:
    """A 32×32 clip whose content depends on ``seed`` (the container comes from the suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = pattern(num_frames, SIZE, SIZE, seed=seed)
    return write_video(path, codec=codec, frames=frames, fps=25)


def frame_folder(path: Path, *, seed: int = 0, num_frames: int = FRAMES,
                 template: str = "{:05d}.jpg", start: int = 1) -> Path:
    """A folder of JPEG frames ``00001.jpg…`` (Something-Something v1's layout)."""
    path.mkdir(parents=True, exist_ok=True)
    for k, frame in enumerate(pattern(num_frames, SIZE, SIZE, seed=seed)):
        with warnings.catch_warnings():
            # torchvision 0.29 deprecates its JPEG codec (torchcodec is optional here)
            warnings.simplefilter("ignore", DeprecationWarning)
            data = encode_jpeg(torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1),
                               quality=90)
        (path / template.format(start + k)).write_bytes(data.numpy().tobytes())
    return path


def write_text(path: Path, lines: list[str], *, newline: str = "\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(newline.join(lines).encode() + newline.encode())
    return path


@dataclass
class Fixture:
    """A built dataset: where its parts are and what a correct reader must find."""

    data_dir: Path
    annotation_dir: Path
    classes: list[str]  # in the index order the dataset defines
    counts: dict[str, int] = field(default_factory=dict)  # present videos per split
    missing: dict[str, list[str]] = field(default_factory=dict)


# ---- Kinetics --------------------------------------------------------------------------------
KINETICS_CLASSES = [
    "passing American football (in game)",  # parentheses and spaces: quoted in the CSV
    "massaging person's head",  # apostrophe
    "tying bow tie, or knot",  # comma: must be quoted
    "abseiling",
]


def build_kinetics(root: Path) -> Fixture:
    """Kinetics-400 CSVs (``train.csv``, ``validate.csv``) and ``train/<class>/`` (spaces) +
    ``val/<class_with_underscores>/`` clip folders; one val video is missing, one train video
    is kept untrimmed as ``<youtube_id>.mp4``."""
    data, ann = root / "videos", root / "annotations"
    header = ["label", "youtube_id", "time_start", "time_end", "split", "is_cc"]
    rows: dict[str, list[list[str]]] = {"train": [], "validate": []}
    seed = 0
    for label, name in enumerate(KINETICS_CLASSES):
        for i in range(2):
            youtube_id = f"-x_{label}{i}Ab-Q"  # leading dash, underscores: real ids have both
            start = 10 * i + label
            rows["train"].append([name, youtube_id, str(start), str(start + 10), "train", "0"])
            clip = f"{youtube_id}_{start:06d}_{start + 10:06d}.mp4"
            if label == 3 and i == 1:  # an untrimmed source video, named by its id only
                tiny_video(data / "train" / name / f"{youtube_id}.mp4", seed=seed,
                           num_frames=12)
                rows["train"][-1][2:4] = ["0", "1"]  # window [0 s, 1 s): the whole tiny file
            else:
                tiny_video(data / "train" / name / clip, seed=seed)
            seed += 1
        youtube_id = f"val{label}_Zz"
        rows["validate"].append([name, youtube_id, "3", "13", "val", "0"])
        folder = name.replace(" ", "_")
        tiny_video(data / "val" / folder / f"{youtube_id}_000003_000013.mp4", seed=seed)
        seed += 1
    rows["validate"].append([KINETICS_CLASSES[0], "GONEgone123", "5", "15", "val", "0"])
    for split, split_rows in rows.items():
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
        writer.writerow(header)
        for row in split_rows:
            # the release quotes labels with spaces; csv quotes only what needs it — mix both
            writer.writerow(row)
        text = buffer.getvalue().replace("massaging person's head",
                                         '"massaging person\'s head"')
        (ann).mkdir(parents=True, exist_ok=True)
        (ann / f"{split}.csv").write_text(text, newline="")
    return Fixture(data, ann, sorted(KINETICS_CLASSES), counts={"train": 8, "val": 4},
                   missing={"val": ["GONEgone123_000005_000015"]})


# ---- Something-Something ---------------------------------------------------------------------
SS_CLASSES = [  # label-file order (not alphabetical): index = label
    "Pushing something from left to right",
    "Putting something, something and something on the table",
    "Pushing something from right to left",
    "Holding something",
]
SS_TEMPLATES = [
    "Pushing [something] from left to right",
    "Putting [something], [something] and [something] on the table",
    "Pushing [something] from right to left",
    "Holding [something]",
]


def build_ssv1(root: Path) -> Fixture:
    """``something-something-v1-{labels,train,validation}.csv`` and ``<id>/00001.jpg`` folders;
    one validation id has no folder."""
    data, ann = root / "20bn-something-something-v1", root
    train, val = [], []
    video_id = 100
    for label, name in enumerate(SS_CLASSES):
        for split in ("train", "train", "val"):
            frame_folder(data / str(video_id), seed=video_id, num_frames=8 + label)
            (train if split == "train" else val).append(f"{video_id};{name}")
            video_id += 1
    val.append(f"999999;{SS_CLASSES[0]}")  # listed, never extracted
    write_text(ann / "something-something-v1-labels.csv", SS_CLASSES)
    write_text(ann / "something-something-v1-train.csv", train)
    write_text(ann / "something-something-v1-validation.csv", val, newline="\r\n")
    return Fixture(data, ann, list(SS_CLASSES), counts={"train": 8, "val": 4},
                   missing={"val": ["999999"]})


def build_ssv2(root: Path) -> Fixture:
    """``something-something-v2-labels.json`` (``{class: "index"}``), ``-train.json`` /
    ``-validation.json`` / ``-test.json`` and ``<id>.webm`` (VP9)."""
    data, ann = root / "20bn-something-something-v2", root / "labels"
    labels = {name: str(i) for i, name in enumerate(SS_CLASSES)}
    splits: dict[str, list[dict]] = {"train": [], "validation": [], "test": []}
    video_id = 1
    for label, template in enumerate(SS_TEMPLATES):
        for split in ("train", "train", "validation", "test"):
            tiny_video(data / f"{video_id}.webm", codec="libvpx-vp9", seed=video_id)
            item = {"id": str(video_id), "label": f"instance {video_id} of {label}",
                    "template": template, "placeholders": ["a cup"]}
            splits[split].append(item if split != "test" else {"id": str(video_id)})
            video_id += 1
    ann.mkdir(parents=True, exist_ok=True)
    (ann / "something-something-v2-labels.json").write_text(json.dumps(labels, indent=1))
    for split, items in splits.items():
        (ann / f"something-something-v2-{split}.json").write_text(json.dumps(items))
    return Fixture(data, ann, list(SS_CLASSES), counts={"train": 8, "val": 4, "test": 4})


# ---- UCF101 / HMDB51 ---------------------------------------------------------------------------
UCF_CLASSES = ["ApplyEyeMakeup", "HandstandPushups", "Basketball"]  # classInd order


def build_ucf101(root: Path) -> Fixture:
    """``UCF-101/<Class>/v_<Class>_gXX_cYY.avi`` (MPEG-4 in AVI) and ``ucfTrainTestlist/``
    with Windows line endings; split ``N`` tests group ``N``. The release's quirk is kept:
    class ``HandstandPushups`` holds files spelled ``v_HandStandPushups_…``."""
    data, ann = root / "UCF-101", root / "ucfTrainTestlist"
    write_text(ann / "classInd.txt", [f"{i + 1} {c}" for i, c in enumerate(UCF_CLASSES)],
               newline="\r\n")
    files: list[tuple[int, int, str]] = []
    for label, name in enumerate(UCF_CLASSES):
        spelled = "HandStandPushups" if name == "HandstandPushups" else name
        for group in (1, 2, 3):
            rel = f"{name}/v_{spelled}_g{group:02d}_c01.avi"
            tiny_video(data / rel, codec="mpeg4", seed=10 * label + group)
            files.append((label, group, rel))
    for split in (1, 2, 3):
        write_text(ann / f"trainlist{split:02d}.txt",
                   [f"{rel} {label + 1}" for label, g, rel in files if g != split],
                   newline="\r\n")
        testlist = [rel for _, g, rel in files if g == split]
        # the official test lists spell the folder in the file name's case
        testlist = [r.replace("HandstandPushups/", "HandStandPushups/") for r in testlist]
        write_text(ann / f"testlist{split:02d}.txt", testlist, newline="\r\n")
    return Fixture(data, root, list(UCF_CLASSES), counts={"train": 6, "val": 3, "test": 3})


HMDB_CLASSES = ["sword_exercise", "brush_hair", "cartwheel"]  # deliberately unsorted


def build_hmdb51(root: Path) -> Fixture:
    """``hmdb51/<class>/<name>.avi`` (MJPEG) and ``testTrainMulti_7030_splits/
    <class>_test_split<N>.txt`` lines ``<name>.avi <0|1|2> `` (trailing space, as released)."""
    data, ann = root / "hmdb51", root / "testTrainMulti_7030_splits"
    for label, name in enumerate(HMDB_CLASSES):
        videos = [f"(Rad)Schlag_die_Bank!_{name}_f_cm_np1_le_med_{i}.avi" for i in range(3)]
        for i, video in enumerate(videos):
            tiny_video(data / name / video, codec="mjpeg", seed=10 * label + i)
        for split in (1, 2, 3):
            # video (split-1) is for test, the next one for training, the last one unused
            marks = {videos[(split - 1) % 3]: 2, videos[split % 3]: 1, videos[(split + 1) % 3]: 0}
            write_text(ann / f"{name}_test_split{split}.txt",
                       [f"{v} {m} " for v, m in marks.items()])
    return Fixture(data, root, sorted(HMDB_CLASSES), counts={"train": 3, "val": 3, "test": 3})


# ---- class folders ----------------------------------------------------------------------------
def build_folder(root: Path, *, split_dirs: bool = False) -> Fixture:
    """``<class>/*.mp4`` (or ``train/<class>/``, ``val/<class>/`` with ``split_dirs``)."""
    classes = ["dog jumping", "cat's nap", "bird"]
    for label, name in enumerate(classes):
        for i in range(4):
            sub = ("train" if i < 3 else "val") if split_dirs else ""
            tiny_video(root / sub / name / f"clip {i}.mp4", seed=10 * label + i)
    counts = {"train": 9, "val": 3} if split_dirs else {}
    return Fixture(root, root, sorted(classes), counts=counts)
