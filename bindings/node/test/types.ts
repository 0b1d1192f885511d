// Compiled with `tsc --strict --noEmit` against the packed package's
// index.d.ts (bindings/node/test.sh): the README's uses must type-check.
import * as fs from 'node:fs';
import {
  AsyncSession, Session, Message, AbortError, CancelledError, MessageRefusedError, SmtpcError,
  codes, version, type BatchResult, type Outcome, type Reply, type SentMessageInfo,
} from 'libsmtpc';

async function main(): Promise<void> {
  const v: string = version();
  await using s = await AsyncSession.open('mail.example.com', 587, { timeoutMs: 10_000 });
  await s.ehlo();
  if (s.hasExtn('STARTTLS')) {
    const r: Reply = await s.starttls({ signal: AbortSignal.timeout(5000) });
    void r;
    await s.ehlo();
  }
  const login = await s.login('me', 'secret');
  if (login.code !== 235 && login.code !== 503) throw new Error(login.text);
  const info: SentMessageInfo = await s.sendMail({
    from: 'me@example.com', to: ['you@example.com'], raw: fs.createReadStream('/tmp/mail.eml'),
    signal: new AbortController().signal,
  });
  const accepted: string[] = info.accepted;
  const outcome: Outcome = info.outcome;
  const results: BatchResult[] = await s.sendBatch([
    { from: 'a@example.com', to: 'b@example.com', raw: 'Subject: x\n\nx\n' },
    ['a@example.com', ['c@example.com'], Buffer.from('Subject: y\n\ny\n')],
  ]);
  const m = new Message().setFrom('me@example.com', 'Me').addTo('you@example.com').setSubject('hi').setText('hello');
  await s.sendMessage(m);
  try {
    await s.noop();
  } catch (e) {
    if (e instanceof AbortError || e instanceof CancelledError) console.log(e.code, e.cause);
    else if (e instanceof MessageRefusedError) console.log(e.responseCode, e.rejected);
    else if (e instanceof SmtpcError) console.log(e.detail, e.outcome);
  }
  {
    using sync = new Session({ caFile: null });
    sync.connect('localhost');
    const n: number = sync.lastCode() + codes.E_CANCELLED;
    console.log(v, accepted, outcome, results.length, n, sync.recipients().map((x) => x.enhanced));
  }
}
void main;
