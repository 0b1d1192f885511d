# frozen_string_literal: true

module Smtpc
  # The gem's version; Smtpc.version is the C library's.
  VERSION = '0.1.0'
end
