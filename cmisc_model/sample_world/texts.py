"""The texts about the scenes: Wikipedia articles, BBC stories, COCO captions.

``Writer`` fills the sentence templates of ``words``; ``plan_sentences`` turns
a mention plan (``plans.make_plan``) into the sentences of one text block.
``wiki_structures`` lays out the articles (lead, sections, subsections, which
of them have an image), ``build_wiki_texts`` and ``wikitext`` write them;
``build_story`` writes a BBC story and ``coco_captions`` five captions of an
image. Every text is checked against the shared sentence splitter, so that the
pipeline reads back exactly the sentences that were labelled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from cmisc_model.sample_world.plans import Plan, make_plan
from cmisc_model.sample_world.scenes import (
    COLOURS,
    POSITION_PHRASES,
    POSITIONS,
    SHAPES,
    Claim,
    Scene,
    SceneObject,
    random_scene,
)
from cmisc_model.sample_world.words import (
    ADJ,
    BBC_FILLER,
    BBC_HEADLINES,
    BBC_MENTION,
    BBC_SUBHEADINGS,
    CITIES,
    COCO_CAPTION,
    COUNTRIES,
    FIRST,
    JOBS,
    KINDS,
    LAST,
    MATERIALS,
    MONTHS,
    MOVEMENTS,
    MUSEUMS,
    NOUNS,
    ORGS,
    PLACES_UK,
    SECTIONS,
    SUBJECTS,
    SUBSECTIONS,
    WIKI_FILLER,
    WIKI_MENTION,
)
from cmisc_model.text.sentences import split_sentences


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

    def mention(self, claim: Claim, kind: str = "work") -> tuple[str, str]:
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


def _wrong(rng: np.random.Generator, obj: SceneObject) -> Claim:
    """A claim about ``obj`` with a contradicting colour or shape."""
    if rng.random() < 0.6:
        colours = [c for c in COLOURS if c != obj.colour]
        return Claim(obj.size, colours[int(rng.integers(len(colours)))], obj.shape, obj.position)
    shapes = [s for s in SHAPES if s != obj.shape]
    return Claim(obj.size, obj.colour, shapes[int(rng.integers(len(shapes)))], obj.position)


def _absent(rng: np.random.Generator, free: list[str]) -> Claim:
    pos = free[int(rng.integers(len(free)))]
    return Claim(
        ("small", "large")[int(rng.integers(2))],
        list(COLOURS)[int(rng.integers(len(COLOURS)))],
        SHAPES[int(rng.integers(len(SHAPES)))],
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
    mentions: list[Claim] = []
    if scene is not None and plan is not None:
        for obj, v in zip(scene.objects, plan.verdicts):
            if v == "ok":
                mentions.append(Claim(obj.size, obj.colour, obj.shape, obj.position))
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
    free = [p for p in POSITIONS if p not in occupied and p not in avoid]
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


def wikitext(
    rng: np.random.Generator, article: WikiArticle, extra_files: dict[str, Scene | None]
) -> str:
    """The article's wikitext. Plain sentences are recovered by stripping links,
    bold, references and templates; images, galleries, tables and lists are not text.

    The file names of the showcase's infobox, gallery and table images are added
    to ``extra_files`` (the caller draws and renders their scenes)."""
    lines = _infobox(article, extra_files) if article.showcase else []
    for k, node in enumerate(article.nodes):
        lines += _node_wikitext(rng, article, node)
        if article.showcase and k == 0:
            lines += _related_pages(article)
    if article.showcase:
        lines += _gallery_and_table(article, extra_files)
    lines += [
        "== References ==",
        "{{Reflist}}",
        "",
        "{{stub}}",
        f"[[Category:{article.kind.capitalize()}s]]",
    ]
    return "\n".join(lines).replace("\n\n\n", "\n\n").strip() + "\n"


def _infobox(article: WikiArticle, extra_files: dict[str, Scene | None]) -> list[str]:
    base = article.title.split(" (")[0]
    info = f"{base} infobox.jpg"
    extra_files[info] = None
    return [
        "{{Infobox artwork",
        f"| name = {base}",
        f"| image = {info}",
        f"| caption = The {article.kind} in [[{CITIES[0]}]]",
        f"| year = {1900}",
        "}}",
    ]


def _node_wikitext(rng: np.random.Generator, article: WikiArticle, node: WikiNode) -> list[str]:
    """A node's heading, thumb image and paragraphs (with references)."""
    lines: list[str] = []
    if node.level:
        eq = "=" * node.level
        lines += ["", f"{eq} {node.title} {eq}"]
    if node.has_image:
        lines.append(_thumb(rng, node, article))
    paras = paragraphs(rng, node.sentences, (2, 4))
    _check_split([[p for p, _ in para] for para in paras], f"article {article.title!r}")
    for para in paras:
        text = []
        for _, wiki in para:
            text.append(wiki + (_ref(rng) if rng.random() < 0.15 else ""))
        lines.append(" ".join(text))
        lines.append("")
    return lines


def _thumb(rng: np.random.Generator, node: WikiNode, article: WikiArticle) -> str:
    prefix = "Image" if rng.random() < 0.1 else "File"
    opts = ["thumb"]
    if rng.random() < 0.3:
        opts.append(("left", "right", "upright", "220px")[int(rng.integers(4))])
    if rng.random() < 0.2:
        opts.append(f"alt={node.scene.salient.colour} shape")
    opts.append(_caption(rng, node, article))
    return f"[[{prefix}:{node.file}|{'|'.join(opts)}]]"


def _related_pages(article: WikiArticle) -> list[str]:
    # A list the default pairing ignores.
    return [
        "== Related pages ==",
        f"* [[{article.kind.capitalize()}]]",
        f"* [[{MOVEMENTS[0].capitalize()}]]",
        "",
    ]


def _gallery_and_table(article: WikiArticle, extra_files: dict[str, Scene | None]) -> list[str]:
    """A gallery, a wikitable with an image, and a second use of the lead's file."""
    base = article.title.split(" (")[0]
    g1, g2, tb = f"{base} sketch 1.jpg", f"{base} sketch 2.jpg", f"{base} table icon.jpg"
    for f in (g1, g2, tb):
        extra_files[f] = None
    lead_file = article.nodes[0].file
    return [
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


def story_sentences(story: Story) -> list[str]:
    return [s for _, paras in story.blocks for p in paras for s in p]


# =========================================================================== COCO


def coco_captions(rng: np.random.Generator, scene: Scene) -> list[str]:
    """Five correct, caption-like descriptions, with COCO's real noise."""
    writer = Writer(rng, "coco")
    out = []
    for k in range(5):
        objs = [scene.objects[0]] + [o for o in scene.objects[1:] if rng.random() < 0.5]
        parts = []
        for o in objs:
            p, _ = writer.mention(Claim(o.size, o.colour, o.shape, o.position))
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
