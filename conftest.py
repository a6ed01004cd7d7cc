"""Settings shared by every test run from the repository root.

``python -m pytest`` runs the unit tests in tests/ and, through nbval, the solution
notebook (see pytest.ini). Both run in the course's quick mode (``COURSE_QUICK=1``:
2 000 maps, 2 epochs) unless the caller set ``COURSE_QUICK`` already; the notebook
kernels that nbval and the notebook tests start inherit this environment.
``TF_CPP_MIN_LOG_LEVEL=3`` quietens most of TensorFlow's C++ log lines; a few start-up
lines (oneDNN, CUDA libraries) are printed before TensorFlow reads it, which is why the
notebook's import cell does not have its output compared. oneDNN itself stays on: turning
it off to silence its line made training 2.5 times slower.
"""

import os

os.environ.setdefault("COURSE_QUICK", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
