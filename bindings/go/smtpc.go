// Package smtpc is the Go binding of libsmtpc, an SMTP client library with
// Python smtplib's verbs (its header, smtpc.h, documents every call).
//
// Commands return the server's reply code and text, whatever its class, and
// a nil error; a library failure (a negative SMTPC_E_* code: bad argument,
// I/O, TLS, timeout...) comes back as a non-nil *Error instead, which
// matches the sentinel errors with errors.Is (errors.Is(err,
// smtpc.ErrTLSVerify)) and reports Timeout() == true for a timeout.
//
// Every command that talks to the server has a ...Context form: when the
// context is cancelled or its deadline passes, the call in flight is
// stopped through smtp_session_cancel (within tens of milliseconds, also
// during the name lookup, the connect, the TLS handshake or a body being
// written), the connection is closed and the error wraps ctx.Err() as well
// as ErrCancelled. The plain forms use context.Background().
//
// A Session is used by one goroutine at a time; only Cancel may be called
// from another goroutine while a call is in flight. Close releases it.
//
// The package links with libsmtpc through pkg-config (`#cgo pkg-config:
// smtpc`): install the C library (make install) or point PKG_CONFIG_PATH
// at its smtpc.pc; at run time the loader finds libsmtpc.so.0 as for any
// C program (ld.so.conf, LD_LIBRARY_PATH).
package smtpc

/*
#cgo pkg-config: smtpc
#include <stdint.h>
#include <stdlib.h>
#include <smtpc.h>

void smtpc_go_trace_trampoline(void *user, const char *line);
int64_t smtpc_go_read_trampoline(void *user, char *buf, size_t cap);
int smtpc_go_next_trampoline(void *user, const char **from, const char *const **to, size_t *n_to,
                             const char **msg, size_t *msg_len);
int64_t smtpc_go_sasl_trampoline(void *user, const char *challenge, size_t challenge_len, char *response,
                                 size_t response_cap);
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
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
	ECancelled    = int(C.SMTPC_E_CANCELLED)
	EBusy         = int(C.SMTPC_E_BUSY)
)

// Sentinel errors, one per SMTPC_E_* code: errors.Is(err, smtpc.ErrTimeout).
var (
	ErrNull         error = &Error{Code: ENull}
	ErrInvalid      error = &Error{Code: EInvalid}
	ErrState        error = &Error{Code: EState}
	ErrResolve      error = &Error{Code: EResolve}
	ErrConnect      error = &Error{Code: EConnect}
	ErrTimeout      error = &Error{Code: ETimeout}
	ErrIO           error = &Error{Code: EIO}
	ErrClosed       error = &Error{Code: EClosed}
	ErrTLS          error = &Error{Code: ETLS}
	ErrTLSVerify    error = &Error{Code: ETLSVerify}
	ErrProtocol     error = &Error{Code: EProtocol}
	ErrNotSupported error = &Error{Code: ENotSupported}
	ErrAuthMech     error = &Error{Code: EAuthMech}
	ErrTooLarge     error = &Error{Code: ETooLarge}
	ErrInsecure     error = &Error{Code: EInsecure}
	ErrPanic        error = &Error{Code: EPanic}
	ErrCallback     error = &Error{Code: ECallback}
	ErrCancelled    error = &Error{Code: ECancelled}
	ErrBusy         error = &Error{Code: EBusy}
)

func init() {
	for _, e := range []error{ErrNull, ErrInvalid, ErrState, ErrResolve, ErrConnect, ErrTimeout, ErrIO,
		ErrClosed, ErrTLS, ErrTLSVerify, ErrProtocol, ErrNotSupported, ErrAuthMech, ErrTooLarge,
		ErrInsecure, ErrPanic, ErrCallback, ErrCancelled, ErrBusy} {
		e.(*Error).Message = Strerror(e.(*Error).Code)
	}
}

// Which step of the last Sendmail the server refused (FailedStep).
const (
	StepNone    = int(C.SMTPC_STEP_NONE)
	StepMail    = int(C.SMTPC_STEP_MAIL)
	StepRcpt    = int(C.SMTPC_STEP_RCPT)
	StepData    = int(C.SMTPC_STEP_DATA)
	StepMessage = int(C.SMTPC_STEP_MESSAGE)
	StepHelo    = int(C.SMTPC_STEP_HELO)
)

// Outcome is where a message stands after a send (smtp_session_outcome).
type Outcome int

const (
	// OutcomeNone: no message was tried.
	OutcomeNone = Outcome(C.SMTPC_OUTCOME_NONE)
	// OutcomeAccepted: the server's final reply to the whole message was 2xx.
	OutcomeAccepted = Outcome(C.SMTPC_OUTCOME_ACCEPTED)
	// OutcomeRefused: the server refused it (see FailedStep); not delivered.
	OutcomeRefused = Outcome(C.SMTPC_OUTCOME_REFUSED)
	// OutcomeNotSent: certainly not delivered and not refused; safe to send again.
	OutcomeNotSent = Outcome(C.SMTPC_OUTCOME_NOT_SENT)
	// OutcomeUnknown: its end of data went out but no final reply came:
	// sending again may duplicate it.
	OutcomeUnknown = Outcome(C.SMTPC_OUTCOME_UNKNOWN)
)

func (o Outcome) String() string {
	switch o {
	case OutcomeNone:
		return "none"
	case OutcomeAccepted:
		return "accepted"
	case OutcomeRefused:
		return "refused"
	case OutcomeNotSent:
		return "not sent"
	case OutcomeUnknown:
		return "unknown"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// TLSPolicy chooses when the session uses TLS (SetTLSPolicy).
type TLSPolicy int

const (
	TLSManual        = TLSPolicy(C.SMTPC_TLS_MANUAL)        // the caller calls Starttls (default)
	TLSOpportunistic = TLSPolicy(C.SMTPC_TLS_OPPORTUNISTIC) // Connect runs EHLO and STARTTLS when offered
	TLSRequired      = TLSPolicy(C.SMTPC_TLS_REQUIRED)      // ... and fails with ErrInsecure without it
	TLSImplicit      = TLSPolicy(C.SMTPC_TLS_IMPLICIT)      // Connect uses implicit TLS
)

// MaxReplyBytes is the longest reply text the library accepts.
const MaxReplyBytes = int(C.SMTPC_MAX_REPLY_BYTES)

// replyCap is the size of the buffer every reply is first read into.
const replyCap = 1024

// Error is a library failure: Code is the negative SMTPC_E_* value,
// Message its smtpc_strerror text, Detail smtp_session_last_error's
// message ("" when the library gave none) and Op the C function. Err is
// the underlying cause when there is one: ctx.Err() for a call stopped by
// its context, the io.Reader's error for a streamed body.
type Error struct {
	Op      string
	Code    int
	Message string
	Detail  string
	Err     error
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s: %s (%d)", e.Op, e.Message, e.Code)
	if e.Op == "" {
		msg = fmt.Sprintf("smtpc: %s (%d)", e.Message, e.Code)
	}
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Is reports whether target is an *Error with the same Code, so the
// sentinels (ErrTimeout...) and &Error{Code: ...} both match.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Unwrap gives the cause (ctx.Err(), a reader's error), or nil.
func (e *Error) Unwrap() error { return e.Err }

// Timeout reports whether the call ran out of time: the library's own
// timeout (ErrTimeout) or the context's deadline.
func (e *Error) Timeout() bool {
	return e.Code == ETimeout || errors.Is(e.Err, context.DeadlineExceeded)
}

// Strerror is the library's English description of an SMTPC_* or reply code.
func Strerror(code int) string { return C.GoString(C.smtpc_strerror(C.int(code))) }

// Version is the library's version, e.g. "0.1.0".
func Version() string { return C.GoString(C.smtpc_version()) }

// RcptReply is the server's answer to one recipient.
type RcptReply struct {
	Code     int
	Text     string
	Enhanced string // e.g. "5.1.1" ("" when the reply had none; Sendmail only)
}

// Session is one SMTP connection handle (smtp_session).
type Session struct {
	ptr *C.smtp_session

	// mu guards what Cancel, called from another goroutine, reads.
	mu        sync.Mutex
	inflight  bool
	cancelled bool // Cancel reached the C call in flight
	// stale: a cancel may have landed after the last call returned, so the
	// next call can come back SMTPC_E_CANCELLED before doing anything.
	stale bool

	trace     *traceState
	freeTrace func()
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
// safe to call more than once; any later call returns ErrNull. It must not
// run while another goroutine is inside a call on s (cancel that call's
// context, or call Cancel, and wait for it first).
func (s *Session) Close() error {
	s.mu.Lock()
	p := s.ptr
	s.ptr = nil
	s.mu.Unlock()
	if p != nil {
		C.smtp_session_free(p)
	}
	s.dropTrace()
	runtime.SetFinalizer(s, nil)
	return nil
}

func (s *Session) dropTrace() {
	if s.freeTrace != nil {
		s.freeTrace()
		s.freeTrace = nil
	}
	s.trace = nil
}

// Cancel stops the call in flight on s, from any goroutine: it returns
// ErrCancelled promptly and the connection is closed (the session can
// connect again). Without a call in flight it does nothing.
func (s *Session) Cancel() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflight && s.ptr != nil {
		C.smtp_session_cancel(s.ptr)
		s.cancelled = true
	}
}

// blocking runs one C call that may wait on the network, letting ctx (and
// Cancel) stop it through smtp_session_cancel.
func (s *Session) blocking(ctx context.Context, fn func() C.int) (C.int, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return C.int(ECancelled), err
	}
	for attempt := 0; ; attempt++ {
		s.mu.Lock()
		s.inflight, s.cancelled = true, false
		stale := s.stale
		s.stale = false
		s.mu.Unlock()
		var stop chan struct{}
		if ctx.Done() != nil {
			stop = make(chan struct{})
			go func() {
				select {
				case <-ctx.Done():
					s.Cancel()
				case <-stop:
				}
			}()
		}
		rc := fn()
		if stop != nil {
			close(stop)
		}
		s.mu.Lock()
		s.inflight = false
		cancelled := s.cancelled
		if cancelled && int(rc) != ECancelled {
			s.stale = true
		}
		s.mu.Unlock()
		if int(rc) == ECancelled && stale && !cancelled && attempt == 0 {
			continue // the late cancel of an earlier call: it did nothing, run again
		}
		if int(rc) == ECancelled && ctx.Err() != nil {
			return rc, ctx.Err()
		}
		return rc, nil
	}
}

// ---- marshalling helpers --------------------------------------------------

func (s *Session) lastError() string {
	return sizedText(func(b *C.char, n C.size_t) C.size_t { return C.smtp_session_last_error(s.ptr, b, n) })
}

func (s *Session) fail(op string, rc C.int, cause error) error {
	return &Error{Op: op, Code: int(rc), Message: Strerror(int(rc)), Detail: s.lastError(), Err: cause}
}

func (s *Session) check(op string, rc C.int) error {
	runtime.KeepAlive(s)
	if rc < 0 {
		return s.fail(op, rc, nil)
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

// codeText reads a (code, text) pair from a call that gives no length:
// a text that may have been cut is read again into a buffer that holds any
// reply the library accepts.
func codeText(fill func(*C.char, C.size_t) C.int) (C.int, string) {
	buf := make([]byte, replyCap)
	rc := fill((*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
	if rc >= 0 && cstrlen(buf)+4 >= replyCap {
		buf = make([]byte, MaxReplyBytes+1)
		rc = fill((*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
	}
	return rc, string(buf[:cstrlen(buf)])
}

func hasNUL(v string) bool { return strings.IndexByte(v, 0) >= 0 }

func nulError(op string) error {
	return &Error{Op: op, Code: EInvalid, Message: Strerror(EInvalid), Detail: "argument contains a NUL byte"}
}

// cstrings converts arguments to C strings, refusing embedded NUL bytes.
// The caller frees them with freeAll.
func cstrings(op string, args ...string) ([]*C.char, error) {
	for _, a := range args {
		if hasNUL(a) {
			return nil, nulError(op)
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

// cArray puts C string pointers in C memory (C may not see Go memory that
// holds pointers); free with C.free.
func cArray(ps []*C.char) (**C.char, func()) {
	if len(ps) == 0 {
		return nil, func() {}
	}
	mem := C.malloc(C.size_t(len(ps)) * C.size_t(unsafe.Sizeof((*C.char)(nil))))
	copy(unsafe.Slice((**C.char)(mem), len(ps)), ps)
	return (**C.char)(mem), func() { C.free(mem) }
}

func cstrlen(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return len(b)
}

func boolInt(on bool) C.int32_t {
	if on {
		return 1
	}
	return 0
}

// command runs one C command with a reply buffer under ctx. A text that
// may have been cut is read again in full through smtp_session_last_reply.
func (s *Session) command(ctx context.Context, op string, call func(buf *C.char, n C.size_t) C.int) (int, string, error) {
	buf := make([]byte, replyCap)
	rc, cause := s.blocking(ctx, func() C.int {
		return call((*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
	})
	if st := s.trace; st != nil && st.pending != nil {
		p := st.pending
		st.pending = nil
		panic(p)
	}
	if rc < 0 {
		err := s.fail(op, rc, cause)
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

// SetTimeout sets the timeout in milliseconds (name lookup, connect, TLS
// handshake, each reply, each write; see smtp_session_set_timeout_ms).
func (s *Session) SetTimeout(ms uint32) error {
	return s.check("smtp_session_set_timeout_ms", C.smtp_session_set_timeout_ms(s.ptr, C.uint32_t(ms)))
}

// SetBodyTimeout bounds writing one whole message body, in milliseconds;
// 0 uses the timeout of SetTimeout.
func (s *Session) SetBodyTimeout(ms uint32) error {
	return s.check("smtp_session_set_body_timeout_ms", C.smtp_session_set_body_timeout_ms(s.ptr, C.uint32_t(ms)))
}

// SetDebuglevel sets the transcript level: 0 off, 1 smtplib's, 2 timestamped.
func (s *Session) SetDebuglevel(level int) error {
	return s.check("smtp_session_set_debuglevel", C.smtp_session_set_debuglevel(s.ptr, C.int32_t(level)))
}

// SetTrace sends transcript lines to fn instead of stderr (SetDebuglevel
// decides which lines exist); nil restores stderr. fn runs on the calling
// goroutine during a Session call; a panic in fn is raised again when that
// call returns.
func (s *Session) SetTrace(fn func(line string)) error {
	if fn == nil {
		if err := s.check("smtp_session_set_trace", C.smtp_session_set_trace(s.ptr, nil, nil)); err != nil {
			return err
		}
		s.dropTrace()
		return nil
	}
	st := &traceState{fn: fn}
	slot, free := newSlot(st)
	rc := C.smtp_session_set_trace(s.ptr, C.smtpc_trace_fn(C.smtpc_go_trace_trampoline), slot)
	if err := s.check("smtp_session_set_trace", rc); err != nil {
		free()
		return err
	}
	s.dropTrace() // C has let go of the previous slot
	s.trace, s.freeTrace = st, free
	return nil
}

// SetTLSVerify turns certificate and host name verification on or off.
func (s *Session) SetTLSVerify(on bool) error {
	return s.check("smtp_session_set_tls_verify", C.smtp_session_set_tls_verify(s.ptr, boolInt(on)))
}

// SetCAFile trusts the PEM certificates in path instead of the system's
// roots; "" goes back to the system's roots.
func (s *Session) SetCAFile(path string) error {
	const op = "smtp_session_set_ca_file"
	p, free, err := optional(op, path)
	if err != nil {
		return err
	}
	defer free()
	return s.check(op, C.smtp_session_set_ca_file(s.ptr, p))
}

// SetLocalHostname sets the name EHLO/HELO send by default; "" restores
// the library's default (this host's FQDN).
func (s *Session) SetLocalHostname(name string) error {
	const op = "smtp_session_set_local_hostname"
	p, free, err := optional(op, name)
	if err != nil {
		return err
	}
	defer free()
	return s.check(op, C.smtp_session_set_local_hostname(s.ptr, p))
}

// SetSourceAddress sets the local address (an IP literal) and port (0:
// any) to connect from; "" clears it.
func (s *Session) SetSourceAddress(address string, port uint16) error {
	const op = "smtp_session_set_source_address"
	p, free, err := optional(op, address)
	if err != nil {
		return err
	}
	defer free()
	return s.check(op, C.smtp_session_set_source_address(s.ptr, p, C.uint16_t(port)))
}

// SetPipelining allows (default) or forbids pipelining MAIL/RCPT/DATA.
func (s *Session) SetPipelining(on bool) error {
	return s.check("smtp_session_set_pipelining", C.smtp_session_set_pipelining(s.ptr, boolInt(on)))
}

// SetChunking allows (default) or forbids BDAT (RFC 3030).
func (s *Session) SetChunking(on bool) error {
	return s.check("smtp_session_set_chunking", C.smtp_session_set_chunking(s.ptr, boolInt(on)))
}

// SetBinaryMIME asks for BODY=BINARYMIME (bytes sent as they are, over BDAT).
func (s *Session) SetBinaryMIME(on bool) error {
	return s.check("smtp_session_set_binarymime", C.smtp_session_set_binarymime(s.ptr, boolInt(on)))
}

// SetTLSPolicy chooses when Connect uses TLS (TLSManual by default).
func (s *Session) SetTLSPolicy(p TLSPolicy) error {
	return s.check("smtp_session_set_tls_policy", C.smtp_session_set_tls_policy(s.ptr, C.int(p)))
}

// SetAllowInsecureAuth allows AUTH in clear text to a non-loopback host.
func (s *Session) SetAllowInsecureAuth(on bool) error {
	return s.check("smtp_session_set_allow_insecure_auth", C.smtp_session_set_allow_insecure_auth(s.ptr, boolInt(on)))
}

// SetDSN sets the DSN parameters (RFC 3461) of the next messages: ret
// "FULL" or "HDRS", envid, notify ("NEVER" or a comma list of SUCCESS,
// FAILURE, DELAY), orcpt. "" and false leave a parameter out; all of them
// empty turns DSN off.
func (s *Session) SetDSN(ret, envid, notify string, orcpt bool) error {
	const op = "smtp_session_set_dsn"
	r, f1, err := optional(op, ret)
	if err != nil {
		return err
	}
	defer f1()
	e, f2, err := optional(op, envid)
	if err != nil {
		return err
	}
	defer f2()
	n, f3, err := optional(op, notify)
	if err != nil {
		return err
	}
	defer f3()
	return s.check(op, C.smtp_session_set_dsn(s.ptr, r, e, n, boolInt(orcpt)))
}

// ---- commands -----------------------------------------------------------------

// Connect connects to host:port and returns the greeting.
func (s *Session) Connect(host string, port uint16) (int, string, error) {
	return s.ConnectContext(context.Background(), host, port)
}

// ConnectContext is Connect, stopped when ctx is done.
func (s *Session) ConnectContext(ctx context.Context, host string, port uint16) (int, string, error) {
	return s.oneArg(ctx, "smtp_session_connect", host, func(h, b *C.char, n C.size_t) C.int {
		return C.smtp_session_connect(s.ptr, h, C.uint16_t(port), b, n)
	})
}

// ConnectTLS connects with implicit TLS (smtplib's SMTP_SSL, port 465).
func (s *Session) ConnectTLS(host string, port uint16) (int, string, error) {
	return s.ConnectTLSContext(context.Background(), host, port)
}

// ConnectTLSContext is ConnectTLS, stopped when ctx is done.
func (s *Session) ConnectTLSContext(ctx context.Context, host string, port uint16) (int, string, error) {
	return s.oneArg(ctx, "smtp_session_connect_tls", host, func(h, b *C.char, n C.size_t) C.int {
		return C.smtp_session_connect_tls(s.ptr, h, C.uint16_t(port), b, n)
	})
}

func (s *Session) oneArg(ctx context.Context, op, arg string, call func(a, b *C.char, n C.size_t) C.int) (int, string, error) {
	cs, err := cstrings(op, arg)
	if err != nil {
		return 0, "", err
	}
	defer freeAll(cs)
	return s.command(ctx, op, func(b *C.char, n C.size_t) C.int { return call(cs[0], b, n) })
}

func (s *Session) optArg(ctx context.Context, op, arg string, call func(a, b *C.char, n C.size_t) C.int) (int, string, error) {
	p, free, err := optional(op, arg)
	if err != nil {
		return 0, "", err
	}
	defer free()
	return s.command(ctx, op, func(b *C.char, n C.size_t) C.int { return call(p, b, n) })
}

// Helo sends HELO name ("" for the local host name).
func (s *Session) Helo(name string) (int, string, error) {
	return s.HeloContext(context.Background(), name)
}

// HeloContext is Helo, stopped when ctx is done.
func (s *Session) HeloContext(ctx context.Context, name string) (int, string, error) {
	return s.optArg(ctx, "smtp_session_helo", name, func(a, b *C.char, n C.size_t) C.int {
		return C.smtp_session_helo(s.ptr, a, b, n)
	})
}

// Ehlo sends EHLO name ("" for the local host name) and records the
// extensions for HasExtn.
func (s *Session) Ehlo(name string) (int, string, error) {
	return s.EhloContext(context.Background(), name)
}

// EhloContext is Ehlo, stopped when ctx is done.
func (s *Session) EhloContext(ctx context.Context, name string) (int, string, error) {
	return s.optArg(ctx, "smtp_session_ehlo", name, func(a, b *C.char, n C.size_t) C.int {
		return C.smtp_session_ehlo(s.ptr, a, b, n)
	})
}

// Lhlo switches the session to LMTP and sends LHLO; after Sendmail,
// RcptDataReplies gives each recipient's delivery reply.
func (s *Session) Lhlo(name string) (int, string, error) {
	return s.LhloContext(context.Background(), name)
}

// LhloContext is Lhlo, stopped when ctx is done.
func (s *Session) LhloContext(ctx context.Context, name string) (int, string, error) {
	return s.optArg(ctx, "smtp_session_lhlo", name, func(a, b *C.char, n C.size_t) C.int {
		return C.smtp_session_lhlo(s.ptr, a, b, n)
	})
}

// HasExtn reports whether the last EHLO listed the extension.
func (s *Session) HasExtn(name string) bool {
	if hasNUL(name) {
		return false
	}
	cs, _ := cstrings("smtp_session_has_extn", name)
	defer freeAll(cs)
	ok := C.smtp_session_has_extn(s.ptr, cs[0]) == 1
	runtime.KeepAlive(s)
	return ok
}

// ExtnParams returns the parameters of an extension from the last EHLO
// ("" when it has none); ErrNotSupported when it was not listed.
func (s *Session) ExtnParams(name string) (string, error) {
	const op = "smtp_session_extn_params"
	cs, err := cstrings(op, name)
	if err != nil {
		return "", err
	}
	defer freeAll(cs)
	if C.smtp_session_has_extn(s.ptr, cs[0]) != 1 {
		if s.ptr == nil {
			return "", s.fail(op, C.int(ENull), nil)
		}
		return "", &Error{Op: op, Code: ENotSupported, Message: Strerror(ENotSupported),
			Detail: "the last EHLO did not list " + name}
	}
	text := sizedText(func(b *C.char, n C.size_t) C.size_t { return C.smtp_session_extn_params(s.ptr, cs[0], b, n) })
	runtime.KeepAlive(s)
	return text, nil
}

// Extensions lists the keywords of the last EHLO, upper-cased, in the
// server's order (smtplib's esmtp_features), with their parameters.
func (s *Session) Extensions() map[string]string {
	n := int(C.smtp_session_extn_count(s.ptr))
	out := make(map[string]string, n)
	for i := 0; i < n; i++ {
		name := sizedText(func(b *C.char, c C.size_t) C.size_t { return C.smtp_session_extn_name(s.ptr, C.size_t(i), b, c) })
		params, _ := s.ExtnParams(name)
		out[name] = params
	}
	runtime.KeepAlive(s)
	return out
}

// Starttls sends STARTTLS and, on 220, performs the TLS handshake. Send
// EHLO again afterwards.
func (s *Session) Starttls() (int, string, error) { return s.StarttlsContext(context.Background()) }

// StarttlsContext is Starttls, stopped when ctx is done.
func (s *Session) StarttlsContext(ctx context.Context) (int, string, error) {
	return s.command(ctx, "smtp_session_starttls", func(b *C.char, n C.size_t) C.int {
		return C.smtp_session_starttls(s.ptr, b, n)
	})
}

// Login authenticates (CRAM-MD5, PLAIN, LOGIN, as the server offers).
func (s *Session) Login(user, password string) (int, string, error) {
	return s.LoginContext(context.Background(), user, password)
}

// LoginContext is Login, stopped when ctx is done.
func (s *Session) LoginContext(ctx context.Context, user, password string) (int, string, error) {
	const op = "smtp_session_login"
	cs, err := cstrings(op, user, password)
	if err != nil {
		return 0, "", err
	}
	defer freeAll(cs)
	return s.command(ctx, op, func(b *C.char, n C.size_t) C.int {
		return C.smtp_session_login(s.ptr, cs[0], cs[1], b, n)
	})
}

// Auth authenticates with one mechanism: "PLAIN", "LOGIN", "CRAM-MD5" or
// "XOAUTH2" (secret is then the OAuth 2.0 access token).
func (s *Session) Auth(mechanism, user, secret string) (int, string, error) {
	return s.AuthContext(context.Background(), mechanism, user, secret)
}

// AuthContext is Auth, stopped when ctx is done.
func (s *Session) AuthContext(ctx context.Context, mechanism, user, secret string) (int, string, error) {
	const op = "smtp_session_auth"
	cs, err := cstrings(op, mechanism, user, secret)
	if err != nil {
		return 0, "", err
	}
	defer freeAll(cs)
	return s.command(ctx, op, func(b *C.char, n C.size_t) C.int {
		return C.smtp_session_auth(s.ptr, cs[0], cs[1], cs[2], b, n)
	})
}

// ErrNoInitialResponse, returned by an AuthCallback function for the
// initial response (challenge nil), sends AUTH alone.
var ErrNoInitialResponse = errors.New("smtpc: the mechanism has no initial response")

// AuthCallback authenticates with a mechanism of the caller's (smtplib's
// auth(mechanism, authobject)): fn gets nil for the initial response (return
// ErrNoInitialResponse when there is none), then each decoded challenge, and
// returns the response bytes; the library does the base64 and the AUTH
// exchange. An error from fn aborts it (the error wraps fn's).
func (s *Session) AuthCallback(mechanism string, fn func(challenge []byte) ([]byte, error)) (int, string, error) {
	return s.AuthCallbackContext(context.Background(), mechanism, fn)
}

// AuthCallbackContext is AuthCallback, stopped when ctx is done.
func (s *Session) AuthCallbackContext(ctx context.Context, mechanism string, fn func(challenge []byte) ([]byte, error)) (int, string, error) {
	const op = "smtp_session_auth_callback"
	st := &saslState{fn: fn}
	slot, free := newSlot(st)
	defer free()
	code, text, err := s.oneArg(ctx, op, mechanism, func(m, b *C.char, n C.size_t) C.int {
		return C.smtp_session_auth_callback(s.ptr, m, C.smtpc_sasl_fn(C.smtpc_go_sasl_trampoline), slot, b, n)
	})
	repanic(st.pending)
	if e, ok := err.(*Error); ok && e.Code == ECallback && e.Err == nil {
		e.Err = st.err
	}
	return code, text, err
}

// SetInitialResponse: with true (the default) AUTH carries the first
// response of mechanisms that have one; false sends AUTH alone.
func (s *Session) SetInitialResponse(on bool) error {
	return s.check("smtp_session_set_initial_response", C.smtp_session_set_initial_response(s.ptr, boolInt(on)))
}

// Sendmail sends msg from `from` to every address in to. The reply is the
// final one (250 even when some recipients were refused: see Recipients)
// or the refusing one (see FailedStep); after an error, Outcome tells
// whether the message may have been delivered.
func (s *Session) Sendmail(from string, to []string, msg []byte) (int, string, error) {
	return s.SendmailContext(context.Background(), from, to, msg)
}

// SendmailContext is Sendmail, stopped when ctx is done.
func (s *Session) SendmailContext(ctx context.Context, from string, to []string, msg []byte) (int, string, error) {
	const op = "smtp_session_sendmail"
	cs, err := cstrings(op, append([]string{from}, to...)...)
	if err != nil {
		return 0, "", err
	}
	defer freeAll(cs)
	arr, freeArr := cArray(cs[1:])
	defer freeArr()
	var body *C.char
	if len(msg) > 0 {
		body = (*C.char)(unsafe.Pointer(&msg[0]))
	}
	return s.command(ctx, op, func(b *C.char, n C.size_t) C.int {
		return C.smtp_session_sendmail(s.ptr, cs[0], arr, C.size_t(len(to)), body, C.size_t(len(msg)), b, n)
	})
}

// SendmailReader is Sendmail with the message read from r as the library
// needs it, in constant memory whatever its size. size is announced as
// SIZE= and checked against the server's limit (-1 when unknown). If r
// fails, the connection is closed before the end of data, so nothing
// partial is delivered (OutcomeNotSent), and the error wraps r's error.
func (s *Session) SendmailReader(from string, to []string, r io.Reader, size int64) (int, string, error) {
	return s.SendmailReaderContext(context.Background(), from, to, r, size)
}

// SendmailReaderContext is SendmailReader, stopped when ctx is done.
func (s *Session) SendmailReaderContext(ctx context.Context, from string, to []string, r io.Reader, size int64) (int, string, error) {
	const op = "smtp_session_sendmail_cb"
	cs, err := cstrings(op, append([]string{from}, to...)...)
	if err != nil {
		return 0, "", err
	}
	defer freeAll(cs)
	arr, freeArr := cArray(cs[1:])
	defer freeArr()
	st := &readState{r: r}
	slot, free := newSlot(st)
	defer free()
	code, text, err := s.command(ctx, op, func(b *C.char, n C.size_t) C.int {
		return C.smtp_session_sendmail_cb(s.ptr, cs[0], arr, C.size_t(len(to)),
			C.smtpc_read_fn(C.smtpc_go_read_trampoline), slot, C.int64_t(size), b, n)
	})
	repanic(st.pending)
	if e, ok := err.(*Error); ok && e.Code == ECallback && e.Err == nil {
		e.Err = st.err
	}
	return code, text, err
}

// Recipients returns the answer to each recipient of the last Sendmail, in
// the order they were given.
func (s *Session) Recipients() ([]RcptReply, error) {
	count := int(C.smtp_session_rcpt_count(s.ptr))
	out := make([]RcptReply, 0, count)
	for i := 0; i < count; i++ {
		rc, text := codeText(func(b *C.char, n C.size_t) C.int { return C.smtp_session_rcpt_code(s.ptr, C.size_t(i), b, n) })
		if err := s.check("smtp_session_rcpt_code", rc); err != nil {
			return nil, err
		}
		enh := sizedText(func(b *C.char, n C.size_t) C.size_t {
			return C.smtp_session_rcpt_enhanced(s.ptr, C.size_t(i), b, n)
		})
		out = append(out, RcptReply{Code: int(rc), Text: text, Enhanced: enh})
	}
	runtime.KeepAlive(s)
	return out, nil
}

// RcptDataReplies returns, in LMTP mode, each recipient's delivery reply
// after the last Sendmail (Code < 0 for a recipient that was refused).
func (s *Session) RcptDataReplies() []RcptReply {
	count := int(C.smtp_session_rcpt_count(s.ptr))
	out := make([]RcptReply, count)
	for i := range out {
		rc, text := codeText(func(b *C.char, n C.size_t) C.int {
			return C.smtp_session_rcpt_data_code(s.ptr, C.size_t(i), b, n)
		})
		out[i] = RcptReply{Code: int(rc), Text: text}
	}
	runtime.KeepAlive(s)
	return out
}

// FailedStep tells which step of the last Sendmail was refused (Step*).
func (s *Session) FailedStep() int {
	v := int(C.smtp_session_failed_step(s.ptr))
	runtime.KeepAlive(s)
	return v
}

// Outcome tells where the message of the last Sendmail stands.
func (s *Session) Outcome() Outcome {
	v := Outcome(C.smtp_session_outcome(s.ptr))
	runtime.KeepAlive(s)
	return v
}

// Vrfy sends VRFY address.
func (s *Session) Vrfy(address string) (int, string, error) {
	return s.VrfyContext(context.Background(), address)
}

// VrfyContext is Vrfy, stopped when ctx is done.
func (s *Session) VrfyContext(ctx context.Context, address string) (int, string, error) {
	return s.oneArg(ctx, "smtp_session_vrfy", address, func(a, b *C.char, n C.size_t) C.int {
		return C.smtp_session_vrfy(s.ptr, a, b, n)
	})
}

// Expn sends EXPN list.
func (s *Session) Expn(list string) (int, string, error) {
	return s.ExpnContext(context.Background(), list)
}

// ExpnContext is Expn, stopped when ctx is done.
func (s *Session) ExpnContext(ctx context.Context, list string) (int, string, error) {
	return s.oneArg(ctx, "smtp_session_expn", list, func(a, b *C.char, n C.size_t) C.int {
		return C.smtp_session_expn(s.ptr, a, b, n)
	})
}

// Help sends HELP, with topic unless it is "".
func (s *Session) Help(topic string) (int, string, error) {
	return s.HelpContext(context.Background(), topic)
}

// HelpContext is Help, stopped when ctx is done.
func (s *Session) HelpContext(ctx context.Context, topic string) (int, string, error) {
	return s.optArg(ctx, "smtp_session_help", topic, func(a, b *C.char, n C.size_t) C.int {
		return C.smtp_session_help(s.ptr, a, b, n)
	})
}

// Noop sends NOOP.
func (s *Session) Noop() (int, string, error) { return s.NoopContext(context.Background()) }

// NoopContext is Noop, stopped when ctx is done.
func (s *Session) NoopContext(ctx context.Context) (int, string, error) {
	return s.command(ctx, "smtp_session_noop", func(b *C.char, n C.size_t) C.int { return C.smtp_session_noop(s.ptr, b, n) })
}

// Rset sends RSET.
func (s *Session) Rset() (int, string, error) { return s.RsetContext(context.Background()) }

// RsetContext is Rset, stopped when ctx is done.
func (s *Session) RsetContext(ctx context.Context) (int, string, error) {
	return s.command(ctx, "smtp_session_rset", func(b *C.char, n C.size_t) C.int { return C.smtp_session_rset(s.ptr, b, n) })
}

// Quit sends QUIT and closes the connection; the session can connect again.
func (s *Session) Quit() (int, string, error) { return s.QuitContext(context.Background()) }

// QuitContext is Quit, stopped when ctx is done.
func (s *Session) QuitContext(ctx context.Context) (int, string, error) {
	return s.command(ctx, "smtp_session_quit", func(b *C.char, n C.size_t) C.int { return C.smtp_session_quit(s.ptr, b, n) })
}

// Disconnect closes the connection without QUIT (the handle stays usable).
func (s *Session) Disconnect() error {
	return s.check("smtp_session_close", C.smtp_session_close(s.ptr))
}

// Docmd sends any command: cmd, then a space and args unless args is "".
func (s *Session) Docmd(cmd, args string) (int, string, error) {
	return s.DocmdContext(context.Background(), cmd, args)
}

// DocmdContext is Docmd, stopped when ctx is done.
func (s *Session) DocmdContext(ctx context.Context, cmd, args string) (int, string, error) {
	const op = "smtp_session_docmd"
	cs, err := cstrings(op, cmd)
	if err != nil {
		return 0, "", err
	}
	defer freeAll(cs)
	return s.optArg(ctx, op, args, func(a, b *C.char, n C.size_t) C.int {
		return C.smtp_session_docmd(s.ptr, cs[0], a, b, n)
	})
}

// ---- state --------------------------------------------------------------------

// IsConnected reports whether the session has an open connection.
func (s *Session) IsConnected() bool {
	v := C.smtp_session_is_connected(s.ptr) == 1
	runtime.KeepAlive(s)
	return v
}

// IsTLS reports whether the connection is encrypted.
func (s *Session) IsTLS() bool {
	v := C.smtp_session_is_tls(s.ptr) == 1
	runtime.KeepAlive(s)
	return v
}

// Waits is how many times the session waited on the network for a reply.
func (s *Session) Waits() uint64 {
	v := uint64(C.smtp_session_waits(s.ptr))
	runtime.KeepAlive(s)
	return v
}

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

// LastEnhanced is the enhanced status code of the last reply ("5.1.1"),
// "" when it had none.
func (s *Session) LastEnhanced() string {
	t := sizedText(func(b *C.char, n C.size_t) C.size_t { return C.smtp_session_last_enhanced(s.ptr, b, n) })
	runtime.KeepAlive(s)
	return t
}

// LastError is the detailed message of the last call's failure ("" if none).
func (s *Session) LastError() string {
	t := s.lastError()
	runtime.KeepAlive(s)
	return t
}
