"""Worker of tests/train/test_distributed_graphfilter.py, run by torchrun (2 processes).

Every process builds the same planted data set and split (:func:`data`), joins the gloo
process group and fits :class:`GraphFilter` twice as ``lgrec train --distributed`` would (the
whole data in every process): :data:`FIT` with a tiny validation grid, whose spectrum
(σ, V) then comes from each process's users (:mod:`lgrec.train.distributed_spectrum`), and
a filter without the ideal term (k = 0), which needs only σ_max for its scale. Each process
writes σ, V, the scale, the number of shards, the chosen setting, the test Recall@20 and the
scores of the first users to ``OUT/rank<r>.npz``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch.distributed as dist

from lgrec.data.dataset import Split
from lgrec.eval import evaluate_model
from lgrec.models import GraphFilter
from lgrec.train.distributed_spectrum import sharded_spectra
from tests.conftest import make_planted, split_last

#: fixed k and exponents, a tiny grid over α and the sharpening time h (one spectrum)
FIT = dict(k=16, alpha=(0.3, 1.0), sharpen=(0.0, 1.0), user_exp=0.3, item_exp=0.4)
SCORED_USERS = 64


def data() -> Split:
    """Planted tastes, 600 users × 150 items (20 interactions each, 20 % off-topic); per
    user 3 random interactions are the test split and 2 others validation."""
    ds = make_planted(n_users=600, items_per_topic=50, per_user=20, noise=0.2)
    return split_last(ds.with_interactions(ds.interactions.sample(frac=1.0, random_state=0)))


def fitted(split: Split) -> tuple[GraphFilter, GraphFilter]:
    """:data:`FIT` on the training split (chosen on validation), and the k = 0 filter."""
    gf = GraphFilter(**FIT).fit(split.train, valid=split.valid)
    linear = GraphFilter(k=0, alpha=0.0, sharpen=0.0, user_exp=0.3, item_exp=0.4)
    return gf, linear.fit(split.train)


def summary(gf: GraphFilter, linear: GraphFilter, split: Split) -> dict[str, np.ndarray]:
    """What the test compares, as arrays."""
    res = evaluate_model(gf, split, ks=(20,))
    return dict(
        sigma=gf.sigma_, v=gf.vk_.numpy(), scale=np.array(gf.scale_),
        shards=np.array([gf.spectrum_shards_, linear.spectrum_shards_]),
        setting=np.array([gf.k_, gf.alpha_, gf.h_]), recall=np.array(res["Recall@20"]),
        scores=gf.score(np.arange(SCORED_USERS)).numpy(), linear_scale=np.array(linear.scale_),
    )  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    dist.init_process_group("gloo")
    split = data()
    gf, linear = fitted(split)
    out = summary(gf, linear, split)
    np.savez(args.out / f"rank{dist.get_rank()}.npz", spectra=sharded_spectra(), **out)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
