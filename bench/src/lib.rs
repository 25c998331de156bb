//! The benchmark workloads of the "Performance" issue: their deterministic inputs, the
//! hand-written fused Rust loops they are measured against, and a way to run them in pipec.
//!
//! The binary (`cargo run --release -p pipec-bench`) times everything and prints the table;
//! this library holds what the binary and the equivalence tests share, so a reference loop
//! can never silently drift from the pipeline it stands for.

use pipec::{CompileOptions, Compiled, Compiler, ElementStream, RunOptions, SourceFile, Tensor};
use std::path::Path;

/// One workload of the suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Id {
    /// `from_tensor_slices` of i32[1M, 3]; cast, log(1 + x), x*0.5 + 2; batch(256).
    W1,
    /// 512 u8 images [224, 224, 3]; ImageNet normalization; batch(32).
    W2,
    /// range(10M); x*x % 7; filter x < 3; batch(1024).
    W3,
    /// f32[100k, 8]; each row sorted in an eager function.
    W4,
    /// f32[100k, 8]; each row sorted with the traced `sort`.
    W4Traced,
    /// i32[1M, 2, 3]; batch(256); cast f32 * [1, 2, 3].
    W5,
}

/// Every workload, in table order.
pub const ALL: [Id; 6] = [Id::W1, Id::W2, Id::W3, Id::W4, Id::W4Traced, Id::W5];

/// Full-size row counts (elements of the source dataset).
pub const W1_ROWS: usize = 1_000_000;
/// Images in W2.
pub const W2_IMAGES: usize = 512;
/// Elements of `range` in W3.
pub const W3_N: i64 = 10_000_000;
/// Rows in W4.
pub const W4_ROWS: usize = 100_000;
/// Rows in W5.
pub const W5_ROWS: usize = 1_000_000;

/// Values per W2 image (224 * 224 * 3).
pub const W2_PIXELS: usize = 224 * 224 * 3;
const W2_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const W2_STD: [f32; 3] = [0.229, 0.224, 0.225];
const W5_SCALE: [f32; 3] = [1.0, 2.0, 3.0];

impl Id {
    /// The short name shown in the table (`W1`, `W4t`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Id::W1 => "W1",
            Id::W2 => "W2",
            Id::W3 => "W3",
            Id::W4 => "W4",
            Id::W4Traced => "W4t",
            Id::W5 => "W5",
        }
    }

    /// A few words on what the workload does.
    pub fn description(self) -> &'static str {
        match self {
            Id::W1 => "i32[1M,3] -> cast,log1p,affine -> batch 256",
            Id::W2 => "512 u8[224,224,3] -> normalize -> batch 32",
            Id::W3 => "range(10M) -> x*x%7 -> filter x<3 -> batch 1024",
            Id::W4 => "f32[100k,8] -> sort rows (eager fn)",
            Id::W4Traced => "f32[100k,8] -> sort rows (traced sort)",
            Id::W5 => "i32[1M,2,3] -> batch 256 -> cast * [1,2,3]",
        }
    }

    /// The `.pipe` file under `bench/workloads/`.
    pub fn file(self) -> &'static str {
        match self {
            Id::W1 => "w1.pipe",
            Id::W2 => "w2.pipe",
            Id::W3 => "w3.pipe",
            Id::W4 => "w4.pipe",
            Id::W4Traced => "w4_traced.pipe",
            Id::W5 => "w5.pipe",
        }
    }

    /// The `.pipe` source, compiled into the binary so tests can rewrite sizes.
    pub fn source(self) -> &'static str {
        match self {
            Id::W1 => include_str!("../workloads/w1.pipe"),
            Id::W2 => include_str!("../workloads/w2.pipe"),
            Id::W3 => include_str!("../workloads/w3.pipe"),
            Id::W4 => include_str!("../workloads/w4.pipe"),
            Id::W4Traced => include_str!("../workloads/w4_traced.pipe"),
            Id::W5 => include_str!("../workloads/w5.pipe"),
        }
    }

    /// The input file stem under `bench/workloads/data/` (`None`: W3 has no input file).
    pub fn data(self) -> Option<&'static str> {
        match self {
            Id::W1 => Some("w1"),
            Id::W2 => Some("w2"),
            Id::W3 => None,
            Id::W4 | Id::W4Traced => Some("w4"),
            Id::W5 => Some("w5"),
        }
    }

    /// The stem of the comparison scripts under `bench/compare/` (`numpy_w4.py`, ...).
    pub fn script(self) -> &'static str {
        match self {
            Id::W1 => "w1",
            Id::W2 => "w2",
            Id::W3 => "w3",
            Id::W4 => "w4",
            Id::W4Traced => "w4t",
            Id::W5 => "w5",
        }
    }

    /// The target for pipec's throughput relative to the reference loop.
    pub fn target(self) -> &'static str {
        match self {
            Id::W1 | Id::W2 | Id::W5 => ">= 1.0x",
            Id::W3 => ">= 0.3x",
            Id::W4 => ">= 5M el/s",
            Id::W4Traced => ">= 0.5x",
        }
    }

    /// Elements of the source dataset at full size (the "input elements" of elements/s).
    pub fn input_elements(self) -> usize {
        match self {
            Id::W1 => W1_ROWS,
            Id::W2 => W2_IMAGES,
            Id::W3 => W3_N as usize,
            Id::W4 | Id::W4Traced => W4_ROWS,
            Id::W5 => W5_ROWS,
        }
    }
}

/// The input tensor of a workload with `rows` source elements (`None` for W3).
pub fn make_input(id: Id, rows: usize) -> Option<Tensor> {
    match id {
        Id::W1 => {
            // (i*7 + j) % 1000 over row i, column j.
            let data: Vec<i32> = (0..rows * 3)
                .map(|f| (((f / 3) * 7 + f % 3) % 1000) as i32)
                .collect();
            Tensor::from_vec(&[rows, 3], data)
        }
        Id::W2 => {
            // (i*31 + k) % 256 over image i and flat index k inside the image.
            let data: Vec<u8> = (0..rows * W2_PIXELS)
                .map(|f| (((f / W2_PIXELS) * 31 + f % W2_PIXELS) % 256) as u8)
                .collect();
            Tensor::from_vec(&[rows, 224, 224, 3], data)
        }
        Id::W3 => None,
        Id::W4 | Id::W4Traced => {
            // A multiplicative hash spreads the values, so every row needs real sorting work.
            let data: Vec<f32> = (0..rows as u64 * 8)
                .map(|f| ((f * 2_654_435_761) % 1000) as f32)
                .collect();
            Tensor::from_vec(&[rows, 8], data)
        }
        Id::W5 => {
            // (i*7 + k) % 1000 over row i and flat index k of its 2x3 values.
            let data: Vec<i32> = (0..rows * 6)
                .map(|f| (((f / 6) * 7 + f % 6) % 1000) as i32)
                .collect();
            Tensor::from_vec(&[rows, 2, 3], data)
        }
    }
}

/// Full-size source element count for `id`, or the small size used by the tests.
pub fn rows(id: Id, small: bool) -> usize {
    match (id, small) {
        (_, false) => id.input_elements(),
        // Not a multiple of the batch size: the final partial batch is checked too.
        (Id::W2, true) => 35,
        (Id::W3, true) => 5000,
        (_, true) => 1000,
    }
}

/// Writes `data/NAME.npy` for every workload under `dir` (the `bench/workloads` directory),
/// skipping files that already exist with the expected size. Returns the files written.
pub fn generate(dir: &Path, small: bool) -> std::io::Result<Vec<String>> {
    let data = dir.join("data");
    std::fs::create_dir_all(&data)?;
    let mut written = Vec::new();
    for id in ALL {
        let Some(stem) = id.data() else { continue };
        let path = data.join(format!("{stem}.npy"));
        let Some(t) = make_input(id, rows(id, small)) else {
            continue;
        };
        let bytes = pipec::io::encode_npy(&t);
        // Regenerating 80 MB of W2 on every run would dominate a --quick run.
        if std::fs::metadata(&path).is_ok_and(|m| m.len() == bytes.len() as u64)
            && std::fs::read(&path)? == bytes
        {
            continue;
        }
        std::fs::write(&path, &bytes)?;
        written.push(path.display().to_string());
    }
    Ok(written)
}

/// One output element of a reference loop, borrowed from its reused buffer.
#[derive(Debug)]
pub enum Out<'a> {
    /// A batch or row of `f32`.
    F32(&'a [f32]),
    /// A batch of `i64` (W3).
    I64(&'a [i64]),
}

/// Runs the reference loop of `id` on `input` (ignored for W3, which takes `w3_n`), handing
/// every output element to `sink`. Each loop is a single fused pass reusing one buffer.
pub fn reference(id: Id, input: Option<&Tensor>, w3_n: i64, sink: &mut dyn FnMut(Out<'_>)) {
    fn slice<T: pipec_tensor::TensorElem>(t: Option<&Tensor>) -> &[T] {
        t.and_then(|t| t.as_array::<T>())
            .and_then(|a| a.as_slice())
            .expect("reference input is a standard-layout tensor of the right dtype")
    }
    match id {
        Id::W1 => w1_loop(slice(input), sink),
        Id::W2 => w2_loop(slice(input), sink),
        Id::W3 => w3_loop(w3_n, sink),
        Id::W4 | Id::W4Traced => w4_loop(slice(input), sink),
        Id::W5 => w5_loop(slice(input), sink),
    }
}

/// W1: rows of 3 i32 → `ln(x + 1) * 0.5 + 2` into a reused `[256 * 3]` buffer.
pub fn w1_loop(input: &[i32], sink: &mut dyn FnMut(Out<'_>)) {
    let mut buf = vec![0f32; 256 * 3];
    for chunk in input.chunks(256 * 3) {
        let out = &mut buf[..chunk.len()];
        for (o, &x) in out.iter_mut().zip(chunk) {
            *o = (1.0 + x as f32).ln() * 0.5 + 2.0;
        }
        sink(Out::F32(out));
    }
}

/// W2: images of u8 → `(x / 255 - mean[c]) / std[c]` into a reused `[32, 224, 224, 3]` buffer.
pub fn w2_loop(input: &[u8], sink: &mut dyn FnMut(Out<'_>)) {
    let mut buf = vec![0f32; 32 * W2_PIXELS];
    for chunk in input.chunks(32 * W2_PIXELS) {
        let out = &mut buf[..chunk.len()];
        for (o, x) in out.chunks_exact_mut(3).zip(chunk.chunks_exact(3)) {
            for c in 0..3 {
                o[c] = (x[c] as f32 / 255.0 - W2_MEAN[c]) / W2_STD[c];
            }
        }
        sink(Out::F32(out));
    }
}

/// W3: `i*i % 7` for i in 0..n, keeping values below 3, in a reused 1024 buffer.
pub fn w3_loop(n: i64, sink: &mut dyn FnMut(Out<'_>)) {
    let mut buf = [0i64; 1024];
    let mut len = 0;
    for i in 0..n {
        let y = i.wrapping_mul(i).rem_euclid(7);
        if y < 3 {
            buf[len] = y;
            len += 1;
            if len == buf.len() {
                sink(Out::I64(&buf));
                len = 0;
            }
        }
    }
    if len > 0 {
        sink(Out::I64(&buf[..len]));
    }
}

/// W4: each row of 8 f32 sorted ascending in a reused `[8]` buffer (no NaN in the input).
pub fn w4_loop(input: &[f32], sink: &mut dyn FnMut(Out<'_>)) {
    let mut buf = [0f32; 8];
    for row in input.chunks_exact(8) {
        buf.copy_from_slice(row);
        buf.sort_unstable_by(f32::total_cmp);
        sink(Out::F32(&buf));
    }
}

/// W5: batches of 256 rows of `[2, 3]` i32 → `x * [1, 2, 3][c]` into a reused buffer.
pub fn w5_loop(input: &[i32], sink: &mut dyn FnMut(Out<'_>)) {
    let mut buf = vec![0f32; 256 * 6];
    for chunk in input.chunks(256 * 6) {
        let out = &mut buf[..chunk.len()];
        for (o, x) in out.chunks_exact_mut(3).zip(chunk.chunks_exact(3)) {
            for c in 0..3 {
                o[c] = x[c] as f32 * W5_SCALE[c];
            }
        }
        sink(Out::F32(out));
    }
}

/// Compiles a `.pipe` file at -O2, turning diagnostics into text.
pub fn compile(path: &Path) -> Result<Compiled, String> {
    let source = SourceFile::from_path(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Compiler::new()
        .compile(&source, &CompileOptions::default())
        .map_err(|d| pipec::render(&d, &source.name, &source.text, false))
}

/// Runs a compiled pipeline to the end, dropping the elements (like `pipec --discard`);
/// returns the number of output elements.
pub fn drain(compiled: &Compiled, threads: usize) -> Result<usize, String> {
    drain_stream(&mut open(compiled, threads)?)
}

/// Starts a run: builds the plan and loads the input files.
pub fn open(compiled: &Compiled, threads: usize) -> Result<ElementStream, String> {
    let opts = RunOptions {
        threads,
        base_dir: compiled.dir.clone(),
        ..RunOptions::default()
    };
    compiled.run(&opts).map_err(|d| d.message.clone())
}

/// Pulls a started run to the end (in blocks, as `pipec --discard` does); returns the
/// number of output elements.
pub fn drain_stream(stream: &mut ElementStream) -> Result<usize, String> {
    let rows = stream.block_rows();
    let mut n = 0;
    while let Some(chunk) = stream.next_block(rows) {
        n += chunk.block.len();
        std::hint::black_box(chunk.block);
        if let Some(d) = chunk.error {
            return Err(d.message);
        }
    }
    Ok(n)
}

pub mod records;
pub mod text;

#[cfg(test)]
mod records_tests;
#[cfg(test)]
mod tests;
