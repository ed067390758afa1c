"""utils/queue.pl against fake qsub/qstat commands (see conftest.py): the array script, logs, failures."""
import re

import pytest


def sge_lines(script: str) -> list[str]:
    return [line[len("#$ "):] for line in script.splitlines() if line.startswith("#$ ")]


def test_array_script_holds_the_resources(sge):
    r = sge.run("queue.pl", "--gpu", "1", "--mem", "2G", "--time", "1:00:00", "--num_threads", "4",
                "--max_jobs_run", "2", "JOB=1:3", "log/x.JOB.log", "echo", "task", "JOB")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    lines = sge_lines(sge.script())
    for want in ("-t 1:3", "-tc 2", "-l mem_free=2G", "-l h_rt=1:00:00", "-pe smp 4", "-l gpu=1",
                 "-N x", "-o log/q/x.$TASK_ID.out"):
        assert want in lines
    assert sge.submit_args()[-2:] == ["-terse", "log/q/x.sh"]
    assert "-cwd" in sge.submit_args()


def test_logs_have_header_and_footer(sge):
    r = sge.run("queue.pl", "JOB=2:3", "log/x.JOB.log", "echo", "task", "JOB")
    assert r.returncode == 0, r.stderr
    assert "-t 2:3" in sge_lines(sge.script())
    for i in (2, 3):
        log = sge.log(f"log/x.{i}.log")
        assert log[0] == f"# echo task {i}"
        assert log[1].startswith("# Started at ")
        assert f"task {i}" in log
        assert log[-2].startswith("# Accounting: time=") and log[-2].endswith(" threads=1")
        assert log[-1].startswith("# Ended (code 0) at ")


def test_defaults(sge):
    r = sge.run("queue.pl", "log/one.log", "true")
    assert r.returncode == 0, r.stderr
    lines = sge_lines(sge.script())
    assert "-t 1:1" in lines
    assert not [x for x in lines if x.startswith(("-pe", "-l", "-tc"))]


def test_failing_task_fails_the_call(sge):
    r = sge.run("queue.pl", "JOB=1:3", "log/x.JOB.log", "[ JOB != 2 ] || exit 3")
    assert r.returncode == 1
    assert "queue.pl: 1 / 3 failed, log is in log/x.2.log" in r.stderr
    assert sge.log("log/x.2.log")[-1].startswith("# Ended (code 3) at ")


def test_task_gone_without_exit_code_fails(sge):
    r = sge.run("queue.pl", "JOB=1:3", "log/x.JOB.log", "true", FAKE_SKIP_TASK="3")
    assert r.returncode == 1
    assert re.search(r"task 3 ended without an exit code.* log/x\.3\.log", r.stderr)
    assert "queue.pl: 1 / 3 failed, log is in log/x.3.log" in r.stderr


def test_qsub_failure(sge):
    r = sge.run("queue.pl", "log/x.log", "true", FAKE_SUBMIT_FAIL="unknown resource gpu")
    assert r.returncode == 1
    assert "qsub: error: unknown resource gpu" in r.stderr
    assert "queue.pl: submitting log/q/x.sh failed" in r.stderr


def test_config_file(sge):
    conf = sge.workdir / "queue.conf"
    conf.write_text("command qsub -v PATH -cwd -S /bin/bash -j y\noption gpu=* -l gpu=$0 -q g.q\n")
    r = sge.run("queue.pl", "--config", str(conf), "--gpu", "1", "log/x.log", "true")
    assert r.returncode == 0, r.stderr
    assert "-l gpu=1 -q g.q" in sge_lines(sge.script())
    assert sge.submit_args()[:2] == ["-v", "PATH"]


@pytest.mark.parametrize("args", [
    ["JOB=0:2", "log/x.JOB.log", "true"],  # Grid Engine task ids start at 1
    ["--nope", "1", "log/x.log", "true"],
    ["JOB=3:1", "log/x.JOB.log", "true"],
    ["--help"],
])
def test_bad_command_lines_fail_before_submitting(sge, args):
    r = sge.run("queue.pl", *args)
    assert r.returncode == 1
    assert not (sge.state / "script.sh").exists()
