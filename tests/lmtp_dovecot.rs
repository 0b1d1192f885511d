//! LMTP against a real LMTP peer: Dovecot's LMTP server, over its
//! UNIX-domain socket (as smtplib's LMTP takes a path) and over TCP.
//! Dovecot offers PIPELINING and CHUNKING, so `sendmail` goes as BDAT with
//! one reply per accepted recipient after `BDAT … LAST`; it also offers
//! STARTTLS, so the TLS policies must greet with LHLO, not EHLO (which
//! Dovecot answers with 500).

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use smtpc::client::data::reference::normalized;
use smtpc::client::Delivery;
use smtpc::{Session, TlsPolicy};
use support::dovecot::{strip_dovecot_headers, Dovecot};
use support::*;

const WAIT: Duration = Duration::from_secs(20);
const ALICE: &str = "alice@example.test";
const BOB: &str = "bob@example.test";
const NOBODY: &str = "nobody@example.test";

fn message(id: &str) -> Vec<u8> {
    format!(
        "From: <sender@client.test>\r\nTo: <{ALICE}>\r\nSubject: {id}\r\n\
         Message-ID: <{id}@client.test>\r\n\r\nline 1\r\n.dot line\r\nno newline at the end"
    )
    .into_bytes()
}

/// The delivered copy, as CRLF bytes, without Dovecot's own headers.
fn as_sent(delivered: &[u8]) -> Vec<u8> {
    lf_to_crlf(strip_dovecot_headers(delivered))
}

/// The commands the session sent, from its transcript.
fn traced(s: &mut Session) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    s.set_debuglevel(1);
    s.set_trace_sink(Some(Box::new(move |l: &str| {
        sink.lock().unwrap().push(l.to_string())
    })));
    lines
}

#[test]
fn sendmail_over_the_unix_socket_uses_bdat_with_one_reply_per_recipient() {
    let dc = Dovecot::start();
    let mut s = Session::new();
    s.set_timeout(WAIT);
    let trace = traced(&mut s);
    s.set_lmtp(true);
    let path = dc.lmtp_socket();
    assert_eq!(s.connect(path.to_str().unwrap(), 0).unwrap().code, 220);
    let msg = message("lmtp-unix");
    let r = s
        .sendmail("sender@client.test", &[ALICE, NOBODY, BOB], &msg)
        .unwrap();
    assert_eq!(r.code, 250, "{r:?}");
    let rcpt: Vec<u16> = s.rcpt_replies().iter().map(|r| r.code).collect();
    assert_eq!(rcpt, [250, 550, 250]);
    let per_rcpt: Vec<Option<u16>> = s
        .lmtp_replies()
        .iter()
        .map(|r| r.as_ref().map(|r| r.code))
        .collect();
    assert_eq!(per_rcpt, [Some(250), None, Some(250)]);
    assert_eq!(s.last_outcome().delivery(), Delivery::Accepted);
    let sent = trace.lock().unwrap().join("\n");
    assert!(sent.contains("lhlo "), "{sent}");
    assert!(
        sent.contains("BDAT ") && sent.contains(" LAST"),
        "LMTP goes as BDAT: {sent}"
    );
    for user in ["alice", "bob"] {
        let got = dc.wait_delivered(user, 1, WAIT);
        assert_eq!(as_sent(&got[0]), normalized(&msg), "{user}");
    }
    assert_eq!(s.quit().unwrap().code, 221);
}

#[test]
fn mail_rcpt_data_verbs_over_lmtp_give_each_recipients_reply() {
    let dc = Dovecot::start();
    let mut s = Session::new();
    s.set_timeout(WAIT);
    let path = dc.lmtp_socket();
    s.connect(path.to_str().unwrap(), 0).unwrap();
    assert_eq!(s.lhlo(None).unwrap().code, 250);
    assert_eq!(s.mail("sender@client.test", &[]).unwrap().code, 250);
    assert_eq!(s.rcpt(ALICE, &[]).unwrap().code, 250);
    assert_eq!(s.rcpt(BOB, &[]).unwrap().code, 250);
    let msg = message("lmtp-verbs");
    let r = s.data(&msg).unwrap();
    assert_eq!(r.code, 250);
    let per_rcpt: Vec<Option<u16>> = s
        .lmtp_replies()
        .iter()
        .map(|r| r.as_ref().map(|r| r.code))
        .collect();
    assert_eq!(per_rcpt, [Some(250), Some(250)]);
    assert_eq!(s.last_outcome().delivery(), Delivery::Accepted);
    for user in ["alice", "bob"] {
        assert_eq!(
            as_sent(&dc.wait_delivered(user, 1, WAIT)[0]),
            normalized(&msg)
        );
    }
}

/// The Required policy over LMTP: LHLO, STARTTLS, LHLO (EHLO would get 500
/// from Dovecot), then a message over TLS; DATA too, with chunking off.
#[test]
fn tls_required_policy_greets_with_lhlo_over_tcp() {
    let dc = Dovecot::start();
    let mut s = Session::new();
    s.set_timeout(WAIT);
    let trace = traced(&mut s);
    s.set_lmtp(true);
    s.set_chunking(false);
    s.set_ca_file(Some(certs().ca.to_string_lossy().into_owned()));
    s.set_tls_policy(TlsPolicy::Required);
    assert_eq!(s.connect("localhost", dc.lmtp_port()).unwrap().code, 220);
    assert!(s.is_tls());
    let msg = message("lmtp-tls");
    assert_eq!(
        s.sendmail("sender@client.test", &[ALICE], &msg)
            .unwrap()
            .code,
        250
    );
    let sent = trace.lock().unwrap().join("\n");
    assert!(!sent.to_ascii_lowercase().contains("send: 'ehlo"), "{sent}");
    assert_eq!(sent.matches("send: 'lhlo").count(), 2, "{sent}");
    assert!(sent.contains("send: 'data"), "chunking off: DATA {sent}");
    assert_eq!(
        as_sent(&dc.wait_delivered("alice", 1, WAIT)[0]),
        normalized(&msg)
    );
}
