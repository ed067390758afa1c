"""DMO's training step on tiny models: which model learns on which batch, the metric losses reach the
student, the student's samples, and the options' checks."""
import pytest
import torch

from ttsrl.align.dmo import DMOLoss, DMOModel, DMOOptions
from ttsrl.models.flow import FlowConfig, FlowMatching
from ttsrl.models.speaker_encoder import SpeakerEncoder, SpeakerEncoderConfig, crop_windows
from ttsrl.models.speech_tokenizer import SpeechTokenizer, SpeechTokenizerConfig


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    teacher = FlowMatching(FlowConfig(vocab_size=16, d_model=16, n_heads=2, encoder_layers=1, estimator_layers=1,
                                      d_ff=32, dropout=0.0))
    recognizer = SpeechTokenizer(SpeechTokenizerConfig(vocab_size=12, d_model=16, n_heads=2, d_ff=32, n_layers=1,
                                                       conv_kernel=3, fsq_levels=(4, 4), ctc_layers=1,
                                                       recon_layers=1, dropout=0.0))
    speaker = SpeakerEncoder(SpeakerEncoderConfig(n_speakers=2, channels=16, attention_dim=8, embed_dim=8))
    return teacher, recognizer, speaker


def make_batch(B=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    lens = torch.tensor([10, 8, 6])[:B]
    return {"speech": torch.randint(0, 16, (B, 10), generator=g), "speech_lens": lens,
            "mel": torch.randn(B, 80, 40, generator=g) - 5, "mel_lens": lens * 4,
            "text": torch.randint(1, 12, (B, 5), generator=g), "text_lens": torch.tensor([5, 4, 3])[:B]}


def grads(module):
    return [p.grad for p in module.parameters()]


def test_the_fake_learns_every_batch_the_student_every_ratio_th(models):
    teacher, recognizer, speaker = models
    model = DMOModel.from_teacher(teacher)
    loss_fn = DMOLoss(DMOOptions(student_steps=2, gen_update_ratio=3), teacher, recognizer, speaker)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    start = {k: v.clone() for k, v in model.student.state_dict().items()}
    for i in range(1, 4):
        opt.zero_grad(set_to_none=True)
        loss, stats = loss_fn(model, make_batch(seed=i))
        loss.backward()
        assert stats["gen"] == float(i == 3)
        assert all(g is not None for g in grads(model.fake))
        assert all(g is None for g in grads(model.student)) == (i < 3)
        opt.step()
        moved = any(not torch.equal(v, start[k]) for k, v in model.student.state_dict().items())
        assert moved == (i == 3), i
    assert int(model.batches) == 3


def test_ctc_and_sv_losses_reach_the_student(models):
    teacher, recognizer, speaker = models
    for weights in ({"ctc_weight": 1.0}, {"sv_weight": 1.0}):
        model = DMOModel.from_teacher(teacher)
        opts = DMOOptions(student_steps=1, gen_update_ratio=1, dmd_weight=0.0, **weights)
        loss, stats = DMOLoss(opts, teacher, recognizer, speaker)(model, make_batch())
        key = "loss_ctc" if "ctc_weight" in weights else "loss_sv"
        assert key in stats and "loss_dmd" not in stats
        loss.backward()  # dmd_weight 0: the student's only gradient is the metric loss's (the fake's loss reads sg(x))
        assert sum(float(g.abs().sum()) for g in grads(model.student.estimator) if g is not None) > 0
        assert all(p.grad is None for p in recognizer.parameters()) and all(p.grad is None for p in speaker.parameters())


def test_metric_losses_wait_for_metric_start(models):
    teacher, recognizer, speaker = models
    model = DMOModel.from_teacher(teacher)
    loss_fn = DMOLoss(DMOOptions(gen_update_ratio=1, ctc_weight=1.0, metric_start=2), teacher, recognizer, speaker)
    seen = [("loss_ctc" in loss_fn(model, make_batch())[1]) for _ in range(3)]
    assert seen == [False, False, True]


def test_validation_samples_the_student(models):
    teacher, recognizer, speaker = models
    model = DMOModel.from_teacher(teacher).eval()
    loss_fn = DMOLoss(DMOOptions(student_steps=2), teacher, recognizer, speaker)
    loss, stats = loss_fn(model, make_batch())
    assert float(loss) == pytest.approx(stats["ctc"])
    assert {"mel_l1", "cer", "sim", "weight"} <= set(stats) and -1 <= stats["sim"] <= 1
    again, _ = loss_fn(model, make_batch())  # fixed noise: the same numbers
    assert float(again) == float(loss)


def test_generated_crops():
    mel = torch.arange(2 * 10, dtype=torch.float32).view(2, 10, 1)
    crop, lens = crop_windows(mel, torch.tensor([2, 6]), torch.tensor([9, 8]), 4,
                                 generator=torch.Generator().manual_seed(0))
    assert lens.tolist() == [4, 2]
    first = crop[0, :, 0].tolist()
    assert first == list(range(int(first[0]), int(first[0]) + 4)) and 2 <= first[0] <= 5
    assert crop[1, :2, 0].tolist() == [16.0, 17.0] and crop[1, 2:].abs().sum() == 0


def test_options_are_checked(models):
    teacher, recognizer, _ = models
    with pytest.raises(ValueError, match="student_steps"):
        DMOOptions(student_steps=0)
    with pytest.raises(ValueError, match="every loss weight"):
        DMOOptions(dmd_weight=0.0)
    with pytest.raises(ValueError, match="speaker encoder"):
        DMOLoss(DMOOptions(sv_weight=1.0), teacher, recognizer, None)
