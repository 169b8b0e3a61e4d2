"""CoLaKG data folders: LightGCN-style train/test with mapped ids, id maps and LLM item text.

A CoLaKG folder (https://github.com/ziqiangcui/CoLaKG, ``data/<name>``) holds ``train.txt``
and ``test.txt`` over mapped indices, ``item_map.txt``/``user_map.txt`` (``<original id>
<index>``) and ``llm_response_item.json``, an object of item descriptions written by an LLM.

That JSON file is keyed by the *original* item id in CoLaKG's ML-1M (the MovieID) but by the
*mapped* index in other CoLaKG data sets, and nothing in the file says which. Reading it with
the wrong key gives most items another item's text. :func:`text_key_evidence` counts, for
each reading, how many items find a key; :func:`choose_text_key` decides from those counts
(rules in its docstring) or refuses, and ``text_key="original"|"mapped"`` overrides it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lgrec.data._io import need_file, read_delimited
from lgrec.data.dataset import Dataset
from lgrec.data.lightgcn_txt import id_table, load_lightgcn
from lgrec.errors import ConfigError, DataError, DatasetNotFoundError

log = logging.getLogger(__name__)

TEXT_FILE = "llm_response_item.json"
TEXT_KEYS = ("auto", "original", "mapped")


@dataclass(frozen=True)
class KeyEvidence:
    """How many of ``n_items`` items find a key in the text file under each reading."""

    n_items: int
    original: int  # items whose original id (item_map.txt, column 1) is a key
    mapped: int  # items whose mapped index (item_map.txt, column 2) is a key
    same: bool  # every item's original id equals its index: both readings agree


def text_key_evidence(keys: set[str], original: np.ndarray, mapped: np.ndarray) -> KeyEvidence:
    """Count the items whose original id, and whose mapped index, is a key of the text file."""
    org = pd.Index(np.asarray(original, dtype=object).astype(str))
    idx = pd.Index(np.asarray(mapped).astype(np.int64).astype(str).astype(object))
    keyset = pd.Index(list(keys), dtype=object)
    return KeyEvidence(
        n_items=len(org),
        original=int(org.isin(keyset).sum()),
        mapped=int(idx.isin(keyset).sum()),
        same=bool((org == idx).all()),
    )


def choose_text_key(ev: KeyEvidence, path: Path | str) -> str:
    """``"original"`` or ``"mapped"`` from the evidence, or a :class:`DataError`.

    Rules, in order: both readings give the same text (ids equal indices) → ``"original"``;
    exactly one reading finds a key for every item → that one; one reading finds keys for at
    least half of the items and for at least twice as many items as the other → that one.
    Anything else is ambiguous and refused, naming the file and both counts.
    """
    if ev.same:
        return "original"
    n, o, m = ev.n_items, ev.original, ev.mapped
    if (o == n) != (m == n):
        return "original" if o == n else "mapped"
    for a, b, name in ((o, m, "original"), (m, o, "mapped")):
        if 2 * a >= n and a >= 2 * b and a > b:
            return name
    raise DataError(
        f"{path}: cannot tell which ids its keys are: {o:,} of {n:,} items have a key under "
        f"their original id (item_map.txt, column 1) and {m:,} under their mapped index "
        "(column 2). Say which: text_key='original' or text_key='mapped' "
        "(command line: --loader-arg text_key=mapped)"
    )


def read_text_json(path: Path) -> dict[str, str]:
    """``llm_response_item.json`` → {key: text}; values must be strings (null → "")."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}, line {e.lineno}: invalid JSON ({e.msg})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object of item texts keyed by item id")
    out = {}
    for k, v in data.items():
        if v is not None and not isinstance(v, str):
            raise DataError(f"{path}: the value of key {k!r} is a {type(v).__name__}, not text")
        out[str(k)] = v or ""
    return out


def load_colakg(
    path: str | Path,
    *,
    name: str | None = None,
    text_key: str = "auto",
    movies_dat: str | Path | None = None,
) -> Dataset:
    """Load a CoLaKG folder: interactions, original ids as external ids, LLM descriptions.

    Args:
        path: the folder (``train.txt``, ``test.txt``, ``item_map.txt``, ``user_map.txt``,
            optional ``llm_response_item.json``).
        name: data set name; default the folder's name.
        text_key: which ids key ``llm_response_item.json``: ``"original"`` (item_map.txt's
            first column, e.g. ML-1M MovieIDs), ``"mapped"`` (the index in train.txt) or
            ``"auto"`` (decided by :func:`choose_text_key`, refused when ambiguous).
        movies_dat: ML-1M ``movies.dat`` for titles and genres (keyed by MovieID). By default
            ``movies.dat`` in the folder, else ``../ml-1m/movies.dat`` when the folder's name
            contains ``ml-1m``; other data sets get no titles from there. ``users.dat`` beside
            it adds user attributes.

    The chosen key and the number of items that got text are logged and kept in
    ``meta["text_source"]`` (the cleaning report prints them).
    """
    from lgrec.data.movielens import read_movies_dat, read_users_dat

    if text_key not in TEXT_KEYS:
        raise ConfigError(f"load_colakg(text_key={text_key!r}): expected one of {TEXT_KEYS}")
    path = Path(path)
    name = name or path.name
    ds = load_lightgcn(path, name=name)
    maps = {}
    for fname, key, n in (
        ("item_map.txt", "item_id", ds.n_items),
        ("user_map.txt", "user_id", ds.n_users),
    ):
        f = need_file(path / fname, dataset=name, source="colakg-ml-1m")
        m = read_delimited(f, ["org", "idx"], sep=" ", ints=["idx"])
        org, idx = m["org"].astype(str).to_numpy(dtype=object), m["idx"].to_numpy()
        maps[key] = (id_table(n, key, (org, idx), f), org, idx)
    items, users = maps["item_id"][0], maps["user_id"][0]
    meta: dict = {"source": str(path)}
    desc_f = path / TEXT_FILE
    if desc_f.is_file():
        texts = read_text_json(desc_f)
        ev = text_key_evidence(set(texts), maps["item_id"][1], maps["item_id"][2])
        key = choose_text_key(ev, desc_f) if text_key == "auto" else text_key
        ids = (
            items["item_id"] if key == "original" else pd.Series(np.arange(len(items)).astype(str))
        )
        desc = ids.map(texts).fillna("").astype(object).to_numpy()
        items["description"] = desc
        got = int(pd.Series(desc).str.strip().ne("").sum())
        how = "chosen" if text_key != "auto" else "detected"
        log.info(
            "%s: %s keyed by %s item ids (%s; %d of %d items have an original-id key, %d a "
            "mapped-index key): %d of %d items got text",
            name, TEXT_FILE, key, how, ev.original, ev.n_items, ev.mapped, got, len(items),
        )  # fmt: skip
        meta["text_source"] = {
            "file": str(desc_f),
            "key": key,
            "decided": how,
            "how": f"{key} item ids ({how})",
            "items_with_text": got,
            "n_items": len(items),
        }
    else:
        log.warning("%s: %s missing; items get no description", path, TEXT_FILE)
    movies = _movies_file(path, movies_dat)
    if movies is not None:
        m = read_movies_dat(movies).set_index("item_id")
        items["title"] = items["item_id"].map(m["title"]).fillna("").to_numpy(dtype=object)
        cats = items["item_id"].map(m["categories"])
        items["categories"] = [c if isinstance(c, list) else [] for c in cats.tolist()]
        users_dat = movies.parent / "users.dat"
        if users_dat.is_file():
            u = read_users_dat(users_dat).set_index("user_id")
            users = users.join(u, on="user_id")
    return Dataset(ds.interactions, items, users, name=name, meta=meta)


def _movies_file(path: Path, movies_dat: str | Path | None) -> Path | None:
    """The ``movies.dat`` to read titles from (see :func:`load_colakg`), or None."""
    if movies_dat:
        f = Path(movies_dat)
        if not f.is_file():
            raise DatasetNotFoundError(f"movies_dat={str(movies_dat)!r}: file not found")
        return f
    cands = [path / "movies.dat"]
    if "ml-1m" in path.name.lower():
        cands.append(path.parent / "ml-1m" / "movies.dat")
    for f in cands:
        if f.is_file():
            return f
    log.info("%s: no movies.dat (looked for %s); items get no titles/genres", path, cands)
    return None


def load_colakg_ml1m(path: str | Path, movies_dat: str | Path | None = None) -> Dataset:
    """CoLaKG's ML-1M folder: :func:`load_colakg` (kept for code that used this name)."""
    return load_colakg(path, movies_dat=movies_dat)
