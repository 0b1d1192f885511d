# frozen_string_literal: true

module Smtpc
  # An RFC 5322 message built by the library (smtp_message): mailboxes,
  # subject, headers, text and HTML bodies, attachments, DKIM. Send it with
  # Session#send_mail_message. Setters raise Smtpc::InvalidArgumentError
  # for a refused value (header injection, a bad address...).
  class Message
    def initialize
      raw = C.smtp_message_new
      raise NoMemoryError, 'smtp_message_new failed' if raw.null?

      @ptr = FFI::AutoPointer.new(raw, C.method(:smtp_message_free))
    end

    # The C handle (for Session#send_mail_message).
    def handle
      @ptr || FFI::Pointer::NULL
    end

    def close
      @ptr&.free
      @ptr = nil
    end

    def from(address, name = nil) = mailbox(:smtp_message_set_from, address, name)
    def sender(address, name = nil) = mailbox(:smtp_message_set_sender, address, name)
    def to(address, name = nil) = mailbox(:smtp_message_add_to, address, name)
    def cc(address, name = nil) = mailbox(:smtp_message_add_cc, address, name)
    def bcc(address, name = nil) = mailbox(:smtp_message_add_bcc, address, name)
    def reply_to(address, name = nil) = mailbox(:smtp_message_add_reply_to, address, name)

    def subject(text)
      check(:smtp_message_set_subject, C.smtp_message_set_subject(handle, str(text)))
    end

    def header(name, value)
      check(:smtp_message_add_header, C.smtp_message_add_header(handle, str(name), str(value)))
    end

    def text(body) = bytes_call(:smtp_message_set_text, body)
    def html(body) = bytes_call(:smtp_message_set_html, body)
    def raw(bytes) = bytes_call(:smtp_message_set_raw, bytes)

    # Attaches bytes (content_type nil: application/octet-stream).
    def attach(data, filename:, content_type: nil)
      bytes_call(:smtp_message_attach, data, str(content_type), str(filename))
    end

    # Attaches a file, streamed when the message is sent.
    def attach_file(path, content_type: nil, filename: nil)
      check(:smtp_message_attach_file, C.smtp_message_attach_file(handle, str(path), str(content_type), str(filename)))
    end

    # An inline part for the HTML body, referenced as cid:content_id.
    def inline(data, content_id:, content_type: nil)
      bytes_call(:smtp_message_add_inline, data, str(content_type), str(content_id))
    end

    def inline_file(path, content_id:, content_type: nil)
      check(:smtp_message_add_inline_file,
            C.smtp_message_add_inline_file(handle, str(path), str(content_type), str(content_id)))
    end

    # DKIM-signs the message when rendered or sent; domain nil stops signing.
    def dkim(domain:, selector: nil, key_pem: nil, headers: nil)
      check(:smtp_message_set_dkim, C.smtp_message_set_dkim(handle, str(domain), str(selector), str(key_pem), str(headers)))
    end

    # The message as Session#send_mail_message sends it (a binary String).
    def render
      n = C.smtp_message_render(handle, nil, 0)
      raise InvalidArgumentError.new(CODES[:E_INVALID], 'smtp_message_render', last_error) if n.zero?

      buf = FFI::MemoryPointer.new(:char, n + 1)
      got = C.smtp_message_render(handle, buf, n + 1)
      buf.get_bytes(0, [got, n].min)
    end
    alias to_s render

    def last_error
      buf = FFI::MemoryPointer.new(:char, 1024)
      n = C.smtp_message_last_error(handle, buf, 1024)
      if n >= 1024
        buf = FFI::MemoryPointer.new(:char, n + 1)
        C.smtp_message_last_error(handle, buf, n + 1)
      end
      buf.read_string.force_encoding(Encoding::UTF_8)
    end

    private

    def str(value)
      return nil if value.nil?

      s = value.to_s
      raise InvalidArgumentError.new(CODES[:E_INVALID], nil, 'argument contains a NUL byte') if s.include?("\0")

      s
    end

    def mailbox(call, address, name)
      check(call, C.send(call, handle, str(address), str(name)))
    end

    def bytes_call(call, data, *rest)
      bytes = data.to_s.b
      mem = FFI::MemoryPointer.new(:uint8, [bytes.bytesize, 1].max)
      mem.put_bytes(0, bytes)
      check(call, C.send(call, handle, mem, bytes.bytesize, *rest))
    end

    def check(call, rc)
      raise Error.class_for(rc).new(rc, call.to_s, last_error) if rc.negative?

      self
    end
  end
end
