//! `icnctl ledger …`: pay, ask, answer, dispute; balances, history,
//! statements, exports and the co-op's totals.

use clap::Subcommand;
use icn_identity::Did;
use icn_kernel::{EventId, Timestamp};
use icn_node::prelude::*;
use icn_node::{
    Node,
    node::{NodeError, now},
};
use serde::Serialize;

use crate::{Context, Failure, Outcome, json};

#[derive(Subcommand)]
pub enum LedgerCommand {
    /// Pay a member: `icnctl ledger pay did:icn:… 3h --memo "website"`.
    Pay {
        /// The member you pay.
        to: String,
        /// `3h`, `1h30m`, `90m`, `2.5h`, or a whole number of the smallest unit.
        #[arg(allow_hyphen_values = true)]
        amount: String,
        #[arg(long, default_value = "hours")]
        currency: String,
        /// What it is for (up to 500 bytes).
        #[arg(long, default_value = "")]
        memo: String,
    },
    /// Payment requests: ask a member to pay you, or answer what you were asked.
    Request {
        #[command(subcommand)]
        command: RequestCommand,
    },
    /// Contest a payment you made; add evidence; as the mediator, resolve it.
    Dispute {
        #[command(subcommand)]
        command: DisputeCommand,
    },
    /// A member's balance in each currency (default: yours).
    Balance { did: Option<String> },
    /// A member's latest entries, oldest first (default: yours).
    History {
        did: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Only entries with this member.
        #[arg(long)]
        counterparty: Option<String>,
        #[arg(long)]
        currency: Option<String>,
        /// From this day (YYYY-MM-DD, UTC), inclusive.
        #[arg(long)]
        from: Option<String>,
        /// Up to this day (YYYY-MM-DD, UTC), exclusive.
        #[arg(long)]
        to: Option<String>,
    },
    /// One month of a member's accounts: opening, in, out, closing, entries.
    Statement {
        did: Option<String>,
        /// YYYY-MM (default: this month).
        #[arg(long)]
        month: Option<String>,
    },
    /// Every entry of a member (default: yours), or of every account with --all.
    Export {
        did: Option<String>,
        #[arg(long)]
        all: bool,
        /// CSV for a spreadsheet (default: JSON).
        #[arg(long)]
        csv: bool,
    },
    /// The co-op's ledger at a glance: volume, members near the floor or over the ceiling.
    Totals,
    /// Your payment requests, disputes and notices (default: yours).
    Inbox { did: Option<String> },
}

#[derive(Subcommand)]
pub enum RequestCommand {
    /// Ask a member to pay you: `icnctl ledger request ask did:icn:… 3h --memo "website"`.
    Ask {
        /// Who you ask to pay.
        payer: String,
        #[arg(allow_hyphen_values = true)]
        amount: String,
        #[arg(long, default_value = "hours")]
        currency: String,
        #[arg(long, default_value = "")]
        memo: String,
    },
    /// Pay a request made to you (its id, or its first 8+ digits).
    Accept { request: String },
    /// Decline a request made to you.
    Decline {
        request: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Withdraw a request you made.
    Withdraw { request: String },
    /// Requests to and from you.
    List,
}

#[derive(Subcommand)]
pub enum DisputeCommand {
    /// Contest a payment you made (its id from `history`), naming a mediator.
    Open {
        entry: String,
        #[arg(long)]
        reason: String,
        /// A member who is not a party.
        #[arg(long)]
        mediator: String,
        /// Which payee, when the payment paid several.
        #[arg(long)]
        payee: Option<String>,
    },
    /// Add evidence to a dispute you are part of.
    Evidence { dispute: String, text: String },
    /// As the mediator: `valid`, `reversed`, `refund --amount 2h` or `write-off`.
    Resolve {
        dispute: String,
        outcome: String,
        #[arg(long)]
        amount: Option<String>,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Disputes you are part of.
    List,
}

pub fn run(context: &Context, command: LedgerCommand) -> Outcome {
    match command {
        LedgerCommand::Pay {
            to,
            amount,
            currency,
            memo,
        } => {
            let request = icn_api::Pay {
                to: to.clone(),
                amount: amount.clone(),
                currency: Some(currency.clone()),
                memo,
            };
            let to_name = name_of(context, &to);
            sign(context, "/admin/v1/ledger/pay", &request, Node::pay, |id| {
                format!(
                    "Paid {} to {to_name} (entry {}).",
                    amount_words(&amount, &currency),
                    short(id)
                )
            })
        }
        LedgerCommand::Request { command } => request(context, command),
        LedgerCommand::Dispute { command } => dispute(context, command),
        LedgerCommand::Balance { did } => balance(context, did.as_deref()),
        LedgerCommand::History {
            did,
            limit,
            counterparty,
            currency,
            from,
            to,
        } => {
            let filter = icn_api::HistoryFilter {
                did: Some(member_or_me(context, did.as_deref())?.to_string()),
                limit: Some(limit),
                counterparty,
                currency,
                from,
                to,
                cursor: None,
            };
            history(context, &filter)
        }
        LedgerCommand::Statement { did, month } => {
            let month = month.unwrap_or_else(this_month);
            statement(context, did.as_deref(), &month)
        }
        LedgerCommand::Export { did, all, csv } => export(context, did.as_deref(), all, csv),
        LedgerCommand::Totals => totals(context),
        LedgerCommand::Inbox { did } => inbox(context, did.as_deref(), None),
    }
}

/// The first twelve digits of an id, as `history` and `inbox` print them.
pub fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

fn this_month() -> String {
    let (year, month) = icn_ledger::year_month(now().as_millis());
    format!("{year:04}-{month:02}")
}

/// Signs one event through the daemon, or locally when none runs.
pub fn sign<T: Serialize>(
    context: &Context,
    path: &str,
    request: &T,
    local: fn(&mut Node, &T, Timestamp) -> Result<EventId, NodeError>,
    said: impl FnOnce(&str) -> String,
) -> Outcome {
    let ack: icn_api::EventAck = context.daemon_or_local("POST", path, json(request), || {
        let id = local(&mut context.open_node(true)?, request, now())?;
        Ok(icn_api::EventAck {
            event_id: id.to_string(),
        })
    })?;
    context.print(&ack, |ack| said(&ack.event_id));
    Ok(())
}

/// The member a ledger query is about: the one named, or this identity.
/// A member by DID, display name or DID prefix (default: this node's).
pub fn member_or_me(context: &Context, did: Option<&str>) -> Result<Did, Failure> {
    match did {
        Some(text) => match text.parse::<Did>() {
            Ok(did) => Ok(did),
            Err(_) => {
                let path = format!(
                    "/admin/v1/members/resolve?{}",
                    serde_urlencoded::to_string([("id", text)]).expect("strings encode")
                );
                let found: serde_json::Value =
                    context.daemon_or_local("GET", &path, None, || {
                        let did = context.open_node(false)?.resolve_member(text)?;
                        Ok(serde_json::json!({ "did": did.to_string() }))
                    })?;
                Ok(found["did"].as_str().unwrap_or_default().parse()?)
            }
        },
        None => Ok(context
            .dir
            .public_identity()
            .map_err(|message| Failure::new(message, None))?
            .ok_or_else(|| {
                Failure::new(
                    "no identity here; name a member's DID",
                    Some("run `icnctl id init`, or pass a DID"),
                )
            })?
            .did),
    }
}

/// An amount as typed, with its currency unless it is hours (`2h`, not
/// `2h hours`).
fn amount_words(amount: &str, currency: &str) -> String {
    if currency == "hours" {
        amount.trim().to_owned()
    } else {
        format!("{} {currency}", amount.trim())
    }
}

/// The member's name for a DID typed on the command line (a name stays as
/// typed): confirmations name members.
fn name_of(context: &Context, typed: &str) -> String {
    if !typed.starts_with("did:") {
        return typed.to_owned();
    }
    let members: Result<icn_api::Members, _> =
        context.daemon_or_local("GET", "/admin/v1/members", None, || {
            Ok(context.open_node(false)?.members()?)
        });
    members
        .ok()
        .and_then(|members| {
            members
                .members
                .into_iter()
                .find(|member| member.did == typed)
                .map(|member| member.name)
        })
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| typed.to_owned())
}

fn request(context: &Context, command: RequestCommand) -> Outcome {
    let answer = |request: String, answer: &str, reason: String| icn_api::AnswerRequest {
        request,
        answer: answer.to_owned(),
        reason,
    };
    let path = "/admin/v1/ledger/requests/answer";
    match command {
        RequestCommand::Ask {
            payer,
            amount,
            currency,
            memo,
        } => {
            let payer_name = name_of(context, &payer);
            let request = icn_api::RequestPayment {
                payer: payer.clone(),
                amount: amount.clone(),
                currency: Some(currency.clone()),
                memo,
            };
            sign(
                context,
                "/admin/v1/ledger/requests",
                &request,
                Node::request_payment,
                |id| {
                    format!(
                        "Asked {payer_name} for {} (request {}).",
                        amount_words(&amount, &currency),
                        short(id)
                    )
                },
            )
        }
        RequestCommand::Accept { request } => sign(
            context,
            path,
            &answer(request, "accept", String::new()),
            Node::answer_request,
            |id| format!("Paid the request (entry {}).", short(id)),
        ),
        RequestCommand::Decline { request, reason } => sign(
            context,
            path,
            &answer(request, "decline", reason),
            Node::answer_request,
            |_| "Declined the request.".to_owned(),
        ),
        RequestCommand::Withdraw { request } => sign(
            context,
            path,
            &answer(request, "withdraw", String::new()),
            Node::answer_request,
            |_| "Withdrew the request.".to_owned(),
        ),
        RequestCommand::List => inbox(context, None, Some("requests")),
    }
}

fn dispute(context: &Context, command: DisputeCommand) -> Outcome {
    match command {
        DisputeCommand::Open {
            entry,
            reason,
            mediator,
            payee,
        } => {
            let request = icn_api::OpenDispute {
                entry,
                payee,
                reason,
                mediator: mediator.clone(),
            };
            sign(
                context,
                "/admin/v1/ledger/disputes",
                &request,
                Node::open_dispute,
                |id| {
                    format!(
                        "Dispute {} opened; {mediator} mediates. The payee and the mediator are told.",
                        short(id)
                    )
                },
            )
        }
        DisputeCommand::Evidence { dispute, text } => sign(
            context,
            "/admin/v1/ledger/disputes/evidence",
            &icn_api::AddEvidence { dispute, text },
            Node::add_evidence,
            |_| "Evidence added.".to_owned(),
        ),
        DisputeCommand::Resolve {
            dispute,
            outcome,
            amount,
            note,
        } => sign(
            context,
            "/admin/v1/ledger/disputes/resolve",
            &icn_api::ResolveDispute {
                dispute,
                outcome: outcome.clone(),
                amount,
                note,
            },
            Node::resolve_dispute,
            |_| format!("Resolved: {outcome}."),
        ),
        DisputeCommand::List => inbox(context, None, Some("disputes")),
    }
}

fn balance(context: &Context, did: Option<&str>) -> Outcome {
    let member = member_or_me(context, did)?;
    let path = format!("/admin/v1/ledger/balance?did={member}");
    let balance = context.daemon_or_local("GET", &path, None, || {
        Ok(context.open_node(false)?.balance(&member)?)
    })?;
    context.print(&balance, |balance| {
        let mut lines = vec![format!("{}:", balance.did)];
        for account in &balance.accounts {
            let mut flags = Vec::new();
            if account.over_ceiling {
                flags.push("over the ceiling".to_owned());
            }
            if account.near_floor {
                flags.push("near the floor".to_owned());
            }
            if account.frozen {
                flags.push("FROZEN".to_owned());
            }
            lines.push(format!(
                "  {:>10} {}{}",
                account.display,
                account.currency,
                if flags.is_empty() {
                    String::new()
                } else {
                    format!("  ({})", flags.join(", "))
                }
            ));
        }
        lines.join("\n")
    });
    Ok(())
}

fn entry_line(entry: &icn_api::HistoryEntry) -> String {
    let kind = if entry.kind == "payment" {
        String::new()
    } else {
        format!(" [{}]", entry.kind)
    };
    format!(
        "{}  {}  {:>9} {} {} {}{}  {}",
        icn_ledger::format_utc(entry.time_ms)
            .get(..16)
            .unwrap_or_default()
            .replace('T', " "),
        short(&entry.id),
        entry.display,
        entry.currency,
        if entry.amount < 0 { "to  " } else { "from" },
        entry.counterparty,
        kind,
        entry.memo
    )
}

fn history(context: &Context, filter: &icn_api::HistoryFilter) -> Outcome {
    let query = serde_urlencoded::to_string(filter).expect("plain fields encode");
    let path = format!("/admin/v1/ledger/history?{query}");
    let history = context.daemon_or_local("GET", &path, None, || {
        Ok(context.open_node(false)?.history(filter)?)
    })?;
    context.print(&history, |history| {
        if history.entries.is_empty() {
            return "No entries.".to_owned();
        }
        history
            .entries
            .iter()
            .map(entry_line)
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

fn statement(context: &Context, did: Option<&str>, month: &str) -> Outcome {
    let member = member_or_me(context, did)?;
    let path = format!("/admin/v1/ledger/statement?did={member}&month={month}");
    let statement = context.daemon_or_local("GET", &path, None, || {
        Ok(context.open_node(false)?.statement(&member, month)?)
    })?;
    context.print(&statement, |statement| {
        let mut lines = vec![format!(
            "Statement for {}, {}",
            statement.did, statement.month
        )];
        for account in &statement.accounts {
            let [opening, received, paid, closing] = &account.display;
            lines.push(format!(
                "  {}: opening {opening}, received {received}, paid {paid}, closing {closing}",
                account.currency
            ));
        }
        if statement.entries.is_empty() {
            lines.push("  No entries this month.".to_owned());
        }
        lines.extend(statement.entries.iter().map(entry_line));
        lines.join("\n")
    });
    Ok(())
}

fn export(context: &Context, did: Option<&str>, all: bool, csv: bool) -> Outcome {
    let member = if all {
        None
    } else {
        Some(member_or_me(context, did)?)
    };
    let path = match &member {
        Some(did) => format!("/admin/v1/ledger/export?did={did}"),
        None => "/admin/v1/ledger/export?all=true".to_owned(),
    };
    let entries: Vec<icn_api::HistoryEntry> =
        context.daemon_or_local("GET", &path, None, || {
            Ok(context.open_node(false)?.export(member.as_ref())?)
        })?;
    if csv {
        crate::emit(&icn_node::ledger::entries_csv(&entries));
    } else {
        crate::emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&entries).expect("API types serialise")
        ));
    }
    Ok(())
}

fn totals(context: &Context) -> Outcome {
    let totals = context.daemon_or_local("GET", "/admin/v1/ledger/totals", None, || {
        Ok(context.open_node(false)?.totals()?)
    })?;
    context.print(&totals, |totals| {
        let mut lines = Vec::new();
        for currency in &totals.currencies {
            lines.push(format!(
                "{}: {} transfers, {} moved; commons {}",
                currency.currency, currency.transfers, currency.volume_display, currency.commons
            ));
            for (label, members) in [
                ("near the floor", &currency.near_floor),
                ("over the ceiling", &currency.over_ceiling),
                ("frozen", &currency.frozen),
            ] {
                if !members.is_empty() {
                    lines.push(format!("  {label}: {}", members.join(", ")));
                }
            }
        }
        lines.push(format!(
            "conflicts detected: {}; entries quarantined: {}",
            totals.conflicts, totals.quarantined
        ));
        lines.join("\n")
    });
    Ok(())
}

/// The inbox, or one part of it (`requests`, `disputes`).
fn inbox(context: &Context, did: Option<&str>, only: Option<&str>) -> Outcome {
    let member = member_or_me(context, did)?;
    let path = format!("/admin/v1/ledger/inbox?did={member}");
    let inbox = context.daemon_or_local("GET", &path, None, || {
        Ok(context.open_node(false)?.inbox(&member)?)
    })?;
    let me = member.to_string();
    context.print(&inbox, |inbox| {
        let mut lines = Vec::new();
        if only.is_none_or(|part| part == "requests") {
            lines.push(format!("Payment requests ({}):", inbox.requests.len()));
            for request in &inbox.requests {
                let (direction, other) = if request.payer == me {
                    ("asks you for", &request.payee)
                } else {
                    ("was asked by you for", &request.payer)
                };
                let auto = match (request.status.as_str(), request.auto_accept_at_ms) {
                    ("pending", Some(at)) if request.payer == me => format!(
                        "; paid automatically from {} unless you decline",
                        icn_ledger::format_utc(at)
                    ),
                    _ => String::new(),
                };
                lines.push(format!(
                    "  {}  {}: {other} {direction} {} {} {:?}{auto}",
                    short(&request.id),
                    request.status,
                    request.display,
                    request.currency,
                    request.memo,
                ));
            }
        }
        if only.is_none_or(|part| part == "disputes") {
            lines.push(format!("Disputes ({}):", inbox.disputes.len()));
            for dispute in &inbox.disputes {
                lines.push(format!(
                    "  {}  {}: payment {} of {} {} from {} to {}; mediator {}; {:?}; {} piece(s) of evidence",
                    short(&dispute.id),
                    dispute.status,
                    short(&dispute.entry),
                    dispute.display,
                    dispute.currency,
                    dispute.payer,
                    dispute.payee,
                    dispute.mediator,
                    dispute.reason,
                    dispute.evidence.len()
                ));
            }
        }
        if only.is_none() {
            lines.push(format!("Notices ({}):", inbox.notices.len()));
            for notice in &inbox.notices {
                lines.push(format!("  [{}] {}", notice.kind, notice.message));
            }
        }
        lines.join("\n")
    });
    Ok(())
}
