package smtpc

/*
#include <stdint.h>
#include <stdlib.h>
#include <smtpc.h>

int smtpc_go_next_trampoline(void *user, const char **from, const char *const **to, size_t *n_to,
                             const char **msg, size_t *msg_len);
*/
import "C"

import (
	"context"
	"runtime"
	"unsafe"
)

// Message is one message of a batch: its envelope and its bytes.
type Message struct {
	From string
	To   []string
	Body []byte
}

// BatchResult is what the server said about one message of a batch.
type BatchResult struct {
	Code       int         // the final reply, or the refusing one; < 0: no answer (see Outcome)
	Text       string      // its text
	Outcome    Outcome     // accepted, refused, not sent, unknown
	FailedStep int         // Step* (StepNone when accepted)
	Recipients []RcptReply // the answer to each recipient
	// Accepted and Rejected list the recipients the server took and
	// refused, as nodemailer's result does.
	Accepted []string
	Rejected []string
}

// SendBatch sends msgs on the session, pipelined across messages when the
// server offers PIPELINING (one wait per message), and returns one result
// per message, in order. The messages are handed to the library one at a
// time (smtp_session_batch_send_cb): nothing is queued up front. The error
// is nil when every message got the server's answer (accepted or refused:
// look at each result); a failed connection gives an error and results
// for every message all the same (OutcomeNotSent for those never tried).
func (s *Session) SendBatch(msgs []Message) ([]BatchResult, error) {
	return s.SendBatchContext(context.Background(), msgs)
}

// SendBatchContext is SendBatch, stopped when ctx is done.
func (s *Session) SendBatchContext(ctx context.Context, msgs []Message) ([]BatchResult, error) {
	const op = "smtp_session_batch_send_cb"
	st := &batchState{msgs: msgs}
	slot, free := newSlot(st)
	defer free()
	defer st.freeCurrent()
	rc, cause := s.blocking(ctx, func() C.int {
		return C.smtp_session_batch_send_cb(s.ptr, C.smtpc_next_message_fn(C.smtpc_go_next_trampoline), slot)
	})
	repanic(st.pending)
	return s.batchOutcome(op, rc, cause, func(i int) []string {
		if i < len(msgs) {
			return msgs[i].To
		}
		return nil
	})
}

// BatchAdd queues a copy of a message for BatchSend; addresses are checked
// now, nothing is sent.
func (s *Session) BatchAdd(from string, to []string, body []byte) error {
	const op = "smtp_session_batch_add"
	cs, err := cstrings(op, append([]string{from}, to...)...)
	if err != nil {
		return err
	}
	defer freeAll(cs)
	arr, freeArr := cArray(cs[1:])
	defer freeArr()
	var b *C.char
	if len(body) > 0 {
		b = (*C.char)(C.CBytes(body))
		defer C.free(unsafe.Pointer(b))
	}
	return s.check(op, C.smtp_session_batch_add(s.ptr, cs[0], arr, C.size_t(len(to)), b, C.size_t(len(body))))
}

// BatchSend sends every queued message (see SendBatch) and empties the
// queue; BatchResults reads the results.
func (s *Session) BatchSend() error { return s.BatchSendContext(context.Background()) }

// BatchSendContext is BatchSend, stopped when ctx is done.
func (s *Session) BatchSendContext(ctx context.Context) error {
	rc, cause := s.blocking(ctx, func() C.int { return C.smtp_session_batch_send(s.ptr) })
	if rc < 0 {
		return s.fail("smtp_session_batch_send", rc, cause)
	}
	if rc >= 100 {
		return &Error{Op: "smtp_session_batch_send", Code: int(rc), Message: "EHLO/HELO refused",
			Detail: s.LastReply()}
	}
	return nil
}

// BatchResults reads the results of the last batch (BatchSend or
// SendBatch), one per message in sending order.
func (s *Session) BatchResults() []BatchResult {
	res, _ := s.batchOutcome("", 0, nil, nil)
	return res
}

// BatchClear drops queued messages and the last batch's results.
func (s *Session) BatchClear() error {
	return s.check("smtp_session_batch_clear", C.smtp_session_batch_clear(s.ptr))
}

func (s *Session) batchOutcome(op string, rc C.int, cause error, addrs func(int) []string) ([]BatchResult, error) {
	count := int(C.smtp_session_batch_count(s.ptr))
	out := make([]BatchResult, count)
	for i := range out {
		r := &out[i]
		code, text := codeText(func(b *C.char, n C.size_t) C.int {
			return C.smtp_session_batch_code(s.ptr, C.size_t(i), b, n)
		})
		r.Code, r.Text = int(code), text
		r.Outcome = Outcome(C.smtp_session_batch_outcome(s.ptr, C.size_t(i)))
		r.FailedStep = int(C.smtp_session_batch_failed_step(s.ptr, C.size_t(i)))
		nr := int(C.smtp_session_batch_rcpt_count(s.ptr, C.size_t(i)))
		var to []string
		if addrs != nil {
			to = addrs(i)
		}
		for j := 0; j < nr; j++ {
			c, t := codeText(func(b *C.char, n C.size_t) C.int {
				return C.smtp_session_batch_rcpt_code(s.ptr, C.size_t(i), C.size_t(j), b, n)
			})
			r.Recipients = append(r.Recipients, RcptReply{Code: int(c), Text: t})
			if j < len(to) {
				if c >= 200 && c < 300 {
					r.Accepted = append(r.Accepted, to[j])
				} else {
					r.Rejected = append(r.Rejected, to[j])
				}
			}
		}
	}
	runtime.KeepAlive(s)
	switch {
	case op == "":
		return out, nil
	case rc < 0:
		return out, s.fail(op, rc, cause)
	case rc >= 100:
		return out, &Error{Op: op, Code: int(rc), Message: "EHLO/HELO refused", Detail: s.LastReply()}
	}
	return out, nil
}
