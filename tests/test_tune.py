"""``lgrec tune``: hyper-parameter search on the validation split, never the test split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lgrec.cli import main
from lgrec.config import RunConfig, load_config
from lgrec.data.dataset import Dataset, Split
from lgrec.errors import ConfigError
from lgrec.pipeline import Prepared, build_model
from lgrec.tune import Dim, parse_dim, parse_metric, resolve_space, tune, valid_score
from tests.conftest import make_planted, split_last


class Poison:
    """Stands in for the test split: reading anything from it fails the test."""

    def __getattribute__(self, name: str):
        raise AssertionError(f"the test split was read (.{name})")

    def __len__(self) -> int:
        raise AssertionError("the test split was read (len)")

    def __iter__(self):
        raise AssertionError("the test split was read (iter)")

    def __bool__(self) -> bool:
        raise AssertionError("the test split was read (bool)")


def poisoned_prep(ds: Dataset) -> Prepared:
    """Train/valid from ``ds`` with a test split that raises on any use."""
    s = split_last(ds)
    return Prepared(
        data=s.train, split=Split(train=s.train, test=Poison(), valid=s.valid), report=None
    )


@pytest.fixture(scope="module")
def prep(planted) -> Prepared:
    return poisoned_prep(planted)


FAST_BPRMF = {"bprmf": {"epochs": 10, "eval_every": 5}}


@pytest.fixture(scope="module")
def bprmf_run(prep):
    cfg = RunConfig(seed=0, params={k: dict(v) for k, v in FAST_BPRMF.items()})
    space = resolve_space("bprmf")
    return cfg, space, tune(prep, cfg, "bprmf", space, trials=4)


def test_poison_really_raises(prep):
    with pytest.raises(AssertionError, match="test split was read"):
        len(prep.split.test)
    with pytest.raises(AssertionError, match="test split was read"):
        _ = prep.split.test.interactions


def test_search_uses_only_train_and_valid(bprmf_run):
    # the whole search ran with a test split that raises on any access
    _, _, res = bprmf_run
    assert [t["state"] for t in res.trials] == ["COMPLETE"] * 4
    assert all(0.0 <= t["value"] <= 1.0 for t in res.trials)


def test_best_trial_is_the_best_and_in_space(bprmf_run, prep):
    cfg, space, res = bprmf_run
    values = [t["value"] for t in res.trials]
    assert res.best["value"] == max(values)
    assert len(set(values)) > 1  # the space matters on this data
    for d in space:
        for t in res.trials:
            assert d.contains(t["params"][d.name]), (d, t["params"])
    # refitting the best parameters reproduces the best validation score
    again = build_model("bprmf", cfg, **res.best["params"])
    again.fit(prep.split.train, valid=prep.split.valid)
    assert valid_score(again, prep, res.metric) == pytest.approx(res.best["value"])
    # the table lists every trial, best first
    lines = res.table().splitlines()
    assert "valid Recall@20" in lines[0] and len(lines) == 2 + 4
    assert lines[2].split()[1] == str(res.best["number"])


def test_written_toml_loads_as_run_config(bprmf_run, tmp_path):
    _, space, res = bprmf_run
    toml_path, log_path = res.write(tmp_path / "tune.toml")
    cfg = load_config(toml_path)
    params = cfg.params["bprmf"]
    assert params == res.best_params
    assert params["epochs"] == 10  # fixed parameters are kept
    assert all(d.contains(params[d.name]) for d in space)
    build_model("bprmf", cfg)  # every key is a constructor argument
    doc = json.loads(log_path.read_text())
    assert len(doc["trials"]) == 4 and doc["metric"] == "Recall@20"
    assert doc["best"]["value"] == res.best["value"]


def test_same_seed_same_search_other_seed_differs(prep):
    def run(seed: int) -> list[tuple]:
        cfg = RunConfig(seed=seed, params={"bprmf": {"epochs": 5}})
        space = resolve_space("bprmf", flags=["factors=8,16"])
        res = tune(prep, cfg, "bprmf", space, trials=3)
        return [(json.dumps(t["params"], sort_keys=True), t["value"]) for t in res.trials]

    first = run(0)
    assert run(0) == first
    assert run(1) != first


def test_repeated_point_reuses_the_first_fit(prep):
    cfg = RunConfig(seed=0, params={"bprmf": {"epochs": 5}})
    space = resolve_space("bprmf", flags=["factors=8,"], defaults=False)
    res = tune(prep, cfg, "bprmf", space, trials=3)
    first, *rest = res.trials
    assert "repeat_of" not in first and first["fit_s"] > 0
    assert [(t["repeat_of"], t["value"], t["fit_s"]) for t in rest] == [
        (0, first["value"], 0.0)
    ] * 2


def test_graphfilter_space_ints_and_floats(prep):
    space = resolve_space("graphfilter")
    by = {d.name: d for d in space}
    assert by["k"].integer and by["k"].log
    assert not by["alpha"].integer
    res = tune(prep, RunConfig(seed=0), "graphfilter", space, trials=3, metric="ndcg@10")
    assert res.metric.name == "NDCG@10"
    for t in res.trials:
        assert isinstance(t["params"]["k"], int) and isinstance(t["params"]["alpha"], float)
        assert 0.0 <= t["params"]["user_exp"] <= 0.6 and 0.2 <= t["params"]["item_exp"] <= 0.6


def test_rating_metric_is_minimised(prep):
    cfg = RunConfig(seed=0, params={"biasedmf": {"epochs": 10}})
    space = resolve_space("biasedmf", flags=["factors=4,8"], defaults=False)
    res = tune(prep, cfg, "biasedmf", space, trials=3)
    assert res.metric.name == "RMSE" and res.metric.direction == "minimize"
    assert res.best["value"] == min(t["value"] for t in res.trials)


# ---- the search space ----------------------------------------------------------------------
def test_space_precedence_default_table_flags():
    space = resolve_space(
        "lightgcn", table={"lr": "1e-4:1e-2:log", "dim": [8, 16]}, flags=["dim=4,8"]
    )
    by = {d.name: d for d in space}
    assert by["lr"] == Dim("lr", 1e-4, 1e-2, True)
    assert by["dim"].choices == (4, 8)
    assert by["n_layers"] == Dim("n_layers", 1, 4)  # from the default space
    only = resolve_space("lightgcn", table={"reg": {"low": 0.0, "high": 0.1}}, defaults=False)
    assert only == [Dim("reg", 0.0, 0.1)]


def test_integral_bounds_follow_the_default_type():
    assert parse_dim("n_layers", "1:4", default=3).integer
    assert not parse_dim("lr", "0:1", default=0.005).integer
    assert parse_dim("k", "8:64:log", default=(16, 32)).integer


@pytest.mark.parametrize(
    ("model", "flags", "match"),
    [
        ("nope", [], "unknown model 'nope'"),
        ("bprmf", ["bogus=1:2"], "no parameter 'bogus'"),
        ("bprmf", ["lr=0.1:0.01"], r"low \(0.1\) must be below high \(0.01\)"),
        ("bprmf", ["lr=0.1:0.1"], "must be below high"),
        ("bprmf", ["reg=0:1:log"], "log range needs low > 0"),
        ("bprmf", ["lr=-1:1:log"], "log range needs low > 0"),
        ("bprmf", ["lr=1:2:3"], "expected LOW:HIGH or LOW:HIGH:log"),
        ("bprmf", ["lr=a:b"], "bounds must be numbers"),
        ("bprmf", ["lr=0.01"], "a fixed value goes in --param"),
        ("bprmf", ["factors=,"], "choices is empty"),
        ("bprmf", ["=1:2"], "expected NAME=LOW:HIGH"),
        ("popularity", [], "nothing to tune for model 'popularity'"),
    ],
)
def test_bad_spaces_raise(model, flags, match):
    with pytest.raises(ConfigError, match=match):
        resolve_space(model, flags=flags)


def test_bad_metric_and_budget_raise(prep):
    for bad in ("recall@0", "auc", "ndcg"):
        with pytest.raises(ConfigError, match="expected Recall@K"):
            parse_metric(bad)
    space = [Dim("factors", choices=(4,))]
    cfg = RunConfig(params={"bprmf": {"epochs": 1}})
    with pytest.raises(ConfigError, match="needs a model with a rating head"):
        tune(prep, cfg, "bprmf", space, metric="RMSE")
    with pytest.raises(ConfigError, match="must be positive"):
        tune(prep, cfg, "bprmf", space, trials=0)
    with pytest.raises(ConfigError, match=r"no parameter\(s\) \['bogus'\]"):
        tune(prep, RunConfig(params={"bprmf": {"bogus": 1}}), "bprmf", space)


def test_no_validation_split_raises(planted):
    s = split_last(planted)
    prep = Prepared(s.train, Split(train=s.train, test=Poison(), valid=None), None)
    with pytest.raises(ConfigError, match="valid-ratio > 0"):
        tune(prep, RunConfig(valid_ratio=0.0), "bprmf", resolve_space("bprmf"), trials=1)


# ---- the command ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ratings_csv(tmp_path_factory) -> Path:
    ds = make_planted(n_users=60, items_per_topic=15, per_user=12)
    df = ds.interactions
    path = tmp_path_factory.mktemp("data") / "ratings.csv"
    lines = ["user_id,item_id,rating,timestamp"]
    lines += [f"u{u},i{i},{r},{t}" for u, i, r, t in zip(df.user, df.item, df.rating, df.timestamp)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_cli_tune_writes_config_that_evaluate_reads(ratings_csv, tmp_path, capsys):
    conf = tmp_path / "lgrec.toml"
    conf.write_text(
        'split = "random"\n[params.bprmf]\nepochs = 5\n[tune.bprmf]\nfactors = [8, 16]\n'
    )
    out = tmp_path / "best.toml"
    args = ["--config", str(conf), "--dataset", str(ratings_csv), "--model", "bprmf"]
    space = ["--space", "lr=0.005:0.05:log", "--no-default-space"]
    rc = main(["tune", *args, *space, "--trials", "3", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "valid Recall@20" in text and "best valid Recall@20" in text
    cfg = load_config(out)
    assert set(cfg.params["bprmf"]) == {"epochs", "factors", "lr"}
    assert cfg.params["bprmf"]["factors"] in (8, 16)
    assert 0.005 <= cfg.params["bprmf"]["lr"] <= 0.05
    assert len(json.loads(out.with_suffix(".json").read_text())["trials"]) == 3
    rc = main(["evaluate", "--config", str(out), "--dataset", str(ratings_csv), "--split",
               "random", "--models", "bprmf", "--out", str(tmp_path / "rep")])  # fmt: skip
    assert rc == 0 and "bprmf" in capsys.readouterr().out


def test_cli_tune_errors_are_one_line(ratings_csv, tmp_path, capsys):
    base = [
        "tune",
        "--dataset",
        str(ratings_csv),
        "--split",
        "random",
        "--out",
        str(tmp_path / "t.toml"),
    ]
    assert main([*base, "--model", "bprmf", "--valid-ratio", "0", "--trials", "1"]) == 2
    assert "--valid-ratio > 0" in capsys.readouterr().err
    assert main([*base, "--model", "bprmf", "--space", "lr=1:0"]) == 2
    assert "must be below high" in capsys.readouterr().err
    assert main([*base, "--model", "nope"]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err
    conf = tmp_path / "bad.toml"
    conf.write_text("tune = 3\n")
    assert main([*base, "--model", "bprmf", "--config", str(conf)]) == 2
    assert "tune must be a table" in capsys.readouterr().err
    assert not (tmp_path / "t.toml").exists()
