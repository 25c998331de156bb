//! Checkpoints: saving a running pipeline's position and resuming it (SPEC §15,
//! `--save-state`/`--resume`, Python's `it.state()`/`resume=`).
//!
//! The runtime (`pipec_interp::state`) knows positions; this module adds the fingerprint of
//! the run that saved them and checks it on resume, so a state is never resumed into another
//! program, pipeline, parameter set, shard or optimization level (whose dataset graphs
//! differ). `--threads` is not part of it: a map saves the same state whether it runs per
//! element, on lanes or as a parallel map.

use crate::{CompileOptions, Compiled, ElementStream, RunOptions, SourceFile};
use pipec_diag::{Code, Diagnostic};
use std::collections::BTreeMap;
use std::path::Path;

pub use pipec_interp::state::{Decoded, RunState, STATE_VERSION, decode, encode};

/// FNV-1a, 64 bits: a stable hash of the program text (the same on every machine and
/// version of Rust, unlike `std`'s hasher).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The fingerprint of a compiled run: what must be equal for a state to resume.
pub(crate) fn fingerprint(
    source: &SourceFile,
    opts: &CompileOptions,
    pipeline: &str,
    passes: &[String],
) -> BTreeMap<String, String> {
    // The last value given for a name is the one used.
    let params: BTreeMap<&str, String> = opts
        .params
        .iter()
        .map(|(n, v)| (n.as_str(), v.to_string()))
        .collect();
    let params: Vec<String> = params.iter().map(|(n, v)| format!("{n}={v}")).collect();
    BTreeMap::from([
        (
            "program".to_string(),
            format!("{:016x}", fnv1a(source.text.as_bytes())),
        ),
        ("pipeline".to_string(), pipeline.to_string()),
        ("params".to_string(), params.join(" ")),
        (
            "shard".to_string(),
            opts.shard
                .map_or(String::new(), |(i, n)| format!("{i}/{n}")),
        ),
        ("passes".to_string(), passes.join(",")),
    ])
}

/// What a fingerprint entry is called in messages.
fn describe(key: &str) -> &str {
    match key {
        "program" => "the program text (its hash) differs",
        "pipeline" => "the pipeline (--pipeline) differs",
        "params" => "the parameters (--set) differ",
        "shard" => "the shard (--shard) differs",
        "passes" => "the optimization passes (-O, --passes) differ",
        _ => "a part of the fingerprint differs",
    }
}

fn shown(v: Option<&String>) -> String {
    match v {
        Some(v) if !v.is_empty() => format!("`{v}`"),
        _ => "none".to_string(),
    }
}

/// Checks that a state saved with `saved` may resume in a run whose fingerprint is `now`.
pub fn check_fingerprint(
    saved: &BTreeMap<String, String>,
    now: &BTreeMap<String, String>,
) -> Result<(), Diagnostic> {
    let mut keys: Vec<&String> = saved.keys().chain(now.keys()).collect();
    keys.sort();
    keys.dedup();
    let diffs: Vec<String> = keys
        .into_iter()
        .filter(|k| saved.get(*k) != now.get(*k))
        .map(|k| {
            format!(
                "{} (saved: {}, now: {})",
                describe(k),
                shown(saved.get(k)),
                shown(now.get(k))
            )
        })
        .collect();
    if diffs.is_empty() {
        return Ok(());
    }
    Err(Diagnostic::error(
        Code::StateMismatch,
        format!("the state was saved by another run: {}", diffs.join("; ")),
    )
    .with_help(
        "resume with the same program, --pipeline, --set, --shard and -O level that saved the state",
    ))
}

impl Compiled {
    /// What a state saved from this compiled run records about it (see [`check_fingerprint`]).
    pub fn fingerprint(&self) -> &BTreeMap<String, String> {
        &self.fingerprint
    }

    /// The position of `stream` (opened from this program with
    /// [`RunOptions::checkpoints`]) after the last element it handed out, encoded.
    pub fn save_state(&self, stream: &mut ElementStream) -> Result<Vec<u8>, Diagnostic> {
        Ok(encode(&stream.save()?, &self.fingerprint))
    }

    /// Like [`Compiled::save_state`], for a consumer that still holds the last `unused` rows
    /// of the last block it pulled (they were never handed out).
    pub fn save_state_within_block(
        &self,
        stream: &mut ElementStream,
        unused: u64,
    ) -> Result<Vec<u8>, Diagnostic> {
        Ok(encode(
            &stream.save_within_block(unused)?,
            &self.fingerprint,
        ))
    }

    /// Runs the chosen pipeline from the position `state` (bytes [`Compiled::save_state`]
    /// wrote) records: E0820 if they are not a state, E0821 if another run saved them.
    pub fn resume(&self, opts: &RunOptions, state: &[u8]) -> Result<ElementStream, Diagnostic> {
        let decoded = decode(state)?;
        check_fingerprint(&decoded.fingerprint, &self.fingerprint)?;
        self.run_at(opts, Some(&decoded.state))
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, renamed over
/// `path`, so a reader (or a killed run) never sees half a state. It is not fsynced: a sync
/// costs ~10 ms here, against well under 1 ms for the rest, and `--state-every` may write
/// often; after a machine crash the previous state may be what remains.
pub fn write_state_file(path: &Path, bytes: &[u8]) -> Result<(), Diagnostic> {
    use std::io::Write;
    let fail = |e: std::io::Error| {
        Diagnostic::error(
            Code::OutputFailed,
            format!("cannot write the state file `{}`: {e}", path.display()),
        )
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = std::fs::File::create(&tmp).and_then(|mut f| f.write_all(bytes));
    if let Err(e) = written.and_then(|()| crate::replace_file(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(e));
    }
    Ok(())
}

/// Reads a state file (E0820 when it cannot be read).
pub fn read_state_file(path: &Path) -> Result<Vec<u8>, Diagnostic> {
    std::fs::read(path).map_err(|e| {
        Diagnostic::error(
            Code::BadStateFile,
            format!("cannot read the state file `{}`: {e}", path.display()),
        )
        .with_help("pass a file that `--save-state` (or Python's `it.state()`) wrote")
    })
}
