/* kd-graph-auth: tokens from the Microsoft identity platform: app-only and device code,
 * id_token validation, and the token caches. */
#include "graph/kd-graph-auth.h"
#include "graph/kd-graph-auth-private.h"
#include "graph/kd-json-lex.h"
#include "graph/kd-http.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#define REFRESH_AHEAD_S         300 /* a token with less left is renewed before it is used */
#define ASSERTION_LIFETIME_S    600
#define CLOCK_SKEW_S            300 /* id_token time claims (Microsoft's libraries use 5 min) */
#define DEFAULT_EXPIRES_IN_S    600 /* a token answer without expires_in: assume little */
#define MAX_KEY_FILE            (64 * 1024)
#define MAX_REPLY               (1024 * 1024)
#define MAX_POLL_FAILURES       5 /* consecutive transient failures while polling */
#define SLOW_DOWN_S             5 /* RFC 8628 §3.5 */
#define DEFAULT_INTERVAL_S      5
#define MAX_INTERVAL_S          60
#define DEFAULT_DEVICE_EXPIRY_S 900
#define MAX_DEVICE_EXPIRY_S     3600

#define ASSERTION_TYPE    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#define DEVICE_CODE_GRANT "urn:ietf:params:oauth:grant-type:device_code"
#define FORM_TYPE         "application/x-www-form-urlencoded"

/* KdGraphAssertionAlg, plus ES256 for a P-256 certificate (chosen by the key, not the config). */
enum {
    ALG_PS256 = KD_GRAPH_ASSERTION_PS256,
    ALG_RS256 = KD_GRAPH_ASSERTION_RS256,
    ALG_ES256 = 100
};

typedef enum { OP_APP_TOKEN, OP_REFRESH, OP_DEVICE } OpKind;

typedef struct _Op Op;

/* A caller waiting for an operation (several share one token request). */
typedef struct {
    Op *op;
    GTask *task;
    GSource *cancel_source;
} Waiter;

/* One asynchronous operation: an app token request, a refresh, or a device-code sign-in.
 * References: one while it is unfinished (auth->ops lists it), one per HTTP request out. */
struct _Op {
    int ref;
    OpKind kind;
    KdGraphAuth *auth;
    KdGraphSession *session; /* OP_REFRESH */
    GMainContext *context;
    GCancellable *http_cancel;
    GPtrArray *waiters;
    gboolean finished;
    KdSecret *body; /* the form of the request in flight, wiped when its answer comes */
    char *client_request_id;
    guint attempt;
    /* OP_DEVICE */
    char *scope;
    KdDeviceCodePromptFunc prompt;
    gpointer prompt_data;
    KdSecret *device_code;
    guint interval_s;
    gint64 deadline; /* boot clock, µs */
    guint failures;
    GSource *timer;
    KdOAuthReply tokens; /* the answer whose id_token is being validated */
    gboolean jwks_refetched;
};

struct _KdGraphAuth {
    gatomicrefcount ref; /* the owner's, plus one per unfinished operation */
    gboolean closed;
    KdHttp *http;
    char *login_url; /* without a trailing slash */
    char *tenant;
    char *client_id;
    char *scope; /* "<resource>/.default" */
    char *token_url;
    KdSecret *client_secret;
    EVP_PKEY *key;
    int alg;
    char *x5t;      /* base64url SHA-1 of the certificate's DER */
    char *x5t_s256; /* base64url SHA-256 */

    KdSecret *app_token;
    gint64 app_token_expires; /* boot clock, µs */
    Op *app_fetch;            /* the app token request in flight */

    char *issuer; /* from the discovery document; may hold "{tenantid}" */
    char *jwks_uri;
    JsonNode *jwks;

    GList *ops; /* unfinished operations, so that free can stop them */
    /* One immediate second try of an app token or refresh after a network error. Off when the
     * caller has its own retry pipeline (KdGraphClient), so that retries do not stack. */
    gboolean network_retry;
};

struct _KdGraphSession {
    gatomicrefcount ref;
    char *client_id;
    char *scope;
    char *oid;
    char *upn;
    char *name;
    char *tid;
    KdSecret *access_token;
    KdSecret *refresh_token;
    gint64 expires; /* boot clock, µs */
    Op *refresh;    /* the refresh in flight */
};

/* --- small helpers ------------------------------------------------------------------------ */

/* Token lifetimes count in real elapsed time, suspend included, and never jump with the
 * wall clock. */
static gint64
boot_now(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_BOOTTIME, &ts) != 0)
        return g_get_monotonic_time();
    return (gint64)ts.tv_sec * G_USEC_PER_SEC + ts.tv_nsec / 1000;
}

static gint64
wall_now(void)
{
    return g_get_real_time() / G_USEC_PER_SEC;
}

static gboolean
token_fresh(const KdSecret *token, gint64 expires)
{
    return token != NULL && kd_secret_get_length(token) > 0 &&
           expires - boot_now() > (gint64)REFRESH_AHEAD_S * G_USEC_PER_SEC;
}

static void
secret_clear(KdSecret **secret)
{
    if (*secret == NULL)
        return;
    kd_secret_wipe(*secret);
    kd_secret_unref(*secret);
    *secret = NULL;
}

/* A random (v4) GUID for jti and client-request-id. */
static char *
new_guid(void)
{
    guint8 b[16];

    if (RAND_bytes(b, sizeof(b)) != 1) {
        ERR_clear_error();
        for (gsize i = 0; i < sizeof(b); i++)
            b[i] = (guint8)g_random_int_range(0, 256);
    }
    b[6] = (guint8)((b[6] & 0x0f) | 0x40);
    b[8] = (guint8)((b[8] & 0x3f) | 0x80);
    return g_strdup_printf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                           b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
                           b[12], b[13], b[14], b[15]);
}

static gboolean
is_guid(const char *s)
{
    if (s == NULL || strlen(s) != 36)
        return FALSE;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return FALSE;
        } else if (!g_ascii_isxdigit(s[i])) {
            return FALSE;
        }
    }
    return TRUE;
}

/* Characters that need no escaping in a URL path segment or a form value. */
static gboolean
is_unreserved(guint8 c)
{
    return g_ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static gboolean
all_unreserved(const char *s)
{
    if (s == NULL || *s == '\0')
        return FALSE;
    for (; *s != '\0'; s++)
        if (!is_unreserved((guint8)*s))
            return FALSE;
    return TRUE;
}

static char *
str_replace(const char *s, const char *from, const char *to)
{
    char **parts = g_strsplit(s, from, -1);
    char *out = g_strjoinv(to, parts);

    g_strfreev(parts);
    return out;
}

static void
json_append_string(GString *out, const char *s)
{
    g_string_append_c(out, '"');
    for (; *s != '\0'; s++) {
        guint8 c = (guint8)*s;
        if (c == '"' || c == '\\')
            g_string_append_printf(out, "\\%c", c);
        else if (c < 0x20)
            g_string_append_printf(out, "\\u%04x", c);
        else
            g_string_append_c(out, (char)c);
    }
    g_string_append_c(out, '"');
}

/* --- base64url (RFC 4648 §5, no padding) ---------------------------------------------------- */

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static gsize
b64url_length(gsize n)
{
    return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

static void
b64url_encode_into(const guint8 *in, gsize n, char *out)
{
    gsize i, o = 0;
    guint32 v;

    for (i = 0; i + 2 < n; i += 3) {
        v = (guint32)in[i] << 16 | (guint32)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64url_alphabet[v >> 18 & 63];
        out[o++] = b64url_alphabet[v >> 12 & 63];
        out[o++] = b64url_alphabet[v >> 6 & 63];
        out[o++] = b64url_alphabet[v & 63];
    }
    if (n - i == 1) {
        v = (guint32)in[i] << 16;
        out[o++] = b64url_alphabet[v >> 18 & 63];
        out[o++] = b64url_alphabet[v >> 12 & 63];
    } else if (n - i == 2) {
        v = (guint32)in[i] << 16 | (guint32)in[i + 1] << 8;
        out[o++] = b64url_alphabet[v >> 18 & 63];
        out[o++] = b64url_alphabet[v >> 12 & 63];
        out[o++] = b64url_alphabet[v >> 6 & 63];
    }
}

static char *
b64url_encode(const guint8 *in, gsize n)
{
    gsize len = b64url_length(n);
    char *out = g_malloc(len + 1);

    b64url_encode_into(in, n, out);
    out[len] = '\0';
    return out;
}

/* Appends the encoding of secret bytes, through a small buffer that is wiped afterwards. */
static gboolean
secret_append_b64url(KdSecret *secret, const guint8 *in, gsize n)
{
    char buf[256]; /* 192 input bytes */
    gboolean ok = TRUE;

    for (gsize i = 0; i < n && ok; i += 192) {
        gsize chunk = MIN(192, n - i);
        b64url_encode_into(in + i, chunk, buf);
        ok = kd_secret_append(secret, buf, b64url_length(chunk));
    }
    explicit_bzero(buf, sizeof(buf));
    return ok;
}

static int
b64url_value(char c)
{
    const char *p;

    if (c == '\0')
        return -1;
    p = strchr(b64url_alphabet, c);
    return p != NULL ? (int)(p - b64url_alphabet) : -1;
}

static guint8 *
b64url_decode(const char *in, gsize n, gsize *out_len)
{
    guint8 *out;
    guint32 acc = 0;
    int bits = 0;
    gsize o = 0;

    if (n % 4 == 1)
        return NULL;
    out = g_malloc(n / 4 * 3 + 3);
    for (gsize i = 0; i < n; i++) {
        int v = b64url_value(in[i]);
        if (v < 0) {
            g_free(out);
            return NULL;
        }
        acc = (acc << 6 | (guint32)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (guint8)(acc >> bits);
        }
    }
    *out_len = o;
    return out;
}

/* --- forms ---------------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    const guint8 *value;
    gsize len;
} FormField;

#define FORM_STR(n, s)                      \
    {                                       \
        (n), (const guint8 *)(s), strlen(s) \
    }

/* An application/x-www-form-urlencoded body, built directly in a KdSecret: the values may be a
 * client secret, an assertion, a device code or a refresh token. */
static KdSecret *
form_encode(const FormField *fields, gsize n)
{
    static const char hex[] = "0123456789ABCDEF";
    gsize need = 0;
    KdSecret *body;
    char esc[3];

    for (gsize i = 0; i < n; i++) {
        need += (i > 0) + strlen(fields[i].name) + 1;
        for (gsize j = 0; j < fields[i].len; j++)
            need += is_unreserved(fields[i].value[j]) ? 1 : 3;
    }
    body = kd_secret_new(need);
    for (gsize i = 0; i < n; i++) {
        const guint8 *v = fields[i].value;
        gsize j = 0;

        if (i > 0)
            kd_secret_append(body, "&", 1);
        kd_secret_append(body, fields[i].name, strlen(fields[i].name));
        kd_secret_append(body, "=", 1);
        while (j < fields[i].len) {
            gsize run = j;
            while (j < fields[i].len && is_unreserved(v[j]))
                j++;
            if (j > run)
                kd_secret_append(body, v + run, j - run);
            if (j < fields[i].len) {
                esc[0] = '%';
                esc[1] = hex[v[j] >> 4];
                esc[2] = hex[v[j] & 15];
                kd_secret_append(body, esc, 3);
                j++;
            }
        }
    }
    explicit_bzero(esc, sizeof(esc));
    return body;
}

/* --- the identity platform's JSON answers ----------------------------------------------------
 * A small strict parser of one JSON object, so that tokens are decoded straight into KdSecrets:
 * json-glib's scanner would leave copies of them in freed memory. */

typedef enum { F_SECRET, F_STRING, F_INT, F_CODES } FieldKind;

static const struct {
    const char *name;
    FieldKind kind;
    gsize offset;
} reply_fields[] = {
    {"access_token", F_SECRET, offsetof(KdOAuthReply, access_token)},
    {"refresh_token", F_SECRET, offsetof(KdOAuthReply, refresh_token)},
    {"id_token", F_SECRET, offsetof(KdOAuthReply, id_token)},
    {"device_code", F_SECRET, offsetof(KdOAuthReply, device_code)},
    {"token_type", F_STRING, offsetof(KdOAuthReply, token_type)},
    {"scope", F_STRING, offsetof(KdOAuthReply, scope)},
    {"error", F_STRING, offsetof(KdOAuthReply, error)},
    {"error_description", F_STRING, offsetof(KdOAuthReply, error_description)},
    {"trace_id", F_STRING, offsetof(KdOAuthReply, trace_id)},
    {"correlation_id", F_STRING, offsetof(KdOAuthReply, correlation_id)},
    {"user_code", F_STRING, offsetof(KdOAuthReply, user_code)},
    {"verification_uri", F_STRING, offsetof(KdOAuthReply, verification_uri)},
    {"message", F_STRING, offsetof(KdOAuthReply, message)},
    {"expires_in", F_INT, offsetof(KdOAuthReply, expires_in)},
    {"interval", F_INT, offsetof(KdOAuthReply, interval)},
    {"error_codes", F_CODES, 0},
};

static gboolean
parse_string_member(KdJsonLexer *lx, KdOAuthReply *reply, gsize field)
{
    guint8 *base = (guint8 *)reply;
    const char *raw;
    gsize raw_len;
    KdJsonSink sink = {0};

    if (!kd_json_lex_string(lx, &raw, &raw_len))
        return FALSE;
    if (reply_fields[field].kind == F_SECRET) {
        KdSecret **slot = (KdSecret **)(void *)(base + reply_fields[field].offset);
        sink.secret = kd_secret_new(raw_len);
        if (!kd_json_unescape(raw, raw_len, &sink)) {
            secret_clear(&sink.secret);
            return FALSE;
        }
        *slot = sink.secret;
        return TRUE;
    }
    sink.buf = g_malloc(raw_len + 1);
    if (!kd_json_unescape(raw, raw_len, &sink)) {
        g_free(sink.buf);
        return FALSE;
    }
    sink.buf[sink.len] = '\0';
    if (reply_fields[field].kind == F_STRING) {
        char **slot = (char **)(void *)(base + reply_fields[field].offset);
        if (g_utf8_validate(sink.buf, (gssize)sink.len, NULL))
            *slot = g_steal_pointer(&sink.buf);
    } else { /* a number as a string: "expires_in": "3599" */
        gint64 *slot = (gint64 *)(void *)(base + reply_fields[field].offset);
        gint64 v;
        if (g_ascii_string_to_signed(sink.buf, 10, 0, G_MAXINT32, &v, NULL))
            *slot = v;
    }
    g_free(sink.buf);
    return TRUE;
}

static gboolean
parse_member(KdJsonLexer *lx, KdOAuthReply *reply, gsize field)
{
    gint64 v;
    gboolean integral;

    kd_json_lex_ws(lx);
    if (lx->p >= lx->end)
        return FALSE;
    switch (reply_fields[field].kind) {
    case F_SECRET:
    case F_STRING:
        if (*lx->p == '"')
            return parse_string_member(lx, reply, field);
        return kd_json_lex_skip(lx, 1);
    case F_INT:
        if (*lx->p == '"')
            return parse_string_member(lx, reply, field);
        if (*lx->p != '-' && !g_ascii_isdigit(*lx->p))
            return kd_json_lex_skip(lx, 1);
        if (!kd_json_lex_number(lx, &v, &integral))
            return FALSE;
        if (integral && v >= 0 && v <= G_MAXINT32)
            *(gint64 *)(void *)((guint8 *)reply + reply_fields[field].offset) = v;
        return TRUE;
    case F_CODES:
        if (*lx->p != '[')
            return kd_json_lex_skip(lx, 1);
        lx->p++;
        kd_json_lex_ws(lx);
        if (lx->p < lx->end && *lx->p == ']') {
            lx->p++;
            return TRUE;
        }
        for (gboolean first = TRUE;; first = FALSE) {
            kd_json_lex_ws(lx);
            if (first && lx->p < lx->end && (*lx->p == '-' || g_ascii_isdigit(*lx->p))) {
                if (!kd_json_lex_number(lx, &v, &integral))
                    return FALSE;
                if (integral && v > 0 && v <= G_MAXUINT32)
                    reply->aadsts = (guint)v;
            } else if (!kd_json_lex_skip(lx, 2)) {
                return FALSE;
            }
            kd_json_lex_ws(lx);
            if (lx->p >= lx->end)
                return FALSE;
            if (*lx->p == ',') {
                lx->p++;
                continue;
            }
            if (*lx->p != ']')
                return FALSE;
            lx->p++;
            return TRUE;
        }
    }
    return FALSE;
}

gboolean
kd_oauth_reply_parse(const char *data, gsize len, KdOAuthReply *reply)
{
    KdJsonLexer lx = {data, data + len};
    guint32 seen = 0;

    memset(reply, 0, sizeof(*reply));
    reply->expires_in = -1;
    reply->interval = -1;
    if (data == NULL || len > MAX_REPLY || !kd_json_lex_char(&lx, '{'))
        goto fail;
    kd_json_lex_ws(&lx);
    if (lx.p < lx.end && *lx.p == '}') {
        lx.p++;
        goto done;
    }
    for (;;) {
        const char *name;
        gsize name_len, field = G_N_ELEMENTS(reply_fields);

        kd_json_lex_ws(&lx);
        if (!kd_json_lex_string(&lx, &name, &name_len) || !kd_json_lex_char(&lx, ':'))
            goto fail;
        for (gsize i = 0; i < G_N_ELEMENTS(reply_fields); i++) {
            if (strlen(reply_fields[i].name) == name_len &&
                memcmp(reply_fields[i].name, name, name_len) == 0) {
                field = i;
                break;
            }
        }
        if (field == G_N_ELEMENTS(reply_fields)) {
            if (!kd_json_lex_skip(&lx, 1))
                goto fail;
        } else {
            if (seen & (1u << field)) /* a repeated member: which one would count? */
                goto fail;
            seen |= 1u << field;
            if (!parse_member(&lx, reply, field))
                goto fail;
        }
        kd_json_lex_ws(&lx);
        if (lx.p < lx.end && *lx.p == ',') {
            lx.p++;
            continue;
        }
        if (!kd_json_lex_char(&lx, '}'))
            goto fail;
        break;
    }
done:
    kd_json_lex_ws(&lx);
    if (lx.p != lx.end)
        goto fail;
    return TRUE;
fail:
    kd_oauth_reply_clear(reply);
    return FALSE;
}

void
kd_oauth_reply_clear(KdOAuthReply *reply)
{
    secret_clear(&reply->access_token);
    secret_clear(&reply->refresh_token);
    secret_clear(&reply->id_token);
    secret_clear(&reply->device_code);
    g_clear_pointer(&reply->token_type, g_free);
    g_clear_pointer(&reply->scope, g_free);
    g_clear_pointer(&reply->error, g_free);
    g_clear_pointer(&reply->error_description, g_free);
    g_clear_pointer(&reply->trace_id, g_free);
    g_clear_pointer(&reply->correlation_id, g_free);
    g_clear_pointer(&reply->user_code, g_free);
    g_clear_pointer(&reply->verification_uri, g_free);
    g_clear_pointer(&reply->message, g_free);
    reply->expires_in = -1;
    reply->interval = -1;
    reply->aadsts = 0;
}

/* --- errors --------------------------------------------------------------------------------- */

static guint
parse_retry_after(const char *value)
{
    gint64 ms = kd_graph_retry_after_ms(value);

    return ms <= 0 ? 0 : (guint)((ms + 999) / 1000);
}

/* The error for an answer that is not the success asked for. @code is KD_GRAPH_ERROR_AUTH
 * unless the caller knows better (DECLINED, EXPIRED); 429, 5xx and bodies that are not the
 * identity platform's override it. Logs the code, AADSTS number and trace id only. */
static GError *
reply_error(const char *what, KdHttpResponse *response, const KdOAuthReply *reply, gboolean parsed,
            const char *client_request_id, KdGraphErrorCode code)
{
    KdGraphErrorInfo info = {0};
    guint status = kd_http_response_get_status(response);
    GError *error;

    info.http_status = status;
    info.client_request_id = (char *)(guintptr)client_request_id;
    info.retry_after_s = parse_retry_after(kd_http_response_get_header(response, "Retry-After"));
    if (parsed) {
        info.graph_code = reply->error;
        info.graph_message = reply->error_description;
        info.request_id = reply->trace_id;
        info.aadsts = reply->aadsts;
    }
    if (status == 429) {
        code = KD_GRAPH_ERROR_THROTTLED;
        info.retryable = TRUE;
    } else if (status >= 500 ||
               (parsed && g_strcmp0(reply->error, "temporarily_unavailable") == 0)) {
        code = KD_GRAPH_ERROR_UNAVAILABLE;
        info.retryable = TRUE;
    } else if (!parsed || reply->error == NULL) {
        code = KD_GRAPH_ERROR_BAD_RESPONSE;
    }
    g_message("%s: the identity platform answered %u %s (AADSTS%u, trace id %s)", what, status,
              info.graph_code != NULL ? info.graph_code : "without an error code", info.aadsts,
              info.request_id != NULL ? info.request_id : "none");
    error = kd_graph_error_new(code, &info,
                               "%s: the identity platform answered HTTP %u, %s (AADSTS%u, trace "
                               "id %s)",
                               what, status, info.graph_code != NULL ? info.graph_code : "no error",
                               info.aadsts, info.request_id != NULL ? info.request_id : "none");
    return error;
}

static GError *simple_error(KdGraphErrorCode code, guint status, const char *graph_code,
                            const char *format, ...) G_GNUC_PRINTF(4, 5);

static GError *
simple_error(KdGraphErrorCode code, guint status, const char *graph_code, const char *format, ...)
{
    KdGraphErrorInfo info = {0};
    va_list ap;
    char *message;
    GError *error;

    va_start(ap, format);
    message = g_strdup_vprintf(format, ap);
    va_end(ap);
    info.http_status = status;
    info.graph_code = (char *)(guintptr)graph_code;
    error = kd_graph_error_new(code, &info, "%s", message);
    g_free(message);
    return error;
}

/* Transport failures (kd-http's G_IO_ERROR / G_TLS_ERROR) in this layer's terms. */
static GError *
transport_error(const GError *cause, const char *what)
{
    KdGraphErrorInfo info = {0};
    KdGraphErrorCode code = KD_GRAPH_ERROR_NETWORK;

    if (g_error_matches(cause, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return g_error_copy(cause);
    if (cause->domain == G_TLS_ERROR) {
        code = KD_GRAPH_ERROR_TLS;
    } else if (g_error_matches(cause, G_IO_ERROR, G_IO_ERROR_TIMED_OUT)) {
        code = KD_GRAPH_ERROR_TIMEOUT;
        info.retryable = TRUE;
    } else {
        info.retryable = TRUE;
    }
    g_message("%s: %s (%s)", what, kd_graph_error_code_name(code), cause->message);
    return kd_graph_error_new(code, &info, "%s: %s", what, cause->message);
}

/* Network failures worth one immediate second try of an idempotent request; never TLS
 * failures, cancellation or timeouts (a timeout has already cost the whole budget). */
static gboolean
worth_retrying(const GError *error, gboolean request_surely_unsent)
{
    if (error->domain != G_IO_ERROR)
        return FALSE;
    switch (error->code) {
    case G_IO_ERROR_CONNECTION_REFUSED:
    case G_IO_ERROR_HOST_NOT_FOUND:
    case G_IO_ERROR_PROXY_FAILED:
        return TRUE;
    case G_IO_ERROR_CONNECTION_CLOSED:
    case G_IO_ERROR_FAILED:
        return !request_surely_unsent;
    default:
        return FALSE;
    }
}

static GError *
cancelled_error(void)
{
    return g_error_new_literal(G_IO_ERROR, G_IO_ERROR_CANCELLED, "Operation was cancelled");
}

/* --- responses ------------------------------------------------------------------------------ */

static const char *
response_data(KdHttpResponse *response, gsize *len)
{
    GBytes *body = kd_http_response_get_body(response);
    const char *data;

    *len = 0;
    if (body == NULL)
        return "";
    data = g_bytes_get_data(body, len);
    return data != NULL ? data : "";
}

/* Token answers carry tokens: the body is zeroed where kd-http keeps it before it is freed. */
static void
response_wipe(KdHttpResponse *response)
{
    GBytes *body = response != NULL ? kd_http_response_get_body(response) : NULL;
    gsize len = 0;
    gconstpointer data = body != NULL ? g_bytes_get_data(body, &len) : NULL;

    if (data != NULL && len > 0)
        explicit_bzero((void *)(guintptr)data, len);
}

static gboolean
parse_json_object(KdHttpResponse *response, JsonNode **root)
{
    JsonParser *parser = json_parser_new();
    gsize len;
    const char *data = response_data(response, &len);
    gboolean ok = FALSE;

    *root = NULL;
    if (len > 0 && len <= MAX_REPLY &&
        json_parser_load_from_data(parser, data, (gssize)len, NULL) &&
        JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))) {
        *root = json_node_copy(json_parser_get_root(parser));
        ok = TRUE;
    }
    g_object_unref(parser);
    return ok;
}

static const char *
obj_string(JsonObject *object, const char *name)
{
    JsonNode *node = json_object_get_member(object, name);

    if (node == NULL || !JSON_NODE_HOLDS_VALUE(node) ||
        json_node_get_value_type(node) != G_TYPE_STRING)
        return NULL;
    return json_node_get_string(node);
}

static gboolean
obj_number(JsonObject *object, const char *name, gint64 *value)
{
    JsonNode *node = json_object_get_member(object, name);

    if (node == NULL || !JSON_NODE_HOLDS_VALUE(node))
        return FALSE;
    if (json_node_get_value_type(node) == G_TYPE_INT64) {
        *value = json_node_get_int(node);
        return TRUE;
    }
    if (json_node_get_value_type(node) == G_TYPE_DOUBLE) {
        double d = json_node_get_double(node);
        if (d < -1e15 || d > 1e15)
            return FALSE;
        *value = (gint64)d;
        return TRUE;
    }
    return FALSE;
}

/* The array member @name, or NULL (json_object_get_array_member is critical about others). */
static JsonArray *
obj_array(JsonObject *object, const char *name)
{
    JsonNode *node = json_object_get_member(object, name);

    return node != NULL && JSON_NODE_HOLDS_ARRAY(node) ? json_node_get_array(node) : NULL;
}

/* --- certificate, key, assertion ------------------------------------------------------------ */

static int
refuse_passphrase(char *buf, int size, int rwflag, void *user_data)
{
    *(gboolean *)user_data = TRUE;
    return -1;
}

/* Reads the PEM key into a KdSecret (wiped afterwards) and decodes it. The key file must be a
 * regular file nobody but its owner and group can read (STYLE.md: refuse unsafe states). */
static EVP_PKEY *
load_private_key(const char *path, GError **error)
{
    int fd = -1;
    struct stat st;
    KdSecret *pem = NULL;
    guint8 chunk[4096];
    BIO *bio = NULL;
    EVP_PKEY *key = NULL;
    gboolean encrypted = FALSE;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        g_propagate_error(error, simple_error(KD_GRAPH_ERROR_CONFIG, 0, NULL,
                                              "Cannot open the private key %s: %s", path,
                                              g_strerror(errno)));
        goto fail;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > MAX_KEY_FILE) {
        g_propagate_error(error, simple_error(KD_GRAPH_ERROR_CONFIG, 0, NULL,
                                              "The private key %s is not a regular file of at "
                                              "most %d bytes",
                                              path, MAX_KEY_FILE));
        goto fail;
    }
    if (st.st_mode & S_IRWXO) {
        g_propagate_error(error, simple_error(KD_GRAPH_ERROR_CONFIG, 0, NULL,
                                              "The private key %s is accessible to every user "
                                              "of this computer; refusing it (chmod o-rwx)",
                                              path));
        goto fail;
    }
    pem = kd_secret_new((gsize)st.st_size);
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n == 0)
            break;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || !kd_secret_append(pem, chunk, (gsize)n)) {
            g_propagate_error(error,
                              simple_error(KD_GRAPH_ERROR_CONFIG, 0, NULL,
                                           "Cannot read the private key %s: %s", path,
                                           n < 0 ? g_strerror(errno) : "it changed while read"));
            goto fail;
        }
    }
    bio = BIO_new_mem_buf(kd_secret_get_data(pem), (int)kd_secret_get_length(pem));
    if (bio != NULL)
        key = PEM_read_bio_PrivateKey(bio, NULL, refuse_passphrase, &encrypted);
    if (key == NULL) {
        g_propagate_error(error, simple_error(KD_GRAPH_ERROR_CONFIG, 0, NULL,
                                              encrypted ? "The private key %s is encrypted; "
                                                          "keydesk needs it unencrypted, "
                                                          "readable only by its service user"
                                                        : "%s is not a PEM private key",
                                              path));
        goto fail;
    }
fail:
    explicit_bzero(chunk, sizeof(chunk));
    BIO_free(bio);
    if (pem != NULL) {
        kd_secret_wipe(pem);
        kd_secret_unref(pem);
    }
    if (fd >= 0)
        close(fd);
    ERR_clear_error();
    return key;
}

static gboolean
digest_b64url(const EVP_MD *md, const guint8 *der, gsize len, char **out)
{
    guint8 digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;

    if (EVP_Digest(der, len, digest, &digest_len, md, NULL) != 1)
        return FALSE;
    *out = b64url_encode(digest, digest_len);
    return TRUE;
}

/* Loads the certificate (its thumbprints name it in the assertion header) and checks that it
 * belongs to the key. */
static gboolean
load_credential(KdGraphAuth *auth, const char *cert_path, const char *key_path, int alg,
                GError **error)
{
    BIO *bio = NULL;
    X509 *cert = NULL;
    guint8 *der = NULL;
    int der_len;
    char group[64];
    gboolean ok = FALSE;

    bio = BIO_new_file(cert_path, "r");
    if (bio != NULL)
        cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    if (cert == NULL) {
        g_propagate_error(error, simple_error(KD_GRAPH_ERROR_CONFIG, 0, NULL,
                                              "Cannot read a PEM certificate from %s", cert_path));
        goto fail;
    }
    der_len = i2d_X509(cert, &der);
    if (der_len <= 0 || !digest_b64url(EVP_sha1(), der, (gsize)der_len, &auth->x5t) ||
        !digest_b64url(EVP_sha256(), der, (gsize)der_len, &auth->x5t_s256)) {
        g_propagate_error(error, simple_error(KD_GRAPH_ERROR_CONFIG, 0, NULL,
                                              "Cannot encode the certificate %s", cert_path));
        goto fail;
    }
    if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0)
        g_warning("The certificate %s has expired: the identity platform will refuse it",
                  cert_path);
    auth->key = load_private_key(key_path, error);
    if (auth->key == NULL)
        goto fail;
    if (EVP_PKEY_eq(X509_get0_pubkey(cert), auth->key) != 1) {
        g_propagate_error(error, simple_error(KD_GRAPH_ERROR_CONFIG, 0, NULL,
                                              "The private key %s does not belong to the "
                                              "certificate %s",
                                              key_path, cert_path));
        goto fail;
    }
    if (EVP_PKEY_is_a(auth->key, "RSA")) {
        if (EVP_PKEY_get_bits(auth->key) < 2048) {
            g_propagate_error(error, simple_error(KD_GRAPH_ERROR_CONFIG, 0, NULL,
                                                  "The key %s has fewer than 2048 bits", key_path));
            goto fail;
        }
        auth->alg = alg;
    } else if (EVP_PKEY_is_a(auth->key, "EC") &&
               EVP_PKEY_get_group_name(auth->key, group, sizeof(group), NULL) == 1 &&
               strcmp(group, "prime256v1") == 0) {
        auth->alg = ALG_ES256;
    } else {
        g_propagate_error(error, simple_error(KD_GRAPH_ERROR_CONFIG, 0, NULL,
                                              "The key %s is neither RSA nor EC P-256", key_path));
        goto fail;
    }
    ok = TRUE;
fail:
    OPENSSL_free(der);
    X509_free(cert);
    BIO_free(bio);
    ERR_clear_error();
    return ok;
}

/* Signs @input with the credential's key; the signature goes to a buffer the caller wipes. */
static gboolean
sign_input(KdGraphAuth *auth, const char *input, gsize len, guint8 **sig_out, gsize *sig_len_out)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    ECDSA_SIG *ecdsa = NULL;
    guint8 *sig = NULL, *raw = NULL;
    gsize sig_len = 0;
    const guint8 *p;
    gboolean ok = FALSE;

    if (md == NULL || EVP_DigestSignInit_ex(md, &pctx, "SHA256", NULL, NULL, auth->key, NULL) != 1)
        goto fail;
    if (auth->alg == ALG_PS256) {
        /* Salt length = digest length: what .NET, and so Entra, verifies. */
        if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
            EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) <= 0 ||
            EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) <= 0)
            goto fail;
    } else if (auth->alg == ALG_RS256) {
        if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0)
            goto fail;
    }
    if (EVP_DigestSign(md, NULL, &sig_len, (const guint8 *)input, len) != 1)
        goto fail;
    sig = g_malloc(sig_len);
    if (EVP_DigestSign(md, sig, &sig_len, (const guint8 *)input, len) != 1)
        goto fail;
    if (auth->alg == ALG_ES256) { /* JWS wants R || S, OpenSSL gives DER */
        p = sig;
        ecdsa = d2i_ECDSA_SIG(NULL, &p, (long)sig_len);
        raw = g_malloc(64);
        if (ecdsa == NULL || BN_bn2binpad(ECDSA_SIG_get0_r(ecdsa), raw, 32) != 32 ||
            BN_bn2binpad(ECDSA_SIG_get0_s(ecdsa), raw + 32, 32) != 32)
            goto fail;
        OPENSSL_cleanse(sig, sig_len);
        g_free(sig);
        sig = g_steal_pointer(&raw);
        sig_len = 64;
    }
    *sig_out = g_steal_pointer(&sig);
    *sig_len_out = sig_len;
    ok = TRUE;
fail:
    if (sig != NULL) {
        OPENSSL_cleanse(sig, sig_len);
        g_free(sig);
    }
    if (raw != NULL) {
        OPENSSL_cleanse(raw, 64);
        g_free(raw);
    }
    ECDSA_SIG_free(ecdsa);
    EVP_MD_CTX_free(md);
    ERR_clear_error();
    return ok;
}

KdSecret *
kd_graph_auth_build_assertion(KdGraphAuth *auth, gint64 now, GError **error)
{
    GString *header = g_string_new("{\"alg\":");
    GString *claims = g_string_new("{\"aud\":");
    char *aud = g_strconcat(auth->login_url, "/", auth->tenant, "/oauth2/v2.0/token", NULL);
    char *jti = new_guid();
    char *h64 = NULL, *c64 = NULL, *input = NULL;
    guint8 *sig = NULL;
    gsize sig_len = 0, input_len;
    KdSecret *assertion = NULL;

    if (auth->key == NULL) {
        g_propagate_error(
            error, simple_error(KD_GRAPH_ERROR_CONFIG, 0, NULL, "No certificate is configured"));
        goto fail;
    }
    switch (auth->alg) {
    case ALG_RS256:
        g_string_append(header, "\"RS256\",\"typ\":\"JWT\",\"x5t\":");
        json_append_string(header, auth->x5t);
        break;
    case ALG_ES256:
        g_string_append(header, "\"ES256\",\"typ\":\"JWT\",\"x5t#S256\":");
        json_append_string(header, auth->x5t_s256);
        break;
    default:
        g_string_append(header, "\"PS256\",\"typ\":\"JWT\",\"x5t#S256\":");
        json_append_string(header, auth->x5t_s256);
        break;
    }
    g_string_append_c(header, '}');
    json_append_string(claims, aud);
    g_string_append(claims, ",\"iss\":");
    json_append_string(claims, auth->client_id);
    g_string_append(claims, ",\"sub\":");
    json_append_string(claims, auth->client_id);
    g_string_append(claims, ",\"jti\":");
    json_append_string(claims, jti);
    g_string_append_printf(claims,
                           ",\"nbf\":%" G_GINT64_FORMAT ",\"iat\":%" G_GINT64_FORMAT
                           ",\"exp\":%" G_GINT64_FORMAT "}",
                           now, now, now + ASSERTION_LIFETIME_S);
    h64 = b64url_encode((const guint8 *)header->str, header->len);
    c64 = b64url_encode((const guint8 *)claims->str, claims->len);
    input = g_strconcat(h64, ".", c64, NULL);
    input_len = strlen(input);
    if (!sign_input(auth, input, input_len, &sig, &sig_len)) {
        g_propagate_error(error, simple_error(KD_GRAPH_ERROR_CONFIG, 0, NULL,
                                              "The certificate's key could not sign the client "
                                              "assertion"));
        goto fail;
    }
    assertion = kd_secret_new(input_len + 1 + b64url_length(sig_len));
    if (!kd_secret_append(assertion, input, input_len) || !kd_secret_append(assertion, ".", 1) ||
        !secret_append_b64url(assertion, sig, sig_len)) {
        secret_clear(&assertion);
        g_propagate_error(error, simple_error(KD_GRAPH_ERROR_CONFIG, 0, NULL,
                                              "The client assertion did not fit"));
    }
fail:
    if (sig != NULL) {
        OPENSSL_cleanse(sig, sig_len);
        g_free(sig);
    }
    g_free(input);
    g_free(h64);
    g_free(c64);
    g_free(jti);
    g_free(aud);
    g_string_free(header, TRUE);
    g_string_free(claims, TRUE);
    return assertion;
}

/* --- id_token validation -------------------------------------------------------------------- */

static EVP_PKEY *
rsa_public_from_jwk(const char *n64, const char *e64)
{
    guint8 *n = NULL, *e = NULL;
    gsize n_len = 0, e_len = 0;
    BIGNUM *bn_n = NULL, *bn_e = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;

    n = b64url_decode(n64, strlen(n64), &n_len);
    e = b64url_decode(e64, strlen(e64), &e_len);
    if (n == NULL || e == NULL || n_len == 0 || e_len == 0 || n_len > 2048 || e_len > 8)
        goto fail;
    bn_n = BN_bin2bn(n, (int)n_len, NULL);
    bn_e = BN_bin2bn(e, (int)e_len, NULL);
    bld = OSSL_PARAM_BLD_new();
    if (bn_n == NULL || bn_e == NULL || bld == NULL ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e))
        goto fail;
    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
fail:
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    g_free(n);
    g_free(e);
    ERR_clear_error();
    return pkey;
}

static gboolean
verify_rs256(EVP_PKEY *pkey, const char *input, gsize len, const guint8 *sig, gsize sig_len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    gboolean ok;

    ok = md != NULL && EVP_DigestVerifyInit_ex(md, &pctx, "SHA256", NULL, NULL, pkey, NULL) == 1 &&
         EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) > 0 &&
         EVP_DigestVerify(md, sig, sig_len, (const guint8 *)input, len) == 1;
    EVP_MD_CTX_free(md);
    ERR_clear_error();
    return ok;
}

static JsonObject *
find_jwk(JsonNode *jwks, const char *kid)
{
    JsonArray *keys;

    if (jwks == NULL || !JSON_NODE_HOLDS_OBJECT(jwks))
        return NULL;
    keys = obj_array(json_node_get_object(jwks), "keys");
    if (keys == NULL)
        return NULL;
    for (guint i = 0; i < json_array_get_length(keys); i++) {
        JsonNode *node = json_array_get_element(keys, i);
        if (JSON_NODE_HOLDS_OBJECT(node) &&
            g_strcmp0(obj_string(json_node_get_object(node), "kid"), kid) == 0)
            return json_node_get_object(node);
    }
    return NULL;
}

static JsonNode *
parse_b64url_json(const char *text, gsize len)
{
    gsize raw_len = 0;
    guint8 *raw = b64url_decode(text, len, &raw_len);
    JsonParser *parser;
    JsonNode *root = NULL;

    if (raw == NULL)
        return NULL;
    parser = json_parser_new();
    if (json_parser_load_from_data(parser, (const char *)raw, (gssize)raw_len, NULL) &&
        JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser)))
        root = json_node_copy(json_parser_get_root(parser));
    g_object_unref(parser);
    g_free(raw);
    return root;
}

static gboolean
audience_ok(JsonObject *claims, const char *client_id)
{
    JsonNode *aud = json_object_get_member(claims, "aud");
    JsonArray *list;

    if (aud == NULL)
        return FALSE;
    if (JSON_NODE_HOLDS_VALUE(aud) && json_node_get_value_type(aud) == G_TYPE_STRING)
        return g_ascii_strcasecmp(json_node_get_string(aud), client_id) == 0;
    if (!JSON_NODE_HOLDS_ARRAY(aud))
        return FALSE;
    /* Several audiences would need azp rules: an id_token for us has exactly one. */
    list = json_node_get_array(aud);
    return json_array_get_length(list) == 1 &&
           JSON_NODE_HOLDS_VALUE(json_array_get_element(list, 0)) &&
           json_node_get_value_type(json_array_get_element(list, 0)) == G_TYPE_STRING &&
           g_ascii_strcasecmp(json_array_get_string_element(list, 0), client_id) == 0;
}

void
kd_id_token_claims_clear(KdIdTokenClaims *claims)
{
    g_clear_pointer(&claims->oid, g_free);
    g_clear_pointer(&claims->tid, g_free);
    g_clear_pointer(&claims->upn, g_free);
    g_clear_pointer(&claims->name, g_free);
    claims->exp = 0;
}

gboolean
kd_graph_id_token_validate(const char *id_token, gsize len, JsonNode *jwks, const char *issuer,
                           const char *client_id, const char *tenant, gint64 now,
                           KdIdTokenClaims *claims, gboolean *unknown_kid, GError **error)
{
    const char *dot1, *dot2, *why = NULL, *kid, *tid, *iss, *oid, *ver, *key_issuer;
    JsonNode *header = NULL, *payload = NULL;
    JsonObject *h, *c, *jwk;
    guint8 *sig = NULL;
    gsize sig_len = 0;
    EVP_PKEY *pkey = NULL;
    char *expected_iss = NULL, *expected_key_iss = NULL;
    gint64 exp = 0, nbf = 0, iat = 0;
    gboolean ok = FALSE;

    memset(claims, 0, sizeof(*claims));
    *unknown_kid = FALSE;
    dot1 = id_token != NULL ? memchr(id_token, '.', len) : NULL;
    dot2 = dot1 != NULL ? memchr(dot1 + 1, '.', len - (gsize)(dot1 + 1 - id_token)) : NULL;
    if (dot2 == NULL || memchr(dot2 + 1, '.', len - (gsize)(dot2 + 1 - id_token)) != NULL) {
        why = "is not a signed JWT";
        goto fail;
    }
    header = parse_b64url_json(id_token, (gsize)(dot1 - id_token));
    payload = parse_b64url_json(dot1 + 1, (gsize)(dot2 - dot1 - 1));
    sig = b64url_decode(dot2 + 1, len - (gsize)(dot2 + 1 - id_token), &sig_len);
    if (header == NULL || payload == NULL || sig == NULL || sig_len == 0) {
        why = "is not a signed JWT";
        goto fail;
    }
    h = json_node_get_object(header);
    c = json_node_get_object(payload);
    if (g_strcmp0(obj_string(h, "alg"), "RS256") != 0) {
        why = "is not signed with RS256";
        goto fail;
    }
    kid = obj_string(h, "kid");
    if (kid == NULL) {
        why = "names no key";
        goto fail;
    }
    jwk = find_jwk(jwks, kid);
    if (jwk == NULL) {
        *unknown_kid = TRUE;
        why = "is signed with a key the tenant does not publish";
        goto fail;
    }
    if (g_strcmp0(obj_string(jwk, "kty"), "RSA") != 0 ||
        (json_object_has_member(jwk, "use") && g_strcmp0(obj_string(jwk, "use"), "sig") != 0) ||
        (json_object_has_member(jwk, "alg") && g_strcmp0(obj_string(jwk, "alg"), "RS256") != 0) ||
        obj_string(jwk, "n") == NULL || obj_string(jwk, "e") == NULL ||
        (pkey = rsa_public_from_jwk(obj_string(jwk, "n"), obj_string(jwk, "e"))) == NULL ||
        EVP_PKEY_get_bits(pkey) < 2048) {
        why = "names a signing key that is not a usable RSA key";
        goto fail;
    }
    if (!verify_rs256(pkey, id_token, (gsize)(dot2 - id_token), sig, sig_len)) {
        why = "has a signature that does not verify";
        goto fail;
    }
    tid = obj_string(c, "tid");
    iss = obj_string(c, "iss");
    if (tid == NULL || iss == NULL || issuer == NULL) {
        why = "has no tenant or issuer";
        goto fail;
    }
    if (is_guid(tenant) ? g_ascii_strcasecmp(tid, tenant) != 0
                        : strstr(issuer, "{tenantid}") != NULL) {
        /* A multi-tenant endpoint could not say which tenant is ours. */
        why = "is from another tenant";
        goto fail;
    }
    expected_iss = str_replace(issuer, "{tenantid}", tid);
    key_issuer = obj_string(jwk, "issuer");
    expected_key_iss = key_issuer != NULL ? str_replace(key_issuer, "{tenantid}", tid) : NULL;
    if (strcmp(iss, expected_iss) != 0 ||
        (expected_key_iss != NULL && strcmp(iss, expected_key_iss) != 0)) {
        why = "has the wrong issuer";
        goto fail;
    }
    if (!audience_ok(c, client_id)) {
        why = "is for another application";
        goto fail;
    }
    if (!obj_number(c, "exp", &exp) || exp + CLOCK_SKEW_S <= now) {
        why = "has expired";
        goto fail;
    }
    if ((json_object_has_member(c, "nbf") &&
         (!obj_number(c, "nbf", &nbf) || nbf - CLOCK_SKEW_S > now)) ||
        (json_object_has_member(c, "iat") &&
         (!obj_number(c, "iat", &iat) || iat - CLOCK_SKEW_S > now || iat > exp))) {
        why = "is not valid yet";
        goto fail;
    }
    ver = obj_string(c, "ver");
    if (json_object_has_member(c, "ver") && g_strcmp0(ver, "2.0") != 0) {
        why = "is not a v2.0 token";
        goto fail;
    }
    oid = obj_string(c, "oid");
    if (oid == NULL || *oid == '\0') {
        why = "names nobody (no oid)";
        goto fail;
    }
    claims->oid = g_strdup(oid);
    claims->tid = g_strdup(tid);
    claims->upn = g_strdup(obj_string(c, "preferred_username"));
    claims->name = g_strdup(obj_string(c, "name"));
    claims->exp = exp;
    ok = TRUE;
fail:
    if (!ok) {
        g_message("id_token refused: it %s", why);
        g_propagate_error(error, simple_error(KD_GRAPH_ERROR_AUTH, 0, "invalid_id_token",
                                              "The sign-in could not be verified: the id_token "
                                              "%s",
                                              why));
    }
    EVP_PKEY_free(pkey);
    g_free(sig);
    g_free(expected_iss);
    g_free(expected_key_iss);
    if (header != NULL)
        json_node_unref(header);
    if (payload != NULL)
        json_node_unref(payload);
    return ok;
}

/* --- the auth object ------------------------------------------------------------------------ */

char *
kd_graph_auth_resource_for(const char *graph_url)
{
    static const char *const clouds[] = {"graph.microsoft.com", "graph.microsoft.us",
                                         "dod-graph.microsoft.us",
                                         "microsoftgraph.chinacloudapi.cn"};
    GUri *uri = graph_url != NULL ? g_uri_parse(graph_url, G_URI_FLAGS_NONE, NULL) : NULL;
    const char *host = uri != NULL ? g_uri_get_host(uri) : NULL;
    char *resource = NULL;

    if (host != NULL && g_ascii_strcasecmp(g_uri_get_scheme(uri), "https") == 0) {
        for (gsize i = 0; i < G_N_ELEMENTS(clouds) && resource == NULL; i++)
            if (g_ascii_strcasecmp(host, clouds[i]) == 0)
                resource = g_strconcat("https://", clouds[i], NULL);
    }
    if (uri != NULL)
        g_uri_unref(uri);
    return resource != NULL ? resource : g_strdup("https://graph.microsoft.com");
}

static void
auth_unref(KdGraphAuth *auth)
{
    if (!g_atomic_ref_count_dec(&auth->ref))
        return;
    g_warn_if_fail(auth->ops == NULL);
    EVP_PKEY_free(auth->key);
    kd_secret_unref(auth->client_secret);
    kd_secret_unref(auth->app_token);
    if (auth->jwks != NULL)
        json_node_unref(auth->jwks);
    g_free(auth->issuer);
    g_free(auth->jwks_uri);
    g_free(auth->login_url);
    g_free(auth->tenant);
    g_free(auth->client_id);
    g_free(auth->scope);
    g_free(auth->token_url);
    g_free(auth->x5t);
    g_free(auth->x5t_s256);
    g_free(auth);
}

KdGraphAuth *
kd_graph_auth_new(const KdGraphAuthOptions *options, KdHttp *http, GError **error)
{
    KdGraphAuth *auth = NULL;
    char *resource = NULL;
    gsize n;

    g_return_val_if_fail(options != NULL, NULL);
    g_return_val_if_fail(http != NULL, NULL);
    if (options->login_url == NULL || !g_str_has_prefix(options->login_url, "https://") ||
        strpbrk(options->login_url, "\"\\ \t\r\n?#") != NULL) {
        g_propagate_error(error, simple_error(KD_GRAPH_ERROR_CONFIG, 0, NULL,
                                              "The login URL must be an https:// URL"));
        goto fail;
    }
    if (!all_unreserved(options->tenant) || !all_unreserved(options->client_id)) {
        g_propagate_error(error, simple_error(KD_GRAPH_ERROR_CONFIG, 0, NULL,
                                              "The tenant and the client id must be a GUID or "
                                              "a domain name"));
        goto fail;
    }
    if (options->assertion_alg != KD_GRAPH_ASSERTION_PS256 &&
        options->assertion_alg != KD_GRAPH_ASSERTION_RS256) {
        g_propagate_error(error, simple_error(KD_GRAPH_ERROR_CONFIG, 0, NULL,
                                              "Unknown client assertion algorithm %d",
                                              options->assertion_alg));
        goto fail;
    }
    if ((options->certificate_file == NULL) != (options->private_key_file == NULL)) {
        g_propagate_error(error, simple_error(KD_GRAPH_ERROR_CONFIG, 0, NULL,
                                              "A certificate needs its private key, and a key "
                                              "its certificate"));
        goto fail;
    }
    auth = g_new0(KdGraphAuth, 1);
    g_atomic_ref_count_init(&auth->ref);
    auth->network_retry = TRUE;
    auth->http = http;
    auth->login_url = g_strdup(options->login_url);
    n = strlen(auth->login_url);
    while (n > strlen("https://") && auth->login_url[n - 1] == '/')
        auth->login_url[--n] = '\0';
    auth->tenant = g_strdup(options->tenant);
    auth->client_id = g_strdup(options->client_id);
    resource = kd_graph_auth_resource_for(options->graph_url);
    auth->scope = g_strconcat(resource, "/.default", NULL);
    auth->token_url = g_strconcat(auth->login_url, "/", auth->tenant, "/oauth2/v2.0/token", NULL);
    auth->alg = options->assertion_alg;
    if (options->certificate_file != NULL &&
        !load_credential(auth, options->certificate_file, options->private_key_file,
                         options->assertion_alg, error)) {
        auth_unref(auth);
        auth = NULL;
        goto fail;
    }
    if (options->client_secret != NULL && kd_secret_get_length(options->client_secret) > 0)
        auth->client_secret = kd_secret_ref(options->client_secret);
    g_debug("auth: app %s on %s, tenant %s, credential: %s", auth->client_id, auth->login_url,
            auth->tenant,
            auth->key != NULL             ? (auth->alg == ALG_RS256   ? "certificate (RS256)"
                                             : auth->alg == ALG_ES256 ? "certificate (ES256)"
                                                                      : "certificate (PS256)")
            : auth->client_secret != NULL ? "client secret"
                                          : "none (device code only)");
fail:
    g_free(resource);
    return auth;
}

/* --- operations ----------------------------------------------------------------------------- */

static void op_complete(Op *op, gpointer value, GError *error);

static Op *
op_new(OpKind kind, KdGraphAuth *auth)
{
    Op *op = g_new0(Op, 1);

    op->ref = 1; /* dropped when it finishes */
    op->kind = kind;
    op->auth = auth;
    g_atomic_ref_count_inc(&auth->ref);
    op->context = g_main_context_ref_thread_default();
    op->http_cancel = g_cancellable_new();
    op->waiters = g_ptr_array_new();
    op->tokens.expires_in = -1;
    op->tokens.interval = -1;
    auth->ops = g_list_prepend(auth->ops, op);
    return op;
}

static void
op_ref(Op *op)
{
    op->ref++;
}

static void
op_unref(Op *op)
{
    if (--op->ref > 0)
        return;
    secret_clear(&op->body);
    secret_clear(&op->device_code);
    kd_oauth_reply_clear(&op->tokens);
    if (op->timer != NULL) {
        g_source_destroy(op->timer);
        g_source_unref(op->timer);
    }
    if (op->session != NULL)
        kd_graph_session_unref(op->session);
    g_ptr_array_unref(op->waiters);
    g_object_unref(op->http_cancel);
    g_main_context_unref(op->context);
    g_free(op->client_request_id);
    g_free(op->scope);
    auth_unref(op->auth);
    g_free(op);
}

static void
waiter_return(Waiter *w, OpKind kind, gpointer value, const GError *error)
{
    if (w->cancel_source != NULL) {
        g_source_destroy(w->cancel_source);
        g_source_unref(w->cancel_source);
    }
    if (error != NULL)
        g_task_return_error(w->task, g_error_copy(error));
    else if (kind == OP_DEVICE)
        g_task_return_pointer(w->task, kd_graph_session_ref(value),
                              (GDestroyNotify)kd_graph_session_unref);
    else
        g_task_return_pointer(w->task, kd_secret_ref(value), (GDestroyNotify)kd_secret_unref);
    g_object_unref(w->task);
    g_free(w);
}

static gboolean
waiter_cancelled(GCancellable *cancellable, gpointer data)
{
    Waiter *w = data;
    Op *op = w->op;
    GError *error = cancelled_error();

    op_ref(op);
    g_ptr_array_remove(op->waiters, w);
    waiter_return(w, op->kind, NULL, error);
    /* A device sign-in has one caller and stops with it. Token requests go on: an answer that
     * rotated the refresh token must not be thrown away. */
    if (op->kind == OP_DEVICE && op->waiters->len == 0 && !op->finished) {
        g_debug("device code: cancelled, polling stops");
        g_cancellable_cancel(op->http_cancel);
        op_complete(op, NULL, g_steal_pointer(&error));
    }
    g_clear_error(&error);
    op_unref(op);
    return G_SOURCE_REMOVE;
}

static void
op_add_waiter(Op *op, GTask *task)
{
    Waiter *w = g_new0(Waiter, 1);
    GCancellable *cancellable = g_task_get_cancellable(task);

    w->op = op;
    w->task = task;
    if (cancellable != NULL) {
        w->cancel_source = g_cancellable_source_new(cancellable);
        g_source_set_callback(w->cancel_source, G_SOURCE_FUNC(waiter_cancelled), w, NULL);
        g_source_attach(w->cancel_source, op->context);
    }
    g_ptr_array_add(op->waiters, w);
}

/* Hands @value (a new reference each) or @error (consumed) to every waiter; the end. */
static void
op_complete(Op *op, gpointer value, GError *error)
{
    GPtrArray *waiters;

    if (op->finished) {
        g_clear_error(&error);
        return;
    }
    op->finished = TRUE;
    op->auth->ops = g_list_remove(op->auth->ops, op);
    if (op->auth->app_fetch == op)
        op->auth->app_fetch = NULL;
    if (op->session != NULL && op->session->refresh == op)
        op->session->refresh = NULL;
    if (op->timer != NULL) {
        g_source_destroy(op->timer);
        g_clear_pointer(&op->timer, g_source_unref);
    }
    secret_clear(&op->device_code);
    kd_oauth_reply_clear(&op->tokens);
    waiters = g_steal_pointer(&op->waiters);
    op->waiters = g_ptr_array_new();
    for (guint i = 0; i < waiters->len; i++)
        waiter_return(waiters->pdata[i], op->kind, value, error);
    g_ptr_array_unref(waiters);
    g_clear_error(&error);
    op_unref(op);
}

static KdHttpRequest *
op_request(Op *op, const char *method, const char *url)
{
    KdHttpRequest *request = kd_http_request_new(method, url);

    g_free(op->client_request_id);
    op->client_request_id = new_guid();
    kd_http_request_add_header(request, "Accept", "application/json");
    kd_http_request_add_header(request, "client-request-id", op->client_request_id);
    kd_http_request_add_header(request, "return-client-request-id", "true");
    return request;
}

/* Sends @request; @form (may be NULL) is the secret body, wiped when the answer comes. */
static void
op_send(Op *op, KdHttpRequest *request, KdSecret *form, GAsyncReadyCallback callback)
{
    if (form != NULL) {
        secret_clear(&op->body);
        op->body = form;
        kd_http_request_set_secret_body(request, form, FORM_TYPE);
    }
    op_ref(op);
    kd_http_send_async(op->auth->http, request, op->http_cancel, callback, op);
}

/* The start of every HTTP callback: the response, or NULL with @error; FALSE when the operation
 * already ended (the caller just drops its reference). */
static gboolean
op_received(Op *op, GAsyncResult *result, KdHttpResponse **response, GError **error)
{
    *response = kd_http_send_finish(op->auth->http, result, error);
    secret_clear(&op->body);
    if (!op->finished)
        return TRUE;
    response_wipe(*response);
    kd_http_response_free(response);
    g_clear_error(error);
    return FALSE;
}

static void
op_done_with_response(KdHttpResponse **response)
{
    response_wipe(*response);
    kd_http_response_free(response);
}

/* --- app-only tokens ------------------------------------------------------------------------ */

static void on_app_token(GObject *source, GAsyncResult *result, gpointer data);

static void
app_token_send(Op *op)
{
    KdGraphAuth *auth = op->auth;
    KdSecret *assertion = NULL, *form;
    KdHttpRequest *request;
    GError *error = NULL;

    if (auth->key != NULL) {
        assertion = kd_graph_auth_build_assertion(auth, wall_now(), &error);
        if (assertion == NULL) {
            op_complete(op, NULL, error);
            return;
        }
        FormField fields[] = {
            FORM_STR("client_id", auth->client_id),
            FORM_STR("scope", auth->scope),
            FORM_STR("grant_type", "client_credentials"),
            FORM_STR("client_assertion_type", ASSERTION_TYPE),
            {"client_assertion", kd_secret_get_data(assertion), kd_secret_get_length(assertion)},
        };
        form = form_encode(fields, G_N_ELEMENTS(fields));
        secret_clear(&assertion);
    } else {
        FormField fields[] = {
            FORM_STR("client_id", auth->client_id),
            FORM_STR("scope", auth->scope),
            FORM_STR("grant_type", "client_credentials"),
            {"client_secret", kd_secret_get_data(auth->client_secret),
             kd_secret_get_length(auth->client_secret)},
        };
        form = form_encode(fields, G_N_ELEMENTS(fields));
    }
    request = op_request(op, "POST", auth->token_url);
    /* With a secret the same request may go twice (connections are then reused); an assertion's
     * jti works once, so an assertion is only ever sent on a fresh connection. */
    kd_http_request_set_idempotent(request, auth->key == NULL);
    op_send(op, request, form, on_app_token);
}

static void
on_app_token(GObject *source, GAsyncResult *result, gpointer data)
{
    Op *op = data;
    KdGraphAuth *auth = op->auth;
    KdHttpResponse *response = NULL;
    GError *error = NULL;
    KdOAuthReply reply;
    gboolean parsed;
    const char *body;
    gsize len;

    if (!op_received(op, result, &response, &error))
        goto out;
    if (response == NULL) {
        /* A client-credentials request is idempotent: once more, with a new assertion. */
        if (op->auth->network_retry && op->attempt++ == 0 && worth_retrying(error, FALSE)) {
            g_debug("app token: %s; trying once more", error->message);
            g_clear_error(&error);
            app_token_send(op);
        } else {
            op_complete(op, NULL, transport_error(error, "App token"));
            g_clear_error(&error);
        }
        goto out;
    }
    body = response_data(response, &len);
    parsed = kd_oauth_reply_parse(body, len, &reply);
    if (kd_http_response_get_status(response) == 200 && parsed && reply.access_token != NULL &&
        kd_secret_get_length(reply.access_token) > 0 &&
        (reply.token_type == NULL || g_ascii_strcasecmp(reply.token_type, "Bearer") == 0)) {
        gint64 expires_in = reply.expires_in >= 0 ? reply.expires_in : DEFAULT_EXPIRES_IN_S;
        kd_secret_unref(auth->app_token); /* others may still be using it: no wipe */
        auth->app_token = g_steal_pointer(&reply.access_token);
        auth->app_token_expires = boot_now() + expires_in * G_USEC_PER_SEC;
        g_debug("app token for %s: valid for %" G_GINT64_FORMAT " s", auth->client_id, expires_in);
        op_complete(op, auth->app_token, NULL);
    } else if (kd_http_response_get_status(response) == 200) {
        op_complete(op, NULL,
                    simple_error(KD_GRAPH_ERROR_BAD_RESPONSE, 200, NULL,
                                 "App token: the identity platform's answer holds no token"));
    } else {
        op_complete(op, NULL,
                    reply_error("App token", response, &reply, parsed, op->client_request_id,
                                KD_GRAPH_ERROR_AUTH));
    }
    if (parsed)
        kd_oauth_reply_clear(&reply);
    op_done_with_response(&response);
out:
    op_unref(op);
}

void
kd_graph_auth_app_token_async(KdGraphAuth *auth, gboolean force, GCancellable *cancellable,
                              GAsyncReadyCallback callback, gpointer user_data)
{
    GTask *task;

    g_return_if_fail(auth != NULL);
    task = g_task_new(NULL, cancellable, callback, user_data);
    g_task_set_source_tag(task, kd_graph_auth_app_token_async);
    if (g_task_return_error_if_cancelled(task))
        goto done;
    if (auth->closed) {
        g_task_return_error(task, cancelled_error());
        goto done;
    }
    if (force && auth->app_token != NULL) {
        g_debug("app token for %s: dropped on request", auth->client_id);
        g_clear_pointer(&auth->app_token, kd_secret_unref);
    }
    if (token_fresh(auth->app_token, auth->app_token_expires)) {
        g_task_return_pointer(task, kd_secret_ref(auth->app_token),
                              (GDestroyNotify)kd_secret_unref);
        goto done;
    }
    if (auth->key == NULL && auth->client_secret == NULL) {
        g_task_return_error(task, simple_error(KD_GRAPH_ERROR_CONFIG, 0, NULL,
                                               "No app credential (certificate or client "
                                               "secret) is configured"));
        goto done;
    }
    /* Everyone who asks while a request is out waits for that one request. */
    if (auth->app_fetch != NULL) {
        op_add_waiter(auth->app_fetch, task);
        return;
    }
    auth->app_fetch = op_new(OP_APP_TOKEN, auth);
    op_add_waiter(auth->app_fetch, task);
    app_token_send(auth->app_fetch);
    return;
done:
    g_object_unref(task);
}

KdSecret *
kd_graph_auth_app_token_finish(KdGraphAuth *auth, GAsyncResult *result, GError **error)
{
    g_return_val_if_fail(g_task_is_valid(result, NULL), NULL);
    g_return_val_if_fail(g_task_get_source_tag(G_TASK(result)) == kd_graph_auth_app_token_async,
                         NULL);
    return g_task_propagate_pointer(G_TASK(result), error);
}

/* --- device code ---------------------------------------------------------------------------- */

static void on_devicecode(GObject *source, GAsyncResult *result, gpointer data);
static void on_poll(GObject *source, GAsyncResult *result, gpointer data);
static void device_verify(Op *op);

/* The scopes asked for plus openid (an id_token), profile (the name) and offline_access
 * (a refresh token), each once. */
static char *
device_scope(const char *scopes)
{
    static const char *const oidc[] = {"openid", "profile", "offline_access"};
    char **given = g_strsplit_set(scopes != NULL ? scopes : "", " \t\n", -1);
    GPtrArray *out = g_ptr_array_new();
    char *joined;

    for (char **s = given; *s != NULL; s++) {
        gboolean dup = **s == '\0';
        for (guint i = 0; i < out->len && !dup; i++)
            dup = g_ascii_strcasecmp(out->pdata[i], *s) == 0;
        if (!dup)
            g_ptr_array_add(out, *s);
    }
    for (gsize k = 0; k < G_N_ELEMENTS(oidc); k++) {
        gboolean dup = FALSE;
        for (guint i = 0; i < out->len && !dup; i++)
            dup = g_ascii_strcasecmp(out->pdata[i], oidc[k]) == 0;
        if (!dup)
            g_ptr_array_add(out, (gpointer)(guintptr)oidc[k]);
    }
    g_ptr_array_add(out, NULL);
    joined = g_strjoinv(" ", (char **)out->pdata);
    g_ptr_array_unref(out);
    g_strfreev(given);
    return joined;
}

static void
device_code_send(Op *op)
{
    KdGraphAuth *auth = op->auth;
    char *url = g_strconcat(auth->login_url, "/", auth->tenant, "/oauth2/v2.0/devicecode", NULL);
    FormField fields[] = {
        FORM_STR("client_id", auth->client_id),
        FORM_STR("scope", op->scope),
    };

    op_send(op, op_request(op, "POST", url), form_encode(fields, G_N_ELEMENTS(fields)),
            on_devicecode);
    g_free(url);
}

static gboolean device_poll(gpointer data);

static void
device_schedule(Op *op, guint delay_s)
{
    gint64 left_ms = (op->deadline - boot_now()) / 1000;
    guint ms = delay_s * 1000;

    if (left_ms <= 0)
        ms = 0;
    else if ((gint64)ms > left_ms)
        ms = (guint)left_ms;
    op->timer = g_timeout_source_new(ms);
    g_source_set_callback(op->timer, device_poll, op, NULL);
    g_source_attach(op->timer, op->context);
}

static gboolean
device_poll(gpointer data)
{
    Op *op = data;
    KdGraphAuth *auth = op->auth;

    g_clear_pointer(&op->timer, g_source_unref);
    if (boot_now() >= op->deadline) {
        g_debug("device code: expired before anyone signed in");
        op_complete(op, NULL,
                    simple_error(KD_GRAPH_ERROR_EXPIRED, 0, "expired_token",
                                 "Nobody signed in before the code expired"));
        return G_SOURCE_REMOVE;
    }
    FormField fields[] = {
        FORM_STR("grant_type", DEVICE_CODE_GRANT),
        FORM_STR("client_id", auth->client_id),
        {"device_code", kd_secret_get_data(op->device_code), kd_secret_get_length(op->device_code)},
    };
    op_send(op, op_request(op, "POST", auth->token_url), form_encode(fields, G_N_ELEMENTS(fields)),
            on_poll);
    return G_SOURCE_REMOVE;
}

static void
on_devicecode(GObject *source, GAsyncResult *result, gpointer data)
{
    Op *op = data;
    KdHttpResponse *response = NULL;
    GError *error = NULL;
    KdOAuthReply reply;
    KdDeviceCodePrompt prompt = {0};
    gboolean parsed;
    const char *body;
    gsize len;
    gint64 expires_in;

    if (!op_received(op, result, &response, &error))
        goto out;
    if (response == NULL) {
        if (op->attempt++ == 0 && worth_retrying(error, FALSE)) {
            g_debug("device code: %s; trying once more", error->message);
            g_clear_error(&error);
            device_code_send(op);
        } else {
            op_complete(op, NULL, transport_error(error, "Device code"));
            g_clear_error(&error);
        }
        goto out;
    }
    op->attempt = 0;
    body = response_data(response, &len);
    parsed = kd_oauth_reply_parse(body, len, &reply);
    if (kd_http_response_get_status(response) != 200) {
        op_complete(op, NULL,
                    reply_error("Device code", response, &reply, parsed, op->client_request_id,
                                KD_GRAPH_ERROR_AUTH));
    } else if (!parsed || reply.device_code == NULL || reply.user_code == NULL ||
               kd_secret_get_length(reply.device_code) == 0) {
        op_complete(op, NULL,
                    simple_error(KD_GRAPH_ERROR_BAD_RESPONSE, 200, NULL,
                                 "Device code: the identity platform's answer holds no code"));
    } else {
        op->device_code = g_steal_pointer(&reply.device_code);
        op->interval_s =
            reply.interval > 0 ? (guint)MIN(reply.interval, MAX_INTERVAL_S) : DEFAULT_INTERVAL_S;
        expires_in = reply.expires_in > 0 ? MIN(reply.expires_in, MAX_DEVICE_EXPIRY_S)
                                          : DEFAULT_DEVICE_EXPIRY_S;
        op->deadline = boot_now() + expires_in * G_USEC_PER_SEC;
        g_debug("device code: shown for %" G_GINT64_FORMAT " s, polling every %u s", expires_in,
                op->interval_s);
        prompt.user_code = reply.user_code;
        prompt.verification_uri = reply.verification_uri != NULL
                                      ? reply.verification_uri
                                      : (char *)(guintptr) "https://microsoft.com/devicelogin";
        prompt.message = reply.message;
        prompt.expires_in_s = (guint)expires_in;
        prompt.interval_s = op->interval_s;
        if (op->prompt != NULL)
            op->prompt(&prompt, op->prompt_data);
        if (!op->finished) /* the prompt may have ended it (auth freed) */
            device_schedule(op, op->interval_s);
    }
    if (parsed)
        kd_oauth_reply_clear(&reply);
    op_done_with_response(&response);
out:
    op_unref(op);
}

/* 429, 5xx or a lost connection while polling: the person may be signing in right now, so
 * keep polling a while before giving up. */
static void
device_transient(Op *op, GError *error, guint retry_after_s)
{
    if (++op->failures > MAX_POLL_FAILURES) {
        op_complete(op, NULL, error);
        return;
    }
    g_debug("device code: poll failed (%s), trying again", error->message);
    g_error_free(error);
    device_schedule(op, MAX(op->interval_s, retry_after_s));
}

static void
on_poll(GObject *source, GAsyncResult *result, gpointer data)
{
    Op *op = data;
    KdHttpResponse *response = NULL;
    GError *error = NULL;
    KdOAuthReply reply;
    gboolean parsed = FALSE;
    const char *body;
    gsize len;
    guint status;

    if (!op_received(op, result, &response, &error))
        goto out;
    if (response == NULL) {
        GError *e = transport_error(error, "Device code polling");
        g_clear_error(&error);
        if (g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CANCELLED) ||
            g_error_matches(e, KD_GRAPH_ERROR, KD_GRAPH_ERROR_TLS))
            op_complete(op, NULL, e);
        else
            device_transient(op, e, 0);
        goto out;
    }
    status = kd_http_response_get_status(response);
    body = response_data(response, &len);
    parsed = kd_oauth_reply_parse(body, len, &reply);
    if (status == 200) {
        if (!parsed || reply.access_token == NULL || reply.id_token == NULL) {
            op_complete(op, NULL,
                        simple_error(KD_GRAPH_ERROR_BAD_RESPONSE, 200, NULL,
                                     "Device code: the identity platform's answer holds no "
                                     "tokens"));
        } else {
            g_debug("device code: signed in; checking the id_token");
            op->tokens = reply;
            parsed = FALSE; /* op->tokens owns it now */
            device_verify(op);
        }
    } else if (parsed && g_strcmp0(reply.error, "authorization_pending") == 0) {
        op->failures = 0;
        device_schedule(op, op->interval_s);
    } else if (parsed && g_strcmp0(reply.error, "slow_down") == 0) {
        op->failures = 0;
        op->interval_s = MIN(op->interval_s + SLOW_DOWN_S, MAX_INTERVAL_S);
        g_debug("device code: slow down: polling every %u s", op->interval_s);
        device_schedule(op, op->interval_s);
    } else if (parsed && g_strcmp0(reply.error, "authorization_declined") == 0) {
        op_complete(op, NULL,
                    reply_error("Device code", response, &reply, parsed, op->client_request_id,
                                KD_GRAPH_ERROR_DECLINED));
    } else if (parsed && g_strcmp0(reply.error, "expired_token") == 0) {
        op_complete(op, NULL,
                    reply_error("Device code", response, &reply, parsed, op->client_request_id,
                                KD_GRAPH_ERROR_EXPIRED));
    } else {
        GError *e = reply_error("Device code polling", response, &reply, parsed,
                                op->client_request_id, KD_GRAPH_ERROR_AUTH);
        const KdGraphErrorInfo *info = kd_graph_error_get_info(e);
        if (info->retryable)
            device_transient(op, e, info->retry_after_s);
        else
            op_complete(op, NULL, e);
    }
    if (parsed)
        kd_oauth_reply_clear(&reply);
    op_done_with_response(&response);
out:
    op_unref(op);
}

/* --- OpenID Connect metadata ---------------------------------------------------------------- */

static void on_discovery(GObject *source, GAsyncResult *result, gpointer data);
static void on_jwks(GObject *source, GAsyncResult *result, gpointer data);

static void
discovery_send(Op *op)
{
    KdGraphAuth *auth = op->auth;
    char *url = g_strconcat(auth->login_url, "/", auth->tenant,
                            "/v2.0/.well-known/openid-configuration", NULL);

    op_send(op, op_request(op, "GET", url), NULL, on_discovery);
    g_free(url);
}

static void
jwks_send(Op *op)
{
    op_send(op, op_request(op, "GET", op->auth->jwks_uri), NULL, on_jwks);
}

/* The GET of a metadata document: the parsed object, or NULL once the operation has ended or
 * is being retried. */
static JsonNode *
metadata_received(Op *op, GAsyncResult *result, const char *what, void (*resend)(Op *))
{
    KdHttpResponse *response = NULL;
    GError *error = NULL;
    JsonNode *root = NULL;
    guint status;

    if (!op_received(op, result, &response, &error))
        return NULL;
    if (response == NULL) {
        if (op->attempt++ == 0 && worth_retrying(error, FALSE)) {
            g_debug("%s: %s; trying once more", what, error->message);
            g_clear_error(&error);
            resend(op);
        } else {
            op_complete(op, NULL, transport_error(error, what));
            g_clear_error(&error);
        }
        return NULL;
    }
    op->attempt = 0;
    status = kd_http_response_get_status(response);
    if (status == 429 || status >= 500) {
        KdOAuthReply reply;
        gsize len;
        const char *body = response_data(response, &len);
        gboolean parsed = kd_oauth_reply_parse(body, len, &reply);
        op_complete(op, NULL,
                    reply_error(what, response, &reply, parsed, op->client_request_id,
                                KD_GRAPH_ERROR_UNAVAILABLE));
        if (parsed)
            kd_oauth_reply_clear(&reply);
    } else if (status != 200 || !parse_json_object(response, &root)) {
        op_complete(op, NULL,
                    simple_error(KD_GRAPH_ERROR_BAD_RESPONSE, status, NULL,
                                 "%s: HTTP %u without the expected JSON document", what, status));
    }
    kd_http_response_free(&response);
    return root;
}

static void
on_discovery(GObject *source, GAsyncResult *result, gpointer data)
{
    Op *op = data;
    KdGraphAuth *auth = op->auth;
    JsonNode *root = metadata_received(op, result, "OpenID configuration", discovery_send);
    char *prefix = NULL;
    const char *issuer, *jwks_uri;

    if (root == NULL)
        goto out;
    issuer = obj_string(json_node_get_object(root), "issuer");
    jwks_uri = obj_string(json_node_get_object(root), "jwks_uri");
    /* The keys must come from the login host itself, over TLS. */
    prefix = g_strconcat(auth->login_url, "/", NULL);
    if (issuer == NULL || !g_str_has_prefix(issuer, "https://") || jwks_uri == NULL ||
        !g_str_has_prefix(jwks_uri, prefix)) {
        op_complete(op, NULL,
                    simple_error(KD_GRAPH_ERROR_BAD_RESPONSE, 200, NULL,
                                 "OpenID configuration: no usable issuer and jwks_uri"));
        goto out;
    }
    g_free(auth->issuer);
    g_free(auth->jwks_uri);
    auth->issuer = g_strdup(issuer);
    auth->jwks_uri = g_strdup(jwks_uri);
    device_verify(op);
out:
    g_free(prefix);
    if (root != NULL)
        json_node_unref(root);
    op_unref(op);
}

static void
on_jwks(GObject *source, GAsyncResult *result, gpointer data)
{
    Op *op = data;
    KdGraphAuth *auth = op->auth;
    JsonNode *root = metadata_received(op, result, "Signing keys", jwks_send);

    if (root == NULL)
        goto out;
    if (obj_array(json_node_get_object(root), "keys") == NULL) {
        op_complete(op, NULL,
                    simple_error(KD_GRAPH_ERROR_BAD_RESPONSE, 200, NULL,
                                 "Signing keys: the document holds no keys"));
        json_node_unref(root);
        goto out;
    }
    if (auth->jwks != NULL)
        json_node_unref(auth->jwks);
    auth->jwks = root;
    device_verify(op);
out:
    op_unref(op);
}

static KdGraphSession *
session_new(Op *op, KdIdTokenClaims *claims)
{
    KdGraphSession *session = g_new0(KdGraphSession, 1);
    gint64 expires_in = op->tokens.expires_in >= 0 ? op->tokens.expires_in : DEFAULT_EXPIRES_IN_S;

    g_atomic_ref_count_init(&session->ref);
    session->client_id = g_strdup(op->auth->client_id);
    session->scope = g_strdup(op->scope);
    session->oid = g_steal_pointer(&claims->oid);
    session->tid = g_steal_pointer(&claims->tid);
    session->upn = g_steal_pointer(&claims->upn);
    session->name = g_steal_pointer(&claims->name);
    session->access_token = g_steal_pointer(&op->tokens.access_token);
    session->refresh_token = g_steal_pointer(&op->tokens.refresh_token);
    session->expires = boot_now() + expires_in * G_USEC_PER_SEC;
    return session;
}

/* Validates the id_token of op->tokens, fetching the discovery document and the keys first if
 * this auth has not got them yet, and the keys once more when they do not name its kid. */
static void
device_verify(Op *op)
{
    KdGraphAuth *auth = op->auth;
    KdIdTokenClaims claims = {0};
    KdGraphSession *session;
    GError *error = NULL;
    gboolean unknown_kid = FALSE;

    if (auth->issuer == NULL || auth->jwks_uri == NULL) {
        discovery_send(op);
        return;
    }
    if (auth->jwks == NULL) {
        jwks_send(op);
        return;
    }
    if (!kd_graph_id_token_validate(kd_secret_get_string(op->tokens.id_token),
                                    kd_secret_get_length(op->tokens.id_token), auth->jwks,
                                    auth->issuer, auth->client_id, auth->tenant, wall_now(),
                                    &claims, &unknown_kid, &error)) {
        if (unknown_kid && !op->jwks_refetched) {
            g_debug("id_token: unknown signing key; fetching the keys again");
            op->jwks_refetched = TRUE;
            g_clear_error(&error);
            jwks_send(op);
            return;
        }
        op_complete(op, NULL, error);
        return;
    }
    session = session_new(op, &claims);
    kd_id_token_claims_clear(&claims);
    g_debug("device code: signed in as %s", session->oid);
    op_complete(op, session, NULL);
    kd_graph_session_unref(session);
}

void
kd_graph_auth_device_sign_in_async(KdGraphAuth *auth, const char *scopes,
                                   KdDeviceCodePromptFunc prompt, gpointer prompt_data,
                                   GCancellable *cancellable, GAsyncReadyCallback callback,
                                   gpointer user_data)
{
    GTask *task;
    Op *op;

    g_return_if_fail(auth != NULL);
    task = g_task_new(NULL, cancellable, callback, user_data);
    g_task_set_source_tag(task, kd_graph_auth_device_sign_in_async);
    if (g_task_return_error_if_cancelled(task)) {
        g_object_unref(task);
        return;
    }
    if (auth->closed) {
        g_task_return_error(task, cancelled_error());
        g_object_unref(task);
        return;
    }
    op = op_new(OP_DEVICE, auth);
    op->scope = device_scope(scopes);
    op->prompt = prompt;
    op->prompt_data = prompt_data;
    op_add_waiter(op, task);
    device_code_send(op);
}

KdGraphSession *
kd_graph_auth_device_sign_in_finish(KdGraphAuth *auth, GAsyncResult *result, GError **error)
{
    g_return_val_if_fail(g_task_is_valid(result, NULL), NULL);
    g_return_val_if_fail(
        g_task_get_source_tag(G_TASK(result)) == kd_graph_auth_device_sign_in_async, NULL);
    return g_task_propagate_pointer(G_TASK(result), error);
}

/* --- sessions ------------------------------------------------------------------------------- */

const char *
kd_graph_session_get_object_id(KdGraphSession *session)
{
    g_return_val_if_fail(session != NULL, NULL);
    return session->oid;
}

const char *
kd_graph_session_get_upn(KdGraphSession *session)
{
    g_return_val_if_fail(session != NULL, NULL);
    return session->upn;
}

const char *
kd_graph_session_get_name(KdGraphSession *session)
{
    g_return_val_if_fail(session != NULL, NULL);
    return session->name;
}

KdGraphSession *
kd_graph_session_ref(KdGraphSession *session)
{
    g_return_val_if_fail(session != NULL, NULL);
    g_atomic_ref_count_inc(&session->ref);
    return session;
}

void
kd_graph_session_unref(KdGraphSession *session)
{
    if (session == NULL || !g_atomic_ref_count_dec(&session->ref))
        return;
    secret_clear(&session->access_token);
    secret_clear(&session->refresh_token);
    g_free(session->client_id);
    g_free(session->scope);
    g_free(session->oid);
    g_free(session->upn);
    g_free(session->name);
    g_free(session->tid);
    g_free(session);
}

static void on_refresh(GObject *source, GAsyncResult *result, gpointer data);

static void
refresh_send(Op *op)
{
    KdGraphSession *session = op->session;
    FormField fields[] = {
        FORM_STR("client_id", op->auth->client_id),
        FORM_STR("grant_type", "refresh_token"),
        {"refresh_token", kd_secret_get_data(session->refresh_token),
         kd_secret_get_length(session->refresh_token)},
        FORM_STR("scope", session->scope),
    };

    op_send(op, op_request(op, "POST", op->auth->token_url),
            form_encode(fields, G_N_ELEMENTS(fields)), on_refresh);
}

static void
on_refresh(GObject *source, GAsyncResult *result, gpointer data)
{
    Op *op = data;
    KdGraphSession *session = op->session;
    KdHttpResponse *response = NULL;
    GError *error = NULL;
    KdOAuthReply reply;
    gboolean parsed;
    const char *body;
    gsize len;

    if (!op_received(op, result, &response, &error))
        goto out;
    if (response == NULL) {
        /* Refresh tokens are single use: send again only what surely never left. */
        if (op->auth->network_retry && op->attempt++ == 0 && worth_retrying(error, TRUE)) {
            g_debug("session refresh: %s; trying once more", error->message);
            g_clear_error(&error);
            refresh_send(op);
        } else {
            op_complete(op, NULL, transport_error(error, "Session refresh"));
            g_clear_error(&error);
        }
        goto out;
    }
    body = response_data(response, &len);
    parsed = kd_oauth_reply_parse(body, len, &reply);
    if (kd_http_response_get_status(response) == 200 && parsed && reply.access_token != NULL &&
        kd_secret_get_length(reply.access_token) > 0) {
        gint64 expires_in = reply.expires_in >= 0 ? reply.expires_in : DEFAULT_EXPIRES_IN_S;
        kd_secret_unref(session->access_token); /* a request may still be using it */
        session->access_token = g_steal_pointer(&reply.access_token);
        session->expires = boot_now() + expires_in * G_USEC_PER_SEC;
        if (reply.refresh_token != NULL) { /* rotated: the old one is dead */
            secret_clear(&session->refresh_token);
            session->refresh_token = g_steal_pointer(&reply.refresh_token);
        }
        g_debug("session of %s refreshed: valid for %" G_GINT64_FORMAT " s", session->oid,
                expires_in);
        op_complete(op, session->access_token, NULL);
    } else if (kd_http_response_get_status(response) == 200) {
        op_complete(op, NULL,
                    simple_error(KD_GRAPH_ERROR_BAD_RESPONSE, 200, NULL,
                                 "Session refresh: the identity platform's answer holds no "
                                 "token"));
    } else {
        if (parsed && g_strcmp0(reply.error, "invalid_grant") == 0)
            secret_clear(&session->refresh_token); /* revoked, expired or used: sign in again */
        op_complete(op, NULL,
                    reply_error("Session refresh", response, &reply, parsed, op->client_request_id,
                                KD_GRAPH_ERROR_AUTH));
    }
    if (parsed)
        kd_oauth_reply_clear(&reply);
    op_done_with_response(&response);
out:
    op_unref(op);
}

void
kd_graph_session_token_async(KdGraphSession *session, KdGraphAuth *auth, gboolean force,
                             GCancellable *cancellable, GAsyncReadyCallback callback,
                             gpointer user_data)
{
    GTask *task;
    Op *op;

    g_return_if_fail(session != NULL && auth != NULL);
    task = g_task_new(NULL, cancellable, callback, user_data);
    g_task_set_source_tag(task, kd_graph_session_token_async);
    if (g_task_return_error_if_cancelled(task))
        goto done;
    if (auth->closed) {
        g_task_return_error(task, cancelled_error());
        goto done;
    }
    if (force && session->access_token != NULL) {
        g_debug("session of %s: token dropped on request", session->oid);
        g_clear_pointer(&session->access_token, kd_secret_unref);
    }
    if (token_fresh(session->access_token, session->expires)) {
        g_task_return_pointer(task, kd_secret_ref(session->access_token),
                              (GDestroyNotify)kd_secret_unref);
        goto done;
    }
    if (session->refresh != NULL) {
        op_add_waiter(session->refresh, task);
        return;
    }
    if (session->refresh_token == NULL || kd_secret_get_length(session->refresh_token) == 0) {
        /* Nothing to refresh with: what is left of the token is all there is. */
        if (session->access_token != NULL && kd_secret_get_length(session->access_token) > 0 &&
            session->expires - boot_now() > 30 * G_USEC_PER_SEC)
            g_task_return_pointer(task, kd_secret_ref(session->access_token),
                                  (GDestroyNotify)kd_secret_unref);
        else
            g_task_return_error(task, simple_error(KD_GRAPH_ERROR_AUTH, 0, "interaction_required",
                                                   "The sign-in has expired: sign in again"));
        goto done;
    }
    if (g_ascii_strcasecmp(session->client_id, auth->client_id) != 0) {
        g_task_return_error(task, simple_error(KD_GRAPH_ERROR_CONFIG, 0, NULL,
                                               "This session belongs to another application"));
        goto done;
    }
    op = op_new(OP_REFRESH, auth);
    op->session = kd_graph_session_ref(session);
    session->refresh = op;
    op_add_waiter(op, task);
    refresh_send(op);
    return;
done:
    g_object_unref(task);
}

KdSecret *
kd_graph_session_token_finish(KdGraphSession *session, GAsyncResult *result, GError **error)
{
    g_return_val_if_fail(g_task_is_valid(result, NULL), NULL);
    g_return_val_if_fail(g_task_get_source_tag(G_TASK(result)) == kd_graph_session_token_async,
                         NULL);
    return g_task_propagate_pointer(G_TASK(result), error);
}

void
kd_graph_auth_set_network_retry(KdGraphAuth *auth, gboolean retry)
{
    g_return_if_fail(auth != NULL);
    auth->network_retry = retry;
}

void
kd_graph_auth_free(KdGraphAuth **authp)
{
    KdGraphAuth *auth = *authp;

    if (auth == NULL)
        return;
    *authp = NULL;
    auth->closed = TRUE;
    /* Every operation stops now: its HTTP request is cancelled, its callers hear CANCELLED. */
    while (auth->ops != NULL) {
        Op *op = auth->ops->data;
        g_cancellable_cancel(op->http_cancel);
        op_complete(op, NULL, cancelled_error());
    }
    auth_unref(auth);
}
