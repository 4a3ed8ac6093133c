#!/usr/bin/env python3
"""DuckDB peer of iob's analytics benchmark (issue 5).

Answers the three benchmark questions with SQL over the same day-partitioned Parquet files iob
reads (``DIR/events/day=YYYY-MM-DD/*.parquet``, hive partitioning, the compacted events schema)
and prints one JSON line per question, keys sorted:

    {"answer": ..., "question": "funnel", "seconds": <median of R runs>}

The answers must be byte-identical to
``cargo run --release -p iob-analyses --example parquet_answers -- DIR`` (the definitions live in
``crates/iob-analyses/src/questions.rs``; change both together):

1. funnel: Product Viewed -> Product Added -> Order Completed, ordered, 7-day window (edge
   inclusive), persons reaching each step. A person reaches step k when some chain of step events
   in stream order (ts, seq) starts at a step-1 event t0 and has step k within t0 + 7 days. The
   SQL keeps, like the Rust kernel, the latest possible start for each step (a running max over
   earlier rows), which gives the exact level.
2. retention: first-time cohorts by the ISO week (Monday start; week number = (day + 3) // 7 with
   day = epoch_ms // 86400000) of the person's first Order Completed; the person returns at week
   offset i (0..7) with any event in week cohort + i at or after the cohort event.
3. trends: per UTC day with at least one Product Viewed, its count and distinct persons.

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


FUNNEL_SQL = f"""
WITH e AS (
    SELECT person, epoch_ms(ts) AS t, seq,
           CASE event WHEN '{STEPS[0]}' THEN 1 WHEN '{STEPS[1]}' THEN 2 ELSE 3 END AS step
    FROM events
    WHERE event IN ('{STEPS[0]}', '{STEPS[1]}', '{STEPS[2]}')
),
s1 AS (
    -- latest step-1 time strictly before the row in stream order
    SELECT person, t, seq, step,
           max(CASE WHEN step = 1 THEN t END) OVER (
               PARTITION BY person ORDER BY t, seq
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS last1
    FROM e
),
s2 AS (
    -- a step-2 row continues a chain started at last1 when within the window
    SELECT person, t, seq, step,
           CASE WHEN step = 2 AND t - last1 <= {WINDOW_MS} THEN last1 END AS start2
    FROM s1
),
s3 AS (
    SELECT person, t, step, start2,
           max(start2) OVER (
               PARTITION BY person ORDER BY t, seq
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS last2
    FROM s2
)
SELECT count(DISTINCT person) FILTER (WHERE step = 1),
       count(DISTINCT person) FILTER (WHERE start2 IS NOT NULL),
       count(DISTINCT person) FILTER (WHERE step = 3 AND t - last2 <= {WINDOW_MS})
FROM s3
"""

RETENTION_SQL = f"""
WITH c AS (
    SELECT person, min(epoch_ms(ts)) AS t0
    FROM events WHERE event = 'Order Completed' GROUP BY person
),
cw AS (
    SELECT person, t0, (t0 // {DAY_MS} + 3) // 7 AS cweek FROM c
),
r AS (
    SELECT cw.cweek, (epoch_ms(e.ts) // {DAY_MS} + 3) // 7 - cw.cweek AS off, e.person
    FROM events e JOIN cw ON e.person = cw.person
    WHERE epoch_ms(e.ts) >= cw.t0
)
SELECT cweek, -1 AS off, count(*) AS n FROM cw GROUP BY cweek
UNION ALL
SELECT cweek, off, count(DISTINCT person) AS n FROM r WHERE off BETWEEN 0 AND 7 GROUP BY cweek, off
"""

TRENDS_SQL = f"""
SELECT epoch_ms(ts) // {DAY_MS} AS d, count(*) AS events, count(DISTINCT person) AS persons
FROM events WHERE event = 'Product Viewed'
GROUP BY d ORDER BY d
"""


def funnel(con):
    a, b, c = con.execute(FUNNEL_SQL).fetchone()
    return {"steps": STEPS, "persons": [a, b, c]}


def retention(con):
    cohorts = {}
    for cweek, off, n in con.execute(RETENTION_SQL).fetchall():
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


def trends(con):
    rows = con.execute(TRENDS_SQL).fetchall()
    return {"days": [{"day": date_label(d), "events": e, "persons": p} for d, e, p in rows]}


QUESTIONS = {"funnel": funnel, "retention": retention, "trends": trends}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir", help="directory holding events/day=YYYY-MM-DD/*.parquet (or that events directory)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", choices=sorted(QUESTIONS))
    args = ap.parse_args()
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
            answer = fn(con)
            times.append(time.perf_counter() - t)
        times.sort()
        median = times[(len(times) - 1) // 2]
        print(json.dumps({"question": name, "seconds": median, "answer": answer},
                         sort_keys=True, separators=(",", ":")))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
