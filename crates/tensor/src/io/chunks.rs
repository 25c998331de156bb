//! Bytes of a stream read in large parts and handed out as zero-copy [`Bytes`] slices: the
//! consumer of a text file only finds where its lines end (cheap), and hands the bytes of a
//! block to a lane, which does the expensive part (splitting lines into tensors, parsing
//! numbers).

use bytes::Bytes;
use std::io::Read;

/// Bytes read from the stream at once (the consumer's read system call per part).
pub(crate) const READ_PART: usize = 4 << 20;

/// A stream's bytes, read in parts of [`READ_PART`] (more for a longer line or record) and
/// consumed from the front.
pub(crate) struct ReadBuf<R> {
    src: R,
    /// The bytes of the last part read (with what was left of the part before it).
    data: Bytes,
    /// Where the bytes not yet consumed start in `data`.
    pos: usize,
    /// Whether the stream has no more bytes.
    eof: bool,
}

impl<R: Read> ReadBuf<R> {
    /// Reads `src` from its current position.
    pub fn new(src: R) -> ReadBuf<R> {
        ReadBuf {
            src,
            data: Bytes::new(),
            pos: 0,
            eof: false,
        }
    }

    /// The bytes read and not yet consumed.
    pub fn available(&self) -> &[u8] {
        &self.data[self.pos..]
    }

    /// Whether the stream's end was reached (nothing beyond [`ReadBuf::available`]).
    pub fn at_eof(&self) -> bool {
        self.eof
    }

    /// Reads another part after what is available (at least as many bytes as are available,
    /// so a long line is copied a bounded number of times); false when the stream had no
    /// more. The bytes not yet consumed move to the new part's buffer: a block is one
    /// contiguous slice.
    pub fn fill_more(&mut self) -> std::io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        let tail = self.available();
        let want = READ_PART.max(tail.len());
        let mut v = Vec::with_capacity(tail.len() + want);
        v.extend_from_slice(tail);
        let got = loop {
            match (&mut self.src).take(want as u64).read_to_end(&mut v) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        if got < want {
            self.eof = true;
        }
        self.data = Bytes::from(v);
        self.pos = 0;
        Ok(got > 0)
    }

    /// Consumes the next `n` available bytes (`n <= available().len()`), as one slice.
    pub fn take(&mut self, n: usize) -> Bytes {
        let b = self.data.slice(self.pos..self.pos + n);
        self.pos += n;
        b
    }
}
