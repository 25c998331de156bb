//! `--output FILE.tfrecord[.gz]` and `--output FILE.parquet` (and `ds.save` in Python):
//! elements written as `tf.train.Example` records or Parquet rows, streamed.

use pipec_interp::Element;
use pipec_ir::ElemType;
use pipec_records::example::{Flat, encode_example};
use pipec_records::parquet::{ColumnInfo, ParquetWriter};
use pipec_records::{Compression, TfRecordWriter};
use pipec_tensor::{DType, Tensor, kernels};
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

/// Rows gathered before they are written as one Parquet batch.
const PARQUET_ROWS: usize = 1024;

/// A record file format, chosen by the output's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordFormat {
    /// `.tfrecord` (plain) or `.tfrecord.gz` (GZIP): one `tf.train.Example` per element.
    TfRecord(Compression),
    /// `.parquet`: one row per element.
    Parquet,
}

impl RecordFormat {
    /// The record format of a path's name, if it names one.
    pub fn of_path(path: &Path) -> Option<RecordFormat> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        if name.ends_with(".tfrecord.gz") {
            Some(RecordFormat::TfRecord(Compression::Gzip))
        } else if name.ends_with(".tfrecord") {
            Some(RecordFormat::TfRecord(Compression::None))
        } else if name.ends_with(".parquet") {
            Some(RecordFormat::Parquet)
        } else {
            None
        }
    }
}

enum Out {
    Tf(TfRecordWriter<BufWriter<File>>),
    Parquet {
        writer: Option<ParquetWriter<BufWriter<File>>>,
        file: Option<BufWriter<File>>,
        rows: Vec<Element>,
    },
}

/// Writes elements to an open file in a record format; feature or column names are the
/// element's dict keys (nested keys joined by `/`), or `arr_0`, `arr_1`, ... for tuples, as
/// in `.npz` output.
pub struct RecordWriter {
    out: Out,
    names: Vec<String>,
    elem: ElemType,
    count: u64,
}

impl RecordWriter {
    /// A writer of elements of type `elem` into `file`; an error for element types the
    /// format cannot hold.
    pub fn new(file: File, format: RecordFormat, elem: &ElemType) -> Result<RecordWriter, String> {
        let leaves = elem.leaves();
        let names: Vec<String> = if elem.has_dict() {
            elem.leaf_paths()
        } else {
            (0..leaves.len()).map(|k| format!("arr_{k}")).collect()
        };
        if let Some((i, n)) = names
            .iter()
            .enumerate()
            .find(|(i, n)| n.is_empty() || names[..*i].contains(n))
        {
            return Err(format!(
                "the elements `{elem}` give two features or columns the name \"{n}\" (component {i})"
            ));
        }
        if let Some(t) = leaves.iter().find(|t| t.dtype == DType::BF16) {
            return Err(format!(
                "a component is {t}: neither tf.train.Example nor Parquet holds bf16; cast it to f32"
            ));
        }
        let out = match format {
            RecordFormat::TfRecord(c) => Out::Tf(TfRecordWriter::new(BufWriter::new(file), c)),
            RecordFormat::Parquet => Out::Parquet {
                writer: None,
                file: Some(BufWriter::new(file)),
                rows: Vec::new(),
            },
        };
        Ok(RecordWriter {
            out,
            names,
            elem: elem.clone(),
            count: 0,
        })
    }

    /// Writes one element.
    pub fn push(&mut self, e: &Element) -> Result<(), String> {
        let index = self.count;
        self.count += 1;
        match &mut self.out {
            Out::Tf(w) => {
                let mut feats = Vec::with_capacity(e.len());
                for (name, t) in self.names.iter().zip(e) {
                    let flat = flat_of(t)
                        .map_err(|m| format!("element {index}, feature `{name}`: {m}"))?;
                    feats.push((name.clone(), flat));
                }
                w.write_record(&encode_example(feats))
                    .map_err(|e| e.to_string())
            }
            Out::Parquet { rows, .. } => {
                rows.push(e.clone());
                if rows.len() >= PARQUET_ROWS {
                    self.flush_rows()?;
                }
                Ok(())
            }
        }
    }

    /// Writes the gathered Parquet rows as one batch (creating the writer from the first
    /// row's shapes).
    fn flush_rows(&mut self) -> Result<(), String> {
        let Out::Parquet { writer, file, rows } = &mut self.out else {
            return Ok(());
        };
        if rows.is_empty() && writer.is_some() {
            return Ok(());
        }
        if writer.is_none() {
            // Without rows, the shapes the element type knows (`?` as 0).
            let columns = match rows.first() {
                Some(first) => self
                    .names
                    .iter()
                    .zip(first)
                    .map(|(n, t)| ColumnInfo {
                        name: n.clone(),
                        elem: t.dtype(),
                        shape: t.shape().to_vec(),
                    })
                    .collect(),
                None => self
                    .names
                    .iter()
                    .zip(self.elem.leaves())
                    .map(|(n, t)| ColumnInfo {
                        name: n.clone(),
                        elem: t.dtype,
                        shape: t.shape.0.iter().map(|d| d.known().unwrap_or(0)).collect(),
                    })
                    .collect(),
            };
            let f = file.take().ok_or("the Parquet file is gone")?;
            *writer = Some(ParquetWriter::new(f, columns).map_err(|e| e.to_string())?);
        }
        let Some(w) = writer else { return Ok(()) };
        if rows.is_empty() {
            return Ok(());
        }
        let first = self.count - rows.len() as u64;
        let mut cols = Vec::with_capacity(self.names.len());
        for (k, name) in self.names.iter().enumerate() {
            let parts: Vec<Tensor> = rows.iter().map(|r| r[k].clone()).collect();
            let shape0 = parts[0].shape().to_vec();
            if let Some(i) = parts.iter().position(|p| p.shape() != shape0.as_slice()) {
                return Err(format!(
                    "element {}, column `{name}`: shape {:?}, but element {first} has {:?}; a Parquet column holds fixed-size lists (pad with `padded_batch`, or write .jsonl)",
                    first + i as u64,
                    parts[i].shape(),
                    shape0
                ));
            }
            cols.push(kernels::stack(&parts, 0).map_err(|e| e.to_string())?);
        }
        rows.clear();
        w.write_rows(&cols)
            .map_err(|e| format!("column shapes: {e}"))
    }

    /// Ends the file (the Parquet footer, the gzip trailer) and returns it, synced.
    pub fn finish(mut self) -> Result<File, String> {
        self.flush_rows()?;
        let buf = match self.out {
            Out::Tf(w) => w.finish().map_err(|e| e.to_string())?,
            Out::Parquet { writer, .. } => match writer {
                Some(w) => w.finish().map_err(|e| e.to_string())?,
                None => return Err("the Parquet writer did not start".into()),
            },
        };
        let file = buf.into_inner().map_err(|e| e.error().to_string())?;
        file.sync_all().map_err(|e| e.to_string())?;
        Ok(file)
    }
}

/// A tensor's values as the list of a `tf.train.Feature` (flattened; the shape is the
/// reader's to declare, as in TF).
fn flat_of(t: &Tensor) -> Result<Flat, String> {
    Ok(match t {
        Tensor::Str(a) => Flat::Bytes(a.iter().cloned().collect()),
        Tensor::U64(a) => Flat::Int64(
            a.iter()
                .map(|&x| i64::try_from(x).map_err(|_| format!("{x} does not fit an int64_list")))
                .collect::<Result<_, _>>()?,
        ),
        t if t.dtype().is_float() => match kernels::cast(t, DType::F32) {
            Tensor::F32(a) => Flat::Float(a.iter().copied().collect()),
            _ => return Err("cannot convert to float".into()),
        },
        t => match kernels::cast(t, DType::I64) {
            Tensor::I64(a) => Flat::Int64(a.iter().copied().collect()),
            _ => return Err("cannot convert to int64".into()),
        },
    })
}
