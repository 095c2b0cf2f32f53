//! `riskstream replay --caep-output`: every token verifies with the public
//! key of the JWK set and follows the Shared Signals Framework 1.0 rules.

// Tests panic on purpose when something is wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use riskstream::caep::{
    ASSURANCE_LEVEL_CHANGE, CaepSigner, Jwks, RISK_LEVEL_CHANGE, SESSION_REVOKED, SET_TYPE,
};
use serde_json::Value;

const ISSUER: &str = "https://riskstream.example/caep";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("caep_{name}"));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Replays the small fixture with CAEP output signed by `key`; returns the
/// records and the tokens files' bytes.
fn replay(out: &Path, key: &str, kid: &str) -> (Vec<u8>, Vec<u8>) {
    let records = out.join("records.jsonl");
    let tokens = out.join("caep.jsonl");
    let status = Command::new(env!("CARGO_BIN_EXE_riskstream"))
        .arg("replay")
        .arg("--input")
        .arg(root().join("fixtures/small/events.jsonl"))
        .arg("--output")
        .arg(&records)
        .arg("--caep-output")
        .arg(&tokens)
        .arg("--caep-key")
        .arg(root().join("fixtures/caep").join(key))
        .args(["--caep-kid", kid, "--caep-issuer", ISSUER])
        .output()
        .expect("riskstream runs");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    (
        std::fs::read(records).expect("records"),
        std::fs::read(tokens).expect("tokens"),
    )
}

/// Verifies every token with the key from the JWK set and checks the SSF
/// rules; returns the count of each event type.
fn check_tokens(tokens: &[u8], key: &str, kid: &str, alg: Algorithm) -> HashMap<String, usize> {
    let pem = std::fs::read(root().join("fixtures/caep").join(key)).expect("key");
    let signer = CaepSigner::from_pem(&pem, kid, ISSUER).expect("signer");
    assert_eq!(signer.algorithm(), alg);
    let jwks = Jwks::new().with_signer(&signer).build();
    let jwks_json = serde_json::to_value(&jwks).expect("jwks json");
    let jwk_json = &jwks_json["keys"][0];
    assert_eq!(jwk_json["kid"], kid);
    assert_eq!(jwk_json["use"], "sig");
    assert_eq!(jwk_json["alg"], format!("{alg:?}"));
    if alg == Algorithm::ES256 {
        assert_eq!(jwk_json["kty"], "EC");
        assert_eq!(jwk_json["crv"], "P-256");
        assert!(jwk_json["x"].is_string() && jwk_json["y"].is_string());
        assert!(jwk_json.get("d").is_none(), "no private part in the JWKS");
    } else {
        assert_eq!(jwk_json["kty"], "RSA");
        assert!(jwk_json["n"].is_string() && jwk_json["e"].is_string());
    }
    // What a receiver does: parse the published set, find the key by kid.
    let published: jsonwebtoken::jwk::JwkSet =
        serde_json::from_value(jwks_json.clone()).expect("jwks parses");
    let text = std::str::from_utf8(tokens).expect("utf-8");
    let mut counts = HashMap::new();
    let mut jtis = HashSet::new();
    for token in text.lines() {
        let header = jsonwebtoken::decode_header(token).expect("header");
        assert_eq!(header.typ.as_deref(), Some(SET_TYPE));
        assert_eq!(header.alg, alg);
        let token_kid = header.kid.expect("kid");
        let jwk = published.find(&token_kid).expect("kid in the JWKS");
        let mut validation = Validation::new(alg);
        validation.required_spec_claims = ["iss".to_owned()].into();
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.set_issuer(&[ISSUER]);
        let data = jsonwebtoken::decode::<Value>(
            token,
            &DecodingKey::from_jwk(jwk).expect("key"),
            &validation,
        )
        .expect("token verifies");
        let c = data.claims;
        assert_eq!(c["iss"], ISSUER);
        assert!(
            jtis.insert(c["jti"].as_str().expect("jti").to_owned()),
            "jti unique"
        );
        let iat = c["iat"].as_i64().expect("iat");
        assert!(c["txn"].as_str().is_some_and(|t| !t.is_empty()), "txn");
        assert!(c.get("sub").is_none(), "no sub in a SET");
        let sub_id = &c["sub_id"];
        assert_eq!(sub_id["format"], "complex");
        for member in ["user", "session"] {
            assert_eq!(sub_id[member]["format"], "opaque", "{member}");
            assert!(sub_id[member]["id"].is_string(), "{member}");
        }
        let events = c["events"].as_object().expect("events");
        assert_eq!(events.len(), 1, "exactly one event");
        let (event_type, event) = events.iter().next().expect("one");
        assert_eq!(event["event_timestamp"].as_i64(), Some(iat));
        let levels = ["LOW", "MEDIUM", "HIGH"];
        match event_type.as_str() {
            RISK_LEVEL_CHANGE => {
                assert_eq!(event["principal"], "SESSION");
                let cur = event["current_level"].as_str().expect("current");
                let prev = event["previous_level"].as_str().expect("previous");
                assert!(levels.contains(&cur) && levels.contains(&prev));
                assert_ne!(cur, prev, "a change");
                assert!(event["risk_reason"].is_string());
            }
            ASSURANCE_LEVEL_CHANGE => {
                assert_eq!(event["namespace"], "NIST-AAL");
                assert!(
                    event["current_level"]
                        .as_str()
                        .is_some_and(|l| l.starts_with("nist-aal"))
                );
                assert_eq!(event["change_direction"], "increase");
            }
            SESSION_REVOKED => {
                assert!(event["reason_admin"]["en"].is_string());
            }
            other => panic!("unexpected event type {other}"),
        }
        *counts.entry(event_type.clone()).or_insert(0) += 1;
    }
    counts
}

#[test]
fn es256_tokens_verify_and_follow_the_ssf_rules() {
    let (records_a, tokens_a) = replay(&dir("es256_a"), "test-es256.pem", "test-es256");
    let counts = check_tokens(&tokens_a, "test-es256.pem", "test-es256", Algorithm::ES256);
    for event_type in [RISK_LEVEL_CHANGE, ASSURANCE_LEVEL_CHANGE, SESSION_REVOKED] {
        assert!(
            counts.get(event_type).copied().unwrap_or(0) > 0,
            "{event_type} occurs: {counts:?}"
        );
    }
    // The records are what they are without --caep-output.
    let golden = std::fs::read(root().join("fixtures/small/records.jsonl")).expect("golden");
    assert!(records_a == golden, "records unchanged by --caep-output");
    // Replay is byte-stable: deterministic jti, iat and signatures.
    let (_, tokens_b) = replay(&dir("es256_b"), "test-es256.pem", "test-es256");
    assert!(tokens_a == tokens_b, "tokens byte-identical across runs");
}

#[test]
fn rs256_tokens_verify() {
    let (_, tokens) = replay(&dir("rs256"), "test-rs256.pem", "test-rs256");
    let counts = check_tokens(&tokens, "test-rs256.pem", "test-rs256", Algorithm::RS256);
    assert!(counts.values().sum::<usize>() > 0);
}

#[test]
fn a_key_that_is_not_a_key_is_refused() {
    let err = CaepSigner::from_pem(b"not a pem", "k", ISSUER)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("neither an EC P-256 key"), "{err}");
}
