"""Where a graph store is and how to log in to it, from flags and the environment.

Used by ``lgrec graph ...``, ``lgrec serve --graph-path/--graph-uri`` and ``lgrec train
--graph-path``. The backend follows from what is given (``--backend`` overrides):

==========================  ==========  =====================================================
given                       backend     store
==========================  ==========  =====================================================
``path`` (a directory)      ladybug     embedded LadybugDB (``buffer_pool_mb`` of page cache)
``redis://``, ``rediss://``  falkordb    FalkorDB over its Redis protocol; ``database`` is the
                                        graph name (default ``lgrec``)
``bolt://``, ``neo4j://``    bolt        Neo4j (``database``: its database; server default
 (``+s``, ``+ssc`` too)                 when unset), or FalkorDB's Bolt port
==========================  ==========  =====================================================

Secrets never come from the command line: the user name is ``user`` or
``$LGREC_GRAPH_USER``, the password ``$LGREC_GRAPH_PASSWORD`` or the first line of the file
named by ``password_file`` / ``$LGREC_GRAPH_PASSWORD_FILE``; the database is ``database`` or
``$LGREC_GRAPH_DATABASE``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from lgrec.errors import ConfigError

if TYPE_CHECKING:
    from lgrec.store.graphdb import GraphStore

ENV_USER = "LGREC_GRAPH_USER"
ENV_PASSWORD = "LGREC_GRAPH_PASSWORD"
ENV_PASSWORD_FILE = "LGREC_GRAPH_PASSWORD_FILE"
ENV_DATABASE = "LGREC_GRAPH_DATABASE"
SCHEMES = {
    "redis": "falkordb",
    "rediss": "falkordb",
    "bolt": "bolt",
    "bolt+s": "bolt",
    "bolt+ssc": "bolt",
    "neo4j": "bolt",
    "neo4j+s": "bolt",
    "neo4j+ssc": "bolt",
}


def backend_for(path: str | Path | None, uri: str | None, backend: str | None = None) -> str:
    """The backend named by ``backend``, else the one ``path``/``uri`` imply (table above)."""
    if path and uri:
        raise ConfigError("give a graph store --path (LadybugDB) or --uri (a server), not both")
    if backend:
        if backend == "ladybug" and not path:
            raise ConfigError("--backend ladybug needs --path DIR (the database directory)")
        if backend != "ladybug" and not uri:
            raise ConfigError(f"--backend {backend} needs --uri (e.g. redis:// or bolt://)")
        return backend
    if path:
        return "ladybug"
    if not uri:
        raise ConfigError("no graph store given: --path DIR (LadybugDB) or --uri URI (a server)")
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    if scheme not in SCHEMES:
        raise ConfigError(
            f"graph store URI {uri!r}: expected redis://HOST:PORT (FalkorDB) or "
            "bolt://HOST:PORT / neo4j://HOST:PORT (Neo4j)"
        )
    return SCHEMES[scheme]


def graph_password(password_file: str | Path | None = None) -> str | None:
    """The password from ``password_file`` (or ``$LGREC_GRAPH_PASSWORD_FILE``: its first
    line), else ``$LGREC_GRAPH_PASSWORD``; None when neither is set."""
    file = password_file or os.environ.get(ENV_PASSWORD_FILE)
    if file:
        try:
            lines = Path(file).read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise ConfigError(f"cannot read the graph store password file {file}: {e}") from e
        return lines[0] if lines else ""
    return os.environ.get(ENV_PASSWORD) or None


def connect_graph_store(
    *,
    path: str | Path | None = None,
    uri: str | None = None,
    backend: str | None = None,
    user: str | None = None,
    database: str | None = None,
    password_file: str | Path | None = None,
    buffer_pool_mb: int | None = None,
    read_only: bool = False,
) -> GraphStore:
    """Open the graph store given by flags and environment (module docstring).

    ``read_only`` opens a LadybugDB directory read-only (several processes may share it)
    and creates no schema on a server; :meth:`GraphStore.query` is read-only either way.
    """
    from lgrec.store.graphdb import open_graph_store

    kind = backend_for(path, uri, backend)
    if kind == "ladybug":
        kw: dict = {"path": path, "read_only": read_only}
        if buffer_pool_mb is not None:
            if buffer_pool_mb < 1:
                raise ConfigError(f"--buffer-pool-mb must be ≥ 1, got {buffer_pool_mb}")
            kw["buffer_pool_size"] = int(buffer_pool_mb) << 20
        return open_graph_store("ladybug", **kw)
    user = user or os.environ.get(ENV_USER) or None
    database = database or os.environ.get(ENV_DATABASE) or None
    kw = {"uri": uri, "user": user, "password": graph_password(password_file)}
    kw["create_schema"] = not read_only
    if kind == "falkordb":
        return open_graph_store("falkordb", graph=database or "lgrec", **kw)
    return open_graph_store(kind, database=database, **kw)
