//! The builder every adapter fills: it derives what a vendor lacks, records
//! it in `source.missing`, and validates the result against the contract by
//! parsing its own serialisation, so an adapter can never emit an event the
//! engine would reject.

use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use riskstream_schemas::{
    Action, Assurance, AuthType, Context, DeviceTrust, Event, EventBody, ParseLimits, Principal,
    PrincipalType, Source, Timestamp, parse_event,
};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::{AdapterOptions, Format, Unmapped, UnmappedReason};

/// An event under construction from a vendor record.
#[derive(Debug, Default)]
pub(crate) struct Draft {
    pub vendor_id: Option<String>,
    pub vendor_type: Option<String>,
    pub time: Option<Timestamp>,
    pub tenant: Option<String>,
    pub principal: Option<String>,
    pub principal_type: PrincipalType,
    pub role: Option<String>,
    pub session: Option<String>,
    pub body: Option<EventBody>,
    pub resource: Option<String>,
    pub attributes: Map<String, Value>,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub device_id: Option<String>,
    pub device_trust: Option<DeviceTrust>,
    pub asn: Option<u32>,
    pub aal: Option<u8>,
    pub acr: Option<String>,
    pub amr: Vec<String>,
    /// Fields the adapter knows the vendor did not give, beyond those
    /// [`Draft::finish`] checks itself.
    pub missing: Vec<String>,
}

impl Draft {
    /// A draft for a vendor record of this type.
    pub fn new(vendor_type: Option<&str>) -> Draft {
        Draft {
            vendor_type: vendor_type.map(str::to_owned),
            ..Draft::default()
        }
    }

    /// Sets the auth type.
    pub fn auth(&mut self, t: AuthType) -> &mut Self {
        self.body = Some(EventBody::Auth(t));
        self
    }

    /// Sets the action name.
    pub fn action(&mut self, name: &str) -> &mut Self {
        self.body = Some(EventBody::Action(Action {
            name: name.to_owned(),
        }));
        self
    }

    /// Sets the address from text a vendor wrote: `1.2.3.4`, `1.2.3.4:5678`,
    /// `[2001:db8::1]:443`, `::ffff:1.2.3.4`. Unparsable text is left out
    /// and listed as missing.
    pub fn ip_text(&mut self, text: Option<&str>) -> &mut Self {
        if let Some(t) = text {
            self.ip = parse_ip(t);
        }
        self
    }

    /// Adds a string attribute, when present.
    pub fn attr(&mut self, key: &str, value: Option<&str>) -> &mut Self {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            self.attributes
                .insert(key.to_owned(), Value::String(v.to_owned()));
        }
        self
    }

    /// The finished, contract-valid event.
    ///
    /// Without a vendor event id, the id is derived from the record's bytes
    /// (stable, so redelivery stays idempotent); without a session, one is
    /// derived from the principal and client. Both are then listed in
    /// `source.missing`, as are absent IP, user agent and device id.
    pub fn finish(
        self,
        format: Format,
        record_fingerprint: &[u8],
        opts: &AdapterOptions,
    ) -> Result<Event, Unmapped> {
        let vt = self.vendor_type.clone();
        let unmapped = |reason, detail: &str| Unmapped::new(format, reason, vt.as_deref(), detail);
        let body = self.body.ok_or_else(|| {
            unmapped(
                UnmappedReason::UnmappedType,
                "no contract event for this record type",
            )
        })?;
        let principal = self
            .principal
            .filter(|p| !p.trim().is_empty())
            .ok_or_else(|| {
                unmapped(
                    UnmappedReason::NoActor,
                    "no user, workload or agent in the record",
                )
            })?;
        let time = self.time.ok_or_else(|| {
            unmapped(UnmappedReason::NoTime, "no usable event time in the record")
        })?;
        let mut missing = self.missing;
        let id = match self.vendor_id.clone().filter(|s| !s.is_empty()) {
            Some(id) => format!("{}:{id}", format.name()),
            None => {
                missing.push("id".to_owned());
                format!("{}:{:016x}", format.name(), fingerprint(record_fingerprint))
            }
        };
        let session = match self.session.filter(|s| !s.is_empty()) {
            Some(s) => s,
            None => {
                missing.push("session".to_owned());
                let client = self
                    .ip
                    .map(|ip| ip.to_string())
                    .or_else(|| self.user_agent.clone())
                    .unwrap_or_default();
                format!(
                    "{}:derived:{:016x}",
                    format.name(),
                    fingerprint(format!("{principal}\u{1f}{client}").as_bytes())
                )
            }
        };
        if self.ip.is_none() {
            missing.push("context.ip".to_owned());
        }
        if self.user_agent.is_none() {
            missing.push("context.user_agent".to_owned());
        }
        if self.device_id.is_none() {
            missing.push("context.device_id".to_owned());
        }
        missing.sort();
        missing.dedup();
        let auth = if self.aal.is_some() || self.acr.is_some() || !self.amr.is_empty() {
            Some(Assurance {
                aal: self.aal.or_else(|| aal_from_amr(&self.amr)),
                acr: self.acr,
                amr: self.amr,
            })
        } else {
            None
        };
        let event = Event {
            id,
            time,
            tenant: opts
                .tenant
                .clone()
                .or(self.tenant)
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| "default".to_owned()),
            principal: Principal {
                id: principal,
                kind: self.principal_type,
                role: self.role,
            },
            session,
            body,
            resource: self.resource,
            attributes: if self.attributes.is_empty() {
                None
            } else {
                Some(self.attributes)
            },
            context: Context {
                ip: self.ip,
                user_agent: self.user_agent.filter(|s| !s.is_empty()),
                device_id: self.device_id.filter(|s| !s.is_empty()),
                device_trust: self.device_trust,
                asn: self.asn,
            },
            auth,
            labels: None,
            source: Some(Source {
                format: format.name().to_owned(),
                id: self.vendor_id,
                kind: self.vendor_type,
                missing,
            }),
        };
        // The event must survive the contract's own parser unchanged.
        let bytes = serde_json::to_vec(&event)
            .map_err(|e| unmapped(UnmappedReason::Invalid, &e.to_string()))?;
        parse_event(&bytes, ParseLimits::default())
            .map_err(|r| unmapped(UnmappedReason::Invalid, &r.to_string()))
    }
}

/// A stable 64-bit fingerprint (FNV-1a) for derived ids. Not for security:
/// it only has to be the same for the same bytes, on every machine.
pub(crate) fn fingerprint(bytes: &[u8]) -> u64 {
    struct Fnv(u64);
    impl Hasher for Fnv {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for b in bytes {
                self.0 ^= u64::from(*b);
                self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    bytes.hash(&mut h);
    h.finish()
}

/// An address from vendor text, with or without a port or brackets.
pub(crate) fn parse_ip(text: &str) -> Option<IpAddr> {
    let t = text.trim();
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(sock) = t.parse::<std::net::SocketAddr>() {
        return Some(canonical(sock.ip()));
    }
    // "1.2.3.4:5678" without brackets parses above; "1.2.3.4, 5.6.7.8"
    // (X-Forwarded-For) takes the client, the first.
    t.split(',')
        .next()
        .and_then(|first| first.trim().parse::<IpAddr>().ok())
        .map(canonical)
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) as the IPv4 they are.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Event time from a vendor value: RFC 3339 text (with `Z` or an offset,
/// or without one, read as UTC as vendors mean it), or a Unix epoch number
/// in seconds or milliseconds.
pub(crate) fn parse_time(value: &Value) -> Option<Timestamp> {
    match value {
        Value::String(s) => {
            let s = s.trim();
            Timestamp::parse_rfc3339(s).ok().or_else(|| {
                // "2024-01-02T03:04:05.678" (no offset): UTC.
                let with_z = format!("{s}Z");
                OffsetDateTime::parse(&with_z, &Rfc3339)
                    .ok()
                    .and_then(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok())
                    .map(Timestamp)
            })
        }
        Value::Number(n) => {
            let v = n.as_f64()?;
            // Epoch seconds until year 5138; milliseconds beyond 1e11.
            let millis = if v.abs() < 1e11 { v * 1000.0 } else { v };
            if millis.is_finite() {
                Some(Timestamp(millis as i64))
            } else {
                None
            }
        }
        _ => None,
    }
}

/// NIST SP 800-63 AAL implied by OpenID Connect `amr` values (RFC 8176):
/// a hardware key with user verification or proof of possession is AAL3;
/// two factors, or `mfa`, AAL2; one factor AAL1; nothing known, `None`.
pub fn aal_from_amr(amr: &[String]) -> Option<u8> {
    if amr.is_empty() {
        return None;
    }
    let has = |v: &str| amr.iter().any(|a| a.eq_ignore_ascii_case(v));
    let factors = [
        "pwd", "pin", "otp", "sms", "tel", "hwk", "swk", "fpt", "face", "iris", "retina", "vbm",
        "kba", "sc",
    ]
    .iter()
    .filter(|f| has(f))
    .count();
    if has("hwk") && (has("pop") || has("pin") || has("fpt") || has("face") || has("user")) {
        Some(3)
    } else if has("mfa") || factors >= 2 {
        Some(2)
    } else {
        Some(1)
    }
}

/// `value[key]`, not null; the key matched case-insensitively when it is not
/// there as written (data-lake exports of vendor logs lower-case the keys).
pub(crate) fn field<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    let obj = value.as_object()?;
    obj.get(key)
        .or_else(|| {
            obj.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        })
        .filter(|v| !v.is_null())
}

/// `value[keys[0]][keys[1]]...` by [`field`].
pub(crate) fn path<'a>(value: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().try_fold(value, |v, k| field(v, k))
}

/// `value[path[0]][path[1]]...` as text.
pub(crate) fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(value, path)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// `value[path[0]][path[1]]...`.
pub(crate) fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut v = value;
    for key in path {
        v = v.get(*key)?;
    }
    if v.is_null() { None } else { Some(v) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_in_vendor_forms() {
        assert_eq!(parse_ip("81.2.69.142"), "81.2.69.142".parse().ok());
        assert_eq!(parse_ip("81.2.69.142:443"), "81.2.69.142".parse().ok());
        assert_eq!(parse_ip("[2001:db8::1]:443"), "2001:db8::1".parse().ok());
        assert_eq!(parse_ip("::ffff:81.2.69.142"), "81.2.69.142".parse().ok());
        assert_eq!(
            parse_ip("81.2.69.142, 10.0.0.1"),
            "81.2.69.142".parse().ok()
        );
        assert_eq!(parse_ip("not an ip"), None);
    }

    #[test]
    fn times_in_vendor_forms() {
        let t = Timestamp::parse_rfc3339("2024-01-02T03:04:05.678Z").ok();
        assert_eq!(parse_time(&Value::from("2024-01-02T03:04:05.678Z")), t);
        assert_eq!(parse_time(&Value::from("2024-01-02T03:04:05.678")), t);
        assert_eq!(parse_time(&Value::from(1_704_164_645_678_i64)), t);
        assert_eq!(parse_time(&Value::from(1_704_164_645.678_f64)), t);
        assert_eq!(parse_time(&Value::from("yesterday")), None);
    }

    #[test]
    fn assurance_from_amr() {
        let v = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(aal_from_amr(&v(&[])), None);
        assert_eq!(aal_from_amr(&v(&["pwd"])), Some(1));
        assert_eq!(aal_from_amr(&v(&["pwd", "otp"])), Some(2));
        assert_eq!(aal_from_amr(&v(&["mfa"])), Some(2));
        assert_eq!(aal_from_amr(&v(&["hwk", "pin"])), Some(3));
    }
}
