//! The trust graph: members' statements of trust in each other, grown by
//! completed transfers and decaying with inactivity.
//!
//! **Events.** `trust.edge` in the truster's chain: to whom, a score from 0
//! to 1 (in thousandths, so events carry no floats), a class, and a context
//! (`general`, `ledger`, `compute`, `governance`); the latest per (to,
//! context) holds. The domain also watches `ledger.transfer`: every
//! completed transfer between two members counts for both directions.
//!
//! **Scores** are a view computed at query time (they decay with the
//! clock), by [`TrustGraph`]:
//!
//! - *direct*(a→b, context) = the explicit score in that context (else the
//!   `general` one, else 0); for `general` and `ledger`, each transfer
//!   between them adds `trust.growth` (0.05), but growth alone never lifts
//!   a score above `trust.growth_cap` (0.8); then × (1 − `trust.decay`)^m,
//!   where m is the number of whole 30-day months since their last
//!   activity (a statement or a transfer), `trust.decay` = 0.05.
//! - *score*(a→c) = the best product of direct scores along a path of at
//!   most `trust.depth` (3) edges: trust through someone is never more than
//!   trust in them, and fades with every hop.
//!
//! **Credit limits** use explicit scores only, read through the causal
//! clock so every node reaches the same verdict: the ledger hears of each
//! `general`/`ledger` statement (an order addressed to it) and a member's
//! trust is the average of the latest statements about them in a payment's
//! causal past.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use icn_identity::Did;
use icn_kernel::{Context, Domain, Effect, Event, EventId, Rejection, Status, ViewRow};
use icn_ledger::{KIND_TRANSFER, Order, Transfer};
use serde::{Deserialize, Serialize};

use crate::{decode, json, reject, text_check};

pub const KIND_EDGE: &str = "trust.edge";
pub const VIEW_TRUST: &str = "trust.edge";
/// Transfers remembered per pair, to explain a score.
const RECENT_TRANSFERS: usize = 8;
const MONTH_MS: u64 = 30 * 24 * 60 * 60 * 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    Known,
    Colleague,
    Close,
    Intimate,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrustContext {
    General,
    Ledger,
    Compute,
    Governance,
}

impl TrustContext {
    pub const ALL: [TrustContext; 4] = [
        TrustContext::General,
        TrustContext::Ledger,
        TrustContext::Compute,
        TrustContext::Governance,
    ];

    pub fn parse(text: &str) -> Option<TrustContext> {
        Self::ALL
            .into_iter()
            .find(|context| context.as_str() == text.trim().to_ascii_lowercase())
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            TrustContext::General => "general",
            TrustContext::Ledger => "ledger",
            TrustContext::Compute => "compute",
            TrustContext::Governance => "governance",
        }
    }

    /// Completed transfers grow trust in these contexts.
    fn grows_with_transfers(&self) -> bool {
        matches!(self, TrustContext::General | TrustContext::Ledger)
    }
}

impl Class {
    pub fn parse(text: &str) -> Option<Class> {
        match text.trim().to_ascii_lowercase().as_str() {
            "known" => Some(Class::Known),
            "colleague" => Some(Class::Colleague),
            "close" => Some(Class::Close),
            "intimate" => Some(Class::Intimate),
            _ => None,
        }
    }
}

/// The body of `trust.edge`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edge {
    pub to: Did,
    /// 0 to 1000: thousandths of full trust.
    pub permille: u16,
    pub class: Class,
    pub context: TrustContext,
    pub note: String,
}

/// One statement, as the views keep it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    pub permille: u16,
    pub class: Class,
    pub time_ms: u64,
    pub event: String,
    pub note: String,
    #[serde(skip)]
    seq: u64,
}

impl Statement {
    pub fn new(permille: u16, class: Class, time_ms: u64, event: String) -> Statement {
        Statement {
            permille,
            class,
            time_ms,
            event,
            note: String::new(),
            seq: 0,
        }
    }
}

/// What one member has said of, and done with, another.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pair {
    pub from: String,
    pub to: String,
    pub statements: BTreeMap<TrustContext, Statement>,
    /// Completed transfers between the two, either way.
    pub transfers: u64,
    pub last_transfer_ms: u64,
    /// The latest transfers (time, id), to explain a score.
    pub recent_transfers: BTreeSet<(u64, String)>,
}

/// The `trust` domain.
#[derive(Clone, Default)]
pub struct TrustDomain {
    pairs: BTreeMap<(Did, Did), Pair>,
}

impl TrustDomain {
    fn row(&self, key: &(Did, Did)) -> ViewRow {
        ViewRow {
            view: VIEW_TRUST,
            key: format!("{}/{}", key.0, key.1),
            value: json(&self.pairs[key]),
        }
    }

    fn pair(&mut self, from: Did, to: Did) -> &mut Pair {
        self.pairs.entry((from, to)).or_insert_with(|| Pair {
            from: from.to_string(),
            to: to.to_string(),
            ..Pair::default()
        })
    }
}

impl Domain for TrustDomain {
    fn name(&self) -> &'static str {
        "trust"
    }

    fn fresh(&self) -> Box<dyn Domain> {
        Box::new(TrustDomain::default())
    }

    fn begin(
        &mut self,
        genesis: &icn_kernel::Genesis,
        _founded: icn_kernel::Timestamp,
    ) -> Result<(), Rejection> {
        TrustParams::from_params(&genesis.params).map(|_| ())
    }

    fn validate(&self, event: &Event, context: &Context<'_>) -> Result<(), Rejection> {
        if event.kind().as_str() != KIND_EDGE {
            return Err(Rejection::UnknownKind {
                kind: event.kind().clone(),
            });
        }
        let edge: Edge = decode(event)?;
        context.active_member(context.author)?;
        if edge.to == *context.author {
            return Err(reject("trust in oneself is not a statement others can use"));
        }
        match context.member(&edge.to) {
            Some(membership) if membership.status != Status::Exited => {}
            _ => return Err(reject(format!("{} is not a member", edge.to))),
        }
        if edge.permille > 1000 {
            return Err(reject(format!(
                "a trust score is from 0 to 1, not {}",
                f64::from(edge.permille) / 1000.0
            )));
        }
        text_check(&edge.note, "the note", 200, false)
    }

    fn apply(
        &mut self,
        event: &Event,
        _context: &Context<'_>,
        rows: &mut Vec<ViewRow>,
    ) -> Vec<Effect> {
        let edge: Edge = event.body().expect("validated before apply");
        let from = event.author();
        let statement = Statement {
            permille: edge.permille,
            class: edge.class,
            time_ms: event.timestamp().as_millis(),
            event: event.id().to_string(),
            note: edge.note,
            seq: event.seq(),
        };
        // The truster's own events apply in chain order: this is the latest.
        self.pair(from, edge.to)
            .statements
            .insert(edge.context, statement);
        rows.push(self.row(&(from, edge.to)));
        if edge.context.grows_with_transfers() {
            vec![
                Order::Trust {
                    to: edge.to,
                    permille: edge.permille,
                    context: edge.context.as_str().to_owned(),
                }
                .effect(),
            ]
        } else {
            Vec::new()
        }
    }

    fn observe(&mut self, event: &Event, rows: &mut Vec<ViewRow>) {
        if event.kind().as_str() != KIND_TRANSFER {
            return;
        }
        let Ok(transfer) = event.body::<Transfer>() else {
            return;
        };
        let payer = event.author();
        let time_ms = event.timestamp().as_millis();
        for leg in &transfer.legs {
            for key in [(payer, leg.to), (leg.to, payer)] {
                let pair = self.pair(key.0, key.1);
                pair.transfers += 1;
                pair.last_transfer_ms = pair.last_transfer_ms.max(time_ms);
                pair.recent_transfers
                    .insert((time_ms, event.id().to_string()));
                while pair.recent_transfers.len() > RECENT_TRANSFERS {
                    pair.recent_transfers.pop_first();
                }
                rows.push(self.row(&key));
            }
        }
    }

    fn rows(&self) -> Vec<ViewRow> {
        self.pairs.keys().map(|key| self.row(key)).collect()
    }
}

/// The parameters of the score formula (`trust.*`), in thousandths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrustParams {
    pub decay_permille: u32,
    pub growth_permille: u32,
    pub growth_cap_permille: u32,
    pub depth: u32,
}

impl Default for TrustParams {
    fn default() -> TrustParams {
        TrustParams {
            decay_permille: 50,
            growth_permille: 50,
            growth_cap_permille: 800,
            depth: 3,
        }
    }
}

pub const PARAM_KEYS: &[&str] = &[
    "trust.decay",
    "trust.growth",
    "trust.growth_cap",
    "trust.depth",
];

impl TrustParams {
    /// Reads `trust.decay`, `trust.growth`, `trust.growth_cap` (fractions
    /// from 0 to 1) and `trust.depth` (1–6); a bad one is refused.
    pub fn from_params(params: &BTreeMap<String, String>) -> Result<TrustParams, Rejection> {
        let mut out = TrustParams::default();
        for (key, value) in params.iter().filter(|(key, _)| key.starts_with("trust.")) {
            let fraction = || {
                value
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|number| (0.0..=1.0).contains(number))
                    .map(|number| (number * 1000.0).round() as u32)
                    .ok_or_else(|| reject(format!("{key} is a number from 0 to 1, not {value:?}")))
            };
            match key.as_str() {
                "trust.decay" => out.decay_permille = fraction()?,
                "trust.growth" => out.growth_permille = fraction()?,
                "trust.growth_cap" => out.growth_cap_permille = fraction()?,
                "trust.depth" => {
                    out.depth = value
                        .trim()
                        .parse()
                        .ok()
                        .filter(|depth| (1..=6).contains(depth))
                        .ok_or_else(|| reject("trust.depth is a whole number from 1 to 6"))?
                }
                _ => {
                    return Err(reject(format!(
                        "unknown parameter {key}; known: {}",
                        PARAM_KEYS.join(", ")
                    )));
                }
            }
        }
        Ok(out)
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Link {
    to: u32,
    /// Per context: explicit (permille, time).
    explicit: [Option<(u16, u64)>; 4],
    transfers: u64,
    last_transfer_ms: u64,
}

/// A search's working space: per node, the best score and predecessor
/// found, valid only where `stamp` is the current search's.
#[derive(Default)]
struct Scratch {
    stamp: Vec<u32>,
    current: u32,
    best: Vec<f64>,
    previous: Vec<u32>,
    /// (search stamp, level) at which a node was last queued.
    queued: Vec<(u32, u32)>,
    reached: Vec<u32>,
}

impl Scratch {
    /// Queues `node` for the next level once; false if it already is.
    fn queue(&mut self, node: u32, level: u32) -> bool {
        let mark = (self.current, level);
        let slot = &mut self.queued[node as usize];
        if *slot == mark {
            false
        } else {
            *slot = mark;
            true
        }
    }

    fn reset(&mut self, nodes: usize) {
        if self.stamp.len() < nodes {
            self.stamp.resize(nodes, 0);
            self.best.resize(nodes, 0.0);
            self.previous.resize(nodes, 0);
            self.queued.resize(nodes, (0, 0));
        }
        self.current = self.current.wrapping_add(1);
        if self.current == 0 {
            self.stamp.fill(0);
            self.queued.fill((0, 0));
            self.current = 1;
        }
        self.reached.clear();
    }

    fn best(&self, node: u32) -> f64 {
        if self.stamp[node as usize] == self.current {
            self.best[node as usize]
        } else {
            0.0
        }
    }

    fn previous(&self, node: u32) -> Option<u32> {
        (self.stamp[node as usize] == self.current).then(|| self.previous[node as usize])
    }

    fn visit(&mut self, node: u32, score: f64, previous: u32) {
        let index = node as usize;
        if self.stamp[index] != self.current {
            self.stamp[index] = self.current;
            self.reached.push(node);
        }
        self.best[index] = score;
        self.previous[index] = previous;
    }
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

/// The trust graph in memory, for scores at a given time.
pub struct TrustGraph {
    params: TrustParams,
    dids: Vec<Did>,
    index: HashMap<Did, u32>,
    out: Vec<Vec<Link>>,
    /// Direct scores of every link (shaped like `out`) for a (context,
    /// time): searches read these instead of recomputing each link's.
    weights: std::sync::Mutex<Vec<Weights>>,
}

type Weights = ((TrustContext, u64), std::sync::Arc<Vec<Vec<f64>>>);
/// (context, time) weight sets kept, at most.
const WEIGHT_SETS_MAX: usize = 4;

/// Why a score is what it is.
#[derive(Clone, Debug, Serialize)]
pub struct Explanation {
    pub from: String,
    pub to: String,
    pub context: TrustContext,
    pub score: f64,
    /// The members the best path goes through, `from` and `to` included.
    pub path: Vec<String>,
    /// Each hop: its direct score and what made it.
    pub hops: Vec<Hop>,
    pub formula: &'static str,
}

#[derive(Clone, Debug, Serialize)]
pub struct Hop {
    pub from: String,
    pub to: String,
    pub direct: f64,
    pub stated: Option<f64>,
    pub stated_in: Option<TrustContext>,
    pub transfers: u64,
    pub inactive_months: u64,
}

pub const FORMULA: &str = "direct = stated score (context, else general), + growth per transfer (general and ledger; growth stops at the cap), × (1 − decay)^(whole months since the last statement or transfer); score = best product of direct scores along a path of at most `depth` hops";

impl TrustGraph {
    pub fn new(params: TrustParams, pairs: impl IntoIterator<Item = Pair>) -> TrustGraph {
        let mut graph = TrustGraph {
            params,
            dids: Vec::new(),
            index: HashMap::new(),
            out: Vec::new(),
            weights: Default::default(),
        };
        for pair in pairs {
            let (Ok(from), Ok(to)) = (pair.from.parse::<Did>(), pair.to.parse::<Did>()) else {
                continue;
            };
            let (from, to) = (graph.node(from), graph.node(to));
            let mut link = Link {
                to,
                transfers: pair.transfers,
                last_transfer_ms: pair.last_transfer_ms,
                ..Link::default()
            };
            for (context, statement) in &pair.statements {
                link.explicit[*context as usize] = Some((statement.permille, statement.time_ms));
            }
            graph.out[from as usize].push(link);
        }
        graph
    }

    fn node(&mut self, did: Did) -> u32 {
        if let Some(index) = self.index.get(&did) {
            return *index;
        }
        let index = self.dids.len() as u32;
        self.dids.push(did);
        self.index.insert(did, index);
        self.out.push(Vec::new());
        index
    }

    /// Every link's direct score in `context` at `now_ms`, computed once
    /// per (context, time) and kept for the next searches.
    fn weights(&self, context: TrustContext, now_ms: u64) -> std::sync::Arc<Vec<Vec<f64>>> {
        let mut sets = self.weights.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, set)) = sets.iter().find(|(key, _)| *key == (context, now_ms)) {
            return set.clone();
        }
        let set: std::sync::Arc<Vec<Vec<f64>>> = std::sync::Arc::new(
            self.out
                .iter()
                .map(|links| {
                    links
                        .iter()
                        .map(|link| self.direct(link, context, now_ms).0)
                        .collect()
                })
                .collect(),
        );
        if sets.len() >= WEIGHT_SETS_MAX {
            sets.remove(0);
        }
        sets.push(((context, now_ms), set.clone()));
        set
    }

    /// The direct score of `from`'s link to `to` (0 without one).
    pub fn direct_score(&self, from: &Did, to: &Did, context: TrustContext, now_ms: u64) -> f64 {
        let (Some(&from), Some(&to)) = (self.index.get(from), self.index.get(to)) else {
            return 0.0;
        };
        self.out[from as usize]
            .iter()
            .find(|link| link.to == to)
            .map_or(0.0, |link| self.direct(link, context, now_ms).0)
    }

    /// The direct score of one link: (score, stated, stated in, inactive months).
    fn direct(
        &self,
        link: &Link,
        context: TrustContext,
        now_ms: u64,
    ) -> (f64, Option<f64>, Option<TrustContext>, u64) {
        let (stated, stated_in) = match link.explicit[context as usize] {
            Some(stated) => (Some(stated), Some(context)),
            None => (
                link.explicit[TrustContext::General as usize],
                link.explicit[TrustContext::General as usize].map(|_| TrustContext::General),
            ),
        };
        let (base, stated_ms) =
            stated.map_or((0, 0), |(permille, time)| (u64::from(permille), time));
        let mut permille = base;
        if context.grows_with_transfers() && link.transfers > 0 {
            let cap = u64::from(self.params.growth_cap_permille);
            let grown = base
                .saturating_add(
                    link.transfers
                        .saturating_mul(u64::from(self.params.growth_permille)),
                )
                .min(cap);
            permille = permille.max(grown);
        }
        let last = stated_ms.max(link.last_transfer_ms);
        let months = now_ms.saturating_sub(last) / MONTH_MS;
        let keep = 1.0 - f64::from(self.params.decay_permille) / 1000.0;
        let score = permille.min(1000) as f64 / 1000.0 * keep.powi(months.min(10_000) as i32);
        (
            score,
            stated.map(|(permille, _)| f64::from(permille) / 1000.0),
            stated_in,
            months,
        )
    }

    /// Best scores from `from` to everyone reachable within `depth` hops,
    /// with each one's predecessor on its best path. Runs on a scratch
    /// space reused between searches (reset by a stamp, not by zeroing), so
    /// a search costs what it visits, not the size of the co-op.
    fn search<R>(
        &self,
        from: u32,
        context: TrustContext,
        now_ms: u64,
        read: impl FnOnce(&Scratch) -> R,
    ) -> R {
        let weights = self.weights(context, now_ms);
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            scratch.reset(self.dids.len());
            scratch.visit(from, 1.0, from);
            let mut frontier = vec![from];
            for level in 1..=self.params.depth {
                let mut next = Vec::new();
                for node in frontier {
                    let reach = scratch.best(node);
                    let links = &self.out[node as usize];
                    for (link, direct) in links.iter().zip(&weights[node as usize]) {
                        let through = reach * direct;
                        if through > scratch.best(link.to) {
                            scratch.visit(link.to, through, node);
                            if scratch.queue(link.to, level) {
                                next.push(link.to);
                            }
                        }
                    }
                }
                frontier = next;
            }
            read(&scratch)
        })
    }

    /// `from`'s trust in `to` in `context` at `now_ms` (0 when no path).
    pub fn score(&self, from: &Did, to: &Did, context: TrustContext, now_ms: u64) -> f64 {
        if from == to {
            return 1.0;
        }
        let (Some(a), Some(b)) = (self.index.get(from), self.index.get(to)) else {
            return 0.0;
        };
        self.search(*a, context, now_ms, |scratch| scratch.best(*b))
    }

    /// Every score from `from`, for a full recomputation.
    pub fn scores_from(&self, from: &Did, context: TrustContext, now_ms: u64) -> usize {
        self.index.get(from).map_or(0, |a| {
            self.search(*a, context, now_ms, |scratch| scratch.reached.len())
        })
    }

    /// The score with the path and the statements and transfers behind it.
    pub fn explain(&self, from: &Did, to: &Did, context: TrustContext, now_ms: u64) -> Explanation {
        let mut explanation = Explanation {
            from: from.to_string(),
            to: to.to_string(),
            context,
            score: 0.0,
            path: Vec::new(),
            hops: Vec::new(),
            formula: FORMULA,
        };
        let (Some(a), Some(b)) = (self.index.get(from), self.index.get(to)) else {
            return explanation;
        };
        let depth = self.params.depth as usize;
        let found = self.search(*a, context, now_ms, |scratch| {
            scratch.previous(*b).map(|_| {
                let mut path = vec![*b];
                while let Some(last) = path.last().copied()
                    && last != *a
                    && path.len() <= depth + 1
                {
                    path.push(scratch.previous(last).unwrap_or(*a));
                }
                (scratch.best(*b), path)
            })
        });
        let Some((score, mut path)) = found else {
            return explanation;
        };
        explanation.score = score;
        path.reverse();
        for hop in path.windows(2) {
            let link = self.out[hop[0] as usize]
                .iter()
                .find(|link| link.to == hop[1])
                .expect("a path follows links");
            let (direct, stated, stated_in, inactive_months) = self.direct(link, context, now_ms);
            explanation.hops.push(Hop {
                from: self.dids[hop[0] as usize].to_string(),
                to: self.dids[hop[1] as usize].to_string(),
                direct,
                stated,
                stated_in,
                transfers: link.transfers,
                inactive_months,
            });
        }
        explanation.path = path
            .into_iter()
            .map(|node| self.dids[node as usize].to_string())
            .collect();
        explanation
    }
}

/// The pairs' rows as the domain writes them.
pub fn parse_pair(value: &str) -> Option<Pair> {
    serde_json::from_str(value).ok()
}

/// The events behind a pair's statements and transfers, newest first.
pub fn events_behind(pair: &Pair) -> Vec<EventId> {
    let mut events: Vec<(u64, String)> = pair
        .statements
        .values()
        .map(|statement| (statement.time_ms, statement.event.clone()))
        .chain(pair.recent_transfers.iter().cloned())
        .collect();
    events.sort();
    events.reverse();
    events
        .into_iter()
        .filter_map(|(_, id)| id.parse().ok())
        .collect()
}
