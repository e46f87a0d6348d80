"""Text processing: units, mention detection."""
from kbench.text.mentions import (SPECIAL_TOKENS, MentionDetector, forward_maximum_match, split_units)

__all__ = ["SPECIAL_TOKENS", "MentionDetector", "forward_maximum_match", "split_units"]
