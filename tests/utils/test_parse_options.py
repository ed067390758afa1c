"""utils/parse_options.sh: Kaldi option semantics."""
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """#!/usr/bin/env bash
# Prints its options.
# Usage: opts.sh [--stage N] [--use_gpu true|false] <args>
set -euo pipefail
stage=1
stop_stage=100
use_gpu=false
name="a b"
. {root}/utils/parse_options.sh || exit 1
echo "stage=$stage stop_stage=$stop_stage use_gpu=$use_gpu name=$name rest=$*"
"""


def run(tmp_path, *args, script=SCRIPT):
    path = tmp_path / "opts.sh"
    path.write_text(script.format(root=ROOT))
    return subprocess.run(["bash", str(path), *args], capture_output=True, text=True)


def test_declared_options_dash_and_underscore(tmp_path):
    r = run(tmp_path, "--stage", "5", "--stop-stage", "8", "--use_gpu", "true", "x", "y")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "stage=5 stop_stage=8 use_gpu=true name=a b rest=x y"


def test_equals_form_and_values_with_spaces(tmp_path):
    r = run(tmp_path, "--stop_stage=3", "--name", "c d e")
    assert r.returncode == 0, r.stderr
    assert "stop_stage=3" in r.stdout and "name=c d e" in r.stdout


def test_unknown_option_fails(tmp_path):
    r = run(tmp_path, "--nope", "1")
    assert r.returncode == 1
    assert "invalid option --nope" in r.stderr


def test_boolean_checked(tmp_path):
    r = run(tmp_path, "--use_gpu", "yes")
    assert r.returncode == 1
    assert "boolean" in r.stderr


def test_missing_value_fails(tmp_path):
    r = run(tmp_path, "--stage")
    assert r.returncode == 1
    assert "needs a value" in r.stderr


def test_config_file_then_command_line_wins(tmp_path):
    conf = tmp_path / "x.conf"
    conf.write_text("stage=3\nstop_stage=4\n")
    r = run(tmp_path, "--stop_stage", "9", "--config", str(conf))
    assert r.returncode == 0, r.stderr
    assert "stage=3 stop_stage=9" in r.stdout
    r = run(tmp_path, f"--config={conf}")
    assert "stage=3 stop_stage=4" in r.stdout


def test_missing_config_fails(tmp_path):
    r = run(tmp_path, "--config", str(tmp_path / "absent.conf"))
    assert r.returncode == 1
    assert "absent.conf" in r.stderr


def test_help_prints_header(tmp_path):
    r = run(tmp_path, "--help")
    assert r.returncode == 0
    assert r.stdout.splitlines() == ["Prints its options.", "Usage: opts.sh [--stage N] [--use_gpu true|false] <args>"]


def test_help_message_variable_wins(tmp_path):
    script = SCRIPT.replace("stage=1\n", 'stage=1\nhelp_message="custom help"\n', 1)
    r = run(tmp_path, "-h", script=script)
    assert r.returncode == 0 and r.stdout.strip() == "custom help"
