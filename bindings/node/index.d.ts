// Types of the libsmtpc Node.js binding (index.js).

export interface Reply {
  code: number;
  text: string;
}

export interface SessionOptions {
  timeoutMs?: number;
  debuglevel?: number;
  caFile?: string | null;
  tlsVerify?: boolean;
  localHostname?: string | null;
  trace?: (line: string) => void;
}

export interface OpenOptions extends SessionOptions {
  tls?: boolean;
}

export class Session {
  constructor(options?: SessionOptions);
  static open(host: string, port?: number, options?: OpenOptions): Session;
  static open<T>(host: string, port: number | undefined, options: OpenOptions, fn: (s: Session) => T): T;
  static open<T>(host: string, port: number | undefined, fn: (s: Session) => T): T;
  readonly closed: boolean;
  greeting: Reply | null;
  close(): void;
  setTimeoutMs(ms: number): void;
  setDebuglevel(level: number): void;
  setTrace(fn: ((line: string) => void) | null): void;
  setTLSVerify(on: boolean): void;
  setCAFile(path: string | null): void;
  setLocalHostname(name: string | null): void;
  setPipelining(on: boolean): void;
  connect(host: string, port?: number): Reply;
  connectTLS(host: string, port?: number): Reply;
  helo(name?: string | null): Reply;
  ehlo(name?: string | null): Reply;
  hasExtn(name: string): boolean;
  extnParams(name: string): string;
  starttls(): Reply;
  login(user: string, password: string): Reply;
  sendmail(from: string, to: string | string[], msg: string | Uint8Array): Reply;
  recipients(): Reply[];
  failedStep(): number;
  vrfy(address: string): Reply;
  expn(list: string): Reply;
  help(topic?: string | null): Reply;
  noop(): Reply;
  rset(): Reply;
  quit(): Reply;
  disconnect(): void;
  docmd(cmd: string, args?: string | null): Reply;
  lastCode(): number;
  lastReply(): string;
  lastError(): string;
}

export function strerror(code: number): string;
export function version(): string;
export const MAX_REPLY_BYTES: number;
export const codes: Readonly<Record<
  | 'E_NULL' | 'E_INVALID' | 'E_STATE' | 'E_RESOLVE' | 'E_CONNECT' | 'E_TIMEOUT' | 'E_IO' | 'E_CLOSED'
  | 'E_TLS' | 'E_TLS_VERIFY' | 'E_PROTOCOL' | 'E_NOT_SUPPORTED' | 'E_AUTH_MECH' | 'E_TOO_LARGE'
  | 'E_INSECURE' | 'E_PANIC' | 'E_CALLBACK'
  | 'STEP_NONE' | 'STEP_MAIL' | 'STEP_RCPT' | 'STEP_DATA' | 'STEP_MESSAGE' | 'STEP_HELO', number>>;

export class SmtpcError extends Error {
  readonly code: number;
  readonly call: string | undefined;
  readonly detail: string;
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
