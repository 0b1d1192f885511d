// smtpc.hpp — header-only C++17 RAII binding of libsmtpc (smtpc.h).
//
//   smtpc::session s;                      // owns one smtp_session, move-only
//   smtpc::reply r = s.connect("mail.example.com", 587);   // {code, text}
//
// Installed beside smtpc.h by `make install`; build with
//   c++ -std=c++17 app.cpp $(pkg-config --cflags --libs smtpc)
//
// Server answers of any class come back as smtpc::reply; library failures
// (the C API's negative SMTPC_E_* codes) are thrown as smtpc::error, whose
// code() is that value, what() is "<call>: <smtpc_strerror>: <last_error>"
// and detail() is smtp_session_last_error's text alone.
//
// Strings are taken as std::string_view and copied to NUL-terminated
// storage; one containing a NUL byte is refused with SMTPC_E_INVALID. A
// session is used by one thread at a time, as the C handle; only cancel()
// may be called from another thread while a call is in flight.
#ifndef SMTPC_HPP
#define SMTPC_HPP

#include <smtpc.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <initializer_list>
#include <istream>
#include <iterator>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace smtpc {

/// A server's answer: its code (>= 100) and text (lines joined by '\n').
struct reply {
    int code = 0;
    std::string text;
};

/// The server's answer to one recipient.
struct rcpt_reply {
    int code = 0;
    std::string text;
    std::string enhanced;  ///< e.g. "5.1.1"; "" when none
};

/// Where a message stands after a send (SMTPC_OUTCOME_*).
enum class outcome : int {
    none = SMTPC_OUTCOME_NONE,
    accepted = SMTPC_OUTCOME_ACCEPTED,  ///< the final reply to the whole message was 2xx
    refused = SMTPC_OUTCOME_REFUSED,    ///< the server refused it (see failed_step)
    not_sent = SMTPC_OUTCOME_NOT_SENT,  ///< certainly not delivered: safe to send again
    unknown = SMTPC_OUTCOME_UNKNOWN,    ///< end of data sent, no final reply: may be delivered
};

/// When the session uses TLS (SMTPC_TLS_*).
enum class tls_policy : int {
    manual = SMTPC_TLS_MANUAL,
    opportunistic = SMTPC_TLS_OPPORTUNISTIC,
    required = SMTPC_TLS_REQUIRED,
    implicit = SMTPC_TLS_IMPLICIT,
};

/// One message of a batch.
struct message_data {
    std::string from;
    std::vector<std::string> to;
    std::string body;
};

/// What the server said about one message of a batch.
struct batch_result {
    int code = 0;  ///< the final or refusing reply; < 0: no answer (see result)
    std::string text;
    smtpc::outcome result = outcome::none;
    int failed_step = SMTPC_STEP_NONE;
    std::vector<reply> recipients;
};

/// The static English description of an SMTPC_* or reply code.
[[nodiscard]] inline std::string_view strerror(int code) noexcept { return smtpc_strerror(code); }

/// The library's version, e.g. "0.1.0".
[[nodiscard]] inline std::string_view version() noexcept { return smtpc_version(); }

/// A library failure: a negative SMTPC_E_* code.
class error : public std::runtime_error {
public:
    error(int code, std::string_view call, std::string detail)
        : std::runtime_error(describe(code, call, detail)), code_(code), detail_(std::move(detail)) {}

    /// The SMTPC_E_* code (negative).
    [[nodiscard]] int code() const noexcept { return code_; }
    /// smtp_session_last_error's message ("" if the library gave none).
    [[nodiscard]] const std::string &detail() const noexcept { return detail_; }

private:
    static std::string describe(int code, std::string_view call, const std::string &detail) {
        std::string m(call);
        m += ": ";
        m += smtpc_strerror(code);
        if (!detail.empty()) {
            m += ": ";
            m += detail;
        }
        return m;
    }

    int code_;
    std::string detail_;
};

namespace detail {

/// The size of the first buffer every reply is read into.
inline constexpr std::size_t reply_cap = 1024;

/// A NUL-terminated copy of a string_view (refusing embedded NULs).
inline std::string cstr(std::string_view v, const char *call) {
    if (v.find('\0') != std::string_view::npos) {
        throw error(SMTPC_E_INVALID, call, "argument contains a NUL byte");
    }
    return std::string(v);
}

/// NULL for an absent optional string, else a NUL-terminated copy.
class opt_cstr {
public:
    opt_cstr(const std::optional<std::string_view> &v, const char *call) {
        if (v) {
            s_ = cstr(*v, call);
            set_ = true;
        }
    }
    [[nodiscard]] const char *get() const noexcept { return set_ ? s_.c_str() : nullptr; }

private:
    std::string s_;
    bool set_ = false;
};

/// Copies of strings and the array of their pointers, for `const char *const *`.
class cstr_array {
public:
    template <class Range>
    cstr_array(const Range &values, const char *call) {
        for (const auto &v : values) {
            copies_.push_back(cstr(std::string_view(v), call));
        }
        ptrs_.reserve(copies_.size());
        for (const auto &c : copies_) {
            ptrs_.push_back(c.c_str());
        }
    }
    [[nodiscard]] const char *const *data() const noexcept { return ptrs_.empty() ? nullptr : ptrs_.data(); }
    [[nodiscard]] std::size_t size() const noexcept { return ptrs_.size(); }

private:
    std::vector<std::string> copies_;
    std::vector<const char *> ptrs_;
};

/// Reads a text the C API writes snprintf-style (returns the full length).
template <class F>
std::string sized_text(F &&fill) {
    std::string out(reply_cap, '\0');
    std::size_t n = fill(out.data(), out.size());
    if (n >= out.size()) {
        out.assign(n + 1, '\0');
        n = fill(out.data(), out.size());
        if (n >= out.size()) {
            n = out.size() - 1;
        }
    }
    out.resize(n);
    return out;
}

/// {code, text} from a call that gives no length: a text that may have
/// been cut is read again into a buffer that holds any reply.
template <class F>
reply code_text(F &&fill) {
    std::string text(reply_cap, '\0');
    int rc = fill(text.data(), text.size());
    if (rc >= 0 && std::char_traits<char>::length(text.c_str()) + 4 >= reply_cap) {
        text.assign(SMTPC_MAX_REPLY_BYTES + 1, '\0');
        rc = fill(text.data(), text.size());
    }
    text.resize(std::char_traits<char>::length(text.c_str()));
    return reply{rc, std::move(text)};
}

/// Lives on the heap so that a moved session keeps the pointers C holds
/// and the mutex cancel() takes.
struct state {
    std::function<void(std::string_view)> trace;
    std::exception_ptr pending;  ///< thrown by a callback, rethrown after the call
    std::mutex mu;               ///< guards the three flags below
    bool inflight = false;       ///< a C call is running on the handle
    bool cancelled = false;      ///< cancel() reached that call
    bool stale = false;          ///< a cancel may have landed after the last call returned
};

extern "C" inline void smtpc_hpp_trace_trampoline(void *user, const char *line) {
    auto *st = static_cast<state *>(user);
    if (st->pending || !st->trace) {
        return;  // an earlier line already failed during this call
    }
    try {
        st->trace(line != nullptr ? std::string_view(line) : std::string_view());
    } catch (...) {
        // Exceptions must not unwind through the C library: keep it and
        // rethrow once the library call has returned.
        st->pending = std::current_exception();
    }
}

/// A body source for smtp_session_sendmail_cb.
struct reader {
    std::function<std::size_t(char *, std::size_t)> read;
    std::exception_ptr pending;
};

extern "C" inline std::int64_t smtpc_hpp_read_trampoline(void *user, char *buf, std::size_t cap) {
    auto *r = static_cast<reader *>(user);
    try {
        return static_cast<std::int64_t>(r->read(buf, cap));
    } catch (...) {
        r->pending = std::current_exception();
        return -1;  // the library closes the connection: nothing partial is delivered
    }
}

/// A caller's SASL mechanism for smtp_session_auth_callback.
struct sasl {
    std::function<std::optional<std::string>(std::optional<std::string_view>)> step;
    std::optional<std::string> held;  ///< a response that did not fit: the library asks again
    std::exception_ptr pending;
};

extern "C" inline std::int64_t smtpc_hpp_sasl_trampoline(void *user, const char *challenge, std::size_t challenge_len,
                                                        char *response, std::size_t response_cap) {
    auto *m = static_cast<sasl *>(user);
    try {
        std::string out;
        if (m->held) {
            out = std::move(*m->held);
            m->held.reset();
        } else {
            std::optional<std::string_view> c;
            if (challenge != nullptr) {
                c = std::string_view(challenge, challenge_len);
            }
            std::optional<std::string> r = m->step(c);
            if (!r && challenge == nullptr) {
                return SMTPC_SASL_NO_RESPONSE;
            }
            out = r ? std::move(*r) : std::string();
        }
        const auto len = static_cast<std::int64_t>(out.size());
        if (out.size() > response_cap) {
            m->held = std::move(out);
        } else {
            out.copy(response, out.size());
        }
        return len;
    } catch (...) {
        m->pending = std::current_exception();
        return -1;
    }
}

/// Hands the messages of a range to smtp_session_batch_send_cb one by one.
struct batch_source {
    std::function<const message_data *()> next;
    std::vector<const char *> to;
    std::exception_ptr pending;
};

extern "C" inline int smtpc_hpp_next_trampoline(void *user, const char **from, const char *const **to,
                                                std::size_t *n_to, const char **msg, std::size_t *msg_len) {
    auto *b = static_cast<batch_source *>(user);
    try {
        const message_data *m = b->next();
        if (m == nullptr) {
            return 0;
        }
        b->to.clear();
        for (const auto &a : m->to) {
            b->to.push_back(a.c_str());
        }
        *from = m->from.c_str();
        *to = b->to.empty() ? nullptr : b->to.data();
        *n_to = b->to.size();
        *msg = m->body.data();
        *msg_len = m->body.size();
        return 1;
    } catch (...) {
        b->pending = std::current_exception();
        return -1;
    }
}

}  // namespace detail

/// An RFC 5322 message built by the library (smtp_message): mailboxes,
/// subject, headers, text and HTML bodies, attachments, DKIM. Move-only.
/// Setters return *this and throw smtpc::error for a refused value
/// (header injection, a bad address...).
class message {
public:
    message() : m_(smtp_message_new()) {
        if (m_ == nullptr) {
            throw std::bad_alloc();
        }
    }
    ~message() { smtp_message_free(m_); }
    message(message &&o) noexcept : m_(std::exchange(o.m_, nullptr)) {}
    message &operator=(message &&o) noexcept {
        if (this != &o) {
            smtp_message_free(m_);
            m_ = std::exchange(o.m_, nullptr);
        }
        return *this;
    }
    message(const message &) = delete;
    message &operator=(const message &) = delete;

    [[nodiscard]] smtp_message *native_handle() const noexcept { return m_; }

    message &from(std::string_view address, std::optional<std::string_view> name = std::nullopt) {
        return mailbox("smtp_message_set_from", &smtp_message_set_from, address, name);
    }
    message &sender(std::string_view address, std::optional<std::string_view> name = std::nullopt) {
        return mailbox("smtp_message_set_sender", &smtp_message_set_sender, address, name);
    }
    message &to(std::string_view address, std::optional<std::string_view> name = std::nullopt) {
        return mailbox("smtp_message_add_to", &smtp_message_add_to, address, name);
    }
    message &cc(std::string_view address, std::optional<std::string_view> name = std::nullopt) {
        return mailbox("smtp_message_add_cc", &smtp_message_add_cc, address, name);
    }
    message &bcc(std::string_view address, std::optional<std::string_view> name = std::nullopt) {
        return mailbox("smtp_message_add_bcc", &smtp_message_add_bcc, address, name);
    }
    message &reply_to(std::string_view address, std::optional<std::string_view> name = std::nullopt) {
        return mailbox("smtp_message_add_reply_to", &smtp_message_add_reply_to, address, name);
    }
    message &subject(std::string_view text) {
        auto t = detail::cstr(text, "smtp_message_set_subject");
        return check("smtp_message_set_subject", smtp_message_set_subject(m_, t.c_str()));
    }
    message &header(std::string_view name, std::string_view value) {
        auto n = detail::cstr(name, "smtp_message_add_header");
        auto v = detail::cstr(value, "smtp_message_add_header");
        return check("smtp_message_add_header", smtp_message_add_header(m_, n.c_str(), v.c_str()));
    }
    message &text(std::string_view body) {
        return check("smtp_message_set_text", smtp_message_set_text(m_, body.data(), body.size()));
    }
    message &html(std::string_view body) {
        return check("smtp_message_set_html", smtp_message_set_html(m_, body.data(), body.size()));
    }
    message &raw(std::string_view bytes) {
        return check("smtp_message_set_raw", smtp_message_set_raw(m_, bytes.data(), bytes.size()));
    }
    /// Attaches bytes; no content type: application/octet-stream.
    message &attach(std::string_view data, std::string_view filename,
                    std::optional<std::string_view> content_type = std::nullopt) {
        auto f = detail::cstr(filename, "smtp_message_attach");
        detail::opt_cstr ct(content_type, "smtp_message_attach");
        return check("smtp_message_attach", smtp_message_attach(m_, data.data(), data.size(), ct.get(), f.c_str()));
    }
    /// Attaches a file, streamed when the message is sent.
    message &attach_file(std::string_view path, std::optional<std::string_view> content_type = std::nullopt,
                         std::optional<std::string_view> filename = std::nullopt) {
        auto p = detail::cstr(path, "smtp_message_attach_file");
        detail::opt_cstr ct(content_type, "smtp_message_attach_file");
        detail::opt_cstr f(filename, "smtp_message_attach_file");
        return check("smtp_message_attach_file", smtp_message_attach_file(m_, p.c_str(), ct.get(), f.get()));
    }
    /// An inline part for the HTML body, referenced as cid:content_id.
    message &inline_part(std::string_view data, std::string_view content_id,
                         std::optional<std::string_view> content_type = std::nullopt) {
        auto id = detail::cstr(content_id, "smtp_message_add_inline");
        detail::opt_cstr ct(content_type, "smtp_message_add_inline");
        return check("smtp_message_add_inline",
                     smtp_message_add_inline(m_, data.data(), data.size(), ct.get(), id.c_str()));
    }
    message &inline_file(std::string_view path, std::string_view content_id,
                         std::optional<std::string_view> content_type = std::nullopt) {
        auto p = detail::cstr(path, "smtp_message_add_inline_file");
        auto id = detail::cstr(content_id, "smtp_message_add_inline_file");
        detail::opt_cstr ct(content_type, "smtp_message_add_inline_file");
        return check("smtp_message_add_inline_file",
                     smtp_message_add_inline_file(m_, p.c_str(), ct.get(), id.c_str()));
    }
    /// DKIM-signs the message when rendered or sent; no domain stops signing.
    message &dkim(std::optional<std::string_view> domain, std::optional<std::string_view> selector = std::nullopt,
                  std::optional<std::string_view> key_pem = std::nullopt,
                  std::optional<std::string_view> headers = std::nullopt) {
        detail::opt_cstr d(domain, "smtp_message_set_dkim");
        detail::opt_cstr s(selector, "smtp_message_set_dkim");
        detail::opt_cstr k(key_pem, "smtp_message_set_dkim");
        detail::opt_cstr h(headers, "smtp_message_set_dkim");
        return check("smtp_message_set_dkim", smtp_message_set_dkim(m_, d.get(), s.get(), k.get(), h.get()));
    }
    /// The message as session::send_message sends it.
    [[nodiscard]] std::string render() const {
        const std::size_t n = smtp_message_render(m_, nullptr, 0);
        if (n == 0) {
            throw error(SMTPC_E_INVALID, "smtp_message_render", last_error());
        }
        std::string out(n + 1, '\0');
        const std::size_t got = smtp_message_render(m_, out.data(), out.size());
        out.resize(got < n ? got : n);
        return out;
    }
    [[nodiscard]] std::string last_error() const {
        return detail::sized_text([&](char *b, std::size_t n) { return smtp_message_last_error(m_, b, n); });
    }

private:
    message &check(const char *call, int rc) {
        if (rc < 0) {
            throw error(rc, call, last_error());
        }
        return *this;
    }
    message &mailbox(const char *call, int (*fn)(smtp_message *, const char *, const char *), std::string_view address,
                     std::optional<std::string_view> name) {
        auto a = detail::cstr(address, call);
        detail::opt_cstr n(name, call);
        return check(call, fn(m_, a.c_str(), n.get()));
    }

    smtp_message *m_;
};

/// One SMTP client connection handle (smtp_session). Move-only; the
/// destructor frees the handle (closing the connection without QUIT).
class session {
public:
    session() : s_(smtp_session_new()), st_(std::make_unique<detail::state>()) {
        if (s_ == nullptr) {
            throw std::bad_alloc();
        }
    }
    ~session() { smtp_session_free(s_); }

    session(session &&o) noexcept : s_(std::exchange(o.s_, nullptr)), st_(std::move(o.st_)) {}
    session &operator=(session &&o) noexcept {
        if (this != &o) {
            smtp_session_free(s_);
            s_ = std::exchange(o.s_, nullptr);
            st_ = std::move(o.st_);
        }
        return *this;
    }
    session(const session &) = delete;
    session &operator=(const session &) = delete;

    /// The C handle, still owned by this object (nullptr once moved from).
    [[nodiscard]] smtp_session *native_handle() const noexcept { return s_; }
    /// Gives up ownership of the C handle; the caller frees it. Drop any
    /// trace callback first (set_trace(nullptr)): it lives in this object.
    [[nodiscard]] smtp_session *release() noexcept { return std::exchange(s_, nullptr); }

    /// Stops the call in flight on this session, from any thread: it
    /// throws smtpc::error(SMTPC_E_CANCELLED) promptly and the connection
    /// is closed (the session can connect again). Without a call in flight,
    /// does nothing.
    void cancel() noexcept {
        if (!st_) {
            return;
        }
        const std::lock_guard<std::mutex> lock(st_->mu);
        if (st_->inflight && s_ != nullptr) {
            smtp_session_cancel(s_);
            st_->cancelled = true;
        }
    }

    // ---- settings -------------------------------------------------------

    void set_timeout_ms(std::uint32_t ms) { check("smtp_session_set_timeout_ms", smtp_session_set_timeout_ms(s_, ms)); }
    /// Bound on writing one whole message body (0: the timeout).
    void set_body_timeout_ms(std::uint32_t ms) {
        check("smtp_session_set_body_timeout_ms", smtp_session_set_body_timeout_ms(s_, ms));
    }
    void set_debuglevel(int level) {
        check("smtp_session_set_debuglevel", smtp_session_set_debuglevel(s_, static_cast<std::int32_t>(level)));
    }
    /// Transcript lines go to fn instead of stderr (debuglevel decides which
    /// lines exist). An exception thrown by fn is rethrown by the call that
    /// produced the line. An empty fn restores stderr.
    void set_trace(std::function<void(std::string_view)> fn) {
        if (!fn) {
            check("smtp_session_set_trace", smtp_session_set_trace(s_, nullptr, nullptr));
            st_->trace = nullptr;
            return;
        }
        st_->trace = std::move(fn);
        check("smtp_session_set_trace", smtp_session_set_trace(s_, &detail::smtpc_hpp_trace_trampoline, st_.get()));
    }
    void set_tls_verify(bool on) { check("smtp_session_set_tls_verify", smtp_session_set_tls_verify(s_, on ? 1 : 0)); }
    void set_tls_policy(tls_policy p) {
        check("smtp_session_set_tls_policy", smtp_session_set_tls_policy(s_, static_cast<int>(p)));
    }
    void set_allow_insecure_auth(bool on) {
        check("smtp_session_set_allow_insecure_auth", smtp_session_set_allow_insecure_auth(s_, on ? 1 : 0));
    }
    /// PEM file of trusted CAs; no value: back to the system's roots.
    void set_ca_file(std::optional<std::string_view> path) { opt_setter("smtp_session_set_ca_file", &smtp_session_set_ca_file, path); }
    /// Directory of trusted PEM certificates; no value: back to the default.
    void set_ca_dir(std::optional<std::string_view> path) { opt_setter("smtp_session_set_ca_dir", &smtp_session_set_ca_dir, path); }
    /// A client certificate (PEM; no key when it is in the certificate file).
    void set_client_cert(std::optional<std::string_view> cert_path, std::optional<std::string_view> key_path = std::nullopt) {
        detail::opt_cstr c(cert_path, "smtp_session_set_client_cert");
        detail::opt_cstr k(key_path, "smtp_session_set_client_cert");
        check("smtp_session_set_client_cert", smtp_session_set_client_cert(s_, c.get(), k.get()));
    }
    /// Lowest TLS version: SMTPC_TLS_1_2, SMTPC_TLS_1_3, or 0 (default).
    void set_tls_min_version(int version) {
        check("smtp_session_set_tls_min_version", smtp_session_set_tls_min_version(s_, static_cast<std::int32_t>(version)));
    }
    /// The name the certificate is verified against (and SNI); none: the host.
    void set_tls_server_name(std::optional<std::string_view> name) {
        opt_setter("smtp_session_set_tls_server_name", &smtp_session_set_tls_server_name, name);
    }
    /// The EHLO/HELO name used by default; no value: the library's.
    void set_local_hostname(std::optional<std::string_view> name) {
        opt_setter("smtp_session_set_local_hostname", &smtp_session_set_local_hostname, name);
    }
    /// Local IP address (and port, 0: any) to connect from; no value clears.
    void set_source_address(std::optional<std::string_view> address, std::uint16_t port = 0) {
        detail::opt_cstr a(address, "smtp_session_set_source_address");
        check("smtp_session_set_source_address", smtp_session_set_source_address(s_, a.get(), port));
    }
    void set_pipelining(bool on) { check("smtp_session_set_pipelining", smtp_session_set_pipelining(s_, on ? 1 : 0)); }
    void set_chunking(bool on) { check("smtp_session_set_chunking", smtp_session_set_chunking(s_, on ? 1 : 0)); }
    void set_binarymime(bool on) { check("smtp_session_set_binarymime", smtp_session_set_binarymime(s_, on ? 1 : 0)); }
    /// DSN (RFC 3461) for the next messages; all empty turns it off.
    void set_dsn(std::optional<std::string_view> ret, std::optional<std::string_view> envid,
                 std::optional<std::string_view> notify, bool orcpt) {
        detail::opt_cstr r(ret, "smtp_session_set_dsn");
        detail::opt_cstr e(envid, "smtp_session_set_dsn");
        detail::opt_cstr n(notify, "smtp_session_set_dsn");
        check("smtp_session_set_dsn", smtp_session_set_dsn(s_, r.get(), e.get(), n.get(), orcpt ? 1 : 0));
    }
    /// ESMTP parameters added to every MAIL FROM (smtplib's mail_options).
    void set_mail_options(const std::vector<std::string> &opts) {
        detail::cstr_array a(opts, "smtp_session_set_mail_options");
        check("smtp_session_set_mail_options", smtp_session_set_mail_options(s_, a.data(), a.size()));
    }
    /// ESMTP parameters added to every RCPT TO (smtplib's rcpt_options).
    void set_rcpt_options(const std::vector<std::string> &opts) {
        detail::cstr_array a(opts, "smtp_session_set_rcpt_options");
        check("smtp_session_set_rcpt_options", smtp_session_set_rcpt_options(s_, a.data(), a.size()));
    }

    // ---- commands -------------------------------------------------------

    [[nodiscard]] reply connect(std::string_view host, std::uint16_t port) {
        auto h = detail::cstr(host, "smtp_session_connect");
        return command("smtp_session_connect",
                       [&](char *b, std::size_t n) { return smtp_session_connect(s_, h.c_str(), port, b, n); });
    }
    [[nodiscard]] reply connect_tls(std::string_view host, std::uint16_t port) {
        auto h = detail::cstr(host, "smtp_session_connect_tls");
        return command("smtp_session_connect_tls",
                       [&](char *b, std::size_t n) { return smtp_session_connect_tls(s_, h.c_str(), port, b, n); });
    }
    [[nodiscard]] reply helo(std::optional<std::string_view> name = std::nullopt) {
        detail::opt_cstr v(name, "smtp_session_helo");
        return command("smtp_session_helo", [&](char *b, std::size_t n) { return smtp_session_helo(s_, v.get(), b, n); });
    }
    [[nodiscard]] reply ehlo(std::optional<std::string_view> name = std::nullopt) {
        detail::opt_cstr v(name, "smtp_session_ehlo");
        return command("smtp_session_ehlo", [&](char *b, std::size_t n) { return smtp_session_ehlo(s_, v.get(), b, n); });
    }
    /// Switches to LMTP and sends LHLO; see rcpt_data_replies().
    [[nodiscard]] reply lhlo(std::optional<std::string_view> name = std::nullopt) {
        detail::opt_cstr v(name, "smtp_session_lhlo");
        return command("smtp_session_lhlo", [&](char *b, std::size_t n) { return smtp_session_lhlo(s_, v.get(), b, n); });
    }
    /// Whether the last EHLO listed the extension (case-insensitive).
    [[nodiscard]] bool has_extn(std::string_view name) const {
        auto v = detail::cstr(name, "smtp_session_has_extn");
        return smtp_session_has_extn(s_, v.c_str()) == 1;
    }
    /// The extension's parameters ("" when it has none); throws
    /// SMTPC_E_NOT_SUPPORTED when the last EHLO did not list it.
    [[nodiscard]] std::string extn_params(std::string_view name) const {
        auto v = detail::cstr(name, "smtp_session_extn_params");
        if (smtp_session_has_extn(s_, v.c_str()) != 1) {
            throw error(s_ == nullptr ? SMTPC_E_NULL : SMTPC_E_NOT_SUPPORTED, "smtp_session_extn_params",
                        "the last EHLO did not list " + v);
        }
        return detail::sized_text([&](char *b, std::size_t n) { return smtp_session_extn_params(s_, v.c_str(), b, n); });
    }
    /// The last EHLO's extensions {keyword, parameters}, in the server's order.
    [[nodiscard]] std::vector<std::pair<std::string, std::string>> extensions() const {
        std::vector<std::pair<std::string, std::string>> out;
        const std::size_t count = smtp_session_extn_count(s_);
        for (std::size_t i = 0; i < count; ++i) {
            std::string name = detail::sized_text([&](char *b, std::size_t n) { return smtp_session_extn_name(s_, i, b, n); });
            std::string params = extn_params(name);
            out.emplace_back(std::move(name), std::move(params));
        }
        return out;
    }
    [[nodiscard]] reply starttls() {
        return command("smtp_session_starttls", [&](char *b, std::size_t n) { return smtp_session_starttls(s_, b, n); });
    }
    [[nodiscard]] reply login(std::string_view user, std::string_view password) {
        auto u = detail::cstr(user, "smtp_session_login");
        auto p = detail::cstr(password, "smtp_session_login");
        return command("smtp_session_login",
                       [&](char *b, std::size_t n) { return smtp_session_login(s_, u.c_str(), p.c_str(), b, n); });
    }
    /// One mechanism: "PLAIN", "LOGIN", "CRAM-MD5" or "XOAUTH2" (the secret
    /// is then the OAuth 2.0 access token).
    [[nodiscard]] reply auth(std::string_view mechanism, std::string_view user, std::string_view secret) {
        auto m = detail::cstr(mechanism, "smtp_session_auth");
        auto u = detail::cstr(user, "smtp_session_auth");
        auto s = detail::cstr(secret, "smtp_session_auth");
        return command("smtp_session_auth", [&](char *b, std::size_t n) {
            return smtp_session_auth(s_, m.c_str(), u.c_str(), s.c_str(), b, n);
        });
    }
    /// Authenticates with a mechanism of the caller's (smtplib's auth(mechanism,
    /// authobject)): step(nullopt) gives the initial response (nullopt: the
    /// mechanism has none), then step(challenge) each answer; the library
    /// does the base64 and the AUTH exchange. An exception thrown by step
    /// aborts the exchange and is rethrown.
    [[nodiscard]] reply auth_callback(
        std::string_view mechanism,
        std::function<std::optional<std::string>(std::optional<std::string_view>)> step) {
        auto m = detail::cstr(mechanism, "smtp_session_auth_callback");
        detail::sasl cb{std::move(step), std::nullopt, nullptr};
        try {
            return command("smtp_session_auth_callback", [&](char *b, std::size_t n) {
                return smtp_session_auth_callback(s_, m.c_str(), &detail::smtpc_hpp_sasl_trampoline, &cb, b, n);
            });
        } catch (const error &) {
            if (cb.pending) {
                std::rethrow_exception(cb.pending);
            }
            throw;
        }
    }
    /// smtplib's initial_response_ok (default true).
    void set_initial_response(bool on) {
        check("smtp_session_set_initial_response", smtp_session_set_initial_response(s_, on ? 1 : 0));
    }
    /// Sends msg (bytes; line ends become CRLF) from `from` to every address
    /// in `to`. The reply is the final one (250 even if some recipients were
    /// refused: see recipients()) or the refusing one; after an error,
    /// result() tells whether the message may have been delivered.
    template <class Range>
    [[nodiscard]] reply sendmail(std::string_view from, const Range &to, std::string_view msg) {
        auto f = detail::cstr(from, "smtp_session_sendmail");
        detail::cstr_array t(to, "smtp_session_sendmail");
        return command("smtp_session_sendmail", [&](char *b, std::size_t n) {
            return smtp_session_sendmail(s_, f.c_str(), t.data(), t.size(), msg.data(), msg.size(), b, n);
        });
    }
    [[nodiscard]] reply sendmail(std::string_view from, std::initializer_list<std::string_view> to, std::string_view msg) {
        return sendmail<std::initializer_list<std::string_view>>(from, to, msg);
    }
    /// Streams the message from read(buf, cap), which fills up to cap bytes
    /// and returns how many (0 at the end; throw to abort: the connection is
    /// closed before the end of data, nothing partial is delivered, and the
    /// exception is rethrown). Memory stays constant; size_hint (when >= 0)
    /// is announced as SIZE=.
    template <class Range>
    [[nodiscard]] reply sendmail_stream(std::string_view from, const Range &to,
                                        std::function<std::size_t(char *, std::size_t)> read,
                                        std::int64_t size_hint = -1) {
        auto f = detail::cstr(from, "smtp_session_sendmail_cb");
        detail::cstr_array t(to, "smtp_session_sendmail_cb");
        detail::reader r{std::move(read), nullptr};
        try {
            return command("smtp_session_sendmail_cb", [&](char *b, std::size_t n) {
                return smtp_session_sendmail_cb(s_, f.c_str(), t.data(), t.size(), &detail::smtpc_hpp_read_trampoline,
                                                &r, size_hint, b, n);
            });
        } catch (const error &) {
            if (r.pending) {
                std::rethrow_exception(r.pending);
            }
            throw;
        }
    }
    /// Streams the message from an std::istream (e.g. an std::ifstream).
    template <class Range>
    [[nodiscard]] reply sendmail(std::string_view from, const Range &to, std::istream &in, std::int64_t size_hint = -1) {
        return sendmail_stream(from, to, [&in](char *buf, std::size_t cap) -> std::size_t {
            in.read(buf, static_cast<std::streamsize>(cap));
            if (in.bad()) {
                throw std::runtime_error("smtpc: reading the message stream failed");
            }
            return static_cast<std::size_t>(in.gcount());
        }, size_hint);
    }
    /// Sends a built message with smtplib's send_message rules: the
    /// envelope from `from`/`to`, or from the message's fields.
    [[nodiscard]] reply send_message(const message &m, std::optional<std::string_view> from = std::nullopt,
                                     const std::vector<std::string> &to = {}) {
        detail::opt_cstr f(from, "smtp_session_send_message");
        detail::cstr_array t(to, "smtp_session_send_message");
        return command("smtp_session_send_message", [&](char *b, std::size_t n) {
            return smtp_session_send_message(s_, m.native_handle(), f.get(), t.data(), t.size(), b, n);
        });
    }
    /// Sends RFC 5322 bytes with smtplib's send_message rules.
    [[nodiscard]] reply send_message(std::string_view raw, std::optional<std::string_view> from = std::nullopt,
                                     const std::vector<std::string> &to = {}) {
        detail::opt_cstr f(from, "smtp_session_send_message_raw");
        detail::cstr_array t(to, "smtp_session_send_message_raw");
        return command("smtp_session_send_message_raw", [&](char *b, std::size_t n) {
            return smtp_session_send_message_raw(s_, raw.data(), raw.size(), f.get(), t.data(), t.size(), b, n);
        });
    }
    /// The answer to each recipient of the last sendmail, in the order given.
    [[nodiscard]] std::vector<rcpt_reply> recipients() const {
        std::vector<rcpt_reply> out;
        const std::size_t count = smtp_session_rcpt_count(s_);
        for (std::size_t i = 0; i < count; ++i) {
            reply r = detail::code_text([&](char *b, std::size_t n) { return smtp_session_rcpt_code(s_, i, b, n); });
            if (r.code < 0) {
                throw error(r.code, "smtp_session_rcpt_code", last_error());
            }
            std::string enh =
                detail::sized_text([&](char *b, std::size_t n) { return smtp_session_rcpt_enhanced(s_, i, b, n); });
            out.push_back(rcpt_reply{r.code, std::move(r.text), std::move(enh)});
        }
        return out;
    }
    /// LMTP: each recipient's delivery reply after the last sendmail.
    [[nodiscard]] std::vector<reply> rcpt_data_replies() const {
        std::vector<reply> out;
        const std::size_t count = smtp_session_rcpt_count(s_);
        for (std::size_t i = 0; i < count; ++i) {
            out.push_back(detail::code_text([&](char *b, std::size_t n) { return smtp_session_rcpt_data_code(s_, i, b, n); }));
        }
        return out;
    }
    /// SMTPC_STEP_*: which step of the last sendmail was refused.
    [[nodiscard]] int failed_step() const { return smtp_session_failed_step(s_); }
    /// Where the message of the last sendmail stands.
    [[nodiscard]] outcome result() const { return static_cast<outcome>(smtp_session_outcome(s_)); }
    [[nodiscard]] reply vrfy(std::string_view address) {
        auto a = detail::cstr(address, "smtp_session_vrfy");
        return command("smtp_session_vrfy", [&](char *b, std::size_t n) { return smtp_session_vrfy(s_, a.c_str(), b, n); });
    }
    [[nodiscard]] reply expn(std::string_view list) {
        auto l = detail::cstr(list, "smtp_session_expn");
        return command("smtp_session_expn", [&](char *b, std::size_t n) { return smtp_session_expn(s_, l.c_str(), b, n); });
    }
    [[nodiscard]] reply help(std::optional<std::string_view> topic = std::nullopt) {
        detail::opt_cstr t(topic, "smtp_session_help");
        return command("smtp_session_help", [&](char *b, std::size_t n) { return smtp_session_help(s_, t.get(), b, n); });
    }
    [[nodiscard]] reply noop() {
        return command("smtp_session_noop", [&](char *b, std::size_t n) { return smtp_session_noop(s_, b, n); });
    }
    [[nodiscard]] reply rset() {
        return command("smtp_session_rset", [&](char *b, std::size_t n) { return smtp_session_rset(s_, b, n); });
    }
    /// QUIT, then the connection is closed; the session can connect again.
    reply quit() {
        return command("smtp_session_quit", [&](char *b, std::size_t n) { return smtp_session_quit(s_, b, n); });
    }
    /// Closes the connection without QUIT (the handle stays usable).
    void disconnect() { check("smtp_session_close", smtp_session_close(s_)); }
    [[nodiscard]] reply docmd(std::string_view cmd, std::optional<std::string_view> args = std::nullopt) {
        auto c = detail::cstr(cmd, "smtp_session_docmd");
        detail::opt_cstr a(args, "smtp_session_docmd");
        return command("smtp_session_docmd",
                       [&](char *b, std::size_t n) { return smtp_session_docmd(s_, c.c_str(), a.get(), b, n); });
    }

    // ---- smtplib's low-level verbs ----------------------------------------

    [[nodiscard]] reply mail(std::string_view from, const std::vector<std::string> &params = {}) {
        auto f = detail::cstr(from, "smtp_session_mail");
        detail::cstr_array p(params, "smtp_session_mail");
        return command("smtp_session_mail",
                       [&](char *b, std::size_t n) { return smtp_session_mail(s_, f.c_str(), p.data(), p.size(), b, n); });
    }
    [[nodiscard]] reply rcpt(std::string_view to, const std::vector<std::string> &params = {}) {
        auto t = detail::cstr(to, "smtp_session_rcpt");
        detail::cstr_array p(params, "smtp_session_rcpt");
        return command("smtp_session_rcpt",
                       [&](char *b, std::size_t n) { return smtp_session_rcpt(s_, t.c_str(), p.data(), p.size(), b, n); });
    }
    [[nodiscard]] reply data(std::string_view msg) {
        return command("smtp_session_data",
                       [&](char *b, std::size_t n) { return smtp_session_data(s_, msg.data(), msg.size(), b, n); });
    }
    /// Queues one command line without reading (smtplib's putcmd).
    void putcmd(std::string_view cmd, std::optional<std::string_view> args = std::nullopt) {
        auto c = detail::cstr(cmd, "smtp_session_putcmd");
        detail::opt_cstr a(args, "smtp_session_putcmd");
        check("smtp_session_putcmd", smtp_session_putcmd(s_, c.c_str(), a.get()));
    }
    /// Reads the next reply, sending what putcmd queued (smtplib's getreply).
    [[nodiscard]] reply getreply() {
        return command("smtp_session_getreply", [&](char *b, std::size_t n) { return smtp_session_getreply(s_, b, n); });
    }

    // ---- batches ------------------------------------------------------------

    /// Sends every message of `messages` (any range of message_data),
    /// pipelined across messages when the server offers PIPELINING; one
    /// result per message. Throws only when the connection failed; the
    /// results of that batch are then in batch_results().
    template <class Range>
    [[nodiscard]] std::vector<batch_result> send_batch(const Range &messages) {
        auto it = std::begin(messages);
        auto end = std::end(messages);
        detail::batch_source src;
        src.next = [&]() -> const message_data * {
            if (it == end) {
                return nullptr;
            }
            const message_data &m = *it;
            ++it;
            return &m;
        };
        const int rc = blocking([&] {
            return smtp_session_batch_send_cb(s_, &detail::smtpc_hpp_next_trampoline, &src);
        });
        if (src.pending) {
            std::rethrow_exception(src.pending);
        }
        return finish_batch("smtp_session_batch_send_cb", rc);
    }
    /// Queues a copy of a message for batch_send() (addresses checked now).
    template <class Range>
    void batch_add(std::string_view from, const Range &to, std::string_view msg) {
        auto f = detail::cstr(from, "smtp_session_batch_add");
        detail::cstr_array t(to, "smtp_session_batch_add");
        check("smtp_session_batch_add", smtp_session_batch_add(s_, f.c_str(), t.data(), t.size(), msg.data(), msg.size()));
    }
    /// Sends the queued messages; their results.
    [[nodiscard]] std::vector<batch_result> batch_send() {
        const int rc = blocking([&] { return smtp_session_batch_send(s_); });
        return finish_batch("smtp_session_batch_send", rc);
    }
    /// The results of the last batch.
    [[nodiscard]] std::vector<batch_result> batch_results() const {
        std::vector<batch_result> out;
        const std::size_t count = smtp_session_batch_count(s_);
        for (std::size_t i = 0; i < count; ++i) {
            batch_result r;
            reply c = detail::code_text([&](char *b, std::size_t n) { return smtp_session_batch_code(s_, i, b, n); });
            r.code = c.code;
            r.text = std::move(c.text);
            r.result = static_cast<outcome>(smtp_session_batch_outcome(s_, i));
            r.failed_step = smtp_session_batch_failed_step(s_, i);
            const std::size_t nr = smtp_session_batch_rcpt_count(s_, i);
            for (std::size_t j = 0; j < nr; ++j) {
                r.recipients.push_back(
                    detail::code_text([&](char *b, std::size_t n) { return smtp_session_batch_rcpt_code(s_, i, j, b, n); }));
            }
            out.push_back(std::move(r));
        }
        return out;
    }
    /// Drops queued messages and the last batch's results.
    void batch_clear() { check("smtp_session_batch_clear", smtp_session_batch_clear(s_)); }

    // ---- state ----------------------------------------------------------

    [[nodiscard]] bool is_connected() const { return smtp_session_is_connected(s_) == 1; }
    [[nodiscard]] bool is_tls() const { return smtp_session_is_tls(s_) == 1; }
    /// How many times the session waited on the network for a reply.
    [[nodiscard]] std::uint64_t waits() const { return smtp_session_waits(s_); }
    [[nodiscard]] int last_code() const { return smtp_session_last_code(s_); }
    [[nodiscard]] std::string last_reply() const {
        return detail::sized_text([&](char *b, std::size_t n) { return smtp_session_last_reply(s_, b, n); });
    }
    /// The enhanced status code of the last reply ("5.1.1"; "" if none).
    [[nodiscard]] std::string last_enhanced() const {
        return detail::sized_text([&](char *b, std::size_t n) { return smtp_session_last_enhanced(s_, b, n); });
    }
    [[nodiscard]] std::string last_error() const {
        return detail::sized_text([&](char *b, std::size_t n) { return smtp_session_last_error(s_, b, n); });
    }

private:
    void check(const char *call, int rc) const {
        if (rc < 0) {
            throw error(rc, call, last_error());
        }
    }

    void opt_setter(const char *call, int (*fn)(smtp_session *, const char *), std::optional<std::string_view> v) {
        detail::opt_cstr p(v, call);
        check(call, fn(s_, p.get()));
    }

    void rethrow_pending() {
        if (st_ && st_->pending) {
            std::rethrow_exception(std::exchange(st_->pending, nullptr));
        }
    }

    /// Runs one C call that may wait on the network, so that cancel() from
    /// another thread reaches it (and only it).
    template <class F>
    int blocking(F &&run) {
        for (int attempt = 0;; ++attempt) {
            bool stale = false;
            {
                const std::lock_guard<std::mutex> lock(st_->mu);
                st_->inflight = true;
                st_->cancelled = false;
                stale = std::exchange(st_->stale, false);
            }
            const int rc = run();
            bool cancelled = false;
            {
                const std::lock_guard<std::mutex> lock(st_->mu);
                st_->inflight = false;
                cancelled = st_->cancelled;
                if (cancelled && rc != SMTPC_E_CANCELLED) {
                    st_->stale = true;
                }
            }
            // A cancel that landed after the previous call returned stops
            // this one before it does anything: run it again, once.
            if (rc == SMTPC_E_CANCELLED && stale && !cancelled && attempt == 0) {
                continue;
            }
            return rc;
        }
    }

    std::vector<batch_result> finish_batch(const char *call, int rc) {
        rethrow_pending();
        if (rc < 0) {
            throw error(rc, call, last_error());
        }
        if (rc >= 100) {
            throw error(SMTPC_E_STATE, call, "EHLO/HELO refused: " + std::to_string(rc) + " " + last_reply());
        }
        return batch_results();
    }

    /// Runs one command with a reply buffer; the text, if cut, is read
    /// again in full through smtp_session_last_reply.
    template <class F>
    reply command(const char *call, F &&run) {
        std::string buf(detail::reply_cap, '\0');
        const int rc = blocking([&] { return run(buf.data(), buf.size()); });
        rethrow_pending();
        if (rc < 0) {
            throw error(rc, call, last_error());
        }
        buf.resize(std::char_traits<char>::length(buf.c_str()));
        reply r{rc, std::move(buf)};
        // The buffer is cut on a UTF-8 boundary, so a cut text is 1020..1023
        // bytes long. Only trust last_reply when it is this reply's.
        if (r.text.size() + 4 >= detail::reply_cap && smtp_session_last_code(s_) == rc) {
            std::string full = last_reply();
            if (full.size() > r.text.size() && full.compare(0, r.text.size(), r.text) == 0) {
                r.text = std::move(full);
            }
        }
        return r;
    }

    smtp_session *s_;
    std::unique_ptr<detail::state> st_;
};

}  // namespace smtpc

#endif  // SMTPC_HPP
