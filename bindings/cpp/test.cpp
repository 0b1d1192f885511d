// Tests of smtpc.hpp against the aiosmtpd servers that bindings/cpp/test.sh
// starts (see bindings/testlib.sh for the SMTPC_TEST_* variables).
#include "smtpc.hpp"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct failure {
    std::string what;
};

int checks = 0;

#define CHECK(cond)                                                                              \
    do {                                                                                         \
        ++checks;                                                                                \
        if (!(cond)) {                                                                           \
            throw failure{std::string(__FILE__ ":") + std::to_string(__LINE__) + ": " #cond};    \
        }                                                                                        \
    } while (0)

#define CHECK_EQ(a, b)                                                                           \
    do {                                                                                         \
        ++checks;                                                                                \
        const auto &va_ = (a);                                                                   \
        const auto &vb_ = (b);                                                                   \
        if (!(va_ == vb_)) {                                                                     \
            std::ostringstream os_;                                                              \
            os_ << __FILE__ ":" << __LINE__ << ": " #a " == " #b ": got [" << va_ << "] vs [" << vb_ \
                << "]";                                                                          \
            throw failure{os_.str()};                                                            \
        }                                                                                        \
    } while (0)

std::string env(const char *name) {
    const char *v = std::getenv(name);
    if (!v || !*v) {
        throw failure{std::string("environment variable ") + name + " not set (run bindings/cpp/test.sh)"};
    }
    return v;
}

std::uint16_t env_port(const char *name) { return static_cast<std::uint16_t>(std::stoi(env(name))); }

std::string read_file(const std::filesystem::path &p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream os;
    os << in.rdbuf();
    return os.str();
}

std::string unique_token() {
    static int n = 0;
    return "cpp-" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()) + "-" +
           std::to_string(++n);
}

/// The captured message (.eml) whose bytes contain token, and its .json.
std::pair<std::string, std::string> captured(const std::string &dir, const std::string &token) {
    for (const auto &e : std::filesystem::directory_iterator(dir)) {
        if (e.path().extension() != ".json") {
            continue;
        }
        auto eml = e.path();
        eml.replace_extension(".eml");
        std::string body = read_file(eml);
        if (body.find(token) != std::string::npos) {
            return {body, read_file(e.path())};
        }
    }
    throw failure{"no captured message contains " + token};
}

std::string crlf(const std::string &s) {
    std::string out;
    for (char c : s) {
        if (c == '\n') {
            out += "\r\n";
        } else {
            out += c;
        }
    }
    return out;
}

bool contains(const std::vector<std::string> &lines, std::string_view needle, bool prefix = false) {
    for (const auto &l : lines) {
        if (prefix ? l.rfind(needle, 0) == 0 : l.find(needle) != std::string::npos) {
            return true;
        }
    }
    return false;
}

std::string message(const std::string &token, const std::string &to) {
    return "From: Sender <sender@example.com>\n"
           "To: " + to + "\n"
           "Subject: C++ binding test " + token + "\n"
           "\n"
           "Hello from C++, " + token + ".\n"
           ".a line that starts with a dot\n"
           "last line\n";
}

// ---- tests -----------------------------------------------------------------

void test_version_and_strerror() {
    CHECK_EQ(smtpc::version(), std::string_view(SMTPC_VERSION_STRING));
    CHECK(!smtpc::strerror(SMTPC_E_TLS_VERIFY).empty());
}

void test_starttls_login_sendmail() {
    const std::string user = env("SMTPC_TEST_USER"), pass = env("SMTPC_TEST_PASS");
    std::vector<std::string> trace;
    smtpc::session s;
    s.set_timeout_ms(10000);
    s.set_debuglevel(1);
    s.set_trace([&](std::string_view line) { trace.emplace_back(line); });
    s.set_ca_file(env("SMTPC_TEST_CA"));

    auto r = s.connect(env("SMTPC_TEST_HOST"), env_port("SMTPC_TEST_PORT"));
    CHECK_EQ(r.code, 220);
    r = s.ehlo();
    CHECK_EQ(r.code, 250);
    CHECK(s.has_extn("starttls"));
    CHECK(!s.has_extn("AUTH"));  // only after TLS on this server
    CHECK_EQ(s.extn_params("SIZE"), std::string("33554432"));
    bool threw = false;
    try {
        s.extn_params("X-NOT-OFFERED");
    } catch (const smtpc::error &e) {
        threw = e.code() == SMTPC_E_NOT_SUPPORTED;
    }
    CHECK(threw);

    r = s.starttls();
    CHECK_EQ(r.code, 220);
    r = s.ehlo();
    CHECK_EQ(r.code, 250);
    CHECK(s.has_extn("AUTH"));
    r = s.login(user, pass);
    CHECK_EQ(r.code, 235);

    const std::string token = unique_token();
    const std::string reject = env("SMTPC_TEST_REJECT");
    const std::string msg = message(token, "a@example.com, b@example.com");
    std::vector<std::string> to{"a@example.com", reject, "b@example.com"};
    r = s.sendmail("sender@example.com", to, msg);
    CHECK_EQ(r.code, 250);
    CHECK_EQ(s.failed_step(), SMTPC_STEP_NONE);
    auto rcpts = s.recipients();
    CHECK_EQ(rcpts.size(), std::size_t(3));
    CHECK_EQ(rcpts[0].code, 250);
    CHECK_EQ(rcpts[1].code, 550);
    CHECK(rcpts[1].text.find("rejected") != std::string::npos);
    CHECK_EQ(rcpts[2].code, 250);

    auto [eml, json] = captured(env("SMTPC_TEST_CAPTURE"), token);
    CHECK_EQ(eml, crlf(msg));
    CHECK(json.find("\"mail_from\": \"sender@example.com\"") != std::string::npos);
    CHECK(json.find("\"rcpt_tos\": [\"a@example.com\", \"b@example.com\"]") != std::string::npos);

    r = s.vrfy(env("SMTPC_TEST_KNOWN"));
    CHECK_EQ(r.code, 250);
    r = s.vrfy("nobody@example.com");
    CHECK_EQ(r.code, 550);
    r = s.noop();
    CHECK_EQ(r.code, 250);
    r = s.quit();
    CHECK_EQ(r.code, 221);
    CHECK_EQ(s.last_code(), 221);

    CHECK(contains(trace, "send: 'ehlo ", true));
    CHECK(contains(trace, "send: 'STARTTLS\\r\\n'", true));
    for (const auto &l : trace) {
        CHECK(l.find(pass) == std::string::npos);
    }
}

void test_trace_redacts_auth() {
    const std::string user = env("SMTPC_TEST_USER"), pass = env("SMTPC_TEST_PASS");
    const std::string wrong = "Wr0ng-" + pass;
    std::vector<std::string> trace;
    smtpc::session s;
    s.set_debuglevel(1);
    s.set_trace([&](std::string_view line) { trace.emplace_back(line); });
    s.set_ca_file(env("SMTPC_TEST_CA"));
    CHECK_EQ(s.connect(env("SMTPC_TEST_HOST"), env_port("SMTPC_TEST_PORT")).code, 220);
    CHECK_EQ(s.starttls().code, 220);
    CHECK_EQ(s.ehlo().code, 250);
    // The server prefers nothing, the library tries CRAM-MD5 first; a wrong
    // password makes it go on to PLAIN (and LOGIN), all refused.
    auto r = s.login(user, wrong);
    CHECK_EQ(r.code, 535);
    CHECK(contains(trace, "send: 'AUTH PLAIN <redacted>\\r\\n'"));
    r = s.login(user, pass);
    CHECK_EQ(r.code, 235);
    CHECK_EQ(s.quit().code, 221);
    CHECK(contains(trace, "send: 'ehlo ", true));
    for (const auto &l : trace) {
        CHECK(l.find(pass) == std::string::npos);
    }
}

void test_implicit_tls() {
    smtpc::session s;
    s.set_ca_file(env("SMTPC_TEST_CA"));
    CHECK_EQ(s.connect_tls(env("SMTPC_TEST_HOST"), env_port("SMTPC_TEST_TLS_PORT")).code, 220);
    CHECK_EQ(s.ehlo("client.example").code, 250);
    CHECK(!s.has_extn("STARTTLS"));
    CHECK_EQ(s.login(env("SMTPC_TEST_USER"), env("SMTPC_TEST_PASS")).code, 235);
    const std::string token = unique_token();
    const std::string msg = message(token, "c@example.com");
    auto r = s.sendmail("<sender@example.com>", {"c@example.com", "Dee <d@example.com>"}, msg);
    CHECK_EQ(r.code, 250);
    auto rcpts = s.recipients();
    CHECK_EQ(rcpts.size(), std::size_t(2));
    CHECK_EQ(rcpts[0].code, 250);
    CHECK_EQ(rcpts[1].code, 250);
    auto [eml, json] = captured(env("SMTPC_TEST_TLS_CAPTURE"), token);
    CHECK_EQ(eml, crlf(msg));
    CHECK(json.find("\"rcpt_tos\": [\"c@example.com\", \"d@example.com\"]") != std::string::npos);
    CHECK_EQ(s.quit().code, 221);
}

void test_starttls_verify_failure() {
    smtpc::session s;
    s.set_ca_file(env("SMTPC_TEST_OTHER_CA"));
    CHECK_EQ(s.connect(env("SMTPC_TEST_HOST"), env_port("SMTPC_TEST_PORT")).code, 220);
    CHECK_EQ(s.ehlo().code, 250);
    try {
        s.starttls();
        CHECK(!"starttls did not throw");
    } catch (const smtpc::error &e) {
        CHECK_EQ(e.code(), SMTPC_E_TLS_VERIFY);
        CHECK(e.detail().find("certificate verify failed") != std::string::npos);
        CHECK(std::string(e.what()).find(smtpc_strerror(SMTPC_E_TLS_VERIFY)) != std::string::npos);
        CHECK(std::string(e.what()).find("certificate verify failed") != std::string::npos);
    }
}

void test_implicit_tls_verify_failure() {
    smtpc::session s;
    s.set_ca_file(env("SMTPC_TEST_OTHER_CA"));
    try {
        s.connect_tls(env("SMTPC_TEST_HOST"), env_port("SMTPC_TEST_TLS_PORT"));
        CHECK(!"connect_tls did not throw");
    } catch (const smtpc::error &e) {
        CHECK_EQ(e.code(), SMTPC_E_TLS_VERIFY);
        CHECK(e.detail().find("certificate verify failed") != std::string::npos);
    }
}

void test_invalid_arguments() {
    smtpc::session s;
    try {
        s.noop();
        CHECK(!"noop before connect did not throw");
    } catch (const smtpc::error &e) {
        CHECK_EQ(e.code(), SMTPC_E_STATE);
    }
    CHECK_EQ(s.connect(env("SMTPC_TEST_HOST"), env_port("SMTPC_TEST_PORT")).code, 220);
    try {
        s.sendmail("sender@example.com", {"bad\r\nRSET@example.com"}, "Subject: x\n\nx\n");
        CHECK(!"sendmail with CRLF in an address did not throw");
    } catch (const smtpc::error &e) {
        CHECK_EQ(e.code(), SMTPC_E_INVALID);
    }
    try {
        s.vrfy(std::string_view("a\0b", 3));
        CHECK(!"vrfy with a NUL did not throw");
    } catch (const smtpc::error &e) {
        CHECK_EQ(e.code(), SMTPC_E_INVALID);
    }
    CHECK_EQ(s.noop().code, 250);  // nothing was sent, the session is fine
    CHECK_EQ(s.quit().code, 221);
}

void test_move_and_trace_exception() {
    std::vector<std::string> trace;
    smtpc::session a;
    a.set_debuglevel(1);
    a.set_trace([&](std::string_view line) { trace.emplace_back(line); });
    smtpc::session b(std::move(a));
    CHECK(a.native_handle() == nullptr);
    smtpc::session c;
    c = std::move(b);
    CHECK_EQ(c.connect(env("SMTPC_TEST_HOST"), env_port("SMTPC_TEST_PORT")).code, 220);
    CHECK(contains(trace, "connect: ", true));
    c.set_trace([](std::string_view) { throw std::runtime_error("from the trace callback"); });
    bool threw = false;
    try {
        c.noop();
    } catch (const std::runtime_error &e) {
        threw = std::string(e.what()) == "from the trace callback";
    }
    CHECK(threw);
    c.set_trace(nullptr);
    c.set_debuglevel(0);  // else the transcript goes to stderr
    CHECK_EQ(c.quit().code, 221);
}

}  // namespace

int main() {
    struct test {
        const char *name;
        void (*fn)();
    };
    const test tests[] = {
        {"version_and_strerror", test_version_and_strerror},
        {"starttls_login_sendmail", test_starttls_login_sendmail},
        {"trace_redacts_auth", test_trace_redacts_auth},
        {"implicit_tls", test_implicit_tls},
        {"starttls_verify_failure", test_starttls_verify_failure},
        {"implicit_tls_verify_failure", test_implicit_tls_verify_failure},
        {"invalid_arguments", test_invalid_arguments},
        {"move_and_trace_exception", test_move_and_trace_exception},
    };
    int failed = 0;
    for (const auto &t : tests) {
        try {
            t.fn();
            std::cout << "ok   " << t.name << "\n";
        } catch (const failure &f) {
            ++failed;
            std::cout << "FAIL " << t.name << ": " << f.what << "\n";
        } catch (const std::exception &e) {
            ++failed;
            std::cout << "FAIL " << t.name << ": unexpected exception: " << e.what() << "\n";
        }
    }
    const auto total = sizeof tests / sizeof tests[0];
    std::cout << (total - static_cast<std::size_t>(failed)) << "/" << total << " tests passed (" << checks
              << " checks)\n";
    return failed ? 1 : 0;
}
