"""ttsrl.utils.checkpoint: a file cut short is named with what to do; a broken step checkpoint is set aside."""
import logging

import pytest
import torch

from ttsrl.utils.checkpoint import CheckpointError, find_resume_checkpoint, load_checkpoint, load_model


def write(path, step: int) -> bytes:
    torch.save({"model": {"w": torch.full((64,), float(step))}, "step": step}, path)
    return path.read_bytes()


def test_a_truncated_or_empty_file_is_named_with_what_to_do(tmp_path):
    whole = write(tmp_path / "model.pt", 1)
    (tmp_path / "model.pt").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(tmp_path / "model.pt")
    msg = str(e.value)
    assert str(tmp_path / "model.pt") in msg and "cut short" in msg and "copy or write it again" in msg
    assert len(msg.splitlines()) == 1
    with pytest.raises(CheckpointError, match=r"empty\.pt: .*an empty file \(0 bytes\)"):
        load_checkpoint(tmp_path / "empty.pt")
    with pytest.raises(FileNotFoundError, match="absent.pt"):
        load_checkpoint(tmp_path / "absent.pt")
    with pytest.raises(CheckpointError, match="model.pt"):  # what every model's load_* goes through
        load_model(tmp_path, torch.nn.Linear, object, "test model")


def test_a_broken_step_checkpoint_is_set_aside_with_its_reason(tmp_path, caplog):
    """A 0-byte step_999.pt would stay the 'newest' checkpoint forever and take a keep_last_k slot."""
    ckpts = tmp_path / "checkpoints"
    ckpts.mkdir()
    for step in (1, 2):
        write(ckpts / f"step_{step}.pt", step)
    (ckpts / "step_999.pt").write_bytes(b"")
    with caplog.at_level(logging.WARNING):
        assert find_resume_checkpoint(ckpts, ("model", "step"))[1]["step"] == 2  # read-only: only a warning
    assert "step_999.pt (an empty file (0 bytes))" in caplog.text and (ckpts / "step_999.pt").exists()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        path, state = find_resume_checkpoint(ckpts, ("model", "step"), set_aside=True)
    assert path.name == "step_2.pt" and state["step"] == 2
    assert "renamed to step_999.pt.bad" in caplog.text
    assert sorted(p.name for p in ckpts.iterdir()) == ["step_1.pt", "step_2.pt", "step_999.pt.bad"]
    # an incomplete checkpoint (a key missing) says which key
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert find_resume_checkpoint(ckpts, ("model", "step", "optimizer")) is None
    assert "incomplete checkpoint" in caplog.text and "missing optimizer" in caplog.text


def test_sample_lm_names_a_truncated_model_in_one_line(tmp_path, caplog):
    """A truncated model.pt given to sample_lm was a 26-line traceback without the path."""
    from ttsrl.bin import sample_lm

    whole = write(tmp_path / "model.pt", 1)
    (tmp_path / "model.pt").write_bytes(whole[:100])
    with pytest.raises(SystemExit) as e:
        sample_lm.main(["--lm", str(tmp_path / "model.pt"), "--token_dir", str(tmp_path), "--out_dir",
                        str(tmp_path / "out")])
    assert e.value.code == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and str(tmp_path / "model.pt") in errors[0] and "cut short" in errors[0]
