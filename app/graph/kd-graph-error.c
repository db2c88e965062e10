/* kd-graph-error: the one error domain of app/graph, carrying what Graph said and what to do. */
#include "graph/kd-graph-error.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

typedef KdGraphErrorInfo KdGraphErrorPrivate;

static void
kd_graph_error_private_init(KdGraphErrorPrivate *priv)
{
    memset(priv, 0, sizeof(*priv));
}

static void
kd_graph_error_private_copy(const KdGraphErrorPrivate *src, KdGraphErrorPrivate *dest)
{
    *dest = *src;
    dest->graph_code = g_strdup(src->graph_code);
    dest->graph_message = g_strdup(src->graph_message);
    dest->request_id = g_strdup(src->request_id);
    dest->client_request_id = g_strdup(src->client_request_id);
}

static void
kd_graph_error_private_clear(KdGraphErrorPrivate *priv)
{
    g_clear_pointer(&priv->graph_code, g_free);
    g_clear_pointer(&priv->graph_message, g_free);
    g_clear_pointer(&priv->request_id, g_free);
    g_clear_pointer(&priv->client_request_id, g_free);
}

/* Defines kd_graph_error_quark() and kd_graph_error_get_private(). */
G_DEFINE_EXTENDED_ERROR(KdGraphError, kd_graph_error)

const KdGraphErrorInfo *
kd_graph_error_get_info(const GError *error)
{
    if (error == NULL || error->domain != KD_GRAPH_ERROR)
        return NULL;
    return kd_graph_error_get_private(error);
}

GError *
kd_graph_error_new(KdGraphErrorCode code, const KdGraphErrorInfo *info, const char *format, ...)
{
    va_list ap;
    GError *error;

    va_start(ap, format);
    error = g_error_new_valist(KD_GRAPH_ERROR, (int)code, format, ap);
    va_end(ap);
    if (info != NULL)
        kd_graph_error_private_copy(info, kd_graph_error_get_private(error));
    return error;
}

const char *
kd_graph_error_code_name(KdGraphErrorCode code)
{
    static const char *const names[] = {
        [KD_GRAPH_ERROR_NETWORK] = "network",
        [KD_GRAPH_ERROR_TLS] = "tls",
        [KD_GRAPH_ERROR_TIMEOUT] = "timeout",
        [KD_GRAPH_ERROR_DEADLINE] = "deadline",
        [KD_GRAPH_ERROR_THROTTLED] = "throttled",
        [KD_GRAPH_ERROR_UNAVAILABLE] = "unavailable",
        [KD_GRAPH_ERROR_UNAUTHORIZED] = "unauthorized",
        [KD_GRAPH_ERROR_FORBIDDEN] = "forbidden",
        [KD_GRAPH_ERROR_NOT_FOUND] = "not-found",
        [KD_GRAPH_ERROR_BAD_REQUEST] = "bad-request",
        [KD_GRAPH_ERROR_BAD_RESPONSE] = "bad-response",
        [KD_GRAPH_ERROR_AUTH] = "auth",
        [KD_GRAPH_ERROR_DECLINED] = "declined",
        [KD_GRAPH_ERROR_EXPIRED] = "expired",
        [KD_GRAPH_ERROR_UNKNOWN_OUTCOME] = "unknown-outcome",
        [KD_GRAPH_ERROR_CONFIG] = "config",
    };

    if ((guint)code < G_N_ELEMENTS(names) && names[code] != NULL)
        return names[code];
    return "unknown";
}

/* --- Retry-After ------------------------------------------------------------------------- */

static gboolean
str_is_digits(const char *s)
{
    if (*s == '\0')
        return FALSE;
    for (; *s != '\0'; s++)
        if (!g_ascii_isdigit(*s))
            return FALSE;
    return TRUE;
}

gint64
kd_graph_retry_after_ms(const char *value)
{
    g_autofree char *v = NULL;
    time_t when;

    if (value == NULL)
        return -1;
    v = g_strstrip(g_strdup(value));
    if (str_is_digits(v)) {
        /* Anything beyond a day is as good as "not within any deadline". */
        if (strlen(v) > 6)
            return (gint64)86400 * 1000;
        return MIN(g_ascii_strtoll(v, NULL, 10), 86400) * 1000;
    }
    when = curl_getdate(v, NULL);
    if (when == (time_t)-1)
        return -1;
    if (when <= time(NULL))
        return 0;
    return MIN((gint64)(when - time(NULL)), 86400) * 1000;
}
