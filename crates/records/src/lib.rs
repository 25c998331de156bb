//! Record formats for pipec: TFRecord files ([`tfrecord`]), `tf.train.Example` protos
//! ([`example`]) and Parquet tables ([`parquet`]), read as streams and written as files that
//! TensorFlow and pyarrow read back. Errors are values ([`RecordError`]); the runtime turns
//! each into a coded diagnostic naming the file, record or row, and feature or column.

#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod example;
pub mod parquet;
pub mod tfrecord;

pub use bytes;
pub use example::{FeatureKind, FeatureSpec};
pub use pipec_tensor::{DType, Tensor};
pub use tfrecord::{Compression, TfRecordReader, TfRecordWriter};

/// Why a record file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The file system refused.
    #[error("cannot read `{file}`: {source}")]
    Io {
        /// The file as given.
        file: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// A damaged or truncated TFRecord (bad CRC, short read).
    #[error("`{file}`, record {record}: {what}")]
    Corrupt {
        /// The file as given.
        file: String,
        /// The 0-based index of the record that is damaged.
        record: u64,
        /// What is wrong.
        what: String,
    },
    /// A record larger than the memory ceiling (`--max-memory`); nothing was allocated.
    #[error(
        "`{file}`, record {record}: {bytes} bytes, over the memory limit of {limit} bytes (--max-memory)"
    )]
    OverMemoryLimit {
        /// The file as given.
        file: String,
        /// The 0-based record index.
        record: u64,
        /// The record's length.
        bytes: u64,
        /// The ceiling.
        limit: u64,
    },
    /// A record that is not a `tf.train.Example`, or one whose features do not match the
    /// declared ones.
    #[error("feature `{feature}`: {what}")]
    Example {
        /// The feature's name (empty when the proto itself is malformed).
        feature: String,
        /// What is wrong.
        what: String,
    },
    /// A Parquet file that cannot be read (bad footer, pages, codec).
    #[error("`{file}`: {what}")]
    Parquet {
        /// The file as given.
        file: String,
        /// What is wrong.
        what: String,
    },
    /// A Parquet column whose type pipec does not read.
    #[error(
        "`{file}`: column `{column}` has type {ty}, which pipec does not read (integers, floats, bool, strings and fixed-size lists of them)"
    )]
    UnsupportedColumn {
        /// The file as given.
        file: String,
        /// The column's name.
        column: String,
        /// Its Arrow type.
        ty: String,
    },
    /// A column asked for that the file does not have.
    #[error("`{file}` has no column `{column}` (it has: {available})")]
    MissingColumn {
        /// The file as given.
        file: String,
        /// The column asked for.
        column: String,
        /// The file's columns, comma-separated.
        available: String,
    },
    /// A null value where pipec needs one (tensors have no nulls).
    #[error("`{file}`, row {row}, column `{column}`: the value is null")]
    Null {
        /// The file as given.
        file: String,
        /// The 0-based row index in the file.
        row: u64,
        /// The column's name.
        column: String,
    },
    /// Elements that cannot be written to the format.
    #[error("{0}")]
    Output(String),
}

impl RecordError {
    /// The 0-based index of the record the error names, for TFRecord errors.
    pub fn record(&self) -> Option<u64> {
        match self {
            RecordError::Corrupt { record, .. } | RecordError::OverMemoryLimit { record, .. } => {
                Some(*record)
            }
            _ => None,
        }
    }
}
