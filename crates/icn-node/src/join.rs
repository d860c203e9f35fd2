//! The newcomer's side of the co-op's join protocol
//! ([`icn_coop::join`]), over the network's one-request [`net::ask`].

use icn_kernel::Event;

use crate::net::{self, Ticket};

/// Fetches the genesis of the co-op a ticket names from the node it names.
pub async fn fetch_genesis(ticket: &Ticket, seed: &[u8; 32]) -> anyhow::Result<Event> {
    let request = icn_coop::join::genesis_request(ticket.coop);
    let answer = net::ask(
        ticket,
        seed,
        icn_coop::join::ALPN,
        &request,
        icn_coop::join::GENESIS_ANSWER_MAX,
    )
    .await?;
    icn_coop::join::genesis_from(&answer, ticket.coop).map_err(anyhow::Error::msg)
}

/// Hands this node's signed application to the node a ticket names.
pub async fn submit_application(
    ticket: &Ticket,
    seed: &[u8; 32],
    application: &Event,
) -> anyhow::Result<()> {
    let request = icn_coop::join::application_request(ticket.coop, application);
    let answer = net::ask(
        ticket,
        seed,
        icn_coop::join::ALPN,
        &request,
        icn_coop::join::APPLICATION_ANSWER_MAX,
    )
    .await?;
    icn_coop::join::application_outcome(&answer).map_err(anyhow::Error::msg)
}
