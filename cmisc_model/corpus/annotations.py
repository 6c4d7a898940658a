"""CMI/SC annotations: import, validate, join to pairs, and the labelled split.

Accepted inputs (one file, format recognised per row):

- the project schema as CSV (header ``pair_id,cmi,sc[,source,annotator]``) or
  JSONL (``{"pair_id", "cmi", "sc", "source"?, "annotator"?}``);
- the 2017 tools' JSONL exports (original_impl.md §9):
  bbcAnnotator ``{"name", "mi", "sc", "train", ...}`` -> the BBC pair of story
  ``data_train|data_test/name``; wikiAnnotator ``{"id", "section", "name":
  "/wiki/File:…", "mi", "sc", "valid", ...}`` -> the Wikipedia pair of page
  ``id`` and that file (records with ``valid: false`` are skipped, as 2017 did).

Labels must lie on the canonical scale: CMI {0, .25, .5, .75, 1}, SC {-1, -.5,
0, .5, 1}. An unknown value (the old 8-level CMI integers, 2017's -1/-3
"unknown" codes) is an error for that row, never mapped silently. A malformed
row is rejected with file and line number; every valid row is still imported.

The labelled split is stratified by (CMI, SC) cell with a seed, as 2017
(``round(0.89 n)`` of each cell to train), plus a validation part carved from
train for model selection. Departure from 2017: 2017 had no validation split
and selected checkpoints on the test set (original_impl.md §11.4).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from cmisc_model import schemas as S
from cmisc_model.errors import CmiscError


@dataclass
class RowError:
    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


def _label(value, levels: tuple[float, ...], name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(str(value).strip())
        except ValueError:
            raise ValueError(f"{name} {value!r} is not a number") from None
    for level in levels:
        if abs(float(value) - level) < 1e-6:
            return level
    raise ValueError(f"unknown {name} label {value!r} (allowed: {', '.join(f'{v:g}' for v in levels)})")


def _record_to_row(rec: dict) -> dict | None:
    """One record in any accepted format -> an ANNOTATIONS row, or None to skip."""
    if "pair_id" in rec:  # project schema
        pair_id = str(rec["pair_id"]).strip()
        if not pair_id:
            raise ValueError("empty pair_id")
        return {
            "pair_id": pair_id,
            "cmi": _label(rec.get("cmi"), S.CMI_LEVELS, "CMI"),
            "sc": _label(rec.get("sc"), S.SC_LEVELS, "SC"),
            "source": rec.get("source") or None,
            "annotator": rec.get("annotator") or None,
        }
    if "mi" in rec and "id" in rec and "section" in rec:  # 2017 wikiAnnotator export
        if rec.get("valid") is False:
            return None
        name = str(rec["name"]).rsplit("/", 1)[-1]
        key = S.normalise_file_title(name)
        return {
            "pair_id": S.make_pair_id("simplewiki", str(rec["id"]), key),
            "cmi": _label(rec["mi"], S.CMI_LEVELS, "CMI"),
            "sc": _label(rec["sc"], S.SC_LEVELS, "SC"),
            "source": "simplewiki",
            "annotator": "import:wikiAnnotator",
        }
    if "mi" in rec and "name" in rec and "train" in rec:  # 2017 bbcAnnotator export
        name = str(rec["name"])
        sub = "data_train" if rec["train"] else "data_test"
        return {
            "pair_id": S.make_pair_id("bbc", f"{sub}/{name}", f"{name}.jpg"),
            "cmi": _label(rec["mi"], S.CMI_LEVELS, "CMI"),
            "sc": _label(rec["sc"], S.SC_LEVELS, "SC"),
            "source": "bbc",
            "annotator": "import:bbcAnnotator",
        }
    raise ValueError(f"unrecognised record (keys: {', '.join(sorted(rec))})")


def _records(path: Path):
    """Yield (line number, record dict or exception) for CSV or JSONL."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        missing = {"pair_id", "cmi", "sc"} - set(reader.fieldnames or [])
        if missing:
            raise CmiscError(f"{path}: CSV header lacks {', '.join(sorted(missing))}")
        for i, rec in enumerate(reader, start=2):
            yield i, rec
        return
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            yield i, ValueError(f"not valid JSON ({e.msg})")
            continue
        yield i, rec if isinstance(rec, dict) else ValueError("not a JSON object")


def import_annotations(path: str | Path) -> tuple[pa.Table, list[RowError], int]:
    """Read an annotation file. Returns (valid rows, rejected rows, skipped count).

    A pair annotated twice keeps its first label; the second is rejected.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such annotation file")
    rows: list[dict] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    skipped = 0
    for line, rec in _records(path):
        if isinstance(rec, Exception):
            errors.append(RowError(str(path), line, str(rec)))
            continue
        try:
            row = _record_to_row(rec)
        except (ValueError, KeyError, TypeError) as e:
            errors.append(RowError(str(path), line, str(e).strip("'\"")))
            continue
        if row is None:
            skipped += 1
            continue
        if row["pair_id"] in seen:
            errors.append(RowError(str(path), line, f"pair {row['pair_id']} already labelled on line {seen[row['pair_id']]}"))
            continue
        seen[row["pair_id"]] = line
        rows.append(row)
    return S.from_rows(rows, S.ANNOTATIONS, str(path)), errors, skipped


def join_pairs(annotations: pa.Table, pairs: pa.Table) -> tuple[list[dict], list[str]]:
    """Attach labels to their pairs. Returns (labelled rows, pair_ids not found)."""
    by_id = {r["pair_id"]: r for r in pairs.to_pylist()}
    joined, unknown = [], []
    for a in annotations.to_pylist():
        pair = by_id.get(a["pair_id"])
        if pair is None:
            unknown.append(a["pair_id"])
            continue
        joined.append({**pair, "cmi": a["cmi"], "sc": a["sc"], "annotator": a["annotator"]})
    return joined, unknown


@dataclass
class LabelledSplitConfig:
    """How the labelled set is split (2017: seed 12345, 0.89 of each cell to train)."""

    train_fraction: float = 0.89
    val_fraction: float = 0.15  # share of the training part carved out for model selection


def split_labelled(rows: list[dict], seed: int, cfg: LabelledSplitConfig) -> list[dict]:
    """Grouped by document, stratified by (CMI, SC) cell.

    No document (an article, a news story, a COCO image with its captions) is
    in two splits: a lead pair carries its whole article, so an article's
    section pairs share text with it, and 2017's per-pair split let 46 of 91
    test pairs share an article with training pairs. Departure from 2017,
    which split pairs by cell only.

    Documents are taken largest first (ties in an order shuffled by ``seed``)
    and each goes to the split whose per-cell targets it helps most: test gets
    ``1 - train_fraction`` of each cell, val ``val_fraction`` of the rest.
    Rows come back sorted by pair_id with a ``split`` key.
    """
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in sorted(rows, key=lambda r: r["pair_id"]):
        groups[document_key(r)].append(r)
    cell_n: dict[tuple[float, float], int] = defaultdict(int)
    for r in rows:
        cell_n[(r["cmi"], r["sc"])] += 1
    share = {"test": 1 - cfg.train_fraction, "val": cfg.train_fraction * cfg.val_fraction}
    share["train"] = 1 - share["test"] - share["val"]
    target = {sp: {c: f * n for c, n in cell_n.items()} for sp, f in share.items()}
    have = {sp: defaultdict(float) for sp in share}
    rng = random.Random(seed)
    keys = sorted(groups)
    rng.shuffle(keys)
    keys.sort(key=lambda k: -len(groups[k]))  # stable: shuffled order within a size
    out = []
    for key in keys:
        cells = [(r["cmi"], r["sc"]) for r in groups[key]]

        def gain(sp: str, cells: list = cells) -> float:
            # relative need of this split for the group's cells (negative once over target)
            return sum((target[sp][c] - have[sp][c]) / max(target[sp][c], 1e-9) for c in cells) / len(cells)

        split = max(("train", "val", "test"), key=gain)  # ties: train first
        for c in cells:
            have[split][c] += 1
        out += [{**r, "split": split} for r in groups[key]]
    return sorted(out, key=lambda r: r["pair_id"])


def document_key(row: dict) -> tuple:
    """The document a pair comes from (COCO: the image, whose captions are its pairs)."""
    return (row.get("source"), row.get("doc_id") if row.get("doc_id") is not None else row["pair_id"])


def repeat_split(rows: list[dict], seed: int, repeat: int, cfg: LabelledSplitConfig) -> list[dict]:
    """The labelled split of evaluation repeat ``repeat``: repeat 0 is the
    split stored by the corpus stage; repeat k > 0 re-splits with seed + k, so
    results can be reported as mean ± sd over K splits (a 92-item test set
    swings by ±10 points between splits)."""
    if repeat == 0:
        return sorted(rows, key=lambda r: r["pair_id"])
    return split_labelled([{k: v for k, v in r.items() if k != "split"} for r in rows], seed + repeat, cfg)


def label_distribution(rows: list[dict]) -> dict:
    """Counts per CMI and SC level (paper Tables 1 and 2), overall and per source."""

    def counts(rs):
        return {
            "n": len(rs),
            "cmi": {f"{v:g}": sum(abs(r["cmi"] - v) < 1e-6 for r in rs) for v in S.CMI_LEVELS},
            "sc": {f"{v:g}": sum(abs(r["sc"] - v) < 1e-6 for r in rs) for v in S.SC_LEVELS},
            "mean_sc": round(sum(r["sc"] for r in rs) / len(rs), 4) if rs else None,
        }

    by_source: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_source[r.get("source") or "unknown"].append(r)
    return {"all": counts(rows), **{s: counts(rs) for s, rs in sorted(by_source.items())}}


def cli_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="cmisc annotations", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    imp = sub.add_parser("import", help="validate an annotation file and write it in the project schema")
    imp.add_argument("file", type=Path, help="CSV or JSONL (project schema or a 2017 tool export)")
    imp.add_argument("--out", type=Path, help="annotations Parquet to write (default: FILE with .parquet)")
    imp.add_argument("--pairs", type=Path, nargs="*", default=[], help="pairs Parquet files to join against")
    args = parser.parse_args(argv)

    table, errors, skipped = import_annotations(args.file)
    for e in errors:
        print(f"rejected {e}", file=sys.stderr)
    if args.pairs:
        pairs = pa.concat_tables([S.read_table(p, S.PAIRS) for p in args.pairs])
        _, unknown = join_pairs(table, pairs)
        for pid in unknown:
            print(f"warning: {args.file}: pair {pid} is not in the given pairs files", file=sys.stderr)
    out = args.out or args.file.with_suffix(".parquet")
    S.write_table(table, out, S.ANNOTATIONS)
    dist = label_distribution(table.to_pylist())["all"]
    print(
        f"{out}: {table.num_rows} annotations imported, {len(errors)} rejected, {skipped} skipped (not valid)\n"
        f"CMI {dist['cmi']}\nSC  {dist['sc']}"
    )
    # 3 = written, but some rows were rejected (the user must look at them).
    return 3 if errors else 0
