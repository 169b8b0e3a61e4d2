"""The one public model interface, shared by baselines and the fused model.

Every model subclasses :class:`Recommender` and implements ``fit`` and ``score``; top-K
recommendation (with seen-item exclusion, blocked over users so memory stays bounded), the
free-text ``query`` bias, and saving/loading (safetensors + JSON, never pickle) come from here.

Conventions (scikit-learn style): hyper-parameters are constructor arguments stored unchanged;
fitted state ends in ``_``; ``fit`` returns ``self``.
"""

from __future__ import annotations

import inspect
import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from safetensors.torch import load_file, save_file

from lgrec.data.dataset import Dataset
from lgrec.errors import ConfigError, ModelFileError, NotFittedError, UnknownIdError
from lgrec.ranking import topk_stable

Tensor = torch.Tensor
_REGISTRY: dict[str, type[Recommender]] = {}
FORMAT_VERSION = 1


def register(cls: type[Recommender]) -> type[Recommender]:
    """Class decorator: make a model loadable by its ``name`` (no arbitrary imports on load)."""
    _REGISTRY[cls.name] = cls
    return cls


def registered_models() -> dict[str, type[Recommender]]:
    """Name → class of every registered model (importing :mod:`lgrec.models` fills it)."""
    import lgrec.models  # noqa: F401  (registers the built-in models)

    return dict(_REGISTRY)


def as_index_tensor(x: Any, upper: int, what: str) -> Tensor:
    """Validate ids (int, sequence, array or tensor) and return a 1-D int64 tensor."""
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x)
    if t.ndim == 0:
        t = t.reshape(1)
    if t.dtype.is_floating_point or t.dtype == torch.bool:
        raise ConfigError(f"{what} ids must be integers, got dtype {t.dtype}")
    t = t.long()
    if len(t) and (int(t.min()) < 0 or int(t.max()) >= upper):
        bad = t[(t < 0) | (t >= upper)][:5].tolist()
        raise UnknownIdError(f"unknown {what} id(s) {bad}: valid ids are 0..{upper - 1}")
    return t


class Recommender(ABC):
    """Base class of every lgrec model (see ``docs/architecture.md``)."""

    name: ClassVar[str] = "base"
    #: whether ``predict_rating`` is meaningful for this model
    has_rating_head: ClassVar[bool] = False

    # ---- hyper-parameters ---------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """Constructor arguments as given (JSON-able), scikit-learn style."""
        sig = inspect.signature(type(self).__init__)
        return {p: getattr(self, p) for p in sig.parameters if p != "self"}

    def refit_params(self) -> dict[str, Any]:
        """Hyper-parameters to refit on train + valid once validation has chosen them.

        By default the chosen number of epochs (``best_epoch_``) replaces ``epochs``;
        models with other validated choices override this.
        """
        params = self.get_params()
        best = getattr(self, "best_epoch_", None)
        if "epochs" in params and isinstance(best, int) and best > 0:
            params["epochs"] = best
        return params

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # ---- the interface ------------------------------------------------------------------
    @abstractmethod
    def fit(self, data: Dataset, *, valid: Dataset | None = None) -> Recommender:
        """Learn from ``data`` (training interactions); ``valid`` may drive early stopping."""

    @abstractmethod
    def _score_block(self, users: Tensor) -> Tensor:
        """Scores of ``users`` (already validated) against all items: (len(users), n_items)."""

    def score(self, users: Any, items: Any | None = None) -> Tensor:
        """Preference scores, (U, n_items) or (U, len(items)); higher means more relevant."""
        self._check_fitted()
        u = as_index_tensor(users, self.n_users_, "user")
        s = self._score_block(u)
        if items is not None:
            s = s[:, as_index_tensor(items, self.n_items_, "item")]
        return s

    def score_pairs(self, users: Any, items: Any, block_size: int = 1024) -> Tensor:
        """ŝ_ui for aligned (user, item) pairs, 1-D.

        Each distinct user's score row is computed once (users in blocks of ``block_size``),
        so n pairs over m users cost O(m · n_items) scoring, not O(n · n_items).
        """
        self._check_fitted()
        u = as_index_tensor(users, self.n_users_, "user").numpy()
        i = as_index_tensor(items, self.n_items_, "item").numpy()
        if len(u) != len(i):
            raise ConfigError(f"score_pairs: {len(u)} users but {len(i)} items")
        uniq, inv = np.unique(u, return_inverse=True)
        order = np.argsort(inv, kind="stable")
        bounds = np.searchsorted(inv[order], np.arange(0, len(uniq) + block_size, block_size))
        out = torch.empty(len(u))
        with torch.no_grad():
            for b, start in enumerate(range(0, len(uniq), block_size)):
                rows = order[bounds[b] : bounds[b + 1]]
                s = self._score_block(torch.from_numpy(uniq[start : start + block_size]))
                out[rows] = s[inv[rows] - start, i[rows]].float()
        return out

    def recommend(
        self,
        users: Any,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        query: str | None = None,
        query_weight: float = 1.0,
        candidates: Any | None = None,
        block_size: int = 1024,
    ) -> tuple[Tensor, Tensor]:
        """Top-``k`` items per user: (item ids, scores), each (U, k), best first.

        Seen training items are excluded when ``exclude_seen``. ``query`` adds
        ``query_weight · z(cos(q, t_i))`` to the standardised scores, where ``t_i`` is item i's
        text embedding and ``q`` the query's, so free text steers the list (needs a model that
        kept text embeddings). ``candidates`` restricts ranking to those items. Equal scores
        rank by item index, lower first (:func:`lgrec.ranking.topk_stable`). Users are
        processed in blocks of ``block_size`` so memory is O(block · items).
        """
        self._check_fitted()
        if not isinstance(k, int | np.integer) or k <= 0:
            raise ConfigError(f"k must be a positive integer, got {k!r}")
        u = as_index_tensor(users, self.n_users_, "user")
        cand = None
        if candidates is not None:  # sorted: ties among candidates rank by item index
            cand = torch.unique(as_index_tensor(candidates, self.n_items_, "item"))
        n_cand = self.n_items_ if cand is None else len(cand)
        k = min(int(k), n_cand)
        qvec = self._query_scores(query) if query else None
        out_i, out_s = [], []
        for start in range(0, len(u), block_size):
            ub = u[start : start + block_size]
            s = self._score_block(ub).float()
            if qvec is not None:
                s = _standardise(s) + query_weight * qvec
            if exclude_seen:
                s = self._mask_seen(s, ub)
            if cand is not None:
                s = s[:, cand]
            sc, ix = topk_stable(s, k)
            out_i.append(ix if cand is None else cand[ix])
            out_s.append(sc)
        return torch.cat(out_i), torch.cat(out_s)

    def predict_rating(self, users: Any, items: Any) -> Tensor:
        """Predicted rating of each (user, item) pair; only models with a rating head."""
        raise NotImplementedError(f"{type(self).__name__} has no rating head")

    # ---- helpers for subclasses ---------------------------------------------------------
    def _remember(self, data: Dataset) -> sp.csr_matrix:
        """Store the id space and the seen-item matrix; return the binary train matrix."""
        x = data.matrix("binary")
        self.n_users_, self.n_items_ = data.n_users, data.n_items
        self.seen_ = x
        self.user_ids_ = data.users["user_id"].astype(str).tolist()
        self.item_ids_ = data.items["item_id"].astype(str).tolist()
        return x

    def _mask_seen(self, s: Tensor, users: Tensor) -> Tensor:
        sub = self.seen_[users.numpy()].tocoo()
        if sub.nnz:
            s[torch.from_numpy(sub.row).long(), torch.from_numpy(sub.col).long()] = -torch.inf
        return s

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_items_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit() or load() first")

    def _query_scores(self, query: str) -> Tensor:
        emb = getattr(self, "text_emb_", None)
        if emb is None:
            raise ConfigError(
                f"{type(self).__name__} kept no item text embeddings, so it cannot use a query"
            )
        q = torch.as_tensor(self.text_encoder().encode([query], use_cache=False)[0])
        e = torch.nn.functional.normalize(torch.as_tensor(emb).float(), dim=1)
        return _standardise((e @ torch.nn.functional.normalize(q.float(), dim=0))[None, :])

    def text_encoder(self) -> Any:
        """The :class:`~lgrec.text.encoder.TextEncoder` (model and truncation) that made this
        model's item text embeddings: queries and new items must be encoded the same way."""
        from lgrec.text.encoder import DEFAULT_MAX_LENGTH, TextEncoder

        ml = getattr(self, "text_max_length_", DEFAULT_MAX_LENGTH)  # None: the model's limit
        return TextEncoder(getattr(self, "text_model_", None), max_length=ml)

    # ---- persistence --------------------------------------------------------------------
    def _state(self) -> dict[str, Tensor]:
        """Fitted tensors to save; subclasses extend (call super)."""
        seen = self.seen_
        st = {
            "seen.indptr": torch.from_numpy(seen.indptr.astype(np.int64)),
            "seen.indices": torch.from_numpy(seen.indices.astype(np.int64)),
        }
        emb = getattr(self, "text_emb_", None)
        if emb is not None:
            st["text_emb"] = torch.as_tensor(emb).float().contiguous()
        return st

    def _load_state(self, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
        """Restore fitted state; subclasses extend (call super)."""
        self.n_users_, self.n_items_ = meta["n_users"], meta["n_items"]
        self.user_ids_, self.item_ids_ = meta["user_ids"], meta["item_ids"]
        indptr, indices = tensors["seen.indptr"].numpy(), tensors["seen.indices"].numpy()
        self.seen_ = sp.csr_matrix(
            (np.ones(len(indices), dtype=np.float32), indices, indptr),
            shape=(self.n_users_, self.n_items_),
        )
        if "text_emb" in tensors:
            self.text_emb_ = tensors["text_emb"]
            self.text_model_ = meta.get("text_model")
            # bundles from before the setting was recorded were encoded at 256 tokens
            self.text_max_length_ = meta.get("text_max_length", 256)

    def _meta(self) -> dict[str, Any]:
        """JSON-able fitted metadata; subclasses extend (call super)."""
        return {
            "n_users": self.n_users_,
            "n_items": self.n_items_,
            "user_ids": self.user_ids_,
            "item_ids": self.item_ids_,
            "text_model": getattr(self, "text_model_", None),
            "text_max_length": self.text_encoder().max_length,
        }

    def save(self, path: str | Path) -> Path:
        """Write ``config.json`` (class, hyper-parameters, ids) and ``model.safetensors``."""
        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self._state().items()}
        save_file(tensors, str(path / "model.safetensors"))
        cfg = {
            "format": FORMAT_VERSION,
            "model": self.name,
            "params": self.get_params(),
            "meta": self._meta(),
        }
        from lgrec.utils import atomic_write_text

        atomic_write_text(path / "config.json", json.dumps(cfg))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Recommender:
        """Load a model saved by :meth:`save`; on the base class, dispatch on the saved name."""
        path = Path(path)
        cfg_file, w_file = path / "config.json", path / "model.safetensors"
        if not cfg_file.is_file() or not w_file.is_file():
            raise ModelFileError(
                f"{path} is not an lgrec model directory: "
                "expected config.json and model.safetensors"
            )
        try:
            cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
            name = cfg["model"]
        except (json.JSONDecodeError, KeyError) as e:
            raise ModelFileError(f"{cfg_file}: not a valid lgrec model config ({e})") from e
        models = registered_models()
        if name not in models:
            raise ModelFileError(f"{cfg_file}: unknown model {name!r}; known: {sorted(models)}")
        klass = models[name]
        if cls is not Recommender and not issubclass(klass, cls):
            raise ModelFileError(f"{path} holds a {name!r} model, not {cls.name!r}")
        model = klass(**cfg["params"])
        model._load_state(load_file(str(w_file)), cfg["meta"])
        return model


def _standardise(s: Tensor) -> Tensor:
    """Row-wise z-score, so score scales of different models/queries are comparable."""
    finite = torch.isfinite(s)
    z = torch.where(finite, s, torch.zeros_like(s))
    n = finite.sum(1, keepdim=True).clamp(min=1)
    mu = z.sum(1, keepdim=True) / n
    var = (torch.where(finite, (s - mu) ** 2, torch.zeros_like(s))).sum(1, keepdim=True) / n
    return (s - mu) / var.sqrt().clamp(min=1e-8)
