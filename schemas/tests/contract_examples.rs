//! The examples of CONTRACT.md validate against the JSON Schemas, hand-made
//! variants of them show which rules the schemas enforce, and the parser
//! agrees with the event schema on every variant: whatever it accepts
//! validates, whatever the schema rejects it rejects too, for the reason the
//! contract names.

// Tests panic on purpose when something is wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use riskstream_schemas::{ParseLimits, RejectReason, RiskRecord, parse_event};
use serde_json::{Value, json};

/// The input event example of CONTRACT.md; the `...` of its User-Agent is
/// filled in.
const EVENT_EXAMPLE: &str = r#"{
  "schema": "riskstream.event.v1",
  "kind": "auth",
  "id": "evt-0001",
  "time": "2026-11-30T10:15:02.123Z",
  "tenant": "acme",
  "principal": { "id": "u-42", "type": "human", "role": "finance" },
  "session": "s-9f2",
  "type": "login.success",
  "context": {
    "ip": "81.2.69.142",
    "user_agent": "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "device_id": "d-7",
    "device_trust": "managed"
  },
  "auth": { "aal": 2, "acr": "urn:acme:mfa", "amr": ["pwd", "otp"] },
  "labels": { "attack": false }
}"#;

/// The risk record example of CONTRACT.md; the `...` of its policy hash is
/// filled in with the SHA-256 of the empty string.
const RECORD_EXAMPLE: &str = r#"{
  "schema": "riskstream.risk.v1",
  "tenant": "acme",
  "principal": { "id": "u-42", "type": "human" },
  "session": "s-9f2",
  "seq": 17,
  "time": "2026-11-30T10:15:02.123Z",
  "trigger": { "event_id": "evt-0001", "kind": "action", "name": "data.export", "sensitivity": "high" },
  "score": 83,
  "level": "high",
  "decision": "step_up",
  "step_up": { "method": "mfa", "acr_values": "urn:acme:phishing-resistant", "max_age": 300 },
  "decisions": { "low": "allow", "medium": "allow", "high": "step_up", "critical": "deny" },
  "assurance": { "aal": 1, "last_strong_auth": "2026-11-30T08:01:00Z" },
  "signals": [
    { "detector": "geo_velocity", "code": "impossible_travel", "weight": 0.71,
      "evidence": { "from": "London, GB", "to": "Changchun, CN", "km": 8100, "minutes": 42, "kmh": 11571 } }
  ],
  "model": { "version": "riskstream 0.1.0", "policy": "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" }
}"#;

fn event_example() -> Value {
    serde_json::from_str(EVENT_EXAMPLE).unwrap()
}

fn record_example() -> Value {
    serde_json::from_str(RECORD_EXAMPLE).unwrap()
}

/// Sets the value at a JSON pointer whose parent exists.
fn set(v: &mut Value, pointer: &str, new: Value) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let parent = v
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("no {parent} for {pointer}"));
    match parent {
        Value::Object(map) => {
            map.insert(key.to_owned(), new);
        }
        Value::Array(items) => items[key.parse::<usize>().unwrap()] = new,
        _ => panic!("{pointer}: parent is neither object nor array"),
    }
}

/// Removes the member at a JSON pointer, which must exist.
fn remove(v: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let removed = v
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .and_then(|m| m.remove(key));
    assert!(removed.is_some(), "nothing to remove at {pointer}");
}

/// Turns the auth example into an action event.
fn to_action(v: &mut Value) {
    set(v, "/kind", json!("action"));
    remove(v, "/type");
    set(v, "/action", json!("data.export"));
}

type Edit = fn(&mut Value);

/// Variants of the event example, and what the contract says of each: `None`
/// for a valid event, or the reason it is rejected with.
fn event_cases() -> Vec<(&'static str, Edit, Option<RejectReason>)> {
    use RejectReason::*;
    vec![
        // Valid.
        ("contract example", |_| {}, None),
        (
            "action event",
            |v| {
                to_action(v);
                set(v, "/resource", json!("reports/q3"));
                set(
                    v,
                    "/attributes",
                    json!({"rows": 120000, "amount": 9800.5, "format": "csv"}),
                );
            },
            None,
        ),
        (
            "workload with ipv6 and text asn",
            |v| {
                set(v, "/principal/type", json!("workload"));
                set(
                    v,
                    "/context",
                    json!({"ip": "2001:db8::1", "asn": "AS64500"}),
                );
            },
            None,
        ),
        (
            "lower-case text asn",
            |v| set(v, "/context/asn", json!("as64500")),
            None,
        ),
        (
            "bare-digit text asn",
            |v| set(v, "/context/asn", json!("64500")),
            None,
        ),
        (
            "numeric asn",
            |v| set(v, "/context/asn", json!(64500)),
            None,
        ),
        (
            "ipv4-mapped ipv6",
            |v| set(v, "/context/ip", json!("::ffff:81.2.69.142")),
            None,
        ),
        (
            "agent principal",
            |v| set(v, "/principal/type", json!("agent")),
            None,
        ),
        (
            "only required fields",
            |v| {
                *v = json!({
                    "schema": "riskstream.event.v1", "kind": "auth", "id": "e", "time": "2026-11-30T10:15:02Z",
                    "principal": {"id": "u"}, "session": "s", "type": "logout"
                });
            },
            None,
        ),
        (
            "time with +05:30 offset",
            |v| set(v, "/time", json!("2026-11-30T15:45:02.123+05:30")),
            None,
        ),
        (
            "time with -00:00 offset",
            |v| set(v, "/time", json!("2026-11-30T10:15:02-00:00")),
            None,
        ),
        (
            "time with lower-case t and z",
            |v| set(v, "/time", json!("2026-11-30t10:15:02z")),
            None,
        ),
        (
            "time with nine fraction digits",
            |v| set(v, "/time", json!("2026-11-30T10:15:02.123456789Z")),
            None,
        ),
        (
            "time before 1970",
            |v| set(v, "/time", json!("1969-07-20T20:17:40.9995Z")),
            None,
        ),
        (
            "time in year 0000",
            |v| set(v, "/time", json!("0000-01-01T00:00:00Z")),
            None,
        ),
        (
            "time in year 9999",
            |v| set(v, "/time", json!("9999-12-31T23:59:59.999Z")),
            None,
        ),
        (
            "leap second",
            |v| set(v, "/time", json!("2016-12-31T23:59:60Z")),
            None,
        ),
        (
            "29 February of a leap year",
            |v| set(v, "/time", json!("2024-02-29T12:00:00Z")),
            None,
        ),
        (
            "null optional fields",
            |v| {
                for p in [
                    "/tenant",
                    "/principal/type",
                    "/principal/role",
                    "/resource",
                    "/attributes",
                    "/context/ip",
                    "/context/user_agent",
                    "/context/device_id",
                    "/context/device_trust",
                    "/context/asn",
                    "/auth/aal",
                    "/auth/acr",
                    "/auth/amr",
                    "/labels",
                ] {
                    set(v, p, Value::Null);
                }
            },
            None,
        ),
        (
            "null objects",
            |v| {
                set(v, "/context", Value::Null);
                set(v, "/auth", Value::Null);
            },
            None,
        ),
        (
            "empty optional strings",
            |v| {
                for p in [
                    "/tenant",
                    "/principal/role",
                    "/resource",
                    "/context/ip",
                    "/context/user_agent",
                    "/context/device_id",
                    "/auth/acr",
                ] {
                    set(v, p, json!(""));
                }
            },
            None,
        ),
        (
            "empty objects and amr",
            |v| {
                set(v, "/context", json!({}));
                set(v, "/auth", json!({"amr": []}));
                set(v, "/attributes", json!({}));
                set(v, "/labels", json!({}));
            },
            None,
        ),
        (
            "added fields at every level",
            |v| {
                set(v, "/x_trace", json!({"id": 7}));
                set(v, "/principal/email", json!("u42@acme.example"));
                set(v, "/context/geo", json!({"country": "GB"}));
                set(v, "/auth/x_level", json!(true));
                set(v, "/labels/step", json!(3));
            },
            None,
        ),
        (
            "attributes of every JSON type",
            |v| {
                set(
                    v,
                    "/attributes",
                    json!({"n": -1.5e300, "s": "x", "b": true, "z": null, "a": [1], "o": {"k": 1}}),
                );
            },
            None,
        ),
        (
            "scenario label",
            |v| set(v, "/labels", json!({"attack": true, "scenario": "aitm"})),
            None,
        ),
        (
            "auth event carrying an action is read as auth",
            |v| set(v, "/action", json!("data.export")),
            None,
        ),
        (
            "action event carrying a type is read as action",
            |v| {
                to_action(v);
                set(v, "/type", json!("not.an.auth.type"));
            },
            None,
        ),
        (
            "unicode ids",
            |v| {
                set(v, "/id", json!("évènement-😀"));
                set(v, "/principal/id", json!("ユーザー"));
                set(v, "/session", json!("s\u{0}\n\"\\"));
            },
            None,
        ),
        ("aal 1", |v| set(v, "/auth/aal", json!(1)), None),
        ("aal 3", |v| set(v, "/auth/aal", json!(3)), None),
        // Not an event at all.
        // serde reads a struct from an array of its fields in declaration order
        // unless told not to: these arrays have exactly the parser's fields.
        (
            "array instead of object",
            |v| {
                *v = json!(["riskstream.event.v1", "auth", "evt-0001", "2026-11-30T10:15:02.123Z", "acme",
                        {"id": "u-42"}, "s-9f2", "login.success", null, null, null, null, null, null]);
            },
            Some(NotJson),
        ),
        (
            "string instead of object",
            |v| *v = json!("riskstream.event.v1"),
            Some(NotJson),
        ),
        // Required fields.
        (
            "missing schema",
            |v| remove(v, "/schema"),
            Some(MissingField),
        ),
        (
            "other schema",
            |v| set(v, "/schema", json!("riskstream.event.v2")),
            Some(UnknownSchema),
        ),
        ("missing kind", |v| remove(v, "/kind"), Some(MissingField)),
        (
            "unknown kind",
            |v| set(v, "/kind", json!("audit")),
            Some(UnknownKind),
        ),
        (
            "upper-case kind",
            |v| set(v, "/kind", json!("AUTH")),
            Some(UnknownKind),
        ),
        ("missing id", |v| remove(v, "/id"), Some(MissingField)),
        ("empty id", |v| set(v, "/id", json!("")), Some(MissingField)),
        (
            "null id",
            |v| set(v, "/id", Value::Null),
            Some(MissingField),
        ),
        (
            "numeric id",
            |v| set(v, "/id", json!(1)),
            Some(InvalidField),
        ),
        ("missing time", |v| remove(v, "/time"), Some(MissingField)),
        (
            "missing principal",
            |v| remove(v, "/principal"),
            Some(MissingField),
        ),
        (
            "principal without id",
            |v| remove(v, "/principal/id"),
            Some(MissingField),
        ),
        (
            "principal with empty id",
            |v| set(v, "/principal/id", json!("")),
            Some(MissingField),
        ),
        (
            "principal as array",
            |v| set(v, "/principal", json!(["u-42", "human", "finance"])),
            Some(InvalidField),
        ),
        (
            "principal as string",
            |v| set(v, "/principal", json!("u-42")),
            Some(InvalidField),
        ),
        (
            "missing session",
            |v| remove(v, "/session"),
            Some(MissingField),
        ),
        (
            "empty session",
            |v| set(v, "/session", json!("")),
            Some(MissingField),
        ),
        // Kind-specific fields.
        (
            "auth event without type",
            |v| remove(v, "/type"),
            Some(MissingField),
        ),
        (
            "auth event with null type",
            |v| set(v, "/type", Value::Null),
            Some(MissingField),
        ),
        (
            "auth event with unknown type",
            |v| set(v, "/type", json!("login.maybe")),
            Some(UnknownType),
        ),
        (
            "auth event with an action name as type",
            |v| set(v, "/type", json!("data.export")),
            Some(UnknownType),
        ),
        (
            "action event without action",
            |v| {
                to_action(v);
                remove(v, "/action");
            },
            Some(MissingField),
        ),
        (
            "action event with empty action",
            |v| {
                to_action(v);
                set(v, "/action", json!(""));
            },
            Some(MissingField),
        ),
        (
            "action event with numeric action",
            |v| {
                to_action(v);
                set(v, "/action", json!(7));
            },
            Some(InvalidField),
        ),
        // Time.
        (
            "time without offset",
            |v| set(v, "/time", json!("2026-11-30T10:15:02.123")),
            Some(UnparsableTime),
        ),
        (
            "time as a date only",
            |v| set(v, "/time", json!("2026-11-30")),
            Some(UnparsableTime),
        ),
        (
            "time in another format",
            |v| set(v, "/time", json!("30/11/2026 10:15")),
            Some(UnparsableTime),
        ),
        (
            "time as epoch number",
            |v| set(v, "/time", json!(1_795_947_302)),
            Some(InvalidField),
        ),
        (
            "time with space separator",
            |v| set(v, "/time", json!("2026-11-30 10:15:02Z")),
            Some(UnparsableTime),
        ),
        (
            "time with offset +24:00",
            |v| set(v, "/time", json!("2026-11-30T10:15:02+24:00")),
            Some(UnparsableTime),
        ),
        (
            "time with offset without colon",
            |v| set(v, "/time", json!("2026-11-30T10:15:02+0100")),
            Some(UnparsableTime),
        ),
        (
            "time at hour 24",
            |v| set(v, "/time", json!("2026-11-30T24:00:00Z")),
            Some(UnparsableTime),
        ),
        (
            "time on 30 February",
            |v| set(v, "/time", json!("2026-02-30T10:15:02Z")),
            Some(UnparsableTime),
        ),
        (
            "time on 29 February of a common year",
            |v| set(v, "/time", json!("2026-02-29T10:15:02Z")),
            Some(UnparsableTime),
        ),
        (
            "time with five-digit year",
            |v| set(v, "/time", json!("10000-01-01T00:00:00Z")),
            Some(UnparsableTime),
        ),
        (
            "time with negative year",
            |v| set(v, "/time", json!("-0001-01-01T00:00:00Z")),
            Some(UnparsableTime),
        ),
        (
            "time with empty fraction",
            |v| set(v, "/time", json!("2026-11-30T10:15:02.Z")),
            Some(UnparsableTime),
        ),
        (
            "leap second not at the end of a UTC day",
            |v| set(v, "/time", json!("2016-12-31T12:59:60Z")),
            Some(UnparsableTime),
        ),
        // Optional fields with wrong values.
        (
            "unknown principal type",
            |v| set(v, "/principal/type", json!("robot")),
            Some(InvalidField),
        ),
        (
            "empty principal type",
            |v| set(v, "/principal/type", json!("")),
            Some(InvalidField),
        ),
        (
            "numeric tenant",
            |v| set(v, "/tenant", json!(42)),
            Some(InvalidField),
        ),
        (
            "numeric role",
            |v| set(v, "/principal/role", json!(42)),
            Some(InvalidField),
        ),
        (
            "aal 4",
            |v| set(v, "/auth/aal", json!(4)),
            Some(InvalidField),
        ),
        (
            "aal 0",
            |v| set(v, "/auth/aal", json!(0)),
            Some(InvalidField),
        ),
        (
            "aal -1",
            |v| set(v, "/auth/aal", json!(-1)),
            Some(InvalidField),
        ),
        (
            "aal as text",
            |v| set(v, "/auth/aal", json!("2")),
            Some(InvalidField),
        ),
        (
            "aal 2.5",
            |v| set(v, "/auth/aal", json!(2.5)),
            Some(InvalidField),
        ),
        (
            "amr as string",
            |v| set(v, "/auth/amr", json!("pwd otp")),
            Some(InvalidField),
        ),
        (
            "amr with a number",
            |v| set(v, "/auth/amr", json!(["pwd", 2])),
            Some(InvalidField),
        ),
        (
            "auth as array",
            |v| set(v, "/auth", json!([2, "urn:acme:mfa", ["pwd"]])),
            Some(InvalidField),
        ),
        (
            "unknown device trust",
            |v| set(v, "/context/device_trust", json!("trusted")),
            Some(InvalidField),
        ),
        (
            "truncated ipv4",
            |v| set(v, "/context/ip", json!("81.2.69")),
            Some(InvalidField),
        ),
        (
            "ipv4 with leading zero",
            |v| set(v, "/context/ip", json!("081.2.69.142")),
            Some(InvalidField),
        ),
        (
            "ipv6 with zone id",
            |v| set(v, "/context/ip", json!("fe80::1%eth0")),
            Some(InvalidField),
        ),
        (
            "ip with port",
            |v| set(v, "/context/ip", json!("81.2.69.142:443")),
            Some(InvalidField),
        ),
        (
            "host name as ip",
            |v| set(v, "/context/ip", json!("example.com")),
            Some(InvalidField),
        ),
        (
            "numeric ip",
            |v| set(v, "/context/ip", json!(1_359_103_374)),
            Some(InvalidField),
        ),
        (
            "negative asn",
            |v| set(v, "/context/asn", json!(-1)),
            Some(InvalidField),
        ),
        (
            "asn above 32 bits",
            |v| set(v, "/context/asn", json!(4_294_967_296_u64)),
            Some(InvalidField),
        ),
        (
            "asn text with a sign",
            |v| set(v, "/context/asn", json!("+64500")),
            Some(InvalidField),
        ),
        (
            "asn text with a name",
            |v| set(v, "/context/asn", json!("AS64500 Example")),
            Some(InvalidField),
        ),
        (
            "empty asn text",
            |v| set(v, "/context/asn", json!("")),
            Some(InvalidField),
        ),
        (
            "context as string",
            |v| set(v, "/context", json!("81.2.69.142")),
            Some(InvalidField),
        ),
        (
            "context as array",
            |v| {
                set(
                    v,
                    "/context",
                    json!(["81.2.69.142", "curl/8", "d-7", "managed", 64500]),
                )
            },
            Some(InvalidField),
        ),
        (
            "attributes as array",
            |v| set(v, "/attributes", json!([1, 2])),
            Some(InvalidField),
        ),
        (
            "numeric resource",
            |v| set(v, "/resource", json!(7)),
            Some(InvalidField),
        ),
        (
            "labels as string",
            |v| set(v, "/labels", json!("attack")),
            Some(InvalidField),
        ),
        (
            "attack label as text",
            |v| set(v, "/labels/attack", json!("yes")),
            Some(InvalidField),
        ),
        (
            "null attack label",
            |v| set(v, "/labels/attack", Value::Null),
            Some(InvalidField),
        ),
        (
            "numeric scenario label",
            |v| set(v, "/labels/scenario", json!(3)),
            Some(InvalidField),
        ),
    ]
}

/// Variants of the record example, and whether the schema accepts each.
fn record_cases() -> Vec<(&'static str, Edit, bool)> {
    vec![
        ("contract example", |_| {}, true),
        (
            "no step_up",
            |v| {
                remove(v, "/step_up");
                set(v, "/decision", json!("allow"));
            },
            true,
        ),
        (
            "jit credential",
            |v| {
                set(
                    v,
                    "/step_up",
                    json!({"method": "jit_credential", "scope": "repo:read", "ttl": 900}),
                )
            },
            true,
        ),
        (
            "approval",
            |v| set(v, "/step_up", json!({"method": "approval", "ttl": 600})),
            true,
        ),
        (
            "no assurance in the session",
            |v| set(v, "/assurance", json!({"aal": 0})),
            true,
        ),
        ("no signals", |v| set(v, "/signals", json!([])), true),
        (
            "negative weight and empty evidence",
            |v| {
                set(v, "/signals/0/weight", json!(-1.2));
                set(v, "/signals/0/evidence", json!({}));
            },
            true,
        ),
        ("score 0", |v| set(v, "/score", json!(0)), true),
        ("score 100", |v| set(v, "/score", json!(100)), true),
        (
            "added fields",
            |v| {
                set(v, "/x_region", json!("eu"));
                set(v, "/trigger/resource", json!("reports/q3"));
                set(v, "/signals/0/confidence", json!(0.9));
            },
            true,
        ),
        (
            "time with offset",
            |v| set(v, "/time", json!("2026-11-30T11:15:02+01:00")),
            true,
        ),
        ("missing schema", |v| remove(v, "/schema"), false),
        (
            "event schema",
            |v| set(v, "/schema", json!("riskstream.event.v1")),
            false,
        ),
        ("missing tenant", |v| remove(v, "/tenant"), false),
        (
            "principal without type",
            |v| remove(v, "/principal/type"),
            false,
        ),
        (
            "unknown principal type",
            |v| set(v, "/principal/type", json!("robot")),
            false,
        ),
        ("missing session", |v| remove(v, "/session"), false),
        ("seq 0", |v| set(v, "/seq", json!(0)), false),
        ("seq as text", |v| set(v, "/seq", json!("17")), false),
        (
            "time without offset",
            |v| set(v, "/time", json!("2026-11-30T10:15:02.123")),
            false,
        ),
        (
            "trigger without event id",
            |v| remove(v, "/trigger/event_id"),
            false,
        ),
        (
            "unknown trigger kind",
            |v| set(v, "/trigger/kind", json!("audit")),
            false,
        ),
        (
            "trigger without name",
            |v| remove(v, "/trigger/name"),
            false,
        ),
        (
            "unknown sensitivity",
            |v| set(v, "/trigger/sensitivity", json!("extreme")),
            false,
        ),
        ("score 101", |v| set(v, "/score", json!(101)), false),
        ("score -1", |v| set(v, "/score", json!(-1)), false),
        ("score 83.5", |v| set(v, "/score", json!(83.5)), false),
        ("score as text", |v| set(v, "/score", json!("83")), false),
        (
            "unknown level",
            |v| set(v, "/level", json!("severe")),
            false,
        ),
        (
            "unknown decision",
            |v| set(v, "/decision", json!("block")),
            false,
        ),
        ("missing decision", |v| remove(v, "/decision"), false),
        (
            "step_up without method",
            |v| remove(v, "/step_up/method"),
            false,
        ),
        (
            "unknown step_up method",
            |v| set(v, "/step_up/method", json!("sms")),
            false,
        ),
        (
            "negative max_age",
            |v| set(v, "/step_up/max_age", json!(-1)),
            false,
        ),
        (
            "max_age as text",
            |v| set(v, "/step_up/max_age", json!("300")),
            false,
        ),
        (
            "acr_values as array",
            |v| {
                set(
                    v,
                    "/step_up/acr_values",
                    json!(["urn:acme:phishing-resistant"]),
                )
            },
            false,
        ),
        ("null step_up", |v| set(v, "/step_up", Value::Null), false),
        (
            "decisions without critical",
            |v| remove(v, "/decisions/critical"),
            false,
        ),
        (
            "unknown decision for a class",
            |v| set(v, "/decisions/low", json!("maybe")),
            false,
        ),
        (
            "assurance without aal",
            |v| remove(v, "/assurance/aal"),
            false,
        ),
        ("aal 4", |v| set(v, "/assurance/aal", json!(4)), false),
        (
            "last_strong_auth not a time",
            |v| set(v, "/assurance/last_strong_auth", json!("08:01")),
            false,
        ),
        ("missing signals", |v| remove(v, "/signals"), false),
        (
            "signal without code",
            |v| remove(v, "/signals/0/code"),
            false,
        ),
        (
            "weight as text",
            |v| set(v, "/signals/0/weight", json!("0.71")),
            false,
        ),
        (
            "evidence as array",
            |v| set(v, "/signals/0/evidence", json!(["London", "Changchun"])),
            false,
        ),
        ("missing model", |v| remove(v, "/model"), false),
        (
            "placeholder policy",
            |v| set(v, "/model/policy", json!("sha256:...")),
            false,
        ),
        (
            "upper-case policy hash",
            |v| {
                set(
                    v,
                    "/model/policy",
                    json!(
                        "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
                    ),
                )
            },
            false,
        ),
        (
            "policy hash without prefix",
            |v| {
                set(
                    v,
                    "/model/policy",
                    json!("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
                )
            },
            false,
        ),
        (
            "short policy hash",
            |v| set(v, "/model/policy", json!("sha256:e3b0c442")),
            false,
        ),
    ]
}

#[test]
fn schemas_are_draft_2020_12_and_describe_every_field() {
    for (name, text) in [
        ("event", riskstream_schemas::EVENT_SCHEMA),
        ("risk", riskstream_schemas::RISK_SCHEMA),
    ] {
        let schema: Value = serde_json::from_str(text).unwrap();
        if let Err(e) = jsonschema::draft202012::meta::validate(&schema) {
            panic!("{name} schema is not a valid draft 2020-12 schema: {e}");
        }
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        let mut undescribed = Vec::new();
        find_undescribed(&schema, "", &mut undescribed);
        assert!(
            undescribed.is_empty(),
            "{name} schema: no description at {undescribed:?}"
        );
    }
}

/// Collects the paths of the properties (at any depth, including array
/// items) that have no `description`.
fn find_undescribed(schema: &Value, path: &str, out: &mut Vec<String>) {
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (key, sub) in props {
            let path = format!("{path}/{key}");
            if sub.get("description").is_none() {
                out.push(path.clone());
            }
            find_undescribed(sub, &path, out);
        }
    }
    if let Some(items) = schema.get("items") {
        find_undescribed(items, &format!("{path}/[]"), out);
    }
}

#[test]
fn contract_event_example_validates_and_parses() {
    let validator = common::event_validator();
    let example = event_example();
    assert_eq!(common::errors(&validator, &example), Vec::<String>::new());
    let event = parse_event(EVENT_EXAMPLE.as_bytes(), ParseLimits::default()).unwrap();
    assert_eq!(event.id, "evt-0001");
    assert_eq!(event.context.ip, Some("81.2.69.142".parse().unwrap()));
    // The parser's serialisation is the same object: nothing lost or added.
    assert_eq!(serde_json::to_value(&event).unwrap(), example);
}

#[test]
fn contract_record_example_validates_and_reads() {
    let validator = common::risk_validator();
    let example = record_example();
    assert_eq!(common::errors(&validator, &example), Vec::<String>::new());
    let record: RiskRecord = serde_json::from_value(example).unwrap();
    assert_eq!(record.seq, 17);
    let written = serde_json::to_value(&record).unwrap();
    assert_eq!(common::errors(&validator, &written), Vec::<String>::new());
    // The Rust form writes times with milliseconds; otherwise it is the example.
    assert_eq!(
        written["assurance"]["last_strong_auth"],
        "2026-11-30T08:01:00.000Z"
    );
    let mut expected = record_example();
    set(
        &mut expected,
        "/assurance/last_strong_auth",
        json!("2026-11-30T08:01:00.000Z"),
    );
    assert_eq!(written, expected);
}

#[test]
fn schema_and_parser_agree_on_event_variants() {
    let validator = common::event_validator();
    let mut disagreements = Vec::new();
    let cases = event_cases();
    for (name, edit, expected) in &cases {
        let mut v = event_example();
        edit(&mut v);
        let bytes = serde_json::to_vec(&v).unwrap();
        let schema_errors = common::errors(&validator, &v);
        let parsed = parse_event(&bytes, ParseLimits::default());
        match (expected, &parsed) {
            (None, Ok(event)) => {
                if !schema_errors.is_empty() {
                    disagreements.push(format!(
                        "{name}: parser accepts, schema rejects: {schema_errors:?}"
                    ));
                }
                // What the parser made of it is valid too.
                let normalised = serde_json::to_value(event).unwrap();
                let errors = common::errors(&validator, &normalised);
                if !errors.is_empty() {
                    disagreements.push(format!(
                        "{name}: parsed event serialises invalid: {errors:?}"
                    ));
                }
            }
            (None, Err(r)) => {
                disagreements.push(format!("{name}: expected valid, parser rejects: {r}"))
            }
            (Some(reason), Err(r)) => {
                if r.reason != *reason {
                    disagreements.push(format!("{name}: expected {reason}, parser says {r}"));
                }
                if schema_errors.is_empty() {
                    disagreements.push(format!("{name}: parser rejects ({r}), schema accepts"));
                }
            }
            (Some(reason), Ok(_)) => {
                disagreements.push(format!("{name}: expected {reason}, parser accepts"))
            }
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    println!("{} event variants agree", cases.len());
}

#[test]
fn every_auth_type_of_the_contract_validates_and_parses() {
    let validator = common::event_validator();
    for t in riskstream_schemas::AuthType::ALL {
        let mut v = event_example();
        set(&mut v, "/type", json!(t.as_str()));
        assert_eq!(
            common::errors(&validator, &v),
            Vec::<String>::new(),
            "{t:?}"
        );
        let event = parse_event(&serde_json::to_vec(&v).unwrap(), ParseLimits::default()).unwrap();
        assert_eq!(event.auth_type(), Some(t));
    }
}

#[test]
fn record_schema_rules() {
    let validator = common::risk_validator();
    let mut wrong = Vec::new();
    let cases = record_cases();
    for (name, edit, valid) in &cases {
        let mut v = record_example();
        edit(&mut v);
        let errors = common::errors(&validator, &v);
        if errors.is_empty() != *valid {
            wrong.push(format!("{name}: expected valid={valid}, errors {errors:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    println!("{} record variants checked", cases.len());
}

/// The schema rejects an event the parser also rejects, but not for every
/// reason: the parser has limits JSON Schema does not express.
#[test]
fn parser_rejects_more_than_the_schema() {
    let validator = common::event_validator();
    // A duplicated key: JSON readers keep the last, serde refuses it.
    let text = EVENT_EXAMPLE.replacen(
        r#""id": "evt-0001","#,
        r#""id": "evt-0001", "id": "evt-0002","#,
        1,
    );
    let value: Value = serde_json::from_str(&text).unwrap();
    assert!(validator.is_valid(&value));
    assert!(parse_event(text.as_bytes(), ParseLimits::default()).is_err());
    // Larger than the limit.
    let mut big = event_example();
    set(&mut big, "/context/user_agent", json!("x".repeat(70_000)));
    assert!(validator.is_valid(&big));
    let bytes = serde_json::to_vec(&big).unwrap();
    assert_eq!(
        parse_event(&bytes, ParseLimits::default())
            .unwrap_err()
            .reason,
        RejectReason::TooLarge
    );
    // Integers written as floats, and text AS numbers above 32 bits.
    for (pointer, value) in [
        ("/auth/aal", json!(2.0)),
        ("/context/asn", json!("AS4294967296")),
    ] {
        let mut v = event_example();
        set(&mut v, pointer, value);
        assert!(validator.is_valid(&v), "{pointer}");
        let bytes = serde_json::to_vec(&v).unwrap();
        assert_eq!(
            parse_event(&bytes, ParseLimits::default())
                .unwrap_err()
                .reason,
            RejectReason::InvalidField,
            "{pointer}"
        );
    }
}
