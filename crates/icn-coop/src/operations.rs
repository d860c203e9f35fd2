//! The co-op's operations, as members (`/api/v1`, with a token) and the
//! admin (`/admin/v1`, on the admin socket) call them: declared once here,
//! served and described by the gateway.
//!
//! A read names the member it is about with a DID or a display name, and
//! defaults to whoever asks (this node's member on the admin socket). A
//! write signs one event as this node's member.

use icn_api as api;
use icn_identity::Did;
use icn_runtime::{Node, NodeError, Operation, Reader, Requester, node::now, operation::NoParams};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{GovernanceOps, LedgerOps, RecoveryOps};

/// A member, or by default whoever asks.
#[derive(Deserialize, JsonSchema)]
struct MemberQuery {
    /// A member's DID or display name; default: the caller.
    #[schemars(length(min = 1))]
    did: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
struct StatementQuery {
    /// A member's DID or display name; default: the caller.
    #[schemars(length(min = 1))]
    did: Option<String>,
    /// `YYYY-MM`.
    #[schemars(pattern(icn_api::pattern::MONTH))]
    month: String,
}

#[derive(Deserialize, JsonSchema)]
struct ProposalQuery {
    /// The proposal's id (or a unique prefix of it).
    #[schemars(pattern(icn_api::pattern::ID))]
    id: String,
}

#[derive(Deserialize, JsonSchema)]
struct TrustQuery {
    /// A member's DID or name; default: the caller.
    #[schemars(length(min = 1))]
    from: Option<String>,
    /// A member's DID or name.
    #[schemars(length(min = 1))]
    to: String,
    /// `general` (default), `ledger`, `compute` or `governance`.
    #[schemars(extend("enum" = ["general", "ledger", "compute", "governance", null]))]
    context: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
struct ResolveQuery {
    /// A member's DID or display name.
    #[schemars(length(min = 1))]
    id: String,
}

/// The member a name or DID names.
#[derive(Serialize, JsonSchema)]
struct Resolved {
    did: String,
}

/// The member `text` names, or else whoever asks.
fn member_or_caller(
    node: &Node,
    requester: &Requester,
    text: Option<&str>,
) -> Result<Did, NodeError> {
    match text {
        Some(text) => node.resolve_member(text),
        None => requester.did(node),
    }
}

/// The start of a trust query: `from`, or whoever asks.
fn trust_from(
    node: &Node,
    requester: &Requester,
    from: Option<String>,
) -> Result<String, NodeError> {
    match from {
        Some(from) => Ok(from),
        None => Ok(requester.did(node)?.to_string()),
    }
}

fn balance_from_views(
    reader: &Reader,
    requester: &Requester,
    query: &MemberQuery,
) -> Result<Option<api::Balance>, NodeError> {
    let member = match (&query.did, requester) {
        (Some(text), _) => text.clone(),
        (None, Requester::Member(did)) => did.to_string(),
        // The views do not know which member this node holds.
        (None, Requester::ThisNode) => return Ok(None),
    };
    crate::ledger::balance_from_views(reader, &member, now())
}

fn membership() -> Vec<Operation> {
    vec![
        Operation::read(
            "members",
            "members",
            "Members and applicants",
            |node, _, _: NoParams| node.members(),
        )
        .api("/api/v1/members")
        .admin("/admin/v1/members"),
        Operation::read(
            "resolveMember",
            "members",
            "The member a DID or display name names",
            |node, _, query: ResolveQuery| {
                Ok(Resolved {
                    did: node.resolve_member(&query.id)?.to_string(),
                })
            },
        )
        .admin("/admin/v1/members/resolve"),
        Operation::write("vouch", "members", "Vouch for an applicant", Node::vouch)
            .api("/api/v1/members/vouch")
            .admin("/admin/v1/members/vouch"),
        Operation::write(
            "admit",
            "members",
            "Admit an applicant the rules allow in",
            Node::admit,
        )
        .admin("/admin/v1/members/admit"),
        Operation::write(
            "setProfile",
            "members",
            "Set your name and skills",
            Node::set_profile,
        )
        .api("/api/v1/members/profile")
        .admin("/admin/v1/members/profile"),
        Operation::write("leave", "members", "Leave the co-op", Node::leave)
            .admin("/admin/v1/members/leave"),
    ]
}

fn ledger() -> Vec<Operation> {
    vec![
        Operation::read_views(
            "balance",
            "ledger",
            "A member's accounts",
            balance_from_views,
            |node, requester, query: MemberQuery| {
                node.balance(&member_or_caller(node, requester, query.did.as_deref())?)
            },
        )
        .api("/api/v1/ledger/balance/{did}")
        .admin("/admin/v1/ledger/balance"),
        Operation::read(
            "history",
            "ledger",
            "A member's entries, newest page first; follow next_cursor for older ones",
            |node, requester, mut filter: api::HistoryFilter| {
                let did = member_or_caller(node, requester, filter.did.as_deref())?;
                if let Some(counterparty) = &filter.counterparty {
                    filter.counterparty = Some(node.resolve_member(counterparty)?.to_string());
                }
                filter.did = Some(did.to_string());
                node.history(&filter)
            },
        )
        .api("/api/v1/ledger/history")
        .admin("/admin/v1/ledger/history"),
        Operation::read(
            "statement",
            "ledger",
            "One month of a member's accounts",
            |node, requester, query: StatementQuery| {
                let member = member_or_caller(node, requester, query.did.as_deref())?;
                node.statement(&member, &query.month)
            },
        )
        .api("/api/v1/ledger/statement")
        .admin("/admin/v1/ledger/statement"),
        Operation::read(
            "totals",
            "ledger",
            "The co-op's totals per currency",
            |node, _, _: NoParams| node.totals(),
        )
        .api("/api/v1/ledger/totals")
        .admin("/admin/v1/ledger/totals"),
        Operation::read(
            "inbox",
            "ledger",
            "Requests, disputes and notices for the caller",
            |node, requester, query: MemberQuery| {
                node.inbox(&member_or_caller(node, requester, query.did.as_deref())?)
            },
        )
        .api("/api/v1/ledger/inbox")
        .admin("/admin/v1/ledger/inbox"),
        Operation::write(
            "transfer",
            "ledger",
            "Pay a member (log hours for them)",
            Node::pay,
        )
        .api("/api/v1/ledger/transfer")
        .admin("/admin/v1/ledger/pay"),
        Operation::write(
            "requestPayment",
            "ledger",
            "Ask a member to pay you",
            Node::request_payment,
        )
        .api("/api/v1/ledger/requests")
        .admin("/admin/v1/ledger/requests"),
        Operation::write(
            "answerRequest",
            "ledger",
            "Pay or decline a request",
            Node::answer_request,
        )
        .api("/api/v1/ledger/requests/answer")
        .admin("/admin/v1/ledger/requests/answer"),
        Operation::write(
            "openDispute",
            "ledger",
            "Dispute a payment",
            Node::open_dispute,
        )
        .api("/api/v1/ledger/disputes")
        .admin("/admin/v1/ledger/disputes"),
        Operation::write(
            "addEvidence",
            "ledger",
            "Add evidence to a dispute",
            Node::add_evidence,
        )
        .api("/api/v1/ledger/disputes/evidence")
        .admin("/admin/v1/ledger/disputes/evidence"),
        Operation::write(
            "resolveDispute",
            "ledger",
            "Resolve a dispute you mediate",
            Node::resolve_dispute,
        )
        .api("/api/v1/ledger/disputes/resolve")
        .admin("/admin/v1/ledger/disputes/resolve"),
    ]
}

fn trust() -> Vec<Operation> {
    vec![
        Operation::read(
            "trustScore",
            "trust",
            "How much one member trusts another, through the graph",
            |node, requester, query: TrustQuery| {
                let from = trust_from(node, requester, query.from)?;
                node.trust_score(Some(&from), &query.to, query.context.as_deref(), now())
            },
        )
        .api("/api/v1/trust/score/{from}/{to}")
        .admin("/admin/v1/trust/score"),
        Operation::read(
            "trustWhy",
            "trust",
            "Why one member (default: the caller) trusts another as much as they do",
            |node, requester, query: TrustQuery| {
                let from = trust_from(node, requester, query.from)?;
                node.trust_why(Some(&from), &query.to, query.context.as_deref(), now())
            },
        )
        .api("/api/v1/trust/why/{to}")
        .admin("/admin/v1/trust/why"),
        Operation::read(
            "trustEdges",
            "trust",
            "The trust links to and from a member",
            |node, requester, query: MemberQuery| {
                let member = trust_from(node, requester, query.did)?;
                node.trust_edges(Some(&member), now())
            },
        )
        .api("/api/v1/trust/edges"),
        Operation::write(
            "trustAdd",
            "trust",
            "State your trust in a member",
            Node::trust_add,
        )
        .api("/api/v1/trust")
        .admin("/admin/v1/trust"),
    ]
}

fn governance() -> Vec<Operation> {
    vec![
        Operation::read(
            "proposals",
            "governance",
            "Every proposal, newest first",
            |node, _, _: NoParams| node.proposals(),
        )
        .api("/api/v1/governance/proposals")
        .admin("/admin/v1/governance/proposals"),
        Operation::write("propose", "governance", "Make a proposal", Node::propose)
            .api("/api/v1/governance/proposals")
            .admin("/admin/v1/governance/proposals"),
        Operation::read(
            "proposal",
            "governance",
            "One proposal with its votes and tally",
            |node, _, query: ProposalQuery| node.proposal(&query.id),
        )
        .api("/api/v1/governance/proposals/{id}")
        .admin("/admin/v1/governance/proposal"),
        Operation::write(
            "vote",
            "governance",
            "Vote on a proposal (again, to change your vote)",
            Node::vote,
        )
        .api("/api/v1/governance/vote")
        .admin("/admin/v1/governance/vote"),
        Operation::write(
            "openDraft",
            "governance",
            "Open your draft proposal to votes",
            Node::open_draft,
        )
        .admin("/admin/v1/governance/open"),
        Operation::write(
            "cancelProposal",
            "governance",
            "Withdraw your proposal",
            Node::cancel_proposal,
        )
        .api("/api/v1/governance/cancel")
        .admin("/admin/v1/governance/cancel"),
        Operation::write(
            "vetoProposal",
            "governance",
            "Veto a proposal, where the rules give you a veto",
            Node::veto_proposal,
        )
        .admin("/admin/v1/governance/veto"),
        Operation::write(
            "appealProposal",
            "governance",
            "Appeal a decision",
            Node::appeal_proposal,
        )
        .admin("/admin/v1/governance/appeal"),
        Operation::read(
            "templates",
            "governance",
            "The co-op's proposal templates",
            |node, _, _: NoParams| node.templates(),
        )
        .api("/api/v1/governance/templates")
        .admin("/admin/v1/governance/templates"),
        Operation::write(
            "deployTemplate",
            "governance",
            "Propose a new proposal template",
            Node::deploy_template,
        )
        .admin("/admin/v1/governance/templates"),
    ]
}

fn recovery() -> Vec<Operation> {
    vec![
        Operation::read(
            "recovery",
            "recovery",
            "Your guardians, recoveries of you, and those you may approve",
            |node, _, _: NoParams| node.recovery_status(),
        )
        .api("/api/v1/recovery")
        .admin("/admin/v1/identity/recovery"),
        Operation::write(
            "setGuardians",
            "recovery",
            "Name who may approve a recovery of your identity",
            Node::set_guardians,
        )
        .api("/api/v1/recovery/guardians")
        .admin("/admin/v1/identity/recovery/guardians"),
        Operation::write(
            "approveRecovery",
            "recovery",
            "As a guardian, approve a member's new device",
            Node::approve_recovery,
        )
        .api("/api/v1/recovery/approve")
        .admin("/admin/v1/identity/recovery/approve"),
        Operation::write(
            "cancelRecovery",
            "recovery",
            "Refuse a recovery of your identity you did not ask for",
            Node::cancel_recovery,
        )
        .api("/api/v1/recovery/cancel")
        .admin("/admin/v1/identity/recovery/cancel"),
        Operation::write(
            "freezeMember",
            "recovery",
            "As a guardian, freeze a member's identity",
            Node::freeze_member,
        )
        .api("/api/v1/recovery/freeze")
        .admin("/admin/v1/identity/recovery/freeze"),
        Operation::write(
            "unfreezeMember",
            "recovery",
            "As a guardian, lift your freeze",
            Node::unfreeze_member,
        )
        .api("/api/v1/recovery/unfreeze")
        .admin("/admin/v1/identity/recovery/unfreeze"),
    ]
}

/// Every operation of the co-op module.
pub fn operations() -> Vec<Operation> {
    [membership(), ledger(), trust(), governance(), recovery()]
        .into_iter()
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_operation_is_served_once_under_its_own_name() {
        let operations = operations();
        let mut ids = BTreeSet::new();
        let mut routes = BTreeSet::new();
        for operation in &operations {
            assert!(ids.insert(operation.id), "{} twice", operation.id);
            assert!(
                operation.api.is_some() || operation.admin.is_some(),
                "{} is served nowhere",
                operation.id
            );
            let method = operation.method();
            for path in [operation.api, operation.admin].into_iter().flatten() {
                assert!(
                    routes.insert((method, path)),
                    "{method} {path} is served twice"
                );
            }
            assert_eq!(
                operation.writes(),
                operation.access == icn_runtime::Access::OwnMember,
                "{}: only this node's member signs",
                operation.id
            );
            if let Some(path) = operation.api {
                assert!(path.starts_with("/api/v1/"), "{path}");
            }
            if let Some(path) = operation.admin {
                assert!(path.starts_with("/admin/v1/"), "{path}");
            }
        }
    }

    #[test]
    fn parameters_are_read_from_path_and_query_pairs() {
        let params = icn_runtime::operation::Params(vec![
            ("from".into(), "ada".into()),
            ("to".into(), "ben".into()),
        ]);
        let query: TrustQuery = params.decode().unwrap();
        assert_eq!(query.from.as_deref(), Some("ada"));
        assert_eq!(query.to, "ben");
        assert_eq!(query.context, None);
        let missing = icn_runtime::operation::Params(vec![("from".into(), "ada".into())]);
        let error = missing.decode::<TrustQuery>().err().unwrap();
        assert!(matches!(error, NodeError::BadInput(_)), "{error}");
    }
}
