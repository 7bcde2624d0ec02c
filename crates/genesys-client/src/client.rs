//! (being written)
/// Shared state of all workers.
pub struct GenesysShared;
/// One worker's client.
pub struct GenesysClient;
