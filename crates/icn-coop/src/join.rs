//! The join protocol (`icn/join/1`), open to any node: a newcomer holding
//! a ticket asks for the co-op's genesis (all a new node needs to start),
//! then hands over its signed application (`member.apply`), which sync
//! carries from here to every member.
//!
//! The network layer serves it (it alone knows iroh); this module decides
//! what to answer. Requests and answers are postcard; the genesis goes back
//! as the event's own bytes.

use icn_kernel::{CoopId, Event, Verdict};
use icn_runtime::{Caller, Node, OpenTo, Protocol};
use serde::{Deserialize, Serialize};

pub const ALPN: &[u8] = b"icn/join/1";

/// A request is at most an application event and its envelope.
const REQUEST_MAX: usize = icn_kernel::EVENT_SIZE_MAX_BYTES + 1024;

/// What the answer to an application may hold (a refusal's reason).
pub const APPLICATION_ANSWER_MAX: usize = 4096;

/// What the answer to a genesis request may hold.
pub const GENESIS_ANSWER_MAX: usize = icn_kernel::EVENT_SIZE_MAX_BYTES;

/// Open applications (made in the last [`APPLICATIONS_WINDOW_MS`]) a node
/// takes, at most: beyond, strangers holding an old ticket could fill the
/// log with applications.
const APPLICATIONS_OPEN_MAX: usize = 64;
const APPLICATIONS_WINDOW_MS: u64 = 30 * 24 * 60 * 60 * 1000;

#[derive(Serialize, Deserialize)]
struct JoinRequest {
    coop: CoopId,
    /// The applicant's signed `member.apply`, once they have the genesis.
    application: Option<Vec<u8>>,
}

/// The request for the genesis of `coop`.
pub fn genesis_request(coop: CoopId) -> Vec<u8> {
    postcard::to_stdvec(&JoinRequest {
        coop,
        application: None,
    })
    .expect("a join request encodes")
}

/// The genesis in an answer, if it is the co-op's that was asked for.
pub fn genesis_from(answer: &[u8], coop: CoopId) -> Result<Event, String> {
    let genesis = Event::decode(answer)
        .map_err(|error| format!("the node sent an unreadable co-op: {error}"))?;
    if CoopId::from(genesis.id()) != coop {
        return Err("the node sent another co-op than the ticket names".to_owned());
    }
    Ok(genesis)
}

/// The request that hands over `application` (a signed `member.apply`).
pub fn application_request(coop: CoopId, application: &Event) -> Vec<u8> {
    postcard::to_stdvec(&JoinRequest {
        coop,
        application: Some(application.bytes().to_vec()),
    })
    .expect("a join request encodes")
}

/// Whether the node took the application, from its answer.
pub fn application_outcome(answer: &[u8]) -> Result<(), String> {
    let outcome: Result<(), String> = postcard::from_bytes(answer)
        .map_err(|error| format!("the node's answer is unreadable: {error}"))?;
    outcome
}

pub(crate) fn protocol() -> Protocol {
    Protocol {
        alpn: ALPN,
        open_to: OpenTo::Anyone,
        request_max: REQUEST_MAX,
        serve: Box::new(serve),
    }
}

fn serve(node: &mut Node, caller: &Caller, request: &[u8]) -> Result<Vec<u8>, String> {
    let request: JoinRequest =
        postcard::from_bytes(request).map_err(|_| "an unreadable join request".to_owned())?;
    let Some(log) = node.log().filter(|log| log.coop() == request.coop) else {
        return Err("not this co-op".to_owned());
    };
    let Some(application) = request.application else {
        return Ok(log.genesis().bytes().to_vec());
    };
    let outcome = take_application(node, caller, &application);
    if let Err(reason) = &outcome {
        tracing::info!(%reason, "Refused an application to join.");
    }
    Ok(postcard::to_stdvec(&outcome).expect("an outcome encodes"))
}

/// Takes an applicant's `member.apply`, signed by the key that delivers
/// it, into the log, within a bound on open applications.
fn take_application(node: &mut Node, caller: &Caller, bytes: &[u8]) -> Result<(), String> {
    let event = Event::decode(bytes).map_err(|error| format!("unreadable application: {error}"))?;
    if event.kind().as_str() != icn_governance::KIND_APPLY {
        return Err("only an application (member.apply) is taken before admission".to_owned());
    }
    if event.content().signer.as_bytes() != &caller.key {
        return Err("an application is signed by the key that delivers it".to_owned());
    }
    let event = event
        .verify()
        .map_err(|_| "the application's signature does not verify".to_owned())?;
    let now = icn_runtime::node::now();
    // The membership's own rows, not the API's answer.
    let rows = node
        .store()
        .view(icn_governance::VIEW_MEMBER)
        .map_err(|error| error.to_string())?;
    let mut open = 0;
    for (key, value) in &rows {
        let member: icn_governance::MemberRow =
            crate::ledger::parse_row(key, value).map_err(|error| error.to_string())?;
        if member.status == "applicant"
            && member.applied_ms.unwrap_or(0) + APPLICATIONS_WINDOW_MS > now.as_millis()
        {
            open += 1;
        }
    }
    if open >= APPLICATIONS_OPEN_MAX {
        return Err("this node holds too many open applications; ask a member".to_owned());
    }
    match node.ingest(vec![event], now) {
        Ok(verdicts) => match verdicts.into_iter().next() {
            Some(Verdict::Accepted | Verdict::Duplicate) => Ok(()),
            Some(Verdict::Quarantined(rejection) | Verdict::Rejected(rejection)) => {
                Err(rejection.to_string())
            }
            other => Err(format!("the application was not taken ({other:?})")),
        },
        Err(error) => Err(error.to_string()),
    }
}
