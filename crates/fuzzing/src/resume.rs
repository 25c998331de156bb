//! Checkpoints: a generated pipeline cut anywhere and resumed (at another thread count, in
//! another pull pattern) gives, together, exactly the elements of one uninterrupted run;
//! and any bytes given as a state are a result or a coded error, never a panic.

use crate::FUZZ_MEMORY;
use pipec::{CompileOptions, Compiled, Compiler, RunOptions, SourceFile, Tensor};

/// The most elements compared per program.
const LIMIT: usize = 80;

/// Reads choices from the fuzzer's bytes (zeros once they run out).
struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    fn pick(&mut self, n: usize) -> usize {
        self.byte() as usize % n.max(1)
    }
}

/// A pipeline over integers through the transformations of SPEC §7 and §15 (and
/// `prefetch`, `cache`, `shard`, parallel maps, `global_shuffle`, `interleave`, `flat_map`,
/// random ops), from `data`.
pub fn checkpoint_program(data: &[u8]) -> String {
    generate_checkpoint_program(data, true)
}

/// [`checkpoint_program`] for a caller that swaps its first line's source for one without
/// random access (a record reader): no `global_shuffle` is generated above it.
pub fn checkpoint_program_over_stream(data: &[u8]) -> String {
    generate_checkpoint_program(data, false)
}

fn generate_checkpoint_program(data: &[u8], source_random_access: bool) -> String {
    let c = &mut Bytes { data, pos: 0 };
    // rank: 0 for scalars, 1 inside a batch.
    let mut rank = 0;
    // Whether the pipeline so far has random access (what `global_shuffle` needs).
    let mut random_access = source_random_access;
    let mut text = match c.pick(3) {
        0 => format!("range({})", 5 + c.pick(40)),
        1 => format!(
            "from_tensor_slices([{}]).map(|x| cast(x, i64))",
            (0..3 + c.pick(20))
                .map(|i| format!("{}", i * 7 % 11))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => format!(
            "range({}).zip(range(100, {})).map(|a, b| a * 3 - b)",
            5 + c.pick(30),
            110 + c.pick(30)
        ),
    };
    let steps = 1 + c.pick(7);
    for _ in 0..steps {
        let kept = random_access;
        random_access = false;
        let step = match c.pick(23) {
            0 => {
                random_access = kept;
                format!(".map(|x| x * {} + 1)", 1 + c.pick(5))
            }
            1 => {
                random_access = kept;
                format!(
                    ".map(|x| x * 2 - {}, num_parallel_calls: {})",
                    c.pick(9),
                    1 + c.pick(4)
                )
            }
            2 if rank == 0 => format!(".filter(|x| x % {} != 1)", 2 + c.pick(3)),
            2 => format!(".filter(|x| sum(x) % {} != 1)", 2 + c.pick(3)),
            3 if rank == 0 => {
                rank = 1;
                let drop = c.pick(2) == 0;
                random_access = kept && drop;
                format!(".batch({}, drop_remainder: {drop})", 1 + c.pick(5))
            }
            4 if rank == 1 => {
                rank = 0;
                ".unbatch()".to_string()
            }
            5 if rank == 0 => {
                rank = 1;
                format!(".padded_batch({})", 1 + c.pick(4))
            }
            6 => format!(".shuffle({}, seed: {})", 1 + c.pick(12), c.byte()),
            7 => format!(
                ".shuffle({}, seed: {}, reshuffle_each_iteration: false)",
                1 + c.pick(6),
                c.byte()
            ),
            8 => {
                random_access = kept;
                format!(".repeat({})", 1 + c.pick(3))
            }
            9 => {
                random_access = kept;
                format!(".take({})", c.pick(40))
            }
            10 => {
                random_access = kept;
                format!(".skip({})", c.pick(5))
            }
            11 => ".cache()".to_string(),
            12 => format!(".prefetch({})", c.pick(4)),
            13 => {
                random_access = kept;
                let n = 2 + c.pick(3);
                format!(".shard({n}, {})", c.pick(n))
            }
            14 => {
                random_access = kept;
                ".enumerate().map(|i, x| x + i)".to_string()
            }
            15 if rank == 0 => {
                random_access = kept;
                format!(".concatenate(range({}))", c.pick(9))
            }
            // A random op: its draws depend on the position and the epoch, which a resumed
            // run must restore (also under a `global_shuffle` and inside an interleave).
            16 => {
                random_access = kept;
                format!(
                    ".map(|x| x * 8 + random_uniform([], 0, 8, i64, seed: {}))",
                    c.pick(5)
                )
            }
            17 if kept => format!(
                ".global_shuffle(seed: {}{})",
                c.byte(),
                if c.pick(2) == 0 {
                    ", reshuffle_each_iteration: false"
                } else {
                    ""
                }
            ),
            18 if rank == 0 => format!(
                ".interleave(|x| range(x % {}).map(|y| y * 5 + random_uniform([], 0, 5, \
                 i64, seed: 1)){}, cycle_length: {}, block_length: {})",
                2 + c.pick(5),
                [".shuffle(3, seed: 2)", ".repeat(2)", ""][c.pick(3)],
                1 + c.pick(3),
                1 + c.pick(3)
            ),
            19 if rank == 0 => format!(
                ".flat_map(|x| from_tensors(x + random_uniform([], 0, 3, i64, seed: 4))\
                 .repeat(maximum(x % {}, 0)))",
                1 + c.pick(3)
            ),
            20 if rank == 1 => {
                rank = 0;
                ".flat_map(|x| from_tensor_slices(x))".to_string()
            }
            21 => {
                let bound = 5 + c.pick(60);
                let p = if rank == 0 {
                    format!("x < {bound}")
                } else {
                    format!("sum(x) < {}", bound * 3)
                };
                let (step, keeps) = crate::table_step(|n| c.pick(n), &p);
                random_access = kept && keeps;
                step
            }
            _ => {
                random_access = kept;
                format!(".map(|x| x % {})", 3 + c.pick(20))
            }
        };
        text.push_str(&format!("\n    {step}"));
    }
    format!("pipeline main = {text}\n")
}

/// What a consumer received: each element's leaves as `.npy` bytes, then an error code.
#[derive(Debug, PartialEq, Default)]
pub struct Received {
    /// The elements, each leaf's dtype, shape and values (floats to the bit).
    pub elements: Vec<String>,
    /// The error that ended the run, if any.
    pub error: Option<String>,
}

/// Pulls up to `limit` elements of `stream` into `out`, by blocks of the sizes in `sizes`
/// in turn (1 pulls one element through the iterator).
fn pull(stream: &mut pipec::ElementStream, out: &mut Received, limit: usize, sizes: &[usize]) {
    let start = out.elements.len();
    let mut k = 0;
    while out.elements.len() - start < limit && out.error.is_none() {
        let max = sizes[k % sizes.len()].min(limit - (out.elements.len() - start));
        k += 1;
        if max == 1 {
            match stream.next() {
                Some(Ok(e)) => out.elements.push(encode(&e)),
                Some(Err(d)) => out.error = Some(d.code.to_string()),
                None => break,
            }
            continue;
        }
        let Some(chunk) = stream.next_block(max) else {
            break;
        };
        for row in chunk.block.into_rows() {
            out.elements.push(encode(&row));
        }
        if let Some(d) = chunk.error {
            out.error = Some(d.code.to_string());
        }
    }
}

fn run_opts(threads: usize) -> RunOptions {
    RunOptions {
        threads,
        shuffle_seed: Some(0x5EED),
        // Every block may go to another lane: the programs are small.
        lane_min_bytes: 0,
        checkpoints: true,
        ..Default::default()
    }
}

/// One uninterrupted run, and the same cut after `cut` elements (at `threads.0`, its state
/// saved) and resumed (at `threads.1`): the elements and error must be equal.
pub fn check_resume(compiled: &Compiled, cut: usize, threads: (usize, usize), sizes: &[usize]) {
    let mut whole = Received::default();
    let mut s = compiled.run(&run_opts(1)).expect("the pipeline opens");
    pull(&mut s, &mut whole, LIMIT, &[1]);
    drop(s);

    let mut parts = Received::default();
    let mut s = compiled
        .run(&run_opts(threads.0))
        .expect("the pipeline opens");
    // With block sizes above one, the consumer also pulls a block it never uses (Python's
    // iterator holds one): the state is then a position inside that block.
    let overshoot = sizes[0] > 1;
    if overshoot {
        s.keep_block_marks();
    }
    pull(&mut s, &mut parts, cut.min(LIMIT), sizes);
    if parts.error.is_none() {
        let extra = if overshoot {
            s.next_block(sizes[0])
        } else {
            None
        };
        let unused = match extra {
            Some(chunk) if chunk.error.is_none() => chunk.block.len() as u64,
            // A block that ends in an error: keep the rows, the error comes again.
            Some(chunk) => {
                let mut r = Received::default();
                for row in chunk.block.into_rows() {
                    r.elements.push(encode(&row));
                }
                let n = r.elements.len().min(LIMIT - parts.elements.len());
                parts.elements.extend(r.elements.into_iter().take(n));
                if parts.elements.len() < LIMIT {
                    parts.error = chunk.error.map(|d| d.code.to_string());
                }
                assert_eq!(
                    whole, parts,
                    "cut after {cut}, with an error in the next block"
                );
                return;
            }
            _ => 0,
        };
        let state = compiled
            .save_state_within_block(&mut s, unused)
            .expect("the state saves");
        drop(s);
        let mut r = compiled
            .resume(&run_opts(threads.1), &state)
            .expect("the state resumes");
        let left = LIMIT - parts.elements.len();
        pull(&mut r, &mut parts, left, &sizes[1..]);
    }
    if whole != parts {
        let i = (0..whole.elements.len().max(parts.elements.len()))
            .find(|&i| whole.elements.get(i) != parts.elements.get(i))
            .unwrap_or(0);
        panic!(
            "cut after {cut} elements at --threads {} and resumed at {} (sizes {sizes:?}): \
             not the uninterrupted run; {} vs {} elements, errors {:?} vs {:?}, first \
             difference at {i}: {:?} vs {:?}",
            threads.0,
            threads.1,
            whole.elements.len(),
            parts.elements.len(),
            whole.error,
            parts.error,
            whole.elements.get(i),
            parts.elements.get(i)
        );
    }
}

/// The fuzz target `resume`: a generated pipeline ([`checkpoint_program`]) cut and resumed.
pub fn resume(data: &[u8]) {
    pipec::limits::set_max_memory(Some(FUZZ_MEMORY));
    let (head, rest) = data.split_at(data.len().min(4));
    let h = |i: usize| head.get(i).copied().unwrap_or(0) as usize;
    let text = checkpoint_program(rest);
    let opts = CompileOptions {
        opt_level: if h(0) % 3 == 0 { 0 } else { 2 },
        ..Default::default()
    };
    let Ok(compiled) = Compiler::new().compile(&SourceFile::from_text("gen.pipe", &text), &opts)
    else {
        return;
    };
    let sizes = [[1, 1, 1], [7, 3, 64], [64, 1, 5]][h(1) % 3];
    check_resume(
        &compiled,
        h(2) % 40,
        (1 + h(3) % 3, 1 + (h(3) / 3) % 3),
        &sizes,
    );
}

/// The fuzz target `state`: any bytes given to `--resume` are a coded error or a run.
pub fn state(data: &[u8]) {
    pipec::limits::set_max_memory(Some(FUZZ_MEMORY));
    if let Err(d) = pipec::checkpoint::decode(data) {
        assert_eq!(d.code, pipec::Code::BadStateFile, "{d:?}");
    }
    let text = "pipeline main = range(30).prefetch(1).shuffle(4, seed: 1).batch(3).repeat(2)\n";
    let compiled = Compiler::new()
        .compile(
            &SourceFile::from_text("state.pipe", text),
            &CompileOptions::default(),
        )
        .expect("the fixed program compiles");
    // The fingerprint check comes first: swap in this program's, so the tree is exercised.
    let bytes = match pipec::checkpoint::decode(data) {
        // A position a million elements on is valid, only slow to reach: not a bug to find.
        Ok(d) if has_large_number(&format!("{:?}", d.state)) => return,
        Ok(d) => pipec::checkpoint::encode(&d.state, compiled.fingerprint()),
        Err(_) => data.to_vec(),
    };
    if let Ok(s) = compiled.resume(&run_opts(2), &bytes) {
        for e in s.take(LIMIT) {
            if e.is_err() {
                break;
            }
        }
    }
}

/// Whether `text` holds a decimal number above a million.
fn has_large_number(text: &str) -> bool {
    text.split(|c: char| !c.is_ascii_digit())
        .any(|w| w.len() > 6)
}

/// One element as text: each leaf's dtype, shape and values as numpy prints them (the
/// shortest text that reads back to the same bits).
fn encode(leaves: &[Tensor]) -> String {
    leaves
        .iter()
        .map(|t| {
            format!(
                "{}{:?} {}",
                t.dtype(),
                t.shape(),
                pipec::format::format_tensor(t)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// `text` compiled at `opt_level`, or its diagnostics rendered (for a test's message).
pub fn compile_text(text: &str, opt_level: u8) -> Result<pipec::Compiled, String> {
    Compiler::new()
        .compile(
            &SourceFile::from_text("gen.pipe", text),
            &CompileOptions {
                opt_level,
                ..Default::default()
            },
        )
        .map_err(|d| pipec::render(&d, "gen.pipe", text, false))
}

/// [`check_resume`] of a generated program `text` at `-O0` (`o0`) or `-O2`, as a property
/// test's verdict: `Err` says the generator made a program that does not compile, or that
/// resuming broke (the run's text in one line, for the failure report).
pub fn check_generated_resume(
    text: &str,
    o0: bool,
    cut: usize,
    threads: (usize, usize),
    sizes: &[usize],
) -> Result<(), String> {
    // Every generated program compiles; a failure here is a generator bug.
    let c = compile_text(text, if o0 { 0 } else { 2 })
        .map_err(|d| format!("does not compile:\n{text}{d}"))?;
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        check_resume(&c, cut, threads, sizes)
    }))
    .map_err(|_| format!("program: {}", text.replace('\n', " ")))
}

/// [`check_resume`] of `text` at -O0 and -O2, cut at each of `cuts`, under the three pull
/// patterns, resumed at more and at fewer threads than the first run.
pub fn check_resume_at_cuts(text: &str, cuts: &[usize]) {
    for level in [0, 2] {
        let c = compile_text(text, level).expect("compiles");
        for &cut in cuts {
            for sizes in [[1, 1, 1], [7, 3, 64], [64, 1, 5]] {
                check_resume(&c, cut, (3, 1), &sizes);
                check_resume(&c, cut, (1, 2), &sizes);
            }
        }
    }
}
