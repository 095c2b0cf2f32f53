//! `riskstream replay --output FILE.parquet`: the Parquet file holds the
//! same records as the JSON Lines output, column by column, and the same
//! input gives the same bytes.

// Tests panic on purpose when something is wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use arrow_array::cast::AsArray;
use arrow_array::types::{TimestampMillisecondType, UInt8Type, UInt64Type};
use arrow_array::{Array, RecordBatch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use riskstream::parquet_out::{ROWS_PER_ROW_GROUP, record_schema};
use riskstream_schemas::Timestamp;
use serde_json::Value;

fn dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("replay_parquet_{name}"));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn small_events() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/small/events.jsonl")
}

/// Replays the small fixture world to `output` with the binary.
fn replay_to(output: &Path) {
    let run = Command::new(env!("CARGO_BIN_EXE_riskstream"))
        .arg("replay")
        .arg("--input")
        .arg(small_events())
        .arg("--output")
        .arg(output)
        .output()
        .expect("riskstream runs");
    assert!(
        run.status.success(),
        "replay to {} failed: {}",
        output.display(),
        String::from_utf8_lossy(&run.stderr)
    );
}

fn read_parquet(path: &Path) -> (Vec<RecordBatch>, usize) {
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).expect("open parquet"))
        .expect("a parquet file");
    let row_groups = builder.metadata().num_row_groups();
    let batches = builder
        .build()
        .expect("reader")
        .collect::<Result<Vec<_>, _>>()
        .expect("batches");
    (batches, row_groups)
}

fn millis(v: &Value) -> i64 {
    Timestamp::parse_rfc3339(v.as_str().expect("a time string"))
        .expect("RFC 3339")
        .millis()
}

/// Row `row` of `batch` against the JSON record, column by column.
fn assert_row_matches(batch: &RecordBatch, row: usize, record: &Value, line: usize) {
    let text = |name: &str| -> Option<String> {
        let col = batch
            .column_by_name(name)
            .unwrap_or_else(|| panic!("column {name}"))
            .as_string::<i32>();
        col.is_valid(row).then(|| col.value(row).to_owned())
    };
    let json_text = |v: &Value| v.as_str().map(str::to_owned);
    let ctx = |name: &str| format!("line {line}, column {name}");

    for (column, value) in [
        ("tenant", &record["tenant"]),
        ("principal_id", &record["principal"]["id"]),
        ("principal_type", &record["principal"]["type"]),
        ("session", &record["session"]),
        ("trigger_event_id", &record["trigger"]["event_id"]),
        ("trigger_kind", &record["trigger"]["kind"]),
        ("trigger_name", &record["trigger"]["name"]),
        ("trigger_sensitivity", &record["trigger"]["sensitivity"]),
        ("level", &record["level"]),
        ("decision", &record["decision"]),
        ("step_up_method", &record["step_up"]["method"]),
        ("decision_low", &record["decisions"]["low"]),
        ("decision_medium", &record["decisions"]["medium"]),
        ("decision_high", &record["decisions"]["high"]),
        ("decision_critical", &record["decisions"]["critical"]),
        ("policy", &record["model"]["policy"]),
        ("model_version", &record["model"]["version"]),
    ] {
        assert_eq!(text(column), json_text(value), "{}", ctx(column));
    }

    let seq = batch
        .column_by_name("seq")
        .unwrap()
        .as_primitive::<UInt64Type>();
    assert_eq!(
        Some(seq.value(row)),
        record["seq"].as_u64(),
        "{}",
        ctx("seq")
    );
    let score = batch
        .column_by_name("score")
        .unwrap()
        .as_primitive::<UInt8Type>();
    assert_eq!(
        Some(u64::from(score.value(row))),
        record["score"].as_u64(),
        "{}",
        ctx("score")
    );
    let aal = batch
        .column_by_name("aal")
        .unwrap()
        .as_primitive::<UInt8Type>();
    assert_eq!(
        Some(u64::from(aal.value(row))),
        record["assurance"]["aal"].as_u64(),
        "{}",
        ctx("aal")
    );

    let time = batch
        .column_by_name("time")
        .unwrap()
        .as_primitive::<TimestampMillisecondType>();
    assert_eq!(time.value(row), millis(&record["time"]), "{}", ctx("time"));
    let strong = batch
        .column_by_name("last_strong_auth")
        .unwrap()
        .as_primitive::<TimestampMillisecondType>();
    let expected_strong = match &record["assurance"]["last_strong_auth"] {
        Value::Null => None,
        v => Some(millis(v)),
    };
    assert_eq!(
        strong.is_valid(row).then(|| strong.value(row)),
        expected_strong,
        "{}",
        ctx("last_strong_auth")
    );

    let signals = record["signals"].as_array().expect("signals array");
    let codes = batch
        .column_by_name("signal_codes")
        .unwrap()
        .as_list::<i32>()
        .value(row);
    let codes: Vec<&str> = codes.as_string::<i32>().iter().flatten().collect();
    let expected_codes: Vec<&str> = signals
        .iter()
        .map(|s| s["code"].as_str().expect("a code"))
        .collect();
    assert_eq!(codes, expected_codes, "{}", ctx("signal_codes"));
    let signals_json: Value =
        serde_json::from_str(&text("signals_json").expect("signals_json is never null"))
            .expect("signals_json is JSON");
    assert_eq!(&signals_json, &record["signals"], "{}", ctx("signals_json"));
}

#[test]
fn parquet_holds_the_json_lines_records_and_is_deterministic() {
    let d = dir("small");
    let (json, first, second) = (
        d.join("records.jsonl"),
        d.join("records.parquet"),
        d.join("again.parquet"),
    );
    replay_to(&json);
    replay_to(&first);
    replay_to(&second);

    let records: Vec<Value> = std::fs::read_to_string(&json)
        .expect("read JSON Lines")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON record"))
        .collect();
    assert_eq!(records.len(), 7_561, "the small world has 7,561 events");

    let (batches, row_groups) = read_parquet(&first);
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(rows, records.len(), "Parquet rows vs JSON Lines records");
    assert_eq!(row_groups, records.len().div_ceil(ROWS_PER_ROW_GROUP));
    for batch in &batches {
        assert_eq!(batch.schema().fields(), record_schema().fields());
    }

    // Every row, which covers the first, the last, rows with signals and
    // rows with a step-up; check that those kinds are really there.
    let with_signals = records
        .iter()
        .filter(|r| r["signals"].as_array().is_some_and(|s| !s.is_empty()))
        .count();
    let with_step_up = records.iter().filter(|r| !r["step_up"].is_null()).count();
    let with_strong_auth = records
        .iter()
        .filter(|r| !r["assurance"]["last_strong_auth"].is_null())
        .count();
    assert!(with_signals > 0 && with_step_up > 0 && with_strong_auth > 0);
    let mut line = 0;
    for batch in &batches {
        for row in 0..batch.num_rows() {
            assert_row_matches(batch, row, &records[line], line + 1);
            line += 1;
        }
    }

    let (a, b) = (
        std::fs::read(&first).unwrap(),
        std::fs::read(&second).unwrap(),
    );
    assert!(a == b, "two replays of the same input differ in bytes");
}

#[test]
fn other_extensions_stay_json_lines() {
    let d = dir("extensions");
    let out = d.join("records.txt");
    replay_to(&out);
    let expected =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/small/records.jsonl");
    assert!(
        std::fs::read(&out).unwrap() == std::fs::read(expected).unwrap(),
        "a .txt output is the JSON Lines of fixtures/small/records.jsonl"
    );
}
