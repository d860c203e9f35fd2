//! Tickets: what one member pastes to another so their nodes can meet.

use std::net::SocketAddr;

use icn_kernel::CoopId;
use iroh::{EndpointAddr, TransportAddr};
use serde::{Deserialize, Serialize};

use super::relay::RelayRef;

/// A peer's address and the co-op, as one pasteable string: `icn1…`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub coop: CoopId,
    pub endpoint: [u8; 32],
    pub addrs: Vec<SocketAddr>,
    /// The relay the node keeps a connection to, for peers that cannot
    /// reach any of `addrs` (both behind home routers).
    pub relay: Option<RelayRef>,
    /// The co-op's other relays (a co-op may run two or three), so that a
    /// new member's node has another when one is down. Encoded last: the
    /// previous release reads a ticket without it, and ignores it.
    pub more_relays: Vec<RelayRef>,
}

/// A ticket as the previous release (0.2.0) wrote it.
#[derive(Deserialize)]
struct TicketV1 {
    coop: CoopId,
    endpoint: [u8; 32],
    addrs: Vec<SocketAddr>,
    relay: Option<RelayRef>,
}

/// Bounds on what a pasted ticket may hold.
const TICKET_ADDRS_MAX: usize = 16;
/// Relays besides the first, at most.
pub const TICKET_MORE_RELAYS_MAX: usize = 3;
const RELAY_URL_LEN_MAX: usize = 256;
pub const TICKET_TEXT_LEN_MAX: usize = 2048;

pub const TICKET_PREFIX: &str = "icn1";

impl Ticket {
    pub fn encode(&self) -> String {
        let bytes = postcard::to_stdvec(self).expect("tickets serialise");
        format!("{TICKET_PREFIX}{}", bs58::encode(bytes).into_string())
    }

    pub fn parse(text: &str) -> Result<Ticket, String> {
        let text = text.trim();
        if text.len() > TICKET_TEXT_LEN_MAX {
            return Err("that is too long to be a ticket; copy it again".into());
        }
        let body = text
            .strip_prefix(TICKET_PREFIX)
            .ok_or("a ticket starts with icn1 (ask a member to run `icnctl net ticket`)")?;
        let bytes = bs58::decode(body)
            .into_vec()
            .map_err(|_| "the ticket is damaged (not base58); copy it again")?;
        let ticket: Ticket = match postcard::take_from_bytes::<Ticket>(&bytes) {
            Ok((ticket, [])) => ticket,
            _ => {
                let old: TicketV1 = postcard::from_bytes(&bytes)
                    .map_err(|_| "the ticket is damaged; copy it again")?;
                Ticket {
                    coop: old.coop,
                    endpoint: old.endpoint,
                    addrs: old.addrs,
                    relay: old.relay,
                    more_relays: Vec::new(),
                }
            }
        };
        if ticket.addrs.len() > TICKET_ADDRS_MAX {
            return Err("the ticket names too many addresses".into());
        }
        if ticket.more_relays.len() > TICKET_MORE_RELAYS_MAX {
            return Err("the ticket names too many relays".into());
        }
        for relay in ticket.relays() {
            if relay.url.len() > RELAY_URL_LEN_MAX {
                return Err("the ticket's relay URL is too long".into());
            }
            relay.relay_url()?;
        }
        if ticket.addrs.is_empty() && ticket.relay.is_none() {
            return Err("the ticket names no address and no relay".into());
        }
        Ok(ticket)
    }

    /// Every relay the ticket names, the node's own first.
    pub fn relays(&self) -> impl Iterator<Item = &RelayRef> {
        self.relay.iter().chain(&self.more_relays)
    }

    /// Where to dial the node: its addresses, and its relays if `relayed`.
    pub fn endpoint_addr(&self, relayed: bool) -> Result<EndpointAddr, String> {
        let id = iroh::PublicKey::from_bytes(&self.endpoint)
            .map_err(|_| "the ticket's node key is not valid".to_owned())?;
        let relay = self
            .relays()
            .filter(|_| relayed)
            .filter_map(|relay| relay.relay_url().ok())
            .map(TransportAddr::Relay);
        Ok(EndpointAddr::from_parts(
            id,
            self.addrs
                .iter()
                .copied()
                .map(TransportAddr::Ip)
                .chain(relay),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(relay: Option<RelayRef>, addrs: Vec<SocketAddr>) -> Ticket {
        Ticket {
            coop: CoopId([3; 32]),
            endpoint: ed25519_dalek::SigningKey::from_bytes(&[5; 32])
                .verifying_key()
                .to_bytes(),
            addrs,
            relay,
            more_relays: Vec::new(),
        }
    }

    #[test]
    fn tickets_round_trip_and_bad_ones_say_why() {
        let relay = RelayRef {
            url: "https://10.0.0.1:7880".to_owned(),
            key: [4; 32],
        };
        let with_relay = ticket(Some(relay.clone()), vec![]);
        assert_eq!(Ticket::parse(&with_relay.encode()), Ok(with_relay.clone()));
        let addr = with_relay.endpoint_addr(true).unwrap();
        assert_eq!(addr.relay_urls().count(), 1);
        assert_eq!(
            with_relay
                .endpoint_addr(false)
                .unwrap()
                .relay_urls()
                .count(),
            0
        );

        let nowhere = ticket(None, vec![]);
        assert!(
            Ticket::parse(&nowhere.encode())
                .unwrap_err()
                .contains("no address")
        );
        let plain_http = ticket(
            Some(RelayRef {
                url: "http://10.0.0.1:7880".to_owned(),
                ..relay
            }),
            vec![],
        );
        assert!(
            Ticket::parse(&plain_http.encode())
                .unwrap_err()
                .contains("https")
        );
        assert!(Ticket::parse("icn1").is_err());
        assert!(Ticket::parse("hello").unwrap_err().contains("icn1"));
        assert!(
            Ticket::parse(&"icn1".repeat(1000))
                .unwrap_err()
                .contains("too long")
        );
        let mut damaged = with_relay.encode();
        damaged.truncate(damaged.len() - 5);
        assert!(Ticket::parse(&damaged).is_err());
    }

    #[test]
    fn tickets_carry_every_relay_and_read_the_previous_format() {
        let relay = |n: u8| RelayRef {
            url: format!("https://10.0.0.{n}:7880"),
            key: [n; 32],
        };
        let mut two = ticket(Some(relay(1)), vec![]);
        two.more_relays = vec![relay(2)];
        let parsed = Ticket::parse(&two.encode()).unwrap();
        assert_eq!(parsed, two);
        assert_eq!(parsed.endpoint_addr(true).unwrap().relay_urls().count(), 2);
        // The previous release wrote four fields and reads four.
        #[derive(Serialize)]
        struct V1<'a>(
            &'a CoopId,
            &'a [u8; 32],
            &'a Vec<SocketAddr>,
            &'a Option<RelayRef>,
        );
        let old = V1(&two.coop, &two.endpoint, &two.addrs, &two.relay);
        let text = format!(
            "{TICKET_PREFIX}{}",
            bs58::encode(postcard::to_stdvec(&old).unwrap()).into_string()
        );
        let read = Ticket::parse(&text).unwrap();
        assert_eq!((read.relay, read.more_relays), (Some(relay(1)), vec![]));
        let bytes = bs58::decode(&two.encode()[TICKET_PREFIX.len()..])
            .into_vec()
            .unwrap();
        let previous: TicketV1 = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(previous.relay, Some(relay(1)));
        // Too many relays.
        two.more_relays = (2..=5).map(relay).collect();
        assert!(
            Ticket::parse(&two.encode())
                .unwrap_err()
                .contains("too many relays")
        );
    }
}
