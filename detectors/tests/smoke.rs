use std::sync::Arc;
use riskstream_detectors::*;
use riskstream_schemas::*;

#[test]
fn default_policy_loads() {
    let p = Policy::default_policy().unwrap();
    assert!(p.hash().starts_with("sha256:"));
}
