//! The detection target of the engine, on a world the policy was not tuned
//! on: the default policy was tuned on generator seed 7; this checks seed 11
//! (500 principals, 14 days), as CONTRACT.md defines protection and friction.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn holdout_world_reaches_protection_090_at_friction_005() {
    let dir = std::env::temp_dir().join(format!("riskstream-gate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let world = dir.join("world-seed11.jsonl");
    let bin = env!("CARGO_BIN_EXE_riskstream");
    let generated = Command::new(bin)
        .args([
            "fixtures",
            "generate",
            "--seed",
            "11",
            "--principals",
            "500",
            "--days",
            "14",
            "--out",
        ])
        .arg(&world)
        .output()
        .unwrap();
    assert!(
        generated.status.success(),
        "{}",
        String::from_utf8_lossy(&generated.stderr)
    );
    let eval = Command::new(bin)
        .args([
            "evaluate",
            "--format",
            "json",
            "--min-protection",
            "0.90",
            "--max-friction",
            "0.05",
            "--events",
        ])
        .arg(&world)
        .output()
        .unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(&eval.stdout).unwrap_or(serde_json::Value::Null);
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    assert!(
        eval.status.success(),
        "evaluate failed the gate:\n{}\n{}",
        String::from_utf8_lossy(&eval.stdout),
        String::from_utf8_lossy(&eval.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
