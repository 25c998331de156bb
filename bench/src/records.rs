//! The record-format workloads of issue 18: W7 (TFRecord files of `tf.train.Example`s,
//! parsed and batched) and W8 (a Parquet table batched by 1024). Their inputs are written
//! here at run time by pipec's own record writers (never committed), and they are measured
//! against tf.data and pyarrow at the same thread count rather than against a Rust loop: the
//! question the issue asks is how pipec compares with what a user would run instead.

use pipec::records::example::{Flat, encode_example};
use pipec::records::parquet::{ColumnInfo, ParquetWriter};
use pipec::records::{Compression, DType, TfRecordWriter};
use pipec::{Tensor, records::bytes::Bytes};
use std::io::Write;
use std::path::{Path, PathBuf};

/// One record workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordId {
    /// 100 000 Examples (a PNG of 32×32×3, an int64 label, a float[16]) in 8 TFRecord
    /// files → `parse_example` → batch 256.
    W7,
    /// A 1 M-row Parquet file of 8 numeric columns → batch 1024.
    W8,
}

/// Both record workloads, in table order.
pub const RECORD_ALL: [RecordId; 2] = [RecordId::W7, RecordId::W8];

/// Examples in W7 at full size.
pub const W7_RECORDS: usize = 100_000;
/// TFRecord files W7's records are spread over.
pub const W7_FILES: usize = 8;
/// Rows of W8 at full size.
pub const W8_ROWS: usize = 1_000_000;
/// Image side of W7's PNGs.
const W7_SIDE: usize = 32;

impl RecordId {
    /// The short name shown in the table.
    pub fn name(self) -> &'static str {
        match self {
            RecordId::W7 => "W7",
            RecordId::W8 => "W8",
        }
    }

    /// A few words on what the workload does.
    pub fn description(self) -> &'static str {
        match self {
            RecordId::W7 => {
                "100k Examples (png, i64, f32[16]) in 8 TFRecords -> parse -> batch 256"
            }
            RecordId::W8 => "Parquet 1M rows x 8 numeric columns -> batch 1024",
        }
    }

    /// The `.pipe` file under `bench/workloads/`.
    pub fn file(self) -> &'static str {
        match self {
            RecordId::W7 => "w7.pipe",
            RecordId::W8 => "w8.pipe",
        }
    }

    /// The comparison script under `bench/compare/` and what it runs.
    pub fn script(self) -> (&'static str, &'static str) {
        match self {
            RecordId::W7 => ("tfdata_w7.py", "tf.data"),
            RecordId::W8 => ("pyarrow_w8.py", "pyarrow"),
        }
    }

    /// The Python module the comparison needs.
    pub fn module(self) -> &'static str {
        match self {
            RecordId::W7 => "tensorflow",
            RecordId::W8 => "pyarrow",
        }
    }

    /// The target: pipec's speed over the baseline's.
    pub fn target(self) -> f64 {
        match self {
            RecordId::W7 => 2.0,
            RecordId::W8 => 1.0,
        }
    }

    /// Source records at full size.
    pub fn input_elements(self) -> usize {
        match self {
            RecordId::W7 => W7_RECORDS,
            RecordId::W8 => W8_ROWS,
        }
    }
}

/// W7's TFRecord files under `data` (`data/w7/part-K.tfrecord`).
pub fn w7_paths(data: &Path) -> Vec<PathBuf> {
    (0..W7_FILES)
        .map(|k| data.join("w7").join(format!("part-{k}.tfrecord")))
        .collect()
}

/// A deterministic 32×32×3 image for record `i`: smooth gradients with a little hashed
/// noise, so it compresses about as well as a small natural photo does.
pub fn w7_pixels(i: usize) -> Vec<u8> {
    let mut px = Vec::with_capacity(W7_SIDE * W7_SIDE * 3);
    for y in 0..W7_SIDE {
        for x in 0..W7_SIDE {
            for c in 0..3 {
                let base = (x * 6 + y * 3 + c * 60 + i * 13) % 256;
                let h = ((i * 1024 + y * 32 + x) * 3 + c).wrapping_mul(2_654_435_761) >> 13;
                px.push((base ^ (h & 7)) as u8);
            }
        }
    }
    px
}

/// `pixels` (RGB, row-major) as a PNG file: 8-bit truecolor, no filter, zlib at the default
/// level, as a PNG encoder writes without tuning.
pub fn encode_png(pixels: &[u8], width: usize, height: usize) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&crc.sum().to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&(width as u32).to_be_bytes());
    ihdr.extend_from_slice(&(height as u32).to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    for row in pixels.chunks(width * 3) {
        // Writing into a Vec cannot fail.
        let _ = z.write_all(&[0]);
        let _ = z.write_all(row);
    }
    let idat = z.finish().unwrap_or_default();
    chunk(&mut out, b"IDAT", &idat);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// W7's serialized Example `i`.
pub fn w7_example(i: usize) -> Vec<u8> {
    let png = encode_png(&w7_pixels(i), W7_SIDE, W7_SIDE);
    encode_example([
        ("image".to_string(), Flat::Bytes(vec![Bytes::from(png)])),
        ("label".to_string(), Flat::Int64(vec![(i % 10) as i64])),
        (
            "vec".to_string(),
            Flat::Float((0..16).map(|k| (i * 16 + k) as f32 * 1e-3).collect()),
        ),
    ])
}

/// W8's columns: four f32, two f64, an i64 and an i32.
pub fn w8_columns() -> Vec<ColumnInfo> {
    let col = |name: &str, elem| ColumnInfo {
        name: name.to_string(),
        elem,
        shape: Vec::new(),
    };
    vec![
        col("a", DType::F32),
        col("b", DType::F32),
        col("c", DType::F32),
        col("d", DType::F32),
        col("e", DType::F64),
        col("f", DType::F64),
        col("g", DType::I64),
        col("h", DType::I32),
    ]
}

/// W8's values for rows `start..end`, one tensor per column.
pub fn w8_rows(start: usize, end: usize) -> Vec<Tensor> {
    let r = || start..end;
    let f32s = |k: usize| -> Tensor {
        let v: Vec<f32> = r().map(|i| ((i * (k + 3)) % 1000) as f32 * 0.25).collect();
        Tensor::from_vec(&[end - start], v).unwrap_or_else(|| Tensor::scalar(0f32))
    };
    let f64s = |k: usize| -> Tensor {
        let v: Vec<f64> = r().map(|i| ((i * (k + 7)) % 977) as f64 / 7.0).collect();
        Tensor::from_vec(&[end - start], v).unwrap_or_else(|| Tensor::scalar(0f64))
    };
    let g: Vec<i64> = r().map(|i| (i as i64) * 3 - 7).collect();
    let h: Vec<i32> = r().map(|i| (i % 65_536) as i32).collect();
    vec![
        f32s(0),
        f32s(1),
        f32s(2),
        f32s(3),
        f64s(0),
        f64s(1),
        Tensor::from_vec(&[end - start], g).unwrap_or_else(|| Tensor::scalar(0i64)),
        Tensor::from_vec(&[end - start], h).unwrap_or_else(|| Tensor::scalar(0i32)),
    ]
}

/// Writes W7's and W8's inputs under `data` (`records` W7 Examples, `rows` W8 rows) unless a
/// marker says they were written with these sizes; returns what was written.
pub fn generate_records(data: &Path, records: usize, rows: usize) -> std::io::Result<Vec<String>> {
    let mut written = Vec::new();
    let w7_dir = data.join("w7");
    std::fs::create_dir_all(&w7_dir)?;
    let marker = w7_dir.join(".complete");
    let want = format!("v1 {records}\n");
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(want.as_str()) {
        let paths = w7_paths(data);
        let per_file = records.div_ceil(W7_FILES);
        for (k, p) in paths.iter().enumerate() {
            let mut w = TfRecordWriter::create(p, Compression::None)?;
            for i in (k * per_file)..((k + 1) * per_file).min(records) {
                w.write_record(&w7_example(i))?;
            }
            w.finish()?;
        }
        std::fs::write(&marker, want)?;
        written.push(w7_dir.display().to_string());
    }
    let w8 = data.join("w8.parquet");
    let marker = data.join("w8.complete");
    let want = format!("v1 {rows}\n");
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(want.as_str()) {
        let io = |e: pipec::records::RecordError| std::io::Error::other(e.to_string());
        let f = std::io::BufWriter::new(std::fs::File::create(&w8)?);
        let mut w = ParquetWriter::new(f, w8_columns()).map_err(io)?;
        let step = 65_536;
        for start in (0..rows).step_by(step) {
            w.write_rows(&w8_rows(start, (start + step).min(rows)))
                .map_err(io)?;
        }
        w.finish().map_err(io)?.flush()?;
        std::fs::write(&marker, want)?;
        written.push(w8.display().to_string());
    }
    Ok(written)
}
