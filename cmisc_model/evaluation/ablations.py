"""What the classifier uses: test sets with the image or the text taken away.

For each evaluation repeat the selected classifier also scores (not in the
paper; they show whether it uses the image and the text at all):

- ``images_shuffled``: every test text with another test item's image;
- ``images_blank``: every test text with a flat grey image;
- ``texts_shuffled``: every test image with another test item's text;
- ``counterfactual`` (sample world only, from the generator's ground truth):
  the same text with one correctly described object's colour or shape
  changed, so that the rules give another label.

The true labels stay those of the intact pair: a model that relates image and
text loses accuracy when either is swapped; one that ignores the image loses
nothing on the first two. Ablated predictions are PREDICTIONS rows of system
``<system>:<ablation>``, so the evaluation scores them like any system.

Ground truth: ``scenes.jsonl`` of the sample world maps each Wikipedia/BBC
pair to the scene its image shows; the generator's rules
(``scenes.label_sentences``) then name the rule behind every label
(``truth_rules``), for accuracy per rule.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cmisc_model.sample_world import scenes as S
from cmisc_model.sample_world.scenes import read_scenes, sentences_of  # noqa: F401  (re-exported)

KINDS = ("images_shuffled", "images_blank", "texts_shuffled")


def derangement(n: int, seed: int) -> list[int]:
    """A seeded permutation with no fixed point (n >= 2): item i takes item out[i]'s part."""
    order = np.random.default_rng(seed).permutation(n).tolist()
    out = [0] * n
    for k in range(n):
        out[order[k]] = order[(k + 1) % n]
    return out


def ablated_rows(rows: list[dict], kind: str, seed: int, blank_image: str | Path) -> list[dict]:
    """Test rows with images shuffled, blanked, or texts shuffled (labels and pair ids unchanged)."""
    if kind == "images_blank":
        return [{**r, "image_path": str(blank_image)} for r in rows]
    if len(rows) < 2:
        return list(rows)
    other = derangement(len(rows), seed)
    if kind == "images_shuffled":
        return [{**r, "image_path": rows[other[i]]["image_path"]} for i, r in enumerate(rows)]
    if kind == "texts_shuffled":
        return [{**r, "text_blocks": rows[other[i]]["text_blocks"], "source": rows[other[i]]["source"]}
                for i, r in enumerate(rows)]
    raise ValueError(f"unknown ablation {kind!r}; expected one of {KINDS}")


def write_blank_image(path: Path, size: int = 64) -> Path:
    from PIL import Image

    Image.new("RGB", (size, size), (128, 128, 128)).save(path, format="PNG")
    return path


# --------------------------------------------------------------------------- ground truth

def truth_rules(rows: list[dict], scenes: dict[str, S.Scene]) -> dict[str, dict]:
    """pair_id -> {"cmi_rule", "sc_rule"} for every row whose scene is known; COCO's
    labelled captions (CMI 1, SC 1 by the coco stage, not by the rules) are "coco caption"."""
    out = {}
    for r in rows:
        scene = scenes.get(r["pair_id"])
        if scene is not None:
            lab = S.label_sentences(scene, sentences_of(r))
            out[r["pair_id"]] = {"cmi_rule": lab.cmi_rule, "sc_rule": lab.sc_rule}
        elif r.get("source") == "coco":
            out[r["pair_id"]] = {"cmi_rule": "coco caption", "sc_rule": "coco caption"}
    return out


def counterfactual_rows(rows: list[dict], scenes: dict[str, S.Scene], seed: int) -> list[dict]:
    """Rows whose text has one mentioned attribute changed, with the labels the rules give it."""
    rng = np.random.default_rng(seed)
    out = []
    for r in rows:
        scene = scenes.get(r["pair_id"])
        if scene is None:
            continue
        made = S.counterfactual(scene, sentences_of(r), rng)
        if made is None:
            continue
        sentences, lab = made
        # one block keeps the reading order; titles are not labelled text
        blocks, k = [], 0
        for b in r["text_blocks"]:
            n = len(b["sentences"])
            blocks.append({"titles": b["titles"], "sentences": sentences[k : k + n]})
            k += n
        out.append({**r, "text_blocks": blocks, "cmi": lab.cmi, "sc": lab.sc})
    return out


def cli_main(argv: list[str]) -> int:
    """``cmisc ablate``: one repeat's test split, intact or ablated, as a file ``cmisc predict --pairs`` reads."""
    import argparse

    from cmisc_model import schemas as Sch
    from cmisc_model.config import BaseConfig, load_section
    from cmisc_model.corpus.annotations import repeat_split
    from cmisc_model.corpus.assemble import CorpusConfig

    ap = argparse.ArgumentParser(prog="cmisc ablate", description="one repeat's test split, intact or with images "
                                 "shuffled or blank or texts shuffled, as a file cmisc predict --pairs reads")
    ap.add_argument("--labelled", type=Path, required=True, help="labelled.parquet from the corpus stage")
    ap.add_argument("--kind", choices=("intact", *KINDS), default="images_shuffled", help="what to take away")
    ap.add_argument("--repeat", type=int, default=0, help="evaluation repeat whose test split to write")
    ap.add_argument("--out", type=Path, required=True, help="Parquet file to write (LABELLED schema)")
    ap.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (seed, split)")
    args = ap.parse_args(argv)
    seed = load_section(BaseConfig, "base", args.params).seed
    split_cfg = load_section(CorpusConfig, "corpus", args.params).labelled
    rows = Sch.read_table(args.labelled, Sch.LABELLED).to_pylist()
    test = [r for r in repeat_split(rows, seed, args.repeat, split_cfg) if r["split"] == "test"]
    if args.kind != "intact":
        blank = write_blank_image(args.out.with_suffix(".blank.png"))
        test = ablated_rows(test, args.kind, seed + args.repeat, blank)
    Sch.write_table(Sch.from_rows(test, Sch.LABELLED, str(args.out)), args.out, Sch.LABELLED)
    print(f"{args.out}: {len(test)} test pairs of repeat {args.repeat}, {args.kind}")
    return 0
