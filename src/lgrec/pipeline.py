"""Wiring of the stages for the CLI and scripts: data → text → models → eval.

Nothing here holds an idea of its own; it calls the stages in order with one configuration:
load and clean the data, split it (validation carved from training data), encode item text
once, fit each model (choosing hyper-parameters / epochs on validation, then refitting on
train + valid), evaluate on the test split and write the comparison report.
"""

from __future__ import annotations

import inspect
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from lgrec.config import RunConfig
from lgrec.data import (
    carve_valid,
    clean,
    load_dataset,
    read_item_ids,
    split_cold_items,
    split_fixed,
    split_random,
    split_temporal,
)
from lgrec.data.dataset import Dataset, Split
from lgrec.errors import ConfigError, DatasetNotFoundError
from lgrec.models.base import Recommender, registered_models
from lgrec.progress import note, progress, working
from lgrec.utils import atomic_write_text, data_dir, seed_everything

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """The cleaned data set, its split, the cleaning report and the item text embeddings."""

    data: Dataset
    split: Split
    report: Any
    item_emb: np.ndarray | None = None
    encode_seconds: float = 0.0
    item_graph: Any = None  # the knowledge graph's item links (``--kg``), built once


def setup(cfg: RunConfig) -> None:
    """Seed everything and set torch's thread count."""
    seed_everything(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.cache_dir:
        import os

        os.environ["LGREC_CACHE_DIR"] = str(cfg.cache_dir)


def prepare(cfg: RunConfig, *, row_column: bool = False) -> Prepared:
    """Load, clean and split ``cfg.dataset``; carve the validation split from training data.

    With ``cfg.prepared`` the cleaned data and split are read from that folder instead.
    ``row_column`` gives every split part a ``row`` column (for :func:`write_prepared`).
    """
    if cfg.prepared:
        from lgrec.data.prepared import read_prepared

        return Prepared(*read_prepared(cfg.prepared))
    kw = {"fold": cfg.fold} if cfg.dataset in ("ml-100k",) else {}
    with working(f"loading {cfg.dataset}"):
        ds = load_dataset(cfg.dataset, data_dir=cfg.data_dir, **{**kw, **cfg.loader})
    with working(f"cleaning {ds.name}"):
        ds, report = clean(ds, k_core=cfg.k_core)
    if cfg.pseudonymize:  # before anything is stored or trained (lgrec.privacy.pseudonym)
        from lgrec.privacy.pseudonym import load_key, pseudonymize_dataset

        ds = pseudonymize_dataset(ds, load_key(cfg.pseudonym_key_file))
    if cfg.tombstones:  # users erased since (lgrec.privacy.tombstones)
        from lgrec.privacy.tombstones import drop_erased, read_tombstones

        ds = drop_erased(ds, read_tombstones(cfg.tombstones))
    data = ds
    if row_column:
        from lgrec.data.prepared import with_row_column

        ds = with_row_column(ds)
    with working(f"splitting {ds.name} ({cfg.split})"):
        split = _split(ds, cfg)
    return Prepared(data, split, report)


def _split(ds: Dataset, cfg: RunConfig) -> Split:
    """The split of ``cfg.split`` (+ the validation part carved from training data)."""
    if cfg.split == "fixed":
        split = split_fixed(ds)
    elif cfg.split == "random":
        split = split_random(ds, test_ratio=cfg.test_ratio, seed=cfg.seed)
    elif cfg.split == "temporal":
        split = split_temporal(ds)
    else:
        given = read_item_ids(cfg.cold_items, ds) if cfg.cold_items else None
        split = split_cold_items(ds, item_frac=cfg.cold_item_frac, seed=cfg.seed, items=given)
    if cfg.valid_ratio > 0:
        split = carve_valid(split, ratio=cfg.valid_ratio, seed=cfg.seed)
    return split


def encode_items(prep: Prepared, cfg: RunConfig) -> np.ndarray:
    """Item text embeddings (cached on disk by content hash); also kept on ``prep``."""
    if prep.item_emb is None:
        from lgrec.text.encoder import TextEncoder

        t0 = time.perf_counter()
        enc = TextEncoder(cfg.text_model, max_length=cfg.text_max_length)
        with working(f"encoding {prep.data.n_items} item texts"):
            prep.item_emb = enc.encode(prep.data.item_text())
        prep.encode_seconds = time.perf_counter() - t0
    return prep.item_emb


def kg_item_graph(prep: Prepared, cfg: RunConfig) -> Any:
    """The item–item graph of the knowledge graph ``cfg.kg`` (a folder path, or a folder under
    the data root), :func:`lgrec.graph.knowledge.knowledge_item_graph` with its defaults;
    also kept on ``prep``."""
    if prep.item_graph is None:
        from lgrec.graph.knowledge import knowledge_item_graph

        path = Path(str(cfg.kg)).expanduser()
        under = data_dir(cfg.data_dir) / str(cfg.kg)
        if not path.is_dir() and not path.is_absolute() and under.is_dir():
            path = under
        if not path.is_dir():
            raise DatasetNotFoundError(
                f"--kg {cfg.kg}: no knowledge-graph folder there"
                + ("" if path.is_absolute() else f" nor at {under}")
                + " (expected RecBole <name>.kg and <name>.link files)"
            )
        with working(f"building the item graph of the knowledge graph {path}"):
            prep.item_graph = knowledge_item_graph(prep.data, path)
        log.info("--kg %s: %d item links", path, prep.item_graph.nnz)
    return prep.item_graph


def build_model(name: str, cfg: RunConfig, **extra: Any) -> Recommender:
    """A model by registry name with ``cfg.params[name]`` (+ ``extra``) as arguments."""
    models = registered_models()
    if name not in models:
        raise ConfigError(f"unknown model {name!r}; available: {sorted(models)}")
    klass = models[name]
    params = {**cfg.params.get(name, {}), **extra}
    accepted = inspect.signature(klass.__init__).parameters
    if "seed" in accepted:
        params.setdefault("seed", cfg.seed)
    if "text_model" in accepted and cfg.text_model:
        params.setdefault("text_model", cfg.text_model)
    bad = sorted(set(params) - set(accepted))
    if bad:
        raise ConfigError(
            f"model {name!r} has no parameter(s) {bad}; it takes {sorted(accepted)[1:]}"
        )
    return klass(**params)


def fit_model(
    model: Recommender, prep: Prepared, cfg: RunConfig, **fit_kw: Any
) -> tuple[Recommender, float]:
    """Fit on train with validation, then (``cfg.refit``) refit on train + valid.

    ``fit_kw`` (e.g. ``item_graph=...`` for LMGCN) goes to both fits. Returns the final model
    and the total fit seconds (both fits).
    """
    t0 = time.perf_counter()
    sig = inspect.signature(model.fit).parameters
    extra = dict(fit_kw)
    cold_split = len(prep.split.cold_items) > 0  # cold items are placed from their text
    if "item_emb" in sig and (getattr(model, "needs_text", True) or cold_split):
        extra["item_emb"] = encode_items(prep, cfg)
    if cfg.kg and "item_graph" not in extra:
        if "item_graph" in sig:
            extra["item_graph"] = kg_item_graph(prep, cfg)
        else:
            note(f"--kg: {model.name} takes no item graph and is fitted without it")
    split = prep.split
    t_fit = time.perf_counter()
    with working(f"fitting {model.name}"):
        model.fit(split.train, valid=split.valid, **extra)
    if cfg.refit and split.valid is not None and len(split.valid):
        first = time.perf_counter() - t_fit  # the refit sees ~valid_ratio more data: as long
        with working(f"refitting {model.name} on train + valid", expect=first):
            model = type(model)(**model.refit_params()).fit(split.full_train, **extra)
    if "item_emb" in extra:  # encoded here: queries and new items must be encoded alike
        model.text_max_length_ = cfg.text_max_length
    return model, time.perf_counter() - t0


def evaluate_all(cfg: RunConfig, prep: Prepared, out: Path | None = None) -> list[dict]:
    """Fit and evaluate every model of ``cfg.models``; one result row per model."""
    from lgrec.eval import evaluate_model

    rows = []
    cold = prep.split.kind == "cold" or len(prep.split.cold_items) > 0
    for name in progress(cfg.models, desc="models", unit="models"):
        model = build_model(name, cfg)
        model, fit_s = fit_model(model, prep, cfg)
        with working(f"evaluating {name}"):
            res = evaluate_model(model, prep.split, ks=tuple(cfg.ks), cold=cold, seed=cfg.seed)
        row = {"model": name, **res, "fit_s": fit_s}
        log.info("%s: %s", name, row)
        rows.append(row)
        if out is not None:
            save_bundle(model, prep.data, out / "models" / name)
    return rows


def save_bundle(model: Recommender, data: Dataset, path: str | Path) -> Path:
    """Save a model plus the item table the server and ``recommend`` need (titles, text)."""
    path = Path(path)
    model.save(path)
    cols = [c for c in ("item_id", "title", "categories", "description") if c in data.items.columns]
    items = data.items[cols].copy()
    if "categories" in items:
        items["categories"] = items["categories"].map(
            lambda v: list(v) if isinstance(v, list | tuple | np.ndarray) else []
        )  # NaN where a table without categories met one with them (retrain)
    items.to_parquet(path / "items.parquet", index=False)
    ucols = [c for c in ("user_id", "text") if c in data.users.columns]
    data.users[ucols].to_parquet(path / "users.parquet", index=False)
    edges = data.meta.get("social_edges")
    if edges is not None and len(edges):  # friendships, for GET /friends (lgrec.serve.extras)
        uid = data.users["user_id"].astype(str).to_numpy()
        e = np.asarray(edges, dtype=np.int64)
        social = pd.DataFrame({"user_id": uid[e[:, 0]], "friend_id": uid[e[:, 1]]})
        social.to_parquet(path / "social.parquet", index=False)
    info = {"dataset": data.name, "n_users": data.n_users, "n_items": data.n_items}
    if data.meta.get("pseudonym"):
        info["pseudonym"] = data.meta["pseudonym"]
    atomic_write_text(path / "dataset.json", json.dumps(info))
    return path
