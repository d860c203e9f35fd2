//! `icnctl member …` and `icnctl governance …`: who is in the co-op, and
//! deciding together.

use clap::Subcommand;
use icn_kernel::{EventId, Timestamp};
use icn_node::prelude::*;
use icn_node::{Node, node::NodeError};

use crate::{
    Context, Failure, Outcome,
    ledger::{short, sign},
    parse_params,
};

#[derive(Subcommand)]
pub enum MemberCommand {
    /// Members and applicants, with status, tier and vouches.
    List,
    /// Vouch for an applicant (by name or DID). Enough vouches admit them.
    Vouch {
        applicant: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Admit an applicant who has enough vouches (nodes do this by themselves).
    Admit { applicant: String },
    /// Your name and skills as members see them.
    Profile {
        #[arg(long)]
        name: String,
        /// A skill (repeatable).
        #[arg(long = "skill")]
        skills: Vec<String>,
    },
    /// Leave the co-op. Your history stays; you can no longer pay or vote.
    Leave {
        #[arg(long, default_value = "")]
        note: String,
    },
}

#[derive(Subcommand)]
pub enum GovernanceCommand {
    /// Templates of rules to propose with: built in, and published by the co-op.
    Templates,
    /// Publish a template in the co-op, e.g. `deploy simple-vote --duration 7d`.
    Deploy {
        /// A built-in template's name.
        template: String,
        #[arg(long)]
        duration: Option<String>,
        /// Publish under another name.
        #[arg(long)]
        name: Option<String>,
        /// A template file (TOML, as in templates/governance/) instead.
        #[arg(long)]
        file: Option<std::path::PathBuf>,
    },
    /// Open a proposal. Without an action flag it is a decision in words.
    Propose(Box<ProposeArgs>),
    /// Vote: yes, no, abstain or block (a block needs --reason). Change it until the close.
    Vote {
        proposal: String,
        choice: String,
        #[arg(long, default_value = "")]
        reason: String,
        /// Quadratic voting: the strength s of your vote (it costs s² credits).
        #[arg(long)]
        strength: Option<u32>,
    },
    /// One proposal: rules, electorate, votes, tally, outcome.
    Show { proposal: String },
    /// Proposals, newest first.
    List {
        /// Only open ones.
        #[arg(long)]
        open: bool,
    },
    /// Open your draft for votes (its electorate is fixed now).
    Open { proposal: String },
    /// Withdraw your own proposal before it closes.
    Cancel {
        proposal: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Veto a proposal (only members named in gov.vetoers).
    Veto {
        proposal: String,
        #[arg(long)]
        reason: String,
    },
    /// Appeal a closed decision within the appeal window.
    Appeal {
        proposal: String,
        #[arg(long)]
        reason: String,
    },
}

#[derive(clap::Args)]
pub struct ProposeArgs {
    #[arg(long)]
    title: String,
    #[arg(long, default_value = "")]
    text: String,
    /// `simple-majority`, `quorum-vote`, `budget-approval`, `consent` … (`governance templates`).
    #[arg(long, default_value = "simple-majority")]
    template: String,
    /// How long voting stays open: `30m`, `24h`, `7d` (default: the template's).
    #[arg(long)]
    duration: Option<String>,
    /// Decide within a working circle.
    #[arg(long)]
    circle: Option<String>,
    /// When to review the decision (YYYY-MM-DD).
    #[arg(long)]
    review: Option<String>,
    /// Make a draft: no votes until you `governance open` it.
    #[arg(long)]
    draft: bool,
    /// Hide the tally and the votes until the close.
    #[arg(long)]
    hidden: bool,
    /// Admit someone (DID).
    #[arg(long, value_name = "DID")]
    add_member: Option<String>,
    /// Their name, with --add-member.
    #[arg(long, default_value = "")]
    name: String,
    /// observer, provisional or full, with --add-member.
    #[arg(long)]
    tier: Option<String>,
    #[arg(long, value_name = "MEMBER")]
    remove_member: Option<String>,
    /// Change a parameter, `name=value` (repeatable): `--set ledger.floor=30`.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// Pay this amount from the commons when it passes (with --to).
    #[arg(long, value_name = "AMOUNT")]
    budget: Option<String>,
    #[arg(long, value_name = "MEMBER")]
    to: Option<String>,
    #[arg(long, default_value = "")]
    memo: String,
    /// Replace this charter section with --section-text.
    #[arg(long, value_name = "SECTION")]
    charter: Option<String>,
    #[arg(long, default_value = "")]
    section_text: String,
    /// Give this member the roles in --roles (replacing theirs).
    #[arg(long, value_name = "MEMBER")]
    set_roles: Option<String>,
    /// Comma-separated roles, with --set-roles (empty: none).
    #[arg(long, value_delimiter = ',')]
    roles: Vec<String>,
    /// Reverse this payment (its entry id in full) by compensating entries.
    #[arg(long, value_name = "ENTRY")]
    reverse: Option<String>,
    #[arg(long, value_name = "MEMBER")]
    freeze: Option<String>,
    #[arg(long, value_name = "MEMBER")]
    unfreeze: Option<String>,
    /// Create a working circle with --members.
    #[arg(long, value_name = "NAME")]
    create_circle: Option<String>,
    /// Comma-separated members, with --create-circle.
    #[arg(long, value_delimiter = ',')]
    members: Vec<String>,
}

fn day(ms: u64) -> String {
    icn_ledger::format_utc(ms)
}

pub fn run_member(context: &Context, command: MemberCommand) -> Outcome {
    match command {
        MemberCommand::List => {
            let members: icn_api::Members =
                context.daemon_or_local("GET", "/admin/v1/members", None, || {
                    Ok(context.open_node(false)?.members()?)
                })?;
            context.print(&members, render_members);
            Ok(())
        }
        MemberCommand::Vouch { applicant, note } => {
            let request = icn_api::Vouch {
                applicant: applicant.clone(),
                note,
            };
            sign(
                context,
                "/admin/v1/members/vouch",
                &request,
                Node::vouch,
                |id| {
                    format!(
                        "Vouched for {applicant} (event {}). They are admitted once they have enough vouches.",
                        short(id)
                    )
                },
            )
        }
        MemberCommand::Admit { applicant } => {
            let request = icn_api::Vouch {
                applicant: applicant.clone(),
                note: String::new(),
            };
            sign(
                context,
                "/admin/v1/members/admit",
                &request,
                Node::admit,
                |id| format!("Admitted {applicant} (event {}).", short(id)),
            )
        }
        MemberCommand::Profile { name, skills } => {
            let request = icn_api::SetProfile {
                name: name.clone(),
                skills,
            };
            sign(
                context,
                "/admin/v1/members/profile",
                &request,
                Node::set_profile,
                |id| format!("Members now see you as {name:?} (event {}).", short(id)),
            )
        }
        MemberCommand::Leave { note } => {
            let request = icn_api::Leave { note };
            sign(
                context,
                "/admin/v1/members/leave",
                &request,
                Node::leave,
                |id| format!("You have left the co-op (event {}).", short(id)),
            )
        }
    }
}

fn render_members(members: &icn_api::Members) -> String {
    let mut lines = Vec::new();
    for member in &members.members {
        let name = if member.name.is_empty() {
            "(no name)"
        } else {
            &member.name
        };
        let mut standing = match (&member.status[..], &member.tier) {
            ("active", Some(tier)) => tier.clone(),
            ("applicant", _) => {
                let have = member.vouched_by.len() as u64;
                match members.vouches_needed.saturating_sub(have) {
                    0 => format!("applicant, {have} vouches: being admitted"),
                    1 => "applicant, needs 1 more vouch".to_owned(),
                    more => format!("applicant, needs {more} more vouches"),
                }
            }
            (status, _) => status.to_owned(),
        };
        if !member.roles.is_empty() {
            standing = format!("{standing} ({})", member.roles.join(", "));
        }
        lines.push(format!("{name:<20} {standing:<28} {}", member.did));
    }
    if lines.is_empty() {
        return "No members yet.".to_owned();
    }
    if members.members.iter().any(|member| member.name.is_empty()) {
        lines.push(
            "Members without a name set one with `icnctl member profile --name \"Their Name\"`."
                .to_owned(),
        );
    }
    lines.join("\n")
}

fn action(args: &ProposeArgs) -> Result<icn_api::ProposalAction, Failure> {
    use icn_api::ProposalAction as A;
    let mut actions = Vec::new();
    if let Some(member) = &args.add_member {
        actions.push(A::AddMember {
            member: member.clone(),
            name: args.name.clone(),
            tier: args.tier.clone(),
        });
    }
    if let Some(member) = &args.remove_member {
        actions.push(A::RemoveMember {
            member: member.clone(),
        });
    }
    if !args.params.is_empty() {
        actions.push(A::SetParams {
            params: parse_params(&args.params)?,
        });
    }
    if let Some(amount) = &args.budget {
        let to = args
            .to
            .clone()
            .ok_or_else(|| Failure::new("--budget needs --to, the member it pays", None))?;
        actions.push(A::Budget {
            to,
            amount: amount.clone(),
            currency: None,
            memo: args.memo.clone(),
        });
    }
    if let Some(section) = &args.charter {
        actions.push(A::Charter {
            section: section.clone(),
            text: args.section_text.clone(),
        });
    }
    if let Some(member) = &args.set_roles {
        actions.push(A::SetRoles {
            member: member.clone(),
            roles: args.roles.clone(),
        });
    }
    if let Some(entry) = &args.reverse {
        actions.push(A::Reverse {
            entry: entry.clone(),
        });
    }
    if let Some(member) = &args.freeze {
        actions.push(A::Freeze {
            member: member.clone(),
        });
    }
    if let Some(member) = &args.unfreeze {
        actions.push(A::Unfreeze {
            member: member.clone(),
        });
    }
    if let Some(name) = &args.create_circle {
        actions.push(A::CreateCircle {
            name: name.clone(),
            members: args.members.clone(),
        });
    }
    match actions.len() {
        0 => Ok(A::Decision),
        1 => Ok(actions.remove(0)),
        _ => Err(Failure::new(
            "a proposal does one thing; split it into several proposals",
            None,
        )),
    }
}

pub fn run_governance(context: &Context, command: GovernanceCommand) -> Outcome {
    match command {
        GovernanceCommand::Templates => {
            let templates: icn_api::Templates =
                context.daemon_or_local("GET", "/admin/v1/governance/templates", None, || {
                    Ok(context.open_node(false)?.templates()?)
                })?;
            context.print(&templates, |templates| {
                templates
                    .templates
                    .iter()
                    .map(|template| {
                        format!(
                            "{:<26} {}{}",
                            template.name,
                            template.description,
                            if template.published_by.is_some() {
                                " (published in this co-op)"
                            } else {
                                ""
                            }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            Ok(())
        }
        GovernanceCommand::Deploy {
            template,
            duration,
            name,
            file,
        } => {
            let toml = file
                .map(|path| {
                    std::fs::read_to_string(&path).map_err(|error| {
                        Failure::new(format!("cannot read {}: {error}", path.display()), None)
                    })
                })
                .transpose()?;
            let request = icn_api::Deploy {
                template: template.clone(),
                name: name.clone(),
                duration,
                toml,
            };
            let shown = name.unwrap_or(template);
            sign(
                context,
                "/admin/v1/governance/templates",
                &request,
                Node::deploy_template,
                |id| {
                    format!(
                        "Published template {shown:?} in the co-op (event {}). Propose with it: `icnctl governance propose --template {shown} --title \"…\"`",
                        short(id)
                    )
                },
            )
        }
        GovernanceCommand::Propose(args) => {
            let request = icn_api::Propose {
                title: args.title.clone(),
                text: args.text.clone(),
                template: args.template.clone(),
                duration: args.duration.clone(),
                circle: args.circle.clone(),
                review: args.review.clone(),
                action: action(&args)?,
                draft: args.draft,
                hidden: args.hidden.then_some(true),
            };
            sign(
                context,
                "/admin/v1/governance/proposals",
                &request,
                Node::propose,
                |id| {
                    if args.draft {
                        format!(
                            "Draft {} saved. Open it for votes: `icnctl governance open {}`",
                            short(id),
                            short(id)
                        )
                    } else {
                        format!(
                            "Proposal {} is open. Vote: `icnctl governance vote {} yes`",
                            short(id),
                            short(id)
                        )
                    }
                },
            )
        }
        GovernanceCommand::Vote {
            proposal,
            choice,
            reason,
            strength,
        } => {
            let request = icn_api::CastVote {
                proposal: proposal.clone(),
                choice: choice.clone(),
                reason,
                strength,
            };
            sign(
                context,
                "/admin/v1/governance/vote",
                &request,
                Node::vote,
                |id| {
                    format!(
                        "Voted {choice} on {proposal} (event {}). You can change your vote until it closes.",
                        short(id)
                    )
                },
            )
        }
        GovernanceCommand::Show { proposal } => {
            let path = format!(
                "/admin/v1/governance/proposal?{}",
                serde_urlencoded::to_string([("id", &proposal)]).expect("strings encode")
            );
            let shown: icn_api::Proposal = context.daemon_or_local("GET", &path, None, || {
                Ok(context.open_node(false)?.proposal(&proposal)?)
            })?;
            context.print(&shown, render_proposal);
            Ok(())
        }
        GovernanceCommand::List { open } => {
            let mut list: icn_api::Proposals =
                context.daemon_or_local("GET", "/admin/v1/governance/proposals", None, || {
                    Ok(context.open_node(false)?.proposals()?)
                })?;
            if open {
                list.proposals.retain(|proposal| proposal.status == "open");
            }
            context.print(&list, |list| {
                if list.proposals.is_empty() {
                    return "No proposals yet. Open one: `icnctl governance propose --title \"…\"`"
                        .to_owned();
                }
                list.proposals
                    .iter()
                    .map(|proposal| {
                        format!(
                            "{}  {:<10} {:>2}/{:<2} voted  {}",
                            short(&proposal.id),
                            proposal.status,
                            proposal.voted.len(),
                            proposal.electorate.len(),
                            proposal.title
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            Ok(())
        }
        GovernanceCommand::Open { proposal } => about(
            context,
            "open",
            proposal,
            String::new(),
            Node::open_draft,
            "Opened for votes",
        ),
        GovernanceCommand::Cancel { proposal, reason } => about(
            context,
            "cancel",
            proposal,
            reason,
            Node::cancel_proposal,
            "Asked the closer to close it as cancelled",
        ),
        GovernanceCommand::Veto { proposal, reason } => about(
            context,
            "veto",
            proposal,
            reason,
            Node::veto_proposal,
            "Vetoed; the closer closes it as vetoed",
        ),
        GovernanceCommand::Appeal { proposal, reason } => about(
            context,
            "appeal",
            proposal,
            reason,
            Node::appeal_proposal,
            "Appealed; members see it on the proposal",
        ),
    }
}

fn about(
    context: &Context,
    what: &str,
    proposal: String,
    reason: String,
    local: fn(&mut Node, &icn_api::AboutProposal, Timestamp) -> Result<EventId, NodeError>,
    said: &str,
) -> Outcome {
    let request = icn_api::AboutProposal { proposal, reason };
    sign(
        context,
        &format!("/admin/v1/governance/{what}"),
        &request,
        local,
        |id| format!("{said} (event {}).", short(id)),
    )
}

/// `{"budget": {"to": …, "amount": 600, …}}` as `budget: to …, amount 600, …`.
fn describe_action(action: &serde_json::Value) -> String {
    match action {
        serde_json::Value::String(name) => name.replace('_', " "),
        serde_json::Value::Object(map) if map.len() == 1 => {
            let (name, fields) = map.iter().next().expect("one entry");
            let fields = match fields {
                serde_json::Value::Object(fields) => fields
                    .iter()
                    .map(|(key, value)| match value {
                        serde_json::Value::String(text) => format!("{key} {text}"),
                        other => format!("{key} {other}"),
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            };
            format!("{}: {fields}", name.replace('_', " "))
        }
        other => other.to_string(),
    }
}

fn render_proposal(proposal: &icn_api::Proposal) -> String {
    let mut lines = vec![
        format!("{}  [{}]", proposal.title, proposal.status),
        format!("id:         {}", proposal.id),
        format!("action:     {}", describe_action(&proposal.action)),
        format!("template:   {}", proposal.template),
        format!("proposer:   {}", proposal.proposer),
        if proposal.status == "draft" {
            format!(
                "draft:      since {}; not open for votes until the proposer opens it",
                day(proposal.opened_ms)
            )
        } else {
            format!(
                "open:       {} until {}",
                day(proposal.opened_ms),
                day(proposal.closes_at_ms)
            )
        },
        format!(
            "voted:      {} of {} electors",
            proposal.voted.len(),
            proposal.electorate.len()
        ),
    ];
    if !proposal.text.is_empty() {
        lines.insert(1, proposal.text.clone());
    }
    if let Some(tally) = &proposal.tally {
        lines.push(format!(
            "tally:      {} yes, {} no, {} abstain, {} block",
            tally["yes"], tally["no"], tally["abstain"], tally["block"]
        ));
    } else {
        lines.push("tally:      hidden until the close".to_owned());
    }
    for vote in proposal.votes.iter().flatten() {
        let late = if vote["late"] == true {
            " (late: not counted)"
        } else {
            ""
        };
        let reason = vote["reason"].as_str().unwrap_or("");
        lines.push(format!(
            "  {} {}{}{}",
            vote["voter"].as_str().unwrap_or(""),
            vote["choice"].as_str().unwrap_or(""),
            if reason.is_empty() {
                String::new()
            } else {
                format!(": {reason}")
            },
            late
        ));
    }
    if let Some(reason) = &proposal.cancel_requested {
        lines.push(format!("cancel requested: {reason}"));
    }
    if let Some(outcome) = &proposal.outcome {
        lines.push(format!("outcome:    {outcome}"));
    }
    if let Some(review) = proposal.review_at_ms {
        lines.push(format!("review:     {}", day(review)));
    }
    for appeal in &proposal.appeals {
        lines.push(format!(
            "appeal by {}: {}",
            appeal["by"].as_str().unwrap_or(""),
            appeal["reason"].as_str().unwrap_or("")
        ));
    }
    lines.join("\n")
}
