//! Parquet tables through arrow-rs: the schema (read at compile time) as pipec types, rows
//! read lazily a batch at a time (row group by row group) as column slices, and a writer of
//! one row per element. Tensors have no nulls: a null is an error naming its row and column.

use crate::RecordError;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float16Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type,
    UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use bytes::Bytes;
use ndarray::{ArcArray, ArrayD, Axis, IxDyn, Slice};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use pipec_tensor::{DType, Tensor};
use std::fs::File;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;

/// Rows decoded per step: a bounded amount of memory however large the row groups are.
const READ_ROWS: usize = 1024;

/// One column as pipec sees it: name, element type and per-row shape (a fixed-size list
/// column of `n` values has shape `[n]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnInfo {
    /// The column's name.
    pub name: String,
    /// Its element type.
    pub elem: DType,
    /// The shape of one row's value.
    pub shape: Vec<usize>,
}

/// A Parquet file's schema and row count.
#[derive(Debug, Clone, PartialEq)]
pub struct TableInfo {
    /// Every top-level column, in file order (`Err` for a column of a type pipec does not
    /// read: its name and Arrow type, reported only if that column is selected).
    pub columns: Vec<Result<ColumnInfo, (String, String)>>,
    /// The number of rows.
    pub rows: u64,
}

impl TableInfo {
    /// The columns named (all, in file order, when `names` is `None`), in the order asked.
    pub fn select(
        &self,
        file: &str,
        names: Option<&[String]>,
    ) -> Result<Vec<(usize, ColumnInfo)>, RecordError> {
        let name_of = |c: &Result<ColumnInfo, (String, String)>| match c {
            Ok(c) => c.name.clone(),
            Err((n, _)) => n.clone(),
        };
        let picked: Vec<usize> = match names {
            None => (0..self.columns.len()).collect(),
            Some(names) => names
                .iter()
                .map(|n| {
                    self.columns
                        .iter()
                        .position(|c| &name_of(c) == n)
                        .ok_or_else(|| RecordError::MissingColumn {
                            file: file.to_string(),
                            column: n.clone(),
                            available: self
                                .columns
                                .iter()
                                .map(name_of)
                                .collect::<Vec<_>>()
                                .join(", "),
                        })
                })
                .collect::<Result<_, _>>()?,
        };
        picked
            .into_iter()
            .map(|i| match &self.columns[i] {
                Ok(c) => Ok((i, c.clone())),
                Err((column, ty)) => Err(RecordError::UnsupportedColumn {
                    file: file.to_string(),
                    column: column.clone(),
                    ty: ty.clone(),
                }),
            })
            .collect()
    }
}

fn perr(file: &str, e: impl std::fmt::Display) -> RecordError {
    RecordError::Parquet {
        file: file.to_string(),
        what: e.to_string(),
    }
}

thread_local! {
    /// Set while this thread runs arrow-rs inside [`guarded`].
    static GUARDED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Keeps the panic hook quiet for panics [`guarded`] turns into errors: the user gets the
/// error naming the file, not a panic message and backtrace besides (and a fuzzer's hook,
/// which aborts on any panic, sees only the panics nobody catches). Other panics go to the
/// hook that was installed before, unchanged.
fn quiet_guarded_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !GUARDED.with(std::cell::Cell::get) {
                previous(info);
            }
        }));
    });
}

/// Runs arrow-rs on untrusted bytes: a panic inside it (a malformed file it does not
/// check) becomes an error about the file, never a crash of pipec.
fn guarded<T>(file: &str, f: impl FnOnce() -> Result<T, RecordError>) -> Result<T, RecordError> {
    quiet_guarded_panics();
    let was = GUARDED.with(|g| g.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(was));
    match result {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(perr(
                file,
                format!("the file is malformed (the Parquet reader failed: {msg})"),
            ))
        }
    }
}

/// The pipec element type and row shape of an Arrow type, if pipec reads it.
fn elem_of(dt: &DataType) -> Option<(DType, Vec<usize>)> {
    let num = |d| Some((d, Vec::new()));
    match dt {
        DataType::Boolean => num(DType::Bool),
        DataType::Int8 => num(DType::I8),
        DataType::Int16 => num(DType::I16),
        DataType::Int32 => num(DType::I32),
        DataType::Int64 => num(DType::I64),
        DataType::UInt8 => num(DType::U8),
        DataType::UInt16 => num(DType::U16),
        DataType::UInt32 => num(DType::U32),
        DataType::UInt64 => num(DType::U64),
        DataType::Float16 => num(DType::F16),
        DataType::Float32 => num(DType::F32),
        DataType::Float64 => num(DType::F64),
        DataType::Utf8
        | DataType::LargeUtf8
        | DataType::Utf8View
        | DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView => Some((DType::Str, Vec::new())),
        DataType::FixedSizeList(field, n) => {
            let (elem, mut shape) = elem_of(field.data_type())?;
            shape.insert(0, usize::try_from(*n).ok()?);
            Some((elem, shape))
        }
        _ => None,
    }
}

fn table_info(schema: &Schema, rows: i64) -> TableInfo {
    let columns = schema
        .fields()
        .iter()
        .map(|f| match elem_of(f.data_type()) {
            Some((elem, shape)) => Ok(ColumnInfo {
                name: f.name().clone(),
                elem,
                shape,
            }),
            None => Err((f.name().clone(), f.data_type().to_string())),
        })
        .collect();
    TableInfo {
        columns,
        rows: u64::try_from(rows).unwrap_or(0),
    }
}

/// Reads a Parquet file's schema (the footer only).
pub fn read_info(path: &Path) -> Result<TableInfo, RecordError> {
    let file = path.display().to_string();
    let f = File::open(path).map_err(|e| RecordError::Io {
        file: file.clone(),
        source: e,
    })?;
    guarded(&file, || {
        let b = ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| perr(&file, e))?;
        Ok(table_info(
            b.schema(),
            b.metadata().file_metadata().num_rows(),
        ))
    })
}

/// Reads rows of the chosen columns, a batch at a time, as column slices.
pub struct ParquetRows {
    file: String,
    columns: Vec<ColumnInfo>,
    /// Where each chosen column sits among the projected (file-order) columns.
    positions: Vec<usize>,
    reader: Option<ParquetRecordBatchReader>,
    /// The decoded batch being handed out, and how many of its rows are gone.
    pending: Option<(Vec<Tensor>, usize)>,
    /// Rows read from the file before `pending`'s first row (for null errors).
    row: u64,
    /// A null found in the batch being handed out: reported once the rows before it left.
    failed: Option<RecordError>,
}

impl ParquetRows {
    /// Opens `path` for reading the columns named (all when `None`), in the order given.
    pub fn open(path: &Path, names: Option<&[String]>) -> Result<ParquetRows, RecordError> {
        let file = path.display().to_string();
        let f = File::open(path).map_err(|e| RecordError::Io {
            file: file.clone(),
            source: e,
        })?;
        ParquetRows::from_reader(f, file, names, 0)
    }

    /// Opens `path` at row `row` (0-based, in the file), as a resumed run does: the row
    /// groups before it are not read at all, and the rows before it in its group are
    /// skipped by the reader's offset (decoding only the pages they share with later rows).
    /// A row past the file's end is an error.
    pub fn open_at(
        path: &Path,
        names: Option<&[String]>,
        row: u64,
    ) -> Result<ParquetRows, RecordError> {
        let file = path.display().to_string();
        let f = File::open(path).map_err(|e| RecordError::Io {
            file: file.clone(),
            source: e,
        })?;
        ParquetRows::from_reader(f, file, names, row)
    }

    /// Reads from bytes in memory (what the fuzz target calls); `file` names it in errors.
    pub fn from_bytes(
        data: Bytes,
        file: String,
        names: Option<&[String]>,
    ) -> Result<ParquetRows, RecordError> {
        ParquetRows::from_reader(data, file, names, 0)
    }

    fn from_reader<R: parquet::file::reader::ChunkReader + 'static>(
        r: R,
        file: String,
        names: Option<&[String]>,
        start: u64,
    ) -> Result<ParquetRows, RecordError> {
        guarded(&file.clone(), || {
            let b = ParquetRecordBatchReaderBuilder::try_new(r).map_err(|e| perr(&file, e))?;
            let info = table_info(b.schema(), b.metadata().file_metadata().num_rows());
            let chosen = info.select(&file, names)?;
            let mut in_file: Vec<usize> = chosen.iter().map(|(i, _)| *i).collect();
            in_file.sort_unstable();
            in_file.dedup();
            let positions = chosen
                .iter()
                .map(|(i, _)| in_file.iter().position(|j| j == i).unwrap_or(0))
                .collect();
            let mask = ProjectionMask::roots(b.parquet_schema(), in_file);
            let mut b = b.with_projection(mask).with_batch_size(READ_ROWS);
            if start > 0 {
                // The first row group holding row `start`, and how far into it that row is.
                let groups: Vec<u64> = b
                    .metadata()
                    .row_groups()
                    .iter()
                    .map(|g| u64::try_from(g.num_rows()).unwrap_or(0))
                    .collect();
                let mut first = 0u64;
                let mut g = 0;
                while g < groups.len() {
                    let n = groups[g];
                    if start < first + n {
                        break;
                    }
                    first += n;
                    g += 1;
                }
                if g == groups.len() && start > first {
                    return Err(perr(
                        &file,
                        format!(
                            "the saved state resumes at row {start}, but the file has {first} rows"
                        ),
                    ));
                }
                b = b
                    .with_row_groups((g..groups.len()).collect())
                    .with_offset(usize::try_from(start - first).unwrap_or(usize::MAX));
            }
            let reader = b.build().map_err(|e| perr(&file, e))?;
            Ok(ParquetRows {
                file,
                columns: chosen.into_iter().map(|(_, c)| c).collect(),
                positions,
                reader: Some(reader),
                pending: None,
                row: start,
                failed: None,
            })
        })
    }

    /// The file row (0-based) of the next row handed out: the rows delivered so far, where a
    /// resumed run opens the file ([`ParquetRows::open_at`]).
    pub fn position(&self) -> u64 {
        self.row + self.pending.as_ref().map_or(0, |(_, used)| *used as u64)
    }

    /// The chosen columns, in the order asked.
    pub fn columns(&self) -> &[ColumnInfo] {
        &self.columns
    }

    /// Up to `max` (≥ 1) next rows, as one value per column with a leading dim of rows;
    /// `None` at the end. After an error the reader returns `None`.
    pub fn next_rows(&mut self, max: usize) -> Result<Option<Vec<Tensor>>, RecordError> {
        let max = max.max(1);
        loop {
            if let Some((values, used)) = &mut self.pending {
                let n = values.first().map_or(0, |v| v.shape()[0]);
                if *used < n {
                    let end = (*used + max).min(n);
                    let out = values.iter().map(|v| slice_rows(v, *used, end)).collect();
                    *used = end;
                    return Ok(Some(out));
                }
                self.row += n as u64;
                self.pending = None;
            }
            if let Some(e) = self.failed.take() {
                self.reader = None;
                return Err(e);
            }
            let Some(reader) = &mut self.reader else {
                return Ok(None);
            };
            let file = self.file.clone();
            let next = guarded(&file, || match reader.next() {
                None => Ok(None),
                Some(Err(e)) => Err(perr(&file, e)),
                Some(Ok(batch)) => Ok(Some(batch)),
            });
            let batch = match next {
                Ok(Some(b)) => b,
                Ok(None) => {
                    self.reader = None;
                    return Ok(None);
                }
                Err(e) => {
                    self.reader = None;
                    return Err(e);
                }
            };
            // Rows before a null are delivered; the null is reported after them.
            let batch = match self.null_in(&batch) {
                Some((0, e)) => {
                    self.reader = None;
                    return Err(e);
                }
                Some((i, e)) => {
                    self.failed = Some(e);
                    batch.slice(0, i)
                }
                None => batch,
            };
            match self.convert(&batch) {
                Ok(values) if batch.num_rows() > 0 => self.pending = Some((values, 0)),
                Ok(_) => {}
                Err(e) => {
                    self.reader = None;
                    return Err(e);
                }
            }
        }
    }

    /// The first null in row order (then column order), with its row in the batch.
    fn null_in(&self, batch: &RecordBatch) -> Option<(usize, RecordError)> {
        let (i, col) = self
            .columns
            .iter()
            .zip(&self.positions)
            .filter_map(|(col, &p)| first_null(batch.column(p).as_ref()).map(|i| (i, col)))
            .min_by_key(|(i, _)| *i)?;
        Some((
            i,
            RecordError::Null {
                file: self.file.clone(),
                row: self.row + i as u64,
                column: col.name.clone(),
            },
        ))
    }

    fn convert(&self, batch: &RecordBatch) -> Result<Vec<Tensor>, RecordError> {
        self.columns
            .iter()
            .zip(&self.positions)
            .map(|(col, &p)| {
                to_value(batch.column(p), col, batch.num_rows()).ok_or_else(|| {
                    perr(
                        &self.file,
                        format!("column `{}` did not decode as {}", col.name, col.elem),
                    )
                })
            })
            .collect()
    }
}

fn slice_rows(v: &Tensor, start: usize, end: usize) -> Tensor {
    let s = Slice::from(start..end);
    pipec_tensor::for_each_dtype!(slice_tensor; v, s)
}

macro_rules! slice_tensor {
    (($t:ident, $s:ident) $($v:ident $class:ident $ty:ty;)*) => {
        match $t {
            $(Tensor::$v(a) => {
                let mut a = a.clone();
                a.slice_axis_inplace(Axis(0), $s);
                Tensor::$v(a)
            })*
        }
    };
}
use slice_tensor;

/// The row of the first null in `array` (or in the values of its lists), if any.
fn first_null(array: &dyn Array) -> Option<usize> {
    let own = array
        .logical_nulls()
        .and_then(|n| n.iter().position(|valid| !valid));
    let child = match array.data_type() {
        DataType::FixedSizeList(_, n) => {
            let list = array.as_fixed_size_list();
            first_null(list.values().as_ref()).map(|i| i / (*n).max(1) as usize)
        }
        _ => None,
    };
    match (own, child) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The leaf values of an array (through its fixed-size lists), as a pipec value of shape
/// `[rows, col.shape...]`.
fn to_value(array: &ArrayRef, col: &ColumnInfo, rows: usize) -> Option<Tensor> {
    let mut leaf = array.clone();
    while let DataType::FixedSizeList(..) = leaf.data_type() {
        leaf = leaf.as_fixed_size_list().values().clone();
    }
    let mut shape = vec![rows];
    shape.extend(&col.shape);
    let shape = IxDyn(&shape);
    macro_rules! prim {
        ($ty:ty, $v:ident) => {{
            let values = leaf.as_primitive_opt::<$ty>()?.values().to_vec();
            (Tensor::$v(ArrayD::from_shape_vec(shape, values).ok()?.into()))
        }};
    }
    let v = match leaf.data_type() {
        DataType::Boolean => {
            let b = leaf.as_boolean_opt()?;
            let values: Vec<bool> = (0..b.len()).map(|i| b.value(i)).collect();
            Tensor::Bool(ArrayD::from_shape_vec(shape, values).ok()?.into())
        }
        DataType::Int8 => prim!(Int8Type, I8),
        DataType::Int16 => prim!(Int16Type, I16),
        DataType::Int32 => prim!(Int32Type, I32),
        DataType::Int64 => prim!(Int64Type, I64),
        DataType::UInt8 => prim!(UInt8Type, U8),
        DataType::UInt16 => prim!(UInt16Type, U16),
        DataType::UInt32 => prim!(UInt32Type, U32),
        DataType::UInt64 => prim!(UInt64Type, U64),
        DataType::Float16 => prim!(Float16Type, F16),
        DataType::Float32 => prim!(Float32Type, F32),
        DataType::Float64 => prim!(Float64Type, F64),
        DataType::Utf8 => strs(leaf.as_string_opt::<i32>()?.iter(), shape)?,
        DataType::LargeUtf8 => strs(leaf.as_string_opt::<i64>()?.iter(), shape)?,
        DataType::Utf8View => strs(leaf.as_string_view_opt()?.iter(), shape)?,
        DataType::Binary => strs(leaf.as_binary_opt::<i32>()?.iter(), shape)?,
        DataType::LargeBinary => strs(leaf.as_binary_opt::<i64>()?.iter(), shape)?,
        DataType::BinaryView => strs(leaf.as_binary_view_opt()?.iter(), shape)?,
        _ => return None,
    };
    Some(v)
}

fn strs<'a, S: AsRef<[u8]> + 'a + ?Sized>(
    values: impl Iterator<Item = Option<&'a S>>,
    shape: IxDyn,
) -> Option<Tensor> {
    let v: Vec<Bytes> = values
        .map(|s| s.map_or_else(Bytes::new, |s| Bytes::copy_from_slice(s.as_ref())))
        .collect();
    Some(Tensor::Str(ArrayD::from_shape_vec(shape, v).ok()?.into()))
}

/// The Arrow type a column of `elem` values of row shape `shape` is written as.
fn arrow_type(elem: DType, shape: &[usize]) -> Result<DataType, RecordError> {
    let mut dt = match elem {
        DType::Str => DataType::Binary,
        DType::Bool => DataType::Boolean,
        DType::I8 => DataType::Int8,
        DType::U8 => DataType::UInt8,
        DType::I16 => DataType::Int16,
        DType::U16 => DataType::UInt16,
        DType::I32 => DataType::Int32,
        DType::U32 => DataType::UInt32,
        DType::I64 => DataType::Int64,
        DType::U64 => DataType::UInt64,
        DType::F16 => DataType::Float16,
        DType::F32 => DataType::Float32,
        DType::F64 => DataType::Float64,
        DType::BF16 => {
            return Err(RecordError::Output(
                "Parquet has no bf16 column type; cast to f32 first".into(),
            ));
        }
    };
    for &n in shape.iter().rev() {
        let n = i32::try_from(n).map_err(|_| {
            RecordError::Output(format!("a dimension of {n} is too large for Parquet"))
        })?;
        dt = DataType::FixedSizeList(Arc::new(Field::new("item", dt, false)), n);
    }
    Ok(dt)
}

/// Writes elements as rows of a Parquet file (snappy-compressed, as pyarrow writes); a
/// tensor of shape `[a, b]` is a fixed-size list of `a` fixed-size lists of `b`.
pub struct ParquetWriter<W: std::io::Write + Send> {
    writer: parquet::arrow::ArrowWriter<W>,
    schema: Arc<Schema>,
    columns: Vec<ColumnInfo>,
}

impl<W: std::io::Write + Send> ParquetWriter<W> {
    /// A writer of rows with these columns.
    pub fn new(out: W, columns: Vec<ColumnInfo>) -> Result<ParquetWriter<W>, RecordError> {
        let fields = columns
            .iter()
            .map(|c| Ok(Field::new(&c.name, arrow_type(c.elem, &c.shape)?, false)))
            .collect::<Result<Vec<_>, RecordError>>()?;
        let schema = Arc::new(Schema::new(fields));
        let props = parquet::file::properties::WriterProperties::builder()
            .set_compression(parquet::basic::Compression::SNAPPY)
            .build();
        let writer = parquet::arrow::ArrowWriter::try_new(out, schema.clone(), Some(props))
            .map_err(|e| RecordError::Output(e.to_string()))?;
        Ok(ParquetWriter {
            writer,
            schema,
            columns,
        })
    }

    /// Writes rows: one value per column, each with a leading dim of the row count.
    pub fn write_rows(&mut self, values: &[Tensor]) -> Result<(), RecordError> {
        let mut arrays = Vec::with_capacity(values.len());
        for ((v, col), field) in values.iter().zip(&self.columns).zip(self.schema.fields()) {
            if v.shape().get(1..) != Some(&col.shape[..]) {
                return Err(RecordError::Output(format!(
                    "column `{}`: a value of shape {:?} where the first row had {:?}; Parquet columns hold fixed-size lists",
                    col.name,
                    v.shape().get(1..).unwrap_or(&[]),
                    col.shape
                )));
            }
            arrays.push(to_arrow(v, field.data_type()));
        }
        let batch = RecordBatch::try_new(self.schema.clone(), arrays)
            .map_err(|e| RecordError::Output(e.to_string()))?;
        self.writer
            .write(&batch)
            .map_err(|e| RecordError::Output(e.to_string()))
    }

    /// Writes the footer; returns the underlying writer.
    pub fn finish(self) -> Result<W, RecordError> {
        self.writer
            .into_inner()
            .map_err(|e| RecordError::Output(e.to_string()))
    }
}

/// A value of shape `[rows, ...]` as an Arrow array of type `dt` (nested fixed-size lists).
fn to_arrow(v: &Tensor, dt: &DataType) -> ArrayRef {
    use arrow_array::{BinaryArray, BooleanArray, FixedSizeListArray, PrimitiveArray};
    if let DataType::FixedSizeList(field, n) = dt {
        // Flatten one level: `[rows, n, ...]` → `[rows * n, ...]`.
        let inner = reshape_leading(v, *n as usize);
        let values = to_arrow(&inner, field.data_type());
        return Arc::new(FixedSizeListArray::new(field.clone(), *n, values, None));
    }
    macro_rules! prim {
        ($a:expr, $ty:ty) => {
            Arc::new(PrimitiveArray::<$ty>::from_iter_values($a.iter().copied())) as ArrayRef
        };
    }
    match v {
        Tensor::Str(a) => Arc::new(BinaryArray::from_iter_values(a.iter().map(|b| &b[..]))),
        Tensor::Bool(a) => Arc::new(BooleanArray::from_iter(a.iter().map(|b| Some(*b)))),
        Tensor::I8(a) => prim!(a, Int8Type),
        Tensor::U8(a) => prim!(a, UInt8Type),
        Tensor::I16(a) => prim!(a, Int16Type),
        Tensor::U16(a) => prim!(a, UInt16Type),
        Tensor::I32(a) => prim!(a, Int32Type),
        Tensor::U32(a) => prim!(a, UInt32Type),
        Tensor::I64(a) => prim!(a, Int64Type),
        Tensor::U64(a) => prim!(a, UInt64Type),
        Tensor::F16(a) => prim!(a, Float16Type),
        Tensor::F32(a) => prim!(a, Float32Type),
        Tensor::F64(a) => prim!(a, Float64Type),
        // `arrow_type` refused bf16 before any value got here.
        Tensor::BF16(a) => prim!(a.mapv(|x| x.to_f32()), Float32Type),
    }
}

/// Merges the first two dims of `v` (`[rows, n, ...]` → `[rows * n, ...]`).
fn reshape_leading(v: &Tensor, n: usize) -> Tensor {
    let shape = v.shape();
    let mut new: Vec<usize> = vec![shape.first().copied().unwrap_or(0) * n];
    new.extend(shape.iter().skip(2));
    let new = IxDyn(&new);
    pipec_tensor::for_each_dtype!(reshape_tensor; v, new)
}

macro_rules! reshape_tensor {
    (($t:ident, $new:ident) $($v:ident $class:ident $ty:ty;)*) => {
        match $t {
            $(Tensor::$v(a) => Tensor::$v(
                a.to_owned()
                    .into_shape_with_order($new.clone())
                    .map(ArcArray::from)
                    .unwrap_or_else(|_| a.clone()),
            ),)*
        }
    };
}
use reshape_tensor;

#[cfg(test)]
mod tests {
    use super::*;

    fn write(cols: Vec<ColumnInfo>, batches: &[Vec<Tensor>]) -> Bytes {
        let mut w = ParquetWriter::new(Vec::new(), cols).unwrap();
        for b in batches {
            w.write_rows(b).unwrap();
        }
        Bytes::from(w.finish().unwrap())
    }

    fn col(name: &str, elem: DType, shape: &[usize]) -> ColumnInfo {
        ColumnInfo {
            name: name.into(),
            elem,
            shape: shape.to_vec(),
        }
    }

    #[test]
    fn round_trip_with_fixed_lists_in_small_slices() {
        let x: ArcArray<f32, IxDyn> =
            ArrayD::from_shape_vec(IxDyn(&[5, 2, 3]), (0..30).map(|i| i as f32).collect())
                .unwrap()
                .into();
        let y: ArcArray<i64, IxDyn> = ArrayD::from_shape_vec(IxDyn(&[5]), vec![1, 2, 3, 4, 5])
            .unwrap()
            .into();
        let s: ArcArray<Bytes, IxDyn> = ArrayD::from_shape_vec(
            IxDyn(&[5]),
            ["a", "", "ccc", "d", "é"]
                .iter()
                .map(|s| Bytes::from(s.as_bytes().to_vec()))
                .collect(),
        )
        .unwrap()
        .into();
        let cols = vec![
            col("x", DType::F32, &[2, 3]),
            col("y", DType::I64, &[]),
            col("s", DType::Str, &[]),
        ];
        let vals = vec![(Tensor::F32(x.clone())), (Tensor::I64(y)), Tensor::Str(s)];
        let bytes = write(cols.clone(), std::slice::from_ref(&vals));
        let names = vec!["s".to_string(), "x".to_string()];
        let mut r = ParquetRows::from_bytes(bytes, "t.parquet".into(), Some(&names)).unwrap();
        assert_eq!(r.columns(), &[cols[2].clone(), cols[0].clone()]);
        let a = r.next_rows(3).unwrap().unwrap();
        let b = r.next_rows(3).unwrap().unwrap();
        assert!(r.next_rows(3).unwrap().is_none());
        assert_eq!(a[1].shape(), &[3, 2, 3]);
        assert_eq!(b[1].shape(), &[2, 2, 3]);
        assert_eq!(a[1], slice_rows(&vals[0], 0, 3));
        assert_eq!(b[0], slice_rows(&vals[2], 3, 5));
    }

    #[test]
    fn open_at_resumes_at_any_row_across_row_groups() {
        // 50 rows in row groups of 7: every start, inside a group, at its edge and at the end.
        let dir = std::env::temp_dir().join(format!("pipec-pq-at-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.parquet");
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let props = parquet::file::properties::WriterProperties::builder()
            .set_max_row_group_row_count(Some(7))
            .build();
        let f = File::create(&path).unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(f, schema.clone(), Some(props)).unwrap();
        let values = arrow_array::Int64Array::from_iter_values(0..50);
        w.write(&RecordBatch::try_new(schema, vec![Arc::new(values)]).unwrap())
            .unwrap();
        w.close().unwrap();
        for start in [0u64, 1, 6, 7, 8, 20, 49, 50] {
            let mut r = ParquetRows::open_at(&path, None, start).unwrap();
            assert_eq!(r.position(), start);
            let mut got = Vec::new();
            while let Some(cols) = r.next_rows(5).unwrap() {
                let Tensor::I64(a) = &cols[0] else { panic!() };
                got.extend(a.iter().copied());
                assert_eq!(r.position(), start + got.len() as u64);
            }
            assert_eq!(got, (start as i64..50).collect::<Vec<_>>(), "from {start}");
        }
        let e = ParquetRows::open_at(&path, None, 51).err().unwrap();
        assert!(e.to_string().contains("has 50 rows"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn missing_column_and_garbage_are_errors() {
        let bytes = write(
            vec![col("y", DType::I8, &[])],
            &[vec![(Tensor::I8(ArcArray::from_elem(IxDyn(&[2]), 1)))]],
        );
        let e = ParquetRows::from_bytes(bytes.clone(), "t".into(), Some(&["z".to_string()]))
            .err()
            .unwrap();
        assert_eq!(e.to_string(), "`t` has no column `z` (it has: y)");
        for cut in [0, 4, bytes.len() / 2, bytes.len() - 1] {
            let r = ParquetRows::from_bytes(bytes.slice(..cut), "t".into(), None);
            assert!(r.is_err(), "cut {cut}");
        }
    }
}
