// The C side of the trace callback: libsmtpc calls this with the C-allocated
// slot that holds the session's cgo.Handle value (see trace.go).
#include <stdint.h>
#include "_cgo_export.h"

void smtpc_go_trace_trampoline(void *user, const char *line) {
    goSmtpcTrace(*(uintptr_t *)user, (char *)line);
}
