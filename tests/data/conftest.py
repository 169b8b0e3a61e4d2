"""Synthetic data files in the layouts the loaders read, written fresh into tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lgrec.data.dataset import Dataset


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's"]


@pytest.fixture
def ml100k(tmp_path: Path) -> Path:
    """ML-100K layout: 3 users, 4 items, 10 ratings, fold u1 (7 base / 3 test)."""
    d = tmp_path / "ml-100k"
    rows = [
        (1, 1, 5, 100), (1, 2, 3, 101), (1, 3, 4, 102), (2, 1, 2, 103), (2, 4, 1, 104),
        (3, 2, 5, 105), (3, 3, 4, 106), (3, 4, 3, 107), (2, 3, 4, 108), (1, 4, 2, 109),
    ]  # fmt: skip
    lines = ["\t".join(map(str, r)) for r in rows]
    write(d / "u.data", "\n".join(lines) + "\n")
    write(d / "u1.base", "\n".join(lines[:7]) + "\n")
    write(d / "u1.test", "\n".join(lines[7:]) + "\n")
    write(d / "u.genre", "".join(f"{g}|{k}\n" for k, g in enumerate(GENRES)) + "\n")
    flags = ["0|1|0|0|0", "0|0|1|1|0", "1|0|0|0|0", "0|0|0|1|1"]
    titles = ["Toy Story (1995)", "GoldenEye (1995)", "Café Society (1995)", "Babe (1995)"]
    items = [
        f"{k + 1}|{t}|01-Jan-1995||http://x|{f}" for k, (t, f) in enumerate(zip(titles, flags))
    ]
    write(d / "u.item", "\n".join(items) + "\n", encoding="latin-1")
    write(d / "u.user", "1|24|M|technician|85711\n2|53|F|other|94043\n3|23|M|writer|32067\n")
    return d


@pytest.fixture
def ml1m(tmp_path: Path) -> Path:
    """ML-1M layout with ``::`` separators and latin-1 titles."""
    d = tmp_path / "ml-1m"
    write(
        d / "movies.dat",
        "1::Toy Story (1995)::Animation|Children's|Comedy\n2::Jumanji (1995)::Adventure\n"
        "3::Café (1996)::Drama\n",
        encoding="latin-1",
    )
    write(d / "users.dat", "1::F::1::10::48067\n2::M::25::17::70072\n")
    write(d / "ratings.dat", "1::1::5::978300760\n1::3::3::978300761\n2::2::4::978300762\n")
    return d


@pytest.fixture
def lightgcn_dir(tmp_path: Path) -> Path:
    """LightGCN layout: 4 users (user 3 has only its id in train), 5 items, id lists."""
    d = tmp_path / "tiny"
    write(d / "train.txt", "0 0 1 2\n1 2 3\n2 4 0 1 3\n3\n")
    write(d / "test.txt", "0 3\n1 4\n2 2\n3 1\n")
    write(d / "user_list.txt", "org_id remap_id\nu10 0\nu11 1\nu12 2\nu13 3\n")
    write(d / "item_list.txt", "org_id remap_id\ni0 0\ni1 1\ni2 2\ni3 3\ni4 4\n")
    return d


@pytest.fixture
def colakg_dir(tmp_path: Path) -> Path:
    """CoLaKG layout with a sibling ml-1m folder for titles and genres."""
    d = tmp_path / "colakg-ml-1m"
    write(d / "train.txt", "0 0 1\n1 1 2\n")
    write(d / "test.txt", "0 2\n1 0\n")
    write(d / "item_map.txt", "1193 0\n661 1\n914 2\n")
    write(d / "user_map.txt", "7 0\n9 1\n")
    write(d / "llm_response_item.json", '{"1193": "A drama.", "661": "A peach.", "1": "x"}')
    write(
        tmp_path / "ml-1m" / "movies.dat",
        "1193::One Flew (1975)::Drama\n661::James (1996)::Animation|Musical\n"
        "914::Lady (1964)::Musical\n",
        encoding="latin-1",
    )
    return d


@pytest.fixture
def lastfm_dir(tmp_path: Path) -> Path:
    d = tmp_path / "lastfm-social"
    write(d / "data1.txt", "1\t1\t10\r\n1\t2\t5\r\n2\t3\t7\r\n3\t1\t1\r\n")
    write(d / "test1.txt", "1\t3\t2\r\n2\t1\t4\r\n")
    write(d / "trustnetwork.txt", "1\t2\r\n2\t4\r\n")
    return d


@pytest.fixture
def recbole_dir(tmp_path: Path) -> Path:
    """General RecBole layout: toy.inter/.item/.user."""
    d = tmp_path / "toy"
    write(
        d / "toy.inter",
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        "u1\ti1\t4\t10\nu1\ti2\t5\t11\nu2\ti1\t3\t12\nu2\ti3\t1\t13\n",
    )
    write(
        d / "toy.item",
        "item_id:token\tmovie_title:token_seq\tclass:token_seq\trelease_year:token\n"
        "i1\tAlpha\tAction Drama\t1990\ni2\tBeta\tComedy\t1991\ni3\tGamma\t\t1992\n",
    )
    write(
        d / "toy.user",
        "user_id:token\tage:token\tgender:token\toccupation:token\nu1\t30\tF\twriter\n"
        "u2\t41\tM\tengineer\n",
    )
    return d


@pytest.fixture
def seq_dir(tmp_path: Path) -> Path:
    """Sequential benchmark layout (LLMRank): user 0 = [0 1 2 3 4], user 1 = [5 2 6]."""
    d = tmp_path / "games"
    head = "user_id:token\titem_id_list:token_seq\titem_id:token\n"
    write(d / "G-6k.train.inter", head + "0\t0\t1\n0\t0 1\t2\n1\t5\t2\n")
    write(d / "G-6k.valid.inter", head + "0\t0 1 2\t3\n1\t5\t2\n")
    write(d / "G-6k.test.inter", head + "0\t0 1 2 3\t4\n1\t5 2\t6\n")
    items = "".join(f"{k}\tGame {k}\n" for k in range(8))
    write(d / "G.item", "item_id:token\ttitle:token_seq\n" + items)
    return d


def make_dataset(
    n_users: int = 30,
    n_items: int = 40,
    n: int = 600,
    seed: int = 0,
    with_fold: bool = False,
) -> Dataset:
    """Random interactions (distinct (user, item) pairs) over small tables."""
    rng = np.random.default_rng(seed)
    pairs = rng.choice(n_users * n_items, size=n, replace=False)
    df = pd.DataFrame(
        {
            "user": (pairs // n_items).astype(np.int32),
            "item": (pairs % n_items).astype(np.int32),
            "rating": rng.integers(1, 6, n).astype(np.float32),
            "timestamp": rng.permutation(n).astype(np.int64),
            "event": "rating",
        }
    )
    if with_fold:
        df["fold"] = np.where(rng.random(n) < 0.8, "train", "test")
    items = pd.DataFrame(
        {
            "item_id": [f"i{k}" for k in range(n_items)],
            "title": [f"Item {k}" for k in range(n_items)],
        }
    )
    users = pd.DataFrame({"user_id": [f"u{k}" for k in range(n_users)]})
    return Dataset(df, items, users, name="synthetic", rating_scale=(1.0, 5.0))


@pytest.fixture
def make_ds():
    """The :func:`make_dataset` factory, for tests that need random data sets."""
    return make_dataset
