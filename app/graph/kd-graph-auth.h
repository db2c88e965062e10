/* kd-graph-auth: tokens from the Microsoft identity platform: app-only (certificate assertion or
 * client secret) and delegated (device code), id_token validation, and the token cache. */
#pragma once

#include <gio/gio.h>

#include "base/kd-secret.h"
#include "graph/kd-graph-error.h"

G_BEGIN_DECLS

typedef enum {
    KD_GRAPH_ASSERTION_PS256 = 0, /* PS256 + x5t#S256 (the current Entra documentation) */
    KD_GRAPH_ASSERTION_RS256 = 1, /* RS256 + x5t (SHA-1), as older MSAL does */
} KdGraphAssertionAlg;

typedef struct _KdHttp KdHttp;
typedef struct _KdGraphAuth KdGraphAuth;
typedef struct _KdGraphSession KdGraphSession;

typedef struct {
    const char *login_url; /* "https://login.microsoftonline.com" */
    const char *tenant;
    const char *client_id;
    const char *graph_url;        /* the scope is "<graph_url>/.default" */
    const char *certificate_file; /* PEM certificate (public) */
    const char *private_key_file; /* PEM key: read into locked memory, wiped on free */
    KdSecret *client_secret;      /* referenced */
    int assertion_alg;            /* KdGraphAssertionAlg */
} KdGraphAuthOptions;

/* Loads the certificate and key (if any). Errors: KD_GRAPH_ERROR_CONFIG. */
KdGraphAuth *kd_graph_auth_new(const KdGraphAuthOptions *options, KdHttp *http, GError **error);
void kd_graph_auth_free(KdGraphAuth **auth);
/* Whether a failed app-token or refresh request is tried once more at once after a network
 * error (default TRUE). KdGraphClient turns it off: its own pipeline retries token fetches with
 * backoff and counts them against the call's attempts, so the two never multiply. */
void kd_graph_auth_set_network_retry(KdGraphAuth *auth, gboolean retry);

/* An app-only access token for Graph, from the cache while it has more than 5 minutes left,
 * else freshly requested. @force drops the cached one first (after a 401). The result is a
 * new reference to a KdSecret holding the token; unref it when done. */
void kd_graph_auth_app_token_async(KdGraphAuth *auth, gboolean force, GCancellable *cancellable,
                                   GAsyncReadyCallback callback, gpointer user_data);
KdSecret *kd_graph_auth_app_token_finish(KdGraphAuth *auth, GAsyncResult *result, GError **error);

/* --- delegated sign-in (device authorization grant) ---------------------------------------- */

typedef struct {
    char *user_code;        /* what the person types at verification_uri */
    char *verification_uri; /* "https://microsoft.com/devicelogin" */
    char *message;          /* the identity platform's own sentence */
    guint expires_in_s;
    guint interval_s;
} KdDeviceCodePrompt;

/* Called once the code is known, so the UI can show it (and a QR of the URI). */
typedef void (*KdDeviceCodePromptFunc)(const KdDeviceCodePrompt *prompt, gpointer user_data);

/* Starts a device-code sign-in for @scopes (space-separated; "openid profile" is added),
 * polls at the given interval (slower on slow_down) until the person signs in, declines
 * (KD_GRAPH_ERROR_DECLINED), the code expires (KD_GRAPH_ERROR_EXPIRED) or @cancellable fires.
 * On success returns a session whose id_token was validated (signature against the tenant's
 * JWKS, iss, aud, exp). */
void kd_graph_auth_device_sign_in_async(KdGraphAuth *auth, const char *scopes,
                                        KdDeviceCodePromptFunc prompt, gpointer prompt_data,
                                        GCancellable *cancellable, GAsyncReadyCallback callback,
                                        gpointer user_data);
KdGraphSession *kd_graph_auth_device_sign_in_finish(KdGraphAuth *auth, GAsyncResult *result,
                                                    GError **error);

/* Who signed in, from the validated id_token. */
const char *kd_graph_session_get_object_id(KdGraphSession *session);
const char *kd_graph_session_get_upn(KdGraphSession *session);
const char *kd_graph_session_get_name(KdGraphSession *session);

/* The session's access token for Graph, refreshed with its refresh token when < 5 min are
 * left (or @force). */
void kd_graph_session_token_async(KdGraphSession *session, KdGraphAuth *auth, gboolean force,
                                  GCancellable *cancellable, GAsyncReadyCallback callback,
                                  gpointer user_data);
KdSecret *kd_graph_session_token_finish(KdGraphSession *session, GAsyncResult *result,
                                        GError **error);

KdGraphSession *kd_graph_session_ref(KdGraphSession *session);
/* The last reference wipes every token the session holds. */
void kd_graph_session_unref(KdGraphSession *session);

G_END_DECLS
