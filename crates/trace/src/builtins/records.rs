//! Record formats (SPEC §14): the sources `read_tfrecord` and `read_parquet`, and
//! `parse_example`, an op backed by `pipec_records` (one typed IR op, a host function of
//! flavor `builtin`, that runs on blocks for batched parsing).

use super::{Call, req};
use crate::eval::{Eval, Res, tval_type};
use crate::types::TypeSpec;
use crate::value::{Num, TVal, Value};
use pipec_diag::{Code, Diagnostic, Span};
use pipec_ir::{Dim, DsKind, ElemType, HostFunction, HostInstance, OpKind, Shape, TensorType};
use pipec_records::example::{FeatureKind, FeatureSpec, Flat};
use pipec_tensor::{Bytes, DType, Tensor};
use std::path::PathBuf;
use std::sync::Arc;

/// The paths a record source reads: a string, a list of strings, a `str` constant, or an
/// unshuffled `list_files(...)` dataset (whose paths are known when compiling).
fn path_list(ev: &mut Eval<'_>, (v, vs): (Value, Span), what: &str) -> Res<Option<Vec<PathBuf>>> {
    let names: Vec<String> = match &v {
        Value::Str(s) => vec![s.to_string()],
        Value::List(vs) | Value::Tuple(vs) if vs.iter().all(|v| matches!(v, Value::Str(_))) => vs
            .iter()
            .filter_map(|v| match v {
                Value::Str(s) => Some(s.to_string()),
                _ => None,
            })
            .collect(),
        Value::Tensor(TVal::Concrete(Tensor::Str(t))) if t.ndim() <= 1 => t
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect(),
        Value::Dataset(d) if d.inputs.is_empty() => match &d.kind {
            DsKind::FromTensorSlices(srcs) => match srcs.as_slice() {
                [pipec_ir::Source::Const(Tensor::Str(t))] => t
                    .iter()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .collect(),
                _ => return not_paths(ev, &v, vs, what),
            },
            _ => return not_paths(ev, &v, vs, what),
        },
        Value::Poison => return Ok(None),
        _ => return not_paths(ev, &v, vs, what),
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
            .with_note("paths are relative to the .pipe file");
            ev.fail(d)?;
            return Ok(None);
        }
        paths.push(full);
    }
    if paths.is_empty() {
        let d = Diagnostic::error(Code::FileUnreadable, format!("`{what}` was given no file"))
            .with_label(vs, "");
        ev.fail(d)?;
        return Ok(None);
    }
    Ok(Some(paths))
}

fn not_paths(ev: &mut Eval<'_>, v: &Value, vs: Span, what: &str) -> Res<Option<Vec<PathBuf>>> {
    let d = Diagnostic::error(
        Code::WrongKind,
        format!(
            "`{what}` takes a path, a list of paths or `list_files(...)`, not {}",
            v.kind_name()
        ),
    )
    .with_label(vs, "")
    .with_help("a shuffled `list_files` is a dataset order chosen at run time: shuffle the records instead (`.shuffle(n)`)");
    ev.fail(d)?;
    Ok(None)
}

/// `read_tfrecord(path | paths, compression: "" | "GZIP" | "ZLIB")`: `str[]` records.
pub(super) fn read_tfrecord(ev: &mut Eval<'_>, Call { args: a, span, .. }: Call) -> Res<Value> {
    let paths = some!(path_list(ev, req(&a, 0), "read_tfrecord")?);
    let compression = match a[1].clone() {
        Some((v, s)) => {
            let name = some!(ev.string_arg((v, s))?);
            match pipec_records::Compression::from_name(&name) {
                Some(c) => c.name().to_string(),
                None => {
                    let d = Diagnostic::error(
                        Code::BadDatasetArgument,
                        format!("unknown compression `{name}`"),
                    )
                    .with_label(s, "")
                    .with_help("write \"\" (none), \"GZIP\" or \"ZLIB\", as TFRecordDataset's compression_type");
                    return ev.fail(d);
                }
            }
        }
        None => String::new(),
    };
    Ok(ev.source(
        DsKind::ReadTfRecord { paths, compression },
        ElemType::Tensor(TensorType::scalar(DType::Str)),
        span,
    ))
}

/// `read_parquet(path | paths, columns: [...])`: one dict per row, typed by the footers now.
pub(super) fn read_parquet(ev: &mut Eval<'_>, Call { args: a, span, .. }: Call) -> Res<Value> {
    let (pv, ps) = req(&a, 0);
    let paths = some!(path_list(ev, (pv, ps), "read_parquet")?);
    let names: Option<Vec<String>> = match a[1].clone() {
        None => None,
        Some((Value::List(vs) | Value::Tuple(vs), _))
            if vs.iter().all(|v| matches!(v, Value::Str(_))) =>
        {
            Some(
                vs.iter()
                    .filter_map(|v| match v {
                        Value::Str(s) => Some(s.to_string()),
                        _ => None,
                    })
                    .collect(),
            )
        }
        Some((Value::Str(s), _)) => Some(vec![s.to_string()]),
        Some((Value::Tensor(TVal::Concrete(Tensor::Str(t))), _)) if t.ndim() == 1 => Some(
            t.iter()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .collect(),
        ),
        Some((Value::Poison, _)) => return Ok(Value::Poison),
        Some((v, s)) => {
            let d = Diagnostic::error(
                Code::WrongKind,
                format!(
                    "`columns:` takes a list of column names, not {}",
                    v.kind_name()
                ),
            )
            .with_label(s, "")
            .with_help("write `columns: [\"a\", \"b\"]`");
            return ev.fail(d);
        }
    };
    let mut elem: Option<(Vec<String>, ElemType)> = None;
    for p in &paths {
        let shown = p.display().to_string();
        let chosen = pipec_records::parquet::read_info(p)
            .and_then(|info| info.select(&shown, names.as_deref()));
        let cols = match chosen {
            Ok(c) => c,
            Err(e) => {
                let code = match e {
                    pipec_records::RecordError::Io { .. } => Code::FileUnreadable,
                    pipec_records::RecordError::UnsupportedColumn { .. } => Code::UnsupportedColumn,
                    pipec_records::RecordError::MissingColumn { .. } => Code::BadDatasetArgument,
                    _ => Code::BadRecord,
                };
                let mut d = Diagnostic::error(code, e.to_string())
                    .with_label(ps, "this file")
                    .with_note(
                        "the schema is read when compiling; the rows when the pipeline runs",
                    );
                if code == Code::UnsupportedColumn {
                    d = d.with_help("leave the column out with `columns: [...]`, or convert it (e.g. a list column to a fixed-size list) when writing the file");
                }
                return ev.fail(d);
            }
        };
        let keys: Vec<String> = cols.iter().map(|(_, c)| c.name.clone()).collect();
        let ty = ElemType::Dict(
            cols.iter()
                .map(|(_, c)| {
                    (
                        c.name.clone(),
                        ElemType::Tensor(TensorType::new(c.elem, Shape::known(&c.shape))),
                    )
                })
                .collect(),
        );
        match &elem {
            None => elem = Some((keys, ty)),
            Some((_, first)) if *first == ty => {}
            Some((_, first)) => {
                let d = Diagnostic::error(
                    Code::DatasetTypeMismatch,
                    format!("`{shown}` has rows of type {ty}, but the first file's are {first}"),
                )
                .with_label(ps, "")
                .with_help("every file read by one `read_parquet` must have the same schema");
                return ev.fail(d);
            }
        }
    }
    let Some((columns, ty)) = elem else {
        return Ok(Value::Poison);
    };
    Ok(ev.source(DsKind::ReadParquet { paths, columns }, ty, span))
}

/// `parse_example(record, {"name": TYPE, ...}, default: {...})`: a dict of the features.
pub(super) fn parse_example(ev: &mut Eval<'_>, Call { args: a, span, .. }: Call) -> Res<Value> {
    let (rv, rs) = req(&a, 0);
    let record = some!(ev.tensor_operand(rv, rs)?);
    let rty = tval_type(&record);
    let batched = match (rty.dtype, rty.rank()) {
        (DType::Str, 0) => None,
        (DType::Str, 1) => Some(rty.shape.0[0]),
        _ => {
            let d = Diagnostic::error(
                Code::DtypeMismatch,
                format!("`parse_example` takes serialized Examples (`str[]`, or `str[?]` after `batch`), not {rty}"),
            )
            .with_label(rs, "")
            .with_help("read the records with `read_tfrecord(...)`");
            return ev.fail(d);
        }
    };
    let (fv, fs) = req(&a, 1);
    let Value::Dict(fields) = fv else {
        if matches!(fv, Value::Poison) {
            return Ok(Value::Poison);
        }
        let d = Diagnostic::error(
            Code::WrongKind,
            format!(
                "`parse_example` takes a dict of feature types, not {}",
                fv.kind_name()
            ),
        )
        .with_label(fs, "")
        .with_help("write `{\"label\": i64, \"bbox\": \"f32[4]\", \"tokens\": \"i64[?]\"}`");
        return ev.fail(d);
    };
    let mut defaults: Vec<(Arc<str>, Value)> = match a[2].clone() {
        None => Vec::new(),
        Some((Value::Dict(d), _)) => d,
        Some((Value::Poison, _)) => return Ok(Value::Poison),
        Some((v, s)) => {
            let d = Diagnostic::error(
                Code::WrongKind,
                format!(
                    "`default:` takes a dict of values by feature, not {}",
                    v.kind_name()
                ),
            )
            .with_label(s, "")
            .with_help("write `default: {\"weight\": 1.0}`");
            return ev.fail(d);
        }
    };
    let mut specs = Vec::new();
    for (name, tv) in fields {
        let Some(ty) = ev.type_value((tv, fs))? else {
            return Ok(Value::Poison);
        };
        let TypeSpec::Tensor { dtype, dims } = ty else {
            return feature_error(
                ev,
                fs,
                &name,
                "a feature's type is one tensor type, not a tuple",
            );
        };
        let kind = match dtype {
            DType::Str => FeatureKind::Bytes,
            DType::I64 => FeatureKind::Int64,
            DType::F32 => FeatureKind::Float,
            other => {
                return feature_error(
                    ev,
                    fs,
                    &name,
                    &format!(
                        "a feature is `str` (bytes_list), `i64` (int64_list) or `f32` (float_list), not `{other}`"
                    ),
                );
            }
        };
        let shape: Vec<Option<usize>> = dims
            .unwrap_or_default()
            .iter()
            .map(|d| match d {
                Dim::Known(n) => Some(*n),
                Dim::Unknown => None,
            })
            .collect();
        if shape.iter().skip(1).any(Option::is_none) {
            return feature_error(ev, fs, &name, "only the first dim of a feature may be `?`");
        }
        let default = match defaults.iter().position(|(k, _)| **k == *name) {
            None => None,
            Some(i) => {
                let (_, v) = defaults.remove(i);
                if shape.first() == Some(&None) {
                    return feature_error(
                        ev,
                        fs,
                        &name,
                        "a `?` feature takes no default: a missing one is empty, as in TF",
                    );
                }
                match default_flat(&v, kind) {
                    Some(f) => Some(f),
                    None => {
                        return feature_error(
                            ev,
                            fs,
                            &name,
                            &format!("its default must be {} values", dtype.name()),
                        );
                    }
                }
            }
        };
        specs.push(FeatureSpec {
            name: name.to_string(),
            kind,
            shape,
            default,
        });
    }
    if let Some((k, _)) = defaults.first() {
        let d = Diagnostic::error(
            Code::BadNamedArgument,
            format!("`default:` names `{k}`, which is not a declared feature"),
        )
        .with_label(span, "");
        return ev.fail(d);
    }
    // The result types: declared shapes, with a leading batch dim when batched; a `?` is
    // the longest in the batch.
    let out_types: Vec<TensorType> = specs
        .iter()
        .map(|s| {
            let mut dims: Vec<Dim> = s
                .shape
                .iter()
                .map(|d| d.map_or(Dim::Unknown, Dim::Known))
                .collect();
            if let Some(n) = batched {
                dims.insert(0, n);
            }
            let dtype = match s.kind {
                FeatureKind::Bytes => DType::Str,
                FeatureKind::Int64 => DType::I64,
                FeatureKind::Float => DType::F32,
            };
            TensorType::new(dtype, Shape(dims))
        })
        .collect();
    let host: pipec_ir::HostFn = Arc::new(ParseExample {
        specs: Arc::new(specs.clone()),
        batched: batched.is_some(),
    });
    let outs: Vec<Value> = if ev.tracing() {
        let input = ev.materialize(record, span);
        let bytes = crate::budget::op_bytes(1, &out_types.iter().collect::<Vec<_>>());
        if !ev.charge(1, bytes, span) {
            return Ok(Value::Poison);
        }
        let func = ev.frame.func.as_mut().expect("tracing");
        let ids = func.push_multi(OpKind::Eager(host), vec![input], out_types.clone(), span);
        ids.into_iter()
            .zip(out_types)
            .map(|(v, ty)| Value::Tensor(TVal::Symbolic(v, ty)))
            .collect()
    } else {
        let TVal::Concrete(t) = record else {
            return Ok(Value::Poison);
        };
        match host.instantiate().and_then(|mut i| i.call(&[t])) {
            Ok(ts) => ts
                .into_iter()
                .map(|t| Value::Tensor(TVal::Concrete(t)))
                .collect(),
            Err(d) => return ev.fail(d.with_label(span, "parsed here")),
        }
    };
    Ok(Value::Dict(
        specs
            .iter()
            .map(|s| Arc::from(s.name.as_str()))
            .zip(outs)
            .collect(),
    ))
}

fn feature_error(ev: &mut Eval<'_>, at: Span, name: &str, what: &str) -> Res<Value> {
    let d = Diagnostic::error(Code::WrongKind, format!("feature `{name}`: {what}"))
        .with_label(at, "")
        .with_help("declare a feature as `i64`, `\"f32[4]\"`, `\"i64[?]\"` or `str`");
    ev.fail(d)
}

/// A default value as the flat values of a feature of `kind`.
fn default_flat(v: &Value, kind: FeatureKind) -> Option<Flat> {
    let items: Vec<&Value> = match v {
        Value::List(vs) | Value::Tuple(vs) => vs.iter().collect(),
        one => vec![one],
    };
    if let Value::Tensor(TVal::Concrete(t)) = v {
        return match (t, kind) {
            (Tensor::Str(a), FeatureKind::Bytes) => Some(Flat::Bytes(a.iter().cloned().collect())),
            (t, FeatureKind::Int64) if t.dtype().is_int() => Some(Flat::Int64(
                pipec_tensor::kernels::cast(t, DType::I64)
                    .as_array::<i64>()?
                    .iter()
                    .copied()
                    .collect(),
            )),
            (t, FeatureKind::Float) if t.dtype() != DType::Str && t.dtype() != DType::Bool => {
                Some(Flat::Float(
                    pipec_tensor::kernels::cast(t, DType::F32)
                        .as_array::<f32>()?
                        .iter()
                        .copied()
                        .collect(),
                ))
            }
            _ => None,
        };
    }
    match kind {
        FeatureKind::Bytes => items
            .iter()
            .map(|v| match v {
                Value::Str(s) => Some(Bytes::copy_from_slice(s.as_bytes())),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .map(Flat::Bytes),
        FeatureKind::Int64 => items
            .iter()
            .map(|v| match v {
                Value::Num(Num::Int(i)) => i64::try_from(*i).ok(),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .map(Flat::Int64),
        FeatureKind::Float => items
            .iter()
            .map(|v| match v {
                Value::Num(Num::Int(i)) => Some(*i as f32),
                Value::Num(Num::Float(f)) => Some(*f as f32),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .map(Flat::Float),
    }
}

/// `parse_example` as a host function: one serialized Example (`str[]`) or a batch of them
/// (`str[n]`) in, one tensor per declared feature out.
#[derive(Debug)]
struct ParseExample {
    specs: Arc<Vec<FeatureSpec>>,
    batched: bool,
}

impl HostFunction for ParseExample {
    fn name(&self) -> &str {
        "parse_example"
    }

    fn flavor(&self) -> &'static str {
        "builtin"
    }

    fn instantiate(&self) -> Result<Box<dyn HostInstance>, Diagnostic> {
        Ok(Box::new(ParseInstance {
            specs: self.specs.clone(),
            batched: self.batched,
        }))
    }

    fn runs_on_blocks(&self) -> bool {
        // On a block of single records it is exactly the batched parse (fixed features);
        // a `?` feature would be padded across the block, which per element it is not.
        !self.batched && self.specs.iter().all(|s| s.shape.first() != Some(&None))
    }
}

struct ParseInstance {
    specs: Arc<Vec<FeatureSpec>>,
    batched: bool,
}

fn records_of(t: &Tensor) -> Vec<Bytes> {
    match t {
        Tensor::Str(a) => a.iter().cloned().collect(),
        _ => Vec::new(),
    }
}

fn feature_diag(e: pipec_records::RecordError, batch_row: Option<usize>) -> Diagnostic {
    let code = match &e {
        pipec_records::RecordError::Example { feature, .. } if !feature.is_empty() => {
            Code::BadFeature
        }
        _ => Code::BadRecord,
    };
    let mut msg = e.to_string();
    if let Some(i) = batch_row {
        msg = format!("record {i} of the batch: {msg}");
    }
    Diagnostic::error(code, msg)
}

impl HostInstance for ParseInstance {
    fn call(&mut self, args: &[Tensor]) -> Result<Vec<Tensor>, Diagnostic> {
        let recs = records_of(&args[0]);
        if self.batched {
            pipec_records::example::parse_batch(&recs, &self.specs)
                .map_err(|(i, e)| feature_diag(e, Some(i)))
        } else {
            let r = recs.into_iter().next().unwrap_or_default();
            pipec_records::example::parse_example(r, &self.specs).map_err(|e| feature_diag(e, None))
        }
    }

    fn call_rows(&mut self, args: &[Tensor]) -> Result<Vec<Tensor>, Diagnostic> {
        // A block of single records: the batched parse (the runtime repeats a failing block
        // per element to name the element).
        pipec_records::example::parse_batch(&records_of(&args[0]), &self.specs)
            .map_err(|(i, e)| feature_diag(e, Some(i)))
    }
}
