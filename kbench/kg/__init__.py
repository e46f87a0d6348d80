"""Knowledge sources: triples and their lookups."""
from kbench.kg.graph import KnowledgeGraph, LoadReport, Triple

__all__ = ["KnowledgeGraph", "LoadReport", "Triple"]
