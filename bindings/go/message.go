package smtpc

/*
#include <stdlib.h>
#include <smtpc.h>
*/
import "C"

import (
	"context"
	"runtime"
	"unsafe"
)

// Lowest TLS versions for SetTLSMinVersion.
const (
	TLS12 = int(C.SMTPC_TLS_1_2)
	TLS13 = int(C.SMTPC_TLS_1_3)
)

// ---- more settings ----------------------------------------------------------

// SetTLSMinVersion sets the lowest TLS version a handshake may use (TLS12,
// TLS13; 0: the default).
func (s *Session) SetTLSMinVersion(v int) error {
	return s.check("smtp_session_set_tls_min_version", C.smtp_session_set_tls_min_version(s.ptr, C.int32_t(v)))
}

// SetTLSServerName verifies the certificate against name (and sends it as
// SNI) instead of the host connected to; "" goes back to that host.
func (s *Session) SetTLSServerName(name string) error {
	return s.optSetter("smtp_session_set_tls_server_name", name, func(p *C.char) C.int {
		return C.smtp_session_set_tls_server_name(s.ptr, p)
	})
}

// SetCADir trusts the PEM certificates of a directory; "" goes back to the
// CA file or the system's roots.
func (s *Session) SetCADir(path string) error {
	return s.optSetter("smtp_session_set_ca_dir", path, func(p *C.char) C.int {
		return C.smtp_session_set_ca_dir(s.ptr, p)
	})
}

// SetClientCert presents a client certificate (PEM; keyPath "" when the key
// is in certPath too). Both "": none.
func (s *Session) SetClientCert(certPath, keyPath string) error {
	const op = "smtp_session_set_client_cert"
	c, f1, err := optional(op, certPath)
	if err != nil {
		return err
	}
	defer f1()
	k, f2, err := optional(op, keyPath)
	if err != nil {
		return err
	}
	defer f2()
	return s.check(op, C.smtp_session_set_client_cert(s.ptr, c, k))
}

// SetMailOptions sets the ESMTP parameters added to every MAIL FROM
// (smtplib's mail_options); none clears them.
func (s *Session) SetMailOptions(opts ...string) error {
	return s.listSetter("smtp_session_set_mail_options", opts, func(arr **C.char, n C.size_t) C.int {
		return C.smtp_session_set_mail_options(s.ptr, arr, n)
	})
}

// SetRcptOptions sets the ESMTP parameters added to every RCPT TO.
func (s *Session) SetRcptOptions(opts ...string) error {
	return s.listSetter("smtp_session_set_rcpt_options", opts, func(arr **C.char, n C.size_t) C.int {
		return C.smtp_session_set_rcpt_options(s.ptr, arr, n)
	})
}

func (s *Session) optSetter(op, v string, call func(*C.char) C.int) error {
	p, free, err := optional(op, v)
	if err != nil {
		return err
	}
	defer free()
	return s.check(op, call(p))
}

func (s *Session) listSetter(op string, v []string, call func(**C.char, C.size_t) C.int) error {
	cs, err := cstrings(op, v...)
	if err != nil {
		return err
	}
	defer freeAll(cs)
	arr, free := cArray(cs)
	defer free()
	return s.check(op, call(arr, C.size_t(len(cs))))
}

// ---- smtplib's low-level verbs --------------------------------------------------

// Mail sends MAIL FROM:<from> with ESMTP params (smtplib's mail).
func (s *Session) Mail(from string, params ...string) (int, string, error) {
	return s.MailContext(context.Background(), from, params...)
}

// MailContext is Mail, stopped when ctx is done.
func (s *Session) MailContext(ctx context.Context, from string, params ...string) (int, string, error) {
	return s.verbWithParams(ctx, "smtp_session_mail", from, params, func(a *C.char, arr **C.char, n C.size_t, b *C.char, c C.size_t) C.int {
		return C.smtp_session_mail(s.ptr, a, arr, n, b, c)
	})
}

// Rcpt sends RCPT TO:<to> with ESMTP params (smtplib's rcpt).
func (s *Session) Rcpt(to string, params ...string) (int, string, error) {
	return s.RcptContext(context.Background(), to, params...)
}

// RcptContext is Rcpt, stopped when ctx is done.
func (s *Session) RcptContext(ctx context.Context, to string, params ...string) (int, string, error) {
	return s.verbWithParams(ctx, "smtp_session_rcpt", to, params, func(a *C.char, arr **C.char, n C.size_t, b *C.char, c C.size_t) C.int {
		return C.smtp_session_rcpt(s.ptr, a, arr, n, b, c)
	})
}

func (s *Session) verbWithParams(ctx context.Context, op, addr string, params []string,
	call func(*C.char, **C.char, C.size_t, *C.char, C.size_t) C.int) (int, string, error) {
	cs, err := cstrings(op, append([]string{addr}, params...)...)
	if err != nil {
		return 0, "", err
	}
	defer freeAll(cs)
	arr, free := cArray(cs[1:])
	defer free()
	return s.command(ctx, op, func(b *C.char, n C.size_t) C.int { return call(cs[0], arr, C.size_t(len(params)), b, n) })
}

// Data sends DATA and, on 354, msg; returns the final reply (smtplib's data).
func (s *Session) Data(msg []byte) (int, string, error) { return s.DataContext(context.Background(), msg) }

// DataContext is Data, stopped when ctx is done.
func (s *Session) DataContext(ctx context.Context, msg []byte) (int, string, error) {
	var body *C.char
	if len(msg) > 0 {
		body = (*C.char)(unsafe.Pointer(&msg[0]))
	}
	return s.command(ctx, "smtp_session_data", func(b *C.char, n C.size_t) C.int {
		return C.smtp_session_data(s.ptr, body, C.size_t(len(msg)), b, n)
	})
}

// Putcmd queues one command line without reading (smtplib's putcmd).
func (s *Session) Putcmd(cmd, args string) error {
	const op = "smtp_session_putcmd"
	cs, err := cstrings(op, cmd)
	if err != nil {
		return err
	}
	defer freeAll(cs)
	return s.optSetter(op, args, func(a *C.char) C.int { return C.smtp_session_putcmd(s.ptr, cs[0], a) })
}

// Getreply reads the next reply, sending what Putcmd queued (smtplib's getreply).
func (s *Session) Getreply() (int, string, error) { return s.GetreplyContext(context.Background()) }

// GetreplyContext is Getreply, stopped when ctx is done.
func (s *Session) GetreplyContext(ctx context.Context) (int, string, error) {
	return s.command(ctx, "smtp_session_getreply", func(b *C.char, n C.size_t) C.int {
		return C.smtp_session_getreply(s.ptr, b, n)
	})
}

// ---- messages ---------------------------------------------------------------------

// Message builds an RFC 5322 message (smtp_message): headers, text and
// HTML bodies, attachments, DKIM. Close releases it; a finalizer is only a
// safety net. Setters return an error for a refused value (header
// injection, a bad address...).
type MessageBuilder struct {
	ptr *C.smtp_message
}

// NewMessage creates an empty message.
func NewMessage() *MessageBuilder {
	p := C.smtp_message_new()
	if p == nil {
		panic("smtpc: smtp_message_new: out of memory")
	}
	m := &MessageBuilder{ptr: p}
	runtime.SetFinalizer(m, (*MessageBuilder).Close)
	return m
}

// Close releases the message; safe to call twice.
func (m *MessageBuilder) Close() error {
	if m.ptr != nil {
		C.smtp_message_free(m.ptr)
		m.ptr = nil
	}
	runtime.SetFinalizer(m, nil)
	return nil
}

func (m *MessageBuilder) lastError() string {
	return sizedText(func(b *C.char, n C.size_t) C.size_t { return C.smtp_message_last_error(m.ptr, b, n) })
}

func (m *MessageBuilder) check(op string, rc C.int) error {
	runtime.KeepAlive(m)
	if rc < 0 {
		return &Error{Op: op, Code: int(rc), Message: Strerror(int(rc)), Detail: m.lastError()}
	}
	return nil
}

// strs runs call with C copies of vs ("" becomes NULL when optional[i]).
func (m *MessageBuilder) strs(op string, vs []string, opt []bool, call func([]*C.char) C.int) error {
	ps := make([]*C.char, len(vs))
	for i, v := range vs {
		if hasNUL(v) {
			return nulError(op)
		}
		if v == "" && opt[i] {
			continue
		}
		ps[i] = C.CString(v)
		defer C.free(unsafe.Pointer(ps[i]))
	}
	return m.check(op, call(ps))
}

func (m *MessageBuilder) mailbox(op, address, name string, call func(a, n *C.char) C.int) error {
	return m.strs(op, []string{address, name}, []bool{false, true}, func(p []*C.char) C.int { return call(p[0], p[1]) })
}

// SetFrom sets the From mailbox (name "" for none).
func (m *MessageBuilder) SetFrom(address, name string) error {
	return m.mailbox("smtp_message_set_from", address, name, func(a, n *C.char) C.int { return C.smtp_message_set_from(m.ptr, a, n) })
}

// SetSender sets the Sender mailbox.
func (m *MessageBuilder) SetSender(address, name string) error {
	return m.mailbox("smtp_message_set_sender", address, name, func(a, n *C.char) C.int { return C.smtp_message_set_sender(m.ptr, a, n) })
}

// AddTo adds a To mailbox.
func (m *MessageBuilder) AddTo(address, name string) error {
	return m.mailbox("smtp_message_add_to", address, name, func(a, n *C.char) C.int { return C.smtp_message_add_to(m.ptr, a, n) })
}

// AddCc adds a Cc mailbox.
func (m *MessageBuilder) AddCc(address, name string) error {
	return m.mailbox("smtp_message_add_cc", address, name, func(a, n *C.char) C.int { return C.smtp_message_add_cc(m.ptr, a, n) })
}

// AddBcc adds a Bcc mailbox (an envelope recipient; never rendered).
func (m *MessageBuilder) AddBcc(address, name string) error {
	return m.mailbox("smtp_message_add_bcc", address, name, func(a, n *C.char) C.int { return C.smtp_message_add_bcc(m.ptr, a, n) })
}

// AddReplyTo adds a Reply-To mailbox.
func (m *MessageBuilder) AddReplyTo(address, name string) error {
	return m.mailbox("smtp_message_add_reply_to", address, name, func(a, n *C.char) C.int { return C.smtp_message_add_reply_to(m.ptr, a, n) })
}

// SetSubject sets the Subject.
func (m *MessageBuilder) SetSubject(subject string) error {
	return m.strs("smtp_message_set_subject", []string{subject}, []bool{false}, func(p []*C.char) C.int {
		return C.smtp_message_set_subject(m.ptr, p[0])
	})
}

// AddHeader adds a header field.
func (m *MessageBuilder) AddHeader(name, value string) error {
	return m.strs("smtp_message_add_header", []string{name, value}, []bool{false, false}, func(p []*C.char) C.int {
		return C.smtp_message_add_header(m.ptr, p[0], p[1])
	})
}

func bytesArg(b []byte) (*C.char, C.size_t) {
	if len(b) == 0 {
		return nil, 0
	}
	return (*C.char)(unsafe.Pointer(&b[0])), C.size_t(len(b))
}

// SetText sets the plain-text body (UTF-8).
func (m *MessageBuilder) SetText(text string) error {
	b := []byte(text)
	p, n := bytesArg(b)
	return m.check("smtp_message_set_text", C.smtp_message_set_text(m.ptr, p, n))
}

// SetHTML sets the HTML body.
func (m *MessageBuilder) SetHTML(html string) error {
	b := []byte(html)
	p, n := bytesArg(b)
	return m.check("smtp_message_set_html", C.smtp_message_set_html(m.ptr, p, n))
}

// SetRaw makes the message these RFC 5322 bytes, as they are.
func (m *MessageBuilder) SetRaw(msg []byte) error {
	p, n := bytesArg(msg)
	return m.check("smtp_message_set_raw", C.smtp_message_set_raw(m.ptr, p, n))
}

// Attach attaches data as a file (contentType "": application/octet-stream).
func (m *MessageBuilder) Attach(data []byte, contentType, filename string) error {
	p, n := bytesArg(data)
	return m.strs("smtp_message_attach", []string{contentType, filename}, []bool{true, false}, func(s []*C.char) C.int {
		return C.smtp_message_attach(m.ptr, unsafe.Pointer(p), n, s[0], s[1])
	})
}

// AttachFile attaches a file, read (streamed) when the message is sent.
func (m *MessageBuilder) AttachFile(path, contentType, filename string) error {
	return m.strs("smtp_message_attach_file", []string{path, contentType, filename}, []bool{false, true, true}, func(s []*C.char) C.int {
		return C.smtp_message_attach_file(m.ptr, s[0], s[1], s[2])
	})
}

// AddInline adds an inline part for the HTML body (cid:contentID).
func (m *MessageBuilder) AddInline(data []byte, contentType, contentID string) error {
	p, n := bytesArg(data)
	return m.strs("smtp_message_add_inline", []string{contentType, contentID}, []bool{true, false}, func(s []*C.char) C.int {
		return C.smtp_message_add_inline(m.ptr, unsafe.Pointer(p), n, s[0], s[1])
	})
}

// AddInlineFile adds an inline part from a file.
func (m *MessageBuilder) AddInlineFile(path, contentType, contentID string) error {
	return m.strs("smtp_message_add_inline_file", []string{path, contentType, contentID}, []bool{false, true, false}, func(s []*C.char) C.int {
		return C.smtp_message_add_inline_file(m.ptr, s[0], s[1], s[2])
	})
}

// SetDKIM signs the message with DKIM whenever it is rendered or sent
// (headers "": the default list); domain "" stops signing.
func (m *MessageBuilder) SetDKIM(domain, selector, keyPEM, headers string) error {
	return m.strs("smtp_message_set_dkim", []string{domain, selector, keyPEM, headers}, []bool{true, true, true, true}, func(s []*C.char) C.int {
		return C.smtp_message_set_dkim(m.ptr, s[0], s[1], s[2], s[3])
	})
}

// Render returns the message as SendMessage sends it.
func (m *MessageBuilder) Render() ([]byte, error) {
	n := C.smtp_message_render(m.ptr, nil, 0)
	if n == 0 {
		return nil, &Error{Op: "smtp_message_render", Code: EInvalid, Message: Strerror(EInvalid), Detail: m.lastError()}
	}
	buf := make([]byte, int(n)+1)
	got := C.smtp_message_render(m.ptr, (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
	runtime.KeepAlive(m)
	if int(got) < len(buf) {
		buf = buf[:got]
	} else {
		buf = buf[:len(buf)-1]
	}
	return buf, nil
}

// SendMessage sends a built message with smtplib's send_message rules:
// the envelope from `from` and `to`, or from the message's fields when
// they are empty.
func (s *Session) SendMessage(m *MessageBuilder, from string, to []string) (int, string, error) {
	return s.SendMessageContext(context.Background(), m, from, to)
}

// SendMessageContext is SendMessage, stopped when ctx is done.
func (s *Session) SendMessageContext(ctx context.Context, m *MessageBuilder, from string, to []string) (int, string, error) {
	const op = "smtp_session_send_message"
	return s.envelope(ctx, op, from, to, func(f *C.char, arr **C.char, n C.size_t, b *C.char, c C.size_t) C.int {
		rc := C.smtp_session_send_message(s.ptr, m.ptr, f, arr, n, b, c)
		runtime.KeepAlive(m)
		return rc
	})
}

// SendMessageRaw sends RFC 5322 bytes with smtplib's send_message rules.
func (s *Session) SendMessageRaw(msg []byte, from string, to []string) (int, string, error) {
	return s.SendMessageRawContext(context.Background(), msg, from, to)
}

// SendMessageRawContext is SendMessageRaw, stopped when ctx is done.
func (s *Session) SendMessageRawContext(ctx context.Context, msg []byte, from string, to []string) (int, string, error) {
	p, n := bytesArg(msg)
	return s.envelope(ctx, "smtp_session_send_message_raw", from, to, func(f *C.char, arr **C.char, k C.size_t, b *C.char, c C.size_t) C.int {
		return C.smtp_session_send_message_raw(s.ptr, p, n, f, arr, k, b, c)
	})
}

func (s *Session) envelope(ctx context.Context, op, from string, to []string,
	call func(*C.char, **C.char, C.size_t, *C.char, C.size_t) C.int) (int, string, error) {
	f, freeF, err := optional(op, from)
	if err != nil {
		return 0, "", err
	}
	defer freeF()
	cs, err := cstrings(op, to...)
	if err != nil {
		return 0, "", err
	}
	defer freeAll(cs)
	arr, free := cArray(cs)
	defer free()
	return s.command(ctx, op, func(b *C.char, n C.size_t) C.int { return call(f, arr, C.size_t(len(to)), b, n) })
}
