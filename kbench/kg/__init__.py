"""Knowledge sources: triples and their lookups; WordNet (kbench.kg.wordnet) and KG embeddings
(kbench.kg.embeddings) are imported on use, since they load NLTK and PyKEEN."""
from kbench.kg.graph import KnowledgeGraph, LoadReport, Triple

__all__ = ["KnowledgeGraph", "LoadReport", "Triple"]
