"""Test RMSE of each rating component and of their validated blend (ML-100K u1 by default).

Fits ``lgrec.models.rating.fit_rating_blend`` on the training part with the validation split
carved from it (as ``lgrec evaluate`` does, no refit), then prints each component's test RMSE,
the blend weights and the blend's test RMSE. Usage::

    .venv/bin/python benchmarks/rating_components.py [--dataset ml-100k] [--fold u1]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from lgrec.config import RunConfig
from lgrec.models.rating import fit_rating_blend
from lgrec.pipeline import encode_items, prepare, setup


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--fold", default="u1")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    cfg = RunConfig(
        dataset=args.dataset, fold=args.fold, data_dir=args.data_dir, threads=args.threads
    )
    setup(cfg)
    prep = prepare(cfg)
    s = prep.split
    text = torch.from_numpy(encode_items(prep, cfg)).float()
    t0 = time.perf_counter()
    blend = fit_rating_blend(s.train, s.valid, text)
    fit_s = time.perf_counter() - t0
    lo, hi = s.train.rating_scale or (float(s.train.ratings.min()), float(s.train.ratings.max()))
    u = torch.as_tensor(s.test.user_ids).long()
    i = torch.as_tensor(s.test.item_ids).long()
    target = np.asarray(s.test.ratings, dtype=np.float64)
    with torch.no_grad():
        comp = blend.components(u, i).clamp(lo, hi).double().numpy()
        both = blend.predict(u, i).clamp(lo, hi).double().numpy()

    def rmse(p: np.ndarray) -> float:
        return float(np.sqrt(((p - target) ** 2).mean()))

    rows = {name: rmse(comp[:, k]) for k, name in enumerate(blend.names)}
    rows["blend"] = rmse(both)
    out = {
        "dataset": args.dataset,
        "test_rmse": rows,
        "weights": dict(zip(["intercept", *blend.names], blend.weights, strict=True)),
        "best_epochs": blend.best_epochs,
        "fit_s": round(fit_s, 1),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
