"""Annotation readers for every dataset format, class names, splits and validation carving."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from motif.data import (
    BREAKFAST_FOLDS,
    AnnotationError,
    DatasetSplits,
    DuplicateEntryError,
    SplitFileNotFoundError,
    UnknownClassError,
    VideoRecord,
    camel_case_to_words,
    carve_validation,
    humanize_class_name,
    load_breakfast,
    load_dataset,
    load_folder_dataset,
    load_hmdb51,
    load_ssv2,
    load_ucf101,
    strip_template_brackets,
    underscores_to_words,
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ------------------------------------------------------------------------------------------------
# Class names


@pytest.mark.parametrize("raw,words", [("ApplyEyeMakeup", "apply eye makeup"), ("YoYo", "yo yo"),
                                       ("HandstandPushups", "handstand pushups"), ("PlayingTV", "playing tv"),
                                       ("Skijet", "skijet")])
def test_camel_case_to_words(raw, words):
    assert camel_case_to_words(raw) == words


def test_other_class_name_rules():
    assert underscores_to_words("brush_hair") == "brush hair"
    assert strip_template_brackets("Putting [something] on [something]") == "Putting something on something"
    assert humanize_class_name("shoot_bow") == "shoot bow" and humanize_class_name("BlowDryHair") == "blow dry hair"


# ------------------------------------------------------------------------------------------------
# UCF101


@pytest.fixture
def ucf_root(tmp_path) -> Path:
    lists = tmp_path / "ucfTrainTestlist"
    write(lists / "classInd.txt", "1 ApplyEyeMakeup\n2 HandstandPushups\n3 YoYo\n")
    for split in (1, 2, 3):
        write(lists / f"trainlist0{split}.txt",
              f"ApplyEyeMakeup/v_ApplyEyeMakeup_g0{split}_c01.avi 1\n"
              f"HandStandPushups/v_HandStandPushups_g0{split}_c01.avi 2\n"
              f"YoYo/v_YoYo_g0{split}_c01.avi 3\nYoYo/v_YoYo_g0{split}_c02.avi 3\n")
        write(lists / f"testlist0{split}.txt",
              f"ApplyEyeMakeup/v_ApplyEyeMakeup_g1{split}_c01.avi\nHandStandPushups/v_HandStandPushups_g1{split}_c01.avi\n")
    (tmp_path / "UCF-101").mkdir()
    return tmp_path


def test_ucf101_reads_lists_and_derives_test_labels(ucf_root):
    splits = load_ucf101(ucf_root, split=2)
    assert splits.class_names == ["apply eye makeup", "handstand pushups", "yo yo"]
    assert [(record.video_id, record.label) for record in splits.train] == [
        ("ApplyEyeMakeup/v_ApplyEyeMakeup_g02_c01", 0), ("HandStandPushups/v_HandStandPushups_g02_c01", 1),
        ("YoYo/v_YoYo_g02_c01", 2), ("YoYo/v_YoYo_g02_c02", 2)]
    assert [record.label for record in splits.test] == [0, 1]  # from the folder, case-insensitively
    assert splits.test[0].path == str(ucf_root / "UCF-101" / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g12_c01.avi")
    assert {record.split for record in splits.test} == {"test"}


def test_ucf101_bad_lines(ucf_root):
    lists = ucf_root / "ucfTrainTestlist"
    write(lists / "trainlist01.txt", "YoYo/v_YoYo_g01_c01.avi 1\n")
    with pytest.raises(AnnotationError, match=r"trainlist01.txt:1: label 1 \(ApplyEyeMakeup\) disagrees"):
        load_ucf101(ucf_root, split=1)
    write(lists / "testlist01.txt", "Juggling/v_Juggling_g01_c01.avi\n")
    write(lists / "trainlist01.txt", "YoYo/v_YoYo_g01_c01.avi 3\n")
    with pytest.raises(UnknownClassError, match=r"testlist01.txt:1: class folder 'Juggling'"):
        load_ucf101(ucf_root, split=1)
    write(lists / "testlist01.txt", "YoYo/v_YoYo_g09_c01.avi\nYoYo/v_YoYo_g09_c01.avi\n")
    with pytest.raises(DuplicateEntryError, match=r"testlist01.txt:2: video 'YoYo/v_YoYo_g09_c01' is listed again"):
        load_ucf101(ucf_root, split=1)
    (lists / "testlist03.txt").unlink()
    with pytest.raises(SplitFileNotFoundError, match="testlist03.txt: file does not exist"):
        load_ucf101(ucf_root, split=3)


# ------------------------------------------------------------------------------------------------
# HMDB51


@pytest.fixture
def hmdb_root(tmp_path) -> Path:
    folder = tmp_path / "testTrainMulti_7030_splits"
    for name in ("brush_hair", "eat", "shoot_bow"):
        for split in (1, 2, 3):
            lines = [f"{name}_a_{split}.avi 1", f"{name}_b_{split}.avi 2", f"{name}_c_{split}.avi 0",
                     f"{name}_d_{split}.avi 1 "]
            write(folder / f"{name}_test_split{split}.txt", "\n".join(lines) + "\n")
    return tmp_path


def test_hmdb51_flags_and_names(hmdb_root):
    splits = load_hmdb51(hmdb_root, split=3)
    assert splits.class_names == ["brush hair", "eat", "shoot bow"]
    assert [record.video_id for record in splits.train[:2]] == ["brush_hair/brush_hair_a_3", "brush_hair/brush_hair_d_3"]
    assert Counter(record.label for record in splits.test) == {0: 1, 1: 1, 2: 1}
    assert not any("_c_" in record.video_id for record in splits.all_records())  # flag 0 = unused
    assert splits.train[0].path == str(hmdb_root / "brush_hair" / "brush_hair_a_3.avi")


def test_hmdb51_bad_files(hmdb_root):
    folder = hmdb_root / "testTrainMulti_7030_splits"
    (folder / "eat_test_split2.txt").unlink()
    with pytest.raises(SplitFileNotFoundError, match="eat_test_split2.txt"):
        load_hmdb51(hmdb_root, split=2)
    write(folder / "eat_test_split1.txt", "x.avi 3\n")
    with pytest.raises(AnnotationError, match=r"eat_test_split1.txt:1: expected 'video.avi 0\|1\|2'"):
        load_hmdb51(hmdb_root, split=1)
    write(folder / "eat_test_split1.txt", "x.avi 1\nx.avi 2\n")
    with pytest.raises(DuplicateEntryError, match="eat_test_split1.txt:2"):
        load_hmdb51(hmdb_root, split=1)
    with pytest.raises(SplitFileNotFoundError, match="split folder"):
        load_hmdb51(hmdb_root / "elsewhere")


# ------------------------------------------------------------------------------------------------
# Something-Something v2


@pytest.fixture
def ssv2_root(tmp_path) -> Path:
    labels = tmp_path / "labels"
    write(labels / "something-something-v2-labels.json", json.dumps(
        {"Putting something on a surface": "1", "Tearing something into two pieces": "0"}))
    write(labels / "something-something-v2-train.json", json.dumps([
        {"id": "11", "label": "putting a cup on a table", "template": "Putting [something] on a surface",
         "placeholders": ["a cup"]},
        {"id": "12", "label": "tearing paper", "template": "Tearing [something] into two pieces"},
        {"id": "13", "label": "tearing a leaf", "template": "Tearing [something] into two pieces"}]))
    write(labels / "something-something-v2-validation.json", json.dumps([
        {"id": "21", "label": "putting a pen on a desk", "template": "Putting [something] on a surface"}]))
    return tmp_path


def test_ssv2_templates_and_validation_as_test(ssv2_root):
    splits = load_ssv2(ssv2_root)
    assert splits.class_names == ["Tearing something into two pieces", "Putting something on a surface"]
    assert [(record.video_id, record.label) for record in splits.train] == [("11", 1), ("12", 0), ("13", 0)]
    assert [(record.video_id, record.label, record.split) for record in splits.test] == [("21", 1, "test")]
    assert splits.test[0].path == str(ssv2_root / "21.webm")


def test_ssv2_bad_entries(ssv2_root):
    train = ssv2_root / "labels" / "something-something-v2-train.json"
    write(train, json.dumps([{"id": "1", "template": "Juggling [something]"}]))
    with pytest.raises(UnknownClassError, match=r"train.json:1: template 'Juggling something'"):
        load_ssv2(ssv2_root)
    write(train, json.dumps([{"id": "21", "template": "Putting [something] on a surface"}]))
    with pytest.raises(DuplicateEntryError, match="'21'"):
        load_ssv2(ssv2_root)
    (ssv2_root / "labels" / "something-something-v2-validation.json").unlink()
    with pytest.raises(SplitFileNotFoundError, match="validation.json"):
        load_ssv2(ssv2_root)
    with pytest.raises(ValueError, match="one official split"):
        load_ssv2(ssv2_root, split=2)


# ------------------------------------------------------------------------------------------------
# Breakfast


@pytest.fixture
def breakfast_root(tmp_path) -> Path:
    videos = tmp_path / "BreakfastII_15fps_qvga_sync"
    for number in range(3, 55):
        participant = f"P{number:02d}"
        write(videos / participant / "cam01" / f"{participant}_cereals.avi", "x")
        write(videos / participant / "cam01" / f"{participant}_scrambledegg.avi", "x")
        write(videos / participant / "stereo" / f"{participant}_tea_ch0.avi", "x")
        write(videos / participant / "cam01" / f"{participant}_cereals.avi.labels", "not a video")
    return tmp_path


def test_breakfast_folds_cover_every_participant(breakfast_root):
    test_participants = []
    for fold in (1, 2, 3, 4):
        splits = load_breakfast(breakfast_root, split=fold)
        tested = {record.video_id.split("/")[0] for record in splits.test}
        trained = {record.video_id.split("/")[0] for record in splits.train}
        members = BREAKFAST_FOLDS[fold]
        assert tested == {f"P{number:02d}" for number in members}
        assert not tested & trained and len(tested | trained) == 52
        test_participants.extend(tested)
    assert sorted(test_participants) == [f"P{number:02d}" for number in range(3, 55)]  # P54 included
    splits = load_breakfast(breakfast_root, split=4)
    assert "P54" in {record.video_id.split("/")[0] for record in splits.test}
    assert len(splits.class_names) == 10 and "scrambled egg" in splits.class_names
    labels = {record.video_id: splits.class_names[record.label] for record in splits.test}
    assert labels["P54/stereo/P54_tea_ch0"] == "tea" and labels["P54/cam01/P54_scrambledegg"] == "scrambled egg"


def test_breakfast_camera_filter_and_bad_files(breakfast_root):
    splits = load_breakfast(breakfast_root, split=1, cameras=["cam01"])
    assert all("/cam01/" in record.video_id for record in splits.all_records())
    videos = breakfast_root / "BreakfastII_15fps_qvga_sync"
    write(videos / "P10" / "cam01" / "P10_omelette.avi", "x")
    with pytest.raises(UnknownClassError, match="P10_omelette.avi: activity 'omelette'"):
        load_breakfast(breakfast_root, split=1)
    (videos / "P10" / "cam01" / "P10_omelette.avi").unlink()
    write(videos / "P55" / "cam01" / "P55_tea.avi", "x")
    with pytest.raises(AnnotationError, match="P55: participant is in no Breakfast fold"):
        load_breakfast(breakfast_root, split=1)


# ------------------------------------------------------------------------------------------------
# Generic lists, CSV and folders


def test_list_files_with_names_and_indices(tmp_path):
    write(tmp_path / "classes.txt", "ride bike\nswim\n")
    write(tmp_path / "train.txt", "# comment\nclips/a 1.mp4 swim\nclips/b.mp4 0\n\nclips/c.mp4   0\n")
    write(tmp_path / "test.txt", "clips/d.mp4 1\n")
    splits = load_dataset("list", tmp_path, train_list="train.txt", test_list="test.txt",
                          class_names=str(tmp_path / "classes.txt"), val_fraction=0.0)
    assert [(record.video_id, record.label) for record in splits.train] == [
        ("clips/a 1", 1), ("clips/b", 0), ("clips/c", 0)]  # a path with a space survives
    assert splits.train[0].path == str(tmp_path / "clips" / "a 1.mp4")
    assert splits.class_names == ["ride bike", "swim"] and len(splits.test) == 1


def test_list_files_without_class_file_use_sorted_names(tmp_path):
    write(tmp_path / "train_1.txt", "a.mp4 swim\nb.mp4 bike\n")
    write(tmp_path / "test_1.txt", "c.mp4 swim\n")
    splits = load_dataset("list", tmp_path, train_list="train_{split}.txt", test_list="test_{split}.txt",
                          val_fraction=0.0)
    assert splits.class_names == ["bike", "swim"]
    assert [record.label for record in splits.train] == [1, 0]


def test_list_file_errors(tmp_path):
    write(tmp_path / "classes.txt", "swim\nbike\n")
    write(tmp_path / "train.txt", "a.mp4 swim\nb.mp4 golf\n")
    write(tmp_path / "test.txt", "c.mp4 swim\n")
    kwargs = dict(train_list="train.txt", test_list="test.txt", class_names=str(tmp_path / "classes.txt"))
    with pytest.raises(UnknownClassError, match=r"train.txt:2: class 'golf' is not one of the 2 known classes"):
        load_dataset("list", tmp_path, **kwargs)
    write(tmp_path / "train.txt", "a.mp4 swim\nb.mp4 2\n")
    with pytest.raises(UnknownClassError, match=r"train.txt:2: class index 2 is out of range"):
        load_dataset("list", tmp_path, **kwargs)
    write(tmp_path / "train.txt", "a.mp4 swim\na.mp4 swim\n")
    with pytest.raises(DuplicateEntryError, match=r"train.txt:2: video 'a' is listed again \(first at .*train.txt:1\)"):
        load_dataset("list", tmp_path, **kwargs)
    write(tmp_path / "train.txt", "c.mp4 swim\n")
    with pytest.raises(DuplicateEntryError, match="'c' is listed again"):  # in train and in test
        load_dataset("list", tmp_path, **kwargs)
    write(tmp_path / "train.txt", "justapath.mp4\n")
    with pytest.raises(AnnotationError, match=r"train.txt:1: expected 'path label'"):
        load_dataset("list", tmp_path, **kwargs)
    with pytest.raises(SplitFileNotFoundError, match="missing.txt: file does not exist"):
        load_dataset("list", tmp_path, train_list="missing.txt", test_list="test.txt")


def test_csv_with_split_column(tmp_path):
    write(tmp_path / "all.csv", "path,label,split\nv/a.mp4,swim,train\nv/b.mp4,bike,Validation\nv/c.mp4,swim,test\n"
                                "v/d.mp4,bike,train\n")
    splits = load_dataset("csv", tmp_path, train_list="all.csv")
    assert splits.counts() == {"train": 2, "val": 1, "test": 1}  # given val: nothing carved
    assert splits.val[0].video_id == "v/b" and splits.class_names == ["bike", "swim"]
    write(tmp_path / "bad.csv", "path,label,split\nv/a.mp4,swim,dev\n")
    with pytest.raises(AnnotationError, match=r"bad.csv:2: split 'dev'"):
        load_dataset("csv", tmp_path, train_list="bad.csv")
    write(tmp_path / "nolabel.csv", "file,class\nv/a.mp4,swim\n")
    with pytest.raises(AnnotationError, match="'path' and 'label' columns"):
        load_dataset("csv", tmp_path, train_list="nolabel.csv")


def test_csv_per_split_files(tmp_path):
    write(tmp_path / "train.csv", "path,label,video_id\nv/a.mp4,0,first\nv/b.mp4,1,second\nv/e.mp4,1,third\n")
    write(tmp_path / "test.csv", "path,label\nv/c.mp4,1\n")
    splits = load_dataset("csv", tmp_path, train_list="train.csv", test_list="test.csv",
                          class_names=["swim", "bike"], val_fraction=0.0)
    assert [record.video_id for record in splits.train] == ["first", "second", "third"]
    assert splits.test[0].label == 1
    with pytest.raises(AnnotationError, match="no split column and no test_list"):
        load_dataset("csv", tmp_path, train_list="train.csv")


def test_folder_trees(tmp_path):
    for split in ("train", "test"):
        for name in ("ride_bike", "Swim"):
            for index in range(3):
                write(tmp_path / "split" / split / name / f"{index}.mp4", "x")
    write(tmp_path / "split" / "train" / "Swim" / "notes.txt", "ignored")
    splits = load_folder_dataset(tmp_path / "split")
    assert splits.class_names == ["swim", "ride bike"]  # sorted folder names, as ImageFolder does
    assert splits.counts() == {"train": 6, "val": 0, "test": 6}
    flat = load_folder_dataset(tmp_path / "split" / "train", test_fraction=0.34)
    assert Counter(record.label for record in flat.test) == {0: 1, 1: 1}
    write(tmp_path / "split" / "test" / "Golf" / "0.mp4", "x")
    with pytest.raises(UnknownClassError, match="'Golf' has no training videos"):
        load_folder_dataset(tmp_path / "split")


# ------------------------------------------------------------------------------------------------
# Validation carving and the dispatcher


def make_records(counts: dict[int, int], split: str = "train") -> list[VideoRecord]:
    return [VideoRecord(f"c{label}_{index}", f"/v/c{label}_{index}.mp4", label, split)
            for label, count in counts.items() for index in range(count)]


def test_carve_validation_is_stratified_seeded_and_order_free():
    records = make_records({0: 50, 1: 20, 2: 2, 3: 1})
    train, val = carve_validation(records, 0.2, seed=7)
    assert Counter(record.label for record in val) == {0: 10, 1: 4, 2: 1}  # a single video stays in train
    assert {record.split for record in val} == {"val"} and {record.split for record in train} == {"train"}
    assert sorted(r.video_id for r in train + val) == sorted(r.video_id for r in records)
    again = carve_validation(list(reversed(records)), 0.2, seed=7)[1]
    assert {record.video_id for record in again} == {record.video_id for record in val}
    other = carve_validation(records, 0.2, seed=8)[1]
    assert {record.video_id for record in other} != {record.video_id for record in val}


def test_carve_validation_refuses_test_records():
    with pytest.raises(ValueError, match="training split only"):
        carve_validation(make_records({0: 5}, split="test"), 0.2, seed=0)


def test_load_dataset_carves_val_from_train_only(ucf_root):
    splits = load_dataset("ucf101", ucf_root, split=1, val_fraction=0.5, val_seed=1,
                          train_list=None, class_names=None)  # None options are ignored
    assert splits.counts() == {"train": 3, "val": 1, "test": 2}
    assert splits.val[0].label == 2  # only the class with two training videos gives one away
    fixed = load_ucf101(ucf_root, split=1)
    assert [record.video_id for record in splits.test] == [record.video_id for record in fixed.test]


def test_load_dataset_rejects_unknown_format_and_options(ucf_root):
    with pytest.raises(ValueError, match="unknown dataset format 'kinetics'"):
        load_dataset("kinetics", ucf_root)
    with pytest.raises(ValueError, match=r"does not take \['labels_dir'\]"):
        load_dataset("ucf101", ucf_root, labels_dir="x")
    with pytest.raises(ValueError, match=r"'list' needs \['test_list'\]"):
        load_dataset("list", ucf_root, train_list="train.txt", test_list=None)


def test_dataset_splits_validate_and_count():
    records = make_records({0: 2, 1: 1})
    splits = DatasetSplits(records, [], [], ["a", "b"])
    assert splits["train"] is records and splits.counts() == {"train": 3, "val": 0, "test": 0}
    with pytest.raises(AnnotationError, match="label 1, but there are 1 classes"):
        DatasetSplits(records, [], [], ["a"]).validate()
