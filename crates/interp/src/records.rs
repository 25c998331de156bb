//! The record-format sources: `read_tfrecord` (one `str[]` element per record, streamed file
//! by file) and `read_parquet` (one dict element per row; blocks are column slices, so a
//! `batch` right after the source takes them without a per-row step).

use crate::Element;
use crate::block::{Block, Chunk};
use crate::state::NodeState;
use crate::stream::base::Stream;
use pipec_diag::{Code, Diagnostic, Span};
use pipec_records::parquet::ParquetRows;
use pipec_records::{Compression, RecordError, TfRecordReader};
use pipec_tensor::{Bytes, Tensor};
use std::path::PathBuf;

/// A record-format error as a diagnostic: its code, the message naming file and record or
/// row and column, and the source's span.
pub(crate) fn record_error(e: RecordError, span: Span) -> Diagnostic {
    let (code, help) = match &e {
        RecordError::Io { .. } => (Code::FileUnreadable, None),
        RecordError::OverMemoryLimit { .. } => (Code::MemoryLimit, Some("raise `--max-memory`")),
        RecordError::Null { .. } => (
            Code::NullValue,
            Some(
                "fill the nulls when writing the file, or leave the column out with `columns: [...]`",
            ),
        ),
        RecordError::Example { feature, .. } if !feature.is_empty() => (Code::BadFeature, None),
        RecordError::UnsupportedColumn { .. } => (Code::UnsupportedColumn, None),
        _ => (Code::BadRecord, None),
    };
    let d = Diagnostic::error(code, e.to_string()).with_label(span, "read here");
    match help {
        Some(h) => d.with_help(h),
        None => d,
    }
}

/// `read_tfrecord`: the files in order, one reader open at a time.
pub(crate) struct TfRecords {
    paths: Vec<PathBuf>,
    compression: Compression,
    /// The index of the file being read, or of the next one to open.
    file: usize,
    /// Records of file `file` to step over when it opens (a resumed position).
    skip: u64,
    reader: Option<TfRecordReader>,
    span: Span,
    done: bool,
}

impl TfRecords {
    pub(crate) fn new(paths: Vec<PathBuf>, compression: Compression, span: Span) -> TfRecords {
        TfRecords::at(paths, compression, span, 0, 0)
    }

    /// Positioned after `record` records of file `file` (a saved state); the file opens, and
    /// the records are stepped over, on the first pull.
    pub(crate) fn at(
        paths: Vec<PathBuf>,
        compression: Compression,
        span: Span,
        file: usize,
        record: u64,
    ) -> TfRecords {
        TfRecords {
            paths,
            compression,
            file,
            skip: record,
            reader: None,
            span,
            done: false,
        }
    }
}

impl TfRecords {
    /// The next record, opening the next file when one ends.
    fn next_record(&mut self) -> Result<Option<Bytes>, Diagnostic> {
        while !self.done {
            let Some(reader) = &mut self.reader else {
                match self.paths.get(self.file) {
                    None => self.done = true,
                    Some(p) => {
                        let r = TfRecordReader::open_at(p, self.compression, self.skip);
                        self.reader = Some(r.map_err(|e| {
                            self.done = true;
                            record_error(e, self.span)
                        })?);
                        self.skip = 0;
                    }
                }
                continue;
            };
            match reader.next_record() {
                Ok(Some(b)) => return Ok(Some(b)),
                Ok(None) => {
                    self.reader = None;
                    self.file += 1;
                }
                Err(e) => {
                    self.done = true;
                    return Err(record_error(e, self.span));
                }
            }
        }
        Ok(None)
    }
}

impl Stream for TfRecords {
    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        Ok(self.next_record()?.map(|b| vec![Tensor::scalar(b)]))
    }

    /// Records leave as one `str[n]` column: a `map(parse_example)` on blocks takes it as
    /// it is, with no per-record element on the way.
    fn next_block(&mut self, max: usize) -> Option<Chunk> {
        let mut recs = Vec::with_capacity(max.min(4096));
        let mut error = None;
        while recs.len() < max {
            match self.next_record() {
                Ok(Some(b)) => recs.push(b),
                Ok(None) => break,
                Err(d) => {
                    error = Some(d);
                    break;
                }
            }
        }
        let rows = recs.len();
        if rows == 0 && error.is_none() {
            return None;
        }
        let block = match Tensor::from_vec(&[rows], recs) {
            Some(t) if rows > 0 => Block::Stacked {
                leaves: vec![t],
                rows,
            },
            _ => Block::Rows(Vec::new()),
        };
        Some(Chunk { block, error })
    }

    fn save(&mut self) -> Result<NodeState, Diagnostic> {
        let record = self.reader.as_ref().map_or(self.skip, |r| r.index());
        Ok(NodeState::TfRecord {
            file: self.file as u64,
            record,
        })
    }
}

/// `read_parquet`: the files in order; rows leave as column slices.
pub(crate) struct ParquetSource {
    paths: Vec<PathBuf>,
    columns: Vec<String>,
    /// The index of the file being read, or of the next one to open.
    file: usize,
    /// The row of file `file` to open it at (a resumed position).
    start: u64,
    rows: Option<ParquetRows>,
    span: Span,
    done: bool,
}

impl ParquetSource {
    pub(crate) fn new(paths: Vec<PathBuf>, columns: Vec<String>, span: Span) -> ParquetSource {
        ParquetSource::at(paths, columns, span, 0, 0)
    }

    /// Positioned at row `row` of file `file` (a saved state); the file opens there on the
    /// first pull, without reading the row groups before it.
    pub(crate) fn at(
        paths: Vec<PathBuf>,
        columns: Vec<String>,
        span: Span,
        file: usize,
        row: u64,
    ) -> ParquetSource {
        ParquetSource {
            paths,
            columns,
            file,
            start: row,
            rows: None,
            span,
            done: false,
        }
    }

    /// Up to `max` rows as one tensor per column, from one file.
    fn pull(&mut self, max: usize) -> Result<Option<Vec<Tensor>>, Diagnostic> {
        while !self.done {
            let Some(rows) = &mut self.rows else {
                match self.paths.get(self.file) {
                    None => self.done = true,
                    Some(p) => match ParquetRows::open_at(p, Some(&self.columns), self.start) {
                        Ok(r) => {
                            self.rows = Some(r);
                            self.start = 0;
                        }
                        Err(e) => {
                            self.done = true;
                            return Err(record_error(e, self.span));
                        }
                    },
                }
                continue;
            };
            match rows.next_rows(max) {
                Ok(Some(cols)) => return Ok(Some(cols)),
                Ok(None) => {
                    self.rows = None;
                    self.file += 1;
                }
                Err(e) => {
                    self.done = true;
                    return Err(record_error(e, self.span));
                }
            }
        }
        Ok(None)
    }
}

impl Stream for ParquetSource {
    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        Ok(self
            .pull(1)?
            .map(|cols| cols.iter().map(|c| c.index_axis0(0)).collect()))
    }

    fn next_block(&mut self, max: usize) -> Option<Chunk> {
        match self.pull(max) {
            Ok(Some(leaves)) => {
                let rows = leaves.first().map_or(0, |t| t.shape()[0]);
                Some(Chunk::ok(Block::Stacked { leaves, rows }))
            }
            Ok(None) => None,
            Err(d) => Some(Chunk {
                block: Block::Rows(Vec::new()),
                error: Some(d),
            }),
        }
    }

    fn save(&mut self) -> Result<NodeState, Diagnostic> {
        let row = self.rows.as_ref().map_or(self.start, |r| r.position());
        Ok(NodeState::Parquet {
            file: self.file as u64,
            row,
        })
    }
}
