'use strict';
// Run through bindings/node/test.sh, which starts the aiosmtpd servers and
// sets the SMTPC_TEST_* variables (see bindings/testlib.sh).

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const smtpc = require(process.env.SMTPC_NODE_PACKAGE || 'libsmtpc');

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run bindings/node/test.sh`);
  return v;
}
const host = () => env('SMTPC_TEST_HOST');
const port = () => Number(env('SMTPC_TEST_PORT'));
const tlsPort = () => Number(env('SMTPC_TEST_TLS_PORT'));
const user = () => env('SMTPC_TEST_USER');
const pass = () => env('SMTPC_TEST_PASS');

const token = () => `js-${crypto.randomBytes(8).toString('hex')}`;

function mailText(tok, to) {
  return 'From: Sender <sender@example.com>\n' +
    `To: ${to}\n` +
    `Subject: Node binding test ${tok}\n` +
    '\n' +
    `Hello from Node, ${tok}.\n` +
    '.a line that starts with a dot\n' +
    'last line\n';
}

/** {eml: Buffer, meta} of the captured message containing tok. */
function captured(dir, tok) {
  for (const name of fs.readdirSync(dir)) {
    if (!name.endsWith('.json')) continue;
    const eml = fs.readFileSync(path.join(dir, name.replace(/\.json$/, '.eml')));
    if (eml.includes(tok)) {
      return { eml, meta: JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')) };
    }
  }
  throw new Error(`no message captured in ${dir} contains ${tok}`);
}

test('version and strerror', () => {
  assert.match(smtpc.version(), /^\d+\.\d+\.\d+/);
  assert.ok(smtpc.strerror(smtpc.codes.E_TLS_VERIFY).length > 0);
});

test('STARTTLS, login, sendmail to several recipients, vrfy, quit', () => {
  const lines = [];
  const opts = { timeoutMs: 10000, debuglevel: 1, caFile: env('SMTPC_TEST_CA'), trace: (l) => lines.push(l) };
  smtpc.Session.open(host(), port(), opts, (s) => {
    assert.equal(s.greeting.code, 220);
    const r = s.ehlo();
    assert.equal(r.code, 250);
    assert.ok(r.text.length > 0);
    assert.ok(s.hasExtn('starttls'));
    assert.ok(!s.hasExtn('AUTH')); // only after TLS on this server
    assert.equal(s.extnParams('SIZE'), '33554432');
    assert.throws(() => s.extnParams('X-NOT-OFFERED'), smtpc.NotSupportedError);
    assert.equal(s.starttls().code, 220);
    assert.equal(s.ehlo().code, 250);
    assert.ok(s.hasExtn('auth'));
    assert.equal(s.login(user(), pass()).code, 235);

    const tok = token();
    const msg = mailText(tok, 'a@example.com, b@example.com');
    const sent = s.sendmail('sender@example.com', ['a@example.com', env('SMTPC_TEST_REJECT'), 'b@example.com'], msg);
    assert.equal(sent.code, 250);
    assert.equal(s.failedStep(), smtpc.codes.STEP_NONE);
    const rcpts = s.recipients();
    assert.deepEqual(rcpts.map((x) => x.code), [250, 550, 250]);
    assert.match(rcpts[1].text, /rejected/);

    const { eml, meta } = captured(env('SMTPC_TEST_CAPTURE'), tok);
    assert.deepEqual(eml, Buffer.from(msg.replace(/\n/g, '\r\n')));
    assert.equal(meta.mail_from, 'sender@example.com');
    assert.deepEqual(meta.rcpt_tos, ['a@example.com', 'b@example.com']);

    assert.equal(s.vrfy(env('SMTPC_TEST_KNOWN')).code, 250);
    assert.equal(s.vrfy('nobody@example.com').code, 550);
    assert.equal(s.noop().code, 250);
    assert.equal(s.quit().code, 221);
    assert.equal(s.lastCode(), 221);
  });
  assert.ok(lines.some((l) => l.startsWith("send: 'ehlo ")), JSON.stringify(lines));
  assert.ok(!lines.some((l) => l.includes(pass())), 'the password appears in the trace');
});

test('open() closes the session', () => {
  let kept = null;
  const result = smtpc.Session.open(host(), port(), (s) => {
    kept = s;
    assert.ok(!s.closed);
    return 42;
  });
  assert.equal(result, 42);
  assert.ok(kept.closed);
  assert.throws(() => kept.noop(), smtpc.NullPointerError);
  kept.close(); // twice is harmless
});

test('the trace shows AUTH PLAIN <redacted>, never the password', () => {
  const lines = [];
  const s = new smtpc.Session({ debuglevel: 1, caFile: env('SMTPC_TEST_CA') });
  s.setTrace((l) => lines.push(l));
  try {
    assert.equal(s.connect(host(), port()).code, 220);
    assert.equal(s.starttls().code, 220);
    assert.equal(s.ehlo().code, 250);
    // The library tries CRAM-MD5 first; a wrong password makes it go on to
    // PLAIN (and LOGIN), all refused.
    assert.equal(s.login(user(), `Wr0ng-${pass()}`).code, 535);
    assert.ok(lines.includes("send: 'AUTH PLAIN <redacted>\\r\\n'"), JSON.stringify(lines));
    assert.equal(s.login(user(), pass()).code, 235);
    assert.equal(s.quit().code, 221);
  } finally {
    s.close();
  }
  assert.ok(lines.some((l) => l.startsWith("send: 'ehlo ")));
  assert.ok(!lines.some((l) => l.includes(pass())), 'the password appears in the trace');
});

test('implicit TLS', () => {
  smtpc.Session.open(host(), tlsPort(), { tls: true, caFile: env('SMTPC_TEST_CA') }, (s) => {
    assert.equal(s.greeting.code, 220);
    assert.equal(s.ehlo('client.example').code, 250);
    assert.ok(!s.hasExtn('STARTTLS'));
    assert.equal(s.login(user(), pass()).code, 235);
    const tok = token();
    const msg = mailText(tok, 'c@example.com');
    const sent = s.sendmail('<sender@example.com>', ['c@example.com', 'Dee <d@example.com>'], Buffer.from(msg));
    assert.equal(sent.code, 250);
    assert.deepEqual(s.recipients().map((x) => x.code), [250, 250]);
    const { eml, meta } = captured(env('SMTPC_TEST_TLS_CAPTURE'), tok);
    assert.deepEqual(eml, Buffer.from(msg.replace(/\n/g, '\r\n')));
    assert.deepEqual(meta.rcpt_tos, ['c@example.com', 'd@example.com']);
    assert.equal(s.quit().code, 221);
  });
});

function isVerifyError(e) {
  assert.ok(e instanceof smtpc.TLSVerifyError);
  assert.ok(e instanceof smtpc.TLSError);
  assert.ok(e instanceof smtpc.SmtpcError);
  assert.equal(e.code, smtpc.codes.E_TLS_VERIFY);
  assert.match(e.detail, /certificate verify failed/);
  assert.match(e.message, /certificate verify failed/);
  assert.ok(e.message.includes(smtpc.strerror(-10)));
  return true;
}

test('STARTTLS against an untrusted certificate throws TLSVerifyError', () => {
  smtpc.Session.open(host(), port(), { caFile: env('SMTPC_TEST_OTHER_CA') }, (s) => {
    assert.equal(s.ehlo().code, 250);
    assert.throws(() => s.starttls(), isVerifyError);
  });
});

test('implicit TLS against an untrusted certificate throws TLSVerifyError', () => {
  assert.throws(
    () => smtpc.Session.open(host(), tlsPort(), { tls: true, caFile: env('SMTPC_TEST_OTHER_CA') }, () => assert.fail('connected')),
    isVerifyError,
  );
});

test('invalid arguments throw InvalidArgumentError', () => {
  const s = new smtpc.Session();
  try {
    assert.throws(() => s.noop(), smtpc.StateError);
    assert.equal(s.connect(host(), port()).code, 220);
    assert.throws(() => s.sendmail('sender@example.com', ['bad\r\nRSET@example.com'], 'Subject: x\n\nx\n'),
      (e) => e instanceof smtpc.InvalidArgumentError && e.code === -2);
    assert.throws(() => s.vrfy('a\0b'), smtpc.InvalidArgumentError);
    assert.equal(s.noop().code, 250);
    assert.equal(s.quit().code, 221);
  } finally {
    s.close();
  }
});

test('an exception in the trace function is rethrown after the call', () => {
  const s = new smtpc.Session({ debuglevel: 1 });
  try {
    s.setTrace(() => { throw new RangeError('from the trace function'); });
    assert.throws(() => s.connect(host(), port()), { name: 'RangeError', message: 'from the trace function' });
    let n = 0;
    s.setTrace(() => { n++; });
    assert.equal(s.quit().code, 221);
    assert.ok(n > 0);
    s.setTrace(null);
  } finally {
    s.close();
  }
});
