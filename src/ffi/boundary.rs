//! The boundary every export goes through: panics stop here and poison the
//! handle, pointers are checked, failures become codes and `last_error`.

use std::any::Any;
use std::ffi::{c_char, c_int, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::{addr_of, addr_of_mut};
use std::sync::Arc;

use super::buf::write_text;
use super::result::{Failure, SMTPC_E_BUSY, SMTPC_E_NULL, SMTPC_E_PANIC};
use crate::client::cancel::Canceller;
use crate::client::{Error, ErrorKind, Reply, Session};

/// An SMTP connection handle. Opaque: C only ever holds a pointer to it.
///
/// Created by `smtp_session_new`, released by `smtp_session_free`. A handle
/// may move between threads but must not be used by two at once; separate
/// handles are independent.
///
/// The exports reach the fields through raw-pointer projections, never a
/// reference to the whole handle: `smtp_session_cancel` reads `cancel`
/// while another thread is inside a call that holds `&mut inner`, and a
/// call made from inside one of the handle's own callbacks must be refused
/// (`busy`) without a second reference to `inner`.
pub struct smtpc_session_handle {
    pub(crate) inner: Session,
    pub(crate) poisoned: bool,
    /// A call is in progress on this handle.
    pub(crate) busy: bool,
    pub(crate) cancel: Arc<Canceller>,
}

/// The handle's C name (its struct tag is the library's own, so no other
/// library's `struct smtp_session` converts to it silently).
pub type smtp_session = smtpc_session_handle;

impl smtpc_session_handle {
    pub(crate) fn new() -> Self {
        let inner = Session::new();
        let cancel = inner.canceller();
        smtpc_session_handle {
            inner,
            poisoned: false,
            busy: false,
            cancel,
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    format!("internal panic: {what}; the session is unusable")
}

/// Runs `f` on a live handle: the shared shape of every export that takes a
/// mutable handle. NULL gives `SMTPC_E_NULL`; a poisoned handle gives
/// `SMTPC_E_PANIC`; a call from inside one of the handle's own callbacks
/// gives `SMTPC_E_BUSY` (it would pair replies with the wrong commands); a
/// panic in `f` poisons the handle.
///
/// # Safety
/// `s` is NULL or a live handle from `smtp_session_new`.
pub(crate) unsafe fn with_handle(
    s: *mut smtp_session,
    f: impl FnOnce(&mut Session) -> Result<c_int, Failure>,
) -> c_int {
    if s.is_null() {
        return SMTPC_E_NULL;
    }
    if *addr_of!((*s).poisoned) {
        return SMTPC_E_PANIC;
    }
    if *addr_of!((*s).busy) {
        return SMTPC_E_BUSY;
    }
    *addr_of_mut!((*s).busy) = true;
    let inner = &mut *addr_of_mut!((*s).inner);
    let result = catch_unwind(AssertUnwindSafe(|| f(inner)));
    *addr_of_mut!((*s).busy) = false;
    match result {
        Ok(Ok(code)) => code,
        Ok(Err(failure)) => {
            let code = failure.code();
            inner.record_error(failure.into_error());
            code
        }
        Err(payload) => {
            *addr_of_mut!((*s).poisoned) = true;
            inner.record_error(Error::new(ErrorKind::State, panic_message(&*payload)));
            SMTPC_E_PANIC
        }
    }
}

/// The canceller of a live handle, read while another thread may be inside
/// a call on it.
///
/// # Safety
/// `s` is NULL or a live handle from `smtp_session_new`.
pub(crate) unsafe fn canceller<'a>(s: *mut smtp_session) -> Option<&'a Canceller> {
    if s.is_null() {
        None
    } else {
        Some(&*addr_of!((*s).cancel))
    }
}

/// A command: like `with_handle`, and the reply text (or "" on failure)
/// goes to the caller's buffer. Returns the reply code or an error code.
///
/// # Safety
/// As `with_handle`; `reply` is NULL or valid for `cap` bytes.
pub(crate) unsafe fn command(
    s: *mut smtp_session,
    reply: *mut c_char,
    cap: usize,
    f: impl FnOnce(&mut Session) -> Result<Reply, Failure>,
) -> c_int {
    write_text(reply, cap, "");
    with_handle(s, |session| {
        if reply.is_null() && cap > 0 {
            return Err(Failure::Null("reply buffer (with reply_cap > 0)"));
        }
        let r = f(session)?;
        write_text(reply, cap, &r.text);
        Ok(c_int::from(r.code))
    })
}

/// A read-only query on a const handle; `default` when `s` is NULL, and
/// when the handle is poisoned or busy (the caller's code is then
/// `SMTPC_E_PANIC` / `SMTPC_E_BUSY`, see `query_code`).
///
/// # Safety
/// `s` is NULL or a live handle.
pub(crate) unsafe fn query<R>(
    s: *const smtp_session,
    default: R,
    f: impl FnOnce(&Session) -> R,
) -> R {
    match query_state(s) {
        Ok(()) => catch_unwind(AssertUnwindSafe(|| f(&*addr_of!((*s).inner)))).unwrap_or(default),
        Err(_) => default,
    }
}

/// Whether a query may read the handle: `SMTPC_E_NULL`, `SMTPC_E_PANIC`
/// or `SMTPC_E_BUSY` when not.
///
/// # Safety
/// `s` is NULL or a live handle.
pub(crate) unsafe fn query_state(s: *const smtp_session) -> Result<(), c_int> {
    if s.is_null() {
        Err(SMTPC_E_NULL)
    } else if *addr_of!((*s).poisoned) {
        Err(SMTPC_E_PANIC)
    } else if *addr_of!((*s).busy) {
        Err(SMTPC_E_BUSY)
    } else {
        Ok(())
    }
}

/// A query whose result is a code: like `query`, with `SMTPC_E_NULL`,
/// `SMTPC_E_PANIC` or `SMTPC_E_BUSY` when the handle cannot be read.
///
/// # Safety
/// `s` is NULL or a live handle.
pub(crate) unsafe fn query_code(
    s: *const smtp_session,
    f: impl FnOnce(&Session) -> c_int,
) -> c_int {
    match query_state(s) {
        Ok(()) => query(s, SMTPC_E_PANIC, f),
        Err(code) => code,
    }
}

/// A setter that switches one option on (non-zero) or off.
///
/// # Safety
/// `s` is NULL or a live handle.
pub(crate) unsafe fn set_flag(s: *mut smtp_session, on: i32, set: fn(&mut Session, bool)) -> c_int {
    with_handle(s, |session| {
        set(session, on != 0);
        Ok(super::result::SMTPC_OK)
    })
}

/// A query that reports one stored reply: its text to `reply`, its code
/// returned; `pick` gives the reply or the code to return instead.
///
/// # Safety
/// `s` is NULL or a live handle; `reply` is NULL or valid for `cap` bytes.
pub(crate) unsafe fn reply_query(
    s: *const smtp_session,
    reply: *mut c_char,
    cap: usize,
    pick: impl FnOnce(&Session) -> Result<Reply, c_int>,
) -> c_int {
    write_text(reply, cap, "");
    if reply.is_null() && cap > 0 {
        return SMTPC_E_NULL;
    }
    query_code(s, |session| match pick(session) {
        Ok(r) => {
            write_text(reply, cap, &r.text);
            c_int::from(r.code)
        }
        Err(code) => code,
    })
}

/// A required string argument: NUL-terminated UTF-8.
///
/// # Safety
/// `p` is NULL or a NUL-terminated string.
pub(crate) unsafe fn arg<'a>(p: *const c_char, what: &'static str) -> Result<&'a str, Failure> {
    if p.is_null() {
        return Err(Failure::Null(what));
    }
    CStr::from_ptr(p)
        .to_str()
        .map_err(|_| Failure::Core(Error::invalid(format!("{what} is not valid UTF-8"))))
}

/// An optional string argument: NULL means "not given".
///
/// # Safety
/// As `arg`.
pub(crate) unsafe fn opt_arg<'a>(
    p: *const c_char,
    what: &'static str,
) -> Result<Option<&'a str>, Failure> {
    if p.is_null() {
        Ok(None)
    } else {
        arg(p, what).map(Some)
    }
}

/// A list of `n` required strings (recipients, ESMTP parameters); NULL
/// is allowed only when `n` is 0.
///
/// # Safety
/// `list` is NULL or points to `n` pointers, each NULL or a string.
pub(crate) unsafe fn strings<'a>(
    list: *const *const c_char,
    n: usize,
    what: &'static str,
    each: &'static str,
) -> Result<Vec<&'a str>, Failure> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if list.is_null() {
        return Err(Failure::Null(what));
    }
    std::slice::from_raw_parts(list, n)
        .iter()
        .map(|&p| arg(p, each))
        .collect()
}

/// The `n_to` recipient strings at `to`.
///
/// # Safety
/// As `strings`.
pub(crate) unsafe fn recipients<'a>(
    to: *const *const c_char,
    n_to: usize,
) -> Result<Vec<&'a str>, Failure> {
    strings(to, n_to, "recipient list", "recipient")
}

/// `len` bytes at `data` (a message, an attachment); NULL is allowed only
/// when `len` is 0.
///
/// # Safety
/// `data` is NULL or valid for `len` bytes.
pub(crate) unsafe fn bytes<'a, T>(
    data: *const T,
    len: usize,
    what: &'static str,
) -> Result<&'a [u8], Failure> {
    match (data.is_null(), len) {
        (_, 0) => Ok(&[]),
        (true, _) => Err(Failure::Null(what)),
        (false, n) => Ok(std::slice::from_raw_parts(data.cast(), n)),
    }
}

/// The message bytes of a send.
///
/// # Safety
/// As `bytes`.
pub(crate) unsafe fn message<'a>(msg: *const c_char, len: usize) -> Result<&'a [u8], Failure> {
    bytes(msg, len, "message")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::result::SMTPC_E_STATE;

    fn handle() -> smtp_session {
        smtp_session::new()
    }

    #[test]
    fn a_panic_in_the_core_becomes_smtpc_e_panic_and_poisons_the_handle() {
        let mut h = handle();
        let mut buf = [0x55 as c_char; 8];
        let code = unsafe { command(&mut h, buf.as_mut_ptr(), buf.len(), |_| panic!("boom")) };
        assert_eq!(code, SMTPC_E_PANIC);
        assert!(h.poisoned);
        assert_eq!(buf[0], 0, "the reply buffer is still NUL-terminated");
        assert!(h.inner.last_error().unwrap().message.contains("boom"));
        // Every later call refuses, without running anything.
        let again = unsafe { command(&mut h, std::ptr::null_mut(), 0, |s| Ok(s.noop()?)) };
        assert_eq!(again, SMTPC_E_PANIC);
        // Queries too, as the header says: no half-updated state is read.
        assert_eq!(unsafe { query_code(&h, |_| 250) }, SMTPC_E_PANIC);
        assert_eq!(unsafe { query(&h, 0usize, |_| 7) }, 0);
    }

    #[test]
    fn null_handle_and_null_reply_buffer_are_refused() {
        let code = unsafe {
            command(std::ptr::null_mut(), std::ptr::null_mut(), 0, |s| {
                Ok(s.noop()?)
            })
        };
        assert_eq!(code, SMTPC_E_NULL);
        let mut h = handle();
        let code = unsafe { command(&mut h, std::ptr::null_mut(), 5, |s| Ok(s.noop()?)) };
        assert_eq!(code, SMTPC_E_NULL);
        let code = unsafe { command(&mut h, std::ptr::null_mut(), 0, |s| Ok(s.noop()?)) };
        assert_eq!(code, SMTPC_E_STATE);
    }
}
