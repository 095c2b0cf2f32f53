//! Helpers the adapter integration tests share: where the samples are, how
//! their lines and Panther's rule-test wrappers read, the outcome tallies
//! and the engine on MaxMind's test databases.
//!
//! Each test binary uses a subset. Where the tests differ on purpose (a skip
//! note on stderr or stdout, a column width, a notion of agreement), the
//! helper takes it as a parameter or stays in its test file.

#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use riskstream_adapters::{AdapterOptions, Format, Unmapped, UnmappedReason, normalize};
use riskstream_detectors::{Engine, EngineConfig, GeoIp, Policy, StateLimits};
use riskstream_schemas::{Decision, Event, Level, ParseLimits, parse_event};
use serde_json::Value;

// ---------------------------------------------------------------------------
// Where the samples are

/// A path below the shared samples (`../shared/data`), whether or not it is
/// there.
pub fn shared_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data")
        .join(rel)
}

/// `path` if it exists; otherwise `None`, with `skipped: <path> absent` and
/// the note, if any, in parentheses on stderr.
fn present(path: PathBuf, note: Option<&str>) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    match note {
        Some(note) => eprintln!("skipped: {} absent ({note})", path.display()),
        None => eprintln!("skipped: {} absent", path.display()),
    }
    None
}

/// A file or folder of the shared samples, or `None` (with a bare note on
/// stderr) where it is absent.
pub fn shared_file(rel: &str) -> Option<PathBuf> {
    present(shared_path(rel), None)
}

/// A file of the shared identity-provider samples (`idp/<rel>`), or `None`
/// (with a note naming them on stderr) where it is absent.
pub fn idp_file(rel: &str) -> Option<PathBuf> {
    present(
        shared_path("idp").join(rel),
        Some("the shared identity-provider samples"),
    )
}

/// The text of a shared file, or `None` (with a note on stdout) where it
/// cannot be read.
pub fn read_shared(rel: &str) -> Option<String> {
    let path = shared_path(rel);
    match std::fs::read_to_string(&path) {
        Ok(s) => Some(s),
        Err(_) => {
            println!("skipped: {} absent", path.display());
            None
        }
    }
}

/// A path below this crate's own samples (`tests/samples`).
pub fn sample_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/samples")
        .join(name)
}

/// The bytes of one of this crate's samples.
pub fn sample_bytes(name: &str) -> Vec<u8> {
    let path = sample_path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The text of one of this crate's samples.
pub fn sample_text(name: &str) -> String {
    let path = sample_path(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---------------------------------------------------------------------------
// Lines and Panther's wrappers

/// The lines of a text that are not blank.
pub fn non_empty_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter(|l| !l.trim().is_empty())
}

/// A JSON value per non-blank line.
pub fn json_lines(text: &str) -> Vec<Value> {
    non_empty_lines(text)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A JSON value per non-blank line of a file.
pub fn read_json_lines(path: &Path) -> Vec<Value> {
    json_lines(&std::fs::read_to_string(path).unwrap())
}

/// One of Panther's rule tests:
/// `{"_rule_id","_test_name","_expected_alert","_mocked","event"}`.
pub struct PantherCase {
    pub rule: String,
    pub test: String,
    pub alert: bool,
    pub mocked: bool,
    pub event: Value,
}

impl PantherCase {
    pub fn from_wrapper(v: &Value) -> Self {
        PantherCase {
            rule: v["_rule_id"].as_str().unwrap().to_owned(),
            test: v["_test_name"].as_str().unwrap().to_owned(),
            alert: v["_expected_alert"].as_bool().unwrap(),
            mocked: v["_mocked"].as_bool().unwrap_or(false),
            event: v["event"].clone(),
        }
    }
}

/// Panther's rule tests, one a line.
pub fn panther_cases(text: &str) -> Vec<PantherCase> {
    json_lines(text)
        .iter()
        .map(PantherCase::from_wrapper)
        .collect()
}

/// Panther's rule tests in a file.
pub fn read_panther(path: &Path) -> Vec<PantherCase> {
    panther_cases(&std::fs::read_to_string(path).unwrap())
}

/// Panther's rule tests in `idp/panther/<file>`, or `None` (with a note on
/// stdout, as [`read_shared`]) where the file is absent.
pub fn panther(file: &str) -> Option<Vec<PantherCase>> {
    read_shared(&format!("idp/panther/{file}")).map(|text| panther_cases(&text))
}

/// The rule test of that rule and name.
pub fn case<'a>(cases: &'a [PantherCase], rule: &str, test: &str) -> &'a PantherCase {
    cases
        .iter()
        .find(|c| c.rule == rule && c.test == test)
        .unwrap_or_else(|| panic!("no Panther case {rule} / {test}"))
}

// ---------------------------------------------------------------------------
// Events

/// A JSON record through the adapter of `format`.
pub fn normalize_json(format: Format, record: &Value) -> Result<Vec<Event>, Unmapped> {
    normalize(
        format,
        &serde_json::to_vec(record).unwrap(),
        &AdapterOptions::default(),
    )
}

/// The one event of a record.
pub fn only_event(mut events: Vec<Event>) -> Event {
    assert_eq!(events.len(), 1);
    events.remove(0)
}

/// The outcome of a record: the event's name, or the reason code.
pub fn outcome(result: &Result<Event, Unmapped>) -> String {
    match result {
        Ok(e) => e.name().to_owned(),
        Err(u) => u.reason.as_str().to_owned(),
    }
}

pub fn attr<'a>(e: &'a Event, key: &str) -> Option<&'a str> {
    e.attributes.as_ref()?.get(key)?.as_str()
}

pub fn missing(e: &Event) -> Vec<String> {
    e.source
        .as_ref()
        .map(|s| s.missing.clone())
        .unwrap_or_default()
}

/// The hand-written events of a `*_documented.jsonl` sample: each line names
/// a case, the expectation and the record. `map` is the adapter; `checks`
/// names the event's fields an expectation may state as text.
pub fn check_documented_cases(
    cases: &[Value],
    map: impl Fn(&Value) -> Result<Vec<Event>, Unmapped>,
    checks: impl Fn(&Event) -> Vec<(&'static str, Option<String>)>,
) {
    for case in cases {
        let name = case["case"].as_str().unwrap();
        let expect = &case["expect"];
        let result = map(&case["record"]);
        if let Some(reason) = expect["reject"].as_str() {
            let u = result.expect_err(name);
            assert_eq!(u.reason.as_str(), reason, "{name}: {u}");
            continue;
        }
        let e = result.unwrap_or_else(|u| panic!("{name}: {u}")).remove(0);
        println!("{name}: {}", e.name());
        if let Some(t) = expect["type"].as_str() {
            assert_eq!(e.auth_type().map(|t| t.as_str()), Some(t), "{name}");
        }
        if let Some(a) = expect["action"].as_str() {
            assert_eq!(e.action(), Some(a), "{name}");
        }
        for (key, got) in checks(&e) {
            if let Some(want) = expect[key].as_str() {
                assert_eq!(got.as_deref(), Some(want), "{name}: {key}");
            }
        }
        if let Some(aal) = expect["aal"].as_u64() {
            assert_eq!(e.aal().map(u64::from), Some(aal), "{name}");
        }
        if let Some(amr) = expect["amr"].as_array() {
            let want: Vec<&str> = amr.iter().filter_map(Value::as_str).collect();
            assert_eq!(e.auth.as_ref().unwrap().amr, want, "{name}");
        }
        if expect["no_auth"].as_bool() == Some(true) {
            assert!(e.auth.is_none(), "{name}: a failure reaches no assurance");
        }
        for (k, v) in expect["attributes"].as_object().into_iter().flatten() {
            assert_eq!(attr(&e, k), v.as_str(), "{name}: attribute {k}");
        }
    }
}

// ---------------------------------------------------------------------------
// Tallies

/// Counts of a file whose records each make one event: mapped, and unmapped
/// per reason; and per vendor type, what each became. Each event must
/// survive the contract's own parser unchanged.
pub struct SingleEventTally {
    pub mapped: usize,
    pub unmapped: BTreeMap<&'static str, usize>,
    pub by_type: BTreeMap<String, BTreeMap<String, usize>>,
    format: Format,
    vendor_type: fn(&Value) -> String,
    width: usize,
}

impl SingleEventTally {
    /// A tally of `format`'s records, broken down by `vendor_type`, whose
    /// printed types take `width` columns.
    pub fn new(format: Format, vendor_type: fn(&Value) -> String, width: usize) -> Self {
        SingleEventTally {
            mapped: 0,
            unmapped: BTreeMap::new(),
            by_type: BTreeMap::new(),
            format,
            vendor_type,
            width,
        }
    }

    pub fn add(&mut self, record: &Value) -> Option<Event> {
        let outcome = match normalize_json(self.format, record) {
            Ok(events) => {
                assert_eq!(events.len(), 1);
                let e = events.into_iter().next().unwrap();
                // The event survives the contract's own parser unchanged.
                let bytes = serde_json::to_vec(&e).unwrap();
                assert_eq!(parse_event(&bytes, ParseLimits::default()).unwrap(), e);
                self.mapped += 1;
                (e.name().to_owned(), Some(e))
            }
            Err(u) => {
                assert_eq!(u.format, self.format);
                *self.unmapped.entry(u.reason.as_str()).or_default() += 1;
                (u.reason.as_str().to_owned(), None)
            }
        };
        *self
            .by_type
            .entry((self.vendor_type)(record))
            .or_default()
            .entry(outcome.0)
            .or_default() += 1;
        outcome.1
    }

    pub fn print(&self, file: &str) {
        println!(
            "{file}: mapped {}, unmapped {:?}",
            self.mapped, self.unmapped
        );
        for (t, outcomes) in &self.by_type {
            let o: Vec<String> = outcomes.iter().map(|(k, n)| format!("{k} x{n}")).collect();
            println!("  {t:<width$} -> {}", o.join(", "), width = self.width);
        }
    }

    pub fn unmapped(&self, reason: UnmappedReason) -> usize {
        self.unmapped.get(reason.as_str()).copied().unwrap_or(0)
    }
}

/// Counts of a file whose records may each make several events: records
/// that mapped, events made, and rejections by reason; per vendor type, what
/// became of it.
pub struct MultiEventTally {
    pub records: usize,
    pub mapped: usize,
    pub events: usize,
    pub unmapped: BTreeMap<&'static str, usize>,
    pub by_type: BTreeMap<String, BTreeMap<String, usize>>,
    width: usize,
}

impl MultiEventTally {
    /// A tally whose printed vendor types take `width` columns.
    pub fn new(width: usize) -> Self {
        MultiEventTally {
            records: 0,
            mapped: 0,
            events: 0,
            unmapped: BTreeMap::new(),
            by_type: BTreeMap::new(),
            width,
        }
    }

    pub fn add(&mut self, vendor_type: Option<String>, result: &Result<Vec<Event>, Unmapped>) {
        self.records += 1;
        let vt = vendor_type.unwrap_or_else(|| "(none)".to_owned());
        let outcome = match result {
            Ok(events) => {
                self.mapped += 1;
                self.events += events.len();
                events
                    .iter()
                    .map(|e| e.name().to_owned())
                    .collect::<Vec<_>>()
                    .join("+")
            }
            Err(u) => {
                *self.unmapped.entry(u.reason.as_str()).or_default() += 1;
                format!("unmapped:{}", u.reason)
            }
        };
        *self
            .by_type
            .entry(vt)
            .or_default()
            .entry(outcome)
            .or_default() += 1;
    }

    /// Each rule test's record through the adapter `map`, tallied under its
    /// `vendor_type`; a rejection must say why.
    pub fn add_panther(
        &mut self,
        cases: &[PantherCase],
        map: impl Fn(&Value) -> Result<Vec<Event>, Unmapped>,
        vendor_type: impl Fn(&Value) -> Option<String>,
    ) {
        for c in cases {
            let result = map(&c.event);
            if let Err(u) = &result {
                assert!(
                    !u.detail.is_empty(),
                    "{}: a rejection without a reason",
                    c.test
                );
            }
            self.add(vendor_type(&c.event), &result);
        }
    }

    pub fn print(&self, title: &str) {
        println!(
            "== {title}: {} records, {} mapped ({} events), unmapped {:?}",
            self.records, self.mapped, self.events, self.unmapped
        );
        for (vt, outcomes) in &self.by_type {
            let o: Vec<String> = outcomes.iter().map(|(k, n)| format!("{k} x{n}")).collect();
            println!("  {vt:<width$} {}", o.join(", "), width = self.width);
        }
    }

    pub fn unmapped(&self, reason: UnmappedReason) -> usize {
        self.unmapped.get(reason.as_str()).copied().unwrap_or(0)
    }

    /// How many records had that outcome, over every vendor type.
    pub fn count(&self, outcome: &str) -> usize {
        self.by_type
            .values()
            .flat_map(|o| o.iter())
            .filter(|(k, _)| k.as_str() == outcome)
            .map(|(_, n)| n)
            .sum()
    }
}

/// Counts per file: mapped, unmapped per reason, both per vendor type, and
/// the fields the mapped events' sources lacked.
pub struct OutcomeTally {
    pub mapped: usize,
    pub unmapped: BTreeMap<String, usize>,
    pub by_type: BTreeMap<(String, String), usize>,
    pub missing: BTreeMap<String, usize>,
    width: usize,
}

impl OutcomeTally {
    /// A tally whose printed vendor types take `width` columns.
    pub fn new(width: usize) -> Self {
        OutcomeTally {
            mapped: 0,
            unmapped: BTreeMap::new(),
            by_type: BTreeMap::new(),
            missing: BTreeMap::new(),
            width,
        }
    }

    pub fn add(&mut self, result: &Result<Event, Unmapped>) {
        let vendor_type = match result {
            Ok(e) => e.source.as_ref().and_then(|s| s.kind.clone()),
            Err(u) => u.vendor_type.clone(),
        }
        .unwrap_or_else(|| "-".to_owned());
        match result {
            Ok(e) => {
                self.mapped += 1;
                for field in e
                    .source
                    .as_ref()
                    .map(|s| s.missing.as_slice())
                    .unwrap_or_default()
                {
                    *self.missing.entry(field.clone()).or_default() += 1;
                }
            }
            Err(u) => {
                *self
                    .unmapped
                    .entry(u.reason.as_str().to_owned())
                    .or_default() += 1
            }
        }
        *self
            .by_type
            .entry((vendor_type, outcome(result)))
            .or_default() += 1;
    }

    pub fn print(&self, file: &str) {
        println!(
            "{file}: mapped {}, unmapped {:?}; source.missing {:?}",
            self.mapped, self.unmapped, self.missing
        );
        for ((vendor_type, outcome), n) in &self.by_type {
            println!(
                "  {n:>3}  {vendor_type:<width$} -> {outcome}",
                width = self.width
            );
        }
    }

    pub fn unmapped(&self, reason: &str) -> usize {
        self.unmapped.get(reason).copied().unwrap_or(0)
    }
}

// ---------------------------------------------------------------------------
// The engine

/// The engine's configuration on MaxMind's city and ASN test databases in
/// `dir`, without the anonymous-IP one (in which the whole of 81.2.69.0/24
/// carries every anonymizer flag).
pub fn geo_config(dir: &Path) -> Arc<EngineConfig> {
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
    config_of(
        read("GeoLite2-City-Test.mmdb"),
        read("GeoLite2-ASN-Test.mmdb"),
    )
}

/// As [`geo_config`] on the shared test databases, or `None`, silently, where
/// either cannot be read.
pub fn geo_config_if_readable() -> Option<Arc<EngineConfig>> {
    let city = std::fs::read(shared_path("geo/GeoLite2-City-Test.mmdb")).ok()?;
    let asn = std::fs::read(shared_path("geo/GeoLite2-ASN-Test.mmdb")).ok()?;
    Some(config_of(city, asn))
}

/// An engine as [`geo_config`] on the shared test databases, or `None` (with
/// a note naming their folder on stderr) where the city database is absent.
pub fn maxmind_engine() -> Option<Engine> {
    let dir = shared_path("geo");
    if !dir.join("GeoLite2-City-Test.mmdb").exists() {
        eprintln!(
            "skipped: {} absent (the shared MaxMind test databases)",
            dir.display()
        );
        return None;
    }
    Some(Engine::new(geo_config(&dir)))
}

fn config_of(city: Vec<u8>, asn: Vec<u8>) -> Arc<EngineConfig> {
    Arc::new(EngineConfig {
        policy: Policy::default_policy().unwrap(),
        geo: GeoIp::from_bytes(Some(city), Some(asn), None).unwrap(),
        limits: StateLimits::default(),
        ip_observations: Default::default(),
    })
}

// ---------------------------------------------------------------------------
// Verdicts beside a vendor's (Panther's expected alert, Google's warnings)

/// What the engine made of a record.
pub struct Scored {
    pub name: String,
    pub level: Level,
    pub decision: Decision,
    pub signals: Vec<String>,
}

/// A record's events through a fresh engine (the verdict of a record
/// without history): the last event's record, or why there is none.
pub fn score_fresh(
    config: &Arc<EngineConfig>,
    result: Result<Vec<Event>, Unmapped>,
) -> Result<Scored, String> {
    match result {
        Err(u) => Err(format!("{} ({})", u.reason, u.detail)),
        Ok(events) => {
            let mut engine = Engine::new(Arc::clone(config));
            let mut last = Err("no event".to_owned());
            for e in &events {
                last = engine
                    .handle_event(e)
                    .map(|r| Scored {
                        name: e.name().to_owned(),
                        level: r.level,
                        decision: r.decision,
                        signals: r.signals.iter().map(|s| s.code.to_string()).collect(),
                    })
                    .map_err(|r| format!("engine rejected: {r}"));
            }
            last
        }
    }
}

/// One verdict comparison.
pub struct Verdict {
    /// The rule, or where the vendor's verdict comes from.
    pub source: String,
    pub test: String,
    pub vendor: bool,
    /// What the engine said, or why the record never reached it.
    pub engine: Result<Scored, String>,
    pub mocked: bool,
}

impl Verdict {
    /// The engine flags a record when it asks for more than the record
    /// showed (step-up or deny) or rates the session high or critical.
    pub fn flagged(&self) -> bool {
        matches!(&self.engine, Ok(s) if s.decision != Decision::Allow || s.level >= Level::High)
    }

    pub fn agrees(&self) -> bool {
        self.flagged() == self.vendor
    }
}

/// Column widths of the agreement table: source, test, vendor.
pub struct Columns {
    pub source: usize,
    pub test: usize,
    pub vendor: usize,
}

/// The agreement table: a row per verdict, then per source (headed
/// `label`) the records, the vendor's alerts and the agreements, then the
/// total.
pub fn print_agreement(verdicts: &[Verdict], label: &str, w: &Columns) {
    println!(
        "{label:<sw$} {:<tw$} {:>vw$} {:>6} {:<5} engine",
        "test",
        "vendor",
        "engine",
        "agree",
        sw = w.source,
        tw = w.test,
        vw = w.vendor
    );
    for v in verdicts {
        let engine = match &v.engine {
            Ok(s) => format!(
                "{} level={} decision={} [{}]",
                s.name,
                s.level.as_str(),
                s.decision.as_str(),
                s.signals.join(",")
            ),
            Err(why) => format!("not scored: {why}"),
        };
        println!(
            "{:<sw$} {:<tw$} {:>vw$} {:>6} {:<5} {engine}{}",
            v.source,
            v.test,
            v.vendor,
            v.flagged(),
            if v.agrees() { "yes" } else { "NO" },
            if v.mocked {
                " (panther mocked history)"
            } else {
                ""
            },
            sw = w.source,
            tw = w.test,
            vw = w.vendor
        );
    }
    let mut per_source: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    for v in verdicts {
        let e = per_source.entry(v.source.as_str()).or_default();
        e.0 += 1;
        e.1 += usize::from(v.vendor);
        e.2 += usize::from(v.agrees());
    }
    println!(
        "{label:<sw$} {:>7} {:>13} {:>6}",
        "records",
        "vendor alerts",
        "agree",
        sw = w.source
    );
    for (source, (n, alerts, agree)) in &per_source {
        println!(
            "{source:<sw$} {n:>7} {alerts:>13} {agree:>6}",
            sw = w.source
        );
    }
    let agree = verdicts.iter().filter(|v| v.agrees()).count();
    let scored = verdicts.iter().filter(|v| v.engine.is_ok()).count();
    println!(
        "agreement: {agree} of {} records ({scored} scored by the engine)",
        verdicts.len()
    );
}
