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
//! Where libjpeg only warns and goes on guessing (a bad Huffman code, entropy data running
//! into a marker or the end of the file, a missing restart marker), this decoder stops with
//! an error: a corrupt or truncated image is an error naming the element (SPEC §13).
//! Not supported (an error, as TF's 8-bit libjpeg for the first two): 12-bit samples,
//! arithmetic coding, lossless and hierarchical JPEG, 2- and 4-component (CMYK) images.
// The ports of libjpeg's loops index several arrays by one counter, as the C does: kept
// that way so they can be checked line by line against jidctint.c, jdsample.c, jdhuff.c.
#![allow(clippy::needless_range_loop)]

use super::super::KernelError;

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
    lookup: Vec<u16>,
    /// The largest code of each length (`-1` when none), index 1..=16.
    maxcode: [i32; 18],
    /// Value index of the first code of each length, minus that code.
    valoffset: [i32; 17],
    values: Vec<u8>,
}

const LOOKAHEAD: u32 = 9;

impl Huffman {
    fn new(counts: &[u8; 16], values: Vec<u8>) -> Result<Huffman, KernelError> {
        let mut maxcode = [-1i32; 18];
        let mut valoffset = [0i32; 17];
        let mut lookup = vec![0u16; 1 << LOOKAHEAD];
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
                    code += 1;
                    k += 1;
                }
                maxcode[len] = code - 1;
            }
            code <<= 1;
        }
        maxcode[17] = i32::MAX;
        Ok(Huffman {
            lookup,
            maxcode,
            valoffset,
            values,
        })
    }
}

/// Reads entropy-coded bits: stuffed zero bytes removed, stopping at a marker. Bits asked
/// for beyond the segment are an error (libjpeg would supply zeros and warn).
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

    fn fill(&mut self) {
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

    /// Fails if the bits just consumed reached past the segment.
    fn check(&self) -> Result<(), KernelError> {
        if self.n < self.fake {
            Err(if self.eof {
                truncated()
            } else {
                bad("a scan's data ends early")
            })
        } else {
            Ok(())
        }
    }

    fn bits(&mut self, k: u32) -> Result<u32, KernelError> {
        if k == 0 {
            return Ok(0);
        }
        if self.n < k {
            self.fill();
        }
        self.n -= k;
        self.check()?;
        Ok(((self.acc >> self.n) & ((1u64 << k) - 1)) as u32)
    }

    fn bit(&mut self) -> Result<bool, KernelError> {
        Ok(self.bits(1)? == 1)
    }

    /// `bits(s)` as a signed coefficient (the JPEG "EXTEND" of F.2.2.1).
    fn receive_extend(&mut self, s: u32) -> Result<i32, KernelError> {
        if s == 0 {
            return Ok(0);
        }
        let r = self.bits(s)? as i32;
        Ok(if r < (1 << (s - 1)) {
            r - (1 << s) + 1
        } else {
            r
        })
    }

    fn huff(&mut self, t: &Huffman) -> Result<u8, KernelError> {
        if self.n < 16 {
            self.fill();
        }
        let peek = ((self.acc >> (self.n - LOOKAHEAD)) & ((1 << LOOKAHEAD) - 1)) as usize;
        let e = t.lookup[peek];
        if e != 0 {
            self.n -= u32::from(e >> 8);
            self.check()?;
            return Ok(e as u8);
        }
        // A longer code: walk the lengths as jdhuff.c's jpeg_huff_decode.
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
        self.check()?;
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
    /// Quantized coefficients, 64 per block in natural order.
    coefs: Vec<i16>,
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

struct Decoder<'a> {
    data: &'a [u8],
    pos: usize,
    frame: Option<Frame>,
    quant: [Option<[u16; 64]>; 4],
    dc: [Option<Huffman>; 4],
    ac: [Option<Huffman>; 4],
    restart: usize,
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
    let mut d = Decoder {
        data: bytes,
        pos: 2,
        frame: None,
        quant: [None; 4],
        dc: [None, None, None, None],
        ac: [None, None, None, None],
        restart: 0,
        jfif: false,
        adobe: None,
        scans: 0,
    };
    d.markers(&check)?;
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

impl Decoder<'_> {
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
            c.coefs = vec![0; c.bw * c.bh * 64];
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
            let table = Huffman::new(&counts, seg[17..17 + total].to_vec())?;
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
        // The blocks in decoding order, one MCU at a time: every block of every component
        // of an interleaved scan; the component's own blocks (those with image) otherwise.
        let mut mcu_blocks: Vec<(usize, usize, usize)> = Vec::with_capacity(10);
        let (mcus_x, mcus_y) = if ns == 1 {
            let c = &frame.comps[scan[0].0];
            (c.dw.div_ceil(8), c.dh.div_ceil(8))
        } else {
            (frame.mcux, frame.mcuy)
        };
        let mut rst = 0u8;
        let mut count = 0usize;
        for my in 0..mcus_y {
            for mx in 0..mcus_x {
                if self.restart > 0 && count > 0 && count.is_multiple_of(self.restart) {
                    let at = bits.skip_to_marker();
                    if at + 1 >= self.data.len() {
                        return Err(truncated());
                    }
                    if self.data[at + 1] != 0xD0 + rst {
                        return Err(bad("a restart marker is missing"));
                    }
                    rst = (rst + 1) & 7;
                    bits = Bits::new(self.data, at + 2);
                    eobrun = 0;
                    for &(ci, _, _) in &scan {
                        frame.comps[ci].pred = 0;
                    }
                }
                count += 1;
                mcu_blocks.clear();
                if ns == 1 {
                    mcu_blocks.push((scan[0].0, my, mx));
                } else {
                    for &(ci, _, _) in &scan {
                        let c = &frame.comps[ci];
                        for by in 0..c.v {
                            for bx in 0..c.h {
                                mcu_blocks.push((ci, my * c.v + by, mx * c.h + bx));
                            }
                        }
                    }
                }
                for &(ci, by, bx) in &mcu_blocks {
                    let &(_, td, ta) = scan.iter().find(|s| s.0 == ci).expect("in the scan");
                    let c = &mut frame.comps[ci];
                    let at = (by * c.bw + bx) * 64;
                    let block = &mut c.coefs[at..at + 64];
                    match kind {
                        Kind::Sequential => {
                            let (dc, ac) = (self.dc[td].as_ref(), self.ac[ta].as_ref());
                            let (dc, ac) =
                                (dc.ok_or_else(missing_table)?, ac.ok_or_else(missing_table)?);
                            sequential_block(&mut bits, dc, ac, &mut c.pred, block)?;
                        }
                        Kind::DcFirst => {
                            let dc = self.dc[td].as_ref().ok_or_else(missing_table)?;
                            let s = bits.huff(dc)?;
                            if s > 15 {
                                return Err(bad("a bad DC difference"));
                            }
                            let diff = bits.receive_extend(u32::from(s))?;
                            c.pred = c.pred.wrapping_add(diff);
                            block[0] = (c.pred << al) as i16;
                        }
                        Kind::DcRefine => {
                            if bits.bit()? {
                                block[0] |= (1i32 << al) as i16;
                            }
                        }
                        Kind::AcFirst => {
                            let ac = self.ac[ta].as_ref().ok_or_else(missing_table)?;
                            ac_first(&mut bits, ac, block, ss, se, al, &mut eobrun)?;
                        }
                        Kind::AcRefine => {
                            let ac = self.ac[ta].as_ref().ok_or_else(missing_table)?;
                            ac_refine(&mut bits, ac, block, ss, se, al, &mut eobrun)?;
                        }
                    }
                }
            }
        }
        Ok(bits.skip_to_marker())
    }

    fn output(self, grey: bool) -> Result<Decoded, KernelError> {
        let frame = self.frame.expect("checked by markers");
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
        let planes: Vec<Vec<u8>> = frame.comps[..needed]
            .iter()
            .map(|c| {
                let plane = idct_plane(c);
                upsample(&plane, c, frame.max_h / c.h, frame.max_v / c.v, w, h)
            })
            .collect();
        let pixels = if n == 1 || (grey && !rgb_coded) {
            planes.into_iter().next().expect("one plane")
        } else if rgb_coded && grey {
            // rgb_gray_convert: FIX(0.299), FIX(0.587), FIX(0.114) in 1/65536, rounded.
            (0..w * h)
                .map(|i| {
                    let (r, g, b) = (
                        planes[0][i] as u32,
                        planes[1][i] as u32,
                        planes[2][i] as u32,
                    );
                    ((19595 * r + 38470 * g + 7471 * b + 32768) >> 16) as u8
                })
                .collect()
        } else if rgb_coded {
            let mut out = Vec::with_capacity(w * h * 3);
            for i in 0..w * h {
                out.extend_from_slice(&[planes[0][i], planes[1][i], planes[2][i]]);
            }
            out
        } else {
            ycc_to_rgb(&planes[0], &planes[1], &planes[2])
        };
        Ok(Decoded {
            height: h,
            width: w,
            channels: if grey || n == 1 { 1 } else { 3 },
            pixels,
        })
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Sequential,
    DcFirst,
    DcRefine,
    AcFirst,
    AcRefine,
}

/// jdhuff.c's decode_mcu for one block.
fn sequential_block(
    bits: &mut Bits,
    dc: &Huffman,
    ac: &Huffman,
    pred: &mut i32,
    block: &mut [i16],
) -> Result<(), KernelError> {
    let s = bits.huff(dc)?;
    if s > 15 {
        return Err(bad("a bad DC difference"));
    }
    let diff = bits.receive_extend(u32::from(s))?;
    *pred = pred.wrapping_add(diff);
    block[0] = *pred as i16;
    let mut k = 1;
    while k < 64 {
        let rs = bits.huff(ac)?;
        let (r, s) = (usize::from(rs >> 4), u32::from(rs & 15));
        if s != 0 {
            k += r;
            let v = bits.receive_extend(s)?;
            block[NATURAL[k]] = v as i16;
        } else if r == 15 {
            k += 15;
        } else {
            break;
        }
        k += 1;
    }
    Ok(())
}

/// jdphuff.c's decode_mcu_AC_first for one block.
fn ac_first(
    bits: &mut Bits,
    ac: &Huffman,
    block: &mut [i16],
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
            let v = bits.receive_extend(s)?;
            block[NATURAL[k.min(79)]] = (v << al) as i16;
        } else if r == 15 {
            k += 15;
        } else {
            *eobrun = 1 << r;
            if r > 0 {
                *eobrun += bits.bits(r)?;
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
    block: &mut [i16],
    ss: usize,
    se: usize,
    al: u32,
    eobrun: &mut u32,
) -> Result<(), KernelError> {
    let p1 = (1i32 << al) as i16;
    let m1 = ((-1i32) << al) as i16;
    let refine = |bits: &mut Bits, coef: &mut i16| -> Result<(), KernelError> {
        if bits.bit()? && (*coef & p1) == 0 {
            *coef = if *coef >= 0 {
                coef.wrapping_add(p1)
            } else {
                coef.wrapping_add(m1)
            };
        }
        Ok(())
    };
    let mut k = ss;
    if *eobrun == 0 {
        while k <= se {
            let rs = bits.huff(ac)?;
            let (mut r, s) = (i32::from(rs >> 4), rs & 15);
            let mut value = 0i16;
            if s != 0 {
                // s is 1 in a valid file (libjpeg warns otherwise and goes on).
                value = if bits.bit()? { p1 } else { m1 };
            } else if r != 15 {
                *eobrun = 1 << r;
                if r > 0 {
                    *eobrun += bits.bits(r as u32)?;
                }
                break;
            }
            while k <= se {
                let pos = NATURAL[k];
                if block[pos] != 0 {
                    refine(bits, &mut block[pos])?;
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
                refine(bits, &mut block[pos])?;
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

/// A component's samples, all blocks (whole MCUs): `bw * 8` wide, `bh * 8` high.
fn idct_plane(c: &Component) -> Vec<u8> {
    let stride = c.bw * 8;
    let mut plane = vec![0u8; stride * c.bh * 8];
    let quant = c.quant.unwrap_or([0; 64]);
    let mut out = [0u8; 64];
    for by in 0..c.bh {
        for bx in 0..c.bw {
            let at = (by * c.bw + bx) * 64;
            idct_islow(&c.coefs[at..at + 64], &quant, &mut out);
            for row in 0..8 {
                let o = (by * 8 + row) * stride + bx * 8;
                plane[o..o + 8].copy_from_slice(&out[row * 8..row * 8 + 8]);
            }
        }
    }
    plane
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
/// on the platforms TF and PIL ship for; the workspace between passes is `int`).
fn idct_islow(coefs: &[i16], quant: &[u16; 64], out: &mut [u8; 64]) {
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

/// A component's plane brought to the image's full size (`w * h`), as jdsample.c does.
fn upsample(plane: &[u8], c: &Component, hx: usize, vx: usize, w: usize, h: usize) -> Vec<u8> {
    let stride = c.bw * 8;
    let row = |r: usize| &plane[r * stride..(r + 1) * stride];
    let mut out = vec![0u8; w * h];
    // libjpeg's context rows: above the first row is the first; below the last row with
    // image is that row.
    let above = |r: usize| r.saturating_sub(1);
    let below = |r: usize| (r + 1).min(c.dh - 1);
    let dw = c.dw;
    let mut line = vec![0u8; stride * hx];
    for y in 0..h {
        let r = y / vx;
        let dst = &mut line[..];
        match (hx, vx) {
            (1, 1) => dst[..stride].copy_from_slice(row(r)),
            (2, 1) if dw > 2 => h2v1_fancy(row(r), dw, dst),
            (1, 2) => {
                let (near, far, bias) = if y % 2 == 0 {
                    (row(r), row(above(r)), 1)
                } else {
                    (row(r), row(below(r)), 2)
                };
                for x in 0..dw {
                    dst[x] = ((3 * u32::from(near[x]) + u32::from(far[x]) + bias) >> 2) as u8;
                }
            }
            (2, 2) if dw > 2 => {
                let far = if y % 2 == 0 {
                    row(above(r))
                } else {
                    row(below(r))
                };
                h2v2_fancy(row(r), far, dw, dst);
            }
            _ => {
                for (x, d) in dst.iter_mut().enumerate() {
                    *d = row(r)[x / hx];
                }
            }
        }
        out[y * w..(y + 1) * w].copy_from_slice(&line[..w]);
    }
    out
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
/// it, `far` the next nearest (`dw > 2`).
fn h2v2_fancy(near: &[u8], far: &[u8], dw: usize, out: &mut [u8]) {
    let sum = |i: usize| u32::from(near[i]) * 3 + u32::from(far[i]);
    let mut this = sum(0);
    let mut last;
    out[0] = ((this * 4 + 8) >> 4) as u8;
    let mut next = sum(1);
    out[1] = ((this * 3 + next + 7) >> 4) as u8;
    for i in 1..dw - 1 {
        last = this;
        this = next;
        next = sum(i + 1);
        out[2 * i] = ((this * 3 + last + 8) >> 4) as u8;
        out[2 * i + 1] = ((this * 3 + next + 7) >> 4) as u8;
    }
    last = this;
    this = next;
    let l = dw - 1;
    out[2 * l] = ((this * 3 + last + 8) >> 4) as u8;
    out[2 * l + 1] = ((this * 4 + 7) >> 4) as u8;
}

/// jdcolor.c's ycc_rgb_convert with its tables (16-bit fixed point, rounded).
fn ycc_to_rgb(y: &[u8], cb: &[u8], cr: &[u8]) -> Vec<u8> {
    const HALF: i32 = 1 << 15;
    let fix = |x: f64| (x * 65536.0 + 0.5) as i32;
    let mut cr_r = [0i32; 256];
    let mut cb_b = [0i32; 256];
    let mut cr_g = [0i32; 256];
    let mut cb_g = [0i32; 256];
    for i in 0..256 {
        let x = i as i32 - 128;
        cr_r[i] = (fix(1.40200) * x + HALF) >> 16;
        cb_b[i] = (fix(1.77200) * x + HALF) >> 16;
        cr_g[i] = -fix(0.71414) * x;
        cb_g[i] = -fix(0.34414) * x + HALF;
    }
    let clamp = |v: i32| v.clamp(0, 255) as u8;
    let mut out = Vec::with_capacity(y.len() * 3);
    for i in 0..y.len() {
        let (yy, b, r) = (i32::from(y[i]), usize::from(cb[i]), usize::from(cr[i]));
        out.push(clamp(yy + cr_r[r]));
        out.push(clamp(yy + ((cb_g[b] + cr_g[r]) >> 16)));
        out.push(clamp(yy + cb_b[b]));
    }
    out
}
