"""Labels validation, case by case: every bad input gives ONE LabelError naming the
file, the line and the value; nothing is half-loaded."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from fusion.labels import EMOTIONS, LabelError, load_labels, read_partition

HEADER = "File_ID,Split,Adoration,Amusement,Anxiety,Disgust,Empathic-Pain,Fear,Surprise,Age,Country"


def write(tmp_path: Path, text: str, name: str = "labels.csv") -> Path:
    p = tmp_path / name
    p.write_text(text.strip() + "\n")
    return p


def row(cid: str, split: str = "Train", vals=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 1.0)) -> str:
    return ",".join([cid, split, *map(str, vals), "25", "US"])


def good(tmp_path: Path) -> Path:
    return write(tmp_path, "\n".join([HEADER, row("[00001]"), row("[00002]", "Val"), row("[00003]", "Test")]))


def raises(path: Path, *fragments: str, **kw) -> str:
    with pytest.raises(LabelError) as ei:
        load_labels(path, **kw)
    msg = str(ei.value)
    assert str(path) in msg
    for f in fragments:
        assert f in msg, msg
    return msg


def test_hume_layout_brackets_split_and_extra_columns(tmp_path):
    lab = load_labels(good(tmp_path))
    assert lab.ids == ["00001", "00002", "00003"]
    assert lab.split == ["train", "val", "test"]
    assert lab.values.dtype == np.float32 and lab.values.shape == (3, 7)
    np.testing.assert_allclose(lab.values[0], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 1.0], rtol=1e-6)
    assert lab.ids_in("val") == ["00002"]


@pytest.mark.parametrize("names", [
    ["adoration", "amusement", "anxiety", "disgust", "empathic pain", "fear", "surprise"],
    ["ADORATION", "Amusement", "anxiety", "Disgust", "empathic_pain", "FEAR", "Surprise"],
    ["Adoration", "Amusement", "Anxiety", "Disgust", "Empathic - Pain", "Fear", " surprise "],
])
def test_emotion_names_matched_loosely_and_in_any_order(tmp_path, names):
    order = [6, 0, 5, 1, 4, 2, 3]
    header = ",".join(["id"] + [names[i] for i in order])
    vals = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    p = write(tmp_path, header + "\n" + ",".join(["a"] + [str(vals[i]) for i in order]))
    lab = load_labels(p)
    np.testing.assert_allclose(lab.values[0], vals, rtol=1e-6)
    assert lab.split is None


def test_missing_emotion_column(tmp_path):
    p = write(tmp_path, "File_ID,Adoration,Amusement,Anxiety,Disgust,Fear,Surprise\nx,0,0,0,0,0,0")
    raises(p, "missing column", "Empathic-Pain")


def test_missing_id_column(tmp_path):
    p = write(tmp_path, "name,Adoration,Amusement,Anxiety,Disgust,Empathic-Pain,Fear,Surprise\nx,0,0,0,0,0,0,0")
    raises(p, "id column")


def test_nan_value(tmp_path):
    p = write(tmp_path, "\n".join([HEADER, row("1"), row("2", vals=(0.1, "nan", 0, 0, 0, 0, 0))]))
    raises(p, "line 3", "'2'", "Amusement", "NaN")


def test_non_numeric_value(tmp_path):
    p = write(tmp_path, "\n".join([HEADER, row("1"), row("2", vals=(0.1, 0.2, "high", 0, 0, 0, 0))]))
    raises(p, "line 3", "Anxiety", "'high'", "not a number")


def test_empty_cell_in_a_labelled_row(tmp_path):
    p = write(tmp_path, "\n".join([HEADER, row("1", vals=(0.1, "", 0, 0, 0, 0, 0))]))
    raises(p, "line 2", "Amusement", "not a number")


def test_out_of_range(tmp_path):
    p = write(tmp_path, "\n".join([HEADER, row("1"), row("2", vals=(1.5, 0, 0, 0, 0, 0, -0.2))]))
    msg = raises(p, "line 3", "Adoration = 1.5", "Surprise = -0.2", "outside [0, 1]")
    assert "hint" not in msg  # a negative value: not percentages


def test_percentages_need_explicit_scale_and_hint_says_so(tmp_path):
    p = write(tmp_path, "\n".join([HEADER, row("1", vals=(10, 20, 30, 40, 50, 60, 100)),
                                   row("2", vals=(0, 5, 0, 0, 0, 0, 100))]))
    raises(p, "outside [0, 1]", "--label-scale 100")
    lab = load_labels(p, scale=100)
    np.testing.assert_allclose(lab.values[0], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 1.0], rtol=1e-6)
    raises(p, "after dividing by 10", scale=10)


def test_duplicate_ids_after_bracket_stripping(tmp_path):
    p = write(tmp_path, "\n".join([HEADER, row("[00007]"), row("00007")]))
    raises(p, "line 3", "duplicate id '00007'", "first on line 2")


def test_ids_without_a_clip(tmp_path):
    p = good(tmp_path)
    raises(p, "'00003' has no clip", clip_ids=["00001", "00002"])
    assert len(load_labels(p, clip_ids=["00001", "00002", "00003", "extra"]).ids) == 3


def test_unknown_split_value(tmp_path):
    p = write(tmp_path, "\n".join([HEADER, row("1", "holdout")]))
    raises(p, "unknown split 'holdout'")


def test_split_synonyms(tmp_path):
    p = write(tmp_path, "\n".join([HEADER, row("1", "training"), row("2", "Validation"), row("3", "devel")]))
    assert load_labels(p).split == ["train", "val", "val"]


def test_unlabelled_rows_only_in_test(tmp_path):
    blank = ("",) * 7
    p = write(tmp_path, "\n".join([HEADER, row("1"), row("2", "Test", blank)]))
    lab = load_labels(p)
    assert lab.labelled.tolist() == [True, False] and math.isnan(lab.values[1, 0])
    p2 = write(tmp_path, "\n".join([HEADER, row("1"), row("2", "Train", blank)]), "l2.csv")
    raises(p2, "line 3", "no label values")


def test_one_error_lists_first_rows_and_counts_the_rest(tmp_path):
    rows = [row(str(i), vals=(2, 0, 0, 0, 0, 0, 0)) for i in range(25)]
    msg = raises(write(tmp_path, "\n".join([HEADER, *rows])), "25 problem(s)", "line 2", "and 15 more")
    assert "line 20" not in msg


def test_problems_of_several_kinds_in_one_error(tmp_path):
    p = write(tmp_path, "\n".join([HEADER, row("1"), row("1"), row("2", vals=(0, "x", 0, 0, 0, 0, 0)),
                                   row("3", vals=(0, 0, 0, 0, 0, 0, 7))]))
    raises(p, "3 problem(s)", "duplicate", "not a number", "outside")


def test_empty_file_and_header_only(tmp_path):
    raises(write(tmp_path, "", "empty.csv"), "empty file")
    raises(write(tmp_path, HEADER, "header.csv"), "no data rows")


def test_file_not_found(tmp_path):
    with pytest.raises(LabelError, match="not found"):
        load_labels(tmp_path / "nope.csv")


def test_named_split_column(tmp_path):
    p = write(tmp_path, "id,fold,adoration,amusement,anxiety,disgust,empathic_pain,fear,surprise\n"
                        "a,train,0,0,0,0,0,0,1\nb,val,0,0,0,0,0,1,0")
    assert load_labels(p, split_column="fold").split == ["train", "val"]
    raises(p, "split column 'part' not found", split_column="part")


def test_partition_file(tmp_path):
    labels = write(tmp_path, "id,adoration,amusement,anxiety,disgust,empathic_pain,fear,surprise\n"
                             "a,0,0,0,0,0,0,1\nb,0,0,0,0,0,1,0")
    part = write(tmp_path, "Id,Partition\n[a],train\nb,devel\nc,test", "partition.csv")
    lab = load_labels(labels, partition=part)
    assert lab.ids == ["a", "b", "c"] and lab.split == ["train", "val", "test"]
    assert lab.labelled.tolist() == [True, True, False]
    assert read_partition(part) == {"a": "train", "b": "val", "c": "test"}


def test_partition_problems(tmp_path):
    labels = write(tmp_path, "id,adoration,amusement,anxiety,disgust,empathic_pain,fear,surprise\n"
                             "a,0,0,0,0,0,0,1\nb,0,0,0,0,0,1,0")
    part = write(tmp_path, "id,split\na,train\nz,val", "partition.csv")
    raises(labels, "'b' is not in partition file", "'z' (val) is in", partition=part)
    bad = write(tmp_path, "id,split\na,train\na,val", "bad.csv")
    with pytest.raises(LabelError, match="duplicate id 'a'"):
        read_partition(bad)


def test_emotions_constant():
    assert EMOTIONS == ("adoration", "amusement", "anxiety", "disgust", "empathic_pain", "fear", "surprise")
