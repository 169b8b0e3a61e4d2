"""Hyper-parameter search for one model on the validation split (never the test split).

Each trial builds the model with the fixed parameters (``[params.MODEL]`` / ``--param``) plus
one point θ of the search space, fits it on ``split.train`` (early-stopping on ``split.valid``
where the model does) and scores it on ``split.valid`` with lgrec's own evaluation code:

    θ* = argmax_θ  m(f_θ(train), valid)      (argmin for RMSE / MAE)

where ``m`` is a full-ranking metric (Recall@k, NDCG@k, Precision@k, HitRate@k, MRR@k; train
items excluded, :func:`lgrec.eval.evaluate_ranking`) or a rating error
(:func:`lgrec.eval.evaluate_rating`). ``valid`` is carved from training data
(:func:`lgrec.data.carve_valid`), so the test split stays untouched until the final report.

Points are proposed by Optuna's TPE sampler (Bergstra et al., 2011), seeded with the run's
``seed``: it models p(θ | good) and p(θ | bad) from the trials so far and proposes the θ that
maximises their ratio. The first 10 trials are seeded random draws. Each model is fitted with
the same seed, so a run is deterministic for a given seed and trial budget (a ``timeout`` may
stop it after a different number of trials).

The search space (ranges and choices per parameter, defaults per model) is
:mod:`lgrec.tune_space`.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lgrec.config import RunConfig
from lgrec.errors import ConfigError
from lgrec.models.base import Recommender, registered_models
from lgrec.pipeline import Prepared, build_model, encode_items
from lgrec.progress import working
from lgrec.tune_space import DEFAULT_SPACES, Dim, model_params, parse_dim, resolve_space
from lgrec.utils import atomic_write_text

log = logging.getLogger(__name__)

RANKING = {"recall": "Recall", "precision": "Precision", "ndcg": "NDCG", "hitrate": "HitRate"}
RANKING |= {"hr": "HitRate", "mrr": "MRR"}
RATING = {"rmse": "RMSE", "mae": "MAE"}


# ---- the objective -------------------------------------------------------------------------
@dataclass(frozen=True)
class Metric:
    """The validation metric: ``Recall@20``, ``NDCG@10``, ..., ``RMSE`` or ``MAE``."""

    name: str
    k: int | None = None

    @property
    def direction(self) -> str:
        return "minimize" if self.k is None else "maximize"


def parse_metric(text: str) -> Metric:
    """``"ndcg@10"`` → Metric("NDCG@10", 10); ``"rmse"`` → Metric("RMSE")."""
    t = text.strip().lower()
    if t in RATING:
        return Metric(RATING[t])
    m = re.fullmatch(r"([a-z]+)@(\d+)", t)
    if m and m[1] in RANKING and int(m[2]) > 0:
        return Metric(f"{RANKING[m[1]]}@{int(m[2])}", int(m[2]))
    raise ConfigError(
        f"--metric {text!r}: expected Recall@K, NDCG@K, Precision@K, HitRate@K, MRR@K, RMSE or MAE"
    )


def default_metric(model: str) -> Metric:
    """RMSE for the rating model (biasedmf), Recall@20 for every other model."""
    return Metric("RMSE") if model == "biasedmf" else Metric("Recall@20", 20)


def valid_score(model: Recommender, prep: Prepared, metric: Metric) -> float:
    """``metric`` of a fitted ``model`` on ``prep.split.valid`` (train items excluded)."""
    from lgrec.eval import evaluate_ranking, evaluate_rating

    split = prep.split
    if metric.k is None:
        return float(evaluate_rating(model, split.valid)[metric.name])
    res = evaluate_ranking(model, split.train, split.valid, ks=(metric.k,))
    return float(res[metric.name])


def _fit_extra(model: Recommender, prep: Prepared, cfg: RunConfig) -> dict[str, Any]:
    """Item text embeddings (encoded once, cached on ``prep``) for models that take them."""
    no_text = model.name == "graphfilter" and not _any_positive(model.semantic_weight)
    if "item_emb" in inspect.signature(model.fit).parameters and not no_text:
        return {"item_emb": encode_items(prep, cfg)}
    return {}


def _any_positive(v: Any) -> bool:
    return any(x > 0 for x in (v if isinstance(v, list | tuple) else [v]))


# ---- the search ----------------------------------------------------------------------------
@dataclass
class TuneResult:
    """All trials of one search, best first in :meth:`ranked`; writers for TOML and JSON."""

    model: str
    metric: Metric
    space: list[Dim]
    fixed: dict[str, Any]
    trials: list[dict[str, Any]]
    seed: int
    dataset: str = ""
    sampler: str = "optuna TPE"
    meta: dict[str, Any] = field(default_factory=dict)

    def ranked(self) -> list[dict[str, Any]]:
        """Finished trials best first (ties: earlier trial first), then failed ones."""
        sign = 1.0 if self.metric.direction == "minimize" else -1.0
        done = [t for t in self.trials if t["state"] == "COMPLETE"]
        done.sort(key=lambda t: (sign * t["value"], t["number"]))
        return done + [t for t in self.trials if t["state"] != "COMPLETE"]

    @property
    def best(self) -> dict[str, Any]:
        return self.ranked()[0]

    @property
    def best_params(self) -> dict[str, Any]:
        """Fixed parameters plus the best trial's searched ones (what to train with)."""
        return {**self.fixed, **self.best["params"]}

    def table(self) -> str:
        """An aligned plain-text table of the trials, best first."""
        names = [d.name for d in self.space]
        cols = ["rank", "trial", f"valid {self.metric.name}", *names, "best_epoch", "fit_s"]
        rows = []
        for r, t in enumerate(self.ranked(), 1):
            value = f"{t['value']:.4f}" if t["state"] == "COMPLETE" else t["state"].lower()
            params = [_fmt(t["params"].get(n)) for n in names]
            ep = t.get("best_epoch")
            rows.append([str(r), str(t["number"]), value, *params, _fmt(ep), f"{t['fit_s']:.1f}"])
        widths = [max(len(c), *(len(row[j]) for row in rows)) for j, c in enumerate(cols)]
        lines = ["  ".join(c.rjust(w) for c, w in zip(cols, widths))]
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in rows]
        return "\n".join(lines)

    def to_toml(self) -> str:
        """``[params.MODEL]`` with the best parameters (read by ``lgrec evaluate --config``)."""
        b = self.best
        lines = [
            f"# lgrec tune: {self.model} on {self.dataset}, {self.sampler}, seed {self.seed}",
            f"# best valid {self.metric.name} = {b['value']:.6g} "
            f"(trial {b['number']} of {len(self.trials)})",
            *(f"# searched: {d}" for d in self.space),
            f"[params.{_toml_key(self.model)}]",
            *(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in self.best_params.items()),
        ]
        return "\n".join(lines) + "\n"

    def to_json(self) -> str:
        doc = {
            "model": self.model,
            "dataset": self.dataset,
            "metric": self.metric.name,
            "direction": self.metric.direction,
            "sampler": self.sampler,
            "seed": self.seed,
            "space": [str(d) for d in self.space],
            "fixed": self.fixed,
            "best": {"trial": self.best["number"], "value": self.best["value"]}
            | {"params": self.best_params},
            **self.meta,
            "trials": self.trials,
        }
        return json.dumps(doc, indent=2, default=str) + "\n"

    def write(self, out: str | Path, log_path: str | Path | None = None) -> tuple[Path, Path]:
        """Write the TOML (``out``) and the JSON trial log (default: ``out`` with ``.json``)."""
        out = Path(out)
        log_file = Path(log_path) if log_path else out.with_suffix(".json")
        atomic_write_text(out, self.to_toml())
        atomic_write_text(log_file, self.to_json())
        return out, log_file


def tune(
    prep: Prepared,
    cfg: RunConfig,
    model: str,
    space: list[Dim],
    *,
    metric: Metric | str | None = None,
    trials: int | None = 20,
    timeout: float | None = None,
) -> TuneResult:
    """Search ``space`` for ``model`` on ``prep.split.valid``; ``prep.split.test`` is never read.

    Fixed parameters come from ``cfg.params[model]``; searched ones override them. Stops after
    ``trials`` trials or ``timeout`` seconds, whichever comes first.
    """
    import optuna

    accepted = model_params(model)
    metric = default_metric(model) if metric is None else metric
    metric = parse_metric(metric) if isinstance(metric, str) else metric
    if metric.k is None and not registered_models()[model].has_rating_head:
        raise ConfigError(f"--metric {metric.name} needs a model with a rating head, not {model!r}")
    if trials is not None and (isinstance(trials, bool) or not isinstance(trials, int)):
        raise ConfigError(f"--trials must be a positive integer, got {trials!r}")
    if (trials is not None and trials <= 0) or (timeout is not None and timeout <= 0):
        raise ConfigError(f"--trials and --timeout must be positive, got {trials}, {timeout}")
    if trials is None and timeout is None:
        raise ConfigError("give a budget: --trials N and/or --timeout SECONDS")
    valid = prep.split.valid
    if valid is None or len(valid) == 0:
        raise ConfigError(
            "tune needs a validation split carved from training data: set --valid-ratio > 0 "
            f"(got {cfg.valid_ratio}) or use a data set with a valid fold"
        )
    fixed = dict(cfg.params.get(model, {}))
    bad = sorted(set(fixed) - set(accepted))
    if bad:
        raise ConfigError(f"[params.{model}]: model {model!r} has no parameter(s) {bad}")
    seen: dict[str, int] = {}

    def objective(trial: optuna.Trial) -> float:
        params = {d.name: d.suggest(trial) for d in space}
        key = json.dumps(params, sort_keys=True)
        if key in seen:  # TPE may repeat a point: fits are deterministic, reuse the value
            prev = study.trials[seen[key]]
            trial.set_user_attr("repeat_of", prev.number)
            trial.set_user_attr("fit_s", 0.0)
            if "best_epoch" in prev.user_attrs:
                trial.set_user_attr("best_epoch", prev.user_attrs["best_epoch"])
            return float(prev.value) if prev.value is not None else math.nan
        seen[key] = trial.number
        m = build_model(model, cfg, **params)
        extra = _fit_extra(m, prep, cfg)
        t0 = time.perf_counter()  # fit on train only, early-stopping on valid; no refit
        fits = [t.user_attrs["fit_s"] for t in study.trials if t.user_attrs.get("fit_s")]
        of = f"/{trials}" if trials else ""
        with working(f"tune {model}: trial {trial.number + 1}{of}", expect=_mean(fits)):
            m = m.fit(prep.split.train, valid=prep.split.valid, **extra)
        trial.set_user_attr("fit_s", round(time.perf_counter() - t0, 3))
        if isinstance(getattr(m, "best_epoch_", None), int):
            trial.set_user_attr("best_epoch", m.best_epoch_)
        value = valid_score(m, prep, metric)
        log.info(
            "tune %s trial %d %s: valid %s %.4f", model, trial.number, params, metric.name, value
        )
        return value

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=cfg.seed)
    study = optuna.create_study(direction=metric.direction, sampler=sampler)
    t0 = time.perf_counter()
    study.optimize(objective, n_trials=trials, timeout=timeout)
    rows = [
        {
            "number": t.number,
            "state": t.state.name,
            "value": t.value,
            "params": dict(t.params),
            **{k: t.user_attrs[k] for k in ("best_epoch", "repeat_of") if k in t.user_attrs},
            "fit_s": t.user_attrs.get("fit_s", 0.0),
        }
        for t in study.trials
    ]
    if not any(r["state"] == "COMPLETE" for r in rows):
        raise ConfigError(
            f"no trial of {model!r} finished with a valid {metric.name} ({len(rows)} tried): "
            "narrow the space (e.g. a smaller lr range)"
        )
    meta = {"search_s": round(time.perf_counter() - t0, 3), "optuna": optuna.__version__}
    meta |= {"split": cfg.split, "valid_ratio": cfg.valid_ratio}
    return TuneResult(
        model, metric, space, fixed, rows, cfg.seed, dataset=prep.data.name, meta=meta
    )


# ---- small formatting helpers --------------------------------------------------------------
def _mean(values: list[float]) -> float | None:
    """Mean of ``values`` (the ETA of the next trial), ``None`` when there are none."""
    return sum(values) / len(values) if values else None


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _toml_key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("nan" if math.isnan(v) else str(v))
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise ConfigError(f"cannot write {v!r} ({type(v).__name__}) to TOML")


__all__ = [
    "DEFAULT_SPACES",
    "Dim",
    "Metric",
    "TuneResult",
    "default_metric",
    "parse_dim",
    "parse_metric",
    "resolve_space",
    "tune",
    "valid_score",
]
