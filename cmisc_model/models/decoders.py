"""The decoders of paper Fig. 4a: article embedding -> words and -> image.

Shape letters as in encoders.py: B batch, S sentences, T tokens, N real
sentences, M real tokens in the batch, V vocabulary rows, E word width.

Like the 2017 code, the text decoder is not asked to predict lengths: it runs
for the input's number of sentences and tokens, and the loss counts real
tokens only.
"""

from __future__ import annotations

import math
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

from cmisc_model.models.config import ModelConfig
from cmisc_model.models.encoders import init_lstm


class TextDecoder(nn.Module):
    """article (B, A) -> word vectors -> scaled cosine logits over the embedding table."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.sentence_lstm = nn.LSTM(cfg.article_dim, cfg.sentence_dim, batch_first=True)
        # 2017: the word LSTM's 300-d outputs are the word vectors (no projection).
        self.word_lstm = nn.LSTM(cfg.sentence_dim, cfg.embed_dim, batch_first=True)
        # Departure from 2017: cosine logits times a learnable scale (kept positive
        # as exp(log_scale)). Without it logits lie in [-1, 1] and the loss cannot
        # fall below ~7.4 nats (original_impl.md §11.2).
        self.log_scale = nn.Parameter(torch.tensor(math.log(cfg.logit_scale_init)))
        self.drop = nn.Dropout(cfg.dropout)
        init_lstm(self.sentence_lstm, cfg.init_range)
        init_lstm(self.word_lstm, cfg.init_range)

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.log_scale.exp()

    def word_vectors(self, article: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """article (B, A), tokens (B, S, T) -> predicted word vectors (M, E) at the real tokens."""
        B, S, T = tokens.shape
        steps = article.unsqueeze(1).expand(B, S, article.shape[-1])  # (B, S, A) same input every step
        sentences, _ = self.sentence_lstm(steps)  # (B, S, D_s)
        sentences = self.drop(sentences)

        real = (tokens != 0).any(dim=2).view(-1)  # (B*S,) decode real sentences only
        sentences = sentences.reshape(B * S, -1)[real]  # (N, D_s)
        words_in = sentences.unsqueeze(1).expand(-1, T, sentences.shape[-1])  # (N, T, D_s)
        words, _ = self.word_lstm(words_in)  # (N, T, E)
        words = self.drop(words)

        token_mask = tokens.reshape(B * S, T)[real] != 0  # (N, T)
        return words[token_mask]  # (M, E) in the same order as tokens[tokens != 0]

    def logits(self, words: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """words (M, E), embedding table (V, E) -> logits (M, V - 1) over ids 1..V-1.

        Column j scores id j + 1: the pad row is left out of the softmax, since it
        is never a target. The scale multiplies the (M, E) side, which is cheaper
        than scaling the (M, V) logits.
        """
        words = self.logit_scale * F.normalize(words.float(), dim=-1)  # (M, E)
        rows = F.normalize(embedding[1:].float(), dim=-1)  # (V - 1, E)
        return words @ rows.T  # (M, V - 1) = scale * cosine

    def forward(
        self, article: torch.Tensor, tokens: torch.Tensor, embedding: torch.Tensor
    ) -> tuple[torch.Tensor, int]:
        """-> (mean cross-entropy over real tokens, number of real tokens)."""
        targets = tokens[tokens != 0]  # (M,) token ids are the labels (2017 used the mask: bug)
        n_tokens = targets.numel()
        if n_tokens == 0:  # a batch of empty texts: nothing to reconstruct
            return article.new_zeros((), dtype=torch.float32), 0
        words = self.word_vectors(article, tokens)  # (M, E)
        logits = self.logits(words, embedding)  # (M, V - 1), column j = id j + 1
        return F.cross_entropy(logits, targets - 1), n_tokens


    @torch.no_grad()
    def predict(self, article: torch.Tensor, tokens: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """The most likely id at every real token of ``tokens`` (B, S, T); pads stay 0 (paper Fig. 5)."""
        predicted = torch.zeros_like(tokens)  # (B, S, T)
        if (tokens != 0).any():
            words = self.word_vectors(article, tokens)  # (M, E)
            predicted[tokens != 0] = self.logits(words, embedding).argmax(dim=1) + 1  # column j = id j + 1
        return predicted


def upsample_sizes(thumb: int, image_size: int, steps: int) -> list[int]:
    """Sides after each upsample: geometric from ``thumb`` to ``image_size``.

    Departure from 2017: 30 -> 60 -> 120 -> 300 there (x2, x2, x2.5); here the
    factors are equal, e.g. 30 -> 65 -> 139 -> 300, so any image_size works.
    """
    ratio = (image_size / thumb) ** (1.0 / steps)
    sizes = [round(thumb * ratio**k) for k in range(1, steps)]
    return sizes + [image_size]


class ImageDecoder(nn.Module):
    """article (B, A) -> thumbnail (B, C, t, t) -> (nearest upsample, 5x5 conv) x 3 -> (B, 3, H, W).

    2017: t = 30, C = 1. The defaults here (t = 12, C = 16) hold colour and
    position in the thumbnail's channels rather than asking one grey 30 x 30
    map to carry them (departure from 2017).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.thumb, self.thumb_channels = cfg.thumb_size, cfg.thumb_channels
        self.to_thumb = nn.Linear(cfg.article_dim, cfg.thumb_channels * cfg.thumb_size**2)
        self.sizes = upsample_sizes(cfg.thumb_size, cfg.image_size, len(cfg.decoder_maps))
        maps = (cfg.thumb_channels, *cfg.decoder_maps)
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in, c_out, 5, padding=2) for c_in, c_out in pairwise(maps)
        )
        self.drop = nn.Dropout(cfg.decoder_dropout)
        nn.init.uniform_(self.to_thumb.weight, -cfg.init_range, cfg.init_range)
        nn.init.zeros_(self.to_thumb.bias)

    def forward(self, article: torch.Tensor) -> torch.Tensor:
        B = article.shape[0]
        x = self.drop(self.to_thumb(article)).view(B, self.thumb_channels, self.thumb, self.thumb)  # (B, C, t, t)
        for k, (size, conv) in enumerate(zip(self.sizes, self.convs)):
            x = F.interpolate(x, size=(size, size), mode="nearest")  # (B, C, size, size)
            x = conv(x)  # (B, maps[k], size, size)
            if k < len(self.convs) - 1:
                # Departure from 2017: ReLU without the local response normalisation.
                x = F.relu(x)
        # Departure from 2017: tanh keeps the output in the target's [-1, 1] (2017: linear).
        return torch.tanh(x)  # (B, 3, H, W)
