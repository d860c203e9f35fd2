//! The daemon's lifecycle: open the node, serve, tick, shut down cleanly.

use crate::prelude::*;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use icn_identity::KeyPair;
use tokio::sync::watch;

use crate::{
    config::{Config, DEFAULT_LISTEN},
    http::{AppState, SharedState, admin_router},
    layout::DataDir,
    net::{Net, NetOptions, RelayOptions},
    node::{Node, now},
};

/// How often events waiting for their timestamp are offered again.
const TICK_INTERVAL: Duration = Duration::from_secs(5);
/// How often the node checks whether today's scheduled backup is written.
/// (Modules' duties have their own cadences: `Module::duties`.)
const BACKUP_CHECK_INTERVAL: Duration = Duration::from_secs(60);

/// Tries to take the data directory this long, at most, while another
/// process (an `icnctl` command run a moment before) holds it.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// Opens the node, waiting briefly if an `icnctl` command holds the data
/// directory's lock (it does for the second or two a command takes when no
/// daemon runs); a second `icnd` keeps it longer and is reported after.
async fn open_when_free(dir: &DataDir, keys: Vec<KeyPair>) -> anyhow::Result<Node> {
    let started = std::time::Instant::now();
    let mut told = false;
    loop {
        let (dir, keys) = (dir.clone(), keys.clone());
        let opened = tokio::task::spawn_blocking(move || Node::open(dir, keys, &crate::modules()))
            .await
            .context("opening the node stopped unexpectedly")?;
        match opened {
            Err(crate::NodeError::Store(icn_store::StoreError::Locked { .. }))
                if started.elapsed() < LOCK_WAIT =>
            {
                if !told {
                    tracing::info!(
                        "The data directory is in use (an icnctl command?); waiting for it."
                    );
                    told = true;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            other => return Ok(other?),
        }
    }
}

/// Runs `icnd` until `shutdown` resolves. The admin socket is removed on exit.
/// Runs the node until `shutdown`. With `open_browser`, a node without an
/// identity opens its set-up page in the desktop's browser, if there is a
/// desktop session.
pub async fn run(
    config: Config,
    keys: Vec<KeyPair>,
    open_browser: bool,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let dir = DataDir::new(&config.data_dir);
    let node = open_when_free(&dir, keys).await?;
    let auth = crate::auth::Auth::load(&dir).context("setting up gateway tokens")?;
    let state = AppState::with_auth(node, auth);
    let (stop_sender, stop) = watch::channel(false);
    let stopped = |mut stop: watch::Receiver<bool>| async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    };

    // We hold the data directory's lock, so a socket file left here is stale.
    let socket_path = dir.root().join(icn_api::ADMIN_SOCKET_FILE);
    let _ = std::fs::remove_file(&socket_path);
    let admin_listener = tokio::net::UnixListener::bind(&socket_path)
        .with_context(|| format!("cannot create the admin socket {}", socket_path.display()))?;
    restrict_to_owner(&socket_path);
    let admin = tokio::spawn(
        axum::serve(admin_listener, admin_router(state.clone()))
            .with_graceful_shutdown(stopped(stop.clone()))
            .into_future(),
    );

    let mut gateway_address = None;
    let gateway = if config.gateway.enable {
        let listener = match tokio::net::TcpListener::bind(config.gateway.bind).await {
            // Another node on this machine has the default port: any will do,
            // and the address is printed below.
            Err(error)
                if config.gateway.bind == crate::config::DEFAULT_GATEWAY_BIND
                    && error.kind() == std::io::ErrorKind::AddrInUse =>
            {
                tracing::warn!(address = %config.gateway.bind, "The gateway's port is taken; using a free one.");
                tokio::net::TcpListener::bind((config.gateway.bind.ip(), 0)).await
            }
            bound => bound,
        }
        .with_context(|| {
            format!(
                "cannot listen on {} (is another program using it? pick another with --gateway-bind)",
                config.gateway.bind
            )
        })?;
        let bound = listener.local_addr()?;
        tracing::info!(address = %bound, "Gateway listening.");
        gateway_address = Some(bound);
        let _ = state.gateway_url.set(format!("http://{bound}"));
        let listener =
            crate::listener::CappedListener::new(listener, crate::listener::Limits::default());
        Some(tokio::spawn(
            axum::serve(
                listener,
                crate::gateway::router(state.clone(), &config.gateway)
                    .into_make_service_with_connect_info::<crate::listener::ClientAddr>(),
            )
            .with_graceful_shutdown(stopped(stop.clone()))
            .into_future(),
        ))
    } else {
        None
    };

    let backup_dir = config.backup.dir.clone().unwrap_or_else(|| dir.backups());
    let _ = state.backups.set(backup_dir.clone());
    let backups = config.backup.daily.then_some(backup_dir);
    let metrics = match config.metrics_bind {
        Some(bind) => {
            let listener = tokio::net::TcpListener::bind(bind)
                .await
                .with_context(|| format!("cannot serve metrics on {bind} (--metrics-bind)"))?;
            tracing::info!(address = %bind, "Metrics at /metrics.");
            let router = axum::Router::new()
                .route(
                    "/metrics",
                    axum::routing::get(
                        |axum::extract::State(state): axum::extract::State<SharedState>| async move {
                            (
                                [(
                                    axum::http::header::CONTENT_TYPE,
                                    "text/plain; version=0.0.4",
                                )],
                                crate::http::blocking(move || crate::health::metrics(&state))
                                    .await
                                    .unwrap_or_default(),
                            )
                        },
                    ),
                )
                .with_state(state.clone());
            Some(tokio::spawn(
                axum::serve(listener, router)
                    .with_graceful_shutdown(stopped(stop.clone()))
                    .into_future(),
            ))
        }
        None => None,
    };
    let ticker = {
        let state = state.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(TICK_INTERVAL);
            // Every module's duties, on their cadences; the first tick does
            // them all (a laptop that was asleep catches up).
            let modules = crate::http::on_node(&state, |node| node.modules().clone());
            let Ok(modules) = modules.await else { return };
            let scheduler = std::sync::Arc::new(std::sync::Mutex::new(modules.scheduler()));
            let mut backups_at = Instant::now();
            loop {
                tokio::select! {
                    _ = interval.tick() => {}
                    _ = stop.wait_for(|stopped| *stopped) => return,
                }
                let outer = state.clone();
                let state = state.clone();
                let backups = backups.clone();
                let scheduler = scheduler.clone();
                let backup_due = Instant::now() >= backups_at;
                if backup_due {
                    backups_at = Instant::now() + BACKUP_CHECK_INTERVAL;
                }
                let result = tokio::task::spawn_blocking(move || {
                    let mut node = state
                        .node
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    node.tick(now())?;
                    if !node.may_sign_unasked() {
                        // Duties sign: they wait until the node has caught
                        // up, and leave signing to the member's device
                        // that signs now.
                        return Ok(false);
                    }
                    if node.replace_paper_key(now())?.is_some() {
                        // Peers know this node by its key: start again
                        // with the new one.
                        return Ok(true);
                    }
                    let round = scheduler
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .run_due(&mut node, now(), Instant::now());
                    for (duty, error) in round.failed {
                        tracing::warn!(duty, %error, "A duty failed; will retry.");
                    }
                    if backup_due
                        && let Some(dir) = &backups
                        && let Some(path) = node.scheduled_backup(dir, now())?
                    {
                        tracing::info!(path = %path.display(), "Daily backup written.");
                    }
                    Ok::<_, crate::node::NodeError>(false)
                })
                .await;
                match result {
                    Ok(Err(error)) => tracing::warn!(%error, "Tick failed; will retry."),
                    Ok(Ok(true)) => restart_net(&outer).await,
                    _ => {}
                }
            }
        })
    };

    let _ = state.config.set(config.clone());
    start_net(&state, &config).await;
    let joining = {
        let (state, tickets) = (state.clone(), config.net.bootstrap_peers.clone());
        crate::http::blocking(move || join_from_peers(&state, &tickets))
            .await
            .unwrap_or(false)
    };

    let status = crate::http::on_node(&state, |node| node.status(true, Some(0))).await;
    if let Ok(status) = &status {
        match (&status.did, &status.coop) {
            (None, _) => {
                tracing::info!(data_dir = %status.data_dir, "Ready. No identity yet: set up in the web app (below), or run `icnctl id init`.")
            }
            (Some(did), None) if joining => {
                tracing::info!(%did, "Ready. No co-op yet: fetching it from the peer you named (--peer).")
            }
            (Some(did), None) => {
                tracing::info!(%did, "Ready. No co-op yet: found one with `icnctl coop init`, or join one with `icnctl coop join TICKET --name \"Your Name\"`.")
            }
            (Some(did), Some(coop)) => {
                tracing::info!(%did, coop = %coop.name, events = status.events, "Ready.")
            }
        }
    }
    match gateway_address {
        Some(address) => {
            println!(
                "icnd ready: admin socket {}, web app http://{address}/, API http://{address}/api/v1",
                socket_path.display()
            );
            let has_identity = status.as_ref().is_ok_and(|status| status.did.is_some());
            if has_identity {
                println!("Sign in to the web app with the link `icnctl web open` prints.");
            } else {
                println!(
                    "First start: open http://{address}/ in your browser to set up (your passphrase, then found, join or restore a co-op)."
                );
                if open_browser
                    && address.ip().is_loopback()
                    && open_in_browser(&format!("http://{address}/"))
                {
                    println!("(Opened it in your browser.)");
                }
                if !address.ip().is_loopback() {
                    // From another machine, the page asks for this code.
                    // Without a code (no randomness), only this machine
                    // can set up.
                    if let Ok(key) = icn_identity::KeyPair::generate() {
                        let code = key.public().to_string()[..8].to_owned();
                        println!(
                            "From another machine, the set-up page asks for this code: {code}"
                        );
                        let _ = state.setup_code.set(code);
                    }
                }
            }
        }
        None => println!("icnd ready: admin socket {}", socket_path.display()),
    }

    shutdown.await;
    tracing::info!("Shutting down.");
    let _ = stop_sender.send(true);
    state.stopping.send_replace(true);
    let _ = admin.await;
    if let Some(gateway) = gateway {
        let _ = gateway.await;
    }
    let _ = ticker.await;
    if let Some(metrics) = metrics {
        let _ = metrics.await;
    }
    if let Some(net) = state.set_net(None) {
        net.close().await;
    }
    let _ = std::fs::remove_file(&socket_path);
    // Dropping the state closes the database and releases the lock.
    drop(state);
    tracing::info!("Stopped.");
    Ok(())
}

/// Opens `url` in the desktop's browser when this process runs in a
/// desktop session (a display to show it on); says whether it tried.
fn open_in_browser(url: &str) -> bool {
    let desktop = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()));
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else if desktop {
        "xdg-open"
    } else {
        return false;
    };
    let opened = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    match opened {
        Ok(mut child) => {
            // Reaped when it exits, so it does not linger as a zombie.
            std::thread::spawn(move || child.wait());
            true
        }
        Err(_) => false,
    }
}

/// A node with an identity but no co-op, started with `--peer TICKET`:
/// fetches the co-op from that peer. A founder named in its genesis is a
/// member already and starts replicating; anyone else is told how to apply
/// (an application needs a name). Returns whether it is trying.
fn join_from_peers(state: &SharedState, tickets: &[String]) -> bool {
    if state.net().is_none() {
        return false;
    }
    let (has_coop, me, seed) = {
        let node = state.node.lock().unwrap_or_else(|p| p.into_inner());
        (
            node.log().is_some(),
            node.identity().map(|identity| identity.did),
            node.network_seed(),
        )
    };
    let (Some(me), Some(seed)) = (me, seed) else {
        return false;
    };
    let tickets: Vec<(String, crate::net::Ticket)> = tickets
        .iter()
        .filter_map(|text| Some((text.clone(), crate::net::Ticket::parse(text).ok()?)))
        .collect();
    if has_coop || tickets.is_empty() {
        return false;
    }
    let state = state.clone();
    tokio::spawn(async move {
        // The peer may start after us: try for a few minutes.
        for _ in 0..30 {
            for (text, ticket) in &tickets {
                let genesis = match crate::join::fetch_genesis(ticket, &seed).await {
                    Ok(genesis) => genesis,
                    Err(error) => {
                        tracing::debug!(%error, "Could not fetch the co-op from a peer yet.");
                        continue;
                    }
                };
                let Ok(body) = genesis.body::<icn_kernel::Genesis>() else {
                    continue;
                };
                if !body.founders.contains(&me) {
                    tracing::warn!(
                        coop = %body.name,
                        "This identity is not a founder of the peer's co-op: apply with `icnctl coop join TICKET --name \"Your Name\"`."
                    );
                    return;
                }
                let Ok(genesis) = genesis.verify() else {
                    continue;
                };
                let text = text.clone();
                let joined = crate::http::with_node(&state, move |node| {
                    node.join(genesis)?;
                    node.remember_peer(&text)
                })
                .await;
                match joined {
                    Ok(()) => {
                        tracing::info!(coop = %body.name, "Joined the co-op as a founder; replicating.")
                    }
                    Err(error) => tracing::warn!(?error, "Could not join the peer's co-op."),
                }
                return;
            }
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
        tracing::warn!(
            "Could not fetch the co-op from any peer named with --peer; check the ticket and that their icnd runs."
        );
    });
    true
}

/// Closes replication and starts it again with the node's current key and
/// the same options (after `id rotate`). The old endpoint's port may take a
/// moment to be released: a few tries.
pub async fn restart_net(state: &SharedState) {
    let Some(old) = state.set_net(None) else {
        return;
    };
    let options = old.options().clone();
    old.close().await;
    drop(old);
    for attempt in 0..10 {
        match Net::start(state.node.clone(), options.clone()).await {
            Ok(net) => {
                state.set_net(Some(net));
                tracing::info!("Networking restarted with the new device key.");
                return;
            }
            Err(error) if attempt < 9 => {
                tracing::debug!(%error, "Networking could not restart yet; retrying.");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(error) => {
                tracing::error!(%error, "Networking could not restart with the new key; restart icnd.")
            }
        }
    }
}

/// Starts replication when this node has an unlocked identity. A busy
/// default port falls back to any free one; networking that cannot start
/// leaves the rest of the node running, with the reason in the log.
pub(crate) async fn start_net(state: &SharedState, config: &Config) {
    let can_sign = crate::http::on_node(state, |node| node.network_seed().is_some())
        .await
        .unwrap_or(false);
    if !can_sign {
        tracing::info!(
            "Networking starts once this node has an identity: from the set-up page (below), or with `icnctl id init` and a restart of icnd."
        );
        return;
    }
    let mut options = NetOptions {
        listen: config.listen.unwrap_or(DEFAULT_LISTEN),
        bootstrap: config.net.bootstrap_peers.clone(),
        relay: config.net.relay_enable.then(|| RelayOptions {
            listen: config.net.relay_listen,
            url: config.net.relay_url.clone(),
        }),
        mdns: config.net.mdns,
    };
    let mut started = Net::start(state.node.clone(), options.clone()).await;
    if started.is_err() && config.listen.is_none() {
        let listen = options.listen;
        options.listen = std::net::SocketAddr::new(listen.ip(), 0);
        tracing::warn!(%listen, "The default peer port is taken; using any free port (set --listen for a fixed one).");
        started = Net::start(state.node.clone(), options).await;
    }
    match started {
        Ok(net) => {
            state.set_net(Some(net));
        }
        Err(error) => {
            tracing::error!(%error, "Networking could not start; this node will not replicate.")
        }
    }
}

fn restrict_to_owner(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("installing a SIGTERM handler works on Unix");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
