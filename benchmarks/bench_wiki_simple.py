"""Benchmark: `cmisc wiki-pairs` vs gensim's `segment_wiki` on Simple-English-style pages.

    .venv/bin/python benchmarks/bench_wiki_simple.py [--mb 68] [--workers 1 2] [--rounds 1] [--no-multistream]

Input: the real 7-page Simple English Wikipedia excerpt
(``../shared/realdata/wiki/simplewiki-2019-7pages.xml.bz2``: April, August,
Art, A, Air, a project page, Autonomous communities of Spain) repeated with new
page ids and titles until the XML is about ``--mb`` MB. Unlike gensim's
enwiki excerpt (``bench_wiki.py``: heavy in templates and references, half
redirects), these pages are link- and list-dense and every article has
images, so every page goes through the wikitext parser: the hard case for us.

The input is written twice: as one bz2 stream (``make_repeated``) and as a
multistream file (a header stream, then one stream per 100 pages, as
Wikimedia publishes ``pages-articles-multistream.xml.bz2``), where ours
splits the decompression too across ``--workers``.

Both tools run in fresh subprocesses on the same bz2 file with the same
worker count (``bench_wiki.run``); gensim is skipped when not installed. The
last lines estimate the time for the whole Simple English Wikipedia (about
250,000 articles) from the measured articles per second.
"""

from __future__ import annotations

import argparse
import bz2
import importlib.util
import math
import os
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_wiki import make_repeated, run

REPO = Path(__file__).resolve().parents[1]
SIMPLE = REPO.parent / "shared" / "realdata" / "wiki" / "simplewiki-2019-7pages.xml.bz2"
FULL_SIMPLE_ARTICLES = 250_000


def make_multistream(dump: Path, times: int, out: Path, per_stream: int = 100) -> None:
    """``make_repeated``'s pages, written as a header stream, streams of
    ``per_stream`` pages and a footer stream."""
    xml = bz2.decompress(dump.read_bytes()).decode("utf-8")
    head, rest = xml.split("<page>", 1)
    body, tail = ("<page>" + rest).rsplit("</page>", 1)
    pages = re.findall(r"<page>.*?</page>", body + "</page>", flags=re.DOTALL)
    with open(out, "wb") as f:
        f.write(bz2.compress(head.encode()))
        chunk: list[str] = []
        for k in range(times):
            for page in pages:
                if k:
                    page = re.sub(r"(<page>\s*<title>)([^<]*)", lambda m, k=k: f"{m.group(1)}{m.group(2)} ({k})", page)
                    page = re.sub(r"(</ns>\s*<id>)(\d+)",
                                  lambda m, k=k: f"{m.group(1)}{int(m.group(2)) + k * 10_000_000}", page)
                chunk.append("  " + page + "\n")
                if len(chunk) == per_stream:
                    f.write(bz2.compress("".join(chunk).encode()))
                    chunk = []
        if chunk:
            f.write(bz2.compress("".join(chunk).encode()))
        f.write(bz2.compress(tail.encode()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dump", type=Path, default=SIMPLE, help="the excerpt to repeat")
    ap.add_argument("--mb", type=float, default=68.0, help="XML size to reach, MB")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=1, help="runs per cell; the fastest is shown")
    ap.add_argument("--no-multistream", action="store_true", help="only the single-stream file")
    args = ap.parse_args()
    if not args.dump.exists():
        sys.exit(f"{args.dump}: not found (pass --dump)")
    xml_mb = len(bz2.decompress(args.dump.read_bytes())) / 1e6
    times = max(1, math.ceil(args.mb / xml_mb))
    tools = ["gensim", "ours"] if importlib.util.find_spec("gensim") else ["ours"]

    with tempfile.TemporaryDirectory(prefix="bench-wiki-simple-") as tmpdir:
        tmp = Path(tmpdir)
        big = tmp / f"simple-x{times}.xml.bz2"
        make_repeated(args.dump, times, big)
        files = {"1 stream": big}
        if not args.no_multistream:
            files["multistream"] = tmp / f"simple-x{times}-multistream.xml.bz2"
            make_multistream(args.dump, times, files["multistream"])
        with bz2.open(big) as f:
            n_pages = sum(line.count(b"<page>") for line in f)
        print(f"input: {args.dump.name} x {times} = {n_pages} pages, {xml_mb * times:.1f} MB XML, "
              f"{big.stat().st_size / 1e6:.1f} MB bz2")
        header = (f"{'file':>11} {'tool':>7} {'proc':>4} {'seconds':>8} {'pages/s':>8} {'MB/s xml':>9} "
                  f"{'vs gensim':>9} {'CPU s':>6}  output")
        print(header)
        print("-" * len(header))
        best_rate = 0.0
        for (name, path), w in [(f, w) for f in files.items() for w in args.workers]:
            results: dict[str, dict] = {}
            for _ in range(args.rounds):
                for tool in tools:
                    r = run(tool, path, w, tmp)
                    if tool not in results or r["seconds"] < results[tool]["seconds"]:
                        results[tool] = r
            for tool in tools:
                r = results[tool]
                s = r["seconds"]
                ratio = f"{results['gensim']['seconds'] / s:>8.2f}x" if "gensim" in results else f"{'-':>9}"
                out = (f"{r['pairs']} pairs from {r['articles']} articles" if tool == "ours"
                       else f"{r['articles']} articles (sections only)")
                print(f"{name:>11} {tool:>7} {w:>4} {s:>8.2f} {n_pages / s:>8.1f} {xml_mb * times / s:>9.2f} {ratio} "
                      f"{r['cpu']:>6.1f}  {out}")
                if tool == "ours":
                    best_rate = max(best_rate, r["articles"] / s)
        print("\nvs gensim = gensim seconds / this tool's seconds (> 1: faster than segment_wiki).")
        print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        hours = FULL_SIMPLE_ARTICLES / best_rate / 3600
        print(f"estimate, whole Simple English Wikipedia ({FULL_SIMPLE_ARTICLES:,} articles) at the best "
              f"{best_rate:.0f} articles/s: {hours * 60:.0f} min (an upper bound: real articles are "
              "mostly short stubs, and pages without image markup skip the parser)")


if __name__ == "__main__":
    main()
