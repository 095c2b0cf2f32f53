//! Evaluation: protection and friction of a replay against its labels.
//!
//! The terms are those of CONTRACT.md, "Evaluation terms":
//!
//! - a *sensitive action* is an action event whose record's
//!   `trigger.sensitivity` is `high` or `critical`;
//! - *protection*: attacker sensitive actions stepped up or denied, over all
//!   attacker sensitive actions;
//! - *friction*: benign sensitive actions stepped up or denied, over all
//!   benign sensitive actions;
//! - *login friction*: benign `login.success` events not allowed, over all
//!   benign `login.success` events.
//!
//! Beside the engine, three baselines decide on the same sensitive actions
//! (the sensitivity always comes from the engine's records, so every system
//! sees the same policy): `always` steps up every one, `never` none, and
//! `timer-15m` steps one up when its session's last event with `auth.aal` of
//! 2 or more is older than 15 minutes or absent; a legitimate user completes
//! the prompt, which restarts the timer at that action, an attacker does not.
//! The baselines add no prompts at login, so their login friction is zero.
//!
//! Events are taken in input order (the order the engine saw them); an event
//! id seen before is counted once. Labels are read from the events only: the
//! records are joined to them by `trigger.event_id`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::{self, Write as _};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io;
use std::path::{Path, PathBuf};

use riskstream_schemas::{
    AuthType, Decision, Event, EventKind, ParseLimits, PrincipalType, RiskRecord, Sensitivity,
    Timestamp,
};
use serde::{Deserialize, Serialize};

use crate::replay::{
    EngineOptions, LineReader, PolicySource, RecordSink, ReplayError, Replayer, StreamError,
    open_input, parse_line,
};
use crate::sweep::ScoreCounts;

/// The `schema` of the JSON report.
pub const EVALUATION_SCHEMA_ID: &str = "riskstream.evaluation.v1";

/// The `timer-15m` baseline's freshness window: 15 minutes, as CONTRACT.md
/// names it (and as common "sudo mode" re-authentication windows are set).
pub const TIMER_WINDOW_MS: i64 = 15 * 60 * 1000;

/// The scenario name of events without `labels.scenario`.
pub const NO_SCENARIO: &str = "(none)";

/// A failure of an evaluation as a whole.
#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    /// Loading the engine or reading the events for the in-memory replay.
    #[error(transparent)]
    Replay(#[from] ReplayError),
    /// A line of the records file is not a risk record.
    #[error("{path}:{line}: not a risk record: {source}")]
    Record {
        /// The records file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
}

/// What the evaluation needs of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// `trigger.sensitivity`.
    pub sensitivity: Sensitivity,
    /// `decision`.
    pub decision: Decision,
    /// `score`, for the threshold sweep.
    pub score: u8,
}

/// The systems compared, in report order.
pub const SYSTEMS: [&str; 4] = ["engine", "always", "timer-15m", "never"];
const ENGINE: usize = 0;
const ALWAYS: usize = 1;
const TIMER: usize = 2;
const NEVER: usize = 3;

/// Raw counts behind the three ratios, for one system and one slice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Tally {
    attack_sensitive: u64,
    attack_stopped: u64,
    benign_sensitive: u64,
    benign_stopped: u64,
    benign_logins: u64,
    benign_logins_challenged: u64,
}

impl Tally {
    fn metrics(&self) -> Metrics {
        Metrics {
            protection: Ratio::new(self.attack_stopped, self.attack_sensitive),
            friction: Ratio::new(self.benign_stopped, self.benign_sensitive),
            login_friction: Ratio::new(self.benign_logins_challenged, self.benign_logins),
        }
    }
}

#[derive(Clone, Debug, Default)]
struct SystemTallies {
    overall: Tally,
    by_scenario: BTreeMap<String, Tally>,
    by_type: [Tally; 3],
}

impl SystemTallies {
    fn each(&mut self, scenario: &str, kind: PrincipalType, f: impl Fn(&mut Tally)) {
        f(&mut self.overall);
        match self.by_scenario.get_mut(scenario) {
            Some(t) => f(t),
            None => {
                let mut t = Tally::default();
                f(&mut t);
                self.by_scenario.insert(scenario.to_owned(), t);
            }
        }
        f(&mut self.by_type[type_slot(kind)]);
    }
}

const TYPES: [PrincipalType; 3] = [
    PrincipalType::Human,
    PrincipalType::Workload,
    PrincipalType::Agent,
];

fn type_slot(kind: PrincipalType) -> usize {
    match kind {
        PrincipalType::Human => 0,
        PrincipalType::Workload => 1,
        PrincipalType::Agent => 2,
    }
}

/// Accumulates events and their outcomes, in input order.
#[derive(Debug, Default)]
pub struct Evaluator {
    /// Hashes of `(tenant, id)` seen: 8 bytes an event instead of the id.
    seen: HashSet<u64>,
    /// Per `(tenant, principal, session)`: time of the last aal ≥ 2 event,
    /// or of the last prompt a legitimate user completed (`timer-15m`).
    last_strong: HashMap<String, Option<Timestamp>>,
    key: String,
    counts: InputCounts,
    scenarios: BTreeMap<String, ScenarioInfo>,
    systems: [SystemTallies; 4],
    /// Sensitive actions per score, for the threshold sweep.
    scores: ScoreCounts,
}

impl Evaluator {
    /// An empty evaluation.
    pub fn new() -> Self {
        Evaluator::default()
    }

    /// Takes one event with the outcome of its record.
    pub fn observe(&mut self, event: &Event, outcome: Outcome) {
        let mut h = DefaultHasher::new();
        (&event.tenant, &event.id).hash(&mut h);
        if !self.seen.insert(h.finish()) {
            self.counts.duplicates += 1;
            return;
        }
        self.counts.evaluated += 1;
        if event.labels.is_none() {
            self.counts.unlabelled += 1;
        }
        let attack = event.is_labelled_attack();
        let scenario = event.labelled_scenario().unwrap_or(NO_SCENARIO);
        let info = match self.scenarios.get_mut(scenario) {
            Some(info) => info,
            None => self.scenarios.entry(scenario.to_owned()).or_default(),
        };
        if attack {
            info.attack_events += 1;
        } else {
            info.benign_events += 1;
        }

        // The session's timer, for `timer-15m`. An event that itself reaches
        // aal 2 or more is the session's last strong event, also when it is
        // a sensitive action.
        self.key.clear();
        for part in [&event.tenant, &event.principal.id, &event.session] {
            self.key.push_str(part);
            self.key.push('\u{1f}');
        }
        let last_strong = match self.last_strong.get_mut(self.key.as_str()) {
            Some(t) => t,
            None => self.last_strong.entry(self.key.clone()).or_default(),
        };
        if event.aal().is_some_and(|aal| aal >= 2) {
            *last_strong = Some(event.time);
        }

        let kind = event.principal.kind;
        let sensitive = event.kind() == EventKind::Action
            && matches!(
                outcome.sensitivity,
                Sensitivity::High | Sensitivity::Critical
            );
        if sensitive {
            let stale =
                last_strong.is_none_or(|t| event.time.millis() - t.millis() > TIMER_WINDOW_MS);
            if stale && !attack {
                *last_strong = Some(event.time);
            }
            let mut stopped = [false; 4];
            stopped[ENGINE] = outcome.decision.is_intervention();
            stopped[ALWAYS] = true;
            stopped[TIMER] = stale;
            stopped[NEVER] = false;
            self.scores.add(attack, outcome.score);
            for (system, stop) in self.systems.iter_mut().zip(stopped) {
                system.each(scenario, kind, |t| {
                    if attack {
                        t.attack_sensitive += 1;
                        t.attack_stopped += u64::from(stop);
                    } else {
                        t.benign_sensitive += 1;
                        t.benign_stopped += u64::from(stop);
                    }
                });
            }
        } else if !attack && event.auth_type() == Some(AuthType::LoginSuccess) {
            let mut challenged = [false; 4];
            challenged[ENGINE] = outcome.decision != Decision::Allow;
            for (system, challenge) in self.systems.iter_mut().zip(challenged) {
                system.each(scenario, kind, |t| {
                    t.benign_logins += 1;
                    t.benign_logins_challenged += u64::from(challenge);
                });
            }
        }
    }

    /// Sensitive actions per score so far, for [`crate::sweep::Sweep`].
    pub fn scores(&self) -> &ScoreCounts {
        &self.scores
    }

    /// The report. `source` says where the records came from.
    pub fn report(&self, source: RecordsSource) -> EvaluationReport {
        let build = |s: &SystemTallies| SystemReport {
            overall: s.overall.metrics(),
            by_scenario: s
                .by_scenario
                .iter()
                .map(|(k, t)| (k.clone(), t.metrics()))
                .collect(),
            by_principal_type: TYPES
                .iter()
                .map(|k| (k.as_str().to_owned(), s.by_type[type_slot(*k)].metrics()))
                .collect(),
        };
        EvaluationReport {
            schema: EVALUATION_SCHEMA_ID,
            source,
            events: self.counts,
            scenarios: self.scenarios.clone(),
            systems: Systems {
                engine: build(&self.systems[ENGINE]),
                always: build(&self.systems[ALWAYS]),
                timer_15m: build(&self.systems[TIMER]),
                never: build(&self.systems[NEVER]),
            },
        }
    }
}

impl RecordSink for Evaluator {
    fn accept(&mut self, event: &Event, record: &RiskRecord) -> io::Result<()> {
        self.observe(
            event,
            Outcome {
                sensitivity: record.trigger.sensitivity,
                decision: record.decision,
                score: record.score,
            },
        );
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// The report

/// A ratio with the counts behind it; `value` is `null` when the denominator
/// is zero.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Ratio {
    /// `numerator / denominator`.
    pub value: Option<f64>,
    /// Events counted as stopped (or challenged).
    pub numerator: u64,
    /// Events counted.
    pub denominator: u64,
}

impl Ratio {
    /// `numerator / denominator`, or no value when the denominator is zero.
    pub fn new(numerator: u64, denominator: u64) -> Self {
        Ratio {
            value: (denominator > 0).then(|| numerator as f64 / denominator as f64),
            numerator,
            denominator,
        }
    }
}

impl fmt::Display for Ratio {
    /// `0.950 (19/20)`, or `n/a (0/0)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self.value {
            Some(v) => format!("{v:.3} ({}/{})", self.numerator, self.denominator),
            None => format!("n/a ({}/{})", self.numerator, self.denominator),
        };
        f.pad(&text)
    }
}

/// The three ratios of the contract.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Metrics {
    /// Attacker sensitive actions stopped.
    pub protection: Ratio,
    /// Benign sensitive actions stopped.
    pub friction: Ratio,
    /// Benign `login.success` events not allowed.
    pub login_friction: Ratio,
}

/// One system's metrics, overall and sliced.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SystemReport {
    /// Over every event.
    pub overall: Metrics,
    /// Per `labels.scenario` (events without one under [`NO_SCENARIO`]).
    pub by_scenario: BTreeMap<String, Metrics>,
    /// Per principal type: always `human`, `workload` and `agent`.
    pub by_principal_type: BTreeMap<String, Metrics>,
}

/// The engine and the baselines.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Systems {
    /// The engine's decisions from the records.
    pub engine: SystemReport,
    /// Step up every sensitive action.
    pub always: SystemReport,
    /// Step up when the session's last strong authentication is older than
    /// 15 minutes.
    #[serde(rename = "timer-15m")]
    pub timer_15m: SystemReport,
    /// Never step up.
    pub never: SystemReport,
}

impl Systems {
    /// `(name, report)` in [`SYSTEMS`] order.
    pub fn iter(&self) -> [(&'static str, &SystemReport); 4] {
        [
            (SYSTEMS[ENGINE], &self.engine),
            (SYSTEMS[ALWAYS], &self.always),
            (SYSTEMS[TIMER], &self.timer_15m),
            (SYSTEMS[NEVER], &self.never),
        ]
    }
}

/// What a scenario holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ScenarioInfo {
    /// Events labelled `attack: true`.
    pub attack_events: u64,
    /// Other events.
    pub benign_events: u64,
}

impl ScenarioInfo {
    /// An attack scenario holds at least one attacker event; its measure is
    /// protection. A benign one's is friction.
    pub fn is_attack(&self) -> bool {
        self.attack_events > 0
    }
}

/// How the input went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct InputCounts {
    /// Non-blank event lines read.
    pub lines: u64,
    /// Event lines rejected (by the parser, or by the engine as duplicates).
    pub rejected: u64,
    /// Events whose id was seen before, counted once.
    pub duplicates: u64,
    /// Valid events without a record (`--records` from another input).
    pub without_record: u64,
    /// Events evaluated.
    pub evaluated: u64,
    /// Evaluated events without any `labels` (counted as benign).
    pub unlabelled: u64,
}

/// Where the records came from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RecordsSource {
    /// The records file, or `in-memory replay`.
    pub records: String,
    /// The policy of the in-memory replay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicySource>,
    /// Every `model.policy` hash in the records file.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub record_policies: Vec<String>,
}

/// Picks one ratio of a [`Metrics`], for a table column.
type Pick = fn(&Metrics) -> Ratio;

/// The evaluation, as `--format json` writes it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EvaluationReport {
    /// Always [`EVALUATION_SCHEMA_ID`].
    pub schema: &'static str,
    /// Where the records came from.
    pub source: RecordsSource,
    /// How the input went.
    pub events: InputCounts,
    /// Every scenario and what it holds.
    pub scenarios: BTreeMap<String, ScenarioInfo>,
    /// The engine and the baselines.
    pub systems: Systems,
}

impl EvaluationReport {
    /// Failures of the CI thresholds on the engine's overall numbers, as
    /// sentences; empty when every given threshold is met. A protection
    /// that cannot be computed (no attacker sensitive action) fails a
    /// minimum: a gate should not pass on a fixture without attacks.
    pub fn check(&self, min_protection: Option<f64>, max_friction: Option<f64>) -> Vec<String> {
        let mut failures = Vec::new();
        let overall = &self.systems.engine.overall;
        if let Some(min) = min_protection {
            match overall.protection.value {
                Some(v) if v >= min => {}
                Some(_) => failures.push(format!(
                    "protection {} is below --min-protection {min}",
                    overall.protection
                )),
                None => failures.push(format!(
                    "protection cannot be computed (no attacker sensitive action) for --min-protection {min}"
                )),
            }
        }
        if let Some(max) = max_friction
            && let Some(v) = overall.friction.value
            && v > max
        {
            failures.push(format!(
                "friction {} is above --max-friction {max}",
                overall.friction
            ));
        }
        failures
    }

    /// The report as tables for people.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        // Writing to a String cannot fail.
        let _ = self.write_text(&mut s);
        // Cells are padded to line up; the last one need not be.
        let mut out = String::with_capacity(s.len());
        for line in s.lines() {
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    fn write_text(&self, s: &mut String) -> fmt::Result {
        let e = &self.events;
        writeln!(s, "riskstream evaluation")?;
        write!(s, "  records      {}", self.source.records)?;
        if let Some(p) = &self.source.policy {
            write!(s, ", policy {} ({}, {})", p.name, p.hash, p.source)?;
        }
        if !self.source.record_policies.is_empty() {
            write!(s, ", policy {}", self.source.record_policies.join(", "))?;
        }
        writeln!(s)?;
        writeln!(
            s,
            "  events       {} lines: {} evaluated, {} rejected, {} duplicates, {} without record, {} unlabelled",
            e.lines, e.evaluated, e.rejected, e.duplicates, e.without_record, e.unlabelled
        )?;
        writeln!(s)?;

        const CELL: usize = 22;
        writeln!(
            s,
            "{:<14}{:<CELL$}{:<CELL$}{:<CELL$}",
            "overall", "protection", "friction", "login friction"
        )?;
        for (name, r) in self.systems.iter() {
            let m = &r.overall;
            writeln!(
                s,
                "  {name:<12}{:<CELL$}{:<CELL$}{:<CELL$}",
                m.protection, m.friction, m.login_friction
            )?;
        }

        writeln!(s)?;
        writeln!(
            s,
            "by scenario (attack scenarios: protection; benign scenarios: friction, login friction)"
        )?;
        let width = self
            .scenarios
            .keys()
            .map(|k| k.chars().count())
            .max()
            .unwrap_or(0)
            .max(8)
            + 2;
        write!(s, "  {:<width$}{:<16}", "scenario", "measure")?;
        for name in SYSTEMS {
            write!(s, "{name:<CELL$}")?;
        }
        writeln!(s)?;
        for (scenario, info) in &self.scenarios {
            let engine = self.systems.engine.by_scenario.get(scenario);
            let rows: &[(&str, Pick)] = if info.is_attack() {
                &[("protection", |m| m.protection)]
            } else {
                &[
                    ("friction", |m| m.friction),
                    ("login friction", |m| m.login_friction),
                ]
            };
            for (i, (measure, pick)) in rows.iter().enumerate() {
                // The login row only where the scenario has benign logins.
                if i > 0 && engine.is_none_or(|m| pick(m).denominator == 0) {
                    continue;
                }
                let name = if i == 0 { scenario.as_str() } else { "" };
                write!(s, "  {name:<width$}{measure:<16}")?;
                for (_, r) in self.systems.iter() {
                    match r.by_scenario.get(scenario) {
                        Some(m) => write!(s, "{:<CELL$}", pick(m))?,
                        None => write!(s, "{:<CELL$}", Ratio::new(0, 0))?,
                    }
                }
                writeln!(s)?;
            }
        }

        writeln!(s)?;
        writeln!(s, "by principal type")?;
        write!(s, "  {:<10}{:<16}", "type", "measure")?;
        for name in SYSTEMS {
            write!(s, "{name:<CELL$}")?;
        }
        writeln!(s)?;
        let measures: [(&str, Pick); 3] = [
            ("protection", |m| m.protection),
            ("friction", |m| m.friction),
            ("login friction", |m| m.login_friction),
        ];
        for kind in TYPES {
            let key = kind.as_str();
            let engine = self.systems.engine.by_principal_type.get(key);
            for (measure, pick) in measures {
                if engine.is_none_or(|m| pick(m).denominator == 0) {
                    continue;
                }
                write!(s, "  {key:<10}{measure:<16}")?;
                for (_, r) in self.systems.iter() {
                    if let Some(m) = r.by_principal_type.get(key) {
                        write!(s, "{:<CELL$}", pick(m))?;
                    }
                }
                writeln!(s)?;
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// `riskstream evaluate`

/// Everything `riskstream evaluate` takes.
#[derive(Clone, Debug)]
pub struct EvaluateOptions {
    /// Labelled events, read in this order.
    pub events: Vec<PathBuf>,
    /// Risk records of a replay of the same events; when absent, the events
    /// are replayed in memory first.
    pub records: Option<PathBuf>,
    /// Engine configuration for the in-memory replay.
    pub engine: EngineOptions,
    /// Parse limits for the events.
    pub limits: ParseLimits,
}

/// The minimal record the join needs; other fields are ignored.
#[derive(Deserialize)]
struct RecordView {
    trigger: TriggerView,
    decision: Decision,
    score: u8,
    #[serde(default)]
    model: Option<ModelView>,
}

#[derive(Deserialize)]
struct TriggerView {
    event_id: String,
    sensitivity: Sensitivity,
}

#[derive(Deserialize)]
struct ModelView {
    policy: String,
}

fn read_error(path: &Path) -> impl FnOnce(io::Error) -> EvaluateError + '_ {
    move |source| {
        EvaluateError::Replay(ReplayError::Read {
            path: path.to_owned(),
            source,
        })
    }
}

/// Reads a records file into `event_id -> outcome`, and the policy hashes.
fn read_records(
    path: &Path,
    limits: ParseLimits,
) -> Result<(HashMap<String, Outcome>, BTreeSet<String>), EvaluateError> {
    let input = open_input(path, None).map_err(read_error(path))?;
    // Records are larger than events (signals, evidence); any record the
    // engine writes for an accepted event stays far below 16 times the event
    // limit.
    let mut lines = LineReader::new(input, limits.max_bytes.saturating_mul(16));
    let mut outcomes = HashMap::new();
    let mut policies = BTreeSet::new();
    while let Some(line) = lines.next_line().map_err(read_error(path))? {
        if line.is_blank() {
            continue;
        }
        let record: RecordView =
            serde_json::from_slice(line.bytes).map_err(|source| EvaluateError::Record {
                path: path.to_owned(),
                line: line.number,
                source,
            })?;
        if let Some(model) = record.model
            && !policies.contains(&model.policy)
        {
            policies.insert(model.policy);
        }
        outcomes.insert(
            record.trigger.event_id,
            Outcome {
                sensitivity: record.trigger.sensitivity,
                decision: record.decision,
                score: record.score,
            },
        );
    }
    Ok((outcomes, policies))
}

/// Runs `riskstream evaluate`.
pub fn evaluate(opts: &EvaluateOptions) -> Result<EvaluationReport, EvaluateError> {
    evaluate_with_scores(opts).map(|(report, _)| report)
}

/// Runs `riskstream evaluate`, and returns beside the report the sensitive
/// actions per score that [`crate::sweep::Sweep::new`] takes.
pub fn evaluate_with_scores(
    opts: &EvaluateOptions,
) -> Result<(EvaluationReport, ScoreCounts), EvaluateError> {
    let mut evaluator = Evaluator::new();
    let source = match &opts.records {
        None => {
            let loaded = opts.engine.load()?;
            let mut replayer = Replayer::new(loaded.engine(), opts.limits);
            for path in &opts.events {
                let input = open_input(path, None).map_err(read_error(path))?;
                let name = path.display().to_string();
                replayer
                    .run(input, &name, &mut evaluator, None)
                    .map_err(|e| match e {
                        StreamError::Read(source)
                        | StreamError::WriteRecords(source)
                        | StreamError::WriteRejects(source) => read_error(path)(source),
                    })?;
            }
            let summary = replayer.finish();
            evaluator.counts.lines = summary.lines;
            evaluator.counts.rejected = summary.rejected;
            RecordsSource {
                records: "in-memory replay".to_owned(),
                policy: Some(loaded.policy),
                record_policies: Vec::new(),
            }
        }
        Some(records) => {
            let (outcomes, policies) = read_records(records, opts.limits)?;
            for path in &opts.events {
                let input = open_input(path, None).map_err(read_error(path))?;
                let mut lines = LineReader::new(input, opts.limits.max_bytes);
                while let Some(line) = lines.next_line().map_err(read_error(path))? {
                    if line.is_blank() {
                        continue;
                    }
                    evaluator.counts.lines += 1;
                    match parse_line(&line, opts.limits) {
                        Err(_) => evaluator.counts.rejected += 1,
                        Ok(event) => match outcomes.get(&event.id) {
                            Some(outcome) => evaluator.observe(&event, *outcome),
                            None => evaluator.counts.without_record += 1,
                        },
                    }
                }
            }
            RecordsSource {
                records: records.display().to_string(),
                policy: None,
                record_policies: policies.into_iter().collect(),
            }
        }
    };
    let report = evaluator.report(source);
    Ok((report, evaluator.scores))
}
