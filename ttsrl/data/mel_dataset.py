"""Datasets for the acoustic side: speech tokens paired with mel (flow model), waveform segments (vocoder).

:class:`TokenMelDataset` pairs ``<token_dir>/speech.scp`` (stage 3: int32 tokens, 25 Hz) with
``feats.scp`` (stage 2: ``(T, n_mels)`` float32 log-mel, 100 Hz) and optionally a per-utterance
speaker embedding scp (``(D,)`` float vectors). Token ``i`` covers mel frames ``4i .. 4i+3``; the
mel is cropped, or padded by repeating its last frame, to exactly ``4 L`` frames, and an
utterance whose lengths differ by more than ``max_mismatch`` frames is an error that names it.
The prompt mel of training is a random prefix of the target, chosen inside the model.

:class:`WavSegmentDataset` reads the wavs of a Kaldi data dir (resampled to ``sample_rate``)
and cuts a segment of ``segment_frames`` mel frames: at a random offset in training, from the
start otherwise (``segment_frames=0``: whole utterances). Shorter utterances are zero-padded.

Usage::

    ds = TokenMelDataset("dump/tokens/train", "dump/feats/train/feats.scp")
    loader = build_loader(ds, ds.lengths, max_tokens=8000, collate_fn=collate_token_mel)
    batch = next(iter(loader))   # {"utts", "speech", "speech_lens", "mel" (B, 80, T), "mel_lens"[, "spk"]}

    ds = WavSegmentDataset("data/train", segment_frames=64, random_offset=True)
    batch = collate_wavs([ds[0], ds[1]])   # {"utts", "wav" (B, N), "wav_lens"}
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ttsrl.data.arrays import read_scp
from ttsrl.data.audio import audio_info, load_audio
from ttsrl.data.datadir import DataDirError, read_kv
from ttsrl.data.token_dataset import pad_1d


class TokenMelDataset(Dataset):
    """(speech tokens, mel[, speaker embedding]) per utterance, in sorted utt order."""

    def __init__(self, token_dir: str, feats_scp: str, spk_scp: str | None = None,
                 utts: Sequence[str] | None = None, token_frames: int = 4, max_mismatch: int = 8):
        self.token_dir, self.feats_scp = token_dir, feats_scp
        self.speech = read_scp(os.path.join(token_dir, "speech.scp"))
        self.feats = read_scp(feats_scp)
        self.spk = read_scp(spk_scp) if spk_scp else None
        self.token_frames, self.max_mismatch = token_frames, max_mismatch
        have = set(self.speech.keys()) & set(self.feats.keys())
        if self.spk is not None:
            have &= set(self.spk.keys())
        if utts is None:
            missing = set(self.speech.keys()) - have
            if missing:
                raise DataDirError(f"{token_dir}: {len(missing)} utterances have speech tokens but no features "
                                   f"in {feats_scp}{' or speaker embedding' if spk_scp else ''}, "
                                   f"e.g. {sorted(missing)[:3]}")
            utts = have
        else:
            missing = [u for u in utts if u not in have]
            if missing:
                raise DataDirError(f"{token_dir}: requested utterances without tokens/features: {missing[:3]}")
        self.utts = sorted(utts)
        if not self.utts:
            raise DataDirError(f"{token_dir}: no utterances")
        self._token_lens = self._read_token_lens()

    def _read_token_lens(self) -> dict[str, int]:
        path = os.path.join(self.token_dir, "utt2num_tokens")
        if os.path.exists(path):
            return {u: int(n) for u, n in read_kv(path).items()}
        frames = os.path.join(os.path.dirname(self.feats_scp), "utt2num_frames")
        if os.path.exists(frames):  # close enough for bucketing
            return {u: max(1, int(n) // self.token_frames) for u, n in read_kv(frames).items()}
        return {u: len(self.speech[u]) for u in self.utts}

    @property
    def lengths(self) -> np.ndarray:
        """Mel frames per item (4 x tokens), for bucketing: ``max_tokens`` counts frames."""
        return np.array([self._token_lens.get(u, 1) * self.token_frames for u in self.utts])

    def __len__(self) -> int:
        return len(self.utts)

    def __getitem__(self, i: int) -> dict:
        u = self.utts[i]
        tokens = np.array(self.speech[u], dtype=np.int64).reshape(-1)
        mel = np.array(self.feats[u], dtype=np.float32)  # (T, n_mels), a writable copy
        if mel.ndim != 2 or len(tokens) == 0:
            raise DataDirError(f"{self.feats_scp}: utterance {u}: empty tokens or features of shape {mel.shape}")
        T = len(tokens) * self.token_frames
        if abs(mel.shape[0] - T) > self.max_mismatch:
            raise DataDirError(f"utterance {u}: {mel.shape[0]} mel frames for {len(tokens)} speech tokens "
                               f"(expected about {T}); features and tokens do not match")
        if mel.shape[0] >= T:
            mel = mel[:T]
        else:
            mel = np.concatenate([mel, np.repeat(mel[-1:], T - mel.shape[0], axis=0)])
        item = {"utt": u, "speech": torch.from_numpy(tokens), "mel": torch.from_numpy(mel)}
        if self.spk is not None:
            item["spk"] = torch.from_numpy(np.array(self.spk[u], dtype=np.float32).reshape(-1))
        return item


def collate_token_mel(items: list[dict]) -> dict:
    """Pads tokens (0) and mel (its last value is irrelevant: masked); mel as (B, n_mels, T)."""
    speech, speech_lens = pad_1d([it["speech"] for it in items])
    mels = [it["mel"] for it in items]
    T = max(m.shape[0] for m in mels)
    mel = torch.zeros(len(items), mels[0].shape[1], T)
    for i, m in enumerate(mels):
        mel[i, :, : m.shape[0]] = m.T
    batch = {"utts": [it["utt"] for it in items], "speech": speech, "speech_lens": speech_lens,
             "mel": mel, "mel_lens": torch.tensor([m.shape[0] for m in mels], dtype=torch.long)}
    if "spk" in items[0]:
        batch["spk"] = torch.stack([it["spk"] for it in items])
    return batch


class WavSegmentDataset(Dataset):
    """Waveform segments of a data dir's utterances (wav.scp; segments files are honored)."""

    def __init__(self, data_dir: str, segment_frames: int = 64, random_offset: bool = True,
                 sample_rate: int = 16000, hop_length: int = 160, utts: Sequence[str] | None = None):
        self.data_dir = data_dir
        self.wav_scp = read_kv(os.path.join(data_dir, "wav.scp"))
        seg_path = os.path.join(data_dir, "segments")
        self.segments = {}
        if os.path.exists(seg_path):
            for utt, v in read_kv(seg_path).items():
                rec, start, end = v.split()
                self.segments[utt] = (rec, float(start), float(end))
        keys = self.segments.keys() if self.segments else self.wav_scp.keys()
        self.utts = sorted(utts if utts is not None else keys)
        if not self.utts:
            raise DataDirError(f"{data_dir}: no utterances")
        self.segment_frames, self.random_offset = segment_frames, random_offset
        self.sample_rate, self.hop_length = sample_rate, hop_length
        self._frames = self._read_frames()

    def _read_frames(self) -> dict[str, int]:
        path = os.path.join(self.data_dir, "utt2dur")
        if os.path.exists(path):
            durs = {u: float(d) for u, d in read_kv(path).items()}
        elif self.segments:
            durs = {u: end - start for u, (_, start, end) in self.segments.items()}
        else:
            durs = {}
            for u in self.utts:
                info = audio_info(self.wav_scp[u])
                durs[u] = info.duration
        return {u: int(durs.get(u, 1.0) * self.sample_rate) // self.hop_length + 1 for u in self.utts}

    @property
    def lengths(self) -> np.ndarray:
        """Mel frames per item (the segment length when segmenting)."""
        n = np.array([self._frames[u] for u in self.utts])
        return np.minimum(n, self.segment_frames) if self.segment_frames > 0 else n

    def __len__(self) -> int:
        return len(self.utts)

    def __getitem__(self, i: int) -> dict:
        u = self.utts[i]
        if self.segments:
            rec, start, end = self.segments[u]
            wav, _ = load_audio(self.wav_scp[rec], self.sample_rate, segment=(start, end))
        else:
            wav, _ = load_audio(self.wav_scp[u], self.sample_rate)
        if len(wav) == 0:
            raise DataDirError(f"{self.data_dir}: utterance {u}: empty audio")
        if self.segment_frames > 0:
            n = (self.segment_frames - 1) * self.hop_length  # samples whose framing gives segment_frames frames
            if len(wav) > n:
                start = int(torch.randint(0, len(wav) - n + 1, ()).item()) if self.random_offset else 0
                wav = wav[start:start + n]
            else:
                wav = np.pad(wav, (0, n - len(wav)))  # silence: the model learns it too
        return {"utt": u, "wav": torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))}


def collate_wavs(items: list[dict]) -> dict:
    wav, wav_lens = pad_1d([it["wav"] for it in items], value=0)
    return {"utts": [it["utt"] for it in items], "wav": wav, "wav_lens": wav_lens}
