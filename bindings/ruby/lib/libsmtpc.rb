# frozen_string_literal: true

# The gem is named libsmtpc; `require 'smtpc'` and `require 'libsmtpc'` both load it.
require_relative 'smtpc'
