//! Exports for SASL: a mechanism of the caller's, run through a callback
//! (smtplib's `auth(mechanism, authobject)`), and smtplib's
//! `initial_response_ok`. Same conventions as `session.rs`.

use std::ffi::{c_char, c_int, c_void};

use super::boundary::{arg, command, set_flag, smtp_session};
use super::result::*;
use crate::client::sasl::{self, Mechanism};
use crate::client::{Error, ErrorKind, Result, Session};

/// Produces one SASL response for `smtp_session_auth_callback`.
///
/// Called first with `challenge` NULL (and `challenge_len` 0) for the
/// initial response, sent with the AUTH command, unless
/// `smtp_session_set_initial_response(s, 0)` was called; then once for
/// each challenge (334) of the server, decoded from base64:
/// `challenge_len` bytes, which may contain NULs, followed by a NUL that is
/// not counted. The challenge is only valid during the call.
///
/// Writes the response, any bytes (the library base64-encodes them), into
/// `response` (`response_cap` bytes, never NULL) and returns its length.
/// As `snprintf`: when the response is longer than `response_cap`, return
/// its length without writing it; the library calls again, with the same
/// challenge and a buffer of that size (at most `SMTPC_SASL_MAX_RESPONSE`
/// bytes, and two retries).
///
/// # Returns
/// The length of the response (0 for an empty one); for the initial call
/// only, `SMTPC_SASL_NO_RESPONSE` when the mechanism has no initial
/// response (AUTH is then sent alone and the server's first challenge
/// follows); any other negative value aborts: before anything was sent
/// for the initial call, else the exchange is cancelled with "*" and the
/// connection stays usable. `smtp_session_auth_callback` then returns
/// `SMTPC_E_CALLBACK`.
pub type smtpc_sasl_fn = Option<
    unsafe extern "C" fn(
        user: *mut c_void,
        challenge: *const c_char,
        challenge_len: usize,
        response: *mut c_char,
        response_cap: usize,
    ) -> i64,
>;

/// Returned by an `smtpc_sasl_fn` called for the initial response (with a
/// NULL challenge): the mechanism has none, send AUTH alone. Anywhere else
/// it aborts like any negative value.
pub const SMTPC_SASL_NO_RESPONSE: i64 = -2;

/// The longest response an `smtpc_sasl_fn` may produce; a longer one
/// aborts the exchange with `SMTPC_E_CALLBACK`.
pub const SMTPC_SASL_MAX_RESPONSE: usize = 65536;

/// The buffer offered on the first call for each response.
const FIRST_CAP: usize = 1024;

/// The caller's mechanism: its name and its callback.
struct CallbackMechanism {
    name: String,
    cb: unsafe extern "C" fn(*mut c_void, *const c_char, usize, *mut c_char, usize) -> i64,
    user: *mut c_void,
}

impl CallbackMechanism {
    fn aborted(&self, why: String) -> Error {
        Error::new(
            ErrorKind::Callback,
            format!("AUTH {}: the callback {why}", self.name),
        )
    }

    /// One response: `None` for the initial one when there is none.
    fn respond(&mut self, challenge: Option<&[u8]>) -> Result<Option<Vec<u8>>> {
        // The challenge with a NUL after it, for callers that read text.
        let with_nul: Option<Vec<u8>> = challenge.map(|c| {
            let mut v = Vec::with_capacity(c.len() + 1);
            v.extend_from_slice(c);
            v.push(0);
            v
        });
        let (ptr, len) = match &with_nul {
            Some(v) => (v.as_ptr().cast::<c_char>(), v.len() - 1),
            None => (std::ptr::null(), 0),
        };
        let mut cap = FIRST_CAP;
        for _ in 0..3 {
            let mut buf = vec![0u8; cap];
            // SAFETY: the caller of smtp_session_auth_callback promised
            // `cb` is safe to call with `user`; `ptr` is NULL or valid for
            // `len + 1` bytes, `buf` for `cap` bytes, during the call.
            let n = unsafe { (self.cb)(self.user, ptr, len, buf.as_mut_ptr().cast(), cap) };
            if n == SMTPC_SASL_NO_RESPONSE && challenge.is_none() {
                return Ok(None);
            }
            if n < 0 {
                return Err(self.aborted(format!("returned {n}")));
            }
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            if n > SMTPC_SASL_MAX_RESPONSE {
                return Err(self.aborted(format!(
                    "asked for {n} bytes, more than SMTPC_SASL_MAX_RESPONSE"
                )));
            }
            if n <= cap {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            cap = n;
        }
        Err(self.aborted("asked for a larger buffer three times".into()))
    }
}

impl Mechanism for CallbackMechanism {
    fn name(&self) -> &str {
        &self.name
    }
    fn initial_response(&mut self) -> Result<Option<Vec<u8>>> {
        self.respond(None)
    }
    fn step(&mut self, challenge: &[u8]) -> Result<Vec<u8>> {
        // Some(_): with a challenge, NO_RESPONSE is an abort.
        Ok(self.respond(Some(challenge))?.unwrap_or_default())
    }
}

/// Authenticates with a mechanism of the caller's, as smtplib's
/// `auth(mechanism, authobject)`: `cb(user, …)` gives the initial response
/// and answers each challenge (see `smtpc_sasl_fn`); the library does the
/// base64, the AUTH command (EHLO first if needed) and the reply codes.
/// `mechanism` is the name sent after AUTH ("PLAIN", "X-MY-MECH"…): one
/// word of 1 to 20 letters, digits, "-" or "_" (RFC 4422), lower case sent
/// upper case, and the server must offer it. Responses never appear in the
/// transcript. `cb` is called on the calling thread, only during this call;
/// a call on `s` from inside it returns `SMTPC_E_BUSY`.
///
/// # Returns
/// 235 on success; the server's refusal (e.g. 535, or 501 after a "*");
/// `SMTPC_E_CALLBACK` when `cb` aborted (returned a negative value, or a
/// length over `SMTPC_SASL_MAX_RESPONSE`): nothing was sent if it aborted
/// the initial response, else the exchange was cancelled with "*" and the
/// connection is still usable; `SMTPC_E_NOT_SUPPORTED` (mechanism not
/// offered: `cb` is not called), `SMTPC_E_INVALID` (bad mechanism name,
/// nothing sent), `SMTPC_E_NULL` (`s`, `mechanism`, `cb`, or `reply` with
/// `reply_cap` > 0), `SMTPC_E_INSECURE` (clear text to a non-loopback
/// host, see `smtp_session_set_allow_insecure_auth`), I/O codes.
///
/// # Safety
/// `s` is NULL or a live handle; `mechanism` is NULL or a NUL-terminated
/// string; `cb` is NULL or safe to call with `user` during this call;
/// `reply` is NULL or valid for `reply_cap` bytes.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_auth_callback(
    s: *mut smtp_session,
    mechanism: *const c_char,
    cb: smtpc_sasl_fn,
    user: *mut c_void,
    reply: *mut c_char,
    reply_cap: usize,
) -> c_int {
    command(s, reply, reply_cap, |session| {
        let name = sasl::mechanism_name(arg(mechanism, "mechanism")?)?;
        let cb = cb.ok_or(Failure::Null("SASL callback"))?;
        let mech = CallbackMechanism { name, cb, user };
        Ok(session.auth_mechanism(Box::new(mech))?)
    })
}

/// smtplib's `initial_response_ok`: with 1 (the default), AUTH carries the
/// first response of mechanisms that have one (PLAIN, SCRAM-SHA-256,
/// OAUTHBEARER, XOAUTH2, a callback mechanism); with 0, AUTH is sent alone,
/// the server answers with an empty challenge (334) and the response
/// follows on its own line. For servers that refuse initial responses.
///
/// # Returns
/// `SMTPC_OK` or `SMTPC_E_NULL`.
///
/// # Safety
/// `s` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_set_initial_response(s: *mut smtp_session, on: i32) -> c_int {
    set_flag(s, on, Session::set_initial_response)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A callback that answers with `want` bytes of 'x', recording the
    /// capacities it was offered.
    struct Script {
        want: i64,
        caps: Vec<usize>,
        challenges: Vec<Option<Vec<u8>>>,
    }

    unsafe extern "C" fn scripted(
        user: *mut c_void,
        challenge: *const c_char,
        challenge_len: usize,
        response: *mut c_char,
        response_cap: usize,
    ) -> i64 {
        let s = &mut *(user as *mut Script);
        s.caps.push(response_cap);
        s.challenges.push(if challenge.is_null() {
            None
        } else {
            assert_eq!(*challenge.add(challenge_len), 0, "NUL after the challenge");
            Some(std::slice::from_raw_parts(challenge.cast::<u8>(), challenge_len).to_vec())
        });
        if s.want >= 0 && (s.want as usize) <= response_cap {
            std::ptr::write_bytes(response, b'x', s.want as usize);
        }
        s.want
    }

    fn mech(script: &mut Script) -> CallbackMechanism {
        CallbackMechanism {
            name: "X".into(),
            cb: scripted,
            user: (script as *mut Script).cast(),
        }
    }

    fn script(want: i64) -> Script {
        Script {
            want,
            caps: Vec::new(),
            challenges: Vec::new(),
        }
    }

    #[test]
    fn a_response_that_fits_is_taken_at_once() {
        let mut s = script(5);
        let r = mech(&mut s).initial_response().unwrap().unwrap();
        assert_eq!(r, b"xxxxx");
        assert_eq!(s.caps, [FIRST_CAP]);
        assert_eq!(s.challenges, [None]);
        let r = mech(&mut s).step(b"a\0b").unwrap();
        assert_eq!(r, b"xxxxx");
        assert_eq!(s.challenges[1].as_deref(), Some(&b"a\0b"[..]));
        let mut s = script(0);
        assert_eq!(mech(&mut s).step(b"").unwrap(), b"");
        assert_eq!(s.challenges, [Some(Vec::new())], "empty, not NULL");
    }

    #[test]
    fn a_longer_response_gets_a_buffer_of_its_size() {
        let mut s = script(5000);
        let r = mech(&mut s).step(b"c").unwrap();
        assert_eq!(r.len(), 5000);
        assert_eq!(s.caps, [FIRST_CAP, 5000]);
        let max = SMTPC_SASL_MAX_RESPONSE as i64;
        let mut s = script(max);
        assert_eq!(mech(&mut s).step(b"c").unwrap().len(), max as usize);
        let mut s = script(max + 1);
        let e = mech(&mut s).step(b"c").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Callback);
        assert_eq!(s.caps.len(), 1, "no buffer over the maximum is offered");
        let mut s = script(i64::MAX);
        assert_eq!(
            mech(&mut s).step(b"c").unwrap_err().kind,
            ErrorKind::Callback
        );
    }

    #[test]
    fn no_response_only_counts_for_the_initial_call() {
        let mut s = script(SMTPC_SASL_NO_RESPONSE);
        assert_eq!(mech(&mut s).initial_response().unwrap(), None);
        let e = mech(&mut s).step(b"").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Callback);
        let mut s = script(-1);
        assert_eq!(
            mech(&mut s).initial_response().unwrap_err().kind,
            ErrorKind::Callback
        );
    }
}
