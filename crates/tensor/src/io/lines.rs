//! `read_lines`: the lines of text files, found by the consumer and split by a lane.

use super::IoError;
use super::chunks::ReadBuf;
use bytes::Bytes;
use std::path::PathBuf;

/// The most text in one block of lines (a block usually stops at its row count first).
const MAX_BLOCK_TEXT: usize = 16 << 20;

/// Whole lines of one file: `text` holds `lines` lines, each ended by `\n` except perhaps
/// the last (a file's last line without one).
#[derive(Clone, Debug)]
pub struct LineBlock {
    /// The lines' bytes, endings included.
    pub text: Bytes,
    /// How many lines.
    pub lines: usize,
}

impl LineBlock {
    /// The lines without their endings (`\n` or `\r\n`; a last line without `\n` keeps a
    /// final `\r`, as `TextLineDataset` does). Each is copied into its own buffer: a line
    /// kept long (a `cache`, a filter keeping few) must not hold the whole block's bytes.
    pub fn split(&self) -> Vec<Bytes> {
        let t = &self.text[..];
        let mut out = Vec::with_capacity(self.lines);
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', t) {
            let line = &t[start..nl];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            out.push(Bytes::copy_from_slice(line));
            start = nl + 1;
        }
        if start < t.len() {
            out.push(Bytes::copy_from_slice(&t[start..]));
        }
        out
    }
}

/// The lines of text files, one after another, as `TextLineDataset` gives them: without
/// the line ending (`\n` or `\r\n`), a last line without an ending included, an empty file
/// giving no line. Streams: a part of the file in memory at a time (one line if longer).
pub struct LineReader {
    paths: Vec<PathBuf>,
    next_path: usize,
    current: Option<ReadBuf<std::fs::File>>,
    /// An error met after the lines last handed out: the next call reports it.
    failed: Option<(PathBuf, IoError)>,
    /// After an error nothing more is read.
    done: bool,
}

impl LineReader {
    /// Reads `paths` in order (each is opened when reached).
    pub fn new(paths: Vec<PathBuf>) -> LineReader {
        LineReader {
            paths,
            next_path: 0,
            current: None,
            failed: None,
            done: false,
        }
    }

    /// The next line, `None` after the last; an error names the file.
    pub fn next_line(&mut self) -> Result<Option<Bytes>, (PathBuf, IoError)> {
        Ok(self
            .next_lines(1)?
            .and_then(|b| b.split().into_iter().next()))
    }

    /// The next (at most `max`, at least one) lines of one file as one block, `None` after
    /// the last. An error met after some lines is reported by the next call, so it follows
    /// the lines before it as reading line by line gives it; a line longer than the memory
    /// limit (`--max-memory`, else 2 GiB) is an error, as before it is read whole.
    pub fn next_lines(&mut self, max: usize) -> Result<Option<LineBlock>, (PathBuf, IoError)> {
        if let Some(e) = self.failed.take() {
            self.done = true;
            return Err(e);
        }
        let limit = crate::limits::max_memory().unwrap_or(1 << 31);
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        while !self.done {
            let Some(buf) = self.current.as_mut() else {
                let Some(p) = self.paths.get(self.next_path) else {
                    return Ok(None);
                };
                self.next_path += 1;
                match std::fs::File::open(p) {
                    Ok(f) => self.current = Some(ReadBuf::new(f)),
                    Err(e) => {
                        self.done = true;
                        return Err((p.clone(), IoError::Io(e)));
                    }
                }
                continue;
            };
            let too_long = || IoError::OverMemoryLimit {
                bytes: limit as u128 + 1,
                limit: limit as u64,
            };
            // Offsets are into the bytes available, which a read keeps in front.
            let (mut count, mut end, mut search) = (0usize, 0usize, 0usize);
            let error = loop {
                let avail = buf.available();
                match memchr::memchr(b'\n', &avail[search..]) {
                    Some(i) => {
                        let line_end = search + i + 1;
                        if line_end - end > limit {
                            break Some(too_long());
                        }
                        count += 1;
                        (end, search) = (line_end, line_end);
                        if count >= max || end >= MAX_BLOCK_TEXT {
                            break None;
                        }
                    }
                    None => {
                        search = avail.len();
                        if avail.len() - end > limit {
                            break Some(too_long());
                        }
                        if buf.at_eof() {
                            if avail.len() > end {
                                count += 1;
                                end = avail.len();
                            }
                            break None;
                        }
                        if let Err(e) = buf.fill_more() {
                            break Some(IoError::Io(e));
                        }
                    }
                }
            };
            let path = || self.paths[self.next_path - 1].clone();
            if count > 0 {
                let text = buf.take(end);
                if let Some(e) = error {
                    self.failed = Some((path(), e));
                }
                return Ok(Some(LineBlock { text, lines: count }));
            }
            if let Some(e) = error {
                self.done = true;
                return Err((path(), e));
            }
            self.current = None;
        }
        Ok(None)
    }
}
