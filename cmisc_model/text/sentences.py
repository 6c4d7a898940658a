"""Sentence splitting shared by every source and by inference.

A rule-based splitter, so that nothing has to be downloaded at run time (NLTK's
punkt model is a separate download). It splits after ``.``, ``!`` or ``?``
(optionally followed by closing quotes or brackets) when the next word starts
with a capital letter of any script (Latin, Cyrillic, Greek…), a letter of a
script without case, a digit or an opening quote, except after common
abbreviations (titles and military ranks too: "Maj. Smith", "Brig. Jones") and
single initials ("Mr. Smith", "J. R. R. Tolkien", "e.g. this").
Line breaks that separate paragraphs always end a sentence.
"""

from __future__ import annotations

import re

ABBREVIATIONS = frozenset(
    ["mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "etc", "eg", "ie", "no", "nos", "vol", "pp", "fig", "al", "approx", "dept", "est", "gen", "gov", "lt", "col", "sgt", "capt", "cmdr", "adm", "maj", "brig", "cpl", "pvt", "cdr", "cpt", "pres", "sen", "rep", "fr", "messrs", "rev", "hon", "inc", "ltd", "co", "corp", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "mt", "ft", "ave", "blvd", "u.s", "u.k", "e.g", "i.e", "a.m", "p.m"]
)

# A candidate boundary: terminal punctuation, optional closers, whitespace, then
# (after an optional opening quote) the next word's first character, which
# ``_starts_sentence`` checks: regex classes know no "upper case of any script".
_BOUNDARY = re.compile(r"""([.!?]+["'\u2019\u201d)\]]*)\s+(?=["'\u2018\u201c(\[]?(\w))""")
_PARAGRAPH = re.compile(r"\n\s*\n+")


def _ends_with_abbreviation(chunk: str) -> bool:
    words = chunk.rstrip().rstrip(".").split()
    if not words:
        return False
    last = words[-1].lower().strip("(\"'")
    if last in ABBREVIATIONS:
        return True
    # Single initials such as "J." in "J. R. R. Tolkien".
    return len(last) == 1 and last.isalpha()


def _starts_sentence(char: str) -> bool:
    """A capital of any script, a letter of a caseless script, or a digit."""
    return char.isalnum() and not char.islower() and char != "_"


def split_sentences(text: str) -> list[str]:
    """Split text into sentences; whitespace inside a sentence is collapsed."""
    sentences: list[str] = []
    for paragraph in _PARAGRAPH.split(text):
        paragraph = " ".join(paragraph.split())
        if not paragraph:
            continue
        start = 0
        for m in _BOUNDARY.finditer(paragraph):
            if not _starts_sentence(m.group(2)):
                continue
            end = m.end(1)
            chunk = paragraph[start:end]
            single_period = m.group(1).startswith(".") and len(m.group(1).rstrip("\"'\u2019\u201d)]")) == 1
            if single_period and _ends_with_abbreviation(chunk):
                continue
            sentences.append(chunk.strip())
            start = m.end()
        tail = paragraph[start:].strip()
        if tail:
            sentences.append(tail)
    return sentences
