"""Benchmark: TextNormaliser throughput (sentences/s), one process.

    .venv/bin/python benchmarks/bench_text.py [--repeat 5]

Input: gensim's ``lee_background.cor`` (300 Australian news articles in
British spelling, 360 KB; shipped in the gensim wheel). Each article goes
through ``TextNormaliser.sentences`` (sentence split, tokenise, lower-case,
truncate to 50 x 40) without spelling (``source=None``) and with the
British -> American step (``source="bbc"``). Prints the best of ``--repeat``
passes, so that the figure is the code's speed rather than the machine's
noise; single process, no threads (the normaliser is pure Python).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from gensim.test.utils import datapath

from cmisc_model.text.normalise import TextConfig, TextNormaliser
from cmisc_model.text.sentences import split_sentences


def bench(docs: list[str], source: str | None, repeat: int) -> tuple[float, int, int]:
    best = float("inf")
    n_sent = n_tok = 0
    for _ in range(repeat):
        norm = TextNormaliser(TextConfig(max_sentences=10**6, max_tokens=10**6))
        start = time.perf_counter()
        out = [norm.sentences(d, source) for d in docs]
        best = min(best, time.perf_counter() - start)
        n_sent = sum(len(o) for o in out)
        n_tok = sum(len(s) for o in out for s in o)
    return best, n_sent, n_tok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with open(datapath("lee_background.cor"), encoding="utf-8") as f:
        docs = f.read().splitlines()
    print(
        f"lee_background.cor: {len(docs)} documents; python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs visible, 1 process"
    )

    start = time.perf_counter()
    for _ in range(args.repeat):
        n = sum(len(split_sentences(d)) for d in docs)
    split_s = (time.perf_counter() - start) / args.repeat
    print(f"  sentence split only       : {n / split_s:9,.0f} sentences/s")
    for label, source in (
        ("no spelling (source=None)", None),
        ("with spelling (source=bbc)", "bbc"),
    ):
        secs, n_sent, n_tok = bench(docs, source, args.repeat)
        print(
            f"  {label:26s}: {n_sent / secs:9,.0f} sentences/s, {n_tok / secs:10,.0f} tokens/s "
            f"({n_sent} sentences, {n_tok} tokens, {secs * 1000:.0f} ms)"
        )


if __name__ == "__main__":
    main()
