//! Every line of every committed fixture (`fixtures/**/*.jsonl` at the
//! workspace root) validates against the schema its `schema` field names.
//!
//! A line that names neither `riskstream.event.v1` nor `riskstream.risk.v1`
//! is an error, except in rejects files (a file name containing `rejects`),
//! whose lines are what the pipeline refused and are skipped.

// Tests panic on purpose when something is wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use riskstream_schemas::{EVENT_SCHEMA_ID, RISK_SCHEMA_ID};
use serde_json::Value;

/// Fixtures every checkout must have, with at least one line each.
const REQUIRED: [&str; 2] = ["small/events.jsonl", "small/records.jsonl"];

/// Most failing lines listed in a failure message; the count is always given.
const MAX_LISTED: usize = 200;

/// The workspace's `fixtures/` folder.
fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("schemas/ has a parent: the workspace root")
        .join("fixtures")
}

/// Counts for one file.
#[derive(Default)]
struct FileCounts {
    events: usize,
    records: usize,
    skipped: usize,
    failed: usize,
}

/// Validates every `*.jsonl` under `root`; prints counts per file and returns
/// the failures as `file:line: error`.
fn validate_tree(root: &Path) -> Vec<String> {
    let events = common::event_validator();
    let records = common::risk_validator();
    let mut failures = Vec::new();
    let mut files = Vec::new();
    collect_jsonl(root, &mut files, &mut failures);
    files.sort();
    for path in &files {
        let shown = path
            .strip_prefix(root.parent().unwrap_or(root))
            .unwrap_or(path)
            .display()
            .to_string();
        let is_rejects = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().contains("rejects"));
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                failures.push(format!("{shown}: cannot read: {e}"));
                continue;
            }
        };
        let mut counts = FileCounts::default();
        for (index, line) in text.lines().enumerate() {
            let at = format!("{shown}:{}", index + 1);
            let value: Option<Value> = serde_json::from_str(line).ok();
            let (validator, count) = match value
                .as_ref()
                .and_then(|v| v.get("schema"))
                .and_then(Value::as_str)
            {
                Some(EVENT_SCHEMA_ID) => (&events, &mut counts.events),
                Some(RISK_SCHEMA_ID) => (&records, &mut counts.records),
                _ if is_rejects => {
                    counts.skipped += 1;
                    continue;
                }
                other => {
                    counts.failed += 1;
                    failures.push(match (&value, other) {
                        (None, _) => format!("{at}: not JSON"),
                        (Some(_), None) => format!("{at}: no `schema` string"),
                        (Some(_), Some(s)) => format!("{at}: unknown schema {s:?}"),
                    });
                    continue;
                }
            };
            let Some(value) = value else { continue };
            let errors = common::errors(validator, &value);
            if errors.is_empty() {
                *count += 1;
            } else {
                counts.failed += 1;
                failures.extend(errors.into_iter().map(|e| format!("{at}: {e}")));
            }
        }
        println!(
            "{shown}: {} events and {} records valid, {} failed, {} skipped",
            counts.events, counts.records, counts.failed, counts.skipped
        );
    }
    println!("{} fixture files", files.len());
    failures
}

/// Finds `*.jsonl` files below `dir`, recursively.
fn collect_jsonl(dir: &Path, files: &mut Vec<PathBuf>, failures: &mut Vec<String>) {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            failures.push(format!("{}: cannot list: {e}", dir.display()));
            return;
        }
    };
    for entry in entries {
        let path = match entry {
            Ok(entry) => entry.path(),
            Err(e) => {
                failures.push(format!("{}: cannot list: {e}", dir.display()));
                continue;
            }
        };
        if path.is_dir() {
            collect_jsonl(&path, files, failures);
        } else if path.extension().is_some_and(|x| x == "jsonl") {
            files.push(path);
        }
    }
}

fn assert_no_failures(failures: &[String]) {
    if failures.is_empty() {
        return;
    }
    let mut message = format!("{} fixture failures:\n", failures.len());
    for f in failures.iter().take(MAX_LISTED) {
        let _ = writeln!(message, "  {f}");
    }
    if failures.len() > MAX_LISTED {
        let _ = writeln!(message, "  ... and {} more", failures.len() - MAX_LISTED);
    }
    panic!("{message}");
}

#[test]
fn every_fixture_line_validates_and_small_fixtures_exist() {
    let root = fixtures_root();
    let mut failures = Vec::new();
    for required in REQUIRED {
        let path = root.join(required);
        match fs::read_to_string(&path) {
            Ok(text) if text.lines().any(|l| !l.trim().is_empty()) => {}
            Ok(_) => failures.push(format!("fixtures/{required}: empty")),
            Err(e) => failures.push(format!("fixtures/{required}: {e}")),
        }
    }
    failures.extend(validate_tree(&root));
    assert_no_failures(&failures);
}

/// The same check over whatever fixtures exist now, so that fixtures other
/// than `small/` are validated before `small/` is committed.
#[test]
fn committed_fixture_lines_validate() {
    let root = fixtures_root();
    if !root.is_dir() {
        println!("no fixtures folder at {}", root.display());
        return;
    }
    assert_no_failures(&validate_tree(&root));
}

/// The walker itself: it finds nested files, names file and line, skips
/// only in rejects files.
#[test]
fn walker_names_file_line_and_error() {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fixtures_validate_walker/fixtures");
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(root.join("deep")).unwrap();
    let good = r#"{"schema":"riskstream.event.v1","kind":"auth","id":"e1","time":"2026-11-30T10:15:02Z","principal":{"id":"u"},"session":"s","type":"logout"}"#;
    let bad = good.replace("logout", "login.maybe");
    fs::write(
        root.join("deep/events.jsonl"),
        format!("{good}\n{bad}\n{{\"other\":1}}\n"),
    )
    .unwrap();
    fs::write(
        root.join("deep/replay.rejects.jsonl"),
        format!("{{\"reason\":\"not_json\"}}\nnot json\n{bad}\n"),
    )
    .unwrap();
    fs::write(root.join("notes.txt"), "not a fixture").unwrap();
    let failures = validate_tree(&root);
    assert_eq!(failures.len(), 3, "{failures:#?}");
    assert!(
        failures[0].starts_with("fixtures/deep/events.jsonl:2: /type: "),
        "{}",
        failures[0]
    );
    assert_eq!(
        failures[1],
        "fixtures/deep/events.jsonl:3: no `schema` string"
    );
    assert!(
        failures[2].starts_with("fixtures/deep/replay.rejects.jsonl:3: /type: "),
        "{}",
        failures[2]
    );
}
