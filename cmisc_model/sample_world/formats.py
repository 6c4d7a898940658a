"""Writers of the real on-disk formats the sample world is stored in.

A MediaWiki XML export (``page_xml``, ``dump_xml``) with its images laid out
like upload.wikimedia.org (``commons_path``), the BBC story HTML of Feng &
Lapata's folder (``story_html``), the COCO captions json (``coco_image``,
``coco_json``), and the JSON-lines files beside them (``jsonl``).
"""

from __future__ import annotations

import hashlib
import html
import json
from pathlib import Path

import numpy as np

from cmisc_model.sample_world.texts import Story
from cmisc_model.schemas import normalise_file_title


def write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def jsonl(rows: list[dict]) -> bytes:
    """One json object a line, keys sorted."""
    return "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows).encode()


# =========================================================================== MediaWiki


def _sha1_base36(text: str) -> str:
    n = int(hashlib.sha1(text.encode("utf-8")).hexdigest(), 16)
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out.rjust(31, "0")


def _esc(s: str) -> str:
    return html.escape(s, quote=True).replace("&#x27;", "'")


NAMESPACES = [
    (-2, "Media"),
    (-1, "Special"),
    (0, ""),
    (1, "Talk"),
    (2, "User"),
    (3, "User talk"),
    (4, "Wikipedia"),
    (5, "Wikipedia talk"),
    (6, "File"),
    (7, "File talk"),
    (8, "MediaWiki"),
    (9, "MediaWiki talk"),
    (10, "Template"),
    (11, "Template talk"),
    (12, "Help"),
    (13, "Help talk"),
    (14, "Category"),
    (15, "Category talk"),
    (828, "Module"),
    (829, "Module talk"),
]


def page_xml(
    title: str,
    ns: int,
    page_id: int,
    rev_id: int,
    parent_id: int,
    timestamp: str,
    user: str,
    user_id: int,
    comment: str,
    text: str,
    redirect: str | None = None,
) -> str:
    parts = [
        "  <page>",
        f"    <title>{_esc(title)}</title>",
        f"    <ns>{ns}</ns>",
        f"    <id>{page_id}</id>",
    ]
    if redirect:
        parts.append(f'    <redirect title="{_esc(redirect)}" />')
    parts += [
        "    <revision>",
        f"      <id>{rev_id}</id>",
        f"      <parentid>{parent_id}</parentid>",
        f"      <timestamp>{timestamp}</timestamp>",
        "      <contributor>",
        f"        <username>{_esc(user)}</username>",
        f"        <id>{user_id}</id>",
        "      </contributor>",
        f"      <comment>{_esc(comment)}</comment>",
        "      <model>wikitext</model>",
        "      <format>text/x-wiki</format>",
        f'      <text bytes="{len(text.encode("utf-8"))}" xml:space="preserve">{_esc(text)}</text>',
        f"      <sha1>{_sha1_base36(text)}</sha1>",
        "    </revision>",
        "  </page>",
    ]
    return "\n".join(parts)


def dump_xml(pages: list[str]) -> str:
    head = [
        (
            '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            'xsi:schemaLocation="http://www.mediawiki.org/xml/export-0.10/ '
            'http://www.mediawiki.org/xml/export-0.10.xsd" version="0.10" xml:lang="en">'
        ),
        "  <siteinfo>",
        "    <sitename>Wikipedia</sitename>",
        "    <dbname>simplewiki</dbname>",
        "    <base>https://simple.wikipedia.org/wiki/Main_Page</base>",
        "    <generator>MediaWiki 1.34.0-wmf.17 (cmisc sample world)</generator>",
        "    <case>first-letter</case>",
        "    <namespaces>",
    ]
    for key, name in NAMESPACES:
        if name:
            head.append(f'      <namespace key="{key}" case="first-letter">{name}</namespace>')
        else:
            head.append(f'      <namespace key="{key}" case="first-letter" />')
    head += ["    </namespaces>", "  </siteinfo>"]
    return "\n".join(head + pages + ["</mediawiki>"]) + "\n"


def commons_path(root: Path, file_name: str) -> Path:
    """``root/{h[0]}/{h[0:2]}/{name}``, h = md5 of the normalised name (upload.wikimedia.org)."""
    name = normalise_file_title(file_name)
    h = hashlib.md5(name.encode("utf-8")).hexdigest()
    return root / h[0] / h[:2] / name


def seeded_timestamp(rng: np.random.Generator) -> str:
    # Fixed, seed-derived times in 2019 (never the clock).
    secs = int(rng.integers(0, 365 * 86400))
    d, s = divmod(secs, 86400)
    month_days = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    m = 0
    while d >= month_days[m]:
        d -= month_days[m]
        m += 1
    return f"2019-{m + 1:02d}-{d + 1:02d}T{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}Z"


# =========================================================================== BBC


def story_html(story: Story) -> bytes:
    """Flat body of <b> and <p> children, ISO-8859-1 (as the 2017 Java reader expects)."""
    out = ["<html>", "<body>"]
    if len(story.headline) == 1:
        out.append(f"<b>{html.escape(story.headline[0], quote=False)}</b>")
    else:
        # A multi-line heading: a <p> whose children are <b> lines (the 2017 parser dropped it).
        out.append(
            "<p>"
            + "\n".join(f"<b>{html.escape(h, quote=False)}</b>" for h in story.headline)
            + "</p>"
        )
    for sub, paras in story.blocks:
        if sub:
            out.append(f"<b>{html.escape(sub, quote=False)}</b>")
        for p in paras:
            out.append(f"<p>{html.escape(' '.join(p), quote=False)}</p>")
    out += ["</body>", "</html>", ""]
    return "\n".join(out).encode("iso-8859-1")


# =========================================================================== COCO

COCO_LICENSES = [
    {
        "url": "http://creativecommons.org/licenses/by-nc-sa/2.0/",
        "id": 1,
        "name": "Attribution-NonCommercial-ShareAlike License",
    },
    {
        "url": "http://creativecommons.org/licenses/by-nc/2.0/",
        "id": 2,
        "name": "Attribution-NonCommercial License",
    },
    {
        "url": "http://creativecommons.org/licenses/by-nc-nd/2.0/",
        "id": 3,
        "name": "Attribution-NonCommercial-NoDerivs License",
    },
    {"url": "http://creativecommons.org/licenses/by/2.0/", "id": 4, "name": "Attribution License"},
    {
        "url": "http://creativecommons.org/licenses/by-sa/2.0/",
        "id": 5,
        "name": "Attribution-ShareAlike License",
    },
    {
        "url": "http://creativecommons.org/licenses/by-nd/2.0/",
        "id": 6,
        "name": "Attribution-NoDerivs License",
    },
    {"url": "http://flickr.com/commons/usage/", "id": 7, "name": "No known copyright restrictions"},
    {"url": "http://www.usa.gov/copyright.shtml", "id": 8, "name": "United States Government Work"},
]


def coco_image(rng: np.random.Generator, image_id: int, file_name: str, px: int) -> dict:
    """An entry of the ``images`` list, with seed-derived licence, date and Flickr URL."""
    # Drawn in the order of the fields.
    licence = int(rng.integers(1, 9))
    captured = seeded_timestamp(rng).replace("2019-", "2013-").replace("T", " ").rstrip("Z")
    farm = int(rng.integers(1, 10))
    server = int(rng.integers(1000, 9999))
    return {
        "license": licence,
        "file_name": file_name,
        "coco_url": f"http://images.cocodataset.org/train2017/{file_name}",
        "height": px,
        "width": px,
        "date_captured": captured,
        "flickr_url": f"http://farm{farm}.staticflickr.com/{server}/{image_id}_sample_z.jpg",
        "id": image_id,
    }


def coco_json(images: list[dict], annotations: list[dict]) -> bytes:
    """The captions file in the official COCO schema."""
    coco = {
        "info": {
            "description": "COCO 2017 Dataset (cmisc sample world)",
            "url": "http://cocodataset.org",
            "version": "1.0",
            "year": 2017,
            "contributor": "COCO Consortium",
            "date_created": "2017/09/01",
        },
        "licenses": COCO_LICENSES,
        "images": images,
        "annotations": annotations,
    }
    return json.dumps(coco).encode("utf-8")
