"""LightGCN text layout, CoLaKG ML-1M and Last.fm on small synthetic files."""

from __future__ import annotations

import numpy as np
import pytest

from lgrec.data import load_colakg_ml1m, load_lastfm, load_lightgcn
from lgrec.data._io import parse_int_lines
from lgrec.errors import DataError, DatasetNotFoundError


def test_parse_int_lines_values_and_lines(tmp_path):
    f = tmp_path / "x.txt"
    f.write_bytes(b"12 7  305\r\n\n4\t9\n1000000000000")
    values, line = parse_int_lines(f)
    assert values.tolist() == [12, 7, 305, 4, 9, 10**12]
    assert line.tolist() == [0, 0, 0, 2, 2, 3]


def test_lightgcn_interactions(lightgcn_dir):
    ds = load_lightgcn(lightgcn_dir)
    df = ds.interactions
    folds = df["fold"].astype(str)
    assert (folds == "train").sum() == 9 and (folds == "test").sum() == 4
    assert (ds.n_users, ds.n_items, ds.name) == (4, 5, "tiny")
    tr = df[folds == "train"]
    assert tr[tr["user"] == 2]["item"].tolist() == [4, 0, 1, 3]
    assert tr[tr["user"] == 2]["timestamp"].tolist() == [0, 1, 2, 3]  # position in the line
    assert set(df["rating"]) == {1.0} and set(df["event"].astype(str)) == {"click"}
    assert ds.users["user_id"].tolist() == ["u10", "u11", "u12", "u13"]
    assert ds.items["item_id"].tolist()[4] == "i4"


def test_lightgcn_user_only_line_counts_user(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "train.txt").write_text("0 1\n5\n")
    ds = load_lightgcn(d)
    assert ds.n_users == 6 and ds.n_items == 2 and len(ds) == 1
    assert ds.users["user_id"].tolist() == ["0", "1", "2", "3", "4", "5"]  # no id lists


def test_lightgcn_errors(tmp_path, lightgcn_dir):
    with pytest.raises(DatasetNotFoundError, match="LightGCN-PyTorch"):
        load_lightgcn(tmp_path / "missing")
    (lightgcn_dir / "train.txt").write_text("0 1 2\n1 x 3\n")
    with pytest.raises(DataError, match=r"train\.txt, line 2: unexpected character 'x'"):
        load_lightgcn(lightgcn_dir)
    (lightgcn_dir / "train.txt").write_text("")
    with pytest.raises(DataError, match=r"train\.txt: file is empty"):
        load_lightgcn(lightgcn_dir)
    (lightgcn_dir / "train.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"'train\.txt' not found"):
        load_lightgcn(lightgcn_dir)


def test_lightgcn_bad_id_list(lightgcn_dir):
    (lightgcn_dir / "item_list.txt").write_text("org_id remap_id\ni0 0\ni1 one\n")
    with pytest.raises(DataError, match=r"item_list\.txt, line 3: column 'remap_id' has 'one'"):
        load_lightgcn(lightgcn_dir)


def test_colakg(colakg_dir):
    ds = load_colakg_ml1m(colakg_dir)
    assert (ds.n_users, ds.n_items, len(ds)) == (2, 3, 6)
    assert ds.items["item_id"].tolist() == ["1193", "661", "914"]
    assert ds.items["description"].tolist() == ["A drama.", "A peach.", ""]
    assert ds.items["title"].tolist()[1] == "James (1996)"
    assert ds.items["categories"].tolist()[1] == ["Animation", "Musical"]
    assert ds.users["user_id"].tolist() == ["7", "9"]
    assert ds.interactions["fold"].astype(str).value_counts().to_dict() == {"train": 4, "test": 2}


def test_colakg_without_movies(colakg_dir):
    (colakg_dir.parent / "ml-1m" / "movies.dat").unlink()
    ds = load_colakg_ml1m(colakg_dir)
    assert "title" not in ds.items.columns and ds.items["description"][0] == "A drama."
    with pytest.raises(DatasetNotFoundError, match="movies_dat"):
        load_colakg_ml1m(colakg_dir, movies_dat=colakg_dir / "nope.dat")


def test_colakg_bad_json(colakg_dir):
    (colakg_dir / "llm_response_item.json").write_text('{"1193": "a",\n oops}')
    with pytest.raises(DataError, match=r"llm_response_item\.json, line 2: invalid JSON"):
        load_colakg_ml1m(colakg_dir)


def test_lastfm(lastfm_dir):
    ds = load_lastfm(lastfm_dir)
    assert (ds.n_users, ds.n_items, len(ds)) == (4, 3, 6)  # user 4 only in the trust network
    assert ds.interactions["rating"].tolist()[:3] == [10.0, 5.0, 7.0]
    assert set(ds.interactions["event"].astype(str)) == {"play"}
    assert ds.interactions["user"].tolist()[:3] == [0, 0, 1]  # 1-based → 0-based
    edges = ds.meta["social_edges"]
    assert edges.dtype == np.int64 and edges.tolist() == [[0, 1], [1, 3]]
    assert ds.interactions["fold"].astype(str).tolist()[-2:] == ["test", "test"]


def test_lastfm_errors(lastfm_dir):
    (lastfm_dir / "data1.txt").write_text("1\t1\t10\n0\t2\t5\n")
    with pytest.raises(DataError, match="1-based"):
        load_lastfm(lastfm_dir)
    (lastfm_dir / "test1.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"test1\.txt"):
        load_lastfm(lastfm_dir)
