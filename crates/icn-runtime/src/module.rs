//! How a subsystem plugs into the node.
//!
//! A subsystem (the co-op's services today; members' files, contracts,
//! compute, federation later) is a crate with one type implementing
//! [`Module`]. Through it the node learns the subsystem's domains (what
//! its events fold into), its duties (what it does on its own, on a
//! schedule) and its network protocols (one ALPN each, a request and an
//! answer, served by the network layer, which alone knows iroh) and its
//! API operations ([`Operation`]: served by the gateway, which alone knows
//! axum).
//!
//! State a module keeps beside the log (a cache, say) lives in the node's
//! [`Extensions`], keyed by type, so that no module needs a field in
//! [`Node`].

use std::{
    any::{Any, TypeId},
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use icn_identity::Did;
use icn_kernel::{Domain, Timestamp};

use crate::{
    node::{Node, NodeError},
    operation::Operation,
};

/// A subsystem of the node.
pub trait Module: Send + Sync + 'static {
    /// A short lowercase name, for logs: `coop`, `files`.
    fn name(&self) -> &'static str;

    /// Fresh instances of the domains its events fold into. Called for a
    /// new log and for every replay; domains must be order-independent
    /// folds of the event set (the permutation property test).
    fn domains(&self) -> Vec<Box<dyn Domain>>;

    /// What it does on its own. Duties sign events, so the node runs them
    /// only while it may sign (not while a restored device waits to sync,
    /// nor while another of the member's devices signs).
    fn duties(&self) -> Vec<Duty> {
        Vec::new()
    }

    /// Members' display names by DID, if this module keeps them (the
    /// membership's profiles): messages name members, not DIDs.
    fn member_names(&self, node: &Node) -> Option<BTreeMap<String, String>> {
        let _ = node;
        None
    }

    /// The network protocols it serves to other nodes.
    fn protocols(&self) -> Vec<Protocol> {
        Vec::new()
    }

    /// What it offers members (the public gateway) and the admin (the
    /// admin socket).
    fn operations(&self) -> Vec<Operation> {
        Vec::new()
    }

    /// Whether this node's member trusts `member` enough that their node
    /// may send at the higher rate (the trust graph's judgement).
    fn trusts_peer(&self, node: &Node, member: &Did) -> bool {
        let _ = (node, member);
        false
    }
}

/// A network protocol a module serves: on its own ALPN, the caller sends
/// one request of at most `request_max` bytes, and `serve` answers it (on
/// a blocking thread, with the node). The network layer reads within the
/// limit, checks who may call, frames the answer and counts failures; a
/// module never touches a connection.
pub struct Protocol {
    /// `icn/join/1`: a name and a version; a new version is a new ALPN.
    pub alpn: &'static [u8],
    pub open_to: OpenTo,
    /// Longer requests are refused unread.
    pub request_max: usize,
    pub serve: ServeFn,
}

/// The answer to a request, or why it was refused (sent to the caller).
pub type ServeFn = Box<dyn Fn(&mut Node, &Caller, &[u8]) -> Result<Vec<u8>, String> + Send + Sync>;

/// Who may open a protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenTo {
    /// Nodes whose key the co-op's log authorises (the handshake checks).
    Members,
    /// Any node: what a newcomer needs before it is a member (the join
    /// protocol). Such a protocol must bound what it takes by itself.
    Anyone,
}

/// The node at the other end of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// Its endpoint key, proved by the QUIC handshake.
    pub key: [u8; 32],
    /// The member whose key it is, if the log says so.
    pub member: Option<Did>,
}

impl std::fmt::Debug for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Protocol")
            .field("alpn", &String::from_utf8_lossy(self.alpn))
            .field("open_to", &self.open_to)
            .field("request_max", &self.request_max)
            .finish_non_exhaustive()
    }
}

/// Something a module does on its own, such as closing a proposal when its
/// time is up. A duty decides from domain state and the time it is given,
/// never from an API type.
pub struct Duty {
    /// For logs: `governance.close`.
    pub name: &'static str,
    pub cadence: Cadence,
    /// Logs what it signed itself; an error is reported and retried at
    /// the next due time.
    pub run: DutyFn,
}

pub type DutyFn = Box<dyn Fn(&mut Node, Timestamp) -> Result<(), NodeError> + Send + Sync>;

/// How often a duty runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cadence {
    /// At every tick of the node (seconds): closing a vote on time matters.
    EveryTick,
    /// At most once per period, and at the first tick after start (a laptop
    /// that was asleep catches up).
    Every(Duration),
}

impl std::fmt::Debug for Duty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Duty")
            .field("name", &self.name)
            .field("cadence", &self.cadence)
            .finish_non_exhaustive()
    }
}

/// The modules this node runs, in the order they were registered.
#[derive(Clone)]
pub struct Modules {
    list: Arc<[Arc<dyn Module>]>,
}

impl Modules {
    pub fn new(list: Vec<Arc<dyn Module>>) -> Modules {
        Modules { list: list.into() }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Module>> {
        self.list.iter()
    }

    /// Every module's domains, fresh.
    pub fn domains(&self) -> Vec<Box<dyn Domain>> {
        self.list
            .iter()
            .flat_map(|module| module.domains())
            .collect()
    }

    /// Every module's network protocols.
    pub fn protocols(&self) -> Vec<Protocol> {
        self.list
            .iter()
            .flat_map(|module| module.protocols())
            .collect()
    }

    /// Every module's API operations.
    pub fn operations(&self) -> Vec<Operation> {
        self.list
            .iter()
            .flat_map(|module| module.operations())
            .collect()
    }

    /// Whether any module says this node's member trusts `member`.
    pub fn trusts_peer(&self, node: &Node, member: &Did) -> bool {
        self.list
            .iter()
            .any(|module| module.trusts_peer(node, member))
    }

    /// A scheduler for every module's duties.
    pub fn scheduler(&self) -> Scheduler {
        Scheduler {
            duties: self
                .list
                .iter()
                .flat_map(|module| module.duties())
                .map(|duty| (duty, None))
                .collect(),
        }
    }
}

/// A module of domains only (tests and benchmarks fold a log with it).
struct DomainsOnly(fn() -> Vec<Box<dyn Domain>>);

impl Module for DomainsOnly {
    fn name(&self) -> &'static str {
        "domains"
    }

    fn domains(&self) -> Vec<Box<dyn Domain>> {
        (self.0)()
    }
}

impl Modules {
    /// One module with the domains `make` makes, and no duties.
    pub fn of_domains(make: fn() -> Vec<Box<dyn Domain>>) -> Modules {
        Modules::new(vec![Arc::new(DomainsOnly(make))])
    }
}

impl std::fmt::Debug for Modules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.list.iter().map(|module| module.name()))
            .finish()
    }
}

/// Runs the modules' duties when they are due. Time is passed in: the
/// monotonic clock for cadence, the wall clock for what the duty signs.
pub struct Scheduler {
    duties: Vec<(Duty, Option<Instant>)>,
}

/// What one round of duties did.
#[derive(Debug, Default)]
pub struct Round {
    /// Duties that failed, with why (the others still ran).
    pub failed: Vec<(&'static str, NodeError)>,
}

impl Scheduler {
    /// Runs every duty that is due at `at`, unless the node may not sign now.
    pub fn run_due(&mut self, node: &mut Node, now: Timestamp, at: Instant) -> Round {
        let mut round = Round::default();
        if !node.may_sign_unasked() {
            return round;
        }
        for (duty, last) in &mut self.duties {
            let due = match (duty.cadence, *last) {
                (Cadence::EveryTick, _) | (Cadence::Every(_), None) => true,
                (Cadence::Every(period), Some(last)) => at.duration_since(last) >= period,
            };
            if !due {
                continue;
            }
            *last = Some(at);
            if let Err(error) = (duty.run)(node, now) {
                round.failed.push((duty.name, error));
            }
        }
        round
    }
}

/// State modules keep beside the node, one value per type.
#[derive(Default)]
pub struct Extensions {
    values: Mutex<BTreeMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl Extensions {
    /// The value of type `T`, made with `T::default()` on first use.
    pub fn get<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        let mut values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        let value = values
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Arc::new(T::default()))
            .clone();
        // The map holds a `T` under `T`'s type id, by construction.
        value
            .downcast::<T>()
            .unwrap_or_else(|_| Arc::new(T::default()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::DataDir;

    /// A module whose two duties count their runs.
    struct Counting {
        ticks: Arc<AtomicUsize>,
        hourly: Arc<AtomicUsize>,
    }

    impl Module for Counting {
        fn name(&self) -> &'static str {
            "counting"
        }

        fn domains(&self) -> Vec<Box<dyn Domain>> {
            Vec::new()
        }

        fn duties(&self) -> Vec<Duty> {
            let (ticks, hourly) = (self.ticks.clone(), self.hourly.clone());
            vec![
                Duty {
                    name: "every tick",
                    cadence: Cadence::EveryTick,
                    run: Box::new(move |_, _| {
                        ticks.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    }),
                },
                Duty {
                    name: "hourly",
                    cadence: Cadence::Every(Duration::from_secs(3600)),
                    run: Box::new(move |_, _| {
                        hourly.fetch_add(1, Ordering::SeqCst);
                        Err(NodeError::Conflict("not today".to_owned()))
                    }),
                },
            ]
        }
    }

    #[test]
    fn duties_run_on_their_cadence_and_a_failure_stops_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let (ticks, hourly) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let modules = Modules::new(vec![Arc::new(Counting {
            ticks: ticks.clone(),
            hourly: hourly.clone(),
        })]);
        let mut node = Node::open(DataDir::new(dir.path()), Vec::new(), &modules).unwrap();
        let mut scheduler = modules.scheduler();
        let start = Instant::now();
        let now = Timestamp(1_800_000_000_000);
        for minute in 0..120 {
            let round = scheduler.run_due(&mut node, now, start + Duration::from_secs(60 * minute));
            // The hourly duty's failure is reported, and the other ran.
            let failed: Vec<&str> = round.failed.iter().map(|(name, _)| *name).collect();
            let expected: &[&str] = if minute % 60 == 0 { &["hourly"] } else { &[] };
            assert_eq!(failed, expected, "minute {minute}");
        }
        assert_eq!(ticks.load(Ordering::SeqCst), 120);
        // At the first tick (a laptop that slept catches up), then an hour on.
        assert_eq!(hourly.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn extensions_hold_one_value_per_type() {
        let extensions = Extensions::default();
        extensions
            .get::<Mutex<u32>>()
            .lock()
            .map(|mut n| *n = 7)
            .unwrap();
        assert_eq!(*extensions.get::<Mutex<u32>>().lock().unwrap(), 7);
        assert_eq!(*extensions.get::<Mutex<u64>>().lock().unwrap(), 0);
    }
}
