"""``RecordTable``: records as numpy columns that read back as the ``VideoRecord``\\ s they were."""

from __future__ import annotations

import pickle

import pytest

from datamodules.records import RecordTable, VideoRecord

RECORDS = [
    VideoRecord("/data/a b/ünï.mp4", 3),
    VideoRecord("/data/frames/x", 0, num_frames=48),
    VideoRecord("/data/long.mp4", -1, start_sec=10.0, end_sec=20.5),
    VideoRecord("", 7, num_frames=0, start_sec=0.0),
]


def test_round_trip_and_sequence_behaviour() -> None:
    table = RecordTable.from_records(RECORDS)
    assert len(table) == 4 and list(table) == RECORDS and table == RECORDS
    assert table[2] == RECORDS[2] and table[-1] == RECORDS[-1]
    assert table[1:3] == RECORDS[1:3]
    assert table.labels.tolist() == [3, 0, -1, 7]
    assert RecordTable.from_records(table) is table
    assert pickle.loads(pickle.dumps(table)) == RECORDS
    with pytest.raises(IndexError):
        table[4]


def test_a_table_from_columns_reads_back_as_its_records() -> None:
    nan = float("nan")
    table = RecordTable.from_columns(
        [r.path for r in RECORDS], [r.label for r in RECORDS], num_frames=[-1, 48, -1, 0],
        start_sec=[nan, nan, 10.0, 0.0], end_sec=[nan, nan, 20.5, nan])
    assert list(table) == RECORDS
    assert list(RecordTable.from_columns(["/a.mp4"], [2])) == [VideoRecord("/a.mp4", 2)]
    with pytest.raises(ValueError, match="column"):
        RecordTable.from_columns(["/a.mp4", "/b.mp4"], [0])


def test_dataset_records_are_a_table(synthetic_root) -> None:
    from datamodules import SyntheticFineGrainedDataModule
    from tests.conftest import TINY_SYNTHETIC

    dm = SyntheticFineGrainedDataModule(data_dir=str(synthetic_root), **TINY_SYNTHETIC)
    dm.setup("fit")
    records = dm.datasets["train"].records
    assert isinstance(records, RecordTable)
    assert records == dm.build_records("train")
    assert all(isinstance(r, VideoRecord) for r in records)
