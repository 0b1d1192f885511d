# frozen_string_literal: true

# Run through bindings/ruby/test.sh, which starts the aiosmtpd servers and
# sets the SMTPC_TEST_* variables (see bindings/testlib.sh).

require 'minitest/autorun'
require 'json'
require 'securerandom'
require 'smtpc' # the installed gem (test.sh sets GEM_PATH)

class TestSmtpc < Minitest::Test
  def env(name)
    value = ENV.fetch(name, '')
    flunk "#{name} is not set: run bindings/ruby/test.sh" if value.empty?
    value
  end

  def host = env('SMTPC_TEST_HOST')
  def port = Integer(env('SMTPC_TEST_PORT'))
  def tls_port = Integer(env('SMTPC_TEST_TLS_PORT'))
  def user = env('SMTPC_TEST_USER')
  def pass = env('SMTPC_TEST_PASS')

  def token
    "rb-#{SecureRandom.hex(8)}"
  end

  def mail_text(tok, to)
    "From: Sender <sender@example.com>\n" \
      "To: #{to}\n" \
      "Subject: Ruby binding test #{tok}\n" \
      "\n" \
      "Hello from Ruby, #{tok}.\n" \
      ".a line that starts with a dot\n" \
      "last line\n"
  end

  # [eml bytes, parsed json] of the captured message containing tok.
  def captured(dir, tok)
    Dir.glob(File.join(dir, '*.json')).each do |meta|
      eml = File.binread(meta.sub(/\.json\z/, '.eml'))
      return [eml, JSON.parse(File.read(meta))] if eml.include?(tok)
    end
    flunk "no message captured in #{dir} contains #{tok}"
  end

  def test_version
    assert_match(/\A\d+\.\d+\.\d+/, Smtpc.version)
    refute_empty Smtpc.strerror(-10)
  end

  def test_starttls_login_sendmail
    lines = []
    Smtpc::Session.open(host, port, timeout_ms: 10_000, debuglevel: 1, ca_file: env('SMTPC_TEST_CA'),
                                    trace: ->(line) { lines << line }) do |s|
      assert_equal 220, s.greeting.code
      code, text = s.ehlo
      assert_equal 250, code
      refute_empty text
      assert s.has_extn?('starttls')
      refute s.has_extn?('AUTH') # only after TLS on this server
      assert_equal '33554432', s.extn_params('SIZE')
      assert_raises(Smtpc::NotSupportedError) { s.extn_params('X-NOT-OFFERED') }
      assert_equal 220, s.starttls.code
      assert_equal 250, s.ehlo.code
      assert s.has_extn?('auth')
      assert_equal 235, s.login(user, pass).code

      tok = token
      msg = mail_text(tok, 'a@example.com, b@example.com')
      r = s.sendmail('sender@example.com', ['a@example.com', env('SMTPC_TEST_REJECT'), 'b@example.com'], msg)
      assert_equal 250, r.code
      assert_equal Smtpc::STEP_NONE, s.failed_step
      rcpts = s.recipients
      assert_equal [250, 550, 250], rcpts.map(&:code)
      assert_includes rcpts[1].text, 'rejected'

      eml, meta = captured(env('SMTPC_TEST_CAPTURE'), tok)
      assert_equal msg.gsub("\n", "\r\n").b, eml
      assert_equal 'sender@example.com', meta['mail_from']
      assert_equal %w[a@example.com b@example.com], meta['rcpt_tos']

      assert_equal 250, s.vrfy(env('SMTPC_TEST_KNOWN')).code
      assert_equal 550, s.vrfy('nobody@example.com').code
      assert_equal 250, s.noop.code
      assert_equal 221, s.quit.code
      assert_equal 221, s.last_code
    end
    assert(lines.any? { |l| l.start_with?("send: 'ehlo ") }, lines.inspect)
    assert(lines.none? { |l| l.include?(pass) }, 'the password appears in the trace')
  end

  def test_open_closes_the_session
    kept = nil
    Smtpc::Session.open(host, port) do |s|
      kept = s
      refute s.closed?
    end
    assert kept.closed?
    assert_raises(Smtpc::NullPointerError) { kept.noop }
    kept.close # twice is harmless
  end

  def test_trace_redacts_auth
    lines = []
    wrong = "Wr0ng-#{pass}"
    s = Smtpc::Session.new(debuglevel: 1, ca_file: env('SMTPC_TEST_CA'))
    s.trace { |line| lines << line }
    begin
      assert_equal 220, s.connect(host, port).code
      assert_equal 220, s.starttls.code
      assert_equal 250, s.ehlo.code
      # The library tries CRAM-MD5 first; a wrong password makes it go on to
      # PLAIN (and LOGIN), all refused.
      assert_equal 535, s.login(user, wrong).code
      assert_includes lines, "send: 'AUTH PLAIN <redacted>\\r\\n'"
      assert_equal 235, s.login(user, pass).code
      assert_equal 221, s.quit.code
    ensure
      s.close
    end
    assert(lines.any? { |l| l.start_with?("send: 'ehlo ") }, lines.inspect)
    assert(lines.none? { |l| l.include?(pass) }, 'the password appears in the trace')
  end

  def test_implicit_tls
    Smtpc::Session.open(host, tls_port, tls: true, ca_file: env('SMTPC_TEST_CA')) do |s|
      assert_equal 220, s.greeting.code
      assert_equal 250, s.ehlo('client.example').code
      refute s.has_extn?('STARTTLS')
      assert_equal 235, s.login(user, pass).code
      tok = token
      msg = mail_text(tok, 'c@example.com')
      assert_equal 250, s.sendmail('<sender@example.com>', ['c@example.com', 'Dee <d@example.com>'], msg).code
      assert_equal [250, 250], s.recipients.map(&:code)
      eml, meta = captured(env('SMTPC_TEST_TLS_CAPTURE'), tok)
      assert_equal msg.gsub("\n", "\r\n").b, eml
      assert_equal %w[c@example.com d@example.com], meta['rcpt_tos']
      assert_equal 221, s.quit.code
    end
  end

  def assert_verify_error(err)
    assert_equal(-10, err.code)
    assert_kind_of Smtpc::TLSError, err
    assert_kind_of Smtpc::Error, err
    assert_includes err.detail, 'certificate verify failed'
    assert_includes err.message, 'certificate verify failed'
    assert_includes err.message, Smtpc.strerror(-10)
  end

  def test_starttls_verify_failure
    Smtpc::Session.open(host, port, ca_file: env('SMTPC_TEST_OTHER_CA')) do |s|
      assert_equal 250, s.ehlo.code
      assert_verify_error(assert_raises(Smtpc::TLSVerifyError) { s.starttls })
    end
  end

  def test_implicit_tls_verify_failure
    err = assert_raises(Smtpc::TLSVerifyError) do
      Smtpc::Session.open(host, tls_port, tls: true, ca_file: env('SMTPC_TEST_OTHER_CA')) { flunk 'connected' }
    end
    assert_verify_error(err)
  end

  def test_invalid_arguments
    s = Smtpc::Session.new
    assert_raises(Smtpc::StateError) { s.noop }
    assert_equal 220, s.connect(host, port).code
    err = assert_raises(Smtpc::InvalidArgumentError) do
      s.sendmail('sender@example.com', ["bad\r\nRSET@example.com"], "Subject: x\n\nx\n")
    end
    assert_equal(-2, err.code)
    assert_raises(Smtpc::InvalidArgumentError) { s.vrfy("a\0b") }
    assert_equal 250, s.noop.code
    assert_equal 221, s.quit.code
  ensure
    s&.close
  end

  def test_trace_exception_is_raised_after_the_call
    s = Smtpc::Session.new(debuglevel: 1)
    s.trace { |_line| raise ArgumentError, 'from the trace block' }
    err = assert_raises(ArgumentError) { s.connect(host, port) }
    assert_equal 'from the trace block', err.message
    n = 0
    s.trace { |_line| n += 1 }
    assert_equal 221, s.quit.code
    assert_operator n, :>, 0
  ensure
    s&.close
  end
end
