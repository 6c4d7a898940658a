"""``cmisc inspect PATH``: what is in any Parquet artifact of the pipeline, the scores of ``cmisc predict`` included.

Prints the rows, the schema it follows (recognised from the file's
``cmisc.schema`` metadata, else from its columns), per-source / per-split /
image-status counts where those columns exist, and the CMI/SC label
distribution of labelled files. ``--json`` prints the same as JSON.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cmisc_model import schemas as S
from cmisc_model.corpus.annotations import label_distribution
from cmisc_model.errors import CmiscError


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def _schema_name(path: Path) -> str | None:
    try:
        meta = S.file_metadata(path)
    except (pa.ArrowInvalid, OSError) as e:  # pyarrow's own message is a paragraph about footers
        raise CmiscError(f"{path}: not a Parquet file ({_first_line(e)})") from e
    tag = meta.get("cmisc.schema", "").split("/")[0]
    if tag in S.SCHEMAS:
        return tag
    names = set(pq.read_schema(path).names)
    for name, schema in S.SCHEMAS.items():
        if set(schema.names) == names:
            return name
    return None


def summarise(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise CmiscError(f"{path}: a folder, not a Parquet file")
    name = _schema_name(path)
    table = S.read_table(path, S.SCHEMAS[name]) if name else pq.read_table(path)
    info: dict = {
        "path": str(path),
        "rows": table.num_rows,
        "schema": name or "unknown",
        "columns": {f.name: str(f.type) for f in table.schema},
        "metadata": {k: v for k, v in S.file_metadata(path).items() if k.startswith("cmisc.")},
    }
    cols = set(table.column_names)
    for col in ("source", "split", "position"):
        if col in cols:
            info[f"by_{col}"] = dict(sorted(Counter(table.column(col).to_pylist()).items()))
    if "image_status" in cols:
        info["by_image_status"] = dict(sorted(Counter(table.column("image_status").to_pylist()).items()))
    if "scored" in cols:  # cmisc predict's scores: how many were scored, and why the others were not
        info["by_scored"] = dict(sorted(Counter(str(v).lower() for v in table.column("scored").to_pylist()).items()))
        reasons = Counter(r for r in table.column("reason").to_pylist() if r is not None)
        if reasons:
            info["by_reason"] = dict(sorted(reasons.items()))
    if {"cmi", "sc"} <= cols:
        rows = table.select([c for c in ("cmi", "sc", "source") if c in cols]).to_pylist()
        info["labels"] = label_distribution(rows)
    return info


def _print(info: dict) -> None:
    print(f"{info['path']}: {info['rows']} rows, schema {info['schema']}")
    for k, v in info["metadata"].items():
        print(f"  {k} = {v}")
    print("columns:")
    for c, t in info["columns"].items():
        print(f"  {c}: {t}")
    for key in ("by_source", "by_split", "by_position", "by_image_status", "by_scored", "by_reason"):
        if key in info:
            print(f"{key.replace('_', ' ')}: " + ", ".join(f"{k}={v}" for k, v in info[key].items()))
    if "labels" in info:
        for group, d in info["labels"].items():
            print(f"labels [{group}] n={d['n']} mean SC={d['mean_sc']}")
            print("  CMI " + "  ".join(f"{k}:{v}" for k, v in d["cmi"].items()))
            print("  SC  " + "  ".join(f"{k}:{v}" for k, v in d["sc"].items()))


def cli_main(argv: list[str]) -> int:
    from cmisc_model.commands import command_parser

    parser = command_parser("cmisc inspect", __doc__)
    parser.add_argument("paths", type=Path, nargs="+", metavar="PATH", help="Parquet files written by the pipeline")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    infos = [summarise(p) for p in args.paths]
    if args.json:
        print(json.dumps(infos if len(infos) > 1 else infos[0], indent=2))
    else:
        for info in infos:
            _print(info)
    return 0
