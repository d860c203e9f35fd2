//! Runs the real `icnd` and `icnctl` binaries against data directories in a
//! temp dir, the way a member would.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

pub const PASSPHRASE: &str = "correct horse battery staple";

pub struct Harness {
    pub root: tempfile::TempDir,
    icnd: PathBuf,
    icnctl: PathBuf,
}

/// What a finished command printed and how it exited.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("stdout is not JSON ({error}): {self:?}"))
    }
}

impl From<Output> for Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Harness {
    /// `icnd` and `icnctl` are the paths Cargo gives as `CARGO_BIN_EXE_*`.
    pub fn new(icnd: &str, icnctl: &str) -> Harness {
        Harness {
            root: tempfile::tempdir().expect("a temp dir"),
            icnd: icnd.into(),
            icnctl: icnctl.into(),
        }
    }

    /// Runs other binaries (another release's) in this harness's temp dir.
    pub fn with_binaries(&self, icnd: &Path, icnctl: &Path) -> Harness {
        Harness {
            root: tempfile::tempdir_in(self.root.path()).expect("a temp dir"),
            icnd: icnd.into(),
            icnctl: icnctl.into(),
        }
    }

    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.root.path())
            .env("ICN_KEYSTORE_PASSPHRASE", PASSPHRASE)
            // Cheap scrypt for tests; real keystores use the default 2^18.
            .env("ICN_KEYSTORE_KDF_LOG_N", "10")
            .env("ICN_LOG", "warn")
            // Peers on loopback only, each daemon on a free port, and no
            // mDNS on the machine's network (tests in namespaces enable it).
            .env("ICN_LISTEN", "127.0.0.1:0")
            .env("ICN_MDNS", "false")
            .stdin(Stdio::null());
        command
    }

    pub fn icnctl(&self, data_dir: &Path, args: &[&str]) -> Run {
        self.icnctl_with(data_dir, args, |_| {})
    }

    pub fn icnctl_with(
        &self,
        data_dir: &Path,
        args: &[&str],
        adjust: impl FnOnce(&mut Command),
    ) -> Run {
        let mut command = self.command(&self.icnctl);
        command.arg("--data-dir").arg(data_dir).args(args);
        adjust(&mut command);
        command.output().expect("icnctl runs").into()
    }

    /// `icnctl` with `input` on its standard input (answers to questions).
    pub fn icnctl_input(&self, data_dir: &Path, args: &[&str], input: &str) -> Run {
        use std::io::Write;
        let mut child = self
            .command(&self.icnctl)
            .arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("icnctl runs");
        let mut stdin = child.stdin.take().expect("piped");
        // It may stop reading early (a refusal): a closed pipe is fine.
        let _ = stdin.write_all(input.as_bytes());
        drop(stdin);
        child.wait_with_output().expect("icnctl ends").into()
    }

    pub fn icnd_output(&self, args: &[&str]) -> Run {
        self.icnd_output_env(args, &[])
    }

    /// `icnd` run to its end with `env` added to its environment.
    pub fn icnd_output_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        self.command(&self.icnd)
            .args(args)
            .envs(env.iter().copied())
            .output()
            .expect("icnd runs")
            .into()
    }

    /// Starts `icnd` and waits until it says it is ready. Its log goes to
    /// `<data dir>.log` (a file, so a chatty daemon never blocks on a pipe).
    pub fn spawn_icnd(&self, data_dir: &Path, args: &[&str]) -> Daemon {
        self.spawn_icnd_in(None, &[], data_dir, args)
    }

    /// Like [`Harness::spawn_icnd`], inside network namespace `netns` if given
    /// (`ip netns exec` execs icnd itself, so signals reach it), with `env`
    /// added to the environment.
    pub fn spawn_icnd_in(
        &self,
        netns: Option<&str>,
        env: &[(&str, &str)],
        data_dir: &Path,
        args: &[&str],
    ) -> Daemon {
        let log_path = data_dir.with_extension("log");
        let log = std::fs::File::create(&log_path).expect("a log file");
        let mut command = match netns {
            Some(netns) => {
                let mut command = self.command(Path::new("ip"));
                command.args(["netns", "exec", netns]).arg(&self.icnd);
                command
            }
            None => self.command(&self.icnd),
        };
        command.envs(env.iter().copied());
        let mut child = command
            .arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("icnd starts");
        let stdout = child.stdout.take().expect("piped");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) if line.starts_with("icnd ready") => {
                    let api = line.split("API ").nth(1).map(str::to_owned);
                    return Daemon {
                        child,
                        ready_line: line,
                        api,
                    };
                }
                Ok(_) => {}
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "icnd did not become ready: {}",
                        std::fs::read_to_string(&log_path).unwrap_or_default()
                    );
                }
            }
        }
    }
}

/// A running `icnd`, killed when dropped.
pub struct Daemon {
    pub child: Child,
    pub ready_line: String,
    /// `http://ADDR/api/v1` when the gateway is enabled.
    pub api: Option<String>,
}

impl Daemon {
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits for exit and returns the exit code (None if killed by a signal).
    pub fn wait(mut self) -> Option<i32> {
        let status = self.child.wait().expect("icnd exits");
        status.code()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP GET on loopback: (status, body).
pub fn http_get(url: &str) -> (u16, String) {
    http("GET", url, None, None)
}

/// A minimal HTTP/1.1 request on loopback, with an optional bearer token
/// and JSON body: (status, body).
/// A raw request with exactly these headers (no Content-Type or
/// Content-Length added) and body; the answer within 30 s.
pub fn http_raw(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut stream = std::net::TcpStream::connect(host).expect("connects");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    // The connection's host, unless the caller names another.
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        request.push_str(&format!("Host: {host}\r\n"));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    // A server that answers before reading the whole declared body may
    // reset the connection once it has answered: what arrived counts.
    let _ = stream.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response);
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

pub fn http(method: &str, url: &str, token: Option<&str>, body: Option<&str>) -> (u16, String) {
    let body = body.unwrap_or("");
    let bearer = token.map(|token| format!("Bearer {token}"));
    let length = body.len().to_string();
    let mut headers: Vec<(&str, &str)> = Vec::new();
    if let Some(bearer) = &bearer {
        headers.push(("Authorization", bearer));
    }
    if !body.is_empty() || method == "POST" {
        headers.push(("Content-Type", "application/json"));
        headers.push(("Content-Length", &length));
    }
    http_raw(method, url, &headers, body)
}
