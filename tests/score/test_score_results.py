"""ttsrl.score.results: the exp/results.json store and RESULTS.md."""

import json
import multiprocessing as mp

import pytest

from ttsrl.score.results import (
    ResultsError,
    load_results,
    render_results_md,
    update_results,
    validate_metrics,
    write_results_md,
)


def test_merge_keeps_other_entries(tmp_path):
    path = tmp_path / "exp" / "results.json"
    update_results(path, "base", "test", {"wer": 5.0, "n_utts": 10})
    update_results(path, "base", "test", {"sim": 0.8, "wer": 4.0})
    update_results(path, "dpo", "test", {"wer": 3.0})
    update_results(path, "base", "dev", {"cer": 1.5})
    results = load_results(path)
    assert results == {
        "base": {"test": {"wer": 4.0, "n_utts": 10, "sim": 0.8}, "dev": {"cer": 1.5}},
        "dpo": {"test": {"wer": 3.0}},
    }
    assert json.loads(path.read_text()) == results
    assert not list(path.parent.glob(".results.json.*"))  # no temporary file left


def test_schema_is_checked(tmp_path):
    path = tmp_path / "results.json"
    with pytest.raises(ResultsError, match="unknown metric 'werr'"):
        update_results(path, "base", "test", {"werr": 1.0})
    with pytest.raises(ResultsError, match="must be a number"):
        update_results(path, "base", "test", {"wer": "5"})
    with pytest.raises(ResultsError, match="not finite"):
        update_results(path, "base", "test", {"sim": float("nan")})
    with pytest.raises(ResultsError, match="non-negative integer"):
        update_results(path, "base", "test", {"n_utts": 2.5})
    with pytest.raises(ResultsError, match="invalid model tag"):
        update_results(path, "my model", "test", {"wer": 1.0})
    assert not path.exists()
    assert validate_metrics({"wer@pocketsphinx": 12.0, "n_missing": 0}) == {
        "wer@pocketsphinx": 12.0,
        "n_missing": 0,
    }
    with pytest.raises(ResultsError, match="unknown metric"):
        validate_metrics({"wer@Bad Judge": 1.0})
    path.write_text('{"base": {"test": {"bogus": 1}}}')
    with pytest.raises(ResultsError, match="bogus"):
        load_results(path)


def _writer(path, tag, n):
    for i in range(n):
        update_results(path, tag, f"set{i}", {"wer": float(i), "n_utts": i})


def test_concurrent_updates_lose_nothing(tmp_path):
    path = str(tmp_path / "results.json")
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(path, tag, 25)) for tag in ("base", "dpo")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    results = load_results(path)
    for tag in ("base", "dpo"):
        assert sorted(results[tag]) == sorted(f"set{i}" for i in range(25))
        assert results[tag]["set7"] == {"wer": 7.0, "n_utts": 7}


def test_render_markdown_order_and_columns():
    results = {
        "dpo": {"test": {"wer": 3.0, "sim": 0.8123}},
        "base": {"test": {"wer": 5.0, "cer": 2.25, "n_utts": 20}},
        "ground_truth": {"test": {"wer": 1.0, "wer@pocketsphinx": 20.5}},
        "aaa": {"test": {"wer": 4.0}, "dev": {"dnsmos": 3.1}},
    }
    md = render_results_md(results, command="./run.sh --stage 9", date="2025-01-01")
    assert "- date: 2025-01-01" in md and "- torch: " in md and "`./run.sh --stage 9`" in md
    test_table = md.split("## test")[1]
    rows = [line.split("|")[1].strip() for line in test_table.splitlines() if line.startswith("| ")][1:]
    assert rows == ["ground_truth", "base", "aaa", "dpo"]
    header = test_table.splitlines()[2]
    assert header.index("WER (%)") < header.index("WER (%) [pocketsphinx]") < header.index("CER (%)")
    assert header.index("CER (%)") < header.index("SIM") < header.index("utts")
    assert "| base | 5.00 | - | 2.25 | - | 20 |" in test_table
    assert "| dpo | 3.00 | - | - | 0.812 | - |" in test_table
    dev_table = md.split("## dev")[1].split("## test")[0]
    assert "DNSMOS" in dev_table and "| aaa | 3.10 |" in dev_table and "WER" not in dev_table


def test_write_results_md(tmp_path):
    path = tmp_path / "results.json"
    update_results(path, "base", "test", {"wer": 5.0})
    out = tmp_path / "RESULTS.md"
    write_results_md(path, out, command="make_report")
    assert "| base | 5.00 |" in out.read_text()
    assert "no results yet" in render_results_md({})
