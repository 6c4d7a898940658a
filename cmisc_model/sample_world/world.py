"""The sample world: a generated corpus in the real on-disk formats.

``cmisc sample --out DIR --seed N --size tiny|small|default`` writes, the same
bytes for the same seed:

``simplewiki/simplewiki-sample-pages-articles.xml.bz2``
    A MediaWiki XML export (schema 0.10) of encyclopedia-style articles: lead,
    nested sections, ``[[File:…|thumb|caption]]`` in lead and sections
    (captions with nested links, some ``alt=``, some ``[[Image:…]]``),
    references, templates, a redirect, and pages outside the article namespace
    (``Wikipedia:``, ``Template:``, ``File:``). The first article is a
    showcase of what parsers must skip by default: an infobox ``image=``, a
    ``<gallery>``, a wikitable with an image, a list, and a second use of the
    same file; its pairs are never labelled.
``simplewiki/images/commons/{h[0]}/{h[0:2]}/{name}``
    The image files, laid out like upload.wikimedia.org (h = md5 of the
    normalised file name), so one resolver serves real and sample images.
``bbc/data_train/NAME.{html,jpg,txt}``, ``bbc/data_test/…``
    Feng & Lapata's layout: flat ``<b>``/``<p>`` HTML encoded ISO-8859-1
    (with £ and é; some stories start with a multi-line heading, a ``<p>`` of
    ``<b>`` lines), the image, and a one-line caption (UTF-8, no final stop).
    News-style text with British spellings and proper nouns that must not
    change (Labour Party, Ministry of Defence, World Trade Centre).
``coco/annotations/captions_train2017.json``, ``coco/train2017/{id:012d}.jpg``
    The official COCO captions schema, five noisy captions per image.
``annotations.jsonl``
    CMI/SC labels (project schema) for a labelled subset of the Wikipedia and
    BBC pairs. COCO's labelled subset (CMI 1, SC 1, paper §4.4) is made by the
    coco stage, so it is not here.
``scenes.jsonl``, ``manifest.json``
    What every image shows; counts, seed, size and the label distribution.

How labels follow from the construction
---------------------------------------
Every image is a rendered scene (``cmisc_model.sample_world.scenes``: shapes, colours,
sizes, grid positions). A text mentions some depicted objects, correctly or
with a wrong colour or shape, mentions objects at empty positions ("absent"),
and otherwise says non-visual things. The labels are computed by
``scenes.label_sentences`` from the very sentences the pair carries, with the
rules documented there, in short:

* no shared concept (no depicted object mentioned) → CMI 0 and SC 0;
* caption-like text (every sentence describes the image, every object is
  described) → CMI 1; otherwise CMI 0.25 + 0.25·[all objects mentioned]
  + 0.25·[at least half of the sentences describe the image];
* the salient (largest) object contradicted → SC −1 when everything said about
  the scene is wrong, −0.5 otherwise; the salient object correct → SC 1, or
  0.5 when a smaller object is contradicted; the salient object not mentioned
  → SC 0.5 when the rest is correct, 0 when a smaller object is contradicted.

Which text a pair carries follows the parsers' default pairing rule (paper
§4.3): a lead image gets the whole article (lead and every section), a section
image gets its own section's sentences (not its subsections), a BBC image its
story. Headings, captions, references, templates, galleries, tables and lists
are not text. Mentions in a section never fall on an occupied position of the
lead's scene, so a lead pair's label depends on the lead's mentions only.

The generator first decides each pair's (CMI, SC) cell, then writes a text
that the rules label with that cell, and checks that they do. Labelled cells
are allocated exactly, scaled from the per-source tables below, which split
the paper's Tables 1 and 2 (826 labels, 100 of them COCO at CMI 1, SC 1) into
a news part (mean SC 0.16; paper 0.15) and a SimpleWiki part (mean SC 0.87;
paper 0.88) in the paper's proportion 205 : 521. Unlabelled pairs draw their
cell from the same table.

Departure from 2017: the labels are rules over a generated world, not one
author's judgement of real pairs; the real sources replace this module by a
parameter switch.
"""

from __future__ import annotations

import argparse
import bz2
import hashlib
import html
import json
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cmisc_model.config import BaseConfig, ParamsError, from_mapping, load_params
from cmisc_model.errors import CmiscError
from cmisc_model.sample_world import scenes as sc_mod
from cmisc_model.sample_world.scenes import POSITION_PHRASES, Scene, label_sentences, random_scene
from cmisc_model.schemas import ANNOTATIONS, from_rows, make_pair_id, normalise_file_title
from cmisc_model.text.sentences import split_sentences

SIZE_KEYS = ("wiki_articles", "bbc_stories", "coco_images", "labelled")


def _default_sizes() -> dict[str, dict[str, int]]:
    return {
        "tiny": {"wiki_articles": 8, "bbc_stories": 12, "coco_images": 12, "labelled": 20},
        "small": {"wiki_articles": 40, "bbc_stories": 80, "coco_images": 60, "labelled": 150},
        "default": {"wiki_articles": 220, "bbc_stories": 650, "coco_images": 320, "labelled": 726},
    }


@dataclass
class SampleConfig:
    """The ``sample`` section of params.yaml."""

    size: str = "default"
    out: str = "data/sample_world"
    image_px: int = 160
    # labelled = Wikipedia + BBC pairs with labels; the coco stage adds its own
    # 100 (paper: 726 + 100 = 826).
    sizes: dict = field(default_factory=_default_sizes)


def check_config(cfg: SampleConfig, size: str) -> dict[str, int]:
    """The counts for ``size``; a bad value is a ParamsError naming its key."""
    if (
        not isinstance(cfg.image_px, int)
        or isinstance(cfg.image_px, bool)
        or not 32 <= cfg.image_px <= 1024
    ):
        raise ParamsError(f"sample.image_px: {cfg.image_px!r} is not an integer in [32, 1024]")
    if size not in cfg.sizes:
        raise ParamsError(f"sample.size: {size!r} is not one of {sorted(cfg.sizes)}")
    counts = cfg.sizes[size]
    if not isinstance(counts, dict):
        raise ParamsError(f"sample.sizes.{size}: expected a mapping of {', '.join(SIZE_KEYS)}")
    for key in counts:
        if key not in SIZE_KEYS:
            raise ParamsError(
                f"sample.sizes.{size}.{key}: unknown key (known: {', '.join(SIZE_KEYS)})"
            )
    minimum = {"wiki_articles": 2, "bbc_stories": 2, "coco_images": 1, "labelled": 0}
    for key in SIZE_KEYS:
        v = counts.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or v < minimum[key]:
            raise ParamsError(
                f"sample.sizes.{size}.{key}: {v!r} is not an integer >= {minimum[key]}"
            )
    return dict(counts)


# =========================================================================== label tables
# Joint (SC, CMI) counts per source; rows SC -1, -.5, 0, .5, 1; columns CMI 0, .25, .5, .75, 1.
# Their sums reproduce the paper's Tables 1 and 2 once COCO's 100 (1, 1) are added.
CMI_VALUES = (0.0, 0.25, 0.5, 0.75, 1.0)
SC_VALUES = (-1.0, -0.5, 0.0, 0.5, 1.0)
TABLES = {
    "bbc": [  # 205 labels, mean SC 0.16
        [0, 3, 3, 0, 0],
        [0, 12, 13, 0, 0],
        [38, 35, 22, 0, 0],
        [0, 15, 36, 3, 0],
        [0, 5, 18, 1, 1],
    ],
    "simplewiki": [  # 521 labels, mean SC 0.87
        [0, 0, 1, 0, 0],
        [0, 2, 4, 0, 0],
        [6, 5, 3, 0, 0],
        [0, 30, 50, 4, 0],
        [0, 50, 316, 44, 6],
    ],
}
BBC_SHARE = 205 / 726  # the paper's 205 BBC of 761 annotations; the rest SimpleWiki


def _cells(table: list[list[int]]) -> list[tuple[tuple[float, float], int]]:
    return [
        ((CMI_VALUES[j], SC_VALUES[i]), table[i][j])
        for i in range(5)
        for j in range(5)
        if table[i][j]
    ]


def allocate_cells(
    table: list[list[int]], n: int, rng: np.random.Generator
) -> list[tuple[float, float]]:
    """``n`` (cmi, sc) cells in the table's proportions (largest remainder), shuffled."""
    cells = _cells(table)
    total = sum(c for _, c in cells)
    quotas = [n * c / total for _, c in cells]
    counts = [int(q) for q in quotas]
    order = sorted(range(len(cells)), key=lambda k: (-(quotas[k] - counts[k]), k))
    for k in order[: n - sum(counts)]:
        counts[k] += 1
    out = [cell for (cell, _), k in zip(cells, counts) for _ in range(k)]
    return [out[i] for i in rng.permutation(len(out))]


def lead_can_have(cell: tuple[float, float]) -> bool:
    """A lead image carries the whole article, so its focus is low: CMI .75 and 1
    are out, and CMI .5 needs every object mentioned, which rules out SC 0."""
    cmi, sc = cell
    return cmi <= 0.25 or (cmi == 0.5 and sc != 0)


def draw_cell(
    table: list[list[int]], rng: np.random.Generator, lead: bool = False
) -> tuple[float, float]:
    cells = [(cell, c) for cell, c in _cells(table) if not lead or lead_can_have(cell)]
    p = np.array([c for _, c in cells], dtype=float)
    return cells[int(rng.choice(len(cells), p=p / p.sum()))][0]


# =========================================================================== mention plans

N_OBJECTS_P = (0.3, 0.35, 0.2, 0.15)  # 1..4 objects


@dataclass
class Plan:
    """How a text relates to its scene: per object (salient first) None, 'ok' or 'bad';
    and the focus class: none | low (f < 1/2) | mid (1/2 <= f < 1) | all (f = 1)."""

    n: int
    verdicts: list
    focus: str


def make_plan(
    rng: np.random.Generator, cell: tuple[float, float], lead: bool, max_n: int = 4
) -> Plan:
    """A plan whose text the label rules give ``cell`` (cmi, sc)."""
    cmi, sc = cell
    n_draw = 1 + int(rng.choice(4, p=N_OBJECTS_P))
    if cmi == 0:
        return Plan(min(n_draw, max_n), [None] * min(n_draw, max_n), "none")
    options = {0.25: [("partial", "low")], 0.75: [("full", "mid")], 1.0: [("full", "all")]}.get(
        cmi, [("full", "low")] if lead else [("full", "low"), ("partial", "mid")]
    )
    if sc == 0:
        options = [o for o in options if o[0] == "partial"]
    if not options:
        raise ValueError(f"no text has labels cmi={cmi}, sc={sc}")
    coverage, focus = options[int(rng.integers(len(options)))]
    r = lambda: bool(rng.random() < 0.5)
    if coverage == "full":
        n_min = 2 if sc in (-0.5, 0.5) else 1
        n = min(max(n_min, n_draw), max_n)
        others = n - 1
        if sc == -1:
            v = ["bad"] * n
        elif sc == 1:
            v = ["ok"] * n
        elif sc == -0.5:
            v = ["bad"] + ["ok"] + [("ok" if r() else "bad") for _ in range(others - 1)]
        else:  # 0.5: salient right, a smaller object wrong
            v = ["ok"] + ["bad"] + [("ok" if r() else "bad") for _ in range(others - 1)]
    else:
        variant = sc
        n_min = {-1.0: 2, -0.5: 3, 0.0: 2, 0.5: 2, 1.0: 2}[sc]
        if sc == 0.5 and rng.random() < 0.4:
            variant, n_min = "0.5b", 3
        n = min(max(n_min, n_draw), max_n)
        v = [None] * n
        rest = list(range(1, n))
        rest = [rest[i] for i in rng.permutation(len(rest))]
        if variant in (-1.0, -0.5, 1.0, "0.5b"):
            v[0] = {-1.0: "bad", -0.5: "bad", 1.0: "ok", "0.5b": "ok"}[variant]
            k = int(rng.integers(0, n - 1))  # others mentioned; at least one object stays out
            if variant in (-0.5, "0.5b"):
                k = max(k, 1)
            for j in rest[:k]:
                v[j] = {-1.0: "bad", 1.0: "ok"}.get(variant, "ok" if r() else "bad")
            if variant == -0.5:
                v[rest[0]] = "ok"
            if variant == "0.5b":
                v[rest[0]] = "bad"
        else:  # salient not mentioned: sc 0 (something wrong) or 0.5 (all right)
            k = 1 + int(rng.integers(0, n - 1))
            for j in rest[:k]:
                v[j] = "ok" if sc == 0.5 else ("ok" if r() else "bad")
            if sc == 0:
                v[rest[0]] = "bad"
    return Plan(n, v, focus)


# =========================================================================== words

FIRST = """Anna Thomas Maria John Clara Peter Helen Robert Sophie William Laura James Emma Henry Julia
George Alice Edward Rosa Charles Martha Paul Eva Frank Ida Carl Nora Oskar Lena Victor Agnes
Hugo Greta Louis Ruth Arthur Olga Felix Irene Walter""".split()  # noqa: SIM905
LAST = """Berg Hansen Moreau Weber Carter Lindqvist Rossi Novak Fischer Dubois Keller Ward Meyer
Larsen Brandt Castell Hoffman Morgan Richter Valdez Schmidt Olsen Bauer Fontaine Kowalski
Lambert Ferrari Jensen Baker Wagner Petrov Duval Hughes Sorensen Marino Klein""".split()  # noqa: SIM905
CITIES = """Paris London Berlin Vienna Rome Madrid Amsterdam Prague Oslo Stockholm Lisbon Dublin
Brussels Munich Milan Zurich Copenhagen Helsinki Warsaw Budapest Boston Chicago Toronto
Sydney Edinburgh Glasgow Manchester Florence Venice Lyon Hamburg Geneva""".split()  # noqa: SIM905
COUNTRIES = """France Germany Italy Spain Austria Norway Sweden Denmark Poland Portugal Ireland Belgium
Switzerland Finland Hungary Canada Australia Scotland""".split()  # noqa: SIM905
MUSEUMS = [
    "National Gallery",
    "City Museum",
    "Modern Art Museum",
    "Royal Academy",
    "Museum of Design",
    "State Gallery",
    "Textile Museum",
    "Folk Art Museum",
]
KINDS = [
    "painting",
    "flag",
    "mosaic",
    "poster",
    "quilt",
    "stained glass window",
    "banner",
    "tapestry",
]
ADJ = """Morning Evening Quiet Golden Silent Northern Little Old Bright Winter Summer Autumn Spring
Harbour Hidden Second Last First Blue Distant Broken Open""".split()  # noqa: SIM905
NOUNS = """Harbour Garden Window Bridge Market River Tower Square Field Road Station Village Festival
Journey Dream Song Parade Game Morning Hill Lake Forest""".split()  # noqa: SIM905
MOVEMENTS = [
    "abstract art",
    "modern art",
    "folk art",
    "constructivism",
    "the Bauhaus school",
    "geometric art",
    "pop art",
    "minimalism",
]
SUBJECTS = [
    "painting",
    "design",
    "architecture",
    "drawing",
    "printmaking",
    "textile art",
    "graphic design",
    "sculpture",
    "art history",
    "mathematics",
]
MATERIALS = [
    "oil paint",
    "canvas",
    "wool",
    "cotton",
    "glass",
    "ceramic tiles",
    "paper",
    "wood",
    "silk",
    "linen",
]
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
ORGS = [
    "Labour Party",
    "Ministry of Defence",
    "Conservative Party",
    "Arts Council",
    "Football Association",
    "Royal Navy",
    "National Trust",
    "City Council",
]
PLACES_UK = [
    "Leeds",
    "Bristol",
    "Cardiff",
    "Belfast",
    "Newcastle",
    "Liverpool",
    "Sheffield",
    "Nottingham",
    "Brighton",
    "Oxford",
    "Cambridge",
    "York",
    "Aberdeen",
    "Swansea",
]
JOBS = [
    "spokesman",
    "spokeswoman",
    "minister",
    "councillor",
    "director",
    "official",
    "campaigner",
    "head teacher",
    "police officer",
    "analyst",
]
SECTIONS = [
    "History",
    "Description",
    "Reception",
    "Legacy",
    "Exhibitions",
    "Materials",
    "Restoration",
    "Ownership",
    "Influence",
    "Technique",
]
SUBSECTIONS = ["Early years", "Later years", "Critics", "Copies", "Public response", "Damage"]

# Filler: non-visual sentences. They never contain a position phrase (scenes.parse_claim).
WIKI_FILLER = [
    "It was made by {person} in {year}.",
    "{person} was born in {city} in {year}.",
    "{person} studied {subject} in {city}.",
    "The work is kept at the {museum} in {city}.",
    "It was first shown in {city} in {month} {year}.",
    "It was sold for {number} dollars in {year}.",
    "Many people think it is one of the most important works of {movement}.",
    "The artist used {material} and {material2}.",
    "In {year}, it was moved to {city}.",
    "{person} wrote a book about it in {year}.",
    "It was copied many times in {country}.",
    "The work was damaged during a fire in {year}.",
    "It was cleaned and repaired in {year}.",
    "Some critics did not like it when it was new.",
    "It is often compared with the works of {person}.",
    "The design was used on stamps in {country}.",
    "It is about {number} centimeters wide.",
    "The museum bought it from {person} in {year}.",
    "It is part of a group of {small} similar works.",
    "Students of {subject} often learn about it.",
    "{person} said that it was the best work of {movement}.",
    "It has been shown in {city}, {city2} and {city3}.",
    "The work became famous after an exhibition in {year}.",
    "A copy of it hangs in the town hall of {city}.",
    "It was made for a church in {country}.",
    "The artist gave it to a friend in {year}.",
    "People in {country} know it from school books.",
    "It was the first work of its kind in {country}.",
    "The name of the work comes from a poem by {person}.",
    "The original drawings for it are lost.",
    "It was made in a small studio near {city}.",
    "During the war, it was hidden in {country}.",
    "Its color was changed a little after the repair in {year}.",
    "The work was stolen in {year} and found again in {year2}.",
]
BBC_FILLER = [
    "The {org} said the plans would be reviewed next year.",
    "A {org} {job} said the decision was made in {month}.",
    "Officials in {place} said the scheme would cost £{number}m.",
    "The programme will be organised by the council in {place}.",
    "{person}, a local {job}, said the neighbourhood had changed a lot.",
    "The theatre in {place} will reopen in {month} after repairs.",
    "The {org} has been criticised for its handling of defence spending.",
    "Critics said the government had failed to realise the cost of the plans.",
    "The centre will open to the public later this year.",
    "Police in {place} said they were looking for witnesses.",
    "It is the favourite venue of many families in {place}.",
    "The labour market has shown signs of recovery since {month}.",
    "More than {number} people attended the event on {day}.",
    "The travelling exhibition will visit {place} and {place2}.",
    "{person} said the colour of the new uniforms had been a surprise.",
    "The organisers apologised for the delay on {day}.",
    "The licence fee will rise by £{small} next year.",
    "Ministers met on {day} to analyse the latest figures.",
    "A report by the {org} found that behaviour had improved.",
    "Shares in the company fell by {small} per cent on {day}.",
    "The café owner, José {last}, said business had been slow.",
    "The World Trade Centre attacks changed security rules in {place}.",
    "The {org} will publish its findings in {month}.",
    "Local people were asked to give their views on the proposals.",
    "Ticket prices will rise to £{small} from {month}.",
    "The Ministry of Defence confirmed the programme would continue.",
    "The Labour Party said the cuts were unfair to families in {place}.",
    "Firefighters were called to the scene shortly after midnight.",
    "The new building is {number} metres long and has a grey roof.",
    "A spokesman for the {org} declined to comment further.",
    "The project was first proposed by {person} in {year}.",
    "Traffic was diverted around the city centre for several hours.",
    "The match was postponed because of heavy rain in {place}.",
    "Campaigners said the honour was long overdue.",
    "The museum has received a grant of £{number},000.",
    "Experts said the results were encouraging but more work was needed.",
]
BBC_HEADLINES = [
    "{org} defends new plans",
    "Exhibition opens in {place}",
    "Council to organise {place} festival",
    "New colour scheme for {place} theatre",
    "Minister visits {place}",
    "Defence cuts criticised",
    "Grey skies for {place} parade",
    "{place} centre reopens",
    "Programme of events announced",
    "Art show draws crowds",
    "Painting returns to {place}",
    "Flag row in {place}",
]
BBC_SUBHEADINGS = ["Public reaction", "Cost concerns", "Next steps", "Background", "Local views"]

WIKI_MENTION = [
    "A {size} {colour} {shape} is shown {pos}.",
    "{Pos}, there is a {size} {colour} {shape}.",
    "The {kind} has a {size} {colour} {shape} {pos}.",
    "A {size} {shape} colored {colour} can be seen {pos}.",
    "{Pos} of the picture is a {size} {colour} {shape}.",
]
BBC_MENTION = [
    "A {size} {colour} {shape} could be seen {pos} of the picture.",
    "Photographs showed a {size} {colour} {shape} {pos}.",
    "Witnesses described a {size} {shape}, {colour} in colour, {pos}.",
    "{Pos} of the image, a {size} {colour} {shape} was visible.",
    "The design features a {size} {colour} {shape} {pos}.",
]
COCO_CAPTION = [
    "A {size} {colour} {shape} {pos} of a pale background.",
    "a {size} {colour} {shape} sitting {pos}",
    "A picture with a {size} {colour} {shape} {pos}.",
    "There is a {size} {shape} that is {colour} {pos} of the image.",
    "A {colour} {shape} drawn {pos} on a textured background",
]


class Writer:
    """Fills sentence templates; returns (plain text, wikitext) pairs."""

    def __init__(self, rng: np.random.Generator, style: str):
        self.rng = rng
        self.style = style  # wiki | bbc | coco

    def pick(self, seq):
        return seq[int(self.rng.integers(len(seq)))]

    def _slot(self, name: str) -> tuple[str, str]:
        rng = self.rng
        link = self.style == "wiki" and rng.random() < 0.5
        if name == "person":
            v = f"{self.pick(FIRST)} {self.pick(LAST)}"
        elif name == "last":
            v = self.pick(LAST)
        elif name.startswith("city"):
            v = self.pick(CITIES)
        elif name == "country":
            v = self.pick(COUNTRIES)
        elif name == "museum":
            v = self.pick(MUSEUMS)
            link = False
        elif name.startswith("year"):
            v = str(int(rng.integers(1850, 2015)))
        elif name == "month":
            v = self.pick(MONTHS)
        elif name == "day":
            v = self.pick(
                ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
            )
            link = False
        elif name == "number":
            v = str(int(rng.integers(2, 900)))
            link = False
        elif name == "small":
            v = str(int(rng.integers(2, 20)))
            link = False
        elif name == "movement":
            v = self.pick(MOVEMENTS)
        elif name == "subject":
            v = self.pick(SUBJECTS)
        elif name.startswith("material"):
            v = self.pick(MATERIALS)
        elif name == "org":
            v = self.pick(ORGS)
        elif name == "job":
            v = self.pick(JOBS)
        elif name.startswith("place"):
            v = self.pick(PLACES_UK)
        else:
            raise KeyError(name)
        return v, (f"[[{v}]]" if link else v)

    def fill(self, template: str, fixed: dict[str, str] | None = None) -> tuple[str, str]:
        plain, wiki, i = [], [], 0
        fixed = fixed or {}
        while i < len(template):
            j = template.find("{", i)
            if j < 0:
                plain.append(template[i:])
                wiki.append(template[i:])
                break
            plain.append(template[i:j])
            wiki.append(template[i:j])
            k = template.index("}", j)
            name = template[j + 1 : k]
            if name in fixed:
                p = w = fixed[name]
            else:
                p, w = self._slot(name)
            plain.append(p)
            wiki.append(w)
            i = k + 1
        return "".join(plain), "".join(wiki)

    def filler(self) -> tuple[str, str]:
        return self.fill(self.pick(WIKI_FILLER if self.style == "wiki" else BBC_FILLER))

    def mention(self, claim: sc_mod.Claim, kind: str = "work") -> tuple[str, str]:
        british = self.style != "wiki"
        colour = claim.colour if british or claim.colour != "grey" else "gray"
        pos = POSITION_PHRASES[claim.position]
        if not british:
            pos = pos.replace("centre", "center")
        template = self.pick(
            WIKI_MENTION
            if self.style == "wiki"
            else BBC_MENTION
            if self.style == "bbc"
            else COCO_CAPTION
        )
        values = {
            "size": claim.size,
            "colour": colour,
            "shape": claim.shape,
            "pos": pos,
            "Pos": pos[:1].upper() + pos[1:],
            "kind": kind,
        }
        plain, _ = self.fill(template, values)
        wiki = plain
        if self.style == "wiki" and self.rng.random() < 0.3:
            wiki = plain.replace(f" {claim.shape}", f" [[{claim.shape}]]", 1)
        return plain, wiki


# =========================================================================== text from a plan


def _wrong(rng: np.random.Generator, obj: sc_mod.SceneObject) -> sc_mod.Claim:
    """A claim about ``obj`` with a contradicting colour or shape."""
    if rng.random() < 0.6:
        colours = [c for c in sc_mod.COLOURS if c != obj.colour]
        return sc_mod.Claim(
            obj.size, colours[int(rng.integers(len(colours)))], obj.shape, obj.position
        )
    shapes = [s for s in sc_mod.SHAPES if s != obj.shape]
    return sc_mod.Claim(obj.size, obj.colour, shapes[int(rng.integers(len(shapes)))], obj.position)


def _absent(rng: np.random.Generator, free: list[str]) -> sc_mod.Claim:
    pos = free[int(rng.integers(len(free)))]
    return sc_mod.Claim(
        ("small", "large")[int(rng.integers(2))],
        list(sc_mod.COLOURS)[int(rng.integers(len(sc_mod.COLOURS)))],
        sc_mod.SHAPES[int(rng.integers(len(sc_mod.SHAPES)))],
        pos,
    )


def plan_sentences(
    rng: np.random.Generator,
    writer: Writer,
    scene: Scene | None,
    plan: Plan | None,
    length: int,
    avoid: frozenset[str] = frozenset(),
    kind: str = "work",
    absent_p: float = 0.15,
) -> list[tuple[str, str]]:
    """Sentences (plain, wikitext) of one text block that realise ``plan`` for ``scene``.

    ``length`` is the usual number of sentences; the focus class can change it.
    Absent mentions go to positions that are empty in the scene and not in ``avoid``.
    """
    mentions: list[sc_mod.Claim] = []
    if scene is not None and plan is not None:
        for obj, v in zip(scene.objects, plan.verdicts):
            if v == "ok":
                mentions.append(sc_mod.Claim(obj.size, obj.colour, obj.shape, obj.position))
            elif v == "bad":
                mentions.append(_wrong(rng, obj))
    m = len(mentions)
    focus = plan.focus if plan is not None else "none"
    if focus == "all":
        others = 0
    elif focus == "mid":
        others = int(rng.integers(1, m + 1))  # m / (m + others) in [1/2, 1)
    elif focus == "low":
        others = max(m + 1, length - m)  # m / (m + others) < 1/2
    else:
        others = max(1, length)
    occupied = {o.position for o in scene.objects} if scene is not None else set()
    free = [p for p in sc_mod.POSITIONS if p not in occupied and p not in avoid]
    rest: list[tuple[str, str]] = []
    for _ in range(others):
        if free and focus != "all" and rng.random() < absent_p:
            rest.append(writer.mention(_absent(rng, free), kind))
        else:
            rest.append(writer.filler())
    said = [writer.mention(c, kind) for c in mentions]
    # Mentions mostly early (a description opens with what is seen), filler around them.
    out = rest[:]
    for s in said:
        out.insert(int(rng.integers(0, min(len(out), 2) + 1)), s)
    return out


def paragraphs(rng: np.random.Generator, sentences: list, per: tuple[int, int]) -> list[list]:
    """Group sentences into paragraphs of ``per`` sentences (inclusive range)."""
    out, i = [], 0
    while i < len(sentences):
        k = int(rng.integers(per[0], per[1] + 1))
        out.append(sentences[i : i + k])
        i += k
    return out


def _check_split(plain_paragraphs: list[list[str]], where: str) -> None:
    """The shared sentence splitter must return exactly the sentences we wrote."""
    for para in plain_paragraphs:
        got = split_sentences(" ".join(para))
        if got != list(para):
            raise AssertionError(f"{where}: split_sentences changed {para!r} into {got!r}")


# =========================================================================== Wikipedia


@dataclass
class WikiNode:
    level: int  # 0 lead, 2 section, 3 subsection
    title: str
    has_image: bool
    file: str = ""
    scene: Scene | None = None
    cell: tuple[float, float] | None = None
    labelled: bool = False
    sentences: list = field(default_factory=list)  # (plain, wiki)


@dataclass
class WikiArticle:
    page_id: int
    title: str
    kind: str
    nodes: list[WikiNode]
    showcase: bool = False


def _article_title(rng: np.random.Generator, used: set[str], kind: str) -> str:
    while True:
        t = f"{ADJ[int(rng.integers(len(ADJ)))]} {NOUNS[int(rng.integers(len(NOUNS)))]}"
        if rng.random() < 0.5:
            t += f" ({kind})"
        if t not in used:
            used.add(t)
            return t


def wiki_structures(rng: np.random.Generator, n_articles: int) -> list[WikiArticle]:
    used: set[str] = set()
    articles = []
    page_id = 100 + int(rng.integers(0, 400))
    for a in range(n_articles):
        kind = KINDS[int(rng.integers(len(KINDS)))]
        title = _article_title(rng, used, kind)
        if a == 1:
            title = "Café Lumière (painting)"  # a non-ASCII title and file name
        nodes = [WikiNode(0, "", bool(rng.random() < 0.9) or a == 0)]
        n_sec = int(rng.integers(2, 6))
        titles = [SECTIONS[i] for i in rng.permutation(len(SECTIONS))[:n_sec]]
        for t in titles:
            nodes.append(WikiNode(2, t, bool(rng.random() < 0.7)))
            if rng.random() < 0.25:
                nodes.append(
                    WikiNode(
                        3,
                        SUBSECTIONS[int(rng.integers(len(SUBSECTIONS)))],
                        bool(rng.random() < 0.5),
                    )
                )
        for k, node in enumerate(nodes):
            if node.has_image:
                base = title.split(" (")[0]
                name = f"{base} {'detail' if k else 'overview'} {k}.jpg"
                if rng.random() < 0.2:
                    name = name[0].lower() + name[1:]  # MediaWiki upper-cases the first letter
                node.file = name
        articles.append(WikiArticle(page_id, title, kind, nodes, showcase=(a == 0)))
        page_id += 1 + int(rng.integers(0, 40))
    return articles


def build_wiki_texts(rng: np.random.Generator, article: WikiArticle, px: int) -> None:
    """Scenes and sentences of every node, from the nodes' cells."""
    writer = Writer(rng, "wiki")
    lead = article.nodes[0]
    lead_positions: frozenset[str] = frozenset()
    if lead.has_image:
        plan = make_plan(rng, lead.cell, lead=True)
        lead.scene = random_scene(rng, plan.n, px)
        lead_positions = frozenset(o.position for o in lead.scene.objects)
        lead.sentences = plan_sentences(
            rng, writer, lead.scene, plan, int(rng.integers(3, 7)), kind=article.kind
        )
    else:
        lead.sentences = [writer.filler() for _ in range(int(rng.integers(3, 6)))]
    # The opening sentence names the subject (bold, as on Wikipedia).
    year = str(int(rng.integers(1850, 2010)))
    who = f"{FIRST[int(rng.integers(len(FIRST)))]} {LAST[int(rng.integers(len(LAST)))]}"
    opening = f"{article.title.split(' (')[0]} is a {article.kind} by {who} from {year}."
    lead.sentences.insert(
        0,
        (
            opening,
            opening.replace(
                article.title.split(" (")[0], f"'''{article.title.split(' (')[0]}'''", 1
            ).replace(who, f"[[{who}]]"),
        ),
    )
    for node in article.nodes[1:]:
        length = int(rng.integers(3, 8))
        if node.has_image:
            plan = make_plan(rng, node.cell, lead=False, max_n=4)
            node.scene = random_scene(rng, plan.n, px, avoid=lead_positions)
            node.sentences = plan_sentences(
                rng, writer, node.scene, plan, length, avoid=lead_positions, kind=article.kind
            )
        else:
            node.sentences = [writer.filler() for _ in range(length)]


def wiki_pair_texts(article: WikiArticle) -> list[tuple[WikiNode, list[str]]]:
    """(node, the plain sentences its image is paired with) for every thumb image."""
    out = []
    everything = [s for n in article.nodes for s, _ in n.sentences]
    for node in article.nodes:
        if node.has_image:
            out.append((node, everything if node.level == 0 else [s for s, _ in node.sentences]))
    return out


def _caption(rng: np.random.Generator, node: WikiNode, article: WikiArticle) -> str:
    o = node.scene.salient
    shape_link = (
        f"[[{o.shape}]]" if rng.random() < 0.5 else f"[[{o.shape.capitalize()} (shape)|{o.shape}]]"
    )
    base = article.title.split(" (")[0]
    forms = [
        f"A {o.colour.replace('grey', 'gray')} {shape_link} in ''{base}''",
        f"Detail of ''[[{article.title}|{base}]]'' with a {shape_link}",
        f"The {shape_link} of the {article.kind}",
    ]
    return forms[int(rng.integers(len(forms)))]


def _ref(rng: np.random.Generator) -> str:
    who = LAST[int(rng.integers(len(LAST)))]
    year = int(rng.integers(1950, 2019))
    return (
        f"<ref>{{{{cite book |last={who} |title=Shapes and colors in {CITIES[int(rng.integers(len(CITIES)))]}"
        f" |year={year} |page={int(rng.integers(1, 400))}}}}}</ref>"
    )


def wikitext(rng: np.random.Generator, article: WikiArticle, extra_files: dict[str, Scene]) -> str:
    """The article's wikitext. Plain sentences are recovered by stripping links,
    bold, references and templates; images, galleries, tables and lists are not text."""
    lines: list[str] = []
    base = article.title.split(" (")[0]
    if article.showcase:
        info = f"{base} infobox.jpg"
        extra_files[info] = None  # the caller draws and renders its scene
        lines += [
            "{{Infobox artwork",
            f"| name = {base}",
            f"| image = {info}",
            f"| caption = The {article.kind} in [[{CITIES[0]}]]",
            f"| year = {1900}",
            "}}",
        ]
    for k, node in enumerate(article.nodes):
        if node.level:
            eq = "=" * node.level
            lines += ["", f"{eq} {node.title} {eq}"]
        if node.has_image:
            prefix = "Image" if rng.random() < 0.1 else "File"
            opts = ["thumb"]
            if rng.random() < 0.3:
                opts.append(("left", "right", "upright", "220px")[int(rng.integers(4))])
            if rng.random() < 0.2:
                opts.append(f"alt={node.scene.salient.colour} shape")
            opts.append(_caption(rng, node, article))
            lines.append(f"[[{prefix}:{node.file}|{'|'.join(opts)}]]")
        paras = paragraphs(rng, node.sentences, (2, 4))
        _check_split([[p for p, _ in para] for para in paras], f"article {article.title!r}")
        for para in paras:
            text = []
            for plain, wiki in para:
                text.append(wiki + (_ref(rng) if rng.random() < 0.15 else ""))
            lines.append(" ".join(text))
            lines.append("")
        if article.showcase and k == 0:
            # A list the default pairing ignores, and a second use of the lead's file.
            lines += [
                "== Related pages ==",
                f"* [[{article.kind.capitalize()}]]",
                f"* [[{MOVEMENTS[0].capitalize()}]]",
                "",
            ]
    if article.showcase:
        g1, g2, tb = f"{base} sketch 1.jpg", f"{base} sketch 2.jpg", f"{base} table icon.jpg"
        for f in (g1, g2, tb):
            extra_files[f] = None
        lead_file = article.nodes[0].file
        lines += [
            "== Gallery ==",
            "<gallery>",
            f"File:{g1}|An early [[sketch]] of the work",
            f"{g2}|A later sketch",
            "</gallery>",
            "",
            "== Versions ==",
            "Several versions of the work exist.",
            '{| class="wikitable"',
            "|-",
            "! Year !! Version !! Picture",
            "|-",
            f"| 1901 || First || [[File:{tb}|50px]]",
            "|-",
            "| 1920 || Second || none",
            "|}",
            "",
            f"[[File:{lead_file}|thumb|left|The same picture again]]",
            "",
        ]
    lines += [
        "== References ==",
        "{{Reflist}}",
        "",
        "{{stub}}",
        f"[[Category:{article.kind.capitalize()}s]]",
    ]
    return "\n".join(lines).replace("\n\n\n", "\n\n").strip() + "\n"


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


def _timestamp(rng: np.random.Generator) -> str:
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


@dataclass
class Story:
    subdir: str
    name: str
    cell: tuple[float, float]
    labelled: bool
    scene: Scene | None = None
    headline: list[str] = field(default_factory=list)  # one line, or several (multi-line heading)
    blocks: list = field(default_factory=list)  # [(subheading or None, [paragraph sentences…])]
    caption: str = ""


def build_story(rng: np.random.Generator, story: Story, px: int, index: int) -> None:
    writer = Writer(rng, "bbc")
    plan = make_plan(rng, story.cell, lead=False)
    story.scene = random_scene(rng, plan.n, px)
    sentences = [
        p
        for p, _ in plan_sentences(
            rng, writer, story.scene, plan, int(rng.integers(6, 16)), absent_p=0.2
        )
    ]
    h1, _ = writer.fill(writer.pick(BBC_HEADLINES))
    story.headline = [h1]
    if index == 0:
        # The first story always has a multi-line heading with £, é and British spellings.
        place = writer.pick(PLACES_UK)
        story.headline = [
            f"{place} centre to organise colour programme",
            f"By José {writer.pick(LAST)}",
            f"£{int(rng.integers(2, 20))}m for grey {place} theatre",
        ]
    elif rng.random() < 0.08:
        h2, _ = writer.fill(writer.pick(BBC_HEADLINES))
        story.headline = [
            h1,
            f"By {FIRST[int(rng.integers(len(FIRST)))]} {LAST[int(rng.integers(len(LAST)))]}",
            h2,
        ]
    paras = paragraphs(rng, sentences, (1, 3))
    _check_split(paras, f"bbc story {story.name}")
    blocks: list = [(None, [])]
    for p in paras:
        if len(blocks[-1][1]) >= 3 and rng.random() < 0.3:
            blocks.append((writer.pick(BBC_SUBHEADINGS), []))
        blocks[-1][1].append(p)
    story.blocks = blocks
    o = story.scene.salient
    story.caption = writer.pick(
        [
            f"The {o.colour} {o.shape} has become a familiar sight in {writer.pick(PLACES_UK)}",
            "Organisers say the design is a favourite with visitors",
            f"The café in {writer.pick(PLACES_UK)} put the picture on show",
            f"A {o.shape} in {o.colour} dominates the picture",
        ]
    )


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


def story_sentences(story: Story) -> list[str]:
    return [s for _, paras in story.blocks for p in paras for s in p]


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


def coco_captions(rng: np.random.Generator, scene: Scene) -> list[str]:
    """Five correct, caption-like descriptions, with COCO's real noise."""
    writer = Writer(rng, "coco")
    out = []
    for k in range(5):
        objs = [scene.objects[0]] + [o for o in scene.objects[1:] if rng.random() < 0.5]
        parts = []
        for o in objs:
            p, _ = writer.mention(sc_mod.Claim(o.size, o.colour, o.shape, o.position))
            parts.append(p.rstrip("."))
        text = parts[0] + "".join(f" and {p[0].lower() + p[1:]}" for p in parts[1:])
        text = re.sub(r"\b([Aa]) (?=[aeiou])", r"\1n ", text)
        text = text[0].upper() + text[1:] + ("." if rng.random() < 0.75 else "")
        u = rng.random()
        if u < 0.12:
            text += " "
        elif u < 0.16:
            text = text.upper()
        elif u < 0.22:
            text = text.replace(" ", "  ", 1)
        elif u < 0.25:
            text = text.replace(" and ", " and\n", 1)
        out.append(text)
    return out


# =========================================================================== generate


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _progress(iterable, desc: str, show: bool):
    if not show:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, unit="item", leave=False)


def _distribution(rows: list[dict]) -> dict:
    def counts(key, levels):
        return {str(v): sum(1 for r in rows if abs(r[key] - v) < 1e-9) for v in levels}

    out = {"n": len(rows), "cmi": counts("cmi", CMI_VALUES), "sc": counts("sc", SC_VALUES)}
    out["mean_sc"] = round(sum(r["sc"] for r in rows) / len(rows), 4) if rows else None
    return out


def generate(
    out: Path, seed: int, size: str, cfg: SampleConfig, force: bool = False, progress: bool = False
) -> dict:
    """Write the sample world for ``seed`` and ``size`` into ``out``; return the manifest.

    The world is built in a temporary sibling folder and moved into place at the
    end, so an interrupted run leaves no half-written world. An existing
    non-empty ``out`` needs ``force``, and is only replaced when it holds a
    previous sample world (a ``manifest.json``).
    """
    out = Path(out)
    counts = check_config(cfg, size)
    if out.exists() and not out.is_dir():
        raise CmiscError(f"{out}: exists and is not a folder")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise CmiscError(f"{out}: the output folder is not empty (use --force to replace it)")
        if not (out / "manifest.json").exists():
            raise CmiscError(
                f"{out}: not replaced even with --force: it is not empty and holds no sample world (no manifest.json)"
            )
    px = cfg.image_px
    root = np.random.SeedSequence([int(seed), 20170606])
    s_struct, s_text, s_img, s_bbc, s_coco = (np.random.default_rng(s) for s in root.spawn(5))

    # ---- who is labelled, with which cell
    articles = wiki_structures(s_struct, counts["wiki_articles"])
    wiki_slots = [(a, n) for a in articles for n in a.nodes if n.has_image]
    eligible = [(a, n) for a, n in wiki_slots if not a.showcase]
    n_lab = counts["labelled"]
    n_wiki_lab = min(len(eligible), round(n_lab * (1 - BBC_SHARE)))
    n_bbc_lab = n_lab - n_wiki_lab
    if n_bbc_lab > counts["bbc_stories"]:
        raise ParamsError(
            f"sample.sizes.{size}.labelled: {n_lab} is more than the {len(eligible) + counts['bbc_stories']} "
            "Wikipedia and BBC pairs this size has"
        )
    chosen = sorted(s_struct.permutation(len(eligible))[:n_wiki_lab].tolist())
    cells = allocate_cells(TABLES["simplewiki"], n_wiki_lab, s_struct)
    for k, cell in zip(chosen, cells):
        eligible[k][1].cell, eligible[k][1].labelled = cell, True
    # Lead pairs carry whole articles: their focus is low, so CMI .75 and 1 go to sections.
    labelled_nodes = [n for _, n in eligible if n.labelled]
    for node in labelled_nodes:
        if node.level == 0 and not lead_can_have(node.cell):
            swap = next((o for o in labelled_nodes if o.level > 0 and lead_can_have(o.cell)), None)
            if swap is None:
                raise ParamsError(
                    f"sample.sizes.{size}.labelled: too few section images for the labels"
                )
            node.cell, swap.cell = swap.cell, node.cell
    for _, node in wiki_slots:
        if node.cell is None:
            node.cell = draw_cell(TABLES["simplewiki"], s_struct, lead=node.level == 0)

    n_stories = counts["bbc_stories"]
    n_test = max(1, round(n_stories * 240 / 3361))
    stories = []
    bbc_lab = set(s_struct.permutation(n_stories)[:n_bbc_lab].tolist())
    bbc_cells = iter(allocate_cells(TABLES["bbc"], n_bbc_lab, s_struct))
    for i in range(n_stories):
        subdir = "data_test" if i < n_test else "data_train"
        name = f"{4000000 + 7919 * i + int(seed) % 1000:07d}"
        if i == 2:
            name = f"news!{name}"  # the 2017 Java loader needed a workaround for "!"
        cell = next(bbc_cells) if i in bbc_lab else draw_cell(TABLES["bbc"], s_struct)
        stories.append(Story(subdir, name, cell, i in bbc_lab))

    # ---- build everything in a temporary folder next to the target
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the world is an ordinary folder
    try:
        manifest = _write_world(
            tmp, seed, size, counts, px, articles, stories, s_text, s_img, s_bbc, s_coco, progress
        )
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _write_world(
    tmp, seed, size, counts, px, articles, stories, s_text, s_img, s_bbc, s_coco, progress
) -> dict:
    annotations: list[dict] = []
    scene_rows: list[dict] = []
    pair_counts = {"simplewiki_lead": 0, "simplewiki_section": 0, "bbc": 0, "coco": 0}

    # ---- Wikipedia
    img_root = tmp / "simplewiki" / "images" / "commons"
    pages: list[str] = []
    rev_id = 5_000_000 + int(s_text.integers(0, 100_000))
    for article in _progress(articles, "wiki articles", progress):
        build_wiki_texts(s_text, article, px)
        extra: dict[str, Scene | None] = {}
        text = wikitext(s_text, article, extra)
        seen: dict[str, int] = {}
        for node, sentences in wiki_pair_texts(article):
            key = normalise_file_title(node.file)
            seen[key] = seen.get(key, 0) + 1
            image_key = key if seen[key] == 1 else f"{key}#{seen[key]}"
            pair_id = make_pair_id("simplewiki", str(article.page_id), image_key)
            labels = label_sentences(node.scene, sentences)
            if (labels.cmi, labels.sc) != node.cell:
                raise AssertionError(
                    f"{article.title}/{node.title or 'lead'}: planned {node.cell}, got {labels}"
                )
            pair_counts["simplewiki_lead" if node.level == 0 else "simplewiki_section"] += 1
            if node.labelled:
                annotations.append(
                    {
                        "pair_id": pair_id,
                        "cmi": labels.cmi,
                        "sc": labels.sc,
                        "source": "simplewiki",
                        "annotator": "sample-world-rules",
                    }
                )
            path = commons_path(img_root, node.file)
            _write(path, sc_mod.render_scene(node.scene, px, s_img))
            scene_rows.append(
                {
                    "image": path.relative_to(tmp).as_posix(),
                    "source": "simplewiki",
                    "pair_id": pair_id,
                    "scene": node.scene.to_json(),
                }
            )
        if article.showcase:
            # The lead's file is used twice: the second use is its own pair (key "#2"),
            # never labelled. The infobox, gallery and table files get scenes of their own.
            pair_counts["simplewiki_section"] += 1
            for f in extra:
                sc = random_scene(s_text, 1 + int(s_text.integers(0, 3)), px)
                path = commons_path(img_root, f)
                _write(path, sc_mod.render_scene(sc, px, s_img))
                scene_rows.append(
                    {
                        "image": path.relative_to(tmp).as_posix(),
                        "source": "simplewiki",
                        "pair_id": None,
                        "scene": sc.to_json(),
                    }
                )
        rev_id += 1 + int(s_text.integers(0, 500))
        pages.append(
            page_xml(
                article.title,
                0,
                article.page_id,
                rev_id,
                rev_id - 1 - int(s_text.integers(0, 50)),
                _timestamp(s_text),
                "SampleBot",
                16695,
                "Sample world article",
                text,
            )
        )
    # A redirect, and pages outside the article namespace (with an image link that is no pair).
    first = articles[1 if len(articles) > 1 else 0]
    last_id = max(a.page_id for a in articles)
    extra_pages = [
        (first.title.split(" (")[0] + " picture", 0, f"#REDIRECT [[{first.title}]]\n", first.title),
        (
            "Wikipedia:About shapes",
            4,
            (
                "This page explains how articles about [[shape]]s are written.\n\n"
                f"[[File:{articles[0].nodes[0].file}|thumb|An example picture]]\n"
            ),
            None,
        ),
        (
            "Template:Infobox artwork",
            10,
            '{| class="infobox"\n! {{{name}}}\n|-\n| [[File:{{{image}}}|220px]]\n|}\n',
            None,
        ),
        (
            f"File:{normalise_file_title(articles[0].nodes[0].file).replace('_', ' ')}",
            6,
            "== Summary ==\n{{Information |description=A sample world picture |source=generated}}\n",
            None,
        ),
    ]
    for k, (title, ns, text, target) in enumerate(extra_pages):
        rev_id += 1
        pages.append(
            page_xml(
                title,
                ns,
                last_id + 1 + k,
                rev_id,
                rev_id - 1,
                _timestamp(s_text),
                "SampleBot",
                16695,
                "Sample world page",
                text,
                redirect=target,
            )
        )
    xml = dump_xml(pages).encode("utf-8")
    _write(tmp / "simplewiki" / "simplewiki-sample-pages-articles.xml.bz2", bz2.compress(xml, 9))

    # ---- BBC
    for i, story in enumerate(_progress(stories, "bbc stories", progress)):
        build_story(s_bbc, story, px, i)
        folder = tmp / "bbc" / story.subdir
        sentences = story_sentences(story)
        labels = label_sentences(story.scene, sentences)
        if (labels.cmi, labels.sc) != story.cell:
            raise AssertionError(f"bbc {story.name}: planned {story.cell}, got {labels}")
        pair_id = make_pair_id("bbc", f"{story.subdir}/{story.name}", f"{story.name}.jpg")
        pair_counts["bbc"] += 1
        if story.labelled:
            annotations.append(
                {
                    "pair_id": pair_id,
                    "cmi": labels.cmi,
                    "sc": labels.sc,
                    "source": "bbc",
                    "annotator": "sample-world-rules",
                }
            )
        _write(folder / f"{story.name}.html", story_html(story))
        _write(folder / f"{story.name}.jpg", sc_mod.render_scene(story.scene, px, s_img))
        _write(folder / f"{story.name}.txt", (story.caption + "\n").encode("utf-8"))
        scene_rows.append(
            {
                "image": f"bbc/{story.subdir}/{story.name}.jpg",
                "source": "bbc",
                "pair_id": pair_id,
                "scene": story.scene.to_json(),
            }
        )

    # ---- COCO
    n_img = counts["coco_images"]
    image_ids = sorted(s_coco.choice(np.arange(1, 581_930), size=n_img, replace=False).tolist())
    ann_ids = s_coco.choice(np.arange(1, 830_000), size=5 * n_img, replace=False).tolist()
    images, anns = [], []
    for k, image_id in enumerate(_progress(image_ids, "coco images", progress)):
        scene = random_scene(s_coco, 1 + int(s_coco.choice(3, p=(0.5, 0.35, 0.15))), px)
        file_name = f"{image_id:012d}.jpg"
        _write(tmp / "coco" / "train2017" / file_name, sc_mod.render_scene(scene, px, s_img))
        scene_rows.append(
            {
                "image": f"coco/train2017/{file_name}",
                "source": "coco",
                "pair_id": None,
                "scene": scene.to_json(),
            }
        )
        images.append(
            {
                "license": int(s_coco.integers(1, 9)),
                "file_name": file_name,
                "coco_url": f"http://images.cocodataset.org/train2017/{file_name}",
                "height": px,
                "width": px,
                "date_captured": _timestamp(s_coco)
                .replace("2019-", "2013-")
                .replace("T", " ")
                .rstrip("Z"),
                "flickr_url": f"http://farm{int(s_coco.integers(1, 10))}.staticflickr.com/{int(s_coco.integers(1000, 9999))}/{image_id}_sample_z.jpg",
                "id": image_id,
            }
        )
        for j, cap in enumerate(coco_captions(s_coco, scene)):
            anns.append({"image_id": image_id, "id": ann_ids[5 * k + j], "caption": cap})
    anns = [
        anns[i] for i in s_coco.permutation(len(anns))
    ]  # not grouped by image, as in the real files
    pair_counts["coco"] = len(anns)
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
        "annotations": anns,
    }
    _write(
        tmp / "coco" / "annotations" / "captions_train2017.json", json.dumps(coco).encode("utf-8")
    )

    # ---- labels, scenes, manifest
    from_rows(annotations, ANNOTATIONS, "annotations.jsonl")  # validate against the project schema
    _write(
        tmp / "annotations.jsonl",
        "".join(json.dumps(r, sort_keys=True) + "\n" for r in annotations).encode(),
    )
    _write(
        tmp / "scenes.jsonl",
        "".join(json.dumps(r, sort_keys=True) + "\n" for r in scene_rows).encode(),
    )
    manifest = {
        "seed": int(seed),
        "size": size,
        "image_px": px,
        "counts": {
            "wiki_articles": len(articles),
            "wiki_pages": len(pages),
            "wiki_pairs": pair_counts["simplewiki_lead"] + pair_counts["simplewiki_section"],
            "wiki_lead_pairs": pair_counts["simplewiki_lead"],
            "wiki_section_pairs": pair_counts["simplewiki_section"],
            "bbc_stories": len(stories),
            "bbc_test": sum(1 for s in stories if s.subdir == "data_test"),
            "coco_images": len(images),
            "coco_captions": len(anns),
            "pairs_total": sum(pair_counts.values()),
            "images": len(scene_rows),
            "labelled": len(annotations),
        },
        "labels": {
            "all": _distribution(annotations),
            "simplewiki": _distribution([r for r in annotations if r["source"] == "simplewiki"]),
            "bbc": _distribution([r for r in annotations if r["source"] == "bbc"]),
        },
        "files": {
            "wiki_dump": "simplewiki/simplewiki-sample-pages-articles.xml.bz2",
            "wiki_images": "simplewiki/images/commons",
            "bbc": "bbc",
            "coco_captions": "coco/annotations/captions_train2017.json",
            "coco_images": "coco/train2017",
            "annotations": "annotations.jsonl",
            "scenes": "scenes.jsonl",
        },
    }
    _write(tmp / "manifest.json", (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    return manifest


# =========================================================================== CLI


def cli_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="cmisc sample", description="Write the generated sample world."
    )
    p.add_argument("--out", type=Path, help="output folder (default: params sample.out)")
    p.add_argument("--seed", type=int, help="random seed (default: params base.seed)")
    p.add_argument("--size", help="tiny | small | default (default: params sample.size)")
    p.add_argument("--force", action="store_true", help="replace an existing sample world")
    p.add_argument(
        "--params",
        type=Path,
        default=Path("params.yaml"),
        help="params file (default: params.yaml)",
    )
    args = p.parse_args(argv)
    params: dict[str, Any] = (
        load_params(args.params)
        if args.params.exists() or args.params != Path("params.yaml")
        else {}
    )
    base = from_mapping(BaseConfig, params.get("base", {}), "base")
    cfg = from_mapping(SampleConfig, params.get("sample", {}), "sample")
    size = args.size or cfg.size
    seed = base.seed if args.seed is None else args.seed
    out = args.out or Path(cfg.out)
    manifest = generate(out, seed, size, cfg, force=args.force, progress=sys.stderr.isatty())
    c = manifest["counts"]
    print(
        f"sample world ({size}, seed {seed}) in {out}: {c['pairs_total']} pairs "
        f"(wiki {c['wiki_pairs']}, bbc {c['bbc_stories']}, coco {c['coco_captions']}), {c['labelled']} labelled"
    )
    return 0
