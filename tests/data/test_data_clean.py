"""clean(): every removed row accounted for, dedupe, rating range, empty text, k-core."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lgrec.data import Dataset, clean
from lgrec.data.clean import k_core_mask, normalize_series
from lgrec.errors import ConfigError


def _ds(rows, n_users=3, n_items=3, titles=None, meta=None) -> Dataset:
    df = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])
    df = df.astype({"user": np.int32, "item": np.int32, "rating": np.float32})
    df["event"] = "rating"
    items = pd.DataFrame({"item_id": [f"i{k}" for k in range(n_items)]})
    if titles is not None:
        items["title"] = titles
    users = pd.DataFrame({"user_id": [f"u{k}" for k in range(n_users)]})
    return Dataset(df, items, users, name="t", rating_scale=(1.0, 5.0), meta=meta or {})


def test_report_accounts_for_every_row():
    rows = [
        (0, 0, 4, 1), (0, 0, 2, 5), (0, 0, 3, 3),  # 2 duplicates of (0, 0); latest rating 2
        (1, 1, 9, 1),  # outside 1..5
        (1, 2, np.nan, 2),  # missing rating
        (2, 2, 5, 1), (2, 1, 1, 2),
    ]  # fmt: skip
    out, rep = clean(_ds(rows))
    by = {s.name: s.removed for s in rep.steps}
    assert by["invalid_rating"] == 1 and by["rating_range"] == 1 and by["duplicates"] == 2
    assert rep.n_before == 7 and rep.n_after == len(out) == 3
    assert rep.removed == rep.n_before - rep.n_after
    kept = out.interactions
    assert kept[(kept.user == 0) & (kept.item == 0)]["rating"].tolist() == [2.0]  # latest
    text = str(rep)
    assert "7 → 3 interactions (4 removed)" in text and "duplicates" in text


def test_dedupe_first_and_none_and_custom_range():
    rows = [(0, 0, 4, 1), (0, 0, 2, 5), (1, 1, 1, 2)]
    out, _ = clean(_ds(rows), dedupe="first")
    assert out.interactions["rating"].tolist()[0] == 4.0
    out, rep = clean(_ds(rows), dedupe=None, rating_range=(2, 5))
    assert len(out) == 2 and {s.name for s in rep.steps} >= {"rating_range"}
    with pytest.raises(ConfigError, match="dedupe='last'"):
        clean(_ds(rows), dedupe="last")


def _brute_k_core(u, i, k):
    keep = list(range(len(u)))
    while True:
        du = pd.Series([u[r] for r in keep]).value_counts()
        di = pd.Series([i[r] for r in keep]).value_counts()
        new = [r for r in keep if du[u[r]] >= k and di[i[r]] >= k]
        if len(new) == len(keep):
            return set(new)
        keep = new


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_k_core_matches_brute_force(seed, make_ds):
    ds = make_ds(n_users=25, n_items=30, n=200, seed=seed)
    u, i = ds.user_ids, ds.item_ids
    rows, ku, ki = k_core_mask(u, i, ds.n_users, ds.n_items, 5, 5)
    assert set(np.flatnonzero(rows)) == _brute_k_core(u.tolist(), i.tolist(), 5)
    assert 0 < rows.sum() < len(ds)  # a non-trivial core: the test can fail both ways
    out, rep = clean(ds, k_core=5)
    assert len(out) == rows.sum() and out.n_users == ku.sum() and out.n_items == ki.sum()
    assert np.bincount(out.user_ids).min() >= 5 and np.bincount(out.item_ids).min() >= 5
    step = next(s for s in rep.steps if s.name == "k_core")
    assert step.users_removed == ds.n_users - out.n_users and step.removed == len(ds) - len(out)
    # re-indexed contiguously, external ids kept
    assert out.users["user_id"].tolist() == ds.users["user_id"][ku].tolist()
    orig = ds.interactions[rows]
    assert (
        out.items["item_id"].to_numpy()[out.item_ids]
        == ds.items["item_id"].to_numpy()[orig["item"]]
    ).all()


def test_k_core_remaps_social_edges():
    rows = [(0, 0, 1, 0), (0, 1, 1, 1), (2, 0, 1, 2), (2, 1, 1, 3), (1, 2, 1, 4)]
    edges = np.array([[0, 1], [0, 2], [2, 0]])
    out, _ = clean(_ds(rows, meta={"social_edges": edges}), k_core=2)
    assert out.users["user_id"].tolist() == ["u0", "u2"]
    assert out.meta["social_edges"].tolist() == [[0, 1], [1, 0]]


def test_text_normalisation_and_empty_text():
    titles = ["  <b>Caf\u00e9</b>\u00a0\uff21  &amp; co ", "<p> </p>", "Plain"]
    rows = [(0, 0, 3, 0), (0, 1, 3, 1), (1, 1, 3, 2), (1, 2, 3, 3)]
    out, rep = clean(_ds(rows, titles=titles), drop_empty_text=True)
    assert out.items["title"].tolist() == ["Café A & co", "Plain"]
    assert out.items["item_id"].tolist() == ["i0", "i2"]
    step = next(s for s in rep.steps if s.name == "empty_text")
    assert (step.removed, step.items_removed) == (2, 1)
    assert out.interactions["item"].tolist() == [0, 1]
    out, rep = clean(_ds(rows), drop_empty_text=True)  # no text column: skipped, not emptied
    assert len(out) == 4 and "skipped" in str(rep)


def test_normalize_series_leaves_non_strings():
    s = pd.Series(["a\n\tb", None, 3], dtype=object)
    assert normalize_series(s).tolist()[0] == "a b"
    assert normalize_series(s).tolist()[2] == 3
