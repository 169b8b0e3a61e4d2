"""Peer libraries on lgrec's cold-start item split, scored by lgrec's metric code.

Usage (from the repository root, after ``bash benchmarks/peers/setup_peers.sh``)::

    benchmarks/peers/.venv/bin/python benchmarks/peers/cold_peers.py \\
        [--dataset ml-100k] [--seeds 0,1,2] [--peers random,als-ridge,lightfm-warp-side]

Split: ``lgrec.pipeline.prepare(RunConfig(dataset, split="cold", seed))``; 20 % of the items
(``split.cold_items``) are held out entirely and ``split.test`` holds all their interactions.
Every peer sees the same item side features as lgrec's cold-start map
(:func:`lgrec.models.coldstart.side_features`: the MiniLM text embedding of the item text,
category one-hot, release-year bucket one-hot).

Peers:

* ``random``: seeded uniform scores (sanity floor).
* ``als-ridge``: implicit ALS (15 iterations, ``alpha=1``) on ``full_train``; a ridge map from
  the side features to the ALS item factors on the warm items,
  :math:`W = (F_w^\\top F_w + \\lambda I)^{-1} F_w^\\top Y_w`; cold item factors :math:`F_c W`.
* ``lightfm-warp-side``: LightFM WARP with item features [identity of the training items |
  text | genres | year bucket]; the text part is the MiniLM embedding projected on its top
  :data:`TEXT_DIMS` principal components (fitted on the training items; the full 384 dims make
  an epoch ~10x slower) and scaled to unit norm, the genres of an item sum to 1. Items outside
  training have no identity column, so their representation comes from their features only
  (LightFM's cold start). WARP samples its negatives among the training items only.

Tuning never touches the test part: a *pseudo-cold* fold holds out 20 % of the warm items
(seeded by the split seed) with all their ``full_train`` rows; each configuration is fitted on
the rest and scored by Recall@20 of the held-out interactions, every user ranking only the
held-out items (lgrec's ``evaluate_ranking`` with ``candidates``). The chosen configuration is
refitted on ``full_train``. Test metrics: ``cold_*`` ranks only the cold items, ``cold_all_*``
all items (train + valid items excluded), as ``lgrec.eval.protocol.evaluate_model(cold=True)``.
``fit_s`` is the final refit (ALS + ridge map, or LightFM's epochs); ``tune_s`` the search.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from common import FactorScorer, product_grid, seed_all, threads, timed
from implicit_models import _als
from lightfm_models import DEFAULTS as LIGHTFM_DEFAULTS
from lightfm_models import _scorer
from threadpoolctl import threadpool_limits

from lgrec.config import RunConfig
from lgrec.data.dataset import Dataset, Split
from lgrec.eval.protocol import evaluate_ranking
from lgrec.models.coldstart import side_features
from lgrec.pipeline import prepare
from lgrec.text.encoder import TextEncoder

log = logging.getLogger("peers.cold")

PEERS = ("random", "als-ridge", "lightfm-warp-side")
ALS_GRID = {"factors": [32, 64, 128], "regularization": [0.1, 1.0, 10.0]}
RIDGE_LAMBDAS = (1.0, 3.0, 10.0, 30.0, 100.0)
LIGHTFM_COMPONENTS = (32, 64)
LIGHTFM_MAX_EPOCHS = 30
LIGHTFM_PATIENCE = 5  # epochs without a pseudo-cold gain before stopping
TEXT_DIMS = 32  # principal components of the text embedding given to LightFM
PSEUDO_COLD_FRAC = 0.2
METRIC = "Recall@20"


# ---- data ----------------------------------------------------------------------------------
@dataclass
class ItemInputs:
    """What every peer may use about the items besides the interactions."""

    text: np.ndarray  # items × 384 MiniLM embeddings of ``data.item_text()``
    side: torch.Tensor  # side_features: [unit-norm text | genre one-hot | year-bucket one-hot]
    n_genres: int


def item_inputs(data: Dataset) -> ItemInputs:
    """The MiniLM text embeddings (lgrec's encoder, cached on disk) and lgrec's side features."""
    text = TextEncoder(None, max_length=128).encode(data.item_text())
    side, _ = side_features(data, torch.from_numpy(text))
    if side is None:
        raise SystemExit(f"{data.name}: no item side features")
    return ItemInputs(np.asarray(text, dtype=np.float32), side, data.categories()[1].shape[1])


def pseudo_cold(split: Split, seed: int) -> tuple[Dataset, Dataset, np.ndarray]:
    """(fit part, held-out part, held-out items): 20 % of the warm items leave ``full_train``."""
    full = split.full_train
    warm = np.setdiff1d(np.unique(full.item_ids), split.cold_items)
    rng = np.random.default_rng(seed)
    held = np.sort(rng.choice(warm, round(PSEUDO_COLD_FRAC * len(warm)), replace=False))
    mask = np.isin(full.item_ids, held)
    return full.subset(~mask, name="pseudo-fit"), full.subset(mask, name="pseudo-cold"), held


def trained_items(data: Dataset) -> np.ndarray:
    """Sorted ids of the items with at least one interaction in ``data``."""
    return np.unique(data.item_ids).astype(np.int64)


def pseudo_cold_recall(model: Any, fit: Dataset, held_out: Dataset, held: np.ndarray) -> float:
    """Recall@20 of the held-out interactions, every user ranking only the held-out items."""
    return float(evaluate_ranking(model, fit, held_out, ks=(20,), candidates=held)[METRIC])


def cold_metrics(model: Any, split: Split) -> dict[str, float]:
    """``cold_*`` (only cold items ranked) and ``cold_all_*`` (all items) test metrics."""
    cold = np.asarray(split.cold_items, dtype=np.int64)
    cold_test = split.test.subset(np.isin(split.test.item_ids, cold))
    out: dict[str, float] = {}
    for prefix, kw in (("cold_", {"candidates": cold}), ("cold_all_", {})):
        res = evaluate_ranking(model, split.full_train, cold_test, ks=(10, 20), **kw)
        out.update({prefix + k: v for k, v in res.items()})
    return out


# ---- random --------------------------------------------------------------------------------
class RandomScorer:
    """Uniform random scores, fixed per (user, item) by ``seed``."""

    def __init__(self, n_users: int, n_items: int, seed: int) -> None:
        self.n_users_, self.n_items_ = n_users, n_items
        gen = torch.Generator().manual_seed(seed)
        self.S = torch.rand((n_users, n_items), generator=gen)

    def score(self, users: torch.Tensor) -> torch.Tensor:
        return self.S[torch.as_tensor(users).long()]


def fit_random(split: Split, items: ItemInputs, seed: int) -> dict[str, Any]:
    data = split.full_train
    model, fit_s = timed(lambda: RandomScorer(data.n_users, data.n_items, seed))
    return {"model": model, "params": {}, "tune_s": 0.0, "fit_s": fit_s}


def _fitted(
    model: Any, params: dict, tune_s: float, fit_s: float, best_v: float, **extra: Any
) -> dict[str, Any]:
    """What a ``fit_*`` function returns: the refitted model, its settings and costs."""
    return {
        "model": model,
        "params": params,
        "tune_s": tune_s,
        "fit_s": fit_s,
        "valid_best": best_v,
        **extra,
    }


# ---- implicit ALS + ridge map ----------------------------------------------------------------
def ridge_map(f: torch.Tensor, y: torch.Tensor, lam: float) -> torch.Tensor:
    """:math:`W = (F^\\top F + \\lambda I)^{-1} F^\\top Y` in float64."""
    f, y = f.double(), y.double()
    eye = torch.eye(f.shape[1], dtype=torch.float64)
    return torch.linalg.solve(f.T @ f + lam * eye, f.T @ y)


def als_ridge_scorer(
    als: FactorScorer, side: torch.Tensor, warm: np.ndarray, lam: float
) -> FactorScorer:
    """ALS factors for the ``warm`` items, ``F W`` (ridge fitted on them) for every other."""
    w_idx = torch.from_numpy(warm)
    q = als.Q.clone()
    w = ridge_map(side[w_idx], als.Q[w_idx], lam)
    other = np.setdiff1d(np.arange(q.shape[0]), warm)
    q[torch.from_numpy(other)] = (side[torch.from_numpy(other)].double() @ w).float()
    return FactorScorer(als.P.numpy(), q.numpy())


def _als_cfg(cfg: dict[str, Any]) -> dict[str, Any]:
    return {"factors": cfg["factors"], "regularization": cfg["regularization"], "alpha": 1.0}


def fit_als_ridge(split: Split, items: ItemInputs, seed: int) -> dict[str, Any]:
    """Grid over (factors, regularization) × λ on the pseudo-cold fold, then refit."""
    t0 = time.perf_counter()
    side = items.side
    fit, held_out, held = pseudo_cold(split, seed)
    warm = trained_items(fit)
    table, best, best_v = [], None, -1.0
    for cfg in product_grid(ALS_GRID):
        als = _als(fit, _als_cfg(cfg), seed)
        for lam in RIDGE_LAMBDAS:
            v = pseudo_cold_recall(als_ridge_scorer(als, side, warm, lam), fit, held_out, held)
            table.append({**cfg, "lam": lam, "valid": v})
            if v > best_v:
                best, best_v = {**cfg, "lam": lam}, v
        log.info(
            "als-ridge %s: best λ pseudo-cold %s %.4f",
            cfg,
            METRIC,
            max(r["valid"] for r in table[-len(RIDGE_LAMBDAS) :]),
        )
    tune_s = time.perf_counter() - t0
    assert best is not None
    log.info("als-ridge chose %s (pseudo-cold %s %.4f)", best, METRIC, best_v)

    def refit() -> FactorScorer:
        als = _als(split.full_train, _als_cfg(best), seed)
        return als_ridge_scorer(als, side, trained_items(split.full_train), best["lam"])

    model, fit_s = timed(refit)
    params = {**best, "alpha": 1.0, "iterations": 15}
    return _fitted(model, params, tune_s, fit_s, best_v, grid=table)


# ---- LightFM WARP with side features ---------------------------------------------------------
def lightfm_side(items: ItemInputs, rows: np.ndarray) -> np.ndarray:
    """[text PCA (fitted on ``rows``), unit norm | genres summing to 1 | year one-hot]."""
    text, side, n_g = items.text, items.side, items.n_genres
    t = text / np.linalg.norm(text, axis=1, keepdims=True)
    mu = t[rows].mean(0)
    _, _, vt = np.linalg.svd(t[rows] - mu, full_matrices=False)
    z = (t - mu) @ vt[:TEXT_DIMS].T
    z /= np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    genres = side[:, text.shape[1] : text.shape[1] + n_g].numpy()
    genres = genres / np.maximum(genres.sum(1, keepdims=True), 1.0)
    years = side[:, text.shape[1] + n_g :].numpy()  # side_features' column order
    return np.hstack([z, genres, years]).astype(np.float32)


def lightfm_features(side: np.ndarray, train_items: np.ndarray) -> sp.csr_matrix:
    """Items × [identity of ``train_items`` | side]; other items have no identity column."""
    n = side.shape[0]
    ident = sp.csr_matrix(
        (np.ones(len(train_items), dtype=np.float32), (train_items, np.arange(len(train_items)))),
        shape=(n, len(train_items)),
    )
    return sp.hstack([ident, sp.csr_matrix(side)]).tocsr().astype(np.float32)


def _lightfm(data: Dataset, feats: sp.csr_matrix, items: np.ndarray, nc: int, seed: int):
    """(model, x): an untrained WARP model and the users × ``items`` training matrix."""
    from lightfm import LightFM

    model = LightFM(
        no_components=nc,
        loss="warp",
        learning_rate=LIGHTFM_DEFAULTS["learning_rate"],
        max_sampled=LIGHTFM_DEFAULTS["max_sampled"],
        random_state=seed,
    )
    return model, data.matrix("binary")[:, items].tocoo()


def fit_lightfm_side(split: Split, items: ItemInputs, seed: int) -> dict[str, Any]:
    """Epochs and ``no_components`` chosen on the pseudo-cold fold, then refit."""
    t0 = time.perf_counter()
    fit, held_out, held = pseudo_cold(split, seed)
    train = trained_items(fit)
    feats = lightfm_features(lightfm_side(items, train), train)
    curves: dict[int, list[tuple[int, float]]] = {}
    best, best_v = None, -1.0
    for nc in LIGHTFM_COMPONENTS:
        model, x = _lightfm(fit, feats, train, nc, seed)
        curve, top, bad = [], -1.0, 0
        for epoch in range(1, LIGHTFM_MAX_EPOCHS + 1):
            model.fit_partial(x, item_features=feats[train], epochs=1, num_threads=threads())
            v = pseudo_cold_recall(_scorer(model, feats), fit, held_out, held)
            curve.append((epoch, v))
            if v > top:
                top, bad = v, 0
            else:
                bad += 1
            if v > best_v:
                best, best_v = {"no_components": nc, "epochs": epoch}, v
            if bad >= LIGHTFM_PATIENCE:
                break
        curves[nc] = curve
        log.info(
            "lightfm no_components=%d: pseudo-cold %s %s",
            nc,
            METRIC,
            " ".join(f"{e}:{v:.3f}" for e, v in curve),
        )
    tune_s = time.perf_counter() - t0
    assert best is not None
    log.info("lightfm chose %s (pseudo-cold %s %.4f)", best, METRIC, best_v)

    def refit() -> FactorScorer:
        items_f = trained_items(split.full_train)
        side_f = lightfm_side(items, items_f)
        feats_f = lightfm_features(side_f, items_f)
        model, x = _lightfm(split.full_train, feats_f, items_f, best["no_components"], seed)
        model.fit(x, item_features=feats_f[items_f], epochs=best["epochs"], num_threads=threads())
        return _scorer(model, feats_f)

    model, fit_s = timed(refit)
    params = {
        **best,
        "learning_rate": LIGHTFM_DEFAULTS["learning_rate"],
        "max_sampled": LIGHTFM_DEFAULTS["max_sampled"],
        "text_pca": TEXT_DIMS,
    }
    return _fitted(model, params, tune_s, fit_s, best_v, valid_curves=curves)


FITS = {"random": fit_random, "als-ridge": fit_als_ridge, "lightfm-warp-side": fit_lightfm_side}
REPORT = ("cold_Recall@20", "cold_NDCG@20", "cold_all_Recall@20", "fit_s")


# ---- the driver ------------------------------------------------------------------------------
def run_seed(dataset: str, seed: int, peers: list[str], cache: dict[str, Any]) -> list[dict]:
    """Every peer on the cold split of ``seed``: tune on the pseudo-cold fold, refit, test."""
    split = prepare(RunConfig(dataset=dataset, split="cold", seed=seed)).split
    if "items" not in cache:  # the item table (and so its text) is the same for every seed
        cache["items"] = item_inputs(split.full_train)
    log.info(
        "seed %d: %d cold items, %d full_train rows, %d test rows",
        seed,
        len(split.cold_items),
        len(split.full_train),
        len(split.test),
    )
    rows = []
    for peer in peers:
        seed_all(seed)
        log.info("seed %d: %s", seed, peer)
        fitted = FITS[peer](split, cache["items"], seed)
        res = cold_metrics(fitted.pop("model"), split)
        row = {"peer": peer, "seed": seed, **fitted, **res}
        log.info(
            "seed %d %s %s: %s", seed, peer, row["params"], {k: round(row[k], 4) for k in REPORT}
        )
        rows.append(row)
    return rows


def means(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean (and sample std) of the reported metrics over seeds, per peer."""
    out = []
    for peer in dict.fromkeys(r["peer"] for r in rows):
        sub = [r for r in rows if r["peer"] == peer]
        m: dict[str, Any] = {"peer": peer, "seeds": [r["seed"] for r in sub]}
        for k in (*REPORT, "cold_NDCG@10", "cold_all_NDCG@20", "tune_s"):
            v = np.array([r[k] for r in sub], dtype=float)
            m[k], m[k + "_std"] = float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0
        out.append(m)
    return out


def _params(p: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in p.items()) or "–"


def markdown(rows: list[dict[str, Any]], mean_rows: list[dict[str, Any]], head: str) -> str:
    """Per-seed table and the per-peer means over seeds."""
    cols = ["peer", "seed", "chosen params", *REPORT]
    lines = [head, "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        vals = [f"{r[k]:.4f}" for k in REPORT[:-1]] + [f"{r['fit_s']:.1f}"]
        lines.append(
            f"| {r['peer']} | {r['seed']} | {_params(r['params'])} | " + " | ".join(vals) + " |"
        )
    lines += ["", "Mean ± std over seeds:", "", "| peer | seeds | " + " | ".join(REPORT) + " |"]
    lines.append("|" + "---|" * (len(REPORT) + 2))
    for m in mean_rows:
        vals = [f"{m[k]:.4f} ± {m[k + '_std']:.4f}" for k in REPORT[:-1]]
        vals.append(f"{m['fit_s']:.1f}")
        seeds = ",".join(map(str, m["seeds"]))
        lines.append(f"| {m['peer']} | {seeds} | " + " | ".join(vals) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="ml-100k")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated split seeds")
    p.add_argument("--peers", default=",".join(PEERS), help=f"subset of {list(PEERS)}")
    p.add_argument("--out", default=None, help="default runs/peers-<dataset>-cold")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    peers = args.peers.split(",")
    if bad := sorted(set(peers) - set(PEERS)):
        raise SystemExit(f"--peers: unknown {bad}; known: {list(PEERS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    out = Path(args.out or f"runs/peers-{args.dataset}-cold")
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(threads())
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    cache: dict[str, Any] = {}
    with threadpool_limits(limits=1, user_api="blas"):  # implicit asks for 1 BLAS thread
        for seed in seeds:
            rows += run_seed(args.dataset, seed, peers, cache)
    wall = time.perf_counter() - t0
    mean_rows = means(rows)
    import implicit
    import lightfm

    meta = {
        "dataset": args.dataset,
        "split": "cold (20 % of items held out), lgrec.pipeline.prepare",
        "seeds": seeds,
        "threads": threads(),
        "wall_s": wall,
        "libraries": {"implicit": implicit.__version__, "lightfm": lightfm.__version__},
        "tuning": f"pseudo-cold fold: {PSEUDO_COLD_FRAC:.0%} of warm items held out of "
        "full_train; Recall@20 ranking only those items",
    }
    (out / "results.json").write_text(
        json.dumps({**meta, "rows": rows, "means": mean_rows}, indent=1, default=str)
    )
    head = (
        f"# Peers on {args.dataset}, cold-start item split (seeds {args.seeds})\n\n"
        f"Wall time {wall:.0f} s with PEER_THREADS={threads()} "
        f"(implicit {implicit.__version__}, lightfm {lightfm.__version__}); "
        "tuned on a pseudo-cold fold of full_train, scored by lgrec's evaluate_ranking."
    )
    md = markdown(rows, mean_rows, head)
    (out / "results.md").write_text(md)
    print(md)
    log.info("wrote %s (%.0f s)", out, wall)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
