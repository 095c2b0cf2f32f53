//! The `/metrics` response of `riskstream run` and `riskstream enforce`:
//! a `prometheus-client` registry in the OpenMetrics text format. Each
//! service registers its own metrics; one encoder serves both so that
//! their scrapes carry the same content type and encoding.

use axum::http::header;
use axum::response::{IntoResponse as _, Response};
use prometheus_client::registry::Registry;

/// The text exposition of `registry`.
pub(crate) fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}

/// `registry` as the body of a `/metrics` response.
pub(crate) fn response(registry: &Registry) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        encode(registry),
    )
        .into_response()
}
