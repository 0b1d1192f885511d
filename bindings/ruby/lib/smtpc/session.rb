# frozen_string_literal: true

module Smtpc
  # A server's answer. `code, text = session.ehlo` works too.
  Reply = Struct.new(:code, :text) do
    def to_ary
      [code, text]
    end

    def success?
      code.between?(200, 399)
    end
  end

  # The answer to one recipient (enhanced: "5.1.1", or "" when none).
  RcptReply = Struct.new(:code, :text, :enhanced)

  # What the server said about one message of a batch. accepted/rejected
  # list the recipients the server took and refused (as nodemailer's and
  # the mail gem's results do); outcome is :accepted, :refused, :not_sent
  # or :unknown.
  BatchResult = Struct.new(:code, :text, :outcome, :failed_step, :recipients, :accepted, :rejected)

  # SMTPC_OUTCOME_* as symbols (Session#outcome, BatchResult#outcome).
  OUTCOMES = { 0 => :none, 1 => :accepted, 2 => :refused, 3 => :not_sent, 4 => :unknown }.freeze
  OUTCOME_CODES = OUTCOMES.invert.freeze
  # SMTPC_TLS_* (Session#tls_policy=).
  TLS_POLICIES = { manual: 0, opportunistic: 1, required: 2, implicit: 3 }.freeze

  # One SMTP connection handle (smtp_session). Used by one thread at a
  # time; only #cancel may be called from another thread.
  #
  # Every call that waits on the network runs the C function on a helper
  # thread, with the GVL released, while the calling thread waits for it:
  # other threads run meanwhile, and an exception raised into the calling
  # thread (Timeout.timeout, Thread#raise, Interrupt) cancels the C call
  # through smtp_session_cancel before it propagates. Callbacks (the trace
  # block, a body's IO) run on that helper thread.
  class Session
    # Creates a session, connects (implicit TLS with tls: true) and, with a
    # block, yields it and closes it when the block ends. Options are those
    # of #new. #greeting holds the connect reply.
    def self.open(host, port = nil, tls: false, **options)
      session = new(**options)
      begin
        port ||= tls ? 465 : 25
        tls ? session.connect_tls(host, port) : session.connect(host, port)
      rescue Exception # rubocop:disable Lint/RescueException
        session.close
        raise
      end
      return session unless block_given?

      begin
        yield session
      ensure
        session.close
      end
    end

    attr_reader :greeting

    # Options: timeout_ms:, body_timeout_ms:, debuglevel:, ca_file:,
    # tls_verify:, tls_policy:, local_hostname:, trace: (a callable
    # receiving each transcript line).
    def initialize(timeout_ms: nil, body_timeout_ms: nil, debuglevel: nil, ca_file: nil, tls_verify: nil,
                   tls_policy: nil, local_hostname: nil, trace: nil)
      raw = C.smtp_session_new
      raise NoMemoryError, 'smtp_session_new failed' if raw.null?

      @ptr = FFI::AutoPointer.new(raw, C.method(:smtp_session_free))
      @lock = Mutex.new # guards @inflight/@cancelled, which #cancel reads
      @inflight = false
      @cancelled = false
      @stale = false
      self.timeout_ms = timeout_ms if timeout_ms
      self.body_timeout_ms = body_timeout_ms if body_timeout_ms
      self.debuglevel = debuglevel if debuglevel
      self.ca_file = ca_file if ca_file
      self.tls_verify = tls_verify unless tls_verify.nil?
      self.tls_policy = tls_policy if tls_policy
      self.local_hostname = local_hostname if local_hostname
      self.trace(trace) if trace
    end

    # Frees the handle (closing the connection without QUIT). Later calls
    # raise Smtpc::NullPointerError. Safe to call twice.
    def close
      return if @ptr.nil?

      @lock.synchronize do
        @ptr.free
        @ptr = nil
      end
      @trace_fn = nil
      nil
    end

    def closed?
      @ptr.nil?
    end

    # Stops the call in flight on this session, from any thread: it raises
    # Smtpc::CancelledError promptly and the connection is closed (the
    # session can connect again). Without a call in flight, does nothing.
    def cancel
      @lock.synchronize do
        if @inflight && @ptr
          C.smtp_session_cancel(@ptr)
          @cancelled = true
        end
      end
      nil
    end

    # ---- settings ----

    def timeout_ms=(ms)
      check(:smtp_session_set_timeout_ms, C.smtp_session_set_timeout_ms(handle, ms))
    end

    # Bound on writing one whole message body (0: timeout_ms).
    def body_timeout_ms=(ms)
      check(:smtp_session_set_body_timeout_ms, C.smtp_session_set_body_timeout_ms(handle, ms))
    end

    # 0 off, 1 smtplib's transcript, 2 with timestamps.
    def debuglevel=(level)
      check(:smtp_session_set_debuglevel, C.smtp_session_set_debuglevel(handle, level))
    end

    # Sends transcript lines to the block (or callable) instead of stderr;
    # with neither, back to stderr. An exception raised by it is re-raised
    # by the call that produced the line.
    def trace(callable = nil, &block)
      fn = block || callable
      if fn.nil?
        check(:smtp_session_set_trace, C.smtp_session_set_trace(handle, nil, nil))
        @trace_fn = nil
        return self
      end
      cb = FFI::Function.new(:void, %i[pointer string]) do |_user, line|
        next if @trace_pending

        begin
          fn.call(line.to_s.dup.force_encoding(Encoding::UTF_8))
        rescue Exception => e # rubocop:disable Lint/RescueException
          # Must not unwind through the C library: raised after the call.
          @trace_pending = e
        end
      end
      check(:smtp_session_set_trace, C.smtp_session_set_trace(handle, cb, nil))
      @trace_fn = cb # keeps the closure alive while C holds it
      self
    end

    def tls_verify=(on)
      check(:smtp_session_set_tls_verify, C.smtp_session_set_tls_verify(handle, on ? 1 : 0))
    end

    # :manual (default), :opportunistic, :required or :implicit.
    def tls_policy=(policy)
      value = TLS_POLICIES.fetch(policy) { raise ArgumentError, "unknown TLS policy #{policy.inspect}" }
      check(:smtp_session_set_tls_policy, C.smtp_session_set_tls_policy(handle, value))
    end

    def allow_insecure_auth=(on)
      check(:smtp_session_set_allow_insecure_auth, C.smtp_session_set_allow_insecure_auth(handle, on ? 1 : 0))
    end

    # A PEM file of trusted CAs; nil goes back to the system's roots.
    def ca_file=(path)
      check(:smtp_session_set_ca_file, C.smtp_session_set_ca_file(handle, cstr(:smtp_session_set_ca_file, path)))
    end

    # The EHLO/HELO name used by default; nil restores the library's.
    def local_hostname=(name)
      check(:smtp_session_set_local_hostname,
            C.smtp_session_set_local_hostname(handle, cstr(:smtp_session_set_local_hostname, name)))
    end

    # The local IP address (and port, 0: any) to connect from; nil clears it.
    def set_source_address(address, port = 0) # rubocop:disable Naming/AccessorMethodName
      check(:smtp_session_set_source_address,
            C.smtp_session_set_source_address(handle, cstr(:smtp_session_set_source_address, address), port))
    end

    def pipelining=(on)
      check(:smtp_session_set_pipelining, C.smtp_session_set_pipelining(handle, on ? 1 : 0))
    end

    def chunking=(on)
      check(:smtp_session_set_chunking, C.smtp_session_set_chunking(handle, on ? 1 : 0))
    end

    def binarymime=(on)
      check(:smtp_session_set_binarymime, C.smtp_session_set_binarymime(handle, on ? 1 : 0))
    end

    # DSN parameters (RFC 3461) for the next messages; all nil/false: off.
    def dsn(ret: nil, envid: nil, notify: nil, orcpt: false)
      notify = Array(notify).join(',') unless notify.nil?
      call = :smtp_session_set_dsn
      check(call, C.smtp_session_set_dsn(handle, cstr(call, ret), cstr(call, envid), cstr(call, notify), orcpt ? 1 : 0))
    end

    # ---- commands ----

    def connect(host, port = 25)
      h = cstr(:smtp_session_connect, host)
      @greeting = command(:smtp_session_connect) { |b, n| C.smtp_session_connect(handle, h, port, b, n) }
    end

    def connect_tls(host, port = 465)
      h = cstr(:smtp_session_connect_tls, host)
      @greeting = command(:smtp_session_connect_tls) { |b, n| C.smtp_session_connect_tls(handle, h, port, b, n) }
    end

    def helo(name = nil)
      v = cstr(:smtp_session_helo, name)
      command(:smtp_session_helo) { |b, n| C.smtp_session_helo(handle, v, b, n) }
    end

    def ehlo(name = nil)
      v = cstr(:smtp_session_ehlo, name)
      command(:smtp_session_ehlo) { |b, n| C.smtp_session_ehlo(handle, v, b, n) }
    end

    # Switches to LMTP and sends LHLO; see #rcpt_data_replies.
    def lhlo(name = nil)
      v = cstr(:smtp_session_lhlo, name)
      command(:smtp_session_lhlo) { |b, n| C.smtp_session_lhlo(handle, v, b, n) }
    end

    # Whether the last EHLO listed the extension (case-insensitive).
    def has_extn?(name) # rubocop:disable Naming/PredicateName
      C.smtp_session_has_extn(handle, cstr(:smtp_session_has_extn, name)) == 1
    end
    alias has_extn has_extn?

    # The extension's parameters ("" if none); raises NotSupportedError
    # when the last EHLO did not list it.
    def extn_params(name)
      v = cstr(:smtp_session_extn_params, name)
      unless has_extn?(v)
        check(:smtp_session_extn_params, CODES[:E_NULL]) if closed?
        raise NotSupportedError.new(CODES[:E_NOT_SUPPORTED], 'smtp_session_extn_params', "the last EHLO did not list #{v}")
      end
      sized_text { |b, n| C.smtp_session_extn_params(handle, v, b, n) }
    end

    # The extensions of the last EHLO, upper-cased keyword => parameters,
    # in the server's order (smtplib's esmtp_features).
    def extensions
      Array.new(C.smtp_session_extn_count(handle)) do |i|
        name = sized_text { |b, n| C.smtp_session_extn_name(handle, i, b, n) }
        [name, extn_params(name)]
      end.to_h
    end

    def starttls
      command(:smtp_session_starttls) { |b, n| C.smtp_session_starttls(handle, b, n) }
    end

    def login(user, password)
      u = cstr(:smtp_session_login, user)
      p = cstr(:smtp_session_login, password)
      command(:smtp_session_login) { |b, n| C.smtp_session_login(handle, u, p, b, n) }
    end

    # One named mechanism: 'PLAIN', 'LOGIN', 'CRAM-MD5' or 'XOAUTH2' (the
    # secret is then the OAuth 2.0 access token).
    def auth(mechanism, user, secret)
      call = :smtp_session_auth
      m = cstr(call, mechanism.to_s)
      u = cstr(call, user)
      s = cstr(call, secret)
      command(call) { |b, n| C.smtp_session_auth(handle, m, u, s, b, n) }
    end

    # Authenticates with a mechanism of the caller's (smtplib's
    # auth(mechanism, authobject)): the block gets nil for the initial
    # response (return nil when the mechanism has none), then each decoded
    # challenge, and returns the response bytes (a String); the library
    # does the base64 and the AUTH exchange. An exception raised by the
    # block aborts the exchange and is re-raised.
    def auth_callback(mechanism, &block)
      call = :smtp_session_auth_callback
      m = cstr(call, mechanism.to_s)
      held = nil
      error = nil
      cb = FFI::Function.new(:int64, %i[pointer pointer size_t pointer size_t]) do |_u, challenge, clen, resp, cap|
        out = held
        held = nil
        if out.nil?
          begin
            out = block.call(challenge.null? ? nil : challenge.get_bytes(0, clen))
          rescue Exception => e # rubocop:disable Lint/RescueException
            error = e
            next -1
          end
          next -2 if out.nil? && challenge.null? # SMTPC_SASL_NO_RESPONSE

          out = out.to_s.b
        end
        if out.bytesize > cap
          held = out # the library asks again with a buffer that fits
        else
          resp.put_bytes(0, out)
        end
        out.bytesize
      end
      command(call) { |b, n| C.smtp_session_auth_callback(handle, m, cb, nil, b, n) }
    rescue CallbackError
      raise error if error

      raise
    end

    # smtplib's initial_response_ok (default true).
    def initial_response=(on)
      check(:smtp_session_set_initial_response, C.smtp_session_set_initial_response(handle, on ? 1 : 0))
    end

    # Sends msg from `from` to each address of `to` (a String or an
    # Array). msg is a String of bytes, or an IO (anything with #read or
    # #readpartial): it is then read as the library needs it, in constant
    # memory (size:, when known, is announced as SIZE=). The reply is the
    # final one (250 even if some recipients were refused: see
    # #recipients) or the refusing one; after a failure, #outcome tells
    # whether the message may have been delivered.
    def sendmail(from, to, msg, size: nil)
      return sendmail_io(from, to, msg, size) if msg.respond_to?(:readpartial) || msg.respond_to?(:read)

      call = :smtp_session_sendmail
      f = cstr(call, from)
      list, count = address_list(call, to)
      bytes = msg.to_s.b
      body = nil
      unless bytes.empty?
        body = FFI::MemoryPointer.new(:uint8, bytes.bytesize)
        body.put_bytes(0, bytes)
      end
      command(call) { |b, n| C.smtp_session_sendmail(handle, f, list, count, body, bytes.bytesize, b, n) }
    end
    alias send_message sendmail

    # net-smtp's streaming form: yields a writer (#write, #print, #puts,
    # #<<) whose bytes go to the server as they are written, in constant
    # memory. If the block raises, the connection is closed before the end
    # of data (nothing partial is delivered) and the exception propagates.
    def open_message_stream(from, to)
      reader, writer = IO.pipe
      reader.binmode
      writer.binmode
      sender = Thread.new do
        Thread.current.report_on_exception = false
        sendmail_io(from, to, reader, nil)
      ensure
        reader.close
      end
      done = false
      begin
        yield writer
        writer.close
        result = sender.value
        done = true
        result
      ensure
        unless done
          Thread.handle_interrupt(Object => :never) do
            @stream_abort = true # the reader answers -1 at EOF: nothing partial is sent
            writer.close unless writer.closed?
            cancel
            sender.join rescue nil # rubocop:disable Style/RescueModifier
          end
        end
        @stream_abort = false
      end
    end

    # The answer to each recipient of the last sendmail, in the order given.
    def recipients
      Array.new(C.smtp_session_rcpt_count(handle)) do |i|
        rc, text = code_text { |b, n| C.smtp_session_rcpt_code(handle, i, b, n) }
        check(:smtp_session_rcpt_code, rc)
        RcptReply.new(rc, text, sized_text { |b, n| C.smtp_session_rcpt_enhanced(handle, i, b, n) })
      end
    end

    # LMTP: each recipient's delivery reply after the last sendmail
    # (a negative code for a recipient that was refused).
    def rcpt_data_replies
      Array.new(C.smtp_session_rcpt_count(handle)) do |i|
        Reply.new(*code_text { |b, n| C.smtp_session_rcpt_data_code(handle, i, b, n) })
      end
    end

    # Which step of the last sendmail the server refused (Smtpc::STEP_*).
    def failed_step
      C.smtp_session_failed_step(handle)
    end

    # Where the message of the last sendmail stands: :none, :accepted,
    # :refused, :not_sent (certainly not delivered: safe to send again)
    # or :unknown (its end of data went out, no final reply came).
    def outcome
      OUTCOMES.fetch(C.smtp_session_outcome(handle), :none)
    end

    def vrfy(address)
      a = cstr(:smtp_session_vrfy, address)
      command(:smtp_session_vrfy) { |b, n| C.smtp_session_vrfy(handle, a, b, n) }
    end
    alias verify vrfy

    def expn(list)
      l = cstr(:smtp_session_expn, list)
      command(:smtp_session_expn) { |b, n| C.smtp_session_expn(handle, l, b, n) }
    end

    def help(topic = nil)
      t = cstr(:smtp_session_help, topic)
      command(:smtp_session_help) { |b, n| C.smtp_session_help(handle, t, b, n) }
    end

    def noop
      command(:smtp_session_noop) { |b, n| C.smtp_session_noop(handle, b, n) }
    end

    def rset
      command(:smtp_session_rset) { |b, n| C.smtp_session_rset(handle, b, n) }
    end

    # QUIT, then the connection is closed (the session can connect again).
    def quit
      command(:smtp_session_quit) { |b, n| C.smtp_session_quit(handle, b, n) }
    end

    # Closes the connection without QUIT; the handle stays usable.
    def disconnect
      check(:smtp_session_close, C.smtp_session_close(handle))
    end

    def docmd(cmd, args = nil)
      c = cstr(:smtp_session_docmd, cmd)
      a = cstr(:smtp_session_docmd, args)
      command(:smtp_session_docmd) { |b, n| C.smtp_session_docmd(handle, c, a, b, n) }
    end

    # ---- smtplib's low-level verbs ----

    # MAIL FROM:<from> with ESMTP parameters (smtplib's mail).
    def mail(from, params = [])
      call = :smtp_session_mail
      f = cstr(call, from)
      list, count = string_array(call, params)
      command(call) { |b, n| C.smtp_session_mail(handle, f, list, count, b, n) }
    end

    # RCPT TO:<to> with ESMTP parameters (smtplib's rcpt).
    def rcpt(to, params = [])
      call = :smtp_session_rcpt
      t = cstr(call, to)
      list, count = string_array(call, params)
      command(call) { |b, n| C.smtp_session_rcpt(handle, t, list, count, b, n) }
    end

    # DATA and, on 354, the message; the final reply (smtplib's data).
    def data(msg)
      bytes = msg.to_s.b
      body = FFI::MemoryPointer.new(:uint8, [bytes.bytesize, 1].max)
      body.put_bytes(0, bytes)
      command(:smtp_session_data) { |b, n| C.smtp_session_data(handle, body, bytes.bytesize, b, n) }
    end

    # Queues one command line without reading (smtplib's putcmd).
    def putcmd(cmd, args = nil)
      check(:smtp_session_putcmd, C.smtp_session_putcmd(handle, cstr(:smtp_session_putcmd, cmd),
                                                        cstr(:smtp_session_putcmd, args)))
    end

    # Reads the next reply, sending what putcmd queued (smtplib's getreply).
    def getreply
      command(:smtp_session_getreply) { |b, n| C.smtp_session_getreply(handle, b, n) }
    end

    # Sends a Smtpc::Message (or RFC 5322 bytes, a String) with smtplib's
    # send_message rules: the envelope from `from`/`to`, or from the
    # message's fields when they are nil/empty.
    def send_mail_message(message, from: nil, to: [])
      f = cstr(:smtp_session_send_message, from)
      list, count = address_list(:smtp_session_send_message, to)
      if message.is_a?(Message)
        command(:smtp_session_send_message) do |b, n|
          C.smtp_session_send_message(handle, message.handle, f, list, count, b, n)
        end
      else
        bytes = message.to_s.b
        body = FFI::MemoryPointer.new(:uint8, [bytes.bytesize, 1].max)
        body.put_bytes(0, bytes)
        command(:smtp_session_send_message_raw) do |b, n|
          C.smtp_session_send_message_raw(handle, body, bytes.bytesize, f, list, count, b, n)
        end
      end
    end

    # ESMTP parameters added to every MAIL FROM (smtplib's mail_options).
    def mail_options=(opts)
      list, count = string_array(:smtp_session_set_mail_options, opts)
      check(:smtp_session_set_mail_options, C.smtp_session_set_mail_options(handle, list, count))
    end

    # ESMTP parameters added to every RCPT TO (smtplib's rcpt_options).
    def rcpt_options=(opts)
      list, count = string_array(:smtp_session_set_rcpt_options, opts)
      check(:smtp_session_set_rcpt_options, C.smtp_session_set_rcpt_options(handle, list, count))
    end

    # A client certificate (PEM; key nil when it is in the cert file).
    def set_client_cert(cert_path, key_path = nil) # rubocop:disable Naming/AccessorMethodName
      call = :smtp_session_set_client_cert
      check(call, C.smtp_session_set_client_cert(handle, cstr(call, cert_path), cstr(call, key_path)))
    end

    # A directory of trusted PEM certificates; nil goes back to the default.
    def ca_dir=(path)
      check(:smtp_session_set_ca_dir, C.smtp_session_set_ca_dir(handle, cstr(:smtp_session_set_ca_dir, path)))
    end

    # Lowest TLS version: Smtpc::TLS_1_2, Smtpc::TLS_1_3, or 0 (default).
    def tls_min_version=(version)
      check(:smtp_session_set_tls_min_version, C.smtp_session_set_tls_min_version(handle, version))
    end

    # The name the certificate is verified against (and SNI); nil: the host.
    def tls_server_name=(name)
      check(:smtp_session_set_tls_server_name,
            C.smtp_session_set_tls_server_name(handle, cstr(:smtp_session_set_tls_server_name, name)))
    end

    # ---- batches ----

    # Sends every message of `messages` (an Enumerable, read lazily: each
    # item [from, to, body] or {from:, to:, body:}), pipelined across
    # messages when the server offers PIPELINING, and returns one
    # BatchResult per message. Raises only when the connection failed
    # (Smtpc::Error#results then holds the results all the same).
    def send_batch(messages)
      enum = messages.each
      keep = []
      done = false
      pending = nil
      cb = FFI::Function.new(:int, %i[pointer pointer pointer pointer pointer pointer]) do |_u, from, to, n_to, msg, len|
        keep.clear
        begin
          item = done ? nil : enum.next
        rescue StopIteration
          done = true
          item = nil
        rescue Exception => e # rubocop:disable Lint/RescueException
          pending = e
          next -1
        end
        next 0 if item.nil?

        f, t, body = item.is_a?(Hash) ? item.values_at(:from, :to, :body) : item
        addrs = Array(t).map { |a| FFI::MemoryPointer.from_string(a.to_s) }
        list = FFI::MemoryPointer.new(:pointer, [addrs.size, 1].max)
        list.write_array_of_pointer(addrs) unless addrs.empty?
        bytes = body.to_s.b
        bp = FFI::MemoryPointer.new(:uint8, [bytes.bytesize, 1].max)
        bp.put_bytes(0, bytes)
        fp = FFI::MemoryPointer.from_string(f.to_s)
        keep.push(fp, list, bp, *addrs, Array(t))
        from.write_pointer(fp)
        to.write_pointer(list)
        n_to.write(:size_t, addrs.size)
        msg.write_pointer(bp)
        len.write(:size_t, bytes.bytesize)
        (@batch_to ||= []) << Array(t).map(&:to_s)
        1
      end
      @batch_to = []
      rc = blocking { C.smtp_session_batch_send_cb(handle, cb, nil) }
      raise pending if pending

      finish_batch(:smtp_session_batch_send_cb, rc, @batch_to)
    ensure
      @batch_to = nil
    end

    # Queues a copy of a message for #batch_send (addresses checked now).
    def batch_add(from, to, msg)
      call = :smtp_session_batch_add
      f = cstr(call, from)
      list, count = address_list(call, to)
      bytes = msg.to_s.b
      body = FFI::MemoryPointer.new(:uint8, [bytes.bytesize, 1].max)
      body.put_bytes(0, bytes)
      (@queued_to ||= []) << Array(to).map(&:to_s)
      check(call, C.smtp_session_batch_add(handle, f, list, count, body, bytes.bytesize))
    end

    # Sends the queued messages; returns their BatchResults.
    def batch_send
      rc = blocking { C.smtp_session_batch_send(handle) }
      to = @queued_to || []
      @queued_to = nil
      finish_batch(:smtp_session_batch_send, rc, to)
    end

    # The results of the last batch.
    def batch_results(addresses = [])
      Array.new(C.smtp_session_batch_count(handle)) do |i|
        code, text = code_text { |b, n| C.smtp_session_batch_code(handle, i, b, n) }
        rcpts = Array.new(C.smtp_session_batch_rcpt_count(handle, i)) do |j|
          Reply.new(*code_text { |b, n| C.smtp_session_batch_rcpt_code(handle, i, j, b, n) })
        end
        to = addresses[i] || []
        accepted = to.each_index.select { |j| rcpts[j]&.code&.between?(200, 299) }.map { |j| to[j] }
        BatchResult.new(code, text, OUTCOMES.fetch(C.smtp_session_batch_outcome(handle, i), :none),
                        C.smtp_session_batch_failed_step(handle, i), rcpts, accepted, to - accepted)
      end
    end

    # Drops queued messages and the last batch's results.
    def batch_clear
      @queued_to = nil
      check(:smtp_session_batch_clear, C.smtp_session_batch_clear(handle))
    end

    # ---- state ----

    def connected?
      C.smtp_session_is_connected(handle) == 1
    end

    def tls?
      C.smtp_session_is_tls(handle) == 1
    end

    # How many times the session waited on the network for a reply.
    def waits
      C.smtp_session_waits(handle)
    end

    def last_code
      C.smtp_session_last_code(handle)
    end

    def last_reply
      sized_text { |b, n| C.smtp_session_last_reply(handle, b, n) }
    end

    # The enhanced status code of the last reply ("5.1.1"; "" if none).
    def last_enhanced
      sized_text { |b, n| C.smtp_session_last_enhanced(handle, b, n) }
    end

    def last_error
      sized_text { |b, n| C.smtp_session_last_error(handle, b, n) }
    end

    private

    def handle
      @ptr || FFI::Pointer::NULL
    end

    def cstr(call, value)
      return nil if value.nil?

      s = value.to_s
      raise InvalidArgumentError.new(-2, call.to_s, 'argument contains a NUL byte') if s.include?("\0")

      s
    end

    def string_array(call, values)
      strs = Array(values).map { |a| FFI::MemoryPointer.from_string(cstr(call, a)) }
      list = FFI::MemoryPointer.new(:pointer, [strs.size, 1].max)
      list.write_array_of_pointer(strs) unless strs.empty?
      @keep_strings = strs # alive for the call
      [list, strs.size]
    end

    def address_list(call, to)
      addrs = Array(to).map { |a| FFI::MemoryPointer.from_string(cstr(call, a)) }
      list = FFI::MemoryPointer.new(:pointer, [addrs.size, 1].max)
      list.write_array_of_pointer(addrs) unless addrs.empty?
      @keep_addrs = addrs # alive for the call
      [list, addrs.size]
    end

    def check(call, rc)
      raise Error.class_for(rc).new(rc, call.to_s, last_error) if rc.negative?

      rc
    end

    def finish_batch(call, rc, addresses)
      results = batch_results(addresses)
      if rc.negative?
        err = Error.class_for(rc).new(rc, call.to_s, last_error)
        err.results = results
        raise err
      end
      raise StateError.new(-3, call.to_s, "EHLO/HELO refused: #{rc} #{last_reply}") if rc >= 100

      results
    end

    def sized_text
      buf = FFI::MemoryPointer.new(:char, REPLY_CAP)
      n = yield(buf, REPLY_CAP)
      if n >= REPLY_CAP
        buf = FFI::MemoryPointer.new(:char, n + 1)
        n = [yield(buf, n + 1), n].min
      end
      buf.get_bytes(0, n).force_encoding(Encoding::UTF_8)
    end

    # [code, text] from a call that gives no length: a text that may have
    # been cut is read again into a buffer that holds any reply.
    def code_text
      buf = FFI::MemoryPointer.new(:char, REPLY_CAP)
      rc = yield(buf, REPLY_CAP)
      if rc >= 0 && buf.get_string(0).bytesize + 4 >= REPLY_CAP
        buf = FFI::MemoryPointer.new(:char, MAX_REPLY_BYTES + 1)
        rc = yield(buf, MAX_REPLY_BYTES + 1)
      end
      [rc, buf.get_string(0).force_encoding(Encoding::UTF_8)]
    end

    def sendmail_io(from, to, io, size)
      call = :smtp_session_sendmail_cb
      f = cstr(call, from)
      list, count = address_list(call, to)
      io_error = nil
      scratch = String.new(capacity: 1 << 16, encoding: Encoding::BINARY)
      with_outbuf = true
      pull = lambda do |cap|
        if with_outbuf
          begin
            return io.respond_to?(:readpartial) ? io.readpartial(cap, scratch) : io.read(cap, scratch)
          rescue ArgumentError
            with_outbuf = false # an IO-like object without the outbuf argument
          end
        end
        io.respond_to?(:readpartial) ? io.readpartial(cap) : io.read(cap)
      end
      reader = FFI::Function.new(:int64, %i[pointer pointer size_t]) do |_user, buf, cap|
        begin
          chunk = pull.call(cap)
        rescue EOFError
          chunk = nil
        rescue Exception => e # rubocop:disable Lint/RescueException
          io_error = e
          next -1
        end
        if chunk.nil? || chunk.empty?
          next(@stream_abort ? -1 : 0)
        end

        buf.put_bytes(0, chunk)
        chunk.bytesize
      end
      command(call) do |b, n|
        C.smtp_session_sendmail_cb(handle, f, list, count, reader, nil, size || -1, b, n)
      end
    rescue CallbackError
      raise io_error if io_error

      raise
    end

    # Runs one C call that may block on a helper thread (the ffi gem
    # releases the GVL inside it) and waits for it; an exception raised
    # into this thread meanwhile cancels the call before propagating.
    def blocking(&call)
      attempt = 0
      loop do
        stale = @lock.synchronize do
          @inflight = true
          @cancelled = false
          s = @stale
          @stale = false
          s
        end
        worker = Thread.new do
          Thread.current.report_on_exception = false
          call.call
        end
        # Timeout.timeout unwinds with throw, not only raise: hence ensure.
        done = false
        begin
          rc = worker.value
          done = true
        ensure
          unless done
            Thread.handle_interrupt(Object => :never) do
              cancel
              worker.join rescue nil # rubocop:disable Style/RescueModifier
              finish_call(CODES[:E_CANCELLED])
            end
          end
        end
        cancelled = finish_call(rc)
        # A cancel that landed after the previous call returned leaves the
        # flag up: this call then stopped before doing anything; run it again.
        return rc unless rc == CODES[:E_CANCELLED] && stale && !cancelled && attempt.zero?

        attempt += 1
      end
    end

    def finish_call(rc)
      @lock.synchronize do
        @inflight = false
        @stale = true if @cancelled && rc != CODES[:E_CANCELLED]
        @cancelled
      end
    end

    # Runs one command with a reply buffer; a text that may have been cut
    # is read again in full through smtp_session_last_reply.
    def command(call)
      buf = FFI::MemoryPointer.new(:char, REPLY_CAP)
      rc = blocking { yield(buf, REPLY_CAP) }
      if (pending = @trace_pending)
        @trace_pending = nil
        raise pending
      end
      check(call, rc)
      text = buf.get_string(0).force_encoding(Encoding::UTF_8)
      # The buffer is cut on a UTF-8 boundary: a cut text is 1020..1023 bytes.
      if text.bytesize + 4 >= REPLY_CAP && C.smtp_session_last_code(handle) == rc
        full = last_reply
        text = full if full.bytesize > text.bytesize && full.start_with?(text)
      end
      Reply.new(rc, text)
    end
  end
end
