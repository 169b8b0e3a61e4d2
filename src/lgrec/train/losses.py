"""Training objectives.

* BPR (Rendle et al., 2009): L = -mean log σ(s_ui - s_uj) for a positive i and negative j.
* Sampled softmax / InfoNCE: with cosine scores s and temperature τ,
  L = -mean log( exp(s_ui/τ) / (exp(s_ui/τ) + Σ_{j∈N} exp(s_uj/τ)) ), where N holds the
  other positives of the batch (in-batch negatives) and uniformly sampled items.
* MSE for ratings and BCE for clicks are the torch built-ins.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bpr_loss(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """-mean log σ(pos - neg); ``neg`` may be (B,) or (B, n) (averaged over negatives)."""
    if neg.ndim == 2:
        pos = pos[:, None]
    return F.softplus(neg - pos).mean()


def softmax_loss(
    u: torch.Tensor,
    i_pos: torch.Tensor,
    i_neg: torch.Tensor,
    tau: float,
    pos_ids: torch.Tensor | None = None,
    neg_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """Sampled softmax (InfoNCE) over cosine similarities with shared uniform negatives.

    ``u`` and ``i_pos`` are (B, d) matched rows; ``i_neg`` (M, d) are negatives drawn
    uniformly from the catalogue and shared by the batch, so the loss estimates the full
    softmax over items without the popularity bias of in-batch negatives. With ids given, a
    negative that is the row's own positive is masked out.
    """
    u = F.normalize(u, dim=1)
    pos = (u * F.normalize(i_pos, dim=1)).sum(1, keepdim=True)
    neg = u @ F.normalize(i_neg, dim=1).T
    if pos_ids is not None and neg_ids is not None:
        neg = neg.masked_fill(pos_ids[:, None] == neg_ids[None, :], float("-inf"))
    logits = torch.cat([pos, neg], dim=1) / tau
    return F.cross_entropy(logits, torch.zeros(len(u), dtype=torch.long, device=u.device))


def l2(*tensors: torch.Tensor) -> torch.Tensor:
    """½ Σ‖x‖² / batch — the LightGCN-style regulariser on the batch's ego embeddings."""
    n = max(1, len(tensors[0]))
    return sum(t.pow(2).sum() for t in tensors) / (2 * n)
