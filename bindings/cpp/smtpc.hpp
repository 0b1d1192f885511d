// smtpc.hpp — header-only C++17 RAII wrapper of libsmtpc (include/smtpc.h).
//
//   smtpc::session s;                      // owns one smtp_session, move-only
//   smtpc::reply r = s.connect("mail.example.com", 587);   // {code, text}
//
// Server answers of any class come back as smtpc::reply; library failures
// (the C API's negative SMTPC_E_* codes) are thrown as smtpc::error, whose
// code() is that value, what() is "<call>: <smtpc_strerror>: <last_error>"
// and detail() is smtp_session_last_error's text alone.
//
// Strings are taken as std::string_view and copied to NUL-terminated
// storage; one containing a NUL byte is refused with SMTPC_E_INVALID. A
// session is used by one thread at a time, as the C handle. Link with
// -lsmtpc.
#ifndef SMTPC_HPP
#define SMTPC_HPP

#include <smtpc.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <initializer_list>
#include <memory>
#include <new>
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

/// The static English description of an SMTPC_* or reply code.
inline std::string_view strerror(int code) noexcept { return smtpc_strerror(code); }

/// The library's version, e.g. "0.1.0".
inline std::string_view version() noexcept { return smtpc_version(); }

/// A library failure: a negative SMTPC_E_* code.
class error : public std::runtime_error {
public:
    error(int code, std::string_view call, std::string detail)
        : std::runtime_error(describe(code, call, detail)), code_(code), detail_(std::move(detail)) {}

    /// The SMTPC_E_* code (negative).
    int code() const noexcept { return code_; }
    /// smtp_session_last_error's message ("" if the library gave none).
    const std::string &detail() const noexcept { return detail_; }

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

/// Lives on the heap so a moved session keeps the pointer C holds.
struct trace_state {
    std::function<void(std::string_view)> fn;
    std::exception_ptr pending;
};

extern "C" inline void smtpc_hpp_trace_trampoline(void *user, const char *line) {
    auto *st = static_cast<trace_state *>(user);
    if (st->pending) {
        return;  // an earlier line already failed during this call
    }
    try {
        st->fn(line ? std::string_view(line) : std::string_view());
    } catch (...) {
        // Exceptions must not unwind through the C library: keep it and
        // rethrow once the library call has returned.
        st->pending = std::current_exception();
    }
}

}  // namespace detail

/// One SMTP client connection handle (smtp_session). Move-only; the
/// destructor frees the handle (closing the connection without QUIT).
class session {
public:
    session() : s_(smtp_session_new()) {
        if (!s_) {
            throw std::bad_alloc();
        }
    }
    ~session() { smtp_session_free(s_); }

    session(session &&o) noexcept : s_(std::exchange(o.s_, nullptr)), trace_(std::move(o.trace_)) {}
    session &operator=(session &&o) noexcept {
        if (this != &o) {
            smtp_session_free(s_);
            s_ = std::exchange(o.s_, nullptr);
            trace_ = std::move(o.trace_);
        }
        return *this;
    }
    session(const session &) = delete;
    session &operator=(const session &) = delete;

    /// The C handle, still owned by this object (nullptr once moved from).
    smtp_session *native_handle() const noexcept { return s_; }
    /// Gives up ownership of the C handle; the caller frees it. Drop any
    /// trace callback first (set_trace(nullptr)): it lives in this object.
    smtp_session *release() noexcept { return std::exchange(s_, nullptr); }

    // ---- settings -------------------------------------------------------

    void set_timeout_ms(std::uint32_t ms) { check("smtp_session_set_timeout_ms", smtp_session_set_timeout_ms(s_, ms)); }
    void set_debuglevel(int level) {
        check("smtp_session_set_debuglevel", smtp_session_set_debuglevel(s_, static_cast<std::int32_t>(level)));
    }
    /// Transcript lines go to fn instead of stderr (debuglevel decides which
    /// lines exist). An exception thrown by fn is rethrown by the call that
    /// produced the line. An empty fn restores stderr.
    void set_trace(std::function<void(std::string_view)> fn) {
        if (!fn) {
            check("smtp_session_set_trace", smtp_session_set_trace(s_, nullptr, nullptr));
            trace_.reset();
            return;
        }
        auto st = std::make_unique<detail::trace_state>();
        st->fn = std::move(fn);
        check("smtp_session_set_trace", smtp_session_set_trace(s_, &detail::smtpc_hpp_trace_trampoline, st.get()));
        trace_ = std::move(st);  // the old state is freed only after C dropped it
    }
    void set_tls_verify(bool on) { check("smtp_session_set_tls_verify", smtp_session_set_tls_verify(s_, on ? 1 : 0)); }
    void set_ca_file(std::string_view path) {
        auto p = detail::cstr(path, "smtp_session_set_ca_file");
        check("smtp_session_set_ca_file", smtp_session_set_ca_file(s_, p.c_str()));
    }
    /// Back to the system's trusted roots.
    void clear_ca_file() { check("smtp_session_set_ca_file", smtp_session_set_ca_file(s_, nullptr)); }
    void set_local_hostname(std::string_view name) {
        auto n = detail::cstr(name, "smtp_session_set_local_hostname");
        check("smtp_session_set_local_hostname", smtp_session_set_local_hostname(s_, n.c_str()));
    }
    void clear_local_hostname() {
        check("smtp_session_set_local_hostname", smtp_session_set_local_hostname(s_, nullptr));
    }
    void set_pipelining(bool on) { check("smtp_session_set_pipelining", smtp_session_set_pipelining(s_, on ? 1 : 0)); }

    // ---- commands -------------------------------------------------------

    reply connect(std::string_view host, std::uint16_t port) {
        auto h = detail::cstr(host, "smtp_session_connect");
        return command("smtp_session_connect",
                       [&](char *b, std::size_t n) { return smtp_session_connect(s_, h.c_str(), port, b, n); });
    }
    reply connect_tls(std::string_view host, std::uint16_t port) {
        auto h = detail::cstr(host, "smtp_session_connect_tls");
        return command("smtp_session_connect_tls",
                       [&](char *b, std::size_t n) { return smtp_session_connect_tls(s_, h.c_str(), port, b, n); });
    }
    reply helo() {
        return command("smtp_session_helo", [&](char *b, std::size_t n) { return smtp_session_helo(s_, nullptr, b, n); });
    }
    reply helo(std::string_view name) {
        auto v = detail::cstr(name, "smtp_session_helo");
        return command("smtp_session_helo",
                       [&](char *b, std::size_t n) { return smtp_session_helo(s_, v.c_str(), b, n); });
    }
    reply ehlo() {
        return command("smtp_session_ehlo", [&](char *b, std::size_t n) { return smtp_session_ehlo(s_, nullptr, b, n); });
    }
    reply ehlo(std::string_view name) {
        auto v = detail::cstr(name, "smtp_session_ehlo");
        return command("smtp_session_ehlo",
                       [&](char *b, std::size_t n) { return smtp_session_ehlo(s_, v.c_str(), b, n); });
    }
    /// Whether the last EHLO listed the extension (case-insensitive).
    bool has_extn(std::string_view name) const {
        auto v = detail::cstr(name, "smtp_session_has_extn");
        return smtp_session_has_extn(s_, v.c_str()) == 1;
    }
    /// The extension's parameters ("" when it has none); throws
    /// SMTPC_E_NOT_SUPPORTED when the last EHLO did not list it.
    std::string extn_params(std::string_view name) const {
        auto v = detail::cstr(name, "smtp_session_extn_params");
        int rc = 0;
        std::string text = detail::sized_text([&](char *b, std::size_t n) -> std::size_t {
            rc = smtp_session_extn_params(s_, v.c_str(), b, n);
            return rc < 0 ? 0 : static_cast<std::size_t>(rc);
        });
        if (rc < 0) {
            throw error(rc, "smtp_session_extn_params", last_error());
        }
        return text;
    }
    reply starttls() {
        return command("smtp_session_starttls", [&](char *b, std::size_t n) { return smtp_session_starttls(s_, b, n); });
    }
    reply login(std::string_view user, std::string_view password) {
        auto u = detail::cstr(user, "smtp_session_login");
        auto p = detail::cstr(password, "smtp_session_login");
        return command("smtp_session_login",
                       [&](char *b, std::size_t n) { return smtp_session_login(s_, u.c_str(), p.c_str(), b, n); });
    }
    /// Sends msg (bytes; line ends become CRLF) from `from` to every address
    /// in `to`. The reply is the final one (250 even if some recipients were
    /// refused: see recipients()) or the refusing one.
    template <class Range>
    reply sendmail(std::string_view from, const Range &to, std::string_view msg) {
        auto f = detail::cstr(from, "smtp_session_sendmail");
        std::vector<std::string> copies;
        for (const auto &addr : to) {
            copies.push_back(detail::cstr(std::string_view(addr), "smtp_session_sendmail"));
        }
        std::vector<const char *> ptrs;
        ptrs.reserve(copies.size());
        for (const auto &c : copies) {
            ptrs.push_back(c.c_str());
        }
        return command("smtp_session_sendmail", [&](char *b, std::size_t n) {
            return smtp_session_sendmail(s_, f.c_str(), ptrs.data(), ptrs.size(), msg.data(), msg.size(), b, n);
        });
    }
    reply sendmail(std::string_view from, std::initializer_list<std::string_view> to, std::string_view msg) {
        return sendmail<std::initializer_list<std::string_view>>(from, to, msg);
    }
    /// The answer to each recipient of the last sendmail, in the order given.
    std::vector<reply> recipients() const {
        std::vector<reply> out;
        std::size_t count = smtp_session_rcpt_count(s_);
        for (std::size_t i = 0; i < count; ++i) {
            std::string text(detail::reply_cap, '\0');
            int rc = smtp_session_rcpt_code(s_, i, text.data(), text.size());
            if (rc >= 0 && std::char_traits<char>::length(text.c_str()) + 4 >= detail::reply_cap) {
                // Possibly cut, and the C API gives no length here: read it
                // again into a buffer that holds any reply the library accepts.
                text.assign(SMTPC_MAX_REPLY_BYTES + 1, '\0');
                rc = smtp_session_rcpt_code(s_, i, text.data(), text.size());
            }
            if (rc < 0) {
                throw error(rc, "smtp_session_rcpt_code", last_error());
            }
            text.resize(std::char_traits<char>::length(text.c_str()));
            out.push_back(reply{rc, std::move(text)});
        }
        return out;
    }
    /// SMTPC_STEP_*: which step of the last sendmail was refused.
    int failed_step() const { return smtp_session_failed_step(s_); }
    reply vrfy(std::string_view address) {
        auto a = detail::cstr(address, "smtp_session_vrfy");
        return command("smtp_session_vrfy",
                       [&](char *b, std::size_t n) { return smtp_session_vrfy(s_, a.c_str(), b, n); });
    }
    reply expn(std::string_view list) {
        auto l = detail::cstr(list, "smtp_session_expn");
        return command("smtp_session_expn",
                       [&](char *b, std::size_t n) { return smtp_session_expn(s_, l.c_str(), b, n); });
    }
    reply help() {
        return command("smtp_session_help", [&](char *b, std::size_t n) { return smtp_session_help(s_, nullptr, b, n); });
    }
    reply help(std::string_view topic) {
        auto t = detail::cstr(topic, "smtp_session_help");
        return command("smtp_session_help",
                       [&](char *b, std::size_t n) { return smtp_session_help(s_, t.c_str(), b, n); });
    }
    reply noop() {
        return command("smtp_session_noop", [&](char *b, std::size_t n) { return smtp_session_noop(s_, b, n); });
    }
    reply rset() {
        return command("smtp_session_rset", [&](char *b, std::size_t n) { return smtp_session_rset(s_, b, n); });
    }
    /// QUIT, then the connection is closed; the session can connect again.
    reply quit() {
        return command("smtp_session_quit", [&](char *b, std::size_t n) { return smtp_session_quit(s_, b, n); });
    }
    /// Closes the connection without QUIT (the handle stays usable).
    void disconnect() { check("smtp_session_close", smtp_session_close(s_)); }
    reply docmd(std::string_view cmd) {
        auto c = detail::cstr(cmd, "smtp_session_docmd");
        return command("smtp_session_docmd",
                       [&](char *b, std::size_t n) { return smtp_session_docmd(s_, c.c_str(), nullptr, b, n); });
    }
    reply docmd(std::string_view cmd, std::string_view args) {
        auto c = detail::cstr(cmd, "smtp_session_docmd");
        auto a = detail::cstr(args, "smtp_session_docmd");
        return command("smtp_session_docmd",
                       [&](char *b, std::size_t n) { return smtp_session_docmd(s_, c.c_str(), a.c_str(), b, n); });
    }

    // ---- state ----------------------------------------------------------

    int last_code() const { return smtp_session_last_code(s_); }
    std::string last_reply() const {
        return detail::sized_text([&](char *b, std::size_t n) { return smtp_session_last_reply(s_, b, n); });
    }
    std::string last_error() const {
        return detail::sized_text([&](char *b, std::size_t n) { return smtp_session_last_error(s_, b, n); });
    }

private:
    void check(const char *call, int rc) const {
        if (rc < 0) {
            throw error(rc, call, last_error());
        }
    }

    void rethrow_trace() {
        if (trace_ && trace_->pending) {
            std::rethrow_exception(std::exchange(trace_->pending, nullptr));
        }
    }

    /// Runs one command with a reply buffer; the text, if cut, is read
    /// again in full through smtp_session_last_reply.
    template <class F>
    reply command(const char *call, F &&run) {
        char buf[detail::reply_cap];
        buf[0] = '\0';
        int rc = run(buf, sizeof buf);
        rethrow_trace();
        if (rc < 0) {
            throw error(rc, call, last_error());
        }
        reply r{rc, std::string(buf)};
        // The buffer is cut on a UTF-8 boundary, so a cut text is 1020..1023
        // bytes long. Only trust last_reply when it is this reply's.
        if (r.text.size() + 4 >= sizeof buf && smtp_session_last_code(s_) == rc) {
            std::string full = last_reply();
            if (full.size() > r.text.size() && full.compare(0, r.text.size(), r.text) == 0) {
                r.text = std::move(full);
            }
        }
        return r;
    }

    smtp_session *s_;
    std::unique_ptr<detail::trace_state> trace_;
};

}  // namespace smtpc

#endif  // SMTPC_HPP
