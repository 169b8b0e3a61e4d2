"""Generic CSV/TSV/Parquet/JSON-lines loader."""

from __future__ import annotations

import pandas as pd
import pytest

from lgrec.data import load_tabular
from lgrec.errors import DataError, DatasetNotFoundError


@pytest.fixture
def csv_files(tmp_path):
    inter = tmp_path / "log.csv"
    inter.write_text(
        "uid,iid,stars,when,kind,fold\n"
        "007,a,4,2024-01-01T00:00:00Z,view,train\n"
        "007,b,5,2024-01-02T00:00:00Z,buy,train\n"
        "008,a,2,2024-01-03T00:00:00Z,view,test\n"
    )
    items = tmp_path / "items.csv"
    items.write_text("iid,name,genres,price\na,Apple,fruit|red,1.0\nb,Bean,veg,2.0\nc,Corn,,3.0\n")
    users = tmp_path / "users.tsv"
    users.write_text("uid\tage\tgender\toccupation\n007\t30\tM\tspy\n")
    return inter, items, users


def test_csv_with_tables(csv_files):
    inter, items, users = csv_files
    ds = load_tabular(
        inter,
        user_col="uid",
        item_col="iid",
        rating_col="stars",
        time_col="when",
        event_col="kind",
        items_path=items,
        item_cols={"name": "title", "genres": "categories"},
        users_path=users,
    )
    assert ds.users["user_id"].tolist() == ["007", "008"]  # ids as strings, zeros kept
    assert ds.items["item_id"].tolist() == ["a", "b", "c"]
    assert ds.items["title"].tolist() == ["Apple", "Bean", "Corn"]
    assert "price" not in ds.items.columns  # only the mapped columns
    assert ds.items["categories"].tolist() == [["fruit", "red"], ["veg"], []]
    assert ds.users["text"].tolist()[0] == "30-year-old male spy"
    assert ds.interactions["timestamp"].tolist() == [1704067200, 1704153600, 1704240000]
    assert ds.interactions["event"].astype(str).tolist() == ["view", "buy", "view"]
    assert ds.interactions["fold"].astype(str).tolist() == ["train", "train", "test"]
    assert ds.rating_scale == (2.0, 5.0)


def test_implicit_defaults_and_int_time(tmp_path):
    f = tmp_path / "x.tsv"
    f.write_text("user_id\titem_id\tts\n1\t10\t5\n2\t10\t3\n")
    ds = load_tabular(f, time_col="ts")
    assert ds.interactions["rating"].tolist() == [1.0, 1.0] and ds.rating_scale is None
    assert ds.interactions["timestamp"].tolist() == [5, 3]
    assert set(ds.interactions["event"].astype(str)) == {"click"}


def test_parquet_and_jsonl(tmp_path):
    df = pd.DataFrame({"user_id": ["u", "v"], "item_id": [3, 4], "r": [1.5, 2.5]})
    df.to_parquet(tmp_path / "x.parquet")
    ds = load_tabular(tmp_path / "x.parquet", rating_col="r")
    assert ds.items["item_id"].tolist() == ["3", "4"] and ds.ratings.tolist() == [1.5, 2.5]
    (tmp_path / "x.jsonl").write_text(
        '{"user_id": "u", "item_id": "p"}\n{"user_id": "v", "item_id": "q"}\n'
    )
    ds = load_tabular(tmp_path / "x.jsonl")
    assert len(ds) == 2 and ds.n_items == 2


def test_missing_column_lists_found(csv_files):
    inter, _, _ = csv_files
    with pytest.raises(
        DataError, match=r"column 'user_id' \(user_col\) not found; columns found: \['uid'"
    ):
        load_tabular(inter)


def test_bad_values_name_line(tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("user_id,item_id,rating,t\n1,2,3,2024-01-01\n1,3,x,2024-01-02\n")
    with pytest.raises(DataError, match=r"x\.csv, line 3: column 'rating' has 'x'"):
        load_tabular(f, rating_col="rating")
    f.write_text("user_id,item_id,t\n1,2,2024-01-01\n1,3,yesterday\n")
    with pytest.raises(DataError, match=r"line 3: column 't' has 'yesterday'"):
        load_tabular(f, time_col="t")
    f.write_text("user_id,item_id\n1,2\n,3\n")
    with pytest.raises(DataError, match=r"line 3: column 'user_id' is empty"):
        load_tabular(f)


def test_empty_missing_unknown(tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("")
    with pytest.raises(DataError, match="empty"):
        load_tabular(f)
    f.write_text("user_id,item_id\n")
    with pytest.raises(DataError, match="no data rows"):
        load_tabular(f)
    with pytest.raises(DatasetNotFoundError):
        load_tabular(tmp_path / "nope.csv")
    (tmp_path / "x.xlsx").write_text("?")
    with pytest.raises(DataError, match="unknown table format"):
        load_tabular(tmp_path / "x.xlsx")
