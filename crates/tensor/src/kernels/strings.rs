//! String ops (SPEC §13) on `str` tensors: TF's `tf.strings` semantics on byte strings.
//!
//! Every op here is declared once, as a [`StrOp`] with its attributes; the IR's `str` op
//! family (`pipec_ir::ops::strings`) types it and the runtime evaluates it with
//! [`StrOp::eval`]. Elementwise ops broadcast their operands as numpy does.

use super::KernelError;
use super::elementwise::{Arr, zip_ref};
use crate::{Bytes, DType, Tensor};
use ndarray::{ArcArray, Axis, IxDyn};
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// A compiled regular expression, compared and printed by its pattern.
#[derive(Clone)]
pub struct Pattern {
    text: Arc<str>,
    re: Arc<regex::bytes::Regex>,
    /// The same pattern anchored at both ends (a leftmost-first match of `a|ab` on `ab` is
    /// `a`, so "the first match spans the string" is not "the string matches").
    full: Arc<regex::bytes::Regex>,
}

impl Pattern {
    /// Compiles `text` (the `regex` crate's syntax, RE2's: linear time on any input), or says
    /// why it is not a pattern.
    pub fn new(text: &str) -> Result<Pattern, String> {
        // Bounded: a pattern cannot make compilation take unbounded memory.
        let build = |p: &str| {
            regex::bytes::RegexBuilder::new(p)
                .size_limit(1 << 22)
                .build()
                .map_err(|e| e.to_string())
        };
        Ok(Pattern {
            text: text.into(),
            re: Arc::new(build(text)?),
            full: Arc::new(build(&format!("^(?:{text})$"))?),
        })
    }

    /// The pattern as written.
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.text)
    }
}

/// A `lookup` vocabulary: each string's index, in the order given.
#[derive(Clone)]
pub struct Vocab {
    index: Arc<HashMap<Bytes, i64>>,
    len: usize,
    /// A digest of the keys in order, so that equal vocabularies print (and merge) alike.
    digest: u64,
}

impl Vocab {
    /// The vocabulary of `keys`; a repeated key keeps its first index (as TF's
    /// `StaticHashTable` refuses duplicates, pipec's front end reports them first).
    pub fn new(keys: &[Bytes]) -> Vocab {
        let mut index = HashMap::with_capacity(keys.len());
        // FNV-1a over lengths and bytes: stable across runs (unlike `DefaultHasher` seeds).
        let mut digest: u64 = 0xcbf2_9ce4_8422_2325;
        let mut mix = |b: u8| {
            digest ^= u64::from(b);
            digest = digest.wrapping_mul(0x100_0000_01b3);
        };
        for (i, k) in keys.iter().enumerate() {
            index.entry(k.clone()).or_insert(i as i64);
            for b in (k.len() as u64).to_le_bytes() {
                mix(b);
            }
            for &b in k.iter() {
                mix(b);
            }
        }
        Vocab {
            index: Arc::new(index),
            len: keys.len(),
            digest,
        }
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Debug for Vocab {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "vocab(n={}, digest={:016x})", self.len, self.digest)
    }
}

/// One piece of a `format` template.
#[derive(Clone, Debug, PartialEq)]
pub enum FormatPiece {
    /// Text copied as is.
    Text(String),
    /// The next operand.
    Hole,
}

/// The string ops, with their attributes.
#[derive(Clone, Debug)]
pub enum StrOp {
    /// Bytes per string, `i32` (TF's `tf.strings.length`, unit `BYTE`).
    Length,
    /// ASCII lowercase.
    Lower,
    /// ASCII uppercase.
    Upper,
    /// Leading and trailing ASCII whitespace removed.
    Strip,
    /// `substr(s, pos, len)`: bytes `pos..pos+len` (clamped at the end; a negative `pos`
    /// counts from the end). Operands: strings, then integer `pos` and `len`.
    Substr,
    /// Splits a scalar string at each `sep` (on runs of whitespace when `None`) → `str[?]`.
    Split(Option<Bytes>),
    /// Joins the last axis with `sep` (TF's `reduce_join(axis=-1, separator=sep)`).
    Join(Bytes),
    /// Whether the whole string matches.
    RegexFullMatch(Pattern),
    /// Replaces every match of the pattern with `rewrite` (`\1` or `$1` name groups).
    RegexReplace(Pattern, Bytes),
    /// Parses a number of the dtype; text that is not one is an error naming it.
    StringToNumber(DType),
    /// A number as text, as TF's `as_string` writes it (floats with 6 decimals).
    AsString,
    /// `format(template, a, b, ...)`: each hole takes the next operand's element.
    Format(Vec<FormatPiece>),
    /// The last path component (Python's `os.path.basename`).
    Basename,
    /// All but the last path component (Python's `os.path.dirname`).
    Dirname,
    /// Each string's index in the vocabulary, `default` when absent → `i64`.
    Lookup(Vocab, i64),
    /// The bytes of the file each string names; relative paths from `base`.
    ReadFile(PathBuf),
}

impl StrOp {
    /// The op's name in the IR and in source.
    pub fn name(&self) -> &'static str {
        match self {
            StrOp::Length => "length",
            StrOp::Lower => "lower",
            StrOp::Upper => "upper",
            StrOp::Strip => "strip",
            StrOp::Substr => "substr",
            StrOp::Split(_) => "split",
            StrOp::Join(_) => "join",
            StrOp::RegexFullMatch(_) => "regex_full_match",
            StrOp::RegexReplace(..) => "regex_replace",
            StrOp::StringToNumber(_) => "string_to_number",
            StrOp::AsString => "as_string",
            StrOp::Format(_) => "format",
            StrOp::Basename => "basename",
            StrOp::Dirname => "dirname",
            StrOp::Lookup(..) => "lookup",
            StrOp::ReadFile(_) => "read_file",
        }
    }

    /// The dtype of the result, or why the operands' dtypes do not fit.
    pub fn result_dtype(&self, inputs: &[DType]) -> Result<DType, String> {
        let need_str = |i: usize| -> Result<(), String> {
            match inputs.get(i) {
                Some(d) if d.is_str() => Ok(()),
                Some(d) => Err(format!("`{}` needs str, not {d}", self.name())),
                None => Err(format!("`{}` is missing an operand", self.name())),
            }
        };
        match self {
            StrOp::Length => need_str(0).map(|_| DType::I32),
            StrOp::RegexFullMatch(_) => need_str(0).map(|_| DType::Bool),
            StrOp::Lookup(..) => need_str(0).map(|_| DType::I64),
            StrOp::StringToNumber(d) => need_str(0).map(|_| *d),
            StrOp::Substr => {
                need_str(0)?;
                for i in 1..3 {
                    match inputs.get(i) {
                        Some(d) if d.is_int() => {}
                        Some(d) => return Err(format!("`substr` positions are integers, not {d}")),
                        None => return Err("`substr` takes (s, pos, len)".into()),
                    }
                }
                Ok(DType::Str)
            }
            StrOp::AsString => match inputs.first() {
                Some(d) if !d.is_str() => Ok(DType::Str),
                Some(d) => Err(format!("`as_string` formats numbers and bools, not {d}")),
                None => Err("`as_string` takes one operand".into()),
            },
            StrOp::Format(_) => Ok(DType::Str),
            _ => need_str(0).map(|_| DType::Str),
        }
    }

    /// Whether evaluating it may fail on some values (a bad number, a missing file, a
    /// position past the end).
    pub fn may_fail(&self) -> bool {
        matches!(
            self,
            StrOp::StringToNumber(_) | StrOp::ReadFile(_) | StrOp::Substr
        )
    }

    /// Evaluates the op.
    pub fn eval(&self, inputs: &[Tensor]) -> Result<Tensor, KernelError> {
        let s = |i: usize| -> Result<&Arr<Bytes>, KernelError> {
            match inputs.get(i) {
                Some(Tensor::Str(a)) => Ok(a),
                Some(t) => Err(KernelError::DType(format!(
                    "`{}` needs str, not {}",
                    self.name(),
                    t.dtype()
                ))),
                None => Err(KernelError::InvalidArgument(format!(
                    "`{}` is missing an operand",
                    self.name()
                ))),
            }
        };
        Ok(match self {
            StrOp::Length => Tensor::I32(
                s(0)?
                    .map(|b| b.len().min(i32::MAX as usize) as i32)
                    .into_shared(),
            ),
            StrOp::Lower => map_str(s(0)?, |b| Bytes::from(b.to_ascii_lowercase())),
            StrOp::Upper => map_str(s(0)?, |b| Bytes::from(b.to_ascii_uppercase())),
            StrOp::Strip => map_str(s(0)?, |b| {
                let start = b
                    .iter()
                    .position(|c| !c.is_ascii_whitespace())
                    .unwrap_or(b.len());
                let end = b
                    .iter()
                    .rposition(|c| !c.is_ascii_whitespace())
                    .map_or(start, |p| p + 1);
                b.slice(start..end.max(start))
            }),
            StrOp::Basename => map_str(s(0)?, |b| match b.iter().rposition(|&c| c == b'/') {
                Some(p) => b.slice(p + 1..),
                None => b.clone(),
            }),
            StrOp::Dirname => map_str(s(0)?, |b| dirname(b)),
            StrOp::Substr => substr(s(0)?, &inputs[1], &inputs[2])?,
            StrOp::Split(sep) => split(s(0)?, sep.as_deref())?,
            StrOp::Join(sep) => join(s(0)?, sep)?,
            StrOp::RegexFullMatch(p) => {
                Tensor::Bool(s(0)?.map(|b| p.full.is_match(b)).into_shared())
            }
            StrOp::RegexReplace(p, rewrite) => {
                let rewrite = dollar_groups(rewrite);
                map_str(s(0)?, |b| {
                    Bytes::from(p.re.replace_all(b, rewrite.as_slice()).into_owned())
                })
            }
            StrOp::StringToNumber(d) => string_to_number(s(0)?, *d)?,
            StrOp::AsString => as_string(&inputs[0])?,
            StrOp::Format(pieces) => format(pieces, inputs)?,
            StrOp::Lookup(vocab, default) => Tensor::I64(
                s(0)?
                    .map(|b| vocab.index.get(b).copied().unwrap_or(*default))
                    .into_shared(),
            ),
            StrOp::ReadFile(base) => read_files(s(0)?, base)?,
        })
    }
}

/// TF's rewrite syntax names groups `\1`; the `regex` crate's is `$1` (`${1}` so that a
/// digit after it is not read as part of the name). A literal `$` is `$$`.
fn dollar_groups(rewrite: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rewrite.len());
    let mut i = 0;
    while i < rewrite.len() {
        match rewrite[i] {
            b'\\' if i + 1 < rewrite.len() && rewrite[i + 1].is_ascii_digit() => {
                out.extend_from_slice(format!("${{{}}}", rewrite[i + 1] - b'0').as_bytes());
                i += 2;
            }
            b'$' => {
                out.extend_from_slice(b"$$");
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

fn map_str(a: &Arr<Bytes>, f: impl Fn(&Bytes) -> Bytes) -> Tensor {
    Tensor::Str(a.map(f).into_shared())
}

fn dirname(b: &Bytes) -> Bytes {
    // Python's posixpath.dirname: everything before the last `/`, trailing slashes of that
    // head removed unless the head is all slashes.
    match b.iter().rposition(|&c| c == b'/') {
        None => Bytes::new(),
        Some(p) => {
            let head = &b[..p + 1];
            if head.iter().all(|&c| c == b'/') {
                b.slice(..p + 1)
            } else {
                let end = head.iter().rposition(|&c| c != b'/').map_or(0, |q| q + 1);
                b.slice(..end)
            }
        }
    }
}

fn int_values(t: &Tensor) -> Result<Arr<i64>, KernelError> {
    if !t.dtype().is_int() {
        return Err(KernelError::DType(format!(
            "positions are integers, not {}",
            t.dtype()
        )));
    }
    match super::cast(t, DType::I64) {
        Tensor::I64(a) => Ok(a),
        _ => unreachable!("cast to i64 gives i64"),
    }
}

fn substr(s: &Arr<Bytes>, pos: &Tensor, len: &Tensor) -> Result<Tensor, KernelError> {
    let pos = int_values(pos)?;
    let len = int_values(len)?;
    let sp = zip_ref(s, &pos, |b, &p| (b.clone(), p))?;
    let bad: std::cell::RefCell<Option<String>> = std::cell::RefCell::new(None);
    let out = zip_ref(&sp, &len, |(b, p), &n| {
        let size = b.len() as i64;
        let start = if *p < 0 { size + p } else { *p };
        if !(0..=size).contains(&start) || n < 0 {
            let mut bad = bad.borrow_mut();
            if bad.is_none() {
                *bad = Some(if n < 0 {
                    format!("`substr` length {n} is negative")
                } else {
                    format!("`substr` position {p} is out of range for a string of {size} bytes")
                });
            }
            return Bytes::new();
        }
        let end = start.saturating_add(n).min(size);
        b.slice(start as usize..end as usize)
    });
    // `zip_ref` takes `Fn`; the first problem is reported after the walk.
    match bad.into_inner() {
        Some(m) => Err(KernelError::BadValue(m)),
        None => Ok(Tensor::Str(out?)),
    }
}

fn split(s: &Arr<Bytes>, sep: Option<&[u8]>) -> Result<Tensor, KernelError> {
    if s.ndim() != 0 {
        return Err(KernelError::InvalidArgument(format!(
            "`split` takes one string (rank 0), not a tensor of shape {:?}: the parts of several strings would be ragged",
            s.shape()
        )));
    }
    let b = s.iter().next().cloned().unwrap_or_default();
    let parts: Vec<Bytes> = match sep {
        None => {
            let mut out = Vec::new();
            let mut start = None;
            for (i, c) in b.iter().enumerate() {
                match (c.is_ascii_whitespace(), start) {
                    (true, Some(st)) => {
                        out.push(b.slice(st..i));
                        start = None;
                    }
                    (false, None) => start = Some(i),
                    _ => {}
                }
            }
            if let Some(st) = start {
                out.push(b.slice(st..));
            }
            out
        }
        Some(sep) if sep.is_empty() => {
            return Err(KernelError::InvalidArgument(
                "`split` with an empty separator".into(),
            ));
        }
        Some(sep) => {
            let mut out = Vec::new();
            let mut start = 0;
            let mut i = 0;
            while i + sep.len() <= b.len() {
                if &b[i..i + sep.len()] == sep {
                    out.push(b.slice(start..i));
                    i += sep.len();
                    start = i;
                } else {
                    i += 1;
                }
            }
            out.push(b.slice(start..));
            out
        }
    };
    let n = parts.len();
    Ok(Tensor::Str(
        ArcArray::from_shape_vec(IxDyn(&[n]), parts).expect("length matches"),
    ))
}

fn join(s: &Arr<Bytes>, sep: &[u8]) -> Result<Tensor, KernelError> {
    if s.ndim() == 0 {
        return Err(KernelError::InvalidArgument(
            "`join` joins the last axis of a tensor of strings, not one string".into(),
        ));
    }
    let last = Axis(s.ndim() - 1);
    let out = s.map_axis(last, |lane| {
        let mut v = Vec::new();
        for (i, b) in lane.iter().enumerate() {
            if i > 0 {
                v.extend_from_slice(sep);
            }
            v.extend_from_slice(b);
        }
        Bytes::from(v)
    });
    Ok(Tensor::Str(out.into_shared()))
}

fn string_to_number(s: &Arr<Bytes>, dtype: DType) -> Result<Tensor, KernelError> {
    let mut bad: Option<(usize, Bytes)> = None;
    macro_rules! parse {
        ($t:ty, $variant:ident) => {{
            let mut v: Vec<$t> = Vec::with_capacity(s.len());
            for (i, b) in s.iter().enumerate() {
                match std::str::from_utf8(b)
                    .ok()
                    .and_then(|t| t.parse::<$t>().ok())
                {
                    Some(x) => v.push(x),
                    None => {
                        bad = Some((i, b.clone()));
                        break;
                    }
                }
            }
            if bad.is_none() {
                Tensor::$variant(ArcArray::from_shape_vec(s.raw_dim(), v).expect("length matches"))
            } else {
                Tensor::I32(ArcArray::from_elem(IxDyn(&[]), 0))
            }
        }};
    }
    let out = match dtype {
        DType::F32 => parse!(f32, F32),
        DType::F64 => parse!(f64, F64),
        DType::I32 => parse!(i32, I32),
        DType::I64 => parse!(i64, I64),
        other => {
            return Err(KernelError::DType(format!(
                "`string_to_number` gives f32, f64, i32 or i64 (as TF), not {other}"
            )));
        }
    };
    match bad {
        Some((i, b)) => Err(KernelError::BadValue(format!(
            "`string_to_number`: {} is not a {dtype} number{}",
            crate::format::python_bytes_repr(&b),
            if s.ndim() == 0 {
                String::new()
            } else {
                format!(" (at flat index {i})")
            }
        ))),
        None => Ok(out),
    }
}

fn as_string(t: &Tensor) -> Result<Tensor, KernelError> {
    fn go<T: Copy>(a: &Arr<T>, f: impl Fn(T) -> String) -> Tensor {
        Tensor::Str(a.map(|&v| Bytes::from(f(v))).into_shared())
    }
    Ok(match t {
        Tensor::Bool(a) => go(a, |v| if v { "true" } else { "false" }.to_string()),
        Tensor::I8(a) => go(a, |v| v.to_string()),
        Tensor::U8(a) => go(a, |v| v.to_string()),
        Tensor::I16(a) => go(a, |v| v.to_string()),
        Tensor::U16(a) => go(a, |v| v.to_string()),
        Tensor::I32(a) => go(a, |v| v.to_string()),
        Tensor::U32(a) => go(a, |v| v.to_string()),
        Tensor::I64(a) => go(a, |v| v.to_string()),
        Tensor::U64(a) => go(a, |v| v.to_string()),
        Tensor::F16(a) => go(a, |v| float_text(f64::from(v))),
        Tensor::BF16(a) => go(a, |v| float_text(f64::from(v))),
        Tensor::F32(a) => go(a, |v| float_text(f64::from(v))),
        Tensor::F64(a) => go(a, float_text),
        Tensor::Str(_) => {
            return Err(KernelError::DType(
                "`as_string` formats numbers and bools, not str".into(),
            ));
        }
    })
}

/// TF's `as_string` of a float: C's `%f` (six decimals), `nan`, `inf`, `-inf`.
fn float_text(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        format!("{v:.6}")
    }
}

/// One element of any dtype as `format` writes it: strings as they are, numbers as
/// Python's `str` of the number (`3`, `0.5`), bools as `True`/`False`.
fn element_text(t: &Tensor, i: usize) -> Vec<u8> {
    if let Tensor::Str(a) = t {
        return a.iter().nth(i).map(|b| b.to_vec()).unwrap_or_default();
    }
    match t.get_flat(i) {
        Some(crate::Scalar::Bool(b)) => if b { "True" } else { "False" }.into(),
        Some(s) => crate::format::format_tensor(&s.to_tensor()).into_bytes(),
        None => Vec::new(),
    }
}

fn format(pieces: &[FormatPiece], inputs: &[Tensor]) -> Result<Tensor, KernelError> {
    let mut shape: Vec<usize> = Vec::new();
    for t in inputs {
        shape = super::elementwise::broadcast_shapes(&shape, t.shape()).ok_or_else(|| {
            KernelError::Broadcast {
                lhs: shape.clone(),
                rhs: t.shape().to_vec(),
            }
        })?;
    }
    let n = super::checked_len(&shape, std::mem::size_of::<Bytes>())?;
    let flat: Vec<Tensor> = inputs
        .iter()
        .map(|t| super::broadcast_to(t, &shape).and_then(|b| super::reshape(&b, &[n])))
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let mut v = Vec::new();
        let mut next = flat.iter();
        for p in pieces {
            match p {
                FormatPiece::Text(t) => v.extend_from_slice(t.as_bytes()),
                FormatPiece::Hole => {
                    if let Some(t) = next.next() {
                        v.extend(element_text(t, i));
                    }
                }
            }
        }
        out.push(Bytes::from(v));
    }
    Ok(Tensor::Str(
        ArcArray::from_shape_vec(IxDyn(&shape), out).expect("length matches"),
    ))
}

/// Parses a `format` template: `{}` is a hole, `{{` and `}}` are braces.
pub fn parse_format(template: &str) -> Result<Vec<FormatPiece>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('{', Some('{')) | ('}', Some('}')) => {
                chars.next();
                text.push(c);
            }
            ('{', Some('}')) => {
                chars.next();
                if !text.is_empty() {
                    pieces.push(FormatPiece::Text(std::mem::take(&mut text)));
                }
                pieces.push(FormatPiece::Hole);
            }
            ('{', _) => {
                return Err("`{` starts a hole `{}` (write `{{` for a brace); named or numbered holes are not supported".into());
            }
            ('}', _) => return Err("a `}` outside a hole (write `}}` for a brace)".into()),
            _ => text.push(c),
        }
    }
    if !text.is_empty() {
        pieces.push(FormatPiece::Text(text));
    }
    Ok(pieces)
}

/// The most bytes `read_file` reads from one file: the memory ceiling, else the 2^31
/// elements every kernel is limited to.
fn read_limit() -> u64 {
    crate::limits::max_memory().unwrap_or(1 << 31)
}

fn read_files(s: &Arr<Bytes>, base: &std::path::Path) -> Result<Tensor, KernelError> {
    let mut out = Vec::with_capacity(s.len());
    for b in s.iter() {
        let name = String::from_utf8_lossy(b).into_owned();
        let path = base.join(&name);
        let read = || -> std::io::Result<Vec<u8>> {
            use std::io::Read;
            let f = std::fs::File::open(&path)?;
            let limit = read_limit();
            let mut v = Vec::new();
            f.take(limit.saturating_add(1)).read_to_end(&mut v)?;
            if v.len() as u64 > limit {
                return Err(std::io::Error::other(format!(
                    "the file is larger than the memory limit of {limit} bytes"
                )));
            }
            Ok(v)
        };
        match read() {
            Ok(v) => out.push(Bytes::from(v)),
            Err(e) => {
                return Err(KernelError::File {
                    path: name,
                    reason: e.to_string(),
                });
            }
        }
    }
    Ok(Tensor::Str(
        ArcArray::from_shape_vec(s.raw_dim(), out).expect("length matches"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(v: &[&str]) -> Tensor {
        Tensor::from_vec(
            &[v.len()],
            v.iter()
                .map(|s| Bytes::copy_from_slice(s.as_bytes()))
                .collect(),
        )
        .expect("shape")
    }

    fn texts(t: &Tensor) -> Vec<String> {
        match t {
            Tensor::Str(a) => a
                .iter()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .collect(),
            _ => panic!("not str"),
        }
    }

    #[test]
    fn paths_split_as_python_does() {
        let p = strs(&["a/b/c.png", "c.png", "/c", "a//b", "/", ""]);
        assert_eq!(
            texts(&StrOp::Basename.eval(&[p.clone()]).unwrap()),
            ["c.png", "c.png", "c", "b", "", ""]
        );
        assert_eq!(
            texts(&StrOp::Dirname.eval(&[p]).unwrap()),
            ["a/b", "", "/", "a", "/", ""]
        );
    }

    #[test]
    fn split_and_join_round_trip() {
        let s = Tensor::scalar(Bytes::from_static(b"a,b,,c"));
        let parts = StrOp::Split(Some(Bytes::from_static(b",")))
            .eval(&[s])
            .unwrap();
        assert_eq!(texts(&parts), ["a", "b", "", "c"]);
        let joined = StrOp::Join(Bytes::from_static(b"-"))
            .eval(&[parts])
            .unwrap();
        assert_eq!(crate::format::format_tensor(&joined), "b'a-b--c'");
        let ws = Tensor::scalar(Bytes::from_static(b"  the  cat\tsat "));
        assert_eq!(
            texts(&StrOp::Split(None).eval(&[ws]).unwrap()),
            ["the", "cat", "sat"]
        );
    }

    #[test]
    fn regexes_match_whole_strings_and_rewrite_groups() {
        let p = Pattern::new("a|ab").unwrap();
        let m = StrOp::RegexFullMatch(p)
            .eval(&[strs(&["ab", "a", "abc"])])
            .unwrap();
        assert_eq!(crate::format::format_tensor(&m), "[ True  True False]");
        let r = StrOp::RegexReplace(
            Pattern::new(r"(\w+)@(\w+)").unwrap(),
            Bytes::from_static(b"\\2 at \\1 $"),
        )
        .eval(&[strs(&["me@home"])])
        .unwrap();
        assert_eq!(texts(&r), ["home at me $"]);
    }

    #[test]
    fn numbers_parse_and_print_as_tf() {
        let n = StrOp::StringToNumber(DType::F32)
            .eval(&[strs(&["3.5", "-1e3"])])
            .unwrap();
        assert_eq!(crate::format::format_tensor(&n), "[    3.5 -1000. ]");
        let e = StrOp::StringToNumber(DType::I32)
            .eval(&[strs(&["7", "x7"])])
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "`string_to_number`: b'x7' is not a i32 number (at flat index 1)"
        );
        let s = StrOp::AsString
            .eval(&[Tensor::from_vec(&[2], vec![3.5f32, -0.25]).unwrap()])
            .unwrap();
        assert_eq!(texts(&s), ["3.500000", "-0.250000"]);
    }

    #[test]
    fn substr_counts_bytes_and_refuses_positions_past_the_end() {
        let s = strs(&["hello", "hi"]);
        let out = StrOp::Substr
            .eval(&[s.clone(), Tensor::scalar(1i32), Tensor::scalar(3i32)])
            .unwrap();
        assert_eq!(texts(&out), ["ell", "i"]);
        assert!(
            StrOp::Substr
                .eval(&[s, Tensor::scalar(3i32), Tensor::scalar(1i32)])
                .is_err()
        );
    }

    #[test]
    fn format_fills_holes_elementwise() {
        let pieces = parse_format("{}_{}.png").unwrap();
        let out = StrOp::Format(pieces)
            .eval(&[
                strs(&["cat", "dog"]),
                Tensor::from_vec(&[2], vec![1i32, 22]).unwrap(),
            ])
            .unwrap();
        assert_eq!(texts(&out), ["cat_1.png", "dog_22.png"]);
        assert!(parse_format("{0}").is_err());
    }

    #[test]
    fn lookup_gives_first_index_or_default() {
        let v = Vocab::new(&[Bytes::from_static(b"cat"), Bytes::from_static(b"dog")]);
        let out = StrOp::Lookup(v, -1)
            .eval(&[strs(&["dog", "cow", "cat"])])
            .unwrap();
        assert_eq!(crate::format::format_tensor(&out), "[ 1 -1  0]");
    }
}
