"""Read back what an offline wandb run recorded (its run-*.wandb transaction log): the run record
(group, job type, tags, config) and the keys of everything it logged and summarised."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

BLOCK = 32768                           # the log is written in blocks (LevelDB log format)
HEADER = 7                              # record header: crc32 (4), length (2), type (1)
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def _records(path: Path):
    data = path.read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a wandb transaction log")
    pos, pending = 7, b""               # after the file header ":W&B", magic (2), version (1)
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        chunk = data[pos + HEADER:pos + HEADER + length]
        pos += HEADER + length
        if kind == FULL:
            yield chunk
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            yield pending + chunk
        else:                           # zero padding up to the end of the block
            pos += BLOCK - pos % BLOCK if pos % BLOCK else 0


def offline_run_records(run_dir: Path, timeout: float = 60.0) -> dict:
    """{"name", "group", "job_type", "tags", "config" (top-level key -> value), "keys" (logged history
    keys), "summary_keys", "charts" (custom chart key -> its preset)} of an offline-run-* folder.

    wandb's service process writes the log after ``finish()`` returns: wait up to ``timeout`` seconds
    for the run's exit record."""
    from wandb.proto import wandb_internal_pb2

    (log_file,) = Path(run_dir).glob("*.wandb")
    deadline = time.monotonic() + timeout
    while True:
        records = []
        for data in _records(log_file):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(data)
            records.append(record)
        if any(r.WhichOneof("record_type") == "exit" for r in records) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    out: dict = {"keys": set(), "summary_keys": set(), "config": {}, "charts": {}}
    for record in records:
        kind = record.WhichOneof("record_type")
        if kind == "run":
            out.update(name=record.run.display_name, group=record.run.run_group, job_type=record.run.job_type,
                       tags=list(record.run.tags))
            out["config"].update({item.key: json.loads(item.value_json) for item in record.run.config.update})
        elif kind == "config":
            for item in record.config.update:
                if list(item.nested_key[:2]) == ["_wandb", "visualize"]:
                    out["charts"][item.nested_key[2]] = json.loads(item.value_json)["panel_config"]["panelDefId"]
                elif item.key:
                    out["config"][item.key] = json.loads(item.value_json)
        elif kind == "history":
            out["keys"] |= {item.key or item.nested_key[0] for item in record.history.item}
        elif kind == "summary":
            out["summary_keys"] |= {item.key or item.nested_key[0] for item in record.summary.update}
    return out
