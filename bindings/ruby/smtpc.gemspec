# frozen_string_literal: true

require_relative 'lib/smtpc/version'

Gem::Specification.new do |s|
  s.name = 'libsmtpc'
  s.version = Smtpc::VERSION
  s.summary = "Ruby binding of libsmtpc, an SMTP client library with smtplib's verbs"
  s.description = 'Calls the libsmtpc C library (libsmtpc.so.0) through the ffi gem: ' \
                  'Smtpc::Session with connect, starttls, login/auth (XOAUTH2), sendmail with ' \
                  'per-recipient results and streamed IO bodies, pipelined batches, cancellable ' \
                  'calls that release the GVL.'
  s.authors = ['libsmtpc contributors']
  s.licenses = ['MIT', 'Apache-2.0']
  s.homepage = 'https://github.com/libsmtpc/libsmtpc'
  s.metadata = {
    'source_code_uri' => 'https://github.com/libsmtpc/libsmtpc/tree/main/bindings/ruby',
    'rubygems_mfa_required' => 'true'
  }
  s.files = Dir['lib/**/*.rb'] + ['README.md']
  s.require_paths = ['lib']
  s.required_ruby_version = '>= 2.7'
  s.add_dependency 'ffi', '~> 1.15'
  s.requirements << 'libsmtpc.so.0, the libsmtpc C library (make install; or set SMTPC_LIB)'
end
