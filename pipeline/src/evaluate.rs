//! Evaluation (owned by the replay/evaluate work).
