//! File formats users are written in and read from: the CSV shape of a user.

pub mod csv;
