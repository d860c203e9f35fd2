//! A member's devices from the command line: `icnctl id add-device` (on a
//! device that signs), `id link` (on the new device, with that code or a
//! paper key) and `id take-over` (make this device the one that signs).
//! A member's events form one chain, so one device signs at a time; the
//! others follow (see `Node::other_device_signing`).

use icn_identity::{Did, paper_key_decode};
use icn_node::{node::now, passphrase};

use crate::{Context, Failure, Outcome, json};

/// On a device that signs: a key for another device, as a one-time code.
pub fn add(context: &Context, label: &str) -> Outcome {
    let request = icn_api::AddDevice {
        label: label.to_owned(),
    };
    let key =
        context.daemon_or_local("POST", "/admin/v1/identity/device", json(&request), || {
            Ok(icn_node::ops::paper_key(
                context.open_node(true)?.add_device(label, now())?,
            ))
        })?;
    let did = context.dir.public_identity().ok().flatten().map_or_else(
        || "<your DID>".to_owned(),
        |identity| identity.did.to_string(),
    );
    let ticket: Option<icn_api::NetTicket> = context
        .daemon_or_local("GET", "/admin/v1/net/ticket", None, || {
            Err(Failure::new("icnd is not running", None))
        })
        .ok();
    let ticket = ticket.map_or_else(
        || "<ticket: `icnctl net ticket` where icnd runs>".to_owned(),
        |ticket| ticket.ticket,
    );
    context.print(&key, |key| {
        format!(
            "A code for {label:?} (it signs for you from now on: keep it secret, and use it once):\n\n    {}\n\nOn that device, after installing ICN, run\n\n    icnctl id link {ticket} --member {did}\n\nand type the code when asked. The device that signs last is the one that signs: this one then only follows until you run `icnctl id take-over` here. If the code is lost before it is used: icnctl id revoke {}",
            key.paper_key, key.public_key
        )
    });
    Ok(())
}

/// On a new device: sign for an identity with a device code or a paper key.
pub fn link(context: &Context, ticket: &str, member: &str) -> Outcome {
    crate::no_identity_yet(
        context,
        "link into a new data directory (--data-dir), on the new device",
    )?;
    let member: Did = member.trim().parse().map_err(|_| {
        Failure::new(
            format!("{member:?} is not a DID"),
            Some("`icnctl id show` on your other device, or `icnctl member list` on any member's, shows it"),
        )
    })?;
    let ticket_parsed = icn_node::net::Ticket::parse(ticket)
        .map_err(|message| Failure::new(message, Some("copy the ticket again")))?;
    let secret = passphrase::secret("Paper key or device code: ")?;
    let key = paper_key_decode(secret.trim()).map_err(|error| {
        Failure::new(
            format!("that is not a paper key or device code: {error}"),
            Some("type it exactly as printed, words separated by spaces"),
        )
    })?;
    let device_key = key.public();
    // Kept beside the linked key: a paper key is replaced by this one as
    // soon as the device signs (a paper key is for one use).
    let arrival = icn_node::setup::Arrival::Link {
        own: Box::new(icn_identity::KeyPair::generate()?),
        key,
    };
    let genesis = crate::recovery::genesis_from(&ticket_parsed, arrival.network_key())?;
    let passphrase = context.passphrase("Choose a keystore passphrase for this device: ", true)?;
    crate::recovery::set_up_device(context, member, &arrival, &passphrase, genesis, ticket)?;
    let label = "linked device";
    context.print(&icn_api::Identity {
        did: member.to_string(),
        device_key: device_key.to_string(),
        device_label: label.to_owned(),
    }, |_| {
        format!(
            "This device is linked to {member}.\nStart icnd here and leave it running: once it has synced with most members' nodes it signs for you (`icnctl doctor` shows how far it is), and your other devices only follow until you run `icnctl id take-over` on one of them. A paper key is replaced by this device's own key as soon as it signs: write a new one with `icnctl id paper-key`."
        )
    });
    Ok(())
}

/// Makes this device the one that signs.
pub fn take_over(context: &Context) -> Outcome {
    let _: serde_json::Value =
        context.daemon_or_local("POST", "/admin/v1/identity/take-over", None, || {
            context.open_node(true)?.take_over()?;
            Ok(serde_json::json!({ "taking_over": true }))
        })?;
    context.print(&serde_json::json!({ "taking_over": true }), |_: &serde_json::Value| {
        "This device signs for you again once it has synced with most members' nodes (`icnctl doctor` shows how far it is); your other devices then only follow.".to_owned()
    });
    Ok(())
}
