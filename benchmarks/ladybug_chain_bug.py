"""LadybugDB's count over a filtered 3-relationship chain against brute force (docs/graph.md).

``python benchmarks/ladybug_chain_bug.py`` runs the minimal repro (3 edges) and prints rows,
``count(*)`` and the ``WITH``-stage count; ``--search N`` also draws N random small graphs
and compares, for each of the 7 non-empty subsets of {r1, r2, r3} filtered by
``rating >= 4``, LadybugDB's ``count(*)`` and row count with a pandas join. Needs only
``ladybug``, ``numpy`` and ``pandas``, so it runs under any ladybug version
(``pip install ladybug==X`` in a fresh venv).
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
import pandas as pd

SCHEMA = (
    "CREATE NODE TABLE U(id INT64, PRIMARY KEY(id))",
    "CREATE NODE TABLE I(id INT64, PRIMARY KEY(id))",
    "CREATE REL TABLE R(FROM U TO I, rating DOUBLE)",
)
CHAIN = "MATCH (u:U)-[r1:R]->(i:I)<-[r2:R]-(v:U)-[r3:R]->(j:I) "
REPRO = [(1, 101, 4.0), (2, 101, 3.0), (2, 103, 5.0)]
SUBSETS = [s for k in (1, 2, 3) for s in itertools.combinations(("r1", "r2", "r3"), k)]


def build(edges: list[tuple[int, int, float]]):
    import ladybug

    conn = ladybug.Connection(ladybug.Database(":memory:", buffer_pool_size=64 << 20))
    for statement in SCHEMA:
        conn.execute(statement)
    conn.execute("UNWIND $x AS k CREATE (:U {id: k})", {"x": sorted({u for u, _, _ in edges})})
    conn.execute("UNWIND $x AS k CREATE (:I {id: k})", {"x": sorted({i for _, i, _ in edges})})
    for u, i, r in edges:
        conn.execute(
            "MATCH (a:U {id: $u}), (b:I {id: $i}) CREATE (a)-[:R {rating: $r}]->(b)",
            {"u": u, "i": i, "r": float(r)},
        )
    return conn


def brute(edges: list[tuple[int, int, float]], subset: tuple[str, ...]) -> int:
    """Number of (r1, r2, r3) chains u→i←v→j whose filtered relationships have rating ≥ 4
    (a relationship may repeat, as in LadybugDB's and FalkorDB's answers)."""
    e = pd.DataFrame(edges, columns=["u", "i", "r"])
    e1, e2, e3 = (e[e.r >= 4] if name in subset else e for name in ("r1", "r2", "r3"))
    a = e1[["u", "i"]].merge(e2[["u", "i"]].rename(columns={"u": "v"}), on="i")
    return len(a.merge(e3[["u", "i"]].rename(columns={"u": "v", "i": "j"}), on="v"))


def where(subset: tuple[str, ...]) -> str:
    return "WHERE " + " AND ".join(f"{r}.rating >= 4" for r in subset) + " "


def main() -> None:
    import ladybug

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--search", type=int, default=0, help="random graphs to compare")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    print("ladybug", ladybug.Database.get_version())
    conn = build(REPRO)
    rows = conn.execute(CHAIN + where(("r2",)) + "RETURN u.id, i.id, v.id, j.id").get_all()
    count = conn.execute(CHAIN + where(("r2",)) + "RETURN count(*)").get_all()[0][0]
    via_with = CHAIN.rstrip() + " WITH r2 WHERE r2.rating >= 4 RETURN count(*)"
    print(f"repro (r2 filtered): rows {len(rows)}, count(*) {count}, "
          f"WITH-stage count {conn.execute(via_with).get_all()[0][0]}, "
          f"brute force {brute(REPRO, ('r2',))}")  # fmt: skip
    rng = np.random.default_rng(args.seed)
    bad = graphs = 0
    for _ in range(args.search):
        n_u, n_i, n_e = rng.integers(2, 6), rng.integers(2, 6), rng.integers(3, 16)
        pairs = sorted({(int(rng.integers(n_u)), int(rng.integers(n_i))) for _ in range(n_e)})
        edges = [(u, 100 + i, float(rng.integers(1, 6))) for u, i in pairs]
        conn = build(edges)
        wrong = 0
        for subset in SUBSETS:
            want = brute(edges, subset)
            n = conn.execute(CHAIN + where(subset) + "RETURN count(*)").get_all()[0][0]
            got = len(conn.execute(CHAIN + where(subset) + "RETURN u.id, j.id").get_all())
            wrong += n != want or got != want
        bad += wrong
        graphs += wrong > 0
    if args.search:
        print(f"random search: {args.search} graphs × {len(SUBSETS)} filters, {bad} wrong "
              f"answers on {graphs} graphs")  # fmt: skip


if __name__ == "__main__":
    main()
