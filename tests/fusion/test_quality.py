"""Quality checks on the synthetic benchmark: every head beats ridge regression on
mean-pooled features by a clear margin on held-out clips and comes close to the
generator's noise ceiling; MuSe-layout CSV features imported into the store train the same."""
from __future__ import annotations

import csv
import logging

import numpy as np
import pytest
from fusion_helpers import SMALL_HEADS, tiny_config
from sklearn.linear_model import RidgeCV

from feature_store import FeatureStore
from feature_store.csv_io import import_csv
from fusion.experiment import run_fit
from fusion.heads import list_heads
from fusion.metrics import score
from fusion.synthetic import noise_ceiling

log = logging.getLogger(__name__)
# epochs per head for the 800-clip benchmark (av_interaction's EMA + clipping learn slower)
EPOCHS = {"av_interaction": 50}  # default 30


@pytest.fixture(scope="module")
def ridge_test_pcc(synth_quality) -> float:
    d = synth_quality.data
    x = np.concatenate([np.stack([a.mean(0) for a in d.audio]), np.stack([v.mean(0) for v in d.video])], 1)
    split = np.array(d.split)
    model = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(x[split == "train"], d.labels[split == "train"])
    return score(model.predict(x[split == "test"]), d.labels[split == "test"]).mean


def test_noise_ceiling_and_ridge_baseline(synth_quality, ridge_test_pcc):
    ceiling = noise_ceiling(synth_quality.spec.label_noise)
    assert 0.9 < ceiling < 0.96
    d = synth_quality.data
    test = np.array(d.split) == "test"
    # the clean labels score about the ceiling on the test clips too
    assert score(d.clean[test], d.labels[test]).mean == pytest.approx(ceiling, abs=0.04)
    assert ridge_test_pcc < 0.45


@pytest.mark.slow
@pytest.mark.parametrize("head", sorted(h.name for h in list_heads() if not h.closed_form))
def test_head_beats_ridge_and_nears_ceiling(synth_quality, ridge_test_pcc, head, tmp_path):
    cfg = tiny_config(synth_quality.refs, head, epochs=EPOCHS.get(head, 30), patience=8, batch_size=32,
                      lr=3e-3, steps=16)
    out = run_fit(cfg, synth_quality.root, synth_quality.labels, tmp_path / head, plots=False)
    got = out.metrics["test"]["mean_pcc"]
    ceiling = noise_ceiling(synth_quality.spec.label_noise)
    log.warning("%s: test mean PCC %.3f, ridge %.3f, ceiling %.3f", head, got, ridge_test_pcc, ceiling)
    assert got > ridge_test_pcc + 0.3
    assert got > ceiling - 0.12


def write_muse_csvs(folder, feature, ids, seqs, step):
    target = folder / feature
    target.mkdir(parents=True)
    for cid, x in zip(ids, seqs):
        with open(target / f"{cid}.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["id", "timestamp", *(f"{feature}_{i}" for i in range(x.shape[1]))])
            for t, row in enumerate(x):
                w.writerow([cid, repr(t * step), *("%.9g" % v for v in row)])


def test_muse_csv_import_trains_the_same(synth_small, tmp_path):
    """Features exported in the MuSe layout and imported with the store's import_csv give the
    same arrays, and training on them gives the same model as training on the originals."""
    d = synth_small.data
    csv_dir, store_root = tmp_path / "feats", tmp_path / "store"
    write_muse_csvs(csv_dir, "egemaps", d.ids, d.audio, 0.04)
    write_muse_csvs(csv_dir, "vggface2", d.ids, d.video, 0.2)
    store = FeatureStore(store_root)
    for feature in ("egemaps", "vggface2"):
        result = import_csv(store, csv_dir, feature)
        assert result.imported == len(d.ids) and not result.failed
    np.testing.assert_array_equal(store.reader("egemaps").get("00007")[0], d.audio[7])
    imported = run_fit(tiny_config(["egemaps", "vggface2"], "tcn_transformer", epochs=2), store_root,
                       synth_small.labels, tmp_path / "muse", plots=False)
    native = run_fit(tiny_config(synth_small.refs, "tcn_transformer", epochs=2), synth_small.root,
                     synth_small.labels, tmp_path / "native", plots=False)
    assert imported.metrics["features"]["egemaps"]["modality"] == "audio"
    assert imported.metrics["features"]["vggface2"]["modality"] == "video"
    np.testing.assert_allclose(imported.val_pred, native.val_pred, atol=1e-6)
