"""Spark ETL equals the pandas data stage row for row: same report, ids, tables and split.

Each case runs the pandas loader + clean + split in memory and ``prepare_spark`` into a
folder, then compares every part. One Spark session (local[2]) serves the module; Java is
installed by ``spark_env`` when missing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lgrec.cli import main
from lgrec.data import (
    carve_valid,
    clean,
    load_dataset,
    split_cold_items,
    split_fixed,
    split_random,
    split_temporal,
)
from lgrec.data.prepared import read_prepared
from lgrec.data.spark import prepare_spark
from lgrec.errors import DataError
from lgrec.utils import data_dir
from tests.data.spark_env import spark as spark  # session fixture

SPLITS = {
    "fixed": lambda ds, seed: split_fixed(ds),
    "random": lambda ds, seed: split_random(ds, test_ratio=0.2, seed=seed),
    "temporal": lambda ds, seed: split_temporal(ds),
    "cold": lambda ds, seed: split_cold_items(ds, item_frac=0.2, seed=seed),
}


def _plain(df: pd.DataFrame) -> pd.DataFrame:
    df = df.reset_index(drop=True)
    return df.astype({c: str for c in df.columns if isinstance(df[c].dtype, pd.CategoricalDtype)})


def _tables(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns)
    for c in a.columns:
        x, y = a[c].tolist(), b[c].tolist()
        if c == "categories":
            x, y = [list(v) for v in x], [list(v) for v in y]
        assert x == y, f"table column {c!r} differs"


def check_same(session, tmp_path: Path, source, kind: str, *, seed=3, valid=0.1, k_core=None,
               load_kw=None, **kw):  # fmt: skip
    """pandas (load → clean → split → carve_valid) vs prepare_spark, every part compared."""
    ds = load_dataset(source, **(load_kw or {}))
    ds, report = clean(ds, k_core=k_core)
    sp = SPLITS[kind](ds, seed)
    if valid:
        sp = carve_valid(sp, ratio=valid, seed=seed)
    out = tmp_path / f"spark-{kind}"
    res = prepare_spark(
        session, str(source), out, split=kind, seed=seed, valid_ratio=valid, k_core=k_core, **kw
    )
    data2, sp2, report2 = read_prepared(out)
    assert str(report2) == str(report) and report2.steps == report.steps
    assert (data2.name, data2.rating_scale) == (ds.name, ds.rating_scale)
    assert sp2.kind == sp.kind == res.kind
    for part in ("train", "valid", "test"):
        a, b = getattr(sp, part), getattr(sp2, part)
        assert (a is None) == (b is None), part
        if a is not None:
            pd.testing.assert_frame_equal(_plain(a.interactions), _plain(b.interactions))
    np.testing.assert_array_equal(sp.cold_items, sp2.cold_items)
    _tables(ds.items, data2.items)
    _tables(ds.users, data2.users)
    return sp, res


@pytest.fixture
def logs_csv(tmp_path: Path) -> Path:
    """String ids (first-seen order), ISO times, a duplicate pair, an out-of-range rating."""
    rng = np.random.default_rng(0)
    n = 600
    users = rng.zipf(1.6, n) % 40
    items = rng.zipf(1.4, n) % 60
    t0 = pd.Timestamp("2024-01-01T00:00:00Z")
    df = pd.DataFrame(
        {
            "uid": [f"u{u:03d}" for u in users],
            "iid": [f"item-{i}" for i in items],
            "stars": rng.integers(1, 6, n).astype(float),
            "when": [(t0 + pd.Timedelta(seconds=int(s))).isoformat() for s in rng.integers(0, 9e5, n)],  # noqa: E501
        }
    )  # fmt: skip
    df.loc[5, ["uid", "iid", "when"]] = df.loc[4, ["uid", "iid", "when"]].to_numpy()  # tie
    f = tmp_path / "logs.csv"
    df.to_csv(f, index=False)
    return f


TAB = {"user_col": "uid", "item_col": "iid", "rating_col": "stars", "time_col": "when"}


@pytest.mark.parametrize("kind, fmt", [("random", "csv"), ("temporal", "jsonl"), ("cold", "pq")])
def test_table_logs_equal_pandas(spark, tmp_path, logs_csv, kind, fmt):
    """CSV with ISO times, JSON lines, Parquet without a time column (row order)."""
    src, kw = logs_csv, dict(TAB)
    if fmt == "jsonl":
        src = tmp_path / "logs.jsonl"
        pd.read_csv(logs_csv).to_json(src, orient="records", lines=True)
    elif fmt == "pq":
        src, kw = tmp_path / "logs.parquet", {"user_col": "uid", "item_col": "iid"}
        pd.read_csv(logs_csv).drop(columns=["when", "stars"]).to_parquet(src)
    sp, res = check_same(spark, tmp_path, src, kind, k_core=2, load_kw=kw, read_kw=kw)
    assert res.report.removed > 0  # duplicates and the k-core removed rows
    assert res.sizes == {p: len(getattr(sp, p)) for p in ("train", "valid", "test")}


def _real(name: str) -> Path:
    root = data_dir()
    if not (root / name).is_dir():
        pytest.skip(f"{name} not in {root}")
    return root


@pytest.mark.integration
def test_ml100k_equal_pandas(spark, tmp_path):
    root = _real("ml-100k")
    check_same(spark, tmp_path, "ml-100k", "fixed", load_kw={"data_dir": root, "fold": "u1"},
               data_dir=root, fold="u1")  # fmt: skip
    sp, _ = check_same(spark, tmp_path, "ml-100k", "random", k_core=10,
                       load_kw={"data_dir": root, "fold": None}, data_dir=root,
                       fold=None)  # fmt: skip
    assert sp.train.n_items < 1682  # the k-core dropped items and re-indexed


@pytest.mark.integration
def test_ml1m_sized_colakg_equal_pandas(spark, tmp_path):
    """CoLaKG's ML-1M (ML-1M's ratings ≥ 4, 998,539 rows; ML-1M's own ratings.dat is absent)."""
    root = _real("colakg-ml-1m")
    _, res = check_same(spark, tmp_path, "colakg-ml-1m", "random",
                         load_kw={"data_dir": root}, data_dir=root)  # fmt: skip
    assert sum(res.sizes.values()) == 998_539


def test_cli_prepare_spark_then_train(spark, tmp_path, ml100k):
    """`lgrec prepare --engine spark --out` = `lgrec prepare --out`; train reads --prepared."""
    outs = {}
    for engine in ("pandas", "spark"):
        outs[engine] = tmp_path / engine
        argv = ["prepare", "--dataset", str(ml100k), "--engine", engine, "--out", str(outs[engine])]
        assert main([*argv, "--split", "random", "--valid-ratio", "0.2", "--seed", "1"]) == 0
    a, b = read_prepared(outs["pandas"]), read_prepared(outs["spark"])
    for part in ("train", "valid", "test"):
        pd.testing.assert_frame_equal(
            _plain(getattr(a[1], part).interactions), _plain(getattr(b[1], part).interactions)
        )
    model = tmp_path / "model"
    argv = ["train", "--prepared", str(outs["spark"]), "--model", "popularity", "--out", str(model)]
    assert main(argv) == 0 and (model / "config.json").is_file()
    assert main([*argv, "--dataset", "ml-100k"]) == 2  # --prepared fixes the data


def test_refuses_what_it_cannot_do(spark, tmp_path):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="not empty"):
        prepare_spark(spark, str(tmp_path), busy)
    assert (busy / "notes.txt").read_text() == "mine"
    rec = tmp_path / "rec"
    rec.mkdir()
    (rec / "x.inter").write_text("user_id:token\titem_id:token\n1\t2\n")
    with pytest.raises(DataError, match="pandas engine"):
        prepare_spark(spark, str(rec), tmp_path / "out")
