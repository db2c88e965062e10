/* kd-graph-client: the asynchronous, throttle-aware Microsoft Graph client (one per tenant). */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "base/kd-secret.h"
#include "graph/kd-graph-auth.h"
#include "graph/kd-graph-error.h"

G_BEGIN_DECLS

/* Everything the client needs; core/ fills it from KdConfig (graph/ knows nothing of core/). */
typedef struct {
    const char *graph_url; /* "https://graph.microsoft.com" (no trailing slash) */
    const char *login_url; /* "https://login.microsoftonline.com" */
    const char *tenant;    /* GUID or domain */
    const char *client_id;
    const char *certificate_file; /* app credential: certificate + key, or secret, or none */
    const char *private_key_file;
    KdSecret *client_secret; /* referenced, not copied; NULL if none */
    KdGraphAssertionAlg assertion_alg;
    const char *ca_file;           /* NULL = system CAs */
    const char *proxy;             /* NULL = environment */
    const char *const *connect_to; /* see KdHttpOptions */
    const char *user_agent;        /* NULL = "keydesk/VERSION" */
} KdGraphOptions;

typedef enum {
    KD_GRAPH_CALL_INTERACTIVE = 1 << 0, /* a visitor waits: x-ms-throttle-priority: High */
    KD_GRAPH_CALL_BETA = 1 << 1,        /* /beta instead of /v1.0 */
    KD_GRAPH_CALL_DELEGATED = 1 << 2,   /* with the signed-in operator's token, not the app's */
    /* Safe to send again after a network error or lost answer. GET, PUT and DELETE are by
     * default; a POST or PATCH is only if the operation says so (see kd-graph-ops.h). */
    KD_GRAPH_CALL_IDEMPOTENT = 1 << 3,
} KdGraphCallFlags;

#define KD_TYPE_GRAPH_CLIENT (kd_graph_client_get_type())
G_DECLARE_FINAL_TYPE(KdGraphClient, kd_graph_client, KD, GRAPH_CLIENT, GObject)

/* Checks the options (URLs, credential files readable) and loads the certificate and key.
 * Nothing is sent yet. */
KdGraphClient *kd_graph_client_new(const KdGraphOptions *options, GError **error);

/* Per-call budget: total deadline (retries included), default 60 s; max attempts, default 5. */
void kd_graph_client_set_deadline(KdGraphClient *client, guint seconds);
void kd_graph_client_set_max_attempts(KdGraphClient *client, guint attempts);
/* Backoff when Graph gives no Retry-After: a uniform random wait in [0, min(cap, base · 2^n)]
 * before the n-th retry of a call (default base 1000 ms, cap 32000 ms). For tests and benches. */
void kd_graph_client_set_backoff(KdGraphClient *client, guint base_ms, guint cap_ms);
/* Makes the backoff's random waits repeatable (tests). */
void kd_graph_client_set_random_seed(KdGraphClient *client, guint32 seed);

/*
 * One Graph call. @path is relative to the version ("/users/ada%40contoso.com"; the caller
 * percent-encodes path segments with kd_graph_escape_segment()), or an absolute URL taken
 * verbatim from @odata.nextLink. @body may be NULL. Retries 429/503/504 honouring
 * Retry-After, otherwise exponential backoff with full jitter; retries network errors only
 * for idempotent calls; on 401 drops the token and retries once. The callback runs on the
 * client's main context. The result is the parsed JSON body, or NULL for 204.
 */
void kd_graph_client_call_async(KdGraphClient *client, const char *method, const char *path,
                                JsonNode *body, KdGraphCallFlags flags, GCancellable *cancellable,
                                GAsyncReadyCallback callback, gpointer user_data);
JsonNode *kd_graph_client_call_finish(KdGraphClient *client, GAsyncResult *result, GError **error);

/* What a successful call answered, for callers that need more than the body. */
typedef struct _KdGraphReply KdGraphReply;
/* Like kd_graph_client_call_finish(), with the status and the response headers. */
KdGraphReply *kd_graph_client_call_finish_reply(KdGraphClient *client, GAsyncResult *result,
                                                GError **error);
guint kd_graph_reply_get_status(const KdGraphReply *reply);
/* A response header by name (any case), or NULL: request-id, x-ms-resource-unit,
 * x-ms-throttle-limit-percentage, Location, … */
const char *kd_graph_reply_get_header(const KdGraphReply *reply, const char *name);
/* The parsed body (owned by the reply), or NULL for 204 / an empty body. */
JsonNode *kd_graph_reply_get_json(const KdGraphReply *reply);
/* The secret member named in kd_graph_client_call_secret_async() (a new reference the caller
 * owns from now on), or NULL when the answer had none. */
KdSecret *kd_graph_reply_take_secret(KdGraphReply *reply);
void kd_graph_reply_free(KdGraphReply *reply);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(KdGraphReply, kd_graph_reply_free)

/*
 * A call whose successful answer holds a secret in the top-level string member @secret_member
 * (a Temporary Access Pass's "temporaryAccessPass"). The secret is decoded from the raw body
 * straight into a KdSecret and blanked out of the text before json-glib parses the rest, so no
 * unwiped copy of it is left in freed memory; the reply's JSON has "" in its place. Finish with
 * kd_graph_client_call_finish_reply() and take it with kd_graph_reply_take_secret().
 */
void kd_graph_client_call_secret_async(KdGraphClient *client, const char *method, const char *path,
                                       JsonNode *body, KdGraphCallFlags flags,
                                       const char *secret_member, GCancellable *cancellable,
                                       GAsyncReadyCallback callback, gpointer user_data);

/*
 * A collection, page by page: @page is called with each page's "value" array (owned by the
 * client; copy what you keep) and returns FALSE to stop early. Follows @odata.nextLink
 * exactly as given. Memory stays bounded by one page.
 */
typedef gboolean (*KdGraphPageFunc)(JsonArray *page, gpointer user_data);
void kd_graph_client_list_async(KdGraphClient *client, const char *path, KdGraphCallFlags flags,
                                KdGraphPageFunc page, gpointer page_data, GCancellable *cancellable,
                                GAsyncReadyCallback callback, gpointer user_data);
/* TRUE when every page was read (or @page stopped early), FALSE with @error otherwise. */
gboolean kd_graph_client_list_finish(KdGraphClient *client, GAsyncResult *result, GError **error);

/* The signed-in operator's delegated session (device code, see kd-graph-auth.h). The client
 * keeps its own reference and wipes it on kd_graph_client_sign_out(). */
void kd_graph_client_set_session(KdGraphClient *client, KdGraphSession *session);
void kd_graph_client_sign_out(KdGraphClient *client);
/* The session set with kd_graph_client_set_session() (not a new reference), or NULL. */
KdGraphSession *kd_graph_client_get_session(KdGraphClient *client);

/* The client's token source, to start a device-code sign-in with (kd-graph-auth.h). */
KdGraphAuth *kd_graph_client_get_auth(KdGraphClient *client);
/* The Graph base URL in use, without a trailing "/" (nextLinks must start with it). */
const char *kd_graph_client_get_graph_url(KdGraphClient *client);

/* "ada@contoso.com" → "ada%40contoso.com"; "#" → "%23"; a leading "$" is handled by the
 * caller using the users('…') form (see kd-graph-ops.h). */
char *kd_graph_escape_segment(const char *segment);

G_END_DECLS
