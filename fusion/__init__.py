"""Fusion training for Emotional Reaction Intensity: stored features -> heads -> run directory.

labels (load_labels, LabelError, EMOTIONS) · data (store -> in-memory matrices) · heads
(registered by name) · losses / metrics · train (one model) · experiment (folds x seeds,
ensembles, run directory) · predict · synthetic (benchmark generator) · cli (eri-fit,
eri-predict). Submodules are imported on demand so that `fusion.labels` stays light.
"""
