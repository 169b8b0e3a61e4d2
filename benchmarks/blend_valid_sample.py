"""Validation only: does LMGCN's blend weight λ change when every validation user is scored?

    python benchmarks/blend_valid_sample.py --dataset amazon-videogames [--seeds 0,1,2]

LMGCN chooses λ of ŝ = z(core) + λ z(filter) on validation with
:func:`lgrec.train.validation.validation_grid`, which scores a fixed sample of at most 5,000
validation users. This fits "blend without text" and "full model" (as in
``benchmarks/ablation.py``) per seed and, for the same λ grid, prints Recall@20 on that sample
and on all validation users, the λ each would choose and the all-users Recall@20 of both
choices, one JSON line per fit. The fit itself is unchanged (it keeps the sampled choice); no
test split is scored.
"""

from __future__ import annotations

import argparse
import json
import os

_CONFIGS = {
    "blend without text": {"text": False, "profiles": False, "semantic_k": 0},
    "full model": {},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--seeds", default="0,1,2")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import lgrec.models.fusion as fusion
    from lgrec.config import load_config
    from lgrec.pipeline import build_model, encode_items, prepare, setup

    sampled_grid, grids = fusion.validation_grid, []

    def both(scores, n, seen, valid, k=20, **kw):  # the sampled result, and all users' too
        sampled = sampled_grid(scores, n, seen, valid, k=k, **kw)
        full = sampled_grid(scores, n, seen, valid, k=k, max_users=None)
        grids.append([[r[f"Recall@{k}"] for r in res] for res in (sampled, full)])
        return sampled

    fusion.validation_grid = both
    vr = 0.0 if args.dataset == "amazon-videogames" else 0.1  # amazon has its own valid fold
    for seed in (int(s) for s in args.seeds.split(",")):
        cfg = load_config(dataset=args.dataset, seed=seed, threads=2, valid_ratio=vr,
                          models=["lmgcn"])  # fmt: skip
        setup(cfg)
        prep = prepare(cfg)
        emb = encode_items(prep, cfg)
        for label, params in _CONFIGS.items():
            model = build_model("lmgcn", cfg, rating_head=False, category_head=False, **params)
            model.fit(prep.split.train, valid=prep.split.valid, item_emb=emb)
            sampled, full = grids[-1]
            w = list(model.filter_weight)
            pick = {name: max(range(len(w)), key=lambda i, r=r: (r[i], -i))  # ties: smaller λ
                    for name, r in (("sample", sampled), ("all", full))}  # fmt: skip
            print(json.dumps({
                "dataset": args.dataset, "seed": seed, "config": label,
                "weights": [str(x) for x in w],
                "R@20 sample": [round(x, 4) for x in sampled],
                "R@20 all users": [round(x, 4) for x in full],
                "λ on the sample": str(w[pick["sample"]]), "λ on all users": str(w[pick["all"]]),
                "all users' R@20 of the sample's λ": round(full[pick["sample"]], 4),
                "all users' R@20 of their own λ": round(full[pick["all"]], 4),
            }, ensure_ascii=False), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
