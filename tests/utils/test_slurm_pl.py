"""utils/slurm.pl against fake sbatch/squeue commands (see conftest.py): the array script, logs, failures."""
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

UTILS = Path(__file__).resolve().parents[2] / "utils"


def sbatch_lines(script: str) -> list[str]:
    return [line[len("#SBATCH "):] for line in script.splitlines() if line.startswith("#SBATCH ")]


def test_array_script_holds_the_resources(slurm):
    r = slurm.run("slurm.pl", "--gpu", "1", "--mem", "2G", "--time", "1:00:00", "--num_threads", "4",
                  "JOB=1:3", "log/x.JOB.log", "echo", "task", "JOB")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    lines = sbatch_lines(slurm.script())
    for want in ("--array=1-3", "--gres=gpu:1", "--mem=2G", "--time=1:00:00", "--cpus-per-task=4",
                 "--job-name=x", "--output=log/q/x.%a.out"):
        assert want in lines
    assert slurm.submit_args()[-2:] == ["--parsable", "log/q/x.sh"]
    assert (slurm.workdir / "log/q/x.sh").read_text() == slurm.script()
    assert not list((slurm.workdir / "log/q").glob("done.*")), "done files are cleaned up"


def test_logs_have_header_and_footer(slurm):
    r = slurm.run("slurm.pl", "--num_threads", "2", "JOB=1:3", "log/x.JOB.log", "echo", "task", "JOB")
    assert r.returncode == 0, r.stderr
    for i in (1, 2, 3):
        log = slurm.log(f"log/x.{i}.log")
        assert log[0] == f"# echo task {i}"
        assert log[1].startswith("# Started at ")
        assert f"task {i}" in log
        assert log[-2].startswith("# Accounting: time=") and log[-2].endswith(" threads=2")
        assert log[-1].startswith("# Ended (code 0) at ")


def test_defaults_and_max_jobs_run(slurm):
    r = slurm.run("slurm.pl", "--max_jobs_run", "2", "JOB=1:5", "log/x.JOB.log", "true")
    assert r.returncode == 0, r.stderr
    lines = sbatch_lines(slurm.script())
    assert "--array=1-5%2" in lines and "--cpus-per-task=1" in lines
    assert not [x for x in lines if x.startswith(("--gres", "--mem", "--time"))]


def test_single_job(slurm):
    r = slurm.run("slurm.pl", "--gpu", "0", "exp/log/one.log", "echo hi | tr a-z A-Z")
    assert r.returncode == 0, r.stderr
    assert "--array=1-1" in sbatch_lines(slurm.script())
    assert "HI" in slurm.log("exp/log/one.log")
    assert (slurm.workdir / "exp/log/q/one.sh").exists()


def test_failing_task_fails_the_call(slurm):
    r = slurm.run("slurm.pl", "JOB=1:3", "log/x.JOB.log", "[ JOB != 2 ] || exit 3")
    assert r.returncode == 1
    assert "slurm.pl: 1 / 3 failed, log is in log/x.2.log" in r.stderr
    assert slurm.log("log/x.2.log")[-1].startswith("# Ended (code 3) at ")
    assert slurm.log("log/x.3.log")[-1].startswith("# Ended (code 0) at ")


def test_task_gone_without_exit_code_fails(slurm):
    (slurm.workdir / "log").mkdir()
    (slurm.workdir / "log/x.2.log").write_text("# an old log\n# Ended (code 0)\n")
    r = slurm.run("slurm.pl", "JOB=1:3", "log/x.JOB.log", "true", FAKE_SKIP_TASK="2")
    assert r.returncode == 1
    assert re.search(r"task 2 ended without an exit code.* log/x\.2\.log", r.stderr)
    assert "slurm.pl: 1 / 3 failed, log is in log/x.2.log" in r.stderr
    assert not (slurm.workdir / "log/x.2.log").exists(), "an old log is not taken for the new one"


def test_sbatch_failure(slurm):
    r = slurm.run("slurm.pl", "JOB=1:2", "log/x.JOB.log", "true", FAKE_SUBMIT_FAIL="invalid partition")
    assert r.returncode == 1
    assert "sbatch: error: invalid partition" in r.stderr
    assert "slurm.pl: submitting log/q/x.sh failed" in r.stderr


def test_config_file(slurm):
    conf = slurm.workdir / "slurm.conf"
    conf.write_text(
        "# site settings\n"
        "command sbatch --account=tts\n"
        "option gpu=* -p gpu --gres=gpu:$0   # GPUs live in their own partition\n"
        "option partition=* --partition=$0\n"
        "default partition=cpu\n"
    )
    r = slurm.run("slurm.pl", "--config", str(conf), "--gpu", "2", "--mem", "1G",
                  "JOB=1:2", "log/x.JOB.log", "true")
    assert r.returncode == 0, r.stderr
    lines = sbatch_lines(slurm.script())
    assert "-p gpu --gres=gpu:2" in lines and "--gres=gpu:2" not in lines
    assert "--partition=cpu" in lines and "--mem=1G" in lines  # built-in lines not named stay
    assert slurm.submit_args()[0] == "--account=tts"
    r = slurm.run("slurm.pl", "--config", str(conf), "--partition", "long", "log/y.log", "true")
    assert r.returncode == 0, r.stderr
    assert "--partition=long" in sbatch_lines(slurm.script())


def test_config_value_without_a_line_fails(slurm):
    conf = slurm.workdir / "slurm.conf"
    conf.write_text("option qos=high --qos=high\n")
    r = slurm.run("slurm.pl", "--config", str(conf), "--qos", "low", "log/x.log", "true")
    assert r.returncode == 1
    assert "--qos low" in r.stderr


@pytest.mark.parametrize("args", [
    ["--nope", "1", "log/x.log", "true"],
    ["JOB=3:1", "log/x.JOB.log", "true"],
    ["--help"],
    [],
])
def test_bad_command_lines_fail_before_submitting(slurm, args):
    r = slurm.run("slurm.pl", *args)
    assert r.returncode == 1
    assert not (slurm.state / "script.sh").exists()


def _shellcheck() -> str | None:
    local = Path(sys.executable).parent / "shellcheck"
    return str(local) if local.exists() else shutil.which("shellcheck")


def test_job_script_is_clean_bash(slurm):
    r = slurm.run("slurm.pl", "JOB=1:2", "log/x.JOB.log", "echo 'it''s' \"JOB\" $HOME | cat")
    assert r.returncode == 0, r.stderr
    script = slurm.workdir / "log/q/x.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    if _shellcheck():
        r = subprocess.run([_shellcheck(), "-S", "warning", "-s", "bash", str(script)],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stdout


def test_interrupt_cancels_the_job(slurm):
    proc = subprocess.Popen([str(UTILS / "slurm.pl"), "JOB=1:2", "log/x.JOB.log", "sleep 2"],
                            cwd=slurm.workdir, env=slurm.env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 10
    while not (slurm.state / "queried").exists() and time.time() < deadline:  # slurm.pl is waiting
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 1
    assert "cancelled job 4242" in proc.stderr.read()
    proc.stderr.close()
    assert (slurm.state / "cancelled").read_text() == "scancel 4242\n"
