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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


def _licences(data: dict) -> dict:
    """Licence id -> "name (url)"."""
    return {
        lic.get("id"): f"{lic.get('name', '')} ({lic.get('url', '')})".strip()
        for lic in data.get("licenses") or []
        if isinstance(lic, dict)
    }


def _images_by_id(data: dict, path: Path) -> dict[int, dict]:
    images: dict[int, dict] = {}
    for i, img in enumerate(data["images"]):
        if not isinstance(img, dict) or "id" not in img or "file_name" not in img:
            raise CmiscError(f"{path}: images[{i}] has no 'id' or 'file_name'")
        images[int(img["id"])] = img
    return images


def _check_annotations(data: dict, path: Path) -> None:
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict) or not {"id", "image_id", "caption"} <= set(ann):
            what = ann.get("id", i) if isinstance(ann, dict) else i
            raise CmiscError(f"{path}: annotation {what} lacks 'id', 'image_id' or 'caption'")


def _rejection(raw: Any) -> str:
    """Why a caption value that cleans to nothing is no caption."""
    return "blank" if isinstance(raw, str) else "null" if raw is None else f"not text ({type(raw).__name__})"


@dataclass
class _CaptionFile:
    """A loaded captions file and what a pass over its captions finds."""

    path: Path
    images_dir: Path
    images: dict[int, dict]
    licences: dict
    dump_date: str | None
    present: dict[int, Path | None] = field(default_factory=dict)  # image id -> file, None when absent
    rows: list[dict] = field(default_factory=list)
    orphans: list[int] = field(default_factory=list)  # captions of an image not in the file
    # Captions that are not text: never a pair, never drawn.
    rejected: list[dict] = field(default_factory=list)

    def image_file(self, image_id: int, img: dict) -> Path | None:
        if image_id not in self.present:
            file = self.images_dir / Path(str(img["file_name"])).name  # no path in a name
            self.present[image_id] = file if file.is_file() else None
        return self.present[image_id]

    def add(self, ann: dict) -> None:
        image_id = int(ann["image_id"])
        img = self.images.get(image_id)
        if img is None:
            self.orphans.append(int(ann["id"]))
            return
        file = self.image_file(image_id, img)
        raw = ann["caption"]
        # null, a number, an object or only whitespace is no caption: str()
        # would turn them into the "sentences" "None", "{'x': 1}" or "".
        caption = clean_caption(raw) if isinstance(raw, str) else ""
        if not caption:
            self.rejected.append({"id": ann["id"], "image_id": image_id, "reason": _rejection(raw)})
            return
        self.rows.append(self.row(ann, image_id, img, file, caption))

    def row(self, ann: dict, image_id: int, img: dict, file: Path | None, caption: str) -> dict:
        return {
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
            "licence": self.licences.get(img.get("license")),
            "attribution": img.get("flickr_url") or img.get("coco_url"),
            "dump_date": self.dump_date,
        }

    def summary(self) -> dict:
        return {
            "captions_file": str(self.path),
            "images_in_file": len(self.images),
            "captions": len(self.rows),
            "images_with_captions": len(self.present),
            "images_present": sum(1 for f in self.present.values() if f),
            "images_missing": sum(1 for f in self.present.values() if not f),
            "captions_without_image_entry": self.orphans,
            "captions_rejected": self.rejected,
        }


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
    data = _load(path)
    licences = _licences(data)
    images = _images_by_id(data, path)
    dump_date = (data.get("info") or {}).get("date_created")
    found = _CaptionFile(path, Path(images_dir), images, licences, dump_date)
    _check_annotations(data, path)
    for ann in sorted(data["annotations"], key=lambda a: (int(a["image_id"]), int(a["id"]))):
        found.add(ann)
    if summary is not None:
        summary.update(found.summary())
    return from_rows(found.rows, PAIRS, where=str(path))


def _captions_by_image(table: pa.Table, require_image: bool) -> dict[str, list[dict]]:
    """The COCO rows of ``table`` by image id (only images with a file when ``require_image``)."""
    by_image: dict[str, list[dict]] = {}
    for row in table.to_pylist():
        if row["source"] != SOURCE:
            continue
        if require_image and row["image_status"] != "ok":
            continue
        by_image.setdefault(row["doc_id"], []).append(row)
    return by_image


def _subset_pair(
    image_id: str, captions: list[dict], rng: random.Random, min_captions: int, max_captions: int
) -> dict:
    """One labelled pair: k of the image's captions in random order (draws from ``rng``)."""
    captions = sorted(captions, key=lambda r: r["revision_id"])
    rng.shuffle(captions)
    hi = max(min_captions, min(max_captions, len(captions) - 1))
    chosen = captions[: rng.randint(min_captions, hi)]
    key = "subset:" + ",".join(str(r["revision_id"]) for r in chosen)
    return {
        **chosen[0],
        "pair_id": make_pair_id(SOURCE, image_id, key),
        "revision_id": None,
        "caption": None,  # the captions are the text here
        "text_blocks": [{"titles": [], "sentences": [r["caption"] for r in chosen]}],
    }


def _subset_summary(
    pairs: list[dict], n_images: int, available: int, seed: int, min_captions: int, max_captions: int,
    require_image: bool,
) -> dict:
    summary = {
        "subset_requested": n_images,
        "subset_available": available,
        "subset_drawn": len(pairs),
        "subset_seed": seed,
        "subset_require_image": require_image,
        "subset_captions_per_image": {
            str(k): sum(1 for p in pairs if len(p["text_blocks"][0]["sentences"]) == k)
            for k in range(min_captions, max_captions + 1)
        },
    }
    if len(pairs) < n_images:
        summary["subset_note"] = (
            f"only {available} images available "
            f"({'with an image file' if require_image else 'in the table'}); took all"
        )
    return summary


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
    by_image = _captions_by_image(table, require_image)
    candidates = sorted(by_image, key=int)
    rng = random.Random(seed)
    drawn = rng.sample(candidates, min(n_images, len(candidates)))
    pairs = [_subset_pair(i, by_image[i], rng, min_captions, max_captions) for i in drawn]
    labels = [
        {"pair_id": p["pair_id"], "cmi": 1.0, "sc": 1.0, "source": SOURCE, "annotator": ANNOTATOR}
        for p in pairs
    ]
    if summary is not None:
        summary.update(
            _subset_summary(pairs, n_images, len(candidates), seed, min_captions, max_captions, require_image)
        )
    return from_rows(pairs, PAIRS, "coco subset"), from_rows(
        labels, ANNOTATIONS, "coco subset labels"
    )


# --------------------------------------------------------------------------- cli


def _parse_args(argv: list[str]) -> argparse.Namespace:
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
    return args


def _report_pairs(out: Path, summary: dict) -> None:
    print(
        f"{out}: {summary['captions']} pairs, {summary['images_with_captions']} images "
        f"({summary['images_present']} present, {summary['images_missing']} missing)"
    )
    if summary["captions_without_image_entry"]:
        print(
            f"  {len(summary['captions_without_image_entry'])} captions name an image "
            "not in the file (skipped)"
        )
    for r in summary["captions_rejected"]:
        print(f"  caption {r['id']} (image {r['image_id']}) rejected: {r['reason']}", file=sys.stderr)


def _write_subset(
    args: argparse.Namespace, table: pa.Table, cfg: CocoConfig, seed: int, summary: dict
) -> None:
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


def cli_main(argv: list[str]) -> int:
    """``cmisc coco-pairs --captions FILE --images DIR --out PAIRS.parquet
    [--labelled-out LABELLED.parquet --annotations-out ANN.parquet] [--seed N]``."""
    from cmisc_model.config import DEFAULT_PARAMS, BaseConfig, load_section

    args = _parse_args(argv)
    params = args.params or (DEFAULT_PARAMS if DEFAULT_PARAMS.exists() else None)
    cfg = load_section(CocoConfig, "coco", params) if params else CocoConfig()
    base = load_section(BaseConfig, "base", params) if params else BaseConfig()

    summary: dict = {}
    table = coco_pairs(args.captions, args.images, summary)
    write_table(table, args.out, PAIRS, metadata={"cmisc.source": SOURCE})
    _report_pairs(args.out, summary)
    if args.labelled_out is not None:
        seed = (
            args.seed if args.seed is not None else cfg.seed if cfg.seed is not None else base.seed
        )
        _write_subset(args, table, cfg, seed, summary)
    spath = args.out.with_suffix(".summary.json")
    with atomic_path(spath) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"  summary: {spath}")
    return 0
