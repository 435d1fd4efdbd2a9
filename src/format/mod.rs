//! File formats users are written in and read from: the CSV shape of a user, the fields an
//! export may select, and a user read over its JSON text (the CSV export's fast path).

pub mod csv;
pub mod fields;
pub mod raw;
