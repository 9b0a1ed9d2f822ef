/*
 * curl_get — call an OAuth-protected API with libcurl, letting tokenward fetch, cache and
 * refresh the token and supply every header the API needs.
 *
 *   curl_get [TOKEN_URL] API_URL
 *
 * The client is configured from the environment (tw_client_from_env, prefix TOKENWARD_):
 *   TOKENWARD_TOKEN_URL      token endpoint (or pass TOKEN_URL as the first argument)
 *   TOKENWARD_CLIENT_ID      client id
 *   TOKENWARD_CLIENT_SECRET  client secret (or TOKENWARD_CLIENT_SECRET_FILE)
 *   TOKENWARD_SCOPE, TOKENWARD_AUDIENCE, TOKENWARD_TENANT_CODE, TOKENWARD_API_VERSION,
 *   TOKENWARD_HEADERS ("a=b;c=d"), TOKENWARD_ALLOW_HTTP=1 (loopback only), ...
 *
 * Prints the response body on stdout and "HTTP <status>" on stderr. Exit status: 0 for a
 * 2xx answer, 1 for any other answer or failure, 2 for a usage or configuration error.
 *
 * Build:
 *   cc -std=c11 -I<prefix>/include curl_get.c -L<prefix>/lib -ltokenward -lcurl -o curl_get
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "tokenward.h"

/* Wipe memory that held a token before freeing it (memset alone may be optimised away). */
static void wipe(char *p, size_t n)
{
    volatile char *v = p;
    while (n--)
        *v++ = 0;
}

/* Report a tokenward failure: status name plus this thread's message (never a secret). */
static void report(const char *what, tw_status status)
{
    fprintf(stderr, "curl_get: %s failed: %s: %s\n", what, tw_status_name(status), tw_last_error());
}

/*
 * The buffer protocol: ask for the size (buf NULL, cap 0), allocate exactly that, fetch.
 * If the value changed in between (a refresh), the call says so with the new size: retry.
 * On TW_OK *out is a malloc'ed NUL-terminated string and *out_len its buffer size.
 */
static tw_status get_headers(tw_client *client, char **out, size_t *out_len)
{
    size_t need = 0;
    char *buf = NULL;
    tw_status s = tw_client_headers(client, NULL, 0, &need);
    while (s == TW_ERR_BUFFER_TOO_SMALL) {
        if (buf)
            wipe(buf, need);
        free(buf);
        buf = malloc(need);
        if (!buf)
            return TW_ERR_BUFFER_TOO_SMALL;
        s = tw_client_headers(client, buf, need, &need);
    }
    if (s != TW_OK) {
        free(buf);
        return s;
    }
    *out = buf;
    *out_len = need;
    return TW_OK;
}

typedef struct body {
    char *data;
    size_t len;
} body;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    body *b = userdata;
    size_t n = size * nmemb;
    char *bigger = realloc(b->data, b->len + n + 1);
    if (!bigger)
        return 0; /* makes curl fail with CURLE_WRITE_ERROR */
    b->data = bigger;
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/*
 * One GET with tokenward's header lines. *sent_token receives a copy of the token used, so
 * that a 401 can invalidate exactly that token. Returns the HTTP status, or -1.
 */
static long get_once(tw_client *client, const char *url, body *resp, char **sent_token)
{
    char *headers = NULL;
    size_t headers_len = 0;
    struct curl_slist *list = NULL;
    long status = -1;
    tw_status s = get_headers(client, &headers, &headers_len);
    if (s != TW_OK) {
        report("tw_client_headers", s);
        return -1;
    }
    /* "Name: value\r\n" lines -> one curl_slist entry per line, without the CRLF. */
    for (char *line = headers, *end; *line; line = end + 2) {
        end = strstr(line, "\r\n");
        if (!end)
            break;
        *end = '\0';
        if (strncmp(line, "Authorization: Bearer ", 22) == 0)
            *sent_token = strdup(line + 22);
        struct curl_slist *next = curl_slist_append(list, line);
        if (!next)
            goto done;
        list = next;
    }

    CURL *curl = curl_easy_init();
    if (!curl)
        goto done;
    char curl_error[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_error);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    /* Never forward the bearer token to another host on a redirect. */
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    CURLcode rc = curl_easy_perform(curl);
    if (rc == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    else
        fprintf(stderr, "curl_get: %s: %s\n", url, curl_error[0] ? curl_error : curl_easy_strerror(rc));
    curl_easy_cleanup(curl);
done:
    curl_slist_free_all(list);
    wipe(headers, headers_len);
    free(headers);
    return status;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3 || strcmp(argv[1], "--help") == 0) {
        fprintf(stderr, "usage: %s [TOKEN_URL] API_URL\n"
                        "(client id, secret, headers... from TOKENWARD_* variables)\n",
                argv[0]);
        return 2;
    }
    const char *api_url = argv[argc - 1];
    if (argc == 3 && setenv("TOKENWARD_TOKEN_URL", argv[1], 1) != 0)
        return 2;

    tw_client *client = NULL;
    tw_status s = tw_client_from_env(NULL, &client);
    if (s != TW_OK) {
        report("configuration (tw_client_from_env)", s);
        return 2;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        tw_client_free(client);
        return 1;
    }

    body resp = {NULL, 0};
    char *sent = NULL;
    long status = get_once(client, api_url, &resp, &sent);
    if (status == 401 && sent) {
        /* The API rejected this token (revoked, or the IdP rotated keys): drop exactly that
         * token — concurrent callers that saw the same 401 cause a single refresh — and
         * retry once with a fresh one. */
        tw_client_invalidate(client, sent);
        wipe(sent, strlen(sent));
        free(sent);
        sent = NULL;
        free(resp.data);
        resp.data = NULL;
        resp.len = 0;
        status = get_once(client, api_url, &resp, &sent);
    }
    if (sent) {
        wipe(sent, strlen(sent));
        free(sent);
    }

    if (status >= 0) {
        fprintf(stderr, "HTTP %ld\n", status);
        if (resp.data)
            fwrite(resp.data, 1, resp.len, stdout);
        fputc('\n', stdout);
    }
    free(resp.data);
    curl_global_cleanup();
    tw_client_free(client);
    return status >= 200 && status < 300 ? 0 : 1;
}
