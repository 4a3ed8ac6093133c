#!/usr/bin/env python3
"""Runs iob's kernels (the parquet_answers example) and the DuckDB peer on the same Parquet
directory, checks that every answer is byte-identical, and prints time ratios.

Usage: python3 bench/analytics/compare.py DIR [--runs 3] [--step NAME ...] [--retention-start NAME]
                                            [--trends-event NAME]   (empty NAME: any event)
Needs: a release build of the example
  (CARGO_TARGET_DIR=... cargo build --release -p iob-analyses --example parquet_answers)
and the DuckDB venv described in duckdb_peer.py. Exits 1 when an answer differs.
"""

import argparse
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def lines(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return {json.loads(l)["question"]: l for l in out.splitlines() if l.strip()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--runs", default="3")
    ap.add_argument("--example", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"),
                                                      "release", "examples", "parquet_answers"))
    ap.add_argument("--python", default=os.path.expanduser("~/.cache/iob-venv/bin/python"))
    args, extra = ap.parse_known_args()  # --step/--retention-start/--trends-event go to both
    iob = lines([args.example, args.dir, "--runs", args.runs] + extra)
    duck = lines([args.python, os.path.join(HERE, "duckdb_peer.py"), args.dir, "--runs", args.runs] + extra)
    strip = lambda l: re.sub(r',"seconds":[^,}]*', "", l)
    ok = True
    print(f"{'question':<10} {'iob s':>8} {'duckdb s':>9} {'ratio':>6}  answers")
    for q in ("funnel", "retention", "trends"):
        same = strip(iob[q]) == strip(duck[q])
        ok &= same
        a, b = json.loads(iob[q])["seconds"], json.loads(duck[q])["seconds"]
        print(f"{q:<10} {a:>8.3f} {b:>9.3f} {a / b:>6.2f}  {'identical' if same else 'DIFFERENT'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
