// Tests of smtpc.hpp against the aiosmtpd servers that bindings/cpp/test.sh
// starts (see bindings/testlib.sh for the SMTPC_TEST_* variables).
#include <smtpc.hpp>

#include <atomic>
#include <thread>

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
        static_cast<void>(s.extn_params("X-NOT-OFFERED"));
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
        static_cast<void>(s.starttls());
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
        static_cast<void>(s.connect_tls(env("SMTPC_TEST_HOST"), env_port("SMTPC_TEST_TLS_PORT")));
        CHECK(!"connect_tls did not throw");
    } catch (const smtpc::error &e) {
        CHECK_EQ(e.code(), SMTPC_E_TLS_VERIFY);
        CHECK(e.detail().find("certificate verify failed") != std::string::npos);
    }
}

void test_invalid_arguments() {
    smtpc::session s;
    try {
        static_cast<void>(s.noop());
        CHECK(!"noop before connect did not throw");
    } catch (const smtpc::error &e) {
        CHECK_EQ(e.code(), SMTPC_E_STATE);
    }
    CHECK_EQ(s.connect(env("SMTPC_TEST_HOST"), env_port("SMTPC_TEST_PORT")).code, 220);
    try {
        static_cast<void>(s.sendmail("sender@example.com", {"bad\r\nRSET@example.com"}, "Subject: x\n\nx\n"));
        CHECK(!"sendmail with CRLF in an address did not throw");
    } catch (const smtpc::error &e) {
        CHECK_EQ(e.code(), SMTPC_E_INVALID);
    }
    try {
        static_cast<void>(s.vrfy(std::string_view("a\0b", 3)));
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
        static_cast<void>(c.noop());
    } catch (const std::runtime_error &e) {
        threw = std::string(e.what()) == "from the trace callback";
    }
    CHECK(threw);
    c.set_trace(nullptr);
    c.set_debuglevel(0);  // else the transcript goes to stderr
    CHECK_EQ(c.quit().code, 221);
}


double now_ms() {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

long status_kib(const char *key) {
    std::ifstream in("/proc/self/status");
    std::string line;
    const std::string prefix = std::string(key) + ":";
    while (std::getline(in, line)) {
        if (line.rfind(prefix, 0) == 0) {
            return std::stol(line.substr(prefix.size()));
        }
    }
    return 0;
}

void figure(const std::string &text) { std::cout << "FIGURE cpp " << text << "\n"; }

void test_xoauth2_tls_policy_enhanced() {
    smtpc::session s;
    s.set_ca_file(env("SMTPC_TEST_CA"));
    s.set_tls_policy(smtpc::tls_policy::required);
    CHECK_EQ(s.connect(env("SMTPC_TEST_HOST"), env_port("SMTPC_TEST_PORT")).code, 220);
    CHECK(s.is_tls());
    CHECK_EQ(s.auth("XOAUTH2", env("SMTPC_TEST_USER"), env("SMTPC_TEST_TOKEN")).code, 235);
    CHECK_EQ(s.sendmail("a@example.com", {"b@example.com", env("SMTPC_TEST_REJECT")}, "Subject: x\n\nx\n").code, 250);
    const auto rcpts = s.recipients();
    CHECK_EQ(rcpts[1].enhanced, std::string("5.1.1"));
    CHECK(s.waits() > 0);
    bool found = false;
    for (const auto &[name, params] : s.extensions()) {
        found = found || (name == "SIZE" && params == "33554432");
    }
    CHECK(found);
    s.set_dsn("HDRS", "env-1", "FAILURE", true);
    try {
        static_cast<void>(s.sendmail("a@example.com", {"b@example.com"}, "x\n"));
        CHECK(!"DSN without the extension did not throw");
    } catch (const smtpc::error &e) {
        CHECK_EQ(e.code(), SMTPC_E_NOT_SUPPORTED);
    }
    CHECK(s.result() == smtpc::outcome::not_sent);
    s.set_dsn(std::nullopt, std::nullopt, std::nullopt, false);
    static_cast<void>(s.quit());
}

void test_outcomes() {
    smtpc::session s;
    CHECK_EQ(s.connect(env("SMTPC_TEST_HOST"), env_port("SMTPC_TEST_PORT")).code, 220);
    CHECK(s.result() == smtpc::outcome::none);
    CHECK_EQ(s.sendmail("a@example.com", {"b@example.com"}, "Subject: ok\n\nok\n").code, 250);
    CHECK(s.result() == smtpc::outcome::accepted);
    CHECK_EQ(s.sendmail("a@example.com", {env("SMTPC_TEST_REJECT")}, "Subject: no\n\nno\n").code, 550);
    CHECK(s.result() == smtpc::outcome::refused);
    CHECK_EQ(s.failed_step(), SMTPC_STEP_RCPT);
    bool threw = false;
    int calls = 0;
    try {
        static_cast<void>(s.sendmail_stream("a@example.com", std::vector<std::string>{"b@example.com"},
                                            [&](char *buf, std::size_t cap) -> std::size_t {
                                                if (calls++ == 0) {
                                                    const std::string_view head = "Subject: partial\n\nfirst\n";
                                                    return head.copy(buf, cap);
                                                }
                                                throw std::runtime_error("disk on fire");
                                            }));
    } catch (const std::runtime_error &e) {
        threw = std::string(e.what()) == "disk on fire";
    }
    CHECK(threw);
    CHECK(s.result() == smtpc::outcome::not_sent);

    // Unknown: cancelled after the body went out, before the final reply.
    smtpc::session slow;
    slow.set_debuglevel(1);
    std::thread canceller;
    slow.set_trace([&](std::string_view line) {
        if (line.rfind("data: (354", 0) == 0 && !canceller.joinable()) {
            canceller = std::thread([&slow] {
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
                slow.cancel();
            });
        }
    });
    CHECK_EQ(slow.connect("127.0.0.1", env_port("SMTPC_TEST_SLOW_PORT")).code, 220);
    int code = 0;
    try {
        static_cast<void>(slow.sendmail("a@example.com", {"b@example.com"}, "Subject: u\n\nu\n"));
    } catch (const smtpc::error &e) {
        code = e.code();
    }
    if (canceller.joinable()) {
        canceller.join();
    }
    CHECK_EQ(code, SMTPC_E_CANCELLED);
    CHECK(slow.result() == smtpc::outcome::unknown);
}

void test_cancel_from_another_thread() {
    smtpc::session s;
    std::atomic<double> cancelled_at{0};
    std::thread t([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        cancelled_at = now_ms();
        s.cancel();
    });
    int code = 0;
    try {
        static_cast<void>(s.connect("127.0.0.1", env_port("SMTPC_TEST_MUTE_PORT")));
    } catch (const smtpc::error &e) {
        code = e.code();
    }
    const double latency = now_ms() - cancelled_at.load();
    t.join();
    CHECK_EQ(code, SMTPC_E_CANCELLED);
    figure("cancel latency " + std::to_string(latency) + " ms");
    CHECK(latency < 100.0);
    CHECK_EQ(s.connect(env("SMTPC_TEST_HOST"), env_port("SMTPC_TEST_PORT")).code, 220);
    static_cast<void>(s.quit());
}

void test_stream_16_mib() {
    const std::size_t size = std::size_t{16} << 20U;
    const std::string path = env("SMTPC_WORK") + "/cpp-16mib.eml";
    {
        std::ofstream out(path, std::ios::binary);
        out << "From: a@example.com\r\nSubject: 16 MiB\r\n\r\n";
        std::string block;
        for (int i = 0; i < 1024; ++i) {
            block += std::string(76, 'x') + "\r\n";
        }
        for (std::size_t n = 0; n < size; n += block.size()) {
            out << block;
        }
    }
    smtpc::session s;
    CHECK_EQ(s.connect("127.0.0.1", env_port("SMTPC_TEST_SINK_PORT")).code, 220);
    CHECK_EQ(s.ehlo().code, 250);
    std::ofstream("/proc/self/clear_refs") << "5";
    const long base = status_kib("VmRSS");
    const double t0 = now_ms();
    std::ifstream in(path, std::ios::binary);
    CHECK_EQ(s.sendmail("a@example.com", std::vector<std::string>{"b@example.com"}, in).code, 250);
    const double growth = static_cast<double>(status_kib("VmHWM") - base) / 1024.0;
    figure("16 MiB std::istream in " + std::to_string(now_ms() - t0) + " ms, peak RSS growth " +
           std::to_string(growth) + " MiB");
    CHECK(s.result() == smtpc::outcome::accepted);
    CHECK(growth < 8.0);
    static_cast<void>(s.quit());
    std::filesystem::remove(path);
}

void test_batch_5000() {
    std::vector<smtpc::message_data> msgs;
    for (int i = 0; i < 5000; ++i) {
        msgs.push_back({"bulk@example.com", {"r" + std::to_string(i) + "@example.com"},
                        "Subject: batch " + std::to_string(i) + "\n\nmessage\n"});
    }
    smtpc::session s;
    CHECK_EQ(s.connect("127.0.0.1", env_port("SMTPC_TEST_SINK_PORT")).code, 220);
    const double t0 = now_ms();
    const auto results = s.send_batch(msgs);
    const double dt = now_ms() - t0;
    CHECK_EQ(results.size(), msgs.size());
    for (const auto &r : results) {
        CHECK(r.result == smtpc::outcome::accepted && r.code == 250);
    }
    figure("batch: 5000 messages in " + std::to_string(dt) + " ms (" + std::to_string(5000.0 / (dt / 1000.0)) +
           " msg/s)");
    static_cast<void>(s.quit());

    smtpc::session q;
    CHECK_EQ(q.connect(env("SMTPC_TEST_HOST"), env_port("SMTPC_TEST_PORT")).code, 220);
    q.batch_add("a@example.com", std::vector<std::string>{"b@example.com"}, "Subject: 1\n\none\n");
    q.batch_add("a@example.com", std::vector<std::string>{env("SMTPC_TEST_REJECT")}, "Subject: 2\n\ntwo\n");
    const auto r = q.batch_send();
    CHECK_EQ(r.size(), std::size_t(2));
    CHECK(r[0].result == smtpc::outcome::accepted);
    CHECK(r[1].result == smtpc::outcome::refused);
    CHECK_EQ(r[1].failed_step, SMTPC_STEP_RCPT);
    q.batch_clear();
    CHECK(q.batch_results().empty());
}

void test_message_and_raw_verbs() {
    smtpc::message m;
    m.from("me@example.com", "Me").to("you@example.com").bcc("hidden@example.com").subject("built in C++");
    m.header("X-Binding", "cpp").text("Hello from the builder.\n").attach("a,b\n1,2\n", "data.csv", "text/csv");
    bool threw = false;
    try {
        m.header("X-Bad", "a\r\nBcc: evil@example.com");
    } catch (const smtpc::error &e) {
        threw = e.code() == SMTPC_E_INVALID;
    }
    CHECK(threw);
    const std::string raw = m.render();
    CHECK(raw.find("Subject: built in C++") != std::string::npos);
    CHECK(raw.find("hidden@") == std::string::npos);
    smtpc::session s;
    CHECK_EQ(s.connect(env("SMTPC_TEST_HOST"), env_port("SMTPC_TEST_PORT")).code, 220);
    CHECK_EQ(s.ehlo().code, 250);
    CHECK_EQ(s.send_message(m).code, 250);
    CHECK_EQ(s.recipients().size(), std::size_t(2));
    CHECK_EQ(s.send_message(std::string_view("From: a@example.com\nTo: b@example.com\nSubject: raw\n\nraw\n")).code, 250);
    s.set_mail_options({});
    s.set_rcpt_options({});
    CHECK_EQ(s.mail("a@example.com").code, 250);
    CHECK_EQ(s.rcpt("b@example.com").code, 250);
    CHECK_EQ(s.data("Subject: verbs\n\nlow level\n").code, 250);
    s.putcmd("NOOP");
    s.putcmd("NOOP");
    CHECK_EQ(s.getreply().code, 250);
    CHECK_EQ(s.getreply().code, 250);
    s.set_tls_min_version(SMTPC_TLS_1_2);
    s.set_tls_server_name("localhost");
    s.set_ca_dir(std::nullopt);
    s.set_client_cert(std::nullopt);
    static_cast<void>(s.quit());
}

void test_auth_callback_plain() {
    const std::string user = env("SMTPC_TEST_USER"), pass = env("SMTPC_TEST_PASS");
    for (const bool initial : {true, false}) {
        smtpc::session s;
        s.set_ca_file(env("SMTPC_TEST_CA"));
        s.set_tls_policy(smtpc::tls_policy::required);
        s.set_initial_response(initial);
        CHECK_EQ(s.connect(env("SMTPC_TEST_HOST"), env_port("SMTPC_TEST_PORT")).code, 220);
        int calls = 0;
        const auto r = s.auth_callback("PLAIN", [&](std::optional<std::string_view>) -> std::optional<std::string> {
            ++calls;
            return std::string(1, '\0') + user + std::string(1, '\0') + pass;
        });
        CHECK_EQ(r.code, 235);
        CHECK(calls > 0);
    }
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
        {"xoauth2_tls_policy_enhanced", test_xoauth2_tls_policy_enhanced},
        {"outcomes", test_outcomes},
        {"cancel_from_another_thread", test_cancel_from_another_thread},
        {"stream_16_mib", test_stream_16_mib},
        {"batch_5000", test_batch_5000},
        {"message_and_raw_verbs", test_message_and_raw_verbs},
        {"auth_callback_plain", test_auth_callback_plain},
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
    std::cout << checks << " checks\n"
              << (total - static_cast<std::size_t>(failed)) << " passed, " << failed << " failed\n";
    return failed ? 1 : 0;
}
