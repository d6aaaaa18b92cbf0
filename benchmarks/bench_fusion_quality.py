"""Fusion quality and speed: every head's devel mean PCC and wall time through `eri-fit`,
against the ridge baseline and the noise ceiling, before and after issue 11, in one run.

Data (fusion/synthetic_events.py): 1400 train / 300 devel / 100 test clips of 10-15 s; each
emotion is the amplitude of a transient event of its own width in one or both of two streams
(eGeMAPS-like audio at 10 Hz, dim 24; VGGFace2-like video at 4 Hz, dim 32) under AR(1) noise,
distractor events and per-clip offsets. Written as MuSe-Reaction CSVs (feats/<Feature>/<id>.csv
with File_ID `[00001]`, labels.csv, partition.csv with train/devel/test) and imported with
`eri-store import-csv feats/`, then every head is fitted with `eri-fit --head H` (its defaults),
each in a fresh process, timed from start to exit (imports, loading, ridge baseline, training,
plots). "before" runs the same command with the code of --before REV (the commit before issue 11,
extracted with git archive), at the same thread count. Then the chosen default is checked on a
SECOND generator it was not tuned on (fusion/synthetic.py: oscillation amplitudes with random
phase, burst positions, slopes, levels), against ridge on pooled statistics.

    .venv/bin/python benchmarks/bench_fusion_quality.py                      # everything (~1 h on 2 cores)
    .venv/bin/python benchmarks/bench_fusion_quality.py --heads conv_pool,te --before none
    .venv/bin/python benchmarks/bench_fusion_quality.py --train 700 --devel 150 --no-second

Results: printed table and benchmarks/results/fusion_quality.json (every figure with the 1-minute
load average when it was taken: the machine may be shared).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fusion.heads import list_heads  # noqa: E402
from fusion.metrics import score  # noqa: E402
from fusion.synthetic_events import EventSpec, noise_ceiling, write_muse_files, write_muse_layout  # noqa: E402
from fusion.threads import auto_threads  # noqa: E402

BIN = Path(sys.executable).parent
BEFORE_REV = "5f87a99"          # main before issue 11 (heads lstm, te, tcn_transformer, av_interaction, cross_attention_rnn)
DEFAULT_HEAD = "conv_pool"


def load() -> float:
    return os.getloadavg()[0]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--heads", default="all", help="comma-separated heads (default: every registered head)")
    p.add_argument("--train", type=int, default=1400)
    p.add_argument("--devel", type=int, default=300)
    p.add_argument("--test", type=int, default=100)
    p.add_argument("--seed", type=int, default=0, help="generator seed (the fits use eri-fit's seed 0)")
    p.add_argument("--before", default=BEFORE_REV, help="git revision for the 'before' column, or 'none'")
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads for every fit, before and after (0: eri-fit's automatic choice, "
                        "taken once at the start)")
    p.add_argument("--no-second", dest="second", action="store_false", help="skip the second generator")
    p.add_argument("--thread-check", action="store_true",
                   help="also fit the default head with 1 thread and with every core, back to back (what the "
                        "automatic --threads is based on; the load average tells how busy the machine was)")
    p.add_argument("--workdir", type=Path, help="keep data and runs here (default: a temporary dir, removed)")
    p.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/fusion_quality.json")
    return p.parse_args(argv)


def timed(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, cwd=cwd)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return wall, proc.stdout


def import_features(data: Path) -> tuple[float, str]:
    return timed([str(BIN / "eri-store"), "import-csv", str(data / "feats"), "--store", str(data / "store")])


def fit_args(data: Path, features: list[str], out: Path, head: str, threads: int) -> list[str]:
    return ["--store", str(data / "store"), "--labels", str(data / "labels.csv"), "--partition",
            str(data / "partition.csv"), "--features", ",".join(features), "--head", head, "--out", str(out),
            "--threads", str(threads), "-q"]


def run_fit(data: Path, features: list[str], out: Path, head: str, threads: int,
            code: Path | None = None) -> dict:
    """eri-fit in a fresh process (the `code` snapshot's when given); metrics + wall + load."""
    before = load()
    if code is None:
        cmd = [str(BIN / "eri-fit"), *fit_args(data, features, out, head, threads)]
        env, cwd = None, None
    else:  # run inside the snapshot: `python -c` puts the working directory first on sys.path
        cmd = [sys.executable, "-c", "import sys; from fusion.cli import fit_main; sys.exit(fit_main())",
               *fit_args(data, features, out, head, threads)]
        env, cwd = {"PYTHONPATH": str(code)}, code
    wall, _ = timed(cmd, env, cwd)
    m = json.loads((out / "metrics.json").read_text())
    if code is not None:
        assert "recipe" not in m, f"{out}: the 'before' run did not use the old code"
    model = m["models"][0]
    return {"devel_mean_pcc": m["ensemble"]["mean_pcc"], "pcc": m["ensemble"]["pcc"], "wall_s": wall,
            "epochs_run": model["epochs_run"], "best_epoch": model["best_epoch"],
            "train_s": model.get("train_seconds"), "load_before": before, "load_after": load(),
            "baseline": (m.get("baseline") or {}).get("val", {}).get("mean_pcc")}


def snapshot(rev: str, into: Path) -> Path | None:
    """fusion/ and feature_store/ of `rev` (git archive) in `into`."""
    try:
        blob = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev, "fusion", "feature_store"],
                              capture_output=True, check=True).stdout
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        print(f"no 'before' column: cannot read revision {rev} ({exc})", flush=True)
        return None
    into.mkdir(parents=True, exist_ok=True)
    tar = into / "src.tar"
    tar.write_bytes(blob)
    with tarfile.open(tar) as t:
        t.extractall(into, filter="data")
    tar.unlink()
    return into


def event_data(work: Path, a: argparse.Namespace) -> tuple[Path, dict]:
    spec = EventSpec(n_train=a.train, n_devel=a.devel, n_test=a.test, seed=a.seed)
    data = work / "events"
    t0 = time.perf_counter()
    gen = write_muse_layout(data, spec)
    write_s = time.perf_counter() - t0
    import_s, out = import_features(data)
    devel = np.array(gen.partition) == "devel"
    info = {"generator": "fusion.synthetic_events.EventSpec", "spec": {"n_train": a.train, "n_devel": a.devel,
            "n_test": a.test, "seed": a.seed, "event_gain": spec.event_gain, "label_noise": spec.label_noise,
            "streams": [spec.audio.__dict__, spec.video.__dict__]},
            "noise_ceiling": noise_ceiling(spec),
            "devel_ceiling": score(gen.clean[devel], gen.labels[devel]).mean,
            "write_csv_s": write_s, "import_s": import_s, "features": [spec.audio.name, spec.video.name]}
    print(f"events: {a.train}/{a.devel}/{a.test} clips written as MuSe CSVs in {write_s:.1f} s, imported with "
          f"eri-store import-csv in {import_s:.1f} s; noise ceiling {info['noise_ceiling']:.3f} "
          f"(on these devel clips {info['devel_ceiling']:.3f})", flush=True)
    return data, info


def second_data(work: Path, a: argparse.Namespace) -> tuple[Path, dict]:
    from fusion.synthetic import SyntheticSpec, iter_synthetic
    from fusion.synthetic import noise_ceiling as second_ceiling
    n = a.train + a.devel + a.devel
    spec = SyntheticSpec(n_clips=n, split=(a.train / n, a.devel / n, a.devel / n), seed=a.seed + 1,
                         audio_name="DeepSpectrum", video_name="FAU")
    data, clips = iter_synthetic(spec)
    partition = [{"val": "devel"}.get(s, s) for s in data.split]
    root = work / "second"
    write_muse_files(root, {"a": ("DeepSpectrum", spec.audio_step_s), "v": ("FAU", spec.video_step_s)},
                     ((data.ids[i], {"a": x, "v": v}) for i, x, v in clips), data.ids, partition, data.labels)
    import_features(root)
    devel = np.array(partition) == "devel"
    return root, {"generator": "fusion.synthetic.SyntheticSpec", "clips": n,
                  "noise_ceiling": second_ceiling(spec.label_noise),
                  "devel_ceiling": score(data.clean[devel], data.labels[devel]).mean,
                  "features": ["DeepSpectrum", "FAU"]}


def row(name: str, r: dict | None) -> str:
    if not r:
        return f"{'-':>7} {'-':>7}"
    return f"{r['devel_mean_pcc']:7.3f} {r['wall_s']:6.0f}s"


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    threads = a.threads or auto_threads()
    heads = [h.name for h in list_heads()] if a.heads == "all" else [h.strip() for h in a.heads.split(",")]
    work = a.workdir or Path(tempfile.mkdtemp(prefix="bench_fusion_quality_"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict = {"threads": threads, "load_start": load(), "uptime": _uptime(), "heads": {},
                     "before_rev": None if a.before == "none" else a.before, "command": sys.argv}
    print(f"{_uptime()}; {threads} torch thread(s) for every fit; workdir {work}", flush=True)
    data, results["events"] = event_data(work, a)
    feats = results["events"]["features"]
    old = snapshot(a.before, work / "before_src") if a.before != "none" else None
    old_heads = {"lstm", "te", "tcn_transformer", "av_interaction", "cross_attention_rnn"}
    results["ridge"] = run_fit(data, feats, work / "runs/ridge", "ridge", threads)
    ridge = results["ridge"]["devel_mean_pcc"]
    print(f"ridge baseline (pooled mean/std/max/min, alpha on devel): {ridge:.3f} in "
          f"{results['ridge']['wall_s']:.0f} s", flush=True)
    for head in heads:
        if head == "ridge":
            continue
        r: dict = {}
        if old is not None and head in old_heads:
            r["before"] = run_fit(data, feats, work / f"runs/before_{head}", head, threads, code=old)
        r["after"] = run_fit(data, feats, work / f"runs/{head}", head, threads)
        results["heads"][head] = r
        b = r.get("before")
        speed = f"{b['wall_s'] / r['after']['wall_s']:5.1f}x" if b else "    -"
        print(f"{head:<20} before {row(head, b)}   after {row(head, r['after'])}   speed-up {speed}   "
              f"vs ridge {r['after']['devel_mean_pcc'] - ridge:+.3f}   (load {r['after']['load_before']:.1f})",
              flush=True)
    if a.second and DEFAULT_HEAD in heads:
        sdata, results["second"] = second_data(work, a)
        sf = results["second"]["features"]
        results["second"]["ridge"] = run_fit(sdata, sf, work / "runs/second_ridge", "ridge", threads)
        results["second"]["default"] = run_fit(sdata, sf, work / "runs/second_default", DEFAULT_HEAD, threads)
    if a.thread_check:
        cores = len(os.sched_getaffinity(0))
        results["thread_check"] = {n: run_fit(data, feats, work / f"runs/threads{n}", DEFAULT_HEAD, n)
                                   for n in sorted({1, cores})}
    results["load_end"] = load()
    print_table(results)
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(results, indent=2))
    print(f"results: {a.json}")
    if a.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except FileNotFoundError:
        return f"load average {os.getloadavg()}"


def print_table(res: dict) -> None:
    ev = res["events"]
    ridge = res["ridge"]["devel_mean_pcc"]
    print(f"\nevents benchmark: noise ceiling {ev['noise_ceiling']:.3f} (devel {ev['devel_ceiling']:.3f}); "
          f"ridge {ridge:.3f} in {res['ridge']['wall_s']:.0f} s; {res['threads']} thread(s); {res['uptime']}")
    print("| head | before: devel mean PCC | before: wall | after: devel mean PCC | after: wall | speed-up "
          "| after vs ridge | after / ceiling | epochs (best) | load |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for head, r in res["heads"].items():
        b, x = r.get("before"), r["after"]
        mark = " (default)" if head == DEFAULT_HEAD else ""
        print(f"| {head}{mark} | {b['devel_mean_pcc']:.3f} | {b['wall_s']:.0f} s | " if b else f"| {head}{mark} | - | - | ",
              end="")
        speed = f"{b['wall_s'] / x['wall_s']:.1f}x" if b else "-"
        print(f"{x['devel_mean_pcc']:.3f} | {x['wall_s']:.0f} s | {speed} | {x['devel_mean_pcc'] - ridge:+.3f} | "
              f"{x['devel_mean_pcc'] / ev['noise_ceiling']:.2f} | {x['epochs_run']} ({x['best_epoch']}) | "
              f"{x['load_before']:.1f} |")
    print(f"| ridge (baseline) | | | {ridge:.3f} | {res['ridge']['wall_s']:.0f} s | | | "
          f"{ridge / ev['noise_ceiling']:.2f} | | {res['ridge']['load_before']:.1f} |")
    if "thread_check" in res:
        tc = res["thread_check"]
        print("\nthreads, default head: " + "; ".join(
            f"{n} thread(s) {r['wall_s']:.0f} s (val {r['devel_mean_pcc']:.3f}, load {r['load_before']:.1f})"
            for n, r in tc.items()))
    if "second" in res:
        s = res["second"]
        d, r = s["default"], s["ridge"]
        print(f"\nsecond generator ({s['generator']}, not tuned on): noise ceiling {s['noise_ceiling']:.3f} "
              f"(devel {s['devel_ceiling']:.3f}); default {DEFAULT_HEAD} {d['devel_mean_pcc']:.3f} in "
              f"{d['wall_s']:.0f} s; ridge {r['devel_mean_pcc']:.3f} in {r['wall_s']:.0f} s; "
              f"difference {d['devel_mean_pcc'] - r['devel_mean_pcc']:+.3f}")


if __name__ == "__main__":
    sys.exit(main())
