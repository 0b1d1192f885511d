//! Many sessions at once: 64 threads, each with its own `Session` and one
//! connection, each sending 100 messages to one smtp-sink (6400 in all).
//! Every message must get 250, and the server must have counted 6400
//! end-of-data lines ("." in its `-v` log). Separate handles share nothing
//! the caller can see, so this catches shared state inside the library
//! (globals, TLS/resolver init, trace plumbing) that breaks under load.
//!
//! `SMTPC_THREADS` and `SMTPC_THREAD_MESSAGES` override the counts.

mod support;

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use smtpc::Session;
use support::SmtpSink;

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

/// How many messages smtp-sink's `-v` log shows as received: one
/// "smtp-sink: ." line per end of data (body lines are not logged).
fn sink_count(log: &str) -> (usize, usize) {
    let mut mails = 0;
    let mut dots = 0;
    for line in log.lines() {
        // "/usr/sbin/smtp-sink: ." (the program name as it was started).
        let Some((_, rest)) = line.split_once("smtp-sink: ") else {
            continue;
        };
        if rest == "." {
            dots += 1;
        } else if rest.len() >= 10 && rest[..10].eq_ignore_ascii_case("mail from:") {
            mails += 1;
        }
    }
    (mails, dots)
}

#[test]
fn sixty_four_threads_each_send_a_hundred_messages_on_their_own_session() {
    let threads = env_count("SMTPC_THREADS", 64);
    let per_thread = env_count("SMTPC_THREAD_MESSAGES", 100);
    let total = threads * per_thread;
    let sink = SmtpSink::start_with(&["-v"]);
    let port = sink.port;
    let barrier = Arc::new(Barrier::new(threads));
    let started = Instant::now();

    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let barrier = barrier.clone();
            thread::Builder::new()
                .name(format!("sender-{t}"))
                .spawn(move || -> Result<usize, String> {
                    let mut s = Session::new();
                    s.set_timeout(Duration::from_secs(60));
                    let from = format!("thread{t}@example.org");
                    let to = format!("rcpt{t}@example.org");
                    // Every thread connects, then all start sending at once.
                    // (The barrier is passed whatever connect returned, so
                    // one failure cannot leave the others waiting.)
                    let greeting = s.connect("127.0.0.1", port);
                    barrier.wait();
                    let greeting =
                        greeting.map_err(|e| format!("thread {t}: connect: {e:?}"))?;
                    if greeting.code != 220 {
                        return Err(format!("thread {t}: greeting {greeting:?}"));
                    }
                    let mut ok = 0;
                    for i in 0..per_thread {
                        let msg = format!(
                            "From: <{from}>\r\nTo: <{to}>\r\nSubject: thread {t} message {i}\r\n\r\n\
                             body of message {i} from thread {t}\r\n.leading dot\r\n"
                        );
                        match s.sendmail(&from, &[to.as_str()], msg.as_bytes()) {
                            Ok(r) if r.code == 250 => ok += 1,
                            Ok(r) => return Err(format!("thread {t} message {i}: {r:?}")),
                            Err(e) => return Err(format!("thread {t} message {i}: {e:?}")),
                        }
                        if s.rcpt_replies().len() != 1 || s.rcpt_replies()[0].code != 250 {
                            return Err(format!(
                                "thread {t} message {i}: RCPT replies {:?}",
                                s.rcpt_replies()
                            ));
                        }
                    }
                    let q = s
                        .quit()
                        .map_err(|e| format!("thread {t}: quit: {e:?}"))?;
                    if q.code != 221 {
                        return Err(format!("thread {t}: quit {q:?}"));
                    }
                    Ok(ok)
                })
                .expect("spawn a sender thread")
        })
        .collect();

    let mut accepted = 0;
    let mut failures = Vec::new();
    for h in handles {
        match h.join() {
            Ok(Ok(n)) => accepted += n,
            Ok(Err(e)) => failures.push(e),
            Err(_) => failures.push("a sender thread panicked".to_string()),
        }
    }
    let elapsed = started.elapsed();
    assert!(
        failures.is_empty(),
        "{} of {threads} threads failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(accepted, total, "messages answered 250");

    // smtp-sink logs as it goes; give it a moment to catch up.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (log, mails, dots) = loop {
        let log = sink.log();
        let (mails, dots) = sink_count(&log);
        if dots >= total || Instant::now() > deadline {
            break (log, mails, dots);
        }
        thread::sleep(Duration::from_millis(100));
    };
    let head: String = log.lines().take(40).collect::<Vec<_>>().join("\n");
    assert_eq!(
        (dots, mails),
        (total, total),
        "(end-of-data, MAIL FROM) lines in smtp-sink's log; it begins:\n{head}"
    );
    eprintln!(
        "threads: {threads} x {per_thread} = {total} messages accepted and counted in {elapsed:?}"
    );
}
