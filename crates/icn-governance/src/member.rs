//! Membership as a domain: applications, vouches, admission, profiles,
//! leaving. Who is a member, and since when, lives in the kernel's
//! [`CoopState`]; this domain decides when that changes.

use std::collections::BTreeMap;

use icn_identity::Did;
use icn_kernel::{
    Context, CoopState, Domain, Effect, Event, Membership, Past, Rejection, Source, Status, Tier,
    Timestamp, ViewRow,
};
use serde::{Deserialize, Serialize};

use crate::{body::*, decode, json, params, reject, text_check};

pub const VIEW_MEMBER: &str = "member";

#[derive(Clone, Debug)]
struct Application {
    name: String,
    note: String,
    seq: u64,
    time_ms: u64,
    /// Voucher → (seq of the vouch in their chain, note).
    vouches: BTreeMap<Did, (u64, String)>,
}

#[derive(Clone, Debug, Default)]
struct Person {
    name: String,
    skills: Vec<String>,
}

/// A member's roles and the close (time, author, seq) that gave them: the
/// latest decision holds.
type Roles = ((u64, Did, u64), Vec<String>);

/// The `member` domain.
#[derive(Clone, Default)]
pub struct MemberDomain {
    applications: BTreeMap<Did, Application>,
    profiles: BTreeMap<Did, Person>,
    /// Members as of everything applied (mirrors the kernel's state, for rows).
    members: BTreeMap<Did, Membership>,
    roles: BTreeMap<Did, Roles>,
}

/// One member's or applicant's row.
#[derive(Serialize, Deserialize)]
pub struct MemberRow {
    pub did: String,
    pub name: String,
    pub skills: Vec<String>,
    /// Given by proposals (`treasurer` …).
    pub roles: Vec<String>,
    /// `applicant`, `active`, `suspended` or `exited`.
    pub status: String,
    pub tier: Option<Tier>,
    pub since_ms: Option<u64>,
    pub applied_ms: Option<u64>,
    pub application_note: String,
    pub vouched_by: Vec<String>,
}

fn seen(past: Past<'_>, author: Did, seq: u64) -> bool {
    past.contains(&Source {
        time: Timestamp(0),
        author,
        seq,
    })
}

fn check_name(name: &str) -> Result<(), Rejection> {
    text_check(name, "the name", NAME_MAX_BYTES, true)?;
    if name.trim() != name || name.chars().any(char::is_control) {
        return Err(reject(
            "a name has no leading or trailing spaces and no control characters",
        ));
    }
    if name.chars().any(invisible) {
        return Err(reject(
            "a name has no invisible characters (zero-width or direction marks): \
             they make one name look like another",
        ));
    }
    Ok(())
}

/// Characters that change how text around them displays without showing
/// themselves: bidirectional overrides and isolates, zero-width spaces and
/// joiners, soft hyphens, the byte-order mark, invisible operators and
/// tags (Unicode's format characters that matter in names).
pub fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}

impl MemberDomain {
    fn row(&self, did: &Did) -> ViewRow {
        let application = self.applications.get(did);
        let membership = self.members.get(did);
        let name = self
            .profiles
            .get(did)
            .map(|person| person.name.clone())
            .or_else(|| application.map(|application| application.name.clone()))
            .unwrap_or_default();
        let status = match membership {
            None => "applicant",
            Some(membership) => match membership.status {
                Status::Active => "active",
                Status::Suspended => "suspended",
                Status::Exited => "exited",
            },
        };
        let row = MemberRow {
            did: did.to_string(),
            name,
            skills: self
                .profiles
                .get(did)
                .map(|person| person.skills.clone())
                .unwrap_or_default(),
            roles: self
                .roles
                .get(did)
                .map(|(_, roles)| roles.clone())
                .unwrap_or_default(),
            status: status.to_owned(),
            tier: membership.map(|membership| membership.tier),
            since_ms: membership.map(|membership| membership.since.as_millis()),
            applied_ms: application.map(|application| application.time_ms),
            application_note: application
                .map(|application| application.note.clone())
                .unwrap_or_default(),
            vouched_by: application
                .map(|application| application.vouches.keys().map(Did::to_string).collect())
                .unwrap_or_default(),
        };
        ViewRow {
            view: VIEW_MEMBER,
            key: did.to_string(),
            value: json(&row),
        }
    }

    /// An application in the causal past, by an applicant who is not a
    /// member there.
    fn open_application(
        &self,
        applicant: &Did,
        context: &Context<'_>,
    ) -> Result<&Application, Rejection> {
        let application = self
            .applications
            .get(applicant)
            .filter(|application| seen(context.past(), *applicant, application.seq))
            .ok_or_else(|| reject(format!("{applicant} has not applied to join")))?;
        // Someone who left comes back by an add-member proposal, not by
        // the vouches of their first application.
        match context.member(applicant) {
            Some(_) => Err(reject(format!(
                "{applicant} is or was a member (a former member returns by proposal)"
            ))),
            None => Ok(application),
        }
    }

    fn validate_admit(&self, event: &Event, context: &Context<'_>) -> Result<(), Rejection> {
        let admit: Admit = decode(event)?;
        context.active_member(context.author)?;
        if params::admission(context) != "vouches" {
            return Err(reject(
                "this co-op admits members by proposal (member.admission = proposal)",
            ));
        }
        let application = self.open_application(&admit.applicant, context)?;
        let needed = params::vouches(context);
        let vouches = application
            .vouches
            .iter()
            .filter(|(voucher, (seq, _))| seen(context.past(), **voucher, *seq))
            .count();
        if vouches < needed {
            return Err(reject(format!(
                "{} has {vouches} of the {needed} vouches this co-op asks for",
                admit.applicant
            )));
        }
        Ok(())
    }
}

impl Domain for MemberDomain {
    fn name(&self) -> &'static str {
        "member"
    }

    fn fresh(&self) -> Box<dyn Domain> {
        Box::new(MemberDomain::default())
    }

    fn begin(
        &mut self,
        genesis: &icn_kernel::Genesis,
        founded: Timestamp,
    ) -> Result<(), Rejection> {
        params::check(&genesis.params, None)?;
        for founder in &genesis.founders {
            self.members.insert(
                *founder,
                Membership {
                    status: Status::Active,
                    tier: Tier::Full,
                    since: founded,
                },
            );
        }
        Ok(())
    }

    fn validate(&self, event: &Event, context: &Context<'_>) -> Result<(), Rejection> {
        let author = context.author;
        match event.kind().as_str() {
            KIND_APPLY => {
                let apply: Apply = decode(event)?;
                check_name(&apply.name)?;
                text_check(&apply.note, "the note", NOTE_MAX_BYTES, false)?;
                match context.member(author) {
                    Some(membership) if membership.status != Status::Exited => {
                        Err(reject("you are already a member"))
                    }
                    _ => Ok(()),
                }
            }
            KIND_VOUCH => {
                let vouch: Vouch = decode(event)?;
                text_check(&vouch.note, "the note", NOTE_MAX_BYTES, false)?;
                if vouch.applicant == *author {
                    return Err(reject("a member cannot vouch for themselves"));
                }
                let voucher = context.active_member(author)?;
                if !voucher.may_vote() {
                    return Err(reject("observers do not vouch"));
                }
                let application = self.open_application(&vouch.applicant, context)?;
                // The voucher's own earlier events are all applied.
                if application.vouches.contains_key(author) {
                    return Err(reject(format!(
                        "you already vouched for {}",
                        vouch.applicant
                    )));
                }
                Ok(())
            }
            KIND_ADMIT => self.validate_admit(event, context),
            KIND_PROFILE => {
                let profile: Profile = decode(event)?;
                check_name(&profile.name)?;
                if profile.skills.len() > SKILLS_MAX {
                    return Err(reject(format!("at most {SKILLS_MAX} skills")));
                }
                for skill in &profile.skills {
                    text_check(skill, "a skill", NAME_MAX_BYTES, true)?;
                }
                match context.member(author) {
                    Some(membership) if membership.status != Status::Exited => Ok(()),
                    _ => Err(reject("only members have a profile")),
                }
            }
            KIND_CONFIRM => {
                let membership = context.active_member(author)?;
                if membership.tier != Tier::Provisional {
                    return Err(reject("only a provisional member ends their probation"));
                }
                let days = params::probation_days(context);
                let ends = membership.since.as_millis().saturating_add(days * DAY_MS);
                if event.timestamp().as_millis() < ends {
                    return Err(reject(format!(
                        "the probation of {days} days has not ended"
                    )));
                }
                Ok(())
            }
            KIND_LEAVE => {
                let leave: Leave = decode(event)?;
                text_check(&leave.note, "the note", NOTE_MAX_BYTES, false)?;
                match context.member(author) {
                    Some(membership) if membership.status != Status::Exited => Ok(()),
                    _ => Err(reject("you are not a member")),
                }
            }
            _ => Err(Rejection::UnknownKind {
                kind: event.kind().clone(),
            }),
        }
    }

    fn apply(
        &mut self,
        event: &Event,
        context: &Context<'_>,
        rows: &mut Vec<ViewRow>,
    ) -> Vec<Effect> {
        let author = event.author();
        let mut effects = Vec::new();
        match event.kind().as_str() {
            KIND_APPLY => {
                let apply: Apply = event.body().expect("validated before apply");
                let application = self
                    .applications
                    .entry(author)
                    .or_insert_with(|| Application {
                        name: String::new(),
                        note: String::new(),
                        seq: 0,
                        time_ms: 0,
                        vouches: BTreeMap::new(),
                    });
                // A later application (own chain) replaces the earlier one's
                // words; the vouches stay.
                if event.seq() > application.seq {
                    application.name = apply.name;
                    application.note = apply.note;
                    application.seq = event.seq();
                    application.time_ms = event.timestamp().as_millis();
                }
                rows.push(self.row(&author));
            }
            KIND_VOUCH => {
                let vouch: Vouch = event.body().expect("validated before apply");
                if let Some(application) = self.applications.get_mut(&vouch.applicant) {
                    application
                        .vouches
                        .insert(author, (event.seq(), vouch.note));
                }
                rows.push(self.row(&vouch.applicant));
            }
            KIND_ADMIT => {
                let admit: Admit = event.body().expect("validated before apply");
                let tier = if params::probation_days(context) > 0 {
                    Tier::Provisional
                } else {
                    Tier::Full
                };
                effects.push(Effect::Member {
                    did: admit.applicant,
                    status: Status::Active,
                    tier,
                });
            }
            KIND_PROFILE => {
                let profile: Profile = event.body().expect("validated before apply");
                self.profiles.insert(
                    author,
                    Person {
                        name: profile.name,
                        skills: profile.skills,
                    },
                );
                rows.push(self.row(&author));
            }
            KIND_CONFIRM => effects.push(Effect::Member {
                did: author,
                status: Status::Active,
                tier: Tier::Full,
            }),
            KIND_LEAVE => {
                let tier = context.member(&author).map_or(Tier::Full, |m| m.tier);
                effects.push(Effect::Member {
                    did: author,
                    status: Status::Exited,
                    tier,
                });
            }
            other => unreachable!("validated before apply: {other}"),
        }
        effects
    }

    fn effect(
        &mut self,
        cause: &Event,
        effect: &Effect,
        coop: &CoopState,
        rows: &mut Vec<ViewRow>,
    ) {
        match effect {
            Effect::Member { did, .. } => {
                if let Some(membership) = coop.member(did, None) {
                    self.members.insert(*did, membership);
                    rows.push(self.row(did));
                }
            }
            Effect::Order { domain, body } if domain == "member" => {
                let Ok(MemberOrder::Roles { did, roles }) = postcard::from_bytes(body) else {
                    return;
                };
                let source = (cause.timestamp().as_millis(), cause.author(), cause.seq());
                let newer = self
                    .roles
                    .get(&did)
                    .is_none_or(|(known, _)| source > *known);
                if newer {
                    self.roles.insert(did, (source, roles));
                    rows.push(self.row(&did));
                }
            }
            _ => {}
        }
    }

    fn rows(&self) -> Vec<ViewRow> {
        let mut dids: Vec<&Did> = self
            .members
            .keys()
            .chain(self.applications.keys())
            .collect();
        dids.sort();
        dids.dedup();
        dids.into_iter().map(|did| self.row(did)).collect()
    }
}
