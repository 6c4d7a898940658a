"""The classifier of paper Fig. 4b: the autoencoder's encoder + a small head, trained jointly.

article (2400) -> linear 32 -> ReLU -> dropout -> two linear 5-way heads (CMI, SC).
Loss = CE(CMI) + CE(SC), equal weights.

Evidence pooling (departure from 2017; cross-attention fusion with
``evidence_dim`` > 0): the labels count how many sentences describe the image
and whether each description is right, which a text LSTM over 50 sentences
did not learn from ~600 labels (the model ignored the image). So each
sentence's evidence (``ArticleEncoder.evidence``: what it says x what is
where it looks) goes through a small MLP and is pooled over the sentences
(mean, max, sum), the regions are pooled likewise (how many objects there
are), and both join the article's hidden layer before the two heads. A
sentence's evidence also sees how sharply it looks at one region (a mention
does, filler does not) and, when the autoencoder has region word prediction,
how well that region explains its words (``EncodedParts.fit``). With
``article_in_head: false`` (the default) the article is not computed at all:
with it, the head learnt the text's cues first and used the image less
on the sample world, and the text LSTM is most of a step's cost.
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
        width = cfg.hidden_dim
        self.evidence = self.region_self = self.region_joint = self.joint = None
        if cfg.evidence_dim > 0 and encoder.cfg.fusion == "cross_attention":
            d, h = encoder.cfg.image_dim, cfg.evidence_dim
            # what a sentence says about a region, for every (sentence, region) pair, on
            # h-wide projections (the pairs are S x G*G per item; full width was 4x slower)
            self.claim_proj, self.region_proj = nn.Linear(d, h), nn.Linear(d, h)
            # + how sharply the sentence looks at one region (a mention looks at one; filler
            # everywhere) and, with region word prediction, how well that region explains its words
            self.n_fit = 2 if encoder.region_words is not None else 0
            self.evidence = nn.Sequential(nn.Linear(3 * h + 1 + self.n_fit, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU())
            self.region_self = nn.Sequential(nn.Linear(d, h), nn.ReLU())  # what the region shows
            self.region_joint = nn.Sequential(nn.Linear(2 * h, h), nn.ReLU())
            self.joint = nn.Sequential(nn.Linear(cfg.hidden_dim + 5 * h + 1, h), nn.ReLU())
            width = h
        # Departure from 2017: linear logits (the 2017 code put a ReLU on them).
        self.cmi_head = nn.Linear(width, cfg.n_cmi_classes)
        self.sc_head = nn.Linear(width, cfg.n_sc_classes)

    def pooled_evidence(self, parts: EncodedParts) -> torch.Tensor:
        """Evidence pooling: (B, 5h + 1) = per region [what the texts say of it, what it shows]
        summed and maxed over regions; per sentence its evidence, mean and max over sentences;
        the number of sentences."""
        regions = self.region_proj(parts.regions.to(parts.claim.dtype))  # (B, L, h)
        claim, look = self.claim_proj(parts.claim), parts.look  # (B, S, h), (B, S, L)
        L = regions.shape[1]
        mask = parts.sentence_mask.to(claim.dtype)  # (B, S)
        # Each sentence is compared with what is where it looks (its attention is
        # close to one-hot after grounding, so this equals comparing it with every
        # region and weighting by attention, at 1/G^2 of the cost).
        seen = look @ regions  # (B, S, h)
        # How sharply each sentence looks at one region: the attention over regions is
        # ~uniform for filler and peaked for a mention (AUC 0.99 on the sample world), but the
        # attended content alone does not say which, and CMI counts mentions.
        peak = look.amax(dim=2, keepdim=True).to(claim.dtype)  # (B, S, 1)
        facts = [claim * seen, seen, claim, peak]
        if self.n_fit:
            facts.append(parts.fit.to(claim.dtype))  # (B, S, 2) log-prob gains, within about ±3
        sentence = self.evidence(torch.cat(facts, dim=2)) * mask.unsqueeze(2)  # (B, S, h)
        said = look.transpose(1, 2) @ sentence  # (B, L, h) what the text says about each region
        region = self.region_joint(torch.cat([said, self.region_self(parts.regions.to(claim.dtype))], dim=2))  # (B, L, h)
        n = mask.sum(1, keepdim=True)  # (B, 1)
        return torch.cat([
            region.sum(1) / L,  # how much of what is shown is described (CMI coverage)
            region.amax(1),  # the region most described / most contradicted
            sentence.sum(1) / n.clamp(min=1),  # the share of sentences about the image (CMI focus)
            sentence.masked_fill(mask.unsqueeze(2) == 0, -1e4).amax(1).clamp(min=0),  # any sentence right or wrong (SC)
            sentence.sum(1) / 10,
            n / 10,
        ], dim=1)  # (B, 5h + 1)

    def head(self, article: torch.Tensor, parts: EncodedParts | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """article (B, A) [+ the parts, for evidence pooling] -> (CMI logits (B, 5), SC logits (B, 5))."""
        if article is not None:
            h = self.drop(F.relu(self.hidden(article)))  # (B, 32)
        else:  # evidence only: the article path is not computed
            h = parts.claim.new_zeros(parts.claim.shape[0], self.cfg.hidden_dim)
        if self.evidence is not None:
            h = self.drop(self.joint(torch.cat([h, self.pooled_evidence(parts)], dim=1)))  # (B, h)
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
        uses_article = self.evidence is None or self.cfg.article_in_head
        article = self.encoder.fuse_parts(parts) if uses_article else None  # (B, A)
        cmi_logits, sc_logits = self.head(article, parts)  # (B, 5), (B, 5)
        loss = None
        if cmi is not None and sc is not None:
            loss = F.cross_entropy(cmi_logits.float(), cmi) + F.cross_entropy(sc_logits.float(), sc)
        elif cmi is not None or sc is not None:
            raise ValueError("give both cmi and sc labels, or neither")
        return ClassifierOutput(loss, cmi_logits, sc_logits)
