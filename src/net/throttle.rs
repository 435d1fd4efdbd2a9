//! TEMPORARY STUB: replaced by the shared rate budget.
use std::time::Duration;
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    Auto,
    PerSecond(f64),
    Unlimited,
}
pub struct Throttle;
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ThrottleSnapshot {
    pub learned_rate: Option<f64>,
    pub limit: Option<u32>,
    pub throttled: u64,
    pub paused_total: Duration,
}
impl Throttle {
    pub fn new(_rate: Rate) -> Throttle {
        Throttle
    }
    pub async fn acquire(&self) {}
    pub fn observe(&self, status: u16, _headers: &http::HeaderMap) {
        let _ = status;
    }
    pub fn snapshot(&self) -> ThrottleSnapshot {
        ThrottleSnapshot::default()
    }
}
