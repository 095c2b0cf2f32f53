//! The detection target of the engine (issue 4), on a world the policy was
//! not tuned on: the default policy was tuned on generator seed 7; this
//! checks seed 11, 600 principals (510 humans, 60 workloads, 30 agents)
//! over 14 days with every scenario, as CONTRACT.md defines the terms:
//! protection ≥ 0.97, friction ≤ 0.02, login friction ≤ 0.03, and no attack
//! scenario's protection below 0.85.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

const ATTACKS: [&str; 8] = [
    "impossible_travel_push_fatigue",
    "stolen_session_token",
    "new_device_persistence",
    "credential_stuffing",
    "insider_sequence",
    "workload_token_leak",
    "agent_hijack",
    "low_and_slow",
];

#[test]
fn holdout_world_reaches_the_issue_targets() {
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
            "600",
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
            "0.97",
            "--max-friction",
            "0.02",
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
    let engine = &report["systems"]["engine"];
    let login = engine["overall"]["login_friction"]["value"]
        .as_f64()
        .expect("login friction is measured");
    assert!(login <= 0.03, "login friction {login} above 0.03");
    // The generator's summary: "... from 30 agent, 510 human, 60 workload
    // principals; ...".
    let summary = format!(
        "{}{}",
        String::from_utf8_lossy(&generated.stdout),
        String::from_utf8_lossy(&generated.stderr)
    );
    let words: Vec<&str> = summary
        .split([' ', ','])
        .filter(|w| !w.is_empty())
        .collect();
    let humans: u64 = words
        .windows(2)
        .find(|w| w[1] == "human")
        .and_then(|w| w[0].parse().ok())
        .unwrap_or_else(|| panic!("no human count in {summary:?}"));
    assert!(humans >= 500, "{humans} humans, the issue asks for 500");
    for name in ATTACKS {
        let p = &engine["by_scenario"][name]["protection"];
        let value = p["value"]
            .as_f64()
            .unwrap_or_else(|| panic!("{name}: no attacker sensitive action in the world"));
        assert!(
            value >= 0.85,
            "{name}: protection {value} ({}/{}) below 0.85",
            p["numerator"],
            p["denominator"]
        );
    }
    for kind in ["workload", "agent"] {
        let f = engine["by_principal_type"][kind]["friction"]["value"].as_f64();
        assert!(
            f.is_some_and(|f| f <= 0.02),
            "{kind}: friction {f:?} above 0.02"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
