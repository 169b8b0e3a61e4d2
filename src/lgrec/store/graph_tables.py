"""The user–item graph as tables ready for bulk loading into any graph store.

:func:`graph_tables` turns a :class:`~lgrec.data.dataset.Dataset` (plus optional item–item
similarities and friendship pairs) into :class:`GraphTables`: one table per node label and
relationship type of :mod:`lgrec.store.graphdb`, keyed by external ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from lgrec.errors import DataError

if TYPE_CHECKING:  # only for annotations: keeps `import lgrec.store` free of torch
    from lgrec.data.dataset import Dataset


@dataclass(frozen=True)
class GraphTables:
    """The graph as tables ready for bulk loading (external ids as node keys).

    ``users``: id, idx; ``items``: id, idx, title, categories; ``categories``: name;
    relation tables ``interacted`` (src, dst, event, rating, ts), ``similar`` (src, dst, score),
    ``in_category`` (src, dst) and ``friend`` (src, dst), where src/dst are node keys.
    """

    users: pd.DataFrame
    items: pd.DataFrame
    categories: pd.DataFrame
    interacted: pd.DataFrame
    similar: pd.DataFrame
    in_category: pd.DataFrame
    friend: pd.DataFrame


def graph_tables(
    ds: Dataset, similar: sp.spmatrix | None = None, social: np.ndarray | None = None
) -> GraphTables:
    """Turn a :class:`Dataset` (plus optional item–item similarities and user–user friendship
    pairs) into :class:`GraphTables`; the diagonal of ``similar`` is dropped."""
    uid = ds.users["user_id"].astype(str).to_numpy(dtype=object)
    iid = ds.items["item_id"].astype(str).to_numpy(dtype=object)
    for what, ids in (("user_id", uid), ("item_id", iid)):
        if len(pd.unique(ids)) != len(ids):
            raise DataError(f"load_dataset: column {what!r} of {ds.name!r} has duplicate ids")
    vocab, cat = ds.categories()
    vocab_arr = np.asarray(vocab, dtype=object)
    item_cats = [list(c) for c in np.split(vocab_arr[cat.indices], cat.indptr[1:-1])]
    title = (
        ds.items["title"].astype(object).where(ds.items["title"].notna(), None)
        if "title" in ds.items.columns
        else pd.Series([None] * ds.n_items, dtype=object)
    )
    items = pd.DataFrame(
        {"id": iid, "idx": np.arange(ds.n_items, dtype=np.int64), "title": title.to_numpy()}
    )
    items["categories"] = item_cats if ds.n_items else []
    cat_coo = cat.tocoo()
    inter = ds.interactions
    interacted = pd.DataFrame(
        {
            "src": uid[ds.user_ids],
            "dst": iid[ds.item_ids],
            "event": inter["event"].astype(str).to_numpy(dtype=object),
            "rating": inter["rating"].to_numpy(dtype=np.float64),
            "ts": inter["timestamp"].to_numpy(dtype=np.float64),
        }
    )
    return GraphTables(
        users=pd.DataFrame({"id": uid, "idx": np.arange(ds.n_users, dtype=np.int64)}),
        items=items,
        categories=pd.DataFrame({"name": vocab_arr}),
        interacted=interacted,
        similar=_similar_table(similar, iid),
        in_category=pd.DataFrame({"src": iid[cat_coo.row], "dst": vocab_arr[cat_coo.col]}),
        friend=_friend_table(social, uid),
    )


def _similar_table(similar: sp.spmatrix | None, iid: np.ndarray) -> pd.DataFrame:
    if similar is None:
        return pd.DataFrame({"src": [], "dst": [], "score": []}).astype({"score": np.float64})
    n = len(iid)
    if not sp.issparse(similar) or similar.shape != (n, n):
        raise DataError(
            f"load_dataset: similar must be a sparse {n}×{n} items × items matrix, "
            f"got {type(similar).__name__} of shape {getattr(similar, 'shape', None)}"
        )
    coo = sp.coo_matrix(similar)
    keep = (coo.row != coo.col) & (coo.data != 0)
    if not np.isfinite(coo.data[keep]).all():
        raise DataError("load_dataset: similar holds NaN or infinite scores")
    return pd.DataFrame(
        {
            "src": iid[coo.row[keep]],
            "dst": iid[coo.col[keep]],
            "score": coo.data[keep].astype(np.float64),
        }
    )


def _friend_table(social: np.ndarray | None, uid: np.ndarray) -> pd.DataFrame:
    if social is None:
        return pd.DataFrame({"src": [], "dst": []})
    pairs = np.asarray(social)
    if pairs.ndim != 2 or pairs.shape[1] != 2 or not np.issubdtype(pairs.dtype, np.integer):
        raise DataError(
            f"load_dataset: social must be an integer array of shape (n, 2) (user, friend), "
            f"got {pairs.dtype} array of shape {pairs.shape}"
        )
    if len(pairs) and (pairs.min() < 0 or pairs.max() >= len(uid)):
        raise DataError(f"load_dataset: social holds user ids outside 0..{len(uid) - 1}")
    return pd.DataFrame({"src": uid[pairs[:, 0]], "dst": uid[pairs[:, 1]]})
