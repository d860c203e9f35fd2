//! The admin client stays small: what links it (icnctl, later a TUI or a
//! PAM module inside sshd) must not link the daemon's network, web server
//! or database.

#[test]
fn the_client_links_no_network_web_server_or_database() {
    let output = std::process::Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "--package",
            "icn-client",
            "--edges",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    let tree = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(tree.contains("hyper"), "the tree was read: {tree}");
    let forbidden = |name: &str| {
        name.starts_with("iroh")
            || [
                "axum",
                "rusqlite",
                "libsqlite3-sys",
                "icn-node",
                "icn-store",
            ]
            .contains(&name)
    };
    let found: Vec<&str> = tree
        .lines()
        .filter(|line| line.split_whitespace().next().is_some_and(forbidden))
        .collect();
    assert!(found.is_empty(), "icn-client links {found:?}");
}
