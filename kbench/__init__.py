"""kbench: a workbench for knowledge-enhanced pretrained language models.

Importing kbench sets ``OMP_WAIT_POLICY=PASSIVE`` unless it is set already (before
torch loads its OpenMP runtime, which reads it once): OpenMP's threads then sleep
instead of spinning while they wait. On a machine busy with another job, spinning
threads fight for the same cores: beside a process keeping both cores busy, a
training loop ran 2.3x faster with this policy than with the default (6x beside
another notebook's run), and on a quiet machine at the same speed (1.03x;
``benchmarks/threads.py`` on 2 cores). ``kbench run``, ``kbench lab`` and ``make lab``
start their kernels with it too.
"""
import os as _os

_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
#: Set to "1" by ``kbench run`` for the kernels it starts: a batch run draws no training progress bars, which
#: would be left in the executed notebooks (:func:`kbench.train.show_progress`).
BATCH = "KBENCH_BATCH"

from kbench.errors import (BaselineError, ChecksumError, DataError, InputError, KBenchError, KGFormatError,
                           UnknownNameError)
from kbench.record import record

__version__ = "0.1.0"
__all__ = ["BaselineError", "ChecksumError", "DataError", "InputError", "KBenchError", "KGFormatError",
           "UnknownNameError", "record"]
