'use strict';
// Node.js binding of libsmtpc, an SMTP client library with Python smtplib's
// verbs, through koffi. smtpc.h documents every call.
//
// Two classes share one implementation:
//   AsyncSession  every command returns a Promise and runs on a worker
//                 thread (koffi's asynchronous calls), so the event loop
//                 keeps running; calls on one session run one after the
//                 other; an AbortSignal ({ signal }) or cancel() stops the
//                 call in flight through smtp_session_cancel. sendMail()
//                 takes a Buffer, a string or a Readable body (streamed in
//                 constant memory) and resolves to nodemailer's result shape.
//   Session       the same commands, synchronous (they block the event loop
//                 for the length of the SMTP exchange): for scripts.
// A server's answer of any class is a {code, text}; a library failure (a
// negative SMTPC_E_* code) throws/rejects with a SmtpcError subclass
// carrying .code, .detail (smtp_session_last_error) and .call.

const fs = require('node:fs');
const net = require('node:net');
const { Readable } = require('node:stream');
const { koffi, C, missing, TraceFn, ReadFn, NextFn, SaslFn, sys, libcRead } = require('./lib/native');

const REPLY_CAP = 1024; // the first buffer every reply is read into
const MAX_REPLY_BYTES = 65536; // SMTPC_MAX_REPLY_BYTES

/** SMTPC_* values of smtpc.h (the tests check them against the header). */
const codes = Object.freeze({
  OK: 0,
  E_NULL: -1, E_INVALID: -2, E_STATE: -3, E_RESOLVE: -4, E_CONNECT: -5, E_TIMEOUT: -6, E_IO: -7,
  E_CLOSED: -8, E_TLS: -9, E_TLS_VERIFY: -10, E_PROTOCOL: -11, E_NOT_SUPPORTED: -12,
  E_AUTH_MECH: -13, E_TOO_LARGE: -14, E_INSECURE: -15, E_PANIC: -16, E_CALLBACK: -17,
  E_CANCELLED: -18, E_BUSY: -19,
  STEP_NONE: 0, STEP_MAIL: 1, STEP_RCPT: 2, STEP_DATA: 3, STEP_MESSAGE: 4, STEP_HELO: 5,
  OUTCOME_NONE: 0, OUTCOME_ACCEPTED: 1, OUTCOME_REFUSED: 2, OUTCOME_NOT_SENT: 3, OUTCOME_UNKNOWN: 4,
  TLS_MANUAL: 0, TLS_OPPORTUNISTIC: 1, TLS_REQUIRED: 2, TLS_IMPLICIT: 3, TLS_1_2: 771, TLS_1_3: 772,
});

/** Outcome names by SMTPC_OUTCOME_* value. */
const OUTCOMES = Object.freeze(['none', 'accepted', 'refused', 'not_sent', 'unknown']);
const TLS_POLICIES = Object.freeze({ manual: 0, opportunistic: 1, required: 2, implicit: 3 });

/** The library's English description of an SMTPC_* or reply code. */
function strerror(code) {
  return C.smtpc_strerror(code);
}

/** The library's version, e.g. "0.1.0". */
function version() {
  return C.smtpc_version();
}

/** A library failure: .code is the SMTPC_E_* value (negative). */
class SmtpcError extends Error {
  constructor(code, call, detail = '', options = undefined) {
    let msg = `${call ? call + ': ' : ''}${strerror(code)} (${code})`;
    if (detail) msg += `: ${detail}`;
    super(msg, options);
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
class CancelledError extends SmtpcError {}
class BusyError extends SmtpcError {}
/** A call stopped by its AbortSignal: name 'AbortError', cause the signal's reason. */
class AbortError extends CancelledError {
  constructor(call, reason) {
    super(codes.E_CANCELLED, call, 'aborted by its AbortSignal', { cause: reason });
    this.name = 'AbortError';
  }
}

/**
 * sendMail(): the server refused the message (nodemailer's EENVELOPE /
 * EMESSAGE): responseCode and response are its reply.
 */
class MessageRefusedError extends Error {
  constructor(result) {
    super(`message refused: ${result.response}`);
    this.name = 'MessageRefusedError';
    this.code = result.failedStep === codes.STEP_MESSAGE || result.failedStep === codes.STEP_DATA ? 'EMESSAGE' : 'EENVELOPE';
    this.responseCode = result.code;
    this.response = result.response;
    this.failedStep = result.failedStep;
    this.accepted = result.accepted;
    this.rejected = result.rejected;
    this.outcome = result.outcome;
  }
}

const ERROR_CLASSES = {
  [-1]: NullPointerError, [-2]: InvalidArgumentError, [-3]: StateError, [-4]: ResolveError,
  [-5]: ConnectError, [-6]: TimeoutError, [-7]: IOError, [-8]: ClosedError, [-9]: TLSError,
  [-10]: TLSVerifyError, [-11]: ProtocolError, [-12]: NotSupportedError, [-13]: AuthMechanismError,
  [-14]: TooLargeError, [-15]: InsecureError, [-16]: PanicError, [-17]: CallbackError,
  [-18]: CancelledError, [-19]: BusyError,
};

function makeError(code, call, detail, cause) {
  const Cls = ERROR_CLASSES[code] || SmtpcError;
  return new Cls(code, call, detail, cause === undefined ? undefined : { cause });
}

function cstr(call, value) {
  if (value === null || value === undefined) return null;
  const s = String(value);
  if (s.includes('\0')) throw new InvalidArgumentError(codes.E_INVALID, call, 'argument contains a NUL byte');
  return s;
}

function addressList(call, to) {
  if (to === null || to === undefined) return [];
  return (Array.isArray(to) ? to : [to]).map((a) => cstr(call, a));
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

// [code, text] from a call that gives no length: a text that may have been
// cut is read again into a buffer that holds any reply.
function codeText(fill) {
  let buf = Buffer.alloc(REPLY_CAP);
  let rc = fill(buf, REPLY_CAP);
  if (rc >= 0 && Buffer.byteLength(bufString(buf)) + 4 >= REPLY_CAP) {
    buf = Buffer.alloc(MAX_REPLY_BYTES + 1);
    rc = fill(buf, buf.length);
  }
  return [rc, bufString(buf)];
}

function toBuffer(msg) {
  if (typeof msg === 'string') return Buffer.from(msg, 'utf8');
  return Buffer.from(msg.buffer, msg.byteOffset, msg.byteLength);
}

function isStreamBody(msg) {
  return msg !== null && typeof msg === 'object' && !ArrayBuffer.isView(msg)
    && (typeof msg[Symbol.asyncIterator] === 'function' || typeof msg.pipe === 'function');
}

// Frees handles the program forgot to close (a safety net only).
const registry = new FinalizationRegistry((held) => {
  if (held.handle) C.smtp_session_free(held.handle);
  if (held.cb) koffi.unregister(held.cb);
});

// ---- the shared implementation ---------------------------------------------

class Core {
  constructor(options = {}) {
    const handle = C.smtp_session_new();
    if (!handle) throw new Error('smtp_session_new failed');
    // Shared with the finalizer and the trace trampoline, never `this`, so
    // a registered callback does not keep the session alive.
    this._held = { handle, cb: null };
    this._trace = { fn: null, pending: null };
    this._inflight = false; // a C call is running on this handle
    this._cancelled = false; // cancel() reached that call
    this._stale = false; // a cancel may have landed after the last call returned
    this._pending = 0; // AsyncSession: calls queued or in flight
    this._inSlot = false; // AsyncSession: a call's post-processing is running
    registry.register(this, this._held, this);
    this.greeting = null;
    if (options.timeoutMs !== undefined) this.setTimeoutMs(options.timeoutMs);
    if (options.bodyTimeoutMs !== undefined) this.setBodyTimeoutMs(options.bodyTimeoutMs);
    if (options.debuglevel !== undefined) this.setDebuglevel(options.debuglevel);
    if (options.caFile !== undefined) this.setCAFile(options.caFile);
    if (options.tlsVerify !== undefined) this.setTLSVerify(options.tlsVerify);
    if (options.tlsPolicy !== undefined) this.setTLSPolicy(options.tlsPolicy);
    if (options.localHostname !== undefined) this.setLocalHostname(options.localHostname);
    if (options.trace) this.setTrace(options.trace);
  }

  /** Frees the handle (closing the connection without QUIT); idempotent. */
  close() {
    if (!this._held.handle) return;
    this._assertIdle('close');
    registry.unregister(this);
    C.smtp_session_free(this._held.handle);
    this._held.handle = null;
    if (this._held.cb) {
      koffi.unregister(this._held.cb);
      this._held.cb = null;
    }
  }

  get closed() {
    return this._held.handle === null;
  }

  /**
   * Stops the call in flight on this session (from a trace callback, a
   * timer, an abort handler): it fails with CancelledError promptly and
   * the connection is closed; the session can connect again. Without a
   * call in flight, does nothing.
   */
  cancel() {
    if (this._inflight && this._held.handle) {
      C.smtp_session_cancel(this._held.handle);
      this._cancelled = true;
    }
  }

  // ---- helpers ----

  get _h() {
    return this._held.handle; // null once closed: the C API answers SMTPC_E_NULL
  }

  _assertIdle(call) {
    if ((this._inflight || this._pending > 0) && !this._inSlot) {
      throw new BusyError(codes.E_BUSY, call, 'a call is in flight on this session: await it first');
    }
  }

  _check(call, rc, cause) {
    if (rc < 0) throw makeError(rc, call, this.lastError(), cause);
    return rc;
  }

  _rethrowTrace() {
    const p = this._trace.pending;
    if (p !== null) {
      this._trace.pending = null;
      throw p.error;
    }
  }

  _begin() {
    this._inflight = true;
    this._cancelled = false;
    const stale = this._stale;
    this._stale = false;
    return stale;
  }

  _end(rc) {
    this._inflight = false;
    const cancelled = this._cancelled;
    if (cancelled && rc !== codes.E_CANCELLED) this._stale = true;
    return cancelled;
  }

  // Runs the command `call` (C name) with a reply buffer; post() shapes
  // the {code, text}. A text that may have been cut is read again in full.
  _command(call, args, opts, post = (r) => r, fn = C[call]) {
    const buf = Buffer.alloc(REPLY_CAP);
    return this._run(fn, call, args.concat([buf, REPLY_CAP]), opts, (rc, cause) => {
      this._rethrowTrace();
      this._check(call, rc, cause);
      let text = bufString(buf);
      // The buffer is cut on a UTF-8 boundary: a cut text is 1020..1023 bytes.
      if (Buffer.byteLength(text) + 4 >= REPLY_CAP && C.smtp_session_last_code(this._h) === rc) {
        const full = this.lastReply();
        if (full.length > text.length && full.startsWith(text)) text = full;
      }
      return post({ code: rc, text });
    });
  }

  _setFlag(call, on) {
    this._assertIdle(call);
    this._check(call, C[call](this._h, on ? 1 : 0));
  }

  // ---- settings (synchronous in both classes: nothing goes on the wire) ----

  setTimeoutMs(ms) {
    this._assertIdle('smtp_session_set_timeout_ms');
    this._check('smtp_session_set_timeout_ms', C.smtp_session_set_timeout_ms(this._h, ms));
  }

  /** Bound on writing one whole message body; 0: the timeout. */
  setBodyTimeoutMs(ms) {
    this._assertIdle('smtp_session_set_body_timeout_ms');
    this._check('smtp_session_set_body_timeout_ms', C.smtp_session_set_body_timeout_ms(this._h, ms));
  }

  /** 0 off, 1 smtplib's transcript, 2 with timestamps. */
  setDebuglevel(level) {
    this._assertIdle('smtp_session_set_debuglevel');
    this._check('smtp_session_set_debuglevel', C.smtp_session_set_debuglevel(this._h, level));
  }

  /**
   * Sends transcript lines to fn(line) instead of stderr; null restores
   * stderr. An exception thrown by fn is rethrown by the call that
   * produced the line. (AsyncSession: fn runs on the main thread.)
   */
  setTrace(fn) {
    this._assertIdle('smtp_session_set_trace');
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
      this._check('smtp_session_set_trace', C.smtp_session_set_trace(this._h, cb, null));
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
    this._setFlag('smtp_session_set_tls_verify', on);
  }

  /** 'manual' (default), 'opportunistic', 'required' or 'implicit'. */
  setTLSPolicy(policy) {
    const call = 'smtp_session_set_tls_policy';
    this._assertIdle(call);
    const value = TLS_POLICIES[policy];
    if (value === undefined) throw new InvalidArgumentError(codes.E_INVALID, call, `unknown TLS policy ${policy}`);
    this._check(call, C.smtp_session_set_tls_policy(this._h, value));
  }

  setAllowInsecureAuth(on) {
    this._setFlag('smtp_session_set_allow_insecure_auth', on);
  }

  /** A PEM file of trusted CAs; null goes back to the system's roots. */
  setCAFile(path) {
    const call = 'smtp_session_set_ca_file';
    this._assertIdle(call);
    this._check(call, C.smtp_session_set_ca_file(this._h, cstr(call, path)));
  }

  /** The EHLO/HELO name used by default; null restores the library's. */
  setLocalHostname(name) {
    const call = 'smtp_session_set_local_hostname';
    this._assertIdle(call);
    this._check(call, C.smtp_session_set_local_hostname(this._h, cstr(call, name)));
  }

  /** The local IP address (and port, 0: any) to connect from; null clears. */
  setSourceAddress(address, port = 0) {
    const call = 'smtp_session_set_source_address';
    this._assertIdle(call);
    this._check(call, C.smtp_session_set_source_address(this._h, cstr(call, address), port));
  }

  setPipelining(on) {
    this._setFlag('smtp_session_set_pipelining', on);
  }

  setChunking(on) {
    this._setFlag('smtp_session_set_chunking', on);
  }

  setBinaryMime(on) {
    this._setFlag('smtp_session_set_binarymime', on);
  }

  /** DSN (RFC 3461) for the next messages; no argument turns it off. */
  setDSN({ ret = null, envid = null, notify = null, orcpt = false } = {}) {
    const call = 'smtp_session_set_dsn';
    this._assertIdle(call);
    const n = Array.isArray(notify) ? notify.join(',') : notify;
    this._check(call, C.smtp_session_set_dsn(this._h, cstr(call, ret), cstr(call, envid), cstr(call, n), orcpt ? 1 : 0));
  }

  // ---- commands ----

  connect(host, port = 25, opts = undefined) {
    const call = 'smtp_session_connect';
    const h = cstr(call, host);
    return this._command(call, [h, port], opts, (r) => (this.greeting = r));
  }

  connectTLS(host, port = 465, opts = undefined) {
    const call = 'smtp_session_connect_tls';
    const h = cstr(call, host);
    return this._command(call, [h, port], opts, (r) => (this.greeting = r));
  }

  helo(name = null, opts = undefined) {
    return this._command('smtp_session_helo', [cstr('smtp_session_helo', name)], opts);
  }

  ehlo(name = null, opts = undefined) {
    return this._command('smtp_session_ehlo', [cstr('smtp_session_ehlo', name)], opts);
  }

  /** Switches to LMTP and sends LHLO; see rcptDataReplies(). */
  lhlo(name = null, opts = undefined) {
    return this._command('smtp_session_lhlo', [cstr('smtp_session_lhlo', name)], opts);
  }

  starttls(opts = undefined) {
    return this._command('smtp_session_starttls', [], opts);
  }

  login(user, password, opts = undefined) {
    const call = 'smtp_session_login';
    return this._command(call, [cstr(call, user), cstr(call, password)], opts);
  }

  /** One mechanism: 'PLAIN', 'LOGIN', 'CRAM-MD5' or 'XOAUTH2' (secret: the access token). */
  auth(mechanism, user, secret, opts = undefined) {
    const call = 'smtp_session_auth';
    return this._command(call, [cstr(call, mechanism), cstr(call, user), cstr(call, secret)], opts);
  }

  /**
   * A mechanism of the caller's (smtplib's auth(mechanism, authobject)):
   * fn(null) gives the initial response (null: the mechanism has none),
   * then fn(challenge: Buffer) each answer; strings or Buffers. The
   * library does the base64 and the AUTH exchange. An exception thrown by
   * fn aborts the exchange and is rethrown. (AsyncSession: fn runs on the
   * main thread.)
   */
  authCallback(mechanism, fn, opts = undefined) {
    const call = 'smtp_session_auth_callback';
    const m = cstr(call, mechanism);
    let held = null;
    let failure = null;
    const cb = koffi.register((_user, challenge, clen, resp, cap) => {
      let out = held;
      held = null;
      if (out === null) {
        try {
          const c = challenge === null ? null : Buffer.from(koffi.decode(challenge, 'uint8_t', Number(clen)));
          const r = fn(c);
          if ((r === null || r === undefined) && challenge === null) return -2; // SMTPC_SASL_NO_RESPONSE
          out = toBuffer(r === null || r === undefined ? '' : r);
        } catch (error) {
          failure = error;
          return -1;
        }
      }
      if (out.length > Number(cap)) {
        held = out; // the library asks again with a buffer that fits
      } else if (out.length > 0) {
        new Uint8Array(koffi.view(resp, out.length)).set(out);
      }
      return out.length;
    }, koffi.pointer(SaslFn));
    const release = (r) => {
      koffi.unregister(cb);
      return r;
    };
    const fail = (e) => {
      koffi.unregister(cb);
      throw failure && e instanceof CallbackError ? failure : e;
    };
    try {
      return this._then(this._command(call, [m, cb, null], opts), release, fail);
    } catch (e) {
      return fail(e);
    }
  }

  /** smtplib's initial_response_ok (default true). */
  setInitialResponse(on) {
    this._setFlag('smtp_session_set_initial_response', on);
  }

  /**
   * smtplib's sendmail: msg from `from` to each address of `to` (a string
   * or an array). msg is a string (sent as UTF-8), a Buffer/Uint8Array,
   * or — streamed in constant memory — an iterable of chunks (Session) or
   * a Readable / async iterable (AsyncSession); opts.size announces its
   * size. Resolves to the final reply (250 even if some recipients were
   * refused: see recipients()) or the refusing one (see failedStep()).
   */
  sendmail(from, to, msg, opts = undefined) {
    const call = 'smtp_session_sendmail';
    const f = cstr(call, from);
    const addrs = addressList(call, to);
    const size = opts && opts.size !== undefined ? opts.size : -1;
    const post = (opts && opts._post) || ((r) => r);
    if (typeof msg === 'string' || ArrayBuffer.isView(msg)) {
      const body = toBuffer(msg);
      return this._command(call, [f, addrs.length ? addrs : null, addrs.length, body.length ? body : null, body.length], opts, post);
    }
    return this._sendStream(f, addrs, msg, size, opts, post);
  }

  /**
   * nodemailer's sendMail: resolves to {accepted, rejected, response,
   * envelope, ...} when the server accepted the message; rejects with
   * MessageRefusedError when it refused it, with a SmtpcError (its
   * .outcome tells 'not_sent' from 'unknown') when the send failed.
   * Options: from, to, cc, bcc (envelope recipients), raw | message (the
   * RFC 5322 bytes: string, Buffer, Readable), size, signal.
   */
  sendMail(mail) {
    const to = [mail.to, mail.cc, mail.bcc].flatMap((v) => (v === undefined || v === null ? [] : Array.isArray(v) ? v : [v]));
    const body = mail.raw !== undefined ? mail.raw : mail.message;
    const started = Date.now();
    const finish = (r) => {
      const rcpts = this.recipients();
      const result = {
        accepted: to.filter((_, i) => rcpts[i] && rcpts[i].code >= 200 && rcpts[i].code < 300),
        rejected: to.filter((_, i) => !rcpts[i] || rcpts[i].code < 200 || rcpts[i].code >= 300),
        rejectedErrors: rcpts.filter((x) => x.code >= 300).map((x) => x.text),
        response: `${r.code} ${r.text.split('\n').join(' ')}`,
        code: r.code,
        text: r.text,
        outcome: this.outcome(),
        failedStep: this.failedStep(),
        recipients: rcpts,
        envelope: { from: mail.from, to },
        messageTime: Date.now() - started,
      };
      if (result.outcome !== 'accepted') throw new MessageRefusedError(result);
      return result;
    };
    // finish runs inside the call's turn, before any call queued after it.
    return this._then(this.sendmail(mail.from, to, body, { ...mail, _post: finish }), (r) => r, (e) => {
      if (e.outcome === undefined) e.outcome = this._h ? OUTCOMES[C.smtp_session_outcome(this._h)] : 'not_sent';
      throw e;
    });
  }

  /** The answer to each recipient of the last sendmail: [{code, text, enhanced}]. */
  recipients() {
    this._assertIdle('smtp_session_rcpt_code');
    const count = Number(C.smtp_session_rcpt_count(this._h));
    const out = [];
    for (let i = 0; i < count; i++) {
      const [rc, text] = codeText((b, n) => C.smtp_session_rcpt_code(this._h, i, b, n));
      this._check('smtp_session_rcpt_code', rc);
      const enhanced = sizedText((b, n) => C.smtp_session_rcpt_enhanced(this._h, i, b, n));
      out.push({ code: rc, text, enhanced });
    }
    return out;
  }

  /** LMTP: each recipient's delivery reply after the last sendmail. */
  rcptDataReplies() {
    this._assertIdle('smtp_session_rcpt_data_code');
    const count = Number(C.smtp_session_rcpt_count(this._h));
    const out = [];
    for (let i = 0; i < count; i++) {
      const [code, text] = codeText((b, n) => C.smtp_session_rcpt_data_code(this._h, i, b, n));
      out.push({ code, text });
    }
    return out;
  }

  /** codes.STEP_*: which step of the last sendmail was refused. */
  failedStep() {
    this._assertIdle('smtp_session_failed_step');
    return C.smtp_session_failed_step(this._h);
  }

  /** 'none' | 'accepted' | 'refused' | 'not_sent' | 'unknown': the last sendmail's. */
  outcome() {
    this._assertIdle('smtp_session_outcome');
    return OUTCOMES[C.smtp_session_outcome(this._h)] || 'none';
  }

  vrfy(address, opts = undefined) {
    return this._command('smtp_session_vrfy', [cstr('smtp_session_vrfy', address)], opts);
  }

  expn(list, opts = undefined) {
    return this._command('smtp_session_expn', [cstr('smtp_session_expn', list)], opts);
  }

  help(topic = null, opts = undefined) {
    return this._command('smtp_session_help', [cstr('smtp_session_help', topic)], opts);
  }

  noop(opts = undefined) {
    return this._command('smtp_session_noop', [], opts);
  }

  rset(opts = undefined) {
    return this._command('smtp_session_rset', [], opts);
  }

  /** QUIT, then the connection is closed (the session can connect again). */
  quit(opts = undefined) {
    return this._command('smtp_session_quit', [], opts);
  }

  /** Closes the connection without QUIT; the handle stays usable. */
  disconnect() {
    this._assertIdle('smtp_session_close');
    this._check('smtp_session_close', C.smtp_session_close(this._h));
  }

  docmd(cmd, args = null, opts = undefined) {
    const call = 'smtp_session_docmd';
    return this._command(call, [cstr(call, cmd), cstr(call, args)], opts);
  }

  /** ESMTP parameters added to every MAIL FROM (smtplib's mail_options). */
  setMailOptions(opts) {
    const call = 'smtp_session_set_mail_options';
    this._assertIdle(call);
    const list = addressList(call, opts);
    this._check(call, C.smtp_session_set_mail_options(this._h, list.length ? list : null, list.length));
  }

  /** ESMTP parameters added to every RCPT TO (smtplib's rcpt_options). */
  setRcptOptions(opts) {
    const call = 'smtp_session_set_rcpt_options';
    this._assertIdle(call);
    const list = addressList(call, opts);
    this._check(call, C.smtp_session_set_rcpt_options(this._h, list.length ? list : null, list.length));
  }

  /** A client certificate (PEM; keyPath null when the key is in certPath). */
  setClientCert(certPath, keyPath = null) {
    const call = 'smtp_session_set_client_cert';
    this._assertIdle(call);
    this._check(call, C.smtp_session_set_client_cert(this._h, cstr(call, certPath), cstr(call, keyPath)));
  }

  /** A directory of trusted PEM certificates; null: back to the default. */
  setCADir(path) {
    const call = 'smtp_session_set_ca_dir';
    this._assertIdle(call);
    this._check(call, C.smtp_session_set_ca_dir(this._h, cstr(call, path)));
  }

  /** Lowest TLS version: codes.TLS_1_2, codes.TLS_1_3, or 0 (default). */
  setTLSMinVersion(version) {
    const call = 'smtp_session_set_tls_min_version';
    this._assertIdle(call);
    this._check(call, C.smtp_session_set_tls_min_version(this._h, version));
  }

  /** The name the certificate is verified against (and SNI); null: the host. */
  setTLSServerName(name) {
    const call = 'smtp_session_set_tls_server_name';
    this._assertIdle(call);
    this._check(call, C.smtp_session_set_tls_server_name(this._h, cstr(call, name)));
  }

  // ---- smtplib's low-level verbs ----

  /** MAIL FROM:<from> with ESMTP parameters (smtplib's mail). */
  mail(from, params = [], opts = undefined) {
    const call = 'smtp_session_mail';
    const list = addressList(call, params);
    return this._command(call, [cstr(call, from), list.length ? list : null, list.length], opts);
  }

  /** RCPT TO:<to> with ESMTP parameters (smtplib's rcpt). */
  rcpt(to, params = [], opts = undefined) {
    const call = 'smtp_session_rcpt';
    const list = addressList(call, params);
    return this._command(call, [cstr(call, to), list.length ? list : null, list.length], opts);
  }

  /** DATA and, on 354, the message; the final reply (smtplib's data). */
  data(msg, opts = undefined) {
    const body = toBuffer(msg);
    return this._command('smtp_session_data', [body.length ? body : null, body.length], opts);
  }

  /** Queues one command line without reading (smtplib's putcmd). */
  putcmd(cmd, args = null) {
    const call = 'smtp_session_putcmd';
    this._assertIdle(call);
    this._check(call, C.smtp_session_putcmd(this._h, cstr(call, cmd), cstr(call, args)));
  }

  /** Reads the next reply, sending what putcmd queued (smtplib's getreply). */
  getreply(opts = undefined) {
    return this._command('smtp_session_getreply', [], opts);
  }

  /**
   * smtplib's send_message: a Message, or RFC 5322 bytes (string/Buffer);
   * the envelope from opts.from / opts.to, or from the message's fields.
   */
  sendMessage(message, opts = {}) {
    const from = cstr('smtp_session_send_message', opts.from);
    const to = addressList('smtp_session_send_message', opts.to);
    if (message instanceof Message) {
      return this._command('smtp_session_send_message',
        [message._handle(), from, to.length ? to : null, to.length], opts);
    }
    const body = toBuffer(message);
    return this._command('smtp_session_send_message_raw',
      [body.length ? body : null, body.length, from, to.length ? to : null, to.length], opts);
  }

  // ---- batches ----

  /**
   * Sends every message of `messages` (an iterable, read one message at a
   * time: {from, to, raw|message} or [from, to, body]), pipelined across
   * messages when the server offers PIPELINING, and gives one result per
   * message: {code, text, outcome, failedStep, accepted, rejected,
   * recipients}. Fails only when the connection failed (the error's
   * .results holds the results all the same).
   */
  sendBatch(messages, opts = undefined) {
    const call = 'smtp_session_batch_send_cb';
    const it = messages[Symbol.iterator]();
    const sent = [];
    let held = [];
    let pending = null;
    const release = () => {
      for (const p of held) koffi.free(p);
      held = [];
    };
    const cBytes = (buf, terminate) => {
      const n = buf.length + (terminate ? 1 : 0);
      const p = koffi.alloc('uint8_t', Math.max(n, 1));
      held.push(p);
      const view = new Uint8Array(koffi.view(p, Math.max(n, 1)));
      view.set(buf);
      if (terminate) view[buf.length] = 0;
      return p;
    };
    const next = koffi.register((_user, fromPP, toPP, nToP, msgPP, lenP) => {
      try {
        release();
        const { value, done } = it.next();
        if (done) return 0;
        const m = Array.isArray(value) ? { from: value[0], to: value[1], raw: value[2] } : value;
        const to = addressList(call, m.to);
        const body = toBuffer(m.raw !== undefined ? m.raw : m.message);
        sent.push(to);
        koffi.encode(fromPP, 'void *', cBytes(Buffer.from(cstr(call, m.from)), true));
        const arr = koffi.alloc('void *', Math.max(to.length, 1));
        held.push(arr);
        to.forEach((a, i) => koffi.encode(arr, i * 8, 'void *', cBytes(Buffer.from(a), true)));
        koffi.encode(toPP, 'void *', arr);
        koffi.encode(nToP, 'size_t', to.length);
        koffi.encode(msgPP, 'void *', cBytes(body, false));
        koffi.encode(lenP, 'size_t', body.length);
        return 1;
      } catch (error) {
        pending = error;
        return -1;
      }
    }, koffi.pointer(NextFn));
    const done = () => {
      release();
      koffi.unregister(next);
    };
    let result;
    try {
      result = this._run(C[call], call, [next, null], opts, (rc, cause) => {
        done();
        if (pending) throw pending;
        return this._batchFinish(call, rc, cause, sent);
      });
    } catch (e) {
      done();
      throw e;
    }
    return result;
  }

  /** Queues a copy of a message for batchSend(); addresses are checked now. */
  batchAdd(from, to, msg) {
    const call = 'smtp_session_batch_add';
    this._assertIdle(call);
    const addrs = addressList(call, to);
    const body = toBuffer(msg);
    this._check(call, C.smtp_session_batch_add(this._h, cstr(call, from), addrs.length ? addrs : null,
      addrs.length, body.length ? body : null, body.length));
    (this._queued || (this._queued = [])).push(addrs);
  }

  /** Sends the queued messages; gives their results (as sendBatch). */
  batchSend(opts = undefined) {
    const call = 'smtp_session_batch_send';
    const queued = this._queued || [];
    this._queued = [];
    return this._run(C[call], call, [], opts, (rc, cause) => this._batchFinish(call, rc, cause, queued));
  }

  /** The results of the last batch. */
  batchResults(addresses = []) {
    this._assertIdle('smtp_session_batch_count');
    const count = Number(C.smtp_session_batch_count(this._h));
    const out = [];
    for (let i = 0; i < count; i++) {
      const [code, text] = codeText((b, n) => C.smtp_session_batch_code(this._h, i, b, n));
      const recipients = [];
      const nr = Number(C.smtp_session_batch_rcpt_count(this._h, i));
      for (let j = 0; j < nr; j++) {
        const [c, t] = codeText((b, n) => C.smtp_session_batch_rcpt_code(this._h, i, j, b, n));
        recipients.push({ code: c, text: t });
      }
      const to = addresses[i] || [];
      const ok = (j) => recipients[j] && recipients[j].code >= 200 && recipients[j].code < 300;
      out.push({
        code, text,
        outcome: OUTCOMES[C.smtp_session_batch_outcome(this._h, i)] || 'none',
        failedStep: C.smtp_session_batch_failed_step(this._h, i),
        recipients,
        accepted: to.filter((_, j) => ok(j)),
        rejected: to.filter((_, j) => !ok(j)),
      });
    }
    return out;
  }

  /** Drops queued messages and the last batch's results. */
  batchClear() {
    this._assertIdle('smtp_session_batch_clear');
    this._queued = [];
    this._check('smtp_session_batch_clear', C.smtp_session_batch_clear(this._h));
  }

  _batchFinish(call, rc, cause, addresses) {
    this._rethrowTrace();
    const results = this.batchResults(addresses);
    if (rc < 0) {
      const e = makeError(rc, call, this.lastError(), cause);
      e.results = results;
      throw e;
    }
    if (rc >= 100) {
      const e = new StateError(codes.E_STATE, call, `EHLO/HELO refused: ${rc} ${this.lastReply()}`);
      e.results = results;
      throw e;
    }
    return results;
  }

  // ---- state ----

  /** Whether the last EHLO listed the extension (case-insensitive). */
  hasExtn(name) {
    this._assertIdle('smtp_session_has_extn');
    return C.smtp_session_has_extn(this._h, cstr('smtp_session_has_extn', name)) === 1;
  }

  /** The extension's parameters ('' if none); NotSupportedError if not listed. */
  extnParams(name) {
    const call = 'smtp_session_extn_params';
    this._assertIdle(call);
    const v = cstr(call, name);
    if (!this.hasExtn(v)) {
      if (!this._h) throw new NullPointerError(codes.E_NULL, call);
      throw new NotSupportedError(codes.E_NOT_SUPPORTED, call, `the last EHLO did not list ${v}`);
    }
    return sizedText((b, n) => C.smtp_session_extn_params(this._h, v, b, n));
  }

  /** The last EHLO's extensions: {KEYWORD: parameters}, in the server's order. */
  extensions() {
    this._assertIdle('smtp_session_extn_name');
    const out = {};
    const n = Number(C.smtp_session_extn_count(this._h));
    for (let i = 0; i < n; i++) {
      const name = sizedText((b, c) => C.smtp_session_extn_name(this._h, i, b, c));
      out[name] = this.extnParams(name);
    }
    return out;
  }

  isConnected() {
    return C.smtp_session_is_connected(this._h) === 1;
  }

  isTLS() {
    return C.smtp_session_is_tls(this._h) === 1;
  }

  /** How many times the session waited on the network for a reply. */
  waits() {
    return Number(C.smtp_session_waits(this._h));
  }

  lastCode() {
    this._assertIdle('smtp_session_last_code');
    return C.smtp_session_last_code(this._h);
  }

  lastReply() {
    return sizedText((b, n) => C.smtp_session_last_reply(this._h, b, n));
  }

  /** The enhanced status code of the last reply ('5.1.1'; '' if none). */
  lastEnhanced() {
    return sizedText((b, n) => C.smtp_session_last_enhanced(this._h, b, n));
  }

  lastError() {
    return sizedText((b, n) => C.smtp_session_last_error(this._h, b, n));
  }
}

// ---- messages -------------------------------------------------------------------

const messageRegistry = new FinalizationRegistry((held) => {
  if (held.handle) C.smtp_message_free(held.handle);
});

/**
 * An RFC 5322 message built by the library (smtp_message): mailboxes,
 * subject, headers, text and HTML bodies, attachments, DKIM. Setters
 * return the message (chainable) and throw InvalidArgumentError for a
 * refused value (header injection, a bad address...).
 */
class Message {
  constructor() {
    const handle = C.smtp_message_new();
    if (!handle) throw new Error('smtp_message_new failed');
    this._held = { handle };
    messageRegistry.register(this, this._held, this);
  }

  _handle() {
    return this._held.handle;
  }

  close() {
    if (!this._held.handle) return;
    messageRegistry.unregister(this);
    C.smtp_message_free(this._held.handle);
    this._held.handle = null;
  }

  _check(call, rc) {
    if (rc < 0) throw makeError(rc, call, this.lastError());
    return this;
  }

  _mailbox(call, address, name) {
    return this._check(call, C[call](this._held.handle, cstr(call, address), cstr(call, name)));
  }

  _bytes(call, data, ...rest) {
    const b = toBuffer(data);
    return this._check(call, C[call](this._held.handle, b.length ? b : null, b.length, ...rest));
  }

  setFrom(address, name = null) { return this._mailbox('smtp_message_set_from', address, name); }

  setSender(address, name = null) { return this._mailbox('smtp_message_set_sender', address, name); }

  addTo(address, name = null) { return this._mailbox('smtp_message_add_to', address, name); }

  addCc(address, name = null) { return this._mailbox('smtp_message_add_cc', address, name); }

  addBcc(address, name = null) { return this._mailbox('smtp_message_add_bcc', address, name); }

  addReplyTo(address, name = null) { return this._mailbox('smtp_message_add_reply_to', address, name); }

  setSubject(subject) {
    const call = 'smtp_message_set_subject';
    return this._check(call, C.smtp_message_set_subject(this._held.handle, cstr(call, subject)));
  }

  addHeader(name, value) {
    const call = 'smtp_message_add_header';
    return this._check(call, C.smtp_message_add_header(this._held.handle, cstr(call, name), cstr(call, value)));
  }

  setText(text) { return this._bytes('smtp_message_set_text', text); }

  setHtml(html) { return this._bytes('smtp_message_set_html', html); }

  setRaw(bytes) { return this._bytes('smtp_message_set_raw', bytes); }

  /** Attaches bytes (contentType null: application/octet-stream). */
  attach(data, filename, contentType = null) {
    const call = 'smtp_message_attach';
    return this._bytes(call, data, cstr(call, contentType), cstr(call, filename));
  }

  /** Attaches a file, streamed when the message is sent. */
  attachFile(path, contentType = null, filename = null) {
    const call = 'smtp_message_attach_file';
    return this._check(call, C.smtp_message_attach_file(this._held.handle, cstr(call, path), cstr(call, contentType), cstr(call, filename)));
  }

  /** An inline part for the HTML body, referenced as cid:contentId. */
  addInline(data, contentId, contentType = null) {
    const call = 'smtp_message_add_inline';
    return this._bytes(call, data, cstr(call, contentType), cstr(call, contentId));
  }

  addInlineFile(path, contentId, contentType = null) {
    const call = 'smtp_message_add_inline_file';
    return this._check(call, C.smtp_message_add_inline_file(this._held.handle, cstr(call, path), cstr(call, contentType), cstr(call, contentId)));
  }

  /** DKIM-signs the message when rendered or sent; domain null stops signing. */
  setDKIM(domain, selector = null, keyPem = null, headers = null) {
    const call = 'smtp_message_set_dkim';
    return this._check(call, C.smtp_message_set_dkim(this._held.handle, cstr(call, domain), cstr(call, selector),
      cstr(call, keyPem), cstr(call, headers)));
  }

  /** The message as sendMessage sends it (a Buffer). */
  render() {
    const n = Number(C.smtp_message_render(this._held.handle, null, 0));
    if (n === 0) throw new InvalidArgumentError(codes.E_INVALID, 'smtp_message_render', this.lastError());
    const buf = Buffer.alloc(n + 1);
    const got = Number(C.smtp_message_render(this._held.handle, buf, buf.length));
    return buf.subarray(0, Math.min(got, n));
  }

  lastError() {
    return sizedText((b, n) => C.smtp_message_last_error(this._held.handle, b, n));
  }
}

if (typeof Symbol.dispose === 'symbol') {
  Message.prototype[Symbol.dispose] = Message.prototype.close;
}

// ---- synchronous ---------------------------------------------------------------

/** One SMTP connection handle (smtp_session), synchronous calls. */
class Session extends Core {
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

  _then(value, fn, onError) {
    try {
      return fn(value);
    } catch (e) {
      if (onError) return onError(e);
      throw e;
    }
  }

  _run(fn, call, args, opts, post) {
    if (opts && opts.signal) throw new TypeError('signal: use AsyncSession for cancellable calls');
    this._assertIdle(call);
    this._begin();
    let rc;
    try {
      rc = fn(this._h, ...args);
    } finally {
      this._end(rc);
    }
    return post(rc, undefined);
  }

  // A synchronous iterable of chunks, pulled by a JavaScript read callback.
  _sendStream(from, to, source, size, _opts, post = (r) => r) {
    const call = 'smtp_session_sendmail_cb';
    if (!source || typeof source[Symbol.iterator] !== 'function') {
      throw new TypeError('Session.sendmail: the body must be a string, a Buffer or an iterable of chunks ' +
        '(use AsyncSession for a Readable)');
    }
    const it = source[Symbol.iterator]();
    let rest = null;
    let failure = null;
    const read = koffi.register((_user, buf, cap) => {
      try {
        while (!rest || rest.length === 0) {
          const { value, done } = it.next();
          if (done) return 0;
          rest = toBuffer(value);
        }
        const n = Math.min(Number(cap), rest.length);
        new Uint8Array(koffi.view(buf, n)).set(rest.subarray(0, n));
        rest = rest.subarray(n);
        return n;
      } catch (error) {
        failure = error;
        return -1;
      }
    }, koffi.pointer(ReadFn));
    try {
      return this._command(call, [from, to.length ? to : null, to.length, read, null, size], undefined, post);
    } catch (e) {
      if (failure && e instanceof CallbackError) throw failure;
      throw e;
    } finally {
      koffi.unregister(read);
    }
  }
}

if (typeof Symbol.dispose === 'symbol') {
  Session.prototype[Symbol.dispose] = Session.prototype.close;
}

// ---- asynchronous --------------------------------------------------------------

/**
 * One SMTP connection handle whose commands return Promises and run on a
 * worker thread. Calls on one session are queued and run one at a time;
 * settings and queries are synchronous and throw BusyError while a call
 * is in flight (await it first). Every command takes a last `opts`
 * argument: { signal } cancels it through smtp_session_cancel.
 */
class AsyncSession extends Core {
  constructor(options = {}) {
    super(options);
    this._tail = Promise.resolve();
  }

  /** Creates a session and connects (implicit TLS with options.tls). */
  static async open(host, port, options = {}) {
    const s = new AsyncSession(options);
    try {
      if (options.tls) await s.connectTLS(host, port ?? 465, options);
      else await s.connect(host, port ?? 25, options);
    } catch (e) {
      s.close();
      throw e;
    }
    return s;
  }

  _then(value, fn, onError) {
    return Promise.resolve(value).then(fn, onError);
  }

  // Runs fn(handle, ...args) on koffi's worker thread once the calls queued
  // before it are done; post(rc, cause) runs before the next one starts.
  _run(fn, call, args, opts, post, around = null) {
    const signal = opts && opts.signal;
    const run = () => new Promise((resolve, reject) => {
      if (signal && signal.aborted) {
        reject(new AbortError(call, signal.reason));
        return;
      }
      const start = (retry) => {
        const stale = this._begin();
        const onAbort = () => this.cancel();
        if (signal) signal.addEventListener('abort', onAbort, { once: true });
        let job = null;
        try {
          job = around ? around() : null;
        } catch (e) {
          this._end(0);
          reject(e);
          return;
        }
        const callArgs = typeof args === 'function' ? args(job) : args;
        fn.async(this._h, ...callArgs, (err, rc) => {
          if (signal) signal.removeEventListener('abort', onAbort);
          const cancelled = this._end(rc);
          Promise.resolve(job && job.finish(rc)).then(() => {
            if (err) throw err;
            if (rc === codes.E_CANCELLED && stale && !cancelled && !retry) {
              start(true); // the late cancel of an earlier call: it did nothing, run again
              return undefined;
            }
            if (rc === codes.E_CANCELLED && signal && signal.aborted) {
              this._rethrowTrace();
              throw new AbortError(call, signal.reason);
            }
            this._inSlot = true;
            try {
              resolve(post(rc, job && job.cause ? job.cause() : undefined));
            } finally {
              this._inSlot = false;
            }
            return undefined;
          }).catch(reject);
        });
      };
      start(false);
    });
    this._pending++;
    const settle = () => {
      this._pending--;
    };
    const p = this._tail.then(run, run);
    p.then(settle, settle);
    this._tail = p.then(() => undefined, () => undefined);
    return p;
  }

  // A Readable or async iterable body: the C library reads it from a
  // socketpair with libc's read(2) on the worker thread (see lib/native.js)
  // while this thread writes the stream into the other end with
  // backpressure, so memory stays constant. If the stream fails, a byte
  // is left unread in our end before closing it: the library's next read
  // fails (ECONNRESET), so the connection is closed before the end of data
  // and nothing partial is delivered.
  _sendStream(from, to, source, size, opts, post = (r) => r) {
    const call = 'smtp_session_sendmail_cb';
    if (!isStreamBody(source)) {
      throw new TypeError('sendmail: the body must be a string, a Buffer, a Readable or an async iterable');
    }
    const buf = Buffer.alloc(REPLY_CAP);
    const finish = (rc, cause) => {
      this._rethrowTrace();
      this._check(call, rc, cause);
      return post({ code: rc, text: bufString(buf) });
    };
    // A whole file (fs.createReadStream(path)): the library reads the file
    // itself, no JavaScript and no garbage per chunk.
    if (source instanceof fs.ReadStream && typeof source.path === 'string'
        && !source.start && source.end === Infinity && source.bytesRead === 0) {
      const file = source.path;
      source.destroy();
      const openFile = () => {
        const fd = fs.openSync(file, 'r');
        return { fd, finish: () => fs.closeSync(fd), cause: () => undefined };
      };
      return this._run(C.sendmail_fd, call,
        (job) => [from, to.length ? to : null, to.length, libcRead, job.fd, size, buf, REPLY_CAP], opts, finish, openFile);
    }
    const iterable = typeof source[Symbol.asyncIterator] === 'function' ? source : Readable.from(source);
    let sock = null;
    let rfd = -1;
    let failure = null;
    let pump = null;
    const around = () => {
      const sv = [0, 0];
      // AF_UNIX = 1, SOCK_STREAM = 1, SOCK_CLOEXEC = 0x80000 (Linux)
      if (sys.socketpair(1, 1 | 0x80000, 0, sv) !== 0) throw new Error('socketpair failed');
      [rfd] = sv;
      sock = new net.Socket({ fd: sv[1], readable: false, writable: true });
      sock.on('error', () => {}); // the library closed its end: the send is over
      pump = (async () => {
        try {
          for await (const chunk of iterable) {
            if (sock.destroyed) return;
            if (!sock.write(typeof chunk === 'string' ? Buffer.from(chunk) : chunk)) {
              await new Promise((resolve) => {
                const done = () => {
                  sock.off('drain', done);
                  sock.off('close', done);
                  resolve();
                };
                sock.on('drain', done);
                sock.on('close', done);
              });
            }
          }
          sock.end();
        } catch (error) {
          failure = error;
          sys.write(rfd, Buffer.from([0]), 1);
          sock.destroy();
        }
      })();
      return {
        fd: rfd,
        finish: async () => {
          if (!sock.destroyed) sock.destroy();
          if (typeof iterable.destroy === 'function' && !iterable.destroyed) iterable.destroy();
          await pump;
          sys.close(rfd);
        },
        cause: () => failure || undefined,
      };
    };
    return this._run(C.sendmail_fd, call,
      (job) => [from, to.length ? to : null, to.length, libcRead, job.fd, size, buf, REPLY_CAP],
      opts, (rc, cause) => {
        if (rc === codes.E_CALLBACK && failure) {
          failure.outcome = OUTCOMES[C.smtp_session_outcome(this._h)];
          throw failure;
        }
        return finish(rc, cause);
      }, around);
  }
}

if (typeof Symbol.asyncDispose === 'symbol') {
  AsyncSession.prototype[Symbol.asyncDispose] = async function asyncDispose() {
    await this._tail;
    this.close();
  };
}
if (typeof Symbol.dispose === 'symbol') {
  AsyncSession.prototype[Symbol.dispose] = AsyncSession.prototype.close;
}

module.exports = {
  Session,
  AsyncSession,
  Message,
  strerror,
  version,
  codes,
  OUTCOMES,
  MAX_REPLY_BYTES,
  missingFunctions: Object.freeze([...missing]),
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
  CancelledError,
  BusyError,
  AbortError,
  MessageRefusedError,
};
