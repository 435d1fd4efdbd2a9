//! The export's checkpoint (`export.json` in the run state) and the checks made on it before
//! anything is sent: which tenant the state belongs to, whether it is the same export, which
//! file the run writes, and whether that file may be replaced.
//!
//! A state is bound to one tenant. A run for another tenant (or for the embedded sandbox) never
//! reads, writes or advances it, so a rehearsal can never move a real job's `--since last`
//! mark. A state of the same tenant but of other options is described option by option. An
//! output that already exists is replaced only when this job's last completed run wrote it (the
//! checkpoint records its path and size), or with `--overwrite`.
//!
//! Once the run holds the state's lock, [`begin`] picks the checkpoint it starts from (the
//! unfinished one of this export, or a new one that keeps the `--since last` mark) and [`save`]
//! replaces it after every batch.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::state::{self, resume, resume::JobOptions};

use super::authz::AuthzReport;
use super::job::JobRun;
use super::walk::{self, Cursor, Plan};
use super::{Engine, ExportError, ExportSpec, Output, Since};

/// The file name of the checkpoint in the run state.
pub const CHECKPOINT: &str = "export.json";
/// The newest format version of [`Saved`] this build writes.
pub const FORMAT: &str = "3";

/// The checkpoint as stored, tagged with its format version. Version 2 adds the walk's plan;
/// a version 1 checkpoint (an export started by an older auth0-bulk) resumes from its cursor
/// as the start of a new plan. Version 3 is a job export's (`--engine job`, with `job`): an
/// older auth0-bulk, which knows no job, refuses it rather than resume it as a walk. An API
/// export is still written as version 2, which older builds read.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "version")]
pub enum Saved {
    #[serde(rename = "1")]
    V1(Checkpoint),
    #[serde(rename = "2")]
    V2(Checkpoint),
    #[serde(rename = "3")]
    V3(Checkpoint),
}

impl Saved {
    pub fn into_checkpoint(self) -> Checkpoint {
        match self {
            Saved::V1(c) | Saved::V2(c) | Saved::V3(c) => c,
        }
    }
}

/// The checkpoint of an export. Fields added after the first release default when absent, so
/// a nightly job keeps its `--since last` mark across an upgrade.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    /// What this state belongs to: the options that decide the output, as one line.
    pub fingerprint: String,
    /// The tenant this state belongs to (`sandbox` for the embedded one). Older states carry
    /// it only inside `fingerprint`.
    #[serde(default)]
    pub domain: Option<String>,
    /// The same options, one by one, to say what changed.
    #[serde(default)]
    pub options: Option<Options>,
    /// The file this run writes: `--output` with its `{date}` filled in at the run's start.
    #[serde(default)]
    pub output_path: Option<PathBuf>,
    /// The exclusive upper bound on `created_at`: the run's start.
    pub upper: String,
    /// The `--since` mark this run used.
    pub since: Option<String>,
    /// Where the walk goes on (the start of the first window not written); `None` once every
    /// window is written.
    pub cursor: Option<Cursor>,
    /// The walk's windows not yet written (format 2): their pages received are kept in the
    /// state beside this file. `None` for a new run or a format 1 checkpoint: the walk plans
    /// from `cursor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub walk: Option<Plan>,
    /// For `--users`: lines of the list done.
    pub lines_done: u64,
    /// Good bytes of the output (the `.partial` file).
    pub bytes: u64,
    pub users: u64,
    pub not_found: u64,
    /// The walk's windows written (ranges of up to 1,000 users, and instants).
    pub windows: u64,
    pub completed: bool,
    /// Every batch is in the walk's output; only renaming it into place (and, for a flattened
    /// CSV, the second pass) is left.
    #[serde(default)]
    pub written: bool,
    /// The start of the last completed run, for `--since last`.
    pub last_completed_upper: Option<String>,
    /// The file the last completed run wrote, so the next run may replace it.
    #[serde(default)]
    pub last_output: Option<Written>,
    /// `--engine job`: the export job and how far the run is with it (format 3). In a job
    /// export, `upper`, `since`, `cursor` and `walk` are the catch-up walk's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<JobRun>,
    /// `--include`: the summary's counts, kept here once every user is written and the store
    /// that held them is removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authz: Option<AuthzReport>,
}

/// A file a completed run wrote: its path and size when the run completed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Written {
    pub path: PathBuf,
    pub bytes: u64,
}

impl Written {
    /// The file as it is now, if it is one.
    pub fn of(path: &Path) -> Option<Written> {
        let meta = std::fs::metadata(path).ok().filter(|m| m.is_file())?;
        Some(Written {
            path: path.to_path_buf(),
            bytes: meta.len(),
        })
    }
}

impl Checkpoint {
    /// The tenant this state belongs to; for a state written before the tenant had its own
    /// field, the one its fingerprint names.
    pub fn tenant(&self) -> Option<String> {
        self.domain
            .clone()
            .or_else(|| state::tenant_of_fingerprint(&self.fingerprint))
    }

    /// The checkpoint of a new run, which keeps the last completed run's `--since last` mark
    /// and output from `previous`.
    fn new(spec: &ExportSpec, previous: Option<Checkpoint>) -> Result<Checkpoint, ExportError> {
        let previous_upper = previous
            .as_ref()
            .and_then(|c| c.last_completed_upper.clone());
        Ok(Checkpoint {
            fingerprint: fingerprint(spec),
            domain: Some(spec.domain.clone()),
            options: Some(Options::of(spec)),
            output_path: match &spec.output {
                Output::File(path) => Some(path.clone()),
                Output::Stdout => None,
            },
            upper: walk::canonical(Utc::now()),
            since: since_mark(spec, previous_upper.as_deref())?,
            cursor: Some(Cursor::start()),
            walk: None,
            lines_done: 0,
            bytes: 0,
            users: 0,
            not_found: 0,
            windows: 0,
            completed: false,
            written: false,
            last_completed_upper: previous_upper,
            last_output: previous.and_then(|c| c.last_output),
            job: None,
            authz: None,
        })
    }
}

/// The options that decide an export's output, one by one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Options {
    pub output: String,
    /// `job` for `--engine job`; absent for the API (and in states written before there was a
    /// choice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    pub format: String,
    pub gzip: bool,
    /// `--gzip-level` of a gzipped output: a resumed run compresses its batches the same way,
    /// so the file is the same bytes as a clean run's. Absent in states written before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gzip_level: Option<u32>,
    pub query: Option<String>,
    pub connection: Option<String>,
    pub since: Option<String>,
    pub users: Option<String>,
    pub fields: Option<Vec<String>>,
    pub exclude_fields: Vec<String>,
    pub rename: Vec<String>,
    /// `--include`; absent when nothing is added (and in states written before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<String>,
}

impl Options {
    pub fn of(spec: &ExportSpec) -> Options {
        let shape = &spec.encoder.shape;
        Options {
            // As given on the command line, with any `{date}` still in it.
            output: spec.template.name(),
            engine: matches!(spec.engine, Engine::Job(_)).then(|| "job".into()),
            format: spec.encoder.format_name(),
            gzip: spec.gzip,
            gzip_level: spec.gzip.then_some(spec.gzip_level),
            query: spec.query.clone(),
            connection: spec.connection.clone(),
            since: spec.since.as_ref().map(|since| match since {
                Since::At(t) => t.clone(),
                Since::Last => "last".into(),
            }),
            users: spec.users_file.as_ref().map(|p| p.display().to_string()),
            fields: shape.include.clone(),
            exclude_fields: shape.exclude.clone(),
            rename: shape
                .rename
                .iter()
                .map(|(from, to)| format!("{from}={to}"))
                .collect(),
            include: spec.include.any().then(|| spec.include.to_string()),
        }
    }

    /// One line per option that differs: "`--fields` changed from `a,b` to `a,b,c`".
    pub fn changes(&self, now: &Options) -> Vec<String> {
        let mut now = now.clone();
        if self.gzip_level.is_none() {
            // A state from before the level was kept: it was the same then.
            now.gzip_level = None;
        }
        self.named().changes(&now.named())
    }

    /// The options under their flags, as messages name them.
    pub fn named(&self) -> JobOptions {
        let named = JobOptions::new()
            .with("--output", self.output.clone())
            .with_optional("--engine", self.engine.as_deref())
            .with("--format", self.format.clone())
            .with("gzip (the output's .gz)", self.gzip.to_string())
            .with_optional(
                "--gzip-level",
                self.gzip_level.map(|level| level.to_string()).as_deref(),
            )
            .with_optional("--query", self.query.as_deref())
            .with_optional("--connection", self.connection.as_deref())
            .with_optional("--since", self.since.as_deref())
            .with_optional("--users", self.users.as_deref());
        let named = match &self.fields {
            Some(fields) => named.with_list("--fields", fields),
            None => named.with("--fields", "(all)"),
        };
        named
            .with_list("--exclude-fields", &self.exclude_fields)
            .with_list("--rename", &self.rename)
            .with_optional("--include", self.include.as_deref())
    }
}

/// The options of an export, as one line (what older states compare by). A job export's ends
/// in ` engine=job`; an API export's is as it always was.
pub fn fingerprint(spec: &ExportSpec) -> String {
    let mut engine = match spec.engine {
        Engine::Api => String::new(),
        Engine::Job(_) => " engine=job".into(),
    };
    if spec.include.any() {
        engine.push_str(&format!(" include={}", spec.include));
    }
    format!(
        "domain={} query={:?} connection={:?} since={:?} users={:?} format={} gzip={} output={:?}{engine}",
        spec.domain,
        spec.query,
        spec.connection,
        spec.since,
        spec.users_file,
        spec.encoder.describe(),
        spec.gzip,
        spec.template,
    )
}

/// Refuses a state that belongs to another tenant (see [`state::check_tenant`]).
pub fn check_tenant(saved: &Checkpoint, spec: &ExportSpec, dir: &Path) -> Result<(), ExportError> {
    Ok(state::check_tenant(
        dir,
        saved.tenant().as_deref(),
        &spec.domain,
    )?)
}

/// Whether an unfinished checkpoint belongs to this same export; if not, says what changed.
pub fn check_same_export(
    saved: &Checkpoint,
    spec: &ExportSpec,
    dir: &Path,
) -> Result<(), ExportError> {
    let before = saved.options.as_ref().map(Options::named);
    let changes = resume::changes(
        before.as_ref(),
        &saved.fingerprint,
        &Options::of(spec).named(),
        &fingerprint(spec),
    );
    resume::check_same_job(dir, "export", changes).map_err(|e| ExportError::Usage(e.to_string()))
}

/// Before anything is sent or created: reads the state (if any), checks its tenant and options,
/// picks the file this run writes (a resumed run keeps the one it started, even past midnight),
/// and refuses to replace a file that no run of this job wrote unless `overwrite`.
pub fn prepare(
    spec: &mut ExportSpec,
    overwrite: bool,
    now: DateTime<Utc>,
) -> Result<(), ExportError> {
    let saved = match &spec.state {
        Some(dir) => admit(state::peek::<Saved>(dir, CHECKPOINT, FORMAT), spec, dir)?
            .map(|c| (dir.clone(), c)),
        None => None,
    };
    let resuming = saved.as_ref().filter(|(_, c)| !spec.fresh && !c.completed);
    if let Some((dir, saved)) = resuming {
        check_same_export(saved, spec, dir)?;
    }
    let Output::File(template) = &spec.template else {
        spec.output = Output::Stdout;
        return Ok(());
    };
    let path = match resuming.and_then(|(_, c)| c.output_path.clone()) {
        Some(path) => path,
        None => expand(template, now).map_err(ExportError::Usage)?,
    };
    if path.exists() && !overwrite {
        let ours = saved.as_ref().is_some_and(|(_, c)| {
            let last = c.last_output.as_ref();
            last.is_some_and(|w| Some(w) == Written::of(&path).as_ref())
                // Renamed into place by a run that died before it marked itself complete.
                || (!spec.fresh && !c.completed && c.written && c.output_path.as_ref() == Some(&path))
                // A state from before outputs were recorded: the same job wrote this file.
                || (c.completed && last.is_none() && c.fingerprint == fingerprint(spec))
        });
        if !ours {
            return Err(ExportError::Usage(format!(
                "--output {}: the file exists and no run of this job wrote it; pass --overwrite \
                 to replace it, or name another file (a {{date}} or {{datetime}} in --output \
                 keeps one file per run)",
                path.display()
            )));
        }
    }
    spec.output = Output::File(path);
    Ok(())
}

/// Fills `{date}` (2024-01-31) and `{datetime}` (2024-01-31T020000Z) in with `now` in UTC, in
/// forms every file system takes. Any other `{…}` is refused, so a typo never becomes a name.
pub fn expand(template: &Path, now: DateTime<Utc>) -> Result<PathBuf, String> {
    let text = template.to_string_lossy();
    if !text.contains(['{', '}']) {
        return Ok(template.to_path_buf());
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = &text[..];
    while let Some(open) = rest.find(['{', '}']) {
        out.push_str(&rest[..open]);
        let tail = &rest[open..];
        let close = tail.find('}').filter(|_| tail.starts_with('{'));
        let Some(close) = close else {
            return Err(format!(
                "--output {text}: a lone `{}`; the placeholders are {{date}} and {{datetime}}",
                &tail[..1]
            ));
        };
        match &tail[1..close] {
            "date" => out.push_str(&now.format("%Y-%m-%d").to_string()),
            "datetime" => out.push_str(&now.format("%Y-%m-%dT%H%M%SZ").to_string()),
            other => {
                let hint = crate::suggest::closest(other, ["date", "datetime"])
                    .map(|near| format!("; did you mean {{{near}}}?"))
                    .unwrap_or_default();
                return Err(format!(
                    "--output {text}: unknown placeholder {{{other}}}{hint} (the placeholders \
                     are {{date}} and {{datetime}}, in UTC)"
                ));
            }
        }
        rest = &tail[close + 1..];
    }
    out.push_str(rest);
    Ok(PathBuf::from(out))
}

/// Reads the checkpoint of an open state for the run (after [`prepare`] checked it).
pub fn load(state: &state::StateDir, spec: &ExportSpec) -> Result<Option<Checkpoint>, ExportError> {
    admit(state.load::<Saved>(CHECKPOINT, FORMAT), spec, state.path())
}

/// A checkpoint as read from `dir`, offline or from the open state: `--fresh` is the way out of
/// a damaged one (without it, the run says what is wrong), and one of another tenant is refused.
fn admit(
    read: Result<Option<Saved>, state::StateError>,
    spec: &ExportSpec,
    dir: &Path,
) -> Result<Option<Checkpoint>, ExportError> {
    let saved = match read {
        Ok(saved) => saved.map(Saved::into_checkpoint),
        Err(_) if spec.fresh => None,
        Err(e) => return Err(e.into()),
    };
    if let Some(c) = &saved {
        check_tenant(c, spec, dir)?;
    }
    Ok(saved)
}

/// The checkpoint a run starts from, and whether it resumes: the saved one of an unfinished
/// run of this same export, or a new one.
pub fn begin(
    state: Option<&state::StateDir>,
    spec: &ExportSpec,
) -> Result<(Checkpoint, bool), ExportError> {
    // Read for its tenant even with --fresh: a state of another tenant is never overwritten.
    let saved = match state {
        Some(state) => load(state, spec)?.map(|c| (state, c)),
        None => None,
    };
    match saved.filter(|_| !spec.fresh) {
        Some((state, saved)) if !saved.completed => {
            check_same_export(&saved, spec, state.path())?;
            Ok((saved, true))
        }
        previous => Ok((Checkpoint::new(spec, previous.map(|(_, c)| c))?, false)),
    }
}

/// Saves the checkpoint in the run state, if the run has one.
pub fn save(state: Option<&state::StateDir>, checkpoint: &Checkpoint) -> Result<(), ExportError> {
    if let Some(state) = state {
        let saved = match checkpoint.job {
            Some(_) => Saved::V3(checkpoint.clone()),
            None => Saved::V2(checkpoint.clone()),
        };
        state.save(CHECKPOINT, &saved)?;
    }
    Ok(())
}

/// The `--since` mark: a time given, or the last completed run's start less the index lag.
fn since_mark(
    spec: &ExportSpec,
    previous_upper: Option<&str>,
) -> Result<Option<String>, ExportError> {
    match &spec.since {
        None => Ok(None),
        Some(Since::At(t)) => Ok(Some(t.clone())),
        Some(Since::Last) => match previous_upper {
            None => {
                tracing::info!(
                    "No completed run in this state yet: --since last exports every user."
                );
                Ok(None)
            }
            Some(upper) => {
                let upper = DateTime::parse_from_rfc3339(upper)
                    .map_err(|e| ExportError::Usage(format!("bad mark in the state: {e}")))?
                    .with_timezone(&Utc);
                let lag = chrono::Duration::from_std(spec.index_lag).unwrap_or_default();
                Ok(Some(walk::canonical(upper - lag)))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn placeholders_fill_in_utc_in_file_safe_forms() {
        let now = Utc.with_ymd_and_hms(2024, 1, 31, 2, 3, 4).unwrap();
        let expand = |t: &str| expand(Path::new(t), now);
        assert_eq!(
            expand("out/users-{date}.ndjson.gz").unwrap(),
            PathBuf::from("out/users-2024-01-31.ndjson.gz")
        );
        assert_eq!(
            expand("{datetime}.csv").unwrap(),
            PathBuf::from("2024-01-31T020304Z.csv")
        );
        assert_eq!(
            expand("plain.ndjson").unwrap(),
            PathBuf::from("plain.ndjson")
        );
        let e = expand("users-{dat}.ndjson").unwrap_err();
        assert!(e.contains("did you mean {date}"), "{e}");
        assert!(expand("users-{date.ndjson").is_err());
        assert!(expand("users-}.ndjson").is_err());
    }

    #[test]
    fn the_tenant_of_an_older_state_is_read_from_its_fingerprint() {
        let text = r#"{"version":"1","fingerprint":"domain=https://acme.auth0.com query=None","upper":"2024-01-01T00:00:00.000Z","since":null,"cursor":null,"lines_done":0,"bytes":0,"users":0,"not_found":0,"windows":0,"completed":true,"last_completed_upper":"2024-01-01T00:00:00.000Z"}"#;
        let c = serde_json::from_str::<Saved>(text)
            .unwrap()
            .into_checkpoint();
        assert_eq!(c.tenant().as_deref(), Some("https://acme.auth0.com"));
        assert!(c.last_output.is_none() && c.options.is_none());
    }

    #[test]
    fn changed_options_are_named_with_both_values() {
        let before = Options {
            output: "u.ndjson".into(),
            engine: None,
            format: "ndjson".into(),
            gzip: false,
            gzip_level: None,
            query: None,
            connection: None,
            since: None,
            users: None,
            fields: Some(vec!["a".into(), "b".into()]),
            exclude_fields: vec![],
            rename: vec![],
            include: None,
        };
        let mut after = before.clone();
        after.fields = Some(vec!["a".into(), "b".into(), "c".into()]);
        after.query = Some("email:x".into());
        assert_eq!(
            before.changes(&after),
            [
                "`--query` changed from `(none)` to `email:x`",
                "`--fields` changed from `a,b` to `a,b,c`"
            ]
        );
        assert!(before.changes(&before).is_empty());
    }
}
