"""``lgrec retrain``: rebuilt training data or a clear refusal; implicit events stay implicit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lgrec.cli import main
from lgrec.errors import DataError
from lgrec.serve.retrain import retrain, with_feedback
from lgrec.serve.state import ServeState
from lgrec.store.feedback import FeedbackStore
from tests.conftest import make_planted


def write_ml100k(root: Path, seed: int = 0) -> Path:
    """The planted data set (ratings 1..5, times) as an ML-100K folder ``root/ml-100k``
    (``u1.base`` = 80 % train, ``u1.test``); returns ``root``."""
    ds = make_planted(n_users=30, items_per_topic=8, per_user=8, seed=seed)
    d = root / "ml-100k"
    d.mkdir(parents=True)
    df = ds.interactions
    rows = [
        f"{u + 1}\t{i + 1}\t{int(r)}\t{880000000 + t}"
        for u, i, r, t in zip(df.user, df.item, df.rating, df.timestamp)
    ]
    test = np.arange(len(rows)) % 5 == 0
    (d / "u1.base").write_text("".join(r + "\n" for r, t in zip(rows, test) if not t))
    (d / "u1.test").write_text("".join(r + "\n" for r, t in zip(rows, test) if t))
    return root


@pytest.fixture(scope="module")
def rated_bundle(tmp_path_factory) -> tuple[Path, Path]:
    """(data folder, BiasedMF bundle trained on its ML-100K u1 training part)."""
    root = tmp_path_factory.mktemp("rated")
    data = write_ml100k(root / "data")
    out = root / "mf"
    args = ["train", "--dataset", "ml-100k", "--data-dir", str(data), "--model", "biasedmf",
            "--param", "biasedmf.epochs=30", "--valid-ratio", "0", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    return data, out


def test_retrain_refuses_when_the_data_cannot_be_rebuilt(rated_bundle, tmp_path):
    """Without the data set the rating model is not refit on invented 1-star rows: a clear
    error, nothing saved — even with --seen-only, since the model learned from ratings."""
    _, bundle = rated_bundle
    store = tmp_path / "fb.sqlite"
    with FeedbackStore(store) as s:
        s.add_event("1", "3", "rating", value=4.0)
    empty = tmp_path / "nodata"
    empty.mkdir()
    for seen_only in (False, True):
        out = tmp_path / f"out-{seen_only}"
        with pytest.raises(DataError, match="cannot rebuild data set 'ml-100k'") as err:
            retrain(bundle, store, out, data_dir=str(empty), seen_only=seen_only)
        assert "Nothing was saved" in str(err.value) and not out.exists()
    assert "learned from ratings" in str(err.value)
    argv = ["retrain", "--model", str(bundle), "--store", str(store), "--data-dir", str(empty)]
    assert main([*argv, "--out", str(tmp_path / "cli")]) == 2
    assert not (tmp_path / "cli").exists()


def test_implicit_model_without_data_needs_seen_only(bundle, tmp_path):
    """The synthetic LMGCN bundle names a data set nobody can rebuild: refused by default,
    refit on its binary matrix with ``seen_only`` (it never learned from ratings)."""
    store = tmp_path / "fb.sqlite"
    FeedbackStore(store).close()
    with pytest.raises(DataError, match="--seen-only"):
        retrain(bundle, store, tmp_path / "a")
    assert not (tmp_path / "a").exists()
    assert (retrain(bundle, store, tmp_path / "b", seen_only=True) / "config.json").is_file()


def test_implicit_events_do_not_become_ratings(rated_bundle, tmp_path):
    """On rated data a click is not a 5-star rating: only rating events are learned; the other
    events stay online feedback, which a server on the new bundle folds in again."""
    from lgrec.models.base import Recommender

    data, bundle = rated_bundle
    store = tmp_path / "fb.sqlite"
    with FeedbackStore(store) as s:
        clicks = [("1", str(i), "click") for i in range(1, 25)]
        clicks += [("2", str(i), "view") for i in range(1, 25)]
        for user, item, ev in clicks:
            s.add_event(user, item, ev)
        rated_id, _ = s.add_event("3", "20", "rating", value=2.0)
        s.add_user("newbie", text="likes stars", attributes={"liked_items": ["1", "2"]})
        s.add_event("newbie", "5", "like")
        base = Recommender.load(bundle)
        events, users, items = s.events(), s.list_users(), s.list_items()
    from lgrec.config import load_config
    from lgrec.pipeline import prepare

    train = prepare(load_config(dataset="ml-100k", data_dir=str(data), valid_ratio=0.0))
    got, n, learned = with_feedback(train.split.full_train, events, users, items)
    assert (n, learned) == (1, "rating")  # the one rating event, nothing else
    tail = got.interactions.iloc[-1]
    assert (tail["event"], tail["rating"]) == ("rating", 2.0)
    assert got.n_users == base.n_users_  # runtime users stay runtime users
    assert got.interactions["rating"].mean() == pytest.approx(
        train.split.full_train.interactions["rating"].mean(), abs=0.05
    )
    out = retrain(bundle, store, tmp_path / "new", data_dir=str(data))
    info = json.loads((out / "dataset.json").read_text())
    assert info["feedback_learned"] == "rating" and info["feedback_until"] == rated_id + 1
    model = Recommender.load(out)
    mean = float(model.predict_rating(np.arange(10), np.arange(10)).mean())
    assert abs(mean - float(train.split.full_train.ratings.mean())) < 0.6
    st = ServeState(out, FeedbackStore(store), text="off")
    try:  # the unlearned events are folded in again, the learned rating is not
        assert sum(st.online_events.values()) == len(clicks) + 1
        assert st.online_events.get(st.user_index("3"), 0) == 0
        assert st.online_events[st.user_index("newbie")] == 1
    finally:
        st.close()
