"""Corpus: union of sources, split by document, labelled set joined and split."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from cmisc_model import schemas as S
from cmisc_model.config import ParamsError, from_mapping
from cmisc_model.corpus.assemble import CorpusConfig, build_corpus, document_split, run


def pairs(source, n_docs, per_doc):
    rows = []
    for d in range(n_docs):
        for i in range(per_doc):
            rows.append(
                {
                    "pair_id": S.make_pair_id(source, str(d), f"img{i}"),
                    "source": source,
                    "doc_id": str(d),
                    "position": "section",
                    "section_path": ["A"],
                    "text_blocks": [{"titles": ["A"], "sentences": [f"doc {d} image {i}"]}],
                    "image_status": "ok",
                }
            )
    return S.from_rows(rows, S.PAIRS)


def test_split_by_document_never_splits_a_document():
    corpus = build_corpus([pairs("coco", 400, 5), pairs("bbc", 100, 1)], 12345, CorpusConfig())
    by_doc = {}
    for r in corpus.select(["source", "doc_id", "split"]).to_pylist():
        by_doc.setdefault((r["source"], r["doc_id"]), set()).add(r["split"])
    assert all(len(s) == 1 for s in by_doc.values())
    shares = {s: sum(1 for v in by_doc.values() if s in v) / len(by_doc) for s in S.SPLITS}
    assert 0.86 < shares["train"] < 0.96 and shares["val"] > 0 and shares["test"] > 0.02


def test_split_is_stable_under_growth():
    cfg = CorpusConfig()
    small = build_corpus([pairs("coco", 50, 1)], 1, cfg)
    large = build_corpus([pairs("coco", 500, 1)], 1, cfg)
    before = dict(zip(small.column("doc_id").to_pylist(), small.column("split").to_pylist()))
    after = dict(zip(large.column("doc_id").to_pylist(), large.column("split").to_pylist()))
    assert all(after[d] == s for d, s in before.items())
    # another seed gives another split
    assert [document_split("coco", str(d), 1, cfg) for d in range(200)] != [
        document_split("coco", str(d), 2, cfg) for d in range(200)
    ]


def test_fractions_must_sum_to_one():
    with pytest.raises(ParamsError, match=r"corpus.train \+ corpus.val \+ corpus.test must be 1"):
        from_mapping(CorpusConfig, {"train": 0.5}, "corpus")


def test_run_writes_corpus_labelled_and_summary(tmp_path):
    S.write_table(pairs("bbc", 60, 1), tmp_path / "bbc.parquet", S.PAIRS)
    S.write_table(pairs("simplewiki", 30, 3), tmp_path / "wiki.parquet", S.PAIRS)
    bbc_ids = pairs("bbc", 60, 1).column("pair_id").to_pylist()
    ann = tmp_path / "ann.jsonl"
    levels = [(0.5, 1.0), (0.0, 0.0), (1.0, 0.5)]
    ann.write_text(
        "\n".join(
            json.dumps({"pair_id": p, "cmi": levels[i % 3][0], "sc": levels[i % 3][1], "source": "bbc"})
            for i, p in enumerate(bbc_ids)
        )
        + "\n"
        + json.dumps({"pair_id": "nope", "cmi": 0, "sc": 0})
        + "\n"
    )
    summary = run([tmp_path / "bbc.parquet", tmp_path / "wiki.parquet"], [ann], tmp_path / "out", 12345, CorpusConfig())
    corpus = S.read_table(tmp_path / "out" / "corpus.parquet", S.CORPUS)
    labelled = S.read_table(tmp_path / "out" / "labelled.parquet", S.LABELLED)
    assert corpus.num_rows == 150 and labelled.num_rows == 60
    # grouped by document and stratified by cell: each split within one pair per cell of its target
    assert abs(summary["labelled_split"]["test"] - 0.11 * 60) <= 3 and abs(summary["labelled_split"]["val"] - 0.89 * 0.15 * 60) <= 3
    assert summary["annotation_problems"] == ["annotation for unknown pair nope"]
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["pairs"] == 150
    # every labelled pair carries its text
    assert all(r["text_blocks"] for r in labelled.to_pylist())
    assert set(pa.compute.unique(labelled.column("split")).to_pylist()) == {"train", "val", "test"}
