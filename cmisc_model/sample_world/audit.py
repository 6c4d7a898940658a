"""Which labels of the sample world can be decided from what the model is fed.

A labelled pair is, for the label rules of ``scenes``:

- ``text``: decidable from the text alone. A text without a mention sentence
  shares nothing with any image, so its labels are (0, 0) whatever it shows.
- ``image``: the labels depend on the image, and everything they depend on
  is visible at the model's input resolution.
- ``undecidable``: the labels depend on something the model's input cannot
  show, for one of these reasons (several may hold):

  ``salience``  the salient object is not clearly the largest: its radius is
                less than ``MIN_GAP_PX`` model pixels above the next one;
  ``size``      a mentioned object's radius lies less than ``MIN_GAP_PX`` model
                pixels from the radii of the other size word in the same world;
  ``tiny``      a mentioned object is under ``MIN_RADIUS_PX`` model pixels;
  ``colour``    under the worst fill jitter a mentioned object's colour comes
                within ``MIN_COLOUR_MARGIN`` (RGB distance) of another colour's;
  ``occlusion`` another object can overlap a mentioned one under the worst jitter;
  ``crop``      the training crop (``resize_factor``) can cut a mentioned or the
                salient object at the frame.

Every bound is the worst case over the generator's jitter (``scenes.CENTRE_JITTER``,
``scenes.FILL_JITTER``), so "decidable" holds for every rendering of the scene.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from cmisc_model.sample_world import scenes as S

MIN_GAP_PX = 2.0  # model pixels between radii that a label must tell apart
MIN_RADIUS_PX = 5.0  # model pixels: below this a shape is a blob
MIN_COLOUR_MARGIN = 10.0  # RGB: nearest other colour at least this much farther than the own
STATUSES = ("text", "image", "undecidable")
REASONS = ("salience", "size", "tiny", "colour", "occlusion", "crop")


@dataclass(frozen=True)
class View:
    """How the model sees a sample-world image: the rendered side ``px``, the
    model's ``image_size`` and the ``resize_factor`` of its crop."""

    px: int = 160
    image_size: int = 96
    resize_factor: float = 1.0

    @property
    def scale(self) -> float:
        """Model pixels per rendered pixel."""
        return max(self.image_size, round(self.resize_factor * self.image_size)) / self.px

    @property
    def crop_slack(self) -> float:
        """Rendered pixels a random training crop may take from one side."""
        short = max(self.image_size, round(self.resize_factor * self.image_size))
        return (short - self.image_size) / self.scale


def _colour_margin(colour: str) -> float:
    """Worst (nearest other − own) RGB distance over the fill jitter's corners."""
    names = list(S.COLOURS)
    table = np.array([S.COLOURS[n] for n in names], dtype=float)
    own = names.index(colour)
    worst = math.inf
    for d in itertools.product((-S.FILL_JITTER, S.FILL_JITTER), repeat=3):
        x = np.clip(table[own] + np.array(d), 0, 255)
        dist = np.linalg.norm(table - x, axis=1)
        worst = min(worst, float(np.delete(dist, own).min() - dist[own]))
    return worst


def _can_overlap(a: S.SceneObject, b: S.SceneObject, px: int) -> bool:
    jitter = S.CENTRE_JITTER * px * (1 - 2 * S.GRID_MARGIN) / 3
    (ax, ay), (bx, by) = S.grid_centre(a.position, px), S.grid_centre(b.position, px)
    dx = max(0.0, abs(ax - bx) - 2 * jitter)
    dy = max(0.0, abs(ay - by) - 2 * jitter)
    return math.hypot(dx, dy) < a.radius + b.radius


def _can_be_cut(o: S.SceneObject, view: View) -> bool:
    jitter = S.CENTRE_JITTER * view.px * (1 - 2 * S.GRID_MARGIN) / 3
    lo, hi = view.crop_slack, view.px - view.crop_slack
    return any(c - jitter - o.radius < lo or c + jitter + o.radius > hi
               for c in S.grid_centre(o.position, view.px))


def size_bounds(scenes) -> dict[str, tuple[int, int]]:
    """Smallest and largest radius per size word over all objects of ``scenes``."""
    radii: dict[str, list[int]] = {"small": [], "large": []}
    for scene in scenes:
        for o in scene.objects:
            radii[o.size].append(o.radius)
    return {k: (min(v), max(v)) for k, v in radii.items() if v}


def object_reasons(scene: S.Scene, o: S.SceneObject, view: View, bounds: dict) -> set[str]:
    """Why ``o``'s look, as a mention checks it, may not be decidable in the model's input."""
    out = set()
    other = "small" if o.size == "large" else "large"
    if other in bounds:
        lo, hi = bounds[other]
        gap = o.radius - hi if o.size == "large" else lo - o.radius
        if gap * view.scale < MIN_GAP_PX:
            out.add("size")
    if o.radius * view.scale < MIN_RADIUS_PX:
        out.add("tiny")
    if _colour_margin(o.colour) < MIN_COLOUR_MARGIN:
        out.add("colour")
    if any(p is not o and _can_overlap(o, p, view.px) for p in scene.objects):
        out.add("occlusion")
    if _can_be_cut(o, view):
        out.add("crop")
    return out


def pair_status(scene: S.Scene, sentences: list[str], view: View, bounds: dict) -> tuple[str, set[str]]:
    """(status, reasons) of one labelled text against its scene (see the module docstring)."""
    claims = [S.parse_claim(s) for s in sentences]
    if all(c is None for c in claims):
        return "text", set()
    hits = {scene.at(c.position) for c in claims if c is not None} - {None}
    if not hits:  # every mentioned position is empty: nothing to tell apart
        return "image", set()
    reasons = scene_reasons(scene, view)
    for o in hits:
        reasons |= object_reasons(scene, o, view, bounds)
    return ("undecidable" if reasons else "image"), reasons


def scene_reasons(scene: S.Scene, view: View) -> set[str]:
    """Why the salient object may not be decidable: too close to the next in size, or cut."""
    out = set()
    if len(scene.objects) > 1:
        margin = scene.objects[0].radius - scene.objects[1].radius
        if margin * view.scale < MIN_GAP_PX:
            out.add("salience")
    if _can_be_cut(scene.salient, view):
        out.add("crop")
    return out


def audit(pairs: list[tuple[S.Scene, list[str]]], view: View) -> dict:
    """Counts per label rule and class: text / image / undecidable, and the reasons."""
    bounds = size_bounds(scene for scene, _ in pairs)
    groups: dict[str, Counter] = {}
    totals: Counter = Counter()
    for scene, sentences in pairs:
        lab = S.label_sentences(scene, sentences)
        status, reasons = pair_status(scene, sentences, view, bounds)
        keys = [f"CMI {lab.cmi_rule} {lab.cmi:g}", f"SC {lab.sc_rule} {lab.sc:g}"]
        for key in keys:
            g = groups.setdefault(key, Counter())
            g["n"] += 1
            g[status] += 1
            g.update(f"reason {r}" for r in reasons)
        totals["n"] += 1
        totals[status] += 1
        totals.update(f"reason {r}" for r in reasons)
    return {
        "view": {"px": view.px, "image_size": view.image_size, "resize_factor": view.resize_factor,
                 "scale": round(view.scale, 4), "crop_slack_px": round(view.crop_slack, 2)},
        "size_bounds": bounds,
        "total": dict(totals),
        "groups": {k: dict(v) for k, v in sorted(groups.items())},
    }


def audit_markdown(result: dict) -> str:
    """The audit as a Markdown table: per rule and class, shares of text / image / undecidable."""
    def row(name: str, c: dict) -> str:
        n = c.get("n", 0)
        share = [f"{c.get(s, 0) / n:.1%}" if n else "—" for s in STATUSES]
        why = ", ".join(f"{r} {c[f'reason {r}']}" for r in REASONS if c.get(f"reason {r}"))
        return f"| {name} | {n} | " + " | ".join(share) + f" | {why or '—'} |"

    v = result["view"]
    view = (f"Model input: {v['px']} px scenes seen at {v['image_size']} px "
            f"(resize factor {v['resize_factor']:g}, {v['scale']:g} model px per pixel, "
            f"a training crop takes up to {v['crop_slack_px']:g} px from a side).")
    lines = [
        view,
        "",
        "| rule and class | pairs | text alone | needs the image | undecidable | why undecidable (pairs) |",
        "|---|---|---|---|---|---|",
    ]
    lines += [row(k, c) for k, c in result["groups"].items()]
    lines.append(row("**all labelled pairs**", result["total"]))
    return "\n".join(lines) + "\n"


def labelled_pairs(rows: list[dict], scenes: dict[str, S.Scene]) -> list[tuple[S.Scene, list[str]]]:
    """(scene, sentences) of every labelled row whose scene is known (COCO's are not:
    its labels come from the coco stage, not from the rules)."""
    return [(scenes[r["pair_id"]], S.sentences_of(r)) for r in rows if r["pair_id"] in scenes]


def view_from_params(params: dict) -> View:
    """The model's view of the sample world as params.yaml sets it."""
    from cmisc_model.models.config import ModelConfig
    from cmisc_model.sample_world.world import SampleConfig
    from cmisc_model.training.data import DataConfig

    ae = params.get("autoencoder", {})
    return View(
        px=params.get("sample", {}).get("image_px", SampleConfig.image_px),
        image_size=ae.get("model", {}).get("image_size", ModelConfig.image_size),
        resize_factor=ae.get("data", {}).get("resize_factor", DataConfig.resize_factor),
    )


def cli_main(argv: list[str]) -> int:
    """``cmisc audit``: the decidability table of a labelled file against its scenes."""
    import argparse
    import json
    from pathlib import Path

    from cmisc_model import schemas as Sch
    from cmisc_model.config import load_params

    ap = argparse.ArgumentParser(prog="cmisc audit", description="which labels the model's input can decide")
    ap.add_argument("--labelled", type=Path, required=True, help="labelled.parquet from the corpus stage")
    ap.add_argument("--truth", type=Path, required=True, help="the sample world's scenes.jsonl")
    ap.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (image sizes, crop)")
    ap.add_argument("--out", type=Path, default=None, help="also write the counts as JSON here")
    args = ap.parse_args(argv)
    params = load_params(args.params) if args.params.exists() else {}
    rows = Sch.read_table(args.labelled, Sch.LABELLED).to_pylist()
    result = audit(labelled_pairs(rows, S.read_scenes(args.truth)), view_from_params(params))
    if args.out is not None:
        with Sch.atomic_path(args.out) as tmp:
            tmp.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(audit_markdown(result), end="")
    return 0
