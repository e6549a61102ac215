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

from motif.checkpoint import save_motif_checkpoint
from motif.config import config_to_dict, run_dir_of, save_config, split_dir_of
from motif.files import atomic_write_text
from motif.sequences.prepare import PreparedData, prepare_sequences
from motif.stats import mean_std
from motif.threads import cpu_threads
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
                   resume: bool = False, media: ConceptTimelineCallback | None = None) -> tuple[MotifModule, int]:
    """Train one bottleneck with Lightning; model selection and early stopping on val accuracy; ``media``
    logs its concept timelines to wandb.

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
    if media is not None:
        callbacks.append(media)
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


def evaluation_device(accelerator: str) -> torch.device:
    """Where the evaluation after training runs: on the accelerator the run trained on (this process's
    current CUDA device for ``gpu`` / ``cuda``, or for ``auto`` when CUDA is available; ``mps`` likewise),
    else on the CPU."""
    if accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    if accelerator in ("mps", "auto") and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _load_best(module: MotifModule, path: str) -> None:
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    module.load_state_dict(state)
    module.model.eval()


def train_split(cfg: DictConfig, split: int, resume: bool = False) -> dict | None:
    """Train and evaluate one split. Returns its metrics on rank 0, None on other ranks.

    The data (and the embedding cache) are prepared with PyTorch's default threads, the bottleneck is
    trained and evaluated on ``trainer.cpu_threads`` of them (when set)."""
    out_dir = split_dir_of(cfg, split)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    data = prepare_sequences(cfg, split, out_dir)
    with cpu_threads(cfg.trainer.cpu_threads):
        return fit_and_evaluate(cfg, split, data, out_dir, start, resume)


def fit_and_evaluate(cfg: DictConfig, split: int, data: PreparedData, out_dir: Path, start: float,
                     resume: bool) -> dict | None:
    """The bottleneck of one split, its baselines, metrics.json and best.ckpt (``start``: the split's
    perf_counter start, for metrics' seconds). Returns the metrics on rank 0, None on other ranks."""
    run_name = f"{cfg.name}" if len(cfg.data.splits) == 1 else f"{cfg.name}-split{split}"
    resume_epoch = checkpoint_epoch(out_dir / "lightning" / cfg.model.variant / "last.ckpt") if resume else None
    loggers = build_loggers(cfg, out_dir, run_name, resume_epoch)
    media = None
    if wandb_logger(loggers) is not None:
        w = cfg.logger.wandb
        media = ConceptTimelineCallback(data, every_n_epochs=w.media_every_n_epochs, num_videos=w.num_videos,
                                        top_k=w.top_k, seed=cfg.seed)
    module, epochs = fit_bottleneck(cfg, data, out_dir, cfg.model.variant, loggers=loggers, resume=resume,
                                    media=media)
    full = baseline_run = None
    if cfg.baselines.full_attention and cfg.model.variant != FULL_ATTENTION_VARIANT:
        if wandb_logger(loggers) is not None and rank_zero_only.rank == 0:  # its own wandb run, job_type baseline
            baseline_run = start_wandb_run(cfg, out_dir, f"{run_name}-baselines", "baseline")
        full, _ = fit_bottleneck(cfg, data, out_dir, FULL_ATTENTION_VARIANT, resume=resume,
                                 loggers=[WandbLogger(experiment=baseline_run)] if baseline_run is not None else [])
    if rank_zero_only.rank != 0:
        return None

    bs, device = cfg.optim.batch_size, evaluation_device(cfg.trainer.accelerator)
    model = module.model
    val, test = evaluate_bottleneck(model, data.val, bs, device), evaluate_bottleneck(model, data.test, bs, device)
    metrics: dict = {"variant": cfg.model.variant,
                     "val_acc": val.acc, "test_acc": test.acc, "test_acc_top5": test.acc_top5, "epochs": epochs,
                     "num_train": len(data.train), "num_val": len(data.val), "num_test": len(data.test),
                     "num_concepts": len(data.concept_names), "num_classes": len(data.class_names),
                     "skipped_videos": len(data.skipped)}
    if cfg.baselines.time_shuffle:
        metrics["shuffled_test_acc"] = evaluate_bottleneck(model, shuffle_windows(data.test, cfg.seed), bs, device).acc
    metrics["baselines"] = run_baselines(cfg, data, full, device)
    if baseline_run is not None:
        baseline_run.summary.update(_flatten(metrics["baselines"]))
        baseline_run.finish()
    metrics["seconds"] = time.perf_counter() - start

    save_motif_checkpoint(out_dir / "best.ckpt", model=model, model_kwargs=module.hparams["model_kwargs"],
                          class_names=data.class_names, concept_names=data.concept_names,
                          text_embeddings=data.text_embeddings, standardizer=data.standardizer, video=data.video,
                          backbone=data.backbone, config=config_to_dict(cfg), metrics=metrics)
    _write_json(out_dir / "metrics.json", metrics)
    if media is not None:
        media.log_figures()   # drawn in the background while the baselines ran
    wb = wandb_logger(loggers)
    if wb is not None:
        wb.experiment.summary.update(_flatten(metrics))
    for lg in loggers:
        lg.finalize("success")
    if wb is not None:
        wb.experiment.finish()  # each split is its own wandb run
    return metrics


def run_baselines(cfg: DictConfig, data: PreparedData, full_attention_module: MotifModule | None,
                  device: str | torch.device = "cpu") -> dict:
    """The baselines of ``cfg.baselines`` on ``data`` (the full-attention bottleneck, trained before, is
    evaluated on ``device``): {name: accuracies, or {"skipped": why}}."""
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
        bs = cfg.optim.batch_size
        out["full_attention"] = {"val_acc": evaluate_bottleneck(model, data.val, bs, device).acc,
                                 "test_acc": evaluate_bottleneck(model, data.test, bs, device).acc}
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
