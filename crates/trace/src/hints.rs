//! Python, numpy and TensorFlow spellings of pipec names, for the help of an unknown name.
//!
//! A tf.data user writes `tf.math.log(x)`, `np.float32`, `reduce_mean(x)` or
//! `tf.shape(x)` out of habit; an edit-distance "did you mean" cannot find `log` from
//! `tf.math.log`. This table can: it maps the last part of a dotted path (after a module
//! prefix such as `tf.`, `tf.math.`, `np.`) or a bare name to what pipec calls it.
//! The help of a dtype mismatch (E0101) is built here too.

use pipec_tensor::DType;

/// What a foreign name becomes in pipec.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Pipec {
    /// A dtype name: `f32`.
    Dtype(&'static str),
    /// A dtype the user must choose: `f32` or `f64` for Python's `float`.
    DtypeChoice(&'static str, &'static str),
    /// A builtin function, called with the same arguments: `log`.
    Func(String),
    /// A binary operator: `*` for `tf.multiply(a, b)`.
    Operator(&'static str),
    /// A name that is a value: `AUTOTUNE`, `true`.
    Value(&'static str),
    /// The value written as a literal: `tf.constant([1, 2])` is `[1, 2]`.
    Literal,
    /// A tensor attribute: `tf.rank(x)` is `x.rank`.
    Attribute(&'static str),
}

/// A foreign spelling found: whose it is and what pipec calls it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Foreign {
    /// "TensorFlow", "numpy" or "Python".
    pub whose: &'static str,
    /// The pipec spelling.
    pub pipec: Pipec,
}

/// The pipec spelling of `path` (`["tf", "math", "log"]`, `["float32"]`), if it is a known
/// foreign one. `is_builtin` says which functions pipec has (`shape(x)` may not exist yet).
pub(crate) fn foreign(path: &[&str], is_builtin: impl Fn(&str) -> bool) -> Option<Foreign> {
    let (&last, modules) = path.split_last()?;
    let whose = match modules.first().copied() {
        None => "Python",
        Some("tf") => "TensorFlow",
        Some("np" | "numpy" | "jnp") => "numpy",
        Some("math") => "Python",
        Some(_) => return None,
    };
    let datasets = modules.iter().any(|m| *m == "data" || *m == "Dataset");
    let pipec = if let Some(p) = dtype(last) {
        p
    } else if let Some(p) = renamed(last, datasets, &is_builtin) {
        p
    } else if !modules.is_empty() && is_builtin(last) {
        Pipec::Func(last.to_string())
    } else {
        return None;
    };
    // A bare name that pipec has is not foreign (`bool`, `sum`); only renames are.
    if modules.is_empty() && matches!(&pipec, Pipec::Func(f) if f == last) {
        return None;
    }
    let whose = match (&pipec, whose) {
        // `float32`, `reduce_mean` alone: habits from numpy and TensorFlow, not Python.
        (Pipec::Dtype(_), "Python") => "numpy",
        (Pipec::Func(_), "Python") if last.starts_with("reduce_") => "TensorFlow",
        _ => whose,
    };
    Some(Foreign { whose, pipec })
}

/// numpy's and TensorFlow's dtype names.
fn dtype(name: &str) -> Option<Pipec> {
    Some(Pipec::Dtype(match name {
        "float16" | "half" => "f16",
        "bfloat16" => "bf16",
        "float32" | "single" => "f32",
        "float64" | "double" => "f64",
        "int8" => "i8",
        "int16" => "i16",
        "int32" => "i32",
        "int64" => "i64",
        "uint8" => "u8",
        "uint16" => "u16",
        "uint32" => "u32",
        "uint64" => "u64",
        "bool_" => "bool",
        "float" => return Some(Pipec::DtypeChoice("f32", "f64")),
        "int" => return Some(Pipec::DtypeChoice("i32", "i64")),
        _ => return None,
    }))
}

/// Functions and values pipec has under another name.
fn renamed(name: &str, datasets: bool, is_builtin: &impl Fn(&str) -> bool) -> Option<Pipec> {
    if let Some(op) = name.strip_prefix("reduce_").filter(|op| is_builtin(op)) {
        return Some(Pipec::Func(op.to_string()));
    }
    let func = |f: &str| Some(Pipec::Func(f.to_string()));
    match name {
        "clip_by_value" => func("clip"),
        "concatenate" => func("concat"),
        "absolute" => func("abs"),
        "power" => func("pow"),
        "range" if !datasets => func("arange"),
        "shape" if is_builtin("shape") => func("shape"),
        "shape" => Some(Pipec::Attribute("shape")),
        "rank" | "ndim" => Some(Pipec::Attribute("rank")),
        "add" => Some(Pipec::Operator("+")),
        "subtract" => Some(Pipec::Operator("-")),
        "multiply" => Some(Pipec::Operator("*")),
        "divide" | "truediv" | "true_divide" => Some(Pipec::Operator("/")),
        "floordiv" | "floor_divide" => Some(Pipec::Operator("//")),
        "floormod" | "mod" | "remainder" => Some(Pipec::Operator("%")),
        "equal" => Some(Pipec::Operator("==")),
        "not_equal" => Some(Pipec::Operator("!=")),
        "greater" => Some(Pipec::Operator(">")),
        "greater_equal" => Some(Pipec::Operator(">=")),
        "less" => Some(Pipec::Operator("<")),
        "less_equal" => Some(Pipec::Operator("<=")),
        "logical_and" => Some(Pipec::Operator("&&")),
        "logical_or" => Some(Pipec::Operator("||")),
        "constant" | "convert_to_tensor" | "array" | "asarray" => Some(Pipec::Literal),
        "AUTOTUNE" => Some(Pipec::Value("AUTOTUNE")),
        "True" => Some(Pipec::Value("true")),
        "False" => Some(Pipec::Value("false")),
        _ => None,
    }
}

impl Foreign {
    /// The help line: the pipec spelling, with the call's argument texts when `args` has
    /// them (`None` for a name that is not called).
    pub(crate) fn help(&self, written: &str, args: Option<&[&str]>) -> String {
        let call = |f: &str| match args {
            Some(a) => format!("{f}({})", a.join(", ")),
            None => f.to_string(),
        };
        match &self.pipec {
            Pipec::Dtype(d) => match args {
                Some([x]) => format!("write `cast({x}, {d})`: pipec converts with `cast`"),
                _ => {
                    format!("write `{d}`: pipec's dtype names are short (`f32`, `i64`, `u8`, ...)")
                }
            },
            Pipec::DtypeChoice(a, b) => {
                format!("write `{a}` or `{b}`: pipec's dtypes always say their size")
            }
            Pipec::Func(f) if f == written.rsplit('.').next().unwrap_or(written) => format!(
                "write `{}`: pipec's builtins are plain names, without a module",
                call(f)
            ),
            Pipec::Func(f) => format!(
                "write `{}`: {}'s `{}` is `{f}` in pipec",
                call(f),
                self.whose,
                written.rsplit('.').next().unwrap_or(written)
            ),
            Pipec::Operator(op) => match args {
                Some([a, b]) => format!("write `{a} {op} {b}`: pipec uses the operator"),
                _ => format!("use the operator `{op}`: `a {op} b`"),
            },
            Pipec::Value(v) => format!("write `{v}`"),
            Pipec::Literal => match args {
                Some([value, ..]) => format!("write the value itself: `{value}`"),
                _ => "write the value itself, e.g. `[1.0, 2.0]`".to_string(),
            },
            Pipec::Attribute(a) => match args {
                Some([x, ..]) => format!("write `{x}.{a}`"),
                _ => format!("write `x.{a}`"),
            },
        }
    }
}

/// Whether every value of `from` is a value of `to`: casting to `to` loses nothing.
pub(crate) fn holds_every(from: DType, to: DType) -> bool {
    if from == to || from == DType::Bool {
        return true;
    }
    match (from.is_float(), to.is_float()) {
        (true, false) => false,
        (false, false) => {
            // A negative value has no unsigned counterpart.
            (to.is_signed_int() || !from.is_signed_int())
                && from.significand_bits() <= to.significand_bits()
        }
        (false, true) => from.significand_bits() <= to.significand_bits(),
        (true, true) => matches!(
            (from, to),
            (DType::F16 | DType::BF16, DType::F32 | DType::F64) | (DType::F32, DType::F64)
        ),
    }
}

/// E0101's help for a binary op on `a: da` and `b: db` (the operands as written): the cast
/// that keeps every value first, then the other one.
pub(crate) fn dtype_mismatch_help(a: &str, da: DType, b: &str, db: DType) -> String {
    let up_a = format!("cast({a}, {db})");
    let up_b = format!("cast({b}, {da})");
    if holds_every(da, db) {
        format!("write `{up_a}` ({db} holds every {da}), or `{up_b}` to compute in {da}")
    } else if holds_every(db, da) {
        format!("write `{up_b}` ({da} holds every {db}), or `{up_a}` to compute in {db}")
    } else if db.is_float() && !da.is_float() {
        format!(
            "cast one side: `{up_a}` or `{up_b}` (neither dtype holds every value of the other)"
        )
    } else {
        format!(
            "cast one side: `{up_b}` or `{up_a}` (neither dtype holds every value of the other)"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widening_casts() {
        use DType::*;
        assert!(holds_every(F32, F64) && !holds_every(F64, F32));
        assert!(holds_every(U8, I16) && !holds_every(I8, U16) && !holds_every(I8, U64));
        assert!(holds_every(I32, I64) && holds_every(I32, F64) && !holds_every(I32, F32));
        assert!(holds_every(U16, F32) && !holds_every(F16, I64) && holds_every(Bool, U8));
        assert!(!holds_every(F16, BF16) && !holds_every(BF16, F16));
        assert_eq!(
            dtype_mismatch_help("cast(x, f32)", F32, "mean", F64),
            "write `cast(cast(x, f32), f64)` (f64 holds every f32), or `cast(mean, f32)` to compute in f32"
        );
        assert_eq!(
            dtype_mismatch_help("x", F64, "w", F32),
            "write `cast(w, f64)` (f64 holds every f32), or `cast(x, f32)` to compute in f32"
        );
        assert_eq!(
            dtype_mismatch_help("x", I32, "w", F32),
            "cast one side: `cast(x, f32)` or `cast(w, i32)` (neither dtype holds every value of the other)"
        );
        assert_eq!(
            dtype_mismatch_help("w", F32, "x", I32),
            "cast one side: `cast(x, f32)` or `cast(w, i32)` (neither dtype holds every value of the other)"
        );
    }

    fn builtin(name: &str) -> bool {
        [
            "log", "mean", "sum", "clip", "concat", "cast", "arange", "range", "abs", "pow",
        ]
        .contains(&name)
    }

    fn hint(path: &str, args: Option<&[&str]>) -> Option<String> {
        let parts: Vec<&str> = path.split('.').collect();
        foreign(&parts, builtin).map(|f| format!("{}: {}", f.whose, f.help(path, args)))
    }

    #[test]
    fn module_paths_become_plain_builtins() {
        assert_eq!(
            hint("tf.math.log", Some(&["x + 1.0"])).as_deref(),
            Some(
                "TensorFlow: write `log(x + 1.0)`: pipec's builtins are plain names, without a module"
            )
        );
        assert_eq!(
            hint("np.log", None).as_deref(),
            Some("numpy: write `log`: pipec's builtins are plain names, without a module")
        );
        assert_eq!(
            hint("tf.reduce_mean", Some(&["x", "axis: 0"])).as_deref(),
            Some(
                "TensorFlow: write `mean(x, axis: 0)`: TensorFlow's `reduce_mean` is `mean` in pipec"
            )
        );
        assert_eq!(
            hint("reduce_sum", None).as_deref(),
            Some("TensorFlow: write `sum`: TensorFlow's `reduce_sum` is `sum` in pipec")
        );
        assert_eq!(hint("tf.no_such_op", None), None);
        assert_eq!(hint("pandas.log", None), None);
    }

    #[test]
    fn dtypes_and_values() {
        assert_eq!(
            hint("tf.float32", None).as_deref(),
            Some(
                "TensorFlow: write `f32`: pipec's dtype names are short (`f32`, `i64`, `u8`, ...)"
            )
        );
        assert_eq!(
            hint("float32", None).as_deref(),
            Some("numpy: write `f32`: pipec's dtype names are short (`f32`, `i64`, `u8`, ...)")
        );
        assert_eq!(
            hint("np.float32", Some(&["x"])).as_deref(),
            Some("numpy: write `cast(x, f32)`: pipec converts with `cast`")
        );
        assert_eq!(
            hint("int", None).as_deref(),
            Some("Python: write `i32` or `i64`: pipec's dtypes always say their size")
        );
        assert_eq!(
            hint("tf.data.AUTOTUNE", None).as_deref(),
            Some("TensorFlow: write `AUTOTUNE`")
        );
        assert_eq!(hint("True", None).as_deref(), Some("Python: write `true`"));
        // Names pipec has are not foreign.
        assert_eq!(hint("sum", None), None);
        assert_eq!(hint("bool", None), None);
    }

    #[test]
    fn shapes_operators_and_literals() {
        // Without a `shape` builtin the attribute is the pipec spelling.
        assert_eq!(
            hint("tf.shape", Some(&["x"])).as_deref(),
            Some("TensorFlow: write `x.shape`")
        );
        let with_shape = |n: &str| n == "shape";
        let f = foreign(&["tf", "shape"], with_shape).expect("known");
        assert_eq!(
            f.help("tf.shape", Some(&["x"])),
            "write `shape(x)`: pipec's builtins are plain names, without a module"
        );
        assert_eq!(
            hint("tf.multiply", Some(&["a", "b"])).as_deref(),
            Some("TensorFlow: write `a * b`: pipec uses the operator")
        );
        assert_eq!(
            hint("tf.constant", Some(&["[1, 2]"])).as_deref(),
            Some("TensorFlow: write the value itself: `[1, 2]`")
        );
        assert_eq!(
            hint("tf.range", Some(&["5"])).as_deref(),
            Some("TensorFlow: write `arange(5)`: TensorFlow's `range` is `arange` in pipec")
        );
        assert_eq!(
            hint("tf.data.Dataset.range", Some(&["5"])).as_deref(),
            Some(
                "TensorFlow: write `range(5)`: pipec's builtins are plain names, without a module"
            )
        );
    }
}
