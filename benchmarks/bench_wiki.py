"""Benchmark: `cmisc wiki-pairs` vs gensim's `segment_wiki` on a real dump excerpt.

    .venv/bin/python benchmarks/bench_wiki.py [--dump PATH] [--repeat 10] [--workers 1 2]

Input: gensim's own test excerpt of a 2016 English Wikipedia dump (206 pages,
1.7 MB bz2, 6.1 MB XML, 1,055 image links) unless --dump is given, and the
same file made ``--repeat`` times longer (the pages repeated with new page ids
and titles), to check that memory stays flat while the input grows.

Each run is a fresh subprocess, so its peak RSS (``ru_maxrss`` of the process
and of its pool children) is its own. Both tools read the same bz2 file with
the same number of worker processes. gensim's ``segment_and_write_all_articles``
always starts a pool (``workers`` parse processes plus the reading process);
ours parses in the reading process when ``workers == 1`` and starts a pool of
``workers`` parsers otherwise. gensim extracts section text only (regex markup
filter); ours extracts sections, images, captions and pairs (mwparserfromhell)
and writes validated Parquet.
"""

from __future__ import annotations

import argparse
import bz2
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

GENSIM_DUMP = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"

_CHILD = r"""
import json, os, resource, sys, time
tool, dump, out, workers = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
if tool == "ours":
    from cmisc_model.sources.wiki_dump import dump_to_pairs
else:
    import logging
    logging.disable(logging.INFO)
    from gensim.scripts.segment_wiki import segment_and_write_all_articles
t = time.perf_counter()  # imports excluded: both pay them once per run
c = os.times()
if tool == "ours":
    s = dump_to_pairs(dump, out, workers=workers)
    info = {"pages": s["pages_seen"], "articles": s["articles"], "pairs": s["pairs"]}
else:
    segment_and_write_all_articles(dump, out, workers=workers)
    info = {"articles": sum(1 for _ in open(out, encoding="utf-8"))}
info["seconds"] = time.perf_counter() - t
e = os.times()  # CPU of this process and its (reaped) pool children: load-independent
info["cpu"] = (e.user + e.system + e.children_user + e.children_system
               - c.user - c.system - c.children_user - c.children_system)
# VmHWM is this process's own peak (ru_maxrss survives execve on Linux and
# would report the parent's peak); children = the largest pool process.
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
info["rss_self_mb"] = int(hwm) / 1024
info["rss_children_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps(info))
"""


def find_gensim_dump() -> Path:
    import gensim

    path = Path(gensim.__file__).parent / "test" / "test_data" / GENSIM_DUMP
    if not path.exists():
        sys.exit(f"{path}: not found (pass --dump)")
    return path


def make_repeated(dump: Path, times: int, out: Path) -> None:
    """The dump's pages ``times`` times; copies get new page ids and titles."""
    with bz2.open(dump) as f:
        xml = f.read().decode("utf-8")  # the 1x excerpt only (a few MB)
    head, rest = xml.split("<page>", 1)
    body, tail = ("<page>" + rest).rsplit("</page>", 1)
    body += "</page>"
    with bz2.open(out, "wt", encoding="utf-8") as f:
        f.write(head)
        for k in range(times):
            if k == 0:
                f.write(body)
                continue
            copy = re.sub(r"(<page>\s*<title>)([^<]*)", lambda m, k=k: f"{m.group(1)}{m.group(2)} ({k})", body)
            copy = re.sub(r"(</ns>\s*<id>)(\d+)", lambda m, k=k: f"{m.group(1)}{int(m.group(2)) + k * 10_000_000}", copy)
            f.write(copy)
        f.write(tail)


def run(tool: str, dump: Path, workers: int, tmp: Path) -> dict:
    out = tmp / f"{tool}-{workers}.{'parquet' if tool == 'ours' else 'jsonl'}"
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, tool, str(dump), str(out), str(workers)],
        capture_output=True, text=True, check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dump", type=Path, default=None)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=2, help="runs per cell; the fastest is shown")
    args = ap.parse_args()
    dump = args.dump or find_gensim_dump()

    with tempfile.TemporaryDirectory(prefix="bench-wiki-") as tmpdir:
        tmp = Path(tmpdir)
        big = tmp / f"x{args.repeat}.xml.bz2"
        make_repeated(dump, args.repeat, big)
        inputs = {"1x": dump, f"{args.repeat}x": big}
        sizes, pages = {}, {}
        for name, path in inputs.items():
            n_bytes = n_pages = 0
            with bz2.open(path) as f:
                for line in f:
                    n_bytes += len(line)
                    n_pages += line.count(b"<page>")
            sizes[name] = (path.stat().st_size / 1e6, n_bytes / 1e6)
            pages[name] = n_pages

        print(f"input: {dump.name}; {args.repeat}x = the pages repeated with new ids")
        for name in inputs:
            print(f"  {name}: {pages[name]} pages, {sizes[name][0]:.2f} MB bz2, {sizes[name][1]:.2f} MB XML")
        print()
        header = (f"{'input':>5} {'tool':>7} {'proc':>4} {'seconds':>8} {'pages/s':>8} "
                  f"{'MB/s bz2':>9} {'MB/s xml':>9} {'vs gensim':>9} {'CPU s':>6} "
                  f"{'peak RSS MB (main+child)':>25}  output")
        print(header)
        print("-" * len(header))
        for name, path in inputs.items():
            for w in args.workers:
                results: dict[str, dict] = {}
                for _ in range(args.rounds):  # interleaved; keep each tool's fastest round
                    for tool in ("gensim", "ours"):
                        r = run(tool, path, w, tmp)
                        if tool not in results or r["seconds"] < results[tool]["seconds"]:
                            results[tool] = r
                for tool in ("gensim", "ours"):
                    r = results[tool]
                    s = r["seconds"]
                    ratio = results["gensim"]["seconds"] / s
                    out = (f"{r['pairs']} pairs from {r['articles']} articles" if tool == "ours"
                           else f"{r['articles']} articles (sections only)")
                    print(f"{name:>5} {tool:>7} {w:>4} {s:>8.2f} {pages[name] / s:>8.1f} "
                          f"{sizes[name][0] / s:>9.2f} {sizes[name][1] / s:>9.2f} {ratio:>8.2f}x "
                          f"{r['cpu']:>6.1f} "
                          f"{r['rss_self_mb']:>12.0f} + {r['rss_children_mb']:>8.0f}  {out}")
        print("\nvs gensim = gensim seconds / this tool's seconds (> 1: faster than segment_wiki).")
        print("CPU s = user + system seconds of the run and its pool processes (load-independent).")
        print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
