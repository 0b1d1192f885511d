//! The boundary every export goes through: panics stop here and poison the
//! handle, pointers are checked, failures become codes and `last_error`.

use std::any::Any;
use std::ffi::{c_char, c_int, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::buf::write_text;
use super::result::{Failure, SMTPC_E_NULL, SMTPC_E_PANIC};
use crate::client::{Error, ErrorKind, Reply, Session};

/// An SMTP connection handle. Opaque: C only ever holds a pointer to it.
///
/// Created by `smtp_session_new`, released by `smtp_session_free`. A handle
/// may move between threads but must not be used by two at once; separate
/// handles are independent.
pub struct smtp_session {
    pub(crate) inner: Session,
    pub(crate) poisoned: bool,
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
/// `SMTPC_E_PANIC`; a panic in `f` poisons the handle.
///
/// # Safety
/// `s` is NULL or a live handle from `smtp_session_new`.
pub(crate) unsafe fn with_handle(
    s: *mut smtp_session,
    f: impl FnOnce(&mut Session) -> Result<c_int, Failure>,
) -> c_int {
    let Some(h) = s.as_mut() else {
        return SMTPC_E_NULL;
    };
    if h.poisoned {
        return SMTPC_E_PANIC;
    }
    match catch_unwind(AssertUnwindSafe(|| f(&mut h.inner))) {
        Ok(Ok(code)) => code,
        Ok(Err(failure)) => {
            let code = failure.code();
            h.inner.record_error(failure.into_error());
            code
        }
        Err(payload) => {
            h.poisoned = true;
            h.inner
                .record_error(Error::new(ErrorKind::State, panic_message(&*payload)));
            SMTPC_E_PANIC
        }
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

/// A read-only query on a const handle; `default` when `s` is NULL.
///
/// # Safety
/// `s` is NULL or a live handle.
pub(crate) unsafe fn query<R>(
    s: *const smtp_session,
    default: R,
    f: impl FnOnce(&Session) -> R,
) -> R {
    match s.as_ref() {
        Some(h) => catch_unwind(AssertUnwindSafe(|| f(&h.inner))).unwrap_or(default),
        None => default,
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
    query(s, SMTPC_E_NULL, |session| match pick(session) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::result::SMTPC_E_STATE;

    fn handle() -> smtp_session {
        smtp_session {
            inner: Session::new(),
            poisoned: false,
        }
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
