"""Plain-text table formatting and the report folder (md, csv, json, png)."""

from __future__ import annotations

import csv
import json
import math

import pytest

from lgrec.errors import ConfigError
from lgrec.eval.report import comparison_table, write_report

ROWS = [
    {"Recall@20": 0.123456, "model": "LightGCN", "fit_s": 12.345, "n_users": 1234},
    {"model": "Pop", "Recall@20": 0.05, "NDCG@20": 0.04321, "RMSE": math.nan},
]


def test_comparison_table_formats_and_aligns() -> None:
    lines = comparison_table(ROWS).splitlines()
    header, rule, first, second = lines
    assert header.split() == ["model", "Recall@20", "fit_s", "n_users", "NDCG@20", "RMSE"]
    assert set(rule.replace(" ", "")) == {"-"}
    assert first.split() == ["LightGCN", "0.1235", "12.3", "1,234", "—", "—"]
    assert second.split() == ["Pop", "0.0500", "—", "—", "0.0432", "—"]
    # numbers are right-aligned under their header
    end = header.index("Recall@20") + len("Recall@20")
    assert first[end - len("0.1235") : end] == "0.1235"
    assert second[end - len("0.0500") : end] == "0.0500"


def test_comparison_table_columns_keep_model_first() -> None:
    lines = comparison_table(ROWS, columns=["NDCG@20", "model"]).splitlines()
    assert lines[0].split() == ["model", "NDCG@20"]
    assert lines[2].split() == ["LightGCN", "—"]


def test_write_report_files(tmp_path) -> None:
    paths = write_report(ROWS, tmp_path / "out", title="Demo results", meta={"dataset": "ml-100k"})
    assert set(paths) == {"md", "csv", "json", "png"}
    doc = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert doc["title"] == "Demo results" and doc["meta"]["dataset"] == "ml-100k"
    assert {"date", "machine", "command"} <= set(doc["meta"])
    assert doc["rows"][0] == ROWS[0]
    assert doc["rows"][1]["RMSE"] is None  # NaN stored as null
    with paths["csv"].open(encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    assert table[0]["model"] == "LightGCN"
    assert float(table[0]["Recall@20"]) == pytest.approx(0.123456)
    assert table[1]["fit_s"] == ""
    md = paths["md"].read_text(encoding="utf-8")
    assert md.startswith("# Demo results")
    assert "| LightGCN | 0.1235 | 12.3 | 1,234 | — | — |" in md
    png = paths["png"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000
    leftovers = [p.name for p in (tmp_path / "out").iterdir()]
    assert sorted(leftovers) == ["results.csv", "results.json", "results.md", "results.png"]


def test_write_report_chart_without_chart_metrics(tmp_path) -> None:
    paths = write_report([{"model": "A", "RMSE": 0.9}], tmp_path, title="t")
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"


def test_write_report_needs_rows(tmp_path) -> None:
    with pytest.raises(ConfigError, match="rows"):
        write_report([], tmp_path, title="t")
