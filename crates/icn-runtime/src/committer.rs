//! The group committer: members' own events are signed on one thread, in
//! the order they were asked for, and those waiting together are committed
//! in one transaction (`Node::batched`); each request is answered only once
//! its batch is durable. If the commit fails, the log is rebuilt from the
//! store and every request of the batch hears of it.
//!
//! The HTTP layers (gateway, admin socket) hand it work; it knows nothing
//! of them.

use std::sync::{Arc, Mutex, mpsc};

use crate::node::{Node, NodeError};

/// Requests that sign an event wait here, at most; more are refused (busy).
pub const SIGN_QUEUE_MAX: usize = 4_096;
/// Events signed per transaction, at most.
pub const GROUP_COMMIT_MAX: usize = 512;

/// Signs within a batch; returns how to answer once the batch was
/// committed (or failed to be).
type Job = Box<dyn FnOnce(&mut Node) -> Answer + Send>;
type Answer = Box<dyn FnOnce(Result<(), String>) + Send>;

/// Why a signing request got no answer from the node's rules.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// [`SIGN_QUEUE_MAX`] requests are already waiting.
    Busy,
    /// The batch could not be saved (or the committer has stopped):
    /// nothing of it happened.
    Unsaved,
}

pub struct Committer {
    queue: Option<mpsc::SyncSender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Committer {
    /// Starts the committer's thread for `node`.
    pub fn start(node: Arc<Mutex<Node>>) -> Committer {
        let (queue, jobs) = mpsc::sync_channel::<Job>(SIGN_QUEUE_MAX);
        let thread = std::thread::Builder::new()
            .name("icn-signer".to_owned())
            .spawn(move || {
                while let Ok(first) = jobs.recv() {
                    let mut batch = vec![first];
                    batch.extend(jobs.try_iter().take(GROUP_COMMIT_MAX - 1));
                    let mut node = node.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    let outcome = node.batched(|node| {
                        batch.into_iter().map(|job| job(node)).collect::<Vec<_>>()
                    });
                    match outcome {
                        Ok(answers) => answers.into_iter().for_each(|answer| answer(Ok(()))),
                        Err(error) => {
                            tracing::error!(%error, "Could not save signed events; none of the batch happened.");
                            // The answers were dropped with the batch: their
                            // requests hear of the failure as `Unsaved`.
                        }
                    }
                }
            })
            .expect("starting a thread works");
        Committer {
            queue: Some(queue),
            thread: Some(thread),
        }
    }

    /// Runs `action` in the next batch and answers once that batch is
    /// durable: the action's own result (a refusal by the co-op's rules is
    /// an `Ok(Err(..))`), or why it was not run or not saved.
    pub async fn sign<T: Send + 'static>(
        &self,
        action: impl FnOnce(&mut Node) -> Result<T, NodeError> + Send + 'static,
    ) -> Result<Result<T, NodeError>, Refused> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |node| {
            let signed = action(node);
            Box::new(move |committed: Result<(), String>| {
                let _ = answer.send(committed.map(|()| signed));
            })
        });
        let queue = self.queue.as_ref().ok_or(Refused::Unsaved)?;
        queue.try_send(job).map_err(|error| match error {
            mpsc::TrySendError::Full(_) => Refused::Busy,
            mpsc::TrySendError::Disconnected(_) => Refused::Unsaved,
        })?;
        answered
            .await
            .map_err(|_| Refused::Unsaved)?
            .map_err(|_| Refused::Unsaved)
    }
}

impl Drop for Committer {
    /// Stops the thread and waits for it, so that the node (and the data
    /// directory's lock) is released when its last holder is.
    fn drop(&mut self) {
        self.queue = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
