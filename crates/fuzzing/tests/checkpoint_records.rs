//! Checkpoints over the record sources (SPEC §14 + §15): the generated pipelines of the
//! checkpoint property, their source replaced by `read_tfrecord` (plain and GZIP, several
//! files) or `read_parquet` (several files), cut at random points and resumed at another
//! `--threads` and pull pattern, give exactly the elements of one uninterrupted run; and
//! states holding any record position resume or fail with a coded error, never a panic.

use pipec::Tensor;
use pipec::records::example::{Flat, encode_example};
use pipec::records::parquet::{ColumnInfo, ParquetWriter};
use pipec::records::{Compression, DType, TfRecordWriter};
use pipec_fuzzing::compile_text as compiled;
use proptest::prelude::*;
use std::path::PathBuf;
use std::sync::OnceLock;

/// Record files holding the integers 0..N (as an `int64` feature / column `v`), split over
/// files of uneven sizes; written once per test process.
fn fixtures() -> &'static [String; 3] {
    static DIR: OnceLock<[String; 3]> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("pipec-ckpt-rec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let tf = |name: &str, c: Compression, range: std::ops::Range<i64>| -> PathBuf {
            let p = dir.join(name);
            let mut w = TfRecordWriter::create(&p, c).expect("create");
            for i in range {
                let ex = encode_example([("v".to_string(), Flat::Int64(vec![i * 5 % 13]))]);
                w.write_record(&ex).expect("write");
            }
            w.finish().expect("finish");
            p
        };
        let pq = |name: &str, range: std::ops::Range<i64>| -> PathBuf {
            let p = dir.join(name);
            let cols = vec![ColumnInfo {
                name: "v".into(),
                elem: DType::I64,
                shape: Vec::new(),
            }];
            let f = std::fs::File::create(&p).expect("create");
            let mut w = ParquetWriter::new(f, cols).expect("writer");
            let v: Vec<i64> = range.map(|i| i * 5 % 13).collect();
            w.write_rows(&[Tensor::from_vec(&[v.len()], v).expect("tensor")])
                .expect("write");
            w.finish().expect("finish");
            p
        };
        let list = |ps: &[PathBuf]| {
            ps.iter()
                .map(|p| format!("{:?}", p.display().to_string()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        [
            format!(
                "read_tfrecord([{}]).map(|r| parse_example(r, {{\"v\": i64}})).map(|e| e[\"v\"])",
                list(&[
                    tf("a.tfrecord", Compression::None, 0..9),
                    tf("b.tfrecord", Compression::None, 9..10),
                    tf("c.tfrecord", Compression::None, 10..31),
                ])
            ),
            format!(
                "read_tfrecord([{}], compression: \"GZIP\").map(|r| parse_example(r, {{\"v\": i64}})).map(|e| e[\"v\"])",
                list(&[
                    tf("a.tfrecord.gz", Compression::Gzip, 0..14),
                    tf("b.tfrecord.gz", Compression::Gzip, 14..27),
                ])
            ),
            format!(
                "read_parquet([{}]).map(|e| e[\"v\"])",
                list(&[pq("a.parquet", 0..12), pq("b.parquet", 12..13), pq("c.parquet", 13..35)])
            ),
        ]
    })
}

/// The generated program with its source (the first line) replaced by record source `k`.
fn over_records(program: &[u8], k: usize) -> String {
    let text = pipec_fuzzing::checkpoint_program_over_stream(program);
    let body = text.strip_prefix("pipeline main = ").unwrap_or(&text);
    let rest = body.find('\n').map_or("", |i| &body[i..]);
    format!("pipeline main = {}{rest}", fixtures()[k])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn cut_and_resumed_record_pipelines_equal_one_run(
        program in proptest::collection::vec(any::<u8>(), 0..40),
        source in 0usize..3,
        cut in 0usize..40,
        threads in (1usize..4, 1usize..4),
        o0 in any::<bool>(),
        sizes in prop_oneof![Just([1, 1, 1]), Just([7, 3, 64]), Just([64, 1, 5])],
    ) {
        let text = over_records(&program, source);
        let verdict = pipec_fuzzing::check_generated_resume(&text, o0, cut, threads, &sizes);
        prop_assert!(verdict.is_ok(), "{}", verdict.unwrap_err());
    }
}

/// Every cut of a plain pipeline over each record source, so each file boundary is a cut.
#[test]
fn every_cut_of_each_record_source_resumes_exactly() {
    for source in fixtures() {
        let text = format!("pipeline main = {source}.batch(2).prefetch(1).unbatch()\n");
        let c = compiled(&text, 2).expect("compiles");
        for cut in 0..36 {
            for sizes in [[1, 1, 1], [7, 3, 64]] {
                pipec_fuzzing::check_resume(&c, cut, (2, 1), &sizes);
            }
        }
    }
}

/// A state whose record position is anything at all: it resumes (to the end, or to an
/// error) or is refused with a code; never a panic, never a hang.
#[test]
fn any_record_position_in_a_state_resumes_or_fails_with_a_code() {
    for source in fixtures() {
        let text = format!("pipeline main = {source}\n");
        let c = compiled(&text, 2).expect("compiles");
        let opts = pipec::RunOptions {
            checkpoints: true,
            ..Default::default()
        };
        let mut s = c.run(&opts).expect("opens");
        let _ = s.next();
        let state = c.save_state_within_block(&mut s, 0).expect("saves");
        // The state is MAGIC, a u32 version, a u64 header length, the JSON header, blobs.
        let at_json = b"pipec-state\n".len() + 4 + 8;
        let len_bytes: [u8; 8] = state[at_json - 8..at_json].try_into().expect("8 bytes");
        let len = u64::from_le_bytes(len_bytes) as usize;
        let json = String::from_utf8(state[at_json..at_json + len].to_vec()).expect("JSON");
        let pos = json
            .find("\"file\":")
            .expect("a record position in the state");
        let end = pos + json[pos..].find('}').expect("closing brace");
        let unit = if json[pos..end].contains("\"record\"") {
            "record"
        } else {
            "row"
        };
        for (file, at) in [
            (0u64, 0u64),
            (1, 0),
            (1, 1),
            (2, 5),
            (3, 0),
            (3, 1),
            (9, 9),
            (0, 100),
            (u64::MAX, u64::MAX),
        ] {
            // The source's position rewritten in place, the header length re-encoded.
            let new = format!(
                "{}\"file\":{file},\"{unit}\":{at}{}",
                &json[..pos],
                &json[end..]
            );
            let mut bytes = state[..at_json - 8].to_vec();
            bytes.extend_from_slice(&(new.len() as u64).to_le_bytes());
            bytes.extend_from_slice(new.as_bytes());
            bytes.extend_from_slice(&state[at_json + len..]);
            match c.resume(&opts, &bytes) {
                Err(d) => assert!(
                    matches!(d.code, pipec::Code::BadStateFile | pipec::Code::BadRecord),
                    "{file}/{at}: {d:?}"
                ),
                Ok(mut r) => {
                    for e in r.by_ref() {
                        if let Err(d) = e {
                            assert_eq!(d.code, pipec::Code::BadRecord, "{file}/{at}: {d:?}");
                            break;
                        }
                    }
                }
            }
        }
    }
}
