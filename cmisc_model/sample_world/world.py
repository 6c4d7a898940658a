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
are allocated exactly, scaled from the per-source tables (``plans.TABLES``), which split
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
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cmisc_model.config import BaseConfig, ParamsError, from_mapping, load_params
from cmisc_model.errors import CmiscError
from cmisc_model.sample_world.formats import (
    coco_image,
    coco_json,
    commons_path,
    dump_xml,
    jsonl,
    page_xml,
    seeded_timestamp,
    story_html,
    write_file,
)
from cmisc_model.sample_world.plans import (
    BBC_SHARE,
    CMI_VALUES,
    SC_VALUES,
    TABLES,
    allocate_cells,
    draw_cell,
    lead_can_have,
)
from cmisc_model.sample_world.scenes import (
    Labels,
    Scene,
    label_sentences,
    random_scene,
    render_scene,
)
from cmisc_model.sample_world.texts import (
    Story,
    WikiArticle,
    WikiNode,
    build_story,
    build_wiki_texts,
    coco_captions,
    story_sentences,
    wiki_pair_texts,
    wiki_structures,
    wikitext,
)
from cmisc_model.schemas import ANNOTATIONS, from_rows, make_pair_id, normalise_file_title

SIZE_KEYS = ("wiki_articles", "bbc_stories", "coco_images", "labelled")


def _default_sizes() -> dict[str, dict[str, int]]:
    return {
        "tiny": {"wiki_articles": 8, "bbc_stories": 12, "coco_images": 12, "labelled": 20},
        "small": {"wiki_articles": 40, "bbc_stories": 80, "coco_images": 60, "labelled": 150},
        "default": {"wiki_articles": 220, "bbc_stories": 650, "coco_images": 320, "labelled": 726},
        "heldout": {"wiki_articles": 540, "bbc_stories": 1580, "coco_images": 250, "labelled": 1758},
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


@dataclass
class HeldoutConfig:
    """The ``heldout`` section of params.yaml: a second labelled world, from its own
    seed, that no training or selection sees; every system is scored on all of it."""

    seed: int = 271828  # base.seed is the main world's
    size: str = "heldout"  # a key of sample.sizes
    coco_labelled: int = 242  # COCO's share at the paper's ratio, 100 of 826
    out: str = "data/heldout"


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


# =========================================================================== generate


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
    _check_out(out, force)
    rng = _Streams.for_seed(seed)
    # Who is labelled, with which cell; then everything is written.
    articles, n_bbc_labelled = _plan_wiki(rng.structure, counts, size)
    stories = _plan_stories(rng.structure, counts["bbc_stories"], n_bbc_labelled, seed)

    def write(tmp: Path) -> dict:
        world = _World(tmp, cfg.image_px, rng.image)
        return _write_world(
            world, seed, size, articles, stories, counts["coco_images"], rng, progress
        )

    return _build_in_place(out, write)


@dataclass(frozen=True)
class _Streams:
    """One random stream per part of the world, so that one part's draws never
    move another's."""

    structure: np.random.Generator
    text: np.random.Generator
    image: np.random.Generator
    bbc: np.random.Generator
    coco: np.random.Generator

    @classmethod
    def for_seed(cls, seed: int) -> _Streams:
        root = np.random.SeedSequence([int(seed), 20170606])
        return cls(*(np.random.default_rng(s) for s in root.spawn(5)))


def _check_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise CmiscError(f"{out}: exists and is not a folder")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise CmiscError(f"{out}: the output folder is not empty (use --force to replace it)")
        if not (out / "manifest.json").exists():
            raise CmiscError(
                f"{out}: not replaced even with --force: it is not empty and holds no sample world (no manifest.json)"
            )


def _plan_wiki(
    rng: np.random.Generator, counts: dict[str, int], size: str
) -> tuple[list[WikiArticle], int]:
    """The articles with every image's cell, and how many BBC pairs are labelled."""
    articles = wiki_structures(rng, counts["wiki_articles"])
    wiki_slots = [n for a in articles for n in a.nodes if n.has_image]
    eligible = [n for a in articles if not a.showcase for n in a.nodes if n.has_image]
    n_lab = counts["labelled"]
    n_wiki_lab = min(len(eligible), round(n_lab * (1 - BBC_SHARE)))
    n_bbc_lab = n_lab - n_wiki_lab
    if n_bbc_lab > counts["bbc_stories"]:
        raise ParamsError(
            f"sample.sizes.{size}.labelled: {n_lab} is more than the {len(eligible) + counts['bbc_stories']} "
            "Wikipedia and BBC pairs this size has"
        )
    _label_wiki(rng, eligible, n_wiki_lab, size)
    for node in wiki_slots:
        if node.cell is None:
            node.cell = draw_cell(TABLES["simplewiki"], rng, lead=node.level == 0)
    return articles, n_bbc_lab


def _label_wiki(rng: np.random.Generator, eligible: list[WikiNode], n: int, size: str) -> None:
    """Label ``n`` of the ``eligible`` images with the SimpleWiki table's cells."""
    chosen = sorted(rng.permutation(len(eligible))[:n].tolist())
    cells = allocate_cells(TABLES["simplewiki"], n, rng)
    for k, cell in zip(chosen, cells):
        eligible[k].cell, eligible[k].labelled = cell, True
    # Lead pairs carry whole articles: their focus is low, so CMI .75 and 1 go to sections.
    labelled_nodes = [node for node in eligible if node.labelled]
    for node in labelled_nodes:
        if node.level == 0 and not lead_can_have(node.cell):
            swap = next((o for o in labelled_nodes if o.level > 0 and lead_can_have(o.cell)), None)
            if swap is None:
                raise ParamsError(
                    f"sample.sizes.{size}.labelled: too few section images for the labels"
                )
            node.cell, swap.cell = swap.cell, node.cell


def _plan_stories(
    rng: np.random.Generator, n_stories: int, n_labelled: int, seed: int
) -> list[Story]:
    """The BBC stories with their cells: the first ones are the test split."""
    # Test and training stories in the proportion of Feng & Lapata's 240 and 3361.
    n_test = max(1, round(n_stories * 240 / 3361))
    labelled = set(rng.permutation(n_stories)[:n_labelled].tolist())
    cells = iter(allocate_cells(TABLES["bbc"], n_labelled, rng))
    stories = []
    for i in range(n_stories):
        subdir = "data_test" if i < n_test else "data_train"
        name = f"{4000000 + 7919 * i + int(seed) % 1000:07d}"
        if i == 2:
            name = f"news!{name}"  # the 2017 Java loader needed a workaround for "!"
        cell = next(cells) if i in labelled else draw_cell(TABLES["bbc"], rng)
        stories.append(Story(subdir, name, cell, i in labelled))
    return stories


def _build_in_place(out: Path, write: Callable[[Path], dict]) -> dict:
    """Run ``write`` on a temporary folder next to ``out``, then move it to ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the world is an ordinary folder
    try:
        manifest = write(tmp)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


# =========================================================================== writing the world


@dataclass
class _World:
    """The folder being written, and the rows gathered on the way."""

    root: Path
    px: int
    # Jitter and noise of every image, drawn image after image in the order they are written.
    image_rng: np.random.Generator
    annotations: list[dict] = field(default_factory=list)
    scene_rows: list[dict] = field(default_factory=list)
    pair_counts: dict[str, int] = field(
        default_factory=lambda: {"simplewiki_lead": 0, "simplewiki_section": 0, "bbc": 0, "coco": 0}
    )

    def image(self, path: Path, scene: Scene, source: str, pair_id: str | None) -> None:
        """Render ``scene`` into ``path`` and note what it shows (scenes.jsonl)."""
        write_file(path, render_scene(scene, self.px, self.image_rng))
        self.scene_rows.append(
            {
                "image": path.relative_to(self.root).as_posix(),
                "source": source,
                "pair_id": pair_id,
                "scene": scene.to_json(),
            }
        )

    def annotate(self, pair_id: str, labels: Labels, source: str) -> None:
        self.annotations.append(
            {
                "pair_id": pair_id,
                "cmi": labels.cmi,
                "sc": labels.sc,
                "source": source,
                "annotator": "sample-world-rules",
            }
        )


def _write_world(
    world: _World,
    seed: int,
    size: str,
    articles: list[WikiArticle],
    stories: list[Story],
    n_coco: int,
    rng: _Streams,
    progress: bool,
) -> dict:
    n_pages = _write_wiki(world, articles, rng.text, progress)
    _write_bbc(world, stories, rng.bbc, progress)
    n_coco_images = _write_coco(world, n_coco, rng.coco, progress)
    # Validate against the project schema before anything reads it.
    from_rows(world.annotations, ANNOTATIONS, "annotations.jsonl")
    write_file(world.root / "annotations.jsonl", jsonl(world.annotations))
    write_file(world.root / "scenes.jsonl", jsonl(world.scene_rows))
    manifest = _manifest(world, seed, size, articles, stories, n_pages, n_coco_images)
    write_file(
        world.root / "manifest.json",
        (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode(),
    )
    return manifest


def _checked_labels(
    scene: Scene, sentences: list[str], cell: tuple[float, float], where: str
) -> Labels:
    """The labels of a pair, which must be the cell its text was written for."""
    labels = label_sentences(scene, sentences)
    if (labels.cmi, labels.sc) != cell:
        raise AssertionError(f"{where}: planned {cell}, got {labels}")
    return labels


# ---- Wikipedia


def _write_wiki(
    world: _World, articles: list[WikiArticle], rng: np.random.Generator, progress: bool
) -> int:
    """The articles' images and the bz2 XML dump; returns the number of pages."""
    pages: list[str] = []
    rev_id = 5_000_000 + int(rng.integers(0, 100_000))
    for article in _progress(articles, "wiki articles", progress):
        text = _write_article(world, article, rng)
        rev_id += 1 + int(rng.integers(0, 500))
        parent_id = rev_id - 1 - int(rng.integers(0, 50))
        pages.append(
            page_xml(
                article.title,
                0,
                article.page_id,
                rev_id,
                parent_id,
                seeded_timestamp(rng),
                "SampleBot",
                16695,
                "Sample world article",
                text,
            )
        )
    last_id = max(a.page_id for a in articles)
    for k, (title, ns, text, target) in enumerate(_other_pages(articles)):
        rev_id += 1
        pages.append(
            page_xml(
                title,
                ns,
                last_id + 1 + k,
                rev_id,
                rev_id - 1,
                seeded_timestamp(rng),
                "SampleBot",
                16695,
                "Sample world page",
                text,
                redirect=target,
            )
        )
    xml = dump_xml(pages).encode("utf-8")
    dump = world.root / "simplewiki" / "simplewiki-sample-pages-articles.xml.bz2"
    write_file(dump, bz2.compress(xml, 9))
    return len(pages)


def _write_article(world: _World, article: WikiArticle, rng: np.random.Generator) -> str:
    """Write the article's texts, label and draw its pairs; return its wikitext."""
    build_wiki_texts(rng, article, world.px)
    extra: dict[str, Scene | None] = {}
    text = wikitext(rng, article, extra)
    images = world.root / "simplewiki" / "images" / "commons"
    seen: dict[str, int] = {}
    for node, sentences in wiki_pair_texts(article):
        key = normalise_file_title(node.file)
        seen[key] = seen.get(key, 0) + 1
        image_key = key if seen[key] == 1 else f"{key}#{seen[key]}"
        pair_id = make_pair_id("simplewiki", str(article.page_id), image_key)
        where = f"{article.title}/{node.title or 'lead'}"
        labels = _checked_labels(node.scene, sentences, node.cell, where)
        world.pair_counts["simplewiki_lead" if node.level == 0 else "simplewiki_section"] += 1
        if node.labelled:
            world.annotate(pair_id, labels, "simplewiki")
        world.image(commons_path(images, node.file), node.scene, "simplewiki", pair_id)
    if article.showcase:
        # The lead's file is used twice: the second use is its own pair (key "#2"),
        # never labelled. The infobox, gallery and table files get scenes of their own.
        world.pair_counts["simplewiki_section"] += 1
        for f in extra:
            scene = random_scene(rng, 1 + int(rng.integers(0, 3)), world.px)
            world.image(commons_path(images, f), scene, "simplewiki", None)
    return text


def _other_pages(articles: list[WikiArticle]) -> list[tuple[str, int, str, str | None]]:
    """(title, namespace, text, redirect target): a redirect, and pages outside the
    article namespace (with an image link that is no pair)."""
    first = articles[1 if len(articles) > 1 else 0]
    file = articles[0].nodes[0].file
    return [
        (first.title.split(" (")[0] + " picture", 0, f"#REDIRECT [[{first.title}]]\n", first.title),
        (
            "Wikipedia:About shapes",
            4,
            (
                "This page explains how articles about [[shape]]s are written.\n\n"
                f"[[File:{file}|thumb|An example picture]]\n"
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
            f"File:{normalise_file_title(file).replace('_', ' ')}",
            6,
            "== Summary ==\n{{Information |description=A sample world picture |source=generated}}\n",
            None,
        ),
    ]


# ---- BBC and COCO


def _write_bbc(
    world: _World, stories: list[Story], rng: np.random.Generator, progress: bool
) -> None:
    for i, story in enumerate(_progress(stories, "bbc stories", progress)):
        build_story(rng, story, world.px, i)
        folder = world.root / "bbc" / story.subdir
        labels = _checked_labels(
            story.scene, story_sentences(story), story.cell, f"bbc {story.name}"
        )
        pair_id = make_pair_id("bbc", f"{story.subdir}/{story.name}", f"{story.name}.jpg")
        world.pair_counts["bbc"] += 1
        if story.labelled:
            world.annotate(pair_id, labels, "bbc")
        write_file(folder / f"{story.name}.html", story_html(story))
        world.image(folder / f"{story.name}.jpg", story.scene, "bbc", pair_id)
        write_file(folder / f"{story.name}.txt", (story.caption + "\n").encode("utf-8"))


def _write_coco(world: _World, n_img: int, rng: np.random.Generator, progress: bool) -> int:
    """The COCO images and captions file; returns the number of images."""
    image_ids = sorted(rng.choice(np.arange(1, 581_930), size=n_img, replace=False).tolist())
    ann_ids = rng.choice(np.arange(1, 830_000), size=5 * n_img, replace=False).tolist()
    images, anns = [], []
    for k, image_id in enumerate(_progress(image_ids, "coco images", progress)):
        scene = random_scene(rng, 1 + int(rng.choice(3, p=(0.5, 0.35, 0.15))), world.px)
        file_name = f"{image_id:012d}.jpg"
        world.image(world.root / "coco" / "train2017" / file_name, scene, "coco", None)
        images.append(coco_image(rng, image_id, file_name, world.px))
        for j, cap in enumerate(coco_captions(rng, scene)):
            anns.append({"image_id": image_id, "id": ann_ids[5 * k + j], "caption": cap})
    # Not grouped by image, as in the real files.
    anns = [anns[i] for i in rng.permutation(len(anns))]
    world.pair_counts["coco"] = len(anns)
    write_file(
        world.root / "coco" / "annotations" / "captions_train2017.json", coco_json(images, anns)
    )
    return len(images)


# ---- manifest


def _manifest(
    world: _World,
    seed: int,
    size: str,
    articles: list[WikiArticle],
    stories: list[Story],
    n_pages: int,
    n_coco_images: int,
) -> dict:
    pair_counts, annotations = world.pair_counts, world.annotations
    return {
        "seed": int(seed),
        "size": size,
        "image_px": world.px,
        "counts": {
            "wiki_articles": len(articles),
            "wiki_pages": n_pages,
            "wiki_pairs": pair_counts["simplewiki_lead"] + pair_counts["simplewiki_section"],
            "wiki_lead_pairs": pair_counts["simplewiki_lead"],
            "wiki_section_pairs": pair_counts["simplewiki_section"],
            "bbc_stories": len(stories),
            "bbc_test": sum(1 for s in stories if s.subdir == "data_test"),
            "coco_images": n_coco_images,
            "coco_captions": pair_counts["coco"],
            "pairs_total": sum(pair_counts.values()),
            "images": len(world.scene_rows),
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


def _distribution(rows: list[dict]) -> dict:
    def counts(key, levels):
        return {str(v): sum(1 for r in rows if abs(r[key] - v) < 1e-9) for v in levels}

    out = {"n": len(rows), "cmi": counts("cmi", CMI_VALUES), "sc": counts("sc", SC_VALUES)}
    out["mean_sc"] = round(sum(r["sc"] for r in rows) / len(rows), 4) if rows else None
    return out


def _progress(iterable, desc: str, show: bool):
    if not show:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, unit="item", leave=False)


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
