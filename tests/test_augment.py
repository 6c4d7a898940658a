"""Every training augmentation leaves the (CMI, SC) label true.

The labels of the sample world depend on where objects are ("in the upper
left"), so a horizontal flip must mirror the text with the image, and a random
crop must keep every object in its third of the image. These tests render real
scenes, run them through the training dataset (random crop + flip) many times,
find each object in the augmented image by its colour, rebuild the scene the
augmented image shows, and apply the generator's label rules to the augmented
text: the labels must equal the original ones.
"""

from __future__ import annotations

import numpy as np
import pytest

from cmisc_model.sample_world import scenes as S
from cmisc_model.text.normalise import TextConfig, TextNormaliser
from cmisc_model.training.data import AutoencoderDataset

# Colours far from the light, textured backgrounds, so a colour mask finds the object.
DISTINCT = ("red", "blue", "green", "black", "purple")
COLUMNS = {0: "left", 1: "centre", 2: "right"}


def mention(o: S.SceneObject, position: str | None = None, colour: str | None = None) -> str:
    return f"A {o.size} {colour or o.colour} {o.shape} is shown {S.POSITION_PHRASES[position or o.position]}."


def make_pair(seed: int, tmp_path):
    rng = np.random.default_rng(seed)
    scene = S.random_scene(rng, 3, 160)
    colours = rng.permutation(DISTINCT)[:3]
    scene = S.Scene(tuple(S.SceneObject(o.shape, str(c), o.size, o.position, o.radius)
                          for o, c in zip(scene.objects, colours)), scene.background, scene.texture)
    empty = next(p for p in S.POSITIONS if scene.at(p) is None)
    sentences = [
        mention(scene.objects[0]),                                   # correct (salient)
        mention(scene.objects[1], colour="orange"),                  # contradicting
        mention(scene.objects[2], position=empty),                   # absent
        "The town hall was built in 1870.",                          # filler
    ]
    path = tmp_path / f"{seed}.jpg"
    path.write_bytes(S.render_scene(scene, 160, rng))
    return scene, sentences, str(path)


def cell_of(image, colour: str) -> tuple[int, int]:
    """(column, row) third of the image where ``colour``'s pixels are centred."""
    rgb = ((image.permute(1, 2, 0).numpy() + 1) * 127.5)
    mask = np.abs(rgb - np.array(S.COLOURS[colour])).max(axis=2) < 40
    assert mask.sum() > 10, f"{colour} object not found"
    ys, xs = np.nonzero(mask)
    side = image.shape[1]
    return int(xs.mean() * 3 // side), int(ys.mean() * 3 // side)


@pytest.mark.parametrize("seed", range(6))
def test_crop_and_flip_keep_the_labels(seed, tmp_path):
    scene, sentences, path = make_pair(seed, tmp_path)
    norm = TextNormaliser(TextConfig())
    tokens = sorted({t for s in sentences for t in norm.tokens(s)} | {"left", "right"})  # as in any real vocabulary
    vocab = {"<pad>": 0, "<unk>": 1, **{t: i + 2 for i, t in enumerate(tokens)}}
    inverse = {i: t for t, i in vocab.items()}
    row = {"pair_id": "p", "source": "simplewiki", "image_path": path, "image_status": "ok",
           "text_blocks": [{"titles": [], "sentences": sentences}]}
    want = S.label_sentences(scene, sentences)
    name_of = {v: k for k, v in S.POSITIONS.items()}
    flips = 0
    for epoch in range(12):
        ds = AutoencoderDataset([row], vocab, norm, image_size=96, train=True, seed=seed)
        ds.set_epoch(epoch)
        item = ds[0]
        text = [" ".join(inverse[i] for i in sentence) for sentence in item["ids"]]
        seen = []
        for o in scene.objects:
            col, r = cell_of(item["image"], o.colour)
            seen.append(S.SceneObject(o.shape, o.colour, o.size, name_of[(col, r)], o.radius))
            orig_col, orig_row = S.POSITIONS[o.position]
            # the object stays in its third, mirrored when the image was
            assert r == orig_row
            assert col in (orig_col, 2 - orig_col)
        augmented = S.Scene(tuple(seen), scene.background, scene.texture)
        flips += augmented != scene
        got = S.label_sentences(augmented, text)
        assert (got.cmi, got.sc, got.cmi_rule, got.sc_rule) == (want.cmi, want.sc, want.cmi_rule, want.sc_rule)
    assert flips > 0  # the flip did happen (unless every object sat in the centre column)


def test_flip_without_mirrored_text_would_change_labels(tmp_path):
    """The check above can fail: mirroring only the image changes the label of a left/right mention."""
    obj = S.SceneObject("circle", "red", "large", "upper left", 24)
    scene = S.Scene((obj,), (240, 240, 240), "dots")
    mirrored = S.Scene((S.SceneObject("circle", "red", "large", "upper right", 24),), scene.background, "dots")
    sentences = [mention(obj)]
    assert S.label_sentences(scene, sentences) != S.label_sentences(mirrored, sentences)
