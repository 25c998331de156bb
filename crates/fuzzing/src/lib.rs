//! The checks behind the fuzz targets in `fuzz/`, as plain functions, so that the committed
//! corpus and every past crash input replay under `cargo test` without libFuzzer.
//!
//! Each function takes arbitrary bytes and returns normally for every input the program
//! handles correctly (a result or a coded diagnostic); it panics only on a real bug — a
//! panic in pipec, or a property violation such as `-O0` and `-O2` disagreeing.

#![warn(clippy::print_stdout, clippy::print_stderr)]

mod grammar;
mod resume;

use pipec::{
    BorrowedTensor, CompileOptions, Compiler, Diagnostic, RunOptions, SourceFile, Tensor, io,
};
use std::io::Cursor;

pub use grammar::program_from_bytes;
pub use resume::{
    Received, check_generated_resume, check_resume, check_resume_at_cuts, checkpoint_program,
    checkpoint_program_over_stream, compile_text, resume, state,
};

/// One application of a row of the transformation table (`pipec::TRANSFORMS`), drawn with
/// `pick`, each predicate parameter given `pred` (`|x| ...`'s body): the grammars reach every
/// row without naming it. Also whether the row keeps random access.
pub(crate) fn table_step(mut pick: impl FnMut(usize) -> usize, pred: &str) -> (String, bool) {
    let t = &pipec::TRANSFORMS[pick(pipec::TRANSFORMS.len())];
    let mut args = Vec::new();
    for p in t.params {
        let v = match p.kind {
            pipec::ParamKind::Int => pick(10).to_string(),
            pipec::ParamKind::Bool => (pick(2) == 0).to_string(),
            pipec::ParamKind::Predicate => format!("|x| {pred}"),
        };
        match p.default {
            None => args.push(v),
            Some(_) if pick(2) == 0 => args.push(format!("{}: {v}", p.name)),
            Some(_) => {}
        }
    }
    (format!(".{}({})", t.name, args.join(", ")), t.random_access)
}

/// One fuzz check: takes arbitrary bytes and panics only on a real bug.
pub type Check = fn(&[u8]);

/// The fuzz targets, by the name of their `fuzz/fuzz_targets/NAME.rs` and corpus folder.
pub const TARGETS: &[(&str, Check)] = &[
    ("compile", compile),
    ("interp", interp),
    ("run", run),
    ("npy", npy),
    ("npz", npz),
    ("csv", csv),
    ("lines", lines),
    ("resume", resume),
    ("state", state),
    ("png", png),
    ("jpeg", jpeg),
    ("tfrecord", tfrecord),
    ("example", example),
    ("parquet", parquet),
];

/// Elements pulled from a generated pipeline: enough to cover batching and repeats while
/// keeping each input fast.
const TAKE: usize = 64;

/// The memory ceiling under fuzzing: generated shapes may ask for gigabytes, and the
/// ceiling (the same one `--max-memory` sets) must turn that into E0701, not an abort.
const FUZZ_MEMORY: u64 = 256 << 20;

/// Every compile failure must carry coded, non-empty diagnostics; nothing may panic.
fn assert_coded(diags: &[Diagnostic]) {
    assert!(!diags.is_empty(), "a failed compile gave no diagnostic");
    for d in diags {
        assert!(
            !d.message.contains("internal compiler error"),
            "internal compiler error: {d:?}"
        );
    }
}

/// Any bytes, as program text, through the whole compile path at `-O2`: parse, trace,
/// verify, optimize. The result is IR or diagnostics, never a panic or an internal error.
pub fn compile(data: &[u8]) {
    pipec::limits::set_max_memory(Some(FUZZ_MEMORY));
    let text = String::from_utf8_lossy(data);
    let source = SourceFile::from_text("fuzz.pipe", &text);
    match Compiler::new().compile(&source, &CompileOptions::default()) {
        // A successful compile must hold the pipeline it chose (what running asks for first).
        Ok(c) => drop(c.element_type()),
        Err(diags) => assert_coded(&diags),
    }
}

/// What a run produced: each element's leaves as `.npy` bytes, then the error code if any.
#[derive(Debug, PartialEq)]
struct Outcome {
    elements: Vec<Vec<Vec<u8>>>,
    error: Option<String>,
}

/// How a run's consumer pulls: element by element, or in blocks like `--discard` and the
/// writers do (which is what starts block execution and its lanes; a run pulled in blocks
/// also hands every block to another lane, however small).
#[derive(Clone, Copy)]
enum Pull {
    Elements,
    Blocks,
}

fn run_at(
    source: &SourceFile,
    opt_level: u8,
    threads: usize,
    pull: Pull,
) -> Result<Outcome, Vec<String>> {
    // Pulled in blocks, every block may go to another lane: generated programs are small.
    let lane_min_bytes = match pull {
        Pull::Elements => pipec::LANE_MIN_BYTES,
        Pull::Blocks => 0,
    };
    let opts = CompileOptions {
        opt_level,
        ..Default::default()
    };
    let compiled = Compiler::new().compile(source, &opts).map_err(|diags| {
        assert_coded(&diags);
        diags.iter().map(|d| d.code.to_string()).collect::<Vec<_>>()
    })?;
    let run_opts = RunOptions {
        threads,
        // A `shuffle` without a seed draws a fresh one per run: both runs must draw the same.
        shuffle_seed: Some(0x5EED),
        lane_min_bytes,
        ..Default::default()
    };
    let mut out = Outcome {
        elements: Vec::new(),
        error: None,
    };
    let encode = |leaves: &[Tensor]| leaves.iter().map(io::encode_npy).collect::<Vec<_>>();
    match (compiled.run(&run_opts), pull) {
        (Ok(stream), Pull::Elements) => {
            for element in stream.take(TAKE) {
                match element {
                    Ok(leaves) => out.elements.push(encode(&leaves)),
                    Err(d) => {
                        out.error = Some(d.code.to_string());
                        break;
                    }
                }
            }
        }
        (Ok(mut stream), Pull::Blocks) => {
            // Blocks of varying sizes (the consumer's own, then smaller), never past TAKE.
            let sizes = [stream.block_rows(), 1, 5, 17];
            let mut k = 0;
            while out.elements.len() < TAKE {
                let max = sizes[k % sizes.len()].min(TAKE - out.elements.len());
                k += 1;
                let Some(chunk) = stream.next_block(max) else {
                    break;
                };
                for row in chunk.block.into_rows() {
                    out.elements.push(encode(&row));
                }
                if let Some(d) = chunk.error {
                    out.error = Some(d.code.to_string());
                    break;
                }
            }
        }
        (Err(d), _) => out.error = Some(d.code.to_string()),
    }
    Ok(out)
}

/// A small generated pipeline (see [`program_from_bytes`]), compiled at `-O0` and at `-O2`
/// and run to at most 64 elements: both must give the same bits and the same error.
pub fn interp(data: &[u8]) {
    run_text(&program_from_bytes(data));
}

/// Any bytes as program text, compiled and run like [`interp`]'s generated programs: mutated
/// real programs reach datasets and ops the grammar does not generate.
pub fn run(data: &[u8]) {
    run_text(&String::from_utf8_lossy(data));
}

fn run_text(text: &str) {
    pipec::limits::set_max_memory(Some(FUZZ_MEMORY));
    let source = SourceFile::from_text("gen.pipe", text);
    let o0 = run_at(&source, 0, 1, Pull::Elements);
    let o2 = run_at(&source, 2, 2, Pull::Elements);
    assert_eq!(o0, o2, "-O0 and -O2 disagree on:\n{text}");
    let blocks = run_at(&source, 2, 3, Pull::Blocks);
    assert_eq!(
        o0, blocks,
        "-O0, and -O2 pulled in blocks, disagree on:\n{text}"
    );
}
/// Any bytes as a `.npy` file: a tensor whose size matches its header, or an error; read by
/// rows from a file, the same rows.
pub fn npy(data: &[u8]) {
    pipec::limits::set_max_memory(Some(FUZZ_MEMORY));
    if let Ok(t) = io::parse_npy(data) {
        let h = io::parse_header(data).expect("a parsed file has a header");
        assert_eq!(t.shape(), h.shape.as_slice());
        assert_eq!(t.dtype(), h.dtype);
        // What was read must write back to a file that reads back the same.
        let again = io::parse_npy(&io::encode_npy(&t)).expect("re-encoded file reads");
        assert_eq!(io::encode_npy(&again), io::encode_npy(&t));
    }
    npy_rows(data);
}

/// The same bytes as a file read a block of rows at a time (what `from_tensor_slices` does
/// with a `.npy`): opening and reading fail with errors, never a panic, and every block read
/// holds the rows the whole-array reader gives.
fn npy_rows(data: &[u8]) {
    let path = std::env::temp_dir().join(format!("pipec-fuzz-rows-{}.npy", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Ok(Some(rows)) = io::FileRows::open_npy(&path) {
        let whole = io::parse_npy(data);
        let n = rows.rows();
        // A few blocks whatever the row count (a header may declare 10^12 empty rows).
        let step = (n / 4).max(1);
        for start in (0..n).step_by(step).take(5) {
            let end = (start + step).min(n);
            if let (Ok(part), Ok(t)) = (rows.read(start, end), &whole) {
                // Compared as bytes: a NaN row equals itself.
                let want = io::encode_npy(&t.slice_axis0(start, end));
                assert!(io::encode_npy(&part) == want, "rows {start}..{end}");
                // The same rows read in place from the file's map, as a fused map reads them.
                if let Some(bytes) = rows.block_in_place(start, end)
                    && let Some(b) = BorrowedTensor::new(part.dtype(), part.shape(), bytes)
                {
                    assert!(
                        io::encode_npy(&b.to_tensor()) == want,
                        "in place {start}..{end}"
                    );
                }
            }
        }
    }
    let _ = std::fs::remove_file(&path);
}

/// Any bytes as a `.npz` archive: each member pipec can name reads or fails with an error,
/// and a header read agrees with the full read.
pub fn npz(data: &[u8]) {
    pipec::limits::set_max_memory(Some(FUZZ_MEMORY));
    for name in ["arr_0", "x", "y"] {
        let header = io::read_npz_header_from(Cursor::new(data), name);
        let full = io::read_npz_from(Cursor::new(data), name);
        if let (Ok(h), Ok(t)) = (header, full) {
            assert_eq!(t.shape(), h.shape.as_slice());
            assert_eq!(t.dtype(), h.dtype);
        }
    }
}

/// Any bytes as a numeric CSV file, read as every dtype: rows of the detected width or an
/// error; the whole-file reader agrees with the streamed rows.
pub fn csv(data: &[u8]) {
    pipec::limits::set_max_memory(Some(FUZZ_MEMORY));
    let Ok(info) = io::csv_info_from(Cursor::new(data.to_vec())) else {
        return;
    };
    for dtype in [
        pipec::DType::F32,
        pipec::DType::I64,
        pipec::DType::U8,
        pipec::DType::Bool,
    ] {
        let mut rows =
            io::CsvRows::from_reader(Cursor::new(data.to_vec()), dtype, info.ncols, info.header);
        let mut n = 0usize;
        loop {
            match rows.next_row() {
                Ok(Some(r)) => {
                    assert_eq!(r.shape(), &[info.ncols]);
                    assert_eq!(r.dtype(), dtype);
                    n += 1;
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        let whole: Result<Tensor, _> = io::read_csv_from(Cursor::new(data.to_vec()), dtype);
        let whole = whole.expect("the streamed rows read, so the whole file reads");
        assert_eq!(whole.shape(), &[n, info.ncols]);
    }
}

/// Any bytes as a text file read by `read_lines` (the file named twice, so lines continue
/// across files), a block of at most 1, 2, 7 or 1024 lines at a time: the lines are the
/// reference split — `\n` ends a line and one `\r` before it is dropped, a last line
/// without `\n` is kept whole (its `\r` too, as `TextLineDataset` keeps it), an empty file
/// has no line — and no small file is an error.
pub fn lines(data: &[u8]) {
    pipec::limits::set_max_memory(Some(FUZZ_MEMORY));
    let path = std::env::temp_dir().join(format!("pipec-fuzz-lines-{}.txt", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let mut want: Vec<&[u8]> = Vec::new();
    let mut start = 0;
    for (i, _) in data.iter().enumerate().filter(|(_, b)| **b == b'\n') {
        let line = &data[start..i];
        want.push(line.strip_suffix(b"\r").unwrap_or(line));
        start = i + 1;
    }
    if start < data.len() {
        want.push(&data[start..]);
    }
    for max in [1, 2, 7, 1024] {
        let mut reader = io::LineReader::new(vec![path.clone(), path.clone()]);
        let mut got = Vec::new();
        loop {
            match reader.next_lines(max) {
                Ok(Some(block)) => {
                    assert!(
                        (1..=max).contains(&block.lines),
                        "{} lines, max {max}",
                        block.lines
                    );
                    let lines = block.split();
                    assert_eq!(lines.len(), block.lines);
                    got.extend(lines);
                }
                Ok(None) => break,
                Err((p, e)) => panic!("{}: {e}", p.display()),
            }
        }
        assert_eq!(got.len(), 2 * want.len(), "max {max}");
        for (g, w) in got.iter().zip(want.iter().chain(want.iter())) {
            assert_eq!(&g[..], *w, "max {max}");
        }
    }
    let _ = std::fs::remove_file(&path);
}

/// Any bytes as a PNG file: see [`image`].
pub fn png(data: &[u8]) {
    image(data, "decode_png");
}

/// Any bytes as a JPEG file: see [`image`].
pub fn jpeg(data: &[u8]) {
    image(data, "decode_jpeg");
}

/// Any bytes as an image file, under the fuzzing memory ceiling. The decoder itself, for
/// every channel count, gives a `u8[h, w, C]` image or a bad-image or size error (never a
/// panic, never an allocation past the ceiling: a bomb's header is refused first); then the
/// file read and decoded by a pipeline, and resized, gives the same at `-O0` and `-O2`.
fn image(data: &[u8], op: &str) {
    use pipec::kernels::KernelError;
    use pipec::kernels::image::decode::{ImageFormat, decode_image};
    pipec::limits::set_max_memory(Some(FUZZ_MEMORY));
    let format = if op == "decode_png" {
        ImageFormat::Png
    } else {
        ImageFormat::Jpeg
    };
    for channels in [0, 1, 3, 4] {
        match decode_image(data, format, channels) {
            Ok(t) => {
                assert_eq!(t.dtype(), pipec::DType::U8);
                assert_eq!(t.rank(), 3);
                if channels != 0 {
                    assert_eq!(t.shape()[2], channels);
                }
            }
            Err(
                KernelError::BadImage(_)
                | KernelError::TooLarge { .. }
                | KernelError::OverMemoryLimit { .. },
            ) => {}
            Err(e) => panic!("`{op}` failed with an unexpected error: {e:?}"),
        }
    }
    // Through pipec: a unique file per input, since fuzzers and tests run in parallel.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("pipec-fuzz-{}-{n}.img", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let quoted = path
        .display()
        .to_string()
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
    let text = format!(
        "pipeline main = from_tensor_slices([\"{quoted}\"])\n    .map(|p| {op}(read_file(p), channels: 3))\n    .map(|x| resize(x, [5, 3]))\n"
    );
    run_text(&text);
    let _ = std::fs::remove_file(&path);
}

/// Any bytes as a TFRecord stream, plain and as GZIP/ZLIB: every record read either passes
/// both CRCs (and writes back to the same bytes) or the reader stops with an error naming a
/// record; a forged length never turns into a large allocation (the fuzzer's RSS limit).
pub fn tfrecord(data: &[u8]) {
    use pipec::records::{Compression, RecordError, TfRecordReader, TfRecordWriter};
    pipec::limits::set_max_memory(Some(FUZZ_MEMORY));
    for c in [Compression::None, Compression::Gzip, Compression::Zlib] {
        let mut r = TfRecordReader::new(Cursor::new(data.to_vec()), c, "fuzz".into());
        let mut records = Vec::new();
        loop {
            match r.next_record() {
                Ok(Some(b)) => records.push(b),
                Ok(None) => break,
                Err(e) => {
                    // Every failure names the record it stopped at (or the file system).
                    assert!(
                        e.record() == Some(records.len() as u64)
                            || matches!(e, RecordError::Io { .. }),
                        "{e}"
                    );
                    break;
                }
            }
        }
        if c == Compression::None && !records.is_empty() {
            let mut w = TfRecordWriter::new(Vec::new(), c);
            for b in &records {
                w.write_record(b).expect("writes to memory");
            }
            let out = w.finish().expect("writes to memory");
            assert_eq!(
                &out[..],
                &data[..out.len()],
                "records write back to their bytes"
            );
        }
    }
}

/// Any bytes as a serialized `tf.train.Example`, parsed against fixed, defaulted and `?`
/// features, alone and as a batch of two: a result of the declared shapes, or an error.
pub fn example(data: &[u8]) {
    use pipec::records::example::{FeatureKind, FeatureSpec, Flat, parse_batch, parse_example};
    let spec = |name: &str, kind, shape: &[Option<usize>], default| FeatureSpec {
        name: name.into(),
        kind,
        shape: shape.to_vec(),
        default,
    };
    let specs = [
        spec("a", FeatureKind::Int64, &[], Some(Flat::Int64(vec![7]))),
        spec("b", FeatureKind::Float, &[None, Some(2)], None),
        spec("c", FeatureKind::Bytes, &[None], None),
        spec(
            "d",
            FeatureKind::Float,
            &[Some(3)],
            Some(Flat::Float(vec![0.5])),
        ),
    ];
    let rec = pipec::records::bytes::Bytes::copy_from_slice(data);
    if let Ok(v) = parse_example(rec.clone(), &specs) {
        assert_eq!(v[0].shape(), &[] as &[usize]);
        assert_eq!(v[1].shape()[1..], [2]);
        assert_eq!(v[3].shape(), &[3]);
        let b =
            parse_batch(&[rec.clone(), rec], &specs).expect("a parsable record parses in a batch");
        assert_eq!(b[1].shape()[0], 2);
        assert_eq!(b[1].shape()[1], v[1].shape()[0]);
    }
}

/// Any bytes as a Parquet file: the footer, then every row in steps of 7, read or refused
/// with an error (a panic inside arrow-rs counts as a failure of this target).
pub fn parquet(data: &[u8]) {
    use pipec::records::parquet::ParquetRows;
    pipec::limits::set_max_memory(Some(FUZZ_MEMORY));
    let bytes = pipec::records::bytes::Bytes::copy_from_slice(data);
    let Ok(mut rows) = ParquetRows::from_bytes(bytes, "fuzz.parquet".into(), None) else {
        return;
    };
    let shapes: Vec<Vec<usize>> = rows.columns().iter().map(|c| c.shape.clone()).collect();
    let mut total = 0u64;
    while let Ok(Some(cols)) = rows.next_rows(7) {
        for (c, s) in cols.iter().zip(&shapes) {
            assert_eq!(
                &c.shape()[1..],
                &s[..],
                "a column slice has its column's row shape"
            );
        }
        total += cols.first().map_or(0, |c| c.shape()[0] as u64);
        if total > 1 << 24 {
            break;
        }
    }
}
