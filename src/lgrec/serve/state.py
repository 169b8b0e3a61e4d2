"""The server's state: one loaded model bundle plus what changed online since it was trained.

:class:`ServeState` loads a bundle written by :func:`lgrec.pipeline.save_bundle` once (model,
``items.parquet``, ``users.parquet``, ``dataset.json``) and keeps the model's vectors as
mutable copies: user vectors ``U``, item vectors ``V`` (+ item bias ``b`` for MF models) and
unit item text embeddings ``T``. Users and items added at run time are appended rows; feedback
moves user rows (:mod:`lgrec.serve.online` has the math) and marks items seen.

The :class:`~lgrec.store.feedback.FeedbackStore` is the source of truth: a write endpoint stores
durably first, then calls :meth:`ServeState.sync`, which applies every stored event with an id
above the last applied one, in id order (and first loads users/items it has not seen). Several
server processes sharing one store therefore converge to the same state, and a restarted
server replays the store and loses nothing that was acknowledged. One ``RLock`` guards every
mutation and every read of mutable rows, so the state may be used from FastAPI's thread pool.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from lgrec.errors import ConfigError, LgrecError, ModelFileError, UnknownIdError
from lgrec.models.base import Recommender
from lgrec.serve import online
from lgrec.store.feedback import FeedbackStore

log = logging.getLogger(__name__)
Tensor = torch.Tensor


class AlreadyExistsError(LgrecError):
    """A user or item with this id already exists (HTTP 409)."""


class ServeState:
    """A model bundle ready to serve, with online users, items and feedback (module docstring).

    Args:
        model_dir: bundle directory (``lgrec train --out`` / :func:`save_bundle`).
        store: the feedback store (events, runtime users and items).
        text: ``"auto"`` uses the model's text embeddings, or encodes the item texts at start
            when the model kept none; ``"off"`` disables text features (query, text cold start).
        online_lr: η of the feedback fold-in.
        neighbours, tau: k and τ of the text-neighbour mapping of new items/users.
    """

    def __init__(
        self,
        model_dir: str | Path,
        store: FeedbackStore,
        *,
        text: str = "auto",
        online_lr: float = 0.5,
        neighbours: int = 10,
        tau: float = 0.1,
    ) -> None:
        if text not in ("auto", "off"):
            raise ConfigError(f"ServeState(text={text!r}): expected 'auto' or 'off'")
        if not (np.isfinite(online_lr) and online_lr >= 0):
            raise ConfigError(f"ServeState(online_lr={online_lr!r}): expected a number ≥ 0")
        self.model_dir = Path(model_dir)
        self.store = store
        self.online_lr, self.neighbours, self.tau = online_lr, neighbours, tau
        self.lock = threading.RLock()
        self._sync_lock = threading.Lock()
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._catalog_mark = (-1, -1)
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
        self._gf_mix: list[tuple[Tensor, Tensor]] = []  # per runtime item: trained nbrs, weights
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
            self._setup_text()
        self._check_parity()
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
        from lgrec.text.encoder import TextEncoder

        emb = getattr(self.model, "text_emb_", None)
        self.encoder = TextEncoder(getattr(self.model, "text_model_", None))
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

    def _check_parity(self) -> None:
        """Warn when the online scores of a trained user differ from ``model.score``."""
        if not self.n_base_users:
            return
        want = self.model.score([0])[0].float()
        got = self.scores(0)
        if not torch.allclose(got, want, rtol=1e-3, atol=1e-3 * float(want.abs().max())):
            log.warning(
                "online scoring of %s differs from model.score (max |Δ| %.3g): the server's "
                "rankings may differ slightly from `lgrec recommend`",
                self.model.name, float((got - want).abs().max()),
            )  # fmt: skip

    # ---- ids -------------------------------------------------------------------------------
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

    def user_index(self, user_id: str) -> int:
        """Row of ``user_id``; re-reads the store once, then :class:`UnknownIdError`."""
        k = self._uidx.get(user_id)
        if k is None:
            self.sync(force_catalog=True)
            k = self._uidx.get(user_id)
        if k is None:
            raise UnknownIdError(f"unknown user {user_id!r}")
        return k

    def item_index(self, item_id: str) -> int:
        """Row of ``item_id``; re-reads the store once, then :class:`UnknownIdError`."""
        k = self._iidx.get(item_id)
        if k is None:
            self.sync(force_catalog=True)
            k = self._iidx.get(item_id)
        if k is None:
            raise UnknownIdError(f"unknown item {item_id!r}")
        return k

    def has_user(self, user_id: str) -> bool:
        return user_id in self._uidx

    def has_item(self, item_id: str) -> bool:
        return item_id in self._iidx

    def encode(self, text: str) -> Tensor:
        """Unit text embedding of ``text`` (not cached on disk)."""
        if not self.text_enabled:
            raise ConfigError(
                "this server has no text encoder/item text embeddings (model without text, "
                "or started with text off): free text cannot be used"
            )
        return torch.from_numpy(self.encoder.encode([text], use_cache=False)[0]).float()

    # ---- reads -------------------------------------------------------------------------------
    def history(self, u: int) -> np.ndarray:
        """Item rows the user has interacted with: training items, then online ones in order."""
        seen = self.seen_base
        base = seen.indices[seen.indptr[u] : seen.indptr[u + 1]] if u < self.n_base_users else []
        with self.lock:
            extra = list(self.online_seen.get(u, ()))
        return np.concatenate([np.asarray(base, dtype=np.int64), np.asarray(extra, dtype=np.int64)])

    def snapshot(self) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """``(V, b, T)`` of this moment (replaced, never mutated in place, on growth)."""
        with self.lock:
            return self.V, self.b, self.T

    def user_vector(self, u: int) -> Tensor:
        with self.lock:
            return self.U[u].clone()

    def scores(self, u: int, query: str | None = None, query_weight: float = 1.0) -> Tensor:
        """Scores of every item for user ``u``, as the model scores: ``uᵀV + b``, or with its
        graph filter ``z(uᵀV) + λ z(GF(x_u))``. A user created from text adds
        ``w_u · z(cos(q_u, T))`` with ``w_u = 1 / (1 + |H_u| / 5)`` (their text counts while their
        history ``H_u`` is short); a query adds ``w · z(cos(q, T))`` (like
        :meth:`Recommender.recommend`)."""
        q = self.encode(query) if query else None
        V, b, T = self.snapshot()
        s = V @ self.user_vector(u)
        if b is not None:
            s = s + b
        if self.filter is not None:
            s = online.zscore(s) + self.filter_weight * online.zscore(self._filter_scores(u))
        q_u = self.user_query.get(u)
        if q_u is not None:  # a runtime user's own text, fading as their history grows
            w = 1.0 / (1.0 + len(self.history(u)) / online.TEXT_HALF_HISTORY)
            s = online.zscore(s) + w * online.zscore(T @ q_u)
        if q is not None:
            s = online.zscore(s) + query_weight * online.zscore(T @ q)
        return s

    def _filter_scores(self, u: int) -> Tensor:
        """Graph-filter scores of ``u``'s current history; runtime items mix their neighbours."""
        hist = self.history(u)
        base = hist[hist < self.n_base_items]
        cols, vals = [base], [np.ones(len(base), dtype=np.float32)]
        with self.lock:
            mix = list(self._gf_mix)
        for i in hist[hist >= self.n_base_items].tolist():
            idx, w = mix[i - self.n_base_items]
            cols.append(idx.numpy())
            vals.append(w.numpy())
        c = np.concatenate(cols)
        row = sp.csr_matrix(
            (np.concatenate(vals), (np.zeros(len(c), dtype=np.int64), c)),
            shape=(1, self.n_base_items),
        )
        row.data = np.minimum(row.data, 1.0)  # duplicates sum; keep the row binary-like
        gf = online.filter_row_scores(self.filter, row)
        if mix:
            gf = torch.cat([gf, torch.stack([(gf[idx] * w).sum() for idx, w in mix])])
        return gf

    def recommend(
        self,
        u: int,
        k: int,
        *,
        exclude_seen: bool = True,
        query: str | None = None,
        query_weight: float = 1.0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` item rows and scores for user row ``u``."""
        s = self.scores(u, query, query_weight)
        if exclude_seen:
            s[torch.from_numpy(self.history(u))] = -torch.inf
        k = min(k, int(torch.isfinite(s).sum()))
        top = torch.topk(s, k)
        return top.indices.numpy(), top.values.numpy()

    def similar(self, i: int, k: int, blend: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
        """Items most associated with item ``i``: ``β cos(e_i, e_j) + (1−β) cos(t_i, t_j)``."""
        V, _, T = self.snapshot()
        sim = online.blend_cosines(online.unit_rows(V), T, i, blend)
        sim[i] = -torch.inf
        top = torch.topk(sim, min(k, len(sim) - 1))
        return top.indices.numpy(), top.values.numpy()

    # ---- writes: store durably, then sync ----------------------------------------------------
    def add_feedback(
        self,
        user_id: str,
        item_id: str,
        event: str,
        value: float | None = None,
        ts: float | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[int, bool]:
        """Store one event (durable when this returns), fold it in; ``(event id, created)``."""
        self.user_index(user_id)
        self.item_index(item_id)
        eid, created = self.store.add_event(user_id, item_id, event, value, ts, idempotency_key)
        self.sync()
        return eid, created

    def add_user(self, user_id: str, text: str | None, liked: Sequence[str]) -> int:
        """Create a user from liked items and/or text; usable as soon as this returns."""
        if self.has_user(user_id) or self.store.get_user(user_id) is not None:
            raise AlreadyExistsError(f"user {user_id!r} already exists")
        for i in liked:
            self.item_index(i)
        if text and not self.text_enabled:
            raise ConfigError("this server cannot encode text: create the user from liked_items")
        if not liked and not text:
            raise ConfigError("a new user needs 'text' or at least one of 'liked_items'")
        attrs = {"liked_items": list(dict.fromkeys(liked)), "source": "lgrec-serve"}
        self.store.add_user(user_id, text=text, attributes=attrs)
        self.sync(force_catalog=True)
        return self.user_index(user_id)

    def add_item(
        self, item_id: str, title: str, description: str | None, categories: Sequence[str]
    ) -> int:
        """Create an item placed by its text neighbours; recommendable when this returns."""
        if self.has_item(item_id) or self.store.get_item(item_id) is not None:
            raise AlreadyExistsError(f"item {item_id!r} already exists")
        if not self.text_enabled:
            raise ConfigError("this server cannot encode text, so it cannot place new items")
        self.store.add_item(item_id, title=title, description=description, categories=categories)
        self.sync(force_catalog=True)
        return self.item_index(item_id)

    # ---- sync with the store -------------------------------------------------------------------
    def sync(self, force_catalog: bool = False) -> int:
        """Apply what the store holds and this process has not applied; return #events applied.

        Users/items tables are re-read when ``force_catalog`` or when their watermarks moved;
        events with id > the last applied one are applied in id order (a loop over *new* events
        only — a few per request, all of them once at start).
        """
        with self._sync_lock:
            ev_max, users_max, items_max = self._watermarks()
            if force_catalog or (users_max, items_max) != self._catalog_mark:
                self._load_catalog()
                self._catalog_mark = (users_max, items_max)
            n, batch = 0, 10_000
            while ev_max > self.last_event:
                ev = self.store.events(since_id=self.last_event, limit=batch)
                if not len(ev):
                    break
                known = ev["user_id"].map(self._uidx.__contains__) & ev["item_id"].map(
                    self._iidx.__contains__
                )
                if not bool(known.all()):
                    self._load_catalog()
                for row in ev.itertuples(index=False):
                    n += self._apply_event(row)
                self.last_event = int(ev["id"].iloc[-1])
            return n

    def _watermarks(self) -> tuple[int, int, int]:
        """``(max event id, max users rowid, max items rowid)`` of the store in one indexed
        read (microseconds), so every request can look for news without building a DataFrame.
        A read-only SQLite connection per thread; rowids only grow (rows are never deleted)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            uri = f"file:{self.store.path.resolve()}?mode=ro"
            conn = sqlite3.connect(uri, uri=True, timeout=30, check_same_thread=False)
            self._local.conn = conn
            with self.lock:
                self._conns.append(conn)
        row = conn.execute(
            "SELECT (SELECT max(id) FROM events), (SELECT max(rowid) FROM users), "
            "(SELECT max(rowid) FROM items)"
        ).fetchone()
        return int(row[0] or 0), int(row[1] or 0), int(row[2] or 0)

    def close(self) -> None:
        """Close the store and this state's read connections."""
        with self.lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()
        self.store.close()

    def _apply_event(self, row: Any) -> int:
        u, i = self._uidx.get(row.user_id), self._iidx.get(row.item_id)
        if u is None or i is None:
            log.warning("event %d names an unknown user/item (%s, %s): skipped", row.id, *row[1:3])
            return 0
        value = None if pd.isna(row.value) else float(row.value)
        alpha = self.online_lr * online.event_weight(row.event, value, self.rating_scale)
        with self.lock:
            self.U[u] = online.fold_in(self.U[u], self.V[i], alpha)
            self.online_seen.setdefault(u, {})[i] = None
            self.online_events[u] = self.online_events.get(u, 0) + 1
        return 1

    def _load_catalog(self) -> None:
        new_items = [r for r in self.store.list_items() if r["item_id"] not in self._iidx]
        if new_items:
            self._append_items(new_items)
        new_users = [r for r in self.store.list_users() if r["user_id"] not in self._uidx]
        for rec in sorted(new_users, key=lambda r: (r["created_at"], r["user_id"])):
            self._append_user(rec)

    def _append_items(self, recs: list[dict[str, Any]]) -> None:
        if not self.text_enabled:
            log.warning("%d stored items ignored: this server cannot encode text", len(recs))
            return
        recs = sorted(recs, key=lambda r: (r["created_at"], r["item_id"]))
        rows = pd.DataFrame(
            {
                "item_id": [r["item_id"] for r in recs],
                "title": [r["title"] or "" for r in recs],
                "description": [r["description"] or "" for r in recs],
                "categories": [list(r["categories"]) for r in recs],
            }
        )
        Q = online.unit_rows(torch.from_numpy(self.encoder.encode(online.item_texts(rows))))
        for k, rec in enumerate(recs):  # one by one: later new items may neighbour earlier ones
            with self.lock:
                vec, bias = online.item_from_text(
                    Q[k], self.T, self.V, self.b, self.neighbours, self.tau
                )
                base_nbrs = online.text_neighbours(
                    Q[k], self.T[: self.n_base_items], self.neighbours, self.tau
                )
                self._gf_mix.append(base_nbrs)
                self.V = torch.cat([self.V, vec[None]])
                self.T = torch.cat([self.T, Q[k][None]])
                if self.b is not None:
                    self.b = torch.cat([self.b, torch.tensor([bias])])
                self._iidx[rec["item_id"]] = len(self.item_ids)
                self.item_ids.append(rec["item_id"])
                self.titles.append(rows["title"][k] or rec["item_id"])
                self.categories.append(rows["categories"][k])

    def _append_user(self, rec: dict[str, Any]) -> None:
        liked = [self._iidx[i] for i in rec["attributes"].get("liked_items", []) if i in self._iidx]
        text = rec.get("text") or None
        q = self.encode(text) if text and self.text_enabled else None
        if not liked and q is None:
            log.warning(
                "stored user %r has neither known liked items nor usable text: skipped",
                rec["user_id"],
            )
            return
        with self.lock:
            vec = online.user_from_signals(
                self.V,
                torch.as_tensor(liked, dtype=torch.long) if liked else None,
                q,
                self.T,
                self.user_scale,
                self.neighbours,
                self.tau,
            )
            u = len(self.user_ids)
            self.U = torch.cat([self.U, vec[None]])
            self._uidx[rec["user_id"]] = u
            self.user_ids.append(rec["user_id"])
            if text:
                self.user_text[u] = text
            if q is not None:
                self.user_query[u] = q
            self.online_seen[u] = dict.fromkeys(liked)
