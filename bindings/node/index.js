'use strict';
// Node.js binding of libsmtpc, an SMTP client library with Python smtplib's
// verbs, through koffi. include/smtpc.h documents every call.
//
// Commands return {code, text} for any server answer; a library failure (a
// negative SMTPC_E_* code) throws a SmtpcError subclass carrying .code,
// .detail (smtp_session_last_error) and .call. Calls are synchronous: they
// block the event loop for the length of the SMTP exchange.
//
// The shared library is looked up as $SMTPC_LIB, then libsmtpc.so.0 on the
// loader's path, then this repository's target/release/libsmtpc.so.

const path = require('path');
const koffi = require('koffi');

function loadLibrary() {
  const candidates = [
    process.env.SMTPC_LIB,
    'libsmtpc.so.0',
    path.join(__dirname, '..', '..', 'target', 'release', 'libsmtpc.so'),
  ].filter(Boolean);
  const failures = [];
  for (const name of candidates) {
    try {
      return koffi.load(name);
    } catch (e) {
      failures.push(`${name}: ${e.message}`);
    }
  }
  throw new Error(`cannot load libsmtpc:\n  ${failures.join('\n  ')}`);
}

const lib = loadLibrary();
koffi.opaque('smtp_session');
const TraceFn = koffi.proto('void smtpc_trace_fn(void *user, const char *line)');

const C = {
  strerror: lib.func('const char *smtpc_strerror(int code)'),
  version: lib.func('const char *smtpc_version()'),
  new_: lib.func('smtp_session *smtp_session_new()'),
  free: lib.func('void smtp_session_free(smtp_session *s)'),
  set_timeout_ms: lib.func('int smtp_session_set_timeout_ms(smtp_session *s, uint32_t ms)'),
  set_debuglevel: lib.func('int smtp_session_set_debuglevel(smtp_session *s, int32_t level)'),
  set_trace: lib.func('int smtp_session_set_trace(smtp_session *s, smtpc_trace_fn *cb, void *user)'),
  set_tls_verify: lib.func('int smtp_session_set_tls_verify(smtp_session *s, int32_t on)'),
  set_ca_file: lib.func('int smtp_session_set_ca_file(smtp_session *s, const char *path)'),
  set_local_hostname: lib.func('int smtp_session_set_local_hostname(smtp_session *s, const char *name)'),
  set_pipelining: lib.func('int smtp_session_set_pipelining(smtp_session *s, int32_t on)'),
  connect: lib.func('int smtp_session_connect(smtp_session *s, const char *host, uint16_t port, uint8_t *reply, size_t cap)'),
  connect_tls: lib.func('int smtp_session_connect_tls(smtp_session *s, const char *host, uint16_t port, uint8_t *reply, size_t cap)'),
  helo: lib.func('int smtp_session_helo(smtp_session *s, const char *name, uint8_t *reply, size_t cap)'),
  ehlo: lib.func('int smtp_session_ehlo(smtp_session *s, const char *name, uint8_t *reply, size_t cap)'),
  has_extn: lib.func('int smtp_session_has_extn(smtp_session *s, const char *name)'),
  extn_params: lib.func('int smtp_session_extn_params(smtp_session *s, const char *name, uint8_t *buf, size_t cap)'),
  starttls: lib.func('int smtp_session_starttls(smtp_session *s, uint8_t *reply, size_t cap)'),
  login: lib.func('int smtp_session_login(smtp_session *s, const char *user, const char *password, uint8_t *reply, size_t cap)'),
  sendmail: lib.func('int smtp_session_sendmail(smtp_session *s, const char *from, const char **to, size_t n_to, const uint8_t *msg, size_t msg_len, uint8_t *reply, size_t cap)'),
  rcpt_count: lib.func('size_t smtp_session_rcpt_count(smtp_session *s)'),
  rcpt_code: lib.func('int smtp_session_rcpt_code(smtp_session *s, size_t i, uint8_t *reply, size_t cap)'),
  failed_step: lib.func('int smtp_session_failed_step(smtp_session *s)'),
  vrfy: lib.func('int smtp_session_vrfy(smtp_session *s, const char *address, uint8_t *reply, size_t cap)'),
  expn: lib.func('int smtp_session_expn(smtp_session *s, const char *list, uint8_t *reply, size_t cap)'),
  help: lib.func('int smtp_session_help(smtp_session *s, const char *topic, uint8_t *reply, size_t cap)'),
  noop: lib.func('int smtp_session_noop(smtp_session *s, uint8_t *reply, size_t cap)'),
  rset: lib.func('int smtp_session_rset(smtp_session *s, uint8_t *reply, size_t cap)'),
  quit: lib.func('int smtp_session_quit(smtp_session *s, uint8_t *reply, size_t cap)'),
  close: lib.func('int smtp_session_close(smtp_session *s)'),
  docmd: lib.func('int smtp_session_docmd(smtp_session *s, const char *cmd, const char *args, uint8_t *reply, size_t cap)'),
  last_code: lib.func('int smtp_session_last_code(smtp_session *s)'),
  last_reply: lib.func('size_t smtp_session_last_reply(smtp_session *s, uint8_t *buf, size_t cap)'),
  last_error: lib.func('size_t smtp_session_last_error(smtp_session *s, uint8_t *buf, size_t cap)'),
};

const REPLY_CAP = 1024; // the first buffer every reply is read into
const MAX_REPLY_BYTES = 65536; // SMTPC_MAX_REPLY_BYTES

/** The library's English description of an SMTPC_* or reply code. */
function strerror(code) {
  return C.strerror(code);
}

/** The library's version, e.g. "0.1.0". */
function version() {
  return C.version();
}

/** A library failure: .code is the SMTPC_E_* value (negative). */
class SmtpcError extends Error {
  constructor(code, call, detail = '') {
    let msg = `${call ? call + ': ' : ''}${strerror(code)} (${code})`;
    if (detail) msg += `: ${detail}`;
    super(msg);
    this.name = this.constructor.name;
    this.code = code;
    this.call = call;
    this.detail = detail;
  }
}
class NullPointerError extends SmtpcError {}
class InvalidArgumentError extends SmtpcError {}
class StateError extends SmtpcError {}
class ResolveError extends SmtpcError {}
class ConnectError extends SmtpcError {}
class TimeoutError extends SmtpcError {}
class IOError extends SmtpcError {}
class ClosedError extends SmtpcError {}
class TLSError extends SmtpcError {}
class TLSVerifyError extends TLSError {}
class ProtocolError extends SmtpcError {}
class NotSupportedError extends SmtpcError {}
class AuthMechanismError extends SmtpcError {}
class TooLargeError extends SmtpcError {}
class InsecureError extends SmtpcError {}
class PanicError extends SmtpcError {}
class CallbackError extends SmtpcError {}

const ERROR_CLASSES = {
  [-1]: NullPointerError, [-2]: InvalidArgumentError, [-3]: StateError, [-4]: ResolveError,
  [-5]: ConnectError, [-6]: TimeoutError, [-7]: IOError, [-8]: ClosedError, [-9]: TLSError,
  [-10]: TLSVerifyError, [-11]: ProtocolError, [-12]: NotSupportedError, [-13]: AuthMechanismError,
  [-14]: TooLargeError, [-15]: InsecureError, [-16]: PanicError, [-17]: CallbackError,
};

/** SMTPC_E_* and SMTPC_STEP_* values. */
const codes = Object.freeze({
  E_NULL: -1, E_INVALID: -2, E_STATE: -3, E_RESOLVE: -4, E_CONNECT: -5, E_TIMEOUT: -6, E_IO: -7,
  E_CLOSED: -8, E_TLS: -9, E_TLS_VERIFY: -10, E_PROTOCOL: -11, E_NOT_SUPPORTED: -12,
  E_AUTH_MECH: -13, E_TOO_LARGE: -14, E_INSECURE: -15, E_PANIC: -16, E_CALLBACK: -17,
  STEP_NONE: 0, STEP_MAIL: 1, STEP_RCPT: 2, STEP_DATA: 3, STEP_MESSAGE: 4, STEP_HELO: 5,
});

function makeError(code, call, detail) {
  const Cls = ERROR_CLASSES[code] || SmtpcError;
  return new Cls(code, call, detail);
}

function cstr(call, value) {
  if (value === null || value === undefined) return null;
  const s = String(value);
  if (s.includes('\0')) throw new InvalidArgumentError(-2, call, 'argument contains a NUL byte');
  return s;
}

function bufString(buf) {
  const end = buf.indexOf(0);
  return buf.toString('utf8', 0, end < 0 ? buf.length : end);
}

// Reads a text the C API writes snprintf-style (returns the full length).
function sizedText(fill) {
  let buf = Buffer.alloc(REPLY_CAP);
  let n = Number(fill(buf, buf.length));
  if (n >= buf.length) {
    buf = Buffer.alloc(n + 1);
    n = Math.min(Number(fill(buf, buf.length)), n);
  }
  return buf.toString('utf8', 0, n);
}

// Frees handles the program forgot to close (a safety net only).
const registry = new FinalizationRegistry((held) => {
  C.free(held.handle);
  if (held.cb) koffi.unregister(held.cb);
});

/** One SMTP connection handle (smtp_session). Use from one place at a time. */
class Session {
  /**
   * Options: timeoutMs, debuglevel, caFile, tlsVerify, localHostname,
   * trace (a function receiving each transcript line).
   */
  constructor(options = {}) {
    const handle = C.new_();
    if (!handle) throw new Error('smtp_session_new failed');
    // Shared with the finalizer and the trace trampoline, never `this`, so
    // a registered callback does not keep the session alive.
    this._held = { handle, cb: null };
    this._trace = { fn: null, pending: null };
    registry.register(this, this._held, this);
    if (options.timeoutMs !== undefined) this.setTimeoutMs(options.timeoutMs);
    if (options.debuglevel !== undefined) this.setDebuglevel(options.debuglevel);
    if (options.caFile !== undefined) this.setCAFile(options.caFile);
    if (options.tlsVerify !== undefined) this.setTLSVerify(options.tlsVerify);
    if (options.localHostname !== undefined) this.setLocalHostname(options.localHostname);
    if (options.trace) this.setTrace(options.trace);
    this.greeting = null;
  }

  /**
   * Creates a session and connects (implicit TLS with options.tls). With a
   * function, calls it with the session, closes the session afterwards
   * and returns the function's result; else returns the session.
   */
  static open(host, port, options = {}, fn = undefined) {
    if (typeof options === 'function') [options, fn] = [{}, options];
    const s = new Session(options);
    try {
      if (options.tls) s.connectTLS(host, port ?? 465);
      else s.connect(host, port ?? 25);
    } catch (e) {
      s.close();
      throw e;
    }
    if (!fn) return s;
    try {
      return fn(s);
    } finally {
      s.close();
    }
  }

  /** Frees the handle (closing the connection without QUIT); idempotent. */
  close() {
    if (!this._held.handle) return;
    registry.unregister(this);
    C.free(this._held.handle);
    this._held.handle = null;
    if (this._held.cb) {
      koffi.unregister(this._held.cb);
      this._held.cb = null;
    }
  }

  get closed() {
    return this._held.handle === null;
  }

  // ---- helpers ----

  get _h() {
    return this._held.handle; // null once closed: the C API answers SMTPC_E_NULL
  }

  _check(call, rc) {
    if (rc < 0) throw makeError(rc, call, this.lastError());
    return rc;
  }

  _rethrowTrace() {
    const p = this._trace.pending;
    if (p !== null) {
      this._trace.pending = null;
      throw p.error;
    }
  }

  // Runs one command with a reply buffer; a text that may have been cut
  // is read again in full through smtp_session_last_reply.
  _command(call, run) {
    const buf = Buffer.alloc(REPLY_CAP);
    const rc = run(buf, REPLY_CAP);
    this._rethrowTrace();
    this._check(call, rc);
    let text = bufString(buf);
    // The buffer is cut on a UTF-8 boundary: a cut text is 1020..1023 bytes.
    if (Buffer.byteLength(text) + 4 >= REPLY_CAP && C.last_code(this._h) === rc) {
      const full = this.lastReply();
      if (full.length > text.length && full.startsWith(text)) text = full;
    }
    return { code: rc, text };
  }

  // ---- settings ----

  setTimeoutMs(ms) {
    this._check('smtp_session_set_timeout_ms', C.set_timeout_ms(this._h, ms));
  }

  /** 0 off, 1 smtplib's transcript, 2 with timestamps. */
  setDebuglevel(level) {
    this._check('smtp_session_set_debuglevel', C.set_debuglevel(this._h, level));
  }

  /**
   * Sends transcript lines to fn(line) instead of stderr; null restores
   * stderr. An exception thrown by fn is rethrown by the call that
   * produced the line.
   */
  setTrace(fn) {
    const state = this._trace;
    let cb = null;
    if (fn) {
      cb = koffi.register((_user, line) => {
        if (state.pending !== null || !state.fn) return;
        try {
          state.fn(line);
        } catch (error) {
          // Must not unwind through the C library: rethrown after the call.
          state.pending = { error };
        }
      }, koffi.pointer(TraceFn));
    }
    try {
      this._check('smtp_session_set_trace', C.set_trace(this._h, cb, null));
    } catch (e) {
      if (cb) koffi.unregister(cb);
      throw e;
    }
    const old = this._held.cb;
    state.fn = fn || null;
    this._held.cb = cb;
    if (old) koffi.unregister(old); // C has let go of it
  }

  setTLSVerify(on) {
    this._check('smtp_session_set_tls_verify', C.set_tls_verify(this._h, on ? 1 : 0));
  }

  /** A PEM file of trusted CAs; null goes back to the system's roots. */
  setCAFile(path) {
    const call = 'smtp_session_set_ca_file';
    this._check(call, C.set_ca_file(this._h, cstr(call, path)));
  }

  /** The EHLO/HELO name used by default; null restores the library's. */
  setLocalHostname(name) {
    const call = 'smtp_session_set_local_hostname';
    this._check(call, C.set_local_hostname(this._h, cstr(call, name)));
  }

  setPipelining(on) {
    this._check('smtp_session_set_pipelining', C.set_pipelining(this._h, on ? 1 : 0));
  }

  // ---- commands ----

  connect(host, port = 25) {
    const call = 'smtp_session_connect';
    const h = cstr(call, host);
    this.greeting = this._command(call, (b, n) => C.connect(this._h, h, port, b, n));
    return this.greeting;
  }

  connectTLS(host, port = 465) {
    const call = 'smtp_session_connect_tls';
    const h = cstr(call, host);
    this.greeting = this._command(call, (b, n) => C.connect_tls(this._h, h, port, b, n));
    return this.greeting;
  }

  helo(name = null) {
    const call = 'smtp_session_helo';
    const v = cstr(call, name);
    return this._command(call, (b, n) => C.helo(this._h, v, b, n));
  }

  ehlo(name = null) {
    const call = 'smtp_session_ehlo';
    const v = cstr(call, name);
    return this._command(call, (b, n) => C.ehlo(this._h, v, b, n));
  }

  /** Whether the last EHLO listed the extension (case-insensitive). */
  hasExtn(name) {
    return C.has_extn(this._h, cstr('smtp_session_has_extn', name)) === 1;
  }

  /** The extension's parameters ('' if none); NotSupportedError if not listed. */
  extnParams(name) {
    const call = 'smtp_session_extn_params';
    const v = cstr(call, name);
    let rc = 0;
    const text = sizedText((b, n) => {
      rc = C.extn_params(this._h, v, b, n);
      return rc < 0 ? 0 : rc;
    });
    this._check(call, rc);
    return text;
  }

  starttls() {
    return this._command('smtp_session_starttls', (b, n) => C.starttls(this._h, b, n));
  }

  login(user, password) {
    const call = 'smtp_session_login';
    const u = cstr(call, user);
    const p = cstr(call, password);
    return this._command(call, (b, n) => C.login(this._h, u, p, b, n));
  }

  /**
   * Sends msg (a string, sent as UTF-8, or a Buffer/Uint8Array of bytes)
   * from `from` to each address of `to` (a string or an array). The reply
   * is the final one (250 even if some recipients were refused: see
   * recipients()) or the refusing one (see failedStep()).
   */
  sendmail(from, to, msg) {
    const call = 'smtp_session_sendmail';
    const f = cstr(call, from);
    const addrs = (Array.isArray(to) ? to : [to]).map((a) => cstr(call, a));
    const body = typeof msg === 'string' ? Buffer.from(msg, 'utf8') : Buffer.from(msg.buffer, msg.byteOffset, msg.byteLength);
    return this._command(call, (b, n) =>
      C.sendmail(this._h, f, addrs.length ? addrs : null, addrs.length, body.length ? body : null, body.length, b, n));
  }

  /** [{code, text}] for each recipient of the last sendmail, in order. */
  recipients() {
    const count = Number(C.rcpt_count(this._h));
    const out = [];
    for (let i = 0; i < count; i++) {
      let buf = Buffer.alloc(REPLY_CAP);
      let rc = C.rcpt_code(this._h, i, buf, REPLY_CAP);
      if (rc >= 0 && Buffer.byteLength(bufString(buf)) + 4 >= REPLY_CAP) {
        // Possibly cut and no length is returned: read it again into a
        // buffer that holds any reply the library accepts.
        buf = Buffer.alloc(MAX_REPLY_BYTES + 1);
        rc = C.rcpt_code(this._h, i, buf, buf.length);
      }
      this._check('smtp_session_rcpt_code', rc);
      out.push({ code: rc, text: bufString(buf) });
    }
    return out;
  }

  /** codes.STEP_*: which step of the last sendmail was refused. */
  failedStep() {
    return C.failed_step(this._h);
  }

  vrfy(address) {
    const call = 'smtp_session_vrfy';
    const a = cstr(call, address);
    return this._command(call, (b, n) => C.vrfy(this._h, a, b, n));
  }

  expn(list) {
    const call = 'smtp_session_expn';
    const l = cstr(call, list);
    return this._command(call, (b, n) => C.expn(this._h, l, b, n));
  }

  help(topic = null) {
    const call = 'smtp_session_help';
    const t = cstr(call, topic);
    return this._command(call, (b, n) => C.help(this._h, t, b, n));
  }

  noop() {
    return this._command('smtp_session_noop', (b, n) => C.noop(this._h, b, n));
  }

  rset() {
    return this._command('smtp_session_rset', (b, n) => C.rset(this._h, b, n));
  }

  /** QUIT, then the connection is closed (the session can connect again). */
  quit() {
    return this._command('smtp_session_quit', (b, n) => C.quit(this._h, b, n));
  }

  /** Closes the connection without QUIT; the handle stays usable. */
  disconnect() {
    this._check('smtp_session_close', C.close(this._h));
  }

  docmd(cmd, args = null) {
    const call = 'smtp_session_docmd';
    const c = cstr(call, cmd);
    const a = cstr(call, args);
    return this._command(call, (b, n) => C.docmd(this._h, c, a, b, n));
  }

  // ---- state ----

  lastCode() {
    return C.last_code(this._h);
  }

  lastReply() {
    return sizedText((b, n) => C.last_reply(this._h, b, n));
  }

  lastError() {
    return sizedText((b, n) => C.last_error(this._h, b, n));
  }
}

if (typeof Symbol.dispose === 'symbol') {
  Session.prototype[Symbol.dispose] = Session.prototype.close;
}

module.exports = {
  Session,
  strerror,
  version,
  codes,
  MAX_REPLY_BYTES,
  SmtpcError,
  NullPointerError,
  InvalidArgumentError,
  StateError,
  ResolveError,
  ConnectError,
  TimeoutError,
  IOError,
  ClosedError,
  TLSError,
  TLSVerifyError,
  ProtocolError,
  NotSupportedError,
  AuthMechanismError,
  TooLargeError,
  InsecureError,
  PanicError,
  CallbackError,
};
