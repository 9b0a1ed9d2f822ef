/*
 * C tests of the tokenward C ABI (include/tokenward.h) against the mock identity provider.
 *
 *   test_tokenward [FILTER]
 *
 * Environment:
 *   TOKENWARD_MOCK     path of the mock_idp executable (required); started here, killed at exit
 *   TW_TEST_THREADS    threads for the concurrency tests (default 16)
 *   TW_TEST_SLOW       time multiplier for the few elapsed-time bounds (e.g. 10 under valgrind)
 *   TW_TEST_MOCK_LOG   file for the mock's stderr (default: discarded)
 *
 * Prints one line per test and finally exactly "N passed, M failed"; exits 1 on any failure.
 * Every wait is bounded: a whole-run alarm kills the mock and exits, and the mock also dies
 * with this process (PR_SET_PDEATHSIG) and by itself after --lifetime-secs.
 */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tokenward.h"

/* ------------------------------------------------------------------------------------------ */
/* Tiny test framework                                                                        */
/* ------------------------------------------------------------------------------------------ */

static int g_passed, g_failed;
static volatile int g_test_failed;
static pthread_mutex_t g_report_lock = PTHREAD_MUTEX_INITIALIZER;

static void check_failed(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&g_report_lock);
    g_test_failed = 1;
    printf("    FAILED %s:%d: ", file, line);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    pthread_mutex_unlock(&g_report_lock);
}

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        if (!(cond))                                                                         \
            check_failed(__FILE__, __LINE__, "CHECK(%s)", #cond);                            \
    } while (0)

#define REQUIRE(cond)                                                                        \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            check_failed(__FILE__, __LINE__, "REQUIRE(%s)", #cond);                          \
            return;                                                                          \
        }                                                                                    \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                 \
    do {                                                                                     \
        if (!(cond))                                                                         \
            check_failed(__FILE__, __LINE__, __VA_ARGS__);                                   \
    } while (0)

/* Compare a status; on mismatch print both names and this thread's tw_last_error(). */
static int status_is(const char *file, int line, const char *expr, tw_status got,
                     tw_status want)
{
    if (got == want)
        return 1;
    check_failed(file, line, "%s -> %s (%d), want %s; tw_last_error: \"%s\"", expr,
                 tw_status_name(got), (int)got, tw_status_name(want), tw_last_error());
    return 0;
}

#define CHECK_STATUS(expr, want) ((void)status_is(__FILE__, __LINE__, #expr, (expr), (want)))
#define REQUIRE_STATUS(expr, want)                                                           \
    do {                                                                                     \
        if (!status_is(__FILE__, __LINE__, #expr, (expr), (want)))                           \
            return;                                                                          \
    } while (0)

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double g_slow = 1.0; /* TW_TEST_SLOW */
static int g_threads = 16;  /* TW_TEST_THREADS */

/* ------------------------------------------------------------------------------------------ */
/* The mock identity provider: started once, always killed                                    */
/* ------------------------------------------------------------------------------------------ */

static volatile pid_t g_mock_pid = -1;
static char g_base[128]; /* "http://127.0.0.1:PORT" */
static int g_port;

static void stop_mock(void)
{
    pid_t pid = g_mock_pid;
    if (pid > 0) {
        g_mock_pid = -1;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
}

static void on_signal(int sig)
{
    /* async-signal-safe only */
    static const char msg[] = "\ntest_tokenward: interrupted (timeout or signal); mock killed\n";
    if (g_mock_pid > 0)
        kill(g_mock_pid, SIGKILL);
    if (write(STDOUT_FILENO, msg, sizeof msg - 1) < 0) {
        /* nothing to do */
    }
    _exit(128 + sig);
}

static int start_mock(void)
{
    const char *mock = getenv("TOKENWARD_MOCK");
    const char *log = getenv("TW_TEST_MOCK_LOG");
    int fds[2];
    pid_t parent = getpid();
    if (!mock || !*mock) {
        fprintf(stderr, "TOKENWARD_MOCK is not set (path of the mock_idp executable)\n");
        return -1;
    }
    if (pipe(fds) != 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork(); /* before any tw_ call: no library threads or locks exist yet */
    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* The mock dies with us even if we crash. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        int err = open(log && *log ? log : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (err >= 0) {
            dup2(err, STDERR_FILENO);
            close(err);
        }
        execl(mock, mock, "--port", "0", "--lifetime-secs", "600", (char *)NULL);
        _exit(127);
    }
    g_mock_pid = pid;
    close(fds[1]);

    /* The first stdout line is the base URL; wait at most 20 s for it. */
    size_t used = 0;
    double deadline = now_ms() + 20000;
    while (used < sizeof g_base - 1 && !memchr(g_base, '\n', used)) {
        struct pollfd p = {fds[0], POLLIN, 0};
        int left = (int)(deadline - now_ms());
        if (left <= 0 || poll(&p, 1, left) <= 0)
            break;
        ssize_t n = read(fds[0], g_base + used, sizeof g_base - 1 - used);
        if (n <= 0)
            break;
        used += (size_t)n;
    }
    close(fds[0]);
    g_base[used] = '\0';
    char *nl = strchr(g_base, '\n');
    if (!nl || strncmp(g_base, "http://127.0.0.1:", 17) != 0) {
        fprintf(stderr, "mock did not print its base URL (got \"%s\")\n", g_base);
        return -1;
    }
    *nl = '\0';
    g_port = atoi(g_base + 17);
    return g_port > 0 ? 0 : -1;
}

/* ------------------------------------------------------------------------------------------ */
/* Minimal HTTP/1.1 client for the mock's /admin and /api endpoints (loopback, Connection:     */
/* close, 10 s socket timeouts)                                                               */
/* ------------------------------------------------------------------------------------------ */

typedef struct http_resp {
    int status;
    char *raw;  /* whole response, NUL-terminated */
    char *body; /* points into raw */
} http_resp;

static void http_resp_free(http_resp *r)
{
    free(r->raw);
    memset(r, 0, sizeof *r);
}

/* `headers`: NULL or "Name: value\r\n" lines (e.g. straight from tw_client_headers). */
static int http_request(int port, const char *method, const char *path, const char *headers,
                        const char *body, http_resp *out)
{
    memset(out, 0, sizeof *out);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    size_t body_len = body ? strlen(body) : 0;
    size_t hlen = headers ? strlen(headers) : 0;
    size_t cap = 256 + strlen(method) + strlen(path) + hlen + body_len;
    char *req = malloc(cap);
    if (!req) {
        close(fd);
        return -1;
    }
    int n = snprintf(req, cap,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n%s\r\n%s",
                     method, path, port, body_len, headers ? headers : "", body ? body : "");
    size_t sent = 0;
    while (n > 0 && sent < (size_t)n) {
        ssize_t w = send(fd, req + sent, (size_t)n - sent, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        sent += (size_t)w;
    }
    free(req);
    if (n <= 0 || sent < (size_t)n) {
        close(fd);
        return -1;
    }
    size_t used = 0, rcap = 4096;
    char *raw = malloc(rcap);
    for (;;) {
        if (!raw)
            break;
        if (rcap - used < 2048) {
            char *bigger = realloc(raw, rcap * 2);
            if (!bigger) {
                free(raw);
                raw = NULL;
                break;
            }
            raw = bigger;
            rcap *= 2;
        }
        ssize_t r = recv(fd, raw + used, rcap - used - 1, 0);
        if (r <= 0)
            break; /* EOF (Connection: close) or timeout */
        used += (size_t)r;
    }
    close(fd);
    if (!raw)
        return -1;
    raw[used] = '\0';
    char *sep = strstr(raw, "\r\n\r\n");
    if (!sep || sscanf(raw, "HTTP/1.1 %d", &out->status) != 1) {
        free(raw);
        return -1;
    }
    out->raw = raw;
    out->body = sep + 4;
    return 0;
}

/* POST a JSON body to an /admin endpoint; 0 when the mock answered 200. */
static int admin_post(const char *path, const char *json)
{
    http_resp r;
    if (http_request(g_port, "POST", path, NULL, json, &r) != 0)
        return -1;
    int ok = r.status == 200;
    if (!ok)
        printf("    mock %s -> %d %s\n", path, r.status, r.body);
    http_resp_free(&r);
    return ok ? 0 : -1;
}

#define ADMIN(path, json) CHECK_MSG(admin_post(path, json) == 0, "mock POST %s %s failed", path, json)

/* The value of a number field `"key":n` in a flat JSON text; -1 when absent. */
static long long json_number(const char *json, const char *key)
{
    char pat[80];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = json ? strstr(json, pat) : NULL;
    if (!p)
        return -1;
    p += strlen(pat);
    while (*p == ' ')
        p++;
    if (*p < '0' || *p > '9')
        return -1;
    return strtoll(p, NULL, 10);
}

/* Copy the string field `"key":"value"` (no escapes) into buf; 0 on success. */
static int json_string(const char *json, const char *key, char *buf, size_t cap)
{
    char pat[80];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *p = json ? strstr(json, pat) : NULL;
    if (!p)
        return -1;
    p += strlen(pat);
    const char *end = strchr(p, '"');
    if (!end || (size_t)(end - p) >= cap)
        return -1;
    memcpy(buf, p, (size_t)(end - p));
    buf[end - p] = '\0';
    return 0;
}

/* GET /admin/stats -> the counter `key` ("token_requests", ...); -1 on failure. */
static long long mock_stat(const char *key)
{
    http_resp r;
    if (http_request(g_port, "GET", "/admin/stats", NULL, NULL, &r) != 0)
        return -1;
    long long v = r.status == 200 ? json_number(r.body, key) : -1;
    http_resp_free(&r);
    return v;
}

/* ------------------------------------------------------------------------------------------ */
/* Helpers around the library                                                                 */
/* ------------------------------------------------------------------------------------------ */

/* A client for the mock. `extra`: "" or more JSON members starting with a comma. */
static tw_client *mock_client_with(const char *secret, const char *extra)
{
    char json[2048];
    tw_client *c = NULL;
    snprintf(json, sizeof json,
             "{\"token_url\":\"%s/oauth/token\",\"client_id\":\"demo-client\","
             "\"client_secret\":\"%s\",\"allow_http\":true,"
             "\"headers\":{\"tenant-code\":\"T1\",\"api-version\":\"2\"}%s}",
             g_base, secret, extra);
    tw_status s = tw_client_new(json, &c);
    CHECK_MSG(s == TW_OK && c != NULL, "tw_client_new(%s) -> %s: %s", json, tw_status_name(s),
              tw_last_error());
    return s == TW_OK ? c : NULL;
}

static tw_client *mock_client(void) { return mock_client_with("demo-secret", ""); }

typedef tw_status (*string_fn)(tw_client *, char *, size_t, size_t *);

/*
 * The buffer-protocol idiom: ask for the size, allocate, fetch; if the value grew in between
 * (stats), go round again. Returns the status; on TW_OK *out is a malloc'ed string.
 */
static tw_status fetch_string(string_fn fn, tw_client *c, char **out)
{
    size_t need = 0;
    char *buf = NULL;
    *out = NULL;
    tw_status s = fn(c, NULL, 0, &need);
    for (int round = 0; s == TW_ERR_BUFFER_TOO_SMALL && round < 8; round++) {
        char *bigger = realloc(buf, need);
        if (!bigger) {
            free(buf);
            return TW_ERR_BUFFER_TOO_SMALL;
        }
        buf = bigger;
        s = fn(c, buf, need, &need);
    }
    if (s != TW_OK) {
        free(buf);
        return s;
    }
    *out = buf;
    return TW_OK;
}

/* Fetch the token into a fresh string, or NULL (after recording a failure). */
static char *token_of(tw_client *c)
{
    char *t = NULL;
    tw_status s = fetch_string(tw_client_token, c, &t);
    CHECK_MSG(s == TW_OK, "tw_client_token -> %s: %s", tw_status_name(s), tw_last_error());
    return t;
}

static long long client_stat(tw_client *c, const char *key)
{
    char *json = NULL;
    if (fetch_string(tw_client_stats, c, &json) != TW_OK)
        return -2;
    long long v = json_number(json, key);
    free(json);
    return v;
}

/* Decode base64url (no padding) into buf (NUL-terminated); 0 on success. */
static int b64url_decode(const char *in, size_t n, char *buf, size_t cap)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int v;
        char ch = in[i];
        if (ch >= 'A' && ch <= 'Z')
            v = ch - 'A';
        else if (ch >= 'a' && ch <= 'z')
            v = ch - 'a' + 26;
        else if (ch >= '0' && ch <= '9')
            v = ch - '0' + 52;
        else if (ch == '-')
            v = 62;
        else if (ch == '_')
            v = 63;
        else if (ch == '=')
            break;
        else
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o + 1 >= cap)
                return -1;
            buf[o++] = (char)((acc >> bits) & 0xFF);
        }
    }
    buf[o] = '\0';
    return 0;
}

/* The JWT payload (middle segment) of `token`, decoded into buf; 0 on success. */
static int jwt_payload(const char *token, char *buf, size_t cap)
{
    const char *a = strchr(token, '.');
    const char *b = a ? strchr(a + 1, '.') : NULL;
    if (!b)
        return -1;
    return b64url_decode(a + 1, (size_t)(b - a - 1), buf, cap);
}

/* ------------------------------------------------------------------------------------------ */
/* 1. Lifecycle, version, status names                                                        */
/* ------------------------------------------------------------------------------------------ */

static void test_create_free_version_status_names(void)
{
    tw_client_free(NULL); /* documented no-op */

    tw_client *c = mock_client();
    REQUIRE(c != NULL);
    tw_client_free(c);

    const char *v = tw_version();
    REQUIRE(v != NULL);
    CHECK(strlen(v) > 0);
    CHECK(strchr(v, '.') != NULL); /* "MAJOR.MINOR.PATCH" */
    CHECK(TW_ABI_VERSION == 1);

    static const struct {
        tw_status status;
        const char *name;
    } names[] = {
        {TW_OK, "TW_OK"},
        {TW_ERR_INVALID_ARGUMENT, "TW_ERR_INVALID_ARGUMENT"},
        {TW_ERR_CONFIG, "TW_ERR_CONFIG"},
        {TW_ERR_BUFFER_TOO_SMALL, "TW_ERR_BUFFER_TOO_SMALL"},
        {TW_ERR_NETWORK, "TW_ERR_NETWORK"},
        {TW_ERR_TIMEOUT, "TW_ERR_TIMEOUT"},
        {TW_ERR_TLS, "TW_ERR_TLS"},
        {TW_ERR_INVALID_CLIENT, "TW_ERR_INVALID_CLIENT"},
        {TW_ERR_INVALID_SCOPE, "TW_ERR_INVALID_SCOPE"},
        {TW_ERR_UNAUTHORIZED_CLIENT, "TW_ERR_UNAUTHORIZED_CLIENT"},
        {TW_ERR_OAUTH, "TW_ERR_OAUTH"},
        {TW_ERR_RATE_LIMITED, "TW_ERR_RATE_LIMITED"},
        {TW_ERR_SERVER, "TW_ERR_SERVER"},
        {TW_ERR_BAD_RESPONSE, "TW_ERR_BAD_RESPONSE"},
        {TW_ERR_UNAUTHORIZED, "TW_ERR_UNAUTHORIZED"},
        {TW_ERR_FORBIDDEN, "TW_ERR_FORBIDDEN"},
        {TW_ERR_FOREIGN_ORIGIN, "TW_ERR_FOREIGN_ORIGIN"},
        {TW_ERR_NEEDS_REQUEST, "TW_ERR_NEEDS_REQUEST"},
        {TW_ERR_PANIC, "TW_ERR_PANIC"},
    };
    /* The numbers are part of the ABI (docs/design.md, "Errors"): fixed forever. */
    CHECK(TW_OK == 0 && TW_ERR_INVALID_ARGUMENT == 1 && TW_ERR_CONFIG == 2 &&
          TW_ERR_BUFFER_TOO_SMALL == 3 && TW_ERR_NETWORK == 10 && TW_ERR_TIMEOUT == 11 &&
          TW_ERR_TLS == 12 && TW_ERR_INVALID_CLIENT == 20 && TW_ERR_INVALID_SCOPE == 21 &&
          TW_ERR_UNAUTHORIZED_CLIENT == 22 && TW_ERR_OAUTH == 23 && TW_ERR_RATE_LIMITED == 24 &&
          TW_ERR_SERVER == 25 && TW_ERR_BAD_RESPONSE == 26 && TW_ERR_UNAUTHORIZED == 30 &&
          TW_ERR_FORBIDDEN == 31 && TW_ERR_FOREIGN_ORIGIN == 32 && TW_ERR_NEEDS_REQUEST == 33 &&
          TW_ERR_PANIC == 99);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *got = tw_status_name(names[i].status);
        CHECK_MSG(got && strcmp(got, names[i].name) == 0, "tw_status_name(%d) = \"%s\", want %s",
                  (int)names[i].status, got ? got : "(null)", names[i].name);
    }
    static const tw_status unknown[] = {-1, 4, 9, 13, 19, 27, 29, 34, 98, 100, 1000, INT32_MIN,
                                        INT32_MAX};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *got = tw_status_name(unknown[i]);
        CHECK_MSG(got && strcmp(got, "TW_ERR_UNKNOWN") == 0, "tw_status_name(%d) = \"%s\"",
                  (int)unknown[i], got ? got : "(null)");
    }
    /* Never NULL, even before any error on this thread. */
    CHECK(tw_last_error() != NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* 2. NULL arguments and bad configuration                                                    */
/* ------------------------------------------------------------------------------------------ */

static void fake_callback(void *user_data, const tw_event *event)
{
    (void)user_data;
    (void)event;
}

/* Expect TW_ERR_INVALID_ARGUMENT with a message mentioning `arg`. */
static void expect_null_arg(const char *file, int line, const char *expr, tw_status got,
                            const char *arg)
{
    if (!status_is(file, line, expr, got, TW_ERR_INVALID_ARGUMENT))
        return;
    const char *msg = tw_last_error();
    if (!msg || !*msg)
        check_failed(file, line, "%s: tw_last_error() is empty", expr);
    else if (arg && !strstr(msg, arg))
        check_failed(file, line, "%s: message \"%s\" does not name `%s`", expr, msg, arg);
}
#define EXPECT_NULL_ARG(expr, arg) expect_null_arg(__FILE__, __LINE__, #expr, (expr), arg)

static void test_null_arguments(void)
{
    tw_client *c = mock_client();
    REQUIRE(c != NULL);
    char buf[64], buf2[2048];
    size_t len = 0;
    uint64_t ns = 0;
    tw_client *out = (tw_client *)(uintptr_t)0x1; /* must be reset to NULL on failure */
    tw_response *resp = (tw_response *)(uintptr_t)0x1;

    EXPECT_NULL_ARG(tw_client_new(NULL, &out), "config_json");
    CHECK(out == NULL);
    EXPECT_NULL_ARG(tw_client_new("{}", NULL), "out");
    EXPECT_NULL_ARG(tw_client_from_env(NULL, NULL), "out");
    EXPECT_NULL_ARG(tw_client_from_env("TW_C_TEST_", NULL), "out");

    EXPECT_NULL_ARG(tw_client_token(NULL, buf, sizeof buf, &len), "client");
    EXPECT_NULL_ARG(tw_client_token(c, buf, sizeof buf, NULL), "len");
    EXPECT_NULL_ARG(tw_client_token_cacheable(NULL, buf, sizeof buf, &len, &ns), "client");
    EXPECT_NULL_ARG(tw_client_token_cacheable(c, buf, sizeof buf, NULL, &ns), "len");
    EXPECT_NULL_ARG(tw_client_token_cacheable(c, buf, sizeof buf, &len, NULL), NULL);
    EXPECT_NULL_ARG(tw_client_authorization(NULL, buf, sizeof buf, &len), "client");
    EXPECT_NULL_ARG(tw_client_authorization(c, buf, sizeof buf, NULL), "len");
    EXPECT_NULL_ARG(tw_client_headers(NULL, buf, sizeof buf, &len), "client");
    EXPECT_NULL_ARG(tw_client_headers(c, buf, sizeof buf, NULL), "len");
    EXPECT_NULL_ARG(tw_client_stats(NULL, buf, sizeof buf, &len), "client");
    EXPECT_NULL_ARG(tw_client_stats(c, buf, sizeof buf, NULL), "len");
    EXPECT_NULL_ARG(tw_client_invalidate(NULL, "x"), "client");
    EXPECT_NULL_ARG(tw_client_invalidate(NULL, NULL), "client");
    EXPECT_NULL_ARG(tw_client_set_client_secret(NULL, "s"), "client");
    EXPECT_NULL_ARG(tw_client_set_client_secret(c, NULL), "secret");
    EXPECT_NULL_ARG(tw_client_set_event_callback(NULL, fake_callback, NULL), "client");
    EXPECT_NULL_ARG(tw_client_set_event_callback(NULL, NULL, NULL), "client");

    /* buf NULL with cap > 0 is a caller bug, not a size query. */
    EXPECT_NULL_ARG(tw_client_token(c, NULL, 16, &len), "buf");
    EXPECT_NULL_ARG(tw_client_headers(c, NULL, 16, &len), "buf");
    EXPECT_NULL_ARG(tw_client_stats(c, NULL, 16, &len), "buf");
    EXPECT_NULL_ARG(tw_client_authorization(c, NULL, 16, &len), "buf");
    EXPECT_NULL_ARG(tw_client_token_cacheable(c, NULL, 16, &len, &ns), "buf");

    char url[256];
    snprintf(url, sizeof url, "%s/api/items", g_base);
    EXPECT_NULL_ARG(tw_client_send(NULL, "GET", url, NULL, NULL, 0, &resp), "client");
    CHECK(resp == NULL);
    EXPECT_NULL_ARG(tw_client_send(c, NULL, url, NULL, NULL, 0, &resp), "method");
    EXPECT_NULL_ARG(tw_client_send(c, "GET", NULL, NULL, NULL, 0, &resp), "url");
    EXPECT_NULL_ARG(tw_client_send(c, "GET", url, NULL, NULL, 0, NULL), "out");
    EXPECT_NULL_ARG(tw_client_send(c, "POST", url, NULL, NULL, 5, &resp), "body");

    /* The response accessors: NULL response is harmless. */
    CHECK(tw_response_status(NULL) == 0);
    len = 99;
    CHECK(tw_response_body(NULL, &len) == NULL);
    CHECK(len == 0);
    tw_response_free(NULL);
    EXPECT_NULL_ARG(tw_response_header(NULL, "content-type", buf, sizeof buf, &len), "response");
    resp = NULL;
    REQUIRE_STATUS(tw_client_send(c, "GET", url, NULL, NULL, 0, &resp), TW_OK);
    REQUIRE(resp != NULL);
    EXPECT_NULL_ARG(tw_response_header(resp, NULL, buf, sizeof buf, &len), "name");
    EXPECT_NULL_ARG(tw_response_header(resp, "content-type", buf, sizeof buf, NULL), "len");
    EXPECT_NULL_ARG(tw_response_header(resp, "content-type", NULL, 16, &len), "buf");
    CHECK(tw_response_body(resp, NULL) == NULL);
    tw_response_free(resp);

    /* Invalid UTF-8 in string arguments; an empty secret is rejected as configuration, and
     * a rejected rotation leaves the working secret in place. */
    EXPECT_NULL_ARG(tw_client_set_client_secret(c, "\xff\xfe"), "secret");
    EXPECT_NULL_ARG(tw_client_send(c, "G\xffT", url, NULL, NULL, 0, &resp), "method");
    EXPECT_NULL_ARG(tw_client_send(c, "GET", "http://127.0.0.1/\xc3", NULL, NULL, 0, &resp), "url");
    CHECK_STATUS(tw_client_set_client_secret(c, ""), TW_ERR_CONFIG);
    CHECK_STATUS(tw_client_invalidate(c, NULL), TW_OK);
    CHECK_STATUS(tw_client_token(c, buf2, sizeof buf2, &len), TW_OK);

    /* Valid NULLs: invalidate(NULL token) evicts; set_event_callback(NULL) unregisters. */
    CHECK_STATUS(tw_client_invalidate(c, NULL), TW_OK);
    CHECK_STATUS(tw_client_set_event_callback(c, NULL, NULL), TW_OK);
    tw_client_free(c);
}

static void expect_config_error(const char *file, int line, const char *json, tw_status want,
                                const char *needle)
{
    tw_client *out = (tw_client *)(uintptr_t)0x1;
    tw_status s = tw_client_new(json, &out);
    if (!status_is(file, line, json, s, want)) {
        if (s == TW_OK)
            tw_client_free(out);
        return;
    }
    const char *msg = tw_last_error();
    if (out != NULL)
        check_failed(file, line, "%s: *out not set to NULL on failure", json);
    if (!msg || !*msg)
        check_failed(file, line, "%s: empty tw_last_error()", json);
    else if (needle && !strstr(msg, needle))
        check_failed(file, line, "%s: message \"%s\" does not mention \"%s\"", json, msg, needle);
}
#define EXPECT_CONFIG_ERROR(json, want, needle)                                              \
    expect_config_error(__FILE__, __LINE__, json, want, needle)

static void test_bad_configuration(void)
{
    char json[1024];
    /* Malformed JSON and invalid UTF-8 are argument errors, not configuration errors. */
    EXPECT_CONFIG_ERROR("", TW_ERR_INVALID_ARGUMENT, NULL);
    EXPECT_CONFIG_ERROR("{", TW_ERR_INVALID_ARGUMENT, NULL);
    EXPECT_CONFIG_ERROR("{\"client_id\": \"a\",}", TW_ERR_INVALID_ARGUMENT, NULL);
    EXPECT_CONFIG_ERROR("not json", TW_ERR_INVALID_ARGUMENT, NULL);
    EXPECT_CONFIG_ERROR("{\"client_id\":\"\xff\xfe\"}", TW_ERR_INVALID_ARGUMENT, "UTF-8");
    EXPECT_CONFIG_ERROR("{\"client_id\":\"\xc3\"}", TW_ERR_INVALID_ARGUMENT, "UTF-8");

    /* A typo must not be ignored: the message names the key. */
    snprintf(json, sizeof json,
             "{\"token_url\":\"%s/oauth/token\",\"client_id\":\"demo-client\","
             "\"client_secert\":\"demo-secret\",\"allow_http\":true}",
             g_base);
    EXPECT_CONFIG_ERROR(json, TW_ERR_CONFIG, "client_secert");
    snprintf(json, sizeof json,
             "{\"token_url\":\"%s/oauth/token\",\"client_id\":\"demo-client\","
             "\"client_secret\":\"demo-secret\",\"allow_http\":true,\"timeouts\":{\"request\":5}}",
             g_base);
    EXPECT_CONFIG_ERROR(json, TW_ERR_CONFIG, "request");

    /* Semantically wrong values are configuration errors naming the key. */
    EXPECT_CONFIG_ERROR("{}", TW_ERR_CONFIG, NULL);
    EXPECT_CONFIG_ERROR("[1,2]", TW_ERR_CONFIG, NULL);
    snprintf(json, sizeof json,
             "{\"token_url\":\"%s/oauth/token\",\"client_id\":\"demo-client\","
             "\"client_secret\":\"demo-secret\"}",
             g_base); /* plain http without allow_http */
    EXPECT_CONFIG_ERROR(json, TW_ERR_CONFIG, "http");
    snprintf(json, sizeof json,
             "{\"token_url\":\"%s/oauth/token\",\"client_id\":\"demo-client\","
             "\"client_secret\":\"demo-secret\",\"allow_http\":true,"
             "\"headers\":{\"tenant-code\":\"T1\\r\\nX-Evil: 1\"}}",
             g_base); /* header smuggling */
    EXPECT_CONFIG_ERROR(json, TW_ERR_CONFIG, "tenant-code");
    snprintf(json, sizeof json,
             "{\"token_url\":\"%s/oauth/token\",\"client_id\":\"demo-client\","
             "\"client_secret\":\"demo-secret\",\"allow_http\":true,\"retry\":{\"max_attempts\":0}}",
             g_base);
    EXPECT_CONFIG_ERROR(json, TW_ERR_CONFIG, "max_attempts");

    /* A secret must never be echoed in an error message. */
    snprintf(json, sizeof json,
             "{\"token_url\":\"%s/oauth/token\",\"client_id\":\"demo-client\","
             "\"client_secret\":\"s3cr3t-do-not-print\",\"allow_http\":true,\"bogus\":1}",
             g_base);
    EXPECT_CONFIG_ERROR(json, TW_ERR_CONFIG, "bogus");
    CHECK(strstr(tw_last_error(), "s3cr3t-do-not-print") == NULL);

    /* tw_client_from_env: nothing set under this prefix -> configuration error. */
    tw_client *out = (tw_client *)(uintptr_t)0x1;
    CHECK_STATUS(tw_client_from_env("TW_C_TEST_UNSET_", &out), TW_ERR_CONFIG);
    CHECK(out == NULL);
    CHECK(*tw_last_error() != '\0');
    EXPECT_NULL_ARG(tw_client_from_env("TW_\xff_", &out), "prefix");
}

static void test_from_env(void)
{
    char url[256];
    snprintf(url, sizeof url, "%s/oauth/token", g_base);
    setenv("TW_C_TEST_TOKEN_URL", url, 1);
    setenv("TW_C_TEST_CLIENT_ID", "demo-client", 1);
    setenv("TW_C_TEST_CLIENT_SECRET", "demo-secret", 1);
    setenv("TW_C_TEST_ALLOW_HTTP", "1", 1);
    setenv("TW_C_TEST_TENANT_CODE", "T9", 1);
    setenv("TW_C_TEST_API_VERSION", "7", 1);
    tw_client *c = NULL;
    tw_status s = tw_client_from_env("TW_C_TEST_", &c);
    unsetenv("TW_C_TEST_CLIENT_SECRET");
    REQUIRE_STATUS(s, TW_OK);
    REQUIRE(c != NULL);
    char *h = NULL;
    CHECK_STATUS(fetch_string(tw_client_headers, c, &h), TW_OK);
    if (h) {
        CHECK(strncmp(h, "Authorization: Bearer ", 22) == 0);
        CHECK(strstr(h, "\r\ntenant-code: T9\r\n") != NULL);
        CHECK(strstr(h, "\r\napi-version: 7\r\n") != NULL);
    }
    free(h);
    tw_client_free(c);
}

/* ------------------------------------------------------------------------------------------ */
/* 3. Buffer protocol                                                                         */
/* ------------------------------------------------------------------------------------------ */

#define CANARY 0xA5

static int all_canary(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != CANARY)
            return 0;
    return 1;
}

/* Exercise the protocol for one stable value (token, authorization, headers). */
static void check_buffer_protocol(const char *what, string_fn fn, tw_client *c)
{
    enum { BIG = 1 << 16, GUARD = 64 };
    unsigned char *mem = malloc(BIG + GUARD);
    REQUIRE(mem != NULL);
    char *buf = (char *)mem;

    /* Size query. */
    size_t need = 0;
    tw_status s = fn(c, NULL, 0, &need);
    CHECK_MSG(s == TW_ERR_BUFFER_TOO_SMALL, "%s size query -> %s: %s", what, tw_status_name(s),
              tw_last_error());
    CHECK_MSG(need > 1 && need < BIG, "%s size query: *len = %zu", what, need);
    if (need <= 1 || need >= BIG) {
        free(mem);
        return;
    }

    /* cap 0 with a real buffer: also only a size query, nothing written. */
    memset(mem, CANARY, BIG + GUARD);
    size_t len = 0;
    s = fn(c, buf, 0, &len);
    CHECK_MSG(s == TW_ERR_BUFFER_TOO_SMALL && len == need, "%s cap 0 -> %s len %zu", what,
              tw_status_name(s), len);
    CHECK_MSG(all_canary(mem, BIG + GUARD), "%s: cap 0 wrote into the buffer", what);

    /* One byte short: nothing written, needed size reported. */
    memset(mem, CANARY, BIG + GUARD);
    len = 0;
    s = fn(c, buf, need - 1, &len);
    CHECK_MSG(s == TW_ERR_BUFFER_TOO_SMALL, "%s one short -> %s", what, tw_status_name(s));
    CHECK_MSG(len == need, "%s one short: *len %zu, want %zu", what, len, need);
    CHECK_MSG(all_canary(mem, BIG + GUARD), "%s: one-short call wrote into the buffer", what);
    CHECK_MSG(*tw_last_error() != '\0', "%s: no message for BUFFER_TOO_SMALL", what);

    /* A single byte. */
    memset(mem, CANARY, BIG + GUARD);
    s = fn(c, buf, 1, &len);
    CHECK_MSG(s == TW_ERR_BUFFER_TOO_SMALL && len == need && all_canary(mem, BIG + GUARD),
              "%s cap 1 -> %s, len %zu", what, tw_status_name(s), len);

    /* Exact fit: value + NUL, not one byte more. */
    memset(mem, CANARY, BIG + GUARD);
    len = 0;
    s = fn(c, buf, need, &len);
    CHECK_MSG(s == TW_OK, "%s exact fit -> %s: %s", what, tw_status_name(s), tw_last_error());
    CHECK_MSG(len == need, "%s exact fit: *len %zu, want %zu", what, len, need);
    CHECK_MSG(buf[need - 1] == '\0' && strlen(buf) == need - 1, "%s exact fit: bad string", what);
    CHECK_MSG(all_canary(mem + need, BIG + GUARD - need), "%s: wrote past the NUL", what);
    char *exact = strdup(buf);

    /* Large buffer: same value, same *len, nothing written past the NUL. */
    memset(mem, CANARY, BIG + GUARD);
    len = 0;
    s = fn(c, buf, BIG, &len);
    CHECK_MSG(s == TW_OK && len == need, "%s large buffer -> %s, len %zu (want %zu)", what,
              tw_status_name(s), len, need);
    CHECK_MSG(exact && strcmp(exact, buf) == 0, "%s: value differs between calls", what);
    CHECK_MSG(all_canary(mem + need, BIG + GUARD - need), "%s: large buffer written past NUL",
              what);
    free(exact);
    free(mem);
}

static void test_buffer_protocol(void)
{
    tw_client *c = mock_client();
    REQUIRE(c != NULL);
    check_buffer_protocol("tw_client_token", tw_client_token, c);
    check_buffer_protocol("tw_client_authorization", tw_client_authorization, c);
    check_buffer_protocol("tw_client_headers", tw_client_headers, c);

    /* Stats change between calls (cache_hits), so use the idiom and check the shape. */
    char *stats = NULL;
    CHECK_STATUS(fetch_string(tw_client_stats, c, &stats), TW_OK);
    if (stats) {
        CHECK(stats[0] == '{' && stats[strlen(stats) - 1] == '}');
        CHECK(json_number(stats, "token_requests") == 1);
        CHECK(json_number(stats, "cache_hits") >= 1);
        CHECK(json_number(stats, "failures") == 0);
        CHECK(json_number(stats, "invalidations") == 0);
        CHECK(json_number(stats, "background_refreshes") >= 0);
        CHECK(json_number(stats, "remaining_ms") > 3000 * 1000LL); /* 3600 s token */
    }
    free(stats);
    size_t len = 0;
    char tiny[4];
    memset(tiny, CANARY, sizeof tiny);
    CHECK_STATUS(tw_client_stats(c, tiny, sizeof tiny, &len), TW_ERR_BUFFER_TOO_SMALL);
    CHECK(len > sizeof tiny);
    CHECK(all_canary((unsigned char *)tiny, sizeof tiny));

    /* token_cacheable follows the same protocol and reports a reuse window. */
    uint64_t ns = 0;
    char buf[4096];
    CHECK_STATUS(tw_client_token_cacheable(c, NULL, 0, &len, &ns), TW_ERR_BUFFER_TOO_SMALL);
    size_t need = len;
    CHECK_STATUS(tw_client_token_cacheable(c, buf, need, &len, &ns), TW_OK);
    CHECK(len == need && strlen(buf) + 1 == need);
    CHECK_MSG(ns > 0 && ns <= 3600ULL * 1000000000ULL, "reusable_ns = %llu",
              (unsigned long long)ns);
    tw_client_free(c);

    /* The mock issued exactly one token for all of the above. */
    CHECK(mock_stat("token_requests") == 1);
}

/* ------------------------------------------------------------------------------------------ */
/* 4. The token and headers are what the mock issued                                          */
/* ------------------------------------------------------------------------------------------ */

static void test_token_and_headers_match_mock(void)
{
    tw_client *c = mock_client();
    REQUIRE(c != NULL);
    char *token = token_of(c);
    REQUIRE(token != NULL);

    /* The JWT's claims name our client and the mock as issuer, with the mock's TTL. */
    char payload[2048], v[256];
    REQUIRE(jwt_payload(token, payload, sizeof payload) == 0);
    CHECK(json_string(payload, "client_id", v, sizeof v) == 0 && strcmp(v, "demo-client") == 0);
    CHECK(json_string(payload, "iss", v, sizeof v) == 0 && strcmp(v, g_base) == 0);
    char jti[32] = "";
    CHECK(json_string(payload, "jti", jti, sizeof jti) == 0 && jti[0] != '\0');
    long long iat = json_number(payload, "iat"), exp = json_number(payload, "exp");
    CHECK(iat > 0 && exp - iat == 3600);

    /* The mock saw exactly one well-formed client_credentials request from us. */
    http_resp r;
    REQUIRE(http_request(g_port, "GET", "/admin/requests", NULL, NULL, &r) == 0);
    CHECK(r.status == 200);
    CHECK(strstr(r.body, "grant_type=client_credentials") != NULL);
    CHECK(strstr(r.body, "client_id=demo-client") != NULL);
    http_resp_free(&r);
    CHECK(mock_stat("tokens_issued") == 1);

    /* Authorization value. */
    char *auth = NULL;
    CHECK_STATUS(fetch_string(tw_client_authorization, c, &auth), TW_OK);
    if (auth) {
        CHECK(strncmp(auth, "Bearer ", 7) == 0 && strcmp(auth + 7, token) == 0);
    }

    /* Header lines: Authorization first, then the configured headers, each "Name: value\r\n". */
    char *h = NULL;
    CHECK_STATUS(fetch_string(tw_client_headers, c, &h), TW_OK);
    REQUIRE(h != NULL);
    char expect[4096];
    snprintf(expect, sizeof expect, "Authorization: Bearer %s\r\ntenant-code: T1\r\napi-version: 2\r\n",
             token);
    CHECK_MSG(strcmp(h, expect) == 0, "headers were \"%s\"", h);
    int lines = 0;
    for (const char *p = h; *p; p++) {
        if (*p == '\n') {
            CHECK(p > h && p[-1] == '\r'); /* never a bare LF */
            lines++;
        }
        if (*p == '\r')
            CHECK(p[1] == '\n');
    }
    CHECK(lines == 3);

    /* Those exact lines make a request the mock API accepts, with our token's jti. */
    REQUIRE(http_request(g_port, "GET", "/api/items", h, NULL, &r) == 0);
    CHECK_MSG(r.status == 200, "GET /api/items -> %d %s", r.status, r.body);
    CHECK(json_string(r.body, "tenant_code", v, sizeof v) == 0 && strcmp(v, "T1") == 0);
    CHECK(json_string(r.body, "api_version", v, sizeof v) == 0 && strcmp(v, "2") == 0);
    CHECK(json_string(r.body, "jti", v, sizeof v) == 0 && strcmp(v, jti) == 0);
    http_resp_free(&r);

    free(auth);
    free(h);
    free(token);
    tw_client_free(c);

    /* A server answering token_type "bearer" still gives "Authorization: Bearer". */
    ADMIN("/admin/config", "{\"token_type\":\"bearer\"}");
    c = mock_client();
    REQUIRE(c != NULL);
    CHECK_STATUS(fetch_string(tw_client_headers, c, &h), TW_OK);
    CHECK(h && strncmp(h, "Authorization: Bearer ", 22) == 0);
    free(h);
    tw_client_free(c);
}

static void test_send(void)
{
    tw_client *c = mock_client();
    REQUIRE(c != NULL);
    char url[256], buf[256];
    size_t len = 0, body_len = 0;
    tw_response *resp = NULL;
    static const char body[] = "{\"name\":\"widget\"}";

    snprintf(url, sizeof url, "%s/api/items?x=1", g_base);
    REQUIRE_STATUS(tw_client_send(c, "POST", url, "X-Request-Id: 42\r\n", (const uint8_t *)body,
                                  sizeof body - 1, &resp),
                   TW_OK);
    REQUIRE(resp != NULL);
    CHECK(tw_response_status(resp) == 200);
    const uint8_t *b = tw_response_body(resp, &body_len);
    CHECK(b != NULL && body_len > 0);
    if (b) {
        char *text = strndup((const char *)b, body_len);
        CHECK(text && strstr(text, "\"ok\":true") && strstr(text, "\"method\":\"POST\"") &&
              strstr(text, "\"tenant_code\":\"T1\""));
        CHECK(text && strstr(text, "widget") != NULL);
        free(text);
    }
    CHECK_STATUS(tw_response_header(resp, "Content-Type", buf, sizeof buf, &len), TW_OK);
    CHECK(strstr(buf, "application/json") != NULL && len == strlen(buf) + 1);
    CHECK_STATUS(tw_response_header(resp, "content-type", NULL, 0, &len),
                 TW_ERR_BUFFER_TOO_SMALL);
    len = 77;
    CHECK_STATUS(tw_response_header(resp, "x-not-there", buf, sizeof buf, &len), TW_OK);
    CHECK(len == 0);
    tw_response_free(resp);

    /* A revoked token: one 401, one refresh, one retry -> 200. */
    long long before = mock_stat("token_requests");
    ADMIN("/admin/revoke", "{}");
    snprintf(url, sizeof url, "%s/api/items", g_base);
    resp = NULL;
    CHECK_STATUS(tw_client_send(c, "GET", url, NULL, NULL, 0, &resp), TW_OK);
    CHECK(tw_response_status(resp) == 200);
    tw_response_free(resp);
    CHECK(mock_stat("token_requests") == before + 1);

    snprintf(url, sizeof url, "%s/api/forbidden", g_base);
    resp = (tw_response *)(uintptr_t)0x1;
    CHECK_STATUS(tw_client_send(c, "GET", url, NULL, NULL, 0, &resp), TW_ERR_FORBIDDEN);
    CHECK(resp == NULL);
    snprintf(url, sizeof url, "%s/api/always-401", g_base);
    CHECK_STATUS(tw_client_send(c, "GET", url, NULL, NULL, 0, &resp), TW_ERR_UNAUTHORIZED);
    CHECK(resp == NULL);
    CHECK_STATUS(tw_client_send(c, "GET", url, "no colon here\r\n", NULL, 0, &resp),
                 TW_ERR_INVALID_ARGUMENT);
    tw_client_free(c);
}

/* A client whose only API origin is the mock. */
static tw_client *bound_client(void)
{
    char extra[256];
    snprintf(extra, sizeof extra, ",\"api_base_urls\":[\"%s\"]", g_base);
    return mock_client_with("demo-secret", extra);
}

/* GET /admin/requests (what the mock's API received), malloc'ed; NULL on failure. */
static char *mock_requests(void)
{
    http_resp r;
    if (http_request(g_port, "GET", "/admin/requests", NULL, NULL, &r) != 0)
        return NULL;
    char *copy = r.status == 200 ? strdup(r.body) : NULL;
    http_resp_free(&r);
    return copy;
}

/* tw_client_send's header text is strict: every injection attempt is refused naming the
 * line, and nothing reaches the API (not even a token request). */
static void test_send_header_text_is_strict(void)
{
    tw_client *c = bound_client();
    REQUIRE(c != NULL);
    char url[256];
    snprintf(url, sizeof url, "%s/api/items", g_base);
    static const struct {
        const char *text, *line;
    } cases[] = {
        {"X-A: 1\r\nX-B: 2\nX-Evil: 1\r\n", "line 2 ends with a bare LF"},
        {"X-A: 1\rX-Evil: 1\r\n", "line 1 has a bare CR"},
        {"X-A: 1\r\n X-Evil: 1\r\n", "line 2 starts with whitespace"},
        {"X-A: 1\r\n\tX-Evil: 1\r\n", "line 2 starts with whitespace"},
        {"X-A : 1\r\n", "line 1 has whitespace before the ':'"},
        {"X-A: 1\r\n\r\nX-Evil: 1\r\n", "line 2 is empty"},
        {"X-A: 1\r\nX(Evil): 1\r\n", "line 2: header name `X(Evil)` is not an RFC 9110 token"},
        {"X-A: 1\r\nX-B: a\x01" "b\r\n", "line 2: header `X-B` has CR, LF, NUL"},
        {"X-A: 1", "line 1 does not end with CRLF"},
        {"Authorization: Bearer mine\r\n", "line 1: header `Authorization` may not be set"},
        {"X-A: 1\r\nhOsT: evil.example\r\n", "line 2: header `hOsT` may not be set"},
        {"content-length: 0\r\n", "line 1: header `content-length` may not be set"},
        {"TRANSFER-ENCODING: chunked\r\n", "may not be set"},
        {"Connection: close\r\n", "may not be set"},
        {"te: trailers\r\n", "may not be set"},
        {"Upgrade: h2c\r\n", "may not be set"},
        {"Proxy-Authorization: Basic eA==\r\n", "may not be set"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tw_response *resp = (tw_response *)(uintptr_t)0x1;
        EXPECT_NULL_ARG(tw_client_send(c, "GET", url, cases[i].text, NULL, 0, &resp),
                        cases[i].line);
        CHECK(resp == NULL);
    }
    CHECK(mock_stat("api_requests") == 0);
    CHECK(mock_stat("token_requests") == 0);

    /* A well-formed block, with one final empty line, is sent. */
    tw_response *resp = NULL;
    REQUIRE_STATUS(tw_client_send(c, "GET", url, "X-Request-Id: 42\r\n\r\n", NULL, 0, &resp),
                   TW_OK);
    CHECK(tw_response_status(resp) == 200);
    tw_response_free(resp);
    char *seen = mock_requests();
    CHECK_MSG(seen && strstr(seen, "\"x-request-id\":\"42\""), "API saw %s", seen);
    CHECK(seen && !strstr(seen, "x-evil"));
    free(seen);
    tw_client_free(c);
}

/* tw_client_send_pairs: names and values without header text, checked pair by pair. */
static void test_send_pairs(void)
{
    tw_client *c = bound_client();
    REQUIRE(c != NULL);
    char url[256];
    snprintf(url, sizeof url, "%s/api/items", g_base);
    static const char body[] = "{\"name\":\"widget\"}";
    const char *names[] = {"X-Request-Id", "Content-Type"};
    const char *values[] = {"42 43", "application/json"};
    tw_response *resp = NULL;
    REQUIRE_STATUS(tw_client_send_pairs(c, "POST", url, names, values, 2, (const uint8_t *)body,
                                        sizeof body - 1, &resp),
                   TW_OK);
    CHECK(tw_response_status(resp) == 200);
    size_t len = 0;
    const uint8_t *b = tw_response_body(resp, &len);
    char *text = b ? strndup((const char *)b, len) : NULL;
    CHECK_MSG(text && strstr(text, "\"tenant_code\":\"T1\"") && strstr(text, "widget"), "%s", text);
    free(text);
    tw_response_free(resp);
    char *seen = mock_requests();
    CHECK_MSG(seen && strstr(seen, "\"x-request-id\":\"42 43\""), "API saw %s", seen);
    free(seen);

    /* No pairs: NULL arrays are fine. */
    resp = NULL;
    CHECK_STATUS(tw_client_send_pairs(c, "GET", url, NULL, NULL, 0, NULL, 0, &resp), TW_OK);
    tw_response_free(resp);
    long long sent = mock_stat("api_requests");

    static const struct {
        const char *name, *value, *says;
    } bad[] = {
        {"X-B", "v\r\nX-Evil: 1", "header pair 1: header `X-B` has CR, LF"},
        {"X-B", "v\nX-Evil: 1", "header pair 1"},
        {"X-B", "v\rX-Evil: 1", "header pair 1"},
        {"X-B: 1\r\nX-Evil", "1", "header pair 1: header name"},
        {"X B", "1", "not an RFC 9110 token"},
        {"", "1", "not an RFC 9110 token"},
        {"HOST", "evil.example", "header pair 1: header `HOST` may not be set"},
        {"authorization", "Bearer mine", "may not be set"},
        {"Content-Length", "0", "may not be set"},
        {"Transfer-Encoding", "chunked", "may not be set"},
        {"connection", "close", "may not be set"},
        {"TE", "trailers", "may not be set"},
        {"upgrade", "h2c", "may not be set"},
        {"PROXY-AUTHORIZATION", "Basic eA==", "may not be set"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *n[] = {"X-A", bad[i].name};
        const char *v[] = {"1", bad[i].value};
        resp = (tw_response *)(uintptr_t)0x1;
        EXPECT_NULL_ARG(tw_client_send_pairs(c, "GET", url, n, v, 2, NULL, 0, &resp), bad[i].says);
        CHECK(resp == NULL);
    }
    const char *one_name[] = {"X-A"};
    const char *null_value[] = {NULL};
    const char *bad_utf8[] = {"\xff"};
    EXPECT_NULL_ARG(tw_client_send_pairs(c, "GET", url, one_name, null_value, 1, NULL, 0, &resp),
                    "`values[0]` is NULL");
    EXPECT_NULL_ARG(tw_client_send_pairs(c, "GET", url, null_value, one_name, 1, NULL, 0, &resp),
                    "`names[0]` is NULL");
    EXPECT_NULL_ARG(tw_client_send_pairs(c, "GET", url, one_name, bad_utf8, 1, NULL, 0, &resp),
                    "`values[0]` is not valid UTF-8");
    EXPECT_NULL_ARG(tw_client_send_pairs(c, "GET", url, NULL, values, 1, NULL, 0, &resp), "names");
    EXPECT_NULL_ARG(tw_client_send_pairs(c, "GET", url, names, NULL, 1, NULL, 0, &resp), "values");
    EXPECT_NULL_ARG(tw_client_send_pairs(NULL, "GET", url, NULL, NULL, 0, NULL, 0, &resp), "client");
    EXPECT_NULL_ARG(tw_client_send_pairs(c, "GET", url, NULL, NULL, 0, NULL, 0, NULL), "out");
    EXPECT_NULL_ARG(tw_client_send_pairs(c, "GET", url, NULL, NULL, 0, NULL, 3, &resp), "body");
    CHECK(mock_stat("api_requests") == sent);

    /* A URL outside api_base_urls: nothing is sent. */
    CHECK_STATUS(tw_client_send_pairs(c, "GET", "http://localhost:1/api/items", NULL, NULL, 0,
                                      NULL, 0, &resp),
                 TW_ERR_FOREIGN_ORIGIN);
    CHECK(strstr(tw_last_error(), "api_base_urls") != NULL);
    tw_client_free(c);
}

/* tw_client_headers_for binds the headers to the configured origins; tw_client_recover
 * recovers from a rejection once and refuses a refresh storm. */
static void test_headers_for_and_recover(void)
{
    tw_client *c = bound_client();
    REQUIRE(c != NULL);
    char url[256], buf[4096], first[4096];
    size_t len = 0;
    snprintf(url, sizeof url, "%s/api/items?x=1", g_base);

    memset(buf, 'x', sizeof buf);
    CHECK_STATUS(tw_client_headers_for(c, "GET", "http://localhost:1/api/items", buf, sizeof buf,
                                       &len),
                 TW_ERR_FOREIGN_ORIGIN);
    CHECK(buf[0] == 'x');
    CHECK(mock_stat("token_requests") == 0);
    EXPECT_NULL_ARG(tw_client_headers_for(c, "G T", url, buf, sizeof buf, &len), "method");
    EXPECT_NULL_ARG(tw_client_headers_for(NULL, "GET", url, buf, sizeof buf, &len), "client");
    EXPECT_NULL_ARG(tw_client_headers_for(c, NULL, url, buf, sizeof buf, &len), "method");
    EXPECT_NULL_ARG(tw_client_headers_for(c, "GET", NULL, buf, sizeof buf, &len), "url");
    EXPECT_NULL_ARG(tw_client_headers_for(c, "GET", url, buf, sizeof buf, NULL), "len");

    CHECK_STATUS(tw_client_headers_for(c, "GET", url, NULL, 0, &len), TW_ERR_BUFFER_TOO_SMALL);
    REQUIRE_STATUS(tw_client_headers_for(c, "GET", url, buf, sizeof buf, &len), TW_OK);
    CHECK(len == strlen(buf) + 1);
    CHECK_MSG(strncmp(buf, "Authorization: Bearer ", 22) == 0 && strstr(buf, "\r\ntenant-code: T1\r\n"),
              "%s", buf);
    /* The Authorization value, as an adapter would send and report it. */
    char *eol = strstr(buf, "\r\n");
    REQUIRE(eol != NULL);
    *eol = '\0';
    snprintf(first, sizeof first, "%s", buf + strlen("Authorization: "));

    int resend = 7;
    CHECK_STATUS(tw_client_recover(c, url, first, 200, NULL, (const uint8_t *)"{}", 2, &resend), TW_OK);
    CHECK(resend == 0);
    CHECK_STATUS(tw_client_recover(c, url, first, 401, "WWW-Authenticate: Bearer\r\n", NULL, 0, &resend), TW_OK);
    CHECK(resend == 1);
    /* The re-send gets a new token; the API rejects it too: no third token request. */
    REQUIRE_STATUS(tw_client_headers_for(c, "GET", url, buf, sizeof buf, &len), TW_OK);
    eol = strstr(buf, "\r\n");
    REQUIRE(eol != NULL);
    *eol = '\0';
    CHECK(strcmp(buf + strlen("Authorization: "), first) != 0);
    for (int i = 0; i < 20; i++) {
        resend = 7;
        CHECK_STATUS(tw_client_recover(c, url, buf + strlen("Authorization: "), 401, NULL, NULL, 0, &resend),
                     TW_ERR_UNAUTHORIZED);
        CHECK(resend == 0);
    }
    CHECK_MSG(strstr(tw_last_error(), "freshly issued") && strstr(tw_last_error(), "audience"),
              "%s", tw_last_error());
    CHECK(mock_stat("token_requests") == 2);
    EXPECT_NULL_ARG(tw_client_recover(c, url, first, 401, NULL, NULL, 0, NULL), "resend");
    EXPECT_NULL_ARG(tw_client_recover(NULL, url, first, 401, NULL, NULL, 0, &resend), "client");
    EXPECT_NULL_ARG(tw_client_recover(c, NULL, first, 401, NULL, NULL, 0, &resend), "url");
    EXPECT_NULL_ARG(tw_client_recover(c, url, NULL, 401, NULL, NULL, 0, &resend), "authorization");
    EXPECT_NULL_ARG(tw_client_recover(c, url, first, 401, NULL, NULL, 4, &resend), "body");
    tw_client_free(c);
}

/* DPoP: a bound token, a fresh proof per request from tw_client_headers_for and
 * tw_client_send, an API nonce answered through tw_client_recover, and the
 * request-independent calls refused with TW_ERR_NEEDS_REQUEST. */
static void test_dpop(void)
{
    ADMIN("/admin/config", "{\"dpop\":\"required\",\"dpop_api_nonce\":\"c-n-1\"}");
    tw_client *c = mock_client_with("demo-secret", ",\"dpop\":{\"generate\":true}");
    REQUIRE(c != NULL);
    char url[256], buf[8192], payload[2048], first[8192];
    size_t len = 0;
    snprintf(url, sizeof url, "%s/api/items?x=1", g_base);

    CHECK_STATUS(tw_client_headers(c, buf, sizeof buf, &len), TW_ERR_NEEDS_REQUEST);
    CHECK_MSG(strstr(tw_last_error(), "tw_client_headers_for") != NULL, "%s", tw_last_error());
    CHECK_STATUS(tw_client_authorization(c, buf, sizeof buf, &len), TW_ERR_NEEDS_REQUEST);
    CHECK(strcmp(tw_status_name(TW_ERR_NEEDS_REQUEST), "TW_ERR_NEEDS_REQUEST") == 0);

    char *token = token_of(c);
    REQUIRE(token != NULL);
    CHECK(jwt_payload(token, payload, sizeof payload) == 0 && strstr(payload, "\"cnf\":{\"jkt\":"));

    /* tw_client_headers_for: Authorization: DPoP, then the proof, then the static headers. */
    REQUIRE_STATUS(tw_client_headers_for(c, "GET", url, buf, sizeof buf, &len), TW_OK);
    CHECK_MSG(strncmp(buf, "Authorization: DPoP ", 20) == 0 && strstr(buf, "\r\nDPoP: ey") &&
                  strstr(buf, "\r\ntenant-code: T1\r\n"),
              "%s", buf);
    snprintf(first, sizeof first, "%s", buf);
    /* The API asks for its nonce; tw_client_recover learns it and says re-send. */
    http_resp r;
    REQUIRE(http_request(g_port, "GET", "/api/items?x=1", first, NULL, &r) == 0);
    CHECK_MSG(r.status == 401 && strstr(r.raw, "use_dpop_nonce"), "%d %s", r.status, r.raw);
    char *end = strstr(r.raw, "\r\n\r\n");
    REQUIRE(end != NULL);
    end[2] = '\0'; /* the status line and header lines, each ended by CRLF */
    char *answer = strstr(r.raw, "\r\n") + 2;
    char authorization[4096];
    char *eol = strstr(first, "\r\n");
    REQUIRE(eol != NULL);
    snprintf(authorization, sizeof authorization, "%.*s", (int)(eol - first - 15), first + 15);
    int resend = 0;
    CHECK_STATUS(tw_client_recover(c, url, authorization, 401, answer, NULL, 0, &resend), TW_OK);
    CHECK(resend == 1);
    http_resp_free(&r);
    CHECK(client_stat(c, "invalidations") == 0);
    /* The re-send carries the nonce and works; the first headers are a replay now. */
    REQUIRE_STATUS(tw_client_headers_for(c, "GET", url, buf, sizeof buf, &len), TW_OK);
    CHECK(strncmp(buf, first, (size_t)(eol - first)) == 0); /* the same token */
    REQUIRE(http_request(g_port, "GET", "/api/items?x=1", buf, NULL, &r) == 0);
    CHECK_MSG(r.status == 200, "%d %s", r.status, r.body);
    http_resp_free(&r);
    REQUIRE(http_request(g_port, "GET", "/api/items?x=1", buf, NULL, &r) == 0);
    CHECK(r.status == 401);
    http_resp_free(&r);

    /* tw_client_send signs by itself, on the first try now that the nonce is known. */
    long long before = mock_stat("api_requests");
    tw_response *resp = NULL;
    REQUIRE_STATUS(tw_client_send(c, "DELETE", url, NULL, NULL, 0, &resp), TW_OK);
    CHECK(tw_response_status(resp) == 200);
    tw_response_free(resp);
    CHECK(mock_stat("api_requests") == before + 1);
    CHECK(mock_stat("token_requests") == 1);
    free(token);
    tw_client_free(c);
}

/* An API that rejects every token: 50 sends cost at most 2 token requests. */
static void test_no_refresh_storm(void)
{
    tw_client *c = bound_client();
    REQUIRE(c != NULL);
    char url[256];
    snprintf(url, sizeof url, "%s/api/always-401", g_base);
    for (int i = 0; i < 50; i++) {
        tw_response *resp = (tw_response *)(uintptr_t)0x1;
        CHECK_STATUS(tw_client_send(c, "GET", url, NULL, NULL, 0, &resp), TW_ERR_UNAUTHORIZED);
        CHECK(resp == NULL);
    }
    CHECK_MSG(strstr(tw_last_error(), "freshly issued") != NULL, "%s", tw_last_error());
    long long tokens = mock_stat("token_requests");
    CHECK_MSG(tokens >= 1 && tokens <= 2, "%lld token requests for 50 sends", tokens);
    CHECK(mock_stat("api_requests") == 51);
    tw_client_free(c);
}

/* Handles carry a tag: a freed or foreign handle is refused, not undefined behaviour
 * (this runs under ASan and valgrind: the check itself must read only live memory). */
static void test_freed_and_foreign_handles(void)
{
    tw_client *c = mock_client();
    REQUIRE(c != NULL);
    char buf[2048], url[256];
    size_t len = 0;
    snprintf(url, sizeof url, "%s/api/items", g_base);
    tw_response *resp = NULL;
    REQUIRE_STATUS(tw_client_send(c, "GET", url, NULL, NULL, 0, &resp), TW_OK);

    /* One kind is not the other. */
    EXPECT_NULL_ARG(tw_client_token((tw_client *)(void *)resp, buf, sizeof buf, &len),
                    "not a tw_client handle");
    CHECK(tw_response_status((const tw_response *)(void *)c) == 0);
    CHECK(strstr(tw_last_error(), "not a tw_response handle") != NULL);
    /* Nor is some other aligned memory, or a misaligned pointer. */
    static uint64_t zeros[8];
    EXPECT_NULL_ARG(tw_client_token((tw_client *)(void *)zeros, buf, sizeof buf, &len),
                    "not a tw_client handle");
    EXPECT_NULL_ARG(tw_client_token((tw_client *)(void *)((char *)zeros + 1), buf, sizeof buf,
                                    &len),
                    "not a tw_client handle");

    tw_response_free(resp);
    CHECK(tw_response_status(resp) == 0);
    CHECK(strstr(tw_last_error(), "already freed") != NULL);
    len = 9;
    CHECK(tw_response_body(resp, &len) == NULL && len == 0);
    EXPECT_NULL_ARG(tw_response_header(resp, "content-type", buf, sizeof buf, &len),
                    "already freed");
    tw_response_free(resp); /* a double free is caught and ignored */

    tw_client_free(c);
    EXPECT_NULL_ARG(tw_client_token(c, buf, sizeof buf, &len), "`client` is a tw_client that was already freed");
    EXPECT_NULL_ARG(tw_client_headers(c, buf, sizeof buf, &len), "already freed");
    EXPECT_NULL_ARG(tw_client_send(c, "GET", url, NULL, NULL, 0, &resp), "already freed");
    EXPECT_NULL_ARG(tw_client_invalidate(c, NULL), "already freed");
    tw_client_free(c); /* caught and ignored */
    CHECK(strstr(tw_last_error(), "already freed") != NULL);

    /* A new client gets its own handle; the freed one stays freed. */
    tw_client *again = mock_client();
    REQUIRE(again != NULL);
    CHECK(again != c);
    CHECK_STATUS(tw_client_token(again, buf, sizeof buf, &len), TW_OK);
    EXPECT_NULL_ARG(tw_client_token(c, buf, sizeof buf, &len), "already freed");
    tw_client_free(again);
}

/* ------------------------------------------------------------------------------------------ */
/* 5. Concurrency: single flight, invalidate                                                  */
/* ------------------------------------------------------------------------------------------ */

typedef struct racer {
    tw_client *c;
    pthread_barrier_t *start;
    const char *invalidate; /* token to invalidate first, or NULL */
    tw_status status;
    char token[2048];
} racer;

static void *race_token(void *arg)
{
    racer *r = arg;
    size_t len = 0;
    pthread_barrier_wait(r->start);
    if (r->invalidate)
        tw_client_invalidate(r->c, r->invalidate);
    r->status = tw_client_token(r->c, r->token, sizeof r->token, &len);
    return NULL;
}

/* n threads start together on one handle; returns 0 when all succeeded with the same token. */
static int race(tw_client *c, int n, const char *invalidate_first, char *token_out, size_t cap)
{
    pthread_barrier_t start;
    racer *rs = calloc((size_t)n, sizeof *rs);
    pthread_t *ts = calloc((size_t)n, sizeof *ts);
    int started = 0, bad = 0;
    if (!rs || !ts || pthread_barrier_init(&start, NULL, (unsigned)n) != 0) {
        free(rs);
        free(ts);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        rs[i].c = c;
        rs[i].start = &start;
        rs[i].invalidate = invalidate_first;
        if (pthread_create(&ts[i], NULL, race_token, &rs[i]) != 0) {
            /* Cannot happen in practice; the barrier would never open. */
            fprintf(stderr, "pthread_create failed\n");
            abort();
        }
        started++;
    }
    for (int i = 0; i < started; i++)
        pthread_join(ts[i], NULL);
    for (int i = 0; i < n; i++) {
        if (rs[i].status != TW_OK) {
            check_failed(__FILE__, __LINE__, "thread %d: %s", i, tw_status_name(rs[i].status));
            bad = 1;
        } else if (strcmp(rs[i].token, rs[0].token) != 0) {
            check_failed(__FILE__, __LINE__, "thread %d got a different token", i);
            bad = 1;
        }
    }
    if (!bad && token_out)
        snprintf(token_out, cap, "%s", rs[0].token);
    pthread_barrier_destroy(&start);
    free(rs);
    free(ts);
    return bad ? -1 : 0;
}

static void test_single_flight_cold_cache(void)
{
    /* Slow the token endpoint so every thread arrives while the one fetch is in flight. */
    ADMIN("/admin/config", "{\"token_delay_ms\":300}");
    tw_client *c = mock_client();
    REQUIRE(c != NULL);
    char token[2048];
    CHECK(race(c, g_threads, NULL, token, sizeof token) == 0);
    CHECK_MSG(mock_stat("token_requests") == 1, "mock saw %lld token requests for %d threads",
              mock_stat("token_requests"), g_threads);
    CHECK(client_stat(c, "token_requests") == 1);
    tw_client_free(c);
}

static void test_invalidate(void)
{
    tw_client *c = mock_client();
    REQUIRE(c != NULL);
    char *t1 = token_of(c);
    REQUIRE(t1 != NULL);
    CHECK(mock_stat("token_requests") == 1);

    /* Current token -> evicted; the next call fetches exactly once. */
    CHECK_STATUS(tw_client_invalidate(c, t1), TW_OK);
    char *t2 = token_of(c);
    REQUIRE(t2 != NULL);
    CHECK(strcmp(t1, t2) != 0);
    CHECK(mock_stat("token_requests") == 2);

    /* A stale (older) token or an unrelated string is a no-op. */
    CHECK_STATUS(tw_client_invalidate(c, t1), TW_OK);
    CHECK_STATUS(tw_client_invalidate(c, "not-a-token"), TW_OK);
    CHECK_STATUS(tw_client_invalidate(c, ""), TW_OK);
    char *t = token_of(c);
    CHECK(t && strcmp(t, t2) == 0);
    free(t);
    CHECK(mock_stat("token_requests") == 2);

    /* A prefix of the current token is not the current token. */
    char *prefix = strndup(t2, strlen(t2) - 1);
    CHECK_STATUS(tw_client_invalidate(c, prefix), TW_OK);
    free(prefix);
    t = token_of(c);
    CHECK(t && strcmp(t, t2) == 0);
    free(t);
    CHECK(mock_stat("token_requests") == 2);

    /* Many threads that all saw a 401 with t2 invalidate it at once: one refresh. */
    ADMIN("/admin/config", "{\"token_delay_ms\":100}");
    char t3[2048] = "";
    CHECK(race(c, g_threads, t2, t3, sizeof t3) == 0);
    CHECK(strcmp(t3, t2) != 0);
    CHECK_MSG(mock_stat("token_requests") == 3, "token requests %lld, want 3",
              mock_stat("token_requests"));

    /* NULL evicts unconditionally. */
    CHECK_STATUS(tw_client_invalidate(c, NULL), TW_OK);
    t = token_of(c);
    CHECK(t && strcmp(t, t3) != 0);
    free(t);
    CHECK(mock_stat("token_requests") == 4);
    CHECK(client_stat(c, "invalidations") >= 3);

    /* Invalid UTF-8 in the token argument is rejected, not misread. */
    CHECK_STATUS(tw_client_invalidate(c, "\xff\xfe"), TW_ERR_INVALID_ARGUMENT);
    free(t1);
    free(t2);
    tw_client_free(c);
}

/* ------------------------------------------------------------------------------------------ */
/* 6. Events                                                                                  */
/* ------------------------------------------------------------------------------------------ */

#define MAX_EVENTS 128

typedef struct event_log {
    pthread_mutex_t lock;
    int magic;
    int n;
    int bad_user_data;
    int null_fields;
    tw_event_kind kinds[MAX_EVENTS];
    char names[MAX_EVENTS][32];
    char messages[MAX_EVENTS][512];
} event_log;

#define EVENT_LOG_MAGIC 0x7e57

static void record_event(void *user_data, const tw_event *event)
{
    event_log *log = user_data;
    if (!log || log->magic != EVENT_LOG_MAGIC)
        return; /* cannot record; counted via the static below */
    pthread_mutex_lock(&log->lock);
    if (!event || !event->kind_name || !event->message) {
        log->null_fields++;
    } else if (log->n < MAX_EVENTS) {
        log->kinds[log->n] = event->kind;
        snprintf(log->names[log->n], sizeof log->names[0], "%s", event->kind_name);
        snprintf(log->messages[log->n], sizeof log->messages[0], "%s", event->message);
        log->n++;
    }
    pthread_mutex_unlock(&log->lock);
}

static int count_events(event_log *log, tw_event_kind kind)
{
    int n = 0;
    pthread_mutex_lock(&log->lock);
    for (int i = 0; i < log->n; i++)
        n += log->kinds[i] == kind;
    pthread_mutex_unlock(&log->lock);
    return n;
}

static int total_events(event_log *log)
{
    pthread_mutex_lock(&log->lock);
    int n = log->n;
    pthread_mutex_unlock(&log->lock);
    return n;
}

/* No event message may contain a secret or (a large piece of) a token. */
static void check_no_secrets(event_log *log, const char *const *needles, size_t n)
{
    pthread_mutex_lock(&log->lock);
    for (int i = 0; i < log->n; i++) {
        for (size_t k = 0; k < n; k++) {
            if (needles[k] && *needles[k] && strstr(log->messages[i], needles[k]))
                check_failed(__FILE__, __LINE__, "event %s message leaks \"%.12s...\": %s",
                             log->names[i], needles[k], log->messages[i]);
        }
    }
    pthread_mutex_unlock(&log->lock);
}

/* Every TW_EVENT_* value and the kind_name the library gives it. */
#define MAX_EVENT_KIND TW_EVENT_SHARED_STORE_RECOVERED
static const char *const EVENT_KIND_NAMES[MAX_EVENT_KIND + 1] = {
    [TW_EVENT_TOKEN_ACQUIRED] = "token_acquired",
    [TW_EVENT_FETCH_FAILED] = "fetch_failed",
    [TW_EVENT_REFRESH_FAILED] = "refresh_failed",
    [TW_EVENT_SERVED_STALE] = "served_stale",
    [TW_EVENT_RETRY_SCHEDULED] = "retry_scheduled",
    [TW_EVENT_INVALIDATED] = "invalidated",
    [TW_EVENT_WARNING] = "warning",
    [TW_EVENT_SHARED_STORE_UNAVAILABLE] = "shared_store_unavailable",
    [TW_EVENT_SHARED_STORE_RECOVERED] = "shared_store_recovered",
};

static void test_events(void)
{
    static event_log log; /* static: large */
    memset(&log, 0, sizeof log);
    pthread_mutex_init(&log.lock, NULL);
    log.magic = EVENT_LOG_MAGIC;

    tw_client *c = mock_client_with(
        "demo-secret", ",\"retry\":{\"max_attempts\":2,\"base_delay_ms\":10,\"max_delay_ms\":50},"
                       "\"error_cooldown_ms\":0");
    REQUIRE(c != NULL);
    REQUIRE_STATUS(tw_client_set_event_callback(c, record_event, &log), TW_OK);

    /* Acquire. */
    char *t1 = token_of(c);
    REQUIRE(t1 != NULL);
    CHECK(count_events(&log, TW_EVENT_TOKEN_ACQUIRED) == 1);
    pthread_mutex_lock(&log.lock);
    CHECK(log.n >= 1 && log.kinds[0] == TW_EVENT_TOKEN_ACQUIRED &&
          strcmp(log.names[0], "token_acquired") == 0 && log.messages[0][0] != '\0');
    pthread_mutex_unlock(&log.lock);

    /* Invalidate. */
    CHECK_STATUS(tw_client_invalidate(c, t1), TW_OK);
    CHECK(count_events(&log, TW_EVENT_INVALIDATED) == 1);

    /* A faulted fetch: 503 twice (both attempts) -> retry scheduled, then failure. */
    ADMIN("/admin/fault", "{\"target\":\"token\",\"status\":503,\"count\":2,\"body\":\"down\"}");
    char buf[2048];
    size_t len = 0;
    CHECK_STATUS(tw_client_token(c, buf, sizeof buf, &len), TW_ERR_SERVER);
    CHECK(count_events(&log, TW_EVENT_RETRY_SCHEDULED) >= 1);
    CHECK(count_events(&log, TW_EVENT_FETCH_FAILED) == 1);

    /* Bad secret via rotation: invalid_client, a failure event, secret never shown. */
    static const char bad_secret[] = "wrong-secret-0xC0FFEE";
    CHECK_STATUS(tw_client_set_client_secret(c, bad_secret), TW_OK);
    CHECK_STATUS(tw_client_token(c, buf, sizeof buf, &len), TW_ERR_INVALID_CLIENT);
    CHECK(strstr(tw_last_error(), bad_secret) == NULL);
    CHECK(count_events(&log, TW_EVENT_FETCH_FAILED) == 2);

    /* Rotate back: works again with a new token. */
    CHECK_STATUS(tw_client_set_client_secret(c, "demo-secret"), TW_OK);
    char *t2 = token_of(c);
    CHECK(t2 && strcmp(t2, t1) != 0);
    CHECK(count_events(&log, TW_EVENT_TOKEN_ACQUIRED) == 2);

    /* Every event had a name matching its kind and a message. */
    pthread_mutex_lock(&log.lock);
    for (int i = 0; i < log.n; i++) {
        int k = log.kinds[i];
        CHECK_MSG(k >= 1 && k <= MAX_EVENT_KIND && strcmp(log.names[i], EVENT_KIND_NAMES[k]) == 0,
                  "event %d: kind %d name %s", i, k, log.names[i]);
        CHECK_MSG(log.messages[i][0] != '\0', "event %d (%s) has an empty message", i,
                  log.names[i]);
    }
    CHECK(log.null_fields == 0);
    pthread_mutex_unlock(&log.lock);

    /* No secret or full token (or its claims segment) in any message. */
    char claims1[1024] = "", claims2[1024] = "";
    const char *dot;
    if ((dot = strchr(t1, '.')) != NULL)
        snprintf(claims1, sizeof claims1, "%.*s", (int)strcspn(dot + 1, "."), dot + 1);
    if (t2 && (dot = strchr(t2, '.')) != NULL)
        snprintf(claims2, sizeof claims2, "%.*s", (int)strcspn(dot + 1, "."), dot + 1);
    const char *needles[] = {"demo-secret", bad_secret, t1, t2, claims1, claims2};
    check_no_secrets(&log, needles, sizeof needles / sizeof needles[0]);

    /* NULL unregisters: nothing more is recorded. */
    CHECK_STATUS(tw_client_set_event_callback(c, NULL, NULL), TW_OK);
    int before = total_events(&log);
    CHECK_STATUS(tw_client_invalidate(c, NULL), TW_OK);
    char *t3 = token_of(c);
    CHECK(t3 != NULL);
    CHECK(total_events(&log) == before);

    free(t1);
    free(t2);
    free(t3);
    tw_client_free(c);
    pthread_mutex_destroy(&log.lock);
}

/* A shared cache that cannot be used (its directory would be inside a plain file): the
 * tokens still come, and the failure is one TW_EVENT_SHARED_STORE_UNAVAILABLE, not one per
 * call. */
static void test_shared_store_unavailable_event(void)
{
    static event_log log; /* static: large */
    memset(&log, 0, sizeof log);
    pthread_mutex_init(&log.lock, NULL);
    log.magic = EVENT_LOG_MAGIC;

    char path[] = "/tmp/tw-c-plain-file-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    char extra[256];
    snprintf(extra, sizeof extra, ",\"shared_cache\":\"file://%s/store\"", path);
    tw_client *c = mock_client_with("demo-secret", extra);
    if (c == NULL) {
        unlink(path);
        return;
    }
    CHECK_STATUS(tw_client_set_event_callback(c, record_event, &log), TW_OK);
    for (int i = 0; i < 3; i++) {
        char *t = token_of(c);
        CHECK(t != NULL);
        free(t);
        CHECK_STATUS(tw_client_invalidate(c, NULL), TW_OK);
    }
    CHECK_MSG(count_events(&log, TW_EVENT_SHARED_STORE_UNAVAILABLE) == 1, "%d events",
              count_events(&log, TW_EVENT_SHARED_STORE_UNAVAILABLE));
    pthread_mutex_lock(&log.lock);
    for (int i = 0; i < log.n; i++) {
        if (log.kinds[i] == TW_EVENT_SHARED_STORE_UNAVAILABLE)
            CHECK_MSG(strcmp(log.names[i], "shared_store_unavailable") == 0 &&
                          log.messages[i][0] != '\0',
                      "event %d: %s: %s", i, log.names[i], log.messages[i]);
    }
    pthread_mutex_unlock(&log.lock);
    CHECK(client_stat(c, "shared_errors") >= 1);
    CHECK_STATUS(tw_client_set_event_callback(c, NULL, NULL), TW_OK);
    tw_client_free(c);
    unlink(path);
    pthread_mutex_destroy(&log.lock);
}

/* A slow callback: unregistering (or freeing the client) must wait until it has returned,
 * so that the caller may free user_data right after (header contract). */
typedef struct slow_cb {
    atomic_int running;
    atomic_int calls;
    atomic_int after_unregister; /* set by the test once unregistering returned */
    atomic_int late;             /* a call that started after that */
} slow_cb;

/* A secret file others may read: one TW_EVENT_WARNING, delivered during the first
 * tw_client_set_event_callback, never again; the client still works. */
static void test_warning_for_an_exposed_secret_file(void)
{
    static event_log log; /* static: large */
    memset(&log, 0, sizeof log);
    pthread_mutex_init(&log.lock, NULL);
    log.magic = EVENT_LOG_MAGIC;

    char path[] = "/tmp/tw-c-secret-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, "demo-secret\n", 12) == 12);
    close(fd);
    REQUIRE(chmod(path, 0644) == 0);

    char json[1024];
    snprintf(json, sizeof json,
             "{\"token_url\":\"%s/oauth/token\",\"client_id\":\"demo-client\","
             "\"client_secret_file\":\"%s\",\"allow_http\":true}",
             g_base, path);
    tw_client *c = NULL;
    CHECK_STATUS(tw_client_new(json, &c), TW_OK);
    unlink(path);
    REQUIRE(c != NULL);
    CHECK_STATUS(tw_client_set_event_callback(c, record_event, &log), TW_OK);
    CHECK_MSG(count_events(&log, TW_EVENT_WARNING) == 1, "%d warnings", count_events(&log, TW_EVENT_WARNING));
    pthread_mutex_lock(&log.lock);
    CHECK(log.n >= 1 && strcmp(log.names[0], "warning") == 0 &&
          strstr(log.messages[0], "client_secret_file") != NULL &&
          strstr(log.messages[0], "demo-secret") == NULL);
    pthread_mutex_unlock(&log.lock);
    char *t = token_of(c);
    CHECK(t != NULL);
    free(t);
    CHECK_STATUS(tw_client_set_event_callback(c, record_event, &log), TW_OK);
    CHECK(count_events(&log, TW_EVENT_WARNING) == 1);
    CHECK_STATUS(tw_client_set_event_callback(c, NULL, NULL), TW_OK);
    tw_client_free(c);
}

static void slow_callback(void *user_data, const tw_event *event)
{
    slow_cb *s = user_data;
    (void)event;
    if (atomic_load(&s->after_unregister))
        atomic_fetch_add(&s->late, 1);
    atomic_store(&s->running, 1);
    atomic_fetch_add(&s->calls, 1);
    struct timespec nap = {0, 300 * 1000 * 1000};
    nanosleep(&nap, NULL);
    atomic_store(&s->running, 0);
}

typedef struct fetcher {
    tw_client *c;
    tw_status status;
} fetcher;

static void *fetch_once(void *arg)
{
    fetcher *f = arg;
    char buf[2048];
    size_t len = 0;
    f->status = tw_client_token(f->c, buf, sizeof buf, &len);
    return NULL;
}

static void test_unregister_waits_for_running_callback(void)
{
    static slow_cb s;
    atomic_store(&s.running, 0);
    atomic_store(&s.calls, 0);
    atomic_store(&s.after_unregister, 0);
    atomic_store(&s.late, 0);
    tw_client *c = mock_client();
    REQUIRE(c != NULL);
    REQUIRE_STATUS(tw_client_set_event_callback(c, slow_callback, &s), TW_OK);
    fetcher f = {c, -1};
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, fetch_once, &f) == 0);
    /* Wait (bounded) until the callback is inside its 300 ms nap. */
    double deadline = now_ms() + 5000 * g_slow;
    while (!atomic_load(&s.running) && now_ms() < deadline) {
        struct timespec nap = {0, 1000 * 1000};
        nanosleep(&nap, NULL);
    }
    CHECK_MSG(atomic_load(&s.running), "the callback never ran");
    CHECK_STATUS(tw_client_set_event_callback(c, NULL, NULL), TW_OK);
    CHECK_MSG(!atomic_load(&s.running), "unregistering returned while the callback was running");
    atomic_store(&s.after_unregister, 1);
    pthread_join(t, NULL);
    CHECK_STATUS(f.status, TW_OK);
    CHECK_STATUS(tw_client_invalidate(c, NULL), TW_OK);
    fetch_once(&f); /* a new fetch: would emit events if still registered */
    CHECK_STATUS(f.status, TW_OK);
    tw_client_free(c);
    CHECK(atomic_load(&s.late) == 0);
    CHECK(atomic_load(&s.calls) >= 1);
}

/* ------------------------------------------------------------------------------------------ */
/* 7. tw_last_error is per thread                                                             */
/* ------------------------------------------------------------------------------------------ */

typedef struct err_thread {
    pthread_barrier_t *step;
    const char *config;
    tw_status status;
    char before[256]; /* this thread's message right after its own failure */
    char after[256];  /* ... and after the other thread failed too */
} err_thread;

static void *fail_and_read(void *arg)
{
    err_thread *e = arg;
    tw_client *c = NULL;
    e->status = tw_client_new(e->config, &c);
    tw_client_free(c);
    snprintf(e->before, sizeof e->before, "%s", tw_last_error());
    pthread_barrier_wait(e->step); /* both have failed */
    pthread_barrier_wait(e->step); /* both have read once: read again */
    snprintf(e->after, sizeof e->after, "%s", tw_last_error());
    return NULL;
}

static void test_last_error_per_thread(void)
{
    pthread_barrier_t step;
    REQUIRE(pthread_barrier_init(&step, NULL, 2) == 0);
    err_thread a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    a.step = b.step = &step;
    a.config = NULL;                       /* -> "`config_json` is NULL" */
    b.config = "{\"client_secert\":\"x\"}"; /* -> names the unknown key */

    /* This thread's own error must survive the other threads' failures. */
    tw_client *out = NULL;
    CHECK_STATUS(tw_client_new("{", &out), TW_ERR_INVALID_ARGUMENT);
    char mine[256];
    snprintf(mine, sizeof mine, "%s", tw_last_error());
    CHECK(mine[0] != '\0');

    pthread_t ta, tb;
    REQUIRE(pthread_create(&ta, NULL, fail_and_read, &a) == 0);
    REQUIRE(pthread_create(&tb, NULL, fail_and_read, &b) == 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    pthread_barrier_destroy(&step);

    CHECK(a.status == TW_ERR_INVALID_ARGUMENT);
    CHECK(b.status == TW_ERR_CONFIG);
    CHECK_MSG(strstr(a.before, "config_json") != NULL, "thread A: \"%s\"", a.before);
    CHECK_MSG(strstr(b.before, "client_secert") != NULL, "thread B: \"%s\"", b.before);
    CHECK(strcmp(a.before, a.after) == 0);
    CHECK(strcmp(b.before, b.after) == 0);
    CHECK(strcmp(a.after, b.after) != 0);
    CHECK_MSG(strcmp(tw_last_error(), mine) == 0, "main thread now sees \"%s\"", tw_last_error());
}

/* ------------------------------------------------------------------------------------------ */
/* 8. Error mapping                                                                           */
/* ------------------------------------------------------------------------------------------ */

static void test_error_bad_secret(void)
{
    tw_client *c = mock_client_with("not-the-secret", "");
    REQUIRE(c != NULL);
    char buf[2048];
    size_t len = 0;
    CHECK_STATUS(tw_client_token(c, buf, sizeof buf, &len), TW_ERR_INVALID_CLIENT);
    const char *msg = tw_last_error();
    CHECK_MSG(strstr(msg, "invalid_client") != NULL, "message: %s", msg);
    CHECK(strstr(msg, "not-the-secret") == NULL);
    CHECK_STATUS(tw_client_headers(c, buf, sizeof buf, &len), TW_ERR_INVALID_CLIENT);
    /* A hard failure is remembered (error_cooldown): the mock is not asked again. */
    CHECK_MSG(mock_stat("token_requests") == 1, "token requests: %lld",
              mock_stat("token_requests"));
    CHECK(client_stat(c, "failures") >= 1);
    tw_client_free(c);
}

static void test_error_closed_port(void)
{
    /* A port that nothing listens on: bind an ephemeral port, then close it. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    struct sockaddr_in addr;
    socklen_t alen = sizeof addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0);
    REQUIRE(getsockname(fd, (struct sockaddr *)&addr, &alen) == 0);
    close(fd);

    char json[512];
    snprintf(json, sizeof json,
             "{\"token_url\":\"http://127.0.0.1:%d/oauth/token\",\"client_id\":\"demo-client\","
             "\"client_secret\":\"demo-secret\",\"allow_http\":true,"
             "\"retry\":{\"max_attempts\":2,\"base_delay_ms\":10,\"max_delay_ms\":20},"
             "\"timeouts\":{\"connect_ms\":2000,\"request_ms\":3000}}",
             ntohs(addr.sin_port));
    tw_client *c = NULL;
    REQUIRE_STATUS(tw_client_new(json, &c), TW_OK);
    char buf[2048];
    size_t len = 0;
    double t0 = now_ms();
    CHECK_STATUS(tw_client_token(c, buf, sizeof buf, &len), TW_ERR_NETWORK);
    double took = now_ms() - t0;
    CHECK_MSG(strstr(tw_last_error(), "127.0.0.1") != NULL, "message does not name the endpoint: %s",
              tw_last_error());
    CHECK_MSG(took < 3000 * g_slow, "connection refused took %.0f ms", took);
    tw_client_free(c);
}

static void test_error_timeout(void)
{
    /* Enough hangs for every attempt; request_ms bounds the whole call. */
    ADMIN("/admin/fault", "{\"target\":\"token\",\"kind\":\"hang\",\"count\":5}");
    tw_client *c = mock_client_with("demo-secret", ",\"timeouts\":{\"request_ms\":500}");
    REQUIRE(c != NULL);
    char buf[2048];
    size_t len = 0;
    double t0 = now_ms();
    CHECK_STATUS(tw_client_token(c, buf, sizeof buf, &len), TW_ERR_TIMEOUT);
    double took = now_ms() - t0;
    CHECK(*tw_last_error() != '\0');
    CHECK_MSG(took >= 450, "timed out after only %.0f ms", took);
    /* Header contract: blocks at most the configured request timeout (plus scheduling). */
    CHECK_MSG(took < 500 + 1500 * g_slow, "TW_ERR_TIMEOUT after %.0f ms with request_ms=500",
              took);
    tw_client_free(c);
}

static void test_error_timeout_single_attempt(void)
{
    ADMIN("/admin/fault", "{\"target\":\"token\",\"kind\":\"hang\",\"count\":1}");
    tw_client *c = mock_client_with(
        "demo-secret", ",\"timeouts\":{\"request_ms\":500},\"retry\":{\"max_attempts\":1}");
    REQUIRE(c != NULL);
    char buf[2048];
    size_t len = 0;
    CHECK_STATUS(tw_client_token(c, buf, sizeof buf, &len), TW_ERR_TIMEOUT);
    CHECK(mock_stat("token_requests") == 1);
    tw_client_free(c);
}

static void test_error_mapping_other(void)
{
    char buf[2048];
    size_t len = 0;
    tw_client *c;

    /* Hard OAuth errors (no retries). */
    ADMIN("/admin/config", "{\"allowed_scopes\":[\"read\"]}");
    c = mock_client_with("demo-secret", ",\"scope\":\"admin\"");
    REQUIRE(c != NULL);
    CHECK_STATUS(tw_client_token(c, buf, sizeof buf, &len), TW_ERR_INVALID_SCOPE);
    tw_client_free(c);

    ADMIN("/admin/fault", "{\"target\":\"token\",\"status\":400,\"content_type\":\"application/json\","
                          "\"body\":\"{\\\"error\\\":\\\"unauthorized_client\\\"}\"}");
    c = mock_client();
    REQUIRE(c != NULL);
    CHECK_STATUS(tw_client_token(c, buf, sizeof buf, &len), TW_ERR_UNAUTHORIZED_CLIENT);
    tw_client_free(c);

    ADMIN("/admin/fault", "{\"target\":\"token\",\"status\":400,\"content_type\":\"application/json\","
                          "\"body\":\"{\\\"error\\\":\\\"invalid_request\\\"}\"}");
    c = mock_client();
    REQUIRE(c != NULL);
    CHECK_STATUS(tw_client_token(c, buf, sizeof buf, &len), TW_ERR_OAUTH);
    tw_client_free(c);

    /* Transient errors after retries (fast retries so the test stays short). */
    static const char fast[] =
        ",\"retry\":{\"max_attempts\":2,\"base_delay_ms\":10,\"max_delay_ms\":20}";
    ADMIN("/admin/fault", "{\"target\":\"token\",\"status\":429,\"retry_after\":\"0\",\"count\":2}");
    c = mock_client_with("demo-secret", fast);
    REQUIRE(c != NULL);
    CHECK_STATUS(tw_client_token(c, buf, sizeof buf, &len), TW_ERR_RATE_LIMITED);
    tw_client_free(c);

    ADMIN("/admin/fault", "{\"target\":\"token\",\"status\":502,\"count\":2}");
    c = mock_client_with("demo-secret", fast);
    REQUIRE(c != NULL);
    CHECK_STATUS(tw_client_token(c, buf, sizeof buf, &len), TW_ERR_SERVER);
    tw_client_free(c);

    /* A transient failure followed by success is invisible to the caller. */
    ADMIN("/admin/fault", "{\"target\":\"token\",\"status\":503,\"count\":1}");
    c = mock_client_with("demo-secret", fast);
    REQUIRE(c != NULL);
    CHECK_STATUS(tw_client_token(c, buf, sizeof buf, &len), TW_OK);
    tw_client_free(c);

    /* Malformed token responses. */
    ADMIN("/admin/fault", "{\"target\":\"token\",\"status\":200,\"content_type\":\"text/html\","
                          "\"body\":\"<html>proxy login</html>\"}");
    c = mock_client();
    REQUIRE(c != NULL);
    CHECK_STATUS(tw_client_token(c, buf, sizeof buf, &len), TW_ERR_BAD_RESPONSE);
    tw_client_free(c);

    ADMIN("/admin/fault", "{\"target\":\"token\",\"kind\":\"oversized\",\"size\":3000000}");
    c = mock_client();
    REQUIRE(c != NULL);
    CHECK_STATUS(tw_client_token(c, buf, sizeof buf, &len), TW_ERR_BAD_RESPONSE);
    tw_client_free(c);
}

/* ------------------------------------------------------------------------------------------ */

typedef struct test_case {
    const char *name;
    void (*fn)(void);
} test_case;

static const test_case TESTS[] = {
    {"create_free_version_status_names", test_create_free_version_status_names},
    {"null_arguments", test_null_arguments},
    {"bad_configuration", test_bad_configuration},
    {"from_env", test_from_env},
    {"buffer_protocol", test_buffer_protocol},
    {"token_and_headers_match_mock", test_token_and_headers_match_mock},
    {"send", test_send},
    {"send_header_text_is_strict", test_send_header_text_is_strict},
    {"send_pairs", test_send_pairs},
    {"headers_for_and_recover", test_headers_for_and_recover},
    {"no_refresh_storm", test_no_refresh_storm},
    {"freed_and_foreign_handles", test_freed_and_foreign_handles},
    {"single_flight_cold_cache", test_single_flight_cold_cache},
    {"invalidate", test_invalidate},
    {"events", test_events},
    {"warning_for_an_exposed_secret_file", test_warning_for_an_exposed_secret_file},
    {"shared_store_unavailable_event", test_shared_store_unavailable_event},
    {"unregister_waits_for_running_callback", test_unregister_waits_for_running_callback},
    {"last_error_per_thread", test_last_error_per_thread},
    {"error_bad_secret", test_error_bad_secret},
    {"error_closed_port", test_error_closed_port},
    {"error_timeout", test_error_timeout},
    {"error_timeout_single_attempt", test_error_timeout_single_attempt},
    {"error_mapping_other", test_error_mapping_other},
    {"dpop", test_dpop},
};

int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    const char *env;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if ((env = getenv("TW_TEST_SLOW")) && atof(env) >= 1.0)
        g_slow = atof(env);
    if ((env = getenv("TW_TEST_THREADS")) && atoi(env) >= 2)
        g_threads = atoi(env);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGALRM, &sa, NULL);
    /* Whole-run bound: no test may hang CI. */
    alarm((unsigned)(120 * g_slow));

    if (start_mock() != 0) {
        stop_mock();
        printf("0 passed, 1 failed\n");
        return 1;
    }
    atexit(stop_mock);
    printf("tokenward %s, mock at %s, %d threads\n", tw_version(), g_base, g_threads);

    for (size_t i = 0; i < sizeof TESTS / sizeof TESTS[0]; i++) {
        if (filter && !strstr(TESTS[i].name, filter))
            continue;
        printf("[ RUN  ] %s\n", TESTS[i].name);
        g_test_failed = 0;
        if (admin_post("/admin/reset", "{}") != 0) {
            check_failed(__FILE__, __LINE__, "could not reset the mock");
            printf("[ FAIL ] %s\n", TESTS[i].name);
        } else {
            double t0 = now_ms();
            TESTS[i].fn();
            printf("%s %s (%.0f ms)\n", g_test_failed ? "[ FAIL ]" : "[  OK  ]", TESTS[i].name,
                   now_ms() - t0);
        }
        if (g_test_failed)
            g_failed++;
        else
            g_passed++;
    }
    stop_mock();
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
