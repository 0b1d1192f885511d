package smtpc

/*
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <smtpc.h>
*/
import "C"

import (
	"errors"
	"io"
	"runtime/cgo"
	"unsafe"
)

// A callback's state lives behind a cgo.Handle; C gets a C-allocated slot
// holding the handle's value as its `user` pointer. A panic in user code
// must not unwind through the C library: it is kept and raised again in Go
// once the library call has returned.

type traceState struct {
	fn      func(line string)
	pending interface{} // a panic recovered in fn
}

//export goSmtpcTrace
func goSmtpcTrace(h C.uintptr_t, line *C.char) {
	st, ok := cgo.Handle(h).Value().(*traceState)
	if !ok || st.pending != nil {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			st.pending = r
		}
	}()
	st.fn(C.GoString(line))
}

// readState feeds smtp_session_sendmail_cb from an io.Reader.
type readState struct {
	r       io.Reader
	err     error       // the reader's error (not io.EOF)
	pending interface{} // a panic in Read
}

//export goSmtpcRead
func goSmtpcRead(h C.uintptr_t, buf *C.char, capacity C.size_t) (n C.int64_t) {
	st, ok := cgo.Handle(h).Value().(*readState)
	if !ok || st.err != nil || st.pending != nil {
		return -1
	}
	defer func() {
		if r := recover(); r != nil {
			st.pending = r
			n = -1
		}
	}()
	// C memory: the reader writes straight into the library's buffer
	// (io.Reader implementations must not retain p).
	p := unsafe.Slice((*byte)(unsafe.Pointer(buf)), int(capacity))
	for zero := 0; ; zero++ {
		got, err := st.r.Read(p)
		if got > 0 {
			if err != nil && !errors.Is(err, io.EOF) {
				// Deliver these bytes; the error comes back on the next call.
				st.r = &errReader{err: err}
			}
			return C.int64_t(got)
		}
		if errors.Is(err, io.EOF) {
			return 0
		}
		if err != nil {
			st.err = err
			return -1
		}
		if zero >= 100 {
			st.err = io.ErrNoProgress
			return -1
		}
	}
}

type errReader struct{ err error }

func (e *errReader) Read([]byte) (int, error) { return 0, e.err }

// batchState feeds smtp_session_batch_send_cb from a slice of messages. The
// C copies of the current message stay allocated until the next call (or
// the end of the batch), as the C API requires.
type batchState struct {
	msgs    []Message
	next    int
	cmem    []unsafe.Pointer
	pending interface{}
}

func (b *batchState) freeCurrent() {
	for _, p := range b.cmem {
		C.free(p)
	}
	b.cmem = b.cmem[:0]
}

func (b *batchState) cstring(v string) *C.char {
	p := C.CString(v)
	b.cmem = append(b.cmem, unsafe.Pointer(p))
	return p
}

//export goSmtpcNext
func goSmtpcNext(h C.uintptr_t, from **C.char, to ***C.char, nTo *C.size_t, msg **C.char, msgLen *C.size_t) (rc C.int) {
	b, ok := cgo.Handle(h).Value().(*batchState)
	if !ok || b.pending != nil {
		return -1
	}
	defer func() {
		if r := recover(); r != nil {
			b.pending = r
			rc = -1
		}
	}()
	b.freeCurrent()
	if b.next >= len(b.msgs) {
		return 0
	}
	m := b.msgs[b.next]
	b.next++
	// A NUL inside a string would cut it: hand C a NULL instead, which the
	// library refuses for this message alone (SMTPC_E_INVALID).
	cs := func(v string) *C.char {
		if hasNUL(v) {
			return nil
		}
		return b.cstring(v)
	}
	*from = cs(m.From)
	if len(m.To) > 0 {
		arr := C.malloc(C.size_t(len(m.To)) * C.size_t(unsafe.Sizeof((*C.char)(nil))))
		b.cmem = append(b.cmem, arr)
		slots := unsafe.Slice((**C.char)(arr), len(m.To))
		for i, a := range m.To {
			slots[i] = cs(a)
		}
		*to = (**C.char)(arr)
	} else {
		*to = nil
	}
	*nTo = C.size_t(len(m.To))
	if len(m.Body) > 0 {
		body := C.CBytes(m.Body)
		b.cmem = append(b.cmem, body)
		*msg = (*C.char)(body)
	} else {
		*msg = nil
	}
	*msgLen = C.size_t(len(m.Body))
	return 1
}

// slot allocates the C memory that carries a cgo.Handle to C.
func newSlot(v interface{}) (unsafe.Pointer, func()) {
	h := cgo.NewHandle(v)
	slot := C.malloc(C.size_t(unsafe.Sizeof(C.uintptr_t(0))))
	*(*C.uintptr_t)(slot) = C.uintptr_t(h)
	return slot, func() {
		C.free(slot)
		h.Delete()
	}
}

// repanic raises again a panic recovered in a callback.
func repanic(p interface{}) {
	if p != nil {
		panic(p)
	}
}

// saslState runs a caller's SASL mechanism for smtp_session_auth_callback.
type saslState struct {
	fn      func(challenge []byte) ([]byte, error)
	held    []byte // a response that did not fit: the library asks again
	err     error
	pending interface{}
}

//export goSmtpcSasl
func goSmtpcSasl(h C.uintptr_t, challenge *C.char, clen C.size_t, resp *C.char, capacity C.size_t) (n C.int64_t) {
	st, ok := cgo.Handle(h).Value().(*saslState)
	if !ok || st.pending != nil {
		return -1
	}
	defer func() {
		if r := recover(); r != nil {
			st.pending = r
			n = -1
		}
	}()
	out := st.held
	st.held = nil
	if out == nil {
		var c []byte
		if challenge != nil {
			c = C.GoBytes(unsafe.Pointer(challenge), C.int(clen))
		}
		r, err := st.fn(c)
		if errors.Is(err, ErrNoInitialResponse) && challenge == nil {
			return C.int64_t(C.SMTPC_SASL_NO_RESPONSE)
		}
		if err != nil {
			st.err = err
			return -1
		}
		if r == nil {
			r = []byte{}
		}
		out = r
	}
	if len(out) > int(capacity) {
		st.held = out
		return C.int64_t(len(out))
	}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(resp)), int(capacity)), out)
	return C.int64_t(len(out))
}
