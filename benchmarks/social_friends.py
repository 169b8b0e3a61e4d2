"""Last.fm social network: (a) friends' taste blended into item ranking, (b) friend recovery.

(a) Ranking. Each base model is fitted on the training fold with 10 % carved out for
validation; :class:`lgrec.models.friends.SocialBlend` chooses β on that validation split
(s' = z(s) + β z(mean of friends' training rows)); the base is refitted on train + valid and
both the plain base and the blend (with the chosen β) rank the test fold
(:func:`lgrec.eval.protocol.evaluate_ranking`).

(b) Friend recovery. 20 % of the undirected friendships are hidden (seeded); each suggester
sees the rest and lists 20 candidate friends per user; Recall/NDCG of the hidden friends
(:func:`lgrec.eval.tasks.evaluate_friend_recovery`). Social-only (Adamic–Adar, common
neighbours, resource allocation), taste-only (cosine of interaction rows or of the refitted
LightGCN's user embeddings) and combined (α chosen on 10 % of the visible friendships).

    python benchmarks/social_friends.py [--out runs/bench-social]
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from bench_setup import prepared_run
from lgrec.eval.protocol import evaluate_ranking
from lgrec.eval.tasks import evaluate_friend_recovery
from lgrec.graph.social import social_adjacency, split_edges
from lgrec.models.friends import FriendRecommender, SocialBlend
from lgrec.pipeline import build_model
from lgrec.utils import atomic_write_text

log = logging.getLogger("bench.social")
KS = (10, 20)


def ranking_rows(cfg, prep, edges, bases: list[str]) -> tuple[list[dict], dict]:
    split = prep.split
    rows, fitted = [], {}
    for name in bases:
        model = build_model(name, cfg)
        blend = SocialBlend(model, edges).fit(split.train, valid=split.valid)
        refit = type(model)(**model.refit_params()).fit(split.full_train)
        fitted[name] = refit
        final = SocialBlend(refit, edges, beta=blend.beta_).fit(split.full_train)
        for label, m in ((name, refit), (f"{name} + friends (β={blend.beta_:g})", final)):
            res = evaluate_ranking(m, split.full_train, split.test, ks=KS)
            rows.append({"model": label, **{k: res[k] for k in _cols("Recall", "NDCG")}})
            log.info("%s", rows[-1])
        rows[-1]["valid_Recall@20_by_beta"] = blend.valid_scores_
    return rows, fitted


def _cols(*names: str) -> list[str]:
    return [f"{n}@{k}" for n in names for k in KS]


def friend_rows(ds, edges, user_emb: np.ndarray | None, seed: int) -> list[dict]:
    n = ds.n_users
    known, hidden = split_edges(edges, n, frac=0.2, seed=seed)
    x = ds.matrix("binary")
    setups = [
        ("social: Adamic–Adar", dict(alpha=0.0, proximity="adamic_adar"), x),
        ("social: common neighbours", dict(alpha=0.0, proximity="common_neighbors"), x),
        ("social: resource allocation", dict(alpha=0.0, proximity="resource_allocation"), x),
        ("taste: interaction cosine", dict(alpha=1.0), x),
        ("combined: AA + interaction cosine", dict(seed=seed), x),
    ]
    if user_emb is not None:
        setups += [
            ("taste: LightGCN embeddings", dict(alpha=1.0), user_emb),
            ("combined: AA + LightGCN embeddings", dict(seed=seed), user_emb),
        ]
    rows = []
    for label, kw, vec in setups:
        rec = FriendRecommender(**kw).fit(known, vec)
        res = evaluate_friend_recovery(rec, known, hidden, n, ks=KS)
        metrics = {k: res[k] for k in _cols("Recall", "NDCG")}
        rows.append({"suggester": label, "alpha": rec.alpha_, **metrics, "n_users": res["n_users"]})
        log.info("%s", rows[-1])
    # chance: k random non-friends out of the candidates
    deg = np.diff(social_adjacency(known, n).indptr)
    truth = np.diff(social_adjacency(hidden, n).indptr)
    users = truth > 0
    for k in KS:
        expected = float(np.mean(np.minimum(1.0, k / (n - 1 - deg[users]))))
        rows.append({"suggester": f"random (expected Recall@{k})", "alpha": None,
                     f"Recall@{k}": expected})  # fmt: skip
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--bases", default="popularity,graphfilter,lightgcn")
    p.add_argument("--data-dir")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="runs/bench-social")
    args = p.parse_args()
    cfg, prep = prepared_run(args, dataset="lastfm-social", split="fixed")
    edges = prep.data.meta["social_edges"]
    log.info("%s; %d directed social edges", prep.data.summary(), len(edges))
    rank, fitted = ranking_rows(cfg, prep, edges, args.bases.split(","))
    lg = fitted.get("lightgcn")
    emb = None if lg is None else lg.user_emb_.numpy()
    friends = friend_rows(prep.data, edges, emb, args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        out / "results.json", json.dumps({"ranking": rank, "friends": friends}, indent=2)
    )
    cols = _cols("Recall", "NDCG")
    print("\n(a) item ranking on the test fold\n")
    print("| model | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for r in rank:
        print(f"| {r['model']} | " + " | ".join(f"{r[c]:.4f}" for c in cols) + " |")
    print("\n(b) recovering 20 % hidden friendships\n")
    print("| suggester | α | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 2) + "|")
    for r in friends:
        vals = " | ".join(f"{r[c]:.4f}" if c in r else "" for c in cols)
        print(f"| {r['suggester']} | {'' if r['alpha'] is None else r['alpha']} | {vals} |")


if __name__ == "__main__":
    main()
