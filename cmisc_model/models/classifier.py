"""The classifier of paper Fig. 4b: the autoencoder's encoder + a small head, trained jointly.

article (2400) -> linear 32 -> ReLU -> dropout -> two linear 5-way heads (CMI, SC).
Loss = CE(CMI) + CE(SC), equal weights.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from cmisc_model.models.config import ClassifierConfig
from cmisc_model.models.encoders import ArticleEncoder, EncodedParts


class ClassifierOutput(NamedTuple):
    loss: torch.Tensor | None  # CE(CMI) + CE(SC); None without labels
    cmi_logits: torch.Tensor  # (B, 5)
    sc_logits: torch.Tensor  # (B, 5)


class Classifier(nn.Module):
    def __init__(self, encoder: ArticleEncoder, cfg: ClassifierConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = encoder  # initialised from the autoencoder by the caller
        self.hidden = nn.Linear(encoder.cfg.article_dim, cfg.hidden_dim)
        self.drop = nn.Dropout(cfg.dropout)
        # Departure from 2017: linear logits (the 2017 code put a ReLU on them).
        self.cmi_head = nn.Linear(cfg.hidden_dim, cfg.n_cmi_classes)
        self.sc_head = nn.Linear(cfg.hidden_dim, cfg.n_sc_classes)

    def head(self, article: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """article (B, A) -> (CMI logits (B, 5), SC logits (B, 5))."""
        h = self.drop(F.relu(self.hidden(article)))  # (B, 32)
        return self.cmi_head(h), self.sc_head(h)

    def forward(
        self,
        images: torch.Tensor,
        tokens: torch.Tensor,
        cmi: torch.Tensor | None = None,
        sc: torch.Tensor | None = None,
    ) -> ClassifierOutput:
        """``cmi``, ``sc``: class ids (B,) in 0..4; both or neither."""
        return self.from_parts(self.encoder.encode_parts(images, tokens), cmi, sc)

    def from_parts(self, parts: EncodedParts, cmi: torch.Tensor | None = None,
                   sc: torch.Tensor | None = None) -> ClassifierOutput:
        """The classifier from already encoded image and sentences (``ArticleEncoder.encode_parts``)."""
        article = self.encoder.fuse_parts(parts)  # (B, A)
        cmi_logits, sc_logits = self.head(article)  # (B, 5), (B, 5)
        loss = None
        if cmi is not None and sc is not None:
            loss = F.cross_entropy(cmi_logits.float(), cmi) + F.cross_entropy(sc_logits.float(), sc)
        elif cmi is not None or sc is not None:
            raise ValueError("give both cmi and sc labels, or neither")
        return ClassifierOutput(loss, cmi_logits, sc_logits)
