"""Annotation readers: dataset files to :class:`VideoRecord` lists and human-readable class names.

Class names become zero-shot prompts ("a video of {name}"), so they are kept readable: UCF101
CamelCase is split into words ("ApplyEyeMakeup" -> "apply eye makeup"), HMDB51 underscores become
spaces ("brush_hair" -> "brush hair"), Something-Something v2 templates lose their brackets and
Breakfast activity ids are spelled out ("scrambledegg" -> "scrambled egg").

Formats and the layouts they assume (``root`` is the dataset root; every sub-path can be passed
explicitly):

- ``list``: whitespace-separated ``path label`` lines (paths relative to ``root``; the label is a
  class name or a 0-based class index; ``#`` comments and blank lines are skipped). One file per
  split: ``train_list``, ``test_list``, optional ``val_list``; a ``.csv`` file is read as CSV.
  ``class_names``: a file with one class name per line (line order = index); without it, names are
  the sorted set of label names (or the indices as text, with a warning).
- ``csv``: CSV with a header and columns ``path,label`` and optionally ``split`` (train / val /
  test) and ``video_id``. With a ``split`` column one file (``train_list``) holds every split;
  otherwise ``train_list`` / ``test_list`` / ``val_list`` as for ``list``.
- ``folder``: ``root/<class>/<video>``, or ``root/{train,val,test}/<class>/<video>``. Without split
  folders, ``test_fraction`` of each class (seeded, stratified) becomes the test split.
- ``ucf101``: videos in ``root/UCF-101/<Class>/v_<Class>_gXX_cXX.avi`` (or ``root/<Class>/...``);
  ``classInd.txt`` (1-indexed), ``trainlist0{1,2,3}.txt`` and ``testlist0{1,2,3}.txt`` in
  ``root/ucfTrainTestlist`` (or ``root``). Test lists have no label: it comes from the folder
  (matched case-insensitively: classInd says "HandstandPushups", the folder "HandStandPushups").
- ``hmdb51``: videos in ``root/<class>/<video>.avi`` (or ``root/hmdb51_org/...``); split files
  ``root/testTrainMulti_7030_splits/<class>_test_split{1,2,3}.txt`` with ``video.avi flag`` lines
  (1 train, 2 test, 0 unused). Class indices follow the sorted class names.
- ``ssv2``: ``something-something-v2-{labels,train,validation}.json`` in ``root/labels`` (or
  ``root``); videos ``<id>.webm`` in ``root/20bn-something-something-v2`` (or ``root``). The
  official validation set is the test split (test labels are not public).
- ``breakfast``: ``root/<Pxx>/<camera>/<Pxx>_<activity>[_chN].avi`` (or under
  ``root/BreakfastII_15fps_qvga_sync``), e.g. ``P03/cam01/P03_cereals.avi``,
  ``P03/stereo/P03_cereals_ch0.avi``: one record per file (every camera). Split ``k`` tests on
  participant fold ``k`` (s1 = P03-P15, s2 = P16-P28, s3 = P29-P41, s4 = P42-P54, all inclusive)
  and trains on the other three.

``load_dataset(format, root, split, ...)`` dispatches on the format and carves a validation split
from the training split when the format has none.
"""

from __future__ import annotations

import csv
import inspect
import json
import logging
import re
from dataclasses import dataclass
from os import PathLike
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable, Sequence

from motif.data.errors import AnnotationError, DuplicateEntryError, SplitFileNotFoundError, UnknownClassError
from motif.data.records import DatasetSplits, VideoRecord, carve_validation, records_by_split, stratified_split
from motif.errors import ConfigError
from motif.registry import Registry

logger = logging.getLogger(__name__)

PathArg = str | PathLike[str]

VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp")

BREAKFAST_ACTIVITIES = {
    "cereals": "cereals", "coffee": "coffee", "friedegg": "fried egg", "juice": "juice", "milk": "milk",
    "pancake": "pancake", "salat": "salad", "sandwich": "sandwich", "scrambledegg": "scrambled egg",
    "tea": "tea",
}
BREAKFAST_FOLDS = {1: range(3, 16), 2: range(16, 29), 3: range(29, 42), 4: range(42, 55)}

SSV2_FILES = {"labels": "something-something-v2-labels.json", "train": "something-something-v2-train.json",
              "validation": "something-something-v2-validation.json"}

_SPLIT_ALIASES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                  "test": "test", "testing": "test"}


# --------------------------------------------------------------------------------------------------
# Class names


def camel_case_to_words(name: str) -> str:
    """``"ApplyEyeMakeup"`` -> ``"apply eye makeup"``; ``"YoYo"`` -> ``"yo yo"``."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", name)
    return " ".join(spaced.split()).lower()


def underscores_to_words(name: str) -> str:
    """``"brush_hair"`` -> ``"brush hair"``."""
    return " ".join(name.replace("_", " ").split())


def strip_template_brackets(template: str) -> str:
    """``"Putting [something] on a surface"`` -> ``"Putting something on a surface"``."""
    return " ".join(template.replace("[", "").replace("]", "").split())


def humanize_class_name(name: str) -> str:
    """Folder-style class name to words: underscores, hyphens and CamelCase become spaces."""
    return camel_case_to_words(" ".join(re.split(r"[_\-]+", name)))


# --------------------------------------------------------------------------------------------------
# Small helpers


def _read_lines(path: Path) -> list[tuple[int, str]]:
    """Non-empty, non-comment lines with their 1-based numbers."""
    if not path.is_file():
        raise SplitFileNotFoundError(path, None, "file does not exist")
    lines = []
    with path.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            text = line.strip()
            if text and not text.startswith("#"):
                lines.append((number, text))
    return lines


def _video_id(relative: str) -> str:
    """Relative path without extension, with forward slashes."""
    return str(PurePosixPath(relative.replace("\\", "/")).with_suffix(""))


def _first_dir(*candidates: Path) -> Path:
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return candidates[-1]


def _first_with(filename: str, *candidates: Path) -> Path:
    """The first candidate directory holding ``filename``; else the first candidate."""
    for candidate in candidates:
        if (candidate / filename).is_file():
            return candidate
    return candidates[0]


class _ClassIndex:
    """Resolves label tokens (class names or 0-based indices) to class indices."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.index = {name: position for position, name in enumerate(self.names)}
        if len(self.index) != len(self.names):
            repeated = next(name for name in self.names if self.names.count(name) > 1)
            raise DuplicateEntryError(None, None, f"class {repeated!r} is listed twice in the class names")

    def resolve(self, token: str, file: Path, line: int | None) -> int:
        if token in self.index:
            return self.index[token]
        if re.fullmatch(r"[+-]?\d+", token):
            value = int(token)
            if 0 <= value < len(self.names):
                return value
            raise UnknownClassError(file, line, f"class index {value} is out of range (there are "
                                                f"{len(self.names)} classes, indexed from 0)")
        raise UnknownClassError(file, line, f"class {token!r} is not one of the {len(self.names)} known classes")


def _read_class_names(source: PathArg | Sequence[str], root: Path) -> list[str]:
    """Class names from a file (one per line; relative to ``root`` unless absolute) or a list."""
    if isinstance(source, (str, PathLike)):
        path = Path(source)
        return [text for _, text in _read_lines(path if path.is_absolute() else root / path)]
    return [str(name) for name in source]


def _names_from_tokens(tokens: list[tuple[str, Path, int]]) -> list[str]:
    """Class names when no class list is given: sorted label names, or indices as text."""
    if not tokens:
        return []
    is_index = [bool(re.fullmatch(r"\d+", token)) for token, _, _ in tokens]
    if all(is_index):
        count = max(int(token) for token, _, _ in tokens) + 1
        logger.warning("labels are integers and no class_names file was given; class names are the indices "
                       "as text, which make poor zero-shot prompts")
        return [str(index) for index in range(count)]
    if any(is_index):
        token, file, line = next(entry for entry, flag in zip(tokens, is_index) if flag)
        raise AnnotationError(file, line, f"label {token!r} is an index while other labels are class names",
                              "pass class_names (one name per line) or use names throughout")
    return sorted({token for token, _, _ in tokens})


def _build_records(entries: Iterable[tuple[str, int, str, Path, int | None]], root: Path,
                   video_ids: Iterable[str] | None = None) -> list[VideoRecord]:
    """``(relative path, label, split, file, line)`` entries to records; duplicates are errors."""
    records: list[VideoRecord] = []
    seen: dict[str, tuple[Path, int | None]] = {}
    ids = iter(video_ids) if video_ids is not None else None
    for relative, label, split, file, line in entries:
        video_id = next(ids) if ids is not None else _video_id(relative)
        if video_id in seen:
            first_file, first_line = seen[video_id]
            raise DuplicateEntryError(file, line, f"video {video_id!r} is listed again (first at "
                                                  f"{first_file}:{first_line})")
        seen[video_id] = (file, line)
        records.append(VideoRecord(video_id=video_id, path=str(root / relative), label=label, split=split))
    return records


# --------------------------------------------------------------------------------------------------
# Generic lists and CSV


def _parse_list_file(path: Path, split: str) -> list[tuple[str, str, str, Path, int]]:
    """``path label`` lines -> ``(relative path, label token, split, file, line)``."""
    rows = []
    for number, text in _read_lines(path):
        parts = text.rsplit(maxsplit=1)
        if len(parts) != 2:
            raise AnnotationError(path, number, f"expected 'path label', got {text!r}")
        rows.append((parts[0], parts[1], split, path, number))
    return rows


def _parse_csv_file(path: Path, split: str | None) -> list[tuple[str, str, str, Path, int, str | None]]:
    """CSV rows -> ``(relative path, label token, split, file, line, video_id)``."""
    if not path.is_file():
        raise SplitFileNotFoundError(path, None, "file does not exist")
    rows = []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        columns = [name.strip().lower() for name in reader.fieldnames or []]
        if "path" not in columns or "label" not in columns:
            raise AnnotationError(path, 1, f"CSV header must have 'path' and 'label' columns, got {columns}")
        reader.fieldnames = columns
        for row in reader:
            number = reader.line_num
            relative, label = (row.get("path") or "").strip(), (row.get("label") or "").strip()
            if not relative or not label:
                raise AnnotationError(path, number, "empty 'path' or 'label' field")
            row_split = split
            if split is None:
                raw = (row.get("split") or "").strip().lower()
                if raw not in _SPLIT_ALIASES:
                    raise AnnotationError(path, number, f"split {raw!r} is not train, val or test")
                row_split = _SPLIT_ALIASES[raw]
            rows.append((relative, label, row_split, path, number, (row.get("video_id") or "").strip() or None))
    return rows


def _csv_has_split_column(path: Path) -> bool:
    """Whether a CSV file has a ``split`` column; its header must have ``path`` and ``label``."""
    if not path.is_file():
        raise SplitFileNotFoundError(path, None, "file does not exist")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        columns = [name.strip().lower() for name in next(csv.reader(handle), [])]
    if "path" not in columns or "label" not in columns:
        raise AnnotationError(path, 1, f"CSV header must have 'path' and 'label' columns, got {columns}")
    return "split" in columns


def _records_from_rows(rows: list[tuple], root: Path, class_names: PathArg | Sequence[str] | None) -> DatasetSplits:
    names = (_read_class_names(class_names, root) if class_names is not None
             else _names_from_tokens([(row[1], row[3], row[4]) for row in rows]))
    classes = _ClassIndex(names)
    entries = [(row[0], classes.resolve(row[1], row[3], row[4]), row[2], row[3], row[4]) for row in rows]
    video_ids = [row[5] if len(row) > 5 and row[5] else _video_id(row[0]) for row in rows]
    return records_by_split(_build_records(entries, root, video_ids), names)


def _split_file(template: PathArg | None, split: int, root: Path) -> Path | None:
    """A split file path; ``{split}`` in it is replaced by the split number; relative to root."""
    if template is None:
        return None
    path = Path(str(template).replace("{split}", str(split)))
    return path if path.is_absolute() else root / path


def load_list_dataset(root: PathArg, split: int = 1, *, train_list: PathArg, test_list: PathArg,
                      val_list: PathArg | None = None,
                      class_names: PathArg | Sequence[str] | None = None) -> DatasetSplits:
    """``path label`` list files (or CSV files without a split column), one per split.

    List paths may contain ``{split}`` (replaced by the split number) and are relative to ``root``
    unless absolute; video paths in them are relative to ``root``.
    """
    root = Path(root)
    rows: list[tuple] = []
    for name, template in (("train", train_list), ("val", val_list), ("test", test_list)):
        path = _split_file(template, split, root)
        if path is None:
            continue
        if path.suffix.lower() == ".csv":
            rows.extend(_parse_csv_file(path, name))
        else:
            rows.extend(_parse_list_file(path, name))
    return _records_from_rows(rows, root, class_names)


def load_csv_dataset(root: PathArg, split: int = 1, *, train_list: PathArg, test_list: PathArg | None = None,
                     val_list: PathArg | None = None,
                     class_names: PathArg | Sequence[str] | None = None) -> DatasetSplits:
    """CSV annotations: one file with a ``split`` column (``train_list``), or one file per split."""
    root = Path(root)
    path = _split_file(train_list, split, root)
    if _csv_has_split_column(path):
        if test_list is not None or val_list is not None:
            raise AnnotationError(path, 1, "the CSV has a split column, so test_list / val_list must not be given")
        return _records_from_rows(_parse_csv_file(path, None), root, class_names)
    if test_list is None:
        raise AnnotationError(path, 1, "the CSV has no split column and no test_list was given",
                              "add a 'split' column or pass test_list")
    return load_list_dataset(root, split, train_list=train_list, test_list=test_list, val_list=val_list,
                             class_names=class_names)


# --------------------------------------------------------------------------------------------------
# Folder-per-class trees


def _scan_class_tree(folder: Path, root: Path, split: str,
                     extensions: Sequence[str]) -> list[tuple[str, str, str, Path]]:
    """``(path relative to root, class folder, split, file)`` for the videos under ``folder/<class>/``."""
    rows = []
    for class_dir in sorted(path for path in folder.iterdir() if path.is_dir()):
        for video in sorted(class_dir.rglob("*")):
            if video.is_file() and video.suffix.lower() in extensions:
                rows.append((video.relative_to(root).as_posix(), class_dir.name, split, video))
    return rows


def load_folder_dataset(root: PathArg, split: int = 1, *, test_fraction: float = 0.2, test_seed: int = 0,
                        extensions: Sequence[str] = VIDEO_EXTENSIONS) -> DatasetSplits:
    """``root/<class>/<video>`` or ``root/{train,val,test}/<class>/<video>`` trees.

    Classes are the sorted folder names of the training tree, humanised into words. Without split
    folders, ``test_fraction`` of each class is held out for testing (seeded, stratified).
    """
    root = Path(root)
    if not root.is_dir():
        raise SplitFileNotFoundError(root, None, "dataset folder does not exist")
    extensions = tuple(extension.lower() for extension in extensions)
    split_dirs = {name: root / folder for folder, name in _SPLIT_ALIASES.items() if (root / folder).is_dir()}
    if "train" in split_dirs:
        rows = [row for name in ("train", "val", "test") if name in split_dirs
                for row in _scan_class_tree(split_dirs[name], root, name, extensions)]
    else:
        rows = _scan_class_tree(root, root, "train", extensions)
    raw_names = sorted({row[1] for row in rows if row[2] == "train"})
    if not raw_names:
        raise AnnotationError(root, None, f"no videos ({', '.join(extensions)}) in class folders")
    classes = _ClassIndex(raw_names)
    entries = []
    for relative, class_dir, name, video in rows:
        if class_dir not in classes.index:
            raise UnknownClassError(video, None, f"class folder {class_dir!r} has no training videos")
        entries.append((relative, classes.index[class_dir], name, video, None))
    records = _build_records(entries, root)
    names = [humanize_class_name(name) for name in raw_names]
    if "train" in split_dirs:
        return records_by_split(records, names)
    train, test = stratified_split(records, test_fraction, test_seed, "test")
    return DatasetSplits(train, [], test, names)


def _split_error(message: str, splits: Sequence[int]) -> ConfigError:
    """A split or fold number the dataset does not have (config key ``data.splits``)."""
    return ConfigError(message, where="data.splits", hint=f"set data.splits to some of {list(splits)}")


# --------------------------------------------------------------------------------------------------
# UCF101


def load_ucf101(root: PathArg, split: int = 1, *, video_dir: PathArg | None = None,
                annotation_dir: PathArg | None = None) -> DatasetSplits:
    """UCF101 official split ``split`` (1, 2 or 3); see the module docstring for the layout."""
    if split not in (1, 2, 3):
        raise _split_error(f"UCF101 has splits 1, 2 and 3, got {split}", (1, 2, 3))
    root = Path(root)
    annotations = (Path(annotation_dir) if annotation_dir is not None
                   else _first_with("classInd.txt", root / "ucfTrainTestlist", root))
    videos = Path(video_dir) if video_dir is not None else _first_dir(root / "UCF-101", root)
    class_file = annotations / "classInd.txt"
    raw_names: list[str] = []
    for number, text in _read_lines(class_file):
        parts = text.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise AnnotationError(class_file, number, f"expected 'index ClassName', got {text!r}")
        if int(parts[0]) != len(raw_names) + 1:
            raise AnnotationError(class_file, number, f"class indices must run 1, 2, 3, ...; got {parts[0]} "
                                                      f"after {len(raw_names)}")
        raw_names.append(parts[1])
    by_folder = {name.lower(): index for index, name in enumerate(raw_names)}

    def folder_class(relative: str, file: Path, line: int) -> int:
        folder = PurePosixPath(relative.replace("\\", "/")).parts[0]
        if folder.lower() not in by_folder:
            raise UnknownClassError(file, line, f"class folder {folder!r} is not in {class_file.name}")
        return by_folder[folder.lower()]

    entries = []
    for name, filename in (("train", f"trainlist0{split}.txt"), ("test", f"testlist0{split}.txt")):
        file = annotations / filename
        for number, text in _read_lines(file):
            parts = text.split()
            label = folder_class(parts[0], file, number)
            if len(parts) > 1:
                if not parts[1].isdigit() or not 1 <= int(parts[1]) <= len(raw_names):
                    raise UnknownClassError(file, number, f"class index {parts[1]!r} is not in 1..{len(raw_names)}")
                if int(parts[1]) - 1 != label:
                    raise AnnotationError(file, number, f"label {parts[1]} ({raw_names[int(parts[1]) - 1]}) "
                                                        f"disagrees with the folder of {parts[0]!r}")
            entries.append((parts[0], label, name, file, number))
    names = [camel_case_to_words(name) for name in raw_names]
    return records_by_split(_build_records(entries, videos), names)


# --------------------------------------------------------------------------------------------------
# HMDB51


def load_hmdb51(root: PathArg, split: int = 1, *, video_dir: PathArg | None = None,
                split_dir: PathArg | None = None) -> DatasetSplits:
    """HMDB51 official split ``split`` (1, 2 or 3); see the module docstring for the layout."""
    if split not in (1, 2, 3):
        raise _split_error(f"HMDB51 has splits 1, 2 and 3, got {split}", (1, 2, 3))
    root = Path(root)
    splits_folder = Path(split_dir) if split_dir is not None else root / "testTrainMulti_7030_splits"
    videos = Path(video_dir) if video_dir is not None else _first_dir(root / "hmdb51_org", root)
    if not splits_folder.is_dir():
        raise SplitFileNotFoundError(splits_folder, None, "HMDB51 split folder does not exist")
    pattern = re.compile(r"^(?P<cls>.+)_test_split(?P<k>[123])\.txt$")
    raw_names = sorted({match["cls"] for path in splits_folder.iterdir() if (match := pattern.match(path.name))})
    if not raw_names:
        raise SplitFileNotFoundError(splits_folder / f"<class>_test_split{split}.txt", None,
                                     "no HMDB51 split files in the folder")
    entries = []
    for label, raw_name in enumerate(raw_names):
        file = splits_folder / f"{raw_name}_test_split{split}.txt"
        if not file.is_file():
            raise SplitFileNotFoundError(file, None, f"split file of class {raw_name!r} for split {split} "
                                                     f"does not exist")
        for number, text in _read_lines(file):
            parts = text.split()
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise AnnotationError(file, number, f"expected 'video.avi 0|1|2', got {text!r}")
            if parts[1] == "0":
                continue
            entries.append((f"{raw_name}/{parts[0]}", label, "train" if parts[1] == "1" else "test", file, number))
    names = [underscores_to_words(name) for name in raw_names]
    return records_by_split(_build_records(entries, videos), names)


# --------------------------------------------------------------------------------------------------
# Something-Something v2


def _load_json(path: Path) -> Any:
    if not path.is_file():
        raise SplitFileNotFoundError(path, None, "file does not exist")
    try:
        with path.open(encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as error:
        raise AnnotationError(path, error.lineno, f"not valid JSON ({error.msg})") from None


def load_ssv2(root: PathArg, split: int = 1, *, video_dir: PathArg | None = None,
              labels_dir: PathArg | None = None, extension: str = ".webm") -> DatasetSplits:
    """Something-Something v2: train JSON for training, the official validation JSON as test set."""
    if split != 1:
        raise _split_error(f"Something-Something v2 has one official split, got split={split}", (1,))
    root = Path(root)
    labels_folder = (Path(labels_dir) if labels_dir is not None
                     else _first_with(SSV2_FILES["labels"], root / "labels", root))
    videos = Path(video_dir) if video_dir is not None else _first_dir(root / "20bn-something-something-v2", root)
    labels_file = labels_folder / SSV2_FILES["labels"]
    labels = _load_json(labels_file)
    if not isinstance(labels, dict) or not labels:
        raise AnnotationError(labels_file, None, "expected a JSON object mapping template -> class id")
    class_of: dict[str, int] = {}
    for template, value in labels.items():
        if not str(value).strip().isdigit():
            raise AnnotationError(labels_file, None, f"class id {value!r} of {template!r} is not an integer")
        class_of[strip_template_brackets(template)] = int(value)
    if sorted(class_of.values()) != list(range(len(class_of))):
        raise AnnotationError(labels_file, None, "class ids must be 0..K-1, each used once")
    names = [""] * len(class_of)
    for template, index in class_of.items():
        names[index] = template

    entries, ids = [], []
    for name, key in (("train", "train"), ("test", "validation")):
        file = labels_folder / SSV2_FILES[key]
        items = _load_json(file)
        if not isinstance(items, list):
            raise AnnotationError(file, None, "expected a JSON list of {id, template, ...} entries")
        for number, item in enumerate(items, start=1):
            if not isinstance(item, dict) or "id" not in item or "template" not in item:
                raise AnnotationError(file, number, "entry lacks 'id' or 'template' (entry numbers count from 1)")
            template = strip_template_brackets(str(item["template"]))
            if template not in class_of:
                raise UnknownClassError(file, number, f"template {template!r} is not in {labels_file.name}")
            video_id = str(item["id"])
            entries.append((f"{video_id}{extension}", class_of[template], name, file, number))
            ids.append(video_id)
    return records_by_split(_build_records(entries, videos, ids), names)


# --------------------------------------------------------------------------------------------------
# Breakfast


def breakfast_fold(participant: int) -> int | None:
    """The fold (1-4) of participant number ``participant`` (3..54), else None."""
    for fold, members in BREAKFAST_FOLDS.items():
        if participant in members:
            return fold
    return None


def load_breakfast(root: PathArg, split: int = 1, *, video_dir: PathArg | None = None,
                   cameras: Sequence[str] | None = None,
                   extensions: Sequence[str] = (".avi", ".mp4")) -> DatasetSplits:
    """Breakfast activities, test fold ``split`` (1-4); see the module docstring for the layout.

    ``cameras``: keep only these camera folders (e.g. ``["cam01"]``); default: every file.
    """
    if split not in BREAKFAST_FOLDS:
        raise _split_error(f"Breakfast has folds 1, 2, 3 and 4, got {split}", tuple(BREAKFAST_FOLDS))
    root = Path(root)
    videos = Path(video_dir) if video_dir is not None else _first_dir(root / "BreakfastII_15fps_qvga_sync", root)
    if not videos.is_dir():
        raise SplitFileNotFoundError(videos, None, "Breakfast video folder does not exist")
    activities = sorted(BREAKFAST_ACTIVITIES)
    entries = []
    for participant_dir in sorted(path for path in videos.iterdir() if path.is_dir()):
        match = re.fullmatch(r"P(\d{2})", participant_dir.name)
        if match is None:
            continue
        fold = breakfast_fold(int(match[1]))
        if fold is None:
            raise AnnotationError(participant_dir, None, "participant is in no Breakfast fold (P03-P54)",
                                  "remove the folder or fix its name")
        for video in sorted(participant_dir.rglob("*")):
            if not video.is_file() or video.suffix.lower() not in extensions:
                continue
            relative = video.relative_to(videos)
            if cameras is not None and relative.parts[1] not in cameras:
                continue
            prefix = f"{participant_dir.name}_"
            if not video.stem.startswith(prefix):
                raise AnnotationError(video, None, f"file name does not start with {prefix!r}",
                                      "expected <Pxx>/<camera>/<Pxx>_<activity>.avi")
            activity = video.stem[len(prefix):].split("_")[0].lower()
            if activity not in BREAKFAST_ACTIVITIES:
                raise UnknownClassError(video, None, f"activity {activity!r} is not one of {activities}")
            entries.append((relative.as_posix(), activities.index(activity),
                            "test" if fold == split else "train", video, None))
    records = _build_records(entries, videos)
    if not any(record.split == "test" for record in records):
        members = BREAKFAST_FOLDS[split]
        raise AnnotationError(videos, None, f"no videos of fold {split} (P{members[0]:02d}-P{members[-1]:02d})")
    return records_by_split(records, [BREAKFAST_ACTIVITIES[name] for name in activities])


# --------------------------------------------------------------------------------------------------
# Dispatcher


@dataclass(frozen=True)
class DatasetFormat:
    """A value of ``data.format``: how a dataset's videos and labels are found.

    loader(root, split, **options) -> DatasetSplits reads the annotation files; its keyword-only
    parameters are the format's options. None for a dataset generated from the config itself (no
    files, no videos: ``motif.sequences.prepare`` builds its concept sequences).
    """

    loader: Callable[..., DatasetSplits] | None
    description: str

    @property
    def has_videos(self) -> bool:
        return self.loader is not None


DATASET_FORMATS: Registry[DatasetFormat] = Registry("dataset format", key="data.format", entries={
    "list": DatasetFormat(load_list_dataset, "'path label' lines, one file per split"),
    "csv": DatasetFormat(load_csv_dataset, "CSV with path,label[,split][,video_id] columns"),
    "folder": DatasetFormat(load_folder_dataset, "root/<class>/<video> or root/<split>/<class>/<video>"),
    "ucf101": DatasetFormat(load_ucf101, "UCF101 with its official splits 1-3"),
    "hmdb51": DatasetFormat(load_hmdb51, "HMDB51 with its official splits 1-3"),
    "ssv2": DatasetFormat(load_ssv2, "Something-Something v2 (the validation set is the test split)"),
    "breakfast": DatasetFormat(load_breakfast, "Breakfast, participant folds 1-4"),
    "synthetic_order": DatasetFormat(None, "the synthetic order task of spec section 8, generated from "
                                           "data.synthetic (no files, no videos)"),
})


def load_dataset(format: str, root: PathArg, split: int = 1, *, val_fraction: float = 0.1, val_seed: int = 0,
                 **options: Any) -> DatasetSplits:
    """Read a dataset's annotations and return its train / val / test records and class names.

    ``format``: a name of :data:`DATASET_FORMATS` with annotation files; ``split``: the official split or
    fold number; ``options``: the format's own arguments (``train_list``, ``test_list``, ``val_list``,
    ``class_names``, ``video_dir``, ...); options set to None are ignored, unknown ones are an error. When the format
    gives no validation split, ``val_fraction`` of each training class is carved out (seeded by
    ``val_seed``, stratified, never from test). Checks that splits are disjoint.
    """
    loader = DATASET_FORMATS[format].loader
    if loader is None:
        raise ConfigError(f"data.format={format} has no annotation files or videos to read: "
                          f"{DATASET_FORMATS[format].description}", where="data.format")
    parameters = [parameter for parameter in inspect.signature(loader).parameters.values()
                  if parameter.kind is inspect.Parameter.KEYWORD_ONLY]
    accepted = [parameter.name for parameter in parameters]
    options = {name: value for name, value in options.items() if value is not None}
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(f"dataset format {format!r} does not take {unknown}; it takes {accepted}",
                          where=f"data.{unknown[0]}", hint="leave the options it does not take unset")
    missing = [parameter.name for parameter in parameters
               if parameter.default is inspect.Parameter.empty and parameter.name not in options]
    if missing:
        raise ConfigError(f"dataset format {format!r} needs {missing} (paths relative to the dataset root)",
                          where=f"data.{missing[0]}")
    splits = loader(root, split, **options)
    if not splits.val and val_fraction > 0:
        train, val = carve_validation(splits.train, val_fraction, val_seed)
        splits = DatasetSplits(train, val, splits.test, splits.class_names)
    splits.validate()
    logger.info("%s split %d: %s videos, %d classes", format, split, splits.counts(), splits.num_classes)
    return splits


def load_configured_dataset(data: Any, split: int = 1) -> DatasetSplits:
    """``load_dataset`` for the ``data`` section of a run config (format, root, list files, validation carving)."""
    options = {key: data.get(key) for key in ("train_list", "val_list", "test_list", "class_names")}
    return load_dataset(data.format, data.root, int(split), val_fraction=data.val_fraction, val_seed=data.val_seed,
                        **options)
