//! Source streams: `range`, `from_tensor_slices`, `from_tensors`, `read_csv` and
//! `read_lines` (the record formats are `crate::records`). Each knows its position exactly,
//! so a saved state seeks instead of replaying.

use super::base::Stream;
use crate::Element;
use crate::block::{Block, Chunk, InPlace, Later, Pull};
use crate::state::NodeState;
use pipec_diag::{Code, Diagnostic, Span};
use pipec_tensor::Tensor;
use pipec_tensor::io::FileRows;
use std::path::PathBuf;
use std::sync::Arc;

/// One component of `from_tensor_slices`: an array in memory, or the rows of an array file,
/// read as blocks are pulled (see [`FileRows`]).
#[derive(Clone, Debug)]
pub(crate) enum Column {
    /// An array in memory (a constant, or a file whose layout needed converting).
    Memory(Tensor),
    /// An array file's rows, and the path to name in errors.
    File(Arc<FileRows>, PathBuf),
}

impl Column {
    /// The array's shape (rows first).
    pub(crate) fn shape(&self) -> &[usize] {
        match self {
            Column::Memory(t) => t.shape(),
            Column::File(f, _) => f.shape(),
        }
    }

    /// The element dtype.
    pub(crate) fn dtype(&self) -> pipec_tensor::DType {
        match self {
            Column::Memory(t) => t.dtype(),
            Column::File(f, _) => f.dtype(),
        }
    }

    /// Bytes of one row.
    fn row_bytes(&self) -> usize {
        match self {
            Column::Memory(t) => {
                let rows = t.shape().first().copied().unwrap_or(1).max(1);
                t.nbytes() / rows
            }
            Column::File(f, _) => f.row_bytes(),
        }
    }

    /// Rows `start..end`: a view of an array in memory, or read from the file.
    fn rows(&self, start: usize, end: usize, span: Span) -> Result<Tensor, Diagnostic> {
        match self {
            Column::Memory(t) => Ok(t.slice_axis0(start, end)),
            Column::File(f, path) => f.read(start, end).map_err(|e| file_error(e, path, span)),
        }
    }

    /// The whole array in memory (for access in any order: `global_shuffle`), read once.
    pub(crate) fn whole(&self, span: Span) -> Result<Tensor, Diagnostic> {
        match self {
            Column::Memory(t) => Ok(t.clone()),
            Column::File(f, path) => f.whole().map_err(|e| file_error(e, path, span)),
        }
    }
}

/// A source file that cannot be read at run time, with the code for why.
pub(crate) fn file_error(
    e: pipec_tensor::io::IoError,
    path: &std::path::Path,
    span: Span,
) -> Diagnostic {
    let code = match e {
        pipec_tensor::io::IoError::Io(_) => Code::FileUnreadable,
        pipec_tensor::io::IoError::OverMemoryLimit { .. } => Code::MemoryLimit,
        _ => Code::BadArrayFile,
    };
    let d = Diagnostic::error(code, format!("cannot read `{}`: {e}", path.display()))
        .with_label(span, "read here");
    if code == Code::MemoryLimit {
        return d.with_help("raise `--max-memory`, or split the array into smaller files");
    }
    d
}

/// Rows `start..end` of every column, stacked; a read that fails is the chunk's error.
fn read_rows(comps: &[Column], start: usize, end: usize, span: Span) -> Chunk {
    match comps.iter().map(|c| c.rows(start, end, span)).collect() {
        Ok(leaves) => Chunk::ok(Block::Stacked {
            leaves,
            rows: end - start,
        }),
        Err(d) => Chunk {
            block: Block::Rows(Vec::new()),
            error: Some(d),
        },
    }
}

/// Bytes a single-element pull of a file-backed [`Slices`] reads at once.
const ROWS_READ_BYTES: usize = 64 << 10;

/// `from_tensor_slices`: row `next` of every component, up to `n` rows.
pub(super) struct Slices {
    comps: Arc<[Column]>,
    next: usize,
    n: usize,
    span: Span,
    /// Whether a component is read from its file (blocks are then made on the lanes).
    from_file: bool,
    /// Rows read ahead for single-element pulls: the first row's index and the leaves.
    buffered: Option<(usize, Vec<Tensor>)>,
}

impl Slices {
    /// The rows of `comps` from row `next` on; `None` past the last row.
    pub(super) fn at(comps: Arc<[Column]>, next: usize, span: Span) -> Option<Slices> {
        let n = comps.first().map_or(0, |c| c.shape()[0]);
        let from_file = comps.iter().any(|c| matches!(c, Column::File(..)));
        (next <= n).then_some(Slices {
            comps,
            next,
            n,
            span,
            from_file,
            buffered: None,
        })
    }

    /// Takes the next `max` rows' positions.
    fn take(&mut self, max: usize) -> Option<(usize, usize)> {
        if self.next >= self.n {
            return None;
        }
        let (start, end) = (self.next, self.n.min(self.next.saturating_add(max)));
        self.next = end;
        self.buffered = None;
        Some((start, end))
    }
}

impl Stream for Slices {
    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        if self.next >= self.n {
            return Ok(None);
        }
        let i = self.next;
        if !self.from_file {
            self.next += 1;
            let row = self.comps.iter().filter_map(|c| match c {
                Column::Memory(t) => Some(t.index_axis0(i)),
                Column::File(..) => None,
            });
            return Ok(Some(row.collect()));
        }
        // One row per read would be a system call per element: read a block's worth.
        let fresh = !matches!(&self.buffered, Some((first, leaves))
            if i >= *first && leaves.first().is_some_and(|t| i < first + t.shape()[0]));
        if fresh {
            let row_bytes: usize = self.comps.iter().map(Column::row_bytes).sum();
            let rows = (ROWS_READ_BYTES / row_bytes.max(1)).max(1);
            let end = self.n.min(i.saturating_add(rows));
            let leaves = self
                .comps
                .iter()
                .map(|c| c.rows(i, end, self.span))
                .collect::<Result<Vec<_>, _>>()?;
            self.buffered = Some((i, leaves));
        }
        self.next += 1;
        let (first, leaves) = self.buffered.as_ref().expect("filled above");
        Ok(Some(
            leaves.iter().map(|t| t.index_axis0(i - first)).collect(),
        ))
    }

    fn save(&mut self) -> Result<NodeState, Diagnostic> {
        Ok(NodeState::Slices {
            next: self.next as u64,
        })
    }

    fn next_block(&mut self, max: usize) -> Option<Chunk> {
        let (start, end) = self.take(max)?;
        Some(read_rows(&self.comps, start, end, self.span))
    }

    fn next_pull(&mut self, max: usize) -> Option<Pull> {
        if !self.from_file {
            return self.next_block(max).map(Pull::Now);
        }
        let (start, end) = self.take(max)?;
        let rows = end - start;
        let lead = match self.comps.first().map(Column::shape) {
            Some([_, second, ..]) => (rows * second) as u64,
            _ => rows as u64,
        };
        let bytes = rows * self.comps.iter().map(Column::row_bytes).sum::<usize>();
        let files: Option<Vec<Arc<FileRows>>> = self
            .comps
            .iter()
            .map(|c| match c {
                Column::File(f, _) => Some(f.clone()),
                Column::Memory(_) => None,
            })
            .collect();
        let (comps, span) = (self.comps.clone(), self.span);
        Some(Pull::Later(Later {
            rows,
            lead,
            bytes,
            make: Box::new(move || read_rows(&comps, start, end, span)),
            in_place: files.map(|f| InPlace::rows(f.into_iter(), start..end)),
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
        if self.step == 0 {
            // Never traced (`range` rejects a zero step); keep `advance`'s behaviour.
            let values: Vec<i64> = std::iter::from_fn(|| self.advance()).take(max).collect();
            return (!values.is_empty()).then(|| arange(values[0], 0, values.len()));
        }
        let (first, n) = self.take(max)?;
        Some(arange(first, self.step, n))
    }

    fn next_pull(&mut self, max: usize) -> Option<Pull> {
        if self.step == 0 {
            return self.next_block(max).map(Pull::Now);
        }
        let (first, rows) = self.take(max)?;
        let step = self.step;
        Some(Pull::Later(Later {
            rows,
            lead: rows as u64,
            bytes: rows * std::mem::size_of::<i64>(),
            make: Box::new(move || arange(first, step, rows)),
            in_place: None,
        }))
    }
}

impl Range {
    /// Takes the next (at most `max`) values of a non-zero step: the first and how many.
    fn take(&mut self, max: usize) -> Option<(i64, usize)> {
        let (cur, stop, step) = (
            i128::from(self.cur),
            i128::from(self.stop),
            i128::from(self.step),
        );
        // How many values are left, in exact arithmetic (what `advance` would yield).
        let left = match step {
            s if s > 0 && cur < stop => (stop - cur + s - 1) / s,
            s if s < 0 && cur > stop => (cur - stop - s - 1) / -s,
            _ => 0,
        };
        let n = left.min(max as i128);
        let first = self.cur;
        let next = cur + n * step;
        self.cur = next.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
        if n == left {
            self.stop = self.cur;
        }
        (n > 0).then_some((first, n as usize))
    }
}

/// `n` values from `first` by `stride`, as one block. Every value lies between the range's
/// bounds, so it fits in an i64, and wrapping arithmetic (which vectorizes) gives it exactly.
fn arange(first: i64, stride: i64, n: usize) -> Chunk {
    let values: Vec<i64> = if stride == 1 {
        (0..n as i64).map(|k| first.wrapping_add(k)).collect()
    } else {
        // A 64-bit multiply per value does not vectorize here; a running sum is the same
        // value in wrapping arithmetic.
        let mut v = first;
        (0..n)
            .map(|_| {
                let x = v;
                v = v.wrapping_add(stride);
                x
            })
            .collect()
    };
    Chunk::ok(Block::Stacked {
        leaves: vec![Tensor::from_vec(&[n], values).expect("one value per row")],
        rows: n,
    })
}

/// Rows of a CSV file: the consumer finds the rows' lines, a lane parses their cells.
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

    fn next_block(&mut self, max: usize) -> Option<Chunk> {
        self.next_pull(max).map(Pull::now)
    }

    fn next_pull(&mut self, max: usize) -> Option<Pull> {
        match self.rows.next_rows(max) {
            Ok(Some(block)) => {
                let rows = block.rows;
                self.read += rows as u64;
                let (path, span) = (self.path.clone(), self.span);
                Some(Pull::Later(Later {
                    rows,
                    lead: rows as u64,
                    bytes: block.text_len(),
                    make: Box::new(move || csv_rows(&block, &path, span)),
                    in_place: None,
                }))
            }
            Ok(None) => None,
            Err(e) => Some(Pull::Now(Chunk {
                block: Block::Rows(Vec::new()),
                error: Some(csv_error(e, &self.path, self.span)),
            })),
        }
    }
}

/// A CSV block's rows parsed and stacked, then the error of its first bad line.
fn csv_rows(block: &pipec_tensor::io::CsvBlock, path: &std::path::Path, span: Span) -> Chunk {
    let (rows, error) = block.parse();
    let n = rows.len();
    let block = match pipec_tensor::kernels::stack(&rows, 0) {
        Ok(t) if n > 0 => Block::Stacked {
            leaves: vec![t],
            rows: n,
        },
        // Rows of one file have one shape; should stacking fail all the same, keep them apart.
        _ => Block::Rows(rows.into_iter().map(|r| vec![r]).collect()),
    };
    Chunk {
        block,
        error: error.map(|e| csv_error(e, path, span)),
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
            Err((path, e)) => Err(lines_error(&path, e, self.span)),
        }
    }

    fn next_block(&mut self, max: usize) -> Option<Chunk> {
        self.next_pull(max).map(Pull::now)
    }

    /// The consumer only finds where `max` lines end; the lane that takes the block splits
    /// them into a `str[n]` column (copying each line), which is most of the reader's work.
    fn next_pull(&mut self, max: usize) -> Option<Pull> {
        match self.reader.next_lines(max) {
            Ok(Some(block)) => {
                let rows = block.lines;
                self.read += rows as u64;
                Some(Pull::Later(Later {
                    rows,
                    lead: rows as u64,
                    bytes: block.text.len(),
                    make: Box::new(move || str_column(block.split())),
                    in_place: None,
                }))
            }
            Ok(None) => None,
            Err((path, e)) => Some(Pull::Now(Chunk {
                block: Block::Rows(Vec::new()),
                error: Some(lines_error(&path, e, self.span)),
            })),
        }
    }
}

/// Strings as one `str[n]` block.
fn str_column(values: Vec<pipec_tensor::Bytes>) -> Chunk {
    let rows = values.len();
    match Tensor::from_vec(&[rows], values) {
        Some(t) if rows > 0 => Chunk::ok(Block::Stacked {
            leaves: vec![t],
            rows,
        }),
        _ => Chunk::ok(Block::Rows(Vec::new())),
    }
}

/// A text file `read_lines` cannot read: E0602, or E0701 for a line over the memory limit.
fn lines_error(path: &std::path::Path, e: pipec_tensor::io::IoError, span: Span) -> Diagnostic {
    let code = match e {
        pipec_tensor::io::IoError::OverMemoryLimit { .. } => Code::MemoryLimit,
        _ => Code::FileUnreadable,
    };
    Diagnostic::error(code, format!("cannot read `{}`: {e}", path.display()))
        .with_label(span, "lines read here")
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
