//! Dataset nodes as pull-based streams.
//!
//! A pipeline is first lowered to a tree of plans (one per node, sharing compiled
//! functions and loaded source data); opening a plan gives a fresh stream, so `repeat`
//! simply reopens its input for every epoch. The modules, bottom up:
//!
//! - `base`: what every stream kind and the sibling modules share — the `Stream` trait,
//!   [`RunOptions`], `gather_rows`, `element_count`. It depends on no
//!   other module of this tree, so lanes, records, interleave, global_shuffle and
//!   random_access import it without a cycle.
//! - `plan`: `Plan` and `PlanKind`, what lowering produces and opening reads, with the
//!   epoch counters (`Opens`) and seeds a state saves.
//! - `lower`: the IR's dataset graph → plans (`PlanBuilder`, `open_nested`).
//! - `open` and `restore`: a plan → a stream, fresh or at a saved state; the only
//!   modules that know every stream kind.
//! - the stream families: `sources` (`range`, slices, files), `elementwise` (per-element
//!   nodes: `ParMap`, `take`, `skip`, `enumerate`, `shard`; most maps and filters are
//!   `crate::lanes`), `batching` (`batch`, `padded_batch`, `unbatch`), `buffering`
//!   (`shuffle`, `prefetch`, `cache`), `combinators` (`zip`, `concatenate`, `repeat`).
//! - `run`: the public entry, [`open`]/[`open_at`] and [`ElementStream`].
//!
//! `crate::Element` is defined in `lib.rs`, below all of these: `crate::block` and
//! `crate::state` use it, and the `Stream` trait uses them.

pub(crate) mod base;
pub(crate) mod batching;
mod buffering;
mod combinators;
mod elementwise;
pub(crate) mod lower;
mod open;
pub(crate) mod plan;
mod restore;
mod run;
pub(crate) mod sources;
mod transforms;

pub use base::RunOptions;
pub use run::{ElementStream, open, open_at};
