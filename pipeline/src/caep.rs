//! CAEP 1.0 Security Event Tokens from risk records.
//!
//! A [`CaepEmitter`] follows the stream of risk records session by session
//! and turns the changes a receiver must act on into Security Event Tokens
//! (RFC 8417) as the Shared Signals Framework 1.0 profiles them:
//!
//! - the session's `level` moved to another CAEP level (LOW, MEDIUM, HIGH;
//!   `critical` is HIGH) since its previous record: `risk-level-change`;
//! - the trigger was stepped up with multi-factor authentication (`mfa` with
//!   `acr_values`, so a human): `assurance-level-change` (namespace
//!   `NIST-AAL`);
//! - a critical trigger was denied: `session-revoked`.
//!
//! Each token is a JWS in compact form signed by a [`CaepSigner`] (ES256 with
//! an EC P-256 key or RS256 with an RSA key, PEM, and a configured `kid`);
//! [`Jwks`] publishes the public keys as a JWK set so that receivers can
//! verify. Nothing here reads a clock or a random source: `iat` and
//! `event_timestamp` are the record's event time, `jti` is a hash of the
//! session, the record's `seq` and the event type, and ES256 signatures are
//! deterministic (RFC 6979), so a replay gives the same bytes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use riskstream_schemas::{Decision, Level, RiskRecord, Sensitivity, StepUpMethod};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// CAEP `risk-level-change` event type.
pub const RISK_LEVEL_CHANGE: &str =
    "https://schemas.openid.net/secevent/caep/event-type/risk-level-change";
/// CAEP `assurance-level-change` event type.
pub const ASSURANCE_LEVEL_CHANGE: &str =
    "https://schemas.openid.net/secevent/caep/event-type/assurance-level-change";
/// CAEP `session-revoked` event type.
pub const SESSION_REVOKED: &str =
    "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
/// JWS `typ` of a Security Event Token (RFC 8417 section 2.3).
pub const SET_TYPE: &str = "secevent+jwt";

/// A failure to load a signing key or to sign a token.
#[derive(Debug, thiserror::Error)]
pub enum CaepError {
    /// The key file could not be read.
    #[error("cannot read CAEP key {path}: {source}")]
    ReadKey {
        /// The key file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The key is neither an EC P-256 nor an RSA private key in PEM.
    #[error("CAEP key {name} is neither an EC P-256 key (ES256) nor an RSA key (RS256): {detail}")]
    Key {
        /// The key file, or `pem` for bytes.
        name: String,
        /// What each attempt said.
        detail: String,
    },
    /// Signing a token failed.
    #[error("signing a CAEP security event token: {0}")]
    Sign(#[source] jsonwebtoken::errors::Error),
}

/// Where `riskstream replay --caep-output` writes tokens and how it signs
/// them.
#[derive(Clone, Debug)]
pub struct CaepOptions {
    /// Tokens, one per line, in record order; `-` is standard output.
    pub output: PathBuf,
    /// Private key, PEM: EC P-256 (PKCS#8 or SEC1) for ES256, RSA for RS256.
    pub key: PathBuf,
    /// `kid` of the key, in every token's header and in the JWK set.
    pub kid: String,
    /// `iss` of every token: the transmitter's issuer URL.
    pub issuer: String,
}

/// Signs Security Event Tokens with one key.
pub struct CaepSigner {
    key: EncodingKey,
    header: Header,
    issuer: String,
    /// The public key, built once at load (which also checks that an EC key
    /// is on P-256, as ES256 requires).
    jwk: Jwk,
}

impl CaepSigner {
    /// A signer from a PEM private key: ES256 for an EC P-256 key, RS256
    /// for an RSA key.
    pub fn from_pem(pem: &[u8], kid: &str, issuer: &str) -> Result<Self, CaepError> {
        Self::from_pem_named(pem, "pem", kid, issuer)
    }

    /// A signer from a PEM private key file (see [`CaepSigner::from_pem`]).
    pub fn from_pem_file(path: &Path, kid: &str, issuer: &str) -> Result<Self, CaepError> {
        let pem = std::fs::read(path).map_err(|source| CaepError::ReadKey {
            path: path.to_owned(),
            source,
        })?;
        Self::from_pem_named(&pem, &path.display().to_string(), kid, issuer)
    }

    fn from_pem_named(pem: &[u8], name: &str, kid: &str, issuer: &str) -> Result<Self, CaepError> {
        let attempt = |algorithm: Algorithm| {
            let key = match algorithm {
                Algorithm::ES256 => EncodingKey::from_ec_pem(pem)?,
                _ => EncodingKey::from_rsa_pem(pem)?,
            };
            let jwk = Jwk::from_encoding_key(&key, algorithm)?;
            Ok::<_, jsonwebtoken::errors::Error>((key, jwk, algorithm))
        };
        let (key, mut jwk, algorithm) = match attempt(Algorithm::ES256) {
            Ok(found) => found,
            Err(ec) => attempt(Algorithm::RS256).map_err(|rsa| CaepError::Key {
                name: name.to_owned(),
                detail: format!("as EC: {ec}; as RSA: {rsa}"),
            })?,
        };
        jwk.common.key_id = Some(kid.to_owned());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        let mut header = Header::new(algorithm);
        header.typ = Some(SET_TYPE.to_owned());
        header.kid = Some(kid.to_owned());
        Ok(CaepSigner {
            key,
            header,
            issuer: issuer.to_owned(),
            jwk,
        })
    }

    /// ES256 or RS256, from the key.
    pub fn algorithm(&self) -> Algorithm {
        self.header.alg
    }

    /// The configured `iss`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The public key as a JWK (`kty`, `crv`/`x`/`y` or `n`/`e`, `kid`,
    /// `use: "sig"`, `alg`).
    pub fn public_jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// Signs a claims set: JWS compact form, header `typ: secevent+jwt`,
    /// `alg` and `kid`.
    pub fn sign(&self, claims: &Value) -> Result<String, CaepError> {
        jsonwebtoken::encode(&self.header, claims, &self.key).map_err(CaepError::Sign)
    }
}

/// Builds the JWK set a transmitter publishes: the public keys receivers
/// verify tokens with.
#[derive(Clone, Debug, Default)]
pub struct Jwks {
    keys: Vec<Jwk>,
}

impl Jwks {
    /// An empty set.
    pub fn new() -> Self {
        Jwks::default()
    }

    /// Adds a signer's public key (during a key rotation, the old and the
    /// new key are both published).
    pub fn with_signer(mut self, signer: &CaepSigner) -> Self {
        self.keys.push(signer.public_jwk().clone());
        self
    }

    /// The set.
    pub fn build(self) -> JwkSet {
        JwkSet { keys: self.keys }
    }
}

/// A CAEP level: the three levels `risk-level-change` knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaepLevel {
    /// `low`.
    Low,
    /// `medium`.
    Medium,
    /// `high` and `critical`.
    High,
}

impl CaepLevel {
    /// The CAEP level of a risk level; CAEP has no level above HIGH.
    pub fn of(level: Level) -> Self {
        match level {
            Level::Low => CaepLevel::Low,
            Level::Medium => CaepLevel::Medium,
            Level::High | Level::Critical => CaepLevel::High,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            CaepLevel::Low => "LOW",
            CaepLevel::Medium => "MEDIUM",
            CaepLevel::High => "HIGH",
        }
    }
}

/// What the emitter remembers of a session's latest record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionMark {
    /// The record's `seq`.
    pub seq: u64,
    /// Its level, as CAEP names it.
    pub level: CaepLevel,
    /// Its `assurance.aal`.
    pub aal: u8,
}

impl From<riskstream_detectors::SessionView> for SessionMark {
    fn from(v: riskstream_detectors::SessionView) -> Self {
        SessionMark {
            seq: v.seq,
            level: CaepLevel::of(v.level),
            aal: v.aal,
        }
    }
}

/// The tokens `record` causes after a session's `previous` record (none for
/// the session's first record): what [`CaepEmitter::tokens`] does without
/// remembering sessions itself, for a caller that keeps the session state
/// elsewhere (the live pipeline reads it from the engine, so that it moves
/// with the partition). Nothing for a record whose `seq` is not above
/// `previous`'s (a re-emitted duplicate).
pub fn session_tokens(
    signer: &CaepSigner,
    previous: Option<&SessionMark>,
    record: &RiskRecord,
) -> Result<Vec<String>, CaepError> {
    if previous.is_some_and(|p| record.seq <= p.seq) {
        return Ok(Vec::new());
    }
    security_events(previous, record)
        .iter()
        .map(|event| signer.sign(&claims(signer, record, event)))
        .collect()
}

/// One CAEP event before it is wrapped in a token.
#[derive(Clone, Debug, PartialEq)]
pub struct SecurityEvent {
    /// The event type URI.
    pub event_type: &'static str,
    /// The event's claims (without `event_timestamp`, which the token adds).
    pub payload: Map<String, Value>,
}

/// Turns risk records into signed Security Event Tokens, remembering each
/// session's previous record.
///
/// State grows by one small entry per session seen (tenant and session id,
/// `seq`, level, aal); a replay holds every session of its input.
pub struct CaepEmitter {
    signer: CaepSigner,
    sessions: HashMap<(String, String), SessionMark>,
}

impl CaepEmitter {
    /// An emitter that signs with `signer`.
    pub fn new(signer: CaepSigner) -> Self {
        CaepEmitter {
            signer,
            sessions: HashMap::new(),
        }
    }

    /// The signer (for its JWK set).
    pub fn signer(&self) -> &CaepSigner {
        &self.signer
    }

    /// The tokens a record causes, in a fixed order (risk level, assurance,
    /// revocation); none for a record whose `seq` is not above the last one
    /// seen for its session (a re-emitted duplicate).
    pub fn tokens(&mut self, record: &RiskRecord) -> Result<Vec<String>, CaepError> {
        let key = (record.tenant.clone(), record.session.clone());
        let previous = self.sessions.get(&key).copied();
        if previous.is_some_and(|p| record.seq <= p.seq) {
            return Ok(Vec::new());
        }
        self.sessions.insert(
            key,
            SessionMark {
                seq: record.seq,
                level: CaepLevel::of(record.level),
                aal: record.assurance.aal,
            },
        );
        session_tokens(&self.signer, previous.as_ref(), record)
    }
}

/// The code of the signal with the largest weight (the first on a tie), or
/// `none` for a record without signals.
fn top_signal(record: &RiskRecord) -> &str {
    record
        .signals
        .iter()
        .fold(
            None,
            |best: Option<&riskstream_schemas::Signal>, s| match best {
                Some(b) if b.weight >= s.weight => Some(b),
                _ => Some(s),
            },
        )
        .map_or("none", |s| s.code.as_ref())
}

fn security_events(previous: Option<&SessionMark>, record: &RiskRecord) -> Vec<SecurityEvent> {
    let mut events = Vec::new();
    let current = CaepLevel::of(record.level);
    if let Some(prev) = previous
        && prev.level != current
    {
        let mut payload = Map::new();
        payload.insert("principal".into(), json!("SESSION"));
        payload.insert("current_level".into(), json!(current.as_str()));
        payload.insert("previous_level".into(), json!(prev.level.as_str()));
        payload.insert("risk_reason".into(), json!(top_signal(record)));
        events.push(SecurityEvent {
            event_type: RISK_LEVEL_CHANGE,
            payload,
        });
    }
    let mfa_step_up = record.decision == Decision::StepUp
        && record
            .step_up
            .as_ref()
            .is_some_and(|s| s.method == StepUpMethod::Mfa && s.acr_values.is_some());
    if mfa_step_up {
        let mut payload = Map::new();
        payload.insert("namespace".into(), json!("NIST-AAL"));
        payload.insert(
            "current_level".into(),
            json!(format!("nist-aal{}", record.assurance.aal)),
        );
        if let Some(prev) = previous {
            payload.insert(
                "previous_level".into(),
                json!(format!("nist-aal{}", prev.aal)),
            );
        }
        payload.insert("change_direction".into(), json!("increase"));
        events.push(SecurityEvent {
            event_type: ASSURANCE_LEVEL_CHANGE,
            payload,
        });
    }
    if record.decision == Decision::Deny && record.trigger.sensitivity == Sensitivity::Critical {
        let mut payload = Map::new();
        payload.insert("initiating_entity".into(), json!("policy"));
        payload.insert(
            "reason_admin".into(),
            json!({ "en": format!(
                "riskstream denied the critical action {} at risk level {} (score {}, top signal {})",
                record.trigger.name,
                record.level.as_str(),
                record.score,
                top_signal(record),
            ) }),
        );
        events.push(SecurityEvent {
            event_type: SESSION_REVOKED,
            payload,
        });
    }
    events
}

/// The claims set of one token: `iss`, `jti`, `iat`, `txn`, `sub_id` and
/// exactly one event.
fn claims(signer: &CaepSigner, record: &RiskRecord, event: &SecurityEvent) -> Value {
    // NumericDate: whole seconds of event time (floor, also before 1970).
    let seconds = record.time.millis().div_euclid(1000);
    let mut hash = Sha256::new();
    for part in [
        record.tenant.as_bytes(),
        record.session.as_bytes(),
        record.seq.to_string().as_bytes(),
        event.event_type.as_bytes(),
    ] {
        // Length-prefixed, so that no two different tuples hash alike.
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    let jti: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let mut payload = event.payload.clone();
    payload.insert("event_timestamp".into(), json!(seconds));
    json!({
        "iss": signer.issuer(),
        "jti": jti,
        "iat": seconds,
        "txn": record.trigger.event_id,
        "sub_id": {
            "format": "complex",
            "user": { "format": "opaque", "id": record.principal.id },
            "session": { "format": "opaque", "id": record.session },
            "tenant": { "format": "opaque", "id": record.tenant },
        },
        "events": { event.event_type: Value::Object(payload) },
    })
}
