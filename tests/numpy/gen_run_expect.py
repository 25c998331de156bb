"""Writes the expected output of every run case and example: NAME.stdout beside NAME.pipe.

Each case's header holds `# numpy: CODE`, Python that prints what pipec must print,
computed with numpy itself (the oracle). Run: python3 tests/numpy/gen_run_expect.py
"""
import contextlib
import io
import pathlib

import numpy as np

REPO = pathlib.Path(__file__).resolve().parent.parent.parent
# Run cases, and the examples (each example documents its own expected output).
ROOTS = [REPO / "tests" / "cases" / "run", REPO / "examples"]


def ptuple(*parts):
    """Prints a tuple element as SPEC section 11 fixes it: `(A, B)`, each part as numpy's str."""
    print("(" + ", ".join(str(np.asarray(p)) for p in parts) + ")")


def main():
    for case in sorted(p for root in ROOTS for p in root.glob("*.pipe")):
        code = [l[len("# numpy:"):].strip() for l in case.read_text().splitlines() if l.startswith("# numpy:")]
        if not code:
            raise SystemExit(f"{case.name}: no '# numpy:' line")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec("\n".join(code), {"np": np, "ptuple": ptuple})
        case.with_suffix(".stdout").write_text(out.getvalue())
        print(f"{case.name}: {len(out.getvalue().splitlines())} lines")


if __name__ == "__main__":
    main()
