"""Run configuration: a structured OmegaConf schema, YAML files with ``base:`` inheritance, and
``key=value`` overrides.

Every key a config file or the command line may set is a field below; an unknown key or a value of
the wrong type or out of its range fails before any work starts, naming the key and the closest valid
one or the allowed range.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Optional

import yaml
from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from motif.data.annotations import DATASET_FORMATS
from motif.errors import ConfigError
from motif.model.variants import ATTENTION_IMPLEMENTATIONS, MODEL_VARIANTS
from motif.registry import Registry, UnknownChoiceError, choices_hint
from motif.video.plan import FRAME_SAMPLING
from motif.video.settings import VIDEO_BACKENDS, VideoWindowSettings


@dataclass
class SyntheticOrderConfig:
    """The synthetic order task of spec section 8 (features generated from a seed, no files)."""

    variant: str = "five"  # a name of ORDER_TASK_VARIANTS
    num_videos: int = 600
    feature_dim: int = 1024
    num_concepts: int = 64
    min_windows: int = 16
    max_windows: int = 64
    test_fraction: float = 0.333
    seed: int = 0


@dataclass
class DataConfig:
    """Where the videos and their annotations are, and how splits are formed.

    List and class-name files are relative to ``root`` unless absolute. ``splits`` are the official
    splits or folds to train (one model each); a validation split is carved from training
    (``val_fraction``, stratified, seeded by ``val_seed``) when the dataset has none.
    """

    format: str = "list"  # a name of motif.data.annotations.DATASET_FORMATS
    root: str = MISSING
    train_list: Optional[str] = None
    val_list: Optional[str] = None
    test_list: Optional[str] = None
    class_names: Optional[str] = None
    splits: list[int] = field(default_factory=lambda: [1])
    val_fraction: float = 0.1
    val_seed: int = 0
    ground_truth: Optional[str] = None  # per-frame concept labels of a synthetic world (relative to root)
    synthetic: SyntheticOrderConfig = field(default_factory=SyntheticOrderConfig)


@dataclass
class BackboneConfig:
    """The frozen open_clip vision-language backbone."""

    model: str = "ViT-B-32"
    pretrained: Optional[str] = "openai"
    device: str = "auto"
    precision: str = "auto"
    batch_size: int = 64


@dataclass
class ConceptsConfig:
    bank: Optional[str] = None
    similarity_threshold: float = 0.9


@dataclass
class CacheConfig:
    dir: str = "cache"
    mode: str = "cache"  # a name of CACHE_MODES
    num_workers: int = 0


@dataclass
class ModelConfig:
    """The temporal concept bottleneck (spec section 3)."""

    variant: str = "motif"  # a name of motif.model.variants.MODEL_VARIANTS
    num_layers: int = 1
    head_dim: int = 1
    dropout: float = 0.1
    tau: float = 1.0
    ffn_hidden: int = 1
    attention_impl: str = "fast"  # a name of motif.model.variants.ATTENTION_IMPLEMENTATIONS
    precision: str = "32"  # 32 | bf16 (bfloat16 autocast of the bottleneck in training; the loss stays float32)
    compile: bool = False  # torch.compile the bottleneck for training


@dataclass
class OptimConfig:
    """Loss and optimiser (spec section 4)."""

    lr: float = 1e-3
    weight_decay: float = 1e-2
    batch_size: int = 32
    max_epochs: int = 100
    patience: int = 50
    min_epochs: int = 0  # early stopping never stops a run before this epoch (slow starters learn late)
    grad_clip: float = 1.0
    label_smoothing: float = 0.1
    class_weighted: bool = True
    l1_weight: float = 1e-3
    l1_mode: str = "penalty"  # penalty (in the loss) | proximal (soft-threshold after each step: exact zeros)
    sparsity_weight: float = 1e-3
    lr_schedule: str = "constant"  # a name of LR_SCHEDULES (constant: optim.lr throughout, the published recipe)
    warmup_epochs: int = 0  # epochs of linear warm-up to optim.lr before the schedule (either schedule)
    final_lr_ratio: float = 0.0  # cosine: the last epoch's learning rate as a fraction of optim.lr
    bucket_by_length: bool = True


@dataclass
class TrainerConfig:
    accelerator: str = "auto"
    devices: Any = 1
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "32-true"
    num_workers: int = 0
    log_every_n_steps: int = 10
    check_val_every_n_epoch: int = 1
    deterministic: bool = False
    progress_bar: bool = True
    cpu_threads: Optional[int] = None  # torch's intra-op CPU threads while training / evaluating the bottleneck


@dataclass
class WandbConfig:
    mode: str = "auto"  # a name of WANDB_MODES
    project: str = "motif"
    entity: Optional[str] = None
    name: Optional[str] = None
    tags: list[str] = field(default_factory=list)
    media_every_n_epochs: int = 5
    num_videos: int = 4
    top_k: int = 5


@dataclass
class LoggerConfig:
    wandb: WandbConfig = field(default_factory=WandbConfig)
    csv: bool = True


@dataclass
class BaselinesConfig:
    """Baselines run beside the model on the same data (spec section 7)."""

    zero_shot: bool = True
    linear_probe: bool = True
    mean_cbm: bool = True
    full_attention: bool = True
    time_shuffle: bool = True
    epochs: int = 100
    zero_shot_prompt: str = "a video of {}"


@dataclass
class DiscoveryConfig:
    """Concept discovery (tools/discover_concepts.py): propose phrases with a vision-language model
    over the OpenAI-compatible chat-completions API, select the ones the backbone detects in the
    training windows and that separate classes."""

    mode: str = "both"  # a name of DISCOVERY_MODES
    endpoint: str = "http://localhost:8000/v1"
    model: str = "Qwen/Qwen2.5-VL-7B-Instruct"
    api_key_env: str = "OPENAI_API_KEY"
    input: str = "frames"  # a name of DISCOVERY_INPUTS (text: for language models without vision)
    structured_output: str = "json_schema"  # a name of STRUCTURED_OUTPUTS
    vocabulary: Optional[str] = None  # extra candidate phrases (a bank file), used by select
    videos_per_class: int = 4
    frames_per_video: int = 6
    image_size: int = 448  # longer side of the frames sent, in pixels
    concepts_per_request: int = 12
    max_tokens: int = 512
    temperature: float = 0.0
    concurrency: int = 4
    timeout: float = 120.0  # seconds per request
    retries: int = 3
    cache_dir: str = "cache/discovery"
    per_class: int = 3
    budget: Optional[int] = None  # total concepts kept; None = per_class x classes
    min_detection: float = 3.0  # a unimodal (normal) activation scores about 2.7
    min_contrast: float = 0.5
    redundancy: float = 0.9
    seed: int = 0


@dataclass
class RunConfig:
    """The whole run. ``output_dir/name`` is the run directory."""

    name: str = "run"
    output_dir: str = "runs"
    seed: int = 0
    video: VideoWindowSettings = field(default_factory=VideoWindowSettings)
    data: DataConfig = field(default_factory=DataConfig)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    concepts: ConceptsConfig = field(default_factory=ConceptsConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    baselines: BaselinesConfig = field(default_factory=BaselinesConfig)
    discovery: DiscoveryConfig = field(default_factory=DiscoveryConfig)


# Choice lists that the config itself owns (their consumers sit above it).
ORDER_TASK_VARIANTS: Registry[str] = Registry("synthetic order task", key="data.synthetic.variant", entries={
    "five": "five temporal patterns", "pairs": "time-mirrored pairs", "relative": "A then B vs B then A"})
CACHE_MODES: Registry[str] = Registry("cache mode", key="cache.mode", entries={
    "cache": "embeddings stored on disk and reused", "stream": "embedded on the fly, nothing written"})
PRECISIONS: Registry[str] = Registry("training precision", key="model.precision", entries={
    "32": "float32", "bf16": "bfloat16 autocast of the bottleneck (the loss stays float32)"})
L1_MODES: Registry[str] = Registry("L1 mode", key="optim.l1_mode", entries={
    "penalty": "λ1·Σ|W| added to the loss", "proximal": "soft-thresholding after each optimiser step (exact zeros)"})
LR_SCHEDULES: Registry[str] = Registry("learning-rate schedule", key="optim.lr_schedule", entries={
    "constant": "optim.lr in every epoch", "cosine": "half a cosine from optim.lr down to optim.final_lr_ratio·lr"})
WANDB_MODES: Registry[str] = Registry("wandb mode", key="logger.wandb.mode", entries={
    "auto": "online with an API key, else offline", "online": "sync while training",
    "offline": "write a local run to sync later", "disabled": "no wandb run"})
DISCOVERY_MODES: Registry[str] = Registry("discovery mode", key="discovery.mode", entries={
    "propose": "ask the vision-language model for phrases", "select": "keep the detected, separating phrases",
    "both": "propose, then select"})
DISCOVERY_INPUTS: Registry[str] = Registry("discovery input", key="discovery.input", entries={
    "frames": "frames of the training videos", "text": "class names only"})
STRUCTURED_OUTPUTS: Registry[str] = Registry("structured output", key="discovery.structured_output", entries={
    "json_schema": "a JSON schema", "json_object": "any JSON object", "none": "free text"})

# Every key whose value names a choice: the registry of the choices (``registry.key`` is the key).
_CHOICES: dict[str, Registry] = {registry.key: registry for registry in (
    VIDEO_BACKENDS, FRAME_SAMPLING, DATASET_FORMATS, ORDER_TASK_VARIANTS, CACHE_MODES, MODEL_VARIANTS,
    ATTENTION_IMPLEMENTATIONS, PRECISIONS, L1_MODES, LR_SCHEDULES, WANDB_MODES, DISCOVERY_MODES, DISCOVERY_INPUTS,
    STRUCTURED_OUTPUTS)}


@dataclass(frozen=True)
class Range:
    """The allowed values of a numeric key: ``low <= value <= high`` (``<`` where open; None = unbounded).
    Every value must also be finite."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def __str__(self) -> str:
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"


AT_LEAST_ONE = Range(1)
NON_NEGATIVE = Range(0)
POSITIVE = Range(0, low_open=True)
PROBABILITY = Range(0, 1)

# Every numeric key of the schema (tested); None values of Optional keys are not checked.
_RANGES = {
    "seed": NON_NEGATIVE,
    "video.window_size": AT_LEAST_ONE,
    "video.stride": AT_LEAST_ONE,
    "video.frames_per_window": AT_LEAST_ONE,
    "video.seed": NON_NEGATIVE,
    "video.num_threads": NON_NEGATIVE,
    "video.min_frames": AT_LEAST_ONE,
    "video.fps_override": POSITIVE,
    "video.chunk_windows": AT_LEAST_ONE,
    "video.resize": AT_LEAST_ONE,
    "data.splits": AT_LEAST_ONE,
    "data.val_fraction": Range(0, 1, high_open=True),
    "data.val_seed": NON_NEGATIVE,
    "data.synthetic.num_videos": AT_LEAST_ONE,
    "data.synthetic.feature_dim": AT_LEAST_ONE,
    "data.synthetic.num_concepts": AT_LEAST_ONE,
    "data.synthetic.min_windows": AT_LEAST_ONE,
    "data.synthetic.max_windows": AT_LEAST_ONE,
    "data.synthetic.test_fraction": Range(0, 1, low_open=True, high_open=True),
    "data.synthetic.seed": NON_NEGATIVE,
    "backbone.batch_size": AT_LEAST_ONE,
    "concepts.similarity_threshold": Range(0, 1, low_open=True),
    "cache.num_workers": NON_NEGATIVE,
    "model.num_layers": NON_NEGATIVE,
    "model.head_dim": AT_LEAST_ONE,
    "model.dropout": Range(0, 1, high_open=True),
    "model.tau": POSITIVE,
    "model.ffn_hidden": AT_LEAST_ONE,
    "optim.lr": POSITIVE,
    "optim.weight_decay": NON_NEGATIVE,
    "optim.batch_size": AT_LEAST_ONE,
    "optim.max_epochs": AT_LEAST_ONE,
    "optim.min_epochs": NON_NEGATIVE,
    "optim.patience": NON_NEGATIVE,
    "optim.grad_clip": NON_NEGATIVE,
    "optim.label_smoothing": PROBABILITY,
    "optim.l1_weight": NON_NEGATIVE,
    "optim.sparsity_weight": NON_NEGATIVE,
    "optim.warmup_epochs": NON_NEGATIVE,
    "optim.final_lr_ratio": PROBABILITY,
    "trainer.num_nodes": AT_LEAST_ONE,
    "trainer.num_workers": NON_NEGATIVE,
    "trainer.log_every_n_steps": AT_LEAST_ONE,
    "trainer.check_val_every_n_epoch": AT_LEAST_ONE,
    "trainer.cpu_threads": AT_LEAST_ONE,
    "logger.wandb.media_every_n_epochs": AT_LEAST_ONE,
    "logger.wandb.num_videos": NON_NEGATIVE,
    "logger.wandb.top_k": AT_LEAST_ONE,
    "baselines.epochs": AT_LEAST_ONE,
    "discovery.videos_per_class": AT_LEAST_ONE,
    "discovery.frames_per_video": AT_LEAST_ONE,
    "discovery.image_size": AT_LEAST_ONE,
    "discovery.concepts_per_request": AT_LEAST_ONE,
    "discovery.max_tokens": AT_LEAST_ONE,
    "discovery.temperature": NON_NEGATIVE,
    "discovery.concurrency": AT_LEAST_ONE,
    "discovery.timeout": POSITIVE,
    "discovery.retries": NON_NEGATIVE,
    "discovery.per_class": AT_LEAST_ONE,
    "discovery.budget": AT_LEAST_ONE,
    "discovery.min_detection": NON_NEGATIVE,
    "discovery.min_contrast": NON_NEGATIVE,
    "discovery.redundancy": Range(0, 1, low_open=True),
    "discovery.seed": NON_NEGATIVE,
}


def _schema_keys(schema: type, prefix: str = "") -> dict[str, Any]:
    """Flat ``{dotted.key: field type or nested dataclass}`` of a dataclass schema."""
    keys: dict[str, Any] = {}
    for f in fields(schema):
        name = f"{prefix}{f.name}"
        nested = f.default_factory() if callable(f.default_factory) else None  # type: ignore[misc]
        if is_dataclass(nested):
            keys[name] = type(nested)
            keys.update(_schema_keys(type(nested), name + "."))
        else:
            keys[name] = f.type
    return keys


_KEYS = _schema_keys(RunConfig)


def _unknown_key_error(key: str, source: str) -> ConfigError:
    parent = key.rsplit(".", 1)[0] + "." if "." in key else ""
    siblings = [k for k in _KEYS if k.startswith(parent) and "." not in k[len(parent):]]
    close = difflib.get_close_matches(key, siblings or list(_KEYS), n=1, cutoff=0.5)
    hint = f"Did you mean '{close[0]}'?" if close else "--print-config lists every key."
    return ConfigError(f"Unknown config key '{key}' in {source}.", where=key, hint=hint)


def _check_keys(tree: dict, where: str, prefix: str = "") -> None:
    for key, value in tree.items():
        full = f"{prefix}{key}"
        if full not in _KEYS:
            raise _unknown_key_error(full, where)
        if isinstance(value, dict) and is_dataclass(_KEYS[full]):
            _check_keys(value, where, full + ".")


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """Read a config file, resolving its ``base:`` chain (paths relative to the file)."""
    if not path.is_file():
        raise ConfigError(f"Config file '{path}' does not exist.", where=path,
                          hint="Pass an existing YAML with --config.")
    if path.resolve() in seen:
        raise ConfigError(f"Config file '{path}' is part of a 'base:' cycle.", where=path)
    try:
        tree = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"Config file '{path}' is not valid YAML: {exc}", where=path) from exc
    if not isinstance(tree, dict):
        raise ConfigError(f"Config file '{path}' must hold a mapping of keys, not {type(tree).__name__}.", where=path)
    base = tree.pop("base", None)
    _check_keys(tree, f"config file '{path}'")
    if base is None:
        return tree
    parent = _read_yaml((path.parent / base), seen + (path.resolve(),))
    return OmegaConf.to_container(OmegaConf.merge(parent, tree))  # type: ignore[return-value]


def _check_choices(cfg: DictConfig) -> None:
    for key, registry in _CHOICES.items():
        value = OmegaConf.select(cfg, key)
        try:
            registry[value]
        except UnknownChoiceError as error:
            raise ConfigError(f"Config key '{key}' is '{value}'; {choices_hint(error.choices, error.suggestion)}",
                              where=key) from None


def _check_ranges(cfg: DictConfig) -> None:
    for key, allowed in _RANGES.items():
        value = OmegaConf.select(cfg, key)
        for item in value if isinstance(value, (list, ListConfig)) else [value]:
            if item is not None and item not in allowed:
                raise ConfigError(f"Config key '{key}' is {item}; it must be {allowed}.", where=key)
    synthetic = cfg.data.synthetic
    if synthetic.min_windows > synthetic.max_windows:
        raise ConfigError(f"Config key 'data.synthetic.min_windows' is {synthetic.min_windows}, more than "
                          f"'data.synthetic.max_windows' ({synthetic.max_windows}).",
                          where="data.synthetic.min_windows")
    if cfg.optim.warmup_epochs >= cfg.optim.max_epochs:
        raise ConfigError(f"Config key 'optim.warmup_epochs' is {cfg.optim.warmup_epochs}, not less than "
                          f"'optim.max_epochs' ({cfg.optim.max_epochs}): the warm-up would never reach optim.lr. "
                          f"Lower optim.warmup_epochs.", where="optim.warmup_epochs")
    variant = MODEL_VARIANTS[cfg.model.variant]
    if variant.max_layers is not None and cfg.model.num_layers > variant.max_layers:
        raise ConfigError(f"Config key 'model.num_layers' is {cfg.model.num_layers}; model.variant "
                          f"'{cfg.model.variant}' takes at most {variant.max_layers} ({variant.description}).",
                          where="model.num_layers")


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """Schema defaults <- YAML file (with its ``base:`` chain) <- ``key=value`` overrides.

    Raises ConfigError naming the key at fault for unknown keys, wrong types, invalid choices and
    numbers out of their range (``_RANGES``).
    """
    cfg = OmegaConf.structured(RunConfig)
    layers = []
    if path is not None:
        layers.append((_read_yaml(Path(path)), f"config file '{path}'"))
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"Override '{item}' is not of the form key=value (e.g. optim.lr=3e-4).", where=item)
        key = item.split("=", 1)[0].strip()
        if key not in _KEYS:
            raise _unknown_key_error(key, "the command line")
    if overrides:
        layers.append((OmegaConf.to_container(OmegaConf.from_dotlist(list(overrides))), "the command line"))
    for layer, where in layers:
        try:
            cfg = OmegaConf.merge(cfg, layer)
        except OmegaConfBaseException as exc:
            key = getattr(exc, "full_key", None) or "?"
            reason = str(exc).splitlines()[0]
            raise ConfigError(f"Invalid value for config key '{key}' in {where}: {reason}", where=key) from exc
    _check_choices(cfg)
    _check_ranges(cfg)
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing and DATASET_FORMATS[cfg.data.format].has_videos:
        raise ConfigError(f"Config key(s) {', '.join(missing)} must be set (in the YAML file or as key=value).",
                          where=missing[0])
    return cfg


def save_config(cfg: DictConfig, path: str | Path) -> None:
    """Write the fully resolved config as YAML."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(OmegaConf.to_yaml(cfg, resolve=True))


def config_to_dict(cfg: DictConfig) -> dict:
    """Resolved plain-Python dict (for checkpoints and loggers)."""
    return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)  # type: ignore[return-value]


def window_settings_of(cfg: DictConfig) -> VideoWindowSettings:
    """The ``video`` section as the settings object that extraction, the cache key, the checkpoint and
    explanation use. Raises ConfigError for settings that do not form a window plan."""
    try:
        return VideoWindowSettings(**OmegaConf.to_container(cfg.video, resolve=True))  # type: ignore[arg-type]
    except ValueError as exc:
        raise ConfigError(f"Config section 'video' is invalid: {exc}") from exc


def run_dir_of(cfg: DictConfig) -> Path:
    """``output_dir/name``: where a run writes config.yaml, metrics.json, best.ckpt and its logs."""
    return Path(cfg.output_dir) / cfg.name


def split_dir_of(cfg: DictConfig, split: int, run_dir: str | Path | None = None) -> Path:
    """The run directory itself for a single split, ``split<k>/`` inside it for cross-validation."""
    root = run_dir_of(cfg) if run_dir is None else Path(run_dir)
    return root if len(cfg.data.splits) == 1 else root / f"split{split}"
