//! Bytes held by a buffering dataset node (`shuffle`, `cache`, `batch`), checked against the
//! memory ceiling (`--max-memory`) as elements arrive, so a buffer that would outgrow it is
//! a diagnostic at that node rather than an out-of-memory abort.

use crate::Element;
use pipec_diag::{Code, Diagnostic, Span};
use pipec_tensor::limits;

/// The running byte count of one node's buffer.
pub(crate) struct Budget {
    held: u64,
    span: Span,
    what: &'static str,
}

impl Budget {
    /// An empty buffer of the node at `span`, described as `what` in messages (`"shuffle buffer"`).
    pub(crate) fn new(span: Span, what: &'static str) -> Budget {
        Budget {
            held: 0,
            span,
            what,
        }
    }

    /// Counts `e` into the buffer; an error once the buffer is over the ceiling.
    pub(crate) fn add(&mut self, e: &Element) -> Result<(), Diagnostic> {
        self.held = self.held.saturating_add(element_bytes(e));
        match limits::check_bytes(u128::from(self.held)) {
            Ok(()) => Ok(()),
            Err(limit) => Err(Diagnostic::error(
                Code::MemoryLimit,
                format!(
                    "the {} holds more than the memory limit of {limit} bytes (--max-memory)",
                    self.what
                ),
            )
            .with_label(self.span, format!("this {} outgrew the limit", self.what))
            .with_help("make the buffer smaller, or raise `--max-memory`")),
        }
    }

    /// Takes `e` out of the buffer.
    pub(crate) fn remove(&mut self, e: &Element) {
        self.held = self.held.saturating_sub(element_bytes(e));
    }
}

/// What an element held in a buffer takes: its data, plus the element's list and each
/// tensor's array header, shape and strides, and heap block (about 200 bytes for a scalar,
/// which a buffer of many small elements must count).
fn element_bytes(e: &Element) -> u64 {
    let overhead = |t: &pipec_tensor::Tensor| {
        (std::mem::size_of::<pipec_tensor::Tensor>() + 64 + 16 * t.rank()) as u64
    };
    e.iter()
        .map(|t| limits::tensor_bytes(t).saturating_add(overhead(t)))
        .fold(
            (std::mem::size_of::<Element>() + 16) as u64,
            u64::saturating_add,
        )
}
