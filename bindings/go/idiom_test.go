package smtpc_test

// Contexts, io.Reader bodies, batches, outcomes, sentinels; figures
// (ticker gaps beside net/smtp's, cancel latency, RSS, batch throughput)
// are printed with t.Logf and `go test -v`.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/smtp"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	smtpc "github.com/libsmtpc/libsmtpc/bindings/go"
)

// The header's SMTPC_E_*, SMTPC_OUTCOME_* and SMTPC_TLS_* values, read at
// test time: a code the header gains must get a Go constant.
func TestConstantsMatchHeader(t *testing.T) {
	goValues := map[string]int{
		"E_NULL": smtpc.ENull, "E_INVALID": smtpc.EInvalid, "E_STATE": smtpc.EState,
		"E_RESOLVE": smtpc.EResolve, "E_CONNECT": smtpc.EConnect, "E_TIMEOUT": smtpc.ETimeout,
		"E_IO": smtpc.EIO, "E_CLOSED": smtpc.EClosed, "E_TLS": smtpc.ETLS, "E_TLS_VERIFY": smtpc.ETLSVerify,
		"E_PROTOCOL": smtpc.EProtocol, "E_NOT_SUPPORTED": smtpc.ENotSupported, "E_AUTH_MECH": smtpc.EAuthMech,
		"E_TOO_LARGE": smtpc.ETooLarge, "E_INSECURE": smtpc.EInsecure, "E_PANIC": smtpc.EPanic,
		"E_CALLBACK": smtpc.ECallback, "E_CANCELLED": smtpc.ECancelled, "E_BUSY": smtpc.EBusy,
		"OUTCOME_NONE": int(smtpc.OutcomeNone), "OUTCOME_ACCEPTED": int(smtpc.OutcomeAccepted),
		"OUTCOME_REFUSED": int(smtpc.OutcomeRefused), "OUTCOME_NOT_SENT": int(smtpc.OutcomeNotSent),
		"OUTCOME_UNKNOWN": int(smtpc.OutcomeUnknown),
		"TLS_MANUAL": int(smtpc.TLSManual), "TLS_OPPORTUNISTIC": int(smtpc.TLSOpportunistic),
		"TLS_REQUIRED": int(smtpc.TLSRequired), "TLS_IMPLICIT": int(smtpc.TLSImplicit),
		"STEP_NONE": smtpc.StepNone, "STEP_MAIL": smtpc.StepMail, "STEP_RCPT": smtpc.StepRcpt,
		"STEP_DATA": smtpc.StepData, "STEP_MESSAGE": smtpc.StepMessage, "STEP_HELO": smtpc.StepHelo,
	}
	header, err := os.ReadFile(env(t, "SMTPC_HEADER"))
	must(t, err)
	re := regexp.MustCompile(`(?m)^#define SMTPC_((?:E|OUTCOME|TLS|STEP)_[A-Z_]+) (-?\d+)$`)
	n := 0
	for _, m := range re.FindAllStringSubmatch(string(header), -1) {
		want, _ := strconv.Atoi(m[2])
		got, ok := goValues[m[1]]
		if !ok {
			t.Errorf("SMTPC_%s = %d has no Go constant", m[1], want)
		} else if got != want {
			t.Errorf("SMTPC_%s: Go %d, header %d", m[1], got, want)
		}
		n++
	}
	if n < 30 {
		t.Fatalf("only %d constants found in the header", n)
	}
}

func TestSentinelsAndTimeout(t *testing.T) {
	s := smtpc.New()
	defer s.Close()
	_, _, err := s.Noop()
	if !errors.Is(err, smtpc.ErrState) || errors.Is(err, smtpc.ErrIO) {
		t.Fatalf("Noop before connect: %v", err)
	}
	var te interface{ Timeout() bool }
	must(t, s.SetTimeout(200))
	_, _, err = s.Connect("127.0.0.1", port(t, "SMTPC_TEST_MUTE_PORT"))
	if !errors.Is(err, smtpc.ErrTimeout) || !errors.As(err, &te) || !te.Timeout() {
		t.Fatalf("greeting that never comes: %v", err)
	}
}

func TestXOAUTH2AndTLSPolicy(t *testing.T) {
	s := smtpc.New()
	defer s.Close()
	must(t, s.SetCAFile(env(t, "SMTPC_TEST_CA")))
	must(t, s.SetTLSPolicy(smtpc.TLSRequired))
	expectCode(t, "connect", 220)(s.Connect(env(t, "SMTPC_TEST_HOST"), port(t, "SMTPC_TEST_PORT")))
	if !s.IsTLS() || !s.IsConnected() || !s.HasExtn("AUTH") {
		t.Fatal("TLSRequired: connect did not run EHLO and STARTTLS")
	}
	expectCode(t, "auth xoauth2", 235)(s.Auth("XOAUTH2", env(t, "SMTPC_TEST_USER"), env(t, "SMTPC_TEST_TOKEN")))
	reject := env(t, "SMTPC_TEST_REJECT")
	expectCode(t, "sendmail", 250)(s.Sendmail("a@example.com", []string{"b@example.com", reject}, []byte(message(token(), "b"))))
	r, err := s.Recipients()
	must(t, err)
	if r[1].Code != 550 || r[1].Enhanced != "5.1.1" || s.LastEnhanced() == "" {
		t.Fatalf("enhanced codes: %+v, last %q", r, s.LastEnhanced())
	}
	if s.Waits() == 0 {
		t.Fatal("Waits() = 0")
	}
	// DSN is not offered by this server: refused before anything is sent.
	must(t, s.SetDSN("HDRS", "env-1", "FAILURE", true))
	if _, _, err := s.Sendmail("a@example.com", []string{"b@example.com"}, []byte("x\n")); !errors.Is(err, smtpc.ErrNotSupported) {
		t.Fatalf("DSN without the extension: %v", err)
	}
	if s.Outcome() != smtpc.OutcomeNotSent {
		t.Fatalf("Outcome = %v", s.Outcome())
	}
	must(t, s.SetDSN("", "", "", false))
	expectCode(t, "quit", 221)(s.Quit())
}

// The four outcomes a send can have, each produced for real.
func TestOutcomes(t *testing.T) {
	host, p := env(t, "SMTPC_TEST_HOST"), port(t, "SMTPC_TEST_PORT")
	s := smtpc.New()
	defer s.Close()
	must(t, s.SetCAFile(env(t, "SMTPC_TEST_CA")))
	expectCode(t, "connect", 220)(s.Connect(host, p))
	if s.Outcome() != smtpc.OutcomeNone {
		t.Fatalf("before any send: %v", s.Outcome())
	}
	expectCode(t, "sendmail", 250)(s.Sendmail("a@example.com", []string{"b@example.com"}, []byte(message(token(), "b"))))
	if s.Outcome() != smtpc.OutcomeAccepted {
		t.Fatalf("accepted: %v", s.Outcome())
	}
	expectCode(t, "sendmail refused", 550)(s.Sendmail("a@example.com", []string{env(t, "SMTPC_TEST_REJECT")}, []byte("x\n")))
	if s.Outcome() != smtpc.OutcomeRefused || s.FailedStep() != smtpc.StepRcpt {
		t.Fatalf("refused: %v step %d", s.Outcome(), s.FailedStep())
	}
	boom := errors.New("disk on fire")
	_, _, err := s.SendmailReader("a@example.com", []string{"b@example.com"},
		io.MultiReader(strings.NewReader("Subject: partial\n\nfirst line\n"), &failing{boom}), -1)
	if !errors.Is(err, smtpc.ErrCallback) || !errors.Is(err, boom) || s.Outcome() != smtpc.OutcomeNotSent {
		t.Fatalf("reader failure: %v, outcome %v", err, s.Outcome())
	}

	// Unknown: the body goes out, then the call is cancelled while the
	// slow server sits on its final reply.
	slow := smtpc.New()
	defer slow.Close()
	must(t, slow.SetDebuglevel(1))
	var once sync.Once
	must(t, slow.SetTrace(func(line string) {
		if strings.HasPrefix(line, "data: (354") {
			once.Do(func() { time.AfterFunc(100*time.Millisecond, slow.Cancel) })
		}
	}))
	expectCode(t, "connect slow", 220)(slow.Connect("127.0.0.1", port(t, "SMTPC_TEST_SLOW_PORT")))
	_, _, err = slow.Sendmail("a@example.com", []string{"b@example.com"}, []byte("Subject: u\n\nunknown\n"))
	if !errors.Is(err, smtpc.ErrCancelled) || slow.Outcome() != smtpc.OutcomeUnknown {
		t.Fatalf("cancelled after the end of data: %v, outcome %v", err, slow.Outcome())
	}
	t.Logf("outcomes: accepted, refused (step %d), not sent (%v), unknown (%v)", smtpc.StepRcpt, boom, smtpc.ErrCancelled)
}

type failing struct{ err error }

func (f *failing) Read([]byte) (int, error) { return 0, f.err }

func TestCancelByContext(t *testing.T) {
	mute := port(t, "SMTPC_TEST_MUTE_PORT")
	for _, deadline := range []bool{false, true} {
		s := smtpc.New()
		var ctx context.Context
		var cancel context.CancelFunc
		if deadline {
			ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
		} else {
			ctx, cancel = context.WithCancel(context.Background())
			time.AfterFunc(200*time.Millisecond, cancel)
		}
		start := time.Now()
		_, _, err := s.ConnectContext(ctx, "127.0.0.1", mute)
		latency := time.Since(start) - 200*time.Millisecond
		cancel()
		var te interface{ Timeout() bool }
		switch {
		case !errors.Is(err, smtpc.ErrCancelled):
			t.Fatalf("deadline=%v: %v", deadline, err)
		case deadline && (!errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &te) || !te.Timeout()):
			t.Fatalf("deadline: %v", err)
		case !deadline && !errors.Is(err, context.Canceled):
			t.Fatalf("cancel: %v", err)
		}
		t.Logf("FIGURE go cancel latency (deadline=%v): %.1f ms", deadline, float64(latency.Microseconds())/1000)
		if latency > 100*time.Millisecond {
			t.Fatalf("cancel took %v", latency)
		}
		// The handle stays usable.
		expectCode(t, "connect after cancel", 220)(s.Connect(env(t, "SMTPC_TEST_HOST"), port(t, "SMTPC_TEST_PORT")))
		expectCode(t, "quit", 221)(s.Quit())
		s.Close()
	}
	// A context already done: nothing starts.
	s := smtpc.New()
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := s.ConnectContext(ctx, "127.0.0.1", mute); !errors.Is(err, context.Canceled) {
		t.Fatalf("done context: %v", err)
	}
}

// A body of `size` bytes of 76-character lines, made as it is read.
type bodyReader struct{ left int }

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.left == 0 {
		return 0, io.EOF
	}
	n := len(p)
	if n > b.left {
		n = b.left
	}
	for i := 0; i < n; i++ {
		if (b.left-i)%78 == 0 {
			p[i] = '\n'
		} else {
			p[i] = 'a' + byte((b.left-i)%26)
		}
	}
	b.left -= n
	return n, nil
}

func procStatus(t *testing.T, key string) int64 {
	raw, err := os.ReadFile("/proc/self/status")
	must(t, err)
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, key+":") {
			kb, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			return kb * 1024
		}
	}
	t.Fatalf("no %s in /proc/self/status", key)
	return 0
}

func TestStream16MiBConstantMemory(t *testing.T) {
	const size = 16 << 20
	s := smtpc.New()
	defer s.Close()
	expectCode(t, "connect", 220)(s.Connect("127.0.0.1", port(t, "SMTPC_TEST_SINK_PORT")))
	expectCode(t, "ehlo", 250)(s.Ehlo(""))
	// Reset the peak (VmHWM) to the current RSS, then measure the peak.
	must(t, os.WriteFile("/proc/self/clear_refs", []byte("5"), 0))
	base := procStatus(t, "VmRSS")
	start := time.Now()
	hdr := "From: a@example.com\nTo: b@example.com\nSubject: 16 MiB\n\n"
	expectCode(t, "sendmail_cb", 250)(s.SendmailReader("a@example.com", []string{"b@example.com"},
		io.MultiReader(strings.NewReader(hdr), &bodyReader{left: size}), int64(size+len(hdr))))
	growth := procStatus(t, "VmHWM") - base
	t.Logf("FIGURE go 16 MiB streamed in %v, peak RSS growth %.2f MiB", time.Since(start).Round(time.Millisecond), float64(growth)/(1<<20))
	if s.Outcome() != smtpc.OutcomeAccepted {
		t.Fatalf("outcome %v", s.Outcome())
	}
	if growth > 8<<20 {
		t.Fatalf("peak RSS grew by %d bytes", growth)
	}
	expectCode(t, "quit", 221)(s.Quit())
}

func TestBatch5000(t *testing.T) {
	const n = 5000
	msgs := make([]smtpc.Message, n)
	for i := range msgs {
		msgs[i] = smtpc.Message{From: "bulk@example.com", To: []string{fmt.Sprintf("r%d@example.com", i)},
			Body: []byte(fmt.Sprintf("Subject: batch %d\n\nmessage %d\n", i, i))}
	}
	s := smtpc.New()
	defer s.Close()
	expectCode(t, "connect", 220)(s.Connect("127.0.0.1", port(t, "SMTPC_TEST_SINK_PORT")))
	start := time.Now()
	res, err := s.SendBatch(msgs)
	elapsed := time.Since(start)
	must(t, err)
	if len(res) != n {
		t.Fatalf("%d results", len(res))
	}
	for i, r := range res {
		if r.Outcome != smtpc.OutcomeAccepted || r.Code != 250 || len(r.Accepted) != 1 || len(r.Rejected) != 0 {
			t.Fatalf("message %d: %+v", i, r)
		}
	}
	t.Logf("FIGURE go batch: %d messages in %v (%.0f msg/s, %d waits)", n, elapsed.Round(time.Millisecond),
		float64(n)/elapsed.Seconds(), s.Waits())

	// The queue form, with a refused recipient in the middle.
	s2 := smtpc.New()
	defer s2.Close()
	must(t, s2.SetCAFile(env(t, "SMTPC_TEST_CA")))
	expectCode(t, "connect", 220)(s2.Connect(env(t, "SMTPC_TEST_HOST"), port(t, "SMTPC_TEST_PORT")))
	must(t, s2.BatchAdd("a@example.com", []string{"b@example.com"}, []byte("Subject: 1\n\none\n")))
	must(t, s2.BatchAdd("a@example.com", []string{env(t, "SMTPC_TEST_REJECT")}, []byte("Subject: 2\n\ntwo\n")))
	must(t, s2.BatchSend())
	rs := s2.BatchResults()
	if len(rs) != 2 || rs[0].Outcome != smtpc.OutcomeAccepted || rs[1].Outcome != smtpc.OutcomeRefused ||
		rs[1].FailedStep != smtpc.StepRcpt || rs[1].Recipients[0].Code != 550 {
		t.Fatalf("queued batch: %+v", rs)
	}
	must(t, s2.BatchClear())
	if len(s2.BatchResults()) != 0 {
		t.Fatal("BatchClear kept results")
	}
}

// Longest gap of a 10 ms ticker while fn runs.
func tickerGap(fn func()) time.Duration {
	stop := make(chan struct{})
	done := make(chan time.Duration)
	go func() {
		tk := time.NewTicker(10 * time.Millisecond)
		defer tk.Stop()
		last, worst := time.Now(), time.Duration(0)
		for {
			select {
			case now := <-tk.C:
				if d := now.Sub(last); d > worst {
					worst = d
				}
				last = now
			case <-stop:
				done <- worst
				return
			}
		}
	}()
	fn()
	close(stop)
	return <-done
}

func TestTickerGapBesideNetSMTP(t *testing.T) {
	addr := "127.0.0.1:" + env(t, "SMTPC_TEST_SLOW_PORT")
	msg := []byte("From: a@example.com\r\nTo: b@example.com\r\nSubject: gap\r\n\r\nslow\r\n")
	var took time.Duration
	ours := tickerGap(func() {
		start := time.Now()
		s := smtpc.New()
		defer s.Close()
		expectCode(t, "connect", 220)(s.Connect("127.0.0.1", port(t, "SMTPC_TEST_SLOW_PORT")))
		expectCode(t, "sendmail", 250)(s.Sendmail("a@example.com", []string{"b@example.com"}, msg))
		expectCode(t, "quit", 221)(s.Quit())
		took = time.Since(start)
	})
	theirs := tickerGap(func() {
		must(t, smtp.SendMail(addr, nil, "a@example.com", []string{"b@example.com"}, msg))
	})
	t.Logf("FIGURE go ticker gap during a send to the slow server (%v): smtpc %.1f ms, net/smtp %.1f ms",
		took.Round(time.Millisecond), float64(ours.Microseconds())/1000, float64(theirs.Microseconds())/1000)
	if ours > 100*time.Millisecond {
		t.Fatalf("ticker gap %v", ours)
	}
}

func TestMessageBuilderAndRawVerbs(t *testing.T) {
	m := smtpc.NewMessage()
	defer m.Close()
	must(t, m.SetFrom("me@example.com", "Mé"))
	must(t, m.AddTo("you@example.com", ""))
	must(t, m.AddBcc("hidden@example.com", ""))
	must(t, m.SetSubject("built in Go"))
	must(t, m.AddHeader("X-Binding", "go"))
	must(t, m.SetText("Hello from the builder.\n"))
	must(t, m.Attach([]byte("a,b\n1,2\n"), "text/csv", "data.csv"))
	if err := m.AddHeader("X-Bad", "a\r\nBcc: evil@example.com"); !errors.Is(err, smtpc.ErrInvalid) {
		t.Fatalf("header injection: %v", err)
	}
	raw, err := m.Render()
	must(t, err)
	if !strings.Contains(string(raw), "Subject: built in Go") || strings.Contains(string(raw), "hidden@") {
		t.Fatalf("rendered:\n%s", raw)
	}
	s := smtpc.New()
	defer s.Close()
	must(t, s.SetCAFile(env(t, "SMTPC_TEST_CA")))
	expectCode(t, "connect", 220)(s.Connect(env(t, "SMTPC_TEST_HOST"), port(t, "SMTPC_TEST_PORT")))
	expectCode(t, "ehlo", 250)(s.Ehlo(""))
	if ext := s.Extensions(); ext["SIZE"] != "33554432" {
		t.Fatalf("Extensions() = %v", ext)
	}
	expectCode(t, "send_message", 250)(s.SendMessage(m, "", nil))
	if r, _ := s.Recipients(); len(r) != 2 {
		t.Fatalf("send_message envelope: %+v", r)
	}
	expectCode(t, "send_message_raw", 250)(s.SendMessageRaw([]byte("From: a@example.com\nTo: b@example.com\nSubject: raw\n\nraw\n"), "", nil))
	must(t, s.SetMailOptions("X-IGNORED=1"))
	must(t, s.SetMailOptions())
	must(t, s.SetRcptOptions())
	expectCode(t, "mail", 250)(s.Mail("a@example.com"))
	expectCode(t, "rcpt", 250)(s.Rcpt("b@example.com"))
	expectCode(t, "data", 250)(s.Data([]byte("Subject: verbs\n\nlow level\n")))
	must(t, s.Putcmd("NOOP", ""))
	must(t, s.Putcmd("NOOP", ""))
	expectCode(t, "getreply 1", 250)(s.Getreply())
	expectCode(t, "getreply 2", 250)(s.Getreply())
	must(t, s.SetTLSMinVersion(smtpc.TLS12))
	must(t, s.SetTLSServerName("localhost"))
	must(t, s.SetCADir(""))
	must(t, s.SetClientCert("", ""))
	expectCode(t, "quit", 221)(s.Quit())
}

func TestAuthCallbackPlain(t *testing.T) {
	user, pass := env(t, "SMTPC_TEST_USER"), env(t, "SMTPC_TEST_PASS")
	for _, initial := range []bool{true, false} {
		s := smtpc.New()
		must(t, s.SetCAFile(env(t, "SMTPC_TEST_CA")))
		must(t, s.SetTLSPolicy(smtpc.TLSRequired))
		must(t, s.SetInitialResponse(initial))
		expectCode(t, "connect", 220)(s.Connect(env(t, "SMTPC_TEST_HOST"), port(t, "SMTPC_TEST_PORT")))
		calls := 0
		expectCode(t, "auth_callback PLAIN", 235)(s.AuthCallback("PLAIN", func(challenge []byte) ([]byte, error) {
			calls++
			return []byte("\x00" + user + "\x00" + pass), nil
		}))
		if calls == 0 {
			t.Fatal("the mechanism was never asked")
		}
		s.Close()
	}
	s := smtpc.New()
	defer s.Close()
	must(t, s.SetCAFile(env(t, "SMTPC_TEST_CA")))
	must(t, s.SetTLSPolicy(smtpc.TLSRequired))
	expectCode(t, "connect", 220)(s.Connect(env(t, "SMTPC_TEST_HOST"), port(t, "SMTPC_TEST_PORT")))
	boom := errors.New("no token today")
	_, _, err := s.AuthCallback("PLAIN", func([]byte) ([]byte, error) { return nil, boom })
	if !errors.Is(err, smtpc.ErrCallback) || !errors.Is(err, boom) {
		t.Fatalf("aborted mechanism: %v", err)
	}
}
