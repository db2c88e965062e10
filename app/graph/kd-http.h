/* kd-http: libcurl's multi interface driven by a GLib main context; no call here ever blocks. */
#pragma once

#include <gio/gio.h>

#include "base/kd-secret.h"

G_BEGIN_DECLS

typedef struct {
    const char *ca_file;     /* PEM bundle replacing the system CAs; NULL = system store */
    const char *proxy;       /* proxy URL; NULL = the usual environment variables */
    const char *user_agent;  /* "keydesk/VERSION" */
    guint connect_timeout_s; /* 0 = 10 s */
    guint request_timeout_s; /* 0 = 60 s (a whole request, transfer included) */
    /* Tests and national clouds: "HOST:PORT:CONNECT-TO-HOST:CONNECT-TO-PORT" entries as in
     * CURLOPT_CONNECT_TO, so a client can keep production host names (and verify them) while
     * talking to a loopback emulator. NULL-terminated, may be NULL. */
    const char *const *connect_to;
} KdHttpOptions;

typedef struct _KdHttp KdHttp;
typedef struct _KdHttpRequest KdHttpRequest;
typedef struct _KdHttpResponse KdHttpResponse;

/* One engine per client: one CURLM with a shared connection and TLS session cache, so
 * connections are reused. Callbacks run in @context (NULL = the thread-default context at
 * creation). TLS peer and host verification are always on; there is no option to turn them off.
 * The first call initialises libcurl for the process with an allocator that wipes freed memory
 * (curl's own copies of headers and bodies); it must precede any other use of libcurl. */
KdHttp *kd_http_new(const KdHttpOptions *options, GMainContext *context);
/* Requests still in flight complete with G_IO_ERROR_CANCELLED, from an idle on the engine's
 * context (never from inside kd_http_free). */
void kd_http_free(KdHttp **http);

KdHttpRequest *kd_http_request_new(const char *method, const char *url);
void kd_http_request_free(KdHttpRequest **request);
void kd_http_request_add_header(KdHttpRequest *request, const char *name, const char *value);
/* A body that is not secret (JSON to Graph). */
void kd_http_request_set_body(KdHttpRequest *request, GBytes *body, const char *content_type);
/* A body that is (a form with client_secret or an assertion): kept in @body, which the request
 * references and which the caller wipes; libcurl gets it without copying (CURLOPT_POSTFIELDS). */
void kd_http_request_set_secret_body(KdHttpRequest *request, KdSecret *body,
                                     const char *content_type);
/* A header that is secret (Authorization): wiped from memory when the request is freed. */
void kd_http_request_add_secret_header(KdHttpRequest *request, const char *name, const char *value);
/* Whether the request may be sent twice. Default: TRUE for GET, HEAD, PUT, DELETE, OPTIONS,
 * FALSE otherwise. libcurl re-sends a request by itself when a reused keep-alive connection
 * dies before any answer byte; a request that is not idempotent therefore always goes on a new
 * connection, so that a lost answer surfaces as CONNECTION_CLOSED instead of a second write. */
void kd_http_request_set_idempotent(KdHttpRequest *request, gboolean idempotent);

/* Sends @request (the engine takes ownership). Errors (G_IO_ERROR domain): CANCELLED,
 * TIMED_OUT, CONNECTION_REFUSED, HOST_NOT_FOUND, CONNECTION_CLOSED (reset, truncated),
 * PROXY_FAILED, FAILED; TLS verification failures are G_TLS_ERROR_BAD_CERTIFICATE. An HTTP
 * error status is not an error here: the response carries it. */
void kd_http_send_async(KdHttp *http, KdHttpRequest *request, GCancellable *cancellable,
                        GAsyncReadyCallback callback, gpointer user_data);
KdHttpResponse *kd_http_send_finish(KdHttp *http, GAsyncResult *result, GError **error);

guint kd_http_response_get_status(const KdHttpResponse *response);
/* A response header by case-insensitive name (last value if repeated), or NULL. */
const char *kd_http_response_get_header(const KdHttpResponse *response, const char *name);
/* Every header: lower-cased name → value (the last one if repeated); owned by the response. */
GHashTable *kd_http_response_get_headers(const KdHttpResponse *response);
/* The body (empty, never NULL, when there was none); owned by the response. */
GBytes *kd_http_response_get_body(const KdHttpResponse *response);
/* Seconds the whole exchange took (curl's total time). */
double kd_http_response_get_seconds(const KdHttpResponse *response);
/* Whether this response came over a connection that was already open (reuse). */
gboolean kd_http_response_get_reused_connection(const KdHttpResponse *response);
void kd_http_response_free(KdHttpResponse **response);

G_END_DECLS
