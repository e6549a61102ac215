"""Registries of named choices, and the config schema they feed: every choice key of the config takes
its allowed values from a registry, and a name registered later (a new variant) is accepted at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from motif.config import _CHOICES, _KEYS, ORDER_TASK_VARIANTS, ConfigError, RunConfig, load_config, window_settings_of
from motif.data.annotations import DATASET_FORMATS, load_dataset
from motif.model.variants import ATTENTION_IMPLEMENTATIONS, MODEL_VARIANTS, ModelVariant
from motif.registry import Registry, UnknownChoiceError, resolve
from motif.video import VideoWindowSettings
from motif.video.plan import FRAME_SAMPLING, WindowPlan
from motif.video.settings import VIDEO_BACKENDS
from motif.world.order_task import VARIANT_CLASSES

REPO = Path(__file__).resolve().parents[1]
SYNTHETIC = REPO / "configs" / "synthetic_order.yaml"


# --- the registry itself ------------------------------------------------------------------------------


def test_registry_keeps_order_and_names_the_choices_of_an_unknown_name():
    colours = Registry("colour", key="paint.colour", entries={"red": 1, "green": 2})
    colours.register("blue", 3)
    assert list(colours) == ["red", "green", "blue"] == list(colours.names()) and len(colours) == 3
    assert colours["green"] == 2 and "blue" in colours and "grey" not in colours and 5 not in colours
    with pytest.raises(UnknownChoiceError) as info:
        colours["gren"]
    assert str(info.value) == ("unknown colour 'gren' (paint.colour); choose one of red, green, blue. "
                               "Did you mean 'green'?")
    assert (info.value.suggestion, info.value.choices) == ("green", ("red", "green", "blue"))
    with pytest.raises(UnknownChoiceError, match=r"choose one of red, green, blue\.$"):
        colours["ultraviolet"]   # nothing close: no suggestion
    with pytest.raises(ValueError, match="'red' is registered already"):
        colours.register("red", 4)


def test_resolve_imports_a_reference_or_returns_a_callable():
    assert resolve("motif.video.plan:WindowPlan") is WindowPlan
    assert resolve(len) is len
    with pytest.raises(ValueError, match="module:attribute"):
        resolve("motif.video.plan.WindowPlan")


# --- the config schema and the registries -------------------------------------------------------------


def test_every_choice_key_of_the_config_is_fed_by_its_registry():
    defaults = OmegaConf.structured(RunConfig)
    for key, registry in _CHOICES.items():
        assert isinstance(registry, Registry) and registry.key == key, key
        assert key in _KEYS and OmegaConf.select(defaults, key) in registry, key
    for registry in (MODEL_VARIANTS, ATTENTION_IMPLEMENTATIONS, VIDEO_BACKENDS, FRAME_SAMPLING, DATASET_FORMATS):
        assert _CHOICES[registry.key] is registry
    assert ORDER_TASK_VARIANTS.names() == tuple(VARIANT_CLASSES)   # the task's own table


@pytest.mark.parametrize("key", list(_CHOICES))
def test_the_config_accepts_exactly_the_registered_names(key):
    root = ["data.root=somewhere"]
    for name in _CHOICES[key]:
        assert OmegaConf.select(load_config(SYNTHETIC, [*root, f"{key}={name}"]), key) == name
    with pytest.raises(ConfigError, match=rf"Config key '{key}' is 'not-a-choice'; choose one of "
                                          rf"{', '.join(_CHOICES[key])}\."):
        load_config(SYNTHETIC, [*root, f"{key}=not-a-choice"])


def test_a_misspelt_choice_gets_a_suggestion():
    with pytest.raises(ConfigError, match=r"'model.variant' is 'evidense'.*Did you mean 'evidence'\?"):
        load_config(SYNTHETIC, ["model.variant=evidense"])


def test_dataset_formats_with_files_have_a_loader_and_the_generated_one_needs_no_root(tmp_path):
    for name, entry in DATASET_FORMATS.items():
        assert entry.has_videos == (name != "synthetic_order") and (entry.loader is None or callable(entry.loader))
    assert OmegaConf.is_missing(load_config(SYNTHETIC).data, "root")
    with pytest.raises(ConfigError, match="data.root"):
        load_config(SYNTHETIC, ["data.format=ucf101"])
    with pytest.raises(ValueError, match="data.format=synthetic_order has no annotation files or videos to read"):
        load_dataset("synthetic_order", tmp_path)


def test_a_variant_limits_its_layers_in_the_config():
    with pytest.raises(ConfigError, match=r"'model.num_layers' is 2; model.variant 'evidence' takes at most 1"):
        load_config(SYNTHETIC, ["model.variant=evidence", "model.num_layers=2"])


# --- one window-settings type --------------------------------------------------------------------------


def test_the_video_section_is_the_window_settings_type():
    cfg = load_config(SYNTHETIC, ["video.window_size=4", "video.frame_sampling=random", "video.seed=3",
                                  "video.frames_per_window=2", "video.resize=112"])
    settings = window_settings_of(cfg)
    assert settings == VideoWindowSettings(window_size=4, frame_sampling="random", seed=3, frames_per_window=2,
                                           resize=112)
    assert set(cfg.video) == set(VideoWindowSettings().as_dict())   # declared once: the schema is the type
    assert VideoWindowSettings.from_dict(settings.as_dict()) == settings


def test_window_settings_that_form_no_plan_are_a_config_error():
    with pytest.raises(ConfigError, match="video.resize"):
        load_config(SYNTHETIC, ["video.resize=0"])
    with pytest.raises(ConfigError, match=r"video.frame_sampling.*Did you mean 'uniform'"):
        load_config(SYNTHETIC, ["video.frame_sampling=uniformly"])
    with pytest.raises(ConfigError, match="Invalid value for config key 'video.stride'"):
        load_config(SYNTHETIC, ["video.stride=two"])


def test_window_settings_of_a_plain_config_are_checked_by_the_type():
    with pytest.raises(ConfigError, match=r"Config section 'video' is invalid: .*video backend 'ffmpeg'"):
        window_settings_of(OmegaConf.create({"video": {"backend": "ffmpeg"}}))
    assert window_settings_of(OmegaConf.create({"video": {"window_size": 3}})) == VideoWindowSettings(window_size=3)


def test_every_frame_sampling_mode_plans_every_window():
    for name, mode in FRAME_SAMPLING.items():
        plan = VideoWindowSettings(window_size=5, frames_per_window=3, frame_sampling=name).plan(23, 10.0, "clip")
        assert plan.num_windows == 5 and plan.ends[-1] == 23
        assert all(len(frames) == (end - start if mode.every_frame else 3)
                   for frames, start, end in zip(plan.frame_indices, plan.starts, plan.ends))


# --- a new model variant from this file alone ----------------------------------------------------------


def test_model_variant_entries_name_exactly_one_factory():
    with pytest.raises(ValueError, match="exactly one of block and encoder"):
        ModelVariant("none", "neither")
    with pytest.raises(ValueError, match="unknown options"):
        ModelVariant("bad", "an option the model does not have", block=len, options=("width",))
