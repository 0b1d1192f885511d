//! Server bytes, cut into lines as the transport does (at LF, a CR before
//! it dropped), fed to `ReplyParser::push_line`. It must never panic, and
//! every reply it returns must be one the session can trust: a 2xx–5xx
//! code, text within the documented cap (U+FFFD replacement may triple
//! invalid bytes, never more), and exactly one line of text per line fed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtpc::client::reply::{ReplyParser, MAX_REPLY_BYTES};

fuzz_target!(|data: &[u8]| {
    let mut parser = ReplyParser::new();
    let mut lines_in_reply = 0usize;
    for raw in data.split(|&b| b == b'\n') {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        lines_in_reply += 1;
        match parser.push_line(line) {
            Ok(Some(reply)) => {
                assert!((200..=599).contains(&reply.code), "code {}", reply.code);
                assert_eq!(
                    u16::from(line[0] - b'0') * 100
                        + u16::from(line[1] - b'0') * 10
                        + u16::from(line[2] - b'0'),
                    reply.code
                );
                assert!(reply.text.len() <= 3 * MAX_REPLY_BYTES);
                assert_eq!(reply.lines().count(), lines_in_reply);
                // Derived views never panic either.
                let _ = reply.enhanced().map(|e| e.to_string());
                let _ = reply.is_positive();
                lines_in_reply = 0;
            }
            Ok(None) => {
                assert_eq!(line.get(3), Some(&b'-'), "only a '-' line continues");
            }
            Err(e) => {
                assert!(!e.message.is_empty());
                // The session drops a parser after an error; so do we.
                parser = ReplyParser::new();
                lines_in_reply = 0;
            }
        }
    }
});
