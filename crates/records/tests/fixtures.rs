//! The fixtures TensorFlow and pyarrow wrote (`tests/records/gen.py`) read by pipec-records
//! and compared with what TF's reader and parser and pyarrow gave for them; and the files
//! pipec-records writes, compared byte for byte with the committed ones that the generator
//! script's `--check` reads back with TF and pyarrow.

use bytes::Bytes;
use pipec_records::example::{FeatureKind, FeatureSpec, Flat, parse_batch, parse_example};
use pipec_records::parquet::{ColumnInfo, ParquetRows, ParquetWriter, read_info};
use pipec_records::{Compression, RecordError, TfRecordReader, TfRecordWriter};
use pipec_tensor::{DType, Tensor};
use serde_json::{Value as Json, json};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/records")
}

fn expect(name: &str) -> Json {
    let text = std::fs::read_to_string(root().join("expect").join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A value as the generator's JSON: dtype, shape and flat values (strings as byte lists).
fn json_of(v: &Tensor) -> Json {
    let values: Vec<Json> = match v {
        Tensor::Str(a) => a.iter().map(|b| json!(b.to_vec())).collect(),
        Tensor::Bool(a) => a.iter().map(|x| json!(x)).collect(),
        Tensor::I8(a) => a.iter().map(|x| json!(x)).collect(),
        Tensor::U8(a) => a.iter().map(|x| json!(x)).collect(),
        Tensor::I16(a) => a.iter().map(|x| json!(x)).collect(),
        Tensor::U16(a) => a.iter().map(|x| json!(x)).collect(),
        Tensor::I32(a) => a.iter().map(|x| json!(x)).collect(),
        Tensor::U32(a) => a.iter().map(|x| json!(x)).collect(),
        Tensor::I64(a) => a.iter().map(|x| json!(x)).collect(),
        Tensor::U64(a) => a.iter().map(|x| json!(x)).collect(),
        Tensor::F16(a) => a.iter().map(|x| json!(f64::from(x.to_f32()))).collect(),
        Tensor::F32(a) => a.iter().map(|x| json!(f64::from(*x))).collect(),
        Tensor::F64(a) => a.iter().map(|x| json!(x)).collect(),
        other => panic!("unexpected dtype {:?}", other.dtype()),
    };
    let dtype = match v.dtype().name() {
        "str" => "str".to_string(),
        d => numpy_name(d).to_string(),
    };
    json!({"dtype": dtype, "shape": v.shape(), "values": values})
}

/// Floats of a 32- or 16-bit column rounded to f32: the JSON parser is not correctly
/// rounded in the last f64 bit, the stored values are.
fn norm(mut j: Json) -> Json {
    if matches!(j["dtype"].as_str(), Some("float32" | "float16")) {
        for x in j["values"].as_array_mut().unwrap() {
            *x = json!(f64::from(x.as_f64().unwrap() as f32));
        }
    }
    j
}

fn numpy_name(d: &str) -> &str {
    match d {
        "i8" => "int8",
        "i16" => "int16",
        "i32" => "int32",
        "i64" => "int64",
        "u8" => "uint8",
        "u16" => "uint16",
        "u32" => "uint32",
        "u64" => "uint64",
        "f16" => "float16",
        "f32" => "float32",
        "f64" => "float64",
        other => other,
    }
}

fn read_records(name: &str, c: Compression) -> Result<Vec<Bytes>, RecordError> {
    TfRecordReader::open(&root().join("data").join(name), c)?.collect()
}

fn specs() -> Vec<FeatureSpec> {
    let s = |name: &str, kind, shape: &[Option<usize>], default: Option<Flat>| FeatureSpec {
        name: name.into(),
        kind,
        shape: shape.to_vec(),
        default,
    };
    vec![
        s("image", FeatureKind::Bytes, &[], None),
        s("label", FeatureKind::Int64, &[], None),
        s("bbox", FeatureKind::Float, &[Some(2), Some(2)], None),
        s("tokens", FeatureKind::Int64, &[None], None),
        s("words", FeatureKind::Bytes, &[None], None),
        s(
            "weight",
            FeatureKind::Float,
            &[],
            Some(Flat::Float(vec![0.5])),
        ),
    ]
}

#[test]
fn tf_written_records_read_in_every_compression() {
    let want = expect("tfrecord.json");
    let want: Vec<Vec<u8>> = serde_json::from_value(want["records"].clone()).unwrap();
    for (name, c) in [
        ("plain.tfrecord", Compression::None),
        ("gzip.tfrecord.gz", Compression::Gzip),
        ("zlib.tfrecord", Compression::Zlib),
    ] {
        let got: Vec<Vec<u8>> = read_records(name, c)
            .unwrap()
            .iter()
            .map(|b| b.to_vec())
            .collect();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn examples_parse_as_tf_parses_them() {
    let want = expect("tfrecord.json");
    let records = read_records("plain.tfrecord", Compression::None).unwrap();
    let specs = specs();
    for (i, r) in records.iter().enumerate() {
        let got = parse_example(r.clone(), &specs).unwrap();
        for (s, v) in specs.iter().zip(&got) {
            assert_eq!(
                norm(json_of(v)),
                norm(want["single"][i][&s.name].clone()),
                "record {i} feature {}",
                s.name
            );
        }
    }
    let got = parse_batch(&records, &specs).unwrap();
    for (s, v) in specs.iter().zip(&got) {
        assert_eq!(
            norm(json_of(v)),
            norm(want["batched"][&s.name].clone()),
            "batched feature {}",
            s.name
        );
    }
    // Without a default, record 1 (which has no `weight`) fails, as it does in TF.
    let mut no_default = specs.clone();
    no_default[5].default = None;
    assert!(parse_example(records[0].clone(), &no_default).is_ok());
    let e = parse_example(records[1].clone(), &no_default).unwrap_err();
    assert!(
        e.to_string().starts_with("feature `weight`: missing"),
        "{e}"
    );
    let (i, _) = parse_batch(&records, &no_default).unwrap_err();
    assert_eq!(i, 1);
}

#[test]
fn damaged_records_name_file_and_index() {
    let e = read_records("bad_crc.tfrecord", Compression::None).unwrap_err();
    let msg = e.to_string();
    assert_eq!(e.record(), Some(2), "{msg}");
    assert!(
        msg.contains("bad_crc.tfrecord`, record 2: the data CRC does not match"),
        "{msg}"
    );
    let mut r =
        TfRecordReader::open(&root().join("data/truncated.tfrecord"), Compression::None).unwrap();
    for _ in 0..3 {
        r.next_record().unwrap().unwrap();
    }
    let e = r.next_record().unwrap_err();
    assert_eq!(e.record(), Some(3));
    assert!(
        e.to_string().contains("ends inside the record's data"),
        "{e}"
    );
    // The plain file read as GZIP is a damaged stream, not a panic or a silent end.
    let e = read_records("plain.tfrecord", Compression::Gzip).unwrap_err();
    assert!(e.to_string().contains("record 0"), "{e}");
}

fn read_table(
    name: &str,
    cols: Option<&[String]>,
    step: usize,
) -> Result<Vec<Vec<Tensor>>, RecordError> {
    let mut r = ParquetRows::open(&root().join("data").join(name), cols)?;
    let mut out = Vec::new();
    while let Some(rows) = r.next_rows(step)? {
        out.push(rows);
    }
    Ok(out)
}

/// Stacks the per-step column slices of one column into one JSON value.
fn column_json(batches: &[Vec<Tensor>], k: usize) -> Json {
    let mut values = Vec::new();
    let mut rows = 0u64;
    let mut first = json!(null);
    for b in batches {
        let j = json_of(&b[k]);
        rows += j["shape"][0].as_u64().unwrap();
        values.extend(j["values"].as_array().unwrap().clone());
        first = j;
    }
    let mut shape = first["shape"].as_array().unwrap().clone();
    shape[0] = json!(rows);
    json!({"dtype": first["dtype"], "shape": shape, "values": values})
}

#[test]
fn every_column_type_reads_as_pyarrow_wrote_it() {
    let want = expect("types.json");
    let info = read_info(&root().join("data/types.parquet")).unwrap();
    assert_eq!(info.rows, 10);
    let names: Vec<String> = info
        .columns
        .iter()
        .map(|c| c.as_ref().unwrap().name.clone())
        .collect();
    let vec_col = info
        .columns
        .iter()
        .flatten()
        .find(|c| c.name == "mat")
        .unwrap();
    assert_eq!(
        (vec_col.elem, vec_col.shape.clone()),
        ((DType::I32), vec![2, 2])
    );
    // Steps of 4 rows cross the row groups of 3.
    for step in [1, 4, 100] {
        let batches = read_table("types.parquet", None, step).unwrap();
        assert_eq!(batches.len(), 10usize.div_ceil(step));
        for (k, name) in names.iter().enumerate() {
            assert_eq!(
                norm(column_json(&batches, k)),
                norm(want[name].clone()),
                "column {name}, step {step}"
            );
        }
    }
    let picked = vec!["vec".to_string(), "i8".to_string()];
    let batches = read_table("types.parquet", Some(&picked), 3).unwrap();
    assert_eq!(norm(column_json(&batches, 0)), norm(want["vec"].clone()));
    assert_eq!(column_json(&batches, 1), want["i8"]);
}

#[test]
fn nulls_and_unsupported_columns_are_errors_naming_them() {
    let e = read_table("nulls.parquet", None, 1).unwrap_err();
    assert!(
        e.to_string()
            .ends_with("nulls.parquet`, row 2, column `v`: the value is null"),
        "{e}"
    );
    let e = read_table("nulls.parquet", Some(&["b".into(), "a".into()]), 2).unwrap_err();
    assert!(
        e.to_string()
            .ends_with("row 4, column `a`: the value is null"),
        "{e}"
    );
    assert_eq!(
        read_table("nulls.parquet", Some(&["b".into()]), 2)
            .unwrap()
            .len(),
        3
    );

    let ok = read_table("unsupported.parquet", Some(&["ok".into()]), 8).unwrap();
    assert_eq!(json_of(&ok[0][0])["values"], json!([1, 2]));
    for (col, ty) in [("when", "Timestamp("), ("ragged", "List(")] {
        let e = read_table("unsupported.parquet", Some(&[col.into()]), 8).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, RecordError::UnsupportedColumn { .. }), "{msg}");
        assert!(
            msg.contains(&format!("column `{col}` has type {ty}")),
            "{msg}"
        );
    }
    let e = read_table("zstd.parquet", None, 8).unwrap_err();
    assert!(e.to_string().to_lowercase().contains("zstd"), "{e}");
}

fn arr<T: Clone>(shape: &[usize], v: Vec<T>) -> ndarray::ArcArray<T, ndarray::IxDyn> {
    ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(shape), v)
        .unwrap()
        .into()
}

/// The rows the round-trip files hold (also in `written/expect.json` for `gen.py --check`).
fn rows() -> (Vec<ColumnInfo>, Vec<Tensor>) {
    let cols = vec![
        ColumnInfo {
            name: "id".into(),
            elem: (DType::I64),
            shape: vec![],
        },
        ColumnInfo {
            name: "x".into(),
            elem: (DType::F32),
            shape: vec![2],
        },
        ColumnInfo {
            name: "name".into(),
            elem: DType::Str,
            shape: vec![],
        },
        ColumnInfo {
            name: "ok".into(),
            elem: (DType::Bool),
            shape: vec![],
        },
    ];
    let values = vec![
        (Tensor::I64(arr(&[3], vec![0, -1, 1 << 40]))),
        (Tensor::F32(arr(&[3, 2], vec![0.5, -1.25, 3.0e-8, 1e30, 0.0, -0.0]))),
        Tensor::Str(arr(
            &[3],
            vec![
                Bytes::from_static(b"a"),
                Bytes::new(),
                Bytes::from_static(b"\xffz"),
            ],
        )),
        (Tensor::Bool(arr(&[3], vec![true, false, true]))),
    ];
    (cols, values)
}

fn expect_json(values: &[Tensor], cols: &[ColumnInfo]) -> Json {
    let mut tf_rows = Vec::new();
    for r in 0..3 {
        let mut row = serde_json::Map::new();
        for (c, v) in cols.iter().zip(values) {
            let j = json_of(v);
            let per = j["values"].as_array().unwrap().len() / 3;
            let vals: Vec<Json> = j["values"].as_array().unwrap()[r * per..(r + 1) * per]
                .iter()
                .map(|x| {
                    if c.elem == (DType::Bool) {
                        json!(x.as_bool().unwrap() as i64)
                    } else {
                        x.clone()
                    }
                })
                .collect();
            let kind = match c.elem {
                DType::Str => "bytes_list",
                DType::F32 => "float_list",
                _ => "int64_list",
            };
            row.insert(c.name.clone(), json!({"kind": kind, "values": vals}));
        }
        tf_rows.push(Json::Object(row));
    }
    let mut pq = serde_json::Map::new();
    for (c, v) in cols.iter().zip(values) {
        let j = json_of(v);
        let flat = j["values"].as_array().unwrap().clone();
        let per = flat.len() / 3;
        let col: Vec<Json> = (0..3)
            .map(|r| {
                if c.shape.is_empty() {
                    flat[r].clone()
                } else {
                    json!(flat[r * per..(r + 1) * per])
                }
            })
            .collect();
        pq.insert(c.name.clone(), json!(col));
    }
    json!({"tfrecord": tf_rows, "parquet": pq})
}

fn example_of(values: &[Tensor], cols: &[ColumnInfo], r: usize) -> Vec<u8> {
    let feats = cols.iter().zip(values).map(|(c, v)| {
        let flat = match v {
            Tensor::Str(a) => Flat::Bytes(a.outer_iter().nth(r).unwrap().iter().cloned().collect()),
            Tensor::F32(a) => Flat::Float(a.outer_iter().nth(r).unwrap().iter().copied().collect()),
            Tensor::I64(a) => Flat::Int64(a.outer_iter().nth(r).unwrap().iter().copied().collect()),
            Tensor::Bool(a) => Flat::Int64(
                a.outer_iter()
                    .nth(r)
                    .unwrap()
                    .iter()
                    .map(|b| *b as i64)
                    .collect(),
            ),
            _ => unreachable!(),
        };
        (c.name.clone(), flat)
    });
    pipec_records::example::encode_example(feats)
}

#[test]
fn written_files_are_the_committed_ones_that_tf_and_pyarrow_read() {
    let (cols, values) = rows();
    let mut files: Vec<(&str, Vec<u8>)> = Vec::new();
    for (name, c) in [
        ("rows.tfrecord", Compression::None),
        ("rows.tfrecord.gz", Compression::Gzip),
    ] {
        let mut w = TfRecordWriter::new(Vec::new(), c);
        for r in 0..3 {
            w.write_record(&example_of(&values, &cols, r)).unwrap();
        }
        files.push((name, w.finish().unwrap()));
    }
    let mut w = ParquetWriter::new(Vec::new(), cols.clone()).unwrap();
    w.write_rows(&values).unwrap();
    files.push(("rows.parquet", w.finish().unwrap()));
    let mut ex = serde_json::to_string(&expect_json(&values, &cols)).unwrap();
    ex.push('\n');
    files.push(("expect.json", ex.into_bytes()));
    let dir = root().join("written");
    for (name, bytes) in &files {
        let path = dir.join(name);
        if std::env::var_os("PIPEC_BLESS_RECORDS").is_some() {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, bytes).unwrap();
        }
        assert_eq!(
            &std::fs::read(&path).unwrap(),
            bytes,
            "{name} differs (PIPEC_BLESS_RECORDS=1 rewrites; then run gen.py --check)"
        );
    }
    // And pipec reads them back.
    let back: Vec<Bytes> = TfRecordReader::new(
        std::io::Cursor::new(files[1].1.clone()),
        Compression::Gzip,
        "g".into(),
    )
    .collect::<Result<_, _>>()
    .unwrap();
    assert_eq!(back.len(), 3);
    let specs = vec![
        FeatureSpec {
            name: "x".into(),
            kind: FeatureKind::Float,
            shape: vec![Some(2)],
            default: None,
        },
        FeatureSpec {
            name: "name".into(),
            kind: FeatureKind::Bytes,
            shape: vec![],
            default: None,
        },
    ];
    let parsed = parse_batch(&back, &specs).unwrap();
    assert_eq!(parsed[0], values[1]);
    assert_eq!(parsed[1], values[2]);
    let mut r = ParquetRows::from_bytes(Bytes::from(files[2].1.clone()), "p".into(), None).unwrap();
    assert_eq!(r.columns(), &cols[..]);
    assert_eq!(r.next_rows(10).unwrap().unwrap(), values);
}
