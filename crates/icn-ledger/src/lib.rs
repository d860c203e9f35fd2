//! The mutual-credit ledger, as a [`Domain`] on the event log.
//!
//! A transfer (`ledger.transfer`) is an event in the **payer's** chain: one
//! payer, one to sixteen payees, integer amounts in the currency's smallest
//! unit. Every debit of an account is in one chain, so spending past the
//! floor twice needs a fork, and the kernel proves forks when the branches
//! meet (exactly one counts; see `icn_kernel::log`).
//!
//! **Limit check over the causal past.** The payer's balance for the check
//! is every transfer in their own chain so far plus the payments *to* them
//! that are in the transfer's causal past (read through the kernel's causal
//! clock). Nothing else, so every node reaches the same verdict whatever
//! else it has seen.
//!
//! **Invariant**: balances sum to zero per currency; checked after every
//! applied transfer.

mod amount;

use std::collections::{BTreeMap, HashMap};

use icn_identity::Did;
use icn_kernel::{Context, CurrencySpec, Domain, Event, EventId, Fork, Rejection, ViewRow};
use serde::{Deserialize, Serialize};

pub use amount::{AmountError, format_amount, parse_amount};

pub const KIND_TRANSFER: &str = "ledger.transfer";
pub const LEGS_MAX: usize = 16;
pub const MEMO_MAX_BYTES: usize = 500;

/// View names (the store's `view_rows.view`).
pub const VIEW_BALANCE: &str = "ledger.balance";
pub const VIEW_ENTRY: &str = "ledger.entry";
pub const VIEW_NOTICE: &str = "ledger.notice";
pub const VIEW_TOTALS: &str = "ledger.totals";

/// The body of `ledger.transfer`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    pub currency: String,
    pub legs: Vec<Leg>,
    pub memo: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leg {
    pub to: Did,
    /// In the currency's smallest unit (minutes for hours).
    pub amount: u64,
}

impl Transfer {
    /// The sum of the legs; `None` if it overflows an account.
    pub fn total(&self) -> Option<i64> {
        self.legs.iter().try_fold(0i64, |sum, leg| {
            sum.checked_add(i64::try_from(leg.amount).ok()?)
        })
    }
}

/// Credit policy, in whole units of each currency (hours for `hours`).
/// Governance will change these by proposal; until then these defaults hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// How far below zero a member may go.
    pub floor_wholes: i64,
    /// Above this a member is flagged (not blocked).
    pub ceiling_wholes: i64,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            floor_wholes: 40,
            ceiling_wholes: 80,
        }
    }
}

impl Policy {
    pub fn floor(&self, currency: &CurrencySpec) -> i64 {
        -self.floor_wholes * currency.units_per_whole as i64
    }

    pub fn ceiling(&self, currency: &CurrencySpec) -> i64 {
        self.ceiling_wholes * currency.units_per_whole as i64
    }
}

/// One side of a transfer as a member sees it in their history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub id: String,
    pub time_ms: u64,
    pub currency: String,
    /// Positive when received, negative when paid.
    pub amount: i64,
    pub counterparty: String,
    pub memo: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceRow {
    pub currency: String,
    pub balance: i64,
    pub floor: i64,
    pub ceiling: i64,
    /// Above the ceiling: flagged for the co-op's attention, not blocked.
    pub over_ceiling: bool,
    pub frozen: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub transfers: u64,
    /// Sum of all amounts moved, in the smallest unit.
    pub volume: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub kind: String,
    pub message: String,
    pub event: String,
}

/// Payer → (payer's seq, cumulative amount paid to one payee), ascending.
type ReceivedFrom = HashMap<Did, Vec<(u64, i64)>>;

#[derive(Clone, Default)]
struct Ledger {
    policy: Policy,
    currencies: Vec<CurrencySpec>,
    members: Vec<Did>,
    balances: BTreeMap<(Did, String), i64>,
    /// Payer → currency → everything they paid so far (their chain is linear).
    paid: HashMap<(Did, String), i64>,
    /// (payee, currency) → payer → (payer's seq, cumulative amount to payee),
    /// ascending: what reached the payee from that payer up to a seq.
    received: HashMap<(Did, String), ReceivedFrom>,
    entries: Vec<(Did, Entry)>,
    totals: BTreeMap<String, Totals>,
    frozen: BTreeMap<Did, u64>,
    notices: Vec<(Did, Notice)>,
    conflicts: u64,
}

/// The ledger domain. `LedgerDomain::default()` uses the default policy.
#[derive(Clone, Default)]
pub struct LedgerDomain {
    state: Ledger,
}

impl LedgerDomain {
    pub fn with_policy(policy: Policy) -> LedgerDomain {
        LedgerDomain {
            state: Ledger {
                policy,
                ..Ledger::default()
            },
        }
    }
}

fn reject(reason: impl Into<String>) -> Rejection {
    Rejection::rule(reason)
}

impl Ledger {
    /// What reached `payee` in `currency` within `clock` (other authors).
    fn received_within(&self, payee: &Did, currency: &str, clock: &icn_kernel::Clock) -> i64 {
        let Some(by_payer) = self.received.get(&(*payee, currency.to_owned())) else {
            return 0;
        };
        by_payer
            .iter()
            .map(|(payer, steps)| {
                let Some(&known) = clock.get(payer) else {
                    return 0;
                };
                let upto = steps.partition_point(|(seq, _)| *seq <= known);
                if upto == 0 { 0 } else { steps[upto - 1].1 }
            })
            .sum()
    }

    fn balance_row(&self, member: &Did, currency: &CurrencySpec) -> ViewRow {
        let balance = self
            .balances
            .get(&(*member, currency.code.clone()))
            .copied()
            .unwrap_or(0);
        let row = BalanceRow {
            currency: currency.code.clone(),
            balance,
            floor: self.policy.floor(currency),
            ceiling: self.policy.ceiling(currency),
            over_ceiling: balance > self.policy.ceiling(currency),
            frozen: self.frozen.contains_key(member),
        };
        ViewRow {
            view: VIEW_BALANCE,
            key: format!("{member}/{}", currency.code),
            value: Some(serde_json::to_string(&row).expect("plain data")),
        }
    }

    fn totals_row(&self, currency: &str) -> ViewRow {
        ViewRow {
            view: VIEW_TOTALS,
            key: currency.to_owned(),
            value: Some(serde_json::to_string(&self.totals[currency]).expect("plain data")),
        }
    }

    fn conflicts_row(&self) -> ViewRow {
        ViewRow {
            view: VIEW_TOTALS,
            key: "#conflicts".to_owned(),
            value: Some(
                serde_json::json!({ "ledger_conflicts_detected_total": self.conflicts })
                    .to_string(),
            ),
        }
    }
}

/// History rows sort by member, then time, then id: one member's history is
/// one contiguous key range.
fn entry_row(member: &Did, entry: &Entry) -> ViewRow {
    ViewRow {
        view: VIEW_ENTRY,
        key: format!("{member}/{:016}/{}", entry.time_ms, entry.id),
        value: Some(serde_json::to_string(entry).expect("plain data")),
    }
}

fn notice_row(member: &Did, notice: &Notice) -> ViewRow {
    ViewRow {
        view: VIEW_NOTICE,
        key: format!("{member}/{}", notice.event),
        value: Some(serde_json::to_string(notice).expect("plain data")),
    }
}

impl Domain for LedgerDomain {
    fn name(&self) -> &'static str {
        "ledger"
    }

    fn fresh(&self) -> Box<dyn Domain> {
        Box::new(LedgerDomain::with_policy(self.state.policy.clone()))
    }

    fn begin(&mut self, genesis: &icn_kernel::Genesis) {
        self.state.currencies = genesis.currencies.clone();
        self.state.members = genesis.founders.clone();
    }

    fn validate(&self, event: &Event, context: &Context<'_>) -> Result<(), Rejection> {
        if event.kind().as_str() != KIND_TRANSFER {
            return Err(Rejection::UnknownKind {
                kind: event.kind().clone(),
            });
        }
        let transfer: Transfer = event.body().map_err(|error| Rejection::BadBody {
            reason: error.to_string(),
        })?;
        let state = &self.state;
        let payer = event.author();
        let currency = state
            .currencies
            .iter()
            .find(|currency| currency.code == transfer.currency)
            .ok_or_else(|| reject(format!("the co-op has no currency `{}`", transfer.currency)))?;
        if transfer.legs.is_empty() || transfer.legs.len() > LEGS_MAX {
            return Err(reject(format!("a transfer has 1 to {LEGS_MAX} payees")));
        }
        if transfer.memo.len() > MEMO_MAX_BYTES {
            return Err(reject(format!(
                "the memo is longer than {MEMO_MAX_BYTES} bytes"
            )));
        }
        if !state.members.contains(&payer) {
            return Err(reject(format!("{payer} is not a member of this co-op")));
        }
        for (index, leg) in transfer.legs.iter().enumerate() {
            if leg.amount == 0 {
                return Err(reject("an amount must be at least one unit"));
            }
            if leg.to == payer {
                return Err(reject("a member cannot pay themselves"));
            }
            if !state.members.contains(&leg.to) {
                return Err(reject(format!("{} is not a member of this co-op", leg.to)));
            }
            if transfer.legs[..index]
                .iter()
                .any(|other| other.to == leg.to)
            {
                return Err(reject(format!("{} appears twice; use one leg", leg.to)));
            }
        }
        let total = transfer
            .total()
            .ok_or_else(|| reject("the amounts overflow"))?;
        if let Some(seq) = context.forked_at
            && event.seq() > seq
        {
            return Err(reject(format!(
                "the account of {payer} is frozen: they signed two different entries at position {seq}"
            )));
        }
        let paid = state
            .paid
            .get(&(payer, currency.code.clone()))
            .copied()
            .unwrap_or(0);
        let balance = state.received_within(&payer, &currency.code, context.clock) - paid;
        let floor = state.policy.floor(currency);
        let after = balance
            .checked_sub(total)
            .ok_or_else(|| reject("the amounts overflow"))?;
        if after < floor {
            return Err(reject(format!(
                "this would take {payer} to {} {}, below the floor of {} (balance {} as far as this payment knows)",
                format_amount(after, currency),
                currency.code,
                format_amount(floor, currency),
                format_amount(balance, currency),
            )));
        }
        Ok(())
    }

    fn apply(&mut self, event: &Event, rows: &mut Vec<ViewRow>) {
        let transfer: Transfer = event.body().expect("validated before apply");
        let total = transfer.total().expect("validated before apply");
        let state = &mut self.state;
        let payer = event.author();
        let code = transfer.currency.clone();
        let id = event.id().to_string();
        let time_ms = event.timestamp().as_millis();
        *state.paid.entry((payer, code.clone())).or_default() += total;
        *state.balances.entry((payer, code.clone())).or_default() -= total;
        for leg in &transfer.legs {
            let amount = leg.amount as i64;
            *state.balances.entry((leg.to, code.clone())).or_default() += amount;
            let steps = state
                .received
                .entry((leg.to, code.clone()))
                .or_default()
                .entry(payer)
                .or_default();
            let cumulative = steps.last().map_or(0, |(_, sum)| *sum) + amount;
            steps.push((event.seq(), cumulative));
            let received = Entry {
                id: id.clone(),
                time_ms,
                currency: code.clone(),
                amount,
                counterparty: payer.to_string(),
                memo: transfer.memo.clone(),
            };
            rows.push(entry_row(&leg.to, &received));
            state.entries.push((leg.to, received));
            let paid = Entry {
                id: id.clone(),
                time_ms,
                currency: code.clone(),
                amount: -amount,
                counterparty: leg.to.to_string(),
                memo: transfer.memo.clone(),
            };
            rows.push(entry_row(&payer, &paid));
            state.entries.push((payer, paid));
        }
        let totals = state.totals.entry(code.clone()).or_default();
        totals.transfers += 1;
        totals.volume += total as u64;
        let sum: i64 = state
            .balances
            .iter()
            .filter(|((_, currency), _)| *currency == code)
            .map(|(_, balance)| *balance)
            .sum();
        assert_eq!(sum, 0, "double entry broken: {code} balances sum to {sum}");
        for member in std::iter::once(payer).chain(transfer.legs.iter().map(|leg| leg.to)) {
            rows.push(balance_row_for(state, &member, &code));
        }
        rows.push(state.totals_row(&code));
    }

    fn fork(&mut self, fork: &Fork<'_>, rows: &mut Vec<ViewRow>) {
        let voided: Vec<(EventId, Transfer)> = fork
            .voided
            .iter()
            .filter(|event| event.kind().as_str() == KIND_TRANSFER)
            .filter_map(|event| Some((event.id(), event.body::<Transfer>().ok()?)))
            .collect();
        let counted_is_transfer = fork
            .counted
            .is_some_and(|event| event.kind().as_str() == KIND_TRANSFER);
        if voided.is_empty() && !counted_is_transfer {
            return;
        }
        let state = &mut self.state;
        state.conflicts += 1;
        state.frozen.entry(fork.author).or_insert(fork.seq);
        let frozen = Notice {
            kind: "frozen".to_owned(),
            message: format!(
                "Your account is frozen: two different entries were signed as your entry #{}. \
                 One counts, the other never will. Ask the co-op to review and unfreeze it.",
                fork.seq
            ),
            event: format!("fork-{}", fork.seq),
        };
        rows.push(notice_row(&fork.author, &frozen));
        state.notices.push((fork.author, frozen));
        for (id, transfer) in voided {
            for leg in &transfer.legs {
                let notice = Notice {
                    kind: "voided".to_owned(),
                    message: format!(
                        "A payment to you of {} {} from {} ({:?}) never counted: the payer signed another entry in its place.",
                        state
                            .currencies
                            .iter()
                            .find(|currency| currency.code == transfer.currency)
                            .map_or(leg.amount.to_string(), |currency| {
                                format_amount(leg.amount as i64, currency)
                            }),
                        transfer.currency,
                        fork.author,
                        transfer.memo
                    ),
                    event: id.to_string(),
                };
                rows.push(notice_row(&leg.to, &notice));
                state.notices.push((leg.to, notice));
            }
        }
        let codes: Vec<String> = state.totals.keys().cloned().collect();
        for code in codes {
            rows.push(balance_row_for(state, &fork.author, &code));
        }
        rows.push(state.conflicts_row());
    }

    fn rows(&self) -> Vec<ViewRow> {
        let state = &self.state;
        let mut rows = Vec::new();
        for (member, code) in state.balances.keys() {
            rows.push(balance_row_for(state, member, code));
        }
        for (member, entry) in &state.entries {
            rows.push(entry_row(member, entry));
        }
        for code in state.totals.keys() {
            rows.push(state.totals_row(code));
        }
        for (member, notice) in &state.notices {
            rows.push(notice_row(member, notice));
        }
        if state.conflicts > 0 {
            rows.push(state.conflicts_row());
        }
        rows
    }
}

/// The balance row of `member` in the currency with this code (a declared one:
/// transfers in any other are refused).
fn balance_row_for(state: &Ledger, member: &Did, code: &str) -> ViewRow {
    let spec = state
        .currencies
        .iter()
        .find(|currency| currency.code == code)
        .expect("only declared currencies are applied");
    state.balance_row(member, spec)
}
