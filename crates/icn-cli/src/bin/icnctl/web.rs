//! `icnctl web`: signing in to the web app that icnd serves, and the
//! browsers that may sign in again on their own.

use clap::Subcommand;

use crate::{Context, Failure, Outcome};

#[derive(Subcommand)]
pub enum WebCommand {
    /// Print a one-time link that signs this browser in to the web app as
    /// you (valid 15 minutes). `--qr` also draws it for a phone's camera.
    Open {
        #[arg(long)]
        qr: bool,
    },
    /// Print a token (an hour) for `Authorization: Bearer …` on /api/v1.
    Token,
    /// The browsers that may sign in again without a link.
    Keys,
    /// Stop a browser from signing in again: its key (or a prefix of it),
    /// or `all`.
    Revoke { key: String },
}

fn needs_daemon<T>() -> Result<T, Failure> {
    Err(Failure::new(
        "icnd is not running: the web app is served by it",
        Some("start it with `icnd` (in another terminal, or as a service), then run this again"),
    ))
}

pub fn run(context: &Context, command: WebCommand) -> Outcome {
    match command {
        WebCommand::Open { qr } => {
            let link: icn_api::WebLink =
                context.daemon_or_local("POST", "/admin/v1/gateway/link", None, needs_daemon)?;
            context.print(&link, |link| {
                let code = if qr {
                    qrcode::QrCode::new(link.url.as_bytes())
                        .map(|code| {
                            code.render::<qrcode::render::unicode::Dense1x2>()
                                .quiet_zone(true)
                                .build()
                                + "\n"
                        })
                        .unwrap_or_default()
                } else {
                    String::new()
                };
                format!(
                    "{code}{}\nOpen this link in your browser to sign in (it works once, for {} minutes).\nThe browser then stays signed in on this node; `icnctl web keys` lists such browsers.",
                    link.url,
                    link.expires_in_s / 60
                )
            });
            Ok(())
        }
        WebCommand::Token => {
            let token: icn_api::Token =
                context.daemon_or_local("POST", "/admin/v1/gateway/token", None, needs_daemon)?;
            context.print(&token, |token| {
                format!(
                    "{}\nUse it as `Authorization: Bearer <token>` on the gateway's /api/v1 (valid {} minutes).",
                    token.token,
                    token.expires_in_s / 60
                )
            });
            Ok(())
        }
        WebCommand::Keys => {
            let keys: icn_api::WebKeys =
                context.daemon_or_local("GET", "/admin/v1/gateway/keys", None, needs_daemon)?;
            context.print(&keys, show_keys);
            Ok(())
        }
        WebCommand::Revoke { key } => {
            let body =
                serde_json::to_vec(&icn_api::RevokeWebKey { key }).expect("plain data serialises");
            let keys: icn_api::WebKeys = context.daemon_or_local(
                "POST",
                "/admin/v1/gateway/keys/revoke",
                Some(body),
                needs_daemon,
            )?;
            context.print(&keys, |keys| {
                format!("Revoked. Still signed in:\n{}", show_keys(keys))
            });
            Ok(())
        }
    }
}

fn show_keys(keys: &icn_api::WebKeys) -> String {
    if keys.keys.is_empty() {
        return "No browser signs in on its own; `icnctl web open` signs one in.".to_owned();
    }
    keys.keys
        .iter()
        .map(|key| {
            let label = if key.label.is_empty() {
                "a browser"
            } else {
                &key.label
            };
            format!("{}  {label}  ({})", key.key, key.did)
        })
        .collect::<Vec<_>>()
        .join("\n")
}
