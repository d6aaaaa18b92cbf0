"""DeepSpectrum throughput: our numpy renderer vs matplotlib, bare DenseNet121, and the whole extractor.

    .venv/bin/python benchmarks/bench_deepspectrum.py [--windows 64] [--mpl-windows 16] [--batch-size 16]

* renderer: images/s of `render_windows` (STFT + mel + dB + colour + geometry, batched) and of the
  drawing step alone (dB matrix -> RGB), vs matplotlib drawing the same dB matrices as DeepSpectrum
  does (1-inch figure at 227 dpi, pcolormesh with the same cell edges, symlog mel axis, Agg canvas);
  also the share of pixels on which the two images agree. The installed matplotlib (3.11) fills each
  pixel from the cell under its centre, whereas DeepSpectrum's matplotlib 3.3.2 wrote the reference
  PNGs with the last-drawn overlapping cell (= the cell under the right/top pixel edge), which our
  renderer reproduces pixel-exactly; so only ~64 % (mel) / ~40 % (linear) of pixels agree with today's
  matplotlib, the same share that centre sampling gets against the reference PNGs.
* DenseNet121: windows/s of the bare network (random init, 224×224 input, inference mode) and of
  `DeepSpectrumExtractor.run` end to end (windowing, render, Pillow resize, normalise, network).
matplotlib is imported only here, never by the extractor.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from extract.audio.deepspectrum import DeepSpectrumConfig, DeepSpectrumExtractor, normalise, resize_images
from extract.audio.deepspectrum_render import HOP, geometry, render, render_windows, spectrogram_db
from extract.audio.logmel import slaney_mel_frequencies
from extract.nets.densenet import densenet121

SR = 16000


def synthetic_audio(seconds: float, seed: int = 0) -> np.ndarray:
    """Speech-like test signal: a gliding harmonic tone with syllable-rate amplitude modulation plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 140 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * 3.0 * t), 0, None) ** 2
    return (0.2 * voiced * envelope + 0.01 * rng.normal(size=t.size)).astype(np.float32)


def timed(fn, repeat: int = 3) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def interleaved(fns, repeat: int) -> list[float]:
    """Best time of each function over `repeat` rounds that alternate between them (a shared,
    busy machine slows all of them alike instead of whichever happened to run last)."""
    for fn in fns:
        fn()
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def matplotlib_render(db: np.ndarray, mode: str, size: int = 227) -> np.ndarray:
    """One (F, T) dB matrix drawn the DeepSpectrum way with matplotlib -> (size, size, 3) uint8."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t_edges = np.arange(db.shape[1] + 1) * HOP / SR
    if mode == "mel":
        c = slaney_mel_frequencies(db.shape[0], 0.0, SR / 2)
        c[1:] -= 0.5 * np.diff(c)
        f_edges = np.append(np.maximum(0.0, c), SR / 2)
    else:
        f = np.linspace(0, SR / 2, db.shape[0])
        f_edges = np.append(np.maximum(0.0, f - 0.5 * (f[1] - f[0])), SR / 2)
    fig = plt.figure(frameon=False)
    fig.set_size_inches(1, 1)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_axis_off()
    ax.pcolormesh(t_edges, f_edges, db, cmap="viridis", shading="flat", antialiased=False)
    if mode == "mel":
        ax.set_yscale("symlog", base=2, linthresh=1000, linscale=1)
    ax.set_xlim(t_edges[0], t_edges[-1])
    ax.set_ylim(0, SR / 2)
    fig.set_dpi(size)
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--windows", type=int, default=64, help="windows for the numpy renderer and the network")
    parser.add_argument("--mpl-windows", type=int, default=16, help="windows drawn with matplotlib (slow)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=3, help="alternating timing rounds (best is kept)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    audio = synthetic_audio(0.5 * args.windows + 0.5)
    windows = np.stack([audio[i * 8000: i * 8000 + 16000] for i in range(args.windows)])
    print(f"DeepSpectrum benchmark: {args.windows} windows of 1 s at 16 kHz, torch threads {torch.get_num_threads()}, "
          f"device {args.device}")

    import matplotlib

    for mode in ("mel", "spectrogram"):
        db = spectrogram_db(windows, SR, mode)
        geom = geometry(mode, 16000, SR)
        full = timed(lambda: render_windows(windows, SR, mode))
        draw = timed(lambda: render(db, geom))
        ours = render(db, geom)
        n_mpl = min(args.mpl_windows, args.windows)
        matplotlib_render(db[0], mode)  # import + first-figure cost outside the timing
        start = time.perf_counter()
        mpl = np.stack([matplotlib_render(db[i], mode) for i in range(n_mpl)])
        mpl_time = time.perf_counter() - start
        agree = (mpl == ours[:n_mpl]).all(-1).mean()
        print(f"  [{mode:11s}] numpy audio->image {args.windows / full:9.1f} img/s | numpy dB->image "
              f"{args.windows / draw:9.1f} img/s | matplotlib dB->image {n_mpl / mpl_time:7.1f} img/s "
              f"(ours {(args.windows / draw) / (n_mpl / mpl_time):.0f}x faster); "
              f"pixels equal to matplotlib {matplotlib.__version__}: {100 * agree:.2f} %")

    model = densenet121().eval().to(args.device)
    extractor = DeepSpectrumExtractor(model, DeepSpectrumConfig(), args.batch_size, args.device)
    clip = audio[: 16000 + (2 * args.batch_size - 1) * 8000]  # exactly two batches of windows
    n_windows = len(extractor.windows(clip))
    x = torch.randn(args.batch_size, 3, 224, 224, device=args.device)

    def bare_run() -> None:
        with torch.inference_mode():
            for _ in range(n_windows // args.batch_size):
                model.embed(x).cpu()

    def front_end() -> None:  # everything but the network
        for start in range(0, n_windows, args.batch_size):
            normalise(resize_images(extractor.images(extractor.windows(clip)[start:start + args.batch_size])),
                      args.device)

    bare, e2e, dsp = interleaved([bare_run, lambda: extractor.run([clip], SR), front_end], args.repeat)
    print(f"  DenseNet121 bare (batch {args.batch_size}, 224x224): {n_windows / bare:.2f} windows/s")
    print(f"  front end only (window + render + Pillow resize + normalise): {n_windows / dsp:.1f} windows/s")
    print(f"  DeepSpectrumExtractor.run end to end ({n_windows} windows): {n_windows / e2e:.2f} windows/s "
          f"= {bare / e2e:.2f} x bare DenseNet121; {clip.size / SR / e2e:.2f} s of audio per second "
          f"(hop 0.5 s)")

if __name__ == "__main__":
    main()
