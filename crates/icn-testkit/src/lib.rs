//! Test support shared by the workspace's integration tests.
//!
//! - [`member`]: deterministic keys and DIDs from a seed number;
//! - [`Coop`]: builds a genesis and signed events without any IO;
//! - [`NoteDomain`]: a minimal domain to exercise the plug-in interface;
//! - [`cli`]: runs the real `icnd` and `icnctl` binaries in a temp dir.

pub mod cli;

use std::collections::BTreeMap;

use icn_identity::{Did, KeyPair};
use icn_kernel::{
    Context, CoopId, CurrencySpec, Domain, Effect, Event, EventContent, EventId, EventKind,
    FORMAT_VERSION, Genesis, KIND_GENESIS, Rejection, Timestamp, VerifiedEvent, ViewRow,
    encode_body,
};
use serde::{Deserialize, Serialize};

/// A deterministic key for test member number `n`.
pub fn member(n: u8) -> KeyPair {
    KeyPair::from_seed(&[n.wrapping_add(1); 32])
}

pub fn did_of(key: &KeyPair) -> Did {
    Did::from_inception_key(key.public())
}

/// The co-op `hours` currency, counted in minutes.
pub fn hours() -> CurrencySpec {
    CurrencySpec {
        code: "hours".to_owned(),
        unit: "minute".to_owned(),
        units_per_whole: 60,
    }
}

/// A milestone in test time: 2026-01-01T00:00:00Z plus `minutes`.
pub fn at(minutes: u64) -> Timestamp {
    Timestamp(1_767_225_600_000 + minutes * 60_000)
}

/// The database layout of schema version 1 (the first release), for tests
/// of the migrations that follow it.
pub const SCHEMA_V1: &str =
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
     CREATE TABLE events (
         seqno INTEGER PRIMARY KEY AUTOINCREMENT, id BLOB NOT NULL UNIQUE,
         author TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL,
         timestamp_ms INTEGER NOT NULL, counted INTEGER NOT NULL, bytes BLOB NOT NULL);
     CREATE INDEX events_author_seq ON events (author, seq);
     CREATE TABLE evidence (author TEXT NOT NULL, seq INTEGER NOT NULL,
         event_id BLOB NOT NULL, PRIMARY KEY (author, seq, event_id)) WITHOUT ROWID;
     CREATE TABLE view_rows (view TEXT NOT NULL, key TEXT NOT NULL,
         value TEXT NOT NULL, PRIMARY KEY (view, key)) WITHOUT ROWID;
     PRAGMA user_version = 1;";

pub fn verified(event: Event) -> VerifiedEvent {
    event.verify().expect("test events are signed correctly")
}

/// Builds a co-op's events in memory, tracking each author's chain position.
pub struct Coop {
    pub genesis: Event,
    pub id: CoopId,
    positions: BTreeMap<Did, (u64, Option<EventId>)>,
}

impl Coop {
    /// Founded by `founders[0]`, with all of `founders` as founding members.
    pub fn found(name: &str, founders: &[&KeyPair]) -> Coop {
        Coop::found_with(name, founders, &[])
    }

    /// As [`Coop::found`], with co-op parameters (`ledger.floor` → `20` …).
    pub fn found_with(name: &str, founders: &[&KeyPair], params: &[(&str, &str)]) -> Coop {
        let body = Genesis {
            name: name.to_owned(),
            founders: founders.iter().map(|key| did_of(key)).collect(),
            charter: "We decide together.".to_owned(),
            currencies: vec![hours()],
            params: params
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
        };
        let founder = founders[0];
        let genesis = Event::sign(
            EventContent {
                format: FORMAT_VERSION,
                scope: CoopId::GENESIS,
                author: did_of(founder),
                seq: 1,
                prev: None,
                deps: vec![],
                timestamp: at(0),
                kind: EventKind::new(KIND_GENESIS).unwrap(),
                body: encode_body(&body),
                signer: founder.public(),
            },
            founder,
        )
        .unwrap();
        let id = CoopId::from(genesis.id());
        let positions = BTreeMap::from([(did_of(founder), (1, Some(genesis.id())))]);
        Coop {
            genesis,
            id,
            positions,
        }
    }

    /// The next event in `author`'s chain, signed with `signer`.
    pub fn event_signed(
        &mut self,
        author: Did,
        signer: &KeyPair,
        kind: &str,
        body: Vec<u8>,
        deps: Vec<EventId>,
        time: Timestamp,
    ) -> Event {
        let (seq, prev) = self.positions.get(&author).copied().unwrap_or((0, None));
        let mut deps = deps;
        deps.sort();
        deps.dedup();
        let event = Event::sign(
            EventContent {
                format: FORMAT_VERSION,
                scope: self.id,
                author,
                seq: seq + 1,
                prev,
                deps,
                timestamp: time,
                kind: EventKind::new(kind).unwrap(),
                body,
                signer: signer.public(),
            },
            signer,
        )
        .unwrap();
        self.positions.insert(author, (seq + 1, Some(event.id())));
        event
    }

    /// The next event by `key`'s own identity, signed with that key.
    pub fn event(&mut self, key: &KeyPair, kind: &str, body: Vec<u8>, time: Timestamp) -> Event {
        self.event_signed(did_of(key), key, kind, body, vec![], time)
    }

    /// A note (see [`NoteDomain`]) with the given deps.
    pub fn note(
        &mut self,
        key: &KeyPair,
        text: &str,
        deps: Vec<EventId>,
        time: Timestamp,
    ) -> Event {
        self.event_signed(
            did_of(key),
            key,
            "note.add",
            encode_body(&Note {
                text: text.to_owned(),
            }),
            deps,
            time,
        )
    }

    /// Rewinds `author`'s position so the next event reuses a seq (to equivocate).
    pub fn rewind(&mut self, author: Did, seq: u64, prev: Option<EventId>) {
        self.positions.insert(author, (seq, prev));
    }

    pub fn position(&self, author: &Did) -> (u64, Option<EventId>) {
        self.positions.get(author).copied().unwrap_or((0, None))
    }
}

#[derive(Serialize, Deserialize)]
pub struct Note {
    pub text: String,
}

/// A minimal domain: `note.add` events become rows keyed by event id. Notes
/// are at most 100 bytes and may not be empty.
#[derive(Default)]
pub struct NoteDomain {
    notes: BTreeMap<EventId, String>,
}

impl Domain for NoteDomain {
    fn name(&self) -> &'static str {
        "note"
    }

    fn fresh(&self) -> Box<dyn Domain> {
        Box::new(NoteDomain::default())
    }

    fn validate(&self, event: &Event, _context: &Context<'_>) -> Result<(), Rejection> {
        if event.kind().as_str() != "note.add" {
            return Err(Rejection::UnknownKind {
                kind: event.kind().clone(),
            });
        }
        let note: Note = event.body().map_err(|error| Rejection::BadBody {
            reason: error.to_string(),
        })?;
        if note.text.is_empty() || note.text.len() > 100 {
            return Err(Rejection::rule("a note has 1 to 100 bytes"));
        }
        Ok(())
    }

    fn apply(
        &mut self,
        event: &Event,
        _context: &Context<'_>,
        rows: &mut Vec<ViewRow>,
    ) -> Vec<Effect> {
        let note: Note = event.body().expect("validated before apply");
        rows.push(note_row(event.id(), &note.text));
        self.notes.insert(event.id(), note.text);
        Vec::new()
    }

    fn rows(&self) -> Vec<ViewRow> {
        self.notes
            .iter()
            .map(|(id, text)| note_row(*id, text))
            .collect()
    }
}

fn note_row(id: EventId, text: &str) -> ViewRow {
    ViewRow {
        view: "note",
        key: id.to_string(),
        value: Some(serde_json::Value::String(text.to_owned()).to_string()),
    }
}
