"""The error family: every user-facing error of the package is a MotifError that names where and what to do,
reads as one paragraph, keeps the builtin base callers catch, and survives pickling (worker processes)."""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil

import pytest

import motif
from motif.cache import CacheMissError, DamagedCacheFileError
from motif.concepts import ConceptBankNotFoundError
from motif.config import ConfigError
from motif.data import UnknownClassError, load_breakfast, load_hmdb51, load_ssv2, load_ucf101
from motif.errors import MotifError, RunDirectoryError
from motif.explain import InterventionSyntaxError
from motif.training.resume import RunFolderError
from motif.video import InvalidFpsError

# Errors that never reach a user: the proposer retries a request whose answer holds no concept list, and
# the PyAV reader decodes sequentially when seeking gives inconsistent timestamps.
INTERNAL_ERRORS = {"motif.discovery.proposer.AnswerError", "motif.video.backends._SeekFailed"}


def test_str_names_where_then_the_message_then_the_hint():
    assert str(MotifError("is not a number", where="optim.lr", hint="e.g. optim.lr=3e-4")) == \
        "optim.lr: is not a number (e.g. optim.lr=3e-4)"
    assert str(MotifError("Key 'optim.lr' is -1.", where="optim.lr", hint="It must be > 0.")) == \
        "Key 'optim.lr' is -1. It must be > 0."  # where is named by the message; the hint follows a sentence
    assert str(MotifError("two\n  lines\n", where="a.txt")) == "a.txt: two lines "
    assert str(MotifError("no place")) == "no place"


def test_a_class_hint_is_the_default_and_an_empty_hint_is_none():
    class Mistake(MotifError):
        default_hint = "fix it"

    assert str(Mistake("wrong", where="x")) == "x: wrong (fix it)"
    assert str(Mistake("wrong", where="x", hint="")) == "x: wrong"
    assert Mistake("wrong").hint == "fix it"


def _motif_modules():
    for info in pkgutil.walk_packages(motif.__path__, "motif."):
        yield importlib.import_module(info.name)


def test_every_error_class_of_the_package_is_a_motif_error():
    errors = {f"{cls.__module__}.{cls.__qualname__}": cls for module in _motif_modules()
              for _, cls in inspect.getmembers(module, inspect.isclass)
              if issubclass(cls, Exception) and cls.__module__.startswith("motif.")}
    outside = sorted(name for name, cls in errors.items() if not issubclass(cls, MotifError))
    assert outside == sorted(INTERNAL_ERRORS)
    assert len(errors) > 30


@pytest.mark.parametrize("error, builtin", [
    (ConfigError("x", where="optim.lr"), ValueError),
    (ConceptBankNotFoundError("x", where="bank.txt"), FileNotFoundError),
    (CacheMissError("x"), KeyError),
    (RunDirectoryError("x", where="runs/a"), FileNotFoundError),
    (RunFolderError("x", where="runs/a"), OSError),
    (InterventionSyntaxError("zero:concept=x", "unknown concept 'x'"), ValueError),
    (DamagedCacheFileError("cache/v.safetensors", "v", "truncated"), RuntimeError),
    (InvalidFpsError("a.mp4", "no frame rate"), MotifError),
    (UnknownClassError("train.txt", 3, "class 'golf' is unknown"), ValueError),
])
def test_errors_keep_their_builtin_base_and_survive_pickling(error, builtin):
    assert isinstance(error, builtin) and isinstance(error, MotifError)
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is type(error) and str(clone) == str(error) and clone.args == error.args
    assert clone.__dict__ == error.__dict__
    assert clone.where is not None or isinstance(error, CacheMissError)


def test_key_error_subclasses_do_not_quote_their_message():
    assert str(CacheMissError("video 'a' is not in the cache")) == "video 'a' is not in the cache"


@pytest.mark.parametrize("load, split, named", [
    (load_ucf101, 4, "UCF101 has splits 1, 2 and 3, got 4"),
    (load_hmdb51, 0, "HMDB51 has splits 1, 2 and 3, got 0"),
    (load_ssv2, 2, "Something-Something v2 has one official split, got split=2"),
    (load_breakfast, 5, "Breakfast has folds 1, 2, 3 and 4, got 5"),
])
def test_a_split_number_the_dataset_lacks_is_a_config_error_naming_data_splits(tmp_path, load, split, named):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, split)
    assert info.value.where == "data.splits" and str(info.value).startswith(f"data.splits: {named} (set data.splits")
