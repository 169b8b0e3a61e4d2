"""load_dataset: known names under the data directory, paths detected by their files."""

from __future__ import annotations

import pytest

from lgrec.data import load_dataset
from lgrec.data.registry import detect
from lgrec.errors import DatasetNotFoundError


def test_name_resolved_under_data_dir(ml100k, lightgcn_dir, tmp_path):
    ds = load_dataset("ml-100k", data_dir=tmp_path, fold="u1")
    assert ds.name == "ml-100k" and len(ds) == 10
    (tmp_path / "gowalla").mkdir()
    for f in ("train.txt", "test.txt"):
        (tmp_path / "gowalla" / f).write_text((lightgcn_dir / f).read_text())
    ds = load_dataset("gowalla", data_dir=tmp_path)
    assert ds.name == "gowalla" and ds.n_users == 4


def test_env_var_sets_data_dir(ml100k, tmp_path, monkeypatch):
    monkeypatch.setenv("LGREC_DATA_DIR", str(tmp_path))
    assert len(load_dataset("ml-100k", fold=None)) == 10


def test_missing_data_set_message(tmp_path):
    with pytest.raises(DatasetNotFoundError) as e:
        load_dataset("gowalla", data_dir=tmp_path)
    msg = str(e.value)
    assert str(tmp_path / "gowalla") in msg and "--data-dir" in msg and "LGREC_DATA_DIR" in msg
    assert "LightGCN-PyTorch" in msg
    with pytest.raises(DatasetNotFoundError, match=r"grouplens\.org"):
        load_dataset("ml-1m", data_dir=tmp_path)


def test_missing_file_in_existing_folder(ml1m, tmp_path):
    (ml1m / "ratings.dat").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"ratings\.dat.*--data-dir.*grouplens"):
        load_dataset("ml-1m", data_dir=tmp_path)


def test_paths_are_detected(ml100k, lightgcn_dir, colakg_dir, lastfm_dir, recbole_dir, seq_dir):
    assert [
        detect(p) for p in (ml100k, lightgcn_dir, colakg_dir, lastfm_dir, recbole_dir, seq_dir)
    ] == ["movielens", "lightgcn", "colakg", "lastfm", "recbole", "recbole"]
    assert load_dataset(str(lastfm_dir)).name == "lastfm-social"
    assert len(load_dataset(recbole_dir / "toy.inter")) == 4
    csv = recbole_dir.parent / "t.csv"
    csv.write_text("user_id,item_id\n1,2\n")
    assert detect(csv) == "tabular" and len(load_dataset(csv)) == 1


def test_unknown_name(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="neither a known data set"):
        load_dataset("no-such-set", data_dir=tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match="no known data files"):
        load_dataset(tmp_path / "empty")
