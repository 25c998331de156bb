//! String builtins (SPEC §13): each lowers to one `str` op (`OpKind::Str`), whose kind,
//! attributes, dtype rule and kernel are declared in `pipec_tensor::kernels::strings`.
//! Attributes (separators, patterns, templates, vocabularies) are compile-time values.

use super::{Call, Named, Pos, req};
use crate::eval::{Eval, Res, tval_type};
use crate::value::{TVal, Value};
use pipec_diag::{Code, Diagnostic, Span};
use pipec_ir::{DsKind, OpKind, TensorType};
use pipec_tensor::kernels::strings::{Pattern, StrOp, Vocab, parse_format};
use pipec_tensor::{Bytes, DType, Tensor};

impl Eval<'_> {
    /// Emits string op `op` on `inputs`, after checking its dtype and shape rule with a
    /// diagnostic for the user (the tracer never emits an op its type rule refuses).
    pub(super) fn emit_str(&mut self, op: StrOp, inputs: Vec<TVal>, span: Span) -> Res<Value> {
        let tys: Vec<TensorType> = inputs.iter().map(tval_type).collect();
        let refs: Vec<&TensorType> = tys.iter().collect();
        let kind = OpKind::Str(op);
        if let Some(Err(msg)) = kind.infer(&refs) {
            let found: Vec<String> = tys.iter().map(|t| t.to_string()).collect();
            let mut d = Diagnostic::error(Code::DtypeMismatch, msg).with_label(
                span,
                format!("`{}` of {}", kind.mnemonic(), found.join(", ")),
            );
            if tys.iter().any(|t| !t.dtype.is_str())
                && !matches!(kind, OpKind::Str(StrOp::AsString | StrOp::Format(_)))
            {
                d = d.with_help("`as_string(x)` makes text of numbers");
            }
            return self.fail(d);
        }
        self.emit(kind, inputs, span)
    }

    /// The `.pipe` file's folder: relative paths are resolved against it.
    pub(crate) fn base_dir(&self) -> std::path::PathBuf {
        self.comp
            .as_ref()
            .map(|c| c.opts.base_dir.clone())
            .unwrap_or_default()
    }

    /// A compile-time string argument as bytes.
    fn bytes_arg(&mut self, v: (Value, Span)) -> Res<Option<Bytes>> {
        Ok(self
            .string_arg(v)?
            .map(|s| Bytes::copy_from_slice(s.as_bytes())))
    }

    fn pattern_arg(&mut self, v: (Value, Span)) -> Res<Option<Pattern>> {
        let span = v.1;
        let Some(text) = self.string_arg(v)? else {
            return Ok(None);
        };
        match Pattern::new(&text) {
            Ok(p) => Ok(Some(p)),
            Err(e) => {
                let d = Diagnostic::error(Code::WrongKind, format!("`{text}` is not a regular expression"))
                    .with_label(span, "this pattern")
                    .with_note(e)
                    .with_help("patterns use RE2 syntax (the `regex` crate): no backreferences or lookaround, so matching is linear in the text");
                self.fail(d)?;
                Ok(None)
            }
        }
    }
}

/// `length`, `lower`, `upper`, `strip`, `basename`, `dirname`, `as_string`.
pub(super) fn unary(
    ev: &mut Eval<'_>,
    Call {
        name,
        args: a,
        span,
    }: Call,
) -> Res<Value> {
    let t = tensor!(ev, a, 0);
    let op = match name {
        "length" => StrOp::Length,
        "lower" => StrOp::Lower,
        "upper" => StrOp::Upper,
        "strip" => StrOp::Strip,
        "basename" => StrOp::Basename,
        "dirname" => StrOp::Dirname,
        "as_string" => StrOp::AsString,
        _ => unreachable!("registered for the unary string ops only"),
    };
    ev.emit_str(op, vec![t], span)
}

pub(super) fn substr(ev: &mut Eval<'_>, Call { args: a, span, .. }: Call) -> Res<Value> {
    let s = tensor!(ev, a, 0);
    let pos = tensor!(ev, a, 1);
    let len = tensor!(ev, a, 2);
    ev.emit_str(StrOp::Substr, vec![s, pos, len], span)
}

pub(super) fn split(ev: &mut Eval<'_>, Call { args: a, span, .. }: Call) -> Res<Value> {
    let s = tensor!(ev, a, 0);
    let sep = match a[1].clone() {
        Some(v) => {
            let vs = v.1;
            let b = some!(ev.bytes_arg(v)?);
            if b.is_empty() {
                let d = Diagnostic::error(Code::WrongKind, "`split` with an empty separator")
                    .with_label(vs, "empty")
                    .with_help("leave the separator out to split on runs of whitespace");
                return ev.fail(d);
            }
            Some(b)
        }
        None => None,
    };
    ev.emit_str(StrOp::Split(sep), vec![s], span)
}

pub(super) fn join(ev: &mut Eval<'_>, Call { args: a, span, .. }: Call) -> Res<Value> {
    let s = tensor!(ev, a, 0);
    let sep = match a[1].clone() {
        Some(v) => some!(ev.bytes_arg(v)?),
        None => Bytes::new(),
    };
    ev.emit_str(StrOp::Join(sep), vec![s], span)
}

/// `regex_full_match(s, pattern)` and `regex_replace(s, pattern, rewrite)`.
pub(super) fn regex(
    ev: &mut Eval<'_>,
    Call {
        name,
        args: a,
        span,
    }: Call,
) -> Res<Value> {
    let s = tensor!(ev, a, 0);
    let p = some!(ev.pattern_arg(req(&a, 1))?);
    let op = if name == "regex_replace" {
        StrOp::RegexReplace(p, some!(ev.bytes_arg(req(&a, 2))?))
    } else {
        StrOp::RegexFullMatch(p)
    };
    ev.emit_str(op, vec![s], span)
}

pub(super) fn string_to_number(ev: &mut Eval<'_>, Call { args: a, span, .. }: Call) -> Res<Value> {
    let s = tensor!(ev, a, 0);
    let dtype = match a[1].clone() {
        Some(v) => {
            let vs = v.1;
            let d = some!(ev.dtype_arg(v)?);
            if !matches!(d, DType::F32 | DType::F64 | DType::I32 | DType::I64) {
                let d = Diagnostic::error(
                    Code::DtypeMismatch,
                    format!("`string_to_number` gives f32, f64, i32 or i64, not {d}"),
                )
                .with_label(vs, "")
                .with_help(format!("parse to a wider type and `cast(x, {d})`"));
                return ev.fail(d);
            }
            d
        }
        None => DType::F32,
    };
    ev.emit_str(StrOp::StringToNumber(dtype), vec![s], span)
}

/// `format(template, a, b, ...)`: variadic.
pub(super) fn format(
    ev: &mut Eval<'_>,
    _: &'static str,
    pos: Pos,
    named: Named,
    span: Span,
) -> Res<Value> {
    if let Some((n, _, ns)) = named.first() {
        let d = Diagnostic::error(
            Code::WrongKind,
            format!("`format` takes no argument `{}`", n.name),
        )
        .with_label(*ns, "");
        return ev.fail(d);
    }
    let mut args = pos.into_iter();
    let Some(template) = args.next() else {
        let d = Diagnostic::error(Code::WrongArity, "`format` needs a template")
            .with_label(span, "")
            .with_help("format(\"{}_{}.png\", name, index)");
        return ev.fail(d);
    };
    let ts = template.1;
    let text = some!(ev.string_arg(template)?);
    let pieces = match parse_format(&text) {
        Ok(p) => p,
        Err(e) => {
            let d = Diagnostic::error(Code::WrongKind, format!("bad `format` template: {e}"))
                .with_label(ts, "this template");
            return ev.fail(d);
        }
    };
    let holes = pieces
        .iter()
        .filter(|p| matches!(p, pipec_tensor::kernels::strings::FormatPiece::Hole))
        .count();
    let mut inputs = Vec::new();
    for (v, s) in args {
        inputs.push(some!(ev.tensor_operand(v, s)?));
    }
    if inputs.len() != holes {
        let d = Diagnostic::error(
            Code::WrongArity,
            format!(
                "the template has {holes} `{{}}` hole(s) but {} value(s) follow it",
                inputs.len()
            ),
        )
        .with_label(ts, format!("{holes} hole(s)"))
        .with_label(span, "");
        return ev.fail(d);
    }
    if inputs.is_empty() {
        return Ok(Value::Str(
            text.replace("{{", "{").replace("}}", "}").into(),
        ));
    }
    ev.emit_str(StrOp::Format(pieces), inputs, span)
}

pub(super) fn lookup(ev: &mut Eval<'_>, Call { args: a, span, .. }: Call) -> Res<Value> {
    let keys = tensor!(ev, a, 0);
    let (vv, vs) = req(&a, 1);
    let words: Vec<Bytes> = match vv {
        Value::Tensor(TVal::Concrete(Tensor::Str(t))) if t.ndim() == 1 => {
            t.iter().cloned().collect()
        }
        Value::Dataset(d) if d.inputs.is_empty() && matches!(d.kind, DsKind::ReadLines(_)) => {
            let DsKind::ReadLines(paths) = &d.kind else {
                unreachable!("matched above")
            };
            let mut out = Vec::new();
            for p in paths {
                match pipec_tensor::io::read_lines(p) {
                    Ok(lines) => out.extend(lines),
                    Err(e) => {
                        let d = Diagnostic::error(
                            Code::FileUnreadable,
                            format!("cannot read the vocabulary `{}`: {e}", p.display()),
                        )
                        .with_label(vs, "read when compiling");
                        return ev.fail(d);
                    }
                }
            }
            out
        }
        Value::Poison => return Ok(Value::Poison),
        other => {
            let d = Diagnostic::error(
                Code::WrongKind,
                format!("a `lookup` vocabulary is a constant list of strings, not {}", other.kind_name()),
            )
            .with_label(vs, "not a str[n] constant")
            .with_help("write the words (`[\"cat\", \"dog\"]`) or read them from a file when compiling: `read_lines(\"vocab.txt\")`");
            return ev.fail(d);
        }
    };
    let mut seen = std::collections::HashMap::new();
    for (i, w) in words.iter().enumerate() {
        if let Some(first) = seen.insert(w.clone(), i) {
            let d = Diagnostic::error(
                Code::WrongKind,
                format!(
                    "the vocabulary has {} twice (entries {first} and {i})",
                    pipec_tensor::format::python_bytes_repr(w)
                ),
            )
            .with_label(vs, "this vocabulary")
            .with_help(
                "each key maps to one index, as in TF's `StaticHashTable`: remove the repeat",
            );
            return ev.fail(d);
        }
    }
    let default = match a[2].clone() {
        Some((v, s)) => some!(ev.int_value(v, s, "the default index")?),
        None => -1,
    };
    ev.emit_str(StrOp::Lookup(Vocab::new(&words), default), vec![keys], span)
}

pub(super) fn read_file(ev: &mut Eval<'_>, Call { args: a, span, .. }: Call) -> Res<Value> {
    let p = tensor!(ev, a, 0);
    let base = ev.base_dir();
    ev.emit_str(StrOp::ReadFile(base), vec![p], span)
}
