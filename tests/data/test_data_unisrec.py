"""UniSRec / Amazon-2018 layout: truncated histories, raw ids through .item2index, .text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lgrec.data import clean, load_dataset, load_recbole
from lgrec.errors import DataError
from tests.data.conftest import write

HEAD = "user_id:token\titem_id_list:token_seq\titem_id:token\n"


def unisrec_folder(root: Path, seqs: list[list[int]], max_len: int, name: str = "Sci") -> Path:
    """Files as UniSRec's process_amazon.py writes them (histories cut to ``max_len``)."""
    d = root / name
    train, valid, test = [], [], []
    for u, s in enumerate(seqs):
        tr = [str(i) for i in s[:-2]]
        for t in range(1, len(tr)):  # train targets from the last backwards, as UniSRec does
            train.append(f"{u}\t{' '.join(tr[:-t][-max_len:])}\t{tr[-t]}\n")
        valid.append(f"{u}\t{' '.join(tr[-max_len:])}\t{s[-2]}\n")
        test.append(f"{u}\t{' '.join([*tr, str(s[-2])][-max_len:])}\t{s[-1]}\n")
    write(d / f"{name}.train.inter", HEAD + "".join(train))
    write(d / f"{name}.valid.inter", HEAD + "".join(valid))
    write(d / f"{name}.test.inter", HEAD + "".join(test))
    n_items = max(max(s) for s in seqs) + 1
    write(d / f"{name}.item2index", "".join(f"B{k:05d}X\t{k}\n" for k in range(n_items)))
    write(d / f"{name}.user2index", "".join(f"A{u}Z\t{u}\n" for u in range(len(seqs))))
    texts = "".join(f"B{k:05d}X\tItem {k}\twith a tab. Brand {k % 3}.\n" for k in range(n_items))
    write(d / f"{name}.text", "item_id:token\ttext:token_seq\n" + texts)
    return d


@pytest.fixture
def seqs() -> list[list[int]]:
    rng = np.random.default_rng(3)
    lengths = [3, 4, 5, 6, 9, 12, 17, 40]  # with max_len 4, most histories are cut
    return [rng.permutation(30)[:n].tolist() for n in lengths]


def test_truncated_histories_rebuild_every_sequence(tmp_path, seqs):
    d = unisrec_folder(tmp_path, seqs, max_len=4)
    ds = load_recbole(d)
    assert ds.name == "Sci" and ds.n_users == len(seqs)
    df = ds.interactions
    for u, s in enumerate(seqs):
        rows = df[df["user"] == ds.user_index(f"A{u}Z")].sort_values("timestamp")
        got = ds.items["item_id"].to_numpy()[rows["item"].to_numpy()].tolist()
        assert got == [f"B{i:05d}X" for i in s]  # every item once, in order, raw ASINs
        assert rows["timestamp"].tolist() == list(range(len(s)))
        folds = rows["fold"].astype(str).tolist()
        assert folds == ["train"] * (len(s) - 2) + ["valid", "test"]
    assert len(ds) == sum(map(len, seqs))
    # the text is joined by ASIN through .item2index; a tab inside the text is kept
    k = ds.item_index("B00007X")
    assert ds.items["description"][k] == "Item 7\twith a tab. Brand 1."
    src = ds.meta["text_source"]
    assert src["how"] == "raw item ids through Sci.item2index"
    assert src["items_with_text"] == src["n_items"] == ds.n_items
    assert "keyed by raw item ids through Sci.item2index" in str(clean(ds)[1])


def test_untruncated_files_load_the_same_way(tmp_path, seqs):
    full = load_recbole(unisrec_folder(tmp_path / "a", seqs, max_len=100))
    cut = load_recbole(unisrec_folder(tmp_path / "b", seqs, max_len=4))
    cols = ["user", "item", "timestamp", "fold"]
    assert full.interactions[cols].equals(cut.interactions[cols])
    assert full.items.equals(cut.items) and full.users.equals(cut.users)


def test_broken_chain_and_conflicts_are_errors(tmp_path, seqs):
    d = unisrec_folder(tmp_path, seqs, max_len=4)
    f = d / "Sci.train.inter"
    lines = f.read_text().splitlines(keepends=True)
    last_user = [k for k, x in enumerate(lines) if x.startswith(f"{len(seqs) - 1}\t")]
    gap = last_user[len(last_user) // 2]  # a middle position of the longest sequence
    f.write_text("".join(lines[:gap] + lines[gap + 1 :]))
    with pytest.raises(DataError, match=r"Sci\.\w+\.inter, line \d+: the 4-item history of user"):
        load_recbole(d)
    d = unisrec_folder(tmp_path / "c", seqs, max_len=4)
    f = d / "Sci.test.inter"
    lines = f.read_text().splitlines(keepends=True)
    u, hist, _ = lines[-1].rstrip("\n").split("\t")
    lines[-1] = f"{u}\t{hist}\t{seqs[-1][0]}\n"  # the last target replaced by the first item
    f.write_text("".join(lines))
    load_recbole(d)  # a repeated item at the end is legal...
    f = d / "Sci.train.inter"  # user 2 (5 items): the row predicting position 2
    lines = f.read_text().splitlines(keepends=True)
    s0, s1, s2 = seqs[2][:3]
    k = lines.index(f"2\t{s0} {s1}\t{s2}\n")
    lines[k] = f"2\t{s0} 29\t{s2}\n"  # position 1 is another row's target
    f.write_text("".join(lines))
    with pytest.raises(DataError, match=rf"position 1 differs from item '29' .*line {k + 1}"):
        load_recbole(d)


def test_text_without_index_map_is_refused(tmp_path, seqs):
    d = unisrec_folder(tmp_path, seqs, max_len=4)
    (d / "Sci.item2index").unlink()
    with pytest.raises(DataError, match=r"Sci\.text: none of its 30 item ids .*Sci\.item2index"):
        load_dataset(d)
    (d / "Sci.text").unlink()
    assert load_dataset(d).items["item_id"].tolist()[:3] == ["0", "1", "2"]  # indices kept


def test_index_map_must_cover_every_index(tmp_path, seqs):
    d = unisrec_folder(tmp_path, seqs, max_len=4)
    (d / "Sci.user2index").write_text("A0Z\t0\n")
    with pytest.raises(DataError, match=r"Sci\.user2index: 7 user ids of the \.inter files"):
        load_recbole(d)
