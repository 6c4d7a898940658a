"""MediaWiki XML dump -> pairs Parquet (``cmisc wiki-pairs``).

The reader streams an XML export in constant memory: bz2 (multistream too),
gzip or plain; UTF-8, or UTF-16 with a byte-order mark (expat detects it from
the first bytes); export schema 0.10 or 0.11 (the XML namespace is read from
the root tag, never hard-coded); with or without ``<siteinfo>``. Each
``<page>`` is turned into a ``DumpPage`` and then cleared, and the root is
emptied, so memory does not grow with the dump.

A dump that ends early or is not well-formed raises ``DumpTruncatedError``
naming the file and the last complete page. ``dump_to_pairs`` still writes
the pairs of every complete page, with Parquet metadata
``cmisc.incomplete = "true"`` and the reason, and the CLI exits with status 3
("written but incomplete"; 2 stays "bad input, nothing written").

Parallelism: the reader stays in the main process; pages with possible image
markup go in batches to a ``multiprocessing`` pool, at most ``2 × workers``
batches in flight (flat memory), and results are written in page order, so
the output does not depend on ``--workers``. A *multistream* bz2 dump (what
Wikimedia publishes as ``pages-articles-multistream``: one bz2 stream per 100
pages) is split at its stream boundaries instead, and each worker
decompresses and parses its own streams, so the single reader (bz2 is the
slowest part of reading) does not set the ceiling. Anything unexpected in a
range (a truncated or malformed stream) makes the run start over with the
ordered reader, whose errors name the last complete page.

For Prefect, ``iter_page_shards`` yields lists of article pages (a shard is
a ``list[DumpPage]``, the pages in dump order) and ``pages_to_pairs`` turns
one shard into rows; a flow maps a task over shards.
"""

from __future__ import annotations

import argparse
import bz2
import collections
import gzip
import json
import multiprocessing
import os
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.parquet as pq

from cmisc_model.config import load_section
from cmisc_model.errors import CmiscError
from cmisc_model.schemas import PAIRS, atomic_path, from_rows
from cmisc_model.sources import wikitext
from cmisc_model.sources.wikitext import (
    DEFAULT_BASE_URL,
    DEFAULT_FILE_NAMESPACES,
    WikitextError,
    WikitextOptions,
)

EXIT_INCOMPLETE = 3  # pairs written, but the dump was truncated or malformed
_CHUNK = 1 << 20


class DumpTruncatedError(CmiscError):
    """The dump ends early or is malformed; the message names the last complete page."""

    def __init__(self, message: str, last_title: str | None = None, last_id: int | None = None):
        super().__init__(message)
        self.last_title = last_title
        self.last_id = last_id


@dataclass
class DumpPage:
    title: str
    ns: int
    page_id: int
    revision_id: int | None
    timestamp: str | None
    text: str
    redirect: bool


@dataclass
class SiteInfo:
    sitename: str | None = None
    dbname: str | None = None
    base: str | None = None  # e.g. https://simple.wikipedia.org/wiki/Main_Page
    generator: str | None = None
    case: str | None = None
    schema_version: str | None = None  # "0.10", "0.11" (the root's version attribute)
    namespaces: dict[int, str] = field(default_factory=dict)

    @property
    def source(self) -> str:
        """The ``source`` column: the wiki's database name (``simplewiki``,
        ``enwiki``, ``bgwiki``…); ``simplewiki`` when the dump has no siteinfo."""
        return (self.dbname or "").strip() or wikitext.SOURCE

    @property
    def base_url(self) -> str:
        """Article URL prefix: the main page URL without its title."""
        if self.base and "/" in self.base:
            return self.base.rsplit("/", 1)[0] + "/"
        return DEFAULT_BASE_URL

    @property
    def file_namespaces(self) -> tuple[str, ...]:
        """The canonical "File" and "Image" (always valid) plus the local name of ns 6."""
        names = list(DEFAULT_FILE_NAMESPACES)
        local = self.namespaces.get(6)
        if local and local not in names:
            names.append(local)
        return tuple(names)


# --------------------------------------------------------------------------- reading


def _open_binary(path: Path) -> IO[bytes]:
    """Open by content, not by name: bz2 (``BZh``), gzip, or plain bytes."""
    with open(path, "rb") as f:
        magic = f.read(3)
    if magic == b"BZh":
        return bz2.open(path, "rb")
    if magic[:2] == b"\x1f\x8b":
        return gzip.open(path, "rb")
    return open(path, "rb")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _events(path: Path) -> Iterator[tuple[str, ET.Element]]:
    """(event, element) pairs; ParseError / EOFError / OSError propagate."""
    parser = ET.XMLPullParser(events=("start", "end"))
    with _open_binary(path) as f:
        while True:
            # read1: one decompressed piece at a time, so the pages before a
            # truncated bz2 stream are parsed before its EOFError is raised.
            chunk = f.read1(_CHUNK)
            if not chunk:
                break
            parser.feed(chunk)
            yield from parser.read_events()
    parser.close()
    yield from parser.read_events()


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _page(elem: ET.Element, ns: str) -> DumpPage:
    title = elem.findtext(ns + "title") or ""
    revision = elem.find(ns + "revision")
    text_el = revision.find(ns + "text") if revision is not None else None
    return DumpPage(
        title=title,
        ns=_int(elem.findtext(ns + "ns")) or 0,
        page_id=_int(elem.findtext(ns + "id")) or 0,
        revision_id=_int(revision.findtext(ns + "id")) if revision is not None else None,
        timestamp=revision.findtext(ns + "timestamp") if revision is not None else None,
        text=(text_el.text or "") if text_el is not None else "",
        redirect=elem.find(ns + "redirect") is not None,
    )


def _siteinfo(elem: ET.Element, ns: str, version: str | None) -> SiteInfo:
    info = SiteInfo(
        sitename=elem.findtext(ns + "sitename"),
        dbname=elem.findtext(ns + "dbname"),
        base=elem.findtext(ns + "base"),
        generator=elem.findtext(ns + "generator"),
        case=elem.findtext(ns + "case"),
        schema_version=version,
    )
    for n in elem.iter(ns + "namespace"):
        key = _int(n.get("key"))
        if key is not None:
            info.namespaces[key] = (n.text or "").strip()
    return info


def _walk(path: str | os.PathLike, want_siteinfo: bool) -> Iterator[DumpPage | SiteInfo]:
    """The one streaming loop behind ``iter_pages`` and ``read_siteinfo``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such dump file")
    if path.is_dir():
        raise CmiscError(f"{path}: is a directory, not a MediaWiki XML dump file")
    root = None
    ns = ""
    page_tag = siteinfo_tag = ""
    last: tuple[str, int] | None = None
    try:
        for event, elem in _events(path):
            if event == "start":
                if root is None:
                    root = elem
                    ns = elem.tag[: elem.tag.index("}") + 1] if elem.tag.startswith("{") else ""
                    if _local(elem.tag) != "mediawiki":
                        raise CmiscError(
                            f"{path}: not a MediaWiki XML export (root <{_local(elem.tag)}>)"
                        )
                    page_tag, siteinfo_tag = ns + "page", ns + "siteinfo"
                elif want_siteinfo and elem.tag == page_tag:
                    return  # no <siteinfo>: the first page came first
                continue
            if elem.tag == page_tag:
                page = _page(elem, ns)
                last = (page.title, page.page_id)
                root.clear()  # drop the finished page: constant memory
                if not want_siteinfo:
                    yield page
            elif elem.tag == siteinfo_tag:
                if want_siteinfo:
                    yield _siteinfo(elem, ns, root.get("version"))
                    return
                root.clear()
    except (ET.ParseError, EOFError, OSError) as e:
        if isinstance(e, (FileNotFoundError, PermissionError)):
            raise
        if root is None:
            # Not even a root element: empty, binary, JSON, a zip… Not a dump,
            # so nothing is written (exit 2), like an XML file of another kind.
            raise CmiscError(
                f"{path}: not a MediaWiki XML export (.xml, .xml.bz2 or .xml.gz): {e}"
            ) from e
        where = (
            f"after page {last[0]!r} (id {last[1]}), the last complete page"
            if last
            else "before any complete page"
        )
        kind = "ends early" if _is_truncation(e) else "is malformed"
        raise DumpTruncatedError(
            f"{path}: the dump {kind} ({e}) {where}",
            last_title=last[0] if last else None,
            last_id=last[1] if last else None,
        ) from e


def _is_truncation(e: Exception) -> bool:
    msg = str(e)
    return isinstance(e, EOFError) or msg.startswith("no element found") or "unclosed token" in msg


def iter_pages(path: str | os.PathLike) -> Iterator[DumpPage]:
    """Every ``<page>`` of a dump, in order (all namespaces, redirects included)."""
    yield from _walk(path, want_siteinfo=False)  # type: ignore[misc]


def read_siteinfo(path: str | os.PathLike) -> SiteInfo:
    """The ``<siteinfo>`` of a dump; an empty ``SiteInfo`` (defaults) when absent."""
    for info in _walk(path, want_siteinfo=True):
        return info  # type: ignore[return-value]
    return SiteInfo()


def is_article(page: DumpPage) -> bool:
    """Namespace 0 and not a redirect (element, or the #REDIRECT text of old dumps)."""
    return page.ns == 0 and not page.redirect and page.text.lstrip()[:9].lower() != "#redirect"


def _tally(counts: dict, page: DumpPage) -> bool:
    """Count ``page`` in ``counts`` (pages seen, articles, skips); True for an article."""
    counts["pages_seen"] += 1
    if page.ns != 0:
        counts["non_articles_skipped"] += 1
    elif not is_article(page):
        counts["redirects_skipped"] += 1
    else:
        counts["articles"] += 1
        return True
    return False


def iter_page_shards(path: str | os.PathLike, shard_size: int = 500) -> Iterator[list[DumpPage]]:
    """Article pages in lists of ``shard_size`` (the unit a Prefect task maps over).

    On a truncated dump, the complete pages read so far are yielded as a last
    shard before ``DumpTruncatedError`` is raised.
    """
    shard: list[DumpPage] = []
    try:
        for page in iter_pages(path):
            if is_article(page):
                shard.append(page)
                if len(shard) >= shard_size:
                    yield shard
                    shard = []
    except DumpTruncatedError:
        if shard:
            yield shard
        raise
    if shard:
        yield shard


# --------------------------------------------------------------------------- pages -> pairs


@dataclass
class _Job:
    options: WikitextOptions
    base_url: str
    dump_date: str | None
    file_namespaces: tuple[str, ...]
    source: str = wikitext.SOURCE


def _page_rows(page: DumpPage, job: _Job, stats: dict | None = None) -> tuple[list[dict], dict | None]:
    """Rows of one page, or the reason it was skipped: never raises."""
    try:
        rows = wikitext.page_pairs(
            page.title,
            page.page_id,
            page.text,
            revision_id=page.revision_id,
            revision_timestamp=page.timestamp,
            base_url=job.base_url,
            dump_date=job.dump_date,
            options=job.options,
            file_namespaces=job.file_namespaces,
            source=job.source,
            stats=stats,
        )
        return rows, None
    except WikitextError as e:
        reason = str(e)
    except Exception as e:  # noqa: BLE001 - malformed wikitext never stops a run
        reason = f"{type(e).__name__}: {e}"
    return [], {"title": page.title, "page_id": page.page_id, "reason": reason}


def pages_to_pairs(
    pages: Sequence[DumpPage],
    options: WikitextOptions | None = None,
    site: SiteInfo | None = None,
    dump_date: str | None = None,
    stats: dict | None = None,
) -> tuple[list[dict], list[dict]]:
    """(rows, skipped pages with reasons) for a shard of article pages;
    ``stats`` collects the counts of ``wikitext.page_pairs``."""
    site = site or SiteInfo()
    job = _Job(options or WikitextOptions(), site.base_url, dump_date, site.file_namespaces, site.source)
    return _batch_rows(pages, job, stats)


def _batch_rows(pages: Sequence[DumpPage], job: _Job, stats: dict | None = None) -> tuple[list[dict], list[dict]]:
    rows: list[dict] = []
    skipped: list[dict] = []
    for page in pages:
        r, skip = _page_rows(page, job, stats)
        rows.extend(r)
        if skip:
            skipped.append(skip)
    return rows, skipped


_WORKER_JOB: _Job | None = None


def _init_worker(job: _Job) -> None:
    global _WORKER_JOB
    _WORKER_JOB = job


def _table_batch(pages: list[DumpPage], job: _Job) -> tuple[pa.Table | None, list[dict], int, dict]:
    """(validated Arrow table or None, skipped pages, pages with pairs, stats) of a batch.

    Built where the parsing ran, so the reading process only writes: an Arrow
    table crosses the process boundary far cheaper than a list of dicts.
    """
    stats: dict = {}
    rows, skipped = _batch_rows(pages, job, stats)
    table = (
        from_rows(rows, PAIRS, "pairs of pages " + ", ".join(repr(p.title) for p in pages[:3]))
        if rows
        else None
    )
    return table, skipped, len({r["doc_id"] for r in rows}), stats


def _worker_batch(pages: list[DumpPage]) -> tuple[pa.Table | None, list[dict], int, dict]:
    assert _WORKER_JOB is not None
    return _table_batch(pages, _WORKER_JOB)


class _PairsWriter:
    """Streams validated row groups into one Parquet file (no full table in memory).

    ``metadata`` known at the start goes into the Arrow schema (what
    ``schemas.file_metadata`` and ``read_table`` show); what is only known at
    the end is added at ``close``. When the run is incomplete, the file is
    copied once, row group by row group, so that ``cmisc.incomplete`` is in the
    Arrow schema too (a rare case; a complete run pays nothing).
    """

    def __init__(self, path: Path, metadata: dict[str, str], row_group: int = 512):
        self.path = path
        self.schema = PAIRS.with_metadata({**(PAIRS.metadata or {}), **_encode(metadata)})
        self.writer = pq.ParquetWriter(path, self.schema, compression="zstd")
        self.buffer: list[pa.Table] = []
        self.buffered = 0
        self.row_group = row_group

    def add(self, table: pa.Table) -> None:
        self.buffer.append(table)
        self.buffered += table.num_rows
        if self.buffered >= self.row_group:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            table = pa.concat_tables(self.buffer).replace_schema_metadata(self.schema.metadata)
            self.writer.write_table(table, row_group_size=max(self.buffered, 1))
            self.buffer, self.buffered = [], 0

    def discard(self) -> None:
        """Close without finishing (the parallel path gave up; the file is rewritten)."""
        self.writer.close()

    def close(self, metadata: dict[str, str], rewrite: bool) -> None:
        self.flush()
        self.writer.add_key_value_metadata(metadata)
        self.writer.close()
        if rewrite:
            schema = self.schema.with_metadata({**self.schema.metadata, **_encode(metadata)})
            copy = self.path.with_name(self.path.name + ".meta")
            source = pq.ParquetFile(self.path)
            with pq.ParquetWriter(copy, schema, compression="zstd") as w:
                for i in range(source.num_row_groups):
                    w.write_table(source.read_row_group(i).replace_schema_metadata(schema.metadata))
            os.replace(copy, self.path)


# --------------------------------------------------------------------------- multistream

_STREAM_START = re.compile(rb"BZh[1-9]1AY&SY")  # stream header + first block magic, byte-aligned
_XML_DECL = re.compile(rb"^\s*<\?xml[^>]*\?>")
_ROOT_OPEN = re.compile(rb"<mediawiki\b[^>]*>")
_ROOT_CLOSE = re.compile(rb"</mediawiki>\s*$")
STREAMS_PER_RANGE = 4  # ≈ 400 pages a task: enough work, bounded memory


def stream_ranges(path: Path, per_range: int = STREAMS_PER_RANGE) -> list[tuple[int, int]]:
    """Byte ranges of whole bz2 streams, ``per_range`` streams each; [] when the
    file is not a bz2 file of at least three streams (header, pages, footer)."""
    offsets: list[int] = []
    with open(path, "rb") as f:
        if f.read(3) != b"BZh":
            return []
        f.seek(0)
        pos, tail = 0, b""
        while chunk := f.read(1 << 24):
            data, base = tail + chunk, pos - len(tail)
            for m in _STREAM_START.finditer(data):
                if not offsets or base + m.start() > offsets[-1]:
                    offsets.append(base + m.start())
            tail, pos = data[-9:], pos + len(chunk)
    if len(offsets) < 3 or offsets[0] != 0:
        return []
    starts = offsets[::per_range]
    return list(zip(starts, [*starts[1:], pos], strict=True))


def _worker_range(path: str, start: int, end: int) -> tuple | None:
    """Decompress and parse the pages of one byte range; None when anything in
    it is unexpected (the caller then reads the dump in order)."""
    job = _WORKER_JOB
    assert job is not None
    try:
        with open(path, "rb") as f:
            f.seek(start)
            xml = bz2.decompress(f.read(end - start))
        if start == 0:  # the header stream: drop the declaration and the root's start tag
            xml = _ROOT_OPEN.sub(b"", _XML_DECL.sub(b"", xml, count=1), count=1)
        # Without the root element, tags carry no namespace: ns "" below.
        root = ET.fromstring(b"<pages>" + _ROOT_CLOSE.sub(b"", xml) + b"</pages>")
    except Exception:  # noqa: BLE001 - truncated, malformed, a false stream boundary
        return None
    has_image = wikitext.image_markup_regex(job.file_namespaces, job.options)
    counts = {"pages_seen": 0, "articles": 0, "redirects_skipped": 0, "non_articles_skipped": 0}
    batch = []
    for elem in root:
        if elem.tag != "page":
            continue  # <siteinfo>
        page = _page(elem, "")
        if _tally(counts, page) and has_image.search(page.text):
            batch.append(page)
    table, skipped, n_pages, stats = _table_batch(batch, job) if batch else (None, [], 0, {})
    return table, skipped, n_pages, stats, counts


def _encode(metadata: dict[str, str]) -> dict[bytes, bytes]:
    return {str(k).encode(): str(v).encode() for k, v in metadata.items()}


def dump_date_from_name(path: str | os.PathLike) -> str | None:
    """``simplewiki-20230820-pages-articles.xml.bz2`` -> ``2023-08-20``."""
    m = re.search(r"(?<!\d)(20\d{2})(\d{2})(\d{2})(?!\d)", Path(path).name)
    return f"{m.group(1)}-{m.group(2)}-{m.group(3)}" if m else None


def _new_summary(dump: Path) -> dict:
    return {
        "dump": str(dump),
        "pages_seen": 0,
        "articles": 0,
        "redirects_skipped": 0,
        "non_articles_skipped": 0,
        "pages_with_pairs": 0,
        "pairs": 0,
        "skipped_pages": [],
        # Counted over pages with image markup (the others are not parsed).
        "templates_rendered": 0,
        "templates_dropped": 0,
        "templates_dropped_top": {},
        "images_without_text": 0,
        "incomplete": False,
        "error": None,
    }


class _DumpRun:
    """The state one ``dump_to_pairs`` run shares between its steps: the
    summary and template stats, the Parquet writer, the worker pool (None with
    one worker) and the batches in flight, and the progress bar."""

    def __init__(self, dump: Path, job: _Job, workers: int, progress: bool, batch_pages: int):
        from tqdm import tqdm

        self.dump, self.job, self.workers, self.batch_pages = dump, job, workers, batch_pages
        self.has_image = wikitext.image_markup_regex(job.file_namespaces, job.options)
        self.summary = _new_summary(dump)
        self.stats: dict = {}
        self.pool = self._new_pool() if workers > 1 else None
        self.ranges = stream_ranges(dump) if self.pool is not None else []
        self.pending: collections.deque = collections.deque()
        self.bar = tqdm(unit=" pages", disable=not progress, file=sys.stderr, mininterval=0.5)

    def open(self, tmp: Path, meta: dict[str, str]) -> None:
        self.tmp, self.meta = tmp, meta
        self.writer = _PairsWriter(tmp, meta)

    def _new_pool(self):
        return multiprocessing.get_context("spawn" if sys.platform == "darwin" else "fork").Pool(
            self.workers, _init_worker, (self.job,)
        )

    def collect(self, result: tuple[pa.Table | None, list[dict], int, dict]) -> None:
        table, skipped, n_pages, batch_stats = result
        wikitext.merge_stats(self.stats, batch_stats)
        if table is not None:
            self.writer.add(table)
            self.summary["pairs"] += table.num_rows
        self.summary["pages_with_pairs"] += n_pages
        self.summary["skipped_pages"].extend(skipped)

    def submit(self, batch: list[DumpPage]) -> None:
        if self.pool is None:
            self.collect(_table_batch(batch, self.job))
            return
        self.pending.append(self.pool.apply_async(_worker_batch, (batch,)))
        while len(self.pending) >= 2 * self.workers:  # bounded in-flight work: flat memory
            self.collect(self.pending.popleft().get())

    def by_ranges(self) -> bool:
        """The multistream path; False as soon as a range fails."""
        in_flight: collections.deque = collections.deque()
        for start, end in self.ranges:
            in_flight.append(self.pool.apply_async(_worker_range, (str(self.dump), start, end)))
            while len(in_flight) >= 2 * self.workers:
                if not self._take_range(in_flight.popleft().get()):
                    return False
        return all(self._take_range(in_flight.popleft().get()) for _ in range(len(in_flight)))

    def _take_range(self, result) -> bool:
        if result is None:
            return False
        *batch_result, counts = result
        self.collect(tuple(batch_result))
        for k, v in counts.items():
            self.summary[k] += v
        self.bar.update(counts["pages_seen"])
        return True

    def start_over(self) -> None:
        """Drop what the multistream path did, for a run in page order."""
        self.pool.terminate()
        self.pool = self._new_pool()
        self.writer.discard()
        self.writer = _PairsWriter(self.tmp, self.meta)
        self.summary = _new_summary(self.dump)
        self.stats = {}
        self.bar.reset()

    def in_page_order(self) -> None:
        """Read the dump in order; a truncated or malformed dump after at least
        one page is recorded in the summary (the complete pages are kept)."""
        batch: list[DumpPage] = []
        try:
            for page in iter_pages(self.dump):
                self.bar.update(1)
                # No image markup: no pairs, so the parser is not needed.
                if _tally(self.summary, page) and self.has_image.search(page.text):
                    batch.append(page)
                    if len(batch) >= self.batch_pages:
                        self.submit(batch)
                        batch = []
        except DumpTruncatedError as e:
            if self.summary["pages_seen"] == 0:
                raise  # no page at all: keep the previous --out (exit 2), write nothing
            self.summary["incomplete"] = True
            self.summary["error"] = str(e)
        if batch:
            self.submit(batch)

    def finish(self) -> None:
        """Collect the batches in flight and close the file with the end metadata."""
        while self.pending:
            self.collect(self.pending.popleft().get())
        end_meta = {"cmisc.skipped_pages": str(len(self.summary["skipped_pages"]))}
        if self.summary["incomplete"]:
            end_meta.update({"cmisc.incomplete": "true", "cmisc.incomplete_reason": self.summary["error"]})
        self.writer.close(end_meta, rewrite=self.summary["incomplete"])

    def close(self) -> None:
        self.bar.close()
        if self.pool is not None:
            self.pool.terminate()


def dump_to_pairs(
    dump: str | os.PathLike,
    out: str | os.PathLike,
    options: WikitextOptions | None = None,
    workers: int = 1,
    *,
    dump_date: str | None = None,
    progress: bool = False,
    batch_pages: int = 8,
) -> dict:
    """Write the pairs of every article of ``dump`` to ``out`` (atomically).

    Returns a summary: pages seen, articles, redirects and non-articles
    skipped, pages with pairs, pairs, skipped pages (title, id, reason), and
    ``incomplete`` with ``error`` when the dump was truncated or malformed
    (the pairs of the complete pages are still written).
    """
    options = options or WikitextOptions()
    dump = Path(dump)
    try:
        site = read_siteinfo(dump)
    except DumpTruncatedError:
        site = SiteInfo()  # iter_pages below meets the same error and records it
    dump_date = dump_date or dump_date_from_name(dump)
    job = _Job(options, site.base_url, dump_date, site.file_namespaces, site.source)
    run = _DumpRun(dump, job, workers, progress, batch_pages)
    meta = {"cmisc.source": site.source, "cmisc.dump": dump.name, "cmisc.dump_date": dump_date or ""}
    try:
        with atomic_path(Path(out)) as tmp:
            run.open(tmp, meta)
            if not (run.ranges and run.by_ranges()):
                if run.ranges:  # start over in page order, which reports what is wrong
                    run.start_over()
                run.in_page_order()
            run.finish()
    finally:
        run.close()
    run.summary.update(wikitext.stats_summary(run.stats))
    return run.summary


# --------------------------------------------------------------------------- CLI


def _load_options(params: str | None) -> WikitextOptions:
    if params is None:
        return (
            load_section(WikitextOptions, "simplewiki")
            if Path("params.yaml").exists()
            else WikitextOptions()
        )
    return load_section(WikitextOptions, "simplewiki", params)


def cli_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="cmisc wiki-pairs",
        description="MediaWiki XML dump -> pairs Parquet (no network: image columns "
        "are filled later by cmisc images). Exit 0: done; 2: bad input; "
        "3: the dump was truncated or malformed, the pairs of its complete pages "
        "were written and marked cmisc.incomplete=true.",
    )
    parser.add_argument(
        "--dump", required=True, help="pages-articles XML dump (.xml, .xml.bz2, .xml.gz)"
    )
    parser.add_argument("--out", required=True, help="pairs Parquet file to write")
    parser.add_argument("--workers", type=int, default=1, help="parser processes (default 1)")
    parser.add_argument(
        "--params",
        default=None,
        help="params.yaml with a simplewiki section "
        "(default: ./params.yaml when present, else built-in defaults)",
    )
    parser.add_argument(
        "--dump-date", default=None, help="YYYY-MM-DD (default: from the file name)"
    )
    parser.add_argument("--summary", default=None, help="also write the JSON summary to this file")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    args = parser.parse_args(argv)
    if args.workers < 1:
        raise CmiscError(f"--workers must be at least 1, got {args.workers}")
    options = _load_options(args.params)
    from cmisc_model.schemas import remove_stale_temps

    for tmp in remove_stale_temps(args.out):
        print(f"cmisc wiki-pairs: removed {tmp}, left by an interrupted run", file=sys.stderr)
    summary = dump_to_pairs(
        args.dump,
        args.out,
        options,
        workers=args.workers,
        dump_date=args.dump_date,
        progress=not args.no_progress,
    )
    text = json.dumps(summary, indent=2, ensure_ascii=False)
    if args.summary:
        with atomic_path(args.summary) as tmp:
            Path(tmp).write_text(text + "\n", encoding="utf-8")
    print(text)
    for skip in summary["skipped_pages"]:
        print(
            f"cmisc wiki-pairs: skipped page {skip['title']!r} (id {skip['page_id']}): {skip['reason']}",
            file=sys.stderr,
        )
    if summary["incomplete"]:
        print(
            f"cmisc wiki-pairs: error: {summary['error']} "
            f"({summary['pairs']} pairs of the complete pages written to {args.out}, "
            "marked incomplete)",
            file=sys.stderr,
        )
        return EXIT_INCOMPLETE
    return 0
