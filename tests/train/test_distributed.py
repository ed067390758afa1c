"""Tests of ttsrl.train.distributed and of the Trainer under DDP (2 CPU processes, gloo)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from toy_train import Mlp, collate, ddp_batches, ddp_config, plain_loss

from ttsrl.train import distributed as dist_utils
from ttsrl.train.trainer import Trainer, set_seed

TOY = str(Path(__file__).with_name("toy_train.py"))
REPO = str(Path(__file__).resolve().parents[2])
LAUNCH_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "LOCAL_WORLD_SIZE",
               "GROUP_RANK", "TORCHELASTIC_RUN_ID")


@pytest.fixture
def clean_env(monkeypatch):
    for k in list(os.environ):
        if k in LAUNCH_VARS or k.startswith("SLURM_"):
            monkeypatch.delenv(k)
    return monkeypatch


@pytest.mark.parametrize(
    "nodelist, first",
    [("gpu[03-05,09],cpu1", "gpu03"), ("node1,node2", "node1"), ("a-b[1-2]", "a-b1"),
     ("x[001-003]-ib,y1", "x001-ib"), ("solo", "solo"), ("r[7]", "r7")],
)
def test_slurm_first_host(nodelist, first):
    assert dist_utils._parse_first_host(nodelist) == first
    assert dist_utils.slurm_first_host(nodelist) == first  # without scontrol: the parser


def test_rank_from_environment(clean_env):
    assert dist_utils._from_env() == (0, 1, 0)
    # an sbatch script itself (no job step) is not a multi-task run
    clean_env.setenv("SLURM_PROCID", "0")
    clean_env.setenv("SLURM_NTASKS", "8")
    assert dist_utils._from_env() == (0, 1, 0)
    clean_env.setenv("SLURM_STEP_ID", "0")
    clean_env.setenv("SLURM_STEP_NUM_TASKS", "4")
    clean_env.setenv("SLURM_PROCID", "3")
    clean_env.setenv("SLURM_LOCALID", "1")
    assert dist_utils._from_env() == (3, 4, 1)
    clean_env.setenv("RANK", "1")  # torchrun wins
    clean_env.setenv("WORLD_SIZE", "2")
    clean_env.setenv("LOCAL_RANK", "1")
    assert dist_utils._from_env() == (1, 2, 1)


def test_single_process(clean_env):
    info = dist_utils.init_distributed()
    assert info == dist_utils.DistInfo() and not info.is_distributed
    assert not dist_utils.is_dist() and dist_utils.is_main() and dist_utils.get_world_size() == 1
    dist_utils.barrier()
    assert dist_utils.all_gather_object({"a": 1}) == [{"a": 1}] and dist_utils.broadcast_object(3) == 3
    assert dist_utils.get_device(0) == torch.device("cpu")
    if not torch.cuda.is_available():
        assert dist_utils.get_device() == torch.device("cpu")
        with pytest.raises(RuntimeError, match="--ngpu 1"):
            dist_utils.get_device(1)


def test_trainer_refuses_a_launch_without_process_group(clean_env, tmp_path):
    clean_env.setenv("WORLD_SIZE", "2")
    with pytest.raises(RuntimeError, match="init_distributed"):
        Trainer(Mlp(), [], None, plain_loss, ddp_config(), tmp_path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARS and not k.startswith("SLURM_")}
    env["PYTHONPATH"] = os.pathsep.join([REPO, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["OMP_NUM_THREADS"] = "1"
    env.update(extra)
    return env


def single_process_reference(tmp_path: Path, ranks: tuple[int, ...]) -> torch.nn.Module:
    """The Trainer in one process on the batches of ``ranks`` concatenated."""
    per_rank = [ddp_batches(r, nan_at=(1, 1)) for r in ranks]
    items = [[dict(zip(("utt", "x", "y"), t, strict=True)) for b in bs for t in zip(b["utts"], b["x"], b["y"],
                                                                               strict=True)]
             for bs in zip(*per_rank, strict=True)]
    set_seed(0)
    model = Mlp(dropout=0.0)
    Trainer(model, [collate(i) for i in items], None, plain_loss, ddp_config(valid_interval=0),
            tmp_path / f"ref{'_'.join(map(str, ranks))}").train()
    return model


def check_ddp_result(exp: Path, tmp_path: Path) -> None:
    r0, r1 = (torch.load(exp / f"rank{r}.pt", weights_only=False) for r in range(2))
    assert r0["world_size"] == r1["world_size"] == 2
    for k in r0["weights"]:
        assert torch.equal(r0["weights"][k], r1["weights"][k]), k  # both ranks hold the same weights
    both = single_process_reference(tmp_path, (0, 1)).state_dict()
    only0 = single_process_reference(tmp_path, (0,)).state_dict()
    for k in both:
        torch.testing.assert_close(r0["weights"][k], both[k], rtol=0, atol=1e-6)  # gradients were averaged
    assert max((r0["weights"][k] - only0[k]).abs().max().item() for k in only0) > 1e-4
    # the NaN batch of rank 1 was skipped on both ranks; validation averaged 3 + 5 items over ranks
    assert r0["summary"]["bad_batches"] == r1["summary"]["bad_batches"] == 1
    assert r0["summary"]["step"] == 2
    model = Mlp(dropout=0.0)
    model.load_state_dict(r0["weights"])
    from toy_train import ToyData

    valid = collate([ToyData(8, seed=7)[j] for j in range(3)] + [ToyData(8, seed=7)[j] for j in range(5)])
    with torch.no_grad():
        expected = F.mse_loss(model(valid["x"]), valid["y"]).item()
    assert r0["summary"]["last_valid"]["loss"] == pytest.approx(expected, rel=1e-5)
    assert r1["summary"]["last_valid"] == r0["summary"]["last_valid"]
    assert (exp / "checkpoints" / "step_2.pt").exists() and (exp / "train.log").exists()


def run(cmd: list[str], env: dict, timeout: float = 180) -> None:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"


@pytest.mark.slow
def test_ddp_with_torchrun(tmp_path):
    exp = tmp_path / "ddp"
    run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         TOY, "ddp", "--exp_dir", str(exp)], child_env())
    check_ddp_result(exp, tmp_path)


SRUN_CHILD = """
import torch, torch.distributed as dist
from ttsrl.train import distributed as d
info = d.init_distributed()
t = torch.tensor([float(info.rank + 1)])
dist.all_reduce(t)
print(info.rank, info.world_size, info.local_rank, info.backend, int(t.item()), d.is_main(), flush=True)
d.cleanup()
"""


@pytest.mark.slow
def test_process_group_from_srun_environment():
    """Two processes with only the variables srun sets (the node list gives MASTER_ADDR)."""
    port = str(free_port())
    procs = []
    for r in range(2):
        env = child_env(SLURM_PROCID=str(r), SLURM_LOCALID=str(r), SLURM_STEP_ID="0", SLURM_STEP_NUM_TASKS="2",
                        SLURM_NTASKS="2", SLURM_JOB_ID="4242", SLURM_JOB_NODELIST="localhost", MASTER_PORT=port)
        procs.append(subprocess.Popen([sys.executable, "-c", SRUN_CHILD], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    outs = [p.communicate(timeout=180)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(outs)
    assert [o.split()[-6:] for o in outs] == [["0", "2", "0", "gloo", "3", "True"], ["1", "2", "1", "gloo", "3", "False"]]
