//! Topics at start: create the missing ones with the right partition counts
//! and cleanup policies, and refuse to run when the inputs are not
//! co-partitioned.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::RDKafkaErrorCode;
use tracing::info;

use super::RunError;
use super::config::RunConfig;

/// Partition counts of the topics that exist among `names`.
fn partition_counts(
    admin: &AdminClient<DefaultClientContext>,
    names: &[&str],
) -> Result<BTreeMap<String, usize>, RunError> {
    let md = admin
        .inner()
        .fetch_metadata(None, Duration::from_secs(10))
        .map_err(|e| RunError::Kafka(format!("metadata: {e}")))?;
    Ok(md
        .topics()
        .iter()
        .filter(|t| names.contains(&t.name()) && t.error().is_none() && !t.partitions().is_empty())
        .map(|t| (t.name().to_owned(), t.partitions().len()))
        .collect())
}

/// Creates what is missing (when configured to) and checks the partition
/// counts: every input topic the same, the changelog at least as many.
/// Returns the input partition count.
pub async fn ensure(config: &RunConfig, source_lookback: Duration) -> Result<usize, RunError> {
    let mut cfg = ClientConfig::new();
    for (k, v) in config.common_properties() {
        cfg.set(k, v);
    }
    let admin: AdminClient<DefaultClientContext> = cfg
        .create()
        .map_err(|e| RunError::Kafka(format!("admin client: {e}")))?;
    let t = &config.raw.topics;
    let inputs: Vec<&str> = config.inputs.iter().map(|i| i.topic.as_str()).collect();
    let mut all = inputs.clone();
    all.extend([t.risk.as_str(), t.dlq.as_str(), t.state.as_str()]);
    if config.caep.is_some() {
        all.push(t.caep.as_str());
    }
    if !t.ip_observations.is_empty() {
        all.push(t.ip_observations.as_str());
    }
    // Twice the longest window the engines look back over.
    let retention = (2 * source_lookback.as_millis()).to_string();
    let observations_conf = [
        ("cleanup.policy", "delete"),
        ("retention.ms", retention.as_str()),
    ];
    // The cluster may still be starting: retry the first contact.
    let mut attempt = 0;
    let existing = loop {
        match partition_counts(&admin, &all) {
            Ok(c) => break c,
            Err(e) if attempt < 12 => {
                attempt += 1;
                tracing::warn!(error = %e, attempt, "cluster not reachable yet; retrying in 5 s");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            Err(e) => return Err(e),
        }
    };

    let input_partitions = inputs
        .iter()
        .find_map(|n| existing.get(*n).copied())
        .unwrap_or(t.partitions as usize);
    let compact = [("cleanup.policy", "compact")];
    // (name, partitions, topic configuration)
    type Wanted<'a> = (&'a str, usize, &'a [(&'a str, &'a str)]);
    let wanted: Vec<Wanted<'_>> = inputs
        .iter()
        .map(|n| (*n, input_partitions, &[][..]))
        .chain([
            (t.state.as_str(), input_partitions, &compact[..]),
            (t.risk.as_str(), t.partitions as usize, &compact[..]),
            (t.dlq.as_str(), t.partitions as usize, &[][..]),
        ])
        // Tokens are events, not a table: the default delete policy.
        .chain(
            config
                .caep
                .is_some()
                .then_some((t.caep.as_str(), t.partitions as usize, &[][..])),
        )
        .chain((!t.ip_observations.is_empty()).then_some((
            t.ip_observations.as_str(),
            t.partitions as usize,
            &observations_conf[..],
        )))
        .collect();
    let missing: Vec<_> = wanted
        .iter()
        .filter(|(n, _, _)| !existing.contains_key(*n))
        .collect();
    if !missing.is_empty() {
        if !t.create {
            let names: Vec<&str> = missing.iter().map(|(n, _, _)| *n).collect();
            return Err(RunError::Topics(format!(
                "missing topics {names:?} and topics.create is false"
            )));
        }
        let new: Vec<NewTopic<'_>> = missing
            .iter()
            .map(|(name, partitions, conf)| {
                let mut nt = NewTopic::new(
                    name,
                    *partitions as i32,
                    TopicReplication::Fixed(t.replication_factor),
                );
                for (k, v) in conf.iter() {
                    nt = nt.set(k, v);
                }
                nt
            })
            .collect();
        let results = admin
            .create_topics(
                &new,
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
            )
            .await
            .map_err(|e| RunError::Kafka(format!("create topics: {e}")))?;
        for r in results {
            match r {
                Ok(name) => info!(topic = %name, "topic created"),
                // Another instance created it first.
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => {
                    return Err(RunError::Topics(format!("creating {name}: {code}")));
                }
            }
        }
    }
    // Metadata can lag creation by a moment.
    let mut counts = partition_counts(&admin, &all)?;
    for _ in 0..50 {
        if all.iter().all(|n| counts.contains_key(*n)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        counts = partition_counts(&admin, &all)?;
    }
    check_copartitioned(&inputs, &t.state, &counts)
}

/// The co-partitioning rule, with an error that names the counts.
pub fn check_copartitioned(
    inputs: &[&str],
    state: &str,
    counts: &BTreeMap<String, usize>,
) -> Result<usize, RunError> {
    let mut first: Option<(&str, usize)> = None;
    for name in inputs {
        let Some(&n) = counts.get(*name) else {
            return Err(RunError::Topics(format!(
                "input topic {name} does not exist"
            )));
        };
        match first {
            None => first = Some((name, n)),
            Some((f, m)) if m != n => {
                return Err(RunError::Topics(format!(
                    "input topics are not co-partitioned: {f} has {m} partitions, {name} has {n}"
                )));
            }
            Some(_) => {}
        }
    }
    let Some((f, n)) = first else {
        return Err(RunError::Topics("no input topic".to_owned()));
    };
    match counts.get(state) {
        None => Err(RunError::Topics(format!(
            "state topic {state} does not exist"
        ))),
        Some(&s) if s < n => Err(RunError::Topics(format!(
            "state topic {state} has {s} partitions, fewer than the {n} of {f}"
        ))),
        Some(_) => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copartition_errors_name_both_counts() {
        let counts: BTreeMap<String, usize> = [("a", 4), ("b", 6), ("s", 4)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        let e = check_copartitioned(&["a", "b"], "s", &counts)
            .unwrap_err()
            .to_string();
        assert!(e.contains("a has 4") && e.contains("b has 6"), "{e}");
        assert_eq!(check_copartitioned(&["a"], "s", &counts).unwrap(), 4);
        let e = check_copartitioned(&["b"], "s", &counts)
            .unwrap_err()
            .to_string();
        assert!(e.contains("4 partitions, fewer than the 6"), "{e}");
    }
}
