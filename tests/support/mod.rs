//! Helpers shared by the integration tests.

pub mod oas;
pub mod tenant;
