//! The one implementation of every op: used by the interpreter, by constant folding and
//! by eager functions alike.
