"""Image–text pairs from a live wiki through the MediaWiki Action API.

The alternative to the XML dump (``wiki_dump.py``) for small or refreshed
sets of pages. Default endpoint: Simple English Wikipedia. What it asks
(all ``format=json&formatversion=2``, data_sources.md §2.3):

- the page list: ``list=allpages`` or ``list=categorymembers`` (followed
  through ``continue``), or titles given by the user;
- the latest revision id of each page, cheaply (``prop=revisions&rvprop=ids|
  timestamp``, 50 pages a request), so that a refresh fetches content only
  for pages whose revision changed (``known_revisions``);
- the wikitext of the changed pages (``prop=revisions&rvslots=main&rvprop=
  ids|timestamp|content``, 50 a request), turned into pairs by the same
  ``page_pairs`` the dump reader uses, so both paths give identical rows; or,
  with ``html=True``, the rendered HTML (``action=parse``) through
  ``wiki_html.html_pairs``;
- for the files the pairs use: URL, size, sha1, mime, licence and author
  (``prop=imageinfo&iiprop=url|size|sha1|mime|extmetadata``), for Commons and
  local uploads alike (``imagerepository`` says which).

Etiquette (data_sources.md §2.4) comes from ``cmisc_model.sources.http.PoliteSession``
(User-Agent with contact or nothing, allow-listed hosts, rate limit, retries
with back-off and jitter on 429/5xx/timeouts, ``Retry-After``). Added here:
``maxlag=5`` on every request, the API's ``maxlag`` error (HTTP 200 + JSON +
``Retry-After``) retried like a 503, malformed JSON retried and then reported.

Command line::

    cmisc wiki-scrape --out pairs.parquet --titles Cat Dog --user-agent "cmisc/0.1 (https://…; you@…)"
    cmisc wiki-scrape --out pairs.parquet --category Animals [--html]
    cmisc wiki-scrape --out pairs.parquet --all --limit 1000 --refresh   # only changed pages

A Prefect task per shard: ``client = make_client(cfg)`` then
``fetch_shard(client, page_ids)`` (create the client inside the task: it holds
a connection pool and a rate limiter, one per process).

Bad input never stops a run: a page whose request keeps failing, or whose
wikitext cannot be turned into pairs, is recorded in the summary with its
reason and the other pages are scraped.

Departure from 2017: the original crawler fetched rendered HTML page by page
through the ``wikipedia`` package, with no User-Agent, retries or rate limit,
built every image URL on Commons (so local uploads failed) and aborted on the
first failed download (original_impl.md §1, §11.7). Here pages are batched,
revision ids are recorded, image URLs and licences come from the API.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from cmisc_model.errors import CmiscError
from cmisc_model.schemas import normalise_file_title, remove_stale_temps
from cmisc_model.sources.http import FetchError, PoliteSession, check_user_agent

SOURCE = "simplewiki"
DEFAULT_ENDPOINT = "https://simple.wikipedia.org/w/api.php"
UA_EXAMPLE = "cmisc/0.1 (https://example.org/you; you@example.org)"
UA_ENV = "CMISC_USER_AGENT"
MAX_BATCH = 50  # titles/pageids per request for normal (non-bot) users
LIST_LIMIT = 500  # aplimit/cmlimit maximum for normal users
IMAGEINFO_FIELDS = "LicenseShortName|Artist|Credit|LicenseUrl|UsageTerms|AttributionRequired"


@dataclass
class ScrapeConfig:
    """The ``scrape`` section of params.yaml."""

    endpoint: str = DEFAULT_ENDPOINT
    # Must be set by the user, e.g. "cmisc/0.1 (https://example.org/you; you@example.org)";
    # the CLI also reads --user-agent and $CMISC_USER_AGENT.
    user_agent: str = ""
    allowed_hosts: list[str] = field(
        default_factory=lambda: ["simple.wikipedia.org", "upload.wikimedia.org"]
    )
    rate_per_s: float = 1.0  # requests in series, at most one a second
    batch_size: int = 50  # titles per request; 50 is the API's limit for normal users
    maxlag: int = 5  # seconds of replication lag at which the API asks us to wait
    max_retries: int = 5
    timeout: float = 30.0  # seconds per request

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be 1..{MAX_BATCH}, got {self.batch_size}")


class ApiError(CmiscError):
    """An API request failed for good; ``reason`` is a short word for the summary."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass
class ApiPage:
    """One page as the API reports it; ``wikitext`` is None when not asked or missing."""

    title: str
    page_id: int | None
    revision_id: int | None = None
    timestamp: str | None = None
    wikitext: str | None = None
    missing: bool = False


@dataclass
class ScrapeSummary:
    """What a scrape did, page by page (JSON-friendly through ``as_dict``)."""

    listed: int = 0
    fetched: list[dict] = field(default_factory=list)  # {title, page_id, revision_id, pairs}
    unchanged: list[dict] = field(default_factory=list)  # {title, page_id, revision_id}
    missing: list[str] = field(default_factory=list)  # titles or page ids that do not exist
    failed: list[dict] = field(default_factory=list)  # {page, page_id, stage, reason}
    pairs: int = 0
    requests: int = 0
    # What the pairs leave out: templates dropped (and the most frequent ones),
    # templates rendered, images in sections without prose of their own.
    left_out: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)

    def compact(self) -> dict:
        """Counts, missing pages and failures (not the per-page lists): small
        enough for a Parquet file's metadata on a whole-wiki scrape."""
        return {"listed": self.listed, "fetched": len(self.fetched), "unchanged": len(self.unchanged),
                "missing": self.missing, "failed": self.failed, "pairs": self.pairs,
                "requests": self.requests, "left_out": self.left_out}

    def revisions(self) -> dict[int, int]:
        """page id -> revision id of every page now up to date (fetched or unchanged)."""
        return {int(p["page_id"]): int(p["revision_id"]) for p in self.fetched + self.unchanged}

    def line(self) -> str:
        return (
            f"{self.listed} pages listed: {len(self.fetched)} fetched, {len(self.unchanged)} "
            f"unchanged, {len(self.missing)} missing, {len(self.failed)} failed; "
            f"{self.pairs} pairs; {self.requests} API requests; templates dropped "
            f"{self.left_out.get('templates_dropped', 0)}, images in sections without text "
            f"{self.left_out.get('images_without_text', 0)}"
        )


def _batches(items: Sequence, size: int) -> Iterator[Sequence]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def wiki_base_url(endpoint: str) -> str:
    """``https://simple.wikipedia.org/w/api.php`` -> ``https://simple.wikipedia.org/wiki/``."""
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}/wiki/"


# --------------------------------------------------------------------------- client


class MediaWikiClient:
    """A thin Action API client over a ``PoliteSession``.

    Every request carries ``format=json``, ``formatversion=2`` and ``maxlag``.
    HTTP-level retries are the session's; the API-level ones are here: the
    ``maxlag`` error (through the session's ``should_retry``) and a body that
    is not JSON (retried with back-off, then ``ApiError("malformed-json")``).
    """

    def __init__(
        self,
        session: PoliteSession,
        endpoint: str = DEFAULT_ENDPOINT,
        maxlag: int = 5,
        batch_size: int = MAX_BATCH,
        list_limit: int = LIST_LIMIT,
    ):
        self.session = session
        self.list_limit = max(1, min(list_limit, LIST_LIMIT))
        self.endpoint = endpoint
        self.maxlag = maxlag
        self.batch_size = max(1, min(batch_size, MAX_BATCH))
        self.base_url = wiki_base_url(endpoint)
        self.requests_made = 0

    # ------------------------------------------------------------------ raw

    @staticmethod
    def _is_maxlag(resp: requests.Response) -> bool:
        if "X-Database-Lag" in resp.headers:
            return True
        if b'"maxlag"' not in resp.content[:300]:  # cheap: the error code comes first
            return False
        try:
            return resp.json().get("error", {}).get("code") == "maxlag"
        except (ValueError, AttributeError):
            return False

    def call(self, params: dict[str, Any]) -> dict:
        """One API request (plus retries); the decoded JSON, or ``ApiError``."""
        full = {**params, "format": "json", "formatversion": "2", "maxlag": str(self.maxlag)}
        what = _describe(params)
        retries = getattr(self.session, "max_retries", 5)
        for attempt in range(retries + 1):
            self.requests_made += 1
            try:
                resp = self.session.get(self.endpoint, params=full, should_retry=self._is_maxlag)
            except FetchError as e:
                reason = "maxlag" if e.reason == "retries-exhausted" else e.reason
                raise ApiError(reason, f"{what}: {e}") from e
            try:
                data = resp.json()
                if not isinstance(data, dict):
                    raise ValueError("not a JSON object")  # noqa: TRY004 - handled just below
            except ValueError as e:
                if attempt == retries:
                    raise ApiError(
                        "malformed-json", f"{what}: the answer is not JSON after {attempt + 1} tries ({e})"
                    ) from e
                self._backoff(attempt)
                continue
            if "error" in data:
                err = data["error"]
                raise ApiError(
                    f"api-{err.get('code', 'error')}", f"{what}: API error {err.get('code')}: {err.get('info')}"
                )
            return data
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int) -> None:
        # Same full-jitter schedule as the session uses for HTTP faults.
        base = getattr(self.session, "backoff_base", 1.0)
        cap = getattr(self.session, "backoff_max", 60.0)
        rng = getattr(self.session, "rng", random)
        getattr(self.session, "sleep", time.sleep)(rng.uniform(0, min(cap, base * 2**attempt)))

    def query(self, params: dict[str, Any]) -> Iterator[dict]:
        """``action=query`` responses, following ``continue`` until the end.

        All keys of ``continue`` are sent back unchanged, as the API asks.
        """
        cont: dict[str, Any] = {}
        while True:
            data = self.call({"action": "query", **params, **cont})
            yield data
            if "continue" not in data:
                return
            cont = data["continue"]

    # ------------------------------------------------------------------ lists

    def all_pages(self, namespace: int = 0, limit: int | None = None) -> list[ApiPage]:
        """Every non-redirect page of a namespace, in title order (``list=allpages``)."""
        return self._list(
            "allpages",
            {"list": "allpages", "apnamespace": namespace, "apfilterredir": "nonredirects",
             "aplimit": min(self.list_limit, limit or LIST_LIMIT)},
            limit,
        )

    def category_members(self, category: str, namespace: int = 0, limit: int | None = None) -> list[ApiPage]:
        """The pages of one category (not its subcategories), ``list=categorymembers``."""
        title = category if category.lower().startswith("category:") else f"Category:{category}"
        return self._list(
            "categorymembers",
            {"list": "categorymembers", "cmtitle": title, "cmnamespace": namespace, "cmtype": "page",
             "cmlimit": min(self.list_limit, limit or LIST_LIMIT)},
            limit,
        )

    def _list(self, key: str, params: dict, limit: int | None) -> list[ApiPage]:
        out: list[ApiPage] = []
        for data in self.query(params):
            for item in data.get("query", {}).get(key, []):
                out.append(ApiPage(title=item["title"], page_id=int(item["pageid"])))
                if limit is not None and len(out) >= limit:
                    return out
        return out

    # ------------------------------------------------------------------ pages

    def latest_revisions(
        self, titles: Sequence[str] | None = None, pageids: Sequence[int] | None = None
    ) -> Iterator[ApiPage]:
        """Latest revision id and timestamp of each page, without content (cheap)."""
        yield from self._pages(titles, pageids, {"prop": "revisions", "rvprop": "ids|timestamp"})

    def revisions(
        self, titles: Sequence[str] | None = None, pageids: Sequence[int] | None = None
    ) -> Iterator[ApiPage]:
        """Latest revision with its wikitext; missing pages come back with ``missing=True``."""
        yield from self._pages(
            titles, pageids, {"prop": "revisions", "rvprop": "ids|timestamp|content", "rvslots": "main"}
        )

    def _pages(self, titles, pageids, params: dict) -> Iterator[ApiPage]:
        if (titles is None) == (pageids is None):
            raise ValueError("give titles or pageids, not both")
        key, values = ("titles", list(titles)) if titles is not None else ("pageids", [str(int(p)) for p in pageids])
        for batch in _batches(values, self.batch_size):
            merged: dict[Any, dict] = {}
            # With content, a large batch is split by the API across several
            # answers (rvcontinue); a page's revision may come in a later one.
            for data in self.query({**params, key: "|".join(batch)}):
                for p in data.get("query", {}).get("pages", []):
                    k = p.get("pageid") or p.get("title")
                    entry = merged.setdefault(k, dict(p))
                    if p.get("revisions") and not entry.get("revisions"):
                        entry["revisions"] = p["revisions"]
            for p in merged.values():
                yield _api_page(p)

    def image_info(self, file_names: Iterable[str]) -> dict[str, dict]:
        """``{normalised file name: info}`` for the given files (``prop=imageinfo``).

        ``info`` has ``url, descriptionurl, size, width, height, sha1, mime,
        repository`` (``local`` or ``shared`` = Commons), ``licence``,
        ``attribution`` and ``missing`` (True when the file exists nowhere).
        """
        names = sorted({normalise_file_title(n) for n in file_names if n})
        out: dict[str, dict] = {}
        for batch in _batches(names, self.batch_size):
            params = {
                "prop": "imageinfo",
                "iiprop": "url|size|sha1|mime|extmetadata",
                "iiextmetadatafilter": IMAGEINFO_FIELDS,
                "titles": "|".join("File:" + n for n in batch),
            }
            for data in self.query(params):
                for p in data.get("query", {}).get("pages", []):
                    name = normalise_file_title(p.get("title", ""))
                    # Continuation may bring older versions of a file: keep the first (latest).
                    if name in out and not out[name]["missing"]:
                        continue
                    out[name] = _image_info(name, p)
        return out

    def parse(self, title: str | None = None, revid: int | None = None, page_id: int | None = None) -> dict:
        """``action=parse&prop=text`` of one page or revision: ``{title, pageid, revid, text}``."""
        params: dict[str, Any] = {"action": "parse", "prop": "text", "disableeditsection": "1",
                                  "disabletoc": "1", "disablelimitreport": "1"}
        if revid is not None:
            params["oldid"] = int(revid)
        elif page_id is not None:
            params["pageid"] = int(page_id)
        elif title is not None:
            params["page"] = title
        else:
            raise ValueError("give a title, a revision id or a page id")
        data = self.call(params)
        parse = data.get("parse")
        if not isinstance(parse, dict) or not isinstance(parse.get("text"), str):
            raise ApiError("malformed-json", f"{_describe(params)}: no parse.text in the answer")
        return parse

    def parse_html(self, title: str | None = None, revid: int | None = None) -> str:
        return self.parse(title=title, revid=revid)["text"]


def _describe(params: dict) -> str:
    """A short name for a request, for error messages."""
    keys = ("action", "list", "prop", "titles", "pageids", "page", "oldid", "cmtitle")
    parts = []
    for k in keys:
        if k in params:
            v = str(params[k])
            parts.append(f"{k}={v if len(v) < 60 else v[:57] + '...'}")
    return "API " + "&".join(parts)


def _api_page(p: dict) -> ApiPage:
    missing = bool(p.get("missing") or p.get("invalid"))
    page = ApiPage(title=p.get("title", str(p.get("pageid", ""))), page_id=p.get("pageid"), missing=missing)
    revs = p.get("revisions") or []
    if revs:
        rev = revs[0]
        page.revision_id = rev.get("revid")
        page.timestamp = rev.get("timestamp")
        main = (rev.get("slots") or {}).get("main") or {}
        content = main.get("content", main.get("*"))  # fv2, fv1
        page.wikitext = content if isinstance(content, str) else None
    return page


def _html_to_text(value: str) -> str:
    from bs4 import BeautifulSoup

    return " ".join(BeautifulSoup(value or "", "html.parser").get_text(" ").split())


def _image_info(name: str, p: dict) -> dict:
    infos = p.get("imageinfo") or []
    info = infos[0] if infos else {}
    ext = info.get("extmetadata") or {}

    def meta(key: str) -> str | None:
        v = (ext.get(key) or {}).get("value")
        return _html_to_text(str(v)) or None if v else None

    return {
        "name": name,
        # A Commons file seen from a Wikipedia is "missing" and "known": it exists.
        "missing": not info,
        "repository": p.get("imagerepository") or None,
        "url": info.get("url"),
        "descriptionurl": info.get("descriptionurl"),
        "size": info.get("size"),
        "width": info.get("width"),
        "height": info.get("height"),
        "sha1": info.get("sha1"),
        "mime": info.get("mime"),
        "licence": meta("LicenseShortName"),
        "attribution": meta("Artist") or meta("Credit"),
    }


# --------------------------------------------------------------------------- pairs


def _pairs_from_page(
    client: MediaWikiClient, page: ApiPage, html: bool, options: Any, stats: dict | None = None
) -> list[dict]:
    if html:
        from cmisc_model.sources.wiki_html import html_pairs

        text = client.parse_html(revid=page.revision_id) if page.revision_id else client.parse_html(title=page.title)
        return html_pairs(
            page.title, page.page_id, text, revision_id=page.revision_id,
            revision_timestamp=page.timestamp, base_url=client.base_url, options=options,
        )
    from cmisc_model.sources.wikitext import page_pairs

    return page_pairs(
        page.title, page.page_id, page.wikitext, revision_id=page.revision_id,
        revision_timestamp=page.timestamp, base_url=client.base_url, options=options, stats=stats,
    )


def _failure(page: ApiPage | str | int, stage: str, reason: str) -> dict:
    if isinstance(page, ApiPage):
        return {"page": page.title, "page_id": page.page_id, "stage": stage, "reason": reason}
    return {"page": str(page), "page_id": page if isinstance(page, int) else None, "stage": stage, "reason": reason}


def fill_image_info(rows: list[dict], infos: dict[str, dict], allowed_hosts: Iterable[str] | None = None) -> None:
    """Set ``image_url``, ``licence`` and ``attribution`` of each row from ``image_info``.

    A URL on a host outside ``allowed_hosts`` is kept for the record but the
    row is marked ``rejected:host-not-allowed`` so that nobody fetches it.
    """
    allowed = {h.lower() for h in allowed_hosts} if allowed_hosts is not None else None
    for row in rows:
        if (row.get("image_status") or "").startswith("rejected:"):
            continue  # rejected at parse time (an unsafe file name): never resolved
        info = infos.get(normalise_file_title(row.get("image_title") or ""))
        if info is None or info["missing"]:
            continue  # no such file on the wiki or Commons: the row stays "missing"
        row["image_url"] = info["url"] or row.get("image_url")
        row["licence"] = info["licence"] or row.get("licence")
        row["attribution"] = info["attribution"] or row.get("attribution")
        host = (urlsplit(row["image_url"] or "").hostname or "").lower()
        if allowed is not None and row["image_url"] and host not in allowed:
            row["image_status"] = "rejected:host-not-allowed"


def fetch_shard(
    client: MediaWikiClient,
    pages: Sequence[int | str | ApiPage],
    *,
    html: bool = False,
    options: Any = None,
    retrieved_at: str | None = None,
    stats: dict | None = None,
) -> tuple[list[dict], list[dict]]:
    """Pairs of a shard of pages (page ids, titles or listed ``ApiPage``) -> (rows, failures).

    One Prefect task per shard calls this. Never raises for a page: a request
    that keeps failing is retried page by page to isolate the culprit, and
    every page that still fails lands in ``failures`` with its stage and reason.
    """
    retrieved_at = retrieved_at or _now()
    rows: list[dict] = []
    failures: list[dict] = []
    got = _fetch_pages(client, list(pages), html, failures)
    for page in got:
        if page.missing:
            failures.append(_failure(page, "revisions", "missing: the page does not exist"))
            continue
        if not html and page.wikitext is None:
            failures.append(_failure(page, "revisions", "no content in the answer (hidden revision?)"))
            continue
        try:
            page_rows = _pairs_from_page(client, page, html, options, stats)
        except ApiError as e:
            failures.append(_failure(page, "parse", f"{e.reason}: {e}"))
            continue
        except Exception as e:  # noqa: BLE001 - malformed wikitext or HTML never stops a run
            failures.append(_failure(page, "pairs", f"{type(e).__name__}: {e}"))
            continue
        for row in page_rows:
            row["retrieved_at"] = retrieved_at
        rows.extend(page_rows)
    if rows:
        try:
            infos = client.image_info(r.get("image_title") or "" for r in rows
                                      if not (r.get("image_status") or "").startswith("rejected:"))
        except ApiError as e:
            # The pairs stay; their images resolve later (URL from the file name).
            failures.append({"page": "(imageinfo)", "page_id": None, "stage": "imageinfo", "reason": f"{e.reason}: {e}"})
        else:
            fill_image_info(rows, infos, getattr(client.session, "allowed_hosts", None))
    return rows, failures


def _fetch_pages(client: MediaWikiClient, pages: list, html: bool, failures: list[dict]) -> list[ApiPage]:
    """The pages of a shard: with content (wikitext) or with revision ids (html)."""
    if not pages:
        return []
    if all(isinstance(p, ApiPage) for p in pages) and html and all(p.revision_id for p in pages):
        return list(pages)  # action=parse fetches each page's HTML by revision id

    def ask(chunk: list) -> list[ApiPage]:
        ids = [p.page_id if isinstance(p, ApiPage) else p for p in chunk]
        fetch = client.latest_revisions if html else client.revisions
        if all(isinstance(i, int) for i in ids):
            return list(fetch(pageids=ids))
        return list(fetch(titles=[p.title if isinstance(p, ApiPage) else str(p) for p in chunk]))

    # A batch that fails after all retries is asked again one page at a time,
    # to find the page that breaks it; three failures in a row look like an
    # outage, so the rest is skipped until a batch succeeds again.
    out: list[ApiPage] = []
    in_a_row = 0
    for batch in _batches(pages, client.batch_size):
        try:
            out.extend(ask(list(batch)))
            in_a_row = 0
            continue
        except ApiError as e:
            batch_error = e
        if len(batch) == 1:
            failures.append(_failure(batch[0], "revisions", f"{batch_error.reason}: {batch_error}"))
            in_a_row += 1
            continue
        for p in batch:
            if in_a_row >= 3:
                failures.append(_failure(p, "revisions", f"skipped after repeated failures ({batch_error.reason})"))
                continue
            try:
                out.extend(ask([p]))
                in_a_row = 0
            except ApiError as e:
                failures.append(_failure(p, "revisions", f"{e.reason}: {e}"))
                in_a_row += 1
    return out


def _list_pages(
    client: MediaWikiClient, titles: Sequence[str] | None, category: str | None, limit: int | None
) -> list[ApiPage]:
    """The chosen pages with their latest revision ids."""
    if titles is not None:
        return list(client.latest_revisions(titles=list(titles)[:limit] if limit else list(titles)))
    members = client.category_members(category, limit=limit) if category else client.all_pages(limit=limit)
    return list(client.latest_revisions(pageids=[p.page_id for p in members]))


def _changed_pages(
    listed: list[ApiPage], known_revisions: dict[int, int] | None, summary: ScrapeSummary
) -> list[ApiPage]:
    """The listed pages to fetch; missing and unchanged ones go to the summary."""
    known = {int(k): int(v) for k, v in (known_revisions or {}).items()}
    todo: list[ApiPage] = []
    for page in listed:
        if page.missing:
            summary.missing.append(page.title)
        elif page.page_id is not None and known.get(int(page.page_id)) == page.revision_id:
            summary.unchanged.append({"title": page.title, "page_id": page.page_id, "revision_id": page.revision_id})
        else:
            todo.append(page)
    return todo


def _record_shard(
    summary: ScrapeSummary,
    shard: Sequence[ApiPage],
    shard_rows: list[dict],
    failures: list[dict],
    on_shard: Any,
) -> None:
    """Add a finished shard's failures and fetched pages to ``summary``; pass it to ``on_shard``."""
    failed_ids = {f["page_id"] for f in failures}
    for f in failures:
        if f["reason"].startswith("missing"):
            summary.missing.append(f["page"])  # deleted since it was listed
        else:
            summary.failed.append(f)
    counts: dict[Any, int] = {}
    for r in shard_rows:
        counts[r["doc_id"]] = counts.get(r["doc_id"], 0) + 1
    done = [{"title": page.title, "page_id": page.page_id, "revision_id": page.revision_id,
             "pairs": counts.get(str(page.page_id), 0)} for page in shard if page.page_id not in failed_ids]
    summary.fetched.extend(done)
    if on_shard is not None:
        ok = {str(p["page_id"]) for p in done}
        on_shard([r for r in shard_rows if r["doc_id"] in ok], done)


def scrape(
    client: MediaWikiClient,
    titles: Sequence[str] | None = None,
    category: str | None = None,
    all_pages: bool = False,
    limit: int | None = None,
    known_revisions: dict[int, int] | None = None,
    *,
    html: bool = False,
    options: Any = None,
    progress: bool = False,
    on_shard: Any = None,
) -> tuple[list[dict], ScrapeSummary]:
    """Pairs of the chosen pages -> (rows, summary).

    Exactly one of ``titles``, ``category`` or ``all_pages``. With
    ``known_revisions`` (page id -> revision id of a previous run), pages whose
    latest revision is unchanged are listed as ``unchanged`` and not fetched:
    a scheduled refresh costs one cheap request per 50 pages plus the changed
    pages. A failure of the listing itself raises ``ApiError`` (there is
    nothing to scrape without it); any later failure is per page.
    ``on_shard(rows, fetched)`` is called as each shard finishes (the CLI's
    journal, so that a killed run resumes).
    """
    if sum([titles is not None, category is not None, bool(all_pages)]) != 1:
        raise CmiscError("give exactly one of: titles, a category, or all pages")
    summary = ScrapeSummary()
    start_requests = _sent(client)
    retrieved_at = _now()
    listed = _list_pages(client, titles, category, limit)
    summary.listed = len(listed)
    todo = _changed_pages(listed, known_revisions, summary)

    rows: list[dict] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), unit="page", desc="wiki-scrape", file=sys.stderr)
    stats: dict = {}
    for shard in _batches(todo, client.batch_size):
        shard_rows, failures = fetch_shard(client, list(shard), html=html, options=options,
                                           retrieved_at=retrieved_at, stats=stats)
        rows.extend(shard_rows)
        _record_shard(summary, shard, shard_rows, failures, on_shard)
        if bar is not None:
            bar.update(len(shard))
    if bar is not None:
        bar.close()
    summary.pairs = len(rows)
    summary.requests = _sent(client) - start_requests
    from cmisc_model.sources.wikitext import stats_summary

    summary.left_out = stats_summary(stats)
    return rows, summary


def _sent(client: MediaWikiClient) -> int:
    """Requests really sent, HTTP retries included (``call`` sees one per answer)."""
    return getattr(client.session, "requests_sent", client.requests_made)


def refresh_rows(old_rows: Iterable[dict], new_rows: list[dict], summary: ScrapeSummary) -> list[dict]:
    """Merge a refresh into the previous pairs: changed pages replaced, deleted
    pages dropped, unchanged and failed pages kept as they were."""
    replaced = {str(p["page_id"]) for p in summary.fetched}
    deleted = set(summary.missing)
    kept = [r for r in old_rows if r["doc_id"] not in replaced and r.get("doc_title") not in deleted]
    return kept + list(new_rows)


# --------------------------------------------------------------------------- setup


def make_client(cfg: ScrapeConfig, sleep=None, before_request=None) -> MediaWikiClient:
    """A client for ``cfg``; refuses (``CmiscError``) without a User-Agent with contact."""
    if not (cfg.user_agent or "").strip():
        raise CmiscError(
            "no User-Agent: Wikimedia requires a descriptive one with contact; set scrape.user_agent "
            f"in params.yaml, --user-agent or ${UA_ENV}, e.g. '{UA_EXAMPLE}'"
        )
    try:
        check_user_agent(cfg.user_agent)
    except CmiscError as e:
        raise CmiscError(
            f"User-Agent {cfg.user_agent!r} has no contact (an e-mail address or URL); "
            f"Wikimedia blocks such clients. Example: '{UA_EXAMPLE}'"
        ) from e
    host = (urlsplit(cfg.endpoint).hostname or "").lower()
    if host not in {h.lower() for h in cfg.allowed_hosts}:
        raise CmiscError(f"endpoint {cfg.endpoint}: host {host!r} is not in scrape.allowed_hosts {cfg.allowed_hosts}")
    session = PoliteSession(
        cfg.user_agent, cfg.allowed_hosts, rate_per_s=cfg.rate_per_s, max_retries=cfg.max_retries,
        timeout=cfg.timeout, sleep=sleep or time.sleep, before_request=before_request,
    )
    return MediaWikiClient(session, cfg.endpoint, maxlag=cfg.maxlag, batch_size=cfg.batch_size)


def known_revisions_of(path: str | os.PathLike) -> tuple[dict[int, int], list[dict]]:
    """(page id -> revision id, rows) of a previous scrape's pairs file.

    The revisions of pages without pairs are in the file's metadata
    (``cmisc.revisions``), so that those pages are not refetched either.
    """
    from cmisc_model.schemas import PAIRS, file_metadata, read_table

    table = read_table(path, PAIRS)
    rows = table.to_pylist()
    known: dict[int, int] = {}
    meta = file_metadata(path).get("cmisc.revisions")
    if meta:
        known.update({int(k): int(v) for k, v in json.loads(meta).items()})
    for r in rows:
        if r.get("revision_id") is not None and r["doc_id"].isdigit():
            known.setdefault(int(r["doc_id"]), int(r["revision_id"]))
    return known, rows


class ShardJournal:
    """The finished shards of a scrape, kept in ``.OUT.parts/`` until it ends.

    Each shard's rows and fetched pages are written (atomically) as soon as
    it finishes; a rerun after a crash or SIGKILL with the same endpoint and
    options takes them as done and fetches only the rest. The journal is
    removed once the output is written.
    """

    def __init__(self, out: str | os.PathLike, identity: dict):
        out = Path(out)
        self.dir = out.with_name(f".{out.name}.parts")
        self.identity = json.dumps(identity, sort_keys=True, default=str)
        self.count = 0

    def load(self) -> tuple[list[dict], list[dict]]:
        """(rows, fetched pages) of the finished shards of an interrupted run
        with the same identity; an other run's journal is discarded."""
        from cmisc_model.schemas import PAIRS, file_metadata, read_table

        ident = self.dir / "run.json"
        if not ident.exists() or ident.read_text(encoding="utf-8") != self.identity:
            self.clear()
            return [], []
        rows: list[dict] = []
        fetched: list[dict] = []
        for part in sorted(self.dir.glob("part-*.parquet")):
            try:
                meta = json.loads(file_metadata(part)["cmisc.fetched"])
                part_rows = read_table(part, PAIRS).to_pylist()
            except Exception:  # noqa: BLE001, S112 - a damaged part is simply fetched again
                continue
            rows.extend(part_rows)
            fetched.extend(meta)
            self.count += 1
        return rows, fetched

    def add(self, rows: list[dict], fetched: list[dict]) -> None:
        from cmisc_model.schemas import PAIRS, atomic_path, from_rows, write_table

        self.dir.mkdir(parents=True, exist_ok=True)
        ident = self.dir / "run.json"
        if not ident.exists():
            with atomic_path(ident) as tmp:
                tmp.write_text(self.identity, encoding="utf-8")
        path = self.dir / f"part-{self.count:06d}.parquet"
        self.count += 1
        write_table(from_rows(rows, PAIRS, str(path)), path, PAIRS, metadata={"cmisc.fetched": json.dumps(fetched)})

    def clear(self) -> None:
        import shutil

        shutil.rmtree(self.dir, ignore_errors=True)


EXIT_ALL_FAILED = 1  # no page could be scraped: nothing written


def _parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="cmisc wiki-scrape",
        description="Scrape image–text pairs from a wiki through the MediaWiki Action API.",
    )
    ap.add_argument("--out", required=True, help="pairs Parquet file to write (atomically)")
    which = ap.add_mutually_exclusive_group(required=True)
    which.add_argument("--titles", nargs="+", metavar="TITLE", help="these pages")
    which.add_argument("--category", metavar="NAME", help="the pages of this category")
    which.add_argument("--all", action="store_true", help="every article (namespace 0)")
    ap.add_argument("--limit", type=int, help="at most this many pages")
    ap.add_argument("--endpoint", help=f"api.php URL (default: params scrape.endpoint, {DEFAULT_ENDPOINT})")
    ap.add_argument("--user-agent", help=f"descriptive User-Agent with contact (or ${UA_ENV}, or params)")
    ap.add_argument("--html", action="store_true", help="extract from rendered HTML (action=parse) instead of wikitext")
    ap.add_argument("--refresh", action="store_true",
                    help="update --out in place: fetch only pages whose revision changed since it was written")
    ap.add_argument("--params", default="params.yaml", help="params file with a 'scrape' section")
    ap.add_argument("--summary", help="also write the per-page summary as JSON here")
    return ap.parse_args(argv)


def _configs(args: argparse.Namespace) -> tuple[ScrapeConfig, Any]:
    """(scrape config, pairing options) from the params file and the command line."""
    from cmisc_model.config import from_mapping, load_params
    from cmisc_model.sources.wikitext import WikitextOptions

    params = load_params(args.params) if Path(args.params).exists() else {}
    cfg = from_mapping(ScrapeConfig, params.get("scrape", {}), "scrape")
    # The same pairing options as the dump path (cmisc wiki-pairs), so both agree.
    options = from_mapping(WikitextOptions, params.get("simplewiki", {}), "simplewiki")
    if args.endpoint:
        cfg.endpoint = args.endpoint
        # Naming an endpoint on the command line configures its host.
        host = (urlsplit(args.endpoint).hostname or "").lower()
        if host and host not in cfg.allowed_hosts:
            cfg.allowed_hosts = [*cfg.allowed_hosts, host]
    cfg.user_agent = args.user_agent or os.environ.get(UA_ENV) or cfg.user_agent
    if args.limit is not None and args.limit < 1:
        raise CmiscError(f"--limit must be at least 1, got {args.limit}")
    return cfg, options


def _take_resumed(
    rows: list[dict],
    summary: ScrapeSummary,
    known: dict[int, int],
    done_rows: list[dict],
    done_pages: list[dict],
) -> list[dict]:
    """Pages done by the interrupted run count as fetched, with their journal rows."""
    done_revisions = {int(p["page_id"]): int(p["revision_id"]) for p in done_pages}
    resumed = {p["page_id"] for p in summary.unchanged} & set(done_revisions) - {
        pid for pid, rev in known.items() if done_revisions.get(pid) == rev}
    summary.unchanged = [p for p in summary.unchanged if p["page_id"] not in resumed]
    summary.fetched = [p for p in done_pages if p["page_id"] in resumed] + summary.fetched
    rows = [r for r in done_rows if int(r["doc_id"]) in resumed] + rows
    summary.pairs = len(rows)
    return rows


def _print_failures(summary: ScrapeSummary) -> None:
    for f in summary.failed[:10]:
        print(f"  failed: {f['page']} ({f['stage']}): {f['reason']}", file=sys.stderr)


def _write_output(
    args: argparse.Namespace,
    cfg: ScrapeConfig,
    rows: list[dict],
    summary: ScrapeSummary,
    known: dict[int, int],
) -> None:
    from cmisc_model.schemas import PAIRS, atomic_path, from_rows, write_table

    revisions = {**{k: v for k, v in known.items()}, **summary.revisions()}
    metadata = {
        "cmisc.source": "mediawiki-api" + ("+html" if args.html else ""),
        "cmisc.endpoint": cfg.endpoint,
        "cmisc.retrieved_at": _now(),
        "cmisc.revisions": json.dumps({str(k): v for k, v in sorted(revisions.items())}),
        "cmisc.scrape_summary": json.dumps(summary.compact()),
        "cmisc.incomplete": "true" if summary.failed else "false",
    }
    write_table(from_rows(rows, PAIRS, args.out), args.out, PAIRS, metadata=metadata)
    if args.summary:
        with atomic_path(args.summary) as tmp:
            tmp.write_text(json.dumps(summary.as_dict(), indent=2), encoding="utf-8")


def cli_main(argv: list[str]) -> int:
    args = _parse_args(argv)
    cfg, options = _configs(args)
    client = make_client(cfg)
    for tmp in remove_stale_temps(args.out):
        print(f"removed {tmp}, left by an interrupted run", file=sys.stderr)

    known, old_rows = ({}, [])
    if args.refresh and Path(args.out).exists():
        known, old_rows = known_revisions_of(args.out)
    # Shards finished by an interrupted run of the same command are not fetched again.
    journal = ShardJournal(args.out, {"endpoint": cfg.endpoint, "html": args.html, "options": asdict(options),
                                      "titles": args.titles, "category": args.category, "all": args.all})
    done_rows, done_pages = journal.load()
    if done_pages:
        print(f"resuming: {len(done_pages)} pages from {journal.count} finished shards in {journal.dir}",
              file=sys.stderr)
    done_revisions = {int(p["page_id"]): int(p["revision_id"]) for p in done_pages}
    rows, summary = scrape(
        client, titles=args.titles, category=args.category, all_pages=args.all, limit=args.limit,
        known_revisions={**known, **done_revisions}, html=args.html, options=options, progress=True,
        on_shard=journal.add,
    )
    rows = _take_resumed(rows, summary, known, done_rows, done_pages)
    if not summary.fetched and summary.failed:
        print(f"{args.out}: not written, every page failed; {summary.line()}", file=sys.stderr)
        _print_failures(summary)
        journal.clear()
        return EXIT_ALL_FAILED
    if args.refresh:
        rows = refresh_rows(old_rows, rows, summary)
    _write_output(args, cfg, rows, summary, known)
    print(f"{args.out}: {len(rows)} pairs; {summary.line()}", file=sys.stderr)
    _print_failures(summary)
    if len(summary.failed) > 10:
        print(f"  ... and {len(summary.failed) - 10} more failures", file=sys.stderr)
    journal.clear()  # the output holds it all now
    return 0
