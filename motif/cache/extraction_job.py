"""Embed a whole dataset from a run config, sharded over Lightning (Fabric) processes.

With ``trainer.devices`` / ``trainer.num_nodes`` > 1 every process takes every world_size-th video
and writes its own video files and manifest part; rank 0 merges the manifest once all are done.
A single process is the same code with world_size 1.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import torch
from lightning_fabric import Fabric
from omegaconf import DictConfig

from motif.backbone import load_backbone
from motif.cache.extract import ExtractionReport, extract_embeddings
from motif.cache.store import EmbeddingCache
from motif.config import ConfigError, window_settings_of

log = logging.getLogger(__name__)


def dataset_records(cfg: DictConfig) -> list[Any]:
    """Every video of the configured dataset (all splits of ``data.splits``, train, val and test), once."""
    from motif.data import DATASET_FORMATS, load_configured_dataset

    data = cfg.data
    if not DATASET_FORMATS[data.format].has_videos:
        raise ConfigError(f"data.format={data.format} generates features directly; it has no videos to embed",
                          where="data.format", hint="train it directly with tools/train.py")
    records: dict[str, Any] = {}
    for split in data.splits:
        splits = load_configured_dataset(data, split)
        for record in splits.all_records():
            records.setdefault(record.video_id, record)
    return list(records.values())


def build_fabric(cfg: DictConfig) -> Fabric:
    """A Fabric for the ``trainer`` section (accelerator, devices, strategy, num_nodes), launched."""
    trainer = cfg.trainer
    fabric = Fabric(
        accelerator=trainer.accelerator, devices=trainer.devices, strategy=trainer.strategy, num_nodes=trainer.num_nodes
    )
    fabric.launch()
    return fabric


def run_extraction(
    cfg: DictConfig, records: Sequence[Any] | None = None, *, fabric: Fabric | None = None, progress: bool = True
) -> ExtractionReport:
    """Fill the embedding cache (``cache.dir``) for the dataset of ``cfg`` (or ``records``).

    Returns the report summed over all processes.
    """
    fabric = fabric or build_fabric(cfg)
    # everything that can fail on bad input is read by every process before the first collective call
    records = list(records) if records is not None else dataset_records(cfg)
    shard = records[fabric.global_rank :: fabric.world_size]
    device = fabric.device if cfg.backbone.device == "auto" else cfg.backbone.device
    backbone = load_backbone(
        cfg.backbone.model,
        cfg.backbone.pretrained,
        device=device,
        precision=cfg.backbone.precision,
        batch_size=cfg.backbone.batch_size,
    )
    settings = window_settings_of(cfg)
    cache = EmbeddingCache.for_backbone(cfg.cache.dir, backbone, settings, writer=f"rank{fabric.global_rank}")
    log.info("Rank %d/%d embeds %d of %d videos into %s", fabric.global_rank, fabric.world_size, len(shard),
             len(records), cache.dir)
    decode_threads = int(cfg.cache.num_workers) or None  # 0: chosen by device (see iter_video_embeddings)
    report = extract_embeddings(shard, backbone, settings, cache, decode_threads=decode_threads,
                                progress=progress and fabric.is_global_zero)
    totals = torch.tensor([report.embedded, report.already_cached, report.windows], dtype=torch.float64)
    seconds = torch.tensor([report.seconds], dtype=torch.float64)
    if fabric.world_size > 1:  # NCCL reduces tensors on the process's own GPU
        totals = fabric.all_reduce(totals.to(fabric.device), reduce_op="sum").cpu()
        seconds = fabric.all_reduce(seconds.to(fabric.device), reduce_op="max").cpu()
    fabric.barrier()
    if fabric.is_global_zero:
        manifest = cache.consolidate()
        skipped = [{"video_id": vid, **info} for vid, info in manifest["skipped"].items()]
    else:
        skipped = report.skipped
    fabric.barrier()
    return ExtractionReport(
        embedded=int(totals[0]), already_cached=int(totals[1]), skipped=skipped, windows=int(totals[2]),
        seconds=float(seconds[0]),
    )
