"""Settings shared by every test run from the repository root.

``python -m pytest`` runs the unit tests in tests/ and, through nbval, the solution
notebook (see pytest.ini). Both run in the course's quick mode (``COURSE_QUICK=1``:
2 000 maps, 2 epochs) unless the caller set ``COURSE_QUICK`` already; the notebook
kernels that nbval and the notebook tests start inherit this environment. TensorFlow's
C++ start-up log lines are silenced for the same reason: they would land in cell outputs.
"""

import os

os.environ.setdefault("COURSE_QUICK", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
