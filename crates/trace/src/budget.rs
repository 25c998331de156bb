//! The compile budget: tracing unrolls loops, inlines calls and copies values, so a short
//! program can ask for unbounded time or memory (a tuple doubled 30 times, functions that
//! call the previous one twice, 40 deep). Tracing counts what it does and stops with E0704,
//! naming the construct that ran out, instead of running for ever or aborting on allocation.

use crate::value::Value;
use pipec_diag::{Code, Diagnostic, Span};
use pipec_ir::{ElemType, TensorType};

/// How much work and memory tracing may spend (`--compile-budget`, `--compile-memory`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompileBudget {
    /// Work units: one per expression evaluated, plus one per value node copied, per IR op
    /// and dim built, and per 256 elements a trace-time constant op computes.
    pub work: u64,
    /// Estimated bytes of the IR (ops, their types, dataset element types) and of the
    /// largest single value tracing builds.
    pub memory: u64,
}

impl CompileBudget {
    /// The default work budget: a few seconds of tracing on a slow machine.
    pub const DEFAULT_WORK: u64 = 20_000_000;
    /// The default memory budget, 256 MiB of estimated IR.
    pub const DEFAULT_MEMORY: u64 = 256 << 20;
}

impl Default for CompileBudget {
    fn default() -> Self {
        CompileBudget {
            work: Self::DEFAULT_WORK,
            memory: Self::DEFAULT_MEMORY,
        }
    }
}

/// What kind of construct is being evaluated, for the message naming it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Construct {
    /// A `for` or `while` loop being unrolled.
    Loop,
    /// A call of a declared function or lambda being inlined.
    Call,
    /// A top-level `let` or `pipeline` item.
    Item,
}

/// Spending so far, and the constructs being evaluated (outermost first).
#[derive(Default)]
pub(crate) struct Spent {
    pub limits: CompileBudget,
    work: u64,
    memory: u64,
    /// Set once the budget ran out: everything after evaluates to poison at once.
    pub exhausted: bool,
    pub constructs: Vec<(Construct, Span)>,
}

/// Bytes one IR op costs, besides its types: the op, its value entries and the heap
/// blocks of its operand lists (measured: about this much per op on `x = x + 1.0`).
const OP_BYTES: u64 = 512;
/// Bytes one value node (a tuple slot, a tensor type) costs, with its share of the heap
/// block holding it.
const NODE_BYTES: u64 = 2 * std::mem::size_of::<Value>() as u64;

impl Spent {
    pub(crate) fn new(limits: CompileBudget) -> Spent {
        Spent {
            limits,
            ..Spent::default()
        }
    }

    /// Adds `work` units and `memory` bytes; on the first overrun returns the E0704
    /// diagnostic to report, with `at` the expression being evaluated.
    pub(crate) fn charge(&mut self, work: u64, memory: u64, at: Span) -> Option<Diagnostic> {
        if self.exhausted {
            return None;
        }
        self.work = self.work.saturating_add(work);
        self.memory = self.memory.saturating_add(memory);
        let over_work = self.work > self.limits.work;
        let over_memory = self.memory > self.limits.memory;
        if !over_work && !over_memory {
            return None;
        }
        self.exhausted = true;
        Some(self.diagnostic(over_memory, at))
    }

    /// Whether a single value of `nodes` nodes fits the memory budget at all; if not,
    /// the budget is exhausted and the diagnostic returned.
    pub(crate) fn check_value(&mut self, nodes: u64, at: Span) -> Option<Diagnostic> {
        if self.exhausted || nodes.saturating_mul(NODE_BYTES) <= self.limits.memory {
            return None;
        }
        self.exhausted = true;
        Some(self.diagnostic(true, at))
    }

    fn diagnostic(&self, memory: bool, at: Span) -> Diagnostic {
        // Name the outermost loop (what multiplies the work), else the outermost call,
        // else the item being evaluated.
        let pick = |k: Construct| self.constructs.iter().find(|(c, _)| *c == k);
        let (what, span) = pick(Construct::Loop)
            .map(|(_, s)| ("this loop", *s))
            .or_else(|| pick(Construct::Call).map(|(_, s)| ("this call", *s)))
            .or_else(|| pick(Construct::Item).map(|(_, s)| ("this definition", *s)))
            .unwrap_or(("here", at));
        let msg = if memory {
            format!(
                "compile budget exceeded: tracing {what} needs more than {} of memory",
                size_text(self.limits.memory)
            )
        } else {
            format!(
                "compile budget exceeded: tracing {what} needs more than {} work units",
                self.limits.work
            )
        };
        let mut d = Diagnostic::error(Code::CompileBudget, msg)
            .with_label(span, format!("{what} ran out of the compile budget"));
        if !(span.start <= at.start && at.end <= span.end) {
            d = d.with_label(at, "while evaluating this");
        }
        d.with_note("loops are unrolled, calls inlined and values copied at compile time; the budget keeps compile time and memory bounded")
            .with_help(if memory {
                "make the program smaller (fewer unrolled iterations, inlined calls or copies of large tuples), or raise the limit with `--compile-memory SIZE`"
            } else {
                "make the program smaller (fewer unrolled iterations or inlined calls), or raise the limit with `--compile-budget N`"
            })
    }
}

fn size_text(bytes: u64) -> String {
    if bytes >= 1 << 30 && bytes.is_multiple_of(1 << 30) {
        format!("{} GiB", bytes >> 30)
    } else if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

/// The number of nodes in a value (what copying it costs).
pub(crate) fn value_nodes(v: &Value) -> u64 {
    match v {
        Value::Tuple(vs) | Value::List(vs) => {
            1 + vs.iter().map(value_nodes).fold(0u64, u64::saturating_add)
        }
        _ => 1,
    }
}

/// The number of nodes in an element type (what a dataset node storing it costs).
pub(crate) fn elem_nodes(e: &ElemType) -> u64 {
    match e {
        ElemType::Tensor(t) => 1 + t.shape.rank() as u64,
        ElemType::Tuple(parts) => 1 + parts.iter().map(elem_nodes).fold(0u64, u64::saturating_add),
        ElemType::Dict(fields) => {
            1 + fields
                .iter()
                .map(|(key, part)| key.len() as u64 / 8 + elem_nodes(part))
                .fold(0u64, u64::saturating_add)
        }
    }
}

/// Estimated bytes of one traced op with these input count and output types.
pub(crate) fn op_bytes(inputs: usize, outs: &[&TensorType]) -> u64 {
    OP_BYTES
        + 4 * inputs as u64
        + outs
            .iter()
            .map(|t| 48 + 24 * t.shape.rank() as u64)
            .sum::<u64>()
}

/// Estimated bytes of a value or element type of `nodes` nodes.
pub(crate) fn node_bytes(nodes: u64) -> u64 {
    nodes.saturating_mul(NODE_BYTES)
}
