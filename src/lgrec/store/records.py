"""The rules every feedback store applies to what it is given, whatever its database.

A store (SQLite :class:`~lgrec.store.feedback.FeedbackStore`, or another one behind the same
interface) validates each event with :func:`validate_event` before writing anything, and
decides whether a repeated idempotency key is a true replay with :func:`check_replay`:

* an event is ``(user_id, item_id, event, value, ts, idempotency_key)``: ids are non-empty
  strings without control characters, ``event`` one of :data:`EVENT_TYPES`, ``value`` a finite
  number (required for ``rating``), ``ts`` Unix seconds in ``[0, MAX_TIMESTAMP]`` (``None``:
  the store's clock), the key 1–256 characters without control characters;
* :func:`validate_events` applies this to every event of a batch before anything is written;
* a key seen before is a *replay* when the stored event has the same user, item, type and value
  (and the same ``ts`` when the new request gives one): the store then writes nothing and
  answers with the stored event. Otherwise the key was reused for another event: that is a
  :class:`~lgrec.errors.ConflictError` naming both events, and nothing is written.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import pandas as pd

from lgrec.errors import ConflictError, DataError

EVENT_TYPES = ("click", "purchase", "rating", "view", "like")
"""Event names the store accepts; ``rating`` events must carry a value."""

MAX_TIMESTAMP = 1e10
"""Largest accepted event time in Unix seconds (year 2286; a larger one is a unit mistake,
e.g. milliseconds, or garbage such as ``1e308``)."""

EVENT_COLUMNS = (
    "id",
    "user_id",
    "item_id",
    "event",
    "value",
    "ts",
    "idempotency_key",
    "received_at",
)
"""Columns of a stored event, as every store's ``events()`` returns them."""

_EVENT_ARGS = ("user_id", "item_id", "event", "value", "ts", "idempotency_key")
MAX_KEY = 256
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class EventRow(NamedTuple):
    """A validated event; ``ts`` is ``None`` when the caller gave none (the store stamps it)."""

    user_id: str
    item_id: str
    event: str
    value: float | None
    ts: float | None
    idempotency_key: str | None


def check_id(value: Any, name: str, where: str) -> str:
    """``value`` as an id string: non-empty, not only spaces, no control characters."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise DataError(f"{where}: {name} must be a non-empty string, got {type(value).__name__}")
    s = str(value)
    if not s.strip():
        raise DataError(f"{where}: {name} must be a non-empty string, got {value!r}")
    if _CONTROL.search(s):
        raise DataError(f"{where}: {name} must not contain control characters, got {s[:60]!r}")
    return s


def finite(value: Any, name: str, where: str) -> float:
    """``value`` as a finite float (booleans and strings are refused)."""
    if isinstance(value, bool | str):
        raise DataError(f"{where}: {name} must be a number, got {value!r}")
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{where}: {name} must be a number, got {value!r}") from None
    if not math.isfinite(f):
        raise DataError(f"{where}: {name} must be a finite number, got {value!r}")
    return f


def validate_event(
    user_id: Any, item_id: Any, event: Any, value: Any, ts: Any, key: Any, *, where: str
) -> EventRow:
    """The event as an :class:`EventRow`, or :class:`DataError` naming the bad field."""
    uid = check_id(user_id, "user_id", where)
    iid = check_id(item_id, "item_id", where)
    if event not in EVENT_TYPES:
        raise DataError(
            f"{where}: unknown event type {event!r}; expected one of {list(EVENT_TYPES)}"
        )
    val = None if value is None else finite(value, "value", where)
    if event == "rating" and val is None:
        raise DataError(f"{where}: a 'rating' event needs a value (the rating)")
    stamp = None if ts is None else finite(ts, "ts", where)
    if stamp is not None and not 0 <= stamp <= MAX_TIMESTAMP:
        raise DataError(
            f"{where}: ts must be Unix seconds in [0, {MAX_TIMESTAMP:.0e}], got {ts!r} "
            "(milliseconds?)"
        )
    if key is not None:
        if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY:
            raise DataError(
                f"{where}: idempotency_key must be a non-empty string of ≤{MAX_KEY} characters"
            )
        if _CONTROL.search(key):
            raise DataError(f"{where}: idempotency_key must not contain control characters")
    return EventRow(uid, iid, event, val, stamp, key)


def validate_events(events: Iterable[Mapping[str, Any]]) -> list[EventRow]:
    """Every mapping of an ``add_events`` call (the keyword arguments of ``add_event``) as an
    :class:`EventRow`; the first bad one raises :class:`DataError` naming its position."""
    rows = []
    for k, e in enumerate(events):
        if not isinstance(e, Mapping):
            raise DataError(f"add_events: event #{k} is {type(e).__name__}, expected a mapping")
        unknown = set(e) - set(_EVENT_ARGS)
        if unknown:
            raise DataError(f"add_events: event #{k} has unknown field(s) {sorted(unknown)}")
        where = f"add_events: event #{k}"
        rows.append(validate_event(*(e.get(f) for f in _EVENT_ARGS), where=where))
    return rows


def events_frame(rows: list[tuple]) -> pd.DataFrame:
    """The DataFrame of a store's ``events()`` from rows of :data:`EVENT_COLUMNS`."""
    df = pd.DataFrame(rows, columns=list(EVENT_COLUMNS))
    return df.astype({"id": "int64", "value": "float64", "ts": "float64", "received_at": "float64"})


def check_replay(stored: dict[str, Any], new: EventRow) -> None:
    """Raise :class:`ConflictError` unless ``new`` repeats the ``stored`` event of its key.

    ``stored`` has the columns ``id, user_id, item_id, event, value, ts``. A missing value is
    ``None`` or NaN on either side.
    """

    def same_value(a: float | None, b: float | None) -> bool:
        a = None if a is None or math.isnan(a) else a
        return a == b

    same = (
        (stored["user_id"], stored["item_id"], stored["event"])
        == (new.user_id, new.item_id, new.event)
        and same_value(stored["value"], new.value)
        and (new.ts is None or float(stored["ts"]) == new.ts)
    )
    if not same:
        raise ConflictError(
            f"idempotency_key {new.idempotency_key!r} was already used for event "
            f"{stored['id']} {_describe(stored)}; this request is {_describe(new._asdict())}. "
            "Send a new key for a new event (the stored event is unchanged)"
        )


def _describe(e: dict[str, Any]) -> str:
    value = e.get("value")
    v = "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"={value:g}"
    return f"({e['event']}{v} by user {e['user_id']!r} on item {e['item_id']!r})"


def to_json(value: Any, name: str, where: str) -> str:
    """``value`` as compact, sorted JSON (NaN refused), or :class:`DataError`."""
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as e:
        raise DataError(f"{where}: {name} is not JSON-serialisable: {e}") from None
