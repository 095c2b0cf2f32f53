//! Replay (owned by the replay/evaluate work).
