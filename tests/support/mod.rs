//! Helpers shared by the integration tests.

pub mod child;
pub mod live;
pub mod oas;
pub mod tenant;
