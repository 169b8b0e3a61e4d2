"""Row blocks of the partitioned propagation (the products themselves are tested with 2
processes in test_distributed.py)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from lgrec.train.partition import row_blocks


def test_row_blocks_cover_all_rows_with_balanced_work():
    rng = np.random.default_rng(0)
    deg = (rng.pareto(1.2, 500) * 5).astype(int) + 1  # skewed degrees, like real graphs
    n = int(deg.sum())
    m = sp.csr_matrix((np.ones(n), (np.repeat(np.arange(500), deg), np.zeros(n, dtype=int))))
    for parts in (1, 2, 3, 7):
        b = row_blocks(m.indptr, parts)
        assert b[0] == 0 and b[-1] == 500 and len(b) == parts + 1 and (np.diff(b) >= 0).all()
        work = np.diff(m.indptr[b]) + np.diff(b)
        # contiguous blocks can miss the ideal share by at most one row's work
        assert work.max() - work.sum() / parts <= deg.max() + 1
