"""GRPO, online RL for the codec LM: the loop of sampling, scoring and updating inside the alignment task.

There are no pairs. Every training batch holds (prompt, text) rows of ``--token_dir``, and
:class:`GRPOLoss` is the Trainer's loss for them:

1. **sample** (first pass over the batch, ``repeat == 0``): ``--group_size`` G candidates per row
   from the current policy with the KV-cache sampler (``ttsrl.sample.sampler.sample``, under
   inference mode), the sampling seed drawn from the global RNG (which every checkpoint saves per
   rank, so a resumed run samples the same candidates);
2. **score**: a reward per candidate (:func:`build_group_rewards`): ``--reward token``, the
   multi-task reward model on the tokens (``ttsrl.align.rewards.TokenReward``, as DiffRO); or
   ``--reward audio``, flow + vocoder with the utterance's prompt, re-encoded by the speech
   tokenizer and read by its CTC head, or by a reward ASR that is not the judge
   (``ttsrl.align.audio_reward.AudioReward``). Both also give a CER proxy: the greedy CTC
   transcript of the same recognizer pass against the text;
3. **advantages and groups** (``ttsrl.losses.grpo``): group-normalized rewards; groups of equal
   rewards, or whose CER proxy is above ``--max_best_cer`` / ``--max_worst_cer``, are left out;
   the reference's log-probs of the kept candidates are computed once (no_grad);
4. **update**: a teacher-forced pass of the policy over the kept candidates (``prompt + candidate``
   in the speech region, :func:`ttsrl.align.data.speech_rows`, the layout of ``lm_input``) and
   :func:`ttsrl.losses.grpo.grpo_loss`; the Trainer does the backward pass, DDP's gradient
   average, clipping and the optimizer step.

``--num_updates`` mu > 1: the training loader yields every run of ``grad_accum`` batches mu
times (``ttsrl.train.sampler.RepeatedBatchSampler``; each batch carries ``repeat`` and ``slot``).
The first pass samples and keeps the candidates, their advantages, the reference's and the
sampling policy's log-probs in a buffer; later passes reuse them, so the ratio to the sampling
policy moves and the clip bounds each update. The buffer is this rank's state in every
checkpoint (``Task.rank_state``): a run killed between two passes resumes exactly.

Under DDP every rank samples and scores its own share of the prompts (the bucket sampler shards
the batches); a rank whose groups are all left out still runs a pass over one row with weight 0,
so that every rank joins the gradient average.

Validation (``--valid_token_dir``): one candidate per dev row from the policy at a seed fixed by
the rows (the same draws at every validation), scored by the same reward: ``reward`` (and its
components), ``cer`` (the proxy, %), ``gen_len``, ``cut``; ``kl``: the token-average KL(policy ||
reference) of the full distributions along the ground-truth tokens, as every alignment method
reports it (``--stop_above "{kl: 0.3}"`` stops the run there); ``loss`` = -reward.

Usage (``ttsrl.bin.train_align --method grpo`` runs it all)::

    reward, valid_reward = build_group_rewards(opts, "cpu")
    loss_fn = GRPOLoss(opts, load_reference(opts.init_lm, "cpu"), reward, valid_reward)
    loss, stats = loss_fn(policy, batch)           # the Trainer's compute_loss on collate_pairs batches
"""
from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ttsrl.align.data import forward_rows, speech_rows
from ttsrl.align.trainer import build_reward_fn
from ttsrl.losses.diffro import masked_token_mean, token_kl
from ttsrl.losses.grpo import generated_mask, group_advantages, grpo_loss, keep_groups
from ttsrl.models.codec_lm import CodecLM
from ttsrl.sample.sampler import sample
from ttsrl.train.trainer import unwrap_model

logger = logging.getLogger(__name__)

__all__ = ["GRPOLoss", "build_group_rewards"]

#: ``reward(tokens, rows) -> {"reward": (R,), "cer": (R,), <component>: (R,)}`` of R candidates; ``rows``
#: holds each candidate's ``utts`` and ``reward_text``/``reward_text_lens`` (the CTC units).
GroupReward = Callable[[Sequence[torch.Tensor], dict], dict]


# --------------------------------------------------------------------------- rewards
def build_group_rewards(opts, device, with_valid: bool = True) -> tuple[GroupReward, GroupReward | None]:
    """The reward of the training candidates and of the validation ones (``--reward token|audio``)."""
    if opts.reward == "token":
        reward_fn = build_reward_fn(opts.reward_model, device, opts.reward_weights, opts.target_emotion,
                                    opts.targets_file)

        def token_reward(tokens: Sequence[torch.Tensor], rows: dict) -> dict:
            return reward_fn([t.cpu() for t in tokens], None, rows, cer=True)

        return token_reward, (token_reward if with_valid else None)
    from ttsrl.align.audio_reward import AudioReward
    from ttsrl.sample.synthesize import FlowOptions, TTSPipeline

    tts = TTSPipeline.from_dirs(None, opts.flow, opts.tokenizer_dir, vocoder=opts.vocoder,
                                vocoder_path=opts.vocoder_path, device=device)

    def audio_reward(data_dir: str) -> GroupReward:
        scorer = AudioReward(tts, data_dir, opts.reward_weights or None, asr=opts.reward_asr,
                             flow_opts=FlowOptions(n_steps=opts.flow_n_steps))

        def score(tokens: Sequence[torch.Tensor], rows: dict) -> dict:
            return scorer.score([t.cpu() for t in tokens], utts=rows["utts"], cer=True)

        return score

    valid = audio_reward(opts.valid_data_dir) if (with_valid and opts.valid_data_dir) else None
    return audio_reward(opts.data_dir), valid


# --------------------------------------------------------------------------- the loss
def _to(obj: Any, device) -> Any:
    if torch.is_tensor(obj):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: _to(v, device) for k, v in obj.items()}
    return obj


class GRPOLoss:
    """``compute_loss(model, batch) -> (loss, stats)`` of GRPO for the Trainer (see the module docstring).

    Args:
        opts: the alignment options (``ttsrl.align.trainer.AlignOptions``, method grpo).
        reference: the frozen reference LM (for the KL term and validation's kl), or None.
        reward, valid_reward: :data:`GroupReward` of the training and the validation candidates.
        device: where a restored buffer goes.
    """

    def __init__(self, opts, reference: CodecLM | None, reward: GroupReward, valid_reward: GroupReward | None = None,
                 device: str | torch.device = "cpu"):
        if opts.kl_weight and reference is None:
            raise ValueError("grpo with kl_weight > 0 needs the reference model")
        self.opts, self.reference, self.reward, self.valid_reward = opts, reference, reward, valid_reward
        self.device = torch.device(device)
        self.buffer: list[dict | None] = []  # the current run's rollouts by slot (num_updates > 1)

    def __call__(self, model, batch: dict) -> tuple[torch.Tensor, dict]:
        if unwrap_model(model).training:
            return self._train(model, batch)
        return self._validate(model, batch)

    # ---------------------------------------------------------------- checkpointed state
    def state_dict(self) -> dict:
        return {"buffer": [None if r is None else _to(r, "cpu") for r in self.buffer]} if self.buffer else {}

    def load_state_dict(self, state: dict) -> None:
        self.buffer = [None if r is None else _to(r, self.device) for r in state.get("buffer", [])]

    # ---------------------------------------------------------------- rows
    @staticmethod
    def _reward_rows(batch: dict, n: int) -> dict:
        """Every row of the batch ``n`` times (candidate i is row i // n): what a reward reads."""
        return {"utts": [u for u in batch["utts"] for _ in range(n)],
                "reward_text": batch["reward_text"].repeat_interleave(n, 0),
                "reward_text_lens": batch["reward_text_lens"].repeat_interleave(n, 0)}

    @staticmethod
    def _lm_rows(batch: dict, rows: torch.Tensor, n: int) -> dict:
        """The LM inputs of candidates ``rows`` (candidate i belongs to batch row i // n)."""
        src = rows // n
        return {"text": batch["text"][src], "text_lens": batch["text_lens"][src],
                "prompt_lens": batch["prompt_lens"][src]}

    # ---------------------------------------------------------------- sampling and scoring
    @torch.no_grad()
    def _rollout(self, core: CodecLM, batch: dict) -> dict:
        o = self.opts
        G = o.group_size
        B = batch["index"].shape[0]
        dev = batch["text"].device
        # the seed comes from the global RNG, which the Trainer checkpoints per rank: resuming is exact
        seed = int(torch.randint(0, 2**31 - 1, (1,)).item())
        cfg = dataclasses.replace(o.sampling, num_candidates=G, seed=seed)
        tags = None if core.config.num_tags == 0 else torch.zeros_like(batch["text_lens"])
        res = sample(core, batch["text"], batch["text_lens"], cfg, prompt=batch["prompt"],
                     prompt_lens=batch["prompt_lens"], target_text_lens=batch["target_text_lens"], tags=tags)
        tokens = [t.clone() for t in res.tokens]  # clone: out of inference mode
        finished = res.finished.clone()
        t0 = time.perf_counter()
        scores = self.reward(tokens, self._reward_rows(batch, G))
        reward_ms = 1000.0 * (time.perf_counter() - t0) / (B * G)
        rewards = scores["reward"].detach().float().to(dev).view(B, G)
        cer = scores.get("cer")
        cer = None if cer is None else cer.float().to(dev).view(B, G)
        adv = group_advantages(rewards, scale=not o.dr_grpo).flatten()
        keep = keep_groups(rewards, cer, o.skip_equal_groups, o.max_best_cer, o.max_worst_cer)
        row_keep = keep.repeat_interleave(G)
        rows = row_keep.nonzero().flatten()
        if rows.numel() == 0:  # one row with weight 0: this rank still joins DDP's gradient average
            rows = torch.zeros(1, dtype=torch.long, device=dev)
        prompts = [batch["prompt"][i // G, : int(batch["prompt_lens"][i // G])] for i in rows.tolist()]
        speech, speech_lens = speech_rows(prompts, [tokens[i].to(dev) for i in rows.tolist()])
        roll = {"rows": rows, "speech": speech.to(dev), "speech_lens": speech_lens.to(dev),
                "finished": finished[rows].to(dev), "adv": adv[rows], "keep": row_keep[rows], "ref_logp": None,
                "old_logp": None}
        if self.reference is not None and o.kl_weight:
            roll["ref_logp"] = forward_rows(self.reference, self._lm_rows(batch, rows, G), ("chosen",),
                                            speech=(roll["speech"], roll["speech_lens"]))[0]
        lens = torch.tensor([len(t) for t in tokens], dtype=torch.float32)
        stats = {"reward": rewards.mean(), "reward_std": rewards.std(1).mean(), "skipped": 1.0 - keep.float().mean(),
                 "gen_len": lens.mean(), "cut": 1.0 - finished.float().mean(), "reward_ms": reward_ms}
        stats.update({f"reward_{k}": v.float().mean() for k, v in scores.items() if k not in ("reward", "cer")})
        if cer is not None:
            stats["cer"] = 100.0 * cer.mean()
        roll["stats"] = stats
        return roll

    # ---------------------------------------------------------------- training
    def _train(self, model, batch: dict) -> tuple[torch.Tensor, dict]:
        o = self.opts
        k, slot = int(batch.get("repeat", 0)), int(batch.get("slot", 0))
        roll = None
        if k == 0 and slot == 0:
            self.buffer = []  # a new run of batches
        elif k > 0:
            roll = self.buffer[slot] if slot < len(self.buffer) else None
            if roll is None:
                logger.warning("grpo: no kept samples for pass %d of slot %d (resumed with another number of "
                               "processes?): sampling anew", k, slot)
        fresh = roll is None
        if fresh:
            roll = self._rollout(unwrap_model(model), batch)
        logp, lm_mask, _ = forward_rows(model, self._lm_rows(batch, roll["rows"], o.group_size), ("chosen",),
                                        speech=(roll["speech"], roll["speech_lens"]))
        mask = generated_mask(lm_mask, roll["speech_lens"], roll["finished"])
        old = roll["old_logp"] if roll["old_logp"] is not None else logp.detach()
        res = grpo_loss(logp, old, roll["ref_logp"], roll["adv"], mask, o.clip_eps, o.kl_weight, o.dr_grpo,
                        o.sample_max_len, roll["keep"])
        if fresh and o.num_updates > 1:  # later passes reuse the samples against this policy's log-probs
            roll["old_logp"] = logp.detach()
            self.buffer += [None] * (slot + 1 - len(self.buffer))
            self.buffer[slot] = roll
        stats = {"policy_loss": res.policy_loss, "kl": res.kl, "clip_frac": res.clip_frac, "ratio": res.ratio}
        if fresh:
            stats.update(roll["stats"])
        stats["weight"] = batch["index"].shape[0]
        return res.loss, stats

    # ---------------------------------------------------------------- validation
    @torch.no_grad()
    def _validate(self, model, batch: dict) -> tuple[torch.Tensor, dict]:
        o = self.opts
        B = batch["index"].shape[0]
        if self.valid_reward is None:
            raise ValueError("grpo validation needs a validation reward (--valid_data_dir with --reward audio)")
        # a seed fixed by the rows: the same draws at every validation, so that validations compare weights
        cfg = dataclasses.replace(o.sampling, num_candidates=1, seed=int(batch["index"].sum()))
        tags = None if model.config.num_tags == 0 else torch.zeros_like(batch["text_lens"])
        res = sample(model, batch["text"], batch["text_lens"], cfg, prompt=batch["prompt"],
                     prompt_lens=batch["prompt_lens"], target_text_lens=batch["target_text_lens"], tags=tags)
        tokens = [t.clone() for t in res.tokens]
        scores = self.valid_reward(tokens, self._reward_rows(batch, 1))
        reward = scores["reward"].float()
        stats: dict[str, Any] = {"reward": reward.mean()}
        stats.update({f"reward_{k}": v.float().mean() for k, v in scores.items() if k not in ("reward", "cer")})
        if "cer" in scores:
            stats["cer"] = 100.0 * scores["cer"].float().mean()
        stats["gen_len"] = torch.tensor([len(t) for t in tokens], dtype=torch.float32).mean()
        stats["cut"] = 1.0 - res.finished.float().mean()
        if self.reference is not None:  # along the ground-truth tokens, as the other methods report kl
            _, mask, out = forward_rows(model, batch, ("chosen",))
            ref_logits = forward_rows(self.reference, batch, ("chosen",))[2].logits
            stats["kl"] = masked_token_mean(token_kl(out.logits, ref_logits), mask)
        stats["weight"] = B
        return -reward.mean(), stats
