// Package smtpc is the Go binding of libsmtpc, an SMTP client library with
// Python smtplib's verbs (include/smtpc.h is the reference for every call).
//
// Commands return the server's reply code and text, whatever its class, and
// a nil error; a library failure (a negative SMTPC_E_* code: bad argument,
// I/O, TLS, timeout...) comes back as a non-nil *Error instead. A Session
// is used by one goroutine at a time; Close releases it.
//
// The package links with -lsmtpc: by default the library built in this
// repository (target/release, found at run time through an rpath); set
// CGO_CFLAGS/CGO_LDFLAGS to use another copy.
package smtpc

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#cgo LDFLAGS: -L${SRCDIR}/../../target/release -lsmtpc -Wl,-rpath,${SRCDIR}/../../target/release
#include <stdint.h>
#include <stdlib.h>
#include <smtpc.h>

void smtpc_go_trace_trampoline(void *user, const char *line);
*/
import "C"

import (
	"fmt"
	"runtime"
	"runtime/cgo"
	"strings"
	"unsafe"
)

// Library error codes (the C header's SMTPC_E_*).
const (
	ENull         = int(C.SMTPC_E_NULL)
	EInvalid      = int(C.SMTPC_E_INVALID)
	EState        = int(C.SMTPC_E_STATE)
	EResolve      = int(C.SMTPC_E_RESOLVE)
	EConnect      = int(C.SMTPC_E_CONNECT)
	ETimeout      = int(C.SMTPC_E_TIMEOUT)
	EIO           = int(C.SMTPC_E_IO)
	EClosed       = int(C.SMTPC_E_CLOSED)
	ETLS          = int(C.SMTPC_E_TLS)
	ETLSVerify    = int(C.SMTPC_E_TLS_VERIFY)
	EProtocol     = int(C.SMTPC_E_PROTOCOL)
	ENotSupported = int(C.SMTPC_E_NOT_SUPPORTED)
	EAuthMech     = int(C.SMTPC_E_AUTH_MECH)
	ETooLarge     = int(C.SMTPC_E_TOO_LARGE)
	EInsecure     = int(C.SMTPC_E_INSECURE)
	EPanic        = int(C.SMTPC_E_PANIC)
	ECallback     = int(C.SMTPC_E_CALLBACK)
)

// Which step of the last Sendmail the server refused (FailedStep).
const (
	StepNone    = int(C.SMTPC_STEP_NONE)
	StepMail    = int(C.SMTPC_STEP_MAIL)
	StepRcpt    = int(C.SMTPC_STEP_RCPT)
	StepData    = int(C.SMTPC_STEP_DATA)
	StepMessage = int(C.SMTPC_STEP_MESSAGE)
	StepHelo    = int(C.SMTPC_STEP_HELO)
)

// MaxReplyBytes is the longest reply text the library accepts.
const MaxReplyBytes = int(C.SMTPC_MAX_REPLY_BYTES)

// replyCap is the size of the buffer every reply is first read into.
const replyCap = 1024

// Error is a library failure: Code is the negative SMTPC_E_* value,
// Message its smtpc_strerror text, Detail smtp_session_last_error's
// message ("" when the library gave none) and Op the C function.
//
// errors.Is(err, &smtpc.Error{Code: smtpc.ETLSVerify}) matches by code.
type Error struct {
	Op      string
	Code    int
	Message string
	Detail  string
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s: %s (%d)", e.Op, e.Message, e.Code)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// Is reports whether target is an *Error with the same Code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Strerror is the library's English description of an SMTPC_* or reply code.
func Strerror(code int) string { return C.GoString(C.smtpc_strerror(C.int(code))) }

// Version is the library's version, e.g. "0.1.0".
func Version() string { return C.GoString(C.smtpc_version()) }

// RcptReply is the server's answer to one recipient of Sendmail.
type RcptReply struct {
	Code int
	Text string
}

// Session is one SMTP connection handle (smtp_session).
type Session struct {
	ptr   *C.smtp_session
	trace *traceState
	h     cgo.Handle     // refers to trace; 0 when none
	slot  unsafe.Pointer // C memory holding h, the `user` pointer C keeps
}

// New creates a session: not connected, timeout 30 s, TLS verification on.
func New() *Session {
	p := C.smtp_session_new()
	if p == nil {
		panic("smtpc: smtp_session_new: out of memory")
	}
	s := &Session{ptr: p}
	runtime.SetFinalizer(s, (*Session).Close)
	return s
}

// Close closes the connection (without QUIT) and releases the handle. It is
// safe to call more than once; any later call returns an ENull *Error.
func (s *Session) Close() error {
	if s.ptr != nil {
		C.smtp_session_free(s.ptr)
		s.ptr = nil
	}
	s.dropTrace()
	runtime.SetFinalizer(s, nil)
	return nil
}

func (s *Session) dropTrace() {
	if s.slot != nil {
		C.free(s.slot)
		s.slot = nil
	}
	if s.h != 0 {
		s.h.Delete()
		s.h = 0
	}
	s.trace = nil
}

// ---- marshalling helpers --------------------------------------------------

func (s *Session) lastError() string {
	return sizedText(func(b *C.char, n C.size_t) C.size_t { return C.smtp_session_last_error(s.ptr, b, n) })
}

func (s *Session) fail(op string, rc C.int) error {
	return &Error{Op: op, Code: int(rc), Message: Strerror(int(rc)), Detail: s.lastError()}
}

func (s *Session) check(op string, rc C.int) error {
	runtime.KeepAlive(s)
	if rc < 0 {
		return s.fail(op, rc)
	}
	return nil
}

// sizedText reads a text the C API writes snprintf-style.
func sizedText(fill func(*C.char, C.size_t) C.size_t) string {
	buf := make([]byte, replyCap)
	n := int(fill((*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf))))
	if n >= len(buf) {
		buf = make([]byte, n+1)
		n = int(fill((*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf))))
		if n >= len(buf) {
			n = len(buf) - 1
		}
	}
	return string(buf[:n])
}

// cstrings converts arguments to C strings, refusing embedded NUL bytes.
// The caller frees them with freeAll.
func cstrings(op string, args ...string) ([]*C.char, error) {
	for _, a := range args {
		if strings.IndexByte(a, 0) >= 0 {
			return nil, &Error{Op: op, Code: EInvalid, Message: Strerror(EInvalid), Detail: "argument contains a NUL byte"}
		}
	}
	out := make([]*C.char, len(args))
	for i, a := range args {
		out[i] = C.CString(a)
	}
	return out, nil
}

func freeAll(ps []*C.char) {
	for _, p := range ps {
		C.free(unsafe.Pointer(p))
	}
}

func cstrlen(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return len(b)
}

// command runs one C command with a reply buffer. A text that may have
// been cut is read again in full through smtp_session_last_reply.
func (s *Session) command(op string, call func(buf *C.char, n C.size_t) C.int) (int, string, error) {
	buf := make([]byte, replyCap)
	rc := call((*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
	if st := s.trace; st != nil && st.pending != nil {
		p := st.pending
		st.pending = nil
		panic(p)
	}
	if rc < 0 {
		err := s.fail(op, rc)
		runtime.KeepAlive(s)
		return 0, "", err
	}
	text := string(buf[:cstrlen(buf)])
	// The buffer is cut on a UTF-8 boundary: a cut text is 1020..1023 bytes.
	if len(text)+4 >= replyCap && int(C.smtp_session_last_code(s.ptr)) == int(rc) {
		full := sizedText(func(b *C.char, n C.size_t) C.size_t { return C.smtp_session_last_reply(s.ptr, b, n) })
		if len(full) > len(text) && strings.HasPrefix(full, text) {
			text = full
		}
	}
	runtime.KeepAlive(s)
	return int(rc), text, nil
}

// ---- settings ---------------------------------------------------------------

// SetTimeout sets the timeout in milliseconds (connect, each reply, TLS...).
func (s *Session) SetTimeout(ms uint32) error {
	return s.check("smtp_session_set_timeout_ms", C.smtp_session_set_timeout_ms(s.ptr, C.uint32_t(ms)))
}

// SetDebuglevel sets the transcript level: 0 off, 1 smtplib's, 2 timestamped.
func (s *Session) SetDebuglevel(level int) error {
	return s.check("smtp_session_set_debuglevel", C.smtp_session_set_debuglevel(s.ptr, C.int32_t(level)))
}

// SetTrace sends transcript lines to fn instead of stderr (SetDebuglevel
// decides which lines exist); nil restores stderr. fn runs on the calling
// goroutine during a Session call; a panic in fn is re-raised when that
// call returns.
func (s *Session) SetTrace(fn func(line string)) error {
	if fn == nil {
		rc := C.smtp_session_set_trace(s.ptr, nil, nil)
		if err := s.check("smtp_session_set_trace", rc); err != nil {
			return err
		}
		s.dropTrace()
		return nil
	}
	st := &traceState{fn: fn}
	h := cgo.NewHandle(st)
	slot := C.malloc(C.size_t(unsafe.Sizeof(C.uintptr_t(0))))
	*(*C.uintptr_t)(slot) = C.uintptr_t(h)
	rc := C.smtp_session_set_trace(s.ptr, C.smtpc_trace_fn(C.smtpc_go_trace_trampoline), slot)
	if err := s.check("smtp_session_set_trace", rc); err != nil {
		C.free(slot)
		h.Delete()
		return err
	}
	s.dropTrace() // C has let go of the previous slot
	s.trace, s.h, s.slot = st, h, slot
	return nil
}

// SetTLSVerify turns certificate and host name verification on or off.
func (s *Session) SetTLSVerify(on bool) error {
	v := C.int32_t(0)
	if on {
		v = 1
	}
	return s.check("smtp_session_set_tls_verify", C.smtp_session_set_tls_verify(s.ptr, v))
}

// SetCAFile trusts the PEM certificates in path instead of the system's
// roots; "" goes back to the system's roots.
func (s *Session) SetCAFile(path string) error {
	const op = "smtp_session_set_ca_file"
	if path == "" {
		return s.check(op, C.smtp_session_set_ca_file(s.ptr, nil))
	}
	cs, err := cstrings(op, path)
	if err != nil {
		return err
	}
	defer freeAll(cs)
	return s.check(op, C.smtp_session_set_ca_file(s.ptr, cs[0]))
}

// SetLocalHostname sets the name EHLO/HELO send by default; "" restores
// the library's default (this host's FQDN).
func (s *Session) SetLocalHostname(name string) error {
	const op = "smtp_session_set_local_hostname"
	if name == "" {
		return s.check(op, C.smtp_session_set_local_hostname(s.ptr, nil))
	}
	cs, err := cstrings(op, name)
	if err != nil {
		return err
	}
	defer freeAll(cs)
	return s.check(op, C.smtp_session_set_local_hostname(s.ptr, cs[0]))
}

// SetPipelining allows (default) or forbids pipelining MAIL/RCPT/DATA.
func (s *Session) SetPipelining(on bool) error {
	v := C.int32_t(0)
	if on {
		v = 1
	}
	return s.check("smtp_session_set_pipelining", C.smtp_session_set_pipelining(s.ptr, v))
}

// ---- commands -----------------------------------------------------------------

// Connect connects to host:port and returns the greeting.
func (s *Session) Connect(host string, port uint16) (int, string, error) {
	const op = "smtp_session_connect"
	cs, err := cstrings(op, host)
	if err != nil {
		return 0, "", err
	}
	defer freeAll(cs)
	return s.command(op, func(b *C.char, n C.size_t) C.int {
		return C.smtp_session_connect(s.ptr, cs[0], C.uint16_t(port), b, n)
	})
}

// ConnectTLS connects with implicit TLS (smtplib's SMTP_SSL, port 465).
func (s *Session) ConnectTLS(host string, port uint16) (int, string, error) {
	const op = "smtp_session_connect_tls"
	cs, err := cstrings(op, host)
	if err != nil {
		return 0, "", err
	}
	defer freeAll(cs)
	return s.command(op, func(b *C.char, n C.size_t) C.int {
		return C.smtp_session_connect_tls(s.ptr, cs[0], C.uint16_t(port), b, n)
	})
}

// optional converts "" to NULL, anything else to a C string.
func optional(op, v string) (*C.char, func(), error) {
	if v == "" {
		return nil, func() {}, nil
	}
	cs, err := cstrings(op, v)
	if err != nil {
		return nil, nil, err
	}
	return cs[0], func() { freeAll(cs) }, nil
}

// Helo sends HELO name ("" for the local host name).
func (s *Session) Helo(name string) (int, string, error) {
	const op = "smtp_session_helo"
	p, free, err := optional(op, name)
	if err != nil {
		return 0, "", err
	}
	defer free()
	return s.command(op, func(b *C.char, n C.size_t) C.int { return C.smtp_session_helo(s.ptr, p, b, n) })
}

// Ehlo sends EHLO name ("" for the local host name) and records the
// extensions for HasExtn.
func (s *Session) Ehlo(name string) (int, string, error) {
	const op = "smtp_session_ehlo"
	p, free, err := optional(op, name)
	if err != nil {
		return 0, "", err
	}
	defer free()
	return s.command(op, func(b *C.char, n C.size_t) C.int { return C.smtp_session_ehlo(s.ptr, p, b, n) })
}

// HasExtn reports whether the last EHLO listed the extension.
func (s *Session) HasExtn(name string) bool {
	cs, err := cstrings("smtp_session_has_extn", name)
	if err != nil {
		return false
	}
	defer freeAll(cs)
	ok := C.smtp_session_has_extn(s.ptr, cs[0]) == 1
	runtime.KeepAlive(s)
	return ok
}

// ExtnParams returns the parameters of an extension from the last EHLO
// ("" when it has none); an ENotSupported *Error when it was not listed.
func (s *Session) ExtnParams(name string) (string, error) {
	const op = "smtp_session_extn_params"
	cs, err := cstrings(op, name)
	if err != nil {
		return "", err
	}
	defer freeAll(cs)
	var rc C.int
	text := sizedText(func(b *C.char, n C.size_t) C.size_t {
		rc = C.smtp_session_extn_params(s.ptr, cs[0], b, n)
		if rc < 0 {
			return 0
		}
		return C.size_t(rc)
	})
	if err := s.check(op, rc); err != nil {
		return "", err
	}
	return text, nil
}

// Starttls sends STARTTLS and, on 220, performs the TLS handshake. Send
// EHLO again afterwards.
func (s *Session) Starttls() (int, string, error) {
	return s.command("smtp_session_starttls", func(b *C.char, n C.size_t) C.int {
		return C.smtp_session_starttls(s.ptr, b, n)
	})
}

// Login authenticates (CRAM-MD5, PLAIN, LOGIN, as the server offers).
func (s *Session) Login(user, password string) (int, string, error) {
	const op = "smtp_session_login"
	cs, err := cstrings(op, user, password)
	if err != nil {
		return 0, "", err
	}
	defer freeAll(cs)
	return s.command(op, func(b *C.char, n C.size_t) C.int {
		return C.smtp_session_login(s.ptr, cs[0], cs[1], b, n)
	})
}

// Sendmail sends msg from `from` to every address in to. The reply is the
// final one (250 even when some recipients were refused: see Recipients)
// or the refusing one (see FailedStep).
func (s *Session) Sendmail(from string, to []string, msg []byte) (int, string, error) {
	const op = "smtp_session_sendmail"
	cs, err := cstrings(op, append([]string{from}, to...)...)
	if err != nil {
		return 0, "", err
	}
	defer freeAll(cs)
	// The address array lives in C memory: it holds C pointers only.
	var arr **C.char
	if len(to) > 0 {
		mem := C.malloc(C.size_t(len(to)) * C.size_t(unsafe.Sizeof((*C.char)(nil))))
		defer C.free(mem)
		copy(unsafe.Slice((**C.char)(mem), len(to)), cs[1:])
		arr = (**C.char)(mem)
	}
	var body *C.char
	if len(msg) > 0 {
		body = (*C.char)(unsafe.Pointer(&msg[0]))
	}
	return s.command(op, func(b *C.char, n C.size_t) C.int {
		return C.smtp_session_sendmail(s.ptr, cs[0], arr, C.size_t(len(to)), body, C.size_t(len(msg)), b, n)
	})
}

// Recipients returns the answer to each recipient of the last Sendmail, in
// the order they were given.
func (s *Session) Recipients() ([]RcptReply, error) {
	count := int(C.smtp_session_rcpt_count(s.ptr))
	out := make([]RcptReply, 0, count)
	for i := 0; i < count; i++ {
		buf := make([]byte, replyCap)
		rc := C.smtp_session_rcpt_code(s.ptr, C.size_t(i), (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
		if rc >= 0 && cstrlen(buf)+4 >= replyCap {
			// Possibly cut, and this call gives no length: read it again
			// into a buffer that holds any reply the library accepts.
			buf = make([]byte, MaxReplyBytes+1)
			rc = C.smtp_session_rcpt_code(s.ptr, C.size_t(i), (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
		}
		if err := s.check("smtp_session_rcpt_code", rc); err != nil {
			return nil, err
		}
		out = append(out, RcptReply{Code: int(rc), Text: string(buf[:cstrlen(buf)])})
	}
	return out, nil
}

// FailedStep tells which step of the last Sendmail was refused (Step*).
func (s *Session) FailedStep() int {
	v := int(C.smtp_session_failed_step(s.ptr))
	runtime.KeepAlive(s)
	return v
}

func (s *Session) oneArg(op, arg string, call func(a, b *C.char, n C.size_t) C.int) (int, string, error) {
	cs, err := cstrings(op, arg)
	if err != nil {
		return 0, "", err
	}
	defer freeAll(cs)
	return s.command(op, func(b *C.char, n C.size_t) C.int { return call(cs[0], b, n) })
}

// Vrfy sends VRFY address.
func (s *Session) Vrfy(address string) (int, string, error) {
	return s.oneArg("smtp_session_vrfy", address, func(a, b *C.char, n C.size_t) C.int {
		return C.smtp_session_vrfy(s.ptr, a, b, n)
	})
}

// Expn sends EXPN list.
func (s *Session) Expn(list string) (int, string, error) {
	return s.oneArg("smtp_session_expn", list, func(a, b *C.char, n C.size_t) C.int {
		return C.smtp_session_expn(s.ptr, a, b, n)
	})
}

// Help sends HELP, with topic unless it is "".
func (s *Session) Help(topic string) (int, string, error) {
	const op = "smtp_session_help"
	p, free, err := optional(op, topic)
	if err != nil {
		return 0, "", err
	}
	defer free()
	return s.command(op, func(b *C.char, n C.size_t) C.int { return C.smtp_session_help(s.ptr, p, b, n) })
}

// Noop sends NOOP.
func (s *Session) Noop() (int, string, error) {
	return s.command("smtp_session_noop", func(b *C.char, n C.size_t) C.int { return C.smtp_session_noop(s.ptr, b, n) })
}

// Rset sends RSET.
func (s *Session) Rset() (int, string, error) {
	return s.command("smtp_session_rset", func(b *C.char, n C.size_t) C.int { return C.smtp_session_rset(s.ptr, b, n) })
}

// Quit sends QUIT and closes the connection; the session can connect again.
func (s *Session) Quit() (int, string, error) {
	return s.command("smtp_session_quit", func(b *C.char, n C.size_t) C.int { return C.smtp_session_quit(s.ptr, b, n) })
}

// Disconnect closes the connection without QUIT (the handle stays usable).
func (s *Session) Disconnect() error {
	return s.check("smtp_session_close", C.smtp_session_close(s.ptr))
}

// Docmd sends any command: cmd, then a space and args unless args is "".
func (s *Session) Docmd(cmd, args string) (int, string, error) {
	const op = "smtp_session_docmd"
	cs, err := cstrings(op, cmd)
	if err != nil {
		return 0, "", err
	}
	defer freeAll(cs)
	p, free, err := optional(op, args)
	if err != nil {
		return 0, "", err
	}
	defer free()
	return s.command(op, func(b *C.char, n C.size_t) C.int { return C.smtp_session_docmd(s.ptr, cs[0], p, b, n) })
}

// ---- state --------------------------------------------------------------------

// LastCode is the code of the last reply received (0 if none).
func (s *Session) LastCode() int {
	v := int(C.smtp_session_last_code(s.ptr))
	runtime.KeepAlive(s)
	return v
}

// LastReply is the whole text of the last reply received.
func (s *Session) LastReply() string {
	t := sizedText(func(b *C.char, n C.size_t) C.size_t { return C.smtp_session_last_reply(s.ptr, b, n) })
	runtime.KeepAlive(s)
	return t
}

// LastError is the detailed message of the last call's failure ("" if none).
func (s *Session) LastError() string {
	t := s.lastError()
	runtime.KeepAlive(s)
	return t
}
