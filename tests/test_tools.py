"""The command-line tools end the same way: the same user mistakes through every tool that accepts them
(subprocesses: exit status 2, one ``error:`` paragraph naming the file or key, no traceback), a bug
keeps its traceback (exit status 1), and ``--print-config`` prints the resolved config."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from motif.checkpoint import save_motif_checkpoint
from motif.concepts import ConceptStandardizer
from motif.config import config_to_dict, load_config
from motif.model import TemporalConceptBottleneck
from motif.video import VideoWindowSettings, write_video

REPO = Path(__file__).resolve().parents[1]
WORLD_WEIGHTS = REPO / "data" / "backbones" / "motif-world-vit.safetensors"
CONFIG_TOOLS = ("train", "embed", "discover_concepts")
RUN_TOOLS = ("evaluate", "summarize", "compare_explanations")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A list dataset of two clips with a concept bank and a config for the shipped world backbone, a
    UCF101 config, a motif checkpoint, a file that is not a checkpoint and a folder that is not a run."""
    root = tmp_path_factory.mktemp("tool_mistakes")
    for i in range(2):
        write_video(root / f"v{i}.mp4", np.full((8, 32, 32, 3), 60 * i, np.uint8), fps=8)
    (root / "train.txt").write_text("v0.mp4 0\n")
    (root / "test.txt").write_text("v1.mp4 1\n")
    (root / "classes.txt").write_text("dark\nlight\n")
    (root / "bank.txt").write_text("red circle\nblue square\n")
    common = {"output_dir": str(root / "runs"), "cache": {"dir": str(root / "cache")},
              "backbone": {"model": "motif-world-vit", "pretrained": str(WORLD_WEIGHTS), "device": "cpu"},
              "trainer": {"accelerator": "cpu"}, "logger": {"wandb": {"mode": "disabled"}}}
    config = {**common, "data": {"format": "list", "root": str(root), "train_list": "train.txt",
                                 "test_list": "test.txt", "class_names": "classes.txt", "val_fraction": 0.0},
              "concepts": {"bank": str(root / "bank.txt")},
              "discovery": {"mode": "select", "vocabulary": str(root / "bank.txt")}}
    (root / "list.yaml").write_text(yaml.safe_dump(config))
    (root / "ucf101.yaml").write_text(yaml.safe_dump({**common, "data": {"format": "ucf101", "root": str(root)}}))
    standardizer = ConceptStandardizer(2).fit([torch.rand(10, 2)])
    save_motif_checkpoint(root / "best.ckpt", model=TemporalConceptBottleneck(2, 2, dropout=0.0),
                          model_kwargs={"num_concepts": 2, "num_classes": 2, "dropout": 0.0},
                          class_names=["dark", "light"], concept_names=["red circle", "blue square"],
                          text_embeddings=torch.randn(2, 16), standardizer=standardizer, video=VideoWindowSettings(window_size=4),
                          backbone={"model": "motif-world-vit", "pretrained": str(WORLD_WEIGHTS)}, config={})
    (root / "notes.ckpt").write_text("these are notes, not a checkpoint\n")
    (root / "not_a_run").mkdir()
    return {"root": root, "list": root / "list.yaml", "ucf101": root / "ucf101.yaml", "ckpt": root / "best.ckpt",
            "not_ckpt": root / "notes.ckpt", "video": root / "v0.mp4", "not_run": root / "not_a_run"}


def _config_mistakes(tool: str) -> dict[str, tuple]:
    """mistake -> (arguments as a function of the files, text the error must contain) for a --config tool."""
    mistakes = {
        "missing config": (lambda f: ["--config", str(f["root"] / "nope.yaml")],
                           lambda f: str(f["root"] / "nope.yaml")),
        "unknown key": (lambda f: ["--config", str(f["list"]), "optim.batchsize=4"], lambda f: "optim.batchsize"),
        "missing data root": (lambda f: ["--config", str(f["list"]), f"data.root={f['root'] / 'gone'}"],
                              lambda f: str(f["root"] / "gone")),
        "bad split number": (lambda f: ["--config", str(f["ucf101"]), "data.splits=[4]"], lambda f: "data.splits"),
        "missing backbone weights": (lambda f: ["--config", str(f["list"]),
                                                f"backbone.pretrained={f['root'] / 'w.pt'}"],
                                     lambda f: str(f["root"] / "w.pt")),
    }
    bank_key = {"train": "concepts.bank", "discover_concepts": "discovery.vocabulary"}.get(tool)
    if bank_key is not None:  # tools/embed.py reads no concept bank
        mistakes["missing concept bank"] = (lambda f: ["--config", str(f["list"]), f"{bank_key}={f['root'] / 'b.txt'}"],
                                            lambda f: str(f["root"] / "b.txt"))
    return mistakes


MISTAKES = [(tool, name, *spec) for tool in CONFIG_TOOLS for name, spec in _config_mistakes(tool).items()]
MISTAKES += [
    ("explain", "not a checkpoint", lambda f: ["--ckpt", str(f["not_ckpt"]), "--video", str(f["video"])],
     lambda f: str(f["not_ckpt"])),
    ("explain", "missing video", lambda f: ["--ckpt", str(f["ckpt"]), "--video", str(f["root"] / "gone.mp4")],
     lambda f: str(f["root"] / "gone.mp4")),
]
MISTAKES += [(tool, "not a run folder", lambda f, flag=flag: [flag, str(f["not_run"])], lambda f: str(f["not_run"]))
             for tool, flag in zip(RUN_TOOLS, ("--run", "--run", "--runs"))]
EXTRA_ARGUMENTS = {"explain": lambda f: ["--out", str(f["root"] / "explained")],
                   "compare_explanations": lambda f: ["--video", "v1", "--out", str(f["root"] / "compare.png")]}


def run_tool(tool: str, arguments: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled",
           "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(REPO / "tools" / f"{tool}.py"), *arguments], capture_output=True,
                          text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def outcomes(files) -> dict[tuple[str, str], subprocess.CompletedProcess]:
    """Every (tool, mistake) run once, as many at a time as there are CPUs: each start-up imports torch."""
    def run(tool: str, arguments) -> subprocess.CompletedProcess:
        return run_tool(tool, [*arguments(files), *EXTRA_ARGUMENTS.get(tool, lambda f: [])(files)])

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        futures = {(tool, mistake): pool.submit(run, tool, arguments) for tool, mistake, arguments, _ in MISTAKES}
    return {key: future.result() for key, future in futures.items()}


@pytest.mark.parametrize("tool, mistake, named", [(tool, mistake, named) for tool, mistake, _, named in MISTAKES],
                         ids=[f"{tool}: {mistake}" for tool, mistake, *_ in MISTAKES])
def test_a_user_mistake_is_one_error_paragraph_and_exit_status_2(files, outcomes, tool, mistake, named):
    result = outcomes[tool, mistake]
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr[-3000:]
    assert named(files) in errors[0]


def _load_tool(name: str):
    spec = importlib.util.spec_from_file_location(f"tool_{name}", REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _raise(error: BaseException):
    def load_config(*args, **kwargs):
        raise error
    return load_config


def test_a_bug_keeps_its_traceback_and_exits_1(files, monkeypatch, capsys):
    import motif.config

    monkeypatch.setattr(motif.config, "load_config", _raise(RuntimeError("a bug in the config loader")))
    assert _load_tool("train").main(["--config", str(files["list"])]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "RuntimeError: a bug in the config loader" in err
    assert "error:" not in err


def test_an_interrupt_is_one_line_and_exit_status_130(files, monkeypatch, capsys):
    import motif.config

    monkeypatch.setattr(motif.config, "load_config", _raise(KeyboardInterrupt()))
    assert _load_tool("embed").main(["--config", str(files["list"])]) == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_a_user_mistake_in_process_is_the_same_paragraph(files, capsys):
    assert _load_tool("discover_concepts").main(["--config", str(files["list"]), "optim.batchsize=4"]) == 2
    err = capsys.readouterr().err
    assert err == ("error: Unknown config key 'optim.batchsize' in the command line. "
                   "Did you mean 'optim.batch_size'?\n")


@pytest.mark.parametrize("tool", CONFIG_TOOLS)
def test_print_config_prints_the_resolved_config_and_does_nothing_else(files, tool, tmp_path):
    overrides = ["optim.lr=0.02", f"output_dir={tmp_path / 'runs'}"]
    result = run_tool(tool, ["--config", str(files["list"]), *overrides, "--print-config"])
    assert result.returncode == 0, result.stderr[-3000:]
    expected = config_to_dict(load_config(files["list"], overrides))
    printed = yaml.safe_load(result.stdout)
    assert printed == expected and printed["optim"]["lr"] == 0.02 and printed["model"]["variant"] == "motif"
    (tmp_path / "printed.yaml").write_text(result.stdout)
    assert config_to_dict(load_config(tmp_path / "printed.yaml")) == expected  # it loads back as a config file
    assert not (tmp_path / "runs").exists()


def test_print_config_checks_the_config_first(files):
    result = run_tool("train", ["--config", str(files["list"]), "optim.lr=-1", "--print-config"])
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "error: Config key 'optim.lr' is -1.0; it must be > 0.\n"
