//! `read_csv` streaming: the consumer finds where rows end (and which lines are blank or a
//! header), a lane parses the numbers ([`CsvBlock::parse`]).

use super::chunks::ReadBuf;
use super::{IoError, MAX_CSV_LINE, csv_line, csv_line_too_long, parse_row};
use crate::{DType, Tensor};
use bytes::Bytes;
use std::io::Read;
use std::path::Path;

/// The most text in one block of rows (a block usually stops at its row count first).
const MAX_BLOCK_TEXT: usize = 16 << 20;

/// Streams the rows of a numeric CSV file as tensors of shape `[ncols]`; memory stays at a
/// part of the file (or one line, if longer) whatever the file's length.
pub struct CsvRows {
    buf: ReadBuf<Box<dyn Read + Send>>,
    dtype: DType,
    ncols: usize,
    skip_header: bool,
    /// Lines consumed: the number of the last one.
    line: u64,
    /// An error met after the rows last handed out: the next call reports it.
    failed: Option<IoError>,
    /// After an error nothing more is read.
    done: bool,
}

/// Consecutive lines of a CSV file holding `rows` rows (blank lines between them, no
/// header), whose cells are not parsed yet.
#[derive(Clone, Debug)]
pub struct CsvBlock {
    /// The lines' bytes, endings included.
    text: Bytes,
    /// The number of the line before the first one.
    after_line: u64,
    /// The non-blank lines: rows, unless one fails to parse.
    pub rows: usize,
    dtype: DType,
    ncols: usize,
}

impl CsvBlock {
    /// The bytes of the block's lines.
    pub fn text_len(&self) -> usize {
        self.text.len()
    }

    /// The rows as `[ncols]` tensors, up to the first bad line, and that line's error.
    pub fn parse(&self) -> (Vec<Tensor>, Option<IoError>) {
        let t = &self.text[..];
        let mut out = Vec::with_capacity(self.rows);
        let (mut start, mut line) = (0, self.after_line);
        while start < t.len() {
            let end = memchr::memchr(b'\n', &t[start..]).map_or(t.len(), |i| start + i + 1);
            line += 1;
            match csv_line(&t[start..end], line) {
                Ok(None) => {}
                Ok(Some(text)) => match parse_row(text, line, self.dtype, self.ncols) {
                    Ok(r) => out.push(r),
                    Err(e) => return (out, Some(e)),
                },
                Err(e) => return (out, Some(e)),
            }
            start = end;
        }
        (out, None)
    }
}

/// Whether CSV line `line` (its bytes, ending included) is certainly a row: its first byte
/// is ASCII and not white space. Other lines need [`csv_line`] to tell.
fn surely_a_row(bytes: &[u8], line: u64) -> bool {
    line > 1
        && bytes
            .first()
            .is_some_and(|&b| b < 0x80 && !matches!(b, 0x09..=0x0D | b' '))
}

impl CsvRows {
    /// Opens `path`; rows must have `ncols` cells of `dtype`; `header` skips the first
    /// non-blank line.
    pub fn open(path: &Path, dtype: DType, ncols: usize, header: bool) -> Result<CsvRows, IoError> {
        let f = std::fs::File::open(path)?;
        Ok(CsvRows::from_reader(f, dtype, ncols, header))
    }

    /// [`CsvRows::open`] on CSV text from any reader.
    pub fn from_reader(
        reader: impl Read + Send + 'static,
        dtype: DType,
        ncols: usize,
        header: bool,
    ) -> CsvRows {
        CsvRows {
            buf: ReadBuf::new(Box::new(reader)),
            dtype,
            ncols,
            skip_header: header,
            line: 0,
            failed: None,
            done: false,
        }
    }

    /// The rows' dtype.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The next row, `None` at the end of the file.
    pub fn next_row(&mut self) -> Result<Option<Tensor>, IoError> {
        let Some(block) = self.next_rows(1)? else {
            return Ok(None);
        };
        let (rows, error) = block.parse();
        match (rows.into_iter().next(), error) {
            (Some(r), _) => Ok(Some(r)),
            (None, Some(e)) => Err(e),
            (None, None) => Ok(None),
        }
    }

    /// The lines of the next (at most `max`, at least one) rows, `None` at the end of the
    /// file. An error met after some rows (a read, a line over 16 MiB) is reported by the
    /// next call, so it follows the rows before it as reading row by row gives it.
    pub fn next_rows(&mut self, max: usize) -> Result<Option<CsvBlock>, IoError> {
        if let Some(e) = self.failed.take() {
            self.done = true;
            return Err(e);
        }
        if self.done {
            return Ok(None);
        }
        let mut after_line = self.line;
        // Offsets are into the bytes available, which a read keeps in front.
        let (mut rows, mut end, mut search) = (0usize, 0usize, 0usize);
        let error = loop {
            let avail = self.buf.available();
            let line_end = match memchr::memchr(b'\n', &avail[search..]) {
                Some(i) => search + i + 1,
                None => {
                    search = avail.len();
                    if (avail.len() - end) as u64 > MAX_CSV_LINE {
                        break Some(csv_line_too_long(self.line + 1));
                    }
                    if !self.buf.at_eof() {
                        if let Err(e) = self.buf.fill_more() {
                            break Some(IoError::Io(e));
                        }
                        continue;
                    }
                    if avail.len() == end {
                        break None;
                    }
                    avail.len()
                }
            };
            let bytes = &avail[end..line_end];
            if bytes.len() as u64 > MAX_CSV_LINE {
                break Some(csv_line_too_long(self.line + 1));
            }
            self.line += 1;
            let row = surely_a_row(bytes, self.line)
                || match csv_line(bytes, self.line) {
                    Ok(text) => text.is_some(),
                    // A header must be text; a row's bad line is its lane's error.
                    Err(e) if self.skip_header => break Some(e),
                    Err(_) => true,
                };
            (end, search) = (line_end, line_end);
            if row && self.skip_header {
                // The header goes; the block starts after it.
                self.skip_header = false;
                self.buf.take(end);
                (end, search, after_line) = (0, 0, self.line);
            } else if row {
                rows += 1;
                if rows >= max || end >= MAX_BLOCK_TEXT {
                    break None;
                }
            }
        };
        let text = self.buf.take(end);
        if let Some(e) = error {
            if rows == 0 {
                self.done = true;
                return Err(e);
            }
            self.failed = Some(e);
        }
        Ok((rows > 0).then(|| CsvBlock {
            text,
            after_line,
            rows,
            dtype: self.dtype,
            ncols: self.ncols,
        }))
    }
}
