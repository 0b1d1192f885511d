//! Test-server harness shared by the integration tests (`mod support;`).
//!
//! Starts real SMTP servers on loopback, each on ports picked at run time and
//! with its files in its own temporary folder, so tests can run in parallel:
//!
//! * [`Aiosmtpd`]  — scriptable SMTP/LMTP server with byte-exact capture
//!   (`tests/servers/aiosmtpd_server.py`, run with `<repo>/.venv/bin/python`).
//! * [`Nodemailer`] — Node `smtp-server` with PIPELINING, DSN,
//!   ENHANCEDSTATUSCODES, SMTPUTF8, XOAUTH2 (`tests/servers/nodemailer_server.js`).
//! * [`Postfix`]   — a private Postfix 3.7 instance (`tests/servers/postfix.sh`),
//!   delivering to Maildirs; needs root.
//! * [`SmtpSink`]  — Postfix's `smtp-sink` benchmark sink.
//!
//! Everything is installed by `scripts/install-deps.sh`. A missing tool is a
//! loud failure (panic with the reason), never a skipped test. Every starter
//! waits for readiness with a bounded timeout and panics with the server's log
//! if it does not come up. Dropping a server stops it and removes its folder
//! (set `SMTPC_KEEP_TEST_DIRS=1` to keep the folders for debugging).
#![allow(dead_code)]

pub mod dovecot;
pub mod fault_proxy;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

/// How long any server gets to come up (the machine may be busy).
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The crate root (where Cargo.toml is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn servers_dir() -> PathBuf {
    repo_root().join("tests").join("servers")
}

fn keep_dirs() -> bool {
    std::env::var_os("SMTPC_KEEP_TEST_DIRS").is_some_and(|v| !v.is_empty() && v != "0")
}

// ---------------------------------------------------------------------------
// Temporary folders
// ---------------------------------------------------------------------------

static DIR_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A folder under the system temp dir, removed on drop. Mode 0755 (umask
/// permitting), so that Postfix's unprivileged daemons can reach into it.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
    keep: bool,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = DIR_COUNTER.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "smtpc-test-{}-{}-{}-{:08x}",
            tag,
            std::process::id(),
            n,
            nanos
        ));
        fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create temp dir {}: {e}", path.display()));
        TempDir { path, keep: false }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keep the folder after drop (the certificates live for the whole process).
    fn leak(mut self) -> PathBuf {
        self.keep = true;
        self.path.clone()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.keep && !keep_dirs() {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

// ---------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------

/// Throwaway PKI made by `tests/servers/certs.sh` (EC P-256 keys, PEM).
#[derive(Debug, Clone)]
pub struct Certs {
    pub dir: PathBuf,
    /// The CA that signed server, expired and wronghost.
    pub ca: PathBuf,
    /// CN=localhost, SAN DNS:localhost, IP:127.0.0.1, IP:::1.
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// A second CA that signed nothing: verifying the server against it fails.
    pub other_ca: PathBuf,
    /// Like server_cert but valid only 2020-01-01..2020-01-02.
    pub expired_cert: PathBuf,
    pub expired_key: PathBuf,
    /// Signed by `ca`, SAN DNS:wrong.example only.
    pub wronghost_cert: PathBuf,
    pub wronghost_key: PathBuf,
    /// A client certificate (CN=libsmtpc test client, clientAuth) signed by
    /// `ca`; its key is PKCS#8 PEM.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// The same, signed by `other_ca`.
    pub other_client_cert: PathBuf,
    pub other_client_key: PathBuf,
}

/// The certificates, generated once per test process (the folder stays for
/// the process lifetime; folders left by earlier, finished processes are
/// removed when a new one makes its own).
pub fn certs() -> &'static Certs {
    static CERTS: OnceLock<Certs> = OnceLock::new();
    CERTS.get_or_init(|| {
        remove_stale_cert_dirs();
        let dir = TempDir::new("certs").leak();
        let out = Command::new("bash")
            .arg(servers_dir().join("certs.sh"))
            .arg(&dir)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run tests/servers/certs.sh: {e}"));
        if !out.status.success() {
            panic!(
                "tests/servers/certs.sh {} failed ({}):\n{}{}",
                dir.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let c = Certs {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            other_ca: dir.join("other-ca.pem"),
            expired_cert: dir.join("expired.pem"),
            expired_key: dir.join("expired.key"),
            wronghost_cert: dir.join("wronghost.pem"),
            wronghost_key: dir.join("wronghost.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
            other_client_cert: dir.join("client-other.pem"),
            other_client_key: dir.join("client-other.key"),
            dir,
        };
        for p in [
            &c.ca,
            &c.server_cert,
            &c.server_key,
            &c.other_ca,
            &c.expired_cert,
            &c.wronghost_cert,
            &c.client_cert,
            &c.client_key,
            &c.other_client_cert,
        ] {
            assert!(p.is_file(), "certs.sh did not make {}", p.display());
        }
        c
    })
}

/// Removes `smtpc-test-certs-<pid>-…` folders of processes that are gone.
fn remove_stale_cert_dirs() {
    let Ok(rd) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("smtpc-test-certs-") else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

// ---------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------

fn read_lossy(p: &Path) -> String {
    fs::read(p)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_else(|e| format!("(cannot read {}: {e})", p.display()))
}

pub fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

/// A spawned server whose stdout+stderr go to a log file; stopped on drop
/// (SIGTERM, then SIGKILL after 3 s).
#[derive(Debug)]
struct ServerProcess {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl ServerProcess {
    fn spawn(name: &str, mut cmd: Command, log: PathBuf) -> ServerProcess {
        let f = fs::File::create(&log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let f2 = f.try_clone().expect("clone log file handle");
        cmd.stdin(Stdio::null()).stdout(f).stderr(f2);
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "{name}: cannot start {:?}: {e} (did scripts/install-deps.sh run?)",
                cmd
            )
        });
        ServerProcess {
            name: name.to_string(),
            child: Some(child),
            log,
        }
    }

    fn log(&self) -> String {
        read_lossy(&self.log)
    }

    /// Panics with the log if the process has exited.
    fn check_alive(&mut self, what: &str) {
        if let Some(child) = self.child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                let log = self.log();
                self.child = None;
                panic!("{} exited ({status}) {what}; its log:\n{log}", self.name);
            }
        }
    }

    /// Waits for `port_file` to hold a port, then for that port to accept.
    fn wait_port_file(&mut self, port_file: &Path) -> u16 {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            self.check_alive("before it was ready");
            if let Ok(s) = fs::read_to_string(port_file) {
                if let Ok(port) = s.trim().parse::<u16>() {
                    if port != 0 && wait_connectable(port, deadline) {
                        return port;
                    }
                }
            }
            if Instant::now() > deadline {
                let log = self.log();
                panic!(
                    "{} did not come up within {:?} (no port in {}); its log:\n{log}",
                    self.name,
                    START_TIMEOUT,
                    port_file.display()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// True once 127.0.0.1:port or [::1]:port accepts a TCP connection
/// (before `deadline`).
fn wait_connectable(port: u16, deadline: Instant) -> bool {
    let v4: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let v6: std::net::SocketAddr = (std::net::Ipv6Addr::LOCALHOST, port).into();
    loop {
        if [v4, v6]
            .iter()
            .any(|a| TcpStream::connect_timeout(a, Duration::from_millis(500)).is_ok())
        {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A port that was free a moment ago (bind 127.0.0.1:0, read it, close).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

fn venv_python() -> PathBuf {
    let py = repo_root().join(".venv").join("bin").join("python");
    assert!(
        py.exists(),
        "{} is missing: run scripts/install-deps.sh (it makes the venv with aiosmtpd)",
        py.display()
    );
    py
}

fn is_root() -> bool {
    // No libc needed: the effective uid is in /proc.
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

// ---------------------------------------------------------------------------
// Captured messages (aiosmtpd and nodemailer)
// ---------------------------------------------------------------------------

/// One message a capturing server accepted.
#[derive(Debug, Clone)]
pub struct Captured {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    /// MAIL FROM parameters as sent, e.g. `["SIZE=42", "SMTPUTF8", "BODY=8BITMIME"]`
    /// (aiosmtpd upper-cases them; nodemailer keeps values as sent).
    pub mail_options: Vec<String>,
    /// RCPT TO parameters, one list per accepted recipient, e.g. `[["NOTIFY=SUCCESS"]]`.
    pub rcpt_options: Vec<Vec<String>>,
    pub smtp_utf8: bool,
    /// The message exactly as received after DATA, dot-unstuffed, without the
    /// final `.` line.
    pub data: Vec<u8>,
    /// The whole metadata file (nodemailer adds `user`, `secure`,
    /// `transmission_type` and its raw `envelope`).
    pub meta: Json,
    /// Base name of the capture (`0001`, …): the order of arrival.
    pub id: String,
}

fn read_captures(dir: &Path) -> Vec<Captured> {
    let mut names: Vec<String> = match fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".json") && !n.contains(".tmp"))
            .collect(),
        Err(_) => return Vec::new(),
    };
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let id = n.trim_end_matches(".json").to_string();
            let json_path = dir.join(&n);
            let text = fs::read_to_string(&json_path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", json_path.display()));
            let meta = Json::parse(&text)
                .unwrap_or_else(|e| panic!("bad json in {}: {e}\n{text}", json_path.display()));
            let eml = dir.join(format!("{id}.eml"));
            let data =
                fs::read(&eml).unwrap_or_else(|e| panic!("cannot read {}: {e}", eml.display()));
            let strs = |v: Option<&Json>| -> Vec<String> {
                v.and_then(Json::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            Captured {
                mail_from: meta
                    .get("mail_from")
                    .and_then(Json::as_str)
                    .unwrap_or("")
                    .to_string(),
                rcpt_tos: strs(meta.get("rcpt_tos")),
                mail_options: strs(meta.get("mail_options")),
                rcpt_options: meta
                    .get("rcpt_options")
                    .and_then(Json::as_array)
                    .map(|a| a.iter().map(|x| strs(Some(x))).collect())
                    .unwrap_or_default(),
                smtp_utf8: meta
                    .get("smtp_utf8")
                    .and_then(Json::as_bool)
                    .unwrap_or(false),
                data,
                meta,
                id,
            }
        })
        .collect()
}

fn wait_captures(
    dir: &Path,
    n: usize,
    timeout: Duration,
    who: &str,
    log: &dyn Fn() -> String,
) -> Vec<Captured> {
    let deadline = Instant::now() + timeout;
    loop {
        let m = read_captures(dir);
        if m.len() >= n {
            return m;
        }
        if Instant::now() > deadline {
            panic!(
                "{who}: expected {n} message(s) within {timeout:?}, have {}; server log:\n{}",
                m.len(),
                tail(&log(), 80)
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------
// aiosmtpd
// ---------------------------------------------------------------------------

/// Options for [`Aiosmtpd::start`].
#[derive(Debug, Clone, Default)]
pub struct AioOpts {
    /// Offer STARTTLS with `certs().server_cert`.
    pub tls: bool,
    /// The whole listener speaks TLS (implies a certificate; no STARTTLS).
    pub implicit_tls: bool,
    /// Accounts for PLAIN, LOGIN and CRAM-MD5.
    pub auth_users: Vec<(String, String)>,
    /// Offer/accept AUTH only after STARTTLS. `false` (the default here) offers
    /// it in cleartext too. With implicit TLS AUTH is always accepted.
    pub auth_require_tls: bool,
    /// Speak LMTP (LHLO, one reply per recipient after DATA).
    pub lmtp: bool,
    /// VRFY answers 250 for these and 550 for others; when empty VRFY answers 252.
    pub known_users: Vec<String>,
    /// XOAUTH2 accounts (user, bearer token).
    pub xoauth2: Vec<(String, String)>,
    /// RCPT TO for these addresses gets 550 5.1.1.
    pub reject_rcpts: Vec<String>,
    /// LMTP only: the per-recipient reply after DATA is 550 5.2.1 for these.
    pub lmtp_fail_rcpts: Vec<String>,
    /// SIZE limit advertised and enforced; None = 32 MiB; Some(0) = no limit.
    pub data_size_limit: Option<u64>,
    /// Log every command (aiosmtpd debug logging) into the log.
    pub verbose: bool,
    /// Use this certificate/key instead of the good server certificate
    /// (e.g. `certs().expired_cert`), with `tls` or `implicit_tls`.
    pub cert: Option<(PathBuf, PathBuf)>,
    /// Listen address; None = 127.0.0.1 (e.g. "::1" for IPv6).
    pub host: Option<String>,
    /// With `tls` or `implicit_tls`: require a client certificate signed by
    /// a CA in this file (e.g. `certs().ca`); the capture's metadata then
    /// has `client_cert_cn`.
    pub client_ca: Option<PathBuf>,
}

/// A running server that captures what it receives (aiosmtpd or
/// Nodemailer); dropping it stops the server.
#[derive(Debug)]
pub struct CapturingServer {
    pub port: u16,
    pub capture_dir: PathBuf,
    proc: ServerProcess,
    dir: TempDir,
}

impl CapturingServer {
    fn new(proc: ServerProcess, port: u16, capture_dir: PathBuf, dir: TempDir) -> Self {
        CapturingServer {
            port,
            capture_dir,
            proc,
            dir,
        }
    }

    /// Messages captured so far, in order of arrival.
    pub fn messages(&self) -> Vec<Captured> {
        read_captures(&self.capture_dir)
    }

    /// Waits until at least `n` messages are captured; panics with the log on timeout.
    pub fn wait_messages(&self, n: usize, timeout: Duration) -> Vec<Captured> {
        wait_captures(&self.capture_dir, n, timeout, &self.proc.name, &|| {
            self.proc.log()
        })
    }

    /// The server's log (with `verbose`, every command it received).
    pub fn log(&self) -> String {
        self.proc.log()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A running aiosmtpd server.
#[derive(Debug)]
pub struct Aiosmtpd(CapturingServer);

impl std::ops::Deref for Aiosmtpd {
    type Target = CapturingServer;
    fn deref(&self) -> &CapturingServer {
        &self.0
    }
}

impl Aiosmtpd {
    pub fn start(opts: AioOpts) -> Aiosmtpd {
        let dir = TempDir::new("aiosmtpd");
        let capture_dir = dir.path().join("capture");
        let port_file = dir.path().join("port");
        let mut cmd = Command::new(venv_python());
        cmd.arg(servers_dir().join("aiosmtpd_server.py"))
            .arg("--host")
            .arg(opts.host.as_deref().unwrap_or("127.0.0.1"))
            .args(["--port", "0"])
            .arg("--port-file")
            .arg(&port_file)
            .arg("--capture-dir")
            .arg(&capture_dir);
        if opts.tls || opts.implicit_tls {
            let (cert, key) = opts
                .cert
                .clone()
                .unwrap_or_else(|| (certs().server_cert.clone(), certs().server_key.clone()));
            cmd.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
        }
        if opts.implicit_tls {
            cmd.arg("--implicit-tls");
        }
        if let Some(ca) = &opts.client_ca {
            cmd.arg("--tls-client-ca").arg(ca);
        }
        for (u, p) in &opts.auth_users {
            cmd.arg("--auth-user").arg(format!("{u}:{p}"));
        }
        cmd.arg(if opts.auth_require_tls {
            "--auth-require-tls"
        } else {
            "--no-auth-require-tls"
        });
        if opts.lmtp {
            cmd.arg("--lmtp");
        }
        for u in &opts.known_users {
            cmd.arg("--known-user").arg(u);
        }
        for (u, t) in &opts.xoauth2 {
            cmd.arg("--xoauth2-token").arg(format!("{u}:{t}"));
        }
        for a in &opts.reject_rcpts {
            cmd.arg("--reject-rcpt").arg(a);
        }
        for a in &opts.lmtp_fail_rcpts {
            cmd.arg("--lmtp-fail-rcpt").arg(a);
        }
        if let Some(n) = opts.data_size_limit {
            cmd.arg("--data-size-limit").arg(n.to_string());
        }
        if opts.verbose {
            cmd.arg("--verbose");
        }
        let mut proc = ServerProcess::spawn("aiosmtpd", cmd, dir.path().join("server.log"));
        let port = proc.wait_port_file(&port_file);
        Aiosmtpd(CapturingServer::new(proc, port, capture_dir, dir))
    }
}

// ---------------------------------------------------------------------------
// Nodemailer smtp-server
// ---------------------------------------------------------------------------

/// Options for [`Nodemailer::start`].
#[derive(Debug, Clone, Default)]
pub struct NodeOpts {
    /// Offer STARTTLS with `certs().server_cert`.
    pub tls: bool,
    /// Implicit TLS on the whole listener.
    pub secure: bool,
    /// Accounts for PLAIN, LOGIN, CRAM-MD5 (AUTH is optional and allowed in cleartext).
    pub auth: Vec<(String, String)>,
    /// XOAUTH2 accounts (user, token); a wrong token gets Gmail's 334 JSON then 535.
    pub xoauth2: Vec<(String, String)>,
    /// SIZE limit; None = 10 MiB.
    pub size: Option<u64>,
    pub lmtp: bool,
    /// smtp-server's own protocol log into the log file.
    pub verbose: bool,
}

/// A running Nodemailer smtp-server.
#[derive(Debug)]
pub struct Nodemailer(CapturingServer);

impl std::ops::Deref for Nodemailer {
    type Target = CapturingServer;
    fn deref(&self) -> &CapturingServer {
        &self.0
    }
}

impl Nodemailer {
    pub fn start(opts: NodeOpts) -> Nodemailer {
        let module = servers_dir()
            .join("node")
            .join("node_modules")
            .join("smtp-server");
        assert!(
            module.is_dir(),
            "{} is missing: run scripts/install-deps.sh (npm ci in tests/servers/node)",
            module.display()
        );
        let dir = TempDir::new("nodemailer");
        let capture_dir = dir.path().join("capture");
        let port_file = dir.path().join("port");
        let mut cmd = Command::new("node");
        cmd.arg(servers_dir().join("nodemailer_server.js"))
            .arg("--port-file")
            .arg(&port_file)
            .arg("--capture-dir")
            .arg(&capture_dir);
        if opts.tls || opts.secure {
            cmd.arg("--tls-cert")
                .arg(&certs().server_cert)
                .arg("--tls-key")
                .arg(&certs().server_key);
        }
        if opts.secure {
            cmd.arg("--secure");
        }
        for (u, p) in &opts.auth {
            cmd.arg("--auth").arg(format!("{u}:{p}"));
        }
        for (u, t) in &opts.xoauth2 {
            cmd.arg("--xoauth2").arg(format!("{u}:{t}"));
        }
        if let Some(n) = opts.size {
            cmd.arg("--size").arg(n.to_string());
        }
        if opts.lmtp {
            cmd.arg("--lmtp");
        }
        if opts.verbose {
            cmd.arg("--verbose");
        }
        let mut proc =
            ServerProcess::spawn("nodemailer smtp-server", cmd, dir.path().join("server.log"));
        let port = proc.wait_port_file(&port_file);
        Nodemailer(CapturingServer::new(proc, port, capture_dir, dir))
    }
}

// ---------------------------------------------------------------------------
// Postfix
// ---------------------------------------------------------------------------

/// A private Postfix instance (see `tests/servers/postfix.sh`). Needs root.
///
/// * `submit`: STARTTLS optional; AUTH PLAIN LOGIN CRAM-MD5 DIGEST-MD5 also in
///   cleartext; VRFY on (252 for a known user, 550 5.1.1 for an unknown one).
/// * `encrypt`: STARTTLS required before MAIL/AUTH (530 5.7.0 otherwise).
/// * `implicit`: TLS from the first byte.
///
/// Mailboxes alice@example.test and bob@example.test; other users of
/// example.test get 550 5.1.1 at RCPT. Any other domain is accepted from
/// loopback and discarded. SASL account: [`Postfix::USER`] / [`Postfix::PASS`].
#[derive(Debug)]
pub struct Postfix {
    pub submit: u16,
    pub encrypt: u16,
    pub implicit: u16,
    /// The instance folder (etc/, queue/, mail/, maillog).
    pub dir: PathBuf,
    tmp: TempDir,
    stopped: bool,
}

impl Postfix {
    /// SASL login name that works (`tester@localhost` works too).
    pub const USER: &'static str = "tester";
    pub const PASS: &'static str = "s3cret";
    /// Users with a Maildir, at [`Postfix::DOMAIN`].
    pub const USERS: [&'static str; 2] = ["alice", "bob"];
    pub const DOMAIN: &'static str = "example.test";

    pub fn start() -> Postfix {
        assert!(
            is_root(),
            "Postfix tests need root (the Postfix master runs as root)"
        );
        let c = certs();
        let tmp = TempDir::new("postfix");
        let dir = tmp.path().join("pf");
        let log = tmp.path().join("postfix-sh.log");
        let f = fs::File::create(&log).expect("create postfix-sh.log");
        let f2 = f.try_clone().expect("clone log handle");
        // Output to a file, not a pipe: the daemons must not hold our pipe open.
        let status = Command::new("bash")
            .arg(servers_dir().join("postfix.sh"))
            .arg("start")
            .arg(&dir)
            .arg(&c.server_cert)
            .arg(&c.server_key)
            .stdin(Stdio::null())
            .stdout(f)
            .stderr(f2)
            .status()
            .unwrap_or_else(|e| panic!("cannot run tests/servers/postfix.sh: {e}"));
        let mut pf = Postfix {
            submit: 0,
            encrypt: 0,
            implicit: 0,
            dir: dir.clone(),
            tmp,
            stopped: false,
        };
        if !status.success() {
            let out = read_lossy(&log);
            pf.stop();
            panic!(
                "tests/servers/postfix.sh start {} failed ({status}):\n{out}",
                dir.display()
            );
        }
        let env = fs::read_to_string(dir.join("ports.env")).unwrap_or_default();
        let get = |k: &str| -> u16 {
            env.lines()
                .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        pf.submit = get("PORT_SUBMIT");
        pf.encrypt = get("PORT_ENCRYPT");
        pf.implicit = get("PORT_IMPLICIT");
        if pf.submit == 0 || pf.encrypt == 0 || pf.implicit == 0 {
            let out = read_lossy(&log);
            let ml = pf.maillog();
            pf.stop();
            panic!("postfix.sh wrote no usable ports.env ({env:?}):\n{out}\nmaillog:\n{ml}");
        }
        pf
    }

    /// The instance's maillog.
    pub fn maillog(&self) -> String {
        read_lossy(&self.dir.join("maillog"))
    }

    /// The folder of a user's Maildir (`alice` or `bob`).
    pub fn maildir(&self, user: &str) -> PathBuf {
        self.dir.join("mail").join(user)
    }

    /// Messages in `user`'s Maildir `new/`, oldest first, as stored. Postfix
    /// stores them with LF line endings (not CRLF) and with its trace header
    /// lines on top: `Return-Path:`, `X-Original-To:`, `Delivered-To:` and one
    /// `Received:` header (with continuation lines). Use
    /// [`strip_trace_headers`] and [`lf_to_crlf`] to compare with what was sent.
    pub fn delivered(&self, user: &str) -> Vec<Vec<u8>> {
        read_maildir_new(&self.maildir(user))
    }

    /// Waits until `user` has at least `n` messages; panics with the maillog on timeout.
    pub fn wait_delivered(&self, user: &str, n: usize, timeout: Duration) -> Vec<Vec<u8>> {
        wait_maildir("postfix", &self.maildir(user), user, n, timeout, &|| {
            self.maillog()
        })
    }

    fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let _ = Command::new("bash")
            .arg(servers_dir().join("postfix.sh"))
            .arg("stop")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The messages in `maildir/new`, oldest first, as stored.
pub fn read_maildir_new(maildir: &Path) -> Vec<Vec<u8>> {
    let new = maildir.join("new");
    let mut files: Vec<((u64, u64), String, PathBuf)> = match fs::read_dir(&new) {
        Ok(rd) => rd
            .flatten()
            .map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                (maildir_order(&name), name, e.path())
            })
            .collect(),
        Err(_) => return Vec::new(),
    };
    files.sort();
    files
        .into_iter()
        .filter_map(|(_, _, p)| match fs::read(&p) {
            Ok(b) => Some(b),
            // moved away between listing and reading: not ours to report
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => panic!("cannot read {}: {e}", p.display()),
        })
        .collect()
}

pub fn wait_maildir(
    who: &str,
    maildir: &Path,
    user: &str,
    n: usize,
    timeout: Duration,
    log: &dyn Fn() -> String,
) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + timeout;
    loop {
        let m = read_maildir_new(maildir);
        if m.len() >= n {
            return m;
        }
        if Instant::now() > deadline {
            panic!(
                "{who}: expected {n} message(s) for {user} within {timeout:?}, have {}; log:\n{}",
                m.len(),
                tail(&log(), 80)
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Sort key of a Maildir file name `SECS.V…I…M<usec>.host`.
fn maildir_order(name: &str) -> (u64, u64) {
    let mut it = name.split('.');
    let secs = it.next().and_then(|s| s.parse().ok()).unwrap_or(u64::MAX);
    // Postfix writes `…M<usec>`, Dovecot `M<usec>P<pid>`: the digits after
    // the last M.
    let usec = it
        .next()
        .and_then(|s| s.rfind('M').map(|i| &s[i + 1..]))
        .map(|s| {
            s.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|d| d.parse().ok())
        .unwrap_or(0);
    (secs, usec)
}

/// Removes the header lines Postfix puts on top of a delivered message:
/// `Return-Path:`, `X-Original-To:`, `Delivered-To:` (each optional, in that
/// order) and then exactly one `Received:` header with its continuation
/// lines. Anything the client sent (including its own `Received:` headers)
/// stays.
pub fn strip_trace_headers(msg: &[u8]) -> &[u8] {
    fn line_end(m: &[u8], at: usize) -> usize {
        m[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(m.len(), |i| at + i + 1)
    }
    fn starts_ci(m: &[u8], at: usize, p: &str) -> bool {
        m.len() >= at + p.len() && m[at..at + p.len()].eq_ignore_ascii_case(p.as_bytes())
    }
    let mut at = 0;
    for h in ["Return-Path:", "X-Original-To:", "Delivered-To:"] {
        if starts_ci(msg, at, h) {
            at = line_end(msg, at);
        }
    }
    if starts_ci(msg, at, "Received:") {
        at = line_end(msg, at);
        while at < msg.len() && (msg[at] == b' ' || msg[at] == b'\t') {
            at = line_end(msg, at);
        }
    }
    &msg[at..]
}

/// LF line endings to CRLF (for comparing a Maildir file with what was sent).
pub fn lf_to_crlf(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len() + b.len() / 32);
    let mut prev = 0u8;
    for &c in b {
        if c == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(c);
        prev = c;
    }
    out
}

/// CRLF line endings to LF.
pub fn crlf_to_lf(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\r' && b.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

// ---------------------------------------------------------------------------
// smtp-sink
// ---------------------------------------------------------------------------

/// Postfix's `smtp-sink` (`-u nobody -m 1024 127.0.0.1:PORT 1024` plus extra
/// flags). Offers PIPELINING 8BITMIME AUTH PLAIN LOGIN XCLIENT XFORWARD
/// ENHANCEDSTATUSCODES DSN; no TLS, SIZE, SMTPUTF8, CHUNKING. Dropping it stops it.
#[derive(Debug)]
pub struct SmtpSink {
    pub port: u16,
    proc: ServerProcess,
    dir: TempDir,
}

pub fn smtp_sink_path() -> PathBuf {
    for p in [
        "/usr/sbin/smtp-sink",
        "/usr/lib/postfix/sbin/smtp-sink",
        "/usr/bin/smtp-sink",
    ] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("smtp-sink not found (package postfix): run scripts/install-deps.sh");
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        SmtpSink::start_with(&[])
    }

    /// `extra` goes before the address, e.g. `&["-v"]` (log commands),
    /// `&["-c"]` (counters), `&["-p"]` (no PIPELINING), `&["-r"]`…
    pub fn start_with(extra: &[&str]) -> SmtpSink {
        let sink = smtp_sink_path();
        let dir = TempDir::new("smtp-sink");
        let log = dir.path().join("sink.log");
        let mut last_log = String::new();
        // The port is probed free and then bound by smtp-sink: retry if
        // another process took it meanwhile.
        for _attempt in 0..5 {
            let port = free_port();
            let mut cmd = Command::new(&sink);
            if is_root() {
                cmd.args(["-u", "nobody"]);
            }
            cmd.args(["-m", "1024"])
                .args(extra)
                .arg(format!("127.0.0.1:{port}"))
                .arg("1024");
            let mut proc = ServerProcess::spawn("smtp-sink", cmd, log.clone());
            let deadline = Instant::now() + START_TIMEOUT;
            loop {
                if let Some(child) = proc.child.as_mut() {
                    if let Ok(Some(_)) = child.try_wait() {
                        proc.child = None;
                        break;
                    }
                }
                if TcpStream::connect_timeout(
                    &([127, 0, 0, 1], port).into(),
                    Duration::from_millis(500),
                )
                .is_ok()
                {
                    return SmtpSink { port, proc, dir };
                }
                if Instant::now() > deadline {
                    let l = proc.log();
                    panic!(
                        "smtp-sink did not listen on {port} within {START_TIMEOUT:?}; log:\n{l}"
                    );
                }
                thread::sleep(Duration::from_millis(20));
            }
            last_log = proc.log();
            if !last_log.contains("in use") {
                break;
            }
        }
        panic!("smtp-sink failed to start; log:\n{last_log}");
    }

    /// Everything smtp-sink printed so far (with `-v`, the commands it got).
    pub fn log(&self) -> String {
        self.proc.log()
    }
}

// ---------------------------------------------------------------------------
// A bare line-oriented SMTP client, for poking servers without the library
// ---------------------------------------------------------------------------

/// A minimal SMTP client over a plain TCP stream (no TLS).
pub struct RawSmtp {
    pub reader: BufReader<TcpStream>,
    pub stream: TcpStream,
}

/// A reply: code and text lines (without the code and separator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawReply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl RawReply {
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
    /// EHLO keywords (upper-cased first word of each line after the first).
    pub fn keywords(&self) -> Vec<String> {
        self.lines
            .iter()
            .skip(1)
            .map(|l| {
                l.split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_ascii_uppercase()
            })
            .collect()
    }
    pub fn has(&self, keyword: &str) -> bool {
        self.keywords()
            .iter()
            .any(|k| k.eq_ignore_ascii_case(keyword))
    }
}

impl RawSmtp {
    /// Connects to 127.0.0.1:port and reads the greeting (returned).
    pub fn connect(port: u16) -> (RawSmtp, RawReply) {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("connect 127.0.0.1:{port}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream.set_nodelay(true).ok();
        let reader = BufReader::new(stream.try_clone().unwrap());
        let mut c = RawSmtp { reader, stream };
        let greeting = c.read_reply();
        (c, greeting)
    }

    pub fn read_reply(&mut self) -> RawReply {
        let mut lines = Vec::new();
        loop {
            let mut buf = Vec::new();
            let n = self.reader.read_until(b'\n', &mut buf).expect("read reply");
            assert!(n > 0, "server closed the connection (after {lines:?})");
            let line = String::from_utf8_lossy(&buf)
                .trim_end_matches(['\r', '\n'])
                .to_string();
            assert!(line.len() >= 3, "short reply line {line:?}");
            let code: u16 = line[..3]
                .parse()
                .unwrap_or_else(|_| panic!("bad reply line {line:?}"));
            let more = line.as_bytes().get(3) == Some(&b'-');
            lines.push(line.get(4..).unwrap_or("").to_string());
            if !more {
                return RawReply { code, lines };
            }
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Sends `line` + CRLF and reads one reply.
    pub fn cmd(&mut self, line: &str) -> RawReply {
        self.send(format!("{line}\r\n").as_bytes());
        self.read_reply()
    }

    /// Reads until the server closes (for tests that expect a close).
    pub fn read_to_end(&mut self) -> Vec<u8> {
        let mut v = Vec::new();
        let _ = self.reader.read_to_end(&mut v);
        v
    }
}

// ---------------------------------------------------------------------------
// A small JSON reader (for the capture metadata; no serde needed)
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(BTreeMap<String, Json>),
}

impl Json {
    pub fn parse(s: &str) -> Result<Json, String> {
        let mut p = JsonParser {
            b: s.as_bytes(),
            i: 0,
        };
        let v = p.value()?;
        p.ws();
        if p.i != p.b.len() {
            return Err(format!("trailing data at {}", p.i));
        }
        Ok(v)
    }
    pub fn get(&self, k: &str) -> Option<&Json> {
        match self {
            Json::Obj(m) => m.get(k),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Json::Num(n) => Some(*n),
            _ => None,
        }
    }
    pub fn as_array(&self) -> Option<&Vec<Json>> {
        match self {
            Json::Arr(a) => Some(a),
            _ => None,
        }
    }
    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }
}

struct JsonParser<'a> {
    b: &'a [u8],
    i: usize,
}

impl JsonParser<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\r' | b'\n') {
            self.i += 1;
        }
    }
    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at byte {}", self.i))
    }
    fn lit(&mut self, word: &str, v: Json) -> Result<Json, String> {
        if self.b[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(v)
        } else {
            self.err("bad literal")
        }
    }
    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        match self.b.get(self.i) {
            None => self.err("unexpected end"),
            Some(b'n') => self.lit("null", Json::Null),
            Some(b't') => self.lit("true", Json::Bool(true)),
            Some(b'f') => self.lit("false", Json::Bool(false)),
            Some(b'"') => self.string().map(Json::Str),
            Some(b'[') => {
                self.i += 1;
                let mut v = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Json::Arr(v));
                }
                loop {
                    v.push(self.value()?);
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Json::Arr(v));
                        }
                        _ => return self.err("expected , or ]"),
                    }
                }
            }
            Some(b'{') => {
                self.i += 1;
                let mut m = BTreeMap::new();
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(Json::Obj(m));
                }
                loop {
                    self.ws();
                    if self.b.get(self.i) != Some(&b'"') {
                        return self.err("expected key");
                    }
                    let k = self.string()?;
                    self.ws();
                    if self.b.get(self.i) != Some(&b':') {
                        return self.err("expected :");
                    }
                    self.i += 1;
                    let v = self.value()?;
                    m.insert(k, v);
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Json::Obj(m));
                        }
                        _ => return self.err("expected , or }"),
                    }
                }
            }
            Some(_) => {
                let start = self.i;
                while self.i < self.b.len()
                    && matches!(
                        self.b[self.i],
                        b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                    )
                {
                    self.i += 1;
                }
                std::str::from_utf8(&self.b[start..self.i])
                    .ok()
                    .and_then(|s| s.parse::<f64>().ok())
                    .map(Json::Num)
                    .ok_or_else(|| format!("bad number at byte {start}"))
            }
        }
    }
    fn hex4(&mut self) -> Result<u32, String> {
        let s = self.b.get(self.i..self.i + 4).ok_or("short \\u escape")?;
        let v = u32::from_str_radix(std::str::from_utf8(s).map_err(|e| e.to_string())?, 16)
            .map_err(|e| e.to_string())?;
        self.i += 4;
        Ok(v)
    }
    fn string(&mut self) -> Result<String, String> {
        self.i += 1; // opening quote
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(&c) = self.b.get(self.i) else {
                return self.err("unterminated string");
            };
            self.i += 1;
            match c {
                b'"' => return String::from_utf8(out).map_err(|e| e.to_string()),
                b'\\' => {
                    let Some(&e) = self.b.get(self.i) else {
                        return self.err("bad escape");
                    };
                    self.i += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let cp = if (0xD800..0xDC00).contains(&hi)
                                && self.b[self.i..].starts_with(b"\\u")
                            {
                                self.i += 2;
                                let lo = self.hex4()?;
                                0x10000 + ((hi - 0xD800) << 10) + (lo.wrapping_sub(0xDC00) & 0x3FF)
                            } else {
                                hi
                            };
                            char::from_u32(cp).unwrap_or('\u{FFFD}')
                        }
                        _ => return self.err("bad escape"),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                _ => out.push(c),
            }
        }
    }
}
