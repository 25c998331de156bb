"""A real numpy worker: sorts its argument."""
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import numpy as np
from pipec_worker import serve
serve(lambda x: np.sort(x))
