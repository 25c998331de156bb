//! Dataset pipelines: a petgraph DAG of sources and transformations.
//!
//! Edges point from an input dataset to the node that consumes it; the edge weight is the
//! input's position (`zip(a, b)` has edges weighted 0 and 1). Invariant: exactly one node,
//! [`Pipeline::output`], has no consumer, and every node's element type is what its kind
//! produces from its inputs' element types.

use crate::FuncId;
use crate::transform::Transform;
use crate::types::{Dim, ElemType, Shape, TensorType};
use petgraph::Direction;
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::EdgeRef;
use pipec_diag::Span;
use pipec_tensor::{DType, Scalar, Tensor};
use std::path::PathBuf;

/// A node of a pipeline graph.
pub type DsNodeId = NodeIndex<u32>;

/// Where the data of a source component comes from.
#[derive(Clone, Debug)]
pub enum Source {
    /// A constant known at compile time.
    Const(Tensor),
    /// A `.npy` file, read when the pipeline starts.
    Npy(PathBuf),
    /// One array of a `.npz` file.
    Npz(PathBuf, String),
    /// Inside the dataset an `interleave`/`flat_map` function builds: the `k`-th result of
    /// that function, computed from the input element (`|n| range(n)` reads `n` so).
    Arg(usize),
}

/// The dataset an `interleave` or `flat_map` builds from each input element: a function
/// computing the element's values the inner dataset needs ([`Source::Arg`]), and the inner
/// pipeline, whose sources read them.
#[derive(Clone, Debug)]
pub struct Nested {
    /// Input element leaves → the values the inner pipeline's sources read.
    pub func: FuncId,
    /// The dataset built per input element.
    pub inner: Pipeline,
    /// How many inner datasets are open at once (1 for `flat_map`).
    pub cycle_length: usize,
    /// How many consecutive elements to take from one before moving to the next.
    pub block_length: usize,
    /// `num_parallel_calls`.
    pub parallelism: Parallelism,
    /// `deterministic`.
    pub deterministic: bool,
    /// Written as `flat_map` (printed so).
    pub flat: bool,
}

/// How many elements a `map` processes at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parallelism {
    /// One at a time, in the pulling thread.
    Sequential,
    /// Up to this many lanes.
    Fixed(usize),
    /// `AUTOTUNE`: as many lanes as `--threads`.
    Autotune,
}

/// The most elements a `prefetch` buffers: a larger request is capped (with a remark), so
/// that a huge `n` cannot hold the whole dataset.
pub const MAX_PREFETCH: usize = 1 << 12;

/// What a pipeline node does.
#[derive(Clone, Debug)]
pub enum DsKind {
    /// `range(start, stop, step)`: `i64[]` elements.
    Range {
        /// First value.
        start: i64,
        /// Bound (exclusive).
        stop: i64,
        /// Non-zero step.
        step: i64,
    },
    /// `from_tensor_slices(x)`: slices along axis 0 of each component.
    FromTensorSlices(Vec<Source>),
    /// `from_tensors(x)`: one element, the whole value.
    FromTensors(Vec<Source>),
    /// `read_csv(path, dtype)` as a source: one element per row.
    ReadCsv {
        /// The CSV file.
        path: PathBuf,
        /// Whether the first line is a header (detected at compile time).
        header: bool,
    },
    /// `read_lines(path | paths)`: one `str[]` element per line (`TextLineDataset`).
    ReadLines(Vec<PathBuf>),
    /// `read_tfrecord(path | paths, compression)`: one `str[]` element per record.
    ReadTfRecord {
        /// The files, read in order.
        paths: Vec<PathBuf>,
        /// TF's name for the compression: `""`, `"GZIP"` or `"ZLIB"`.
        compression: String,
    },
    /// `read_parquet(path | paths, columns)`: one dict element per row (its type read from
    /// the first file's schema when compiling).
    ReadParquet {
        /// The files, read in order.
        paths: Vec<PathBuf>,
        /// The columns, in the order of the element's keys.
        columns: Vec<String>,
    },
    /// `map(f)`.
    Map {
        /// The traced function, taking the element's flat leaves.
        func: FuncId,
        /// `num_parallel_calls`.
        parallelism: Parallelism,
        /// `deterministic` (order kept).
        deterministic: bool,
    },
    /// `filter(pred)`.
    Filter {
        /// The predicate, returning one `bool[]`.
        func: FuncId,
    },
    /// `batch(n, drop_remainder)`.
    Batch {
        /// Elements per batch.
        size: usize,
        /// Whether a final short batch is dropped.
        drop_remainder: bool,
    },
    /// `padded_batch(n, padded_shapes, padding_value)`.
    PaddedBatch {
        /// Elements per batch.
        size: usize,
        /// Target shape per leaf (`None`: the longest in the batch).
        padded_shapes: Vec<Option<Vec<Option<usize>>>>,
        /// Padding value per leaf.
        padding_values: Vec<Scalar>,
        /// Whether a final short batch is dropped.
        drop_remainder: bool,
    },
    /// `unbatch()`.
    Unbatch,
    /// `shuffle(buffer, seed, reshuffle_each_iteration)`.
    Shuffle {
        /// Buffer size.
        buffer: usize,
        /// The seed (`None`: a fresh one per run).
        seed: Option<u64>,
        /// Whether each epoch (each reopening, as under `repeat`) draws a new order; when
        /// false every epoch repeats the first epoch's order.
        reshuffle: bool,
    },
    /// `repeat(count)`; `None` repeats forever.
    Repeat(Option<u64>),
    /// `take(n)`; negative takes all.
    Take(i64),
    /// `skip(n)`; negative skips all.
    Skip(i64),
    /// `zip(a, b, ...)`: tuples of the inputs' elements.
    Zip,
    /// `concatenate(other)`.
    Concatenate,
    /// `enumerate(start)`: `(i64[], element)`.
    Enumerate(i64),
    /// `shard(num_shards, index)`.
    Shard {
        /// Number of shards.
        num: u64,
        /// This shard's index.
        index: u64,
    },
    /// `prefetch(n)`, `n` at most [`MAX_PREFETCH`].
    Prefetch(usize),
    /// `cache()`.
    Cache,
    /// `range(start, stop, step)` inside a nested dataset, with bounds computed per input
    /// element: each a constant `i64[]` or a [`Source::Arg`] integer scalar.
    RangeOf(Vec<Source>),
    /// `repeat(count)` inside a nested dataset, with the count computed per input element
    /// (a [`Source::Arg`] integer scalar; a negative count repeats forever).
    RepeatOf(Source),
    /// `interleave(f, ...)` or `flat_map(f)`.
    Interleave(Box<Nested>),
    /// `global_shuffle(seed, reshuffle_each_iteration)`: a uniform permutation of the whole
    /// input, which must have random access (see [`DsKind::keeps_random_access`]).
    GlobalShuffle {
        /// The seed (`None`: a fresh one per run).
        seed: Option<u64>,
        /// Whether each epoch draws a new permutation.
        reshuffle: bool,
    },
    /// A transformation declared in the table of `crate::transform` (`take_while`, ...).
    Transform(Transform),
}

impl DsKind {
    /// The mnemonic printed in the IR.
    pub fn mnemonic(&self) -> &'static str {
        match self {
            DsKind::Range { .. } => "range",
            DsKind::FromTensorSlices(_) => "from_tensor_slices",
            DsKind::FromTensors(_) => "from_tensors",
            DsKind::ReadCsv { .. } => "read_csv",
            DsKind::ReadLines(_) => "read_lines",
            DsKind::ReadTfRecord { .. } => "read_tfrecord",
            DsKind::ReadParquet { .. } => "read_parquet",
            DsKind::Map { .. } => "map",
            DsKind::Filter { .. } => "filter",
            DsKind::Batch { .. } => "batch",
            DsKind::PaddedBatch { .. } => "padded_batch",
            DsKind::Unbatch => "unbatch",
            DsKind::Shuffle { .. } => "shuffle",
            DsKind::Repeat(_) => "repeat",
            DsKind::Take(_) => "take",
            DsKind::Skip(_) => "skip",
            DsKind::Zip => "zip",
            DsKind::Concatenate => "concatenate",
            DsKind::Enumerate(_) => "enumerate",
            DsKind::Shard { .. } => "shard",
            DsKind::Prefetch(_) => "prefetch",
            DsKind::Cache => "cache",
            DsKind::GlobalShuffle { .. } => "global_shuffle",
            DsKind::RangeOf(_) => "range",
            DsKind::RepeatOf(_) => "repeat",
            DsKind::Interleave(n) if n.flat => "flat_map",
            DsKind::Interleave(_) => "interleave",
            DsKind::Transform(t) => t.decl.name,
        }
    }

    /// The function the node runs on its elements (a `map`'s, a `filter`'s, an
    /// `interleave`'s, a table transformation's predicate): what passes keep and renumber.
    pub fn func(&self) -> Option<FuncId> {
        match self {
            DsKind::Map { func, .. } | DsKind::Filter { func } => Some(*func),
            DsKind::Interleave(n) => Some(n.func),
            DsKind::Transform(t) => t.func(),
            _ => None,
        }
    }

    /// [`DsKind::func`], to renumber.
    pub fn func_mut(&mut self) -> Option<&mut FuncId> {
        match self {
            DsKind::Map { func, .. } | DsKind::Filter { func } => Some(func),
            DsKind::Interleave(n) => Some(&mut n.func),
            DsKind::Transform(t) => t.func_mut(),
            _ => None,
        }
    }
}

impl DsKind {
    /// Whether this node has random access when its inputs have it: a source of known length,
    /// or a transformation whose output positions map to known input positions (SPEC §15).
    /// `global_shuffle` needs it of its input; an endless `repeat` has no length, and a
    /// `filter`, `shuffle`, `unbatch` or a short last batch move positions unknowably.
    pub fn keeps_random_access(&self) -> bool {
        match self {
            DsKind::Range { .. }
            | DsKind::RangeOf(_)
            | DsKind::FromTensorSlices(_)
            | DsKind::FromTensors(_)
            | DsKind::Map { .. }
            | DsKind::Take(_)
            | DsKind::Skip(_)
            | DsKind::Repeat(Some(_))
            | DsKind::Zip
            | DsKind::Concatenate
            | DsKind::Enumerate(_)
            | DsKind::Shard { .. } => true,
            DsKind::Batch { drop_remainder, .. } => *drop_remainder,
            DsKind::Transform(t) => t.decl.random_access,
            _ => false,
        }
    }

    /// How many inputs the node takes: `None` for any number (at least one).
    pub fn arity(&self) -> Option<usize> {
        match self {
            DsKind::Range { .. }
            | DsKind::RangeOf(_)
            | DsKind::FromTensorSlices(_)
            | DsKind::FromTensors(_)
            | DsKind::ReadCsv { .. }
            | DsKind::ReadLines(_)
            | DsKind::ReadTfRecord { .. }
            | DsKind::ReadParquet { .. } => Some(0),
            DsKind::Zip => None,
            DsKind::Concatenate => Some(2),
            _ => Some(1),
        }
    }

    /// The element type this node gives for inputs of element types `inputs` (the rule
    /// the tracer types it with, re-run by the verifier), or `None` where the type comes
    /// from outside the graph: a source's data, a `map`'s function (whose results the
    /// verifier compares separately).
    pub fn elem_rule(&self, inputs: &[&ElemType]) -> Option<Result<ElemType, String>> {
        let same = || Some(Ok(inputs[0].clone()));
        let batched = |n: usize, drop: bool| {
            let d0 = if drop { Dim::Known(n) } else { Dim::Unknown };
            inputs[0].map_leaves(&mut |t| TensorType::new(t.dtype, t.shape.prepend(d0)))
        };
        match self {
            DsKind::Range { .. } | DsKind::RangeOf(_) => {
                Some(Ok(ElemType::Tensor(TensorType::scalar(DType::I64))))
            }
            DsKind::Interleave(n) => Some(Ok(n.inner.graph[n.inner.output].elem.clone())),
            DsKind::ReadLines(_) | DsKind::ReadTfRecord { .. } => {
                Some(Ok(ElemType::Tensor(TensorType::scalar(DType::Str))))
            }
            DsKind::ReadParquet { .. } => None,
            DsKind::FromTensorSlices(_)
            | DsKind::FromTensors(_)
            | DsKind::ReadCsv { .. }
            | DsKind::Map { .. } => None,
            DsKind::Filter { .. }
            | DsKind::Shuffle { .. }
            | DsKind::Repeat(_)
            | DsKind::RepeatOf(_)
            | DsKind::Take(_)
            | DsKind::Skip(_)
            | DsKind::Shard { .. }
            | DsKind::Prefetch(_)
            | DsKind::Cache
            | DsKind::GlobalShuffle { .. } => same(),
            DsKind::Batch {
                size,
                drop_remainder,
            } => Some(Ok(batched(*size, *drop_remainder))),
            DsKind::PaddedBatch {
                size,
                padded_shapes,
                drop_remainder,
                ..
            } => {
                let d0 = if *drop_remainder {
                    Dim::Known(*size)
                } else {
                    Dim::Unknown
                };
                let leaves = inputs[0].leaves();
                if padded_shapes.len() != leaves.len() {
                    return Some(Err("a padded shape per component".into()));
                }
                let mut it = leaves.iter().zip(padded_shapes).map(|(leaf, ps)| {
                    let dims: Vec<Dim> = match ps {
                        Some(ds) => ds
                            .iter()
                            .map(|d| d.map_or(Dim::Unknown, Dim::Known))
                            .collect(),
                        None => leaf.shape.0.iter().map(|_| Dim::Unknown).collect(),
                    };
                    TensorType::new(leaf.dtype, Shape(dims).prepend(d0))
                });
                Some(Ok(inputs[0].rebuild(&mut it)))
            }
            DsKind::Unbatch => Some(if inputs[0].leaves().iter().any(|t| t.rank() == 0) {
                Err("`unbatch` of a scalar component".into())
            } else {
                Ok(inputs[0]
                    .map_leaves(&mut |t| TensorType::new(t.dtype, Shape(t.shape.0[1..].to_vec()))))
            }),
            DsKind::Zip => Some(Ok(ElemType::Tuple(
                inputs.iter().map(|e| (*e).clone()).collect(),
            ))),
            DsKind::Concatenate => Some(
                ElemType::join(inputs[0], inputs[1])
                    .ok_or_else(|| format!("`concatenate` of {} and {}", inputs[0], inputs[1])),
            ),
            DsKind::Enumerate(_) => Some(Ok(ElemType::Tuple(vec![
                ElemType::Tensor(TensorType::scalar(DType::I64)),
                inputs[0].clone(),
            ]))),
            DsKind::Transform(t) => Some((t.decl.elem)(inputs[0], &t.args)),
        }
    }
}

/// A dataset node: its kind, its element type and its source span.
#[derive(Clone, Debug)]
pub struct DsNode {
    /// What it does.
    pub kind: DsKind,
    /// The type of its elements.
    pub elem: ElemType,
    /// The call it came from.
    pub span: Span,
}

/// A named pipeline: a graph of dataset nodes with one output.
#[derive(Clone, Debug)]
pub struct Pipeline {
    /// The name after `pipeline`.
    pub name: String,
    /// The `pipeline` item.
    pub span: Span,
    /// The dataset graph.
    pub graph: StableDiGraph<DsNode, u32>,
    /// The node whose elements are the pipeline's output.
    pub output: DsNodeId,
}

impl Pipeline {
    /// The inputs of `node`, ordered by position.
    pub fn inputs(&self, node: DsNodeId) -> Vec<DsNodeId> {
        let mut edges: Vec<(u32, DsNodeId)> = self
            .graph
            .edges_directed(node, Direction::Incoming)
            .map(|e| (*e.weight(), e.source()))
            .collect();
        edges.sort();
        edges.into_iter().map(|(_, n)| n).collect()
    }

    /// The nodes that consume `node`.
    pub fn consumers(&self, node: DsNodeId) -> Vec<DsNodeId> {
        let mut out: Vec<DsNodeId> = self
            .graph
            .neighbors_directed(node, Direction::Outgoing)
            .collect();
        out.sort();
        out
    }

    /// Nodes in a deterministic topological order (inputs before consumers).
    pub fn topo_order(&self) -> Vec<DsNodeId> {
        let mut order = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut stack = vec![(self.output, false)];
        while let Some((node, expanded)) = stack.pop() {
            if expanded {
                order.push(node);
                continue;
            }
            if !seen.insert(node) {
                continue;
            }
            stack.push((node, true));
            for input in self.inputs(node).into_iter().rev() {
                if !seen.contains(&input) {
                    stack.push((input, false));
                }
            }
        }
        order
    }
}
