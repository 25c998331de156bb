//! Dataset sources: `read_npy`, `read_npz`, `read_csv`, `range`, `from_tensor_slices`,
//! `from_tensors`, `zip`, `list_files` and `read_lines`. File sources read only headers now; data is read when the
//! pipeline runs.

use super::{Call, Named, Pos, req};
use crate::dataset::DsExpr;
use crate::eval::{Eval, Res};
use crate::value::{TVal, Value};
use pipec_diag::{Code, Diagnostic, Span};
use pipec_ir::{Dim, DsKind, ElemType, Shape, Source, TensorType};
use pipec_tensor::{DType, Tensor};
use std::sync::Arc;

pub(super) fn read_npy_npz(ev: &mut Eval<'_>, Call { name, args: a, .. }: Call) -> Res<Value> {
    let path = some!(ev.string_arg(req(&a, 0))?);
    let member = if name == "read_npz" {
        Some(some!(ev.string_arg(req(&a, 1))?))
    } else {
        None
    };
    ev.read_array_file(&path, member.as_deref(), req(&a, 0).1)
}

pub(super) fn read_csv(ev: &mut Eval<'_>, Call { args: a, .. }: Call) -> Res<Value> {
    let path = some!(ev.string_arg(req(&a, 0))?);
    let dtype = match a[1].clone() {
        Some(v) => some!(ev.dtype_arg(v)?),
        None => DType::F32,
    };
    let header = match a[2].clone() {
        Some(v) => Some(some!(ev.bool_arg(Some(v), false)?)),
        None => None,
    };
    ev.read_csv_source(&path, dtype, header, req(&a, 0).1)
}

pub(super) fn range(ev: &mut Eval<'_>, Call { args: a, span, .. }: Call) -> Res<Value> {
    let mut ints = Vec::new();
    for (v, s) in a.into_iter().flatten() {
        ints.push((some!(ev.int_value(v, s, "a range bound")?), s));
    }
    let (start, stop, step) = match ints.as_slice() {
        [(stop, _)] => (0, *stop, 1),
        [(a, _), (b, _)] => (*a, *b, 1),
        [(a, _), (b, _), (c, cs)] => {
            if *c == 0 {
                let d = Diagnostic::error(Code::ZeroStep, "`range` step cannot be zero")
                    .with_label(*cs, "step 0")
                    .with_help("use a positive step to count up, or a negative one to count down");
                return ev.fail(d);
            }
            (*a, *b, *c)
        }
        _ => unreachable!("one to three bound arguments"),
    };
    Ok(ev.source(
        DsKind::Range { start, stop, step },
        ElemType::Tensor(TensorType::scalar(DType::I64)),
        span,
    ))
}

pub(super) fn from_tensors(
    ev: &mut Eval<'_>,
    Call {
        name,
        args: a,
        span,
    }: Call,
) -> Res<Value> {
    let (v, vs) = req(&a, 0);
    let slices = name == "from_tensor_slices";
    // The slices of a CSV table along axis 0 are its rows: the streamed source itself.
    if let (true, Value::Dataset(d)) = (slices, &v)
        && matches!(d.kind, DsKind::ReadCsv { .. })
    {
        return Ok(v);
    }
    let mut srcs = Vec::new();
    let Some(elem) = ev.source_components(v, vs, slices, &mut srcs)? else {
        return Ok(Value::Poison);
    };
    let kind = if slices {
        DsKind::FromTensorSlices(srcs)
    } else {
        DsKind::FromTensors(srcs)
    };
    Ok(ev.source(kind, elem, span))
}

pub(super) fn zip(
    ev: &mut Eval<'_>,
    _: &'static str,
    pos: Pos,
    named: Named,
    span: Span,
) -> Res<Value> {
    let mut dss = Vec::new();
    if !named.is_empty() {
        let d = Diagnostic::error(Code::BadNamedArgument, "`zip` takes no named arguments")
            .with_label(named[0].0.span, "");
        return ev.fail(d);
    }
    let items: Vec<(Value, Span)> = match pos.as_slice() {
        [(Value::Tuple(vs), s)] => vs.iter().map(|v| (v.clone(), *s)).collect(),
        _ => pos,
    };
    for (v, s) in items {
        match v {
            Value::Dataset(d) => dss.push(d),
            Value::Poison => return Ok(Value::Poison),
            other => {
                let d = Diagnostic::error(
                    Code::WrongKind,
                    format!("`zip` takes datasets, found {}", other.kind_name()),
                )
                .with_label(s, "not a dataset");
                return ev.fail(d);
            }
        }
    }
    if dss.is_empty() {
        let d = Diagnostic::error(Code::WrongArity, "`zip` needs at least one dataset")
            .with_label(span, "");
        return ev.fail(d);
    }
    // The node stores a copy of every input's element type.
    let nodes = dss
        .iter()
        .map(|d| crate::budget::elem_nodes(&d.elem))
        .sum::<u64>();
    if !ev.charge(nodes, crate::budget::node_bytes(nodes), span) {
        return Ok(Value::Poison);
    }
    let elem = ElemType::Tuple(dss.iter().map(|d| d.elem.clone()).collect());
    Ok(Value::Dataset(Arc::new(DsExpr {
        kind: DsKind::Zip,
        inputs: dss,
        elem,
        span,
    })))
}

impl Eval<'_> {
    pub(super) fn source(&mut self, kind: DsKind, elem: ElemType, span: Span) -> Value {
        Value::Dataset(Arc::new(DsExpr {
            kind,
            inputs: vec![],
            elem,
            span,
        }))
    }

    /// The element type and data sources of `from_tensor_slices`/`from_tensors` components.
    pub(super) fn source_components(
        &mut self,
        v: Value,
        span: Span,
        slices: bool,
        out: &mut Vec<Source>,
    ) -> Res<Option<ElemType>> {
        match v {
            Value::Tuple(ref vs) if vs.is_empty() && slices => self.empty_slices("()", span),
            Value::Dict(ref fs) if fs.is_empty() && slices => self.empty_slices("{}", span),
            // Its values as a tuple; the keys go back on the element type.
            Value::Dict(fields) => {
                let (keys, vs): (Vec<_>, Vec<_>) = fields.into_iter().unzip();
                let elem = self.source_components(Value::Tuple(vs), span, slices, out)?;
                Ok(elem.map(|e| crate::structure::with_keys(e, keys)))
            }
            Value::Tuple(vs) => {
                let mut parts = Vec::new();
                for v in vs {
                    match self.source_components(v, span, slices, out)? {
                        Some(e) => parts.push(e),
                        None => return Ok(None),
                    }
                }
                if slices {
                    // Every component must have the same first dim.
                    let firsts: Vec<Dim> = out.iter().map(|s| self.source_dim0(s)).collect();
                    let known: Vec<usize> = firsts.iter().filter_map(|d| d.known()).collect();
                    if known.windows(2).any(|w| w[0] != w[1]) {
                        let d = Diagnostic::error(
                            Code::DatasetTypeMismatch,
                            format!(
                                "`from_tensor_slices` components have different lengths: {known:?}"
                            ),
                        )
                        .with_label(span, "")
                        .with_help("every component must have the same size along axis 0");
                        self.fail(d)?;
                        return Ok(None);
                    }
                }
                Ok(Some(ElemType::Tuple(parts)))
            }
            Value::FileArray(src, ty) => {
                out.push(src);
                self.slice_type(ty, slices, span)
            }
            other => {
                let Some(t) = self.tensor_operand(other, span)? else {
                    return Ok(None);
                };
                let TVal::Concrete(t) = t else {
                    let d = Diagnostic::error(
                        Code::NotTraceTime,
                        "a dataset source needs data known at trace time",
                    )
                    .with_label(span, "")
                    .with_help("build sources from constants or files");
                    self.fail(d)?;
                    return Ok(None);
                };
                let ty = TensorType::new(t.dtype(), Shape::known(t.shape()));
                out.push(Source::Const(t));
                self.slice_type(ty, slices, span)
            }
        }
    }

    pub(super) fn source_dim0(&self, s: &Source) -> Dim {
        match s {
            Source::Const(t) => t.shape().first().map_or(Dim::Unknown, |&n| Dim::Known(n)),
            _ => Dim::Unknown,
        }
    }

    pub(super) fn slice_type(
        &mut self,
        ty: TensorType,
        slices: bool,
        span: Span,
    ) -> Res<Option<ElemType>> {
        if !slices {
            return Ok(Some(ElemType::Tensor(ty)));
        }
        if ty.rank() == 0 {
            let d = Diagnostic::error(Code::WrongKind, "`from_tensor_slices` of a scalar")
                .with_label(span, "rank 0: nothing to slice")
                .with_help("use `from_tensors(x)` for a single element");
            self.fail(d)?;
            return Ok(None);
        }
        Ok(Some(ElemType::Tensor(TensorType::new(
            ty.dtype,
            Shape(ty.shape.0[1..].to_vec()),
        ))))
    }

    /// `read_npy(path)` / `read_npz(path, name)`: the header types the array now (for `.npz`,
    /// only the member's header is decompressed); the data is read when the pipeline starts.
    pub(super) fn read_array_file(
        &mut self,
        path: &str,
        member: Option<&str>,
        span: Span,
    ) -> Res<Value> {
        let base = self
            .comp
            .as_ref()
            .map(|c| c.opts.base_dir.clone())
            .unwrap_or_default();
        let full = base.join(path);
        let header = match member {
            Some(name) => pipec_tensor::io::read_npz_header(&full, name),
            None => pipec_tensor::io::read_npy_header(&full),
        };
        match header {
            Ok(h) => {
                let ty = TensorType::new(h.dtype, Shape::known(&h.shape));
                let src = match member {
                    Some(name) => Source::Npz(full, name.trim_end_matches(".npy").to_string()),
                    None => Source::Npy(full),
                };
                Ok(Value::FileArray(src, ty))
            }
            Err(e) => {
                let code = if matches!(e, pipec_tensor::io::IoError::Io(_)) {
                    Code::FileUnreadable
                } else {
                    Code::BadArrayFile
                };
                let mut d =
                    Diagnostic::error(code, format!("cannot read `{}`: {e}", full.display()))
                        .with_label(span, "this file")
                        .with_note("paths are relative to the .pipe file");
                d = match &e {
                    pipec_tensor::io::IoError::MissingMember { .. } => {
                        d.with_help("name the array as `numpy.savez` did: `arr_0`, `arr_1`, ... or its keyword")
                    }
                    pipec_tensor::io::IoError::Io(_) => d.with_help(missing_file_help(&full)),
                    _ => d.with_help("save plain numeric arrays with `numpy.save` (.npy) or `numpy.savez` (.npz)"),
                };
                self.fail(d)
            }
        }
    }

    /// `read_csv(path, dtype[, header])`: the first line gives the column count and whether it
    /// is a header (`header:` overrides the detection); rows are streamed at run time as
    /// elements of type `dtype[ncols]`.
    pub(super) fn read_csv_source(
        &mut self,
        path: &str,
        dtype: DType,
        header: Option<bool>,
        span: Span,
    ) -> Res<Value> {
        let base = self
            .comp
            .as_ref()
            .map(|c| c.opts.base_dir.clone())
            .unwrap_or_default();
        let full = base.join(path);
        match pipec_tensor::io::csv_info(&full) {
            // Only one line, and not numbers: a header without rows, or a bad row? numpy's
            // `loadtxt` takes it for a row and fails; so does pipec, unless told.
            Ok(info)
                if info.header
                    && header.is_none()
                    && matches!(pipec_tensor::io::csv_has_second_line(&full), Ok(false)) =>
            {
                let d = Diagnostic::error(
                    Code::BadCsvCell,
                    format!("the only line of `{}` is not all numbers", full.display()),
                )
                .with_label(span, "this file")
                .with_note("a first line that is not numbers is taken for a header, but nothing follows it")
                .with_help("if it is a header, say so: `read_csv(path, header: true)` (the dataset is then empty); otherwise fix the cell");
                self.fail(d)
            }
            Ok(info) => {
                let elem = ElemType::Tensor(TensorType::new(dtype, Shape::known(&[info.ncols])));
                Ok(self.source(
                    DsKind::ReadCsv {
                        path: full,
                        header: header.unwrap_or(info.header),
                    },
                    elem,
                    span,
                ))
            }
            Err(e) => {
                let code = if matches!(e, pipec_tensor::io::IoError::Io(_)) {
                    Code::FileUnreadable
                } else {
                    Code::BadCsvCell
                };
                let mut d =
                    Diagnostic::error(code, format!("cannot read `{}`: {e}", full.display()))
                        .with_label(span, "this file")
                        .with_note("paths are relative to the .pipe file");
                if matches!(e, pipec_tensor::io::IoError::Io(_)) {
                    d = d.with_help(missing_file_help(&full));
                }
                self.fail(d)
            }
        }
    }
}

/// The help for a file that cannot be opened: the closest name in its directory, if any.
fn missing_file_help(full: &std::path::Path) -> String {
    let wanted = full
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let dir = full
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    // Sorted, so that the suggestion does not depend on the directory's order.
    names.sort();
    match pipec_diag::did_you_mean(&wanted, names.iter().map(String::as_str)) {
        Some(s) if s != wanted => {
            format!("did you mean `{s}`? (paths are relative to the .pipe file)")
        }
        _ => "check the path; it is relative to the .pipe file, not to the current directory"
            .to_string(),
    }
}

/// `list_files(pattern, shuffle:, seed:)`: the paths matching a glob, found when compiling
/// (as TF's `list_files` globs when the graph is built), sorted, spelled as the pattern
/// spells them; `shuffle: true` shuffles them each epoch, as a `shuffle` over all of them.
pub(super) fn list_files(ev: &mut Eval<'_>, Call { args: a, span, .. }: Call) -> Res<Value> {
    let (pv, ps) = req(&a, 0);
    let pattern = some!(ev.string_arg((pv, ps))?);
    let shuffle = some!(ev.bool_arg(a[1].clone(), false)?);
    let seed = match a[2].clone() {
        Some((v, s)) => Some(some!(ev.int_value(v, s, "the seed")?) as u64),
        None => None,
    };
    let base = ev.base_dir();
    let relative = !std::path::Path::new(&pattern).is_absolute();
    let full = base.join(&pattern);
    let entries = match glob::glob(&full.to_string_lossy()) {
        Ok(e) => e,
        Err(e) => {
            let d = Diagnostic::error(
                Code::WrongKind,
                format!("`{pattern}` is not a glob pattern: {e}"),
            )
            .with_label(ps, "this pattern")
            .with_help(
                "`*` matches within a name, `**` across folders, `?` one character, `[ab]` a set",
            );
            return ev.fail(d);
        }
    };
    let mut paths: Vec<String> = Vec::new();
    for entry in entries {
        let Ok(p) = entry else { continue };
        if !p.is_file() {
            continue;
        }
        let shown = match (relative, p.strip_prefix(&base)) {
            (true, Ok(rest)) if !base.as_os_str().is_empty() => rest.to_path_buf(),
            _ => p,
        };
        paths.push(shown.to_string_lossy().into_owned());
    }
    paths.sort();
    if paths.is_empty() {
        let d = Diagnostic::error(Code::FileUnreadable, format!("no file matches `{pattern}`"))
            .with_label(ps, "this pattern")
            .with_note(format!(
                "looked in `{}` (paths are relative to the .pipe file)",
                base.display()
            ));
        return ev.fail(d);
    }
    let n = paths.len();
    let t = Tensor::from_vec(
        &[n],
        paths
            .iter()
            .map(|p| pipec_tensor::Bytes::copy_from_slice(p.as_bytes()))
            .collect(),
    )
    .expect("one element per path");
    let elem = ElemType::Tensor(TensorType::scalar(DType::Str));
    let src = ev.source(
        DsKind::FromTensorSlices(vec![Source::Const(t)]),
        elem.clone(),
        span,
    );
    if !shuffle {
        return Ok(src);
    }
    let Value::Dataset(input) = src else {
        return Ok(Value::Poison);
    };
    Ok(Value::Dataset(Arc::new(DsExpr {
        kind: DsKind::Shuffle {
            buffer: n,
            seed,
            reshuffle: true,
        },
        inputs: vec![input],
        elem,
        span,
    })))
}

/// `read_lines(path | paths)`: one `str[]` element per line (`TextLineDataset`). The files
/// must exist when compiling; they are read when the pipeline runs.
pub(super) fn read_lines(ev: &mut Eval<'_>, Call { args: a, span, .. }: Call) -> Res<Value> {
    let (v, vs) = req(&a, 0);
    let names: Vec<String> = match v {
        Value::Str(s) => vec![s.to_string()],
        Value::List(vs) | Value::Tuple(vs) if vs.iter().all(|v| matches!(v, Value::Str(_))) => vs
            .iter()
            .map(|v| match v {
                Value::Str(s) => s.to_string(),
                _ => unreachable!("checked above"),
            })
            .collect(),
        Value::Tensor(TVal::Concrete(Tensor::Str(t))) if t.ndim() <= 1 => t
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect(),
        Value::Poison => return Ok(Value::Poison),
        other => {
            let d = Diagnostic::error(
                Code::WrongKind,
                format!("`read_lines` takes a path or a list of paths, not {}", other.kind_name()),
            )
            .with_label(vs, "")
            .with_help("to read the files a dataset of paths names, use `map(|p| read_file(p))` or `flat_map`");
            return ev.fail(d);
        }
    };
    let base = ev.base_dir();
    let mut paths = Vec::new();
    for n in names {
        let full = base.join(&n);
        if !full.is_file() {
            let d = Diagnostic::error(
                Code::FileUnreadable,
                format!("cannot read `{}`: no such file", full.display()),
            )
            .with_label(vs, "this file")
            .with_note("paths are relative to the .pipe file")
            .with_help(missing_file_help(&full));
            return ev.fail(d);
        }
        paths.push(full);
    }
    Ok(ev.source(
        DsKind::ReadLines(paths),
        ElemType::Tensor(TensorType::scalar(DType::Str)),
        span,
    ))
}
