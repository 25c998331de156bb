//! Text inputs for the line and CSV readers (issue 20, "Parallel sources"): W9, a ~100 MB
//! text file for `read_lines`, and W10, a numeric CSV file for `read_csv`. They are not
//! rows of the benchmark table (no reference loop); they exist so the readers' whole
//! process and serial share can be measured with `pipec --stats` (docs/performance.md).

use std::io::Write;
use std::path::Path;

/// Lines of W9 at full size (about 100 MB of text).
pub const W9_LINES: usize = 1_600_000;
/// Rows of W10 at full size (8 `f32` cells each, about 60 MB).
pub const W10_ROWS: usize = 1_000_000;

/// A deterministic pseudo-random word stream: lines differ in length and content, as text does.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const WORDS: [&str; 16] = [
    "the", "pipeline", "reads", "lines", "of", "text", "tensor", "record", "parallel", "source",
    "block", "lane", "consumer", "thread", "batch", "element",
];

/// Writes `data/w9.txt` and `data/w10.csv` unless a marker says they are current; returns
/// what it wrote.
pub fn generate_text(data: &Path, lines: usize, rows: usize) -> std::io::Result<Vec<String>> {
    let mut written = Vec::new();
    let w9 = data.join("w9.txt");
    let marker = data.join("w9.complete");
    let want = format!("v1 {lines}\n");
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(want.as_str()) {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&w9)?);
        for i in 0..lines as u64 {
            let h = mix(i);
            let n = 4 + (h % 14) as usize;
            for k in 0..n {
                let w = WORDS[(mix(h ^ k as u64) % 16) as usize];
                if k > 0 {
                    f.write_all(b" ")?;
                }
                f.write_all(w.as_bytes())?;
            }
            // Some Windows line endings, as real files have.
            f.write_all(if h.is_multiple_of(7) { b"\r\n" } else { b"\n" })?;
        }
        f.flush()?;
        std::fs::write(&marker, want)?;
        written.push(w9.display().to_string());
    }
    let w10 = data.join("w10.csv");
    let marker = data.join("w10.complete");
    let want = format!("v1 {rows}\n");
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(want.as_str()) {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&w10)?);
        writeln!(f, "a,b,c,d,e,f,g,h")?;
        for i in 0..rows as u64 {
            for k in 0..8u64 {
                let v = (mix(i * 8 + k) % 2_000_000) as f64 / 1000.0 - 1000.0;
                let sep = if k == 7 { "\n" } else { "," };
                write!(f, "{v}{sep}")?;
            }
        }
        f.flush()?;
        std::fs::write(&marker, want)?;
        written.push(w10.display().to_string());
    }
    Ok(written)
}
