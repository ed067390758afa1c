"""utils/run.pl: Kaldi's job runner on this machine (JOB=1:N, a log per job, failures named)."""
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN_PL = ROOT / "utils" / "run.pl"


def run(tmp_path, *args, timeout=30):
    return subprocess.run([str(RUN_PL), *args], capture_output=True, text=True, cwd=tmp_path, timeout=timeout)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_job_range_substitutes_log_and_command(tmp_path):
    r = run(tmp_path, "JOB=1:3", "log/x.JOB.log", "echo", "job", "JOB")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    for i in (1, 2, 3):
        log = lines(tmp_path / f"log/x.{i}.log")
        assert log[0] == f"# echo job {i}"
        assert log[1].startswith("# Started at ")
        assert f"job {i}" in log
        assert log[-2].startswith("# Accounting: time=") and log[-2].endswith(" threads=1")
        assert log[-1].startswith("# Ended (code 0) at ")
    assert not (tmp_path / "log/x.JOB.log").exists()


def test_any_variable_name_and_nested_log_dirs(tmp_path):
    r = run(tmp_path, "SPLIT=2:3", "exp/a/log/SPLIT/x.log", "echo", "part", "SPLIT")
    assert r.returncode == 0, r.stderr
    assert "part 3" in lines(tmp_path / "exp/a/log/3/x.log")
    assert not (tmp_path / "exp/a/log/1").exists()


def test_failed_job_fails_the_call_with_its_log(tmp_path):
    r = run(tmp_path, "JOB=1:3", "log/x.JOB.log", "if [ JOB = 2 ]; then echo broken >&2; exit 3; fi")
    assert r.returncode == 1
    assert "run.pl: 1 / 3 failed, log is in log/x.2.log" in r.stderr
    log = lines(tmp_path / "log/x.2.log")
    assert "broken" in log  # stderr goes to the log
    assert log[-1].startswith("# Ended (code 3) at ")
    assert lines(tmp_path / "log/x.3.log")[-1].startswith("# Ended (code 0)")


def test_all_failures_counted_first_log_named(tmp_path):
    r = run(tmp_path, "JOB=1:4", "log/x.JOB.log", "[ JOB -lt 3 ]")
    assert r.returncode == 1
    assert "run.pl: 2 / 4 failed, log is in log/x.3.log" in r.stderr


def test_max_jobs_run_1_is_sequential(tmp_path):
    # a job that finds the lock taken fails: only a sequential run succeeds
    job = "mkdir lock || exit 9; sleep 0.1; rmdir lock"
    r = run(tmp_path, "--max_jobs_run", "1", "JOB=1:3", "log/x.JOB.log", job)
    assert r.returncode == 0, r.stderr


def test_jobs_run_in_parallel(tmp_path):
    # each job waits for the other one: this finishes only when both run at once
    job = "touch started.JOB; for i in $(seq 50); do [ -e started.$((3 - JOB)) ] && exit 0; sleep 0.1; done; exit 1"
    r = run(tmp_path, "--max-jobs-run", "2", "JOB=1:2", "log/x.JOB.log", job)
    assert r.returncode == 0, r.stderr


def test_single_job_leaves_job_alone(tmp_path):
    r = run(tmp_path, "log/one.log", "echo", "JOB")
    assert r.returncode == 0, r.stderr
    log = lines(tmp_path / "log/one.log")
    assert log[0] == "# echo JOB" and "JOB" in log and log[-1].startswith("# Ended (code 0)")
    r = run(tmp_path, "log/two.log", "exit 4")
    assert r.returncode == 1
    assert "run.pl: 1 / 1 failed, log is in log/two.log" in r.stderr


def test_quoted_pipes_redirections_and_substitutions(tmp_path):
    # one quoted word is a bash script
    r = run(tmp_path, "JOB=1:2", "log/x.JOB.log", "echo abc$(echo JOB) | tr a-z A-Z > out.JOB.txt")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out.2.txt").read_text() == "ABC2\n"
    # several words, as in Kaldi: a word with blanks stays one word, \| is a pipe
    r = run(tmp_path, "log/y.log", "echo", "a  b", "|", "wc", "-c")
    assert r.returncode == 0, r.stderr
    assert lines(tmp_path / "log/y.log")[3].strip() == "5"  # "a  b\n", both blanks kept


def test_multiline_command_is_commented_in_the_log(tmp_path):
    r = run(tmp_path, "log/x.log", "echo one\necho two")
    assert r.returncode == 0, r.stderr
    log = lines(tmp_path / "log/x.log")
    assert log[:2] == ["# echo one", "# echo two"]
    assert log[2].startswith("# Started at ") and log[3:6] == ["#", "one", "two"]


def test_cluster_options_accepted(tmp_path):
    r = run(tmp_path, "--gpu", "1", "--mem", "2G", "--time=1:00:00", "--num_threads", "2",
            "JOB=1:2", "log/x.JOB.log", "true")
    assert r.returncode == 0, r.stderr
    assert lines(tmp_path / "log/x.1.log")[-2].endswith(" threads=2")


def test_options_declared_by_a_config_are_accepted(tmp_path):
    conf = tmp_path / "slurm.conf"
    conf.write_text("# site settings\ncommand sbatch --account=tts\noption partition=* -p $0  # queue\n")
    r = run(tmp_path, "--config", str(conf), "--partition", "gpu", "log/x.log", "true")
    assert r.returncode == 0, r.stderr
    r = run(tmp_path, "--partition", "gpu", "log/x.log", "true")
    assert r.returncode == 1 and "invalid option --partition" in r.stderr


@pytest.mark.parametrize("args", [
    ["--nope", "1", "log/x.log", "true"],
    ["--max_jobs_run", "0", "log/x.log", "true"],
    ["--gpu", "one", "log/x.log", "true"],
    ["--mem"],
    ["JOB=3:1", "log/x.JOB.log", "true"],
    ["JOB=1-3", "log/x.JOB.log", "true"],
    ["JOB=a:b", "log/x.JOB.log", "true"],
    ["JOB=1:2", "log/x.log", "true"],  # two jobs, one log
    ["JOB=1:2", "log/x.JOB.log"],  # no command
    ["--config", "absent.conf", "log/x.log", "true"],
], ids=["unknown-option", "zero-jobs", "gpu-not-int", "no-value", "range-backwards", "range-dash",
        "range-letters", "shared-log", "no-command", "missing-config"])
def test_bad_command_lines_fail(tmp_path, args):
    r = run(tmp_path, *args)
    assert r.returncode != 0
    assert r.stderr.startswith("run.pl: ")
    assert not (tmp_path / "log").exists()


def test_bad_config_line_names_file_and_line(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("command sbatch\noptions gpu=* --gres=gpu:$0\n")
    r = run(tmp_path, "--config", str(conf), "log/x.log", "true")
    assert r.returncode == 1
    assert f"{conf}:2:" in r.stderr


@pytest.mark.parametrize("args", [[], ["--help"]], ids=["no-args", "help"])
def test_usage(tmp_path, args):
    r = run(tmp_path, *args)
    assert r.returncode == 1
    assert r.stderr.startswith("Usage: run.pl [options] [JOB=1:N] <log-file> <command>")


def alive(pid: int) -> bool:
    """True while the process runs; a zombie (killed, not yet reaped) counts as stopped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[-1].split()[0] == "Z")


def test_terminating_run_pl_stops_its_jobs(tmp_path):
    proc = subprocess.Popen([str(RUN_PL), "JOB=1:2", "log/x.JOB.log", "echo $$ > pid.JOB; sleep 30; touch late"],
                            cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    pid_files = [tmp_path / "pid.1", tmp_path / "pid.2"]
    deadline = time.time() + 10
    while not all(p.exists() and p.read_text().strip() for p in pid_files) and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 1
    assert "SIGTERM" in proc.stderr.read()
    proc.stderr.close()
    for p in pid_files:
        pid = int(p.read_text())
        deadline = time.time() + 5
        while time.time() < deadline and alive(pid):
            time.sleep(0.05)
        if alive(pid):
            pytest.fail(f"job process {pid} still runs")
    assert not (tmp_path / "late").exists()
