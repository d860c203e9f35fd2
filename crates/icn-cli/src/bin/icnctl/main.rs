//! `icnctl`: the ICN command line. Talks to a running `icnd` over the data
//! directory's admin socket, or opens the data directory itself when no
//! daemon is running.

mod devices;
mod files;
mod governance;
mod ledger;
mod net;
mod recovery;
mod trust;
mod web;

use icn_node::prelude::*;
use std::{collections::BTreeMap, path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use icn_client::ClientError;
use icn_identity::{Did, KeyPair, KeystoreContents, StoredKey};
use icn_node::{DataDir, Node, PublicIdentity, config::default_data_dir, node::now, passphrase};
use serde::Serialize;
use zeroize::Zeroizing;

#[derive(Parser)]
#[command(
    name = "icnctl",
    version,
    about = "Manage an ICN node: identity, co-op, status."
)]
struct Cli {
    /// Data directory of the node. Default: $ICN_DATA_DIR or ~/.local/share/icn.
    #[arg(long, global = true, env = "ICN_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Read the keystore passphrase from this file instead of ICN_KEYSTORE_PASSPHRASE or a prompt.
    #[arg(long, global = true)]
    passphrase_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Your identity (DID and keys).
    Id {
        #[command(subcommand)]
        command: IdCommand,
    },
    /// Your co-op.
    Coop {
        #[command(subcommand)]
        command: CoopCommand,
    },
    /// Hours and other currencies: pay, ask, dispute, balances, history, statements, export.
    Ledger {
        #[command(subcommand)]
        command: ledger::LedgerCommand,
    },
    /// Members and applicants: list, vouch, your profile, leaving.
    Member {
        #[command(subcommand)]
        command: governance::MemberCommand,
    },
    /// Decide together: templates, proposals, votes, outcomes.
    #[command(alias = "gov")]
    Governance {
        #[command(subcommand)]
        command: governance::GovernanceCommand,
    },
    /// Your files, encrypted, kept by your node: put, get, ls, history, rm
    /// (--shared: the co-op's shared space).
    Files {
        #[command(subcommand)]
        command: files::FilesCommand,
    },
    /// Trust between members: state it, read scores, ask why.
    Trust {
        #[command(subcommand)]
        command: trust::TrustCommand,
    },
    /// Show this node's DID, co-op, event count, peers, uptime and version.
    Status,
    /// Diagnose the common problems (daemon not running, no peers, relay
    /// unreachable, clock skew, disk nearly full, backup overdue), each
    /// with its fix. Exit code 2 when something fails.
    Doctor,
    /// Write an encrypted backup (keystore + database) while icnd runs:
    /// `icnctl backup --to /media/usb/icn.icnbak`. icnd also writes one a
    /// day into DIR/backups (7 daily, 4 weekly kept).
    Backup {
        #[arg(long)]
        to: PathBuf,
    },
    /// Restore a backup into a new, empty data directory (--data-dir),
    /// with the passphrase of the keystore it holds. The node then signs
    /// nothing until it has caught up with a member's node.
    Restore {
        file: PathBuf,
        /// No other member's node exists to catch up from: sign at once.
        #[arg(long)]
        standalone: bool,
    },
    /// Read every stored event again and verify every signature (a start
    /// trusts events whose checksum shows them unchanged since they were
    /// verified), then rebuild the log and compare it with the stored
    /// views. Run it while icnd is stopped. Exit code 2 on damage.
    Verify,
    /// Who this node replicates with: each peer, direct or relayed, and counters.
    Peers,
    /// The web app icnd serves: sign in (`web open`), tokens for /api/v1.
    Web {
        #[command(subcommand)]
        command: web::WebCommand,
    },
    /// This node's network ticket.
    Net {
        #[command(subcommand)]
        command: net::NetCommand,
    },
}

#[derive(Subcommand)]
enum IdCommand {
    /// Create this device's identity and its encrypted keystore.
    Init {
        /// A name for this device's key.
        #[arg(long, default_value = "this device")]
        label: String,
    },
    /// Print this identity's DID.
    Show,
    /// Create a paper key for recovery, authorise it, and print it once.
    PaperKey,
    /// Give another device of yours (a phone, a second laptop) its own key:
    /// prints a one-time code for `icnctl id link` on that device.
    AddDevice {
        /// What the device is, as your co-op will see it: "Ada's phone".
        label: String,
    },
    /// On a new device: sign for your identity here with a device code from
    /// `id add-device` or a paper key (asked for; or one line on stdin).
    Link {
        /// A member's ticket (`icnctl net ticket` on their machine, or yours).
        ticket: String,
        /// Your DID (`icnctl id show` on your other device).
        #[arg(long)]
        member: String,
    },
    /// Make this device the one that signs for you (one device signs at a
    /// time; the others follow). It signs once it has synced.
    TakeOver,
    /// Replace this device's key with a new one (after a scare, or routinely).
    Rotate {
        /// A name for the new key.
        #[arg(long, default_value = "this device")]
        label: String,
    },
    /// Revoke one of your keys (a lost device, a used paper key). It can never sign again.
    Revoke {
        /// The public key (base58), as `paper-key` printed it.
        key: String,
    },
    /// Show your recovery guardians, or name them: `id guardians Ben Cy Dee`.
    /// By default icnd names the members who vouched for you (2 of 3, 72 hours).
    Guardians {
        /// Members' names or DIDs.
        names: Vec<String>,
        /// How many must approve a new device (default 2).
        #[arg(long)]
        threshold: Option<u8>,
        /// Hours between the last approval needed and the new key taking
        /// over, while any of your devices can cancel (default 72).
        #[arg(long)]
        delay_hours: Option<f64>,
    },
    /// Recoveries: yours, and those of members you are a guardian of.
    Recovery,
    /// On a new device, after losing every other: ask your guardians to
    /// recover your identity here. A guardian prints this command for you
    /// with `icnctl coop invite --recover "Your Name"`.
    Recover {
        /// A member's ticket (`icnctl net ticket` on their machine).
        ticket: String,
        /// Your DID (`icnctl member list` on a guardian's machine shows it).
        #[arg(long)]
        member: String,
    },
    /// As a guardian: approve a member's recovery request (confirm it is
    /// really them first, in person or by a call).
    ApproveRecovery { request: String },
    /// Refuse a recovery of your identity you did not ask for.
    CancelRecovery { request: String },
    /// As a guardian: freeze a member's identity (a stolen device): nothing
    /// it signs counts until a guardian unfreezes it or a recovery.
    Freeze { member: String },
    /// As a guardian: lift your freeze.
    Unfreeze { member: String },
}

#[derive(Subcommand)]
enum CoopCommand {
    /// Found a new co-op with you as its first member. Without --yes it
    /// asks, in plain words, for the name, credit limits, how members are
    /// admitted and the other founders (answers may also come on stdin).
    Init {
        /// The co-op's name.
        name: Option<String>,
        /// Another founding member's DID (repeatable).
        #[arg(long = "founder")]
        founders: Vec<String>,
        /// A co-op parameter, `name=value` (repeatable), e.g. `--set ledger.floor=30`.
        #[arg(long = "set", value_name = "NAME=VALUE")]
        params: Vec<String>,
        /// Accept the defaults (charter, currency `hours`) without asking.
        #[arg(long)]
        yes: bool,
    },
    /// Join a co-op from a member's invitation (`icnctl coop invite` on
    /// their machine): with --name, apply to become a member. Needs icnd running.
    Join {
        ticket: String,
        /// Your name as members will see it.
        #[arg(long)]
        name: Option<String>,
        /// A word to the members about you.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Print an invitation (a ticket, and its QR code) for a new member;
    /// with --recover NAME, the command that member runs on a new device.
    Invite {
        #[arg(long, value_name = "NAME")]
        recover: Option<String>,
    },
}

/// An error for the member: what went wrong, and how to fix it when we know.
struct Failure {
    message: String,
    hint: Option<String>,
}

impl Failure {
    fn new(message: impl Into<String>, hint: Option<&str>) -> Failure {
        Failure {
            message: message.into(),
            hint: hint.map(str::to_owned),
        }
    }
}

impl<E: std::error::Error> From<E> for Failure {
    fn from(error: E) -> Failure {
        let message = error.to_string();
        let hint = icn_node::hints::hint_for(&message);
        Failure {
            message,
            hint: hint.map(str::to_owned),
        }
    }
}

type Outcome = Result<(), Failure>;

struct Context {
    dir: DataDir,
    json: bool,
    passphrase_file: Option<PathBuf>,
}

impl Context {
    fn print<T: Serialize>(&self, value: &T, text: impl FnOnce(&T) -> String) {
        if self.json {
            say(&serde_json::to_string_pretty(value).expect("API types serialise"));
        } else {
            say(&text(value));
        }
    }

    fn passphrase(&self, prompt: &str, confirm: bool) -> Result<Zeroizing<String>, Failure> {
        Ok(passphrase::passphrase(
            self.passphrase_file.as_deref(),
            prompt,
            confirm,
        )?)
    }

    /// Asks for the passphrase and decrypts the keystore.
    fn unlock(&self) -> Result<(Zeroizing<String>, KeystoreContents), Failure> {
        let keystore = self.dir.keystore();
        if !keystore.exists() {
            return Err(Failure::new(
                "this data directory has no identity yet",
                Some("run `icnctl id init` first"),
            ));
        }
        let passphrase = self.passphrase("Keystore passphrase: ", false)?;
        let contents = keystore.open(&passphrase)?;
        Ok((passphrase, contents))
    }

    /// Opens the node directly (no daemon running), unlocking the keystore if asked.
    fn open_node(&self, unlock: bool) -> Result<Node, Failure> {
        let keys = if unlock {
            self.unlock()?.1.key_pairs()
        } else {
            Vec::new()
        };
        Ok(Node::open(self.dir.clone(), keys, &icn_node::modules())?)
    }

    /// Calls a module's operation (`POST` with a JSON body) on the running
    /// daemon, or, when none runs, on the data directory itself.
    fn module_call<B: Serialize, T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: &B,
    ) -> Result<T, Failure> {
        let body = serde_json::to_vec(body).expect("API types serialise");
        self.daemon_or_local(method, path, Some(body.clone()), || {
            self.module_locally(method, path, &body)
        })
    }

    /// [`Context::module_call`] for a `GET` (its parameters in `path`'s query).
    fn module_get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, Failure> {
        self.daemon_or_local("GET", path, None, || self.module_locally("GET", path, &[]))
    }

    /// Runs the module operation the admin socket serves at `path` on this
    /// data directory (icnd is stopped), with the keystore unlocked.
    fn module_locally<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<T, Failure> {
        use icn_runtime::operation::{Body, Params, Services};
        let (route, query) = path.split_once('?').unwrap_or((path, ""));
        let operation = icn_node::modules()
            .operations()
            .into_iter()
            .find(|operation| operation.admin == Some(route) && operation.method() == method)
            .ok_or_else(|| Failure::new(format!("no operation {method} {route}"), None))?;
        let node = self.open_node(true)?;
        let services = Services {
            readers: node.readers(),
            node: std::sync::Arc::new(std::sync::Mutex::new(node)),
        };
        let requester = icn_runtime::Requester::ThisNode;
        let answer = match &operation.body {
            Body::Read { node: read, .. } => {
                let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
                    .map_err(|error| Failure::new(format!("invalid query: {error}"), None))?;
                services.with_node(|node| read(node, &requester, &Params(pairs)))?
            }
            Body::Task(run) => run(&services, &requester, body)?,
            Body::Write(prepare) => {
                let work = prepare(body)?;
                let id = services.with_node(|node| work(node, now()))?;
                serde_json::to_vec(&icn_api::EventAck {
                    event_id: id.to_string(),
                })
                .expect("API types serialise")
            }
        };
        serde_json::from_slice(&answer)
            .map_err(|error| Failure::new(format!("an unreadable answer: {error}"), None))
    }

    /// Asks the running daemon; when none runs, does the work with `local`
    /// (which opens the data directory itself).
    fn daemon_or_local<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        local: impl FnOnce() -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        match icn_client::request(
            &icn_client::socket_in(self.dir.root()),
            method,
            path,
            body.as_deref(),
        ) {
            Ok(response) if (200..300).contains(&response.status) => {
                serde_json::from_slice(&response.body).map_err(|error| {
                    Failure::new(format!("icnd sent an unreadable answer: {error}"), None)
                })
            }
            Ok(response) => {
                let error: icn_api::ErrorBody =
                    serde_json::from_slice(&response.body).unwrap_or(icn_api::ErrorBody {
                        code: "unknown".into(),
                        message: format!("icnd answered {}", response.status),
                        hint: None,
                    });
                Err(Failure {
                    message: error.message,
                    hint: error.hint,
                })
            }
            Err(ClientError::NotRunning) => local(),
            Err(error) => Err(error.into()),
        }
    }
}

/// Prints a line on stdout.
fn say(text: &str) {
    emit(&format!("{text}\n"));
}

/// Writes to stdout; a reader that went away (`icnctl … | head`) ends the
/// program quietly, as `cat` would.
pub(crate) fn emit(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(error) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("icnctl: error: cannot write the output: {error}");
        std::process::exit(2);
    }
}

/// A request body for the admin API.
fn json(value: &impl Serialize) -> Option<Vec<u8>> {
    Some(serde_json::to_vec(value).expect("API types serialise"))
}

/// Refuses to create an identity where one exists, with `hint`.
fn no_identity_yet(context: &Context, hint: &str) -> Outcome {
    if context.dir.keystore().exists() || context.dir.identity_file().exists() {
        return Err(Failure::new(
            format!(
                "an identity already exists in {}",
                context.dir.root().display()
            ),
            Some(hint),
        ));
    }
    Ok(())
}

fn id_init(context: &Context, label: &str) -> Outcome {
    no_identity_yet(
        context,
        "`icnctl id show` prints it; use another --data-dir for a new one",
    )?;
    let keystore = context.dir.keystore();
    let passphrase = context.passphrase("Choose a keystore passphrase: ", true)?;
    let (identity, _) =
        icn_node::setup::create_identity(&context.dir, &passphrase, label, passphrase::kdf_log_n())
            .map_err(|error| match error {
                icn_node::NodeError::BadInput(message) => Failure::new(
                    message,
                    Some("choose another passphrase; the same rule holds in the web app"),
                ),
                other => other.into(),
            })?;
    let shown = api_identity(&identity);
    context.print(&shown, |identity| {
        format!(
            "Created identity {}\nKeystore: {}\nNext: `icnctl coop init \"Your Co-op\" --yes` to found a co-op, then `icnctl id paper-key` for a recovery key.",
            identity.did,
            keystore.path().display()
        )
    });
    Ok(())
}

fn api_identity(identity: &PublicIdentity) -> icn_api::Identity {
    icn_api::Identity {
        did: identity.did.to_string(),
        device_key: identity.device_key.to_string(),
        device_label: identity.device_label.clone(),
    }
}

fn id_show(context: &Context) -> Outcome {
    let identity = context
        .dir
        .public_identity()
        .map_err(|message| Failure::new(message, None))?
        .ok_or_else(|| {
            Failure::new(
                format!("no identity in {}", context.dir.root().display()),
                Some("run `icnctl id init` to create one"),
            )
        })?;
    context.print(&api_identity(&identity), |identity| identity.did.clone());
    Ok(())
}

fn paper_key(context: &Context) -> Outcome {
    let key = context.daemon_or_local("POST", "/admin/v1/identity/paper-key", None, || {
        Ok(icn_node::ops::paper_key(
            context.open_node(true)?.add_paper_key(now())?,
        ))
    })?;
    context.print(&key, |key| {
        format!(
            "Your paper key (write it down and keep it somewhere safe; it is not stored on this device):\n\n    {}\n\nIt is now authorised to sign for you. Its public key, to revoke it if the paper is lost:\n\n    icnctl id revoke {}",
            key.paper_key, key.public_key
        )
    });
    Ok(())
}

fn revoke(context: &Context, key: &str) -> Outcome {
    let request = icn_api::KeyRevoke {
        key: key.to_owned(),
    };
    let ack =
        context.daemon_or_local("POST", "/admin/v1/identity/revoke", json(&request), || {
            let public: icn_identity::PublicKey = key.parse()?;
            let id = context.open_node(true)?.revoke_key(public, now())?;
            Ok(icn_api::EventAck {
                event_id: id.to_string(),
            })
        })?;
    context.print(&ack, |_| {
        "Revoked: that key no longer signs for you on any member's node once they sync.".to_owned()
    });
    Ok(())
}

/// Rotation in an order that survives a crash at any step: the keystore
/// gains the new key, the rotate event is committed (signed by the old key),
/// then the keystore drops the old key. On start the node signs with
/// whichever stored key the log authorises.
fn rotate(context: &Context, label: &str) -> Outcome {
    let keystore = context.dir.keystore();
    let (passphrase, contents) = context.unlock()?;
    let (did, old_keys) = (contents.did, contents.key_pairs());
    let new = KeyPair::generate()?;
    let mut keys = contents.keys;
    keys.push(StoredKey::new(label, &new));
    keystore.write(
        &KeystoreContents::new(did, keys),
        &passphrase,
        passphrase::kdf_log_n(),
    )?;
    let request = icn_api::KeyRotate {
        secret: icn_identity::paper_key_encode(&new).to_string(),
        label: label.to_owned(),
    };
    let ack =
        context.daemon_or_local("POST", "/admin/v1/identity/rotate", json(&request), || {
            let mut node = Node::open(context.dir.clone(), old_keys, &icn_node::modules())?;
            let id = node.rotate_key(new.clone(), label, now())?;
            Ok(icn_api::EventAck {
                event_id: id.to_string(),
            })
        })?;
    keystore.write(
        &KeystoreContents::new(did, vec![StoredKey::new(label, &new)]),
        &passphrase,
        passphrase::kdf_log_n(),
    )?;
    context.print(&ack, |ack| {
        format!(
            "Rotated: this device now signs with {} (event {}). The old key can never sign again.",
            new.public(),
            ack.event_id
        )
    });
    Ok(())
}

/// `--set name=value` flags as parameters.
fn parse_params(pairs: &[String]) -> Result<BTreeMap<String, String>, Failure> {
    pairs
        .iter()
        .map(|pair| {
            pair.split_once('=')
                .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
                .ok_or_else(|| {
                    Failure::new(
                        format!("--set {pair:?} is not name=value"),
                        Some("for example: --set ledger.floor=30"),
                    )
                })
        })
        .collect()
}

/// Reads one answer; `None` at the end of input.
fn ask(question: &str) -> Result<Option<String>, Failure> {
    use std::io::Write as _;
    print!("{question} ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line)? == 0 {
        println!();
        return Ok(None);
    }
    Ok(Some(line.trim().to_owned()))
}

fn no_answer() -> Failure {
    Failure::new(
        "the set-up needs answers",
        Some(
            "answer the questions, or found without them: icnctl coop init \"Name\" --yes [--founder DID] [--set ledger.floor=40]",
        ),
    )
}

/// Asks until the answer is a whole number of hours (empty: `default`).
fn ask_hours(question: &str, default: u32) -> Result<u32, Failure> {
    loop {
        let answer = ask(&format!("{question} [{default}]"))?.ok_or_else(no_answer)?;
        if answer.is_empty() {
            return Ok(default);
        }
        match answer.trim_end_matches('h').trim().parse() {
            Ok(hours) => return Ok(hours),
            Err(_) => println!("  A whole number of hours, like {default}."),
        }
    }
}

/// The guided set-up: the questions a founder can answer, in their words.
fn guided_setup(
    name: Option<String>,
    founders: &mut Vec<String>,
    params: &mut BTreeMap<String, String>,
) -> Result<String, Failure> {
    println!("Let's set up your co-op. Press Enter to take the suggestion in [brackets].\n");
    let name = match name {
        Some(name) => name,
        None => loop {
            let answer = ask("What is your co-op called?")?.ok_or_else(no_answer)?;
            if !answer.is_empty() {
                break answer;
            }
        },
    };
    println!("\nMembers trade hours. A member can go below zero, down to a limit, and");
    println!("is flagged (never blocked) when far above zero.");
    let floor = ask_hours("How many hours may a member owe at most?", 40)?;
    let ceiling = ask_hours("Above how many hours should a member be flagged?", 80)?;
    params.insert("ledger.floor".into(), floor.to_string());
    params.insert("ledger.ceiling".into(), ceiling.to_string());
    println!("\nHow do new members get in?");
    println!("  1) two members vouch for them (suggested)");
    println!("  2) only by a vote of the co-op");
    let admission = loop {
        match ask("Choose 1 or 2: [1]")?.ok_or_else(no_answer)?.as_str() {
            "" | "1" => break "vouches",
            "2" => break "proposal",
            _ => println!("  Type 1 or 2."),
        }
    };
    params.insert("member.admission".into(), admission.into());
    println!("\nEveryday decisions use a template chosen per proposal (simple majority,");
    println!("consent, budget approval…). Changing the charter needs more: how much?");
    println!("  1) two thirds of the votes (suggested)");
    println!("  2) three quarters");
    println!("  3) everyone (consensus)");
    let charter = loop {
        match ask("Choose 1, 2 or 3: [1]")?
            .ok_or_else(no_answer)?
            .as_str()
        {
            "" | "1" => break ("2/3", "two thirds"),
            "2" => break ("3/4", "three quarters"),
            "3" => break ("1/1", "everyone"),
            _ => println!("  Type 1, 2 or 3."),
        }
    };
    params.insert("gov.charter_threshold".into(), charter.0.into());
    println!("\nOther founding members: each runs `icnctl id init` and `icnctl id show`,");
    println!("and sends you the did:icn:… it prints. Paste one per line; an empty line when done.");
    loop {
        let answer = ask("Founder's DID (or Enter):")?.ok_or_else(no_answer)?;
        if answer.is_empty() {
            break;
        }
        match answer.parse::<Did>() {
            Ok(did) => founders.push(did.to_string()),
            Err(error) => println!("  That is not a DID ({error}); it looks like did:icn:…"),
        }
    }
    println!(
        "\n{name}: the currency is hours (counted in minutes); members may owe up to {floor} h, are flagged above {ceiling} h, join {}; the charter changes with {} of the votes; {} founding member{}.",
        if admission == "vouches" {
            "when two members vouch"
        } else {
            "by a vote"
        },
        charter.1,
        founders.len() + 1,
        if founders.is_empty() { "" } else { "s" }
    );
    println!(
        "Everyday decisions use templates chosen per proposal (`icnctl governance templates`)."
    );
    match ask("Found it? [Y/n]")?
        .ok_or_else(no_answer)?
        .to_lowercase()
        .as_str()
    {
        "" | "y" | "yes" => Ok(name),
        _ => Err(Failure::new(
            "nothing was founded",
            Some("run icnctl coop init again when ready"),
        )),
    }
}

fn coop_init(
    context: &Context,
    name: Option<String>,
    mut founders: Vec<String>,
    params: &[String],
    yes: bool,
) -> Outcome {
    let mut params = parse_params(params)?;
    let name = if yes {
        name.ok_or_else(|| {
            Failure::new(
                "a co-op needs a name",
                Some("icnctl coop init \"Our Co-op\" --yes"),
            )
        })?
    } else {
        guided_setup(name, &mut founders, &mut params)?
    };
    let (name, founders) = (name.as_str(), founders.as_slice());
    let request = icn_api::CoopInit {
        name: name.to_owned(),
        founders: founders.to_vec(),
        params: params.clone(),
    };
    let status = context.daemon_or_local("POST", "/admin/v1/coop", json(&request), || {
        let founders = founders
            .iter()
            .map(|text| text.parse::<Did>())
            .collect::<Result<Vec<_>, _>>()?;
        let mut node = context.open_node(true)?;
        node.create_coop(name, &founders, &params, now())?;
        Ok(node.status(false, None))
    })?;
    let asked: usize = params
        .get("member.vouches")
        .and_then(|value| value.parse().ok())
        .unwrap_or(2);
    let admission_by_vouches = params
        .get("member.admission")
        .is_none_or(|admission| admission == "vouches");
    context.print(&status, |status| {
        let coop = status.coop.as_ref().expect("a co-op was just created");
        let founders = coop.founders.len();
        // A small co-op is not stuck: fewer vouches suffice while fewer
        // members can vouch (icn_governance::params::vouches_needed).
        let small = if admission_by_vouches && founders < asked {
            format!(
                "\nNote: newcomers need {asked} vouches, but while the co-op has {founders} member{} who can vouch, {} enough.",
                if founders == 1 { "" } else { "s" },
                match founders {
                    1 => "one vouch (yours) is".to_owned(),
                    n => format!("{n} vouches are"),
                }
            )
        } else {
            String::new()
        };
        format!(
            "Founded {:?} ({}); founding members: {}.{small}\nNext:\n  1. start the node: icnd --data-dir {}\n  2. open the web app it prints (http://127.0.0.1:7878/) and sign in with your passphrase\n  3. tell members your name there (Settings), and invite them: icnctl coop invite",
            coop.name,
            coop.id,
            founders,
            status.data_dir
        )
    });
    Ok(())
}

fn status(context: &Context) -> Outcome {
    let status = context.daemon_or_local("GET", "/admin/v1/status", None, || {
        if !context.dir.root().exists() {
            return Err(Failure::new(
                format!("{} does not exist", context.dir.root().display()),
                Some("run `icnctl id init` to create a node here, or pass --data-dir"),
            ));
        }
        Ok(context.open_node(false)?.status(false, None))
    })?;
    context.print(&status, render_status);
    Ok(())
}

fn render_status(status: &icn_api::Status) -> String {
    let mut lines = vec![
        format!(
            "icnd:     {}",
            if status.running {
                "running"
            } else {
                "not running"
            }
        ),
        format!("data dir: {}", status.data_dir),
        format!(
            "DID:      {}",
            status
                .did
                .as_deref()
                .unwrap_or("none (run `icnctl id init`)")
        ),
    ];
    match &status.coop {
        Some(coop) => lines.push(format!(
            "co-op:    {} ({}; founding members: {})",
            coop.name,
            coop.id,
            coop.founders.len()
        )),
        None => lines.push("co-op:    none (run `icnctl coop init \"Name\" --yes`)".to_owned()),
    }
    lines.push(format!(
        "events:   {} ({} pending)",
        status.events, status.events_pending
    ));
    if status.equivocations > 0 {
        lines.push(format!("equivocations proven: {}", status.equivocations));
    }
    lines.push(format!("peers:    {}", status.peers));
    if let Some(uptime) = status.uptime_seconds {
        lines.push(format!("uptime:   {uptime}s"));
    }
    lines.push(format!("version:  {}", status.version));
    lines.join("\n")
}

fn run(cli: Cli) -> Outcome {
    let context = Context {
        dir: DataDir::new(cli.data_dir.unwrap_or_else(default_data_dir)),
        json: cli.json,
        passphrase_file: cli.passphrase_file,
    };
    match cli.command {
        Command::Id {
            command: IdCommand::Init { label },
        } => id_init(&context, &label),
        Command::Id {
            command: IdCommand::Show,
        } => id_show(&context),
        Command::Id {
            command: IdCommand::PaperKey,
        } => paper_key(&context),
        Command::Id {
            command: IdCommand::AddDevice { label },
        } => devices::add(&context, &label),
        Command::Id {
            command: IdCommand::Link { ticket, member },
        } => devices::link(&context, &ticket, &member),
        Command::Id {
            command: IdCommand::TakeOver,
        } => devices::take_over(&context),
        Command::Id {
            command: IdCommand::Rotate { label },
        } => rotate(&context, &label),
        Command::Id {
            command: IdCommand::Revoke { key },
        } => revoke(&context, &key),
        Command::Id {
            command:
                IdCommand::Guardians {
                    names,
                    threshold,
                    delay_hours,
                },
        } => recovery::set_guardians(&context, names, threshold, delay_hours),
        Command::Id {
            command: IdCommand::Recovery,
        } => recovery::show(&context),
        Command::Id {
            command: IdCommand::Recover { ticket, member },
        } => recovery::recover(&context, &ticket, &member),
        Command::Id {
            command: IdCommand::ApproveRecovery { request },
        } => recovery::approve(&context, request),
        Command::Id {
            command: IdCommand::CancelRecovery { request },
        } => recovery::cancel(&context, request),
        Command::Id {
            command: IdCommand::Freeze { member },
        } => recovery::freeze(&context, member, true),
        Command::Id {
            command: IdCommand::Unfreeze { member },
        } => recovery::freeze(&context, member, false),
        Command::Coop {
            command:
                CoopCommand::Init {
                    name,
                    founders,
                    params,
                    yes,
                },
        } => coop_init(&context, name, founders, &params, yes),
        Command::Coop {
            command: CoopCommand::Join { ticket, name, note },
        } => net::join(&context, &ticket, name, note),
        Command::Coop {
            command: CoopCommand::Invite { recover: None },
        } => net::invite(&context),
        Command::Coop {
            command: CoopCommand::Invite {
                recover: Some(member),
            },
        } => recovery::invite(&context, &member),
        Command::Member { command } => governance::run_member(&context, command),
        Command::Governance { command } => governance::run_governance(&context, command),
        Command::Trust { command } => trust::run(&context, command),
        Command::Files { command } => files::run(&context, command),
        Command::Ledger { command } => ledger::run(&context, command),
        Command::Status => status(&context),
        Command::Backup { to } => backup(&context, &to),
        Command::Doctor => doctor(&context),
        Command::Restore { file, standalone } => restore(&context, &file, !standalone),
        Command::Verify => verify(&context),
        Command::Peers => net::peers(&context),
        Command::Net { command } => net::run(&context, command),
        Command::Web { command } => web::run(&context, command),
    }
}

fn main() -> ExitCode {
    icn_node::layout::owner_only_files();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("icnctl: error: {}", failure.message);
            if let Some(hint) = failure.hint {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(2)
        }
    }
}

/// What `icnctl verify` found.
#[derive(Serialize)]
struct Verified {
    events: usize,
    signatures_verified: usize,
    views_agree: bool,
}

fn verify(context: &Context) -> Outcome {
    let store = match icn_store::Store::open(context.dir.root()) {
        Err(icn_store::StoreError::Locked { .. }) => {
            return Err(Failure::new(
                "icnd is running on this data directory",
                Some("stop it first (verify reads every event), then run this again"),
            ));
        }
        other => other?,
    };
    let Some(replayed) = icn_node::node::replay_store(
        &store,
        &icn_node::modules(),
        icn_node::node::Signatures::All,
    )?
    else {
        return Err(Failure::new(
            "this data directory holds no co-op yet",
            Some("`icnctl coop init` founds one, `icnctl coop join` joins one"),
        ));
    };
    let found = Verified {
        events: replayed.log.counted_len() + replayed.log.pending_len(),
        signatures_verified: replayed.verified,
        views_agree: replayed.views_agree,
    };
    context.print(&found, |found| {
        let views = if found.views_agree {
            "The stored views agree with the log."
        } else {
            "The stored views disagree with the log: the next start of icnd rewrites them from it."
        };
        format!(
            "All {} stored events decode and their signatures verify ({} count or wait in the log).\n{views}",
            found.signatures_verified, found.events
        )
    });
    Ok(())
}

fn backup(context: &Context, to: &std::path::Path) -> Outcome {
    // The daemon writes where it runs: give it an absolute path.
    let to = std::path::absolute(to)?;
    let body = serde_json::to_vec(&icn_api::BackupTo {
        to: to.display().to_string(),
    })
    .expect("plain data serialises");
    let written: icn_api::Backup =
        context.daemon_or_local("POST", "/admin/v1/backup", Some(body), || {
            Ok(icn_node::ops::backup_written(
                context.open_node(true)?.backup_to(&to)?,
            ))
        })?;
    context.print(&written, |written| {
        format!(
            "Backup written: {} ({} bytes, {} events).\nKeep a copy off this computer. Restore with: icnctl --data-dir NEW_DIR restore {}",
            written.path, written.bytes, written.events, written.path
        )
    });
    Ok(())
}

fn restore(context: &Context, file: &std::path::Path, wait_for_peers: bool) -> Outcome {
    let passphrase = context.passphrase("Passphrase of the backed-up keystore: ", false)?;
    icn_node::backup::restore(file, &context.dir, &passphrase, wait_for_peers).map_err(
        |error| {
            let hint = match error {
                icn_node::backup::BackupError::NotEmpty { .. } => {
                    Some("pass --data-dir with a new directory; never restore over a node's data")
                }
                icn_node::backup::BackupError::Keystore(_)
                | icn_node::backup::BackupError::WrongPassphrase => {
                    Some("use the passphrase of the member whose backup this is")
                }
                _ => None,
            };
            Failure::new(error.to_string(), hint)
        },
    )?;
    // Opening the node replays the log and checks every view against it.
    let node = context.open_node(false)?;
    let status = node.status(false, None);
    context.print(&status, |status| {
        let then = if wait_for_peers {
            "(add `--peer TICKET` of a member's node if it has none): it signs again once it has caught up with them"
        } else {
            "(--standalone: it signs at once, without waiting to catch up; if your lost device paid anyone after this backup, that payment and the next one you make collide)"
        };
        format!(
            "Restored {} events of {} for {}.\nStart the node with `icnd --data-dir {}` {then}.",
            status.events,
            status.coop.as_ref().map_or("no co-op", |coop| coop.name.as_str()),
            status.did.as_deref().unwrap_or("?"),
            context.dir.root().display()
        )
    });
    Ok(())
}

fn doctor(context: &Context) -> Outcome {
    let report: icn_api::Doctor =
        context.daemon_or_local("GET", "/admin/v1/doctor", None, || {
            let node = context.open_node(false).ok();
            let mut checks = vec![icn_api::Check {
                name: "daemon".into(),
                status: "fail".into(),
                message: "icnd is not running on this data directory".into(),
                fix: Some(format!(
                    "start it: icnd --data-dir {} (or as a service: see docs/operations)",
                    context.dir.root().display()
                )),
            }];
            let backups = context.dir.backups();
            checks.extend(icn_node::health::local_checks(
                &context.dir,
                node.as_ref(),
                &backups,
            ));
            Ok(icn_api::Doctor { checks })
        })?;
    context.print(&report, |report| {
        report
            .checks
            .iter()
            .map(|check| {
                let status = match check.status.as_str() {
                    "ok" => "ok  ",
                    "warn" => "WARN",
                    _ => "FAIL",
                };
                let fix = check
                    .fix
                    .as_ref()
                    .map(|fix| format!("\n        fix: {fix}"))
                    .unwrap_or_default();
                format!("{status}  {:<9} {}{fix}", check.name, check.message)
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    if report.checks.iter().any(|check| check.status == "fail") {
        return Err(Failure::new("doctor found problems (FAIL above)", None));
    }
    Ok(())
}
