//! A private Dovecot 2.3 instance per test (`tests/servers/dovecot.sh`): a
//! real LMTP server (over a UNIX-domain socket and on a TCP loopback port)
//! delivering to Maildirs, and a real SASL server (SCRAM-SHA-256, PLAIN,
//! LOGIN) for a Postfix instance ([`PostfixWithDovecotSasl`]).
//!
//! Like the Postfix starter: needs root, everything lives in its own
//! temporary folder with ports picked at run time, readiness is awaited with
//! a bound, a missing package is a panic with the reason, and dropping the
//! value stops the servers and removes the folder (`SMTPC_KEEP_TEST_DIRS=1`
//! keeps it).
//!
//! [`Dovecot`] LMTP (LHLO reply): `8BITMIME CHUNKING ENHANCEDSTATUSCODES
//! PIPELINING STARTTLS` — CHUNKING is offered (`BDAT n LAST` gets one reply
//! per accepted recipient, like the end of DATA); no SIZE, DSN, SMTPUTF8,
//! AUTH, VRFY. EHLO/HELO get `500 5.5.1 Unknown command` (LMTP speaks LHLO).
//! Greeting: `220 lmtp.smtpc.test Dovecot (Debian) ready.` Recipients
//! alice@example.test and bob@example.test get `250 2.1.5 OK`; any other gets
//! `550 5.1.1 <addr> User doesn't exist: addr` at RCPT.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{certs, read_maildir_new, repo_root, wait_maildir, TempDir};

fn servers_dir() -> PathBuf {
    repo_root().join("tests").join("servers")
}

fn read_lossy(p: &Path) -> String {
    fs::read(p)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_else(|e| format!("(cannot read {}: {e})", p.display()))
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// True while process `pid` runs. A daemon's exited master stays a zombie
/// until init reaps it (which can take seconds here): that counts as gone.
pub fn process_running(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // "pid (comm) S …": the state follows the last ')'
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next().map(str::to_string))
        })
        .is_some_and(|st| st != "Z" && st != "X")
}

/// Values of `KEY=value` lines.
fn env_value(env: &str, key: &str) -> Option<String> {
    env.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .map(|v| v.trim().to_string())
}

/// Runs `bash tests/servers/<script> args…` with output to `log` (a file, not
/// a pipe: the daemons it starts must not hold our pipe open).
fn run_script(
    script: &str,
    args: &[&std::ffi::OsStr],
    envs: &[(&str, String)],
    log: &Path,
) -> bool {
    let f =
        fs::File::create(log).unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
    let f2 = f.try_clone().expect("clone log handle");
    let mut cmd = Command::new("bash");
    cmd.arg(servers_dir().join(script)).args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null())
        .stdout(f)
        .stderr(f2)
        .status()
        .unwrap_or_else(|e| panic!("cannot run tests/servers/{script}: {e}"))
        .success()
}

fn run_stop(script: &str, dir: &Path) {
    let _ = Command::new("bash")
        .arg(servers_dir().join(script))
        .arg("stop")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

// ---------------------------------------------------------------------------
// Maildirs
// ---------------------------------------------------------------------------

/// `alice` or `alice@example.test` -> `alice`.
fn local_part(user: &str) -> &str {
    user.split('@').next().unwrap_or(user)
}

/// Removes the header lines Dovecot's LMTP puts on top of a delivered
/// message, exactly these, in this order:
///
/// 1. `Return-Path: <sender>` — always;
/// 2. `Delivered-To: <rcpt>` — only when the transaction had exactly one
///    accepted recipient (`lmtp_hdr_delivery_address = final`);
/// 3. one `Received: from <LHLO name> ([<ip>])` header with its
///    continuation lines (`by lmtp.smtpc.test with LMTP`, `id …`,
///    `(envelope-from <sender>)`, and `for <rcpt>` with one accepted
///    recipient, then `; <date>`). Over the UNIX socket there is no `([ip])`.
///
/// Anything the client sent (including its own `Received:` headers) stays.
/// Dovecot stores messages with LF line endings: compare with
/// `lf_to_crlf(strip_dovecot_headers(m))`.
pub fn strip_dovecot_headers(msg: &[u8]) -> &[u8] {
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
    for h in ["Return-Path:", "Delivered-To:"] {
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

// ---------------------------------------------------------------------------
// Dovecot
// ---------------------------------------------------------------------------

/// Options for [`Dovecot::start_with`]. The default: mechanisms
/// `PLAIN LOGIN SCRAM-SHA-256`, passwords stored as `{SCRAM-SHA-256}` hashes.
#[derive(Debug, Clone, Default)]
pub struct DovecotOpts {
    /// Dovecot `auth_mechanisms` (lower case, e.g. `["plain", "cram-md5",
    /// "scram-sha-1", "scram-sha-256"]`); empty = `plain login scram-sha-256`.
    /// CRAM-MD5, DIGEST-MD5 and SCRAM-SHA-1 need `plain_passwords`.
    pub auth_mechanisms: Vec<String>,
    /// Store the passwords as `{PLAIN}` (so every mechanism can work) instead
    /// of `{SCRAM-SHA-256}` hashes (then only PLAIN, LOGIN, SCRAM-SHA-256).
    pub plain_passwords: bool,
    /// `auth_debug`, `mail_debug`, `verbose_ssl` into the log.
    pub verbose: bool,
}

/// A private Dovecot instance (LMTP + auth). Needs root. See the module doc
/// for what its LMTP offers.
///
/// Accounts (passwd-file; every password is [`Dovecot::PASS`]):
/// alice@example.test, bob@example.test (mailboxes, Maildirs under
/// `dir/mail/<local part>`) and [`Dovecot::SASL_USER`] (SASL only).
#[derive(Debug)]
pub struct Dovecot {
    lmtp_port: u16,
    /// The instance folder (dovecot.conf, passwd, run/, mail/, dovecot.log).
    pub dir: PathBuf,
    tmp: TempDir,
    stopped: bool,
}

impl Dovecot {
    pub const USERS: [&'static str; 2] = ["alice", "bob"];
    pub const DOMAIN: &'static str = "example.test";
    /// A SASL-only account (the same name and password as [`super::Postfix`]'s).
    pub const SASL_USER: &'static str = "tester";
    /// The password of every account.
    pub const PASS: &'static str = "s3cret";
    /// Dovecot's `hostname`: in the greeting, the LHLO reply and `Received:`.
    pub const HOSTNAME: &'static str = "lmtp.smtpc.test";

    pub fn start() -> Dovecot {
        Dovecot::start_with(DovecotOpts::default())
    }

    pub fn start_with(opts: DovecotOpts) -> Dovecot {
        assert!(
            is_root(),
            "Dovecot tests need root (the Dovecot master binds and drops privileges)"
        );
        let c = certs();
        let tmp = TempDir::new("dovecot");
        let dir = tmp.path().join("dc");
        let log = tmp.path().join("dovecot-sh.log");
        let mut envs = Vec::new();
        if !opts.auth_mechanisms.is_empty() {
            envs.push(("DOVECOT_AUTH_MECHANISMS", opts.auth_mechanisms.join(" ")));
        }
        if opts.plain_passwords {
            envs.push(("DOVECOT_PASS_SCHEME", "PLAIN".to_string()));
        }
        if opts.verbose {
            envs.push(("DOVECOT_VERBOSE", "1".to_string()));
        }
        let ok = run_script(
            "dovecot.sh",
            &[
                "start".as_ref(),
                dir.as_os_str(),
                c.server_cert.as_os_str(),
                c.server_key.as_os_str(),
            ],
            &envs,
            &log,
        );
        let mut dc = Dovecot {
            lmtp_port: 0,
            dir: dir.clone(),
            tmp,
            stopped: false,
        };
        if !ok {
            let out = read_lossy(&log);
            dc.stop();
            panic!(
                "tests/servers/dovecot.sh start {} failed (packages dovecot-core and \
                 dovecot-lmtpd come from scripts/install-deps.sh):\n{out}",
                dir.display()
            );
        }
        let env = fs::read_to_string(dir.join("ports.env")).unwrap_or_default();
        dc.lmtp_port = env_value(&env, "PORT_LMTP")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if dc.lmtp_port == 0 || !dc.lmtp_socket().exists() {
            let out = read_lossy(&log);
            let l = dc.log();
            dc.stop();
            panic!("dovecot.sh wrote no usable ports.env ({env:?}):\n{out}\nlog:\n{l}");
        }
        dc
    }

    /// LMTP over a UNIX-domain socket (mode 0666).
    pub fn lmtp_socket(&self) -> PathBuf {
        self.dir.join("lmtp")
    }

    /// LMTP over TCP on 127.0.0.1.
    pub fn lmtp_port(&self) -> u16 {
        self.lmtp_port
    }

    /// Dovecot's auth socket for Postfix (`smtpd_sasl_type = dovecot`),
    /// owned by postfix:postfix, mode 0660. Speaks Dovecot's auth protocol.
    pub fn auth_socket(&self) -> PathBuf {
        self.dir.join("auth-postfix")
    }

    /// The instance's log (every process logs here; `auth_verbose = yes`
    /// logs failed logins).
    pub fn log(&self) -> String {
        read_lossy(&self.dir.join("dovecot.log"))
    }

    /// The Maildir of `user` (`alice`, or `alice@example.test`).
    pub fn maildir(&self, user: &str) -> PathBuf {
        self.dir.join("mail").join(local_part(user))
    }

    /// Messages in `user`'s Maildir `new/`, oldest first, exactly as stored:
    /// LF line endings, with Dovecot's headers on top (see
    /// [`strip_dovecot_headers`], then `lf_to_crlf` to compare with what was
    /// sent).
    pub fn delivered(&self, user: &str) -> Vec<Vec<u8>> {
        read_maildir_new(&self.maildir(user))
    }

    /// Waits until `user` has at least `n` messages; panics with the log on timeout.
    pub fn wait_delivered(&self, user: &str, n: usize, timeout: Duration) -> Vec<Vec<u8>> {
        wait_maildir("dovecot", &self.maildir(user), user, n, timeout, &|| {
            self.log()
        })
    }

    /// The master's pid while it runs.
    pub fn master_pid(&self) -> Option<u32> {
        fs::read_to_string(self.dir.join("run").join("master.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .filter(|&pid| process_running(pid))
    }

    fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        run_stop("dovecot.sh", &self.dir);
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------
// Postfix with Dovecot SASL
// ---------------------------------------------------------------------------

/// A private Postfix (`postfix.sh start-dovecot-sasl`) whose SASL is a
/// private [`Dovecot`]'s auth service, so that SCRAM-SHA-256 is really
/// negotiated (Postfix relays the exchange; Dovecot checks it against its
/// passwd-file with a `{SCRAM-SHA-256}` hash).
///
/// Everything else is as in [`super::Postfix`] (the same listeners, Maildirs
/// for alice@ and bob@example.test, 550 5.1.1 for other users there):
///
/// * `submit`: STARTTLS optional; AUTH offered **in clear text too**:
///   `AUTH PLAIN LOGIN SCRAM-SHA-256` (in Dovecot's order).
/// * `encrypt`: no AUTH before STARTTLS (`smtpd_tls_auth_only`, 530 5.7.0 for
///   MAIL); after it the same AUTH line.
/// * `implicit`: TLS from the first byte, AUTH offered.
///
/// A wrong password gets `535 5.7.8 Error: authentication failed: (reason
/// unavailable)` after about 0.5 s (`auth_failure_delay = 0`, but Dovecot
/// sends failures on a 500 ms timer); the anvil auth penalty is off, so
/// repeated failures from 127.0.0.1 do not slow later logins down.
#[derive(Debug)]
pub struct PostfixWithDovecotSasl {
    pub submit: u16,
    pub encrypt: u16,
    pub implicit: u16,
    /// The Postfix instance folder (etc/, queue/, mail/, maillog).
    pub dir: PathBuf,
    /// The Dovecot serving its SASL (its LMTP works as well).
    pub dovecot: Dovecot,
    tmp: TempDir,
    stopped: bool,
}

impl PostfixWithDovecotSasl {
    /// The SASL login that works (SCRAM-SHA-256, PLAIN, LOGIN).
    pub const USER: &'static str = Dovecot::SASL_USER;
    pub const PASS: &'static str = Dovecot::PASS;
    /// Users with a Maildir at [`Dovecot::DOMAIN`] (Postfix's own Maildirs).
    pub const USERS: [&'static str; 2] = ["alice", "bob"];
    pub const DOMAIN: &'static str = "example.test";

    pub fn start() -> PostfixWithDovecotSasl {
        PostfixWithDovecotSasl::start_with(DovecotOpts::default())
    }

    pub fn start_with(opts: DovecotOpts) -> PostfixWithDovecotSasl {
        let dovecot = Dovecot::start_with(opts);
        let c = certs();
        let tmp = TempDir::new("postfix-dovecot");
        let dir = tmp.path().join("pf");
        let log = tmp.path().join("postfix-sh.log");
        let auth = dovecot.auth_socket();
        let ok = run_script(
            "postfix.sh",
            &[
                "start-dovecot-sasl".as_ref(),
                dir.as_os_str(),
                c.server_cert.as_os_str(),
                c.server_key.as_os_str(),
                auth.as_os_str(),
            ],
            &[],
            &log,
        );
        let mut pf = PostfixWithDovecotSasl {
            submit: 0,
            encrypt: 0,
            implicit: 0,
            dir: dir.clone(),
            dovecot,
            tmp,
            stopped: false,
        };
        if !ok {
            let out = read_lossy(&log);
            pf.stop_postfix();
            panic!(
                "tests/servers/postfix.sh start-dovecot-sasl {} failed:\n{out}",
                dir.display()
            );
        }
        let env = fs::read_to_string(dir.join("ports.env")).unwrap_or_default();
        let get = |k: &str| -> u16 { env_value(&env, k).and_then(|v| v.parse().ok()).unwrap_or(0) };
        pf.submit = get("PORT_SUBMIT");
        pf.encrypt = get("PORT_ENCRYPT");
        pf.implicit = get("PORT_IMPLICIT");
        if pf.submit == 0
            || pf.encrypt == 0
            || pf.implicit == 0
            || env_value(&env, "SASL_TYPE").as_deref() != Some("dovecot")
        {
            let out = read_lossy(&log);
            let ml = pf.maillog();
            pf.stop_postfix();
            panic!("postfix.sh wrote no usable ports.env ({env:?}):\n{out}\nmaillog:\n{ml}");
        }
        pf
    }

    /// The Postfix instance's maillog (SASL failures are logged there as
    /// `warning: …: SASL SCRAM-SHA-256 authentication failed`, and in
    /// `self.dovecot.log()`).
    pub fn maillog(&self) -> String {
        read_lossy(&self.dir.join("maillog"))
    }

    /// Postfix's Maildir of `user` (`alice` or `alice@example.test`).
    pub fn maildir(&self, user: &str) -> PathBuf {
        self.dir.join("mail").join(local_part(user))
    }

    /// As [`super::Postfix::delivered`]: LF line endings, Postfix's trace
    /// headers on top (use `strip_trace_headers`).
    pub fn delivered(&self, user: &str) -> Vec<Vec<u8>> {
        read_maildir_new(&self.maildir(user))
    }

    pub fn wait_delivered(&self, user: &str, n: usize, timeout: Duration) -> Vec<Vec<u8>> {
        wait_maildir("postfix", &self.maildir(user), user, n, timeout, &|| {
            self.maillog()
        })
    }

    /// The Postfix master's pid while it runs.
    pub fn master_pid(&self) -> Option<u32> {
        fs::read_to_string(self.dir.join("queue/pid/master.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .filter(|&pid| process_running(pid))
    }

    fn stop_postfix(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        run_stop("postfix.sh", &self.dir);
    }
}

impl Drop for PostfixWithDovecotSasl {
    fn drop(&mut self) {
        // Postfix first (it uses Dovecot's socket); then the fields drop:
        // `dovecot` stops Dovecot, `tmp` removes the Postfix folder.
        self.stop_postfix();
    }
}
