/* kd-graph-error: the one error domain of app/graph, carrying what Graph said and what to do. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define KD_GRAPH_ERROR (kd_graph_error_quark())

typedef enum {
    KD_GRAPH_ERROR_NETWORK,         /* no connection, connection lost, DNS: retrying may help */
    KD_GRAPH_ERROR_TLS,             /* certificate not trusted or wrong host name: a config fix */
    KD_GRAPH_ERROR_TIMEOUT,         /* no answer within the request timeout */
    KD_GRAPH_ERROR_DEADLINE,        /* the operation's overall deadline passed (retries included) */
    KD_GRAPH_ERROR_THROTTLED,       /* 429 still after the allowed retries */
    KD_GRAPH_ERROR_UNAVAILABLE,     /* 500/502/503/504 still after the allowed retries */
    KD_GRAPH_ERROR_UNAUTHORIZED,    /* 401 even with a fresh token */
    KD_GRAPH_ERROR_FORBIDDEN,       /* 403: permission, directory role or licence missing */
    KD_GRAPH_ERROR_NOT_FOUND,       /* 404 */
    KD_GRAPH_ERROR_BAD_REQUEST,     /* 400/405/409/415: Graph refused what was asked */
    KD_GRAPH_ERROR_BAD_RESPONSE,    /* a body that is not what Graph sends (truncated, not JSON) */
    KD_GRAPH_ERROR_AUTH,            /* the identity platform refused the app's credential/request */
    KD_GRAPH_ERROR_DECLINED,        /* device code: the person declined on their phone */
    KD_GRAPH_ERROR_EXPIRED,         /* device code: nobody signed in in time */
    KD_GRAPH_ERROR_UNKNOWN_OUTCOME, /* a write whose answer was lost and that could not be checked
                                     */
    KD_GRAPH_ERROR_CONFIG,          /* unusable options (missing credential file, bad URL) */
} KdGraphErrorCode;

/* What every KD_GRAPH_ERROR carries besides its message (GLib extended error private data). */
typedef struct {
    guint http_status;       /* 0 when no HTTP answer arrived */
    char *graph_code;        /* "Authorization_RequestDenied", "invalid_client", or NULL */
    char *graph_message;     /* the server's message (never contains a secret) or NULL */
    char *request_id;        /* request-id header / trace_id, for support, or NULL */
    char *client_request_id; /* the GUID keydesk sent */
    guint aadsts;            /* identity platform error number (AADSTS…), 0 if none */
    gboolean retryable;      /* TRUE when the same request later may succeed */
    guint retry_after_s;     /* from Retry-After, 0 if none */
} KdGraphErrorInfo;

GQuark kd_graph_error_quark(void);

/* The extra information of a KD_GRAPH_ERROR, or NULL for errors of other domains. */
const KdGraphErrorInfo *kd_graph_error_get_info(const GError *error);

/* A new KD_GRAPH_ERROR; @info (may be NULL) is copied. */
GError *kd_graph_error_new(KdGraphErrorCode code, const KdGraphErrorInfo *info, const char *format,
                           ...) G_GNUC_PRINTF(3, 4);

/* Short fixed name of a code ("throttled"), for logs. */
const char *kd_graph_error_code_name(KdGraphErrorCode code);

/* A Retry-After value (delta seconds or HTTP-date) → milliseconds to wait (at most a day), or
 * -1 when absent or unreadable. Also for $batch items, whose Retry-After is in the item. */
gint64 kd_graph_retry_after_ms(const char *value);

G_END_DECLS
