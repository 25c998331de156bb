//! `tf.train.Example`: the protobuf messages of TensorFlow's `example.proto` and
//! `feature.proto` (written as prost structs, so no `protoc` is needed), parsing against
//! declared features as `tf.io.parse_example` does, and encoding for `--output .tfrecord`.

use crate::RecordError;
use bytes::Bytes;
use ndarray::{ArcArray, ArrayD, IxDyn};
use pipec_tensor::Tensor;
use prost::Message;
use std::collections::BTreeMap;

/// `tensorflow.BytesList`.
#[derive(Clone, PartialEq, Message)]
pub struct BytesList {
    /// The byte strings.
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub value: Vec<Bytes>,
}

/// `tensorflow.FloatList` (packed).
#[derive(Clone, PartialEq, Message)]
pub struct FloatList {
    /// The floats.
    #[prost(float, repeated, tag = "1")]
    pub value: Vec<f32>,
}

/// `tensorflow.Int64List` (packed).
#[derive(Clone, PartialEq, Message)]
pub struct Int64List {
    /// The integers.
    #[prost(int64, repeated, tag = "1")]
    pub value: Vec<i64>,
}

/// `tensorflow.Feature`: one of the three lists.
#[derive(Clone, PartialEq, Message)]
pub struct Feature {
    /// Which list (none for an empty feature).
    #[prost(oneof = "Kind", tags = "1, 2, 3")]
    pub kind: Option<Kind>,
}

/// The `oneof kind` of `tensorflow.Feature`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Kind {
    /// `bytes_list`.
    #[prost(message, tag = "1")]
    BytesList(BytesList),
    /// `float_list`.
    #[prost(message, tag = "2")]
    FloatList(FloatList),
    /// `int64_list`.
    #[prost(message, tag = "3")]
    Int64List(Int64List),
}

/// `tensorflow.Features`: the name → feature map.
#[derive(Clone, PartialEq, Message)]
pub struct Features {
    /// The features by name (ordered, so encoding is deterministic).
    #[prost(btree_map = "string, message", tag = "1")]
    pub feature: BTreeMap<String, Feature>,
}

/// `tensorflow.Example`.
#[derive(Clone, PartialEq, Message)]
pub struct Example {
    /// The features (absent in an empty Example).
    #[prost(message, optional, tag = "1")]
    pub features: Option<Features>,
}

/// The list kind a feature is declared with: `str` ↔ `bytes_list`, `i64` ↔ `int64_list`,
/// `f32` ↔ `float_list` (the only three dtypes `tf.io.parse_example` accepts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureKind {
    /// `bytes_list`, parsed as `str`.
    Bytes,
    /// `int64_list`, parsed as `i64`.
    Int64,
    /// `float_list`, parsed as `f32`.
    Float,
}

impl FeatureKind {
    /// The proto field's name, for messages.
    pub fn list_name(self) -> &'static str {
        match self {
            FeatureKind::Bytes => "bytes_list",
            FeatureKind::Int64 => "int64_list",
            FeatureKind::Float => "float_list",
        }
    }
}

/// Flat values of one feature, in the order stored.
#[derive(Debug, Clone, PartialEq)]
pub enum Flat {
    /// `bytes_list` values.
    Bytes(Vec<Bytes>),
    /// `int64_list` values.
    Int64(Vec<i64>),
    /// `float_list` values.
    Float(Vec<f32>),
}

impl Flat {
    fn len(&self) -> usize {
        match self {
            Flat::Bytes(v) => v.len(),
            Flat::Int64(v) => v.len(),
            Flat::Float(v) => v.len(),
        }
    }

    fn empty(kind: FeatureKind) -> Flat {
        match kind {
            FeatureKind::Bytes => Flat::Bytes(Vec::new()),
            FeatureKind::Int64 => Flat::Int64(Vec::new()),
            FeatureKind::Float => Flat::Float(Vec::new()),
        }
    }

    fn extend(&mut self, other: &Flat) {
        match (self, other) {
            (Flat::Bytes(a), Flat::Bytes(b)) => a.extend_from_slice(b),
            (Flat::Int64(a), Flat::Int64(b)) => a.extend_from_slice(b),
            (Flat::Float(a), Flat::Float(b)) => a.extend_from_slice(b),
            _ => {}
        }
    }

    /// Appends `n` padding values (zero, or the empty string).
    fn pad(&mut self, n: usize) {
        match self {
            Flat::Bytes(v) => v.resize(v.len() + n, Bytes::new()),
            Flat::Int64(v) => v.resize(v.len() + n, 0),
            Flat::Float(v) => v.resize(v.len() + n, 0.0),
        }
    }

    fn into_value(self, shape: Vec<usize>) -> Tensor {
        let shape = IxDyn(&shape);
        // The caller computed `shape` from the length, so the reshape cannot fail.
        match self {
            Flat::Bytes(v) => Tensor::Str(ArrayD::from_shape_vec(shape, v).map_or_else(
                |_| ArcArray::from_elem(IxDyn(&[0]), Bytes::new()),
                ArcArray::from,
            )),
            Flat::Int64(v) => Tensor::I64(
                ArrayD::from_shape_vec(shape, v)
                    .map_or_else(|_| ArcArray::from_elem(IxDyn(&[0]), 0), ArcArray::from),
            ),
            Flat::Float(v) => Tensor::F32(
                ArrayD::from_shape_vec(shape, v)
                    .map_or_else(|_| ArcArray::from_elem(IxDyn(&[0]), 0.0), ArcArray::from),
            ),
        }
    }
}

/// One declared feature: `"name": TYPE` of `parse_example`.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureSpec {
    /// The feature's name in the Example.
    pub name: String,
    /// The list it must be stored as.
    pub kind: FeatureKind,
    /// Its shape; a leading `None` (`?`) makes it a variable-length feature (TF's
    /// `VarLenFeature`, delivered dense; a missing one is empty).
    pub shape: Vec<Option<usize>>,
    /// The value of a missing fixed-length feature: as many values as the shape holds, or
    /// one, repeated (TF's `default_value`).
    pub default: Option<Flat>,
}

impl FeatureSpec {
    fn is_var_len(&self) -> bool {
        self.shape.first().is_some_and(|d| d.is_none())
    }

    /// The product of the fixed dims (after the `?`, for a variable-length feature).
    fn fixed_count(&self) -> usize {
        self.shape.iter().flatten().product()
    }

    fn err(&self, what: impl Into<String>) -> RecordError {
        RecordError::Example {
            feature: self.name.clone(),
            what: what.into(),
        }
    }
}

/// Decodes one serialized `tf.train.Example`.
pub fn decode(record: Bytes) -> Result<Example, RecordError> {
    Example::decode(record).map_err(|e| RecordError::Example {
        feature: String::new(),
        what: format!("the record is not a tf.train.Example: {e}"),
    })
}

/// The flat values of each declared feature in one Example, checked against its spec, and
/// for a variable-length feature the number of rows (the `?` dim).
fn features_of(record: Bytes, specs: &[FeatureSpec]) -> Result<Vec<(Flat, usize)>, RecordError> {
    let example = decode(record)?;
    let mut map = example.features.map(|f| f.feature).unwrap_or_default();
    let mut out = Vec::with_capacity(specs.len());
    for spec in specs {
        // Taken out of the map, not copied: feature names are unique among the specs (a
        // dict), so no feature is looked up twice.
        let found = match map.remove(&spec.name) {
            None => None,
            Some(f) => Some(match (f.kind, spec.kind) {
                // An empty Feature (no list set) is an empty list of any kind, as in TF.
                (None, k) => Flat::empty(k),
                (Some(Kind::BytesList(l)), FeatureKind::Bytes) => Flat::Bytes(l.value),
                (Some(Kind::Int64List(l)), FeatureKind::Int64) => Flat::Int64(l.value),
                (Some(Kind::FloatList(l)), FeatureKind::Float) => Flat::Float(l.value),
                (Some(k), want) => {
                    let have = match k {
                        Kind::BytesList(_) => "bytes_list",
                        Kind::FloatList(_) => "float_list",
                        Kind::Int64List(_) => "int64_list",
                    };
                    return Err(spec.err(format!(
                        "stored as a {have}, but declared as a {} ({})",
                        want.list_name(),
                        declared_type(spec)
                    )));
                }
            }),
        };
        let per_row = spec.fixed_count();
        if spec.is_var_len() {
            let flat = found.unwrap_or_else(|| Flat::empty(spec.kind));
            if per_row == 0 || flat.len() % per_row != 0 {
                return Err(spec.err(format!(
                    "holds {} values, not a multiple of {per_row} ({})",
                    flat.len(),
                    declared_type(spec)
                )));
            }
            let rows = flat.len() / per_row;
            out.push((flat, rows));
            continue;
        }
        let flat = match found {
            Some(flat) => flat,
            None => match &spec.default {
                Some(d) if d.len() == per_row => d.clone(),
                Some(d) if d.len() == 1 => {
                    let mut v = Flat::empty(spec.kind);
                    for _ in 0..per_row {
                        v.extend(d);
                    }
                    v
                }
                Some(d) => {
                    return Err(spec.err(format!(
                        "the default holds {} values, but {} needs {per_row}",
                        d.len(),
                        declared_type(spec)
                    )));
                }
                None => {
                    return Err(spec.err(
                        "missing from the Example, and no default was given (add one with `default: {...}`)",
                    ));
                }
            },
        };
        if flat.len() != per_row {
            return Err(spec.err(format!(
                "holds {} values, but {} needs {per_row}",
                flat.len(),
                declared_type(spec)
            )));
        }
        out.push((flat, 0));
    }
    Ok(out)
}

/// The declared type as written in pipec (`i64[4]`, `f32[?]`, `str[]`).
pub fn declared_type(spec: &FeatureSpec) -> String {
    let dtype = match spec.kind {
        FeatureKind::Bytes => "str",
        FeatureKind::Int64 => "i64",
        FeatureKind::Float => "f32",
    };
    let dims: Vec<String> = spec
        .shape
        .iter()
        .map(|d| d.map_or_else(|| "?".to_string(), |n| n.to_string()))
        .collect();
    format!("{dtype}[{}]", dims.join(", "))
}

fn fixed_dims(spec: &FeatureSpec) -> Vec<usize> {
    spec.shape.iter().flatten().copied().collect()
}

/// Parses one serialized Example into one value per spec, in the order of `specs`.
pub fn parse_example(record: Bytes, specs: &[FeatureSpec]) -> Result<Vec<Tensor>, RecordError> {
    let feats = features_of(record, specs)?;
    Ok(specs
        .iter()
        .zip(feats)
        .map(|(spec, (flat, rows))| {
            let mut shape = fixed_dims(spec);
            if spec.is_var_len() {
                shape.insert(0, rows);
            }
            flat.into_value(shape)
        })
        .collect())
}

/// Parses a batch of serialized Examples (a `str[n]` after `batch`), as TF's batched
/// `parse_example`: each value gets a leading dim of `n`; variable-length features are
/// padded to the longest in the batch with zeros or empty strings. An error carries the
/// index of the Example in the batch.
pub fn parse_batch(
    records: &[Bytes],
    specs: &[FeatureSpec],
) -> Result<Vec<Tensor>, (usize, RecordError)> {
    let mut per_record = Vec::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        per_record.push(features_of(r.clone(), specs).map_err(|e| (i, e))?);
    }
    let mut out = Vec::with_capacity(specs.len());
    for (k, spec) in specs.iter().enumerate() {
        let mut flat = Flat::empty(spec.kind);
        let mut shape = vec![records.len()];
        if spec.is_var_len() {
            let longest = per_record.iter().map(|f| f[k].1).max().unwrap_or(0);
            let per_row = spec.fixed_count();
            for f in &per_record {
                flat.extend(&f[k].0);
                flat.pad((longest - f[k].1) * per_row);
            }
            shape.push(longest);
        } else {
            for f in &per_record {
                flat.extend(&f[k].0);
            }
        }
        shape.extend(fixed_dims(spec));
        out.push(flat.into_value(shape));
    }
    Ok(out)
}

/// Encodes named flat values as one serialized `tf.train.Example`.
pub fn encode_example(features: impl IntoIterator<Item = (String, Flat)>) -> Vec<u8> {
    let feature = features
        .into_iter()
        .map(|(name, flat)| {
            let kind = match flat {
                Flat::Bytes(value) => Kind::BytesList(BytesList { value }),
                Flat::Int64(value) => Kind::Int64List(Int64List { value }),
                Flat::Float(value) => Kind::FloatList(FloatList { value }),
            };
            (name, Feature { kind: Some(kind) })
        })
        .collect();
    Example {
        features: Some(Features { feature }),
    }
    .encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, kind: FeatureKind, shape: &[Option<usize>]) -> FeatureSpec {
        FeatureSpec {
            name: name.into(),
            kind,
            shape: shape.to_vec(),
            default: None,
        }
    }

    fn sample() -> Bytes {
        Bytes::from(encode_example([
            (
                "image".to_string(),
                Flat::Bytes(vec![Bytes::from_static(b"\x89PNG")]),
            ),
            ("label".to_string(), Flat::Int64(vec![7])),
            ("bbox".to_string(), Flat::Float(vec![0.1, 0.2, 0.3, 0.4])),
            ("tokens".to_string(), Flat::Int64(vec![1, 2, 3])),
        ]))
    }

    #[test]
    fn fixed_and_var_len_features() {
        let specs = [
            spec("image", FeatureKind::Bytes, &[]),
            spec("label", FeatureKind::Int64, &[]),
            spec("bbox", FeatureKind::Float, &[Some(2), Some(2)]),
            spec("tokens", FeatureKind::Int64, &[None]),
            spec("absent", FeatureKind::Float, &[None]),
        ];
        let v = parse_example(sample(), &specs).unwrap();
        assert_eq!(v[0].shape(), &[] as &[usize]);
        let Tensor::Str(img) = &v[0] else { panic!() };
        assert_eq!(&img.iter().next().unwrap()[..], b"\x89PNG");
        assert_eq!(v[1], (Tensor::I64(ArcArray::from_elem(IxDyn(&[]), 7))));
        assert_eq!(v[2].shape(), &[2, 2]);
        assert_eq!(v[3].shape(), &[3]);
        assert_eq!(v[4].shape(), &[0]);
    }

    #[test]
    fn errors_name_the_feature() {
        let e = parse_example(sample(), &[spec("label", FeatureKind::Float, &[])]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "feature `label`: stored as a int64_list, but declared as a float_list (f32[])"
        );
        let e =
            parse_example(sample(), &[spec("bbox", FeatureKind::Float, &[Some(3)])]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "feature `bbox`: holds 4 values, but f32[3] needs 3"
        );
        let e = parse_example(sample(), &[spec("nope", FeatureKind::Int64, &[])]).unwrap_err();
        assert!(e.to_string().starts_with("feature `nope`: missing"), "{e}");
        let e = parse_example(Bytes::from_static(b"\xff\xff"), &[]).unwrap_err();
        assert!(e.to_string().contains("not a tf.train.Example"), "{e}");
    }

    #[test]
    fn defaults_fill_missing_fixed_features() {
        let mut s = spec("w", FeatureKind::Float, &[Some(3)]);
        s.default = Some(Flat::Float(vec![0.5]));
        let v = parse_example(sample(), &[s.clone()]).unwrap();
        let Tensor::F32(a) = &v[0] else { panic!() };
        assert_eq!(a.iter().copied().collect::<Vec<_>>(), vec![0.5; 3]);
        s.default = Some(Flat::Float(vec![1.0, 2.0]));
        assert!(parse_example(sample(), &[s]).is_err());
    }

    #[test]
    fn batched_parse_pads_var_len() {
        let short = Bytes::from(encode_example([
            ("label".to_string(), Flat::Int64(vec![1])),
            ("tokens".to_string(), Flat::Int64(vec![9])),
        ]));
        let specs = [
            spec("label", FeatureKind::Int64, &[]),
            spec("tokens", FeatureKind::Int64, &[None]),
        ];
        let v = parse_batch(&[sample(), short.clone()], &specs).unwrap();
        let Tensor::I64(t) = &v[1] else { panic!() };
        assert_eq!(t.shape(), &[2, 3]);
        assert_eq!(
            t.iter().copied().collect::<Vec<_>>(),
            vec![1, 2, 3, 9, 0, 0]
        );
        let bad = [spec("image", FeatureKind::Bytes, &[])];
        let (i, _) = parse_batch(&[sample(), short], &bad).unwrap_err();
        assert_eq!(i, 1);
    }
}
