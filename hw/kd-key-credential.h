/* kd-key-credential: the Entra credential on a key: Graph's creation options as a plain request,
 * mapped onto libfido2 (graph-api.md §2.3), and the WebAuthn attestationObject Graph needs,
 * assembled with libcbor from what libfido2 returns. */
#pragma once

#include <fido.h>
#include <glib.h>

#include "hw/kd-aaguid-catalogue.h"

G_BEGIN_DECLS

/* What the key must make, independent of Graph's types (core/kd-key-request.h fills it in). */
typedef struct {
    char *rp_id;     /* "login.microsoft.com" (always the one Graph returned) */
    char *rp_name;   /* "Microsoft" */
    GBytes *user_id; /* the CTAP user handle: decoded bytes of user.id */
    char *user_name;
    char *user_display_name;
    GBytes *client_data_json; /* the exact bytes that are hashed and later sent to Graph */
    GPtrArray *exclude_ids;   /* GBytes: excludeCredentials ids; may be NULL */
    gboolean resident_key;    /* requireResidentKey */
    gboolean uv_required;     /* userVerification "required": a PIN (or built-in UV) is needed */
    gboolean hmac_secret;     /* hmacCreateSecret (asked only when the key lists hmac-secret) */
    int cred_protect;         /* 0 none, 1 UV optional, 2 UV optional with id list, 3 UV required */
    gboolean enforce_cred_protect; /* fail when the key lacks credProtect and cred_protect >= 2 */
    guint timeout_ms; /* how long to wait for the touch; 0 = keydesk's default (30 s) */
} KdKeyCredentialRequest;

KdKeyCredentialRequest *kd_key_credential_request_new(void);
KdKeyCredentialRequest *kd_key_credential_request_copy(const KdKeyCredentialRequest *request);
void kd_key_credential_request_free(KdKeyCredentialRequest *request);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(KdKeyCredentialRequest, kd_key_credential_request_free)

/* What the key made: everything POST …/fido2Methods needs (graph-api.md §2.5). */
typedef struct {
    GBytes *credential_id;      /* fido_cred_id_ptr/len */
    GBytes *attestation_object; /* CBOR {"fmt", "attStmt", "authData"} */
    GBytes *client_data_json;   /* the request's bytes, unchanged */
    guint8 aaguid[16];          /* from the attested credential data */
    char *aaguid_string;        /* "cb69481e-…" */
    char *fmt;                  /* "packed", "fido-u2f", "none" */
    gboolean self_attested;     /* no x5c: packed self attestation (or none) */
    int cred_protect;           /* what the key confirmed in authData (0 if absent) */
    gboolean hmac_secret;       /* what the key confirmed in authData */
    gboolean resident_key;
} KdKeyCredentialResult;

void kd_key_credential_result_free(KdKeyCredentialResult *result);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(KdKeyCredentialResult, kd_key_credential_result_free)

/*
 * Applies @request to @cred for the opened @dev (graph-api.md §2.3): type ES256, rp, user,
 * clientDataJSON (libfido2 hashes it), rk, excluded ids, hmac-secret when the key lists it,
 * credProtect when fido_dev_supports_cred_prot(@dev), else KD_KEY_ERROR_UNSUPPORTED when
 * @request enforces a level of 2 or more (level 1 is what every key does anyway, so Entra's
 * usual "1, enforced" passes on CTAP 2.0 keys). @extensions is the key's getInfo extensions
 * (may be NULL). Does not set uv: a PIN goes to fido_dev_make_cred().
 */
gboolean kd_key_credential_prepare(fido_cred_t *cred, fido_dev_t *dev,
                                   const KdKeyCredentialRequest *request,
                                   const char *const *extensions, GError **error);

/*
 * The WebAuthn attestationObject: a CBOR map {"fmt": tstr, "attStmt": <@attstmt, already CBOR>,
 * "authData": bstr(@authdata_raw)} in this key order (CTAP canonical). NULL when @attstmt is
 * not one well-formed CBOR map.
 */
GBytes *kd_key_credential_attestation_object(const char *fmt, const guint8 *attstmt,
                                             gsize attstmt_len, const guint8 *authdata_raw,
                                             gsize authdata_len);

/* The result from a @cred libfido2 has filled in: checks its signature (fido_cred_verify with
 * x5c, fido_cred_verify_self without) and builds the attestationObject. Errors are
 * KD_KEY_ERROR_PROTOCOL. */
KdKeyCredentialResult *kd_key_credential_result_new(const fido_cred_t *cred,
                                                    GBytes *client_data_json, GError **error);

G_END_DECLS
