// The translation unit clang-tidy checks smtpc.hpp through (test.sh):
// every template of the header instantiated once.
#include <smtpc.hpp>

#include <sstream>
#include <string>
#include <vector>

int main() {
    try {
        smtpc::session s;
        s.set_trace([](std::string_view) {});
        const std::vector<std::string> to{"b@example.com"};
        std::istringstream in("Subject: x\n\nx\n");
        const smtpc::reply a = s.sendmail("a@example.com", to, "x");
        const smtpc::reply b = s.sendmail("a@example.com", to, in);
        s.batch_add("a@example.com", to, "x");
        const std::vector<smtpc::message_data> msgs{{"a@example.com", to, "x"}};
        const auto r = s.send_batch(msgs);
        return a.code + b.code + static_cast<int>(r.size());
    } catch (const smtpc::error &e) {
        return e.code();
    }
}
