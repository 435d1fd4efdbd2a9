//! Helpers shared by the integration tests.

pub mod child;
pub mod exports;
pub mod imports;
pub mod kill;
pub mod live;
pub mod oas;
pub mod tenant;
