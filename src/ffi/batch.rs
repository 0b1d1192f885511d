//! The batch API: many messages on one session, pipelined across messages,
//! each one's results read afterwards. Same conventions as `session.rs`.

use std::ffi::{c_char, c_int, c_void};

use super::boundary::{arg, query, query_code, reply_query, smtp_session, with_handle};
use super::result::*;
use crate::client::transaction::{Body, Message, Outcome};
use crate::client::{Error, ErrorKind, Session};

/// Yields the next message of a batch through its out-parameters.
///
/// # Returns
/// 1 when it filled `*from`, `*to`, `*n_to`, `*msg`, `*msg_len`; 0 when
/// there are no more messages; negative to stop the batch (it then fails
/// with `SMTPC_E_CALLBACK` after collecting the replies for what was
/// sent). A message with a NULL or non-UTF-8 sender or recipient is
/// refused by itself (its `smtp_session_batch_code` is `SMTPC_E_INVALID`, as
/// for CR/LF in an address) and the batch goes on. The pointers it gives
/// must stay valid until the next call of the callback or the end of
/// `smtp_session_batch_send_cb`, whichever comes first.
pub type smtpc_next_message_fn = Option<
    unsafe extern "C" fn(
        user: *mut c_void,
        from: *mut *const c_char,
        to: *mut *const *const c_char,
        n_to: *mut usize,
        msg: *mut *const c_char,
        msg_len: *mut usize,
    ) -> c_int,
>;

/// Queues a copy of a message for `smtp_session_batch_send`. Addresses are
/// checked now (CR, LF, NUL, syntax); nothing is sent.
///
/// # Returns
/// `SMTPC_OK`, `SMTPC_E_NULL`, `SMTPC_E_INVALID`.
///
/// # Safety
/// As `smtp_session_sendmail` (without the reply buffer).
#[no_mangle]
pub unsafe extern "C" fn smtp_session_batch_add(
    s: *mut smtp_session,
    from: *const c_char,
    to: *const *const c_char,
    n_to: usize,
    msg: *const c_char,
    msg_len: usize,
) -> c_int {
    with_handle(s, |session| {
        let from = arg(from, "sender")?;
        let to = super::boundary::recipients(to, n_to)?;
        let msg = super::boundary::message(msg, msg_len)?;
        session.batch_add(from, &to, msg)?;
        Ok(SMTPC_OK)
    })
}

fn batch_code(
    result: crate::client::Result<Option<crate::client::Reply>>,
) -> Result<c_int, Failure> {
    match result? {
        Some(refused) => Ok(c_int::from(refused.code)),
        None => Ok(SMTPC_OK),
    }
}

/// Sends every queued message on the session (EHLO first if needed),
/// pipelined across messages when the server offers PIPELINING: one wait
/// per message, none between messages with CHUNKING. The queue is emptied;
/// each message's results are then read with `smtp_session_batch_code`,
/// `smtp_session_batch_failed_step` and `smtp_session_batch_rcpt_code`.
///
/// # Returns
/// `SMTPC_OK` when every message got the server's answer (accepted or
/// refused: look at each); the EHLO/HELO refusal code (>= 100) when no
/// message could be sent; a negative code when the connection failed —
/// messages answered before that keep their results (including replies
/// that had arrived when a write failed), and every queued message has an
/// outcome (`smtp_session_batch_outcome`).
///
/// # Safety
/// `s` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_batch_send(s: *mut smtp_session) -> c_int {
    with_handle(s, |session| batch_code(session.batch_send()))
}

/// Like `smtp_session_batch_send`, with messages pulled one at a time from
/// `next(user, …)` instead of a queue: nothing is copied, and a message's
/// pointers are no longer used once `next` is called again.
///
/// # Returns
/// As `smtp_session_batch_send`, plus `SMTPC_E_CALLBACK`.
///
/// # Safety
/// `s` is NULL or a live handle; `next` is safe to call with `user`, and
/// the pointers it returns are valid as its documentation says.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_batch_send_cb(
    s: *mut smtp_session,
    next: smtpc_next_message_fn,
    user: *mut c_void,
) -> c_int {
    with_handle(s, |session| {
        let next = next.ok_or(Failure::Null("next-message callback"))?;
        let mut source = || -> crate::client::Result<Option<Message<'static>>> {
            let mut from: *const c_char = std::ptr::null();
            let mut to: *const *const c_char = std::ptr::null();
            let mut n_to = 0usize;
            let mut msg: *const c_char = std::ptr::null();
            let mut msg_len = 0usize;
            let rc = next(user, &mut from, &mut to, &mut n_to, &mut msg, &mut msg_len);
            if rc == 0 {
                return Ok(None);
            }
            if rc < 0 {
                return Err(Error::new(
                    ErrorKind::Callback,
                    format!("next-message callback returned {rc}"),
                ));
            }
            // The engine drops each message before it calls `next` again,
            // which is all the lifetime the callback's contract promises.
            let as_error = |f: Failure| f.into_error();
            let from = arg(from, "sender").map_err(as_error)?;
            let to = super::boundary::recipients(to, n_to).map_err(as_error)?;
            let body = super::boundary::message(msg, msg_len).map_err(as_error)?;
            Ok(Some(Message {
                from,
                to,
                body: Body::Bytes(body),
            }))
        };
        batch_code(session.batch_send_from(&mut source))
    })
}

/// How many messages the last batch has results for.
///
/// # Returns
/// The count; 0 when `s` is NULL.
///
/// # Safety
/// `s` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_batch_count(s: *const smtp_session) -> usize {
    query(s, 0, |session| session.batch_results().len())
}

fn outcome(session: &Session, i: usize) -> Result<&Outcome, c_int> {
    session.batch_results().get(i).ok_or(SMTPC_E_INVALID)
}

/// The result of message `i` (0-based, in sending order) of the last
/// batch: the final reply when it was accepted, else the refusing reply
/// (see `smtp_session_batch_failed_step`); its text goes to `reply`.
///
/// # Returns
/// The reply code: 2xx only when the final reply to the whole message (to
/// the end of data or `BDAT … LAST`) was read; a negative code when the
/// message got no final answer (refused locally, e.g. `SMTPC_E_TOO_LARGE`,
/// or the connection failed first: `smtp_session_batch_outcome` tells not
/// sent from unknown); `SMTPC_E_INVALID` when `i` is out of range;
/// `SMTPC_E_NULL`.
///
/// # Safety
/// `s` is NULL or a live handle; `reply` is NULL or valid for `reply_cap`.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_batch_code(
    s: *const smtp_session,
    i: usize,
    reply: *mut c_char,
    reply_cap: usize,
) -> c_int {
    reply_query(s, reply, reply_cap, |session| {
        match outcome(session, i)?.result() {
            Ok((_, r)) => Ok(r),
            Err(e) => Err(code_of(e.kind)),
        }
    })
}

/// Which step the server refused for message `i` of the last batch.
///
/// # Returns
/// An `SMTPC_STEP_*` value (`SMTPC_STEP_NONE` when accepted), a negative
/// code when the message got no answer, `SMTPC_E_INVALID`, `SMTPC_E_NULL`.
///
/// # Safety
/// `s` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_batch_failed_step(s: *const smtp_session, i: usize) -> c_int {
    query_code(s, |session| match outcome(session, i) {
        Ok(o) => match o.result() {
            Ok((step, _)) => super::session::step_code(step),
            Err(e) => code_of(e.kind),
        },
        Err(code) => code,
    })
}

/// Where message `i` of the last batch stands. After `batch_send` every
/// queued message has one (those never tried are `SMTPC_OUTCOME_NOT_SENT`),
/// also when the connection failed: replies that had already arrived when a
/// write failed are read and filed before the connection is closed.
///
/// # Returns
/// `SMTPC_OUTCOME_ACCEPTED`, `SMTPC_OUTCOME_REFUSED` (see
/// `smtp_session_batch_code`), `SMTPC_OUTCOME_NOT_SENT` (safe to send
/// again), `SMTPC_OUTCOME_UNKNOWN` (its end of data was sent, its final
/// reply never came: sending again may duplicate it); `SMTPC_E_INVALID`
/// when `i` is out of range; `SMTPC_E_NULL`.
///
/// # Safety
/// `s` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_batch_outcome(s: *const smtp_session, i: usize) -> c_int {
    query_code(s, |session| match outcome(session, i) {
        Ok(o) => super::session::delivery_code(o.delivery()),
        Err(code) => code,
    })
}

/// How many recipients message `i` of the last batch has answers for.
///
/// # Returns
/// The count; 0 when `s` is NULL or `i` is out of range.
///
/// # Safety
/// `s` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_batch_rcpt_count(s: *const smtp_session, i: usize) -> usize {
    query(s, 0, |session| {
        outcome(session, i).map_or(0, |o| o.rcpts.len())
    })
}

/// The server's answer to recipient `j` of message `i` of the last batch.
///
/// # Returns
/// The RCPT reply code, `SMTPC_E_INVALID` (out of range), `SMTPC_E_NULL`.
///
/// # Safety
/// `s` is NULL or a live handle; `reply` is NULL or valid for `reply_cap`.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_batch_rcpt_code(
    s: *const smtp_session,
    i: usize,
    j: usize,
    reply: *mut c_char,
    reply_cap: usize,
) -> c_int {
    reply_query(s, reply, reply_cap, |session| {
        outcome(session, i)?
            .rcpts
            .get(j)
            .cloned()
            .ok_or(SMTPC_E_INVALID)
    })
}

/// Drops queued messages and the last batch's results.
///
/// # Returns
/// `SMTPC_OK` or `SMTPC_E_NULL`.
///
/// # Safety
/// `s` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_batch_clear(s: *mut smtp_session) -> c_int {
    with_handle(s, |session| {
        session.batch_clear();
        Ok(SMTPC_OK)
    })
}
