//! keycloak adapter (placeholder until written).

use riskstream_schemas::Event;

use crate::{AdapterOptions, Format, Unmapped, UnmappedReason};

pub(crate) fn normalize(record: &[u8], opts: &AdapterOptions) -> Result<Vec<Event>, Unmapped> {
    let _ = (record, opts);
    Err(Unmapped::new(Format::Keycloak, UnmappedReason::NotRecognised, None, "keycloak adapter not written yet"))
}
