//! Array files: `.npy` reading and writing (format version 1.0–3.0), `.npz` archives, numeric
//! CSV and JSON lines, with errors that say what is wrong instead of panicking on malformed
//! input. Readers stream where the format allows (CSV rows); writers stream elements
//! ([`NpyWriter`]) so output size does not bound memory.

use crate::{DType, Tensor};
use half::{bf16, f16};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// `native!(dtype, T => expr)`: `Some(expr)` with `T` the Rust type of `dtype` when its
/// elements are plain little-endian numbers a file holds as they are in memory; `None` for
/// the dtypes that need converting (bool, half floats, strings). What reads straight into
/// a buffer, for whole arrays and for rows, is the dtype family's `native` filter.
macro_rules! native {
    ($dtype:expr, $t:ident => $e:expr) => {
        $crate::for_each_dtype!($crate::dtype_match; native, $dtype, $t, Some($e), None)
    };
}
pub(crate) use native;

mod chunks;
mod csv;
mod lines;
mod rows;

pub use lines::{LineBlock, LineReader};
pub use rows::FileRows;

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
    /// The bytes are not a readable zip archive (or a member is damaged).
    #[error("not a valid .npz archive: {0}")]
    Archive(String),
    /// A `.npz` member that does not exist.
    #[error("no array named `{name}` in the archive (it holds: {available})")]
    MissingMember {
        /// The name asked for.
        name: String,
        /// The names the archive does hold, comma-separated.
        available: String,
    },
    /// A CSV cell that is not a number of the requested dtype, or a row of the wrong length.
    #[error("line {line}, column {column}: {message}")]
    Csv {
        /// 1-based line number in the file.
        line: u64,
        /// 1-based column (cell) number.
        column: usize,
        /// The offending cell text (empty for a missing cell).
        cell: String,
        /// What is wrong, naming the cell text.
        message: String,
    },
    /// A CSV file with no rows and no header (nothing to give the column count).
    #[error("the CSV file is empty: there is no line to count the columns from")]
    EmptyCsv,
    /// An array larger than the memory ceiling (`--max-memory`); nothing was allocated.
    #[error("the array holds {bytes} bytes, over the memory limit of {limit} bytes (--max-memory)")]
    OverMemoryLimit {
        /// The bytes the array's data occupies.
        bytes: u128,
        /// The ceiling.
        limit: u64,
    },
    /// Elements that cannot be stacked into one output array.
    #[error("{0}")]
    Output(String),
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
    /// The width of one element of a numpy bytes array (`|S5` → 5); 0 for other dtypes.
    pub str_width: usize,
}

impl NpyHeader {
    /// Bytes per element in the file.
    pub fn item_size(&self) -> usize {
        if self.dtype.is_str() {
            self.str_width
        } else {
            self.dtype.size_bytes()
        }
    }
}

/// Reads only the header of a `.npy` file (what tracing needs to type it).
pub fn read_npy_header(path: &Path) -> Result<NpyHeader, IoError> {
    parse_header(&header_bytes(std::fs::File::open(path)?)?)
}

/// The bytes of a `.npy` header at the start of `r`: the fixed part, then as much as its
/// length field says (at most 1 MiB), never the array. Malformed starts come back as they
/// are, for the parser to report.
fn header_bytes(r: impl Read) -> std::io::Result<Vec<u8>> {
    let mut r = r.take(12);
    let mut prefix = Vec::new();
    r.read_to_end(&mut prefix)?;
    let total = match header_len_field(&prefix) {
        Ok((2, fixed)) if prefix.len() >= fixed => {
            fixed + u16::from_le_bytes([prefix[8], prefix[9]]) as usize
        }
        Ok((_, fixed)) if prefix.len() >= fixed => {
            fixed + u32::from_le_bytes([prefix[8], prefix[9], prefix[10], prefix[11]]) as usize
        }
        _ => prefix.len(),
    };
    let rest = total.min(1 << 20).saturating_sub(prefix.len());
    let r = r.into_inner();
    r.take(rest as u64).read_to_end(&mut prefix)?;
    Ok(prefix)
}

fn header_len_field(start: &[u8]) -> Result<(usize, usize), IoError> {
    if start.len() < 8 || &start[..6] != MAGIC {
        return Err(IoError::Format(
            "missing the \\x93NUMPY magic string".into(),
        ));
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
    let end = prefix
        .checked_add(hlen)
        .ok_or_else(|| IoError::Format("header length overflows".into()))?;
    let header = bytes
        .get(prefix..end)
        .ok_or_else(|| IoError::Format("truncated header".into()))?;
    let text =
        std::str::from_utf8(header).map_err(|_| IoError::Format("header is not text".into()))?;
    let descr =
        dict_value(text, "descr").ok_or_else(|| IoError::Format("header has no 'descr'".into()))?;
    let descr = descr.trim().trim_matches(|c| c == '\'' || c == '"');
    let fortran = dict_value(text, "fortran_order")
        .ok_or_else(|| IoError::Format("header has no 'fortran_order'".into()))?;
    let fortran_order = match fortran.trim() {
        "True" => true,
        "False" => false,
        other => return Err(IoError::Format(format!("bad fortran_order `{other}`"))),
    };
    let shape_text =
        dict_value(text, "shape").ok_or_else(|| IoError::Format("header has no 'shape'".into()))?;
    let inner = shape_text
        .trim()
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| IoError::Format("bad shape".into()))?;
    let mut shape = Vec::new();
    for part in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        shape.push(
            part.trim_end_matches('L')
                .parse::<usize>()
                .map_err(|_| IoError::Format(format!("bad dim `{part}`")))?,
        );
    }
    let (big_endian, code) = match descr.as_bytes().first() {
        Some(b'<') | Some(b'|') | Some(b'=') => (false, &descr[1..]),
        Some(b'>') => (true, &descr[1..]),
        _ => (false, descr),
    };
    // numpy bytes arrays (`|S5`): fixed-width, NUL-padded byte strings.
    let str_width = match code.strip_prefix('S').map(str::parse::<usize>) {
        Some(Ok(w)) => Some(w),
        Some(Err(_)) => return Err(IoError::UnsupportedDtype(descr.to_string())),
        None => None,
    };
    let dtype = match code {
        _ if str_width.is_some() => DType::Str,
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
    // numpy's limit (NPY_MAXDIMS); past it, shapes cost quadratic memory in the tracer and
    // printing.
    if shape.len() > 64 {
        return Err(IoError::Format(format!(
            "the array has {} dims; at most 64 are allowed, as in numpy",
            shape.len()
        )));
    }
    Ok(NpyHeader {
        dtype,
        shape,
        fortran_order,
        big_endian,
        data_offset: end,
        str_width: str_width.unwrap_or(0),
    })
}

/// The text of `'key': value` in a Python dict literal (value up to the next top-level comma).
fn dict_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let pat1 = format!("'{key}':");
    let pat2 = format!("\"{key}\":");
    let start = text
        .find(&pat1)
        .map(|i| i + pat1.len())
        .or_else(|| text.find(&pat2).map(|i| i + pat2.len()))?;
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

/// Reads a whole `.npy` file. The data is read in cache-sized chunks and decoded straight
/// into the tensor's buffer: the file's bytes never sit in memory whole beside it.
pub fn read_npy(path: &Path) -> Result<Tensor, IoError> {
    // The header says how much data follows: refuse before reading a file over the ceiling.
    let h = read_npy_header(path)?;
    let need = check_data_size(&h)?;
    let mut file = std::fs::File::open(path)?;
    let have = file.metadata()?.len().saturating_sub(h.data_offset as u64);
    if have < need as u64 {
        return Err(short_data(need, have));
    }
    if let Some(t) = read_native(&h, need, &file)? {
        return Ok(t);
    }
    file.seek(SeekFrom::Start(h.data_offset as u64))?;
    decode_data(&h, need, &mut file.take(need as u64))
}

/// A little-endian array of a plain numeric dtype read straight into its final buffer (one
/// copy, from the page cache), in parts on the kernel threads when large; `None` for the
/// layouts [`decode_data`] converts (big-endian, bool, half floats, strings).
fn read_native(
    h: &NpyHeader,
    need: usize,
    file: &std::fs::File,
) -> Result<Option<Tensor>, IoError> {
    fn read<T: bytemuck::Pod + crate::TensorElem>(
        h: &NpyHeader,
        need: usize,
        file: &std::fs::File,
    ) -> Result<Option<Tensor>, IoError> {
        let v = read_values_at::<T>(file, h.data_offset as u64, need / std::mem::size_of::<T>())?;
        build(h, v).map(Some)
    }
    if h.big_endian {
        return Ok(None);
    }
    native!(h.dtype, T => read::<T>(h, need, file)).unwrap_or(Ok(None))
}

/// `n` values of `T` read from `file` at `offset`: a large read in parts on the kernel
/// threads (a one-thread copy of a 100 MB array was most of W1's serial time; a batch of
/// images read by `from_tensor_slices` is megabytes), into a buffer that is never zeroed
/// first (zeroing every block of rows was a second pass over all the input).
fn read_values_at<T: bytemuck::Pod>(
    file: &std::fs::File,
    offset: u64,
    n: usize,
) -> std::io::Result<Vec<T>> {
    let mut v: Vec<T> = Vec::with_capacity(n);
    let bytes = n * std::mem::size_of::<T>();
    let base = v.as_mut_ptr().cast::<u8>() as usize;
    const PART: usize = 1 << 20;
    let parts = bytes.div_ceil(PART);
    let read_part = |k: usize| {
        let start = k * PART;
        let len = PART.min(bytes - start);
        read_exact_into(file, offset + start as u64, base + start, len)
    };
    if bytes < 2 * PART || !crate::kernels::pool_parallel() {
        (0..parts).try_for_each(read_part)?;
    } else {
        use rayon::prelude::*;
        // This thread only waits for the pool's threads (it is not one of them).
        let _waiting = crate::busy::Waiting::begin();
        (0..parts).into_par_iter().try_for_each(|k| {
            let _working = crate::busy::Working::begin();
            read_part(k)
        })?;
    }
    // SAFETY: the parts cover the `bytes` bytes of the buffer's first `n` values, each part
    // was filled completely by `read_exact_into` (any failure returned above, leaving the
    // length 0), and every bit pattern is a valid `T` (`Pod`).
    #[allow(unsafe_code)]
    unsafe {
        v.set_len(n)
    };
    Ok(v)
}

/// Fills the `len` bytes at address `at` (inside a buffer the caller owns and no one else
/// reads until this returns) from `file` at `offset`, with `pread` so that the bytes need not
/// be initialized first.
fn read_exact_into(
    file: &std::fs::File,
    mut offset: u64,
    mut at: usize,
    mut len: usize,
) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    while len > 0 {
        let off = libc::off_t::try_from(offset)
            .map_err(|_| std::io::Error::other("file offset out of range"))?;
        // SAFETY: `at..at + len` lies inside the caller's allocation, which nothing else
        // touches while the read runs; `pread` only writes into it.
        #[allow(unsafe_code)]
        let got = unsafe { libc::pread(file.as_raw_fd(), at as *mut libc::c_void, len, off) };
        match got {
            0 => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "failed to fill whole buffer",
                ));
            }
            n if n > 0 => {
                let n = n as usize;
                len -= n;
                at += n;
                offset += n as u64;
            }
            _ => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

/// The bytes of data `h` describes, refused when the array would pass the element limit or the
/// memory ceiling. Strings are counted by what they occupy in memory (a handle per element
/// plus the text), so an `S0` array of 10^18 empty strings is refused, not allocated.
fn check_data_size(h: &NpyHeader) -> Result<usize, IoError> {
    let n = h
        .shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| IoError::Format("shape overflows".into()))?;
    if n as u128 > MAX_ARRAY_ELEMENTS {
        return Err(IoError::Format(format!(
            "the array has {n} elements, over the limit of 2^31 elements per tensor"
        )));
    }
    let need = n
        .checked_mul(h.item_size())
        .ok_or_else(|| IoError::Format("data size overflows".into()))?;
    // An `S0` array is held as `S1` would be: that is the file it writes back (numpy has no
    // zero-width array either), which must read back under the same ceiling.
    let held = n as u128 * h.dtype.size_bytes() as u128
        + if h.dtype == DType::Str {
            n as u128 * h.item_size().max(1) as u128
        } else {
            0
        };
    crate::limits::check_bytes(held)
        .map_err(|limit| IoError::OverMemoryLimit { bytes: held, limit })?;
    Ok(need)
}

/// Most elements one array file may hold: the limit every tensor has (E0700).
const MAX_ARRAY_ELEMENTS: u128 = 1 << 31;

fn short_data(need: usize, found: u64) -> IoError {
    IoError::Format(format!("expected {need} bytes of data, found {found}"))
}

/// Parses `.npy` bytes into a tensor.
pub fn parse_npy(bytes: &[u8]) -> Result<Tensor, IoError> {
    let h = parse_header(bytes)?;
    let need = check_data_size(&h)?;
    let data = &bytes[h.data_offset.min(bytes.len())..];
    if data.len() < need {
        return Err(short_data(need, data.len() as u64));
    }
    decode_data(&h, need, &mut &data[..need])
}

/// Bytes read per step while decoding (a multiple of every element size).
const DECODE_CHUNK: usize = 64 << 10;

/// Decodes the `need` data bytes `h` describes from `r` into a tensor.
fn decode_data(h: &NpyHeader, need: usize, r: &mut impl std::io::Read) -> Result<Tensor, IoError> {
    let mut buf = vec![0u8; DECODE_CHUNK.min(need)];
    // Calls `f` on each chunk of the data, in order.
    let mut chunks = |f: &mut dyn FnMut(&[u8]) -> Result<(), IoError>| {
        let mut left = need;
        while left > 0 {
            let n = left.min(DECODE_CHUNK);
            r.read_exact(&mut buf[..n])?;
            f(&buf[..n])?;
            left -= n;
        }
        Ok::<(), IoError>(())
    };
    macro_rules! decode {
        ($t:ty) => {{
            const N: usize = std::mem::size_of::<$t>();
            let mut v: Vec<$t> = Vec::with_capacity(need / N);
            chunks(&mut |c| {
                v.extend(c.chunks_exact(N).map(|c| {
                    let mut b = [0u8; N];
                    b.copy_from_slice(c);
                    if h.big_endian {
                        b.reverse();
                    }
                    <$t>::from_le_bytes(b)
                }));
                Ok(())
            })?;
            build(h, v)
        }};
    }
    match h.dtype {
        DType::Bool => {
            let mut v: Vec<bool> = Vec::with_capacity(need);
            chunks(&mut |c| {
                if c.iter().any(|&b| b > 1) {
                    return Err(IoError::Format("a bool is neither 0 nor 1".into()));
                }
                v.extend(c.iter().map(|&b| b == 1));
                Ok(())
            })?;
            build(h, v)
        }
        DType::I8 => decode!(i8),
        DType::U8 => decode!(u8),
        DType::I16 => decode!(i16),
        DType::U16 => decode!(u16),
        DType::I32 => decode!(i32),
        DType::U32 => decode!(u32),
        DType::I64 => decode!(i64),
        DType::U64 => decode!(u64),
        DType::F16 => decode!(f16),
        DType::BF16 => decode!(bf16),
        DType::F32 => decode!(f32),
        DType::F64 => decode!(f64),
        DType::Str => {
            let w = h.str_width;
            let mut v: Vec<crate::Bytes> = Vec::with_capacity(need.checked_div(w).unwrap_or(0));
            if w == 0 {
                let n: usize = h.shape.iter().product();
                v.resize(n, crate::Bytes::new());
            } else {
                // Elements may straddle chunks: gather the data, then split it.
                let mut all = Vec::with_capacity(need);
                chunks(&mut |c| {
                    all.extend_from_slice(c);
                    Ok(())
                })?;
                let all = crate::Bytes::from(all);
                for i in (0..all.len()).step_by(w) {
                    let cell = &all[i..i + w];
                    // numpy strips trailing NULs when it reads an `S` element.
                    let len = cell.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
                    v.push(all.slice(i..i + len));
                }
            }
            build(h, v)
        }
    }
}

fn build<T: crate::TensorElem>(h: &NpyHeader, data: Vec<T>) -> Result<Tensor, IoError> {
    if h.fortran_order {
        let mut rev = h.shape.clone();
        rev.reverse();
        let t = Tensor::from_vec(&rev, data)
            .ok_or_else(|| IoError::Format("data does not match the shape".into()))?;
        let perm: Vec<usize> = (0..rev.len()).rev().collect();
        let t = crate::kernels::transpose(&t, &perm).map_err(|e| IoError::Format(e.to_string()))?;
        // Make it standard (row-major) layout, as everything downstream expects.
        return crate::kernels::reshape(&t, &h.shape).map_err(|e| IoError::Format(e.to_string()));
    }
    Tensor::from_vec(&h.shape, data)
        .ok_or_else(|| IoError::Format("data does not match the shape".into()))
}

// ---------------------------------------------------------------------------------------------
// Writing `.npy`
// ---------------------------------------------------------------------------------------------

/// numpy reserves room for this many digits of the first dimension in every header, so that a
/// file can grow in place; [`NpyWriter`] relies on it to patch the element count at the end.
const GROWTH_AXIS_MAX_DIGITS: usize = 21;

/// The `descr` numpy writes for a dtype.
fn descr(dtype: DType) -> &'static str {
    match dtype {
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
        // The width comes from the data: see `str_descr`.
        DType::Str => "|S1",
    }
}

/// The `descr` numpy writes for a bytes array whose longest element has `width` bytes.
fn str_descr(width: usize) -> String {
    format!("|S{}", width.max(1))
}

/// The longest element of a `str` tensor, in bytes.
fn str_width(t: &Tensor) -> usize {
    match t {
        Tensor::Str(a) => a.iter().map(crate::Bytes::len).max().unwrap_or(0),
        _ => 0,
    }
}

/// The `.npy` header (magic, version, length, dict, padding) exactly as `numpy.save` writes it.
pub fn npy_header(dtype: DType, shape: &[usize]) -> Vec<u8> {
    npy_header_for(descr(dtype), shape)
}

/// [`npy_header`] for a numpy bytes array of elements `width` bytes wide.
pub fn npy_str_header(width: usize, shape: &[usize]) -> Vec<u8> {
    npy_header_for(&str_descr(width), shape)
}

fn npy_header_for(descr: &str, shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut dict =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    if let Some(first) = dims.first() {
        dict.push_str(&" ".repeat(GROWTH_AXIS_MAX_DIGITS.saturating_sub(first.len())));
    }
    // Version 1.0 stores the length in 2 bytes; numpy switches to 2.0 past that.
    let (version, len_size) = if dict.len() + 1 + 10 + 64 < 65536 {
        (1u8, 2usize)
    } else {
        (2u8, 4usize)
    };
    let fixed = MAGIC.len() + 2 + len_size;
    let total = fixed + dict.len() + 1;
    dict.push_str(&" ".repeat((64 - total % 64) % 64));
    dict.push('\n');
    let mut out = Vec::with_capacity(fixed + dict.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, 0]);
    if len_size == 2 {
        out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(dict.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out
}

/// Appends the elements of `t` in row-major order as little-endian bytes (`.npy` data).
/// A `str` tensor's elements are written `width` bytes each, NUL-padded, as numpy's `S`
/// arrays store them (`width` at least the longest element).
pub fn append_le_bytes(t: &Tensor, width: usize, out: &mut Vec<u8>) {
    out.reserve(t.nbytes());
    crate::plain_dispatch!(t, a => {
        for v in a.iter() {
            v.le_into(out);
        }
    }, str => if let Tensor::Str(a) = t {
        let width = width.max(1);
        for v in a.iter() {
            out.extend_from_slice(v);
            out.resize(out.len() + width - v.len(), 0);
        }
    });
}

/// Encodes a tensor as `.npy` bytes, byte for byte what `numpy.save` writes (a `str` tensor
/// as a numpy bytes array, `|S` as wide as its longest element).
pub fn encode_npy(t: &Tensor) -> Vec<u8> {
    let width = str_width(t);
    let mut out = if t.dtype().is_str() {
        npy_str_header(width, t.shape())
    } else {
        npy_header(t.dtype(), t.shape())
    };
    append_le_bytes(t, width, &mut out);
    out
}

/// Element types with a little-endian byte form.
pub(crate) trait LeBytes {
    fn le_into(self, out: &mut Vec<u8>);
}

macro_rules! le {
    ($($t:ty),*) => {$(impl LeBytes for $t { fn le_into(self, out: &mut Vec<u8>) { out.extend_from_slice(&self.to_le_bytes()) } })*};
}
le!(i8, u8, i16, u16, i32, u32, i64, u64, f16, bf16, f32, f64);

impl LeBytes for bool {
    fn le_into(self, out: &mut Vec<u8>) {
        out.push(u8::from(self));
    }
}

/// Streams equally shaped tensors into one `.npy` array stacked along a new first axis.
///
/// The element count is only known at the end, so the header is written first with a count of
/// 0 and rewritten by [`NpyWriter::finish`]; numpy's header reserves room for 21 digits of the
/// first dimension, so the rewritten header has the same length and the result is byte for
/// byte what `numpy.save(np.stack(elements))` writes. Memory stays at one element.
pub struct NpyWriter<W: Write + Seek> {
    out: W,
    dtype: DType,
    /// The shape every element must have (fixed by the first one when not given).
    elem_shape: Option<Vec<usize>>,
    /// The shape written for an empty output with unknown dims.
    fallback_shape: Vec<usize>,
    count: u64,
    buf: Vec<u8>,
    /// `str` elements, kept until the end: the width of a bytes array is its longest element.
    strs: Vec<Tensor>,
}

impl<W: Write + Seek> NpyWriter<W> {
    /// Starts an array of `dtype` elements; `fallback_shape` is the element shape written if
    /// no element arrives (unknown dims as 0).
    pub fn new(out: W, dtype: DType, fallback_shape: Vec<usize>) -> NpyWriter<W> {
        NpyWriter {
            out,
            dtype,
            elem_shape: None,
            fallback_shape,
            count: 0,
            buf: Vec::new(),
            strs: Vec::new(),
        }
    }

    /// Appends one element; its dtype and shape must match the first element's.
    pub fn push(&mut self, t: &Tensor) -> Result<(), IoError> {
        if t.dtype() != self.dtype {
            return Err(IoError::Output(format!(
                "element {} has dtype {}, expected {}",
                self.count,
                t.dtype(),
                self.dtype
            )));
        }
        match &self.elem_shape {
            None if self.dtype.is_str() => self.elem_shape = Some(t.shape().to_vec()),
            None => {
                let shape = t.shape().to_vec();
                let mut full = vec![0];
                full.extend_from_slice(&shape);
                self.out.write_all(&npy_header(self.dtype, &full))?;
                self.elem_shape = Some(shape);
            }
            Some(s) if s.as_slice() != t.shape() => {
                return Err(IoError::Output(format!(
                    "element {} has shape {:?} but element 0 has shape {s:?}; a .npy holds one array of equally shaped elements",
                    self.count,
                    t.shape()
                )));
            }
            Some(_) => {}
        }
        if self.dtype.is_str() {
            self.strs.push(t.clone());
            self.count += 1;
            return Ok(());
        }
        self.buf.clear();
        append_le_bytes(t, 0, &mut self.buf);
        self.out.write_all(&self.buf)?;
        self.count += 1;
        Ok(())
    }

    /// Writes the final header (with the element count) and returns the writer.
    pub fn finish(mut self) -> Result<W, IoError> {
        let elem = self
            .elem_shape
            .clone()
            .unwrap_or_else(|| self.fallback_shape.clone());
        let n =
            usize::try_from(self.count).map_err(|_| IoError::Output("too many elements".into()))?;
        let mut full = vec![n];
        full.extend_from_slice(&elem);
        if self.dtype.is_str() {
            let width = self.strs.iter().map(str_width).max().unwrap_or(0);
            self.out.write_all(&npy_str_header(width, &full))?;
            for t in std::mem::take(&mut self.strs) {
                self.buf.clear();
                append_le_bytes(&t, width, &mut self.buf);
                self.out.write_all(&self.buf)?;
            }
            self.out.flush()?;
            return Ok(self.out);
        }
        let header = npy_header(self.dtype, &full);
        if self.elem_shape.is_none() {
            self.out.write_all(&header)?;
        } else {
            self.out.flush()?;
            self.out.seek(SeekFrom::Start(0))?;
            self.out.write_all(&header)?;
            self.out.seek(SeekFrom::End(0))?;
        }
        self.out.flush()?;
        Ok(self.out)
    }

    /// How many elements were written.
    pub fn count(&self) -> u64 {
        self.count
    }
}

// ---------------------------------------------------------------------------------------------
// `.npz` archives
// ---------------------------------------------------------------------------------------------

fn archive_error(e: zip::result::ZipError) -> IoError {
    match e {
        zip::result::ZipError::Io(e) if e.kind() == std::io::ErrorKind::NotFound => IoError::Io(e),
        other => IoError::Archive(other.to_string()),
    }
}

fn open_archive(path: &Path) -> Result<zip::ZipArchive<std::fs::File>, IoError> {
    let file = std::fs::File::open(path)?;
    zip::ZipArchive::new(file).map_err(archive_error)
}

/// The index of the member holding array `name` (`name.npy`, as `numpy.savez` stores it, or
/// exactly `name`), or the list of names the archive holds.
fn member_index<R: Read + Seek>(
    archive: &zip::ZipArchive<R>,
    name: &str,
) -> Result<usize, IoError> {
    if let Some(i) = archive
        .index_for_name(&format!("{name}.npy"))
        .or_else(|| archive.index_for_name(name))
    {
        return Ok(i);
    }
    let mut names: Vec<String> = archive
        .file_names()
        .filter_map(Result::ok)
        .map(|n| n.trim_end_matches(".npy").to_string())
        .collect();
    names.sort();
    let available = if names.is_empty() {
        "nothing".to_string()
    } else {
        names.join(", ")
    };
    Err(IoError::MissingMember {
        name: name.to_string(),
        available,
    })
}

/// Reads only the header of array `name` in a `.npz` archive (what tracing needs to type it):
/// the member is decompressed no further than its header.
pub fn read_npz_header(path: &Path, name: &str) -> Result<NpyHeader, IoError> {
    npz_header(open_archive(path)?, name)
}

/// [`read_npz_header`] on an archive already in memory or open.
pub fn read_npz_header_from<R: Read + Seek>(reader: R, name: &str) -> Result<NpyHeader, IoError> {
    npz_header(zip::ZipArchive::new(reader).map_err(archive_error)?, name)
}

fn npz_header<R: Read + Seek>(
    mut archive: zip::ZipArchive<R>,
    name: &str,
) -> Result<NpyHeader, IoError> {
    let i = member_index(&archive, name)?;
    let member = archive.by_index(i).map_err(archive_error)?;
    let prefix = header_bytes(member).map_err(|e| IoError::Archive(e.to_string()))?;
    parse_header(&prefix)
}

/// Reads array `name` (with or without the `.npy` suffix) of a `.npz` archive, stored or deflated.
pub fn read_npz(path: &Path, name: &str) -> Result<Tensor, IoError> {
    npz_array(open_archive(path)?, name)
}

/// [`read_npz`] on an archive already in memory or open.
pub fn read_npz_from<R: Read + Seek>(reader: R, name: &str) -> Result<Tensor, IoError> {
    npz_array(zip::ZipArchive::new(reader).map_err(archive_error)?, name)
}

fn npz_array<R: Read + Seek>(
    mut archive: zip::ZipArchive<R>,
    name: &str,
) -> Result<Tensor, IoError> {
    let i = member_index(&archive, name)?;
    let mut member = archive.by_index(i).map_err(archive_error)?;
    // The header first, then exactly the data it describes (checked against the memory
    // ceiling first), decoded as it inflates: whatever follows in the member is never
    // inflated (a small file can inflate to any size), as numpy's `load` ignores it too.
    let prefix =
        header_bytes(&mut member).map_err(|e| IoError::Archive(format!("member `{name}`: {e}")))?;
    let h = parse_header(&prefix)?;
    if prefix.len() != h.data_offset {
        return Err(IoError::Format("the header is longer than 1 MiB".into()));
    }
    let need = check_data_size(&h)?;
    decode_data(&h, need, &mut member).map_err(|e| match e {
        IoError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => IoError::Format(
            format!("member `{name}` holds less data than its header says ({need} bytes)"),
        ),
        IoError::Io(e) => IoError::Archive(format!("member `{name}`: {e}")),
        other => other,
    })
}

/// Writes a `.npz` archive from finished `.npy` streams, one member per `(name, reader)`,
/// uncompressed as `numpy.savez` does. Members are copied, never held in memory whole.
pub fn write_npz<W: Write + Seek, R: Read>(
    out: W,
    members: Vec<(String, R)>,
) -> Result<W, IoError> {
    // After a failed write (a full disk) the archive is abandoned; the latch then swallows
    // the zip writer's attempt to finish it on drop, which would print to stderr.
    let mut zip = zip::ZipWriter::new(Latch {
        inner: out,
        failed: false,
    });
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        // Zip64 sizes always, as numpy does (force_zip64): members may exceed 4 GiB.
        .large_file(true);
    for (name, mut reader) in members {
        zip.start_file(format!("{name}.npy"), opts)
            .map_err(archive_error)?;
        std::io::copy(&mut reader, &mut zip)?;
    }
    let latch = zip.finish().map_err(archive_error)?;
    if latch.failed {
        return Err(IoError::Output("a write failed".into()));
    }
    Ok(latch.inner)
}

/// A writer that, once a write or seek failed, accepts and drops everything after it, so
/// that nothing retries on a writer that is being abandoned with an error.
struct Latch<W> {
    inner: W,
    failed: bool,
}

impl<W: Write> Write for Latch<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.failed {
            return Ok(buf.len());
        }
        self.inner.write(buf).inspect_err(|_| self.failed = true)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.failed {
            return Ok(());
        }
        self.inner.flush().inspect_err(|_| self.failed = true)
    }
}

impl<W: Seek> Seek for Latch<W> {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        if self.failed {
            return Ok(0);
        }
        self.inner.seek(pos).inspect_err(|_| self.failed = true)
    }
}

// ---------------------------------------------------------------------------------------------
// CSV
// ---------------------------------------------------------------------------------------------

/// What tracing needs to type a CSV file: its column count and whether it has a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvInfo {
    /// Cells per row.
    pub ncols: usize,
    /// Whether the first non-blank line is a header (some cell is not a number).
    pub header: bool,
}

/// Longest line accepted: protects against reading a binary file without newlines whole.
pub(crate) const MAX_CSV_LINE: u64 = 16 << 20;

/// Splits a line into trimmed cells. Numeric CSV only: no quoting, except that a header's
/// cells may be wrapped in double quotes (stripped).
fn csv_cells(line: &str) -> impl Iterator<Item = &str> {
    line.split(',').map(|c| c.trim())
}

fn is_number(cell: &str) -> bool {
    cell.parse::<f64>().is_ok()
}

/// Reads lines of a CSV file, counting them and skipping blank ones.
struct CsvLines {
    reader: Box<dyn BufRead + Send>,
    line: u64,
    buf: Vec<u8>,
}

impl CsvLines {
    fn open(path: &Path) -> Result<CsvLines, IoError> {
        Ok(CsvLines::new(BufReader::new(std::fs::File::open(path)?)))
    }

    fn new(reader: impl BufRead + Send + 'static) -> CsvLines {
        CsvLines {
            reader: Box::new(reader),
            line: 0,
            buf: Vec::new(),
        }
    }

    /// The next non-blank line (without its line ending) and its number, or `None` at the end.
    fn next_line(&mut self) -> Result<Option<(u64, &str)>, IoError> {
        loop {
            self.buf.clear();
            let n = (&mut self.reader)
                .take(MAX_CSV_LINE + 1)
                .read_until(b'\n', &mut self.buf)?;
            if n == 0 {
                return Ok(None);
            }
            self.line += 1;
            if self.buf.len() as u64 > MAX_CSV_LINE {
                return Err(csv_line_too_long(self.line));
            }
            // Where the text sits in `self.buf`, to hand it out after the borrows end.
            let Some(text) = csv_line(&self.buf, self.line)? else {
                continue;
            };
            let (start, len) = (
                text.as_ptr() as usize - self.buf.as_ptr() as usize,
                text.len(),
            );
            return Ok(std::str::from_utf8(&self.buf[start..start + len])
                .ok()
                .map(|t| (self.line, t)));
        }
    }
}

/// The text of CSV line `line` (1-based, `bytes` with its ending): `None` when blank; an
/// error when not UTF-8. A BOM opening the file is dropped.
pub(crate) fn csv_line(bytes: &[u8], line: u64) -> Result<Option<&str>, IoError> {
    let mut bytes = bytes;
    if line == 1 {
        bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    }
    let text = std::str::from_utf8(bytes).map_err(|e| IoError::Csv {
        line,
        column: 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b',')
            .count(),
        cell: String::new(),
        message: "the line is not UTF-8 text; is this a CSV file?".into(),
    })?;
    let text = text.trim_end_matches(['\n', '\r']);
    Ok((!text.trim().is_empty()).then_some(text))
}

/// The error for a line longer than [`MAX_CSV_LINE`].
pub(crate) fn csv_line_too_long(line: u64) -> IoError {
    IoError::Csv {
        line,
        column: 1,
        cell: String::new(),
        message: format!(
            "the line is longer than {} MiB; is this a CSV file?",
            MAX_CSV_LINE >> 20
        ),
    }
}

/// Reads the first non-blank line of a CSV file: the column count and whether it is a header.
pub fn csv_info(path: &Path) -> Result<CsvInfo, IoError> {
    csv_info_of(CsvLines::open(path)?)
}

/// [`csv_info`] of CSV text from any reader.
pub fn csv_info_from(reader: impl BufRead + Send + 'static) -> Result<CsvInfo, IoError> {
    csv_info_of(CsvLines::new(reader))
}

fn csv_info_of(mut lines: CsvLines) -> Result<CsvInfo, IoError> {
    let Some((_, first)) = lines.next_line()? else {
        return Err(IoError::EmptyCsv);
    };
    let cells: Vec<&str> = csv_cells(first).collect();
    let header = cells.iter().any(|c| !is_number(c));
    Ok(CsvInfo {
        ncols: cells.len(),
        header,
    })
}

/// Whether a non-blank line follows the first non-blank line of the CSV file at `path`
/// (a detected header with nothing after it may as well be a data row with a bad cell).
pub fn csv_has_second_line(path: &Path) -> Result<bool, IoError> {
    let mut lines = CsvLines::open(path)?;
    if lines.next_line()?.is_none() {
        return Ok(false);
    }
    Ok(lines.next_line()?.is_some())
}

pub use csv::{CsvBlock, CsvRows};

/// Parses one CSV line into a `[ncols]` tensor of `dtype`.
pub(crate) fn parse_row(
    line: &str,
    line_no: u64,
    dtype: DType,
    ncols: usize,
) -> Result<Tensor, IoError> {
    let cells: Vec<&str> = csv_cells(line).collect();
    if cells.len() != ncols {
        let column = cells.len().min(ncols) + 1;
        let cell = cells.get(ncols).map(|c| c.to_string()).unwrap_or_default();
        return Err(IoError::Csv {
            line: line_no,
            column,
            cell,
            message: format!(
                "the row has {} cells, but the file's first row has {ncols}",
                cells.len()
            ),
        });
    }
    let bad = |column: usize, cell: &str, why: &str| IoError::Csv {
        line: line_no,
        column: column + 1,
        cell: cell.to_string(),
        message: format!("cannot read `{cell}` as {dtype}{why}"),
    };
    macro_rules! ints {
        ($t:ty) => {{
            let mut v: Vec<$t> = Vec::with_capacity(ncols);
            for (i, c) in cells.iter().enumerate() {
                match c.parse::<$t>() {
                    Ok(x) => v.push(x),
                    Err(e) => {
                        let why = match e.kind() {
                            std::num::IntErrorKind::PosOverflow
                            | std::num::IntErrorKind::NegOverflow => " (out of range)",
                            _ => "",
                        };
                        return Err(bad(i, c, why));
                    }
                }
            }
            Tensor::from_vec(&[ncols], v)
        }};
    }
    macro_rules! floats {
        ($t:ty, $conv:expr) => {{
            let mut v: Vec<$t> = Vec::with_capacity(ncols);
            for (i, c) in cells.iter().enumerate() {
                match c.parse() {
                    Ok(x) => v.push($conv(x)),
                    Err(_) => return Err(bad(i, c, "")),
                }
            }
            Tensor::from_vec(&[ncols], v)
        }};
    }
    let t = match dtype {
        DType::Bool => {
            let mut v = Vec::with_capacity(ncols);
            for (i, c) in cells.iter().enumerate() {
                match c.to_ascii_lowercase().as_str() {
                    "1" | "true" => v.push(true),
                    "0" | "false" => v.push(false),
                    _ => return Err(bad(i, c, " (write 0, 1, true or false)")),
                }
            }
            Tensor::from_vec(&[ncols], v)
        }
        DType::I8 => ints!(i8),
        DType::U8 => ints!(u8),
        DType::I16 => ints!(i16),
        DType::U16 => ints!(u16),
        DType::I32 => ints!(i32),
        DType::U32 => ints!(u32),
        DType::I64 => ints!(i64),
        DType::U64 => ints!(u64),
        DType::F16 => floats!(f16, |x: f64| f16::from_f64(x)),
        DType::BF16 => floats!(bf16, |x: f64| bf16::from_f64(x)),
        // f32 cells are parsed as f32 directly: going through f64 could round twice.
        DType::F32 => floats!(f32, |x: f32| x),
        DType::F64 => floats!(f64, |x: f64| x),
        DType::Str => Tensor::from_vec(
            &[ncols],
            cells
                .iter()
                .map(|c| crate::Bytes::copy_from_slice(c.as_bytes()))
                .collect(),
        ),
    };
    t.ok_or_else(|| IoError::Output("row does not match its shape".into()))
}

/// Reads a whole numeric CSV file as one `[rows, ncols]` tensor (header detected).
pub fn read_csv(path: &Path, dtype: DType) -> Result<Tensor, IoError> {
    let info = csv_info(path)?;
    collect_rows(CsvRows::open(path, dtype, info.ncols, info.header)?, info)
}

/// [`read_csv`] of CSV text in memory (read twice: once for the header, once for the rows).
pub fn read_csv_from(
    reader: impl BufRead + Clone + Send + 'static,
    dtype: DType,
) -> Result<Tensor, IoError> {
    let info = csv_info_from(reader.clone())?;
    collect_rows(
        CsvRows::from_reader(reader, dtype, info.ncols, info.header),
        info,
    )
}

fn collect_rows(mut rows: CsvRows, info: CsvInfo) -> Result<Tensor, IoError> {
    let dtype = rows.dtype();
    let mut parts = Vec::new();
    while let Some(r) = rows.next_row()? {
        parts.push(r);
    }
    if parts.is_empty() {
        return crate::kernels::zeros(&[0, info.ncols], dtype)
            .map_err(|e| IoError::Output(e.to_string()));
    }
    crate::kernels::stack(&parts, 0).map_err(|e| IoError::Output(e.to_string()))
}

// ---------------------------------------------------------------------------------------------
// JSON lines
// ---------------------------------------------------------------------------------------------

/// Appends `t` as JSON: a number for a scalar, nested lists otherwise. Floats use the shortest
/// text that reads back to the same value in their own dtype (`f16`/`bf16` via `f32`), in
/// Python's `repr` style (`1.0`, `0.1`, `1e-07`, `1e+16`); NaN and infinities, which JSON
/// lacks, are the strings `"nan"`, `"inf"` and `"-inf"`.
pub fn append_json(t: &Tensor, out: &mut String) {
    fn rec<T>(a: &ndarray::ArrayViewD<'_, T>, out: &mut String, f: &impl Fn(&T, &mut String)) {
        if a.ndim() == 0 {
            if let Some(v) = a.iter().next() {
                f(v, out);
            }
            return;
        }
        out.push('[');
        for (i, sub) in a.outer_iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            rec(&sub, out, f);
        }
        out.push(']');
    }
    use std::fmt::Write as _;
    macro_rules! int {
        ($a:expr) => {
            rec(&$a.view(), out, &|v, o: &mut String| {
                let _ = write!(o, "{v}");
            })
        };
    }
    match t {
        Tensor::Bool(a) => rec(&a.view(), out, &|&v: &bool, o: &mut String| {
            o.push_str(if v { "true" } else { "false" })
        }),
        Tensor::I8(a) => int!(a),
        Tensor::U8(a) => int!(a),
        Tensor::I16(a) => int!(a),
        Tensor::U16(a) => int!(a),
        Tensor::I32(a) => int!(a),
        Tensor::U32(a) => int!(a),
        Tensor::I64(a) => int!(a),
        Tensor::U64(a) => int!(a),
        Tensor::F16(a) => rec(&a.view(), out, &|&v: &f16, o: &mut String| {
            json_float(f32::from(v), o)
        }),
        Tensor::BF16(a) => rec(&a.view(), out, &|&v: &bf16, o: &mut String| {
            json_float(f32::from(v), o)
        }),
        Tensor::F32(a) => rec(&a.view(), out, &|&v: &f32, o: &mut String| json_float(v, o)),
        Tensor::F64(a) => rec(&a.view(), out, &|&v: &f64, o: &mut String| json_float(v, o)),
        Tensor::Str(a) => rec(&a.view(), out, &|v: &crate::Bytes, o: &mut String| {
            json_string(&String::from_utf8_lossy(v), o)
        }),
    }
}

/// Appends a JSON string literal (a `str` element, decoded as UTF-8 with replacement).
fn json_string(v: &str, out: &mut String) {
    use std::fmt::Write as _;
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends one float as JSON (see [`append_json`]).
fn json_float<T: std::fmt::LowerExp + Copy + Into<f64>>(v: T, out: &mut String) {
    let x: f64 = v.into();
    if x.is_nan() {
        out.push_str("\"nan\"");
        return;
    }
    if x.is_infinite() {
        out.push_str(if x > 0.0 { "\"inf\"" } else { "\"-inf\"" });
        return;
    }
    // `{:e}` gives the shortest round-trip digits of `T` itself: `1.2345e-7`.
    let sci = format!("{v:e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (neg, mant) = match mant.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mant),
    };
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    if neg {
        out.push('-');
    }
    if (-4..16).contains(&exp) {
        // Positional, like Python's repr.
        if exp < 0 {
            out.push_str("0.");
            out.push_str(&"0".repeat((-exp - 1) as usize));
            out.push_str(&digits);
        } else {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                out.push_str(&"0".repeat(int_len - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push_str(&format!(
            "e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        ));
    }
}

/// Every line of a text file (a `lookup` vocabulary read when compiling).
pub fn read_lines(path: &std::path::Path) -> Result<Vec<crate::Bytes>, IoError> {
    let mut r = LineReader::new(vec![path.to_path_buf()]);
    let mut out = Vec::new();
    while let Some(l) = r.next_line().map_err(|(_, e)| e)? {
        out.push(l);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn tmp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("pipec-io-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir.join(name)
    }

    #[test]
    fn npy_round_trip() {
        let t = Tensor::from_vec::<i32>(&[2, 3], vec![1, 2, 3, 4, 5, 6]).expect("shape fits");
        let bytes = encode_npy(&t);
        // The header is padded so that the data starts on a 64-byte boundary.
        assert_eq!((bytes.len() - t.nbytes()) % 64, 0);
        assert_eq!(parse_npy(&bytes).expect("valid"), t);
    }

    /// Found by the npy fuzz target: zero-width strings take no data bytes, so only the element
    /// count stood between a header declaring 10^18 of them and a handle allocation overflow.
    #[test]
    fn zero_width_strings_are_bounded_by_the_element_limit() {
        let header = |shape: &str| {
            let mut h = format!("{{'descr': '|S0', 'fortran_order': False, 'shape': {shape}, }}");
            while !(MAGIC.len() + 4 + h.len() + 1).is_multiple_of(64) {
                h.push(' ');
            }
            h.push('\n');
            let mut b = MAGIC.to_vec();
            b.extend([1, 0]);
            b.extend((h.len() as u16).to_le_bytes());
            b.extend(h.as_bytes());
            b
        };
        let err = parse_npy(&header("(2040000, 603683379922, 3)")).expect_err("too many");
        assert!(err.to_string().contains("over the limit of 2^31"), "{err}");
        let small = parse_npy(&header("(2, 3)")).expect("six empty strings");
        assert_eq!(small.shape(), &[2, 3]);
        assert_eq!(small.dtype(), DType::Str);
    }

    /// A file larger than two read parts goes through the parallel native read, byte for
    /// byte the array written; a Fortran-order one through the same read, transposed.
    #[test]
    fn large_native_arrays_read_back_exactly() {
        let n = 7 * 449_390; // 12.6 MB of f32: three 4 MiB read parts and a tail
        let data: Vec<f32> = (0..n).map(|i| (i as f32).sqrt() - 1000.5).collect();
        let t = Tensor::from_vec::<f32>(&[n / 7, 7], data).expect("shape fits");
        let path = tmp("large.npy");
        std::fs::write(&path, encode_npy(&t)).expect("write");
        assert_eq!(read_npy(&path).expect("read"), t);
        let i = Tensor::from_vec::<i64>(&[3, 2], vec![1, -2, 3, -4, 5, -6]).expect("fits");
        std::fs::write(&path, encode_npy(&i)).expect("write");
        assert_eq!(read_npy(&path).expect("read"), i);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn header_is_numpys() {
        // From numpy 2.4: np.save of np.zeros((3, 4), np.float32), np.array(3.0), and a (12345678901, 0, 2) u8.
        let h = npy_header(DType::F32, &[3, 4]);
        let mut want = b"\x93NUMPY\x01\x00v\x00".to_vec();
        want.extend_from_slice(
            format!(
                "{{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }}{}\n",
                " ".repeat(58)
            )
            .as_bytes(),
        );
        assert_eq!(h, want);
        let h = npy_header(DType::F64, &[]);
        assert!(
            String::from_utf8_lossy(&h[10..])
                .starts_with("{'descr': '<f8', 'fortran_order': False, 'shape': (), }  ")
        );
        assert_eq!(h.len(), 128);
        assert_eq!(npy_header(DType::U8, &[12345678901, 0, 2]).len(), 128);
        // The count's digits never change the header length: what NpyWriter relies on.
        assert_eq!(
            npy_header(DType::U8, &[0, 7]).len(),
            npy_header(DType::U8, &[usize::MAX, 7]).len()
        );
    }

    #[test]
    fn npy_writer_equals_encoding_the_stack() {
        let rows: Vec<Tensor> = (0..5)
            .map(|i| Tensor::from_vec::<f32>(&[3], vec![i as f32, 0.5, -1.0]).expect("fits"))
            .collect();
        let mut w = NpyWriter::new(Cursor::new(Vec::new()), DType::F32, vec![3]);
        for r in &rows {
            w.push(r).expect("same shape");
        }
        let bytes = w.finish().expect("finish").into_inner();
        let stacked = crate::kernels::stack(&rows, 0).expect("stack");
        assert_eq!(bytes, encode_npy(&stacked));
        // Empty: the fallback shape.
        let w = NpyWriter::new(Cursor::new(Vec::new()), DType::I64, vec![0, 2]);
        let bytes = w.finish().expect("finish").into_inner();
        assert_eq!(parse_npy(&bytes).expect("valid").shape(), &[0, 0, 2]);
        // A shape change is an error, not a panic.
        let mut w = NpyWriter::new(Cursor::new(Vec::new()), DType::F32, vec![3]);
        w.push(&rows[0]).expect("first");
        let short = Tensor::from_vec::<f32>(&[2], vec![1.0, 2.0]).expect("fits");
        assert!(matches!(w.push(&short), Err(IoError::Output(m)) if m.contains("[2]")));
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_npy(b"hello").is_err());
        assert!(parse_npy(b"\x93NUMPY\x01\x00\xff\xff{").is_err());
    }

    /// Reading a file (header first, data in chunks) gives what parsing its bytes gives:
    /// data across several chunks, big-endian and Fortran-order data, bools, empty arrays,
    /// and the same error for every truncation and for a bad bool in a later chunk.
    #[test]
    fn reading_a_file_equals_parsing_its_bytes() {
        let n = DECODE_CHUNK / 4 * 3 + 5;
        let big = Tensor::from_vec::<f32>(&[n], (0..n).map(|i| i as f32 * 0.5).collect())
            .expect("shape fits");
        let mut files: Vec<Vec<u8>> = vec![
            encode_npy(&big),
            encode_npy(&Tensor::from_vec::<i64>(&[0, 3], vec![]).expect("shape fits")),
            encode_npy(
                &Tensor::from_vec::<bool>(&[DECODE_CHUNK + 3], vec![true; DECODE_CHUNK + 3])
                    .expect("shape fits"),
            ),
        ];
        // A bad bool in the second chunk.
        let mut bad_bool = files[2].clone();
        let at = bad_bool.len() - 2;
        bad_bool[at] = 7;
        files.push(bad_bool);
        // Big-endian i32 and Fortran-order u16, hand-made.
        // Same-length edits of a header's text.
        let edit = |mut h: Vec<u8>, from: &str, to: &str| {
            let at = h
                .windows(from.len())
                .position(|w| w == from.as_bytes())
                .expect("present");
            h[at..at + to.len()].copy_from_slice(to.as_bytes());
            h
        };
        let mut be = edit(npy_header(DType::I32, &[3]), "<i4", ">i4");
        for v in [1i32, -2, 70000] {
            be.extend_from_slice(&v.to_be_bytes());
        }
        files.push(be);
        let mut fo = edit(
            npy_header(DType::U16, &[2, 3]),
            "'fortran_order': False",
            "'fortran_order': True ",
        );
        for v in [1u16, 4, 2, 5, 3, 6] {
            fo.extend_from_slice(&v.to_le_bytes());
        }
        files.push(fo);
        for (k, bytes) in files.iter().enumerate() {
            let path = tmp(&format!("read{k}.npy"));
            for cut in [bytes.len(), bytes.len() - 1, bytes.len() / 2] {
                std::fs::write(&path, &bytes[..cut]).expect("write");
                let show = |r: Result<Tensor, IoError>| match r {
                    Ok(t) => format!("{t:?}"),
                    Err(e) => format!("error: {e}"),
                };
                assert_eq!(
                    show(read_npy(&path)),
                    show(parse_npy(&bytes[..cut])),
                    "file {k} cut at {cut}"
                );
            }
        }
        assert_eq!(parse_npy(&files[0]).expect("valid"), big);
        assert_eq!(
            format!("{:?}", parse_npy(&files[4]).expect("valid")),
            format!(
                "{:?}",
                Tensor::from_vec::<i32>(&[3], vec![1, -2, 70000]).expect("fits")
            )
        );
        assert_eq!(
            parse_npy(&files[5]).expect("valid"),
            Tensor::from_vec::<u16>(&[2, 3], vec![1, 2, 3, 4, 5, 6]).expect("fits")
        );
    }

    #[test]
    fn truncated_npy_never_panics() {
        let t = Tensor::from_vec::<f64>(&[2, 2], vec![1.0, 2.0, 3.0, 4.0]).expect("fits");
        let bytes = encode_npy(&t);
        for n in 0..bytes.len() {
            assert!(
                parse_npy(&bytes[..n]).is_err(),
                "prefix of {n} bytes accepted"
            );
        }
        // Every single-byte corruption either parses or is an error; never a panic.
        for i in 0..bytes.len() {
            for v in [0u8, 0x7f, 0xff, b'(', b',', b'9'] {
                let mut b = bytes.clone();
                b[i] = v;
                let _ = parse_npy(&b);
            }
        }
        // A header claiming a huge shape does not allocate it.
        let mut huge = npy_header(DType::F64, &[1 << 40, 1 << 20]);
        huge.extend_from_slice(&[0; 16]);
        assert!(parse_npy(&huge).is_err());
    }

    fn npz_with(members: Vec<(&str, Vec<u8>)>, method: zip::CompressionMethod) -> Vec<u8> {
        let mut z = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default().compression_method(method);
        for (name, bytes) in members {
            z.start_file(name, opts).expect("start");
            z.write_all(&bytes).expect("write");
        }
        z.finish().expect("finish").into_inner()
    }

    #[test]
    fn npz_stored_and_deflated() {
        let a = Tensor::from_vec::<i32>(&[2, 2], vec![1, 2, 3, 4]).expect("fits");
        let b = Tensor::from_vec::<f32>(&[3], vec![0.5, 1.5, 2.5]).expect("fits");
        for (k, method) in [
            zip::CompressionMethod::Stored,
            zip::CompressionMethod::Deflated,
        ]
        .into_iter()
        .enumerate()
        {
            let path = tmp(&format!("ab{k}.npz"));
            std::fs::write(
                &path,
                npz_with(
                    vec![("a.npy", encode_npy(&a)), ("b.npy", encode_npy(&b))],
                    method,
                ),
            )
            .expect("write");
            assert_eq!(read_npz(&path, "a").expect("a"), a);
            assert_eq!(read_npz(&path, "b.npy").expect("b"), b);
            let h = read_npz_header(&path, "b").expect("header");
            assert_eq!((h.dtype, h.shape), (DType::F32, vec![3]));
            match read_npz(&path, "c") {
                Err(IoError::MissingMember { available, .. }) => assert_eq!(available, "a, b"),
                other => panic!("expected a missing member, got {other:?}"),
            }
        }
    }

    #[test]
    fn npz_writer_round_trip() {
        let a = Tensor::from_vec::<i64>(&[3], vec![1, 2, 3]).expect("fits");
        let out = write_npz(
            Cursor::new(Vec::new()),
            vec![("arr_0".to_string(), Cursor::new(encode_npy(&a)))],
        )
        .expect("write");
        let path = tmp("w.npz");
        std::fs::write(&path, out.into_inner()).expect("write");
        assert_eq!(read_npz(&path, "arr_0").expect("read"), a);
    }

    #[test]
    fn damaged_npz_never_panics() {
        let a = Tensor::from_vec::<i32>(&[4], vec![1, 2, 3, 4]).expect("fits");
        for method in [
            zip::CompressionMethod::Stored,
            zip::CompressionMethod::Deflated,
        ] {
            let good = npz_with(vec![("a.npy", encode_npy(&a))], method);
            let path = tmp("damaged.npz");
            for n in (0..good.len()).step_by(3) {
                std::fs::write(&path, &good[..n]).expect("write");
                assert!(
                    read_npz(&path, "a").is_err(),
                    "a {n}-byte prefix was accepted"
                );
            }
            for i in 0..good.len() {
                let mut b = good.clone();
                b[i] ^= 0x5a;
                std::fs::write(&path, &b).expect("write");
                let _ = read_npz(&path, "a");
                let _ = read_npz_header(&path, "a");
            }
        }
        let path = tmp("garbage.npz");
        std::fs::write(&path, b"PK\x03\x04 this is not a zip file at all").expect("write");
        assert!(matches!(read_npz(&path, "a"), Err(IoError::Archive(_))));
        assert!(matches!(
            read_npz(&tmp("missing.npz"), "a"),
            Err(IoError::Io(_))
        ));
    }

    fn csv(name: &str, text: &[u8]) -> std::path::PathBuf {
        let p = tmp(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    #[test]
    fn csv_header_detection_and_rows() {
        let p = csv(
            "h.csv",
            b"\xEF\xBB\xBFx, y ,z\r\n1,2.5,-3\r\n\r\n4,nan,1e3\r\n",
        );
        assert_eq!(
            csv_info(&p).expect("info"),
            CsvInfo {
                ncols: 3,
                header: true
            }
        );
        let t = read_csv(&p, DType::F32).expect("read");
        assert_eq!(t.shape(), &[2, 3]);
        assert_eq!(t.get_flat(5), Some(crate::Scalar::F32(1000.0)));
        let p = csv("n.csv", b"1,2\n3,4");
        assert_eq!(
            csv_info(&p).expect("info"),
            CsvInfo {
                ncols: 2,
                header: false
            }
        );
        assert_eq!(
            read_csv(&p, DType::I64).expect("read"),
            Tensor::from_vec::<i64>(&[2, 2], vec![1, 2, 3, 4]).expect("fits")
        );
        let p = csv("only_header.csv", b"a,b\n");
        assert_eq!(read_csv(&p, DType::F32).expect("read").shape(), &[0, 2]);
        assert!(matches!(
            csv_info(&csv("empty.csv", b"\n\n")),
            Err(IoError::EmptyCsv)
        ));
    }

    #[test]
    fn csv_errors_name_line_column_and_cell() {
        let p = csv("bad.csv", b"a,b,c\n1,2,3\n4,x5,6\n");
        match read_csv(&p, DType::F32) {
            Err(IoError::Csv {
                line,
                column,
                cell,
                message,
            }) => {
                assert_eq!((line, column, cell.as_str()), (3, 2, "x5"));
                assert!(
                    message.contains("`x5`") && message.contains("f32"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
        let p = csv("ragged.csv", b"1,2,3\n4,5\n");
        assert!(matches!(
            read_csv(&p, DType::F32),
            Err(IoError::Csv {
                line: 2,
                column: 3,
                ..
            })
        ));
        let p = csv("range.csv", b"1\n300\n");
        assert!(
            matches!(read_csv(&p, DType::U8), Err(IoError::Csv { line: 2, column: 1, message, .. }) if message.contains("out of range"))
        );
        let p = csv("float_for_int.csv", b"1.5\n");
        assert!(read_csv(&p, DType::I32).is_err());
    }

    #[test]
    fn garbage_csv_never_panics() {
        let good = b"a,b\n1,2\n3,4\n".to_vec();
        for n in 0..good.len() {
            let _ = read_csv(&csv("t.csv", &good[..n]), DType::F32);
        }
        let mut seed = 0x1234_5678_u64;
        for _ in 0..200 {
            let bytes: Vec<u8> = (0..64)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (seed >> 56) as u8
                })
                .collect();
            let p = csv("g.csv", &bytes);
            for d in [DType::F32, DType::I8, DType::Bool, DType::F16] {
                let _ = read_csv(&p, d);
            }
        }
    }

    #[test]
    fn json_floats() {
        let j = |t: Tensor| {
            let mut s = String::new();
            append_json(&t, &mut s);
            s
        };
        let f = Tensor::from_vec::<f64>(
            &[8],
            vec![
                1.0,
                0.1,
                1e-7,
                1e16,
                123456.789,
                -2.5,
                f64::NAN,
                f64::NEG_INFINITY,
            ],
        )
        .expect("fits");
        assert_eq!(
            j(f),
            r#"[1.0, 0.1, 1e-07, 1e+16, 123456.789, -2.5, "nan", "-inf"]"#
        );
        let f = Tensor::from_vec::<f32>(&[2, 2], vec![0.1, 1.0 / 3.0, 0.0001, f32::INFINITY])
            .expect("fits");
        assert_eq!(j(f), r#"[[0.1, 0.33333334], [0.0001, "inf"]]"#);
        assert_eq!(j(Tensor::scalar(-0.0f32)), "-0.0");
        assert_eq!(j(Tensor::scalar(true)), "true");
        assert_eq!(
            j(Tensor::from_vec::<u64>(&[2], vec![u64::MAX, 0]).expect("fits")),
            "[18446744073709551615, 0]"
        );
        assert_eq!(
            j(Tensor::from_vec::<i32>(&[0, 2], vec![]).expect("fits")),
            "[]"
        );
    }

    /// A member with data after the array (a small file can inflate to any size): only
    /// the header and the array's own bytes are read, never what follows (issue 21).
    #[test]
    fn npz_member_trailing_data_is_never_read() {
        use std::io::{Cursor, Seek, SeekFrom, Write};
        struct Counting<R> {
            inner: R,
            read: u64,
        }
        impl<R: Read> Read for Counting<R> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.inner.read(buf)?;
                self.read += n as u64;
                Ok(n)
            }
        }
        impl<R: Seek> Seek for Counting<R> {
            fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
                self.inner.seek(pos)
            }
        }
        let t = Tensor::from_vec::<f32>(&[2], vec![1.5, -2.0]).expect("tensor");
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        zip.start_file("a.npy", opts).expect("member");
        zip.write_all(&encode_npy(&t)).expect("array");
        zip.write_all(&vec![7u8; 4 << 20]).expect("trailing data");
        let bytes = zip.finish().expect("archive").into_inner();
        let mut r = Counting {
            inner: Cursor::new(bytes),
            read: 0,
        };
        r.seek(SeekFrom::Start(0)).expect("seek");
        let got = read_npz_from(&mut r, "a").expect("reads");
        assert_eq!(got, t);
        assert!(r.read < 1 << 20, "read {} bytes of a 4 MiB member", r.read);
    }
}
