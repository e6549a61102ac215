"""Loggers of a run: a CSV log always, wandb online / offline / disabled without start-up hangs."""

from __future__ import annotations

import logging
import netrc
import os
from pathlib import Path

import wandb
from omegaconf import DictConfig
from pytorch_lightning.loggers import Logger, WandbLogger

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


def build_loggers(cfg: DictConfig, run_dir: Path, run_name: str, resume_epoch: int | None = None) -> list[Logger]:
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
        wb = cfg.logger.wandb
        run_id = wandb_run_id(run_dir, resume=resume_epoch is not None)
        loggers.append(WandbLogger(project=wb.project, entity=wb.entity, name=wb.name or run_name, id=run_id,
                                   resume="allow", tags=list(wb.tags), save_dir=str(run_dir), mode=mode))
        log.info("wandb logging %s to %s", mode, run_dir / "wandb")
    return loggers


def wandb_logger(loggers) -> WandbLogger | None:
    return next((lg for lg in loggers if isinstance(lg, WandbLogger)), None)
