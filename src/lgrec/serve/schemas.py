"""Typed request and response bodies of the HTTP API (pydantic v2; shown at ``/docs``).

Request bodies forbid unknown fields, ids and idempotency keys are 1–256 characters without
control characters (no newlines), texts must hold more than spaces, numbers must be finite
(``NaN``/``Infinity`` are rejected), timestamps are Unix seconds up to
:data:`~lgrec.store.records.MAX_TIMESTAMP`, and lists and texts are bounded, so a client error
is always a 4xx and never reaches the model. Rules that span fields are in the JSON schema too
(``if``/``then``, ``anyOf``), so every body the schema allows is accepted.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from lgrec.store.records import MAX_KEY, MAX_TIMESTAMP

Id = Annotated[
    str,
    StringConstraints(
        min_length=1,
        max_length=256,
        pattern=r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$",
    ),
]
"""An external user/item id: 1–256 characters, not only spaces, no control characters."""
NOT_BLANK = r"\S"
"""Pattern of free texts: at least one character that is not white space."""
Text = Annotated[str, StringConstraints(min_length=1, max_length=4000, pattern=NOT_BLANK)]
Category = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=NOT_BLANK)]
Key = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_KEY, pattern=r"^[^\x00-\x1f\x7f]+$")
]
"""An idempotency key: 1–256 characters, no control characters."""
Finite = Annotated[float, Field(strict=True, allow_inf_nan=False)]
"""A JSON number (not a string or boolean), finite."""
EventType = Literal["click", "purchase", "rating", "like", "view"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(BaseModel):
    """Every 4xx/5xx response."""

    error: str = Field(description="machine-readable code, e.g. not_found, validation_error")
    detail: Any = Field(description="what was wrong (text, or a list of field errors)")


class ItemOut(BaseModel):
    item_id: str
    title: str
    score: float
    categories: list[str] = []
    reason: str | None = Field(None, description="one-sentence explanation (explain=true)")


class RecommendResponse(BaseModel):
    user: str
    k: int
    query: str | None = None
    candidates: str = Field(
        "all", description="'all' (every item ranked) or 'graph' (two-hop items of the graph store)"
    )
    items: list[ItemOut]


class SimilarResponse(BaseModel):
    item_id: str
    title: str
    blend: float = Field(description="β: weight of the collaborative cosine (1 − β: text)")
    items: list[ItemOut]


class UserIn(_In):
    """A new user: from liked items (collaborative) and/or a text about their taste (at least
    one of the two)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {"required": ["text"], "properties": {"text": {"type": "string"}}},
                {"required": ["liked_items"], "properties": {"liked_items": {"minItems": 1}}},
            ]
        },
    )

    user_id: Id
    text: Text | None = Field(None, description="free text, e.g. 'I love space operas'")
    liked_items: list[Id] = Field(default_factory=list, max_length=1000)

    @model_validator(mode="after")
    def _has_a_signal(self) -> UserIn:
        if self.text is None and not self.liked_items:
            raise ValueError("a new user needs 'text' or at least one of 'liked_items'")
        return self


class UserCreated(BaseModel):
    user_id: str
    n_liked: int
    has_text: bool


class ItemIn(_In):
    """A new item: placed in the model space by its text neighbours."""

    item_id: Id
    title: Annotated[str, StringConstraints(min_length=1, max_length=500, pattern=NOT_BLANK)]
    description: (
        Annotated[str, StringConstraints(min_length=1, max_length=10_000, pattern=NOT_BLANK)] | None
    ) = None
    categories: list[Category] = Field(default_factory=list, max_length=50)


class ItemCreated(BaseModel):
    item_id: str
    title: str
    neighbours: list[ItemOut] = Field(description="nearest existing items (where it was placed)")


class FeedbackIn(_In):
    """One user event; stored durably before the response, then folded in online. A
    ``rating`` event needs a numeric ``value``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "if": {"properties": {"event": {"const": "rating"}}, "required": ["event"]},
            "then": {"properties": {"value": {"type": "number"}}, "required": ["value"]},
        },
    )

    user: Id
    item: Id
    event: EventType
    value: Finite | None = Field(None, description="the rating of a 'rating' event")
    timestamp: (
        Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0, le=MAX_TIMESTAMP)] | None
    ) = Field(None, description="Unix seconds (default: now)")
    idempotency_key: Key | None = Field(
        None, description="repeat it to retry safely: the same event again is a replay (200)"
    )

    @model_validator(mode="after")
    def _rating_has_value(self) -> FeedbackIn:
        if self.event == "rating" and self.value is None:
            raise ValueError("a 'rating' event needs a 'value'")
        return self


class FeedbackOut(BaseModel):
    """The stored event (on a replay: the one first stored with the key)."""

    id: int = Field(description="event id in the feedback store")
    created: bool = Field(description="false for a replay of a stored idempotency key")
    user: str
    item: str
    event: str
    value: float | None = Field(None, description="the rating of a 'rating' event")
    timestamp: float = Field(description="Unix seconds the event happened (as stored)")

    @classmethod
    def stored(cls, ev: dict, created: bool, user: str) -> FeedbackOut:
        """From the stored event ``ev`` (:meth:`FeedbackStore.get_event`); ``user`` is the id
        the client sent (the store may hold its pseudonym)."""
        value = ev["value"]
        value = None if value is None or value != value else value  # NaN: no value
        return cls(
            id=ev["id"], created=created, user=user, item=ev["item_id"], event=ev["event"],
            value=value, timestamp=ev["ts"],
        )  # fmt: skip


class Because(BaseModel):
    item_id: str
    title: str
    contribution: float
    collaborative: float = Field(description="cosine of the two items' model vectors")
    semantic: float | None = Field(description="cosine of the two items' text embeddings")


class GraphPath(BaseModel):
    kind: str = Field(description="'similar' (via SIMILAR_TO) or 'co_user' (via another user)")
    path: list[str] = Field(description="node ids: user, history item, [other user,] item")
    score: float = Field(description="link similarity, or how many items the other user shares")


class ExplainResponse(BaseModel):
    user: str
    item_id: str
    title: str
    score: float
    because: list[Because]
    shared_categories: list[str]
    text_match: float | None = Field(None, description="cosine of the user's text and the item")
    query_match: float | None = Field(None, description="cosine of the query and the item")
    sentence: str
    graph_paths: list[GraphPath] | None = Field(
        None,
        description="paths in the graph store (server started with --graph-path or --graph-uri)",
    )


class HistoryItem(BaseModel):
    item_id: str
    title: str
    categories: list[str] = []


class UserProfile(BaseModel):
    user_id: str
    text: str | None
    new: bool = Field(description="created at run time (not in the trained model)")
    n_history: int
    online_events: int
    history: list[HistoryItem] = Field(description="most recent last; at most `limit` items")


class UserList(BaseModel):
    total: int
    users: list[str]


class Health(BaseModel):
    status: str
    model: str
    dataset: str
    n_users: int
    n_items: int
    text: bool
    last_event: int
