//! (being written)
/// Token cache.
pub struct TokenCache;
