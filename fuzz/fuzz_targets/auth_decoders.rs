//! A server's AUTH challenge (the text of a 334 reply) through
//! `decode_challenge`, and the decoded (or raw) challenge through the
//! LOGIN and CRAM-MD5 mechanisms. Never panics; a challenge is either
//! refused as a protocol error or answered in the expected shape.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtpc::client::sasl::{decode_challenge, encode, CramMd5, Login, Mechanism};
use smtpc::ErrorKind;

const USER: &str = "user@example.test";
const PASS: &str = "p\u{e4}ss word";

fn check_responses(challenge: &[u8], step: usize) {
    let mut login = Login::new(USER, PASS);
    for _ in 0..step {
        login.step(b"?").expect("LOGIN answers any prompt");
    }
    let login = login.step(challenge).expect("LOGIN answers any prompt");
    assert!(login == USER.as_bytes() || login == PASS.as_bytes());
    let cram = CramMd5::new(USER, PASS)
        .step(challenge)
        .expect("CRAM-MD5 answers any challenge");
    let cram = String::from_utf8(cram).expect("user SP hex");
    let hex = cram.strip_prefix(&format!("{USER} ")).expect("user first");
    assert_eq!(hex.len(), 32);
    assert!(hex
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
}

fuzz_target!(|data: &[u8]| {
    let Some((&step, rest)) = data.split_first() else {
        return;
    };
    let step = usize::from(step % 8);
    let text = String::from_utf8_lossy(rest);
    match decode_challenge(&text) {
        Ok(challenge) => {
            // What decodes must re-encode to the same bytes.
            assert_eq!(decode_challenge(&encode(&challenge)).unwrap(), challenge);
            check_responses(&challenge, step);
        }
        Err(e) => {
            assert_eq!(e.kind, ErrorKind::Protocol);
            assert!(e.message.contains("base64"));
        }
    }
    // Whatever a server's challenge decodes to, raw bytes included.
    check_responses(rest, step);
    // And as a server would send a proper challenge: base64 of the bytes.
    assert_eq!(decode_challenge(&encode(rest)).unwrap(), rest);
});
