"""Loggers of a run: a CSV log always, wandb online / offline / disabled without start-up hangs.

Every wandb run of a training run shares its ``group`` (the run name) and the full resolved config;
``job_type`` says what it is: ``train`` (the model), ``baseline`` (the full-attention ablation and the
baselines' results), ``evaluate`` (``tools/evaluate.py``). Tags: ``logger.wandb.tags`` plus the model
variant and the data format.
"""

from __future__ import annotations

import logging
import netrc
import os
from pathlib import Path

import wandb
from omegaconf import DictConfig
from pytorch_lightning.loggers import Logger, WandbLogger

from motif.config import config_to_dict
from motif.training.resume import ResumableCSVLogger, wandb_run_id

log = logging.getLogger(__name__)


def _has_wandb_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def resolve_wandb_mode(mode: str) -> str:
    """``auto`` becomes online with credentials and offline without; WANDB_MODE in the environment wins."""
    env = os.environ.get("WANDB_MODE")
    if env in ("online", "offline", "disabled"):
        return env
    if mode == "auto":
        return "online" if _has_wandb_credentials() else "offline"
    return mode


def wandb_run_settings(cfg: DictConfig, job_type: str) -> dict:
    """The ``wandb.init`` arguments every wandb run of this config shares (no mode, name or dir)."""
    wb = cfg.logger.wandb
    tags = list(dict.fromkeys([*wb.tags, str(cfg.model.variant), str(cfg.data.format)]))
    return {"project": wb.project, "entity": wb.entity, "group": str(cfg.name), "job_type": job_type, "tags": tags,
            "config": config_to_dict(cfg)}


def start_wandb_run(cfg: DictConfig, run_dir: Path, name: str, job_type: str):
    """A wandb run of its own beside any open one (``reinit="create_new"``; the global ``wandb.run`` is left
    alone), in this config's group; None when wandb is disabled. The caller finishes it."""
    mode = resolve_wandb_mode(cfg.logger.wandb.mode)
    if mode == "disabled":
        return None
    run_dir.mkdir(parents=True, exist_ok=True)
    return wandb.init(name=name, dir=str(run_dir), mode=mode, reinit="create_new",
                      **wandb_run_settings(cfg, job_type))


def build_loggers(cfg: DictConfig, run_dir: Path, run_name: str, resume_epoch: int | None = None,
                  job_type: str = "train") -> list[Logger]:
    """resume_epoch: the epoch of the checkpoint a resumed run continues from (None: a new run); the CSV
    log then keeps its rows up to that epoch and wandb continues the run folder's run id."""
    loggers: list[Logger] = []
    if cfg.logger.csv:
        loggers.append(ResumableCSVLogger(save_dir=str(run_dir), name="csv", version="",
                                          keep_until_epoch=resume_epoch))
    mode = resolve_wandb_mode(cfg.logger.wandb.mode)
    if mode != "disabled":
        if wandb.run is not None:  # Lightning would silently log into it
            log.warning("Finishing the wandb run %s left open in this process before starting %s",
                        wandb.run.name, run_name)
            wandb.finish()
        run_id = wandb_run_id(run_dir, resume=resume_epoch is not None)
        loggers.append(WandbLogger(name=cfg.logger.wandb.name or run_name, id=run_id, resume="allow",
                                   save_dir=str(run_dir), mode=mode, **wandb_run_settings(cfg, job_type)))
        log.info("wandb logging %s to %s", mode, run_dir / "wandb")
    return loggers


def wandb_logger(loggers) -> WandbLogger | None:
    return next((lg for lg in loggers if isinstance(lg, WandbLogger)), None)
