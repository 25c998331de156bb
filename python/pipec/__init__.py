"""pipec in Python: compile `.pipe` programs and iterate their pipelines in-process.

    import pipec
    prog = pipec.compile("train.pipe", params={"seed": 7})
    for images, labels in prog.pipeline("main", threads=8):
        ...

Elements are numpy arrays (a scalar is a numpy scalar), tuples are tuples. The names and
semantics are the `.pipe` language's (SPEC §12); see docs/python.md.
"""

from ._pipec import (
    CompileError,
    Dataset,
    Diagnostic,
    Iterator,
    Program,
    RunError,
    TensorSpec,
    __version__,
    compile,
)

__all__ = [
    "CompileError",
    "Dataset",
    "Diagnostic",
    "Iterator",
    "Program",
    "RunError",
    "TensorSpec",
    "compile",
]


def _rebuild_program(args):
    """Unpickles a Program by compiling it again from the same arguments."""
    return compile(**args)


def _rebuild_dataset(program, name, options, take):
    """Unpickles a Dataset: the same pipeline of the same program, with the same options."""
    ds = program.pipeline(name, **options)
    return ds if take is None else ds.take(take)
