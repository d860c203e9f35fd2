//! Ingest of events in wire form, as they arrive from peers: decoding and
//! signature checks for one batch run on other threads while the batch
//! before it is validated, folded and committed.
//!
//! The commit waits on the disk (fsync) and validation is single-threaded
//! by design (the log is one state machine), so overlapping them with
//! verification is where a second core pays.

use std::sync::mpsc;

use icn_kernel::{Event, Timestamp, Verdict, VerifiedEvent};

use crate::node::{Node, NodeError};

/// Batches decoded and verified ahead of the committing thread.
const VERIFIED_AHEAD: usize = 4;

/// Group commit: when verified batches queue up behind a slow disk, up to
/// this many events go into one transaction (one fsync).
const GROUP_COMMIT_MAX_EVENTS: usize = 2_000;

/// What became of each event offered.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IngestReport {
    pub accepted: u64,
    pub duplicate: u64,
    pub pending: u64,
    /// In place in their author's chain, but refused by a rule.
    pub quarantined: u64,
    /// Refused by a kernel rule, dropped (buffer full), or proof of equivocation.
    pub refused: u64,
    /// Bytes that are not an event, or whose signature does not verify.
    pub malformed: u64,
    /// Transactions committed (batches that queued up share one).
    pub commits: u64,
}

impl IngestReport {
    fn count(&mut self, verdict: &Verdict) {
        match verdict {
            Verdict::Accepted => self.accepted += 1,
            Verdict::Duplicate => self.duplicate += 1,
            Verdict::Pending(_) => self.pending += 1,
            Verdict::Quarantined(_) => self.quarantined += 1,
            Verdict::Dropped | Verdict::Equivocation | Verdict::Voided | Verdict::Rejected(_) => {
                self.refused += 1
            }
        }
    }
}

/// Ingests `batches` of wire-format events. `threads` workers decode and
/// verify whole batches (batch *i* goes to worker *i* mod `threads`) while
/// this thread validates and commits them in their original order. A batch
/// is committed as soon as the disk is free; batches that became ready
/// meanwhile are committed with it (group commit). Stops at the first store
/// error; whatever was committed before it stays.
pub fn ingest_batches<I>(
    node: &mut Node,
    batches: I,
    threads: usize,
    now: Timestamp,
) -> Result<IngestReport, NodeError>
where
    I: IntoIterator<Item = Vec<Vec<u8>>>,
    I::IntoIter: Send,
{
    let threads = threads.clamp(1, 64);
    let mut batches = batches.into_iter();
    std::thread::scope(|scope| {
        let mut inboxes = Vec::with_capacity(threads);
        let mut outboxes = Vec::with_capacity(threads);
        for _ in 0..threads {
            let (to_worker, inbox) = mpsc::sync_channel::<Vec<Vec<u8>>>(VERIFIED_AHEAD);
            let (outbox, from_worker) = mpsc::sync_channel::<Verified>(VERIFIED_AHEAD);
            scope.spawn(move || {
                for batch in inbox {
                    if outbox.send(verify_batch(batch)).is_err() {
                        return; // The committing side stopped.
                    }
                }
            });
            inboxes.push(to_worker);
            outboxes.push(from_worker);
        }
        // Hands out batches in order; ends (closing the inboxes) when they run out.
        scope.spawn(move || {
            for (index, batch) in batches.by_ref().enumerate() {
                if inboxes[index % threads].send(batch).is_err() {
                    return;
                }
            }
        });
        let mut report = IngestReport::default();
        let mut next = 0;
        let mut receive = |block: bool| {
            let outbox = &outboxes[next % threads];
            let verified = if block {
                outbox.recv().ok()
            } else {
                outbox.try_recv().ok()
            };
            if verified.is_some() {
                next += 1;
            }
            verified
        };
        while let Some((mut group, malformed)) = receive(true) {
            report.malformed += malformed;
            while group.len() < GROUP_COMMIT_MAX_EVENTS
                && let Some((more, malformed)) = receive(false)
            {
                report.malformed += malformed;
                group.extend(more);
            }
            for verdict in node.ingest(group, now)? {
                report.count(&verdict);
            }
            report.commits += 1;
        }
        Ok(report)
    })
}

/// One batch's good events, and how many were not.
type Verified = (Vec<VerifiedEvent>, u64);

/// Decodes and verifies one batch on this thread.
fn verify_batch(batch: Vec<Vec<u8>>) -> Verified {
    let total = batch.len();
    let verified: Vec<VerifiedEvent> = batch
        .iter()
        .filter_map(|bytes| Event::decode(bytes).ok()?.verify().ok())
        .collect();
    let malformed = (total - verified.len()) as u64;
    (verified, malformed)
}
