"""Flow-matching model: loss, prompt masking, OT path, sampler (determinism, NFE, CFG), overfitting."""
import pytest
import torch

from ttsrl.models.flow import (
    FlowConfig,
    FlowMatching,
    guided_velocity,
    masked_mse,
    ot_path,
    time_schedule,
)

TINY = dict(vocab_size=20, d_model=32, n_heads=2, encoder_layers=1, estimator_layers=2, d_ff=64, dropout=0.0)


def make(**kw):
    torch.manual_seed(0)
    return FlowMatching(FlowConfig(**{**TINY, **kw}))


def batch(B=2, L=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, 20, (B, L), generator=g)
    token_lens = torch.tensor([L] + [L - 2] * (B - 1))
    mel = torch.randn(B, 80, 4 * L + 1, generator=g)  # mel may be a few frames off 4 L
    mel_lens = torch.tensor([4 * L + 1] + [4 * (L - 2) - 1] * (B - 1))
    return tokens, token_lens, mel, mel_lens


def test_loss_shapes_and_finite():
    model = make()
    tokens, token_lens, mel, mel_lens = batch()
    out = model(tokens, token_lens, mel, mel_lens)
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    assert out.mask.shape == (2, 24)
    # frames past min(mel length, 4 x tokens) are never in the loss
    assert out.mask[1, 4 * 4 - 1:].sum() == 0 and int(out.n_frames) == int(out.mask.sum())
    out.loss.backward()
    assert all(p.grad is not None for p in model.estimator.parameters())


def test_speaker_embedding():
    model = make(spk_embed_dim=8)
    tokens, token_lens, mel, mel_lens = batch()
    out = model(tokens, token_lens, mel, mel_lens, spk=torch.randn(2, 8))
    assert torch.isfinite(out.loss)
    with pytest.raises(ValueError):
        make()(tokens, token_lens, mel, mel_lens, spk=torch.randn(2, 8))


def test_masked_mse_by_hand():
    v = torch.zeros(1, 2, 3)
    u = torch.tensor([[[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]])
    mask = torch.tensor([[False, True, True]])
    assert masked_mse(v, u, mask).item() == pytest.approx((4 + 9) * 2 / 4)


def test_prompt_frames_excluded_from_loss():
    """With fixed prompt lengths, changing the target's prompt frames leaves the loss unchanged
    for an estimator that is frame-local (so only the masking can carry a change)."""
    model = make(cfg_dropout=0.0)
    model.train()

    class FrameLocal(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Conv1d(80, 80, 1)

        def forward(self, x, mask, mu, t, spk, cond):
            return self.lin(x) + mu  # ignores cond: the prompt enters only through x_t, u and the mask

    model.estimator = FrameLocal()
    tokens, token_lens, mel, mel_lens = batch()
    prompt = torch.tensor([5, 3])
    a = model(tokens, token_lens, mel, mel_lens, prompt_lens=prompt, generator=torch.Generator().manual_seed(1))
    mel2 = mel.clone()
    mel2[0, :, :5] += 10.0
    mel2[1, :, :3] -= 7.0
    b = model(tokens, token_lens, mel2, mel_lens, prompt_lens=prompt, generator=torch.Generator().manual_seed(1))
    assert a.loss.item() == pytest.approx(b.loss.item(), rel=1e-6)
    assert not a.mask[0, :5].any() and a.mask[0, 5:].all()
    mel2[0, :, 5] += 10.0  # the first non-prompt frame does count
    c = model(tokens, token_lens, mel2, mel_lens, prompt_lens=prompt, generator=torch.Generator().manual_seed(1))
    assert c.loss.item() != pytest.approx(a.loss.item(), rel=1e-3)


def test_random_prompt_is_a_prefix_of_at_most_30_percent():
    model = make(cfg_dropout=0.0)
    model.train()
    tokens, token_lens, mel, mel_lens = batch(B=8, L=10)
    for seed in range(5):
        out = model(tokens, token_lens, mel, mel_lens, generator=torch.Generator().manual_seed(seed))
        for i in range(8):
            n_valid = min(int(mel_lens[i]), int(token_lens[i]) * 4)
            row = out.mask[i, :n_valid]
            first = int(row.float().argmax())
            assert row[first:].all() and not row[:first].any()  # prefix excluded, rest included
            assert first <= 0.3 * n_valid


def test_ot_path_and_target_by_hand():
    x0 = torch.tensor([1.0, -2.0])
    x1 = torch.tensor([3.0, 4.0])
    sigma = 0.1
    x_t, u = ot_path(x0, x1, torch.tensor(0.5), sigma)
    # x_t = (1 - 0.9 * 0.5) x0 + 0.5 x1 = 0.55 x0 + 0.5 x1 ; u = x1 - 0.9 x0
    assert torch.allclose(x_t, torch.tensor([0.55 + 1.5, -1.1 + 2.0]))
    assert torch.allclose(u, torch.tensor([3.0 - 0.9, 4.0 + 1.8]))
    x_0, _ = ot_path(x0, x1, torch.tensor(0.0), sigma)
    x_1, _ = ot_path(x0, x1, torch.tensor(1.0), sigma)
    assert torch.allclose(x_0, x0) and torch.allclose(x_1, x1 + sigma * x0)
    t = torch.tensor([0.0, 0.5, 1.0])
    assert torch.allclose(time_schedule(t, "cosine"), torch.tensor([0.0, 1 - 2 ** -0.5, 1.0]), atol=1e-6)


def synth(model, seed=0, **kw):
    tokens, token_lens, mel, _ = batch(B=2, L=5, seed=3)
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    return model.synthesize(tokens[:, 2:], token_lens - 2, tokens[:, :2], mel[:, :, :8],
                            prompt_token_lens=torch.tensor([2, 1]), generator=g, **kw)


def test_sampler_deterministic_with_seed_and_shapes():
    model = make().eval()
    a, lens = synth(model, n_steps=4)
    b, _ = synth(model, n_steps=4)
    c, _ = synth(model, seed=1, n_steps=4)
    assert a.shape == (2, 80, 12) and lens.tolist() == [12, 4]
    assert torch.equal(a, b) and not torch.allclose(a, c)
    assert torch.isfinite(a).all() and (a[1, :, 4:] == a[1, 0, 4]).all()  # padding is silence


def count_calls(model):
    calls = []
    orig = model.estimator.forward

    def counting(*args, **kw):
        calls.append(args[0].shape[0])
        return orig(*args, **kw)

    model.estimator.forward = counting
    return calls


@pytest.mark.parametrize("solver,n_steps,nfe", [("euler", 3, 3), ("euler", 10, 10), ("midpoint", 3, 6), ("midpoint", 1, 2)])
def test_nfe_counts(solver, n_steps, nfe):
    model = make().eval()
    calls = count_calls(model)
    synth(model, n_steps=n_steps, solver=solver, cfg_scale=0.7)
    assert len(calls) == nfe and set(calls) == {4}  # conditional + unconditional in one batch
    calls.clear()
    synth(model, n_steps=n_steps, solver=solver, cfg_scale=0.0)
    assert len(calls) == nfe and set(calls) == {2}


def test_cfg_scale_zero_is_no_guidance():
    model = make().eval()
    v_c, v_u = torch.randn(3, 4), torch.randn(3, 4)
    assert torch.equal(guided_velocity(v_c, v_u, 0.0), v_c)
    assert torch.allclose(guided_velocity(v_c, v_u, 0.7), 1.7 * v_c - 0.7 * v_u)
    # scale 0 equals Euler on the conditional velocity written out here
    tokens = torch.randint(0, 20, (1, 5), generator=torch.Generator().manual_seed(0))
    lens = torch.tensor([5])
    out, _ = model.synthesize(tokens, lens, n_steps=3, cfg_scale=0.0, t_schedule="linear",
                              generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        mu = model.encoder(tokens, lens)
        mask = torch.ones(1, 20, dtype=torch.bool)
        x = torch.randn(mu.shape, generator=torch.Generator().manual_seed(0))
        zeros = torch.zeros_like(mu)
        for k in range(3):
            x = x + (1 / 3) * model.estimator(x, mask, mu, torch.tensor([k / 3]), zeros, zeros)
        ref = model.mvn.inverse(x)
    assert torch.allclose(out, ref, atol=1e-5)
    guided, _ = model.synthesize(tokens, lens, n_steps=3, cfg_scale=0.7, t_schedule="linear",
                                 generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(guided, out)


def test_renoise_sampler_written_out():
    """renoise: predict the clean mel at t = k / n, noise it afresh to (k + 1) / n; the last prediction is the output."""
    model = make().eval()
    tokens = torch.randint(0, 20, (1, 5), generator=torch.Generator().manual_seed(0))
    lens = torch.tensor([5])
    out, _ = model.synthesize(tokens, lens, n_steps=2, cfg_scale=0.0, solver="renoise",
                              generator=torch.Generator().manual_seed(0))
    calls = count_calls(model)
    model.synthesize(tokens, lens, n_steps=2, cfg_scale=0.0, solver="renoise")
    assert len(calls) == 2
    with torch.no_grad():
        g = torch.Generator().manual_seed(0)
        mu = model.encoder(tokens, lens)
        mask = torch.ones(1, 20, dtype=torch.bool)
        zeros = torch.zeros_like(mu)
        x = torch.randn(mu.shape, generator=g)
        s = model.config.sigma_min
        x1 = (1 - s) * x + model.estimator(x, mask, mu, torch.tensor([0.0]), zeros, zeros)  # t = 0
        x = (1 - (1 - s) * 0.5) * torch.randn(mu.shape, generator=g) + 0.5 * x1
        x1 = (1 - s) * x + (1 - (1 - s) * 0.5) * model.estimator(x, mask, mu, torch.tensor([0.5]), zeros, zeros)
        ref = model.mvn.inverse(x1)
    assert torch.allclose(out, ref, atol=1e-5)


def test_conditions_and_velocity_are_the_forward_pass():
    """forward = conditions + flow_loss; velocity with guidance is guided_velocity of the two passes."""
    model = make().train()
    tokens, token_lens, mel, mel_lens = batch()
    a = model(tokens, token_lens, mel, mel_lens, generator=torch.Generator().manual_seed(3)).loss
    c = model.conditions(tokens, token_lens, mel, mel_lens, generator=torch.Generator().manual_seed(3))
    assert c.loss_mask.equal(c.mask & ~c.pmask)
    model.eval()
    x, t = torch.randn_like(c.x1), torch.full((2,), 0.4)
    uncond = type(c)(c.x1, c.mask, c.pmask, torch.zeros_like(c.mu), torch.zeros_like(c.cond), torch.zeros_like(c.spk))
    torch.testing.assert_close(model.velocity(x, t, c, 0.7),
                               guided_velocity(model.velocity(x, t, c), model.velocity(x, t, uncond), 0.7))
    model.train()
    g = torch.Generator().manual_seed(3)
    b = model.flow_loss(model.conditions(tokens, token_lens, mel, mel_lens, generator=g), g).loss
    assert torch.allclose(a, b)


def test_bad_solver():
    with pytest.raises(ValueError, match="solver"):
        synth(make().eval(), solver="rk4")


def test_tiny_flow_overfits_one_utterance():
    """The loss drops well below 1, the loss of a model that ignores x_t (it must denoise)."""
    torch.manual_seed(0)
    model = FlowMatching(FlowConfig(**{**TINY, "d_model": 64, "d_ff": 128, "cfg_dropout": 0.0}))
    L, B = 8, 8  # copies of one utterance: a less noisy gradient per step
    tokens = torch.arange(L).repeat(B, 1)
    t = torch.linspace(0, 1, 4 * L)
    mel = torch.stack([torch.sin(6 * t + k / 10) * (1 + k / 40) for k in range(80)]).repeat(B, 1, 1)  # (B, 80, 32)
    lens, mlens = torch.full((B,), L), torch.full((B,), 4 * L)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(0)
    model.train()
    losses = []
    for _ in range(150):
        out = model(tokens, lens, mel, mlens, generator=g)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.loss.item())
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < 0.35 * first and last < 0.8, (first, last)
    model.eval()
    mel_hat, _ = model.synthesize(tokens[:1], lens[:1], n_steps=10, cfg_scale=0.0,
                                  generator=torch.Generator().manual_seed(0))
    err, spread = (mel_hat - mel[:1]).abs().mean(), (mel - mel.mean()).abs().mean()
    assert err < 0.5 * spread, (err, spread)


def test_stats_are_applied_and_saved():
    model = make()
    model.set_stats(torch.full((80,), 2.0), torch.full((80,), 3.0))
    sd = model.state_dict()
    assert torch.equal(sd["mvn.mean"], torch.full((80,), 2.0))
    other = make()
    other.load_state_dict(sd)
    x = torch.randn(1, 80, 4)
    assert torch.allclose(other.mvn(x), (x - 2) / 3)


def test_prompt_mel_lens_ignore_padding():
    model = make().eval()
    tokens, token_lens, mel, _ = batch(B=2, L=5, seed=3)
    prompt = mel[:, :, :8].clone()
    kw = dict(prompt_token_lens=torch.tensor([2, 1]), prompt_mel_lens=torch.tensor([8, 4]), n_steps=2)
    a, _ = model.synthesize(tokens[:, 2:], token_lens - 2, tokens[:, :2], prompt,
                            generator=torch.Generator().manual_seed(0), **kw)
    prompt[1, :, 4:] = 100.0  # padding of the shorter prompt
    b, _ = model.synthesize(tokens[:, 2:], token_lens - 2, tokens[:, :2], prompt,
                            generator=torch.Generator().manual_seed(0), **kw)
    assert torch.equal(a, b)
    prompt[1, :, 0] = 100.0  # a real prompt frame does matter
    c, _ = model.synthesize(tokens[:, 2:], token_lens - 2, tokens[:, :2], prompt,
                            generator=torch.Generator().manual_seed(0), **kw)
    assert not torch.allclose(a[1], c[1]) and torch.equal(a[0], c[0])
