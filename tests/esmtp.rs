//! The ESMTP extensions against real servers that offer them (or, for the
//! refusal paths, real servers that do not): PIPELINING, the batch API,
//! CHUNKING/BDAT, BINARYMIME, SIZE, 8BITMIME, SMTPUTF8, DSN,
//! ENHANCEDSTATUSCODES, AUTH with an explicit mechanism (XOAUTH2, CRAM-MD5),
//! streamed bodies and LMTP.
//!
//! Every test starts its own server(s) (dynamic ports) and asserts what
//! ARRIVED: the bytes and envelope a capturing server stored (aiosmtpd,
//! Nodemailer), the commands and dump of smtp-sink (`-v`, `-D`), or the
//! Maildir files of a private Postfix — not only the reply codes.
//!
//! Servers and what they offer (see tests/support/mod.rs):
//! * Postfix: PIPELINING SIZE(10240000) 8BITMIME DSN SMTPUTF8 CHUNKING
//!   ENHANCEDSTATUSCODES; no BINARYMIME. unknown@example.test → 550 5.1.1;
//!   a sender like `x@[1.2.3]` → 501 5.1.7 (a MAIL refusal).
//! * Nodemailer: PIPELINING 8BITMIME SMTPUTF8 ENHANCEDSTATUSCODES DSN SIZE
//!   AUTH(PLAIN LOGIN CRAM-MD5 XOAUTH2); no CHUNKING. It refuses
//!   `x@[1.2.3]` at MAIL (501 5.1.7) and at RCPT (501 5.1.3).
//! * smtp-sink: PIPELINING 8BITMIME DSN ENHANCEDSTATUSCODES; no SIZE,
//!   SMTPUTF8, CHUNKING. `-8` hides 8BITMIME; `-D file` dumps each message
//!   with its raw MAIL/RCPT arguments.
//! * aiosmtpd: SIZE 8BITMIME SMTPUTF8 AUTH; no PIPELINING, no DSN.

mod support;

use std::ffi::{c_char, CStr, CString};
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use smtpc::client::transaction::{Body, Dsn, Message, Outcome};
use smtpc::ffi::result::*;
use smtpc::{ErrorKind, Reply, Session, Step};

use support::*;

const WAIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

/// The transcript lines a session emitted.
#[derive(Clone, Default)]
struct Trace(Arc<Mutex<Vec<String>>>);

impl Trace {
    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
    fn text(&self) -> String {
        self.lines().join("\n")
    }
    fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
    /// What was sent: the quoted payload of each `send: '…'` line (escaped
    /// as the transcript shows it, e.g. `mail FROM:<a@b>\r\n`).
    fn sent(&self) -> Vec<String> {
        self.lines()
            .iter()
            .filter_map(|l| {
                let at = l.find("send: '")?;
                let rest = &l[at + "send: '".len()..];
                Some(rest.strip_suffix('\'').unwrap_or(rest).to_string())
            })
            .collect()
    }
    /// The sent lines that start with `verb` (case-insensitive).
    fn sent_verb(&self, verb: &str) -> Vec<String> {
        self.sent()
            .into_iter()
            .filter(|s| s.len() >= verb.len() && s[..verb.len()].eq_ignore_ascii_case(verb))
            .collect()
    }
}

/// A session whose transcript (at `level`) is captured.
fn traced(level: i32) -> (Session, Trace) {
    let trace = Trace::default();
    let sink = trace.0.clone();
    let mut s = Session::new();
    s.set_timeout(Duration::from_secs(15));
    s.set_debuglevel(level);
    s.set_trace_sink(Some(Box::new(move |l: &str| {
        sink.lock().unwrap().push(l.to_string())
    })));
    (s, trace)
}

fn connect(s: &mut Session, port: u16) {
    let r = s
        .connect("127.0.0.1", port)
        .unwrap_or_else(|e| panic!("connect to {port}: {e}"));
    assert_eq!(r.code, 220, "greeting {r:?}");
}

/// Connected and EHLO done, so that waits() deltas count only the mail.
fn ready(port: u16, level: i32) -> (Session, Trace) {
    let (mut s, t) = traced(level);
    connect(&mut s, port);
    let r = s.ehlo(Some("client.test")).unwrap();
    assert_eq!(r.code, 250, "EHLO {r:?}");
    (s, t)
}

/// A complete message (CRLF line ends) identified by `id`.
fn mail(id: &str, to: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Sender <sender@client.test>\r\nTo: {to}\r\nSubject: {id}\r\n\
         Message-ID: <{id}@client.test>\r\nDate: Thu, 01 Jan 2026 00:00:00 +0000\r\n\r\n{body}"
    )
    .into_bytes()
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Byte equality with a readable failure (first difference and context),
/// for messages too large to print.
fn assert_same_bytes(got: &[u8], want: &[u8], what: &str) {
    if got == want {
        return;
    }
    let at = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    let ctx = |b: &[u8]| show(&b[at.saturating_sub(60)..(at + 60).min(b.len())]);
    panic!(
        "{what}: {} bytes received, {} expected; first difference at byte {at}\n\
         received: {:?}\nexpected: {:?}",
        got.len(),
        want.len(),
        ctx(got),
        ctx(want)
    );
}

fn codes(replies: &[Reply]) -> Vec<u16> {
    replies.iter().map(|r| r.code).collect()
}

fn enhanced(r: &Reply) -> String {
    r.enhanced().map(|e| e.to_string()).unwrap_or_default()
}

// ---- Postfix ---------------------------------------------------------------

const ALICE: &str = "alice@example.test";
const BOB: &str = "bob@example.test";
const UNKNOWN: &str = "unknown@example.test";
const UNKNOWN2: &str = "nobody-here@example.test";
/// A sender both Postfix and Nodemailer refuse at MAIL (501 5.1.7), while
/// the library passes it through (it is one word in angle brackets).
const BAD_SENDER: &str = "bad@[1.2.3]";

/// The delivered copy (Maildir, LF endings, trace headers on top) of the
/// message whose Message-ID is `<id@client.test>`, as CRLF bytes without
/// Postfix's own headers.
fn delivered_by_id(delivered: &[Vec<u8>], id: &str) -> Vec<u8> {
    let needle = format!("\nMessage-ID: <{id}@client.test>\n");
    let hits: Vec<&Vec<u8>> = delivered
        .iter()
        .filter(|m| m.windows(needle.len()).any(|w| w == needle.as_bytes()))
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "message {id} should be delivered exactly once; delivered: {:#?}",
        delivered.iter().map(|m| show(m)).collect::<Vec<_>>()
    );
    lf_to_crlf(strip_trace_headers(hits[0]))
}

fn ids_in(delivered: &[Vec<u8>]) -> Vec<String> {
    let mut ids: Vec<String> = delivered
        .iter()
        .filter_map(|m| {
            let s = show(m);
            let at = s.find("\nMessage-ID: <")? + "\nMessage-ID: <".len();
            let end = s[at..].find('@')?;
            Some(s[at..at + end].to_string())
        })
        .collect();
    ids.sort();
    ids
}

/// Waits a little and checks that `user` still has exactly `n` messages
/// (to show that something was NOT delivered).
fn assert_stays(pf: &Postfix, user: &str, n: usize, settle: Duration) {
    thread::sleep(settle);
    let got = pf.delivered(user);
    assert_eq!(
        got.len(),
        n,
        "{user} should have {n} message(s); has: {:#?}\nmaillog:\n{}",
        got.iter().map(|m| show(m)).collect::<Vec<_>>(),
        pf.maillog()
    );
}

// ---- smtp-sink with a dump file ----------------------------------------------

const DUMP_MARK: &str = "=====SMTPC-DUMP=====";

/// smtp-sink with `-v` and `-D` (every message appended to one dump file,
/// each after DUMP_MARK, with its raw MAIL and RCPT arguments).
struct Sink {
    sink: SmtpSink,
    _dir: TempDir,
    dump: PathBuf,
}

/// One message smtp-sink dumped.
#[derive(Debug)]
struct Dumped {
    /// `X-Mail-Args:` as sent after `MAIL FROM:` (e.g. `<a@b> BODY=8BITMIME`).
    mail_args: String,
    /// One `X-Rcpt-Args:` per RCPT (accepted or not), as sent.
    rcpt_args: Vec<String>,
    /// The message as received, dot-unstuffed, with LF line ends.
    data: Vec<u8>,
}

fn start_sink(extra: &[&str]) -> Sink {
    let dir = TempDir::new("esmtp-sink-dump");
    // smtp-sink writes the dump as "nobody".
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let dump = dir.path().join("dump");
    let dump_s = dump.to_string_lossy().into_owned();
    let mark = format!("{DUMP_MARK}\\n");
    let mut args: Vec<&str> = vec!["-v", "-D", &dump_s, "-S", &mark];
    args.extend_from_slice(extra);
    let sink = SmtpSink::start_with(&args);
    Sink {
        sink,
        _dir: dir,
        dump,
    }
}

impl Sink {
    fn port(&self) -> u16 {
        self.sink.port
    }

    fn dumped(&self) -> Vec<Dumped> {
        let raw = std::fs::read(&self.dump).unwrap_or_default();
        let text = raw;
        let mark = format!("{DUMP_MARK}\n");
        let mut out = Vec::new();
        let mut parts: Vec<&[u8]> = Vec::new();
        let mut rest: &[u8] = &text;
        loop {
            match rest.windows(mark.len()).position(|w| w == mark.as_bytes()) {
                Some(p) => {
                    parts.push(&rest[..p]);
                    rest = &rest[p + mark.len()..];
                }
                None => {
                    parts.push(rest);
                    break;
                }
            }
        }
        for part in parts.into_iter().skip(1) {
            let mut mail_args = String::new();
            let mut rcpt_args = Vec::new();
            let mut at = 0;
            let line_of = |at: usize| -> (String, usize) {
                let end = part[at..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(part.len(), |i| at + i + 1);
                (show(&part[at..end]).trim_end().to_string(), end)
            };
            // X-… records, then the three-line Received: header.
            loop {
                let (line, next) = line_of(at);
                at = next;
                if let Some(v) = line.strip_prefix("X-Mail-Args: ") {
                    mail_args = v.to_string();
                } else if let Some(v) = line.strip_prefix("X-Rcpt-Args: ") {
                    rcpt_args.push(v.to_string());
                } else if line.starts_with("Received: ") {
                    while at < part.len() && part[at] == b'\t' {
                        at = line_of(at).1;
                    }
                    break;
                }
                assert!(at < part.len(), "bad smtp-sink dump record: {}", show(part));
            }
            // The message, then one empty line.
            let body = &part[at..];
            let data = body.strip_suffix(b"\n").unwrap_or(body).to_vec();
            out.push(Dumped {
                mail_args,
                rcpt_args,
                data,
            });
        }
        out
    }

    fn wait_dumped(&self, n: usize) -> Vec<Dumped> {
        let deadline = Instant::now() + WAIT;
        loop {
            let d = self.dumped();
            if d.len() >= n {
                return d;
            }
            assert!(
                Instant::now() < deadline,
                "smtp-sink dumped {} message(s), expected {n}; log:\n{}",
                d.len(),
                self.sink.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The SMTP commands smtp-sink logged (`-v`), in order.
    fn commands(&self) -> Vec<String> {
        self.sink
            .log()
            .lines()
            .filter_map(|l| l.split_once(": ").map(|(_, c)| c.to_string()))
            .filter(|c| {
                let u = c.to_ascii_uppercase();
                [
                    "EHLO", "HELO", "MAIL", "RCPT", "DATA", ".", "RSET", "QUIT", "BDAT", "NOOP",
                ]
                .iter()
                .any(|v| u == *v || u.starts_with(&format!("{v} ")))
            })
            .collect()
    }

    /// Waits until smtp-sink has logged `n` commands and returns them.
    fn wait_commands(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let c = self.commands();
            if c.len() >= n || Instant::now() > deadline {
                return c;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

// ---- C API helpers -------------------------------------------------------------

struct CSession(*mut smtpc::ffi::smtp_session);

impl CSession {
    fn new() -> CSession {
        let s = smtpc::ffi::session::smtp_session_new();
        assert!(!s.is_null());
        unsafe {
            assert_eq!(
                smtpc::ffi::session::smtp_session_set_timeout_ms(s, 15_000),
                SMTPC_OK
            );
        }
        CSession(s)
    }
    fn connect(&self, port: u16) {
        let host = CString::new("127.0.0.1").unwrap();
        let mut buf = [0 as c_char; 512];
        let rc = unsafe {
            smtpc::ffi::session::smtp_session_connect(
                self.0,
                host.as_ptr(),
                port,
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        assert_eq!(rc, 220, "{}", text(&buf));
    }
}

impl Drop for CSession {
    fn drop(&mut self) {
        unsafe { smtpc::ffi::session::smtp_session_free(self.0) }
    }
}

fn text(buf: &[c_char]) -> String {
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// `smtp_session_sendmail` to every address in `to` (from `cstrings`),
/// the reply text into `buf`.
///
/// # Safety
/// `s` is a live handle.
unsafe fn c_sendmail(
    s: *mut smtpc::ffi::smtp_session,
    from: &CStr,
    to: &[*const c_char],
    msg: &[u8],
    buf: &mut [c_char],
) -> i32 {
    smtpc::ffi::session::smtp_session_sendmail(
        s,
        from.as_ptr(),
        to.as_ptr(),
        to.len(),
        msg.as_ptr().cast(),
        msg.len(),
        buf.as_mut_ptr(),
        buf.len(),
    )
}

fn cstrings(v: &[&str]) -> (Vec<CString>, Vec<*const c_char>) {
    let owned: Vec<CString> = v.iter().map(|s| CString::new(*s).unwrap()).collect();
    let ptrs = owned.iter().map(|c| c.as_ptr()).collect();
    (owned, ptrs)
}

// ===========================================================================
// PIPELINING (RFC 2920)
// ===========================================================================

#[test]
fn pipelined_sendmail_waits_twice_per_message_on_smtp_sink() {
    let sink = start_sink(&[]);
    let (mut s, _t) = ready(sink.port(), 0);
    assert!(s.has_extn("PIPELINING"));
    let mut sent = Vec::new();
    for i in 0..3 {
        let id = format!("pipe-{i}");
        let msg = mail(
            &id,
            "a@sink.test",
            &format!("message {i}\r\n..dotted {i}\r\n"),
        );
        let before = s.waits();
        let r = s
            .sendmail("sender@client.test", &["a@sink.test", "b@sink.test"], &msg)
            .unwrap();
        assert_eq!(r.code, 250, "{r:?}");
        assert_eq!(s.failed_step(), Step::None);
        assert_eq!(codes(s.rcpt_replies()), [250, 250]);
        assert_eq!(
            s.waits() - before,
            2,
            "pipelined: one wait for MAIL+RCPT+RCPT+DATA, one after the body"
        );
        sent.push(msg);
    }
    s.quit().unwrap();

    let dumped = sink.wait_dumped(3);
    assert_eq!(dumped.len(), 3);
    for (d, msg) in dumped.iter().zip(&sent) {
        assert_eq!(d.mail_args, "<sender@client.test>");
        assert_eq!(d.rcpt_args, ["<a@sink.test>", "<b@sink.test>"]);
        assert_same_bytes(&lf_to_crlf(&d.data), msg, "smtp-sink dump");
    }
    let cmds = sink.wait_commands(1 + 3 * 5 + 1);
    let mut want = vec!["EHLO client.test".to_string()];
    for _ in 0..3 {
        want.extend(
            [
                "MAIL FROM:<sender@client.test>",
                "RCPT TO:<a@sink.test>",
                "RCPT TO:<b@sink.test>",
                "DATA",
                ".",
            ]
            .map(String::from),
        );
    }
    want.push("QUIT".into());
    assert_eq!(
        cmds.iter().map(|c| normalize_verb(c)).collect::<Vec<_>>(),
        want,
        "smtp-sink -v log:\n{}",
        sink.sink.log()
    );
}

/// `mail FROM:<x>` → `MAIL FROM:<x>`, `rcpt TO:` → `RCPT TO:` (the library
/// sends lower-case verbs, as smtplib).
fn normalize_verb(c: &str) -> String {
    let up = c.to_ascii_uppercase();
    for v in ["MAIL FROM:", "RCPT TO:"] {
        if up.starts_with(v) {
            return format!("{v}{}", &c[v.len()..]);
        }
    }
    match c.split_once(' ') {
        Some((v, rest)) => format!("{} {rest}", v.to_ascii_uppercase()),
        None => up,
    }
}

/// The transcript shows MAIL, every RCPT and (`with_data`) DATA queued
/// before any reply was read: they shared one write. (In BDAT mode the
/// library reads the first envelope's replies before the first chunk, on
/// purpose: see `send_bdat`.)
fn assert_pipelined(t: &Trace, with_data: bool) {
    let lines = t.lines();
    let start = lines
        .iter()
        .position(|l| l.contains("send: 'mail "))
        .unwrap_or_else(|| panic!("no MAIL: {lines:#?}"));
    let last = if with_data {
        "send: 'data\\r\\n'"
    } else {
        "send: 'rcpt "
    };
    let end = lines
        .iter()
        .rposition(|l| l.contains(last))
        .unwrap_or_else(|| panic!("no {last}: {lines:#?}"));
    assert!(
        lines[start..end].iter().all(|l| !l.contains("reply:")),
        "not pipelined: {:#?}",
        &lines[start..=end]
    );
}

#[test]
fn lock_step_sendmail_waits_four_times_per_message_on_smtp_sink() {
    let sink = start_sink(&[]);
    let (mut s, _t) = ready(sink.port(), 0);
    s.set_pipelining(false);
    for i in 0..2 {
        let msg = mail(&format!("lock-{i}"), "a@sink.test", "lock-step\r\n");
        let before = s.waits();
        let r = s
            .sendmail("sender@client.test", &["a@sink.test"], &msg)
            .unwrap();
        assert_eq!(r.code, 250);
        assert_eq!(
            s.waits() - before,
            4,
            "MAIL, RCPT, DATA and the body each wait"
        );
    }
    // Back on: pipelined again on the same connection.
    s.set_pipelining(true);
    let before = s.waits();
    let r = s
        .sendmail(
            "sender@client.test",
            &["a@sink.test"],
            &mail("lock-2", "a@sink.test", "x\r\n"),
        )
        .unwrap();
    assert_eq!(r.code, 250);
    assert_eq!(s.waits() - before, 2);
    let dumped = sink.wait_dumped(3);
    assert_eq!(dumped.len(), 3);
    assert!(show(&dumped[2].data).contains("Subject: lock-2\n"));
}

#[test]
fn server_without_pipelining_gets_lock_step_even_when_pipelining_is_on() {
    let sink = start_sink(&["-p"]);
    let (mut s, _t) = ready(sink.port(), 0);
    assert!(!s.has_extn("PIPELINING"));
    let before = s.waits();
    let msg = mail("nopipe", "a@sink.test", "x\r\n");
    let r = s
        .sendmail("sender@client.test", &["a@sink.test"], &msg)
        .unwrap();
    assert_eq!(r.code, 250);
    assert_eq!(s.waits() - before, 4);
    assert_same_bytes(&lf_to_crlf(&sink.wait_dumped(1)[0].data), &msg, "dump");
}

#[test]
fn batch_of_20_in_data_mode_waits_about_once_per_message_on_smtp_sink() {
    let sink = start_sink(&[]);
    let (mut s, t) = ready(sink.port(), 1);
    let mut sent = Vec::new();
    for i in 0..20 {
        let id = format!("sinkbatch-{i:02}");
        let to: Vec<String> = (0..=(i % 3))
            .map(|k| format!("r{k}-{i}@sink.test"))
            .collect();
        let to_refs: Vec<&str> = to.iter().map(String::as_str).collect();
        let msg = mail(
            &id,
            &to[0],
            &format!("batch body {i}\r\n.leading dot {i}\r\n"),
        );
        s.batch_add(&format!("from-{i}@client.test"), &to_refs, &msg)
            .unwrap();
        sent.push((format!("from-{i}@client.test"), to, msg));
    }
    assert_eq!(s.batch_queued(), 20);
    t.clear();
    let before = s.waits();
    assert!(s.batch_send().unwrap().is_none());
    let waits = s.waits() - before;
    assert_eq!(s.batch_queued(), 0);
    let results = s.batch_results();
    assert_eq!(results.len(), 20);
    for (i, o) in results.iter().enumerate() {
        let (step, r) = o.result().unwrap();
        assert_eq!((step, r.code), (Step::None, 250), "message {i}: {o:?}");
        assert_eq!(o.mail.as_ref().unwrap().code, 250);
        assert_eq!(codes(&o.rcpts), vec![250; sent[i].1.len()], "message {i}");
        assert_eq!(o.data.as_ref().unwrap().code, 354);
    }
    // DATA mode (smtp-sink has no CHUNKING): the trace shows DATA, no BDAT.
    assert_eq!(t.sent_verb("data\\r\\n").len(), 20);
    assert!(t.sent_verb("BDAT").is_empty());
    assert!(
        (20..=24).contains(&waits),
        "a pipelined DATA batch waits about once per message (for the 354), got {waits} for 20"
    );
    s.quit().unwrap();

    let dumped = sink.wait_dumped(20);
    assert_eq!(dumped.len(), 20);
    for (i, (d, (from, to, msg))) in dumped.iter().zip(&sent).enumerate() {
        assert_eq!(d.mail_args, format!("<{from}>"), "message {i}");
        let want: Vec<String> = to.iter().map(|a| format!("<{a}>")).collect();
        assert_eq!(d.rcpt_args, want, "message {i}");
        assert_same_bytes(&lf_to_crlf(&d.data), msg, &format!("dumped message {i}"));
    }
    // The whole conversation, in order: EHLO, then per message MAIL, its
    // RCPTs, DATA and the end-of-data dot, then QUIT.
    let mut want = vec!["EHLO client.test".to_string()];
    for (from, to, _) in &sent {
        want.push(format!("MAIL FROM:<{from}>"));
        want.extend(to.iter().map(|a| format!("RCPT TO:<{a}>")));
        want.push("DATA".into());
        want.push(".".into());
    }
    want.push("QUIT".into());
    let cmds = sink.wait_commands(want.len());
    assert_eq!(
        cmds.iter().map(|c| normalize_verb(c)).collect::<Vec<_>>(),
        want,
        "smtp-sink -v log:\n{}",
        sink.sink.log()
    );
}

#[test]
fn pipelined_sendmail_reports_each_recipient_on_nodemailer() {
    let nm = Nodemailer::start(NodeOpts::default());
    let (mut s, t) = ready(nm.port, 1);
    assert!(s.has_extn("PIPELINING"));
    t.clear();
    let msg = mail("node-rcpts", "a@node.test", "hello\r\n");
    let r = s
        .sendmail(
            "sender@client.test",
            &["a@node.test", "bad@[1.2.3]", "b@node.test"],
            &msg,
        )
        .unwrap();
    assert_eq!(r.code, 250, "{r:?}");
    assert_eq!(s.failed_step(), Step::None);
    // Nodemailer writes each reply on its own, so waits() depends on timing
    // there; the transcript shows the commands all went out before the
    // first reply was read.
    assert_pipelined(&t, true);
    let rc = s.rcpt_replies();
    assert_eq!(codes(rc), [250, 501, 250]);
    assert_eq!(enhanced(&rc[0]), "2.1.5");
    assert_eq!(enhanced(&rc[1]), "5.1.3");
    assert!(
        rc[1].text.contains("Bad recipient address syntax"),
        "{:?}",
        rc[1]
    );
    let got = nm.wait_messages(1, WAIT);
    assert_eq!(got[0].rcpt_tos, ["a@node.test", "b@node.test"]);
    assert_eq!(got[0].mail_from, "sender@client.test");
    assert_same_bytes(&got[0].data, &msg, "nodemailer capture");
}

#[test]
fn pipelined_sendmail_reports_each_recipient_on_postfix_in_data_and_bdat_modes() {
    let pf = Postfix::start();
    let (mut s, t) = ready(pf.submit, 1);
    let mut expected = Vec::new();
    for (chunking, id) in [(false, "pf-rcpts-data"), (true, "pf-rcpts-bdat")] {
        s.set_chunking(chunking);
        t.clear();
        let msg = mail(id, ALICE, &format!("{id}\r\n"));
        let r = s
            .sendmail("sender@client.test", &[ALICE, UNKNOWN, BOB], &msg)
            .unwrap();
        assert_eq!(r.code, 250, "{id}: {r:?}");
        assert_eq!(s.failed_step(), Step::None);
        let rc = s.rcpt_replies();
        assert_eq!(codes(rc), [250, 550, 250], "{id}");
        assert_eq!(enhanced(&rc[1]), "5.1.1");
        assert!(rc[1].text.contains("User unknown"), "{:?}", rc[1]);
        assert_eq!(
            t.sent_verb("BDAT").is_empty(),
            !chunking,
            "{id}: {}",
            t.text()
        );
        assert_eq!(
            t.sent_verb("data\\r\\n").is_empty(),
            chunking,
            "{id}: {}",
            t.text()
        );
        assert_pipelined(&t, !chunking);
        expected.push((id, msg));
    }
    s.quit().unwrap();
    for user in ["alice", "bob"] {
        let got = pf.wait_delivered(user, 2, WAIT);
        for (id, msg) in &expected {
            assert_same_bytes(&delivered_by_id(&got, id), msg, &format!("{user} {id}"));
        }
    }
}

#[test]
fn refused_mail_leaves_the_pipelined_session_usable_on_postfix() {
    let pf = Postfix::start();
    let (mut s, t) = ready(pf.submit, 1);
    let mut ok_ids = Vec::new();
    for (chunking, mode) in [(true, "bdat"), (false, "data")] {
        s.set_chunking(chunking);
        t.clear();
        let r = s
            .sendmail(
                BAD_SENDER,
                &[ALICE],
                &mail(&format!("refused-{mode}"), ALICE, "no\r\n"),
            )
            .unwrap();
        assert_eq!(
            (r.code, enhanced(&r)),
            (501, "5.1.7".into()),
            "{mode}: {r:?}"
        );
        assert_eq!(s.failed_step(), Step::Mail, "{mode}");
        assert_eq!(s.last_outcome().mail.as_ref().unwrap().code, 501);
        assert!(s.is_connected());
        // Pipelined: MAIL and RCPT went out in the same write, unanswered first.
        assert_eq!(t.sent_verb("rcpt").len(), 1, "{mode}: {}", t.text());
        let id = format!("after-refused-{mode}");
        let msg = mail(&id, ALICE, "next one\r\n");
        let r = s.sendmail("sender@client.test", &[ALICE], &msg).unwrap();
        assert_eq!(
            r.code,
            250,
            "{mode}: the next message goes through: {r:?}\n{}",
            t.text()
        );
        assert_eq!(s.failed_step(), Step::None);
        ok_ids.push((id, msg));
    }
    s.quit().unwrap();
    let got = pf.wait_delivered("alice", 2, WAIT);
    assert_eq!(ids_in(&got), ["after-refused-bdat", "after-refused-data"]);
    for (id, msg) in &ok_ids {
        assert_same_bytes(&delivered_by_id(&got, id), msg, id);
    }
    assert_stays(&pf, "alice", 2, Duration::from_millis(500));
}

#[test]
fn refused_mail_leaves_the_pipelined_session_usable_on_nodemailer() {
    let nm = Nodemailer::start(NodeOpts::default());
    let (mut s, _t) = ready(nm.port, 0);
    let r = s
        .sendmail(BAD_SENDER, &["a@node.test"], b"Subject: x\r\n\r\nno\r\n")
        .unwrap();
    assert_eq!(r.code, 501, "{r:?}");
    assert_eq!(s.failed_step(), Step::Mail);
    let msg = mail("node-after-mail", "a@node.test", "yes\r\n");
    let r = s
        .sendmail("sender@client.test", &["a@node.test"], &msg)
        .unwrap();
    assert_eq!(r.code, 250, "{r:?}");
    let got = nm.wait_messages(1, WAIT);
    thread::sleep(Duration::from_millis(300));
    assert_eq!(
        nm.messages().len(),
        1,
        "the refused message must not arrive"
    );
    assert_eq!(got[0].mail_from, "sender@client.test");
    assert_same_bytes(&got[0].data, &msg, "capture");
}

#[test]
fn all_recipients_refused_leaves_the_pipelined_session_usable_on_postfix() {
    let pf = Postfix::start();
    let (mut s, t) = ready(pf.submit, 1);
    let mut ok = Vec::new();
    for (chunking, mode) in [(true, "bdat"), (false, "data")] {
        s.set_chunking(chunking);
        t.clear();
        let r = s
            .sendmail(
                "sender@client.test",
                &[UNKNOWN, UNKNOWN2],
                &mail(&format!("none-{mode}"), UNKNOWN, "x\r\n"),
            )
            .unwrap();
        assert_eq!(s.failed_step(), Step::Rcpt, "{mode}");
        assert_eq!(
            (r.code, enhanced(&r)),
            (550, "5.1.1".into()),
            "{mode}: {r:?}"
        );
        assert_eq!(codes(s.rcpt_replies()), [550, 550]);
        assert!(s.is_connected());
        let id = format!("after-none-{mode}");
        let msg = mail(&id, ALICE, "after all refused\r\n");
        let r = s.sendmail("sender@client.test", &[ALICE], &msg).unwrap();
        assert_eq!(r.code, 250, "{mode}: {r:?}\n{}", t.text());
        ok.push((id, msg));
    }
    s.quit().unwrap();
    let got = pf.wait_delivered("alice", 2, WAIT);
    for (id, msg) in &ok {
        assert_same_bytes(&delivered_by_id(&got, id), msg, id);
    }
    assert_stays(&pf, "alice", 2, Duration::from_millis(500));
}

// ===========================================================================
// Batch API
// ===========================================================================

/// One message of the Postfix batch and what must happen to it.
struct Planned {
    id: String,
    from: String,
    to: Vec<&'static str>,
    body: Vec<u8>,
    step: Step,
    final_code: u16,
    rcpt_codes: Vec<u16>,
}

/// 20 messages: most to alice and/or bob, three with an unknown recipient
/// too, one with only unknown recipients, one with a sender Postfix refuses.
fn postfix_batch_plan(tag: &str) -> Vec<Planned> {
    (0..20)
        .map(|i| {
            let id = format!("{tag}-{i:02}");
            let (from, to, step, final_code, rcpt_codes): (String, Vec<&str>, Step, u16, Vec<u16>) =
                match i {
                    3 | 7 | 12 => (
                        "sender@client.test".into(),
                        vec![ALICE, UNKNOWN],
                        Step::None,
                        250,
                        vec![250, 550],
                    ),
                    9 => (
                        "sender@client.test".into(),
                        vec![UNKNOWN, UNKNOWN2],
                        Step::Rcpt,
                        550,
                        vec![550, 550],
                    ),
                    15 => (BAD_SENDER.into(), vec![ALICE], Step::Mail, 501, vec![]),
                    i if i % 4 == 1 => (
                        format!("s{i}@client.test"),
                        vec![ALICE, BOB],
                        Step::None,
                        250,
                        vec![250, 250],
                    ),
                    i if i % 4 == 2 => (
                        format!("s{i}@client.test"),
                        vec![BOB],
                        Step::None,
                        250,
                        vec![250],
                    ),
                    _ => (
                        format!("s{i}@client.test"),
                        vec![ALICE],
                        Step::None,
                        250,
                        vec![250],
                    ),
                };
            let body = mail(
                &id,
                to[0],
                &format!("Body of {id}.\r\n.A line starting with a dot\r\n..and two\r\nend\r\n"),
            );
            Planned {
                id,
                from,
                to,
                body,
                step,
                final_code,
                rcpt_codes,
            }
        })
        .collect()
}

fn check_batch_outcomes(plan: &[Planned], results: &[Outcome]) {
    assert_eq!(results.len(), plan.len());
    for (p, o) in plan.iter().zip(results) {
        let (step, r) = o
            .result()
            .unwrap_or_else(|e| panic!("{}: no answer: {e} ({o:?})", p.id));
        assert_eq!((step, r.code), (p.step, p.final_code), "{}: {o:?}", p.id);
        match p.step {
            Step::Mail => {
                assert_eq!(enhanced(&r), "5.1.7", "{}", p.id);
                assert_eq!(o.mail.as_ref().unwrap().code, 501);
            }
            _ => {
                assert_eq!(codes(&o.rcpts), p.rcpt_codes, "{}: {o:?}", p.id);
                for (rr, &c) in o.rcpts.iter().zip(&p.rcpt_codes) {
                    let want = if c == 550 { "5.1.1" } else { "2.1.5" };
                    assert_eq!(enhanced(rr), want, "{}: {rr:?}", p.id);
                }
            }
        }
        if p.step == Step::None {
            assert_eq!(enhanced(&r), "2.0.0", "{}: {r:?}", p.id);
            assert!(r.text.contains("queued as"), "{}: {r:?}", p.id);
        }
    }
}

fn check_batch_delivery(pf: &Postfix, plan: &[Planned]) {
    for user in ["alice", "bob"] {
        let addr = format!("{user}@example.test");
        let want: Vec<&Planned> = plan
            .iter()
            .filter(|p| p.step == Step::None && p.to.contains(&addr.as_str()))
            .collect();
        let got = pf.wait_delivered(user, want.len(), WAIT);
        let mut want_ids: Vec<String> = want.iter().map(|p| p.id.clone()).collect();
        want_ids.sort();
        assert_eq!(ids_in(&got), want_ids, "{user}");
        for p in want {
            assert_same_bytes(
                &delivered_by_id(&got, &p.id),
                &p.body,
                &format!("{user} {}", p.id),
            );
        }
    }
}

fn run_postfix_batch(chunking: bool, tag: &str) {
    let pf = Postfix::start();
    let (mut s, t) = ready(pf.submit, 1);
    s.set_chunking(chunking);
    let plan = postfix_batch_plan(tag);
    for p in &plan {
        s.batch_add(&p.from, &p.to, &p.body).unwrap();
    }
    t.clear();
    let before = s.waits();
    assert!(s.batch_send().unwrap().is_none());
    let waits = s.waits() - before;
    check_batch_outcomes(&plan, s.batch_results());
    if chunking {
        assert!(
            t.sent_verb("data\\r\\n").is_empty(),
            "BDAT mode sends no DATA"
        );
        // Every message whose MAIL went out sent its body as one BDAT LAST.
        let bdat = t.sent_verb("BDAT ");
        assert_eq!(bdat.len(), 20, "{bdat:?}");
        assert!(bdat.iter().all(|b| b.ends_with(" LAST\\r\\n")), "{bdat:?}");
        assert!(
            waits < 20,
            "BDAT batches do not wait per message: {waits} waits"
        );
    } else {
        assert!(t.sent_verb("BDAT").is_empty());
        assert!(
            waits <= 24,
            "a pipelined DATA batch waits about once per message: {waits}"
        );
    }
    // The session is still in step: a plain sendmail works afterwards.
    let extra = mail(&format!("{tag}-after"), ALICE, "after the batch\r\n");
    assert_eq!(
        s.sendmail("sender@client.test", &[ALICE], &extra)
            .unwrap()
            .code,
        250
    );
    s.quit().unwrap();
    let mut all = plan;
    all.push(Planned {
        id: format!("{tag}-after"),
        from: "sender@client.test".into(),
        to: vec![ALICE],
        body: extra,
        step: Step::None,
        final_code: 250,
        rcpt_codes: vec![250],
    });
    check_batch_delivery(&pf, &all);
}

#[test]
fn batch_of_20_over_bdat_reports_each_message_and_recipient_on_postfix() {
    run_postfix_batch(true, "bdatbatch");
}

#[test]
fn batch_of_20_over_pipelined_data_reports_each_message_and_recipient_on_postfix() {
    run_postfix_batch(false, "databatch");
}

#[test]
fn batch_send_from_pulls_messages_from_a_closure_on_postfix() {
    let pf = Postfix::start();
    let (mut s, _t) = ready(pf.submit, 0);
    let plan = postfix_batch_plan("closure");
    let plan = &plan[..10];
    let mut next = 0usize;
    let mut pulled = 0usize;
    {
        let mut source = || -> smtpc::client::Result<Option<Message<'_>>> {
            let Some(p) = plan.get(next) else {
                return Ok(None);
            };
            next += 1;
            pulled += 1;
            Ok(Some(Message {
                from: &p.from,
                to: p.to.clone(),
                body: Body::Bytes(&p.body),
            }))
        };
        assert!(s.batch_send_from(&mut source).unwrap().is_none());
    }
    assert_eq!(pulled, 10);
    check_batch_outcomes(plan, s.batch_results());

    // A source that fails after 3 messages: those 3 are still answered
    // (and delivered); the call reports the callback's error.
    let plan2 = postfix_batch_plan("failing");
    let mut k = 0usize;
    let mut failing = || -> smtpc::client::Result<Option<Message<'_>>> {
        if k == 3 {
            return Err(smtpc::Error::new(ErrorKind::Callback, "source broke"));
        }
        let p = &plan2[k];
        k += 1;
        Ok(Some(Message {
            from: &p.from,
            to: p.to.clone(),
            body: Body::Bytes(&p.body),
        }))
    };
    let e = s.batch_send_from(&mut failing).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Callback, "{e}");
    assert!(e.message.contains("source broke"), "{e}");
    let res = s.batch_results();
    assert_eq!(res.len(), 3);
    check_batch_outcomes(&plan2[..3], res);
    assert!(
        s.is_connected(),
        "a failing source does not close the connection"
    );
    let after = mail("closure-after", ALICE, "x\r\n");
    assert_eq!(
        s.sendmail("sender@client.test", &[ALICE], &after)
            .unwrap()
            .code,
        250
    );
    s.quit().unwrap();

    let mut delivered_plan: Vec<Planned> =
        postfix_batch_plan("closure").into_iter().take(10).collect();
    delivered_plan.extend(postfix_batch_plan("failing").into_iter().take(3));
    delivered_plan.push(Planned {
        id: "closure-after".into(),
        from: "sender@client.test".into(),
        to: vec![ALICE],
        body: after,
        step: Step::None,
        final_code: 250,
        rcpt_codes: vec![250],
    });
    check_batch_delivery(&pf, &delivered_plan);
}

#[test]
fn c_api_batch_reports_codes_steps_and_recipients_on_postfix() {
    use smtpc::ffi::batch::*;
    let pf = Postfix::start();
    let c = CSession::new();
    c.connect(pf.submit);
    let m0 = mail("cbatch-0", ALICE, "first\r\n");
    let m1 = mail("cbatch-1", ALICE, "second\r\n");
    let m2 = mail("cbatch-2", UNKNOWN, "third\r\n");
    let from = CString::new("sender@client.test").unwrap();
    let batch: [(&[&str], &Vec<u8>); 3] = [
        (&[ALICE, BOB], &m0),
        (&[ALICE, UNKNOWN], &m1),
        (&[UNKNOWN], &m2),
    ];
    for (to, msg) in batch {
        let (_keep, ptrs) = cstrings(to);
        let rc = unsafe {
            smtp_session_batch_add(
                c.0,
                from.as_ptr(),
                ptrs.as_ptr(),
                ptrs.len(),
                msg.as_ptr().cast(),
                msg.len(),
            )
        };
        assert_eq!(rc, SMTPC_OK);
    }
    unsafe {
        assert_eq!(smtp_session_batch_send(c.0), SMTPC_OK);
        assert_eq!(smtp_session_batch_count(c.0), 3);
        let mut buf = [0 as c_char; 512];
        let want = [
            (250, SMTPC_STEP_NONE, vec![250, 250]),
            (250, SMTPC_STEP_NONE, vec![250, 550]),
            (550, SMTPC_STEP_RCPT, vec![550]),
        ];
        for (i, (code, step, rcpts)) in want.iter().enumerate() {
            assert_eq!(
                smtp_session_batch_code(c.0, i, buf.as_mut_ptr(), buf.len()),
                *code,
                "message {i}: {}",
                text(&buf)
            );
            if *code == 550 {
                assert!(text(&buf).starts_with("5.1.1"), "{}", text(&buf));
            } else {
                assert!(text(&buf).contains("queued as"), "{}", text(&buf));
            }
            assert_eq!(smtp_session_batch_failed_step(c.0, i), *step, "message {i}");
            assert_eq!(smtp_session_batch_rcpt_count(c.0, i), rcpts.len());
            for (j, rc) in rcpts.iter().enumerate() {
                assert_eq!(
                    smtp_session_batch_rcpt_code(c.0, i, j, buf.as_mut_ptr(), buf.len()),
                    *rc,
                    "message {i} recipient {j}"
                );
                if *rc == 550 {
                    assert!(text(&buf).contains("User unknown"), "{}", text(&buf));
                }
            }
            assert_eq!(
                smtp_session_batch_rcpt_code(c.0, i, rcpts.len(), buf.as_mut_ptr(), buf.len()),
                SMTPC_E_INVALID
            );
        }
        assert_eq!(
            smtp_session_batch_code(c.0, 3, buf.as_mut_ptr(), buf.len()),
            SMTPC_E_INVALID
        );
        assert_eq!(smtp_session_batch_failed_step(c.0, 3), SMTPC_E_INVALID);
    }
    drop(c);
    let a = pf.wait_delivered("alice", 2, WAIT);
    assert_same_bytes(&delivered_by_id(&a, "cbatch-0"), &m0, "alice 0");
    assert_same_bytes(&delivered_by_id(&a, "cbatch-1"), &m1, "alice 1");
    let b = pf.wait_delivered("bob", 1, WAIT);
    assert_same_bytes(&delivered_by_id(&b, "cbatch-0"), &m0, "bob 0");
    assert_stays(&pf, "alice", 2, Duration::from_millis(300));
    assert_stays(&pf, "bob", 1, Duration::ZERO);
}

// ===========================================================================
// CHUNKING / BDAT (RFC 3030), BINARYMIME
// ===========================================================================

/// A message with dot lines, a lone dot line, bare LF, bare CR and no final
/// line end; and what it must look like on arrival (CRLF, not stuffed).
fn tricky(id: &str) -> (Vec<u8>, Vec<u8>) {
    let head = mail(id, ALICE, "");
    let mut sent = head.clone();
    sent.extend_from_slice(
        b".starts with a dot\r\n..two dots\r\n.\r\nbare LF here\nbare CR here\rmixed\n\r\nlast line without end",
    );
    let mut want = head;
    want.extend_from_slice(
        b".starts with a dot\r\n..two dots\r\n.\r\nbare LF here\r\nbare CR here\r\nmixed\r\n\r\nlast line without end\r\n",
    );
    (sent, want)
}

#[test]
fn chunking_sends_bdat_last_and_chunking_off_sends_data_with_identical_delivery_on_postfix() {
    let pf = Postfix::start();
    let (mut s, t) = ready(pf.submit, 1);
    assert!(s.has_extn("CHUNKING") && s.has_extn("PIPELINING"));

    let (bdat_msg, bdat_want) = tricky("chunk-bdat");
    t.clear();
    let r = s
        .sendmail("sender@client.test", &[ALICE], &bdat_msg)
        .unwrap();
    assert_eq!(r.code, 250, "{r:?}");
    let sent = t.sent();
    let header = format!("BDAT {} LAST\\r\\n", bdat_want.len());
    assert!(sent.contains(&header), "no {header:?} in {sent:#?}");
    assert_eq!(t.sent_verb("BDAT").len(), 1);
    assert!(
        t.sent_verb("data").is_empty(),
        "no DATA with CHUNKING: {sent:#?}"
    );
    // Not dot-stuffed on the wire.
    assert!(
        t.text().contains("\\r\\n..two dots\\r\\n.\\r\\nbare LF"),
        "{}",
        t.text()
    );

    s.set_chunking(false);
    let (data_msg, data_want) = tricky("chunk-data");
    t.clear();
    let r = s
        .sendmail("sender@client.test", &[ALICE], &data_msg)
        .unwrap();
    assert_eq!(r.code, 250, "{r:?}");
    assert!(t.sent_verb("BDAT").is_empty(), "{}", t.text());
    assert_eq!(t.sent_verb("data\\r\\n").len(), 1);
    // Dot-stuffed on the wire, with the end marker.
    assert!(
        t.text().contains("\\r\\n...two dots\\r\\n..\\r\\nbare LF")
            && t.text().contains("last line without end\\r\\n.\\r\\n"),
        "{}",
        t.text()
    );
    s.quit().unwrap();

    let got = pf.wait_delivered("alice", 2, WAIT);
    let via_bdat = delivered_by_id(&got, "chunk-bdat");
    let via_data = delivered_by_id(&got, "chunk-data");
    assert_same_bytes(&via_bdat, &bdat_want, "via BDAT");
    assert_same_bytes(&via_data, &data_want, "via DATA");
    // Identical apart from the id in the headers.
    assert_eq!(
        show(&via_bdat).replace("chunk-bdat", "ID"),
        show(&via_data).replace("chunk-data", "ID")
    );
}

#[test]
fn large_message_goes_out_in_several_bdat_chunks_and_arrives_exactly_on_postfix() {
    let pf = Postfix::start();
    let (mut s, t) = ready(pf.submit, 1);
    let mut body = String::new();
    let mut i = 0;
    while body.len() < 700 * 1024 {
        if i % 7 == 0 {
            body.push_str(&format!(".dot line {i}\n")); // bare LF, leading dot
        } else {
            body.push_str(&format!("line {i} {}\r\n", "x".repeat(i % 70)));
        }
        i += 1;
    }
    let msg = mail("chunks", ALICE, &body);
    let want = mail(
        "chunks",
        ALICE,
        // Bare LFs become CRLF; dots stay single (BDAT is not stuffed).
        &body.replace("\r\n", "\n").replace('\n', "\r\n"),
    );
    let r = s.sendmail("sender@client.test", &[ALICE], &msg).unwrap();
    assert_eq!(r.code, 250, "{r:?}");
    let bdat = t.sent_verb("BDAT ");
    assert!(bdat.len() >= 3, "700 KB in 256 KiB chunks: {bdat:?}");
    let (last, rest) = bdat.split_last().unwrap();
    assert!(last.ends_with(" LAST\\r\\n"), "{bdat:?}");
    assert!(rest.iter().all(|b| !b.contains("LAST")), "{bdat:?}");
    let total: usize = bdat
        .iter()
        .map(|b| {
            b["BDAT ".len()..]
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap()
                .parse::<usize>()
                .unwrap()
        })
        .sum();
    assert_eq!(
        total,
        want.len(),
        "chunk sizes add up to the normalized message"
    );
    s.quit().unwrap();
    let got = pf.wait_delivered("alice", 1, WAIT);
    assert_same_bytes(
        &delivered_by_id(&got, "chunks"),
        &want,
        "large BDAT message",
    );
}

#[test]
fn binarymime_is_refused_locally_when_postfix_does_not_offer_it() {
    let pf = Postfix::start();
    let (mut s, t) = ready(pf.submit, 1);
    assert!(s.has_extn("CHUNKING"));
    assert!(
        !s.has_extn("BINARYMIME"),
        "this Postfix is not expected to offer BINARYMIME"
    );
    s.set_binarymime(true);
    t.clear();
    let e = s
        .sendmail(
            "sender@client.test",
            &[ALICE],
            &mail("binary", ALICE, "\x00\x01 binary\r\n"),
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotSupported, "{e}");
    assert!(e.message.contains("BINARYMIME"), "{e}");
    assert!(t.sent().is_empty(), "nothing may be sent: {:#?}", t.sent());
    assert!(s.is_connected());
    assert_eq!(
        s.last_error().map(|e| e.kind),
        Some(ErrorKind::NotSupported)
    );
    // Off again: the same session sends normally.
    s.set_binarymime(false);
    let msg = mail("after-binary", ALICE, "plain\r\n");
    assert_eq!(
        s.sendmail("sender@client.test", &[ALICE], &msg)
            .unwrap()
            .code,
        250
    );
    s.quit().unwrap();
    let got = pf.wait_delivered("alice", 1, WAIT);
    assert_same_bytes(&delivered_by_id(&got, "after-binary"), &msg, "after");
    assert_stays(&pf, "alice", 1, Duration::from_millis(300));
}

// ===========================================================================
// SIZE (RFC 1870)
// ===========================================================================

#[test]
fn size_parameter_announces_the_message_length_on_aiosmtpd() {
    let aio = Aiosmtpd::start(AioOpts::default());
    let (mut s, _t) = ready(aio.port, 0);
    assert!(s.has_extn("SIZE"));
    let msg = mail("size-1", "a@aio.test", "sized\r\n");
    assert_eq!(
        s.sendmail("sender@client.test", &["a@aio.test"], &msg)
            .unwrap()
            .code,
        250
    );
    // A stream announces its hint; without one, no SIZE.
    let body2 = mail("size-2", "a@aio.test", "streamed with a hint\r\n");
    let r = s
        .sendmail_stream(
            "sender@client.test",
            &["a@aio.test"],
            &mut &body2[..],
            Some(body2.len() as u64),
        )
        .unwrap();
    assert_eq!(r.code, 250);
    let body3 = mail("size-3", "a@aio.test", "streamed without a hint\r\n");
    let r = s
        .sendmail_stream("sender@client.test", &["a@aio.test"], &mut &body3[..], None)
        .unwrap();
    assert_eq!(r.code, 250);
    s.quit().unwrap();
    let got = aio.wait_messages(3, WAIT);
    assert_eq!(got[0].mail_options, [format!("SIZE={}", msg.len())]);
    // A stream's content is unknown up front, so it is declared 8-bit.
    assert_eq!(
        got[1].mail_options,
        [format!("SIZE={}", body2.len()), "BODY=8BITMIME".to_string()]
    );
    assert!(
        got[2].mail_options.iter().all(|o| !o.starts_with("SIZE")),
        "{:?}",
        got[2].mail_options
    );
    assert_same_bytes(&got[0].data, &msg, "1");
    assert_same_bytes(&got[1].data, &body2, "2");
    assert_same_bytes(&got[2].data, &body3, "3");
}

#[test]
fn message_over_the_advertised_size_is_refused_locally_before_mail_on_nodemailer() {
    let nm = Nodemailer::start(NodeOpts {
        size: Some(1000),
        ..NodeOpts::default()
    });
    let (mut s, t) = ready(nm.port, 1);
    assert_eq!(s.extensions().unwrap().size_limit(), Some(1000));
    let big = mail("too-big", "a@node.test", &"y".repeat(2000));
    t.clear();
    let e = s
        .sendmail("sender@client.test", &["a@node.test"], &big)
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::TooLarge, "{e}");
    assert!(e.message.contains("1000"), "{e}");
    assert!(t.sent().is_empty(), "nothing sent: {:#?}", t.sent());
    // Same for a stream whose announced size is too big.
    let e = s
        .sendmail_stream(
            "sender@client.test",
            &["a@node.test"],
            &mut &big[..],
            Some(big.len() as u64),
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::TooLarge, "{e}");
    assert!(t.sent().is_empty(), "nothing sent: {:#?}", t.sent());
    assert!(s.is_connected());

    // The session is still usable; SIZE= reaches the server.
    let small = mail("small", "a@node.test", "fits\r\n");
    assert_eq!(
        s.sendmail("sender@client.test", &["a@node.test"], &small)
            .unwrap()
            .code,
        250
    );
    // A stream without a hint cannot be checked locally: the server refuses
    // it after the body, and the session stays usable.
    let r = s
        .sendmail_stream("sender@client.test", &["a@node.test"], &mut &big[..], None)
        .unwrap();
    assert_eq!((r.code, s.failed_step()), (552, Step::Message), "{r:?}");
    let small2 = mail("small-2", "a@node.test", "fits too\r\n");
    assert_eq!(
        s.sendmail("sender@client.test", &["a@node.test"], &small2)
            .unwrap()
            .code,
        250
    );
    s.quit().unwrap();

    let got = nm.wait_messages(2, WAIT);
    thread::sleep(Duration::from_millis(300));
    let got_now = nm.messages();
    assert_eq!(got_now.len(), 2, "only the two small messages arrive");
    assert_eq!(got[0].mail_options, [format!("SIZE={}", small.len())]);
    let env_size = got[0]
        .meta
        .get("envelope")
        .and_then(|e| e.get("mailFrom"))
        .and_then(|m| m.get("args"))
        .and_then(|a| a.get("SIZE"))
        .and_then(|v| v.as_str().map(str::to_string));
    assert_eq!(env_size, Some(small.len().to_string()));
    assert_same_bytes(&got[0].data, &small, "small");
    assert_same_bytes(&got[1].data, &small2, "small-2");
}

// ===========================================================================
// 8BITMIME
// ===========================================================================

#[test]
fn body_8bitmime_is_declared_only_for_8bit_messages_on_aiosmtpd() {
    let aio = Aiosmtpd::start(AioOpts::default());
    let (mut s, _t) = ready(aio.port, 0);
    assert!(s.has_extn("8BITMIME"));
    let mut eight = mail("eight", "a@aio.test", "");
    eight.extend_from_slice("Grüße aus Köln, naïve café\r\n".as_bytes());
    eight.extend_from_slice(b"raw bytes \xff\xfe\x80\r\n");
    let seven = mail("seven", "a@aio.test", "plain ASCII\r\n");
    assert_eq!(
        s.sendmail("sender@client.test", &["a@aio.test"], &eight)
            .unwrap()
            .code,
        250
    );
    assert_eq!(
        s.sendmail("sender@client.test", &["a@aio.test"], &seven)
            .unwrap()
            .code,
        250
    );
    s.quit().unwrap();
    let got = aio.wait_messages(2, WAIT);
    assert!(
        got[0].mail_options.contains(&"BODY=8BITMIME".to_string()),
        "{:?}",
        got[0].mail_options
    );
    assert!(
        got[1].mail_options.iter().all(|o| !o.starts_with("BODY")),
        "7-bit: {:?}",
        got[1].mail_options
    );
    assert_same_bytes(&got[0].data, &eight, "8-bit bytes arrive untouched");
    assert_same_bytes(&got[1].data, &seven, "7-bit");
}

#[test]
fn eight_bit_message_is_refused_locally_when_smtp_sink_lacks_8bitmime() {
    let sink = start_sink(&["-8"]);
    let (mut s, t) = ready(sink.port(), 1);
    assert!(!s.has_extn("8BITMIME"), "smtp-sink -8 hides 8BITMIME");
    let mut eight = mail("eight", "a@sink.test", "");
    eight.extend_from_slice("naïve\r\n".as_bytes());
    t.clear();
    let e = s
        .sendmail("sender@client.test", &["a@sink.test"], &eight)
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotSupported, "{e}");
    assert!(e.message.contains("8BITMIME"), "{e}");
    assert!(t.sent().is_empty(), "nothing sent: {:#?}", t.sent());
    // 7-bit still goes, without BODY=.
    let seven = mail("seven", "a@sink.test", "ascii\r\n");
    assert_eq!(
        s.sendmail("sender@client.test", &["a@sink.test"], &seven)
            .unwrap()
            .code,
        250
    );
    // A streamed body is checked as it goes: the 8-bit byte comes late,
    // the connection is closed mid-message, nothing is delivered.
    let mut late = mail("late", "a@sink.test", &"ascii line\r\n".repeat(30_000));
    late.extend_from_slice("and then ü\r\n".as_bytes());
    let e = s
        .sendmail_stream("sender@client.test", &["a@sink.test"], &mut &late[..], None)
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotSupported, "{e}");
    assert!(!s.is_connected());
    let dumped = sink.wait_dumped(1);
    thread::sleep(Duration::from_millis(300));
    let dumped_now = sink.dumped();
    assert_eq!(
        dumped_now.len(),
        1,
        "only the 7-bit message arrives: {dumped_now:#?}"
    );
    assert_eq!(dumped[0].mail_args, "<sender@client.test>");
    assert_same_bytes(&lf_to_crlf(&dumped[0].data), &seven, "7-bit");
    let mails: Vec<String> = sink
        .commands()
        .into_iter()
        .filter(|c| c.to_ascii_uppercase().starts_with("MAIL"))
        .collect();
    assert_eq!(
        mails.len(),
        2,
        "one MAIL for the 7-bit message, one for the stream: {mails:?}"
    );
}

/// A stream refused midway (8-bit bytes, no 8BITMIME) closes the
/// connection; what was encoded of its body must not be sent on the next
/// connection of the same session.
#[test]
fn stream_refused_for_8bit_leaves_nothing_behind_for_the_next_connection_on_smtp_sink() {
    let sink = start_sink(&["-8"]);
    let (mut s, t) = ready(sink.port(), 1);
    let head = mail("late-8bit", "a@sink.test", "SENTINEL-LINE ascii part\r\n");
    let tail = "then 8-bit: ü\r\n".as_bytes();
    // Two reads: the ASCII part, then the 8-bit part.
    let mut reader = (&head[..]).chain(tail);
    let e = s
        .sendmail_stream("sender@client.test", &["a@sink.test"], &mut reader, None)
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotSupported, "{e}");
    assert!(!s.is_connected());

    t.clear();
    connect(&mut s, sink.port());
    let seven = mail("seven-after", "a@sink.test", "ascii\r\n");
    let r = s.sendmail("sender@client.test", &["a@sink.test"], &seven);
    let lines = t.lines();
    let r = r.unwrap_or_else(|e| {
        panic!(
            "{e}; transcript after reconnecting:\n{}\nsmtp-sink log:\n{}",
            lines[..lines.len().min(12)].join("\n"),
            sink.sink.log()
        )
    });
    assert_eq!(r.code, 250, "{r:?}");
    s.quit().unwrap();
    let dumped = sink.wait_dumped(1);
    assert_eq!(dumped.len(), 1);
    assert_same_bytes(&lf_to_crlf(&dumped[0].data), &seven, "7-bit message");
    let log = sink.sink.log();
    assert!(
        !log.contains("SENTINEL-LINE"),
        "the refused body reached the server as commands:\n{log}"
    );
}

// ===========================================================================
// SMTPUTF8 (RFC 6531)
// ===========================================================================

const UTF8_FROM: &str = "jörg@bücher.example";
const UTF8_TO: &str = "zoë@例え.test";

#[test]
fn utf8_address_sends_smtputf8_on_aiosmtpd() {
    let aio = Aiosmtpd::start(AioOpts::default());
    let (mut s, _t) = ready(aio.port, 0);
    assert!(s.has_extn("SMTPUTF8"));
    let mut msg = mail("utf8", UTF8_TO, "");
    msg.extend_from_slice("Grüße\r\n".as_bytes());
    assert_eq!(
        s.sendmail(UTF8_FROM, &[UTF8_TO, "plain@aio.test"], &msg)
            .unwrap()
            .code,
        250
    );
    let ascii = mail("ascii", "plain@aio.test", "x\r\n");
    assert_eq!(
        s.sendmail("sender@client.test", &["plain@aio.test"], &ascii)
            .unwrap()
            .code,
        250
    );
    s.quit().unwrap();
    let got = aio.wait_messages(2, WAIT);
    assert_eq!(got[0].mail_from, UTF8_FROM);
    assert_eq!(got[0].rcpt_tos, [UTF8_TO, "plain@aio.test"]);
    assert!(got[0].smtp_utf8);
    assert!(
        got[0].mail_options.contains(&"SMTPUTF8".to_string()),
        "{:?}",
        got[0].mail_options
    );
    assert_same_bytes(&got[0].data, &msg, "utf8 message");
    assert!(!got[1].smtp_utf8);
    assert!(
        !got[1].mail_options.contains(&"SMTPUTF8".to_string()),
        "{:?}",
        got[1].mail_options
    );
}

#[test]
fn utf8_address_sets_the_smtputf8_flag_on_nodemailer() {
    let nm = Nodemailer::start(NodeOpts::default());
    let (mut s, _t) = ready(nm.port, 0);
    let msg = mail("utf8-node", UTF8_TO, "x\r\n");
    assert_eq!(s.sendmail(UTF8_FROM, &[UTF8_TO], &msg).unwrap().code, 250);
    s.quit().unwrap();
    let got = nm.wait_messages(1, WAIT);
    assert!(got[0].smtp_utf8, "{:?}", got[0].meta);
    assert_eq!(got[0].mail_from, UTF8_FROM);
    assert_eq!(got[0].rcpt_tos, [UTF8_TO]);
    assert!(
        got[0].mail_options.contains(&"SMTPUTF8".to_string()),
        "{:?}",
        got[0].mail_options
    );
    assert_same_bytes(&got[0].data, &msg, "capture");
}

#[test]
fn postfix_delivers_mail_from_a_utf8_sender_with_its_return_path() {
    let pf = Postfix::start();
    let (mut s, t) = ready(pf.submit, 1);
    assert!(s.has_extn("SMTPUTF8"));
    let msg = mail("utf8-pf", ALICE, "from a UTF-8 sender\r\n");
    let r = s.sendmail(UTF8_FROM, &[ALICE], &msg).unwrap();
    assert_eq!(r.code, 250, "{r:?}");
    let mails = t.sent_verb("mail ");
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains(" SMTPUTF8"), "{mails:?}");
    s.quit().unwrap();
    let got = pf.wait_delivered("alice", 1, WAIT);
    let want_rp = format!("Return-Path: <{UTF8_FROM}>\n");
    assert!(got[0].starts_with(want_rp.as_bytes()), "{}", show(&got[0]));
    assert_same_bytes(&delivered_by_id(&got, "utf8-pf"), &msg, "utf8 sender");
}

#[test]
fn utf8_address_is_refused_locally_without_smtputf8_on_smtp_sink() {
    let sink = start_sink(&[]);
    let (mut s, t) = ready(sink.port(), 1);
    assert!(!s.has_extn("SMTPUTF8"));
    t.clear();
    for (from, to) in [(UTF8_FROM, "a@sink.test"), ("sender@client.test", UTF8_TO)] {
        let e = s
            .sendmail(from, &[to], &mail("u", "a@sink.test", "x\r\n"))
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotSupported, "{e}");
        assert!(e.message.contains("SMTPUTF8"), "{e}");
    }
    assert!(t.sent().is_empty(), "nothing sent: {:#?}", t.sent());
    let ok = mail("ascii", "a@sink.test", "x\r\n");
    assert_eq!(
        s.sendmail("sender@client.test", &["a@sink.test"], &ok)
            .unwrap()
            .code,
        250
    );
    s.quit().unwrap();
    let d = sink.wait_dumped(1);
    thread::sleep(Duration::from_millis(200));
    assert_eq!(sink.dumped().len(), 1);
    assert_eq!(d[0].mail_args, "<sender@client.test>");
    assert_same_bytes(&lf_to_crlf(&d[0].data), &ok, "ascii");
}

#[test]
fn idn_domains_go_as_a_labels_when_smtp_sink_lacks_smtputf8() {
    let sink = start_sink(&[]);
    let (mut s, _t) = ready(sink.port(), 1);
    assert!(!s.has_extn("SMTPUTF8"));
    let msg = mail("idn", "a@sink.test", "x\r\n");
    let r = s
        .sendmail("kim@bücher.example", &["a@例え.test"], &msg)
        .unwrap();
    assert_eq!(r.code, 250);
    s.quit().unwrap();
    let d = sink.wait_dumped(1);
    assert_eq!(d[0].mail_args, "<kim@xn--bcher-kva.example>");
    assert_eq!(d[0].rcpt_args, ["<a@xn--r8jz45g.test>"]);
}

// ===========================================================================
// DSN (RFC 3461)
// ===========================================================================

fn full_dsn() -> Dsn {
    Dsn {
        ret: Some("hdrs".into()),
        envid: Some("id+1=2".into()),
        notify: Some("success, failure".into()),
        orcpt: true,
    }
}

#[test]
fn dsn_parameters_reach_the_nodemailer_envelope() {
    let nm = Nodemailer::start(NodeOpts::default());
    let (mut s, t) = ready(nm.port, 1);
    assert!(s.has_extn("DSN"));
    s.set_dsn(Some(full_dsn())).unwrap();
    let msg = mail("dsn-node", "bob+tag@node.test", "dsn\r\n");
    let r = s
        .sendmail(
            "sender@client.test",
            &["bob+tag@node.test", "carol@node.test"],
            &msg,
        )
        .unwrap();
    assert_eq!(r.code, 250, "{r:?}");
    // The wire form: upper-cased values, ENVID and ORCPT in xtext.
    let mails = t.sent_verb("mail ");
    assert_eq!(
        mails,
        ["mail FROM:<sender@client.test> SIZE=".to_string()
            + &msg.len().to_string()
            + " RET=HDRS ENVID=id+2B1+3D2\\r\\n"]
    );
    assert_eq!(
        t.sent_verb("rcpt "),
        [
            "rcpt TO:<bob+tag@node.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob+2Btag@node.test\\r\\n",
            "rcpt TO:<carol@node.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;carol@node.test\\r\\n",
        ]
    );
    s.quit().unwrap();
    let got = nm.wait_messages(1, WAIT);
    let env = got[0].meta.get("envelope").unwrap();
    let dsn = env.get("dsn").unwrap();
    assert_eq!(dsn.get("ret").and_then(Json::as_str), Some("HDRS"));
    // Nodemailer decodes xtext: the value the caller gave comes back.
    assert_eq!(dsn.get("envid").and_then(Json::as_str), Some("id+1=2"));
    let rcpts = env.get("rcptTo").and_then(Json::as_array).unwrap();
    assert_eq!(rcpts.len(), 2);
    for (r, addr) in rcpts.iter().zip(["bob+tag@node.test", "carol@node.test"]) {
        assert_eq!(r.get("address").and_then(Json::as_str), Some(addr));
        let d = r
            .get("dsn")
            .unwrap_or_else(|| panic!("no dsn for {addr}: {r:?}"));
        let notify: Vec<&str> = d
            .get("notify")
            .and_then(Json::as_array)
            .unwrap()
            .iter()
            .filter_map(Json::as_str)
            .collect();
        assert_eq!(notify, ["SUCCESS", "FAILURE"]);
        assert_eq!(
            d.get("orcpt").and_then(Json::as_str),
            Some(format!("rfc822;{addr}").as_str())
        );
    }
    assert_eq!(
        got[0].rcpt_options[0],
        ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;bob+tag@node.test"]
    );
    assert_same_bytes(&got[0].data, &msg, "dsn message");
}

#[test]
fn dsn_parameters_arrive_verbatim_on_smtp_sink() {
    let sink = start_sink(&[]);
    let (mut s, _t) = ready(sink.port(), 0);
    assert!(s.has_extn("DSN"));
    s.set_dsn(Some(Dsn {
        ret: Some("FULL".into()),
        envid: Some("Q 1+x=y".into()),
        notify: Some("NEVER".into()),
        orcpt: true,
    }))
    .unwrap();
    let msg = mail("dsn-sink", "a=b@sink.test", "x\r\n");
    assert_eq!(
        s.sendmail("sender@client.test", &["a=b@sink.test"], &msg)
            .unwrap()
            .code,
        250
    );
    // Off again: no DSN parameters on the next message.
    s.set_dsn(None).unwrap();
    let msg2 = mail("dsn-off", "c@sink.test", "y\r\n");
    assert_eq!(
        s.sendmail("sender@client.test", &["c@sink.test"], &msg2)
            .unwrap()
            .code,
        250
    );
    s.quit().unwrap();
    let d = sink.wait_dumped(2);
    assert_eq!(
        d[0].mail_args,
        "<sender@client.test> RET=FULL ENVID=Q+201+2Bx+3Dy"
    );
    assert_eq!(
        d[0].rcpt_args,
        ["<a=b@sink.test> NOTIFY=NEVER ORCPT=rfc822;a+3Db@sink.test"]
    );
    assert_same_bytes(&lf_to_crlf(&d[0].data), &msg, "dsn message");
    assert_eq!(d[1].mail_args, "<sender@client.test>");
    assert_eq!(d[1].rcpt_args, ["<c@sink.test>"]);
}

#[test]
fn c_api_set_dsn_sends_the_parameters_to_smtp_sink() {
    use smtpc::ffi::esmtp::smtp_session_set_dsn;
    let sink = start_sink(&[]);
    let c = CSession::new();
    c.connect(sink.port());
    let ret = CString::new("HDRS").unwrap();
    let envid = CString::new("c+api").unwrap();
    let notify = CString::new("DELAY,FAILURE").unwrap();
    let bad = CString::new("SOMETIMES").unwrap();
    let from = CString::new("sender@client.test").unwrap();
    let (_keep, to) = cstrings(&["x@sink.test"]);
    let msg = mail("c-dsn", "x@sink.test", "from C\r\n");
    let mut buf = [0 as c_char; 256];
    unsafe {
        assert_eq!(
            smtp_session_set_dsn(c.0, ret.as_ptr(), envid.as_ptr(), notify.as_ptr(), 1),
            SMTPC_OK
        );
        assert_eq!(
            smtp_session_set_dsn(c.0, std::ptr::null(), std::ptr::null(), bad.as_ptr(), 0),
            SMTPC_E_INVALID,
            "a bad NOTIFY is refused"
        );
        let rc = c_sendmail(c.0, &from, &to, &msg, &mut buf);
        assert_eq!(rc, 250, "{}", text(&buf));
        // All NULL and 0: DSN off.
        assert_eq!(
            smtp_session_set_dsn(c.0, std::ptr::null(), std::ptr::null(), std::ptr::null(), 0),
            SMTPC_OK
        );
        let rc = c_sendmail(c.0, &from, &to, &msg, &mut buf);
        assert_eq!(rc, 250, "{}", text(&buf));
    }
    let d = sink.wait_dumped(2);
    assert_eq!(
        d[0].mail_args,
        "<sender@client.test> RET=HDRS ENVID=c+2Bapi"
    );
    assert_eq!(
        d[0].rcpt_args,
        ["<x@sink.test> NOTIFY=DELAY,FAILURE ORCPT=rfc822;x@sink.test"]
    );
    assert_eq!(d[1].mail_args, "<sender@client.test>");
    assert_eq!(d[1].rcpt_args, ["<x@sink.test>"]);
    assert_same_bytes(&lf_to_crlf(&d[0].data), &msg, "C dsn message");
}

#[test]
fn postfix_accepts_dsn_parameters_and_delivers() {
    let pf = Postfix::start();
    let (mut s, t) = ready(pf.submit, 1);
    assert!(s.has_extn("DSN"));
    s.set_dsn(Some(Dsn {
        ret: Some("HDRS".into()),
        envid: Some("pf-envid=1".into()),
        notify: Some("NEVER".into()),
        orcpt: true,
    }))
    .unwrap();
    let msg = mail("dsn-pf", ALICE, "dsn to postfix\r\n");
    let r = s
        .sendmail("sender@client.test", &[ALICE, BOB], &msg)
        .unwrap();
    assert_eq!(r.code, 250, "{r:?}");
    assert_eq!(codes(s.rcpt_replies()), [250, 250]);
    let o = s.last_outcome();
    assert_eq!(o.mail.as_ref().unwrap().code, 250);
    assert!(
        t.sent_verb("mail ")[0].contains(" RET=HDRS ENVID=pf-envid+3D1"),
        "{}",
        t.text()
    );
    assert!(
        t.sent_verb("rcpt ")[0].contains(" NOTIFY=NEVER ORCPT=rfc822;alice@example.test"),
        "{}",
        t.text()
    );
    s.quit().unwrap();
    for user in ["alice", "bob"] {
        let got = pf.wait_delivered(user, 1, WAIT);
        assert_same_bytes(&delivered_by_id(&got, "dsn-pf"), &msg, user);
    }
    // Postfix recorded the ENVID with the queue file.
    let log = pf.maillog();
    assert!(log.contains("status=sent"), "{log}");
}

#[test]
fn dsn_is_refused_locally_when_aiosmtpd_lacks_it() {
    let aio = Aiosmtpd::start(AioOpts::default());
    let (mut s, t) = ready(aio.port, 1);
    assert!(!s.has_extn("DSN"));
    s.set_dsn(Some(full_dsn())).unwrap();
    t.clear();
    let e = s
        .sendmail(
            "sender@client.test",
            &["a@aio.test"],
            &mail("dsn", "a@aio.test", "x\r\n"),
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotSupported, "{e}");
    assert!(e.message.contains("DSN"), "{e}");
    assert!(t.sent().is_empty(), "nothing sent: {:#?}", t.sent());
    s.set_dsn(None).unwrap();
    let ok = mail("no-dsn", "a@aio.test", "x\r\n");
    assert_eq!(
        s.sendmail("sender@client.test", &["a@aio.test"], &ok)
            .unwrap()
            .code,
        250
    );
    s.quit().unwrap();
    let got = aio.wait_messages(1, WAIT);
    thread::sleep(Duration::from_millis(200));
    assert_eq!(aio.messages().len(), 1);
    assert_same_bytes(&got[0].data, &ok, "capture");
    assert!(got[0].rcpt_options[0].is_empty());
}

// ===========================================================================
// ENHANCEDSTATUSCODES (RFC 2034)
// ===========================================================================

#[test]
fn postfix_unknown_recipient_has_enhanced_code_5_1_1() {
    let pf = Postfix::start();
    let (mut s, _t) = ready(pf.submit, 0);
    assert!(s.has_extn("ENHANCEDSTATUSCODES"));
    let msg = mail("enh", ALICE, "x\r\n");
    let r = s
        .sendmail("sender@client.test", &[UNKNOWN, ALICE], &msg)
        .unwrap();
    assert_eq!(r.code, 250);
    assert_eq!(enhanced(&r), "2.0.0");
    let rc = s.rcpt_replies();
    let e = rc[0].enhanced().expect("550 carries an enhanced code");
    assert_eq!((e.class, e.subject, e.detail), (5, 1, 1));
    assert_eq!(enhanced(&rc[1]), "2.1.5");
    s.quit().unwrap();
    let got = pf.wait_delivered("alice", 1, WAIT);
    assert_same_bytes(&delivered_by_id(&got, "enh"), &msg, "delivered");
}

#[test]
fn c_api_enhanced_codes_for_recipients_and_last_reply_on_postfix() {
    use smtpc::ffi::esmtp::{smtp_session_last_enhanced, smtp_session_rcpt_enhanced};
    use smtpc::ffi::session::smtp_session_rcpt_code;
    let pf = Postfix::start();
    let c = CSession::new();
    c.connect(pf.submit);
    let from = CString::new("sender@client.test").unwrap();
    let msg = mail("c-enh", ALICE, "x\r\n");
    let mut buf = [0 as c_char; 256];
    let mut enh = [0 as c_char; 16];
    unsafe {
        let (_k, to) = cstrings(&[ALICE, UNKNOWN]);
        let rc = c_sendmail(c.0, &from, &to, &msg, &mut buf);
        assert_eq!(rc, 250, "{}", text(&buf));
        assert_eq!(
            smtp_session_last_enhanced(c.0, enh.as_mut_ptr(), enh.len()),
            5
        );
        assert_eq!(text(&enh), "2.0.0");
        assert_eq!(
            smtp_session_rcpt_enhanced(c.0, 0, enh.as_mut_ptr(), enh.len()),
            5
        );
        assert_eq!(text(&enh), "2.1.5");
        assert_eq!(
            smtp_session_rcpt_enhanced(c.0, 1, enh.as_mut_ptr(), enh.len()),
            5
        );
        assert_eq!(text(&enh), "5.1.1");
        assert_eq!(
            smtp_session_rcpt_code(c.0, 1, buf.as_mut_ptr(), buf.len()),
            550
        );
        // Out of range: 0, and "" in the buffer (a size_t query).
        assert_eq!(
            smtp_session_rcpt_enhanced(c.0, 2, enh.as_mut_ptr(), enh.len()),
            0
        );
        assert_eq!(text(&enh), "");

        let (_k, to) = cstrings(&[UNKNOWN]);
        let rc = c_sendmail(c.0, &from, &to, &msg, &mut buf);
        assert_eq!(rc, 550, "{}", text(&buf));
        assert_eq!(
            smtp_session_last_enhanced(c.0, enh.as_mut_ptr(), enh.len()),
            5
        );
        assert_eq!(text(&enh), "5.1.1");
    }
    drop(c);
    let got = pf.wait_delivered("alice", 1, WAIT);
    assert_same_bytes(&delivered_by_id(&got, "c-enh"), &msg, "delivered");
}

// ===========================================================================
// AUTH with an explicit mechanism: XOAUTH2, CRAM-MD5
// ===========================================================================

const OAUTH_USER: &str = "oauth@client.test";
const TOKEN: &str = "ya29.secret-Token_0123456789";

fn xoauth2_initial(user: &str, token: &str) -> String {
    B64.encode(format!("user={user}\x01auth=Bearer {token}\x01\x01"))
}

/// Neither the token nor the base64 initial response is in the transcript,
/// and the AUTH line shows `<redacted>`.
fn assert_token_hidden(t: &Trace, token: &str) {
    let text = t.text();
    assert!(text.contains("AUTH XOAUTH2 <redacted>"), "{text}");
    assert!(!text.contains(token), "token leaked: {text}");
    assert!(
        !text.contains(&xoauth2_initial(OAUTH_USER, token)),
        "encoded token leaked: {text}"
    );
    assert!(!text.contains(&B64.encode(token)), "{text}");
}

/// Right token → 235 at debug levels 1 and 2; wrong → the 334 JSON
/// challenge, then 535; the token never shows in the transcript.
fn check_xoauth2(port: u16) {
    for level in [1, 2] {
        let (mut s, t) = ready(port, level);
        assert!(s
            .extensions()
            .unwrap()
            .auth_mechanisms()
            .contains(&"XOAUTH2".to_string()));
        let r = s.auth("XOAUTH2", OAUTH_USER, TOKEN).unwrap();
        assert_eq!(r.code, 235, "level {level}: {r:?}");
        assert_token_hidden(&t, TOKEN);
        s.quit().unwrap();

        let wrong = "ya29.WRONG-token-987";
        let (mut s, t) = ready(port, level);
        let r = s.auth("XOAUTH2", OAUTH_USER, wrong).unwrap();
        assert_eq!(r.code, 535, "level {level}: {r:?}");
        let lines = t.lines();
        let challenge = lines
            .iter()
            .find_map(|l| {
                let at = l.find("reply: '334 ")?;
                let rest = &l[at + "reply: '334 ".len()..];
                Some(
                    rest.trim_end_matches('\'')
                        .trim_end_matches("\\r\\n")
                        .to_string(),
                )
            })
            .unwrap_or_else(|| panic!("no 334 challenge: {lines:#?}"));
        let json = String::from_utf8(B64.decode(challenge.trim()).unwrap()).unwrap();
        let parsed = Json::parse(&json).unwrap();
        assert_eq!(
            parsed.get("status").and_then(Json::as_str),
            Some("401"),
            "{json}"
        );
        // The empty answer to the challenge is redacted as well.
        let after_334 = lines
            .iter()
            .skip_while(|l| !l.contains("reply: '334 "))
            .find(|l| l.contains("send: '"))
            .unwrap();
        assert!(
            after_334.ends_with("send: '<redacted>\\r\\n'"),
            "{after_334}"
        );
        assert_token_hidden(&t, wrong);
        // The session is still usable after the refusal.
        assert_eq!(s.noop().unwrap().code, 250);
        let r = s.auth("XOAUTH2", OAUTH_USER, TOKEN).unwrap();
        assert_eq!(r.code, 235);
        s.quit().unwrap();
    }
}

#[test]
fn xoauth2_right_token_gets_235_and_wrong_gets_535_after_json_challenge_on_aiosmtpd() {
    let aio = Aiosmtpd::start(AioOpts {
        xoauth2: vec![(OAUTH_USER.into(), TOKEN.into())],
        ..AioOpts::default()
    });
    check_xoauth2(aio.port);
}

#[test]
fn xoauth2_right_token_gets_235_and_wrong_gets_535_after_json_challenge_on_nodemailer() {
    let nm = Nodemailer::start(NodeOpts {
        xoauth2: vec![(OAUTH_USER.into(), TOKEN.into())],
        ..NodeOpts::default()
    });
    check_xoauth2(nm.port);
    // What arrived: the message is attributed to the authenticated user.
    let (mut s, _t) = ready(nm.port, 0);
    assert_eq!(s.auth("XOAUTH2", OAUTH_USER, TOKEN).unwrap().code, 235);
    let msg = mail("oauth", "a@node.test", "x\r\n");
    assert_eq!(
        s.sendmail(OAUTH_USER, &["a@node.test"], &msg).unwrap().code,
        250
    );
    s.quit().unwrap();
    let got = nm.wait_messages(1, WAIT);
    assert_eq!(
        got[0].meta.get("user").and_then(Json::as_str),
        Some(OAUTH_USER)
    );
    assert_same_bytes(&got[0].data, &msg, "capture");
}

fn check_cram_md5(port: u16, t_user: &str, pass: &str) {
    let (mut s, t) = ready(port, 1);
    let r = s.auth("CRAM-MD5", t_user, "wrong-password").unwrap();
    assert_eq!(r.code, 535, "{r:?}");
    let r = s.auth("cram-md5", t_user, pass).unwrap();
    assert_eq!(r.code, 235, "{r:?}");
    let text = t.text();
    assert!(text.contains("send: 'AUTH CRAM-MD5\\r\\n'"), "{text}");
    assert!(
        !text.contains(pass) && !text.contains("wrong-password"),
        "{text}"
    );
    // The challenge responses are redacted (they carry the user and digest).
    let redacted = t
        .lines()
        .iter()
        .filter(|l| l.starts_with("send: '<redacted>"))
        .count();
    assert_eq!(redacted, 2, "{text}");
    assert!(!text.contains(&B64.encode(t_user)), "{text}");
    s.quit().unwrap();
}

#[test]
fn cram_md5_as_explicit_mechanism_on_aiosmtpd() {
    let aio = Aiosmtpd::start(AioOpts {
        auth_users: vec![("carol".into(), "pa55-word".into())],
        ..AioOpts::default()
    });
    check_cram_md5(aio.port, "carol", "pa55-word");
}

#[test]
fn cram_md5_as_explicit_mechanism_on_nodemailer() {
    let nm = Nodemailer::start(NodeOpts {
        auth: vec![("carol".into(), "pa55-word".into())],
        ..NodeOpts::default()
    });
    check_cram_md5(nm.port, "carol", "pa55-word");
    let (mut s, _t) = ready(nm.port, 0);
    assert_eq!(s.auth("CRAM-MD5", "carol", "pa55-word").unwrap().code, 235);
    let msg = mail("cram", "a@node.test", "x\r\n");
    assert_eq!(
        s.sendmail("carol@client.test", &["a@node.test"], &msg)
            .unwrap()
            .code,
        250
    );
    s.quit().unwrap();
    let got = nm.wait_messages(1, WAIT);
    assert_eq!(
        got[0].meta.get("user").and_then(Json::as_str),
        Some("carol")
    );
}

#[test]
fn unknown_mechanism_gssapi_is_invalid_and_nothing_is_sent() {
    let aio = Aiosmtpd::start(AioOpts {
        auth_users: vec![("carol".into(), "pw".into())],
        ..AioOpts::default()
    });
    let (mut s, t) = traced(1);
    connect(&mut s, aio.port);
    t.clear();
    let e = s.auth("GSSAPI", "carol", "pw").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e}");
    assert!(e.message.contains("GSSAPI"), "{e}");
    assert!(t.sent().is_empty(), "not even EHLO: {:#?}", t.sent());
    // The session is untouched: a real mechanism works next.
    assert_eq!(s.auth("PLAIN", "carol", "pw").unwrap().code, 235);
    s.quit().unwrap();
}

#[test]
fn explicit_mechanism_the_server_does_not_offer_is_not_supported_on_smtp_sink() {
    // smtp-sink offers AUTH PLAIN LOGIN only.
    let sink = start_sink(&[]);
    let (mut s, t) = ready(sink.port(), 1);
    assert_eq!(
        s.extensions().unwrap().auth_mechanisms(),
        ["PLAIN", "LOGIN"]
    );
    t.clear();
    for mech in ["CRAM-MD5", "XOAUTH2"] {
        let e = s.auth(mech, "carol", "secret-pw").unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotSupported, "{mech}: {e}");
        assert!(e.message.contains(mech), "{e}");
    }
    assert!(t.sent().is_empty(), "no AUTH sent: {:#?}", t.sent());
    let msg = mail("after-auth", "a@sink.test", "x\r\n");
    assert_eq!(
        s.sendmail("sender@client.test", &["a@sink.test"], &msg)
            .unwrap()
            .code,
        250
    );
    s.quit().unwrap();
    assert_same_bytes(&lf_to_crlf(&sink.wait_dumped(1)[0].data), &msg, "dump");
    assert!(
        !sink.sink.log().to_ascii_uppercase().contains("AUTH"),
        "{}",
        sink.sink.log()
    );
}

// ===========================================================================
// Streamed bodies
// ===========================================================================

/// Generates a message of at least `total` bytes on the fly, line by line
/// (some lines start with '.', some end with a bare LF), `read` by `read`.
struct Generator {
    line: usize,
    pending: Vec<u8>,
    at: usize,
    produced: usize,
    total: usize,
    headers_done: bool,
    /// Fail with an I/O error once this many bytes were produced.
    fail_after: Option<usize>,
}

impl Generator {
    fn new(total: usize, fail_after: Option<usize>) -> Self {
        Generator {
            line: 0,
            pending: Vec::new(),
            at: 0,
            produced: 0,
            total,
            headers_done: false,
            fail_after,
        }
    }

    fn next_piece(&mut self) -> Option<Vec<u8>> {
        if !self.headers_done {
            self.headers_done = true;
            return Some(mail("stream", ALICE, ""));
        }
        if self.produced >= self.total {
            return None;
        }
        let i = self.line;
        self.line += 1;
        Some(match i % 10 {
            0 => format!(".line {i:08} starts with a dot\r\n").into_bytes(),
            5 => format!("line {i:08} ends with a bare LF\n").into_bytes(),
            _ => format!(
                "line {i:08} {}\r\n",
                "abcdefghijklmnopqrstuvwxyz"[..(i % 26)].repeat(3)
            )
            .into_bytes(),
        })
    }

    /// The whole message as it must arrive (CRLF everywhere).
    fn expected(total: usize) -> Vec<u8> {
        let mut g = Generator::new(total, None);
        let mut out = Vec::with_capacity(total + total / 20);
        while let Some(p) = g.next_piece() {
            g.produced += p.len();
            if p.ends_with(b"\r\n") {
                out.extend_from_slice(&p);
            } else {
                out.extend_from_slice(&p[..p.len() - 1]);
                out.extend_from_slice(b"\r\n");
            }
        }
        out
    }
}

impl Read for Generator {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some(limit) = self.fail_after {
            if self.produced >= limit {
                return Err(std::io::Error::other("generator failed on purpose"));
            }
        }
        if self.at == self.pending.len() {
            match self.next_piece() {
                Some(p) => {
                    self.pending = p;
                    self.at = 0;
                }
                None => return Ok(0),
            }
        }
        let n = (self.pending.len() - self.at).min(buf.len());
        buf[..n].copy_from_slice(&self.pending[self.at..self.at + n]);
        self.at += n;
        self.produced += n;
        Ok(n)
    }
}

#[test]
fn streamed_8mb_body_is_delivered_byte_exact_by_postfix() {
    const TOTAL: usize = 8 * 1024 * 1024;
    let pf = Postfix::start();
    let (mut s, _t) = ready(pf.submit, 0);
    let limit = s.extensions().unwrap().size_limit().unwrap();
    let mut gen = Generator::new(TOTAL, None);
    let started = Instant::now();
    let r = s
        .sendmail_stream("sender@client.test", &[ALICE], &mut gen, None)
        .unwrap();
    assert_eq!(r.code, 250, "{r:?}");
    assert!(gen.produced >= TOTAL);
    s.quit().unwrap();
    let want = Generator::expected(TOTAL);
    assert!(
        (want.len() as u64) < limit,
        "stays under Postfix's SIZE {limit}"
    );
    let got = pf.wait_delivered("alice", 1, Duration::from_secs(60));
    let arrived = lf_to_crlf(strip_trace_headers(&got[0]));
    assert_eq!(arrived.len(), want.len(), "length");
    for (at, len) in [(0, 400), (want.len() / 2, 300), (want.len() - 300, 300)] {
        assert_eq!(
            show(&arrived[at..at + len]),
            show(&want[at..at + len]),
            "slice at {at}"
        );
    }
    assert_same_bytes(&arrived, &want, "8 MB streamed message");
    assert!(started.elapsed() < Duration::from_secs(30));
}

/// A reader that returns one short line per `read` (as a line-by-line C
/// callback or an unbuffered pipe does) must still go out in large BDAT
/// chunks: one BDAT per `read` would leave one unread reply per line
/// outstanding until the end of the message (hundreds of thousands for a
/// few MB), beyond the engine's own reply window, so a server whose replies
/// fill the socket buffers would block both sides.
#[test]
fn streamed_body_with_short_reads_goes_out_in_few_large_bdat_chunks_on_postfix() {
    const TOTAL: usize = 2 * 1024 * 1024;
    let pf = Postfix::start();
    let (mut s, _t) = ready(pf.submit, 0);
    let headers = Arc::new(Mutex::new(Vec::<String>::new()));
    let h = headers.clone();
    s.set_debuglevel(1);
    s.set_trace_sink(Some(Box::new(move |l: &str| {
        if let Some(rest) = l.strip_prefix("send: 'BDAT ") {
            h.lock().unwrap().push(rest.to_string());
        }
    })));
    let mut gen = Generator::new(TOTAL, None);
    let r = s
        .sendmail_stream("sender@client.test", &[ALICE], &mut gen, None)
        .unwrap();
    assert_eq!(r.code, 250, "{r:?}");
    s.quit().unwrap();
    let want = Generator::expected(TOTAL);
    let got = pf.wait_delivered("alice", 1, WAIT);
    assert_same_bytes(
        &lf_to_crlf(strip_trace_headers(&got[0])),
        &want,
        "short-read stream",
    );
    let headers = headers.lock().unwrap();
    // 256 KiB chunks: 2 MiB is 8 or 9 BDAT commands, not one per line.
    assert!(
        headers.len() <= TOTAL / (256 * 1024) + 2,
        "{} BDAT commands for a {} byte body (first: {:?})",
        headers.len(),
        want.len(),
        &headers[..headers.len().min(5)]
    );
}

#[test]
fn failing_reader_midway_delivers_nothing_and_buffer_send_still_works_on_postfix() {
    let pf = Postfix::start();
    for (chunking, mode) in [(true, "bdat"), (false, "data")] {
        let (mut s, t) = ready(pf.submit, 1);
        s.set_chunking(chunking);
        let mut gen = Generator::new(4 * 1024 * 1024, Some(700 * 1024));
        let e = s
            .sendmail_stream("sender@client.test", &[ALICE], &mut gen, None)
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Callback, "{mode}: {e}");
        assert!(e.message.contains("generator failed on purpose"), "{e}");
        assert!(
            !s.is_connected(),
            "{mode}: the connection is closed mid-message"
        );
        // Part of the body did go out before the failure.
        if chunking {
            assert!(!t.sent_verb("BDAT ").is_empty(), "{mode}");
            assert!(
                t.sent_verb("BDAT").iter().all(|b| !b.contains("LAST")),
                "{mode}"
            );
        } else {
            assert_eq!(t.sent_verb("data\\r\\n").len(), 1);
        }
        // The same session reconnects and the buffer variant works: nothing
        // of the failed body may linger and go out on the new connection.
        t.clear();
        connect(&mut s, pf.submit);
        let id = format!("after-fail-{mode}");
        let msg = mail(&id, ALICE, "buffer after failing stream\r\n");
        let r = s
            .sendmail("sender@client.test", &[ALICE], &msg)
            .unwrap_or_else(|e| {
                let lines = t.lines();
                panic!(
                    "{mode}: {e}; transcript after reconnecting (first 12 lines):\n{}",
                    lines[..lines.len().min(12)].join("\n")
                )
            });
        let sent = t.sent();
        assert!(
            sent[0].starts_with("ehlo "),
            "{mode}: the first bytes on the new connection must be EHLO: {:?}",
            &sent[..sent.len().min(3)]
        );
        assert_eq!(r.code, 250, "{mode}: {r:?}");
        s.quit().unwrap();
    }
    let got = pf.wait_delivered("alice", 2, WAIT);
    assert_eq!(ids_in(&got), ["after-fail-bdat", "after-fail-data"]);
    assert_stays(&pf, "alice", 2, Duration::from_millis(1500));
    for id in ["after-fail-bdat", "after-fail-data"] {
        let msg = mail(id, ALICE, "buffer after failing stream\r\n");
        assert_same_bytes(&delivered_by_id(&got, id), &msg, id);
    }
    let log = pf.maillog();
    assert!(log.contains("lost connection after BDAT"), "{log}");
    assert!(log.contains("lost connection after DATA"), "{log}");
}

// ===========================================================================
// LMTP (RFC 2033)
// ===========================================================================

#[test]
fn lmtp_reports_one_delivery_reply_per_accepted_recipient_on_aiosmtpd() {
    let aio = Aiosmtpd::start(AioOpts {
        lmtp: true,
        lmtp_fail_rcpts: vec!["full@lmtp.test".into()],
        ..AioOpts::default()
    });
    let (mut s, t) = traced(1);
    s.set_lmtp(true);
    connect(&mut s, aio.port);
    let msg = mail("lmtp", "a@lmtp.test", "for three\r\n.dot\r\n");
    let to = ["a@lmtp.test", "full@lmtp.test", "c@lmtp.test"];
    let r = s.sendmail("sender@client.test", &to, &msg).unwrap();
    assert_eq!(r.code, 250, "{r:?}");
    assert_eq!(s.failed_step(), Step::None, "some recipients got it");
    assert!(
        t.sent_verb("lhlo ").len() == 1 && t.sent_verb("ehlo").is_empty(),
        "{}",
        t.text()
    );
    assert_eq!(codes(s.rcpt_replies()), [250, 250, 250]);
    let l = s.lmtp_replies();
    assert_eq!(l.len(), 3);
    let got: Vec<(u16, String)> = l
        .iter()
        .map(|r| {
            let r = r.as_ref().expect("every accepted recipient has a reply");
            (r.code, enhanced(r))
        })
        .collect();
    assert_eq!(
        got,
        [
            (250, "2.0.0".into()),
            (550, "5.2.1".into()),
            (250, "2.0.0".into())
        ]
    );
    assert!(l[1].as_ref().unwrap().text.contains("full@lmtp.test"));
    assert!(l[2].as_ref().unwrap().text.contains("c@lmtp.test"));
    // All 3 delivery replies were read: the session is in step.
    assert_eq!(s.noop().unwrap().code, 250);
    s.quit().unwrap();
    let cap = aio.wait_messages(1, WAIT);
    assert_eq!(cap[0].rcpt_tos, to);
    assert_same_bytes(&cap[0].data, &msg, "lmtp capture");
}

#[test]
fn lmtp_all_recipients_failing_after_data_is_a_message_refusal() {
    let aio = Aiosmtpd::start(AioOpts {
        lmtp: true,
        lmtp_fail_rcpts: vec!["x@lmtp.test".into(), "y@lmtp.test".into()],
        ..AioOpts::default()
    });
    let (mut s, _t) = traced(0);
    s.set_lmtp(true);
    connect(&mut s, aio.port);
    let r = s
        .sendmail(
            "sender@client.test",
            &["x@lmtp.test", "y@lmtp.test"],
            &mail("lf", "x@lmtp.test", "x\r\n"),
        )
        .unwrap();
    assert_eq!((r.code, s.failed_step()), (550, Step::Message), "{r:?}");
    let l: Vec<u16> = s
        .lmtp_replies()
        .iter()
        .map(|r| r.as_ref().unwrap().code)
        .collect();
    assert_eq!(l, [550, 550]);
    assert_eq!(s.noop().unwrap().code, 250);
}

#[test]
fn lmtp_refused_recipient_has_no_delivery_reply_on_aiosmtpd() {
    let aio = Aiosmtpd::start(AioOpts {
        lmtp: true,
        reject_rcpts: vec!["nope@lmtp.test".into()],
        ..AioOpts::default()
    });
    let (mut s, _t) = traced(0);
    s.set_lmtp(true);
    connect(&mut s, aio.port);
    let msg = mail("lmtp-refused", "a@lmtp.test", "x\r\n");
    let r = s
        .sendmail(
            "sender@client.test",
            &["a@lmtp.test", "nope@lmtp.test", "b@lmtp.test"],
            &msg,
        )
        .unwrap();
    assert_eq!(r.code, 250, "{r:?}");
    assert_eq!(codes(s.rcpt_replies()), [250, 550, 250]);
    assert_eq!(enhanced(&s.rcpt_replies()[1]), "5.1.1");
    let l = s.lmtp_replies();
    assert_eq!(l.len(), 3);
    assert_eq!(l[0].as_ref().map(|r| r.code), Some(250));
    assert!(
        l[1].is_none(),
        "a refused recipient gets no delivery reply: {l:?}"
    );
    assert_eq!(l[2].as_ref().map(|r| r.code), Some(250));
    assert_eq!(s.noop().unwrap().code, 250);
    s.quit().unwrap();
    let cap = aio.wait_messages(1, WAIT);
    assert_eq!(cap[0].rcpt_tos, ["a@lmtp.test", "b@lmtp.test"]);
    assert_same_bytes(&cap[0].data, &msg, "capture");
}

#[test]
fn c_api_lhlo_and_rcpt_data_code_on_aiosmtpd() {
    use smtpc::ffi::esmtp::{smtp_session_lhlo, smtp_session_rcpt_data_code};
    let aio = Aiosmtpd::start(AioOpts {
        lmtp: true,
        lmtp_fail_rcpts: vec!["full@lmtp.test".into()],
        reject_rcpts: vec!["nope@lmtp.test".into()],
        ..AioOpts::default()
    });
    let c = CSession::new();
    c.connect(aio.port);
    let name = CString::new("client.test").unwrap();
    let from = CString::new("sender@client.test").unwrap();
    let to_s = ["a@lmtp.test", "full@lmtp.test", "nope@lmtp.test"];
    let (_k, to) = cstrings(&to_s);
    let msg = mail("c-lmtp", "a@lmtp.test", "x\r\n");
    let mut buf = [0 as c_char; 256];
    unsafe {
        assert_eq!(
            smtp_session_lhlo(c.0, name.as_ptr(), buf.as_mut_ptr(), buf.len()),
            250,
            "{}",
            text(&buf)
        );
        let rc = c_sendmail(c.0, &from, &to, &msg, &mut buf);
        assert_eq!(rc, 250, "{}", text(&buf));
        assert_eq!(
            smtp_session_rcpt_data_code(c.0, 0, buf.as_mut_ptr(), buf.len()),
            250
        );
        assert!(text(&buf).contains("a@lmtp.test"), "{}", text(&buf));
        assert_eq!(
            smtp_session_rcpt_data_code(c.0, 1, buf.as_mut_ptr(), buf.len()),
            550
        );
        assert!(text(&buf).starts_with("5.2.1"), "{}", text(&buf));
        assert_eq!(
            smtp_session_rcpt_data_code(c.0, 2, buf.as_mut_ptr(), buf.len()),
            SMTPC_E_INVALID,
            "refused at RCPT"
        );
        assert_eq!(
            smtp_session_rcpt_data_code(c.0, 3, buf.as_mut_ptr(), buf.len()),
            SMTPC_E_INVALID,
            "out of range"
        );
    }
    let cap = aio.wait_messages(1, WAIT);
    assert_eq!(cap[0].rcpt_tos, ["a@lmtp.test", "full@lmtp.test"]);
    assert_same_bytes(&cap[0].data, &msg, "capture");
}

// ---- smtplib's low-level verbs and the caller's own parameters ----------------

use smtpc::client::data::reference::normalized;
use smtpc::ffi::verbs::*;

fn cstr(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// A C program using only `mail`, `rcpt` and `data` (through the C ABI):
/// the message arrives byte-exact; a refused recipient is its own reply;
/// `failed_step` and the outcome read as for `sendmail`.
#[test]
fn c_api_mail_rcpt_data_deliver_byte_exact_to_postfix() {
    let pf = Postfix::start();
    let c = CSession::new();
    c.connect(pf.submit);
    let body = "line one\nline two\r\n.a dot line\r\nlast line without newline";
    let msg = mail("verbs-1", ALICE, body);
    let mut buf = [0 as c_char; 256];
    unsafe {
        let from = cstr("sender@client.test");
        assert_eq!(
            smtp_session_mail(
                c.0,
                from.as_ptr(),
                std::ptr::null(),
                0,
                buf.as_mut_ptr(),
                buf.len()
            ),
            250,
            "{}",
            text(&buf)
        );
        for (to, want) in [(ALICE, 250), (UNKNOWN, 550)] {
            let to = cstr(to);
            let rc = smtp_session_rcpt(
                c.0,
                to.as_ptr(),
                std::ptr::null(),
                0,
                buf.as_mut_ptr(),
                buf.len(),
            );
            assert_eq!(rc, want, "{}", text(&buf));
        }
        let rc = smtp_session_data(
            c.0,
            msg.as_ptr().cast(),
            msg.len(),
            buf.as_mut_ptr(),
            buf.len(),
        );
        assert_eq!(rc, 250, "{}", text(&buf));
        assert_eq!(
            smtpc::ffi::session::smtp_session_failed_step(c.0),
            SMTPC_STEP_NONE
        );
        assert_eq!(
            smtpc::ffi::session::smtp_session_outcome(c.0),
            SMTPC_OUTCOME_ACCEPTED
        );
    }
    let got = delivered_by_id(&pf.wait_delivered("alice", 1, WAIT), "verbs-1");
    assert_same_bytes(&got, &normalized(&msg), "mail/rcpt/data");
}

/// `putcmd` queues, `getreply` reads: MAIL and RCPT pipelined by the
/// caller cost one wait, and `docmd` takes a whole command line.
#[test]
fn c_api_putcmd_getreply_pipeline_mail_and_rcpt_and_docmd_takes_a_whole_line() {
    let pf = Postfix::start();
    let c = CSession::new();
    c.connect(pf.submit);
    let mut buf = [0 as c_char; 256];
    unsafe {
        let ehlo = cstr("client.test");
        assert_eq!(
            smtpc::ffi::session::smtp_session_ehlo(c.0, ehlo.as_ptr(), buf.as_mut_ptr(), buf.len()),
            250
        );
        let before = smtpc::ffi::esmtp::smtp_session_waits(c.0);
        let mail_line = cstr("MAIL FROM:<sender@client.test>");
        assert_eq!(
            smtp_session_putcmd(c.0, mail_line.as_ptr(), std::ptr::null()),
            SMTPC_OK
        );
        let (rcpt, args) = (cstr("RCPT"), cstr(&format!("TO:<{ALICE}>")));
        assert_eq!(
            smtp_session_putcmd(c.0, rcpt.as_ptr(), args.as_ptr()),
            SMTPC_OK
        );
        assert_eq!(smtp_session_getreply(c.0, buf.as_mut_ptr(), buf.len()), 250);
        assert_eq!(smtp_session_getreply(c.0, buf.as_mut_ptr(), buf.len()), 250);
        assert_eq!(
            smtpc::ffi::esmtp::smtp_session_waits(c.0) - before,
            1,
            "both replies came back from one write"
        );
        // A line with CR/LF is refused before anything is queued.
        let smuggle = cstr("RSET\r\nQUIT");
        assert_eq!(
            smtp_session_putcmd(c.0, smuggle.as_ptr(), std::ptr::null()),
            SMTPC_E_INVALID
        );
        let rset = cstr("RSET");
        assert_eq!(
            smtpc::ffi::session::smtp_session_docmd(
                c.0,
                rset.as_ptr(),
                std::ptr::null(),
                buf.as_mut_ptr(),
                buf.len()
            ),
            250
        );
        let whole = cstr("MAIL FROM:<sender@client.test>");
        assert_eq!(
            smtpc::ffi::session::smtp_session_docmd(
                c.0,
                whole.as_ptr(),
                std::ptr::null(),
                buf.as_mut_ptr(),
                buf.len()
            ),
            250,
            "{}",
            text(&buf)
        );
    }
}

/// A refused DATA returns its code, sends no body, and says DATA was the
/// step refused. (A real server refusing DATA after an accepted RCPT on
/// demand: Postfix with no accepted recipient answers 554 to DATA.)
#[test]
fn data_refused_sends_no_body_and_failed_step_says_data() {
    let pf = Postfix::start();
    let mut s = Session::new();
    s.set_timeout(Duration::from_secs(15));
    s.connect("127.0.0.1", pf.submit).unwrap();
    assert_eq!(s.mail("sender@client.test", &[]).unwrap().code, 250);
    assert_eq!(s.rcpt(UNKNOWN, &[]).unwrap().code, 550);
    let r = s.data(b"Subject: never\r\n\r\nnot sent\r\n").unwrap();
    assert!(r.code >= 500, "{r:?}");
    assert_eq!(s.failed_step(), Step::Data);
    assert_eq!(
        s.last_outcome().delivery(),
        smtpc::client::Delivery::Refused
    );
    // The session is in step: the body never went out as commands.
    assert_eq!(s.noop().unwrap().code, 250);
}

/// REQUIRETLS and MT-PRIORITY reach the server as caller parameters, after
/// the library's own, with no library change; one with the library's
/// keyword replaces it.
#[test]
fn caller_mail_and_rcpt_options_reach_nodemailer() {
    let nm = Nodemailer::start(NodeOpts {
        tls: true,
        ..NodeOpts::default()
    });
    let c = CSession::new();
    c.connect(nm.port);
    // REQUIRETLS is a real extension Nodemailer enforces: over STARTTLS.
    let ca = cstr(&certs().ca.to_string_lossy());
    let mut buf = [0 as c_char; 256];
    unsafe {
        assert_eq!(
            smtpc::ffi::session::smtp_session_set_ca_file(c.0, ca.as_ptr()),
            SMTPC_OK
        );
        assert_eq!(
            smtpc::ffi::session::smtp_session_starttls(c.0, buf.as_mut_ptr(), buf.len()),
            220,
            "{}",
            text(&buf)
        );
    }
    let mail_opts = [cstr("REQUIRETLS"), cstr("MT-PRIORITY=3")];
    let mail_ptrs: Vec<*const c_char> = mail_opts.iter().map(|o| o.as_ptr()).collect();
    let rcpt_opts = [cstr("NOTIFY=NEVER")];
    let rcpt_ptrs: Vec<*const c_char> = rcpt_opts.iter().map(|o| o.as_ptr()).collect();
    let from = cstr("sender@client.test");
    let (_k, to) = cstrings(&["rcpt@nodemailer.test"]);
    let msg = mail("opts-1", "rcpt@nodemailer.test", "x\r\n");
    unsafe {
        assert_eq!(
            smtp_session_set_mail_options(c.0, mail_ptrs.as_ptr(), 2),
            SMTPC_OK
        );
        assert_eq!(
            smtp_session_set_rcpt_options(c.0, rcpt_ptrs.as_ptr(), 1),
            SMTPC_OK
        );
        let rc = c_sendmail(c.0, &from, &to, &msg, &mut buf);
        assert_eq!(rc, 250, "{}", text(&buf));
    }
    let got = nm.wait_messages(1, WAIT);
    let opts: Vec<String> = got[0]
        .mail_options
        .iter()
        .map(|o| o.to_ascii_uppercase())
        .collect();
    let at = |k: &str| opts.iter().position(|o| o.starts_with(k));
    assert!(
        at("REQUIRETLS").is_some() && at("MT-PRIORITY=3").is_some(),
        "{opts:?}"
    );
    assert!(
        at("SIZE=").unwrap() < at("REQUIRETLS").unwrap(),
        "library's first: {opts:?}"
    );
    assert_eq!(
        got[0].rcpt_options[0]
            .iter()
            .map(|o| o.to_ascii_uppercase())
            .collect::<Vec<_>>(),
        ["NOTIFY=NEVER"]
    );
}

/// `SMTPUTF8` among the caller's parameters demands the extension, as
/// smtplib does; nothing of the message is sent.
#[test]
fn smtputf8_caller_option_without_the_extension_is_not_supported() {
    let sink = start_sink(&[]);
    let mut s = Session::new();
    s.set_timeout(Duration::from_secs(15));
    s.connect("127.0.0.1", sink.port()).unwrap();
    s.set_mail_options(&["SMTPUTF8"]).unwrap();
    let e = s
        .sendmail("a@client.test", &["b@sink.test"], b"x\r\n")
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotSupported, "{e}");
    assert_eq!(
        s.last_outcome().delivery(),
        smtpc::client::Delivery::NotSent
    );
    let e = s.mail("a@client.test", &["SMTPUTF8"]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotSupported, "{e}");
    assert!(
        !sink
            .commands()
            .iter()
            .any(|c| c.to_ascii_uppercase().starts_with("MAIL")),
        "{:?}",
        sink.commands()
    );
}

/// smtplib's `esmtp_features`: every EHLO keyword, in order.
#[test]
fn c_api_lists_the_extensions_of_postfix() {
    let pf = Postfix::start();
    let c = CSession::new();
    c.connect(pf.submit);
    let mut buf = [0 as c_char; 64];
    unsafe {
        assert_eq!(smtp_session_extn_count(c.0), 0, "before EHLO");
        smtpc::ffi::session::smtp_session_ehlo(c.0, std::ptr::null(), buf.as_mut_ptr(), buf.len());
        let n = smtp_session_extn_count(c.0);
        let names: Vec<String> = (0..n)
            .map(|i| {
                let len = smtp_session_extn_name(c.0, i, buf.as_mut_ptr(), buf.len());
                assert_eq!(len, text(&buf).len());
                text(&buf)
            })
            .collect();
        for k in ["PIPELINING", "SIZE", "8BITMIME", "CHUNKING", "DSN"] {
            assert!(names.iter().any(|n| n == k), "{k} in {names:?}");
        }
        assert_eq!(
            smtp_session_extn_name(c.0, n, buf.as_mut_ptr(), buf.len()),
            0
        );
        assert_eq!(text(&buf), "");
        // snprintf-style: the full length even when the buffer is short.
        let i = names.iter().position(|n| n == "PIPELINING").unwrap();
        assert_eq!(smtp_session_extn_name(c.0, i, buf.as_mut_ptr(), 4), 10);
        assert_eq!(text(&buf), "PIP");
    }
}

/// Python 3.11's `smtpd` scans for <CRLF>.<CRLF>: an empty message must go
/// as `\r\n.\r\n` (smtplib's bytes), or the server waits forever.
#[test]
fn an_empty_message_reaches_pythons_smtpd() {
    let port = free_port();
    let mut child = std::process::Command::new(repo_root().join(".venv/bin/python"))
        .args(["-W", "ignore", "-m", "smtpd", "-n", "-c", "DebuggingServer"])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the venv's python runs smtpd");
    let deadline = Instant::now() + WAIT;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "smtpd did not start");
        thread::sleep(Duration::from_millis(50));
    }
    let mut s = Session::new();
    s.set_timeout(Duration::from_secs(3));
    s.connect("127.0.0.1", port).unwrap();
    let r = s.sendmail("a@client.test", &["b@smtpd.test"], b"");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(r.unwrap().code, 250);
}
