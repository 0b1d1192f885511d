//! The debug transcript, in smtplib's format, with AUTH secrets redacted.

use std::io::Write;

/// Where transcript lines go.
pub type TraceSink = Box<dyn FnMut(&str) + Send>;

/// How much of a message body a transcript shows before eliding the rest;
/// smtplib prints it all, which makes a 50 MB send unusable to debug.
const MAX_BODY_SHOWN: usize = 64 * 1024;

pub const REDACTED: &str = "<redacted>";

#[derive(Default)]
pub struct Tracer {
    level: i32,
    sink: Option<TraceSink>,
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracer")
            .field("level", &self.level)
            .field("sink", &self.sink.is_some())
            .finish()
    }
}

impl Tracer {
    /// 0: off; 1: transcript; 2: transcript with timestamps.
    pub fn set_level(&mut self, level: i32) {
        self.level = level.max(0);
    }

    /// `None` sends lines to stderr.
    pub fn set_sink(&mut self, sink: Option<TraceSink>) {
        self.sink = sink;
    }

    pub fn enabled(&self) -> bool {
        self.level > 0
    }

    fn emit(&mut self, line: String) {
        let line = if self.level >= 2 {
            format!("{} {line}", timestamp())
        } else {
            line
        };
        match &mut self.sink {
            Some(sink) => sink(&line),
            None => {
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
        }
    }

    pub fn connect(&mut self, host: &str, port: u16) {
        if self.enabled() {
            self.emit(format!(
                "connect: ('{}', {port})",
                escape(host.as_bytes(), usize::MAX)
            ));
        }
    }

    /// A command or body as sent.
    pub fn send(&mut self, bytes: &[u8]) {
        if self.enabled() {
            self.emit(format!("send: '{}'", escape(bytes, MAX_BODY_SHOWN)));
        }
    }

    /// A command whose arguments are secret: only `shown` appears.
    pub fn send_redacted(&mut self, shown: &str) {
        if self.enabled() {
            let sep = if shown.is_empty() { "" } else { " " };
            self.emit(format!("send: '{shown}{sep}{REDACTED}\\r\\n'"));
        }
    }

    /// One raw reply line, CRLF included.
    pub fn reply_line(&mut self, raw: &[u8]) {
        if self.enabled() {
            self.emit(format!("reply: '{}'", escape(raw, usize::MAX)));
        }
    }

    pub fn reply(&mut self, code: u16, text: &str) {
        if self.enabled() {
            self.emit(format!(
                "reply: retcode ({code}); Msg: '{}'",
                escape(text.as_bytes(), usize::MAX)
            ));
        }
    }

    pub fn data(&mut self, code: u16, text: &str) {
        if self.enabled() {
            self.emit(format!(
                "data: ({code}, '{}')",
                escape(text.as_bytes(), usize::MAX)
            ));
        }
    }

    pub fn note(&mut self, what: &str) {
        if self.enabled() {
            self.emit(what.to_string());
        }
    }
}

/// Python-repr-like escaping: printable ASCII as is, the rest as escapes.
fn escape(bytes: &[u8], max: usize) -> String {
    let shown = &bytes[..bytes.len().min(max)];
    let mut out = String::with_capacity(shown.len() + 8);
    for &b in shown {
        match b {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\\' => out.push_str("\\\\"),
            b'\'' => out.push_str("\\'"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    if bytes.len() > shown.len() {
        out.push_str(&format!("... ({} more bytes)", bytes.len() - shown.len()));
    }
    out
}

/// Local wall-clock time as HH:MM:SS.ffffff, as smtplib's level 2 prints.
fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as libc::time_t;
    // SAFETY: localtime_r only writes the `tm` we own.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&secs, &mut tm);
        tm
    };
    format!(
        "{:02}:{:02}:{:02}.{:06}",
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        now.subsec_micros()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn capture(level: i32) -> (Tracer, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let mut t = Tracer::default();
        t.set_level(level);
        t.set_sink(Some(Box::new(move |l| {
            sink.lock().unwrap().push(l.to_string())
        })));
        (t, lines)
    }

    #[test]
    fn lines_follow_smtplib_format() {
        let (mut t, lines) = capture(1);
        t.send(b"ehlo [127.0.0.1]\r\n");
        t.reply_line(b"250-mx\r\n");
        t.reply(250, "mx\nPIPELINING");
        t.data(354, "End data with <CR><LF>.<CR><LF>");
        t.send_redacted("AUTH PLAIN");
        assert_eq!(
            *lines.lock().unwrap(),
            [
                "send: 'ehlo [127.0.0.1]\\r\\n'",
                "reply: '250-mx\\r\\n'",
                "reply: retcode (250); Msg: 'mx\\nPIPELINING'",
                "data: (354, 'End data with <CR><LF>.<CR><LF>')",
                "send: 'AUTH PLAIN <redacted>\\r\\n'",
            ]
        );
    }

    #[test]
    fn level_zero_emits_nothing() {
        let (mut t, lines) = capture(0);
        t.send(b"noop\r\n");
        assert!(lines.lock().unwrap().is_empty());
    }

    #[test]
    fn level_two_prefixes_a_timestamp() {
        let (mut t, lines) = capture(2);
        t.send(b"noop\r\n");
        let line = lines.lock().unwrap()[0].clone();
        let (ts, rest) = line.split_once(' ').unwrap();
        assert_eq!(ts.len(), "00:00:00.000000".len(), "{line}");
        assert_eq!(rest, "send: 'noop\\r\\n'");
    }

    #[test]
    fn long_bodies_are_elided() {
        let (mut t, lines) = capture(1);
        t.send(&vec![b'a'; MAX_BODY_SHOWN + 10]);
        assert!(lines.lock().unwrap()[0].ends_with("... (10 more bytes)'"));
    }

    #[test]
    fn non_printable_bytes_are_escaped() {
        assert_eq!(escape(b"a'\\\x00\xff", usize::MAX), "a\\'\\\\\\x00\\xff");
    }
}
