"""Oracle for printing `str` tensors: numpy's print of the object arrays of `bytes` that
TF's `.numpy()` returns. Appends cases to print_cases.json (run once; existing cases are
kept, cases of the same name replaced), data as hex of each element's bytes."""
import json
import pathlib

import numpy as np

HERE = pathlib.Path(__file__).parent
CASES = json.loads((HERE / "print_cases.json").read_text())


def add(name, values, shape):
    arr = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        arr[i] = v
    arr = arr.reshape(shape)
    case = {
        "name": f"str/{name}",
        "dtype": "str",
        "shape": list(shape),
        "data": [v.hex() for v in values],
        "expected": str(arr),
    }
    CASES[:] = [c for c in CASES if c["name"] != case["name"]]
    CASES.append(case)


add("scalar", [b"cat"], ())
add("empty_scalar", [b""], ())
add("vector", [b"cat", b"dog", b"bird"], (3,))
add("quotes", [b"it's", b'say "hi"', b"both ' and \"", b"\\"], (4,))
add("escapes", [b"a\nb", b"\t", b"\r", b"\x00\x7f\xff", "é".encode()], (5,))
add("matrix", [b"a", b"bbbbbb", b"cc", b"d"], (2, 2))
add("cube", [bytes([97 + i]) for i in range(8)], (2, 2, 2))
add("empty", [], (0,))
add("wrap", [b"word%02d" % i for i in range(20)], (20,))
add("summarized", [b"x%d" % i for i in range(1001)], (1001,))
add("summarized_2d", [b"%d" % i for i in range(40 * 30)], (40, 30))

(HERE / "print_cases.json").write_text(json.dumps(CASES, indent=0) + "\n")
