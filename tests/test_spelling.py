"""British -> American spelling: the map, case, protected names, real news text."""

from __future__ import annotations

import pytest

from cmisc_model.text.spelling import SpellingConfig, SpellingNormaliser, british_to_american


@pytest.fixture(scope="module")
def speller() -> SpellingNormaliser:
    return SpellingNormaliser()


def test_map_is_breame_corrected():
    m = british_to_american()
    assert len(m) > 1700
    assert m["colour"] == "color" and m["centre"] == "center" and m["programme"] == "program"
    assert m["pummelled"] == "pummeled"  # breame maps it to "pummel"
    assert m["snowploughs"] == "snowplows"
    assert "tonne" not in m and "dialogue" not in m  # a different unit / also the US spelling
    assert "buses" not in m and "gases" not in m  # breame: "busses", "gasses" (other words)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("the colour", "the color"),
        ("Colour is back.", "Color is back."),
        ("COLOUR", "COLOR"),
        ("CoLour", "CoLour"),  # mixed case: left alone
        ("colour-blind favourites", "color-blind favorites"),
        ("He left. Organisation matters.", "He left. Organization matters."),
        (
            'She said: "yes". "Colour me surprised," he said.',
            'She said: "yes". "Color me surprised," he said.',
        ),
        ("the city centre of Manchester", "the city center of Manchester"),
    ],
)
def test_case_is_carried_over(speller, text, expected):
    assert speller.normalise(text)[0] == expected


def test_count(speller):
    text, n = speller.normalise("The colour of the centre's organisation.")
    assert (text, n) == ("The color of the center's organization.", 3)
    assert speller.normalise("Nothing British here.") == ("Nothing British here.", 0)


@pytest.mark.parametrize(
    "text",
    [
        "They flew into the World Trade Centre.",
        "A spokesman for the Ministry of Defence said.",
        "Royal Opera House Covent Garden",
        "the Centre Party won",
        "Labour Party members",
        "Labour costs rose.",  # protected phrase "Labour", even at a sentence start
        "Defence Secretary Geoff Hoon said",  # sentence-initial, but the next word is capitalised
        "the Australian Defence Force",
        "visitors to the Centre for Policy Studies",  # capitalised mid-sentence: a name
    ],
)
def test_names_are_protected(speller, text):
    assert speller.normalise(text) == (text, 0)


def test_protection_is_configurable():
    off = SpellingNormaliser(SpellingConfig(protected_phrases=[], protect_capitalised=False))
    assert off.normalise("the World Trade Centre and the Labour Party") == (
        "the World Trade Center and the Labor Party",
        2,
    )
    # phrases are matched case-sensitively: lower-case "labour party" is ordinary text
    assert SpellingNormaliser().normalise("a labour party") == ("a labor party", 1)


def test_real_british_news_text(speller):
    """gensim's lee_background.cor: Australian (ABC) news in British spelling."""
    datapath = pytest.importorskip("gensim.test.utils").datapath
    with open(datapath("lee_background.cor"), encoding="utf-8") as f:
        docs = f.read().splitlines()
    fresh = SpellingNormaliser()
    out = [fresh.normalise(d) for d in docs]
    text = "\n".join(t for t, _ in out)
    total = sum(n for _, n in out)
    # data_sources.md: breame finds 302 convertible tokens; about a fifth are names here
    assert total > 200 and total + sum(fresh.protected.values()) > 270
    for british in (" defence ", " organisation ", " metres ", " centre "):
        assert british in "\n".join(docs) and british not in text
    for american in (" defense ", " organization ", " meters ", " center "):
        assert american in text
    # proper nouns kept
    assert text.count("World Trade Centre") == "\n".join(docs).count("World Trade Centre") >= 8
    assert "Australian Defence Force" in text and "Labour Party" in text
    assert "Labor Party" in text  # the Australian party, spelt so already
    assert fresh.protected["centre"] >= 8 and fresh.replaced["defence"] > 10
