"""RecBole atomic files: the general layout and the sequential benchmark layout."""

from __future__ import annotations

import pytest

from lgrec.data import load_recbole
from lgrec.errors import DataError, DatasetNotFoundError


def test_general_layout(recbole_dir):
    ds = load_recbole(recbole_dir)
    assert ds.name == "toy" and (ds.n_users, ds.n_items, len(ds)) == (2, 3, 4)
    assert ds.items["title"].tolist() == ["Alpha", "Beta", "Gamma"]
    assert ds.items["categories"].tolist() == [["Action", "Drama"], ["Comedy"], []]
    assert ds.items["release_year"].tolist() == ["1990", "1991", "1992"]  # kept, unmapped
    assert ds.users["text"].tolist() == ["30-year-old female writer", "41-year-old male engineer"]
    assert ds.interactions["rating"].tolist() == [4.0, 5.0, 3.0, 1.0]
    assert ds.interactions["timestamp"].tolist() == [10, 11, 12, 13]
    assert ds.rating_scale == (1.0, 5.0)
    assert "fold" not in ds.interactions.columns


def test_general_layout_from_inter_path(recbole_dir):
    ds = load_recbole(recbole_dir / "toy.inter")
    assert len(ds) == 4 and ds.items["item_id"].tolist() == ["i1", "i2", "i3"]


def test_sequential_layout(seq_dir):
    ds = load_recbole(seq_dir)
    df = ds.interactions
    assert ds.name == "G-6k" and ds.n_items == 8 and ds.n_users == 2
    assert ds.items["title"].tolist()[3] == "Game 3"
    u0 = df[df["user"] == ds.user_index("0")]
    assert u0["item"].tolist() == [0, 1, 2, 3, 4]  # full sequence, each item once
    assert u0["timestamp"].tolist() == [0, 1, 2, 3, 4]
    assert u0["fold"].astype(str).tolist() == ["train", "train", "train", "valid", "test"]
    u1 = df[df["user"] == ds.user_index("1")]
    # item 2 at position 1 is both a train and a valid target: counted once, as valid
    assert u1["item"].tolist() == [5, 2, 6]
    assert u1["fold"].astype(str).tolist() == ["train", "valid", "test"]
    assert ds.meta["n_target_rows"] == {"train": 3, "valid": 2, "test": 2}


def test_sequential_inconsistent_target(seq_dir):
    head = "user_id:token\titem_id_list:token_seq\titem_id:token\n"
    (seq_dir / "G-6k.valid.inter").write_text(head + "0\t0 1 2\t7\n")
    with pytest.raises(DataError, match=r"G-6k\.valid\.inter, line 2: target item '7'"):
        load_recbole(seq_dir)


def test_unknown_item_id(seq_dir):
    head = "user_id:token\titem_id_list:token_seq\titem_id:token\n"
    (seq_dir / "G-6k.test.inter").write_text(head + "0\t0 1 2 3\t4\n1\t5 2\t6\n")
    (seq_dir / "G.item").write_text("item_id:token\ttitle:token_seq\n0\tA\n")
    ds = load_recbole(seq_dir)  # ids missing from the .item file are added without a title
    assert ds.n_items == 7 and ds.items["item_id"].tolist()[0] == "0"


def test_bad_header(recbole_dir):
    (recbole_dir / "toy.inter").write_text("user_id:token\titem_id\n1\t2\n")
    with pytest.raises(DataError, match=r"toy\.inter, line 1, column 2: header field 'item_id'"):
        load_recbole(recbole_dir)


def test_missing_field_lists_found(recbole_dir):
    (recbole_dir / "toy.inter").write_text("user_id:token\titem:token\nu1\ti1\n")
    with pytest.raises(
        DataError, match=r"missing field\(s\) \['item_id'\]; fields found: \['user_id', 'item'"
    ):
        load_recbole(recbole_dir)


def test_non_numeric_float_field(recbole_dir):
    text = "user_id:token\titem_id:token\trating:float\nu1\ti1\t4\nu2\ti2\tfive\n"
    (recbole_dir / "toy.inter").write_text(text)
    with pytest.raises(DataError, match=r"toy\.inter, line 3: column 'rating' has 'five'"):
        load_recbole(recbole_dir)


def test_empty_and_missing(recbole_dir, tmp_path):
    (recbole_dir / "toy.inter").write_text("")
    with pytest.raises(DataError, match="empty"):
        load_recbole(recbole_dir)
    (recbole_dir / "toy.inter").write_text("user_id:token\titem_id:token\n")
    with pytest.raises(DataError, match="no data lines"):
        load_recbole(recbole_dir)
    with pytest.raises(DatasetNotFoundError, match=r"no RecBole \.inter file"):
        load_recbole(tmp_path)


def test_split_files_general_layout_and_token_timestamp(tmp_path):
    d = tmp_path / "s"
    d.mkdir()
    head = "user_id:token\titem_id:token\ttimestamp:token\n"
    (d / "s.train.inter").write_text(head + "a\tx\t1\nb\ty\t2\n")
    (d / "s.test.inter").write_text(head + "a\ty\t3\n")
    ds = load_recbole(d)
    assert ds.interactions["fold"].astype(str).tolist() == ["train", "train", "test"]
    assert ds.interactions["timestamp"].tolist() == [1, 2, 3] and ds.rating_scale is None
    (d / "s.test.inter").write_text(head + "a\ty\t3\nb\tx\tlater\n")
    with pytest.raises(DataError, match=r"s\.test\.inter, line 3: field 'timestamp' has 'later'"):
        load_recbole(d)
