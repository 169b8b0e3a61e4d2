"""User-level differentially private SGD for embedding recommenders (joint DP).

**What is private, and from whom.** Neighbouring data sets differ in *one user's whole
history* (every interaction of that user added or removed). The parameters split in two:

* the *shared* parameters θ — item vectors (and item biases): trained with DP-SGD and
  (ε, δ)-DP with respect to any one user's history;
* each user's own vector ``p_u``: trained only on ``u``'s data and θ, and used only to rank
  for ``u``.

By the billboard lemma (Hsu et al. 2014; Jain et al. 2018, *Differentially private model
personalization*) the whole system is then (ε, δ)-*joint* DP: what any set of other users
receives (their vectors and recommendations) is (ε, δ)-DP with respect to ``u``'s history.
A user's own vector is *not* private from someone who reads it: a model bundle holds every
user's vector and must be protected like the raw data (docs/privacy.md).

**The mechanism** (Abadi et al. 2016, with users as the unit). Each step draws a Poisson
sample ``B`` of users (each independently with probability ``q``) and computes, for each
``u ∈ B``, the gradient ``g_u = ∇_θ L_u`` of the user's whole loss ``L_u`` (the mean over the
user's sampled training pairs), clips it to norm ``C`` and adds Gaussian noise to the sum:

    G = Σ_{u∈B} g_u · min(1, C / ‖g_u‖)  +  N(0, σ²C² I),        θ ← Adam(θ, G / (qU) + λ_θ θ)

(``qU`` is the *expected* batch size, so the scale does not depend on the data; ``λ_θ θ`` is
data-independent weight decay). ``p_u`` for ``u ∈ B`` takes an ordinary step on ``L_u`` (its
own data only). Because one user changes at most one clipped term, each step is the sampled
Gaussian mechanism with sensitivity ``C``; T steps compose, accounted with Rényi DP
(Mironov 2017; Opacus ``RDPAccountant``). ``σ`` is the smallest noise multiplier that keeps
the total within (ε, δ) (``opacus.accountants.utils.get_noise_multiplier``).

**Per-user clipping, exactly and fast.** ``L_u`` touches θ only through rows gathered for
``u`` (its positives, negatives and, for LightGCN, its neighbourhood). The gathered rows are
leaves of the graph, so one backward pass gives each row's gradient; summing them per
(user, item) gives each user's gradient, whose norm is the root of the per-(user, item)
squared norms summed per user (:func:`clipped_sum`). No per-example loop, no vmap.

Not covered: hyper-parameters chosen on a validation split (not accounted), the item text
embeddings and the graph filter (not trained here), and the server's online fold-in (it moves
a user's own vector with their own events). See docs/privacy.md.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from lgrec.errors import ConfigError

log = logging.getLogger(__name__)
Tensor = torch.Tensor


@dataclass(frozen=True)
class Budget:
    """The privacy of one training run: ``noise_multiplier`` σ for ``steps`` steps at
    ``sample_rate`` q gives ``(epsilon, delta)`` (``inf`` without noise)."""

    epsilon: float
    delta: float
    noise_multiplier: float
    sample_rate: float
    steps: int

    def as_dict(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def plan_budget(epsilon: float | None, delta: float, sample_rate: float, epochs: float) -> Budget:
    """σ for a target ε over ``ceil(epochs / q)`` steps (ε = None or ∞: no noise)."""
    if not 0 < sample_rate <= 1:
        raise ConfigError(f"DP training: sample_rate must be in (0, 1], got {sample_rate!r}")
    if not 0 < delta < 1:
        raise ConfigError(f"DP training: delta must be in (0, 1), got {delta!r}")
    if not epochs > 0:
        raise ConfigError(f"DP training: epochs must be > 0, got {epochs!r}")
    steps = math.ceil(epochs / sample_rate)
    if epsilon is None or math.isinf(epsilon):
        return Budget(math.inf, delta, 0.0, sample_rate, steps)
    if not epsilon > 0:
        raise ConfigError(f"DP training: epsilon must be > 0 (or inf), got {epsilon!r}")
    from opacus.accountants.utils import get_noise_multiplier

    sigma = get_noise_multiplier(
        target_epsilon=float(epsilon), target_delta=delta, sample_rate=sample_rate, steps=steps
    )
    return Budget(spent_epsilon(sigma, sample_rate, steps, delta), delta, sigma, sample_rate, steps)


def spent_epsilon(sigma: float, sample_rate: float, steps: int, delta: float) -> float:
    """ε of ``steps`` sampled-Gaussian steps (RDP accountant); ∞ for σ = 0."""
    if sigma <= 0:
        return math.inf
    from opacus.accountants import RDPAccountant

    acc = RDPAccountant()
    acc.history = [(float(sigma), float(sample_rate), int(steps))]
    return float(acc.get_epsilon(delta))


def clipped_sum(
    grads: Tensor, items: Tensor, owners: Tensor, n_owners: int, n_items: int, clip: float
) -> tuple[Tensor, Tensor]:
    """``Σ_u g_u · min(1, C/‖g_u‖)`` as an ``(n_items, D)`` tensor, and every ``‖g_u‖``.

    ``grads`` (R, D) are gradients of gathered rows, row r of item ``items[r]`` used by user
    ``owners[r]`` (0 … n_owners − 1); a user's gradient is the sum of their rows per item.
    """
    key = owners * n_items + items
    uniq, inv = torch.unique(key, return_inverse=True)
    per_key = torch.zeros(len(uniq), grads.shape[1], dtype=grads.dtype).index_add_(0, inv, grads)
    key_user = uniq // n_items
    norms = torch.zeros(n_owners, dtype=grads.dtype).index_add_(
        0, key_user, per_key.square().sum(1)
    )
    norms = norms.sqrt()
    scale = (clip / norms.clamp(min=1e-12)).clamp(max=1.0)
    out = torch.zeros(n_items, grads.shape[1], dtype=grads.dtype)
    out.index_add_(0, uniq % n_items, per_key * scale[key_user, None])
    return out, norms


def sample_users(n_users: int, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Poisson sampling: each user independently with probability ``rate`` (sorted ids)."""
    return np.flatnonzero(rng.random(n_users) < rate)


def user_rows(x: sp.csr_matrix, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(owner, item)`` of every training interaction of ``users``; ``owner`` is the position
    in ``users`` (vectorised CSR slicing)."""
    starts, ends = x.indptr[users], x.indptr[users + 1]
    counts = ends - starts
    owner = np.repeat(np.arange(len(users)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return owner, x.indices[np.repeat(starts, counts) + offsets].astype(np.int64)


def cap_per_owner(owner: np.ndarray, n: int | None, rng: np.random.Generator) -> np.ndarray:
    """Mask keeping at most ``n`` random rows per owner (all rows when ``n`` is None)."""
    if n is None or not len(owner):
        return np.ones(len(owner), dtype=bool)
    order = np.lexsort((rng.random(len(owner)), owner))
    first = np.searchsorted(owner[order], owner[order], side="left")
    keep = np.zeros(len(owner), dtype=bool)
    keep[order[(np.arange(len(owner)) - first) < n]] = True
    return keep


class NoisyOptimizer:
    """Adam (or SGD with momentum 0.9) on the shared parameters θ, fed with the privatised
    gradient: any optimiser is post-processing of the noisy gradients."""

    def __init__(
        self, theta: Tensor, lr: float, weight_decay: float, gen: torch.Generator, kind: str
    ):
        if kind not in ("adam", "sgd"):
            raise ConfigError(f"DP training: optimizer must be 'adam' or 'sgd', got {kind!r}")
        self.theta = theta
        self.weight_decay = weight_decay
        self.gen = gen
        if kind == "adam":
            self.opt: torch.optim.Optimizer = torch.optim.Adam([theta], lr=lr)
        else:
            self.opt = torch.optim.SGD([theta], lr=lr, momentum=0.9)

    def step(self, clipped: Tensor, sigma: float, clip: float, expected_batch: float) -> None:
        """θ ← opt(θ, (clipped + N(0, σ²C²)) / expected_batch + λ θ)."""
        g = add_noise(clipped, sigma, clip, self.gen) / expected_batch
        self.theta.grad = g + self.weight_decay * self.theta.detach()
        self.opt.step()


def add_noise(clipped: Tensor, sigma: float, clip: float, gen: torch.Generator) -> Tensor:
    """``clipped + N(0, σ²C² I)`` on every coordinate (touched by the batch or not)."""
    if sigma <= 0:
        return clipped
    noise = torch.randn(clipped.shape, generator=gen, dtype=clipped.dtype)
    return clipped + sigma * clip * noise
