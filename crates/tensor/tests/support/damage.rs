//! Damaged copies of good files, shared by the JPEG robustness test and the decoder check
//! (`examples/jpeg_check.rs`), so both put the decoder through the same kinds of damage.

/// `clean` damaged as a bad disk or a cut download would: one to four byte edits (a flipped
/// bit, a stray `0xFF` marker byte, a byte removed, doubled or replaced), then a quarter of
/// the time a truncation, all drawn from `next`.
pub fn damage(clean: &[u8], next: &mut impl FnMut() -> u64) -> Vec<u8> {
    let mut bytes = clean.to_vec();
    for _ in 0..1 + next() % 4 {
        if bytes.is_empty() {
            return bytes;
        }
        let at = (next() as usize) % bytes.len();
        match next() % 5 {
            0 => bytes[at] ^= 1 << (next() % 8),
            1 => bytes[at] = 0xFF,
            2 => {
                bytes.remove(at);
            }
            3 => bytes.insert(at, bytes[at]),
            _ => bytes[at] = next() as u8,
        }
    }
    if !bytes.is_empty() && next().is_multiple_of(4) {
        bytes.truncate((next() as usize) % bytes.len());
    }
    bytes
}
