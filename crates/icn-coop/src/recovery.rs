//! Social recovery on a node: naming guardians (by default the members who
//! vouched for you), approving another member's new device, cancelling a
//! recovery you did not ask for, freezing a member's identity, and — on the
//! new device — signing `identity.recover` once the kernel would accept it.
//! The rules themselves are the kernel's (`icn_kernel::Log`); this module
//! only decides when to sign what.

use std::collections::{BTreeMap, BTreeSet};

use icn_api as api;
use icn_identity::{Did, PublicKey};
use icn_kernel::{
    Approval, EventId, Freeze, Guardians, KIND_FREEZE, KIND_GUARDIANS, KIND_RECOVER,
    KIND_RECOVERY_APPROVE, KIND_RECOVERY_CANCEL, KIND_UNFREEZE, Log, RECOVERY_DELAY_DEFAULT_MS,
    RECOVERY_DELAY_MAX_MS, Recover, RecoveryApprove, RecoveryCancel, Timestamp, encode_body,
};

use icn_runtime::{Node, NodeError};

use crate::{
    governance::GovernanceOps,
    ledger::{LedgerOps, bad},
};

/// Recovery requests, as a new device prints them: `icnrq1` + base58 of the
/// member's DID and the new public key.
pub const REQUEST_PREFIX: &str = "icnrq1";

/// Guardians icnd names by default: the members who vouched, then others.
const DEFAULT_GUARDIANS: usize = 3;

/// Store meta: the guardians icnd named by itself (JSON list of DIDs), so
/// it may name better ones as the co-op changes; empty once the member has
/// chosen their own, which icnd then never changes.
const META_AUTO_GUARDIANS: &str = "recovery.auto_guardians";

fn named(names: &BTreeMap<String, String>, did: &Did) -> api::MemberName {
    let did = did.to_string();
    api::MemberName {
        name: names.get(&did).cloned().unwrap_or_default(),
        did,
    }
}

/// Each current guardian's earliest counted approval of `key` as `member`'s
/// new key, earliest first.
fn guardian_approvals<'a>(
    log: &'a Log,
    member: &Did,
    key: &PublicKey,
    guardians: &Guardians,
) -> Vec<&'a Approval> {
    let mut chosen: Vec<&Approval> = Vec::new();
    for approval in log.recovery_approvals(member).iter().filter(|approval| {
        approval.new_key == *key && guardians.guardians.contains(&approval.guardian)
    }) {
        match chosen
            .iter_mut()
            .find(|earlier| earlier.guardian == approval.guardian)
        {
            Some(earlier) if approval.at < earlier.at => *earlier = approval,
            Some(_) => {}
            None => chosen.push(approval),
        }
    }
    chosen.sort_by_key(|approval| (approval.at, approval.id));
    chosen
}

/// When the new key may take over, as the kernel judges it
/// ([`Guardians::ready_at`]); none before there are enough approvals.
fn ready_at(approvals: &[&Approval], guardians: &Guardians) -> Option<Timestamp> {
    let times: Vec<Timestamp> = approvals.iter().map(|approval| approval.at).collect();
    guardians.ready_at(&times)
}

pub fn encode_request(member: &Did, key: &PublicKey) -> String {
    let bytes = postcard::to_stdvec(&(member, key)).expect("keys serialise");
    format!("{REQUEST_PREFIX}{}", bs58::encode(bytes).into_string())
}

pub fn parse_request(text: &str) -> Result<(Did, PublicKey), NodeError> {
    let text = text.trim();
    let body = text.strip_prefix(REQUEST_PREFIX).ok_or_else(|| {
        bad(format!(
            "a recovery request starts with {REQUEST_PREFIX} (the new device prints it with `icnctl id recover`)"
        ))
    })?;
    if body.len() > 200 {
        return Err(bad("that is too long to be a recovery request"));
    }
    let bytes = bs58::decode(body)
        .into_vec()
        .map_err(|_| bad("the recovery request is damaged (not base58); copy it again"))?;
    postcard::from_bytes(&bytes).map_err(|_| bad("the recovery request is damaged; copy it again"))
}

pub trait RecoveryOps {
    /// Names who may approve a recovery of this node's member, as the
    /// member chose: icnd will not change them.
    fn set_guardians(
        &mut self,
        request: &api::SetGuardians,
        now: Timestamp,
    ) -> Result<EventId, NodeError>;

    /// As a guardian: approves the new key a recovery request names.
    fn approve_recovery(
        &mut self,
        request: &api::RecoveryRequest,
        now: Timestamp,
    ) -> Result<EventId, NodeError>;

    /// As the member: refuses a recovery to the key a request names.
    fn cancel_recovery(
        &mut self,
        request: &api::RecoveryRequest,
        now: Timestamp,
    ) -> Result<EventId, NodeError>;

    /// As a guardian: stops a member's identity from signing.
    fn freeze_member(
        &mut self,
        request: &api::FreezeMember,
        now: Timestamp,
    ) -> Result<EventId, NodeError>;

    fn unfreeze_member(
        &mut self,
        request: &api::FreezeMember,
        now: Timestamp,
    ) -> Result<EventId, NodeError>;

    fn recovery_status(&self) -> Result<api::RecoveryStatus, NodeError>;

    /// What a node does by itself for recovery: on a recovering device,
    /// signs `identity.recover` once it has synced with a peer and the
    /// approvals and waiting time are there; on a member's node, names the
    /// member's guardians once there are members to name (the vouchers
    /// first, then others, up to three; two must approve; 72 hours), and
    /// names better ones while the set is still the one it chose (more
    /// guardians as the co-op grows, or a guardian has left or was
    /// suspended). A set the member chose is theirs.
    fn recovery_duties(&mut self, now: Timestamp) -> Result<Option<EventId>, NodeError>;
}

impl RecoveryOps for Node {
    fn set_guardians(
        &mut self,
        request: &api::SetGuardians,
        now: Timestamp,
    ) -> Result<EventId, NodeError> {
        let id = self.name_guardians(request, now)?;
        self.set_meta(META_AUTO_GUARDIANS, "")?;
        Ok(id)
    }

    fn approve_recovery(
        &mut self,
        request: &api::RecoveryRequest,
        now: Timestamp,
    ) -> Result<EventId, NodeError> {
        let (member, new_key) = parse_request(&request.request)?;
        let body = RecoveryApprove { member, new_key };
        self.append(KIND_RECOVERY_APPROVE, encode_body(&body), now)
    }

    fn cancel_recovery(
        &mut self,
        request: &api::RecoveryRequest,
        now: Timestamp,
    ) -> Result<EventId, NodeError> {
        let (member, new_key) = parse_request(&request.request)?;
        if member != self.me()? {
            return Err(bad("that request is for another member's identity"));
        }
        self.append(
            KIND_RECOVERY_CANCEL,
            encode_body(&RecoveryCancel { new_key }),
            now,
        )
    }

    fn freeze_member(
        &mut self,
        request: &api::FreezeMember,
        now: Timestamp,
    ) -> Result<EventId, NodeError> {
        let member = self.resolve_member(&request.member)?;
        self.append(KIND_FREEZE, encode_body(&Freeze { member }), now)
    }

    fn unfreeze_member(
        &mut self,
        request: &api::FreezeMember,
        now: Timestamp,
    ) -> Result<EventId, NodeError> {
        let member = self.resolve_member(&request.member)?;
        let me = self.me()?;
        let log = self.log().ok_or(NodeError::NoCoop)?;
        let freezers = log.frozen_by_guardians(&member);
        let name = self
            .member_names()
            .remove(&member.to_string())
            .unwrap_or_else(|| member.to_string());
        // Only a freeze this guardian made can this guardian lift: saying
        // "unfrozen" for anything else would report what did not happen.
        if !freezers.contains(&me) {
            let fork_frozen = freezers.is_empty()
                && self
                    .balance(&member)
                    .is_ok_and(|balance| balance.accounts.iter().any(|account| account.frozen));
            let why = if fork_frozen {
                format!(
                    "{name}'s account is frozen because two different entries were signed as theirs \
                     at one position; only the co-op lifts that, by vote: \
                     icnctl governance propose --unfreeze {name:?}"
                )
            } else if freezers.is_empty() {
                format!("{name} is not frozen by any guardian")
            } else {
                let names = self.member_names();
                let by: Vec<String> = freezers
                    .iter()
                    .map(|did| {
                        names
                            .get(&did.to_string())
                            .cloned()
                            .unwrap_or_else(|| did.to_string())
                    })
                    .collect();
                format!(
                    "you did not freeze {name}: each guardian lifts only their own freeze, \
                     and {name} is frozen by {}",
                    by.join(", ")
                )
            };
            return Err(NodeError::Conflict(why));
        }
        self.append(KIND_UNFREEZE, encode_body(&Freeze { member }), now)
    }

    fn recovery_status(&self) -> Result<api::RecoveryStatus, NodeError> {
        let me = self.me()?;
        let log = self.ledger_log()?;
        let keys = log.key_state(&me);
        let (guardians, threshold, delay_ms) = match &keys.guardians {
            Some(set) => (set.guardians.clone(), set.threshold, set.delay_ms),
            None => (Vec::new(), 0, RECOVERY_DELAY_DEFAULT_MS),
        };
        let guarding: Vec<Did> = log
            .coop_state()
            .members()
            .map(|(did, _)| *did)
            .filter(|did| {
                log.key_state(did)
                    .guardians
                    .is_some_and(|set| set.guardians.contains(&me))
            })
            .collect();
        // identity.json names the recovering key even while the keystore
        // is locked (`icnctl` without the daemon).
        let (this_device_request, this_device_cancelled) =
            match (self.recovering(), self.identity()) {
                (true, Some(identity)) => (
                    Some(encode_request(&me, &identity.device_key)),
                    keys.cancelled.contains(&identity.device_key),
                ),
                _ => (None, false),
            };
        let names = self.member_names();
        Ok(api::RecoveryStatus {
            member: named(&names, &me),
            guardians: guardians.iter().map(|did| named(&names, did)).collect(),
            threshold,
            delay_hours: delay_ms as f64 / 3_600_000.0,
            frozen_by: log.frozen(&me).map(|guardian| named(&names, &guardian)),
            of_you: Node::pending_recoveries(log, &names, &me, &me),
            you_guard: guarding
                .iter()
                .flat_map(|member| Node::pending_recoveries(log, &names, member, &me))
                .collect(),
            guarding: guarding.iter().map(|did| named(&names, did)).collect(),
            guarding_frozen: guarding
                .iter()
                .filter(|did| log.frozen(did).is_some())
                .map(Did::to_string)
                .collect(),
            this_device_request,
            this_device_cancelled,
        })
    }

    fn recovery_duties(&mut self, now: Timestamp) -> Result<Option<EventId>, NodeError> {
        if self.log().is_none() {
            return Ok(None);
        }
        if self.recovering() {
            return self.try_recover(now);
        }
        if !self.can_sign() || self.awaiting_sync() {
            return Ok(None);
        }
        let me = self.me()?;
        let log = self.ledger_log()?;
        if !log
            .coop_state()
            .member(&me, None)
            .is_some_and(|membership| membership.is_active())
        {
            return Ok(None);
        }
        let current = log.key_state(&me).guardians.map(|set| set.guardians);
        let mut inactive = false;
        if let Some(current) = &current {
            // Only a set icnd named itself may change (to a better one).
            let auto = self.store().meta(META_AUTO_GUARDIANS)?;
            let named_by_icnd = auto.is_some_and(|auto| {
                serde_json::from_str::<Vec<Did>>(&auto).is_ok_and(|auto| &auto == current)
            });
            if !named_by_icnd {
                return Ok(None);
            }
            inactive = current.iter().any(|guardian| {
                !log.coop_state()
                    .member(guardian, None)
                    .is_some_and(|membership| membership.is_active())
            });
        }
        let wanted = self.default_guardians(&me)?;
        if let Some(current) = &current
            // Better: more guardians, or none who has left or been suspended.
            && (wanted == *current || !(inactive || wanted.len() > current.len()))
        {
            return Ok(None);
        }
        if wanted.len() < 2 {
            // One other member would hold the whole identity: wait for more.
            return Ok(None);
        }
        let request = api::SetGuardians {
            guardians: wanted.iter().map(Did::to_string).collect(),
            threshold: Some(2),
            delay_hours: None,
        };
        let id = self.name_guardians(&request, now)?;
        let auto = serde_json::to_string(&wanted).expect("DIDs serialise");
        self.set_meta(META_AUTO_GUARDIANS, &auto)?;
        tracing::info!(
            guardians = wanted.len(),
            "Named this member's recovery guardians (2 must approve a new device)."
        );
        Ok(Some(id))
    }
}

/// Helpers of [`RecoveryOps`].
trait RecoveryHelpers {
    fn name_guardians(
        &mut self,
        request: &api::SetGuardians,
        now: Timestamp,
    ) -> Result<EventId, NodeError>;
    fn pending_recoveries(
        log: &Log,
        names: &BTreeMap<String, String>,
        member: &Did,
        me: &Did,
    ) -> Vec<api::PendingRecovery>;
    fn default_guardians(&self, me: &Did) -> Result<Vec<Did>, NodeError>;
    fn try_recover(&mut self, now: Timestamp) -> Result<Option<EventId>, NodeError>;
}

impl RecoveryHelpers for Node {
    fn name_guardians(
        &mut self,
        request: &api::SetGuardians,
        now: Timestamp,
    ) -> Result<EventId, NodeError> {
        // No names: keep the guardians named now and change only the
        // approvals needed or the waiting time.
        let current = self
            .log()
            .as_ref()
            .ok_or(NodeError::NoCoop)?
            .key_state(&self.me()?)
            .guardians;
        let mut guardians = Vec::new();
        for text in &request.guardians {
            let did = self.resolve_member(text)?;
            if !self.is_member_did(&did) {
                return Err(bad(format!("{text} is not a member of this co-op")));
            }
            guardians.push(did);
        }
        if guardians.is_empty() {
            match &current {
                Some(current) => guardians = current.guardians.clone(),
                None => {
                    return Err(NodeError::Conflict(
                        "you have no guardians yet: name them (icnctl id guardians Ana Ben Cy)"
                            .to_owned(),
                    ));
                }
            }
        }
        let keeps_set = current
            .as_ref()
            .is_some_and(|current| current.guardians == guardians);
        let threshold = request.threshold.unwrap_or(match &current {
            Some(current) if keeps_set => current.threshold,
            _ if guardians.len() == 1 => 1,
            _ => 2,
        });
        let delay_ms = match request.delay_hours {
            None => current
                .as_ref()
                .map_or(RECOVERY_DELAY_DEFAULT_MS, |current| current.delay_ms),
            Some(hours)
                if hours.is_finite()
                    && hours >= 0.0
                    && hours * 3_600_000.0 <= RECOVERY_DELAY_MAX_MS as f64 =>
            {
                (hours * 3_600_000.0).round() as u64
            }
            Some(hours) => {
                return Err(bad(format!(
                    "a recovery delay is 0 to 720 hours, not {hours}"
                )));
            }
        };
        let body = Guardians {
            guardians,
            threshold,
            delay_ms,
        };
        self.append(KIND_GUARDIANS, encode_body(&body), now)
    }

    /// Recoveries under way of `member`: each new key guardians approved.
    fn pending_recoveries(
        log: &Log,
        names: &BTreeMap<String, String>,
        member: &Did,
        me: &Did,
    ) -> Vec<api::PendingRecovery> {
        let keys = log.key_state(member);
        let Some(guardians) = &keys.guardians else {
            return Vec::new();
        };
        let new_keys: BTreeSet<PublicKey> = log
            .recovery_approvals(member)
            .iter()
            .map(|approval| approval.new_key)
            .filter(|key| keys.recoverable_to(key).is_ok())
            .collect();
        new_keys
            .into_iter()
            .map(|new_key| {
                let approvals = guardian_approvals(log, member, &new_key, guardians);
                api::PendingRecovery {
                    member: named(names, member),
                    new_key: new_key.to_string(),
                    request: encode_request(member, &new_key),
                    approved_by_you: approvals.iter().any(|approval| approval.guardian == *me),
                    approved_by: approvals
                        .iter()
                        .map(|approval| named(names, &approval.guardian))
                        .collect(),
                    needed: guardians.threshold,
                    ready_at_ms: ready_at(&approvals, guardians).map(|at| at.as_millis()),
                }
            })
            .collect()
    }

    /// The guardians icnd would name: active members who vouched for `me`,
    /// then the longest-standing active members, up to three.
    fn default_guardians(&self, me: &Did) -> Result<Vec<Did>, NodeError> {
        let members = self.members()?;
        let active: Vec<&api::Member> = members
            .members
            .iter()
            .filter(|member| member.status == "active")
            .collect();
        let mut candidates: Vec<Did> = members
            .members
            .iter()
            .find(|member| member.did == me.to_string())
            .map(|member| member.vouched_by.clone())
            .unwrap_or_default()
            .iter()
            .filter_map(|did| did.parse().ok())
            .collect();
        let mut others: Vec<(u64, Did)> = active
            .iter()
            .filter_map(|member| Some((member.since_ms.unwrap_or(0), member.did.parse().ok()?)))
            .collect();
        others.sort();
        candidates.extend(others.into_iter().map(|(_, did)| did));
        let mut guardians: Vec<Did> = Vec::new();
        for did in candidates {
            let is_active = active.iter().any(|member| member.did == did.to_string());
            if did != *me && is_active && !guardians.contains(&did) {
                guardians.push(did);
            }
        }
        guardians.truncate(DEFAULT_GUARDIANS);
        Ok(guardians)
    }

    fn try_recover(&mut self, now: Timestamp) -> Result<Option<EventId>, NodeError> {
        if !self.synced() {
            return Ok(None);
        }
        let (identity, key) = self.any_signer()?;
        let (me, new_key) = (identity.did, key.public());
        let log = self.ledger_log()?;
        let keys = log.key_state(&me);
        if keys.authorises(&new_key) {
            self.finish_recovery();
            return Ok(None);
        }
        let Some(guardians) = keys.guardians.clone() else {
            return Ok(None);
        };
        // Every guardian's approval goes in: when all approved, the wait is
        // shorter (`Guardians::ready_at`), and the kernel counts only what
        // the recovery lists.
        let chosen = guardian_approvals(log, &me, &new_key, &guardians);
        if ready_at(&chosen, &guardians).is_none_or(|ready| now < ready) {
            return Ok(None);
        }
        let approvals: Vec<EventId> = chosen.iter().map(|approval| approval.id).collect();
        let body = Recover {
            new_key,
            approvals: approvals.clone(),
        };
        let id = self.append_with(KIND_RECOVER, encode_body(&body), now, &approvals)?;
        tracing::info!("Recovered this member's identity: this device's key now signs for it.");
        self.finish_recovery();
        Ok(Some(id))
    }
}
