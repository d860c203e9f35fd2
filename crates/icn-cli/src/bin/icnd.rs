//! `icnd`: the ICN daemon. Parses flags, loads config, runs the node.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use clap::{Args, Parser, Subcommand};
use icn_node::{Config, DataDir, Overrides, daemon, passphrase};

#[derive(Parser)]
#[command(
    name = "icnd",
    version,
    about = "The ICN daemon: runs a co-op member's node."
)]
struct Cli {
    #[command(flatten)]
    flags: Flags,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Args)]
struct Flags {
    /// Data directory (identity, keystore, database). Default: ~/.local/share/icn.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// A TOML config file; ICN_* variables and flags override it.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Serve the HTTP API (/api/v1) on --gateway-bind (the default).
    #[arg(long, global = true, conflicts_with = "no_gateway")]
    gateway_enable: bool,
    /// Do not serve the web app and HTTP API.
    #[arg(long, global = true)]
    no_gateway: bool,
    /// Address for the web app and HTTP API. Default: 127.0.0.1:7878 (this
    /// machine only), or a free port if that one is taken.
    #[arg(long, global = true)]
    gateway_bind: Option<SocketAddr>,
    /// UDP address peers reach this node on. Default: 0.0.0.0:7879.
    #[arg(long, global = true)]
    listen: Option<SocketAddr>,
    /// A peer to keep connected to, as its ticket (`icnctl net ticket` on
    /// its machine). Repeatable; adds to net.bootstrap_peers.
    #[arg(long = "peer", global = true, value_name = "TICKET")]
    peers: Vec<String>,
    /// Run the co-op's relay here, on an always-on machine members can
    /// reach: their nodes meet through it, then connect directly.
    #[arg(long, global = true)]
    relay_enable: bool,
    /// The relay's port, TCP and UDP. Default: 0.0.0.0:7880.
    #[arg(long, global = true)]
    relay_listen: Option<SocketAddr>,
    /// How members reach the relay, e.g. https://coop.example.org:7880.
    /// Default: this machine's address and the relay's port.
    #[arg(long, global = true, value_name = "URL")]
    relay_url: Option<String>,
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464).
    #[arg(long, global = true, value_name = "ADDR")]
    metrics_bind: Option<SocketAddr>,
    /// Read the keystore passphrase from this file instead of ICN_KEYSTORE_PASSPHRASE or a prompt.
    #[arg(long, global = true)]
    passphrase_file: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long, global = true)]
    log_format: Option<String>,
    /// On a first start (no identity yet), do not open the set-up page in
    /// the desktop's browser; only print its address.
    #[arg(long, global = true)]
    no_browser: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration (file, then ICN_* environment, then flags).
    Check,
}

fn load_config(flags: &Flags) -> anyhow::Result<Config> {
    let overrides = Overrides {
        data_dir: flags.data_dir.clone(),
        gateway_enable: match (flags.gateway_enable, flags.no_gateway) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        },
        gateway_bind: flags.gateway_bind,
        listen: flags.listen,
        peers: flags.peers.clone(),
        relay_enable: flags.relay_enable.then_some(true),
        relay_listen: flags.relay_listen,
        relay_url: flags.relay_url.clone(),
        metrics_bind: flags.metrics_bind,
        log_level: None,
        log_format: flags.log_format.clone(),
    };
    Ok(Config::load(
        flags.config.as_deref(),
        std::env::vars(),
        &overrides,
    )?)
}

fn init_tracing(config: &Config) {
    let mut filter = tracing_subscriber::EnvFilter::try_new(&config.log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // iroh's relay transport logs "relay_recv_channel closed" at ERROR on
    // every clean shutdown, relay or not. icnd reports relays itself (doctor,
    // `icnctl peers`); an admin who asks for iroh's own logs still gets them.
    if !config.log.level.contains("iroh")
        && let Ok(quiet) = "iroh::socket::transports::relay=off".parse()
    {
        filter = filter.add_directive(quiet);
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.log.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let config = load_config(&cli.flags)?;
    if let Some(Command::Config {
        command: ConfigCommand::Check,
    }) = cli.command
    {
        print!("{}", config.to_toml());
        return Ok(());
    }
    init_tracing(&config);
    let dir = DataDir::new(&config.data_dir);
    let keystore = dir.keystore();
    let keys = if keystore.exists() {
        let passphrase = passphrase::passphrase(
            cli.flags.passphrase_file.as_deref(),
            "Keystore passphrase: ",
            false,
        )?;
        keystore.open(&passphrase)?.key_pairs()
    } else {
        Vec::new()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let open_browser = !cli.flags.no_browser;
    runtime.block_on(daemon::run(
        config,
        keys,
        open_browser,
        daemon::shutdown_signal(),
    ))
}

fn main() -> ExitCode {
    icn_node::layout::owner_only_files();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("icnd: error: {error:#}");
            if let Some(hint) = icn_node::hints::hint_for(&format!("{error:#}")) {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(2)
        }
    }
}
