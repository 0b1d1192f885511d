# frozen_string_literal: true

require 'ffi'

module Smtpc
  # The raw C API of smtpc.h, one table row per function. Binding a new
  # export is one row: [name, argument types, return type, blocking].
  # Rows marked blocking can wait on the network: the ffi gem releases the
  # GVL while they run (`blocking: true`), so other threads keep running.
  #
  # The library is looked up as $SMTPC_LIB, then libsmtpc.so.0 through the
  # system loader (ld.so.conf, LD_LIBRARY_PATH), then in the libdir that
  # `pkg-config --variable=libdir smtpc` reports.
  module C
    extend FFI::Library

    def self.candidates
      list = [ENV.fetch('SMTPC_LIB', nil), 'libsmtpc.so.0']
      begin
        libdir = IO.popen(%w[pkg-config --variable=libdir smtpc], err: File::NULL, &:read).to_s.strip
        list << File.join(libdir, 'libsmtpc.so.0') unless libdir.empty?
      rescue SystemCallError
        nil # no pkg-config
      end
      list.compact.reject(&:empty?).uniq
    end

    ffi_lib candidates

    typedef :pointer, :session
    typedef :pointer, :message
    typedef :pointer, :buf
    callback :trace_fn, %i[pointer string], :void
    callback :read_fn, %i[pointer pointer size_t], :int64
    callback :next_message_fn, %i[pointer pointer pointer pointer pointer pointer], :int
    callback :sasl_fn, %i[pointer pointer size_t pointer size_t], :int64

    FUNCTIONS = [
      # library
      [:smtpc_strerror, [:int], :string, false],
      [:smtpc_version, [], :string, false],
      # handle
      [:smtp_session_new, [], :session, false],
      [:smtp_session_free, [:session], :void, false],
      [:smtp_session_cancel, [:session], :int, false],
      # settings
      [:smtp_session_set_timeout_ms, %i[session uint32], :int, false],
      [:smtp_session_set_body_timeout_ms, %i[session uint32], :int, false],
      [:smtp_session_set_debuglevel, %i[session int32], :int, false],
      [:smtp_session_set_trace, %i[session trace_fn pointer], :int, false],
      [:smtp_session_set_tls_verify, %i[session int32], :int, false],
      [:smtp_session_set_ca_file, %i[session string], :int, false],
      [:smtp_session_set_local_hostname, %i[session string], :int, false],
      [:smtp_session_set_source_address, %i[session string uint16], :int, false],
      [:smtp_session_set_pipelining, %i[session int32], :int, false],
      [:smtp_session_set_chunking, %i[session int32], :int, false],
      [:smtp_session_set_binarymime, %i[session int32], :int, false],
      [:smtp_session_set_tls_policy, %i[session int], :int, false],
      [:smtp_session_set_allow_insecure_auth, %i[session int32], :int, false],
      [:smtp_session_set_dsn, %i[session string string string int32], :int, false],
      [:smtp_session_set_mail_options, %i[session pointer size_t], :int, false],
      [:smtp_session_set_rcpt_options, %i[session pointer size_t], :int, false],
      [:smtp_session_set_client_cert, %i[session string string], :int, false],
      [:smtp_session_set_ca_dir, %i[session string], :int, false],
      [:smtp_session_set_tls_min_version, %i[session int32], :int, false],
      [:smtp_session_set_tls_server_name, %i[session string], :int, false],
      # commands
      [:smtp_session_connect, %i[session string uint16 buf size_t], :int, true],
      [:smtp_session_connect_tls, %i[session string uint16 buf size_t], :int, true],
      [:smtp_session_helo, %i[session string buf size_t], :int, true],
      [:smtp_session_ehlo, %i[session string buf size_t], :int, true],
      [:smtp_session_lhlo, %i[session string buf size_t], :int, true],
      [:smtp_session_starttls, %i[session buf size_t], :int, true],
      [:smtp_session_login, %i[session string string buf size_t], :int, true],
      [:smtp_session_auth, %i[session string string string buf size_t], :int, true],
      [:smtp_session_auth_callback, %i[session string sasl_fn pointer buf size_t], :int, true],
      [:smtp_session_set_initial_response, %i[session int32], :int, false],
      [:smtp_session_sendmail, %i[session string pointer size_t pointer size_t buf size_t], :int, true],
      [:smtp_session_sendmail_cb, %i[session string pointer size_t read_fn pointer int64 buf size_t], :int, true],
      [:smtp_session_vrfy, %i[session string buf size_t], :int, true],
      [:smtp_session_expn, %i[session string buf size_t], :int, true],
      [:smtp_session_help, %i[session string buf size_t], :int, true],
      [:smtp_session_noop, %i[session buf size_t], :int, true],
      [:smtp_session_rset, %i[session buf size_t], :int, true],
      [:smtp_session_quit, %i[session buf size_t], :int, true],
      [:smtp_session_docmd, %i[session string string buf size_t], :int, true],
      [:smtp_session_close, [:session], :int, false],
      [:smtp_session_mail, %i[session string pointer size_t buf size_t], :int, true],
      [:smtp_session_rcpt, %i[session string pointer size_t buf size_t], :int, true],
      [:smtp_session_data, %i[session pointer size_t buf size_t], :int, true],
      [:smtp_session_putcmd, %i[session string string], :int, false],
      [:smtp_session_getreply, %i[session buf size_t], :int, true],
      [:smtp_session_send_message, %i[session message string pointer size_t buf size_t], :int, true],
      [:smtp_session_send_message_raw, %i[session pointer size_t string pointer size_t buf size_t], :int, true],
      # messages (smtp_message)
      [:smtp_message_new, [], :message, false],
      [:smtp_message_free, [:message], :void, false],
      [:smtp_message_set_from, %i[message string string], :int, false],
      [:smtp_message_set_sender, %i[message string string], :int, false],
      [:smtp_message_add_to, %i[message string string], :int, false],
      [:smtp_message_add_cc, %i[message string string], :int, false],
      [:smtp_message_add_bcc, %i[message string string], :int, false],
      [:smtp_message_add_reply_to, %i[message string string], :int, false],
      [:smtp_message_set_subject, %i[message string], :int, false],
      [:smtp_message_add_header, %i[message string string], :int, false],
      [:smtp_message_set_text, %i[message pointer size_t], :int, false],
      [:smtp_message_set_html, %i[message pointer size_t], :int, false],
      [:smtp_message_set_raw, %i[message pointer size_t], :int, false],
      [:smtp_message_attach, %i[message pointer size_t string string], :int, false],
      [:smtp_message_attach_file, %i[message string string string], :int, false],
      [:smtp_message_add_inline, %i[message pointer size_t string string], :int, false],
      [:smtp_message_add_inline_file, %i[message string string string], :int, false],
      [:smtp_message_set_dkim, %i[message string string string string], :int, false],
      [:smtp_message_render, %i[message buf size_t], :size_t, false],
      [:smtp_message_last_error, %i[message buf size_t], :size_t, false],
      # batch
      [:smtp_session_batch_add, %i[session string pointer size_t pointer size_t], :int, false],
      [:smtp_session_batch_send, [:session], :int, true],
      [:smtp_session_batch_send_cb, %i[session next_message_fn pointer], :int, true],
      [:smtp_session_batch_count, [:session], :size_t, false],
      [:smtp_session_batch_code, %i[session size_t buf size_t], :int, false],
      [:smtp_session_batch_failed_step, %i[session size_t], :int, false],
      [:smtp_session_batch_outcome, %i[session size_t], :int, false],
      [:smtp_session_batch_rcpt_count, %i[session size_t], :size_t, false],
      [:smtp_session_batch_rcpt_code, %i[session size_t size_t buf size_t], :int, false],
      [:smtp_session_batch_clear, [:session], :int, false],
      # state
      [:smtp_session_has_extn, %i[session string], :int, false],
      [:smtp_session_extn_params, %i[session string buf size_t], :size_t, false],
      [:smtp_session_extn_count, [:session], :size_t, false],
      [:smtp_session_extn_name, %i[session size_t buf size_t], :size_t, false],
      [:smtp_session_rcpt_count, [:session], :size_t, false],
      [:smtp_session_rcpt_code, %i[session size_t buf size_t], :int, false],
      [:smtp_session_rcpt_data_code, %i[session size_t buf size_t], :int, false],
      [:smtp_session_rcpt_enhanced, %i[session size_t buf size_t], :size_t, false],
      [:smtp_session_failed_step, [:session], :int, false],
      [:smtp_session_outcome, [:session], :int, false],
      [:smtp_session_is_connected, [:session], :int, false],
      [:smtp_session_is_tls, [:session], :int, false],
      [:smtp_session_waits, [:session], :uint64, false],
      [:smtp_session_last_code, [:session], :int, false],
      [:smtp_session_last_reply, %i[session buf size_t], :size_t, false],
      [:smtp_session_last_enhanced, %i[session buf size_t], :size_t, false],
      [:smtp_session_last_error, %i[session buf size_t], :size_t, false]
    ].freeze

    # Functions this binding declares that the loaded library lacks (an
    # older libsmtpc): calling one raises Smtpc::NotSupportedError.
    MISSING = []

    FUNCTIONS.each do |name, args, ret, blocking|
      attach_function name, args, ret, blocking: blocking
    rescue FFI::NotFoundError
      MISSING << name
      define_singleton_method(name) do |*|
        raise Smtpc::NotSupportedError.new(-12, name.to_s, "the loaded libsmtpc #{smtpc_version} lacks #{name}")
      end
    end
    MISSING.freeze
  end
end
