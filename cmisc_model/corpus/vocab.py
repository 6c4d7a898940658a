"""Vocabulary and Word2Vec, from the autoencoder training split only.

- Vocabulary: tokens seen at least ``min_count`` times (2017: 10) in the
  training split, after the shared ``TextNormaliser``. Ids: 0 = pad,
  1 = unknown, then by descending count (ties alphabetical). Departure from
  2017: 2017 put ``<UNK>`` last (V+1); we put it at 1 so that the table's size
  never depends on it.
- Word2Vec: gensim skip-gram, 300-d, trained on the same training texts with
  out-of-vocabulary tokens replaced by ``<unk>``, so every vocabulary row gets a
  vector. Departure from 2017: TF NCE skip-gram on all three splits; gensim's
  negative sampling on the training split only. Determinism: one worker, a fixed
  seed, and a hash function that does not depend on ``PYTHONHASHSEED``.

Outputs: ``vocab.parquet`` (token, id, count), ``word2vec.parquet`` (token, id,
vector[300]), gensim's native ``word2vec.model``, ``metrics.json``
(vocabulary size, training tokens, out-of-vocabulary rate on validation: what
the data is, so ``dvc metrics diff`` shows only real changes) and
``timings.json`` (seconds and words per second: how fast this machine was; not
a DVC metric). All but ``timings.json`` are byte-identical from run to run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from cmisc_model import schemas as S
from cmisc_model.config import BaseConfig, load_section
from cmisc_model.text.normalise import TextConfig, TextNormaliser

log = logging.getLogger(__name__)

PAD, UNK = "<pad>", "<unk>"


@dataclass
class VocabConfig:
    """params ``vocab``: the vocabulary threshold and the Word2Vec settings."""

    min_count: int = 10
    vector_size: int = 300
    window: int = 5  # 2017's preprocessing used 5, its Word2Vec run 2 (ambiguous); gensim's default
    negative: int = 10  # 2017: 64 NCE samples; 5–20 is gensim's recommended range
    epochs: int = 10
    sample: float = 0.001
    workers: int = 1  # >1 is faster but not reproducible


def stable_hash(text: str) -> int:
    """gensim seeds each word's initial vector with ``hashfxn(word + seed)``;
    Python's ``hash`` changes with PYTHONHASHSEED, this does not."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "little")


def document_tokens(corpus: pa.Table, normaliser: TextNormaliser, split: str) -> Iterator[list[list[str]]]:
    """Token lists per sentence for each pair of ``split`` with a usable image,
    i.e. exactly the texts the autoencoder trains on."""
    cols = corpus.select(["text_blocks", "source", "split", "image_status"]).to_pylist()
    for row in cols:
        if row["split"] == split and row["image_status"] == "ok":
            yield normaliser.blocks(row["text_blocks"], row["source"])


def build_vocab(docs: Iterable[list[list[str]]], min_count: int) -> tuple[pa.Table, Counter]:
    counts: Counter = Counter()
    for sentences in docs:
        for sentence in sentences:
            counts.update(sentence)
    kept = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
    unk_count = sum(c for t, c in counts.items() if c < min_count)
    rows = [{"token": PAD, "id": 0, "count": 0}, {"token": UNK, "id": 1, "count": unk_count}]
    rows += [{"token": t, "id": i, "count": counts[t]} for i, t in enumerate(kept, start=2)]
    return S.from_rows(rows, S.VOCAB, "vocab"), counts


def vocab_hash(vocab: pa.Table) -> str:
    """Identifies a vocabulary; checkpoints store it so a model is never paired
    with another vocabulary's ids."""
    h = hashlib.sha256()
    for token, i in zip(vocab.column("token").to_pylist(), vocab.column("id").to_pylist()):
        h.update(f"{i}\t{token}\n".encode())
    return h.hexdigest()[:16]


def train_word2vec(docs: list[list[list[str]]], vocab: pa.Table, cfg: VocabConfig, seed: int):
    """Skip-gram over each document's tokens (windows cross sentence boundaries, as 2017)."""
    from gensim.models import Word2Vec

    known = set(vocab.column("token").to_pylist())
    texts = [[t if t in known else UNK for s in doc for t in s] for doc in docs]
    texts = [t for t in texts if t]
    model = Word2Vec(
        vector_size=cfg.vector_size,
        window=cfg.window,
        min_count=1,
        sg=1,
        negative=cfg.negative,
        sample=cfg.sample,
        workers=cfg.workers,
        seed=seed,
        hashfxn=stable_hash,
    )
    model.build_vocab(texts)
    model.train(texts, total_examples=len(texts), epochs=cfg.epochs)
    make_reproducible(model)
    return model


def make_reproducible(model) -> None:
    """Drop what makes gensim's pickle differ between identical runs: the
    lifecycle log (a datetime, the Python and platform strings on every event)
    and ``total_train_time`` (seconds). The vectors are untouched; timings go
    to ``timings.json`` instead."""
    model.lifecycle_events = None  # gensim's documented switch: no more events are recorded
    model.wv.lifecycle_events = None
    model.total_train_time = 0.0


def embedding_table(vocab: pa.Table, model, seed: int) -> pa.Table:
    """One 300-d vector per vocabulary id; pad is zero, a token Word2Vec never
    saw (impossible unless min_count < 1) gets a small random vector."""
    rng = np.random.default_rng(seed)
    dim = model.vector_size
    rows = []
    for token, i in zip(vocab.column("token").to_pylist(), vocab.column("id").to_pylist()):
        if token == PAD:
            vec = np.zeros(dim, np.float32)
        elif token in model.wv.key_to_index:
            vec = model.wv[token]
        else:
            vec = rng.uniform(-0.1, 0.1, dim).astype(np.float32)
        rows.append({"token": token, "id": i, "vector": vec.astype(np.float32).tolist()})
    return S.from_rows(rows, S.WORD2VEC, "word2vec")


def oov_rate(docs: Iterable[list[list[str]]], known: set[str]) -> tuple[float, int]:
    total = unknown = 0
    for doc in docs:
        for s in doc:
            total += len(s)
            unknown += sum(t not in known for t in s)
    return (unknown / total if total else 0.0), total


def run(corpus_path: Path, out_dir: Path, cfg: VocabConfig, text_cfg: TextConfig, seed: int) -> dict:
    """The ``vocab`` stage."""
    corpus = S.read_table(corpus_path, S.CORPUS)
    normaliser = TextNormaliser(text_cfg)
    t0 = time.perf_counter()
    train_docs = list(document_tokens(corpus, normaliser, "train"))
    vocab, counts = build_vocab(train_docs, cfg.min_count)
    t1 = time.perf_counter()
    model = train_word2vec(train_docs, vocab, cfg, seed)
    t2 = time.perf_counter()
    known = set(vocab.column("token").to_pylist())
    val_oov, val_tokens = oov_rate(document_tokens(corpus, normaliser, "val"), known)
    n_tokens = sum(counts.values())

    out_dir = Path(out_dir)
    S.write_table(vocab, out_dir / "vocab.parquet", S.VOCAB)
    S.write_table(embedding_table(vocab, model, seed), out_dir / "word2vec.parquet", S.WORD2VEC)
    with S.atomic_path(out_dir / "word2vec.model") as tmp:
        model.save(str(tmp))
    metrics = {
        "vocab_size": vocab.num_rows,
        "types_in_training": len(counts),
        "training_documents": len(train_docs),
        "training_tokens": n_tokens,
        "val_tokens": val_tokens,
        "val_oov_rate": round(val_oov, 4),
        "vocab_hash": vocab_hash(vocab),
    }
    timings = {
        "normalise_s": round(t1 - t0, 2),
        "word2vec_s": round(t2 - t1, 2),
        "word2vec_words_per_s": round(n_tokens * cfg.epochs / max(t2 - t1, 1e-9)),
    }
    for name, data in (("metrics.json", metrics), ("timings.json", timings)):
        with S.atomic_path(out_dir / name) as tmp:
            tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    # the caller (CLI, Prefect artifact) shows both; only metrics.json is a DVC metric
    return {**metrics, "timings": timings}


def load_vocab(path: Path) -> dict[str, int]:
    table = S.read_table(path, S.VOCAB)
    return dict(zip(table.column("token").to_pylist(), table.column("id").to_pylist()))


def cli_main(argv: list[str]) -> int:
    from cmisc_model.commands import command_parser

    parser = command_parser("cmisc vocab", __doc__)
    parser.add_argument("--corpus", type=Path, required=True, help="corpus.parquet from the corpus stage")
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder (vocab.parquet, word2vec.*, metrics.json, timings.json)")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"),
                        help="params file with base, vocab and text sections")
    args = parser.parse_args(argv)
    seed = load_section(BaseConfig, "base", args.params).seed
    cfg = load_section(VocabConfig, "vocab", args.params)
    text_cfg = load_section(TextConfig, "text", args.params)
    metrics = run(args.corpus, args.out, cfg, text_cfg, seed)
    print(json.dumps(metrics, indent=2))
    return 0


def read_vocab(vocab_dir: Path) -> tuple[dict[str, int], str]:
    table = S.read_table(vocab_dir / "vocab.parquet", S.VOCAB)
    vocab = dict(zip(table.column("token").to_pylist(), table.column("id").to_pylist()))
    return vocab, vocab_hash(table)
