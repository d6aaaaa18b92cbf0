"""The restricted unpickler behind `eri-weights import`: malicious pickles never run, and
checkpoints that pickle training objects (POSTER V2 style) import with their tensors intact."""
from __future__ import annotations

import builtins
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from extract.weights import UnsafeCheckpoint, WeightsEntry, load_state_dict, resolve
from extract.weights.importer import import_weights, read_checkpoint
from extract.weights.registry import TORCH_CHECKPOINT
from extract.weights.safe_pickle import restricted_load

# The import target: a checkpoint entry without a layout check, so that these tests see the unpickler
# alone (tests/extract/test_posterv2.py imports a full POSTER V2 training checkpoint as `posterv2`).
TARGET = "pickled_ckpt"


@pytest.fixture(autouse=True)
def target_entry(register):
    return register(WeightsEntry(name=TARGET, description="a torch checkpoint", license="MIT",
                                 source_name="ckpt.pth", converter=TORCH_CHECKPOINT))


class _OsSystem:
    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self):
        return (os.system, (f"touch {self.sentinel}",))


class _Eval:
    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self):
        return (builtins.eval, (f"open({str(self.sentinel)!r}, 'w').close()",))


class _Subprocess:
    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self):
        return (subprocess.call, (["touch", str(self.sentinel)],))


ATTACKS = {"os.system": _OsSystem, "builtins.eval": _Eval, "subprocess.call": _Subprocess}
REFUSED_NAME = {"os.system": os.system.__module__ + ".system", "builtins.eval": "builtins.eval",
                "subprocess.call": "subprocess.call"}


@pytest.mark.parametrize("attack", ATTACKS)
def test_malicious_plain_pickle_is_refused_without_side_effect(tmp_path, dirs, attack) -> None:
    sentinel = tmp_path / "SENTINEL"
    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps(ATTACKS[attack](sentinel), protocol=2))
    with pytest.raises(UnsafeCheckpoint) as info:
        import_weights(TARGET, path)
    msg = str(info.value)
    assert str(path) in msg and "no tensors found" in msg and REFUSED_NAME[attack] in msg
    assert not sentinel.exists()
    assert not (dirs["cache_weights"] / TARGET).exists() or \
        not any((dirs["cache_weights"] / TARGET).iterdir())


@pytest.mark.parametrize("attack", ATTACKS)
def test_malicious_object_inside_torch_zip_is_neutralised(tmp_path, dirs, attack) -> None:
    sentinel = tmp_path / "SENTINEL"
    path = tmp_path / "evil_zip.pth"
    evil = ATTACKS[attack](sentinel)
    torch.save({"state_dict": {"module.w": torch.arange(4.0)}, "payload": evil,
                "nested": {"deeper": [evil]}}, path)
    with pytest.raises(pickle.UnpicklingError):  # torch's own safe loader refuses it
        torch.load(path, weights_only=True)
    result = import_weights(TARGET, path)
    assert not sentinel.exists()
    assert any(f"payload: {REFUSED_NAME[attack]} placeholder" in d for d in result.dropped)
    assert any("refused globals" in d and REFUSED_NAME[attack] in d for d in result.dropped)
    assert torch.equal(load_state_dict(resolve(TARGET).path)["w"], torch.arange(4.0))


def test_unpickler_never_imports_a_module(tmp_path, monkeypatch) -> None:
    sentinel = tmp_path / "IMPORTED"
    (tmp_path / "eri_trap_module.py").write_text(
        f"open({str(sentinel)!r}, 'w').close()\ndef f(*a):\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "trap.pkl"
    path.write_bytes(b"\x80\x02ceri_trap_module\nf\nq\x00)R}q\x01X\x01\x00\x00\x00kq\x02h\x00sb.")
    obj, refused = restricted_load(path)
    assert refused == {"eri_trap_module.f"}
    assert "eri_trap_module" not in sys.modules and not sentinel.exists()
    assert "placeholder" in repr(obj)


POSTER_SCRIPT = textwrap.dedent("""
    import sys, numpy as np, torch

    class RecorderMeter:  # exists only in this process (like POSTER V2's main.py)
        def __init__(self, total_epoch):
            self.total_epoch = total_epoch
            self.epoch_losses = np.zeros((total_epoch, 2), dtype=np.float32)

    class _Evil:
        def __reduce__(self):
            import os
            return (os.system, ("touch " + sys.argv[2],))

    torch.manual_seed(0)
    sd = {"module.VIT.head.linear.weight": torch.randn(7, 768),
          "module.VIT.head.linear.bias": torch.randn(7),
          "module.attn1.relative_position_index": torch.arange(16).reshape(4, 4)}
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    torch.save({"epoch": 3, "state_dict": sd, "best_acc": torch.tensor(92.21), "optimizer": opt.state_dict(),
                "recorder": RecorderMeter(5), "recorder1": RecorderMeter(5), "hook": _Evil()}, sys.argv[1])
    torch.save(sd, sys.argv[1] + ".expected")
""")


def test_posterv2_like_checkpoint_imports_with_tensors_intact(tmp_path, dirs) -> None:
    ckpt, sentinel = tmp_path / "raf-db-model_best.pth", tmp_path / "SENTINEL"
    subprocess.run([sys.executable, "-c", POSTER_SCRIPT, str(ckpt), str(sentinel)], check=True, timeout=120)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(ckpt, weights_only=True)
    result = import_weights(TARGET, ckpt)
    assert not sentinel.exists()
    dropped = "\n".join(result.dropped)
    assert "recorder: __main__.RecorderMeter placeholder" in dropped
    assert "epoch: 3" in dropped and "best_acc: tensor" in dropped and "optimizer: dict" in dropped
    expected = torch.load(str(ckpt) + ".expected", weights_only=True)
    got = load_state_dict(resolve(TARGET).path)
    assert set(got) == {k.removeprefix("module.") for k in expected}
    for key, value in expected.items():
        assert torch.equal(got[key.removeprefix("module.")], value)
        assert got[key.removeprefix("module.")].dtype == value.dtype


def test_numpy_arrays_become_tensors(tmp_path) -> None:
    # like vggish_pca_params: a torch.save'd dict of numpy arrays (refused by weights_only=True)
    path = tmp_path / "pca.pth"
    eig = np.random.default_rng(0).standard_normal((4, 4))
    means = np.arange(4, dtype=np.float32)
    torch.save({"pca_eigen_vectors": eig, "pca_means": means, "big_endian": means.astype(">f4"),
                "fortran": np.asfortranarray(eig), "objects": np.array([{"a": 1}], dtype=object)}, path)
    split = read_checkpoint(path)
    assert torch.equal(split.tensors["pca_eigen_vectors"], torch.from_numpy(eig))
    assert torch.equal(split.tensors["pca_means"], torch.from_numpy(means))
    assert torch.equal(split.tensors["big_endian"].float(), torch.from_numpy(means))
    assert torch.equal(split.tensors["fortran"], torch.from_numpy(eig))
    assert "objects" not in split.tensors


def test_whole_pickled_module_yields_its_parameters(tmp_path) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3))
    path = tmp_path / "whole.pt"
    torch.save(model, path)
    split = read_checkpoint(path)
    assert set(split.tensors) == set(model.state_dict())
    for key, value in model.state_dict().items():
        assert torch.equal(split.tensors[key], value)


def test_not_a_checkpoint(tmp_path) -> None:
    path = tmp_path / "notes.pth"
    path.write_text("hello")
    with pytest.raises(UnsafeCheckpoint, match="notes.pth"):
        read_checkpoint(path)


class _Meter:
    def __init__(self) -> None:
        self.best = np.float64(0.5)


def test_restricted_reader_rebuilds_views_and_dtypes(tmp_path) -> None:
    base = torch.arange(12.0).reshape(3, 4)
    sd = {"base": base, "view": base[1:, 1:3], "t": base.t(), "bf16": torch.ones(3, dtype=torch.bfloat16),
          "i8": torch.tensor([-1, 2], dtype=torch.int8), "mask": torch.tensor([True, False]),
          "scalar": torch.tensor(2.5), "empty": torch.zeros(0, 3), "param": torch.nn.Parameter(torch.ones(2))}
    path = tmp_path / "mixed.pth"
    torch.save({"state_dict": sd, "meter": _Meter(), "acc": np.float64(0.75)}, path)
    split = read_checkpoint(path)
    assert set(split.tensors) == set(sd)
    for key, value in sd.items():
        assert split.tensors[key].dtype == value.dtype and torch.equal(split.tensors[key], value.detach()), key
    assert "acc: 0.75" in split.dropped
    assert any("_Meter placeholder" in d for d in split.dropped)
