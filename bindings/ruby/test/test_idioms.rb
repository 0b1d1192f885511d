# frozen_string_literal: true

# GVL release, Timeout/Thread#raise through cancel, error classes, IO
# bodies, batches, outcomes, coverage of the header's constants. Figures
# (ticker gaps beside net-smtp's, cancel latency, RSS, batch throughput) are
# printed as "FIGURE ..." lines.

require 'minitest/autorun'
require 'net/smtp'
require 'stringio'
require 'timeout'
require 'smtpc'

class TestIdioms < Minitest::Test
  def env(name)
    value = ENV.fetch(name, '')
    flunk "#{name} is not set: run bindings/ruby/test.sh" if value.empty?
    value
  end

  def figure(text)
    warn "FIGURE ruby #{text}"
  end

  def now = Process.clock_gettime(Process::CLOCK_MONOTONIC)

  def test_constants_match_header
    header = File.read(env('SMTPC_HEADER'))
    codes = header.scan(/^#define SMTPC_(E_[A-Z_]+) (-?\d+)$/)
    assert_operator codes.size, :>=, 19
    codes.each do |name, value|
      assert_equal Integer(value), Smtpc::CODES[name.to_sym], "SMTPC_#{name}"
      assert Smtpc::Error::CLASSES.key?(Integer(value)), "no exception class for SMTPC_#{name}"
    end
    header.scan(/^#define SMTPC_OUTCOME_([A-Z_]+) (\d+)$/).each do |name, value|
      assert_equal name.downcase.to_sym, Smtpc::OUTCOMES[Integer(value)], "SMTPC_OUTCOME_#{name}"
    end
    header.scan(/^#define SMTPC_TLS_([A-Z_]+) (\d+)$/).each do |name, value|
      assert_equal Integer(value), Smtpc::TLS_POLICIES[name.downcase.to_sym], "SMTPC_TLS_#{name}"
    end
    assert_empty Smtpc::C::MISSING, 'functions the loaded library lacks'
  end

  def test_error_classes_fit_ruby_rescue_clauses
    assert_operator Smtpc::TimeoutError, :<, Timeout::Error
    [Smtpc::IOError, Smtpc::ClosedError, Smtpc::ConnectError, Smtpc::ResolveError, Smtpc::TLSVerifyError,
     Smtpc::ProtocolError].each { |c| assert_operator c, :<, ::IOError }
    assert_operator Smtpc::InvalidArgumentError, :<, ArgumentError
    Smtpc::Error::CLASSES.each_value { |c| assert_operator c, :<, Smtpc::Error }
    s = Smtpc::Session.new(timeout_ms: 200)
    err = assert_raises(Timeout::Error) { s.connect('127.0.0.1', Integer(env('SMTPC_TEST_MUTE_PORT'))) }
    assert_kind_of Smtpc::TimeoutError, err
    assert_equal(-6, err.code)
    s.close
  end

  def test_xoauth2_tls_policy_enhanced_codes_dsn
    Smtpc::Session.open(env('SMTPC_TEST_HOST'), Integer(env('SMTPC_TEST_PORT')),
                        ca_file: env('SMTPC_TEST_CA'), tls_policy: :required) do |s|
      assert s.tls?
      assert s.connected?
      assert_equal 235, s.auth('XOAUTH2', env('SMTPC_TEST_USER'), env('SMTPC_TEST_TOKEN')).code
      assert_equal 250, s.sendmail('a@example.com', ['b@example.com', env('SMTPC_TEST_REJECT')], "Subject: x\n\nx\n").code
      assert_equal '5.1.1', s.recipients[1].enhanced
      assert_operator s.waits, :>, 0
      s.dsn(ret: 'HDRS', envid: 'env-1', notify: %w[FAILURE DELAY], orcpt: true)
      assert_raises(Smtpc::NotSupportedError) { s.sendmail('a@example.com', 'b@example.com', "x\n") }
      assert_equal :not_sent, s.outcome
      s.dsn
      s.quit
    end
  end

  def test_outcomes
    Smtpc::Session.open(env('SMTPC_TEST_HOST'), Integer(env('SMTPC_TEST_PORT')), ca_file: env('SMTPC_TEST_CA')) do |s|
      assert_equal :none, s.outcome
      assert_equal 250, s.sendmail('a@example.com', 'b@example.com', "Subject: ok\n\nok\n").code
      assert_equal :accepted, s.outcome
      assert_equal 550, s.sendmail('a@example.com', env('SMTPC_TEST_REJECT'), "Subject: no\n\nno\n").code
      assert_equal :refused, s.outcome
      assert_equal Smtpc::STEP_RCPT, s.failed_step
      broken = Object.new
      def broken.read(_n) = raise(Errno::EIO, 'disk on fire')
      assert_raises(Errno::EIO) { s.sendmail('a@example.com', 'b@example.com', broken) }
      assert_equal :not_sent, s.outcome
    end
    # Unknown: the body went out, the call is cancelled while the slow
    # server sits on its final reply.
    s = Smtpc::Session.new(debuglevel: 1)
    s.trace { |line| Thread.new { sleep 0.1; s.cancel } if line.start_with?('data: (354') }
    s.connect('127.0.0.1', Integer(env('SMTPC_TEST_SLOW_PORT')))
    assert_raises(Smtpc::CancelledError) { s.sendmail('a@example.com', 'b@example.com', "Subject: u\n\nu\n") }
    assert_equal :unknown, s.outcome
  ensure
    s&.close
  end

  def test_timeout_and_thread_raise_cancel_the_call
    mute = Integer(env('SMTPC_TEST_MUTE_PORT'))
    s = Smtpc::Session.new
    t0 = now
    assert_raises(Timeout::Error) { Timeout.timeout(0.3) { s.connect('127.0.0.1', mute) } }
    late = (now - t0 - 0.3) * 1000
    figure format('Timeout.timeout(0.3) fired after %.0f ms (%.1f ms late)', (now - t0) * 1000, late)
    assert_operator late, :<, 100
    refute s.connected?

    caller = Thread.new { Thread.current.report_on_exception = false; s.connect('127.0.0.1', mute) }
    sleep 0.2
    t1 = now
    caller.raise(Interrupt, 'stop')
    assert_raises(Interrupt) { caller.join }
    latency = (now - t1) * 1000
    figure format('Thread#raise latency %.1f ms', latency)
    assert_operator latency, :<, 100

    worker = Thread.new { Thread.current.report_on_exception = false; s.connect('127.0.0.1', mute) }
    sleep 0.2
    t2 = now
    s.cancel
    assert_raises(Smtpc::CancelledError) { worker.join }
    latency = (now - t2) * 1000
    figure format('cancel latency %.1f ms', latency)
    assert_operator latency, :<, 100
    # Still usable afterwards.
    assert_equal 220, s.connect(env('SMTPC_TEST_HOST'), Integer(env('SMTPC_TEST_PORT'))).code
    s.quit
  ensure
    s&.close
  end

  # Longest gap of a 10 ms ticker thread while the block runs.
  def ticker_gap
    worst = 0.0
    running = true
    ticker = Thread.new do
      last = now
      while running
        sleep 0.01
        t = now
        worst = [worst, t - last].max
        last = t
      end
    end
    sleep 0.05
    yield
    running = false
    ticker.join
    worst * 1000
  end

  def test_gvl_gap_beside_net_smtp
    port = Integer(env('SMTPC_TEST_SLOW_PORT'))
    msg = "From: a@example.com\r\nTo: b@example.com\r\nSubject: gap\r\n\r\nslow\r\n"
    ours1 = lambda do
      Smtpc::Session.open('127.0.0.1', port) do |s|
        assert_equal 250, s.sendmail('a@example.com', 'b@example.com', msg).code
        s.quit
      end
    end
    theirs1 = lambda do
      Net::SMTP.start('127.0.0.1', port, tls: false, starttls: false) do |smtp|
        smtp.send_message(msg, 'a@example.com', 'b@example.com')
      end
    end
    # One send each first (loading, first-use allocations), then the measured ones.
    ours1.call
    theirs1.call
    GC.start
    t0 = now
    ours = ticker_gap { ours1.call }
    took = now - t0
    GC.start
    theirs = ticker_gap { theirs1.call }
    figure format('GVL ticker gap during a send to the slow server (%.0f ms): smtpc %.1f ms, net-smtp %.1f ms',
                  took * 1000, ours, theirs)
    assert_operator ours, :<, 100
  end

  def rss(key)
    File.read('/proc/self/status')[/^#{key}:\s+(\d+)/, 1].to_i * 1024
  end

  def test_stream_16_mib_constant_memory
    size = 16 << 20
    path = File.join(env('SMTPC_WORK'), 'ruby-16mib.eml')
    File.open(path, 'wb') do |f|
      f.write("From: a@example.com\r\nSubject: 16 MiB\r\n\r\n")
      line = "#{'x' * 76}\r\n"
      block = line * 1024
      f.write(block) while f.size < size
    end
    Smtpc::Session.open('127.0.0.1', Integer(env('SMTPC_TEST_SINK_PORT'))) do |s|
      s.ehlo
      GC.start
      File.write('/proc/self/clear_refs', '5')
      base = rss('VmRSS')
      t0 = now
      File.open(path, 'rb') do |io|
        assert_equal 250, s.sendmail('a@example.com', 'b@example.com', io, size: io.size).code
      end
      growth = rss('VmHWM') - base
      figure format('16 MiB file body in %.0f ms, peak RSS growth %.2f MiB', (now - t0) * 1000, growth / 1048576.0)
      assert_equal :accepted, s.outcome
      assert_operator growth, :<, 8 << 20

      # net-smtp's open_message_stream form.
      r = s.open_message_stream('a@example.com', ['b@example.com']) do |io|
        io.puts 'Subject: streamed'
        io.puts
        1000.times { |i| io.write "line #{i}\n" }
      end
      assert_equal 250, r.code
      assert_raises(RuntimeError) do
        s.open_message_stream('a@example.com', ['b@example.com']) do |io|
          io.puts 'Subject: half'
          raise 'half-way'
        end
      end
      assert_equal :not_sent, s.outcome
    end
  ensure
    File.unlink(path) if path && File.exist?(path)
  end

  def test_batch_5000
    n = 5000
    msgs = (0...n).lazy.map { |i| ['bulk@example.com', ["r#{i}@example.com"], "Subject: batch #{i}\n\nmessage #{i}\n"] }
    Smtpc::Session.open('127.0.0.1', Integer(env('SMTPC_TEST_SINK_PORT'))) do |s|
      t0 = now
      results = s.send_batch(msgs)
      dt = now - t0
      assert_equal n, results.size
      assert(results.all? { |r| r.outcome == :accepted && r.code == 250 && r.rejected.empty? && r.accepted.size == 1 })
      figure format('batch: %d messages in %.0f ms (%.0f msg/s, %d waits)', n, dt * 1000, n / dt, s.waits)
    end
    Smtpc::Session.open(env('SMTPC_TEST_HOST'), Integer(env('SMTPC_TEST_PORT')), ca_file: env('SMTPC_TEST_CA')) do |s|
      s.batch_add('a@example.com', ['b@example.com', env('SMTPC_TEST_REJECT')], "Subject: 1\n\none\n")
      s.batch_add('a@example.com', [env('SMTPC_TEST_REJECT')], "Subject: 2\n\ntwo\n")
      r = s.batch_send
      assert_equal %i[accepted refused], r.map(&:outcome)
      assert_equal ['b@example.com'], r[0].accepted
      assert_equal [env('SMTPC_TEST_REJECT')], r[0].rejected
      assert_equal Smtpc::STEP_RCPT, r[1].failed_step
      s.batch_clear
      assert_empty s.batch_results
    end
  end

  def test_message_builder_and_raw_verbs
    m = Smtpc::Message.new
    m.from('me@example.com', 'Mé').to('you@example.com').bcc('hidden@example.com')
    m.subject('built in Ruby').header('X-Binding', 'ruby').text("Hello from the builder.\n")
    m.attach("a,b\n1,2\n", filename: 'data.csv', content_type: 'text/csv')
    assert_raises(Smtpc::InvalidArgumentError) { m.header('X-Bad', "a\r\nBcc: evil@example.com") }
    raw = m.render
    assert_includes raw, 'Subject: built in Ruby'
    refute_includes raw, 'hidden@'
    Smtpc::Session.open(env('SMTPC_TEST_HOST'), Integer(env('SMTPC_TEST_PORT')), ca_file: env('SMTPC_TEST_CA')) do |s|
      s.ehlo
      assert_equal '33554432', s.extensions['SIZE']
      assert_equal 250, s.send_mail_message(m).code
      assert_equal 2, s.recipients.size
      assert_equal 250, s.send_mail_message("From: a@example.com\nTo: b@example.com\nSubject: raw\n\nraw\n").code
      s.mail_options = ['X-IGNORED=1']
      s.mail_options = []
      s.rcpt_options = []
      assert_equal 250, s.mail('a@example.com').code
      assert_equal 250, s.rcpt('b@example.com').code
      assert_equal 250, s.data("Subject: verbs\n\nlow level\n").code
      s.putcmd('NOOP')
      s.putcmd('NOOP')
      assert_equal [250, 250], [s.getreply.code, s.getreply.code]
      s.tls_min_version = Smtpc::TLS_1_2
      s.tls_server_name = 'localhost'
      s.ca_dir = nil
      s.set_client_cert(nil)
      s.quit
    end
  ensure
    m&.close
  end

  def test_auth_callback_plain
    [true, false].each do |initial|
      Smtpc::Session.open(env('SMTPC_TEST_HOST'), Integer(env('SMTPC_TEST_PORT')),
                          ca_file: env('SMTPC_TEST_CA'), tls_policy: :required) do |s|
        s.initial_response = initial
        calls = 0
        r = s.auth_callback('PLAIN') do |_challenge|
          calls += 1
          "\0#{env('SMTPC_TEST_USER')}\0#{env('SMTPC_TEST_PASS')}"
        end
        assert_equal 235, r.code
        assert_operator calls, :>, 0
      end
    end
    Smtpc::Session.open(env('SMTPC_TEST_HOST'), Integer(env('SMTPC_TEST_PORT')),
                        ca_file: env('SMTPC_TEST_CA'), tls_policy: :required) do |s|
      assert_raises(KeyError) { s.auth_callback('PLAIN') { |_c| raise KeyError, 'no token today' } }
    end
  end
end
