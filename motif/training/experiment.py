"""One training run: every split of the config, the model, the baselines, metrics.json and best.ckpt."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities import rank_zero_only

from motif.checkpoint import RunDirectoryError, save_motif_checkpoint
from motif.config import config_to_dict, run_dir_of, save_config, split_dir_of
from motif.files import atomic_write_text
from motif.model.variants import MODEL_VARIANTS
from motif.sequences.prepare import PreparedData, prepare_sequences
from motif.stats import mean_std
from motif.training.baselines import evaluate_bottleneck, linear_baseline, shuffle_windows, zero_shot
from motif.training.callbacks import ConceptTimelineCallback
from motif.training.datamodule import ConceptSequenceDataModule
from motif.training.loggers import build_loggers, start_wandb_run, wandb_logger
from motif.training.module import MotifModule, class_weights_from_labels
from motif.training.resume import AtomicCheckpointIO, RunFolderError, checkpoint_epoch

log = logging.getLogger(__name__)

FULL_ATTENTION_VARIANT = "full"   # the model variant of the baseline ``baselines.full_attention``


def model_kwargs_of(cfg: DictConfig, num_concepts: int, num_classes: int, variant: str | None = None) -> dict:
    m = cfg.model
    return dict(num_concepts=num_concepts, num_classes=num_classes, num_layers=m.num_layers, head_dim=m.head_dim,
                dropout=m.dropout, tau=m.tau, variant=variant or m.variant, ffn_hidden=m.ffn_hidden,
                attention_impl=m.attention_impl)


def _trainer(cfg: DictConfig, out_dir: Path, loggers: list, callbacks: list) -> pl.Trainer:
    t = cfg.trainer
    return pl.Trainer(accelerator=t.accelerator, devices=t.devices, strategy=t.strategy, num_nodes=t.num_nodes,
                      precision=t.precision, max_epochs=cfg.optim.max_epochs, min_epochs=cfg.optim.min_epochs,
                      gradient_clip_val=cfg.optim.grad_clip,
                      logger=loggers or False, callbacks=callbacks, default_root_dir=str(out_dir),
                      log_every_n_steps=t.log_every_n_steps, check_val_every_n_epoch=t.check_val_every_n_epoch,
                      deterministic=t.deterministic, enable_progress_bar=t.progress_bar,
                      use_distributed_sampler=False, enable_model_summary=False, num_sanity_val_steps=0,
                      plugins=[AtomicCheckpointIO()])


def fit_bottleneck(cfg: DictConfig, data: PreparedData, out_dir: Path, variant: str, *, loggers: list,
                   resume: bool = False, media: bool = False) -> tuple[MotifModule, int]:
    """Train one bottleneck with Lightning; model selection and early stopping on val accuracy.

    Returns the module holding the SELECTED (best validation) weights and the number of epochs run.
    A finished fit leaves ``fit.json`` beside its Lightning checkpoints; ``resume`` with the same
    max_epochs and patience then reuses it instead of training on (which an early-stopped run would).
    """
    pl.seed_everything(cfg.seed, workers=True)
    kwargs = model_kwargs_of(cfg, len(data.concept_names), len(data.class_names), variant)
    weights = class_weights_from_labels([it.label for it in data.train], len(data.class_names))
    module = MotifModule(kwargs, dict(cfg.optim), weights.tolist() if cfg.optim.class_weighted else None,
                         seed=cfg.seed, precision=cfg.model.precision, compile=cfg.model.compile)
    module.model.set_input_statistics(data.standardizer.mean, data.standardizer.std)
    ckpt_dir = out_dir / "lightning" / variant
    finished = ckpt_dir / "fit.json"
    stopping = {"max_epochs": cfg.optim.max_epochs, "min_epochs": cfg.optim.min_epochs,
                "patience": cfg.optim.patience}
    if resume and finished.is_file():
        record = json.loads(finished.read_text())
        if record["stopping"] == stopping:
            log.info("--resume: the %s fit finished before; using its best checkpoint", variant)
            _load_best(module, record["best"])
            return module, int(record["epochs"])
    dm = ConceptSequenceDataModule(data.train, data.val, data.test, batch_size=cfg.optim.batch_size,
                                   bucket_by_length=cfg.optim.bucket_by_length, seed=cfg.seed,
                                   num_workers=cfg.trainer.num_workers)
    if not resume and ckpt_dir.is_dir() and rank_zero_only.rank == 0:
        log.warning("Removing the Lightning checkpoints of an earlier run in %s (pass --resume to continue it)",
                    ckpt_dir)
        shutil.rmtree(ckpt_dir)
    checkpoint = ModelCheckpoint(dirpath=str(ckpt_dir), filename="best", monitor="val/selection", mode="max",
                                 save_last=True, save_top_k=1)
    callbacks = [checkpoint, EarlyStopping(monitor="val/selection", mode="max", patience=cfg.optim.patience)]
    if media and wandb_logger(loggers) is not None:
        w = cfg.logger.wandb
        callbacks.append(ConceptTimelineCallback(data, every_n_epochs=w.media_every_n_epochs,
                                                 num_videos=w.num_videos, top_k=w.top_k, seed=cfg.seed))
    trainer = _trainer(cfg, out_dir, loggers, callbacks)
    last = ckpt_dir / "last.ckpt"
    ckpt_path = str(last) if resume and last.is_file() else None
    if resume and ckpt_path is None:
        log.warning("--resume: no %s yet, starting from scratch", last)
    trainer.fit(module, dm, ckpt_path=ckpt_path, weights_only=True)
    best = checkpoint.best_model_path or str(last)
    _load_best(module, best)
    if trainer.global_rank == 0:
        _write_json(finished, {"best": best, "epochs": trainer.current_epoch, "stopping": stopping})
    return module, trainer.current_epoch


def _load_best(module: MotifModule, path: str) -> None:
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    module.load_state_dict(state)
    module.model.eval()


def train_split(cfg: DictConfig, split: int, resume: bool = False) -> dict | None:
    """Train and evaluate one split. Returns its metrics on rank 0, None on other ranks."""
    out_dir = split_dir_of(cfg, split)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    data = prepare_sequences(cfg, split, out_dir)
    run_name = f"{cfg.name}" if len(cfg.data.splits) == 1 else f"{cfg.name}-split{split}"
    resume_epoch = checkpoint_epoch(out_dir / "lightning" / cfg.model.variant / "last.ckpt") if resume else None
    loggers = build_loggers(cfg, out_dir, run_name, resume_epoch)
    module, epochs = fit_bottleneck(cfg, data, out_dir, cfg.model.variant, loggers=loggers, resume=resume,
                                    media=True)
    full = baseline_run = None
    if cfg.baselines.full_attention and cfg.model.variant != FULL_ATTENTION_VARIANT:
        if wandb_logger(loggers) is not None and rank_zero_only.rank == 0:  # its own wandb run, job_type baseline
            baseline_run = start_wandb_run(cfg, out_dir, f"{run_name}-baselines", "baseline")
        full, _ = fit_bottleneck(cfg, data, out_dir, FULL_ATTENTION_VARIANT, resume=resume,
                                 loggers=[WandbLogger(experiment=baseline_run)] if baseline_run is not None else [])
    if rank_zero_only.rank != 0:
        return None

    bs = cfg.optim.batch_size
    model = module.model
    val, test = evaluate_bottleneck(model, data.val, bs), evaluate_bottleneck(model, data.test, bs)
    metrics: dict = {"variant": cfg.model.variant,
                     "val_acc": val.acc, "test_acc": test.acc, "test_acc_top5": test.acc_top5, "epochs": epochs,
                     "num_train": len(data.train), "num_val": len(data.val), "num_test": len(data.test),
                     "num_concepts": len(data.concept_names), "num_classes": len(data.class_names),
                     "skipped_videos": len(data.skipped)}
    if cfg.baselines.time_shuffle:
        metrics["shuffled_test_acc"] = evaluate_bottleneck(model, shuffle_windows(data.test, cfg.seed), bs).acc
    metrics["baselines"] = run_baselines(cfg, data, full)
    if baseline_run is not None:
        baseline_run.summary.update(_flatten(metrics["baselines"]))
        baseline_run.finish()
    metrics["seconds"] = time.perf_counter() - start

    save_motif_checkpoint(out_dir / "best.ckpt", model=model, model_kwargs=module.hparams["model_kwargs"],
                          class_names=data.class_names, concept_names=data.concept_names,
                          text_embeddings=data.text_embeddings, standardizer=data.standardizer, video=data.video,
                          backbone=data.backbone, config=config_to_dict(cfg), metrics=metrics)
    _write_json(out_dir / "metrics.json", metrics)
    wb = wandb_logger(loggers)
    if wb is not None:
        wb.experiment.summary.update(_flatten(metrics))
    for lg in loggers:
        lg.finalize("success")
    if wb is not None:
        wb.experiment.finish()  # each split is its own wandb run
    return metrics


def run_baselines(cfg: DictConfig, data: PreparedData, full_attention_module: MotifModule | None) -> dict:
    b, out = cfg.baselines, {}
    k = len(data.class_names)
    weights = class_weights_from_labels([it.label for it in data.train], k) if cfg.optim.class_weighted else None
    has_embeddings = all(it.embeddings is not None for it in data.train + data.val + data.test)
    if b.mean_cbm:
        out["mean_cbm"] = linear_baseline(data.train, data.val, data.test, "concepts", k, epochs=b.epochs,
                                          seed=cfg.seed, class_weights=weights)
    if b.linear_probe:
        out["linear_probe"] = (linear_baseline(data.train, data.val, data.test, "embeddings", k, epochs=b.epochs,
                                               seed=cfg.seed, class_weights=weights)
                               if has_embeddings else {"skipped": "no raw window embeddings"})
    if b.zero_shot:
        if data.class_text_embeddings is None or not has_embeddings:
            out["zero_shot"] = {"skipped": "needs a backbone text encoder"}
        else:
            zs = zero_shot(data.test, data.class_text_embeddings)
            out["zero_shot"] = {"test_acc": zs["mean_embedding"]["test_acc"], **zs}  # no pooling picked on test
    if full_attention_module is not None:
        model = full_attention_module.model
        out["full_attention"] = {"val_acc": evaluate_bottleneck(model, data.val, cfg.optim.batch_size).acc,
                                 "test_acc": evaluate_bottleneck(model, data.test, cfg.optim.batch_size).acc}
    return out


def aggregate_splits(trees: list[dict]) -> dict:
    """Mean over splits of every number in the metrics trees, with ``<key>_std`` beside each mean."""
    out: dict = {}
    for key, first in trees[0].items():
        values = [t.get(key) for t in trees]
        if isinstance(first, dict) and all(isinstance(v, dict) for v in values):
            out[key] = aggregate_splits(values)
        elif isinstance(first, (int, float)) and not isinstance(first, bool) and all(
                isinstance(v, (int, float)) for v in values):
            mean, std = mean_std([float(v) for v in values])
            out[key], out[f"{key}_std"] = mean, std
    return out


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        elif isinstance(value, (int, float, str)):
            flat[f"{prefix}{key}"] = value
    return flat


def check_writable(run_dir: Path) -> None:
    """Create ``run_dir`` and prove that files can be written there, before any work starts."""
    probe = run_dir / f".write-test-{os.getpid()}"
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise RunFolderError(f"The run folder {run_dir} is not writable ({exc.strerror or exc})", where=run_dir,
                             hint="choose another output_dir or name, or free space there") from exc


def _write_json(path: Path, obj: dict) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True))


def train_and_evaluate(cfg: DictConfig, resume: bool = False) -> dict | None:
    """Train every split of ``cfg.data.splits``; write metrics.json (with mean ± std over splits)."""
    run_dir = run_dir_of(cfg)
    check_writable(run_dir)
    save_config(cfg, run_dir / "config.yaml")
    per_split = {}
    for split in cfg.data.splits:
        metrics = train_split(cfg, split, resume=resume)
        if metrics is None:
            continue
        per_split[str(split)] = metrics
    if not per_split:
        return None
    if len(per_split) == 1:
        return next(iter(per_split.values()))
    summary = {**aggregate_splits(list(per_split.values())), "splits": per_split}
    _write_json(run_dir / "metrics.json", summary)
    return summary


def format_summary(metrics: dict, run_dir: Path) -> str:
    """A short text table of the model and its baselines."""
    def pct(value) -> str:
        return f"{100 * value:6.1f}" if isinstance(value, (int, float)) else "     -"

    def std(tree: dict, key: str) -> str:
        return f" ± {100 * tree[key + '_std']:.1f}" if key + "_std" in tree else ""

    lines = [f"run directory: {run_dir}", f"{'method':<28}{'test acc %':>12}"]
    variant = metrics.get("variant", "motif")
    model = MODEL_VARIANTS[variant].display_name if variant in MODEL_VARIANTS else variant
    lines.append(f"{model:<28}{pct(metrics.get('test_acc'))}{std(metrics, 'test_acc')}")
    if "shuffled_test_acc" in metrics:
        lines.append(f"{model + ', windows shuffled':<28}{pct(metrics['shuffled_test_acc'])}"
                     f"{std(metrics, 'shuffled_test_acc')}")
    for name, tree in metrics.get("baselines", {}).items():
        if "skipped" in tree:
            lines.append(f"{name:<28}{'skipped':>12}  ({tree['skipped']})")
        else:
            lines.append(f"{name:<28}{pct(tree.get('test_acc'))}{std(tree, 'test_acc')}")
    return "\n".join(lines)


SUMMARY_SCORES = ("concept_auc_mean", "localisation", "localisation_chance", "recovery_all", "recovery_any",
                  "absent_importance_share", "absent_in_top3_rate", "identical_windows_max_deviation",
                  "zero_evidence_max_z_ratio",
                  "remove_concepts_k5_prob_drop_top", "remove_concepts_k5_prob_drop_random", "repair_rate_4_edits")


def summarize_run(run_dir: str | Path) -> str:
    """The accuracy table of a finished run, its evaluation headline (if ``tools/evaluate.py`` ran) and
    where its reports, logs and checkpoint are."""
    run_dir = Path(run_dir)
    metrics_file = run_dir / "metrics.json"
    if not metrics_file.is_file():
        raise RunDirectoryError(f"{metrics_file} does not exist", where=metrics_file,
                                hint="pass a run directory of tools/train.py, or train first")
    lines = [format_summary(json.loads(metrics_file.read_text()), run_dir)]
    headline = run_dir / "evaluation" / "headline.json"
    if headline.is_file():
        lines.append("\nevaluation (" + str(headline.parent) + "):")
        scores = json.loads(headline.read_text())
        lines += [f"  {key:<40}" + (f"{scores[key]:.3f}" if isinstance(scores[key], (int, float)) else "n/a")
                  for key in SUMMARY_SCORES if key in scores]
    reports = sorted(run_dir.glob("explanations/*/report.html"))
    if reports:
        lines.append("\nexplanation reports:")
        lines += [f"  {path}" for path in reports]
    wandb_runs = sorted((run_dir / "wandb").glob("offline-run-*"))
    if wandb_runs:
        lines.append(f"\nwandb offline runs (train, baselines, evaluation; upload with: wandb sync "
                     f"{run_dir / 'wandb' / 'offline-run-*'}):")
        lines += [f"  {path}" for path in wandb_runs]
    lines.append(f"checkpoint: {run_dir / 'best.ckpt'}")
    return "\n".join(lines)
