//! Array files: `.npy` reading and writing (format version 1.0–3.0), with errors that say
//! what is wrong instead of panicking on malformed input.

use crate::{DType, Tensor};
use half::{bf16, f16};
use std::path::Path;

/// Why an array file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// The file system refused.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The bytes are not a valid `.npy` array.
    #[error("not a valid .npy file: {0}")]
    Format(String),
    /// A valid file with a dtype pipec does not support.
    #[error("unsupported dtype `{0}` (pipec reads bool, ints, f16, f32 and f64)")]
    UnsupportedDtype(String),
    /// A `.npz` member that does not exist.
    #[error("no array named `{0}` in the archive")]
    MissingMember(String),
}

const MAGIC: &[u8] = b"\x93NUMPY";

/// The dtype and shape stored in a `.npy` header, and where the data starts.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyHeader {
    /// The element dtype.
    pub dtype: DType,
    /// The shape.
    pub shape: Vec<usize>,
    /// Whether the data is in column-major order.
    pub fortran_order: bool,
    /// Whether the data is big-endian.
    pub big_endian: bool,
    /// Byte offset of the data.
    pub data_offset: usize,
}

/// Reads only the header of a `.npy` file (what tracing needs to type it).
pub fn read_npy_header(path: &Path) -> Result<NpyHeader, IoError> {
    use std::io::Read;
    // Headers are small; read a bounded prefix rather than the whole array.
    let mut prefix = Vec::new();
    std::fs::File::open(path)?.take(1 << 20).read_to_end(&mut prefix)?;
    parse_header(&prefix)
}

fn header_len_field(start: &[u8]) -> Result<(usize, usize), IoError> {
    if start.len() < 8 || &start[..6] != MAGIC {
        return Err(IoError::Format("missing the \\x93NUMPY magic string".into()));
    }
    match start[6] {
        1 => Ok((2, 10)),
        2 | 3 => Ok((4, 12)),
        v => Err(IoError::Format(format!("unknown format version {v}"))),
    }
}

/// Parses the header of `.npy` bytes.
pub fn parse_header(bytes: &[u8]) -> Result<NpyHeader, IoError> {
    let (len_size, prefix) = header_len_field(bytes)?;
    if bytes.len() < prefix {
        return Err(IoError::Format("truncated header".into()));
    }
    let hlen = if len_size == 2 {
        u16::from_le_bytes([bytes[8], bytes[9]]) as usize
    } else {
        u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize
    };
    let end = prefix.checked_add(hlen).ok_or_else(|| IoError::Format("header length overflows".into()))?;
    let header = bytes.get(prefix..end).ok_or_else(|| IoError::Format("truncated header".into()))?;
    let text = std::str::from_utf8(header).map_err(|_| IoError::Format("header is not text".into()))?;
    let descr = dict_value(text, "descr").ok_or_else(|| IoError::Format("header has no 'descr'".into()))?;
    let descr = descr.trim().trim_matches(|c| c == '\'' || c == '"');
    let fortran = dict_value(text, "fortran_order").ok_or_else(|| IoError::Format("header has no 'fortran_order'".into()))?;
    let fortran_order = match fortran.trim() {
        "True" => true,
        "False" => false,
        other => return Err(IoError::Format(format!("bad fortran_order `{other}`"))),
    };
    let shape_text = dict_value(text, "shape").ok_or_else(|| IoError::Format("header has no 'shape'".into()))?;
    let inner = shape_text.trim().strip_prefix('(').and_then(|s| s.strip_suffix(')')).ok_or_else(|| IoError::Format("bad shape".into()))?;
    let mut shape = Vec::new();
    for part in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        shape.push(part.trim_end_matches('L').parse::<usize>().map_err(|_| IoError::Format(format!("bad dim `{part}`")))?);
    }
    let (big_endian, code) = match descr.as_bytes().first() {
        Some(b'<') | Some(b'|') | Some(b'=') => (false, &descr[1..]),
        Some(b'>') => (true, &descr[1..]),
        _ => (false, descr),
    };
    let dtype = match code {
        "b1" | "?" => DType::Bool,
        "i1" => DType::I8,
        "u1" => DType::U8,
        "i2" => DType::I16,
        "u2" => DType::U16,
        "i4" => DType::I32,
        "u4" => DType::U32,
        "i8" => DType::I64,
        "u8" => DType::U64,
        "f2" => DType::F16,
        "f4" => DType::F32,
        "f8" => DType::F64,
        _ => return Err(IoError::UnsupportedDtype(descr.to_string())),
    };
    Ok(NpyHeader { dtype, shape, fortran_order, big_endian, data_offset: end })
}

/// The text of `'key': value` in a Python dict literal (value up to the next top-level comma).
fn dict_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let pat1 = format!("'{key}':");
    let pat2 = format!("\"{key}\":");
    let start = text.find(&pat1).map(|i| i + pat1.len()).or_else(|| text.find(&pat2).map(|i| i + pat2.len()))?;
    let rest = &text[start..];
    let mut depth = 0i32;
    for (i, c) in rest.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' | '}' if depth == 0 => return Some(&rest[..i]),
            _ => {}
        }
    }
    Some(rest)
}

/// Reads a whole `.npy` file.
pub fn read_npy(path: &Path) -> Result<Tensor, IoError> {
    let bytes = std::fs::read(path)?;
    parse_npy(&bytes)
}

/// Parses `.npy` bytes into a tensor.
pub fn parse_npy(bytes: &[u8]) -> Result<Tensor, IoError> {
    let h = parse_header(bytes)?;
    let n = h.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(|| IoError::Format("shape overflows".into()))?;
    let size = h.dtype.size_bytes();
    let need = n.checked_mul(size).ok_or_else(|| IoError::Format("data size overflows".into()))?;
    let data = &bytes[h.data_offset.min(bytes.len())..];
    if data.len() < need {
        return Err(IoError::Format(format!("expected {need} bytes of data, found {}", data.len())));
    }
    let data = &data[..need];
    macro_rules! decode {
        ($t:ty, $from:expr) => {{
            let v: Vec<$t> = data.chunks_exact(size).map(|c| {
                let mut b = [0u8; std::mem::size_of::<$t>()];
                b.copy_from_slice(c);
                if h.big_endian { b.reverse(); }
                $from(b)
            }).collect();
            build(&h, v)
        }};
    }
    match h.dtype {
        DType::Bool => {
            if data.iter().any(|&b| b > 1) {
                return Err(IoError::Format("a bool is neither 0 nor 1".into()));
            }
            build(&h, data.iter().map(|&b| b == 1).collect::<Vec<bool>>())
        }
        DType::I8 => decode!(i8, i8::from_le_bytes),
        DType::U8 => decode!(u8, u8::from_le_bytes),
        DType::I16 => decode!(i16, i16::from_le_bytes),
        DType::U16 => decode!(u16, u16::from_le_bytes),
        DType::I32 => decode!(i32, i32::from_le_bytes),
        DType::U32 => decode!(u32, u32::from_le_bytes),
        DType::I64 => decode!(i64, i64::from_le_bytes),
        DType::U64 => decode!(u64, u64::from_le_bytes),
        DType::F16 => decode!(f16, f16::from_le_bytes),
        DType::BF16 => decode!(bf16, bf16::from_le_bytes),
        DType::F32 => decode!(f32, f32::from_le_bytes),
        DType::F64 => decode!(f64, f64::from_le_bytes),
    }
}

fn build<T: crate::TensorElem>(h: &NpyHeader, data: Vec<T>) -> Result<Tensor, IoError> {
    if h.fortran_order {
        let mut rev = h.shape.clone();
        rev.reverse();
        let t = Tensor::from_vec(&rev, data).ok_or_else(|| IoError::Format("data does not match the shape".into()))?;
        let perm: Vec<usize> = (0..rev.len()).rev().collect();
        let t = crate::kernels::transpose(&t, &perm).map_err(|e| IoError::Format(e.to_string()))?;
        // Make it standard (row-major) layout, as everything downstream expects.
        return Ok(crate::kernels::reshape(&t, &h.shape).map_err(|e| IoError::Format(e.to_string()))?);
    }
    Tensor::from_vec(&h.shape, data).ok_or_else(|| IoError::Format("data does not match the shape".into()))
}

/// Encodes a tensor as `.npy` bytes (version 1.0, little-endian, C order).
pub fn encode_npy(t: &Tensor) -> Vec<u8> {
    let descr = match t.dtype() {
        DType::Bool => "|b1",
        DType::I8 => "|i1",
        DType::U8 => "|u1",
        DType::I16 => "<i2",
        DType::U16 => "<u2",
        DType::I32 => "<i4",
        DType::U32 => "<u4",
        DType::I64 => "<i8",
        DType::U64 => "<u8",
        DType::F16 => "<f2",
        // numpy has no bf16; store the bits as u2 so nothing is lost.
        DType::BF16 => "<u2",
        DType::F32 => "<f4",
        DType::F64 => "<f8",
    };
    let shape: Vec<String> = t.shape().iter().map(|d| d.to_string()).collect();
    let shape = if shape.len() == 1 { format!("({},)", shape[0]) } else { format!("({})", shape.join(", ")) };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let total = MAGIC.len() + 2 + 2 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + t.nbytes());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    crate::dispatch!(t, a => {
        for v in a.iter() {
            out.extend_from_slice(&crate::io::le_bytes(*v));
        }
    });
    out
}

/// Little-endian bytes of one element.
pub(crate) fn le_bytes<T: LeBytes>(v: T) -> Vec<u8> {
    v.le()
}

/// Element types with a little-endian byte form.
pub(crate) trait LeBytes {
    fn le(self) -> Vec<u8>;
}

macro_rules! le {
    ($($t:ty),*) => {$(impl LeBytes for $t { fn le(self) -> Vec<u8> { self.to_le_bytes().to_vec() } })*};
}
le!(i8, u8, i16, u16, i32, u32, i64, u64, f16, bf16, f32, f64);

impl LeBytes for bool {
    fn le(self) -> Vec<u8> {
        vec![u8::from(self)]
    }
}

/// Reads one array of a `.npz` archive (not supported yet: reported as such).
pub fn read_npz(path: &Path, name: &str) -> Result<Tensor, IoError> {
    let _ = (path, name);
    Err(IoError::Format(".npz archives are not supported yet; save each array with numpy.save".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_round_trip() {
        let t = Tensor::from_vec::<i32>(&[2, 3], vec![1, 2, 3, 4, 5, 6]).expect("shape fits");
        let bytes = encode_npy(&t);
        // The header is padded so that the data starts on a 64-byte boundary.
        assert_eq!((bytes.len() - t.nbytes()) % 64, 0);
        assert_eq!(parse_npy(&bytes).expect("valid"), t);
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_npy(b"hello").is_err());
        assert!(parse_npy(b"\x93NUMPY\x01\x00\xff\xff{").is_err());
    }
}
