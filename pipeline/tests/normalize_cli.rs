//! `riskstream normalize` and `replay --format`, through the binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_riskstream"))
}

fn small_events() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/small/events.jsonl")
}

fn tempdir(tag: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("riskstream-normalize-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn contract_normalisation_is_the_identity_on_contract_events() {
    let out = bin()
        .args(["normalize", "--format", "contract", "--input"])
        .arg(small_events())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, std::fs::read(small_events()).unwrap());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("7561 lines, 7561 records: 7561 events, 0 rejected"),
        "{stderr}"
    );
}

#[test]
fn unmappable_records_are_rejected_with_their_reason_never_dropped() {
    let dir = tempdir("rejects");
    let rejects = dir.join("rejects.jsonl");
    let mut child = bin()
        .args(["normalize", "--format", "okta", "--rejects"])
        .arg(&rejects)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"not json at all\n\n{\"hello\": \"world\"}\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&rejects)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "two records, one blank line skipped");
    assert_eq!(lines[0]["reason"], "not_json");
    assert_eq!(lines[0]["line"], 1);
    assert_eq!(lines[1]["reason"], "not_recognised");
    assert_eq!(lines[1]["line"], 3);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn replay_takes_one_format_for_all_inputs_or_one_per_input() {
    let dir = tempdir("formats");
    let a = dir.join("a.jsonl");
    let b = dir.join("b.jsonl");
    // Same output with an explicit contract format for each input, and
    // with none.
    let run = |extra: &[&str], out: &PathBuf| {
        let mut c = bin();
        c.args(["replay", "--input"])
            .arg(small_events())
            .arg("--output")
            .arg(out);
        c.args(extra);
        c.output().unwrap()
    };
    let r = run(&["--format", "contract"], &a);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let r = run(&[], &b);
    assert!(r.status.success());
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    // Two formats for one input: a clear error, exit 1.
    let r = run(&["--format", "okta", "--format", "auth0"], &a);
    assert_eq!(r.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&r.stderr).contains("2 --format values for 1 inputs"));
    // An unknown format: a usage error, exit 2, naming the known ones.
    let r = run(&["--format", "ldap"], &a);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("google_workspace"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_partly_mapped_cloudtrail_file_reports_every_record() {
    // The hand-written CloudTrail log file holds 17 records, one of which
    // has no bearing on authentication: 16 events and 1 reject, none lost.
    let sample = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../adapters/tests/samples/cloudtrail_log_file.json");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&sample).unwrap()).unwrap();
    let records = doc["Records"].as_array().unwrap().len();
    let dir = tempdir("cloudtrail");
    let input = dir.join("trail.jsonl");
    std::fs::write(
        &input,
        format!("{}\n", serde_json::to_string(&doc).unwrap()),
    )
    .unwrap();
    let rejects = dir.join("rejects.jsonl");
    let out = bin()
        .args(["normalize", "--format", "cloudtrail", "--input"])
        .arg(&input)
        .arg("--rejects")
        .arg(&rejects)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = String::from_utf8(out.stdout).unwrap().lines().count();
    let rejected = std::fs::read_to_string(&rejects).unwrap().lines().count();
    assert_eq!(records, 17);
    assert_eq!((events, rejected), (16, 1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("1 lines, 17 records: 16 events, 1 rejected"),
        "{stderr}"
    );
    // The replay counts the same way: 1 line + 16 extra records = 16 records + 1 reject.
    let replay = bin()
        .args(["replay", "--format", "cloudtrail", "--input"])
        .arg(&input)
        .args(["--output", "-"])
        .output()
        .unwrap();
    assert!(
        replay.status.success(),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    let stderr = String::from_utf8_lossy(&replay.stderr);
    assert!(
        stderr.contains("lines 1 + extra events 16 = records 16 + rejects 1: ok"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
