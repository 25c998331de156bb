//! Iterator state: where a running pipeline is, so that a later run can continue exactly
//! after the last element delivered (`--save-state`, `--resume`, Python's `it.state()`).
//!
//! A state is a tree of [`NodeState`]s mirroring the stream tree, plus a [`PlanState`] per
//! `shuffle` node (the seed it drew). Every epoch of a `repeat` reshuffles with the next
//! seed, so the nodes that reopen plans (`repeat`, `concatenate`, `cache`) also save the
//! epoch counters of the `shuffle`s below them, as of their own position; a resumed run sets
//! them before restoring (and replaying) what is below. It holds positions, counters and
//! seeds; the one
//! exception is a `shuffle` buffer, which is stored (its elements, bounded by the buffer
//! size): rebuilding it by replay would cost a whole epoch's prefix.
//!
//! Nodes that compute ahead of their consumer (`prefetch`, maps and filters on lanes, a
//! parallel `map`, `batch` and `unbatch` holding rows of a block) never save what they
//! computed ahead: they keep *marks*, snapshots of their input's state taken before a pull
//! from it, and save "the input as of mark M, then drop the first K of my outputs". Restoring
//! recomputes at most the rows between the mark and the position (one block, usually).
//! Marks are only taken when the run was opened with [`crate::RunOptions::checkpoints`], and
//! a mark over an input holding a large buffer is taken less often (every four times as many
//! rows as the buffer holds), so its cost stays a fraction of the buffer's own.
//!
//! The encoding ([`encode`], [`decode`]) is a small self-describing container: a magic line,
//! a format version, a JSON header (the fingerprint the library checks, the tree) and the
//! shuffle buffers' tensors as `.npy` blobs. [`decode`] never panics: any byte string that is
//! not a state is an E0820 diagnostic.

use crate::Element;
use pipec_diag::{Code, Diagnostic};
use pipec_tensor::Tensor;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// The version of the encoding; a state of another version is refused with E0820.
pub const STATE_VERSION: u32 = 1;

/// The first bytes of every state file.
const MAGIC: &[u8] = b"pipec-state\n";

/// A running pipeline's position.
#[derive(Clone, Debug, PartialEq)]
pub struct RunState {
    /// The output stream's state.
    pub root: NodeState,
    /// Per-plan state (`shuffle` seeds and epoch counters), by dataset node index.
    pub plans: BTreeMap<u32, PlanState>,
    /// Elements delivered so far, over every resumed run (informational: shown to users).
    pub delivered: u64,
    /// Elements of the restored root to drop (a position inside a block a consumer pulled).
    pub skip: u64,
}

/// State shared by every stream a plan opens.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum PlanState {
    /// A `shuffle`: the seed it resolved (drawn when the program gives none).
    Shuffle {
        /// The base seed.
        seed: u64,
    },
    /// A `global_shuffle`: the seed it resolved (drawn when the program gives none).
    GlobalShuffle {
        /// The permutation's seed.
        seed: u64,
    },
    /// A `cache` whose first pass completed: the epoch counters of the `shuffle`s below as
    /// that pass began. A resumed run that opens it again rebuilds it with them (its
    /// elements are not in the state), rather than recording a later epoch's.
    Cache {
        /// The counters, by plan id.
        opens: Vec<(u32, u64)>,
    },
}

/// Elements held in a state (a `shuffle` buffer): in memory, or as blob indices once encoded.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Rows {
    /// The elements themselves.
    Live(Vec<Element>),
    /// In an encoded state: `rows` elements, each leaf stacked in one blob when every
    /// element's leaf has one shape and dtype, else one blob per element.
    Stored(StoredRows),
    /// No elements.
    #[default]
    Empty,
}

/// The encoded form of [`Rows`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredRows {
    /// How many elements.
    pub rows: u64,
    /// One entry per leaf.
    pub leaves: Vec<StoredLeaf>,
}

/// Where one leaf of stored elements is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum StoredLeaf {
    /// Blob `n` holds every element's leaf, stacked along a new first axis.
    Stacked(u32),
    /// Blob `n[i]` holds element `i`'s leaf.
    Each(Vec<u32>),
}

impl Rows {
    /// How many elements.
    pub fn len(&self) -> usize {
        match self {
            Rows::Live(v) => v.len(),
            Rows::Stored(s) => usize::try_from(s.rows).unwrap_or(usize::MAX),
            Rows::Empty => 0,
        }
    }

    /// Whether no element is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements (after [`decode`], which makes every `Stored` live).
    pub fn into_live(self) -> Vec<Element> {
        match self {
            Rows::Live(v) => v,
            _ => Vec::new(),
        }
    }
}

impl Serialize for Rows {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Rows::Stored(r) => r.serialize(s),
            Rows::Empty => StoredRows {
                rows: 0,
                leaves: Vec::new(),
            }
            .serialize(s),
            Rows::Live(_) => Err(serde::ser::Error::custom(
                "live rows must be moved to blobs before encoding",
            )),
        }
    }
}

impl<'de> Deserialize<'de> for Rows {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Rows::Stored(StoredRows::deserialize(d)?))
    }
}

/// The state of one stream. Every stream kind of the runtime has one (a map and a filter
/// share one, whether they run per element, on lanes or as a parallel map, so a state
/// resumes at any `--threads`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum NodeState {
    /// `from_tensor_slices`: the next row.
    Slices {
        /// Index of the next row.
        next: u64,
    },
    /// `from_tensors`: whether its one element was delivered.
    Whole {
        /// Delivered.
        done: bool,
    },
    /// `range`: the next value and the end (which an overflowing step moves).
    Range {
        /// The next value.
        cur: i64,
        /// The end (exclusive).
        stop: i64,
    },
    /// `read_csv`: rows delivered (a resumed run reads and drops them: CSV has no index).
    Csv {
        /// Rows delivered.
        rows: u64,
    },
    /// `read_lines`: lines delivered (a resumed run reads and drops them).
    Lines {
        /// Lines delivered.
        rows: u64,
    },
    /// `map` or `filter`: the input as of a mark, then `skip` outputs to drop.
    Stage {
        /// The input's state at the mark.
        input: Box<NodeState>,
        /// Outputs of this node after the mark that were already delivered.
        skip: u64,
        /// The dataset index of the next input element at the mark (for error messages).
        count: u64,
        /// The epoch its random ops draw with (the how-many-th opening of the node).
        #[serde(default)]
        epoch: u64,
    },
    /// `batch`: the input as of a mark, then `skip` input rows already in delivered batches.
    Batch {
        /// The input's state at the mark.
        input: Box<NodeState>,
        /// Input rows to drop after restoring.
        skip: u64,
        /// Input rows delivered in batches (for error messages).
        count: u64,
    },
    /// `padded_batch`: reads exactly its batches, so only its input.
    PaddedBatch {
        /// The input's state.
        input: Box<NodeState>,
    },
    /// `unbatch`: the input before the batch being split, and the rows of it delivered.
    Unbatch {
        /// The input's state at the mark.
        input: Box<NodeState>,
        /// Outputs to drop after restoring.
        skip: u64,
    },
    /// `shuffle`: its input (none once exhausted), its buffer and its generator.
    Shuffle {
        /// The input's state, `None` once the input ended.
        input: Option<Box<NodeState>>,
        /// The buffer, in slot order.
        buffer: Rows,
        /// The generator's state.
        rng: u64,
    },
    /// `repeat`: the epoch, and the current epoch's stream if one is open.
    Repeat {
        /// Epochs completed.
        epoch: u64,
        /// The epoch counters of the `shuffle`s it reopens, by node index.
        opens: Vec<(u32, u64)>,
        /// Whether the current epoch produced anything yet.
        seen: bool,
        /// Whether an empty epoch ended it (states of older versions never say so).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        ended: bool,
        /// The open epoch's state.
        current: Option<Box<NodeState>>,
    },
    /// `take`: elements still to deliver.
    Take {
        /// The input's state.
        input: Box<NodeState>,
        /// Elements left.
        left: u64,
    },
    /// `skip`: elements still to drop.
    Skip {
        /// The input's state.
        input: Box<NodeState>,
        /// Elements left to drop.
        left: u64,
    },
    /// `zip`: every input.
    Zip {
        /// The inputs' states.
        inputs: Vec<NodeState>,
    },
    /// `concatenate`: the first input until it ends, then the second.
    Concat {
        /// The epoch counters of the `shuffle`s in the second input, by node index.
        opens: Vec<(u32, u64)>,
        /// The first input's state, `None` once it ended.
        first: Option<Box<NodeState>>,
        /// The second input's state, once opened.
        second: Option<Box<NodeState>>,
    },
    /// `enumerate`: the next count.
    Enumerate {
        /// The input's state.
        input: Box<NodeState>,
        /// The next index.
        next: i64,
    },
    /// `shard`: the input position.
    Shard {
        /// The input's state.
        input: Box<NodeState>,
        /// Input elements read.
        pos: u64,
    },
    /// `prefetch(n)`: the input as of a mark, then `skip` elements already delivered.
    Prefetch {
        /// The input's state at the mark.
        input: Box<NodeState>,
        /// Elements to drop after restoring.
        skip: u64,
    },
    /// `cache`, first pass: elements recorded (a resumed run replays them from the input).
    CacheRecord {
        /// Elements recorded so far.
        seen: u64,
        /// The epoch counters of the `shuffle`s below as the pass began.
        opens: Vec<(u32, u64)>,
    },
    /// `cache`, later passes: the next element (a resumed run first rebuilds the cache by
    /// running its input's first pass again).
    CacheReplay {
        /// The next element.
        next: u64,
        /// The epoch counters of the `shuffle`s below as the first pass began.
        opens: Vec<(u32, u64)>,
    },
    /// `global_shuffle`: the epoch its permutation is keyed by and the next output position.
    GlobalShuffle {
        /// The epoch (with the plan's seed, the permutation).
        epoch: u64,
        /// The next output position.
        pos: u64,
        /// The epoch counters below as of before the input's random-access view was built
        /// (building takes epochs from the maps' counters).
        opens: Vec<(u32, u64)>,
    },
    /// `interleave`/`flat_map`: its input, the round-robin position and each open slot.
    Interleave {
        /// The input's state (it reads no element ahead).
        input: Box<NodeState>,
        /// The epoch its function draws with, and from which the inner datasets' derive.
        epoch: u64,
        /// Input elements read (the next one's index).
        count: u64,
        /// The slot being visited.
        cycle: u64,
        /// Elements taken from it in this visit.
        block: u64,
        /// Whether the input ended.
        ended: bool,
        /// Each slot: empty, or the inner dataset open in it.
        slots: Vec<Option<SlotState>>,
    },
    /// `read_tfrecord`: the file being read and the records of it delivered (a resumed run
    /// steps over them by their framing, without reading their data where it can seek).
    TfRecord {
        /// The index of the file in the source's list.
        file: u64,
        /// Records of that file delivered.
        record: u64,
    },
    /// A table transformation (`pipec_ir::TRANSFORMS`): its input (none once it stopped
    /// pulling) and the counters its stream keeps (`stream/transforms.rs` says which).
    Transform {
        /// The row's name, checked against the node when restoring.
        name: String,
        /// The input's state, `None` once the node stopped reading it.
        input: Option<Box<NodeState>>,
        /// The stream's counters.
        counters: Vec<u64>,
    },
    /// `read_parquet`: the file being read and the next row of it (a resumed run opens the
    /// file there, reading no row group before it).
    Parquet {
        /// The index of the file in the source's list.
        file: u64,
        /// The next row of that file.
        row: u64,
    },
}

/// An inner dataset open in an `interleave` slot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotState {
    /// The index of the input element it was built from.
    pub index: u64,
    /// What the interleave's function returned for that element (the values the inner
    /// sources read): one element, stored like a `shuffle` buffer.
    pub args: Rows,
    /// The seeds the inner pipeline's `shuffle`s drew, by inner node index (a list: JSON
    /// map keys inside a tagged enum do not read back as numbers).
    pub plans: Vec<(u32, PlanState)>,
    /// The inner stream's state.
    pub state: Box<NodeState>,
}

impl NodeState {
    /// The inputs' states, for walks over the tree.
    fn children_mut(&mut self) -> Vec<&mut NodeState> {
        use NodeState::*;
        match self {
            Slices { .. }
            | Whole { .. }
            | Range { .. }
            | Csv { .. }
            | Lines { .. }
            | CacheRecord { .. }
            | CacheReplay { .. }
            | GlobalShuffle { .. }
            | TfRecord { .. }
            | Parquet { .. } => Vec::new(),
            Stage { input, .. }
            | Batch { input, .. }
            | PaddedBatch { input }
            | Unbatch { input, .. }
            | Take { input, .. }
            | Skip { input, .. }
            | Enumerate { input, .. }
            | Shard { input, .. }
            | Prefetch { input, .. } => vec![input.as_mut()],
            Shuffle { input, .. } | Transform { input, .. } => {
                input.iter_mut().map(|b| b.as_mut()).collect()
            }
            Repeat { current, .. } => current.iter_mut().map(|b| b.as_mut()).collect(),
            Zip { inputs } => inputs.iter_mut().collect(),
            Concat { first, second, .. } => first
                .iter_mut()
                .chain(second.iter_mut())
                .map(|b| b.as_mut())
                .collect(),
            Interleave { input, slots, .. } => std::iter::once(input.as_mut())
                .chain(slots.iter_mut().flatten().map(|s| s.state.as_mut()))
                .collect(),
        }
    }

    /// The elements this node itself holds (a `shuffle` buffer, an `interleave`'s slot
    /// arguments), which encoding moves to blobs.
    fn rows_mut(&mut self) -> Vec<&mut Rows> {
        match self {
            NodeState::Shuffle { buffer, .. } => vec![buffer],
            NodeState::Interleave { slots, .. } => {
                slots.iter_mut().flatten().map(|s| &mut s.args).collect()
            }
            _ => Vec::new(),
        }
    }

    /// How many elements the state holds (its shuffle buffers): what copying it costs.
    pub fn weight(&self) -> u64 {
        use NodeState::*;
        match self {
            Slices { .. }
            | Whole { .. }
            | Range { .. }
            | Csv { .. }
            | Lines { .. }
            | CacheRecord { .. }
            | CacheReplay { .. }
            | GlobalShuffle { .. }
            | TfRecord { .. }
            | Parquet { .. } => 0,
            Stage { input, .. }
            | Batch { input, .. }
            | PaddedBatch { input }
            | Unbatch { input, .. }
            | Take { input, .. }
            | Skip { input, .. }
            | Enumerate { input, .. }
            | Shard { input, .. }
            | Prefetch { input, .. } => input.weight(),
            Shuffle { input, buffer, .. } => {
                buffer.len() as u64 + input.as_ref().map_or(0, |i| i.weight())
            }
            Repeat { current, .. } => current.as_ref().map_or(0, |c| c.weight()),
            Transform { input, .. } => input.as_ref().map_or(0, |i| i.weight()),
            Zip { inputs } => inputs.iter().map(NodeState::weight).sum(),
            Concat { first, second, .. } => {
                first.as_ref().map_or(0, |f| f.weight()) + second.as_ref().map_or(0, |s| s.weight())
            }
            // Each slot holds its arguments (one element) besides its inner state.
            Interleave { input, slots, .. } => {
                input.weight()
                    + slots
                        .iter()
                        .flatten()
                        .map(|s| 1 + s.state.weight())
                        .sum::<u64>()
            }
        }
    }
}

/// Marks a read-ahead node keeps: its input's state before some of its pulls, each with the
/// position (in the node's own units) it stands for.
#[derive(Default)]
pub(crate) struct Marks {
    /// (position, input state, the node's own counter there).
    marks: VecDeque<(u64, NodeState, u64)>,
    /// Units to let pass before the next mark (grows with the input state's weight).
    interval: u64,
    /// The position of the last mark.
    last: u64,
    /// Why the input cannot be saved, once a snapshot failed.
    pub(crate) failed: Option<Diagnostic>,
}

impl Marks {
    /// Whether a mark is due at `pos` (always the first; then every `interval` units).
    pub(crate) fn due(&self, pos: u64) -> bool {
        self.failed.is_none()
            && (self.marks.is_empty() || pos >= self.last.saturating_add(self.interval))
    }

    /// Records the input's state `st` as standing for position `pos`.
    pub(crate) fn push(&mut self, pos: u64, st: Result<NodeState, Diagnostic>, extra: u64) {
        match st {
            Ok(st) => {
                // Copying a buffer of W elements every 4 W units costs a quarter of an
                // element copy per unit; a resume then recomputes at most about 4 W units.
                self.interval = st.weight().saturating_mul(4);
                self.last = pos;
                self.marks.push_back((pos, st, extra));
            }
            Err(d) => self.failed = Some(d),
        }
    }

    /// The latest mark at or before `pos`, how far past it `pos` is, and the counter kept
    /// with it; older marks go.
    pub(crate) fn at(&mut self, pos: u64) -> Result<(NodeState, u64, u64), Diagnostic> {
        if let Some(d) = &self.failed {
            return Err(d.clone());
        }
        while self.marks.len() > 1 && self.marks[1].0 <= pos {
            self.marks.pop_front();
        }
        match self.marks.front() {
            Some((p, st, extra)) if *p <= pos => Ok((st.clone(), pos - p, *extra)),
            _ => Err(not_tracked()),
        }
    }
}

/// A read-ahead node asked for its state in a run not opened for checkpoints.
pub(crate) fn not_tracked() -> Diagnostic {
    Diagnostic::error(
        Code::CannotCheckpoint,
        "the run was not opened for checkpoints: a node that computes ahead kept no marks",
    )
    .with_help("open the run with checkpoints on (`--save-state`, or Python's iterator)")
}

/// A stream kind that has no saved form yet.
pub(crate) fn cannot_save(what: &str) -> Diagnostic {
    Diagnostic::error(
        Code::CannotCheckpoint,
        format!("`{what}` cannot save its position yet, so this pipeline cannot checkpoint"),
    )
    .with_help("run without `--save-state`/`--resume`, or move the transformation")
}

/// A state that does not fit the pipeline it is restored into.
pub(crate) fn mismatch(what: &str) -> Diagnostic {
    Diagnostic::error(
        Code::BadStateFile,
        format!("the state does not fit this pipeline: {what}"),
    )
    .with_help("resume with the state a run of this same program and pipeline saved")
}

/// The JSON header of an encoded state.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: String,
    version: u32,
    fingerprint: BTreeMap<String, String>,
    delivered: u64,
    skip: u64,
    plans: BTreeMap<u32, PlanState>,
    root: NodeState,
}

/// Encodes `state` with `fingerprint` (what the library checks on resume).
pub fn encode(state: &RunState, fingerprint: &BTreeMap<String, String>) -> Vec<u8> {
    let mut root = state.root.clone();
    let mut blobs: Vec<Vec<u8>> = Vec::new();
    let mut stack = vec![&mut root];
    while let Some(n) = stack.pop() {
        for buffer in n.rows_mut() {
            let rows = std::mem::take(buffer).into_live();
            *buffer = Rows::Stored(store_rows(&rows, &mut blobs));
        }
        stack.extend(n.children_mut());
    }
    let header = Header {
        format: "pipec-state".into(),
        version: STATE_VERSION,
        fingerprint: fingerprint.clone(),
        delivered: state.delivered,
        skip: state.skip,
        plans: state.plans.clone(),
        root,
    };
    // Only live rows can fail to serialize, and every one was just stored.
    let json = serde_json::to_vec(&header).unwrap_or_default();
    let mut out = Vec::with_capacity(
        MAGIC.len() + 16 + json.len() + blobs.iter().map(|b| b.len() + 8).sum::<usize>(),
    );
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&STATE_VERSION.to_le_bytes());
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&(blobs.len() as u64).to_le_bytes());
    for b in blobs {
        out.extend_from_slice(&(b.len() as u64).to_le_bytes());
        out.extend_from_slice(&b);
    }
    out
}

fn store_rows(rows: &[Element], blobs: &mut Vec<Vec<u8>>) -> StoredRows {
    let n_leaves = rows.first().map_or(0, Vec::len);
    let mut leaves = Vec::with_capacity(n_leaves);
    for leaf in 0..n_leaves {
        let parts: Vec<Tensor> = rows.iter().map(|r| r[leaf].clone()).collect();
        let same = parts
            .windows(2)
            .all(|w| w[0].shape() == w[1].shape() && w[0].dtype() == w[1].dtype());
        let stacked = if same {
            pipec_tensor::kernels::stack(&parts, 0).ok()
        } else {
            None
        };
        match stacked {
            Some(t) => {
                leaves.push(StoredLeaf::Stacked(blobs.len() as u32));
                blobs.push(pipec_tensor::io::encode_npy(&t));
            }
            None => {
                let mut ids = Vec::with_capacity(parts.len());
                for t in &parts {
                    ids.push(blobs.len() as u32);
                    blobs.push(pipec_tensor::io::encode_npy(t));
                }
                leaves.push(StoredLeaf::Each(ids));
            }
        }
    }
    StoredRows {
        rows: rows.len() as u64,
        leaves,
    }
}

/// A decoded state file: its fingerprint and the state.
#[derive(Debug)]
pub struct Decoded {
    /// What the saving run recorded about itself (program hash, pipeline, params, shard …).
    pub fingerprint: BTreeMap<String, String>,
    /// The position.
    pub state: RunState,
}

fn bad(msg: impl std::fmt::Display) -> Diagnostic {
    Diagnostic::error(
        Code::BadStateFile,
        format!("this is not a pipec state file, or it is damaged: {msg}"),
    )
    .with_help("pass a file that `--save-state` (or Python's `it.state()`) wrote")
}

/// Reads bytes taken from the front of a slice, with a clear error when they run out.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8], Diagnostic> {
        let n = usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.bytes.len())
            .ok_or_else(|| bad(format!("it ends inside the {what}")))?;
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u64(&mut self, what: &str) -> Result<u64, Diagnostic> {
        let b = self.take(8, what)?;
        Ok(u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    }
}

/// Decodes a state written by [`encode`]: any other bytes are E0820, never a panic.
pub fn decode(bytes: &[u8]) -> Result<Decoded, Diagnostic> {
    let mut r = Reader { bytes };
    if r.take(MAGIC.len() as u64, "magic line")? != MAGIC {
        return Err(bad("it does not start with `pipec-state`"));
    }
    let v = r.take(4, "version")?;
    let version = u32::from_le_bytes(v.try_into().unwrap_or([0; 4]));
    if version != STATE_VERSION {
        return Err(Diagnostic::error(
            Code::BadStateFile,
            format!(
                "the state file has format version {version}; this pipec reads version {STATE_VERSION}"
            ),
        )
        .with_help("resume with the pipec that saved it, or start the run again"));
    }
    let len = r.u64("header length")?;
    let json = r.take(len, "header")?;
    let header: Header = serde_json::from_slice(json).map_err(|e| bad(format!("header: {e}")))?;
    if header.format != "pipec-state" || header.version != version {
        return Err(bad("the header names another format"));
    }
    let n = r.u64("blob count")?;
    // Each blob takes at least its 8-byte length: a count past that is damage, not memory.
    if n > (r.bytes.len() / 8) as u64 {
        return Err(bad("it ends inside the blobs"));
    }
    let mut blobs = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let len = r.u64("blob length")?;
        blobs.push(r.take(len, "blob")?);
    }
    if !r.bytes.is_empty() {
        return Err(bad("there are bytes after the last blob"));
    }
    let mut root = header.root;
    let mut stack = vec![&mut root];
    while let Some(node) = stack.pop() {
        for buffer in node.rows_mut() {
            let stored = match std::mem::take(buffer) {
                Rows::Stored(s) => s,
                _ => StoredRows {
                    rows: 0,
                    leaves: Vec::new(),
                },
            };
            *buffer = Rows::Live(load_rows(&stored, &blobs)?);
        }
        stack.extend(node.children_mut());
    }
    Ok(Decoded {
        fingerprint: header.fingerprint,
        state: RunState {
            root,
            plans: header.plans,
            delivered: header.delivered,
            skip: header.skip,
        },
    })
}

fn load_rows(s: &StoredRows, blobs: &[&[u8]]) -> Result<Vec<Element>, Diagnostic> {
    let rows = usize::try_from(s.rows).map_err(|_| bad("a buffer is too long"))?;
    if rows > 0 && s.leaves.is_empty() || rows == 0 && !s.leaves.is_empty() {
        return Err(bad("a buffer's rows and leaves disagree"));
    }
    let blob = |id: u32| -> Result<Tensor, Diagnostic> {
        let b = blobs
            .get(id as usize)
            .ok_or_else(|| bad(format!("blob {id} does not exist")))?;
        pipec_tensor::io::parse_npy(b).map_err(|e| bad(format!("blob {id}: {e}")))
    };
    let mut out: Vec<Element> = Vec::new();
    for leaf in &s.leaves {
        let parts: Vec<Tensor> = match leaf {
            StoredLeaf::Stacked(id) => {
                let t = blob(*id)?;
                if t.shape().first() != Some(&rows) {
                    return Err(bad(format!("blob {id} does not hold {rows} rows")));
                }
                (0..rows).map(|i| t.index_axis0(i)).collect()
            }
            StoredLeaf::Each(ids) => {
                if ids.len() != rows {
                    return Err(bad("a buffer's leaf has the wrong number of blobs"));
                }
                ids.iter().map(|&id| blob(id)).collect::<Result<_, _>>()?
            }
        };
        if out.is_empty() {
            out = parts.into_iter().map(|t| vec![t]).collect();
        } else {
            for (e, t) in out.iter_mut().zip(parts) {
                e.push(t);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RunState {
        let buf: Vec<Element> = (0..5i64)
            .map(|i| {
                vec![
                    Tensor::scalar(i),
                    Tensor::from_vec(&[i as usize], vec![1.5f32; i as usize]).unwrap(),
                ]
            })
            .collect();
        RunState {
            root: NodeState::Take {
                input: Box::new(NodeState::Shuffle {
                    input: Some(Box::new(NodeState::Range { cur: 7, stop: 100 })),
                    buffer: Rows::Live(buf),
                    rng: 42,
                }),
                left: 3,
            },
            plans: [(1, PlanState::Shuffle { seed: 9 })].into(),
            delivered: 12,
            skip: 2,
        }
    }

    #[test]
    fn round_trip_keeps_every_field_and_element() {
        let fp: BTreeMap<String, String> = [("program".to_string(), "abc".to_string())].into();
        let bytes = encode(&sample(), &fp);
        let d = decode(&bytes).unwrap();
        assert_eq!(d.fingerprint, fp);
        assert_eq!(d.state, sample());
    }

    #[test]
    fn every_truncation_and_bit_flip_is_an_error_not_a_panic() {
        let bytes = encode(&sample(), &BTreeMap::new());
        for n in 0..bytes.len() {
            let e = decode(&bytes[..n]).unwrap_err();
            assert_eq!(e.code, Code::BadStateFile);
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x5a;
            // A flip may still decode (a digit in the JSON); it must never panic.
            let _ = decode(&b);
        }
    }
}
