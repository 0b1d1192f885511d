//! Cancelling a call from another thread: the one part of a session that
//! another thread may touch while a call is in flight.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use super::error::{Error, ErrorKind, Result};

/// Shared between a session and whoever may cancel its calls.
///
/// `cancel` raises a flag that every wait of the call in flight checks (the
/// waits come in slices no longer than `SLICE`) and shuts the session's
/// socket down, which wakes a blocked read or write at once. The flag stays
/// up until the call ends, so a cancel that races with the start of a call
/// is not lost: that call returns at its first check.
#[derive(Debug, Default)]
pub struct Canceller {
    requested: AtomicBool,
    /// The socket to shut down; -1 when none. Held locked while shutting
    /// down, and by the socket's owner before closing it, so a cancel never
    /// reaches a descriptor number that was closed and reused.
    fd: Mutex<Option<RawFd>>,
}

/// The longest a wait that cannot be woken (the name lookup, a connect in
/// progress) sleeps before it checks the flag.
pub const SLICE: std::time::Duration = std::time::Duration::from_millis(20);

impl Canceller {
    /// Makes the call in flight (or, if none, the next call) return
    /// `ErrorKind::Cancelled` promptly.
    // Not inlined, so that tools name these frames (tests/c/helgrind.supp).
    #[inline(never)]
    pub fn cancel(&self) {
        self.requested.store(true, Ordering::SeqCst);
        let fd = self.fd.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(fd) = *fd {
            // SAFETY: `fd` is open: its owner clears it under this lock
            // before closing it.
            unsafe {
                libc::shutdown(fd, libc::SHUT_RDWR);
            }
        }
    }

    #[inline(never)]
    pub fn is_requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    /// `Err(Cancelled)` once a cancel was requested.
    pub fn check(&self) -> Result<()> {
        if self.is_requested() {
            Err(cancelled())
        } else {
            Ok(())
        }
    }

    /// Ends the cancel of the call that just returned.
    #[inline(never)]
    pub(crate) fn clear(&self) {
        self.requested.store(false, Ordering::SeqCst);
    }

    /// The socket a cancel shuts down (`None`: before closing it).
    #[inline(never)]
    pub(crate) fn watch(&self, fd: Option<RawFd>) {
        *self.fd.lock().unwrap_or_else(|p| p.into_inner()) = fd;
    }
}

pub fn cancelled() -> Error {
    Error::new(ErrorKind::Cancelled, "cancelled by smtp_session_cancel")
}
