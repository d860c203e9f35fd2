//! Node configuration: defaults, then a TOML file, then what the command
//! line and the `ICN_*` environment give ([`Overrides`], one clap
//! declaration per setting); validated once.

use std::{net::SocketAddr, path::PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub data_dir: PathBuf,
    pub gateway: GatewayConfig,
    /// The UDP address peers reach this node at (QUIC). Unset: 0.0.0.0:7879,
    /// or any free port if that one is taken.
    pub listen: Option<SocketAddr>,
    pub net: NetConfig,
    pub log: LogConfig,
    pub backup: BackupConfig,
    /// Serve Prometheus metrics at `http://BIND/metrics` (unset: off).
    pub metrics_bind: Option<SocketAddr>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// A backup a day, keeping 7 daily and 4 weekly ones.
    pub daily: bool,
    /// Where. Unset: `backups/` in the data directory; better, a disk that
    /// is not this laptop's.
    pub dir: Option<PathBuf>,
}

impl Default for BackupConfig {
    fn default() -> BackupConfig {
        BackupConfig {
            daily: true,
            dir: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct NetConfig {
    /// Tickets (`icnctl net ticket` on their node) of peers to keep
    /// connected to, such as the co-op's always-on node.
    pub bootstrap_peers: Vec<String>,
    /// Run the co-op's relay on this node (an always-on machine members'
    /// laptops can reach): they meet through it and then connect directly.
    pub relay_enable: bool,
    /// The relay's port: TCP for HTTPS and UDP for address discovery.
    pub relay_listen: SocketAddr,
    /// How members reach the relay, such as `https://coop.example.org:7880`.
    /// Unset: this machine's address and the relay's port.
    pub relay_url: Option<String>,
    /// Announce this node and find other members' nodes on the local
    /// network (mDNS). Other machines on the network see the node's key.
    pub mdns: bool,
}

impl Default for NetConfig {
    fn default() -> NetConfig {
        NetConfig {
            bootstrap_peers: Vec::new(),
            relay_enable: false,
            relay_listen: DEFAULT_RELAY_LISTEN,
            relay_url: None,
            mdns: true,
        }
    }
}

/// Where the relay listens unless told otherwise.
pub const DEFAULT_RELAY_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 7880);

/// Where icnd listens for peers unless told otherwise.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 7879);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Serve the API and the web app (on by default, on loopback only).
    pub enable: bool,
    /// Where. Unset: 127.0.0.1:7878, or any free port if that one is taken.
    pub bind: SocketAddr,
    /// Requests per second each client address may make, on average
    /// (0: no limit), and how many at once above that.
    pub rate_limit_per_second: u32,
    pub rate_limit_burst: u32,
    /// Web origins, besides the gateway's own, whose pages may call the API
    /// (`https://coop.example.org`). Empty: none.
    pub cors_origins: Vec<String>,
    /// Reverse proxies (a TLS proxy in front of the gateway) whose
    /// `X-Forwarded-For` names the client; rate limits, sign-in lockouts
    /// and the set-up page's guard then apply to that client, not to the
    /// proxy. Empty: the header is ignored.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

/// Where the gateway listens unless told otherwise.
pub const DEFAULT_GATEWAY_BIND: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 7878);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `tracing` filter such as `info` or `icn_node=debug`.
    pub level: String,
    /// `text` or `json`.
    pub format: String,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            data_dir: default_data_dir(),
            gateway: GatewayConfig::default(),
            listen: None,
            net: NetConfig::default(),
            log: LogConfig::default(),
            backup: BackupConfig::default(),
            metrics_bind: None,
        }
    }
}

impl Default for GatewayConfig {
    fn default() -> GatewayConfig {
        GatewayConfig {
            enable: true,
            bind: DEFAULT_GATEWAY_BIND,
            rate_limit_per_second: 50,
            rate_limit_burst: 200,
            cors_origins: Vec::new(),
            trusted_proxies: Vec::new(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            level: "info".to_owned(),
            format: "text".to_owned(),
        }
    }
}

/// `$ICN_DATA_DIR`, else `$XDG_DATA_HOME/icn`, else `~/.local/share/icn`, else `./icn-data`.
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|dir| !dir.is_empty()) {
        return PathBuf::from(dir).join("icn");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|home| !home.is_empty()) {
        return PathBuf::from(home).join(".local/share/icn");
    }
    PathBuf::from("icn-data")
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is invalid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// Every setting `icnd` takes from its command line or its environment,
/// declared once: clap reads the flag and the `ICN_*` variable beside it (a
/// flag beats its variable), with one parser for both. `None` or empty
/// means "given by neither": the file's value (or the default) stands.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct Overrides {
    /// Data directory (identity, keystore, database). Default:
    /// $XDG_DATA_HOME/icn, else ~/.local/share/icn.
    #[arg(long, global = true, env = "ICN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Serve the web app and HTTP API on --gateway-bind (the default).
    #[arg(long, global = true, env = "ICN_GATEWAY_ENABLE", value_name = "BOOL",
        num_args = 0..=1, require_equals = true, default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new())]
    pub gateway_enable: Option<bool>,
    /// Do not serve the web app and HTTP API (--gateway-enable=false).
    #[arg(long, global = true, conflicts_with = "gateway_enable")]
    pub no_gateway: bool,
    /// Address for the web app and HTTP API. Default: 127.0.0.1:7878 (this
    /// machine only), or a free port if that one is taken.
    #[arg(long, global = true, env = "ICN_GATEWAY_BIND", value_name = "ADDR")]
    pub gateway_bind: Option<SocketAddr>,
    /// Requests per second each client may make to the gateway (0: no limit).
    #[arg(long, global = true, env = "ICN_GATEWAY_RATE_LIMIT", value_name = "N")]
    pub gateway_rate_limit: Option<u32>,
    /// Web origins whose pages may call the API, comma-separated.
    #[arg(
        long,
        global = true,
        env = "ICN_GATEWAY_CORS_ORIGINS",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    pub gateway_cors_origins: Vec<String>,
    /// Reverse proxies whose X-Forwarded-For names the client, comma-separated.
    #[arg(
        long,
        global = true,
        env = "ICN_GATEWAY_TRUSTED_PROXIES",
        value_name = "IP",
        value_delimiter = ','
    )]
    pub gateway_trusted_proxies: Vec<std::net::IpAddr>,
    /// UDP address peers reach this node on. Default: 0.0.0.0:7879.
    #[arg(long, global = true, env = "ICN_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// A peer to keep connected to, as its ticket (`icnctl net ticket` on
    /// its machine). Repeatable, or comma-separated in the variable; adds
    /// to net.bootstrap_peers.
    #[arg(
        long = "peer",
        global = true,
        env = "ICN_BOOTSTRAP_PEERS",
        value_name = "TICKET",
        value_delimiter = ','
    )]
    pub peers: Vec<String>,
    /// Run the co-op's relay here, on an always-on machine members can
    /// reach: their nodes meet through it, then connect directly.
    #[arg(long, global = true, env = "ICN_RELAY_ENABLE", value_name = "BOOL",
        num_args = 0..=1, require_equals = true, default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new())]
    pub relay_enable: Option<bool>,
    /// The relay's port, TCP and UDP. Default: 0.0.0.0:7880.
    #[arg(long, global = true, env = "ICN_RELAY_LISTEN", value_name = "ADDR")]
    pub relay_listen: Option<SocketAddr>,
    /// How members reach the relay, e.g. https://coop.example.org:7880.
    /// Default: this machine's address and the relay's port.
    #[arg(long, global = true, env = "ICN_RELAY_URL", value_name = "URL")]
    pub relay_url: Option<String>,
    /// Announce this node and find members' nodes on the local network.
    #[arg(long, global = true, env = "ICN_MDNS", value_name = "BOOL",
        num_args = 0..=1, require_equals = true, default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new())]
    pub mdns: Option<bool>,
    /// Write a backup a day (keeping 7 daily and 4 weekly ones).
    #[arg(long, global = true, env = "ICN_BACKUP_DAILY", value_name = "BOOL",
        num_args = 0..=1, require_equals = true, default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new())]
    pub backup_daily: Option<bool>,
    /// Where daily backups go. Default: backups/ in the data directory.
    #[arg(long, global = true, env = "ICN_BACKUP_DIR", value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464).
    #[arg(long, global = true, env = "ICN_METRICS_BIND", value_name = "ADDR")]
    pub metrics_bind: Option<SocketAddr>,
    /// A log filter such as `info` or `icn_node=debug`.
    #[arg(long = "log", global = true, env = "ICN_LOG", value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Log format: text or json.
    #[arg(long, global = true, env = "ICN_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,
}

impl Config {
    /// Builds the effective configuration: the defaults, then the TOML
    /// `file`, then what the command line and environment gave (`flags`).
    pub fn load(file: Option<&std::path::Path>, flags: &Overrides) -> Result<Config, ConfigError> {
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                toml::from_str(&text).map_err(|error| ConfigError::Parse {
                    path: path.to_owned(),
                    message: error.message().to_owned(),
                })?
            }
            None => Config::default(),
        };
        config.apply(flags);
        config.validate()?;
        Ok(config)
    }

    fn apply(&mut self, flags: &Overrides) {
        fn set<T: Clone>(field: &mut T, value: Option<&T>) {
            if let Some(value) = value {
                *field = value.clone();
            }
        }
        fn replace<T: Clone>(field: &mut Vec<T>, values: &[T]) {
            if !values.is_empty() {
                *field = values.to_vec();
            }
        }
        set(&mut self.data_dir, flags.data_dir.as_ref());
        set(&mut self.gateway.enable, flags.gateway_enable.as_ref());
        if flags.no_gateway {
            self.gateway.enable = false;
        }
        set(&mut self.gateway.bind, flags.gateway_bind.as_ref());
        set(
            &mut self.gateway.rate_limit_per_second,
            flags.gateway_rate_limit.as_ref(),
        );
        replace(&mut self.gateway.cors_origins, &flags.gateway_cors_origins);
        replace(
            &mut self.gateway.trusted_proxies,
            &flags.gateway_trusted_proxies,
        );
        if flags.listen.is_some() {
            self.listen = flags.listen;
        }
        self.net.bootstrap_peers.extend(
            flags
                .peers
                .iter()
                .map(|ticket| ticket.trim())
                .filter(|ticket| !ticket.is_empty())
                .map(str::to_owned),
        );
        set(&mut self.net.relay_enable, flags.relay_enable.as_ref());
        set(&mut self.net.relay_listen, flags.relay_listen.as_ref());
        if flags.relay_url.is_some() {
            self.net.relay_url = flags.relay_url.clone();
        }
        set(&mut self.net.mdns, flags.mdns.as_ref());
        set(&mut self.backup.daily, flags.backup_daily.as_ref());
        if flags.backup_dir.is_some() {
            self.backup.dir = flags.backup_dir.clone();
        }
        if flags.metrics_bind.is_some() {
            self.metrics_bind = flags.metrics_bind;
        }
        set(&mut self.log.level, flags.log_level.as_ref());
        set(&mut self.log.format, flags.log_format.as_ref());
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::Invalid("data_dir is empty".into()));
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return Err(ConfigError::Invalid(format!(
                "log.format is {:?}; use \"text\" or \"json\"",
                self.log.format
            )));
        }
        if let Some(url) = &self.net.relay_url
            && !url.starts_with("https://")
        {
            return Err(ConfigError::Invalid(format!(
                "net.relay_url is {url:?}; it must start with https://"
            )));
        }
        Ok(())
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("the config is plain data")
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        overrides: Overrides,
    }

    /// Flags as clap parses them (the test process's `ICN_*` variables,
    /// if any, would count too: none are set under `cargo test`).
    fn flags(args: &[&str]) -> Overrides {
        Flags::try_parse_from(std::iter::once("icnd").chain(args.iter().copied()))
            .unwrap()
            .overrides
    }

    #[test]
    fn flags_override_the_file_and_the_file_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("icn.toml");
        std::fs::write(
            &file,
            "data_dir = \"/from/file\"\n[gateway]\nenable = true\nbind = \"127.0.0.1:1000\"\ncors_origins = [\"https://a.example\"]\n[net]\nbootstrap_peers = [\"icn1a\"]\n",
        )
        .unwrap();
        let config = Config::load(
            Some(&file),
            &flags(&[
                "--data-dir",
                "/from/flag",
                "--peer",
                "icn1b",
                "--relay-enable",
                "--mdns=off",
            ]),
        )
        .unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/from/flag"));
        assert_eq!(config.gateway.bind.port(), 1000);
        assert!(config.gateway.enable);
        assert_eq!(config.gateway.cors_origins, ["https://a.example"]);
        assert_eq!(config.net.bootstrap_peers, ["icn1a", "icn1b"]);
        assert!(config.net.relay_enable);
        assert!(!config.net.mdns);
        assert_eq!(
            config.gateway.rate_limit_per_second, 50,
            "the default stands"
        );

        let config = Config::load(
            Some(&file),
            &flags(&[
                "--no-gateway",
                "--gateway-cors-origins",
                "https://b.example,https://c.example",
            ]),
        )
        .unwrap();
        assert!(!config.gateway.enable);
        assert_eq!(
            config.gateway.cors_origins,
            ["https://b.example", "https://c.example"]
        );
    }

    #[test]
    fn bad_input_names_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("icn.toml");
        std::fs::write(&file, "gatway = 1\n").unwrap();
        let error = Config::load(Some(&file), &Overrides::default()).unwrap_err();
        assert!(
            error.to_string().contains("unknown field `gatway`"),
            "{error}"
        );
        let error = Flags::try_parse_from(["icnd", "--gateway-bind", "nonsense"])
            .err()
            .unwrap();
        assert!(error.to_string().contains("--gateway-bind"), "{error}");
        let error = Config::load(None, &flags(&["--log-format", "xml"])).unwrap_err();
        assert!(error.to_string().contains("log.format"), "{error}");
    }
}
