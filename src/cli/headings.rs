//! The headings `--help` groups options under, the same words in every command.
//!
//! A reader looks for "where does it go" (Target), "which users or records" (Selection), "what
//! comes out" (Output and format), "how fast" (Rate and retries), "where it resumes from" (State
//! and resume), "what an import does to a user" (Import behaviour) and "how to try it without
//! touching the tenant" (Rehearsal). `--dry-run` and `--plan` are rehearsal: they send no write,
//! like the embedded sandbox's `--sandbox-seed` and `--sandbox-generate`. For `import`,
//! Selection is what is read and how each record finds its user (`--input`, `--format`,
//! `--match`).
//!
//! `--help` shows the headings in the order of their first option in the command, so each
//! command declares its options in this order: Target, Selection, Output and format, Rate and
//! retries, State and resume, Import behaviour, Rehearsal (the embedded sandbox's options are
//! in [`super::EmbeddedArgs`], flattened last). A test in tests/cli.rs holds every command to it.

pub const TARGET: &str = "Target";
pub const SELECTION: &str = "Selection";
pub const OUTPUT: &str = "Output and format";
pub const RATE: &str = "Rate and retries";
pub const STATE: &str = "State and resume";
pub const IMPORT: &str = "Import behaviour";
pub const REHEARSAL: &str = "Rehearsal";
