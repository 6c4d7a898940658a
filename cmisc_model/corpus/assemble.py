"""The corpus: every source's pairs in one table, split by document.

Two outputs:

- ``corpus.parquet`` (``CORPUS``): the union of the sources' pairs with the
  autoencoder split of each row. The split is by document (Wikipedia article,
  BBC story, COCO image), so no text of a validation or test document reaches
  the vocabulary or Word2Vec, which are built from the training split only.
  A document's split is a hash of (seed, source, doc_id) mapped onto the
  fractions: stable when the corpus grows (a refreshed page keeps its split)
  and independent of row order. Departure from 2017: 2017 split positionally,
  unshuffled, and trained Word2Vec on all three splits (original_impl.md §11.11).
- ``labelled.parquet`` (``LABELLED``): the annotated pairs with their labels
  and the classifier split, stratified by (CMI, SC) cell (see annotations.py).

In 2017 the labelled Wikipedia and BBC pairs were also part of the autoencoder
data (its training is unsupervised); we keep that, so the autoencoder sees the
texts and images, never the labels, of classifier test items.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from cmisc_model import schemas as S
from cmisc_model.config import BaseConfig, ParamsError, load_section
from cmisc_model.corpus.annotations import (
    LabelledSplitConfig,
    import_annotations,
    join_pairs,
    label_distribution,
    split_labelled,
)
from cmisc_model.errors import CmiscError


@dataclass
class CorpusConfig:
    """Autoencoder split fractions (2017: 91/3/6) and the labelled split."""

    train: float = 0.91
    val: float = 0.03
    test: float = 0.06
    labelled: LabelledSplitConfig = field(default_factory=LabelledSplitConfig)

    def __post_init__(self):
        if abs(self.train + self.val + self.test - 1.0) > 1e-6:
            raise ParamsError(
                f"corpus.train + corpus.val + corpus.test must be 1, got {self.train + self.val + self.test:g}"
            )


def document_split(source: str, doc_id: str, seed: int, cfg: CorpusConfig) -> str:
    """The autoencoder split of a document: a seeded hash mapped onto the fractions."""
    h = hashlib.sha1(f"{seed}\x1f{source}\x1f{doc_id}".encode()).digest()
    u = int.from_bytes(h[:8], "big") / 2**64
    if u < cfg.train:
        return "train"
    return "val" if u < cfg.train + cfg.val else "test"


def build_corpus(pairs: list[pa.Table], seed: int, cfg: CorpusConfig) -> pa.Table:
    """Union of pairs tables, each row tagged with its document's split."""
    table = pa.concat_tables([t.select(S.PAIRS.names).cast(S.PAIRS) for t in pairs])
    splits = [
        document_split(s, d, seed, cfg)
        for s, d in zip(table.column("source").to_pylist(), table.column("doc_id").to_pylist())
    ]
    return S.validate(table.append_column("split", pa.array(splits, pa.string())), S.CORPUS, "corpus")


def build_labelled(
    annotations: pa.Table, pairs: pa.Table, seed: int, cfg: CorpusConfig
) -> tuple[pa.Table, list[str]]:
    """Labelled pairs with their classifier split; also returns unknown pair ids."""
    rows, unknown = join_pairs(annotations, pairs)
    rows = split_labelled(rows, seed, cfg.labelled)
    return S.from_rows(rows, S.LABELLED, "labelled"), unknown


def summarise(corpus: pa.Table, labelled: pa.Table) -> dict:
    """What a user checks first: sizes per source and split, image status, labels."""
    rows = corpus.select(["source", "split", "image_status", "doc_id"]).to_pylist()
    by = Counter((r["source"], r["split"]) for r in rows)
    status = Counter(r["image_status"].split(":")[0] for r in rows)
    lab = labelled.select(["source", "cmi", "sc", "split"]).to_pylist()
    return {
        "pairs": len(rows),
        "documents": len({(r["source"], r["doc_id"]) for r in rows}),
        "by_source_split": {f"{s}/{sp}": n for (s, sp), n in sorted(by.items())},
        "image_status": dict(sorted(status.items())),
        "labelled": len(lab),
        "labelled_split": dict(sorted(Counter(r["split"] for r in lab).items())),
        "label_distribution": label_distribution(lab),
    }


def run(
    pairs_paths: list[Path],
    annotation_paths: list[Path],
    out_dir: Path,
    seed: int,
    cfg: CorpusConfig,
    labelled_pairs_paths: list[Path] = (),
    heldout: bool = False,
) -> dict:
    """The ``corpus`` stage. ``labelled_pairs_paths`` are pairs that only the
    classifier uses (COCO's joined-caption subset), never the autoencoder.
    ``heldout``: the pairs are a held-out world; every labelled pair gets split
    ``heldout`` and only ``labelled.parquet`` and the summary are written."""
    pairs = [S.read_table(p, S.PAIRS) for p in pairs_paths]
    if not pairs:
        raise CmiscError("corpus: no pairs files given")
    corpus = build_corpus(pairs, seed, cfg)
    extra = [S.read_table(p, S.PAIRS) for p in labelled_pairs_paths]
    all_pairs = pa.concat_tables([corpus.select(S.PAIRS.names).cast(S.PAIRS), *extra])

    ann_tables, problems = [], []
    for path in annotation_paths:
        if Path(path).suffix == ".parquet":
            ann_tables.append(S.read_table(path, S.ANNOTATIONS))
            continue
        table, errors, _ = import_annotations(path)
        problems += [str(e) for e in errors]
        ann_tables.append(table)
    annotations = pa.concat_tables(ann_tables) if ann_tables else S.from_rows([], S.ANNOTATIONS)
    labelled, unknown = build_labelled(annotations, all_pairs, seed, cfg)
    problems += [f"annotation for unknown pair {p}" for p in unknown]
    if heldout:
        labelled = labelled.set_column(
            labelled.schema.get_field_index("split"), "split", pa.array(["heldout"] * labelled.num_rows, pa.string())
        )

    out_dir = Path(out_dir)
    if not heldout:
        S.write_table(corpus, out_dir / "corpus.parquet", S.CORPUS)
    S.write_table(labelled, out_dir / "labelled.parquet", S.LABELLED)
    summary = summarise(corpus, labelled)
    summary["annotation_problems"] = problems
    with S.atomic_path(out_dir / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


def cli_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="cmisc corpus", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=Path, nargs="+", required=True, help="pairs Parquet of each source")
    parser.add_argument("--labelled-pairs", type=Path, nargs="*", default=[], help="classifier-only pairs (COCO subset)")
    parser.add_argument("--annotations", type=Path, nargs="*", default=[], help="annotation files (JSONL, CSV, Parquet)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (hyperparameters, seed, split)")
    args = parser.parse_args(argv)
    seed = load_section(BaseConfig, "base", args.params).seed
    cfg = load_section(CorpusConfig, "corpus", args.params)
    summary = run(args.pairs, args.annotations, args.out, seed, cfg, args.labelled_pairs)
    for p in summary["annotation_problems"]:
        print(f"warning: {p}", file=sys.stderr)
    print(json.dumps({k: v for k, v in summary.items() if k != "annotation_problems"}, indent=2))
    return 0
