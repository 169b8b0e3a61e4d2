"""A prepared folder (``lgrec prepare --out``) reads back as the very split prepare made."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lgrec.cli import main
from lgrec.config import load_config
from lgrec.data.prepared import read_prepared, write_prepared
from lgrec.errors import DataError, DatasetNotFoundError
from lgrec.pipeline import prepare


@pytest.mark.parametrize("split", ["fixed", "cold"])
def test_roundtrip_equals_in_memory_split(ml100k, tmp_path, split):
    cfg = load_config(dataset=str(ml100k), split=split, valid_ratio=0.3, seed=2)
    mem = prepare(cfg)
    assert main(["prepare", "--dataset", str(ml100k), "--split", split, "--valid-ratio", "0.3",
                 "--seed", "2", "--out", str(tmp_path / "p")]) == 0  # fmt: skip
    data, sp, report = read_prepared(tmp_path / "p")
    assert str(report) == str(mem.report) and sp.kind == mem.split.kind
    for part in ("train", "valid", "test"):
        a, b = getattr(mem.split, part), getattr(sp, part)
        pd.testing.assert_frame_equal(a.interactions, b.interactions, check_categorical=False)
    np.testing.assert_array_equal(sp.cold_items, mem.split.cold_items)
    assert data.items["title"].tolist() == mem.data.items["title"].tolist()
    assert data.items["categories"].tolist() == mem.data.items["categories"].tolist()
    assert data.users["text"].tolist() == mem.data.users["text"].tolist()
    assert (tmp_path / "p" / "interactions" / "fold=test").is_dir()  # partitioned by fold
    # the CLI reads the folder: same split as in memory
    pre = prepare(load_config(prepared=str(tmp_path / "p")))
    assert len(pre.split.train) == len(mem.split.train)


def test_never_overwrites_foreign_folders_and_checks_input(ml100k, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("x")
    prep = prepare(load_config(dataset=str(ml100k), valid_ratio=0.0), row_column=True)
    with pytest.raises(DataError, match="not empty"):
        write_prepared(prep.data, prep.split, prep.report, mine)
    assert (mine / "keep.txt").read_text() == "x"
    with pytest.raises(DataError, match="row"):  # a split without row positions
        write_prepared(prep.data, prepare(load_config(dataset=str(ml100k))).split, prep.report,
                       tmp_path / "new")  # fmt: skip
    out = write_prepared(prep.data, prep.split, prep.report, tmp_path / "ok")
    write_prepared(prep.data, prep.split, prep.report, out)  # its own folder: replaced
    with pytest.raises(DatasetNotFoundError, match="no meta"):
        read_prepared(tmp_path / "mine")
    meta = json.loads((out / "meta.json").read_text())
    (out / "meta.json").write_text(json.dumps(meta | {"format": "other/9"}))
    with pytest.raises(DataError, match="format"):
        read_prepared(out)
    assert main(["train", "--prepared", str(out), "--split", "random", "--model", "popularity",
                 "--out", str(tmp_path / "m")]) == 2  # fmt: skip


def test_pseudonymised_folder_keeps_its_record(ml100k, tmp_path, monkeypatch):
    monkeypatch.setenv("LGREC_PSEUDONYM_KEY", "a-test-key-of-sufficient-length-123")
    out = str(tmp_path / "p")
    assert main(["prepare", "--dataset", str(ml100k), "--pseudonymize", "--out", out]) == 0
    data, _, _ = read_prepared(out)
    assert data.meta["pseudonym"]["scheme"].startswith("hmac")
    assert not set(data.users["user_id"].astype(str)) & {str(u) for u in range(1, 944)}
    # the folder already fixes the pseudonyms: a second --pseudonymize is refused, not ignored
    assert main(["train", "--prepared", out, "--pseudonymize", "--model", "popularity",
                 "--out", str(tmp_path / "m")]) == 2  # fmt: skip
    # the Spark engine has no pseudonymiser: refused before Spark starts, never silently skipped
    assert main(["prepare", "--engine", "spark", "--dataset", str(ml100k), "--pseudonymize",
                 "--out", str(tmp_path / "s")]) == 2  # fmt: skip
    assert not (tmp_path / "s").exists()
