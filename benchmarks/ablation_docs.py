"""The rows of a data set's block in docs/ablation.md, read back: rerunning some configurations
(``--configs``) keeps the others as documented, even when ``runs/`` is gone (a fresh checkout).

A block (written by ``benchmarks/ablation.py``) is a ``Commands:`` line with each command in
backticks and "(N seeds per row", a test table and a validation table. Each table row is
``| label | mean ± std | … | fit s |`` (``**`` marks the best mean, ``–`` a stratum with no
users); the header names the sizes "(n = K users)" of the sparse-user and long-tail strata.
:func:`kept_rows` turns the rows not being rerun back into the summary records that
``ablation.summarise`` makes (means and stds as printed, to 4 decimals), and keeps the commands
that produced them.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

#: the table's metric columns, in order (``ablation.table``)
COLUMNS = ("Recall@20", "NDCG@20", "<=5:Recall@20", "6-20:Recall@20", ">20:Recall@20",
           "tail:Recall@20")  # fmt: skip
_NAN = float("nan")


def block_of(text: str, dataset: str) -> str | None:
    """The text between ``<!-- ablation:<dataset> -->`` markers (None when there is none)."""
    start, end = f"<!-- ablation:{dataset} -->", f"<!-- /ablation:{dataset} -->"
    if start not in text or end not in text:
        return None
    return text[text.index(start) + len(start) : text.index(end)]


def _cell(text: str) -> tuple[float, float]:
    """``"**0.1234 ± 0.0005**"`` → (0.1234, 0.0005); ``"–"`` → (nan, nan)."""
    text = text.strip().strip("*")
    if text == "–":
        return _NAN, _NAN
    m = re.fullmatch(r"(-?[\d.]+) ± ([\d.]+)", text)
    if m is None:
        raise ValueError(f"docs/ablation.md: cannot read the table cell {text!r}")
    return float(m[1]), float(m[2])


def _table(lines: list[str], part: str) -> dict[str, dict[str, Any]]:
    """label → {"<part>:<metric>": (mean, std), ..., "fit_s"} for one markdown table."""
    names = [c.strip() for c in lines[0].strip().strip("|").split("|")]
    sizes = {}  # the sparse-user (column 3) and long-tail (column 6) strata's sizes
    for stratum, name in (("<=5", names[3]), ("tail", names[6])):
        n = re.search(r"\(n = (\d+) users\)", name)
        sizes[f"{part}:{stratum}:n_users"] = (float(n[1]) if n else _NAN, 0.0)
    out: dict[str, dict[str, Any]] = {}
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != len(COLUMNS) + 2:
            raise ValueError(f"docs/ablation.md: a {part} row has {len(cells)} cells: {line!r}")
        row: dict[str, Any] = {f"{part}:{c}": _cell(v) for c, v in zip(COLUMNS, cells[1:-1])}
        row.update(sizes)
        row["fit_s"] = float(cells[-1])
        out[cells[0]] = row
    return out


def _tables(block: str) -> list[list[str]]:
    """The markdown tables of ``block``, each as its lines (header, rule, rows)."""
    tables, cur = [], []
    for line in block.splitlines():
        if line.startswith("|"):
            cur.append(line)
        elif cur:
            tables.append(cur)
            cur = []
    return tables + ([cur] if cur else [])


def _configs_of(cmd: str) -> set[str] | None:
    """The labels a documented command ran (None: no ``--configs``, every default row)."""
    args = shlex.split(cmd)
    if "--configs" not in args:
        return None
    return set(args[args.index("--configs") + 1].split(","))


def kept_rows(text: str, dataset: str, rerun: set[str]) -> tuple[dict[str, dict], list[str]]:
    """``(label → summary record, commands)`` for the rows of ``dataset``'s block in the
    docs text ``text`` whose label is not in ``rerun``, and the documented commands that ran
    any of them (in their order). Empty when the block is missing."""
    block = block_of(text, dataset)
    if block is None:
        return {}, []
    head = next((ln for ln in block.splitlines() if ln.startswith("Command")), "")
    cmds = re.findall(r"`([^`]+)`", head)
    seeds = re.search(r"\((\d+)(?:–(\d+))? seeds per row", head)
    n_seeds = int(seeds[2] or seeds[1]) if seeds else 0
    tables = _tables(block)
    if len(tables) != 2:
        raise ValueError(f"docs/ablation.md: the {dataset} block has {len(tables)} tables, not 2")
    test, valid = _table(tables[0], "test"), _table(tables[1], "valid")
    rows = {}
    for label, rec in test.items():
        if label in rerun:
            continue
        if label not in valid:
            raise ValueError(f"docs/ablation.md: {dataset}: {label!r} has no validation row")
        rows[label] = {"config": label, "n_seeds": n_seeds, **rec, **valid[label]}
    ran = [c for c in cmds if (_configs_of(c) is None) or (_configs_of(c) & rows.keys())]
    return rows, ran


__all__ = ["COLUMNS", "block_of", "kept_rows"]
