//! The store at its boundary: open, commit, read back, refuse what is wrong.

use icn_kernel::{Changes, Domain, Event, Log, LogConfig};
use icn_store::{Store, StoreError};
use icn_testkit::{Coop, NoteDomain, at, member, verified};

fn domains() -> Vec<Box<dyn Domain>> {
    vec![Box::new(NoteDomain::default())]
}

#[test]
fn events_and_views_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let ana = member(1);
    let mut coop = Coop::found("Bakery", &[&ana]);
    let (mut log, mut changes) = Log::new(
        verified(coop.genesis.clone()),
        LogConfig::default(),
        domains(),
    )
    .unwrap();
    let note = coop.note(&ana, "hello", vec![], at(1));
    log.ingest(verified(note.clone()), at(1), &mut changes);
    {
        let mut store = Store::open(dir.path()).unwrap();
        let genesis = coop.genesis.id().to_string();
        store
            .commit(&changes, &[("genesis", genesis.as_str())])
            .unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.schema_version().unwrap(), icn_store::SCHEMA_VERSION);
    assert_eq!(
        store.meta("genesis").unwrap(),
        Some(coop.genesis.id().to_string())
    );
    assert_eq!(store.counted_events().unwrap(), 2);
    let events: Vec<Event> = store
        .events()
        .unwrap()
        .iter()
        .map(|stored| Store::decode(stored).unwrap())
        .collect();
    assert_eq!(events[1].id(), note.id());
    let stored_rows: Vec<(String, String)> = store
        .all_view_rows()
        .unwrap()
        .into_iter()
        .map(|(view, key, _)| (view, key))
        .collect();
    let folded: Vec<(String, String)> = log
        .all_rows()
        .into_iter()
        .map(|row| (row.view.to_owned(), row.key))
        .collect();
    assert_eq!(stored_rows, folded);

    // The row-by-row check agrees, and notices any difference.
    let rows = log.all_rows();
    assert!(store.views_match(&rows).unwrap());
    let mut changed = rows.clone();
    changed[0].value = Some("something else".to_owned());
    assert!(!store.views_match(&changed).unwrap());
    assert!(!store.views_match(&rows[1..]).unwrap(), "a row missing");
    let mut extra = rows.clone();
    extra.push(icn_kernel::ViewRow {
        view: "zz",
        key: "k".to_owned(),
        value: Some(String::new()),
    });
    assert!(!store.views_match(&extra).unwrap(), "a row too many");
}

#[test]
fn a_second_process_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Store::open(dir.path()).unwrap();
    let second = Store::open(dir.path());
    assert!(matches!(second, Err(StoreError::Locked { .. })));
    assert!(
        second
            .err()
            .unwrap()
            .to_string()
            .contains("in use by another ICN process")
    );
}

#[test]
fn a_file_that_is_not_a_database_is_reported_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(icn_store::DATABASE_FILE);
    std::fs::write(
        &path,
        b"this is certainly not sqlite, just some text that is long enough",
    )
    .unwrap();
    let error = Store::open(dir.path()).err().unwrap();
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error}");
    assert!(
        std::fs::read(&path)
            .unwrap()
            .starts_with(b"this is certainly not sqlite")
    );
}

#[test]
fn a_database_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    let connection = rusqlite_connection(&dir.path().join(icn_store::DATABASE_FILE));
    connection.pragma_update(None, "user_version", 99).unwrap();
    drop(connection);
    assert!(matches!(
        Store::open(dir.path()),
        Err(StoreError::TooNew { found: 99, .. })
    ));
}

fn rusqlite_connection(path: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

#[test]
fn an_empty_commit_is_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    store.commit(&Changes::default(), &[]).unwrap();
    assert_eq!(store.counted_events().unwrap(), 0);
}

#[test]
fn a_full_disk_refuses_the_batch_and_keeps_what_was_committed() {
    let dir = tempfile::tempdir().unwrap();
    let ana = member(1);
    let mut coop = Coop::found("Bakery", &[&ana]);
    let (mut log, changes) = Log::new(
        verified(coop.genesis.clone()),
        LogConfig::default(),
        domains(),
    )
    .unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    store.commit(&changes, &[]).unwrap();
    let rows_before = store.all_view_rows().unwrap();

    store.set_page_limit(store.page_count().unwrap()).unwrap();
    let mut big = Changes::default();
    for i in 0..500 {
        let note = coop.note(
            &ana,
            &format!("note number {i} with some padding text"),
            vec![],
            at(1),
        );
        log.ingest(verified(note), at(1), &mut big);
    }
    let error = store.commit(&big, &[]).unwrap_err();
    assert!(matches!(error, StoreError::DiskFull), "{error}");
    assert_eq!(error.to_string(), "the disk is full; nothing was written");
    // Nothing of the failed batch is stored; everything before it still is.
    assert_eq!(store.counted_events().unwrap(), 1);
    assert_eq!(store.all_view_rows().unwrap(), rows_before);

    // With room again, the same batch commits.
    store.set_page_limit(1 << 30).unwrap();
    store.commit(&big, &[]).unwrap();
    assert_eq!(store.counted_events().unwrap(), 501);
}

/// A database written by schema version 1 (the first release) is migrated
/// in place and keeps its events, their order and their counted flags.
#[test]
fn a_version_one_database_is_migrated_without_losing_events() {
    let dir = tempfile::tempdir().unwrap();
    let ana = member(1);
    let mut coop = Coop::found("Bakery", &[&ana]);
    let note = coop.note(&ana, "hello", vec![], at(1));
    {
        let connection = rusqlite::Connection::open(dir.path().join("icn.db")).unwrap();
        connection.execute_batch(icn_testkit::SCHEMA_V1).unwrap();
        for (event, counted) in [(&coop.genesis, true), (&note, false)] {
            connection
                .execute(
                    "INSERT INTO events (id, author, seq, kind, timestamp_ms, counted, bytes)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    rusqlite::params![
                        event.id().0.as_slice(),
                        event.author().to_string(),
                        event.seq() as i64,
                        event.kind().as_str(),
                        event.timestamp().as_millis() as i64,
                        counted,
                        event.bytes()
                    ],
                )
                .unwrap();
        }
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.schema_version().unwrap(), icn_store::SCHEMA_VERSION);
    let events = store.events().unwrap();
    let ids: Vec<_> = events
        .iter()
        .map(|row| (Store::decode(row).unwrap().id(), row.counted))
        .collect();
    assert_eq!(ids, vec![(coop.genesis.id(), true), (note.id(), false)]);
}
