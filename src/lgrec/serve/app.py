"""The HTTP API (FastAPI): recommendations, similar items, cold start, feedback, explanations.

``create_app(ServeSettings(model=DIR))`` builds the app; ``lgrec serve`` runs it with uvicorn
(``app_from_env`` is the factory each uvicorn worker calls). Endpoints:

=====================  =====  ===========================================================
``GET /recommend``     read   top-k items for a user (``query``, ``exclude_seen``, ``explain``)
``GET /similar``       read   items associated with an item (collaborative + text cosine)
``GET /explain``       read   why an item suits a user: history items, categories, sentence
                             (+ graph-store paths with ``graph_path``)
``GET /users``         read   list user ids; ``GET /users/{id}``: profile and history
``POST /users``        write  new user from liked items and/or text, usable at once
``POST /items``        write  new item placed by its text neighbours, recommendable at once
``POST /feedback``     write  durable event (201; 200 for a repeated idempotency key)
``GET /health``        open   liveness and sizes;  ``GET /metrics``: Prometheus text format
``GET /ui``            open   the web page (static HTML + JS)
``GET /docs``          open   OpenAPI pages (Swagger UI; ``/redoc``), assets served locally
=====================  =====  ===========================================================

With several uvicorn workers each process holds its own :class:`ServeState`; they stay in
step through the shared feedback store (see :mod:`lgrec.serve.state`). ``/metrics`` reports
totals over all workers: each counts requests in memory and publishes its counts to a directory
the workers share (``metrics_dir``; :meth:`ServeSettings.to_env` makes a temporary one for a
``--workers N`` run), which the answering worker sums (:mod:`lgrec.serve.metrics`).
``/docs`` and ``/redoc`` load their JavaScript and CSS from this server, so they work on a
closed network (:mod:`lgrec.serve.docs`).
With ``graph_path`` (``--graph-path DIR``, a LadybugDB store) or ``graph_uri``
(``--graph-uri URI``, a FalkorDB or Neo4j server) the server also opens a graph store
read-only: ``/explain`` adds its user → item paths and ``/recommend?candidates=graph`` ranks
only the user's two-hop items (:mod:`lgrec.serve.graph`).
"""

from __future__ import annotations

import gc
import logging
import os
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
from fastapi import Depends, FastAPI, Query, Response
from fastapi.responses import FileResponse, PlainTextResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from lgrec.errors import ConfigError
from lgrec.privacy.serving import ErasureAwareGraph, install_erasure, user_mapper
from lgrec.ranking import topk_stable
from lgrec.serve import schemas as S
from lgrec.serve.docs import DOCS_PATHS, install_docs
from lgrec.serve.extras import install_extras
from lgrec.serve.graph import GraphCompanion
from lgrec.serve.index import parse_index_options
from lgrec.serve.limits import HeaderLimitMiddleware, OptionsMiddleware, RateLimitMiddleware
from lgrec.serve.metrics import Metrics, MetricsMiddleware
from lgrec.serve.security import (
    ApiKeyMiddleware,
    BodyLimitMiddleware,
    SecurityHeadersMiddleware,
    api_key_dependency,
    install_error_handlers,
)
from lgrec.serve.settings import ServeSettings
from lgrec.serve.state import ServeState
from lgrec.store.base import open_feedback_store

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
UserQ = Annotated[str, Query(min_length=1, max_length=256, description="user id")]
ItemQ = Annotated[str, Query(min_length=1, max_length=256, description="item id")]
K = Annotated[int, Query(ge=1, le=1000, description="how many items")]
Text = Annotated[
    str | None, Query(min_length=1, max_length=500, pattern=S.NOT_BLANK, description="free text")
]
Blend = Annotated[float, Query(ge=0, le=1, description="weight of collaborative")]
QueryWeight = Annotated[float, Query(ge=0, le=10, description="weight of the query")]
Limit = Annotated[int, Query(ge=1, le=1000)]
Candidates = Annotated[
    Literal["all", "graph"],
    Query(description="'all': rank every item; 'graph': the graph store's two-hop items"),
]


def _items(st: ServeState, idx: Any, scores: Any, reasons: list[str] | None = None) -> list:
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


def _graph_top(
    st: ServeState,
    graph: GraphCompanion,
    user: str,
    u: int,
    k: int,
    *,
    exclude_seen: bool,
    query: str | None,
    query_weight: float,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Top-``k`` of the user's two-hop items by model score (ties: lower item row first);
    ``None`` when the graph store does not know the user (then the caller ranks every item)."""
    ids = graph.candidates(user)
    if ids is None:
        return None
    rows = np.unique(np.array([st.item_index(i) for i in ids if st.has_item(i)], dtype=np.int64))
    if exclude_seen:
        rows = rows[~np.isin(rows, st.history(u))]
    s = st.scores(u, query, query_weight)[torch.from_numpy(rows)]
    v, ix = topk_stable(s, min(k, len(rows)))
    return rows[ix.numpy()], v.numpy()


def create_app(settings: ServeSettings, *, state: ServeState | None = None) -> FastAPI:
    """The FastAPI app serving ``settings.model`` (or an already built ``state``)."""
    if settings.threads:
        torch.set_num_threads(settings.threads)
    pid = user_mapper(settings.model, settings.pseudonymize, settings.pseudonym_key_file)
    metrics = Metrics(settings.metrics_dir, interval=settings.metrics_interval)
    graph = None
    if settings.graph_path or settings.graph_uri:
        graph = GraphCompanion(settings.graph_path, uri=settings.graph_uri)
    if state is None:
        store = open_feedback_store(settings.store_path)
        state = ServeState(
            settings.model, store, text=settings.text, online_lr=settings.online_lr,
            score_cache_mb=settings.score_cache_mb, sync_interval=settings.sync_seconds,
            index=settings.index, index_settings=parse_index_options(settings.index_options),
        )  # fmt: skip
    st = state
    if graph is not None:  # leaves out erased users still in the read-only store
        graph = ErasureAwareGraph(graph, st)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        metrics.start()
        if st.n_users and st.n_items:  # warm the scoring path before the first request
            st.sync()
            st.recommend(0, min(10, st.n_items))
        # The model, catalogue and id maps are ~0.5 M long-lived Python objects: a full
        # garbage collection walking them stalls a request for ~0.3 s. Freeze them (they
        # live until shutdown) so that collections only walk request garbage.
        gc.collect()
        gc.freeze()
        yield
        gc.unfreeze()
        metrics.stop()
        st.close()
        if graph is not None:
            graph.close()

    app = FastAPI(
        title="lgrec",
        version="0.1.0",
        description="Recommendations from language models + graph neural networks.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.serve = st
    app.state.metrics = metrics
    app.state.graph = graph
    install_error_handlers(app)
    install_docs(app)
    read = Depends(api_key_dependency(settings.api_key, required=settings.protect_reads))
    write = Depends(api_key_dependency(settings.api_key))
    errs = {c: {"model": S.ErrorBody} for c in (400, 401, 403, 404, 409, 413, 422)}

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui")

    @app.get("/health", response_model=S.Health)
    def health() -> S.Health:
        return S.Health(
            status="ok",
            model=st.model.name,
            dataset=st.dataset,
            n_users=st.n_users,
            n_items=st.n_items,
            text=st.text_enabled,
            last_event=st.last_event,
        )

    @app.get("/metrics", response_class=PlainTextResponse, dependencies=[read])
    def prometheus() -> PlainTextResponse:
        gauges = {
            "lgrec_users": st.n_users,
            "lgrec_items": st.n_items,
            "lgrec_feedback_last_event_id": st.last_event,
        }
        return PlainTextResponse(
            metrics.render(gauges), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    @app.get("/recommend", response_model=S.RecommendResponse, responses=errs, dependencies=[read])
    def recommend(
        user: UserQ,
        k: K = 10,
        query: Text = None,
        exclude_seen: bool = True,
        query_weight: QueryWeight = 1.0,
        explain: bool = False,
        candidates: Candidates = "all",
    ) -> S.RecommendResponse:
        """Top-``k`` items for ``user``; ``query`` steers the list with free text; with
        ``explain`` every item carries a one-sentence reason. ``candidates=graph`` ranks only
        the items two hops from the user in the graph store (server run with
        ``--graph-path`` or ``--graph-uri``); a user the store lacks gets the full ranking
        (``candidates: all``)."""
        if candidates == "graph" and graph is None:
            raise ConfigError(
                "candidates=graph needs a graph store: start the server with --graph-path DIR "
                "or --graph-uri URI"
            )
        st.sync(wait=False)  # never queue behind a thread applying events
        u = st.user_index(pid(user))
        kw: dict[str, Any] = dict(exclude_seen=exclude_seen, query=query, query_weight=query_weight)
        got = _graph_top(st, graph, pid(user), u, k, **kw) if candidates == "graph" else None
        if got is None:
            candidates = "all"
            got = st.recommend(u, k, **kw)
        idx, sc = got
        reasons = None
        if explain:
            reasons = [e.sentence for e in st.explanations(u, idx, query)]
        return S.RecommendResponse(
            user=user, k=k, query=query, candidates=candidates, items=_items(st, idx, sc, reasons)
        )

    @app.get("/similar", response_model=S.SimilarResponse, responses=errs, dependencies=[read])
    def similar(
        item: ItemQ,
        k: K = 10,
        blend: Blend = 0.5,
    ) -> S.SimilarResponse:
        """Items associated with ``item``: ``blend · cos(e_i, e_j) + (1 − blend) · cos(t_i, t_j)``
        (model-vector cosine + text-embedding cosine; text part dropped without text)."""
        st.sync()
        i = st.item_index(item)
        idx, sc = st.similar(i, k, blend)
        return S.SimilarResponse(
            item_id=item,
            title=st.titles[i],
            blend=blend if st.T is not None else 1.0,
            items=_items(st, idx, sc),
        )

    @app.get("/explain", response_model=S.ExplainResponse, responses=errs, dependencies=[read])
    def explain(user: UserQ, item: ItemQ, query: Text = None) -> S.ExplainResponse:
        """Why ``item`` suits ``user``: the history items most similar to it (model vectors
        and text), the categories they share, and one sentence; with a graph store, also its
        paths from the user to the item (strongest first)."""
        st.sync()
        u, i = st.user_index(pid(user)), st.item_index(item)
        ex = st.explanations(u, np.array([i]), query)[0]
        because = [
            S.Because(
                item_id=st.item_ids[h],
                title=st.titles[h],
                contribution=c,
                collaborative=cf,
                semantic=sm,
            )
            for h, c, cf, sm in zip(ex.because, ex.contribution, ex.collaborative, ex.semantic)
        ]
        return S.ExplainResponse(
            user=user,
            item_id=item,
            title=st.titles[i],
            score=float(st.scores(u)[i]),
            because=because,
            shared_categories=ex.shared_categories,
            text_match=ex.text_match,
            query_match=ex.query_match,
            sentence=ex.sentence,
            graph_paths=None
            if graph is None
            else [S.GraphPath(**p) for p in graph.paths(pid(user), item)],
        )

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

    @app.post(
        "/users",
        status_code=201,
        response_model=S.UserCreated,
        responses=errs,
        dependencies=[write],
    )
    def create_user(body: S.UserIn) -> S.UserCreated:
        """A new user from ``liked_items`` and/or ``text``; recommendations work at once."""
        st.add_user(pid(body.user_id), body.text, body.liked_items)
        return S.UserCreated(
            user_id=body.user_id, n_liked=len(set(body.liked_items)), has_text=bool(body.text)
        )

    install_erasure(app, st, pid, write, graph)  # DELETE /users/{id} (lgrec.privacy)
    install_extras(app, st, pid, read, errs)  # /categories, /friends (lgrec.serve.extras)

    @app.post(
        "/items",
        status_code=201,
        response_model=S.ItemCreated,
        responses=errs,
        dependencies=[write],
    )
    def create_item(body: S.ItemIn) -> S.ItemCreated:
        """A new item placed at the weighted mean of its text neighbours' model vectors."""
        i = st.add_item(body.item_id, body.title, body.description, body.categories)
        idx, sc = st.similar(i, 5, blend=0.0)
        return S.ItemCreated(item_id=body.item_id, title=body.title, neighbours=_items(st, idx, sc))

    @app.post(
        "/feedback",
        status_code=201,
        response_model=S.FeedbackOut,
        responses={
            200: {"model": S.FeedbackOut, "description": "replay: the key's stored event"},
            **errs,
        },
        dependencies=[write],
    )
    def feedback(body: S.FeedbackIn, response: Response) -> S.FeedbackOut:
        """Store the event durably (201), then fold it into the user's vector. A repeated
        ``idempotency_key`` with the same event is a replay: 200 with the stored event, and
        nothing changes; the key with another event is refused (409)."""
        if body.event == "rating":
            lo, hi = st.rating_scale
            if not lo <= body.value <= hi:
                raise ConfigError(f"value: a rating must be within [{lo}, {hi}], got {body.value}")
        eid, created = st.add_feedback(
            pid(body.user), body.item, body.event, body.value, body.timestamp, body.idempotency_key
        )
        response.status_code = 201 if created else 200
        return S.FeedbackOut.stored(st.store.get_event(eid), created, body.user)

    @app.get("/ui", include_in_schema=False)
    def ui() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/ui/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(BodyLimitMiddleware, max_body=settings.max_body)
    app.add_middleware(RateLimitMiddleware, rate=settings.rate_limit, burst=settings.rate_burst)
    open_paths = ("/health", "/ui", "/openapi.json", *DOCS_PATHS)

    def protect(method: str, path: str) -> bool:
        if method not in ("GET", "HEAD"):
            if method == "DELETE":
                return path.startswith("/users/")
            return method == "POST" and path in ("/feedback", "/users", "/items")
        return settings.protect_reads and path != "/" and not path.startswith(open_paths)

    app.add_middleware(ApiKeyMiddleware, key=settings.api_key, protect=protect)
    app.add_middleware(OptionsMiddleware, routes=lambda: app.router.routes)
    app.add_middleware(HeaderLimitMiddleware, max_header=settings.max_header)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` / workers: settings from the environment."""
    logging.basicConfig(level=os.environ.get("LGREC_LOG_LEVEL", "INFO").upper())
    return create_app(ServeSettings.from_env())
