"""Word2Vec throughput (words/s) on this machine: iterable vs corpus_file mode.

    .venv/bin/python benchmarks/bench_word2vec.py [--repeat-corpus 20] [--epochs 5]

Corpus: gensim's lee_background.cor (real news text) run through the project's
TextNormaliser, repeated to a measurable size. Same settings as the `vocab`
stage (300-d skip-gram, window 5, 10 negatives). gensim's corpus_file mode
reads a LineSentence file in C threads without the GIL, so it is the one that
scales with workers; the stage uses the iterable mode with 1 worker because
that is reproducible.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import gensim
from gensim.models import Word2Vec

from cmisc_model.corpus.vocab import stable_hash
from cmisc_model.text.normalise import TextNormaliser


def corpus(repeat: int) -> list[list[str]]:
    path = Path(gensim.__file__).parent / "test" / "test_data" / "lee_background.cor"
    norm = TextNormaliser()
    docs = [[t for s in norm.sentences(line) for t in s] for line in path.read_text(encoding="utf-8").splitlines()]
    return [d for d in docs if d] * repeat


def run(texts, workers: int, epochs: int, corpus_file: str | None = None) -> tuple[float, int]:
    kw = {"vector_size": 300, "window": 5, "min_count": 1, "sg": 1, "negative": 10, "workers": workers, "seed": 1,
          "hashfxn": stable_hash}
    model = Word2Vec(**kw)
    if corpus_file:
        model.build_vocab(corpus_file=corpus_file)
        t0 = time.perf_counter()
        model.train(corpus_file=corpus_file, total_examples=model.corpus_count,
                    total_words=model.corpus_total_words, epochs=epochs)
    else:
        model.build_vocab(texts)
        t0 = time.perf_counter()
        model.train(texts, total_examples=len(texts), epochs=epochs)
    dt = time.perf_counter() - t0
    return dt, model.corpus_total_words * epochs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat-corpus", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    texts = corpus(args.repeat_corpus)
    with tempfile.TemporaryDirectory() as tmp:
        cf = os.path.join(tmp, "corpus.txt")
        Path(cf).write_text("\n".join(" ".join(t) for t in texts) + "\n", encoding="utf-8")
        rows = []
        for label, workers, mode in [("iterable", 1, None), ("iterable", 2, None), ("corpus_file", 1, cf), ("corpus_file", 2, cf)]:
            dt, words = run(texts, workers, args.epochs, mode)
            rows.append((label, workers, words, dt, words / dt))
    base = rows[0][4]
    print(f"{len(texts)} documents, {rows[0][2] // args.epochs} words per epoch, {args.epochs} epochs, {os.cpu_count()} cores")
    print(f"{'mode':12} {'workers':>7} {'seconds':>8} {'words/s':>10} {'vs iterable/1':>14}")
    for label, workers, _, dt, wps in rows:
        print(f"{label:12} {workers:>7} {dt:>8.2f} {wps:>10,.0f} {wps / base:>13.2f}x")


if __name__ == "__main__":
    main()
