//! The committed fixture world and its expected risk records: a replay with
//! the embedded defaults must give exactly `fixtures/small/records.jsonl`.
//!
//! After an intended change of the engine or the default policy, regenerate
//! the expected records with `RISKSTREAM_BLESS=1 cargo test -p riskstream
//! --test golden_fixture` and review the diff like code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

fn small() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/small")
}

#[test]
fn replay_of_the_small_world_matches_the_committed_records() {
    let dir = tempdir();
    let out = dir.join("records.jsonl");
    let rejects = dir.join("rejects.jsonl");
    let status = Command::new(env!("CARGO_BIN_EXE_riskstream"))
        .args(["replay", "--input"])
        .arg(small().join("events.jsonl"))
        .arg("--output")
        .arg(&out)
        .arg("--rejects")
        .arg(&rejects)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let got = std::fs::read(&out).unwrap();
    let expected_path = small().join("records.jsonl");
    if std::env::var_os("RISKSTREAM_BLESS").is_some() {
        std::fs::write(&expected_path, &got).unwrap();
        eprintln!("blessed {}", expected_path.display());
        return;
    }
    let expected = std::fs::read(&expected_path).unwrap();
    assert!(
        std::fs::read(&rejects).unwrap().is_empty(),
        "the fixture world has no bad lines"
    );
    let events = std::fs::read_to_string(small().join("events.jsonl")).unwrap();
    let got_text = String::from_utf8(got).unwrap();
    assert_eq!(
        got_text.lines().count(),
        events.lines().count(),
        "one record per event"
    );
    if got_text.as_bytes() != expected.as_slice() {
        let expected_text = String::from_utf8_lossy(&expected);
        let first = got_text
            .lines()
            .zip(expected_text.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "replay differs from fixtures/small/records.jsonl from line {}:\n got      {}\n expected {}\n(RISKSTREAM_BLESS=1 regenerates it after an intended change)",
            first + 1,
            got_text.lines().nth(first).unwrap_or(""),
            expected_text.lines().nth(first).unwrap_or("")
        );
    }
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("riskstream-golden-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
