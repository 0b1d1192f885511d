# frozen_string_literal: true

# Ruby binding of libsmtpc, an SMTP client library with Python smtplib's
# verbs, through the ffi gem. include/smtpc.h documents every call.
#
# Commands return a Smtpc::Reply (code, text) for any server answer; a
# library failure (a negative SMTPC_E_* code) raises a Smtpc::Error subclass
# carrying #code, #detail (smtp_session_last_error) and #call.
#
# The shared library is looked up as $SMTPC_LIB, then libsmtpc.so.0 /
# libsmtpc.so on the loader's path, then this repository's target/release.

require 'ffi'

module Smtpc
  VERSION = '0.1.0'

  # The raw C API (include/smtpc.h).
  module C
    extend FFI::Library

    repo_lib = File.expand_path('../../../target/release/libsmtpc.so', __dir__)
    ffi_lib [ENV['SMTPC_LIB'], 'libsmtpc.so.0', 'smtpc', repo_lib].compact.reject(&:empty?)

    callback :trace_fn, %i[pointer string], :void

    attach_function :smtpc_strerror, [:int], :string
    attach_function :smtpc_version, [], :string
    attach_function :smtp_session_new, [], :pointer
    attach_function :smtp_session_free, [:pointer], :void
    attach_function :smtp_session_set_timeout_ms, %i[pointer uint32], :int
    attach_function :smtp_session_set_debuglevel, %i[pointer int32], :int
    attach_function :smtp_session_set_trace, %i[pointer trace_fn pointer], :int
    attach_function :smtp_session_set_tls_verify, %i[pointer int32], :int
    attach_function :smtp_session_set_ca_file, %i[pointer string], :int
    attach_function :smtp_session_set_local_hostname, %i[pointer string], :int
    attach_function :smtp_session_set_pipelining, %i[pointer int32], :int
    attach_function :smtp_session_connect, %i[pointer string uint16 pointer size_t], :int
    attach_function :smtp_session_connect_tls, %i[pointer string uint16 pointer size_t], :int
    attach_function :smtp_session_helo, %i[pointer string pointer size_t], :int
    attach_function :smtp_session_ehlo, %i[pointer string pointer size_t], :int
    attach_function :smtp_session_has_extn, %i[pointer string], :int
    attach_function :smtp_session_extn_params, %i[pointer string pointer size_t], :int
    attach_function :smtp_session_starttls, %i[pointer pointer size_t], :int
    attach_function :smtp_session_login, %i[pointer string string pointer size_t], :int
    attach_function :smtp_session_sendmail,
                    %i[pointer string pointer size_t pointer size_t pointer size_t], :int
    attach_function :smtp_session_rcpt_count, [:pointer], :size_t
    attach_function :smtp_session_rcpt_code, %i[pointer size_t pointer size_t], :int
    attach_function :smtp_session_failed_step, [:pointer], :int
    attach_function :smtp_session_vrfy, %i[pointer string pointer size_t], :int
    attach_function :smtp_session_expn, %i[pointer string pointer size_t], :int
    attach_function :smtp_session_help, %i[pointer string pointer size_t], :int
    attach_function :smtp_session_noop, %i[pointer pointer size_t], :int
    attach_function :smtp_session_rset, %i[pointer pointer size_t], :int
    attach_function :smtp_session_quit, %i[pointer pointer size_t], :int
    attach_function :smtp_session_close, [:pointer], :int
    attach_function :smtp_session_docmd, %i[pointer string string pointer size_t], :int
    attach_function :smtp_session_last_code, [:pointer], :int
    attach_function :smtp_session_last_reply, %i[pointer pointer size_t], :size_t
    attach_function :smtp_session_last_error, %i[pointer pointer size_t], :size_t
  end

  # SMTPC_STEP_*: which step of the last sendmail the server refused.
  STEP_NONE = 0
  STEP_MAIL = 1
  STEP_RCPT = 2
  STEP_DATA = 3
  STEP_MESSAGE = 4
  STEP_HELO = 5

  # The longest reply text the library accepts (SMTPC_MAX_REPLY_BYTES).
  MAX_REPLY_BYTES = 65_536
  REPLY_CAP = 1024 # the first buffer every reply is read into
  private_constant :REPLY_CAP

  # The library's English description of an SMTPC_* or reply code.
  def self.strerror(code)
    C.smtpc_strerror(code).dup.force_encoding(Encoding::UTF_8)
  end

  # The library's version, e.g. "0.1.0".
  def self.version
    C.smtpc_version.dup.force_encoding(Encoding::UTF_8)
  end

  # A library failure. #code is the SMTPC_E_* value (negative), #detail the
  # library's message for it ("" if none), #call the C function.
  class Error < StandardError
    attr_reader :code, :detail, :call

    def initialize(code, call = nil, detail = '')
      @code = code
      @call = call
      @detail = detail
      msg = +"#{Smtpc.strerror(code)} (#{code})"
      msg << ": #{detail}" unless detail.empty?
      msg.prepend("#{call}: ") if call
      super(msg)
    end

    # The subclass for an SMTPC_E_* code.
    def self.class_for(code)
      CLASSES.fetch(code, Error)
    end
  end

  class NullPointerError < Error; end      # SMTPC_E_NULL (e.g. a closed session)
  class InvalidArgumentError < Error; end  # SMTPC_E_INVALID
  class StateError < Error; end            # SMTPC_E_STATE
  class ResolveError < Error; end          # SMTPC_E_RESOLVE
  class ConnectError < Error; end          # SMTPC_E_CONNECT
  class TimeoutError < Error; end          # SMTPC_E_TIMEOUT
  class IOError < Error; end               # SMTPC_E_IO
  class ClosedError < Error; end           # SMTPC_E_CLOSED
  class TLSError < Error; end              # SMTPC_E_TLS
  class TLSVerifyError < TLSError; end     # SMTPC_E_TLS_VERIFY
  class ProtocolError < Error; end         # SMTPC_E_PROTOCOL
  class NotSupportedError < Error; end     # SMTPC_E_NOT_SUPPORTED
  class AuthMechanismError < Error; end    # SMTPC_E_AUTH_MECH
  class TooLargeError < Error; end         # SMTPC_E_TOO_LARGE
  class InsecureError < Error; end         # SMTPC_E_INSECURE
  class PanicError < Error; end            # SMTPC_E_PANIC
  class CallbackError < Error; end         # SMTPC_E_CALLBACK

  class Error
    CLASSES = {
      -1 => NullPointerError, -2 => InvalidArgumentError, -3 => StateError,
      -4 => ResolveError, -5 => ConnectError, -6 => TimeoutError, -7 => IOError,
      -8 => ClosedError, -9 => TLSError, -10 => TLSVerifyError, -11 => ProtocolError,
      -12 => NotSupportedError, -13 => AuthMechanismError, -14 => TooLargeError,
      -15 => InsecureError, -16 => PanicError, -17 => CallbackError
    }.freeze
  end

  # A server's answer. `code, text = session.ehlo` works too.
  Reply = Struct.new(:code, :text) do
    def to_ary
      [code, text]
    end
  end

  # One SMTP connection handle (smtp_session). Used by one thread at a time.
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

    # Options: timeout_ms:, debuglevel:, ca_file:, tls_verify:,
    # local_hostname:, trace: (a callable receiving each transcript line).
    def initialize(timeout_ms: nil, debuglevel: nil, ca_file: nil, tls_verify: nil,
                   local_hostname: nil, trace: nil)
      raw = C.smtp_session_new
      raise NoMemoryError, 'smtp_session_new failed' if raw.null?

      @ptr = FFI::AutoPointer.new(raw, C.method(:smtp_session_free))
      self.timeout_ms = timeout_ms if timeout_ms
      self.debuglevel = debuglevel if debuglevel
      self.ca_file = ca_file if ca_file
      self.tls_verify = tls_verify unless tls_verify.nil?
      self.local_hostname = local_hostname if local_hostname
      self.trace(trace) if trace
    end

    # Frees the handle (closing the connection without QUIT). Later calls
    # raise Smtpc::NullPointerError. Safe to call twice.
    def close
      return if @ptr.nil?

      @ptr.free
      @ptr = nil
      @trace_fn = nil
      nil
    end

    def closed?
      @ptr.nil?
    end

    # ---- settings ----

    def timeout_ms=(ms)
      check(:smtp_session_set_timeout_ms, C.smtp_session_set_timeout_ms(handle, ms))
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
          fn.call(line.to_s.force_encoding(Encoding::UTF_8))
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

    # A PEM file of trusted CAs; nil goes back to the system's roots.
    def ca_file=(path)
      check(:smtp_session_set_ca_file, C.smtp_session_set_ca_file(handle, cstr(:smtp_session_set_ca_file, path)))
    end

    # The EHLO/HELO name used by default; nil restores the library's.
    def local_hostname=(name)
      check(:smtp_session_set_local_hostname,
            C.smtp_session_set_local_hostname(handle, cstr(:smtp_session_set_local_hostname, name)))
    end

    def pipelining=(on)
      check(:smtp_session_set_pipelining, C.smtp_session_set_pipelining(handle, on ? 1 : 0))
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

    # Whether the last EHLO listed the extension (case-insensitive).
    def has_extn?(name) # rubocop:disable Naming/PredicateName
      C.smtp_session_has_extn(handle, cstr(:smtp_session_has_extn, name)) == 1
    end
    alias has_extn has_extn?

    # The extension's parameters ("" if none); raises NotSupportedError
    # when the last EHLO did not list it.
    def extn_params(name)
      v = cstr(:smtp_session_extn_params, name)
      rc = 0
      text = sized_text do |b, n|
        rc = C.smtp_session_extn_params(handle, v, b, n)
        rc.negative? ? 0 : rc
      end
      check(:smtp_session_extn_params, rc)
      text
    end

    def starttls
      command(:smtp_session_starttls) { |b, n| C.smtp_session_starttls(handle, b, n) }
    end

    def login(user, password)
      u = cstr(:smtp_session_login, user)
      p = cstr(:smtp_session_login, password)
      command(:smtp_session_login) { |b, n| C.smtp_session_login(handle, u, p, b, n) }
    end

    # Sends msg (a String of bytes) from `from` to each address of `to` (a
    # String or an Array). The reply is the final one (250 even if some
    # recipients were refused: see #recipients) or the refusing one.
    def sendmail(from, to, msg)
      f = cstr(:smtp_session_sendmail, from)
      addrs = Array(to).map { |a| FFI::MemoryPointer.from_string(cstr(:smtp_session_sendmail, a)) }
      list = FFI::MemoryPointer.new(:pointer, [addrs.size, 1].max)
      list.write_array_of_pointer(addrs) unless addrs.empty?
      bytes = msg.to_s.b
      body = nil
      unless bytes.empty?
        body = FFI::MemoryPointer.new(:uint8, bytes.bytesize)
        body.put_bytes(0, bytes)
      end
      command(:smtp_session_sendmail) do |b, n|
        C.smtp_session_sendmail(handle, f, list, addrs.size, body, bytes.bytesize, b, n)
      end
    end

    # The answer to each recipient of the last sendmail, in the order given.
    def recipients
      Array.new(C.smtp_session_rcpt_count(handle)) do |i|
        buf = FFI::MemoryPointer.new(:char, REPLY_CAP)
        rc = C.smtp_session_rcpt_code(handle, i, buf, REPLY_CAP)
        text = buf.get_string(0)
        if rc >= 0 && text.bytesize + 4 >= REPLY_CAP
          # Possibly cut and no length is returned: read it again into a
          # buffer that holds any reply the library accepts.
          buf = FFI::MemoryPointer.new(:char, MAX_REPLY_BYTES + 1)
          rc = C.smtp_session_rcpt_code(handle, i, buf, MAX_REPLY_BYTES + 1)
          text = buf.get_string(0)
        end
        check(:smtp_session_rcpt_code, rc)
        Reply.new(rc, text.force_encoding(Encoding::UTF_8))
      end
    end

    # Smtpc::STEP_*: which step of the last sendmail was refused.
    def failed_step
      C.smtp_session_failed_step(handle)
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

    # ---- state ----

    def last_code
      C.smtp_session_last_code(handle)
    end

    def last_reply
      sized_text { |b, n| C.smtp_session_last_reply(handle, b, n) }
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

    def check(call, rc)
      raise Error.class_for(rc).new(rc, call.to_s, last_error) if rc.negative?

      rc
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

    # Runs one command with a reply buffer; a text that may have been cut
    # is read again in full through smtp_session_last_reply.
    def command(call)
      buf = FFI::MemoryPointer.new(:char, REPLY_CAP)
      rc = yield(buf, REPLY_CAP)
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
