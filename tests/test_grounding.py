"""Grounding and evidence pooling: the parts of the model that make it read the image."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from cmisc_model.models.autoencoder import Autoencoder
from cmisc_model.models.classifier import Classifier
from cmisc_model.models.config import ClassifierConfig
from cmisc_model.models.encoders import ArticleEncoder, EncodedParts
from cmisc_model.text.normalise import TextConfig, TextNormaliser
from cmisc_model.training.data import AutoencoderDataset, collate
from cmisc_model.training.grounding import ground
from tests.test_models import make_batch, tiny_config

# one word per cell, row by row (compass names: the tokeniser would split "upper left")
CELLS = ["nw", "north", "ne", "west", "centre", "east", "sw", "south", "se"]
COLOURS = {"red": (220, 30, 30), "blue": (30, 60, 220)}


def world(tmp_path, n: int = 64, seed: int = 0):
    """n 48 x 48 images, each one coloured square in one of the 9 cells, and a
    one-sentence text that says which colour is where ("red square nw")."""
    rng = np.random.default_rng(seed)
    vocab = {"<pad>": 0, "<unk>": 1, "square": 2, **{c: 3 + i for i, c in enumerate(CELLS)},
             "red": 12, "blue": 13}
    rows = []
    for i in range(n):
        cell, colour = int(rng.integers(9)), str(rng.choice(list(COLOURS)))
        img = np.full((48, 48, 3), 235, np.uint8)
        r, c = divmod(cell, 3)
        img[r * 16 + 3 : r * 16 + 13, c * 16 + 3 : c * 16 + 13] = COLOURS[colour]
        path = tmp_path / f"{i}.png"
        Image.fromarray(img).save(path)
        text = f"{colour} square {CELLS[cell]}"
        rows.append({"pair_id": str(i), "image_path": str(path), "source": "coco", "cell": cell,
                     "text_blocks": [{"titles": [], "sentences": [text]}]})
    normaliser = TextNormaliser(TextConfig(include_titles=False))
    ds = AutoencoderDataset(rows, vocab, normaliser, 48, train=False, resize_factor=1.0)
    return rows, vocab, ds


def test_grounding_teaches_each_position_word_its_region_and_leaves_the_image_encoder_alone(tmp_path):
    torch.manual_seed(0)
    _, vocab, ds = world(tmp_path)
    model = Autoencoder(tiny_config(vocab_size=len(vocab), image_size=48))
    cnn_before = {k: v.clone() for k, v in model.encoder.image.state_dict().items()}
    before = ground(model, ds, 1, 16, 0.0, 0, torch.device("cpu"))  # lr 0: the untrained matching
    after = ground(model, ds, 60, 16, 0.01, 0, torch.device("cpu"))
    # chance is 1/16; 18 (cell, colour) texts, so a batch may hold two that say the same
    assert before["accuracy"] < 0.3
    assert after["accuracy"] > 0.45, after
    assert after["loss"] < before["loss"]
    for k, v in model.encoder.image.state_dict().items():
        assert torch.equal(v, cnn_before[k]), f"grounding changed the image encoder ({k})"
    # every position word now looks at its own cell
    look, _ = model.encoder.ground(torch.tensor([[[vocab[c]]] for c in CELLS]))
    assert look[:, 0].argmax(dim=1).tolist() == list(range(9))


def test_evidence_head_reads_the_regions_and_the_2017_head_does_not_have_one():
    model = Classifier(ArticleEncoder(tiny_config()), ClassifierConfig(evidence_dim=8, article_in_head=False)).eval()
    images, tokens = make_batch()
    parts = model.encoder.encode_parts(images, tokens)
    out = model.from_parts(parts)
    # the same texts with other regions (the image behind the evidence) score differently
    other = parts._replace(regions=parts.regions.roll(1, dims=0))
    moved = model.from_parts(other)
    assert not torch.allclose(out.cmi_logits[:3], moved.cmi_logits[:3])
    # pads: a text's evidence does not depend on how far its sentences are padded
    def pad(t):  # one more (pad) sentence on dim 1
        return torch.cat([t, t.new_zeros(t.shape[0], 1, *t.shape[2:])], dim=1)

    padded = EncodedParts(parts.image, parts.regions, pad(parts.sentences), pad(parts.sentence_mask),
                          pad(parts.look), pad(parts.claim), pad(parts.fit))
    assert torch.allclose(model.from_parts(padded).sc_logits, out.sc_logits, atol=1e-5)
    paper = Classifier(ArticleEncoder(tiny_config()), ClassifierConfig(evidence_dim=0))
    assert paper.evidence is None and paper.cmi_head.in_features == ClassifierConfig().hidden_dim


def test_region_word_prediction_teaches_the_regions_what_the_texts_say_is_there(tmp_path):
    """After grounding (sentences look at their cell), predicting each sentence's words from
    that cell makes the regions say which colour stands there, and the sentence fit then
    tells a right colour word from a wrong one, which the classifier reads."""
    torch.manual_seed(0)
    rows, vocab, ds = world(tmp_path)
    model = Autoencoder(tiny_config(vocab_size=len(vocab), image_size=48))
    ground(model, ds, 60, 16, 0.01, 0, torch.device("cpu"))
    batch = collate([ds[i] for i in range(len(ds))])
    images, tokens = batch["images"], batch["tokens"]  # (64, 3, 48, 48), (64, 1, T)
    swapped = tokens.clone()  # the same texts with the other colour word
    red, blue = vocab["red"], vocab["blue"]
    swapped[tokens == red], swapped[tokens == blue] = blue, red
    model.eval()  # no dropout: compare fits, not noise

    def fit_gap() -> float:
        with torch.no_grad():
            right = model.encoder.encode_parts(images, tokens).fit[:, 0, 0]  # (64,) mean gain
            wrong = model.encoder.encode_parts(images, swapped).fit[:, 0, 0]
        return float((right - wrong).mean())

    before = fit_gap()
    params = [*model.encoder.image.parameters(), *model.encoder.region_words.parameters(),
              *model.encoder.word_context.parameters()]
    optimizer = torch.optim.AdamW(params, lr=0.01)
    for _ in range(60):
        loss = model.region_words(model.encoder.encode_parts(images, tokens), tokens)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert fit_gap() > before + 0.2, (before, fit_gap())
    assert colour_named(model, rows, vocab, batch) > 0.9  # the square's region now names its colour


def colour_named(model, rows: list, vocab: dict, batch: dict) -> float:
    """Share of the world's images whose square's region has "red" or "blue", whichever is right,
    as its likelier word."""
    with torch.no_grad():
        regions = model.encoder.encode_parts(batch["images"], batch["tokens"]).regions  # (64, 9, D)
        logits = model.encoder.region_words(regions)[..., [vocab["red"], vocab["blue"]]]  # (64, 9, 2)
    cells = torch.tensor([r["cell"] for r in rows])
    said = logits[torch.arange(len(rows)), cells].argmax(dim=1)  # 0 red, 1 blue
    truth = torch.tensor([int(r["text_blocks"][0]["sentences"][0].startswith("blue")) for r in rows])
    return float((said == truth).float().mean())
