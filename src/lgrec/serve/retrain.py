"""Retraining a served bundle on its training data plus the stored feedback (``lgrec retrain``).

The refit (same class, :meth:`Recommender.refit_params`) learns from the bundle's training
data rebuilt exactly, plus what the feedback store holds. Nothing is invented:

* **Training data.** The data set named in ``dataset.json`` is rebuilt with
  :func:`lgrec.pipeline.prepare` (no validation split: bundles are refit on train + valid) and
  accepted only if its users, items and user × item matrix equal the model's. Otherwise the
  retrain stops with :class:`~lgrec.errors.DataError` and saves nothing. With
  ``seen_only=True`` (``--seen-only``) a model that never learned from ratings is refit on its
  own saved binary matrix ``seen_`` instead (no ratings, no timestamps); a model with a rating
  head (:attr:`Recommender.has_rating_head`) is refused even then, since its ratings are gone.
* **Feedback on explicit (rated) data.** Only ``rating`` events are learned, with their
  value. A view, click, like or purchase says nothing about a rating, so it does not become
  one: it is kept as online feedback, like events of users created at run time (they stay
  runtime users, rebuilt from their text and liked items by the server).
* **Feedback on implicit data.** Every event is an interaction (rating 1, the data's implicit
  convention), users and items created at run time join the model, and their liked items
  become ``like`` interactions.

The new ``dataset.json`` records ``feedback_until`` (the last event id read) and
``feedback_learned`` (``"all"``, or ``"rating"`` on explicit data). A server on the new bundle
and the same store folds in every event after ``feedback_until`` and the events up to it that
the refit did not learn (:meth:`lgrec.serve.sync.SyncMixin.replay_unlearned`), so no
acknowledged feedback is lost and none is counted twice.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lgrec.data.dataset import Dataset
from lgrec.errors import DataError, LgrecError
from lgrec.progress import working

log = logging.getLogger(__name__)


def retrain(
    model_dir: str | Path,
    store_path: str | Path,  # a SQLite file or a postgresql:// URL
    out: str | Path,
    *,
    data_dir: str | None = None,
    config: str | None = None,
    seen_only: bool = False,
    pseudonymize: bool = False,
    pseudonym_key_file: str | None = None,
) -> Path:
    """Refit the bundle ``model_dir`` on its training data plus the feedback in ``store_path``
    and save the new bundle in ``out`` (module docstring); nothing is written on error.
    Erased users (tombstones of the store, :mod:`lgrec.privacy.tombstones`) leave the training
    data; on a pseudonymised bundle the data set is rebuilt with the same key."""
    from lgrec.models.base import Recommender
    from lgrec.pipeline import save_bundle
    from lgrec.privacy.pseudonym import for_bundle
    from lgrec.privacy.tombstones import drop_erased
    from lgrec.store.base import open_feedback_store
    from lgrec.utils import atomic_write_text

    model_dir, out = Path(model_dir), Path(out)
    pz = for_bundle(model_dir, pseudonymize, pseudonym_key_file)  # refuses a wrong key
    model = Recommender.load(model_dir)
    info_file = model_dir / "dataset.json"
    info = json.loads(info_file.read_text(encoding="utf-8")) if info_file.is_file() else {}
    pseudo = {"pseudonymize": True, "pseudonym_key_file": pseudonym_key_file} if pz else {}
    with open_feedback_store(store_path) as store:
        events = store.events()
        users, items = store.list_users(), store.list_items()
        erased = store.tombstones()
    base = _training_data(model, model_dir, info, data_dir, config, seen_only, erased, pseudo)
    base = drop_erased(base, erased)  # erased users' training interactions (lgrec.privacy)
    data, n_events, learned = with_feedback(base, events, users, items)
    log.info(
        "retraining %s on %s (+%d feedback interactions)", model.name, data.summary(), n_events
    )
    with working(f"retraining {model.name}"):
        new = type(model)(**model.refit_params()).fit(data)
    save_bundle(new, data, out)
    info = json.loads((out / "dataset.json").read_text(encoding="utf-8"))
    info.update(
        feedback_until=int(events["id"].max()) if len(events) else 0,
        feedback_interactions=n_events,
        feedback_learned=learned,
        retrained_from=str(model_dir),
    )
    if pz is not None:  # also when the data came from the model's own matrix (no meta)
        info["pseudonym"] = pz.record()
    atomic_write_text(out / "dataset.json", json.dumps(info))
    return out


def uses_ratings(model: Any) -> bool:
    """Whether ``model`` learned from rating values (a rating head, or a rating scale)."""
    return bool(getattr(model, "has_rating_head", False)) or (
        getattr(model, "rating_scale_", None) is not None
    )


def _training_data(
    model: Any,
    model_dir: Path,
    info: dict,
    data_dir: str | None,
    config: str | None,
    seen_only: bool,
    erased: frozenset[str] = frozenset(),
    pseudo: dict | None = None,
) -> Dataset:
    """The model's training data rebuilt exactly, or (``seen_only``) its binary matrix;
    compared without the ``erased`` users, who leave both."""
    from lgrec.privacy.tombstones import drop_erased, erased_mask

    alive = ~erased_mask(model.user_ids_, erased)
    name = info.get("dataset")
    if not name:
        reason = f"{model_dir / 'dataset.json'} names no data set"
    else:
        try:
            from lgrec.config import load_config
            from lgrec.pipeline import prepare

            cfg = load_config(
                config, dataset=name, data_dir=data_dir, valid_ratio=0.0, **(pseudo or {})
            )
            train = drop_erased(prepare(cfg).split.full_train, erased)
            same_ids = train.items["item_id"].astype(str).tolist() == list(
                model.item_ids_
            ) and train.users["user_id"].astype(str).tolist() == list(
                np.asarray(model.user_ids_, dtype=object)[alive]
            )
            seen = model.seen_.tocsr()[alive]
            if same_ids and (train.matrix("binary") != seen).nnz == 0:
                return train
            reason = (
                f"data set {name!r} rebuilt with these options differs from the model's "
                "training data (other split or cleaning options?)"
            )
        except LgrecError as e:
            reason = f"cannot rebuild data set {name!r} ({e})"
    if not seen_only:
        hint = (
            ""
            if uses_ratings(model)
            else "; or, since this model did not learn from ratings, pass --seen-only to refit "
            "it on its saved binary interaction matrix (no ratings, no timestamps)"
        )
        raise DataError(
            f"retrain: {reason}. Nothing was saved: give the data set's folder (--data-dir) "
            f"and the configuration the model was trained with (--config){hint}"
        )
    if uses_ratings(model):
        raise DataError(
            f"retrain: {reason}, and --seen-only cannot refit {model.name}: it learned from "
            "ratings, which its saved interaction matrix does not hold. Nothing was saved"
        )
    log.warning("retrain: %s; refitting on the model's binary interaction matrix (seen_)", reason)
    return _seen_dataset(model, model_dir, info)


def _seen_dataset(model: Any, model_dir: Path, info: dict) -> Dataset:
    coo = model.seen_.tocoo()
    inter = pd.DataFrame(
        {
            "user": coo.row.astype(np.int32),
            "item": coo.col.astype(np.int32),
            "rating": np.ones(coo.nnz, dtype=np.float32),
            "timestamp": np.zeros(coo.nnz, dtype=np.int64),
            "event": "train",
        }
    )
    f_items, f_users = model_dir / "items.parquet", model_dir / "users.parquet"
    items = pd.read_parquet(f_items) if f_items.is_file() else pd.DataFrame()
    users = pd.read_parquet(f_users) if f_users.is_file() else pd.DataFrame()
    if len(items) != len(model.item_ids_):
        items = pd.DataFrame({"item_id": model.item_ids_})
    if len(users) != len(model.user_ids_):
        users = pd.DataFrame({"user_id": model.user_ids_})
    return Dataset(inter, items, users, name=info.get("dataset", "bundle"))


def with_feedback(
    base: Dataset, events: pd.DataFrame, users: list[dict], items: list[dict]
) -> tuple[Dataset, int, str]:
    """``base`` plus the stored feedback (module docstring): ``(data, #feedback rows added,
    which events were learned: "all" or "rating")``."""
    explicit = base.has_ratings
    item_tab = _append_items(base.items, items)
    ev = events[["user_id", "item_id", "event", "value", "ts"]]
    if explicit:
        ev = ev[ev["event"] == "rating"]
        user_tab, new_users = base.users, []
    else:
        known = set(base.users["user_id"].astype(str))
        new_users = [r for r in users if r["user_id"] not in known]
        user_tab = _append_users(base.users, new_users)
        likes = pd.DataFrame(
            [(r["user_id"], i) for r in new_users for i in r["attributes"].get("liked_items", [])],
            columns=["user_id", "item_id"],
        )
        likes["event"], likes["value"], likes["ts"] = "like", np.nan, 0.0
        ev = pd.concat([likes, ev])
    uidx = pd.Series(np.arange(len(user_tab)), index=user_tab["user_id"].astype(str))
    iidx = pd.Series(np.arange(len(item_tab)), index=item_tab["item_id"].astype(str))
    u, i = ev["user_id"].map(uidx), ev["item_id"].map(iidx)
    ok = u.notna() & i.notna()
    if explicit:
        log.info(
            "retrain: rated data: %d rating events learned; %d other events and %d events of "
            "runtime users stay online feedback",
            int(ok.sum()), int((events["event"] != "rating").sum()), int((~ok).sum()),
        )  # fmt: skip
    elif not bool(ok.all()):
        log.warning("retrain: %d events name unknown users/items: skipped", int((~ok).sum()))
    ev, u, i = ev[ok], u[ok], i[ok]
    rating = ev["value"].to_numpy(np.float32) if explicit else np.ones(len(ev), np.float32)
    extra = pd.DataFrame(
        {
            "user": u.to_numpy(np.int32),
            "item": i.to_numpy(np.int32),
            "rating": rating,
            "timestamp": ev["ts"].fillna(0).to_numpy(np.float64).astype(np.int64),
            "event": ev["event"].astype(str).to_numpy(),
        }
    )
    inter = pd.concat([base.interactions[list(extra.columns)], extra], ignore_index=True)
    data = Dataset(
        inter, item_tab, user_tab, name=base.name, rating_scale=base.rating_scale, meta=base.meta
    )
    return data, len(extra), "rating" if explicit else "all"


def _append_items(table: pd.DataFrame, items: list[dict]) -> pd.DataFrame:
    known = set(table["item_id"].astype(str))
    new = [r for r in items if r["item_id"] not in known]
    if not new:
        return table
    add = pd.DataFrame(
        {
            "item_id": [r["item_id"] for r in new],
            "title": [r["title"] for r in new],
            "description": [r["description"] for r in new],
            "categories": [list(r["categories"]) for r in new],
        }
    )
    out = pd.concat([table, add], ignore_index=True)
    out["categories"] = [v if isinstance(v, list | np.ndarray) else [] for v in out["categories"]]
    return out


def _append_users(table: pd.DataFrame, new: list[dict]) -> pd.DataFrame:
    out = pd.concat([table, pd.DataFrame({"user_id": [r["user_id"] for r in new]})])
    out = out.reset_index(drop=True)
    if "text" in out or any(r.get("text") for r in new):
        txt = dict(zip(out["user_id"], out.get("text", pd.Series(dtype=object))))
        txt.update({r["user_id"]: r.get("text") for r in new})
        out["text"] = out["user_id"].map(txt)
    return out
