//! `riskstream enforce` configuration: the raw form read from TOML,
//! environment variables and flags, and the checked form the service runs
//! on.
//!
//! Precedence, lowest first: built-in defaults, the TOML file, environment
//! variables `RISKSTREAM_ENFORCE_<SECTION>__<FIELD>` (for example
//! `RISKSTREAM_ENFORCE_KAFKA__BROKERS=10.0.0.5:9092`), then command-line
//! flags. The prefix differs from `riskstream run`'s `RISKSTREAM_` so that
//! both can run from one environment. `docs/enforce.toml` is the
//! documented example of every setting.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use riskstream_schemas::{Decision, Decisions, Sensitivity};
use serde::{Deserialize, Serialize};

pub use crate::layered_config::ConfigError;
use crate::layered_config::{
    check_brokers_and_group, invalid, refuse_owned_properties, service_flags,
};

/// The whole configuration as written.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawEnforceConfig {
    /// How to reach the cluster.
    pub kafka: RawKafka,
    /// The risk record topic.
    pub topics: RawTopics,
    /// The policy that maps action names to sensitivity classes.
    pub engine: RawEngine,
    /// The HTTP endpoint.
    pub http: RawHttp,
    /// Decisions: unknown sessions, request headers, routes.
    pub enforce: RawEnforce,
}

/// `[kafka]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawKafka {
    /// `bootstrap.servers`, comma separated.
    pub brokers: String,
    /// `group.id` of the consumer. Every instance reads every partition of
    /// the risk topic from the beginning by manual assignment: it joins no
    /// group and commits nothing, so instances never split the partitions
    /// and the id only names the client to the brokers (quotas, logs).
    pub group_id: String,
    /// librdkafka properties of the consumer: `security.protocol`,
    /// `sasl.*`, `ssl.*`, `fetch.wait.max.ms`, ... They override the
    /// enforcement point's own defaults (`fetch.wait.max.ms` = 20).
    pub properties: BTreeMap<String, String>,
}

impl Default for RawKafka {
    fn default() -> Self {
        RawKafka {
            brokers: "127.0.0.1:9092".to_owned(),
            group_id: "riskstream-enforce".to_owned(),
            properties: BTreeMap::new(),
        }
    }
}

/// `[topics]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTopics {
    /// Risk records, keyed by session, compacted (what `riskstream run`
    /// publishes).
    pub risk: String,
}

impl Default for RawTopics {
    fn default() -> Self {
        RawTopics {
            risk: "session-risk".to_owned(),
        }
    }
}

/// `[engine]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawEngine {
    /// Policy file (TOML); the built-in default policy when absent. Use the
    /// same file as `riskstream run`: it maps action names to sensitivity
    /// classes and gives each class's step-up (`acr_values`, `max_age`).
    pub policy: Option<PathBuf>,
}

/// `[http]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawHttp {
    /// Listen address of `/v1/decide`, `/v1/authz`, `/v1/sessions/{session}`,
    /// `/metrics`, `/healthz` and `/readyz`.
    pub listen: String,
    /// Threads serving HTTP, each with a single-threaded runtime;
    /// connections are dealt to them in turn and stay on theirs. One
    /// serves 10,000 decisions a second with most of a core to spare
    /// (BENCHMARKS.md, "Enforcement point"); more help only when one is
    /// saturated and the connections outnumber the threads.
    pub threads: usize,
}

/// The most HTTP threads `http.threads` may ask for: far above any core
/// count this service is deployed on, low enough to catch a typo.
const MAX_HTTP_THREADS: usize = 256;

impl Default for RawHttp {
    fn default() -> Self {
        RawHttp {
            listen: "127.0.0.1:9465".to_owned(),
            threads: 1,
        }
    }
}

/// `[enforce]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawEnforce {
    /// Class of a request that names neither an action nor a sensitivity
    /// and whose path matches no route: `low`, `medium`, `high` or
    /// `critical`.
    pub default_class: String,
    /// Header of `GET /v1/authz` carrying the session id.
    pub session_header: String,
    /// Cookie carrying the session id when the header is absent; empty for
    /// none.
    pub session_cookie: String,
    /// Header of `GET /v1/authz` carrying the action name; it wins over the
    /// routes.
    pub action_header: String,
    /// Header of `GET /v1/authz` carrying the original request URI (nginx:
    /// `proxy_set_header X-Original-URI $request_uri;`), matched against
    /// the routes.
    pub uri_header: String,
    /// Header of `GET /v1/authz` carrying the tenant; empty for none. When
    /// a request names a tenant, a record of another tenant does not count.
    pub tenant_header: String,
    /// Decision per class for a session the enforcement point holds no
    /// record of (never scored, expired, or tombstoned). Fails closed for
    /// critical actions by default.
    pub unknown_session: RawUnknown,
    /// Path prefixes to action names, for `GET /v1/authz` requests without
    /// an action header: the first route whose `prefix` matches the path
    /// (the whole path, or up to a `/`) gives the action.
    pub routes: Vec<RawRoute>,
}

impl Default for RawEnforce {
    fn default() -> Self {
        RawEnforce {
            default_class: "low".to_owned(),
            session_header: "X-Session-Id".to_owned(),
            session_cookie: String::new(),
            action_header: "X-Action".to_owned(),
            uri_header: "X-Original-URI".to_owned(),
            tenant_header: String::new(),
            unknown_session: RawUnknown::default(),
            routes: Vec::new(),
        }
    }
}

/// `[enforce.unknown_session]`: `allow`, `step_up` or `deny` per class.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawUnknown {
    /// For `low` actions.
    pub low: String,
    /// For `medium` actions.
    pub medium: String,
    /// For `high` actions.
    pub high: String,
    /// For `critical` actions.
    pub critical: String,
}

impl Default for RawUnknown {
    fn default() -> Self {
        RawUnknown {
            low: "allow".to_owned(),
            medium: "allow".to_owned(),
            high: "step_up".to_owned(),
            critical: "deny".to_owned(),
        }
    }
}

/// One `[[enforce.routes]]` entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// Path prefix, starting with `/`.
    pub prefix: String,
    /// Action name, classed by the policy like an action event's.
    pub action: String,
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
}

/// librdkafka properties the enforcement point sets itself: it reads every
/// partition from the beginning and never commits.
const OWNED_PROPERTIES: &[&str] = &[
    "bootstrap.servers",
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "auto.offset.reset",
    "enable.partition.eof",
];

fn parse_class(field: &str, value: &str) -> Result<Sensitivity, ConfigError> {
    match value {
        "low" => Ok(Sensitivity::Low),
        "medium" => Ok(Sensitivity::Medium),
        "high" => Ok(Sensitivity::High),
        "critical" => Ok(Sensitivity::Critical),
        _ => Err(invalid(field, value, "low, medium, high or critical")),
    }
}

fn parse_decision(field: &str, value: &str) -> Result<Decision, ConfigError> {
    match value {
        "allow" => Ok(Decision::Allow),
        "step_up" => Ok(Decision::StepUp),
        "deny" => Ok(Decision::Deny),
        _ => Err(invalid(field, value, "allow, step_up or deny")),
    }
}

fn header_name(field: &str, value: &str) -> Result<axum::http::HeaderName, ConfigError> {
    axum::http::HeaderName::from_bytes(value.as_bytes())
        .map_err(|_| invalid(field, value, "not an HTTP header name"))
}

impl RawEnforceConfig {
    /// Defaults, then `file`, then `RISKSTREAM_ENFORCE_*` variables, then
    /// flags.
    pub fn load(
        file: Option<&Path>,
        overrides: &Overrides,
    ) -> Result<RawEnforceConfig, ConfigError> {
        let flags = service_flags(
            overrides.brokers.as_deref(),
            overrides.group_id.as_deref(),
            overrides.http_listen.as_deref(),
        );
        crate::layered_config::load(file, "RISKSTREAM_ENFORCE_", flags)
    }

    /// Checks the rules across fields.
    pub fn build(self) -> Result<EnforceConfig, ConfigError> {
        check_brokers_and_group(&self.kafka.brokers, &self.kafka.group_id)?;
        refuse_owned_properties(
            "kafka.properties",
            &self.kafka.properties,
            OWNED_PROPERTIES,
            "set by riskstream enforce itself: it reads every partition from the beginning and commits nothing",
        )?;
        if self.topics.risk.trim().is_empty() {
            return Err(invalid("topics.risk", "", "empty topic name"));
        }
        let http = self
            .http
            .listen
            .parse::<SocketAddr>()
            .map_err(|e| invalid("http.listen", &self.http.listen, &e.to_string()))?;
        if !(1..=MAX_HTTP_THREADS).contains(&self.http.threads) {
            return Err(invalid(
                "http.threads",
                self.http.threads,
                &format!("from 1 to {MAX_HTTP_THREADS}"),
            ));
        }
        let http_threads = self.http.threads;
        let e = &self.enforce;
        let default_class = parse_class("enforce.default_class", &e.default_class)?;
        let u = &e.unknown_session;
        let unknown_session = Decisions {
            low: parse_decision("enforce.unknown_session.low", &u.low)?,
            medium: parse_decision("enforce.unknown_session.medium", &u.medium)?,
            high: parse_decision("enforce.unknown_session.high", &u.high)?,
            critical: parse_decision("enforce.unknown_session.critical", &u.critical)?,
        };
        let session_header = header_name("enforce.session_header", &e.session_header)?;
        let action_header = header_name("enforce.action_header", &e.action_header)?;
        let uri_header = header_name("enforce.uri_header", &e.uri_header)?;
        let tenant_header = if e.tenant_header.is_empty() {
            None
        } else {
            Some(header_name("enforce.tenant_header", &e.tenant_header)?)
        };
        let session_cookie = (!e.session_cookie.is_empty()).then(|| e.session_cookie.clone());
        for (i, r) in e.routes.iter().enumerate() {
            if !r.prefix.starts_with('/') {
                return Err(invalid(
                    &format!("enforce.routes[{i}].prefix"),
                    &r.prefix,
                    "must start with /",
                ));
            }
            if r.action.trim().is_empty() {
                return Err(invalid(
                    &format!("enforce.routes[{i}].action"),
                    "",
                    "empty action name",
                ));
            }
        }
        Ok(EnforceConfig {
            http,
            http_threads,
            policy: self.engine.policy.clone(),
            requests: RequestConfig {
                default_class,
                unknown_session,
                session_header,
                session_cookie,
                action_header,
                uri_header,
                tenant_header,
                routes: e.routes.clone(),
            },
            raw: self,
        })
    }
}

/// How requests are read and what an unknown session gets.
#[derive(Debug, Clone)]
pub struct RequestConfig {
    /// Class of a request without action, sensitivity or route.
    pub default_class: Sensitivity,
    /// Decisions for a session without a record.
    pub unknown_session: Decisions,
    /// Session header of `/v1/authz`.
    pub session_header: axum::http::HeaderName,
    /// Session cookie of `/v1/authz`, when configured.
    pub session_cookie: Option<String>,
    /// Action header of `/v1/authz`.
    pub action_header: axum::http::HeaderName,
    /// Original-URI header of `/v1/authz`.
    pub uri_header: axum::http::HeaderName,
    /// Tenant header of `/v1/authz`, when configured.
    pub tenant_header: Option<axum::http::HeaderName>,
    /// Path prefixes to actions, first match wins.
    pub routes: Vec<RawRoute>,
}

/// A checked configuration.
#[derive(Debug, Clone)]
pub struct EnforceConfig {
    /// Everything as written.
    pub raw: RawEnforceConfig,
    /// HTTP listen address.
    pub http: SocketAddr,
    /// Threads serving HTTP, at least 1.
    pub http_threads: usize,
    /// Policy file, the default policy when absent.
    pub policy: Option<PathBuf>,
    /// How requests are read.
    pub requests: RequestConfig,
}

impl EnforceConfig {
    /// librdkafka properties of the consumer: the enforcement point's
    /// defaults, then `kafka.properties`, then the ones it owns.
    pub fn consumer_properties(&self) -> BTreeMap<String, String> {
        let mut p = BTreeMap::new();
        // nisshi (and any broker) answers a fetch that finds nothing after
        // at most this wait; librdkafka's 500 ms default would add up to
        // half a second before a new record is seen on a broker that polls
        // its storage (see BENCHMARKS.md, "Latency at a steady rate").
        // 20 ms keeps propagation well under 100 ms at 50 idle fetches a
        // second per broker.
        p.insert("fetch.wait.max.ms".to_owned(), "20".to_owned());
        p.extend(self.raw.kafka.properties.clone());
        p.insert(
            "bootstrap.servers".to_owned(),
            self.raw.kafka.brokers.clone(),
        );
        p.insert("group.id".to_owned(), self.raw.kafka.group_id.clone());
        p.insert("enable.auto.commit".to_owned(), "false".to_owned());
        p.insert("enable.auto.offset.store".to_owned(), "false".to_owned());
        p.insert("auto.offset.reset".to_owned(), "earliest".to_owned());
        p.insert("enable.partition.eof".to_owned(), "true".to_owned());
        p
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail closures return its error
mod tests {
    use super::*;

    #[test]
    fn defaults_build_and_fail_closed_for_critical() {
        let c = RawEnforceConfig::default().build().unwrap();
        assert_eq!(c.raw.topics.risk, "session-risk");
        assert_eq!(c.requests.unknown_session.critical, Decision::Deny);
        assert_eq!(c.requests.unknown_session.high, Decision::StepUp);
        assert_eq!(c.requests.unknown_session.low, Decision::Allow);
        assert_eq!(c.requests.session_header.as_str(), "x-session-id");
        let p = c.consumer_properties();
        assert_eq!(p["enable.auto.commit"], "false");
        assert_eq!(p["group.id"], "riskstream-enforce");
    }

    #[test]
    fn documented_example_holds_every_default() {
        let text = crate::layered_config::assert_example_holds_every_default(
            "docs/enforce.toml",
            |path| RawEnforceConfig::load(Some(path), &Overrides::default()),
        );
        // The example route in the comments parses as a route.
        assert!(text.contains("# [[enforce.routes]]"));
    }

    #[test]
    fn file_env_and_flags_in_order() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "e.toml",
                r#"
                [kafka]
                brokers = "file:9092"
                group_id = "from-file"
                [kafka.properties]
                "security.protocol" = "SASL_SSL"
                [enforce]
                default_class = "medium"
                [enforce.unknown_session]
                high = "deny"
                [[enforce.routes]]
                prefix = "/export"
                action = "data.export"
                "#,
            )?;
            jail.set_env("RISKSTREAM_ENFORCE_KAFKA__GROUP_ID", "from-env");
            jail.set_env("RISKSTREAM_KAFKA__GROUP_ID", "not-mine");
            let overrides = Overrides {
                brokers: Some("flag:9092".to_owned()),
                ..Overrides::default()
            };
            let c = RawEnforceConfig::load(Some(Path::new("e.toml")), &overrides)
                .unwrap()
                .build()
                .unwrap();
            assert_eq!(c.raw.kafka.brokers, "flag:9092");
            assert_eq!(c.raw.kafka.group_id, "from-env");
            assert_eq!(c.requests.default_class, Sensitivity::Medium);
            assert_eq!(c.requests.unknown_session.high, Decision::Deny);
            assert_eq!(c.requests.unknown_session.critical, Decision::Deny);
            assert_eq!(c.requests.routes[0].action, "data.export");
            assert_eq!(c.consumer_properties()["security.protocol"], "SASL_SSL");
            Ok(())
        });
    }

    #[test]
    fn errors_name_the_value() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("bad.toml", "[enforce]\nsession_heder = \"X\"\n")?;
            let e = RawEnforceConfig::load(Some(Path::new("bad.toml")), &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(e.contains("session_heder"), "{e}");
            Ok(())
        });
        let mut raw = RawEnforceConfig::default();
        raw.enforce.unknown_session.critical = "maybe".to_owned();
        let e = raw.build().unwrap_err().to_string();
        assert!(
            e.contains("enforce.unknown_session.critical") && e.contains("maybe"),
            "{e}"
        );
        let mut raw = RawEnforceConfig::default();
        raw.enforce.routes.push(RawRoute {
            prefix: "export".to_owned(),
            action: "data.export".to_owned(),
        });
        let e = raw.build().unwrap_err().to_string();
        assert!(e.contains("routes[0].prefix"), "{e}");
        let mut raw = RawEnforceConfig::default();
        raw.kafka
            .properties
            .insert("enable.auto.commit".to_owned(), "true".to_owned());
        assert!(
            raw.build()
                .unwrap_err()
                .to_string()
                .contains("enable.auto.commit")
        );
        let mut raw = RawEnforceConfig::default();
        raw.http.threads = 0;
        let e = raw.build().unwrap_err().to_string();
        assert!(e.contains("http.threads") && e.contains('0'), "{e}");
    }
}
