"""The decidability audit: the generated world leaves no label to chance, and
the audit does flag scenes whose labels the model's input cannot decide."""

from __future__ import annotations

import json

import pytest

from cmisc_model.config import load_params
from cmisc_model.sample_world import audit as A
from cmisc_model.sample_world import scenes as S
from cmisc_model.sample_world.world import SampleConfig, generate

VIEW = A.View(px=160, image_size=96, resize_factor=1.0)


def _obj(shape, colour, size, position, radius):
    return S.SceneObject(shape, colour, size, position, radius)


def _mention(o: S.SceneObject) -> str:
    return f"A {o.size} {o.colour} {o.shape} is shown {S.POSITION_PHRASES[o.position]}."


def test_every_object_of_the_generated_world_is_decidable_at_the_params_view(tmp_path):
    generate(tmp_path / "w", 3, "small", SampleConfig())
    scenes = [S.Scene.from_json(json.loads(line)["scene"])
              for line in (tmp_path / "w" / "scenes.jsonl").read_text().splitlines()]
    view = A.view_from_params(load_params("params.yaml"))
    assert view == VIEW
    bounds = A.size_bounds(scenes)
    problems = [(scene, o, A.scene_reasons(scene, view) | A.object_reasons(scene, o, view, bounds))
                for scene in scenes for o in scene.objects]
    assert len(problems) > 400
    assert [p for p in problems if p[2]] == []


def test_a_salient_object_barely_larger_than_the_next_is_undecidable():
    a = _obj("circle", "red", "large", "upper left", 24)
    b = _obj("square", "blue", "large", "lower right", 23)
    scene = S.Scene((a, b), (240, 240, 240), "dots")
    status, why = A.pair_status(scene, [_mention(a)], VIEW, {"small": (10, 12), "large": (16, 26)})
    assert (status, why) == ("undecidable", {"salience"})
    clear = S.Scene((a, S.SceneObject(b.shape, b.colour, b.size, b.position, 18)), scene.background, "dots")
    assert A.pair_status(clear, [_mention(a)], VIEW, {"small": (10, 12), "large": (16, 26)}) == ("image", set())


@pytest.mark.parametrize("factor, radius, want", [(1.0, 26, set()), (1.15, 26, {"crop"}), (1.0, 31, {"crop"})])
def test_an_object_the_crop_or_the_frame_can_cut_is_undecidable(factor, radius, want):
    o = _obj("circle", "green", "large", "left", radius)
    scene = S.Scene((o,), (240, 240, 240), "dots")
    _, why = A.pair_status(scene, [_mention(o)], A.View(160, 96, factor), {"large": (16, 31)})
    assert why == want


def test_overlap_size_gap_and_tiny_objects_are_flagged():
    big = _obj("circle", "red", "large", "left", 26)
    near = _obj("square", "blue", "large", "centre", 22)
    scene = S.Scene((big, near), (240, 240, 240), "dots")
    assert "occlusion" in A.object_reasons(scene, near, VIEW, {"small": (10, 12), "large": (16, 26)})
    small = _obj("star", "black", "small", "lower right", 15)  # 15 px is within 2 model px of "large" 16
    assert "size" in A.object_reasons(scene, small, VIEW, {"small": (10, 15), "large": (16, 26)})
    tiny = _obj("star", "black", "small", "lower right", 7)
    assert "tiny" in A.object_reasons(scene, tiny, VIEW, {"small": (7, 12), "large": (16, 26)})


def test_text_without_a_mention_is_decided_by_the_text_and_the_table_counts_it():
    o = _obj("circle", "red", "large", "centre", 25)
    scene = S.Scene((o,), (240, 240, 240), "dots")
    pairs = [(scene, ["The town hall was built in 1870."]), (scene, [_mention(o)])]
    result = A.audit(pairs, VIEW)
    assert result["total"] == {"n": 2, "text": 1, "image": 1}
    md = A.audit_markdown(result)
    assert "| CMI unrelated 0 | 1 | 100.0% | 0.0% | 0.0% | — |" in md
    assert "| SC salient correct 1 | 1 | 0.0% | 100.0% | 0.0% | — |" in md
