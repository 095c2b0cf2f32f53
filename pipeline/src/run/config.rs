//! `riskstream run` configuration: the raw form read from TOML, environment
//! variables and flags, and the checked form the pipeline runs on.
//!
//! Precedence, lowest first: built-in defaults, the TOML file, environment
//! variables `RISKSTREAM_<SECTION>__<FIELD>` (for example
//! `RISKSTREAM_KAFKA__BROKERS=10.0.0.5:9092` or
//! `RISKSTREAM_PIPELINE__COMMIT_INTERVAL_MS=500`), then command-line flags.
//! `docs/riskstream.toml` is the documented example of every setting.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use figment::value::Value;
use riskstream_adapters::Format;
use serde::{Deserialize, Serialize};

use crate::caep::{CaepSigner, Jwks};
pub use crate::layered_config::ConfigError;
use crate::layered_config::{
    check_brokers_and_group, invalid, refuse_owned_properties, service_flags,
};
use crate::replay::EngineOptions;

/// The whole configuration as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRunConfig {
    /// How to reach the cluster.
    pub kafka: RawKafka,
    /// Input topics, each with the format of its records. They must be
    /// co-partitioned: same partition count, keyed by principal.
    pub inputs: Vec<RawInput>,
    /// Output and internal topics, and whether to create them.
    pub topics: RawTopics,
    /// Policy and GeoIP databases.
    pub engine: RawEngine,
    /// The HTTP endpoint.
    pub http: RawHttp,
    /// Batching, ordering and shutdown.
    pub pipeline: RawPipeline,
    /// CAEP Security Event Tokens to `topics.caep`, and the SSF metadata
    /// and JWK set over HTTP.
    pub caep: RawCaep,
}

impl Default for RawRunConfig {
    fn default() -> Self {
        RawRunConfig {
            kafka: RawKafka::default(),
            inputs: vec![
                RawInput {
                    topic: "auth-events".to_owned(),
                    format: "contract".to_owned(),
                },
                RawInput {
                    topic: "action-events".to_owned(),
                    format: "contract".to_owned(),
                },
            ],
            topics: RawTopics::default(),
            engine: RawEngine::default(),
            http: RawHttp::default(),
            pipeline: RawPipeline::default(),
            caep: RawCaep::default(),
        }
    }
}

/// `[kafka]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawKafka {
    /// `bootstrap.servers`, comma separated.
    pub brokers: String,
    /// The consumer group; instances with the same group split the
    /// partitions.
    pub group_id: String,
    /// librdkafka properties for every client (consumer, producer, admin,
    /// changelog reader): `security.protocol`, `sasl.*`, `ssl.*`, ...
    pub properties: BTreeMap<String, String>,
    /// librdkafka properties for the consumer only.
    pub consumer: BTreeMap<String, String>,
    /// librdkafka properties for the producer only.
    pub producer: BTreeMap<String, String>,
}

impl Default for RawKafka {
    fn default() -> Self {
        RawKafka {
            brokers: "127.0.0.1:9092".to_owned(),
            group_id: "riskstream".to_owned(),
            properties: BTreeMap::new(),
            consumer: BTreeMap::new(),
            producer: BTreeMap::new(),
        }
    }
}

/// One `[[inputs]]` entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInput {
    /// Topic name.
    pub topic: String,
    /// `contract`, `okta`, `auth0`, `entra`, `keycloak`, `cloudtrail` or
    /// `google_workspace`.
    #[serde(default = "contract")]
    pub format: String,
}

fn contract() -> String {
    "contract".to_owned()
}

/// `[topics]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTopics {
    /// Risk records, keyed by session, compacted.
    pub risk: String,
    /// Dead letters: the original bytes with `error` and `source.*` headers.
    pub dlq: String,
    /// Per-principal state changelog, compacted, partitioned like the inputs.
    pub state: String,
    /// CAEP Security Event Tokens (JWS compact form), keyed by session,
    /// written when `[caep] key` is set.
    pub caep: String,
    /// Login observations (address, AS, principal, outcome) shared between
    /// instances for the cross-principal signals (credential stuffing,
    /// password spraying), keyed by address; empty to keep each instance's
    /// engines to what their own partitions see.
    pub ip_observations: String,
    /// Create missing topics at start.
    pub create: bool,
    /// Partitions of created input, state and risk topics (an existing input
    /// topic's count wins for the state topic).
    pub partitions: i32,
    /// Replication factor of created topics.
    pub replication_factor: i32,
}

impl Default for RawTopics {
    fn default() -> Self {
        RawTopics {
            risk: "session-risk".to_owned(),
            dlq: "riskstream.dlq".to_owned(),
            state: "riskstream.state".to_owned(),
            caep: "riskstream.caep".to_owned(),
            ip_observations: "riskstream.ip-observations".to_owned(),
            create: true,
            partitions: 6,
            replication_factor: 1,
        }
    }
}

/// `[engine]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawEngine {
    /// Policy file (TOML); the built-in default policy when absent.
    pub policy: Option<PathBuf>,
    /// GeoIP2/GeoLite2 City database; the committed fixture when absent.
    pub geoip_city: Option<PathBuf>,
    /// ASN database.
    pub geoip_asn: Option<PathBuf>,
    /// Anonymous IP database.
    pub geoip_anonymous: Option<PathBuf>,
    /// Cap on principals held per partition.
    pub max_principals: Option<usize>,
    /// Tenant stamped on events of native formats (the vendor's org or
    /// tenant id when absent).
    pub tenant: Option<String>,
}

/// `[http]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawHttp {
    /// Listen address of `/metrics`, `/healthz`, `/readyz` and
    /// `/v1/sessions/{session}`; empty to serve nothing.
    pub listen: String,
    /// Sessions whose latest record is kept for `/v1/sessions`.
    pub session_cache: u64,
}

impl Default for RawHttp {
    fn default() -> Self {
        RawHttp {
            listen: "127.0.0.1:9464".to_owned(),
            session_cache: 100_000,
        }
    }
}

/// `[pipeline]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPipeline {
    /// How often state is checkpointed: changelog written, acknowledged,
    /// then input offsets committed. Shorter means fewer duplicates after a
    /// crash and more changelog traffic (one snapshot per principal active
    /// in the interval, as Kafka Streams' record cache does).
    pub commit_interval_ms: u64,
    /// How long an event may wait for the other input topics of its
    /// partition before it is scored anyway. Events of one partition are
    /// scored in event-time order across the input topics (Kafka Streams'
    /// `max.task.idle.ms`); the wait bounds the latency this adds when one
    /// topic is quiet.
    pub max_task_idle_ms: u64,
    /// Time allowed on SIGTERM/SIGINT to drain, checkpoint and commit. Keep
    /// it below the group's `session.timeout.ms` (45 s by default).
    pub shutdown_deadline_ms: u64,
    /// Largest accepted message, in bytes; larger ones are dead-lettered
    /// `too_large`.
    pub max_event_bytes: usize,
}

impl Default for RawPipeline {
    fn default() -> Self {
        RawPipeline {
            commit_interval_ms: 1000,
            max_task_idle_ms: 5,
            shutdown_deadline_ms: 10_000,
            max_event_bytes: 64 * 1024,
        }
    }
}

/// `[caep]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawCaep {
    /// Private signing key, PEM: EC P-256 signs ES256, RSA signs RS256.
    /// No tokens are written and no SSF metadata is served when absent.
    pub key: Option<PathBuf>,
    /// `kid` of the key, in every token's header and in the JWK set.
    pub kid: String,
    /// `iss` of every token and the SSF `issuer`: the URL receivers reach
    /// this transmitter at (the metadata is served at
    /// `/.well-known/ssf-configuration` under it). Required with `key`.
    pub issuer: String,
    /// JWK set files (JSON) whose keys are published beside the signing
    /// key's: the previous keys during a rotation.
    pub publish_jwks: Vec<PathBuf>,
}

impl Default for RawCaep {
    fn default() -> Self {
        RawCaep {
            key: None,
            kid: "riskstream".to_owned(),
            issuer: String::new(),
            publish_jwks: Vec::new(),
        }
    }
}

/// Command-line overrides (flags win over file and environment).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--brokers`.
    pub brokers: Option<String>,
    /// `--group-id`.
    pub group_id: Option<String>,
    /// `--http-listen`.
    pub http_listen: Option<String>,
    /// `--no-create-topics`.
    pub no_create_topics: bool,
}

impl RawRunConfig {
    /// Defaults, then `file`, then `RISKSTREAM_*` variables, then flags.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<RawRunConfig, ConfigError> {
        let flags = service_flags(
            overrides.brokers.as_deref(),
            overrides.group_id.as_deref(),
            overrides.http_listen.as_deref(),
        );
        let create = (
            "topics.create",
            overrides.no_create_topics.then(|| Value::from(false)),
        );
        crate::layered_config::load(file, "RISKSTREAM_", flags.into_iter().chain([create]))
    }

    /// Checks the rules across fields.
    pub fn build(self) -> Result<RunConfig, ConfigError> {
        check_brokers_and_group(&self.kafka.brokers, &self.kafka.group_id)?;
        for (section, properties) in [
            ("kafka.properties", &self.kafka.properties),
            ("kafka.consumer", &self.kafka.consumer),
            ("kafka.producer", &self.kafka.producer),
        ] {
            refuse_owned_properties(
                section,
                properties,
                OWNED_PROPERTIES,
                "set by riskstream itself for at-least-once delivery",
            )?;
        }
        if self.inputs.is_empty() {
            return Err(invalid("inputs", "[]", "at least one input topic"));
        }
        let mut inputs = Vec::new();
        for (i, input) in self.inputs.iter().enumerate() {
            let field = format!("inputs[{i}].format");
            let format: Format = input
                .format
                .parse()
                .map_err(|_| invalid(&field, &input.format, "unknown format"))?;
            if input.topic.trim().is_empty() {
                return Err(invalid(
                    &format!("inputs[{i}].topic"),
                    "",
                    "empty topic name",
                ));
            }
            if inputs.iter().any(|x: &InputTopic| x.topic == input.topic) {
                return Err(invalid(
                    &format!("inputs[{i}].topic"),
                    &input.topic,
                    "listed twice",
                ));
            }
            inputs.push(InputTopic {
                topic: input.topic.clone(),
                format,
            });
        }
        let t = &self.topics;
        for (field, name) in [
            ("topics.risk", &t.risk),
            ("topics.dlq", &t.dlq),
            ("topics.state", &t.state),
            ("topics.caep", &t.caep),
        ] {
            if name.trim().is_empty() {
                return Err(invalid(field, name, "empty topic name"));
            }
            if inputs.iter().any(|i| &i.topic == name) {
                return Err(invalid(field, name, "is also an input topic"));
            }
        }
        if !t.ip_observations.is_empty()
            && (inputs.iter().any(|i| i.topic == t.ip_observations)
                || [&t.risk, &t.dlq, &t.state, &t.caep].contains(&&t.ip_observations))
        {
            return Err(invalid(
                "topics.ip_observations",
                &t.ip_observations,
                "is also another topic of the pipeline",
            ));
        }
        if t.partitions < 1 {
            return Err(invalid("topics.partitions", t.partitions, "at least 1"));
        }
        if t.replication_factor < 1 {
            return Err(invalid(
                "topics.replication_factor",
                t.replication_factor,
                "at least 1",
            ));
        }
        let http = if self.http.listen.trim().is_empty() {
            None
        } else {
            Some(
                self.http
                    .listen
                    .parse::<SocketAddr>()
                    .map_err(|e| invalid("http.listen", &self.http.listen, &e.to_string()))?,
            )
        };
        let p = &self.pipeline;
        if p.commit_interval_ms == 0 {
            return Err(invalid("pipeline.commit_interval_ms", 0, "at least 1"));
        }
        if p.shutdown_deadline_ms == 0 {
            return Err(invalid("pipeline.shutdown_deadline_ms", 0, "at least 1"));
        }
        if p.max_event_bytes == 0 {
            return Err(invalid("pipeline.max_event_bytes", 0, "at least 1"));
        }
        let caep = match &self.caep.key {
            None => None,
            Some(key) => {
                let c = &self.caep;
                if c.issuer.trim().is_empty() {
                    return Err(invalid(
                        "caep.issuer",
                        "",
                        "required with caep.key: the URL receivers know this transmitter by",
                    ));
                }
                let signer = CaepSigner::from_pem_file(key, &c.kid, &c.issuer)
                    .map_err(|e| invalid("caep.key", key.display(), &e.to_string()))?;
                let mut jwks = Jwks::new().with_signer(&signer).build();
                for path in &c.publish_jwks {
                    let extra: jsonwebtoken::jwk::JwkSet = std::fs::read(path)
                        .map_err(|e| e.to_string())
                        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
                        .map_err(|e| invalid("caep.publish_jwks", path.display(), &e))?;
                    jwks.keys.extend(extra.keys);
                }
                Some(CaepConfig {
                    signer: Arc::new(signer),
                    jwks: Arc::new(jwks),
                })
            }
        };
        Ok(RunConfig {
            caep,
            engine: EngineOptions {
                policy: self.engine.policy.clone(),
                geoip_city: self.engine.geoip_city.clone(),
                geoip_asn: self.engine.geoip_asn.clone(),
                geoip_anonymous: self.engine.geoip_anonymous.clone(),
                max_principals: self.engine.max_principals,
            },
            tenant: self.engine.tenant.clone(),
            inputs,
            http,
            session_cache: self.http.session_cache,
            commit_interval: Duration::from_millis(p.commit_interval_ms),
            max_task_idle: Duration::from_millis(p.max_task_idle_ms),
            shutdown_deadline: Duration::from_millis(p.shutdown_deadline_ms),
            max_event_bytes: p.max_event_bytes,
            raw: self,
        })
    }
}

/// librdkafka properties riskstream sets itself: overriding them would
/// break at-least-once delivery or the partition ownership of state.
const OWNED_PROPERTIES: &[&str] = &[
    "enable.auto.offset.store",
    "enable.auto.commit",
    "group.id",
    "bootstrap.servers",
    "partition.assignment.strategy",
];

/// One input topic and the format of its records.
#[derive(Debug, Clone)]
pub struct InputTopic {
    /// Topic name.
    pub topic: String,
    /// Format of its records.
    pub format: Format,
}

/// A loaded CAEP signing key and the JWK set to publish.
#[derive(Clone)]
pub struct CaepConfig {
    /// Signs the tokens.
    pub signer: Arc<CaepSigner>,
    /// The signing key's public JWK, then those of `publish_jwks`.
    pub jwks: Arc<jsonwebtoken::jwk::JwkSet>,
}

impl std::fmt::Debug for CaepConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaepConfig")
            .field("issuer", &self.signer.issuer())
            .field("keys", &self.jwks.keys.len())
            .finish()
    }
}

/// A checked configuration.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The CAEP signer, when `[caep] key` is set.
    pub caep: Option<CaepConfig>,
    /// Everything as written (topic names, Kafka properties).
    pub raw: RawRunConfig,
    /// Policy and GeoIP databases.
    pub engine: EngineOptions,
    /// Tenant for native formats.
    pub tenant: Option<String>,
    /// Input topics, in order.
    pub inputs: Vec<InputTopic>,
    /// HTTP listen address.
    pub http: Option<SocketAddr>,
    /// Sessions kept for `/v1/sessions`.
    pub session_cache: u64,
    /// Checkpoint interval.
    pub commit_interval: Duration,
    /// Cross-topic ordering wait.
    pub max_task_idle: Duration,
    /// Drain deadline.
    pub shutdown_deadline: Duration,
    /// Largest message.
    pub max_event_bytes: usize,
}

impl RunConfig {
    /// librdkafka properties common to every client.
    pub fn common_properties(&self) -> BTreeMap<String, String> {
        let mut p = BTreeMap::new();
        p.insert(
            "bootstrap.servers".to_owned(),
            self.raw.kafka.brokers.clone(),
        );
        p.extend(self.raw.kafka.properties.clone());
        p
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail closures return its error
mod tests {
    use super::*;

    #[test]
    fn defaults_build() {
        let c = RawRunConfig::default().build().unwrap();
        assert_eq!(c.inputs.len(), 2);
        assert_eq!(c.inputs[0].topic, "auth-events");
        assert_eq!(c.raw.topics.risk, "session-risk");
    }

    #[test]
    fn documented_example_holds_every_default() {
        crate::layered_config::assert_example_holds_every_default("docs/riskstream.toml", |path| {
            RawRunConfig::load(Some(path), &Overrides::default())
        });
    }

    #[test]
    fn file_env_and_flags_in_order() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "rs.toml",
                r#"
                [kafka]
                brokers = "file:9092"
                group_id = "from-file"
                [kafka.properties]
                "security.protocol" = "SASL_SSL"
                [[inputs]]
                topic = "okta-log"
                format = "okta"
                [pipeline]
                commit_interval_ms = 250
                "#,
            )?;
            jail.set_env("RISKSTREAM_KAFKA__GROUP_ID", "from-env");
            jail.set_env("RISKSTREAM_PIPELINE__MAX_TASK_IDLE_MS", "7");
            jail.set_env("RISKSTREAM_LOG", "debug");
            let overrides = Overrides {
                brokers: Some("flag:9092".to_owned()),
                ..Overrides::default()
            };
            let c = RawRunConfig::load(Some(Path::new("rs.toml")), &overrides)
                .unwrap()
                .build()
                .unwrap();
            assert_eq!(c.raw.kafka.brokers, "flag:9092");
            assert_eq!(c.raw.kafka.group_id, "from-env");
            assert_eq!(c.inputs.len(), 1);
            assert_eq!(c.inputs[0].format, Format::Okta);
            assert_eq!(c.commit_interval, Duration::from_millis(250));
            assert_eq!(c.max_task_idle, Duration::from_millis(7));
            assert_eq!(c.common_properties()["security.protocol"], "SASL_SSL");
            Ok(())
        });
    }

    #[test]
    fn errors_name_the_value() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("bad.toml", "[pipeline]\ncomit_interval_ms = 3\n")?;
            let e = RawRunConfig::load(Some(Path::new("bad.toml")), &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(e.contains("comit_interval_ms"), "{e}");
            Ok(())
        });
        let mut raw = RawRunConfig::default();
        raw.inputs[1].format = "splunk".to_owned();
        let e = raw.build().unwrap_err().to_string();
        assert!(
            e.contains("inputs[1].format") && e.contains("splunk"),
            "{e}"
        );
        let mut raw = RawRunConfig::default();
        raw.kafka
            .consumer
            .insert("enable.auto.commit".to_owned(), "true".to_owned());
        let e = raw.build().unwrap_err().to_string();
        assert!(e.contains("enable.auto.commit"), "{e}");
        let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/caep/test-es256.pem");
        let mut raw = RawRunConfig::default();
        raw.caep.key = Some(key.clone());
        let e = raw.clone().build().unwrap_err().to_string();
        assert!(e.contains("caep.issuer"), "{e}");
        raw.caep.issuer = "https://riskstream.test".to_owned();
        raw.caep.publish_jwks = vec![key.clone()];
        let e = raw.clone().build().unwrap_err().to_string();
        assert!(e.contains("caep.publish_jwks"), "{e}");
        raw.caep.publish_jwks.clear();
        let c = raw.build().unwrap().caep.unwrap();
        assert_eq!(c.jwks.keys.len(), 1);
        let mut raw = RawRunConfig::default();
        raw.caep.key = Some(PathBuf::from("/nonexistent/key.pem"));
        raw.caep.issuer = "https://riskstream.test".to_owned();
        let e = raw.build().unwrap_err().to_string();
        assert!(
            e.contains("caep.key") && e.contains("/nonexistent/key.pem"),
            "{e}"
        );
        let mut raw = RawRunConfig::default();
        raw.topics.state = "auth-events".to_owned();
        assert!(
            raw.build()
                .unwrap_err()
                .to_string()
                .contains("also an input")
        );
    }
}
