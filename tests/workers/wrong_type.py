"""A numpy worker that returns f64 where f32 is declared."""
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import numpy as np
from pipec_worker import serve
serve(lambda x: x.astype(np.float64))
