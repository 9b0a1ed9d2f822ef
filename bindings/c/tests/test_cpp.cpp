// One C++17 translation unit over include/tokenward.h: proves the header is C++-clean
// (extern "C", no C-only constructs) and shows the RAII + buffer-protocol idiom in C++.
//
//   test_cpp BASE_URL        (the mock's base URL, e.g. http://127.0.0.1:41433)
//
// Compiled with g++ -std=c++17 -Wall -Wextra -Werror -pedantic by run_tests.sh.

#include "tokenward.h"

#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

static_assert(std::is_same<tw_status, std::int32_t>::value, "tw_status is int32_t");
static_assert(TW_ERR_TIMEOUT == 11 && TW_ERR_PANIC == 99, "status values are fixed");
static_assert(std::is_standard_layout<tw_event>::value, "tw_event is a C struct");

namespace {

struct ClientDeleter {
    void operator()(tw_client *c) const noexcept { tw_client_free(c); }
};
using ClientPtr = std::unique_ptr<tw_client, ClientDeleter>;

class Error : public std::runtime_error {
public:
    Error(tw_status status, const std::string &what)
        : std::runtime_error(std::string(tw_status_name(status)) + ": " + what), status_(status)
    {
    }
    tw_status status() const noexcept { return status_; }

private:
    tw_status status_;
};

// Throw with this thread's tw_last_error() unless `s` is TW_OK.
void check(tw_status s)
{
    if (s != TW_OK)
        throw Error(s, tw_last_error());
}

// The buffer protocol: size query, then fetch; loop in case the value grew in between.
template <typename Fn>
std::string fetch(Fn fn, tw_client *c)
{
    std::size_t need = 0;
    tw_status s = fn(c, nullptr, 0, &need);
    std::vector<char> buf;
    while (s == TW_ERR_BUFFER_TOO_SMALL) {
        buf.resize(need);
        s = fn(c, buf.data(), buf.size(), &need);
    }
    check(s);
    return std::string(buf.data(), need - 1);
}

extern "C" void count_event(void *user_data, const tw_event *event)
{
    if (event && event->kind == TW_EVENT_TOKEN_ACQUIRED)
        ++*static_cast<int *>(user_data);
}

int failures = 0;

void expect(bool ok, const char *what)
{
    std::printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    if (!ok)
        ++failures;
}

} // namespace

int main(int argc, char **argv)
{
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s BASE_URL\n", argv[0]);
        return 2;
    }
    const std::string base = argv[1];
    try {
        expect(std::strlen(tw_version()) > 0, "tw_version");
        for (tw_status s : {TW_OK, TW_ERR_CONFIG, TW_ERR_TIMEOUT, TW_ERR_INVALID_CLIENT}) {
            expect(std::strncmp(tw_status_name(s), "TW_", 3) == 0, tw_status_name(s));
        }
        expect(std::string(tw_status_name(12345)) == "TW_ERR_UNKNOWN", "unknown status name");

        tw_client *raw = nullptr;
        const std::string config = R"({"token_url":")" + base + R"(/oauth/token",)"
                                   R"("client_id":"demo-client","client_secret":"demo-secret",)"
                                   R"("allow_http":true,)"
                                   R"("headers":{"tenant-code":"T1","api-version":"2"}})";
        check(tw_client_new(config.c_str(), &raw));
        ClientPtr client(raw);

        int acquired = 0;
        check(tw_client_set_event_callback(client.get(), count_event, &acquired));
        const std::string token = fetch(tw_client_token, client.get());
        const std::string headers = fetch(tw_client_headers, client.get());
        check(tw_client_set_event_callback(client.get(), nullptr, nullptr));
        expect(!token.empty(), "token");
        expect(headers.rfind("Authorization: Bearer " + token + "\r\n", 0) == 0,
               "headers start with Authorization");
        expect(headers.find("\r\ntenant-code: T1\r\n") != std::string::npos, "tenant-code");
        expect(acquired == 1, "one token_acquired event");

        // Errors carry their status name.
        tw_client *bad = nullptr;
        const tw_status s = tw_client_new(R"({"client_secert":"x"})", &bad);
        expect(s == TW_ERR_CONFIG && bad == nullptr, "unknown key -> TW_ERR_CONFIG");
        try {
            check(s);
            expect(false, "check() throws");
        } catch (const Error &e) {
            expect(e.status() == TW_ERR_CONFIG &&
                       std::strstr(e.what(), "TW_ERR_CONFIG") != nullptr &&
                       std::strstr(e.what(), "client_secert") != nullptr,
                   e.what());
        }
    } catch (const std::exception &e) {
        std::printf("FAIL exception: %s\n", e.what());
        ++failures;
    }
    std::printf("C++: %s\n", failures ? "FAILED" : "all checks passed");
    return failures ? 1 : 0;
}
