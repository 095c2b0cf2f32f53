//! Replay: JSON Lines of events in (plain or gzip), risk records out.
//!
//! The shell around the engine for files: [`LineReader`] cuts the input into
//! lines without ever buffering more than the event size limit, [`parse_line`]
//! turns one line into an [`Event`] or a [`Rejection`], and [`Replayer`] feeds
//! the engine, drives its idle expiry from event time, hands each record to a
//! [`RecordSink`] (usually [`JsonLines`], or Parquet through
//! [`crate::parquet_out`]) and each rejection to a rejects writer, and keeps
//! the [`ReplaySummary`]. [`replay`] does all of that for the `riskstream
//! replay` subcommand.
//!
//! Nothing written to the output depends on the wall clock: the same input
//! gives the same bytes. Only the summary carries timings.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use riskstream_adapters::{AdapterOptions, Format, Unmapped, normalize_items};
use riskstream_detectors::{
    Engine, EngineConfig, EngineStats, GeoError, GeoIp, IpObservationConfig, Policy, PolicyError,
    StateLimits,
};
use riskstream_schemas::{
    Decision, Event, ParseLimits, RejectReason, Rejection, RiskRecord, Sensitivity, Timestamp,
    parse_event_str,
};
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::caep::{CaepEmitter, CaepError, CaepOptions, CaepSigner};
use crate::fixtures;
use crate::parquet_out::ParquetSink;

/// Capacity of the output and rejects writers. 256 KiB: large enough that a
/// write system call carries about a thousand records, small enough not to
/// matter next to the engine's state.
const WRITE_BUFFER_BYTES: usize = 256 * 1024;

/// Capacity of the input reader. 128 KiB: twice the default event size
/// limit, so that a maximal line usually needs no more than two refills.
const READ_BUFFER_BYTES: usize = 128 * 1024;

/// The `raw` field of a reject keeps at most this many characters of the
/// line: enough to see what the sender sent, bounded so that a rejects file
/// stays small when a whole input is bad.
pub const REJECT_RAW_CHARS: usize = 1024;

/// How often, in lines, the progress bar's message is refreshed. The bar
/// itself follows the bytes read; the message only shows counts, and
/// formatting it on every line would cost more than the line.
const PROGRESS_EVERY_LINES: u64 = 16 * 1024;

/// A failure of a replay as a whole (a rejected event is not one: it is a
/// value, counted and written to the rejects file).
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// An input, policy or database file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: io::Error,
    },
    /// An output file could not be created or written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: io::Error,
    },
    /// The policy file is not a valid policy.
    #[error("invalid policy {source_name}: {source}")]
    Policy {
        /// The policy file, or `built-in`.
        source_name: String,
        /// What is wrong with it.
        #[source]
        source: Box<PolicyError>,
    },
    /// A GeoIP database is not a valid MaxMind DB.
    #[error("cannot load GeoIP databases ({sources}): {source}")]
    Geo {
        /// Which databases were given.
        sources: String,
        /// What the reader said.
        #[source]
        source: Box<GeoError>,
    },
    /// `--format` given neither once nor once per input.
    #[error(
        "{formats} --format values for {inputs} inputs: give one for all inputs, or one per input"
    )]
    Formats {
        /// Formats given.
        formats: usize,
        /// Inputs given.
        inputs: usize,
    },
    /// The CAEP signing key could not be loaded.
    #[error(transparent)]
    Caep(#[from] CaepError),
    /// Some line produced neither a record nor a reject: a bug, reported
    /// rather than hidden.
    #[error("lines ({lines}) != records ({records}) + rejects ({rejects})")]
    Unbalanced {
        /// Non-blank lines read.
        lines: u64,
        /// Records written.
        records: u64,
        /// Rejects.
        rejects: u64,
    },
}

/// A failure while streaming one input, before it is given a file name.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// Reading the input failed (including a corrupt gzip stream).
    #[error("reading input: {0}")]
    Read(#[source] io::Error),
    /// Writing a record failed.
    #[error("writing records: {0}")]
    WriteRecords(#[source] io::Error),
    /// Writing a reject failed.
    #[error("writing rejects: {0}")]
    WriteRejects(#[source] io::Error),
}

// ---------------------------------------------------------------------------
// Lines

/// One line of input, borrowed from the [`LineReader`]'s buffer.
#[derive(Debug)]
pub struct Line<'a> {
    /// 1-based physical line number in its input (blank lines count here,
    /// so that a reject points at the line an editor shows).
    pub number: u64,
    /// The line without its `\n` (and without a `\r` before it), cut at the
    /// reader's limit plus one byte.
    pub bytes: &'a [u8],
    /// Length of the whole line in bytes, without its line ending.
    pub len: usize,
}

impl Line<'_> {
    /// Whether the whole line did not fit the reader's limit.
    pub fn is_truncated(&self) -> bool {
        self.len > self.bytes.len()
    }

    /// Whether the line holds nothing but ASCII whitespace.
    pub fn is_blank(&self) -> bool {
        !self.is_truncated() && self.bytes.iter().all(u8::is_ascii_whitespace)
    }
}

/// Reads lines with bounded memory: at most `max_bytes + 1` bytes of a line
/// are kept, the rest is skipped up to the next `\n`.
///
/// `BufRead::read_until` would grow its buffer to the longest line, which one
/// bad line of a gigabyte would make a gigabyte.
pub struct LineReader<R> {
    input: R,
    buf: Vec<u8>,
    keep: usize,
    number: u64,
    /// Bytes of the input's buffer that the last line was lent from, to
    /// consume before reading the next.
    lent: usize,
}

impl<R: BufRead> LineReader<R> {
    /// A reader that keeps up to `max_bytes + 1` bytes of each line, so that
    /// a line of exactly `max_bytes` is whole and a longer one is known to be
    /// longer.
    pub fn new(input: R, max_bytes: usize) -> Self {
        let keep = max_bytes.saturating_add(1);
        LineReader {
            input,
            buf: Vec::with_capacity(keep.min(READ_BUFFER_BYTES)),
            keep,
            number: 0,
            lent: 0,
        }
    }

    /// The next line, or `None` at the end of the input.
    pub fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        if self.lent > 0 {
            self.input.consume(self.lent);
            self.lent = 0;
        }
        // A line wholly in the input's buffer, within the limit, is lent
        // from there rather than copied (once per event on the replay's hot
        // path).
        let whole = loop {
            match self.input.fill_buf() {
                Ok(available) => {
                    break memchr::memchr(b'\n', available).filter(|&end| end <= self.keep);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        if let Some(end) = whole {
            // The buffer still holds the line: fill_buf reads nothing new
            // while it holds unconsumed bytes.
            let available = self.input.fill_buf()?;
            let mut bytes = available.get(..end).unwrap_or_default();
            if let [rest @ .., b'\r'] = bytes {
                bytes = rest;
            }
            self.lent = end + 1;
            self.number += 1;
            return Ok(Some(Line {
                number: self.number,
                bytes,
                len: bytes.len(),
            }));
        }
        self.buf.clear();
        let mut len = 0usize;
        let mut seen_any = false;
        loop {
            let available = match self.input.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                if !seen_any {
                    return Ok(None);
                }
                break;
            }
            seen_any = true;
            let (chunk, used, done) = match memchr::memchr(b'\n', available) {
                Some(i) => (&available[..i], i + 1, true),
                None => (available, available.len(), false),
            };
            let room = self.keep.saturating_sub(self.buf.len());
            self.buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
            len = len.saturating_add(chunk.len());
            self.input.consume(used);
            if done {
                break;
            }
        }
        // A `\r` before the `\n` (CRLF files) is part of the line ending. When
        // the line was cut, its end is gone, and the length stays as counted:
        // the line is too large either way.
        if len == self.buf.len() && self.buf.last() == Some(&b'\r') {
            self.buf.pop();
            len -= 1;
        }
        self.number += 1;
        Ok(Some(Line {
            number: self.number,
            bytes: &self.buf,
            len,
        }))
    }
}

/// One line to an event, or the reason it is rejected: too large (without
/// parsing), not UTF-8 (`not_json`), then everything
/// [`riskstream_schemas::parse_event`] checks.
pub fn parse_line(line: &Line<'_>, limits: ParseLimits) -> Result<Event, Rejection> {
    if line.len > limits.max_bytes {
        return Err(Rejection::new(
            RejectReason::TooLarge,
            None,
            format!("{} bytes, limit {}", line.len, limits.max_bytes),
        ));
    }
    match std::str::from_utf8(line.bytes) {
        Ok(text) => parse_event_str(text, limits),
        Err(e) => Err(Rejection::new(
            RejectReason::NotJson,
            None,
            format!("invalid UTF-8 at byte {}", e.valid_up_to()),
        )),
    }
}

/// Why a line gave no event.
#[derive(Debug)]
pub(crate) enum LineReject {
    /// A contract event (or a mapped one) that the contract rejects.
    Contract(Rejection),
    /// A native record its adapter could not map.
    Unmapped(Unmapped),
}

/// One line of a native format to its outcomes through the adapter: one
/// per record it holds (a CloudTrail log file holds many), each an event or
/// the reason it does not map; never none.
pub(crate) fn parse_native(
    format: Format,
    line: &Line<'_>,
    limits: ParseLimits,
    adapter: &AdapterOptions,
) -> Vec<Result<Event, LineReject>> {
    if line.len > limits.max_bytes {
        return vec![Err(LineReject::Contract(Rejection::new(
            RejectReason::TooLarge,
            None,
            format!("{} bytes, limit {}", line.len, limits.max_bytes),
        )))];
    }
    normalize_items(format, line.bytes, adapter)
        .into_iter()
        .map(|item| item.map_err(LineReject::Unmapped))
        .collect()
}

/// Writes one rejects-file line, when there is a rejects file.
pub(crate) fn write_reject<'w>(
    rejects: Option<&mut (dyn Write + 'w)>,
    source_name: &str,
    line: &Line<'_>,
    reject: &LineReject,
) -> Result<(), StreamError> {
    let Some(w) = rejects else { return Ok(()) };
    let raw = raw_excerpt(line.bytes);
    let (reason, field, detail) = match reject {
        LineReject::Contract(r) => (r.reason.as_str(), r.field.as_deref(), r.detail.clone()),
        LineReject::Unmapped(u) => (
            u.reason.as_str(),
            None,
            match &u.vendor_type {
                Some(t) => format!("{} [{t}]: {}", u.format, u.detail),
                None => format!("{}: {}", u.format, u.detail),
            },
        ),
    };
    let reject = RejectLine {
        file: source_name,
        line: line.number,
        reason,
        field,
        detail: &detail,
        raw: &raw,
    };
    serde_json::to_writer(&mut *w, &reject).map_err(|e| StreamError::WriteRejects(e.into()))?;
    w.write_all(b"\n").map_err(StreamError::WriteRejects)
}

// ---------------------------------------------------------------------------
// Inputs

/// Opens an input file (or `-` for standard input), plain or gzip.
///
/// Gzip is recognised by its magic bytes `1f 8b`, not by the file name, and
/// concatenated gzip members (as `cat a.gz b.gz` makes) are read as one
/// stream. `progress`, when given, counts the bytes read from the file (the
/// compressed bytes for gzip), so that its length can be the file size.
pub fn open_input(path: &Path, progress: Option<&ProgressBar>) -> io::Result<Box<dyn BufRead>> {
    let raw: Box<dyn Read> = if path == Path::new("-") {
        Box::new(io::stdin().lock())
    } else {
        Box::new(File::open(path)?)
    };
    let raw: Box<dyn Read> = match progress {
        Some(bar) => Box::new(bar.wrap_read(raw)),
        None => raw,
    };
    wrap_decompress(BufReader::with_capacity(READ_BUFFER_BYTES, raw))
}

/// Wraps a buffered reader in a gzip decoder when its first bytes are the
/// gzip magic number.
pub fn wrap_decompress<R: BufRead + 'static>(mut input: R) -> io::Result<Box<dyn BufRead>> {
    let head = loop {
        match input.fill_buf() {
            Ok(b) => break b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    };
    if head.starts_with(&[0x1f, 0x8b]) {
        let decoder = flate2::bufread::MultiGzDecoder::new(input);
        Ok(Box::new(BufReader::with_capacity(
            READ_BUFFER_BYTES,
            decoder,
        )))
    } else {
        Ok(Box::new(input))
    }
}

// ---------------------------------------------------------------------------
// Sinks

/// Where accepted events' records go.
pub trait RecordSink {
    /// Takes the record the engine produced for `event`.
    fn accept(&mut self, event: &Event, record: &RiskRecord) -> io::Result<()>;
}

/// Writes each record as one JSON line.
pub struct JsonLines<W>(pub W);

impl<W: Write> RecordSink for JsonLines<W> {
    fn accept(&mut self, _event: &Event, record: &RiskRecord) -> io::Result<()> {
        serde_json::to_writer(&mut self.0, record)?;
        self.0.write_all(b"\n")
    }
}

/// Discards records (for counting only).
pub struct Discard;

impl RecordSink for Discard {
    fn accept(&mut self, _event: &Event, _record: &RiskRecord) -> io::Result<()> {
        Ok(())
    }
}

/// The records file of `riskstream replay`: Parquet when its name ends in
/// `.parquet`, JSON Lines otherwise (standard output included).
enum RecordOutput {
    Json(JsonLines<BufWriter<Box<dyn Write>>>),
    /// Boxed: the Arrow writer and its column builders are large, and the
    /// enum lives on the stack.
    Parquet(Box<ParquetSink<File>>),
}

impl RecordOutput {
    fn create(path: &Path) -> Result<Self, ReplayError> {
        if !path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
        {
            return Ok(RecordOutput::Json(JsonLines(create_output(path)?)));
        }
        let write_error = |source| ReplayError::Write {
            path: path.to_owned(),
            source,
        };
        let file = File::create(path).map_err(write_error)?;
        Ok(RecordOutput::Parquet(Box::new(
            ParquetSink::new(file).map_err(write_error)?,
        )))
    }

    /// Flushes a JSON Lines output; writes a Parquet output's footer.
    fn finish(self) -> io::Result<()> {
        match self {
            RecordOutput::Json(mut out) => out.0.flush(),
            RecordOutput::Parquet(out) => out.finish().map(drop),
        }
    }
}

impl RecordSink for RecordOutput {
    fn accept(&mut self, event: &Event, record: &RiskRecord) -> io::Result<()> {
        match self {
            RecordOutput::Json(out) => out.accept(event, record),
            RecordOutput::Parquet(out) => out.accept(event, record),
        }
    }
}

/// CAEP tokens of `riskstream replay --caep-output`, one per line.
struct CaepOutput {
    emitter: CaepEmitter,
    out: BufWriter<Box<dyn Write>>,
}

impl CaepOutput {
    fn create(opts: &CaepOptions) -> Result<Self, ReplayError> {
        let signer = CaepSigner::from_pem_file(&opts.key, &opts.kid, &opts.issuer)?;
        Ok(CaepOutput {
            emitter: CaepEmitter::new(signer),
            out: create_output(&opts.output)?,
        })
    }
}

/// Passes each record on to the records sink, then writes the CAEP tokens
/// it causes, so that tokens follow record order.
struct WithCaep<'a, S: ?Sized> {
    records: &'a mut S,
    caep: Option<&'a mut CaepOutput>,
}

impl<S: RecordSink + ?Sized> RecordSink for WithCaep<'_, S> {
    fn accept(&mut self, event: &Event, record: &RiskRecord) -> io::Result<()> {
        self.records.accept(event, record)?;
        let Some(caep) = self.caep.as_deref_mut() else {
            return Ok(());
        };
        for token in caep.emitter.tokens(record).map_err(io::Error::other)? {
            caep.out.write_all(token.as_bytes())?;
            caep.out.write_all(b"\n")?;
        }
        Ok(())
    }
}

/// One line of the rejects file.
#[derive(Debug, Serialize)]
pub struct RejectLine<'a> {
    /// The input, as given on the command line.
    pub file: &'a str,
    /// 1-based physical line number.
    pub line: u64,
    /// Stable reason code, e.g. `missing_field`.
    pub reason: &'static str,
    /// Dotted path of the offending field, where there is one.
    pub field: Option<&'a str>,
    /// What was wrong, for a person.
    pub detail: &'a str,
    /// The line, decoded lossily and cut at [`REJECT_RAW_CHARS`] characters.
    pub raw: &'a str,
}

/// The line for the rejects file: lossy UTF-8, at most [`REJECT_RAW_CHARS`]
/// characters.
fn raw_excerpt(bytes: &[u8]) -> String {
    // Four bytes always decode to at least one character (valid or U+FFFD),
    // so this many bytes are enough for the character limit.
    let head = &bytes[..bytes.len().min(REJECT_RAW_CHARS * 4)];
    let text = String::from_utf8_lossy(head);
    match text.char_indices().nth(REJECT_RAW_CHARS) {
        Some((cut, _)) => text[..cut].to_owned(),
        None => text.into_owned(),
    }
}

// ---------------------------------------------------------------------------
// Summary

/// Counts per reject reason, in [`RejectReason::ALL`] order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RejectCounts([u64; RejectReason::ALL.len()]);

impl RejectCounts {
    fn slot(reason: RejectReason) -> usize {
        RejectReason::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(0)
    }

    /// Rejects with this reason.
    pub fn get(&self, reason: RejectReason) -> u64 {
        self.0[Self::slot(reason)]
    }

    fn add(&mut self, reason: RejectReason) {
        self.0[Self::slot(reason)] += 1;
    }

    /// All rejects.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// `(reason, count)` for every reason with a count above zero.
    pub fn nonzero(&self) -> impl Iterator<Item = (RejectReason, u64)> + '_ {
        RejectReason::ALL
            .iter()
            .zip(self.0)
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| (*r, n))
    }
}

impl Serialize for RejectCounts {
    /// A map from every reason code to its count, zeros included, so that
    /// the keys are the same in every summary.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (reason, n) in RejectReason::ALL.iter().zip(self.0) {
            map.serialize_entry(reason.as_str(), &n)?;
        }
        map.end()
    }
}

/// Decisions on triggers, per sensitivity class of the trigger.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DecisionCounts {
    /// Triggers of class `low`.
    pub low: DecisionTally,
    /// Triggers of class `medium`.
    pub medium: DecisionTally,
    /// Triggers of class `high`.
    pub high: DecisionTally,
    /// Triggers of class `critical`.
    pub critical: DecisionTally,
}

impl DecisionCounts {
    /// The tally of one class.
    pub fn get(&self, class: Sensitivity) -> &DecisionTally {
        match class {
            Sensitivity::Low => &self.low,
            Sensitivity::Medium => &self.medium,
            Sensitivity::High => &self.high,
            Sensitivity::Critical => &self.critical,
        }
    }

    fn add(&mut self, class: Sensitivity, decision: Decision) {
        let tally = match class {
            Sensitivity::Low => &mut self.low,
            Sensitivity::Medium => &mut self.medium,
            Sensitivity::High => &mut self.high,
            Sensitivity::Critical => &mut self.critical,
        };
        match decision {
            Decision::Allow => tally.allow += 1,
            Decision::StepUp => tally.step_up += 1,
            Decision::Deny => tally.deny += 1,
        }
    }
}

/// Decisions of one class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DecisionTally {
    /// `allow`.
    pub allow: u64,
    /// `step_up`.
    pub step_up: u64,
    /// `deny`.
    pub deny: u64,
}

impl DecisionTally {
    /// All decisions of the class.
    pub fn total(&self) -> u64 {
        self.allow + self.step_up + self.deny
    }
}

/// Which policy a replay used.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PolicySource {
    /// The policy's `name`.
    pub name: String,
    /// `sha256:` of its text, as in every record's `model.policy`.
    pub hash: String,
    /// The file, or `built-in` for the default policy.
    pub source: String,
}

/// Which GeoIP databases a replay used: a path, `fixture` (the committed
/// fixture database) or `none`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GeoSources {
    /// City database.
    pub city: String,
    /// ASN database.
    pub asn: String,
    /// Anonymous IP database.
    pub anonymous: String,
}

impl fmt::Display for GeoSources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "city {}, asn {}, anonymous {}",
            self.city, self.asn, self.anonymous
        )
    }
}

/// What a replay did. Serialises to the `--summary-json` object.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ReplaySummary {
    /// The inputs, in the order read.
    pub inputs: Vec<String>,
    /// The policy used.
    pub policy: PolicySource,
    /// The GeoIP databases used.
    pub geoip: GeoSources,
    /// Non-blank lines read; each is either a record or a reject.
    pub lines: u64,
    /// Blank lines, skipped and not counted in `lines`.
    pub blank_lines: u64,
    /// Events the engine scored (one new record each).
    pub accepted: u64,
    /// Repeated event ids answered with their first record again, identical
    /// (CONTRACT.md, `id`); each is a record but not a new event.
    pub reemitted_duplicates: u64,
    /// Records written: `accepted + reemitted_duplicates`.
    pub records: u64,
    /// Rejected lines, all reasons.
    pub rejected: u64,
    /// Rejected lines per reason.
    pub rejects: RejectCounts,
    /// Native records an adapter could not map, per reason (`--format`
    /// other than `contract`); counted in `rejected` too.
    pub unmapped: std::collections::BTreeMap<String, u64>,
    /// Events beyond the first that native records mapped to (a Google
    /// Workspace activity with several events is one line, several events).
    pub extra_events: u64,
    /// Decisions on the records' triggers, per sensitivity class.
    pub decisions: DecisionCounts,
    /// Earliest event time read.
    pub first_event_time: Option<Timestamp>,
    /// Latest event time read: the watermark that drives idle expiry.
    pub last_event_time: Option<Timestamp>,
    /// Principals in the engine's state at the end.
    pub principals: usize,
    /// Sessions in the engine's state at the end.
    pub sessions: usize,
    /// Principals evicted by `--max-principals`.
    pub evicted_principals: u64,
    /// Principals forgotten after their idle expiry (event time).
    pub expired_principals: u64,
    /// Wall-clock seconds of the replay (summary only, never in records).
    pub seconds: f64,
    /// Non-blank lines per second.
    pub events_per_second: f64,
}

impl ReplaySummary {
    /// Whether every non-blank line became a record or a reject.
    pub fn is_balanced(&self) -> bool {
        self.lines + self.extra_events == self.records + self.rejected
            && self.rejected == self.rejects.total() + self.unmapped.values().sum::<u64>()
    }

    /// [`ReplayError::Unbalanced`] unless [`ReplaySummary::is_balanced`].
    pub fn check_balanced(&self) -> Result<(), ReplayError> {
        if self.is_balanced() {
            Ok(())
        } else {
            Err(ReplayError::Unbalanced {
                lines: self.lines,
                records: self.records,
                rejects: self.rejected,
            })
        }
    }

    fn set_timing(&mut self, seconds: f64) {
        self.seconds = seconds;
        self.events_per_second = if seconds > 0.0 {
            self.lines as f64 / seconds
        } else {
            0.0
        };
    }
}

impl fmt::Display for ReplaySummary {
    /// The summary for people, as `riskstream replay` prints it on stderr.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "riskstream replay summary")?;
        writeln!(f, "  inputs       {}", self.inputs.join(", "))?;
        writeln!(
            f,
            "  policy       {} ({}, {})",
            self.policy.name, self.policy.hash, self.policy.source
        )?;
        writeln!(f, "  geoip        {}", self.geoip)?;
        writeln!(
            f,
            "  lines        {:>12}  (blank lines skipped: {})",
            self.lines, self.blank_lines
        )?;
        writeln!(f, "  accepted     {:>12}", self.accepted)?;
        writeln!(
            f,
            "  records      {:>12}  (re-emitted for repeated ids: {})",
            self.records, self.reemitted_duplicates
        )?;
        write!(f, "  rejects      {:>12}", self.rejected)?;
        let mut sep = "  ";
        for (reason, n) in self.rejects.nonzero() {
            write!(f, "{sep}{reason} {n}")?;
            sep = ", ";
        }
        for (reason, n) in &self.unmapped {
            write!(f, "{sep}{reason} {n}")?;
            sep = ", ";
        }
        writeln!(f)?;
        if self.extra_events > 0 {
            writeln!(
                f,
                "  check        lines {} + extra events {} = records {} + rejects {}: {}",
                self.lines,
                self.extra_events,
                self.records,
                self.rejected,
                if self.is_balanced() { "ok" } else { "MISMATCH" }
            )?;
        } else {
            writeln!(
                f,
                "  check        lines {} = records {} + rejects {}: {}",
                self.lines,
                self.records,
                self.rejected,
                if self.is_balanced() { "ok" } else { "MISMATCH" }
            )?;
        }
        if let (Some(first), Some(last)) = (self.first_event_time, self.last_event_time) {
            writeln!(f, "  event time   {first} .. {last}")?;
        }
        writeln!(
            f,
            "  state        {} principals, {} sessions at the end ({} evicted, {} expired)",
            self.principals, self.sessions, self.evicted_principals, self.expired_principals
        )?;
        writeln!(
            f,
            "  decisions    {:<10}{:>12}{:>12}{:>12}",
            "class", "allow", "step_up", "deny"
        )?;
        for class in Sensitivity::ALL {
            let t = self.decisions.get(class);
            writeln!(
                f,
                "               {:<10}{:>12}{:>12}{:>12}",
                class.as_str(),
                t.allow,
                t.step_up,
                t.deny
            )?;
        }
        write!(
            f,
            "  time         {:.3} s, {:.0} events/s",
            self.seconds, self.events_per_second
        )
    }
}

// ---------------------------------------------------------------------------
// The replay loop

/// Feeds lines to an engine and keeps the summary, across any number of
/// inputs read one after the other.
pub struct Replayer {
    engine: Engine,
    /// The native format of the inputs; `contract` unless set.
    format: Format,
    adapter: AdapterOptions,
    /// The engine's re-emitted duplicates, evictions and expiries before
    /// this replay, so that the summary counts only its own.
    base_stats: EngineStats,
    limits: ParseLimits,
    summary: ReplaySummary,
    progress: Option<ProgressBar>,
}

impl Replayer {
    /// A replayer over `engine` with these parse limits.
    pub fn new(engine: Engine, limits: ParseLimits) -> Self {
        Replayer {
            base_stats: engine.stats(),
            engine,
            format: Format::Contract,
            adapter: AdapterOptions::default(),
            limits,
            summary: ReplaySummary::default(),
            progress: None,
        }
    }

    /// Reads the following inputs in this native format, through its
    /// adapter (`contract`: the contract's own events).
    pub fn set_format(&mut self, format: Format, adapter: AdapterOptions) {
        self.format = format;
        self.adapter = adapter;
    }

    /// Shows counts in this progress bar's message while replaying.
    pub fn with_progress(mut self, bar: ProgressBar) -> Self {
        self.progress = Some(bar);
        self
    }

    /// The engine (for its stats).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The summary so far.
    pub fn summary(&self) -> &ReplaySummary {
        &self.summary
    }

    /// Ends the replay and returns the summary, with the engine's final state
    /// size filled in.
    pub fn finish(mut self) -> ReplaySummary {
        let stats = self.engine.stats();
        let base = self.base_stats;
        let s = &mut self.summary;
        s.principals = stats.principals;
        s.sessions = stats.sessions;
        s.evicted_principals = stats.evicted - base.evicted;
        s.expired_principals = stats.expired - base.expired;
        s.reemitted_duplicates = stats.replayed_duplicates - base.replayed_duplicates;
        s.accepted = s.records.saturating_sub(s.reemitted_duplicates);
        self.summary
    }

    /// Replays one input. `source_name` is the `file` of its rejects.
    ///
    /// Every non-blank line becomes exactly one record (given to `sink`) or
    /// one reject (written to `rejects` when given, counted always).
    pub fn run<R: BufRead, S: RecordSink + ?Sized>(
        &mut self,
        input: R,
        source_name: &str,
        sink: &mut S,
        mut rejects: Option<&mut dyn Write>,
    ) -> Result<(), StreamError> {
        self.summary.inputs.push(source_name.to_owned());
        let mut lines = LineReader::new(input, self.limits.max_bytes);
        while let Some(line) = lines.next_line().map_err(StreamError::Read)? {
            if line.is_blank() {
                self.summary.blank_lines += 1;
                continue;
            }
            self.summary.lines += 1;
            if self.format == Format::Contract {
                // One line, one event: no list of outcomes to build.
                match parse_line(&line, self.limits) {
                    Ok(event) => self.score(&event, &line, source_name, sink, &mut rejects)?,
                    Err(reject) => self.reject(
                        &line,
                        source_name,
                        &LineReject::Contract(reject),
                        &mut rejects,
                    )?,
                }
            } else {
                let items = parse_native(self.format, &line, self.limits, &self.adapter);
                self.summary.extra_events += (items.len() as u64).saturating_sub(1);
                let mut events = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Ok(event) => events.push(event),
                        Err(reject) => self.reject(&line, source_name, &reject, &mut rejects)?,
                    }
                }
                for event in events {
                    self.score(&event, &line, source_name, sink, &mut rejects)?;
                }
            }
            if let Some(bar) = &self.progress
                && self.summary.lines.is_multiple_of(PROGRESS_EVERY_LINES)
            {
                bar.set_message(format!(
                    "{} records, {} rejects",
                    self.summary.records, self.summary.rejected
                ));
            }
        }
        Ok(())
    }

    /// Counts a line's reject and writes it to the rejects file.
    fn reject(
        &mut self,
        line: &Line<'_>,
        source_name: &str,
        reject: &LineReject,
        rejects: &mut Option<&mut dyn Write>,
    ) -> Result<(), StreamError> {
        self.summary.rejected += 1;
        match reject {
            LineReject::Contract(r) => self.summary.rejects.add(r.reason),
            LineReject::Unmapped(u) => {
                *self
                    .summary
                    .unmapped
                    .entry(u.reason.as_str().to_owned())
                    .or_insert(0) += 1;
            }
        }
        write_reject(rejects.as_deref_mut(), source_name, line, reject)
    }

    /// Scores one event of `line`: its record to `sink`, or its reject.
    fn score<S: RecordSink + ?Sized>(
        &mut self,
        event: &Event,
        line: &Line<'_>,
        source_name: &str,
        sink: &mut S,
        rejects: &mut Option<&mut dyn Write>,
    ) -> Result<(), StreamError> {
        // Idle expiry follows event time: the watermark is the latest event
        // time seen, so a late event does not move time backwards.
        let now = match self.summary.last_event_time {
            Some(t) if t >= event.time => t,
            _ => event.time,
        };
        self.summary.last_event_time = Some(now);
        if self.summary.first_event_time.is_none_or(|t| event.time < t) {
            self.summary.first_event_time = Some(event.time);
        }
        if self.engine.poll_timeout().is_some_and(|due| due <= now) {
            self.engine.handle_timeout(now);
        }
        match self.engine.handle_event_shared(event) {
            Ok(record) => {
                sink.accept(event, &record)
                    .map_err(StreamError::WriteRecords)?;
                self.summary.records += 1;
                self.summary
                    .decisions
                    .add(record.trigger.sensitivity, record.decision);
                Ok(())
            }
            Err(rejection) => {
                self.reject(line, source_name, &LineReject::Contract(rejection), rejects)
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Engine configuration from files

/// The engine's configuration as the command line gives it.
#[derive(Clone, Debug, Default)]
pub struct EngineOptions {
    /// Policy file (TOML); the built-in default policy when absent.
    pub policy: Option<PathBuf>,
    /// GeoIP City database; the committed fixture database when absent.
    pub geoip_city: Option<PathBuf>,
    /// GeoIP ASN database. When absent: the fixture database if the city
    /// database is the fixture too, none otherwise.
    pub geoip_asn: Option<PathBuf>,
    /// GeoIP Anonymous IP database. When absent: the fixture database if the
    /// city database is the fixture too, none otherwise.
    pub geoip_anonymous: Option<PathBuf>,
    /// Cap on principals in state; the engine's default when absent.
    pub max_principals: Option<usize>,
}

/// An engine configuration and the files it came from.
pub struct LoadedConfig {
    /// The configuration, ready for [`Engine::new`].
    pub config: Arc<EngineConfig>,
    /// Which policy.
    pub policy: PolicySource,
    /// Which GeoIP databases.
    pub geoip: GeoSources,
}

impl LoadedConfig {
    /// A fresh engine on this configuration.
    pub fn engine(&self) -> Engine {
        Engine::new(Arc::clone(&self.config))
    }
}

fn read_bytes(path: &Path) -> Result<Vec<u8>, ReplayError> {
    std::fs::read(path).map_err(|source| ReplayError::Read {
        path: path.to_owned(),
        source,
    })
}

impl EngineOptions {
    /// Reads the policy and databases and builds the engine configuration.
    ///
    /// Fixture databases are used only together: mixing a real City
    /// database with the fixture ASN database would give nonsense, so when
    /// `geoip_city` is given, the ASN and anonymous databases are the ones
    /// given or none.
    pub fn load(&self) -> Result<LoadedConfig, ReplayError> {
        // One engine sees every principal: it applies its observations and
        // queues none.
        self.load_with(IpObservationConfig::REPLAY)
    }

    /// [`EngineOptions::load`] with another attack-source mode: the live
    /// pipeline's engines also queue their observations for the other
    /// instances (`IpObservationConfig::LIVE`).
    pub fn load_with(
        &self,
        ip_observations: IpObservationConfig,
    ) -> Result<LoadedConfig, ReplayError> {
        let (policy, policy_source) = match &self.policy {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ReplayError::Read {
                    path: path.clone(),
                    source,
                })?;
                let policy =
                    Policy::from_toml_str(&text).map_err(|source| ReplayError::Policy {
                        source_name: path.display().to_string(),
                        source: Box::new(source),
                    })?;
                (policy, path.display().to_string())
            }
            None => {
                let policy = Policy::default_policy().map_err(|source| ReplayError::Policy {
                    source_name: "built-in".to_owned(),
                    source: Box::new(source),
                })?;
                (policy, "built-in".to_owned())
            }
        };
        let fixture = self.geoip_city.is_none();
        let load = |given: &Option<PathBuf>,
                    fixture_db: &[u8]|
         -> Result<(Option<Vec<u8>>, String), ReplayError> {
            match given {
                Some(path) => Ok((Some(read_bytes(path)?), path.display().to_string())),
                None if fixture => Ok((Some(fixture_db.to_vec()), "fixture".to_owned())),
                None => Ok((None, "none".to_owned())),
            }
        };
        let (city, city_source) = load(&self.geoip_city, fixtures::FIXTURE_CITY_DB)?;
        let (asn, asn_source) = load(&self.geoip_asn, fixtures::FIXTURE_ASN_DB)?;
        let (anonymous, anonymous_source) =
            load(&self.geoip_anonymous, fixtures::FIXTURE_ANONYMOUS_DB)?;
        let geoip = GeoSources {
            city: city_source,
            asn: asn_source,
            anonymous: anonymous_source,
        };
        let geo = GeoIp::from_bytes(city, asn, anonymous).map_err(|source| ReplayError::Geo {
            sources: geoip.to_string(),
            source: Box::new(source),
        })?;
        let mut limits = StateLimits::default();
        if let Some(n) = self.max_principals {
            limits.max_principals = n;
        }
        let policy_info = PolicySource {
            name: policy.name().to_owned(),
            hash: policy.hash().to_owned(),
            source: policy_source,
        };
        Ok(LoadedConfig {
            config: Arc::new(EngineConfig {
                policy,
                geo,
                limits,
                ip_observations,
            }),
            policy: policy_info,
            geoip,
        })
    }
}

// ---------------------------------------------------------------------------
// `riskstream replay`

/// Everything `riskstream replay` takes.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    /// Inputs, read in this order; `-` is standard input.
    pub inputs: Vec<PathBuf>,
    /// Output file for records; `-` is standard output.
    pub output: PathBuf,
    /// Rejects file, when wanted.
    pub rejects: Option<PathBuf>,
    /// Where to write the summary as JSON, when wanted.
    pub summary_json: Option<PathBuf>,
    /// Policy, GeoIP and state limits.
    pub engine: EngineOptions,
    /// Parse limits (largest event).
    pub limits: ParseLimits,
    /// Whether to draw a progress bar on stderr.
    pub progress: bool,
    /// Native format of the inputs: none (all `contract`), one (all
    /// inputs), or one per input in order.
    pub formats: Vec<Format>,
    /// Tenant to stamp on events mapped from native records.
    pub tenant: Option<String>,
    /// CAEP Security Event Tokens to write beside the records, when wanted.
    pub caep: Option<CaepOptions>,
}

/// A buffered writer on a file, or on standard output for `-`.
fn create_output(path: &Path) -> Result<BufWriter<Box<dyn Write>>, ReplayError> {
    let w: Box<dyn Write> = if path == Path::new("-") {
        Box::new(io::stdout().lock())
    } else {
        Box::new(File::create(path).map_err(|source| ReplayError::Write {
            path: path.to_owned(),
            source,
        })?)
    };
    Ok(BufWriter::with_capacity(WRITE_BUFFER_BYTES, w))
}

fn progress_bar(inputs: &[PathBuf]) -> ProgressBar {
    let total: u64 = inputs
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let style = ProgressStyle::with_template(
        "{elapsed_precise} [{wide_bar}] {bytes}/{total_bytes} {binary_bytes_per_sec} {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::new(total).with_style(style)
}

/// Runs `riskstream replay`: every input through one engine, records to the
/// output, rejects to the rejects file, and the summary (also to
/// `summary_json` when given).
pub fn replay(opts: &ReplayOptions) -> Result<ReplaySummary, ReplayError> {
    let started = Instant::now();
    let loaded = opts.engine.load()?;
    let bar = opts.progress.then(|| progress_bar(&opts.inputs));
    let mut replayer = Replayer::new(loaded.engine(), opts.limits);
    if let Some(bar) = &bar {
        replayer = replayer.with_progress(bar.clone());
    }
    let mut out = RecordOutput::create(&opts.output)?;
    let mut rejects = opts.rejects.as_deref().map(create_output).transpose()?;
    let mut caep = opts.caep.as_ref().map(CaepOutput::create).transpose()?;
    let output_error = |path: &Path, source| ReplayError::Write {
        path: path.to_owned(),
        source,
    };
    if opts.formats.len() > 1 && opts.formats.len() != opts.inputs.len() {
        return Err(ReplayError::Formats {
            formats: opts.formats.len(),
            inputs: opts.inputs.len(),
        });
    }
    for (n, path) in opts.inputs.iter().enumerate() {
        let format = opts
            .formats
            .get(n)
            .or(opts.formats.first())
            .copied()
            .unwrap_or(Format::Contract);
        replayer.set_format(
            format,
            AdapterOptions {
                tenant: opts.tenant.clone(),
            },
        );
        let input = open_input(path, bar.as_ref()).map_err(|source| ReplayError::Read {
            path: path.clone(),
            source,
        })?;
        let name = path.display().to_string();
        let rejects_writer = rejects.as_mut().map(|w| w as &mut dyn Write);
        let mut sink = WithCaep {
            records: &mut out,
            caep: caep.as_mut(),
        };
        replayer
            .run(input, &name, &mut sink, rejects_writer)
            .map_err(|e| match e {
                StreamError::Read(source) => ReplayError::Read {
                    path: path.clone(),
                    source,
                },
                StreamError::WriteRecords(source) => output_error(&opts.output, source),
                StreamError::WriteRejects(source) => {
                    output_error(opts.rejects.as_deref().unwrap_or(Path::new("-")), source)
                }
            })?;
    }
    out.finish().map_err(|e| output_error(&opts.output, e))?;
    if let (Some(c), Some(o)) = (caep.as_mut(), opts.caep.as_ref()) {
        c.out.flush().map_err(|e| output_error(&o.output, e))?;
    }
    if let (Some(w), Some(path)) = (rejects.as_mut(), opts.rejects.as_deref()) {
        w.flush().map_err(|e| output_error(path, e))?;
    }
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let mut summary = replayer.finish();
    summary.policy = loaded.policy;
    summary.geoip = loaded.geoip;
    summary.set_timing(started.elapsed().as_secs_f64());
    if let Some(path) = &opts.summary_json {
        let mut w = create_output(path)?;
        serde_json::to_writer_pretty(&mut w, &summary).map_err(|e| output_error(path, e.into()))?;
        w.write_all(b"\n")
            .and_then(|()| w.flush())
            .map_err(|e| output_error(path, e))?;
    }
    summary.check_balanced()?;
    Ok(summary)
}
