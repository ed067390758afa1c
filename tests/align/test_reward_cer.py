"""The CER proxy of both rewards (GRPO's group filter): the greedy transcript of the reward's own recognizer pass."""
import pytest
import torch
from tts_helpers import make_prompted_set

from ttsrl.align.rewards import TokenReward
from ttsrl.models.ctc import greedy_ctc
from ttsrl.models.reward import MultiTaskReward, MultiTaskRewardConfig
from ttsrl.models.speech_tokenizer import unit_error_rates


def test_unit_error_rates_by_hand():
    assert unit_error_rates([[1, 2, 3, 4], [5], [], []], [[1, 3, 4], [5, 5, 6], [], [7]]) == [0.25, 2.0, 0.0, 1.0]


def test_token_reward_cer_is_its_ctc_heads_greedy_reading():
    torch.manual_seed(0)
    rm = MultiTaskReward(MultiTaskRewardConfig(speech_vocab_size=12, text_vocab_size=8, d_model=16, n_heads=2, d_ff=32,
                                               n_layers=1, dropout=0.0))
    scorer = TokenReward(rm)
    tokens = [torch.randint(0, 12, (n,)) for n in (6, 9, 4)]
    text = [[2, 3, 4], [5, 6], [7]]
    out = scorer.score(tokens, text=text, cer=True)
    plain = scorer.score(tokens, text=text)
    assert set(out) == set(plain) | {"cer"} and torch.equal(out["reward"], plain["reward"])  # not a component
    from ttsrl.data.token_dataset import pad_1d

    ids, lens = pad_1d(tokens)
    with torch.no_grad():
        res = rm(ids, lens)
    expected = unit_error_rates(text, greedy_ctc(res.ctc_log_probs, res.ctc_lens))
    assert out["cer"].tolist() == pytest.approx(expected)
    with pytest.raises(ValueError, match="CER proxy"):
        TokenReward(rm, {}).score(tokens, cer=True)  # no text to read against
def test_a_grpo_step_with_the_audio_reward(tiny_tts_models, tmp_path):
    """grpo_audio's loss on one batch: candidates synthesized with their prompts, read by the tokenizer's CTC head."""
    from ttsrl.align.data import collate_pairs
    from ttsrl.align.grpo import GRPOLoss, build_group_rewards
    from ttsrl.align.trainer import AlignOptions
    from ttsrl.data.datadir import DataDir
    from ttsrl.data.token_dataset import lm_input
    from ttsrl.models.codec_lm import load_codec_lm
    from ttsrl.models.speech_tokenizer import load_ctc_tokenizer

    d, utts = make_prompted_set(tmp_path)
    utts = [u for i, u in enumerate(utts) if i != 1]
    opts = AlignOptions(method="grpo", init_lm=str(tiny_tts_models / "lm.pt"), token_dir="unused", reward="audio",
                        data_dir=d, tokenizer_dir=str(tiny_tts_models / "tokenizer"),
                        flow=str(tiny_tts_models / "flow.pt"), group_size=2, kl_weight=0.0, flow_n_steps=2,
                        sample_top_k=5, sample_max_len_ratio=2.0)
    reward, valid = build_group_rewards(opts, "cpu", with_valid=False)
    assert valid is None
    loss_fn = GRPOLoss(opts, None, reward)
    ctc = load_ctc_tokenizer(tiny_tts_models / "tokenizer")
    texts = DataDir.load(d).text
    items = []
    for i, u in enumerate(utts):
        ids = torch.tensor(ctc.encode(texts[u]))
        items.append({"index": i, "utt": u, "target_text": ids, "reward_text": ids, "chosen": ids % 16,
                      "rejected": None, **lm_input(ids)})
    policy = load_codec_lm(str(tiny_tts_models / "lm.pt")).train()
    torch.manual_seed(0)
    loss, stats = loss_fn(policy, collate_pairs(items))
    loss.backward()
    assert torch.isfinite(loss) and 0 <= float(stats["skipped"]) <= 1 and float(stats["cer"]) >= 0
    assert "reward_text" in stats and any(p.grad is not None for p in policy.parameters())
