//! The ledger through the node: signing ledger events as this node's member,
//! and reading the ledger's views for people (CLI, web app) and programs.
//!
//! Ids may be given in full or as an unambiguous prefix of at least
//! [`ID_PREFIX_MIN`] hex digits, as the CLI prints them.

use std::fmt::Write as _;

use icn_api as api;
use icn_identity::Did;
use icn_kernel::{CurrencySpec, EventId, Log, Timestamp, encode_body};
use icn_ledger as ledger;
use serde::de::DeserializeOwned;

use icn_runtime::{Node, NodeError, Reader};

use crate::governance::GovernanceOps;

/// History entries returned at most per query.
pub const HISTORY_LIMIT_MAX: usize = 10_000;
/// Entries scanned at most to answer a filtered query or an export.
pub const SCAN_MAX: usize = 2_000_000;
pub const ID_PREFIX_MIN: usize = 8;

pub(crate) fn bad(message: impl Into<String>) -> NodeError {
    NodeError::BadInput(message.into())
}

/// Well-formed input naming nothing this node knows.
pub(crate) fn missing(message: impl Into<String>) -> NodeError {
    NodeError::NotFound(message.into())
}

fn parse_did(text: &str) -> Result<Did, NodeError> {
    text.trim()
        .parse()
        .map_err(|error: icn_identity::DidError| bad(error.to_string()))
}

fn currency_spec<'a>(log: &'a Log, code: &str) -> Result<&'a CurrencySpec, NodeError> {
    let currencies = &log.genesis_body().currencies;
    currencies
        .iter()
        .find(|currency| currency.code == code)
        .ok_or_else(|| {
            let known: Vec<&str> = currencies.iter().map(|c| c.code.as_str()).collect();
            missing(format!(
                "the co-op has no currency `{code}` (it has: {})",
                known.join(", ")
            ))
        })
}

fn display(log: &Log, amount: i64, code: &str) -> String {
    currency_spec(log, code).map_or_else(
        |_| amount.to_string(),
        |currency| ledger::format_amount(amount, currency),
    )
}

/// One account as members see it: one freeze, whether a fork's (the row's)
/// or a guardian's, since either stops the account.
fn account(
    row: ledger::BalanceRow,
    currency: &CurrencySpec,
    guardian_frozen: bool,
) -> api::Account {
    api::Account {
        display: ledger::format_amount(row.balance, currency),
        currency: row.currency,
        balance: row.balance,
        floor: row.floor,
        ceiling: row.ceiling,
        over_ceiling: row.over_ceiling,
        near_floor: row.near_floor,
        frozen: row.frozen || guardian_frozen,
    }
}

/// A member's balance from the views alone, on a reader's connection (no
/// node, no lock): what [`LedgerOps::balance`] answers, for a member named
/// by DID whose accounts all have rows. `None` when the views cannot answer
/// alone (a name, an unknown DID, an account without a row): ask the node,
/// which answers or explains.
pub fn balance_from_views(
    views: &Reader,
    member: &str,
    now: Timestamp,
) -> Result<Option<api::Balance>, NodeError> {
    let Ok(did) = member.trim().parse::<Did>() else {
        return Ok(None);
    };
    let key = did.to_string();
    if views.view_row(icn_governance::VIEW_MEMBER, &key)?.is_none() {
        return Ok(None);
    }
    let Some(coop) = views.view_row("coop", "genesis")? else {
        return Ok(None);
    };
    #[derive(serde::Deserialize)]
    struct Currencies {
        currencies: Vec<CurrencySpec>,
    }
    let coop: Currencies = parse_row("coop/genesis", &coop)?;
    let guardian_frozen = views.view_row(icn_kernel::VIEW_FREEZE, &key)?.is_some();
    let mut accounts = Vec::new();
    for currency in &coop.currencies {
        let key = format!("{key}/{}", currency.code);
        let Some(value) = views.view_row(ledger::VIEW_BALANCE, &key)? else {
            return Ok(None);
        };
        let row: ledger::BalanceRow = parse_row(&key, &value)?;
        accounts.push(account(row.at(now.as_millis()), currency, guardian_frozen));
    }
    Ok(Some(api::Balance { did: key, accounts }))
}

pub(crate) fn parse_row<T: DeserializeOwned>(key: &str, value: &str) -> Result<T, NodeError> {
    serde_json::from_str(value).map_err(|error| NodeError::Damaged {
        position: 0,
        reason: format!("the view row {key} does not parse: {error}"),
    })
}

/// One id among `candidates` (full hex ids) that `text` names.
pub(crate) fn pick_id(
    text: &str,
    what: &str,
    candidates: impl IntoIterator<Item = String>,
) -> Result<EventId, NodeError> {
    let text = text.trim().to_ascii_lowercase();
    if let Ok(id) = text.parse::<EventId>() {
        return Ok(id);
    }
    if text.len() < ID_PREFIX_MIN || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad(format!(
            "{text:?} is not a {what} id: give it whole or its first {ID_PREFIX_MIN}+ hex digits"
        )));
    }
    let mut found: Vec<String> = candidates
        .into_iter()
        .filter(|id| id.starts_with(&text))
        .collect();
    found.sort();
    found.dedup();
    match found.as_slice() {
        [] => Err(missing(format!("there is no {what} {text} of yours"))),
        [one] => one.parse().map_err(|_| bad(format!("{one} is not an id"))),
        _ => Err(bad(format!(
            "{text} could be {} {what}s; give more digits",
            found.len()
        ))),
    }
}

pub trait LedgerOps {
    fn ledger_log(&self) -> Result<&Log, NodeError>;

    fn me(&self) -> Result<Did, NodeError>;

    /// The co-op's ledger policy (its genesis was checked when it was made).
    fn ledger_policy(&self) -> Result<ledger::Policy, NodeError>;

    fn parse_amount_in(&self, text: &str, code: &str) -> Result<u64, NodeError>;

    /// Pays one member: `amount` as people write it (`3h`, `90m`, units).
    fn pay(&mut self, request: &api::Pay, now: Timestamp) -> Result<EventId, NodeError>;

    /// Asks a member to pay this node's member.
    fn request_payment(
        &mut self,
        request: &api::RequestPayment,
        now: Timestamp,
    ) -> Result<EventId, NodeError>;

    /// Accepts (pays), declines or withdraws a payment request.
    fn answer_request(
        &mut self,
        answer: &api::AnswerRequest,
        now: Timestamp,
    ) -> Result<EventId, NodeError>;

    /// Contests what this node's member paid in one of their entries.
    fn open_dispute(
        &mut self,
        request: &api::OpenDispute,
        now: Timestamp,
    ) -> Result<EventId, NodeError>;

    fn add_evidence(
        &mut self,
        request: &api::AddEvidence,
        now: Timestamp,
    ) -> Result<EventId, NodeError>;

    /// The mediator's decision on a dispute.
    fn resolve_dispute(
        &mut self,
        request: &api::ResolveDispute,
        now: Timestamp,
    ) -> Result<EventId, NodeError>;

    /// What the ledger asks of this node by itself: paying requests whose
    /// auto-accept time has come, and the demurrage of the period that
    /// just ended (when the co-op has it on). Returns the events signed;
    /// a duty the ledger refuses (a payment over the floor) is logged and
    /// left for the member.
    fn ledger_duties(&mut self, now: Timestamp) -> Result<Vec<EventId>, NodeError>;

    /// A member's accounts, from the stored view.
    fn balance(&self, did: &Did) -> Result<api::Balance, NodeError>;

    /// A member's latest entries that pass the filter, oldest first.
    fn history(&self, filter: &api::HistoryFilter) -> Result<api::History, NodeError>;

    /// One member's month: opening balance, what came in and went out,
    /// closing balance, and the entries.
    fn statement(&self, did: &Did, month: &str) -> Result<api::Statement, NodeError>;

    /// Every entry of one member, or of every account (`None`), oldest
    /// first within each account.
    fn export(&self, did: Option<&Did>) -> Result<Vec<api::HistoryEntry>, NodeError>;

    /// The co-op's ledger at a glance.
    fn totals(&self) -> Result<api::Totals, NodeError>;

    /// A member's payment requests, disputes and notices.
    fn inbox(&self, did: &Did) -> Result<api::Inbox, NodeError>;
}

impl LedgerOps for Node {
    fn ledger_log(&self) -> Result<&Log, NodeError> {
        self.log().ok_or(NodeError::NoCoop)
    }

    fn me(&self) -> Result<Did, NodeError> {
        self.identity()
            .map(|identity| identity.did)
            .ok_or(NodeError::NoIdentity)
    }

    fn ledger_policy(&self) -> Result<ledger::Policy, NodeError> {
        ledger::Policy::from_params(&self.ledger_log()?.genesis_body().params)
            .map_err(NodeError::Rejected)
    }

    fn parse_amount_in(&self, text: &str, code: &str) -> Result<u64, NodeError> {
        self.amount(text, code)
    }

    fn pay(&mut self, request: &api::Pay, now: Timestamp) -> Result<EventId, NodeError> {
        let to = self.resolve_member(&request.to)?;
        let code = request.currency.as_deref().unwrap_or("hours");
        let amount = self.amount(&request.amount, code)?;
        let body = encode_body(&ledger::Transfer {
            currency: code.to_owned(),
            legs: vec![ledger::Leg { to, amount }],
            memo: request.memo.clone(),
            request: None,
        });
        self.append(ledger::KIND_TRANSFER, body, now)
    }

    fn request_payment(
        &mut self,
        request: &api::RequestPayment,
        now: Timestamp,
    ) -> Result<EventId, NodeError> {
        let payer = self.resolve_member(&request.payer)?;
        let code = request.currency.as_deref().unwrap_or("hours");
        let amount = self.amount(&request.amount, code)?;
        let body = encode_body(&ledger::Request {
            payer,
            currency: code.to_owned(),
            amount,
            memo: request.memo.clone(),
        });
        self.append(ledger::KIND_REQUEST, body, now)
    }

    fn answer_request(
        &mut self,
        answer: &api::AnswerRequest,
        now: Timestamp,
    ) -> Result<EventId, NodeError> {
        let me = self.me()?;
        let rows = self.request_rows(&me)?;
        let id = pick_id(
            &answer.request,
            "payment request",
            rows.iter().map(|row| row.id.clone()),
        )?;
        let row = rows
            .iter()
            .find(|row| row.id == id.to_string())
            .ok_or_else(|| bad(format!("there is no payment request {id} to or from you")))?;
        let mine_to_pay = row.payer == me.to_string();
        match answer.answer.as_str() {
            "accept" | "decline" if !mine_to_pay => Err(bad(format!(
                "you asked {} to pay request {}; you can withdraw it, not {} it",
                row.payer,
                id.short(),
                answer.answer
            ))),
            "withdraw" if mine_to_pay => Err(bad(format!(
                "{} asked you to pay request {}; decline it instead",
                row.payee,
                id.short()
            ))),
            "accept" => {
                let body = encode_body(&ledger::Transfer {
                    currency: row.currency.clone(),
                    legs: vec![ledger::Leg {
                        to: parse_did(&row.payee)?,
                        amount: row.amount as u64,
                    }],
                    memo: row.memo.clone(),
                    request: Some(id),
                });
                self.append(ledger::KIND_TRANSFER, body, now)
            }
            "decline" => {
                let body = encode_body(&ledger::Decline {
                    request: id,
                    reason: answer.reason.clone(),
                });
                self.append(ledger::KIND_DECLINE, body, now)
            }
            "withdraw" => self.append(
                ledger::KIND_CANCEL,
                encode_body(&ledger::Cancel { request: id }),
                now,
            ),
            other => Err(bad(format!(
                "answer {other:?}: expected accept, decline or withdraw"
            ))),
        }
    }

    fn open_dispute(
        &mut self,
        request: &api::OpenDispute,
        now: Timestamp,
    ) -> Result<EventId, NodeError> {
        let me = self.me()?;
        let mine = self.entries(&format!("{me}/"), SCAN_MAX)?;
        let paid: Vec<&ledger::Entry> = mine.iter().filter(|entry| entry.amount < 0).collect();
        let entry = pick_id(
            &request.entry,
            "payment",
            paid.iter().map(|entry| entry.id.clone()),
        )?;
        let payee = match &request.payee {
            Some(payee) => self.resolve_member(payee)?,
            None => {
                let legs: Vec<&&ledger::Entry> = paid
                    .iter()
                    .filter(|paid| paid.id == entry.to_string() && paid.kind == "payment")
                    .collect();
                match legs.as_slice() {
                    [one] => parse_did(&one.counterparty)?,
                    [] => return Err(bad(format!("there is no payment {entry} by you"))),
                    _ => return Err(bad("that payment paid several members; name the payee")),
                }
            }
        };
        let body = encode_body(&ledger::Dispute {
            entry,
            payee,
            reason: request.reason.clone(),
            mediator: self.resolve_member(&request.mediator)?,
        });
        self.append(ledger::KIND_DISPUTE, body, now)
    }

    fn add_evidence(
        &mut self,
        request: &api::AddEvidence,
        now: Timestamp,
    ) -> Result<EventId, NodeError> {
        let (dispute, _) = self.my_dispute(&request.dispute)?;
        let body = encode_body(&ledger::Evidence {
            dispute,
            text: request.text.clone(),
        });
        self.append(ledger::KIND_EVIDENCE, body, now)
    }

    fn resolve_dispute(
        &mut self,
        request: &api::ResolveDispute,
        now: Timestamp,
    ) -> Result<EventId, NodeError> {
        let (dispute, row) = self.my_dispute(&request.dispute)?;
        let outcome = match request.outcome.as_str() {
            "valid" => ledger::Outcome::Valid,
            "reversed" | "reverse" => ledger::Outcome::Reversed,
            "write-off" | "writeoff" => ledger::Outcome::WriteOff,
            "refund" | "partial-refund" => {
                let amount = request.amount.as_deref().ok_or_else(|| {
                    bad("a refund needs an amount (how much the payee gives back)")
                })?;
                ledger::Outcome::PartialRefund {
                    amount: self.amount(amount, &row.currency)?,
                }
            }
            other => {
                return Err(bad(format!(
                    "outcome {other:?}: expected valid, reversed, refund or write-off"
                )));
            }
        };
        let body = encode_body(&ledger::Resolve {
            dispute,
            outcome,
            note: request.note.clone(),
        });
        self.append(ledger::KIND_RESOLVE, body, now)
    }

    fn ledger_duties(&mut self, now: Timestamp) -> Result<Vec<EventId>, NodeError> {
        if self.log().is_none() || !self.can_sign() {
            return Ok(Vec::new());
        }
        let me = self.me()?;
        let mut signed = Vec::new();
        let due: Vec<ledger::RequestRow> = self
            .request_rows(&me)?
            .into_iter()
            .filter(|row| row.status == "pending" && row.payer == me.to_string())
            .filter(|row| {
                row.auto_accept_at_ms
                    .is_some_and(|at| at <= now.as_millis())
            })
            .collect();
        for row in due {
            let answer = api::AnswerRequest {
                request: row.id.clone(),
                answer: "accept".to_owned(),
                reason: String::new(),
            };
            match self.answer_request(&answer, now) {
                Ok(id) => {
                    tracing::info!(request = %row.id, "Paid a payment request automatically.");
                    signed.push(id);
                }
                Err(error) => {
                    tracing::warn!(request = %row.id, %error, "Could not pay a payment request automatically.")
                }
            }
        }
        let policy = self.ledger_policy()?;
        if policy.demurrage_bp > 0 {
            let log = self.ledger_log()?;
            let founded = log.genesis().timestamp().as_millis();
            let elapsed = now.as_millis().saturating_sub(founded) / ledger::DEMURRAGE_PERIOD_MS;
            let currencies = log.genesis_body().currencies.clone();
            if let Some(period) = elapsed.checked_sub(1) {
                for currency in currencies {
                    let key = format!("{me}/{}", currency.code);
                    let next: u64 = self
                        .store()
                        .view_row(ledger::VIEW_DEMURRAGE, &key)?
                        .and_then(|text| text.parse().ok())
                        .unwrap_or(0);
                    let balance = self
                        .balance(&me)?
                        .accounts
                        .iter()
                        .find(|account| account.currency == currency.code)
                        .map_or(0, |account| account.balance);
                    let amount = policy.demurrage_on(&currency, balance);
                    if period < next || amount <= 0 {
                        continue;
                    }
                    let body = encode_body(&ledger::Demurrage {
                        currency: currency.code.clone(),
                        period,
                        amount: amount as u64,
                    });
                    match self.append(ledger::KIND_DEMURRAGE, body, now) {
                        Ok(id) => signed.push(id),
                        Err(error) => {
                            tracing::warn!(%error, "Could not charge this period's demurrage.")
                        }
                    }
                }
            }
        }
        Ok(signed)
    }

    fn balance(&self, did: &Did) -> Result<api::Balance, NodeError> {
        let log = self.ledger_log()?;
        let mut accounts = Vec::new();
        for currency in &log.genesis_body().currencies {
            let key = format!("{did}/{}", currency.code);
            let row: Option<ledger::BalanceRow> = self
                .store()
                .view_row(ledger::VIEW_BALANCE, &key)?
                .map(|value| parse_row(&key, &value))
                .transpose()?;
            // A member nothing has moved for yet has no row.
            let row = match row {
                Some(row) => row,
                None => {
                    let policy = self.ledger_policy()?;
                    ledger::BalanceRow {
                        currency: currency.code.clone(),
                        balance: 0,
                        floor: policy.floor_for(currency, &ledger::Standing::default()),
                        ceiling: policy.ceiling(currency),
                        over_ceiling: false,
                        near_floor: false,
                        frozen: false,
                        ramp: None,
                    }
                }
            }
            .at(icn_runtime::node::now().as_millis());
            accounts.push(account(row, currency, log.frozen(did).is_some()));
        }
        Ok(api::Balance {
            did: did.to_string(),
            accounts,
        })
    }

    fn history(&self, filter: &api::HistoryFilter) -> Result<api::History, NodeError> {
        let did = match &filter.did {
            Some(text) => self.resolve_member(text)?,
            None => self.me()?,
        };
        let limit = filter.limit.unwrap_or(50);
        if limit > HISTORY_LIMIT_MAX {
            return Err(bad(format!(
                "a page holds at most {HISTORY_LIMIT_MAX} entries, not {limit}; follow next_cursor for more"
            )));
        }
        let day = |text: &Option<String>, what: &str| -> Result<Option<u64>, NodeError> {
            text.as_deref()
                .map(|text| {
                    ledger::parse_date(text)
                        .ok_or_else(|| bad(format!("{what} date {text:?} is not like 2026-11-22")))
                })
                .transpose()
        };
        let from = day(&filter.from, "the from")?.unwrap_or(0);
        let to = day(&filter.to, "the to")?;
        let counterparty = filter
            .counterparty
            .as_deref()
            .map(|text| self.resolve_member(text))
            .transpose()?;
        if let Some(code) = &filter.currency {
            currency_spec(self.ledger_log()?, code)?;
        }
        let lower = format!("{did}/{from:016}");
        let mut upper = match to {
            Some(to) => format!("{did}/{to:016}"),
            None => format!("{did}/\u{10FFFF}"),
        };
        if let Some(cursor) = &filter.cursor {
            if !cursor.starts_with(&format!("{did}/")) {
                return Err(NodeError::Conflict(
                    "this cursor belongs to another history; pass the next_cursor of the same query"
                        .to_owned(),
                ));
            }
            upper = upper.min(cursor.clone());
        }
        let filtered = counterparty.is_some() || filter.currency.is_some();
        let rows = self.store().view_between(
            ledger::VIEW_ENTRY,
            &lower,
            &upper,
            if filtered { SCAN_MAX } else { limit },
            true,
        )?;
        let mut entries = Vec::new();
        let mut next_cursor = None;
        for (key, value) in rows.iter().rev() {
            if entries.len() == limit {
                break;
            }
            next_cursor = Some(key.clone());
            let entry: ledger::Entry = parse_row(key, value)?;
            if counterparty.is_some_and(|who| entry.counterparty != who.to_string())
                || filter
                    .currency
                    .as_ref()
                    .is_some_and(|code| &entry.currency != code)
            {
                continue;
            }
            entries.push(self.history_entry(&did.to_string(), entry)?);
        }
        entries.reverse();
        // A full page may have more before it; a short one is the start.
        if entries.len() < limit {
            next_cursor = None;
        }
        Ok(api::History {
            did: did.to_string(),
            entries,
            next_cursor,
        })
    }

    fn statement(&self, did: &Did, month: &str) -> Result<api::Statement, NodeError> {
        let log = self.ledger_log()?;
        let (year, number) = ledger::parse_month(month)
            .ok_or_else(|| bad(format!("month {month:?} is not like 2026-11")))?;
        let month = format!("{year:04}-{number:02}");
        let start = ledger::month_start_ms(year, number);
        let (next_year, next_number) = if number == 12 {
            (year + 1, 1)
        } else {
            (year, number + 1)
        };
        let end = ledger::month_start_ms(next_year, next_number);
        let mut accounts = Vec::new();
        for currency in &log.genesis_body().currencies {
            let prefix = format!("{did}/{}/", currency.code);
            let mut opening = 0;
            let mut this_month = ledger::MonthRow::default();
            for (key, value) in self.store().view_between(
                ledger::VIEW_MONTH,
                &prefix,
                &format!("{prefix}{month}\u{10FFFF}"),
                SCAN_MAX,
                false,
            )? {
                let row: ledger::MonthRow = parse_row(&key, &value)?;
                if key.ends_with(&month) {
                    this_month = row;
                } else {
                    opening += row.received - row.paid;
                }
            }
            let closing = opening + this_month.received - this_month.paid;
            let show = |amount| ledger::format_amount(amount, currency);
            accounts.push(api::StatementAccount {
                currency: currency.code.clone(),
                opening,
                received: this_month.received,
                paid: this_month.paid,
                closing,
                display: [
                    show(opening),
                    show(this_month.received),
                    show(this_month.paid),
                    show(closing),
                ],
            });
        }
        let rows = self.store().view_between(
            ledger::VIEW_ENTRY,
            &format!("{did}/{start:016}"),
            &format!("{did}/{end:016}"),
            HISTORY_LIMIT_MAX,
            false,
        )?;
        let entries = rows
            .iter()
            .map(|(key, value)| self.history_entry(&did.to_string(), parse_row(key, value)?))
            .collect::<Result<_, _>>()?;
        Ok(api::Statement {
            did: did.to_string(),
            month,
            accounts,
            entries,
        })
    }

    fn export(&self, did: Option<&Did>) -> Result<Vec<api::HistoryEntry>, NodeError> {
        let prefix = did.map_or_else(String::new, |did| format!("{did}/"));
        let rows = self
            .store()
            .view_range(ledger::VIEW_ENTRY, &prefix, SCAN_MAX + 1, false)?;
        if rows.len() > SCAN_MAX {
            return Err(bad(format!(
                "more than {SCAN_MAX} entries: export one member at a time"
            )));
        }
        rows.iter()
            .map(|(key, value)| {
                let account = key.split('/').next().unwrap_or_default();
                self.history_entry(account, parse_row(key, value)?)
            })
            .collect()
    }

    fn totals(&self) -> Result<api::Totals, NodeError> {
        let log = self.ledger_log()?;
        let balances = self.store().view(ledger::VIEW_BALANCE)?;
        let mut currencies = Vec::new();
        for currency in &log.genesis_body().currencies {
            let totals: ledger::Totals = self
                .store()
                .view_row(ledger::VIEW_TOTALS, &currency.code)?
                .map(|value| parse_row(&currency.code, &value))
                .transpose()?
                .unwrap_or_default();
            let now_ms = icn_runtime::node::now().as_millis();
            let mut summary = api::CurrencyTotals {
                currency: currency.code.clone(),
                balance_sum: 0,
                transfers: totals.transfers,
                volume: totals.volume,
                volume_display: ledger::format_amount(totals.volume as i64, currency),
                commons: 0,
                near_floor: Vec::new(),
                over_ceiling: Vec::new(),
                frozen: Vec::new(),
            };
            for (key, value) in &balances {
                let Some(account) = key.strip_suffix(&format!("/{}", currency.code)) else {
                    continue;
                };
                let row = parse_row::<ledger::BalanceRow>(key, value)?.at(now_ms);
                summary.balance_sum += row.balance;
                if account == ledger::COMMONS {
                    summary.commons = row.balance;
                    continue;
                }
                for (flag, list) in [
                    (row.near_floor, &mut summary.near_floor),
                    (row.over_ceiling, &mut summary.over_ceiling),
                    (row.frozen, &mut summary.frozen),
                ] {
                    if flag {
                        list.push(account.to_owned());
                    }
                }
            }
            currencies.push(summary);
        }
        let conflicts = self
            .store()
            .view_row(ledger::VIEW_TOTALS, "#conflicts")?
            .and_then(|value| serde_json::from_str::<serde_json::Value>(&value).ok())
            .and_then(|value| value["ledger_conflicts_detected_total"].as_u64())
            .unwrap_or(0);
        let quarantined = self.store().view_len(icn_kernel::VIEW_QUARANTINE)?;
        Ok(api::Totals {
            currencies,
            conflicts,
            quarantined,
        })
    }

    fn inbox(&self, did: &Did) -> Result<api::Inbox, NodeError> {
        let log = self.ledger_log()?;
        let requests = self
            .request_rows(did)?
            .into_iter()
            .map(|row| api::PaymentRequest {
                display: display(log, row.amount, &row.currency),
                id: row.id,
                payee: row.payee,
                payer: row.payer,
                currency: row.currency,
                amount: row.amount,
                memo: row.memo,
                time_ms: row.time_ms,
                status: row.status,
                answer: row.answer,
                auto_accept_at_ms: row.auto_accept_at_ms,
            })
            .collect();
        let disputes = self
            .dispute_rows(did)?
            .into_iter()
            .map(|row| api::Dispute {
                display: display(log, row.amount, &row.currency),
                id: row.id,
                entry: row.entry,
                payer: row.payer,
                payee: row.payee,
                mediator: row.mediator,
                currency: row.currency,
                amount: row.amount,
                reason: row.reason,
                time_ms: row.time_ms,
                evidence: row
                    .evidence
                    .into_iter()
                    .map(|item| api::DisputeEvidence {
                        by: item.by,
                        time_ms: item.time_ms,
                        text: item.text,
                    })
                    .collect(),
                status: row.status,
                refunded: row.refunded,
                note: row.note,
            })
            .collect();
        // Notices are written by the ledger, which knows members by DID;
        // members read names.
        let notices = self
            .store()
            .view_range(ledger::VIEW_NOTICE, &format!("{did}/"), SCAN_MAX, false)?
            .iter()
            .map(|(key, value)| {
                let notice: ledger::Notice = parse_row(key, value)?;
                Ok(api::Notice {
                    kind: notice.kind,
                    message: self.named(&notice.message),
                    event: notice.event,
                })
            })
            .collect::<Result<_, NodeError>>()?;
        Ok(api::Inbox {
            did: did.to_string(),
            requests,
            disputes,
            notices,
        })
    }
}

/// Helpers of [`LedgerOps`].
trait LedgerHelpers {
    fn amount(&self, text: &str, code: &str) -> Result<u64, NodeError>;
    fn request_rows(&self, member: &Did) -> Result<Vec<ledger::RequestRow>, NodeError>;
    fn dispute_rows(&self, member: &Did) -> Result<Vec<ledger::DisputeRow>, NodeError>;
    fn my_dispute(&self, text: &str) -> Result<(EventId, ledger::DisputeRow), NodeError>;
    fn entries(&self, prefix: &str, limit: usize) -> Result<Vec<ledger::Entry>, NodeError>;
    fn history_entry(
        &self,
        account: &str,
        entry: ledger::Entry,
    ) -> Result<api::HistoryEntry, NodeError>;
}

impl LedgerHelpers for Node {
    fn amount(&self, text: &str, code: &str) -> Result<u64, NodeError> {
        let currency = currency_spec(self.ledger_log()?, code)?;
        ledger::parse_amount(text, currency).map_err(|error| bad(error.to_string()))
    }

    fn request_rows(&self, member: &Did) -> Result<Vec<ledger::RequestRow>, NodeError> {
        self.store()
            .view_range(ledger::VIEW_REQUEST, &format!("{member}/"), SCAN_MAX, false)?
            .iter()
            .map(|(key, value)| parse_row(key, value))
            .collect()
    }

    fn dispute_rows(&self, member: &Did) -> Result<Vec<ledger::DisputeRow>, NodeError> {
        self.store()
            .view_range(ledger::VIEW_DISPUTE, &format!("{member}/"), SCAN_MAX, false)?
            .iter()
            .map(|(key, value)| parse_row(key, value))
            .collect()
    }

    fn my_dispute(&self, text: &str) -> Result<(EventId, ledger::DisputeRow), NodeError> {
        let rows = self.dispute_rows(&self.me()?)?;
        let id = pick_id(text, "dispute", rows.iter().map(|row| row.id.clone()))?;
        let row = rows
            .into_iter()
            .find(|row| row.id == id.to_string())
            .ok_or_else(|| bad(format!("dispute {id} is not one of yours")))?;
        Ok((id, row))
    }

    fn entries(&self, prefix: &str, limit: usize) -> Result<Vec<ledger::Entry>, NodeError> {
        self.store()
            .view_range(ledger::VIEW_ENTRY, prefix, limit, true)?
            .iter()
            .map(|(key, value)| parse_row(key, value))
            .collect()
    }

    fn history_entry(
        &self,
        account: &str,
        entry: ledger::Entry,
    ) -> Result<api::HistoryEntry, NodeError> {
        Ok(api::HistoryEntry {
            account: account.to_owned(),
            display: display(self.ledger_log()?, entry.amount, &entry.currency),
            id: entry.id,
            time_ms: entry.time_ms,
            currency: entry.currency,
            amount: entry.amount,
            counterparty: entry.counterparty,
            memo: entry.memo,
            kind: entry.kind,
            about: entry.about,
        })
    }
}

/// Entries as CSV for a spreadsheet: one line per entry, amounts both in
/// the smallest unit and as members read them. A field a spreadsheet would
/// run as a formula is quoted with a leading `'`.
pub fn entries_csv(entries: &[api::HistoryEntry]) -> String {
    fn field(text: &str) -> String {
        let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            format!("'{text}")
        } else {
            text.to_owned()
        };
        if text.contains([',', '"', '\n', '\r']) || text.starts_with('\'') {
            format!("\"{}\"", text.replace('"', "\"\""))
        } else {
            text
        }
    }
    let mut out = String::from(
        "account,time_utc,id,kind,currency,amount_units,amount,counterparty,memo,about\n",
    );
    for entry in entries {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{}",
            field(&entry.account),
            ledger::format_utc(entry.time_ms),
            entry.id,
            field(&entry.kind),
            field(&entry.currency),
            entry.amount,
            entry.display,
            field(&entry.counterparty),
            field(&entry.memo),
            entry.about.as_deref().unwrap_or_default(),
        );
    }
    out
}
