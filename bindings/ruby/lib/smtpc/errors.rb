# frozen_string_literal: true

require 'timeout'

module Smtpc
  # Every library failure (a negative SMTPC_E_* code) raises an exception
  # that includes Smtpc::Error, so `rescue Smtpc::Error` catches them all,
  # while each also sits where Ruby code expects it, as net-smtp's do:
  # TimeoutError is a Timeout::Error, the connection failures (I/O, closed,
  # connect, resolve, TLS, malformed reply) are IOErrors, an invalid
  # argument is an ArgumentError. #code is the SMTPC_E_* value, #detail the
  # library's message for it ("" if none), #call the C function.
  module Error
    attr_reader :code, :detail, :call
    # A batch call's results when its connection failed (see Session#send_batch).
    attr_accessor :results

    def initialize(code = nil, call = nil, detail = '')
      @code = code
      @call = call
      @detail = detail.to_s
      msg = +"#{code ? Smtpc.strerror(code) : 'error'} (#{code})"
      msg << ": #{@detail}" unless @detail.empty?
      msg.prepend("#{call}: ") if call
      super(msg)
    end

    # The exception class for an SMTPC_E_* code.
    def self.class_for(code)
      CLASSES.fetch(code, LibraryError)
    end
  end

  # The base class of the failures that are neither timeouts, I/O errors
  # nor argument errors.
  class LibraryError < StandardError; include Error; end

  class TimeoutError < Timeout::Error; include Error; end       # SMTPC_E_TIMEOUT
  class IOError < ::IOError; include Error; end                 # SMTPC_E_IO
  class ClosedError < ::EOFError; include Error; end            # SMTPC_E_CLOSED (an IOError)
  class ConnectError < IOError; end                             # SMTPC_E_CONNECT
  class ResolveError < IOError; end                             # SMTPC_E_RESOLVE
  class TLSError < IOError; end                                 # SMTPC_E_TLS
  class TLSVerifyError < TLSError; end                          # SMTPC_E_TLS_VERIFY
  class ProtocolError < IOError; end                            # SMTPC_E_PROTOCOL
  class InvalidArgumentError < ::ArgumentError; include Error; end # SMTPC_E_INVALID
  class NullPointerError < LibraryError; end                    # SMTPC_E_NULL (a closed session)
  class StateError < LibraryError; end                          # SMTPC_E_STATE
  class NotSupportedError < LibraryError; end                   # SMTPC_E_NOT_SUPPORTED
  class AuthMechanismError < LibraryError; end                  # SMTPC_E_AUTH_MECH
  class TooLargeError < LibraryError; end                       # SMTPC_E_TOO_LARGE
  class InsecureError < LibraryError; end                       # SMTPC_E_INSECURE
  class PanicError < LibraryError; end                          # SMTPC_E_PANIC
  class CallbackError < LibraryError; end                       # SMTPC_E_CALLBACK
  class CancelledError < LibraryError; end                      # SMTPC_E_CANCELLED
  class BusyError < LibraryError; end                           # SMTPC_E_BUSY

  # SMTPC_E_* values (the header's, checked by the tests).
  CODES = {
    E_NULL: -1, E_INVALID: -2, E_STATE: -3, E_RESOLVE: -4, E_CONNECT: -5, E_TIMEOUT: -6, E_IO: -7,
    E_CLOSED: -8, E_TLS: -9, E_TLS_VERIFY: -10, E_PROTOCOL: -11, E_NOT_SUPPORTED: -12,
    E_AUTH_MECH: -13, E_TOO_LARGE: -14, E_INSECURE: -15, E_PANIC: -16, E_CALLBACK: -17,
    E_CANCELLED: -18, E_BUSY: -19
  }.freeze

  module Error
    CLASSES = {
      -1 => NullPointerError, -2 => InvalidArgumentError, -3 => StateError, -4 => ResolveError,
      -5 => ConnectError, -6 => TimeoutError, -7 => IOError, -8 => ClosedError, -9 => TLSError,
      -10 => TLSVerifyError, -11 => ProtocolError, -12 => NotSupportedError, -13 => AuthMechanismError,
      -14 => TooLargeError, -15 => InsecureError, -16 => PanicError, -17 => CallbackError,
      -18 => CancelledError, -19 => BusyError
    }.freeze
  end
end
