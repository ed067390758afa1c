"""Fixtures of the data-layer tests: a valid toy data directory (3 speakers x 2 utterances)."""

from pathlib import Path

import pytest

from ttsrl.data.toy import make_toy_data_dir


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A valid data dir: 16 kHz 0.2 s tones, text, utt2spk, spk2utt, utt2gender/emo/dur."""
    return Path(make_toy_data_dir(tmp_path / "data"))
