'use strict';
// The raw C API of smtpc.h through koffi: one prototype string per
// function, written as in the header (binding a new export is one line).
// Reply buffers are declared uint8_t * so that Buffers pass straight through.
//
// The library is looked up as $SMTPC_LIB, then libsmtpc.so.0 through the
// system loader (ld.so.conf, LD_LIBRARY_PATH), then in the libdir that
// `pkg-config --variable=libdir smtpc` reports.

const path = require('node:path');
const { execFileSync } = require('node:child_process');
const koffi = require('koffi');

function candidates() {
  const list = [process.env.SMTPC_LIB, 'libsmtpc.so.0'];
  try {
    const libdir = execFileSync('pkg-config', ['--variable=libdir', 'smtpc'], {
      encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    if (libdir) list.push(path.join(libdir, 'libsmtpc.so.0'));
  } catch {
    // no pkg-config, or no smtpc.pc: nothing more to try
  }
  return [...new Set(list.filter(Boolean))];
}

function loadLibrary() {
  const failures = [];
  for (const name of candidates()) {
    try {
      return koffi.load(name);
    } catch (e) {
      failures.push(`${name}: ${e.message}`);
    }
  }
  throw new Error(`cannot load libsmtpc (set SMTPC_LIB, or install it: make install):\n  ${failures.join('\n  ')}`);
}

const lib = loadLibrary();
koffi.opaque('smtp_session');
koffi.opaque('smtp_message');
const TraceFn = koffi.proto('void smtpc_trace_fn(void *user, const char *line)');
const ReadFn = koffi.proto('int64_t smtpc_read_fn(void *user, void *buf, size_t cap)');
const SaslFn = koffi.proto('int64_t smtpc_sasl_fn(void *user, const uint8_t *challenge, size_t challenge_len, void *response, size_t response_cap)');
const NextFn = koffi.proto('int smtpc_next_message_fn(void *user, void *from, void *to, void *n_to, void *msg, void *msg_len)');

const PROTOTYPES = [
  // library
  'const char *smtpc_strerror(int code)',
  'const char *smtpc_version()',
  // handle
  'smtp_session *smtp_session_new()',
  'void smtp_session_free(smtp_session *s)',
  'int smtp_session_cancel(smtp_session *s)',
  // settings
  'int smtp_session_set_timeout_ms(smtp_session *s, uint32_t ms)',
  'int smtp_session_set_body_timeout_ms(smtp_session *s, uint32_t ms)',
  'int smtp_session_set_debuglevel(smtp_session *s, int32_t level)',
  'int smtp_session_set_trace(smtp_session *s, smtpc_trace_fn *cb, void *user)',
  'int smtp_session_set_tls_verify(smtp_session *s, int32_t on)',
  'int smtp_session_set_ca_file(smtp_session *s, const char *path)',
  'int smtp_session_set_local_hostname(smtp_session *s, const char *name)',
  'int smtp_session_set_source_address(smtp_session *s, const char *address, uint16_t port)',
  'int smtp_session_set_pipelining(smtp_session *s, int32_t on)',
  'int smtp_session_set_chunking(smtp_session *s, int32_t on)',
  'int smtp_session_set_binarymime(smtp_session *s, int32_t on)',
  'int smtp_session_set_tls_policy(smtp_session *s, int policy)',
  'int smtp_session_set_allow_insecure_auth(smtp_session *s, int32_t on)',
  'int smtp_session_set_dsn(smtp_session *s, const char *ret, const char *envid, const char *notify, int32_t orcpt)',
  'int smtp_session_set_mail_options(smtp_session *s, const char **opts, size_t n)',
  'int smtp_session_set_rcpt_options(smtp_session *s, const char **opts, size_t n)',
  'int smtp_session_set_client_cert(smtp_session *s, const char *cert_path, const char *key_path)',
  'int smtp_session_set_ca_dir(smtp_session *s, const char *path)',
  'int smtp_session_set_tls_min_version(smtp_session *s, int32_t version)',
  'int smtp_session_set_tls_server_name(smtp_session *s, const char *name)',
  // commands
  'int smtp_session_connect(smtp_session *s, const char *host, uint16_t port, uint8_t *reply, size_t cap)',
  'int smtp_session_connect_tls(smtp_session *s, const char *host, uint16_t port, uint8_t *reply, size_t cap)',
  'int smtp_session_helo(smtp_session *s, const char *name, uint8_t *reply, size_t cap)',
  'int smtp_session_ehlo(smtp_session *s, const char *name, uint8_t *reply, size_t cap)',
  'int smtp_session_lhlo(smtp_session *s, const char *name, uint8_t *reply, size_t cap)',
  'int smtp_session_starttls(smtp_session *s, uint8_t *reply, size_t cap)',
  'int smtp_session_login(smtp_session *s, const char *user, const char *password, uint8_t *reply, size_t cap)',
  'int smtp_session_auth(smtp_session *s, const char *mechanism, const char *user, const char *secret, uint8_t *reply, size_t cap)',
  'int smtp_session_auth_callback(smtp_session *s, const char *mechanism, smtpc_sasl_fn *cb, void *user, uint8_t *reply, size_t cap)',
  'int smtp_session_set_initial_response(smtp_session *s, int32_t on)',
  'int smtp_session_sendmail(smtp_session *s, const char *from, const char **to, size_t n_to, const uint8_t *msg, size_t msg_len, uint8_t *reply, size_t cap)',
  'int smtp_session_sendmail_cb(smtp_session *s, const char *from, const char **to, size_t n_to, smtpc_read_fn *read, void *user, int64_t size_hint, uint8_t *reply, size_t cap)',
  'int smtp_session_vrfy(smtp_session *s, const char *address, uint8_t *reply, size_t cap)',
  'int smtp_session_expn(smtp_session *s, const char *list, uint8_t *reply, size_t cap)',
  'int smtp_session_help(smtp_session *s, const char *topic, uint8_t *reply, size_t cap)',
  'int smtp_session_noop(smtp_session *s, uint8_t *reply, size_t cap)',
  'int smtp_session_rset(smtp_session *s, uint8_t *reply, size_t cap)',
  'int smtp_session_quit(smtp_session *s, uint8_t *reply, size_t cap)',
  'int smtp_session_docmd(smtp_session *s, const char *cmd, const char *args, uint8_t *reply, size_t cap)',
  'int smtp_session_close(smtp_session *s)',
  'int smtp_session_mail(smtp_session *s, const char *from, const char **params, size_t n_params, uint8_t *reply, size_t cap)',
  'int smtp_session_rcpt(smtp_session *s, const char *to, const char **params, size_t n_params, uint8_t *reply, size_t cap)',
  'int smtp_session_data(smtp_session *s, const uint8_t *msg, size_t len, uint8_t *reply, size_t cap)',
  'int smtp_session_putcmd(smtp_session *s, const char *cmd, const char *args)',
  'int smtp_session_getreply(smtp_session *s, uint8_t *reply, size_t cap)',
  'int smtp_session_send_message(smtp_session *s, smtp_message *m, const char *from, const char **to, size_t n_to, uint8_t *reply, size_t cap)',
  'int smtp_session_send_message_raw(smtp_session *s, const uint8_t *msg, size_t len, const char *from, const char **to, size_t n_to, uint8_t *reply, size_t cap)',
  // messages
  'smtp_message *smtp_message_new()',
  'void smtp_message_free(smtp_message *m)',
  'int smtp_message_set_from(smtp_message *m, const char *address, const char *name)',
  'int smtp_message_set_sender(smtp_message *m, const char *address, const char *name)',
  'int smtp_message_add_to(smtp_message *m, const char *address, const char *name)',
  'int smtp_message_add_cc(smtp_message *m, const char *address, const char *name)',
  'int smtp_message_add_bcc(smtp_message *m, const char *address, const char *name)',
  'int smtp_message_add_reply_to(smtp_message *m, const char *address, const char *name)',
  'int smtp_message_set_subject(smtp_message *m, const char *subject)',
  'int smtp_message_add_header(smtp_message *m, const char *name, const char *value)',
  'int smtp_message_set_text(smtp_message *m, const uint8_t *text, size_t len)',
  'int smtp_message_set_html(smtp_message *m, const uint8_t *html, size_t len)',
  'int smtp_message_set_raw(smtp_message *m, const uint8_t *msg, size_t len)',
  'int smtp_message_attach(smtp_message *m, const uint8_t *data, size_t len, const char *content_type, const char *filename)',
  'int smtp_message_attach_file(smtp_message *m, const char *path, const char *content_type, const char *filename)',
  'int smtp_message_add_inline(smtp_message *m, const uint8_t *data, size_t len, const char *content_type, const char *content_id)',
  'int smtp_message_add_inline_file(smtp_message *m, const char *path, const char *content_type, const char *content_id)',
  'int smtp_message_set_dkim(smtp_message *m, const char *domain, const char *selector, const char *key_pem, const char *headers)',
  'size_t smtp_message_render(smtp_message *m, uint8_t *buf, size_t cap)',
  'size_t smtp_message_last_error(smtp_message *m, uint8_t *buf, size_t cap)',
  // batch
  'int smtp_session_batch_add(smtp_session *s, const char *from, const char **to, size_t n_to, const uint8_t *msg, size_t msg_len)',
  'int smtp_session_batch_send(smtp_session *s)',
  'int smtp_session_batch_send_cb(smtp_session *s, smtpc_next_message_fn *next, void *user)',
  'size_t smtp_session_batch_count(smtp_session *s)',
  'int smtp_session_batch_code(smtp_session *s, size_t i, uint8_t *reply, size_t cap)',
  'int smtp_session_batch_failed_step(smtp_session *s, size_t i)',
  'int smtp_session_batch_outcome(smtp_session *s, size_t i)',
  'size_t smtp_session_batch_rcpt_count(smtp_session *s, size_t i)',
  'int smtp_session_batch_rcpt_code(smtp_session *s, size_t i, size_t j, uint8_t *reply, size_t cap)',
  'int smtp_session_batch_clear(smtp_session *s)',
  // state
  'int smtp_session_has_extn(smtp_session *s, const char *name)',
  'size_t smtp_session_extn_params(smtp_session *s, const char *name, uint8_t *buf, size_t cap)',
  'size_t smtp_session_extn_count(smtp_session *s)',
  'size_t smtp_session_extn_name(smtp_session *s, size_t i, uint8_t *buf, size_t cap)',
  'size_t smtp_session_rcpt_count(smtp_session *s)',
  'int smtp_session_rcpt_code(smtp_session *s, size_t i, uint8_t *reply, size_t cap)',
  'int smtp_session_rcpt_data_code(smtp_session *s, size_t i, uint8_t *reply, size_t cap)',
  'size_t smtp_session_rcpt_enhanced(smtp_session *s, size_t i, uint8_t *buf, size_t cap)',
  'int smtp_session_failed_step(smtp_session *s)',
  'int smtp_session_outcome(smtp_session *s)',
  'int smtp_session_is_connected(smtp_session *s)',
  'int smtp_session_is_tls(smtp_session *s)',
  'uint64_t smtp_session_waits(smtp_session *s)',
  'int smtp_session_last_code(smtp_session *s)',
  'size_t smtp_session_last_reply(smtp_session *s, uint8_t *buf, size_t cap)',
  'size_t smtp_session_last_enhanced(smtp_session *s, uint8_t *buf, size_t cap)',
  'size_t smtp_session_last_error(smtp_session *s, uint8_t *buf, size_t cap)',
];

/** C functions by their C name. Those the loaded library lacks (an older
 *  libsmtpc) throw when called; `missing` lists them. */
const C = {};
const missing = [];
for (const proto of PROTOTYPES) {
  const name = /([A-Za-z_][A-Za-z0-9_]*)\s*\(/.exec(proto)[1];
  try {
    C[name] = lib.func(proto);
  } catch (e) {
    missing.push(name);
    C[name] = () => {
      throw new Error(`the loaded libsmtpc lacks ${name}`);
    };
  }
}

// The C library reads a streamed body straight from a socketpair with
// libc's read(2) on koffi's worker thread, so no JavaScript runs per chunk:
// smtp_session_sendmail_cb takes read() as its callback and the descriptor
// as its `user` pointer (read's int fd is passed in the same register, and
// ssize_t is int64_t, on the 64-bit Linux ABIs). Same C function, declared
// with those parameter types.
const libc = koffi.load(process.platform === 'linux' ? 'libc.so.6' : null);
const sys = {
  socketpair: libc.func('int socketpair(int domain, int type, int protocol, _Out_ int *sv)'),
  write: libc.func('intptr_t write(int fd, const uint8_t *buf, size_t n)'),
  close: libc.func('int close(int fd)'),
  dlsym: libc.func('void *dlsym(void *handle, const char *name)'),
};
const libcRead = sys.dlsym(null, 'read');
C.sendmail_fd = lib.func('int smtp_session_sendmail_cb(smtp_session *s, const char *from, const char **to, size_t n_to, void *read, intptr_t fd, int64_t size_hint, uint8_t *reply, size_t cap)');

module.exports = { koffi, C, missing, TraceFn, ReadFn, NextFn, SaslFn, sys, libcRead };
