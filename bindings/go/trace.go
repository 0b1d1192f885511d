package smtpc

/*
#include <stdint.h>
*/
import "C"

import "runtime/cgo"

// traceState is what a session's cgo.Handle refers to. C never holds a Go
// pointer: it gets a C-allocated slot containing the handle's integer value.
type traceState struct {
	fn      func(line string)
	pending interface{} // a panic recovered in fn, re-raised after the call
}

//export goSmtpcTrace
func goSmtpcTrace(h C.uintptr_t, line *C.char) {
	st, ok := cgo.Handle(h).Value().(*traceState)
	if !ok || st.pending != nil {
		return
	}
	// A panic must not unwind through the C library: keep it and panic
	// again in Go once the library call has returned.
	defer func() {
		if r := recover(); r != nil {
			st.pending = r
		}
	}()
	st.fn(C.GoString(line))
}
