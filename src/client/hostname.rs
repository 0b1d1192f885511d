//! This host's name for EHLO/HELO, as smtplib picks it: the fully
//! qualified domain name when it has a dot, else the connection's local
//! address as an address literal (RFC 5321 §4.1.3).

use std::ffi::{CStr, CString};
use std::net::SocketAddr;

pub fn local_hostname(local_addr: Option<SocketAddr>) -> String {
    if let Some(fqdn) = fqdn().filter(|n| n.contains('.')) {
        return fqdn;
    }
    match local_addr {
        Some(SocketAddr::V6(a)) => format!("[IPv6:{}]", a.ip()),
        Some(SocketAddr::V4(a)) => format!("[{}]", a.ip()),
        None => "[127.0.0.1]".to_string(),
    }
}

/// The canonical name of `gethostname()`, as `getfqdn` resolves it.
fn fqdn() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into our buffer.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return None;
    }
    let name = CStr::from_bytes_until_nul(&buf)
        .ok()?
        .to_str()
        .ok()?
        .to_string();
    let c_name = CString::new(name.clone()).ok()?;
    // SAFETY: a zeroed addrinfo is a valid "no hints" value; the result list
    // is freed below before returning.
    unsafe {
        let mut hints: libc::addrinfo = std::mem::zeroed();
        hints.ai_flags = libc::AI_CANONNAME;
        hints.ai_socktype = libc::SOCK_STREAM;
        let mut res: *mut libc::addrinfo = std::ptr::null_mut();
        if libc::getaddrinfo(c_name.as_ptr(), std::ptr::null(), &hints, &mut res) != 0
            || res.is_null()
        {
            return Some(name);
        }
        let canon = (*res).ai_canonname;
        let out = if canon.is_null() {
            name
        } else {
            CStr::from_ptr(canon).to_string_lossy().into_owned()
        };
        libc::freeaddrinfo(res);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_always_a_valid_ehlo_argument() {
        let name = local_hostname("127.0.0.1:25".parse().ok());
        assert!(!name.is_empty() && !name.contains(' '), "{name}");
        assert!(name.contains('.') || name.starts_with('['), "{name}");
    }
}
