"""The registry of features: one line per feature module (each defines `SPEC`)."""
from __future__ import annotations

import importlib
from functools import lru_cache

from extract.specs import SpecRegistry

FEATURE_MODULES = (
    "extract.faces_feature",
    "extract.video.resnet18_affectnet",
    "extract.video.resnet18_affectnet_maps",
    "extract.video.posterv2",
    "extract.video.fer_minixception",
    "extract.video.pose",
    "extract.video.face_mesh",
    "extract.audio.mfcc",
    "extract.audio.egemaps",
    "extract.audio.wav2vec2",
    "extract.audio.vggish",
    "extract.audio.deepspectrum",
)


@lru_cache(maxsize=1)
def catalog() -> SpecRegistry:
    registry = SpecRegistry()
    for module_name in FEATURE_MODULES:
        module = importlib.import_module(module_name)
        specs = module.SPECS if hasattr(module, "SPECS") else (module.SPEC,)
        for spec in specs:
            registry.register(spec)
    return registry
