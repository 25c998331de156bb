//! A baseline and progressive (Huffman) JPEG decoder whose output is libjpeg-turbo's default
//! output, sample for sample: what TF's `decode_jpeg` (`INTEGER_ACCURATE`) and PIL return.
//!
//! Decoders written for speed (zune-jpeg, jpeg-decoder) use stb_image's IDCT and round
//! their chroma upsampling differently; a chroma sample off by one moves blue by two after
//! colour conversion, so they cannot be within 1 of libjpeg on every pixel. The lossy steps
//! here are libjpeg-turbo's own: `jpeg_idct_islow` (jidctint.c), the "fancy" triangle upsampling of jdsample.c (h2v1, h1v2, h2v2; plain
//! replication where libjpeg uses it: other integral ratios and rows of at most 2 samples),
//! with its context rows (the row above the first is the first, the row below the last real
//! row is the last real row), and jdcolor.c's table-driven YCbCr → RGB. Colour space from
//! the markers as jdapimin.c guesses it (JFIF → YCbCr, Adobe transform 0 → RGB, component
//! ids 'R','G','B' → RGB).
//!
//! How it is fast without leaving that arithmetic: the bit reader refills eight bytes at a
//! time when none is 0xFF; an 11-bit table decodes most AC codes together with their
//! coefficient bits, and with the next symbol when it fits too (a third of the lookups on
//! photos at quality 90 decode two); built tables are kept per thread for the next file;
//! the IDCT runs both passes on 16-bit inputs with `pmaddwd` (`jpeg_avx2.rs`, where the CPU has AVX2) or in `i32` on eight lanes whenever the block's
//! values are in the range where that is exact, else `idct_islow`'s `i64` code, the
//! reference; colour conversion runs 16 pixels at a time with AVX2 (`jpeg_avx2.rs`); a
//! sequential file's blocks go to samples as
//! they are decoded (no coefficient planes); upsampling and colour conversion run a row at
//! a time, straight into the output. `examples/jpeg_check.rs` compares two builds by hash.
//!
//! Where libjpeg only warns and goes on guessing (a bad Huffman code, entropy data running
//! into a marker or the end of the file, a missing restart marker), this decoder stops with
//! an error: a corrupt or truncated image is an error naming the element (SPEC §13).
//! Not supported (an error, as TF's 8-bit libjpeg for the first two): 12-bit samples,
//! arithmetic coding, lossless and hierarchical JPEG, 2- and 4-component (CMYK) images.
// The ports of libjpeg's loops index several arrays by one counter, as the C does: kept
// that way so they can be checked line by line against jidctint.c, jdsample.c, jdhuff.c.
#![allow(clippy::needless_range_loop)]

use super::super::{KernelError, simd};
use std::cell::RefCell;
use std::sync::Arc;

fn bad(msg: impl Into<String>) -> KernelError {
    KernelError::BadImage(format!("corrupt JPEG: {}", msg.into()))
}

fn missing_table() -> KernelError {
    bad("a scan uses a Huffman table that is missing")
}

fn truncated() -> KernelError {
    KernelError::BadImage("truncated JPEG: the data ends before the image does".into())
}

/// The natural (row-major) position of each zigzag index, with libjpeg's 16 extra entries
/// so that a corrupt run length past 63 lands on 63 instead of out of bounds.
const NATURAL: [usize; 80] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
    63, 63, 63, 63, 63, 63,
];

/// What the caller gets: `channels` is 1 (grey) or 3 (RGB).
pub(super) struct Decoded {
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    pub pixels: Vec<u8>,
}

/// A Huffman table as libjpeg's `d_derived_tbl`: a 9-bit lookahead table plus the
/// canonical code bounds per length for longer codes.
struct Huffman {
    /// `(length << 8) | symbol` for codes of at most `LOOKAHEAD` bits; 0 for longer ones.
    lookup: Box<[u16; 1 << LOOKAHEAD]>,
    /// For AC tables, indexed by the next `FAST_BITS` bits, what they decode to (see
    /// `fast_entry`); `None` for DC tables.
    fast_ac: Option<Box<[u64; 1 << FAST_BITS]>>,
    /// The largest code of each length (`-1` when none), index 1..=16.
    maxcode: [i32; 18],
    /// Value index of the first code of each length, minus that code.
    valoffset: [i32; 17],
    values: Vec<u8>,
}

const LOOKAHEAD: u32 = 9;

/// The lookahead of `Huffman::fast_ac`: 2^11 entries of 8 bytes stay in the L1 cache, and
/// most AC codes with their value bits fit (fewer do in 9 bits at high quality), two
/// symbols in a third of the lookups on photos at quality 90.
const FAST_BITS: u32 = 11;

// `fast_entry` decodes the symbol after a first one with `lookup`: at most `FAST_BITS - 2`
// bits remain after a code and a value bit.
const _: () = assert!(FAST_BITS - 2 <= LOOKAHEAD);

/// `fast_ac` entry flags and fields (the low 5 bits are the bits the entry uses, bit 5 is
/// 0: shifting by the entry itself, modulo 64, shifts by that count).
const FAST_COEF: u64 = 0x80;
/// A second symbol follows the first within the lookahead.
const FAST_PAIR: u64 = 0x40;
/// The second symbol is an end of block.
const FAST_EOB: u64 = 1 << 54;
/// Shift of the bit that advances past the second symbol's coefficient (1 when there is
/// one).
const FAST_ADVANCE: u32 = 53;
/// Shift of the bits the first symbol alone uses.
const FAST_FIRST_USED: u32 = 48;

impl Huffman {
    /// The table of `counts` codes per length and their `values`; `ac` also builds the
    /// fast AC table (a DC table never uses it).
    fn new(counts: &[u8; 16], values: Vec<u8>, ac: bool) -> Result<Huffman, KernelError> {
        let mut maxcode = [-1i32; 18];
        let mut valoffset = [0i32; 17];
        let mut lookup = Box::new([0u16; 1 << LOOKAHEAD]);
        // Each code of at most FAST_BITS bits: (length, first lookahead index, symbol).
        let mut short = Vec::new();
        let mut code: i32 = 0;
        let mut k = 0usize;
        for len in 1..=16usize {
            let n = usize::from(counts[len - 1]);
            // Codes that no longer fit their length: libjpeg's JERR_BAD_HUFF_TABLE.
            if code as usize + n > (1 << len) {
                return Err(bad("a Huffman table has too many codes"));
            }
            if n > 0 {
                valoffset[len] = k as i32 - code;
                for _ in 0..n {
                    if len as u32 <= LOOKAHEAD {
                        let shift = LOOKAHEAD - len as u32;
                        let first = (code as usize) << shift;
                        for e in &mut lookup[first..first + (1 << shift)] {
                            *e = ((len as u16) << 8) | u16::from(values[k]);
                        }
                    }
                    if len as u32 <= FAST_BITS {
                        short.push((
                            len as u32,
                            (code as usize) << (FAST_BITS - len as u32),
                            values[k],
                        ));
                    }
                    code += 1;
                    k += 1;
                }
                maxcode[len] = code - 1;
            }
            code <<= 1;
        }
        maxcode[17] = i32::MAX;
        let fast_ac = ac.then(|| {
            let mut fast = Box::new([0u64; 1 << FAST_BITS]);
            for &(len, first, rs) in &short {
                let span = 1usize << (FAST_BITS - len);
                for (peek, e) in fast.iter_mut().enumerate().skip(first).take(span) {
                    *e = fast_entry(peek, len, rs, &lookup);
                }
            }
            fast
        });
        Ok(Huffman {
            lookup,
            fast_ac,
            maxcode,
            valoffset,
            values,
        })
    }
}

/// F.2.2.1's EXTEND: `size` (1 to 15) raw bits as a signed coefficient.
#[inline(always)]
fn extend(raw: i32, size: u32) -> i32 {
    if raw < (1 << (size - 1)) {
        raw - (1 << size) + 1
    } else {
        raw
    }
}

/// `Huffman::fast_ac`'s entry for the lookahead bits `peek`, which start with a code of
/// `len` bits for the symbol `rs`:
/// - a code whose coefficient's bits fit too: `FAST_COEF`, the run at bits 8..12, the
///   value at 16..32, the bits used; and when another whole symbol follows it in the
///   lookahead, `FAST_PAIR` with that symbol: a coefficient (its run at 12..16, its value at
///   32..48, bit `FAST_ADVANCE`) or an end of block (`FAST_EOB`), the bits both use, and the
///   first's alone at `FAST_FIRST_USED` (for when the block ends after the first);
/// - a code alone (an end of block, a run of 16 zeros, or value bits that do not fit):
///   `symbol << 8 | length`.
///
/// A code of at most `FAST_BITS` bits; 0 for the longer ones (never built).
fn fast_entry(peek: usize, len: u32, rs: u8, lookup: &[u16; 1 << LOOKAHEAD]) -> u64 {
    let (run, size) = (u64::from(rs >> 4), u32::from(rs & 15));
    if size == 0 || len + size > FAST_BITS {
        return (u64::from(rs) << 8) | u64::from(len);
    }
    // The `size` bits after the code, then F.2.2.1's EXTEND, as `receive_extend`.
    let raw = ((peek >> (FAST_BITS - len - size)) & ((1 << size) - 1)) as i32;
    let value = u64::from(extend(raw, size) as u16);
    let used = len + size;
    let single = FAST_COEF | (run << 8) | (value << 16) | u64::from(used);
    // The bits after the first symbol, as the start of a code (zero-padded: a code no
    // longer than them does not depend on the padding). At most 9 remain, since the first
    // symbol takes at least a bit of code and one of value, so `lookup` decodes them.
    let rest = FAST_BITS - used;
    if rest == 0 {
        return single;
    }
    let tail = peek & ((1 << rest) - 1);
    let e2 = lookup[tail << (LOOKAHEAD - rest)];
    let (len2, rs2) = (u32::from(e2 >> 8), e2 as u8);
    if e2 == 0 || len2 > rest {
        return single;
    }
    let pair = single | FAST_PAIR | (u64::from(used) << FAST_FIRST_USED);
    if rs2 == 0 {
        return (pair & !31) | FAST_EOB | u64::from(used + len2);
    }
    let (run2, size2) = (u64::from(rs2 >> 4), u32::from(rs2 & 15));
    if size2 == 0 || len2 + size2 > rest {
        return single;
    }
    let raw2 = ((tail >> (rest - len2 - size2)) & ((1 << size2) - 1)) as i32;
    let value2 = u64::from(extend(raw2, size2) as u16);
    (pair & !31)
        | (run2 << 12)
        | (value2 << 32)
        | (1 << FAST_ADVANCE)
        | u64::from(used + len2 + size2)
}

/// Reads entropy-coded bits: stuffed zero bytes removed, stopping at a marker. Bits asked
/// for beyond the segment are an error (libjpeg would supply zeros and warn), but found
/// late: past the segment the reader hands out zeros and counts them, and the caller asks
/// `overrun` after each block (and before reporting any other error from it), which gives
/// the same verdict as checking every read because the count of made-up bits read only grows.
#[derive(Clone, Copy)]
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    acc: u64,
    /// Valid bits in `acc` (its low bits).
    n: u32,
    /// How many of the low bits of `acc` are zeros made up past the segment's end.
    fake: u32,
    /// The segment ended: at a marker, or at the end of the data (`eof`).
    ended: bool,
    eof: bool,
}

/// Whether any byte of `w` is 0xFF (the zero-byte test of "Bit Twiddling Hacks" on `!w`).
#[inline]
fn has_ff_byte(w: u64) -> bool {
    let x = !w;
    x.wrapping_sub(0x0101_0101_0101_0101) & !x & 0x8080_8080_8080_8080 != 0
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8], pos: usize) -> Bits<'a> {
        Bits {
            data,
            pos,
            acc: 0,
            n: 0,
            fake: 0,
            ended: false,
            eof: false,
        }
    }

    /// Tops the buffer up to more than 56 bits.
    #[inline]
    fn fill(&mut self) {
        if self.n > 56 {
            return;
        }
        // Most of the time the next eight bytes hold no 0xFF, so no stuffing and no marker:
        // take the bytes needed in one shift instead of one at a time.
        if !self.ended
            && let Some(chunk) = self.data.get(self.pos..self.pos + 8)
        {
            let word = u64::from_be_bytes(chunk.try_into().expect("eight bytes"));
            if !has_ff_byte(word) {
                let k = (64 - self.n) / 8;
                // Two shifts, since `acc << 64` (k = 8) is not a shift Rust allows.
                self.acc = (self.acc << (8 * k - 1) << 1) | (word >> (64 - 8 * k));
                self.n += 8 * k;
                self.pos += k as usize;
                return;
            }
        }
        self.fill_slow();
    }

    #[cold]
    fn fill_slow(&mut self) {
        while self.n <= 56 {
            let mut byte = 0u8;
            if !self.ended {
                match self.data.get(self.pos) {
                    None => {
                        self.ended = true;
                        self.eof = true;
                    }
                    Some(&0xFF) => {
                        // 0xFF 0x00 is a data byte 0xFF (after any 0xFF fill bytes, as
                        // jdhuff.c's fill_bit_buffer); 0xFF then anything else is a marker.
                        let mut q = self.pos + 1;
                        while self.data.get(q) == Some(&0xFF) {
                            q += 1;
                        }
                        match self.data.get(q) {
                            Some(0) => {
                                byte = 0xFF;
                                self.pos = q + 1;
                            }
                            None => {
                                self.ended = true;
                                self.eof = true;
                            }
                            Some(_) => self.ended = true,
                        }
                    }
                    Some(&b) => {
                        byte = b;
                        self.pos += 1;
                    }
                }
            }
            if self.ended {
                self.fake += 8;
            }
            self.acc = (self.acc << 8) | u64::from(byte);
            self.n += 8;
        }
    }

    /// Whether bits past the segment have been read.
    #[inline]
    fn overrun(&self) -> bool {
        self.n < self.fake
    }

    /// The error for reading past the segment.
    fn overrun_error(&self) -> KernelError {
        if self.eof {
            truncated()
        } else {
            bad("a scan's data ends early")
        }
    }

    #[inline]
    fn bits(&mut self, k: u32) -> u32 {
        if k == 0 {
            return 0;
        }
        if self.n < k {
            self.fill();
        }
        self.n -= k;
        ((self.acc >> self.n) & ((1u64 << k) - 1)) as u32
    }

    #[inline]
    fn bit(&mut self) -> bool {
        self.bits(1) == 1
    }

    /// `bits(s)` as a signed coefficient (the JPEG "EXTEND" of F.2.2.1).
    #[inline]
    fn receive_extend(&mut self, s: u32) -> i32 {
        if s == 0 {
            return 0;
        }
        extend(self.bits(s) as i32, s)
    }

    /// The next `LOOKAHEAD` bits, not consumed; needs `n >= 16` (the caller fills).
    #[inline]
    fn peek(&self) -> usize {
        ((self.acc >> (self.n - LOOKAHEAD)) & ((1 << LOOKAHEAD) - 1)) as usize
    }

    #[inline]
    fn huff(&mut self, t: &Huffman) -> Result<u8, KernelError> {
        if self.n < 16 {
            self.fill();
        }
        let e = t.lookup[self.peek()];
        if e != 0 {
            self.n -= u32::from(e >> 8);
            return Ok(e as u8);
        }
        self.huff_long(t)
    }

    /// A code longer than `LOOKAHEAD` bits (or none): walks the lengths as jdhuff.c's
    /// jpeg_huff_decode; needs `n >= 16`.
    #[cold]
    fn huff_long(&mut self, t: &Huffman) -> Result<u8, KernelError> {
        let mut len = LOOKAHEAD as usize + 1;
        let mut code = ((self.acc >> (self.n - len as u32)) & ((1 << len) - 1)) as i32;
        while code > t.maxcode[len] {
            len += 1;
            if len > 16 {
                return Err(bad("a bad Huffman code"));
            }
            code = ((self.acc >> (self.n - len as u32)) & ((1 << len) - 1)) as i32;
        }
        self.n -= len as u32;
        let idx = (code + t.valoffset[len]) as usize;
        t.values
            .get(idx)
            .copied()
            .ok_or_else(|| bad("a bad Huffman code"))
    }

    /// Drops the buffered bits and moves to the next marker (the end of the segment).
    fn skip_to_marker(&mut self) -> usize {
        self.acc = 0;
        self.n = 0;
        self.fake = 0;
        self.ended = false;
        self.eof = false;
        next_marker_pos(self.data, self.pos)
    }
}

/// Where the next marker (0xFF followed by something other than 0x00 or 0xFF) starts at or
/// after `pos`; the data's length if there is none.
fn next_marker_pos(data: &[u8], mut pos: usize) -> usize {
    while pos + 1 < data.len() {
        if data[pos] == 0xFF && data[pos + 1] != 0 && data[pos + 1] != 0xFF {
            return pos;
        }
        pos += 1;
    }
    data.len()
}

struct Component {
    id: u8,
    h: usize,
    v: usize,
    tq: usize,
    /// Blocks per row and per column in `coefs` (whole MCUs).
    bw: usize,
    bh: usize,
    /// Samples of this component that are image (libjpeg's `downsampled_width/height`).
    dw: usize,
    dh: usize,
    /// Quantized coefficients, 64 per block in natural order (not kept when `Decoder::stream`).
    coefs: Vec<i16>,
    /// The samples, `bw * 8` by `bh * 8`, when `Decoder::stream` (else made by `output`).
    samples: Vec<u8>,
    /// A scan has had this component (only tracked when `Decoder::stream`).
    scanned: bool,
    /// The quantization table, latched at the component's first scan (as jdcoefct.c).
    quant: Option<[u16; 64]>,
    pred: i32,
}

struct Frame {
    width: usize,
    height: usize,
    progressive: bool,
    comps: Vec<Component>,
    max_h: usize,
    max_v: usize,
    mcux: usize,
    mcuy: usize,
}

/// How many built Huffman tables each thread keeps: a folder of photos from one camera or
/// encoder uses the same few tables in every file.
const CACHED_TABLES: usize = 8;

/// A built table with what it was built from besides its values: class and counts.
type CachedTable = (u8, [u8; 16], Arc<Huffman>);

thread_local! {
    /// The tables this thread built last, newest first.
    static TABLES: RefCell<Vec<CachedTable>> = const { RefCell::new(Vec::new()) };
}

/// The Huffman table of a DHT entry (class 0: DC, 1: AC), built once per thread: building
/// an AC table's lookahead (2^11 entries) was a few percent of decoding a photo.
fn cached_table(class: u8, counts: &[u8; 16], values: &[u8]) -> Result<Arc<Huffman>, KernelError> {
    let same = |e: &CachedTable| e.0 == class && e.1 == *counts && e.2.values == values;
    if let Some(hit) = TABLES.with_borrow(|t| t.iter().find(|e| same(e)).map(|e| e.2.clone())) {
        return Ok(hit);
    }
    let table = Arc::new(Huffman::new(counts, values.to_vec(), class == 1)?);
    TABLES.with_borrow_mut(|t| {
        t.insert(0, (class, *counts, table.clone()));
        t.truncate(CACHED_TABLES);
    });
    Ok(table)
}

struct Decoder<'a> {
    data: &'a [u8],
    pos: usize,
    frame: Option<Frame>,
    quant: [Option<[u16; 64]>; 4],
    dc: [Option<Arc<Huffman>>; 4],
    ac: [Option<Arc<Huffman>>; 4],
    restart: usize,
    /// A sequential file's blocks go through the IDCT as they are decoded, with no
    /// coefficient planes; that needs every component to be in one scan only, so a file
    /// with a second scan of a component is decoded again without (`restart_whole`).
    stream: bool,
    restart_whole: bool,
    jfif: bool,
    adobe: Option<u8>,
    scans: usize,
}

/// Decodes `bytes`. `check(height, width, components)` runs once the frame header is read,
/// before anything proportional to the image is allocated. `grey`: one output channel
/// (libjpeg's `JCS_GRAYSCALE`: the luma plane, or a grey conversion of an RGB-coded file).
pub(super) fn decode(
    bytes: &[u8],
    grey: bool,
    check: impl Fn(usize, usize, usize) -> Result<(), KernelError>,
) -> Result<Decoded, KernelError> {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return Err(bad("no start-of-image marker"));
    }
    let mut d = Decoder::new(bytes);
    match d.markers(&check) {
        Err(_) if d.restart_whole => {
            d = Decoder {
                stream: false,
                ..Decoder::new(bytes)
            };
            d.markers(&check)?;
        }
        r => r?,
    }
    d.output(grey)
}

/// A segment's payload (after its 2-byte length) and where the next one starts.
fn segment(data: &[u8], pos: usize) -> Result<(&[u8], usize), KernelError> {
    let len = match data.get(pos..pos + 2) {
        Some(b) => usize::from(u16::from_be_bytes([b[0], b[1]])),
        None => return Err(truncated()),
    };
    if len < 2 {
        return Err(bad("a marker segment shorter than its length field"));
    }
    let body = data.get(pos + 2..pos + len).ok_or_else(truncated)?;
    Ok((body, pos + len))
}

impl<'a> Decoder<'a> {
    fn new(data: &'a [u8]) -> Decoder<'a> {
        Decoder {
            data,
            pos: 2,
            frame: None,
            quant: [None; 4],
            dc: [None, None, None, None],
            ac: [None, None, None, None],
            restart: 0,
            jfif: false,
            adobe: None,
            scans: 0,
            stream: true,
            restart_whole: false,
        }
    }

    fn markers(
        &mut self,
        check: &impl Fn(usize, usize, usize) -> Result<(), KernelError>,
    ) -> Result<(), KernelError> {
        loop {
            // Bytes that are not a marker are skipped, as libjpeg's next_marker does.
            let at = next_marker_pos(self.data, self.pos);
            if at >= self.data.len() {
                return Err(truncated());
            }
            let marker = self.data[at + 1];
            let body = at + 2;
            match marker {
                0xD9 => break,
                0xD0..=0xD7 | 0x01 => self.pos = body,
                0xD8 => return Err(bad("a second start-of-image marker")),
                0xC0..=0xC2 => {
                    let (seg, next) = segment(self.data, body)?;
                    self.sof(seg, marker == 0xC2, check)?;
                    self.pos = next;
                }
                0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                    return Err(KernelError::BadImage(
                        "unsupported JPEG: lossless, hierarchical or arithmetic-coded".into(),
                    ));
                }
                0xC4 => {
                    let (seg, next) = segment(self.data, body)?;
                    self.dht(seg)?;
                    self.pos = next;
                }
                0xDB => {
                    let (seg, next) = segment(self.data, body)?;
                    self.dqt(seg)?;
                    self.pos = next;
                }
                0xDD => {
                    let (seg, next) = segment(self.data, body)?;
                    if seg.len() < 2 {
                        return Err(bad("a short restart-interval segment"));
                    }
                    self.restart = usize::from(u16::from_be_bytes([seg[0], seg[1]]));
                    self.pos = next;
                }
                0xDA => {
                    let (seg, next) = segment(self.data, body)?;
                    self.pos = self.sos(seg, next)?;
                    self.scans += 1;
                }
                0xE0 => {
                    let (seg, next) = segment(self.data, body)?;
                    self.jfif |= seg.starts_with(b"JFIF\0");
                    self.pos = next;
                }
                0xEE => {
                    let (seg, next) = segment(self.data, body)?;
                    if seg.len() >= 12 && seg.starts_with(b"Adobe") {
                        self.adobe = Some(seg[11]);
                    }
                    self.pos = next;
                }
                _ => {
                    let (_, next) = segment(self.data, body)?;
                    self.pos = next;
                }
            }
        }
        if self.frame.is_none() || self.scans == 0 {
            return Err(bad("no image data before the end-of-image marker"));
        }
        Ok(())
    }

    fn sof(
        &mut self,
        seg: &[u8],
        progressive: bool,
        check: &impl Fn(usize, usize, usize) -> Result<(), KernelError>,
    ) -> Result<(), KernelError> {
        if self.frame.is_some() {
            return Err(bad("a second frame header"));
        }
        if seg.len() < 6 {
            return Err(bad("a short frame header"));
        }
        if seg[0] != 8 {
            return Err(KernelError::BadImage(format!(
                "unsupported JPEG: {}-bit samples (only 8-bit)",
                seg[0]
            )));
        }
        let height = usize::from(u16::from_be_bytes([seg[1], seg[2]]));
        let width = usize::from(u16::from_be_bytes([seg[3], seg[4]]));
        let n = usize::from(seg[5]);
        if height == 0 || width == 0 {
            return Err(bad("an image of zero width or height"));
        }
        if n != 1 && n != 3 {
            return Err(KernelError::BadImage(format!(
                "unsupported JPEG: {n} colour components (1 or 3 are supported)"
            )));
        }
        if seg.len() < 6 + 3 * n {
            return Err(bad("a short frame header"));
        }
        // The declared size against pipec's limits, before any allocation it implies.
        check(height, width, n)?;
        let mut comps = Vec::with_capacity(n);
        for c in seg[6..6 + 3 * n].chunks_exact(3) {
            let (h, v, tq) = (
                usize::from(c[1] >> 4),
                usize::from(c[1] & 15),
                usize::from(c[2]),
            );
            if !(1..=4).contains(&h) || !(1..=4).contains(&v) || tq > 3 {
                return Err(bad("bad sampling factors or quantization table index"));
            }
            comps.push(Component {
                id: c[0],
                h,
                v,
                tq,
                bw: 0,
                bh: 0,
                dw: 0,
                dh: 0,
                coefs: Vec::new(),
                samples: Vec::new(),
                scanned: false,
                quant: None,
                pred: 0,
            });
        }
        let max_h = comps.iter().map(|c| c.h).max().unwrap_or(1);
        let max_v = comps.iter().map(|c| c.v).max().unwrap_or(1);
        if comps.iter().any(|c| max_h % c.h != 0 || max_v % c.v != 0) {
            return Err(KernelError::BadImage(
                "unsupported JPEG: fractional chroma subsampling".into(),
            ));
        }
        let mcux = width.div_ceil(8 * max_h);
        let mcuy = height.div_ceil(8 * max_v);
        for c in &mut comps {
            c.bw = mcux * c.h;
            c.bh = mcuy * c.v;
            c.dw = (width * c.h).div_ceil(max_h);
            c.dh = (height * c.v).div_ceil(max_v);
            if progressive || !self.stream {
                c.coefs = vec![0; c.bw * c.bh * 64];
            } else {
                c.samples = vec![0; c.bw * c.bh * 64];
            }
        }
        self.frame = Some(Frame {
            width,
            height,
            progressive,
            comps,
            max_h,
            max_v,
            mcux,
            mcuy,
        });
        Ok(())
    }

    fn dht(&mut self, mut seg: &[u8]) -> Result<(), KernelError> {
        while !seg.is_empty() {
            if seg.len() < 17 {
                return Err(bad("a short Huffman table"));
            }
            let (class, id) = (seg[0] >> 4, usize::from(seg[0] & 15));
            if class > 1 || id > 3 {
                return Err(bad("a bad Huffman table index"));
            }
            let mut counts = [0u8; 16];
            counts.copy_from_slice(&seg[1..17]);
            let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
            if total > 256 || seg.len() < 17 + total {
                return Err(bad("a bad Huffman table"));
            }
            let table = cached_table(class, &counts, &seg[17..17 + total])?;
            if class == 0 {
                self.dc[id] = Some(table);
            } else {
                self.ac[id] = Some(table);
            }
            seg = &seg[17 + total..];
        }
        Ok(())
    }

    fn dqt(&mut self, mut seg: &[u8]) -> Result<(), KernelError> {
        while !seg.is_empty() {
            let (precision, id) = (seg[0] >> 4, usize::from(seg[0] & 15));
            if precision > 1 || id > 3 {
                return Err(bad("a bad quantization table index"));
            }
            let size = 64 << precision;
            let values = seg
                .get(1..1 + size)
                .ok_or_else(|| bad("a short quantization table"))?;
            let mut table = [0u16; 64];
            for k in 0..64 {
                table[NATURAL[k]] = if precision == 0 {
                    u16::from(values[k])
                } else {
                    u16::from_be_bytes([values[2 * k], values[2 * k + 1]])
                };
            }
            self.quant[id] = Some(table);
            seg = &seg[1 + size..];
        }
        Ok(())
    }

    /// Reads a scan header and decodes its entropy-coded data (which starts at `start`);
    /// returns where the data after it starts.
    fn sos(&mut self, seg: &[u8], start: usize) -> Result<usize, KernelError> {
        let frame = self
            .frame
            .as_mut()
            .ok_or_else(|| bad("a scan before the frame header"))?;
        let ns = usize::from(*seg.first().ok_or_else(|| bad("a short scan header"))?);
        if !(1..=4).contains(&ns) || seg.len() < 1 + 2 * ns + 3 {
            return Err(bad("a bad scan header"));
        }
        let mut scan = Vec::with_capacity(ns);
        for c in seg[1..1 + 2 * ns].chunks_exact(2) {
            let ci = frame
                .comps
                .iter()
                .position(|k| k.id == c[0])
                .ok_or_else(|| bad("a scan names a component the frame does not have"))?;
            if scan.iter().any(|s: &(usize, usize, usize)| s.0 == ci) {
                return Err(bad("a scan names a component twice"));
            }
            scan.push((ci, usize::from(c[1] >> 4), usize::from(c[1] & 15)));
        }
        let p = &seg[1 + 2 * ns..];
        let (ss, se, ah, al) = (
            usize::from(p[0]),
            usize::from(p[1]),
            u32::from(p[2] >> 4),
            u32::from(p[2] & 15),
        );
        let (ss, se) = if frame.progressive {
            // jdinput.c's checks (JERR_BAD_PROGRESSION).
            if (ss == 0 && se != 0) || (ss > 0 && ns != 1) || se < ss || se > 63 || al > 13 {
                return Err(bad("bad progressive scan parameters"));
            }
            if ah != 0 && al + 1 != ah {
                return Err(bad("bad progressive scan parameters"));
            }
            (ss, se)
        } else {
            (0, 63)
        };
        if ns > 1
            && scan
                .iter()
                .map(|s| frame.comps[s.0].h * frame.comps[s.0].v)
                .sum::<usize>()
                > 10
        {
            return Err(bad("too many blocks in an MCU"));
        }
        for &(ci, td, ta) in &scan {
            let c = &mut frame.comps[ci];
            if c.quant.is_none() {
                c.quant = Some(
                    self.quant[c.tq]
                        .ok_or_else(|| bad("a component's quantization table is missing"))?,
                );
            }
            let needs_dc = !frame.progressive || (ss == 0 && ah == 0);
            let needs_ac = se > 0;
            if td > 3
                || ta > 3
                || (needs_dc && self.dc[td].is_none())
                || (needs_ac && self.ac[ta].is_none())
            {
                return Err(bad("a scan uses a Huffman table that is missing"));
            }
            c.pred = 0;
        }
        let stream = self.stream && !frame.progressive;
        if stream {
            for &(ci, _, _) in &scan {
                let c = &mut frame.comps[ci];
                if c.scanned {
                    // A second scan would add to coefficients already gone to samples.
                    self.restart_whole = true;
                    return Err(bad("a component in two sequential scans"));
                }
                c.scanned = true;
            }
        }
        let mut bits = Bits::new(self.data, start);
        let mut eobrun = 0u32;
        let kind = if !frame.progressive {
            Kind::Sequential
        } else if ss == 0 {
            if ah == 0 {
                Kind::DcFirst
            } else {
                Kind::DcRefine
            }
        } else if ah == 0 {
            Kind::AcFirst
        } else {
            Kind::AcRefine
        };
        // An MCU's blocks in decoding order, worked out once per scan: every block of every
        // component of an interleaved scan (its `h` by `v` blocks in the MCU); the
        // component's own blocks (those with image), one per MCU, otherwise.
        let (dc_tables, ac_tables) = (&self.dc, &self.ac);
        let slot = |ci: usize, td: usize, ta: usize, h, v, dx, dy| Slot {
            ci,
            dc: dc_tables[td].as_deref(),
            ac: ac_tables[ta].as_deref(),
            h,
            v,
            dx,
            dy,
        };
        let slots: Vec<Slot> = if ns == 1 {
            let (ci, td, ta) = scan[0];
            vec![slot(ci, td, ta, 1, 1, 0, 0)]
        } else {
            let mut slots = Vec::with_capacity(10);
            for &(ci, td, ta) in &scan {
                let c = &frame.comps[ci];
                for dy in 0..c.v {
                    for dx in 0..c.h {
                        slots.push(slot(ci, td, ta, c.h, c.v, dx, dy));
                    }
                }
            }
            slots
        };
        let (mcus_x, mcus_y) = if ns == 1 {
            let c = &frame.comps[scan[0].0];
            (c.dw.div_ceil(8), c.dh.div_ceil(8))
        } else {
            (frame.mcux, frame.mcuy)
        };
        let (data, restart) = (self.data, self.restart);
        // The whole scan compiled with AVX2 and BMI2 where the CPU has them (integer code:
        // only the instructions change), so the entropy decoder inlines into the block loop.
        simd::with_avx2(
            #[inline(always)]
            || -> Result<usize, KernelError> {
                let mut rst = 0u8;
                let mut count = 0usize;
                for my in 0..mcus_y {
                    for mx in 0..mcus_x {
                        if restart > 0 && count > 0 && count.is_multiple_of(restart) {
                            let at = bits.skip_to_marker();
                            if at + 1 >= data.len() {
                                return Err(truncated());
                            }
                            if data[at + 1] != 0xD0 + rst {
                                return Err(bad("a restart marker is missing"));
                            }
                            rst = (rst + 1) & 7;
                            bits = Bits::new(data, at + 2);
                            eobrun = 0;
                            for &(ci, _, _) in &scan {
                                frame.comps[ci].pred = 0;
                            }
                        }
                        count += 1;
                        for slot in &slots {
                            let (by, bx) = (my * slot.v + slot.dy, mx * slot.h + slot.dx);
                            let c = &mut frame.comps[slot.ci];
                            if stream {
                                let dc = slot.dc.ok_or_else(missing_table)?;
                                let ac = slot.ac.ok_or_else(missing_table)?;
                                let mut block = [0i16; 64];
                                let done =
                                    sequential_block(&mut bits, dc, ac, &mut c.pred, &mut block);
                                if bits.overrun() {
                                    return Err(bits.overrun_error());
                                }
                                done?;
                                let quant = c.quant.as_ref().expect("latched above");
                                let stride = c.bw * 8;
                                let at = by * 8 * stride + bx * 8;
                                idct_into(&block, quant, &mut c.samples, at, stride);
                                continue;
                            }
                            let at = (by * c.bw + bx) * 64;
                            let block: &mut [i16; 64] = (&mut c.coefs[at..at + 64])
                                .try_into()
                                .expect("64 coefficients");
                            let done = match kind {
                                Kind::Sequential => {
                                    let dc = slot.dc.ok_or_else(missing_table)?;
                                    let ac = slot.ac.ok_or_else(missing_table)?;
                                    // A second scan of a component replaces only the coefficients
                                    // it decodes, as libjpeg's (which writes nonzero ones only, and
                                    // every AC value decoded is nonzero); the decoding itself needs
                                    // a block of zeros.
                                    let mut fresh = [0i16; 64];
                                    let done = sequential_block(
                                        &mut bits,
                                        dc,
                                        ac,
                                        &mut c.pred,
                                        &mut fresh,
                                    );
                                    block[0] = fresh[0];
                                    for (b, &f) in block.iter_mut().zip(&fresh).skip(1) {
                                        if f != 0 {
                                            *b = f;
                                        }
                                    }
                                    done
                                }
                                Kind::DcFirst => {
                                    let dc = slot.dc.ok_or_else(missing_table)?;
                                    bits.huff(dc).and_then(|s| {
                                        if s > 15 {
                                            return Err(bad("a bad DC difference"));
                                        }
                                        let diff = bits.receive_extend(u32::from(s));
                                        c.pred = c.pred.wrapping_add(diff);
                                        block[0] = (c.pred << al) as i16;
                                        Ok(())
                                    })
                                }
                                Kind::DcRefine => {
                                    if bits.bit() {
                                        block[0] |= (1i32 << al) as i16;
                                    }
                                    Ok(())
                                }
                                Kind::AcFirst => {
                                    let ac = slot.ac.ok_or_else(missing_table)?;
                                    ac_first(&mut bits, ac, block, ss, se, al, &mut eobrun)
                                }
                                Kind::AcRefine => {
                                    let ac = slot.ac.ok_or_else(missing_table)?;
                                    ac_refine(&mut bits, ac, block, ss, se, al, &mut eobrun)
                                }
                            };
                            // Reading past the segment came first if it happened at all (see `Bits`).
                            if bits.overrun() {
                                return Err(bits.overrun_error());
                            }
                            done?;
                        }
                    }
                }
                Ok(bits.skip_to_marker())
            },
        )
    }

    fn output(self, grey: bool) -> Result<Decoded, KernelError> {
        let mut frame = self.frame.expect("checked by markers");
        let (w, h) = (frame.width, frame.height);
        let n = frame.comps.len();
        // jdapimin.c's default_decompress_parms.
        let rgb_coded = n == 3
            && !self.jfif
            && match self.adobe {
                Some(t) => t == 0,
                None => {
                    frame.comps[0].id == b'R'
                        && frame.comps[1].id == b'G'
                        && frame.comps[2].id == b'B'
                }
            };
        let needed = if grey && !rgb_coded { 1 } else { n };
        let planes: Vec<Vec<u8>> = if self.stream && !frame.progressive {
            frame.comps[..needed]
                .iter_mut()
                .map(|c| {
                    if c.scanned {
                        std::mem::take(&mut c.samples)
                    } else {
                        // No scan: zero coefficients and no table, so the level shift alone.
                        vec![128; c.samples.len()]
                    }
                })
                .collect()
        } else {
            frame.comps[..needed].iter().map(idct_plane).collect()
        };
        let comps = &frame.comps[..needed];
        let channels = if grey || n == 1 { 1 } else { 3 };
        // Rows are made in `out` (in L1) and appended: zeroing the whole image first was a
        // pass over half a megabyte per photo.
        let mut pixels = Vec::with_capacity(w * h * channels);
        let mut out = vec![0u8; w * channels];
        // Upsampled rows, one at a time, so no full-size plane is ever made.
        let mut lines: Vec<Vec<u8>> = comps
            .iter()
            .map(|c| vec![0u8; c.bw * 8 * (frame.max_h / c.h)])
            .collect();
        let mut sums = Vec::new();
        simd::with_avx2(
            #[inline(always)]
            || {
                for y in 0..h {
                    let mut rows: [&[u8]; 3] = [&[]; 3];
                    for (((row, c), plane), line) in
                        rows.iter_mut().zip(comps).zip(&planes).zip(&mut lines)
                    {
                        let factors = (frame.max_h / c.h, frame.max_v / c.v);
                        *row = &upsample_row(plane, line, &mut sums, c, factors, y, w)[..w];
                    }
                    if needed == 1 {
                        pixels.extend_from_slice(rows[0]);
                        continue;
                    }
                    if grey {
                        // rgb_gray_convert: FIX(0.299), FIX(0.587), FIX(0.114) in 1/65536,
                        // rounded.
                        for (((o, &r), &g), &b) in
                            out.iter_mut().zip(rows[0]).zip(rows[1]).zip(rows[2])
                        {
                            let (r, g, b) = (u32::from(r), u32::from(g), u32::from(b));
                            *o = ((19595 * r + 38470 * g + 7471 * b + 32768) >> 16) as u8;
                        }
                    } else if rgb_coded {
                        for (((o, &r), &g), &b) in out
                            .chunks_exact_mut(3)
                            .zip(rows[0])
                            .zip(rows[1])
                            .zip(rows[2])
                        {
                            o.copy_from_slice(&[r, g, b]);
                        }
                    } else {
                        ycc_to_rgb_row(rows[0], rows[1], rows[2], &mut out);
                    }
                    pixels.extend_from_slice(&out);
                }
            },
        );
        Ok(Decoded {
            height: h,
            width: w,
            channels,
            pixels,
        })
    }
}

/// One block of an MCU: its component and Huffman tables (those the scan names, where they
/// exist), and where it lies in the MCU (`dx`, `dy` of the component's `h` by `v` blocks
/// there).
struct Slot<'t> {
    ci: usize,
    dc: Option<&'t Huffman>,
    ac: Option<&'t Huffman>,
    h: usize,
    v: usize,
    dx: usize,
    dy: usize,
}

#[derive(Clone, Copy)]
enum Kind {
    Sequential,
    DcFirst,
    DcRefine,
    AcFirst,
    AcRefine,
}

/// jdhuff.c's decode_mcu for one block, into a block of zeros (see `sequential_block_in`).
#[inline]
fn sequential_block(
    bits: &mut Bits,
    dc: &Huffman,
    ac: &Huffman,
    pred: &mut i32,
    block: &mut [i16; 64],
) -> Result<(), KernelError> {
    // A copy of the reader's state, so that it lives in registers through the loop.
    let mut b = *bits;
    let done = sequential_block_in(&mut b, dc, ac, pred, block);
    *bits = b;
    done
}

#[inline(always)]
fn sequential_block_in(
    bits: &mut Bits,
    dc: &Huffman,
    ac: &Huffman,
    pred: &mut i32,
    block: &mut [i16; 64],
) -> Result<(), KernelError> {
    // The reader's hot state as plain locals (a field of `bits` would be stored and
    // reloaded around every symbol, since its address goes to the cold calls below), and
    // with the unread bits at the top of `top` rather than the bottom: the next code is
    // then `top >> (64 - FAST_BITS)` and using it `top <<= used`, which takes two steps off
    // the chain from one code to the next (no `n - FAST_BITS`, no `n -= used` on it). `n`
    // counts the unread bits; the bits under them are either zeros or the stream's next
    // bits (a refill reads eight bytes and counts only the whole ones that fit), so OR-ing
    // the next bytes in below the `n` bits is exact. They go back to `bits` (bottom-aligned)
    // around the cold calls and at the end.
    // The fast table's pairs write ahead of themselves (see below), which needs `block` to
    // hold zeros where no coefficient has been written yet.
    let fast = ac.fast_ac.as_deref().ok_or_else(missing_table)?;
    let data = bits.data;
    let to_top = |acc: u64, n: u32| if n == 0 { 0 } else { acc << (64 - n) };
    let (mut top, mut n, mut pos, mut ended) =
        (to_top(bits.acc, bits.n), bits.n, bits.pos, bits.ended);
    macro_rules! store {
        () => {
            (bits.acc, bits.n, bits.pos) = (if n == 0 { 0 } else { top >> (64 - n) }, n, pos)
        };
    }
    macro_rules! load {
        () => {
            (top, n, pos, ended) = (to_top(bits.acc, bits.n), bits.n, bits.pos, bits.ended)
        };
    }
    // Tops `n` up to at least 31: 16 bits for a code and 15 for its value, so one refill
    // per symbol at most (`Bits::fill`'s fast path, then its slow one).
    macro_rules! refill {
        () => {
            if n < 31 {
                let mut filled = false;
                if !ended && let Some(chunk) = data.get(pos..pos + 8) {
                    let word = u64::from_be_bytes(chunk.try_into().expect("eight bytes"));
                    if !has_ff_byte(word) {
                        top |= word >> n;
                        let take = (64 - n) / 8;
                        n += 8 * take;
                        pos += take as usize;
                        filled = true;
                    }
                }
                if !filled {
                    store!();
                    bits.fill_slow();
                    load!();
                }
            }
        };
    }
    // `s` (1 to 15) bits as a signed value, F.2.2.1's EXTEND; needs n >= s.
    macro_rules! receive_extend {
        ($s:expr) => {{
            let s: u32 = $s;
            let raw = (top >> (64 - s)) as i32;
            top <<= s;
            n -= s;
            extend(raw, s)
        }};
    }
    refill!();
    let e = dc.lookup[(top >> (64 - LOOKAHEAD)) as usize];
    let s = if e != 0 {
        let len = u32::from(e >> 8);
        top <<= len;
        n -= len;
        e as u8
    } else {
        store!();
        let s = bits.huff_long(dc)?;
        load!();
        s
    };
    if s > 15 {
        store!();
        return Err(bad("a bad DC difference"));
    }
    let diff = if s == 0 {
        0
    } else {
        receive_extend!(u32::from(s))
    };
    *pred = pred.wrapping_add(diff);
    block[0] = *pred as i16;
    let mut k = 1;
    while k < 64 {
        refill!();
        let e = fast[(top >> (64 - FAST_BITS)) as usize];
        // Bit 5 of an entry is 0 and a length is at most 16, so this is the length.
        let used = (e & 31) as u32;
        // The shifts take the entry itself as their count: shifting by it modulo 64 (what
        // `wrapping_shl` means) is shifting by the length, and x86's shifts take their count
        // modulo 64 themselves, so no mask is on the chain from one code to the next (one
        // cycle of about 8). `used` masks with 31, not 63, so that the compiler does not
        // reuse it as the shift count.
        if e & FAST_COEF != 0 {
            let (before, n_before) = (top, n);
            top = top.wrapping_shl(e as u32);
            n -= used;
            k += ((e >> 8) & 15) as usize;
            // `& 63` only tells the compiler what NATURAL holds.
            block[NATURAL[k] & 63] = (e >> 16) as i16;
            k += 1;
            if k >= 64 {
                if e & FAST_PAIR != 0 {
                    // The block ends with the first symbol: the second is the next block's.
                    let first = ((e >> FAST_FIRST_USED) & 31) as u32;
                    (top, n) = (before << first, n_before - first);
                }
                break;
            }
            // The second symbol, without a branch on whether there is one: a single
            // coefficient's entry has run 0, value 0 and no advance, so it writes a zero
            // where the next coefficient goes (still zero: the block starts as zeros and
            // fills in zigzag order) and stays there.
            k += ((e >> 12) & 15) as usize;
            block[NATURAL[k] & 63] = (e >> 32) as i16;
            k += ((e >> FAST_ADVANCE) & 1) as usize;
            if e & FAST_EOB != 0 {
                break;
            }
            continue;
        }
        let rs = if e != 0 {
            top = top.wrapping_shl(e as u32);
            n -= used;
            (e >> 8) as u8
        } else {
            store!();
            let rs = bits.huff_long(ac)?;
            load!();
            rs
        };
        let (r, s) = (usize::from(rs >> 4), u32::from(rs & 15));
        if s != 0 {
            k += r;
            // At least 15 bits remain after a code of at most 16, and s <= 15.
            block[NATURAL[k] & 63] = receive_extend!(s) as i16;
        } else if r == 15 {
            k += 15;
        } else {
            break;
        }
        k += 1;
    }
    store!();
    Ok(())
}

/// jdphuff.c's decode_mcu_AC_first for one block.
fn ac_first(
    bits: &mut Bits,
    ac: &Huffman,
    block: &mut [i16; 64],
    ss: usize,
    se: usize,
    al: u32,
    eobrun: &mut u32,
) -> Result<(), KernelError> {
    if *eobrun > 0 {
        *eobrun -= 1;
        return Ok(());
    }
    let mut k = ss;
    while k <= se {
        let rs = bits.huff(ac)?;
        let (r, s) = (u32::from(rs >> 4), u32::from(rs & 15));
        if s != 0 {
            k += r as usize;
            let v = bits.receive_extend(s);
            block[NATURAL[k.min(79)]] = (v << al) as i16;
        } else if r == 15 {
            k += 15;
        } else {
            *eobrun = 1 << r;
            if r > 0 {
                *eobrun += bits.bits(r);
            }
            *eobrun -= 1;
            break;
        }
        k += 1;
    }
    Ok(())
}

/// jdphuff.c's decode_mcu_AC_refine for one block.
fn ac_refine(
    bits: &mut Bits,
    ac: &Huffman,
    block: &mut [i16; 64],
    ss: usize,
    se: usize,
    al: u32,
    eobrun: &mut u32,
) -> Result<(), KernelError> {
    let p1 = (1i32 << al) as i16;
    let m1 = ((-1i32) << al) as i16;
    let refine = |bits: &mut Bits, coef: &mut i16| {
        if bits.bit() && (*coef & p1) == 0 {
            *coef = if *coef >= 0 {
                coef.wrapping_add(p1)
            } else {
                coef.wrapping_add(m1)
            };
        }
    };
    let mut k = ss;
    if *eobrun == 0 {
        while k <= se {
            let rs = bits.huff(ac)?;
            let (mut r, s) = (i32::from(rs >> 4), rs & 15);
            let mut value = 0i16;
            if s != 0 {
                // s is 1 in a valid file (libjpeg warns otherwise and goes on).
                value = if bits.bit() { p1 } else { m1 };
            } else if r != 15 {
                *eobrun = 1 << r;
                if r > 0 {
                    *eobrun += bits.bits(r as u32);
                }
                break;
            }
            while k <= se {
                let pos = NATURAL[k];
                if block[pos] != 0 {
                    refine(bits, &mut block[pos]);
                } else {
                    r -= 1;
                    if r < 0 {
                        break;
                    }
                }
                k += 1;
            }
            if value != 0 {
                block[NATURAL[k.min(79)]] = value;
            }
            k += 1;
        }
    }
    if *eobrun > 0 {
        while k <= se {
            let pos = NATURAL[k];
            if block[pos] != 0 {
                refine(bits, &mut block[pos]);
            }
            k += 1;
        }
        *eobrun -= 1;
    }
    Ok(())
}

/// A sample from the IDCT's output `x` (before the +128 level shift): clamped, as
/// libjpeg-turbo's SIMD IDCT (what x86 and ARM builds of TF and PIL run) does; its C code
/// wraps values out of range instead, which only corrupt data produces.
#[inline]
fn range_limit(x: i64) -> u8 {
    (x + 128).clamp(0, 255) as u8
}

/// A component's samples: `bw * 8` wide, `bh * 8` high, computed for the blocks that
/// hold image (`dw` by `dh` samples); the rest stay 0, as no output sample reads them.
fn idct_plane(c: &Component) -> Vec<u8> {
    let stride = c.bw * 8;
    let mut plane = vec![0u8; stride * c.bh * 8];
    let quant = c.quant.unwrap_or([0; 64]);
    let (bw, bh) = (c.dw.div_ceil(8), c.dh.div_ceil(8));
    for by in 0..bh {
        for bx in 0..bw {
            let at = (by * c.bw + bx) * 64;
            let coefs: &[i16; 64] = c.coefs[at..at + 64].try_into().expect("64 coefficients");
            idct_into(coefs, &quant, &mut plane, by * 8 * stride + bx * 8, stride);
        }
    }
    plane
}

/// One block's samples into `plane`, its rows at `at`, `at + stride`, ...: the 16-bit
/// AVX2 IDCT (`jpeg_avx2`) where the CPU has AVX2 and the block's values allow it, else
/// `idct_block` (itself on eight 32-bit lanes, or `idct_islow`); the same samples either way.
#[inline]
fn idct_into(coefs: &[i16; 64], quant: &[u16; 64], plane: &mut [u8], at: usize, stride: usize) {
    if super::jpeg_avx2::idct(coefs, quant, plane, at, stride) {
        return;
    }
    let mut out = [0u8; 64];
    simd::with_avx2(
        #[inline(always)]
        || idct_block(coefs, quant, &mut out),
    );
    for (row, samples) in out.chunks_exact(8).enumerate() {
        let o = at + row * stride;
        plane[o..o + 8].copy_from_slice(samples);
    }
}

/// One block's samples from its coefficients: `idct_islow`'s arithmetic, bit for bit.
///
/// jidctint.c is written so that with 8-bit samples every value fits 32 bits: the
/// dequantized coefficients and the first pass's outputs fit 16 bits in any block an
/// encoder makes from 8-bit samples. Where both hold here (checked), no product or sum of
/// either pass leaves `i32`: the largest is at most 62,238 times the largest input (each
/// value's coefficients in the inputs summed in absolute value), and 62,238 * 32,768 plus
/// the rounding terms is below 2^31. Then both passes run on eight columns (rows) at a
/// time in `i32`, which LLVM vectorizes; otherwise (corrupt data, huge coefficients or
/// 16-bit tables) the block goes through `idct_islow`'s `i64` arithmetic.
#[inline(always)]
fn idct_block(coefs: &[i16; 64], quant: &[u16; 64], out: &mut [u8; 64]) {
    if coefs[1..].iter().all(|&c| c == 0) {
        // Only a DC term: `idct_islow`'s own shortcut.
        let dc = ((i64::from(coefs[0]) * i64::from(quant[0])) << PASS1_BITS) as i32;
        out.fill(range_limit(descale(i64::from(dc), PASS1_BITS + 3)));
        return;
    }
    let mut x = [[0i32; 8]; 8];
    // Bit 16 and up of `v + 2^15` are all zero exactly when -2^15 <= v < 2^15.
    let mut wide = 0u32;
    for r in 0..8 {
        for l in 0..8 {
            // |coef * quant| <= 2^15 * 65535 < 2^31 - 2^15.
            let d = i32::from(coefs[r * 8 + l]) * i32::from(quant[r * 8 + l]);
            x[r][l] = d;
            wide |= (d + (1 << 15)) as u32;
        }
    }
    if wide >> 16 != 0 {
        return idct_islow(coefs, quant, out);
    }
    // Pass 1, columns in the lanes; DESCALE by CONST_BITS - PASS1_BITS.
    let o = islow_lanes(&x);
    let mut t = [[0i32; 8]; 8];
    let mut wide = 0u32;
    for r in 0..8 {
        for l in 0..8 {
            let w = (o[r][l] + (1 << 10)) >> 11;
            wide |= (w + (1 << 15)) as u32;
            // Transposed, so that pass 2 has the rows in its lanes.
            t[l][r] = w;
        }
    }
    if wide >> 16 != 0 {
        return idct_islow(coefs, quant, out);
    }
    // Pass 2, rows in the lanes, with the final descale's rounding folded into the DC term.
    for l in 0..8 {
        t[0][l] += 1 << (PASS1_BITS + 2);
    }
    let o = islow_lanes(&t);
    let shift = CONST_BITS + PASS1_BITS + 3;
    for row in 0..8 {
        for col in 0..8 {
            out[row * 8 + col] = ((o[col][row] >> shift) + 128).clamp(0, 255) as u8;
        }
    }
}

/// jidctint.c's butterflies for one pass on eight lanes at once (`x[k][l]`: input `k` of
/// lane `l`): the eight outputs of each lane in order, before descaling. The caller
/// guarantees the inputs are small enough for `i32` (see `idct_block`).
#[inline(always)]
fn islow_lanes(x: &[[i32; 8]; 8]) -> [[i32; 8]; 8] {
    let mut o = [[0i32; 8]; 8];
    for l in 0..8 {
        let (z2, z3) = (x[2][l], x[6][l]);
        let z1 = (z2 + z3) * FIX_0_541196100 as i32;
        let tmp2 = z1 + z3 * -(FIX_1_847759065 as i32);
        let tmp3 = z1 + z2 * FIX_0_765366865 as i32;
        let (z2, z3) = (x[0][l], x[4][l]);
        let tmp0 = (z2 + z3) << CONST_BITS;
        let tmp1 = (z2 - z3) << CONST_BITS;
        let (tmp10, tmp13, tmp11, tmp12) = (tmp0 + tmp3, tmp0 - tmp3, tmp1 + tmp2, tmp1 - tmp2);
        let (t0, t1, t2, t3) = (x[7][l], x[5][l], x[3][l], x[1][l]);
        let (z1, z2, z3, z4) = (t0 + t3, t1 + t2, t0 + t2, t1 + t3);
        let z5 = (z3 + z4) * FIX_1_175875602 as i32;
        let (t0, t1, t2, t3) = (
            t0 * FIX_0_298631336 as i32,
            t1 * FIX_2_053119869 as i32,
            t2 * FIX_3_072711026 as i32,
            t3 * FIX_1_501321110 as i32,
        );
        let z1 = z1 * -(FIX_0_899976223 as i32);
        let z2 = z2 * -(FIX_2_562915447 as i32);
        let z3 = z3 * -(FIX_1_961570560 as i32) + z5;
        let z4 = z4 * -(FIX_0_390180644 as i32) + z5;
        let (o0, o1, o2, o3) = (t0 + z1 + z3, t1 + z2 + z4, t2 + z2 + z3, t3 + z1 + z4);
        o[0][l] = tmp10 + o3;
        o[7][l] = tmp10 - o3;
        o[1][l] = tmp11 + o2;
        o[6][l] = tmp11 - o2;
        o[2][l] = tmp12 + o1;
        o[5][l] = tmp12 - o1;
        o[3][l] = tmp13 + o0;
        o[4][l] = tmp13 - o0;
    }
    o
}

const CONST_BITS: u32 = 13;
const PASS1_BITS: u32 = 2;
const FIX_0_298631336: i64 = 2446;
const FIX_0_390180644: i64 = 3196;
const FIX_0_541196100: i64 = 4433;
const FIX_0_765366865: i64 = 6270;
const FIX_0_899976223: i64 = 7373;
const FIX_1_175875602: i64 = 9633;
const FIX_1_501321110: i64 = 12299;
const FIX_1_847759065: i64 = 15137;
const FIX_1_961570560: i64 = 16069;
const FIX_2_053119869: i64 = 16819;
const FIX_2_562915447: i64 = 20995;
const FIX_3_072711026: i64 = 25172;

/// `DESCALE(x, n)`: x / 2^n rounded (half up).
#[inline]
fn descale(x: i64, n: u32) -> i64 {
    (x + (1 << (n - 1))) >> n
}

/// jidctint.c's `jpeg_idct_islow`: dequantize and inverse-DCT one block (JLONG is 64-bit
/// on the platforms TF and PIL ship for; the workspace between passes is `int`). The
/// reference `idct_block` must equal, and what it falls back on outside `i32`'s range.
#[cold]
fn idct_islow(coefs: &[i16; 64], quant: &[u16; 64], out: &mut [u8; 64]) {
    let deq = |k: usize| i64::from(coefs[k]) * i64::from(quant[k]);
    if coefs[1..64].iter().all(|&c| c == 0) {
        // Only a DC term: every sample is the same (what both passes compute for it).
        let dc = (deq(0) << PASS1_BITS) as i32;
        out.fill(range_limit(descale(i64::from(dc), PASS1_BITS + 3)));
        return;
    }
    let mut ws = [0i32; 64];
    // Pass 1: columns.
    for col in 0..8 {
        if (1..8).all(|r| coefs[r * 8 + col] == 0) {
            let dc = (deq(col) << PASS1_BITS) as i32;
            for r in 0..8 {
                ws[r * 8 + col] = dc;
            }
            continue;
        }
        let z2 = deq(16 + col);
        let z3 = deq(48 + col);
        let z1 = (z2 + z3) * FIX_0_541196100;
        let tmp2 = z1 + z3 * -FIX_1_847759065;
        let tmp3 = z1 + z2 * FIX_0_765366865;
        let z2 = deq(col);
        let z3 = deq(32 + col);
        let tmp0 = (z2 + z3) << CONST_BITS;
        let tmp1 = (z2 - z3) << CONST_BITS;
        let (tmp10, tmp13, tmp11, tmp12) = (tmp0 + tmp3, tmp0 - tmp3, tmp1 + tmp2, tmp1 - tmp2);
        let (o0, o1, o2, o3) = odd(deq(56 + col), deq(40 + col), deq(24 + col), deq(8 + col));
        let n = CONST_BITS - PASS1_BITS;
        ws[col] = descale(tmp10 + o3, n) as i32;
        ws[56 + col] = descale(tmp10 - o3, n) as i32;
        ws[8 + col] = descale(tmp11 + o2, n) as i32;
        ws[48 + col] = descale(tmp11 - o2, n) as i32;
        ws[16 + col] = descale(tmp12 + o1, n) as i32;
        ws[40 + col] = descale(tmp12 - o1, n) as i32;
        ws[24 + col] = descale(tmp13 + o0, n) as i32;
        ws[32 + col] = descale(tmp13 - o0, n) as i32;
    }
    // Pass 2: rows, with the final descale's rounding folded into the DC term.
    let shift = CONST_BITS + PASS1_BITS + 3;
    for row in 0..8 {
        let w = &ws[row * 8..row * 8 + 8];
        let o = &mut out[row * 8..row * 8 + 8];
        let z2 = i64::from(w[2]);
        let z3 = i64::from(w[6]);
        let z1 = (z2 + z3) * FIX_0_541196100;
        let tmp2 = z1 + z3 * -FIX_1_847759065;
        let tmp3 = z1 + z2 * FIX_0_765366865;
        let z2 = i64::from(w[0]) + (1 << (PASS1_BITS + 2));
        let z3 = i64::from(w[4]);
        let tmp0 = (z2 + z3) << CONST_BITS;
        let tmp1 = (z2 - z3) << CONST_BITS;
        let (tmp10, tmp13, tmp11, tmp12) = (tmp0 + tmp3, tmp0 - tmp3, tmp1 + tmp2, tmp1 - tmp2);
        let (o0, o1, o2, o3) = odd(
            i64::from(w[7]),
            i64::from(w[5]),
            i64::from(w[3]),
            i64::from(w[1]),
        );
        o[0] = range_limit((tmp10 + o3) >> shift);
        o[7] = range_limit((tmp10 - o3) >> shift);
        o[1] = range_limit((tmp11 + o2) >> shift);
        o[6] = range_limit((tmp11 - o2) >> shift);
        o[2] = range_limit((tmp12 + o1) >> shift);
        o[5] = range_limit((tmp12 - o1) >> shift);
        o[3] = range_limit((tmp13 + o0) >> shift);
        o[4] = range_limit((tmp13 - o0) >> shift);
    }
}

/// The odd part of jidctint.c's butterflies, from inputs 7, 5, 3, 1: its tmp0..tmp3.
#[inline]
fn odd(t0: i64, t1: i64, t2: i64, t3: i64) -> (i64, i64, i64, i64) {
    let z1 = t0 + t3;
    let z2 = t1 + t2;
    let z3 = t0 + t2;
    let z4 = t1 + t3;
    let z5 = (z3 + z4) * FIX_1_175875602;
    let (t0, t1, t2, t3) = (
        t0 * FIX_0_298631336,
        t1 * FIX_2_053119869,
        t2 * FIX_3_072711026,
        t3 * FIX_1_501321110,
    );
    let z1 = z1 * -FIX_0_899976223;
    let z2 = z2 * -FIX_2_562915447;
    let z3 = z3 * -FIX_1_961570560 + z5;
    let z4 = z4 * -FIX_0_390180644 + z5;
    (t0 + z1 + z3, t1 + z2 + z4, t2 + z2 + z3, t3 + z1 + z4)
}

/// Output row `y` of a component brought to the image's full width, as jdsample.c does:
/// a row of `plane` itself, or the upsampled row written into `line`. `hx`, `vx`: the
/// component's upsampling factors.
fn upsample_row<'a>(
    plane: &'a [u8],
    line: &'a mut [u8],
    sums: &mut Vec<u16>,
    c: &Component,
    (hx, vx): (usize, usize),
    y: usize,
    w: usize,
) -> &'a [u8] {
    let stride = c.bw * 8;
    let row = |r: usize| &plane[r * stride..(r + 1) * stride];
    // libjpeg's context rows: above the first row is the first; below the last row with
    // image is that row.
    let above = |r: usize| r.saturating_sub(1);
    let below = |r: usize| (r + 1).min(c.dh - 1);
    let dw = c.dw;
    let r = y / vx;
    match (hx, vx) {
        (1, 1) => return row(r),
        (2, 1) if dw > 2 => h2v1_fancy(row(r), dw, line),
        (1, 2) => {
            let (near, far, bias) = if y.is_multiple_of(2) {
                (row(r), row(above(r)), 1)
            } else {
                (row(r), row(below(r)), 2)
            };
            for ((d, &n), &f) in line[..dw].iter_mut().zip(near).zip(far) {
                *d = ((3 * u32::from(n) + u32::from(f) + bias) >> 2) as u8;
            }
        }
        (2, 2) if dw > 2 => {
            let far = if y.is_multiple_of(2) {
                row(above(r))
            } else {
                row(below(r))
            };
            h2v2_fancy(row(r), far, dw, sums, line);
        }
        _ => {
            let src = row(r);
            for (x, d) in line[..w].iter_mut().enumerate() {
                *d = src[x / hx];
            }
        }
    }
    line
}

/// jdsample.c's h2v1_fancy_upsample for one row (`dw > 2`).
fn h2v1_fancy(input: &[u8], dw: usize, out: &mut [u8]) {
    let s = |i: usize| u32::from(input[i]);
    out[0] = input[0];
    out[1] = ((s(0) * 3 + s(1) + 2) >> 2) as u8;
    for i in 1..dw - 1 {
        let v = s(i) * 3;
        out[2 * i] = ((v + s(i - 1) + 1) >> 2) as u8;
        out[2 * i + 1] = ((v + s(i + 1) + 2) >> 2) as u8;
    }
    let l = dw - 1;
    out[2 * l] = ((s(l) * 3 + s(l - 1) + 1) >> 2) as u8;
    out[2 * l + 1] = input[l];
}

/// jdsample.c's h2v2_fancy_upsample for one output row: `near` is the input row nearest to
/// it, `far` the next nearest (`dw > 2`). jdsample.c carries the column sums from one
/// step to the next; here each output is written from the sums it needs, the same values
/// without a loop-carried dependency.
fn h2v2_fancy(near: &[u8], far: &[u8], dw: usize, sums: &mut Vec<u16>, out: &mut [u8]) {
    let (near, far) = (&near[..dw], &far[..dw]);
    // The column sums first, in one pass: the interior then reads each column's three
    // sums from memory, not three times widened from the rows.
    sums.resize(dw, 0);
    super::jpeg_avx2::column_sums(near, far, sums);
    let done = super::jpeg_avx2::h2v2_interior(sums, out);
    let l = dw - 1;
    out[0] = ((sums[0] * 4 + 8) >> 4) as u8;
    out[1] = ((sums[0] * 3 + sums[1] + 7) >> 4) as u8;
    for (o, s) in out[2 + 2 * done..2 * l]
        .chunks_exact_mut(2)
        .zip(sums[done..].windows(3))
    {
        let this = s[1] * 3;
        o[0] = ((this + s[0] + 8) >> 4) as u8;
        o[1] = ((this + s[2] + 7) >> 4) as u8;
    }
    out[2 * l] = ((sums[l] * 3 + sums[l - 1] + 8) >> 4) as u8;
    out[2 * l + 1] = ((sums[l] * 4 + 7) >> 4) as u8;
}

/// `FIX(x)` of jdcolor.c: x in 16-bit fixed point, rounded.
const fn fix16(x: f64) -> i32 {
    (x * 65536.0 + 0.5) as i32
}

/// jdcolor.c's ycc_rgb_convert for one row. Its tables hold `(FIX(1.402) * x + HALF) >> 16`
/// and the like for each `x = sample - 128`; computing those instead of looking them up
/// gives the same values and lets the loop vectorize.
#[inline(always)]
fn ycc_to_rgb_row(y: &[u8], cb: &[u8], cr: &[u8], out: &mut [u8]) {
    const HALF: i32 = 1 << 15;
    const CR_R: i32 = fix16(1.40200);
    const CB_B: i32 = fix16(1.77200);
    const CR_G: i32 = fix16(0.71414);
    const CB_G: i32 = fix16(0.34414);
    let clamp = |v: i32| v.clamp(0, 255) as u8;
    // The whole row with AVX2 where the CPU has it and the row is long enough; else here.
    let done = super::jpeg_avx2::ycc_to_rgb(y, cb, cr, out);
    let (y, cb, cr, out) = (&y[done..], &cb[done..], &cr[done..], &mut out[3 * done..]);
    for (((o, &y), &b), &r) in out.chunks_exact_mut(3).zip(y).zip(cb).zip(cr) {
        let (y, b, r) = (i32::from(y), i32::from(b) - 128, i32::from(r) - 128);
        o[0] = clamp(y + ((CR_R * r + HALF) >> 16));
        o[1] = clamp(y + ((-CB_G * b + HALF - CR_G * r) >> 16));
        o[2] = clamp(y + ((CB_B * b + HALF) >> 16));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    /// The `i32` lanes give `idct_islow`'s samples on random blocks of every size, from
    /// sparse small ones to coefficients and tables far outside any real file's.
    #[test]
    fn idct_block_equals_the_reference() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        for i in 0..60_000 {
            let mut coefs = [0i16; 64];
            let mut quant = [0u16; 64];
            let (cmax, qmax) = match i % 6 {
                0 => (64, 16),
                1 => (1024, 8),
                2 => (2048, 255),
                3 => (32768, 255),
                4 => (32768, 65535),
                _ => (256, 255),
            };
            let density = 1 + xorshift(&mut state) % 64;
            for k in 0..64 {
                quant[k] = (1 + xorshift(&mut state) % qmax) as u16;
                if k == 0 || xorshift(&mut state) % 64 < density {
                    coefs[k] = ((xorshift(&mut state) % (2 * cmax)) as i64 - cmax as i64)
                        .clamp(-32768, 32767) as i16;
                }
            }
            let (mut got, mut want) = ([0u8; 64], [0u8; 64]);
            idct_block(&coefs, &quant, &mut got);
            idct_islow(&coefs, &quant, &mut want);
            assert_eq!(got, want, "{coefs:?} {quant:?}");
            simd::with_avx2(|| idct_block(&coefs, &quant, &mut got));
            assert_eq!(got, want, "{coefs:?} {quant:?}");
            assert_eq!(idct_in_plane(&coefs, &quant), want, "{coefs:?} {quant:?}");
        }
    }

    /// `idct_into`'s samples (through `jpeg_avx2` where the CPU has AVX2) read back from a
    /// plane wider than the block, with bytes around it that must stay untouched.
    fn idct_in_plane(coefs: &[i16; 64], quant: &[u16; 64]) -> [u8; 64] {
        let (stride, at) = (27, 2 * 27 + 5);
        let mut plane = vec![0xA5u8; stride * 11];
        idct_into(coefs, quant, &mut plane, at, stride);
        let mut got = [0u8; 64];
        for r in 0..8 {
            let row = &mut plane[at + r * stride..at + r * stride + 8];
            got[r * 8..r * 8 + 8].copy_from_slice(row);
            row.fill(0xA5);
        }
        assert!(
            plane.iter().all(|&b| b == 0xA5),
            "bytes outside the block written"
        );
        got
    }

    /// The 16-bit AVX2 IDCT at the edges of what it accepts: dequantized values at and
    /// just past the `i16` limits, tables with values at and above 2^15, and blocks whose
    /// first pass lands at and past the limits; it must take most of the small blocks.
    #[test]
    fn avx2_idct_equals_the_reference_at_the_limits() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut taken = 0;
        for i in 0..40_000 {
            let mut coefs = [0i16; 64];
            let mut quant = [1u16; 64];
            let extremes = [32767i16, -32768, 32766, -32767, 16384, -16384, 4096, -4096];
            let n = 1 + xorshift(&mut state) % 6;
            for _ in 0..n {
                let k = (xorshift(&mut state) % 64) as usize;
                coefs[k] = extremes[(xorshift(&mut state) % 8) as usize];
            }
            match i % 4 {
                0 => {}
                1 => {
                    // Products at 2^15 - 1 and 2^15 exactly.
                    let k = (xorshift(&mut state) % 64) as usize;
                    (coefs[k], quant[k]) = if i % 8 == 1 { (-16384, 2) } else { (16384, 2) };
                }
                2 => quant[(xorshift(&mut state) % 64) as usize] = 32767 + (i % 3) as u16,
                _ => {
                    for k in 0..64 {
                        coefs[k] = (xorshift(&mut state) % 64) as i16 - 32;
                        quant[k] = (1 + xorshift(&mut state) % 40) as u16;
                    }
                }
            }
            let mut want = [0u8; 64];
            idct_islow(&coefs, &quant, &mut want);
            assert_eq!(idct_in_plane(&coefs, &quant), want, "{coefs:?} {quant:?}");
            let mut plane = [0u8; 64];
            if super::super::jpeg_avx2::idct(&coefs, &quant, &mut plane, 0, 8) {
                taken += 1;
                assert_eq!(plane, want, "{coefs:?} {quant:?}");
            }
        }
        if simd::vectorized() {
            assert!(taken > 10_000, "the AVX2 IDCT took only {taken} blocks");
        }
    }

    /// Every sign pattern of inputs at the limits `idct_block` admits (overflow checks are
    /// on in tests, so a sum leaving `i32` would panic here).
    #[test]
    fn lanes_stay_in_i32_at_the_limits() {
        for pattern in 0..256u32 {
            let mut x = [[0i32; 8]; 8];
            for k in 0..8 {
                for l in 0..8 {
                    // Each lane a different pattern: bit k of (pattern + 37 * lane).
                    let p = pattern.wrapping_add(37 * l as u32);
                    x[k][l] = if p >> k & 1 == 1 { 32767 } else { -32768 };
                }
            }
            let o = islow_lanes(&x);
            for row in o {
                for v in row {
                    let _ = v + (1 << 10);
                }
            }
            for l in 0..8 {
                x[0][l] += 1 << (PASS1_BITS + 2);
            }
            islow_lanes(&x);
        }
    }

    /// jdsample.c's h2v2_fancy_upsample for one output row as the C writes it, carrying
    /// the column sums from one step to the next.
    fn h2v2_as_in_libjpeg(near: &[u8], far: &[u8]) -> Vec<u8> {
        let sum = |i: usize| u32::from(near[i]) * 3 + u32::from(far[i]);
        let mut out = Vec::new();
        let (mut this, mut next) = (sum(0), sum(1));
        out.push(((this * 4 + 8) >> 4) as u8);
        out.push(((this * 3 + next + 7) >> 4) as u8);
        let mut last = this;
        this = next;
        for i in 2..near.len() {
            next = sum(i);
            out.push(((this * 3 + last + 8) >> 4) as u8);
            out.push(((this * 3 + next + 7) >> 4) as u8);
            last = this;
            this = next;
        }
        out.push(((this * 3 + last + 8) >> 4) as u8);
        out.push(((this * 4 + 7) >> 4) as u8);
        out
    }

    /// The upsampling (its vector interior and scalar edges) equals libjpeg's loop on rows
    /// of every length from 3 to 80 (whole and partial groups of 16), random and extreme
    /// samples.
    #[test]
    fn h2v2_upsampling_equals_libjpeg() {
        let mut state = 0x5DEE_CE66_D1CE_4E5Bu64;
        for dw in 3..=80usize {
            for pattern in 0..4 {
                let mut sample = |i: usize| match pattern {
                    0 => xorshift(&mut state) as u8,
                    1 => 255,
                    2 => 0,
                    _ => {
                        if i.is_multiple_of(3) {
                            255
                        } else {
                            0
                        }
                    }
                };
                let near: Vec<u8> = (0..dw).map(&mut sample).collect();
                let far: Vec<u8> = (0..dw).map(|i| sample(i + 1)).collect();
                // Room past the row, as the decoder's line buffers have.
                let mut out = vec![0xAB; 2 * dw + 16];
                simd::with_avx2(|| h2v2_fancy(&near, &far, dw, &mut Vec::new(), &mut out));
                assert_eq!(
                    out[..2 * dw],
                    h2v2_as_in_libjpeg(&near, &far),
                    "{dw} {pattern}"
                );
                assert!(
                    out[2 * dw..].iter().all(|&b| b == 0xAB),
                    "wrote past the row"
                );
            }
        }
    }

    /// Rows of every width from 1 to 100 (scalar, whole 32-pixel groups, groups with an
    /// overlapping last one) convert as jdcolor.c's formulas do, pixel by pixel, writing
    /// nothing past the row.
    #[test]
    fn ycc_rows_of_every_width_equal_the_formulas() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for width in 1..=100usize {
            let mut plane = || -> Vec<u8> {
                (0..width)
                    .map(|_| (xorshift(&mut state) >> 56) as u8)
                    .collect()
            };
            let (y, cb, cr) = (plane(), plane(), plane());
            let mut out = vec![0xA5u8; 3 * width + 7];
            ycc_to_rgb_row(&y, &cb, &cr, &mut out[..3 * width]);
            for p in 0..width {
                let mut want = [0u8; 3];
                ycc_to_rgb_row(&y[p..p + 1], &cb[p..p + 1], &cr[p..p + 1], &mut want);
                assert_eq!(out[3 * p..3 * p + 3], want, "width {width} pixel {p}");
            }
            assert!(out[3 * width..].iter().all(|&b| b == 0xA5), "width {width}");
        }
    }

    /// The computed colour terms equal jdcolor.c's tables for every (Cb, Cr).
    #[test]
    fn ycc_arithmetic_equals_the_tables() {
        const HALF: i32 = 1 << 15;
        let fix = |x: f64| (x * 65536.0 + 0.5) as i32;
        for yy in [0u8, 1, 77, 128, 200, 254, 255] {
            let cb: Vec<u8> = (0..=255u8).collect();
            for cr in 0..=255u8 {
                let y = vec![yy; 256];
                let crs = vec![cr; 256];
                let mut out = vec![0u8; 256 * 3];
                ycc_to_rgb_row(&y, &cb, &crs, &mut out);
                // The vector pass alone on a width not a multiple of its 32 pixels (the
                // last ones overlapping), the same.
                let mut part = vec![0u8; 255 * 3];
                let done = super::super::jpeg_avx2::ycc_to_rgb(&y, &cb, &crs, &mut part);
                assert!(done == 0 || done == 255);
                assert_eq!(part[..3 * done], out[..3 * done]);
                for b in 0..256usize {
                    let (xb, xr) = (b as i32 - 128, i32::from(cr) - 128);
                    let yv = i32::from(yy);
                    let want = [
                        yv + ((fix(1.40200) * xr + HALF) >> 16),
                        yv + ((-fix(0.34414) * xb + HALF + -fix(0.71414) * xr) >> 16),
                        yv + ((fix(1.77200) * xb + HALF) >> 16),
                    ]
                    .map(|v| v.clamp(0, 255) as u8);
                    assert_eq!(out[3 * b..3 * b + 3], want, "y {yy} cb {b} cr {cr}");
                }
            }
        }
    }
}
