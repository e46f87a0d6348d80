"""kbench: a workbench for knowledge-enhanced pretrained language models."""
from kbench.errors import (BaselineError, ChecksumError, DataError, InputError, KBenchError, KGFormatError,
                           UnknownNameError)
from kbench.record import record

__version__ = "0.1.0"
__all__ = ["BaselineError", "ChecksumError", "DataError", "InputError", "KBenchError", "KGFormatError",
           "UnknownNameError", "record"]
