// Types of the libsmtpc Node.js binding (index.js). Checked against the
// runtime by the tests (test/async.test.js) and with `tsc --strict`
// (test/types.ts) on the packed package.

/// <reference types="node" />
import type { Readable } from 'node:stream';

/** A server's answer: its code (>= 100) and text (lines joined by '\n'). */
export interface Reply {
  code: number;
  text: string;
}

/** The server's answer to one recipient. */
export interface RcptReply extends Reply {
  /** The enhanced status code ('5.1.1'), '' when none. */
  enhanced: string;
}

/** Where a message stands after a send. */
export type Outcome = 'none' | 'accepted' | 'refused' | 'not_sent' | 'unknown';

export type TLSPolicy = 'manual' | 'opportunistic' | 'required' | 'implicit';

export interface SessionOptions {
  timeoutMs?: number;
  bodyTimeoutMs?: number;
  debuglevel?: number;
  caFile?: string | null;
  tlsVerify?: boolean;
  tlsPolicy?: TLSPolicy;
  localHostname?: string | null;
  trace?: (line: string) => void;
}

export interface OpenOptions extends SessionOptions {
  tls?: boolean;
}

/** The last argument of every AsyncSession command. */
export interface CallOptions {
  /** Aborting it cancels the call (smtp_session_cancel): AbortError. */
  signal?: AbortSignal;
}

export interface SendOptions extends CallOptions {
  /** The body's size when known, announced as SIZE=. */
  size?: number;
}

/** A body: bytes, or chunks streamed in constant memory. */
export type AsyncBody = string | Uint8Array | Readable | AsyncIterable<string | Uint8Array>;
export type SyncBody = string | Uint8Array | Iterable<string | Uint8Array>;

export interface DSNOptions {
  ret?: 'FULL' | 'HDRS' | null;
  envid?: string | null;
  notify?: string | string[] | null;
  orcpt?: boolean;
}

/** nodemailer-style mail options (sendMail). */
export interface MailOptions extends SendOptions {
  from: string;
  to?: string | string[];
  cc?: string | string[];
  bcc?: string | string[];
  /** The RFC 5322 message. */
  raw?: AsyncBody;
  message?: AsyncBody;
}

/** Session.sendMail's options: bodies from bytes or a synchronous iterable. */
export type SyncMailOptions = Omit<MailOptions, 'raw' | 'message' | 'signal'> & { raw?: SyncBody; message?: SyncBody };

/** nodemailer-style result (sendMail). */
export interface SentMessageInfo {
  accepted: string[];
  rejected: string[];
  rejectedErrors: string[];
  response: string;
  code: number;
  text: string;
  outcome: Outcome;
  failedStep: number;
  recipients: RcptReply[];
  envelope: { from: string; to: string[] };
  messageTime: number;
}

/** One message of a batch. */
export type BatchMessage =
  | { from: string; to: string | string[]; raw?: string | Uint8Array; message?: string | Uint8Array }
  | [from: string, to: string | string[], body: string | Uint8Array];

export interface BatchResult {
  code: number;
  text: string;
  outcome: Outcome;
  failedStep: number;
  recipients: Reply[];
  accepted: string[];
  rejected: string[];
}

export interface SendMessageOptions extends CallOptions {
  from?: string | null;
  to?: string | string[];
}

/** An RFC 5322 message built by the library (smtp_message). */
export class Message {
  constructor();
  close(): void;
  setFrom(address: string, name?: string | null): this;
  setSender(address: string, name?: string | null): this;
  addTo(address: string, name?: string | null): this;
  addCc(address: string, name?: string | null): this;
  addBcc(address: string, name?: string | null): this;
  addReplyTo(address: string, name?: string | null): this;
  setSubject(subject: string): this;
  addHeader(name: string, value: string): this;
  setText(text: string | Uint8Array): this;
  setHtml(html: string | Uint8Array): this;
  setRaw(bytes: string | Uint8Array): this;
  attach(data: string | Uint8Array, filename: string, contentType?: string | null): this;
  attachFile(path: string, contentType?: string | null, filename?: string | null): this;
  addInline(data: string | Uint8Array, contentId: string, contentType?: string | null): this;
  addInlineFile(path: string, contentId: string, contentType?: string | null): this;
  setDKIM(domain: string | null, selector?: string | null, keyPem?: string | null, headers?: string | null): this;
  render(): Buffer;
  lastError(): string;
  [Symbol.dispose](): void;
}

/** One SMTP connection handle, synchronous calls (they block the event loop). */
export class Session {
  constructor(options?: SessionOptions);
  static open(host: string, port?: number, options?: OpenOptions): Session;
  static open<T>(host: string, port: number | undefined, options: OpenOptions, fn: (s: Session) => T): T;
  static open<T>(host: string, port: number | undefined, fn: (s: Session) => T): T;
  readonly closed: boolean;
  greeting: Reply | null;
  close(): void;
  cancel(): void;
  setTimeoutMs(ms: number): void;
  setBodyTimeoutMs(ms: number): void;
  setDebuglevel(level: number): void;
  setTrace(fn: ((line: string) => void) | null): void;
  setTLSVerify(on: boolean): void;
  setTLSPolicy(policy: TLSPolicy): void;
  setAllowInsecureAuth(on: boolean): void;
  setCAFile(path: string | null): void;
  setCADir(path: string | null): void;
  setClientCert(certPath: string | null, keyPath?: string | null): void;
  setTLSMinVersion(version: number): void;
  setTLSServerName(name: string | null): void;
  setLocalHostname(name: string | null): void;
  setSourceAddress(address: string | null, port?: number): void;
  setPipelining(on: boolean): void;
  setChunking(on: boolean): void;
  setBinaryMime(on: boolean): void;
  setDSN(options?: DSNOptions): void;
  setMailOptions(opts: string[]): void;
  setRcptOptions(opts: string[]): void;
  connect(host: string, port?: number): Reply;
  connectTLS(host: string, port?: number): Reply;
  helo(name?: string | null): Reply;
  ehlo(name?: string | null): Reply;
  lhlo(name?: string | null): Reply;
  starttls(): Reply;
  login(user: string, password: string): Reply;
  auth(mechanism: string, user: string, secret: string): Reply;
  authCallback(mechanism: string, fn: (challenge: Buffer | null) => string | Uint8Array | null): Reply;
  setInitialResponse(on: boolean): void;
  sendmail(from: string, to: string | string[], msg: SyncBody, opts?: { size?: number }): Reply;
  sendMail(mail: SyncMailOptions): SentMessageInfo;
  sendMessage(message: Message | string | Uint8Array, opts?: SendMessageOptions): Reply;
  mail(from: string, params?: string[]): Reply;
  rcpt(to: string, params?: string[]): Reply;
  data(msg: string | Uint8Array): Reply;
  putcmd(cmd: string, args?: string | null): void;
  getreply(): Reply;
  recipients(): RcptReply[];
  rcptDataReplies(): Reply[];
  failedStep(): number;
  outcome(): Outcome;
  vrfy(address: string): Reply;
  expn(list: string): Reply;
  help(topic?: string | null): Reply;
  noop(): Reply;
  rset(): Reply;
  quit(): Reply;
  disconnect(): void;
  docmd(cmd: string, args?: string | null): Reply;
  sendBatch(messages: Iterable<BatchMessage>): BatchResult[];
  batchAdd(from: string, to: string | string[], msg: string | Uint8Array): void;
  batchSend(): BatchResult[];
  batchResults(addresses?: string[][]): BatchResult[];
  batchClear(): void;
  hasExtn(name: string): boolean;
  extnParams(name: string): string;
  extensions(): Record<string, string>;
  isConnected(): boolean;
  isTLS(): boolean;
  waits(): number;
  lastCode(): number;
  lastReply(): string;
  lastEnhanced(): string;
  lastError(): string;
  [Symbol.dispose](): void;
}

/**
 * One SMTP connection handle whose commands return Promises and run off
 * the event loop. Calls are queued and run one at a time; settings and
 * queries are synchronous and throw BusyError while a call is in flight.
 */
export class AsyncSession {
  constructor(options?: SessionOptions);
  static open(host: string, port?: number, options?: OpenOptions & CallOptions): Promise<AsyncSession>;
  readonly closed: boolean;
  greeting: Reply | null;
  close(): void;
  cancel(): void;
  setTimeoutMs(ms: number): void;
  setBodyTimeoutMs(ms: number): void;
  setDebuglevel(level: number): void;
  setTrace(fn: ((line: string) => void) | null): void;
  setTLSVerify(on: boolean): void;
  setTLSPolicy(policy: TLSPolicy): void;
  setAllowInsecureAuth(on: boolean): void;
  setCAFile(path: string | null): void;
  setCADir(path: string | null): void;
  setClientCert(certPath: string | null, keyPath?: string | null): void;
  setTLSMinVersion(version: number): void;
  setTLSServerName(name: string | null): void;
  setLocalHostname(name: string | null): void;
  setSourceAddress(address: string | null, port?: number): void;
  setPipelining(on: boolean): void;
  setChunking(on: boolean): void;
  setBinaryMime(on: boolean): void;
  setDSN(options?: DSNOptions): void;
  setMailOptions(opts: string[]): void;
  setRcptOptions(opts: string[]): void;
  connect(host: string, port?: number, opts?: CallOptions): Promise<Reply>;
  connectTLS(host: string, port?: number, opts?: CallOptions): Promise<Reply>;
  helo(name?: string | null, opts?: CallOptions): Promise<Reply>;
  ehlo(name?: string | null, opts?: CallOptions): Promise<Reply>;
  lhlo(name?: string | null, opts?: CallOptions): Promise<Reply>;
  starttls(opts?: CallOptions): Promise<Reply>;
  login(user: string, password: string, opts?: CallOptions): Promise<Reply>;
  auth(mechanism: string, user: string, secret: string, opts?: CallOptions): Promise<Reply>;
  authCallback(mechanism: string, fn: (challenge: Buffer | null) => string | Uint8Array | null, opts?: CallOptions): Promise<Reply>;
  setInitialResponse(on: boolean): void;
  sendmail(from: string, to: string | string[], msg: AsyncBody, opts?: SendOptions): Promise<Reply>;
  sendMail(mail: MailOptions): Promise<SentMessageInfo>;
  sendMessage(message: Message | string | Uint8Array, opts?: SendMessageOptions): Promise<Reply>;
  mail(from: string, params?: string[], opts?: CallOptions): Promise<Reply>;
  rcpt(to: string, params?: string[], opts?: CallOptions): Promise<Reply>;
  data(msg: string | Uint8Array, opts?: CallOptions): Promise<Reply>;
  putcmd(cmd: string, args?: string | null): void;
  getreply(opts?: CallOptions): Promise<Reply>;
  recipients(): RcptReply[];
  rcptDataReplies(): Reply[];
  failedStep(): number;
  outcome(): Outcome;
  vrfy(address: string, opts?: CallOptions): Promise<Reply>;
  expn(list: string, opts?: CallOptions): Promise<Reply>;
  help(topic?: string | null, opts?: CallOptions): Promise<Reply>;
  noop(opts?: CallOptions): Promise<Reply>;
  rset(opts?: CallOptions): Promise<Reply>;
  quit(opts?: CallOptions): Promise<Reply>;
  disconnect(): void;
  docmd(cmd: string, args?: string | null, opts?: CallOptions): Promise<Reply>;
  sendBatch(messages: Iterable<BatchMessage>, opts?: CallOptions): Promise<BatchResult[]>;
  batchAdd(from: string, to: string | string[], msg: string | Uint8Array): void;
  batchSend(opts?: CallOptions): Promise<BatchResult[]>;
  batchResults(addresses?: string[][]): BatchResult[];
  batchClear(): void;
  hasExtn(name: string): boolean;
  extnParams(name: string): string;
  extensions(): Record<string, string>;
  isConnected(): boolean;
  isTLS(): boolean;
  waits(): number;
  lastCode(): number;
  lastReply(): string;
  lastEnhanced(): string;
  lastError(): string;
  [Symbol.dispose](): void;
  [Symbol.asyncDispose](): Promise<void>;
}

export function strerror(code: number): string;
export function version(): string;
export const MAX_REPLY_BYTES: number;
/** The names of the functions the loaded library lacks (an older libsmtpc). */
export const missingFunctions: readonly string[];
export const OUTCOMES: readonly Outcome[];
export const codes: Readonly<Record<
  | 'OK'
  | 'E_NULL' | 'E_INVALID' | 'E_STATE' | 'E_RESOLVE' | 'E_CONNECT' | 'E_TIMEOUT' | 'E_IO' | 'E_CLOSED'
  | 'E_TLS' | 'E_TLS_VERIFY' | 'E_PROTOCOL' | 'E_NOT_SUPPORTED' | 'E_AUTH_MECH' | 'E_TOO_LARGE'
  | 'E_INSECURE' | 'E_PANIC' | 'E_CALLBACK' | 'E_CANCELLED' | 'E_BUSY'
  | 'STEP_NONE' | 'STEP_MAIL' | 'STEP_RCPT' | 'STEP_DATA' | 'STEP_MESSAGE' | 'STEP_HELO'
  | 'OUTCOME_NONE' | 'OUTCOME_ACCEPTED' | 'OUTCOME_REFUSED' | 'OUTCOME_NOT_SENT' | 'OUTCOME_UNKNOWN'
  | 'TLS_MANUAL' | 'TLS_OPPORTUNISTIC' | 'TLS_REQUIRED' | 'TLS_IMPLICIT' | 'TLS_1_2' | 'TLS_1_3', number>>;

/** A library failure: code is the SMTPC_E_* value (negative). */
export class SmtpcError extends Error {
  constructor(code: number, call?: string, detail?: string, options?: { cause?: unknown });
  readonly code: number;
  readonly call: string | undefined;
  readonly detail: string;
  /** Batch calls whose connection failed: the results all the same. */
  results?: BatchResult[];
  /** Sends that failed: whether the message may have been delivered. */
  outcome?: Outcome;
}
export class NullPointerError extends SmtpcError {}
export class InvalidArgumentError extends SmtpcError {}
export class StateError extends SmtpcError {}
export class ResolveError extends SmtpcError {}
export class ConnectError extends SmtpcError {}
export class TimeoutError extends SmtpcError {}
export class IOError extends SmtpcError {}
export class ClosedError extends SmtpcError {}
export class TLSError extends SmtpcError {}
export class TLSVerifyError extends TLSError {}
export class ProtocolError extends SmtpcError {}
export class NotSupportedError extends SmtpcError {}
export class AuthMechanismError extends SmtpcError {}
export class TooLargeError extends SmtpcError {}
export class InsecureError extends SmtpcError {}
export class PanicError extends SmtpcError {}
export class CallbackError extends SmtpcError {}
export class CancelledError extends SmtpcError {}
export class BusyError extends SmtpcError {}
/** A call stopped by its AbortSignal; cause is the signal's reason. */
export class AbortError extends CancelledError {
  constructor(call: string, reason?: unknown);
  readonly name: 'AbortError';
}
/** sendMail: the server refused the message. */
export class MessageRefusedError extends Error {
  constructor(result: SentMessageInfo);
  readonly code: 'EENVELOPE' | 'EMESSAGE';
  readonly responseCode: number;
  readonly response: string;
  readonly failedStep: number;
  readonly accepted: string[];
  readonly rejected: string[];
  readonly outcome: Outcome;
}
