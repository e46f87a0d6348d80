"""Data: the manifest and fetching, loaders for external datasets, and the built-in knowledge world."""
from kbench.data.kbert_datasets import load_kbert_dataset, load_kg
from kbench.data.manifest import default_data_dir, fetch, local_path, read_manifest
from kbench.data.linking_world import LinkingWorld, make_linking_world
from kbench.data.world import KnowledgeWorld, make_world

__all__ = ["KnowledgeWorld", "LinkingWorld", "make_linking_world", "default_data_dir", "fetch", "load_kbert_dataset", "load_kg", "local_path",
           "make_world", "read_manifest"]
