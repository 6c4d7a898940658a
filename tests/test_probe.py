"""Linear probes of what the image features know (cmisc_model/evaluation/probe.py)."""

from __future__ import annotations

import numpy as np

from cmisc_model.evaluation.probe import region_probe, region_targets
from cmisc_model.sample_world import scenes as S


def test_region_targets_follow_the_encoders_row_major_grid():
    objs = (S.SceneObject("star", "red", "large", "upper right", 24),
            S.SceneObject("circle", "blue", "small", "lower left", 12))
    cells = region_targets(S.Scene(objs, (240, 240, 240), "dots"))
    # the encoder flattens a (C, 3, 3) map: index = row * 3 + column
    assert cells[2].shape == "star" and cells[6].shape == "circle"
    assert sum(c is not None for c in cells) == 2


def test_region_probe_finds_what_the_features_hold_and_not_what_they_lack():
    """Region vectors that carry colour and size but no shape: the colour and size probes
    are near perfect, the shape probe stays near the majority rate."""
    rng = np.random.default_rng(0)
    colours = list(S.COLOURS)
    scenes, regions, rows = {}, {}, []
    for i in range(300):
        scene = S.random_scene(rng, int(rng.integers(1, 5)), 160)
        vecs = rng.normal(0, 0.1, size=(9, 16))
        for k, o in enumerate(region_targets(scene)):
            if o is not None:
                vecs[k, 0] += 1.0
                vecs[k, 1 + colours.index(o.colour)] += 1.0
                vecs[k, 11] += o.size == "large"
        pid = f"p{i}"
        scenes[pid], regions[pid] = scene, vecs
        rows.append({"pair_id": pid, "split": "train" if i < 240 else "test"})
    out = region_probe(regions, rows, scenes)
    assert out["occupied"]["region"] > 0.97
    assert out["colour"]["region"] > 0.95
    assert out["size"]["region"] > 0.95
    assert out["shape"]["region"] < out["shape"]["majority"] + 0.15
    assert out["colour"]["n_test"] == sum(len(scenes[f"p{i}"].objects) for i in range(240, 300))
