"""Interactions rebuilt from sequential rows ``user, item_id_list (history), item_id (target)``.

Sequential recommendation benchmarks (RecBole's sequential layout, LLMRank, UniSRec) store
one row per prediction: a user's history and the item that follows it. Each row says that
the target sits at the position right after its history; :func:`expand_sequences` rebuilds
one row per (user, position) of every user's sequence, with ``timestamp`` = position and the
``fold`` of the row that predicts that position (test over valid over train; positions no row
predicts, such as the first item, are ``train``).

Two cases:

* untruncated histories (every history is the whole prefix): a row's target is at position
  ``len(history)`` and the longest row of each user holds the whole sequence;
* histories truncated to their last ``H`` items (UniSRec keeps the last 50): a row whose
  history has ``H`` items may sit anywhere from position ``H`` on. It is placed by chaining:
  row ``q`` follows row ``r`` of the same user when ``q``'s history equals ``r``'s history
  plus target without its first item, and positions follow by pointer jumping from the rows
  with shorter histories, whose positions are known. Recognised when a user has two
  different rows with ``H`` history items.

Every history item and target is then checked against the rebuilt sequence (a mismatch, a
position no row covers, or a row that continues no other row raises, naming file and line).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from lgrec.data._io import FOLDS, fold_column
from lgrec.errors import DataError

log = logging.getLogger(__name__)

_OBJ = {"dtype": object, "copy": False}  # plain objects: pandas would convert str to Arrow


def expand_sequences(raw: pd.DataFrame, seq_field: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """Sequential rows → (one row per (user, position), number of rows per fold).

    ``raw`` has ``user_id``, ``seq_field`` (space-separated history), ``item_id`` (target),
    ``file`` (categorical), ``line`` and optionally ``fold``. The result has ``user_id``,
    ``item_id``, ``timestamp`` (position), ``file``, ``line`` (the row each position is read
    from) and ``fold`` when ``raw`` has it.
    """
    toks = pc.utf8_split_whitespace(
        pa.array(raw[seq_field].to_numpy(dtype=object), type=pa.string(), from_pandas=True)
    )
    hlen = np.asarray(pc.list_value_length(toks).fill_null(0), dtype=np.int64)
    ucodes, users = pd.factorize(raw["user_id"].to_numpy(dtype=object))
    flat = pc.list_flatten(toks)  # every history item, encoded in Arrow (no Python strings)
    targets = pa.array(raw["item_id"].to_numpy(dtype=object), type=pa.string(), from_pandas=True)
    enc = pc.dictionary_encode(pa.concat_arrays([flat, targets]))
    icodes = np.asarray(enc.indices, dtype=np.int64)
    items = np.asarray(enc.dictionary.to_pylist(), dtype=object)
    hist_codes, tgt_codes = icodes[: len(flat)], icodes[len(flat) :]
    offsets = np.concatenate([[0], np.cumsum(hlen)])
    rank = np.zeros(len(raw), dtype=np.int64)  # fold codes follow FOLDS = (train, valid, test)
    if "fold" in raw.columns:
        rank = np.asarray(fold_column(raw["fold"]).codes, dtype=np.int64)
    H = int(hlen.max()) if len(hlen) else 0
    if _truncated(ucodes, hlen, H, hist_codes, offsets, tgt_codes):
        log.info(
            "%s histories are truncated to their last %d items: rows placed by chaining",
            seq_field,
            H,
        )
        pos = _chain_positions(raw, ucodes, users, hlen, H, hist_codes, offsets, tgt_codes)
    else:
        pos = hlen
    out = _assemble(raw, ucodes, users, items, hlen, pos, hist_codes, offsets, tgt_codes, rank)
    fold = raw["fold"].to_numpy(dtype=object) if "fold" in raw.columns else None
    sizes = pd.Series(fold if fold is not None else np.full(len(raw), "train")).value_counts()
    return out, {str(k): int(v) for k, v in sizes.items()}


def _windows(
    rows: np.ndarray, hist: np.ndarray, offsets: np.ndarray, H: int, tgt: np.ndarray | None
) -> np.ndarray:
    """(len(rows), H) item codes: each row's last ``H`` history items, shifted one on and
    followed by the target when ``tgt`` is given (the history the next row must have)."""
    if tgt is None:
        idx = offsets[rows + 1][:, None] - H + np.arange(H)[None, :]
        return hist[idx] if len(rows) else np.zeros((0, H), dtype=np.int64)
    idx = offsets[rows + 1][:, None] - (H - 1) + np.arange(H - 1)[None, :]
    head = hist[idx] if len(rows) and H > 1 else np.zeros((len(rows), H - 1), dtype=np.int64)
    return np.concatenate([head, tgt[rows, None]], axis=1)


def _hash(user: np.ndarray, win: np.ndarray) -> np.ndarray:
    """A 64-bit polynomial hash of (user, window) rows (matches are verified exactly)."""
    h = user.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        for k in range(win.shape[1]):
            h = h * np.uint64(1_000_003) + win[:, k].astype(np.uint64) + np.uint64(1)
    return h


def _truncated(ucodes, hlen, H, hist, offsets, tgt) -> bool:
    """True when some user has two different rows with ``H`` history items."""
    rows = np.flatnonzero(hlen == H)
    if H == 0 or len(rows) < 2:
        return False
    h = _hash(ucodes[rows], _windows(rows, hist, offsets, H, None))
    key = pd.DataFrame({"u": ucodes[rows], "h": h, "t": tgt[rows]}).drop_duplicates()
    return bool(key["u"].duplicated().any())


def _chain_positions(raw, ucodes, users, hlen, H, hist, offsets, tgt) -> np.ndarray:
    """Position of every row: ``len(history)`` below ``H``, else found by chaining (module doc)."""
    n = len(raw)
    unknown = np.flatnonzero(hlen == H)
    succ_rows = np.flatnonzero(hlen >= H - 1)
    key = _hash(ucodes[unknown], _windows(unknown, hist, offsets, H, None))
    succ = _hash(ucodes[succ_rows], _windows(succ_rows, hist, offsets, H, tgt))
    # rows with the same user and history must have the same target (else no single order)
    kt = pd.DataFrame({"k": key, "t": tgt[unknown]}).drop_duplicates()
    dup = kt["k"].duplicated(keep=False).to_numpy()
    if dup.any():
        r = int(unknown[kt.index[np.argmax(dup)]])
        _fail(
            raw,
            r,
            f"user {users[ucodes[r]]!r} has rows with the same {H}-item history but "
            "different targets, so the order of the sequence is ambiguous",
        )
    first_succ = pd.Series(succ_rows).groupby(succ, sort=False).first()
    pred = np.full(n, -1, dtype=np.int64)
    pred[unknown] = first_succ.reindex(key).fillna(-1).to_numpy(dtype=np.int64)
    lost = pred[unknown] < 0
    if lost.any():
        r = int(unknown[np.argmax(lost)])
        _fail(
            raw,
            r,
            f"the {H}-item history of user {users[ucodes[r]]!r} continues no other "
            "row's history and target, so its position cannot be told",
        )
    got = _windows(pred[unknown], hist, offsets, H, tgt)
    ok = (got == _windows(unknown, hist, offsets, H, None)).all(1)
    if not ok.all():  # a hash collision: astronomically rare, but never guess
        _fail(raw, int(unknown[np.argmin(ok)]), "ambiguous history (hash collision)")
    # pointer jumping: nxt → a row of known position, dist = steps to it
    nxt = np.arange(n, dtype=np.int64)
    nxt[unknown] = pred[unknown]
    dist = np.zeros(n, dtype=np.int64)
    dist[unknown] = 1
    for _ in range(64):
        done = hlen[nxt] < H
        if done.all():
            break
        dist, nxt = dist + np.where(done, 0, dist[nxt]), np.where(done, nxt, nxt[nxt])
    else:
        r = int(np.argmax(hlen[nxt] >= H))
        _fail(raw, r, f"the rows of user {users[ucodes[r]]!r} form a cycle (repeated history)")
    return hlen[nxt] + dist


def _assemble(raw, ucodes, users, items, hlen, pos, hist, offsets, tgt, rank) -> pd.DataFrame:
    """One row per (user, position): targets (highest fold wins) and history items, checked."""
    n_users = len(users)
    length = np.zeros(n_users, dtype=np.int64)
    np.maximum.at(length, ucodes, pos + 1)
    start = np.concatenate([[0], np.cumsum(length)])
    n = int(start[-1])
    slot = start[ucodes] + pos
    item = np.full(n, -1, dtype=np.int64)
    src = np.full(n, -1, dtype=np.int64)
    best = np.full(n, -1, dtype=np.int64)
    order = np.lexsort((rank, slot))  # per slot, the highest fold last
    item[slot[order]] = tgt[order]
    src[slot[order]] = order
    best[slot[order]] = rank[order]
    bad = tgt != item[slot]
    if bad.any():
        r = int(np.argmax(bad))
        _fail(
            raw,
            r,
            f"target item {items[tgt[r]]!r} of user {users[ucodes[r]]!r} at position "
            f"{pos[r]} differs from item {items[item[slot[r]]]!r}, the target of "
            f"{_where(raw, int(src[slot[r]]))} for that position",
        )
    row_of_tok = np.repeat(np.arange(len(raw)), hlen)
    tok_slot = slot[row_of_tok] - hlen[row_of_tok] + (np.arange(len(hist)) - offsets[row_of_tok])
    placed = item[tok_slot] >= 0
    bad = placed & (hist != item[tok_slot])
    if bad.any():  # a target disagrees with another row's history
        k = int(np.argmax(bad))
        r, t = int(row_of_tok[k]), int(src[tok_slot[k]])
        _fail(
            raw,
            t,
            f"target item {items[tgt[t]]!r} of user {users[ucodes[t]]!r} at position "
            f"{pos[t]} differs from item {items[hist[k]]!r} at that position in the history "
            f"of {_where(raw, r)}; expected prefixes (or truncated windows) of one sequence "
            "per user",
        )
    free = ~placed
    item[tok_slot[free]] = hist[free]
    src[tok_slot[free]] = row_of_tok[free]
    bad = hist != item[tok_slot]
    if bad.any():  # two histories disagree on a position no row predicts
        k = int(np.argmax(bad))
        r, o = int(row_of_tok[k]), int(src[tok_slot[k]])
        p = int(tok_slot[k] - start[ucodes[r]])
        _fail(
            raw,
            r,
            f"history item {items[hist[k]]!r} of user {users[ucodes[r]]!r} at position "
            f"{p} differs from item {items[item[tok_slot[k]]]!r} in the history of "
            f"{_where(raw, o)}",
        )
    if (item < 0).any():
        s = int(np.argmax(item < 0))
        u = int(np.searchsorted(start, s, side="right") - 1)
        r = int(np.flatnonzero(ucodes == u)[0])
        _fail(raw, r, f"no row gives the item of user {users[u]!r} at position {s - start[u]}")
    user = np.repeat(np.arange(n_users), length)
    out = pd.DataFrame(
        {
            "user_id": pd.Series(users[user], **_OBJ),
            "item_id": pd.Series(items[item], **_OBJ),
            "timestamp": np.arange(n) - start[user],
            "file": raw["file"].array.take(src),
            "line": raw["line"].to_numpy()[src],
        }
    )
    if "fold" in raw.columns:
        out["fold"] = pd.Categorical.from_codes(np.maximum(best, 0).astype(np.int8), list(FOLDS))
    return out


def _where(raw: pd.DataFrame, row: int) -> str:
    return f"{raw['file'].iloc[row]}, line {int(raw['line'].iloc[row])}"


def _fail(raw: pd.DataFrame, row: int, what: str) -> None:
    raise DataError(f"{_where(raw, row)}: {what}")
