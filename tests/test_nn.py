"""nn: Module mechanics, layers, initialisation, the U-Net and the MLP denoiser."""

import math

import numpy as np
import pytest

import tinydiff as td
from tinydiff import nn
from tinydiff.nn import functional as F

REFERENCE_CONFIGS = {
    "digits": dict(in_channels=1, image_size=8, base_channels=32, channel_mults=(1, 2), num_res_blocks=1,
                   attn_resolutions=(4,)),
    "mnist": dict(in_channels=1, image_size=28, base_channels=32, channel_mults=(1, 2, 2), num_res_blocks=2,
                  attn_resolutions=(7,)),
    "cifar": dict(in_channels=3, image_size=32, base_channels=64, channel_mults=(1, 2, 2, 2), num_res_blocks=2,
                  attn_resolutions=(16,)),
}


def test_ho_et_al_cifar10_model_has_exactly_35746307_parameters():
    m = nn.UNet(3, 32, base_channels=128, channel_mults=(1, 2, 2, 2), num_res_blocks=2,
                attn_resolutions=(16,), dropout=0.1, num_groups=32, rng=0)
    assert m.num_parameters() == 35_746_307


@pytest.mark.parametrize("name", REFERENCE_CONFIGS)
def test_reference_config_output_has_input_shape_and_dtype(name):
    cfg = REFERENCE_CONFIGS[name]
    m = nn.UNet(**cfg, rng=0)
    s = cfg["image_size"]
    x = td.randn(2, cfg["in_channels"], s, s, generator=1)
    y = m(x, np.array([0, 999]))
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.isfinite(y.data).all()


def test_unet_repr_shows_blocks_shapes_and_parameter_count():
    text = repr(nn.UNet(1, 8, channel_mults=(1, 2), num_res_blocks=1, attn_resolutions=(4,), rng=0))
    assert "down[1].res[0]+attn" in text and "(64, 4, 4)" in text and "upsample" in text
    m = nn.UNet(1, 8, channel_mults=(1, 2), num_res_blocks=1, attn_resolutions=(4,), rng=0)
    assert f"total: {m.num_parameters():,} parameters" in text


def _randomise(model, rng, scale=0.3):
    """Re-draw every weight so that no zero-initialised layer hides a gradient path."""
    for name, p in model.named_parameters():
        base = 1.0 if "norm" in name and name.endswith("weight") else 0.0  # GN scales near 1
        p.data[...] = base + scale * rng.standard_normal(p.shape)


def test_whole_tiny_unet_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    model = nn.UNet(1, 4, base_channels=8, channel_mults=(1, 2), num_res_blocks=1, attn_resolutions=(2,),
                    num_groups=2, num_classes=3, rng=0, dtype=np.float64)
    _randomise(model, rng)
    x = td.tensor(rng.standard_normal((2, 1, 4, 4)), requires_grad=True)
    t, y = np.array([3, 700]), np.array([1, 3])
    assert td.gradcheck(lambda x: model(x, t, y), x, atol=1e-5, rtol=1e-4)
    # a sample of parameters from every layer kind
    kinds = {}
    for name, p in model.named_parameters():
        kind = ("temb_dense" if "temb_dense" in name else name.split(".")[-2]) + "." + name.split(".")[-1]
        kinds.setdefault(kind, (name, p))
    params = [p for _, p in kinds.values()]
    assert len(params) >= 15
    for p in params:
        p.requires_grad = True
    assert td.gradcheck(lambda *ps: model(x, t, y), *params, atol=1e-5, rtol=1e-4, max_elements=3)


def test_float32_is_preserved_through_forward_and_backward():
    model = nn.UNet(1, 8, channel_mults=(1, 2), num_res_blocks=1, attn_resolutions=(4,), num_classes=10, rng=0)
    _randomise(model, np.random.default_rng(1))
    x = td.randn(3, 1, 8, 8, generator=2)
    out = model(x, np.array([1, 2, 3]), np.array([0, 5, 10]))
    loss = F.mse_loss(out, td.randn(3, 1, 8, 8, generator=3))
    assert loss.dtype == np.float32
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert p.grad.dtype == np.float32 and p.grad.shape == p.shape, name


def test_zero_initialised_convs_make_each_block_start_as_its_skip():
    m = nn.UNet(1, 8, channel_mults=(1, 2), num_res_blocks=1, attn_resolutions=(4,), rng=0)
    for name, p in m.named_parameters():
        if name.endswith(("conv2.weight", "conv2.bias", "proj_out.weight", "proj_out.bias", "conv_out.weight")):
            assert not p.data.any(), name
    # so the untrained U-Net predicts exactly zero noise
    assert not m(td.randn(2, 1, 8, 8, generator=0), np.array([5, 6])).data.any()
    block = nn.AttnBlock(8, num_groups=2, rng=0)
    x = td.randn(2, 8, 3, 3, generator=1)
    np.testing.assert_array_equal(block(x).data, x.data)


def test_attention_block_matches_the_formula():
    rng = np.random.default_rng(0)
    block = nn.AttnBlock(4, num_groups=2, rng=0, dtype=np.float64)
    _randomise(block, rng)
    x = rng.standard_normal((2, 4, 3, 2))
    h = F.group_norm(td.tensor(x), 2, block.norm.weight, block.norm.bias).data.reshape(2, 4, 6)

    def conv1x1(conv, a):
        return np.einsum("oc,bcl->bol", conv.weight.data[:, :, 0, 0], a) + conv.bias.data[None, :, None]

    q, k, v = conv1x1(block.q, h), conv1x1(block.k, h), conv1x1(block.v, h)
    logits = np.einsum("bcq,bck->bqk", q, k) / math.sqrt(4)
    a = np.exp(logits - logits.max(-1, keepdims=True))
    a /= a.sum(-1, keepdims=True)
    out = np.einsum("bck,bqk->bcq", v, a)
    expected = x + conv1x1(block.proj_out, out).reshape(x.shape)
    np.testing.assert_allclose(block(td.tensor(x)).data, expected, rtol=1e-10)


def test_resblock_matches_the_formula():
    rng = np.random.default_rng(1)
    block = nn.ResBlock(4, 6, temb_dim=5, num_groups=2, rng=0, dtype=np.float64)
    _randomise(block, rng)
    x, temb = rng.standard_normal((2, 4, 3, 3)), rng.standard_normal((2, 5))
    X, T = td.tensor(x), td.tensor(temb)
    h = F.conv2d(F.silu(F.group_norm(X, 2, block.norm1.weight, block.norm1.bias)), block.conv1.weight, block.conv1.bias, padding=1)
    h = h + (F.silu(T) @ block.temb_proj.weight.T + block.temb_proj.bias).reshape(2, 6, 1, 1)
    h = F.conv2d(F.silu(F.group_norm(h, 2, block.norm2.weight, block.norm2.bias)), block.conv2.weight, block.conv2.bias, padding=1)
    expected = F.conv2d(X, block.skip.weight, block.skip.bias) + h
    np.testing.assert_allclose(block(X, T).data, expected.data, rtol=1e-10)


def test_timestep_embedding_formula():
    emb = nn.timestep_embedding(np.array([0, 1, 250]), 8, dtype=np.float64).data
    freqs = np.exp(-math.log(10000) * np.arange(4) / 3)
    assert freqs[0] == 1 and np.isclose(freqs[-1], 1e-4)
    np.testing.assert_array_equal(emb[0], [0, 0, 0, 0, 1, 1, 1, 1])
    np.testing.assert_allclose(emb[2], np.concatenate([np.sin(250 * freqs), np.cos(250 * freqs)]))
    assert nn.timestep_embedding(np.array([3]), 8).dtype == np.float32


def test_pytorch_default_initialisation_bounds_and_seeding():
    lin = nn.Linear(100, 50, rng=0)
    assert np.abs(lin.weight.data).max() <= 1 / math.sqrt(100)
    assert np.abs(lin.weight.data).max() > 0.9 / math.sqrt(100)  # fills the interval
    assert np.abs(lin.bias.data).max() <= 1 / math.sqrt(100)
    conv = nn.Conv2d(8, 4, 3, rng=0)
    assert np.abs(conv.weight.data).max() <= 1 / math.sqrt(72)
    gn = nn.GroupNorm(2, 8)
    assert (gn.weight.data == 1).all() and (gn.bias.data == 0).all()
    a, b = nn.UNet(1, 8, channel_mults=(1, 2), rng=5), nn.UNet(1, 8, channel_mults=(1, 2), rng=5)
    for (n1, p1), (n2, p2) in zip(a.named_parameters(), b.named_parameters()):
        assert n1 == n2 and np.array_equal(p1.data, p2.data)


def test_parameters_are_registered_in_forward_order():
    names = [n for n, _ in nn.ResBlock(4, 8, 16, num_groups=2, rng=0).named_parameters()]
    assert names == ["norm1.weight", "norm1.bias", "conv1.weight", "conv1.bias", "temb_proj.weight",
                     "temb_proj.bias", "norm2.weight", "norm2.bias", "conv2.weight", "conv2.bias",
                     "skip.weight", "skip.bias"]
    unet_names = list(nn.UNet(1, 8, channel_mults=(1, 2), num_res_blocks=1, rng=0).state_dict())
    assert unet_names[0].startswith("temb_dense0") and unet_names[-1] == "conv_out.bias"


def test_module_tree_state_dict_and_modes():
    model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.SiLU(), nn.Dropout(0.5), nn.Linear(4, 2, rng=1))
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "3.weight", "3.bias"]
    assert len(list(model.children())) == 4 and len(list(model.modules())) == 5
    model.eval()
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    sd = model.state_dict()
    sd["0.weight"][...] = 7  # a copy: the model is untouched
    assert not (model[0].weight.data == 7).any()
    model.load_state_dict(sd)
    assert (model[0].weight.data == 7).all()
    assert "Linear(3, 4" in repr(model) and "Parameter(4, 3)" in repr(model) and "26 parameters" in repr(model)


def test_load_state_dict_names_missing_unexpected_and_misshaped_keys():
    model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.Linear(4, 2, rng=1))
    sd = model.state_dict()
    del sd["1.bias"]
    sd["extra.weight"] = np.zeros(3)
    with pytest.raises(KeyError, match=r"missing keys \['1.bias'\].*unexpected keys \['extra.weight'\]"):
        model.load_state_dict(sd)
    model.load_state_dict(sd, strict=False)
    sd = model.state_dict()
    sd["0.weight"] = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"0.weight: checkpoint \(3, 4\) vs model \(4, 3\)"):
        model.load_state_dict(sd)


def test_unet_rejects_wrong_input_and_labels():
    m = nn.UNet(1, 8, channel_mults=(1, 2), rng=0)
    with pytest.raises(ValueError, match=r"\(B, 1, 8, 8\).*\(2, 3, 8, 8\)"):
        m(td.zeros(2, 3, 8, 8), np.array([0, 1]))
    with pytest.raises(ValueError, match="timesteps"):
        m(td.zeros(2, 1, 8, 8), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="num_classes"):
        m(td.zeros(2, 1, 8, 8), np.array([0, 1]), np.array([0, 1]))
    with pytest.raises(ValueError, match="halved"):
        nn.UNet(1, 10, channel_mults=(1, 2, 2))


def test_class_conditioning_uses_the_no_label_token_by_default():
    m = nn.UNet(1, 8, channel_mults=(1, 2), num_res_blocks=1, num_classes=4, rng=0)
    _randomise(m, np.random.default_rng(0))
    x, t = td.randn(2, 1, 8, 8, generator=0), np.array([1, 2])
    np.testing.assert_array_equal(m(x, t).data, m(x, t, np.array([4, 4])).data)
    assert not np.allclose(m(x, t, np.array([0, 1])).data, m(x, t).data)


def test_mlp_denoiser_shapes_and_gradient():
    m = nn.MLPDenoiser(2, hidden=16, rng=0, dtype=np.float64)
    x = td.tensor(np.random.default_rng(0).standard_normal((5, 2)), requires_grad=True)
    out = m(x, np.arange(5))
    assert out.shape == (5, 2) and out.dtype == np.float64
    assert td.gradcheck(lambda x: m(x, np.arange(5)), x)
