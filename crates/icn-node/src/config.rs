//! Node configuration: defaults, then a TOML file, then `ICN_*` environment
//! variables, then command-line flags; validated once.

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
    #[error("environment variable {name}={value:?} is invalid: {reason}")]
    Env {
        name: String,
        value: String,
        reason: String,
    },
    #[error("{0}")]
    Invalid(String),
}

/// Flags given on the command line; `None` means "not given".
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub gateway_enable: Option<bool>,
    pub gateway_bind: Option<SocketAddr>,
    pub listen: Option<SocketAddr>,
    pub peers: Vec<String>,
    pub relay_enable: Option<bool>,
    pub relay_listen: Option<SocketAddr>,
    pub relay_url: Option<String>,
    pub metrics_bind: Option<SocketAddr>,
    pub log_level: Option<String>,
    pub log_format: Option<String>,
}

impl Config {
    /// Builds the effective configuration from its four layers.
    pub fn load(
        file: Option<&std::path::Path>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: &Overrides,
    ) -> Result<Config, ConfigError> {
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
        config.apply_env(env)?;
        config.apply(flags);
        config.validate()?;
        Ok(config)
    }

    fn apply_env(
        &mut self,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), ConfigError> {
        for (name, value) in env {
            let invalid = |reason: String| ConfigError::Env {
                name: name.clone(),
                value: value.clone(),
                reason,
            };
            match name.as_str() {
                "ICN_DATA_DIR" => self.data_dir = PathBuf::from(&value),
                "ICN_GATEWAY_ENABLE" => {
                    self.gateway.enable = parse_bool(&value)
                        .ok_or_else(|| invalid("expected true or false".into()))?
                }
                "ICN_GATEWAY_BIND" => {
                    self.gateway.bind = value.parse().map_err(|e| invalid(format!("{e}")))?
                }
                "ICN_GATEWAY_RATE_LIMIT" => {
                    self.gateway.rate_limit_per_second =
                        value.parse().map_err(|e| invalid(format!("{e}")))?
                }
                "ICN_GATEWAY_CORS_ORIGINS" => {
                    self.gateway.cors_origins = value
                        .split(',')
                        .map(str::trim)
                        .filter(|origin| !origin.is_empty())
                        .map(str::to_owned)
                        .collect()
                }
                "ICN_GATEWAY_TRUSTED_PROXIES" => {
                    self.gateway.trusted_proxies = value
                        .split(',')
                        .map(str::trim)
                        .filter(|proxy| !proxy.is_empty())
                        .map(|proxy| proxy.parse().map_err(|e| invalid(format!("{e}"))))
                        .collect::<Result<_, _>>()?
                }
                "ICN_LISTEN" => {
                    self.listen = Some(value.parse().map_err(|e| invalid(format!("{e}")))?)
                }
                "ICN_BOOTSTRAP_PEERS" => {
                    self.net.bootstrap_peers = value
                        .split(',')
                        .map(str::trim)
                        .filter(|ticket| !ticket.is_empty())
                        .map(str::to_owned)
                        .collect()
                }
                "ICN_RELAY_ENABLE" => {
                    self.net.relay_enable = parse_bool(&value)
                        .ok_or_else(|| invalid("expected true or false".into()))?
                }
                "ICN_RELAY_LISTEN" => {
                    self.net.relay_listen = value.parse().map_err(|e| invalid(format!("{e}")))?
                }
                "ICN_RELAY_URL" => self.net.relay_url = Some(value.clone()),
                "ICN_MDNS" => {
                    self.net.mdns = parse_bool(&value)
                        .ok_or_else(|| invalid("expected true or false".into()))?
                }
                "ICN_BACKUP_DAILY" => {
                    self.backup.daily = parse_bool(&value)
                        .ok_or_else(|| invalid("expected true or false".into()))?
                }
                "ICN_BACKUP_DIR" => self.backup.dir = Some(PathBuf::from(&value)),
                "ICN_METRICS_BIND" => {
                    self.metrics_bind = Some(value.parse().map_err(|e| invalid(format!("{e}")))?)
                }
                "ICN_LOG" => self.log.level = value.clone(),
                "ICN_LOG_FORMAT" => self.log.format = value.clone(),
                _ => {}
            }
        }
        Ok(())
    }

    fn apply(&mut self, flags: &Overrides) {
        if let Some(dir) = &flags.data_dir {
            self.data_dir = dir.clone();
        }
        if let Some(enable) = flags.gateway_enable {
            self.gateway.enable = enable;
        }
        if let Some(bind) = flags.gateway_bind {
            self.gateway.bind = bind;
        }
        if let Some(listen) = flags.listen {
            self.listen = Some(listen);
        }
        self.net.bootstrap_peers.extend(flags.peers.iter().cloned());
        if let Some(enable) = flags.relay_enable {
            self.net.relay_enable = enable;
        }
        if let Some(listen) = flags.relay_listen {
            self.net.relay_listen = listen;
        }
        if let Some(url) = &flags.relay_url {
            self.net.relay_url = Some(url.clone());
        }
        if let Some(bind) = flags.metrics_bind {
            self.metrics_bind = Some(bind);
        }
        if let Some(level) = &flags.log_level {
            self.log.level = level.clone();
        }
        if let Some(format) = &flags.log_format {
            self.log.format = format.clone();
        }
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

fn parse_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_apply_in_order_file_env_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("icn.toml");
        std::fs::write(
            &file,
            "data_dir = \"/from/file\"\n[gateway]\nenable = true\nbind = \"127.0.0.1:1000\"\n",
        )
        .unwrap();
        let env = vec![
            ("ICN_GATEWAY_BIND".to_owned(), "127.0.0.1:2000".to_owned()),
            ("ICN_DATA_DIR".to_owned(), "/from/env".to_owned()),
        ];
        let flags = Overrides {
            data_dir: Some("/from/flag".into()),
            ..Overrides::default()
        };
        let config = Config::load(Some(&file), env, &flags).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/from/flag"));
        assert_eq!(config.gateway.bind.port(), 2000);
        assert!(config.gateway.enable);
    }

    #[test]
    fn bad_input_names_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("icn.toml");
        std::fs::write(&file, "gatway = 1\n").unwrap();
        let error = Config::load(Some(&file), vec![], &Overrides::default()).unwrap_err();
        assert!(
            error.to_string().contains("unknown field `gatway`"),
            "{error}"
        );
        let env = vec![("ICN_GATEWAY_BIND".to_owned(), "nonsense".to_owned())];
        let error = Config::load(None, env, &Overrides::default()).unwrap_err();
        assert!(error.to_string().contains("ICN_GATEWAY_BIND"), "{error}");
    }
}
