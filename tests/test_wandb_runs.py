"""The wandb runs of one training run share a group and the full config: tools/evaluate.py logs its
results into that group (job_type evaluate) whenever the training run used wandb, with no flag."""

from __future__ import annotations

from pathlib import Path

from helpers_explain import CLASS_NAMES, CONCEPT_NAMES, marked_task, spans_of
from helpers_tools import load_tool
from helpers_wandb import offline_run_records
from motif.config import load_config, save_config
from motif.evaluation import evaluate_run, write_evaluation
from motif.sequences import ConceptSequence
from motif.training.loggers import wandb_run_settings

REPO = Path(__file__).resolve().parents[1]


def test_settings_carry_group_job_type_tags_and_the_whole_config(tmp_path):
    cfg = load_config(REPO / "configs" / "synthetic.yaml", [f"output_dir={tmp_path}", "logger.wandb.tags=[demo]"])
    settings = wandb_run_settings(cfg, "baseline")
    assert settings["group"] == "synthetic" and settings["job_type"] == "baseline"
    assert settings["tags"] == ["demo", cfg.model.variant, cfg.data.format]
    assert settings["config"]["backbone"]["model"] == "motif-world-vit"
    assert settings["config"]["concepts"]["bank"].endswith("synthetic_world.txt")


def test_evaluation_logs_into_the_training_runs_group(tmp_path):
    run_dir = tmp_path / "mine"
    run_dir.mkdir()
    cfg = load_config(REPO / "configs" / "synthetic.yaml", [f"output_dir={tmp_path}", "name=mine",
                                                            "logger.wandb.mode=offline"])
    save_config(cfg, run_dir / "config.yaml")
    tool = load_tool("evaluate")
    assert tool.evaluation_wandb_run(run_dir) is None  # the training run did not use wandb
    (run_dir / "wandb").mkdir()
    task = marked_task()
    test = [ConceptSequence(f"v{i}", x, int(y), spans_of(len(x)))
            for i, (x, y) in enumerate(zip(task["test_x"], task["test_y"]))]
    result = evaluate_run(task["model"], test[:12], class_names=CLASS_NAMES, concept_names=CONCEPT_NAMES, ks=(1,),
                          trials=1, attention=False)
    run = tool.evaluation_wandb_run(run_dir)
    write_evaluation(result, tmp_path / "evaluation", wandb_run=run)
    run.finish()
    (folder,) = (run_dir / "wandb").glob("offline-run-*")
    record = offline_run_records(folder)
    assert (record["group"], record["job_type"], record["name"]) == ("mine", "evaluate", "mine-evaluation")
    assert record["config"]["logger"]["wandb"]["mode"] == "offline"
    assert {"eval/accuracy", "eval/faithfulness", "eval/sparsity_plot"} <= record["keys"]
