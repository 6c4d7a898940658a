"""Prefect tasks of the corpus-building flows: thin wrappers over cmisc_model."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from cmisc_model.corpus import assemble as corpus
from cmisc_model.corpus import vocab
from cmisc_model.corpus.assemble import CorpusConfig
from cmisc_model.corpus.vocab import VocabConfig
from cmisc_model.sources.bbc import BbcConfig, bbc_pairs
from cmisc_model.sources.coco import CocoConfig, coco_labelled_subset, coco_pairs
from cmisc_model.text.normalise import TextConfig


@task(name="bbc-stories")
def bbc_stories(root: str, cfg: BbcConfig, text_cfg: TextConfig) -> tuple[list[dict], dict]:
    """Parse every story; the summary carries the spelling report (replacements, types before/after)."""
    table, summary = bbc_pairs(root, cfg, text_cfg)
    return table.to_pylist(), summary


@task(name="coco-captions")
def coco_captions(captions: str, images: str, cfg: CocoConfig, seed: int):
    """(caption pairs, labelled-subset pairs, subset annotations, summary)."""
    summary: dict = {}
    table = coco_pairs(captions, images, summary)
    labelled, annotations = coco_labelled_subset(
        table, cfg.n_images, seed, cfg.min_captions, cfg.max_captions, cfg.require_image, summary
    )
    return table.to_pylist(), labelled.to_pylist(), annotations, summary


@task(name="build-corpus")
def build_corpus(pairs: list[str], annotations: list[str], out: str, seed: int, cfg: CorpusConfig,
                 labelled_pairs: list[str], heldout: bool = False) -> dict:
    return corpus.run([Path(p) for p in pairs], [Path(a) for a in annotations], Path(out), seed, cfg,
                      [Path(p) for p in labelled_pairs], heldout)


@task(name="build-vocab")
def build_vocab(corpus_path: str, out: str, cfg: VocabConfig, text_cfg: TextConfig, seed: int) -> dict:
    return vocab.run(Path(corpus_path), Path(out), cfg, text_cfg, seed)
