"""Category prediction (node classification) on ML-100K: lgrec's heads vs logistic regression.

    python benchmarks/category_prediction.py --seeds 0 1 2 --out docs/category_prediction.json
    python benchmarks/category_prediction.py --seeds 0 1 2 --validate-heads   # default head

For each seed, the genres of a seeded 20 % of the items that have genres are removed from the
item table (:func:`lgrec.eval.tasks.holdout_categories`); every predictor sees only the other
items' genres and all of u1.base's interactions (the held-out items keep their interactions:
only their labels are hidden). Item text is the title alone for every item (``"Toy Story
(1995)"``), encoded by MiniLM, so no genre leaks through the text. Predictors:

* label frequency — every item gets the genres in order of frequency;
* LMGCN category head — LMGCN fitted on u1.base with the masked item table; its shipped head
  (closed-form ridge on the item blocks, ρ by leave-one-out, :func:`fit_category_head`);
* LR (MiniLM text) — one-vs-rest L2 logistic regression on the title embeddings;
* LR (MiniLM text + 64-d SVD) — the same on [title embedding, the item factors U_k S_k of a
  64-d truncated SVD of the binary item × user matrix of u1.base];
* lgrec LR head (LMGCN item blocks) — the same logistic regression on LMGCN's item vectors
  (own text, text propagated over the co-consumption and semantic graphs, graph position;
  ``rank=None``, so these are the blocks themselves), :mod:`lgrec.models.category_logreg`.

Every logistic regression is :func:`fit_logistic_category_head`: features standardised, C
chosen by top-1 accuracy on 20 % of the *labelled* items (seeded), then refitted on all
labelled items. The held-out items are never used to choose anything. Metrics
(:func:`lgrec.eval.tasks.category_metrics`): Accuracy@1 (the top genre is one of the item's
genres), HitRate@3, micro/macro-F1 when each item is given as many genres as it has; mean ±
standard deviation over the seeds (a seed changes the held-out items and the validation split).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from bench_setup import prepared_run, replace_docs_block
from lgrec.eval.tasks import (
    category_metrics,
    category_truth,
    holdout_categories,
    model_category_scores,
)
from lgrec.models import LMGCN
from lgrec.models.category_logreg import fit_logistic_category_head
from lgrec.text.encoder import TextEncoder
from lgrec.utils import atomic_write_text

log = logging.getLogger("bench.categories")
METRICS = ("Accuracy@1", "HitRate@3", "micro-F1", "macro-F1")
LMGCN_HEAD = "LMGCN category head (ridge, shipped)"


def svd_factors(x: sp.csr_matrix, dim: int, seed: int) -> np.ndarray:
    """Item factors U_k S_k of the rank-``dim`` truncated SVD of the item × user matrix."""
    from sklearn.decomposition import TruncatedSVD

    return TruncatedSVD(dim, random_state=seed).fit_transform(sp.csr_matrix(x.T, dtype=np.float64))


def logreg_scores(feats: np.ndarray, y_known: np.ndarray, held: np.ndarray, seed: int):
    """Scores of the held-out items by the logistic head fitted on the labelled items."""
    w, b, c = fit_logistic_category_head(feats, y_known, seed=seed)
    return (
        torch.from_numpy(np.ascontiguousarray(feats[held], dtype=np.float32)) @ w + b
    ).numpy(), c


def head_model(seed: int, **kw) -> LMGCN:
    """LMGCN as the category benchmarks fit it: titles as text; the ranking extras (rating
    head, filter blend) play no part in the category head; the item blocks unprojected."""
    return LMGCN(seed=seed, text_fields=("title",), rating_head=False, filter_weight=0.0,
                 rank=None, **kw)  # fmt: skip


def one_seed(prep, emb: np.ndarray, seed: int, frac: float, svd_dim: int) -> list[dict]:
    """Every predictor's metrics on one seeded hold-out."""
    full = prep.data
    masked, held = holdout_categories(full, frac=frac, seed=seed)
    vocab = full.categories()[0]
    truth = category_truth(full, held, vocab)
    y_known = category_truth(masked, np.arange(masked.n_items), vocab).toarray()
    train = replace(prep.split.train, items=masked.items)  # u1.base, held-out genres removed
    x = train.matrix("binary")
    text = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    scores, info = {}, {}
    scores["label frequency"] = np.tile(y_known.sum(0), (len(held), 1)).astype(np.float64)

    t0 = time.perf_counter()
    model = head_model(seed).fit(train, item_emb=emb)
    info[LMGCN_HEAD] = {"fit_s": round(time.perf_counter() - t0, 1)}
    scores[LMGCN_HEAD] = model_category_scores(model, held, vocab)

    feats = {
        "LR (MiniLM text)": text,
        f"LR (MiniLM text + {svd_dim}-d SVD)": np.hstack([text, svd_factors(x, svd_dim, seed)]),
        "lgrec LR head (LMGCN item blocks)": model.item_emb_.numpy(),
    }
    for name, f in feats.items():
        t0 = time.perf_counter()
        scores[name], c = logreg_scores(f, y_known, held, seed)
        info[name] = {"C": c, "dim": int(f.shape[1]), "fit_s": round(time.perf_counter() - t0, 1)}
    rows = []
    for name, s in scores.items():
        rows.append(
            {"predictor": name, "seed": seed, **category_metrics(s, truth), **info.get(name, {})}
        )
        log.info("%s", rows[-1])
    return rows


def head_validation(prep, emb: np.ndarray, seed: int, frac: float) -> list[dict]:
    """LMGCN's two category heads on validation only, to choose the default.

    The seed's held-out items (the test above) are hidden as in :func:`one_seed`; then a further
    seeded ``frac`` of the items still labelled is hidden too, each head is fitted without
    those labels and scored on them. The test items play no part.
    """
    masked, _ = holdout_categories(prep.data, frac=frac, seed=seed)
    inner, vheld = holdout_categories(masked, frac=frac, seed=seed + 1000)
    vocab = prep.data.categories()[0]
    truth = category_truth(masked, vheld, vocab)
    train = replace(prep.split.train, items=inner.items)
    rows = []
    for head in ("ridge", "logistic"):
        model = head_model(seed, category_head=head).fit(train, item_emb=emb)
        scores = model_category_scores(model, vheld, vocab)
        rows.append({"predictor": f"LMGCN category head ({head})", "seed": seed,
                     **category_metrics(scores, truth)})  # fmt: skip
        log.info("validation: %s", rows[-1])
    return rows


def summary(rows: list[dict]) -> list[dict]:
    """Mean and standard deviation (ddof 1) over seeds per predictor, in first-seen order."""
    out = []
    for name in dict.fromkeys(r["predictor"] for r in rows):
        sel = [r for r in rows if r["predictor"] == name]
        agg = {"predictor": name, "n_seeds": len(sel), "C": [r.get("C") for r in sel]}
        for m in METRICS:
            v = np.array([r[m] for r in sel])
            agg[m], agg[m + "_sd"] = float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0
        out.append(agg)
    return out


def table(summ: list[dict]) -> str:
    head = "| predictor | " + " | ".join(METRICS) + " | C chosen (per seed) |"
    lines = [head, "|---" * (len(METRICS) + 2) + "|"]
    for s in summ:
        cells = [f"{s[m]:.3f} ± {s[m + '_sd']:.3f}" for m in METRICS]
        cs = ", ".join(f"{c:g}" for c in s["C"]) if None not in s["C"] else "—"
        lines.append(f"| {s['predictor']} | " + " | ".join(cells) + f" | {cs} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--frac", type=float, default=0.2, help="share of labelled items held out")
    p.add_argument("--svd-dim", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data-dir")
    p.add_argument("--out", type=Path, default=Path("runs/category_prediction.json"))
    p.add_argument(
        "--docs", type=Path, help="markdown file whose category-prediction block to update"
    )
    p.add_argument(
        "--validate-heads",
        action="store_true",
        help="only compare LMGCN's ridge and logistic heads on validation (choice of default)",
    )
    args = p.parse_args()
    args.seed = args.seeds[0]
    cfg, prep = prepared_run(args, dataset="ml-100k", fold="u1", split="fixed", valid_ratio=0.0)
    meta = {"command": " ".join(["python", *sys.argv]), "load_before": os.getloadavg(),
            "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}  # fmt: skip
    emb = TextEncoder(cfg.text_model).encode(prep.data.item_text(("title",)))
    rows = []
    run = head_validation if args.validate_heads else one_seed
    for seed in args.seeds:
        rows += run(prep, emb, seed, args.frac, *([] if args.validate_heads else [args.svd_dim]))
    meta["load_after"] = os.getloadavg()
    summ = summary(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps({"meta": meta, "runs": rows, "summary": summ}, indent=1))
    print(table(summ))
    if args.docs:
        block = "category-heads-validation" if args.validate_heads else "category-prediction"
        replace_docs_block(args.docs, block, table(summ), "Category prediction", "Benchmarks")


if __name__ == "__main__":
    main()
