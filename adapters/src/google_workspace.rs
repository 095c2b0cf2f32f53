//! google_workspace adapter (placeholder until written).

use riskstream_schemas::Event;

use crate::{AdapterOptions, Format, Unmapped, UnmappedReason};

pub(crate) fn normalize(record: &serde_json::Value, opts: &AdapterOptions) -> Result<Vec<Event>, Unmapped> {
    let _ = (record, opts);
    Err(Unmapped::new(Format::GoogleWorkspace, UnmappedReason::NotRecognised, None, "google_workspace adapter not written yet"))
}
