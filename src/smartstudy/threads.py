"""One thread per numerical library in SmartStudy's own processes (imported first by the
command line, before NumPy is loaded).

A server runs several processes side by side (``serve --workers N``, ``worker``) on a few
cores. NumPy's OpenBLAS otherwise starts a thread per core and splits long vector operations
across them; when the other cores are busy with requests, each such call waits for threads
that are not scheduled, spinning meanwhile. In the load benchmark a training took a third
less CPU with one BLAS thread (11 s against 16 s of the worker's CPU in a 60 s run, the same
four trainings). A value already in the environment is kept.
"""

from __future__ import annotations

import os

#: The variables OpenBLAS, OpenMP and MKL read when they are loaded.
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

for _variable in THREAD_VARIABLES:
    os.environ.setdefault(_variable, "1")
