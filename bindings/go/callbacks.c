// The C side of the binding's callbacks. libsmtpc calls these with the
// `user` pointer the binding gave it: a C-allocated slot holding a
// cgo.Handle value (C never holds a Go pointer). See callbacks.go.
#include <stdint.h>
#include <stddef.h>
#include "_cgo_export.h"

void smtpc_go_trace_trampoline(void *user, const char *line) {
    goSmtpcTrace(*(uintptr_t *)user, (char *)line);
}

int64_t smtpc_go_read_trampoline(void *user, char *buf, size_t cap) {
    return goSmtpcRead(*(uintptr_t *)user, buf, cap);
}

int smtpc_go_next_trampoline(void *user, const char **from, const char *const **to, size_t *n_to,
                             const char **msg, size_t *msg_len) {
    return goSmtpcNext(*(uintptr_t *)user, (char **)from, (char ***)to, n_to, (char **)msg, msg_len);
}

int64_t smtpc_go_sasl_trampoline(void *user, const char *challenge, size_t challenge_len, char *response,
                                 size_t response_cap) {
    return goSmtpcSasl(*(uintptr_t *)user, (char *)challenge, challenge_len, response, response_cap);
}
