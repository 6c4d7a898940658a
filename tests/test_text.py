"""TextNormaliser: tokens, lower-casing, spelling per source, truncation, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cmisc_model.config import ParamsError, from_mapping
from cmisc_model.errors import CmiscError
from cmisc_model.text.normalise import TextConfig, TextNormaliser, tokenise


@pytest.mark.parametrize(
    "sentence, tokens",
    [
        ("John's dog didn't bark.", ["John", "'s", "dog", "did", "n't", "bark", "."]),
        ("The BBC\u2019s reporters", ["The", "BBC", "'s", "reporters"]),  # curly apostrophe -> '
        ("the players' union", ["the", "players", "'", "union"]),
        (
            "It cost \u00a33.5m, up 1,000%.",
            ["It", "cost", "\u00a3", "3.5m", ",", "up", "1,000", "%", "."],
        ),
        ("a well-known U.S. firm", ["a", "well-known", "U.S.", "firm"]),
        (
            "Mr. Smith met Mr Jones at 10:30...",
            ["Mr.", "Smith", "met", "Mr", "Jones", "at", "10:30", "..."],
        ),
        ('He said "no" (twice)', ["He", "said", '"', "no", '"', "(", "twice", ")"]),
        ("O'Brien won't go", ["O'Brien", "wo", "n't", "go"]),
        ("caf\u00e9 na\u00efve", ["caf\u00e9", "na\u00efve"]),
        ("", []),
    ],
)
def test_tokenise(sentence, tokens):
    assert tokenise(sentence) == tokens


def test_sentences_lowercase_and_split():
    t = TextNormaliser()
    assert t.sentences("The Cat sat. It purred!\n\nA new paragraph") == [
        ["the", "cat", "sat", "."],
        ["it", "purred", "!"],
        ["a", "new", "paragraph"],
    ]
    assert TextNormaliser(TextConfig(lowercase=False)).sentences("The Cat sat.") == [
        ["The", "Cat", "sat", "."]
    ]


def test_spelling_only_for_news_source():
    t = TextNormaliser()
    text = "The colour of the city centre. The World Trade Centre fell."
    assert t.sentences(text) == [
        ["the", "colour", "of", "the", "city", "centre", "."],
        ["the", "world", "trade", "centre", "fell", "."],
    ]
    assert t.spelling_replacements == 0
    assert t.sentences(text, "bbc") == [
        ["the", "color", "of", "the", "city", "center", "."],
        ["the", "world", "trade", "centre", "fell", "."],  # a name: kept
    ]
    assert t.spelling_replacements == 2
    assert t.sentences(text, "coco")[0][1] == "colour"


def test_truncation_to_sentences_and_tokens():
    t = TextNormaliser(TextConfig(max_sentences=3, max_tokens=4))
    text = " ".join(f"Sentence number {i} has many words in it." for i in range(10))
    out = t.sentences(text)
    assert out == [["sentence", "number", str(i), "has"] for i in range(3)]
    # the defaults are the paper's 50 x 40
    long = " ".join(["word"] * 100) + ". " + " ".join(f"Line {i} here." for i in range(80))
    out = TextNormaliser().sentences(long)
    assert len(out) == 50 and len(out[0]) == 40 and all(len(s) <= 40 for s in out)


def test_blocks_titles_first_and_option():
    blocks = [
        {"titles": ["Colour row", "Second line"], "sentences": ["The colour faded.", ""]},
        {"titles": [], "sentences": ["More text."]},
    ]
    with_titles = TextNormaliser().blocks(blocks, "bbc")
    assert with_titles == [
        ["color", "row"],
        ["second", "line"],
        ["the", "color", "faded", "."],
        ["more", "text", "."],
    ]
    without = TextNormaliser(TextConfig(include_titles=False)).blocks(blocks, "bbc")
    assert without == [["the", "color", "faded", "."], ["more", "text", "."]]
    assert TextNormaliser().blocks([], None) == []


def test_blocks_truncate_across_titles():
    blocks = [{"titles": ["T"], "sentences": ["A."] * 60}]
    out = TextNormaliser().blocks(blocks)
    assert len(out) == 50 and out[0] == ["t"]


def test_config_from_params_and_bad_values():
    cfg = from_mapping(
        TextConfig, {"max_sentences": 5, "spelling": {"protect_capitalised": False}}, "text"
    )
    assert cfg.max_sentences == 5 and cfg.spelling.protect_capitalised is False
    assert cfg.spelling.protected_phrases  # default list kept
    with pytest.raises(ParamsError, match="text.max_tokens"):
        from_mapping(TextConfig, {"max_tokens": "forty"}, "text")
    with pytest.raises(ParamsError, match="text.spelling.nope"):
        from_mapping(TextConfig, {"spelling": {"nope": 1}}, "text")
    with pytest.raises(ParamsError):
        from_mapping(TextConfig, {"max_sentences": 0}, "text")


def test_lemmatise_fails_clearly_without_wordnet():
    try:
        import nltk  # noqa: F401
        from nltk.corpus import wordnet

        wordnet.ensure_loaded()
        pytest.skip("WordNet is installed here")
    except (ImportError, LookupError):
        pass
    with pytest.raises(CmiscError, match="lemmatise"):
        TextNormaliser(TextConfig(lemmatise=True))


def test_cli_prints_json_per_sentence(tmp_path):
    text = "The colour is grey. Labour Party members agreed."
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "cmisc_model",
            "text",
            "--source",
            "bbc",
            "--params",
            str(tmp_path / "none.yaml"),
        ],
        input=text,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 2 and "none.yaml" in run.stderr  # a missing params file is named
    params = tmp_path / "params.yaml"
    params.write_text("text:\n  max_tokens: 3\n")
    run = subprocess.run(
        [sys.executable, "-m", "cmisc_model", "text", "--source", "bbc", "--params", str(params)],
        input=text,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert lines == [["the", "color", "is"], ["labour", "party", "members"]]
