//! `icnd`: the ICN daemon. Parses flags, loads config, runs the node.

use std::{path::PathBuf, process::ExitCode};

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
    #[command(flatten)]
    settings: Overrides,
    /// A TOML config file; ICN_* variables and flags override it.
    #[arg(long, global = true, env = "ICN_CONFIG")]
    config: Option<PathBuf>,
    /// Read the keystore passphrase from this file instead of ICN_KEYSTORE_PASSPHRASE or a prompt.
    #[arg(long, global = true)]
    passphrase_file: Option<PathBuf>,
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
    /// Print the effective configuration (defaults, the file, then ICN_* variables and flags).
    Check,
}

fn load_config(flags: &Flags) -> anyhow::Result<Config> {
    Ok(Config::load(flags.config.as_deref(), &flags.settings)?)
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

/// The `ICN_*` variable behind a refused value, when the flag clap names
/// was not on the command line: its message names only the flag.
fn from_environment(message: &str) -> Option<String> {
    use clap::CommandFactory;
    let given: Vec<String> = std::env::args().collect();
    Cli::command().get_arguments().find_map(|arg| {
        let flag = format!("--{}", arg.get_long()?);
        let variable = arg.get_env()?.to_string_lossy().into_owned();
        let named =
            message.contains(&format!("'{flag} ")) || message.contains(&format!("'{flag}'"));
        let on_command_line = given
            .iter()
            .any(|word| word == &flag || word.starts_with(&format!("{flag}=")));
        (named && !on_command_line && std::env::var_os(&variable).is_some()).then_some(variable)
    })
}

fn main() -> ExitCode {
    icn_node::layout::owner_only_files();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // The message (or the help, or the version), as clap prints it.
            let _ = error.print();
            if let Some(variable) = from_environment(&error.to_string()) {
                eprintln!("(That value comes from the environment variable {variable}.)");
            }
            return ExitCode::from(error.exit_code().clamp(0, 255) as u8);
        }
    };
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
