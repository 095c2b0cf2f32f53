//! Helpers shared by the integration tests: the two schemas, compiled with
//! format assertion on.

// Each test crate uses a different subset of these helpers.
#![allow(dead_code)]

use jsonschema::Validator;
use serde_json::Value;

/// The event schema, compiled.
pub fn event_validator() -> Validator {
    compile(riskstream_schemas::EVENT_SCHEMA)
}

/// The risk record schema, compiled.
pub fn risk_validator() -> Validator {
    compile(riskstream_schemas::RISK_SCHEMA)
}

/// Compiles a schema for draft 2020-12 with `format` as an assertion: in
/// 2020-12 it is only an annotation unless asked, and the contract's IP and
/// time rules are formats.
pub fn compile(text: &str) -> Validator {
    let schema: Value = serde_json::from_str(text).expect("schema file is JSON");
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("schema compiles")
}

/// Every error of `instance`, as `instance path: message`; empty when valid.
pub fn errors(validator: &Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("{}: {e}", display_path(e.instance_path().as_str())))
        .collect()
}

fn display_path(pointer: &str) -> &str {
    if pointer.is_empty() { "/" } else { pointer }
}
