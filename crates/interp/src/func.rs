//! Running one IR function on one element (or one batch).

use pipec_diag::{Code, Diagnostic};
use pipec_ir::{Function, FusedBody, FusedOp, HostInstance, OpKind};
use pipec_tensor::kernels::KernelError;
use pipec_tensor::{Tensor, TensorRef};

/// A function prepared for repeated evaluation: where each value dies, so it is moved into
/// its last user instead of cloned (and so freed as early as it can be).
#[derive(Debug)]
pub struct CompiledFn {
    func: Function,
    /// [`Function::last_uses`]: for each op and input position, whether to move the value.
    moves: Vec<Vec<bool>>,
    /// Whether the results are exactly the last op's outputs, returned as the op made them.
    direct: bool,
}

/// Per-lane state of a function: its eager ops' host instances, started on first use.
#[derive(Default)]
pub struct FnState {
    hosts: Vec<Option<Box<dyn HostInstance>>>,
    /// The value table and the op-input buffer, kept between calls (empty in between) so
    /// that a call allocates only what its ops return.
    vals: Vec<Option<Tensor>>,
    inputs: Vec<Tensor>,
}

impl CompiledFn {
    /// Prepares `func`.
    pub fn new(func: Function) -> CompiledFn {
        CompiledFn {
            moves: func.last_uses(),
            direct: func.results_are_last_outputs(),
            func,
        }
    }

    /// The function.
    pub fn func(&self) -> &Function {
        &self.func
    }

    /// Evaluates a function made of constants and one fused op on `args`, which may be
    /// borrowed (a mapped file's rows, read in place instead of copied into a block);
    /// `None` for any other function, for a layout the fused kernel declines and for any
    /// failure: the caller then makes owned rows and [`CompiledFn::call`]s, which reports
    /// errors as usual.
    pub fn call_in_place(&self, args: &[TensorRef<'_>]) -> Option<Vec<Tensor>> {
        let f = &self.func;
        let (last, before) = f.ops.split_last()?;
        let OpKind::Fused(body) = &last.kind else {
            return None;
        };
        if !self.direct || args.len() != f.params.len() {
            return None;
        }
        let mut consts = Vec::with_capacity(before.len());
        for op in before {
            let (OpKind::Const(t), [out]) = (&op.kind, op.outputs.as_slice()) else {
                return None;
            };
            consts.push((*out, t));
        }
        let inputs = last
            .inputs
            .iter()
            .map(|v| match f.params.iter().position(|p| p == v) {
                Some(k) => Some(args[k]),
                None => consts
                    .iter()
                    .find(|(out, _)| out == v)
                    .map(|(_, t)| TensorRef::Owned(t)),
            })
            .collect::<Option<Vec<_>>>()?;
        body.eval_in_place(&inputs)
    }

    /// Evaluates the function on `args`; `element` is the dataset element index (for
    /// errors, and with `epoch` what `element_position` reads: the element's position in
    /// the stream feeding the map or filter, and how many times that node was opened before).
    ///
    /// For a batched function (see [`Function::batched`]), `element` is the index of the
    /// batch's first element, and errors name the element within it.
    pub fn call(
        &self,
        state: &mut FnState,
        args: Vec<Tensor>,
        element: u64,
        epoch: u64,
    ) -> Result<Vec<Tensor>, Diagnostic> {
        let f = &self.func;
        let rows = if f.batched {
            args.first().and_then(|a| a.shape().first().copied())
        } else {
            None
        };
        let mut vals = std::mem::take(&mut state.vals);
        vals.clear();
        vals.resize(f.values.len(), None);
        let mut inputs = std::mem::take(&mut state.inputs);
        for (p, a) in f.params.iter().zip(args) {
            vals[p.index()] = Some(a);
        }
        if state.hosts.len() < f.ops.len() {
            state.hosts.resize_with(f.ops.len(), || None);
        }
        for (i, op) in f.ops.iter().enumerate() {
            inputs.clear();
            inputs.extend(op.inputs.iter().zip(&self.moves[i]).map(|(v, &last)| {
                let slot = &mut vals[v.index()];
                if last { slot.take() } else { slot.clone() }.expect("verified: defined before use")
            }));
            let outs = match &op.kind {
                OpKind::Eager(host) => {
                    if state.hosts[i].is_none() {
                        // A worker that cannot start fails on the element that needed it.
                        let inst = host.instantiate().map_err(|d| {
                            in_element(d, op.span, element, || {
                                format!("starting `{}` for element {element}", host.name())
                            })
                        })?;
                        state.hosts[i] = Some(inst);
                    }
                    let inst = state.hosts[i].as_mut().expect("just started");
                    let outs = inst.call(&inputs).map_err(|d| {
                        in_element(d, op.span, element, || {
                            format!("calling `{}` on element {element}", host.name())
                        })
                    })?;
                    let ok = outs.len() == op.outputs.len()
                        && outs.iter().zip(&op.outputs).all(|(t, o)| {
                            let w = f.ty(*o);
                            t.dtype() == w.dtype && w.shape.admits(t.shape())
                        });
                    if !ok {
                        let want: Vec<_> = op.outputs.iter().map(|o| f.ty(*o)).collect();
                        let got: Vec<String> = outs
                            .iter()
                            .map(|t| format!("{}{:?}", t.dtype(), t.shape()))
                            .collect();
                        let declared: Vec<String> = want.iter().map(|t| t.to_string()).collect();
                        return Err(Diagnostic::error(
                            Code::EagerResultMismatch,
                            format!(
                                "eager function `{}` returned {} for element {element}, but it is declared to return {}",
                                host.name(),
                                got.join(", "),
                                declared.join(", ")
                            ),
                        )
                        .with_label(op.span, "called here")
                        .with_help("return the declared dtype and shape (`cast`, `reshape`), or change the declaration"));
                    }
                    outs
                }
                OpKind::ElementPosition(per_row) => {
                    vec![position(element, epoch, per_row.map(|_| rows), op.span)?]
                }
                // A fused op reports the error at the instruction that failed, with the
                // span and mnemonic of the op it came from.
                OpKind::Fused(body) => body.eval_chunked_located(&inputs).map_err(|(i, e)| {
                    let span = body.spans.get(i).copied().unwrap_or(op.span);
                    kernel_error(
                        e,
                        &fused_inst_kind(body, i),
                        span,
                        Where::new(element, rows, &inputs),
                    )
                })?,
                kind => kind.eval(&inputs).map_err(|e| {
                    kernel_error(e, kind, op.span, Where::new(element, rows, &inputs))
                })?,
            };
            // The inputs' clones go now, as they did when the buffer was per op.
            inputs.clear();
            if self.direct && i + 1 == f.ops.len() && outs.len() == op.outputs.len() {
                vals.clear();
                state.vals = vals;
                state.inputs = inputs;
                return Ok(outs);
            }
            for (o, t) in op.outputs.iter().zip(outs) {
                vals[o.index()] = Some(t);
            }
        }
        let results = f
            .results
            .iter()
            .map(|r| {
                vals[r.index()]
                    .clone()
                    .expect("verified: results are defined")
            })
            .collect();
        // Emptied before they are kept: no tensor outlives the call through the buffers.
        vals.clear();
        inputs.clear();
        state.vals = vals;
        state.inputs = inputs;
        Ok(results)
    }
}

/// `element_position`: `[element, epoch]`, or one such row per element of a batch of
/// `rows` (`Some(None)`: a batch whose size the call does not know, a compiler bug).
fn position(
    element: u64,
    epoch: u64,
    rows: Option<Option<usize>>,
    span: pipec_diag::Span,
) -> Result<Tensor, Diagnostic> {
    let t = match rows {
        None => Tensor::from_vec(&[2], vec![element, epoch]),
        Some(Some(n)) => Tensor::from_vec(
            &[n, 2],
            (0..n as u64)
                .flat_map(|i| [element.wrapping_add(i), epoch])
                .collect(),
        ),
        Some(None) => None,
    };
    t.ok_or_else(|| {
        Diagnostic::error(
            Code::InternalError,
            "internal compiler error: a batched `element_position` in a function run per element",
        )
        .with_label(span, "in this random op")
    })
}

/// The op a fused instruction stands for (to name it in errors).
fn fused_inst_kind(body: &FusedBody, i: usize) -> OpKind {
    match body.insts[i] {
        FusedOp::Unary(op, _) => OpKind::Unary(op),
        FusedOp::Binary(op, _, _) => OpKind::Binary(op),
        FusedOp::Cast(_) => OpKind::Cast(body.dtype(i as u32)),
        FusedOp::Select(..) => OpKind::Select,
        FusedOp::Clip(..) => OpKind::Clip,
        FusedOp::Input(_) | FusedOp::Const(_) => OpKind::Const(pipec_tensor::Tensor::scalar(false)),
    }
}

/// Where in the data an op failed: one element, or a batch of them.
pub(crate) struct Where {
    element: u64,
    /// For a batched function: the batch's row count and its elements per row.
    rows: Option<(usize, usize)>,
}

impl Where {
    fn new(element: u64, rows: Option<usize>, inputs: &[Tensor]) -> Where {
        let rows = rows.filter(|&r| r > 0).map(|r| {
            let shape = inputs
                .iter()
                .try_fold(Vec::new(), |acc, t| {
                    pipec_tensor::kernels::broadcast_shapes(&acc, t.shape())
                })
                .unwrap_or_default();
            (r, shape.iter().product::<usize>() / r)
        });
        Where { element, rows }
    }

    /// "element N" (exact when the kernel says which value failed), or the batch's range.
    fn describe(&self, flat_index: Option<usize>) -> String {
        match (self.rows, flat_index) {
            (None, _) => format!("element {}", self.element),
            (Some((_, per_row)), Some(i)) if per_row > 0 => {
                format!("element {}", self.element + (i / per_row) as u64)
            }
            (Some((rows, _)), _) => format!(
                "the batch of elements {} to {}",
                self.element,
                self.element + rows as u64 - 1
            ),
        }
    }
}

/// Turns a kernel failure into a diagnostic naming the op's span and the element.
pub(crate) fn kernel_error(
    e: KernelError,
    kind: &OpKind,
    span: pipec_diag::Span,
    at: Where,
) -> Diagnostic {
    // At run time a failed broadcast (or any error without a fixed code) is a `?` dim that
    // turned out wrong.
    let code = pipec_ir::kernel_error_code(&e).unwrap_or(Code::RuntimeShapeMismatch);
    let help = match &e {
        KernelError::DivisionByZero { .. } => {
            Some("guard the divisor: `x // where(d == 0, 1, d)`, or filter such elements out first")
        }
        KernelError::Broadcast { .. } => {
            Some("a `?` dim turned out not to match; check the data's shapes")
        }
        KernelError::NegativePower { .. } => {
            Some("cast to a float first (`cast(x, f32) ** y`), or keep the exponents non-negative")
        }
        KernelError::BadValue(_) => Some("filter such elements out first, or fix the data"),
        KernelError::BadImage(_) => Some("filter such elements out first, or fix the file"),
        KernelError::File { .. } => {
            Some("relative paths are resolved against the .pipe file's folder")
        }
        KernelError::OverMemoryLimit { .. } => {
            Some("raise `--max-memory`, or make the tensor smaller")
        }
        _ => None,
    };
    let code = if matches!(kind, OpKind::EnsureShape(_)) {
        Code::EnsureShapeFailed
    } else {
        code
    };
    let message = match &e {
        KernelError::DivisionByZero { index } => {
            format!("integer division by zero in {}", at.describe(Some(*index)))
        }
        KernelError::NegativePower { index } => format!(
            "integers to negative integer powers are not allowed, in {}",
            at.describe(Some(*index))
        ),
        KernelError::BadValue(_) | KernelError::File { .. } | KernelError::BadImage(_) => {
            format!("{e}, in {}", at.describe(None))
        }
        other => format!("{other} in {}", at.describe(None)),
    };
    let mut d =
        Diagnostic::error(code, message).with_label(span, format!("in this `{}`", kind.mnemonic()));
    if let Some(h) = help {
        d = d.with_help(h);
    }
    d
}

/// A host function's error `d` located at the eager op (`span`, labelled by `label` unless
/// the host already pointed somewhere) and noted with the element it failed on.
fn in_element(
    d: Diagnostic,
    span: pipec_diag::Span,
    element: u64,
    label: impl FnOnce() -> String,
) -> Diagnostic {
    let d = if d.labels.is_empty() {
        d.with_label(span, label())
    } else {
        d
    };
    d.with_note(format!("in element {element}"))
}
