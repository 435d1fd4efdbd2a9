//! Upserts through the job engine (`import --engine job --mode upsert`): each record is
//! looked up and patched one user at a time as on the per-user path, and only the users the
//! tenant lacks are handed to the job engine, which creates them in chunks.
//!
//! - **The pipeline stays.** [`Handoff`] is an [`Apply`]: the per-user pipeline still reads,
//!   orders (a user's records in input order) and paces the lookups and patches. A record
//!   whose user is missing becomes a chunk member and waits, without a worker permit, until
//!   its job has ended and the engine has written its outcome ([`Step::Handed`]); so the same
//!   user's next record finds the user the job made.
//! - **Chunks fill from many records in flight.** The pipeline takes in [`WINDOW`] records
//!   at once, so a chunk can fill while lookups go on. A chunk is sealed when full, when no
//!   member has come for [`IDLE`] (every record in flight may be waiting for it: the input's
//!   end, or a window of misses), or once open for [`MAX_OPEN`].
//! - **Exactly once across crashes**, as for creates: the jobs journal names each chunk's
//!   records before it is sent. A resumed run hands those records straight back (no lookup)
//!   and sends or polls their chunk again once all have come by.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::chunk::{self, Chunker, Member};
use super::journal::{self, Pending};
use super::{Dispatch, Engine, member};
use crate::api::ApiError;
use crate::import::apply::{self, Decision, PerUser};
use crate::import::before::Origin;
use crate::import::ledger::{self, Outcome};
use crate::import::plan::Planned;
use crate::import::read::Record;
use crate::import::{Apply, Step};

/// Records the pipeline takes in at once when creates wait for jobs: enough for chunks of
/// typical users (a few hundred bytes each) to fill while the jobs before them run.
pub const WINDOW: usize = 4096;
/// A chunk is sealed when no member has come for this long.
const IDLE: Duration = Duration::from_secs(1);
/// A chunk is sealed once open this long, so outcomes come steadily when misses are few.
const MAX_OPEN: Duration = Duration::from_secs(30);

/// A record handed over: its member, its user's job JSON and its connection.
struct Handed {
    member: Member,
    user: Vec<u8>,
    connection: String,
}

/// The records waiting for their job, each with the sender that tells the pipeline its
/// outcome is written.
#[derive(Default)]
pub(in crate::import) struct Waiting(Mutex<HashMap<u64, oneshot::Sender<()>>>);

impl Waiting {
    fn add(&self, ordinal: u64) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.0.lock().expect("waiting lock").insert(ordinal, tx);
        rx
    }

    /// Tells record `ordinal`'s pipeline task, if one waits, that its outcome is written.
    pub fn written(&self, ordinal: u64) {
        if let Some(tx) = self.0.lock().expect("waiting lock").remove(&ordinal) {
            let _ = tx.send(());
        }
    }

    /// Lets every waiting record go unwritten: the engine stopped.
    pub fn abandon(&self) {
        self.0.lock().expect("waiting lock").clear();
    }

    fn forget(&self, ordinal: u64) {
        self.0.lock().expect("waiting lock").remove(&ordinal);
    }
}

/// Applies upserts: per-user lookups and patches, creates handed to the job engine.
pub(in crate::import) struct Handoff<'a> {
    pub per_user: PerUser<'a>,
    pub engine: &'a Engine<'a>,
    tx: mpsc::UnboundedSender<Handed>,
    /// The records of chunks an earlier run sent, as `(first, last)` runs, sorted.
    resumed: Vec<(u64, u64)>,
}

impl Apply for Handoff<'_> {
    async fn apply(
        &self,
        ordinal: u64,
        record: &Record,
        planned: &Planned,
        was_in_flight: bool,
    ) -> Result<Step, ApiError> {
        if let Some(rejected) = self.per_user.check_access(planned).await? {
            return Ok(Step::Applied(rejected));
        }
        // Its chunk may have made the user: no lookup, the chunk's job says.
        if self.was_sent(ordinal) {
            return Ok(self.hand(ordinal, record, planned));
        }
        let origin = Origin {
            record: ordinal,
            line: record.line,
        };
        match apply::decide(&self.per_user, origin, planned, was_in_flight).await? {
            Decision::Done(applied) => {
                if let Some(hash) = &planned.hash
                    && applied.user_id.is_some()
                    && applied.outcome != Outcome::Rejected
                {
                    // Auth0 takes a hash only from a job that creates the user: said (the
                    // first few records, the rest counted in the summary), not dropped
                    // silently.
                    if self.engine.outcomes.note("hash_not_applied") {
                        tracing::warn!(
                            "Line {}: the user exists, so its `{}` was not applied (Auth0 takes a \
                             password hash only when an import job creates the user); the \
                             user keeps the password they have.",
                            record.line,
                            hash.name()
                        );
                    }
                }
                let applied = self
                    .per_user
                    .with_access(origin, planned, applied, was_in_flight)
                    .await?;
                Ok(Step::Applied(applied))
            }
            Decision::Create => Ok(self.hand(ordinal, record, planned)),
        }
    }
}

impl Handoff<'_> {
    fn was_sent(&self, ordinal: u64) -> bool {
        let at = self.resumed.partition_point(|(_, last)| *last < ordinal);
        self.resumed
            .get(at)
            .is_some_and(|(first, _)| *first <= ordinal)
    }

    fn hand(&self, ordinal: u64, record: &Record, planned: &Planned) -> Step {
        let (member, user, connection) = match member(ordinal, record, planned) {
            Ok(made) => made,
            Err(applied) => return Step::Applied(applied),
        };
        let written = self.engine.waiting.add(ordinal);
        let handed = Handed {
            member,
            user,
            connection,
        };
        if self.tx.send(handed).is_err() {
            // The engine is gone: the record waits for nothing.
            self.engine.waiting.forget(ordinal);
        }
        Step::Handed(written)
    }
}

/// A chunk an earlier run sent, gathered again as its records are handed back.
struct Gathering {
    pending: Pending,
    /// Its records without an outcome in the ledger: those that will come by.
    expected: usize,
    members: Vec<(Member, Vec<u8>)>,
}

/// The applier, and the task that cuts its creates into chunks and runs their jobs; the task
/// ends once the applier is dropped and every job has ended.
pub(in crate::import) fn start<'a>(
    per_user: PerUser<'a>,
    engine: &'a Engine<'a>,
    recovered: journal::Recovered,
    done: &ledger::Done,
) -> (Handoff<'a>, impl Future<Output = Option<ApiError>> + 'a) {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut resumed: Vec<(u64, u64)> = recovered
        .pending
        .values()
        .flat_map(|p| p.records.iter().copied())
        .collect();
    resumed.sort_unstable();
    let gathering: BTreeMap<u64, Gathering> = recovered
        .pending
        .into_iter()
        .map(|(number, pending)| {
            let expected = pending
                .records
                .iter()
                .flat_map(|(first, last)| *first..=*last)
                .filter(|ordinal| done.get(*ordinal).is_none())
                .count();
            let gathering = Gathering {
                pending,
                expected,
                members: Vec::new(),
            };
            (number, gathering)
        })
        .collect();
    let handoff = Handoff {
        per_user,
        engine,
        tx,
        resumed,
    };
    let chunker = Chunker::new(engine.settings.chunk_bytes, recovered.next_chunk);
    (handoff, run(engine, rx, chunker, gathering))
}

/// Cuts handed records into chunks and runs them, at most `max_jobs` at a time.
async fn run(
    engine: &Engine<'_>,
    mut rx: mpsc::UnboundedReceiver<Handed>,
    mut chunker: Chunker,
    mut gathering: BTreeMap<u64, Gathering>,
) -> Option<ApiError> {
    let (chunks_tx, chunks_rx) = mpsc::channel::<Dispatch>(1);
    let fatal = Mutex::new(None);
    let stop = |error: ApiError| {
        engine.waiting.abandon();
        fatal.lock().expect("fatal lock").get_or_insert(error);
    };
    let halted = || engine.cancel.is_cancelled() || fatal.lock().expect("fatal lock").is_some();
    let cutter = async {
        // Chunks an earlier run sent that went again, for a record of theirs that came late.
        let mut gone: Vec<(u64, Pending)> = Vec::new();
        let mut opened: Option<Instant> = None;
        loop {
            let handed = match tokio::time::timeout(IDLE, rx.recv()).await {
                Ok(Some(handed)) => Some(handed),
                Ok(None) => break,
                Err(_idle) => None,
            };
            if halted() {
                // Nothing more is sent; waiting records are let go.
                engine.waiting.abandon();
                continue;
            }
            let mut ready: Vec<Dispatch> = Vec::new();
            match handed {
                Some(handed) => {
                    let ordinal = handed.member.ordinal;
                    if let Some((&number, _)) =
                        gathering.iter().find(|(_, g)| g.pending.contains(ordinal))
                    {
                        let whole = {
                            let g = gathering.get_mut(&number).expect("found");
                            g.members.push((handed.member, handed.user));
                            g.members.len() >= g.expected
                        };
                        if whole {
                            let g = gathering.remove(&number).expect("found");
                            gone.push((number, g.pending.clone()));
                            ready.push(resumed(number, g));
                        }
                    } else if let Some((number, pending)) =
                        gone.iter().find(|(_, p)| p.contains(ordinal))
                    {
                        // Its chunk went before it came: it goes alone, under the same number.
                        let chunk = chunk::rebuild(*number, "", vec![(handed.member, handed.user)]);
                        ready.push(Dispatch::Resumed(chunk, pending.clone()));
                    } else if let Some(invalid) = chunker.refuses(&handed.user) {
                        let applied = apply::Applied::rejected(invalid.code, invalid.message, None);
                        if let Err(error) = engine.finish(&handed.member, &applied) {
                            stop(error);
                        }
                    } else {
                        opened.get_or_insert_with(Instant::now);
                        if let Some(sealed) =
                            chunker.add(&handed.connection, handed.member, &handed.user)
                        {
                            ready.push(Dispatch::New(sealed));
                        }
                    }
                    if opened.is_some_and(|at| at.elapsed() >= MAX_OPEN) {
                        ready.extend(chunker.flush().into_iter().map(Dispatch::New));
                        opened = None;
                    }
                }
                None => {
                    // Idle: whatever is gathered goes, or the records waiting for it never end.
                    ready.extend(chunker.flush().into_iter().map(Dispatch::New));
                    opened = None;
                    let numbers: Vec<u64> = gathering
                        .iter()
                        .filter(|(_, g)| !g.members.is_empty())
                        .map(|(n, _)| *n)
                        .collect();
                    for number in numbers {
                        let g = gathering.remove(&number).expect("listed");
                        gone.push((number, g.pending.clone()));
                        ready.push(resumed(number, g));
                    }
                }
            }
            for dispatch in ready {
                let _ = chunks_tx.send(dispatch).await;
            }
        }
        drop(chunks_tx);
    };
    let runner = engine.run_jobs(chunks_rx, &halted, &stop);
    futures::join!(cutter, runner);
    // Chunks an earlier run sent whose records all have outcomes are done with. (One whose
    // records did not all come by, as when the input broke off, stays for the next run.)
    if fatal.lock().expect("fatal lock").is_none() && !engine.cancel.is_cancelled() {
        let finished = gathering.iter().filter(|(_, g)| g.expected == 0);
        for (number, _) in finished {
            if let Err(error) = engine.forget(*number).await {
                stop(error);
                break;
            }
        }
    }
    fatal.into_inner().expect("fatal lock")
}

fn resumed(number: u64, gathering: Gathering) -> Dispatch {
    let chunk = chunk::rebuild(number, "", gathering.members);
    Dispatch::Resumed(chunk, gathering.pending)
}
