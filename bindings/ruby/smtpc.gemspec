# frozen_string_literal: true

Gem::Specification.new do |s|
  s.name = 'smtpc'
  s.version = '0.1.0'
  s.summary = "Ruby binding of libsmtpc, an SMTP client library with smtplib's verbs"
  s.description = 'Calls the libsmtpc C library (libsmtpc.so.0) through the ffi gem: ' \
                  'Smtpc::Session with connect, ehlo, starttls, login, sendmail, vrfy, quit...'
  s.authors = ['libsmtpc contributors']
  s.license = 'MIT OR Apache-2.0'
  s.files = ['lib/smtpc.rb', 'README.md']
  s.require_paths = ['lib']
  s.required_ruby_version = '>= 2.7'
  s.add_dependency 'ffi', '~> 1.15'
  s.add_development_dependency 'minitest', '~> 5.0'
  s.requirements << 'libsmtpc.so.0 (the libsmtpc C library)'
end
