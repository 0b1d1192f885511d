package smtpc_test

// Run through bindings/go/test.sh, which starts the aiosmtpd servers and
// sets the SMTPC_TEST_* variables (see bindings/testlib.sh).

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	smtpc "github.com/libsmtpc/libsmtpc/bindings/go"
)

func env(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: run bindings/go/test.sh", name)
	}
	return v
}

func port(t *testing.T, name string) uint16 {
	t.Helper()
	p, err := strconv.ParseUint(env(t, name), 10, 16)
	if err != nil {
		t.Fatal(err)
	}
	return uint16(p)
}

var seq int64

func token() string {
	return fmt.Sprintf("go-%d-%d", time.Now().UnixNano(), atomic.AddInt64(&seq, 1))
}

func message(tok, to string) string {
	return "From: Sender <sender@example.com>\n" +
		"To: " + to + "\n" +
		"Subject: Go binding test " + tok + "\n" +
		"\n" +
		"Hello from Go, " + tok + ".\n" +
		".a line that starts with a dot\n" +
		"last line\n"
}

type capture struct {
	eml  []byte
	meta struct {
		MailFrom string   `json:"mail_from"`
		RcptTos  []string `json:"rcpt_tos"`
	}
}

// captured finds the message the server stored whose bytes contain tok.
func captured(t *testing.T, dir, tok string) capture {
	t.Helper()
	metas, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range metas {
		eml, err := os.ReadFile(strings.TrimSuffix(m, ".json") + ".eml")
		if err != nil || !bytes.Contains(eml, []byte(tok)) {
			continue
		}
		c := capture{eml: eml}
		raw, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &c.meta); err != nil {
			t.Fatal(err)
		}
		return c
	}
	t.Fatalf("no message captured in %s contains %s", dir, tok)
	return capture{}
}

func expectCode(t *testing.T, what string, want int) func(int, string, error) {
	t.Helper()
	return func(code int, text string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if code != want {
			t.Fatalf("%s: got %d %q, want %d", what, code, text, want)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func hasLine(lines []string, f func(string) bool) bool {
	for _, l := range lines {
		if f(l) {
			return true
		}
	}
	return false
}

func TestVersion(t *testing.T) {
	if v := smtpc.Version(); v == "" || !strings.HasPrefix(v, "0.") {
		t.Fatalf("Version() = %q", v)
	}
	if smtpc.Strerror(smtpc.ETLSVerify) == "" {
		t.Fatal("empty strerror")
	}
}

func TestStarttlsLoginSendmail(t *testing.T) {
	user, pass := env(t, "SMTPC_TEST_USER"), env(t, "SMTPC_TEST_PASS")
	s := smtpc.New()
	defer s.Close()
	var trace []string
	must(t, s.SetTimeout(10000))
	must(t, s.SetDebuglevel(1))
	must(t, s.SetTrace(func(line string) { trace = append(trace, line) }))
	must(t, s.SetCAFile(env(t, "SMTPC_TEST_CA")))

	expectCode(t, "connect", 220)(s.Connect(env(t, "SMTPC_TEST_HOST"), port(t, "SMTPC_TEST_PORT")))
	expectCode(t, "ehlo", 250)(s.Ehlo(""))
	if !s.HasExtn("starttls") || s.HasExtn("AUTH") {
		t.Fatal("before TLS the server offers STARTTLS and no AUTH")
	}
	size, err := s.ExtnParams("SIZE")
	if err != nil || size != "33554432" {
		t.Fatalf("ExtnParams(SIZE) = %q, %v", size, err)
	}
	if _, err := s.ExtnParams("X-NOT-OFFERED"); !errors.Is(err, &smtpc.Error{Code: smtpc.ENotSupported}) {
		t.Fatalf("ExtnParams(X-NOT-OFFERED) error = %v", err)
	}
	expectCode(t, "starttls", 220)(s.Starttls())
	expectCode(t, "ehlo", 250)(s.Ehlo(""))
	if !s.HasExtn("auth") {
		t.Fatal("no AUTH after STARTTLS")
	}
	expectCode(t, "login", 235)(s.Login(user, pass))

	tok := token()
	msg := message(tok, "a@example.com, b@example.com")
	reject := env(t, "SMTPC_TEST_REJECT")
	expectCode(t, "sendmail", 250)(s.Sendmail("sender@example.com", []string{"a@example.com", reject, "b@example.com"}, []byte(msg)))
	if s.FailedStep() != smtpc.StepNone {
		t.Fatalf("FailedStep = %d", s.FailedStep())
	}
	rcpts, err := s.Recipients()
	must(t, err)
	if len(rcpts) != 3 || rcpts[0].Code != 250 || rcpts[1].Code != 550 || rcpts[2].Code != 250 {
		t.Fatalf("Recipients = %+v", rcpts)
	}
	if !strings.Contains(rcpts[1].Text, "rejected") {
		t.Fatalf("refusal text %q", rcpts[1].Text)
	}
	c := captured(t, env(t, "SMTPC_TEST_CAPTURE"), tok)
	if want := strings.ReplaceAll(msg, "\n", "\r\n"); string(c.eml) != want {
		t.Fatalf("captured %q, want %q", c.eml, want)
	}
	if c.meta.MailFrom != "sender@example.com" || strings.Join(c.meta.RcptTos, ",") != "a@example.com,b@example.com" {
		t.Fatalf("envelope %+v", c.meta)
	}

	expectCode(t, "vrfy known", 250)(s.Vrfy(env(t, "SMTPC_TEST_KNOWN")))
	expectCode(t, "vrfy unknown", 550)(s.Vrfy("nobody@example.com"))
	expectCode(t, "noop", 250)(s.Noop())
	expectCode(t, "quit", 221)(s.Quit())
	if s.LastCode() != 221 {
		t.Fatalf("LastCode = %d", s.LastCode())
	}

	if !hasLine(trace, func(l string) bool { return strings.HasPrefix(l, "send: 'ehlo ") }) {
		t.Fatalf("no ehlo in the trace: %q", trace)
	}
	if hasLine(trace, func(l string) bool { return strings.Contains(l, pass) }) {
		t.Fatal("the password appears in the trace")
	}
}

func TestTraceRedactsAuth(t *testing.T) {
	user, pass := env(t, "SMTPC_TEST_USER"), env(t, "SMTPC_TEST_PASS")
	wrong := "Wr0ng-" + pass
	s := smtpc.New()
	defer s.Close()
	var trace []string
	must(t, s.SetDebuglevel(1))
	must(t, s.SetTrace(func(line string) { trace = append(trace, line) }))
	must(t, s.SetCAFile(env(t, "SMTPC_TEST_CA")))
	expectCode(t, "connect", 220)(s.Connect(env(t, "SMTPC_TEST_HOST"), port(t, "SMTPC_TEST_PORT")))
	expectCode(t, "starttls", 220)(s.Starttls())
	expectCode(t, "ehlo", 250)(s.Ehlo(""))
	// The library tries CRAM-MD5 first; a wrong password makes it go on to
	// PLAIN (and LOGIN), all refused.
	expectCode(t, "login (wrong password)", 535)(s.Login(user, wrong))
	if !hasLine(trace, func(l string) bool { return l == `send: 'AUTH PLAIN <redacted>\r\n'` }) {
		t.Fatalf("no redacted AUTH PLAIN in the trace: %q", trace)
	}
	expectCode(t, "login", 235)(s.Login(user, pass))
	expectCode(t, "quit", 221)(s.Quit())
	if !hasLine(trace, func(l string) bool { return strings.HasPrefix(l, "send: 'ehlo ") }) {
		t.Fatalf("no ehlo in the trace: %q", trace)
	}
	if hasLine(trace, func(l string) bool { return strings.Contains(l, pass) }) {
		t.Fatal("the password appears in the trace")
	}
}

func TestImplicitTLS(t *testing.T) {
	s := smtpc.New()
	defer s.Close()
	must(t, s.SetCAFile(env(t, "SMTPC_TEST_CA")))
	expectCode(t, "connect_tls", 220)(s.ConnectTLS(env(t, "SMTPC_TEST_HOST"), port(t, "SMTPC_TEST_TLS_PORT")))
	expectCode(t, "ehlo", 250)(s.Ehlo("client.example"))
	if s.HasExtn("STARTTLS") {
		t.Fatal("STARTTLS offered inside TLS")
	}
	expectCode(t, "login", 235)(s.Login(env(t, "SMTPC_TEST_USER"), env(t, "SMTPC_TEST_PASS")))
	tok := token()
	msg := message(tok, "c@example.com")
	expectCode(t, "sendmail", 250)(s.Sendmail("<sender@example.com>", []string{"c@example.com", "Dee <d@example.com>"}, []byte(msg)))
	rcpts, err := s.Recipients()
	must(t, err)
	if len(rcpts) != 2 || rcpts[0].Code != 250 || rcpts[1].Code != 250 {
		t.Fatalf("Recipients = %+v", rcpts)
	}
	c := captured(t, env(t, "SMTPC_TEST_TLS_CAPTURE"), tok)
	if want := strings.ReplaceAll(msg, "\n", "\r\n"); string(c.eml) != want {
		t.Fatalf("captured %q, want %q", c.eml, want)
	}
	if strings.Join(c.meta.RcptTos, ",") != "c@example.com,d@example.com" {
		t.Fatalf("envelope %+v", c.meta)
	}
	expectCode(t, "quit", 221)(s.Quit())
}

func checkVerifyError(t *testing.T, err error) {
	t.Helper()
	var e *smtpc.Error
	if !errors.As(err, &e) {
		t.Fatalf("want *smtpc.Error, got %v", err)
	}
	if e.Code != smtpc.ETLSVerify || !errors.Is(err, smtpc.ErrTLSVerify) {
		t.Fatalf("code %d, want %d", e.Code, smtpc.ETLSVerify)
	}
	if !strings.Contains(e.Detail, "certificate verify failed") || e.Message != smtpc.Strerror(smtpc.ETLSVerify) {
		t.Fatalf("error %+v", e)
	}
	if !strings.Contains(err.Error(), "certificate verify failed") {
		t.Fatalf("Error() = %q", err.Error())
	}
}

func TestStarttlsVerifyFailure(t *testing.T) {
	s := smtpc.New()
	defer s.Close()
	must(t, s.SetCAFile(env(t, "SMTPC_TEST_OTHER_CA")))
	expectCode(t, "connect", 220)(s.Connect(env(t, "SMTPC_TEST_HOST"), port(t, "SMTPC_TEST_PORT")))
	expectCode(t, "ehlo", 250)(s.Ehlo(""))
	_, _, err := s.Starttls()
	checkVerifyError(t, err)
}

func TestImplicitTLSVerifyFailure(t *testing.T) {
	s := smtpc.New()
	defer s.Close()
	must(t, s.SetCAFile(env(t, "SMTPC_TEST_OTHER_CA")))
	_, _, err := s.ConnectTLS(env(t, "SMTPC_TEST_HOST"), port(t, "SMTPC_TEST_TLS_PORT"))
	checkVerifyError(t, err)
}

func TestInvalidArguments(t *testing.T) {
	s := smtpc.New()
	defer s.Close()
	if _, _, err := s.Noop(); !errors.Is(err, smtpc.ErrState) {
		t.Fatalf("Noop before connect: %v", err)
	}
	expectCode(t, "connect", 220)(s.Connect(env(t, "SMTPC_TEST_HOST"), port(t, "SMTPC_TEST_PORT")))
	_, _, err := s.Sendmail("sender@example.com", []string{"bad\r\nRSET@example.com"}, []byte("Subject: x\n\nx\n"))
	if !errors.Is(err, &smtpc.Error{Code: smtpc.EInvalid}) {
		t.Fatalf("CRLF in an address: %v", err)
	}
	if _, _, err := s.Vrfy("a\x00b"); !errors.Is(err, &smtpc.Error{Code: smtpc.EInvalid}) {
		t.Fatalf("NUL in an argument: %v", err)
	}
	expectCode(t, "noop", 250)(s.Noop())
	expectCode(t, "quit", 221)(s.Quit())
	must(t, s.Close())
	if _, _, err := s.Noop(); !errors.Is(err, &smtpc.Error{Code: smtpc.ENull}) {
		t.Fatalf("Noop after Close: %v", err)
	}
	must(t, s.Close()) // twice is harmless
}

func TestTracePanicIsRaisedAfterTheCall(t *testing.T) {
	s := smtpc.New()
	defer s.Close()
	must(t, s.SetDebuglevel(1))
	must(t, s.SetTrace(func(string) { panic("from the trace callback") }))
	func() {
		defer func() {
			if r := recover(); r != "from the trace callback" {
				t.Fatalf("recovered %v", r)
			}
		}()
		s.Connect(env(t, "SMTPC_TEST_HOST"), port(t, "SMTPC_TEST_PORT"))
		t.Fatal("Connect did not panic")
	}()
	var lines int
	must(t, s.SetTrace(func(string) { lines++ }))
	expectCode(t, "quit", 221)(s.Quit())
	if lines == 0 {
		t.Fatal("the replaced trace callback got no lines")
	}
}
