//! The message builder, `send_message` and DKIM, through the C API, checked
//! by independent code and real servers:
//!
//! * every rendered message is parsed back by Python's `email` package
//!   (`policy.default`, tests/message/mime_check.py): each header decodes
//!   to what was given, each part is byte-exact, the tree is as built;
//! * the same message goes through aiosmtpd (byte-exact capture) and a
//!   private Postfix (Maildir delivery); Bcc recipients get it, the Bcc
//!   field never arrives;
//! * `smtp_session_send_message_raw` is compared with Python's smtplib
//!   `send_message` on the same bytes (envelope and data);
//! * DKIM signatures are verified by dkimpy (the public key handed to it in
//!   place of DNS), as rendered and after Postfix delivered them;
//! * a 20 MB file attachment is sent from a child process whose peak RSS
//!   is read from /proc/self/status;
//! * bad input (header injection, unknown content type, missing file,
//!   invalid UTF-8) fails with a clear error and nothing reaches the server.

mod support;

use std::ffi::{c_char, c_void, CStr, CString, OsStr};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use smtpc::ffi::message::*;
use smtpc::ffi::result::*;
use smtpc::ffi::session::*;
use smtpc::ffi::smtp_session;

use support::*;

const WAIT: Duration = Duration::from_secs(30);

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

fn opt_ptr(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(std::ptr::null(), |c| c.as_ptr())
}

// ---------------------------------------------------------------------------
// C API wrappers
// ---------------------------------------------------------------------------

/// An `smtp_message*`, freed on drop.
struct CMsg(*mut smtp_message);

impl Drop for CMsg {
    fn drop(&mut self) {
        unsafe { smtp_message_free(self.0) }
    }
}

type MailboxFn = unsafe extern "C" fn(*mut smtp_message, *const c_char, *const c_char) -> i32;

impl CMsg {
    fn new() -> CMsg {
        let m = smtp_message_new();
        assert!(!m.is_null());
        CMsg(m)
    }

    fn error(&self) -> String {
        let mut buf = vec![0 as c_char; 1024];
        let n = unsafe { smtp_message_last_error(self.0, buf.as_mut_ptr(), buf.len()) };
        let s = unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        assert!(n < buf.len() && s.len() == n);
        s
    }

    /// Asserts `rc` is SMTPC_OK.
    fn ok(&self, rc: i32, what: &str) {
        assert_eq!(rc, SMTPC_OK, "{what}: {}", self.error());
        assert_eq!(self.error(), "", "{what}: a success clears last_error");
    }

    fn mailbox(&self, f: MailboxFn, addr: &str, name: Option<&str>) -> i32 {
        let (a, n) = (c(addr), name.map(c));
        unsafe { f(self.0, a.as_ptr(), opt_ptr(&n)) }
    }

    fn from(&self, addr: &str, name: Option<&str>) -> &Self {
        self.ok(self.mailbox(smtp_message_set_from, addr, name), "set_from");
        self
    }
    fn to(&self, addr: &str, name: Option<&str>) -> &Self {
        self.ok(self.mailbox(smtp_message_add_to, addr, name), "add_to");
        self
    }
    fn cc(&self, addr: &str, name: Option<&str>) -> &Self {
        self.ok(self.mailbox(smtp_message_add_cc, addr, name), "add_cc");
        self
    }
    fn bcc(&self, addr: &str, name: Option<&str>) -> &Self {
        self.ok(self.mailbox(smtp_message_add_bcc, addr, name), "add_bcc");
        self
    }
    fn subject(&self, s: &str) -> &Self {
        let s = c(s);
        self.ok(
            unsafe { smtp_message_set_subject(self.0, s.as_ptr()) },
            "subject",
        );
        self
    }
    fn header(&self, name: &str, value: &str) -> &Self {
        let (n, v) = (c(name), c(value));
        self.ok(
            unsafe { smtp_message_add_header(self.0, n.as_ptr(), v.as_ptr()) },
            "add_header",
        );
        self
    }
    fn text(&self, t: &str) -> &Self {
        self.ok(
            unsafe { smtp_message_set_text(self.0, t.as_ptr().cast(), t.len()) },
            "set_text",
        );
        self
    }
    fn html(&self, t: &str) -> &Self {
        self.ok(
            unsafe { smtp_message_set_html(self.0, t.as_ptr().cast(), t.len()) },
            "set_html",
        );
        self
    }
    fn attach(&self, data: &[u8], ct: Option<&str>, name: &str) -> &Self {
        let (ct, name) = (ct.map(c), c(name));
        self.ok(
            unsafe {
                smtp_message_attach(
                    self.0,
                    data.as_ptr().cast::<c_void>(),
                    data.len(),
                    opt_ptr(&ct),
                    name.as_ptr(),
                )
            },
            "attach",
        );
        self
    }
    fn attach_file_rc(&self, path: &Path, ct: Option<&str>, name: Option<&str>) -> i32 {
        let (p, ct, name) = (c(path.to_str().unwrap()), ct.map(c), name.map(c));
        unsafe { smtp_message_attach_file(self.0, p.as_ptr(), opt_ptr(&ct), opt_ptr(&name)) }
    }
    fn attach_file(&self, path: &Path, ct: Option<&str>, name: Option<&str>) -> &Self {
        self.ok(self.attach_file_rc(path, ct, name), "attach_file");
        self
    }
    fn inline(&self, data: &[u8], ct: &str, cid: &str) -> &Self {
        let (ct, cid) = (c(ct), c(cid));
        self.ok(
            unsafe {
                smtp_message_add_inline(
                    self.0,
                    data.as_ptr().cast::<c_void>(),
                    data.len(),
                    ct.as_ptr(),
                    cid.as_ptr(),
                )
            },
            "add_inline",
        );
        self
    }
    fn raw(&self, msg: &[u8]) -> &Self {
        self.ok(
            unsafe { smtp_message_set_raw(self.0, msg.as_ptr().cast(), msg.len()) },
            "set_raw",
        );
        self
    }
    fn dkim(&self, domain: &str, selector: &str, key_pem: &str, headers: Option<&str>) -> &Self {
        let (d, s, k, h) = (c(domain), c(selector), c(key_pem), headers.map(c));
        self.ok(
            unsafe {
                smtp_message_set_dkim(self.0, d.as_ptr(), s.as_ptr(), k.as_ptr(), opt_ptr(&h))
            },
            "set_dkim",
        );
        self
    }

    /// Renders snprintf-style: asks the size, then fetches it.
    fn render(&self) -> Vec<u8> {
        let n = unsafe { smtp_message_render(self.0, std::ptr::null_mut(), 0) };
        assert!(n > 0, "render failed: {}", self.error());
        let mut buf = vec![0x55u8; n + 1];
        let again = unsafe { smtp_message_render(self.0, buf.as_mut_ptr().cast(), buf.len()) };
        assert_eq!(again, n, "the same length the second time");
        assert_eq!(buf[n], 0, "NUL-terminated");
        buf.truncate(n);
        buf
    }
}

/// A session through the C API, its transcript kept.
struct CSession {
    s: *mut smtp_session,
    trace: Box<Mutex<Vec<String>>>,
}

unsafe extern "C" fn record_trace(user: *mut c_void, line: *const c_char) {
    let lines = &*(user as *const Mutex<Vec<String>>);
    lines
        .lock()
        .unwrap()
        .push(CStr::from_ptr(line).to_string_lossy().into_owned());
}

impl CSession {
    fn connect(port: u16) -> CSession {
        Self::open(port, true)
    }

    /// `traced`: keep the transcript (at debug level 1 it has the whole
    /// body, as smtplib's does).
    fn open(port: u16, traced: bool) -> CSession {
        let s = smtp_session_new();
        let trace = Box::new(Mutex::new(Vec::new()));
        unsafe {
            assert_eq!(smtp_session_set_timeout_ms(s, 30_000), SMTPC_OK);
            assert_eq!(smtp_session_set_debuglevel(s, i32::from(traced)), SMTPC_OK);
            let user = &*trace as *const Mutex<Vec<String>> as *mut c_void;
            assert_eq!(
                smtp_session_set_trace(s, Some(record_trace), user),
                SMTPC_OK
            );
            let host = c("127.0.0.1");
            let rc = smtp_session_connect(s, host.as_ptr(), port, std::ptr::null_mut(), 0);
            assert_eq!(rc, 220);
        }
        CSession { s, trace }
    }

    fn error(&self) -> String {
        let mut buf = vec![0 as c_char; 1024];
        unsafe { smtp_session_last_error(self.s, buf.as_mut_ptr(), buf.len()) };
        unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    /// The commands sent so far (the `send: '…'` transcript lines).
    fn sent(&self) -> Vec<String> {
        self.trace
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| l.split_once("send: '").map(|(_, r)| r.to_string()))
            .collect()
    }

    fn mail_commands(&self) -> usize {
        self.sent()
            .iter()
            .filter(|l| l.to_ascii_lowercase().starts_with("mail from:"))
            .count()
    }

    fn send(&self, m: &CMsg, from: Option<&str>, to: &[&str]) -> (i32, String) {
        let from = from.map(c);
        let to_c: Vec<CString> = to.iter().map(|t| c(t)).collect();
        let to_p: Vec<*const c_char> = to_c.iter().map(|t| t.as_ptr()).collect();
        let mut reply = vec![0 as c_char; 512];
        let rc = unsafe {
            smtp_session_send_message(
                self.s,
                m.0,
                opt_ptr(&from),
                if to_p.is_empty() {
                    std::ptr::null()
                } else {
                    to_p.as_ptr()
                },
                to_p.len(),
                reply.as_mut_ptr(),
                reply.len(),
            )
        };
        let text = unsafe { CStr::from_ptr(reply.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        (rc, text)
    }

    fn send_raw(&self, msg: &[u8], from: Option<&str>, to: &[&str]) -> i32 {
        let from = from.map(c);
        let to_c: Vec<CString> = to.iter().map(|t| c(t)).collect();
        let to_p: Vec<*const c_char> = to_c.iter().map(|t| t.as_ptr()).collect();
        unsafe {
            smtp_session_send_message_raw(
                self.s,
                msg.as_ptr().cast(),
                msg.len(),
                opt_ptr(&from),
                to_p.as_ptr(),
                to_p.len(),
                std::ptr::null_mut(),
                0,
            )
        }
    }

    fn quit(&self) {
        unsafe { smtp_session_quit(self.s, std::ptr::null_mut(), 0) };
    }
}

impl Drop for CSession {
    fn drop(&mut self) {
        unsafe { smtp_session_free(self.s) }
    }
}

// ---------------------------------------------------------------------------
// Python checks
// ---------------------------------------------------------------------------

fn python() -> PathBuf {
    let py = repo_root().join(".venv/bin/python");
    assert!(
        py.exists(),
        "{} missing: run scripts/install-deps.sh",
        py.display()
    );
    py
}

fn mime_check<I: AsRef<OsStr>>(args: &[I]) -> std::process::Output {
    Command::new(python())
        .arg(repo_root().join("tests/message/mime_check.py"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run mime_check.py")
}

fn py_ok<I: AsRef<OsStr>>(args: &[I]) -> String {
    let out = mime_check(args);
    assert!(
        out.status.success(),
        "mime_check.py failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Python's view of a message (see mime_check.py `parse`).
fn parse(dir: &Path, name: &str, bytes: &[u8]) -> Json {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    Json::parse(&py_ok(&[OsStr::new("parse"), path.as_os_str()])).unwrap()
}

fn s(j: &Json) -> &str {
    j.as_str().unwrap_or_else(|| panic!("not a string: {j:?}"))
}

fn arr(j: &Json) -> &Vec<Json> {
    j.as_array()
        .unwrap_or_else(|| panic!("not an array: {j:?}"))
}

/// The decoded value of header `name` (all of them, in order).
fn header_values(p: &Json, name: &str) -> Vec<String> {
    arr(p.get("headers").unwrap())
        .iter()
        .filter(|h| s(&arr(h)[0]).eq_ignore_ascii_case(name))
        .map(|h| s(&arr(h)[1]).to_string())
        .collect()
}

fn addresses(p: &Json, field: &str) -> Vec<(String, String)> {
    p.get("addresses")
        .unwrap()
        .get(field)
        .map(|l| {
            arr(l)
                .iter()
                .map(|a| (s(&arr(a)[0]).to_string(), s(&arr(a)[1]).to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn sha256_hex(data: &[u8]) -> String {
    // Python computes the parts' hashes; the expected ones come from the
    // same tool for the bytes we gave.
    let out = Command::new(python())
        .args([
            "-c",
            "import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut ch| {
            ch.stdin.take().unwrap().write_all(data)?;
            ch.wait_with_output()
        })
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn crlf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\n', "\r\n")
}

/// A leaf of Python's tree: type, and (for leaves) decoded length + hash.
fn leaf_summary(node: &Json) -> (String, Option<String>, Option<String>, usize, String) {
    (
        s(node.get("type").unwrap()).to_string(),
        node.get("filename")
            .and_then(|f| f.as_str())
            .map(str::to_string),
        node.get("cid").and_then(|f| f.as_str()).map(str::to_string),
        node.get("len").and_then(|l| l.as_f64()).unwrap_or(-1.0) as usize,
        node.get("sha256")
            .and_then(|h| h.as_str())
            .unwrap_or("")
            .to_string(),
    )
}

/// The tree as "type(child,child)" for structure checks.
fn shape(node: &Json) -> String {
    let t = s(node.get("type").unwrap()).to_string();
    match node.get("children") {
        Some(ch) => format!(
            "{t}({})",
            arr(ch).iter().map(shape).collect::<Vec<_>>().join(",")
        ),
        None => t,
    }
}

fn leaves(node: &Json) -> Vec<&Json> {
    match node.get("children") {
        Some(ch) => arr(ch).iter().flat_map(leaves).collect(),
        None => vec![node],
    }
}

// ---------------------------------------------------------------------------
// the rich message
// ---------------------------------------------------------------------------

struct Rich {
    subject: String,
    text: String,
    html: String,
    binary: Vec<u8>,
    csv: Vec<u8>,
    png: Vec<u8>,
    file: Vec<u8>,
    long_name: String,
    x_long: String,
    x_unicode: String,
    x_token: String,
    x_looks_encoded: String,
}

fn rich(dir: &Path) -> (CMsg, Rich) {
    let r = Rich {
        subject: "Grüße aus Köln — 東京の天気は晴れ — Ça va très bien, merci beaucoup ! \
                  Ünïcödé subjects fold over several encoded words without losing a byte ☃"
            .to_string(),
        text: format!(
            "Grüße aus Köln!\n.a line that starts with a dot\nFrom the start of a line\n\
             {}\ntrailing spaces   \n\tand a tab\nend without newline",
            "x".repeat(2000)
        ),
        html: "<html><body><p>Héllo <b>wörld</b> <img src=\"cid:logo@example.org\"></p>\n</body></html>\n"
            .to_string(),
        binary: (0..256u32).cycle().take(256 * 41).map(|b| b as u8).collect(),
        csv: b"name,amount\r\nalice,10\r\nbob,20\r\n".to_vec(),
        png: b"\x89PNG\r\n\x1a\n\0\0\0\rIHDRfake-image-bytes\x00\xff".to_vec(),
        file: (0..70_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect(),
        long_name: "données binaires – résumé très long du trimestre pour tester les \
                    suites RFC 2231 (version finale).bin"
            .to_string(),
        x_long: "word ".repeat(60).trim_end().to_string(),
        x_unicode: "naïve café — 東京 ☃ and some ASCII after it".to_string(),
        x_token: "t".repeat(150),
        x_looks_encoded: "not =?utf-8?q?encoded?= at all".to_string(),
    };
    let path = dir.join("report.pdf");
    std::fs::write(&path, &r.file).unwrap();
    let m = CMsg::new();
    m.from("zoe@example.org", Some("Zoë Ünal-Émile"))
        .to("ann@example.org", Some("Ann \"the\" Smith, Jr."))
        .to("bob@example.org", None)
        .to("li@example.org", Some("李小龙"))
        .cc("orjan@example.org", Some("Ørjan"))
        .bcc("hidden@example.org", Some("Hidden Person"))
        .subject(&r.subject)
        .header("X-Long-Ascii", &r.x_long)
        .header("X-Unicode", &r.x_unicode)
        .header("X-Token", &r.x_token)
        .header("X-Looks-Encoded", &r.x_looks_encoded)
        .header("Comments", "first")
        .header("Comments", "second")
        .text(&r.text)
        .html(&r.html)
        .inline(&r.png, "image/png", "<logo@example.org>")
        .attach(&r.binary, None, &r.long_name)
        .attach(&r.csv, Some("text/csv; charset=utf-8"), "table.csv")
        .attach_file(&path, Some("application/pdf"), None);
    m.ok(
        m.mailbox(
            smtp_message_add_reply_to,
            "replies@example.org",
            Some("Replies"),
        ),
        "reply_to",
    );
    (m, r)
}

/// Asserts Python decodes `p` (the rich message as rendered or received)
/// to exactly what `rich` built.
fn check_rich(p: &Json, r: &Rich, more_to: &[(&str, &str)]) {
    assert!(
        arr(p.get("defects").unwrap()).is_empty(),
        "Python found defects: {:?}",
        p.get("defects")
    );
    let max_line = p.get("max_line").unwrap().as_f64().unwrap();
    assert!(max_line <= 998.0, "a line of {max_line} octets");
    assert_eq!(header_values(p, "Subject"), [r.subject.as_str()]);
    assert_eq!(header_values(p, "X-Long-Ascii"), [r.x_long.as_str()]);
    assert_eq!(header_values(p, "X-Unicode"), [r.x_unicode.as_str()]);
    assert_eq!(header_values(p, "X-Token"), [r.x_token.as_str()]);
    assert_eq!(
        header_values(p, "X-Looks-Encoded"),
        [r.x_looks_encoded.as_str()]
    );
    assert_eq!(header_values(p, "Comments"), ["first", "second"]);
    assert_eq!(header_values(p, "MIME-Version"), ["1.0"]);
    assert_eq!(header_values(p, "Date").len(), 1);
    assert_eq!(header_values(p, "Message-ID").len(), 1);
    assert!(header_values(p, "Bcc").is_empty(), "Bcc must not be sent");
    let own = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        addresses(p, "From"),
        [own("Zoë Ünal-Émile", "zoe@example.org")]
    );
    let mut to = vec![
        own("Ann \"the\" Smith, Jr.", "ann@example.org"),
        own("", "bob@example.org"),
        own("李小龙", "li@example.org"),
    ];
    to.extend(more_to.iter().map(|(n, a)| own(n, a)));
    assert_eq!(addresses(p, "To"), to);
    assert_eq!(addresses(p, "Cc"), [own("Ørjan", "orjan@example.org")]);
    assert_eq!(
        addresses(p, "Reply-To"),
        [own("Replies", "replies@example.org")]
    );
    let tree = p.get("tree").unwrap();
    assert_eq!(
        shape(tree),
        "multipart/mixed(multipart/alternative(text/plain,multipart/related(text/html,image/png)),\
         application/octet-stream,text/csv,application/pdf)"
    );
    let l = leaves(tree);
    assert_eq!(s(l[0].get("text").unwrap()), crlf(&r.text));
    assert_eq!(s(l[1].get("text").unwrap()), crlf(&r.html));
    let expect = [
        ("image/png", None, Some("<logo@example.org>"), &r.png),
        (
            "application/octet-stream",
            Some(r.long_name.as_str()),
            None,
            &r.binary,
        ),
        ("text/csv", Some("table.csv"), None, &r.csv),
        ("application/pdf", Some("report.pdf"), None, &r.file),
    ];
    for (node, (ty, name, cid, data)) in l[2..].iter().zip(expect) {
        let (t, f, id, len, hash) = leaf_summary(node);
        assert_eq!(t, ty);
        assert_eq!(f.as_deref(), name, "{ty} file name");
        assert_eq!(id.as_deref(), cid, "{ty} Content-ID");
        assert_eq!(len, data.len(), "{ty} length");
        assert_eq!(hash, sha256_hex(data), "{ty} bytes");
    }
    assert_eq!(
        s(l[0].get("cte").unwrap()),
        "quoted-printable",
        "non-ASCII text with a 2000-octet line"
    );
    assert_eq!(s(l[2].get("cte").unwrap()), "base64");
    assert_eq!(
        s(l[4].get("cte").unwrap()),
        "7bit",
        "clean CRLF csv stays 7bit"
    );
}

// ---------------------------------------------------------------------------
// tests
// ---------------------------------------------------------------------------

#[test]
fn rendered_messages_decode_in_python_to_exactly_what_was_built() {
    let dir = TempDir::new("msg-render");
    let (m, r) = rich(dir.path());
    let bytes = m.render();
    assert_eq!(
        bytes,
        m.render(),
        "rendering is stable (Date, Message-ID, boundaries)"
    );
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(!text.contains("Hidden"), "no Bcc in what is rendered");
    check_rich(&parse(dir.path(), "rich.eml", &bytes), &r, &[]);

    // snprintf-style: a short buffer gets a NUL-terminated prefix and the
    // full length back.
    let mut small = [0x55u8; 17];
    let n = unsafe { smtp_message_render(m.0, small.as_mut_ptr().cast(), small.len()) };
    assert_eq!(n, bytes.len());
    assert_eq!(&small[..16], &bytes[..16]);
    assert_eq!(small[16], 0);

    // One body each: no multipart; 7bit ASCII; base64 for mostly non-ASCII.
    let plain = CMsg::new();
    plain
        .from("a@example.org", None)
        .to("b@example.org", None)
        .subject("plain")
        .text("just ASCII\n");
    let p = parse(dir.path(), "plain.eml", &plain.render());
    assert_eq!(shape(p.get("tree").unwrap()), "text/plain");
    assert_eq!(s(p.get("tree").unwrap().get("cte").unwrap()), "7bit");
    assert_eq!(
        s(p.get("tree").unwrap().get("text").unwrap()),
        "just ASCII\r\n"
    );
    let cjk = "日本語のテキストだけで書かれた本文です。".repeat(20);
    let html_only = CMsg::new();
    html_only
        .from("a@example.org", None)
        .to("b@example.org", None)
        .html(&cjk);
    let p = parse(dir.path(), "cjk.eml", &html_only.render());
    assert_eq!(shape(p.get("tree").unwrap()), "text/html");
    assert_eq!(s(p.get("tree").unwrap().get("cte").unwrap()), "base64");
    assert_eq!(s(p.get("tree").unwrap().get("text").unwrap()), cjk);

    // An inline part from a file, with the HTML it belongs to.
    let gif: Vec<u8> = b"GIF89a"
        .iter()
        .copied()
        .chain((0..5000u32).map(|i| (i * 31) as u8))
        .collect();
    let gif_path = dir.path().join("pixel.gif");
    std::fs::write(&gif_path, &gif).unwrap();
    let (p_c, ct, cid) = (
        c(gif_path.to_str().unwrap()),
        c("image/gif"),
        c("pixel@example.org"),
    );
    let inl = CMsg::new();
    inl.from("a@example.org", None)
        .to("b@example.org", None)
        .html("<img src=\"cid:pixel@example.org\">");
    inl.ok(
        unsafe { smtp_message_add_inline_file(inl.0, p_c.as_ptr(), ct.as_ptr(), cid.as_ptr()) },
        "add_inline_file",
    );
    let p = parse(dir.path(), "inline.eml", &inl.render());
    let tree = p.get("tree").unwrap();
    assert_eq!(shape(tree), "multipart/related(text/html,image/gif)");
    let (ty, _, id, len, hash) = leaf_summary(leaves(tree)[1]);
    assert_eq!(
        (ty.as_str(), id.as_deref()),
        ("image/gif", Some("<pixel@example.org>"))
    );
    assert_eq!((len, hash), (gif.len(), sha256_hex(&gif)));

    // A date and message id given are used as given.
    let dated = CMsg::new();
    dated
        .from("a@example.org", None)
        .to("b@example.org", None)
        .header("Date", "Mon, 2 Dec 2024 10:00:00 +0100")
        .header("Message-ID", "<fixed.1@example.org>")
        .header("Resent-Date", "Tue, 3 Dec 2024 10:00:00 +0000");
    let p = parse(dir.path(), "dated.eml", &dated.render());
    assert_eq!(
        header_values(&p, "Date"),
        ["Mon, 02 Dec 2024 10:00:00 +0100"]
    );
    assert_eq!(header_values(&p, "Message-ID"), ["<fixed.1@example.org>"]);
}

const ALICE: &[(&str, &str)] = &[("Älice", "alice@example.test")];

#[test]
fn the_same_message_arrives_intact_through_aiosmtpd_and_postfix_and_bcc_never_arrives() {
    let dir = TempDir::new("msg-deliver");
    let (m, r) = rich(dir.path());
    // Postfix delivers example.test mailboxes: alice in To, bob only in Bcc.
    m.to("alice@example.test", Some("Älice"))
        .bcc("bob@example.test", None);
    let rendered = m.render();
    let pf = Postfix::start();
    let aio = Aiosmtpd::start(AioOpts::default());

    let sess = CSession::connect(aio.port);
    let (rc, _) = sess.send(&m, None, &[]);
    assert_eq!(rc, 250, "{}", sess.error());
    sess.quit();
    let got = aio.wait_messages(1, WAIT).remove(0);
    assert_eq!(got.mail_from, "zoe@example.org");
    assert_eq!(
        got.rcpt_tos,
        [
            "ann@example.org",
            "bob@example.org",
            "li@example.org",
            "alice@example.test",
            "hidden@example.org",
            "bob@example.test",
            "orjan@example.org"
        ],
        "smtplib's order: To, then Bcc, then Cc"
    );
    assert_eq!(got.data, rendered, "aiosmtpd received the rendered bytes");
    check_rich(&parse(dir.path(), "aio.eml", &got.data), &r, ALICE);

    let sess = CSession::connect(pf.submit);
    let (rc, _) = sess.send(&m, None, &[]);
    assert_eq!(rc, 250, "{}", sess.error());
    sess.quit();
    for user in ["alice", "bob"] {
        let mail = pf.wait_delivered(user, 1, WAIT).remove(0);
        let body = lf_to_crlf(strip_trace_headers(&mail));
        assert_eq!(
            String::from_utf8_lossy(&body),
            String::from_utf8_lossy(&rendered),
            "{user} got the message intact"
        );
        let p = parse(dir.path(), &format!("{user}.eml"), &body);
        check_rich(&p, &r, ALICE);
        assert!(!String::from_utf8_lossy(&mail).contains("Bcc"));
    }
}

#[test]
fn a_20_mb_file_attachment_is_sent_with_constant_memory() {
    const CHILD: &str = "SMTPC_MESSAGE_RSS_CHILD";
    if std::env::var_os(CHILD).is_some() {
        return rss_child();
    }
    let dir = TempDir::new("msg-20mb");
    let path = dir.path().join("big.bin");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut x: u32 = 1;
    let mut chunk = vec![0u8; 1 << 16];
    for _ in 0..(20 << 20) / chunk.len() {
        for b in chunk.iter_mut() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        f.write_all(&chunk).unwrap();
    }
    f.flush().unwrap();
    drop(f);
    let aio = Aiosmtpd::start(AioOpts::default());
    // The child is this test binary running only this test, as a separate
    // process, so its peak RSS is the send's alone.
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_20_mb_file_attachment_is_sent_with_constant_memory",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .env("SMTPC_MESSAGE_RSS_PORT", aio.port.to_string())
        .env("SMTPC_MESSAGE_RSS_FILE", &path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let growth_kib: u64 = stdout
        .lines()
        .find_map(|l| l.split_once("RSS-GROWTH-KIB=").map(|(_, n)| n))
        .unwrap_or_else(|| panic!("no RSS line in:\n{stdout}"))
        .trim()
        .parse()
        .unwrap();
    println!("peak RSS growth while sending 20 MiB: {growth_kib} KiB");
    assert!(
        growth_kib < 8 * 1024,
        "peak RSS grew by {growth_kib} KiB (limit 8 MiB)"
    );

    let got = aio.wait_messages(1, WAIT).remove(0);
    let size = got
        .mail_options
        .iter()
        .find_map(|o| o.strip_prefix("SIZE="))
        .expect("SIZE= announced");
    assert_eq!(
        size,
        got.data.len().to_string(),
        "the exact size is announced"
    );
    let p = parse(dir.path(), "big.eml", &got.data);
    let l = leaves(p.get("tree").unwrap());
    let (ty, name, _, len, hash) = leaf_summary(l[1]);
    assert_eq!(
        (ty.as_str(), name.as_deref()),
        ("application/octet-stream", Some("big.bin"))
    );
    assert_eq!(len, 20 << 20);
    let want = Command::new(python())
        .args([
            "-c",
            "import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],'rb').read()).hexdigest())",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(hash, String::from_utf8_lossy(&want.stdout).trim());
}

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

fn rss_child() {
    let port: u16 = std::env::var("SMTPC_MESSAGE_RSS_PORT")
        .unwrap()
        .parse()
        .unwrap();
    let path = PathBuf::from(std::env::var_os("SMTPC_MESSAGE_RSS_FILE").unwrap());
    let sess = CSession::open(port, false);
    let before = vm_hwm_kib();
    let m = CMsg::new();
    m.from("big@example.org", None)
        .to("rcpt@example.org", None)
        .subject("twenty megabytes")
        .text("The attachment is streamed.\n")
        .attach_file(&path, None, None);
    let (rc, _) = sess.send(&m, None, &[]);
    assert_eq!(rc, 250, "{}", sess.error());
    let after = vm_hwm_kib();
    sess.quit();
    println!("RSS-GROWTH-KIB={}", after.saturating_sub(before));
}

/// A raw message smtplib and libsmtpc both send: header folding, Sender,
/// Bcc with a continuation line, a dot line.
const RAW_PLAIN: &[u8] = b"From: Ann Author <ann@example.org>\r\n\
Sender: Sam Sender <sam@example.org>\r\n\
To: Bob <bob@example.org>, carol@example.org\r\n\
Cc: \"Dave, D.\" <dave@example.org>\r\n\
Bcc: erin@example.org,\r\n frank@example.org\r\n\
Subject: the same message twice\r\n\
Message-ID: <raw-1@example.org>\r\n\
Date: Mon, 2 Dec 2024 10:00:00 +0000\r\n\
\r\n\
Hello,\r\n\
.this line starts with a dot\r\n\
bye\r\n";

const RAW_RESENT: &[u8] = b"From: ann@example.org\r\n\
To: bob@example.org\r\n\
Subject: forwarded\r\n\
Resent-Date: Tue, 3 Dec 2024 10:00:00 +0000\r\n\
Resent-From: Rita <rita@example.org>\r\n\
Resent-To: ursula@example.org, victor@example.org\r\n\
Resent-Cc: wendy@example.org\r\n\
Resent-Bcc: xavier@example.org\r\n\
\r\n\
body\r\n";

const RAW_TWO_RESENT: &[u8] = b"From: ann@example.org\r\n\
To: bob@example.org\r\n\
Resent-Date: Tue, 3 Dec 2024 10:00:00 +0000\r\n\
Resent-To: ursula@example.org\r\n\
Resent-Date: Wed, 4 Dec 2024 10:00:00 +0000\r\n\
Resent-To: victor@example.org\r\n\
\r\n\
body\r\n";

#[test]
fn send_message_raw_matches_smtplib_send_message() {
    let dir = TempDir::new("msg-smtplib");
    let py_aio = Aiosmtpd::start(AioOpts::default());
    let our_aio = Aiosmtpd::start(AioOpts::default());
    for (i, raw) in [RAW_PLAIN, RAW_RESENT].iter().enumerate() {
        let path = dir.path().join(format!("raw{i}.eml"));
        std::fs::write(&path, raw).unwrap();
        py_ok(&[
            OsStr::new("smtplib"),
            OsStr::new("127.0.0.1"),
            OsStr::new(&py_aio.port.to_string()),
            path.as_os_str(),
        ]);
        let sess = CSession::connect(our_aio.port);
        assert_eq!(sess.send_raw(raw, None, &[]), 250, "{}", sess.error());
        sess.quit();
        let theirs = py_aio.wait_messages(i + 1, WAIT).remove(i);
        let ours = our_aio.wait_messages(i + 1, WAIT).remove(i);
        assert_eq!(ours.mail_from, theirs.mail_from, "message {i}: sender");
        assert_eq!(ours.rcpt_tos, theirs.rcpt_tos, "message {i}: recipients");
        assert_eq!(
            String::from_utf8_lossy(&ours.data),
            String::from_utf8_lossy(&theirs.data),
            "message {i}: bytes"
        );
        assert!(!String::from_utf8_lossy(&ours.data).contains("Bcc"));
    }
    let first = our_aio.messages().remove(0);
    assert_eq!(first.mail_from, "sam@example.org", "Sender wins over From");
    assert_eq!(
        first.rcpt_tos,
        [
            "bob@example.org",
            "carol@example.org",
            "erin@example.org",
            "frank@example.org",
            "dave@example.org"
        ]
    );
    let second = our_aio.messages().remove(1);
    assert_eq!(second.mail_from, "rita@example.org");
    assert_eq!(
        second.rcpt_tos,
        [
            "ursula@example.org",
            "victor@example.org",
            "xavier@example.org",
            "wendy@example.org"
        ]
    );

    // Two Resent blocks: smtplib raises ValueError, we refuse, nothing sent.
    let path = dir.path().join("two.eml");
    std::fs::write(&path, RAW_TWO_RESENT).unwrap();
    let out = mime_check(&[
        OsStr::new("smtplib"),
        OsStr::new("127.0.0.1"),
        OsStr::new(&py_aio.port.to_string()),
        path.as_os_str(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("more than one 'Resent-' header block"));
    let sess = CSession::connect(our_aio.port);
    assert_eq!(sess.send_raw(RAW_TWO_RESENT, None, &[]), SMTPC_E_INVALID);
    assert!(sess.error().contains("Resent"), "{}", sess.error());
    // The caller's envelope: used as given, Bcc still removed.
    assert_eq!(
        sess.send_raw(RAW_PLAIN, Some("given@example.org"), &["only@example.org"]),
        250
    );
    assert_eq!(sess.mail_commands(), 1, "nothing sent for the refused one");
    sess.quit();
    let last = our_aio.wait_messages(3, WAIT).remove(2);
    assert_eq!(last.mail_from, "given@example.org");
    assert_eq!(last.rcpt_tos, ["only@example.org"]);
    assert!(!String::from_utf8_lossy(&last.data).contains("erin"));
}

/// An RSA (PKCS#8 and PKCS#1) and an Ed25519 key made with openssl, and
/// their DNS TXT records.
struct Keys {
    rsa8: String,
    rsa1: String,
    ed: String,
    rsa_txt: String,
    ed_txt: String,
}

fn openssl(args: &[&str], dir: &Path) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn b64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn keys(dir: &Path) -> Keys {
    openssl(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "rsa.pem",
        ],
        dir,
    );
    openssl(
        &["pkey", "-in", "rsa.pem", "-traditional", "-out", "rsa1.pem"],
        dir,
    );
    openssl(&["genpkey", "-algorithm", "ed25519", "-out", "ed.pem"], dir);
    let rsa_pub = openssl(
        &["pkey", "-in", "rsa.pem", "-pubout", "-outform", "DER"],
        dir,
    );
    let ed_pub = openssl(
        &["pkey", "-in", "ed.pem", "-pubout", "-outform", "DER"],
        dir,
    );
    let read = |n: &str| std::fs::read_to_string(dir.join(n)).unwrap();
    let k = Keys {
        rsa8: read("rsa.pem"),
        rsa1: read("rsa1.pem"),
        ed: read("ed.pem"),
        rsa_txt: format!("v=DKIM1; k=rsa; p={}", b64(&rsa_pub)),
        // The raw 32-byte key ends the SubjectPublicKeyInfo (RFC 8463).
        ed_txt: format!(
            "v=DKIM1; k=ed25519; p={}",
            b64(&ed_pub[ed_pub.len() - 32..])
        ),
    };
    assert!(k.rsa8.contains("BEGIN PRIVATE KEY"));
    assert!(k.rsa1.contains("BEGIN RSA PRIVATE KEY"));
    k
}

/// Messages for dkimpy, checked in one run of Python.
struct DkimBatch<'d> {
    dir: &'d Path,
    items: Vec<(String, String, Vec<bool>)>,
}

impl<'d> DkimBatch<'d> {
    fn new(dir: &'d Path) -> Self {
        DkimBatch {
            dir,
            items: Vec::new(),
        }
    }

    /// Queues `msg` (signed by example.org/sel1) with the verdicts wanted.
    fn add(&mut self, name: &str, msg: &[u8], txt: &str, want: &[bool]) {
        let path = self.dir.join(format!("{name}.eml"));
        std::fs::write(&path, msg).unwrap();
        let line = format!("{}\texample.org\tsel1\t{txt}\n", path.display());
        self.items.push((name.to_string(), line, want.to_vec()));
    }

    /// dkimpy's verdicts, each asserted to be the one wanted.
    fn check(self) {
        let manifest = self.dir.join("dkim-manifest.tsv");
        let lines: String = self.items.iter().map(|(_, l, _)| l.as_str()).collect();
        std::fs::write(&manifest, lines).unwrap();
        let out = py_ok(&[OsStr::new("dkim"), manifest.as_os_str()]);
        let j = Json::parse(&out).unwrap();
        let results = arr(&j);
        assert_eq!(results.len(), self.items.len());
        for ((name, _, want), r) in self.items.iter().zip(results) {
            let got: Vec<bool> = arr(r.get("results").unwrap())
                .iter()
                .map(|b| b.as_bool().unwrap())
                .collect();
            assert_eq!(
                &got,
                want,
                "dkimpy on {name}; its log:\n{}",
                s(r.get("log").unwrap())
            );
        }
    }
}

#[test]
fn dkim_signatures_verify_with_dkimpy_before_and_after_postfix() {
    let dir = TempDir::new("msg-dkim");
    let k = keys(dir.path());
    let pf = Postfix::start();
    let cases = [
        ("rsa-pkcs8", &k.rsa8, &k.rsa_txt, "rsa-sha256"),
        ("rsa-pkcs1", &k.rsa1, &k.rsa_txt, "rsa-sha256"),
        ("ed25519", &k.ed, &k.ed_txt, "ed25519-sha256"),
    ];
    let attachment: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let file = dir.path().join("data.bin");
    std::fs::write(&file, &attachment).unwrap();
    let sess = CSession::connect(pf.submit);
    let mut rendered = DkimBatch::new(dir.path());
    for (name, key, txt, alg) in &cases {
        let m = CMsg::new();
        m.from("signer@example.org", Some("Sígner"))
            .to("alice@example.test", None)
            .bcc("bob@example.test", None)
            .subject(&format!("DKIM {name}: Grüße"))
            .text("Signed text\n\n")
            .html("<p>signed</p>")
            .attach_file(&file, None, None)
            .dkim("example.org", "sel1", key, None);
        let bytes = m.render();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        assert!(text.starts_with("DKIM-Signature: "), "signature on top");
        assert!(text.contains(&format!("a={alg};")), "{alg}");
        assert!(text.contains("c=relaxed/relaxed"));
        assert!(text.contains("d=example.org") && text.contains("s=sel1"));
        rendered.add(name, &bytes, txt, &[true]);
        // A changed header or body must fail: the check can fail.
        for (what, from, to) in [
            ("header", "To: <alice@", "To: <alicf@"),
            ("body", "Signed text", "Signed TEXT"),
        ] {
            assert!(text.contains(from), "{from:?} in {text}");
            let forged = text.replacen(from, to, 1);
            rendered.add(
                &format!("{name}-forged-{what}"),
                forged.as_bytes(),
                txt,
                &[false],
            );
        }
        let (rc, _) = sess.send(&m, None, &[]);
        assert_eq!(rc, 250, "{}", sess.error());
    }
    // A raw message, signed with an explicit header list; its body ends in
    // white-space-only lines (relaxed canonicalization ignores them).
    let raw = b"From: Raw <raw@example.org>\nTo: alice@example.test\nSubject: raw and signed\n\
                Bcc: bob@example.test\n\nline one\n  \n\t\n";
    let m = CMsg::new();
    m.raw(raw)
        .dkim("example.org", "sel1", &k.ed, Some("From:To:Subject"));
    let bytes = m.render();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    assert!(!text.contains("Bcc"), "{text}");
    assert!(
        text.contains("h=From:To:Subject") || text.contains("h=Subject:To:From"),
        "{text}"
    );
    rendered.add("raw", &bytes, &k.ed_txt, &[true]);
    let (rc, _) = sess.send(&m, None, &[]);
    assert_eq!(rc, 250, "{}", sess.error());
    sess.quit();
    rendered.check();

    // After Postfix: alice got the four in To, bob the four as Bcc.
    let mut delivered = DkimBatch::new(dir.path());
    for user in ["alice", "bob"] {
        let got = pf.wait_delivered(user, 4, WAIT);
        for (i, mail) in got.iter().enumerate() {
            let txt = if i == 0 || i == 1 {
                &k.rsa_txt
            } else {
                &k.ed_txt
            };
            delivered.add(&format!("{user}-{i}"), &lf_to_crlf(mail), txt, &[true]);
        }
    }
    delivered.check();
}

#[test]
fn utf8_addresses_go_with_smtputf8_and_decode_in_python() {
    let dir = TempDir::new("msg-utf8");
    let aio = Aiosmtpd::start(AioOpts::default());
    let m = CMsg::new();
    m.from("jösé@bücher.example", Some("José"))
        .to("用户@例子.广告", None)
        .subject("SMTPUTF8");
    m.text("hi\n");
    let sess = CSession::connect(aio.port);
    let (rc, _) = sess.send(&m, None, &[]);
    assert_eq!(rc, 250, "{}", sess.error());
    sess.quit();
    let got = aio.wait_messages(1, WAIT).remove(0);
    assert!(got.smtp_utf8, "SMTPUTF8 asked for");
    assert_eq!(got.mail_from, "jösé@bücher.example");
    assert_eq!(got.rcpt_tos, ["用户@例子.广告"]);
    let p = parse(dir.path(), "utf8.eml", &got.data);
    assert_eq!(
        addresses(&p, "From"),
        [("José".to_string(), "jösé@bücher.example".to_string())]
    );
    assert_eq!(addresses(&p, "To")[0].1, "用户@例子.广告");
}

#[test]
fn bad_input_gets_a_clear_error_and_nothing_is_sent() {
    let dir = TempDir::new("msg-bad");
    let m = CMsg::new();
    let check = |rc: i32, want: i32, needle: &str| {
        assert_eq!(
            rc,
            want,
            "wanted {want} ({needle}), got {rc}: {}",
            m.error()
        );
        assert!(
            m.error().contains(needle),
            "last_error {:?} lacks {needle:?}",
            m.error()
        );
    };
    // Header injection, everywhere header text goes.
    check(
        m.mailbox(
            smtp_message_set_from,
            "a@example.org",
            Some("Eve\r\nBcc: x@example.org"),
        ),
        SMTPC_E_INVALID,
        "forbidden character (CR)",
    );
    check(
        m.mailbox(
            smtp_message_add_to,
            "a@example.org\nBcc: x@example.org",
            None,
        ),
        SMTPC_E_INVALID,
        "LF",
    );
    check(
        m.mailbox(smtp_message_add_cc, "not an address", None),
        SMTPC_E_INVALID,
        "not valid",
    );
    let subj = c("hi\r\nBcc: victim@example.org");
    check(
        unsafe { smtp_message_set_subject(m.0, subj.as_ptr()) },
        SMTPC_E_INVALID,
        "CR",
    );
    let (n, v) = (c("X-Test"), c("v\nX-Injected: 1"));
    check(
        unsafe { smtp_message_add_header(m.0, n.as_ptr(), v.as_ptr()) },
        SMTPC_E_INVALID,
        "LF",
    );
    let (n, v) = (c("X-Test\r\nBcc"), c("v"));
    check(
        unsafe { smtp_message_add_header(m.0, n.as_ptr(), v.as_ptr()) },
        SMTPC_E_INVALID,
        "header name",
    );
    let (n, v) = (c("Bcc"), c("x@example.org"));
    check(
        unsafe { smtp_message_add_header(m.0, n.as_ptr(), v.as_ptr()) },
        SMTPC_E_INVALID,
        "own call",
    );
    let (data, name) = (b"x", c("a\r\n.txt"));
    check(
        unsafe {
            smtp_message_attach(
                m.0,
                data.as_ptr().cast(),
                1,
                std::ptr::null(),
                name.as_ptr(),
            )
        },
        SMTPC_E_INVALID,
        "file name",
    );
    // Unknown content types.
    for ct in [
        "foo/bar",
        "imagepng",
        "text/plain\r\nX: y",
        "multipart/mixed",
    ] {
        let (ct, name) = (c(ct), c("a.bin"));
        let rc = unsafe {
            smtp_message_attach(m.0, data.as_ptr().cast(), 1, ct.as_ptr(), name.as_ptr())
        };
        assert_eq!(rc, SMTPC_E_INVALID, "{ct:?}");
        assert!(m.error().contains("content type"), "{}", m.error());
    }
    // A missing file.
    let missing = dir.path().join("no-such-file.pdf");
    check(
        m.attach_file_rc(&missing, None, None),
        SMTPC_E_IO,
        "no-such-file.pdf",
    );
    // Invalid UTF-8.
    let bad_utf8 = b"caf\xe9 au lait\0";
    check(
        unsafe { smtp_message_set_subject(m.0, bad_utf8.as_ptr().cast()) },
        SMTPC_E_INVALID,
        "UTF-8",
    );
    check(
        unsafe { smtp_message_set_text(m.0, bad_utf8.as_ptr().cast(), 12) },
        SMTPC_E_INVALID,
        "UTF-8",
    );
    check(
        unsafe { smtp_message_set_from(m.0, bad_utf8.as_ptr().cast(), std::ptr::null()) },
        SMTPC_E_INVALID,
        "UTF-8",
    );
    check(
        unsafe { smtp_message_set_raw(m.0, bad_utf8.as_ptr().cast(), 12) },
        SMTPC_E_INVALID,
        "UTF-8",
    );
    // DKIM with a key that is not one.
    let (d, sel, key) = (
        c("example.org"),
        c("s"),
        c("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
    );
    check(
        unsafe {
            smtp_message_set_dkim(
                m.0,
                d.as_ptr(),
                sel.as_ptr(),
                key.as_ptr(),
                std::ptr::null(),
            )
        },
        SMTPC_E_INVALID,
        "DKIM key",
    );
    // No From: nothing to render.
    assert_eq!(
        unsafe { smtp_message_render(m.0, std::ptr::null_mut(), 0) },
        0
    );
    assert!(m.error().contains("no From"), "{}", m.error());

    // At send time: nothing reaches the server for a message that cannot
    // be made — no From, a file deleted or changed since it was attached,
    // no recipients.
    let aio = Aiosmtpd::start(AioOpts::default());
    let sess = CSession::connect(aio.port);
    let (rc, _) = sess.send(&m, None, &[]);
    assert_eq!(rc, SMTPC_E_INVALID);
    assert!(sess.error().contains("no From"), "{}", sess.error());

    let gone = dir.path().join("gone.txt");
    std::fs::write(&gone, b"soon gone").unwrap();
    let m2 = CMsg::new();
    m2.from("a@example.org", None)
        .to("b@example.org", None)
        .attach_file(&gone, Some("text/plain"), None);
    std::fs::remove_file(&gone).unwrap();
    let (rc, _) = sess.send(&m2, None, &[]);
    assert_eq!(rc, SMTPC_E_IO);
    assert!(sess.error().contains("gone.txt"), "{}", sess.error());

    let swapped = dir.path().join("swapped");
    std::fs::write(&swapped, b"a file for now").unwrap();
    let m3 = CMsg::new();
    m3.from("a@example.org", None)
        .to("b@example.org", None)
        .attach_file(&swapped, None, None);
    std::fs::remove_file(&swapped).unwrap();
    std::fs::create_dir(&swapped).unwrap();
    let (rc, _) = sess.send(&m3, None, &[]);
    assert_eq!(rc, SMTPC_E_IO);
    assert!(
        sess.error().contains("not a regular file"),
        "{}",
        sess.error()
    );

    let m4 = CMsg::new();
    m4.from("a@example.org", None).subject("nobody to send to");
    let (rc, _) = sess.send(&m4, None, &[]);
    assert_eq!(rc, SMTPC_E_INVALID);
    assert!(sess.error().contains("no recipients"), "{}", sess.error());

    assert_eq!(
        sess.mail_commands(),
        0,
        "no MAIL FROM for any of them: {:?}",
        sess.sent()
    );
    // The session is still usable: a good message goes through.
    let good = CMsg::new();
    good.from("a@example.org", None)
        .to("b@example.org", None)
        .text("ok\n");
    assert_eq!(sess.send(&good, None, &[]).0, 250);
    sess.quit();
    let got = aio.wait_messages(1, WAIT);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(aio.messages().len(), 1, "only the good message arrived");
    assert!(String::from_utf8_lossy(&got[0].data).contains("ok"));

    // NULL handles and pointers.
    unsafe {
        assert_eq!(
            smtp_message_set_subject(std::ptr::null_mut(), subj.as_ptr()),
            SMTPC_E_NULL
        );
        assert_eq!(
            smtp_message_set_subject(good.0, std::ptr::null()),
            SMTPC_E_NULL
        );
        assert_eq!(
            smtp_session_send_message(
                sess.s,
                std::ptr::null(),
                std::ptr::null(),
                std::ptr::null(),
                0,
                std::ptr::null_mut(),
                0
            ),
            SMTPC_E_NULL
        );
        assert_eq!(
            smtp_message_render(std::ptr::null_mut(), std::ptr::null_mut(), 0),
            0
        );
        assert_eq!(
            smtp_message_last_error(std::ptr::null(), std::ptr::null_mut(), 0),
            0
        );
        smtp_message_free(std::ptr::null_mut());
    }
}
