//! The integration tests: one binary (it links once), one module per area.

// Shared helpers: the in-process sandbox tenant and the OpenAPI schema checks.
mod support;

// The binary's contracts: the sandbox process, --help, exit codes.
mod cli;
// Malformed inputs (tests/corpus/, huge lines, mutations): rejected by line, never a panic.
mod badinput;
// SIGKILL at many seeded points, export and every import mode; two runs of one job at once.
mod crash;
// `auth0-bulk delete` end to end: by query and list, dry runs, kills, before-images re-imported.
mod delete;
// `auth0-bulk export` end to end against an in-process sandbox.
mod export;
// `export --include roles,organizations,permissions`: each user's access, at its cost (issue 14).
mod export_authz;
// `export --engine job`: one bulk-export job, a catch-up pass, kills, expired links.
mod export_job;
// Mixed faults of the tenant, a tenant down past the retry budget, full disks, damaged state.
mod faults;
// Job files: a mistake names its key and line; options around the job file (issue 15).
mod jobfile;
// `auth0-bulk import` end to end: round trips, crashes, rejects, formats, against sandboxes.
mod import;
// Records' roles, organizations and permissions: tenant to tenant, kills, replace (issue 14).
mod import_authz;
// `import --engine job` and `--tickets` end to end: chunks, jobs, crashes, tickets.
mod import_jobs;
// `import --engine job --mode upsert|update`: patches per user, creates through jobs, kills.
mod import_jobs_upsert;
// The OpenAPI schema helper checks itself.
mod oas_selftest;
// The sandbox tenant behaves like Auth0.
mod sandbox;
// Its roles, permissions, resource servers and organizations (issue 14).
mod sandbox_authz;
// Its bulk-import jobs, connections, scopes, sign-in and tickets (issue 13).
mod sandbox_jobs;
// `--report FILE.html|FILE.json`: the page and its figures against the run's summary (issue 15).
mod report;
// What a run tells people: rejects by code, few warning lines, --quiet, colour (issue 15).
mod reporting;
// Secrets never leak, files are private, and the transport refuses what could expose them.
mod security;
// `auth0-bulk undo`, before-images, and dry-run plans old → new (issue 15).
mod undo;
