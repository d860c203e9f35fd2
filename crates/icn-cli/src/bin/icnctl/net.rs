//! `icnctl peers`, `icnctl net ticket` and `icnctl coop join`: replication
//! runs inside icnd, so these ask the running daemon.

use clap::Subcommand;

use crate::{Context, Failure, Outcome, json};

#[derive(Subcommand)]
pub enum NetCommand {
    /// Print this node's ticket: what another member pastes into
    /// `icnctl coop join` or their `bootstrap_peers`.
    Ticket,
}

fn needs_daemon<T>() -> Result<T, Failure> {
    Err(Failure::new(
        "icnd is not running: replication runs inside it",
        Some("start it with `icnd` (in another terminal, or as a service), then run this again"),
    ))
}

pub fn run(context: &Context, command: NetCommand) -> Outcome {
    match command {
        NetCommand::Ticket => {
            let ticket: icn_api::NetTicket =
                context.daemon_or_local("GET", "/admin/v1/net/ticket", None, needs_daemon)?;
            context.print(&ticket, |ticket| {
                let relay = match &ticket.relay {
                    Some(url) => format!("through the co-op relay {url}"),
                    None => "no relay (peers must reach an address directly)".to_owned(),
                };
                format!(
                    "{}\nReaches this node at {} and {relay}.\nOther members join with: icnctl coop join <this ticket>",
                    ticket.ticket,
                    if ticket.addresses.is_empty() { "no address".to_owned() } else { ticket.addresses.join(", ") },
                )
            });
            Ok(())
        }
    }
}

pub fn peers(context: &Context) -> Outcome {
    let peers: icn_api::Peers =
        context.daemon_or_local("GET", "/admin/v1/peers", None, needs_daemon)?;
    context.print(&peers, |peers| {
        let mut lines = Vec::new();
        if peers.peers.is_empty() {
            lines.push("No peers connected.".to_owned());
        }
        for peer in &peers.peers {
            let rtt = peer
                .rtt_ms
                .map(|rtt| format!(", {rtt:.1} ms"))
                .unwrap_or_default();
            lines.push(format!(
                "{}  {} ({}{rtt}), {} for {} s, {} rate; events sent {}, received {}",
                peer.did,
                peer.path,
                peer.address.as_deref().unwrap_or("-"),
                if peer.direction == "out" { "dialled" } else { "accepted" },
                peer.connected_seconds,
                peer.rate_class,
                peer.events_sent,
                peer.events_received
            ));
        }
        let m = &peers.metrics;
        lines.push(format!(
            "Totals: {} events sent, {} received ({} new), {} sync rounds, {} bytes out, {} in; refused {} connections, {} bad frames, {} forged events, {} rate-limited",
            m.events_sent,
            m.events_received,
            m.events_accepted,
            m.sync_rounds,
            m.bytes_sent,
            m.bytes_received,
            m.connections_refused,
            m.frames_malformed,
            m.events_forged,
            m.frames_rate_limited
        ));
        lines.join("\n")
    });
    Ok(())
}

pub fn join(context: &Context, ticket: &str, name: Option<String>, note: String) -> Outcome {
    let request = icn_api::JoinCoop {
        ticket: ticket.trim().to_owned(),
        name,
        note,
    };
    let status: icn_api::Status =
        context.daemon_or_local("POST", "/admin/v1/coop/join", json(&request), needs_daemon)?;
    let applied = request.name.is_some();
    context.print(&status, |status| match &status.coop {
        Some(coop) if coop.founders.iter().any(|founder| Some(founder) == status.did.as_ref()) => format!(
            "Joined {:?}. Your node now syncs with the member whose ticket you used; `icnctl peers` shows it.",
            coop.name
        ),
        Some(coop) if applied => format!(
            "Applied to join {:?}. Members vouch for you (`icnctl member vouch <your name>` on their machines); once enough have, you are admitted and your node starts to sync.",
            coop.name
        ),
        Some(coop) => format!(
            "Joined {:?}, but you are not a member of it yet; apply with `icnctl coop join <ticket> --name \"Your Name\"`.",
            coop.name
        ),
        None => "Joined.".to_owned(),
    });
    Ok(())
}

/// The ticket, as text and as a QR code, with what the newcomer does.
pub fn invite(context: &Context) -> Outcome {
    let ticket: icn_api::NetTicket =
        context.daemon_or_local("GET", "/admin/v1/net/ticket", None, needs_daemon)?;
    context.print(&ticket, |ticket| {
        let qr = qrcode::QrCode::new(ticket.ticket.as_bytes())
            .map(|code| {
                code.render::<qrcode::render::unicode::Dense1x2>()
                    .quiet_zone(true)
                    .build()
            })
            .unwrap_or_default();
        format!(
            "{qr}\n{}\n\nOn the new member's computer:\n  1. icnctl id init\n  2. icnd   (leave it running)\n  3. icnctl web open, open the link, and paste this invitation there\n     (or: icnctl coop join {} --name \"Their Name\")\nThen two members vouch for them, in the web app or with: icnctl member vouch \"Their Name\"",
            ticket.ticket, ticket.ticket
        )
    });
    Ok(())
}
