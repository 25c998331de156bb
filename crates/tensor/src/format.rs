//! numpy-exact printing of tensors (SPEC §11).
//!
//! [`format_tensor`] prints exactly what numpy 2.x prints for `print(arr)` with default print
//! options (precision 8, `floatmode='maxprec'`, line width 75, threshold 1000, edge items 3).
//! The code follows numpy's `arrayprint.py` (`FloatingFormat`, `IntegerFormat`,
//! `BoolFormat`, `_formatArray`) and `dragon4.c` closely, so the structure can be checked
//! against the source line by line.
//!
//! bf16: numpy has no bf16, and `ml_dtypes.bfloat16` arrays do not go through numpy's float
//! formatter at all (they print `%g`-style six digits such as `0.100098`). pipec prints bf16
//! as numpy would print a floating dtype with bf16's bits: Dragon4 shortest digits that
//! round-trip in bf16 (`0.1`), the same `maxprec` layout, and the scientific-notation cutoff
//! numpy derives from `finfo(dtype).precision` (2 for bf16, as `ml_dtypes.finfo` reports).

mod bigint;
mod dragon4;

use crate::Tensor;
use dragon4::{Class, Decoded, Opts, Trim};
use half::{bf16, f16};
use ndarray::{ArcArray, IxDyn};

/// numpy's default `linewidth`.
const LINE_WIDTH: isize = 75;
/// numpy's default `threshold`: more elements than this are summarized.
const THRESHOLD: usize = 1000;
/// numpy's default `edgeitems`.
const EDGE_ITEMS: usize = 3;
/// numpy's default `precision`.
const PRECISION: i32 = 8;

/// Prints `t` exactly as numpy's `print(arr)` prints the same array.
///
/// bf16 prints as numpy would print a float dtype with bf16's bits (see the module docs).
pub fn format_tensor(t: &Tensor) -> String {
    crate::plain_dispatch!(t, a => format_array(a), str => match t {
        Tensor::Str(a) => format_bytes_array(a),
        _ => unreachable!("only str is not plain"),
    })
}

/// Prints a `str` tensor as numpy prints the object array of `bytes` that TF's `.numpy()`
/// returns: each element as Python's `repr` (`b'cat'`), unpadded, in numpy's layout.
fn format_bytes_array(a: &ArcArray<crate::Bytes, IxDyn>) -> String {
    if a.ndim() == 0 {
        return a
            .iter()
            .next()
            .map(|b| python_bytes_repr(b))
            .unwrap_or_default();
    }
    if a.is_empty() {
        return "[]".to_string();
    }
    let layout = Layout {
        shape: a.shape(),
        summarize: a.len() > THRESHOLD,
        elem: &|idx: &[usize]| python_bytes_repr(&a[IxDyn(idx)]),
    };
    layout.recurse(&mut Vec::with_capacity(a.ndim()), " ", LINE_WIDTH)
}

/// Python's `repr` of a `bytes` value: `b'...'` (double quotes when the bytes hold a `'` and
/// no `"`), printable ASCII as is, `\\`, `\t`, `\n`, `\r`, the quote escaped, any other
/// byte as `\xNN`.
pub fn python_bytes_repr(b: &[u8]) -> String {
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') {
        b'"'
    } else {
        b'\''
    };
    let mut out = String::with_capacity(b.len() + 3);
    out.push('b');
    out.push(quote as char);
    for &c in b {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c as char);
            }
            0x20..=0x7e => out.push(c as char),
            c => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out.push(quote as char);
    out
}

/// Prints a tuple value as `(A, B)`, each part as [`format_tensor`] prints it.
///
/// A one-element tuple prints as `(A,)`, like Python's tuple syntax.
pub fn format_tuple(parts: &[Tensor]) -> String {
    let strs: Vec<String> = parts.iter().map(format_tensor).collect();
    if strs.len() == 1 {
        format!("({},)", strs[0])
    } else {
        format!("({})", strs.join(", "))
    }
}

/// Prints a dict value as Python does, `{'a': A, 'b': B}`: each key as Python's `repr` of
/// the string, each value the text given (already formatted), in the order given.
pub fn format_dict<'a>(fields: impl IntoIterator<Item = (&'a str, String)>) -> String {
    let parts: Vec<String> = fields
        .into_iter()
        .map(|(k, v)| format!("{}: {v}", python_str_repr(k)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// Python's `repr` of a `str`: single quotes unless the text has a `'` and no `"`, escapes
/// for the backslash, the quote, `\t \n \r` and other control characters.
pub fn python_str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// An element type numpy knows how to print.
trait Printable: Copy {
    /// `str()` of the numpy scalar (what a rank-0 array prints).
    fn scalar_str(self) -> String;
    /// numpy's per-array format function, configured from the (summarized) data.
    fn formatter(data: &[Self]) -> Box<dyn Fn(Self) -> String>;
}

fn format_array<T: Printable>(a: &ArcArray<T, IxDyn>) -> String {
    if a.ndim() == 0 {
        return a
            .iter()
            .next()
            .copied()
            .map(T::scalar_str)
            .unwrap_or_default();
    }
    if a.is_empty() {
        return "[]".to_string();
    }
    let summarize = a.len() > THRESHOLD;
    let data: Vec<T> = if summarize {
        corners(a)
    } else {
        a.iter().copied().collect()
    };
    let f = T::formatter(&data);
    let mut index = Vec::with_capacity(a.ndim());
    let layout = Layout {
        shape: a.shape(),
        summarize,
        elem: &|idx: &[usize]| f(a[IxDyn(idx)]),
    };
    layout.recurse(&mut index, " ", LINE_WIDTH)
}

/// The elements numpy's `_leading_trailing` keeps: the first and last `EDGE_ITEMS` along
/// every axis longer than `2 * EDGE_ITEMS`. Only these decide widths and notation.
fn corners<T: Copy>(a: &ArcArray<T, IxDyn>) -> Vec<T> {
    let kept: Vec<Vec<usize>> = a
        .shape()
        .iter()
        .map(|&n| {
            if n > 2 * EDGE_ITEMS {
                (0..EDGE_ITEMS).chain(n - EDGE_ITEMS..n).collect()
            } else {
                (0..n).collect()
            }
        })
        .collect();
    let mut out = Vec::new();
    let mut idx = vec![0usize; kept.len()];
    let mut pos = vec![0usize; kept.len()];
    loop {
        for (k, p) in pos.iter().enumerate() {
            idx[k] = kept[k][*p];
        }
        out.push(a[IxDyn(&idx)]);
        // Odometer increment over the kept index lists.
        let mut k = kept.len();
        loop {
            if k == 0 {
                return out;
            }
            k -= 1;
            pos[k] += 1;
            if pos[k] < kept[k].len() {
                break;
            }
            pos[k] = 0;
        }
    }
}

/// numpy's `_formatArray` with `separator=' '` and no legacy mode.
struct Layout<'a> {
    shape: &'a [usize],
    summarize: bool,
    elem: &'a dyn Fn(&[usize]) -> String,
}

impl Layout<'_> {
    fn recurse(&self, index: &mut Vec<usize>, hanging_indent: &str, curr_width: isize) -> String {
        let axis = index.len();
        let axes_left = self.shape.len() - axis;
        if axes_left == 0 {
            return (self.elem)(index);
        }
        let next_hanging = format!("{hanging_indent} ");
        let next_width = curr_width - 1;
        let a_len = self.shape[axis];
        let show_summary = self.summarize && 2 * EDGE_ITEMS < a_len;
        let (leading, trailing) = if show_summary {
            (EDGE_ITEMS, EDGE_ITEMS)
        } else {
            (0, a_len)
        };
        let mut child = |i: usize| {
            index.push(i);
            let s = self.recurse(index, &next_hanging, next_width);
            index.pop();
            s
        };

        let mut s = String::new();
        if axes_left == 1 {
            // Room up to the separator or closing bracket.
            let elem_width = curr_width - 1;
            let mut line = hanging_indent.to_string();
            for i in 0..leading {
                extend_line(&mut s, &mut line, &child(i), elem_width, hanging_indent);
                line.push(' ');
            }
            if show_summary {
                extend_line(&mut s, &mut line, "...", elem_width, hanging_indent);
                line.push(' ');
            }
            for i in (2..=trailing).rev() {
                extend_line(
                    &mut s,
                    &mut line,
                    &child(a_len - i),
                    elem_width,
                    hanging_indent,
                );
                line.push(' ');
            }
            extend_line(
                &mut s,
                &mut line,
                &child(a_len - 1),
                elem_width,
                hanging_indent,
            );
            s.push_str(&line);
        } else {
            let line_sep = "\n".repeat(axes_left - 1);
            for i in 0..leading {
                s.push_str(hanging_indent);
                s.push_str(&child(i));
                s.push_str(&line_sep);
            }
            if show_summary {
                s.push_str(hanging_indent);
                s.push_str("...");
                s.push_str(&line_sep);
            }
            for i in (2..=trailing).rev() {
                s.push_str(hanging_indent);
                s.push_str(&child(a_len - i));
                s.push_str(&line_sep);
            }
            s.push_str(hanging_indent);
            s.push_str(&child(a_len - 1));
        }
        format!("[{}]", &s[hanging_indent.len()..])
    }
}

/// numpy's `_extendLine`: wrap before `word` unless the line holds only the indent.
fn extend_line(
    s: &mut String,
    line: &mut String,
    word: &str,
    width: isize,
    next_line_prefix: &str,
) {
    let needs_wrap =
        (line.len() + word.len()) as isize > width && line.len() > next_line_prefix.len();
    if needs_wrap {
        s.push_str(line.trim_end());
        s.push('\n');
        line.clear();
        line.push_str(next_line_prefix);
    }
    line.push_str(word);
}

impl Printable for bool {
    fn scalar_str(self) -> String {
        if self { "True" } else { "False" }.to_string()
    }

    fn formatter(_data: &[bool]) -> Box<dyn Fn(bool) -> String> {
        // The leading space aligns " True" with "False".
        Box::new(|x| if x { " True" } else { "False" }.to_string())
    }
}

macro_rules! printable_int {
    ($($t:ty),*) => {$(
        impl Printable for $t {
            fn scalar_str(self) -> String {
                self.to_string()
            }

            fn formatter(data: &[$t]) -> Box<dyn Fn($t) -> String> {
                let max = data.iter().copied().max().unwrap_or_default();
                let min = data.iter().copied().min().unwrap_or_default();
                let width = max.to_string().len().max(min.to_string().len());
                Box::new(move |x| format!("{x:>width$}"))
            }
        }
    )*};
}
printable_int!(i8, u8, i16, u16, i32, u32, i64, u64);

/// What numpy's float formatting needs to know about a float dtype.
trait FloatBits: Copy {
    /// Stored significand bits.
    const MANT_BITS: u32;
    /// Exponent bits.
    const EXP_BITS: u32;
    /// `10 ** min(8, finfo(dtype).precision)`: arrays reaching it print in scientific.
    const EXP_CUTOFF_MAX: f64;
    /// The bound below which a scalar `str()` turns scientific (numpy's scalartypes.c).
    const SCALAR_POSITIONAL_MAX: f64;
    fn bits(self) -> u64;
    fn to_f64(self) -> f64;
    /// The Python float `0.0001` as numpy converts it to this dtype for the comparison.
    fn small_cutoff() -> f64;
    /// `max / min` computed in this dtype, as numpy's division does.
    fn ratio(max: f64, min: f64) -> f64;
}

impl FloatBits for f16 {
    const MANT_BITS: u32 = 10;
    const EXP_BITS: u32 = 5;
    const EXP_CUTOFF_MAX: f64 = 1e3;
    const SCALAR_POSITIONAL_MAX: f64 = 1e3;
    fn bits(self) -> u64 {
        u64::from(self.to_bits())
    }
    fn to_f64(self) -> f64 {
        f16::to_f64(self)
    }
    fn small_cutoff() -> f64 {
        f16::from_f64(1e-4).to_f64()
    }
    fn ratio(max: f64, min: f64) -> f64 {
        // numpy divides halfs in f32 and rounds back to half.
        f16::from_f32(max as f32 / min as f32).to_f64()
    }
}

impl FloatBits for bf16 {
    const MANT_BITS: u32 = 7;
    const EXP_BITS: u32 = 8;
    const EXP_CUTOFF_MAX: f64 = 1e2;
    const SCALAR_POSITIONAL_MAX: f64 = 1e2;
    fn bits(self) -> u64 {
        u64::from(self.to_bits())
    }
    fn to_f64(self) -> f64 {
        bf16::to_f64(self)
    }
    fn small_cutoff() -> f64 {
        bf16::from_f64(1e-4).to_f64()
    }
    fn ratio(max: f64, min: f64) -> f64 {
        bf16::from_f32(max as f32 / min as f32).to_f64()
    }
}

impl FloatBits for f32 {
    const MANT_BITS: u32 = 23;
    const EXP_BITS: u32 = 8;
    const EXP_CUTOFF_MAX: f64 = 1e6;
    const SCALAR_POSITIONAL_MAX: f64 = 1e6;
    fn bits(self) -> u64 {
        u64::from(self.to_bits())
    }
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    fn small_cutoff() -> f64 {
        f64::from(1e-4f32)
    }
    fn ratio(max: f64, min: f64) -> f64 {
        f64::from(max as f32 / min as f32)
    }
}

impl FloatBits for f64 {
    const MANT_BITS: u32 = 52;
    const EXP_BITS: u32 = 11;
    const EXP_CUTOFF_MAX: f64 = 1e8;
    const SCALAR_POSITIONAL_MAX: f64 = 1e16;
    fn bits(self) -> u64 {
        self.to_bits()
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn small_cutoff() -> f64 {
        1e-4
    }
    fn ratio(max: f64, min: f64) -> f64 {
        max / min
    }
}

fn classify<T: FloatBits>(x: T) -> Class {
    dragon4::decode(x.bits(), T::MANT_BITS, T::EXP_BITS)
}

/// The text of a non-finite value, or `None` for a finite one.
fn non_finite(c: &Class) -> Option<&'static str> {
    match c {
        Class::Nan => Some("nan"),
        Class::Inf { neg: true } => Some("-inf"),
        Class::Inf { neg: false } => Some("inf"),
        Class::Finite(_) => None,
    }
}

/// numpy's `FloatingFormat` with default options, after `fillFormat`.
#[derive(Clone, Copy, Debug)]
struct FloatFormat {
    exp_format: bool,
    opts: Opts,
}

impl FloatFormat {
    fn new<T: FloatBits>(data: &[T]) -> FloatFormat {
        let classes: Vec<Class> = data.iter().map(|&x| classify(x)).collect();
        let finite: Vec<(Decoded, f64)> = classes
            .iter()
            .zip(data)
            .filter_map(|(c, x)| match c {
                Class::Finite(d) => Some((*d, x.to_f64())),
                _ => None,
            })
            .collect();

        let mut exp_format = false;
        let abs_non_zero = finite.iter().map(|(_, v)| v.abs()).filter(|v| *v != 0.0);
        let (max, min) = abs_non_zero.fold((None::<f64>, None::<f64>), |(mx, mn), v| {
            (
                Some(mx.map_or(v, |m| m.max(v))),
                Some(mn.map_or(v, |m| m.min(v))),
            )
        });
        if let (Some(max), Some(min)) = (max, min) {
            // numpy compares in the array's dtype (NEP 50 weak Python floats).
            exp_format =
                max >= T::EXP_CUTOFF_MAX || min < T::small_cutoff() || T::ratio(max, min) > 1000.0;
        }

        let mut opts = Opts {
            unique: true,
            precision: PRECISION,
            min_digits: -1,
            trim: Trim::Zeros,
            pad_left: 0,
            pad_right: 0,
            exp_digits: -1,
        };
        if finite.is_empty() {
            // numpy leaves min_digits as None here; no finite value will use it.
        } else if exp_format {
            let first = Opts {
                trim: Trim::Zeros,
                pad_left: -1,
                pad_right: -1,
                ..opts
            };
            let (mut int_len, mut frac_len, mut exp_len) = (0, 0, 0);
            for (d, _) in &finite {
                let s = dragon4::scientific(d, &first);
                let (mantissa, exp) = s
                    .split_once('e')
                    .expect("scientific output has an exponent");
                let (int, frac) = mantissa
                    .split_once('.')
                    .expect("scientific output has a point");
                int_len = int_len.max(int.len());
                frac_len = frac_len.max(frac.len());
                exp_len = exp_len.max(exp.len());
            }
            opts.exp_digits = exp_len as i32 - 1;
            opts.trim = Trim::None;
            opts.precision = frac_len as i32;
            opts.min_digits = opts.precision;
            opts.pad_left = int_len as i32;
            opts.pad_right = opts.exp_digits + 2 + opts.precision;
        } else {
            let first = Opts {
                trim: Trim::Zeros,
                pad_left: -1,
                pad_right: -1,
                ..opts
            };
            let (mut int_len, mut frac_len) = (0, 0);
            for (d, _) in &finite {
                let s = dragon4::positional(d, &first);
                let (int, frac) = s.split_once('.').expect("positional output has a point");
                int_len = int_len.max(int.len());
                frac_len = frac_len.max(frac.len());
            }
            opts.pad_left = int_len as i32;
            opts.pad_right = frac_len as i32;
            opts.min_digits = 0;
        }

        if finite.len() != data.len() {
            let neg_inf = classes
                .iter()
                .any(|c| matches!(c, Class::Inf { neg: true }));
            let offset = opts.pad_right + 1;
            opts.pad_left = opts
                .pad_left
                .max(3 - offset)
                .max(3 + i32::from(neg_inf) - offset);
        }
        FloatFormat { exp_format, opts }
    }

    fn format<T: FloatBits>(&self, x: T) -> String {
        let c = classify(x);
        match c {
            Class::Finite(d) if self.exp_format => dragon4::scientific(&d, &self.opts),
            Class::Finite(d) => dragon4::positional(&d, &self.opts),
            _ => {
                let ret = non_finite(&c).unwrap_or_default();
                let width = (self.opts.pad_left + self.opts.pad_right + 1).max(0) as usize;
                format!("{ret:>width$}")
            }
        }
    }
}

/// `str()` of a numpy float scalar: positional within `[1e-4, SCALAR_POSITIONAL_MAX)`.
fn float_scalar_str<T: FloatBits>(x: T) -> String {
    let c = classify(x);
    match c {
        Class::Finite(d) => {
            let abs = x.to_f64().abs();
            if abs == 0.0 || (1e-4..T::SCALAR_POSITIONAL_MAX).contains(&abs) {
                dragon4::positional(&d, &Opts::unique(Trim::LeaveOneZero))
            } else {
                dragon4::scientific(&d, &Opts::unique(Trim::DptZeros))
            }
        }
        _ => non_finite(&c).unwrap_or_default().to_string(),
    }
}

macro_rules! printable_float {
    ($($t:ty),*) => {$(
        impl Printable for $t {
            fn scalar_str(self) -> String {
                float_scalar_str(self)
            }

            fn formatter(data: &[$t]) -> Box<dyn Fn($t) -> String> {
                let ff = FloatFormat::new(data);
                Box::new(move |x| ff.format(x))
            }
        }
    )*};
}
printable_float!(f16, bf16, f32, f64);

#[cfg(test)]
mod tests {
    use super::*;

    fn f32s(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_vec(shape, v.to_vec()).expect("shape matches data")
    }

    #[test]
    fn spec_parity() {
        assert_eq!(format_tensor(&f32s(&[3], &[1.0, 2.0, 3.0])), "[1. 2. 3.]");
        let logs: Vec<f32> = [2.0f32, 3.0, 4.0].iter().map(|x| x.ln()).collect();
        assert_eq!(
            format_tensor(&f32s(&[3], &logs)),
            "[0.6931472 1.0986123 1.3862944]"
        );
        // numpy's `log1p([4, 5, 6])` in f32 (Rust's `ln` differs in the last bit).
        let logs = [0x3fce0210, 0x3fe55860, 0x3ff91396].map(f32::from_bits);
        assert_eq!(
            format_tensor(&f32s(&[3], &logs)),
            "[1.609438  1.7917595 1.9459102]"
        );
        let cube = [
            1.0, 4.0, 9.0, 4.0, 10.0, 18.0, 7.0, 16.0, 27.0, 10.0, 22.0, 36.0,
        ];
        assert_eq!(
            format_tensor(&f32s(&[2, 2, 3], &cube)),
            "[[[ 1.  4.  9.]\n  [ 4. 10. 18.]]\n\n [[ 7. 16. 27.]\n  [10. 22. 36.]]]"
        );
    }

    #[test]
    fn tuples() {
        let a = f32s(&[2], &[1.0, 2.5]);
        let b = Tensor::scalar(7i64);
        assert_eq!(format_tuple(&[a.clone(), b.clone()]), "([1.  2.5], 7)");
        assert_eq!(format_tuple(&[b]), "(7,)");
        assert_eq!(format_tuple(&[]), "()");
    }

    #[test]
    fn dicts_print_as_python_does() {
        let fields = [("image", "[1 2]".to_string()), ("label", "7".to_string())];
        assert_eq!(format_dict(fields), "{'image': [1 2], 'label': 7}");
        assert_eq!(format_dict([]), "{}");
        // repr(str) as Python writes it.
        assert_eq!(python_str_repr("it's"), "\"it's\"");
        assert_eq!(python_str_repr("a'b\""), "'a\\'b\"'");
        assert_eq!(python_str_repr("tab\there\n\\"), "'tab\\there\\n\\\\'");
        assert_eq!(python_str_repr("\u{1}é"), "'\\x01é'");
    }
}
