//! `icnctl trust …`: state trust in a member, read scores, ask why.

use clap::Subcommand;
use icn_node::prelude::*;
use icn_node::{Node, node::now};

use crate::{
    Context, Outcome,
    ledger::{short, sign},
};

#[derive(Subcommand)]
pub enum TrustCommand {
    /// State your trust in a member (by name or DID), from 0 to 1: `trust add ana 0.8`.
    Add {
        member: String,
        score: f64,
        /// known, colleague, close or intimate.
        #[arg(long, default_value = "colleague")]
        class: String,
        /// general, ledger, compute or governance.
        #[arg(long, default_value = "general")]
        context: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// How much `from` trusts `to` (directly or through others).
    Score {
        from: String,
        to: String,
        #[arg(long, default_value = "general")]
        context: String,
    },
    /// Why your trust in a member is what it is: the path and the events behind it.
    Why {
        member: String,
        /// Whose trust (default: yours).
        #[arg(long)]
        from: Option<String>,
        #[arg(long, default_value = "general")]
        context: String,
    },
}

fn query(from: Option<&str>, to: &str, context: &str) -> String {
    let mut pairs = vec![("to", to), ("context", context)];
    if let Some(from) = from {
        pairs.push(("from", from));
    }
    serde_urlencoded::to_string(pairs).expect("strings encode")
}

pub fn run(context: &Context, command: TrustCommand) -> Outcome {
    match command {
        TrustCommand::Add {
            member,
            score,
            class,
            context: trust_context,
            note,
        } => {
            let request = icn_api::TrustAdd {
                to: member.clone(),
                score,
                class: Some(class),
                context: Some(trust_context),
                note,
            };
            sign(
                context,
                "/admin/v1/trust",
                &request,
                Node::trust_add,
                |id| format!("You trust {member} {score} (event {}).", short(id)),
            )
        }
        TrustCommand::Score {
            from,
            to,
            context: trust_context,
        } => {
            let path = format!(
                "/admin/v1/trust/score?{}",
                query(Some(&from), &to, &trust_context)
            );
            let score: icn_api::TrustScore = context.daemon_or_local("GET", &path, None, || {
                Ok(context.open_node(false)?.trust_score(
                    Some(&from),
                    &to,
                    Some(&trust_context),
                    now(),
                )?)
            })?;
            context.print(&score, |score| format!("{:.2}", score.score));
            Ok(())
        }
        TrustCommand::Why {
            member,
            from,
            context: trust_context,
        } => {
            let path = format!(
                "/admin/v1/trust/why?{}",
                query(from.as_deref(), &member, &trust_context)
            );
            let why: icn_api::TrustWhy = context.daemon_or_local("GET", &path, None, || {
                let node = context.open_node(false)?;
                Ok(node.trust_why(from.as_deref(), &member, Some(&trust_context), now())?)
            })?;
            context.print(&why, render_why);
            Ok(())
        }
    }
}

fn render_why(why: &icn_api::TrustWhy) -> String {
    if why.path.is_empty() {
        return format!(
            "Trust {:.2}: no statement or transfer links {} to {} within reach.",
            why.score, why.from, why.to
        );
    }
    let mut lines = vec![format!(
        "Trust {:.2} ({} context), through {} hop(s):",
        why.score,
        why.context,
        why.hops.len()
    )];
    for hop in &why.hops {
        let stated = hop["stated"]
            .as_f64()
            .map(|score| format!("stated {score:.2}"))
            .unwrap_or_else(|| "nothing stated".to_owned());
        lines.push(format!(
            "  {} → {}: {:.2} ({stated}, {} transfers, {} inactive months)",
            hop["from"].as_str().unwrap_or(""),
            hop["to"].as_str().unwrap_or(""),
            hop["direct"].as_f64().unwrap_or(0.0),
            hop["transfers"],
            hop["inactive_months"]
        ));
    }
    if !why.events.is_empty() {
        lines.push(format!(
            "Events: {}",
            why.events
                .iter()
                .map(|id| short(id).to_owned())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    lines.push(format!("How: {}", why.formula));
    lines.join("\n")
}
