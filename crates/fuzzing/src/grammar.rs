//! Bytes → a small, mostly well-typed `.pipe` program: a source over constant tensors, then a
//! chain of dataset transformations whose functions are drawn from a grammar of tensor ops.
//! Every byte string gives a program (missing bytes read as zero), so libFuzzer's mutations
//! explore programs rather than parse errors.

use pipec::ops::{BinaryDomain, BinaryOp, UnaryDomain, UnaryOp};

/// Reads choices from fuzzer bytes; past the end every choice is 0.
struct Choices<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Choices<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    /// A number in `0..n`.
    fn pick(&mut self, n: usize) -> usize {
        self.byte() as usize % n
    }

    fn exhausted(&self) -> bool {
        self.pos >= self.data.len()
    }
}

/// Float constants including the awkward ones (signed zero, NaN, infinities, subnormals).
const FLOATS: &[&str] = &[
    "0.0", "-0.0", "1.0", "-1.5", "0.5", "2.0", "3.0e38", "1.0e-40", "-7.25",
];
const INTS: &[&str] = &["0", "1", "-1", "2", "3", "-7", "100", "2147483647"];

/// The element being generated: integers (`i32`) or floats (`f32`), and its rank.
#[derive(Clone, Copy)]
struct Elem {
    float: bool,
    rank: usize,
}

fn constant(c: &mut Choices, float: bool) -> String {
    if float {
        match c.pick(12) {
            9 => "(0.0 / 0.0)".to_string(),
            10 => "(1.0 / 0.0)".to_string(),
            11 => "(-1.0 / 0.0)".to_string(),
            i => FLOATS[i].to_string(),
        }
    } else {
        INTS[c.pick(INTS.len())].to_string()
    }
}

/// A tensor literal of `rows` × `cols` (or a vector when `rows` is 0).
fn literal(c: &mut Choices, float: bool, rows: usize, cols: usize) -> String {
    let row = |c: &mut Choices| {
        let cells: Vec<String> = (0..cols).map(|_| constant(c, float)).collect();
        format!("[{}]", cells.join(", "))
    };
    if rows == 0 {
        return row(c);
    }
    let rows: Vec<String> = (0..rows).map(|_| row(c)).collect();
    format!("[{}]", rows.join(", "))
}

/// The unary ops of the op table that take and give the element's dtype (`abs`, `exp`,
/// `softplus`, ... on floats; the numeric ones on integers), by their builtin names.
fn same_dtype_unary(float: bool) -> Vec<&'static str> {
    UnaryOp::ALL
        .iter()
        .filter(|op| match op.domain() {
            UnaryDomain::Num => true,
            UnaryDomain::Float => float,
            UnaryDomain::FloatTest | UnaryDomain::Logic => false,
        })
        .map(|op| op.call_name())
        .collect()
}

/// The binary ops of the op table that take and give the element's dtype.
fn same_dtype_binary(float: bool) -> Vec<&'static str> {
    BinaryOp::ALL
        .iter()
        .filter(|op| match op.domain() {
            BinaryDomain::Arith => true,
            BinaryDomain::FloatArith => float,
            _ => false,
        })
        .map(|op| op.call_name())
        .collect()
}

/// The ops of the op table that give `bool` from the element's dtype (comparisons, `isnan`).
fn to_bool(float: bool) -> Vec<(&'static str, usize)> {
    let unary = UnaryOp::ALL
        .iter()
        .filter(|op| float && op.domain() == UnaryDomain::FloatTest)
        .map(|op| (op.call_name(), 1));
    let binary = BinaryOp::ALL
        .iter()
        .filter(|op| op.is_comparison())
        .map(|op| (op.call_name(), 2));
    unary.chain(binary).collect()
}

/// A `bool` expression of the element's shape: a comparison or test from the op table,
/// sometimes combined by the table's logic ops.
fn condition(c: &mut Choices, e: Elem, depth: usize) -> String {
    let tests = to_bool(e.float);
    let (name, arity) = tests[c.pick(tests.len())];
    let one = if arity == 1 {
        format!("{name}({})", expr(c, e, depth))
    } else {
        format!("{name}({}, {})", expr(c, e, depth), constant(c, e.float))
    };
    let logic: Vec<&UnaryOp> = UnaryOp::ALL
        .iter()
        .filter(|op| op.domain() == UnaryDomain::Logic)
        .collect();
    let both: Vec<&BinaryOp> = BinaryOp::ALL
        .iter()
        .filter(|op| op.domain() == BinaryDomain::Logic)
        .collect();
    match c.pick(4) {
        0 => format!("{}({one})", logic[c.pick(logic.len())].call_name()),
        1 => format!(
            "{}({one}, {} > {})",
            both[c.pick(both.len())].call_name(),
            expr(c, e, 0),
            constant(c, e.float)
        ),
        _ => one,
    }
}

/// An expression over `x` of the element's dtype; keeps the shape unless noted. Every
/// elementwise op of the op tables can appear (drawn from the tables, not a list here),
/// next to the operators `+ - * / // % **` and casts.
fn expr(c: &mut Choices, e: Elem, depth: usize) -> String {
    if depth == 0 || c.exhausted() {
        return if c.pick(4) == 0 {
            constant(c, e.float)
        } else {
            "x".to_string()
        };
    }
    let d = depth - 1;
    match c.pick(16) {
        0 => format!("({} + {})", expr(c, e, d), expr(c, e, d)),
        1 => format!("({} - {})", expr(c, e, d), expr(c, e, d)),
        2 => format!("({} * {})", expr(c, e, d), expr(c, e, d)),
        3 if e.float => format!("({} / {})", expr(c, e, d), expr(c, e, d)),
        3 => format!("({} // {})", expr(c, e, d), expr(c, e, d)),
        4 => format!("({} % {})", expr(c, e, d), expr(c, e, d)),
        5 => {
            let ops = same_dtype_unary(e.float);
            format!("{}({})", ops[c.pick(ops.len())], expr(c, e, d))
        }
        6 => format!("-{}", expr(c, e, d)),
        7 => format!(
            "where({}, {}, {})",
            condition(c, e, d),
            expr(c, e, d),
            expr(c, e, d)
        ),
        8 => {
            let ops = same_dtype_binary(e.float);
            format!(
                "{}({}, {})",
                ops[c.pick(ops.len())],
                expr(c, e, d),
                expr(c, e, d)
            )
        }
        9 => format!(
            "clip({}, {}, {})",
            expr(c, e, d),
            constant(c, e.float),
            constant(c, e.float)
        ),
        10 => format!("({} ** {})", expr(c, e, d), expr(c, e, d)),
        11 if e.float => format!("cast(cast({}, i32), f32)", expr(c, e, d)),
        11 => format!("cast(cast({}, f32), i32)", expr(c, e, d)),
        12 if e.rank >= 1 => format!("reverse({}, 0)", expr(c, e, d)),
        13 if e.rank >= 1 => format!(
            "({} + sum({}, axis: 0, keepdims: true))",
            expr(c, e, d),
            expr(c, e, d)
        ),
        // Stateless random draws (a scalar, broadcast): -O0 and -O2 must draw the same.
        15 if e.float => format!(
            "({} + random_normal([], 0.0, 2.0, f32, seed: {}))",
            expr(c, e, d),
            c.byte()
        ),
        15 => format!(
            "({} + random_uniform([], -3, 4, i32, seed: {}))",
            expr(c, e, d),
            c.byte()
        ),
        14 if e.float => format!("cast(cast({}, f64), f32)", expr(c, e, d)),
        14 => format!("cast(cast({}, i64), i32)", expr(c, e, d)),
        _ if e.float => format!("cast({}, f32)", expr(c, e, d)),
        _ => format!("cast(cast({}, u8), i32)", expr(c, e, d)),
    }
}

fn predicate(c: &mut Choices, e: Elem) -> String {
    let cond = if c.pick(2) == 0 {
        let cmp = ["<", "<=", ">", ">=", "==", "!="][c.pick(6)];
        format!("{} {cmp} {}", expr(c, e, 2), constant(c, e.float))
    } else {
        condition(c, e, 2)
    };
    if e.rank == 0 {
        cond
    } else {
        format!("any({cond})")
    }
}

/// An `eager fn` named `name` over the element: branches and a counted loop whose
/// conditions depend on values, so that its plan has several paths (at `-O0` every call
/// runs on the evaluator, the reference the plans must match).
fn eager_fn(c: &mut Choices, e: Elem, name: &str) -> String {
    let dtype = if e.float { "f32" } else { "i32" };
    let dims = vec!["?"; e.rank].join(", ");
    let cond = |c: &mut Choices| {
        let one = condition(c, e, 1);
        if e.rank == 0 {
            // Or a host number: `item` arithmetic, planned under range guards (`//` and
            // `%` of floats are not planned: the evaluator's).
            match c.pick(2) {
                0 => one,
                _ => format!(
                    "item(x) {} {} > {}",
                    ["*", "+", "-", "//", "%"][c.pick(5)],
                    1 + c.pick(5),
                    constant(c, e.float)
                ),
            }
        } else {
            match c.pick(3) {
                0 => format!("any({one})"),
                1 => format!("all({one})"),
                // An element read by indexing (the first, or the last along axis 0).
                _ => {
                    let mut at = vec!["0"; e.rank];
                    at[0] = ["0", "-1"][c.pick(2)];
                    format!("x[{}] > {}", at.join(", "), constant(c, e.float))
                }
            }
        }
    };
    let first = cond(c);
    let then = if e.rank == 0 && c.pick(2) == 1 {
        // A host number meeting the tensor: cast to its dtype under a range guard.
        format!(
            "x {} item(x) {} {}",
            ["+", "-", "*"][c.pick(3)],
            ["+", "*", "//"][c.pick(3)],
            1 + c.pick(4)
        )
    } else {
        expr(c, e, 2)
    };
    let otherwise = expr(c, e, 2);
    let looped = cond(c);
    let step = expr(c, e, 2);
    format!(
        "eager fn {name}(x) -> {dtype}[{dims}] {{\n    if {first} {{\n        x = {then}\n    }} else {{\n        x = {otherwise}\n    }}\n    for i in range({}) {{\n        if {looped} {{\n            x = {step}\n        }}\n    }}\n    return x\n}}\n",
        c.pick(4)
    )
}

/// Generates the program text for `data`.
pub fn program_from_bytes(data: &[u8]) -> String {
    let c = &mut Choices { data, pos: 0 };
    let float = c.pick(2) == 0;
    let (n, width) = (1 + c.pick(6), 1 + c.pick(4));
    let mut e = Elem { float, rank: 1 };
    let source = match c.pick(4) {
        0 => {
            e.rank = 0;
            let src = format!("range({})", c.pick(20));
            if float {
                format!("{src}.map(|x| cast(x, f32))")
            } else {
                format!("{src}.map(|x| cast(x, i32))")
            }
        }
        1 => {
            e.rank = 0;
            format!("from_tensor_slices({})", literal(c, float, 0, n))
        }
        _ => format!("from_tensor_slices({})", literal(c, float, n, width)),
    };
    let mut text = format!("pipeline main = {source}");
    let mut decls = String::new();
    let mut batched = false;
    for _ in 0..1 + c.pick(6) {
        if c.exhausted() {
            break;
        }
        let step = match c.pick(13) {
            0 | 1 => format!(".map(|x| {})", expr(c, e, 3)),
            2 => format!(
                ".map(|x| {}, num_parallel_calls: {})",
                expr(c, e, 2),
                1 + c.pick(4)
            ),
            3 => format!(".filter(|x| {})", predicate(c, e)),
            4 if !batched => {
                batched = true;
                e.rank += 1;
                format!(
                    ".batch({}, drop_remainder: {})",
                    1 + c.pick(4),
                    c.pick(2) == 0
                )
            }
            5 if batched => {
                batched = false;
                e.rank -= 1;
                ".unbatch()".to_string()
            }
            6 => format!(".shuffle({}, seed: {})", 1 + c.pick(8), c.byte()),
            7 => format!(".repeat({})", c.pick(3)),
            8 => format!(".take({})", c.pick(10)),
            9 => format!(".skip({})", c.pick(3)),
            10 => {
                let p = predicate(c, e);
                crate::table_step(|n| c.pick(n), &p).0
            }
            11 => {
                let name = format!("e{}", decls.len());
                decls.push_str(&eager_fn(c, e, &name));
                format!(".map({name})")
            }
            _ => ".cache()".to_string(),
        };
        text.push_str(&format!("\n    {step}"));
    }
    text.push('\n');
    decls + &text
}
