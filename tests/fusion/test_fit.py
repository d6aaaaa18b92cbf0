"""Training loop and run directory: determinism, seeds/ensembles, folds, EMA, schedule,
early stopping, checkpoints loadable on their own, config precedence."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
import yaml
from fusion_helpers import tiny_config

from fusion.checkpoint import load_checkpoint
from fusion.config import FitConfig, resolve_config
from fusion.experiment import run_fit
from fusion.predict import predict_run
from fusion.train import EMA


def read_preds(path):
    with open(path) as fh:
        rows = list(csv.reader(fh))
    return rows[0], {r[0]: np.array(r[1:], dtype=float) for r in rows[1:]}


def test_same_seed_same_run_different_seed_differs(synth_small, tmp_path):
    cfg = tiny_config(synth_small.refs, "tcn_transformer", epochs=2)
    a = run_fit(cfg, synth_small.root, synth_small.labels, tmp_path / "a", plots=False)
    b = run_fit(cfg, synth_small.root, synth_small.labels, tmp_path / "b", plots=False)
    assert (tmp_path / "a/predictions_val.csv").read_bytes() == (tmp_path / "b/predictions_val.csv").read_bytes()
    assert (tmp_path / "a/checkpoints/seed0/model.safetensors").read_bytes() == \
        (tmp_path / "b/checkpoints/seed0/model.safetensors").read_bytes()
    assert a.metrics["ensemble"] == b.metrics["ensemble"]
    c = run_fit(tiny_config(synth_small.refs, "tcn_transformer", epochs=2, seed=7), synth_small.root,
                synth_small.labels, tmp_path / "c", plots=False)
    assert not np.array_equal(a.val_pred, c.val_pred)


def test_run_directory_seeds_ensemble_and_reload(synth_small, tmp_path):
    cfg = tiny_config(synth_small.refs, "lstm", seeds=2)
    out = run_fit(cfg, synth_small.root, synth_small.labels, tmp_path / "run")
    run = tmp_path / "run"
    for name in ("config.yaml", "features.json", "metrics.json", "history.csv", "predictions_val.csv",
                 "predictions_test.csv", "plots/learning_curves.png", "plots/pcc_per_emotion.png",
                 "plots/scatter_val.png", "checkpoints/seed0/model.safetensors",
                 "checkpoints/seed1/model.json", "checkpoints/seed1/norm.safetensors"):
        assert (run / name).is_file(), name
    assert (run / "plots/scatter_val.png").read_bytes()[:4] == b"\x89PNG"
    m = out.metrics
    assert [x["name"] for x in m["models"]] == ["seed0", "seed1"]
    assert m["single"]["n_models"] == 2 and m["single"]["std_pcc"] >= 0
    assert set(m["features"]) == {"synth_audio", "synth_video"}
    assert m["features"]["synth_audio"]["ref"] in synth_small.refs
    assert m["data"] == {**m["data"], "train": 84, "val": 18, "test": 18}
    header, val = read_preds(run / "predictions_val.csv")
    assert header == ["File_ID", "Adoration", "Amusement", "Anxiety", "Disgust", "Empathic-Pain", "Fear",
                      "Surprise"]
    assert len(val) == 18
    conf = yaml.safe_load((run / "config.yaml").read_text())
    assert conf["head"] == "lstm" and conf["seeds"] == 2 and conf["head_options"]["d_model"] == 32
    # checkpoints alone (no config object, no command) reproduce the ensemble's predictions
    pred = predict_run(run, synth_small.root, list(val))
    np.testing.assert_allclose(pred.values, np.stack(list(val.values())), atol=2e-6)
    _, test = read_preds(run / "predictions_test.csv")
    pred = predict_run(run, synth_small.root, list(test))
    np.testing.assert_allclose(pred.values, np.stack(list(test.values())), atol=2e-6)
    ck = load_checkpoint(run / "checkpoints/seed0")
    assert ck.meta["head"] == "lstm" and not ck.model.training
    assert all("@" in r for r in ck.feature_refs)


def test_folds_give_out_of_fold_predictions(synth_small, tmp_path):
    cfg = tiny_config(synth_small.refs, "te", folds=3, epochs=2)
    out = run_fit(cfg, synth_small.root, synth_small.labels, tmp_path / "cv", plots=False)
    assert [m["name"] for m in out.metrics["models"]] == ["fold-1-seed0", "fold-2-seed0", "fold-3-seed0"]
    _, val = read_preds(tmp_path / "cv/predictions_val.csv")
    split = dict(zip(synth_small.data.ids, synth_small.data.split))
    assert sorted(val) == sorted(c for c, s in split.items() if s != "test")  # each exactly once
    assert "3-fold" in out.metrics["how"] and "test" in out.metrics


def test_early_stopping_and_plateau_schedule(synth_small, tmp_path, monkeypatch):
    import fusion.train
    from fusion.labels import EMOTIONS
    from fusion.metrics import Score
    sequence = iter([0.1, 0.2, 0.2, 0.15, 0.2, 0.2, 0.9, 0.9])

    def fake_score(pred, true):
        v = next(sequence)
        return Score({e: v for e in EMOTIONS}, v, [v] * 7)
    monkeypatch.setattr(fusion.train, "score", fake_score)
    cfg = tiny_config(synth_small.refs, "te", epochs=20, lr=1e-3, lr_patience=1, patience=3, schedule="plateau")
    out = run_fit(cfg, synth_small.root, synth_small.labels, tmp_path / "es", plots=False)
    hist = out.histories["seed0"]
    assert len(hist) == 5 and out.metrics["models"][0]["best_epoch"] == 2  # 3 epochs without gain
    # the LR each epoch trained with: halved after epochs 3 and 4 brought nothing
    assert [h["lr"] for h in hist] == pytest.approx([1e-3, 1e-3, 1e-3, 1e-3, 5e-4])


def test_ema_is_the_evaluated_and_saved_model(synth_small, tmp_path):
    net = torch.nn.Linear(2, 2)
    ema = EMA(net, 0.9)
    before = ema.module.weight.detach().clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    ema.update(net)
    torch.testing.assert_close(ema.module.weight, 0.9 * before + 0.1 * net.weight)
    cfg = tiny_config(synth_small.refs, "av_interaction", recipe="hfut_2023", epochs=2)
    assert (cfg.loss, cfg.ema, cfg.grad_clip, cfg.weight_decay, cfg.schedule, cfg.batch_size) == \
        ("mse+0.01*class", 0.99, 0.1, 1e-4, "constant", 16)  # batch: tiny_config's flag
    out = run_fit(cfg, synth_small.root, synth_small.labels, tmp_path / "ema", plots=False)
    assert out.metrics["models"][0]["epochs_run"] == 2


def test_config_precedence_and_errors(tmp_path):
    y = tmp_path / "cfg.yaml"
    y.write_text("recipe: hfut_2023\nema: 0.5\nepochs: 7\nhead_options: {d_model: 16}\n"
                 "steps_per_feature: {a: 64}\n")
    cfg = resolve_config(y, {"features": "a,b", "epochs": 3, "head_options": {"interaction_heads": "2"}})
    assert cfg.features == ["a", "b"] and cfg.head == "av_interaction"  # the recipe's head
    assert (cfg.ema, cfg.epochs, cfg.grad_clip, cfg.lr) == (0.5, 3, 0.1, 1e-4)  # yaml > recipe, flag > yaml
    assert cfg.head_options["d_model"] == 16 and cfg.head_options["interaction_heads"] == 2
    assert cfg.head_options["modality_dropout"] == 0.5 and cfg.recipe == "hfut_2023"
    with pytest.raises(ValueError, match="recipe 'hfut_2023' is for head 'av_interaction', not 'te'"):
        resolve_config(None, {"features": "a", "recipe": "hfut_2023", "head": "te"})
    with pytest.raises(ValueError, match="unknown recipe"):
        resolve_config(None, {"features": "a", "recipe": "nope"})
    assert cfg.steps_per_feature == {"a": 64}
    assert resolve_config(None, {"features": ["a"]}).head == FitConfig.head
    y.write_text("epoch: 3\n")
    with pytest.raises(ValueError, match="unknown option"):
        resolve_config(y, {"features": "a"})
    with pytest.raises(ValueError, match="bad loss term"):
        resolve_config(None, {"features": "a", "loss": "mse+l1"})
    with pytest.raises(ValueError, match="folds"):
        resolve_config(None, {"features": "a", "folds": 1})
    with pytest.raises(ValueError, match="no features"):
        resolve_config(None, {})


def test_missing_clips_dropped_and_reported(synth_small, tmp_path):
    import shutil

    from feature_store import FeatureStore
    root = tmp_path / "store"
    shutil.copytree(synth_small.root, root)
    ref = synth_small.refs[1]
    fd = FeatureStore(root).resolve(ref)
    reader = FeatureStore(root).reader(ref)
    spec = fd.spec
    name, fp = ref.split("@")
    # rewrite the video feature without two clips under a new fingerprint
    from feature_store import fingerprint_of
    spec2 = {**spec, "without": 2}
    fd2 = FeatureStore(root).feature_dir(name, fingerprint_of(spec2), spec=spec2)
    with fd2.open_shard() as w:
        for cid in reader.ids()[2:]:
            w.add(cid, *reader.get(cid))
    refs = [synth_small.refs[0], f"{name}@{fd2.fingerprint}"]
    with pytest.raises(ValueError, match=r"2 clip\(s\) missing: 00000, 00001"):
        run_fit(tiny_config(refs, "te"), root, synth_small.labels, tmp_path / "r0", plots=False)
    out = run_fit(tiny_config(refs, "te", missing="drop", epochs=1), root, synth_small.labels,
                  tmp_path / "r1", plots=False)
    assert out.metrics["data"]["dropped"] == {name: ["00000", "00001"]}
    assert out.metrics["data"]["clips"] == 118


def test_cosine_schedule_warms_up_then_decays_to_min_lr():
    from fusion.train import Schedule
    cfg = resolve_config(None, {"features": ["a"], "schedule": "cosine", "lr": 1e-2, "min_lr": 1e-4,
                                "warmup_epochs": 1, "epochs": 4})
    net = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr)
    sched = Schedule(opt, cfg, steps_per_epoch=10)
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(40):
        sched.after_step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[0] < lrs[5] < lrs[9] and lrs[10] == pytest.approx(1e-2)    # linear warm-up over epoch 1
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))                 # then never rises
    assert lrs[25] == pytest.approx(1e-4 + 0.5 * (1e-2 - 1e-4), rel=1e-6)   # half-way: midpoint
    assert lrs[40] == pytest.approx(1e-4)
    state = sched.state_dict()
    again = Schedule(opt, cfg, steps_per_epoch=10)
    again.load_state_dict(state)
    assert again.step_no == 40
