/*
 * bench_token — the C hit path: tw_client_token into a stack buffer while a token is cached.
 *
 *   bench_token [BASE_URL [RUNS [CALLS]]]
 *
 * With BASE_URL (the mock IdP's, e.g. http://127.0.0.1:41433) the client is configured for
 * the mock; without it, from TOKENWARD_* variables (tw_client_from_env). One token is
 * fetched first (the only network call); then RUNS runs (default 7) of CALLS calls (default
 * 1000000) each are timed with CLOCK_MONOTONIC, and the median ns per call is reported, for
 * tw_client_token and, for comparison, tw_client_authorization and tw_client_headers; then
 * tw_client_token from 2 threads at once on the shared handle (contention on its lock).
 * Run by `bindings/c/run_tests.sh --bench` (which starts the mock).
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tokenward.h"

typedef tw_status (*string_fn)(tw_client *, char *, size_t, size_t *);

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median ns/call over `runs` runs of `calls` calls; -1 if any call failed. */
static double bench(const char *name, string_fn fn, tw_client *c, int runs, long calls)
{
    double per_call[64];
    char buf[4096]; /* the caller's stack buffer: no allocation on our side either */
    size_t len = 0;
    if (runs > 64)
        runs = 64;
    for (long i = 0; i < calls / 10; i++) /* warm-up: caches, branch predictors, CPU clock */
        fn(c, buf, sizeof buf, &len);
    for (int r = 0; r < runs; r++) {
        tw_status bad = TW_OK;
        double t0 = now_ns();
        for (long i = 0; i < calls; i++) {
            tw_status s = fn(c, buf, sizeof buf, &len);
            if (s != TW_OK)
                bad = s;
        }
        double t1 = now_ns();
        if (bad != TW_OK) {
            fprintf(stderr, "%s failed: %s: %s\n", name, tw_status_name(bad), tw_last_error());
            return -1;
        }
        per_call[r] = (t1 - t0) / (double)calls;
    }
    qsort(per_call, (size_t)runs, sizeof per_call[0], cmp_double);
    double median = runs % 2 ? per_call[runs / 2]
                             : (per_call[runs / 2 - 1] + per_call[runs / 2]) / 2;
    printf("%-24s median %7.1f ns/call  (min %.1f, max %.1f; %d runs x %ld calls; %zu-byte value)\n",
           name, median, per_call[0], per_call[runs - 1], runs, calls, len);
    return median;
}

typedef struct worker {
    tw_client *c;
    pthread_barrier_t *start;
    long calls;
    tw_status bad;
} worker;

static void *hammer(void *arg)
{
    worker *w = arg;
    char buf[4096];
    size_t len = 0;
    pthread_barrier_wait(w->start);
    for (long i = 0; i < w->calls; i++) {
        tw_status s = tw_client_token(w->c, buf, sizeof buf, &len);
        if (s != TW_OK)
            w->bad = s;
    }
    return NULL;
}

/* Median wall-clock ns per call per thread with `n` threads calling at once. */
static double bench_threads(tw_client *c, int n, int runs, long calls)
{
    double per_call[64];
    if (runs > 64)
        runs = 64;
    for (int r = 0; r < runs; r++) {
        pthread_barrier_t start;
        pthread_t ts[8];
        worker ws[8];
        if (n > 8 || pthread_barrier_init(&start, NULL, (unsigned)n + 1) != 0)
            return -1;
        for (int i = 0; i < n; i++) {
            ws[i].c = c;
            ws[i].start = &start;
            ws[i].calls = calls;
            ws[i].bad = TW_OK;
            if (pthread_create(&ts[i], NULL, hammer, &ws[i]) != 0)
                abort(); /* the barrier would never open */
        }
        pthread_barrier_wait(&start);
        double t0 = now_ns();
        for (int i = 0; i < n; i++)
            pthread_join(ts[i], NULL);
        double t1 = now_ns();
        pthread_barrier_destroy(&start);
        for (int i = 0; i < n; i++) {
            if (ws[i].bad != TW_OK) {
                fprintf(stderr, "threads: %s\n", tw_status_name(ws[i].bad));
                return -1;
            }
        }
        per_call[r] = (t1 - t0) / (double)calls;
    }
    qsort(per_call, (size_t)runs, sizeof per_call[0], cmp_double);
    double median = runs % 2 ? per_call[runs / 2]
                             : (per_call[runs / 2 - 1] + per_call[runs / 2]) / 2;
    printf("%-24s median %7.1f ns/call  (wall time per call per thread; %d threads; min %.1f, max %.1f)\n",
           "tw_client_token x2", median, n, per_call[0], per_call[runs - 1]);
    return median;
}

int main(int argc, char **argv)
{
    int runs = argc > 2 ? atoi(argv[2]) : 7;
    long calls = argc > 3 ? atol(argv[3]) : 1000000L;
    tw_client *c = NULL;
    tw_status s;
    if (runs < 1 || calls < 1) {
        fprintf(stderr, "usage: %s [BASE_URL [RUNS [CALLS]]]\n", argv[0]);
        return 2;
    }
    if (argc > 1) {
        char json[1024];
        snprintf(json, sizeof json,
                 "{\"token_url\":\"%s/oauth/token\",\"client_id\":\"demo-client\","
                 "\"client_secret\":\"demo-secret\",\"allow_http\":true,"
                 "\"headers\":{\"tenant-code\":\"T1\",\"api-version\":\"2\"}}",
                 argv[1]);
        s = tw_client_new(json, &c);
    } else {
        s = tw_client_from_env(NULL, &c);
    }
    if (s != TW_OK) {
        fprintf(stderr, "client: %s: %s\n", tw_status_name(s), tw_last_error());
        return 1;
    }
    char buf[4096];
    size_t len = 0;
    s = tw_client_token(c, buf, sizeof buf, &len); /* the one network fetch */
    if (s != TW_OK) {
        fprintf(stderr, "first token: %s: %s\n", tw_status_name(s), tw_last_error());
        tw_client_free(c);
        return 1;
    }
    printf("tokenward %s: cache-hit path from C\n", tw_version());
    double token = bench("tw_client_token", tw_client_token, c, runs, calls);
    double auth = bench("tw_client_authorization", tw_client_authorization, c, runs, calls);
    double headers = bench("tw_client_headers", tw_client_headers, c, runs, calls);
    double two = bench_threads(c, 2, runs, calls);
    tw_client_free(c);
    if (token < 0 || auth < 0 || headers < 0 || two < 0)
        return 1;
    printf("tw_client_token hit path: %.1f ns/call (goal <= 80 ns: %s)\n", token,
           token <= 80.0 ? "met" : "NOT met");
    return 0;
}
