"""The encoder of paper Fig. 4a: image + hierarchical text -> one article embedding.

Shape letters: B batch, S sentences, T tokens per sentence, N real sentences in
the batch, E word width, D feature width, H/W image side.

Inputs (the same for the autoencoder and the classifier):
- ``images`` float (B, 3, H, W) in [-1, 1];
- ``tokens`` long (B, S, T), 0 = pad, 1 = unknown. A sentence of pads only is
  a pad sentence. Batches are padded to length buckets, not packed (packing is
  several times slower in PyTorch, anchors.md B3), so every "state at the last
  real step" is gathered by index; the LSTMs run left to right, so trailing
  pads never change a result.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
import torch
import torch.nn.functional as F
from torch import nn

from cmisc_model.errors import CmiscError
from cmisc_model.models.config import ModelConfig
from cmisc_model.schemas import EMBEDDING_DIM, WORD2VEC, SchemaError, read_table

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- helpers

def init_lstm(lstm: nn.LSTM, init_range: float) -> None:
    """2017 init: weights uniform in [-r, r], biases 0 except forget gate 1 (TF BasicLSTMCell)."""
    for name, p in lstm.named_parameters():
        if name.startswith("weight"):
            nn.init.uniform_(p, -init_range, init_range)
        else:
            nn.init.zeros_(p)
            if name.startswith("bias_ih"):
                h = lstm.hidden_size
                nn.init.ones_(p[h : 2 * h])  # PyTorch gate order: input, forget, cell, output


def last_real_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of the last True along the last dim (0 where none): (..., L) bool -> (...) long."""
    steps = torch.arange(1, mask.shape[-1] + 1, device=mask.device)
    return ((mask.long() * steps).amax(dim=-1) - 1).clamp(min=0)


def gather_step(outputs: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """outputs (B, L, D), index (B,) -> outputs[b, index[b]] as (B, D)."""
    idx = index.view(-1, 1, 1).expand(-1, 1, outputs.shape[-1])
    return outputs.gather(1, idx).squeeze(1)


# --------------------------------------------------------------------------- image

class SmallCNN(nn.Module):
    """A few conv-bn-relu-pool blocks: the CPU option. Returns the feature map;
    the ``ImageEncoder`` decides how to pool it. Channels-last layout, weights and
    input: 1.6x faster inference and 1.25x faster training than NCHW on 2 CPU cores
    (as on GPUs)."""

    def __init__(self, channels: tuple[int, ...]):
        super().__init__()
        blocks, c_in = [], 3
        for c_out in channels:
            blocks += [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            c_in = c_out
        self.blocks = nn.Sequential(*blocks).to(memory_format=torch.channels_last)
        self.out_dim = c_in

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        images = images.contiguous(memory_format=torch.channels_last)  # a no-op when it already is
        return self.blocks(images)  # (B, C, H / 2^k, W / 2^k)


def build_inception(weights: str | None) -> nn.Module:
    """torchvision InceptionV3 without aux head, average pool, dropout and classifier:
    (B, 3, 299, 299) -> the flattened last feature map (B, 2048 * 8 * 8); the
    ImageEncoder reshapes and pools it. The module keeps torchvision's layout,
    so a torchvision state dict loads as it is.

    ``transform_input=False``: our images are already in [-1, 1], which is the
    range the (TF-ported) ImageNet weights expect after their own transform.
    The 2017 "keep 0.8" dropout on the pooled features is the ImageEncoder's
    ``cnn_drop``.
    """
    from torchvision.models import inception_v3

    if weights is not None and not Path(weights).exists():
        raise CmiscError(f"{weights}: inception_weights file not found")
    net = inception_v3(
        weights=None, aux_logits=False, init_weights=True, transform_input=False, dropout=0.2
    )
    if weights is None:
        log.info("inception_v3: random init (no inception_weights given)")
    else:
        load_inception_weights(net, Path(weights))
    net.avgpool, net.dropout, net.fc = nn.Identity(), nn.Identity(), nn.Identity()
    net.out_dim = 2048
    return net


def load_inception_weights(net: nn.Module, path: Path) -> None:
    """Load a local ImageNet state dict (torchvision's inception_v3 layout) into ``net``."""
    if not path.exists():
        raise CmiscError(f"{path}: inception_weights file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CmiscError(f"{path}: not a readable torch state dict ({e})") from e
    if isinstance(state, Mapping) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise CmiscError(f"{path}: expected a state dict, got {type(state).__name__}")
    # The aux head is not built and the 1000-way fc is replaced; drop both.
    state = {k: v for k, v in state.items() if not k.startswith(("AuxLogits.", "fc."))}
    expected = {k for k in net.state_dict() if not k.startswith(("AuxLogits.", "fc."))}
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise CmiscError(
            f"{path}: not an inception_v3 state dict "
            f"({len(missing)} keys missing, e.g. {missing[:3]}; "
            f"{len(unexpected)} unexpected, e.g. {unexpected[:3]})"
        )
    try:
        net.load_state_dict(state, strict=False)
    except RuntimeError as e:  # shape mismatches
        raise CmiscError(f"{path}: inception_v3 weights do not fit ({str(e).splitlines()[-1]})") from e
    log.info("inception_v3: ImageNet weights from %s", path)


def batch_norms(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


class ImageEncoder(nn.Module):
    """CNN feature map -> the image vector, and (cross-attention fusion) region vectors.

    ``fusion: late`` (2017): global average pool -> linear image_dim (no bias,
    no activation); no regions.
    ``fusion: cross_attention`` (departure from 2017): the labels of the sample
    world, like "a red circle in the upper left", depend on *where* things
    are, and a global average pool discards position. So the image vector is
    a linear map of the feature map average-pooled to a 3 x 3 grid, and the
    map pooled to ``region_grid`` x ``region_grid`` gives one vector per region
    (plus a learned position embedding) for the sentences to attend to.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.image_encoder == "inception_v3":
            self.cnn = build_inception(cfg.inception_weights)
            # Frozen BN statistics only make sense for pretrained weights; a random
            # init keeps training its batch norm.
            self.freeze_bn = cfg.freeze_bn and cfg.inception_weights is not None
            if cfg.freeze_bn and not self.freeze_bn:
                log.info("inception_v3: freeze_bn ignored for a random init (its batch norm trains)")
            cnn_drop = 0.2  # 2017: keep 0.8 on the pooled Inception features
        else:
            self.cnn = SmallCNN(cfg.small_cnn_channels)
            self.freeze_bn = False
            cnn_drop = 0.0
        cnn_dim = self.cnn.out_dim
        self.fusion = cfg.fusion
        self.trainable = cfg.encoder_trainable
        self.cnn_drop = nn.Dropout(cnn_drop)
        if cfg.fusion == "late":
            self.proj = nn.Linear(cnn_dim, cfg.image_dim, bias=False)
        else:
            self.proj = nn.Linear(cnn_dim * 9, cfg.image_dim, bias=False)  # the 3 x 3 grid
            self.grid = cfg.region_grid
            self.region_proj = nn.Linear(cnn_dim, cfg.image_dim)
            self.region_pos = nn.Parameter(torch.zeros(cfg.region_grid**2, cfg.image_dim))
            # large enough that attention over positions is not uniform at init (std 0.02
            # left it flat and matching did not start)
            nn.init.normal_(self.region_pos, std=0.1)
        nn.init.uniform_(self.proj.weight, -cfg.init_range, cfg.init_range)

        if self.freeze_bn:
            for bn in batch_norms(self.cnn):
                bn.requires_grad_(False)
        if not self.trainable:
            self.cnn.requires_grad_(False)

    def train(self, mode: bool = True) -> ImageEncoder:
        super().train(mode)
        # A frozen CNN always runs in eval mode; frozen BN layers too (batch-16
        # statistics are noisy, original_impl.md §11.10).
        if not self.trainable:
            self.cnn.eval()
        elif self.freeze_bn:
            for bn in batch_norms(self.cnn):
                bn.eval()
        return self

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """-> (image vector (B, image_dim), regions (B, G*G, image_dim) or None)."""
        fmap = self.cnn(images)  # (B, C, h, w) small_cnn | (B, 2048 * h * w) inception
        if fmap.dim() == 2:
            side = math.isqrt(fmap.shape[1] // self.cnn.out_dim)
            fmap = fmap.view(fmap.shape[0], self.cnn.out_dim, side, side)  # (B, 2048, h, w)
        if self.fusion == "late":
            return self.proj(self.cnn_drop(fmap.mean(dim=(2, 3)))), None  # (B, D_i), None
        grid3 = F.adaptive_avg_pool2d(fmap, 3).flatten(1)  # (B, C*9)
        image = self.proj(self.cnn_drop(grid3))  # (B, D_i)
        cells = F.adaptive_avg_pool2d(fmap, self.grid).flatten(2).transpose(1, 2)  # (B, G*G, C)
        regions = self.region_proj(cells) + self.region_pos  # (B, G*G, D_i)
        return image, regions


# --------------------------------------------------------------------------- words

def load_word2vec(path: str | Path, vocab: Mapping[str, int], init_range: float = 0.08) -> torch.Tensor:
    """Embedding rows from ``word2vec.parquet`` (WORD2VEC schema: token, id, vector[300]).

    ``vocab`` maps token -> id (ids 0 = pad, 1 = unknown, ...). Returns a
    (max id + 1, 300) float tensor: row ``id`` holds that token's vector, the
    pad row is zero, and vocabulary rows the file lacks keep a uniform random
    init in [-init_range, init_range] (logged). A token or id that disagrees
    with the vocabulary is an error naming the file: the two files must come
    from the same vocabulary.
    """
    path = Path(path)
    try:
        table = read_table(path, WORD2VEC)
    except (SchemaError, pa.ArrowException) as e:  # a wrong vector width fails the cast
        raise CmiscError(f"{path}: not a word2vec table with {EMBEDDING_DIM}-d vectors ({e})") from e
    tokens = table.column("token").to_pylist()
    ids = table.column("id").to_pylist()
    flat = pc.list_flatten(table.column("vector")).to_numpy(zero_copy_only=False)
    vectors = torch.from_numpy(flat.reshape(len(tokens), EMBEDDING_DIM).copy())

    n_rows = max(vocab.values(), default=0) + 1
    out = torch.empty(n_rows, EMBEDDING_DIM).uniform_(-init_range, init_range)
    seen = torch.zeros(n_rows, dtype=torch.bool)
    for row, (token, i) in enumerate(zip(tokens, ids)):
        if token not in vocab:
            raise CmiscError(f"{path}: row {row}: token {token!r} is not in the vocabulary")
        if vocab[token] != i:
            raise CmiscError(f"{path}: row {row}: token {token!r} has id {i}, the vocabulary says {vocab[token]}")
        out[i] = vectors[row]
        seen[i] = True
    out[0] = 0.0  # padding_idx row
    n_missing = int((~seen[1:]).sum())
    if n_missing:
        log.info("%s: %d of %d vocabulary rows have no vector (random init)", path, n_missing, n_rows - 1)
    return out


# --------------------------------------------------------------------------- article

class EncodedParts(NamedTuple):
    """What the encoder computes before fusion; ``roll`` pairs texts with other images."""

    image: torch.Tensor  # (B, D_i)
    regions: torch.Tensor | None  # (B, G*G, D_i); None for late fusion
    sentences: torch.Tensor  # (B, S, D_s)
    sentence_mask: torch.Tensor  # (B, S) True at real sentences
    look: torch.Tensor | None = None  # (B, S, G*G) where each sentence looks; cross-attention only
    claim: torch.Tensor | None = None  # (B, S, D_i) what each sentence says is there; cross-attention only
    fit: torch.Tensor | None = None  # (B, S, 2) how well the region it looks at explains its words; region words only

    def roll(self, shifts: int = 1) -> EncodedParts:
        """Every text with the image of the item ``shifts`` places earlier (image-text matching negatives)."""
        regions = None if self.regions is None else self.regions.roll(shifts, dims=0)
        # fit depends on the image: not valid for the rolled pairing
        return self._replace(image=self.image.roll(shifts, dims=0), regions=regions, fit=None)


class ArticleEncoder(nn.Module):
    """images (B, 3, H, W) + tokens (B, S, T) -> article embedding (B, article_dim).

    ``fusion: late`` is the 2017 encoder: the image vector is the text LSTM's
    first input and is concatenated with the text state at the end.
    ``fusion: cross_attention`` (departure from 2017): in addition,
    every sentence attends over the image regions by their *position*
    (``where``), the attended content is compared with what the sentence says
    (``what(s) * seen``), and the text LSTM's input at that sentence is
    ``compare([s, agreement])``. Keys from positions only and a product for
    the comparison are deliberate: with content keys and an MLP comparison
    (nn.MultiheadAttention) image-text matching stayed at chance for 400 steps. Without it the text LSTM must remember the
    whole image through one first input, and the trained 2017 network was
    found to ignore the image altogether.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.vocab_size < 2:
            raise ValueError(f"vocab_size {cfg.vocab_size}: set it from the vocabulary (>= 2 rows: pad, unknown)")
        self.cfg = cfg
        self.image = ImageEncoder(cfg)
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed_dim, padding_idx=0)
        self.sentence_lstm = nn.LSTM(cfg.embed_dim, cfg.sentence_dim, batch_first=True)
        self.text_lstm = nn.LSTM(cfg.sentence_dim, cfg.text_dim, batch_first=True)
        self.fuse = nn.Linear(cfg.text_dim + cfg.image_dim, cfg.article_dim)
        self.drop = nn.Dropout(cfg.dropout)
        self.region_words = None  # cross-attention with region_words_weight > 0 only
        if cfg.fusion == "cross_attention":
            # Departure from 2017: the sentence embedding also has a bag-of-words path
            # (a linear map of the mean word vector). At init the LSTM's last state
            # hardly depends on the words (its spread over a batch is ~0.04), so
            # image-text matching had nothing to match; the mean word vector
            # carries "red", "circle", "upper left" from the first step.
            self.bag_of_words = nn.Linear(cfg.embed_dim, cfg.sentence_dim)
            # Where a sentence looks (one logit per region) and what it says is there
            # (compared with the attended content), each a sum of per-word vectors
            # over the sentence's words. A bag of words, not the sentence LSTM: with
            # projections of the LSTM state the attention stayed at chance (1/9 of
            # mentions looked at their region after a full AE run); a word bag learns
            # "upper left" -> a cell within a few hundred matching steps.
            self.where = nn.EmbeddingBag(cfg.vocab_size, cfg.region_grid**2, mode="sum", padding_idx=0)
            self.what = nn.EmbeddingBag(cfg.vocab_size, cfg.image_dim, mode="sum", padding_idx=0)
            nn.init.normal_(self.where.weight, std=0.1)
            nn.init.normal_(self.what.weight, std=0.1)
            with torch.no_grad():
                self.where.weight[0].zero_()
                self.what.weight[0].zero_()
            self.compare = nn.Sequential(nn.Linear(cfg.sentence_dim + cfg.image_dim, cfg.sentence_dim), nn.ReLU())
            # Region word prediction (``region_words_weight``): which words a region explains
            # (departure from 2017; ``word_log_probs``, ``sentence_fit``). Two experts
            # whose logits add: the region, and the words beside each word. The second explains
            # the sentence's form ("is shown in the"), so the region is left to say what only
            # the image can: which colour, which shape. With the region alone, every function
            # word's residual reached the CNN too (its gradient there was 7x the shape words'),
            # and shape stayed near chance for 1,600 steps; with the neighbours' expert it rose to
            # 0.6 in 700 (sample world).
            if cfg.region_words_weight > 0:
                self.region_words = nn.Linear(cfg.image_dim, cfg.vocab_size)
                self.word_context = nn.Linear(2 * cfg.embed_dim, cfg.vocab_size)

        nn.init.uniform_(self.embed.weight, -cfg.init_range, cfg.init_range)
        with torch.no_grad():
            self.embed.weight[0].zero_()
        init_lstm(self.sentence_lstm, cfg.init_range)
        init_lstm(self.text_lstm, cfg.init_range)
        nn.init.uniform_(self.fuse.weight, -cfg.init_range, cfg.init_range)
        nn.init.zeros_(self.fuse.bias)

    @torch.no_grad()
    def load_word_vectors(self, vectors: torch.Tensor) -> None:
        """Copy ``load_word2vec`` rows into the embedding table (shapes must agree)."""
        if vectors.shape != self.embed.weight.shape:
            raise CmiscError(
                f"word vectors {tuple(vectors.shape)} do not fit the embedding table "
                f"{tuple(self.embed.weight.shape)} (vocab_size, embed_dim)"
            )
        self.embed.weight.copy_(vectors)

    def encode_sentences(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, S, T) -> sentence embeddings (B, S, sentence_dim); pad sentences are 0."""
        B, S, T = tokens.shape
        flat = tokens.reshape(B * S, T)  # (B*S, T)
        token_mask = flat != 0  # (B*S, T)
        real = token_mask.any(dim=1)  # (B*S,) pad sentences are skipped entirely
        sentences = self.embed.weight.new_zeros(B * S, self.cfg.sentence_dim)  # (B*S, D_s)
        if real.any():  # else: a batch of empty texts
            x = self.drop(self.embed(flat[real]))  # (N, T, E)
            out, _ = self.sentence_lstm(x)  # (N, T, D_s)
            last = gather_step(out, last_real_index(token_mask[real]))  # (N, D_s)
            if self.cfg.fusion == "cross_attention":
                mask = token_mask[real].unsqueeze(2).to(x.dtype)  # (N, T, 1)
                last = last + self.bag_of_words((x * mask).sum(1) / mask.sum(1))  # (N, D_s) + bag of words
            sentences = sentences.to(last.dtype).index_put((real,), last)  # (B*S, D_s)
        return self.drop(sentences).view(B, S, self.cfg.sentence_dim)  # (B, S, D_s)

    def encode_parts(self, images: torch.Tensor, tokens: torch.Tensor, with_fit: bool = True) -> EncodedParts:
        """The image and the sentences, each encoded on its own; ``with_fit``: also the word fit
        (the classifier's input; autoencoder training does not use it)."""
        return self.parts_with_image(*self.image(images), tokens, with_fit)  # image: (B, D_i), regions (B, G*G, D_i)

    def parts_with_image(self, image: torch.Tensor, regions: torch.Tensor | None, tokens: torch.Tensor,
                         with_fit: bool = True, texts: tuple | None = None) -> EncodedParts:
        """``encode_parts`` from the image encoder's output (``self.image(images)``), so that
        texts scored against images already encoded need not run the CNN again; ``texts``: the
        sentences' own encodings (sentences, look, claim) where they are known already
        (``training.features.encoded_sentences``, eval mode)."""
        image = self.drop(image)
        if regions is not None:
            regions = self.drop(regions)
        look = claim = fit = None
        if texts is not None:
            sentences, look, claim = texts
        else:
            sentences = self.encode_sentences(tokens)  # (B, S, D_s)
            if regions is not None:
                look, claim = self.ground(tokens)  # (B, S, G*G), (B, S, D_i)
        if regions is not None and self.region_words is not None and with_fit:
            fit = self.sentence_fit(look, regions, tokens)  # (B, S, 2)
        return EncodedParts(image, regions, sentences, (tokens != 0).any(dim=2), look, claim, fit)

    def word_context_logits(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (N, T) -> what the word before and the word after say about each word (N, T, V).
        Two neighbours only: a whole-sentence context memorised each training sentence's colour."""
        emb = self.embed(tokens).detach()  # (N, T, E) read, not trained, by this expert
        before = F.pad(emb, (0, 0, 1, 0))[:, :-1]  # (N, T, E) pad before the first word
        after = F.pad(emb, (0, 0, 0, 1))[:, 1:]  # (N, T, E)
        return self.word_context(torch.cat([before, after], dim=2))  # (N, T, V)

    def word_log_probs(self, tokens: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
        """log P(w_t | the words beside it, a region): tokens (N, T), seen (N, D_i) -> (N, T)."""
        logits = self.word_context_logits(tokens).float() + self.region_words(seen).float().unsqueeze(1)  # (N, T, V)
        return F.log_softmax(logits, dim=-1).gather(2, tokens.unsqueeze(2)).squeeze(2)  # (N, T)

    def sentence_fit(self, look: torch.Tensor, regions: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """How much better the region a sentence looks at explains its words than the image's other
        regions do, per word log P(w | its region) - mean over regions of log P(w | region), with the
        region expert alone: (mean, min) over the sentence's known words, (B, S, 2); 0 for sentences
        that look at no one region (filler). The words of a correct "large red circle" fit its
        region; a wrong colour word fits it worse than the other regions do; an absent object's
        words fit background no better than elsewhere. On the sample world (an
        autoencoder with 700 more steps of region word prediction alone after training; labelled pairs) the mean tells correct mentions from absent objects with AUC 0.94, from
        colour contradictions 0.75, from shape contradictions 0.62. (The minimum of log P(w | words
        beside, region) told contradictions apart better on an autoencoder trained with other
        settings, 0.88 and 0.72, but the classifier did no better with it.)"""
        B, S, _ = tokens.shape
        G = regions.shape[1]
        out = torch.zeros(B, S, 2, device=tokens.device)
        looking = look.amax(dim=2) > 0.3  # (B, S) as in the autoencoder's loss
        if not looking.any():
            return out
        b, s = looking.nonzero(as_tuple=True)
        tok = tokens[b, s]  # (N, T) the looking sentences

        def log_p(x: torch.Tensor) -> torch.Tensor:  # regions (N, D_i) -> log P(w | region) of each word (N, T)
            return F.log_softmax(self.region_words(x).float(), dim=-1).gather(1, tok)

        here = log_p((look @ regions.to(look.dtype))[b, s])  # (N, T)
        anywhere = torch.stack([log_p(regions[b, g]) for g in range(G)]).mean(0)  # (N, T)
        gain = here - anywhere  # (N, T)
        known = tok > 1  # (N, T)
        mean = (gain * known).sum(dim=1) / known.sum(dim=1).clamp(min=1)  # (N,)
        low = gain.masked_fill(~known, float("inf")).amin(dim=1)  # (N,) the worst-fitting word
        low = torch.where(known.any(dim=1), low, torch.zeros_like(low))
        out[b, s] = torch.stack([mean, low], dim=1)
        return out  # (B, S, 2)

    def ground(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens (B, S, T) -> (where each sentence looks: attention over the regions (B, S, G*G),
        what it says is there (B, S, D_i)). Words only, so one text can be compared with many images."""
        B, S, T = tokens.shape
        flat = tokens.reshape(B * S, T)  # (B*S, T) pads (0) add nothing to a bag
        look = torch.softmax(self.where(flat), dim=-1).view(B, S, -1)  # (B, S, G*G)
        claim = self.drop(self.what(flat)).view(B, S, -1)  # (B, S, D_i)
        return look, claim

    def evidence(self, parts: EncodedParts) -> torch.Tensor:
        """Per sentence: [what it says x what is where it looks, what is there, what it says]
        (B, S, 3 * D_i); cross-attention only. The classifier pools it over sentences."""
        seen = parts.look @ parts.regions.to(parts.claim.dtype)  # (B, S, D_i)
        return torch.cat([parts.claim * seen, seen, parts.claim], dim=2)  # (B, S, 3 * D_i)

    def fuse_parts(self, parts: EncodedParts, with_agreement: bool = False):
        """EncodedParts -> article embedding (B, article_dim); with ``with_agreement`` also each
        sentence's agreement with what it attended to (B, S, D_i; cross-attention only), which
        image-text matching scores."""
        image, sentences = parts.image.to(parts.sentences.dtype), parts.sentences  # (B, D_i), (B, S, D_s)
        agreement = None
        if parts.regions is not None:
            # each sentence looks at a place (position embeddings only: "upper left" -> a cell)
            # and compares what it says with what is there (a product: "red" x red content)
            seen = parts.look @ parts.regions.to(sentences.dtype)  # (B, S, D_i)
            agreement = parts.claim * seen  # (B, S, D_i)
            sentences = self.drop(self.compare(torch.cat([sentences, agreement], dim=2)))  # (B, S, D_s)

        # text: the image is the text LSTM's first input, then the sentences
        steps = torch.cat([image.unsqueeze(1), sentences], dim=1)  # (B, 1+S, D_s)
        out, _ = self.text_lstm(steps)  # (B, 1+S, D_t)
        step_mask = F.pad(parts.sentence_mask, (1, 0), value=True)  # (B, 1+S) step 0 = the image
        text = self.drop(gather_step(out, last_real_index(step_mask)))  # (B, D_t) empty text: image step

        # "reconsider the image": [text || image] -> article
        article = self.drop(F.relu(self.fuse(torch.cat([text, image.to(text.dtype)], dim=1))))  # (B, article_dim)
        return (article, agreement) if with_agreement else article

    def forward(self, images: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return self.fuse_parts(self.encode_parts(images, tokens))  # (B, article_dim)
