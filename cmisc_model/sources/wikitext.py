"""Wikitext of one article -> image–text pairs (paper §4.3), with mwparserfromhell.

An article is split into the lead (everything before the first heading) and
nested sections (``section_path`` = the headings from the top section down).
Images come from ``[[File:…]]`` / ``[[Image:…]]`` links and the site's localised
file-namespace names; galleries, infobox ``image=`` parameters and images inside
tables are options (``WikitextOptions``), off by default as in 2017.

Pairing rule (paper §4.3, the 2017 code's ``preprocessText.py``):

- an image in a section gets its section's own text (``subsection_text`` adds
  the text of its subsections, in reading order);
- an image in the lead gets the whole article: the lead block (titles =
  ``[article title]``, as 2017 did) then one block per section with text,
  titles = that section's heading path.

Text is cleaned of templates, references, tables, files, categories, comments,
interlanguage links and galleries, then split with the shared
``split_sentences``. List items are dropped by default (2017 stored lists but
never used them as model text); ``include_lists`` keeps each item as sentences.

The 2017 code parsed rendered HTML of the live site; this module parses the
dump's wikitext instead (departure from 2017: the text is pinned to a revision,
and lead and section text are cleaned the same way).
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import mwparserfromhell
from mwparserfromhell.nodes import (
    Argument,
    Comment,
    ExternalLink,
    Heading,
    HTMLEntity,
    Tag,
    Template,
    Text,
    Wikilink,
)

from cmisc_model.schemas import make_pair_id, normalise_file_title
from cmisc_model.text.sentences import split_sentences

SOURCE = "simplewiki"
DEFAULT_BASE_URL = "https://simple.wikipedia.org/wiki/"
COMMONS_UPLOAD = "https://upload.wikimedia.org/wikipedia/commons/"
DEFAULT_FILE_NAMESPACES = ("File", "Image")

# Characters MediaWiki's wfUrlencode leaves unescaped in titles and file URLs.
_URL_SAFE = ";@$!*(),/~:"


DEFAULT_PROSE_TEMPLATES = {
    "convert": "convert", "cvt": "convert",
    "lang": "second", "lang-*": "first", "transl": "second", "transliteration": "second",
    "nowrap": "first", "nobr": "first", "nobreak": "first", "small": "first", "smaller": "first",
    "big": "first", "larger": "first", "abbr": "first", "sic": "first", "nihongo": "first",
    "formatnum": "first", "lc": "first", "uc": "first",
    "as of": "as of", "circa": "circa", "c.": "circa",
    "birth date": "date", "death date": "date", "birth date and age": "date",
    "death date and age": "date", "start date": "date", "end date": "date", "dts": "date",
    "frac": "frac", "fraction": "frac", "val": "val",
    "'s": "text:'s", "'": "text:'", "nbsp": "text: ", "ndash": "text:–", "mdash": "text:—",
    "snd": "text: – ", "spaced ndash": "text: – ", "us$": "prefix:US$",
}


@dataclass
class WikitextOptions:
    """The ``simplewiki`` section of params.yaml (defaults equal its values)."""

    # 2017 kept only framed thumbnails ("div.thumb" with a caption box); inline
    # images in running text (icons, flags, ``[[File:x.svg|20px]]``) are dropped.
    # Applies to ``[[File:…]]`` links in the text, not to the opt-in kinds below.
    thumbs_only: bool = True
    # 2017 also kept thumbnails whose caption box was empty; so do we by default.
    require_caption: bool = False
    include_gallery: bool = False  # <gallery> lines (2017: never matched)
    include_infobox: bool = False  # template parameters image=/caption= (2017: never matched)
    include_table_images: bool = False  # images inside wikitables (2017: never matched)
    # Departure from 2017 made optional (original_impl.md §11.8): a section
    # image may also see its subsections' text. Off = 2017 behaviour.
    subsection_text: bool = False
    include_lists: bool = False  # list items as sentences (2017: dropped)
    # A pair needs at least this many sentences of text (2017 downloaded a
    # section image only when its section had paragraph text).
    min_sentences: int = 1
    # 2017 accepted jpg, png, gif and svg (jpeg is the same format); audio,
    # video, pdf, djvu and tif were rejected.
    image_extensions: list[str] = field(
        default_factory=lambda: ["jpg", "jpeg", "png", "gif", "svg"]
    )
    # Templates that carry prose, rendered to their text instead of dropped
    # (``{{convert|12|km|mi}}`` -> "12 km"): template name (lower case; a
    # trailing ``*`` matches a prefix, as in ``lang-*``) -> rule. Rules:
    # ``first``/``second`` (that positional argument), ``convert``, ``as of``,
    # ``date``, ``circa``, ``frac``, ``val``, ``text:<literal>``,
    # ``prefix:<literal>`` (literal + first argument). Every other template is
    # dropped and counted (``templates_dropped`` in the summaries).
    prose_templates: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_PROSE_TEMPLATES))
    # Sections that are not article prose. Departure from 2017, which removed
    # only a last "References" section: the others are link lists or empty.
    drop_sections: list[str] = field(
        default_factory=lambda: [
            "References",
            "Notes",
            "Footnotes",
            "Sources",
            "Related pages",
            "See also",
            "Other websites",
            "External links",
            "Further reading",
        ]
    )


class WikitextError(ValueError):
    """The wikitext of one page could not be turned into pairs."""


# --------------------------------------------------------------------------- names and URLs


def commons_url(file_name: str) -> str:
    """Original-file URL on Wikimedia Commons (data_sources.md §3.3).

    Assumes the file lives on Commons, as almost every Simple English Wikipedia
    image does; a file uploaded to the wiki itself lives under
    ``/wikipedia/simple/`` instead, which only the API (``imagerepository``) tells.
    """
    name = normalise_file_title("File:" + file_name)
    h = hashlib.md5(name.encode("utf-8")).hexdigest()
    return f"{COMMONS_UPLOAD}{h[0]}/{h[:2]}/{quote(name, safe=_URL_SAFE)}"


def article_url(title: str, base_url: str = DEFAULT_BASE_URL) -> str:
    return base_url + quote(title.strip().replace(" ", "_"), safe=_URL_SAFE)


def file_namespace_regex(file_namespaces: Iterable[str]) -> re.Pattern:
    """``^\\s*(File|Image|…)\\s*:\\s*(name)`` — namespace names are case-insensitive
    and treat spaces and underscores alike, as MediaWiki does."""
    names = sorted({n.strip() for n in file_namespaces if n and n.strip()}, key=len, reverse=True)
    alts = "|".join(r"[ _]+".join(re.escape(w) for w in re.split(r"[ _]+", n)) for n in names)
    return re.compile(rf"^\s*(?:{alts})\s*:\s*(.+?)\s*$", re.IGNORECASE | re.DOTALL)


def image_markup_regex(file_namespaces: Iterable[str], options: WikitextOptions) -> re.Pattern:
    """A cheap test whether a page can hold an image at all (skips the parser)."""
    names = [n.strip() for n in file_namespaces if n and n.strip()]
    alts = "|".join(r"[ _]*".join(re.escape(w) for w in re.split(r"[ _]+", n)) for n in names)
    parts = [rf"\[\[\s*(?:{alts})\s*:"]
    if options.include_gallery:
        parts.append(r"<gallery")
    if options.include_infobox:
        parts.append(r"\|\s*(?:image|photo|img|picture)\w*\s*=")
    return re.compile("|".join(parts), re.IGNORECASE)


# --------------------------------------------------------------------------- plain text

_LIST = "\x1e"  # marks a list item at the start of a line in rendered text
_LIST_MARKUP = {"*", "#", ":", ";"}
# Tags whose content is never prose.
_DROP_TAGS = {
    "ref",
    "references",
    "gallery",
    "math",
    "chem",
    "ce",
    "score",
    "timeline",
    "imagemap",
    "syntaxhighlight",
    "source",
    "mapframe",
    "maplink",
    "graph",
    "templatestyles",
    "hiero",
    "inputbox",
    "categorytree",
    "table",
    "noinclude",
    "templatedata",
    "indicator",
    "section",
}
_INTERLANGUAGE = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]+)*\s*:", re.IGNORECASE)
_CATEGORY = re.compile(r"^\s*category\s*:", re.IGNORECASE)
_MEDIA = re.compile(r"^\s*media\s*:", re.IGNORECASE)
_STYLE_QUOTES = re.compile(r"'{2,}")
_MAGIC_WORDS = re.compile(r"__[A-Z]+__")
_EMPTY_BRACKETS = re.compile(r"\(\s*[,;:]?\s*\)")
_SPACE_BEFORE_PUNCT = re.compile(r"[ \t]+([,.;:!?])")


class _Context:
    def __init__(
        self,
        file_re: re.Pattern,
        category_re: re.Pattern = _CATEGORY,
        templates: dict[str, str] | None = None,
        stats: dict | None = None,
    ):
        self.file_re = file_re
        self.category_re = category_re
        self.templates = Templates(DEFAULT_PROSE_TEMPLATES if templates is None else templates, stats)


# --------------------------------------------------------------------------- prose templates

_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"]
_RANGE = {"-": "–", "–": "–", "to": " to ", "and": " and ", "or": " or ", "by": " by ", "x": " × ",
          "×": " × ", "+/-": " ± ", "±": " ± ", "to(-)": " to ", "and(-)": " and "}
# "in" spelt out: "56 in of rain" would read as a preposition.
_UNITS = {"in": "inches", "F": "°F", "C": "°C", "km2": "km²", "sqkm": "km²", "m2": "m²", "sqmi": "sq mi",
          "sqft": "sq ft", "acre": "acres", "USgal": "US gal", "impgal": "imp gal"}
_NAMED = re.compile(r"^\s*([^=\[\]{}|]+?)\s*=(.*)$", re.DOTALL)
_TEMPLATE_APOSTROPHE = "\x1f"  # an apostrophe from a template: not a style quote


def _month(value: str) -> str:
    v = value.strip()
    return _MONTHS[int(v) - 1] if v.isdigit() and 1 <= int(v) <= 12 else v


class Templates:
    """Renders the prose templates of ``WikitextOptions.prose_templates``;
    counts the rendered and the dropped ones in ``stats`` (when given)."""

    def __init__(self, rules: dict[str, str], stats: dict | None = None):
        self.exact = {_norm_name(k): v for k, v in rules.items() if not k.endswith("*")}
        self.prefixes = [(_norm_name(k[:-1]), v) for k, v in rules.items() if k.endswith("*")]
        self.stats = stats

    def rule(self, name: str) -> str | None:
        if name in self.exact:
            return self.exact[name]
        return next((v for k, v in self.prefixes if name.startswith(k)), None)

    def render(self, raw_name: str, args: list[str]) -> str | None:
        """The text of ``{{raw_name|args…}}``, or None (dropped)."""
        name = _norm_name(raw_name)
        if ":" in name and not name.startswith(":"):  # a parser function: {{formatnum:1234}}
            name = name.split(":", 1)[0]
            args = [raw_name.split(":", 1)[1], *args]
        pos: list[str] = []
        named: dict[str, str] = {}
        for a in args:
            m = _NAMED.match(a)
            if m:
                named[m.group(1).strip().lower()] = m.group(2).strip()
            else:
                pos.append(a.strip())
        rule = self.rule(name)
        text = _apply_rule(rule, pos, named) if rule else None
        if self.stats is not None:
            if text is None:
                self.stats["templates_dropped"] = self.stats.get("templates_dropped", 0) + 1
                by_name = self.stats.setdefault("templates_dropped_by_name", {})
                by_name[name] = by_name.get(name, 0) + 1
            else:
                self.stats["templates_rendered"] = self.stats.get("templates_rendered", 0) + 1
        return text


def _norm_name(name: str) -> str:
    return " ".join(name.replace("_", " ").split()).lower()


def _apply_rule(rule: str, pos: list[str], named: dict[str, str]) -> str | None:
    if rule.startswith("text:"):
        # An apostrophe next to bold quotes must not read as a style quote.
        return rule[5:].replace("'", _TEMPLATE_APOSTROPHE)
    if rule.startswith("prefix:"):
        return rule[7:] + (pos[0] if pos else "")
    if rule == "first":
        return pos[0] if pos else ""
    if rule == "second":
        return pos[1] if len(pos) > 1 else (pos[0] if pos else "")
    if rule == "convert" and len(pos) >= 2:
        if len(pos) >= 4 and pos[1].lower() in _RANGE:
            value, unit = f"{pos[0]}{_RANGE[pos[1].lower()]}{pos[2]}", pos[3]
        else:
            value, unit = pos[0], pos[1]
        return f"{value} {_UNITS.get(unit, unit)}"
    if rule == "as of" and pos:
        parts = [p for p in (pos[2] if len(pos) > 2 else "", _month(pos[1]) if len(pos) > 1 else "", pos[0]) if p]
        lead = "as of" if named.get("lc", "").lower() in ("y", "yes", "on") else "As of"
        return f"{lead} {' '.join(parts)}"
    if rule == "date" and pos:
        nums = [p for p in pos if p.isdigit()][:3]
        if len(nums) == 3:
            return f"{_month(nums[1])} {int(nums[2])}, {nums[0]}"
        if len(nums) == 2:
            return f"{_month(nums[1])} {nums[0]}"
        return pos[0]
    if rule == "circa" and pos:
        return f"c. {pos[0]}"
    if rule == "frac" and pos:
        if len(pos) == 1:
            return f"1/{pos[0]}"
        if len(pos) == 2:
            return f"{pos[0]}/{pos[1]}"
        return f"{pos[0]} {pos[1]}/{pos[2]}"
    if rule == "val" and pos:
        unit = named.get("u") or named.get("ul") or ""
        return f"{pos[0]} {unit}".strip()
    return None


def split_args(text: str) -> list[str]:
    """``a|[[b|c]]|d`` -> ``["a", "[[b|c]]", "d"]``: pipes inside links stay."""
    args, depth, start = [], 0, 0
    i = 0
    while i < len(text):
        two = text[i : i + 2]
        if two == "[[":
            depth += 1
            i += 2
            continue
        if two == "]]" and depth:
            depth -= 1
            i += 2
            continue
        if text[i] == "|" and not depth:
            args.append(text[start:i])
            start = i + 1
        i += 1
    args.append(text[start:])
    return args


def _template_source(node: Template, ctx: _Context) -> str | None:
    """Render a parsed template the way ``prestrip`` renders its text: inner
    templates first, so both paths give the same text."""
    args = []
    for param in node.params:
        value = "".join(_template_source(n, ctx) or "" if isinstance(n, Template) else str(n)
                        for n in param.value.nodes)
        args.append(f"{param.name}={value}" if param.showkey else value)
    name = "".join(_template_source(n, ctx) or "" if isinstance(n, Template) else str(n) for n in node.name.nodes)
    return ctx.templates.render(name, args)


def _render(nodes: Iterable, ctx: _Context, out: list[str]) -> None:
    """Append the reader-visible text of wikitext nodes to ``out``."""
    for node in nodes:
        if isinstance(node, Text):
            out.append(node.value)
        elif isinstance(node, Wikilink):
            _render_link(node, ctx, out)
        elif isinstance(node, Tag):
            _render_tag(node, ctx, out)
        elif isinstance(node, HTMLEntity):
            out.append(node.normalize())
        elif isinstance(node, ExternalLink):
            if node.brackets and node.title is not None:
                _render(node.title.nodes, ctx, out)
        elif isinstance(node, Heading):
            out.append("\n\n")
            _render(node.title.nodes, ctx, out)
            out.append("\n\n")
        elif isinstance(node, Template):
            text = _template_source(node, ctx)
            if text:
                _render(mwparserfromhell.parse(text, skip_style_tags=True).nodes, ctx, out)
        elif isinstance(node, (Comment, Argument)):
            continue
        else:
            out.append(str(node))


def _render_link(node: Wikilink, ctx: _Context, out: list[str]) -> None:
    title = str(node.title)
    stripped = title.strip()
    if stripped.startswith(":"):  # [[:File:x]] / [[:Category:y]]: a plain link
        if node.text is not None:
            _render(node.text.nodes, ctx, out)
        else:
            out.append(stripped[1:])
    elif ctx.file_re.match(stripped) or ctx.category_re.match(stripped):
        return  # embedded files are handled as images; categories are metadata
    elif node.text is None and _INTERLANGUAGE.match(stripped) and not _MEDIA.match(stripped):
        return  # [[fr:Art]]: an interlanguage link, not displayed
    elif node.text is not None:
        label: list[str] = []
        _render(node.text.nodes, ctx, label)
        if "".join(label).strip():
            out.extend(label)
        else:  # the label was only a template ([[X|{{nowrap|…}}]]): show the target
            out.append(html.unescape(stripped.split("#")[0]))
    else:
        out.append(html.unescape(stripped.lstrip("#")))  # [[OS&nbsp;X]] reads "OS X"


def _render_tag(node: Tag, ctx: _Context, out: list[str]) -> None:
    tag = str(node.tag).strip().lower()
    if node.wiki_markup in _LIST_MARKUP and tag in ("li", "dt", "dd"):
        out.append(_LIST)
    elif tag in _DROP_TAGS:
        return
    elif tag == "br":
        out.append(" ")
    elif tag == "hr":
        out.append("\n\n")
    elif tag in ("p", "div", "blockquote", "poem", "center"):
        out.append("\n\n")
        if node.contents is not None:
            _render(node.contents.nodes, ctx, out)
        out.append("\n\n")
    elif node.contents is not None:
        _render(node.contents.nodes, ctx, out)


def _tidy(text: str) -> str:
    text = _STYLE_QUOTES.sub("", text).replace(_TEMPLATE_APOSTROPHE, "'")
    text = _MAGIC_WORDS.sub("", text)
    text = text.replace("\xa0", " ")
    text = _EMPTY_BRACKETS.sub("", text)
    return _SPACE_BEFORE_PUNCT.sub(r"\1", text)


def plain_text(nodes: Iterable, ctx: _Context) -> str:
    """One line of plain text (captions, headings, alt text)."""
    out: list[str] = []
    _render(nodes, ctx, out)
    return " ".join(_tidy("".join(out)).replace(_LIST, " ").split())


def text_sentences(nodes: Iterable, ctx: _Context, include_lists: bool) -> list[str]:
    """Sentences of a run of nodes: paragraphs split on blank lines and list items."""
    out: list[str] = []
    _render(nodes, ctx, out)
    paragraphs: list[str] = []
    current: list[str] = []
    for line in _tidy("".join(out)).split("\n"):
        if line.startswith(_LIST):
            if current:
                paragraphs.append("\n".join(current))
                current = []
            if include_lists:
                item = line.lstrip(_LIST).strip()
                if item:
                    paragraphs.append(item)
        elif line.strip():
            current.append(line)
        elif current:
            paragraphs.append("\n".join(current))
            current = []
    if current:
        paragraphs.append("\n".join(current))
    sentences = []
    for p in paragraphs:
        sentences.extend(s for s in split_sentences(p) if any(c.isalnum() for c in s))
    return sentences


# --------------------------------------------------------------------------- images

_OPTION_WORDS = {
    "thumb",
    "thumbnail",
    "frame",
    "framed",
    "frameless",
    "border",
    "left",
    "right",
    "center",
    "centre",
    "none",
    "upright",
    "baseline",
    "sub",
    "super",
    "top",
    "text-top",
    "middle",
    "bottom",
    "text-bottom",
}
_OPTION_KEYS = {"link", "alt", "page", "class", "lang", "upright", "thumb", "thumbnail", "frame"}
_FRAMED = {"thumb", "thumbnail", "frame", "framed"}
_SIZE = re.compile(r"^\d*\s*(?:x\s*\d+\s*)?px$", re.IGNORECASE)
_KEY_VALUE = re.compile(r"^\s*([a-z]+)\s*=(.*)$", re.IGNORECASE | re.DOTALL)


@dataclass
class _Image:
    written: str  # the title as written, e.g. "File:Colorful spring garden.jpg"
    name: str  # without namespace
    caption: str
    alt: str | None
    framed: bool
    kind: str  # link | gallery | infobox | table


def _segments(nodes: Sequence) -> list[list]:
    """Split a link's text on the top-level ``|`` (mwparserfromhell does not)."""
    segs: list[list] = [[]]
    for node in nodes:
        # A free URL (``link=https://…``) swallows the following ``|option``s.
        value = node.value if isinstance(node, Text) else None
        if isinstance(node, ExternalLink) and not node.brackets and "|" in str(node):
            value = str(node)
        if value is not None and "|" in value:
            pieces = value.split("|")
            if pieces[0]:
                segs[-1].append(Text(pieces[0]))
            for piece in pieces[1:]:
                segs.append([Text(piece)] if piece else [])
        else:
            segs[-1].append(node)
    return segs


def _parse_options(segments: list[list], ctx: _Context) -> tuple[str, str | None, bool]:
    """(caption, alt, framed) from the ``|``-separated parts after the file name."""
    caption_nodes: list | None = None
    alt = None
    framed = False
    for seg in segments:
        raw = "".join(str(n) for n in seg).strip()
        low = raw.lower()
        if low in _OPTION_WORDS or _SIZE.match(low):
            framed |= low in _FRAMED
            continue
        if low.startswith("upright"):
            continue
        kv = _KEY_VALUE.match(raw)
        if kv and kv.group(1).lower() in _OPTION_KEYS:
            key = kv.group(1).lower()
            framed |= key in _FRAMED
            if key == "alt":
                alt = plain_text(
                    mwparserfromhell.parse(kv.group(2), skip_style_tags=True).nodes, ctx
                )
            continue
        caption_nodes = seg  # MediaWiki uses the last part that is not an option
    caption = plain_text(caption_nodes, ctx) if caption_nodes else ""
    return caption, alt, framed


def _link_image(link: Wikilink, name: str, ctx: _Context, kind: str) -> _Image:
    segs = _segments(link.text.nodes) if link.text is not None else []
    caption, alt, framed = _parse_options(segs, ctx)
    return _Image(str(link.title).strip(), name, caption, alt, framed, kind)


def _gallery_images(tag: Tag, ctx: _Context) -> list[_Image]:
    images = []
    for line in str(tag.contents or "").splitlines():
        line = line.strip()
        if not line:
            continue
        written, _, rest = line.partition("|")
        m = ctx.file_re.match(written)
        name = m.group(1) if m else written.strip()  # the File: prefix is optional here
        if "." not in name:
            continue
        segs = _segments(mwparserfromhell.parse(rest, skip_style_tags=True).nodes) if rest else []
        caption, alt, _ = _parse_options(segs, ctx)
        images.append(_Image(written.strip(), name, caption, alt, True, "gallery"))
    return images


_INFOBOX_IMAGE = re.compile(r"^(?:image|photo|img|picture)(\d*)$|^image_?name$")
_INFOBOX_CAPTION = re.compile(r"^(?:image_?)?caption(\d*)$|^image caption$")


def _infobox_images(template: Template, ctx: _Context) -> list[_Image]:
    """``| image = Name.jpg`` (or a whole ``[[File:…]]``) with ``| caption = …``."""
    captions: dict[str, str] = {}
    found: list[tuple[str, _Image]] = []
    for param in template.params:
        pname = str(param.name).strip().lower()
        cm = _INFOBOX_CAPTION.match(pname)
        if cm:
            captions[cm.group(1) or ""] = plain_text(param.value.nodes, ctx)
            continue
        im = _INFOBOX_IMAGE.match(pname)
        if not im:
            continue
        links = [n for n in param.value.nodes if isinstance(n, Wikilink)]
        fm = ctx.file_re.match(str(links[0].title)) if links else None
        if fm:
            found.append((im.group(1) or "", _link_image(links[0], fm.group(1), ctx, "infobox")))
            continue
        value = "".join(str(n) for n in param.value.nodes if isinstance(n, Text)).strip()
        fm = ctx.file_re.match(value)
        name = fm.group(1) if fm else value
        if name and "." in name:
            found.append((im.group(1) or "", _Image(value, name, "", None, True, "infobox")))
    for suffix, img in found:
        if not img.caption and suffix in captions:
            img.caption = captions[suffix]
    return [img for _, img in found]


def _find_images(
    nodes: Iterable, ctx: _Context, options: WikitextOptions, in_table=False
) -> list[_Image]:
    images: list[_Image] = []
    for node in nodes:
        if isinstance(node, Wikilink):
            m = ctx.file_re.match(str(node.title))
            if m and not str(node.title).strip().startswith(":"):
                images.append(_link_image(node, m.group(1), ctx, "table" if in_table else "link"))
        elif isinstance(node, Tag):
            tag = str(node.tag).strip().lower()
            if tag == "gallery":
                if options.include_gallery:
                    images.extend(_gallery_images(node, ctx))
            elif tag == "table":
                if options.include_table_images and node.contents is not None:
                    images.extend(_find_images(node.contents.nodes, ctx, options, True))
            elif tag in _DROP_TAGS:
                continue
            elif node.contents is not None:
                images.extend(_find_images(node.contents.nodes, ctx, options, in_table))
        elif isinstance(node, Template) and options.include_infobox:
            images.extend(_infobox_images(node, ctx))
    return images


def _keep(img: _Image, options: WikitextOptions) -> bool:
    ext = img.name.rsplit(".", 1)[-1].lower() if "." in img.name else ""
    if ext not in {e.lower().lstrip(".") for e in options.image_extensions}:
        return False  # audio, video, pdf, djvu…: not an image
    if options.thumbs_only and img.kind == "link" and not img.framed:
        return False
    return not (options.require_caption and not img.caption)


# --------------------------------------------------------------------------- pre-stripping

_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_REF_SELF = re.compile(r"<ref(?:\s[^<>]*)?/>", re.IGNORECASE)
# <ref …>…</ref>, never across another <ref (an unclosed ref is left to the parser).
_REF = re.compile(r"<ref(?:\s[^<>]*)?>[^<]*(?:<(?!/?ref[\s>/])[^<]*)*</ref\s*>", re.IGNORECASE)
_INNER_TEMPLATE = re.compile(r"\{\{(?!\{)[^{}]*\}\}")


def _strip_tables(text: str) -> str:
    """Drop ``{| … |}`` tables (line-based, nested); an unclosed one is left as is."""
    if "{|" not in text:
        return text
    out: list[str] = []
    depth = 0
    for line in text.split("\n"):
        s = line.lstrip()
        if s.startswith("{|"):
            depth += 1
        elif depth:
            if s.startswith("|}"):
                depth -= 1
        else:
            out.append(line)
    return text if depth else "\n".join(out)


# A link with no markup inside: [[target]] or [[target|label]] (a pipe in the
# label, nesting, templates or tags are left to the parser).
_PLAIN_LINK = re.compile(r"\[\[([^\[\]{}|<>\n]+)(?:\|([^\[\]{}|<>\n]*))?\]\]")
_LINE_MARKUP = tuple("*#:;=-{|! \t")


def _flatten_links(text: str, ctx: _Context) -> str:
    """Replace plain article links by the text ``_render`` would give them.

    Simple English pages hold hundreds of links each (dates, common words),
    and building their nodes is most of mwparserfromhell's time. Files,
    categories, interlanguage and ``[[:x]]`` links stay for the parser, as
    does any text that could read as markup once it stands alone.
    """
    if "<nowiki" in text or "<pre" in text:  # links shown literally there
        return text

    def flat(m: re.Match) -> str:
        target, label = m.group(1), m.group(2)
        stripped = target.strip()
        if stripped.startswith(":") or ctx.file_re.match(stripped) or ctx.category_re.match(stripped):
            return m.group(0)
        if label is None:
            if _INTERLANGUAGE.match(stripped) and not _MEDIA.match(stripped):
                return m.group(0)
            shown = stripped.lstrip("#")
        else:
            shown = label if label.strip() else stripped.split("#")[0]
        if not shown or shown.startswith(_LINE_MARKUP) or "://" in shown or "~~~" in shown:
            return m.group(0)
        return shown

    return _PLAIN_LINK.sub(flat, text)


def prestrip(
    wikitext: str,
    keep_templates: bool,
    keep_tables: bool = True,
    templates: Templates | None = None,
    ctx: _Context | None = None,
    keep_lists: bool = True,
) -> str:
    """Remove, before parsing, markup whose content is discarded anyway.

    mwparserfromhell's tree builder is pure Python and spends most of its time
    on references and templates (citation templates, infoboxes), which the
    text cleaner drops. Comments, ``<ref>`` elements and — unless infobox
    images are wanted — templates are cut here with regular expressions,
    innermost templates first; anything irregular (a stray brace, an unclosed
    ref) is left in place for the parser, so the result is the same, faster.
    Prose templates (``templates``) are replaced by their text, the others
    by nothing.
    Tables go too when their images are not wanted (their text never is).
    With ``ctx``, plain article links become their text (``_flatten_links``);
    without ``keep_lists``, list lines holding only text are emptied (their
    text is dropped anyway; a line with an image stays).
    """
    text = _COMMENT.sub("", wikitext)
    text = _REF_SELF.sub("", text)
    text = _REF.sub("", text)
    if not keep_templates:
        def render(m: re.Match) -> str:
            if templates is None:
                return ""
            name, *args = split_args(m.group(0)[2:-2])
            return templates.render(name, args) or ""

        for _ in range(8):  # nesting depth; deeper leftovers go to the parser
            text, n = _INNER_TEMPLATE.subn(render, text)
            if not n:
                break
        if not keep_tables:  # only once templates are gone: a table inside one stays whole
            text = _strip_tables(text)
    if ctx is not None:
        text = _flatten_links(text, ctx)
    if not keep_lists and "{{" not in text:  # a template left may span list lines: keep them whole
        text = _LIST_LINE.sub("", text)
    return text


# A list line with nothing but text left (no file link, template or tag):
# emptied, not deleted, so that it still ends the paragraph before it.
_LIST_LINE = re.compile(r"(?m)^[*#:;][^\n\[{<]*$")


# --------------------------------------------------------------------------- sections


@dataclass
class Section:
    path: list[str]  # [] for the lead
    sentences: list[str]
    images: list[_Image]
    dropped: bool = False


def split_sections(
    wikitext: str, title: str, ctx: _Context, options: WikitextOptions
) -> list[Section]:
    """Lead + sections in reading order, each with its own sentences and images."""
    text = prestrip(
        wikitext, keep_templates=options.include_infobox, keep_tables=options.include_table_images,
        templates=ctx.templates, ctx=ctx, keep_lists=options.include_lists,
    )
    code = mwparserfromhell.parse(text, skip_style_tags=True)
    groups: list[tuple[list[str], list]] = [([], [])]
    stack: list[tuple[int, str]] = []
    for node in code.nodes:
        if isinstance(node, Heading):
            heading = plain_text(node.title.nodes, ctx)
            while stack and stack[-1][0] >= node.level:
                stack.pop()
            stack.append((node.level, heading))
            groups.append(([h for _, h in stack], []))
        else:
            groups[-1][1].append(node)
    drop = {d.strip().lower() for d in options.drop_sections}
    sections = []
    for path, nodes in groups:
        dropped = any(h.lower() in drop for h in path)
        if dropped:
            sections.append(Section(path, [], [], True))
            continue
        sentences = text_sentences(nodes, ctx, options.include_lists)
        images = [img for img in _find_images(nodes, ctx, options) if _keep(img, options)]
        sections.append(Section(path, sentences, images))
    return sections


def _block(titles: list[str], sentences: list[str]) -> dict:
    return {"titles": list(titles), "sentences": list(sentences)}


# --------------------------------------------------------------------------- pairs


def page_pairs(
    title: str,
    page_id: int | str,
    wikitext: str,
    *,
    revision_id: int | None = None,
    revision_timestamp: str | None = None,
    base_url: str = DEFAULT_BASE_URL,
    dump_date: str | None = None,
    options: WikitextOptions | None = None,
    file_namespaces: Sequence[str] = DEFAULT_FILE_NAMESPACES,
    source: str = SOURCE,
    stats: dict | None = None,
) -> list[dict]:
    """PAIRS rows (dicts with every column) for one article's wikitext.

    ``source`` is the wiki's database name (a dump's ``<siteinfo><dbname>``).
    ``stats`` (a dict, updated in place) counts what is left out:
    ``templates_dropped`` (and ``templates_dropped_by_name``),
    ``templates_rendered``, ``images_without_text`` (images in a section
    without prose of its own, which make no pair).

    Raises ``WikitextError`` (naming the page) when the wikitext cannot be parsed;
    ``dump_to_pairs`` turns that into a skipped page, never a stopped run.
    """
    options = options or WikitextOptions()
    if not isinstance(wikitext, str):
        raise WikitextError(
            f"page {title!r} (id {page_id}): wikitext is {type(wikitext).__name__}, not text"
        )
    ctx = _Context(
        file_namespace_regex(list(file_namespaces) + list(DEFAULT_FILE_NAMESPACES)),
        templates=options.prose_templates,
        stats=stats,
    )
    try:
        sections = split_sections(wikitext, title, ctx, options)
    except RecursionError as e:
        raise WikitextError(f"page {title!r} (id {page_id}): wikitext nested too deeply") from e
    except Exception as e:  # mwparserfromhell's ParserError and its internal bugs
        raise WikitextError(f"page {title!r} (id {page_id}): {type(e).__name__}: {e}") from e

    return pairs_from_sections(
        title, page_id, sections, options,
        image_ref=lambda img, key: (img.written, commons_url(img.name)),
        revision_id=revision_id, revision_timestamp=revision_timestamp, base_url=base_url, dump_date=dump_date,
        source=source, stats=stats,
    )


# MediaWiki never allows these in a file name ($wgIllegalFileChars and title
# rules): a title with them ("../../etc/passwd.jpg") is not a real file.
_UNSAFE_FILE_NAME = re.compile(r"[/\\:<>\[\]{}|#\x00-\x1f\x7f]|^\.|^\s*$")


def unsafe_file_name(name: str) -> str | None:
    """Why an image file name cannot be a wiki file (and must not reach a path), or None."""
    if _UNSAFE_FILE_NAME.search(name.strip()):
        return "unsafe-file-name"
    return None


def _section_blocks(i: int, sections: Sequence, whole: list[dict], options: WikitextOptions) -> list[dict]:
    """The text an image of section ``i`` gets: the whole article for the lead,
    else its section's text (and its subsections' with ``subsection_text``)."""
    if i == 0:
        return whole
    sec = sections[i]
    blocks = [_block(sec.path, sec.sentences)] if sec.sentences else []
    if options.subsection_text:
        depth = len(sec.path)
        for sub in sections[i + 1 :]:
            if len(sub.path) <= depth or sub.path[:depth] != sec.path:
                break
            if sub.sentences and not sub.dropped:
                blocks.append(_block(sub.path, sub.sentences))
    return blocks


@dataclass
class _PageRows:
    """What every pairs row of one page shares; ``row`` builds one row."""

    title: str
    doc_id: str
    url: str
    image_ref: Callable[[Any, str], tuple[str, str]]
    revision_id: int | None
    revision_timestamp: str | None
    dump_date: str | None
    source: str

    def row(self, img: Any, key: str, image_key: str, i: int, sec: Any, blocks: list[dict]) -> dict:
        unsafe = unsafe_file_name(img.name)
        if unsafe:  # kept with its reason; never looked up or fetched
            image_title, image_url = getattr(img, "written", img.name), None
        else:
            image_title, image_url = self.image_ref(img, key)
        return {
            "pair_id": make_pair_id(self.source, self.doc_id, image_key),
            "source": self.source,
            "doc_id": self.doc_id,
            "doc_title": self.title,
            "revision_id": self.revision_id,
            "revision_timestamp": self.revision_timestamp,
            "url": self.url,
            "position": "lead" if i == 0 else "section",
            "section_path": list(sec.path),
            "text_blocks": [dict(b) for b in blocks],
            "caption": img.caption,
            "alt": img.alt,
            "image_title": image_title,
            "image_url": image_url,
            "image_sha256": None,
            "image_path": None,
            "image_width": None,
            "image_height": None,
            "image_format": None,
            "image_status": f"rejected:{unsafe}" if unsafe else "missing",  # the image step fills it
            "licence": None,
            "attribution": None,
            "retrieved_at": None,
            "dump_date": self.dump_date,
        }


def pairs_from_sections(
    title: str,
    page_id: int | str,
    sections: Sequence,
    options: WikitextOptions,
    *,
    image_ref: Callable[[Any, str], tuple[str, str]],
    keep: Callable[[Any], bool] = lambda img: True,
    revision_id: int | None = None,
    revision_timestamp: str | None = None,
    base_url: str = DEFAULT_BASE_URL,
    dump_date: str | None = None,
    source: str = SOURCE,
    stats: dict | None = None,
) -> list[dict]:
    """The pairing rule (paper §4.3), shared by the wikitext and the HTML extractor.

    ``sections`` (lead first) have ``path``, ``sentences``, ``dropped`` and
    ``images``; ``image_ref(img, key)`` gives (image title as written, URL).
    A lead image gets the whole article (every section with text, in reading
    order); a section image gets its section's text (and its subsections' with
    ``options.subsection_text``). A file used twice on a page gets ``#2``.
    """
    page = _PageRows(
        title, str(page_id), article_url(title, base_url), image_ref,
        revision_id, revision_timestamp, dump_date, source,
    )
    # The whole article, for lead images: sections with text, in reading order.
    whole = [
        _block([title] if i == 0 else sec.path, sec.sentences)
        for i, sec in enumerate(sections)
        if sec.sentences and not sec.dropped
    ]
    rows: list[dict] = []
    uses: dict[str, int] = {}
    for i, sec in enumerate(sections):
        images = [img for img in sec.images if keep(img)]
        if not images:
            continue
        blocks = _section_blocks(i, sections, whole, options)
        if sum(len(b["sentences"]) for b in blocks) < max(options.min_sentences, 0):
            if stats is not None:  # no prose of its own: no pair, but counted
                stats["images_without_text"] = stats.get("images_without_text", 0) + len(images)
            continue
        for img in images:
            key = normalise_file_title("File:" + img.name)
            uses[key] = uses.get(key, 0) + 1
            image_key = key if uses[key] == 1 else f"{key}#{uses[key]}"
            rows.append(page.row(img, key, image_key, i, sec, blocks))
    return rows


def options_dict(options: WikitextOptions) -> dict:
    return dataclasses.asdict(options)


STAT_KEYS = ("templates_rendered", "templates_dropped", "images_without_text")


def merge_stats(into: dict, stats: dict) -> dict:
    """Add the counts of ``stats`` (from ``page_pairs``) to ``into``."""
    for k in STAT_KEYS:
        into[k] = into.get(k, 0) + stats.get(k, 0)
    by_name = into.setdefault("templates_dropped_by_name", {})
    for k, v in stats.get("templates_dropped_by_name", {}).items():
        by_name[k] = by_name.get(k, 0) + v
    return into


def stats_summary(stats: dict, top: int = 20) -> dict:
    """The counts for a summary: totals plus the most often dropped templates
    (the ones worth adding to ``simplewiki.prose_templates`` if they carry prose)."""
    by_name = stats.get("templates_dropped_by_name", {})
    return {
        **{k: stats.get(k, 0) for k in STAT_KEYS},
        "templates_dropped_top": dict(sorted(by_name.items(), key=lambda kv: (-kv[1], kv[0]))[:top]),
    }
