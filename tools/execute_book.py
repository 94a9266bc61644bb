"""Execute the book's notebooks into the jupyter-cache that Jupyter Book reads: two at a time,
longest first.

``jcache project execute --executor local-parallel`` hands the notebooks to its two workers in
chunks of two, in file order (``multiprocessing.Pool.map`` picks the chunk size), so one worker
can get two of the longest lectures back to back while the other idles at the end. Here every
notebook is its own task, in decreasing order of its last measured `cpu` time (the `cpu` column
of ``book/timing.md``, or of an earlier build here; unknown lectures first): the longest-processing-time-first schedule,
whose makespan is within 4/3 of the best possible.

Usage: ``python tools/execute_book.py CACHE_DIR [--workers 2] [--timeout 3600]``; the notebooks
must already be in the cache's project (``jcache notebook add``). Exits with 1 if any failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from multiprocessing import Pool
from pathlib import Path

from jupyter_cache import get_cache
from jupyter_cache.executors.basic import ExecutionWorkerLocalMProc, ProcessData

ROOT = Path(__file__).resolve().parent.parent
TIMING = ROOT / "book" / "timing.md"
RESULTS = ROOT / "_build" / "results-cpu"


def measured_seconds(timing: Path = TIMING, results: Path = RESULTS) -> dict[str, float]:
    """Lecture name → its last measured `cpu` seconds: from the table of the timing page (rows
    ``| name | ci | cpu |``; a dash gives no entry), overridden by the wall times that an
    earlier build on this machine recorded in ``results`` (``timing/NN_name.json``)."""
    seconds = {}
    if timing.exists():
        for name, cpu in re.findall(
            r"^\|\s*(\d\d_\w+)\s*\|[^|]*\|\s*([\d.]+)\s*\|", timing.read_text(), re.M
        ):
            seconds[name] = float(cpu)
    for record in sorted((results / "timing").glob("*.json")):
        seconds[record.stem] = float(json.loads(record.read_text())["ours"])
    return seconds


def longest_first(uris: list[str], seconds: dict[str, float]) -> list[str]:
    """``uris`` sorted by decreasing measured time; notebooks without a measurement first."""
    return sorted(uris, key=lambda uri: -seconds.get(Path(uri).stem, float("inf")))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cache")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=3600)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cache = get_cache(args.cache)
    records = {r.uri: r for r in cache.list_unexecuted()}
    order = longest_first(list(records), measured_seconds())
    logging.info("executing %d notebook(s), %d at a time: %s", len(order), args.workers, order)
    tasks = [ProcessData(records[u].pk, u, cache, args.timeout, False) for u in order]
    start, results = time.perf_counter(), []
    with Pool(args.workers) as pool:
        for status, uri in pool.imap_unordered(ExecutionWorkerLocalMProc(), tasks, chunksize=1):
            verdict = "done" if status == 0 else "FAILED"
            logging.info("%s after %.0f s: %s", verdict, time.perf_counter() - start, Path(uri).name)
            results.append((status, uri))
    failed = [uri for status, uri in results if status != 0]
    for uri in failed:
        traceback = cache.get_project_record(uri).traceback or "(no traceback recorded)"
        logging.error("failed: %s\n%s", uri, traceback[-3000:])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
