"""Fake Slurm and Grid Engine commands for the tests of utils/slurm.pl and utils/queue.pl.

The fakes are bash scripts put first on PATH. The submit command keeps the job
script and its own arguments in the state folder, runs every array task of the
script on this machine in the background (with the scheduler's task variable
set) and prints a job id; the status command lists the job while a task runs
and leaves a "queried" file; the cancel command records its arguments.
Environment knobs: FAKE_SUBMIT_FAIL=<message> makes the submission fail,
FAKE_SKIP_TASK=<index> never runs that task (as if it had been killed).
"""
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UTILS = ROOT / "utils"
JOB_ID = "4242"

RUN_TASKS = r"""
state=${FAKE_SCHED_STATE:?}
if [ -n "${FAKE_SUBMIT_FAIL:-}" ]; then
  echo "$(basename "$0"): error: $FAKE_SUBMIT_FAIL" >&2
  exit 1
fi
script=${!#}
cp "$script" "$state/script.sh"
printf '%s\n' "$@" > "$state/args"
touch "$state/running"
(
  for t in $(seq "$first" "$last"); do
    [ "$t" = "${FAKE_SKIP_TASK:-}" ] && continue
    env "$task_var=$t" bash "$script" > "$state/task.$t.out" 2>&1 &
  done
  wait
  rm -f "$state/running"
) < /dev/null > /dev/null 2>&1 &
"""

CANCEL = 'echo "$(basename "$0") $*" >> "$FAKE_SCHED_STATE/cancelled"\n'

FAKES = {
    "slurm": {
        "sbatch": (
            'range=$(sed -n "s/^#SBATCH --array=\\([0-9]*\\)-\\([0-9]*\\).*/\\1 \\2/p" "${!#}")\n'
            "read -r first last <<< \"$range\"\ntask_var=SLURM_ARRAY_TASK_ID\n"
            + RUN_TASKS + f"echo {JOB_ID}\n"
        ),
        "squeue": 'touch "$FAKE_SCHED_STATE/queried"\n[ -e "$FAKE_SCHED_STATE/running" ] && echo RUNNING\nexit 0\n',
        "scancel": CANCEL,
    },
    "sge": {
        "qsub": (
            'range=$(sed -n "s/^#\\$ -t \\([0-9]*\\):\\([0-9]*\\).*/\\1 \\2/p" "${!#}")\n'
            "read -r first last <<< \"$range\"\ntask_var=SGE_TASK_ID\n"
            + RUN_TASKS + f'echo "{JOB_ID}.$first-$last:1"\n'
        ),
        "qstat": (
            'if [ -e "$FAKE_SCHED_STATE/running" ]; then\n'
            '  echo "job-ID  prior   name  user  state"\n'
            f'  echo "  {JOB_ID} 0.50000 x     me    r"\n'
            "fi\n"
        ),
        "qdel": CANCEL,
    },
}


class Scheduler:
    """Runs a utils/ script in `workdir` with the fake scheduler commands first on PATH."""

    def __init__(self, tmp_path: Path, kind: str):
        self.workdir = tmp_path / "work"
        self.state = tmp_path / "state"
        bindir = tmp_path / "bin"
        for d in (self.workdir, self.state, bindir):
            d.mkdir()
        for name, body in FAKES[kind].items():
            path = bindir / name
            path.write_text(f"#!/bin/bash\n# fake {name}\n{body}")
            path.chmod(0o755)
        self.env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ['PATH']}",
                        FAKE_SCHED_STATE=str(self.state), SLURM_PL_POLL="0.05", QUEUE_PL_POLL="0.05")

    def run(self, script: str, *args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(UTILS / script), *args], capture_output=True, text=True,
                              cwd=self.workdir, env={**self.env, **env}, timeout=30)

    def script(self) -> str:
        """The job script the fake submit command received."""
        return (self.state / "script.sh").read_text()

    def submit_args(self) -> list[str]:
        return (self.state / "args").read_text().splitlines()

    def log(self, rel: str) -> list[str]:
        return (self.workdir / rel).read_text().splitlines()


@pytest.fixture
def slurm(tmp_path):
    return Scheduler(tmp_path, "slurm")


@pytest.fixture
def sge(tmp_path):
    return Scheduler(tmp_path, "sge")
