//! `--output FILE.tfrecord`, `FILE.tfrecord.gz` and `FILE.parquet`: elements streamed into a
//! temporary file by `pipec::RecordWriter`, renamed into place when the run succeeds.

use crate::{OutputError, Sink, SinkError, TempFile, output_failed};
use pipec::Diagnostic;
use std::path::{Path, PathBuf};

struct RecordFile {
    path: PathBuf,
    tmp: TempFile,
    w: pipec::RecordWriter,
}

/// Opens the record sink for `path` (its format chosen by the extension).
pub(crate) fn open(
    path: &Path,
    format: pipec::RecordFormat,
    elem: &pipec::ElemType,
) -> Result<Box<dyn Sink>, OutputError> {
    let (tmp, file) =
        TempFile::create(path, None).map_err(|e| OutputError::Failed(output_failed(path, e)))?;
    let w = pipec::RecordWriter::new(file, format, elem).map_err(|m| {
        OutputError::Usage(Diagnostic::error(pipec::Code::BadUsage, m).with_help(
            "map the elements to a dict of tensors a record can hold, or write .npz/.jsonl",
        ))
    })?;
    Ok(Box::new(RecordFile {
        path: path.to_path_buf(),
        tmp,
        w,
    }))
}

impl Sink for RecordFile {
    fn push(&mut self, e: &pipec::Element) -> Result<(), SinkError> {
        self.w
            .push(e)
            .map_err(|m| SinkError::Failed(output_failed(&self.path, m)))
    }

    fn finish(self: Box<Self>) -> Result<(), SinkError> {
        let RecordFile { path, tmp, w } = *self;
        w.finish()
            .map_err(|m| SinkError::Failed(output_failed(&path, m)))?;
        tmp.persist(&path)
            .map_err(|e| SinkError::Failed(output_failed(&path, e)))
    }
}
