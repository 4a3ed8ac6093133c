#!/usr/bin/env python3
"""DuckDB peer of iob's analytics benchmark (issue 5).

Answers the three benchmark questions with SQL over the same day-partitioned Parquet files iob
reads (``DIR/events/day=YYYY-MM-DD/*.parquet``, hive partitioning, the compacted events schema)
and prints one JSON line per question, keys sorted:

    {"answer": ..., "question": "funnel", "seconds": <median of R runs>}

The answers must be byte-identical to
``cargo run --release -p iob-analyses --example parquet_answers -- DIR`` (the definitions live in
``crates/iob-analyses/src/questions.rs``; change both together):

1. funnel: Product Viewed -> Product Added -> Order Completed (or the --step names), ordered,
   7-day window (edge inclusive), persons reaching each step. A person reaches step k when some chain of step events
   in stream order (ts, seq) starts at a step-1 event t0 and has step k within t0 + 7 days. The
   SQL keeps, like the Rust kernel, the latest possible start for each step (a running max over
   earlier rows), which gives the exact level.
2. retention: first-time cohorts by the ISO week (Monday start; week number = (day + 3) // 7 with
   day = epoch_ms // 86400000) of the person's first Order Completed (or --retention-start;
   empty: any event); the person returns at week
   offset i (0..7) with any event in week cohort + i at or after the cohort event.
3. trends: per UTC day with at least one Product Viewed (or --trends-event; empty: any event),
   its count and distinct persons.

Setup (once): python3 -m venv $HOME/.cache/iob-venv && $HOME/.cache/iob-venv/bin/pip install duckdb==2.0.0
Run:          $HOME/.cache/iob-venv/bin/python bench/analytics/duckdb_peer.py DIR [--runs 5] [--threads 2]
"""

import argparse
import datetime
import json
import os
import sys
import time

import duckdb

WINDOW_MS = 7 * 86_400_000
DAY_MS = 86_400_000
STEPS = ["Product Viewed", "Product Added", "Order Completed"]
EPOCH = datetime.date(1970, 1, 1)


def date_label(day):
    return (EPOCH + datetime.timedelta(days=day)).isoformat()


def q(name):
    return "'" + name.replace("'", "''") + "'"


def funnel_sql(steps):
    """Ordered funnel over distinct step names. Stream order is the key k = (ts, seq) packed in a
    HUGEINT (seq < 2^48). s1 = step-1 rows (start = own time); s_k = each step-k row ASOF-joined to the latest
    s_(k-1) row of the person before it, kept when within the window of that row's start. Starts
    only grow along a person's stream, so the latest earlier chain has the latest start: the level
    is exact, as in the Rust kernel. (ASOF joins ran ~2x faster here than running-max windows.)"""
    names = ", ".join(q(s) for s in steps)
    case = " ".join(f"WHEN {q(s)} THEN {i + 1}" for i, s in enumerate(steps))
    ctes = [
        f"e AS (SELECT person, epoch_ms(ts) AS t, epoch_ms(ts)::HUGEINT * 281474976710656 + seq AS k, "
        f"CASE event {case} END AS step FROM events WHERE event IN ({names}))",
        "s1 AS (SELECT person, k, t AS start FROM e WHERE step = 1)",
    ]
    for n in range(2, len(steps) + 1):
        ctes.append(
            f"s{n} AS (SELECT a.person, a.k, p.start FROM (SELECT * FROM e WHERE step = {n}) a "
            f"ASOF JOIN s{n - 1} p ON a.person = p.person AND a.k > p.k "
            f"WHERE a.t - p.start <= {WINDOW_MS})"
        )
    counts = ", ".join(f"(SELECT count(DISTINCT person) FROM s{n})" for n in range(1, len(steps) + 1))
    return "WITH " + ",\n".join(ctes) + f"\nSELECT {counts}"


def retention_sql(start):
    """The return event is any event, so offset 0 (the cohort week, which holds the cohort event
    itself) always counts the whole cohort and later weeks only hold later events: "at or after
    the cohort event" reduces to the distinct (person, week) pairs of cohort members."""
    where = f"WHERE event = {q(start)}" if start else ""
    return f"""
WITH c AS (
    SELECT person, (min(epoch_ms(ts)) // {DAY_MS} + 3) // 7 AS cweek
    FROM events {where} GROUP BY person
),
w AS (
    SELECT DISTINCT e.person, (epoch_ms(e.ts) // {DAY_MS} + 3) // 7 AS week
    FROM events e SEMI JOIN c ON e.person = c.person
)
SELECT cweek, -1 AS off, count(*) AS n FROM c GROUP BY cweek
UNION ALL
SELECT c.cweek, w.week - c.cweek AS off, count(*) AS n FROM w JOIN c ON w.person = c.person
WHERE w.week - c.cweek BETWEEN 0 AND 7 GROUP BY c.cweek, off
"""


def trends_sql(event):
    where = f"WHERE event = {q(event)}" if event else ""
    return f"""
SELECT epoch_ms(ts) // {DAY_MS} AS d, count(*) AS events, count(DISTINCT person) AS persons
FROM events {where}
GROUP BY d ORDER BY d
"""


def funnel(con, args):
    counts = con.execute(funnel_sql(args.step)).fetchone()
    return {"steps": args.step, "persons": list(counts)}


def retention(con, args):
    cohorts = {}
    for cweek, off, n in con.execute(retention_sql(args.retention_start)).fetchall():
        row = cohorts.setdefault(cweek, {"size": 0, "returning": [0] * 8})
        if off == -1:
            row["size"] = n
        else:
            row["returning"][off] = n
    return {
        "cohorts": [
            {"cohort": date_label(w * 7 - 3), "size": v["size"], "returning": v["returning"]}
            for w, v in sorted(cohorts.items())
        ]
    }


def trends(con, args):
    rows = con.execute(trends_sql(args.trends_event)).fetchall()
    return {"days": [{"day": date_label(d), "events": e, "persons": p} for d, e, p in rows]}


QUESTIONS = {"funnel": funnel, "retention": retention, "trends": trends}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir", help="directory holding events/day=YYYY-MM-DD/*.parquet (or that events directory)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", choices=sorted(QUESTIONS))
    ap.add_argument("--step", action="append", help="funnel step event (repeat; default the generated journeys')")
    ap.add_argument("--retention-start", default="Order Completed", help="cohort event ('' = any event)")
    ap.add_argument("--trends-event", default="Product Viewed", help="trended event ('' = any event)")
    args = ap.parse_args()
    args.step = args.step or STEPS
    if len(set(args.step)) != len(args.step):
        ap.error("funnel steps must be distinct event names")
    events = os.path.join(args.dir, "events") if os.path.isdir(os.path.join(args.dir, "events")) else args.dir
    con = duckdb.connect()
    con.execute(f"SET threads = {args.threads}")
    con.execute("SET TimeZone = 'UTC'")
    glob = os.path.join(events, "day=*", "*.parquet").replace("'", "''")
    con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet('{glob}', hive_partitioning = true)")
    for name, fn in QUESTIONS.items():
        if args.only and args.only != name:
            continue
        times = []
        answer = None
        for _ in range(max(1, args.runs)):
            t = time.perf_counter()
            answer = fn(con, args)
            times.append(time.perf_counter() - t)
        times.sort()
        median = times[(len(times) - 1) // 2]
        print(json.dumps({"question": name, "seconds": median, "answer": answer},
                         sort_keys=True, separators=(",", ":")))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
