//! Bytes to a validated [`Event`], or a [`Rejection`] naming field and reason.
//!
//! Parsing happens in two steps so that every rejection is typed: serde reads
//! the bytes into a lenient wire form in which every field is optional and
//! enums are plain strings, then [`validate`] applies the contract's rules.
//! Unknown fields are ignored: the contract lets senders add fields.

use std::fmt;
use std::net::IpAddr;

use std::borrow::Cow;

use serde::de::{self, IgnoredAny, Visitor};
use serde::{Deserialize, Deserializer};

use crate::event::{
    Action, Assurance, AuthType, Context, DeviceTrust, Event, EventBody, Principal,
};
use crate::{EVENT_SCHEMA_ID, PrincipalType, Timestamp};

/// Limits applied before and while parsing.
#[derive(Clone, Copy, Debug)]
pub struct ParseLimits {
    /// Largest accepted event, in bytes. Default 64 KiB: the largest native
    /// IdP record in the shared samples is under 8 KiB, so eight times that
    /// leaves room while keeping one bad line from costing real memory.
    pub max_bytes: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_bytes: 64 * 1024,
        }
    }
}

/// Why an input was rejected. The codes are stable: they are the `error`
/// header of the dead-letter topic and the `reason` of the rejects file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// The bytes are not a JSON object.
    NotJson,
    /// Larger than [`ParseLimits::max_bytes`].
    TooLarge,
    /// A required field is absent, null or empty.
    MissingField,
    /// A field has the wrong JSON type or an invalid value.
    InvalidField,
    /// `schema` is not `riskstream.event.v1`.
    UnknownSchema,
    /// `kind` is neither `auth` nor `action`.
    UnknownKind,
    /// An auth event's `type` is not one of the contract's.
    UnknownType,
    /// `time` is not RFC 3339 with an offset.
    UnparsableTime,
    /// The event id was seen before and its record is no longer remembered.
    Duplicate,
}

impl RejectReason {
    /// Every reason, in a stable order (for summaries and metrics).
    pub const ALL: [RejectReason; 9] = [
        RejectReason::NotJson,
        RejectReason::TooLarge,
        RejectReason::MissingField,
        RejectReason::InvalidField,
        RejectReason::UnknownSchema,
        RejectReason::UnknownKind,
        RejectReason::UnknownType,
        RejectReason::UnparsableTime,
        RejectReason::Duplicate,
    ];

    /// The stable code, e.g. `missing_field`.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::NotJson => "not_json",
            RejectReason::TooLarge => "too_large",
            RejectReason::MissingField => "missing_field",
            RejectReason::InvalidField => "invalid_field",
            RejectReason::UnknownSchema => "unknown_schema",
            RejectReason::UnknownKind => "unknown_kind",
            RejectReason::UnknownType => "unknown_type",
            RejectReason::UnparsableTime => "unparsable_time",
            RejectReason::Duplicate => "duplicate",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rejected input: the reason, the field it concerns and a detail for people.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}{}: {detail}", field.as_ref().map(|f| format!(" ({f})")).unwrap_or_default())]
pub struct Rejection {
    /// Stable reason code.
    pub reason: RejectReason,
    /// Dotted path of the offending field, where there is one.
    pub field: Option<String>,
    /// What was wrong, for a person.
    pub detail: String,
}

impl Rejection {
    /// A rejection for `field` with a detail.
    pub fn new(reason: RejectReason, field: Option<&str>, detail: impl Into<String>) -> Self {
        Rejection {
            reason,
            field: field.map(str::to_owned),
            detail: detail.into(),
        }
    }
}

// Every wire struct ends with a flattened `IgnoredAny`. Besides ignoring the
// fields the contract lets senders add, a flattened field makes serde read the
// struct through `deserialize_map` only: without it, serde_json would also
// read a struct from a JSON array, field by field in declaration order, so
// `["riskstream.event.v1","auth",...]` or `"principal":["u-1"]` would pass
// for objects.

/// A string of the wire form, borrowed from the input when it has no
/// escapes. Most of an event's strings are only looked at (`schema`, `kind`,
/// `time`, `type`, the address, the enums) and would otherwise each cost an
/// allocation; the ones the event keeps are copied once, as before.
///
/// Deserialised as a `String` is (`deserialize_string`, "a string" in type
/// errors), so that rejections read the same.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor<'a>(std::marker::PhantomData<&'a str>);

        impl<'de: 'a, 'a> Visitor<'de> for TextVisitor<'a> {
            type Value = Text<'a>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }

            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
                match std::str::from_utf8(v) {
                    Ok(s) => Ok(Text(Cow::Owned(s.to_owned()))),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Bytes(v), &self)),
                }
            }

            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
                match String::from_utf8(v) {
                    Ok(s) => Ok(Text(Cow::Owned(s))),
                    Err(e) => Err(E::invalid_value(
                        de::Unexpected::Bytes(&e.into_bytes()),
                        &self,
                    )),
                }
            }
        }

        deserializer.deserialize_string(TextVisitor(std::marker::PhantomData))
    }
}

impl Text<'_> {
    fn as_str(&self) -> &str {
        &self.0
    }

    fn into_string(self) -> String {
        self.0.into_owned()
    }
}

#[derive(Deserialize)]
struct WireEvent<'a> {
    #[serde(borrow)]
    schema: Option<Text<'a>>,
    #[serde(borrow)]
    kind: Option<Text<'a>>,
    #[serde(borrow)]
    id: Option<Text<'a>>,
    #[serde(borrow)]
    time: Option<Text<'a>>,
    #[serde(borrow)]
    tenant: Option<Text<'a>>,
    #[serde(borrow)]
    principal: Option<WirePrincipal<'a>>,
    #[serde(borrow)]
    session: Option<Text<'a>>,
    #[serde(rename = "type", borrow)]
    auth_type: Option<Text<'a>>,
    #[serde(borrow)]
    action: Option<Text<'a>>,
    #[serde(borrow)]
    resource: Option<Text<'a>>,
    attributes: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(borrow)]
    context: Option<WireContext<'a>>,
    #[serde(borrow)]
    auth: Option<WireAuth<'a>>,
    labels: Option<serde_json::Map<String, serde_json::Value>>,
    source: Option<crate::event::Source>,
    #[serde(flatten)]
    _unknown: IgnoredAny,
}

#[derive(Deserialize)]
struct WirePrincipal<'a> {
    #[serde(borrow)]
    id: Option<Text<'a>>,
    #[serde(rename = "type", borrow)]
    kind: Option<Text<'a>>,
    #[serde(borrow)]
    role: Option<Text<'a>>,
    #[serde(flatten)]
    _unknown: IgnoredAny,
}

#[derive(Deserialize)]
struct WireContext<'a> {
    #[serde(borrow)]
    ip: Option<Text<'a>>,
    #[serde(borrow)]
    user_agent: Option<Text<'a>>,
    #[serde(borrow)]
    device_id: Option<Text<'a>>,
    #[serde(borrow)]
    device_trust: Option<Text<'a>>,
    asn: Option<WireAsn>,
    #[serde(flatten)]
    _unknown: IgnoredAny,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WireAsn {
    Number(u32),
    Text(String),
}

#[derive(Deserialize)]
struct WireAuth<'a> {
    aal: Option<u8>,
    #[serde(borrow)]
    acr: Option<Text<'a>>,
    amr: Option<Vec<String>>,
    #[serde(flatten)]
    _unknown: IgnoredAny,
}

/// Parses one event from bytes and checks it against the contract.
pub fn parse_event(bytes: &[u8], limits: ParseLimits) -> Result<Event, Rejection> {
    if bytes.len() > limits.max_bytes {
        return too_large(bytes.len(), limits);
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => parse_event_str(text, limits),
        // serde_json finds the bad byte and says where.
        Err(_) => validate(read_wire(|| serde_json::Deserializer::from_slice(bytes))?),
    }
}

/// [`parse_event`] of a line already known to be UTF-8: serde_json then
/// need not check each string again (on the replay's hot path, that check
/// was a sixth of the parse).
pub fn parse_event_str(text: &str, limits: ParseLimits) -> Result<Event, Rejection> {
    if text.len() > limits.max_bytes {
        return too_large(text.len(), limits);
    }
    validate(read_wire(|| serde_json::Deserializer::from_str(text))?)
}

fn too_large<T>(len: usize, limits: ParseLimits) -> Result<T, Rejection> {
    Err(Rejection::new(
        RejectReason::TooLarge,
        None,
        format!("{len} bytes, limit {}", limits.max_bytes),
    ))
}

/// The wire form, read by `deserializer()` (called again for a failure).
fn read_wire<'de, R: serde_json::de::Read<'de>>(
    deserializer: impl Fn() -> serde_json::Deserializer<R>,
) -> Result<WireEvent<'de>, Rejection> {
    // Fast path: plain serde. Only a failure is parsed again with path
    // tracking, which costs about a tenth of the parse, to name the field.
    let mut de = deserializer();
    if let Ok(wire) = WireEvent::deserialize(&mut de)
        && de.end().is_ok()
    {
        return Ok(wire);
    }
    let mut de = deserializer();
    let wire: WireEvent = match serde_path_to_error::deserialize(&mut de) {
        Ok(w) => w,
        Err(e) => return Err(classify_serde_error(e)),
    };
    if let Err(e) = de.end() {
        return Err(Rejection::new(RejectReason::NotJson, None, e.to_string()));
    }
    Ok(wire)
}

fn classify_serde_error(e: serde_path_to_error::Error<serde_json::Error>) -> Rejection {
    let path = e.path().to_string();
    let inner = e.into_inner();
    match inner.classify() {
        serde_json::error::Category::Data if path != "." => {
            Rejection::new(RejectReason::InvalidField, Some(&path), inner.to_string())
        }
        _ => Rejection::new(RejectReason::NotJson, None, inner.to_string()),
    }
}

fn required<'a>(value: Option<Text<'a>>, field: &str) -> Result<Text<'a>, Rejection> {
    match value {
        Some(v) if !v.as_str().is_empty() => Ok(v),
        Some(_) => Err(Rejection::new(
            RejectReason::MissingField,
            Some(field),
            "empty",
        )),
        None => Err(Rejection::new(
            RejectReason::MissingField,
            Some(field),
            "absent",
        )),
    }
}

/// A kept optional string: `None` when absent or empty.
fn non_empty(value: Option<Text<'_>>) -> Option<String> {
    value
        .filter(|v| !v.as_str().is_empty())
        .map(Text::into_string)
}

fn validate(w: WireEvent<'_>) -> Result<Event, Rejection> {
    let schema = required(w.schema, "schema")?;
    let schema = schema.as_str();
    if schema != EVENT_SCHEMA_ID {
        return Err(Rejection::new(
            RejectReason::UnknownSchema,
            Some("schema"),
            format!("{schema:?}, expected {EVENT_SCHEMA_ID:?}"),
        ));
    }
    let kind = required(w.kind, "kind")?;
    let id = required(w.id, "id")?.into_string();
    let time_raw = required(w.time, "time")?;
    let time_raw = time_raw.as_str();
    let time = Timestamp::parse_rfc3339(time_raw).map_err(|e| {
        Rejection::new(
            RejectReason::UnparsableTime,
            Some("time"),
            format!("{time_raw:?}: {e}"),
        )
    })?;
    let wp = w
        .principal
        .ok_or_else(|| Rejection::new(RejectReason::MissingField, Some("principal"), "absent"))?;
    let principal = Principal {
        id: required(wp.id, "principal.id")?.into_string(),
        kind: match wp.kind.as_ref().map(Text::as_str) {
            None => PrincipalType::Human,
            Some(t) => PrincipalType::from_wire(t).ok_or_else(|| {
                Rejection::new(
                    RejectReason::InvalidField,
                    Some("principal.type"),
                    format!("{t:?}, expected human, workload or agent"),
                )
            })?,
        },
        role: non_empty(wp.role),
    };
    let session = required(w.session, "session")?.into_string();
    let body = match kind.as_str() {
        "auth" => {
            let t = required(w.auth_type, "type")?;
            let t = t.as_str();
            let auth_type = AuthType::from_wire(t).ok_or_else(|| {
                Rejection::new(RejectReason::UnknownType, Some("type"), format!("{t:?}"))
            })?;
            EventBody::Auth(auth_type)
        }
        "action" => EventBody::Action(Action {
            name: required(w.action, "action")?.into_string(),
        }),
        other => {
            return Err(Rejection::new(
                RejectReason::UnknownKind,
                Some("kind"),
                format!("{other:?}, expected auth or action"),
            ));
        }
    };
    let context = match w.context {
        None => Context::default(),
        Some(c) => Context {
            ip: match c.ip.as_ref().map(Text::as_str) {
                None | Some("") => None,
                Some(s) => Some(s.parse::<IpAddr>().map_err(|_| {
                    Rejection::new(
                        RejectReason::InvalidField,
                        Some("context.ip"),
                        format!("{s:?} is not an IP address"),
                    )
                })?),
            },
            user_agent: non_empty(c.user_agent),
            device_id: non_empty(c.device_id),
            device_trust: match c.device_trust.as_ref().map(Text::as_str) {
                None => None,
                Some(s) => Some(DeviceTrust::from_wire(s).ok_or_else(|| {
                    Rejection::new(
                        RejectReason::InvalidField,
                        Some("context.device_trust"),
                        format!("{s:?}, expected managed, known or unknown"),
                    )
                })?),
            },
            asn: match c.asn {
                None => None,
                Some(WireAsn::Number(n)) => Some(n),
                Some(WireAsn::Text(s)) => {
                    let digits = s
                        .strip_prefix("AS")
                        .or_else(|| s.strip_prefix("as"))
                        .unwrap_or(&s);
                    // `u32::from_str` also takes a leading `+`, which no AS
                    // number is written with.
                    let number = if digits.bytes().all(|b| b.is_ascii_digit()) {
                        digits.parse::<u32>().ok()
                    } else {
                        None
                    };
                    Some(number.ok_or_else(|| {
                        Rejection::new(
                            RejectReason::InvalidField,
                            Some("context.asn"),
                            format!("{s:?} is not an AS number"),
                        )
                    })?)
                }
            },
        },
    };
    let auth = match w.auth {
        None => None,
        Some(a) => {
            if let Some(aal) = a.aal
                && !(1..=3).contains(&aal)
            {
                return Err(Rejection::new(
                    RejectReason::InvalidField,
                    Some("auth.aal"),
                    format!("{aal}, expected 1 to 3"),
                ));
            }
            Some(Assurance {
                aal: a.aal,
                acr: a.acr.map(Text::into_string),
                amr: a.amr.unwrap_or_default(),
            })
        }
    };
    Ok(Event {
        id,
        time,
        tenant: non_empty(w.tenant).unwrap_or_else(|| "default".to_owned()),
        principal,
        session,
        body,
        resource: w.resource.map(Text::into_string),
        attributes: w.attributes,
        context,
        auth,
        labels: w.labels.map(check_labels).transpose()?,
        source: w.source,
    })
}

/// Checks the two labels the evaluation reads. A fixture whose `attack` is
/// `"yes"` would otherwise count silently as benign.
fn check_labels(
    labels: serde_json::Map<String, serde_json::Value>,
) -> Result<serde_json::Value, Rejection> {
    if let Some(v) = labels.get("attack")
        && !v.is_boolean()
    {
        return Err(Rejection::new(
            RejectReason::InvalidField,
            Some("labels.attack"),
            format!("{v}, expected true or false"),
        ));
    }
    if let Some(v) = labels.get("scenario")
        && !v.is_string()
    {
        return Err(Rejection::new(
            RejectReason::InvalidField,
            Some("labels.scenario"),
            format!("{v}, expected a string"),
        ));
    }
    Ok(serde_json::Value::Object(labels))
}

#[cfg(test)]
mod tests {
    // Tests panic on purpose when something is wrong.
    #![allow(clippy::unwrap_used)]

    use super::*;

    const GOOD: &str = r#"{"schema":"riskstream.event.v1","kind":"auth","id":"evt-0001","time":"2026-11-30T10:15:02.123Z","tenant":"acme","principal":{"id":"u-42","type":"human","role":"finance"},"session":"s-9f2","type":"login.success","context":{"ip":"81.2.69.142","user_agent":"Mozilla/5.0","device_id":"d-7","device_trust":"managed"},"auth":{"aal":2,"acr":"urn:acme:mfa","amr":["pwd","otp"]},"labels":{"attack":false}}"#;

    fn reject(s: &str) -> Rejection {
        parse_event(s.as_bytes(), ParseLimits::default()).unwrap_err()
    }

    #[test]
    fn parses_the_contract_example() {
        let e = parse_event(GOOD.as_bytes(), ParseLimits::default()).unwrap();
        assert_eq!(e.id, "evt-0001");
        assert_eq!(e.auth_type(), Some(AuthType::LoginSuccess));
        assert_eq!(e.context.ip, Some("81.2.69.142".parse().unwrap()));
        assert_eq!(e.aal(), Some(2));
        assert!(!e.is_labelled_attack());
        // And serialises back to an equal event.
        let again = serde_json::to_vec(&e).unwrap();
        assert_eq!(parse_event(&again, ParseLimits::default()).unwrap(), e);
    }

    #[test]
    fn wire_strings_without_escapes_are_borrowed() {
        let mut de = serde_json::Deserializer::from_str(GOOD);
        let w = WireEvent::deserialize(&mut de).unwrap();
        assert!(matches!(w.schema, Some(Text(Cow::Borrowed(_)))));
        assert!(matches!(
            w.context.and_then(|c| c.ip),
            Some(Text(Cow::Borrowed(_)))
        ));
        // An escape needs a copy; the value is the same.
        let escaped = GOOD.replace("s-9f2", "s-\\u0039f2");
        let e = parse_event_str(&escaped, ParseLimits::default()).unwrap();
        assert_eq!(e.session, "s-9f2");
    }

    #[test]
    fn names_field_and_reason() {
        let r = reject("not json");
        assert_eq!(r.reason, RejectReason::NotJson);
        let r = reject(&GOOD.replace(r#""id":"evt-0001","#, ""));
        assert_eq!(
            (r.reason, r.field.as_deref()),
            (RejectReason::MissingField, Some("id"))
        );
        let r = reject(&GOOD.replace(r#""kind":"auth""#, r#""kind":"audit""#));
        assert_eq!(
            (r.reason, r.field.as_deref()),
            (RejectReason::UnknownKind, Some("kind"))
        );
        let r = reject(&GOOD.replace("login.success", "login.maybe"));
        assert_eq!(
            (r.reason, r.field.as_deref()),
            (RejectReason::UnknownType, Some("type"))
        );
        let r = reject(&GOOD.replace("2026-11-30T10:15:02.123Z", "30/11/2026"));
        assert_eq!(
            (r.reason, r.field.as_deref()),
            (RejectReason::UnparsableTime, Some("time"))
        );
        // Valid RFC 3339, but before year 0000 in UTC: its record's time
        // could not be written, so the event is refused here.
        let r = reject(&GOOD.replace("2026-11-30T10:15:02.123Z", "0000-01-01T00:00:00+01:00"));
        assert_eq!(
            (r.reason, r.field.as_deref()),
            (RejectReason::UnparsableTime, Some("time"))
        );
        let r = reject(&GOOD.replace(r#""aal":2"#, r#""aal":"two""#));
        assert_eq!(
            (r.reason, r.field.as_deref()),
            (RejectReason::InvalidField, Some("auth.aal"))
        );
        let r = reject(&GOOD.replace("81.2.69.142", "81.2.69"));
        assert_eq!(
            (r.reason, r.field.as_deref()),
            (RejectReason::InvalidField, Some("context.ip"))
        );
        let r = reject(&GOOD.replace("riskstream.event.v1", "riskstream.event.v2"));
        assert_eq!(r.reason, RejectReason::UnknownSchema);
        let r = reject(&GOOD.replace(r#""session":"s-9f2""#, r#""session":"""#));
        assert_eq!(
            (r.reason, r.field.as_deref()),
            (RejectReason::MissingField, Some("session"))
        );
        let r = reject(&format!("{GOOD} trailing"));
        assert_eq!(r.reason, RejectReason::NotJson);
        let r = reject("[1,2]");
        assert_eq!(r.reason, RejectReason::NotJson);
        let big = GOOD.replace("Mozilla/5.0", &"x".repeat(70_000));
        assert_eq!(reject(&big).reason, RejectReason::TooLarge);
    }

    #[test]
    fn action_needs_its_name_and_accepts_text_asn() {
        let action = r#"{"schema":"riskstream.event.v1","kind":"action","id":"a1","time":"2026-11-30T10:15:02Z","principal":{"id":"svc-1","type":"workload"},"session":"tok-1","action":"data.export","attributes":{"rows":120000},"context":{"asn":"AS64500","ip":"2001:db8::1"}}"#;
        let e = parse_event(action.as_bytes(), ParseLimits::default()).unwrap();
        assert_eq!(e.action(), Some("data.export"));
        assert_eq!(e.tenant, "default");
        assert_eq!(e.context.asn, Some(64500));
        let r = reject(&action.replace(r#""action":"data.export","#, ""));
        assert_eq!(
            (r.reason, r.field.as_deref()),
            (RejectReason::MissingField, Some("action"))
        );
    }
}
