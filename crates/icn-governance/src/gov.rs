//! Proposals, votes and the deterministic close.
//!
//! **The close.** Only the co-op's closer (`gov.closer`, by default the
//! first founder: in practice an always-on org node) signs `gov.close`. The
//! outcome is the tally of exactly the votes in the close's causal past
//! (each elector's latest, if stamped no later than the deadline), so every
//! node computes the same outcome from the same event, and effects (new
//! members, parameters, budget payments) apply once, when the close counts.
//! A vote that reaches the closer after it closed never counts; a vote made
//! after a close it has seen is refused. Closes are totally ordered (one
//! closer in any causal past: a new closer must have seen the change that
//! named them, and with it every close of the old one), so a second close
//! of a proposal is refused and an outcome never flips. Cancel and veto are
//! requests the closer honours by closing at once.

use std::collections::BTreeMap;

use icn_identity::Did;
use icn_kernel::{
    Context, Domain, Effect, Event, EventId, Genesis, Past, Rejection, Source, Status, Timestamp,
    ViewRow,
};
use icn_ledger::{MEMO_MAX_BYTES, Order, Policy};
use serde::{Deserialize, Serialize};

use crate::{
    body::*,
    decode, json, params, reject,
    tally::{Ballot, Outcome, Tally, decide, statement, tally},
    text_check,
};

pub const VIEW_PROPOSAL: &str = "gov.proposal";
pub const VIEW_REMINDER: &str = "gov.reminder";
/// Proposals still open (key: id, value: the proposal's row key), so the
/// closer's node finds what to close without reading every proposal.
pub const VIEW_OPEN: &str = "gov.open";
pub const VIEW_TEMPLATE: &str = "gov.template";
pub const VIEW_CIRCLE: &str = "gov.circle";
pub const VIEW_CHARTER: &str = "gov.charter";

#[derive(Clone, Debug)]
struct Cast {
    seq: u64,
    time_ms: u64,
    ballot: Ballot,
    reason: String,
}

#[derive(Clone, Debug)]
struct Closed {
    /// Each counted elector's vote (its seq).
    counted: BTreeMap<Did, u64>,
    outcome: Outcome,
    tally: Tally,
    closer: Did,
    seq: u64,
    time_ms: u64,
    statement: String,
}

#[derive(Clone, Debug)]
struct ProposalState {
    proposer: Did,
    seq: u64,
    /// When it opened for votes (when it was made, for a draft).
    time_ms: u64,
    body: Propose,
    /// The seq (in the proposer's chain) of the event that opened it for
    /// votes: the proposal itself, or a draft's `gov.open`.
    opened: Option<u64>,
    electorate: Vec<Did>,
    /// `u64::MAX` while a draft.
    closes_at_ms: u64,
    /// Elector → their votes, by seq in their chain.
    votes: BTreeMap<Did, Vec<Cast>>,
    /// The proposer's cancellation (seq, reason).
    cancel: Option<(u64, String)>,
    vetoes: BTreeMap<Did, (u64, String)>,
    reminded: Option<u64>,
    closed: Option<Closed>,
    appeals: Vec<(Did, u64, String)>,
}

#[derive(Clone, Debug)]
struct Circle {
    members: Vec<Did>,
    source: Source,
}

#[derive(Clone, Debug)]
struct Section {
    text: String,
    version: u32,
    proposal: Option<EventId>,
    time_ms: u64,
}

/// The `gov` domain.
#[derive(Clone, Default)]
pub struct GovDomain {
    proposals: BTreeMap<EventId, ProposalState>,
    /// Name → (time, author, template): the latest publication wins.
    templates: BTreeMap<String, (u64, Did, Template)>,
    circles: BTreeMap<String, Circle>,
    charter: BTreeMap<String, Section>,
    /// Every counted transfer's place in its payer's chain, for proposals
    /// that reverse one.
    transfers: std::collections::HashMap<EventId, (Did, u64)>,
}

#[derive(Serialize, Deserialize)]
pub struct VoteRow {
    pub voter: String,
    pub choice: Choice,
    pub strength: u32,
    pub reason: String,
    pub time_ms: u64,
    /// Cast before the deadline but reached the closer after it closed.
    pub late: bool,
}

#[derive(Serialize, Deserialize)]
pub struct ProposalRow {
    pub id: String,
    pub title: String,
    pub text: String,
    pub proposer: String,
    pub circle: Option<String>,
    pub action: Action,
    pub template: String,
    pub rules: Rules,
    pub electorate: Vec<String>,
    pub opened_ms: u64,
    pub closes_at_ms: u64,
    pub review_at_ms: Option<u64>,
    /// `draft`, `open`, `accepted`, `rejected`, `no_quorum`, `cancelled`, `vetoed`.
    pub status: String,
    /// Who has voted (always shown), and what (hidden until the close
    /// when the rules hide results).
    pub voted: Vec<String>,
    pub votes: Option<Vec<VoteRow>>,
    pub tally: Option<Tally>,
    pub cancel_requested: Option<String>,
    pub vetoed_by: Vec<String>,
    pub reminded: bool,
    pub outcome: Option<String>,
    pub closed_ms: Option<u64>,
    pub appeals: Vec<AppealRow>,
}

#[derive(Serialize, Deserialize)]
pub struct AppealRow {
    pub by: String,
    pub time_ms: u64,
    pub reason: String,
}

fn seen(past: Past<'_>, author: Did, seq: u64) -> bool {
    past.contains(&Source {
        time: Timestamp(0),
        author,
        seq,
    })
}

impl ProposalState {
    /// Each elector's latest vote in `past` (all applied with `None`),
    /// stamped no later than the deadline.
    fn counted(&self, past: Option<Past<'_>>) -> BTreeMap<Did, &Cast> {
        self.votes
            .iter()
            .filter_map(|(voter, casts)| {
                casts
                    .iter()
                    .rev()
                    .filter(|cast| cast.time_ms <= self.closes_at_ms)
                    .find(|cast| past.is_none_or(|past| seen(past, *voter, cast.seq)))
                    .map(|cast| (*voter, cast))
            })
            .collect()
    }

    fn tally(&self, past: Option<Past<'_>>) -> Tally {
        let counted = self.counted(past);
        tally(
            &self.body.rules,
            self.electorate.len(),
            counted.values().map(|cast| &cast.ballot),
        )
    }

    fn opened_in(&self, past: Past<'_>) -> bool {
        self.opened
            .is_some_and(|seq| seen(past, self.proposer, seq))
    }

    fn closed_in(&self, past: Past<'_>) -> bool {
        self.closed
            .as_ref()
            .is_some_and(|closed| seen(past, closed.closer, closed.seq))
    }

    fn row(&self, id: &EventId) -> ProposalRow {
        let show = self.closed.is_some() || !self.body.rules.hidden;
        let counted = self.counted(None);
        ProposalRow {
            id: id.to_string(),
            title: self.body.title.clone(),
            text: self.body.text.clone(),
            proposer: self.proposer.to_string(),
            circle: self.body.circle.clone(),
            action: self.body.action.clone(),
            template: self.body.template.clone(),
            rules: self.body.rules,
            electorate: self.electorate.iter().map(Did::to_string).collect(),
            opened_ms: self.time_ms,
            closes_at_ms: self.closes_at_ms,
            review_at_ms: self.body.review_at_ms,
            status: match (&self.closed, self.opened) {
                (Some(closed), _) => closed.outcome.as_str(),
                (None, None) => "draft",
                (None, Some(_)) => "open",
            }
            .to_owned(),
            voted: counted.keys().map(Did::to_string).collect(),
            votes: show.then(|| {
                counted
                    .iter()
                    .map(|(voter, cast)| VoteRow {
                        voter: voter.to_string(),
                        choice: cast.ballot.choice,
                        strength: cast.ballot.strength,
                        reason: cast.reason.clone(),
                        time_ms: cast.time_ms,
                        late: self
                            .closed
                            .as_ref()
                            .is_some_and(|closed| closed.counted.get(voter) != Some(&cast.seq)),
                    })
                    .collect()
            }),
            tally: match &self.closed {
                Some(closed) => Some(closed.tally),
                None => show.then(|| self.tally(None)),
            },
            cancel_requested: self.cancel.as_ref().map(|(_, reason)| reason.clone()),
            vetoed_by: self.vetoes.keys().map(Did::to_string).collect(),
            reminded: self.reminded.is_some(),
            outcome: self.closed.as_ref().map(|closed| closed.statement.clone()),
            closed_ms: self.closed.as_ref().map(|closed| closed.time_ms),
            appeals: self
                .appeals
                .iter()
                .map(|(by, time_ms, reason)| AppealRow {
                    by: by.to_string(),
                    time_ms: *time_ms,
                    reason: reason.clone(),
                })
                .collect(),
        }
    }
}

fn open_row(id: &EventId, open: bool) -> ViewRow {
    ViewRow {
        view: VIEW_OPEN,
        key: id.to_string(),
        value: open.then(|| id.to_string()),
    }
}

/// Checks rules a proposal or template carries.
pub fn check_rules(rules: &Rules) -> Result<(), Rejection> {
    if !rules.quorum.is_valid() {
        return Err(reject("the quorum is a fraction from 0 to 1"));
    }
    match rules.method {
        Method::Supermajority { threshold } | Method::ConsensusFallback { threshold }
            if !threshold.is_valid() || threshold.num * 2 < threshold.den =>
        {
            return Err(reject("a threshold is a fraction from 1/2 to 1"));
        }
        Method::Consent { max_blocks } if max_blocks > 1_000 => {
            return Err(reject("max_blocks is at most 1000"));
        }
        Method::Quadratic { credits } if credits == 0 || credits > 10_000 => {
            return Err(reject("quadratic voting gives 1 to 10000 credits"));
        }
        _ => {}
    }
    if !(DURATION_MIN_MS..=DURATION_MAX_MS).contains(&rules.duration_ms) {
        return Err(reject("a vote lasts from one minute to 90 days"));
    }
    Ok(())
}

/// Whether the rules demand at least `threshold` of those who vote.
fn demands(rules: &Rules, threshold: Fraction) -> bool {
    let at_least = |own: Fraction| {
        u64::from(own.num) * u64::from(threshold.den)
            >= u64::from(threshold.num) * u64::from(own.den)
    };
    match rules.method {
        Method::Unanimous => true,
        Method::Supermajority { threshold: own } => at_least(own),
        Method::Consent { max_blocks } => max_blocks == 0 && rules.quorum.num == rules.quorum.den,
        _ => false,
    }
}

impl GovDomain {
    /// Who may vote in `circle` (or the whole co-op) as of `context`.
    fn electorate(
        &self,
        circle: Option<&str>,
        context: &Context<'_>,
    ) -> Result<Vec<Did>, Rejection> {
        let voters: Vec<Did> = context
            .coop
            .members_in(Some(context.past()))
            .into_iter()
            .filter(|(_, membership)| membership.may_vote())
            .map(|(did, _)| did)
            .collect();
        match circle {
            None => Ok(voters),
            Some(name) => {
                let circle = self
                    .circles
                    .get(name)
                    .filter(|circle| context.past().contains(&circle.source))
                    .ok_or_else(|| reject(format!("there is no circle `{name}`")))?;
                Ok(voters
                    .into_iter()
                    .filter(|did| circle.members.contains(did))
                    .collect())
            }
        }
    }

    fn check_action(&self, propose: &Propose, context: &Context<'_>) -> Result<(), Rejection> {
        let member_not_exited = |did: &Did| match context.member(did) {
            Some(membership) if membership.status != Status::Exited => Ok(membership),
            _ => Err(reject(format!("{did} is not a member"))),
        };
        match &propose.action {
            Action::Decision => Ok(()),
            Action::AddMember { did, name, .. } => {
                text_check(name, "the name", NAME_MAX_BYTES, false)?;
                match context.member(did) {
                    Some(membership) if membership.status != Status::Exited => {
                        Err(reject(format!("{did} is already a member")))
                    }
                    _ => Ok(()),
                }
            }
            Action::RemoveMember { did } | Action::Freeze { did } => {
                member_not_exited(did).map(|_| ())
            }
            Action::Unfreeze { did } => {
                // Frozen by the co-op (suspended), or by a fork this
                // proposal has seen the proof of: one unfreeze lifts both.
                let suspended = member_not_exited(did)?.status == Status::Suspended;
                if !suspended && !context.forks_proven.contains_key(did) {
                    return Err(reject(format!(
                        "{did} is not frozen (neither suspended nor frozen by a fork this proposal has seen)"
                    )));
                }
                Ok(())
            }
            Action::SetParams { params } => {
                if params.is_empty() || params.len() > 16 {
                    return Err(reject("a policy change sets 1 to 16 parameters"));
                }
                let mut merged = context.coop.params(Some(context.past()));
                for (key, value) in params {
                    let known = key.starts_with("ledger.") || params::KEYS.contains(&key.as_str());
                    if !known {
                        return Err(reject(format!(
                            "unknown parameter {key}; the co-op's are ledger.*, {}",
                            params::KEYS.join(", ")
                        )));
                    }
                    text_check(value, key, icn_kernel::PARAM_VALUE_MAX_BYTES, false)?;
                    merged.insert(key.clone(), value.clone());
                }
                params::check(params, Some(context))?;
                Policy::from_params(&merged)?;
                crate::trust::TrustParams::from_params(&merged)?;
                Ok(())
            }
            Action::Budget {
                to,
                amount,
                currency,
                memo,
            } => {
                member_not_exited(to)?;
                if !context
                    .genesis
                    .currencies
                    .iter()
                    .any(|spec| spec.code == *currency)
                {
                    return Err(reject(format!("the co-op has no currency `{currency}`")));
                }
                if *amount == 0 || *amount > i64::MAX as u64 {
                    return Err(reject("a budget is at least one unit"));
                }
                text_check(memo, "the memo", MEMO_MAX_BYTES, false)
            }
            Action::Charter { section, text } => {
                text_check(section, "the section", NAME_MAX_BYTES, true)?;
                text_check(text, "the section's text", TEXT_MAX_BYTES, true)?;
                let needed = params::charter_threshold(context);
                if !demands(&propose.rules, needed) {
                    return Err(reject(format!(
                        "a charter amendment needs at least {needed} of the votes (gov.charter_threshold): use a supermajority of {needed} or more, or unanimity"
                    )));
                }
                Ok(())
            }
            Action::SetRoles { did, roles } => {
                member_not_exited(did)?;
                if roles.len() > ROLES_MAX {
                    return Err(reject(format!("at most {ROLES_MAX} roles")));
                }
                for role in roles {
                    if role.is_empty()
                        || role.len() > ROLE_MAX_BYTES
                        || !role
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    {
                        return Err(reject(format!(
                            "role {role:?}: 1 to {ROLE_MAX_BYTES} of a-z, 0-9 and -"
                        )));
                    }
                }
                Ok(())
            }
            Action::Reverse { entry } => match self.transfers.get(entry) {
                Some((payer, seq)) if seen(context.past(), *payer, *seq) => Ok(()),
                _ => Err(reject(format!(
                    "there is no payment {entry} that this proposal has seen"
                ))),
            },
            Action::CreateCircle { name, members } => {
                if name.is_empty()
                    || name.len() > NAME_MAX_BYTES
                    || !name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                {
                    return Err(reject("a circle's name is 1 to 64 of a-z, 0-9 and -"));
                }
                if self.circles.contains_key(name) {
                    return Err(reject(format!("circle `{name}` exists")));
                }
                if members.is_empty() || members.len() > ELECTORATE_MAX {
                    return Err(reject("a circle has at least one member"));
                }
                for did in members {
                    context.active_member(did)?;
                }
                Ok(())
            }
        }
    }

    fn validate_propose(&self, event: &Event, context: &Context<'_>) -> Result<(), Rejection> {
        let propose: Propose = decode(event)?;
        let author = context.author;
        if !context.active_member(author)?.may_vote() {
            return Err(reject("observers do not make proposals"));
        }
        text_check(&propose.title, "the title", TITLE_MAX_BYTES, true)?;
        text_check(&propose.text, "the text", TEXT_MAX_BYTES, false)?;
        text_check(&propose.template, "the template", NAME_MAX_BYTES, false)?;
        check_rules(&propose.rules)?;
        let electorate = self.electorate(propose.circle.as_deref(), context)?;
        if !electorate.contains(author) {
            return Err(reject("only those who may vote on it make a proposal"));
        }
        let expected = if propose.draft {
            Vec::new()
        } else {
            electorate
        };
        if propose.electorate != expected {
            return Err(reject(if propose.draft {
                "a draft names its electorate when it opens".to_owned()
            } else {
                format!(
                    "the electorate must be exactly the {} voting members this proposal knows of",
                    expected.len()
                )
            }));
        }
        if let Some(review) = propose.review_at_ms
            && review <= event.timestamp().as_millis()
        {
            return Err(reject("a review date is in the future"));
        }
        self.check_action(&propose, context)
    }

    fn proposal_seen(
        &self,
        id: &EventId,
        context: &Context<'_>,
    ) -> Result<&ProposalState, Rejection> {
        self.proposals
            .get(id)
            .filter(|proposal| seen(context.past(), proposal.proposer, proposal.seq))
            .ok_or_else(|| reject(format!("there is no proposal {id}")))
    }

    fn open_proposal(
        &self,
        id: &EventId,
        context: &Context<'_>,
    ) -> Result<&ProposalState, Rejection> {
        let proposal = self.proposal_seen(id, context)?;
        if proposal.closed_in(context.past()) {
            return Err(reject(format!("proposal {id} is closed")));
        }
        if !proposal.opened_in(context.past()) {
            return Err(reject(format!(
                "proposal {id} is a draft, not open for votes"
            )));
        }
        Ok(proposal)
    }

    fn validate_vote(&self, event: &Event, context: &Context<'_>) -> Result<(), Rejection> {
        let vote: Vote = decode(event)?;
        let proposal = self.open_proposal(&vote.proposal, context)?;
        let voter = context.author;
        if !proposal.electorate.contains(voter) {
            return Err(reject(
                "you are not in this proposal's electorate (it was fixed when it opened)",
            ));
        }
        if !context.active_member(voter)?.may_vote() {
            return Err(reject("observers do not vote"));
        }
        if event.timestamp().as_millis() > proposal.closes_at_ms {
            return Err(reject(format!(
                "voting on proposal {} closed",
                vote.proposal
            )));
        }
        text_check(&vote.reason, "the reason", NOTE_MAX_BYTES, false)?;
        if vote.choice == Choice::Block && vote.reason.trim().is_empty() {
            return Err(reject("a block needs a reason"));
        }
        match proposal.body.rules.method {
            Method::Quadratic { credits } => {
                let cost = u64::from(vote.strength) * u64::from(vote.strength);
                if vote.strength == 0 || cost > u64::from(credits) {
                    return Err(reject(format!(
                        "a vote's strength s costs s² of your {credits} credits"
                    )));
                }
            }
            _ if vote.strength != 1 => return Err(reject("a vote's strength is 1")),
            _ => {}
        }
        Ok(())
    }

    fn validate_close(&self, event: &Event, context: &Context<'_>) -> Result<(), Rejection> {
        let close: Close = decode(event)?;
        let closer = params::closer_in(context);
        if *context.author != closer {
            return Err(reject(format!(
                "only the co-op's closer ({closer}) closes proposals"
            )));
        }
        let proposal = self.proposal_seen(&close.proposal, context)?;
        if proposal.closed.is_some() {
            return Err(reject(format!("proposal {} is closed", close.proposal)));
        }
        let past = context.past();
        let due = event.timestamp().as_millis() >= proposal.closes_at_ms;
        let cancelled = proposal
            .cancel
            .as_ref()
            .is_some_and(|(seq, _)| seen(past, proposal.proposer, *seq));
        let vetoed = proposal
            .vetoes
            .iter()
            .any(|(by, (seq, _))| seen(past, *by, *seq));
        let everyone = proposal.body.rules.early_close
            && proposal.counted(Some(past)).len() == proposal.electorate.len();
        if !proposal.opened_in(past) && !cancelled {
            return Err(reject(format!("proposal {} is a draft", close.proposal)));
        }
        if !(due || cancelled || vetoed || everyone) {
            return Err(reject(format!(
                "proposal {} is open until its deadline",
                close.proposal
            )));
        }
        Ok(())
    }

    /// The outcome a close with `context` decides.
    fn outcome(&self, proposal: &ProposalState, past: Past<'_>) -> (Outcome, Tally) {
        let tally = proposal.tally(Some(past));
        if proposal
            .cancel
            .as_ref()
            .is_some_and(|(seq, _)| seen(past, proposal.proposer, *seq))
        {
            return (Outcome::Cancelled, tally);
        }
        if proposal
            .vetoes
            .iter()
            .any(|(by, (seq, _))| seen(past, *by, *seq))
        {
            return (Outcome::Vetoed, tally);
        }
        (decide(&proposal.body.rules, &tally), tally)
    }

    fn effects_of(&self, action: &Action, context: &Context<'_>) -> Vec<Effect> {
        let tier_of = |did: &Did| {
            context
                .member(did)
                .map_or(icn_kernel::Tier::Full, |membership| membership.tier)
        };
        match action {
            Action::AddMember { did, tier, .. } => vec![Effect::Member {
                did: *did,
                status: Status::Active,
                tier: *tier,
            }],
            Action::RemoveMember { did } => vec![Effect::Member {
                did: *did,
                status: Status::Exited,
                tier: tier_of(did),
            }],
            Action::Freeze { did } => vec![Effect::Member {
                did: *did,
                status: Status::Suspended,
                tier: tier_of(did),
            }],
            Action::Unfreeze { did } => {
                let mut effects = vec![Effect::Member {
                    did: *did,
                    status: Status::Active,
                    tier: tier_of(did),
                }];
                if let Some(&through_seq) = context.forks_proven.get(did) {
                    effects.push(Effect::Unfreeze {
                        did: *did,
                        through_seq,
                    });
                }
                effects
            }
            Action::SetParams { params } => params
                .iter()
                .map(|(key, value)| Effect::Param {
                    key: key.clone(),
                    value: value.clone(),
                })
                .collect(),
            Action::Budget {
                to,
                amount,
                currency,
                memo,
            } => vec![
                Order::Budget {
                    to: *to,
                    amount: *amount,
                    currency: currency.clone(),
                    memo: memo.clone(),
                }
                .effect(),
            ],
            Action::SetRoles { did, roles } => vec![
                MemberOrder::Roles {
                    did: *did,
                    roles: roles.clone(),
                }
                .effect(),
            ],
            Action::Reverse { entry } => vec![
                Order::Reverse {
                    entry: *entry,
                    memo: "reversed by decision".to_owned(),
                }
                .effect(),
            ],
            Action::Decision | Action::Charter { .. } | Action::CreateCircle { .. } => Vec::new(),
        }
    }

    fn proposal_row(&self, id: &EventId) -> ViewRow {
        ViewRow {
            view: VIEW_PROPOSAL,
            key: id.to_string(),
            value: json(&self.proposals[id].row(id)),
        }
    }

    fn circle_row(&self, name: &str) -> ViewRow {
        let circle = &self.circles[name];
        let members: Vec<String> = circle.members.iter().map(Did::to_string).collect();
        ViewRow {
            view: VIEW_CIRCLE,
            key: name.to_owned(),
            value: json(&serde_json::json!({ "name": name, "members": members })),
        }
    }

    fn charter_row(&self, section: &str) -> ViewRow {
        let state = &self.charter[section];
        ViewRow {
            view: VIEW_CHARTER,
            key: section.to_owned(),
            value: json(&serde_json::json!({
                "section": section,
                "text": state.text,
                "version": state.version,
                "proposal": state.proposal.map(|id| id.to_string()),
                "time_ms": state.time_ms,
            })),
        }
    }

    fn template_row(&self, name: &str) -> ViewRow {
        let (_, author, template) = &self.templates[name];
        ViewRow {
            view: VIEW_TEMPLATE,
            key: name.to_owned(),
            value: json(&serde_json::json!({
                "name": template.name,
                "description": template.description,
                "rules": template.rules,
                "by": author.to_string(),
            })),
        }
    }
}

impl Domain for GovDomain {
    fn name(&self) -> &'static str {
        "gov"
    }

    fn fresh(&self) -> Box<dyn Domain> {
        Box::new(GovDomain::default())
    }

    fn begin(&mut self, genesis: &Genesis, founded: Timestamp) -> Result<(), Rejection> {
        if !genesis.charter.trim().is_empty() {
            self.charter.insert(
                "charter".to_owned(),
                Section {
                    text: genesis.charter.clone(),
                    version: 1,
                    proposal: None,
                    time_ms: founded.as_millis(),
                },
            );
        }
        Ok(())
    }

    fn validate(&self, event: &Event, context: &Context<'_>) -> Result<(), Rejection> {
        match event.kind().as_str() {
            KIND_PROPOSE => self.validate_propose(event, context),
            KIND_VOTE => self.validate_vote(event, context),
            KIND_CLOSE => self.validate_close(event, context),
            KIND_CANCEL => {
                let about: About = decode(event)?;
                text_check(&about.reason, "the reason", NOTE_MAX_BYTES, false)?;
                let proposal = self.proposal_seen(&about.proposal, context)?;
                if proposal.proposer != *context.author {
                    return Err(reject("only the proposer cancels a proposal"));
                }
                // The proposer's own events are all applied before this one.
                if proposal.closed_in(context.past()) || proposal.cancel.is_some() {
                    return Err(reject(format!(
                        "proposal {} is closed or cancelled",
                        about.proposal
                    )));
                }
                Ok(())
            }
            KIND_OPEN => {
                let open: Open = decode(event)?;
                let proposal = self.proposal_seen(&open.proposal, context)?;
                if proposal.proposer != *context.author {
                    return Err(reject("only the proposer opens a draft"));
                }
                if proposal.opened.is_some() || proposal.cancel.is_some() {
                    return Err(reject(format!("proposal {} is not a draft", open.proposal)));
                }
                let electorate = self.electorate(proposal.body.circle.as_deref(), context)?;
                if open.electorate != electorate {
                    return Err(reject(format!(
                        "the electorate must be exactly the {} voting members this opening knows of",
                        electorate.len()
                    )));
                }
                Ok(())
            }
            KIND_VETO => {
                let about: About = decode(event)?;
                text_check(&about.reason, "the reason", NOTE_MAX_BYTES, true)?;
                self.open_proposal(&about.proposal, context)?;
                if !params::vetoers_in(context).contains(context.author) {
                    return Err(reject("you may not veto (see gov.vetoers)"));
                }
                context.active_member(context.author)?;
                Ok(())
            }
            KIND_REMIND => {
                let close: Close = decode(event)?;
                if *context.author != params::closer_in(context) {
                    return Err(reject("only the closer sends reminders"));
                }
                let proposal = self.open_proposal(&close.proposal, context)?;
                if proposal.reminded.is_some() {
                    return Err(reject("already reminded"));
                }
                Ok(())
            }
            KIND_APPEAL => {
                let about: About = decode(event)?;
                text_check(&about.reason, "the reason", NOTE_MAX_BYTES, true)?;
                let proposal = self.proposal_seen(&about.proposal, context)?;
                let closed = proposal
                    .closed
                    .as_ref()
                    .filter(|_| proposal.closed_in(context.past()))
                    .ok_or_else(|| reject("only a closed proposal is appealed"))?;
                if !proposal.electorate.contains(context.author) {
                    return Err(reject("only its electors appeal a decision"));
                }
                let window = params::appeal_days(context) * DAY_MS;
                if event.timestamp().as_millis() > closed.time_ms.saturating_add(window) {
                    return Err(reject(format!(
                        "the appeal window ({} days) has passed",
                        window / DAY_MS
                    )));
                }
                Ok(())
            }
            KIND_TEMPLATE => {
                let template: Template = decode(event)?;
                if !context.active_member(context.author)?.may_vote() {
                    return Err(reject("observers do not publish templates"));
                }
                if template.name.is_empty()
                    || template.name.len() > NAME_MAX_BYTES
                    || !template
                        .name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                {
                    return Err(reject("a template's name is 1 to 64 of a-z, 0-9 and -"));
                }
                text_check(
                    &template.description,
                    "the description",
                    NOTE_MAX_BYTES,
                    false,
                )?;
                check_rules(&template.rules)
            }
            _ => Err(Rejection::UnknownKind {
                kind: event.kind().clone(),
            }),
        }
    }

    fn apply(
        &mut self,
        event: &Event,
        context: &Context<'_>,
        rows: &mut Vec<ViewRow>,
    ) -> Vec<Effect> {
        let author = event.author();
        let time_ms = event.timestamp().as_millis();
        match event.kind().as_str() {
            KIND_PROPOSE => {
                let body: Propose = event.body().expect("validated before apply");
                let (opened, closes_at_ms) = if body.draft {
                    (None, u64::MAX)
                } else {
                    (
                        Some(event.seq()),
                        time_ms.saturating_add(body.rules.duration_ms),
                    )
                };
                self.proposals.insert(
                    event.id(),
                    ProposalState {
                        proposer: author,
                        seq: event.seq(),
                        time_ms,
                        opened,
                        electorate: body.electorate.clone(),
                        body,
                        closes_at_ms,
                        votes: BTreeMap::new(),
                        cancel: None,
                        vetoes: BTreeMap::new(),
                        reminded: None,
                        closed: None,
                        appeals: Vec::new(),
                    },
                );
                rows.push(self.proposal_row(&event.id()));
                rows.push(open_row(&event.id(), true));
            }
            KIND_VOTE => {
                let vote: Vote = event.body().expect("validated before apply");
                let proposal = self.proposals.get_mut(&vote.proposal).expect("validated");
                let casts = proposal.votes.entry(author).or_default();
                casts.push(Cast {
                    seq: event.seq(),
                    time_ms,
                    ballot: Ballot {
                        choice: vote.choice,
                        strength: vote.strength,
                    },
                    reason: vote.reason,
                });
                casts.sort_by_key(|cast| cast.seq);
                rows.push(self.proposal_row(&vote.proposal));
                rows.push(ViewRow {
                    view: VIEW_REMINDER,
                    key: format!("{author}/{}", vote.proposal),
                    value: None,
                });
            }
            KIND_OPEN => {
                let open: Open = event.body().expect("validated before apply");
                let proposal = self.proposals.get_mut(&open.proposal).expect("validated");
                proposal.opened = Some(event.seq());
                proposal.electorate = open.electorate;
                proposal.time_ms = time_ms;
                proposal.closes_at_ms = time_ms.saturating_add(proposal.body.rules.duration_ms);
                rows.push(self.proposal_row(&open.proposal));
            }
            KIND_CANCEL => {
                let about: About = event.body().expect("validated before apply");
                let proposal = self.proposals.get_mut(&about.proposal).expect("validated");
                proposal.cancel = Some((event.seq(), about.reason));
                rows.push(self.proposal_row(&about.proposal));
            }
            KIND_VETO => {
                let about: About = event.body().expect("validated before apply");
                let proposal = self.proposals.get_mut(&about.proposal).expect("validated");
                proposal.vetoes.insert(author, (event.seq(), about.reason));
                rows.push(self.proposal_row(&about.proposal));
            }
            KIND_REMIND => {
                let close: Close = event.body().expect("validated before apply");
                let proposal = self.proposals.get_mut(&close.proposal).expect("validated");
                proposal.reminded = Some(event.seq());
                // Everything applied, as `rows` does, so the order in which a
                // concurrent vote and the reminder arrive cannot matter.
                let voted = proposal.counted(None);
                for elector in &proposal.electorate {
                    if !voted.contains_key(elector) {
                        rows.push(ViewRow {
                            view: VIEW_REMINDER,
                            key: format!("{elector}/{}", close.proposal),
                            value: json(&serde_json::json!({
                                "proposal": close.proposal.to_string(),
                                "title": proposal.body.title,
                                "closes_at_ms": proposal.closes_at_ms,
                            })),
                        });
                    }
                }
            }
            KIND_CLOSE => {
                let close: Close = event.body().expect("validated before apply");
                let proposal = &self.proposals[&close.proposal];
                let (outcome, tally) = self.outcome(proposal, context.past());
                let effects = if outcome == Outcome::Accepted {
                    self.effects_of(&proposal.body.action, context)
                } else {
                    Vec::new()
                };
                let action = proposal.body.action.clone();
                let statement = statement(&proposal.body.rules, &tally, outcome);
                let counted = proposal
                    .counted(Some(context.past()))
                    .into_iter()
                    .map(|(voter, cast)| (voter, cast.seq))
                    .collect();
                let proposal = self.proposals.get_mut(&close.proposal).expect("validated");
                proposal.closed = Some(Closed {
                    counted,
                    outcome,
                    tally,
                    closer: author,
                    seq: event.seq(),
                    time_ms,
                    statement,
                });
                for elector in proposal.electorate.clone() {
                    rows.push(ViewRow {
                        view: VIEW_REMINDER,
                        key: format!("{elector}/{}", close.proposal),
                        value: None,
                    });
                }
                rows.push(self.proposal_row(&close.proposal));
                rows.push(open_row(&close.proposal, false));
                if outcome == Outcome::Accepted {
                    match action {
                        Action::Charter { section, text } => {
                            let version = self.charter.get(&section).map_or(1, |s| s.version + 1);
                            self.charter.insert(
                                section.clone(),
                                Section {
                                    text,
                                    version,
                                    proposal: Some(close.proposal),
                                    time_ms,
                                },
                            );
                            rows.push(self.charter_row(&section));
                        }
                        Action::CreateCircle { name, members } => {
                            self.circles.insert(
                                name.clone(),
                                Circle {
                                    members,
                                    source: Source {
                                        time: event.timestamp(),
                                        author,
                                        seq: event.seq(),
                                    },
                                },
                            );
                            rows.push(self.circle_row(&name));
                        }
                        _ => {}
                    }
                }
                return effects;
            }
            KIND_APPEAL => {
                let about: About = event.body().expect("validated before apply");
                let proposal = self.proposals.get_mut(&about.proposal).expect("validated");
                proposal.appeals.push((author, time_ms, about.reason));
                proposal
                    .appeals
                    .sort_by(|a, b| (a.1, a.0, &a.2).cmp(&(b.1, b.0, &b.2)));
                rows.push(self.proposal_row(&about.proposal));
            }
            KIND_TEMPLATE => {
                let template: Template = event.body().expect("validated before apply");
                let name = template.name.clone();
                // Concurrent publications of one name: the later (time,
                // author) wins everywhere.
                let replace = self
                    .templates
                    .get(&name)
                    .is_none_or(|(time, by, _)| (time_ms, author) >= (*time, *by));
                if replace {
                    self.templates
                        .insert(name.clone(), (time_ms, author, template));
                    rows.push(self.template_row(&name));
                }
            }
            other => unreachable!("validated before apply: {other}"),
        }
        Vec::new()
    }

    fn observe(&mut self, event: &Event, _rows: &mut Vec<ViewRow>) {
        if event.kind().as_str() == icn_ledger::KIND_TRANSFER {
            self.transfers
                .insert(event.id(), (event.author(), event.seq()));
        }
    }

    fn rows(&self) -> Vec<ViewRow> {
        let mut rows: Vec<ViewRow> = self
            .proposals
            .keys()
            .map(|id| self.proposal_row(id))
            .collect();
        rows.extend(
            self.proposals
                .iter()
                .filter(|(_, proposal)| proposal.closed.is_none())
                .map(|(id, _)| open_row(id, true)),
        );
        rows.extend(self.circles.keys().map(|name| self.circle_row(name)));
        rows.extend(self.charter.keys().map(|name| self.charter_row(name)));
        rows.extend(self.templates.keys().map(|name| self.template_row(name)));
        for (id, proposal) in &self.proposals {
            if proposal.closed.is_some() || proposal.reminded.is_none() {
                continue;
            }
            let voted = proposal.counted(None);
            for elector in &proposal.electorate {
                if !voted.contains_key(elector) {
                    rows.push(ViewRow {
                        view: VIEW_REMINDER,
                        key: format!("{elector}/{id}"),
                        value: json(&serde_json::json!({
                            "proposal": id.to_string(),
                            "title": proposal.body.title,
                            "closes_at_ms": proposal.closes_at_ms,
                        })),
                    });
                }
            }
        }
        rows
    }
}
