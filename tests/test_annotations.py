"""Annotation import: every accepted format, every error message, the labelled split."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from cmisc_model import schemas as S
from cmisc_model.cli import main as cli
from cmisc_model.corpus.annotations import (
    LabelledSplitConfig,
    import_annotations,
    label_distribution,
    split_labelled,
)


def write_lines(path, records):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n")
    return path


def test_project_jsonl_and_csv(tmp_path):
    j = write_lines(tmp_path / "a.jsonl", [{"pair_id": "p1", "cmi": 0.5, "sc": -0.5, "annotator": "x"}])
    c = tmp_path / "a.csv"
    c.write_text("pair_id,cmi,sc\np1,0.75,1\np2,0,0\n")
    tj, ej, _ = import_annotations(j)
    tc, ec, _ = import_annotations(c)
    assert not ej and not ec
    assert tj.to_pylist() == [{"pair_id": "p1", "cmi": 0.5, "sc": -0.5, "source": None, "annotator": "x"}]
    assert tc.column("cmi").to_pylist() == [0.75, 0.0] and tc.column("sc").to_pylist() == [1.0, 0.0]


def test_2017_exports_map_to_pair_ids(tmp_path):
    bbc = {"name": "story-17", "mi": 0.25, "sc": 0.5, "train": False, "type": "Photograph", "snippets": []}
    wiki = {"id": 39, "section": "History", "name": "/wiki/File:Red apple.jpg", "mi": 1.0, "sc": 1.0,
            "valid": True, "type": "Photograph", "snippets": []}
    invalid = {**wiki, "name": "/wiki/File:Other.jpg", "valid": False}
    t, errors, skipped = import_annotations(write_lines(tmp_path / "x.jsonl", [bbc, wiki, invalid]))
    assert not errors and skipped == 1
    ids = t.column("pair_id").to_pylist()
    assert ids == [
        S.make_pair_id("bbc", "data_test/story-17", "story-17.jpg"),
        S.make_pair_id("simplewiki", "39", "Red_apple.jpg"),
    ]


def test_malformed_rows_rejected_with_line_and_rest_kept(tmp_path):
    path = write_lines(
        tmp_path / "ann.jsonl",
        [
            {"pair_id": "a", "cmi": 0, "sc": 0},
            "{not json",
            {"pair_id": "b", "cmi": 0.6, "sc": 0},  # unknown CMI label
            {"pair_id": "c", "cmi": 2, "sc": 0},  # the old 8-level integers: never mapped
            {"pair_id": "d", "cmi": 1, "sc": -1.5},
            {"hello": 1},
            {"pair_id": "a", "cmi": 1, "sc": 1},  # duplicate
            {"pair_id": "e", "cmi": 1, "sc": 1},
        ],
    )
    table, errors, _ = import_annotations(path)
    assert table.column("pair_id").to_pylist() == ["a", "e"]
    msgs = [str(e) for e in errors]
    assert msgs[0].startswith(f"{path}:2: not valid JSON")
    assert msgs[1] == f"{path}:3: unknown CMI label 0.6 (allowed: 0, 0.25, 0.5, 0.75, 1)"
    assert msgs[2].startswith(f"{path}:4: unknown CMI label 2")
    assert msgs[3].startswith(f"{path}:5: unknown SC label -1.5")
    assert msgs[4].startswith(f"{path}:6: unrecognised record (keys: hello)")
    assert msgs[5] == f"{path}:7: pair a already labelled on line 1"


def test_csv_without_required_header_is_an_error(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("id,cmi\n1,0\n")
    with pytest.raises(Exception, match=r"a\.csv: CSV header lacks pair_id, sc"):
        import_annotations(p)


def test_cli_import_writes_valid_rows_and_signals_rejections(tmp_path, capsys):
    path = write_lines(tmp_path / "ann.jsonl", [{"pair_id": "a", "cmi": 0, "sc": 0}, "garbage"])
    assert cli(["annotations", "import", str(path), "--out", str(tmp_path / "a.parquet")]) == 3
    assert S.read_table(tmp_path / "a.parquet", S.ANNOTATIONS).num_rows == 1
    assert "ann.jsonl:2: not valid JSON" in capsys.readouterr().err


def _rows(n_per_cell):
    rows, k = [], 0
    for (cmi, sc), n in n_per_cell.items():
        for _ in range(n):
            rows.append({"pair_id": f"p{k:04d}", "cmi": cmi, "sc": sc, "source": "x"})
            k += 1
    return rows


def test_split_is_stratified_seeded_and_disjoint():
    rows = _rows({(0.5, 1.0): 100, (0.0, 0.0): 20, (1.0, 1.0): 9})
    cfg = LabelledSplitConfig(train_fraction=0.89, val_fraction=0.15)
    a = split_labelled(rows, 12345, cfg)
    b = split_labelled(list(reversed(rows)), 12345, cfg)
    c = split_labelled(rows, 1, cfg)
    assert a == b  # input order does not matter
    assert a != c  # the seed does
    cell = Counter((r["cmi"], r["sc"], r["split"]) for r in a)
    assert cell[(0.5, 1.0, "test")] == 11 and abs(cell[(0.5, 1.0, "val")] - 0.89 * 0.15 * 100) <= 1
    assert abs(cell[(0.0, 0.0, "test")] - 2.2) <= 1 and abs(cell[(1.0, 1.0, "test")] - 0.99) <= 1
    assert len({r["pair_id"] for r in a}) == len(rows)


def test_label_distribution_counts():
    d = label_distribution(_rows({(0.5, 1.0): 3, (0.0, -1.0): 1}))
    assert d["all"]["cmi"]["0.5"] == 3 and d["all"]["sc"]["-1"] == 1
    assert d["all"]["mean_sc"] == 0.5


def test_split_keeps_every_document_in_one_split():
    # 60 articles with 1-4 labelled pairs each (a lead pair carries its whole article)
    rows = []
    for d in range(60):
        for k in range(1 + d % 4):
            rows.append({"pair_id": f"p{d}-{k}", "source": "simplewiki", "doc_id": str(d),
                         "cmi": (0.5, 1.0, 0.25)[(d + k) % 3], "sc": 1.0})
    out = split_labelled(rows, 7, LabelledSplitConfig(train_fraction=0.8, val_fraction=0.2))
    splits_of = {}
    for r in out:
        splits_of.setdefault(r["doc_id"], set()).add(r["split"])
    assert all(len(s) == 1 for s in splits_of.values())
    n = Counter(r["split"] for r in out)
    assert set(n) == {"train", "val", "test"} and abs(n["test"] - 0.2 * len(rows)) <= 4
