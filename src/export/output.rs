//! The run's output from open to finish: where the walk writes (the output itself, or a
//! flattened CSV's NDJSON first pass), the tail every batch shares whether it came from the walk
//! or the `--users` list (encode, write durably, checkpoint, progress), and the steps that
//! finish the file (rename into place, second pass, the completed checkpoint).

use flate2::Compression;

use crate::api::Listed;
use crate::progress::Progress;
use crate::state::StateDir;

use super::checkpoint::{self, Checkpoint, Written};
use super::encode::{self, Encoder};
use super::job::caught_up::CaughtUp;
use super::sink::{self, Sink};
use super::{ExportError, ExportSpec, Output};

/// Where the walk writes its batches.
pub(super) struct WalkOutput {
    output: Output,
    gzip: Option<Compression>,
    // A flattened CSV's first pass without a state lives here, removed with it.
    _scratch: Option<tempfile::TempDir>,
}

impl WalkOutput {
    /// The output itself; for a flattened CSV, which needs every user's keys before its header
    /// (see `encode::flatten`), an NDJSON first pass in the state (or a temporary folder).
    pub(super) fn of(
        spec: &ExportSpec,
        state: Option<&StateDir>,
    ) -> Result<WalkOutput, ExportError> {
        if !spec.encoder.needs_second_pass() {
            return Ok(WalkOutput {
                output: spec.output.clone(),
                gzip: gzip(spec),
                _scratch: None,
            });
        }
        let (dir, scratch) = match state {
            Some(state) => (state.path().to_path_buf(), None),
            None => {
                let scratch = tempfile::tempdir().map_err(|source| ExportError::Output {
                    path: "a temporary folder".into(),
                    source,
                })?;
                (scratch.path().to_path_buf(), Some(scratch))
            }
        };
        Ok(WalkOutput {
            output: Output::File(dir.join("flatten.ndjson")),
            gzip: None,
            _scratch: scratch,
        })
    }

    /// Opens the walk's sink, truncated to the checkpoint when resumed; a new run writes the
    /// header and checkpoints it. `None` when a run that died after its output was renamed into
    /// place has nothing left to write.
    pub(super) fn open(
        &self,
        spec: &ExportSpec,
        state: Option<&StateDir>,
        checkpoint: &mut Checkpoint,
        resumed: bool,
        walk_done: bool,
    ) -> Result<Option<Sink>, ExportError> {
        let mut sink = match &self.output {
            Output::File(path)
                if walk_done && !sink::partial_path(path).exists() && path.exists() =>
            {
                return Ok(None);
            }
            Output::Stdout => Sink::stdout(self.gzip),
            // Nothing was sent yet: an output that cannot be opened (or no longer matches its
            // checkpoint) is the user's to fix, and running again alone would not help.
            Output::File(path) => Sink::file(path, self.gzip, resumed.then_some(checkpoint.bytes))
                .map_err(|e| {
                    ExportError::Usage(format!(
                        "cannot write {}: {e}",
                        sink::partial_path(path).display()
                    ))
                })?,
        };
        if !resumed {
            sink.write_batch(&spec.encoder.walk_encoder().header())
                .map_err(output_error(spec))?;
            checkpoint.bytes = sink.bytes();
            checkpoint::save(state, checkpoint)?;
        }
        Ok(Some(sink))
    }

    /// Once every batch is written: renames the walk's output into place, writes a flattened
    /// CSV's second pass, and marks the checkpoint completed (the next `--since last` mark).
    pub(super) fn finish(
        self,
        spec: &ExportSpec,
        state: Option<&StateDir>,
        checkpoint: &mut Checkpoint,
        sink: Option<Sink>,
    ) -> Result<(), ExportError> {
        if !checkpoint.written {
            checkpoint.written = true;
            checkpoint::save(state, checkpoint)?;
        }
        if let Some(sink) = sink {
            sink.finish().map_err(output_error(spec))?;
        }
        let mut first_pass = None;
        if let (
            Encoder {
                shape,
                format: encode::Format::CsvFlatten { escape_formulas },
            },
            Output::File(pass1),
        ) = (&spec.encoder, &self.output)
        {
            let mut out = match &spec.output {
                Output::Stdout => Sink::stdout(gzip(spec)),
                Output::File(path) => {
                    Sink::file(path, gzip(spec), None).map_err(output_error(spec))?
                }
            };
            let mut write = |bytes: &[u8]| out.write_batch(bytes);
            encode::flatten(pass1, shape, *escape_formulas, &mut write)
                .map_err(ExportError::Usage)?;
            out.finish().map_err(output_error(spec))?;
            first_pass = Some(pass1);
        }
        checkpoint.completed = true;
        checkpoint.cursor = None;
        checkpoint.last_completed_upper = Some(checkpoint.upper.clone());
        if let Output::File(path) = &spec.output {
            checkpoint.last_output = Written::of(path);
        }
        checkpoint::save(state, checkpoint)?;
        // The first pass holds user data: keep it no longer than needed (and only once the
        // checkpoint no longer needs it for a resume).
        if let Some(pass1) = first_pass {
            let _ = std::fs::remove_file(pass1);
        }
        Ok(())
    }
}

/// The output's gzip level, when it is gzipped.
fn gzip(spec: &ExportSpec) -> Option<Compression> {
    spec.gzip.then(|| Compression::new(spec.gzip_level))
}

/// A failed write, named by the output the user asked for.
fn output_error(spec: &ExportSpec) -> impl Fn(std::io::Error) -> ExportError + '_ {
    |source| ExportError::Output {
        path: spec.output.name(),
        source,
    }
}

/// Users enriched with `--include`'s keys and encoded at a time.
const ENRICH_AT_ONCE: usize = 100;

/// The tail every batch shares, from the walk or the `--users` list.
pub(super) struct Batches<'a> {
    pub encoder: Encoder,
    pub sink: &'a mut Sink,
    pub checkpoint: &'a mut Checkpoint,
    pub state: Option<&'a StateDir>,
    pub progress: &'a Progress,
    /// A job export's catch-up pass: every user written is recorded in it (see [`CaughtUp`]).
    pub caught_up: Option<CaughtUp>,
    /// `--include`: each user's roles, organizations and permissions are added as written.
    pub authz: Option<Authz<'a>>,
}

/// What `--include` needs to add to a batch: the assignments, and the client for the direct
/// permissions read per user.
pub(super) struct Authz<'a> {
    pub store: &'a super::authz::Store,
    pub client: &'a crate::api::Client,
    pub cancel: &'a tokio_util::sync::CancellationToken,
}

impl Batches<'_> {
    /// Encodes `users` and writes them durably, then records them in the checkpoint (with what
    /// `record` adds: the walk's cursor, the list's lines) and saves it, and only then moves
    /// the progress on by `done`. A checkpoint never counts a byte that is not on disk.
    pub async fn write(
        &mut self,
        users: &[Listed],
        done: u64,
        record: impl FnOnce(&mut Checkpoint),
    ) -> Result<(), ExportError> {
        let bytes = match &self.authz {
            Some(authz) => {
                if authz.store.reads_permissions() {
                    authz
                        .store
                        .fetch_permissions(authz.client, users, authz.cancel)
                        .await?;
                    // Many answers at once, each a little memory on its own thread: handed
                    // back once per batch, so the peak stays the walk's.
                    crate::memory::give_back();
                }
                // A few users at a time: a whole window's enriched copy would hold the window
                // twice while it is encoded.
                let mut bytes = Vec::new();
                for part in users.chunks(ENRICH_AT_ONCE) {
                    let enriched = authz.store.enrich(part)?;
                    let encoded = self.encoder.encode(&enriched).map_err(ExportError::Usage)?;
                    bytes.extend_from_slice(&encoded);
                }
                bytes
            }
            None => self.encoder.encode(users).map_err(ExportError::Usage)?,
        };
        self.sink
            .write_batch(&bytes)
            .map_err(|source| ExportError::Output {
                path: self.sink.name(),
                source,
            })?;
        if let Some(caught_up) = &mut self.caught_up {
            caught_up
                .record(users)
                .map_err(|source| ExportError::Output {
                    path: caught_up.name(),
                    source,
                })?;
        }
        self.checkpoint.bytes = self.sink.bytes();
        self.checkpoint.users += users.len() as u64;
        record(self.checkpoint);
        checkpoint::save(self.state, self.checkpoint)?;
        self.progress.inc(done);
        Ok(())
    }
}
