//! The one writer of caller-owned text buffers.

use std::ffi::c_char;

/// Copies `text` into `buf`: NUL-terminated when `cap > 0`, cut at
/// `cap - 1` bytes on a UTF-8 boundary. Returns the full length of `text`
/// (snprintf-style), so a caller can size a buffer and call again.
///
/// # Safety
/// `buf` is NULL (then `cap` is ignored) or valid for `cap` bytes.
pub(crate) unsafe fn write_text(buf: *mut c_char, cap: usize, text: &str) -> usize {
    if buf.is_null() || cap == 0 {
        return text.len();
    }
    let mut n = text.len().min(cap - 1);
    while !text.is_char_boundary(n) {
        n -= 1;
    }
    std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), n);
    *buf.add(n) = 0;
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(cap: usize, text: &str) -> (Vec<u8>, usize) {
        let mut buf = vec![0x55u8; cap + 1];
        let n = unsafe { write_text(buf.as_mut_ptr().cast(), cap, text) };
        (buf, n)
    }

    #[test]
    fn fits_and_terminates() {
        let (buf, n) = written(8, "hello");
        assert_eq!(n, 5);
        assert_eq!(&buf[..6], b"hello\0");
    }

    #[test]
    fn truncates_on_utf8_boundary() {
        // "é" is two bytes; a 3-byte buffer holds "a" + NUL, not half of é.
        let (buf, n) = written(3, "aé");
        assert_eq!(n, 3);
        assert_eq!(&buf[..2], b"a\0");
    }

    #[test]
    fn one_byte_buffer_gets_only_the_nul_and_zero_is_untouched() {
        let (buf, _) = written(1, "text");
        assert_eq!(buf[0], 0);
        assert_eq!(buf[1], 0x55);
        let (buf, n) = written(0, "text");
        assert_eq!((buf[0], n), (0x55, 4));
    }
}
