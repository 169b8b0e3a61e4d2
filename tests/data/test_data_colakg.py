"""CoLaKG folders: which ids key llm_response_item.json, the data set's name, text counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lgrec.cli import main
from lgrec.data import clean, load_colakg, load_dataset
from lgrec.data.colakg import KeyEvidence, choose_text_key
from lgrec.errors import ConfigError, DataError
from tests.data.conftest import write


def colakg_folder(root: Path, name: str, org: list[str], texts: dict[str, str]) -> Path:
    """A CoLaKG folder: 2 users, ``len(org)`` items with original ids ``org`` (index = position)."""
    d = root / name
    n = len(org)
    write(d / "train.txt", "0 " + " ".join(map(str, range(n - 1))) + f"\n1 {n - 1} 0\n")
    write(d / "test.txt", f"0 {n - 1}\n1 1\n")
    write(d / "item_map.txt", "".join(f"{o} {k}\n" for k, o in enumerate(org)))
    write(d / "user_map.txt", "70 0\n90 1\n")
    write(d / "llm_response_item.json", json.dumps(texts))
    return d


def test_mapped_index_keys_are_detected_and_named_after_the_folder(tmp_path, caplog):
    # original ids 3, 1, 7, 2 overlap the indices 0..3: read by original id, item 0 (id "3")
    # would get item 3's text and item 2 (id "7") none — the mix-up this detection prevents
    org = ["3", "1", "7", "2"]
    d = colakg_folder(
        tmp_path, "colakg-books", org, {str(k): f"text of index {k}" for k in range(4)}
    )
    # a sibling ml-1m folder must not lend its titles to a data set that is not ML-1M
    write(tmp_path / "ml-1m" / "movies.dat", "3::Wrong Title (1995)::Drama\n", encoding="latin-1")
    with caplog.at_level("INFO", logger="lgrec.data.colakg"):
        ds = load_colakg(d)
    assert ds.name == "colakg-books"
    assert ds.items["item_id"].tolist() == org
    assert ds.items["description"].tolist() == [f"text of index {k}" for k in range(4)]
    assert "title" not in ds.items.columns
    src = ds.meta["text_source"]
    assert (src["key"], src["decided"], src["items_with_text"], src["n_items"]) == (
        "mapped",
        "detected",
        4,
        4,
    )
    assert "keyed by mapped item ids" in caplog.text and "4 of 4 items got text" in caplog.text
    _, report = clean(ds)
    assert "items with text (description): 4 of 4" in str(report)
    assert "keyed by mapped item ids (detected): 4 of 4 items got text" in str(report)


def test_original_id_keys_are_detected(colakg_dir):
    ds = load_colakg(colakg_dir)
    assert ds.name == "colakg-ml-1m"  # the folder's name
    assert ds.meta["text_source"]["key"] == "original"
    assert ds.items["description"].tolist() == ["A drama.", "A peach.", ""]
    assert ds.meta["text_source"]["items_with_text"] == 2
    assert ds.items["title"].tolist()[0] == "One Flew (1975)"  # ../ml-1m/movies.dat is used


def test_ambiguous_keys_are_refused_until_told(tmp_path):
    org = ["10", "11", "12"]
    texts = {"0": "a", "1": "b", "2": "c", "10": "x", "11": "y", "12": "z"}
    d = colakg_folder(tmp_path, "both", org, texts)
    with pytest.raises(DataError) as err:
        load_colakg(d)
    msg = str(err.value)
    assert "llm_response_item.json" in msg and "3 of 3 items" in msg
    assert "text_key='original'" in msg and "text_key='mapped'" in msg
    assert "--loader-arg text_key=mapped" in msg
    assert load_colakg(d, text_key="mapped").items["description"].tolist() == ["a", "b", "c"]
    assert load_colakg(d, text_key="original").items["description"].tolist() == ["x", "y", "z"]
    # through load_dataset (by path), as the command line passes --loader-arg
    ds = load_dataset(d, text_key="mapped")
    assert ds.meta["text_source"]["decided"] == "chosen"
    with pytest.raises(ConfigError, match=r"takes no argument\(s\) \['text_kee'\]"):
        load_dataset(d, text_kee="mapped")
    with pytest.raises(ConfigError, match="text_key='index'"):
        load_colakg(d, text_key="index")


def test_decision_rules():
    ev = KeyEvidence
    assert choose_text_key(ev(3260, 3260, 3191, False), "f") == "original"  # CoLaKG ML-1M
    assert choose_text_key(ev(10, 6, 10, False), "f") == "mapped"
    assert choose_text_key(ev(10, 9, 3, False), "f") == "original"  # clear majority
    assert choose_text_key(ev(5, 5, 5, True), "f") == "original"  # ids equal indices
    for o, m in ((9, 8), (4, 1), (10, 10)):  # close, too few, or both complete
        with pytest.raises(DataError, match="cannot tell"):
            choose_text_key(ev(10, o, m, False), "f")


def test_non_text_value_is_an_error(tmp_path):
    d = colakg_folder(tmp_path, "bad", ["5", "6"], {"5": "ok", "6": ["a", "list"]})
    with pytest.raises(DataError, match=r"llm_response_item\.json: the value of key '6' is a list"):
        load_colakg(d)


def test_prepare_command_reports_text_and_takes_loader_args(tmp_path, capsys):
    texts = {"0": "a", "1": "b", "10": "x", "11": "y"}  # 2 items either way: ambiguous
    d = colakg_folder(tmp_path, "both", ["10", "11", "12"], texts)
    assert main(["prepare", "--dataset", str(d), "--valid-ratio", "0"]) == 2
    assert "cannot tell" in capsys.readouterr().err
    rc = main(
        ["prepare", "--dataset", str(d), "--valid-ratio", "0", "--loader-arg", "text_key=mapped"]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "Cleaning both:" in out
    assert "keyed by mapped item ids (chosen): 2 of 3 items got text" in out
