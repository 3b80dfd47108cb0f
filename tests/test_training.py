"""The model trains: a U-Net overfits one batch, the MLP learns a regression, and
a checkpoint round trip reproduces the outputs exactly."""

import numpy as np

import tinydiff as td
from tinydiff import nn, optim
from tinydiff.nn import functional as F


def test_unet_overfits_one_fixed_batch_of_8x8_images():
    rng = np.random.default_rng(0)
    model = nn.UNet(1, 8, base_channels=16, channel_mults=(1, 2), num_res_blocks=1,
                    attn_resolutions=(4,), num_groups=4, rng=0)
    x = td.tensor(rng.standard_normal((8, 1, 8, 8)).astype(np.float32))
    t = rng.integers(0, 1000, size=8)
    target = td.tensor(rng.standard_normal((8, 1, 8, 8)).astype(np.float32))  # fixed "noise"
    opt = optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(300):
        loss = F.mse_loss(model(x, t), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.isfinite(losses).all()
    assert losses[-1] < losses[0] / 10, (losses[0], losses[-1])


def test_mlp_learns_a_2d_regression():
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, size=(256, 2)).astype(np.float32)
    y = np.stack([np.sin(2 * x[:, 0]) * x[:, 1], x[:, 0] - x[:, 1] ** 2], axis=1).astype(np.float32)
    model = nn.MLPDenoiser(2, hidden=64, rng=0)
    opt = optim.Adam(model.parameters(), lr=3e-3)
    t = np.zeros(256, dtype=np.int64)
    first = None
    for _ in range(400):
        loss = F.mse_loss(model(td.tensor(x), t), td.tensor(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    assert loss.item() < first / 20
    assert loss.item() < 0.01


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    cfg = dict(in_channels=1, image_size=8, channel_mults=(1, 2), num_res_blocks=1, attn_resolutions=(4,))
    model = nn.UNet(**cfg, rng=0)
    for p in model.parameters():  # move off the zero initialisation
        p.data += np.random.default_rng(2).standard_normal(p.shape).astype(np.float32) * 0.05
    ema = optim.EMA(model, decay=0.9)
    path = tmp_path / "ckpt.npz"
    td.save({"model": model.state_dict(), "ema": ema.state_dict(), "step": 7}, path)
    restored = nn.UNet(**cfg, rng=1)
    ckpt = td.load(path)
    restored.load_state_dict(ckpt["model"])
    assert ckpt["step"] == 7
    x, t = td.randn(2, 1, 8, 8, generator=3), np.array([10, 500])
    with td.no_grad():
        np.testing.assert_array_equal(model(x, t).data, restored(x, t).data)
