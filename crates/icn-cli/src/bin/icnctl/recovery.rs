//! Social recovery from the command line: `icnctl id guardians`, `id
//! recovery`, `id recover` (on the new device), `id approve-recovery` and
//! `id cancel-recovery`, `id freeze` and `id unfreeze`, and `coop invite
//! --recover NAME` (what a guardian gives the member who lost their device).

use icn_identity::{Did, KeyPair};
use icn_kernel::{EventId, Timestamp};
use icn_node::prelude::*;
use icn_node::{Node, NodeError, node::now, passphrase, recovery};

use crate::{Context, Failure, Outcome, json};

/// Signs one recovery event through the daemon, or on the data directory
/// itself when no daemon runs.
fn sign<T: serde::Serialize>(
    context: &Context,
    path: &str,
    request: &T,
    action: fn(&mut Node, &T, Timestamp) -> Result<EventId, NodeError>,
) -> Result<icn_api::EventAck, Failure> {
    context.daemon_or_local("POST", path, json(request), || {
        let id = action(&mut context.open_node(true)?, request, now())?;
        Ok(icn_api::EventAck {
            event_id: id.to_string(),
        })
    })
}

fn status(context: &Context) -> Result<icn_api::RecoveryStatus, Failure> {
    context.daemon_or_local("GET", "/admin/v1/identity/recovery", None, || {
        Ok(context.open_node(false)?.recovery_status()?)
    })
}

fn named(member: &icn_api::MemberName) -> String {
    if member.name.is_empty() {
        member.did.clone()
    } else {
        format!("{} ({})", member.name, member.did)
    }
}

fn when(ms: Option<u64>) -> String {
    match ms {
        None => "once enough guardians approve".to_owned(),
        Some(ms) => {
            let left = ms.saturating_sub(now().as_millis());
            let minutes = left.div_ceil(60_000);
            match minutes {
                0 => "now".to_owned(),
                1 => "in a minute".to_owned(),
                2..120 => format!("in {minutes} minutes"),
                _ => format!("in {:.1} hours", left as f64 / 3_600_000.0),
            }
        }
    }
}

pub fn show(context: &Context) -> Outcome {
    let status = status(context)?;
    context.print(&status, |status| {
        let mut lines = Vec::new();
        if let Some(request) = &status.this_device_request {
            lines.push(format!(
                "This device is waiting to recover {}.\nIts request: {request}\nGuardians approve it with: icnctl id approve-recovery {request}",
                named(&status.member)
            ));
            if status.this_device_cancelled {
                lines.push("This request was CANCELLED from one of the member's devices: this device can never recover with its key. If that was a mistake, start again in a new data directory (`icnctl --data-dir NEW id recover …`).".to_owned());
            }
            if let Some(pending) = status.of_you.iter().find(|pending| &pending.request == request) {
                lines.push(format!(
                    "Approved so far by {} ({} of {} needed); this device takes over {}.",
                    pending.approved_by.iter().map(named).collect::<Vec<_>>().join(", "),
                    pending.approved_by.len(),
                    pending.needed,
                    when(pending.ready_at_ms)
                ));
            }
        }
        if status.guardians.is_empty() && status.this_device_request.is_some() {
            lines.push("This device learns who your guardians are once one of them has approved and it has synced with their node.".to_owned());
        } else if status.guardians.is_empty() {
            lines.push("You have no guardians yet: icnd names the members who vouched for you once there are two, or name them with `icnctl id guardians NAME NAME NAME`.".to_owned());
        } else {
            lines.push(format!(
                "Your guardians ({} must approve a new device; it takes over {} hours later unless you cancel):",
                status.threshold, status.delay_hours
            ));
            lines.extend(status.guardians.iter().map(|guardian| format!("  {}", named(guardian))));
        }
        if let Some(guardian) = &status.frozen_by {
            lines.push(format!(
                "Your identity is FROZEN by {}: ask them to unfreeze it (`icnctl id unfreeze`), or recover it on a new device.",
                named(guardian)
            ));
        }
        // On the recovering device, its own request is not a threat.
        for pending in status
            .of_you
            .iter()
            .filter(|pending| Some(&pending.request) != status.this_device_request.as_ref())
        {
            lines.push(format!(
                "A recovery of YOUR identity to a new key is under way: approved by {} of {} needed, takes over {}.\n  If you did not ask for it: icnctl id cancel-recovery {}",
                pending.approved_by.len(),
                pending.needed,
                when(pending.ready_at_ms),
                pending.request
            ));
        }
        for pending in &status.you_guard {
            let approved = if pending.approved_by_you {
                "you approved it".to_owned()
            } else if pending.approved_by.len() >= usize::from(pending.needed) {
                format!("enough guardians approved; the new device takes over {}", when(pending.ready_at_ms))
            } else {
                format!("approve it with: icnctl id approve-recovery {}", pending.request)
            };
            lines.push(format!(
                "{} is recovering to a new device: {} of {} approvals; {approved}",
                named(&pending.member),
                pending.approved_by.len(),
                pending.needed
            ));
        }
        if !status.guarding.is_empty() {
            lines.push(format!(
                "You are a guardian of: {}",
                status.guarding.iter().map(named).collect::<Vec<_>>().join(", ")
            ));
        }
        lines.join("\n")
    });
    Ok(())
}

pub fn set_guardians(
    context: &Context,
    guardians: Vec<String>,
    threshold: Option<u8>,
    delay_hours: Option<f64>,
) -> Outcome {
    if guardians.is_empty() && threshold.is_none() && delay_hours.is_none() {
        return show(context);
    }
    let request = icn_api::SetGuardians {
        guardians,
        threshold,
        delay_hours,
    };
    let ack = sign(
        context,
        "/admin/v1/identity/recovery/guardians",
        &request,
        Node::set_guardians,
    )?;
    context.print(&ack, |_| {
        "Guardians set. `icnctl id guardians` shows them, how many must approve and the waiting time."
            .to_owned()
    });
    Ok(())
}

pub fn approve(context: &Context, request: String) -> Outcome {
    let request = icn_api::RecoveryRequest { request };
    let (member, _) = recovery::parse_request(&request.request)?;
    let ack = sign(
        context,
        "/admin/v1/identity/recovery/approve",
        &request,
        Node::approve_recovery,
    )?;
    context.print(&ack, |ack| {
        format!(
            "Approved the recovery of {member} to that new device (event {}). Approve only if you have confirmed it is really them, in person or by a call. `icnctl id recovery` shows how many have approved.",
            ack.event_id
        )
    });
    Ok(())
}

pub fn cancel(context: &Context, request: String) -> Outcome {
    let request = icn_api::RecoveryRequest { request };
    let ack = sign(
        context,
        "/admin/v1/identity/recovery/cancel",
        &request,
        Node::cancel_recovery,
    )?;
    context.print(&ack, |ack| {
        format!(
            "Cancelled: that key can never take over your identity (event {}). If someone has your device, ask a guardian to freeze your identity and recover it to a new device.",
            ack.event_id
        )
    });
    Ok(())
}

pub fn freeze(context: &Context, member: String, frozen: bool) -> Outcome {
    let request = icn_api::FreezeMember { member };
    let (path, action): (_, fn(&mut Node, &_, _) -> _) = if frozen {
        ("/admin/v1/identity/recovery/freeze", Node::freeze_member)
    } else {
        (
            "/admin/v1/identity/recovery/unfreeze",
            Node::unfreeze_member,
        )
    };
    let ack = sign(context, path, &request, action)?;
    context.print(&ack, |ack| {
        if frozen {
            format!(
                "Froze {}'s identity (event {}): nothing it signs counts until a guardian unfreezes it or a recovery gives it a new key.",
                request.member, ack.event_id
            )
        } else {
            format!("Unfroze {} (event {}).", request.member, ack.event_id)
        }
    });
    Ok(())
}

/// On a new device: an identity for the member with a new key, the co-op
/// from the guardian's node, and the request for the guardians.
pub fn recover(context: &Context, ticket: &str, member: &str) -> Outcome {
    crate::no_identity_yet(
        context,
        "recover into a new data directory (--data-dir), on the new device",
    )?;
    let member: Did = member.trim().parse().map_err(|_| {
        Failure::new(
            format!("{member:?} is not a DID"),
            Some("a guardian prints the whole command with `icnctl coop invite --recover \"Your Name\"`"),
        )
    })?;
    let ticket_parsed = icn_node::net::Ticket::parse(ticket).map_err(|message| {
        Failure::new(message, Some("copy the ticket again from the guardian"))
    })?;
    let arrival = icn_node::setup::Arrival::Recover {
        key: KeyPair::generate()?,
    };
    let genesis = genesis_from(&ticket_parsed, arrival.network_key())?;
    let passphrase = context.passphrase("Choose a keystore passphrase for this device: ", true)?;
    set_up_device(context, member, &arrival, &passphrase, genesis, ticket)?;
    let key = arrival.network_key();
    let request = recovery::encode_request(&member, &key.public());
    let shown = icn_api::RecoveryRequest { request };
    context.print(&shown, |shown| {
        format!(
            "This device asks to recover {member}.\n\nYour recovery request:\n\n    {}\n\nSend it to your guardians (the members you chose, or, if you never did, those icnd chose: the members who vouched for you first); each runs:\n    icnctl id approve-recovery {}\nor approves it in the web app (Members → Recovery).\nNow start icnd here and leave it running. Once enough guardians have approved and the waiting time you chose has passed (72 hours unless you changed it; 4 hours after the last approval when every guardian approved), this device takes over your identity: your balance, membership and votes are all still there. `icnctl id recovery` shows progress.",
            shown.request, shown.request
        )
    });
    Ok(())
}

/// A new device's data directory: its keystore, identity.json, the
/// co-op's genesis, and the ticket's node to sync with (as the set-up page
/// does, `icn_node::setup::write_device` and `Node::arrive`).
pub fn set_up_device(
    context: &Context,
    member: Did,
    arrival: &icn_node::setup::Arrival,
    passphrase: &str,
    genesis: icn_kernel::VerifiedEvent,
    ticket: &str,
) -> Result<(), Failure> {
    icn_node::setup::write_device(
        &context.dir,
        member,
        arrival,
        passphrase,
        passphrase::kdf_log_n(),
    )?;
    // Opened without its keys: none signs before icnd runs with them.
    let mut node = Node::open(context.dir.clone(), Vec::new(), &icn_node::modules())?;
    node.arrive(genesis, ticket.trim(), arrival.is_link(), Vec::new())?;
    Ok(())
}

/// The co-op's genesis, from the node a ticket names (for a new device).
pub fn genesis_from(
    ticket: &icn_node::net::Ticket,
    key: &KeyPair,
) -> Result<icn_kernel::VerifiedEvent, Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime
        .block_on(icn_node::join::fetch_genesis(ticket, &key.seed()))
        .map_err(|error| {
            Failure::new(
                format!("could not reach the member's node: {error:#}"),
                Some("check that their icnd runs and that this computer can reach it; then run this again"),
            )
        })?
        .verify()
        .map_err(|_| Failure::new("the co-op's genesis is not validly signed", None))
}

/// What a guardian gives the member who lost their device.
pub fn invite(context: &Context, member: &str) -> Outcome {
    let members: icn_api::Members =
        context.daemon_or_local("GET", "/admin/v1/members", None, || {
            Ok(context.open_node(false)?.members()?)
        })?;
    let wanted = member.trim();
    let found = members
        .members
        .iter()
        .find(|candidate| candidate.did == wanted || candidate.name.eq_ignore_ascii_case(wanted))
        .ok_or_else(|| {
            Failure::new(
                format!("no member is called {wanted:?}"),
                Some("`icnctl member list` shows names and DIDs"),
            )
        })?;
    let ticket: icn_api::NetTicket =
        context.daemon_or_local("GET", "/admin/v1/net/ticket", None, || {
            Err(Failure::new(
                "icnd is not running: the new device reaches the co-op through it",
                Some("start it with `icnd`, then run this again"),
            ))
        })?;
    let command = format!("icnctl id recover {} --member {}", ticket.ticket, found.did);
    context.print(&command, |command| {
        format!(
            "Give {} this command to run on their new device (after installing ICN):\n\n    {command}\n\nIt prints a recovery request; you and their other guardians approve it with `icnctl id approve-recovery <request>`.\nThe new device must reach this node at the ticket's address: from a laptop at home, run this on the co-op's always-on node instead.",
            if found.name.is_empty() { &found.did } else { &found.name }
        )
    });
    Ok(())
}
