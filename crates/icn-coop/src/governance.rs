//! Membership and governance through the node: signing `member.*` and
//! `gov.*` events as this node's member, reading their views, resolving
//! members by name, and the duties a node does by itself (the closer closes
//! and reminds; a voucher admits an applicant who has enough vouches).

use icn_api as api;
use icn_governance as gov;
use icn_identity::Did;
use icn_kernel::{Event, EventId, Tier, Timestamp, encode_body};

use std::sync::{Arc, Mutex};

use icn_governance::trust::{self, TrustContext, TrustGraph, TrustParams};

use icn_runtime::{Node, NodeError};

use crate::ledger::{LedgerOps, bad, parse_row, pick_id};

/// The trust graph built for a (log generation, counted events) pair.
#[derive(Default)]
struct TrustCache(Mutex<Option<(TrustKey, Arc<TrustGraph>)>>);

/// (log generation, events counted): the graph is rebuilt when either moves.
type TrustKey = (u64, usize);

/// How newcomers get in (`member.admission`: `vouches` or `proposal`)
/// and, by vouches, how many: the co-op's parameter, at most the
/// members who may vote, at least one.
fn admission(log: &icn_kernel::Log) -> (String, usize) {
    let params = log.coop_state().params(None);
    let voters = log
        .coop_state()
        .members()
        .filter(|(_, membership)| membership.may_vote())
        .count();
    let asked = params
        .get("member.vouches")
        .and_then(|value| value.parse().ok())
        .unwrap_or(2);
    let admission = params
        .get("member.admission")
        .cloned()
        .unwrap_or_else(|| "vouches".to_owned());
    (admission, gov::params::vouches_needed(asked, voters))
}

/// Scores are as of the start of the current minute, so the graph's link
/// weights (computed per time) serve every query within it.
fn as_of_minute(now: Timestamp) -> u64 {
    now.as_millis() / 60_000 * 60_000
}

fn parse_context(text: Option<&str>) -> Result<TrustContext, NodeError> {
    let text = text.unwrap_or("general");
    TrustContext::parse(text).ok_or_else(|| {
        bad(format!(
            "context {text:?}: expected general, ledger, compute or governance"
        ))
    })
}

fn parse_tier(text: Option<&str>) -> Result<Tier, NodeError> {
    match text.unwrap_or("provisional") {
        "observer" => Ok(Tier::Observer),
        "provisional" => Ok(Tier::Provisional),
        "full" => Ok(Tier::Full),
        other => Err(bad(format!(
            "tier {other:?}: expected observer, provisional or full"
        ))),
    }
}

/// `YYYY-MM-DD` (UTC) as milliseconds since the epoch.
fn parse_day(text: &str) -> Result<u64, NodeError> {
    icn_ledger::parse_date(text.trim())
        .ok_or_else(|| bad(format!("{text:?} is not a date like 2026-12-31")))
}

pub trait GovernanceOps {
    /// Members and applicants, by name.
    fn members(&self) -> Result<api::Members, NodeError>;

    /// A member (or applicant) named by DID, by display name (any case), or
    /// by the start of their DID's key (8+ characters).
    fn resolve_member(&self, text: &str) -> Result<Did, NodeError>;

    /// Whether `did` is a member who has not left.
    fn is_member_did(&self, did: &Did) -> bool;

    /// The keys `did` authorises now (devices and paper keys).
    fn device_keys(&self, did: &Did) -> Vec<icn_identity::PublicKey>;

    /// Whether this node's identity is a member (of any status but exited).
    fn is_member(&self) -> Result<bool, NodeError>;

    /// Signs this node's application to join (its identity's first event in
    /// the co-op), to hand to the inviter's node; an application already
    /// made is handed again instead.
    fn apply_to_join(&mut self, name: &str, note: &str, now: Timestamp)
    -> Result<Event, NodeError>;

    fn vouch(&mut self, request: &api::Vouch, now: Timestamp) -> Result<EventId, NodeError>;

    fn admit(&mut self, request: &api::Vouch, now: Timestamp) -> Result<EventId, NodeError>;

    fn set_profile(
        &mut self,
        request: &api::SetProfile,
        now: Timestamp,
    ) -> Result<EventId, NodeError>;

    fn leave(&mut self, request: &api::Leave, now: Timestamp) -> Result<EventId, NodeError>;

    fn templates(&self) -> Result<api::Templates, NodeError>;

    /// Publishes a template in the co-op (`icnctl governance deploy`).
    fn deploy_template(
        &mut self,
        request: &api::Deploy,
        now: Timestamp,
    ) -> Result<EventId, NodeError>;

    fn propose(&mut self, request: &api::Propose, now: Timestamp) -> Result<EventId, NodeError>;

    fn vote(&mut self, request: &api::CastVote, now: Timestamp) -> Result<EventId, NodeError>;

    /// Opens this member's draft for votes, with the electorate as of now.
    fn open_draft(
        &mut self,
        request: &api::AboutProposal,
        now: Timestamp,
    ) -> Result<EventId, NodeError>;

    fn cancel_proposal(
        &mut self,
        request: &api::AboutProposal,
        now: Timestamp,
    ) -> Result<EventId, NodeError>;

    fn veto_proposal(
        &mut self,
        request: &api::AboutProposal,
        now: Timestamp,
    ) -> Result<EventId, NodeError>;

    fn appeal_proposal(
        &mut self,
        request: &api::AboutProposal,
        now: Timestamp,
    ) -> Result<EventId, NodeError>;

    fn proposals(&self) -> Result<api::Proposals, NodeError>;

    fn proposal(&self, id: &str) -> Result<api::Proposal, NodeError>;

    /// What this node does by itself: as the closer, closes proposals that
    /// are due (deadline passed, everyone voted where the rules close early,
    /// a cancellation or veto) and reminds electors before the deadline; as a
    /// voucher, admits an applicant who has all the vouches needed.
    fn governance_duties(&mut self, now: Timestamp) -> Result<Vec<EventId>, NodeError>;

    /// States this node's member's trust in another member.
    fn trust_add(&mut self, request: &api::TrustAdd, now: Timestamp) -> Result<EventId, NodeError>;

    /// The trust graph, rebuilt from the views when the log has moved.
    fn trust_graph(&self) -> Result<Arc<TrustGraph>, NodeError>;

    /// This node's member's trust in `did` (general context) now; 0 when
    /// it cannot be computed (no identity or co-op yet).
    fn trust_in(&self, did: &Did) -> f64;

    /// The trust links from and to a member (default: this node's).
    fn trust_edges(
        &self,
        member: Option<&str>,
        now: Timestamp,
    ) -> Result<api::TrustEdges, NodeError>;

    fn trust_score(
        &self,
        from: Option<&str>,
        to: &str,
        context: Option<&str>,
        now: Timestamp,
    ) -> Result<api::TrustScore, NodeError>;

    fn trust_why(
        &self,
        from: Option<&str>,
        to: &str,
        context: Option<&str>,
        now: Timestamp,
    ) -> Result<api::TrustWhy, NodeError>;
}

impl GovernanceOps for Node {
    fn members(&self) -> Result<api::Members, NodeError> {
        let log = self.ledger_log()?;
        let mut members: Vec<api::Member> = self
            .store()
            .view(gov::VIEW_MEMBER)?
            .iter()
            .map(|(key, value)| parse_row(key, value))
            .collect::<Result<_, _>>()?;
        members
            .sort_by(|a, b| (a.name.to_lowercase(), &a.did).cmp(&(b.name.to_lowercase(), &b.did)));
        let (admission, vouches_needed) = admission(log);
        Ok(api::Members {
            members,
            vouches_needed: vouches_needed as u64,
            admission,
        })
    }

    fn resolve_member(&self, text: &str) -> Result<Did, NodeError> {
        let text = text.trim();
        let parsed = text.parse::<Did>();
        if self.log().is_none() {
            return parsed.map_err(|_| bad(format!("{text:?} is not a DID")));
        }
        if let Ok(did) = parsed {
            // A DID with a character missing or wrong can still parse (as
            // somebody else's, or nobody's): only one the co-op knows (a
            // member or an applicant) is taken. One indexed lookup: this
            // is on every read that names a member.
            if self
                .store()
                .view_row(gov::VIEW_MEMBER, &did.to_string())?
                .is_some()
            {
                return Ok(did);
            }
            return Err(crate::ledger::missing(format!(
                "no member or applicant has the DID {text}; check it for a missing or wrong character \
                 (`icnctl member list` shows names and DIDs)"
            )));
        }
        let members = self.members()?.members;
        let by_name: Vec<&api::Member> = members
            .iter()
            .filter(|member| member.status != "exited" && member.name.eq_ignore_ascii_case(text))
            .collect();
        let key = text.strip_prefix("did:icn:").unwrap_or(text);
        // A short prefix of a DID is a convenience; an almost whole DID with
        // a character missing is a typo, not a prefix.
        let found: Vec<&api::Member> = if by_name.is_empty() && (8..40).contains(&key.len()) {
            members
                .iter()
                .filter(|member| member.did["did:icn:".len()..].starts_with(key))
                .collect()
        } else {
            by_name
        };
        match found.as_slice() {
            [one] => one
                .did
                .parse()
                .map_err(|_| bad("a stored DID does not parse")),
            [] if self.recovering() || (self.awaiting_sync() && !self.synced()) => {
                Err(crate::ledger::missing(format!(
                    "this device does not know the members' names yet (it has not synced with their nodes): \
                     give {text:?} as a DID (did:icn:…), which any member's `icnctl member list` shows"
                )))
            }
            [] => Err(crate::ledger::missing(format!(
                "no member is called {text:?} (`icnctl member list` shows names and DIDs)"
            ))),
            many => Err(bad(format!(
                "{text:?} could be {}; use the DID",
                many.iter()
                    .map(|member| format!("{} ({})", member.name, member.did))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ))),
        }
    }

    fn is_member_did(&self, did: &Did) -> bool {
        self.log().is_some_and(|log| {
            log.coop_state()
                .member(did, None)
                .is_some_and(|membership| membership.status != icn_kernel::Status::Exited)
        })
    }

    fn device_keys(&self, did: &Did) -> Vec<icn_identity::PublicKey> {
        self.log().map_or_else(Vec::new, |log| {
            log.key_state(did).authorised.into_keys().collect()
        })
    }

    fn is_member(&self) -> Result<bool, NodeError> {
        let me = self.me()?;
        Ok(self
            .ledger_log()?
            .coop_state()
            .member(&me, None)
            .is_some_and(|membership| membership.status != icn_kernel::Status::Exited))
    }

    fn apply_to_join(
        &mut self,
        name: &str,
        note: &str,
        now: Timestamp,
    ) -> Result<Event, NodeError> {
        let me = self.me()?;
        let log = self.ledger_log()?;
        let (seq, _) = log.next_position(&me);
        if let Some(earlier) = (1..seq)
            .rev()
            .filter_map(|seq| log.chain_id(&me, seq))
            .filter_map(|id| log.get(&id))
            .find(|event| event.kind().as_str() == gov::KIND_APPLY)
        {
            return Ok(earlier.clone());
        }
        self.name_is_free(name, &me)?;
        let body = encode_body(&gov::Apply {
            name: name.trim().to_owned(),
            note: note.to_owned(),
        });
        let id = self.append(gov::KIND_APPLY, body, now)?;
        self.ledger_log()?
            .get(&id)
            .cloned()
            .ok_or_else(|| bad("the application was not kept"))
    }

    fn vouch(&mut self, request: &api::Vouch, now: Timestamp) -> Result<EventId, NodeError> {
        let applicant = self.resolve_member(&request.applicant)?;
        let body = encode_body(&gov::Vouch {
            applicant,
            note: request.note.clone(),
        });
        self.append(gov::KIND_VOUCH, body, now)
    }

    fn admit(&mut self, request: &api::Vouch, now: Timestamp) -> Result<EventId, NodeError> {
        let applicant = self.resolve_member(&request.applicant)?;
        self.append(gov::KIND_ADMIT, encode_body(&gov::Admit { applicant }), now)
    }

    fn set_profile(
        &mut self,
        request: &api::SetProfile,
        now: Timestamp,
    ) -> Result<EventId, NodeError> {
        self.name_is_free(&request.name, &self.me()?)?;
        let body = encode_body(&gov::Profile {
            name: request.name.trim().to_owned(),
            skills: request.skills.clone(),
        });
        self.append(gov::KIND_PROFILE, body, now)
    }

    fn leave(&mut self, request: &api::Leave, now: Timestamp) -> Result<EventId, NodeError> {
        let body = encode_body(&gov::Leave {
            note: request.note.clone(),
        });
        self.append(gov::KIND_LEAVE, body, now)
    }

    fn templates(&self) -> Result<api::Templates, NodeError> {
        let mut templates: Vec<api::TemplateInfo> = self
            .store()
            .view(gov::VIEW_TEMPLATE)?
            .iter()
            .map(|(key, value)| {
                let mut info: api::TemplateInfo = parse_row(key, value)?;
                if let Some(by) = serde_json::from_str::<serde_json::Value>(value)
                    .ok()
                    .and_then(|row| row["by"].as_str().map(str::to_owned))
                {
                    info.published_by = Some(by);
                }
                Ok(info)
            })
            .collect::<Result<_, NodeError>>()?;
        for template in gov::templates::builtin() {
            if !templates.iter().any(|known| known.name == template.name) {
                templates.push(api::TemplateInfo {
                    name: template.name,
                    description: template.description,
                    rules: serde_json::to_value(template.rules).expect("rules serialise"),
                    published_by: None,
                });
            }
        }
        templates.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(api::Templates { templates })
    }

    fn deploy_template(
        &mut self,
        request: &api::Deploy,
        now: Timestamp,
    ) -> Result<EventId, NodeError> {
        let mut template = match &request.toml {
            Some(text) => gov::templates::parse_template(text).map_err(bad)?,
            None => self.template(&request.template)?,
        };
        if let Some(name) = &request.name {
            template.name = name.clone();
        } else if request.template == "simple-vote" {
            template.name = "simple-vote".to_owned();
        }
        if let Some(duration) = &request.duration {
            template.rules.duration_ms = gov::templates::parse_duration(duration).map_err(bad)?;
        }
        self.append(gov::KIND_TEMPLATE, encode_body(&template), now)
    }

    fn propose(&mut self, request: &api::Propose, now: Timestamp) -> Result<EventId, NodeError> {
        let template = self.template(&request.template)?;
        let mut rules = template.rules;
        if let Some(duration) = &request.duration {
            rules.duration_ms = gov::templates::parse_duration(duration).map_err(bad)?;
        }
        if let Some(hidden) = request.hidden {
            rules.hidden = hidden;
        }
        let body = gov::Propose {
            title: request.title.trim().to_owned(),
            text: request.text.clone(),
            circle: request.circle.clone(),
            action: self.action(&request.action)?,
            template: template.name,
            rules,
            electorate: if request.draft {
                Vec::new()
            } else {
                self.electorate(request.circle.as_deref())?
            },
            review_at_ms: request.review.as_deref().map(parse_day).transpose()?,
            draft: request.draft,
        };
        self.append(gov::KIND_PROPOSE, encode_body(&body), now)
    }

    fn vote(&mut self, request: &api::CastVote, now: Timestamp) -> Result<EventId, NodeError> {
        let choice = gov::Choice::parse(&request.choice).ok_or_else(|| {
            bad(format!(
                "{:?} is not a vote: yes, no, abstain or block",
                request.choice
            ))
        })?;
        let body = gov::Vote {
            proposal: self.proposal_id(&request.proposal)?,
            choice,
            reason: request.reason.clone(),
            strength: request.strength.unwrap_or(1),
        };
        self.append(gov::KIND_VOTE, encode_body(&body), now)
    }

    fn open_draft(
        &mut self,
        request: &api::AboutProposal,
        now: Timestamp,
    ) -> Result<EventId, NodeError> {
        let proposal = self.proposal(&request.proposal)?;
        let body = gov::Open {
            proposal: proposal
                .id
                .parse()
                .map_err(|_| bad("a stored id does not parse"))?,
            electorate: self.electorate(proposal.circle.as_deref())?,
        };
        self.append(gov::KIND_OPEN, encode_body(&body), now)
    }

    fn cancel_proposal(
        &mut self,
        request: &api::AboutProposal,
        now: Timestamp,
    ) -> Result<EventId, NodeError> {
        self.about(gov::KIND_CANCEL, request, now)
    }

    fn veto_proposal(
        &mut self,
        request: &api::AboutProposal,
        now: Timestamp,
    ) -> Result<EventId, NodeError> {
        self.about(gov::KIND_VETO, request, now)
    }

    fn appeal_proposal(
        &mut self,
        request: &api::AboutProposal,
        now: Timestamp,
    ) -> Result<EventId, NodeError> {
        self.about(gov::KIND_APPEAL, request, now)
    }

    fn proposals(&self) -> Result<api::Proposals, NodeError> {
        let mut proposals: Vec<api::Proposal> = self
            .store()
            .view(gov::VIEW_PROPOSAL)?
            .iter()
            .map(|(key, value)| parse_row(key, value))
            .collect::<Result<_, _>>()?;
        proposals.sort_by_key(|proposal| std::cmp::Reverse(proposal.opened_ms));
        Ok(api::Proposals { proposals })
    }

    fn proposal(&self, id: &str) -> Result<api::Proposal, NodeError> {
        let id = self.proposal_id(id)?.to_string();
        let row = self
            .store()
            .view_row(gov::VIEW_PROPOSAL, &id)?
            .ok_or_else(|| bad(format!("there is no proposal {id}")))?;
        parse_row(&id, &row)
    }

    fn governance_duties(&mut self, now: Timestamp) -> Result<Vec<EventId>, NodeError> {
        if self.log().is_none() || !self.can_sign() {
            return Ok(Vec::new());
        }
        let me = self.me()?;
        let log = self.ledger_log()?;
        let params = log.coop_state().params(None);
        let mut signed = Vec::new();
        if gov::params::closer(&params, log.genesis_body()) == me {
            let reminder_ms = gov::params::reminder_hours(&params) * 3_600_000;
            for (id, _) in self.store().view(gov::VIEW_OPEN)? {
                // The domain's own row, not the API's answer.
                let Some(row) = self.store().view_row(gov::VIEW_PROPOSAL, &id)? else {
                    continue;
                };
                let proposal: gov::ProposalRow = parse_row(&id, &row)?;
                let draft = proposal.status == "draft";
                let early = !draft
                    && proposal.rules.early_close
                    && proposal.voted.len() == proposal.electorate.len();
                let due = (!draft && now.as_millis() >= proposal.closes_at_ms)
                    || early
                    || proposal.cancel_requested.is_some()
                    || (!draft && !proposal.vetoed_by.is_empty());
                let (kind, what) = if due {
                    (gov::KIND_CLOSE, "Closed")
                } else if !draft
                    && !proposal.reminded
                    && proposal.voted.len() < proposal.electorate.len()
                    && now.as_millis() + reminder_ms >= proposal.closes_at_ms
                    && proposal.closes_at_ms - proposal.opened_ms > reminder_ms
                {
                    (gov::KIND_REMIND, "Reminded the electors of")
                } else {
                    continue;
                };
                let body = encode_body(&gov::Close {
                    proposal: id.parse().map_err(|_| bad("a stored id does not parse"))?,
                });
                match self.append(kind, body, now) {
                    Ok(event) => {
                        tracing::info!(proposal = %id, title = %proposal.title, "{what} a proposal.");
                        signed.push(event);
                    }
                    Err(error) => {
                        tracing::warn!(proposal = %id, %error, "Could not act on a proposal; will retry.")
                    }
                }
            }
        }
        // My own probation, once it has ended.
        let probation_days = params
            .get("member.probation_days")
            .and_then(|value| value.parse::<u64>().ok())
            .unwrap_or(90);
        if let Some(membership) = self.ledger_log()?.coop_state().member(&me, None)
            && membership.is_active()
            && membership.tier == Tier::Provisional
            && now.as_millis() >= membership.since.as_millis() + probation_days * gov::DAY_MS
        {
            match self.append(gov::KIND_CONFIRM, Vec::new(), now) {
                Ok(event) => {
                    tracing::info!("Probation ended: this member is now a full member.");
                    signed.push(event);
                }
                Err(error) => tracing::warn!(%error, "Could not end the probation; will retry."),
            }
        }
        let (admission, vouches_needed) = admission(self.ledger_log()?);
        if admission == "vouches" {
            let me_text = me.to_string();
            let applicants: Vec<gov::MemberRow> = self
                .store()
                .view(gov::VIEW_MEMBER)?
                .iter()
                .map(|(key, value)| parse_row(key, value))
                .collect::<Result<_, _>>()?;
            for applicant in applicants.iter().filter(|member| {
                member.status == "applicant"
                    && member.vouched_by.contains(&me_text)
                    && member.vouched_by.len() >= vouches_needed
            }) {
                let request = api::Vouch {
                    applicant: applicant.did.clone(),
                    note: String::new(),
                };
                match self.admit(&request, now) {
                    Ok(event) => {
                        tracing::info!(applicant = %applicant.did, name = %applicant.name, "Admitted a new member.");
                        signed.push(event);
                    }
                    Err(error) => {
                        tracing::warn!(applicant = %applicant.did, %error, "Could not admit; will retry.")
                    }
                }
            }
        }
        Ok(signed)
    }

    fn trust_add(&mut self, request: &api::TrustAdd, now: Timestamp) -> Result<EventId, NodeError> {
        if !(0.0..=1.0).contains(&request.score) {
            return Err(bad(format!(
                "a trust score is from 0 to 1, not {}",
                request.score
            )));
        }
        let class = request.class.as_deref().unwrap_or("colleague");
        let body = trust::Edge {
            to: self.resolve_member(&request.to)?,
            permille: (request.score * 1000.0).round() as u16,
            class: trust::Class::parse(class).ok_or_else(|| {
                bad(format!(
                    "class {class:?}: expected known, colleague, close or intimate"
                ))
            })?,
            context: parse_context(request.context.as_deref())?,
            note: request.note.clone(),
        };
        self.append(trust::KIND_EDGE, encode_body(&body), now)
    }

    fn trust_graph(&self) -> Result<Arc<TrustGraph>, NodeError> {
        let log = self.ledger_log()?;
        let key = (log.generation(), log.counted_len());
        let cache = self.extensions().get::<TrustCache>();
        let mut cache = cache.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((cached, graph)) = cache.as_ref()
            && *cached == key
        {
            return Ok(graph.clone());
        }
        let params = TrustParams::from_params(&log.coop_state().params(None))
            .map_err(NodeError::Rejected)?;
        let pairs = self
            .store()
            .view(trust::VIEW_TRUST)?
            .into_iter()
            .filter_map(|(_, value)| trust::parse_pair(&value));
        let graph = Arc::new(TrustGraph::new(params, pairs));
        *cache = Some((key, graph.clone()));
        Ok(graph)
    }

    fn trust_in(&self, did: &Did) -> f64 {
        let (Ok(me), Ok(graph)) = (self.me(), self.trust_graph()) else {
            return 0.0;
        };
        graph.score(
            &me,
            did,
            TrustContext::General,
            as_of_minute(icn_runtime::node::now()),
        )
    }

    fn trust_edges(
        &self,
        member: Option<&str>,
        now: Timestamp,
    ) -> Result<api::TrustEdges, NodeError> {
        let did = match member {
            Some(text) => self.resolve_member(text)?,
            None => self.me()?,
        };
        let graph = self.trust_graph()?;
        let minute = as_of_minute(now);
        let (mut outgoing, mut incoming) = (Vec::new(), Vec::new());
        let me = did.to_string();
        for (_, value) in self.store().view(trust::VIEW_TRUST)? {
            let Some(pair) = trust::parse_pair(&value) else {
                continue;
            };
            if pair.from != me && pair.to != me {
                continue;
            }
            let (Ok(from), Ok(to)) = (pair.from.parse::<Did>(), pair.to.parse::<Did>()) else {
                continue;
            };
            let edge = api::TrustEdge {
                stated: pair
                    .statements
                    .iter()
                    .map(|(context, statement)| {
                        (
                            context.as_str().to_owned(),
                            f64::from(statement.permille) / 1000.0,
                        )
                    })
                    .collect(),
                transfers: pair.transfers,
                score: graph.direct_score(&from, &to, TrustContext::General, minute),
                from: pair.from,
                to: pair.to,
            };
            if edge.from == me {
                outgoing.push(edge);
            } else {
                incoming.push(edge);
            }
        }
        Ok(api::TrustEdges {
            did: me,
            outgoing,
            incoming,
        })
    }

    fn trust_score(
        &self,
        from: Option<&str>,
        to: &str,
        context: Option<&str>,
        now: Timestamp,
    ) -> Result<api::TrustScore, NodeError> {
        let (from, to) = self.trust_ends(from, to)?;
        let context = parse_context(context)?;
        let score = self
            .trust_graph()?
            .score(&from, &to, context, as_of_minute(now));
        Ok(api::TrustScore {
            from: from.to_string(),
            to: to.to_string(),
            context: context.as_str().to_owned(),
            score,
        })
    }

    fn trust_why(
        &self,
        from: Option<&str>,
        to: &str,
        context: Option<&str>,
        now: Timestamp,
    ) -> Result<api::TrustWhy, NodeError> {
        let (from, to) = self.trust_ends(from, to)?;
        let context = parse_context(context)?;
        let why = self
            .trust_graph()?
            .explain(&from, &to, context, as_of_minute(now));
        // The events behind each hop of the path.
        let mut events = Vec::new();
        for hop in &why.hops {
            if let Some(row) = self
                .store()
                .view_row(trust::VIEW_TRUST, &format!("{}/{}", hop.from, hop.to))?
                && let Some(pair) = trust::parse_pair(&row)
            {
                events.extend(trust::events_behind(&pair).iter().map(ToString::to_string));
            }
        }
        Ok(api::TrustWhy {
            from: why.from,
            to: why.to,
            context: context.as_str().to_owned(),
            score: why.score,
            path: why.path,
            hops: why
                .hops
                .iter()
                .map(|hop| serde_json::to_value(hop).expect("plain data"))
                .collect(),
            events,
            formula: why.formula.to_owned(),
        })
    }
}

/// Helpers of [`GovernanceOps`].
trait GovernanceHelpers {
    fn name_is_free(&self, name: &str, me: &Did) -> Result<(), NodeError>;
    fn template(&self, name: &str) -> Result<gov::Template, NodeError>;
    fn electorate(&self, circle: Option<&str>) -> Result<Vec<Did>, NodeError>;
    fn action(&self, action: &api::ProposalAction) -> Result<gov::Action, NodeError>;
    fn proposal_id(&self, text: &str) -> Result<EventId, NodeError>;
    fn about(
        &mut self,
        kind: &str,
        request: &api::AboutProposal,
        now: Timestamp,
    ) -> Result<EventId, NodeError>;
    fn trust_ends(&self, from: Option<&str>, to: &str) -> Result<(Did, Did), NodeError>;
}

impl GovernanceHelpers for Node {
    /// Refuses a name another member (or applicant) already goes by, in any
    /// case: members pick each other by name, and two Anas would be paid by
    /// mistake.
    fn name_is_free(&self, name: &str, me: &Did) -> Result<(), NodeError> {
        let wanted = name.trim().to_lowercase();
        let me = me.to_string();
        let taken = self.members()?.members.into_iter().find(|member| {
            member.did != me && member.status != "exited" && member.name.to_lowercase() == wanted
        });
        match taken {
            Some(member) => Err(bad(format!(
                "another member is already called {:?}; add an initial or a surname",
                member.name
            ))),
            None => Ok(()),
        }
    }

    /// A template by name: one the co-op published, else a built-in one.
    fn template(&self, name: &str) -> Result<gov::Template, NodeError> {
        if let Some(value) = self.store().view_row(gov::VIEW_TEMPLATE, name)? {
            let info: api::TemplateInfo = parse_row(name, &value)?;
            let rules: gov::Rules = serde_json::from_value(info.rules)
                .map_err(|error| bad(format!("template {name} does not parse: {error}")))?;
            return Ok(gov::Template {
                name: info.name,
                description: info.description,
                rules,
            });
        }
        gov::templates::builtin_named(name).ok_or_else(|| {
            crate::ledger::missing(format!(
                "there is no template {name:?} (`icnctl governance templates` lists them)"
            ))
        })
    }

    /// Who may vote in `circle` (or the whole co-op), as this node knows.
    fn electorate(&self, circle: Option<&str>) -> Result<Vec<Did>, NodeError> {
        let log = self.ledger_log()?;
        let mut voters: Vec<Did> = log
            .coop_state()
            .members_in(None)
            .into_iter()
            .filter(|(_, membership)| membership.may_vote())
            .map(|(did, _)| did)
            .collect();
        if let Some(name) = circle {
            let row = self
                .store()
                .view_row(gov::VIEW_CIRCLE, name)?
                .ok_or_else(|| bad(format!("there is no circle {name:?}")))?;
            let row: serde_json::Value = parse_row(name, &row)?;
            let members: Vec<&str> = row["members"]
                .as_array()
                .map(|members| members.iter().filter_map(|m| m.as_str()).collect())
                .unwrap_or_default();
            voters.retain(|did| members.contains(&did.to_string().as_str()));
        }
        voters.sort();
        Ok(voters)
    }

    fn action(&self, action: &api::ProposalAction) -> Result<gov::Action, NodeError> {
        Ok(match action {
            api::ProposalAction::Decision => gov::Action::Decision,
            api::ProposalAction::AddMember { member, name, tier } => gov::Action::AddMember {
                // A newcomer need not be known yet: any well-formed DID.
                did: match member.trim().parse::<Did>() {
                    Ok(did) => did,
                    Err(_) => self.resolve_member(member)?,
                },
                name: name.clone(),
                tier: parse_tier(tier.as_deref())?,
            },
            api::ProposalAction::RemoveMember { member } => gov::Action::RemoveMember {
                did: self.resolve_member(member)?,
            },
            api::ProposalAction::SetParams { params } => gov::Action::SetParams {
                params: params.clone(),
            },
            api::ProposalAction::Budget {
                to,
                amount,
                currency,
                memo,
            } => {
                let code = currency.as_deref().unwrap_or("hours");
                gov::Action::Budget {
                    to: self.resolve_member(to)?,
                    amount: self.parse_amount_in(amount, code)?,
                    currency: code.to_owned(),
                    memo: memo.clone(),
                }
            }
            api::ProposalAction::Charter { section, text } => gov::Action::Charter {
                section: section.clone(),
                text: text.clone(),
            },
            api::ProposalAction::SetRoles { member, roles } => gov::Action::SetRoles {
                did: self.resolve_member(member)?,
                roles: roles.clone(),
            },
            api::ProposalAction::Reverse { entry } => gov::Action::Reverse {
                entry: entry.trim().parse().map_err(|_| {
                    bad(format!(
                        "{entry:?} is not an entry id: give it whole, as `icnctl --json ledger history` shows it"
                    ))
                })?,
            },
            api::ProposalAction::Freeze { member } => gov::Action::Freeze {
                did: self.resolve_member(member)?,
            },
            api::ProposalAction::Unfreeze { member } => gov::Action::Unfreeze {
                did: self.resolve_member(member)?,
            },
            api::ProposalAction::CreateCircle { name, members } => gov::Action::CreateCircle {
                name: name.clone(),
                members: members
                    .iter()
                    .map(|member| self.resolve_member(member))
                    .collect::<Result<_, _>>()?,
            },
        })
    }

    fn proposal_id(&self, text: &str) -> Result<EventId, NodeError> {
        let ids = self
            .store()
            .view(gov::VIEW_PROPOSAL)?
            .into_iter()
            .map(|(key, _)| key);
        pick_id(text, "proposal", ids)
    }

    fn about(
        &mut self,
        kind: &str,
        request: &api::AboutProposal,
        now: Timestamp,
    ) -> Result<EventId, NodeError> {
        let body = gov::About {
            proposal: self.proposal_id(&request.proposal)?,
            reason: request.reason.clone(),
        };
        self.append(kind, encode_body(&body), now)
    }

    fn trust_ends(&self, from: Option<&str>, to: &str) -> Result<(Did, Did), NodeError> {
        let from = match from {
            Some(text) => self.resolve_member(text)?,
            None => self.me()?,
        };
        Ok((from, self.resolve_member(to)?))
    }
}
