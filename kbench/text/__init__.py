"""Text processing: units, mention detection, and linked mentions (one type for every paper)."""
from kbench.text.links import AliasTable, Candidate, LinkedMention, subject_mentions
from kbench.text.mentions import SPECIAL_TOKENS, MentionDetector, forward_maximum_match, split_units

__all__ = ["SPECIAL_TOKENS", "AliasTable", "Candidate", "LinkedMention", "MentionDetector", "forward_maximum_match",
           "split_units", "subject_mentions"]
