"""CTC decoding shared by every model with a CTC head (speech tokenizer, judge ASR, reward model)."""
from __future__ import annotations

import torch


def greedy_ctc(log_probs: torch.Tensor, lens: torch.Tensor, blank: int = 0) -> list[list[int]]:
    """Best path of ``(B, T, V)`` log-probs: argmax, merge repeats, drop blanks; frames past ``lens`` ignored."""
    best = log_probs.argmax(dim=-1).cpu().tolist()
    out = []
    for row, n in zip(best, lens.tolist(), strict=True):
        seq, prev = [], None
        for t in row[: int(n)]:
            if t != prev and t != blank:
                seq.append(t)
            prev = t
        out.append(seq)
    return out
