"""New users: recommendations from 0 (text alone), 1, 3 and 5 interactions, without retraining.

    python benchmarks/newusers.py --dataset ml-100k [--seeds 0,1,2] [--write-docs]

For each seed, 20 % of the users (those with at least 10 interactions) are held out entirely;
the models are fitted on the other users (10 % of their rows carved for validation, refit on
train + valid). Each held-out user's interactions are ordered by time (ties by row order); the
first n ∈ {0, 1, 3, 5} are revealed to the model and the rest, *from the 6th on* — the same
items for every n, so the points of a curve are comparable — are the test items. Every item is
ranked except the revealed ones. Methods:

* popularity — training counts;
* ALS fold-in — implicit ALS (Hu, Koren & Volinsky 2008; :mod:`ials`) fitted on the training
  users; a new user's factor is the closed-form least-squares solve against the item factors
  (reg and α chosen on validation);
* graph filter — lgrec's training-free filter applied to the revealed row;
* LMGCN — :meth:`lgrec.models.lmgcn.LMGCN.fold_in`: the user vector of the revealed items (and,
  where users have text, a map from the user's text: n = 0 uses the text alone).

Output: ``<out>/results.jsonl``, ``<out>/newusers.md``, ``<out>/newusers.png`` (Recall@20 vs
n); ``--write-docs`` replaces the data set's block in ``docs/coldstart.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "coldstart.md"
LOG = logging.getLogger("bench.newusers")
NS = (0, 1, 3, 5)
METHODS = ("popularity", "ALS fold-in", "graph filter", "LMGCN")


def hold_out_users(ds: Any, seed: int, frac: float = 0.2, min_n: int = 10):
    """(train Dataset, held-out user ids, their interaction frame sorted by time)."""
    n_u = np.bincount(ds.user_ids, minlength=ds.n_users)
    pool = np.flatnonzero(n_u >= min_n)
    rng = np.random.default_rng(seed)
    held = np.sort(rng.choice(pool, round(frac * len(pool)), replace=False))
    mask = np.isin(ds.user_ids, held)
    df = ds.interactions[mask].copy()
    df["_row"] = np.arange(len(df))
    key = "timestamp" if "timestamp" in df and df["timestamp"].notna().all() else "_row"
    df = df.sort_values(["user", key, "_row"], kind="stable")
    return ds.subset(~mask), held, df


def reveal(df: Any, held: np.ndarray, n: int, n_items: int) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """(revealed rows with the first ``n`` items, test rows from the 6th item on), both
    len(held) × items."""
    pos = df.groupby("user").cumcount().to_numpy()
    row = np.searchsorted(held, df["user"].to_numpy())
    items = df["item"].to_numpy()

    def mat(sel: np.ndarray) -> sp.csr_matrix:
        m = sp.csr_matrix((np.ones(sel.sum(), np.float32), (row[sel], items[sel])),
                          shape=(len(held), n_items))  # fmt: skip
        m.data[:] = 1.0
        return m

    return mat(pos < n), mat(pos >= max(NS))


def recall_ndcg(scores: torch.Tensor, seen: sp.csr_matrix, truth: sp.csr_matrix, k: int = 20):
    s = scores.clone().float()
    c = seen.tocoo()
    s[torch.from_numpy(c.row).long(), torch.from_numpy(c.col).long()] = -torch.inf
    top = torch.topk(s, k, dim=1).indices.numpy()
    t = truth.toarray() > 0
    hit = np.take_along_axis(t, top, 1)
    n = t.sum(1)
    disc = 1 / np.log2(np.arange(2, k + 2))
    idcg = np.array([disc[: min(m, k)].sum() for m in n])
    ok = n > 0
    return float((hit.sum(1)[ok] / n[ok]).mean()), float(
        ((hit * disc).sum(1)[ok] / idcg[ok]).mean()
    )


def run_seed(dataset: str, seed: int, args: argparse.Namespace) -> list[dict]:
    from ials import IALS
    from lgrec.config import load_config
    from lgrec.data import carve_valid, clean, load_dataset
    from lgrec.data.dataset import Split
    from lgrec.pipeline import Prepared, build_model, encode_items, fit_model, setup

    cfg = load_config(dataset=dataset, seed=seed, threads=args.threads, data_dir=args.data_dir)
    setup(cfg)
    kw = {"fold": cfg.fold} if dataset == "ml-100k" else {}
    ds, report = clean(load_dataset(dataset, data_dir=cfg.data_dir, **kw))
    train, held, df = hold_out_users(ds, seed)
    split = carve_valid(Split(train=train, test=train.subset(np.zeros(len(train), bool)),
                              kind="newusers"), 0.1, seed=seed)  # fmt: skip
    prep = Prepared(ds, split, report)
    encode_items(prep, cfg)
    lm, _ = fit_model(build_model("lmgcn", cfg, rating_head=False, category_head=False), prep, cfg)
    gf = lm.filter_
    if gf is None:
        gf, _ = fit_model(build_model("graphfilter", cfg), prep, cfg)
    als = IALS(seed=seed).fit(split.train.matrix("binary"), split.valid.matrix("binary"))
    als = IALS(**als.refit_params()).fit(split.full_train.matrix("binary"))
    pop = torch.from_numpy(np.asarray(split.full_train.matrix("binary").sum(0)).ravel()).float()
    texts = None
    if "text" in ds.users:
        texts = ds.users["text"].iloc[held].map(lambda v: v if isinstance(v, str) else "").tolist()
    rows = []
    for n in NS:
        seen, truth = reveal(df, held, n, ds.n_items)
        scores: dict[str, torch.Tensor | None] = {
            "popularity": pop.expand(len(held), -1),
            "ALS fold-in": als.fold_in(seen) if n > 0 else None,
            "graph filter": _filter_rows(gf, seen) if n > 0 else None,
            "LMGCN": lm.fold_in(seen, texts) if (n > 0 or lm.user_text_map_ is not None) else None,
        }
        for name, s in scores.items():
            if s is None:
                continue
            r, nd = recall_ndcg(s, seen, truth)
            rows.append({"dataset": dataset, "seed": seed, "n": n, "method": name,
                         "Recall@20": r, "NDCG@20": nd, "n_users": len(held)})  # fmt: skip
            LOG.info("seed %d n=%d %s: R@20 %.4f NDCG@20 %.4f", seed, n, name, r, nd)
    return rows


def _filter_rows(gf: Any, rows: sp.csr_matrix) -> torch.Tensor:
    import copy

    g = copy.copy(gf)
    g.x_ = sp.csr_matrix(rows, dtype=np.float32)
    with torch.no_grad():
        return g._score_block(torch.arange(rows.shape[0]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--data-dir")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--write-docs", action="store_true")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    out = Path(args.out or f"runs/newusers/{args.dataset}")
    out.mkdir(parents=True, exist_ok=True)
    f = out / "results.jsonl"
    rows = (
        [json.loads(x) for x in f.read_text().splitlines()] if f.is_file() and args.resume else []
    )
    for seed in [int(s) for s in args.seeds.split(",")]:
        if not any(r["seed"] == seed for r in rows):
            rows += run_seed(args.dataset, seed, args)
            f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    lines = [
        "| method | " + " | ".join(f"n = {n}" for n in NS) + " |",
        "|---" * (len(NS) + 1) + "|",
    ]
    curves = {}
    for m in METHODS:
        cells, ys = [], []
        for n in NS:
            v = [r["Recall@20"] for r in rows if r["method"] == m and r["n"] == n]
            cells.append(f"{np.mean(v):.4f} ± {np.std(v):.4f}" if v else "–")
            ys.append(np.mean(v) if v else np.nan)
        curves[m] = ys
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    seeds = sorted({r["seed"] for r in rows})
    cmd = f"python benchmarks/newusers.py --dataset {args.dataset} --seeds {args.seeds}"
    block = (f"Command: `{cmd}` ({len(seeds)} seeds, {rows[0]['n_users']} held-out users at seed "
             f"{seeds[0]}; Recall@20 on each user's items from the 6th on, mean ± std; n = 0: "
             f"text alone)\n\n" + "\n".join(lines) + f"\n\n![new users {args.dataset}]"
             f"(newusers_{args.dataset}.png)")  # fmt: skip
    (out / "newusers.md").write_text(block + "\n")
    _chart(curves, out / "newusers.png", args.dataset)
    print(block)
    if args.write_docs:
        import shutil

        from bench_setup import replace_docs_block

        replace_docs_block(DOCS, f"newusers:{args.dataset}", block,
                           f"New users: {args.dataset}", "Cold start")  # fmt: skip
        shutil.copyfile(out / "newusers.png", DOCS.parent / f"newusers_{args.dataset}.png")


def _chart(curves: dict[str, list[float]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for m, ys in curves.items():
        ax.plot(NS, ys, marker="o", label=m)
    ax.set_xticks(NS)
    ax.set_xticklabels(["text only" if n == 0 else str(n) for n in NS])
    ax.set_xlabel("interactions revealed")
    ax.set_ylabel("Recall@20")
    ax.set_title(f"{title}: new users")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
