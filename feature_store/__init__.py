"""Crash-safe HDF5 feature store: STORE/<feature>/<fingerprint>/{spec.json, shard-*.h5, errors.jsonl}.

See feature_store/store.py (references), feature_dir.py (shards, resume, temporaries rule),
shard.py (file layout), clip_ids.py (the one clip-id rule) and cli.py (`eri-store`)."""
from feature_store.clip_ids import ID_COLUMNS, IdMatch, canonical_id, id_column, match_ids
from feature_store.feature_dir import FeatureDir
from feature_store.fingerprint import canonical_json, fingerprint_of
from feature_store.provenance import source_attrs
from feature_store.reader import FeatureReader
from feature_store.shard import ShardWriter
from feature_store.store import AmbiguousFeature, FeatureNotFound, FeatureStore, StoreError, default_store_path

__all__ = ["FeatureStore", "FeatureDir", "FeatureReader", "ShardWriter", "fingerprint_of", "canonical_json",
           "source_attrs", "StoreError", "FeatureNotFound", "AmbiguousFeature", "default_store_path",
           "canonical_id", "match_ids", "IdMatch", "id_column", "ID_COLUMNS"]
