"""MS COCO captions -> pairs, and the classifier's COCO subset.

``coco_pairs``: one row per caption (as 2017 built its autoencoder data from
val2014): ``doc_id`` the image id, ``pair_id`` ``make_pair_id("coco",
image_id, caption_id)``, ``revision_id`` the caption's annotation id (the id of
this text in the captions file; ``coco_labelled_subset`` needs it), the
cleaned caption both in ``caption`` and as the one sentence of
``text_blocks``. Images are matched by ``image_id`` (annotations are not
grouped by image) and found as ``images_dir/file_name``: present ->
``image_status`` "ok" and ``image_path`` set; absent -> the row is kept with
"missing". ``licence`` is the Flickr licence of the image ("name (url)"),
``attribution`` its Flickr URL (the COCO URL when there is none),
``image_url`` the COCO URL, ``dump_date`` the file's ``info.date_created``.

Caption noise in the real files (trailing spaces, embedded newlines, double
spaces) is collapsed to single spaces; case and final punctuation are kept
(the ``TextNormaliser`` lower-cases).

``coco_labelled_subset``: 2017's ``generateClassifierInputCoco.py`` — draw
``n_images`` images with a seed, for each keep k of its captions in random
order, k uniform in ``[min_captions, min(max_captions, n_captions - 1)]``
(1-4 of five; never all of them), label the joined captions CMI 1.0 (caption-
like) and SC 1.0. Departure from 2017: only images whose file is present are
drawn (``require_image``), since a labelled pair without an image cannot be
used; 2017 drew from all of val2014, all present. When fewer images are
available than asked for, all are taken and the summary says so.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from cmisc_model.errors import CmiscError
from cmisc_model.schemas import (
    ANNOTATIONS,
    PAIRS,
    atomic_path,
    from_rows,
    make_pair_id,
    write_table,
)

SOURCE = "coco"
ANNOTATOR = "rule:coco-caption"


@dataclass
class CocoConfig:
    """The ``coco`` section of params.yaml."""

    n_images: int = 100  # 2017: 100 val2014 images
    min_captions: int = 1
    max_captions: int = 4  # 2017: k in 1 .. n_captions - 1
    seed: int | None = None  # null: base.seed (2017 used random.seed(42))
    require_image: bool = True


def clean_caption(text: str) -> str:
    """Collapse spaces, tabs and newlines to single spaces; strip the ends."""
    return " ".join(text.split())


def _load(path: Path) -> dict:
    try:
        data = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CmiscError(f"{path}: not a COCO captions JSON file ({e})") from e
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("images"), list)
        or not isinstance(data.get("annotations"), list)
    ):
        raise CmiscError(
            f"{path}: not a COCO captions file (needs 'images' and 'annotations' lists)"
        )
    return data


def coco_pairs(
    captions_json: str | os.PathLike,
    images_dir: str | os.PathLike,
    summary: dict | None = None,
) -> pa.Table:
    """A COCO captions file and its image folder -> PAIRS table, one row per caption.

    When ``summary`` is a dict it receives the counts (images, captions,
    present/missing images, captions whose image is not in the file) and the
    rejected captions (null, blank or not a string) with their reason.
    """
    path = Path(captions_json)
    images_dir = Path(images_dir)
    data = _load(path)
    licences = {
        lic.get("id"): f"{lic.get('name', '')} ({lic.get('url', '')})".strip()
        for lic in data.get("licenses") or []
        if isinstance(lic, dict)
    }
    images: dict[int, dict] = {}
    for i, img in enumerate(data["images"]):
        if not isinstance(img, dict) or "id" not in img or "file_name" not in img:
            raise CmiscError(f"{path}: images[{i}] has no 'id' or 'file_name'")
        images[int(img["id"])] = img
    dump_date = (data.get("info") or {}).get("date_created")

    present: dict[int, Path | None] = {}
    rows: list[dict] = []
    orphans: list[int] = []
    rejected: list[dict] = []  # captions that are not text: never a pair, never drawn
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict) or not {"id", "image_id", "caption"} <= set(ann):
            what = ann.get("id", i) if isinstance(ann, dict) else i
            raise CmiscError(f"{path}: annotation {what} lacks 'id', 'image_id' or 'caption'")
    for ann in sorted(data["annotations"], key=lambda a: (int(a["image_id"]), int(a["id"]))):
        image_id = int(ann["image_id"])
        img = images.get(image_id)
        if img is None:
            orphans.append(int(ann["id"]))
            continue
        if image_id not in present:
            file = images_dir / Path(str(img["file_name"])).name  # no path in a name
            present[image_id] = file if file.is_file() else None
        file = present[image_id]
        raw = ann["caption"]
        # null, a number, an object or only whitespace is no caption: str()
        # would turn them into the "sentences" "None", "{'x': 1}" or "".
        caption = clean_caption(raw) if isinstance(raw, str) else ""
        if not caption:
            reason = "blank" if isinstance(raw, str) else "null" if raw is None else f"not text ({type(raw).__name__})"
            rejected.append({"id": ann["id"], "image_id": image_id, "reason": reason})
            continue
        rows.append(
            {
                "pair_id": make_pair_id(SOURCE, str(image_id), str(ann["id"])),
                "source": SOURCE,
                "doc_id": str(image_id),
                "revision_id": int(ann["id"]),
                "position": "lead",
                "section_path": [],
                "text_blocks": [{"titles": [], "sentences": [caption]}],
                "caption": caption,
                "image_title": img["file_name"],
                "image_url": img.get("coco_url"),
                "image_path": str(file) if file else None,
                "image_status": "ok" if file else "missing",
                "licence": licences.get(img.get("license")),
                "attribution": img.get("flickr_url") or img.get("coco_url"),
                "dump_date": dump_date,
            }
        )
    if summary is not None:
        summary.update(
            {
                "captions_file": str(path),
                "images_in_file": len(images),
                "captions": len(rows),
                "images_with_captions": len(present),
                "images_present": sum(1 for f in present.values() if f),
                "images_missing": sum(1 for f in present.values() if not f),
                "captions_without_image_entry": orphans,
                "captions_rejected": rejected,
            }
        )
    return from_rows(rows, PAIRS, where=str(path))


def coco_labelled_subset(
    table: pa.Table,
    n_images: int = 100,
    seed: int = 12345,
    min_captions: int = 1,
    max_captions: int = 4,
    require_image: bool = True,
    summary: dict | None = None,
) -> tuple[pa.Table, pa.Table]:
    """Draw the caption-like labelled subset -> (PAIRS table, ANNOTATIONS table).

    One pair per drawn image, its text the chosen captions (one sentence
    each), ``pair_id`` ``make_pair_id("coco", image_id, "subset:" +
    ",".join(caption ids))``, labelled CMI 1.0 and SC 1.0. The same table and
    seed always give the same subset.
    """
    if min_captions < 1 or max_captions < min_captions:
        raise CmiscError(
            f"coco: need 1 <= min_captions <= max_captions, got {min_captions}, {max_captions}"
        )
    by_image: dict[str, list[dict]] = {}
    for row in table.to_pylist():
        if row["source"] != SOURCE:
            continue
        if require_image and row["image_status"] != "ok":
            continue
        by_image.setdefault(row["doc_id"], []).append(row)
    candidates = sorted(by_image, key=int)
    take = min(n_images, len(candidates))
    rng = random.Random(seed)
    drawn = rng.sample(candidates, take)

    pairs: list[dict] = []
    labels: list[dict] = []
    for image_id in drawn:
        captions = sorted(by_image[image_id], key=lambda r: r["revision_id"])
        rng.shuffle(captions)
        hi = max(min_captions, min(max_captions, len(captions) - 1))
        chosen = captions[: rng.randint(min_captions, hi)]
        key = "subset:" + ",".join(str(r["revision_id"]) for r in chosen)
        first = chosen[0]
        pair = {
            **first,
            "pair_id": make_pair_id(SOURCE, image_id, key),
            "revision_id": None,
            "caption": None,  # the captions are the text here
            "text_blocks": [{"titles": [], "sentences": [r["caption"] for r in chosen]}],
        }
        pairs.append(pair)
        labels.append(
            {
                "pair_id": pair["pair_id"],
                "cmi": 1.0,
                "sc": 1.0,
                "source": SOURCE,
                "annotator": ANNOTATOR,
            }
        )
    if summary is not None:
        summary.update(
            {
                "subset_requested": n_images,
                "subset_available": len(candidates),
                "subset_drawn": take,
                "subset_seed": seed,
                "subset_require_image": require_image,
                "subset_captions_per_image": {
                    str(k): sum(1 for p in pairs if len(p["text_blocks"][0]["sentences"]) == k)
                    for k in range(min_captions, max_captions + 1)
                },
            }
        )
        if take < n_images:
            summary["subset_note"] = (
                f"only {len(candidates)} images available "
                f"({'with an image file' if require_image else 'in the table'}); took all"
            )
    return from_rows(pairs, PAIRS, "coco subset"), from_rows(
        labels, ANNOTATIONS, "coco subset labels"
    )


# --------------------------------------------------------------------------- cli


def cli_main(argv: list[str]) -> int:
    """``cmisc coco-pairs --captions FILE --images DIR --out PAIRS.parquet
    [--labelled-out LABELLED.parquet --annotations-out ANN.parquet] [--seed N]``."""
    from cmisc_model.config import DEFAULT_PARAMS, BaseConfig, load_section

    ap = argparse.ArgumentParser(
        prog="cmisc coco-pairs", description="COCO captions file -> pairs Parquet"
    )
    ap.add_argument("--captions", type=Path, required=True, help="captions_*.json")
    ap.add_argument("--images", type=Path, required=True, help="folder of the image files")
    ap.add_argument("--out", type=Path, required=True, help="pairs Parquet (one row per caption)")
    ap.add_argument("--labelled-out", type=Path, help="pairs Parquet of the labelled subset")
    ap.add_argument(
        "--annotations-out", type=Path, help="annotations Parquet of the labelled subset"
    )
    ap.add_argument(
        "--seed", type=int, default=None, help="subset seed (default: coco.seed, else base.seed)"
    )
    ap.add_argument(
        "--params", type=Path, default=None, help="params file (default: ./params.yaml if present)"
    )
    args = ap.parse_args(argv)
    if (args.labelled_out is None) != (args.annotations_out is None):
        ap.error("--labelled-out and --annotations-out go together")
    params = args.params or (DEFAULT_PARAMS if DEFAULT_PARAMS.exists() else None)
    cfg = load_section(CocoConfig, "coco", params) if params else CocoConfig()
    base = load_section(BaseConfig, "base", params) if params else BaseConfig()

    summary: dict = {}
    table = coco_pairs(args.captions, args.images, summary)
    write_table(table, args.out, PAIRS, metadata={"cmisc.source": SOURCE})
    print(
        f"{args.out}: {summary['captions']} pairs, {summary['images_with_captions']} images "
        f"({summary['images_present']} present, {summary['images_missing']} missing)"
    )
    if summary["captions_without_image_entry"]:
        print(
            f"  {len(summary['captions_without_image_entry'])} captions name an image "
            "not in the file (skipped)"
        )
    for r in summary["captions_rejected"]:
        print(f"  caption {r['id']} (image {r['image_id']}) rejected: {r['reason']}", file=sys.stderr)
    if args.labelled_out is not None:
        seed = (
            args.seed if args.seed is not None else cfg.seed if cfg.seed is not None else base.seed
        )
        pairs, labels = coco_labelled_subset(
            table,
            cfg.n_images,
            seed,
            cfg.min_captions,
            cfg.max_captions,
            cfg.require_image,
            summary,
        )
        write_table(pairs, args.labelled_out, PAIRS, metadata={"cmisc.source": SOURCE})
        write_table(labels, args.annotations_out, ANNOTATIONS, metadata={"cmisc.source": SOURCE})
        print(
            f"{args.labelled_out}: {pairs.num_rows} labelled pairs (CMI 1.0, SC 1.0), seed {seed}"
        )
        if "subset_note" in summary:
            print(f"  note: {summary['subset_note']}")
    spath = args.out.with_suffix(".summary.json")
    with atomic_path(spath) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"  summary: {spath}")
    return 0
