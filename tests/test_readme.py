"""The README's commands stay valid: every config and key=value override it shows loads."""

import re
import shlex
import shutil
from pathlib import Path

import pytest
import yaml

from motif.config import load_config

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def readme_commands(tool: str) -> list[list[str]]:
    lines = re.findall(rf"^python tools/{tool}\.py (.+?)(?:\s+#.*)?$", README, flags=re.M)
    return [shlex.split(line) for line in lines]


COMMANDS = readme_commands("train") + readme_commands("embed")


def test_readme_starts_with_the_two_commands():
    first_block = re.search(r"```bash\n(.*?)```", README, flags=re.S).group(1)
    assert [line.split("#")[0].strip() for line in first_block.strip().splitlines()] == ["make demo", "make test"]


@pytest.mark.parametrize("argv", [c for c in COMMANDS if "configs/mine.yaml" not in c], ids=" ".join)
def test_readme_train_and_embed_commands_load(argv):
    config = argv[argv.index("--config") + 1]
    overrides = [a for a in argv if "=" in a and not a.startswith("-")]
    cfg = load_config(REPO / config, overrides)
    assert cfg.name


def test_readme_own_dataset_config_loads(tmp_path):
    block = re.search(r"```yaml\n# configs/mine.yaml\n(.*?)```", README, flags=re.S).group(1)
    shutil.copy(REPO / "configs" / "_base.yaml", tmp_path / "_base.yaml")
    (tmp_path / "mine.yaml").write_text(block)
    mine = [c for c in COMMANDS if "configs/mine.yaml" in c]
    assert mine
    for argv in mine:
        cfg = load_config(tmp_path / "mine.yaml", [a for a in argv if "=" in a and not a.startswith("-")])
        assert cfg.data.format == "list" and cfg.concepts.bank == "my_concepts.yaml"
    assert yaml.safe_load(block)["data"]["train_list"] == "train.txt"


def test_makefile_demo_runs_the_readme_pipeline():
    makefile = (REPO / "Makefile").read_text()
    for tool in ("make_synthetic", "train", "explain", "evaluate", "summarize"):
        assert f"tools/{tool}.py" in makefile and (REPO / "tools" / f"{tool}.py").is_file()
