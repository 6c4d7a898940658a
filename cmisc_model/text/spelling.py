"""British -> American spelling for the news source, protecting proper nouns.

2017 used a private two-column word list (``br_am_dict.txt``, not public) on
lower-cased tokens of BBC text. Here the map comes from **breame**
(Apache-2.0, ``breame.data.spelling_constants.BRITISH_ENGLISH_SPELLINGS``,
1,730 lower-case single words). Why breame: it is a maintained package on
PyPI, the largest of the public lists (localspelling has 1,005 lines and
deliberately leaves out ``programme``, ``grey``, ``tyre``, ``defence``,
``catalogue``, all frequent in news), and it is plain data (a dict), so the
map is inspectable and correctable here. Its known errors are corrected
(``_CORRECTIONS``) and the entries whose "British" form is also the usual
American spelling, or a different word, are dropped (``_EXCLUDED``).

Proper nouns keep their spelling ("World Trade Centre", "Ministry of
Defence", "Australian Defence Force"), by two rules applied to the cased text
(so spelling runs *before* lower-casing; Departure from 2017: there it ran on
lower-cased, lemmatised tokens, where a name can no longer be told apart):

1. Protected phrases, matched case-sensitively on word boundaries
   (``SpellingConfig.protected_phrases``, in params.yaml ``text.spelling``).
   Every word inside a match is kept.
2. The capitalised-name rule (``protect_capitalised``): a word starting with
   a capital letter is a name, and kept, unless it starts a sentence and the
   next word is not capitalised (a lower-case word after optional connectors
   "of", "for", "and", "the", "de"). So "the Centre Party" and "Defence
   Secretary Geoff Hoon" keep their spelling, "Colour is back." becomes
   "Color is back.", and lower-case "the city centre" becomes "the city
   center". Sentence start = the start of the string, or after ``.``, ``!``,
   ``?`` (plus closing quotes/brackets) and whitespace, or after a line break.

The default phrase list also holds "Labour" alone, so that the party keeps
its name at the start of a sentence ("Labour said ...") at the price of
"Labour costs rose." staying British. Words in capitals ("COLOUR", a
shouted headline) are not treated as names. The price of protection: a
protected form stays in the vocabulary beside its American twin (the
lower-cased "centre" of "World Trade Centre" beside "center").

Case is carried over: ``colour -> color``, ``Colour -> Color``,
``COLOUR -> COLOR``; a mixed-case word ("CoLour") is left alone.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from breame.data.spelling_constants import BRITISH_ENGLISH_SPELLINGS

# breame 0.1.2 errors (checked by hand): a participle mapped to a base form,
# a plural to a singular, and "philtre" (a potion) to "filter".
_CORRECTIONS = {
    "pummelled": "pummeled",
    "pummelling": "pummeling",
    "snowploughs": "snowplows",
    "philtre": "philter",
    "philtres": "philters",
}

# Entries dropped: the "British" form is also the usual American spelling
# (US English writes "dialogue", "prologue", "epilogue", "monologue",
# "aesthetic", "compact disc", "gauge", "buses", "gases"; breame even maps the
# last two to "busses", "gasses", which are other words), the "American" form
# is another word ("tonne" is 1,000 kg, a US "ton" 907 kg; "tranquilly" ->
# "tranquility" turns an adverb into a noun).
# fmt: off
_EXCLUDED = frozenset({
    "dialogue", "dialogues", "prologue", "prologues", "epilogue", "epilogues",
    "monologue", "monologues", "aesthete", "aesthetes", "aesthetic", "aesthetically",
    "aesthetics", "disc", "discs", "tonne", "tonnes", "gauge", "gauged", "gauges",
    "gauging", "buses", "busing", "minibuses", "gases", "tranquilly",
})
# fmt: on

DEFAULT_PROTECTED_PHRASES = [
    "Labour",
    "Labour Party",
    "World Trade Centre",
    "Ministry of Defence",
    "Royal Opera House Covent Garden",
    "Centre Party",
    "Australian Defence Force",
    "Defence Force",
    "Department of Defence",
    "Defence Secretary",
    "Defence Minister",
    "Royal Armoured Corps",
]


def british_to_american() -> dict[str, str]:
    """The lower-case British -> American map: breame, corrected, minus exclusions."""
    mapping = {b: a for b, a in BRITISH_ENGLISH_SPELLINGS.items() if b not in _EXCLUDED}
    for b, a in _CORRECTIONS.items():
        if b in mapping or b in BRITISH_ENGLISH_SPELLINGS:
            mapping[b] = a
    return mapping


@dataclass
class SpellingConfig:
    """``text.spelling`` in params.yaml."""

    protected_phrases: list[str] = field(default_factory=lambda: list(DEFAULT_PROTECTED_PHRASES))
    protect_capitalised: bool = True


# Unicode letters only: digits and "_" end a word; breame's keys are ASCII.
_WORD = re.compile(r"[^\W\d_]+")
_CONNECTORS = r"(?:(?:of|for|and|the|de)\s+)*"
_NEXT_CAPITALISED = re.compile(r"\s+" + _CONNECTORS + r"[^\W\d_a-z]")
_SENTENCE_END = re.compile(r"(?:[.!?][\"'\u2019\u201d)\]]*\s+|\n\s*)$")
_OPENERS = "\"'\u2018\u201c(["


class SpellingNormaliser:
    """``normalise(text) -> (text, n_replacements)``.

    ``replaced`` and ``protected`` count, per lower-case British word, the
    occurrences changed and the occurrences kept by a protection rule, over
    the object's lifetime (for the stage report).
    """

    def __init__(self, config: SpellingConfig | None = None):
        self.config = config or SpellingConfig()
        self.mapping = british_to_american()
        phrases = sorted(
            {p for p in self.config.protected_phrases if p.strip()}, key=len, reverse=True
        )
        self._phrases = (
            re.compile(r"(?<!\w)(?:" + "|".join(re.escape(p) for p in phrases) + r")(?!\w)")
            if phrases
            else None
        )
        self.replaced: Counter[str] = Counter()
        self.protected: Counter[str] = Counter()

    def _starts_sentence(self, text: str, start: int) -> bool:
        head = text[:start].rstrip(_OPENERS)  # opening quotes/brackets right before the word
        return not head.strip() or bool(_SENTENCE_END.search(head))

    def _is_name(self, text: str, m: re.Match) -> bool:
        """The capitalised-name rule (module docstring, rule 2)."""
        if not self.config.protect_capitalised:
            return False
        if not self._starts_sentence(text, m.start()):
            return True
        return bool(_NEXT_CAPITALISED.match(text, m.end()))

    def normalise(self, text: str) -> tuple[str, int]:
        """British spellings in ``text`` -> American; returns the text and the count."""
        spans = (
            [(p.start(), p.end()) for p in self._phrases.finditer(text)] if self._phrases else []
        )
        out: list[str] = []
        last = n = 0
        for m in _WORD.finditer(text):
            word = m.group()
            lower = word.lower()
            american = self.mapping.get(lower)
            if american is None:
                continue
            if word == lower:
                new = american
            elif word.isupper() and len(word) > 1:
                new = american.upper()
            elif word[0].isupper() and word[1:] == word[1:].lower():
                new = american[0].upper() + american[1:]
            else:
                continue  # mixed case ("CoLour"): a brand or a name, left alone
            protected = any(s <= m.start() < e for s, e in spans) or (
                word[0].isupper() and not word.isupper() and self._is_name(text, m)
            )
            if protected:
                self.protected[lower] += 1
                continue
            out.append(text[last : m.start()])
            out.append(new)
            last = m.end()
            n += 1
            self.replaced[lower] += 1
        if not n:
            return text, 0
        out.append(text[last:])
        return "".join(out), n
