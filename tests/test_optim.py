"""tinydiff.optim as a specification: every rule is held to its update equations,
written out again below in plain float64 NumPy (the oracles), and to closed forms
where one exists (Adam's first step, constant gradients, pure weight decay)."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinydiff as td
from tinydiff.nn import Module, Parameter
from tinydiff.optim import EMA, SGD, Adam, AdamW, LinearWarmup, Optimizer, clip_grad_norm_

# ---------------------------------------------------------------- oracles (float64)


def adam_reference(p0, grads, lr, betas, eps, weight_decay, decoupled):
    """Kingma & Ba 2015, Algorithm 1; L2 decay (Adam) or decoupled decay (AdamW,
    Loshchilov & Hutter 2019, as PyTorch: p <- p - lr*wd*p before the step)."""
    beta1, beta2 = betas
    p = np.array(p0, dtype=np.float64)
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        g = np.array(g, dtype=np.float64)
        if decoupled:
            p = p - lr * weight_decay * p
        else:
            g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        m_hat = m / (1 - beta1**t)
        v_hat = v / (1 - beta2**t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p, m, v


def sgd_reference(p0, grads, lr, momentum, dampening, weight_decay, nesterov):
    """PyTorch's SGD: buffer b_1 = g, b_t = mu b_{t-1} + (1 - dampening) g."""
    p = np.array(p0, dtype=np.float64)
    b = None
    for g in grads:
        g = np.array(g, dtype=np.float64) + weight_decay * p
        if momentum:
            b = g if b is None else momentum * b + (1 - dampening) * g
            d = g + momentum * b if nesterov else b
        else:
            d = g
        p = p - lr * d
    return p


def make_param(values, dtype=np.float64):
    return Parameter(np.array(values, dtype=dtype))


def run(opt_cls, p0, grads, dtype=np.float64, **kwargs):
    p = make_param(p0, dtype)
    opt = opt_cls([p], **kwargs)
    for g in grads:
        p.grad = np.array(g, dtype=dtype)
        opt.step()
    return p, opt


# ---------------------------------------------------------------- strategies

shapes = st.sampled_from([(1,), (5,), (2, 3), (2, 1, 3)])


@st.composite
def trajectories(draw, max_steps=6):
    """An initial parameter and a sequence of gradients of the same shape."""
    shape = draw(shapes)
    seed = draw(st.integers(0, 2**32 - 1))
    steps = draw(st.integers(1, max_steps))
    rng = np.random.default_rng(seed)
    p0 = rng.uniform(-2, 2, size=shape)
    grads = [rng.normal(size=shape) * draw(st.sampled_from([1e-3, 1.0, 10.0])) for _ in range(steps)]
    return p0, grads


adam_hparams = st.fixed_dictionaries({
    "lr": st.sampled_from([1e-3, 0.01, 0.5]),
    "betas": st.tuples(st.sampled_from([0.0, 0.5, 0.9]), st.sampled_from([0.9, 0.99, 0.999])),
    "eps": st.sampled_from([1e-8, 1e-3, 0.1]),
    "weight_decay": st.sampled_from([0.0, 1e-2, 0.5]),
})


# ---------------------------------------------------------------- Adam / AdamW


@given(trajectories(), adam_hparams)
def test_adam_follows_kingma_ba_update_equations_with_l2_decay(traj, hp):
    p0, grads = traj
    p, opt = run(Adam, p0, grads, **hp)
    expected, m, v = adam_reference(p0, grads, decoupled=False, **hp)
    np.testing.assert_allclose(p.data, expected, rtol=1e-12, atol=1e-12)
    state = opt.state[0]
    assert state["step"] == len(grads)
    np.testing.assert_allclose(state["exp_avg"], m, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(state["exp_avg_sq"], v, rtol=1e-12, atol=1e-15)


@given(trajectories(), adam_hparams)
def test_adamw_follows_decoupled_weight_decay_equations(traj, hp):
    p0, grads = traj
    p, _ = run(AdamW, p0, grads, **hp)
    expected, _, _ = adam_reference(p0, grads, decoupled=True, **hp)
    np.testing.assert_allclose(p.data, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("eps", [0.0, 1e-3, 0.5])
def test_adam_first_step_moves_each_weight_by_lr_g_over_abs_g_plus_eps(eps):
    # t = 1: m_hat = g and v_hat = g^2 exactly, so the step is lr * g / (|g| + eps);
    # eps added to sqrt(v_t) before bias correction (TensorFlow's form) would differ.
    g = np.array([1e-3, -2e-3, 0.5, -4.0])
    p, _ = run(Adam, np.zeros(4), [g], lr=0.1, eps=eps)
    np.testing.assert_allclose(p.data, -0.1 * g / (np.abs(g) + eps), rtol=1e-13)


def test_adam_with_a_constant_gradient_takes_equal_steps():
    # bias correction makes m_hat = g and v_hat = g^2 at every step t
    g = np.array([0.3, -1.5])
    lr, eps, steps = 0.01, 1e-8, 7
    p, _ = run(Adam, np.ones(2), [g] * steps, lr=lr, eps=eps)
    np.testing.assert_allclose(p.data, 1.0 - steps * lr * g / (np.abs(g) + eps), rtol=1e-12)


def test_adamw_decays_weights_geometrically_when_the_gradient_is_zero():
    # g = 0 gives m = v = 0 and an Adam step of 0 / (0 + eps) = 0: only the decay acts
    lr, wd, steps = 0.1, 0.5, 5
    p0 = np.array([1.0, -3.0, 0.25])
    p, _ = run(AdamW, p0, [np.zeros(3)] * steps, lr=lr, weight_decay=wd)
    np.testing.assert_allclose(p.data, p0 * (1 - lr * wd) ** steps, rtol=1e-14)


def test_adam_weight_decay_enters_the_gradient_not_the_weights():
    # g = 0 but weight_decay > 0: Adam sees g = wd * p, so its first step is
    # lr * wd*p / (|wd*p| + eps), about lr * sign(p), unlike AdamW's lr * wd * p
    lr, wd, eps = 0.1, 0.5, 1e-8
    p0 = np.array([1.0, -3.0])
    p, _ = run(Adam, p0, [np.zeros(2)], lr=lr, weight_decay=wd, eps=eps)
    np.testing.assert_allclose(p.data, p0 - lr * wd * p0 / (np.abs(wd * p0) + eps), rtol=1e-13)


def test_adamw_default_weight_decay_is_pytorchs():
    p = make_param([1.0])
    assert AdamW([p]).weight_decay == 1e-2
    assert Adam([p]).weight_decay == 0.0
    assert (Adam([p]).lr, Adam([p]).betas, Adam([p]).eps) == (1e-3, (0.9, 0.999), 1e-8)


# ---------------------------------------------------------------- SGD

sgd_hparams = st.fixed_dictionaries({
    "lr": st.sampled_from([1e-3, 0.1, 1.0]),
    "momentum": st.sampled_from([0.0, 0.5, 0.9]),
    "dampening": st.sampled_from([0.0, 0.1]),
    "weight_decay": st.sampled_from([0.0, 1e-2, 0.3]),
    "nesterov": st.booleans(),
})


@given(trajectories(), sgd_hparams)
def test_sgd_follows_pytorchs_momentum_buffer_rule(traj, hp):
    if hp["nesterov"] and (hp["momentum"] == 0 or hp["dampening"] != 0):
        with pytest.raises(ValueError, match="Nesterov"):
            SGD([make_param([0.0])], **hp)
        return
    p0, grads = traj
    p, _ = run(SGD, p0, grads, **hp)
    np.testing.assert_allclose(p.data, sgd_reference(p0, grads, **hp), rtol=1e-12, atol=1e-12)


def test_plain_sgd_step_is_p_minus_lr_g():
    p, _ = run(SGD, [1.0, 2.0], [[0.5, -4.0]], lr=0.25)
    np.testing.assert_array_equal(p.data, [1.0 - 0.125, 2.0 + 1.0])


def test_sgd_momentum_with_a_constant_gradient_sums_a_geometric_series():
    # b_k = g (1 + mu + ... + mu^(k-1)), so p_t = p_0 - lr g sum_{k=1..t} (1 - mu^k) / (1 - mu)
    lr, mu, g, steps = 0.1, 0.9, 2.0, 6
    p, _ = run(SGD, [0.0], [[g]] * steps, lr=lr, momentum=mu)
    expected = -lr * g * sum((1 - mu**k) / (1 - mu) for k in range(1, steps + 1))
    np.testing.assert_allclose(p.data, [expected], rtol=1e-13)


# ---------------------------------------------------------------- shared behaviour

ALL_RULES = [
    (SGD, dict(lr=0.1, momentum=0.9, weight_decay=1e-2, nesterov=True)),
    (Adam, dict(lr=0.01, weight_decay=1e-2)),
    (AdamW, dict(lr=0.01, weight_decay=1e-1)),
]


@pytest.mark.parametrize("opt_cls,kwargs", ALL_RULES)
def test_float32_parameters_stay_float32_and_are_updated_in_place(opt_cls, kwargs):
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=(4, 5))
    grads = [rng.normal(size=(4, 5)) for _ in range(4)]
    p = make_param(p0, np.float32)
    array = p.data
    opt = opt_cls([p], **kwargs)
    for g in grads:
        p.grad = g.astype(np.float32)
        opt.step()
    assert p.data is array and p.data.dtype == np.float32
    for value in opt.state[0].values():
        if isinstance(value, np.ndarray):
            assert value.dtype == np.float32
    # the same trajectory in float64, rounded differently but not otherwise
    p64, _ = run(opt_cls, p0.astype(np.float32), [g.astype(np.float32) for g in grads], **kwargs)
    np.testing.assert_allclose(p.data, p64.data, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("opt_cls,kwargs", ALL_RULES)
def test_step_skips_parameters_without_grad_and_never_modifies_grad(opt_cls, kwargs):
    a, b = make_param([1.0, 2.0]), make_param([3.0])
    opt = opt_cls([a, b], **kwargs)
    a.grad = np.array([0.5, -0.5])
    grad = a.grad.copy()
    opt.step()
    np.testing.assert_array_equal(b.data, [3.0])
    assert opt.state[1] == {}
    np.testing.assert_array_equal(a.grad, grad)
    assert not np.array_equal(a.data, [1.0, 2.0])


def test_zero_grad_sets_every_grad_to_none():
    a, b = make_param([1.0]), make_param([2.0])
    a.grad, b.grad = np.ones(1), np.ones(1)
    SGD([a, b], lr=0.1).zero_grad()
    assert a.grad is None and b.grad is None


def test_lr_attribute_is_used_by_the_next_step():
    p = make_param([0.0])
    opt = SGD([p], lr=1.0)
    opt.lr = 0.5
    p.grad = np.array([1.0])
    opt.step()
    np.testing.assert_array_equal(p.data, [-0.5])


def test_step_runs_the_closure_and_returns_its_loss():
    p = make_param([3.0])
    opt = SGD([p], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert float(loss.data) == 9.0
    np.testing.assert_allclose(p.data, [3.0 - 0.1 * 6.0])


@pytest.mark.parametrize(
    "make",
    [
        lambda p: SGD([p], lr=-1.0),
        lambda p: SGD([p], lr=0.1, momentum=-0.5),
        lambda p: SGD([p], lr=0.1, nesterov=True),
        lambda p: Adam([p], betas=(1.0, 0.999)),
        lambda p: Adam([p], betas=(0.9, -0.1)),
        lambda p: Adam([p], eps=-1.0),
        lambda p: AdamW([p], weight_decay=-1.0),
        lambda p: Adam([]),
        lambda p: Adam([p, p]),
    ],
)
def test_invalid_arguments_raise_value_error(make):
    with pytest.raises(ValueError):
        make(make_param([1.0]))


def test_a_gradient_of_the_wrong_shape_or_dtype_is_named():
    p = make_param([1.0, 2.0])
    opt = Adam([p])
    p.grad = np.ones(2, dtype=np.float32)
    with pytest.raises(ValueError, match=r"params\[0\].*float32"):
        opt.step()


# ---------------------------------------------------------------- optimizer state


def plain_values(obj):
    """Every leaf of a nested structure: arrays and plain Python values only."""
    if isinstance(obj, dict):
        assert all(isinstance(k, str) for k in obj)
        for v in obj.values():
            yield from plain_values(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from plain_values(v)
    else:
        yield obj


@pytest.mark.parametrize("opt_cls,kwargs", ALL_RULES)
def test_state_dict_holds_only_arrays_and_plain_numbers(opt_cls, kwargs):
    p, opt = run(opt_cls, [1.0, 2.0], [[0.1, 0.2]] * 2, **kwargs)
    for leaf in plain_values(opt.state_dict()):
        assert type(leaf) in (np.ndarray, int, float, bool, str), type(leaf)


@pytest.mark.parametrize("opt_cls,kwargs", ALL_RULES)
def test_load_state_dict_makes_a_fresh_optimizer_continue_identically(opt_cls, kwargs):
    rng = np.random.default_rng(1)
    p0 = rng.normal(size=3)
    grads = [rng.normal(size=3) for _ in range(6)]
    straight, _ = run(opt_cls, p0, grads, **kwargs)

    first, opt = run(opt_cls, p0, grads[:3], **kwargs)
    sd = opt.state_dict()
    second = make_param(first.data.copy())
    other_kwargs = dict(kwargs, lr=123.0)
    resumed = opt_cls([second], **other_kwargs)
    resumed.load_state_dict(sd)
    assert resumed.lr == opt.lr
    for g in grads[3:]:
        second.grad = g
        resumed.step()
    np.testing.assert_array_equal(second.data, straight.data)


def test_state_dict_is_a_copy_and_load_copies_too():
    p, opt = run(Adam, [1.0], [[1.0]])
    sd = opt.state_dict()
    sd["state"]["0"]["exp_avg"][...] = 99.0
    assert opt.state[0]["exp_avg"][0] != 99.0
    opt.load_state_dict(sd)
    sd["state"]["0"]["exp_avg"][...] = 7.0
    assert opt.state[0]["exp_avg"][0] == 99.0


def test_load_state_dict_names_what_does_not_match():
    _, opt = run(Adam, [1.0, 2.0], [[1.0, 1.0]])
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="2 parameters but this optimizer has 1"):
        Adam([make_param([1.0])]).load_state_dict({**sd, "param_groups": [{"lr": 1.0, "params": [0, 1]}]})
    with pytest.raises(ValueError, match=r"exp_avg.*shape \(2,\).*shape \(3,\)"):
        Adam([make_param([1.0, 2.0, 3.0])]).load_state_dict(sd)


# ---------------------------------------------------------------- clip_grad_norm_


@given(
    st.lists(st.sampled_from([(3,), (2, 2), (1,), (4, 1, 2)]), min_size=1, max_size=4),
    st.integers(0, 2**32 - 1),
    st.sampled_from([1e-3, 0.5, 1.0, 10.0, 1e3]),
    st.sampled_from([np.float32, np.float64]),
)
def test_clip_grad_norm_returns_the_global_norm_and_scales_to_max_norm(shapes_, seed, max_norm, dtype):
    rng = np.random.default_rng(seed)
    params = [make_param(np.zeros(s), dtype) for s in shapes_]
    grads = [rng.normal(size=s).astype(dtype) for s in shapes_]
    for p, g in zip(params, grads):
        p.grad = g.copy()
    expected_norm = np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in grads))
    rtol = 1e-5 if dtype == np.float32 else 1e-12

    total = clip_grad_norm_(params, max_norm)

    assert type(total) is float
    np.testing.assert_allclose(total, expected_norm, rtol=rtol)
    coef = min(1.0, max_norm / (expected_norm + 1e-6))
    for p, g in zip(params, grads):
        assert p.grad.dtype == dtype
        np.testing.assert_allclose(p.grad, g.astype(np.float64) * coef, rtol=rtol, atol=0)
    new_norm = np.sqrt(sum(np.sum(p.grad.astype(np.float64) ** 2) for p in params))
    assert new_norm <= max_norm * (1 + rtol)


def test_clip_grad_norm_leaves_gradients_below_max_norm_untouched():
    p = make_param([0.0, 0.0])
    p.grad = np.array([3.0, 4.0])
    array = p.grad
    assert clip_grad_norm_([p], max_norm=5.0 + 1e-3) == 5.0
    assert p.grad is array
    np.testing.assert_array_equal(p.grad, [3.0, 4.0])


def test_clip_grad_norm_uses_pytorchs_coefficient_and_ignores_missing_grads():
    a, b, c = make_param([0.0, 0.0]), make_param([0.0]), make_param([0.0])
    a.grad, c.grad = np.array([3.0, 0.0]), np.array([4.0])
    assert clip_grad_norm_([a, b, c], max_norm=1.0) == 5.0
    coef = 1.0 / (5.0 + 1e-6)
    np.testing.assert_array_equal(a.grad, [3.0 * coef, 0.0])
    np.testing.assert_array_equal(c.grad, [4.0 * coef])
    assert b.grad is None


def test_clip_grad_norm_can_refuse_a_non_finite_norm():
    p = make_param([0.0])
    p.grad = np.array([np.inf])
    with pytest.raises(RuntimeError, match="inf"):
        clip_grad_norm_([p], 1.0, error_if_nonfinite=True)


# ---------------------------------------------------------------- LinearWarmup


def lrs_seen_by_updates(base_lr, warmup_steps, updates):
    p = make_param([0.0])
    opt = SGD([p], lr=base_lr)
    sched = LinearWarmup(opt, warmup_steps)
    seen = []
    for _ in range(updates):
        seen.append(opt.lr)  # the rate optimizer.step() is about to use
        sched.step()
    return seen


def test_warmup_ramps_linearly_from_base_lr_over_warmup_steps_then_holds():
    # update k (1-based) uses base_lr * min(1, k / warmup_steps)
    assert lrs_seen_by_updates(2.0, 4, 7) == [0.5, 1.0, 1.5, 2.0, 2.0, 2.0, 2.0]


@pytest.mark.parametrize("warmup_steps", [0, 1])
def test_no_warmup_means_the_full_rate_from_the_first_update(warmup_steps):
    assert lrs_seen_by_updates(0.1, warmup_steps, 3) == [0.1, 0.1, 0.1]


def test_warmup_state_dict_resumes_the_ramp():
    p = make_param([0.0])
    opt = SGD([p], lr=1.0)
    sched = LinearWarmup(opt, 10)
    for _ in range(3):
        sched.step()
    fresh_opt = SGD([make_param([0.0])], lr=1.0)
    fresh = LinearWarmup(fresh_opt, 10)
    fresh.load_state_dict(sched.state_dict())
    assert fresh_opt.lr == opt.lr == 0.4
    fresh.step()
    assert fresh_opt.lr == 0.5


def test_warmup_rejects_a_negative_length():
    with pytest.raises(ValueError):
        LinearWarmup(SGD([make_param([0.0])], lr=1.0), -1)


# ---------------------------------------------------------------- EMA


class TwoParams(Module):
    def __init__(self, rng, dtype=np.float32):
        super().__init__()
        self.weight = Parameter(rng.normal(size=(3, 2)).astype(dtype))
        self.bias = Parameter(rng.normal(size=(2,)).astype(dtype))


@given(st.integers(0, 2**32 - 1), st.sampled_from([0.0, 0.5, 0.9, 0.9999, 1.0]), st.integers(1, 6))
def test_ema_follows_shadow_equals_decay_shadow_plus_one_minus_decay_param(seed, decay, updates):
    rng = np.random.default_rng(seed)
    model = TwoParams(rng, np.float64)
    ema = EMA(model, decay=decay)
    expected = {k: v.copy() for k, v in model.state_dict().items()}
    for _ in range(updates):
        for _, p in model.named_parameters():
            p.data[...] = rng.normal(size=p.shape)
        ema.update()
        for name, p in model.named_parameters():
            expected[name] = decay * expected[name] + (1 - decay) * p.data
    for name in expected:
        np.testing.assert_allclose(ema.shadow[name], expected[name], rtol=1e-13, atol=1e-15)
    assert ema.num_updates == updates


def test_ema_of_a_constant_parameter_closes_the_gap_geometrically():
    # s_n = p + decay^n (s_0 - p)
    model = TwoParams(np.random.default_rng(0), np.float64)
    ema = EMA(model, decay=0.9)
    s0 = model.state_dict()
    for _, p in model.named_parameters():
        p.data[...] = 1.0
    for _ in range(10):
        ema.update()
    for name, s in ema.shadow.items():
        np.testing.assert_allclose(s, 1.0 + 0.9**10 * (s0[name] - 1.0), rtol=1e-13)


def test_ema_shadow_starts_as_a_copy_in_the_parameters_dtype():
    model = TwoParams(np.random.default_rng(0))
    ema = EMA(model)
    assert ema.decay == 0.9999
    for name, p in model.named_parameters():
        assert ema.shadow[name].dtype == np.float32
        assert not np.shares_memory(ema.shadow[name], p.data)
        np.testing.assert_array_equal(ema.shadow[name], p.data)
    ema.update()
    assert all(s.dtype == np.float32 for s in ema.shadow.values())


def test_ema_copy_to_loads_the_shadow_into_a_model():
    rng = np.random.default_rng(0)
    model, other = TwoParams(rng), TwoParams(rng)
    ema = EMA(model, decay=0.5)
    for _, p in model.named_parameters():
        p.data += 1.0
    ema.update()
    ema.copy_to(other)
    for name, p in other.named_parameters():
        np.testing.assert_array_equal(p.data, ema.shadow[name])
    ema.copy_to()
    for name, p in model.named_parameters():
        np.testing.assert_array_equal(p.data, ema.shadow[name])


def test_ema_state_dict_round_trip_and_errors():
    rng = np.random.default_rng(0)
    model = TwoParams(rng)
    ema = EMA(model, decay=0.9)
    for _, p in model.named_parameters():
        p.data += 1.0
    ema.update()
    sd = ema.state_dict()
    fresh = EMA(TwoParams(rng), decay=0.5)
    fresh.load_state_dict(sd)
    assert (fresh.decay, fresh.num_updates) == (0.9, 1)
    for name in sd["shadow"]:
        np.testing.assert_array_equal(fresh.shadow[name], ema.shadow[name])
    bad = {**sd, "shadow": {"weight": np.zeros((2, 2), np.float32), "bias": sd["shadow"]["bias"]}}
    with pytest.raises(ValueError, match=r"weight: checkpoint \(2, 2\) vs model \(3, 2\)"):
        fresh.load_state_dict(bad)
    with pytest.raises(KeyError, match="bias"):
        fresh.load_state_dict({**sd, "shadow": {"weight": sd["shadow"]["weight"]}})


# ---------------------------------------------------------------- the pieces together


def test_optimizer_base_class_is_exported_and_abstract():
    opt = Optimizer([make_param([1.0])], lr=0.1)
    opt.params[0].grad = np.ones(1)
    with pytest.raises(NotImplementedError):
        opt.step()


def test_a_tiny_regression_trains_with_adam_warmup_clipping_and_ema():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    w_true = np.array([[1.0], [-2.0], [0.5]], dtype=np.float32)
    y = x @ w_true
    w = Parameter(np.zeros((3, 1), np.float32))
    opt = Adam([w], lr=0.1)
    sched = LinearWarmup(opt, 10)
    losses = []
    for _ in range(200):
        opt.zero_grad()
        loss = ((td.tensor(x) @ w - td.tensor(y)) ** 2).mean()
        loss.backward()
        clip_grad_norm_([w], 10.0)
        opt.step()
        sched.step()
        losses.append(float(loss.data))
    assert losses[-1] < 1e-3 * losses[0]
    assert w.dtype == np.float32
    np.testing.assert_allclose(w.data, w_true, atol=2e-2)
    assert math.isfinite(losses[-1])


def test_hyperparameters_become_python_floats_so_float32_math_stays_float32():
    p = make_param([1.0], np.float32)
    opt = Adam([p], lr=np.float64(0.1), betas=(np.float64(0.9), 0.999))
    opt.lr = np.float64(0.01)
    assert type(opt.lr) is float and all(type(b) is float for b in opt.betas)
    sd = opt.state_dict()
    sd["param_groups"][0].update(lr=np.float64(0.5), eps=np.float32(1e-6), betas=[0.8, 0.99])
    opt.load_state_dict(sd)
    assert (type(opt.lr), type(opt.eps), opt.betas) == (float, float, (0.8, 0.99))
