//! Source streams: `range`, `from_tensor_slices`, `from_tensors`, `read_csv` and
//! `read_lines` (the record formats are `crate::records`). Each knows its position exactly,
//! so a saved state seeks instead of replaying.

use super::base::Stream;
use crate::Element;
use crate::block::{Block, Chunk};
use crate::state::NodeState;
use pipec_diag::{Code, Diagnostic, Span};
use pipec_tensor::Tensor;
use std::path::PathBuf;

/// `from_tensor_slices`: row `next` of every component, up to `n` rows.
pub(super) struct Slices {
    comps: Vec<Tensor>,
    next: usize,
    n: usize,
}

impl Slices {
    /// The rows of `comps` from row `next` on; `None` past the last row.
    pub(super) fn at(comps: Vec<Tensor>, next: usize) -> Option<Slices> {
        let n = comps.first().map_or(0, |c| c.shape()[0]);
        (next <= n).then_some(Slices { comps, next, n })
    }
}

impl Stream for Slices {
    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        if self.next >= self.n {
            return Ok(None);
        }
        let i = self.next;
        self.next += 1;
        Ok(Some(self.comps.iter().map(|c| c.index_axis0(i)).collect()))
    }

    fn save(&mut self) -> Result<NodeState, Diagnostic> {
        Ok(NodeState::Slices {
            next: self.next as u64,
        })
    }

    fn next_block(&mut self, max: usize) -> Option<Chunk> {
        if self.next >= self.n {
            return None;
        }
        let (start, end) = (self.next, self.n.min(self.next.saturating_add(max)));
        self.next = end;
        Some(Chunk::ok(Block::Stacked {
            leaves: self
                .comps
                .iter()
                .map(|c| c.slice_axis0(start, end))
                .collect(),
            rows: end - start,
        }))
    }
}

/// `from_tensors`: the one element, until it went out.
pub(super) struct Whole(pub(super) Option<Vec<Tensor>>);

impl Stream for Whole {
    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        Ok(self.0.take())
    }

    fn save(&mut self) -> Result<NodeState, Diagnostic> {
        Ok(NodeState::Whole {
            done: self.0.is_none(),
        })
    }
}

/// `range(start, stop, step)`: the next value `cur`, up to `stop` (exclusive).
pub(super) struct Range {
    pub(super) cur: i64,
    pub(super) stop: i64,
    pub(super) step: i64,
}

impl Range {
    /// The next value, advancing (a step that saturates at the i64 range ends the stream).
    #[inline]
    fn advance(&mut self) -> Option<i64> {
        let more = if self.step > 0 {
            self.cur < self.stop
        } else {
            self.cur > self.stop
        };
        if !more {
            return None;
        }
        let v = self.cur;
        self.cur = self.cur.saturating_add(self.step);
        if self.cur == v {
            self.stop = v;
        }
        Some(v)
    }
}

impl Stream for Range {
    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        Ok(self.advance().map(|v| vec![Tensor::scalar(v)]))
    }

    fn save(&mut self) -> Result<NodeState, Diagnostic> {
        Ok(NodeState::Range {
            cur: self.cur,
            stop: self.stop,
        })
    }

    fn next_block(&mut self, max: usize) -> Option<Chunk> {
        let (cur, stop, step) = (
            i128::from(self.cur),
            i128::from(self.stop),
            i128::from(self.step),
        );
        // How many values are left, in exact arithmetic (what `advance` would yield).
        let left = match step {
            0 => 0,
            s if s > 0 && cur < stop => (stop - cur + s - 1) / s,
            s if s < 0 && cur > stop => (cur - stop - s - 1) / -s,
            _ => 0,
        };
        let values: Vec<i64> = if step == 0 {
            // Never traced (`range` rejects a zero step); keep `advance`'s behaviour.
            std::iter::from_fn(|| self.advance()).take(max).collect()
        } else {
            let n = left.min(max as i128);
            // Every value lies between `cur` and `stop`, so it fits in an i64, and wrapping
            // i64 arithmetic (which vectorizes) gives it exactly.
            let (first, stride) = (self.cur, self.step);
            let values = if stride == 1 {
                (0..n as i64).map(|k| first.wrapping_add(k)).collect()
            } else {
                // A 64-bit multiply per value does not vectorize here; a running sum is
                // the same value in wrapping arithmetic.
                let mut v = first;
                (0..n as i64)
                    .map(|_| {
                        let x = v;
                        v = v.wrapping_add(stride);
                        x
                    })
                    .collect()
            };
            let next = cur + n * step;
            self.cur = next.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
            if n == left {
                self.stop = self.cur;
            }
            values
        };
        let rows = values.len();
        (rows > 0).then(|| {
            Chunk::ok(Block::Stacked {
                leaves: vec![Tensor::from_vec(&[rows], values).expect("one value per row")],
                rows,
            })
        })
    }
}

/// Rows of a CSV file, read one line at a time.
pub(super) struct Csv {
    pub(super) rows: pipec_tensor::io::CsvRows,
    pub(super) path: PathBuf,
    pub(super) span: Span,
    /// Rows delivered.
    pub(super) read: u64,
}

impl Stream for Csv {
    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        match self.rows.next_row() {
            Ok(Some(t)) => {
                self.read += 1;
                Ok(Some(vec![t]))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(csv_error(e, &self.path, self.span)),
        }
    }

    fn save(&mut self) -> Result<NodeState, Diagnostic> {
        Ok(NodeState::Csv { rows: self.read })
    }
}

/// `read_lines`: one `str[]` element per line of the files, in order.
pub(super) struct Lines {
    pub(super) reader: pipec_tensor::io::LineReader,
    pub(super) span: Span,
    /// Lines delivered.
    pub(super) read: u64,
}

impl Stream for Lines {
    fn save(&mut self) -> Result<NodeState, Diagnostic> {
        Ok(NodeState::Lines { rows: self.read })
    }

    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        match self.reader.next_line() {
            Ok(l) => {
                self.read += u64::from(l.is_some());
                Ok(l.map(|b| vec![Tensor::scalar(b)]))
            }
            Err((path, e)) => {
                let code = match e {
                    pipec_tensor::io::IoError::OverMemoryLimit { .. } => Code::MemoryLimit,
                    _ => Code::FileUnreadable,
                };
                Err(
                    Diagnostic::error(code, format!("cannot read `{}`: {e}", path.display()))
                        .with_label(self.span, "lines read here"),
                )
            }
        }
    }
}

/// A CSV problem at run time: a bad cell or ragged row is E0604 naming file, line, column and cell.
pub(super) fn csv_error(
    e: pipec_tensor::io::IoError,
    path: &std::path::Path,
    span: Span,
) -> Diagnostic {
    match e {
        pipec_tensor::io::IoError::Csv { line, column, message, .. } => Diagnostic::error(
            Code::BadCsvCell,
            format!("`{}`, line {line}, column {column}: {message}", path.display()),
        )
        .with_label(span, "rows read here")
        .with_help("fix the cell, or filter the file first; every cell must be a number of the dtype given to `read_csv`"),
        pipec_tensor::io::IoError::Io(_) => {
            Diagnostic::error(Code::FileUnreadable, format!("cannot read `{}`: {e}", path.display())).with_label(span, "read here")
        }
        other => Diagnostic::error(Code::BadCsvCell, format!("cannot read `{}`: {other}", path.display())).with_label(span, "read here"),
    }
}
