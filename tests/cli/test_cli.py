"""The ``lgrec`` command end to end on small synthetic MovieLens-format files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lgrec.cli import build_parser, main
from lgrec.config import load_config, parse_param
from lgrec.errors import ConfigError
from tests.conftest import make_planted

GENRES = ["unknown", "Sci-Fi", "Romance", "Horror"]


@pytest.fixture(scope="module")
def ml_dir(tmp_path_factory) -> Path:
    """The planted data set written in ML-100K layout (u.data, u1.base/test, u.item, ...)."""
    root = tmp_path_factory.mktemp("data")
    d = root / "ml-100k"
    d.mkdir()
    ds = make_planted(n_users=60, items_per_topic=15, per_user=12)
    df = ds.interactions
    lines = [
        f"{u + 1}\t{i + 1}\t{int(r)}\t{t}"
        for u, i, r, t in zip(df.user, df.item, df.rating, df.timestamp + 880000000)
    ]
    rng = np.random.default_rng(0)
    test = rng.random(len(lines)) < 0.2
    (d / "u.data").write_text("\n".join(lines) + "\n")
    (d / "u1.base").write_text("\n".join(x for x, t in zip(lines, test) if not t) + "\n")
    (d / "u1.test").write_text("\n".join(x for x, t in zip(lines, test) if t) + "\n")
    (d / "u.genre").write_text("".join(f"{g}|{k}\n" for k, g in enumerate(GENRES)))
    items = []
    for k, (title, cats) in enumerate(zip(ds.items.title, ds.items.categories)):
        flags = "|".join("1" if g in cats else "0" for g in GENRES)
        items.append(f"{k + 1}|{title} (1995)|01-Jan-1995||http://x|{flags}")
    (d / "u.item").write_text("\n".join(items) + "\n", encoding="latin-1")
    users = [f"{u + 1}|{20 + u % 40}|{'MF'[u % 2]}|writer|0000{u}" for u in range(ds.n_users)]
    (d / "u.user").write_text("\n".join(users) + "\n")
    return root


FAST = [
    "--param",
    "lmgcn.spectral_k=16",
    "--param",
    "lmgcn.rank=16",
    "--param",
    "lightgcn.epochs=10",
    "--param",
    "bprmf.epochs=10",
    "--param",
    "lmgcn.rating_epochs=5",
]


def test_quickstart_runs_whole_pipeline(ml_dir, tmp_path, tmp_cache, capsys):
    out = tmp_path / "qs"
    rc = main(
        [
            "quickstart",
            "--data-dir",
            str(ml_dir),
            "--out",
            str(out),
            "--models",
            "popularity,graphfilter,lmgcn",
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "NDCG@10" in text and "lmgcn" in text and "example recommendations" in text
    for f in ("results.md", "results.csv", "results.json", "results.png"):
        assert (out / f).stat().st_size > 0
    assert (out / "models" / "lmgcn" / "model.safetensors").is_file()


def test_train_then_recommend_with_query(ml_dir, tmp_path, tmp_cache, capsys):
    out = tmp_path / "m"
    rc = main(
        [
            "train",
            "--dataset",
            "ml-100k",
            "--data-dir",
            str(ml_dir),
            "--model",
            "lmgcn",
            "--out",
            str(out),
            *FAST,
        ]
    )
    assert rc == 0
    capsys.readouterr()
    assert main(["recommend", "--model", str(out), "--user", "3", "-k", "4"]) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if x.strip()]
    assert len(lines) == 4 and lines[0].lstrip().startswith("1.")
    assert (
        main(
            [
                "recommend",
                "--model",
                str(out),
                "--user",
                "3",
                "-k",
                "4",
                "--query",
                "haunted ghost curse",
            ]
        )
        == 0
    )
    assert "(1995)" in capsys.readouterr().out
    assert main(["recommend", "--model", str(out), "--user", "nobody"]) == 2
    assert "unknown user 'nobody'" in capsys.readouterr().err


def test_prepare_profile_and_errors(ml_dir, tmp_path, tmp_cache, capsys):
    assert main(["prepare", "--dataset", "ml-100k", "--data-dir", str(ml_dir)]) == 0
    assert "split fixed" in capsys.readouterr().out
    assert main(["profile", "--dataset", "ml-100k", "--data-dir", str(ml_dir), "--user", "2"]) == 0
    assert "profile:" in capsys.readouterr().out
    rc = main(["prepare", "--dataset", "ml-100k", "--data-dir", str(tmp_path / "nowhere")])
    assert rc == 2 and "grouplens" in capsys.readouterr().err.lower()
    rc = main(
        [
            "train",
            "--dataset",
            "ml-100k",
            "--data-dir",
            str(ml_dir),
            "--model",
            "nope",
            "--out",
            str(tmp_path / "x"),
        ]
    )
    assert rc == 2 and "unknown model 'nope'" in capsys.readouterr().err


def test_config_file_and_params(tmp_path):
    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text('dataset = "gowalla"\nseed = 3\n[params.lmgcn]\ndim = 8\n')
    cfg = load_config(cfg_file, seed=5)
    assert (cfg.dataset, cfg.seed, cfg.params["lmgcn"]["dim"]) == ("gowalla", 5, 8)
    assert parse_param("lmgcn.alpha=[0.1, 0.2]") == ("lmgcn", "alpha", [0.1, 0.2])
    with pytest.raises(ConfigError):
        parse_param("nodot=3")
    cfg_file.write_text("bogus = 1\n")
    with pytest.raises(ConfigError, match="unknown setting"):
        load_config(cfg_file)
    with pytest.raises(ConfigError):
        load_config(None, split="sideways")
    with pytest.raises(ConfigError, match="text_max_length"):
        load_config(None, text_max_length=0)


def test_text_max_length_reaches_the_encoder(planted_split, monkeypatch):
    """--text-max-length / text_max_length is the pipeline encoder's truncation."""
    from lgrec.pipeline import Prepared, encode_items
    from lgrec.text import encoder as enc_mod

    seen = []

    class Spy(enc_mod.TextEncoder):
        def encode(self, texts, **kw):
            seen.append(self.max_length)
            return np.zeros((len(texts), 4), dtype=np.float32)

    monkeypatch.setattr(enc_mod, "TextEncoder", Spy)
    prep = Prepared(data=planted_split.train, split=planted_split, report=None)
    encode_items(prep, load_config(None, text_max_length=96))
    args = build_parser().parse_args(["embed", "--text-max-length", "128"])
    assert seen == [96] and args.text_max_length == 128


def test_bundle_records_the_text_truncation(planted_split, planted_text_emb, tmp_path):
    """A model fitted on pipeline embeddings made at N tokens saves N, and encodes queries and
    new items at N after loading; bundles from before the setting existed mean 256."""
    import json

    from lgrec.models import Recommender, TextKNN
    from lgrec.pipeline import Prepared, fit_model

    prep = Prepared(
        data=planted_split.train, split=planted_split, report=None, item_emb=planted_text_emb
    )
    cfg = load_config(None, text_max_length=64, refit=False)
    model, _ = fit_model(TextKNN(k=5), prep, cfg)
    model.save(tmp_path / "knn")
    meta_file = tmp_path / "knn" / "config.json"
    assert json.loads(meta_file.read_text())["meta"]["text_max_length"] == 64
    assert Recommender.load(tmp_path / "knn").text_encoder().max_length == 64
    old = json.loads(meta_file.read_text())
    del old["meta"]["text_max_length"]
    meta_file.write_text(json.dumps(old))
    assert Recommender.load(tmp_path / "knn").text_encoder().max_length == 256
    fresh, _ = fit_model(TextKNN(k=5), prep, load_config(None, refit=False))
    assert fresh.text_encoder().max_length == 128
