/* kd-graph-client: the asynchronous, throttle-aware Microsoft Graph client (one per tenant). */
#include "graph/kd-graph-client.h"
#include "graph/kd-json-lex.h"

#include <curl/curl.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "graph/kd-graph-auth.h"
#include "graph/kd-http.h"

#if defined(__has_include)
#if __has_include("kd-build-config.h")
#include "kd-build-config.h"
#endif
#endif

#ifdef KD_VERSION
#define KD_GRAPH_DEFAULT_USER_AGENT "keydesk/" KD_VERSION
#else
#define KD_GRAPH_DEFAULT_USER_AGENT "keydesk/0.1"
#endif

#define DEFAULT_DEADLINE_S    60
#define DEFAULT_MAX_ATTEMPTS  5
#define DEFAULT_BACKOFF_BASE  1000  /* ms */
#define DEFAULT_BACKOFF_CAP   32000 /* ms */
#define MAX_LOGGED_MESSAGE    400   /* characters of a server message kept in an error */
#define MAX_INNER_ERROR_DEPTH 8

/*
 * Retry rules. Each row says what happened to one attempt, whether the same request is sent
 * again, and for how long the client waits first. "Idempotent" is GET, PUT, DELETE (and HEAD,
 * OPTIONS), or any call made with KD_GRAPH_CALL_IDEMPOTENT. Every retry is bounded by the
 * client's max attempts (default 5 requests) and by the call's deadline (default 60 s, counted
 * from the call, retries and waits included): a wait that would end past the deadline is not
 * started, the call fails with DEADLINE at once.
 *
 *   attempt ended with            idempotent call          non-idempotent write     wait
 *   ----------------------------  -----------------------  -----------------------  --------
 *   2xx, body parses (or empty)   done                     done                     -
 *   2xx, body unreadable          retry → BAD_RESPONSE     UNKNOWN_OUTCOME          backoff
 *   401                           new token, resend once,  same (Graph refused it   none
 *                                 then UNAUTHORIZED        before running it)
 *   429                           retry → THROTTLED        retry → THROTTLED        R-A / bo
 *   503                           retry → UNAVAILABLE      retry → UNAVAILABLE      R-A / bo
 *   502, 504 (gateway lost the    retry → UNAVAILABLE      UNKNOWN_OUTCOME          R-A / bo
 *     backend's answer)
 *   500                           retry → UNAVAILABLE      UNAVAILABLE (no retry)   R-A / bo
 *   other 4xx, 1xx, 3xx           mapped error, no retry   same                     -
 *   refused, DNS, proxy, network  retry → NETWORK          retry → NETWORK          backoff
 *     unreachable (nothing sent)
 *   reset, closed, truncated      retry → NETWORK          UNKNOWN_OUTCOME          backoff
 *   request timed out             retry → TIMEOUT          UNKNOWN_OUTCOME          backoff
 *   TLS verification failed       TLS, no retry            TLS, no retry            -
 *   token fetch failed, error     retry → that error       retry → that error       R-A / bo
 *     marked retryable
 *   deadline while sending        DEADLINE                 UNKNOWN_OUTCOME          -
 *   caller cancelled              G_IO_ERROR_CANCELLED (a write may or may not have run)
 *
 * R-A: Retry-After (delta seconds or HTTP-date), waited exactly. bo: exponential backoff with
 * full jitter, a uniform random wait in [0, min(cap, base · 2^n)] for the n-th backoff of the
 * call (base 1 s, cap 32 s). The 401 resend does not count against max attempts.
 *
 * A write whose answer was lost is never sent again here: only its caller can find out whether
 * it happened (e.g. by listing fido2Methods) and decide.
 */

struct _KdGraphClient {
    GObject parent_instance;

    GMainContext *context;
    KdHttp *http;
    KdGraphAuth *auth;
    KdGraphSession *session;
    guint session_generation; /* bumped on every set_session/sign_out */

    char *graph_url; /* "https://graph.microsoft.com", no trailing slash */
    guint deadline_s;
    guint max_attempts;
    guint backoff_base_ms;
    guint backoff_cap_ms;
    GRand *rand;

    /* Copies of the option strings, alive as long as the engine and auth that were given them. */
    char *user_agent;
    char *ca_file;
    char *proxy;
    GStrv connect_to;
    char *login_url;
    char *tenant;
    char *client_id;
    char *certificate_file;
    char *private_key_file;
    KdSecret *client_secret;
};

G_DEFINE_FINAL_TYPE(KdGraphClient, kd_graph_client, G_TYPE_OBJECT)

/* --- helpers ------------------------------------------------------------------------------ */

static gboolean
method_is_idempotent(const char *method)
{
    static const char *const safe[] = {"GET", "PUT", "DELETE", "HEAD", "OPTIONS"};

    for (gsize i = 0; i < G_N_ELEMENTS(safe); i++)
        if (g_ascii_strcasecmp(method, safe[i]) == 0)
            return TRUE;
    return FALSE;
}

/* "https://host[:port]" (a trailing "/" is dropped); anything else is a configuration error. */
static char *
normalize_graph_url(const char *url, GError **error)
{
    g_autoptr(GUri) uri = NULL;
    const char *path;
    gsize len;

    if (url == NULL || *url == '\0') {
        g_set_error(error, KD_GRAPH_ERROR, KD_GRAPH_ERROR_CONFIG, "No Graph URL is configured");
        return NULL;
    }
    uri = g_uri_parse(url, G_URI_FLAGS_NONE, NULL);
    path = uri != NULL ? g_uri_get_path(uri) : NULL;
    if (uri == NULL || g_ascii_strcasecmp(g_uri_get_scheme(uri), "https") != 0 ||
        g_uri_get_host(uri) == NULL || *g_uri_get_host(uri) == '\0' ||
        g_uri_get_userinfo(uri) != NULL || g_uri_get_query(uri) != NULL ||
        g_uri_get_fragment(uri) != NULL || (path[0] != '\0' && strcmp(path, "/") != 0)) {
        g_set_error(error, KD_GRAPH_ERROR, KD_GRAPH_ERROR_CONFIG,
                    "The Graph URL must be https://host[:port] without a path: %s", url);
        return NULL;
    }
    len = strlen(url);
    if (url[len - 1] == '/')
        len--;
    return g_strndup(url, len);
}

/* Whether @url lies on this client's Graph host: "<graph_url>/…", compared without case in
 * the scheme and authority. A prefix alone is not enough ("https://graph.microsoft.com.evil"
 * or "https://graph.microsoft.com@evil" must not pass), hence the "/" after it. */
static gboolean
url_is_ours(KdGraphClient *client, const char *url)
{
    gsize n = strlen(client->graph_url);

    return g_ascii_strncasecmp(url, client->graph_url, n) == 0 && url[n] == '/';
}

static gboolean
looks_absolute(const char *path)
{
    const char *colon = strchr(path, ':');
    const char *slash = strchr(path, '/');

    return (colon != NULL && (slash == NULL || colon < slash)) || g_str_has_prefix(path, "//");
}

/* The path part for logs: no query (it may hold UPNs and names in $filter), and a segment that
 * names a person (contains '@', '%' or OData key syntax) is shown as "{key}". */
static char *
loggable_path(const char *url, gsize base_len)
{
    const char *rest = url + base_len;
    g_autofree char *path = g_strndup(rest, strcspn(rest, "?#"));
    g_auto(GStrv) segs = g_strsplit(path, "/", -1);

    for (guint i = 0; segs[i] != NULL; i++) {
        if (strpbrk(segs[i], "@%'(") != NULL) {
            g_free(segs[i]);
            segs[i] = g_strdup("{key}");
        }
    }
    return g_strjoinv("/", segs);
}

/* A string member of @obj, or NULL when absent or not a string. */
static const char *
member_string(JsonObject *obj, const char *name)
{
    JsonNode *node;

    if (obj == NULL)
        return NULL;
    node = json_object_get_member(obj, name);
    if (node == NULL || !JSON_NODE_HOLDS_VALUE(node) ||
        json_node_get_value_type(node) != G_TYPE_STRING)
        return NULL;
    return json_node_get_string(node);
}

static JsonObject *
member_object(JsonObject *obj, const char *name)
{
    JsonNode *node;

    if (obj == NULL)
        return NULL;
    node = json_object_get_member(obj, name);
    if (node == NULL || !JSON_NODE_HOLDS_OBJECT(node))
        return NULL;
    return json_node_get_object(node);
}

static JsonObject *
inner_error(JsonObject *obj)
{
    JsonObject *inner = member_object(obj, "innerError");

    return inner != NULL ? inner : member_object(obj, "innererror");
}

/* Text from a server that goes into an error message and logs: valid UTF-8, no control
 * characters, bounded. */
static char *
clean_text(const char *text)
{
    g_autofree char *valid = NULL;
    GString *out;

    if (text == NULL)
        return NULL;
    valid = g_utf8_make_valid(text, -1);
    out = g_string_new(NULL);
    for (const char *p = valid; *p != '\0' && g_utf8_strlen(out->str, -1) < MAX_LOGGED_MESSAGE;
         p += g_utf8_skip[*(const guchar *)p]) {
        gunichar c = g_utf8_get_char(p);
        if (g_unichar_iscntrl(c))
            g_string_append_c(out, ' ');
        else
            g_string_append_unichar(out, c);
    }
    return g_string_free(out, FALSE);
}

/*
 * What Graph said in an error body: {"error": {"code", "message", "innerError": {"request-id",
 * "innerError": {…}}}}, or the identity platform's {"error": "…", "error_description": "…"}.
 * Anything else (HTML from a gateway, arrays, truncated JSON) yields nothing.
 */
static void
parse_error_body(GBytes *body, char **code, char **message, char **request_id)
{
    g_autoptr(JsonParser) parser = json_parser_new();
    const char *data;
    gsize len = 0;
    JsonNode *root;
    JsonObject *top, *err, *inner;

    *code = *message = *request_id = NULL;
    if (body == NULL)
        return;
    data = g_bytes_get_data(body, &len);
    if (len == 0 || !json_parser_load_from_data(parser, data, (gssize)len, NULL))
        return;
    root = json_parser_get_root(parser);
    if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root))
        return;
    top = json_node_get_object(root);
    err = member_object(top, "error");
    if (err == NULL) {
        *code = clean_text(member_string(top, "error"));
        *message = clean_text(member_string(top, "error_description"));
        *request_id = clean_text(member_string(top, "trace_id"));
        return;
    }
    *code = clean_text(member_string(err, "code"));
    *message = clean_text(member_string(err, "message"));
    inner = inner_error(err);
    for (int depth = 0; inner != NULL && depth < MAX_INNER_ERROR_DEPTH; depth++) {
        const char *rid = member_string(inner, "request-id");
        if (rid != NULL) {
            *request_id = clean_text(rid);
            break;
        }
        inner = inner_error(inner);
    }
}

/* --- one call ----------------------------------------------------------------------------- */

typedef struct {
    char *method;
    char *url;
    char *log_path;
    GBytes *body; /* serialized JSON or NULL */
    KdGraphCallFlags flags;
    gboolean idempotent;
    char *client_request_id; /* one GUID for the logical call, the same on every retry */
    char *secret_member;     /* taken out of a successful answer before json-glib sees it */

    guint attempts;        /* requests handed to the transport (and token fetches that failed) */
    guint backoffs;        /* waits without Retry-After so far: the n of base · 2^n */
    gboolean forced_token; /* the one fresh token after a 401 has been asked for */
    gboolean force_token;  /* the next token fetch drops the cached one */
    guint session_generation;
    KdGraphSession *session; /* only while its token is being fetched */
    gint64 start_us;
    gint64 deadline_us; /* monotonic */
    gboolean deadline_passed;
    gint64 sent_us;
    GError *last_error;

    GCancellable *cancellable; /* the caller's, or NULL */
    GCancellable *inner;       /* cancelled by the caller's cancellable or by the deadline */
    /* Watches the caller's cancellable from our main context. Not g_cancellable_connect(): a
     * handler runs inside g_cancellable_cancel(), and whatever it set off could complete the
     * call there and then, where disconnecting the handler would deadlock. */
    GSource *caller_cancel_source;
    GSource *deadline_source;
    GSource *wait_source;
    GSource *wait_cancel_source;
} Call;

static void
destroy_source(GSource **source)
{
    if (*source != NULL) {
        g_source_destroy(*source);
        g_source_unref(*source);
        *source = NULL;
    }
}

static void
call_stop_sources(Call *call)
{
    destroy_source(&call->deadline_source);
    destroy_source(&call->wait_source);
    destroy_source(&call->wait_cancel_source);
    destroy_source(&call->caller_cancel_source);
}

static void
call_free(gpointer data)
{
    Call *call = data;

    call_stop_sources(call);
    g_clear_object(&call->cancellable);
    g_clear_object(&call->inner);
    g_clear_pointer(&call->session, kd_graph_session_unref);
    g_clear_error(&call->last_error);
    g_clear_pointer(&call->body, g_bytes_unref);
    g_free(call->method);
    g_free(call->url);
    g_free(call->log_path);
    g_free(call->client_request_id);
    g_free(call->secret_member);
    g_free(call);
}

static GError *call_error(Call *call, KdGraphErrorCode code, guint status, gboolean retryable,
                          const KdGraphErrorInfo *from, const char *format, ...)
    G_GNUC_PRINTF(6, 7);

static GError *
call_error(Call *call, KdGraphErrorCode code, guint status, gboolean retryable,
           const KdGraphErrorInfo *from, const char *format, ...)
{
    KdGraphErrorInfo info = {0};
    g_autofree char *message = NULL;
    va_list ap;

    if (from != NULL)
        info = *from;
    info.http_status = status != 0 ? status : info.http_status;
    info.retryable = retryable;
    info.client_request_id = call->client_request_id;
    va_start(ap, format);
    message = g_strdup_vprintf(format, ap);
    va_end(ap);
    return kd_graph_error_new(code, &info, "%s", message);
}

struct _KdGraphReply {
    guint status;
    GHashTable *headers; /* lower-cased name → value */
    JsonNode *json;
    KdSecret *secret;
};

guint
kd_graph_reply_get_status(const KdGraphReply *reply)
{
    g_return_val_if_fail(reply != NULL, 0);
    return reply->status;
}

const char *
kd_graph_reply_get_header(const KdGraphReply *reply, const char *name)
{
    g_autofree char *lower = NULL;

    g_return_val_if_fail(reply != NULL && name != NULL, NULL);
    if (reply->headers == NULL)
        return NULL;
    lower = g_ascii_strdown(name, -1);
    return g_hash_table_lookup(reply->headers, lower);
}

JsonNode *
kd_graph_reply_get_json(const KdGraphReply *reply)
{
    g_return_val_if_fail(reply != NULL, NULL);
    return reply->json;
}

KdSecret *
kd_graph_reply_take_secret(KdGraphReply *reply)
{
    g_return_val_if_fail(reply != NULL, NULL);
    return g_steal_pointer(&reply->secret);
}

void
kd_graph_reply_free(KdGraphReply *reply)
{
    if (reply == NULL)
        return;
    g_clear_pointer(&reply->headers, g_hash_table_unref);
    g_clear_pointer(&reply->json, json_node_unref);
    if (reply->secret != NULL) {
        kd_secret_wipe(reply->secret);
        kd_secret_unref(reply->secret);
    }
    g_free(reply);
}

static void
call_complete(GTask *task, KdGraphReply *reply, GError *error)
{
    Call *call = g_task_get_task_data(task);
    gint64 ms = (g_get_monotonic_time() - call->start_us) / 1000;

    call_stop_sources(call);
    if (error != NULL) {
        g_debug("graph: %s %s failed after %u attempt(s), %" G_GINT64_FORMAT
                " ms: %s (client-request-id %s)",
                call->method, call->log_path, call->attempts, ms, error->message,
                call->client_request_id);
        g_task_return_error(task, error);
    } else {
        g_task_return_pointer(task, reply, (GDestroyNotify)kd_graph_reply_free);
    }
    g_object_unref(task);
}

static void call_attempt(GTask *task);

/* The inner cancellable fired: the caller cancelled, or the deadline passed. */
static void
call_interrupted(GTask *task, gboolean was_sending)
{
    Call *call = g_task_get_task_data(task);
    const KdGraphErrorInfo *last = kd_graph_error_get_info(call->last_error);
    GError *error;

    if (g_cancellable_is_cancelled(call->cancellable) || !call->deadline_passed) {
        error = g_error_new_literal(G_IO_ERROR, G_IO_ERROR_CANCELLED, "Operation was cancelled");
    } else if (was_sending && !call->idempotent) {
        error = call_error(call, KD_GRAPH_ERROR_UNKNOWN_OUTCOME, 0, FALSE, NULL,
                           "%s %s: the deadline passed while Graph was working on it; whether "
                           "it happened is unknown",
                           call->method, call->log_path);
    } else {
        error = call_error(call, KD_GRAPH_ERROR_DEADLINE, 0, TRUE, last,
                           "%s %s: no answer within the deadline%s%s", call->method, call->log_path,
                           call->last_error != NULL ? "; last: " : "",
                           call->last_error != NULL ? call->last_error->message : "");
    }
    call_complete(task, NULL, error);
}

static gboolean
on_wait_done(gpointer data)
{
    GTask *task = data;
    Call *call = g_task_get_task_data(task);

    destroy_source(&call->wait_cancel_source);
    g_clear_pointer(&call->wait_source, g_source_unref);
    call_attempt(task);
    return G_SOURCE_REMOVE;
}

static gboolean
on_wait_cancelled(GCancellable *cancellable, gpointer data)
{
    GTask *task = data;
    Call *call = g_task_get_task_data(task);

    destroy_source(&call->wait_source);
    g_clear_pointer(&call->wait_cancel_source, g_source_unref);
    call_interrupted(task, FALSE);
    return G_SOURCE_REMOVE;
}

static gboolean
on_deadline(gpointer data)
{
    GTask *task = data;
    Call *call = g_task_get_task_data(task);

    /* Whatever runs now (token fetch, request, wait) ends through the inner cancellable. */
    call->deadline_passed = TRUE;
    g_clear_pointer(&call->deadline_source, g_source_unref);
    g_cancellable_cancel(call->inner);
    return G_SOURCE_REMOVE;
}

static gboolean
on_caller_cancelled(GCancellable *cancellable, gpointer data)
{
    GTask *task = data;
    Call *call = g_task_get_task_data(task);

    g_clear_pointer(&call->caller_cancel_source, g_source_unref);
    /* May complete the call right here (and free @call): nothing touches it afterwards. */
    g_cancellable_cancel(call->inner);
    return G_SOURCE_REMOVE;
}

static guint
backoff_ms(KdGraphClient *client, guint n)
{
    guint64 ceiling = client->backoff_base_ms;

    for (guint i = 0; i < n && ceiling < client->backoff_cap_ms; i++)
        ceiling *= 2;
    ceiling = MIN(ceiling, (guint64)client->backoff_cap_ms);
    return (guint)g_rand_int_range(client->rand, 0, (gint32)ceiling + 1);
}

/*
 * After a failed attempt: wait and try again if @retry and the budget allows, else fail with
 * @error. @retry_after_ms is the server's Retry-After (-1 = none: back off instead).
 */
static void
call_retry_or_fail(GTask *task, GError *error, gboolean retry, gint64 retry_after_ms)
{
    KdGraphClient *client = g_task_get_source_object(task);
    Call *call = g_task_get_task_data(task);
    guint limit = client->max_attempts + (call->forced_token ? 1 : 0);
    gint64 delay_ms, now = g_get_monotonic_time();

    if (!retry || call->attempts >= limit) {
        call_complete(task, NULL, error);
        return;
    }
    delay_ms = retry_after_ms >= 0 ? retry_after_ms : backoff_ms(client, call->backoffs++);
    if (now + delay_ms * 1000 >= call->deadline_us) {
        /* Never sleep past the deadline: say so now rather than after a pointless wait. */
        GError *deadline = call_error(
            call, KD_GRAPH_ERROR_DEADLINE, 0, TRUE, kd_graph_error_get_info(error),
            "%s %s: the deadline does not leave the %" G_GINT64_FORMAT " ms to wait before "
            "retrying; last: %s",
            call->method, call->log_path, delay_ms, error->message);
        g_error_free(error);
        call_complete(task, NULL, deadline);
        return;
    }
    g_debug("graph: %s %s: retrying in %" G_GINT64_FORMAT " ms (%s): %s", call->method,
            call->log_path, delay_ms, retry_after_ms >= 0 ? "Retry-After" : "backoff",
            error->message);
    g_clear_error(&call->last_error);
    call->last_error = error;
    call->wait_source = g_timeout_source_new((guint)delay_ms);
    g_source_set_callback(call->wait_source, on_wait_done, task, NULL);
    g_source_attach(call->wait_source, client->context);
    call->wait_cancel_source = g_cancellable_source_new(call->inner);
    g_source_set_callback(call->wait_cancel_source, G_SOURCE_FUNC(on_wait_cancelled), task, NULL);
    g_source_attach(call->wait_cancel_source, client->context);
}

static void
on_transport_error(GTask *task, GError *error)
{
    Call *call = g_task_get_task_data(task);
    KdGraphErrorCode code = KD_GRAPH_ERROR_NETWORK;
    gboolean not_sent = FALSE;
    GError *mapped;

    if (error->domain == G_TLS_ERROR) {
        mapped = call_error(call, KD_GRAPH_ERROR_TLS, 0, FALSE, NULL,
                            "%s %s: the Graph server's certificate was not accepted: %s",
                            call->method, call->log_path, error->message);
        call_complete(task, NULL, mapped);
        return;
    }
    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT)) {
        code = KD_GRAPH_ERROR_TIMEOUT;
    } else if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED) ||
               g_error_matches(error, G_IO_ERROR, G_IO_ERROR_HOST_NOT_FOUND) ||
               g_error_matches(error, G_IO_ERROR, G_IO_ERROR_HOST_UNREACHABLE) ||
               g_error_matches(error, G_IO_ERROR, G_IO_ERROR_NETWORK_UNREACHABLE) ||
               g_error_matches(error, G_IO_ERROR, G_IO_ERROR_PROXY_FAILED)) {
        not_sent = TRUE; /* no connection to Graph was ever made: safe for any method */
    }
    if (!not_sent && !call->idempotent) {
        mapped = call_error(call, KD_GRAPH_ERROR_UNKNOWN_OUTCOME, 0, FALSE, NULL,
                            "%s %s: the answer was lost (%s); whether it happened is unknown",
                            call->method, call->log_path, error->message);
        call_complete(task, NULL, mapped);
        return;
    }
    mapped = call_error(call, code, 0, TRUE, NULL, "%s %s: %s", call->method, call->log_path,
                        error->message);
    call_retry_or_fail(task, mapped, TRUE, -1);
}

static KdGraphErrorCode
code_for_status(guint status)
{
    switch (status) {
    case 401:
        return KD_GRAPH_ERROR_UNAUTHORIZED;
    case 403:
        return KD_GRAPH_ERROR_FORBIDDEN;
    case 404:
        return KD_GRAPH_ERROR_NOT_FOUND;
    case 429:
        return KD_GRAPH_ERROR_THROTTLED;
    default:
        break;
    }
    if (status >= 500 && status < 600)
        return KD_GRAPH_ERROR_UNAVAILABLE;
    if (status >= 400 && status < 500)
        return KD_GRAPH_ERROR_BAD_REQUEST; /* 400, 405, 409, 415 and the rarer ones */
    return KD_GRAPH_ERROR_BAD_RESPONSE;    /* 1xx, 3xx: not something Graph answers */
}

static void
on_response(GTask *task, KdHttpResponse *response)
{
    Call *call = g_task_get_task_data(task);
    guint status = kd_http_response_get_status(response);
    const char *header_rid = kd_http_response_get_header(response, "request-id");
    gint64 retry_after_ms =
        kd_graph_retry_after_ms(kd_http_response_get_header(response, "Retry-After"));
    GBytes *body = kd_http_response_get_body(response);
    g_autofree char *code = NULL, *message = NULL, *body_rid = NULL, *rid = NULL;
    KdGraphErrorInfo info = {0};
    KdGraphErrorCode ecode;
    gboolean retry = FALSE;
    GError *error;

    g_debug("graph: %s %s -> %u in %" G_GINT64_FORMAT " ms (attempt %u, request-id %s, "
            "client-request-id %s)",
            call->method, call->log_path, status, (g_get_monotonic_time() - call->sent_us) / 1000,
            call->attempts, header_rid != NULL ? header_rid : "-", call->client_request_id);

    if (status >= 200 && status < 300) {
        g_autoptr(JsonParser) parser = json_parser_new();
        g_autoptr(GError) parse_error = NULL;
        g_autoptr(KdSecret) text = NULL; /* the body, when it holds a secret */
        KdGraphReply *reply;
        const char *data = NULL;
        gsize len = 0;
        gboolean parsed;

        if (body != NULL)
            data = g_bytes_get_data(body, &len);
        reply = g_new0(KdGraphReply, 1);
        reply->status = status;
        reply->headers = g_hash_table_ref(kd_http_response_get_headers(response));
        if (status == 204 || len == 0) {
            call_complete(task, reply, NULL);
            return;
        }
        if (call->secret_member != NULL) {
            /* json-glib's scanner leaves copies of every string in freed memory: the secret
             * is taken out of a locked copy of the text first (kd-json-lex.h). */
            text = kd_secret_new_from(data, len);
            data = kd_secret_get_string(text);
            parsed = kd_json_take_secret((char *)(uintptr_t)data, len, call->secret_member,
                                         &reply->secret);
            if (!parsed)
                g_set_error_literal(&parse_error, JSON_PARSER_ERROR, JSON_PARSER_ERROR_INVALID_DATA,
                                    "not one well-formed JSON object");
        }
        if (parse_error == NULL &&
            json_parser_load_from_data(parser, data, (gssize)len, &parse_error)) {
            reply->json = json_parser_steal_root(parser);
            call_complete(task, reply, NULL);
            return;
        }
        kd_graph_reply_free(reply);
        rid = g_strdup(header_rid);
        info.request_id = rid;
        if (!call->idempotent) {
            error = call_error(call, KD_GRAPH_ERROR_UNKNOWN_OUTCOME, status, FALSE, &info,
                               "%s %s: Graph answered %u with a body that is not JSON; "
                               "what it did is unknown",
                               call->method, call->log_path, status);
            call_complete(task, NULL, error);
            return;
        }
        error = call_error(call, KD_GRAPH_ERROR_BAD_RESPONSE, status, TRUE, &info,
                           "%s %s: Graph answered %u with a body that is not JSON (%s)",
                           call->method, call->log_path, status, parse_error->message);
        call_retry_or_fail(task, error, TRUE, -1);
        return;
    }

    parse_error_body(body, &code, &message, &body_rid);
    rid = g_strdup(header_rid != NULL ? header_rid : body_rid);
    info.graph_code = code;
    info.graph_message = message;
    info.request_id = rid;
    info.retry_after_s = retry_after_ms > 0 ? (guint)((retry_after_ms + 999) / 1000) : 0;

    if (status == 401 && !call->forced_token) {
        /* The cached token may have expired early or been revoked: one fresh one, once. */
        g_debug("graph: %s %s: 401 (%s), fetching a new token", call->method, call->log_path,
                code != NULL ? code : "-");
        call->forced_token = TRUE;
        call->force_token = TRUE;
        call_attempt(task);
        return;
    }

    ecode = code_for_status(status);
    switch (status) {
    case 429:
    case 503:
        retry = TRUE; /* refused before it ran: safe for any method */
        break;
    case 502:
    case 504:
        if (!call->idempotent) {
            error = call_error(call, KD_GRAPH_ERROR_UNKNOWN_OUTCOME, status, FALSE, &info,
                               "%s %s: Graph's gateway answered %u; whether the write "
                               "happened is unknown",
                               call->method, call->log_path, status);
            call_complete(task, NULL, error);
            return;
        }
        retry = TRUE;
        break;
    case 500:
        retry = call->idempotent;
        break;
    default:
        break;
    }
    error = call_error(call, ecode, status, retry || status == 500, &info,
                       "%s %s: Graph answered %u%s%s%s%s", call->method, call->log_path, status,
                       code != NULL ? " " : "", code != NULL ? code : "",
                       message != NULL ? ": " : "", message != NULL ? message : "");
    call_retry_or_fail(task, error, retry, retry_after_ms);
}

static void
on_sent(GObject *source, GAsyncResult *result, gpointer data)
{
    GTask *task = data;
    KdGraphClient *client = g_task_get_source_object(task);
    Call *call = g_task_get_task_data(task);
    g_autoptr(GError) error = NULL;
    KdHttpResponse *response = kd_http_send_finish(client->http, result, &error);

    if (response == NULL) {
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED) ||
            g_cancellable_is_cancelled(call->inner)) {
            call_interrupted(task, TRUE);
            return;
        }
        on_transport_error(task, error);
        return;
    }
    on_response(task, response);
    kd_http_response_free(&response);
}

static gboolean
wants_eventual_consistency(const char *url)
{
    return strstr(url, "$count=true") != NULL || strstr(url, "%24count=true") != NULL ||
           strstr(url, "$search") != NULL || strstr(url, "%24search") != NULL;
}

static void
call_send(GTask *task, KdSecret *token)
{
    KdGraphClient *client = g_task_get_source_object(task);
    Call *call = g_task_get_task_data(task);
    KdHttpRequest *request = kd_http_request_new(call->method, call->url);
    gsize token_len = kd_secret_get_length(token);
    g_autoptr(KdSecret) authorization = kd_secret_new(token_len + 8);

    /* "Bearer …" is assembled in locked memory too: no plain copy of the token is left. */
    kd_secret_append(authorization, "Bearer ", 7);
    kd_secret_append(authorization, kd_secret_get_data(token), token_len);
    kd_http_request_add_secret_header(request, "Authorization",
                                      kd_secret_get_string(authorization));
    kd_http_request_add_header(request, "client-request-id", call->client_request_id);
    kd_http_request_add_header(request, "return-client-request-id", "true");
    kd_http_request_add_header(request, "Accept", "application/json");
    if (call->flags & KD_GRAPH_CALL_INTERACTIVE)
        kd_http_request_add_header(request, "x-ms-throttle-priority", "High");
    if (wants_eventual_consistency(call->url))
        kd_http_request_add_header(request, "ConsistencyLevel", "eventual");
    if (call->body != NULL)
        kd_http_request_set_body(request, call->body, "application/json");
    /* A write goes on a new connection: curl then never re-sends it by itself. */
    kd_http_request_set_idempotent(request, call->idempotent);

    call->attempts++;
    call->sent_us = g_get_monotonic_time();
    kd_http_send_async(client->http, request, call->inner, on_sent, task);
}

static void
on_token(GObject *source, GAsyncResult *result, gpointer data)
{
    GTask *task = data;
    KdGraphClient *client = g_task_get_source_object(task);
    Call *call = g_task_get_task_data(task);
    g_autoptr(GError) error = NULL;
    KdSecret *token;
    const KdGraphErrorInfo *info;

    if (call->session != NULL) {
        token = kd_graph_session_token_finish(call->session, result, &error);
        g_clear_pointer(&call->session, kd_graph_session_unref);
    } else {
        token = kd_graph_auth_app_token_finish(client->auth, result, &error);
    }
    if (token != NULL && g_cancellable_is_cancelled(call->inner)) {
        kd_secret_unref(token);
        call_interrupted(task, FALSE);
        return;
    }
    if (token == NULL) {
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED) ||
            g_cancellable_is_cancelled(call->inner)) {
            call_interrupted(task, FALSE);
            return;
        }
        info = kd_graph_error_get_info(error);
        if (info != NULL && info->retryable) {
            /* The token endpoint was busy or unreachable: this costs an attempt like a
             * request does, and no Graph request went out. */
            gint64 ra = info->retry_after_s > 0 ? (gint64)info->retry_after_s * 1000 : -1;
            call->attempts++;
            call_retry_or_fail(task, g_steal_pointer(&error), TRUE, ra);
            return;
        }
        if (error == NULL)
            error = call_error(call, KD_GRAPH_ERROR_AUTH, 0, FALSE, NULL, "No access token");
        call_complete(task, NULL, g_steal_pointer(&error));
        return;
    }
    call_send(task, token);
    kd_secret_unref(token);
}

static void
call_attempt(GTask *task)
{
    KdGraphClient *client = g_task_get_source_object(task);
    Call *call = g_task_get_task_data(task);
    gboolean force = call->force_token;

    call->force_token = FALSE;
    if (call->flags & KD_GRAPH_CALL_DELEGATED) {
        /* The operator who was signed in when the call began, and nobody else. */
        if (client->session == NULL || client->session_generation != call->session_generation) {
            call_complete(task, NULL,
                          call_error(call, KD_GRAPH_ERROR_UNAUTHORIZED, 0, FALSE, NULL,
                                     "%s %s: no operator is signed in", call->method,
                                     call->log_path));
            return;
        }
        call->session = kd_graph_session_ref(client->session);
        kd_graph_session_token_async(call->session, client->auth, force, call->inner, on_token,
                                     task);
        return;
    }
    kd_graph_auth_app_token_async(client->auth, force, call->inner, on_token, task);
}

static void
call_start(KdGraphClient *client, const char *method, const char *path, JsonNode *body,
           KdGraphCallFlags flags, const char *secret_member, GCancellable *cancellable,
           GAsyncReadyCallback callback, gpointer user_data)
{
    GTask *task;
    Call *call;
    gsize base_len;

    g_return_if_fail(KD_IS_GRAPH_CLIENT(client));
    g_return_if_fail(method != NULL && path != NULL);

    task = g_task_new(client, cancellable, callback, user_data);
    g_task_set_source_tag(task, kd_graph_client_call_async);
    /* A result that arrived is returned even if the caller cancelled just after. */
    g_task_set_check_cancellable(task, FALSE);
    call = g_new0(Call, 1);
    g_task_set_task_data(task, call, call_free);
    call->method = g_ascii_strup(method, -1);
    call->flags = flags;
    call->idempotent = (flags & KD_GRAPH_CALL_IDEMPOTENT) || method_is_idempotent(method);
    call->client_request_id = g_uuid_string_random();
    call->secret_member = g_strdup(secret_member);
    call->session_generation = client->session_generation;
    call->start_us = g_get_monotonic_time();
    call->deadline_us = call->start_us + (gint64)client->deadline_s * G_USEC_PER_SEC;

    if (looks_absolute(path)) {
        /* An @odata.nextLink: used verbatim, but only on our own Graph host, so a forged link
         * cannot carry our token anywhere else. */
        if (!url_is_ours(client, path)) {
            call->log_path = g_strdup("(absolute URL)");
            call_complete(task, NULL,
                          call_error(call, KD_GRAPH_ERROR_BAD_RESPONSE, 0, FALSE, NULL,
                                     "Refusing to send a Graph request to a URL outside %s",
                                     client->graph_url));
            return;
        }
        call->url = g_strdup(path);
        base_len = strlen(client->graph_url);
    } else {
        if (path[0] != '/') {
            call->log_path = g_strdup("(bad path)");
            call_complete(task, NULL,
                          call_error(call, KD_GRAPH_ERROR_BAD_REQUEST, 0, FALSE, NULL,
                                     "A Graph path must start with '/'"));
            return;
        }
        call->url = g_strconcat(client->graph_url, (flags & KD_GRAPH_CALL_BETA) ? "/beta" : "/v1.0",
                                path, NULL);
        base_len = strlen(client->graph_url);
    }
    call->log_path = loggable_path(call->url, base_len);
    if (body != NULL) {
        gsize len = 0;
        char *json = json_to_string(body, FALSE);
        len = strlen(json);
        call->body = g_bytes_new_take(json, len);
    }

    if (g_cancellable_is_cancelled(cancellable)) {
        call_complete(
            task, NULL,
            g_error_new_literal(G_IO_ERROR, G_IO_ERROR_CANCELLED, "Operation was cancelled"));
        return;
    }
    call->inner = g_cancellable_new();
    if (cancellable != NULL) {
        call->cancellable = g_object_ref(cancellable);
        call->caller_cancel_source = g_cancellable_source_new(cancellable);
        g_source_set_callback(call->caller_cancel_source, G_SOURCE_FUNC(on_caller_cancelled), task,
                              NULL);
        g_source_attach(call->caller_cancel_source, client->context);
    }
    call->deadline_source =
        g_timeout_source_new((guint)MIN((guint64)client->deadline_s * 1000, (guint64)G_MAXUINT));
    g_source_set_callback(call->deadline_source, on_deadline, task, NULL);
    g_source_attach(call->deadline_source, client->context);
    call_attempt(task);
}

void
kd_graph_client_call_async(KdGraphClient *client, const char *method, const char *path,
                           JsonNode *body, KdGraphCallFlags flags, GCancellable *cancellable,
                           GAsyncReadyCallback callback, gpointer user_data)
{
    call_start(client, method, path, body, flags, NULL, cancellable, callback, user_data);
}

void
kd_graph_client_call_secret_async(KdGraphClient *client, const char *method, const char *path,
                                  JsonNode *body, KdGraphCallFlags flags, const char *secret_member,
                                  GCancellable *cancellable, GAsyncReadyCallback callback,
                                  gpointer user_data)
{
    g_return_if_fail(secret_member != NULL);
    call_start(client, method, path, body, flags, secret_member, cancellable, callback, user_data);
}

KdGraphReply *
kd_graph_client_call_finish_reply(KdGraphClient *client, GAsyncResult *result, GError **error)
{
    g_return_val_if_fail(g_task_is_valid(result, client), NULL);
    g_return_val_if_fail(g_task_get_source_tag(G_TASK(result)) == kd_graph_client_call_async, NULL);
    return g_task_propagate_pointer(G_TASK(result), error);
}

JsonNode *
kd_graph_client_call_finish(KdGraphClient *client, GAsyncResult *result, GError **error)
{
    KdGraphReply *reply = kd_graph_client_call_finish_reply(client, result, error);
    JsonNode *json;

    if (reply == NULL)
        return NULL;
    json = g_steal_pointer(&reply->json);
    kd_graph_reply_free(reply);
    return json;
}

/* --- paging ------------------------------------------------------------------------------- */

typedef struct {
    KdGraphCallFlags flags;
    KdGraphPageFunc page;
    gpointer page_data;
    guint pages;
} List;

static void
on_list_page(GObject *source, GAsyncResult *result, gpointer data)
{
    GTask *task = data;
    KdGraphClient *client = KD_GRAPH_CLIENT(source);
    List *list = g_task_get_task_data(task);
    GError *error = NULL;
    JsonNode *root = kd_graph_client_call_finish(client, result, &error);
    JsonObject *obj;
    JsonNode *value, *next;
    char *next_link = NULL;
    gboolean go_on;

    if (root == NULL && error != NULL) {
        g_task_return_error(task, error);
        g_object_unref(task);
        return;
    }
    obj = root != NULL && JSON_NODE_HOLDS_OBJECT(root) ? json_node_get_object(root) : NULL;
    value = obj != NULL ? json_object_get_member(obj, "value") : NULL;
    next = obj != NULL ? json_object_get_member(obj, "@odata.nextLink") : NULL;
    if (value == NULL || !JSON_NODE_HOLDS_ARRAY(value) ||
        (next != NULL && !JSON_NODE_HOLDS_NULL(next) &&
         (!JSON_NODE_HOLDS_VALUE(next) || json_node_get_value_type(next) != G_TYPE_STRING))) {
        g_clear_pointer(&root, json_node_unref);
        g_task_return_new_error(task, KD_GRAPH_ERROR, KD_GRAPH_ERROR_BAD_RESPONSE,
                                "Graph answered a collection request without a value array "
                                "(page %u)",
                                list->pages + 1);
        g_object_unref(task);
        return;
    }
    list->pages++;
    go_on = list->page(json_node_get_array(value), list->page_data);
    if (go_on && next != NULL && !JSON_NODE_HOLDS_NULL(next))
        next_link = g_strdup(json_node_get_string(next));
    /* Only one page is ever held: this one goes before the next is asked for. */
    json_node_unref(root);
    if (next_link == NULL) {
        g_task_return_boolean(task, TRUE);
        g_object_unref(task);
        return;
    }
    kd_graph_client_call_async(client, "GET", next_link, NULL, list->flags,
                               g_task_get_cancellable(task), on_list_page, task);
    g_free(next_link);
}

void
kd_graph_client_list_async(KdGraphClient *client, const char *path, KdGraphCallFlags flags,
                           KdGraphPageFunc page, gpointer page_data, GCancellable *cancellable,
                           GAsyncReadyCallback callback, gpointer user_data)
{
    GTask *task;
    List *list;

    g_return_if_fail(KD_IS_GRAPH_CLIENT(client));
    g_return_if_fail(path != NULL && page != NULL);

    task = g_task_new(client, cancellable, callback, user_data);
    g_task_set_source_tag(task, kd_graph_client_list_async);
    g_task_set_check_cancellable(task, FALSE);
    list = g_new0(List, 1);
    list->flags = flags;
    list->page = page;
    list->page_data = page_data;
    g_task_set_task_data(task, list, g_free);
    kd_graph_client_call_async(client, "GET", path, NULL, flags, cancellable, on_list_page, task);
}

gboolean
kd_graph_client_list_finish(KdGraphClient *client, GAsyncResult *result, GError **error)
{
    g_return_val_if_fail(g_task_is_valid(result, client), FALSE);
    g_return_val_if_fail(g_task_get_source_tag(G_TASK(result)) == kd_graph_client_list_async,
                         FALSE);
    return g_task_propagate_boolean(G_TASK(result), error);
}

/* --- the client --------------------------------------------------------------------------- */

static GStrv
strv_copy(const char *const *strv)
{
    GStrvBuilder *builder;
    GStrv copy;

    if (strv == NULL)
        return NULL;
    builder = g_strv_builder_new();
    for (; *strv != NULL; strv++)
        g_strv_builder_add(builder, *strv);
    copy = g_strv_builder_end(builder);
    g_strv_builder_unref(builder);
    return copy;
}

void
kd_graph_client_set_session(KdGraphClient *client, KdGraphSession *session)
{
    g_return_if_fail(KD_IS_GRAPH_CLIENT(client));

    if (session == client->session)
        return;
    if (session != NULL)
        kd_graph_session_ref(session);
    g_clear_pointer(&client->session, kd_graph_session_unref);
    client->session = session;
    client->session_generation++;
}

void
kd_graph_client_sign_out(KdGraphClient *client)
{
    g_return_if_fail(KD_IS_GRAPH_CLIENT(client));

    /* Our reference goes; with the last one the session wipes its tokens. Delegated calls
     * still running fail with UNAUTHORIZED at their next token fetch. */
    g_clear_pointer(&client->session, kd_graph_session_unref);
    client->session_generation++;
}

KdGraphSession *
kd_graph_client_get_session(KdGraphClient *client)
{
    g_return_val_if_fail(KD_IS_GRAPH_CLIENT(client), NULL);
    return client->session;
}

KdGraphAuth *
kd_graph_client_get_auth(KdGraphClient *client)
{
    g_return_val_if_fail(KD_IS_GRAPH_CLIENT(client), NULL);
    return client->auth;
}

const char *
kd_graph_client_get_graph_url(KdGraphClient *client)
{
    g_return_val_if_fail(KD_IS_GRAPH_CLIENT(client), NULL);
    return client->graph_url;
}

void
kd_graph_client_set_deadline(KdGraphClient *client, guint seconds)
{
    g_return_if_fail(KD_IS_GRAPH_CLIENT(client));
    client->deadline_s = seconds > 0 ? seconds : DEFAULT_DEADLINE_S;
}

void
kd_graph_client_set_max_attempts(KdGraphClient *client, guint attempts)
{
    g_return_if_fail(KD_IS_GRAPH_CLIENT(client));
    client->max_attempts = attempts > 0 ? attempts : DEFAULT_MAX_ATTEMPTS;
}

void
kd_graph_client_set_backoff(KdGraphClient *client, guint base_ms, guint cap_ms)
{
    g_return_if_fail(KD_IS_GRAPH_CLIENT(client));
    client->backoff_base_ms = MAX(base_ms, 1);
    client->backoff_cap_ms = MIN(MAX(cap_ms, client->backoff_base_ms), (guint)G_MAXINT32 - 1);
}

void
kd_graph_client_set_random_seed(KdGraphClient *client, guint32 seed)
{
    g_return_if_fail(KD_IS_GRAPH_CLIENT(client));
    g_rand_set_seed(client->rand, seed);
}

char *
kd_graph_escape_segment(const char *segment)
{
    g_return_val_if_fail(segment != NULL, NULL);
    /* Everything but RFC 3986 unreserved characters: '@' → %40, '#' → %23, '/' → %2F,
     * '$' → %24 (a UPN starting with '$' needs the key form users('$x%40y'), see
     * kd_graph_user_path() in kd-graph-ops.h). */
    return g_uri_escape_string(segment, NULL, FALSE);
}

static void
kd_graph_client_finalize(GObject *object)
{
    KdGraphClient *client = KD_GRAPH_CLIENT(object);

    g_clear_pointer(&client->session, kd_graph_session_unref);
    kd_graph_auth_free(&client->auth);
    kd_http_free(&client->http);
    g_clear_pointer(&client->rand, g_rand_free);
    g_clear_pointer(&client->context, g_main_context_unref);
    g_free(client->graph_url);
    g_free(client->user_agent);
    g_free(client->ca_file);
    g_free(client->proxy);
    g_strfreev(client->connect_to);
    g_free(client->login_url);
    g_free(client->tenant);
    g_free(client->client_id);
    g_free(client->certificate_file);
    g_free(client->private_key_file);
    g_clear_pointer(&client->client_secret, kd_secret_unref);
    G_OBJECT_CLASS(kd_graph_client_parent_class)->finalize(object);
}

static void
kd_graph_client_class_init(KdGraphClientClass *klass)
{
    G_OBJECT_CLASS(klass)->finalize = kd_graph_client_finalize;
}

static void
kd_graph_client_init(KdGraphClient *client)
{
    client->deadline_s = DEFAULT_DEADLINE_S;
    client->max_attempts = DEFAULT_MAX_ATTEMPTS;
    client->backoff_base_ms = DEFAULT_BACKOFF_BASE;
    client->backoff_cap_ms = DEFAULT_BACKOFF_CAP;
    client->rand = g_rand_new();
    client->context = g_main_context_ref_thread_default();
}

KdGraphClient *
kd_graph_client_new(const KdGraphOptions *options, GError **error)
{
    g_autoptr(KdGraphClient) client = NULL;
    KdHttpOptions http_options = {0};
    KdGraphAuthOptions auth_options = {0};
    char *graph_url;

    g_return_val_if_fail(options != NULL, NULL);
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    graph_url = normalize_graph_url(options->graph_url, error);
    if (graph_url == NULL)
        return NULL;
    client = g_object_new(KD_TYPE_GRAPH_CLIENT, NULL);
    client->graph_url = graph_url;
    client->user_agent =
        g_strdup(options->user_agent != NULL ? options->user_agent : KD_GRAPH_DEFAULT_USER_AGENT);
    client->ca_file = g_strdup(options->ca_file);
    client->proxy = g_strdup(options->proxy);
    client->connect_to = strv_copy(options->connect_to);
    client->login_url = g_strdup(options->login_url);
    client->tenant = g_strdup(options->tenant);
    client->client_id = g_strdup(options->client_id);
    client->certificate_file = g_strdup(options->certificate_file);
    client->private_key_file = g_strdup(options->private_key_file);
    client->client_secret =
        options->client_secret != NULL ? kd_secret_ref(options->client_secret) : NULL;

    http_options.ca_file = client->ca_file;
    http_options.proxy = client->proxy;
    http_options.user_agent = client->user_agent;
    http_options.connect_to = (const char *const *)client->connect_to;
    client->http = kd_http_new(&http_options, client->context);
    if (client->http == NULL) {
        g_set_error(error, KD_GRAPH_ERROR, KD_GRAPH_ERROR_CONFIG,
                    "The HTTP engine could not be set up");
        return NULL;
    }

    auth_options.login_url = client->login_url;
    auth_options.tenant = client->tenant;
    auth_options.client_id = client->client_id;
    auth_options.graph_url = client->graph_url;
    auth_options.certificate_file = client->certificate_file;
    auth_options.private_key_file = client->private_key_file;
    auth_options.client_secret = client->client_secret;
    auth_options.assertion_alg = (int)options->assertion_alg;
    client->auth = kd_graph_auth_new(&auth_options, client->http, error);
    if (client->auth == NULL)
        return NULL;
    /* Token fetches are retried by this client's pipeline (on_token), with backoff and within
     * the call's attempts; the auth's own immediate retry would double them. */
    kd_graph_auth_set_network_retry(client->auth, FALSE);
    return g_steal_pointer(&client);
}
