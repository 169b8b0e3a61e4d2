"""MovieLens loaders on small synthetic files: good files and malformed ones."""

from __future__ import annotations

import numpy as np
import pytest

from lgrec.data import load_movielens
from lgrec.errors import ConfigError, DataError, DatasetNotFoundError


def test_ml100k_fold_u1(ml100k):
    ds = load_movielens(ml100k, fold="u1")
    assert (ds.n_users, ds.n_items, len(ds)) == (3, 4, 10)
    folds = ds.interactions["fold"].astype(str)
    assert (folds == "train").sum() == 7 and (folds == "test").sum() == 3
    assert ds.rating_scale == (1.0, 5.0)
    assert set(ds.interactions["event"].astype(str)) == {"rating"}
    # external ids map to contiguous ids through the tables: u.data row 1 is user 1, item 1
    first = ds.interactions.iloc[0]
    assert ds.users["user_id"][first["user"]] == "1" and ds.items["item_id"][first["item"]] == "1"
    assert first["rating"] == 5 and first["timestamp"] == 100
    assert (
        ds.interactions["user"].dtype == np.int32 and ds.interactions["timestamp"].dtype == np.int64
    )


def test_ml100k_tables(ml100k):
    ds = load_movielens(ml100k, fold=None)
    assert "fold" not in ds.interactions.columns and len(ds) == 10
    assert ds.items["title"].tolist()[2] == "Café Society (1995)"  # latin-1 decoded
    assert ds.items["categories"].tolist() == [
        ["Action"],
        ["Adventure", "Animation"],
        ["unknown"],
        ["Animation", "Children's"],
    ]
    assert ds.users["text"].tolist() == [
        "24-year-old male technician",
        "53-year-old female",
        "23-year-old male writer",
    ]
    assert ds.users[["age", "gender", "occupation", "zip"]].iloc[0].tolist() == [
        24,
        "M",
        "technician",
        "85711",
    ]


def test_ml100k_bad_fold(ml100k):
    with pytest.raises(ConfigError, match="fold='u9'"):
        load_movielens(ml100k, fold="u9")


def test_ml100k_missing_fold_file(ml100k):
    (ml100k / "u1.test").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"u1\.test.*grouplens"):
        load_movielens(ml100k, fold="u1")


def test_ml100k_non_integer_id_names_line(ml100k):
    lines = (ml100k / "u.data").read_text().splitlines()
    lines[3] = "2\tabc\t2\t103"
    (ml100k / "u.data").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"u\.data, line 4: column 'item_id' has 'abc'"):
        load_movielens(ml100k, fold=None)


def test_ml100k_short_line_and_unknown_item(ml100k):
    (ml100k / "u.data").write_text("1\t1\t5\t100\n1\t2\n")
    with pytest.raises(DataError, match=r"line 2: missing value in column 'rating'"):
        load_movielens(ml100k, fold=None)
    (ml100k / "u.data").write_text("1\t1\t5\t100\n1\t99\t3\t101\n")
    with pytest.raises(DataError, match=r"line 2: item id '99' is not in the item table"):
        load_movielens(ml100k, fold=None)


def test_ml100k_malformed_and_empty(ml100k):
    (ml100k / "u.data").write_text("1\t1\t5\t100\n1\t2\t3\t4\t5\n")
    with pytest.raises(DataError, match=r"u\.data: malformed line"):
        load_movielens(ml100k, fold=None)
    (ml100k / "u.data").write_text("")
    with pytest.raises(DataError, match="empty"):
        load_movielens(ml100k, fold=None)


def test_ml1m(ml1m):
    ds = load_movielens(ml1m)  # the default fold is ignored: ML-1M has no fixed split
    assert (ds.n_users, ds.n_items, len(ds)) == (2, 3, 3)
    assert "fold" not in ds.interactions.columns
    assert ds.items["title"][2] == "Café (1996)"
    assert ds.items["categories"][0] == ["Animation", "Children's", "Comedy"]
    assert ds.users["text"].tolist() == [
        "female aged under 18, K-12 student",
        "male aged 25-34, technician/engineer",
    ]
    assert ds.interactions["item"].tolist() == [0, 2, 1]


def test_ml1m_without_ratings_says_where_to_get_it(ml1m):
    (ml1m / "ratings.dat").unlink()
    with pytest.raises(
        DatasetNotFoundError, match=r"'ratings\.dat'.*grouplens\.org/datasets/movielens"
    ):
        load_movielens(ml1m)


def test_not_movielens(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="no MovieLens files"):
        load_movielens(tmp_path)
    with pytest.raises(DatasetNotFoundError, match="not found"):
        load_movielens(tmp_path / "nope")
