//! (being written)
/// Backoff.
pub struct Backoff;
/// Decision.
pub enum Decision {}
/// classify.
pub fn classify() {}
/// parse.
pub fn parse_retry_after() {}
