/* kd-graph-auth-private: the parsing, signing and validation inside kd-graph-auth, for tests. */
#pragma once

#include <json-glib/json-glib.h>

#include "graph/kd-graph-auth.h"

G_BEGIN_DECLS

/* An answer of the token or devicecode endpoint. Secrets go straight from the body into
 * KdSecrets (no other copy is made); unknown members are skipped; a member of the wrong type
 * reads as absent. */
typedef struct {
    KdSecret *access_token;
    KdSecret *refresh_token;
    KdSecret *id_token;
    KdSecret *device_code;
    char *token_type;
    char *scope;
    char *error;             /* "invalid_client", "authorization_pending", … */
    char *error_description; /* never logged */
    char *trace_id;
    char *correlation_id;
    char *user_code;
    char *verification_uri;
    char *message;
    gint64 expires_in; /* -1 when absent */
    gint64 interval;   /* -1 when absent */
    guint aadsts;      /* error_codes[0], 0 when absent */
} KdOAuthReply;

/* FALSE when @data is not one JSON object (or repeats a member this parser knows). */
gboolean kd_oauth_reply_parse(const char *data, gsize len, KdOAuthReply *reply);
/* Wipes and frees everything the reply holds. */
void kd_oauth_reply_clear(KdOAuthReply *reply);

/* The resource whose "/.default" scope app tokens ask for: the national cloud's Graph for its
 * known hosts, else (emulator, proxies) "https://graph.microsoft.com". */
char *kd_graph_auth_resource_for(const char *graph_url);

/* A client assertion signed with the certificate's key, as kd_graph_auth_app_token_async
 * sends it, issued at @now (Unix time). */
KdSecret *kd_graph_auth_build_assertion(KdGraphAuth *auth, gint64 now, GError **error);

typedef struct {
    char *oid;
    char *tid;
    char *upn; /* preferred_username */
    char *name;
    gint64 exp;
} KdIdTokenClaims;

void kd_id_token_claims_clear(KdIdTokenClaims *claims);

/*
 * Validates an id_token: RS256 signature by the key of @jwks ({"keys": [JWK…]}) its header
 * names, iss == @issuer (the discovery document's; "{tenantid}" stands for the token's tid),
 * tid == @tenant when that is a GUID, aud == @client_id, exp/nbf/iat against @now (Unix time)
 * with 5 minutes of skew, and an oid. Errors: KD_GRAPH_ERROR_AUTH; *@unknown_kid is set when
 * the only problem is that no key of @jwks has the token's kid (refetch the JWKS once).
 */
gboolean kd_graph_id_token_validate(const char *id_token, gsize len, JsonNode *jwks,
                                    const char *issuer, const char *client_id, const char *tenant,
                                    gint64 now, KdIdTokenClaims *claims, gboolean *unknown_kid,
                                    GError **error);

G_END_DECLS
