"""Knowledge-graph ablation on MovieLens-100K u1: LMGCN without vs with KG item links.

Same seed and protocol for every row (:func:`lgrec.pipeline.fit_model`): fit on u1.base with
10 % carved out for validation (early stopping, λ of the graph filter), refit on train + valid,
then full ranking of u1.test with :func:`lgrec.eval.protocol.evaluate_ranking` (the user's
train + valid items excluded). The KG item graph comes from RecBole's ML-100K Freebase links
(:mod:`lgrec.graph.knowledge`) and is propagated with weight ``item_graph_weight``.

    python benchmarks/kg_ablation.py [--variants none,kg] [--out runs/bench-kg-ablation]

Rows of earlier runs with other variants stay in ``<out>/results.json``; the table printed
at the end shows them all (variants: see ``VARIANTS``).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from bench_setup import prepared_run
from lgrec.eval.protocol import evaluate_ranking
from lgrec.graph.knowledge import collapse_item_graph, item_entity_matrix, load_kg
from lgrec.pipeline import build_model, encode_items, fit_model
from lgrec.utils import atomic_write_text, data_dir

log = logging.getLogger("bench.kg")

#: variant → (KG settings or None, extra LMGCN parameters)
VARIANTS = {
    "none": (None, {}),
    "kg": ({"hops": 1, "max_items": 200, "k": 20}, {"item_graph_weight": 0.5}),
    "kg-w0.2": ({"hops": 1, "max_items": 200, "k": 20}, {"item_graph_weight": 0.2}),
    "kg-2hop": ({"hops": 2, "max_items": 100, "k": 20}, {"item_graph_weight": 0.5}),
    # message passing alone (no graph-filter fusion), where the KG links act directly
    "none-gnn": (None, {"filter_weight": 0.0}),
    "kg-gnn": ({"hops": 1, "max_items": 200, "k": 20}, {"filter_weight": 0.0}),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--variants", default="none,kg")
    p.add_argument("--data-dir")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="runs/bench-kg-ablation")
    args = p.parse_args()
    cfg, prep = prepared_run(args, dataset="ml-100k", fold="u1", split="fixed")
    encode_items(prep, cfg)
    kg = load_kg(data_dir(args.data_dir) / "ml-100k-kg")
    out = Path(args.out)
    old = out / "results.json"
    names = args.variants.split(",")
    rows = (
        [r for r in json.loads(old.read_text()) if r["variant"] not in names]
        if old.is_file()
        else []
    )
    for name in names:
        kg_kw, params = VARIANTS[name]
        fit_kw = {}
        info = ""
        if kg_kw is not None:
            kw = dict(kg_kw)
            k = kw.pop("k")
            b, _ = item_entity_matrix(prep.data, kg, **kw)
            g = collapse_item_graph(b, k=k)
            fit_kw["item_graph"] = g
            info = f"{b.shape[1]} entities, {g.nnz} item links"
        model = build_model("lmgcn", cfg, **params)
        model, fit_s = fit_model(model, prep, cfg, **fit_kw)
        res = evaluate_ranking(model, prep.split.full_train, prep.split.test, ks=(10, 20))
        row = {
            "variant": name,
            "kg": info,
            "Recall@20": res["Recall@20"],
            "NDCG@10": res["NDCG@10"],
            "NDCG@20": res["NDCG@20"],
            "fit_s": fit_s,
            "epochs": getattr(model, "epochs", None),
            "filter_weight": getattr(model, "filter_weight_", None),
        }
        log.info("%s", row)
        rows.append(row)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "results.json", json.dumps(rows, indent=2, default=str))
    print("| variant | KG graph | Recall@20 | NDCG@10 | NDCG@20 | fit s | epochs | λ |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['variant']} | {r['kg'] or '-'} | {r['Recall@20']:.4f} | {r['NDCG@10']:.4f} "
            f"| {r['NDCG@20']:.4f} | {r['fit_s']:.0f} | {r['epochs']} | {r['filter_weight']} |"
        )


if __name__ == "__main__":
    main()
