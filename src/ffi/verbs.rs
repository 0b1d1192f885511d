//! smtplib's low-level verbs (`mail`, `rcpt`, `data`, `putcmd`,
//! `getreply`), the caller's own ESMTP parameters, and the list of the
//! server's extensions. Same conventions as `session.rs`.

use std::ffi::{c_char, c_int};

use super::boundary::{arg, command, message, opt_arg, query, smtp_session, strings, with_handle};
use super::buf::write_text;
use super::result::*;

/// The `n` parameter strings at `params` (NULL allowed when `n` is 0).
///
/// # Safety
/// As `strings`.
unsafe fn params<'a>(params: *const *const c_char, n: usize) -> Result<Vec<&'a str>, Failure> {
    strings(params, n, "parameter list", "ESMTP parameter")
}

/// Sends `MAIL FROM:<from>` and the `n_params` ESMTP parameters in
/// `params` (e.g. "REQUIRETLS", "MT-PRIORITY=3"), as smtplib's `mail`;
/// EHLO first if none was sent. The address is quoted as `sendmail` quotes
/// it (smtplib's `quoteaddr`; non-ASCII goes with SMTPUTF8 when offered,
/// else as an IDNA A-label). The session's mail options are not added.
/// Every string is checked (CR, LF, NUL; one word per parameter) before
/// anything is sent.
///
/// # Returns
/// The reply code; `SMTPC_E_INVALID`, `SMTPC_E_NOT_SUPPORTED` (`SMTPUTF8`
/// or a non-ASCII parameter without the extension), `SMTPC_E_NULL`, I/O
/// codes.
///
/// # Safety
/// `s` is NULL or a live handle; `from` is NULL or a string; `params` is
/// NULL or points to `n_params` string pointers; `reply` as for every
/// command.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_mail(
    s: *mut smtp_session,
    from: *const c_char,
    params_: *const *const c_char,
    n_params: usize,
    reply: *mut c_char,
    reply_cap: usize,
) -> c_int {
    command(s, reply, reply_cap, |session| {
        let from = arg(from, "sender")?;
        let params = params(params_, n_params)?;
        Ok(session.mail(from, &params)?)
    })
}

/// Sends `RCPT TO:<to>` and the `n_params` parameters, as smtplib's
/// `rcpt`; quoting and checks as `smtp_session_mail`. The replies of the
/// RCPTs since the last `smtp_session_mail` are what `smtp_session_data`
/// counts on in LMTP.
///
/// # Returns
/// As `smtp_session_mail`.
///
/// # Safety
/// As `smtp_session_mail`.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_rcpt(
    s: *mut smtp_session,
    to: *const c_char,
    params_: *const *const c_char,
    n_params: usize,
    reply: *mut c_char,
    reply_cap: usize,
) -> c_int {
    command(s, reply, reply_cap, |session| {
        let to = arg(to, "recipient")?;
        let params = params(params_, n_params)?;
        Ok(session.rcpt(to, &params)?)
    })
}

/// Sends DATA, as smtplib's `data`, after `smtp_session_mail` and
/// `smtp_session_rcpt`: on 354 the `len` bytes of `msg` (every line ending
/// sent as CRLF, dots stuffed, a final CRLF added when missing, the
/// end-of-data line) and the final reply, returned. The same engine as
/// `sendmail`: the transcript shows `data: (354, …)`, and
/// `smtp_session_outcome` tells accepted, refused, not sent and unknown.
///
/// # Returns
/// The final reply's code (2xx: accepted); a refused DATA's code, with no
/// body sent (`smtp_session_failed_step` is then `SMTPC_STEP_DATA`; a
/// refused message is `SMTPC_STEP_MESSAGE`); `SMTPC_E_STATE` (not
/// connected), `SMTPC_E_NULL`, I/O codes.
///
/// # Safety
/// `s` is NULL or a live handle; `msg` is valid for `len` bytes (NULL
/// allowed when `len` is 0); `reply` as for every command.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_data(
    s: *mut smtp_session,
    msg: *const c_char,
    len: usize,
    reply: *mut c_char,
    reply_cap: usize,
) -> c_int {
    command(s, reply, reply_cap, |session| {
        let body = message(msg, len)?;
        Ok(session.data(body)?)
    })
}

/// Queues one command line, as smtplib's `putcmd`: `cmd`, then a space and
/// `args` when `args` is neither NULL nor empty (so `cmd` may be a whole
/// line). Nothing is read: the line goes out with the next read, so
/// several `putcmd`s followed by as many `smtp_session_getreply`s
/// pipeline. Checked for CR, LF and NUL before anything is queued.
///
/// # Returns
/// `SMTPC_OK`, `SMTPC_E_INVALID`, `SMTPC_E_STATE` (not connected),
/// `SMTPC_E_NULL`.
///
/// # Safety
/// `s` is NULL or a live handle; `cmd` and `args` are NULL or strings.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_putcmd(
    s: *mut smtp_session,
    cmd: *const c_char,
    args: *const c_char,
) -> c_int {
    with_handle(s, |session| {
        session.putcmd(arg(cmd, "command")?, opt_arg(args, "command arguments")?)?;
        Ok(SMTPC_OK)
    })
}

/// Reads the next reply, as smtplib's `getreply`, sending first whatever
/// `smtp_session_putcmd` queued. Within one timeout.
///
/// # Returns
/// The reply code; `SMTPC_E_STATE` (not connected), `SMTPC_E_TIMEOUT`,
/// `SMTPC_E_CLOSED`, `SMTPC_E_PROTOCOL`, `SMTPC_E_NULL`.
///
/// # Safety
/// `s` is NULL or a live handle; `reply` as for every command.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_getreply(
    s: *mut smtp_session,
    reply: *mut c_char,
    reply_cap: usize,
) -> c_int {
    command(s, reply, reply_cap, |session| Ok(session.getreply()?))
}

/// Sets the ESMTP parameters added to every MAIL FROM that `sendmail`,
/// `sendmail_cb` and the batch API send from now on (smtplib's
/// `mail_options`), after the library's own (SIZE, BODY, SMTPUTF8, DSN);
/// one with the same keyword as the library's replaces it. `SMTPUTF8`
/// among them makes a message fail with `SMTPC_E_NOT_SUPPORTED` when the
/// server does not offer it, as smtplib does. `n` 0 clears.
///
/// # Returns
/// `SMTPC_OK`, `SMTPC_E_INVALID` (CR/LF/NUL, empty, a space inside one
/// parameter, bad UTF-8), `SMTPC_E_NULL`.
///
/// # Safety
/// `s` is NULL or a live handle; `opts` is NULL or points to `n` string
/// pointers.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_set_mail_options(
    s: *mut smtp_session,
    opts: *const *const c_char,
    n: usize,
) -> c_int {
    with_handle(s, |session| {
        session.set_mail_options(&params(opts, n)?)?;
        Ok(SMTPC_OK)
    })
}

/// Sets the ESMTP parameters added to every RCPT TO (smtplib's
/// `rcpt_options`), as `smtp_session_set_mail_options`.
///
/// # Returns
/// As `smtp_session_set_mail_options`.
///
/// # Safety
/// As `smtp_session_set_mail_options`.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_set_rcpt_options(
    s: *mut smtp_session,
    opts: *const *const c_char,
    n: usize,
) -> c_int {
    with_handle(s, |session| {
        session.set_rcpt_options(&params(opts, n)?)?;
        Ok(SMTPC_OK)
    })
}

/// How many extensions the last EHLO (or LHLO) listed (smtplib's
/// `esmtp_features`).
///
/// # Returns
/// The count; 0 before EHLO, after HELO, or when `s` is NULL.
///
/// # Safety
/// `s` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_extn_count(s: *const smtp_session) -> usize {
    query(s, 0, |session| session.extensions().map_or(0, |e| e.len()))
}

/// Copies the `i`-th extension keyword of the last EHLO (upper-cased, in
/// the server's order, e.g. "PIPELINING") into `buf`, written as reply
/// buffers are; its parameters come from `smtp_session_extn_params`.
///
/// # Returns
/// The keyword's full length (snprintf-style); 0 when `i` is out of range
/// or `s` is NULL.
///
/// # Safety
/// `s` is NULL or a live handle; `buf` is NULL or valid for `cap` bytes.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_extn_name(
    s: *const smtp_session,
    i: usize,
    buf: *mut c_char,
    cap: usize,
) -> usize {
    write_text(buf, cap, "");
    query(s, 0, |session| {
        match session.extensions().and_then(|e| e.iter().nth(i)) {
            Some((keyword, _)) => write_text(buf, cap, keyword),
            None => 0,
        }
    })
}
