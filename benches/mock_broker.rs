//! librdkafka's mock cluster as a stand-alone broker for `kafka_load`: a
//! second Kafka-protocol broker beside nisshi, to tell the pipeline's own
//! throughput and latency from the broker's.
//!
//! ```sh
//! cargo bench -p riskstream --bench mock_broker -- [--partitions 6]
//! ```
//!
//! prints `bootstrap.servers` on its first line, creates the topics
//! `riskstream run` uses with the defaults (the mock cluster keeps every
//! message in memory and does not compact), and serves until killed. Start
//! the pipeline with `--no-create-topics`.
//!
//! The mock cluster is librdkafka's test broker: one thread, in memory, no
//! replication, no durability. Figures measured against it are the
//! pipeline's, not a production cluster's.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::Write;

use rdkafka::mocking::MockCluster;

fn main() {
    let mut partitions = 6;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--partitions" => partitions = it.next().unwrap().parse().unwrap(),
            // cargo bench passes --bench
            "--bench" => {}
            other => panic!("mock_broker: unknown argument {other}"),
        }
    }
    let cluster = MockCluster::new(1).expect("mock cluster");
    for topic in [
        "auth-events",
        "action-events",
        "riskstream.state",
        "session-risk",
        "riskstream.dlq",
        "riskstream.ip-observations",
    ] {
        cluster.create_topic(topic, partitions, 1).expect(topic);
    }
    println!("{}", cluster.bootstrap_servers());
    std::io::stdout().flush().unwrap();
    loop {
        std::thread::park();
    }
}
