"""An exec worker: sorts each element with numpy (see examples/numpy_worker.pipe)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import numpy as np  # noqa: E402
from pipec_worker import serve  # noqa: E402

serve(lambda x: np.sort(x))
