//! Round trips: any valid [`Event`] serialises to JSON that the parser reads
//! back to the same event and that validates against the event schema; any
//! [`RiskRecord`] serialises to JSON that serde reads back to the same record
//! and that validates against the risk schema.
//!
//! The generated events respect the parser's normalisation (it turns empty
//! optional strings into `None` and an absent tenant into `default`), so the
//! round trip can be exact: strings that must survive are never empty.
//! Times span everything RFC 3339 can write, years 0000 to 9999.
//!
//! Each property runs proptest's default number of cases; set
//! `PROPTEST_CASES` for a longer run.

// Tests panic on purpose when something is wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use jsonschema::Validator;
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use riskstream_schemas::{
    Action, Assurance, AssuranceState, AuthType, Context, Decision, Decisions, DeviceTrust, Event,
    EventBody, EventKind, Level, ModelInfo, ParseLimits, Principal, PrincipalType, RISK_SCHEMA_ID,
    RecordPrincipal, RiskRecord, Sensitivity, Signal, Source, StepUp, StepUpMethod, Timestamp,
    Trigger, parse_event,
};
use serde_json::{Map, Number, Value};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

static EVENT_VALIDATOR: LazyLock<Validator> = LazyLock::new(common::event_validator);
static RISK_VALIDATOR: LazyLock<Validator> = LazyLock::new(common::risk_validator);

/// Any string at all: unicode, quotes, backslashes, control characters, NUL.
fn any_text(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::string::string_regex(&format!("(?s).{{0,{max}}}")).unwrap(),
        // Mostly printable, to look like real ids now and then.
        proptest::string::string_regex(&format!("[a-z0-9:._-]{{0,{max}}}")).unwrap(),
    ]
}

/// A string the parser keeps as it is: not empty.
fn text(max: usize) -> impl Strategy<Value = String> {
    any_text(max).prop_filter("non-empty", |s| !s.is_empty())
}

/// Any instant RFC 3339 can write, with the edges and the epoch made likely.
fn timestamp() -> impl Strategy<Value = Timestamp> {
    prop_oneof![
        1 => select(vec![
            Timestamp::EARLIEST,
            Timestamp::LATEST,
            Timestamp(-1),
            Timestamp(0),
            Timestamp(1),
        ]),
        4 => (Timestamp::EARLIEST.0..=Timestamp::LATEST.0).prop_map(Timestamp),
        // 1900 to 2100, where real events are.
        4 => (-2_208_988_800_000_i64..4_102_444_800_000).prop_map(Timestamp),
    ]
}

fn finite_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |x| x.is_finite()),
        (-1e6..1e6_f64),
        Just(0.0),
        Just(-0.0),
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        finite_f64().prop_map(|x| Value::Number(Number::from_f64(x).unwrap())),
    ]
}

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        any_text(8).prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map(any_text(6), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn json_object() -> impl Strategy<Value = Map<String, Value>> {
    btree_map(any_text(8), json_value(), 0..5).prop_map(|m| m.into_iter().collect())
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<Ipv4Addr>().prop_map(IpAddr::V4),
        any::<Ipv6Addr>().prop_map(IpAddr::V6),
        any::<Ipv4Addr>().prop_map(|a| IpAddr::V6(a.to_ipv6_mapped())),
        select(vec![
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V4(Ipv4Addr::BROADCAST),
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ]),
    ]
}

fn principal_type() -> impl Strategy<Value = PrincipalType> {
    select(vec![
        PrincipalType::Human,
        PrincipalType::Workload,
        PrincipalType::Agent,
    ])
}

fn body() -> impl Strategy<Value = EventBody> {
    prop_oneof![
        select(AuthType::ALL.to_vec()).prop_map(EventBody::Auth),
        prop_oneof![
            proptest::string::string_regex("[a-z_]{1,8}(\\.[a-z_]{1,8}){0,3}").unwrap(),
            text(16),
        ]
        .prop_map(|name| EventBody::Action(Action { name })),
    ]
}

fn context() -> impl Strategy<Value = Context> {
    (
        option::of(ip()),
        option::of(text(32)),
        option::of(text(16)),
        option::of(select(vec![
            DeviceTrust::Managed,
            DeviceTrust::Known,
            DeviceTrust::Unknown,
        ])),
        option::of(any::<u32>()),
    )
        .prop_map(|(ip, user_agent, device_id, device_trust, asn)| Context {
            ip,
            user_agent,
            device_id,
            device_trust,
            asn,
        })
}

fn assurance() -> impl Strategy<Value = Assurance> {
    // amr values are kept as they are, empty ones included.
    (
        option::of(1..=3_u8),
        option::of(text(16)),
        vec(any_text(6), 0..4),
    )
        .prop_map(|(aal, acr, amr)| Assurance { aal, acr, amr })
}

/// Labels as fixtures carry them: `attack` a boolean and `scenario` a string
/// when present, anything else beside them.
fn labels() -> impl Strategy<Value = Value> {
    (
        option::of(any::<bool>()),
        option::of(any_text(12)),
        json_object(),
    )
        .prop_map(|(attack, scenario, mut rest)| {
            rest.remove("attack");
            rest.remove("scenario");
            if let Some(a) = attack {
                rest.insert("attack".to_owned(), Value::Bool(a));
            }
            if let Some(s) = scenario {
                rest.insert("scenario".to_owned(), Value::String(s));
            }
            Value::Object(rest)
        })
}

/// Attributes: numbers and strings, as the contract has them.
fn attributes() -> impl Strategy<Value = Map<String, Value>> {
    btree_map(
        any_text(8),
        prop_oneof![number(), any_text(12).prop_map(Value::String)],
        0..5,
    )
    .prop_map(|m| m.into_iter().collect())
}

/// The adapters' `source` extension.
fn source() -> impl Strategy<Value = Source> {
    (
        select(vec![
            "okta",
            "auth0",
            "entra",
            "keycloak",
            "cloudtrail",
            "google_workspace",
        ]),
        option::of(text(16)),
        option::of(text(16)),
        proptest::collection::vec(text(12), 0..3),
    )
        .prop_map(|(format, id, kind, missing)| Source {
            format: format.to_owned(),
            id,
            kind,
            missing,
        })
}

fn event() -> impl Strategy<Value = Event> {
    (
        (text(24), timestamp(), text(12)),
        (text(16), principal_type(), option::of(text(12))),
        (text(24), body(), option::of(text(24))),
        (
            option::of(attributes()),
            context(),
            option::of(assurance()),
            option::of(labels()),
            option::of(source()),
        ),
    )
        .prop_map(
            |(
                (id, time, tenant),
                (principal_id, kind, role),
                (session, body, resource),
                (attributes, context, auth, labels, source),
            )| Event {
                id,
                time,
                tenant,
                principal: Principal {
                    id: principal_id,
                    kind,
                    role,
                },
                session,
                body,
                resource,
                attributes,
                context,
                auth,
                labels,
                source,
            },
        )
}

fn sensitivity() -> impl Strategy<Value = Sensitivity> {
    select(Sensitivity::ALL.to_vec())
}

fn decision() -> impl Strategy<Value = Decision> {
    select(vec![Decision::Allow, Decision::StepUp, Decision::Deny])
}

fn step_up() -> impl Strategy<Value = StepUp> {
    (
        select(vec![
            StepUpMethod::Mfa,
            StepUpMethod::JitCredential,
            StepUpMethod::Approval,
        ]),
        option::of(any_text(32)),
        option::of(any::<u32>()),
        option::of(any_text(16)),
        option::of(any::<u32>()),
    )
        .prop_map(|(method, acr_values, max_age, scope, ttl)| StepUp {
            method,
            acr_values,
            max_age,
            scope,
            ttl,
        })
}

fn signal() -> impl Strategy<Value = Signal> {
    (text(16), text(24), finite_f64(), json_object()).prop_map(
        |(detector, code, weight, evidence)| Signal {
            detector: Cow::Owned(detector),
            code: Cow::Owned(code),
            weight,
            evidence: Value::Object(evidence),
        },
    )
}

fn record() -> impl Strategy<Value = RiskRecord> {
    (
        (
            text(12),
            text(16),
            principal_type(),
            text(24),
            1..=u64::MAX,
            timestamp(),
        ),
        (
            text(24),
            select(vec![EventKind::Auth, EventKind::Action]),
            text(24),
            sensitivity(),
        ),
        (
            0..=100_u8,
            select(vec![
                Level::Low,
                Level::Medium,
                Level::High,
                Level::Critical,
            ]),
            decision(),
            option::of(step_up()),
            (decision(), decision(), decision(), decision()),
        ),
        (0..=3_u8, option::of(timestamp()), vec(signal(), 0..4)),
        (
            text(24),
            proptest::string::string_regex("sha256:[0-9a-f]{64}").unwrap(),
        ),
    )
        .prop_map(
            |(
                (tenant, principal_id, kind, session, seq, time),
                (event_id, trigger_kind, name, sensitivity),
                (score, level, decision, step_up, (low, medium, high, critical)),
                (aal, last_strong_auth, signals),
                (version, policy),
            )| RiskRecord {
                schema: Cow::Borrowed(RISK_SCHEMA_ID),
                tenant,
                principal: RecordPrincipal {
                    id: principal_id,
                    kind,
                },
                session,
                seq,
                time,
                trigger: Trigger {
                    event_id,
                    kind: trigger_kind,
                    name,
                    sensitivity,
                },
                score,
                level,
                decision,
                step_up,
                decisions: Decisions {
                    low,
                    medium,
                    high,
                    critical,
                },
                assurance: AssuranceState {
                    aal,
                    last_strong_auth,
                },
                signals,
                model: ModelInfo {
                    version: Cow::Owned(version),
                    policy,
                },
            },
        )
}

proptest! {
    #[test]
    fn event_survives_json_and_validates(event in event()) {
        let bytes = serde_json::to_vec(&event).unwrap();
        let parsed = parse_event(&bytes, ParseLimits { max_bytes: usize::MAX });
        prop_assert_eq!(parsed.as_ref(), Ok(&event), "{}", String::from_utf8_lossy(&bytes));
        let value: Value = serde_json::from_slice(&bytes).unwrap();
        let errors = common::errors(&EVENT_VALIDATOR, &value);
        prop_assert!(errors.is_empty(), "{:?} in {}", errors, value);
    }

    #[test]
    fn record_survives_json_and_validates(record in record()) {
        let bytes = serde_json::to_vec(&record).unwrap();
        let read: RiskRecord = serde_json::from_slice(&bytes).unwrap();
        prop_assert_eq!(&read, &record);
        let value: Value = serde_json::from_slice(&bytes).unwrap();
        let errors = common::errors(&RISK_VALIDATOR, &value);
        prop_assert!(errors.is_empty(), "{:?} in {}", errors, value);
    }

    /// The same instant written with any offset reads as the same timestamp.
    #[test]
    fn any_offset_gives_the_same_instant(
        t in timestamp(),
        hours in -23..=23_i8,
        minutes in 0..=59_i8,
    ) {
        let minutes = if hours < 0 { -minutes } else { minutes };
        let offset = UtcOffset::from_hms(hours, minutes, 0).unwrap();
        let utc = OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.0) * 1_000_000).unwrap();
        // Near the ends of the range the local date leaves the years RFC 3339
        // can write.
        let written = utc.checked_to_offset(offset).and_then(|at| at.format(&Rfc3339).ok());
        prop_assume!(written.is_some());
        let written = written.unwrap();
        prop_assert_eq!(Timestamp::parse_rfc3339(&written), Ok(t), "{}", written);
    }

    /// Digits below the millisecond are dropped: the instant is floored, on
    /// both sides of 1970.
    #[test]
    fn sub_millisecond_digits_are_floored(t in timestamp(), extra in "[0-9]{1,6}") {
        let written = t.to_string();
        let longer = format!("{}{extra}Z", written.trim_end_matches('Z'));
        prop_assert_eq!(Timestamp::parse_rfc3339(&longer), Ok(t), "{}", longer);
    }
}
