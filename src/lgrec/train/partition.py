"""Graph propagation split by rows over the processes of a ``torch.distributed`` group.

LightGCN-style models propagate over the whole graph each step, E⁽ˡ⁺¹⁾ = Â E⁽ˡ⁾. With P
processes the N nodes are cut into P contiguous blocks R_0 … R_{P-1} of about equal work
(non-zeros + rows); process r keeps only its block of rows A_r = Â[R_r, :] and computes

    Y[R_r] = A_r X,          Y = all_gather_r Y[R_r]            (forward)

so each process does 1/P of the sparse products and holds 1/P of the matrix, and every process
ends a layer with the whole Y (the embeddings stay replicated, as DDP expects of parameters).

Backward. Each process's loss L_r is its own shard of the minibatch, and autograd on process r
hands the layer a *partial* gradient G_r = ∂L_r/∂Y. The gradient of Σ_q L_q with respect to
this process's rows is (Σ_q G_q)[R_r], so the layer returns

    ∂/∂X = A_rᵀ (Σ_q G_q)[R_r]                                   (all-reduce, my rows, A_rᵀ)

again a partial: Σ_r A_rᵀ (Σ_q G_q)[R_r] = Âᵀ Σ_q G_q is the exact gradient of the summed
loss. Summing (DDP averages) the parameters' gradients over processes therefore gives exactly
the gradient of the full-batch loss, the same as one process computing everything.
(gloo has no reduce-scatter on CPU; the all-reduce moves twice its data, N × d per layer.)
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
import torch.distributed as dist

from lgrec.graph.bipartite import SparseOperator, to_torch_sparse


def row_blocks(indptr: np.ndarray, parts: int) -> np.ndarray:
    """Bounds b (parts + 1) of contiguous row blocks [b_r, b_{r+1}) of about equal work, the work
    of a row being its non-zeros + 1 (a CSR product touches each non-zero and writes each row)."""
    cost = indptr.astype(np.int64) + np.arange(len(indptr))
    b = np.searchsorted(cost, cost[-1] * np.arange(parts + 1) / parts)
    b[0], b[-1] = 0, len(indptr) - 1
    return np.maximum.accumulate(b)


class _PartitionedSpMM(torch.autograd.Function):
    """y = Â x with Â split by rows over the group (module docstring)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, op: PartitionedOperator) -> torch.Tensor:
        ctx.op = op
        return op.gather(op.a @ x)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        op = ctx.op
        g = g.contiguous().clone()  # all-reduce works in place; autograd may hold g
        dist.all_reduce(g, group=op.group)
        return op.a_t @ g[op.lo : op.hi], None


class PartitionedOperator:
    """``op @ x`` for a square sparse matrix whose rows are split over ``group``.

    Every process of the group must apply it in the same order (each product is a collective).
    """

    def __init__(self, m: sp.spmatrix | SparseOperator, group: dist.ProcessGroup | None = None):
        if isinstance(m, SparseOperator):
            a = m.a
            m = sp.csr_matrix(
                (a.values().numpy(), a.col_indices().numpy(), a.crow_indices().numpy()),
                shape=m.shape,
            )
        m = sp.csr_matrix(m, dtype=np.float32)
        self.group = group
        self.rank, self.world = dist.get_rank(group), dist.get_world_size(group)
        self.shape = m.shape
        self.bounds = row_blocks(m.indptr, self.world)
        self.lo, self.hi = int(self.bounds[self.rank]), int(self.bounds[self.rank + 1])
        self.sizes = np.diff(self.bounds).tolist()
        block = m[self.lo : self.hi]
        self.a = to_torch_sparse(block)
        self.a_t = to_torch_sparse(block.T.tocsr())
        self.nnz = block.nnz

    def gather(self, y: torch.Tensor) -> torch.Tensor:
        """Concatenate every process's block of rows (blocks are padded to equal size)."""
        n = max(self.sizes)
        pad = y.new_zeros((n, *y.shape[1:]))
        pad[: len(y)] = y
        bufs = [torch.empty_like(pad) for _ in range(self.world)]
        dist.all_gather(bufs, pad, group=self.group)
        return torch.cat([b[:s] for b, s in zip(bufs, self.sizes)])

    def __matmul__(self, x: torch.Tensor) -> torch.Tensor:
        if x.requires_grad and torch.is_grad_enabled():
            return _PartitionedSpMM.apply(x, self)
        return self.gather(self.a @ x)
