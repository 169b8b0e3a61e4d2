"""UniSRec's extra files beside RecBole sequence files: raw-id maps and item text.

UniSRec (https://github.com/RUCAIBox/UniSRec, ``dataset/preprocessing/process_amazon.py``)
writes, for each Amazon-2018 data set such as ``Scientific`` or ``Office``:

* ``<name>.{train,valid,test}.inter``: ``user_id:token  item_id_list:token_seq  item_id:token``
  over *remapped* indices, histories truncated to the last 50 items (read by
  :mod:`lgrec.data.sequences`);
* ``<name>.item2index`` / ``<name>.user2index``: ``<raw id>\\t<index>`` per line, no header
  (raw item ids are ASINs);
* ``<name>.text``: header ``item_id:token\\ttext:token_seq``, then ``<ASIN>\\t<text>``; the
  text may itself hold tabs, so a line is split at its first tab only.

:func:`join_extras` turns the index tokens of the item and user tables into the raw ids and
joins the text by ASIN, reporting how many items got text.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from lgrec.data._io import read_delimited
from lgrec.errors import DataError

log = logging.getLogger(__name__)


def read_remap_index(path: Path) -> pd.Series:
    """``<raw id>\\t<index>`` lines → Series raw id (str) indexed by the index token (str)."""
    df = read_delimited(path, ["raw", "index"], ints=["index"], required=["raw", "index"])
    for col in ("raw", "index"):
        dup = df[col].duplicated().to_numpy()
        if dup.any():
            line = int(df.index[np.argmax(dup)]) + 1
            raise DataError(f"{path}, line {line}: {col} {df[col].iloc[np.argmax(dup)]!r} repeats")
    return pd.Series(
        df["raw"].astype(str).to_numpy(dtype=object),
        index=pd.Index(df["index"].astype(str).to_numpy(dtype=object), dtype=object),
    )


def read_text_file(path: Path) -> pd.Series:
    """A ``.text`` file → Series text indexed by item id.

    The header names the fields (``item_id:token`` first). A line is split at its first
    ``n - 1`` tabs only, so the last field may itself hold tabs; the text is the ``text`` or
    ``description`` field, else the last one.
    """
    lines = path.read_bytes().decode("utf-8").splitlines()
    names = [f.partition(":")[0] for f in lines[0].split("\t")] if lines else []
    if len(names) < 2 or names[0] != "item_id":
        raise DataError(f"{path}, line 1: expected a header 'item_id:token<TAB>text:token_seq'")
    body = pd.Series(lines[1:], dtype=object)
    body = body[body.str.strip().ne("")]
    if body.empty:
        return pd.Series([], dtype=object)
    parts = body.str.split("\t", n=len(names) - 1, expand=True).reindex(columns=range(len(names)))
    col = next((names.index(c) for c in ("text", "description") if c in names), len(names) - 1)
    ids, texts = parts[0].str.strip(), parts[col].fillna("").str.strip()
    dup = ids.duplicated().to_numpy()
    if dup.any():
        line = int(body.index[np.argmax(dup)]) + 2
        raise DataError(f"{path}, line {line}: item {ids.iloc[np.argmax(dup)]!r} appears twice")
    return pd.Series(texts.to_numpy(dtype=object), index=pd.Index(ids.to_numpy(dtype=object)))


def _remap(table: pd.DataFrame, key: str, path: Path) -> pd.DataFrame:
    """Replace the index tokens in ``table[key]`` by the raw ids of ``path``."""
    raw = read_remap_index(path)
    tokens = table[key].astype(str).to_numpy(dtype=object)
    pos = raw.index.get_indexer(tokens)
    if (pos < 0).any():
        bad = tokens[pos < 0]
        raise DataError(
            f"{path}: {len(bad):,} {key.split('_')[0]} ids of the .inter files have no line, "
            f"e.g. {bad[0]!r} (expected '<raw id><TAB><index>' for every index)"
        )
    table = table.copy()
    table[key] = raw.to_numpy()[pos]
    return table


def join_extras(
    directory: Path, name: str, items: pd.DataFrame, users: pd.DataFrame, find
) -> tuple[pd.DataFrame, pd.DataFrame, dict | None]:
    """Raw ids from ``.item2index``/``.user2index`` and text from ``.text`` (see module doc).

    ``find(directory, name, suffix)`` locates a file. Returns the tables and, when a text
    file was joined, ``meta["text_source"]`` (file, key, items with text). A ``.text`` whose
    ids match no item raises (its ids are raw ASINs while the items are indices: the
    ``.item2index`` file is missing).
    """
    remapped = None
    f = find(directory, name, "item2index")
    if f is not None:
        items, remapped = _remap(items, "item_id", f), f.name
    f = find(directory, name, "user2index")
    if f is not None:
        users = _remap(users, "user_id", f)
    text_f = find(directory, name, "text")
    if text_f is None or "description" in items.columns:
        return items, users, None
    texts = read_text_file(text_f)
    desc = items["item_id"].map(texts)
    got = int(desc.fillna("").astype(str).str.strip().ne("").sum())
    if len(texts) and desc.isna().all():
        hint = "" if remapped else f" (no {name}.item2index maps the .inter indices to raw ids)"
        raise DataError(
            f"{text_f}: none of its {len(texts):,} item ids (e.g. {texts.index[0]!r}) is an "
            f"item id of the data set (e.g. {items['item_id'].iloc[0]!r}){hint}"
        )
    items = items.copy()
    items["description"] = desc.fillna("").to_numpy(dtype=object)
    key = f"raw item ids through {remapped}" if remapped else "item ids"
    log.info("%s: %s keyed by %s: %d of %d items got text", name, text_f.name, key, got, len(items))
    src = {"file": str(text_f), "how": key, "items_with_text": got, "n_items": len(items)}
    return items, users, src
