//! File formats users are written in and read from: the CSV shape of a user, and
//! the fields an export may select.

pub mod csv;
pub mod fields;
