//! The network policy: one shared rate budget and the retry rules.

pub mod retry;
pub mod throttle;
