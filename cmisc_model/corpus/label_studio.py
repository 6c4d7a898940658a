"""Annotating real pairs in Label Studio: tasks out, CMI/SC labels back.

``cmisc annotate export PAIRS... --out DIR`` samples pairs with a stored
image (stratified by source, seeded) and writes ``DIR/tasks.json`` (Label
Studio's task format: the image as a local-files URL, or inline, and the text
as the model reads it: section titles, then sentences, cut where the model
cuts), ``DIR/config.xml`` (two required single choices, CMI {0, .25, .5, .75,
1} and SC {-1, -.5, 0, .5, 1}, whose hints quote the paper) and
``DIR/instructions.html``. With ``--url`` and a token (``--token`` or
``$LABEL_STUDIO_API_KEY``) it also creates the project: config, instructions,
K annotators per task, a Local Storage for the images, the tasks.

``cmisc annotate import EXPORT.json --pairs PAIRS... --out DIR`` (or
``--url … --project ID``, which saves the export as ``DIR/export.json``
first) reads a JSON or JSON_MIN export and writes, atomically:

- ``ratings.parquet``: one row per pair and annotator (``RATINGS``), merged
  with what an earlier import left there: an annotation seen again replaces
  its row, nothing else is dropped;
- ``annotations.parquet``: the ``ANNOTATIONS`` schema, one row per pair (the
  consensus, ``agreement.consensus``): what ``data.annotations`` points at;
- ``agreement.json`` (Cohen's and Fleiss' κ) and ``disagreements.csv``.

A task whose pair is not in the pairs files, an annotation lacking a label
(half-filled) or off the scale is rejected with its task id (exit 3, the rest
imported); skipped and unlabelled tasks are listed and left out. An export
that is not a list of tasks is an error (exit 2) and writes nothing.

Label Studio is not a dependency of cmisc: label-studio 1.23.2 (and
label-studio-sdk 2.1.2 alone) pin numpy < 2.3 and pyarrow < 25, so the
bridge speaks the REST API with ``requests`` and the server runs from its own
virtual environment (docs/annotating.md), started with ``SERVER_ENV`` (no
version check, analytics or Sentry) and stopped with SIGTERM.
"""

from __future__ import annotations

import argparse
import base64
import csv
import io
import json
import mimetypes
import os
import random
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote
from xml.sax.saxutils import escape, quoteattr

import pyarrow as pa
import pyarrow.parquet as pq

from cmisc_model import schemas as S
from cmisc_model.commands import command_parser
from cmisc_model.corpus import agreement as A
from cmisc_model.errors import CmiscError
from cmisc_model.text.normalise import TextConfig, tokenise

# Wherever cmisc starts or documents the server: it phones home otherwise.
SERVER_ENV = {"LATEST_VERSION_CHECK": "false", "COLLECT_ANALYTICS": "false",
              "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": ""}

# One row per pair and annotator: ANNOTATIONS' columns (annotator required) plus where the
# label came from. A pair appears once per annotator (S.validate's pair_id rule, per annotator).
RATINGS = pa.schema(
    [
        pa.field("pair_id", pa.string(), nullable=False),
        pa.field("cmi", pa.float32(), nullable=False),
        pa.field("sc", pa.float32(), nullable=False),
        pa.field("source", pa.string()),
        pa.field("annotator", pa.string(), nullable=False),  # label-studio:<user id>
        pa.field("task_id", pa.int64()),
        pa.field("annotation_id", pa.int64()),
        pa.field("updated_at", pa.string()),  # ISO 8601, as Label Studio wrote it
    ],
    metadata={"cmisc.schema": "ratings/1"},
)

LEVELS = A.MEASURES


def server_env(data_dir: str | Path, document_root: str | Path) -> dict[str, str]:
    """The environment to start ``label-studio`` with: its data under ``data_dir``
    (not the home directory), local files served from ``document_root``."""
    return {**SERVER_ENV, "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
            "LOCAL_FILES_SERVING_ENABLED": "true", "LOCAL_FILES_DOCUMENT_ROOT": str(Path(document_root).resolve())}


# --------------------------------------------------------------------------- the paper's definitions

CMI_DEFINITION = (
    "Cross-modal Mutual Information (CMI) \"focuses solely on the mutual presence of concepts\": "
    "\"the annotator has to estimate the amount of shared concepts as well as their influence and "
    "importance\", \"from label 0 (no intersection) to label 1 (large intersection)\" "
    "(Henning & Ewerth 2017, §3.2, §4.4).")
SC_DEFINITION = (
    "Semantic Correlation (SC) \"aims to reveal how much meaning a text and an image share\": "
    "\"A negative score shall indicate that the co-occurrence of an image and a text disturbs the "
    "comprehension of the depicted information, whereas a positive score eases the transfer of "
    "knowledge\" (§3.2).")
CMI_HINTS = {
    "0": "T ∩ I = ∅: no intersection (Table 1)",
    "0.25": "T ∩ I ≠ ∅: a few shared concepts, e.g. an article about austerity politics and a "
            "piggy bank, \"only one concept 'saving money'\" (§3.2)",
    "0.5": "T ∩ I ≠ ∅: several shared concepts, \"abstract (e.g., spring) or highly visual\" (§4.4)",
    "0.75": "T ∩ I ≠ ∅: most of the image's concepts are in the text",
    "1": "large intersection: \"Image captioning samples are a prominent example for high CMI\" (§3.2)",
}
SC_HINTS = {
    "-1": "\"If concepts appear that contradict one another, the correlation shall be estimated as "
          "negative\": relevant contradicting concepts, high negative correlation (§3.2)",
    "-0.5": "\"Depending on the relevance of the contradicting concepts, the negative correlation "
            "might be low or high\": low negative correlation (§3.2)",
    "0": "\"If two entities do not have any concepts in common, they are considered as unrelated "
         "(no correlation)\" (§3.2)",
    "0.5": "the pair eases the transfer of knowledge somewhat; a minor wrongly stated detail "
           "(\"a color might be wrongly stated in the text\") may still be positive (§3.2)",
    "1": "\"a positive score eases the transfer of knowledge\": image and text help each other fully (§3.2)",
}


def _choices(name: str, title: str, hints: dict[str, str]) -> str:
    options = "\n".join(f"    <Choice value={quoteattr(v)} hint={quoteattr(h)}/>" for v, h in hints.items())
    return (f'  <Header value={quoteattr(title)} size="5"/>\n'
            f'  <Choices name="{name}" toName="image" choice="single-radio" required="true" '
            f'showInline="true" requiredMessage={quoteattr(f"Choose a {name.upper()} level")}>\n{options}\n  </Choices>')


def labelling_config() -> str:
    """The Label Studio labelling config: image, text, CMI and SC (both required)."""
    return "\n".join([
        "<View>",
        '  <Header value="$heading" size="4"/>',
        '  <Image name="image" value="$image" maxWidth="100%" maxHeight="480px"/>',
        '  <Text name="text" value="$text"/>',
        _choices("cmi", "CMI: how many concepts do image and text share?", CMI_HINTS),
        f"  <Header value={quoteattr(CMI_DEFINITION)} size=\"6\"/>",
        _choices("sc", "SC: how much meaning do they share?", SC_HINTS),
        f"  <Header value={quoteattr(SC_DEFINITION)} size=\"6\"/>",
        "</View>",
    ]) + "\n"


def instructions() -> str:
    """The project's instructions (HTML): both definitions and every level's hint."""
    def table(hints: dict[str, str]) -> str:
        return "<ul>" + "".join(f"<li><b>{escape(v)}</b>: {escape(h)}</li>" for v, h in hints.items()) + "</ul>"

    return (f"<p>{escape(CMI_DEFINITION)}</p>{table(CMI_HINTS)}<p>{escape(SC_DEFINITION)}</p>{table(SC_HINTS)}"
            "<p>The text is what the model reads: headings first (## …), then sentences, cut after 50 "
            "sentences of 40 tokens. Skip a pair whose text is meaningless; it is left out.</p>")


# --------------------------------------------------------------------------- tasks


def _cut(sentence: str, max_tokens: int) -> str:
    """The sentence up to its ``max_tokens``-th token (what the model reads), '…' where cut."""
    if len(tokenise(sentence)) <= max_tokens:
        return sentence
    words, lo, hi = sentence.split(), 0, len(sentence.split())
    while lo < hi:  # longest word prefix with at most max_tokens tokens
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if len(tokenise(" ".join(words[:mid]))) <= max_tokens else (lo, mid - 1)
    return " ".join(words[:lo]) + " …"


def model_text(text_blocks: list[dict], cfg: TextConfig) -> str:
    """The text of a pair as the model reads it (TextNormaliser.blocks), before tokenising:
    per block its titles (``## `` lines, when include_titles) then its sentences; empty ones
    dropped, at most max_sentences, each cut at max_tokens. British spelling is kept."""
    lines: list[str] = []
    for block in text_blocks or []:
        titles = (block.get("titles") or []) if cfg.include_titles else []
        for kind, line in [("title", t) for t in titles] + [("sentence", s) for s in block.get("sentences") or []]:
            if len(lines) >= cfg.max_sentences:
                return "\n".join(lines)
            if tokenise(line):
                line = _cut(line.strip(), cfg.max_tokens)
                lines.append(f"## {line}" if kind == "title" else line)
    return "\n".join(lines)


def _allocate(sizes: dict[str, int], n: int) -> dict[str, int]:
    """``n`` split over the sources in proportion to their sizes (largest remainder),
    at least one each where ``n`` allows."""
    total = sum(sizes.values())
    if n >= total:
        return dict(sizes)
    share = {s: n * k / total for s, k in sizes.items()}
    floor = 1 if n >= len(sizes) else 0
    take = {s: min(sizes[s], max(floor, int(share[s]))) for s in sizes}
    for s in sorted(sizes, key=lambda s: (int(share[s]) - share[s], s)):  # largest remainder first
        if sum(take.values()) >= n:
            break
        take[s] += take[s] < sizes[s]
    while sum(take.values()) < n:  # remainders used up: fill where room is left
        s = max((s for s in sizes if take[s] < sizes[s]), key=lambda s: (sizes[s] - take[s], s))
        take[s] += 1
    while sum(take.values()) > n:  # the floor of one each overshot
        take[max(take, key=lambda s: (take[s], s))] -= 1
    return take


def sample_pairs(rows: list[dict], n: int, seed: int) -> list[dict]:
    """``n`` pairs stratified by source, seeded; in a shuffled (seeded) order for annotation."""
    by_source: dict[str, list[dict]] = defaultdict(list)
    for r in sorted(rows, key=lambda r: r["pair_id"]):
        by_source[r["source"]].append(r)
    take = _allocate({s: len(rs) for s, rs in by_source.items()}, n)
    rng = random.Random(seed)
    chosen = [r for s in sorted(by_source) for r in rng.sample(by_source[s], take[s])]
    rng.shuffle(chosen)
    return chosen


def _image_value(path: str, root: Path, images: str) -> str:
    file = Path(path).resolve()
    if images == "inline":
        mime = mimetypes.guess_type(file.name)[0] or "image/jpeg"
        return f"data:{mime};base64,{base64.b64encode(file.read_bytes()).decode()}"
    try:
        rel = file.relative_to(root)
    except ValueError:
        raise CmiscError(f"{path}: not under the document root {root} (give --document-root)") from None
    return "/data/local-files/?d=" + quote(rel.as_posix())


def make_task(row: dict, cfg: TextConfig, root: Path, images: str) -> dict:
    """One Label Studio task; ``data`` keys must not clash with JSON_MIN's (id, cmi, sc, annotator)."""
    where = " › ".join([row.get("doc_title") or row["doc_id"], *(row.get("section_path") or [])])
    return {"data": {
        "pair_id": row["pair_id"],
        "source": row["source"],
        "heading": f"{where} ({row['source']}, {row['position']})",
        "image": _image_value(row["image_path"], root, images),
        "text": model_text(row["text_blocks"], cfg),
    }}


def usable_pairs(paths: list[Path]) -> tuple[list[dict], int]:
    """Pairs whose image is stored and present; also returns how many were left out."""
    rows = [r for p in paths for r in S.read_table(p, S.PAIRS).to_pylist()]
    ok = [r for r in rows if r["image_status"] == "ok" and r.get("image_path") and Path(r["image_path"]).is_file()]
    if not ok:
        raise CmiscError(f"{', '.join(map(str, paths))}: no pair has a stored image (run cmisc images first)")
    return ok, len(rows) - len(ok)


def write_export(out: Path, tasks: list[dict]) -> None:
    """tasks.json, config.xml and instructions.html in ``out``, each written atomically."""
    for name, text in [("tasks.json", json.dumps(tasks, indent=1, ensure_ascii=False) + "\n"),
                       ("config.xml", labelling_config()), ("instructions.html", instructions() + "\n")]:
        with S.atomic_path(out / name) as tmp:
            tmp.write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------- the REST API


class LabelStudio:
    """The few Label Studio REST calls cmisc needs, with ``requests``.

    ``token``: a legacy token (``label-studio start --user-token``, which the
    server accepts only if its first start had ``--enable-legacy-api-token``)
    or a personal access token (a JWT, exchanged for an access token)."""

    def __init__(self, url: str, token: str, timeout: float = 60.0):
        import requests

        if not token:
            raise CmiscError("no Label Studio token: give --token or set LABEL_STUDIO_API_KEY")
        self.url, self.timeout = url.rstrip("/"), timeout
        self.session = requests.Session()
        if token.count(".") == 2:  # personal access token (JWT refresh token)
            access = self.request("POST", "/api/token/refresh", json={"refresh": token})["access"]
            self.session.headers["Authorization"] = f"Bearer {access}"
        else:
            self.session.headers["Authorization"] = f"Token {token}"

    def request(self, method: str, path: str, **kwargs):
        import requests

        try:
            r = self.session.request(method, self.url + path, timeout=self.timeout, **kwargs)
        except requests.RequestException as e:
            raise CmiscError(f"Label Studio at {self.url}: {type(e).__name__}: {e}") from None
        if r.status_code == 401:
            raise CmiscError(f"{self.url}: 401, the token was refused (a legacy --user-token needs "
                             "--enable-legacy-api-token on the server's first start)")
        if not r.ok:
            try:
                body = r.json()
                detail = body.get("validation_errors") or body.get("detail") or body
            except ValueError:
                detail = r.text[:200]
            raise CmiscError(f"{method} {self.url}{path}: HTTP {r.status_code}: {detail}")
        return r.json() if r.content else None

    def create_project(self, title: str, annotators: int) -> int:
        body = {"title": title, "label_config": labelling_config(), "expert_instruction": instructions(),
                "show_instruction": True, "show_skip_button": True, "maximum_annotations": annotators,
                "overlap_cohort_percentage": 100}
        return int(self.request("POST", "/api/projects/", json=body)["id"])

    def attach_local_storage(self, project: int, folder: Path) -> int:
        """Local-file image URLs 404 until a Local Storage covering them is attached (not synced:
        syncing would add a task per image)."""
        body = {"project": project, "path": str(folder), "title": "cmisc images", "use_blob_urls": True}
        return int(self.request("POST", "/api/storages/localfiles/", json=body)["id"])

    def import_tasks(self, project: int, tasks: list[dict]) -> int:
        return int(self.request("POST", f"/api/projects/{project}/import", json=tasks)["task_count"])

    def export(self, project: int, export_type: str = "JSON") -> list:
        return self.request("GET", f"/api/projects/{project}/export", params={"exportType": export_type})


def create_project(client: LabelStudio, title: str, tasks: list[dict], image_paths: list[str],
                   annotators: int, images: str) -> int:
    """Project, storage, tasks; a warning when the server does not serve the first image."""
    project = client.create_project(title, annotators)
    if images == "local-files":
        folder = Path(os.path.commonpath([str(Path(p).resolve().parent) for p in image_paths]))
        client.attach_local_storage(project, folder)
    client.import_tasks(project, tasks)
    first = tasks[0]["data"]["image"]
    if first.startswith("/data/local-files/"):
        r = client.session.get(client.url + first, timeout=client.timeout)
        if r.status_code != 200:
            print(f"warning: {client.url}{first}: HTTP {r.status_code}; start the server with "
                  "LOCAL_FILES_SERVING_ENABLED=true and LOCAL_FILES_DOCUMENT_ROOT set to --document-root",
                  file=sys.stderr)
    return project


# --------------------------------------------------------------------------- reading an export


@dataclass
class TaskProblem:
    task_id: object
    reason: str
    kind: str = "rejected"  # rejected | skipped | unlabelled

    def __str__(self) -> str:
        return f"task {self.task_id}: {self.reason}"


def load_export(path: Path) -> list[dict]:
    """The records of a JSON or JSON_MIN export; anything else is a CmiscError."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such export file")
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CmiscError(f"{path}: not a JSON file ({e})") from None
    if not isinstance(data, list):
        raise CmiscError(f"{path}: not a Label Studio JSON or JSON_MIN export (a list of tasks); "
                         f"found a JSON {type(data).__name__}")
    for i, rec in enumerate(data):
        if not isinstance(rec, dict) or "id" not in rec:
            raise CmiscError(f"{path}: record {i} is not a Label Studio task (no task id)")
    return data


def _level(value, measure: str) -> float:
    """A choice (a string, or a one-element list of one) -> its level on the scale."""
    if isinstance(value, list):
        if len(value) != 1:
            raise ValueError(f"{len(value)} {measure.upper()} choices")
        value = value[0]
    try:
        x = float(str(value).strip())
    except ValueError:
        raise ValueError(f"{measure.upper()} {value!r} is not a number") from None
    for level in LEVELS[measure]:
        if abs(x - level) < 1e-6:
            return level
    raise ValueError(f"{measure.upper()} {value!r} is not on the scale {list(LEVELS[measure])}")


def _annotator(who) -> str:
    if isinstance(who, dict):
        who = who.get("email") or who.get("id")
    return f"label-studio:{who}" if isinstance(who, int) else str(who)


def _rating(tid, pair_id, labels: dict, who, annotation_id, updated_at) -> dict:
    """One RATINGS row; ValueError names the missing or bad label."""
    row = {"pair_id": str(pair_id), "annotator": _annotator(who), "task_id": int(tid),
           "annotation_id": annotation_id, "updated_at": updated_at}
    for m in LEVELS:
        if labels.get(m) in (None, "", []):
            raise ValueError(f"annotation {annotation_id} by {row['annotator']} has no {m.upper()} label (half-filled)")
        row[m] = _level(labels[m], m)
    return row


def _from_task(task: dict) -> list[dict | TaskProblem]:
    """A task of the JSON export -> a rating or a problem per annotation."""
    tid, data = task["id"], task.get("data") or {}
    annotations = task.get("annotations", task.get("completions")) or []
    if not annotations:
        return [TaskProblem(tid, "not annotated yet", "unlabelled")]
    out: list[dict | TaskProblem] = []
    for a in annotations:
        who = _annotator(a.get("completed_by"))
        if a.get("was_cancelled") or a.get("skipped"):
            out.append(TaskProblem(tid, f"skipped by {who}; left out", "skipped"))
            continue
        labels = {r.get("from_name"): (r.get("value") or {}).get("choices")
                  for r in a.get("result") or [] if r.get("type") == "choices"}
        try:
            out.append(_rating(tid, data["pair_id"], labels, a.get("completed_by"), a.get("id"), a.get("updated_at")))
        except ValueError as e:
            out.append(TaskProblem(tid, str(e)))
    return out


def _from_min_row(rec: dict) -> list[dict | TaskProblem]:
    """A row of the JSON_MIN export (one per annotation; skipped ones are not exported)."""
    tid = rec["id"]
    if "annotation_id" not in rec and "annotator" not in rec:
        return [TaskProblem(tid, "not annotated yet", "unlabelled")]
    try:
        return [_rating(tid, rec["pair_id"], rec, rec.get("annotator"), rec.get("annotation_id"), rec.get("updated_at"))]
    except ValueError as e:
        return [TaskProblem(tid, str(e))]


def ratings_from_export(records: list[dict], known: dict[str, str]) -> tuple[list[dict], list[TaskProblem]]:
    """Ratings of known pairs (``known``: pair_id -> source) and the problems, by task id."""
    ratings: dict[tuple[str, str], dict] = {}
    problems: list[TaskProblem] = []
    for rec in records:
        data = rec.get("data") if "data" in rec else rec
        if not isinstance(data, dict) or not data.get("pair_id"):
            problems.append(TaskProblem(rec["id"], "no pair_id in its data (not a task cmisc exported)"))
            continue
        if str(data["pair_id"]) not in known:
            problems.append(TaskProblem(rec["id"], f"pair {data['pair_id']} is not in the given pairs files"))
            continue
        for item in (_from_task(rec) if "data" in rec else _from_min_row(rec)):
            if isinstance(item, TaskProblem):
                problems.append(item)
                continue
            item["source"] = known[item["pair_id"]]
            key = (item["pair_id"], item["annotator"])
            if key in ratings:  # one pair in two tasks: the later annotation wins
                problems.append(TaskProblem(item["task_id"], f"pair {key[0]} also labelled by {key[1]} in task "
                                            f"{ratings[key]['task_id']}; the later label kept", "skipped"))
                if (ratings[key].get("updated_at") or "") > (item.get("updated_at") or ""):
                    continue
            ratings[key] = item
    return sorted(ratings.values(), key=lambda r: (r["pair_id"], r["annotator"])), problems


# --------------------------------------------------------------------------- ratings files


def ratings_table(rows: list[dict], where: str) -> pa.Table:
    """RATINGS rows as a table, validated per annotator (each labels a pair once)."""
    by_annotator: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_annotator[r.get("annotator") or ""].append(r)
    parts = [S.from_rows(rs, RATINGS, f"{where} (annotator {a!r})") for a, rs in sorted(by_annotator.items())]
    return pa.concat_tables(parts) if parts else RATINGS.empty_table()


def read_ratings(path: Path) -> list[dict]:
    if not path.exists():
        return []
    try:
        table = pq.read_table(path)
    except pa.ArrowInvalid as e:
        raise S.SchemaError(f"{path}: not a readable Parquet file ({e})") from e
    return ratings_table(table.to_pylist(), str(path)).to_pylist()


def write_ratings(rows: list[dict], path: Path) -> None:
    table = ratings_table(rows, str(path)).replace_schema_metadata(RATINGS.metadata)
    with S.atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def merge_ratings(old: list[dict], new: list[dict]) -> tuple[list[dict], dict[str, int]]:
    """Earlier ratings plus the new ones; the same (pair, annotator) takes the new label.
    Also counts the new ratings as new, changed or unchanged, and the earlier ones kept."""
    merged = {(r["pair_id"], r["annotator"]): r for r in old}
    counts = {"new": 0, "changed": 0, "unchanged": 0}
    for r in new:
        prev = merged.get((r["pair_id"], r["annotator"]))
        same = prev is not None and (prev["cmi"], prev["sc"]) == (r["cmi"], r["sc"])
        counts["new" if prev is None else "unchanged" if same else "changed"] += 1
        merged[(r["pair_id"], r["annotator"])] = r
    counts["kept"] = len(merged) - len(new)  # earlier ratings this export does not have
    return [merged[k] for k in sorted(merged)], counts


def _known_pairs(paths: list[Path]) -> dict[str, str]:
    """pair_id -> source of pairs (or corpus, labelled) Parquet files."""
    known: dict[str, str] = {}
    for p in paths:
        if not Path(p).exists():
            raise FileNotFoundError(f"{p}: no such pairs file")
        try:
            t = pq.read_table(p, columns=["pair_id", "source"])
        except (pa.ArrowInvalid, KeyError) as e:
            raise S.SchemaError(f"{p}: not a pairs file with pair_id and source ({e})") from e
        known.update(zip(t.column("pair_id").to_pylist(), t.column("source").to_pylist()))
    return known


def _write_outputs(out: Path, ratings: list[dict], resolve: str, merge: dict[str, int]) -> dict:
    annotations = S.from_rows(A.consensus(ratings, resolve), S.ANNOTATIONS, str(out / "annotations.parquet"))
    report = A.agreement(ratings)
    report.update(resolve=resolve, consensus_pairs=annotations.num_rows, merge=merge)
    rows = A.disagreements(ratings)
    buf = io.StringIO()
    fields = ["pair_id", "source", "task_ids", "annotators", "cmi", "cmi_spread", "sc", "sc_spread"]
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    write_ratings(ratings, out / "ratings.parquet")
    S.write_table(annotations, out / "annotations.parquet", S.ANNOTATIONS)
    for name, text in [("agreement.json", json.dumps(report, indent=2) + "\n"), ("disagreements.csv", buf.getvalue())]:
        with S.atomic_path(out / name) as tmp:
            tmp.write_text(text, encoding="utf-8")
    report["disagreements"] = rows
    return report


def import_export(export: Path, pairs: list[Path], out: Path, resolve: str = "median") -> tuple[dict, list[TaskProblem]]:
    """The ``import`` action: export -> ratings merged into ``out`` -> consensus and agreement."""
    records = load_export(export)
    known = _known_pairs(pairs)
    new, problems = ratings_from_export(records, known)
    old = read_ratings(out / "ratings.parquet")  # read before anything is written: a bad file stops here
    ratings, merge = merge_ratings(old, new)
    report = _write_outputs(out, ratings, resolve, merge)
    report["problems"] = Counter(p.kind for p in problems)
    return report, problems


# --------------------------------------------------------------------------- cli


def build_parser() -> argparse.ArgumentParser:
    ap = command_parser("cmisc annotate", __doc__)
    sub = ap.add_subparsers(dest="action", required=True)
    ex = sub.add_parser("export", help="sample pairs -> Label Studio tasks and labelling config (or a project)",
                        formatter_class=ap.formatter_class)
    ex.add_argument("pairs", type=Path, nargs="+", help="pairs Parquet files (images stored)")
    ex.add_argument("--out", type=Path, required=True, help="folder for tasks.json, config.xml, instructions.html")
    ex.add_argument("--n", type=int, default=100, help="pairs to sample, stratified by source")
    ex.add_argument("--seed", type=int, default=None, help="sampling seed (default: base.seed of --params)")
    ex.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (text section, seed)")
    ex.add_argument("--images", choices=["local-files", "inline"], default="local-files",
                    help="local-files URLs (server on this machine) or images inline in the tasks")
    ex.add_argument("--document-root", type=Path, default=Path("."),
                    help="the server's LOCAL_FILES_DOCUMENT_ROOT; images must lie under it")
    _server_options(ex)
    ex.add_argument("--title", default="cmisc CMI/SC", help="project title (with --url)")
    ex.add_argument("--annotators", type=int, default=2, help="annotators per task (with --url)")
    im = sub.add_parser("import", help="Label Studio export -> ratings, annotations, agreement",
                        formatter_class=ap.formatter_class)
    im.add_argument("export", type=Path, nargs="?", help="JSON or JSON_MIN export (or give --url and --project)")
    im.add_argument("--pairs", type=Path, nargs="+", required=True, help="pairs Parquet files the tasks came from")
    im.add_argument("--out", type=Path, required=True, help="folder for ratings/annotations/agreement")
    im.add_argument("--resolve", choices=A.RESOLVE, default="median",
                    help="one label per pair: lower median of the annotators, or only agreed pairs")
    im.add_argument("--project", type=int, help="with --url: download this project's export")
    _server_options(im)
    return ap


def _server_options(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--url", help="Label Studio server, e.g. http://127.0.0.1:8080")
    ap.add_argument("--token", default=None, help="API token (default: $LABEL_STUDIO_API_KEY)")


def _text_config_and_seed(params: Path, seed: int | None) -> tuple[TextConfig, int]:
    from cmisc_model.config import BaseConfig, load_section

    if not params.exists():
        return TextConfig(), 12345 if seed is None else seed
    base = load_section(BaseConfig, "base", params)
    return load_section(TextConfig, "text", params), base.seed if seed is None else seed


def run_export(args: argparse.Namespace) -> int:
    if args.n < 1 or args.annotators < 1:
        raise CmiscError("--n and --annotators must be at least 1")
    cfg, seed = _text_config_and_seed(args.params, args.seed)
    rows, left_out = usable_pairs(args.pairs)
    chosen = sample_pairs(rows, args.n, seed)
    root = args.document_root.resolve()
    tasks = [make_task(r, cfg, root, args.images) for r in chosen]
    write_export(args.out, tasks)
    per_source = dict(sorted(Counter(r["source"] for r in chosen).items()))
    print(f"{args.out}: {len(tasks)} tasks {per_source} (seed {seed}; {left_out} pairs without a stored image left out)")
    if args.url:
        client = LabelStudio(args.url, args.token or os.environ.get("LABEL_STUDIO_API_KEY", ""))
        project = create_project(client, args.title, tasks, [r["image_path"] for r in chosen], args.annotators, args.images)
        with S.atomic_path(args.out / "project.json") as tmp:
            tmp.write_text(json.dumps({"url": client.url, "project": project}) + "\n")
        print(f"project {project}: {client.url}/projects/{project}/data")
    return 0


def run_import(args: argparse.Namespace) -> int:
    export = args.export
    if export is None:
        if not (args.url and args.project):
            raise CmiscError("give an export file, or --url and --project")
        client = LabelStudio(args.url, args.token or os.environ.get("LABEL_STUDIO_API_KEY", ""))
        export = args.out / "export.json"
        with S.atomic_path(export) as tmp:
            tmp.write_text(json.dumps(client.export(args.project, "JSON"), ensure_ascii=False) + "\n")
    report, problems = import_export(export, args.pairs, args.out, args.resolve)
    for p in problems:
        print(f"{'rejected' if p.kind == 'rejected' else 'note'}: {export}: {p}", file=sys.stderr)
    print(_summary(args.out, report))
    return 3 if any(p.kind == "rejected" for p in problems) else 0


def _summary(out: Path, r: dict) -> str:
    def kappa(m: str) -> str:
        cohen = " ".join(f"{'/'.join(c['annotators'])}={c['kappa']} (linear {c['kappa_linear']}, n={c['n']})"
                         for c in r[m]["cohen"]) or "-"
        return f"{m.upper()}: agreement {r[m]['agreement']}, Fleiss κ {r[m]['fleiss']['kappa']}, Cohen κ {cohen}"

    mg = r["merge"]
    head = (f"{out}: {r['ratings']} ratings of {r['pairs']} pairs by {len(r['annotators'])} annotators "
            f"(this export: {mg['new']} new, {mg['changed']} changed, {mg['unchanged']} unchanged; "
            f"{mg['kept']} kept from earlier imports); "
            f"{r['consensus_pairs']} pairs in annotations.parquet ({r['resolve']})")
    lines = [head, kappa("cmi"), kappa("sc")]
    if r["disagreements"]:
        lines.append(f"disagreements ({len(r['disagreements'])}, widest first; all in disagreements.csv):")
        lines += [f"  {d['pair_id']} task {d['task_ids']}: CMI {d['cmi']} | SC {d['sc']}" for d in r["disagreements"][:10]]
    return "\n".join(lines)


def cli_main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    return run_export(args) if args.action == "export" else run_import(args)
