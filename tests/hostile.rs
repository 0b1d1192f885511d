//! Hostile and broken servers: faults a real server will not produce on
//! demand, played by a scripted server inside the test.
//!
//! Each test starts a one-connection server on 127.0.0.1:0 in a thread and
//! gives it a script (send bytes, expect a command, sleep, drip, hold, close),
//! then drives the library against it and asserts the exact `ErrorKind` (or
//! `SMTPC_E_*` code through the C ABI), the reply code and text, the
//! connection state afterwards, and — where it matters — the bytes the server
//! received. Tests are independent and run in parallel; each finishes in a
//! few seconds at most.

use std::ffi::{c_char, CStr, CString};
use std::io::{ErrorKind as IoKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use smtpc::client::data::reference::{check_wire, normalized};
use smtpc::{ErrorKind, Session, Step};

// ---------------------------------------------------------------------------
// The scripted server
// ---------------------------------------------------------------------------

/// One step of a server script.
#[derive(Debug, Clone)]
enum Act {
    /// Write these bytes in one write (errors are ignored: the client may
    /// already have hung up on a hostile server).
    Send(Vec<u8>),
    /// Read one line; it must start with this prefix (ASCII, case-insensitive).
    Expect(&'static str),
    /// Read a DATA body up to and including the `.\r\n` end line; recorded.
    Data,
    /// Read and record this many raw bytes (or up to EOF).
    ReadBytes(usize),
    Sleep(u64),
    /// Write the bytes one at a time, this many ms apart.
    Drip(Vec<u8>, u64),
    /// Write `line` over and over until `total` bytes or a write error.
    Flood(Vec<u8>, usize),
    /// Record whatever arrives until EOF or this many ms: a server that
    /// never answers, and ends as soon as the client hangs up.
    Hold(u64),
    /// Close the connection (the end of a script closes too).
    Close,
}

fn send(s: &str) -> Act {
    Act::Send(s.as_bytes().to_vec())
}
fn sendb(b: &[u8]) -> Act {
    Act::Send(b.to_vec())
}
fn expect(prefix: &'static str) -> Act {
    Act::Expect(prefix)
}

/// What the server saw.
#[derive(Debug, Default)]
struct Outcome {
    /// Every byte received, in order.
    got: Vec<u8>,
    /// The raw bytes of each DATA body (end line included).
    data: Vec<Vec<u8>>,
    /// The first way the client departed from the script.
    failure: Option<String>,
}

impl Outcome {
    fn got_text(&self) -> String {
        String::from_utf8_lossy(&self.got).into_owned()
    }

    /// The command verbs received, upper-cased, in order (DATA bodies
    /// excluded).
    fn verbs(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut rest: &[u8] = &self.got;
        let mut bodies = self.data.iter();
        while !rest.is_empty() {
            let end = rest
                .iter()
                .position(|&b| b == b'\n')
                .map_or(rest.len(), |i| i + 1);
            let line = &rest[..end];
            rest = &rest[end..];
            let verb = String::from_utf8_lossy(line)
                .split([' ', '\r', '\n'])
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            if verb == "DATA" {
                // Skip the body recorded for this DATA, if any arrived.
                if let Some(body) = bodies.next() {
                    if rest.starts_with(body) {
                        rest = &rest[body.len()..];
                    }
                }
            }
            out.push(verb);
        }
        out
    }
}

struct Conn {
    stream: TcpStream,
    /// Received, not yet consumed: `pending[pos..]`.
    pending: Vec<u8>,
    pos: usize,
    out: Outcome,
}

impl Conn {
    /// Reads more bytes into `pending`; false at EOF, error or `deadline`.
    fn fill(&mut self, deadline: Instant) -> bool {
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        let _ = self
            .stream
            .set_read_timeout(Some((deadline - now).max(Duration::from_millis(1))));
        if self.pos > 0 {
            self.pending.drain(..self.pos);
            self.pos = 0;
        }
        let mut buf = [0u8; 64 * 1024];
        match self.stream.read(&mut buf) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.out.got.extend_from_slice(&buf[..n]);
                self.pending.extend_from_slice(&buf[..n]);
                true
            }
        }
    }

    fn available(&self) -> usize {
        self.pending.len() - self.pos
    }

    fn consume(&mut self, n: usize) {
        self.pos += n.min(self.available());
    }

    fn line(&mut self, deadline: Instant) -> Option<Vec<u8>> {
        let mut scanned = 0;
        loop {
            let rest = &self.pending[self.pos..];
            if let Some(i) = rest[scanned..].iter().position(|&b| b == b'\n') {
                let line = rest[..scanned + i + 1].to_vec();
                self.pos += line.len();
                return Some(line);
            }
            scanned = rest.len();
            if !self.fill(deadline) {
                return None;
            }
        }
    }

    fn write(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).is_ok()
    }
}

/// How long a server waits for a command the client is expected to send.
const SERVER_PATIENCE: Duration = Duration::from_secs(5);

fn run_script(listener: TcpListener, script: Vec<Act>) -> Outcome {
    listener.set_nonblocking(true).unwrap();
    let give_up = Instant::now() + SERVER_PATIENCE;
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == IoKind::WouldBlock && Instant::now() < give_up => {
                thread::sleep(Duration::from_millis(5))
            }
            Err(e) => {
                return Outcome {
                    failure: Some(format!("no client connected: {e}")),
                    ..Outcome::default()
                }
            }
        }
    };
    stream.set_nonblocking(false).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut c = Conn {
        stream,
        pending: Vec::new(),
        pos: 0,
        out: Outcome::default(),
    };
    for act in script {
        match act {
            Act::Send(bytes) => {
                c.write(&bytes);
            }
            Act::Expect(prefix) => {
                let deadline = Instant::now() + SERVER_PATIENCE;
                match c.line(deadline) {
                    Some(l)
                        if l.len() >= prefix.len()
                            && l[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes()) => {}
                    Some(l) => {
                        c.out.failure = Some(format!(
                            "expected {prefix:?}, got {:?}",
                            String::from_utf8_lossy(&l)
                        ));
                        break;
                    }
                    None => {
                        c.out.failure = Some(format!("expected {prefix:?}, got EOF/timeout"));
                        break;
                    }
                }
            }
            Act::Data => {
                let deadline = Instant::now() + SERVER_PATIENCE;
                let mut body = Vec::new();
                loop {
                    match c.line(deadline) {
                        Some(l) => {
                            let end = l == b".\r\n";
                            body.extend_from_slice(&l);
                            if end {
                                break;
                            }
                        }
                        None => {
                            c.out.failure = Some(format!(
                                "DATA body ended without the end line after {} bytes",
                                body.len()
                            ));
                            break;
                        }
                    }
                }
                c.out.data.push(body);
                if c.out.failure.is_some() {
                    break;
                }
            }
            Act::ReadBytes(n) => {
                let deadline = Instant::now() + SERVER_PATIENCE;
                let mut left = n;
                loop {
                    let take = left.min(c.available());
                    c.consume(take);
                    left -= take;
                    if left == 0 || !c.fill(deadline) {
                        break;
                    }
                }
            }
            Act::Sleep(ms) => thread::sleep(Duration::from_millis(ms)),
            Act::Drip(bytes, ms) => {
                for b in bytes {
                    if !c.write(&[b]) {
                        break;
                    }
                    thread::sleep(Duration::from_millis(ms));
                }
            }
            Act::Flood(line, total) => {
                let mut sent = 0;
                while sent < total && c.write(&line) {
                    sent += line.len();
                }
            }
            Act::Hold(ms) => {
                let deadline = Instant::now() + Duration::from_millis(ms);
                while c.fill(deadline) {
                    let all = c.available();
                    c.consume(all);
                }
            }
            Act::Close => break,
        }
    }
    let _ = c.stream.shutdown(Shutdown::Both);
    c.out
}

struct Server {
    port: u16,
    handle: Option<JoinHandle<Outcome>>,
}

impl Server {
    fn start(script: Vec<Act>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = thread::spawn(move || run_script(listener, script));
        Server {
            port,
            handle: Some(handle),
        }
    }

    /// Waits for the script to end and returns what the server saw.
    fn outcome(mut self) -> Outcome {
        self.handle.take().unwrap().join().expect("server thread")
    }

    /// As `outcome`, and the client must have followed the script.
    fn finish(self) -> Outcome {
        let out = self.outcome();
        if let Some(f) = &out.failure {
            panic!("scripted server: {f}; received {:?}", out.got_text());
        }
        out
    }
}

// ---------------------------------------------------------------------------
// Client helpers
// ---------------------------------------------------------------------------

const GREETING: &str = "220 mx.test ESMTP scripted\r\n";
/// EHLO without PIPELINING (lock-step transactions).
const EHLO_PLAIN: &str = "250-mx.test\r\n250-8BITMIME\r\n250 SIZE 100000000\r\n";
/// EHLO with PIPELINING.
const EHLO_PIPE: &str = "250-mx.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n";

/// A session with a short timeout so that a hang fails fast, and a fixed
/// EHLO name so no test waits on this host's name lookup.
fn client(timeout_ms: u64) -> Session {
    let mut s = Session::new();
    s.set_timeout(Duration::from_millis(timeout_ms));
    s.set_local_hostname(Some("client.test")).unwrap();
    s
}

fn connect(server: &Server) -> Session {
    let mut s = client(3000);
    let r = s.connect("127.0.0.1", server.port).expect("greeting");
    assert_eq!(r.code, 220);
    s
}

/// Greeting, EHLO with `ehlo`.
fn opening(ehlo: &str) -> Vec<Act> {
    vec![send(GREETING), expect("EHLO client.test"), send(ehlo)]
}

fn script(parts: &[&[Act]]) -> Vec<Act> {
    parts.iter().flat_map(|p| p.iter().cloned()).collect()
}

fn err_kind<T: std::fmt::Debug>(r: smtpc::client::Result<T>) -> ErrorKind {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => {
            assert!(!e.message.is_empty(), "an error always has a message");
            e.kind
        }
    }
}

/// After a failure that leaves the stream out of step, the session is closed
/// and every later command is a State error, not a hang or a panic.
fn assert_closed_for_good(s: &mut Session) {
    assert!(!s.is_connected(), "the connection must be closed");
    assert_eq!(err_kind(s.noop()), ErrorKind::State);
    assert_eq!(err_kind(s.ehlo(None)), ErrorKind::State);
    assert_eq!(
        err_kind(s.sendmail("a@x", &["b@y"], b"hi\r\n")),
        ErrorKind::State
    );
}

/// Timing bound for timeout tests: machines are noisy, so be generous.
fn assert_fired_in_time(start: Instant, timeout_ms: u64) {
    let took = start.elapsed();
    assert!(
        took < Duration::from_millis(timeout_ms + 1500),
        "timeout of {timeout_ms} ms fired after {took:?}"
    );
    assert!(
        took + Duration::from_millis(20) >= Duration::from_millis(timeout_ms),
        "timeout of {timeout_ms} ms fired early, after {took:?}"
    );
}

// ---------------------------------------------------------------------------
// Replies that are too large or malformed
// ---------------------------------------------------------------------------

#[test]
fn scripted_server_reply_line_of_1mb_is_refused_as_protocol_error() {
    let mut line = b"220 ".to_vec();
    line.extend(std::iter::repeat_n(b'a', 1 << 20));
    line.extend_from_slice(b"\r\n");
    let server = Server::start(vec![Act::Send(line), Act::Hold(3000)]);
    let mut s = client(3000);
    let e = s.connect("127.0.0.1", server.port).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
    assert!(e.message.contains("65536"), "{e}");
    assert_eq!(s.last_error().unwrap().kind, ErrorKind::Protocol);
    assert_closed_for_good(&mut s);
    let out = server.outcome();
    assert!(
        out.got.is_empty(),
        "nothing is sent after a refused greeting"
    );
}

#[test]
fn scripted_server_1mb_without_line_end_is_refused_as_protocol_error_not_timeout() {
    // No LF ever comes, and the server keeps the connection open: the cap,
    // not the timeout, must end the read.
    let server = Server::start(vec![
        send("220 "),
        Act::Flood(vec![b'x'; 4096], 1 << 20),
        Act::Hold(3000),
    ]);
    let mut s = client(2500);
    let start = Instant::now();
    let e = s.connect("127.0.0.1", server.port).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
    assert!(start.elapsed() < Duration::from_millis(2000));
    assert_closed_for_good(&mut s);
    server.outcome();
}

#[test]
fn scripted_server_endless_multiline_reply_is_refused_as_protocol_error() {
    let mut line = b"250-".to_vec();
    line.extend(std::iter::repeat_n(b'k', 100));
    line.extend_from_slice(b"\r\n");
    let server = Server::start(script(&[
        &[send(GREETING), expect("EHLO")],
        &[Act::Flood(line, 4 << 20), Act::Hold(3000)],
    ]));
    let mut s = connect(&server);
    let e = s.ehlo(None).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
    assert!(e.message.contains("65536"), "{e}");
    assert!(s.extensions().is_none());
    assert_closed_for_good(&mut s);
    server.outcome();
}

#[test]
fn scripted_server_endless_multiline_reply_of_empty_lines_is_refused_as_protocol_error() {
    // "250-" lines carry no text; only their separators count toward the cap.
    let server = Server::start(script(&[
        &[send(GREETING), expect("NOOP")],
        &[
            Act::Flood(b"250-\r\n".repeat(1000), 4 << 20),
            Act::Hold(3000),
        ],
    ]));
    let mut s = connect(&server);
    assert_eq!(err_kind(s.noop()), ErrorKind::Protocol);
    assert_closed_for_good(&mut s);
    server.outcome();
}

#[test]
fn scripted_server_reply_of_exactly_64kib_text_split_before_its_crlf_is_accepted() {
    // SMTPC_MAX_REPLY_BYTES is the most reply *text* accepted: a one-line
    // reply with exactly 65536 bytes of text is within the cap, whatever
    // the packet boundaries. Here the last bytes of text and the CRLF come
    // in a later packet than the first 65540 bytes.
    let cap = smtpc::ffi::result::SMTPC_MAX_REPLY_BYTES;
    let mut first = b"250 ".to_vec();
    first.extend(std::iter::repeat_n(b'z', cap - 2));
    let server = Server::start(vec![
        send(GREETING),
        expect("NOOP"),
        Act::Send(first),
        Act::Sleep(150),
        send("zz\r\n"),
        expect("QUIT"),
        send("221 bye\r\n"),
    ]);
    let mut s = connect(&server);
    let r = s.noop();
    let r = r.expect("a reply of exactly the cap is accepted");
    assert_eq!(r.code, 250);
    assert_eq!(r.text.len(), cap);
    assert_eq!(s.quit().unwrap().code, 221);
    server.finish();
}

#[test]
fn scripted_server_reply_one_byte_over_64kib_is_refused_as_protocol_error() {
    let cap = smtpc::ffi::result::SMTPC_MAX_REPLY_BYTES;
    let mut line = b"250 ".to_vec();
    line.extend(std::iter::repeat_n(b'z', cap + 1));
    line.extend_from_slice(b"\r\n");
    let server = Server::start(vec![
        send(GREETING),
        expect("NOOP"),
        Act::Send(line),
        Act::Hold(3000),
    ]);
    let mut s = connect(&server);
    assert_eq!(err_kind(s.noop()), ErrorKind::Protocol);
    assert_closed_for_good(&mut s);
    server.outcome();
}

#[test]
fn scripted_server_reply_codes_that_are_not_three_digits_are_protocol_errors() {
    for bad in [
        "22 short\r\n",
        "2x0 letters\r\n",
        "OK\r\n",
        "\r\n",
        "2500 four\r\n",
    ] {
        let server = Server::start(vec![send(bad), Act::Hold(3000)]);
        let mut s = client(3000);
        let e = s.connect("127.0.0.1", server.port).unwrap_err();
        // "2500 four" has a 3-digit code and a bad separator ('0'); both are
        // malformed-line protocol errors.
        assert_eq!(e.kind, ErrorKind::Protocol, "{bad:?}: {e}");
        assert!(e.message.contains("malformed"), "{bad:?}: {e}");
        assert!(!s.is_connected(), "{bad:?}");
        server.outcome();
    }
}

#[test]
fn scripted_server_reply_code_1xx_is_a_protocol_error() {
    let server = Server::start(vec![send("120 wait a bit\r\n"), Act::Hold(3000)]);
    let mut s = client(3000);
    let e = s.connect("127.0.0.1", server.port).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
    assert!(e.message.contains("out of range"), "{e}");
    assert_closed_for_good(&mut s);
    server.outcome();
}

#[test]
fn scripted_server_reply_code_6xx_is_a_protocol_error() {
    let server = Server::start(script(&[
        &opening(EHLO_PLAIN),
        &[
            expect("NOOP"),
            send("600 beyond the classes\r\n"),
            Act::Hold(3000),
        ],
    ]));
    let mut s = connect(&server);
    assert_eq!(s.ehlo(None).unwrap().code, 250);
    let e = s.noop().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
    assert!(e.message.contains("out of range"), "{e}");
    assert_closed_for_good(&mut s);
    server.outcome();
}

#[test]
fn scripted_server_mismatched_codes_inside_one_multiline_reply_are_a_protocol_error() {
    let server = Server::start(script(&[
        &[send(GREETING), expect("EHLO")],
        &[
            send("250-mx.test\r\n250-PIPELINING\r\n251 SIZE 10\r\n"),
            Act::Hold(3000),
        ],
    ]));
    let mut s = connect(&server);
    let e = s.ehlo(None).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
    assert!(e.message.contains("250 to 251"), "{e}");
    assert!(
        s.extensions().is_none(),
        "a broken EHLO reply records nothing"
    );
    assert_closed_for_good(&mut s);
    server.outcome();
}

#[test]
fn scripted_server_bad_separator_after_the_code_is_a_protocol_error() {
    let server = Server::start(vec![send("220_mx.test\r\n"), Act::Hold(3000)]);
    let mut s = client(3000);
    let e = s.connect("127.0.0.1", server.port).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
    assert!(e.message.contains("separator"), "{e}");
    assert_closed_for_good(&mut s);
    server.outcome();
}

#[test]
fn scripted_server_non_utf8_reply_text_is_accepted_with_replacement_characters() {
    let server = Server::start(vec![
        sendb(b"220-caf\xe9 \xff\xfe\r\n220 ok \xc3\r\n"),
        expect("NOOP"),
        sendb(b"250 2.0.0 \x80\x81 fine\r\n"),
    ]);
    let mut s = client(3000);
    let g = s.connect("127.0.0.1", server.port).unwrap();
    assert_eq!(g.code, 220);
    assert_eq!(g.text, "caf\u{fffd} \u{fffd}\u{fffd}\nok \u{fffd}");
    let r = s.noop().unwrap();
    assert_eq!(r.code, 250);
    assert_eq!(r.text, "2.0.0 \u{fffd}\u{fffd} fine");
    assert_eq!(r.enhanced().unwrap().to_string(), "2.0.0");
    assert!(s.last_error().is_none());
    drop(s);
    server.finish();
}

#[test]
fn scripted_server_bare_lf_line_endings_are_accepted() {
    let server = Server::start(vec![
        send("220-mx.test\n220 lax server\n"),
        expect("EHLO"),
        send("250-mx.test\n250-PIPELINING\n250 8BITMIME\n"),
        expect("MAIL FROM:<a@x>"),
        expect("RCPT TO:<b@y>"),
        expect("DATA"),
        send("250 ok\n250 ok\n354 go\n"),
        Act::Data,
        send("250 queued\n"),
        expect("QUIT"),
        send("221 bye\n"),
    ]);
    let mut s = client(3000);
    let g = s.connect("127.0.0.1", server.port).unwrap();
    assert_eq!((g.code, g.text.as_str()), (220, "mx.test\nlax server"));
    let r = s.ehlo(None).unwrap();
    assert_eq!(r.code, 250);
    assert!(s.has_extn("PIPELINING"));
    let r = s.sendmail("a@x", &["b@y"], b"hello\n").unwrap();
    assert_eq!((r.code, r.text.as_str()), (250, "queued"));
    assert_eq!(s.quit().unwrap().code, 221);
    let out = server.finish();
    assert_eq!(out.data, [b"hello\r\n.\r\n".to_vec()]);
}

#[test]
fn scripted_server_garbage_greeting_is_a_protocol_error() {
    let server = Server::start(vec![
        send("HELLO THERE, I AM NOT SMTP\r\n"),
        Act::Hold(3000),
    ]);
    let mut s = client(3000);
    let e = s.connect("127.0.0.1", server.port).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
    assert!(s.last_reply().is_none(), "no reply was parsed");
    assert_closed_for_good(&mut s);
    // The handle can connect again afterwards.
    let good = Server::start(vec![send(GREETING), expect("QUIT"), send("221 bye\r\n")]);
    assert_eq!(s.connect("127.0.0.1", good.port).unwrap().code, 220);
    assert_eq!(s.quit().unwrap().code, 221);
    good.finish();
    server.outcome();
}

// ---------------------------------------------------------------------------
// The connection closed at every step
// ---------------------------------------------------------------------------

#[test]
fn scripted_server_closing_before_greeting_is_closed_error() {
    let server = Server::start(vec![Act::Close]);
    let mut s = client(3000);
    let e = s.connect("127.0.0.1", server.port).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Closed, "{e}");
    assert_closed_for_good(&mut s);
    server.finish();
}

#[test]
fn scripted_server_closing_mid_greeting_line_is_closed_error() {
    let server = Server::start(vec![send("220 mx.te"), Act::Close]);
    let mut s = client(3000);
    let e = s.connect("127.0.0.1", server.port).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Closed, "{e}");
    assert_closed_for_good(&mut s);
    server.finish();
}

#[test]
fn scripted_server_closing_mid_multiline_greeting_is_closed_error() {
    let server = Server::start(vec![send("220-mx.test\r\n220-still going\r\n"), Act::Close]);
    let mut s = client(3000);
    let e = s.connect("127.0.0.1", server.port).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Closed, "{e}");
    assert!(
        s.last_reply().is_none(),
        "a partial reply is never returned"
    );
    assert_closed_for_good(&mut s);
    server.finish();
}

#[test]
fn scripted_server_closing_after_ehlo_is_closed_error() {
    let server = Server::start(vec![send(GREETING), expect("EHLO client.test"), Act::Close]);
    let mut s = connect(&server);
    let e = s.ehlo(None).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Closed, "{e}");
    assert_closed_for_good(&mut s);
    server.finish();
}

#[test]
fn scripted_server_closing_during_auth_plain_is_closed_error() {
    let server = Server::start(script(&[
        &opening("250-mx.test\r\n250 AUTH PLAIN\r\n"),
        &[expect("AUTH PLAIN AHUAcA=="), Act::Close],
    ]));
    let mut s = connect(&server);
    let e = s.login("u", "p").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Closed, "{e}");
    assert_closed_for_good(&mut s);
    server.finish();
}

#[test]
fn scripted_server_closing_mid_auth_login_exchange_is_closed_error() {
    // AUTH LOGIN, "Username:" challenge, the user name, then the server
    // hangs up instead of asking for the password.
    let server = Server::start(script(&[
        &opening("250-mx.test\r\n250 AUTH LOGIN\r\n"),
        &[
            expect("AUTH LOGIN"),
            send("334 VXNlcm5hbWU6\r\n"),
            expect("dQ=="),
            Act::Close,
        ],
    ]));
    let mut s = connect(&server);
    let e = s.login("u", "p").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Closed, "{e}");
    assert_closed_for_good(&mut s);
    server.finish();
}

fn lock_step_until(after: &[Act]) -> Vec<Act> {
    script(&[&opening(EHLO_PLAIN), after])
}

#[test]
fn scripted_server_closing_after_mail_is_closed_error() {
    let server = Server::start(lock_step_until(&[expect("MAIL FROM:<a@x>"), Act::Close]));
    let mut s = connect(&server);
    let e = s.sendmail("a@x", &["b@y"], b"hi\r\n").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Closed, "{e}");
    assert_eq!(s.rcpt_replies().len(), 0);
    assert_closed_for_good(&mut s);
    server.finish();
}

#[test]
fn scripted_server_closing_after_rcpt_is_closed_error() {
    let server = Server::start(lock_step_until(&[
        expect("MAIL FROM:<a@x>"),
        send("250 ok\r\n"),
        expect("RCPT TO:<b@y>"),
        Act::Close,
    ]));
    let mut s = connect(&server);
    let e = s.sendmail("a@x", &["b@y"], b"hi\r\n").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Closed, "{e}");
    assert_closed_for_good(&mut s);
    server.finish();
}

#[test]
fn scripted_server_closing_after_data_354_is_closed_error() {
    // The server says "go ahead" and hangs up at once. The small body may
    // still be written into the socket buffer; the reply read then fails.
    let server = Server::start(lock_step_until(&[
        expect("MAIL"),
        send("250 ok\r\n"),
        expect("RCPT"),
        send("250 ok\r\n"),
        expect("DATA"),
        send("354 go ahead\r\n"),
        Act::Close,
    ]));
    let mut s = connect(&server);
    let e = s.sendmail("a@x", &["b@y"], b"hi\r\n").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Closed, "{e}");
    // The 354 was received; the error is what the call returns.
    assert_eq!(s.last_outcome().data.as_ref().map(|r| r.code), Some(354));
    assert!(s.last_outcome().last.is_none());
    assert_closed_for_good(&mut s);
    server.finish();
}

#[test]
fn scripted_server_closing_mid_body_is_closed_error() {
    // A 4 MB body: the server reads 64 KiB of it and hangs up, so the
    // client is still writing when the connection goes.
    let body = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstu\r\n"
        .repeat(4 << 20 >> 6);
    let server = Server::start(lock_step_until(&[
        expect("MAIL"),
        send("250 ok\r\n"),
        expect("RCPT"),
        send("250 ok\r\n"),
        expect("DATA"),
        send("354 go ahead\r\n"),
        Act::ReadBytes(64 * 1024),
        Act::Close,
    ]));
    let mut s = connect(&server);
    let e = s.sendmail("a@x", &["b@y"], &body).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Closed, "{e}");
    assert_closed_for_good(&mut s);
    server.finish();
}

#[test]
fn scripted_server_closing_after_final_dot_before_reply_is_closed_error() {
    let server = Server::start(lock_step_until(&[
        expect("MAIL"),
        send("250 ok\r\n"),
        expect("RCPT"),
        send("250 ok\r\n"),
        expect("DATA"),
        send("354 go ahead\r\n"),
        Act::Data,
        Act::Close,
    ]));
    let mut s = connect(&server);
    let e = s.sendmail("a@x", &["b@y"], b"hi\r\n").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Closed, "{e}");
    // Delivery is unknown: the step is not a refusal.
    assert_eq!(s.failed_step(), Step::None);
    assert_closed_for_good(&mut s);
    let out = server.finish();
    assert_eq!(out.data, [b"hi\r\n.\r\n".to_vec()]);
}

// ---------------------------------------------------------------------------
// Servers that never answer, or answer too slowly
// ---------------------------------------------------------------------------

#[test]
fn scripted_server_that_never_greets_times_out_within_the_timeout() {
    let server = Server::start(vec![Act::Hold(4000)]);
    let mut s = client(300);
    let start = Instant::now();
    let e = s.connect("127.0.0.1", server.port).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert_fired_in_time(start, 300);
    assert_closed_for_good(&mut s);
    server.outcome();
}

#[test]
fn scripted_server_that_never_answers_the_final_dot_times_out_within_the_timeout() {
    let server = Server::start(lock_step_until(&[
        expect("MAIL"),
        send("250 ok\r\n"),
        expect("RCPT"),
        send("250 ok\r\n"),
        expect("DATA"),
        send("354 go ahead\r\n"),
        Act::Data,
        Act::Hold(4000),
    ]));
    let mut s = connect(&server);
    s.set_timeout(Duration::from_millis(300));
    let start = Instant::now();
    let e = s.sendmail("a@x", &["b@y"], b"hi\r\n").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    // Lock-step: EHLO, MAIL, RCPT, DATA, each answered at once; only the
    // final reply waits for the whole timeout.
    assert_fired_in_time(start, 300);
    assert_eq!(s.failed_step(), Step::None);
    assert_closed_for_good(&mut s);
    server.finish();
}

#[test]
fn scripted_server_dripping_a_greeting_byte_by_byte_cannot_stretch_the_timeout() {
    // 28 bytes at 200 ms each would take 5.6 s; the deadline covers the
    // whole reply, so 500 ms it is.
    let server = Server::start(vec![
        Act::Drip(GREETING.as_bytes().to_vec(), 200),
        Act::Hold(1000),
    ]);
    let mut s = client(500);
    let start = Instant::now();
    let e = s.connect("127.0.0.1", server.port).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert_fired_in_time(start, 500);
    assert_closed_for_good(&mut s);
    drop(s);
    server.outcome();
}

#[test]
fn scripted_server_stalling_the_tls_handshake_times_out() {
    // STARTTLS is accepted with 220, then the server reads the ClientHello
    // and sends nothing.
    let server = Server::start(script(&[
        &opening("250-mx.test\r\n250 STARTTLS\r\n"),
        &[
            expect("STARTTLS"),
            send("220 go ahead\r\n"),
            Act::Hold(4000),
        ],
    ]));
    let mut s = connect(&server);
    s.set_timeout(Duration::from_millis(300));
    let start = Instant::now();
    let e = s.starttls().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert_fired_in_time(start, 300);
    assert!(!s.is_tls());
    assert_closed_for_good(&mut s);
    let out = server.finish();
    // The client did start a handshake: a TLS handshake record follows.
    let hello = out.got_text().find("STARTTLS\r\n").unwrap() + "STARTTLS\r\n".len();
    assert_eq!(out.got.get(hello), Some(&0x16), "a TLS handshake record");
}

#[test]
fn scripted_server_dripping_the_tls_handshake_cannot_stretch_the_timeout() {
    // After 220, the server starts a TLS record that announces 16 000 bytes
    // and then drips them, one every 150 ms: each read finishes well within
    // the timeout, but the handshake as a whole must not outlive it.
    let server = Server::start(script(&[
        &opening("250-mx.test\r\n250 STARTTLS\r\n"),
        &[
            expect("STARTTLS"),
            send("220 go ahead\r\n"),
            // Let the 220 be read alone (bytes arriving with it are
            // discarded as possible injection), and the ClientHello leave.
            Act::Sleep(100),
            sendb(&[0x16, 0x03, 0x03, 0x3e, 0x80]),
            Act::Drip(vec![0u8; 20], 150),
            Act::Hold(1000),
        ],
    ]));
    let mut s = connect(&server);
    s.set_timeout(Duration::from_millis(500));
    let start = Instant::now();
    let e = s.starttls().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert_fired_in_time(start, 500);
    assert_closed_for_good(&mut s);
    server.outcome();
}

// ---------------------------------------------------------------------------
// STARTTLS response injection
// ---------------------------------------------------------------------------

#[test]
fn scripted_server_starttls_response_injection_is_never_read_as_a_reply() {
    // "250 injected" arrives in the same packet as the 220, before the
    // handshake: it must be discarded, never taken as a post-TLS reply. The
    // server then hangs up, so the handshake fails.
    let server = Server::start(script(&[
        &opening("250-mx.test\r\n250 STARTTLS\r\n"),
        &[
            expect("STARTTLS"),
            send("220 ready\r\n250 injected\r\n"),
            Act::Sleep(100),
            Act::Close,
        ],
    ]));
    let mut s = connect(&server);
    let r = s.starttls();
    match &r {
        Err(e) => assert!(
            matches!(e.kind, ErrorKind::Tls | ErrorKind::Closed),
            "a TLS error or closed, got {e:?}"
        ),
        Ok(r) => panic!("STARTTLS must fail against a server that never does TLS, got {r:?}"),
    }
    assert_eq!(s.last_reply().unwrap().code, 220, "never the injected 250");
    assert!(!s.is_tls());
    assert_closed_for_good(&mut s);
    let out = server.finish();
    assert_eq!(out.verbs()[..2], ["EHLO", "STARTTLS"]);
}

#[test]
fn scripted_server_answering_the_client_hello_with_plain_text_is_a_tls_error() {
    let server = Server::start(script(&[
        &opening("250-mx.test\r\n250 STARTTLS\r\n"),
        &[
            expect("STARTTLS"),
            send("220 ready\r\n"),
            Act::Sleep(50),
            send("250 this is not TLS\r\n"),
            Act::Hold(3000),
        ],
    ]));
    let mut s = connect(&server);
    let e = s.starttls().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Tls, "{e}");
    assert_eq!(s.last_reply().unwrap().code, 220);
    assert_closed_for_good(&mut s);
    server.outcome();
}

// ---------------------------------------------------------------------------
// Refusals
// ---------------------------------------------------------------------------

#[test]
fn scripted_server_greeting_554_is_returned_and_the_connection_closed() {
    let server = Server::start(vec![send("554 5.7.1 go away\r\n"), Act::Hold(3000)]);
    let mut s = client(3000);
    let r = s.connect("127.0.0.1", server.port).unwrap();
    assert_eq!((r.code, r.text.as_str()), (554, "5.7.1 go away"));
    assert!(
        s.last_error().is_none(),
        "a refusal is an answer, not an error"
    );
    assert_closed_for_good(&mut s);
    assert!(s.last_error().unwrap().message.contains("not connected"));
    let out = server.outcome();
    assert!(
        out.got.is_empty(),
        "nothing is sent after a 554 greeting: {:?}",
        out.got_text()
    );
}

#[test]
fn scripted_server_421_to_mail_is_returned_and_the_connection_closed() {
    let server = Server::start(lock_step_until(&[
        expect("MAIL FROM:<a@x>"),
        send("421 4.3.2 shutting down\r\n"),
        Act::Hold(3000),
    ]));
    let mut s = connect(&server);
    let r = s.sendmail("a@x", &["b@y"], b"hi\r\n").unwrap();
    assert_eq!((r.code, r.text.as_str()), (421, "4.3.2 shutting down"));
    assert_eq!(s.failed_step(), Step::Mail);
    assert_closed_for_good(&mut s);
    let out = server.finish();
    assert_eq!(out.verbs(), ["EHLO", "MAIL"], "no RSET after 421");
}

#[test]
fn scripted_server_421_to_pipelined_mail_is_returned_and_the_connection_closed() {
    // With PIPELINING, MAIL, RCPT and DATA leave together; the server
    // answers the MAIL with 421 and hangs up, as RFC 5321 §3.8 has it. The
    // 421 is the answer the caller must get, not "connection closed".
    let server = Server::start(script(&[
        &opening(EHLO_PIPE),
        &[
            expect("MAIL FROM:<a@x>"),
            expect("RCPT TO:<b@y>"),
            expect("DATA"),
            send("421 4.3.2 shutting down\r\n"),
            Act::Close,
        ],
    ]));
    let mut s = connect(&server);
    let r = s.sendmail("a@x", &["b@y"], b"hi\r\n");
    let r = r.expect("the 421 is returned, not a Closed error");
    assert_eq!(r.code, 421);
    assert_eq!(s.failed_step(), Step::Mail);
    assert!(!s.is_connected());
    server.finish();
}

#[test]
fn scripted_server_421_to_first_of_two_rcpts_is_returned_and_the_connection_closed() {
    let server = Server::start(lock_step_until(&[
        expect("MAIL"),
        send("250 ok\r\n"),
        expect("RCPT TO:<b@y>"),
        send("421 4.3.2 shutting down\r\n"),
        Act::Close,
    ]));
    let mut s = connect(&server);
    let r = s.sendmail("a@x", &["b@y", "c@y"], b"hi\r\n");
    let r = r.expect("the 421 is returned, not a Closed error");
    assert_eq!(r.code, 421);
    assert_eq!(s.failed_step(), Step::Rcpt);
    assert!(!s.is_connected());
    server.finish();
}

#[test]
fn scripted_server_refusing_every_recipient_gets_rset_and_step_rcpt() {
    let server = Server::start(lock_step_until(&[
        expect("MAIL FROM:<a@x>"),
        send("250 ok\r\n"),
        expect("RCPT TO:<b@y>"),
        send("550 5.1.1 no such user b\r\n"),
        expect("RCPT TO:<c@y>"),
        send("553 5.1.3 bad address c\r\n"),
        expect("RSET"),
        send("250 flushed\r\n"),
        expect("QUIT"),
        send("221 bye\r\n"),
    ]));
    let mut s = connect(&server);
    let r = s.sendmail("a@x", &["b@y", "c@y"], b"hi\r\n").unwrap();
    assert_eq!((r.code, r.text.as_str()), (553, "5.1.3 bad address c"));
    assert_eq!(s.failed_step(), Step::Rcpt);
    let codes: Vec<u16> = s.rcpt_replies().iter().map(|r| r.code).collect();
    assert_eq!(codes, [550, 553]);
    assert_eq!(
        s.last_reply().unwrap().code,
        553,
        "the refusal, not the RSET's 250"
    );
    assert!(s.is_connected());
    assert_eq!(s.quit().unwrap().code, 221);
    let out = server.finish();
    assert_eq!(
        out.verbs(),
        ["EHLO", "MAIL", "RCPT", "RCPT", "RSET", "QUIT"]
    );
    assert!(out.data.is_empty() && !out.got_text().contains("hi\r\n"));
}

#[test]
fn scripted_server_hanging_up_instead_of_answering_rset_still_returns_the_refusal() {
    // The server refuses the only recipient, then hangs up on the RSET that
    // follows. The caller still learns what was refused (as smtplib, whose
    // _rset ignores a disconnect), and the session is closed.
    let server = Server::start(lock_step_until(&[
        expect("MAIL"),
        send("250 ok\r\n"),
        expect("RCPT"),
        send("550 5.1.1 no such user\r\n"),
        expect("RSET"),
        Act::Close,
    ]));
    let mut s = connect(&server);
    let r = s.sendmail("a@x", &["b@y"], b"hi\r\n");
    let r = r.expect("the 550 is returned, not the failed RSET's Closed error");
    assert_eq!(r.code, 550);
    assert_eq!(s.failed_step(), Step::Rcpt);
    assert!(!s.is_connected());
    server.finish();
}

#[test]
fn scripted_server_refusing_data_gets_rset_and_step_data() {
    let server = Server::start(lock_step_until(&[
        expect("MAIL"),
        send("250 ok\r\n"),
        expect("RCPT"),
        send("250 ok\r\n"),
        expect("DATA"),
        send("554 5.5.1 no valid recipients\r\n"),
        expect("RSET"),
        send("250 ok\r\n"),
    ]));
    let mut s = connect(&server);
    let r = s.sendmail("a@x", &["b@y"], b"secret body\r\n").unwrap();
    assert_eq!(
        (r.code, r.text.as_str()),
        (554, "5.5.1 no valid recipients")
    );
    assert_eq!(s.failed_step(), Step::Data);
    assert_eq!(s.rcpt_replies()[0].code, 250);
    drop(s);
    let out = server.finish();
    assert_eq!(out.verbs(), ["EHLO", "MAIL", "RCPT", "DATA", "RSET"]);
    assert!(!out.got_text().contains("secret body"));
}

#[test]
fn scripted_server_accepting_data_after_refusing_every_pipelined_rcpt_gets_an_empty_body() {
    // A broken (or hostile) server says 354 to DATA although it refused
    // every RCPT of the pipelined batch. The client must end the DATA at
    // once (".\r\n") so nothing is delivered, then RSET.
    let server = Server::start(script(&[
        &opening(EHLO_PIPE),
        &[
            expect("MAIL FROM:<a@x>"),
            expect("RCPT TO:<b@y>"),
            expect("RCPT TO:<c@y>"),
            expect("DATA"),
            send("250 ok\r\n550 no b\r\n550 no c\r\n354 go ahead anyway\r\n"),
            Act::Data,
            send("554 no valid recipients\r\n"),
            expect("RSET"),
            send("250 ok\r\n"),
        ],
    ]));
    let mut s = connect(&server);
    let r = s
        .sendmail(
            "a@x",
            &["b@y", "c@y"],
            b"Subject: secret\r\n\r\nsecret body\r\n",
        )
        .unwrap();
    assert_eq!((r.code, r.text.as_str()), (550, "no c"));
    assert_eq!(s.failed_step(), Step::Rcpt);
    assert_eq!(s.rcpt_replies().len(), 2);
    assert!(s.is_connected());
    drop(s);
    let out = server.finish();
    assert_eq!(out.data, [b".\r\n".to_vec()], "only the end marker");
    assert!(!out.got_text().contains("secret"), "{:?}", out.got_text());
    assert_eq!(
        out.verbs(),
        ["EHLO", "MAIL", "RCPT", "RCPT", "DATA", "RSET"]
    );
}

#[test]
fn scripted_server_final_reply_554_after_the_body_gives_step_message_and_rset() {
    let server = Server::start(lock_step_until(&[
        expect("MAIL"),
        send("250 ok\r\n"),
        expect("RCPT"),
        send("250 ok\r\n"),
        expect("DATA"),
        send("354 go ahead\r\n"),
        Act::Data,
        send("554 5.7.1 spam\r\n"),
        expect("RSET"),
        send("250 ok\r\n"),
    ]));
    let mut s = connect(&server);
    let r = s.sendmail("a@x", &["b@y"], b"buy now\r\n").unwrap();
    assert_eq!((r.code, r.text.as_str()), (554, "5.7.1 spam"));
    assert_eq!(s.failed_step(), Step::Message);
    assert_eq!(s.last_reply().unwrap().code, 554);
    drop(s);
    let out = server.finish();
    assert_eq!(out.data, [b"buy now\r\n.\r\n".to_vec()]);
    assert_eq!(out.verbs(), ["EHLO", "MAIL", "RCPT", "DATA", "RSET"]);
}

#[test]
fn scripted_server_hanging_up_on_rset_after_a_refused_message_still_returns_the_refusal() {
    // The final reply refuses the message; the RSET that follows finds the
    // connection gone. The refusal is the answer to the caller's sendmail.
    let server = Server::start(lock_step_until(&[
        expect("MAIL"),
        send("250 ok\r\n"),
        expect("RCPT"),
        send("250 ok\r\n"),
        expect("DATA"),
        send("354 go ahead\r\n"),
        Act::Data,
        send("554 5.7.1 spam\r\n"),
        expect("RSET"),
        Act::Close,
    ]));
    let mut s = connect(&server);
    let r = s.sendmail("a@x", &["b@y"], b"buy now\r\n");
    let r = r.expect("the 554 is returned, not the failed RSET's Closed error");
    assert_eq!(r.code, 554);
    assert_eq!(s.failed_step(), Step::Message);
    assert!(!s.is_connected());
    server.finish();
}

// ---------------------------------------------------------------------------
// TLS policy against a downgrading server
// ---------------------------------------------------------------------------

#[test]
fn scripted_server_stripping_starttls_under_required_policy_is_insecure_and_sends_nothing() {
    let server = Server::start(vec![
        send(GREETING),
        expect("EHLO"),
        send("250-mx.test\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n"),
        Act::Hold(3000),
    ]);
    let mut s = client(3000);
    s.set_tls_policy(smtpc::client::TlsPolicy::Required);
    let e = s.connect("127.0.0.1", server.port).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Insecure, "{e}");
    assert_closed_for_good(&mut s);
    drop(s);
    let out = server.outcome();
    assert_eq!(out.verbs(), ["EHLO"], "nothing past EHLO in clear text");
}

#[test]
fn scripted_server_refusing_starttls_under_required_policy_is_insecure_and_sends_nothing() {
    let server = Server::start(script(&[
        &opening("250-mx.test\r\n250 STARTTLS\r\n"),
        &[
            expect("STARTTLS"),
            send("454 4.7.0 TLS not available\r\n"),
            Act::Hold(3000),
        ],
    ]));
    let mut s = client(3000);
    s.set_tls_policy(smtpc::client::TlsPolicy::Required);
    let e = s.connect("127.0.0.1", server.port).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Insecure, "{e}");
    assert!(e.message.contains("454"), "{e}");
    assert_closed_for_good(&mut s);
    drop(s);
    let out = server.finish();
    assert_eq!(out.verbs(), ["EHLO", "STARTTLS"]);
}

// ---------------------------------------------------------------------------
// AUTH
// ---------------------------------------------------------------------------

#[test]
fn scripted_server_auth_challenge_that_is_not_base64_is_a_protocol_error_and_closes() {
    // The server is mid-exchange, waiting for a SASL response: a session
    // left open would send its next command as that response. It must be
    // closed, as for any failure that leaves the stream out of step.
    let server = Server::start(script(&[
        &opening("250-mx.test\r\n250 AUTH LOGIN\r\n"),
        &[
            expect("AUTH LOGIN"),
            send("334 !!not*base64!!\r\n"),
            Act::Hold(3000),
        ],
    ]));
    let mut s = connect(&server);
    let e = s.login("u", "p").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
    assert!(e.message.contains("base64"), "{e}");
    assert!(
        !s.is_connected(),
        "the session is left mid-AUTH: its next command would be taken as the SASL response"
    );
    drop(s);
    server.outcome();
}

#[test]
fn scripted_server_cram_md5_challenge_that_is_not_base64_is_a_protocol_error_and_closes() {
    let server = Server::start(script(&[
        &opening("250-mx.test\r\n250 AUTH CRAM-MD5\r\n"),
        &[
            expect("AUTH CRAM-MD5"),
            send("334 <1896.697170952@x>\r\n"),
            Act::Hold(3000),
        ],
    ]));
    let mut s = connect(&server);
    let e = s.login("u", "p").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
    assert!(!s.is_connected(), "the session is left mid-AUTH");
    drop(s);
    server.outcome();
}

#[test]
fn scripted_server_sending_more_than_5_auth_challenges_is_a_protocol_error() {
    let mut acts = opening("250-mx.test\r\n250 AUTH LOGIN\r\n");
    acts.push(expect("AUTH LOGIN"));
    acts.push(send("334 VXNlcm5hbWU6\r\n"));
    for _ in 0..5 {
        acts.push(expect(""));
        acts.push(send("334 VXNlcm5hbWU6\r\n"));
    }
    acts.push(Act::Hold(3000));
    let server = Server::start(acts);
    let mut s = connect(&server);
    let e = s.login("u", "p").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
    assert!(e.message.contains("too many AUTH challenges"), "{e}");
    assert_closed_for_good(&mut s);
    let out = server.finish();
    // AUTH plus exactly five responses, nothing after.
    assert_eq!(out.got_text().lines().count(), 1 + 1 + 5);
}

// ---------------------------------------------------------------------------
// Odd but legal, or merely unhelpful, servers
// ---------------------------------------------------------------------------

#[test]
fn scripted_server_ehlo_reply_of_bare_250_has_no_extensions() {
    let server = Server::start(vec![
        send(GREETING),
        expect("EHLO"),
        send("250\r\n"),
        expect("QUIT"),
        send("221 bye\r\n"),
    ]);
    let mut s = connect(&server);
    let r = s.ehlo(None).unwrap();
    assert_eq!((r.code, r.text.as_str()), (250, ""));
    let ext = s.extensions().expect("EHLO succeeded");
    assert_eq!(ext.keywords().count(), 0);
    assert!(!s.has_extn("AUTH") && !s.has_extn("STARTTLS") && !s.has_extn(""));
    assert_eq!(err_kind(s.login("u", "p")), ErrorKind::NotSupported);
    assert_eq!(err_kind(s.starttls()), ErrorKind::NotSupported);
    assert_eq!(
        err_kind(s.sendmail("a@x", &["b@y"], "caf\u{e9}".as_bytes())),
        ErrorKind::NotSupported,
        "8-bit body without 8BITMIME"
    );
    assert!(s.is_connected(), "local refusals do not close");
    assert_eq!(s.quit().unwrap().code, 221);
    let out = server.finish();
    assert_eq!(out.verbs(), ["EHLO", "QUIT"], "nothing else was sent");
}

#[test]
fn scripted_server_calls_after_quit_are_state_errors() {
    let server = Server::start(vec![send(GREETING), expect("QUIT"), send("221 bye\r\n")]);
    let mut s = connect(&server);
    assert_eq!(s.quit().unwrap().code, 221);
    assert!(!s.is_connected());
    assert_closed_for_good(&mut s);
    assert_eq!(err_kind(s.login("u", "p")), ErrorKind::State);
    assert_eq!(err_kind(s.starttls()), ErrorKind::State);
    assert_eq!(err_kind(s.quit()), ErrorKind::State);
    assert_eq!(err_kind(s.docmd("XYZZY", None)), ErrorKind::State);
    s.close(); // harmless
    let out = server.finish();
    assert_eq!(out.verbs(), ["QUIT"]);
}

#[test]
fn scripted_server_quit_answered_by_hangup_still_closes() {
    let server = Server::start(vec![send(GREETING), expect("QUIT"), Act::Close]);
    let mut s = connect(&server);
    assert_eq!(err_kind(s.quit()), ErrorKind::Closed);
    assert_closed_for_good(&mut s);
    server.finish();
}

#[test]
fn scripted_server_calls_after_a_refused_connect_are_state_errors() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }; // closed again: nothing listens there
    let mut s = client(3000);
    let e = s.connect("127.0.0.1", port).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Connect, "{e}");
    assert!(e.message.contains(&port.to_string()), "{e}");
    assert_closed_for_good(&mut s);
    // The same session connects fine afterwards.
    let server = Server::start(vec![send(GREETING), expect("NOOP"), send("250 ok\r\n")]);
    assert_eq!(s.connect("127.0.0.1", server.port).unwrap().code, 220);
    assert_eq!(s.noop().unwrap().code, 250);
    drop(s);
    server.finish();
}

#[test]
fn scripted_name_that_does_not_resolve_is_a_resolve_error() {
    let mut s = client(3000);
    let e = s.connect("nonexistent.invalid", 25).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Resolve, "{e}");
    assert!(e.message.contains("nonexistent.invalid"), "{e}");
    assert_closed_for_good(&mut s);
}

#[test]
fn scripted_server_unsolicited_early_reply_is_taken_as_the_next_commands_answer() {
    // The server sends a reply nobody asked for right after its greeting.
    // SMTP replies carry no tag tying them to a command, so the client
    // cannot tell: what happens (and is pinned here) is that the stray
    // "250 early" answers the EHLO, and the real EHLO reply then answers
    // the following NOOP — the session stays one reply out of step until
    // the connection ends. No panic, no hang, no misparse.
    let server = Server::start(vec![
        send("220 mx.test\r\n250 early\r\n"),
        expect("EHLO"),
        send("250-mx.test\r\n250 PIPELINING\r\n"),
        expect("NOOP"),
        send("250 noop ok\r\n"),
        expect("QUIT"),
        send("221 bye\r\n"),
    ]);
    let mut s = connect(&server);
    let r = s.ehlo(None).unwrap();
    assert_eq!((r.code, r.text.as_str()), (250, "early"));
    assert!(
        !s.has_extn("PIPELINING"),
        "extensions came from the stray reply"
    );
    let r = s.noop().unwrap();
    assert_eq!((r.code, r.text.as_str()), (250, "mx.test\nPIPELINING"));
    let r = s.quit().unwrap();
    assert_eq!(
        (r.code, r.text.as_str()),
        (250, "noop ok"),
        "still one behind"
    );
    assert!(!s.is_connected(), "QUIT closes whatever the answer");
    server.finish();
}

#[test]
fn scripted_server_pipelined_replies_in_one_packet_need_one_wait() {
    let server = Server::start(script(&[
        &opening(EHLO_PIPE),
        &[
            expect("MAIL FROM:<a@x>"),
            expect("RCPT TO:<b@y>"),
            expect("RCPT TO:<c@y>"),
            expect("DATA"),
            send("250 2.1.0 ok\r\n250 2.1.5 ok b\r\n251 2.1.5 forwarded c\r\n354 go\r\n"),
            Act::Data,
            send("250 2.0.0 queued as 1\r\n"),
        ],
    ]));
    let mut s = connect(&server);
    s.ehlo(None).unwrap();
    let before = s.waits();
    let r = s.sendmail("a@x", &["b@y", "c@y"], b"hi\r\n").unwrap();
    assert_eq!((r.code, r.text.as_str()), (250, "2.0.0 queued as 1"));
    let rcpts: Vec<(u16, &str)> = s
        .rcpt_replies()
        .iter()
        .map(|r| (r.code, r.text.as_str()))
        .collect();
    assert_eq!(rcpts, [(250, "2.1.5 ok b"), (251, "2.1.5 forwarded c")]);
    assert_eq!(s.failed_step(), Step::None);
    // One wait for the batch of four replies, one for the final reply.
    assert_eq!(s.waits() - before, 2);
    drop(s);
    let out = server.finish();
    assert_eq!(out.data, [b"hi\r\n.\r\n".to_vec()]);
}

#[test]
fn scripted_server_replies_split_mid_line_across_packets_are_reassembled() {
    let server = Server::start(vec![
        send("22"),
        Act::Sleep(30),
        send("0-mx.te"),
        Act::Sleep(30),
        send("st\r"),
        Act::Sleep(30),
        send("\n220 rea"),
        Act::Sleep(30),
        send("dy\r\n"),
        expect("EHLO"),
        send("250-mx.test\r\n250-PIPE"),
        Act::Sleep(30),
        send("LINING\r"),
        Act::Sleep(30),
        send("\n2"),
        Act::Sleep(30),
        send("50 8BITMIME\r\n"),
        expect("QUIT"),
        Act::Drip(b"221 bye\r\n".to_vec(), 10),
    ]);
    let mut s = client(3000);
    let g = s.connect("127.0.0.1", server.port).unwrap();
    assert_eq!((g.code, g.text.as_str()), (220, "mx.test\nready"));
    let r = s.ehlo(None).unwrap();
    assert_eq!(
        (r.code, r.text.as_str()),
        (250, "mx.test\nPIPELINING\n8BITMIME")
    );
    assert!(s.has_extn("PIPELINING") && s.has_extn("8BITMIME"));
    let r = s.quit().unwrap();
    assert_eq!((r.code, r.text.as_str()), (221, "bye"));
    server.finish();
}

// ---------------------------------------------------------------------------
// Through the C ABI
// ---------------------------------------------------------------------------

mod c_abi {
    use super::*;
    use smtpc::ffi::result::*;
    use smtpc::ffi::session::*;
    use smtpc::ffi::smtp_session;

    struct Handle(*mut smtp_session);

    impl Handle {
        fn new(timeout_ms: u32) -> Handle {
            let h = smtp_session_new();
            assert!(!h.is_null());
            let name = CString::new("client.test").unwrap();
            unsafe {
                assert_eq!(smtp_session_set_timeout_ms(h, timeout_ms), SMTPC_OK);
                assert_eq!(smtp_session_set_local_hostname(h, name.as_ptr()), SMTPC_OK);
            }
            Handle(h)
        }

        fn connect(&self, port: u16) -> (i32, String) {
            let host = CString::new("127.0.0.1").unwrap();
            let mut buf = [0x55 as c_char; 256];
            let rc = unsafe {
                smtp_session_connect(self.0, host.as_ptr(), port, buf.as_mut_ptr(), buf.len())
            };
            (rc, text(&buf))
        }

        fn noop(&self) -> (i32, String) {
            let mut buf = [0x55 as c_char; 256];
            let rc = unsafe { smtp_session_noop(self.0, buf.as_mut_ptr(), buf.len()) };
            (rc, text(&buf))
        }

        fn sendmail(&self, to: &[&str], msg: &[u8]) -> (i32, String) {
            let from = CString::new("a@x").unwrap();
            let to: Vec<CString> = to.iter().map(|t| CString::new(*t).unwrap()).collect();
            let ptrs: Vec<*const c_char> = to.iter().map(|t| t.as_ptr()).collect();
            let mut buf = [0x55 as c_char; 256];
            let rc = unsafe {
                smtp_session_sendmail(
                    self.0,
                    from.as_ptr(),
                    ptrs.as_ptr(),
                    ptrs.len(),
                    msg.as_ptr().cast(),
                    msg.len(),
                    buf.as_mut_ptr(),
                    buf.len(),
                )
            };
            (rc, text(&buf))
        }

        fn last_error(&self) -> String {
            let mut buf = [0x55 as c_char; 512];
            let n = unsafe { smtp_session_last_error(self.0, buf.as_mut_ptr(), buf.len()) };
            let t = text(&buf);
            assert_eq!(n, t.len(), "the full length is returned");
            t
        }

        fn last_reply(&self) -> String {
            let mut buf = [0x55 as c_char; 512];
            unsafe { smtp_session_last_reply(self.0, buf.as_mut_ptr(), buf.len()) };
            text(&buf)
        }

        fn last_code(&self) -> i32 {
            unsafe { smtp_session_last_code(self.0) }
        }

        fn rcpt_count(&self) -> usize {
            unsafe { smtp_session_rcpt_count(self.0) }
        }

        /// Every query still answers, and a later command is refused cleanly.
        fn assert_safe_after_failure(&self) {
            let _ = self.last_reply();
            let _ = self.last_code();
            let _ = self.rcpt_count();
            unsafe {
                let _ = smtp_session_failed_step(self.0);
                let ehlo = CString::new("EHLO").unwrap();
                assert_eq!(smtp_session_has_extn(self.0, ehlo.as_ptr()), 0);
            }
            let (rc, reply) = self.noop();
            assert_eq!(rc, SMTPC_E_STATE);
            assert_eq!(reply, "", "the reply buffer is emptied on failure");
            assert!(
                self.last_error().contains("not connected"),
                "{}",
                self.last_error()
            );
        }
    }

    impl Drop for Handle {
        fn drop(&mut self) {
            unsafe { smtp_session_free(self.0) };
        }
    }

    fn text(buf: &[c_char]) -> String {
        unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn scripted_server_1mb_reply_line_through_the_c_abi_is_smtpc_e_protocol() {
        let mut line = b"220 ".to_vec();
        line.extend(std::iter::repeat_n(b'a', 1 << 20));
        line.extend_from_slice(b"\r\n");
        let server = Server::start(vec![Act::Send(line), Act::Hold(3000)]);
        let h = Handle::new(3000);
        let (rc, reply) = h.connect(server.port);
        assert_eq!(rc, SMTPC_E_PROTOCOL);
        assert_eq!(reply, "");
        let msg = h.last_error();
        assert!(msg.contains("longer than 65536 bytes"), "{msg}");
        assert_eq!(h.last_code(), 0, "no reply was received");
        h.assert_safe_after_failure();
        drop(h);
        server.outcome();
    }

    #[test]
    fn scripted_server_silent_greeting_through_the_c_abi_is_smtpc_e_timeout() {
        let server = Server::start(vec![Act::Hold(4000)]);
        let h = Handle::new(300);
        let start = Instant::now();
        let (rc, _) = h.connect(server.port);
        assert_eq!(rc, SMTPC_E_TIMEOUT);
        assert_fired_in_time(start, 300);
        assert!(h.last_error().contains("timed out"), "{}", h.last_error());
        h.assert_safe_after_failure();
        drop(h);
        server.outcome();
    }

    #[test]
    fn scripted_server_closing_after_rcpt_through_the_c_abi_is_smtpc_e_closed() {
        let server = Server::start(lock_step_until(&[
            expect("MAIL"),
            send("250 sender ok\r\n"),
            expect("RCPT"),
            send("250 rcpt ok\r\n"),
            expect("RCPT"),
            Act::Close,
        ]));
        let h = Handle::new(3000);
        assert_eq!(h.connect(server.port).0, 220);
        let (rc, reply) = h.sendmail(&["b@y", "c@y"], b"hi\r\n");
        assert_eq!(rc, SMTPC_E_CLOSED);
        assert_eq!(reply, "");
        assert!(h.last_error().contains("closed"), "{}", h.last_error());
        assert_eq!(h.rcpt_count(), 1, "the first recipient's answer is kept");
        let mut buf = [0x55 as c_char; 64];
        let code = unsafe { smtp_session_rcpt_code(h.0, 0, buf.as_mut_ptr(), buf.len()) };
        assert_eq!((code, text(&buf).as_str()), (250, "rcpt ok"));
        h.assert_safe_after_failure();
        drop(h);
        server.finish();
    }

    #[test]
    fn scripted_server_greeting_554_through_the_c_abi_is_returned_then_state() {
        let server = Server::start(vec![send("554 no service\r\n"), Act::Hold(3000)]);
        let h = Handle::new(3000);
        let (rc, reply) = h.connect(server.port);
        assert_eq!((rc, reply.as_str()), (554, "no service"));
        assert_eq!(h.last_error(), "", "a refusal is an answer, not an error");
        assert_eq!(h.last_code(), 554);
        h.assert_safe_after_failure();
        drop(h);
        server.outcome();
    }

    #[test]
    fn scripted_server_refusing_every_rcpt_through_the_c_abi_reports_step_rcpt() {
        let server = Server::start(lock_step_until(&[
            expect("MAIL"),
            send("250 ok\r\n"),
            expect("RCPT"),
            send("550 no b\r\n"),
            expect("RCPT"),
            send("551 no c\r\n"),
            expect("RSET"),
            send("250 ok\r\n"),
            Act::Close,
        ]));
        let h = Handle::new(3000);
        assert_eq!(h.connect(server.port).0, 220);
        let (rc, reply) = h.sendmail(&["b@y", "c@y"], b"hi\r\n");
        assert_eq!((rc, reply.as_str()), (551, "no c"));
        assert_eq!(h.last_error(), "");
        assert_eq!(unsafe { smtp_session_failed_step(h.0) }, SMTPC_STEP_RCPT);
        assert_eq!(h.rcpt_count(), 2);
        let mut buf = [0 as c_char; 64];
        let code = unsafe { smtp_session_rcpt_code(h.0, 0, buf.as_mut_ptr(), buf.len()) };
        assert_eq!((code, text(&buf).as_str()), (550, "no b"));
        let code = unsafe { smtp_session_rcpt_code(h.0, 2, buf.as_mut_ptr(), buf.len()) };
        assert_eq!(code, SMTPC_E_INVALID);
        drop(h);
        server.finish();
    }
}

// ---------------------------------------------------------------------------
// Property: whatever the body, the wire stays safe
// ---------------------------------------------------------------------------

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn random_body(rng: &mut XorShift, max_len: usize) -> Vec<u8> {
    let len = (rng.next() % (max_len as u64 + 1)) as usize;
    (0..len)
        .map(|_| match rng.next() % 8 {
            0 | 1 => b'\r',
            2 | 3 => b'\n',
            4 | 5 => b'.',
            6 => b'a',
            _ => 0x80 | (rng.next() as u8),
        })
        .collect()
}

#[test]
fn scripted_server_property_random_bodies_reach_the_wire_crlf_clean_and_dot_stuffed() {
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let mut bodies: Vec<Vec<u8>> = (0..300).map(|_| random_body(&mut rng, 200)).collect();
    // Two bodies larger than the library's 256 KiB write piece, so that
    // piece boundaries fall at random places (inside CRLF, after a dot…).
    bodies.push(random_body(&mut XorShift(7), 700_000));
    bodies.push(random_body(&mut XorShift(11), 600_000));
    bodies.push(Vec::new());
    bodies.push(b".".to_vec());
    bodies.push(b"\r".to_vec());
    bodies.push(b"a\r\n.\r\n".to_vec());

    let mut acts = opening(EHLO_PIPE);
    for _ in &bodies {
        acts.extend([
            expect("MAIL FROM:<a@x>"),
            expect("RCPT TO:<b@y>"),
            expect("DATA"),
            send("250 ok\r\n250 ok\r\n354 go\r\n"),
            Act::Data,
            send("250 queued\r\n"),
        ]);
    }
    acts.extend([expect("QUIT"), send("221 bye\r\n")]);
    let server = Server::start(acts);
    let mut s = connect(&server);
    for (i, body) in bodies.iter().enumerate() {
        let r = s.sendmail("a@x", &["b@y"], body);
        assert_eq!(r.map(|r| r.code), Ok(250), "message {i}");
    }
    assert_eq!(s.quit().unwrap().code, 221);
    let out = server.finish();
    assert_eq!(out.data.len(), bodies.len());
    for (i, (wire, body)) in out.data.iter().zip(&bodies).enumerate() {
        let what = format!("message {i} ({} bytes)", body.len());
        let unstuffed = check_wire(wire, &what);
        assert!(
            unstuffed == normalized(body),
            "{what}: unstuffing does not give the CRLF-normalized input {:?}",
            &body[..body.len().min(200)]
        );
    }
}

/// None of the real servers here (Postfix, aiosmtpd, smtp-sink, Nodemailer)
/// offers BINARYMIME, so its accepting side is checked against a script:
/// BODY=BINARYMIME on MAIL, the body in BDAT chunks byte for byte (line
/// endings untouched, no dot-stuffing, no end marker).
#[test]
fn scripted_server_offering_binarymime_gets_the_body_untouched_over_bdat() {
    let body: &[u8] = b"\x00\x01bare lf\n.dot\rbare cr\r\n\xff\xfe";
    let header = format!("BDAT {} LAST\r\n", body.len());
    let ehlo = "250-mx.test\r\n250-CHUNKING\r\n250 BINARYMIME\r\n";
    let server = Server::start(script(&[
        &opening(ehlo),
        &[
            expect("MAIL FROM:<a@x> BODY=BINARYMIME"),
            send("250 ok\r\n"),
            expect("RCPT TO:<b@y>"),
            send("250 ok\r\n"),
            Act::ReadBytes(header.len() + body.len()),
            send("250 2.0.0 got it\r\n"),
        ],
    ]));
    let mut s = connect(&server);
    s.set_binarymime(true);
    let r = s.sendmail("a@x", &["b@y"], body).unwrap();
    assert_eq!((r.code, r.text.as_str()), (250, "2.0.0 got it"));
    s.close();
    let out = server.outcome();
    assert_eq!(out.failure, None);
    let mut wire = header.into_bytes();
    wire.extend_from_slice(body);
    assert!(out.got.ends_with(&wire), "{:?}", out.got_text());
}
