//! (being written)
/// Shared backoff gate.
pub struct BackoffGate;
