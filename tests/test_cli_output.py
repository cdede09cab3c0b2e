"""``--output json`` (``-o json``, and ``--json``, its alias) on every listing command of the CLI, against a real
server; and shell completion: bash with ``clipper completion bash`` sourced completes subcommands and options."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from clipper_core.cli import build_parser, main
from clipper_core.testing import ServerThread
from tests.conftest import Run

MODEL = "def predict(xs):\n    return [str(len(x)) for x in xs]\n"




def listing_commands() -> list[str]:
    """Every subcommand (and rollout/keys/limits action) whose parser takes --output."""
    found = []

    def walk(parser: object, prefix: tuple[str, ...]) -> None:
        for action in getattr(parser, "_actions", []):
            if action.dest == "output":
                found.append(" ".join(prefix))
            choices = getattr(action, "choices", None)
            if isinstance(choices, dict):
                for name, sub in choices.items():
                    walk(sub, (*prefix, name))

    walk(build_parser(), ())
    return sorted(found)


def test_every_listing_command_takes_output_json() -> None:
    commands = listing_commands()
    assert {"status", "apps", "models", "plugins", "autoscale", "logs", "rollout status", "diff", "apply",
            "export"} <= set(commands), commands


def test_output_json_and_its_aliases(clipper_server: ServerThread, clipper_home: Path, tmp_path: Path,
                                     cli: Run) -> None:
    home = ["--home", str(clipper_home)]
    model = tmp_path / "m.py"
    model.write_text(MODEL)
    assert cli("register", "app", *home, "--input-type", "doubles")[0] == 0
    assert cli("deploy", f"{model}:predict", *home, "--name", "m", "--version", "1", "--input-type", "doubles",
               "--app", "app")[0] == 0
    for argv in (["apps"], ["models"], ["status"], ["plugins"], ["rollout", "status"], ["autoscale", "m", "--show"],
                 ["logs", str(tmp_path / "logs")]):
        outputs = []
        for flag in (["--output", "json"], ["-o", "json"], ["--json"]):
            code, out, err = cli(*argv, *home, *flag)
            assert (code, err) == (0, ""), (argv, flag, err)
            outputs.append(json.loads(out))
        if argv[0] not in ("status", "logs"):  # status counts replicas and logs copies files: both may move
            assert outputs[0] == outputs[1] == outputs[2], argv
        text = cli(*argv, *home, "--output", "text")[1]
        with pytest.raises(ValueError):
            json.loads(text)  # text is the default, and is not JSON
    apps = json.loads(cli("apps", *home, "-o", "json")[1])
    assert [(a["name"], a["linked_models"]) for a in apps] == [("app", ["m"])]
    logs = json.loads(cli("logs", str(tmp_path / "logs"), *home, "-o", "json")[1])
    assert logs and all(Path(p).is_file() for p in logs)
    with pytest.raises(SystemExit) as exit_info:
        main(["apps", *home, "--output", "yaml"])
    assert exit_info.value.code == 2


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completion_of_subcommands_and_options() -> None:
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "clipper").exists()
    script = """
        source <(clipper completion bash)
        complete_line() {
            COMP_LINE="$1"; COMP_POINT=${#COMP_LINE}; read -ra COMP_WORDS <<< "$1"
            [[ "$1" == *" " ]] && COMP_WORDS+=("")
            COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
            COMPREPLY=()
            _python_argcomplete clipper
            printf '%s\\n' "${COMPREPLY[@]}"
            echo ---
        }
        complete_line "clipper ap"
        complete_line "clipper deploy --dep"
        complete_line "clipper rollout "
        complete_line "clipper completion "
    """
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    answers = [[w.strip() for w in block.strip().splitlines()] for block in proc.stdout.split("---")[:-1]]
    assert answers[0] == ["apps", "apply"]
    assert answers[1] == ["--deployer"]
    assert {"start", "status", "pause", "resume", "abort", "promote"} <= set(answers[2])
    assert {"bash", "zsh"} <= set(answers[3])


def test_zsh_script_registers_the_completion(cli: Run) -> None:
    code, out, err = cli("completion", "zsh")
    assert (code, err) == (0, "")
    assert out.startswith("#compdef clipper") and "compdef _python_argcomplete clipper" in out
    if shutil.which("zsh") is not None:  # the script at least parses in a real zsh
        proc = subprocess.run(["zsh", "-n", "-c", out], capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
