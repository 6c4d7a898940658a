"""A local fake of the MediaWiki Action API, for tests (loopback only).

It serves a handful of pages the way ``api.php`` does with ``format=json&
formatversion=2`` (shapes from data_sources.md §2.3) and image files under
``/images/<h0>/<h01>/<name>``, injects faults on chosen requests, and logs
every request so that a test can assert what was fetched::

    pages = [FakePage("Cat", "[[File:Cat.jpg|thumb|A cat.]]\\nCats purr.")]
    wiki = FakeWiki(pages, images={"Cat.jpg": jpeg_bytes},
                    faults=[Fault("429", match="prop=revisions")])
    with wiki as base_url:                 # "http://127.0.0.1:PORT"
        ...  # the API is at wiki.endpoint == base_url + "/w/api.php"
        wiki.edit("Cat", "new text")      # a new revision id, for refresh tests
    wiki.api_requests()                    # what was asked, in order

Implemented: ``action=query`` with ``list=allpages`` (``apcontinue``),
``list=categorymembers`` (``cmcontinue``), ``prop=revisions`` (``rvslots=main``,
``rvprop=ids|timestamp|content``; content of at most ``rv_content_limit`` pages
per response, the rest via ``rvcontinue``), ``prop=info`` and
``prop=imageinfo`` (``iiprop=url|size|sha1|mime|extmetadata``); ``action=parse``
(``page``, ``pageid`` or ``oldid``; ``prop=text``). More than 50 titles or page
ids is an error (``toomanyvalues``), so batching mistakes show. Requests
without a descriptive User-Agent get HTTP 403, as on Wikimedia.

Faults (``Fault.kind``): ``429`` and ``503`` (with ``Retry-After``), ``500``,
``timeout`` (the answer is delayed past any sensible client timeout),
``maxlag`` (HTTP 200 with the API's maxlag error JSON and ``Retry-After``) and
``malformed`` (truncated JSON).
"""

from __future__ import annotations

import dataclasses
import hashlib
import html as html_lib
import json
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import mwparserfromhell

MAX_VALUES = 50  # titles/pageids per request for normal users (data_sources.md §2.4)
FAULT_KINDS = ("429", "503", "500", "timeout", "maxlag", "malformed")


@dataclass
class FakePage:
    """One page. ``html`` is what ``action=parse`` returns; when None it is
    rendered from the wikitext by ``render_html`` in the wiki's markup."""

    title: str
    wikitext: str
    page_id: int | None = None  # assigned in order from 1001 when None
    revision_id: int | None = None  # assigned from 5001 when None
    timestamp: str = "2026-01-15T12:00:00Z"
    namespace: int = 0
    categories: list[str] = field(default_factory=list)
    html: str | None = None


@dataclass
class Fault:
    """Answer ``count`` requests with a fault, after ``skip`` good ones.

    Only API requests whose decoded query string contains ``match`` count
    (None: every API request; e.g. ``match="prop=revisions"`` or a title).
    ``count=None`` makes the fault persistent.
    """

    kind: str
    match: str | None = None
    count: int | None = 1
    skip: int = 0
    retry_after: str = "1"

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind {self.kind!r} is not one of {FAULT_KINDS}")


@dataclass
class RequestRecord:
    path: str
    params: dict[str, str]
    user_agent: str
    status: int
    fault: str | None
    at: float = 0.0  # time.monotonic() on arrival, to check the spacing of requests


def render_html(title: str, wikitext: str, markup: str = "figure") -> str:
    """A tiny wikitext -> HTML renderer, enough for test pages.

    Handles headings, paragraphs, ``*`` lists, links, bold/italic, ``<ref>``
    (as ``sup.reference``), templates (dropped) and ``[[File:..|thumb|caption]]``
    (as ``figure[typeof=mw:File/Thumb]`` when ``markup="figure"``, as the
    pre-2023 ``div.thumb`` when ``markup="legacy"``). File links are emitted as
    blocks before the text of their line, as MediaWiki does with thumbs.
    """
    if markup not in ("figure", "legacy"):
        raise ValueError(f"markup {markup!r} is not 'figure' or 'legacy'")
    out: list[str] = ['<div class="mw-content-ltr mw-parser-output" lang="en" dir="ltr">']
    para: list[str] = []
    items: list[str] = []
    refs = [0]

    def flush() -> None:
        if para:
            out.append("<p>" + " ".join(para) + "\n</p>")
            para.clear()
        if items:
            out.append("<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>")
            items.clear()

    for line in wikitext.splitlines():
        stripped = line.strip()
        m = re.fullmatch(r"(={2,6})\s*(.*?)\s*\1", stripped)
        if m:
            flush()
            level, text = len(m.group(1)), _inline(m.group(2), refs)
            anchor = html_lib.escape(text.replace(" ", "_"), quote=True)
            edit = '<span class="mw-editsection"><span class="mw-editsection-bracket">[</span><a href="#">edit</a><span class="mw-editsection-bracket">]</span></span>'
            if markup == "figure":
                out.append(f'<div class="mw-heading mw-heading{level}"><h{level} id="{anchor}">{text}</h{level}>{edit}</div>')
            else:
                out.append(f'<h{level}><span class="mw-headline" id="{anchor}">{text}</span>{edit}</h{level}>')
            continue
        if not stripped:
            flush()
            continue
        code = mwparserfromhell.parse(stripped)
        rest = stripped
        for link in code.filter_wikilinks(recursive=False):
            target = str(link.title).strip()
            if target.split(":", 1)[0].strip().lower() in ("file", "image") and ":" in target:
                flush()
                out.append(_render_file(target.split(":", 1)[1].strip(), link.text, markup, refs))
                rest = rest.replace(str(link), "", 1)
        rest = rest.strip()
        if not rest:
            continue
        if rest.startswith("*"):
            if para:
                flush()
            items.append(_inline(rest.lstrip("*").strip(), refs))
        else:
            if items:
                flush()
            para.append(_inline(rest, refs))
    flush()
    out.append("</div>")
    return "\n".join(out)


_OPTIONS = re.compile(
    r"^(thumb|thumbnail|frame|framed|frameless|border|left|right|center|centre|none|"
    r"upright(=[\d.]+)?|\d*x?\d+px|baseline|sub|super|top|text-top|middle|bottom|text-bottom)$"
)


def _render_file(name: str, text, markup: str, refs: list[int]) -> str:
    parts = [str(p) for p in _split_pipes(str(text))] if text is not None else []
    caption, alt, kind = "", "", None
    for p in parts:
        s = p.strip()
        if s in ("thumb", "thumbnail"):
            kind = "Thumb"
        elif s in ("frame", "framed"):
            kind = "Frame"
        elif s.startswith("alt="):
            alt = s[4:]
        elif _OPTIONS.match(s) or re.match(r"^(link|page|class|lang)=", s):
            continue
        else:
            caption = s
    file_name = name.replace(" ", "_")
    h = hashlib.md5(file_name.encode()).hexdigest()
    src = f"//upload.wikimedia.org/wikipedia/commons/thumb/{h[0]}/{h[:2]}/{urllib.parse.quote(file_name)}/250px-{urllib.parse.quote(file_name)}"
    href = "/wiki/File:" + urllib.parse.quote(file_name)
    cap = _inline(caption, refs)
    alt_attr = html_lib.escape(alt, quote=True)
    if kind is None:  # inline image: no visible caption
        return f'<p><span typeof="mw:File"><a href="{href}" class="mw-file-description"><img alt="{alt_attr}" src="{src}" class="mw-file-element"></a></span></p>'
    if markup == "figure":
        return (
            f'<figure class="mw-default-size" typeof="mw:File/{kind}"><a href="{href}" class="mw-file-description">'
            f'<img alt="{alt_attr}" src="{src}" decoding="async" width="250" height="188" class="mw-file-element"></a>'
            f"<figcaption>{cap}</figcaption></figure>"
        )
    return (
        f'<div class="thumb tright"><div class="thumbinner" style="width:252px;"><a href="{href}" class="image">'
        f'<img alt="{alt_attr}" src="{src}" decoding="async" width="250" height="188" class="thumbimage"></a>'
        f'<div class="thumbcaption"><div class="magnify"><a href="{href}" class="internal" title="Enlarge"></a></div>{cap}</div></div></div>'
    )


def _split_pipes(text: str) -> list[str]:
    """Split file-link options on ``|`` outside nested ``[[..]]`` and ``{{..}}``."""
    parts, depth, cur, i = [], 0, [], 0
    while i < len(text):
        two = text[i : i + 2]
        if two in ("[[", "{{"):
            depth += 1
            cur.append(two)
            i += 2
            continue
        if two in ("]]", "}}") and depth:
            depth -= 1
            cur.append(two)
            i += 2
            continue
        if text[i] == "|" and not depth:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(text[i])
        i += 1
    parts.append("".join(cur))
    return parts


def _inline(text: str, refs: list[int]) -> str:
    """Wikitext inline markup -> HTML: links, bold/italic, refs, templates dropped."""
    text = re.sub(r"\{\{[^{}]*\}\}", "", text)

    def ref(_m: re.Match) -> str:
        refs[0] += 1
        n = refs[0]
        return f'<sup id="cite_ref-{n}" class="reference"><a href="#cite_note-{n}">[{n}]</a></sup>'

    text = re.sub(r"<ref[^>/]*/>|<ref[^>]*>.*?</ref>", ref, text, flags=re.DOTALL)
    parts = re.split(r"(<sup id=\"cite_ref-\d+\" class=\"reference\">.*?</sup>)", text)
    rendered = []
    for part in parts:
        if part.startswith("<sup "):
            rendered.append(part)
            continue
        part = html_lib.escape(part, quote=False)

        def link(m: re.Match) -> str:
            target, label = m.group(1), m.group(2) or m.group(1)
            return f'<a href="/wiki/{urllib.parse.quote(target.strip().replace(" ", "_"))}" title="{target.strip()}">{label}</a>'

        part = re.sub(r"\[\[([^\[\]|]+)(?:\|([^\[\]]*))?\]\]", link, part)
        part = re.sub(r"'''(.*?)'''", r"<b>\1</b>", part)
        part = re.sub(r"''(.*?)''", r"<i>\1</i>", part)
        rendered.append(part)
    return "".join(rendered)


def _mime(name: str) -> str:
    ext = name.rsplit(".", 1)[-1].lower()
    return {
        "jpg": "image/jpeg",
        "jpeg": "image/jpeg",
        "png": "image/png",
        "gif": "image/gif",
        "svg": "image/svg+xml",
        "webp": "image/webp",
        "tif": "image/tiff",
        "tiff": "image/tiff",
    }.get(ext, "application/octet-stream")


def _norm(title: str) -> str:
    """MediaWiki title normalisation: underscores -> spaces, first letter upper."""
    title = " ".join(title.replace("_", " ").split())
    if ":" in title:
        ns, rest = title.split(":", 1)
        if ns.strip().lower() in ("file", "image", "category"):
            rest = rest.strip()
            ns = "File" if ns.strip().lower() in ("file", "image") else "Category"
            return f"{ns}:{rest[:1].upper()}{rest[1:]}"
    return title[:1].upper() + title[1:]


class FakeWiki:
    """The fake API server; a context manager whose ``__enter__`` returns the base URL.

    ``images`` maps file names (``Cat.jpg``, spaces or underscores) to bytes:
    these are local uploads (``imagerepository: local``) served under
    ``/images/``. ``shared_images`` are Commons files: served too, reported as
    ``missing``+``known`` with ``imagerepository: shared`` as a real wiki does.
    ``image_meta`` overrides imageinfo fields per file (``url``, ``licence``,
    ``artist``); ``{base}`` and ``{port}`` in a string are filled in at start.
    """

    def __init__(
        self,
        pages: list[FakePage],
        images: dict[str, bytes] | None = None,
        faults: list[Fault] | None = None,
        *,
        shared_images: dict[str, bytes] | None = None,
        image_meta: dict[str, dict] | None = None,
        html_markup: str = "figure",
        rv_content_limit: int = 0,
        timeout_delay: float = 1.5,
        require_user_agent: bool = True,
    ):
        self.pages: list[FakePage] = []
        self._next_page_id = 1001
        self._next_rev = 5001
        self._old_revisions: dict[int, tuple[str, FakePage]] = {}  # revid -> (wikitext, page copy)
        for p in pages:
            self.add_page(p)
        self.images = {_norm("File:" + k)[5:].replace(" ", "_"): v for k, v in (images or {}).items()}
        self.shared = {_norm("File:" + k)[5:].replace(" ", "_"): v for k, v in (shared_images or {}).items()}
        self.image_meta = {_norm("File:" + k)[5:].replace(" ", "_"): v for k, v in (image_meta or {}).items()}
        self.faults = list(faults or [])
        self._fault_seen = [0] * len(self.faults)
        self.html_markup = html_markup
        self.rv_content_limit = rv_content_limit
        self.timeout_delay = timeout_delay
        self.require_user_agent = require_user_agent
        self.requests: list[RequestRecord] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    # ------------------------------------------------------------------ setup

    def add_page(self, page: FakePage) -> FakePage:
        page = dataclasses.replace(page, title=_norm(page.title))
        if page.page_id is None:
            page.page_id = self._next_page_id
            self._next_page_id += 1
        if page.revision_id is None:
            page.revision_id = self._next_rev
            self._next_rev += 1
        self._next_rev = max(self._next_rev, page.revision_id + 1)
        self._next_page_id = max(self._next_page_id, page.page_id + 1)
        self.pages.append(page)
        return page

    def page(self, title: str) -> FakePage:
        title = _norm(title)
        for p in self.pages:
            if p.title == title:
                return p
        raise KeyError(title)

    def edit(self, title: str, wikitext: str, html: str | None = None, timestamp: str | None = None) -> int:
        """Save a new revision of a page; returns its revision id."""
        with self._lock:
            p = self.page(title)
            self._old_revisions[p.revision_id] = (p.wikitext, dataclasses.replace(p))
            p.wikitext, p.html = wikitext, html
            p.revision_id = self._next_rev
            self._next_rev += 1
            p.timestamp = timestamp or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            return p.revision_id

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)
            self._fault_seen.append(0)

    def clear_faults(self) -> None:
        with self._lock:
            self.faults, self._fault_seen = [], []

    @property
    def endpoint(self) -> str:
        return self.base_url + "/w/api.php"

    def image_url(self, name: str) -> str:
        name = _norm("File:" + name)[5:].replace(" ", "_")
        h = hashlib.md5(name.encode()).hexdigest()
        return f"{self.base_url}/images/{h[0]}/{h[:2]}/{urllib.parse.quote(name)}"

    def api_requests(self) -> list[RequestRecord]:
        return [r for r in self.requests if r.path == "/w/api.php"]

    def reset_log(self) -> None:
        with self._lock:
            self.requests.clear()

    # ------------------------------------------------------------------ server

    def __enter__(self) -> str:
        wiki = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                wiki._handle(self)

            def log_message(self, *args) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        port = self._server.server_address[1]
        self.base_url = f"http://127.0.0.1:{port}"
        for meta in self.image_meta.values():
            for k, v in meta.items():
                if isinstance(v, str):
                    meta[k] = v.replace("{base}", self.base_url).replace("{port}", str(port))
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self.base_url

    def __exit__(self, *exc) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # ------------------------------------------------------------------ handling

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        parsed = urllib.parse.urlsplit(h.path)
        params = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
        ua = h.headers.get("User-Agent", "")
        path = urllib.parse.unquote(parsed.path)
        fault = None
        record = RequestRecord(path, params, ua, 0, None, time.monotonic())
        with self._lock:
            self.requests.append(record)  # logged on arrival, so the order is the order asked
            if path == "/w/api.php":
                query_text = urllib.parse.unquote_plus(parsed.query)
                for i, f in enumerate(self.faults):
                    if f.match is not None and f.match not in query_text:
                        continue
                    self._fault_seen[i] += 1
                    n = self._fault_seen[i]
                    if n > f.skip and (f.count is None or n <= f.skip + f.count):
                        fault = f
                        record.fault = f.kind
                        break
        try:
            if self.require_user_agent and not re.search(r"@|https?://", ua):
                status, headers, body = 403, {}, b"Please set a descriptive User-Agent with contact information."
            elif fault is not None:
                status, headers, body = self._fault_response(fault)
                if fault.kind == "timeout":
                    # Answer late, after the client has given up.
                    time.sleep(self.timeout_delay)
                    status, headers, body = self._route(path, params)
            else:
                status, headers, body = self._route(path, params)
        except Exception as e:  # noqa: BLE001 - a bug in the fake must show up in the test, not hang it
            status, headers, body = 500, {}, f"fake wiki error: {e!r}".encode()
        record.status, record.fault = status, fault.kind if fault else None
        try:
            h.send_response(status)
            for k, v in headers.items():
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and left

    def _fault_response(self, f: Fault) -> tuple[int, dict, bytes]:
        if f.kind in ("429", "503"):
            return int(f.kind), {"Retry-After": f.retry_after, "Content-Type": "text/html"}, b"<html>busy</html>"
        if f.kind == "500":
            return 500, {"Content-Type": "text/html"}, b"<html>error</html>"
        if f.kind == "maxlag":
            body = {
                "error": {
                    "code": "maxlag",
                    "info": "Waiting for 10.64.0.1: 7 seconds lagged.",
                    "host": "10.64.0.1",
                    "lag": 7,
                    "type": "db",
                },
                "servedby": "fake",
            }
            headers = {"Retry-After": f.retry_after, "X-Database-Lag": "7", "Content-Type": "application/json"}
            return 200, headers, json.dumps(body).encode()
        if f.kind == "malformed":
            return 200, {"Content-Type": "application/json"}, b'{"batchcomplete": true, "query": {"pages": [{"pageid": 1'
        return 200, {}, b""  # timeout: replaced by the real answer after the delay

    def _route(self, path: str, params: dict[str, str]) -> tuple[int, dict, bytes]:
        if path.startswith("/images/"):
            name = path.rsplit("/", 1)[-1]
            data = self.images.get(name, self.shared.get(name))
            if data is None:
                return 404, {"Content-Type": "text/plain"}, b"not found"
            return 200, {"Content-Type": _mime(name)}, data
        if path != "/w/api.php":
            return 404, {"Content-Type": "text/plain"}, b"not found"
        if params.get("format") != "json":
            return 200, {"Content-Type": "text/html"}, b"<html>API help page (no format=json)</html>"
        action = params.get("action")
        if action == "query":
            result = self._query(params)
        elif action == "parse":
            result = self._parse(params)
        else:
            result = _error("badvalue", f'Unrecognized value for parameter "action": {action}.')
        return 200, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(result).encode()

    # ------------------------------------------------------------------ api

    def _query(self, params: dict[str, str]) -> dict:
        for key in ("titles", "pageids"):
            if key in params and len(params[key].split("|")) > MAX_VALUES:
                return _error("toomanyvalues", f'Too many values supplied for parameter "{key}". The limit is {MAX_VALUES}.')
        lst, prop = params.get("list"), params.get("prop", "")
        if lst == "allpages":
            return self._allpages(params)
        if lst == "categorymembers":
            return self._categorymembers(params)
        if prop in ("revisions", "info", "imageinfo"):
            return getattr(self, "_prop_" + prop)(params)
        return _error("badvalue", f"fake wiki does not implement list={lst} prop={prop}")

    def _allpages(self, params: dict[str, str]) -> dict:
        ns = int(params.get("apnamespace", "0"))
        limit = min(int(params.get("aplimit", "10")), 500)
        start = _norm(params.get("apcontinue") or params.get("apfrom") or "")
        titles = sorted((p for p in self.pages if p.namespace == ns and p.title >= start), key=lambda p: p.title)
        batch = titles[:limit]
        out: dict = {"batchcomplete": True, "query": {"allpages": [
            {"pageid": p.page_id, "ns": p.namespace, "title": p.title} for p in batch
        ]}}
        if len(titles) > limit:
            out["continue"] = {"apcontinue": titles[limit].title.replace(" ", "_"), "continue": "-||"}
        return out

    def _categorymembers(self, params: dict[str, str]) -> dict:
        cat = _norm(params.get("cmtitle", ""))
        if not cat.startswith("Category:"):
            return _error("invalidcategory", "The category name you entered is not valid.")
        name = cat.split(":", 1)[1]
        members = [p for p in self.pages if name in [_norm(c) for c in p.categories]]
        limit = min(int(params.get("cmlimit", "10")), 500)
        offset = int(params.get("cmcontinue", "page|0").split("|")[-1])
        batch = members[offset : offset + limit]
        out: dict = {"batchcomplete": True, "query": {"categorymembers": [
            {"pageid": p.page_id, "ns": p.namespace, "title": p.title} for p in batch
        ]}}
        if offset + limit < len(members):
            out["continue"] = {"cmcontinue": f"page|{offset + limit}", "continue": "-||"}
        return out

    def _resolve(self, params: dict[str, str]) -> tuple[list[dict], list[tuple[FakePage | None, dict]]]:
        """(normalized, [(page or None, base entry)]) for titles= or pageids=."""
        normalized, found = [], []
        if "titles" in params:
            for raw in params["titles"].split("|"):
                t = _norm(raw)
                if t != raw:
                    normalized.append({"fromencoded": False, "from": raw, "to": t})
                page = next((p for p in self.pages if p.title == t), None)
                entry = {"ns": page.namespace if page else (6 if t.startswith("File:") else 0), "title": t}
                found.append((page, entry))
        elif "pageids" in params:
            for raw in params["pageids"].split("|"):
                page = next((p for p in self.pages if str(p.page_id) == raw.strip()), None)
                entry = {"pageid": int(raw)} if page is None else {"ns": page.namespace, "title": page.title}
                found.append((page, entry))
        return normalized, found

    def _wrap(self, normalized: list[dict], pages: list[dict], cont: dict | None = None) -> dict:
        out: dict = {"batchcomplete": True, "query": {"pages": pages}}
        if normalized:
            out["query"]["normalized"] = normalized
        if cont:
            out["continue"] = cont
            del out["batchcomplete"]
        return out

    def _prop_info(self, params: dict[str, str]) -> dict:
        normalized, found = self._resolve(params)
        pages = []
        for page, entry in found:
            if page is None:
                pages.append({**entry, "missing": True})
            else:
                pages.append({"pageid": page.page_id, **entry, "contentmodel": "wikitext",
                              "touched": page.timestamp, "lastrevid": page.revision_id,
                              "length": len(page.wikitext.encode())})
        return self._wrap(normalized, pages)

    def _prop_revisions(self, params: dict[str, str]) -> dict:
        if params.get("formatversion") != "2" or "rvslots" not in params and "content" in params.get("rvprop", ""):
            return _error("badvalue", "the fake wiki only speaks formatversion=2 with rvslots=main")
        normalized, found = self._resolve(params)
        rvprop = set(params.get("rvprop", "ids|timestamp|flags|comment|user").split("|"))
        start_after = int(params["rvcontinue"].split("|")[0]) if "rvcontinue" in params else None
        with_content, cont, pages = 0, None, []
        for page, entry in found:
            if page is None:
                pages.append({**entry, "missing": True})
                continue
            item = {"pageid": page.page_id, **entry}
            skip = start_after is not None and page.page_id < start_after
            if not skip and cont is None:
                if "content" in rvprop and self.rv_content_limit and with_content >= self.rv_content_limit:
                    cont = {"rvcontinue": f"{page.page_id}|{page.revision_id}", "continue": "||"}
                else:
                    rev: dict = {}
                    if "ids" in rvprop:
                        rev.update({"revid": page.revision_id, "parentid": page.revision_id - 1})
                    if "timestamp" in rvprop:
                        rev["timestamp"] = page.timestamp
                    if "content" in rvprop:
                        with_content += 1
                        rev["slots"] = {"main": {"contentmodel": "wikitext", "contentformat": "text/x-wiki",
                                                 "content": page.wikitext}}
                    item["revisions"] = [rev]
            pages.append(item)
        # Real API: pages come back sorted by page id, missing ones first.
        pages.sort(key=lambda p: (not p.get("missing", False), p.get("pageid", 0)))
        return self._wrap(normalized, pages, cont)

    def _prop_imageinfo(self, params: dict[str, str]) -> dict:
        normalized, found = self._resolve(params)
        iiprop = set(params.get("iiprop", "timestamp|user").split("|"))
        pages = []
        for _page, entry in found:
            title = entry.get("title", "")
            name = title.split(":", 1)[-1].replace(" ", "_")
            meta = self.image_meta.get(name, {})
            if name in self.images:
                data, repo = self.images[name], "local"
            elif name in self.shared:
                data, repo = self.shared[name], "shared"
            else:
                pages.append({"ns": 6, "title": title, "missing": True, "imagerepository": ""})
                continue
            info: dict = {}
            if "url" in iiprop:
                info["url"] = meta.get("url", self.image_url(name))
                info["descriptionurl"] = f"{self.base_url}/wiki/File:{urllib.parse.quote(name)}"
            if "size" in iiprop:
                info.update({"size": len(data), "width": meta.get("width", 320), "height": meta.get("height", 240)})
            if "sha1" in iiprop:
                info["sha1"] = hashlib.sha1(data).hexdigest()
            if "mime" in iiprop:
                info["mime"] = _mime(name)
            if "extmetadata" in iiprop:
                info["extmetadata"] = {
                    "LicenseShortName": {"value": meta.get("licence", "CC BY-SA 4.0"), "source": "commons-desc-page", "hidden": ""},
                    "Artist": {"value": meta.get("artist", '<a href="//commons.wikimedia.org/wiki/User:Fake" title="User:Fake">Fake Artist</a>'),
                               "source": "commons-desc-page"},
                    "Credit": {"value": "<span class=\"int-own-work\">Own work</span>", "source": "commons-desc-page"},
                }
            item = {"ns": 6, "title": title, "imagerepository": repo, "imageinfo": [info]}
            if repo == "shared":  # a Commons file seen from a Wikipedia: "missing" but "known"
                item.update({"missing": True, "known": True})
            pages.append(item)
        return self._wrap(normalized, pages)

    def _parse(self, params: dict[str, str]) -> dict:
        page, wikitext = None, None
        if "oldid" in params:
            revid = int(params["oldid"])
            page = next((p for p in self.pages if p.revision_id == revid), None)
            if page is None and revid in self._old_revisions:
                wikitext, page = self._old_revisions[revid]
            if page is None:
                return _error("nosuchrevid", f"There is no revision with ID {revid}.")
        elif "pageid" in params:
            page = next((p for p in self.pages if str(p.page_id) == params["pageid"]), None)
            if page is None:
                return _error("nosuchpageid", f"There is no page with ID {params['pageid']}.")
        else:
            t = _norm(params.get("page", ""))
            page = next((p for p in self.pages if p.title == t), None)
            if page is None:
                return _error("missingtitle", "The page you specified doesn't exist.")
        text = page.html if page.html is not None else render_html(page.title, wikitext or page.wikitext, self.html_markup)
        return {"parse": {"title": page.title, "pageid": page.page_id, "revid": page.revision_id, "text": text}}


def _error(code: str, info: str) -> dict:
    return {"error": {"code": code, "info": info, "docref": "See /w/api.php for API usage."}, "servedby": "fake"}
