"""Scenes of the sample world: what an image shows, how it is drawn, and the
label rules that relate a text to it.

A **scene** is 1–4 objects on a textured background. Each object has a shape,
a colour, a size word (``small``/``large``), a radius in pixels and one of nine
grid positions (no two objects share a position). The **salient** object is
the one with the largest radius.

The geometry (``GRID_MARGIN`` … ``FILL_JITTER``) keeps every label decidable
from the image at the resolution the model is fed, which
``sample_world/audit.py`` checks: the salient object is clearly the largest,
"small" and "large" radii lie apart, no object covers another or leaves the
frame, and an object's colour stays nearest to its own name.

A **mention** is a sentence that places an object at a position, e.g. "A large
red circle is shown in the upper left." (``parse_claim`` reads it back). Every
mention names exactly one size, colour, shape and position; no other sentence
of the sample world contains a position phrase, so the label of a pair can be
recomputed from the very sentences the pair carries. Against a scene a mention
is

- *correct*: an object stands at that position, and size, colour and shape agree;
- *contradicting*: an object stands at that position but size, colour or shape differ;
- *absent*: no object stands there — the text talks about something the image
  does not show, which is no shared concept.

Every other sentence (history, dates, people, prices…) is non-visual filler.

Label rules (``label_sentences``). With n objects, M the depicted objects the
text mentions (correctly or not), coverage c = |M| / n, and focus f = (number
of sentences that mention a depicted object) / (number of sentences):

CMI
  1. no depicted object is mentioned                          → 0
  2. c = 1 and f = 1 (caption-like: every sentence describes
     the image and every object is described)                  → 1
  3. otherwise 0.25 + 0.25·[c = 1] + 0.25·[f ≥ 1/2]            → .25, .5 or .75

SC (an object is *contradicted* when any mention of it contradicts it)
  1. no depicted object is mentioned                           → 0
  2. the salient object is contradicted: −1 when every mentioned
     object is contradicted, −0.5 when some other is described correctly
  3. the salient object is described correctly: 1 when nothing is
     contradicted, 0.5 when a smaller object is contradicted
  4. the salient object is not mentioned: 0 when a smaller object is
     contradicted (agreement and disagreement cancel), 0.5 otherwise
     (the text agrees with the image, but only on details)

SC depends on what the text gets right or wrong, CMI on how much it shares;
so "how much of the text is about the scene" moves CMI, not SC (a long
encyclopedia article that describes its main picture correctly has SC 1 and a
middling CMI, as in the paper, where SimpleWiki's mean SC is 0.88).
"""

from __future__ import annotations

import io
import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from cmisc_model.errors import CmiscError

SHAPES = ("circle", "square", "triangle", "star", "diamond", "hexagon")
COLOURS = {
    "red": (205, 35, 35),
    "green": (40, 150, 55),
    "blue": (40, 75, 205),
    "yellow": (235, 205, 35),
    "orange": (240, 135, 25),
    "purple": (130, 50, 165),
    "grey": (125, 125, 125),
    "brown": (120, 72, 30),
    "pink": (240, 135, 185),
    "black": (22, 22, 22),
}
# American spellings read back as the same colour.
COLOUR_ALIASES = {"gray": "grey"}
SIZES = ("small", "large")
# Grid positions: name -> (column, row) in thirds of the image.
POSITIONS = {
    "upper left": (0, 0),
    "top": (1, 0),
    "upper right": (2, 0),
    "left": (0, 1),
    "centre": (1, 1),
    "right": (2, 1),
    "lower left": (0, 2),
    "bottom": (1, 2),
    "lower right": (2, 2),
}
# How a position is written in a sentence; BBC text uses "centre", Wikipedia "center".
POSITION_PHRASES = {
    "upper left": "in the upper left",
    "top": "at the top",
    "upper right": "in the upper right",
    "left": "on the left side",
    "centre": "in the centre",
    "right": "on the right side",
    "lower left": "in the lower left",
    "bottom": "at the bottom",
    "lower right": "in the lower right",
}

_POSITION_RE = re.compile(
    r"\b(in the upper left|in the upper right|in the lower left|in the lower right|"
    r"at the top|at the bottom|on the left side|on the right side|in the cent(?:re|er))\b",
    re.IGNORECASE,
)
_PHRASE_TO_POSITION = {v: k for k, v in POSITION_PHRASES.items()} | {"in the center": "centre"}
_COLOUR_RE = re.compile(r"\b(" + "|".join([*COLOURS, *COLOUR_ALIASES]) + r")\b", re.IGNORECASE)
_SHAPE_RE = re.compile(r"\b(" + "|".join(SHAPES) + r")s?\b", re.IGNORECASE)
_SIZE_RE = re.compile(r"\b(small|large)\b", re.IGNORECASE)

# Geometry, in shares of the image side. Radii are drawn per class: the salient
# object from SALIENT_RADIUS, the others from LARGE_RADIUS or SMALL_RADIUS, so the
# salient one is >= 1.3x any other and "small" ends 2.4 model pixels below "large"
# at 96 px; with the margin and the jitter no two objects overlap and none leaves
# the frame.
GRID_MARGIN = 0.03  # the 3 x 3 grid of positions spans [margin, 1 - margin] of the side
CENTRE_JITTER = 0.04  # an object's centre moves at most this share of a grid cell
SALIENT_RADIUS = (0.15, 0.16)
LARGE_RADIUS = (0.10, 0.115)
SMALL_RADIUS = (0.06, 0.075)
FILL_JITTER = 15  # per RGB channel around the colour's value
GRADIENT_DEPTH = 25  # the gradient texture darkens the background by up to this, never an object

CMI_RULES = ("unrelated", "caption-like", "partial")
SC_RULES = ("unrelated", "salient contradicted", "salient correct", "details only")


@dataclass(frozen=True)
class SceneObject:
    shape: str
    colour: str
    size: str  # small | large
    position: str  # a key of POSITIONS
    radius: int  # pixels at the rendered size; the largest is the salient object


@dataclass(frozen=True)
class Scene:
    objects: tuple[SceneObject, ...]  # sorted by radius, largest (salient) first
    background: tuple[int, int, int]
    texture: str  # stripes | dots | gradient

    @property
    def salient(self) -> SceneObject:
        return self.objects[0]

    def at(self, position: str) -> SceneObject | None:
        for o in self.objects:
            if o.position == position:
                return o
        return None

    @classmethod
    def from_json(cls, data: dict) -> Scene:
        objects = tuple(SceneObject(**o) for o in data["objects"])
        return cls(objects, tuple(data["background"]), data["texture"])

    def to_json(self) -> dict:
        return {
            "objects": [asdict(o) for o in self.objects],
            "background": list(self.background),
            "texture": self.texture,
        }


@dataclass(frozen=True)
class Claim:
    """What one mention sentence says: an object of this look at this position."""

    size: str
    colour: str
    shape: str
    position: str


# --------------------------------------------------------------------------- scenes


def random_scene(
    rng: np.random.Generator,
    n_objects: int,
    px: int,
    avoid: frozenset[str] | set[str] = frozenset(),
) -> Scene:
    """A scene of ``n_objects`` objects at distinct positions outside ``avoid``."""
    free = [p for p in POSITIONS if p not in avoid]
    if n_objects > len(free):
        raise ValueError(f"{n_objects} objects do not fit in {len(free)} free positions")
    positions = [free[i] for i in rng.permutation(len(free))[:n_objects]]
    large = rng.random(n_objects) < 0.5
    large[0] = True  # the first drawn is the salient object
    radii = []
    for k in range(n_objects):
        lo, hi = SALIENT_RADIUS if k == 0 else LARGE_RADIUS if large[k] else SMALL_RADIUS
        radii.append(round(px * (lo + (hi - lo) * rng.random())))
    objects = []
    for k in range(n_objects):
        objects.append(
            SceneObject(
                shape=SHAPES[int(rng.integers(len(SHAPES)))],
                colour=list(COLOURS)[int(rng.integers(len(COLOURS)))],
                size="large" if large[k] else "small",
                position=positions[k],
                radius=radii[k],
            )
        )
    objects.sort(key=lambda o: -o.radius)  # stable: equal non-salient radii keep their draw order
    bg = tuple(int(v) for v in rng.integers(200, 250, size=3))
    texture = ("stripes", "dots", "gradient")[int(rng.integers(3))]
    return Scene(tuple(objects), bg, texture)


def _polygon(shape: str, cx: float, cy: float, r: float, turn: float) -> list[tuple[float, float]]:
    if shape == "square":
        k, start = 4, math.pi / 4
    elif shape == "triangle":
        k, start = 3, -math.pi / 2
    elif shape == "diamond":
        k, start = 4, 0.0
    elif shape == "hexagon":
        k, start = 6, 0.0
    elif shape == "star":
        pts = []
        for i in range(10):
            a = -math.pi / 2 + turn + i * math.pi / 5
            rr = r if i % 2 == 0 else r * 0.45
            pts.append((cx + rr * math.cos(a), cy + rr * math.sin(a)))
        return pts
    else:
        raise ValueError(shape)
    return [
        (
            cx + r * math.cos(start + turn + i * 2 * math.pi / k),
            cy + r * math.sin(start + turn + i * 2 * math.pi / k),
        )
        for i in range(k)
    ]


def grid_centre(position: str, px: int) -> tuple[float, float]:
    """Where an object at ``position`` is centred before its jitter, in pixels."""
    col, row = POSITIONS[position]
    cell = px * (1 - 2 * GRID_MARGIN) / 3
    return px * GRID_MARGIN + (col + 0.5) * cell, px * GRID_MARGIN + (row + 0.5) * cell


def _background(scene: Scene, px: int, rng: np.random.Generator) -> Image.Image:
    img = Image.new("RGB", (px, px), scene.background)
    draw = ImageDraw.Draw(img)
    darker = tuple(max(0, c - 18) for c in scene.background)
    if scene.texture == "stripes":
        step = int(rng.integers(6, 14))
        for x in range(-px, px, step):
            draw.line([(x, 0), (x + px, px)], fill=darker, width=2)
    elif scene.texture == "dots":
        for _ in range(px // 2):
            x, y = rng.integers(0, px, size=2)
            draw.ellipse([x - 1, y - 1, x + 1, y + 1], fill=darker)
    elif scene.texture == "gradient":
        arr = np.asarray(img, dtype=np.float32)
        arr = arr - np.linspace(0, GRADIENT_DEPTH, px, dtype=np.float32)[None, :, None]
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    return img


def render_scene(scene: Scene, px: int, rng: np.random.Generator, quality: int = 88) -> bytes:
    """Draw the scene as an RGB JPEG of ``px``×``px``: textured background,
    jittered objects, Gaussian pixel noise. Same scene and generator state →
    same bytes."""
    img = _background(scene, px, rng)
    draw = ImageDraw.Draw(img)
    jitter = CENTRE_JITTER * px * (1 - 2 * GRID_MARGIN) / 3
    for o in sorted(scene.objects, key=lambda o: -o.radius):
        x0, y0 = grid_centre(o.position, px)
        cx = x0 + rng.uniform(-jitter, jitter)
        cy = y0 + rng.uniform(-jitter, jitter)
        fill = tuple(
            int(np.clip(c + rng.integers(-FILL_JITTER, FILL_JITTER + 1), 0, 255))
            for c in COLOURS[o.colour]
        )
        r = o.radius
        if o.shape == "circle":
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
        else:
            turn = float(rng.uniform(-0.15, 0.15))
            draw.polygon(_polygon(o.shape, cx, cy, r, turn), fill=fill)
    arr = np.asarray(img, dtype=np.float32)
    arr = arr + rng.normal(0.0, 6.0, size=arr.shape).astype(np.float32)
    out = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    buf = io.BytesIO()
    out.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


# --------------------------------------------------------------------------- claims


def parse_claim(sentence: str) -> Claim | None:
    """The claim of a mention sentence, or None for any other sentence.

    A sentence is a mention when it contains a position phrase ("in the upper
    left", "at the top", "in the centre"/"center"…); it must then name exactly
    one size, colour and shape.
    """
    pos = _POSITION_RE.findall(sentence)
    if not pos:
        return None
    colours = {COLOUR_ALIASES.get(c.lower(), c.lower()) for c in _COLOUR_RE.findall(sentence)}
    shapes = {s.lower() for s in _SHAPE_RE.findall(sentence)}
    sizes = {s.lower() for s in _SIZE_RE.findall(sentence)}
    if len(pos) != 1 or len(colours) != 1 or len(shapes) != 1 or len(sizes) != 1:
        raise ValueError(
            f"not a well-formed mention (one position, size, colour, shape): {sentence!r}"
        )
    return Claim(sizes.pop(), colours.pop(), shapes.pop(), _PHRASE_TO_POSITION[pos[0].lower()])


def verdict(scene: Scene, claim: Claim) -> str:
    """``correct``, ``contradicting`` or ``absent`` (see the module docstring)."""
    obj = scene.at(claim.position)
    if obj is None:
        return "absent"
    same = (obj.size, obj.colour, obj.shape) == (claim.size, claim.colour, claim.shape)
    return "correct" if same else "contradicting"


@dataclass(frozen=True)
class Labels:
    cmi: float
    sc: float
    cmi_rule: str
    sc_rule: str
    coverage: float
    focus: float


def label_claims(scene: Scene, claims: list[Claim | None]) -> Labels:
    """Apply the label rules to a text given as one claim (or None) per sentence."""
    n_sent = len(claims)
    mentioned: dict[str, str] = {}  # position -> "correct" | "contradicting"
    n_mention_sentences = 0
    for c in claims:
        if c is None:
            continue
        v = verdict(scene, c)
        if v == "absent":
            continue
        n_mention_sentences += 1
        if mentioned.get(c.position) != "contradicting":
            mentioned[c.position] = v
    if not mentioned:
        return Labels(0.0, 0.0, "unrelated", "unrelated", 0.0, 0.0)
    coverage = len(mentioned) / len(scene.objects)
    focus = n_mention_sentences / n_sent
    if coverage == 1 and focus == 1:
        cmi, cmi_rule = 1.0, "caption-like"
    else:
        cmi = 0.25 + 0.25 * (coverage == 1) + 0.25 * (focus >= 0.5)
        cmi_rule = "partial"
    salient = mentioned.get(scene.salient.position)
    any_contradicted = "contradicting" in mentioned.values()
    if salient == "contradicting":
        sc = -1.0 if all(v == "contradicting" for v in mentioned.values()) else -0.5
        sc_rule = "salient contradicted"
    elif salient == "correct":
        sc = 0.5 if any_contradicted else 1.0
        sc_rule = "salient correct"
    else:
        sc = 0.0 if any_contradicted else 0.5
        sc_rule = "details only"
    return Labels(cmi, sc, cmi_rule, sc_rule, coverage, focus)


def label_sentences(scene: Scene, sentences: list[str]) -> Labels:
    """The labels of a text (its sentences, titles excluded) for a scene."""
    return label_claims(scene, [parse_claim(s) for s in sentences])


# --------------------------------------------------------------------------- counterfactuals

def counterfactual(scene: Scene, sentences: list[str], rng: np.random.Generator) -> tuple[list[str], Labels] | None:
    """The same text with one correctly described object's colour or shape changed.

    Picks a sentence whose mention is *correct* for ``scene``, swaps its colour
    (or, every other time, its shape) for another one, and returns the new
    sentences with their labels, or None when no mention is correct or the
    rules give the same (CMI, SC) cell after the change. A model that reads the
    image must change its prediction with the label; one that reads only the
    text sees a text that looks just as plausible.
    """
    claims = []
    for s in sentences:
        try:
            claims.append(parse_claim(s))
        except ValueError:
            claims.append(None)
    correct = [i for i, c in enumerate(claims) if c is not None and verdict(scene, c) == "correct"]
    if not correct:
        return None
    before = label_claims(scene, claims)
    for i in rng.permutation(correct):
        c = claims[int(i)]
        if rng.random() < 0.5:
            new = str(rng.choice([k for k in COLOURS if k != c.colour]))
            pattern = re.compile(r"\b(" + "|".join([*COLOURS, *COLOUR_ALIASES]) + r")\b", re.IGNORECASE)
        else:
            new = str(rng.choice([k for k in SHAPES if k != c.shape]))
            pattern = re.compile(r"\b(" + "|".join(SHAPES) + r")\b", re.IGNORECASE)
        changed = list(sentences)
        changed[int(i)] = pattern.sub(new, sentences[int(i)], count=1)
        after = label_sentences(scene, changed)
        if (after.cmi, after.sc) != (before.cmi, before.sc):
            return changed, after
    return None


# --------------------------------------------------------------------------- truth file


def read_scenes(path: str | Path) -> dict[str, Scene]:
    """pair_id -> Scene from the sample world's ``scenes.jsonl`` (rows without a pair are
    skipped; an empty file means no ground truth, as for real corpora)."""
    path = Path(path)
    out = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise CmiscError(f"{path}: cannot read the ground-truth scenes ({e})") from e
    for n, line in enumerate(lines, 1):
        try:
            d = json.loads(line)
            if d.get("pair_id"):
                out[d["pair_id"]] = Scene.from_json(d["scene"])
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise CmiscError(f"{path}:{n}: not a scene record ({e})") from e
    return out


def sentences_of(row: dict) -> list[str]:
    """The labelled sentences of a pairs row (titles are not labelled text)."""
    return [s for block in row["text_blocks"] for s in block["sentences"]]
