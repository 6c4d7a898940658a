"""BBC News corpus (Feng & Lapata 2010) -> pairs.

Layout: ``ROOT/data_train/`` and ``ROOT/data_test/`` (``bbc.subdirs``), each
story three files with one base name: ``NAME.html`` (the article),
``NAME.jpg`` (its image), ``NAME.txt`` (the image caption). One pairs row per
story: ``source`` "bbc", ``doc_id`` "data_train/NAME", ``position`` "lead"
(the image goes with the whole article), ``caption`` from ``NAME.txt`` (kept,
not fed to the model by default).

The article HTML is flat: the children of ``<body>`` are ``<b>`` headings,
``<p>`` paragraphs, and ``<p>`` elements made only of ``<b>`` lines (a
multi-line heading). Each heading group starts a ``text_blocks`` entry
``{titles: [heading lines], sentences: [...]}``; consecutive headings form one
group. Departures from 2017: a multi-line heading at the very start of the
article is kept (2017 dropped it); consecutive ``<b>`` headings share a block
(2017 made a block per heading); any other tag's text is read as a paragraph
and counted in the summary, and the children of a wrapper (``<div>``,
``<center>``, ``<font>``...) are read like the body's (2017 raised on both).

Encoding (``decode``): a UTF-8 byte-order mark or valid UTF-8 means UTF-8;
otherwise the bytes are ISO-8859-1, read as windows-1252 (as browsers do for
an ISO-8859-1 label) so that the curly quotes of 0x91-0x94 survive; bytes
undefined in windows-1252 fall back to ISO-8859-1. So "£", "é" and "’" come
through from either encoding.

Image fields: ``image_title`` is the image's file name, ``image_path`` its
path as ``ROOT/subdir/NAME.jpg`` (relative when ``--root`` is relative, which
keeps the artifact the same on every checkout), ``image_url`` the same path
(it survives the image step, which rewrites ``image_path`` to the stored
copy), ``image_status`` "ok" when the file exists
and "missing" when not (``image_path`` then null). The image step verifies and
decodes the file and fills sha256, size and format.

Nothing here is fatal for one story: a missing image or caption, a ``.jpg``
or ``.txt`` without its ``.html``, an ``.html`` that is not HTML, or an empty
article is listed by name in the summary. British spellings are kept in the
pairs (the text as published); the ``TextNormaliser`` converts them for the
model (``text.spelling_sources``), so training and inference share one path
and a change of the word list does not re-parse the corpus. The stage reports
what that conversion does: replacements, and vocabulary types before and after.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
from bs4 import BeautifulSoup, Comment, Doctype, NavigableString, Tag

from cmisc_model.errors import CmiscError
from cmisc_model.schemas import PAIRS, atomic_path, from_rows, make_pair_id, write_table
from cmisc_model.text.normalise import TextConfig, TextNormaliser
from cmisc_model.text.sentences import split_sentences

SOURCE = "bbc"
HTML_EXT = (".html", ".htm")
IMAGE_EXT = (".jpg", ".jpeg")
CAPTION_EXT = (".txt",)
_KIND = {
    **dict.fromkeys(HTML_EXT, "html"),
    **dict.fromkeys(IMAGE_EXT, "jpg"),
    **dict.fromkeys(CAPTION_EXT, "txt"),
}

_HEADING_TAGS = {"b", "strong"}
_CONTAINER_TAGS = {"div", "center", "font", "section", "article", "main", "body", "html"}
_SKIPPED_TAGS = {"head", "title", "meta", "link", "script", "style", "br", "hr"}
_MAGIC = {
    b"\xff\xd8\xff": "a JPEG image",
    b"\x89PNG": "a PNG image",
    b"GIF8": "a GIF image",
    b"%PDF": "a PDF document",
    b"PK\x03\x04": "a ZIP archive",
}


@dataclass
class BbcConfig:
    """The ``bbc`` section of params.yaml."""

    subdirs: list[str] = field(default_factory=lambda: ["data_train", "data_test"])


class NotHtmlError(CmiscError):
    """An article file is not HTML; the message names the file and why."""


# --------------------------------------------------------------------------- decoding


def decode(data: bytes) -> tuple[str, str]:
    """Bytes -> (text, encoding name): UTF-8 when valid, else ISO-8859-1 as windows-1252."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace"), "utf-8"
    try:
        return data.decode("utf-8"), "utf-8" if any(b > 0x7F for b in data) else "ascii"
    except UnicodeDecodeError:
        pass
    if any(0x80 <= b <= 0x9F for b in data):
        try:
            return data.decode("cp1252"), "windows-1252"
        except UnicodeDecodeError:
            pass
    return data.decode("latin-1"), "iso-8859-1"


def _clean(text: str) -> str:
    return " ".join(text.split())


# --------------------------------------------------------------------------- html


def _not_html_reason(data: bytes) -> str | None:
    """Why ``data`` is certainly not an HTML page (a known binary format), or None."""
    for magic, what in _MAGIC.items():
        if data.startswith(magic):
            return what
    if b"\x00" in data:
        return "binary data: NUL bytes"
    return None


class _ArticleReader:
    """Reads the flat body of an article into ``text_blocks``, counting unexpected tags."""

    def __init__(self) -> None:
        self.blocks: list[dict] = []
        self.unexpected: Counter = Counter()

    def heading(self, lines: list[str]) -> None:
        lines = [ln for ln in lines if ln]
        if not lines:
            return
        if self.blocks and not self.blocks[-1]["sentences"]:
            self.blocks[-1]["titles"].extend(lines)  # consecutive headings: one group
        else:
            self.blocks.append({"titles": lines, "sentences": []})

    def paragraph(self, text: str) -> None:
        sentences = split_sentences(text)
        if not sentences:
            return
        if not self.blocks:
            self.blocks.append({"titles": [], "sentences": []})
        self.blocks[-1]["sentences"].extend(sentences)

    def walk(self, parent: Tag) -> None:
        for node in parent.children:
            if isinstance(node, (Comment, Doctype)):
                continue
            if isinstance(node, NavigableString):
                self.paragraph(str(node))  # bare text between tags: a paragraph
                continue
            if not isinstance(node, Tag) or node.name in _SKIPPED_TAGS:
                continue
            if node.name in _HEADING_TAGS:
                self.heading([_clean(node.get_text(" "))])
            elif node.name == "p":
                self.read_p(node)
            elif node.name in _CONTAINER_TAGS:
                self.unexpected[node.name] += 1
                self.walk(node)  # a wrapper around the flat body: read its children the same way
            else:
                self.unexpected[node.name] += 1
                self.paragraph(node.get_text(" "))

    def read_p(self, node: Tag) -> None:
        children = [c for c in node.children if isinstance(c, Tag) and c.name != "br"]
        loose = "".join(str(c) for c in node.children if isinstance(c, NavigableString)).strip()
        if children and not loose and all(c.name in _HEADING_TAGS for c in children):
            self.heading([_clean(c.get_text(" ")) for c in children])  # multi-line heading
        else:
            self.paragraph(node.get_text(" "))


def parse_article(data: bytes, name: str = "<html>") -> tuple[list[dict], str, Counter]:
    """Article bytes -> (text_blocks, encoding, unexpected tag counts).

    Raises ``NotHtmlError`` naming ``name`` when the bytes are not an HTML page.
    """
    reason = _not_html_reason(data)
    if reason is not None:
        raise NotHtmlError(f"{name}: not HTML ({reason})")
    text, encoding = decode(data)
    soup = BeautifulSoup(text, "html.parser")
    if soup.find(["html", "body", "p", "b"]) is None:
        raise NotHtmlError(f"{name}: not HTML (no <html>, <body>, <p> or <b> markup)")
    reader = _ArticleReader()
    reader.walk(soup.body or soup.html or soup)
    return reader.blocks, encoding, reader.unexpected


# --------------------------------------------------------------------------- corpus


def _stories(folder: Path) -> tuple[dict[str, dict[str, Path]], list[str]]:
    """Group a folder's files by base name: {NAME: {"html"|"jpg"|"txt": path}}."""
    groups: dict[str, dict[str, Path]] = {}
    other: list[str] = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if not entry.is_file():
            continue
        stem, ext = os.path.splitext(entry.name)
        kind = _KIND.get(ext.lower())
        if kind is None:
            other.append(entry.name)
            continue
        groups.setdefault(stem, {})[kind] = Path(entry.path)
    return groups, other


def _encodable(name: str) -> bool:
    try:
        name.encode("utf-8")
        return True
    except UnicodeEncodeError:  # a non-UTF-8 byte in the file name (surrogate escape)
        return False


def _new_summary(root: Path) -> dict:
    return {
        "root": str(root),
        "stories": 0,
        "pairs": 0,
        "by_subdir": {},
        "missing_image": [],
        "missing_caption": [],
        "without_html": [],
        "not_html": [],
        "empty_text": [],
        "undecodable_names": [],
        "other_files": [],
        "encodings": Counter(),
        "unexpected_tags": Counter(),
    }


def _find_work(folders: list[tuple[str, Path]], summary: dict) -> list[tuple[str, str, dict[str, Path]]]:
    """(subdir, name, files) of every story with an article; the rest goes to the summary."""
    work: list[tuple[str, str, dict[str, Path]]] = []
    for sub, folder in folders:
        groups, other = _stories(folder)
        summary["other_files"] += [f"{sub}/{n}" for n in other]
        for name, files in groups.items():
            if not _encodable(name):
                summary["undecodable_names"].append(f"{sub}/{os.fsencode(name)!r}")
            elif "html" not in files:
                summary["without_html"] += [f"{sub}/{p.name}" for p in files.values()]
            else:
                work.append((sub, name, files))
    return work


def _read_blocks(html_path: Path, doc_id: str, summary: dict) -> list[dict] | None:
    """The article's text blocks, or None (recorded in the summary) when it has none."""
    try:
        blocks, encoding, unexpected = parse_article(html_path.read_bytes(), str(html_path))
    except NotHtmlError as e:
        summary["not_html"].append(str(e))
        return None
    except OSError as e:
        summary["not_html"].append(f"{html_path}: cannot be read ({e.strerror})")
        return None
    summary["encodings"][encoding] += 1
    summary["unexpected_tags"].update(unexpected)
    if not any(b["titles"] or b["sentences"] for b in blocks):
        summary["empty_text"].append(doc_id)
        return None
    return blocks


def _story_row(sub: str, name: str, files: dict[str, Path], summary: dict) -> dict | None:
    """The pairs row of one story, or None when its article gives no text."""
    doc_id = f"{sub}/{name}"
    summary["stories"] += 1
    blocks = _read_blocks(files["html"], doc_id, summary)
    if blocks is None:
        return None
    caption = None
    if "txt" in files:
        caption = _clean(decode(files["txt"].read_bytes())[0]) or None
    if caption is None:
        summary["missing_caption"].append(doc_id)
    image = files.get("jpg")
    if image is None:
        summary["missing_image"].append(doc_id)
    return {
        "pair_id": make_pair_id(SOURCE, doc_id, f"{name}.jpg"),
        "source": SOURCE,
        "doc_id": doc_id,
        "doc_title": next((t for b in blocks for t in b["titles"]), None),
        "position": "lead",
        "section_path": [],
        "text_blocks": blocks,
        "caption": caption,
        "image_title": image.name if image else f"{name}.jpg",
        # The path as given, not an absolute file:// URL: the artifact must
        # not depend on where the project is checked out. The image step
        # reads it again when a stored copy is found corrupt.
        "image_url": str(image) if image else None,
        "image_path": str(image) if image else None,
        "image_status": "ok" if image else "missing",
        "attribution": "BBC News, via the Feng & Lapata (2010) corpus",
    }


def bbc_pairs(
    root: str | os.PathLike,
    config: BbcConfig | None = None,
    text_config: TextConfig | None = None,
    progress: bool = False,
) -> tuple[pa.Table, dict]:
    """Read the corpus under ``root`` -> (PAIRS table, summary dict).

    The summary lists every file that was not turned into a pair and why, the
    encodings seen, and the spelling report (``spelling_report``).
    """
    config = config or BbcConfig()
    root = Path(root)
    folders = [(sub, root / sub) for sub in config.subdirs if (root / sub).is_dir()]
    if not folders:
        raise CmiscError(f"{root}: no BBC corpus folder ({', '.join(config.subdirs)}) found")
    summary = _new_summary(root)
    work: Iterable[tuple[str, str, dict[str, Path]]] = _find_work(folders, summary)
    if progress:
        from tqdm import tqdm

        work = tqdm(work, desc="bbc stories", unit="story")
    rows: list[dict] = []
    for sub, name, files in work:
        row = _story_row(sub, name, files, summary)
        if row is not None:
            rows.append(row)
            summary["by_subdir"][sub] = summary["by_subdir"].get(sub, 0) + 1
    table = from_rows(rows, PAIRS, where=str(root))
    summary["pairs"] = table.num_rows
    summary["encodings"] = dict(summary["encodings"])
    summary["unexpected_tags"] = dict(summary["unexpected_tags"])
    summary["spelling"] = spelling_report(table, text_config)
    return table, summary


def spelling_report(table: pa.Table, text_config: TextConfig | None = None) -> dict:
    """British -> American replacements and vocabulary types (lower-cased tokens
    the model sees) without and with the spelling step of ``TextNormaliser``.

    The paper's "59,349 -> 12,591" also includes the vocabulary cut (count >=
    10); here only the spelling step is measured.
    """
    config = text_config or TextConfig()
    enabled = SOURCE in config.spelling_sources
    plain = TextNormaliser(dataclasses.replace(config, spelling_sources=[]))
    spelled = TextNormaliser(config)
    before: set[str] = set()
    after: set[str] = set()
    for blocks in table.column("text_blocks").to_pylist():
        for toks in plain.blocks(blocks, SOURCE):
            before.update(toks)
        for toks in spelled.blocks(blocks, SOURCE):
            after.update(toks)
    british = spelled.speller.mapping
    return {
        "enabled": enabled,
        "replacements": spelled.spelling_replacements,
        "types_before": len(before),
        "types_after": len(after),
        # British types still seen afterwards come from protected names ("centre" of
        # "World Trade Centre"), so types_after can exceed types_before on BBC alone;
        # the reduction shows once the American-spelt sources share the vocabulary.
        "british_types_before": sum(1 for t in before if t in british),
        "british_types_after": sum(1 for t in after if t in british),
        "top_replaced": dict(spelled.speller.replaced.most_common(15)),
        "top_protected": dict(spelled.speller.protected.most_common(15)),
    }


def summary_path(out: str | os.PathLike) -> Path:
    """``pairs.parquet`` -> ``pairs.summary.json`` next to it."""
    out = Path(out)
    return out.with_suffix(".summary.json")


def write_summary(summary: dict, path: str | os.PathLike) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return Path(path)


# --------------------------------------------------------------------------- cli


def cli_main(argv: list[str]) -> int:
    """``cmisc bbc-pairs --root DIR --out PAIRS.parquet [--params params.yaml]``."""
    from cmisc_model.config import DEFAULT_PARAMS, load_section

    ap = argparse.ArgumentParser(
        prog="cmisc bbc-pairs", description="BBC News corpus folder -> pairs Parquet"
    )
    ap.add_argument(
        "--root", type=Path, required=True, help="folder holding data_train/ and data_test/"
    )
    ap.add_argument(
        "--out",
        type=Path,
        required=True,
        help="pairs Parquet to write (a .summary.json goes next to it)",
    )
    ap.add_argument(
        "--params", type=Path, default=None, help="params file (default: ./params.yaml if present)"
    )
    args = ap.parse_args(argv)
    params = args.params or (DEFAULT_PARAMS if DEFAULT_PARAMS.exists() else None)
    config = load_section(BbcConfig, "bbc", params) if params else BbcConfig()
    text_config = load_section(TextConfig, "text", params) if params else TextConfig()

    table, summary = bbc_pairs(args.root, config, text_config, progress=True)
    write_table(table, args.out, PAIRS, metadata={"cmisc.source": SOURCE})
    spath = write_summary(summary, summary_path(args.out))
    sp = summary["spelling"]
    print(
        f"{args.out}: {summary['pairs']} pairs from {summary['stories']} stories "
        f"({summary['by_subdir']})"
    )
    for key in (
        "missing_image",
        "missing_caption",
        "without_html",
        "not_html",
        "empty_text",
        "undecodable_names",
    ):
        if summary[key]:
            shown = "; ".join(summary[key][:5]) + (" ..." if len(summary[key]) > 5 else "")
            print(f"  {key.replace('_', ' ')}: {len(summary[key])} ({shown})")
    print(
        f"  spelling ({'on' if sp['enabled'] else 'off'}): {sp['replacements']} replacements, "
        f"vocabulary {sp['types_before']} -> {sp['types_after']} types"
    )
    print(f"  summary: {spath}")
    return 0
