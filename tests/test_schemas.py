"""Data contracts: round trips, every validation error, atomic writes."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cmisc_model import schemas as S


def pair_row(**over):
    row = {
        "pair_id": S.make_pair_id("simplewiki", "42", "Cat.jpg"),
        "source": "simplewiki",
        "doc_id": "42",
        "doc_title": "Cat",
        "revision_id": 7,
        "position": "lead",
        "section_path": [],
        "text_blocks": [{"titles": [], "sentences": ["Cats are small.", "They purr."]}],
        "caption": "A cat",
        "image_title": "Cat.jpg",
        "image_status": "ok",
    }
    row.update(over)
    return row


def test_pairs_round_trip(tmp_path):
    rows = [pair_row(), pair_row(pair_id="b" * 16, position="section", section_path=["Life", "Food"])]
    table = S.from_rows(rows, S.PAIRS)
    path = S.write_table(table, tmp_path / "pairs.parquet", S.PAIRS, metadata={"cmisc.incomplete": "true"})
    back = S.read_table(path, S.PAIRS)
    assert back.to_pylist() == table.to_pylist()
    assert back.column("text_blocks")[0].as_py()[0]["sentences"] == ["Cats are small.", "They purr."]
    assert S.file_metadata(path)["cmisc.incomplete"] == "true"
    assert S.file_metadata(path)["cmisc.schema"] == "pairs/1"


def test_missing_column_names_file_and_column(tmp_path):
    table = S.from_rows([pair_row()], S.PAIRS).drop_columns(["caption"])
    path = tmp_path / "bad.parquet"
    pq.write_table(table, path)
    with pytest.raises(S.SchemaError, match=r"bad\.parquet: column 'caption' is missing"):
        S.read_table(path, S.PAIRS)


def test_wrong_type_names_column(tmp_path):
    table = S.from_rows([pair_row()], S.PAIRS)
    idx = table.column_names.index("section_path")
    table = table.set_column(idx, "section_path", pa.array([3], pa.int64()))
    path = tmp_path / "bad.parquet"
    pq.write_table(table, path)
    with pytest.raises(S.SchemaError, match=r"column 'section_path' has type int64"):
        S.read_table(path, S.PAIRS)


def test_null_in_required_column_names_row(tmp_path):
    table = S.from_rows([pair_row(), pair_row(pair_id="x" * 16)], S.PAIRS)
    idx = table.column_names.index("doc_id")
    table = table.set_column(idx, "doc_id", pa.array(["42", None]))
    with pytest.raises(S.SchemaError, match=r"column 'doc_id', row 1: null"):
        S.validate(table, S.PAIRS, "t.parquet")


@pytest.mark.parametrize(
    "column,value,msg",
    [
        ("position", "middle", "'middle' is not 'lead' or 'section'"),
        ("image_status", "broken", "'broken' is not 'ok', 'missing'"),
        ("image_status", "rejected:", "is not 'ok', 'missing'"),
    ],
)
def test_value_rules_name_row(column, value, msg):
    rows = [pair_row(), pair_row(pair_id="y" * 16, **{column: value})]
    with pytest.raises(S.SchemaError, match=rf"column '{column}', row 1: .*{msg}"):
        S.from_rows(rows, S.PAIRS, "p.parquet")


def test_duplicate_pair_id_rejected():
    with pytest.raises(S.SchemaError, match=r"column 'pair_id', row 1: .* repeats row 0"):
        S.from_rows([pair_row(), pair_row()], S.PAIRS)


def test_extra_column_rejected():
    table = S.from_rows([pair_row()], S.PAIRS).append_column("junk", pa.array([1]))
    with pytest.raises(S.SchemaError, match=r"unexpected column\(s\) \['junk'\]"):
        S.validate(table, S.PAIRS, "p")


def test_annotation_labels_validated():
    good = {"pair_id": "a", "cmi": 0.75, "sc": -0.5}
    assert S.from_rows([good], S.ANNOTATIONS).column("cmi").to_pylist() == [0.75]
    with pytest.raises(S.SchemaError, match=r"column 'cmi', row 0: 0.6"):
        S.from_rows([{**good, "cmi": 0.6}], S.ANNOTATIONS)
    with pytest.raises(S.SchemaError, match=r"column 'sc', row 0: 0.25"):
        S.from_rows([{**good, "sc": 0.25}], S.ANNOTATIONS)


def test_label_classes():
    assert [S.cmi_class(v) for v in S.CMI_LEVELS] == [0, 1, 2, 3, 4]
    assert [S.sc_class(v) for v in S.SC_LEVELS] == [0, 1, 2, 3, 4]
    assert S.sc_class(-0.5) == int(2 * -0.5 + 2)
    with pytest.raises(ValueError):
        S.cmi_class(0.3)


def test_word2vec_vector_length_enforced():
    with pytest.raises(S.SchemaError):
        S.from_rows([{"token": "a", "id": 2, "vector": [0.0] * 299}], S.WORD2VEC)
    t = S.from_rows([{"token": "a", "id": 2, "vector": [0.5] * 300}], S.WORD2VEC)
    assert len(t.column("vector")[0].as_py()) == 300


def test_vocab_and_embeddings_round_trip(tmp_path):
    vocab = S.from_rows(
        [{"token": "<pad>", "id": 0, "count": 0}, {"token": "<unk>", "id": 1, "count": 3}], S.VOCAB
    )
    S.write_table(vocab, tmp_path / "v.parquet", S.VOCAB)
    assert S.read_table(tmp_path / "v.parquet", S.VOCAB).to_pylist() == vocab.to_pylist()
    emb = S.from_rows([{"pair_id": "p", "vector": [1.0] * 2400}], S.EMBEDDINGS)
    S.write_table(emb, tmp_path / "e.parquet", S.EMBEDDINGS)
    assert S.read_table(tmp_path / "e.parquet", S.EMBEDDINGS).num_rows == 1


def test_failed_write_keeps_previous_file(tmp_path):
    path = tmp_path / "pairs.parquet"
    S.write_table(S.from_rows([pair_row()], S.PAIRS), path, S.PAIRS)
    before = path.read_bytes()
    bad = S.from_rows([pair_row()], S.PAIRS).drop_columns(["source"])
    with pytest.raises(S.SchemaError):
        S.write_table(bad, path, S.PAIRS)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["pairs.parquet"]  # no temp file left


def test_unwritable_folder_names_it(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    os.chmod(folder, 0o500)
    try:
        if os.access(folder, os.W_OK):
            return unwritable_as_nobody()  # root writes anywhere: the same check as another user
        with pytest.raises(OSError, match="cannot write to .*ro"):
            S.write_table(S.from_rows([pair_row()], S.PAIRS), folder / "p.parquet", S.PAIRS)
    finally:
        os.chmod(folder, 0o700)


def unwritable_as_nobody():
    """Root: write into a read-only folder as uid 65534 in a child process (setpriv, util-linux)."""
    import shutil
    import subprocess
    import sys
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="cmisc-ro-"))  # under /tmp, where uid 65534 may enter
    try:
        os.chmod(base, 0o755)
        (base / "ro").mkdir(mode=0o555)
        code = ("from cmisc_model import schemas as S; import pyarrow as pa; "
                "t = pa.table({'x': [1]}); S.write_table(t, 'ro/p.parquet', t.schema)")
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code]
        done = subprocess.run(cmd, cwd=base, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode != 0 and "UnwritableError: cannot write to ro" in done.stderr, done.stderr
        assert list((base / "ro").iterdir()) == []
    finally:
        shutil.rmtree(base)


def test_not_parquet_is_a_clear_error(tmp_path):
    path = tmp_path / "x.parquet"
    path.write_text("hello")
    with pytest.raises(S.SchemaError, match=r"x\.parquet: not a readable Parquet file"):
        S.read_table(path, S.PAIRS)


def test_pair_id_stable_and_file_titles():
    assert S.make_pair_id("bbc", "data_train/a", "a.jpg") == S.make_pair_id("bbc", "data_train/a", "a.jpg")
    assert S.make_pair_id("bbc", "d/a", "a.jpg") != S.make_pair_id("coco", "d/a", "a.jpg")
    assert S.normalise_file_title("File:red  apple.jpg") == "Red_apple.jpg"
    assert S.normalise_file_title("Image:Red_apple.jpg") == "Red_apple.jpg"
    assert S.normalise_file_title("apple.jpg") == "Apple.jpg"


def test_predictions_pair_once_per_system_and_repeat():
    row = {"system": "svm", "repeat": 0, "pair_id": "p", "split": "test", "cmi_true": 1, "sc_true": 2, "cmi_pred": 1, "sc_pred": 2}
    ok = S.from_rows([row, {**row, "system": "most_frequent"}, {**row, "repeat": 1}], S.PREDICTIONS)
    assert ok.num_rows == 3
    with pytest.raises(S.SchemaError, match=r"column 'pair_id', row 1: 'p' repeats row 0"):
        S.from_rows([row, row], S.PREDICTIONS)


def test_atomic_write_gets_the_usual_file_mode(tmp_path):
    path = S.write_table(S.from_rows([pair_row()], S.PAIRS), tmp_path / "p.parquet", S.PAIRS)
    umask = os.umask(0)
    os.umask(umask)
    assert (path.stat().st_mode & 0o777) == 0o666 & ~umask
