"""The server's state: one loaded model bundle plus what changed online since it was trained.

:class:`ServeState` loads a bundle written by :func:`lgrec.pipeline.save_bundle` once (model,
``items.parquet``, ``users.parquet``, ``dataset.json``) and keeps the model's vectors as
mutable copies: user vectors ``U``, item vectors ``V`` (+ item bias ``b`` for MF models) and
unit item text embeddings ``T``. Users and items added at run time are appended rows; feedback
moves user rows (:mod:`lgrec.serve.online` has the math) and marks items seen.

The class is assembled from parts with one job each:

* :mod:`lgrec.serve.catalog` — id ↔ row maps; new users and items (:class:`CatalogMixin`);
* :mod:`lgrec.serve.sync` — durable feedback writes and the replay of the feedback store
  (SQLite or PostgreSQL) in event-id order (:class:`SyncMixin`): the store is the source of
  truth, so processes sharing it converge and a restart loses nothing;
* :mod:`lgrec.serve.foldcache` — an event updates its user's cached score rows in O(items)
  (:class:`FoldInMixin`);
* :mod:`lgrec.serve.scoring` — scores, top-k, similar items, histories (:class:`ScoringMixin`),
  with candidates from a FAISS index when asked (:mod:`lgrec.serve.index`);
* :mod:`lgrec.privacy.serving` — erased users folded out (:class:`ErasureMixin`);
* this module — loading the bundle and the text encoder, sizes, encoding free text.

One ``RLock`` guards every mutation and every read of mutable rows, so the state may be used
from FastAPI's thread pool.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from lgrec.errors import AlreadyExistsError, ConfigError, ModelFileError
from lgrec.models.base import Recommender
from lgrec.privacy.serving import ErasureMixin
from lgrec.progress import working
from lgrec.serve import online
from lgrec.serve.catalog import CatalogMixin
from lgrec.serve.foldcache import FoldInMixin, ItemOperators
from lgrec.serve.groupcommit import FeedbackWriter
from lgrec.serve.index import INDEX_KINDS, FaissIndex, IndexSettings, dot_product_form
from lgrec.serve.scorecache import ScoreCache
from lgrec.serve.scoring import ScoringMixin
from lgrec.serve.sync import SyncMixin
from lgrec.store.base import FeedbackStoreProtocol

__all__ = ["AlreadyExistsError", "ServeState"]
log = logging.getLogger(__name__)
Tensor = torch.Tensor


class ServeState(CatalogMixin, SyncMixin, FoldInMixin, ScoringMixin, ErasureMixin):
    """A model bundle ready to serve, with online users, items and feedback (module docstring).

    Args:
        model_dir: bundle directory (``lgrec train --out`` / :func:`save_bundle`).
        store: the feedback store (events, runtime users and items): SQLite or PostgreSQL.
        text: ``"auto"`` uses the model's text embeddings, or encodes the item texts at start
            when the model kept none; ``"off"`` disables text features (query, text cold start).
        online_lr: η of the feedback fold-in.
        neighbours, tau: k and τ of the text-neighbour mapping of new items/users.
        score_cache_mb: memory (MiB) for the trained users' precomputed score rows
            (:mod:`lgrec.serve.scorecache`) and, in what is left, the item × item matrices
            that fold events into them (:mod:`lgrec.serve.foldcache`); 0 turns both off.
        sync_interval: seconds between two looks at the store for other servers' writes
            (0: every request; :mod:`lgrec.serve.sync`).
        index: ``"exact"`` scores every item; ``"faiss"`` gets ``/recommend`` candidates from
            a FAISS index (:mod:`lgrec.serve.index`, settings ``index_settings``).
    """

    def __init__(
        self,
        model_dir: str | Path,
        store: FeedbackStoreProtocol,
        *,
        text: str = "auto",
        online_lr: float = 0.5,
        neighbours: int = 10,
        tau: float = 0.1,
        score_cache_mb: float = 512,
        sync_interval: float = 0.0,
        index: str = "exact",
        index_settings: IndexSettings | None = None,
    ) -> None:
        if text not in ("auto", "off"):
            raise ConfigError(f"ServeState(text={text!r}): expected 'auto' or 'off'")
        if not (np.isfinite(online_lr) and online_lr >= 0):
            raise ConfigError(f"ServeState(online_lr={online_lr!r}): expected a number ≥ 0")
        if index not in INDEX_KINDS:
            raise ConfigError(f"ServeState(index={index!r}): expected one of {list(INDEX_KINDS)}")
        if not (np.isfinite(sync_interval) and sync_interval >= 0):
            raise ConfigError(f"ServeState(sync_interval={sync_interval!r}): expected seconds ≥ 0")
        self.model_dir = Path(model_dir)
        self.store = store
        self._writes = FeedbackWriter(  # feedback writes: one thread (lgrec.serve.groupcommit)
            store, check=self._check_feedback, apply=lambda: self.sync(fresh=True)
        )
        self.online_lr, self.neighbours, self.tau = online_lr, neighbours, tau
        self.lock = threading.RLock()
        self._sync_lock = threading.Lock()
        self.sync_interval, self._last_look = float(sync_interval), -np.inf
        self._catalog_mark = (-1, -1)
        with working(f"serve: loading the model in {self.model_dir}"):
            self.model = Recommender.load(self.model_dir)
        U, V, b = online.model_factors(self.model)
        self.U = U.detach().float().clone()
        self.V = V.detach().float().clone()
        self.b = None if b is None else b.detach().float().clone()
        self.n_base_users, self.n_base_items = self.U.shape[0], self.V.shape[0]
        self.user_scale = float(self.U.norm(dim=1).median()) if len(self.U) else 1.0
        self.user_ids: list[str] = list(self.model.user_ids_)
        self.item_ids: list[str] = list(self.model.item_ids_)
        self._uidx = {u: k for k, u in enumerate(self.user_ids)}
        self._iidx = {i: k for k, i in enumerate(self.item_ids)}
        self.items, self.user_text = online.read_bundle_tables(
            self.model_dir, self.item_ids, self.n_base_users
        )
        self.titles = [t or i for t, i in zip(self.items["title"], self.item_ids)]
        self.categories: list[list[str]] = self.items["categories"].tolist()
        self.seen_base = self.model.seen_.tocsr()
        self.filter = getattr(self.model, "filter_", None)
        self.filter_weight = float(getattr(self.model, "filter_weight_", 0.0) or 0.0)
        if self.filter_weight <= 0:
            self.filter = None
        # runtime items × trained items: each row a runtime item's text neighbours and weights
        self._gf_mix = sp.csr_matrix((0, self.n_base_items), dtype=np.float32)
        self.score_cache = ScoreCache.build(
            self.U,
            self.V,
            None if self.filter is None else self.filter._score_block,
            score_cache_mb,
        )
        cache_mb = 0 if self.score_cache is None else self.score_cache.nbytes / 2**20
        self.item_ops = ItemOperators.build(  # events update cached rows in O(items)
            self.V[: self.n_base_items], self.filter, score_cache_mb - cache_mb
        )
        self.online_seen: dict[int, dict[int, None]] = {}
        self.online_events: dict[int, int] = {}
        self.user_query: dict[int, Tensor] = {}  # runtime users' encoded texts
        info = self._read_info()
        self.dataset = info.get("dataset", "")
        self.last_event = int(info.get("feedback_until", 0))
        self.rating_scale = tuple(getattr(self.model, "rating_scale_", None) or (1.0, 5.0))
        self.text_fields = tuple(getattr(self.model, "text_fields", online.DEFAULT_FIELDS))
        self.encoder = None
        self.T: Tensor | None = None
        if text == "auto":
            with working("serve: loading the text model and item texts"):
                self._setup_text()
        self._check_parity()
        self.index: FaissIndex | None = None
        if index == "faiss" and dot_product_form(self.filter_weight, self.model.name):
            with working("serve: building the FAISS index"):
                self.index = FaissIndex(
                    self.V.numpy(), None if self.b is None else self.b.numpy(),
                    index_settings or IndexSettings(), threads=torch.get_num_threads(),
                )  # fmt: skip
        with working("serve: applying the stored feedback"):
            self.replay_unlearned(info.get("feedback_learned", "all"))
            self.sync(force_catalog=True)
        log.info(
            "serving %s from %s: %d users, %d items, text=%s, events applied up to %d",
            self.model.name,
            self.model_dir,
            self.n_users,
            self.n_items,
            self.T is not None,
            self.last_event,
        )

    # ---- loading -------------------------------------------------------------------------
    def _read_info(self) -> dict[str, Any]:
        f = self.model_dir / "dataset.json"
        if not f.is_file():
            return {}
        try:
            return json.loads(f.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ModelFileError(f"{f}: not valid JSON ({e})") from e

    def _setup_text(self) -> None:
        emb = getattr(self.model, "text_emb_", None)
        self.encoder = self.model.text_encoder()
        if emb is None:
            texts = online.item_texts(self.items, self.text_fields)
            if not any(t.strip() for t in texts):
                log.warning("no item text in %s: text features disabled", self.model_dir)
                self.encoder = None
                return
            log.info("encoding %d item texts (cached on disk)", len(texts))
            emb = self.encoder.encode(texts)
        self.T = online.unit_rows(torch.as_tensor(np.asarray(emb)))
        dim = self.encoder.encode(["probe"], use_cache=False).shape[1]
        if dim != self.T.shape[1]:
            log.warning(
                "the text encoder makes %d-d vectors but the model's item texts are %d-d: "
                "queries and text cold start are disabled",
                dim,
                self.T.shape[1],
            )
            self.encoder = None

    # ---- sizes and text ----------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def text_enabled(self) -> bool:
        """Whether free text can be encoded (queries, text cold start, new items)."""
        return self.encoder is not None and self.T is not None

    def encode(self, text: str) -> Tensor:
        """Unit text embedding of ``text`` (not cached on disk)."""
        if not self.text_enabled:
            raise ConfigError(
                "this server has no text encoder/item text embeddings (model without text, "
                "or started with text off): free text cannot be used"
            )
        return torch.from_numpy(self.encoder.encode([text], use_cache=False)[0]).float()
