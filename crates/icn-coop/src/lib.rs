//! The co-op's services, plugged into the node as one [`Module`]: the hours
//! ledger (`ledger`), governance, membership and trust (`governance`), and
//! social recovery (`recovery`).
//!
//! Each service is a trait of operations over the runtime's [`Node`]
//! (`LedgerOps`, `GovernanceOps`, `RecoveryOps`; `use icn_coop::prelude::*`),
//! so that no service needs a field in `Node` or an `impl Node` block in a
//! shared file. Operations take and return the API's types (`icn-api`);
//! `operations` declares which of them the gateway and the admin socket
//! serve, and how. Duties and domains read domain state only.

use std::{sync::Arc, time::Duration};

use icn_identity::Did;
use icn_kernel::Domain;
use icn_runtime::{Cadence, Duty, Module, Node, Operation, Protocol};

pub mod governance;
pub mod join;
pub mod ledger;
pub mod operations;
pub mod recovery;

pub use governance::GovernanceOps;
pub use ledger::LedgerOps;
pub use recovery::RecoveryOps;

/// The service traits, to call operations on a [`Node`].
pub mod prelude {
    pub use crate::{GovernanceOps, LedgerOps, RecoveryOps};
}

/// How often the ledger's chores run (auto-accepted requests, demurrage):
/// they are due at day or period boundaries, so a minute is on time.
const LEDGER_DUTY_PERIOD: Duration = Duration::from_secs(60);

/// The trust score (general context, from this node's member) at which a
/// peer's node may send at the higher rate.
const TRUSTED_PEER_SCORE: f64 = 0.6;

/// The co-op's services as a module of the node.
#[derive(Debug, Default, Clone, Copy)]
pub struct CoopModule;

impl CoopModule {
    /// The module, to register with [`icn_runtime::Modules::new`].
    pub fn module() -> Arc<dyn Module> {
        Arc::new(CoopModule)
    }
}

impl Module for CoopModule {
    fn name(&self) -> &'static str {
        "coop"
    }

    fn domains(&self) -> Vec<Box<dyn Domain>> {
        vec![
            Box::new(icn_ledger::LedgerDomain::default()),
            Box::new(icn_governance::MemberDomain::default()),
            Box::new(icn_governance::GovDomain::default()),
            Box::new(icn_governance::trust::TrustDomain::default()),
        ]
    }

    fn duties(&self) -> Vec<Duty> {
        vec![
            // A recovering device signs its recovery as soon as it may.
            Duty {
                name: "recovery",
                cadence: Cadence::EveryTick,
                run: Box::new(|node: &mut Node, now| node.recovery_duties(now).map(drop)),
            },
            // Closing a proposal on time matters: every tick.
            Duty {
                name: "governance",
                cadence: Cadence::EveryTick,
                run: Box::new(|node: &mut Node, now| node.governance_duties(now).map(drop)),
            },
            Duty {
                name: "ledger",
                cadence: Cadence::Every(LEDGER_DUTY_PERIOD),
                run: Box::new(|node: &mut Node, now| node.ledger_duties(now).map(drop)),
            },
        ]
    }

    fn protocols(&self) -> Vec<Protocol> {
        vec![join::protocol()]
    }

    fn operations(&self) -> Vec<Operation> {
        operations::operations()
    }

    fn trusts_peer(&self, node: &Node, member: &Did) -> bool {
        node.trust_in(member) >= TRUSTED_PEER_SCORE
    }

    fn member_names(&self, node: &Node) -> Option<std::collections::BTreeMap<String, String>> {
        let members = node.members().ok()?;
        Some(
            members
                .members
                .into_iter()
                .map(|member| (member.did, member.name))
                .collect(),
        )
    }
}
