"""Text + prompt -> speech: codec LM -> flow matching -> vocoder, batched and resumable.

Zero-shot prompting as in CosyVoice: the prompt audio is tokenized by the speech tokenizer;
its transcript is put before the text to speak, its tokens start the LM's speech region,
and its log-mel and tokens condition the flow model (so the voice follows the prompt).
With ``lm_prompt=False`` only the flow model is prompted: the LM reads the text alone and the
voice comes from the flow's prompt mel (a small LM follows the text better without the prompt
to continue; see the mini_en recipe). With ``golden`` tokens (resynthesis) the LM is skipped.

The texts are encoded with the LM's text units: the ``tokens.txt`` / ``token_type`` /
``bpe.model`` that training put in the LM's folder (char, phonemes or BPE; see
``ttsrl.text.tokenizer.load_text_tokenizer``). Without an LM, or for an LM folder without
``tokens.txt`` (older models), they are the speech tokenizer's CTC units. ``ctc_tokenizer``
is always the latter (what the tokenizer's CTC head reads, e.g. for an audio reward).

Usage::

    tts = TTSPipeline.from_dirs(lm="exp/base/lm/model.pt", flow="exp/base/flow/model.pt",
                                tokenizer="exp/tokenizer")
    report = synthesize_requests(tts, requests, "exp/base/decode/test", SamplingConfig(top_k=50))

Every utterance is written as ``<out>/wav/<utt>.wav`` (atomically) and listed in
``<out>/wav.scp``; existing wavs are skipped, so an interrupted run resumes. An utterance
that fails (missing prompt, empty text, unknown symbols, a text too long for the LM) is
reported in ``<out>/errors`` with its reason and does not stop the others: a batch that
fails is synthesized again one utterance at a time, so only the bad ones fail. Letters the
text units cannot spell (``hello 你好 world`` for an English model) are named per utterance;
with ``strict_text`` the utterance fails, otherwise it is synthesized without them.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from ttsrl.data.audio import load_audio, write_wav
from ttsrl.data.datadir import write_kv
from ttsrl.data.token_dataset import collate_tokens, lm_input, pad_1d
from ttsrl.sample.sampler import SamplingConfig, sample, tag_ids
from ttsrl.text.tokenizer import UnpronounceableError, load_text_tokenizer
from ttsrl.utils.fileio import atomic_write_text

logger = logging.getLogger(__name__)


class UttError(ValueError):
    """A problem with one utterance's input; the others go on."""


@dataclass
class Request:
    utt: str
    text: str
    prompt_wav: str | None = None  # path or `cmd |` spec
    prompt_text: str = ""
    golden: np.ndarray | None = None  # speech tokens to resynthesize (skips the LM)


@dataclass
class FlowOptions:
    n_steps: int = field(default=10, metadata={"help": "ODE steps of the flow model (NFE; midpoint uses 2 per step)"})
    cfg_scale: float = field(default=0.7, metadata={"help": "classifier-free guidance scale (0 = off)"})
    solver: str = field(default="euler", metadata={"help": "ODE solver; renoise: the few-step sampler of a distilled "
                                                           "student (DMO; with --flow_cfg_scale 0)",
                                                   "choices": ("euler", "midpoint", "renoise")})
    temperature: float = field(default=1.0, metadata={"help": "scale of the flow's starting noise (Matcha-TTS's "
                                                                  "temperature; < 1: less varied output)"})
    seed: int = field(default=0, metadata={"help": "seed of the flow's starting noise"})


@dataclass
class SynthReport:
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    audio_seconds: float = 0.0
    compute_seconds: float = 0.0

    @property
    def rtf(self) -> float:
        """Real-time factor: compute time / audio time of what this run synthesized."""
        return self.compute_seconds / self.audio_seconds if self.audio_seconds else float("nan")


def lm_text_tokenizer(lm: str | os.PathLike):
    """The text tokenizer of a codec LM (its ``model.pt`` or folder): the units train_lm (or train_align)
    saved beside the model, or None for an LM folder without ``tokens.txt``."""
    lm = os.fspath(lm)
    folder = lm if os.path.isdir(lm) else os.path.dirname(os.path.abspath(lm))
    if not os.path.isfile(os.path.join(folder, "tokens.txt")):
        return None
    return load_text_tokenizer(folder)


class TTSPipeline:
    def __init__(self, lm, flow, tokenizer, text_tokenizer, vocoder, device, tag: str | None = None,
                 lm_prompt: bool = True, ctc_tokenizer=None, strict_text: bool = False):
        self.lm, self.flow, self.tokenizer, self.vocoder = lm, flow, tokenizer, vocoder
        self.strict_text = strict_text  # True: a text with letters the units cannot spell fails (else: a warning)
        self.tag = tag  # control tag of a Chain-of-Hindsight LM (None: "good" for such an LM)
        self.lm_prompt = lm_prompt  # False: the prompt conditions the flow model only
        if lm is not None:
            tag_ids(lm, tag, 1)  # a tag the LM does not have fails here, not per batch
        self.text_tokenizer = text_tokenizer  # the LM's text units
        self.ctc_tokenizer = ctc_tokenizer or text_tokenizer  # the speech tokenizer's CTC units
        self.device = device
        self.sample_rate = tokenizer.config.mel.sample_rate

    @classmethod
    def from_dirs(cls, lm: str | None, flow: str, tokenizer: str, vocoder: str = "griffin_lim",
                  vocoder_path: str | None = None, device: str | torch.device = "cpu",
                  tag: str | None = None, griffin_lim_iters: int = 32, lm_prompt: bool = True,
                  strict_text: bool = False) -> TTSPipeline:
        from ttsrl.models.codec_lm import load_codec_lm
        from ttsrl.models.flow import load_flow
        from ttsrl.models.speech_tokenizer import SpeechTokenizer, load_ctc_tokenizer
        from ttsrl.models.vocoder import build_vocoder

        tok = SpeechTokenizer.from_pretrained(tokenizer, device)
        ctc_tok = load_ctc_tokenizer(tokenizer)
        model = load_codec_lm(lm, device) if lm else None
        text_tok = lm_text_tokenizer(lm) if lm else None  # None: resynthesis, or an LM saved without its units
        if text_tok is not None and text_tok.vocab_size != model.config.text_vocab_size:
            raise ValueError(f"{lm}: the LM's text units ({text_tok.vocab_size} tokens.txt entries) do not fit its "
                             f"text vocabulary ({model.config.text_vocab_size})")
        return cls(lm=model, flow=load_flow(flow, device), tokenizer=tok,
                   text_tokenizer=ctc_tok if text_tok is None else text_tok,
                   vocoder=build_vocoder(vocoder, vocoder_path, device, mel_config=tok.config.mel,
                                         **({"n_iter": griffin_lim_iters} if vocoder == "griffin_lim" else {})),
                   device=device,
                   tag=tag,
                   lm_prompt=lm_prompt,
                   ctc_tokenizer=ctc_tok,
                   strict_text=strict_text)

    # ------------------------------------------------------------------ inputs
    def encode_text(self, utt: str, text: str, ctc: bool = False) -> list[int]:
        """Ids of ``text`` in the LM's units (``ctc``: the tokenizer's CTC units); UttError names the utterance."""
        tok = self.ctc_tokenizer if ctc else self.text_tokenizer
        dropped = "".join(tok.dropped_chars(text))
        if dropped:
            msg = f"the text of {utt!r} has characters the {tok.token_type} units cannot spell: {dropped!r}"
            if self.strict_text:
                raise UttError(f"{msg} (strict: the utterance fails; transliterate or remove them)")
            logger.warning("%s; synthesized without them", msg)
        try:
            ids, unknown = tok.tokens2ids(tok.text2tokens(text))
        except UnpronounceableError as e:
            raise UttError(str(e.for_utt(utt))) from None
        if unknown:
            raise UttError(f"unknown symbols {sorted(set(unknown))} in the text of {utt!r}")
        if not ids:
            raise UttError(f"nothing to say in the text of {utt!r}: all of {dropped!r} was dropped" if dropped
                           else f"empty text for {utt!r}")
        return ids

    def prepare(self, req: Request) -> dict:
        """Text ids, prompt tokens and prompt mel of one request; UttError names what is wrong."""
        if not req.text or not req.text.strip():
            raise UttError(f"empty text for {req.utt!r}")
        text = self.encode_text(req.utt, req.text)
        item = {"utt": req.utt, "text": text, "prompt_text": [], "prompt_tokens": np.zeros(0, np.int64),
                "prompt_mel": None, "golden": req.golden}
        if req.prompt_wav:
            try:
                wav, sr = load_audio(req.prompt_wav, self.sample_rate)
            except Exception as e:  # noqa: BLE001 - any unreadable prompt is this utterance's error
                raise UttError(f"prompt audio of {req.utt!r} cannot be read ({req.prompt_wav}): {e}") from e
            if len(wav) == 0:
                raise UttError(f"prompt audio of {req.utt!r} is empty ({req.prompt_wav})")
            mel, mel_lens = self.tokenizer.wav_to_mel(wav, sr)  # (1, T, n_mels)
            tokens, lens = self.tokenizer.encode(mel, mel_lens)
            item["prompt_tokens"] = tokens[0, : int(lens[0])].cpu().numpy()
            item["prompt_mel"] = mel[0, : int(mel_lens[0])].T.cpu()  # (n_mels, T)
            if req.prompt_text and self.lm_prompt:  # only the LM reads the prompt's transcript
                item["prompt_text"] = self.encode_text(req.utt, req.prompt_text)
        return item

    # ------------------------------------------------------------------ synthesis
    @torch.no_grad()
    def speech_tokens(self, items: list[dict], cfg: SamplingConfig) -> list[torch.Tensor]:
        """Golden tokens, or one LM sample per item (prompt text + text, prompt tokens; the text alone
        without ``lm_prompt``)."""
        if all(it["golden"] is not None for it in items):
            return [torch.as_tensor(np.asarray(it["golden"]), dtype=torch.long) for it in items]
        if self.lm is None:
            raise ValueError("no LM loaded: pass golden tokens or an LM")
        # without lm_prompt, prepare() left the prompt text out and the prompt tokens go to the flow model only
        batch = collate_tokens([lm_input(it["text"], it["prompt_text"], it["prompt_tokens"] if self.lm_prompt else None)
                                for it in items])
        dev = self.device
        out = sample(self.lm, batch["text"].to(dev), batch["text_lens"].to(dev), cfg,
                     prompt=batch["prompt"].to(dev), prompt_lens=batch["prompt_lens"].to(dev),
                     target_text_lens=batch["target_text_lens"].to(dev),
                     tags=tag_ids(self.lm, self.tag, len(items), dev))
        return out.tokens

    @torch.no_grad()
    def tokens_to_wav(self, items: list[dict], tokens: Sequence[torch.Tensor], opts: FlowOptions) -> list[np.ndarray]:
        toks, tok_lens = pad_1d([t.long() for t in tokens])
        kw = {}
        if any(it["prompt_mel"] is not None for it in items):
            if not all(it["prompt_mel"] is not None for it in items):
                raise ValueError("a batch mixes utterances with and without prompts")
            ptoks, plens = pad_1d([torch.as_tensor(it["prompt_tokens"], dtype=torch.long) for it in items])
            mels = [it["prompt_mel"] for it in items]
            mel_lens = torch.tensor([m.shape[1] for m in mels])
            pm = torch.full((len(mels), mels[0].shape[0], int(mel_lens.max())), float(np.log(1e-5)))
            for i, m in enumerate(mels):
                pm[i, :, : m.shape[1]] = m
            kw = {"prompt_tokens": ptoks.to(self.device), "prompt_token_lens": plens.to(self.device),
                  "prompt_mel": pm.to(self.device), "prompt_mel_lens": mel_lens.to(self.device)}
        gen = torch.Generator(device=self.device).manual_seed(opts.seed)
        mel, mel_lens = self.flow.synthesize(toks.to(self.device), tok_lens.to(self.device), n_steps=opts.n_steps,
                                             cfg_scale=opts.cfg_scale, solver=opts.solver, generator=gen,
                                             temperature=opts.temperature, **kw)
        wav, wav_lens = self.vocoder.mel_to_wav(mel, mel_lens)
        return [wav[i, : int(wav_lens[i])].float().cpu().numpy() for i in range(len(items))]


def synthesize_requests(tts: TTSPipeline, requests: Sequence[Request], out_dir: str, cfg: SamplingConfig,
                        flow_opts: FlowOptions | None = None, batch_size: int = 8, suffix: str = "") -> SynthReport:
    """Synthesizes every request not yet on disk; writes wav/, wav<suffix>.scp, errors<suffix> and (when it
    synthesized anything) rtf<suffix>, the real-time factor.

    ``suffix`` (e.g. ``.2``) names the lists of one job of several that share ``out_dir``.
    """
    flow_opts = flow_opts or FlowOptions()
    wav_dir = os.path.join(out_dir, "wav")
    os.makedirs(wav_dir, exist_ok=True)
    report = SynthReport()
    todo = []
    for req in requests:
        path = os.path.join(wav_dir, f"{req.utt}.wav")
        if os.path.exists(path):
            report.skipped.append(req.utt)
        else:
            todo.append(req)
    prepared = []
    for req in todo:
        try:
            prepared.append(tts.prepare(req))
        except UttError as e:
            report.errors[req.utt] = str(e)
            logger.error("%s", e)
    prepared.sort(key=lambda it: len(it["text"]))  # similar lengths share a batch

    def run_batch(items: list[dict], seed: int) -> None:
        """Synthesize ``items`` together, then write their wavs (a failure while synthesizing writes none)."""
        t0 = time.perf_counter()
        tokens = tts.speech_tokens(items, SamplingConfig(**{**cfg.__dict__, "seed": seed}))
        for it, t in zip(items, tokens, strict=True):
            if len(t) == 0:
                report.errors[it["utt"]] = "no speech tokens to synthesize (the LM ended at once)"
        kept = [(it, t) for it, t in zip(items, tokens, strict=True) if len(t) > 0]
        if not kept:
            return
        items, tokens = [k[0] for k in kept], [k[1] for k in kept]
        wavs = tts.tokens_to_wav(items, tokens, flow_opts)
        report.compute_seconds += time.perf_counter() - t0
        for it, wav in zip(items, wavs, strict=True):
            write_wav(os.path.join(wav_dir, f"{it['utt']}.wav"), wav, tts.sample_rate)
            report.audio_seconds += len(wav) / tts.sample_rate
            report.written.append(it["utt"])

    for b in tqdm(range(0, len(prepared), batch_size), desc=f"synthesizing {os.path.basename(out_dir)}",
                  unit="batch"):
        items = prepared[b : b + batch_size]
        try:
            run_batch(items, cfg.seed + b)
            continue
        except Exception as e:  # noqa: BLE001 - a failing batch is reported and the run goes on
            if len(items) == 1:
                report.errors[items[0]["utt"]] = f"synthesis failed: {type(e).__name__}: {e}"
                logger.exception("%s failed", items[0]["utt"])
                continue
            logger.warning("batch %d failed (%s: %s); its %d utterances are synthesized one at a time",
                           b // batch_size, type(e).__name__, e, len(items))
        for it in items:  # one bad utterance (e.g. a text longer than the LM's max_len) fails alone
            try:
                run_batch([it], cfg.seed + b)
            except Exception as e:  # noqa: BLE001
                report.errors[it["utt"]] = f"synthesis failed: {type(e).__name__}: {e}"
                logger.error("%s failed: %s: %s", it["utt"], type(e).__name__, e)
    done = {f[: -len(".wav")] for f in os.listdir(wav_dir) if f.endswith(".wav")}
    wanted = {r.utt for r in requests}
    write_kv(os.path.join(out_dir, f"wav{suffix}.scp"),
             {u: os.path.abspath(os.path.join(wav_dir, f"{u}.wav")) for u in sorted(done & wanted)})
    write_kv(os.path.join(out_dir, f"errors{suffix}"), report.errors)
    if report.written:
        atomic_write_text(os.path.join(out_dir, f"rtf{suffix}"), f"{report.rtf:.4f}\n")
    logger.info("%s: %d written, %d already there, %d failed; RTF %.3f", out_dir, len(report.written),
                len(report.skipped), len(report.errors), report.rtf)
    return report


def read_requests(data_dir: str | None, seedtts_list: str | None, golden_scp: str | None = None,
                  use_prompts: bool = True) -> list[Request]:
    """Requests from a data dir (text, prompt.scp, prompt_text) or a Seed-TTS-Eval list."""
    from ttsrl.data.arrays import read_scp

    if seedtts_list:
        from ttsrl.data.seedtts import read_seedtts_list

        reqs = [Request(it.utt, it.infer_text, it.prompt_wav if use_prompts else None,
                        it.prompt_text if use_prompts else "") for it in read_seedtts_list(seedtts_list)]
    else:
        from ttsrl.data.datadir import DataDir

        d = DataDir.load(data_dir)
        prompts = d.extra.get("prompt.scp", {}) if use_prompts else {}
        prompt_text = d.extra.get("prompt_text", {}) if use_prompts else {}
        reqs = [Request(u, d.text[u], prompts.get(u), prompt_text.get(u, "")) for u in d.utts]
    if golden_scp:
        golden = read_scp(golden_scp)
        for r in reqs:
            if r.utt not in golden:
                raise UttError(f"{golden_scp}: no tokens for utterance {r.utt!r}")
            r.golden = np.asarray(golden[r.utt])
    return reqs
