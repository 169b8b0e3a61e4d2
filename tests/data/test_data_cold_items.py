"""--cold-items FILE: the given items are the cold ones (split "cold"), checked line by line."""

from __future__ import annotations

import numpy as np
import pytest

from lgrec.cli import main
from lgrec.config import load_config
from lgrec.data import read_item_ids, split_cold_items
from lgrec.errors import ConfigError, DataError
from tests.data.conftest import write


def test_given_items_are_the_cold_items(make_ds, tmp_path):
    ds = make_ds()
    f = write(tmp_path / "cold.txt", "i7\n\ni3\n  i12 \n")
    cold = read_item_ids(f, ds)
    assert cold.tolist() == [3, 7, 12]
    sp = split_cold_items(ds, items=cold)
    assert sp.cold_items.tolist() == [3, 7, 12]
    assert not np.isin(sp.train.item_ids, cold).any()
    assert set(np.unique(sp.test.item_ids)) == {3, 7, 12}
    assert len(sp.train) + len(sp.test) == len(ds)


def test_bad_lines_name_the_line(make_ds, tmp_path):
    ds = make_ds()
    with pytest.raises(DataError, match=r"cold\.txt, line 3: item id 'nope' is not an item"):
        read_item_ids(write(tmp_path / "cold.txt", "i1\ni2\nnope\n"), ds)
    with pytest.raises(DataError, match=r"cold\.txt, line 2: item id 'i1' repeats"):
        read_item_ids(write(tmp_path / "cold.txt", "i1\ni1\n"), ds)
    with pytest.raises(DataError, match="no item ids"):
        read_item_ids(write(tmp_path / "cold.txt", "\n \n"), ds)
    with pytest.raises(DataError, match="not found"):
        read_item_ids(tmp_path / "missing.txt", ds)
    everything = "\n".join(ds.items["item_id"]) + "\n"
    with pytest.raises(DataError, match="every active item"):
        split_cold_items(ds, items=read_item_ids(write(tmp_path / "all.txt", everything), ds))


def test_cold_items_need_the_cold_split():
    with pytest.raises(ConfigError, match="needs split = 'cold'"):
        load_config(None, cold_items="cold.txt", split="random")


def test_commands_use_the_given_cold_items(tmp_path, capsys):
    d = tmp_path / "shop"
    rng = np.random.default_rng(0)
    lines = [f"{u} " + " ".join(map(str, rng.choice(12, 5, replace=False))) for u in range(20)]
    write(d / "train.txt", "\n".join(lines) + "\n")
    write(d / "item_list.txt", "org_id remap_id\n" + "".join(f"sku{k} {k}\n" for k in range(12)))
    cold = write(tmp_path / "cold.txt", "sku4\nsku9\n")
    args = ["--dataset", str(d), "--split", "cold", "--cold-items", str(cold)]
    assert main(["prepare", *args]) == 0
    assert "cold items 2" in capsys.readouterr().out
    out = tmp_path / "run"
    assert main(["evaluate", *args, "--models", "popularity", "--out", str(out)]) == 0
    assert "cold_Recall@20" in (out / "results.csv").read_text()
    bad = write(tmp_path / "bad.txt", "sku4\nsku99\n")
    assert main(["prepare", *args[:4], "--cold-items", str(bad)]) == 2
    assert "bad.txt, line 2: item id 'sku99'" in capsys.readouterr().err
