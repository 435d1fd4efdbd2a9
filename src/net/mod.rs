//! The network policy: the rate budgets (one per bucket the tenant keeps), the work kept in
//! flight, and the retry rules.

pub mod pace;
pub mod retry;
pub mod throttle;
pub mod workers;
