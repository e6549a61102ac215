"""What makes ``--resume`` exact: global RNG states in the checkpoint, atomic checkpoint writes read
back with ``weights_only=True``, a CSV log that keeps the rows of the epochs before the resume point,
and one wandb run id per run folder.

The rest is Lightning's own checkpoint state (weights, optimiser, loop counters, the EarlyStopping and
ModelCheckpoint callback states); the length-bucket sampler draws each epoch from (seed, epoch), and
dropout masks are keyed by (seed, epoch, video id), so neither depends on what ran before the resume.
"""

from __future__ import annotations

import csv
import random
import secrets
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning_fabric.loggers.logger import rank_zero_experiment
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.utilities import rank_zero_only
from torch import Tensor

from motif.errors import MotifError
from motif.files import atomic_write


class ResumeError(MotifError, RuntimeError):
    """A resume file cannot be used; the message names it and what to do."""


class RunFolderError(MotifError, OSError):
    """The run folder cannot be created or written (a read-only or full disk)."""


def rng_states() -> dict[str, Tensor]:
    """The torch (CPU and CUDA), numpy and python global RNG states as plain tensors."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, python_state, _ = random.getstate()
    states = {"torch": torch.get_rng_state(), "numpy_keys": torch.from_numpy(keys.astype(np.int64)),
              "numpy_rest": torch.tensor([pos, has_gauss, gauss], dtype=torch.float64),
              "python": torch.tensor(python_state, dtype=torch.int64)}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.stack(torch.cuda.get_rng_state_all())
    return states


def set_rng_states(states: dict[str, Tensor]) -> None:
    """Restore what ``rng_states`` returned."""
    torch.set_rng_state(states["torch"])
    pos, has_gauss, gauss = states["numpy_rest"].tolist()
    np.random.set_state(("MT19937", states["numpy_keys"].numpy().astype(np.uint32), int(pos), int(has_gauss), gauss))
    random.setstate((3, tuple(states["python"].tolist()), None))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(states["cuda"]))


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoints written to a temporary file, synced and renamed (a kill mid-write leaves the
    previous checkpoint intact), and read with ``weights_only=True`` (no pickled code runs)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with atomic_write(path) as temporary:
                torch.save(checkpoint, temporary)
        except OSError as exc:  # e.g. a full disk: name the checkpoint, not only the errno
            raise RunFolderError(f"{path} cannot be written ({exc.strerror or exc})", where=path,
                                 hint="free space there, then run the same command with --resume") from exc

    def load_checkpoint(self, path, map_location: Any | None = None, weights_only: bool | None = None
                        ) -> dict[str, Any]:
        try:
            return torch.load(path, map_location=map_location or "cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - a damaged file of any kind
            raise ResumeError(f"The resume checkpoint {path} cannot be read ({exc})", where=path,
                              hint="delete it to train from scratch, or run without --resume") from exc


def checkpoint_epoch(path: Path) -> int | None:
    """The epoch a Lightning checkpoint was written at, or None when there is no file."""
    if not path.is_file():
        return None
    return int(AtomicCheckpointIO().load_checkpoint(path)["epoch"])


class _AppendingWriter(ExperimentWriter):
    """Keeps an existing metrics.csv: rows of epochs <= ``keep_until_epoch`` stay, later ones (logged after
    the resume point) are dropped; new rows are appended. ``keep_until_epoch`` None starts a fresh file."""

    def __init__(self, log_dir: str, keep_until_epoch: int | None) -> None:
        self._keep_until_epoch = keep_until_epoch
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        if not path.is_file():
            return
        if self._keep_until_epoch is None:
            path.unlink()
            return
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            fields = list(reader.fieldnames or [])
            rows = [row for row in reader if not row.get("epoch") or float(row["epoch"]) <= self._keep_until_epoch]
        with atomic_write(path) as temporary, open(temporary, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
        self.metrics_keys = fields


class ResumableCSVLogger(CSVLogger):
    """``CSVLogger`` that appends to the log of the run it resumes (see ``_AppendingWriter``)."""

    def __init__(self, *args: Any, keep_until_epoch: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._keep_until_epoch = keep_until_epoch

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(self.log_dir, self._keep_until_epoch)
        return self._experiment


def wandb_run_id(run_dir: Path, resume: bool) -> str:
    """The wandb run id of a run folder: the stored one when resuming, else a new one (stored)."""
    path = run_dir / "wandb" / "run_id"
    if (resume or rank_zero_only.rank != 0) and path.is_file():
        return path.read_text().strip()
    run_id = secrets.token_hex(4)
    if rank_zero_only.rank == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(run_id)
    return run_id
