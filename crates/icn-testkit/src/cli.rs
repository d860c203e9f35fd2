//! Runs the real binaries in a temp dir (filled in with the daemon).
