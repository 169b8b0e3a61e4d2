"""Knowledge-graph item links: RecBole ``.kg``/``.link`` files → an item–item graph.

A knowledge graph is a set of triples (head, relation, tail) over entities; a link table maps
item ids to entities. With the items × entities link matrix L (L_{i,e} = 1 when item i is
entity e) and the undirected entity adjacency A (A_{e,f} = 1 when a triple joins e and f in
either direction, optionally only for some relations), the items × entities matrix is

    B = bin(L · (A + A² + … + Aʰ) + [self] L)          (h = ``hops``; bin(x) = [x > 0])

i.e. item i is linked to every entity within h hops of its own entity (and to its own entity
when ``include_self``: two films then share an entity when one is the sequel of the other).
Entities linked to fewer than ``min_items`` or more than ``max_items`` items are dropped (an
entity shared by one item relates nothing; one shared by half the catalogue, e.g. the
language "English", relates everything and means little).

Collapsing B to an item–item graph weights each shared entity by its inverse item frequency:
with n_e = Σ_i B_ie and N the number of items,

    idf_e = log(N / n_e),        W = B · diag(idf) · Bᵀ  with W_ii = 0,

then each row keeps its ``k`` largest weights and the result is symmetrised (``"max"``, as in
:func:`lgrec.graph.semantic.semantic_knn`). The product is blocked over item rows, so the
dense I × I matrix is never formed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from lgrec.errors import ConfigError, DataError, DatasetNotFoundError
from lgrec.graph.cooccurrence import topk_per_row
from lgrec.graph.semantic import symmetrize_graph

if TYPE_CHECKING:
    from lgrec.data.dataset import Dataset

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KnowledgeGraph:
    """Triples (columns ``head``, ``relation``, ``tail``) and item links (``item_id``,
    ``entity``), all strings as in the files."""

    triples: pd.DataFrame
    links: pd.DataFrame

    @property
    def relations(self) -> list[str]:
        """The distinct relation names, sorted."""
        return sorted(self.triples["relation"].unique().tolist())


def _read(path: Path, fields: tuple[str, ...], names: tuple[str, ...]) -> pd.DataFrame:
    from lgrec.data.recbole import read_atomic

    df, _ = read_atomic(path)
    missing = [f for f in fields if f not in df.columns]
    if missing:
        raise DataError(
            f"{path}: missing field(s) {missing}; found {list(df.columns)} "
            f"(expected a RecBole header with {', '.join(f + ':token' for f in fields)})"
        )
    df = df[list(fields)].astype(object)
    empty = np.zeros(len(df), dtype=bool)
    for f in fields:
        empty |= np.asarray(df[f].isna() | (df[f].astype(str).str.strip() == ""))
    if empty.any():
        line = int(df.index[np.argmax(empty)]) + 2
        raise DataError(f"{path}, line {line}: empty field; every row needs {list(fields)}")
    df.columns = list(names)
    return df.astype(str).reset_index(drop=True)


def read_kg(path: str | Path) -> pd.DataFrame:
    """Read a RecBole ``.kg`` file (``head_id``, ``relation_id``, ``tail_id``)."""
    return _read(Path(path), ("head_id", "relation_id", "tail_id"), ("head", "relation", "tail"))


def read_link(path: str | Path) -> pd.DataFrame:
    """Read a RecBole ``.link`` file (``item_id``, ``entity_id``); an item may appear once."""
    path = Path(path)
    df = _read(path, ("item_id", "entity_id"), ("item_id", "entity"))
    dup = df["item_id"].duplicated()
    if dup.any():
        line = int(np.argmax(dup.to_numpy())) + 2
        raise DataError(
            f"{path}, line {line}: item {df['item_id'][dup].iloc[0]!r} is linked twice; "
            "expected one entity per item"
        )
    return df


def load_kg(path: str | Path) -> KnowledgeGraph:
    """Load ``<path>/*.kg`` and ``<path>/*.link`` (one of each), e.g. ``data/ml-100k-kg``."""
    path = Path(path)
    if not path.is_dir():
        raise DatasetNotFoundError(
            f"knowledge-graph folder {path} not found; expected RecBole <name>.kg and "
            "<name>.link files (e.g. RecBole's dataset_example/ml-100k)"
        )
    found = {}
    for suffix in ("kg", "link"):
        files = sorted(path.glob(f"*.{suffix}"))
        if len(files) != 1:
            raise DatasetNotFoundError(
                f"{path}: expected exactly one *.{suffix} file, found {[f.name for f in files]}"
            )
        found[suffix] = files[0]
    kg = KnowledgeGraph(read_kg(found["kg"]), read_link(found["link"]))
    log.info(
        "knowledge graph %s: %d triples, %d relations, %d item links",
        path,
        len(kg.triples),
        len(kg.relations),
        len(kg.links),
    )
    return kg


def item_entity_matrix(
    ds: Dataset,
    kg: KnowledgeGraph,
    *,
    hops: int = 1,
    include_self: bool = True,
    relations: Sequence[str] | None = None,
    min_items: int = 2,
    max_items: int | None = None,
) -> tuple[sp.csr_matrix, np.ndarray]:
    """Binary items × entities matrix B of the module docstring and the entity names.

    Link item ids are matched to ``ds.items["item_id"]`` as strings (MovieLens ids for
    ML-100K); links to unknown items are ignored. ``relations`` restricts A to those relation
    names. Only entities with ``min_items ≤ n_e ≤ max_items`` are kept (columns of B).
    """
    if not isinstance(hops, int | np.integer) or hops < 1:
        raise ConfigError(f"item_entity_matrix: hops must be an integer ≥ 1, got {hops!r}")
    if min_items < 1 or (max_items is not None and max_items < min_items):
        raise ConfigError(
            f"item_entity_matrix: need 1 ≤ min_items ≤ max_items, got {min_items}, {max_items}"
        )
    t = kg.triples
    if relations is not None:
        unknown = sorted(set(relations) - set(kg.relations))
        if unknown:
            raise ConfigError(
                f"item_entity_matrix: unknown relation(s) {unknown}; the graph has {kg.relations}"
            )
        t = t[t["relation"].isin(list(relations))]
    codes, names = pd.factorize(
        pd.concat([t["head"], t["tail"], kg.links["entity"]], ignore_index=True)
    )
    n_ent = len(names)
    h, tl, link_e = np.split(codes.astype(np.int64), [len(t), 2 * len(t)])
    a = sp.csr_matrix(
        (np.ones(2 * len(t), dtype=np.float32), (np.r_[h, tl], np.r_[tl, h])), shape=(n_ent, n_ent)
    )
    item_pos = pd.Index(ds.items["item_id"].astype(str)).get_indexer(kg.links["item_id"])
    ok = item_pos >= 0
    if (~ok).any():
        log.info("knowledge graph: %d of %d links name unknown items", (~ok).sum(), len(ok))
    link = sp.csr_matrix(
        (np.ones(int(ok.sum()), dtype=np.float32), (item_pos[ok], link_e[ok])),
        shape=(ds.n_items, n_ent),
    )
    reach, frontier = sp.csr_matrix(link.shape, dtype=np.float32), link
    for _ in range(int(hops)):
        frontier = _binary(frontier @ a)
        reach = reach + frontier
    if include_self:
        reach = reach + link
    b = _binary(reach)
    n_e = np.diff(b.tocsc().indptr)
    keep = (n_e >= min_items) & (n_e <= (max_items if max_items is not None else np.inf))
    cols = np.flatnonzero(keep)
    b = sp.csr_matrix(b[:, cols], dtype=np.float32)
    b.sort_indices()
    log.info(
        "item–entity matrix: %d items × %d entities (%d links, hops=%d)",
        b.shape[0],
        b.shape[1],
        b.nnz,
        hops,
    )
    return b, np.asarray(names, dtype=object)[cols]


def _binary(m: sp.spmatrix) -> sp.csr_matrix:
    m = sp.csr_matrix(m, dtype=np.float32)
    m.eliminate_zeros()
    m.data[:] = 1.0
    return m


def entity_idf(b: sp.spmatrix) -> np.ndarray:
    """idf_e = log(N / n_e) per column of B (0 for unused columns)."""
    b = sp.csc_matrix(b)
    n_e = np.diff(b.indptr).astype(np.float64)
    out = np.zeros(b.shape[1])
    used = n_e > 0
    out[used] = np.log(b.shape[0] / n_e[used])
    return out


def collapse_item_graph(
    b: sp.spmatrix,
    *,
    k: int | None = 20,
    idf: bool = True,
    symmetrize: str = "max",
    block_size: int = 1024,
) -> sp.csr_matrix:
    """W = B diag(idf) Bᵀ without its diagonal, top-``k`` per row, symmetrised (I × I CSR).

    ``idf=False`` counts shared entities instead. ``k=None`` keeps every pair.
    """
    if k is not None and (not isinstance(k, int | np.integer) or k <= 0):
        raise ConfigError(f"collapse_item_graph: k must be a positive integer or None, got {k!r}")
    if block_size <= 0:
        raise ConfigError(f"collapse_item_graph: block_size must be positive, got {block_size!r}")
    b = _binary(b)
    n = b.shape[0]
    w = entity_idf(b) if idf else np.ones(b.shape[1])
    left = sp.csr_matrix(b @ sp.diags(w.astype(np.float32)))
    bt = sp.csr_matrix(b.T)
    parts = []
    for start in range(0, n, block_size):
        stop = min(start + block_size, n)
        c = (left[start:stop] @ bt).tocoo()
        keep = (c.row + start != c.col) & (c.data > 0)
        blk = sp.csr_matrix(
            (c.data[keep].astype(np.float32), (c.row[keep], c.col[keep])), shape=(stop - start, n)
        )
        parts.append(topk_per_row(blk, k))
    out = sp.vstack(parts, format="csr") if parts else sp.csr_matrix((0, n), dtype=np.float32)
    out = symmetrize_graph(out, symmetrize)
    log.info("knowledge item graph: %d items, %d edges (k=%s)", n, out.nnz, k)
    return out


def knowledge_item_graph(
    ds: Dataset,
    kg: KnowledgeGraph | str | Path,
    *,
    k: int | None = 20,
    hops: int = 1,
    include_self: bool = True,
    relations: Sequence[str] | None = None,
    min_items: int = 2,
    max_items: int | None = None,
    idf: bool = True,
) -> sp.csr_matrix:
    """The whole recipe: load (when given a folder), :func:`item_entity_matrix`, then
    :func:`collapse_item_graph`; ready for ``LMGCN.fit(..., item_graph=...)``."""
    if not isinstance(kg, KnowledgeGraph):
        kg = load_kg(kg)
    b, _ = item_entity_matrix(
        ds,
        kg,
        hops=hops,
        include_self=include_self,
        relations=relations,
        min_items=min_items,
        max_items=max_items,
    )
    return collapse_item_graph(b, k=k, idf=idf)
