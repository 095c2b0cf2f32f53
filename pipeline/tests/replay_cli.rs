//! The `riskstream replay` binary: exit codes, summary, output files.

// Tests panic on purpose when something is wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("replay_cli_{name}"));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn riskstream(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_riskstream"))
        .args(args)
        .output()
        .expect("riskstream runs")
}

fn p(path: &std::path::Path) -> String {
    path.to_string_lossy().into_owned()
}

const INPUT: &str = concat!(
    r#"{"schema":"riskstream.event.v1","kind":"auth","id":"e1","time":"2026-11-30T10:15:02.123Z","tenant":"acme","principal":{"id":"u-42","type":"human","role":"finance"},"session":"s-9f2","type":"login.success","context":{"ip":"81.2.69.142","user_agent":"Mozilla/5.0","device_id":"d-7","device_trust":"managed"},"auth":{"aal":2,"acr":"urn:acme:mfa","amr":["pwd","otp"]},"labels":{"attack":false}}"#,
    "\n",
    r#"{"schema":"riskstream.event.v1","kind":"action","id":"e2","time":"2026-11-30T10:20:00Z","tenant":"acme","principal":{"id":"u-42"},"session":"s-9f2","action":"data.export","attributes":{"rows":120000},"context":{"ip":"81.2.69.142"}}"#,
    "\n\n",
    r#"{"schema":"riskstream.event.v1","kind":"action","id":"e3","time":"2026-11-30T10:21:00Z","principal":{"id":"u-42"},"action":"data.export"}"#,
    "\n",
    "not json at all\n",
);

#[test]
fn replays_a_file_and_prints_a_summary() {
    let d = dir("summary");
    let input = d.join("in.jsonl");
    std::fs::write(&input, INPUT).expect("write input");
    let (out, rejects, summary) = (
        d.join("out.jsonl"),
        d.join("rejects.jsonl"),
        d.join("summary.json"),
    );
    let run = riskstream(&[
        "replay",
        "--input",
        &p(&input),
        "--output",
        &p(&out),
        "--rejects",
        &p(&rejects),
        "--summary-json",
        &p(&summary),
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.contains("riskstream replay summary"), "{stderr}");
    assert!(
        stderr.contains("lines 4 = records 2 + rejects 2: ok"),
        "{stderr}"
    );
    assert!(stderr.contains("events/s"), "{stderr}");
    assert!(stderr.contains("built-in"), "{stderr}");
    assert!(
        stderr.contains("fixture") || stderr.contains("none"),
        "{stderr}"
    );

    let records = std::fs::read_to_string(&out).expect("output");
    assert_eq!(records.lines().count(), 2);
    let first: Value = serde_json::from_str(records.lines().next().unwrap_or("")).expect("record");
    assert_eq!(first["trigger"]["event_id"], "e1");
    assert_eq!(first["tenant"], "acme");

    let rejects = std::fs::read_to_string(&rejects).expect("rejects");
    let rejects: Vec<Value> = rejects
        .lines()
        .map(|l| serde_json::from_str(l).expect("reject"))
        .collect();
    assert_eq!(rejects.len(), 2);
    assert_eq!(rejects[0]["reason"], "missing_field");
    assert_eq!(rejects[0]["field"], "session");
    assert_eq!(rejects[0]["line"], 4);
    assert_eq!(rejects[1]["reason"], "not_json");
    assert_eq!(rejects[1]["raw"], "not json at all");

    let s: Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).expect("summary")).expect("json");
    assert_eq!(s["lines"], 4);
    assert_eq!(s["blank_lines"], 1);
    assert_eq!(s["records"], 2);
    assert_eq!(s["rejected"], 2);
    assert_eq!(s["rejects"]["missing_field"], 1);
    assert_eq!(s["rejects"]["duplicate"], 0);
    assert_eq!(s["policy"]["source"], "built-in");
    let decided: u64 = ["low", "medium", "high", "critical"]
        .iter()
        .flat_map(|c| {
            ["allow", "step_up", "deny"].map(|d| s["decisions"][c][d].as_u64().unwrap_or(0))
        })
        .sum();
    assert_eq!(decided, 2);
}

#[test]
fn output_is_byte_identical_across_runs_and_compression() {
    let d = dir("identical");
    let plain = d.join("in.jsonl");
    std::fs::write(&plain, INPUT).expect("write");
    // A gzip file named without .gz: detection is by content.
    let zipped = d.join("in.data");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(INPUT.as_bytes()).expect("compress");
    std::fs::write(&zipped, gz.finish().expect("compress")).expect("write");

    let mut outputs = Vec::new();
    for (i, input) in [&plain, &plain, &zipped].iter().enumerate() {
        let out = d.join(format!("out{i}.jsonl"));
        let run = riskstream(&["replay", "--input", &p(input), "--output", &p(&out)]);
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        outputs.push(std::fs::read(&out).expect("output"));
    }
    assert!(!outputs[0].is_empty());
    assert_eq!(outputs[0], outputs[1]);
    assert_eq!(outputs[0], outputs[2]);

    // Two inputs are one stream through one engine: the same as their
    // concatenation.
    let (first, second) = INPUT.split_at(INPUT.find("\n\n").unwrap_or(0) + 1);
    let (a, b) = (d.join("a.jsonl"), d.join("b.jsonl"));
    std::fs::write(&a, first).expect("write");
    std::fs::write(&b, second).expect("write");
    let out = d.join("out_two.jsonl");
    let run = riskstream(&["replay", "--input", &p(&a), &p(&b), "--output", &p(&out)]);
    assert!(run.status.success());
    assert_eq!(std::fs::read(&out).expect("output"), outputs[0]);
}

#[test]
fn usage_errors_exit_2_and_failures_exit_1() {
    let d = dir("exit");
    assert_eq!(riskstream(&["replay"]).status.code(), Some(2));
    assert_eq!(
        riskstream(&[
            "replay",
            "--input",
            "x",
            "--output",
            "y",
            "--max-event-bytes",
            "0"
        ])
        .status
        .code(),
        Some(2)
    );
    assert_eq!(riskstream(&["nonsense"]).status.code(), Some(2));
    assert_eq!(riskstream(&["--help"]).status.code(), Some(0));

    let missing = riskstream(&[
        "replay",
        "--input",
        &p(&d.join("absent.jsonl")),
        "--output",
        &p(&d.join("o")),
    ]);
    assert_eq!(missing.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("absent.jsonl"), "{stderr}");

    let input = d.join("in.jsonl");
    std::fs::write(&input, INPUT).expect("write");
    let policy = d.join("bad.toml");
    std::fs::write(&policy, "this is = not [a policy").expect("write");
    let bad = riskstream(&[
        "replay",
        "--input",
        &p(&input),
        "--output",
        &p(&d.join("o")),
        "--policy",
        &p(&policy),
    ]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("bad.toml"));
}

#[test]
fn no_progress_bar_when_stderr_is_piped() {
    let d = dir("piped");
    let input = d.join("in.jsonl");
    std::fs::write(&input, INPUT).expect("write");
    let run = riskstream(&[
        "replay",
        "--input",
        &p(&input),
        "--output",
        &p(&d.join("o")),
    ]);
    assert!(run.status.success());
    // indicatif draws with carriage returns and escape sequences.
    assert!(!run.stderr.contains(&b'\r'));
    assert!(!run.stderr.contains(&0x1b));
}

#[test]
fn generated_world_replays_and_evaluates_end_to_end() {
    let d = dir("world");
    let (plain, zipped) = (d.join("world.jsonl"), d.join("world.jsonl.gz"));
    for out in [&plain, &zipped] {
        let run = riskstream(&[
            "fixtures",
            "generate",
            "--seed",
            "3",
            "--principals",
            "12",
            "--days",
            "2",
            "--out",
            &p(out),
        ]);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "{stderr}");
        assert!(stderr.contains("events ("), "{stderr}");
    }
    let head = std::fs::read(&zipped).expect("gzip world");
    assert_eq!(&head[..2], &[0x1f, 0x8b]);

    let mut outputs = Vec::new();
    for (i, input) in [&plain, &zipped].iter().enumerate() {
        let out = d.join(format!("records{i}.jsonl"));
        let summary = d.join(format!("summary{i}.json"));
        let run = riskstream(&[
            "replay",
            "--input",
            &p(input),
            "--output",
            &p(&out),
            "--summary-json",
            &p(&summary),
        ]);
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let s: Value = serde_json::from_str(&std::fs::read_to_string(&summary).expect("summary"))
            .expect("json");
        assert_eq!(s["rejected"], 0);
        assert_eq!(s["geoip"]["city"], "fixture");
        assert!(s["records"].as_u64().unwrap_or(0) > 0);
        outputs.push(std::fs::read(&out).expect("records"));
    }
    assert_eq!(outputs[0], outputs[1]);

    let records = d.join("records0.jsonl");
    let from_file = riskstream(&[
        "evaluate",
        "--events",
        &p(&plain),
        "--records",
        &p(&records),
        "--format",
        "json",
    ]);
    let in_memory = riskstream(&["evaluate", "--events", &p(&zipped), "--format", "json"]);
    assert!(from_file.status.success() && in_memory.status.success());
    let a: Value = serde_json::from_slice(&from_file.stdout).expect("json");
    let b: Value = serde_json::from_slice(&in_memory.stdout).expect("json");
    // The same decisions, whether joined from the file or replayed in memory.
    assert_eq!(a["systems"], b["systems"]);
    assert_eq!(a["events"], b["events"]);
}
