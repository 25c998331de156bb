//! The table of dataset transformations declared once: a one-input transformation that
//! needs no pass of its own is a row of [`TRANSFORMS`] (name, parameters, element-type
//! rule, random access) plus its stream in the interpreter (`stream/transforms.rs`).
//!
//! Everything else reads the row: the tracer binds and checks the arguments by the row's
//! parameters and types the node with its rule; the printer writes `name ARGS`; the
//! verifier re-runs the rule and checks a predicate's signature; `DsKind::func` gives the
//! passes and the runtime the function it calls; the fuzz grammars draw from the table.
//! The older transformations (`take`, `shard`, ...) keep their own `DsKind` variants
//! because passes, sharding and random access pattern-match them.

use crate::types::{ElemType, TensorType};
use crate::{FuncId, Program};
use pipec_tensor::DType;

/// What one parameter of a table transformation takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// A whole number (`i64`).
    Int,
    /// `true` or `false`.
    Bool,
    /// A function of the element returning one `bool[]`, traced like `filter`'s.
    Predicate,
}

/// A parameter: its name (as a named argument), what it takes and, when optional, its
/// default.
#[derive(Debug)]
pub struct Param {
    /// The name, as tf.data spells it.
    pub name: &'static str,
    /// What it takes.
    pub kind: ParamKind,
    /// `None`: required (required parameters come first).
    pub default: Option<Arg>,
}

/// A bound argument of a table transformation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    /// For [`ParamKind::Int`].
    Int(i64),
    /// For [`ParamKind::Bool`].
    Bool(bool),
    /// For [`ParamKind::Predicate`]: the traced function.
    Func(FuncId),
}

/// One dataset transformation: everything the compiler knows about it.
#[derive(Debug)]
pub struct TransformDecl {
    /// The method name, printed as the IR mnemonic too.
    pub name: &'static str,
    /// Its parameters, required ones first.
    pub params: &'static [Param],
    /// The element type for an input of element type `input` and the bound arguments:
    /// the tracer's rule and the verifier's.
    pub elem: fn(&ElemType, &[Arg]) -> Result<ElemType, String>,
    /// Whether output positions map to known input positions (SPEC §15's random access),
    /// so `global_shuffle` accepts it above; `true` also needs the row's position map in the
    /// interpreter's `random_access.rs` (without one the run stops with a coded error).
    pub random_access: bool,
}

/// The element type is the input's.
fn same(input: &ElemType, _: &[Arg]) -> Result<ElemType, String> {
    Ok(input.clone())
}

/// Every table transformation.
pub static TRANSFORMS: &[TransformDecl] = &[
    // tf.data's `take_while(predicate)`: the elements before the first one the predicate
    // rejects; it stops pulling there.
    TransformDecl {
        name: "take_while",
        params: &[Param {
            name: "predicate",
            kind: ParamKind::Predicate,
            default: None,
        }],
        elem: same,
        random_access: false,
    },
];

/// The row named `name`.
pub fn transform_decl(name: &str) -> Option<&'static TransformDecl> {
    TRANSFORMS.iter().find(|d| d.name == name)
}

/// A table transformation applied: its row and its arguments, one per parameter.
#[derive(Clone, Debug)]
pub struct Transform {
    /// The row.
    pub decl: &'static TransformDecl,
    /// One argument per parameter of the row, in order.
    pub args: Vec<Arg>,
}

impl Transform {
    /// The argument of the parameter named `name` (the interpreter's reader).
    pub fn arg(&self, name: &str) -> Option<Arg> {
        let i = self.decl.params.iter().position(|p| p.name == name)?;
        self.args.get(i).copied()
    }

    /// The function it calls, if a parameter is a predicate.
    pub fn func(&self) -> Option<FuncId> {
        self.args.iter().find_map(|a| match a {
            Arg::Func(f) => Some(*f),
            _ => None,
        })
    }

    /// The function it calls, to renumber.
    pub fn func_mut(&mut self) -> Option<&mut FuncId> {
        self.args.iter_mut().find_map(|a| match a {
            Arg::Func(f) => Some(f),
            _ => None,
        })
    }

    /// The printed arguments: required ones as values, optional ones as `name=value`.
    pub(crate) fn arg_texts(&self, prog: &Program) -> Vec<String> {
        self.decl
            .params
            .iter()
            .zip(&self.args)
            .map(|(p, a)| {
                let v = match a {
                    Arg::Int(n) => n.to_string(),
                    Arg::Bool(b) => b.to_string(),
                    Arg::Func(f) => format!("@{}", prog.func(*f).name),
                };
                match p.default {
                    None => v,
                    Some(_) => format!("{}={v}", p.name),
                }
            })
            .collect()
    }

    /// What a predicate parameter's function must return.
    pub fn predicate_results() -> Vec<TensorType> {
        vec![TensorType::scalar(DType::Bool)]
    }
}
