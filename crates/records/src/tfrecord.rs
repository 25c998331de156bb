//! TFRecord files: a stream of records, each framed as
//! `u64 length (LE) | u32 masked CRC32C of the length | data | u32 masked CRC32C of the data`,
//! optionally inside one GZIP or ZLIB stream. Reading streams record by record, so a file's
//! size never bounds memory; only the largest single record does.

use crate::RecordError;
use bytes::Bytes;
use flate2::Compression as Level;
use std::fs::File;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};
use std::path::Path;

/// The largest record accepted (2 GiB, TF's own protobuf limit): a length above it is damage,
/// not data, and must not turn into an allocation.
pub const MAX_RECORD_LEN: u64 = 1 << 31;

/// The bytes read from the file per step while a record's data is read: a forged length is
/// caught by the truncation it leads to, after at most the file's size in allocations.
const READ_STEP: usize = 1 << 20;

/// How the record stream is compressed, as TF's `compression_type` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Plain records (`""`).
    #[default]
    None,
    /// One gzip stream (`"GZIP"`, a `.gz` file).
    Gzip,
    /// One zlib stream (`"ZLIB"`).
    Zlib,
}

impl Compression {
    /// TF's name for the compression (`""`, `"GZIP"`, `"ZLIB"`), accepted case-insensitively.
    pub fn from_name(name: &str) -> Option<Compression> {
        match name.to_ascii_uppercase().as_str() {
            "" | "NONE" => Some(Compression::None),
            "GZIP" => Some(Compression::Gzip),
            "ZLIB" => Some(Compression::Zlib),
            _ => None,
        }
    }

    /// TF's name for this compression.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => "GZIP",
            Compression::Zlib => "ZLIB",
        }
    }
}

/// The mask TF applies to every stored CRC (`crc32c::Mask` in TF's `lib/hash/crc32c.h`).
pub fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Reads records one at a time from a (possibly compressed) TFRecord stream.
pub struct TfRecordReader {
    inner: Box<dyn Read + Send>,
    file: String,
    index: u64,
    done: bool,
}

impl TfRecordReader {
    /// Opens a TFRecord file; errors name the file as given.
    pub fn open(path: &Path, compression: Compression) -> Result<TfRecordReader, RecordError> {
        let file = File::open(path).map_err(|e| RecordError::Io {
            file: path.display().to_string(),
            source: e,
        })?;
        Ok(TfRecordReader::new(
            BufReader::with_capacity(1 << 16, file),
            compression,
            path.display().to_string(),
        ))
    }

    /// Opens a TFRecord file at record `skip` (0-based), as a resumed run does: the records
    /// before it are stepped over by their framing (the length and its CRC), without reading
    /// or checking their data, which the saving run already checked. A plain file seeks past
    /// each record; a compressed one must decompress them. A file that ends before record
    /// `skip` is an error naming it.
    pub fn open_at(
        path: &Path,
        compression: Compression,
        skip: u64,
    ) -> Result<TfRecordReader, RecordError> {
        let name = path.display().to_string();
        let io = |e| RecordError::Io {
            file: name.clone(),
            source: e,
        };
        let file = File::open(path).map_err(io)?;
        let mut buf = BufReader::with_capacity(1 << 16, file);
        if compression != Compression::None {
            let mut r = TfRecordReader::new(buf, compression, name.clone());
            while r.index < skip {
                r.skip_one()?;
            }
            return Ok(r);
        }
        let size = buf.get_ref().metadata().map_err(io)?.len();
        let mut pos = 0u64;
        let mut r = TfRecordReader {
            inner: Box::new(std::io::empty()),
            file: name.clone(),
            index: 0,
            done: false,
        };
        while r.index < skip {
            let mut header = [0u8; 12];
            let got = fill_from(&mut buf, &mut header).map_err(|e| r.io(e))?;
            let len = r.check_header(&header, got)?.ok_or_else(|| {
                r.corrupt("the file ends before this record, where the saved state resumes")
            })?;
            // The data and its CRC are stepped over; a position past the end is caught below.
            let step = len + 4;
            pos += 12 + step;
            if pos > size {
                return Err(r.corrupt(format!(
                    "the file ends inside the record's data ({size} bytes in the file)"
                )));
            }
            buf.seek_relative(step as i64).map_err(|e| r.io(e))?;
            r.index += 1;
        }
        r.inner = Box::new(buf);
        Ok(r)
    }

    /// Steps over the next record by its framing, decompressing but not checking its data.
    fn skip_one(&mut self) -> Result<(), RecordError> {
        let mut header = [0u8; 12];
        let got = self.fill(&mut header)?;
        let len = self.check_header(&header, got)?.ok_or_else(|| {
            self.corrupt("the file ends before this record, where the saved state resumes")
        })?;
        let want = len + 4;
        let got = std::io::copy(&mut (&mut self.inner).take(want), &mut std::io::sink())
            .map_err(|e| self.io(e))?;
        if got < want {
            return Err(self.corrupt("the file ends inside the record's data"));
        }
        self.index += 1;
        Ok(())
    }

    /// The data length of a record from its 12-byte header, of which `got` bytes were read
    /// (`None`: none, the stream ended cleanly); the length CRC and limits are checked.
    fn check_header(&self, header: &[u8; 12], got: usize) -> Result<Option<u64>, RecordError> {
        match got {
            0 => return Ok(None),
            12 => {}
            n => {
                return Err(self.corrupt(format!(
                    "the file ends inside the record's header ({n} of 12 bytes)"
                )));
            }
        }
        let len_bytes: [u8; 8] = header[..8].try_into().unwrap_or_default();
        let crc_bytes: [u8; 4] = header[8..].try_into().unwrap_or_default();
        if masked_crc(&len_bytes) != u32::from_le_bytes(crc_bytes) {
            return Err(self.corrupt("the length CRC does not match (the length is damaged)"));
        }
        let len = u64::from_le_bytes(len_bytes);
        if len > MAX_RECORD_LEN {
            return Err(self.corrupt(format!(
                "the record claims {len} bytes, over the limit of {MAX_RECORD_LEN}"
            )));
        }
        Ok(Some(len))
    }

    /// Reads records from any byte stream; `file` is the name errors give.
    pub fn new(
        reader: impl Read + Send + 'static,
        compression: Compression,
        file: String,
    ) -> TfRecordReader {
        let inner: Box<dyn Read + Send> = match compression {
            Compression::None => Box::new(reader),
            // TF writes one gzip member, but `cat a.gz b.gz` is a valid gzip file too.
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
            Compression::Zlib => Box::new(flate2::read::ZlibDecoder::new(reader)),
        };
        TfRecordReader {
            inner,
            file,
            index: 0,
            done: false,
        }
    }

    /// The index (0-based) of the record the next call reads.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The next record, `None` at a clean end of the stream. After an error the reader
    /// returns `None`.
    pub fn next_record(&mut self) -> Result<Option<Bytes>, RecordError> {
        if self.done {
            return Ok(None);
        }
        let r = self.read_one();
        match &r {
            Ok(Some(_)) => self.index += 1,
            _ => self.done = true,
        }
        r
    }

    fn corrupt(&self, what: impl Into<String>) -> RecordError {
        RecordError::Corrupt {
            file: self.file.clone(),
            record: self.index,
            what: what.into(),
        }
    }

    fn io(&self, e: std::io::Error) -> RecordError {
        // A damaged compressed stream shows up as an I/O error of kind InvalidInput/InvalidData.
        match e.kind() {
            ErrorKind::InvalidData | ErrorKind::InvalidInput => {
                self.corrupt(format!("the compressed stream is damaged: {e}"))
            }
            ErrorKind::UnexpectedEof => self.corrupt("the compressed stream ends early"),
            _ => RecordError::Io {
                file: self.file.clone(),
                source: e,
            },
        }
    }

    /// Fills `buf` completely; `Ok(n < len)` means the stream ended after `n` bytes.
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, RecordError> {
        fill_from(&mut self.inner, buf).map_err(|e| self.io(e))
    }

    fn read_one(&mut self) -> Result<Option<Bytes>, RecordError> {
        let mut header = [0u8; 12];
        let got = self.fill(&mut header)?;
        let Some(len) = self.check_header(&header, got)? else {
            return Ok(None);
        };
        if let Err(limit) = pipec_tensor::limits::check_bytes(u128::from(len)) {
            return Err(RecordError::OverMemoryLimit {
                file: self.file.clone(),
                record: self.index,
                bytes: len,
                limit,
            });
        }
        let len = len as usize;
        // Grown as the bytes arrive, so a forged length costs no more than the file holds.
        let mut data = Vec::with_capacity(len.min(READ_STEP));
        while data.len() < len {
            let start = data.len();
            let step = (len - start).min(READ_STEP);
            data.resize(start + step, 0);
            let got = self.fill(&mut data[start..])?;
            if got < step {
                return Err(self.corrupt(format!(
                    "the file ends inside the record's data ({} of {len} bytes)",
                    start + got
                )));
            }
        }
        let mut crc = [0u8; 4];
        let got = self.fill(&mut crc)?;
        if got < 4 {
            return Err(self.corrupt("the file ends inside the record's data CRC"));
        }
        if masked_crc(&data) != u32::from_le_bytes(crc) {
            return Err(self.corrupt("the data CRC does not match (the record is damaged)"));
        }
        Ok(Some(Bytes::from(data)))
    }
}

/// Fills `buf` from `r` as far as the stream goes; `Ok(n < len)`: it ended after `n` bytes.
fn fill_from(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl Iterator for TfRecordReader {
    type Item = Result<Bytes, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().transpose()
    }
}

enum Sink<W: Write> {
    Plain(W),
    Gzip(flate2::write::GzEncoder<W>),
    Zlib(flate2::write::ZlibEncoder<W>),
}

/// Writes records as TF's `TFRecordWriter` does (readable by `tf.data.TFRecordDataset`).
pub struct TfRecordWriter<W: Write> {
    sink: Sink<W>,
    count: u64,
}

impl TfRecordWriter<BufWriter<File>> {
    /// Creates (or truncates) a TFRecord file.
    pub fn create(
        path: &Path,
        compression: Compression,
    ) -> std::io::Result<TfRecordWriter<BufWriter<File>>> {
        Ok(TfRecordWriter::new(
            BufWriter::with_capacity(1 << 16, File::create(path)?),
            compression,
        ))
    }
}

impl<W: Write> TfRecordWriter<W> {
    /// Writes records into `out`, compressed as asked.
    pub fn new(out: W, compression: Compression) -> TfRecordWriter<W> {
        let sink = match compression {
            Compression::None => Sink::Plain(out),
            Compression::Gzip => Sink::Gzip(flate2::write::GzEncoder::new(out, Level::default())),
            Compression::Zlib => Sink::Zlib(flate2::write::ZlibEncoder::new(out, Level::default())),
        };
        TfRecordWriter { sink, count: 0 }
    }

    fn out(&mut self) -> &mut dyn Write {
        match &mut self.sink {
            Sink::Plain(w) => w,
            Sink::Gzip(w) => w,
            Sink::Zlib(w) => w,
        }
    }

    /// Appends one record.
    pub fn write_record(&mut self, data: &[u8]) -> std::io::Result<()> {
        let len = (data.len() as u64).to_le_bytes();
        let mut header = [0u8; 12];
        header[..8].copy_from_slice(&len);
        header[8..].copy_from_slice(&masked_crc(&len).to_le_bytes());
        let crc = masked_crc(data).to_le_bytes();
        let out = self.out();
        out.write_all(&header)?;
        out.write_all(data)?;
        out.write_all(&crc)?;
        self.count += 1;
        Ok(())
    }

    /// How many records were written.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Ends the compressed stream and flushes; returns the underlying writer.
    pub fn finish(self) -> std::io::Result<W> {
        let mut w = match self.sink {
            Sink::Plain(w) => w,
            Sink::Gzip(w) => w.finish()?,
            Sink::Zlib(w) => w.finish()?,
        };
        w.flush()?;
        Ok(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn write_all(records: &[&[u8]], c: Compression) -> Vec<u8> {
        let mut w = TfRecordWriter::new(Vec::new(), c);
        for r in records {
            w.write_record(r).unwrap();
        }
        w.finish().unwrap()
    }

    fn read_all(bytes: Vec<u8>, c: Compression) -> Result<Vec<Bytes>, RecordError> {
        TfRecordReader::new(Cursor::new(bytes), c, "t.tfrecord".into()).collect()
    }

    #[test]
    fn masked_crc_matches_tf() {
        // TF's crc32c_test: Mask(Value("foo")) as written by tf.io.TFRecordWriter for the
        // 8-byte length 3 is 0x... ; the unmasked CRC32C of "123456789" is 0xE3069283.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        let crc = 0xE306_9283u32;
        assert_eq!(
            masked_crc(b"123456789"),
            crc.rotate_right(15).wrapping_add(0xa282_ead8)
        );
    }

    #[test]
    fn round_trip_every_compression() {
        let recs: [&[u8]; 4] = [b"", b"a", b"hello world", &[0u8; 3000]];
        for c in [Compression::None, Compression::Gzip, Compression::Zlib] {
            let back = read_all(write_all(&recs, c), c).unwrap();
            assert_eq!(back.len(), 4);
            for (a, b) in recs.iter().zip(&back) {
                assert_eq!(*a, &b[..]);
            }
        }
    }

    #[test]
    fn bad_data_crc_names_the_record() {
        let mut bytes = write_all(&[b"one", b"two", b"three"], Compression::None);
        // Record 1 starts after record 0 (12 + 3 + 4 bytes); flip a data byte.
        bytes[19 + 12] ^= 1;
        let mut r = TfRecordReader::new(Cursor::new(bytes), Compression::None, "f".into());
        assert_eq!(&r.next_record().unwrap().unwrap()[..], b"one");
        let e = r.next_record().unwrap_err();
        assert_eq!(e.record(), Some(1));
        assert!(e.to_string().contains("data CRC"), "{e}");
        assert!(r.next_record().unwrap().is_none());
    }

    #[test]
    fn bad_length_crc_is_an_error() {
        let mut bytes = write_all(&[b"one"], Compression::None);
        bytes[0] = 200;
        let e = read_all(bytes, Compression::None).unwrap_err();
        assert!(e.to_string().contains("length CRC"), "{e}");
        assert_eq!(e.record(), Some(0));
    }

    #[test]
    fn every_truncation_is_an_error_naming_the_last_record() {
        let full = write_all(&[b"one", b"two"], Compression::None);
        for cut in 1..full.len() {
            let r = read_all(full[..cut].to_vec(), Compression::None);
            if cut == 19 {
                assert_eq!(r.unwrap().len(), 1);
                continue;
            }
            let e = r.unwrap_err();
            assert_eq!(e.record(), Some(if cut < 19 { 0 } else { 1 }), "cut {cut}");
        }
    }

    #[test]
    fn truncated_compressed_stream_is_an_error() {
        for c in [Compression::Gzip, Compression::Zlib] {
            let full = write_all(&[b"one", &[7u8; 500]], c);
            for cut in [full.len() / 2, full.len() - 1] {
                assert!(
                    read_all(full[..cut].to_vec(), c).is_err(),
                    "{c:?} cut {cut}"
                );
            }
        }
    }

    #[test]
    fn open_at_steps_over_records_in_every_compression() {
        let dir = std::env::temp_dir().join(format!("pipec-tfr-at-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let recs: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; i as usize * 37]).collect();
        let refs: Vec<&[u8]> = recs.iter().map(|r| &r[..]).collect();
        for c in [Compression::None, Compression::Gzip, Compression::Zlib] {
            let path = dir.join(format!("f{}.tfrecord", c.name()));
            std::fs::write(&path, write_all(&refs, c)).unwrap();
            for skip in [0, 1, 7, 19, 20] {
                let mut r = TfRecordReader::open_at(&path, c, skip).unwrap();
                assert_eq!(r.index(), skip);
                let rest: Vec<Bytes> = r.by_ref().collect::<Result<_, _>>().unwrap();
                assert_eq!(rest.len() as u64, 20 - skip, "{c:?} at {skip}");
                for (a, b) in recs[skip as usize..].iter().zip(&rest) {
                    assert_eq!(&a[..], &b[..]);
                }
            }
            let e = TfRecordReader::open_at(&path, c, 21).err().unwrap();
            assert_eq!(e.record(), Some(20), "{c:?}: {e}");
        }
        // A plain file cut inside a record that is stepped over: an error, not a clean end.
        let full = write_all(&refs, Compression::None);
        let path = dir.join("cut.tfrecord");
        std::fs::write(&path, &full[..full.len() - 100]).unwrap();
        let e = TfRecordReader::open_at(&path, Compression::None, 20)
            .err()
            .unwrap();
        assert_eq!(e.record(), Some(19), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_forged_huge_length_allocates_nothing_big() {
        let len = (1u64 << 30).to_le_bytes();
        let mut bytes = len.to_vec();
        bytes.extend_from_slice(&masked_crc(&len).to_le_bytes());
        bytes.extend_from_slice(b"short");
        let e = read_all(bytes, Compression::None).unwrap_err();
        assert!(
            e.to_string().contains("ends inside the record's data"),
            "{e}"
        );
    }
}
