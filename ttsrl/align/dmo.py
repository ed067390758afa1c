"""DMO: a few-step flow student distilled by distribution matching and trained through metric losses.

DMOSpeech (Li et al. 2025) distils a many-step flow/diffusion TTS into a few-step student with
distribution matching distillation (DMD2, Yin et al. 2024); with a few-step student the gradient of
a differentiable metric reaches the generator, so the student is also trained for intelligibility
(a CTC loss) and for speaker similarity (a speaker-verification loss). Here it works on the
acoustic model of stage 4 (tokens + prompt -> mel); the codec LM is untouched.

Models (:class:`DMOModel`, the Trainer's model; its state is the two trainable ones):

- the **student**: the teacher's architecture and weights, sampled in ``student_steps`` steps
  without guidance by the re-noising sampler (``FlowMatching.solve(..., solver="renoise")``);
- the **fake score**: a flow model, also started from the teacher, trained online with the
  flow-matching loss on the student's (detached) outputs;
- frozen, outside the state dict: the **teacher** (the real score, with ``teacher_cfg`` guidance),
  the **recognizer** (the speech tokenizer's encoder and CTC head on mel: not the judge) and the
  **speaker encoder** (``ttsrl.models.speaker_encoder``: not the SIM judge).

One training batch (ground-truth tokens and mel; the prompt is a random prefix of each target, as
the teacher was trained)::

    k ~ U{0 .. N-1}                             the student step that gets the gradient
    x  = student chain from noise to step k     (steps < k without grad: DMD2's backward simulation)
    fake:      L_fake = flow-matching loss of the fake model toward sg(x)        every batch
    generator: L_G = dmd_weight L_dmd(x; teacher, fake)                          every gen_update_ratio-th batch
                   + ctc_weight CTC(recognizer(mel(x)), text) + sv_weight (1 - cos(spk(x), spk(ground truth)))
                   [+ regression_weight |x - teacher ODE from the same noise|, at k = 0]
    loss = L_fake + L_G                          (disjoint parameters: the student gets no gradient
                                                  from L_fake, the fake none from L_G)

On a batch without the generator update the student has no gradient at all, so the optimizer
leaves it as it is (DMD2's two time-scale update: the fake model learns ``gen_update_ratio``
times as often). The metric losses switch on after ``metric_start`` generator updates (DMOSpeech2
starts them after the distillation has run a while). The CTC loss reads the whole utterance
(prompt frames are the ground truth) against its whole text; the SV loss compares the generated
frames (a crop of at most ``sv_crop``) with the ground-truth utterance.

Validation: the student samples every dev utterance (``student_steps``, fixed noise, a prompt of its
own first third, as the flow task's metrics); ``ctc`` (the recognizer's CTC loss per character on
the sampled mel), ``cer`` (its greedy transcript, %), ``sim`` (speaker-encoder cosine to the ground
truth), ``mel_l1``; ``loss`` = ``ctc``.

Usage (``ttsrl.bin.train_dmo`` runs it all)::

    model = DMOModel.from_teacher(load_flow("exp/base/flow"), DMOOptions(student_steps=4))
    loss_fn = DMOLoss(opts, teacher, recognizer, speaker)     # frozen models
    loss, stats = loss_fn(model, batch)                       # the Trainer's compute_loss
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ttsrl.losses.dmo import dmd_loss
from ttsrl.losses.speaker import speaker_cosine_loss
from ttsrl.models.ctc import ctc_loss_per_unit, greedy_ctc
from ttsrl.models.flow import FlowConditions, FlowMatching, masked_mse, ot_path, predict_x1, renoise
from ttsrl.models.speaker_encoder import crop_windows
from ttsrl.models.speech_tokenizer import edit_distance
from ttsrl.train.trainer import unwrap_model
from ttsrl.utils.config import option

__all__ = ["DMOLoss", "DMOModel", "DMOOptions"]


@dataclass
class DMOOptions:
    student_steps: int = option(4, "sampling steps of the student (1, 2 or 4 in DMOSpeech); it is trained on them")
    teacher_cfg: float = option(0.7, "classifier-free guidance of the teacher's (real) score: the guided "
                                     "distribution the student learns (the recipe decodes the teacher at 0.7)")
    gen_update_ratio: int = option(5, "batches per student update; the fake score model learns on every batch "
                                      "(DMD2's two time-scale rule: 5)")
    dmd_weight: float = option(1.0, "weight of the distribution matching loss (0: no distillation, metric losses only)")
    ctc_weight: float = option(0.0, "weight of the CTC loss of the recognizer (the speech tokenizer's CTC head) "
                                    "on the student's mel")
    sv_weight: float = option(0.0, "weight of the speaker-verification loss (1 - cosine of speaker-encoder "
                                   "embeddings of the student's mel and of the ground truth)")
    regression_weight: float = option(0.0, "weight of an L1 regression to the teacher's ODE output from the same "
                                           "noise (on batches whose graded step is the first)")
    regression_nfe: int = option(10, "ODE steps of the teacher for the regression target")
    metric_start: int = option(0, "student updates before the CTC and SV losses switch on")
    t_min: float = option(0.0, "the DMD loss noises the student's output to t ~ U(t_min, t_max)")
    t_max: float = option(1.0, "upper end of that time")
    sv_crop: int = option(300, "speaker loss: at most this many generated frames (a random window)")

    def __post_init__(self) -> None:
        bad = []
        if self.student_steps < 1:
            bad.append(f"student_steps={self.student_steps} (>= 1)")
        if self.gen_update_ratio < 1:
            bad.append(f"gen_update_ratio={self.gen_update_ratio} (>= 1)")
        if not 0 <= self.t_min < self.t_max <= 1:
            bad.append(f"t_min={self.t_min}, t_max={self.t_max} (0 <= t_min < t_max <= 1)")
        for name in ("dmd_weight", "ctc_weight", "sv_weight", "regression_weight", "teacher_cfg"):
            if getattr(self, name) < 0:
                bad.append(f"{name}={getattr(self, name)} (>= 0)")
        if self.dmd_weight + self.ctc_weight + self.sv_weight + self.regression_weight == 0:
            bad.append("every loss weight is 0")
        if self.regression_nfe < 1 or self.sv_crop < 10:
            bad.append(f"regression_nfe={self.regression_nfe} (>= 1), sv_crop={self.sv_crop} (>= 10)")
        if bad:
            raise ValueError("DMO options: " + "; ".join(bad))


class DMOModel(nn.Module):
    """The trainable pair: the few-step student and the fake score model (both flow models), and a
    count of training batches (a buffer, so that a resumed run keeps the update rhythm)."""

    def __init__(self, student: FlowMatching, fake: FlowMatching):
        super().__init__()
        self.student, self.fake = student, fake
        self.register_buffer("batches", torch.zeros((), dtype=torch.long))

    @classmethod
    def from_teacher(cls, teacher: FlowMatching) -> DMOModel:
        """Student and fake score both start as trainable copies of ``teacher`` (frozen or not)."""
        return cls(*(copy.deepcopy(teacher).train().requires_grad_(True) for _ in range(2)))

    def forward(self, loss_fn: DMOLoss, batch: dict) -> tuple[torch.Tensor, dict]:
        # the whole step runs inside forward, so that DDP sees it (its reducer is prepared here)
        return loss_fn.step(self, batch)


class DMOLoss:
    """The Trainer's ``compute_loss`` for a :class:`DMOModel` (see the module docstring).

    ``teacher`` (a FlowMatching), ``recognizer`` (a SpeechTokenizer; needed when ``ctc_weight > 0``
    and for validation) and ``speaker`` (a SpeakerEncoder; needed when ``sv_weight > 0``) are frozen
    here. Batches: ``collate_token_mel`` items plus ``text``/``text_lens`` (the recognizer's units)."""

    def __init__(self, opts: DMOOptions, teacher: FlowMatching, recognizer: nn.Module | None = None,
                 speaker: nn.Module | None = None):
        if opts.ctc_weight > 0 and recognizer is None:
            raise ValueError("ctc_weight > 0 needs a recognizer (the speech tokenizer)")
        if opts.sv_weight > 0 and speaker is None:
            raise ValueError("sv_weight > 0 needs a speaker encoder")
        self.opts = opts
        self.teacher = teacher.eval().requires_grad_(False)
        self.recognizer = recognizer.eval().requires_grad_(False) if recognizer is not None else None
        self.speaker = speaker.eval().requires_grad_(False) if speaker is not None else None

    def to(self, device: torch.device) -> DMOLoss:
        for m in (self.teacher, self.recognizer, self.speaker):
            if m is not None:
                m.to(device)
        return self

    def __call__(self, model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict]:
        if model.training:
            return model(self, batch)
        return self.validate(unwrap_model(model), batch)

    # ------------------------------------------------------------------ training
    def step(self, model: DMOModel, batch: dict) -> tuple[torch.Tensor, dict]:
        o = self.opts
        student, fake = model.student, model.fake
        model.batches += 1
        gen = int(model.batches) % o.gen_update_ratio == 0
        with torch.set_grad_enabled(gen):  # random prompt prefixes, as the teacher was trained
            c = student.conditions(batch["speech"], batch["speech_lens"], batch["mel"], batch["mel_lens"],
                                   spk=batch.get("spk"), cfg_dropout=False)
        B, dev = c.x1.shape[0], c.x1.device
        k = int(torch.randint(0, o.student_steps, ()))
        noise = torch.randn_like(c.x1)
        x = self._student_sample(student, c, noise, k, grad=gen)  # (B, C, T) normalized mel
        stats: dict[str, Any] = {"gen": float(gen)}

        # the fake score model: flow matching toward the student's samples, under its own conditions
        fc = self.conditions(fake, batch, c)
        t = torch.rand(B, device=dev)
        x_t, u = ot_path(torch.randn_like(x), x.detach(), t.view(B, 1, 1), fake.config.sigma_min)
        loss_fake = masked_mse(fake.velocity(x_t, t, fc), u, c.loss_mask)
        loss = loss_fake
        stats["loss_fake"] = loss_fake.detach()
        if gen:
            loss_gen, gen_stats = self._generator_loss(model, c, fc, x, noise, k, batch)
            loss = loss + loss_gen
            stats.update(gen_stats)
        stats["weight"] = int(c.loss_mask.sum())
        return loss, stats

    def _student_sample(self, student: FlowMatching, c: FlowConditions, noise: torch.Tensor, k: int,
                        grad: bool) -> torch.Tensor:
        """The student's clean prediction at step ``k`` of its chain from ``noise`` (steps < k without grad)."""
        n = self.opts.student_steps
        x = noise
        with torch.no_grad():
            for j in range(k):
                x = renoise(student.predict_clean(x, j / n, c), (j + 1) / n, student.config.sigma_min)
        with torch.set_grad_enabled(grad):
            return student.predict_clean(x, k / n, c)

    @staticmethod
    def conditions(flow: FlowMatching, batch: dict, like: FlowConditions) -> FlowConditions:
        """``flow``'s own conditions of a batch (its token encoder and speaker projection), with the prompts of ``like``."""
        return flow.conditions(batch["speech"], batch["speech_lens"], batch["mel"], batch["mel_lens"],
                               spk=batch.get("spk"), prompt_lens=like.pmask.sum(1), cfg_dropout=False)

    def _generator_loss(self, model: DMOModel, c: FlowConditions, fc: FlowConditions, x: torch.Tensor,
                        noise: torch.Tensor, k: int, batch: dict) -> tuple[torch.Tensor, dict]:
        o = self.opts
        B, dev = x.shape[0], x.device
        mask = c.loss_mask
        loss = x.new_zeros(())
        stats: dict[str, Any] = {}
        with torch.no_grad():
            tc = self.conditions(self.teacher, batch, c)
        if o.dmd_weight > 0:
            with torch.no_grad():
                t = o.t_min + (o.t_max - o.t_min) * torch.rand(B, device=dev)
                sigma = self.teacher.config.sigma_min
                x_t, _ = ot_path(torch.randn_like(x), x, t.view(B, 1, 1), sigma)
                x1_real = predict_x1(x_t, self.teacher.velocity(x_t, t, tc, o.teacher_cfg), t.view(B, 1, 1), sigma)
                x1_fake = predict_x1(x_t, model.fake.velocity(x_t, t, fc), t.view(B, 1, 1), sigma)
            l_dmd = dmd_loss(x, x1_real, x1_fake, mask)
            loss = loss + o.dmd_weight * l_dmd
            stats["loss_dmd"] = l_dmd.detach()
        if o.regression_weight > 0 and k == 0:
            with torch.no_grad():
                target = self.teacher.solve(noise, tc, o.regression_nfe, o.teacher_cfg)
            m = mask.unsqueeze(1).to(x.dtype)
            l_reg = ((x - target).abs() * m).sum() / (m.sum() * x.shape[1]).clamp(min=1)
            loss = loss + o.regression_weight * l_reg
            stats["loss_reg"] = l_reg.detach()
        gen_updates = int(model.batches) // o.gen_update_ratio
        if gen_updates > o.metric_start and (o.ctc_weight > 0 or o.sv_weight > 0):
            mel = model.student.mvn.inverse(x).transpose(1, 2)  # (B, T, C) raw log-mel
            lens = c.mask.sum(1)
            if o.ctc_weight > 0:
                log_probs, lp_lens = self.recognizer.mel_ctc_log_probs(mel, lens)
                l_ctc = ctc_loss_per_unit(log_probs, lp_lens, batch["text"], batch["text_lens"])
                loss = loss + o.ctc_weight * l_ctc
                stats["loss_ctc"] = l_ctc.detach()
            if o.sv_weight > 0:
                crop, crop_lens = crop_windows(mel, c.pmask.sum(1), lens, o.sv_crop)
                with torch.no_grad():
                    ref = self.speaker(batch["mel"].transpose(1, 2), batch["mel_lens"])
                l_sv = speaker_cosine_loss(self.speaker(crop, crop_lens), ref)
                loss = loss + o.sv_weight * l_sv
                stats["loss_sv"] = l_sv.detach()
        return loss, stats

    # ------------------------------------------------------------------ validation
    @torch.no_grad()
    def sample(self, flow: FlowMatching, batch: dict, generator: torch.Generator | None = None,
               steps: int | None = None, solver: str = "renoise", cfg_scale: float = 0.0
               ) -> tuple[torch.Tensor, FlowConditions]:
        """A flow model's mel (B, C, T) (normalized) of a batch, from a prompt of each utterance's first
        third; by default the student's way: ``student_steps`` of the renoise sampler, no guidance."""
        tf = flow.config.token_frames
        lens = torch.minimum(batch["mel_lens"], batch["speech_lens"] * tf)
        prompt = (batch["speech_lens"] // 3) * tf
        c = flow.conditions(batch["speech"], batch["speech_lens"], batch["mel"], batch["mel_lens"],
                            spk=batch.get("spk"), prompt_lens=torch.minimum(prompt, lens), cfg_dropout=False)
        noise = torch.randn(c.x1.shape, device=c.x1.device, generator=generator)
        x = flow.solve(noise, c, steps or self.opts.student_steps, cfg_scale, solver, generator)
        return x, c

    @torch.no_grad()
    def validate(self, model: DMOModel, batch: dict) -> tuple[torch.Tensor, dict]:
        g = torch.Generator(device=batch["mel"].device).manual_seed(0)
        x, c = self.sample(model.student, batch, g)
        stats = evaluate_mel(x, c, model.student, batch, self.recognizer, self.speaker)
        loss = torch.as_tensor(stats.get("ctc", stats["mel_l1"]))
        return loss, stats


def evaluate_mel(x: torch.Tensor, c: FlowConditions, flow: FlowMatching, batch: dict, recognizer=None,
                 speaker=None) -> dict:
    """Metrics of sampled normalized mel ``x`` against the batch: ``mel_l1`` (raw log-mel, generated
    frames), ``ctc`` and ``cer`` (the recognizer; ``batch['text']`` in its units), ``sim`` (speaker cosine)."""
    mask = c.loss_mask
    mel = flow.mvn.inverse(x)
    target = flow.mvn.inverse(c.x1)
    m = mask.unsqueeze(1).to(x.dtype)
    stats: dict[str, Any] = {"mel_l1": float(((mel - target).abs() * m).sum() / (m.sum() * x.shape[1]).clamp(min=1)),
                             "weight": int(batch["text_lens"].sum()) if "text_lens" in batch else int(mask.sum())}
    lens = c.mask.sum(1)
    mel_btc = mel.transpose(1, 2)
    if recognizer is not None and "text" in batch:
        log_probs, lp_lens = recognizer.mel_ctc_log_probs(mel_btc, lens)
        stats["ctc"] = float(ctc_loss_per_unit(log_probs, lp_lens, batch["text"], batch["text_lens"]))
        errors = chars = 0
        for ref, n, hyp in zip(batch["text"].tolist(), batch["text_lens"].tolist(), greedy_ctc(log_probs, lp_lens),
                               strict=True):
            errors += edit_distance(ref[:n], hyp)
            chars += n
        stats["cer"] = 100.0 * errors / max(chars, 1)
    if speaker is not None:
        crop, crop_lens = crop_windows(mel_btc, c.pmask.sum(1), lens, 10**6)
        e = speaker(crop, crop_lens)
        ref = speaker(batch["mel"].transpose(1, 2), batch["mel_lens"])
        stats["sim"] = float(F.cosine_similarity(e, ref, dim=-1).mean())
    return stats


def student_flow_state(model: DMOModel) -> dict[str, torch.Tensor]:
    """The student's state dict (a FlowMatching's, for a ``model.pt`` that ``load_flow`` reads)."""
    return {k: v.detach().cpu() for k, v in model.student.state_dict().items()}
