//! The network policy: the shared rate budget, the work kept in flight, and the retry rules.

pub mod retry;
pub mod throttle;
pub mod workers;
