"""Datasets: annotation readers, video records and splits, skip reports (no torch, no decoders)."""

from motif.data.annotations import (
                                    BREAKFAST_ACTIVITIES,
                                    BREAKFAST_FOLDS,
                                    DATASET_FORMATS,
                                    VIDEO_EXTENSIONS,
                                    DatasetFormat,
                                    camel_case_to_words,
                                    humanize_class_name,
                                    load_breakfast,
                                    load_configured_dataset,
                                    load_csv_dataset,
                                    load_dataset,
                                    load_folder_dataset,
                                    load_hmdb51,
                                    load_list_dataset,
                                    load_ssv2,
                                    load_ucf101,
                                    strip_template_brackets,
                                    underscores_to_words,
)
from motif.data.errors import AnnotationError, DuplicateEntryError, SplitFileNotFoundError, UnknownClassError
from motif.data.records import SPLITS, DatasetSplits, VideoRecord, carve_validation, records_by_split, stratified_split
from motif.data.skips import SkippedVideo, SkipReport

__all__ = [
    "BREAKFAST_ACTIVITIES", "BREAKFAST_FOLDS", "DATASET_FORMATS", "SPLITS", "VIDEO_EXTENSIONS", "AnnotationError",
    "DatasetFormat", "DatasetSplits", "DuplicateEntryError", "SkipReport", "SkippedVideo", "SplitFileNotFoundError",
    "UnknownClassError", "VideoRecord", "camel_case_to_words", "carve_validation", "humanize_class_name",
    "load_breakfast", "load_configured_dataset", "load_csv_dataset", "load_dataset", "load_folder_dataset", "load_hmdb51",
    "load_list_dataset", "load_ssv2", "load_ucf101", "records_by_split", "stratified_split",
    "strip_template_brackets", "underscores_to_words",
]
