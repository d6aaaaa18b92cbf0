"""Fusion training for Emotional Reaction Intensity: stored features -> heads -> run directory.

labels (load_labels, LabelError, EMOTIONS) · data (store -> in-memory matrices) · heads
(registered by name, with named recipes; `ridge` is the closed-form baseline) · losses /
metrics · train (one model, resumable per epoch) · baseline (ridge beside every run) ·
experiment (folds x seeds, run directory, --resume) · ensemble (eri-ensemble) · search (the
trial side of eri-fit --search; the Dask side is pipelines.fit_search) · predict ·
synthetic, synthetic_events (benchmark generators) · cli (eri-fit, eri-predict, eri-ensemble).
Submodules are imported on demand so that `fusion.labels` stays light.
"""
