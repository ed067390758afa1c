"""The speaker encoder: unit embeddings, padding that changes nothing, gradients into the mel, loading."""
import torch

from ttsrl.models.speaker_encoder import SpeakerEncoder, SpeakerEncoderConfig, load_speaker_encoder
from ttsrl.utils.config import to_plain


def tiny(**kw):
    return SpeakerEncoder(SpeakerEncoderConfig(n_speakers=3, channels=16, attention_dim=8, embed_dim=8, **kw))


def test_unit_embeddings_and_padding_invariance():
    torch.manual_seed(0)
    model = tiny().eval()
    mel = torch.randn(2, 30, 80)
    lens = torch.tensor([30, 17])
    emb = model(mel, lens)
    assert emb.shape == (2, 8)
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(2))
    alone = model(mel[1:, :17], lens[1:])
    torch.testing.assert_close(emb[1:], alone, atol=1e-5, rtol=1e-5)
    padded = mel.clone()
    padded[1, 17:] = 100.0  # what lies past the length does not matter
    torch.testing.assert_close(model(padded, lens), emb, atol=1e-5, rtol=1e-5)
    assert model.speaker_cosines(emb).shape == (2, 3)


def test_gradient_reaches_the_mel():
    model = tiny().eval().requires_grad_(False)
    mel = torch.randn(1, 20, 80, requires_grad=True)
    (1 - model(mel)[0, 0]).backward()
    assert mel.grad is not None and float(mel.grad.abs().sum()) > 0


def test_load(tmp_path):
    import dataclasses

    model = tiny()
    torch.save({"model": model.state_dict(), "config": {"model_conf": to_plain(dataclasses.asdict(model.config))}},
               tmp_path / "model.pt")
    back = load_speaker_encoder(tmp_path)
    mel = torch.randn(1, 12, 80)
    torch.testing.assert_close(back(mel), model.eval()(mel))
