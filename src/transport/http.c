/*
 * http: a blocking HTTP client on libcurl, one kept-alive connection per handle.
 *
 * Used by the proxy's remote mode to ask a clampd gateway for decisions: the proxy runs
 * each request on libuv's thread pool with a handle no other request holds.
 */
#include "transport/transport-int.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tp_http {
    CURL *curl;
    char *base; /* without a trailing '/' */
    long timeout_ms;
};

int tp_http_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : ERR_IO;
}

struct tp_http *tp_http_new(const char *base_url, long timeout_ms)
{
    struct tp_http *h = calloc(1, sizeof(*h));
    size_t n = strlen(base_url);

    if (!h)
        return NULL;
    while (n && base_url[n - 1] == '/')
        n--;
    h->base = strndup(base_url, n);
    h->curl = curl_easy_init();
    h->timeout_ms = timeout_ms;
    if (!h->base || !h->curl) {
        tp_http_free(h);
        return NULL;
    }
    return h;
}

void tp_http_free(struct tp_http *h)
{
    if (!h)
        return;
    if (h->curl)
        curl_easy_cleanup(h->curl);
    free(h->base);
    free(h);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct dbuf *b = arg;
    size_t n = size * nmemb;

    /* a short count makes libcurl stop with CURLE_WRITE_ERROR: an over-long answer is
     * not an answer */
    return dbuf_add(b, data, n) ? 0 : n;
}

int tp_http_post_json(struct tp_http *h, const char *path, const char *const *headers,
                      const char *body, size_t len, struct tp_http_reply *reply)
{
    struct curl_slist *hl = NULL, *t;
    char url[2048];
    CURLcode cc;
    CURL *c = h->curl;

    memset(reply, 0, sizeof(*reply));
    dbuf_init(&reply->body, TP_HTTP_MAX_REPLY);
    if ((size_t)snprintf(url, sizeof(url), "%s%s", h->base, path) >= sizeof(url)) {
        snprintf(reply->error, sizeof(reply->error), "the URL is too long");
        return ERR_IO;
    }
    /* "Expect:" drops libcurl's 100-continue round trip */
    static const char *const fixed[] = {"Content-Type: application/json", "Expect:", NULL};
    for (const char *const *list = fixed; list; list = list == fixed ? headers : NULL)
        for (size_t i = 0; list[i]; i++) {
            if (!(t = curl_slist_append(hl, list[i]))) {
                curl_slist_free_all(hl);
                snprintf(reply->error, sizeof(reply->error), "out of memory");
                return ERR_IO;
            }
            hl = t;
        }
    curl_easy_reset(c); /* keeps the connection cache: the connection stays alive */
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L); /* SECURITY: the key goes to no one else */
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, h->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, h->timeout_ms);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &reply->body);
    cc = curl_easy_perform(c);
    curl_slist_free_all(hl);
    if (cc != CURLE_OK) {
        snprintf(reply->error, sizeof(reply->error), "%s",
                 cc == CURLE_WRITE_ERROR ? "the answer is larger than 1 MiB"
                                         : curl_easy_strerror(cc));
        return ERR_IO;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &reply->status);
    return 0;
}
