"""SmartStudy's tests.

One BLAS/OpenMP thread per test process, set before NumPy is first imported (pytest imports
this package before ``conftest``): the suite runs as two xdist workers on two cores, and each
worker's idle OpenBLAS threads spinning for work slowed the other's model fits many times over
(a 0.8 s LNIRT test took 38 s in the suite). An explicit setting in the environment wins.
Server and worker processes that tests start inherit it.
"""

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
