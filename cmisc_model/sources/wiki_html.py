"""Rendered article HTML (``action=parse``) -> image–text pairs, with BeautifulSoup.

The alternative to ``wikitext.page_pairs`` when the rendered page is what
counts (templates expanded, as a reader sees it). It produces the same PAIRS
rows where the two can agree: same ``pair_id`` (page id + normalised file
name, ``#2`` for a repeated file), ``position``, ``section_path``, caption and
pairing rule (paper §4.3: a lead image gets the whole article, a section image
its section), driven by the same ``WikitextOptions``.

Images are captioned thumbnails in either markup MediaWiki has used:

- legacy (before ~2023, and the 2017 code's only case):
  ``div.thumb > div.thumbinner > a.image > img`` + ``div.thumbcaption``;
- current: ``figure[typeof~="mw:File/Thumb"]`` (also ``mw:File/Frame``)
  ``> a > img`` + ``figcaption``.

Plain inline images (``span[typeof="mw:File"]``, ``a.image`` outside a thumb)
count only with ``thumbs_only: false``; galleries (``ul.gallery``) only with
``include_gallery``; images in tables only with ``include_table_images``.
Headings are ``h2``..``h6``, bare or inside ``div.mw-heading`` (current) or with
``span.mw-headline`` (legacy). Section text is the ``<p>`` paragraphs (lists by
option), without reference markers, edit links, hatnotes, navboxes, infoboxes
or tables.

Limits (documented, not silent): infobox images (``include_infobox``) are a
wikitext-only option, since the rendered infobox does not say which template
parameter an image came from; text produced by templates (``{{convert}}``,
dates) is present here and absent from the wikitext path, so sentences can
differ slightly where templates sit in running text.

Departure from 2017: the 2017 code parsed the legacy markup with lxml and took
the lead text from TextExtracts instead of the HTML; here both markups are
read, and lead and sections are cleaned the same way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import parse_qs, unquote, urlsplit

from bs4 import BeautifulSoup, NavigableString, Tag

from cmisc_model.sources.wikitext import (
    DEFAULT_BASE_URL,
    DEFAULT_FILE_NAMESPACES,
    WikitextOptions,
    commons_url,
    pairs_from_sections,
)
from cmisc_model.text.sentences import split_sentences

_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
# Containers whose content is never article prose (or has its own handling).
_SKIP_CLASSES = {
    "navbox", "vertical-navbox", "infobox", "reflist", "references", "mw-references-wrap",
    "hatnote", "toc", "toccolours", "metadata", "ambox", "sistersitebox", "noprint",
    "mw-editsection", "shortdescription", "printfooter", "catlinks", "mw-authority-control",
    "side-box", "portalbox", "navigation-not-searchable",
}
# Inline bits of a paragraph or caption that are not text.
_DROP_INLINE = [
    "sup.reference", "sup.noprint", "span.mw-editsection", "style", "script",
    "span.mwe-math-element", "div.magnify", "link", "meta",
]
_FRAMED_TYPES = {"mw:File/Thumb", "mw:File/Frame"}
_REF_MARK = re.compile(r"\[(?:\d+|[a-z]|note \d+|citation needed|clarification needed)\]", re.IGNORECASE)
_EMPTY_BRACKETS = re.compile(r"\(\s*[,;:]?\s*\)")
_SPACE_BEFORE_PUNCT = re.compile(r"[ \t]+([,.;:!?])")


class HtmlError(ValueError):
    """The HTML of one page could not be turned into pairs."""


# --------------------------------------------------------------------------- text

def _classes(tag: Tag) -> set[str]:
    return set(tag.get("class") or [])


def _clean_text(tag: Tag) -> str:
    """Reader-visible text of an element, without references and edit links."""
    tag = BeautifulSoup(str(tag), "html.parser")  # a copy: the page tree stays intact
    for sel in _DROP_INLINE:
        for t in tag.select(sel):
            t.decompose()
    for br in tag.find_all("br"):
        br.replace_with(" ")
    text = tag.get_text("").replace("\xa0", " ")
    text = _REF_MARK.sub("", text)
    text = _EMPTY_BRACKETS.sub("", text)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    return " ".join(text.split())


def _sentences(text: str) -> list[str]:
    return [s for s in split_sentences(text) if any(c.isalnum() for c in s)]


# --------------------------------------------------------------------------- images

class _Image:
    def __init__(self, name: str, caption: str, alt: str | None, framed: bool, kind: str, src: str | None):
        self.name, self.caption, self.alt = name, caption, alt
        self.framed, self.kind, self.src = framed, kind, src


def _file_name(a: Tag | None, img: Tag | None, namespaces: set[str]) -> str | None:
    """The file name from the link (``/wiki/File:X``, ``./File:X``, ``?title=File:X``),
    else from the image's ``resource`` or ``src`` (``…/thumb/a/ab/X.jpg/250px-X.jpg``)."""
    candidates = []
    if a is not None and a.get("href"):
        parts = urlsplit(a["href"])
        candidates.append(unquote(parts.path).rsplit("/", 1)[-1])
        candidates += parse_qs(parts.query).get("title", [])
    if img is not None and img.get("resource"):
        candidates.append(unquote(img["resource"]).rsplit("/", 1)[-1])
    for c in candidates:
        if ":" in c:
            prefix, rest = c.split(":", 1)
            if prefix.replace("_", " ").strip().lower() in namespaces and rest:
                return rest.replace("_", " ").strip()
    src = img.get("src") if img is not None else None
    if src:
        segs = [unquote(s) for s in urlsplit(src).path.split("/") if s]
        if "thumb" in segs and len(segs) > segs.index("thumb") + 3:
            return segs[segs.index("thumb") + 3].replace("_", " ")
        if segs:
            return segs[-1].replace("_", " ")
    return None


def _original_url(src: str | None, name: str) -> str:
    """The original file's URL from a thumbnail ``src`` (Commons and local uploads
    alike); a Commons URL built from the name when there is no usable src."""
    if src:
        url = "https:" + src if src.startswith("//") else src
        parts = urlsplit(url)
        if parts.scheme in ("http", "https") and "/thumb/" in parts.path:
            head, tail = parts.path.split("/thumb/", 1)
            pieces = tail.split("/")
            if len(pieces) >= 4:
                return f"{parts.scheme}://{parts.netloc}{head}/{'/'.join(pieces[:3])}"
        if parts.scheme in ("http", "https") and parts.netloc:
            return url
    return commons_url(name)


def _image_from(box: Tag, caption_tag: Tag | None, framed: bool, kind: str, namespaces: set[str]) -> _Image | None:
    img = box.find("img")
    a = img.find_parent("a") if img is not None else box.find("a")
    name = _file_name(a, img, namespaces)
    if not name:
        return None
    caption = _clean_text(caption_tag) if caption_tag is not None else ""
    if not caption and not framed and a is not None and a.get("title"):
        caption = " ".join(a["title"].split())  # an inline image's caption is its tooltip
    alt = img.get("alt") if img is not None else None
    return _Image(name, caption, alt or None, framed, kind, img.get("src") if img is not None else None)


def _thumb(tag: Tag, namespaces: set[str], kind: str) -> _Image | None:
    """A captioned thumbnail in either markup, or None if ``tag`` is not one."""
    if tag.name == "figure":
        types = set((tag.get("typeof") or "").split())
        if not any(t == "mw:File" or t.startswith("mw:File/") for t in types):
            return None
        framed = bool(types & _FRAMED_TYPES)
        return _image_from(tag, tag.find("figcaption"), framed, kind, namespaces)
    if tag.name == "div" and "thumb" in _classes(tag) and "tmulti" not in _classes(tag):
        return _image_from(tag, tag.find("div", class_="thumbcaption"), True, kind, namespaces)
    return None


def _inline_images(tag: Tag, namespaces: set[str], kind: str) -> list[_Image]:
    """Images shown inline (no frame): ``span[typeof^=mw:File]`` or a bare ``a.image``."""
    out = []
    for img in tag.find_all("img"):
        if img.find_parent("figure") or img.find_parent("div", class_="thumb"):
            continue
        a = img.find_parent("a")
        holder = img.find_parent("span", attrs={"typeof": re.compile(r"mw:File")})
        if holder is None and not (a is not None and ({"image", "mw-file-description"} & _classes(a))):
            continue
        found = _image_from(holder or a, None, False, kind, namespaces)
        if found:
            out.append(found)
    return out


def _gallery(tag: Tag, namespaces: set[str]) -> list[_Image]:
    out = []
    for box in tag.find_all("li", class_="gallerybox"):
        found = _image_from(box, box.find("div", class_="gallerytext"), True, "gallery", namespaces)
        if found:
            out.append(found)
    return out


# --------------------------------------------------------------------------- sections

class _Section:
    def __init__(self, path: list[str]):
        self.path = path
        self.sentences: list[str] = []
        self.images: list[_Image] = []
        self.dropped = False


def _heading(tag: Tag) -> tuple[int, str] | None:
    """(level, text) when ``tag`` is a heading or a ``div.mw-heading`` wrapper."""
    h = tag
    if tag.name == "div" and "mw-heading" in _classes(tag):
        h = tag.find(list(_HEADINGS))
        if h is None:
            return None
    if h.name not in _HEADINGS:
        return None
    inner = h.find("span", class_="mw-headline") or h
    return _HEADINGS[h.name], _clean_text(inner)


class _SectionWalker:
    """Walks the rendered body, starting a ``_Section`` at each heading and
    giving the current one the sentences and images met."""

    def __init__(self, options: WikitextOptions, namespaces: set[str]):
        self.options = options
        self.namespaces = namespaces
        self.sections = [_Section([])]
        self.stack: list[tuple[int, str]] = []

    def walk(self, node: Tag, in_table: bool = False) -> None:
        for child in node.children:
            if isinstance(child, NavigableString) or not isinstance(child, Tag):
                continue
            head = _heading(child)
            if head is not None:
                self.start_section(*head)
                continue
            if _classes(child) & _SKIP_CLASSES:
                continue
            kind = "table" if in_table else "link"
            thumb = _thumb(child, self.namespaces, kind)
            if thumb is not None:
                self.sections[-1].images.append(thumb)
                continue
            self.read(child, in_table, kind)

    def start_section(self, level: int, text: str) -> None:
        while self.stack and self.stack[-1][0] >= level:
            self.stack.pop()
        self.stack.append((level, text))
        self.sections.append(_Section([t for _, t in self.stack]))

    def read(self, child: Tag, in_table: bool, kind: str) -> None:
        """A block that is neither a heading nor a thumbnail."""
        cur, options, namespaces = self.sections[-1], self.options, self.namespaces
        name = child.name
        if name == "p":
            cur.sentences.extend(_sentences(_clean_text(child)))
            if not options.thumbs_only or in_table:
                cur.images.extend(_inline_images(child, namespaces, kind))
        elif name == "ul" and "gallery" in _classes(child):
            if options.include_gallery:
                cur.images.extend(_gallery(child, namespaces))
        elif name in ("ul", "ol", "dl"):
            if options.include_lists:
                for item in child.find_all(["li", "dd", "dt"], recursive=False):
                    cur.sentences.extend(_sentences(_clean_text(item)))
        elif name == "table":
            if options.include_table_images:
                self.walk_table(child)
        elif name in ("div", "section", "blockquote", "center", "span", "main", "article"):
            if name == "span" and not options.thumbs_only:
                cur.images.extend(_inline_images(child, namespaces, kind))
            elif name != "span":
                self.walk(child, in_table)

    def walk_table(self, table: Tag) -> None:
        cur = self.sections[-1]
        for el in table.find_all(["figure", "div"]):
            thumb = _thumb(el, self.namespaces, "table")
            if thumb is not None:
                cur.images.append(thumb)
        cur.images.extend(_inline_images(table, self.namespaces, "table"))


def split_html_sections(html: str, options: WikitextOptions, namespaces: set[str]) -> list[_Section]:
    """Lead + sections in reading order, each with its own sentences and images."""
    soup = BeautifulSoup(html, "html.parser")
    walker = _SectionWalker(options, namespaces)
    walker.walk(soup.find("div", class_="mw-parser-output") or soup)
    drop = {d.strip().lower() for d in options.drop_sections}
    for sec in walker.sections:
        if any(h.lower() in drop for h in sec.path):
            sec.dropped, sec.sentences, sec.images = True, [], []
    return walker.sections


def _keep(img: _Image, options: WikitextOptions) -> bool:
    ext = img.name.rsplit(".", 1)[-1].lower() if "." in img.name else ""
    if ext not in {e.lower().lstrip(".") for e in options.image_extensions}:
        return False
    if options.thumbs_only and img.kind == "link" and not img.framed:
        return False
    return not (options.require_caption and not img.caption)


# --------------------------------------------------------------------------- pairs

def html_pairs(
    title: str,
    page_id: int | str,
    html: str,
    *,
    revision_id: int | None = None,
    revision_timestamp: str | None = None,
    base_url: str = DEFAULT_BASE_URL,
    dump_date: str | None = None,
    options: WikitextOptions | None = None,
    file_namespaces: Sequence[str] = DEFAULT_FILE_NAMESPACES,
) -> list[dict]:
    """PAIRS rows for one article's rendered HTML (same rules as ``page_pairs``).

    Raises ``HtmlError`` naming the page when the input is not HTML text.
    """
    options = options or WikitextOptions()
    if not isinstance(html, str):
        raise HtmlError(f"page {title!r} (id {page_id}): HTML is {type(html).__name__}, not text")
    namespaces = {n.replace("_", " ").strip().lower() for n in list(file_namespaces) + list(DEFAULT_FILE_NAMESPACES)}
    try:
        sections = split_html_sections(html, options, namespaces)
    except RecursionError as e:
        raise HtmlError(f"page {title!r} (id {page_id}): HTML nested too deeply") from e

    return pairs_from_sections(
        title, page_id, sections, options,
        keep=lambda img: _keep(img, options),
        image_ref=lambda img, key: ("File:" + img.name, _original_url(img.src, key)),
        revision_id=revision_id, revision_timestamp=revision_timestamp, base_url=base_url, dump_date=dump_date,
    )
