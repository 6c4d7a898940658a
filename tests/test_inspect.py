"""cmisc inspect on pipeline artifacts."""

from __future__ import annotations

import json

from cmisc_model import schemas as S
from cmisc_model.cli import main as cli


def test_inspect_labelled_file(tmp_path, capsys):
    rows = []
    for i, (src, cmi, sc) in enumerate([("bbc", 0.5, 0.0), ("bbc", 0.5, 1.0), ("simplewiki", 1.0, 1.0)]):
        rows.append({"pair_id": f"p{i}", "source": src, "doc_id": str(i), "position": "lead", "section_path": [],
                         "text_blocks": [], "image_status": "ok", "cmi": cmi, "sc": sc, "split": "train"})
    S.write_table(S.from_rows(rows, S.LABELLED), tmp_path / "l.parquet", S.LABELLED)
    assert cli(["inspect", str(tmp_path / "l.parquet"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["schema"] == "labelled" and info["rows"] == 3
    assert info["by_source"] == {"bbc": 2, "simplewiki": 1}
    assert info["labels"]["bbc"]["mean_sc"] == 0.5
    assert info["labels"]["all"]["cmi"]["0.5"] == 2
    assert cli(["inspect", str(tmp_path / "l.parquet")]) == 0
    assert "labels [simplewiki] n=1 mean SC=1.0" in capsys.readouterr().out


def test_inspect_missing_file_is_one_line_error(tmp_path, capsys):
    assert cli(["inspect", str(tmp_path / "nope.parquet")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("nope.parquet: no such file") and "\n" not in err


def test_inspect_non_parquet_is_one_line_error(tmp_path, capsys):
    text = tmp_path / "notes.csv"
    text.write_text("a,b\n1,2\n", encoding="utf-8")
    empty = tmp_path / "empty.parquet"
    empty.write_bytes(b"")
    for path, words in ((text, "not a Parquet file"), (empty, "not a Parquet file"), (tmp_path, "a folder")):
        assert cli(["inspect", str(path)]) == 2, path
        captured = capsys.readouterr()
        err = captured.err.strip()
        assert err.startswith("cmisc inspect: error:") and words in err and str(path) in err, err
        assert "\n" not in err and captured.out == ""
