"""What the model reads: one ``TextNormaliser`` for training and inference.

For every sentence, in this order:

1. British -> American spelling, only for the sources in
   ``spelling_sources`` (the news source, ``bbc``), on the cased text so that
   proper nouns can be protected (``cmisc_model.text.spelling``).
   Departure from 2017: there the dictionary ran last, on lower-cased,
   lemmatised tokens.
2. Tokenise with ``tokenise`` (a regex, nothing to download).
3. Lower-case (``lowercase``, on by default as in 2017).
4. Lemmatise (``lemmatise``, **off** by default). Departure from 2017, which
   lemmatised every token with WordNet as a noun: WordNet is an NLTK data
   download, and nothing may be downloaded at run time; noun-only
   lemmatisation also leaves verbs alone, and the vocabulary cut (count >= 10)
   and Word2Vec absorb most inflection anyway. ``lemmatise: true`` uses
   NLTK's WordNet lemmatiser when ``nltk`` and its ``wordnet`` data are
   installed beforehand, and fails at construction with a clear message
   otherwise.
5. Keep the first ``max_tokens`` tokens (40).

A text becomes at most ``max_sentences`` (50) such sentences. Plain text is
split with ``cmisc_model.text.sentences.split_sentences``; the ``text_blocks`` of a
pairs row are already split, and each block's title lines come first, each as
a "sentence" of its own (``include_titles``, **on** by default, as 2017 fed
Wikipedia section titles and BBC headings; the headline of a news story is
often its most informative line). Empty sentences are dropped before the
50-sentence cut.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cmisc_model.errors import CmiscError
from cmisc_model.text.sentences import ABBREVIATIONS, split_sentences
from cmisc_model.text.spelling import SpellingConfig, SpellingNormaliser

# --------------------------------------------------------------------------- tokeniser

# Alternatives in priority order. Like NLTK's word_tokenize (Treebank rules),
# but with no downloads: punctuation is split off, hyphenated words stay one
# token ("well-known"), numbers keep their separators ("3.5", "1,000",
# "10:30"), initialisms and the splitter's abbreviations keep their dots
# ("U.S.", "Mr." unless it ends the sentence), and clitics become tokens of
# their own: "John's" -> "John", "'s"; "don't" -> "do", "n't". Curly
# apostrophes inside words are written as "'" so that "’s" and "'s" are one
# vocabulary entry. Differences from NLTK: double quotes stay '"' (NLTK writes
# `` and ''), and a sentence-final initialism keeps its dot ("U.S.").
_TOKEN = re.compile(
    r"""
      (?:[^\W\d_]\.){2,}                      # initialisms: U.S., e.g.
    | \d+(?:[.,:]\d+)+(?:[^\W_]*)            # numbers with separators: 3.5, 1,000, 2.5m
    | [^\W_]+(?:['\u2019\-][^\W_]+)*          # words, with inner hyphens and apostrophes
    | \.\.\.|--
    | [^\w\s]                                # any other symbol on its own
    | _+
    """,
    re.VERBOSE,
)
_CLITIC = re.compile(r"^(.+?)(n't|'s|'re|'ve|'ll|'d|'m)$", re.IGNORECASE)


def tokenise(sentence: str) -> list[str]:
    """Split one sentence into tokens (case kept)."""
    tokens: list[str] = []
    found = _TOKEN.findall(sentence)
    for i, tok in enumerate(found):
        if tok == "." and tokens and i + 1 < len(found) and tokens[-1].lower() in ABBREVIATIONS:
            tokens[-1] += "."
            continue
        if "'" in tok or "\u2019" in tok:
            tok = tok.replace("\u2019", "'")
            m = _CLITIC.match(tok)
            if m and m.group(1)[-1:].isalnum():
                tokens.extend(m.groups())
                continue
        tokens.append(tok)
    return tokens


# --------------------------------------------------------------------------- config


@dataclass
class TextConfig:
    """The ``text`` section of params.yaml."""

    max_sentences: int = 50
    max_tokens: int = 40
    lowercase: bool = True
    lemmatise: bool = False
    include_titles: bool = True
    spelling_sources: list[str] = field(default_factory=lambda: ["bbc"])
    spelling: SpellingConfig = field(default_factory=SpellingConfig)

    def __post_init__(self) -> None:
        if self.max_sentences < 1 or self.max_tokens < 1:
            raise ValueError("max_sentences and max_tokens must be at least 1")


def _wordnet_lemmatiser():
    """NLTK's WordNet lemmatiser, or a clear error when it is not installed offline."""
    try:
        from nltk.corpus import wordnet
        from nltk.stem import WordNetLemmatizer

        wordnet.ensure_loaded()
    except (ImportError, LookupError) as e:
        raise CmiscError(
            "text.lemmatise is true, but NLTK's WordNet is not available offline "
            "(install nltk and run `python -m nltk.downloader wordnet` during setup, "
            f"or set text.lemmatise: false): {str(e).strip().splitlines()[0]}"
        ) from e
    return WordNetLemmatizer()


# --------------------------------------------------------------------------- normaliser


class TextNormaliser:
    """Text -> list of token lists, the same for training and inference.

    ``spelling_replacements`` counts the British -> American replacements made
    so far (for stage reports).
    """

    def __init__(self, config: TextConfig | None = None):
        self.config = config or TextConfig()
        self.speller = SpellingNormaliser(self.config.spelling)
        self._lemmatiser = _wordnet_lemmatiser() if self.config.lemmatise else None
        self.spelling_replacements = 0

    def tokens(self, sentence: str, source: str | None = None) -> list[str]:
        """One sentence -> its tokens (steps 1-5 of the module docstring)."""
        cfg = self.config
        if source is not None and source in cfg.spelling_sources:
            sentence, n = self.speller.normalise(sentence)
            self.spelling_replacements += n
        toks = tokenise(sentence)
        if cfg.lowercase:
            toks = [t.lower() for t in toks]
        if self._lemmatiser is not None:
            toks = [self._lemmatiser.lemmatize(t) for t in toks]
        return toks[: cfg.max_tokens]

    def _collect(self, sentences: Iterable[str], source: str | None) -> list[list[str]]:
        out: list[list[str]] = []
        for s in sentences:
            if len(out) >= self.config.max_sentences:
                break
            toks = self.tokens(s, source)
            if toks:
                out.append(toks)
        return out

    def sentences(self, text: str, source: str | None = None) -> list[list[str]]:
        """Plain text -> at most ``max_sentences`` token lists."""
        return self._collect(split_sentences(text), source)

    def blocks(self, text_blocks: Iterable[Mapping], source: str | None = None) -> list[list[str]]:
        """The ``text_blocks`` of a pairs row -> token lists: per block, its
        title lines (when ``include_titles``), then its sentences."""

        def flat() -> Iterable[str]:
            for block in text_blocks or []:
                if self.config.include_titles:
                    yield from block.get("titles") or []
                yield from block.get("sentences") or []

        return self._collect(flat(), source)


# --------------------------------------------------------------------------- cli


def cli_main(argv: list[str]) -> int:
    """``cmisc text [--source bbc] [--params params.yaml]``: stdin -> one JSON list per sentence."""
    from cmisc_model.config import DEFAULT_PARAMS, load_section

    ap = argparse.ArgumentParser(
        prog="cmisc text",
        description="Print the tokens the model sees for the text on stdin, "
        "one JSON list per sentence.",
    )
    ap.add_argument(
        "--source", default=None, help="source name, e.g. bbc (turns on spelling normalisation)"
    )
    ap.add_argument(
        "--params", type=Path, default=None, help="params file (default: ./params.yaml if present)"
    )
    args = ap.parse_args(argv)
    params = args.params
    if params is None and DEFAULT_PARAMS.exists():
        params = DEFAULT_PARAMS
    config = load_section(TextConfig, "text", params) if params is not None else TextConfig()
    normaliser = TextNormaliser(config)
    for toks in normaliser.sentences(sys.stdin.read(), args.source):
        print(json.dumps(toks, ensure_ascii=False))
    return 0
