//! `riskstream demo`: the Kafka path on librdkafka's in-process mock
//! cluster, no broker to install.

use std::process::Command;

#[test]
fn demo_scores_every_event_through_the_mock_cluster() {
    let out = Command::new(env!("CARGO_BIN_EXE_riskstream"))
        .args([
            "demo",
            "--limit",
            "1500",
            "--rate",
            "20000",
            "--partitions",
            "2",
        ])
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("event time"),
        "the table's header first:\n{stdout}"
    );
    let summary = stdout.lines().last().expect("a summary line");
    assert!(
        summary.starts_with("1500 events produced, 1500 scored through Kafka"),
        "{summary}"
    );
    // Sessions whose decision changed are listed, with the change.
    assert!(
        stdout.contains(" -> step_up") || stdout.contains(" -> deny"),
        "{stdout}"
    );
}
