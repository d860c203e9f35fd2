//! The ledger's rules and state: how each kind validates over its causal
//! past and folds into balances and views.

use std::{
    borrow::Cow,
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
};

use icn_identity::Did;
use icn_kernel::{
    Clock, Context, CoopState, CurrencySpec, Domain, Effect, Event, EventId, Fork, Genesis,
    Rejection, Status, Timestamp, ViewRow,
};

use icn_kernel::{check_text as text_check, decode_body as decode};

use crate::{
    amount::format_amount,
    body::*,
    policy::{DAY_MS, DEMURRAGE_PERIOD_MS, Policy, Standing},
    view::*,
};

/// Effects on one account, per author, as prefix sums by the author's seq:
/// what reached the account from each chain up to any position in it.
#[derive(Clone, Debug, Default)]
struct Steps(HashMap<Did, Vec<(u64, i64)>>);

impl Steps {
    fn add(&mut self, author: Did, seq: u64, delta: i64) {
        let steps = self.0.entry(author).or_default();
        let sum = steps.last().map_or(0, |(_, sum)| *sum) + delta;
        match steps.last_mut() {
            Some(last) if last.0 == seq => last.1 = sum,
            _ => steps.push((seq, sum)),
        }
    }

    /// The sum of the effects in a causal past: everything by `own` (whose
    /// chain before the event is all in it) and, of every other author,
    /// what the clock says the event has seen.
    fn within(&self, clock: &Clock, own: &Did) -> i64 {
        self.0
            .iter()
            .map(|(author, steps)| {
                let known = if author == own {
                    u64::MAX
                } else {
                    match clock.get(author) {
                        Some(seq) => *seq,
                        None => return 0,
                    }
                };
                let upto = steps.partition_point(|(seq, _)| *seq <= known);
                if upto == 0 { 0 } else { steps[upto - 1].1 }
            })
            .sum()
    }

    fn total(&self) -> i64 {
        self.0
            .values()
            .map(|steps| steps.last().map_or(0, |(_, sum)| *sum))
            .sum()
    }
}

#[derive(Clone, Debug)]
struct Paid {
    payer: Did,
    currency: String,
    legs: Vec<Leg>,
    memo: String,
}

#[derive(Clone, Debug)]
struct RequestState {
    payee: Did,
    seq: u64,
    body: Request,
    time_ms: u64,
    /// The payer's answer: the transfer that paid it, or a decline's reason,
    /// with the seq in the payer's chain.
    paid: Option<(EventId, u64)>,
    declined: Option<(String, u64)>,
    /// Seq of the payee's withdrawal.
    withdrawn: Option<u64>,
}

#[derive(Clone, Debug)]
struct DisputeState {
    seq: u64,
    payer: Did,
    body: Dispute,
    currency: String,
    amount: i64,
    time_ms: u64,
    evidence: Vec<EvidenceItem>,
    /// Outcome, note, refunded amount, and the seq in the mediator's chain.
    resolved: Option<(Outcome, String, i64, u64)>,
}

/// A trust statement as credit limits read it: (seq in the truster's chain,
/// whether it is in the ledger context, permille).
type TrustStatement = (u64, bool, u16);

#[derive(Clone, Default)]
struct Ledger {
    /// The policy as it stands now (for the views).
    policy: Policy,
    /// The genesis's policy, for events that have seen no change to it.
    founding_policy: Policy,
    currencies: Vec<CurrencySpec>,
    founded_ms: u64,
    /// Member → when admitted (`None` for a founder, who has no ramp).
    members: BTreeMap<Did, Option<u64>>,
    balances: BTreeMap<(Account, String), i64>,
    /// Every effect on every account, by the chain that caused it.
    effects: HashMap<(Account, String), Steps>,
    /// What each member received by transfers: their cleared volume.
    received: HashMap<(Did, String), Steps>,
    transfers: HashMap<EventId, Paid>,
    requests: BTreeMap<EventId, RequestState>,
    disputes: BTreeMap<EventId, DisputeState>,
    disputed_legs: HashSet<(EventId, Did)>,
    /// (holder, currency) → the next period demurrage may be charged for.
    demurrage_next: HashMap<(Did, String), u64>,
    entries: Vec<(String, Entry)>,
    months: BTreeMap<String, MonthRow>,
    totals: BTreeMap<String, Totals>,
    frozen: BTreeMap<Did, u64>,
    /// Members whose fork freeze the co-op lifted, with the highest fork
    /// position the lift covers.
    lifted: BTreeMap<Did, u64>,
    /// Member → truster → their statements (seq, in the ledger context,
    /// permille), by seq: what credit limits read of trust.
    trust_in: HashMap<Did, BTreeMap<Did, Vec<TrustStatement>>>,
    /// Transfers reversed by a passed proposal.
    reversed: HashSet<EventId>,
    notices: Vec<(Did, Notice)>,
    conflicts: u64,
}

/// The ledger domain. `LedgerDomain::default()` reads its policy from the
/// genesis parameters when the log begins.
#[derive(Clone, Default)]
pub struct LedgerDomain {
    state: Ledger,
}

fn reject(reason: impl Into<String>) -> Rejection {
    Rejection::rule(reason)
}

fn json(value: &impl serde::Serialize) -> Option<String> {
    Some(serde_json::to_string(value).expect("plain data serialises"))
}

/// Someone paid or named in an entry: a member who has not left.
fn counterparty(context: &Context<'_>, did: &Did) -> Result<(), Rejection> {
    match context.member(did) {
        Some(membership) if membership.status != Status::Exited => Ok(()),
        Some(_) => Err(reject(format!("{did} has left the co-op"))),
        None => Err(reject(format!("{did} is not a member of this co-op"))),
    }
}

/// Whether `seq` of `author` is in the causal past of an event by `own`
/// whose clock is `clock`.
fn seen(clock: &Clock, own: &Did, author: &Did, seq: u64) -> bool {
    author == own || clock.get(author).is_some_and(|known| *known >= seq)
}

impl Ledger {
    fn currency(&self, code: &str) -> Result<&CurrencySpec, Rejection> {
        self.currencies
            .iter()
            .find(|currency| currency.code == code)
            .ok_or_else(|| reject(format!("the co-op has no currency `{code}`")))
    }

    /// The policy in an event's causal past: the genesis's, or what passed
    /// proposals made of it since.
    fn policy_in<'s>(&'s self, context: &Context<'_>) -> Cow<'s, Policy> {
        if context.coop.params_changed(Some(context.past())).is_none() {
            return Cow::Borrowed(&self.founding_policy);
        }
        // Governance checks a new value before it can pass; should one ever
        // not parse, the genesis policy holds.
        Policy::from_params(&context.coop.params(Some(context.past())))
            .map_or(Cow::Borrowed(&self.founding_policy), Cow::Owned)
    }

    /// A member's standing over a causal past (or, with `None`, over
    /// everything this node has applied).
    fn standing(&self, member: &Did, code: &str, past: Option<&Clock>, at_ms: u64) -> Standing {
        let received =
            self.received
                .get(&(*member, code.to_owned()))
                .map_or(0, |steps| match past {
                    Some(clock) => steps.within(clock, member),
                    None => steps.total(),
                });
        Standing {
            trust_permille: self.trust_within(member, past),
            received,
            member_for_ms: self
                .members
                .get(member)
                .copied()
                .flatten()
                .map(|admitted| at_ms.saturating_sub(admitted)),
        }
    }

    /// The average of the latest trust statements about `member` (in the
    /// ledger context, else the general one) in a causal past (or of all,
    /// with `None`), in thousandths.
    fn trust_within(&self, member: &Did, past: Option<&Clock>) -> i64 {
        let Some(trusters) = self.trust_in.get(member) else {
            return 0;
        };
        let (mut sum, mut count) = (0i64, 0i64);
        for (truster, statements) in trusters {
            let known = past.map_or(u64::MAX, |clock| clock.get(truster).copied().unwrap_or(0));
            let mut visible = statements.iter().rev().filter(|(seq, ..)| *seq <= known);
            let chosen = visible
                .clone()
                .find(|(_, ledger, _)| *ledger)
                .or_else(|| visible.find(|(_, ledger, _)| !*ledger));
            if let Some((_, _, permille)) = chosen {
                sum += i64::from(*permille);
                count += 1;
            }
        }
        if count == 0 { 0 } else { sum / count }
    }

    fn balance_within(&self, member: &Did, code: &str, clock: &Clock) -> i64 {
        self.effects
            .get(&(Account::Member(*member), code.to_owned()))
            .map_or(0, |steps| steps.within(clock, member))
    }

    /// Checks that `member` may pay `total` more in an event with `clock`.
    fn check_floor(
        &self,
        event: &Event,
        policy: &Policy,
        currency: &CurrencySpec,
        total: i64,
        clock: &Clock,
    ) -> Result<(), Rejection> {
        let payer = event.author();
        let balance = self.balance_within(&payer, &currency.code, clock);
        let standing = self.standing(
            &payer,
            &currency.code,
            Some(clock),
            event.timestamp().as_millis(),
        );
        let floor = policy.floor_for(currency, &standing);
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

    fn validate_transfer(&self, event: &Event, context: &Context<'_>) -> Result<(), Rejection> {
        let transfer: Transfer = decode(event)?;
        let payer = event.author();
        let currency = self.currency(&transfer.currency)?;
        if transfer.legs.is_empty() || transfer.legs.len() > LEGS_MAX {
            return Err(reject(format!("a transfer has 1 to {LEGS_MAX} payees")));
        }
        text_check(&transfer.memo, "the memo", MEMO_MAX_BYTES, false)?;
        context.active_member(&payer)?;
        for (index, leg) in transfer.legs.iter().enumerate() {
            if leg.amount == 0 {
                return Err(reject("an amount must be at least one unit"));
            }
            if leg.to == payer {
                return Err(reject("a member cannot pay themselves"));
            }
            counterparty(context, &leg.to)?;
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
        if let Some(id) = transfer.request {
            let request = self.request_seen(&id, event, context.clock)?;
            if request.body.payer != payer {
                return Err(reject(format!("request {id} asks someone else to pay")));
            }
            self.unanswered(&id, request, context.clock)?;
            let expected = [Leg {
                to: request.payee,
                amount: request.body.amount,
            }];
            if transfer.legs != expected || transfer.currency != request.body.currency {
                return Err(reject(format!(
                    "a transfer that pays request {id} pays exactly what it asks, to who asks"
                )));
            }
        }
        self.check_floor(
            event,
            &self.policy_in(context),
            currency,
            total,
            context.clock,
        )
    }

    /// A request in the causal past of `event`.
    fn request_seen(
        &self,
        id: &EventId,
        event: &Event,
        clock: &Clock,
    ) -> Result<&RequestState, Rejection> {
        self.requests
            .get(id)
            .filter(|request| seen(clock, &event.author(), &request.payee, request.seq))
            .ok_or_else(|| reject(format!("there is no payment request {id}")))
    }

    /// The payer has neither paid nor declined it (their own chain), and the
    /// payee had not withdrawn it as far as the answer knows.
    fn unanswered(
        &self,
        id: &EventId,
        request: &RequestState,
        clock: &Clock,
    ) -> Result<(), Rejection> {
        if request.paid.is_some() {
            return Err(reject(format!("request {id} is already paid")));
        }
        if request.declined.is_some() {
            return Err(reject(format!("request {id} is already declined")));
        }
        if let Some(seq) = request.withdrawn
            && clock.get(&request.payee).is_some_and(|known| *known >= seq)
        {
            return Err(reject(format!("request {id} was withdrawn")));
        }
        Ok(())
    }

    fn validate_request(&self, event: &Event, context: &Context<'_>) -> Result<(), Rejection> {
        let request: Request = decode(event)?;
        let payee = event.author();
        self.currency(&request.currency)?;
        context.active_member(&payee)?;
        counterparty(context, &request.payer)?;
        if request.payer == payee {
            return Err(reject("a member cannot ask themselves to pay"));
        }
        if request.amount == 0 || request.amount > i64::MAX as u64 {
            return Err(reject("an amount must be at least one unit"));
        }
        text_check(&request.memo, "the memo", MEMO_MAX_BYTES, false)
    }

    fn validate_decline(&self, event: &Event, context: &Context<'_>) -> Result<(), Rejection> {
        let decline: Decline = decode(event)?;
        text_check(&decline.reason, "the reason", MEMO_MAX_BYTES, false)?;
        let request = self.request_seen(&decline.request, event, context.clock)?;
        if request.body.payer != event.author() {
            return Err(reject(format!(
                "only the payer can decline request {}",
                decline.request
            )));
        }
        self.unanswered(&decline.request, request, context.clock)
    }

    fn validate_cancel(&self, event: &Event, context: &Context<'_>) -> Result<(), Rejection> {
        let cancel: Cancel = decode(event)?;
        let request = self.request_seen(&cancel.request, event, context.clock)?;
        let payer = request.body.payer;
        if request.payee != event.author() {
            return Err(reject(format!(
                "only who asked can withdraw request {}",
                cancel.request
            )));
        }
        if request.withdrawn.is_some() {
            return Err(reject(format!(
                "request {} is already withdrawn",
                cancel.request
            )));
        }
        if request
            .paid
            .is_some_and(|(_, seq)| seen(context.clock, &event.author(), &payer, seq))
        {
            return Err(reject(format!(
                "request {} is already paid",
                cancel.request
            )));
        }
        Ok(())
    }

    fn validate_dispute(&self, event: &Event, context: &Context<'_>) -> Result<(), Rejection> {
        let dispute: Dispute = decode(event)?;
        let payer = event.author();
        text_check(&dispute.reason, "the reason", MEMO_MAX_BYTES, true)?;
        // The payer's own transfers are all before this event in their chain.
        let paid = self
            .transfers
            .get(&dispute.entry)
            .filter(|paid| paid.payer == payer)
            .ok_or_else(|| {
                reject(format!(
                    "there is no payment {} by {payer} to dispute",
                    dispute.entry
                ))
            })?;
        if !paid.legs.iter().any(|leg| leg.to == dispute.payee) {
            return Err(reject(format!(
                "payment {} paid nothing to {}",
                dispute.entry, dispute.payee
            )));
        }
        if self.disputed_legs.contains(&(dispute.entry, dispute.payee)) {
            return Err(reject(format!(
                "what payment {} paid {} is already disputed",
                dispute.entry, dispute.payee
            )));
        }
        counterparty(context, &dispute.mediator)?;
        let policy = self.policy_in(context);
        if !policy.may_mediate(&dispute.mediator, &payer, &dispute.payee) {
            return Err(reject(format!(
                "{} cannot mediate: a mediator is not a party{}",
                dispute.mediator,
                if policy.mediators.is_empty() {
                    ""
                } else {
                    " and is one of the co-op's mediators (ledger.mediators)"
                }
            )));
        }
        Ok(())
    }

    /// A dispute in the causal past of `event`.
    fn dispute_seen(
        &self,
        id: &EventId,
        event: &Event,
        clock: &Clock,
    ) -> Result<&DisputeState, Rejection> {
        self.disputes
            .get(id)
            .filter(|dispute| seen(clock, &event.author(), &dispute.payer, dispute.seq))
            .ok_or_else(|| reject(format!("there is no dispute {id}")))
    }

    fn validate_evidence(&self, event: &Event, context: &Context<'_>) -> Result<(), Rejection> {
        let evidence: Evidence = decode(event)?;
        text_check(&evidence.text, "the evidence", EVIDENCE_MAX_BYTES, true)?;
        let dispute = self.dispute_seen(&evidence.dispute, event, context.clock)?;
        let author = event.author();
        if ![dispute.payer, dispute.body.payee, dispute.body.mediator].contains(&author) {
            return Err(reject(format!(
                "only the parties and the mediator add evidence to dispute {}",
                evidence.dispute
            )));
        }
        if let Some((.., seq)) = dispute.resolved
            && seen(context.clock, &author, &dispute.body.mediator, seq)
        {
            return Err(reject(format!(
                "dispute {} is already resolved",
                evidence.dispute
            )));
        }
        Ok(())
    }

    fn validate_resolve(&self, event: &Event, context: &Context<'_>) -> Result<(), Rejection> {
        let resolve: Resolve = decode(event)?;
        text_check(&resolve.note, "the note", MEMO_MAX_BYTES, false)?;
        let dispute = self.dispute_seen(&resolve.dispute, event, context.clock)?;
        if dispute.body.mediator != event.author() {
            return Err(reject(format!(
                "only {} , the mediator, resolves dispute {}",
                dispute.body.mediator, resolve.dispute
            )));
        }
        // The mediator's own earlier events are all applied before this one.
        if dispute.resolved.is_some() {
            return Err(reject(format!(
                "dispute {} is already resolved",
                resolve.dispute
            )));
        }
        if let Outcome::PartialRefund { amount } = resolve.outcome
            && (amount == 0 || amount as i64 > dispute.amount || amount > i64::MAX as u64)
        {
            return Err(reject(
                "a partial refund is at least one unit and at most what was paid",
            ));
        }
        Ok(())
    }

    fn validate_demurrage(&self, event: &Event, context: &Context<'_>) -> Result<(), Rejection> {
        let charge: Demurrage = decode(event)?;
        let holder = event.author();
        let currency = self.currency(&charge.currency)?;
        context.active_member(&holder)?;
        let policy = self.policy_in(context);
        if policy.demurrage_bp == 0 {
            return Err(reject("demurrage is off in this co-op"));
        }
        let next = self
            .demurrage_next
            .get(&(holder, charge.currency.clone()))
            .copied()
            .unwrap_or(0);
        if charge.period < next {
            return Err(reject(format!(
                "demurrage for period {} is already charged",
                charge.period
            )));
        }
        let ends = self
            .founded_ms
            .saturating_add((charge.period.saturating_add(1)).saturating_mul(DEMURRAGE_PERIOD_MS));
        if event.timestamp().as_millis() < ends {
            return Err(reject(format!(
                "demurrage period {} has not ended",
                charge.period
            )));
        }
        let balance = self.balance_within(&holder, &charge.currency, context.clock);
        let due = policy.demurrage_on(currency, balance);
        if due <= 0 || charge.amount != due as u64 {
            return Err(reject(format!(
                "the demurrage due on a balance of {} is {}, not {}",
                format_amount(balance, currency),
                format_amount(due, currency),
                charge.amount
            )));
        }
        Ok(())
    }
}

/// Folding accepted events into the state and the view rows.
impl Ledger {
    /// Moves `amount` by an event of `author` at `seq`; pushes the entry.
    #[allow(clippy::too_many_arguments)]
    fn post(
        &mut self,
        rows: &mut Vec<ViewRow>,
        event: &Event,
        n: usize,
        account: Account,
        amount: i64,
        counterparty: &Account,
        currency: &str,
        memo: &str,
        kind: &str,
        about: Option<EventId>,
    ) {
        *self
            .balances
            .entry((account, currency.to_owned()))
            .or_default() += amount;
        self.effects
            .entry((account, currency.to_owned()))
            .or_default()
            .add(event.author(), event.seq(), amount);
        let time_ms = event.timestamp().as_millis();
        let entry = Entry {
            id: event.id().to_string(),
            time_ms,
            currency: currency.to_owned(),
            amount,
            counterparty: counterparty.to_string(),
            memo: memo.to_owned(),
            kind: kind.to_owned(),
            about: about.map(|id| id.to_string()),
        };
        let key = entry_key(&account, time_ms, &entry.id, n);
        rows.push(ViewRow {
            view: VIEW_ENTRY,
            key: key.clone(),
            value: json(&entry),
        });
        self.entries.push((key, entry));
        let month_key = month_key(&account, currency, time_ms);
        let month = self.months.entry(month_key.clone()).or_default();
        if amount >= 0 {
            month.received += amount;
        } else {
            month.paid -= amount;
        }
        month.entries += 1;
        rows.push(ViewRow {
            view: VIEW_MONTH,
            key: month_key,
            value: json(month),
        });
        rows.push(self.balance_row(&account, currency));
    }

    /// The accounts the balance view shows: every account that moved, and
    /// every member's (founders' from the founding, others' from their
    /// admission), so a member's floor is shown, and a balance read from
    /// the views alone, before anything moves on their account.
    fn shown_accounts(&self) -> BTreeSet<(Account, String)> {
        let mut accounts: BTreeSet<(Account, String)> = self.balances.keys().cloned().collect();
        for did in self.members.keys() {
            for currency in &self.currencies {
                accounts.insert((Account::Member(*did), currency.code.clone()));
            }
        }
        accounts
    }

    fn balance_row(&self, account: &Account, code: &str) -> ViewRow {
        let currency = self
            .currencies
            .iter()
            .find(|currency| currency.code == code)
            .expect("only declared currencies are applied");
        let balance = self
            .balances
            .get(&(*account, code.to_owned()))
            .copied()
            .unwrap_or(0);
        let (floor, ceiling, frozen, ramp) = match account {
            Account::Member(did) => {
                let admitted = self.members.get(did).copied().flatten();
                let standing = self.standing(did, code, None, 0);
                let ramp = admitted.map(|at| self.policy.ramp(currency, &standing, at));
                let floor = match &ramp {
                    Some(ramp) => ramp.floor_at(0),
                    None => self.policy.floor_for(currency, &standing),
                };
                (
                    floor,
                    self.policy.ceiling(currency),
                    self.frozen.contains_key(did),
                    ramp,
                )
            }
            // The commons is bounded by what governance decides, not a floor.
            Account::Commons => (i64::MIN, i64::MAX, false, None),
        };
        let row = BalanceRow {
            currency: code.to_owned(),
            balance,
            floor,
            ceiling,
            over_ceiling: balance > ceiling,
            near_floor: crate::view::near_floor(balance, floor),
            frozen,
            ramp,
        };
        ViewRow {
            view: VIEW_BALANCE,
            key: format!("{account}/{code}"),
            value: json(&row),
        }
    }

    fn assert_balanced(&self, code: &str) {
        let sum: i64 = self
            .balances
            .iter()
            .filter(|((_, currency), _)| currency == code)
            .map(|(_, balance)| *balance)
            .sum();
        assert_eq!(sum, 0, "double entry broken: {code} balances sum to {sum}");
    }

    /// Carries out what a passed proposal (the `cause`, a close) ordered.
    fn execute(&mut self, cause: &Event, order: Order, rows: &mut Vec<ViewRow>) {
        match order {
            Order::Budget {
                to,
                amount,
                currency,
                memo,
            } => {
                // Governance checked both when the proposal opened.
                if self.currency(&currency).is_err() || amount > i64::MAX as u64 {
                    return;
                }
                let amount = amount as i64;
                let (from, to) = (Account::Commons, Account::Member(to));
                self.post(
                    rows, cause, 0, from, -amount, &to, &currency, &memo, "budget", None,
                );
                self.post(
                    rows, cause, 1, to, amount, &from, &currency, &memo, "budget", None,
                );
                self.assert_balanced(&currency);
            }
            Order::Reverse { entry, memo } => {
                // Governance checked that the transfer is in the proposal's
                // causal past, hence in the close's: it is applied.
                let Some(paid) = self.transfers.get(&entry).cloned() else {
                    return;
                };
                if !self.reversed.insert(entry) {
                    return;
                }
                let payer = Account::Member(paid.payer);
                let mut n = 0;
                for leg in &paid.legs {
                    if self.disputed_legs.contains(&(entry, leg.to)) {
                        continue;
                    }
                    let amount = leg.amount as i64;
                    let payee = Account::Member(leg.to);
                    self.post(
                        rows,
                        cause,
                        n,
                        payee,
                        -amount,
                        &payer,
                        &paid.currency,
                        &memo,
                        "reversal",
                        Some(entry),
                    );
                    self.post(
                        rows,
                        cause,
                        n + 1,
                        payer,
                        amount,
                        &payee,
                        &paid.currency,
                        &memo,
                        "reversal",
                        Some(entry),
                    );
                    n += 2;
                }
                self.assert_balanced(&paid.currency);
            }
            Order::Trust {
                to,
                permille,
                context,
            } => {
                let statements = self
                    .trust_in
                    .entry(to)
                    .or_default()
                    .entry(cause.author())
                    .or_default();
                statements.push((cause.seq(), context == "ledger", permille.min(1000)));
                statements.sort_unstable();
                // The floor shown in the views moves with it.
                let accounts: Vec<(Account, String)> = self
                    .shown_accounts()
                    .into_iter()
                    .filter(|(account, _)| *account == Account::Member(to))
                    .collect();
                for (account, code) in accounts {
                    rows.push(self.balance_row(&account, &code));
                }
            }
        }
    }

    fn apply_transfer(&mut self, event: &Event, rows: &mut Vec<ViewRow>) {
        let transfer: Transfer = event.body().expect("validated before apply");
        let payer = event.author();
        let code = transfer.currency.clone();
        for (n, leg) in transfer.legs.iter().enumerate() {
            let amount = leg.amount as i64;
            let (from, to) = (Account::Member(payer), Account::Member(leg.to));
            self.post(
                rows,
                event,
                n,
                from,
                -amount,
                &to,
                &code,
                &transfer.memo,
                "payment",
                None,
            );
            // Before posting: the payee's floor (in their balance row) grows
            // with what they received.
            self.received
                .entry((leg.to, code.clone()))
                .or_default()
                .add(payer, event.seq(), amount);
            self.post(
                rows,
                event,
                0,
                to,
                amount,
                &from,
                &code,
                &transfer.memo,
                "payment",
                None,
            );
        }
        let totals = self.totals.entry(code.clone()).or_default();
        totals.transfers += 1;
        totals.volume += transfer.total().expect("validated before apply") as u64;
        rows.push(self.totals_row(&code));
        if let Some(id) = transfer.request
            && let Some(request) = self.requests.get_mut(&id)
        {
            request.paid = Some((event.id(), event.seq()));
            rows.extend(self.request_rows(&id));
        }
        self.transfers.insert(
            event.id(),
            Paid {
                payer,
                currency: code.clone(),
                legs: transfer.legs,
                memo: transfer.memo,
            },
        );
        self.assert_balanced(&code);
    }

    fn apply_resolve(&mut self, event: &Event, rows: &mut Vec<ViewRow>) {
        let resolve: Resolve = event.body().expect("validated before apply");
        let dispute = self.disputes[&resolve.dispute].clone();
        let (payer, payee) = (
            Account::Member(dispute.payer),
            Account::Member(dispute.body.payee),
        );
        let memo = format!("dispute {}: {}", resolve.outcome.name(), resolve.note);
        let entry = Some(dispute.body.entry);
        let (from, amount, kind) = match resolve.outcome {
            Outcome::Valid => (None, 0, ""),
            Outcome::Reversed => (Some(payee), dispute.amount, "reversal"),
            Outcome::PartialRefund { amount } => (Some(payee), amount as i64, "refund"),
            Outcome::WriteOff => (Some(Account::Commons), dispute.amount, "write-off"),
        };
        let code = dispute.currency.clone();
        if let Some(from) = from {
            self.post(
                rows, event, 0, from, -amount, &payer, &code, &memo, kind, entry,
            );
            self.post(
                rows, event, 1, payer, amount, &from, &code, &memo, kind, entry,
            );
            self.assert_balanced(&code);
        }
        let state = self
            .disputes
            .get_mut(&resolve.dispute)
            .expect("validated before apply");
        state.resolved = Some((resolve.outcome, resolve.note, amount, event.seq()));
        rows.extend(self.dispute_rows(&resolve.dispute));
        for party in [dispute.payer, dispute.body.payee] {
            let notice = Notice {
                kind: "dispute".to_owned(),
                message: format!(
                    "The dispute over payment {} was resolved: {}{}.",
                    dispute.body.entry,
                    self.disputes[&resolve.dispute]
                        .resolved
                        .as_ref()
                        .expect("set")
                        .0
                        .name(),
                    if amount > 0 {
                        format!(
                            ", {} moved back",
                            self.currency(&code).map_or(amount.to_string(), |currency| {
                                format_amount(amount, currency)
                            })
                        )
                    } else {
                        String::new()
                    }
                ),
                event: event.id().to_string(),
            };
            self.notify(party, notice, rows);
        }
    }

    fn apply_demurrage(&mut self, event: &Event, rows: &mut Vec<ViewRow>) {
        let charge: Demurrage = event.body().expect("validated before apply");
        let holder = Account::Member(event.author());
        let memo = format!("demurrage, period {}", charge.period);
        let amount = charge.amount as i64;
        let code = charge.currency.clone();
        self.post(
            rows,
            event,
            0,
            holder,
            -amount,
            &Account::Commons,
            &code,
            &memo,
            "demurrage",
            None,
        );
        self.post(
            rows,
            event,
            1,
            Account::Commons,
            amount,
            &holder,
            &code,
            &memo,
            "demurrage",
            None,
        );
        self.demurrage_next
            .insert((event.author(), code.clone()), charge.period + 1);
        rows.push(demurrage_row(&event.author(), &code, charge.period + 1));
        self.assert_balanced(&code);
    }

    fn notify(&mut self, member: Did, notice: Notice, rows: &mut Vec<ViewRow>) {
        rows.push(notice_row(&member, &notice));
        self.notices.push((member, notice));
    }

    fn totals_row(&self, currency: &str) -> ViewRow {
        ViewRow {
            view: VIEW_TOTALS,
            key: currency.to_owned(),
            value: json(&self.totals[currency]),
        }
    }

    fn conflicts_row(&self) -> ViewRow {
        ViewRow {
            view: VIEW_TOTALS,
            key: "#conflicts".to_owned(),
            value: json(&serde_json::json!({ "ledger_conflicts_detected_total": self.conflicts })),
        }
    }

    fn request_row(&self, id: &EventId) -> RequestRow {
        let request = &self.requests[id];
        let (status, answer) = if let Some((paid, _)) = request.paid {
            ("paid", Some(paid.to_string()))
        } else if let Some((reason, _)) = &request.declined {
            ("declined", Some(reason.clone()))
        } else if request.withdrawn.is_some() {
            ("withdrawn", None)
        } else {
            ("pending", None)
        };
        RequestRow {
            id: id.to_string(),
            payee: request.payee.to_string(),
            payer: request.body.payer.to_string(),
            currency: request.body.currency.clone(),
            amount: request.body.amount as i64,
            memo: request.body.memo.clone(),
            time_ms: request.time_ms,
            status: status.to_owned(),
            answer,
            auto_accept_at_ms: (status == "pending" && self.policy.auto_accept_days > 0)
                .then(|| request.time_ms + self.policy.auto_accept_days * DAY_MS),
        }
    }

    /// The request's row under the payee and under the payer.
    fn request_rows(&self, id: &EventId) -> Vec<ViewRow> {
        let row = self.request_row(id);
        let request = &self.requests[id];
        [request.payee, request.body.payer]
            .iter()
            .map(|member| ViewRow {
                view: VIEW_REQUEST,
                key: format!("{member}/{id}"),
                value: json(&row),
            })
            .collect()
    }

    /// The dispute's row under each party and the mediator.
    fn dispute_rows(&self, id: &EventId) -> Vec<ViewRow> {
        let dispute = &self.disputes[id];
        let (status, refunded, note) = match &dispute.resolved {
            None => ("open", 0, None),
            Some((outcome, note, refunded, _)) => (outcome.name(), *refunded, Some(note.clone())),
        };
        let row = DisputeRow {
            id: id.to_string(),
            entry: dispute.body.entry.to_string(),
            payer: dispute.payer.to_string(),
            payee: dispute.body.payee.to_string(),
            mediator: dispute.body.mediator.to_string(),
            currency: dispute.currency.clone(),
            amount: dispute.amount,
            reason: dispute.body.reason.clone(),
            time_ms: dispute.time_ms,
            evidence: dispute.evidence.clone(),
            status: status.to_owned(),
            refunded,
            note,
        };
        [dispute.payer, dispute.body.payee, dispute.body.mediator]
            .iter()
            .map(|member| ViewRow {
                view: VIEW_DISPUTE,
                key: format!("{member}/{id}"),
                value: json(&row),
            })
            .collect()
    }
}

fn demurrage_row(holder: &Did, code: &str, next: u64) -> ViewRow {
    ViewRow {
        view: VIEW_DEMURRAGE,
        key: format!("{holder}/{code}"),
        value: Some(next.to_string()),
    }
}

fn notice_row(member: &Did, notice: &Notice) -> ViewRow {
    ViewRow {
        view: VIEW_NOTICE,
        key: format!("{member}/{}", notice.event),
        value: json(notice),
    }
}

impl LedgerDomain {
    /// The policy the co-op's genesis set (the default until `begin`).
    pub fn policy(&self) -> &Policy {
        &self.state.policy
    }
}

impl Domain for LedgerDomain {
    fn name(&self) -> &'static str {
        "ledger"
    }

    fn fresh(&self) -> Box<dyn Domain> {
        Box::new(LedgerDomain::default())
    }

    fn begin(&mut self, genesis: &Genesis, founded: Timestamp) -> Result<(), Rejection> {
        let state = &mut self.state;
        state.founded_ms = founded.as_millis();
        state.policy = Policy::from_params(&genesis.params)?;
        state.founding_policy = state.policy.clone();
        state.currencies = genesis.currencies.clone();
        state.members = genesis
            .founders
            .iter()
            .map(|founder| (*founder, None))
            .collect();
        Ok(())
    }

    fn effect(
        &mut self,
        cause: &Event,
        effect: &Effect,
        coop: &CoopState,
        rows: &mut Vec<ViewRow>,
    ) {
        let state = &mut self.state;
        match effect {
            // A new member's ramp starts at their first admission.
            Effect::Member { did, .. } if !state.members.contains_key(did) => {
                state
                    .members
                    .insert(*did, Some(cause.timestamp().as_millis()));
                // A new member sees their floor (and its ramp) before
                // anything moves on their account.
                let codes: Vec<String> = state.currencies.iter().map(|c| c.code.clone()).collect();
                for code in codes {
                    rows.push(state.balance_row(&Account::Member(*did), &code));
                }
            }
            Effect::Param { key, .. } if key.starts_with("ledger.") => {
                // Validation reads the policy of each event's causal past;
                // the views show the policy as it stands now.
                if let Ok(policy) = Policy::from_params(&coop.params(None)) {
                    state.policy = policy;
                    for (account, code) in state.shown_accounts() {
                        rows.push(state.balance_row(&account, &code));
                    }
                }
            }
            Effect::Unfreeze { did, through_seq } => {
                // The kernel counts the member's spending again; the views
                // say so.
                let lifted = state.lifted.entry(*did).or_default();
                *lifted = (*lifted).max(*through_seq);
                if state.frozen.get(did).is_some_and(|seq| seq <= through_seq) {
                    state.frozen.remove(did);
                    let notice = Notice {
                        kind: "unfrozen".to_owned(),
                        message: "The co-op lifted the freeze on your account: you can pay again."
                            .to_owned(),
                        event: cause.id().to_string(),
                    };
                    state.notify(*did, notice, rows);
                    let codes: Vec<String> =
                        state.currencies.iter().map(|c| c.code.clone()).collect();
                    for code in codes {
                        rows.push(state.balance_row(&Account::Member(*did), &code));
                    }
                }
            }
            Effect::Order { domain, body } if domain == "ledger" => {
                // Governance encodes orders with this build's types; a newer
                // peer's order this build cannot read changes nothing.
                if let Ok(order) = postcard::from_bytes::<Order>(body) {
                    state.execute(cause, order, rows);
                }
            }
            _ => {}
        }
    }

    fn validate(&self, event: &Event, context: &Context<'_>) -> Result<(), Rejection> {
        let state = &self.state;
        match event.kind().as_str() {
            KIND_TRANSFER => state.validate_transfer(event, context),
            KIND_REQUEST => state.validate_request(event, context),
            KIND_DECLINE => state.validate_decline(event, context),
            KIND_CANCEL => state.validate_cancel(event, context),
            KIND_DISPUTE => state.validate_dispute(event, context),
            KIND_EVIDENCE => state.validate_evidence(event, context),
            KIND_RESOLVE => state.validate_resolve(event, context),
            KIND_DEMURRAGE => state.validate_demurrage(event, context),
            _ => Err(Rejection::UnknownKind {
                kind: event.kind().clone(),
            }),
        }
    }

    fn apply(
        &mut self,
        event: &Event,
        _context: &Context<'_>,
        rows: &mut Vec<ViewRow>,
    ) -> Vec<Effect> {
        let state = &mut self.state;
        let time_ms = event.timestamp().as_millis();
        match event.kind().as_str() {
            KIND_TRANSFER => state.apply_transfer(event, rows),
            KIND_REQUEST => {
                let body: Request = event.body().expect("validated before apply");
                state.requests.insert(
                    event.id(),
                    RequestState {
                        payee: event.author(),
                        seq: event.seq(),
                        body,
                        time_ms,
                        paid: None,
                        declined: None,
                        withdrawn: None,
                    },
                );
                rows.extend(state.request_rows(&event.id()));
            }
            KIND_DECLINE => {
                let decline: Decline = event.body().expect("validated before apply");
                let request = state
                    .requests
                    .get_mut(&decline.request)
                    .expect("validated before apply");
                request.declined = Some((decline.reason, event.seq()));
                rows.extend(state.request_rows(&decline.request));
            }
            KIND_CANCEL => {
                let cancel: Cancel = event.body().expect("validated before apply");
                let request = state
                    .requests
                    .get_mut(&cancel.request)
                    .expect("validated before apply");
                request.withdrawn = Some(event.seq());
                rows.extend(state.request_rows(&cancel.request));
            }
            KIND_DISPUTE => {
                let body: Dispute = event.body().expect("validated before apply");
                let paid = &state.transfers[&body.entry];
                let amount = paid
                    .legs
                    .iter()
                    .find(|leg| leg.to == body.payee)
                    .map_or(0, |leg| leg.amount as i64);
                let dispute = DisputeState {
                    seq: event.seq(),
                    payer: event.author(),
                    currency: paid.currency.clone(),
                    amount,
                    time_ms,
                    evidence: Vec::new(),
                    resolved: None,
                    body,
                };
                let notice = Notice {
                    kind: "dispute".to_owned(),
                    message: format!(
                        "{} disputes payment {} ({:?}): {}",
                        dispute.payer, dispute.body.entry, paid.memo, dispute.body.reason
                    ),
                    event: event.id().to_string(),
                };
                let (payee, mediator) = (dispute.body.payee, dispute.body.mediator);
                state
                    .disputed_legs
                    .insert((dispute.body.entry, dispute.body.payee));
                state.disputes.insert(event.id(), dispute);
                rows.extend(state.dispute_rows(&event.id()));
                state.notify(payee, notice.clone(), rows);
                state.notify(mediator, notice, rows);
            }
            KIND_EVIDENCE => {
                let evidence: Evidence = event.body().expect("validated before apply");
                let dispute = state
                    .disputes
                    .get_mut(&evidence.dispute)
                    .expect("validated before apply");
                dispute.evidence.push(EvidenceItem {
                    by: event.author().to_string(),
                    time_ms,
                    text: evidence.text,
                });
                // Evidence from concurrent chains arrives in any order; keep
                // one order everywhere.
                dispute
                    .evidence
                    .sort_by(|a, b| (a.time_ms, &a.by, &a.text).cmp(&(b.time_ms, &b.by, &b.text)));
                rows.extend(state.dispute_rows(&evidence.dispute));
            }
            KIND_RESOLVE => state.apply_resolve(event, rows),
            KIND_DEMURRAGE => state.apply_demurrage(event, rows),
            other => unreachable!("validated before apply: {other}"),
        }
        Vec::new()
    }

    fn fork(&mut self, fork: &Fork<'_>, rows: &mut Vec<ViewRow>) {
        let is_ledger = |event: &Event| event.kind().domain() == "ledger";
        let voided: Vec<&Event> = fork
            .voided
            .iter()
            .copied()
            .filter(|event| is_ledger(event))
            .collect();
        if voided.is_empty() && !fork.counted.is_some_and(is_ledger) {
            return;
        }
        let state = &mut self.state;
        state.conflicts += 1;
        // A fork the co-op has already lifted the freeze for (a replay after
        // the unfreeze) freezes nothing.
        let lifted = state
            .lifted
            .get(&fork.author)
            .is_some_and(|through| *through >= fork.seq);
        if !lifted {
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
            state.notify(fork.author, frozen, rows);
        }
        for event in voided {
            let Ok(transfer) = event.body::<Transfer>() else {
                continue;
            };
            for leg in &transfer.legs {
                let amount = state
                    .currency(&transfer.currency)
                    .map_or(leg.amount.to_string(), |currency| {
                        format_amount(leg.amount as i64, currency)
                    });
                let notice = Notice {
                    kind: "voided".to_owned(),
                    message: format!(
                        "A payment to you of {amount} {} from {} ({:?}) never counted: the payer signed another entry in its place.",
                        transfer.currency, fork.author, transfer.memo
                    ),
                    event: event.id().to_string(),
                };
                state.notify(leg.to, notice, rows);
            }
        }
        let codes: Vec<String> = state.currencies.iter().map(|c| c.code.clone()).collect();
        for code in codes {
            rows.push(state.balance_row(&Account::Member(fork.author), &code));
        }
        rows.push(state.conflicts_row());
    }

    fn rows(&self) -> Vec<ViewRow> {
        let state = &self.state;
        let mut rows = Vec::new();
        for (account, code) in &state.shown_accounts() {
            rows.push(state.balance_row(account, code));
        }
        for (key, entry) in &state.entries {
            rows.push(ViewRow {
                view: VIEW_ENTRY,
                key: key.clone(),
                value: json(entry),
            });
        }
        for (key, month) in &state.months {
            rows.push(ViewRow {
                view: VIEW_MONTH,
                key: key.clone(),
                value: json(month),
            });
        }
        for code in state.totals.keys() {
            rows.push(state.totals_row(code));
        }
        for (member, notice) in &state.notices {
            rows.push(notice_row(member, notice));
        }
        for id in state.requests.keys() {
            rows.extend(state.request_rows(id));
        }
        for id in state.disputes.keys() {
            rows.extend(state.dispute_rows(id));
        }
        for ((holder, code), next) in &state.demurrage_next {
            rows.push(demurrage_row(holder, code, *next));
        }
        if state.conflicts > 0 {
            rows.push(state.conflicts_row());
        }
        rows
    }
}
