//! What an admin watches: `icnctl doctor` (the common problems, each with
//! its fix) and the Prometheus metrics (`icnd --metrics-bind`).

use crate::prelude::*;
use std::{fmt::Write, path::Path, time::SystemTime};

use icn_api::{Check, Doctor};

use crate::{DataDir, Node, http::SharedState, node::now};

/// A backup older than this is overdue (the daily one failed twice).
const BACKUP_OVERDUE_S: u64 = 2 * 86_400;
/// Peers' newest events this far ahead of our clock mean ours is behind.
const CLOCK_SKEW_MS: u64 = 2 * 60_000;
/// Less free space than this, or than this share of the disk, is too little.
const DISK_LOW_BYTES: u64 = 1 << 30;
const DISK_LOW_PERCENT: u64 = 5;

fn check(name: &str, status: &str, message: impl Into<String>, fix: Option<&str>) -> Check {
    Check {
        name: name.to_owned(),
        status: status.to_owned(),
        message: message.into(),
        fix: fix.map(str::to_owned),
    }
}

/// The newest scheduled or manual backup in `dir`: its age in seconds.
fn newest_backup_age(dir: &Path) -> Option<u64> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let is_backup = entry
                .path()
                .extension()
                .is_some_and(|ext| ext == crate::backup::EXTENSION);
            is_backup.then(|| entry.metadata().ok()?.modified().ok())?
        })
        .max()
        .and_then(|newest| SystemTime::now().duration_since(newest).ok())
        .map(|age| age.as_secs())
}

/// Free bytes and the free share (percent) of the disk holding `path`.
fn disk_free(path: &Path) -> Option<(u64, u64)> {
    let stats = rustix::fs::statvfs(path).ok()?;
    let free = stats.f_bavail.saturating_mul(stats.f_frsize);
    let total = stats.f_blocks.saturating_mul(stats.f_frsize).max(1);
    Some((free, free.saturating_mul(100) / total))
}

/// The checks that need only the data directory (and the node, if open).
pub fn local_checks(dir: &DataDir, node: Option<&Node>, backups: &Path) -> Vec<Check> {
    let mut checks = Vec::new();
    match node.and_then(Node::identity) {
        Some(identity) => checks.push(check("identity", "ok", identity.did.to_string(), None)),
        None => {
            checks.push(check(
                "identity",
                "fail",
                "this data directory has no identity",
                Some("icnctl id init"),
            ));
            return checks;
        }
    }
    match node.map(|node| node.status(false, None).coop) {
        Some(Some(coop)) => checks.push(check("coop", "ok", coop.name, None)),
        _ => checks.push(check(
            "coop",
            "fail",
            "this node has not founded or joined a co-op",
            Some(
                "icnctl coop join <invitation> --name \"Your Name\" (or icnctl coop init \"Name\")",
            ),
        )),
    }
    match disk_free(dir.root()) {
        Some((free, percent)) if free < DISK_LOW_BYTES || percent < DISK_LOW_PERCENT => {
            checks.push(check(
                "disk",
                "fail",
                format!(
                    "{} MiB free ({percent}%) where the data directory is",
                    free >> 20
                ),
                Some("free some space: the node stops saving events when the disk is full"),
            ));
        }
        Some((free, percent)) => checks.push(check(
            "disk",
            "ok",
            format!("{} MiB free ({percent}%)", free >> 20),
            None,
        )),
        None => checks.push(check("disk", "warn", "cannot read the free space", None)),
    }
    match newest_backup_age(backups) {
        Some(age) if age > BACKUP_OVERDUE_S => checks.push(check(
            "backup",
            "warn",
            format!(
                "the newest backup in {} is {} days old",
                backups.display(),
                age / 86_400
            ),
            Some("keep icnd running (it backs up daily), or run icnctl backup --to FILE"),
        )),
        Some(age) => checks.push(check(
            "backup",
            "ok",
            format!("newest {} h old in {}", age / 3600, backups.display()),
            None,
        )),
        None => checks.push(check(
            "backup",
            "warn",
            format!("no backup in {}", backups.display()),
            Some("icnctl backup --to FILE (icnd also writes one a day)"),
        )),
    }
    if let Some(node) = node {
        if node.awaiting_sync() {
            checks.push(check(
                "sync",
                "warn",
                format!(
                    "signs nothing until it has synced with {} members' nodes ({} so far): restored from a backup, linked, or taking over from another device",
                    node.witnesses_needed(),
                    node.witnesses()
                ),
                Some("keep icnd running while members' nodes are reachable (icnd --peer TICKET)"),
            ));
        }
        if let Some(label) = node.other_device_signing() {
            checks.push(check(
                "device",
                "warn",
                format!(
                    "another of your devices ({label}) signs for you now; this one only follows"
                ),
                Some("icnctl id take-over (to sign from this device)"),
            ));
        }
        // A fork's freeze (a guardian's has its own check, `recovery`).
        if let Some(me) = node.identity().map(|identity| identity.did)
            && node.log().is_some_and(|log| log.frozen(&me).is_none())
            && let Ok(balance) = node.balance(&me)
            && balance.accounts.iter().any(|account| account.frozen)
        {
            checks.push(check(
                "ledger",
                "fail",
                "your account is frozen: two different entries were signed as yours at one position \
                 (a copy of this data directory, an old backup restored, or a stolen key); \
                 the co-op's branch counts, but you cannot pay until the co-op lifts the freeze",
                Some("ask a member to propose it: icnctl governance propose --unfreeze YOUR-NAME; if your key may be stolen, revoke it (icnctl id revoke)"),
            ));
        }
        if let Some(log) = node.log() {
            let me = node.identity().map(|identity| identity.did);
            let newest = log
                .heads()
                .iter()
                .filter(|(author, _)| Some(**author) != me)
                .filter_map(|(_, (_, id))| log.get(id))
                .map(|event| event.timestamp().as_millis())
                .max();
            let clock = now().as_millis();
            match newest {
                Some(newest) if newest > clock + CLOCK_SKEW_MS => checks.push(check(
                    "clock",
                    "fail",
                    format!(
                        "members' events are up to {} s ahead of this computer's clock",
                        (newest - clock) / 1000
                    ),
                    Some("turn on network time (timedatectl set-ntp true); a slow clock delays your payments"),
                )),
                _ => checks.push(check("clock", "ok", "no member's event is from the future", None)),
            }
        }
    }
    checks
}

/// How long a node may be cut off, holding entries no one else has,
/// before `doctor` fails rather than warns: 5 minutes
/// (`ICN_DOCTOR_ISOLATED_AFTER_S` overrides it, for tests).
fn isolated_after_s() -> u64 {
    std::env::var("ICN_DOCTOR_ISOLATED_AFTER_S")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(300)
}

/// Every check, from inside the running daemon.
pub fn doctor(state: &SharedState, backups: &Path) -> Doctor {
    let node = state.node.lock().unwrap_or_else(|e| e.into_inner());
    let mut checks = vec![check("daemon", "ok", "icnd is running", None)];
    checks.extend(local_checks(node.data_dir(), Some(&node), backups));
    let members = node.members().map(|m| m.members.len()).unwrap_or(0);
    if let Ok(recovery) = node.recovery_status() {
        checks.push(recovery_check(&recovery, members));
    }
    let (last_round, unsent) = node.unsent_since();
    drop(node);
    match state.net() {
        None => checks.push(check(
            "peers",
            "fail",
            "this node is not replicating",
            Some("icnd needs its passphrase to network: ICN_KEYSTORE_PASSPHRASE or --passphrase-file"),
        )),
        Some(net) => {
            let peers = net.peers();
            match (peers.peers.len(), members) {
                (0, 0 | 1) => checks.push(check("peers", "ok", "no other member yet", None)),
                (0, _) => {
                    let alone_s =
                        crate::node::now().as_millis().saturating_sub(last_round.as_millis()) / 1000;
                    let fix = "start the always-on node, or add its ticket: icnd --peer TICKET (icnctl net ticket on that machine); `icnctl peers` shows who is connected";
                    checks.push(if unsent > 0 && alone_s >= isolated_after_s() {
                        check(
                            "peers",
                            "fail",
                            format!(
                                "no member's node has been reachable for {} min, and {unsent} of your entries are on this node only",
                                alone_s / 60
                            ),
                            Some(fix),
                        )
                    } else {
                        check(
                            "peers",
                            "warn",
                            "no member's node is connected: payments and votes wait here",
                            Some(fix),
                        )
                    });
                }
                (connected, _) => {
                    checks.push(check("peers", "ok", format!("{connected} connected"), None))
                }
            }
            for relay in net.known_relays() {
                let reachable = relay_reachable(&relay.url);
                checks.push(match reachable {
                    Ok(()) => check("relay", "ok", format!("{} answers", relay.url), None),
                    Err(error) => check(
                        "relay",
                        "warn",
                        format!("{} does not answer: {error}", relay.url),
                        Some("check that the always-on node runs icnd --relay-enable and that its TCP port is open to members"),
                    ),
                });
            }
        }
    }
    Doctor { checks }
}

/// Whether this member could be recovered, and recoveries that need them.
fn recovery_check(recovery: &icn_api::RecoveryStatus, members: usize) -> Check {
    if recovery.this_device_cancelled {
        return check(
            "recovery",
            "fail",
            "this device's recovery request was cancelled from one of the member's devices",
            Some(
                "if that was a mistake, recover again into a new data directory (icnctl --data-dir NEW id recover …)",
            ),
        );
    }
    if let Some(request) = &recovery.this_device_request {
        let approved = recovery
            .of_you
            .iter()
            .find(|pending| &pending.request == request);
        let progress = match approved {
            None => "no guardian's approval has reached it yet".to_owned(),
            Some(pending) => format!(
                "{} of {} guardians' approvals",
                pending.approved_by.len(),
                pending.needed
            ),
        };
        return check(
            "recovery",
            "warn",
            format!(
                "this device waits to recover {}: {progress}",
                recovery.member.did
            ),
            Some(&format!(
                "ask your guardians to run: icnctl id approve-recovery {request}"
            )),
        );
    }
    if let Some(guardian) = &recovery.frozen_by {
        return check(
            "recovery",
            "fail",
            format!(
                "your identity is frozen by your guardian {}: nothing you sign counts",
                if guardian.name.is_empty() {
                    &guardian.did
                } else {
                    &guardian.name
                }
            ),
            Some("if it is really you, ask them to run icnctl id unfreeze with your name"),
        );
    }
    if let Some(pending) = recovery.of_you.first() {
        return check(
            "recovery",
            "fail",
            "a recovery of your identity to another device is under way",
            Some(&format!(
                "if you did not ask for it: icnctl id cancel-recovery {}",
                pending.request
            )),
        );
    }
    if recovery.guardians.is_empty() {
        return match members {
            0..=2 => check(
                "recovery",
                "ok",
                "no guardians yet (icnd names them once the co-op has three members)",
                None,
            ),
            _ => check(
                "recovery",
                "warn",
                "you have no guardians: a lost laptop could not be recovered",
                Some("name them: icnctl id guardians NAME NAME NAME"),
            ),
        };
    }
    check(
        "recovery",
        "ok",
        format!(
            "{} guardians, {} must approve a new device",
            recovery.guardians.len(),
            recovery.threshold
        ),
        None,
    )
}

/// Whether the relay's host accepts a TCP connection on its port.
fn relay_reachable(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .ok_or("not an https URL")?
        .trim_end_matches('/');
    let authority = rest.split('/').next().unwrap_or(rest);
    let address = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:443")
    };
    let addrs = std::net::ToSocketAddrs::to_socket_addrs(&address).map_err(|e| e.to_string())?;
    let mut last = String::from("no address");
    for addr in addrs {
        match std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(3)) {
            Ok(_) => return Ok(()),
            Err(error) => last = error.to_string(),
        }
    }
    Err(last)
}

/// The Prometheus text exposition of this node's state.
pub fn metrics(state: &SharedState) -> String {
    let (status, totals, open) = {
        let node = state.node.lock().unwrap_or_else(|e| e.into_inner());
        let open = node
            .proposals()
            .map(|p| p.proposals.iter().filter(|p| p.status == "open").count())
            .unwrap_or(0);
        (node.status(true, None), node.totals().ok(), open as u64)
    };
    let net = state.net();
    let peers = net.as_ref().map(|net| net.peers());
    let relayed = net.as_ref().map(|net| net.relayed_sessions());
    let relay = net.as_ref().and_then(|net| net.relay_stats());
    // (name, type, help, value) of each metric without labels.
    let mut plain: Vec<(&str, &str, &str, u64)> = vec![
        (
            "icn_events",
            "gauge",
            "Events that count in this node's log.",
            status.events,
        ),
        (
            "icn_events_pending",
            "gauge",
            "Events waiting for a missing event or their time.",
            status.events_pending,
        ),
        (
            "icn_equivocations",
            "gauge",
            "Proven equivocations (forked chains).",
            status.equivocations,
        ),
        (
            "icn_uptime_seconds",
            "counter",
            "Seconds since icnd started.",
            state.started.elapsed().as_secs(),
        ),
        (
            "governance_proposals_open",
            "gauge",
            "Proposals open for votes.",
            open,
        ),
    ];
    if let Some(totals) = &totals {
        plain.push((
            "ledger_conflicts_detected_total",
            "counter",
            "Forks proven in members' ledger chains.",
            totals.conflicts,
        ));
        plain.push((
            "ledger_quarantined_total",
            "counter",
            "Peers' events kept but refused by a rule.",
            totals.quarantined,
        ));
    }
    if let Some(peers) = &peers {
        let m = &peers.metrics;
        plain.extend([
            (
                "network_sessions_active",
                "gauge",
                "Members' nodes connected.",
                peers.peers.len() as u64,
            ),
            (
                "network_sessions_relayed",
                "gauge",
                "Of those, sessions on a relayed path now.",
                relayed.unwrap_or(0),
            ),
            (
                "network_connections_accepted_total",
                "counter",
                "Connections accepted.",
                m.connections_accepted,
            ),
            (
                "network_connections_refused_total",
                "counter",
                "Connections refused (not members).",
                m.connections_refused,
            ),
            (
                "network_events_sent_total",
                "counter",
                "Events sent to peers.",
                m.events_sent,
            ),
            (
                "network_events_received_total",
                "counter",
                "Events received from peers.",
                m.events_received,
            ),
            (
                "network_events_accepted_total",
                "counter",
                "Received events that were new and valid.",
                m.events_accepted,
            ),
            (
                "network_sync_rounds_total",
                "counter",
                "Sync rounds started.",
                m.sync_rounds,
            ),
            (
                "network_bytes_sent_total",
                "counter",
                "Bytes sent.",
                m.bytes_sent,
            ),
            (
                "network_bytes_received_total",
                "counter",
                "Bytes received.",
                m.bytes_received,
            ),
            (
                "network_frames_malformed_total",
                "counter",
                "Malformed frames (connection closed).",
                m.frames_malformed,
            ),
            (
                "network_events_forged_total",
                "counter",
                "Events with bad signatures (connection closed).",
                m.events_forged,
            ),
            (
                "network_frames_rate_limited_total",
                "counter",
                "Peers over their rate (connection closed).",
                m.frames_rate_limited,
            ),
            (
                "network_pushes_dropped_total",
                "counter",
                "Pushes dropped for slow peers (sync carries them).",
                m.pushes_dropped,
            ),
            (
                "network_requests_failed_total",
                "counter",
                "Requests on modules' protocols (joining) that failed or were refused.",
                m.requests_failed,
            ),
            (
                "network_replication_lag_ms",
                "gauge",
                "How far behind peers this node's newest event is.",
                m.replication_lag_ms,
            ),
        ]);
    }
    if let Some(relay) = relay {
        plain.extend([
            (
                "relay_bytes_sent_total",
                "counter",
                "Bytes the co-op relay this node runs has sent to clients.",
                relay.bytes_sent,
            ),
            (
                "relay_bytes_received_total",
                "counter",
                "Bytes the co-op relay this node runs has received from clients.",
                relay.bytes_received,
            ),
            (
                "relay_clients",
                "gauge",
                "Members' nodes connected to the relay now.",
                relay.clients,
            ),
            (
                "relay_clients_seen_total",
                "counter",
                "Distinct members' node keys the relay has served.",
                relay.clients_total,
            ),
        ]);
    }
    let mut out = String::new();
    for (name, kind, help, value) in plain {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
    // Per currency.
    type Field = fn(&icn_api::CurrencyTotals) -> i64;
    let per_currency: [(&str, &str, &str, Field); 6] = [
        (
            "ledger_balance_sum",
            "gauge",
            "All balances added up; 0 unless something is wrong.",
            |c| c.balance_sum,
        ),
        (
            "ledger_transfers_total",
            "counter",
            "Transfers counted.",
            |c| c.transfers as i64,
        ),
        (
            "ledger_volume_total",
            "counter",
            "Amount moved, in the smallest unit.",
            |c| c.volume as i64,
        ),
        (
            "ledger_commons_balance",
            "gauge",
            "The commons account.",
            |c| c.commons,
        ),
        (
            "ledger_members_near_floor",
            "gauge",
            "Members within a tenth of their floor.",
            |c| c.near_floor.len() as i64,
        ),
        ("ledger_members_frozen", "gauge", "Frozen accounts.", |c| {
            c.frozen.len() as i64
        }),
    ];
    if let Some(totals) = &totals {
        for (name, kind, help, field) in per_currency {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for currency in &totals.currencies {
                let _ = writeln!(
                    out,
                    "{name}{{currency=\"{}\"}} {}",
                    currency.currency,
                    field(currency)
                );
            }
        }
    }
    out
}
