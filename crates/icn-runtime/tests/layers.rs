//! The crate map ARCHITECTURE.md draws, checked against the manifests:
//! which crate alone may depend on iroh, axum or SQLite, and what the
//! runtime and the consensus crates may not depend on at all.

use std::{collections::BTreeMap, path::Path};

/// Every workspace crate's normal (not dev) dependencies, by crate.
fn dependencies() -> BTreeMap<String, Vec<String>> {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut map = BTreeMap::new();
    for entry in std::fs::read_dir(&crates).expect("crates/ reads") {
        let manifest = entry.expect("an entry").path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let parsed: toml::Table = text.parse().expect("a manifest parses");
        let name = parsed["package"]["name"]
            .as_str()
            .expect("a name")
            .to_owned();
        let names = parsed
            .get("dependencies")
            .and_then(toml::Value::as_table)
            .map(|deps| deps.keys().cloned().collect())
            .unwrap_or_default();
        map.insert(name, names);
    }
    map
}

#[test]
fn each_outside_world_is_known_by_one_crate() {
    let map = dependencies();
    assert!(map.len() >= 12, "the manifests were read: {map:?}");
    // (dependency, the crates that may name it). icn-bench measures each
    // layer beside a bare ceiling, so it may name them too.
    let rules: &[(&str, &[&str])] = &[
        ("iroh", &["icn-net"]),
        ("iroh-relay", &["icn-net"]),
        ("iroh-mdns-address-lookup", &["icn-net"]),
        ("rustls", &["icn-net"]),
        ("axum", &["icn-node", "icn-bench"]),
        ("rusqlite", &["icn-store", "icn-bench"]),
    ];
    for (dependency, allowed) in rules {
        for (krate, names) in &map {
            if names.iter().any(|name| name == dependency) {
                assert!(
                    allowed.contains(&krate.as_str()),
                    "{krate} depends on {dependency}, which only {allowed:?} may"
                );
            }
        }
    }
}

#[test]
fn the_runtime_and_the_consensus_crates_stay_below_everything_else() {
    let map = dependencies();
    let above_runtime = [
        "icn-api",
        "icn-coop",
        "icn-net",
        "icn-node",
        "icn-ledger",
        "icn-governance",
        "axum",
        "iroh",
    ];
    for name in &map["icn-runtime"] {
        assert!(
            !above_runtime.contains(&name.as_str()),
            "icn-runtime depends on {name}"
        );
    }
    // The kernel and the domains are pure: no runtime, API, store or I/O.
    let impure = [
        "icn-api",
        "icn-runtime",
        "icn-store",
        "icn-node",
        "tokio",
        "rusqlite",
    ];
    for krate in ["icn-kernel", "icn-ledger", "icn-governance"] {
        for name in &map[krate] {
            assert!(
                !impure.contains(&name.as_str()),
                "{krate} depends on {name}"
            );
        }
    }
}

#[test]
fn the_network_knows_modules_only_through_the_runtime() {
    let map = dependencies();
    // Modules register their protocols with the runtime; the network serves
    // whatever is registered, so it names neither a module nor a domain.
    let modules_and_domains = ["icn-coop", "icn-ledger", "icn-governance", "icn-node"];
    for name in &map["icn-net"] {
        assert!(
            !modules_and_domains.contains(&name.as_str()),
            "icn-net depends on {name}"
        );
    }
    // A module's crate does not know the network either.
    for name in &map["icn-coop"] {
        assert!(
            !["icn-net", "iroh", "icn-node"].contains(&name.as_str()),
            "icn-coop depends on {name}"
        );
    }
}
