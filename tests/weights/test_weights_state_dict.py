"""load_state_dict: formats, unwrapping, 'module.' stripping, clear errors."""
from __future__ import annotations

import pickle
from collections import OrderedDict

import pytest
import torch
from safetensors.torch import save_file

from extract.weights import load_state_dict
from extract.weights.state_dict import save_safetensors


def _sd() -> OrderedDict:
    return OrderedDict(conv=torch.arange(6.0).reshape(2, 3), bn=torch.tensor(3, dtype=torch.int64))


@pytest.mark.parametrize("wrap", [
    lambda sd: sd,
    lambda sd: {"state_dict": sd, "epoch": 4, "best_acc": torch.tensor(0.9)},
    lambda sd: {"model": sd, "optimizer": {"lr": 0.1}},
    lambda sd: {"model_state_dict": sd, "config": "x"},
    lambda sd: {"state_dict": OrderedDict((f"module.{k}", v) for k, v in sd.items())},
    lambda sd: {"checkpoint": 1, "model": {"state_dict": sd}},
])
def test_unwraps_and_strips(tmp_path, wrap) -> None:
    path = tmp_path / "ckpt.pth"
    torch.save(wrap(_sd()), path)
    got = load_state_dict(path)
    assert list(got) == ["conv", "bn"]
    assert torch.equal(got["conv"], _sd()["conv"]) and got["bn"].dtype == torch.int64


def test_safetensors_and_partial_module_prefix(tmp_path) -> None:
    path = tmp_path / "w.safetensors"
    save_file({"module.a": torch.ones(2), "b": torch.zeros(1)}, str(path))
    assert set(load_state_dict(path)) == {"module.a", "b"}  # only a common prefix is stripped


def test_hf_directory_with_bin(tmp_path) -> None:
    torch.save({"x": torch.ones(1)}, tmp_path / "pytorch_model.bin")
    assert set(load_state_dict(tmp_path)) == {"x"}


def test_errors_name_the_file(tmp_path) -> None:
    notdict = tmp_path / "list.pt"
    torch.save([torch.ones(1)], notdict)
    with pytest.raises(ValueError, match="list.pt.*not a mapping"):
        load_state_dict(notdict)
    mixed = tmp_path / "mixed.pt"
    torch.save({"w": torch.ones(1), "epoch": 3}, mixed)
    with pytest.raises(ValueError, match="mixed.pt.*epoch"):
        load_state_dict(mixed)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ValueError, match="garbage.pth"):
        load_state_dict(garbage)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        load_state_dict(tmp_path / "missing.pth")
    bad_st = tmp_path / "bad.safetensors"
    bad_st.write_bytes(b"\x00" * 16)
    with pytest.raises(ValueError, match="bad.safetensors"):
        load_state_dict(bad_st)


class _Custom:
    pass


def test_pickled_objects_are_refused_with_a_hint(tmp_path) -> None:
    path = tmp_path / "objs.pth"
    torch.save({"state_dict": {"w": torch.ones(1)}, "meter": _Custom()}, path)
    with pytest.raises(ValueError, match="eri-weights import NAME"):
        load_state_dict(path)
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"w": 1}, protocol=2))
    with pytest.raises(ValueError, match="plain.pkl"):
        load_state_dict(plain)


def test_save_safetensors_handles_shared_storage(tmp_path) -> None:
    base = torch.arange(10.0)
    path = save_safetensors({"a": base, "view": base[2:5]}, tmp_path / "out.safetensors")
    got = load_state_dict(path)
    assert torch.equal(got["view"], torch.tensor([2.0, 3.0, 4.0]))
    assert not list(tmp_path.glob(".*part"))
