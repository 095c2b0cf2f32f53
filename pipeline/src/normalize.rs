//! `riskstream normalize`: a vendor's native records in, contract events
//! out, one JSON line each; records that do not map go to the rejects file
//! with their reason.

use std::collections::BTreeMap;
use std::io::{self, BufRead, Write};
use std::path::PathBuf;

use riskstream_adapters::{AdapterOptions, Format};
use riskstream_schemas::ParseLimits;
use serde::Serialize;

use crate::replay::{LineReader, LineReject, StreamError, parse_native, write_reject};

/// What a normalisation did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NormalizeSummary {
    /// Non-blank lines (native records) read.
    pub lines: u64,
    /// Vendor records in them: a line is one record, except a CloudTrail
    /// log file or a Google Workspace activity with several events.
    pub items: u64,
    /// Contract events written, one per record that mapped.
    pub events: u64,
    /// Records that did not map, per reason.
    pub rejected: BTreeMap<String, u64>,
}

impl NormalizeSummary {
    /// Whether every record mapped or was rejected.
    pub fn is_balanced(&self) -> bool {
        self.items == self.events + self.rejected.values().sum::<u64>() && self.items >= self.lines
    }
}

impl std::fmt::Display for NormalizeSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "riskstream normalize: {} lines, {} records: {} events, {} rejected",
            self.lines,
            self.items,
            self.events,
            self.rejected.values().sum::<u64>()
        )?;
        let mut sep = " (";
        for (reason, n) in &self.rejected {
            write!(f, "{sep}{reason} {n}")?;
            sep = ", ";
        }
        if !self.rejected.is_empty() {
            write!(f, ")")?;
        }
        Ok(())
    }
}

/// Options of `riskstream normalize`.
#[derive(Clone, Debug)]
pub struct NormalizeOptions {
    /// The native format.
    pub format: Format,
    /// Tenant to stamp on every event.
    pub tenant: Option<String>,
    /// Largest record, bytes.
    pub limits: ParseLimits,
    /// Inputs (`-`: standard input).
    pub inputs: Vec<PathBuf>,
}

/// Normalises one input stream into `out`.
pub fn normalize_stream<R: BufRead, W: Write>(
    opts: &NormalizeOptions,
    input: R,
    source_name: &str,
    out: &mut W,
    mut rejects: Option<&mut dyn Write>,
    summary: &mut NormalizeSummary,
) -> Result<(), StreamError> {
    let adapter = AdapterOptions {
        tenant: opts.tenant.clone(),
    };
    let mut lines = LineReader::new(input, opts.limits.max_bytes);
    while let Some(line) = lines.next_line().map_err(StreamError::Read)? {
        if line.is_blank() {
            continue;
        }
        summary.lines += 1;
        let items = parse_native(opts.format, &line, opts.limits, &adapter);
        summary.items += items.len() as u64;
        for item in items {
            match item {
                Ok(event) => {
                    serde_json::to_writer(&mut *out, &event)
                        .map_err(|e| StreamError::WriteRecords(io::Error::other(e)))?;
                    out.write_all(b"\n").map_err(StreamError::WriteRecords)?;
                    summary.events += 1;
                }
                Err(reject) => {
                    let reason = match &reject {
                        LineReject::Contract(r) => r.reason.as_str(),
                        LineReject::Unmapped(u) => u.reason.as_str(),
                    };
                    *summary.rejected.entry(reason.to_owned()).or_insert(0) += 1;
                    write_reject(rejects.as_deref_mut(), source_name, &line, &reject)?;
                }
            }
        }
    }
    Ok(())
}
