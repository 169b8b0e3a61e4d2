"""Shared pieces of the peer benchmarks: the split, the score adapter, validation, timing.

Every peer library is trained by its own code; only these pieces are shared, so every number
comes from the same split (:func:`load_split`, exactly what ``lgrec evaluate`` uses) and the
same metric code (:func:`lgrec.eval.protocol.evaluate_ranking` /
:func:`~lgrec.eval.protocol.evaluate_rating`).

A fitted peer is wrapped in a :class:`FactorScorer`: most peers end as a factor model

.. math::

    s_{ui} = c + b_u + b_i + \\mathbf p_u^\\top \\mathbf q_i,

(ALS, BPR, LightFM, SVD, SVD++ with its implicit user term folded into :math:`\\mathbf p_u`,
cornac MF, LightGCN's final embeddings), so one adapter with ``score(users)`` (and, for rating
models, ``predict_rating``) serves them all. Users or items a library never saw keep zero
factors and biases.
"""

from __future__ import annotations

import itertools
import logging
import os
import resource
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from lgrec.config import RunConfig
from lgrec.data.dataset import Dataset, Split
from lgrec.errors import ConfigError
from lgrec.eval.protocol import evaluate_ranking
from lgrec.pipeline import prepare

log = logging.getLogger("peers")

#: the validation metric every peer is tuned on (the one lgrec's own models use)
VALID_METRIC = "Recall@20"


def load_split(dataset: str, *, seed: int = 0, valid_ratio: float = 0.1) -> Split:
    """The split ``lgrec evaluate --dataset <dataset>`` uses (load, clean, fixed split, valid).

    ``lgrec.pipeline.prepare`` with its defaults: ML-100K fold ``u1``; the validation part is
    carved from training rows (``carve_valid``, 10 % per user, seed 0). A data set whose fixed
    split already has a validation fold (amazon-videogames) keeps that fold.
    """
    try:
        return prepare(RunConfig(dataset=dataset, seed=seed, valid_ratio=valid_ratio)).split
    except ConfigError as e:
        if "already has a validation part" not in str(e):
            raise
        return prepare(RunConfig(dataset=dataset, seed=seed, valid_ratio=0.0)).split


class FactorScorer:
    """Adapter: :math:`s_{ui} = c + b_u + b_i + \\mathbf p_u^\\top \\mathbf q_i` (module doc).

    Implements what :func:`lgrec.eval.protocol.evaluate_ranking` and ``evaluate_rating``
    call: ``n_users_``, ``n_items_``, ``score(users) -> (U, I)``, ``has_rating_head`` and
    ``predict_rating(users, items)``.
    """

    def __init__(
        self,
        user_factors: np.ndarray,
        item_factors: np.ndarray,
        *,
        user_bias: np.ndarray | None = None,
        item_bias: np.ndarray | None = None,
        offset: float = 0.0,
        rating: bool = False,
    ) -> None:
        self.P = torch.as_tensor(np.ascontiguousarray(user_factors, dtype=np.float32))
        self.Q = torch.as_tensor(np.ascontiguousarray(item_factors, dtype=np.float32))
        if self.P.shape[1] != self.Q.shape[1]:
            raise ValueError(
                f"user factors have {self.P.shape[1]} columns but item factors {self.Q.shape[1]}"
            )
        self.n_users_, self.n_items_ = self.P.shape[0], self.Q.shape[0]
        self.bu = None if user_bias is None else torch.as_tensor(user_bias, dtype=torch.float32)
        self.bi = None if item_bias is None else torch.as_tensor(item_bias, dtype=torch.float32)
        self.offset = float(offset)
        self.has_rating_head = rating

    def score(self, users: torch.Tensor) -> torch.Tensor:
        """(len(users), n_items) scores."""
        u = torch.as_tensor(users).long()
        s = self.P[u] @ self.Q.T
        if self.bi is not None:
            s += self.bi[None, :]
        if self.bu is not None:  # a per-user constant: no effect on ranking, kept for ratings
            s += self.bu[u][:, None]
        return s + self.offset

    def predict_rating(self, users: Any, items: Any) -> torch.Tensor:
        """Pairwise :math:`s_{ui}` for rating models."""
        u = torch.from_numpy(np.array(users, dtype=np.int64))
        i = torch.from_numpy(np.array(items, dtype=np.int64))
        s = (self.P[u] * self.Q[i]).sum(1) + self.offset
        if self.bi is not None:
            s += self.bi[i]
        if self.bu is not None:
            s += self.bu[u]
        return s


@dataclass
class PeerFit:
    """What a peer's ``fit_*`` function hands back to ``run_peers.py``."""

    model: Any  # an object with score(users); usually a FactorScorer
    params: dict[str, Any]  # the chosen hyper-parameters
    tune_s: float  # seconds spent on the validation grid / early stopping
    fit_s: float  # seconds of the final fit on train + valid
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. seconds per epoch, grid table


def valid_score(model: Any, split: Split) -> float:
    """Validation Recall@20: rank all items but the TRAIN ones, relevant = valid items."""
    if split.valid is None:
        raise ConfigError("the split has no validation part to tune on")
    return float(evaluate_ranking(model, split.train, split.valid, ks=(20,))[VALID_METRIC])


class EarlyStop:
    """``on_epoch(epoch, scorer) -> stop?`` callback for the epoch-trained peers.

    Scores validation Recall@20 every ``eval_every`` epochs and says stop after ``patience``
    checks without a gain, or once ``time.perf_counter()`` passes ``deadline`` (then it scores
    that epoch too, so the time box still ends on a measured epoch). Keeps the best score, its
    epoch and the curve of ``(epoch, score)``.
    """

    def __init__(
        self, split: Split, eval_every: int, patience: int, deadline: float | None, label: str = ""
    ) -> None:
        self.split, self.eval_every, self.patience = split, eval_every, patience
        self.deadline, self.label = deadline, label
        self.best, self.best_epoch, self.bad = -1.0, 0, 0
        self.curve: list[tuple[int, float]] = []

    def __call__(self, epoch: int, scorer: Callable[[], Any]) -> bool:
        over = self.deadline is not None and time.perf_counter() > self.deadline
        if epoch % self.eval_every and not over:
            return False
        r = valid_score(scorer(), self.split)
        self.curve.append((epoch, r))
        log.info("%sepoch %d valid Recall@20 %.4f", self.label, epoch, r)
        if r > self.best:
            self.best, self.best_epoch, self.bad = r, epoch, 0
        else:
            self.bad += 1
        if over:
            log.info("%stime budget reached at epoch %d", self.label, epoch)
        return over or self.bad >= self.patience


def product_grid(spec: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the listed values: ``{"a": [1, 2]} -> [{"a": 1}, {"a": 2}]``."""
    keys = list(spec)
    return [dict(zip(keys, vals)) for vals in itertools.product(*spec.values())]


def grid_search(
    grid: Iterable[dict[str, Any]],
    fit: Callable[[Dataset, dict[str, Any]], Any],
    split: Split,
    *,
    score: Callable[[Any, Split], float] = valid_score,
    higher_is_better: bool = True,
) -> tuple[dict[str, Any], list[dict[str, Any]], float]:
    """Fit each configuration on ``split.train``, score it on ``split.valid``.

    Returns (best configuration, table of every configuration with its validation score,
    seconds spent). Test data is never touched.
    """
    t0 = time.perf_counter()
    table: list[dict[str, Any]] = []
    best, best_v = None, None
    for cfg in grid:
        v = score(fit(split.train, cfg), split)
        table.append({**cfg, "valid": v})
        log.info("grid %s -> valid %.4f", cfg, v)
        if best_v is None or (v > best_v if higher_is_better else v < best_v):
            best, best_v = cfg, v
    if best is None:
        raise ConfigError("empty hyper-parameter grid")
    return best, table, time.perf_counter() - t0


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """(result, wall-clock seconds) of ``fn()``."""
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux ``ru_maxrss`` is KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def threads() -> int:
    """Worker threads for the peers: ``PEER_THREADS``, default 1.

    The machine's 2 cores are shared with other developers' jobs; under that load one thread
    per run is faster than two (measured: a PyG LightGCN batch took 0.55 s with 2 torch threads
    and 0.25 s with 1), and lgrec's own benchmark runs use ``--threads 1`` too.
    """
    return int(os.environ.get("PEER_THREADS", "1"))


def seed_all(seed: int) -> None:
    """Seed NumPy's legacy generator and torch (libraries take their own seeds too)."""
    np.random.seed(seed)
    torch.manual_seed(seed)


def scatter_rows(values: np.ndarray, raw_ids: np.ndarray, n: int) -> np.ndarray:
    """Rows of a library's internal-id array placed at lgrec's ids; absent ids get zeros.

    ``values[k]`` belongs to lgrec id ``raw_ids[k]`` (the library numbered its own ids);
    the result has ``n`` rows.
    """
    values = np.asarray(values, dtype=np.float32)
    out = np.zeros((n, *values.shape[1:]), dtype=np.float32)
    out[np.asarray(raw_ids, dtype=np.int64)] = values
    return out


def rating_rmse(model: Any, split: Split) -> float:
    """Validation RMSE of a rating model (lgrec's ``evaluate_rating``, clipped to the scale)."""
    from lgrec.eval.protocol import evaluate_rating

    if split.valid is None:
        raise ConfigError("the split has no validation part to tune on")
    return float(evaluate_rating(model, split.valid)["RMSE"])
