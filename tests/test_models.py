"""The autoencoder and classifier models: shapes, padding, gradients, learning, loading."""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import torch.nn.functional as F

from cmisc_model.config import from_mapping, load_params
from cmisc_model.errors import CmiscError
from cmisc_model.models.autoencoder import Autoencoder, encoder_state_from_autoencoder
from cmisc_model.models.classifier import Classifier
from cmisc_model.models.config import ClassifierConfig, ModelConfig
from cmisc_model.models.decoders import upsample_sizes
from cmisc_model.models.encoders import ArticleEncoder, build_inception, load_word2vec
from cmisc_model.schemas import WORD2VEC, from_rows, write_table

ROOT = Path(__file__).resolve().parents[1]
VOCAB = 50


def tiny_config(**changes) -> ModelConfig:
    """Small enough for a CPU test to run in a second, same structure as the real model."""
    cfg = ModelConfig(
        vocab_size=VOCAB,
        embed_dim=16,
        sentence_dim=24,
        text_dim=32,
        image_dim=24,
        article_dim=40,
        image_size=32,
        small_cnn_channels=(8, 16),
        thumb_size=8,
        decoder_maps=(4, 4, 3),
    )
    return cfg.replace(**changes)


def make_batch(seed: int = 0):
    """4 samples: full, short, one sentence, and an empty text (all pads)."""
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(4, 3, 32, 32, generator=g) * 2 - 1
    tokens = torch.zeros(4, 3, 6, dtype=torch.long)
    tokens[0] = torch.randint(1, VOCAB, (3, 6), generator=g)
    tokens[1, 0, :4] = torch.randint(1, VOCAB, (4,), generator=g)
    tokens[1, 1, :2] = torch.randint(1, VOCAB, (2,), generator=g)
    tokens[2, 0, :5] = torch.randint(1, VOCAB, (5,), generator=g)
    # tokens[3] stays empty: zero real sentences
    return images, tokens


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# --------------------------------------------------------------------------- config

def test_params_yaml_equals_dataclass_defaults():
    params = load_params(ROOT / "params.yaml")
    assert from_mapping(ModelConfig, params["autoencoder"]["model"], "autoencoder.model") == ModelConfig()
    assert from_mapping(ClassifierConfig, params["classifier"]["model"], "classifier.model") == ClassifierConfig()


def test_paper_sizes_and_bad_config():
    paper = ModelConfig.paper(vocab_size=12600)
    assert (paper.sentence_dim, paper.text_dim, paper.image_dim, paper.article_dim) == (600, 2400, 600, 2400)
    assert (paper.image_encoder, paper.image_size) == ("inception_v3", 299)
    with pytest.raises(ValueError, match="image_dim"):
        ModelConfig(image_dim=100, sentence_dim=200)
    with pytest.raises(ValueError, match="vocab_size"):
        ArticleEncoder(ModelConfig())  # vocab_size not set from the vocabulary


# --------------------------------------------------------------------------- shapes and padding

def test_shapes():
    cfg = tiny_config()
    model = Autoencoder(cfg)
    images, tokens = make_batch()
    out = model(images, tokens)
    assert model.encode(images, tokens).shape == (4, cfg.article_dim)
    assert out.recon.shape == images.shape
    assert out.recon.abs().max() <= 1.0
    assert out.n_tokens == int((tokens != 0).sum())
    assert torch.isfinite(out.loss)
    assert torch.allclose(out.loss, out.text_loss + cfg.image_loss_weight * out.image_loss + cfg.matching_weight * out.match_loss)
    assert 0 < out.match_loss < 5  # image-text matching BCE (an empty text is left out of the sentence term)
    assert upsample_sizes(30, 300, 3) == [65, 139, 300]


def test_padding_does_not_change_the_article_embedding():
    model = Autoencoder(tiny_config()).eval()
    images, tokens = make_batch()
    more_tokens = F.pad(tokens, (0, 5))  # (B, S, T + 5)
    more_sentences = F.pad(tokens, (0, 0, 0, 4))  # (B, S + 4, T)
    both = F.pad(tokens, (0, 3, 0, 2))
    with torch.no_grad():
        ref = model.encode(images, tokens)
        ref_loss = model(images, tokens).loss
        for padded in (more_tokens, more_sentences, both):
            assert torch.allclose(model.encode(images, padded), ref, atol=1e-5)
            assert torch.allclose(model(images, padded).loss, ref_loss, atol=1e-5)
        # each sample alone gives what it gives in the batch
        alone = torch.cat([model.encode(images[i : i + 1], tokens[i : i + 1]) for i in range(4)])
        assert torch.allclose(alone, ref, atol=1e-5)


def test_empty_text_is_the_state_after_the_image_step():
    model = Autoencoder(tiny_config()).eval()
    enc = model.encoder
    images, tokens = make_batch()
    with torch.no_grad():
        article = enc(images[3:], tokens[3:])  # sample 3 has no sentence
        image = enc.image(images[3:])[0]  # (1, D_i)
        text, _ = enc.text_lstm(image.unsqueeze(1))  # one step, input = the image
        expected = F.relu(enc.fuse(torch.cat([text[:, 0], image], dim=1)))
    assert torch.allclose(article, expected, atol=1e-6)

    # a batch of empty texts only: no text loss, the image is still reconstructed
    out = model(images, torch.zeros(4, 2, 5, dtype=torch.long))
    assert out.n_tokens == 0 and out.text_loss.item() == 0.0
    cfg = model.cfg
    assert out.loss.item() == pytest.approx(cfg.image_loss_weight * out.image_loss.item()
                                            + cfg.matching_weight * out.match_loss.item())
    assert out.image_loss.item() > 0


# --------------------------------------------------------------------------- gradients

def assert_every_parameter_has_a_gradient(model: torch.nn.Module, unused: tuple[str, ...] = ()) -> None:
    missing = [n for n, p in model.named_parameters()
               if (p.grad is None or not p.grad.abs().sum() > 0) and not n.startswith(unused)]
    assert not missing, f"no gradient for {missing}"


def test_every_autoencoder_parameter_gets_a_gradient():
    # the tiny decoder has 4 maps per layer, so some inits (seed 0 here) leave a ReLU layer dead
    torch.manual_seed(1)
    model = Autoencoder(tiny_config()).train()
    with torch.no_grad():  # as after grounding: sentences look at one region, so region words count
        model.encoder.where.weight.mul_(100)
    images, tokens = make_batch()
    out = model(images, tokens)
    assert out.region_words_loss.item() > 0
    out.loss.backward()
    assert_every_parameter_has_a_gradient(model)


def test_region_word_prediction_counts_only_sentences_that_look_at_one_region():
    model = Autoencoder(tiny_config()).train()  # at init every sentence looks nearly everywhere
    images, tokens = make_batch()
    assert model(images, tokens).region_words_loss.item() == 0.0
    off = Autoencoder(tiny_config(region_words_weight=0.0))
    assert off.encoder.region_words is None and off(images, tokens).region_words_loss.item() == 0.0


def test_every_classifier_parameter_gets_a_gradient():
    model = Classifier(ArticleEncoder(tiny_config()), ClassifierConfig(article_in_head=True)).train()
    with torch.no_grad():  # sentences look at one region, so they have a word fit (region_words learns through it)
        model.encoder.where.weight.mul_(100)
    images, tokens = make_batch()
    out = model(images, tokens, torch.tensor([0, 1, 2, 4]), torch.tensor([4, 3, 2, 0]))
    out.loss.backward()
    # the words-beside expert serves the autoencoder's region word loss only
    assert_every_parameter_has_a_gradient(model, unused=("encoder.word_context.",))
    assert model.encoder.word_context.weight.grad is None


def test_frozen_image_encoder_gets_no_gradient_and_stays_in_eval_mode():
    model = Autoencoder(tiny_config(encoder_trainable=False)).train()
    images, tokens = make_batch()
    model(images, tokens).loss.backward()
    cnn = model.encoder.image.cnn
    assert all(p.grad is None for p in cnn.parameters())
    assert not any(m.training for m in cnn.modules())
    assert model.encoder.image.proj.weight.grad is not None  # the projection still learns


def test_logit_scale_is_learnable():
    cfg = tiny_config(logit_scale_init=10.0)
    model = Autoencoder(cfg)
    assert model.text_decoder.logit_scale.item() == pytest.approx(10.0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    images, tokens = make_batch()
    model(images, tokens).loss.backward()
    assert model.text_decoder.log_scale.grad.abs() > 0
    opt.step()
    assert model.text_decoder.logit_scale.item() != pytest.approx(10.0, abs=1e-6)


def test_text_loss_uses_token_ids_and_never_predicts_pad():
    model = Autoencoder(tiny_config()).eval()
    dec, emb = model.text_decoder, model.encoder.embed.weight
    images, tokens = make_batch()
    with torch.no_grad():
        article = model.encode(images, tokens)
        words = dec.word_vectors(article, tokens)
        logits = dec.logits(words, emb)
        loss, n = dec(article, tokens, emb)
    assert logits.shape == (n, VOCAB - 1)  # ids 1..V-1: pad is never predicted
    assert n == words.shape[0] == int((tokens != 0).sum())
    cosine = F.cosine_similarity(words.unsqueeze(1), emb[1:].unsqueeze(0), dim=-1)  # (M, V - 1)
    assert torch.allclose(logits, dec.logit_scale * cosine, atol=1e-4)
    expected = -torch.log_softmax(logits, dim=1)[torch.arange(n), tokens[tokens != 0] - 1].mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    predicted = dec.predict(article, tokens, emb)
    assert predicted.shape == tokens.shape and torch.equal(predicted == 0, tokens == 0)
    assert torch.equal(predicted[tokens != 0], logits.argmax(dim=1) + 1)


# --------------------------------------------------------------------------- learning

def test_overfits_a_tiny_batch():
    torch.manual_seed(1)
    # region word prediction joins the loss only once sentences look at one region, so the
    # total would not fall from step 0; it learns in test_grounding.py
    model = Autoencoder(tiny_config(dropout=0.0, region_words_weight=0.0)).train()
    _, tokens = make_batch()
    # smooth images: a 30x30-thumbnail decoder can learn them, unlike pixel noise
    images = F.interpolate(torch.rand(4, 3, 4, 4) * 2 - 1, size=(32, 32), mode="bilinear")
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(150):
        opt.zero_grad()
        out = model(images, tokens)
        out.loss.backward()
        opt.step()
        first = out if first is None else first
    assert out.loss.item() < 0.3 * first.loss.item(), f"loss {first.loss.item():.3f} -> {out.loss.item():.3f}"
    assert out.text_loss.item() < 0.1 * first.text_loss.item()
    model.eval()
    article = model.encode(images, tokens)
    predicted = model.text_decoder.predict(article, tokens, model.encoder.embed.weight)
    assert (predicted == tokens).float().mean() > 0.95  # the texts are reconstructed
    assert out.image_loss.item() < 0.5 * first.image_loss.item()


def test_classifier_overfits_a_tiny_batch():
    torch.manual_seed(1)
    model = Classifier(ArticleEncoder(tiny_config(dropout=0.0)), ClassifierConfig(dropout=0.0)).train()
    images, tokens = make_batch()
    cmi, sc = torch.tensor([0, 1, 2, 4]), torch.tensor([4, 3, 2, 0])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(150):
        opt.zero_grad()
        loss = model(images, tokens, cmi, sc).loss
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    assert loss.item() < 0.3 * first, f"loss {first:.3f} -> {loss.item():.3f}"


def test_classifier_loss_is_the_sum_of_the_two_cross_entropies():
    model = Classifier(ArticleEncoder(tiny_config()), ClassifierConfig()).eval()
    images, tokens = make_batch()
    cmi, sc = torch.tensor([0, 1, 2, 4]), torch.tensor([4, 3, 2, 0])
    with torch.no_grad():
        out = model(images, tokens, cmi, sc)
    assert out.cmi_logits.shape == out.sc_logits.shape == (4, 5)

    def ce(logits, labels):  # by hand: mean of -log softmax at the label
        return (torch.logsumexp(logits, 1) - logits[torch.arange(4), labels]).mean()

    assert out.loss.item() == pytest.approx((ce(out.cmi_logits, cmi) + ce(out.sc_logits, sc)).item(), rel=1e-5)
    assert model(images, tokens).loss is None
    with pytest.raises(ValueError, match="both"):
        model(images, tokens, cmi=cmi)


def cpu_runs_bf16_lstm() -> bool:
    """Whether oneDNN builds a bf16 LSTM on this CPU: on a 2-core AMD EPYC without AVX-512 it
    cannot, and CPU autocast then cannot stand in for the GPU's. (CPU training never
    autocasts: ``runtime.amp_context``.)"""
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            torch.nn.LSTM(4, 4, batch_first=True)(torch.zeros(1, 2, 4))
    except RuntimeError:
        return False
    return True


@pytest.mark.skipif(not cpu_runs_bf16_lstm(), reason="oneDNN cannot build a bf16 LSTM on this CPU")
def test_works_under_bf16_autocast():
    torch.manual_seed(1)  # seed 0 leaves the tiny decoder's ReLU dead (see above)
    model = Autoencoder(tiny_config()).train()
    with torch.no_grad():  # sentences look at one region, so region word prediction counts too
        model.encoder.where.weight.mul_(100)
    images, tokens = make_batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(images, tokens)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert_every_parameter_has_a_gradient(model)


# --------------------------------------------------------------------------- loading

def test_classifier_encoder_loads_from_an_autoencoder_state_dict():
    cfg = tiny_config()
    ae = Autoencoder(cfg).eval()
    encoder = ArticleEncoder(cfg).eval()
    encoder.load_state_dict(encoder_state_from_autoencoder(ae.state_dict()))  # strict
    images, tokens = make_batch()
    with torch.no_grad():
        assert torch.equal(encoder(images, tokens), ae.encode(images, tokens))
    with pytest.raises(ValueError, match="encoder"):
        encoder_state_from_autoencoder(encoder.state_dict())


def write_word2vec(path: Path, rows: list[tuple[str, int, list[float]]], dim: int = 300) -> None:
    """Written with plain pyarrow, so that a wrong vector width can be written at all."""
    table = pa.table(
        {
            "token": pa.array([r[0] for r in rows], pa.string()),
            "id": pa.array([r[1] for r in rows], pa.int32()),
            "vector": pa.array([r[2] for r in rows], pa.list_(pa.float32(), dim)),
        }
    )
    pq.write_table(table, path)


def test_load_word2vec(tmp_path, caplog):
    vocab = {"<pad>": 0, "<unk>": 1, "cat": 2, "dog": 3, "red": 4}
    rows = [{"token": "cat", "id": 2, "vector": [0.5] * 300}, {"token": "red", "id": 4, "vector": [-1.0] * 300}]
    path = tmp_path / "word2vec.parquet"
    write_table(from_rows(rows, WORD2VEC), path, WORD2VEC)
    with caplog.at_level(logging.INFO):
        vectors = load_word2vec(path, vocab)
    assert vectors.shape == (5, 300)
    assert torch.all(vectors[2] == 0.5) and torch.all(vectors[4] == -1.0)
    assert torch.all(vectors[0] == 0)  # pad row
    assert vectors[3].abs().max() <= 0.08  # no vector: random init, logged
    assert "2 of 4 vocabulary rows have no vector" in caplog.text

    encoder = ArticleEncoder(tiny_config(vocab_size=5, embed_dim=300))
    encoder.load_word_vectors(vectors)
    assert torch.equal(encoder.embed.weight.data, vectors)
    with pytest.raises(CmiscError, match="do not fit"):
        ArticleEncoder(tiny_config(vocab_size=6, embed_dim=300)).load_word_vectors(vectors)


def test_bad_word2vec_files_are_clear_errors(tmp_path):
    vocab = {"<pad>": 0, "<unk>": 1, "cat": 2}
    wrong_dim = tmp_path / "dim.parquet"
    write_word2vec(wrong_dim, [("cat", 2, [0.1] * 10)], dim=10)
    with pytest.raises(CmiscError, match=r"dim\.parquet.*300-d"):
        load_word2vec(wrong_dim, vocab)

    unknown = tmp_path / "unknown.parquet"
    write_word2vec(unknown, [("cat", 2, [0.1] * 300), ("zebra", 3, [0.2] * 300)])
    with pytest.raises(CmiscError, match=r"unknown\.parquet.*'zebra' is not in the vocabulary"):
        load_word2vec(unknown, vocab)

    wrong_id = tmp_path / "id.parquet"
    write_word2vec(wrong_id, [("cat", 7, [0.1] * 300)])
    with pytest.raises(CmiscError, match=r"id\.parquet.*'cat' has id 7"):
        load_word2vec(wrong_id, vocab)

    with pytest.raises(FileNotFoundError):
        load_word2vec(tmp_path / "missing.parquet", vocab)


def test_inception_v3_encoder(tmp_path, caplog):
    """Random init is logged; a local state dict loads, freezes BN, and a bad one is a clear error."""
    with caplog.at_level(logging.INFO):
        net = build_inception(None)
    assert "random init" in caplog.text
    weights = tmp_path / "inception.pt"
    torch.save(net.state_dict(), weights)

    cfg = tiny_config(image_encoder="inception_v3", image_size=75, inception_weights=str(weights))
    model = ArticleEncoder(cfg).train()
    cnn = model.image.cnn
    bns = [m for m in cnn.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and not any(m.training for m in bns)  # frozen BN stays in eval mode
    assert not any(p.requires_grad for m in bns for p in m.parameters())
    assert cnn.Conv2d_1a_3x3.conv.weight.requires_grad  # the convolutions still fine-tune
    assert torch.equal(cnn.Mixed_7c.branch1x1.conv.weight, net.Mixed_7c.branch1x1.conv.weight)

    images = torch.rand(1, 3, 75, 75) * 2 - 1
    tokens = torch.tensor([[[2, 3, 0]]])
    model.eval()
    with torch.no_grad():
        image, regions = model.image(images)
        assert image.shape == (1, cfg.image_dim) and regions.shape == (1, cfg.region_grid**2, cfg.image_dim)
        assert torch.isfinite(model(images, tokens)).all()

    bad = tmp_path / "bad.pt"
    torch.save({"conv.weight": torch.zeros(3)}, bad)
    with pytest.raises(CmiscError, match=r"bad\.pt.*not an inception_v3 state dict"):
        ArticleEncoder(cfg.replace(inception_weights=str(bad)))
    with pytest.raises(CmiscError, match="not found"):
        ArticleEncoder(cfg.replace(inception_weights=str(tmp_path / "none.pt")))
