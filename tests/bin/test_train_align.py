"""train_align: every method on a tiny fixture, resume, CoH sampling with --tag, errors, --help."""
import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from ttsrl.bin import sample_lm, train_align
from ttsrl.data.arrays import write_ark_scp
from ttsrl.data.datadir import read_kv, write_kv
from ttsrl.models.codec_lm import CodecLM, CodecLMConfig, load_codec_lm
from ttsrl.models.reward import MultiTaskReward, MultiTaskRewardConfig
from ttsrl.utils.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
TINY = str(ROOT / "conf" / "align" / "tiny.yaml")
V = 20


def make_set(root, name, n, seed, prompts):
    """A token dir (speech follows text: t -> t, t + 10) and pairs (chosen = that, rejected = noise,
    sometimes longer than chosen)."""
    rng = np.random.default_rng(seed)
    tok = root / name
    tok.mkdir(parents=True)
    utts = [f"spk{i % 2}-u{i:03d}" for i in range(n)]
    text = {u: [int(x) for x in rng.integers(2, 9, rng.integers(2, 5))] for u in utts}
    speech = {u: [c for t in text[u] for c in (t, t + 10)] for u in utts}
    write_kv(tok / "text", {u: " ".join(map(str, t)) for u, t in text.items()})
    write_ark_scp(tok / "speech.ark", tok / "speech.scp", [(u, np.array(speech[u], np.int32)) for u in utts])
    if prompts:
        write_kv(tok / "prompt_text", {u: "2 3" for u in utts})
        write_ark_scp(tok / "prompt_speech.ark", tok / "prompt_speech.scp",
                      [(u, np.array([2, 12, 3, 13], np.int32)) for u in utts])
    with open(root / f"{name}.jsonl", "w") as f:
        for i, u in enumerate(utts):
            rejected = None if i == 1 else [int(x) for x in rng.integers(0, V, len(speech[u]) + i % 3)]  # lengths differ
            f.write(json.dumps({"utt": u, "chosen": speech[u], "rejected": rejected, "chosen_reward": 0.0,
                                "rejected_reward": -1.0, "chosen_key": u, "rejected_key": f"{u}-c0",
                                "mode": "best_worst"}) + "\n")
    write_kv(root / f"{name}.utt2emo", {u: ["happy", "sad"][i % 2] for i, u in enumerate(utts)})
    return tok, root / f"{name}.jsonl"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("align")
    train_tok, train_pairs = make_set(root, "train", 8, 0, prompts=True)
    dev_tok, dev_pairs = make_set(root, "dev", 4, 1, prompts=True)
    torch.manual_seed(0)
    cfg = CodecLMConfig(text_vocab_size=10, speech_vocab_size=V, d_model=16, n_layers=1, n_heads=2, d_ff=32,
                        dropout=0.1, max_len=64)
    torch.save({"model": CodecLM(cfg).state_dict(), "config": {"model_conf": asdict(cfg)}}, root / "lm.pt")
    rcfg = MultiTaskRewardConfig(speech_vocab_size=V, text_vocab_size=10, d_model=16, n_heads=2, d_ff=32,
                                 n_layers=1, dropout=0.0, label_names={"emotion": ["happy", "sad"]})
    (root / "reward").mkdir()
    torch.save({"model": MultiTaskReward(rcfg).state_dict(), "config": {"model_conf": asdict(rcfg)}},
               root / "reward" / "model.pt")
    return {"root": root, "train_tok": train_tok, "train_pairs": train_pairs, "dev_tok": dev_tok,
            "dev_pairs": dev_pairs, "lm": root / "lm.pt", "reward": root / "reward"}


def args_for(data, exp, method, *extra):
    return ["--config", TINY, "--method", method, "--init_lm", str(data["lm"]), "--token_dir", str(data["train_tok"]),
            "--pairs", str(data["train_pairs"]), "--valid_pairs", str(data["dev_pairs"]),
            "--valid_token_dir", str(data["dev_tok"]), "--exp_dir", str(exp), *extra]


METHODS = {
    "dpo": [],
    "dpo_model_ref": ["--ref_mode", "model", "--loss_type", "robust", "--label_smoothing", "0.1",
                      "--average", "true", "--sft_weight", "0.5"],
    "speechalign": ["--loss_type", "ipo"],
    "raft": [],
    "bon": ["--valid_kl", "false"],
    "coh": [],
    "diffro": ["--target_emotion", "happy"],
}


@pytest.mark.parametrize("name", list(METHODS))
def test_method_trains_and_writes_a_loadable_model(data, tmp_path, name):
    method = name.split("_")[0]
    extra = list(METHODS[name])
    if method == "diffro":
        extra += ["--reward_model", str(data["reward"])]
    exp = tmp_path / name
    summary = train_align.main(args_for(data, exp, method, *extra))
    assert summary["step"] == 4
    model = load_codec_lm(str(exp / "model.pt"))
    assert model.config.num_tags == (2 if method == "coh" else 0)
    assert model.config.dropout == 0.0  # tiny.yaml's model_conf override is part of the saved config
    metrics = json.loads((exp / "metrics.json").read_text())
    assert metrics["method"] == method and metrics["train_seconds"] > 0 and metrics["steps"] == 4
    assert np.isfinite(metrics["val_loss"])
    if name == "bon":  # no reference kept: no kl
        assert "kl" not in metrics
    else:
        assert metrics["kl"] >= 0 and 0.0 <= metrics["val_reward_acc"] <= 1.0
    if method in ("dpo", "speechalign") and name != "dpo_model_ref":
        assert (exp / "ref_logps.pt").exists() and (exp / "ref_logps_valid.pt").exists()
    if method == "diffro":
        assert "val_reward" in metrics and "val_reward_text" in metrics and "val_reward_emotion" in metrics


def test_policy_starts_at_the_reference(data, tmp_path):
    """Step 0 of DPO: the policy is the reference, so the loss is log 2 and kl is 0 (validation before training)."""
    from ttsrl.align.data import PairDataset, collate_pairs
    from ttsrl.align.trainer import AlignLoss, AlignOptions, build_policy, load_reference

    policy = build_policy(str(data["lm"]), "dpo", {"dropout": 0.0}).eval()
    opts = AlignOptions(method="dpo", init_lm=str(data["lm"]), token_dir=str(data["dev_tok"]),
                        pairs=str(data["dev_pairs"]), beta=0.1)
    loss_fn = AlignLoss(opts, reference=load_reference(str(data["lm"]), "cpu"))
    ds = PairDataset(str(data["dev_tok"]), str(data["dev_pairs"]), with_prompt=True, need_rejected=True)
    with torch.no_grad():
        loss, stats = loss_fn(policy, collate_pairs([ds[i] for i in range(len(ds))]))
    assert loss.item() == pytest.approx(np.log(2), abs=1e-5)
    assert stats["kl"].item() == pytest.approx(0.0, abs=1e-6)


def test_coh_policy_adds_a_tag_embedding_to_the_base_weights(data):
    from ttsrl.align.trainer import build_policy

    base = load_checkpoint(data["lm"])["model"]
    policy = build_policy(str(data["lm"]), "coh", {"dropout": 0.0})
    assert policy.config.num_tags == 2 and policy.tag_emb.weight.shape == (2, 16)
    for k, v in base.items():
        torch.testing.assert_close(policy.state_dict()[k], v, msg=k)
    # a rerun from the run's resolved config (model_conf already has num_tags=2) builds the same policy
    again = build_policy(str(data["lm"]), "coh", asdict(policy.config))
    assert again.config == policy.config
    with pytest.raises(ValueError, match="unknown keys"):
        build_policy(str(data["lm"]), "dpo", {"n_layer": 3})
    with pytest.raises(ValueError, match="weights do not fit"):
        build_policy(str(data["lm"]), "dpo", {"n_layers": 3})


def test_diffro_from_chosen_tokens_with_a_targets_file(data, tmp_path):
    exp = tmp_path / "diffro_chosen"
    train_align.main(args_for(data, exp, "diffro", "--reward_model", str(data["reward"]), "--diffro_source", "chosen",
                              "--targets_file", str(data["root"] / "train.utt2emo"), "--max_steps", "2"))
    assert load_codec_lm(str(exp / "model.pt")).config.num_tags == 0


def test_diffro_without_pairs_uses_the_token_dirs_tokens(data, tmp_path):
    exp = tmp_path / "diffro_golden"
    train_align.main(["--config", TINY, "--method", "diffro", "--init_lm", str(data["lm"]),
                      "--token_dir", str(data["train_tok"]), "--valid_token_dir", str(data["dev_tok"]),
                      "--reward_model", str(data["reward"]), "--exp_dir", str(exp), "--max_steps", "2"])
    metrics = json.loads((exp / "metrics.json").read_text())
    assert metrics["pairs"] == 8 and "val_reward" in metrics and "val_reward_acc" not in metrics


def with_lm_units(data, tmp_path):
    """A copy of the training token dir whose ``text`` (LM ids 2..8, phn) is in other units than its
    ``ctc_text`` (ids 2..4), and an LM folder whose text units are those of the token dir."""
    import shutil

    from ttsrl.text.tokenizer import write_token_list

    tok = tmp_path / "tok"
    shutil.copytree(data["train_tok"], tok)
    lm_ids = {u: v.split() for u, v in read_kv(tok / "text").items()}
    write_kv(tok / "ctc_text", {u: " ".join(str(2 + int(i) % 3) for i in v) for u, v in lm_ids.items()})
    tokens = ["<blank>", "<unk>", *(f"p{i}" for i in range(2, 9)), "<sos/eos>"]
    write_token_list(tok / "tokens.txt", tokens)
    (tok / "token_type").write_text("phn\n")
    lm_dir = tmp_path / "base_lm"
    lm_dir.mkdir()
    shutil.copyfile(data["lm"], lm_dir / "model.pt")
    for name in ("tokens.txt", "token_type"):
        shutil.copyfile(tok / name, lm_dir / name)
    return tok, lm_dir, read_kv(tok / "ctc_text")


def test_diffro_rewards_the_ctc_text_and_the_lm_reads_its_units(data, tmp_path, monkeypatch):
    import ttsrl.align.rewards
    from ttsrl.align.data import PairDataset, collate_pairs
    from ttsrl.align.trainer import build_reward_fn

    tok, _, ctc = with_lm_units(data, tmp_path)
    ds = PairDataset(str(tok), str(data["train_pairs"]), with_prompt=True)
    batch = collate_pairs([ds[i] for i in range(3)])
    for i, u in enumerate(batch["utts"]):
        n = int(batch["reward_text_lens"][i])
        assert batch["reward_text"][i, :n].tolist() == [int(x) for x in ctc[u].split()]  # the CTC units
        assert batch["target_text"][i, : int(batch["target_text_lens"][i])].tolist() == ds.tokens.text[u]
    seen = {}

    class Recorder(ttsrl.align.rewards.TokenReward):
        def score(self, tokens, lens=None, text=None, text_lens=None, targets=None, utts=None):
            seen["text"], seen["text_lens"] = text, text_lens
            return super().score(tokens, lens, text, text_lens, targets, utts)

    monkeypatch.setattr(ttsrl.align.rewards, "TokenReward", Recorder)
    soft = torch.nn.functional.one_hot(batch["chosen"], V).float()
    build_reward_fn(str(data["reward"]), "cpu")(soft, batch["chosen_lens"], batch)
    assert seen["text"] is batch["reward_text"] and seen["text_lens"] is batch["reward_text_lens"]


def test_aligned_lm_carries_the_text_units_forward(data, tmp_path):
    tok, lm_dir, _ = with_lm_units(data, tmp_path)
    exp = tmp_path / "raft"
    train_align.main(["--config", TINY, "--method", "raft", "--init_lm", str(lm_dir / "model.pt"),
                      "--token_dir", str(tok), "--pairs", str(data["train_pairs"]), "--exp_dir", str(exp),
                      "--max_steps", "1"])
    assert (exp / "token_type").read_text() == "phn\n"  # an aligned LM synthesizes with the same units
    assert (exp / "tokens.txt").read_text() == (lm_dir / "tokens.txt").read_text()
    (lm_dir / "tokens.txt").write_text((lm_dir / "tokens.txt").read_text().replace("p8\n", ""))
    with pytest.raises(SystemExit, match="are not those of --init_lm"):
        train_align.main(["--config", TINY, "--method", "raft", "--init_lm", str(lm_dir / "model.pt"),
                          "--token_dir", str(tok), "--pairs", str(data["train_pairs"]),
                          "--exp_dir", str(tmp_path / "bad"), "--max_steps", "1"])


def test_resume_continues_from_the_checkpoint(data, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train_align.main(args_for(data, straight, "dpo", "--max_steps", "4"))
    first = train_align.main(args_for(data, resumed, "dpo", "--max_steps", "2"))  # "killed" after 2 steps
    assert first["step"] == 2
    again = train_align.main(args_for(data, resumed, "dpo", "--max_steps", "4"))
    assert again["step"] == 4
    assert "resumed from" in (resumed / "train.log").read_text()
    a = load_checkpoint(straight / "checkpoints" / "step_4.pt")["model"]
    b = load_checkpoint(resumed / "checkpoints" / "step_4.pt")["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], msg=k)


def test_a_kl_limit_stops_alignment_at_the_first_validation_over_it(data, tmp_path):
    exp = tmp_path / "kl_stop"
    summary = train_align.main(args_for(data, exp, "dpo", "--max_steps", "6", "--valid_interval", "1",
                                        "--lr", "0.05", "--stop_above", "kl=1e-6"))
    assert summary["stopped_early"] and summary["step"] == 1  # the first update already moves the KL above 1e-6
    assert "above stop_above" in (exp / "train.log").read_text()


def test_coh_model_samples_with_a_tag(data, tmp_path, caplog):
    exp = tmp_path / "coh"
    train_align.main(args_for(data, exp, "coh", "--max_steps", "1", "--valid_kl", "false"))
    out = tmp_path / "samples"
    base = ["--token_dir", str(data["dev_tok"]), "--num_candidates", "2", "--max_len_ratio", "3", "--ngpu", "0"]
    sample_lm.main(["--lm", str(exp / "model.pt"), "--out_dir", str(out), "--tag", "good", *base])
    assert (out / "tokens.scp").exists()
    with pytest.raises(SystemExit) as e:  # one line naming the problem, exit 1
        sample_lm.main(["--lm", str(data["lm"]), "--out_dir", str(tmp_path / "s2"), "--tag", "good", *base])
    assert e.value.code == 1 and "no control tags" in caplog.text


def test_failures_exit_nonzero(data, tmp_path):
    args = args_for(data, tmp_path / "x", "dpo")
    i = args.index("--pairs")
    with pytest.raises(SystemExit) as e:
        train_align.main(args[:i] + args[i + 2:])
    assert e.value.code not in (0, None)
    with pytest.raises(SystemExit) as e:
        train_align.main(args_for(data, tmp_path / "y", "diffro"))  # no --reward_model
    assert e.value.code not in (0, None)
    with pytest.raises(SystemExit) as e:
        train_align.main(args_for(data, tmp_path / "z", "dpo", "--label_smoothing", "0.1"))  # sigmoid + smoothing
    assert e.value.code not in (0, None)


def test_help():
    assert subprocess.run([sys.executable, "-m", "ttsrl.bin.train_align", "--help"], capture_output=True).returncode == 0


def test_align_options_are_checked_when_built(data):
    """One dataclass holds every option with one default; its errors come before any work."""
    from ttsrl.align.trainer import AlignOptions
    from ttsrl.utils.config import ConfigError

    base = {"init_lm": str(data["lm"]), "token_dir": str(data["train_tok"]), "pairs": str(data["train_pairs"])}
    opts = AlignOptions(method="diffro", reward_model="r", sample_top_k=7, **base)
    assert opts.sampling.top_k == 7 and opts.lm_prompt and opts.beta == 0.1
    with pytest.raises(ValueError, match="label_smoothing"):
        AlignOptions(method="dpo", label_smoothing=0.1, **base)
    with pytest.raises(ConfigError, match="needs --pairs"):
        AlignOptions(method="raft", **{**base, "pairs": None})
    with pytest.raises(ConfigError, match="ref_mode"):
        AlignOptions(method="dpo", ref_mode="both", **base)
    with pytest.raises(ConfigError, match="not both"):
        AlignOptions(method="diffro", reward_model="r", target_emotion="happy", targets_file="t", **base)
