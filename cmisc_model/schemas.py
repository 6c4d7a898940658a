"""Data contracts: the pyarrow schemas every stage reads and writes.

One schema per artifact (design.md, "Data flow"):

- ``PAIRS``       one row per image–text pair, the same for every source;
- ``CORPUS``      ``PAIRS`` plus the autoencoder split of each row;
- ``ANNOTATIONS`` CMI/SC labels of a labelled subset, keyed by ``pair_id``;
- ``LABELLED``    the labelled pairs themselves (``PAIRS`` + labels + classifier split),
                  self-contained so the classifier needs no join at training time;
- ``VOCAB``       token, id, count (0 = pad, 1 = unknown, then by frequency);
- ``WORD2VEC``    token, id, 300-d vector;
- ``EMBEDDINGS``  one 2400-d article embedding per pair;
- ``PREDICTIONS`` one row per (system, repeat, scored pair): true and predicted classes;
- ``SCORES``      ``cmisc predict``: one row per input pair, scored or with the reason it was not.

``read_table`` validates a Parquet file against a schema and names the file,
the column and (for values) the row that is wrong. ``write_table`` is atomic:
it writes a temporary file next to the target and renames it, so a crash never
leaves a half-written artifact and never destroys the previous one.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

# --------------------------------------------------------------------------- labels

CMI_LEVELS = (0.0, 0.25, 0.5, 0.75, 1.0)  # classes 0..4
SC_LEVELS = (-1.0, -0.5, 0.0, 0.5, 1.0)  # classes 0..4, class = 2*sc + 2


class SchemaError(ValueError):
    """A file does not follow its data contract. The message names file, column and row."""


class UnwritableError(OSError):
    """An output folder cannot be written; the message names it."""


def cmi_class(cmi: float) -> int:
    """CMI value on the label scale -> class 0..4; anything else is an error, never rounded."""
    for k, level in enumerate(CMI_LEVELS):
        if abs(float(cmi) - level) < 1e-6:
            return k
    raise ValueError(f"CMI {cmi!r} is not one of {list(CMI_LEVELS)}")


def sc_class(sc: float) -> int:
    """SC value on the label scale -> class 0..4 (class = 2*sc + 2)."""
    for k, level in enumerate(SC_LEVELS):
        if abs(float(sc) - level) < 1e-6:
            return k
    raise ValueError(f"SC {sc!r} is not one of {list(SC_LEVELS)}")


# --------------------------------------------------------------------------- ids

def normalise_file_title(name: str) -> str:
    """MediaWiki file name as stored: namespace prefix dropped, spaces as ``_``,
    first letter upper case (how MediaWiki and upload.wikimedia.org spell it)."""
    name = name.strip()
    if ":" in name:
        prefix, rest = name.split(":", 1)
        # Only a namespace-like prefix ("File:", "Image:", "Datei:") is dropped.
        if prefix and " " not in prefix.strip() and rest:
            name = rest
    name = "_".join(name.replace("_", " ").split())
    return name[:1].upper() + name[1:]


def make_pair_id(source: str, doc_id: str, image_key: str) -> str:
    """Stable pair id: the first 16 hex digits of sha1(source, doc_id, image_key).

    ``image_key`` is what identifies the image inside its document: the
    normalised file title for Wikipedia (``#2`` appended for a second use on the
    same page), the story's image file name for BBC, the caption id for COCO.
    """
    h = hashlib.sha1(f"{source}\x1f{doc_id}\x1f{image_key}".encode())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- schemas

TEXT_BLOCK = pa.struct(
    [
        pa.field("titles", pa.list_(pa.string()), nullable=False),
        pa.field("sentences", pa.list_(pa.string()), nullable=False),
    ]
)

PAIRS = pa.schema(
    [
        pa.field("pair_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("doc_title", pa.string()),
        pa.field("revision_id", pa.int64()),
        pa.field("revision_timestamp", pa.string()),
        pa.field("url", pa.string()),
        pa.field("position", pa.string(), nullable=False),  # lead | section
        pa.field("section_path", pa.list_(pa.string()), nullable=False),
        pa.field("text_blocks", pa.list_(TEXT_BLOCK), nullable=False),
        pa.field("caption", pa.string()),
        pa.field("alt", pa.string()),
        pa.field("image_title", pa.string()),
        pa.field("image_url", pa.string()),
        pa.field("image_sha256", pa.string()),
        pa.field("image_path", pa.string()),
        pa.field("image_width", pa.int32()),
        pa.field("image_height", pa.int32()),
        pa.field("image_format", pa.string()),
        pa.field("image_status", pa.string(), nullable=False),  # ok | missing | rejected:<reason>
        pa.field("licence", pa.string()),
        pa.field("attribution", pa.string()),
        pa.field("retrieved_at", pa.string()),  # ISO 8601, UTC
        pa.field("dump_date", pa.string()),
    ],
    metadata={"cmisc.schema": "pairs/1"},
)

# "heldout": a labelled world of its own (another seed), never used for training or
# selection; every system is scored on all of it.
SPLITS = ("train", "val", "test", "heldout")

CORPUS = pa.schema(
    list(PAIRS) + [pa.field("split", pa.string(), nullable=False)],
    metadata={"cmisc.schema": "corpus/1"},
)

ANNOTATIONS = pa.schema(
    [
        pa.field("pair_id", pa.string(), nullable=False),
        pa.field("cmi", pa.float32(), nullable=False),
        pa.field("sc", pa.float32(), nullable=False),
        pa.field("source", pa.string()),
        pa.field("annotator", pa.string()),
    ],
    metadata={"cmisc.schema": "annotations/1"},
)

LABELLED = pa.schema(
    list(PAIRS)
    + [
        pa.field("cmi", pa.float32(), nullable=False),
        pa.field("sc", pa.float32(), nullable=False),
        pa.field("annotator", pa.string()),
        pa.field("split", pa.string(), nullable=False),
    ],
    metadata={"cmisc.schema": "labelled/1"},
)

VOCAB = pa.schema(
    [
        pa.field("token", pa.string(), nullable=False),
        pa.field("id", pa.int32(), nullable=False),
        pa.field("count", pa.int64(), nullable=False),
    ],
    metadata={"cmisc.schema": "vocab/1"},
)

EMBEDDING_DIM = 300
ARTICLE_DIM = 2400

WORD2VEC = pa.schema(
    [
        pa.field("token", pa.string(), nullable=False),
        pa.field("id", pa.int32(), nullable=False),
        pa.field("vector", pa.list_(pa.float32(), EMBEDDING_DIM), nullable=False),
    ],
    metadata={"cmisc.schema": "word2vec/1"},
)

EMBEDDINGS = pa.schema(
    [
        pa.field("pair_id", pa.string(), nullable=False),
        pa.field("vector", pa.list_(pa.float32(), ARTICLE_DIM), nullable=False),
    ],
    metadata={"cmisc.schema": "embeddings/1"},
)

N_CLASSES = 5

PREDICTIONS = pa.schema(
    [
        pa.field("system", pa.string(), nullable=False),  # classifier, classifier_no_ae, svm, most_frequent
        pa.field("repeat", pa.int32(), nullable=False),  # which labelled split (0 = the corpus stage's)
        pa.field("pair_id", pa.string(), nullable=False),
        pa.field("source", pa.string()),
        pa.field("split", pa.string(), nullable=False),  # the split the row was scored on: val, test or heldout
        pa.field("cmi_true", pa.int8(), nullable=False),  # classes 0..4
        pa.field("sc_true", pa.int8(), nullable=False),
        pa.field("cmi_pred", pa.int8(), nullable=False),
        pa.field("sc_pred", pa.int8(), nullable=False),
        pa.field("cmi_prob", pa.list_(pa.float32(), N_CLASSES)),  # null where a system has no probabilities
        pa.field("sc_prob", pa.list_(pa.float32(), N_CLASSES)),
    ],
    metadata={"cmisc.schema": "predictions/1"},
)

# ``cmisc predict``: the batch Parquet has one row per input pair, and the
# single-pair JSON is one such row (pair_id null). Field names follow
# PREDICTIONS (cmi_pred, cmi_prob). Rows it could not score keep scored=false,
# a reason and null scores.
SCORES = pa.schema(
    [
        pa.field("pair_id", pa.string(), nullable=False),
        pa.field("source", pa.string()),
        pa.field("scored", pa.bool_(), nullable=False),
        pa.field("reason", pa.string()),  # why not scored; null when scored
        pa.field("cmi_pred", pa.int8()),  # most probable class 0..4
        pa.field("cmi_level", pa.float32()),  # its level: CMI_LEVELS[cmi_pred]
        pa.field("cmi_expected", pa.float32()),  # sum(p x level), in [0, 1]
        pa.field("cmi_prob", pa.list_(pa.float32(), N_CLASSES)),  # per level, in CMI_LEVELS order
        pa.field("sc_pred", pa.int8()),
        pa.field("sc_level", pa.float32()),
        pa.field("sc_expected", pa.float32()),  # in [-1, 1]
        pa.field("sc_prob", pa.list_(pa.float32(), N_CLASSES)),  # in SC_LEVELS order
        pa.field("sentences", pa.int32()),  # what the model read, after truncation
        pa.field("tokens", pa.int32()),
        pa.field("unknown_tokens", pa.int32()),  # tokens outside the model's vocabulary
        pa.field("warnings", pa.list_(pa.string())),  # e.g. most tokens unknown: input unlike training
    ],
    metadata={"cmisc.schema": "scores/1"},
)

SCHEMAS: dict[str, pa.Schema] = {
    "pairs": PAIRS,
    "corpus": CORPUS,
    "annotations": ANNOTATIONS,
    "labelled": LABELLED,
    "vocab": VOCAB,
    "word2vec": WORD2VEC,
    "embeddings": EMBEDDINGS,
    "predictions": PREDICTIONS,
    "scores": SCORES,
}


# --------------------------------------------------------------------------- value rules

def _check_values(table: pa.Table, schema: pa.Schema, where: str) -> None:
    """Rules a type cannot express: label levels, split names, status words, positions."""

    def fail(column: str, row: int, value: object, rule: str) -> None:
        raise SchemaError(f"{where}: column {column!r}, row {row}: {value!r} {rule}")

    names = set(schema.names)
    if "cmi" in names:
        for i, v in enumerate(table.column("cmi").to_pylist()):
            if not any(abs(v - lv) < 1e-6 for lv in CMI_LEVELS):
                fail("cmi", i, v, f"is not one of {list(CMI_LEVELS)}")
        for i, v in enumerate(table.column("sc").to_pylist()):
            if not any(abs(v - lv) < 1e-6 for lv in SC_LEVELS):
                fail("sc", i, v, f"is not one of {list(SC_LEVELS)}")
    if "position" in names:
        for i, v in enumerate(table.column("position").to_pylist()):
            if v not in ("lead", "section"):
                fail("position", i, v, "is not 'lead' or 'section'")
    if "image_status" in names:
        for i, v in enumerate(table.column("image_status").to_pylist()):
            if not (v in ("ok", "missing") or (v.startswith("rejected:") and len(v) > 9)):
                fail("image_status", i, v, "is not 'ok', 'missing' or 'rejected:<reason>'")
    if "split" in names:
        for i, v in enumerate(table.column("split").to_pylist()):
            if v not in SPLITS:
                fail("split", i, v, f"is not one of {list(SPLITS)}")
    if "pair_id" in names:
        # A pair appears once per file; in predictions, once per (system, repeat).
        group = [table.column(c).to_pylist() for c in ("system", "repeat") if c in names]
        seen: dict[tuple, int] = {}
        for i, v in enumerate(table.column("pair_id").to_pylist()):
            key = (*(g[i] for g in group), v)
            if key in seen:
                fail("pair_id", i, v, f"repeats row {seen[key]}")
            seen[key] = i


def validate(table: pa.Table, schema: pa.Schema, where: str = "<table>") -> pa.Table:
    """Check columns, types, nulls and value rules; return the table in schema order."""
    for field in schema:
        if field.name not in table.column_names:
            raise SchemaError(f"{where}: column {field.name!r} is missing")
        col = table.column(field.name)
        if not col.type.equals(field.type):
            try:
                col = col.cast(field.type)
            except pa.ArrowException as e:
                raise SchemaError(
                    f"{where}: column {field.name!r} has type {col.type}, expected {field.type}"
                ) from e
            table = table.set_column(table.column_names.index(field.name), field.name, col)
        if not field.nullable and col.null_count:
            row = next(i for i, v in enumerate(col.is_null().to_pylist()) if v)
            raise SchemaError(f"{where}: column {field.name!r}, row {row}: null in a required column")
    extra = [c for c in table.column_names if c not in schema.names]
    if extra:
        raise SchemaError(f"{where}: unexpected column(s) {extra}")
    table = table.select(schema.names).cast(schema)
    _check_values(table, schema, where)
    return table


def from_rows(rows: Iterable[Mapping], schema: pa.Schema, where: str = "<rows>") -> pa.Table:
    """Build and validate a table from dicts; missing nullable keys become null."""
    rows = list(rows)
    columns = {f.name: [r.get(f.name) for r in rows] for f in schema}
    try:
        table = pa.table({f.name: pa.array(columns[f.name], type=f.type) for f in schema})
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise SchemaError(f"{where}: {e}") from e
    return validate(table, schema, where)


# --------------------------------------------------------------------------- io

def atomic_path(path: str | os.PathLike) -> _AtomicPath:
    """Context manager yielding a temporary path that replaces ``path`` on success.

    The previous file stays untouched when the body raises. Fails early, with
    the path in the message, when the folder cannot be written.
    """
    return _AtomicPath(Path(path))


class _AtomicPath:
    def __init__(self, target: Path):
        self.target = target
        self.tmp: Path | None = None

    def __enter__(self) -> Path:
        try:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(
                prefix=f".{self.target.name}.", suffix=".tmp", dir=self.target.parent
            )
        except OSError as e:
            raise UnwritableError(f"cannot write to {self.target.parent}: {e.strerror}") from e
        os.close(fd)
        # mkstemp makes the file private (0600); artifacts get the usual umask-based mode.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(name, 0o666 & ~umask)
        self.tmp = Path(name)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self.tmp is not None
        if exc_type is None:
            os.replace(self.tmp, self.target)
        else:
            self.tmp.unlink(missing_ok=True)


def write_table(
    table: pa.Table,
    path: str | os.PathLike,
    schema: pa.Schema,
    metadata: Mapping[str, str] | None = None,
    row_group_size: int = 1024,
) -> Path:
    """Validate and write a Parquet file atomically. ``metadata`` lands in the
    schema's key/value metadata (e.g. ``cmisc.incomplete``)."""
    path = Path(path)
    table = validate(table, schema, str(path))
    meta = dict(schema.metadata or {})
    meta.update({k.encode(): str(v).encode() for k, v in (metadata or {}).items()})
    table = table.replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, row_group_size=row_group_size, compression="zstd")
    return path


def open_parquet(path: str | os.PathLike, what: str = "file", error: type[Exception] = SchemaError) -> pa.Table:
    """A Parquet file as it is, unvalidated; a missing or unreadable file is an error naming it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such {what}")
    try:
        return pq.read_table(path)
    except pa.ArrowInvalid as e:
        raise error(f"{path}: not a readable Parquet file ({e})") from e


def read_table(path: str | os.PathLike, schema: pa.Schema) -> pa.Table:
    """Read a Parquet file and validate it; errors name the file and column."""
    path = Path(path)
    table = open_parquet(path)
    meta = table.schema.metadata or {}
    table = validate(table, schema, str(path))
    return table.replace_schema_metadata({**(schema.metadata or {}), **meta})


def file_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The key/value metadata of a Parquet file, decoded."""
    meta = pq.read_schema(path).metadata or {}
    return {k.decode(): v.decode() for k, v in meta.items()}


def remove_stale_temps(out: str | os.PathLike) -> list[Path]:
    """Delete the temporary files (``.OUT.*.tmp``) a killed run left beside ``out``.

    One run writes a given output at a time, so any such file is a leftover.
    """
    out = Path(out)
    removed = []
    for tmp in out.parent.glob(f".{out.name}.*.tmp"):
        try:
            tmp.unlink()
            removed.append(tmp)
        except FileNotFoundError:
            pass
    return removed
