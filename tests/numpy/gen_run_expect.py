"""Writes the expected output of every run case: tests/cases/run/NAME.stdout.

Each case's header holds `# numpy: CODE`, Python that prints what pipec must print,
computed with numpy itself (the oracle). Run: python3 tests/numpy/gen_run_expect.py
"""
import contextlib
import io
import pathlib

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent / "cases" / "run"


def ptuple(*parts):
    """Prints a tuple element as SPEC section 11 fixes it: `(A, B)`, each part as numpy's str."""
    print("(" + ", ".join(str(np.asarray(p)) for p in parts) + ")")


def main():
    for case in sorted(ROOT.glob("*.pipe")):
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
