"""Checkpoints: exact round trips without pickle, atomic writes, clear errors on
anything that is not a complete checkpoint, and training that resumes bit for bit."""

import math
import os
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinydiff as td
from tinydiff.nn import Module, Parameter
from tinydiff.optim import EMA, SGD, Adam, AdamW, LinearWarmup, clip_grad_norm_
from tinydiff.serialization import load, save

# ---------------------------------------------------------------- exact comparison


def assert_identical(a, b, where="obj"):
    """Same structure, same types, same key order, bitwise-equal values."""
    if isinstance(a, dict):
        assert type(b) is dict, f"{where}: {type(b).__name__} instead of a dict"
        assert list(a) == list(b), f"{where}: keys {list(b)} instead of {list(a)}"
        for k in a:
            assert_identical(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert type(b) is type(a), f"{where}: {type(b).__name__} instead of {type(a).__name__}"
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f"{where}[{i}]")
    elif isinstance(a, (np.ndarray, np.generic)):
        assert type(b) is type(a), f"{where}: {type(b).__name__} instead of {type(a).__name__}"
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes(), where
    elif isinstance(a, float):
        assert type(b) is float, where
        assert a.hex() == b.hex() or (math.isnan(a) and math.isnan(b)), f"{where}: {b!r} != {a!r}"
    else:
        assert type(b) is type(a) and b == a, f"{where}: {b!r} != {a!r}"


# ---------------------------------------------------------------- strategies

dtypes = st.sampled_from(
    ["float32", "float64", "<f2", ">f8", "int8", "int64", ">i4", "uint16", "uint64", "bool",
     "complex64", "<U3"]
)
arrays = dtypes.flatmap(
    lambda dt: hnp.arrays(np.dtype(dt), hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
)
leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
    | arrays
    | dtypes.flatmap(lambda dt: hnp.from_dtype(np.dtype(dt)).map(lambda v: np.asarray(v, dt)[()]))
)
structures = st.recursive(
    leaves,
    lambda children: st.lists(children, max_size=4)
    | st.lists(children, max_size=4).map(tuple)
    | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)


# ---------------------------------------------------------------- round trips


@given(st.dictionaries(st.text(max_size=6), structures, max_size=5))
def test_nested_structures_round_trip_exactly(tmp_path_factory, obj):
    path = tmp_path_factory.mktemp("ckpt") / "obj.npz"
    save(obj, path)
    assert_identical(obj, load(path))


def test_a_checkpoint_round_trips_model_ema_optimizer_step_and_rng(tmp_path):
    rng = np.random.default_rng(0)
    model = Tiny(rng)
    ema = EMA(model)
    opt = AdamW(model.parameters(), lr=1e-2)
    train(model, opt, None, ema, rng, steps=2)
    ckpt = {
        "model": model.state_dict(),
        "ema": ema.state_dict(),
        "optimizer": opt.state_dict(),
        "step": 1200,
        "rng": rng.bit_generator.state,
    }
    save(ckpt, tmp_path / "ckpt.npz")
    back = load(tmp_path / "ckpt.npz")
    expected = {**ckpt, "model": dict(ckpt["model"]), "ema": {**ckpt["ema"], "shadow": dict(ckpt["ema"]["shadow"])}}
    assert_identical(expected, back)
    assert list(back["model"]) == [name for name, _ in model.named_parameters()]


def test_pcg64_state_beyond_int64_round_trips_and_the_stream_continues(tmp_path):
    rng = np.random.default_rng(12345)
    rng.normal(size=7)
    state = rng.bit_generator.state
    assert state["state"]["state"] > 2**64  # a 128-bit integer
    save({"rng": state}, tmp_path / "rng.npz")
    restored = np.random.default_rng()
    restored.bit_generator.state = load(tmp_path / "rng.npz")["rng"]
    np.testing.assert_array_equal(restored.normal(size=5), rng.normal(size=5))


def test_special_floats_and_big_ints_are_exact(tmp_path):
    obj = {"values": [0.1, -0.0, math.inf, -math.inf, 5e-324, 2**127 + 1, -(2**300), True, 0]}
    save(obj, tmp_path / "f.npz")
    back = load(tmp_path / "f.npz")
    assert_identical(obj, back)
    assert math.copysign(1.0, back["values"][1]) == -1.0
    assert math.isnan(load_after_save(tmp_path, {"nan": math.nan})["nan"])


def load_after_save(tmp_path, obj):
    save(obj, tmp_path / "x.npz")
    return load(tmp_path / "x.npz")


def test_ordered_dicts_load_as_dicts_in_the_same_order(tmp_path):
    obj = OrderedDict([("z", 1), ("a", 2), ("m", OrderedDict([("y", 3), ("b", 4)]))])
    back = load_after_save(tmp_path, obj)
    assert list(back) == ["z", "a", "m"] and list(back["m"]) == ["y", "b"]


def test_loaded_arrays_are_writeable_and_own_their_memory(tmp_path):
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    back = load_after_save(tmp_path, {"a": a})["a"]
    back[0, 0] = 42.0
    assert a[0, 0] == 0.0 and back.flags.writeable


def test_the_file_is_a_plain_npz_that_numpy_reads_without_pickle(tmp_path):
    path = tmp_path / "ckpt.npz"
    save({"w": np.ones((2, 2), np.float32), "step": 3}, path)
    with np.load(path, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["__tinydiff_manifest__", "a0"]
        np.testing.assert_array_equal(npz["a0"], np.ones((2, 2), np.float32))


def test_the_path_is_used_as_given(tmp_path):
    save({"a": 1}, str(tmp_path / "checkpoint.bin"))
    assert os.listdir(tmp_path) == ["checkpoint.bin"]
    assert load(str(tmp_path / "checkpoint.bin")) == {"a": 1}


@pytest.mark.parametrize(
    "obj,where",
    [
        ({"a": {"b": np.array([None, 1], dtype=object)}}, r"obj\['a'\]\['b'\]"),
        ({"a": [1, {2, 3}]}, r"obj\['a'\]\[1\]"),
        ({"a": {1: 2}}, r"obj\['a'\]"),
        ({"t": td.tensor([1.0])}, r"obj\['t'\].*state_dict"),
        ({"b": b"bytes"}, r"obj\['b'\]"),
        ({"m": np.ma.masked_array([1, 2])}, r"obj\['m'\]"),
    ],
)
def test_unsavable_values_raise_type_error_naming_their_place_and_write_nothing(tmp_path, obj, where):
    with pytest.raises(TypeError, match=where):
        save(obj, tmp_path / "ckpt.npz")
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- atomicity


class Interrupted(Exception):
    pass


def fail_on_second_array(monkeypatch, tmp_path, exc_type=Interrupted):
    """Make numpy's .npy writer raise midway through a save (after one entry), and
    check, at that moment, that the target still holds the old checkpoint."""
    real = np.lib.format.write_array
    calls = []

    def write_array(fp, array, *args, **kwargs):
        calls.append(array)
        if len(calls) == 3:
            temps = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
            assert len(temps) == 1, "the temporary file lives beside the target"
            raise exc_type("disk full")
        return real(fp, array, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", write_array)
    return calls


def fail_at(name):
    def setup(monkeypatch, tmp_path):
        def boom(*args, **kwargs):
            raise Interrupted(f"crash in {name}")

        monkeypatch.setattr(os, name, boom)

    return setup


@pytest.mark.parametrize(
    "interrupt",
    [
        fail_on_second_array,
        lambda mp, tp: fail_on_second_array(mp, tp, KeyboardInterrupt),
        fail_at("fsync"),
        fail_at("replace"),
    ],
    ids=["mid-write", "ctrl-c-mid-write", "at-fsync", "at-rename"],
)
def test_an_interrupted_save_keeps_the_previous_checkpoint_and_leaves_no_temp_file(
    tmp_path, monkeypatch, interrupt
):
    path = tmp_path / "ckpt.npz"
    old = {"model": {"w": np.arange(10.0), "b": np.zeros(3)}, "step": 1}
    save(old, path)
    old_bytes = path.read_bytes()

    interrupt(monkeypatch, tmp_path)
    new = {"model": {"w": np.ones(10), "b": np.ones(3)}, "step": 2}
    with pytest.raises((Interrupted, KeyboardInterrupt)):
        save(new, path)
    monkeypatch.undo()

    assert os.listdir(tmp_path) == ["ckpt.npz"]
    assert path.read_bytes() == old_bytes
    assert_identical({"model": old["model"], "step": 1}, load(path))


def test_save_replaces_an_existing_checkpoint(tmp_path):
    path = tmp_path / "ckpt.npz"
    save({"step": 1}, path)
    save({"step": 2}, path)
    assert load(path) == {"step": 2}
    assert os.listdir(tmp_path) == ["ckpt.npz"]


def test_save_fsyncs_the_file_and_then_its_directory(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(os.path.isdir(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else None)
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    save({"a": np.zeros(2)}, tmp_path / "c.npz")
    assert len(synced) == 2
    if synced[0] is not None:
        assert synced == [False, True]


# ---------------------------------------------------------------- foreign and broken files


def assert_rejected(path):
    with pytest.raises(ValueError, match="not a readable tinydiff checkpoint") as info:
        load(path)
    assert str(path) in str(info.value)


def test_a_checkpoint_cut_short_anywhere_is_rejected(tmp_path):
    path = tmp_path / "ckpt.npz"
    save({"w": np.arange(12, dtype=np.float32), "step": 7, "rng": np.random.default_rng(0).bit_generator.state}, path)
    data = path.read_bytes()
    cut = tmp_path / "cut.npz"
    # every cut inside the headers at either end, and a sample of the ones between
    cuts = set(range(64)) | set(range(len(data) - 200, len(data))) | set(range(0, len(data), 7))
    for n in sorted(cuts):
        cut.write_bytes(data[:n])
        assert_rejected(cut)


def test_a_flipped_bit_in_an_array_is_caught_by_the_zip_checksum(tmp_path):
    path = tmp_path / "ckpt.npz"
    save({"w": np.zeros(1000, dtype=np.float32)}, path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    assert_rejected(path)


def test_random_bytes_and_empty_files_are_rejected(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(np.random.default_rng(0).bytes(300))
    assert_rejected(junk)
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    assert_rejected(empty)


def test_a_plain_npz_or_npy_is_rejected(tmp_path):
    np.savez(tmp_path / "plain.npz", a=np.ones(3))
    assert_rejected(tmp_path / "plain.npz")
    np.save(tmp_path / "one.npy", np.ones(3))
    assert_rejected(tmp_path / "one.npy")


def write_archive(path, manifest_text, arrays, allow_pickle=False):
    with zipfile.ZipFile(path, "w") as zf:
        entries = {"__tinydiff_manifest__": np.frombuffer(manifest_text.encode(), np.uint8), **arrays}
        for name, arr in entries.items():
            with zf.open(name + ".npy", "w") as f:
                np.lib.format.write_array(f, arr, allow_pickle=allow_pickle)


GOOD_ROOT = '{"type":"dict","items":[["w",{"type":"array","key":"a0","dtype":"<f8","shape":[2]}]]}'


@pytest.mark.parametrize(
    "manifest,arrays,allow_pickle",
    [
        ('{"format":"tinydiff-checkpoint","version":1,"root":' + GOOD_ROOT + "}",
         {"a0": np.array([1, None], dtype=object)}, True),
        ('{"format":"tinydiff-checkpoint","version":1,"root":' + GOOD_ROOT + "}", {}, False),
        ('{"format":"tinydiff-checkpoint","version":1,"root":' + GOOD_ROOT + "}",
         {"a0": np.zeros(3)}, False),
        ('{"format":"tinydiff-checkpoint","version":1,"root":' + GOOD_ROOT + "}",
         {"a0": np.zeros(2), "a1": np.zeros(1)}, False),
        ('{"format":"tinydiff-checkpoint","version":99,"root":' + GOOD_ROOT + "}",
         {"a0": np.zeros(2)}, False),
        ('{"format":"something-else","version":1,"root":' + GOOD_ROOT + "}", {"a0": np.zeros(2)}, False),
        ('{"format":"tinydiff-checkpoint","version":1,"root":{"type":"pickle"}}', {}, False),
        ("not json at all", {}, False),
    ],
    ids=["object-array", "missing-array", "wrong-shape", "extra-array", "future-version",
         "foreign-format", "unknown-node", "bad-json"],
)
def test_archives_with_a_bad_manifest_or_content_are_rejected(tmp_path, manifest, arrays, allow_pickle):
    path = tmp_path / "forged.npz"
    write_archive(path, manifest, arrays, allow_pickle)
    assert_rejected(path)


def test_the_forged_archive_helper_makes_loadable_files_when_well_formed(tmp_path):
    # guards the test above: its archives fail for the reason each one names
    path = tmp_path / "ok.npz"
    write_archive(path, '{"format":"tinydiff-checkpoint","version":1,"root":' + GOOD_ROOT + "}",
                  {"a0": np.zeros(2)})
    assert_identical({"w": np.zeros(2)}, load(path))


def test_a_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nope.npz")


# ---------------------------------------------------------------- resuming training


class Tiny(Module):
    """x -> tanh(x W1 + b1) W2: enough to give every optimizer state entry a job."""

    def __init__(self, rng):
        super().__init__()
        self.w1 = Parameter(rng.normal(size=(3, 8)).astype(np.float32) * 0.5)
        self.b1 = Parameter(np.zeros(8, np.float32))
        self.w2 = Parameter(rng.normal(size=(8, 1)).astype(np.float32) * 0.5)

    def forward(self, x):
        return td.tanh(x @ self.w1 + self.b1) @ self.w2


def train(model, opt, sched, ema, rng, steps):
    """Each step draws its batch from ``rng``: resuming must restore the data stream too."""
    for _ in range(steps):
        x = rng.normal(size=(16, 3)).astype(np.float32)
        y = np.sin(x.sum(axis=1, keepdims=True)).astype(np.float32)
        opt.zero_grad()
        loss = ((model(td.tensor(x)) - td.tensor(y)) ** 2).mean()
        loss.backward()
        clip_grad_norm_(model.parameters(), 0.5)
        opt.step()
        if sched is not None:
            sched.step()
        ema.update()


def build(opt_cls, opt_kwargs, seed):
    rng = np.random.default_rng(seed)
    model = Tiny(rng)
    opt = opt_cls(model.parameters(), **opt_kwargs)
    return model, opt, LinearWarmup(opt, 5), EMA(model, decay=0.9), rng


@pytest.mark.parametrize(
    "opt_cls,opt_kwargs",
    [(Adam, dict(lr=0.05, weight_decay=1e-3)), (AdamW, dict(lr=0.05)),
     (SGD, dict(lr=0.1, momentum=0.9, nesterov=True))],
)
def test_training_resumed_from_a_checkpoint_is_bit_identical_to_training_straight(
    tmp_path, opt_cls, opt_kwargs
):
    n, k = 12, 7
    model, opt, sched, ema, rng = build(opt_cls, opt_kwargs, seed=0)
    train(model, opt, sched, ema, rng, n)

    model_a, opt_a, sched_a, ema_a, rng_a = build(opt_cls, opt_kwargs, seed=0)
    train(model_a, opt_a, sched_a, ema_a, rng_a, k)
    save({"model": model_a.state_dict(), "ema": ema_a.state_dict(), "optimizer": opt_a.state_dict(),
          "schedule": sched_a.state_dict(), "step": k, "rng": rng_a.bit_generator.state},
         tmp_path / "ckpt.npz")
    del model_a, opt_a, sched_a, ema_a, rng_a

    # a fresh process would build everything from another seed, then load
    model_b, opt_b, sched_b, ema_b, rng_b = build(opt_cls, {**opt_kwargs, "lr": 9.0}, seed=1)
    ckpt = load(tmp_path / "ckpt.npz")
    model_b.load_state_dict(ckpt["model"])
    opt_b.load_state_dict(ckpt["optimizer"])
    sched_b.load_state_dict(ckpt["schedule"])
    ema_b.load_state_dict(ckpt["ema"])
    rng_b.bit_generator.state = ckpt["rng"]
    assert ckpt["step"] == k
    train(model_b, opt_b, sched_b, ema_b, rng_b, n - k)

    assert_identical(dict(model.state_dict()), dict(model_b.state_dict()))
    assert_identical(dict(ema.shadow), dict(ema_b.shadow))
    assert_identical(opt.state_dict(), opt_b.state_dict())
    assert opt.lr == opt_b.lr and sched.last_step == sched_b.last_step == n
    assert all(p.dtype == np.float32 for p in model_b.parameters())

