//! `icnctl files …`: keep files in your encrypted space (or the co-op's),
//! get them back, list them, see their versions.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use icn_api::files as api;

use crate::{Context, Failure, Outcome, ledger::short};

#[derive(Subcommand)]
pub enum FilesCommand {
    /// Keep a local file as a new version: `files put report.pdf` (its
    /// path in the space is its name, or --as).
    Put {
        file: PathBuf,
        /// Its path in the space, e.g. `reports/2026.pdf`.
        #[arg(long = "as")]
        path: Option<String>,
        /// The co-op's shared space instead of your own.
        #[arg(long)]
        shared: bool,
    },
    /// Write a file back: `files get reports/2026.pdf --to ~/2026.pdf`.
    Get {
        path: String,
        /// Where to write it (it must not exist); default: its name, here.
        #[arg(long)]
        to: Option<PathBuf>,
        /// A version id (or its first 8+ hex digits); default: the newest.
        #[arg(long)]
        version: Option<String>,
        #[arg(long)]
        shared: bool,
    },
    /// The files of your space (or the co-op's, --shared).
    Ls {
        #[arg(long)]
        shared: bool,
    },
    /// Every version of a file, oldest first.
    History {
        path: String,
        #[arg(long)]
        shared: bool,
    },
    /// Delete a file (its versions stay in its history).
    Rm {
        path: String,
        #[arg(long)]
        shared: bool,
    },
}

fn absolute(path: &Path) -> Result<String, Failure> {
    std::path::absolute(path)
        .map(|path| path.display().to_string())
        .map_err(|error| Failure::new(format!("{}: {error}", path.display()), None))
}

fn when(ms: u64) -> String {
    icn_kernel::calendar::format_utc(ms)
}

pub fn run(context: &Context, command: FilesCommand) -> Outcome {
    match command {
        FilesCommand::Put { file, path, shared } => {
            let path = match path {
                Some(path) => path,
                None => file
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
                    .ok_or_else(|| Failure::new("name the file's path with --as", None))?,
            };
            let request = api::Put {
                source: absolute(&file)?,
                path,
                shared,
            };
            let stored: api::Stored =
                context.module_call("POST", "/admin/v1/files/put", &request)?;
            context.print(&stored, |stored| {
                format!(
                    "Stored {} ({} bytes, {} chunks, {} new: {} bytes written) as version {}.",
                    stored.path,
                    stored.size,
                    stored.chunks,
                    stored.new_chunks,
                    stored.new_bytes,
                    short(&stored.version)
                )
            });
        }
        FilesCommand::Get {
            path,
            to,
            version,
            shared,
        } => {
            let to = match to {
                Some(to) => to,
                None => PathBuf::from(path.rsplit('/').next().unwrap_or(&path)),
            };
            let request = api::Get {
                path,
                to: absolute(&to)?,
                version,
                shared,
            };
            let written: api::Written =
                context.module_call("POST", "/admin/v1/files/get", &request)?;
            context.print(&written, |written| {
                format!(
                    "Wrote {} ({} bytes, version {}) to {}.",
                    written.path,
                    written.size,
                    short(&written.version),
                    written.to
                )
            });
        }
        FilesCommand::Ls { shared } => {
            let listing: api::Listing = context.module_get(&format!(
                "/admin/v1/files?{}",
                serde_urlencoded::to_string([("shared", shared)]).expect("encodes")
            ))?;
            context.print(&listing, |listing| {
                let unreadable = match listing.unreadable {
                    0 => String::new(),
                    count => format!(
                        "\n{count} versions are sealed with a key this device cannot open yet; \
                         the node that made it shares it once it sees this device's key."
                    ),
                };
                if listing.files.is_empty() {
                    return format!(
                        "No files in {} yet: `icnctl files put FILE` keeps one.{unreadable}",
                        listing.namespace
                    );
                }
                let mut lines = vec![format!("{}:", listing.namespace)];
                for entry in &listing.files {
                    let siblings = if entry.heads.len() > 1 {
                        format!(
                            "  ({} versions made apart, all kept: `icnctl files history {}`)",
                            entry.heads.len(),
                            entry.path
                        )
                    } else {
                        String::new()
                    };
                    lines.push(format!(
                        "  {:>12}  {}  {}{siblings}",
                        entry.size,
                        when(entry.modified_ms),
                        entry.path
                    ));
                }
                lines.join("\n") + &unreadable
            });
        }
        FilesCommand::History { path, shared } => {
            let query = serde_urlencoded::to_string([
                ("path", path.as_str()),
                ("shared", if shared { "true" } else { "false" }),
            ])
            .expect("encodes");
            let history: api::History =
                context.module_get(&format!("/admin/v1/files/history?{query}"))?;
            context.print(&history, |history| {
                let mut lines = vec![format!("{}:", history.path)];
                for version in &history.versions {
                    lines.push(format!(
                        "  {}  {}  {:<6} {:>12}  by {}{}",
                        short(&version.id),
                        when(version.time_ms),
                        version.change,
                        version.size,
                        short(&version.author),
                        if version.head { "  (current)" } else { "" }
                    ));
                }
                lines.join("\n")
            });
        }
        FilesCommand::Rm { path, shared } => {
            let request = api::Remove { path, shared };
            let removed: api::Version =
                context.module_call("POST", "/admin/v1/files/rm", &request)?;
            context.print(&removed, |removed| {
                format!(
                    "Deleted (version {}); `icnctl files history` still lists its versions.",
                    short(&removed.id)
                )
            });
        }
    }
    Ok(())
}
