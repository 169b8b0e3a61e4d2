"""How the feedback stores' SQL differs (:class:`Dialect`), and the statements and row
decoding :class:`~lgrec.store.template.FeedbackStoreBase` builds from it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any


@dataclass(frozen=True)
class Dialect:
    """How a backend's SQL differs (placeholders, table names, clock, ordering).

    Attributes:
        mark: the driver's placeholder (``?`` sqlite3, ``%s`` psycopg).
        prefix: prefix of the table names (``events``, ``users``, ``items``, ``tombstones``).
        json_mark: placeholder of a JSON value (``%s::jsonb`` in PostgreSQL).
        now: SQL of the current time in Unix seconds, or ``None``: the client's clock
            (:func:`time.time`) is sent as a parameter.
        seq: the column that grows with every user/item/tombstone row (``rowid``, ``seq``).
        collate: appended to ``ORDER BY`` of ids so that they sort byte-wise.
        all_rows: the ``LIMIT`` value meaning no limit.
    """

    mark: str
    prefix: str = ""
    json_mark: str = "?"
    now: str | None = None
    seq: str = "rowid"
    collate: str = ""
    all_rows: int | None = -1

    def table(self, name: str) -> str:
        return self.prefix + name


FIELDS = {
    "user": ("user_id", "text", "attributes"),
    "item": ("item_id", "title", "description", "categories"),
}
"""The columns a caller sets, key first (``created_at`` is the store's)."""
COLUMNS = {
    "user": ("user_id", "text", "created_at", "attributes"),
    "item": ("item_id", "title", "description", "categories", "created_at"),
}
"""The columns of a user/item as the store returns them."""
JSON_FIELDS = frozenset({"attributes", "categories"})


@cache
def watermarks_sql(d: Dialect) -> str:
    """The watermarks query (built once per dialect: every request of a server runs it)."""
    maxima = [f"(SELECT max(id) FROM {d.table('events')})"] + [
        f"(SELECT max({d.seq}) FROM {d.table(t)})" for t in ("users", "items", "tombstones")
    ]
    return "SELECT " + ", ".join(maxima)


def excluded(fields: Sequence[str]) -> str:
    return ", ".join(f"{f} = excluded.{f}" for f in fields)


def decoded(row: dict[str, Any]) -> dict[str, Any]:
    """A user/item row with its JSON column decoded (SQLite stores text; psycopg decodes
    ``jsonb`` itself)."""
    for f in JSON_FIELDS & row.keys():
        if isinstance(row[f], str):
            row[f] = json.loads(row[f])
    return row
