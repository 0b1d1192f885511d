# frozen_string_literal: true

# Ruby binding of libsmtpc, an SMTP client library with Python smtplib's
# verbs, through the ffi gem. smtpc.h documents every call.
#
# Commands return a Smtpc::Reply (code, text) for any server answer; a
# library failure (a negative SMTPC_E_* code) raises an exception that
# includes Smtpc::Error and carries #code, #detail (smtp_session_last_error)
# and #call: Smtpc::TimeoutError is a Timeout::Error, connection failures
# are IOErrors, as net-smtp's are.
#
# Calls that wait on the network release the GVL, and Timeout.timeout /
# Thread#raise stop them through smtp_session_cancel (see Smtpc::Session).

require_relative 'smtpc/version'
require_relative 'smtpc/errors'
require_relative 'smtpc/ffi'
require_relative 'smtpc/session'
require_relative 'smtpc/message'

module Smtpc
  # SMTPC_STEP_*: which step of the last sendmail the server refused.
  STEP_NONE = 0
  STEP_MAIL = 1
  STEP_RCPT = 2
  STEP_DATA = 3
  STEP_MESSAGE = 4
  STEP_HELO = 5

  # Lowest TLS versions (Session#tls_min_version=).
  TLS_1_2 = 771
  TLS_1_3 = 772

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
end
