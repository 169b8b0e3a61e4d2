"""``--kg DIR`` on train/evaluate and ``lgrec predict-categories`` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lgrec.cli import main
from lgrec.models.lmgcn import LMGCN
from tests.cli.test_cli import FAST, GENRES, ml_dir  # noqa: F401 (fixture)


@pytest.fixture(scope="module")
def kg_dir(ml_dir, tmp_path_factory) -> Path:  # noqa: F811
    """A RecBole KG over the ML-format items: item k is entity m<k>, linked to its genre."""
    d = tmp_path_factory.mktemp("kg") / "tiny-kg"
    d.mkdir()
    links, triples = (
        ["item_id:token\tentity_id:token"],
        ["head_id:token\trelation_id:token\ttail_id:token"],
    )
    for line in (ml_dir / "ml-100k" / "u.item").read_text(encoding="latin-1").splitlines():
        f = line.split("|")
        genre = GENRES[f[5:].index("1")]
        links.append(f"{f[0]}\tm{f[0]}")
        triples.append(f"m{f[0]}\tfilm.genre\tg.{genre}")
    (d / "tiny.link").write_text("\n".join(links) + "\n")
    (d / "tiny.kg").write_text("\n".join(triples) + "\n")
    return d


@pytest.fixture(scope="module")
def kg_run(ml_dir, kg_dir, tmp_path_factory):  # noqa: F811
    """``lgrec train --model lmgcn --kg DIR``, recording the item graph LMGCN.fit received."""
    seen = []
    real = LMGCN.fit

    def spy(self, data, *, valid=None, item_emb=None, user_profiles=None, item_graph=None):
        seen.append(item_graph)
        kw = dict(valid=valid, item_emb=item_emb, user_profiles=user_profiles)
        return real(self, data, item_graph=item_graph, **kw)

    mp = pytest.MonkeyPatch()
    mp.setattr(LMGCN, "fit", spy)
    mp.setenv("LGREC_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    out = tmp_path_factory.mktemp("models") / "lmgcn"
    try:
        rc = main(["train", "--dataset", "ml-100k", "--data-dir", str(ml_dir), "--model",
                   "lmgcn", "--kg", str(kg_dir), "--out", str(out), "--no-refit",
                   "--param", "lmgcn.rating_head=false", *FAST])  # fmt: skip
    finally:
        mp.undo()
    assert rc == 0
    return out, seen


def test_kg_links_reach_lmgcn_as_its_item_graph(kg_run, ml_dir):  # noqa: F811
    _, seen = kg_run
    assert len(seen) == 1  # one fit (--no-refit)
    g = seen[0]
    assert g is not None and g.shape[0] == g.shape[1] == 45 and g.nnz > 0
    genre = [
        line.split("|")[5:].index("1")
        for line in (ml_dir / "ml-100k" / "u.item").read_text(encoding="latin-1").splitlines()
    ]
    rows, cols = g.nonzero()
    assert all(genre[r] == genre[c] for r, c in zip(rows, cols))  # links only within a genre


def test_kg_errors_name_the_problem(ml_dir, tmp_path, tmp_cache, capsys):  # noqa: F811
    args = ["train", "--dataset", "ml-100k", "--data-dir", str(ml_dir), "--out", str(tmp_path)]
    assert main([*args, "--model", "popularity", "--kg", str(tmp_path)]) == 2
    assert "--kg: model 'popularity' takes no item graph" in capsys.readouterr().err
    assert main([*args, "--model", "lmgcn", "--kg", "no-such-kg", *FAST]) == 2
    err = capsys.readouterr().err  # a relative name: the path and the data root both tried
    assert f"--kg no-such-kg: no knowledge-graph folder there nor at {ml_dir / 'no-such-kg'}" in err


def test_predict_categories_names_each_items_genre(kg_run, ml_dir, capsys):  # noqa: F811
    out, _ = kg_run
    assert main(["predict-categories", "--model", str(out), "--all", "-k", "2", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 45
    genre = {
        line.split("|")[0]: GENRES[line.split("|")[5:].index("1")]
        for line in (ml_dir / "ml-100k" / "u.item").read_text(encoding="latin-1").splitlines()
    }
    hits = sum(r["categories"][0]["category"] == genre[r["item_id"]] for r in rows)
    assert hits >= 40, hits  # the planted genres are in the titles the head reads
    for r in rows:
        p = [c["probability"] for c in r["categories"]]
        assert len(p) == 2 and 1.0 >= p[0] >= p[1] >= 0.0
    assert main(["predict-categories", "--model", str(out), "--item", "1", "--item", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split("\t")[0] for ln in lines] == ["1", "2"]
    assert main(["predict-categories", "--model", str(out), "--item", "nope"]) == 2
    assert "unknown item id(s) ['nope']" in capsys.readouterr().err
