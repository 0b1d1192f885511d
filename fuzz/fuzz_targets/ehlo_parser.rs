//! EHLO reply text (lines joined by '\n', as `Reply::text` holds it) fed to
//! `Extensions::parse`, then every query the session makes on the result.
//! Never panics; keywords are upper-case letters, digits and '-'; every
//! keyword found is reported by `has`; AUTH mechanisms have no spaces.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtpc::client::{Extensions, Reply};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let ext = Extensions::parse(&Reply::new(250, text.as_ref()));
    let keywords: Vec<String> = ext.keywords().map(str::to_string).collect();
    for k in &keywords {
        assert!(!k.is_empty());
        assert!(
            k.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-'),
            "keyword {k:?}"
        );
        assert!(ext.has(k) && ext.has(&k.to_ascii_lowercase()));
        let p = ext.params(k).expect("a listed keyword has params");
        assert_eq!(p, p.trim(), "params are trimmed");
    }
    let mut sorted = keywords.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), keywords.len(), "each keyword once");
    for m in ext.auth_mechanisms() {
        assert!(!m.is_empty() && !m.contains(char::is_whitespace));
    }
    if let Some(limit) = ext.size_limit() {
        assert!(limit > 0);
    }
    for probe in [
        "PIPELINING",
        "STARTTLS",
        "8BITMIME",
        "SIZE",
        "AUTH",
        "CHUNKING",
        "",
    ] {
        let _ = ext.has(probe);
        let _ = ext.params(probe);
    }
});
