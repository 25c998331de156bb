//! The rows of an array file read a block at a time: what `from_tensor_slices(read_npy(...))`
//! slices instead of the whole array in memory.
//!
//! Opening reads only the header; each block of rows is then copied once, by a positioned
//! read from the page cache, into that block's own buffer, on whichever thread makes the block
//! (the pipeline's lanes). So opening costs nothing whatever the file's size, reading runs in
//! parallel with the computation, and memory holds the blocks in flight, not the file.
//!
//! The file is also memory-mapped, for the one consumer that needs no block of its own: a
//! fused elementwise map reads a block's rows in place ([`FileRows::bytes_in_place`], the
//! interpreter's in-place path), so the rows are never copied at all. A tensor owns its buffer
//! (an `ndarray` `ArcArray`), so everything else still gets its rows by a positioned read:
//! measured on W5 (24 MB), the copy was a third of the process's time. The price of a map is
//! that a file truncated by another process while the run reads it in place ends the process
//! with `SIGBUS` (the CLI reports it and exits 1), where a read fails with an error the run
//! reports; numpy's `mmap_mode` has the same trade.

use super::{IoError, NpyHeader, parse_header, short_data};
use crate::{DType, Tensor};
use std::fs::File;
use std::path::Path;
use std::sync::OnceLock;

/// The rows (slices along axis 0) of a little-endian, row-major numeric array in a `.npy` file
/// or an uncompressed `.npz` member, read on demand.
#[derive(Debug)]
pub struct FileRows {
    file: File,
    /// Where the array's data starts in the file.
    offset: u64,
    dtype: DType,
    shape: Vec<usize>,
    /// Bytes of one row.
    row_bytes: usize,
    /// The whole array, once something needed it whole (random access: `global_shuffle`).
    whole: OnceLock<Result<Tensor, String>>,
    /// The file mapped from its start to the array's end (`None` for an empty array, or
    /// where the system refused the map).
    map: Option<memmap2::Mmap>,
}

impl FileRows {
    /// The rows of the `.npy` file at `path`; `Ok(None)` when its layout needs converting
    /// (big-endian, column-major, bool, half floats, strings, a scalar), which
    /// [`super::read_npy`] does whole.
    pub fn open_npy(path: &Path) -> Result<Option<FileRows>, IoError> {
        let file = File::open(path)?;
        let h = super::header_bytes(&file).map_err(IoError::Io)?;
        let h = parse_header(&h)?;
        FileRows::new(file, 0, u64::MAX, &h)
    }

    /// The rows of array `name` of the `.npz` archive at `path`, when its member is stored
    /// (not deflated) with a layout [`FileRows::open_npy`] takes; `Ok(None)` otherwise.
    pub fn open_npz(path: &Path, name: &str) -> Result<Option<FileRows>, IoError> {
        let mut archive = super::open_archive(path)?;
        let i = super::member_index(&archive, name)?;
        let (start, size) = {
            let member = archive.by_index(i).map_err(super::archive_error)?;
            if member.compression() != zip::CompressionMethod::Stored || member.encrypted() {
                return Ok(None);
            }
            match member.data_start() {
                Some(start) => (start, member.size()),
                None => return Ok(None),
            }
        };
        let member = archive.by_index(i).map_err(super::archive_error)?;
        let h = super::header_bytes(member)
            .map_err(|e| IoError::Archive(format!("member `{name}`: {e}")))?;
        let h = parse_header(&h)?;
        FileRows::new(archive.into_inner(), start, size, &h)
    }

    /// The rows of the array `h` describes, whose file bytes (header included) start at `base`
    /// and span at most `span` bytes.
    fn new(file: File, base: u64, span: u64, h: &NpyHeader) -> Result<Option<FileRows>, IoError> {
        let native = super::native!(h.dtype, T => std::mem::size_of::<T>()).is_some();
        if !native || h.big_endian || h.fortran_order || h.shape.is_empty() {
            return Ok(None);
        }
        let elements = h
            .shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| IoError::Format("shape overflows".into()))?;
        // With no rows the whole array is empty, but a row's own dims may still overflow
        // (a fuzzed header of shape `(0, 2^40, 2^40)`).
        let row_elements = h.shape[1..]
            .iter()
            .try_fold(1u128, |a, &d| a.checked_mul(d as u128))
            .filter(|&n| n <= super::MAX_ARRAY_ELEMENTS)
            .ok_or_else(|| {
                IoError::Format(format!(
                    "a row of shape {:?} has over 2^31 elements, the limit per tensor",
                    &h.shape[1..]
                ))
            })? as usize;
        let need = elements
            .checked_mul(h.dtype.size_bytes())
            .ok_or_else(|| IoError::Format("data size overflows".into()))?;
        let len = file.metadata()?.len().min(span);
        let have = len.saturating_sub(h.data_offset as u64);
        if have < need as u64 {
            return Err(short_data(need, have));
        }
        let offset = base + h.data_offset as u64;
        let map = match usize::try_from(offset + need as u64) {
            Ok(end) if need > 0 => map_file(&file, end),
            _ => None,
        };
        Ok(Some(FileRows {
            file,
            map,
            offset,
            dtype: h.dtype,
            shape: h.shape.clone(),
            row_bytes: row_elements * h.dtype.size_bytes(),
            whole: OnceLock::new(),
        }))
    }

    /// How many rows.
    pub fn rows(&self) -> usize {
        self.shape[0]
    }

    /// The element dtype.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The array's shape (rows first).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Bytes of one row.
    pub fn row_bytes(&self) -> usize {
        self.row_bytes
    }

    /// Rows `start..end` (`end <= rows`) as one tensor of shape `[end - start, ...]`.
    pub fn read(&self, start: usize, end: usize) -> Result<Tensor, IoError> {
        fn read<T: bytemuck::Pod + crate::TensorElem>(
            rows: &FileRows,
            start: usize,
            end: usize,
        ) -> Result<Tensor, IoError> {
            let per_row = rows.row_bytes / std::mem::size_of::<T>().max(1);
            let at = rows.offset + (start as u64) * rows.row_bytes as u64;
            let v = super::read_values_at::<T>(&rows.file, at, (end - start) * per_row).map_err(
                |e| match e.kind() {
                    // The file shrank after it was opened.
                    std::io::ErrorKind::UnexpectedEof => IoError::Format(format!(
                        "the file ends before row {end} (it changed while being read)"
                    )),
                    _ => IoError::Io(e),
                },
            )?;
            let mut shape = rows.shape.clone();
            shape[0] = end - start;
            Tensor::from_vec(&shape, v)
                .ok_or_else(|| IoError::Format("data does not match the shape".into()))
        }
        let end = end.min(self.rows());
        let start = start.min(end);
        let bytes = ((end - start) as u128) * self.row_bytes as u128;
        crate::limits::check_bytes(bytes)
            .map_err(|limit| IoError::OverMemoryLimit { bytes, limit })?;
        super::native!(self.dtype, T => read::<T>(self, start, end))
            .unwrap_or_else(|| Err(IoError::UnsupportedDtype(self.dtype.to_string())))
    }

    /// The bytes of rows `start..end` (`end <= rows`) where the file is mapped: the rows in
    /// place, for a reader that needs no block of its own; `None` when the file is not mapped.
    pub fn bytes_in_place(&self, start: usize, end: usize) -> Option<&[u8]> {
        let map = self.map.as_ref()?;
        let end = end.min(self.rows());
        let from = usize::try_from(self.offset).ok()? + start.min(end) * self.row_bytes;
        let to = usize::try_from(self.offset).ok()? + end * self.row_bytes;
        map.get(from..to)
    }

    /// [`FileRows::bytes_in_place`] for a block about to be read through by the calling
    /// thread (a lane): a large block's pages are mapped first, in one call on that thread,
    /// rather than one fault per few pages as the kernel reads them (W5 at one thread:
    /// 4-6% more elements per second). A kernel without `MADV_POPULATE_READ` (before Linux
    /// 5.14) refuses it, and the reads fault as before.
    pub fn block_in_place(&self, start: usize, end: usize) -> Option<&[u8]> {
        let bytes = self.bytes_in_place(start, end)?;
        if bytes.len() >= POPULATE_MIN_BYTES
            && let Some(map) = &self.map
        {
            let from = bytes.as_ptr() as usize - map.as_ptr() as usize;
            let _ = map.advise_range(memmap2::Advice::PopulateRead, from, bytes.len());
        }
        Some(bytes)
    }

    /// Whether the file is mapped: rows in any order are then copied out of the map
    /// ([`FileRows::gather`]) instead of reading the whole array first.
    pub fn is_mapped(&self) -> bool {
        self.map.is_some()
    }

    /// Tells the system the map will be read in random order (`global_shuffle`): no read-ahead
    /// past the rows asked for, and pages kept once read.
    pub fn expect_random_access(&self) {
        if let Some(map) = &self.map {
            let _ = map.advise(memmap2::Advice::Random);
        }
    }

    /// The rows at `positions` (each below `rows`), in that order, as one tensor of shape
    /// `[positions.len(), ...]`, copied out of the file's map: random access (`global_shuffle`)
    /// without the whole array in memory. `None` when the file is not mapped or a position is
    /// past the end.
    pub fn gather(&self, positions: &[usize]) -> Option<Tensor> {
        fn gather<T: bytemuck::Pod + crate::TensorElem>(
            rows: &FileRows,
            bytes: &[u8],
            positions: &[usize],
        ) -> Option<Tensor> {
            let size = std::mem::size_of::<T>();
            let per_row = rows.row_bytes / size;
            let mut data: Vec<T> = Vec::with_capacity(positions.len().checked_mul(per_row)?);
            for &p in positions {
                let at = p.checked_mul(rows.row_bytes)?;
                let row = bytes.get(at..at.checked_add(rows.row_bytes)?)?;
                match bytemuck::try_cast_slice::<u8, T>(row) {
                    Ok(values) => data.extend_from_slice(values),
                    // A stored `.npz` member may start anywhere in its archive.
                    Err(_) => data.extend(
                        row.chunks_exact(size)
                            .map(bytemuck::pod_read_unaligned::<T>),
                    ),
                }
            }
            let mut shape = rows.shape.clone();
            shape[0] = positions.len();
            Tensor::from_vec(&shape, data)
        }
        let bytes = self.bytes_in_place(0, self.rows())?;
        super::native!(self.dtype, T => gather::<T>(self, bytes, positions)).flatten()
    }

    /// The whole array, read once and kept (for access in any order).
    pub fn whole(&self) -> Result<Tensor, IoError> {
        self.whole
            .get_or_init(|| {
                let elements = self.shape.iter().product::<usize>() as u128;
                if elements > super::MAX_ARRAY_ELEMENTS {
                    return Err(format!(
                        "the array has {elements} elements, over the limit of 2^31 elements per tensor"
                    ));
                }
                self.read(0, self.rows()).map_err(|e| e.to_string())
            })
            .clone()
            .map_err(IoError::Format)
    }
}

/// Rows read in place from at least this many bytes have their pages mapped in one call.
const POPULATE_MIN_BYTES: usize = 64 << 10;

/// The first `len` bytes of `file`, mapped read-only.
#[allow(unsafe_code)]
fn map_file(file: &File, len: usize) -> Option<memmap2::Mmap> {
    // SAFETY: the map is read-only and private, and only ever read as plain numbers (every
    // bit pattern is a value). What the compiler cannot see is another process changing the
    // file: new contents are read as they are (the same as a read racing a writer), and a
    // truncated file's pages fault with `SIGBUS`, which the CLI reports (module doc).
    let map = unsafe { memmap2::MmapOptions::new().len(len).map(file) }.ok()?;
    // Rows are read front to back; the kernel then reads ahead and maps pages in batches.
    let _ = map.advise(memmap2::Advice::Sequential);
    Some(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("pipec-rows-{}-{name}", std::process::id()));
        std::fs::write(&path, bytes).expect("write");
        path
    }

    #[test]
    fn rows_are_the_arrays_rows() {
        let t =
            Tensor::from_vec::<f32>(&[5, 2], (0..10).map(|v| v as f32).collect()).expect("fits");
        let path = file("rows.npy", &super::super::encode_npy(&t));
        let rows = FileRows::open_npy(&path)
            .expect("opens")
            .expect("native layout");
        assert_eq!(rows.rows(), 5);
        assert_eq!(rows.read(1, 4).expect("reads"), t.slice_axis0(1, 4));
        assert_eq!(rows.whole().expect("reads"), t);
        let _ = std::fs::remove_file(&path);
    }

    /// Rows gathered out of the map in any order are the rows a read gives.
    #[test]
    fn gathered_rows_are_the_rows_read() {
        let t = Tensor::from_vec::<f64>(&[9, 2], (0..18).map(|v| v as f64 * 0.5).collect())
            .expect("fits");
        let path = file("gather.npy", &super::super::encode_npy(&t));
        let rows = FileRows::open_npy(&path)
            .expect("opens")
            .expect("native layout");
        let at = [8usize, 0, 3, 3, 7];
        let want = t.take_rows(&at);
        assert!(want.is_some());
        assert_eq!(rows.gather(&at), want);
        assert_eq!(rows.gather(&[9]), None);
        let _ = std::fs::remove_file(&path);
    }

    /// The mapped bytes of a block of rows are the rows a read gives, in place.
    #[test]
    fn rows_in_place_are_the_rows_read() {
        let t =
            Tensor::from_vec::<i32>(&[7, 3], (0..21).map(|v| v * 11 - 40).collect()).expect("fits");
        let path = file("in_place.npy", &super::super::encode_npy(&t));
        let rows = FileRows::open_npy(&path)
            .expect("opens")
            .expect("native layout");
        let bytes = rows.bytes_in_place(2, 5).expect("mapped");
        let shape = [3usize, 3];
        let b = crate::BorrowedTensor::new(DType::I32, &shape, bytes).expect("aligned");
        assert_eq!(b.to_tensor(), rows.read(2, 5).expect("reads"));
        assert_eq!(rows.bytes_in_place(5, 99).map(<[u8]>::len), Some(2 * 12));
        let _ = std::fs::remove_file(&path);
    }

    /// A block large enough to have its pages mapped first is the same bytes.
    #[test]
    fn a_populated_block_is_the_rows_in_place() {
        let n = POPULATE_MIN_BYTES / 4 + 1000;
        let t = Tensor::from_vec::<i32>(&[n], (0..n as i32).map(|v| v ^ 0x5a5a).collect())
            .expect("fits");
        let path = file("populated.npy", &super::super::encode_npy(&t));
        let rows = FileRows::open_npy(&path)
            .expect("opens")
            .expect("native layout");
        for (start, end) in [(0, n), (7, n - 3), (100, 120)] {
            assert_eq!(
                rows.block_in_place(start, end),
                rows.bytes_in_place(start, end)
            );
        }
        let _ = std::fs::remove_file(&path);
    }

    /// A read of several megabytes goes in 1 MiB parts (on the kernel threads when there
    /// are any), the last one short, into a buffer that was never zeroed: every byte is the
    /// file's.
    #[test]
    fn large_reads_in_parts_are_the_whole_rows() {
        let n = 900_001usize;
        let t = Tensor::from_vec::<u32>(
            &[n],
            (0..n as u32)
                .map(|v| v.wrapping_mul(2_654_435_761))
                .collect(),
        )
        .expect("fits");
        let path = file("parts.npy", &super::super::encode_npy(&t));
        let rows = FileRows::open_npy(&path)
            .expect("opens")
            .expect("native layout");
        assert_eq!(rows.read(3, n - 1).expect("reads"), t.slice_axis0(3, n - 1));
        assert_eq!(rows.whole().expect("reads"), t);
        let _ = std::fs::remove_file(&path);
    }

    /// A file that shrinks while its rows are read is an error of the read, not a crash (a
    /// memory map would have been `SIGBUS`).
    #[test]
    fn a_file_truncated_after_opening_is_an_error() {
        let t = Tensor::from_vec::<i64>(&[1000], (0..1000).collect()).expect("fits");
        let path = file("shrinks.npy", &super::super::encode_npy(&t));
        let rows = FileRows::open_npy(&path)
            .expect("opens")
            .expect("native layout");
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_len(200))
            .expect("truncates");
        let err = rows.read(0, 1000).expect_err("the rows are gone");
        assert!(
            err.to_string().contains("changed while being read"),
            "{err}"
        );
        let _ = std::fs::remove_file(&path);
    }

    /// A version 1.0 `.npy` file of `dict` with no data.
    fn npy_bytes(dict: &str) -> Vec<u8> {
        let mut header = dict.to_string();
        while !(10 + header.len() + 1).is_multiple_of(64) {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend((header.len() as u16).to_le_bytes());
        out.extend(header.bytes());
        out
    }

    /// An empty array whose rows would each be too large is refused, not overflowed (found
    /// by the `npy` fuzz target).
    #[test]
    fn rows_too_large_to_count_are_refused() {
        let path = file(
            "huge_rows.npy",
            &npy_bytes(
                "{'descr': '<i4', 'fortran_order': False, 'shape': (0, 4294967296, 4294967296), }",
            ),
        );
        let Err(err) = FileRows::open_npy(&path) else {
            panic!("a row of 2^64 elements was accepted");
        };
        assert!(err.to_string().contains("over 2^31 elements"), "{err}");
        let _ = std::fs::remove_file(&path);
    }

    /// A header promising more rows than the file holds is refused when opening; layouts that
    /// need converting are left to the whole-array reader.
    #[test]
    fn short_files_are_refused_and_other_layouts_declined() {
        let t = Tensor::from_vec::<i32>(&[100], (0..100).collect()).expect("fits");
        let mut bytes = super::super::encode_npy(&t);
        bytes.truncate(bytes.len() - 4);
        let path = file("short.npy", &bytes);
        let err = FileRows::open_npy(&path).expect_err("short");
        assert!(err.to_string().contains("expected 400 bytes"), "{err}");
        let b = Tensor::from_vec::<bool>(&[2], vec![true, false]).expect("fits");
        let path2 = file("bool.npy", &super::super::encode_npy(&b));
        assert!(FileRows::open_npy(&path2).expect("opens").is_none());
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(&path2);
    }
}
