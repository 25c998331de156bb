//! The record-format sources: `read_tfrecord` (one `str[]` element per record, streamed file
//! by file) and `read_parquet` (one dict element per row; blocks are column slices, so a
//! `batch` right after the source takes them without a per-row step).

use crate::Element;
use crate::block::{Block, Chunk};
use crate::stream::Stream;
use pipec_diag::{Code, Diagnostic, Span};
use pipec_records::parquet::ParquetRows;
use pipec_records::{Compression, RecordError, TfRecordReader};
use pipec_tensor::Tensor;
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
    paths: std::vec::IntoIter<PathBuf>,
    compression: Compression,
    reader: Option<TfRecordReader>,
    span: Span,
    done: bool,
}

impl TfRecords {
    pub(crate) fn new(paths: Vec<PathBuf>, compression: Compression, span: Span) -> TfRecords {
        TfRecords {
            paths: paths.into_iter(),
            compression,
            reader: None,
            span,
            done: false,
        }
    }
}

impl Stream for TfRecords {
    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        while !self.done {
            let Some(reader) = &mut self.reader else {
                match self.paths.next() {
                    None => self.done = true,
                    Some(p) => {
                        let r = TfRecordReader::open(&p, self.compression);
                        self.reader = Some(r.map_err(|e| {
                            self.done = true;
                            record_error(e, self.span)
                        })?);
                    }
                }
                continue;
            };
            match reader.next_record() {
                Ok(Some(b)) => return Ok(Some(vec![Tensor::scalar(b)])),
                Ok(None) => self.reader = None,
                Err(e) => {
                    self.done = true;
                    return Err(record_error(e, self.span));
                }
            }
        }
        Ok(None)
    }
}

/// `read_parquet`: the files in order; rows leave as column slices.
pub(crate) struct ParquetSource {
    paths: std::vec::IntoIter<PathBuf>,
    columns: Vec<String>,
    rows: Option<ParquetRows>,
    span: Span,
    done: bool,
}

impl ParquetSource {
    pub(crate) fn new(paths: Vec<PathBuf>, columns: Vec<String>, span: Span) -> ParquetSource {
        ParquetSource {
            paths: paths.into_iter(),
            columns,
            rows: None,
            span,
            done: false,
        }
    }

    /// Up to `max` rows as one tensor per column, from one file.
    fn pull(&mut self, max: usize) -> Result<Option<Vec<Tensor>>, Diagnostic> {
        while !self.done {
            let Some(rows) = &mut self.rows else {
                match self.paths.next() {
                    None => self.done = true,
                    Some(p) => match ParquetRows::open(&p, Some(&self.columns)) {
                        Ok(r) => self.rows = Some(r),
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
                Ok(None) => self.rows = None,
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
}
