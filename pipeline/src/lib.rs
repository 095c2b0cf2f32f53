//! The riskstream shell: everything that does I/O around the sans-IO engine
//! of `riskstream-detectors`.
//!
//! # Layout
//!
//! - [`replay`]: reads JSON Lines (plain or gzip), runs the engine, writes
//!   risk records (JSON Lines, or Parquet through [`parquet_out`]) and
//!   rejects, and summarises;
//! - [`caep`]: CAEP 1.0 Security Event Tokens (signed, with the JWK set)
//!   from the stream of risk records;
//! - [`evaluate`]: protection and friction of a replay against labels, with
//!   the `always`, `timer-15m` and `never` baselines;
//! - [`fit`]: the signal weights a labelled world supports (logistic
//!   regression), printed as TOML to study beside the policy's;
//! - [`sweep`]: the protection-versus-friction curve of a threshold on the
//!   records' score, as CSV and as a PNG plot;
//! - [`normalize`]: identity-provider records to contract events, through
//!   the adapters of `riskstream-adapters`;
//! - [`run`]: the live pipeline on Kafka (`riskstream run`): per-partition
//!   engines, state changelog, at-least-once delivery, HTTP metrics;
//! - `layered_config`: the configuration layering `run` and `enforce`
//!   share (defaults, TOML file, environment variables, flags) and
//!   [`ConfigError`](run::ConfigError);
//! - [`enforce`]: the enforcement point (`riskstream enforce`): the latest
//!   risk record per session from `session-risk`, decisions over HTTP and
//!   an nginx `auth_request` endpoint;
//! - `openmetrics`: the `/metrics` text of both services;
//! - `shutdown`: how both stop their Kafka thread on a shutdown request;
//! - [`demo`]: the Kafka path end to end on librdkafka's in-process mock
//!   cluster;
//! - [`fixtures`]: the labelled world generator and the fixture GeoIP
//!   databases built from `fixtures/geo/world.csv`.

pub mod caep;
pub mod demo;
pub mod enforce;
pub mod evaluate;
pub mod fit;
pub mod fixtures;
mod layered_config;
pub mod normalize;
mod openmetrics;
pub mod parquet_out;
pub mod replay;
pub mod run;
mod shutdown;
pub mod sweep;
