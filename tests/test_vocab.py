"""Vocabulary and Word2Vec: training split only, ids, determinism, metrics."""

from __future__ import annotations

import numpy as np

from cmisc_model import schemas as S
from cmisc_model.corpus.vocab import VocabConfig, load_vocab, run
from cmisc_model.text.normalise import TextConfig


def corpus_rows():
    rows = []
    for d in range(40):
        split = "train" if d < 30 else ("val" if d < 35 else "test")
        word = {"train": "circle", "val": "valonly", "test": "testonly"}[split]
        sentences = [f"A red {word} is in the upper left.", f"The {word} is large and red."] * 6
        rows.append(
            {
                "pair_id": f"p{d}", "source": "simplewiki", "doc_id": str(d), "position": "lead", "section_path": [],
                "text_blocks": [{"titles": [], "sentences": sentences}], "image_status": "ok", "split": split,
            }
        )
    # a training row without a usable image: the autoencoder never sees it, nor does the vocabulary
    rows.append({**rows[0], "pair_id": "bad", "doc_id": "99", "image_status": "rejected:decode-error",
                 "text_blocks": [{"titles": [], "sentences": ["zebra " * 20]}]})
    return rows


def build(tmp_path, name="v", seed=1):
    path = tmp_path / "corpus.parquet"
    S.write_table(S.from_rows(corpus_rows(), S.CORPUS), path, S.CORPUS)
    cfg = VocabConfig(min_count=10, vector_size=300, epochs=2, negative=5)
    return run(path, tmp_path / name, cfg, TextConfig(), seed), tmp_path / name


def test_vocab_from_training_split_only(tmp_path):
    metrics, out = build(tmp_path)
    vocab = load_vocab(out / "vocab.parquet")
    assert vocab["<pad>"] == 0 and vocab["<unk>"] == 1
    assert "circle" in vocab and "red" in vocab
    # val/test words appear >= 10 times but only outside training: never in the vocabulary
    assert "valonly" not in vocab and "testonly" not in vocab and "zebra" not in vocab
    ids = sorted(vocab.values())
    assert ids == list(range(len(ids)))
    # every validation sentence has one out-of-vocabulary word in 8-9 tokens
    assert 0.1 < metrics["val_oov_rate"] < 0.15
    assert metrics["vocab_size"] == len(vocab)


def test_word2vec_rows_match_vocab_and_are_deterministic(tmp_path):
    _, a = build(tmp_path, "a", seed=3)
    _, b = build(tmp_path, "b", seed=3)
    _, c = build(tmp_path, "c", seed=4)
    wa = S.read_table(a / "word2vec.parquet", S.WORD2VEC)
    wb = S.read_table(b / "word2vec.parquet", S.WORD2VEC)
    wc = S.read_table(c / "word2vec.parquet", S.WORD2VEC)
    vocab = S.read_table(a / "vocab.parquet", S.VOCAB)
    assert wa.column("token").to_pylist() == vocab.column("token").to_pylist()
    va, vb, vc = (np.array(w.column("vector").to_pylist()) for w in (wa, wb, wc))
    assert np.all(va[0] == 0)  # pad
    assert np.array_equal(va, vb)
    assert not np.array_equal(va, vc)
    from gensim.models import Word2Vec

    model = Word2Vec.load(str(a / "word2vec.model"))
    assert "valonly" not in model.wv.key_to_index and "circle" in model.wv.key_to_index


def test_outputs_are_byte_identical_and_timings_are_not_metrics(tmp_path):
    import json

    metrics, a = build(tmp_path, "a", seed=3)
    _, b = build(tmp_path, "b", seed=3)
    # word2vec.model is gensim's pickle: it used to carry datetimes and the training time
    for name in ("vocab.parquet", "word2vec.parquet", "word2vec.model", "metrics.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    declared = json.loads((a / "metrics.json").read_text())
    timings = json.loads((a / "timings.json").read_text())
    assert set(timings) == {"normalise_s", "word2vec_s", "word2vec_words_per_s"}
    assert not set(timings) & set(declared)
    assert not any(k.endswith("_s") for k in declared)
    assert metrics["timings"] == timings  # the CLI and the Prefect artifact still show them
