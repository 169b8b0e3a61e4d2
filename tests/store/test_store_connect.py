"""Where a graph store is and how to log in (``lgrec.store.connect``): backends from flags and
URIs, user/password/database from the environment, and the CLI against real servers."""

from __future__ import annotations

import json

import pytest

from lgrec.errors import ConfigError
from lgrec.store import GraphStoreError
from lgrec.store.connect import backend_for, connect_graph_store, graph_password
from tests.store.test_store_pipeline import write_lastfm


@pytest.fixture(autouse=True)
def _no_graph_env(monkeypatch):
    for name in ("USER", "PASSWORD", "PASSWORD_FILE", "DATABASE"):
        monkeypatch.delenv(f"LGREC_GRAPH_{name}", raising=False)


def test_backend_follows_path_uri_or_flag(tmp_path):
    assert backend_for(tmp_path, None) == "ladybug"
    for uri, kind in [
        ("redis://127.0.0.1:6379", "falkordb"),
        ("rediss://h:1", "falkordb"),
        ("bolt://127.0.0.1:7687", "bolt"),
        ("neo4j+s://db.example:7687", "bolt"),
        ("BOLT://h:1", "bolt"),
    ]:
        assert backend_for(None, uri) == kind, uri
    assert backend_for(None, "redis://h:1", "bolt") == "bolt"  # the flag wins
    bad = [
        ((tmp_path, "bolt://h:1", None), "not both"),
        ((None, None, None), "no graph store given"),
        ((None, "http://h:1", None), "redis://"),
        ((None, "h:7687", None), "bolt://"),
        ((None, "bolt://h:1", "ladybug"), "--path"),
        ((tmp_path, None, "bolt"), "--uri"),
    ]
    for args, message in bad:
        with pytest.raises(ConfigError, match=message):
            backend_for(*args)


def test_password_from_file_or_environment(tmp_path, monkeypatch):
    assert graph_password() is None
    monkeypatch.setenv("LGREC_GRAPH_PASSWORD", "from-env")
    assert graph_password() == "from-env"
    pw = tmp_path / "pw"
    pw.write_text("s3cret with spaces\nsecond line\n")
    assert graph_password(pw) == "s3cret with spaces"  # the file wins, first line only
    monkeypatch.setenv("LGREC_GRAPH_PASSWORD_FILE", str(pw))
    assert graph_password() == "s3cret with spaces"
    with pytest.raises(ConfigError, match="password file"):
        graph_password(tmp_path / "missing")


def test_user_and_database_from_the_environment(falkordb_server, monkeypatch):
    """$LGREC_GRAPH_USER (a Redis ACL user) and $LGREC_GRAPH_DATABASE (the graph name)."""
    import redis

    admin = redis.Redis(port=falkordb_server.redis_port, password=falkordb_server.password)
    admin.execute_command("ACL", "SETUSER", "lgrec", "on", ">user-pw", "~*", "&*", "+@all")
    admin.close()
    monkeypatch.setenv("LGREC_GRAPH_USER", "lgrec")
    monkeypatch.setenv("LGREC_GRAPH_PASSWORD", "user-pw")
    monkeypatch.setenv("LGREC_GRAPH_DATABASE", "recs")
    with connect_graph_store(uri=falkordb_server.uri) as store:
        assert store.graph_name == "recs"
        store.query("CREATE (:Category {name: 'x'})", write=True)
    monkeypatch.setenv("LGREC_GRAPH_PASSWORD", "wrong")
    with pytest.raises(GraphStoreError, match="cannot reach FalkorDB") as err:
        connect_graph_store(uri=falkordb_server.uri)
    assert "user-pw" not in str(err.value) and "wrong" not in str(err.value)
    # the default user with the server password sees the same graph (flags beat the env)
    monkeypatch.setenv("LGREC_GRAPH_PASSWORD", falkordb_server.password)
    monkeypatch.delenv("LGREC_GRAPH_USER")
    with connect_graph_store(uri=falkordb_server.uri, database="recs", read_only=True) as store:
        assert store.query("MATCH (c:Category) RETURN c.name AS n") == [{"n": "x"}]
    other = connect_graph_store(uri=falkordb_server.uri, database="other", read_only=True)
    with pytest.raises(GraphStoreError, match="no graph 'other'"):
        other.query("MATCH (c:Category) RETURN c.name AS n")
    other.close()


def test_cli_export_over_bolt_and_read_back(
    tmp_path, planted_social, capsys, monkeypatch, bolt_server
):
    """``lgrec graph export --backend bolt --uri bolt://… --user …`` with the password from
    $LGREC_GRAPH_PASSWORD; FalkorDB's Bolt layer cannot refuse writes, so ``graph query``
    over it is refused and the same graph is read over the Redis protocol."""
    from lgrec.cli import main

    data = write_lastfm(tmp_path / "data", planted_social)
    bolt = ["--backend", "bolt", "--uri", bolt_server.bolt_uri, "--user", "falkordb"]
    monkeypatch.setenv("LGREC_GRAPH_PASSWORD", "wrong")  # (FalkorDB 4.16 lets "" in)
    assert main(["graph", "export", "--dataset", str(data), *bolt]) == 2
    assert "cannot reach the Bolt server" in capsys.readouterr().err
    monkeypatch.setenv("LGREC_GRAPH_PASSWORD", bolt_server.password)
    assert main(["graph", "export", "--dataset", str(data), *bolt]) == 0
    assert "→ bolt bolt://" in capsys.readouterr().out
    count = "MATCH (u:User) RETURN count(u) AS n"
    assert main(["graph", "query", count, *bolt]) == 2
    assert "GRAPH.RO_QUERY" in capsys.readouterr().err
    # FalkorDB's Bolt layer writes into its graph "falkordb"
    redis = ["--uri", bolt_server.uri, "--database", "falkordb", "--json"]
    assert main(["graph", "query", count, *redis]) == 0
    assert json.loads(capsys.readouterr().out) == {"n": planted_social.n_users}
    # the user name may come from the environment instead of --user
    monkeypatch.setenv("LGREC_GRAPH_USER", "falkordb")
    assert main(["graph", "export", "--dataset", str(data), *bolt[:4], "--replace"]) == 0
    assert "replaced: User=" in capsys.readouterr().out
