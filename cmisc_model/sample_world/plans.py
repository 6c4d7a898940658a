"""Which (CMI, SC) cell a pair gets, and the plan of mentions that earns it.

The per-source tables split the paper's Tables 1 and 2 into a news part and
a SimpleWiki part (see ``world``). ``allocate_cells`` hands out the labelled
cells exactly, ``draw_cell`` draws an unlabelled pair's cell, and
``make_plan`` decides, per depicted object, whether the text describes it
correctly, wrongly or not at all, and how much of the text is about the image,
so that the label rules (``scenes.label_sentences``) give the planned cell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
