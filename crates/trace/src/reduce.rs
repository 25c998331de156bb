//! `DATASET.reduce(init, f)` and `DATASET.get_single_element()`: datasets folded into values
//! while compiling (SPEC §15), as Keras' `Normalization.adapt` computes its statistics once.
//!
//! The dataset runs through the runtime ([`crate::TraceOptions::dataset_runner`], supplied
//! by the `pipec` crate, since tracing does not depend on the interpreter) with every
//! function traced so far; `f` is evaluated on each element's concrete values by the same
//! evaluator that computes every trace-time value, so a weak `init` (`0`, `0.0`) takes the
//! dtype of what it is first combined with, as any weak number does. The result is a
//! trace-time constant: a `let` bound to it is computed once, and a function using it
//! holds a `const` in the IR.

use crate::dataset::{DsExpr, to_pipeline};
use crate::eval::{Eval, Frame, Res, has_poison, rebuild};
use crate::value::{TVal, Value};
use pipec_diag::{Code, Diagnostic, Span};
use pipec_ir::ElemType;
use pipec_tensor::Tensor;
use std::sync::Arc;

impl Eval<'_> {
    /// Runs `ds` now, calling `each` on every element (as values) until it returns false.
    /// `None` when the dataset failed (reported) or cannot run here.
    fn run_now(
        &mut self,
        ds: &Arc<DsExpr>,
        span: Span,
        what: &str,
        each: &mut dyn FnMut(&mut Self, Value) -> Res<bool>,
    ) -> Res<Option<()>> {
        let Some(runner) = self.comp().opts.dataset_runner.clone() else {
            let d = Diagnostic::error(
                Code::WrongKind,
                format!(
                    "`{what}` cannot run a dataset here: this compiler was built without a runtime"
                ),
            )
            .with_label(span, "runs the dataset while compiling");
            self.fail(d)?;
            return Ok(None);
        };
        let prog = self.comp().prog.clone();
        let pipeline = to_pipeline(what, span, ds);
        let elem = ds.elem.clone();
        let errors_before = self.comp().diags.len();
        let mut outcome: Res<()> = Ok(());
        // The runner calls back with leaves; each one is folded right away so that only the
        // accumulator is held, never the dataset.
        let result = {
            let this = &mut *self;
            let mut cb = |leaves: Vec<Tensor>| -> bool {
                if outcome.is_err() {
                    return false;
                }
                let v = element_value(&elem, leaves);
                match each(this, v) {
                    // An error reported while folding (at compile time errors are recorded,
                    // not thrown) stops the run.
                    Ok(go_on) => go_on && this.comp().diags.len() == errors_before,
                    Err(e) => {
                        outcome = Err(e);
                        false
                    }
                }
            };
            runner(&prog, &pipeline, &mut cb)
        };
        outcome?;
        if let Err(d) = result {
            let d = d.with_note(format!(
                "`{what}` runs its dataset while compiling, to compute a constant"
            ));
            self.fail(d)?;
            return Ok(None);
        }
        Ok(Some(()))
    }

    /// `ds.reduce(init, f)`: `f(acc, x...)` over every element, from `init`.
    pub(crate) fn dataset_reduce(
        &mut self,
        ds: Arc<DsExpr>,
        init: (Value, Span),
        f: (Value, Span),
        span: Span,
    ) -> Res<Value> {
        let Some(func) = self.func_arg(f, "reduce")? else {
            return Ok(Value::Poison);
        };
        if has_poison(&init.0) {
            return Ok(Value::Poison);
        }
        let errors_before = self.comp().diags.len();
        let mut acc = Some(init.0);
        // The function runs on host values, as top-level code does, whatever encloses the call.
        let saved = std::mem::replace(&mut self.frame, Frame::top());
        let ran = self.run_now(&ds, span, "reduce", &mut |ev, x| {
            let mut args = vec![acc.take().expect("an accumulator")];
            match x {
                Value::Tuple(parts) => args.extend(parts),
                other => args.push(other),
            }
            let next = ev.call_func(&func, args, span)?;
            let ok = !has_poison(&next);
            acc = Some(next);
            Ok(ok)
        });
        self.frame = saved;
        let ran = ran?;
        let acc = acc.unwrap_or(Value::Poison);
        if ran.is_none() || self.comp().diags.len() > errors_before || has_poison(&acc) {
            return Ok(Value::Poison);
        }
        if !host_value(&acc) {
            let d = Diagnostic::error(
                Code::WrongKind,
                format!(
                    "the function given to `reduce` must return numbers or tensors, found {}",
                    acc.kind_name()
                ),
            )
            .with_label(span, "reduced here");
            return self.fail(d);
        }
        Ok(acc)
    }

    /// `ds.get_single_element()`: the one element of `ds` (E0412 unless it has exactly one).
    pub(crate) fn dataset_single(&mut self, ds: Arc<DsExpr>, span: Span) -> Res<Value> {
        let mut found: Vec<Value> = Vec::new();
        let ran = self.run_now(&ds, span, "get_single_element", &mut |_, x| {
            found.push(x);
            Ok(found.len() < 2)
        })?;
        if ran.is_none() {
            return Ok(Value::Poison);
        }
        if found.len() != 1 {
            let d = Diagnostic::error(
                Code::NotSingleElement,
                if found.is_empty() {
                    "`get_single_element` of an empty dataset".to_string()
                } else {
                    "`get_single_element` of a dataset with more than one element".to_string()
                },
            )
            .with_label(span, "needs exactly one element")
            .with_label(ds.span, format!("has {}", if found.is_empty() { "none" } else { "two or more" }))
            .with_help("`take(1)` keeps the first element; `batch(n)` or `reduce(...)` combine several into one");
            return self.fail(d);
        }
        Ok(found.pop().expect("one element"))
    }
}

/// The value of an element with type `elem` and flat `leaves`.
fn element_value(elem: &ElemType, leaves: Vec<Tensor>) -> Value {
    let mut it = leaves.into_iter().map(|t| Value::Tensor(TVal::Concrete(t)));
    rebuild(elem, &mut it)
}

/// Whether `v` is made of host values only (numbers and concrete tensors, nested).
fn host_value(v: &Value) -> bool {
    match v {
        Value::Num(_) | Value::Bool(_) | Value::Tensor(TVal::Concrete(_)) => true,
        Value::Tuple(vs) | Value::List(vs) => vs.iter().all(host_value),
        Value::Dict(fs) => fs.iter().all(|(_, v)| host_value(v)),
        _ => false,
    }
}
