"""Endpoints of the users, items and feedback a server holds (installed by
:func:`lgrec.serve.app.create_app`; the state's methods do the work, :mod:`lgrec.serve.state`).

* ``GET /users`` — user ids, trained users first (erased users left out);
  ``GET /users/{id}`` — a user's text and history, most recent online interactions last;
* ``POST /users`` — a new user from liked items and/or text, recommendable at once (201;
  409 when the id exists);
* ``POST /items`` — a new item placed by its text neighbours, recommendable at once;
* ``POST /feedback`` — a durable event (201), folded into the user's vector; a repeated
  idempotency key with the same event is a replay (200, the stored event), with another event
  a conflict (409). Async: it awaits the process's writer thread instead of holding a thread
  of the pool while the commit's fsync runs (:mod:`lgrec.serve.groupcommit`).
"""

# no `from __future__ import annotations`: FastAPI reads the routes' annotations (Limit is
# local to install_catalog_routes) as objects
import asyncio
from typing import Annotated, Any

from fastapi import Query, Response

from lgrec.errors import ConfigError
from lgrec.serve import schemas as S

__all__ = ["install_catalog_routes", "items_out"]


def items_out(st: Any, idx: Any, scores: Any, reasons: list[str] | None = None) -> list:
    """Item rows ``idx`` with their ``scores`` (and ``reasons``) as :class:`ItemOut` bodies."""
    return [
        S.ItemOut(
            item_id=st.item_ids[i],
            title=st.titles[i],
            score=float(s),
            categories=st.categories[i],
            reason=None if reasons is None else reasons[k],
        )
        for k, (i, s) in enumerate(zip(idx.tolist(), scores.tolist()))
    ]


def install_catalog_routes(app: Any, st: Any, pid: Any, read: Any, write: Any, errs: dict) -> None:
    """Add the endpoints of the module docstring to ``app`` (``pid`` maps client user ids,
    ``read``/``write`` are the API-key dependencies, ``errs`` the documented error bodies)."""
    from lgrec.serve.app import Limit

    @app.get("/users", response_model=S.UserList, dependencies=[read])
    def list_users(
        limit: Limit = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> S.UserList:
        """User ids (trained users first, then users created at run time)."""
        st.sync()
        ids = st.listed_user_ids()  # erased users left out
        return S.UserList(total=len(ids), users=ids[offset : offset + limit])

    @app.get(
        "/users/{user_id:path}", response_model=S.UserProfile, responses=errs, dependencies=[read]
    )
    def profile(user_id: str, limit: Limit = 20) -> S.UserProfile:
        """A user's text and history (most recent online interactions last)."""
        st.sync()
        u = st.user_index(pid(user_id))
        hist = st.history(u)
        return S.UserProfile(
            user_id=user_id,
            text=st.user_text.get(u),
            new=u >= st.n_base_users,
            n_history=len(hist),
            online_events=st.online_events.get(u, 0),
            history=[
                S.HistoryItem(
                    item_id=st.item_ids[i], title=st.titles[i], categories=st.categories[i]
                )
                for i in hist[-limit:].tolist()
            ],
        )

    def create(path: str, model: Any, responses: dict | None = None) -> Any:
        """The route decorator of a write that creates (POST, 201, the write key, the
        documented errors and ``responses``)."""
        return app.post(
            path,
            status_code=201,
            response_model=model,
            responses={**(responses or {}), **errs},
            dependencies=[write],
        )

    @create("/users", S.UserCreated)
    def create_user(body: S.UserIn) -> S.UserCreated:
        """A new user from ``liked_items`` and/or ``text``; recommendations work at once."""
        st.add_user(pid(body.user_id), body.text, body.liked_items)
        return S.UserCreated(
            user_id=body.user_id, n_liked=len(set(body.liked_items)), has_text=bool(body.text)
        )

    @create("/items", S.ItemCreated)
    def create_item(body: S.ItemIn) -> S.ItemCreated:
        """A new item placed at the weighted mean of its text neighbours' model vectors."""
        i = st.add_item(body.item_id, body.title, body.description, body.categories)
        idx, sc = st.similar(i, 5, blend=0.0)
        return S.ItemCreated(
            item_id=body.item_id, title=body.title, neighbours=items_out(st, idx, sc)
        )

    replay = {200: {"model": S.FeedbackOut, "description": "replay: the key's stored event"}}

    @create("/feedback", S.FeedbackOut, replay)
    async def feedback(body: S.FeedbackIn, response: Response) -> S.FeedbackOut:
        """Store the event durably (201), then fold it into the user's vector. A repeated
        ``idempotency_key`` with the same event is a replay: 200 with the stored event, and
        nothing changes; the key with another event is refused (409)."""
        if body.event == "rating":
            lo, hi = st.rating_scale
            if not lo <= body.value <= hi:
                raise ConfigError(f"value: a rating must be within [{lo}, {hi}], got {body.value}")
        event = dict(user_id=pid(body.user), item_id=body.item, event=body.event,
                     value=body.value, ts=body.timestamp,
                     idempotency_key=body.idempotency_key)  # fmt: skip
        # awaited, not waited for in a pool thread: the writer thread commits it (grouped with
        # the other queued events), applies it, then answers (lgrec.serve.groupcommit)
        got = await asyncio.wrap_future(st.submit_feedback(event))
        response.status_code = 201 if got.created else 200
        return S.FeedbackOut.stored(got.row, got.created, body.user)
