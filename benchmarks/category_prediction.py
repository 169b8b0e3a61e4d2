"""Category prediction (node classification) on MovieLens-100K: LMGCN's head vs baselines.

The genres of a seeded 20 % of the items (among those with genres) are removed from the item
table (:func:`lgrec.eval.tasks.holdout_categories`); every predictor sees only the remaining
labels. Item text is the title alone for every item, so no held-out genre leaks through the
text. LMGCN is fitted on u1.base (10 % carved for validation / early stopping) and its
category head (trained on the labelled items' propagated embeddings) scores the held-out
items. Baselines: label frequency, kNN votes over MiniLM title embeddings, logistic
regression on them, and kNN votes over the co-occurrence graph of the training interactions.

Metrics (:func:`lgrec.eval.tasks.category_metrics`): Accuracy@1 (top-1 in the true set),
HitRate@3, micro/macro-F1 when each item is given as many genres as it truly has.

    python benchmarks/category_prediction.py [--out runs/bench-categories]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench_setup import prepared_run
from lgrec.data.dataset import Split
from lgrec.eval.tasks import (
    category_metrics,
    category_truth,
    holdout_categories,
    knn_category_scores,
    model_category_scores,
    text_category_scores,
)
from lgrec.graph.cooccurrence import cooccurrence
from lgrec.models import LMGCN
from lgrec.text.encoder import TextEncoder
from lgrec.utils import atomic_write_text

log = logging.getLogger("bench.categories")


def masked_split(split: Split, items) -> Split:
    """The same interactions with another items table (held-out genres removed)."""

    def swap(d):
        return None if d is None else replace(d, items=items)

    return replace(split, train=swap(split.train), valid=swap(split.valid), test=swap(split.test))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data-dir")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--frac", type=float, default=0.2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--category-weights", default="0.1,1.0")
    p.add_argument("--out", default="runs/bench-categories")
    args = p.parse_args()
    cfg, prep = prepared_run(args, dataset="ml-100k", fold="u1", split="fixed")
    full = prep.data
    masked, held = holdout_categories(full, frac=args.frac, seed=args.seed)
    vocab = full.categories()[0]
    truth = category_truth(full, held, vocab)
    y_known = category_truth(masked, np.arange(masked.n_items), vocab)  # full vocabulary
    emb = TextEncoder(cfg.text_model).encode(full.item_text(("title",)))
    split = masked_split(prep.split, masked.items)
    log.info("%d held-out items, %d genres, %d labelled items", len(held), len(vocab),
             int((np.diff(y_known.indptr) > 0).sum()))  # fmt: skip

    scores: dict[str, np.ndarray] = {}
    freq = np.asarray(y_known.sum(0)).ravel()
    scores["label frequency"] = np.tile(freq, (len(held), 1))
    scores["text kNN (MiniLM title, k=20)"] = text_category_scores(emb, y_known, held, k=20)
    scores["text logistic regression"] = text_category_scores(
        emb, y_known, held, method="logreg", seed=args.seed
    )
    co = cooccurrence(split.train.matrix("binary"), k=20)
    scores["graph kNN (co-occurrence, k=20)"] = knn_category_scores(co[held], y_known, k=20)
    fit_s = {}
    for w in (float(v) for v in args.category_weights.split(",")):
        t0 = time.perf_counter()
        model = LMGCN(  # ranking extras (rating head, filter fusion) play no part here
            seed=args.seed, category_weight=w, text_fields=("title",), rating_head=False,
            filter_weight=0.0,
        )  # fmt: skip
        model.fit(split.train, valid=split.valid, item_emb=emb)
        name = f"LMGCN category head (λ_cat={w:g})"
        fit_s[name] = time.perf_counter() - t0
        scores[name] = model_category_scores(model, held, vocab)

    rows = []
    for name, s in scores.items():
        m = category_metrics(s, truth)
        rows.append({"predictor": name, **m, "fit_s": fit_s.get(name)})
        log.info("%s", rows[-1])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "results.json", json.dumps(rows, indent=2))
    cols = ["Accuracy@1", "HitRate@3", "micro-F1", "macro-F1"]
    print(f"\nML-100K, genres of {len(held)} items held out (seed {args.seed})\n")
    print("| predictor | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for r in rows:
        print(f"| {r['predictor']} | " + " | ".join(f"{r[c]:.4f}" for c in cols) + " |")


if __name__ == "__main__":
    main()
