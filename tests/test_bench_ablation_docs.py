"""benchmarks/ablation_docs.py: the rows of docs/ablation.md read back, so rerunning some
configurations keeps the others as documented."""

from __future__ import annotations

import importlib
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def mods():
    bench = str(ROOT / "benchmarks")
    sys.path.insert(0, bench)  # the benchmarks import their siblings by name
    try:
        return importlib.import_module("ablation"), importlib.import_module("ablation_docs")
    finally:
        sys.path.remove(bench)


def _rows(ablation, rng, label: str) -> list[dict]:
    def part(sparse: bool) -> dict:
        d = {m: float(rng.uniform(0.05, 0.4)) for m in ablation.METRICS}
        d["tail:n_users"] = 441.0
        if sparse:
            d["<=5:n_users"] = 12.0
        else:
            d["<=5:Recall@20"] = float("nan")  # a stratum with no users: "–"
        return d

    return [{"config": label, "seed": s, "fit_s": float(rng.uniform(1, 300)),
             "test": part(True), "valid": part(False)} for s in range(3)]  # fmt: skip


def test_rows_not_rerun_come_back_as_printed_with_their_commands(mods):
    ablation, docs = mods
    rng = np.random.default_rng(0)
    rows = _rows(ablation, rng, "LightGCN") + _rows(ablation, rng, "full model")
    summary = ablation.summarise(rows, ["LightGCN", "full model"])
    run = "python benchmarks/ablation.py --dataset d --seeds 0,1,2"
    cmds = [run, f'{run} --configs "full model"']
    test, valid = ablation.table(summary), ablation.table(summary, "valid")
    block = (f"Commands: `{cmds[0]}`, then `{cmds[1]}` (3 seeds per row; …)\n\n"
             f"{test}\n\nValidation:\n\n{valid}\n")  # fmt: skip
    text = f"# A\n\n<!-- ablation:d -->\n{block}<!-- /ablation:d -->\n"
    kept, ran = docs.kept_rows(text, "d", {"full model"})
    assert list(kept) == ["LightGCN"] and ran == cmds[:1]  # the rerun row's own command goes
    back, want = kept["LightGCN"], summary[0]
    assert back["n_seeds"] == 3 and back["fit_s"] == pytest.approx(want["fit_s"], abs=0.05)
    for key in (k for k in want if k.startswith(("test:", "valid:"))):
        (m, sd), got = want[key], back[key]
        if math.isnan(m):
            assert math.isnan(got[0]), key
        else:
            assert got[0] == pytest.approx(m, abs=5e-5) and got[1] == pytest.approx(sd, abs=5e-5)
    assert back["test:<=5:n_users"][0] == 12 and math.isnan(back["valid:<=5:n_users"][0])
    assert docs.kept_rows(text, "other", set()) == ({}, [])


def test_every_documented_block_reads_back_to_the_same_tables(mods):
    ablation, docs = mods
    text = (ROOT / "docs" / "ablation.md").read_text(encoding="utf-8")
    datasets = re.findall(r"<!-- ablation:([\w-]+) -->", text)
    assert datasets, "docs/ablation.md has no ablation block"
    for ds in datasets:
        kept, ran = docs.kept_rows(text, ds, set())
        assert kept and ran, ds
        block = docs.block_of(text, ds)
        summary = list(kept.values())
        assert ablation.table(summary) in block, ds
        assert ablation.table(summary, "valid") in block, ds


def test_a_cell_it_cannot_read_is_an_error_naming_it(mods):
    _, docs = mods
    with pytest.raises(ValueError, match=r"'0\.12 or so'"):
        docs._cell("0.12 or so")
