"""Models trained before a change load after it: model.pt files and checkpoints keep their layout.

``tests/fixtures/saved_formats.json`` was written by the code of commit 141b7d9 (before the renovation
of issue 28: loaders beside their models, every trainer a task): for a tiny model of every kind, the
``model_conf`` its training saves and the name and shape of every tensor of its state dict, and
the keys of a Trainer checkpoint. The tests write ``model.pt`` files in that layout and load them
with today's loaders; a change that renames a parameter, a config key or a checkpoint key fails
here. (A new *optional* config key with the old behaviour as its default keeps old files loadable;
regenerate the fixture only for a deliberate format change, with a migration for old files.)
"""
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from ttsrl.models.asr import CTCASR
from ttsrl.models.codec_lm import load_codec_lm
from ttsrl.models.flow import load_flow
from ttsrl.models.reward import load_reward_model
from ttsrl.models.speech_tokenizer import SpeechTokenizer
from ttsrl.models.vocoder import load_vocos
from ttsrl.train.trainer import Trainer, TrainerConfig
from ttsrl.utils.checkpoint import find_resume_checkpoint, load_checkpoint

FORMATS = json.loads((Path(__file__).parent / "fixtures" / "saved_formats.json").read_text())
LOADERS = {
    "codec_lm": load_codec_lm,
    "codec_lm_rope_ctc_tags_spk": load_codec_lm,
    "flow": load_flow,
    "vocoder": load_vocos,
    "speech_tokenizer": SpeechTokenizer.from_pretrained,
    "asr": CTCASR.from_pretrained,
    "reward": load_reward_model,
}


def write_model_pt(folder: Path, entry: dict) -> dict:
    """A model.pt as training writes it (weights, resolved config with model_conf, trainer config, step, best)."""
    torch.manual_seed(0)
    state = {k: torch.randn(shape, dtype=getattr(torch, dtype)) for k, (shape, dtype) in entry["state"].items()}
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"model": state, "config": {"model_conf": entry["model_conf"], "token_type": "char"},
                "trainer_config": {"lr": 1e-3}, "step": 3, "best": {"metric": "loss", "value": 1.0, "step": 3}},
               folder / "model.pt")
    return state


def test_every_model_kind_is_in_the_fixture():
    assert set(FORMATS["models"]) == set(LOADERS)


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_a_model_pt_of_the_saved_layout_loads(name, tmp_path):
    state = write_model_pt(tmp_path / name, FORMATS["models"][name])
    model = LOADERS[name](tmp_path / name)
    assert not model.training
    loaded = model.state_dict()
    assert set(loaded) == set(state)
    for k, v in state.items():
        assert torch.equal(loaded[k], v), k


def test_a_codec_lm_of_the_saved_layout_runs():
    """The loaded LM computes its loss (the teacher-forced pass every alignment method starts with)."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        write_model_pt(Path(d), FORMATS["models"]["codec_lm_rope_ctc_tags_spk"])
        lm = load_codec_lm(d)
    text, speech = torch.tensor([[2, 3, 4]]), torch.tensor([[1, 5, 6, 7]])
    out = lm(text, torch.tensor([3]), speech, torch.tensor([4]), spk=torch.zeros(1, 4), tags=torch.tensor([0]))
    assert torch.isfinite(out.loss) and out.ctc_loss is not None


def test_trainer_checkpoints_keep_their_keys_and_resume(tmp_path):
    torch.manual_seed(0)
    batches = [{"x": torch.randn(4, 2), "y": torch.randn(4, 1)} for _ in range(2)]

    def loss_fn(model, batch):
        return nn.functional.mse_loss(model(batch["x"]), batch["y"]), {}

    def run(max_steps):
        config = TrainerConfig(max_epochs=0, max_steps=max_steps, optim="sgd", lr=0.1, scheduler="constant",
                               save_interval=1, progress=False, tensorboard=False)
        return Trainer(nn.Linear(2, 1), batches, batches, loss_fn, config, tmp_path, resolved_config={"a": 1}).train()

    run(2)
    step = load_checkpoint(tmp_path / "checkpoints" / "step_2.pt")
    assert set(step) == set(FORMATS["checkpoint_keys"]) | {"ema"}
    assert set(load_checkpoint(tmp_path / "model.pt")) == {"model", "config", "trainer_config", "step", "best"}
    assert find_resume_checkpoint(tmp_path / "checkpoints", FORMATS["checkpoint_keys"])[1]["step"] == 2
    assert run(3)["step"] == 3  # resumed from step 2
