"""Flows that build the corpus: BBC News, MS COCO, the union and split, the vocabulary.

``python -m flows.corpus STEP ...`` runs one step (this is what the DVC stages
``bbc``, ``coco``, ``corpus`` and ``vocab`` call); ``python -m flows.corpus
all`` runs the four in order for users working without DVC. Each step's
summary is a Prefect table artifact (``bbc-summary``, ``coco-summary``,
``corpus-summary``, ``vocab-summary``) and a JSON file beside its output.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from prefect import flow

from cmisc_model import schemas as S
from cmisc_model.config import BaseConfig, load_section
from cmisc_model.corpus.assemble import CorpusConfig
from cmisc_model.corpus.images import ImagesConfig
from cmisc_model.corpus.vocab import VocabConfig
from cmisc_model.sources.bbc import BbcConfig
from cmisc_model.sources.coco import CocoConfig
from cmisc_model.text.normalise import TextConfig
from flows.common import Progress, run_cli, store_images, summary_table, task_runner
from tasks import corpus as T


def _write_json(path: Path, data: dict) -> None:
    with S.atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


@flow(name="bbc-pairs", log_prints=True)
def bbc_flow(root: str, out: str, store: str, params: str = "params.yaml") -> dict:
    cfg = load_section(BbcConfig, "bbc", params)
    text_cfg = load_section(TextConfig, "text", params)
    images_cfg = load_section(ImagesConfig, "images", params)
    progress = Progress(f"BBC stories in {root}")
    rows, summary = T.bbc_stories(root, cfg, text_cfg)
    rows, summary["images"] = store_images(rows, store, images_cfg, progress, label="bbc")
    S.write_table(S.from_rows(rows, S.PAIRS, out), out, S.PAIRS, metadata={"cmisc.source": "bbc"})
    _write_json(Path(out).with_suffix(".summary.json"), summary)
    summary_table("bbc-summary", summary, f"BBC pairs from {root}")
    return summary


@flow(name="coco-pairs", log_prints=True)
def coco_flow(
    captions: str, images: str, out: str, labelled_out: str, annotations_out: str, store: str,
    params: str = "params.yaml", n_images: int | None = None, seed: int | None = None,
) -> dict:
    """``n_images`` and ``seed`` override params (the held-out world draws its own subset)."""
    cfg = load_section(CocoConfig, "coco", params)
    if n_images is not None:
        cfg.n_images = n_images
    if seed is None:
        seed = cfg.seed if cfg.seed is not None else load_section(BaseConfig, "base", params).seed
    images_cfg = load_section(ImagesConfig, "images", params)
    progress = Progress(f"COCO captions {Path(captions).name}")
    pairs, labelled, annotations, summary = T.coco_captions(captions, images, cfg, seed)
    n = len(pairs)
    rows, summary["images"] = store_images(pairs + labelled, store, images_cfg, progress, label="coco")
    S.write_table(S.from_rows(rows[:n], S.PAIRS, out), out, S.PAIRS, metadata={"cmisc.source": "coco"})
    S.write_table(S.from_rows(rows[n:], S.PAIRS, labelled_out), labelled_out, S.PAIRS, metadata={"cmisc.source": "coco"})
    S.write_table(annotations, annotations_out, S.ANNOTATIONS, metadata={"cmisc.source": "coco"})
    _write_json(Path(out).with_suffix(".summary.json"), summary)
    summary_table("coco-summary", summary, f"COCO pairs from {Path(captions).name}")
    return summary


@flow(name="corpus", log_prints=True)
def corpus_flow(
    pairs: list[str], annotations: list[str], out: str, labelled_pairs: list[str] | None = None,
    params: str = "params.yaml", heldout: bool = False,
) -> dict:
    seed = load_section(BaseConfig, "base", params).seed
    cfg = load_section(CorpusConfig, "corpus", params)
    summary = T.build_corpus(pairs, annotations, out, seed, cfg, labelled_pairs or [], heldout)
    summary_table("corpus-summary", summary, "Corpus: pairs per source and split, labels")
    for problem in summary["annotation_problems"]:
        print(f"warning: {problem}")
    return summary


@flow(name="vocab", log_prints=True)
def vocab_flow(corpus: str, out: str, params: str = "params.yaml") -> dict:
    seed = load_section(BaseConfig, "base", params).seed
    metrics = T.build_vocab(
        corpus, out, load_section(VocabConfig, "vocab", params), load_section(TextConfig, "text", params), seed
    )
    summary_table("vocab-summary", metrics, "Vocabulary and Word2Vec (training split only)")
    return metrics


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.corpus", description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--workers", type=int, default=2, help="threads of the task runner")
    parser.add_argument("--dask", metavar="ADDRESS", help="run tasks on this Dask scheduler")
    steps = parser.add_subparsers(dest="step", required=True)
    b = steps.add_parser("bbc", help="BBC News folder -> pairs with stored images")
    b.add_argument("--root", required=True)
    b.add_argument("--out", required=True)
    b.add_argument("--store", required=True)
    c = steps.add_parser("coco", help="COCO captions -> pairs, and the labelled subset")
    c.add_argument("--captions", required=True)
    c.add_argument("--images", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--labelled-out", required=True)
    c.add_argument("--annotations-out", required=True)
    c.add_argument("--store", required=True)
    u = steps.add_parser("corpus", help="union of the sources, split by document; labelled split")
    u.add_argument("--pairs", nargs="+", required=True)
    u.add_argument("--labelled-pairs", nargs="*", default=[])
    u.add_argument("--annotations", nargs="*", default=[])
    u.add_argument("--out", required=True)
    v = steps.add_parser("vocab", help="vocabulary and Word2Vec from the training split")
    v.add_argument("--corpus", required=True)
    v.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    runner = task_runner(args.dask, args.workers)
    if args.step == "bbc":
        s = bbc_flow.with_options(task_runner=runner)(args.root, args.out, args.store, args.params)
        sp = s["spelling"]
        print(
            f"{args.out}: {s['pairs']} pairs; images {s['images'].get('ok', 0)} ok; spelling: "
            f"{sp['replacements']} replacements, vocabulary {sp['types_before']} -> {sp['types_after']} types"
        )
    elif args.step == "coco":
        s = coco_flow.with_options(task_runner=runner)(
            args.captions, args.images, args.out, args.labelled_out, args.annotations_out, args.store, args.params
        )
        print(f"{args.out}: {s['captions']} pairs; images {s['images'].get('ok', 0)} ok, {s['images'].get('missing', 0)} missing")
    elif args.step == "corpus":
        s = corpus_flow.with_options(task_runner=runner)(
            args.pairs, args.annotations, args.out, args.labelled_pairs, args.params
        )
        print(f"{args.out}: {s['pairs']} pairs, {s['labelled']} labelled {s['labelled_split']}")
    else:
        s = vocab_flow.with_options(task_runner=runner)(args.corpus, args.out, args.params)
        print(f"{args.out}: {s['vocab_size']} types, validation OOV rate {s['val_oov_rate']}")
    return 0


if __name__ == "__main__":
    run_cli(main)
