"""`eri-weights` commands (no network: fetch is exercised only for entries without a source)."""
from __future__ import annotations

import hashlib

import torch
from typer.testing import CliRunner

from extract.weights import WeightsEntry
from extract.weights.cli import app

runner = CliRunner()
DATA = b"pinned bytes" * 100


def _pinned(register) -> WeightsEntry:
    return register(WeightsEntry(name="tiny_cli", description="t", license="MIT", source_name="t.tflite",
                                 sha256=hashlib.sha256(DATA).hexdigest(), url="http://127.0.0.1:9/t"))


def test_help_lists_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for cmd in ("ls", "fetch", "verify", "import", "path", "info"):
        assert cmd in result.output


def test_ls_verify_path_statuses(dirs, register, tmp_path) -> None:
    _pinned(register)
    src = tmp_path / "t.tflite"
    src.write_bytes(DATA)
    assert runner.invoke(app, ["import", "tiny_cli", str(src)]).exit_code == 0
    user = dirs["user"] / "resnet18_affectnet"
    user.mkdir(parents=True)
    torch.save({"fc.weight": torch.ones(2, 2)}, user / "mine.pth")
    ls = runner.invoke(app, ["ls"])
    assert ls.exit_code == 0
    lines = {line.split()[1]: line for line in ls.output.splitlines() if line.startswith("│ ")}
    assert "found" in lines["tiny_cli"] and "unpinned" not in lines["tiny_cli"]
    assert "found, unpinned" in lines["resnet18_affectnet"]
    assert runner.invoke(app, ["path", "resnet18_affectnet"]).output.strip() == str(user / "mine.pth")
    assert "missing" in lines["posterv2"]
    assert runner.invoke(app, ["verify"]).exit_code == 0
    path = runner.invoke(app, ["path", "tiny_cli", "--sha256"])
    assert path.exit_code == 0
    assert path.output.split() == [str(dirs["cache_weights"] / "tiny_cli" / "t.tflite"),
                                   hashlib.sha256(DATA).hexdigest()]
    # corrupt it: verify fails, path explains
    (dirs["cache_weights"] / "tiny_cli" / "t.tflite").write_bytes(b"x" + DATA[1:])
    verify = runner.invoke(app, ["verify"])
    assert verify.exit_code == 1 and "corrupt" in verify.output
    bad = runner.invoke(app, ["path", "tiny_cli"])
    assert bad.exit_code == 1 and "changed since it was fetched" in bad.stderr


def test_path_missing_prints_the_commands(dirs) -> None:
    result = runner.invoke(app, ["path", "densenet121"])
    assert result.exit_code == 1
    assert "eri-weights fetch densenet121" in result.stderr
    assert "eri-weights import densenet121 PATH" in result.stderr


def test_import_reports_dropped_items(dirs, register, tmp_path) -> None:
    from extract.weights.registry import TORCH_CHECKPOINT

    register(WeightsEntry(name="tiny_ckpt", description="t", license="MIT", source_name="tiny.pth",
                          converter=TORCH_CHECKPOINT))
    ckpt = tmp_path / "poster.pth"
    torch.save({"state_dict": {"module.w": torch.ones(3)}, "epoch": 7}, ckpt)
    result = runner.invoke(app, ["import", "tiny_ckpt", str(ckpt)])
    assert result.exit_code == 0, result.output
    assert "dropped epoch: 7" in result.output and "imported" in result.output
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"nope")
    failed = runner.invoke(app, ["import", "tiny_ckpt", str(bad)])
    assert failed.exit_code == 1 and "bad.pth" in failed.stderr


def test_import_refuses_a_checkpoint_of_another_architecture(dirs, tmp_path) -> None:
    from extract.nets.resnet import ResNet18

    ckpt = tmp_path / "resnet18.pth"
    torch.save(ResNet18(7).state_dict(), ckpt)
    result = runner.invoke(app, ["import", "posterv2", str(ckpt)])
    assert result.exit_code == 1
    assert "resnet18.pth" in result.stderr and "VIT.head.linear.weight" in result.stderr
    assert runner.invoke(app, ["path", "posterv2"]).exit_code == 1  # nothing was stored
    assert runner.invoke(app, ["import", "resnet18_affectnet", str(ckpt)]).exit_code == 0


def test_every_layout_check_accepts_its_specs_random_weights_and_refuses_others(dirs, tmp_path) -> None:
    """Iterates the registries: a spec's own random checkpoint passes its entries' checks; a
    checkpoint of unrelated keys is refused by every check, naming a key."""
    from extract.catalog import catalog
    from extract.nets.strict import CheckpointMismatch
    from extract.weights import ENTRIES, load_state_dict, resolve
    from extract.weights.store import load_converter

    checked = set()
    for spec in catalog():
        if spec.random_weights is None:
            continue
        for config in ({}, *spec.examples):
            spec.make_random_weights(dirs["user"], config)
            for entry in spec.weights_entries(config):
                check = ENTRIES[entry].layout_check
                if check:
                    load_converter(check)(load_state_dict(resolve(entry).path), entry)
                    checked.add(entry)
    assert checked == {name for name, e in ENTRIES.items() if e.layout_check}
    for name in checked:
        try:
            load_converter(ENTRIES[name].layout_check)({"foo.weight": torch.ones(2, 2)}, "other.pth")
        except CheckpointMismatch as exc:
            assert "other.pth" in str(exc), name
        else:
            raise AssertionError(f"{name}: accepted a checkpoint of another architecture")


def test_fetch_without_source_prints_import_instructions(dirs) -> None:
    result = runner.invoke(app, ["fetch", "posterv2"])
    assert result.exit_code == 1
    assert "skip posterv2" in result.output and "eri-weights import posterv2 PATH" in result.output
    assert runner.invoke(app, ["fetch"]).exit_code == 2
    unknown = runner.invoke(app, ["fetch", "nope"])
    assert unknown.exit_code == 2 and "unknown entry nope" in unknown.stderr


def test_info(dirs) -> None:
    result = runner.invoke(app, ["info", "blazeface"])
    assert result.exit_code == 0
    assert "mediapipe==0.10.21" in result.output and "Apache-2.0" in result.output
