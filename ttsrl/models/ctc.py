"""CTC decoding shared by every model with a CTC head (speech tokenizer, judge ASR, reward model)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def ctc_loss_per_unit(log_probs: torch.Tensor, lens: torch.Tensor, text: torch.Tensor,
                      text_lens: torch.Tensor) -> torch.Tensor:
    """CTC loss (Graves et al. 2006) of ``(B, T, V)`` log-probs (blank 0), summed over the batch / target units.

    A target that cannot fit its frames contributes 0, not inf (``zero_infinity``).
    """
    loss = F.ctc_loss(log_probs.transpose(0, 1), text, lens, text_lens, blank=0, reduction="sum",
                      zero_infinity=True)
    return loss / text_lens.sum().clamp(min=1)


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
