"""A training run killed with SIGKILL resumes and reproduces the uninterrupted loss curve."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from toy_train import run_resume

from ttsrl.utils.checkpoint import load_checkpoint

TOY = str(Path(__file__).with_name("toy_train.py"))
REPO = str(Path(__file__).resolve().parents[2])


def read_losses(path: Path) -> list[tuple[int, float]]:
    if not path.exists():
        return []
    return [(int(s), float(v)) for s, v in (line.split() for line in path.read_text().splitlines())]


def newest_step(ckpt_dir: Path) -> int:
    steps = [int(p.name[5:-3]) for p in ckpt_dir.glob("step_*.pt")] if ckpt_dir.is_dir() else []
    return max(steps, default=0)


@pytest.mark.slow
def test_killed_run_resumes_exactly(tmp_path):
    run_resume(str(tmp_path / "ref"), loss_file=str(tmp_path / "ref.txt"))
    ref = dict(read_losses(tmp_path / "ref.txt"))
    assert sorted(ref) == list(range(1, 31))

    exp = tmp_path / "exp"
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(TOY_SLEEP="0.2", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([REPO, env.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    proc = subprocess.Popen([sys.executable, TOY, "resume", "--exp_dir", str(exp)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 150
    # checkpoints come at steps 3, 6, 9 (mid-epoch) and 5, 10 (epoch ends): kill after step 6's
    while newest_step(exp / "checkpoints") < 6:
        assert proc.poll() is None, f"training ended before it could be killed:\n{proc.stderr.read()}"
        assert time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    killed = read_losses(exp / f"losses.{proc.pid}.txt")
    assert 6 <= killed[-1][0] < 30  # killed mid-way ...
    assert all(loss == ref[step] for step, loss in killed)
    resume_from = newest_step(exp / "checkpoints")
    state = load_checkpoint(exp / "checkpoints" / f"step_{resume_from}.pt")
    assert state["batch_idx"] > 0  # ... in the middle of an epoch

    summary = run_resume(str(exp), loss_file=str(tmp_path / "resumed.txt"))
    resumed = read_losses(tmp_path / "resumed.txt")
    assert [s for s, _ in resumed] == list(range(resume_from + 1, 31))
    for step, loss in resumed:
        assert loss == pytest.approx(ref[step], abs=1e-6), step
    assert summary["step"] == 30
    assert "resumed from" in (exp / "train.log").read_text()
