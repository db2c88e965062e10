/* kd-graph-ops: the typed Graph operations keydesk performs, on top of KdGraphClient. */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "base/kd-secret.h"
#include "graph/kd-graph-client.h"
#include "graph/kd-graph-error.h"

G_BEGIN_DECLS

/*
 * Every operation is asynchronous (GAsyncReadyCallback + GCancellable; the callback runs on the
 * client's main context) and fails with a KD_GRAPH_ERROR. @flags is what the caller adds
 * (KD_GRAPH_CALL_DELEGATED for the operator's token, KD_GRAPH_CALL_INTERACTIVE when a person
 * waits on an operation that is background by default, KD_GRAPH_CALL_BETA where it makes
 * sense); each operation adds its own INTERACTIVE and IDEMPOTENT bits from the table below and
 * ignores an IDEMPOTENT bit from the caller, because only the operation knows whether sending
 * it twice is harmless.
 *
 * A user is named by object id or UPN everywhere (kd_graph_user_path()).
 *
 *  Operation                  Request                                         Interactive Retry
 *  -------------------------  ----------------------------------------------  ----------- -----
 *  get_user                   GET /users/{u}?$select=…                        yes         yes
 *  search_users               GET /users?$filter=startswith(…)&$top=…         yes         yes
 *  list_methods               GET /users/{u}/authentication/{kind}Methods     yes         yes
 *  get_fido2_options          GET …/fido2Methods/creationOptions[(…)]         yes         yes 1
 *  register_fido2             POST …/fido2Methods                             yes         NO 2
 *  delete_method              DELETE …/{kind}Methods/{id}                     yes         yes 3
 *  create_tap                 POST …/temporaryAccessPassMethods               yes         NO 4
 *  revoke_sessions            POST /users/{u}/revokeSignInSessions            yes         yes 5
 *  get_method_policy          GET /policies/…/authenticationMethodConfig…/{x} no          yes
 *  get_security_defaults      GET /policies/identitySecurityDefaults…         no          yes
 *  set_security_defaults      PATCH the same {"isEnabled"}                    no          yes 5
 *  list_registration_details  GET /reports/…/userRegistrationDetails          no          yes
 *  get_registered_by_method   GET /reports/…/usersRegisteredByMethod(…)       no          yes
 *  list_legacy_sign_ins       GET /auditLogs/signIns?$filter=…                no          yes
 *  add_group_member           POST /groups/{g}/members/$ref                   no          yes 6
 *  set_user_extension         PATCH /users/{u} {"extension_…": …}             no          yes 5
 *  batch                      POST /$batch (1–20 items)                       caller      7
 *  batch_run                  POST /$batch …, re-sending throttled items      caller      7
 *
 *  "Retry" says whether sending the request again after a network error or a lost answer is
 *  safe, i.e. whether the operation flags it KD_GRAPH_CALL_IDEMPOTENT (GETs and DELETEs are
 *  anyway). "Interactive" operations send x-ms-throttle-priority: High.
 *
 *  (1) every call issues a new challenge; an unused one just expires.
 *  (2) a second POST would register nothing new (the challenge is single use) but fail
 *      confusingly. After a lost answer (KD_GRAPH_ERROR_UNKNOWN_OUTCOME) the operation lists
 *      the user's fido2Methods and decides itself; see kd_graph_register_fido2_async().
 *  (3) a DELETE repeated after a lost answer meets 404: reported as KD_GRAPH_DELETE_GONE.
 *  (4) never sent twice: after a lost answer the TAPs are listed and reported, see
 *      kd_graph_create_tap_async().
 *  (5) a POST/PATCH that sets an absolute state, flagged KD_GRAPH_CALL_IDEMPOTENT.
 *  (6) idempotent in effect: "already a member" (400) is success, so it is flagged IDEMPOTENT.
 *  (7) the outer POST is flagged IDEMPOTENT only when every item is a GET.
 */

/* --- users ----------------------------------------------------------------------------------- */

typedef struct {
    char *id;
    char *display_name;
    char *user_principal_name;
    char *mail;      /* NULL if none */
    char *user_type; /* "Member" or "Guest" */
    gboolean account_enabled;
} KdGraphUser;

void kd_graph_user_free(KdGraphUser *user);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(KdGraphUser, kd_graph_user_free)

/* The path of a user, escaped: "/users/ada%40contoso.com"; a UPN that starts with "$" takes
 * the key form "/users('$ops%40contoso.com')" (quotes doubled) because Graph refuses
 * "/users/$ops@…"; "#" (B2B guests' "#EXT#") is always percent-encoded. */
char *kd_graph_user_path(const char *id_or_upn);

/* GET /users/{u}?$select=id,displayName,userPrincipalName,accountEnabled,userType,mail.
 * No such user: KD_GRAPH_ERROR_NOT_FOUND. */
void kd_graph_get_user_async(KdGraphClient *client, const char *id_or_upn, KdGraphCallFlags flags,
                             GCancellable *cancellable, GAsyncReadyCallback callback,
                             gpointer user_data);
KdGraphUser *kd_graph_get_user_finish(KdGraphClient *client, GAsyncResult *result, GError **error);

/* Users whose displayName, userPrincipalName or mail starts with @prefix (Graph compares
 * case-insensitively), at most @top (1–25; 0 = 25). The result is a GPtrArray of KdGraphUser,
 * possibly empty. */
void kd_graph_search_users_async(KdGraphClient *client, const char *prefix, guint top,
                                 KdGraphCallFlags flags, GCancellable *cancellable,
                                 GAsyncReadyCallback callback, gpointer user_data);
GPtrArray *kd_graph_search_users_finish(KdGraphClient *client, GAsyncResult *result,
                                        GError **error);

/* --- authentication methods ------------------------------------------------------------------ */

typedef enum {
    KD_GRAPH_METHOD_ANY = 0, /* the generic /authentication/methods collection */
    KD_GRAPH_METHOD_PASSWORD,
    KD_GRAPH_METHOD_EMAIL,
    KD_GRAPH_METHOD_PHONE,
    KD_GRAPH_METHOD_FIDO2,
    KD_GRAPH_METHOD_MICROSOFT_AUTHENTICATOR,
    KD_GRAPH_METHOD_SOFTWARE_OATH,
    KD_GRAPH_METHOD_TEMPORARY_ACCESS_PASS,
    KD_GRAPH_METHOD_WINDOWS_HELLO,
    KD_GRAPH_METHOD_PLATFORM_CREDENTIAL,
    KD_GRAPH_METHOD_HARDWARE_OATH, /* beta only */
    KD_GRAPH_METHOD_OTHER,         /* a type keydesk does not know (a newer Graph) */
} KdGraphMethodKind;

/* "fido2Methods", or "methods" for KD_GRAPH_METHOD_ANY; NULL for OTHER. */
const char *kd_graph_method_kind_collection(KdGraphMethodKind kind);
/* "#microsoft.graph.fido2AuthenticationMethod"; NULL for ANY and OTHER. */
const char *kd_graph_method_kind_odata_type(KdGraphMethodKind kind);
/* The kind of an @odata.type value (with or without "#"), KD_GRAPH_METHOD_OTHER if unknown. */
KdGraphMethodKind kd_graph_method_kind_from_odata_type(const char *odata_type);

typedef struct {
    KdGraphMethodKind kind;
    char *id;
    char *odata_type;    /* as sent, or the kind's type for typed collections (which omit it) */
    char *display_name;  /* FIDO2, Authenticator (the phone), Windows Hello, platform; or NULL */
    char *created;       /* createdDateTime as sent, or NULL */
    gint64 created_unix; /* 0 when absent or unparsable */
    /* Extra fields by kind, NULL/0 where they do not apply. */
    char *aaguid;            /* FIDO2 */
    char *model;             /* FIDO2 */
    char *attestation_level; /* FIDO2 */
    char *device_tag;        /* Authenticator */
    char *phone_app_version; /* Authenticator */
    char *phone_number;      /* phone */
    char *phone_type;        /* phone: "mobile", "alternateMobile", "office" */
    char *email_address;     /* email */
    char *start;             /* TAP startDateTime */
    guint lifetime_minutes;  /* TAP */
    gboolean is_usable_once; /* TAP */
    gboolean is_usable;      /* TAP */
    char *usability_reason;  /* TAP methodUsabilityReason */
    JsonObject *json;        /* the whole object as Graph sent it (NULL for a TAP that carried
                              * its pass, which is never kept) */
} KdGraphMethod;

void kd_graph_method_free(KdGraphMethod *method);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(KdGraphMethod, kd_graph_method_free)

/* GET /users/{u}/authentication/methods (KD_GRAPH_METHOD_ANY; no query options, as Graph
 * requires) or a typed collection (fido2Methods, microsoftAuthenticatorMethods, …), every page.
 * The result is a GPtrArray of KdGraphMethod (free function set), possibly empty. */
void kd_graph_list_methods_async(KdGraphClient *client, const char *user, KdGraphMethodKind kind,
                                 KdGraphCallFlags flags, GCancellable *cancellable,
                                 GAsyncReadyCallback callback, gpointer user_data);
GPtrArray *kd_graph_list_methods_finish(KdGraphClient *client, GAsyncResult *result,
                                        GError **error);

typedef enum {
    KD_GRAPH_DELETE_FAILED = 0, /* @error is set */
    KD_GRAPH_DELETE_DONE,       /* 204 */
    /* 400 "Cannot delete default method with other methods configured…": change the user's
     * default method first (beta signInPreferences) or delete the other methods first. */
    KD_GRAPH_DELETE_IS_DEFAULT,
    /* 404 for the method: it is not there (already deleted, e.g. by a retry after a lost
     * answer). A user that does not exist is still an error (NOT_FOUND). */
    KD_GRAPH_DELETE_GONE,
} KdGraphDeleteResult;

/* DELETE /users/{u}/authentication/{kind collection}/{id} (KD_GRAPH_METHOD_ANY: the generic
 * collection, which Graph allows for delegated tokens only). */
void kd_graph_delete_method_async(KdGraphClient *client, const char *user, KdGraphMethodKind kind,
                                  const char *method_id, KdGraphCallFlags flags,
                                  GCancellable *cancellable, GAsyncReadyCallback callback,
                                  gpointer user_data);
KdGraphDeleteResult kd_graph_delete_method_finish(KdGraphClient *client, GAsyncResult *result,
                                                  GError **error);

/* --- FIDO2 provisioning (reference §2) ------------------------------------------------------- */

typedef struct {
    char *rp_id;     /* "login.microsoft.com": always use the returned one */
    char *rp_name;   /* "Microsoft" */
    GBytes *user_id; /* the CTAP user handle (decoded from base64url) */
    char *user_name;
    char *user_display_name;
    GBytes *challenge;      /* decoded bytes */
    char *challenge_text;   /* the challenge exactly as Graph sent it */
    char *timeout_datetime; /* challengeTimeoutDateTime as sent: the POST must come before */
    gint64 timeout_unix;    /* the same as Unix time, 0 if absent */
    guint timeout_ms;       /* publicKey.timeout: the WebAuthn client hint */
    GPtrArray *exclude_ids; /* GBytes: excludeCredentials ids that decoded */
    guint exclude_skipped;  /* ids that did not decode (skipped, logged with g_debug) */
    GArray *algorithms;     /* gint COSE algorithms of pubKeyCredParams, in order */
    char *attestation;      /* "direct" */
    char *authenticator_attachment; /* "cross-platform" or NULL */
    gboolean require_resident_key;
    char *user_verification; /* "required" */
    gboolean hmac_create_secret;
    gboolean enforce_cred_protect;
    int cred_protect; /* 1 userVerificationOptional, 2 …WithCredentialIDList, 3 …Required, 0 none */
} KdGraphFido2Options;

void kd_graph_fido2_options_free(KdGraphFido2Options *options);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(KdGraphFido2Options, kd_graph_fido2_options_free)

/* The clientDataJSON bytes to hash for CTAP and to send (reference §2.4):
 * {"type":"webauthn.create","challenge":<base64url of the challenge bytes>,
 *  "origin":"https://<rp_id>","crossOrigin":false}. */
GBytes *kd_graph_fido2_client_data(const KdGraphFido2Options *options);

/* GET …/fido2Methods/creationOptions (v1.0, fixed 5-minute challenge) when @timeout_minutes is
 * 0, else beta …/creationOptions(challengeTimeoutInMinutes=N) with N in 5–43200 (anything else
 * is refused locally with KD_GRAPH_ERROR_BAD_REQUEST, http_status 0). A user.id or challenge
 * that does not decode is KD_GRAPH_ERROR_BAD_RESPONSE; an excludeCredentials id that does not
 * decode is skipped, never a failure. */
void kd_graph_get_fido2_options_async(KdGraphClient *client, const char *user,
                                      guint timeout_minutes, KdGraphCallFlags flags,
                                      GCancellable *cancellable, GAsyncReadyCallback callback,
                                      gpointer user_data);
KdGraphFido2Options *kd_graph_get_fido2_options_finish(KdGraphClient *client, GAsyncResult *result,
                                                       GError **error);

/* A displayName Graph accepts: at most 30 characters (counted as UTF-16 code units, so also
 * ≤ 30 code points), cut on a character boundary, invalid UTF-8 repaired, and "Security key"
 * when @name is NULL or blank. */
char *kd_graph_fido2_display_name(const char *name);

typedef struct {
    const char *display_name; /* passed through kd_graph_fido2_display_name() */
    GBytes *credential_id;    /* fido_cred_id_ptr/len */
    GBytes *client_data_json; /* the bytes whose hash the key signed */
    GBytes *attestation_object;
    /* Optional, for the lost-answer check: the key's AAGUID ("cb69481e-…"), and the ids of the
     * user's fido2Methods before this registration (NULL-terminated). */
    const char *aaguid;
    const char *const *known_method_ids;
} KdGraphFido2Registration;

/*
 * POST /users/{u}/authentication/fido2Methods with {displayName, publicKeyCredential {id,
 * response {clientDataJSON, attestationObject}, clientExtensionResults {}}}, binary fields
 * base64url without padding, no @odata.type. Everything is encoded before this returns, so
 * @registration need not outlive the call. The result is the new method (kind FIDO2).
 *
 * NOT idempotent. When the answer is lost (KD_GRAPH_ERROR_UNKNOWN_OUTCOME from the client) the
 * user's fido2Methods are listed and a method counts as ours when its displayName is the one
 * sent, its createdDateTime is no earlier than the moment the POST started (less 120 s for
 * clock skew and Graph's whole-second times), it is not among @known_method_ids and, when
 * given, its aaGuid is @aaguid; the newest such method is returned and *@recovered (may be
 * NULL) is TRUE. LIMITATION: Graph does not return the credential id, so two registrations
 * with the same displayName for the same user inside that window cannot be told apart: give
 * keys distinguishable names (e.g. with the key's serial) and pass known_method_ids. When
 * nothing matches, or the list cannot be read, the error stays UNKNOWN_OUTCOME: the flow must
 * not register again with the same challenge; it can list later or start over.
 */
void kd_graph_register_fido2_async(KdGraphClient *client, const char *user,
                                   const KdGraphFido2Registration *registration,
                                   KdGraphCallFlags flags, GCancellable *cancellable,
                                   GAsyncReadyCallback callback, gpointer user_data);
KdGraphMethod *kd_graph_register_fido2_finish(KdGraphClient *client, GAsyncResult *result,
                                              gboolean *recovered, GError **error);

/* --- Temporary Access Pass (reference §3) ---------------------------------------------------- */

typedef struct {
    char *id;
    KdSecret *pass; /* shown once: never logged; kd_graph_tap_free() wipes it */
    char *created;
    char *start;
    gint64 start_unix;
    gint64 expires_unix; /* start + lifetime */
    guint lifetime_minutes;
    gboolean is_usable_once;
    gboolean is_usable;
    char *usability_reason;
} KdGraphTap;

void kd_graph_tap_free(KdGraphTap *tap);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(KdGraphTap, kd_graph_tap_free)

/*
 * POST /users/{u}/authentication/temporaryAccessPassMethods with {lifetimeInMinutes (omitted
 * when 0: the policy's default), isUsableOnce}. A lifetime outside 10–43200 or the policy's
 * range, or a multi-use pass the policy forbids, is KD_GRAPH_ERROR_BAD_REQUEST (Graph's
 * message in the error info).
 *
 * NOT idempotent and never sent twice. When the answer is lost the error stays
 * KD_GRAPH_ERROR_UNKNOWN_OUTCOME and the operation lists the user's TAPs: *@existing (may be
 * NULL) is then a GPtrArray of KdGraphMethod, the TAPs the user has now (one may be the lost
 * one; its pass cannot be read again), or NULL when they could not be listed. The flow deletes
 * them (kd_graph_delete_method_async) and creates a pass again, explicitly.
 */
void kd_graph_create_tap_async(KdGraphClient *client, const char *user, guint lifetime_minutes,
                               gboolean is_usable_once, KdGraphCallFlags flags,
                               GCancellable *cancellable, GAsyncReadyCallback callback,
                               gpointer user_data);
KdGraphTap *kd_graph_create_tap_finish(KdGraphClient *client, GAsyncResult *result,
                                       GPtrArray **existing, GError **error);
/* Listing and deleting TAPs: kd_graph_list_methods_async / kd_graph_delete_method_async with
 * KD_GRAPH_METHOD_TEMPORARY_ACCESS_PASS. */

/* --- sessions -------------------------------------------------------------------------------- */

/* POST /users/{u}/revokeSignInSessions (200 {"value": true}, or 204 per a known issue). */
void kd_graph_revoke_sessions_async(KdGraphClient *client, const char *user, KdGraphCallFlags flags,
                                    GCancellable *cancellable, GAsyncReadyCallback callback,
                                    gpointer user_data);
gboolean kd_graph_revoke_sessions_finish(KdGraphClient *client, GAsyncResult *result,
                                         GError **error);

/* --- policies (reference §2.8, §3, §7.1) ----------------------------------------------------- */

typedef enum {
    KD_GRAPH_POLICY_FIDO2,
    KD_GRAPH_POLICY_TEMPORARY_ACCESS_PASS,
    KD_GRAPH_POLICY_MICROSOFT_AUTHENTICATOR,
} KdGraphPolicyKind;

typedef struct {
    char *target_type; /* "group" or "user" */
    char *id;          /* "all_users" or a GUID */
    gboolean is_registration_required;
} KdGraphPolicyTarget;

typedef struct {
    KdGraphPolicyKind kind;
    char *id;                   /* "Fido2", "TemporaryAccessPass", "MicrosoftAuthenticator" */
    gboolean enabled;           /* state == "enabled" */
    GPtrArray *include_targets; /* KdGraphPolicyTarget */
    GPtrArray *exclude_targets;
    /* FIDO2 */
    gboolean is_self_service_registration_allowed;
    gboolean is_attestation_enforced;
    gboolean key_restrictions_enforced;
    char *key_restrictions_type;     /* "allow", "block" or NULL */
    char **key_restrictions_aaguids; /* lower-case, NULL-terminated, never NULL */
    /* Temporary Access Pass */
    guint default_lifetime_minutes;
    guint minimum_lifetime_minutes;
    guint maximum_lifetime_minutes;
    guint default_length;
    gboolean is_usable_once;
    /* Microsoft Authenticator */
    gboolean is_software_oath_enabled;
    JsonObject *json; /* the whole configuration as Graph sent it */
} KdGraphMethodPolicy;

void kd_graph_method_policy_free(KdGraphMethodPolicy *policy);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(KdGraphMethodPolicy, kd_graph_method_policy_free)

/* Whether a FIDO2 policy's key restrictions let a key of @aaguid register (TRUE when they are
 * not enforced). Attestation enforcement is not judged here. */
gboolean kd_graph_method_policy_allows_aaguid(const KdGraphMethodPolicy *policy,
                                              const char *aaguid);

/* GET /policies/authenticationMethodsPolicy/authenticationMethodConfigurations/{id}. */
void kd_graph_get_method_policy_async(KdGraphClient *client, KdGraphPolicyKind kind,
                                      KdGraphCallFlags flags, GCancellable *cancellable,
                                      GAsyncReadyCallback callback, gpointer user_data);
KdGraphMethodPolicy *kd_graph_get_method_policy_finish(KdGraphClient *client, GAsyncResult *result,
                                                       GError **error);

/* GET /policies/identitySecurityDefaultsEnforcementPolicy → *@enabled. */
void kd_graph_get_security_defaults_async(KdGraphClient *client, KdGraphCallFlags flags,
                                          GCancellable *cancellable, GAsyncReadyCallback callback,
                                          gpointer user_data);
gboolean kd_graph_get_security_defaults_finish(KdGraphClient *client, GAsyncResult *result,
                                               gboolean *enabled, GError **error);

/* PATCH /policies/identitySecurityDefaultsEnforcementPolicy {"isEnabled": @enabled} → 204. */
void kd_graph_set_security_defaults_async(KdGraphClient *client, gboolean enabled,
                                          KdGraphCallFlags flags, GCancellable *cancellable,
                                          GAsyncReadyCallback callback, gpointer user_data);
gboolean kd_graph_set_security_defaults_finish(KdGraphClient *client, GAsyncResult *result,
                                               GError **error);

/* --- reports (reference §6.1; P1/P2 tenants, else KD_GRAPH_ERROR_FORBIDDEN) ------------------ */

typedef struct {
    char *id;
    char *user_principal_name;
    char *user_display_name;
    char *user_type; /* "member" or "guest" */
    gboolean is_admin;
    gboolean is_mfa_registered;
    gboolean is_mfa_capable;
    gboolean is_passwordless_capable;
    gboolean is_sspr_registered;
    gboolean is_sspr_enabled;
    gboolean is_sspr_capable;
    gboolean is_system_preferred_enabled;
    char **methods_registered;       /* NULL-terminated, never NULL */
    char **system_preferred_methods; /* NULL-terminated, never NULL */
    char *user_preferred_method;     /* "push", "sms", …, "none" */
    char *last_updated;
    JsonObject *json;
} KdGraphRegistrationDetails;

/* Called once per row; the row belongs to the operation (copy what you keep). Return FALSE to
 * stop early (the operation then succeeds). */
typedef gboolean (*KdGraphRegistrationFunc)(const KdGraphRegistrationDetails *row,
                                            gpointer user_data);

/* GET /reports/authenticationMethods/userRegistrationDetails[?$filter=@filter], every page
 * (@filter is OData text, e.g. "isMfaRegistered eq false"; it is percent-encoded here). A row
 * that is not an object with an id is skipped. */
void kd_graph_list_registration_details_async(KdGraphClient *client, const char *filter,
                                              KdGraphRegistrationFunc row, gpointer row_data,
                                              KdGraphCallFlags flags, GCancellable *cancellable,
                                              GAsyncReadyCallback callback, gpointer user_data);
gboolean kd_graph_list_registration_details_finish(KdGraphClient *client, GAsyncResult *result,
                                                   GError **error);

typedef struct {
    char *method; /* "microsoftAuthenticatorPush", "passKeyDeviceBound", … */
    gint64 user_count;
} KdGraphMethodCount;

typedef struct {
    char *user_types;
    char *user_roles;
    gint64 total_user_count;
    GPtrArray *counts; /* KdGraphMethodCount */
} KdGraphMethodSummary;

void kd_graph_method_summary_free(KdGraphMethodSummary *summary);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(KdGraphMethodSummary, kd_graph_method_summary_free)

/* GET /reports/authenticationMethods/usersRegisteredByMethod(includedUserTypes='…',
 * includedUserRoles='…'); NULL means 'all'. */
void kd_graph_get_registered_by_method_async(KdGraphClient *client, const char *user_types,
                                             const char *user_roles, KdGraphCallFlags flags,
                                             GCancellable *cancellable,
                                             GAsyncReadyCallback callback, gpointer user_data);
KdGraphMethodSummary *kd_graph_get_registered_by_method_finish(KdGraphClient *client,
                                                               GAsyncResult *result,
                                                               GError **error);

/* --- legacy sign-ins (reference §7.2; P1/P2) ------------------------------------------------- */

/* The legacy (not modern auth) clientAppUsed values, NULL-terminated. */
const char *const *kd_graph_legacy_client_apps(void);
/* The canonical legacy value @client_app names, compared case-insensitively, or NULL when it
 * is not legacy (Browser, Mobile apps and desktop clients, unknown). */
const char *kd_graph_legacy_client_app(const char *client_app);

typedef struct {
    char *id;
    char *created;
    gint64 created_unix;
    char *user_id;
    char *user_principal_name;
    char *user_display_name;
    char *app_display_name;
    char *client_app_used;         /* as Graph sent it */
    const char *legacy_client_app; /* the canonical value (static) */
    char *ip_address;
    gint error_code; /* status.errorCode: 0 = success */
    char *failure_reason;
    JsonObject *json;
} KdGraphSignIn;

typedef gboolean (*KdGraphSignInFunc)(const KdGraphSignIn *sign_in, gpointer user_data);

/* GET /auditLogs/signIns?$filter=(clientAppUsed eq 'IMAP4' or … every legacy value)[ and
 * createdDateTime ge @since], every page, newest first. Rows are compared again here,
 * case-insensitively, and only legacy ones reach @row. @since may be NULL. */
void kd_graph_list_legacy_sign_ins_async(KdGraphClient *client, GDateTime *since,
                                         KdGraphSignInFunc row, gpointer row_data,
                                         KdGraphCallFlags flags, GCancellable *cancellable,
                                         GAsyncReadyCallback callback, gpointer user_data);
gboolean kd_graph_list_legacy_sign_ins_finish(KdGraphClient *client, GAsyncResult *result,
                                              GError **error);

/* --- tracking (reference §6.2) --------------------------------------------------------------- */

typedef enum {
    KD_GRAPH_MEMBER_FAILED = 0, /* @error is set */
    KD_GRAPH_MEMBER_ADDED,      /* 204 */
    KD_GRAPH_MEMBER_ALREADY,    /* 400 "One or more added object references already exist…" */
} KdGraphMemberResult;

/* POST /groups/{group_id}/members/$ref {"@odata.id": "<graph_url>/v1.0/directoryObjects/{id}"}.
 * @graph_url is the host part of that reference; NULL means the client's own Graph URL
 * (kd_graph_client_get_graph_url()), which is what it should be. */
void kd_graph_add_group_member_async(KdGraphClient *client, const char *graph_url,
                                     const char *group_id, const char *user_id,
                                     KdGraphCallFlags flags, GCancellable *cancellable,
                                     GAsyncReadyCallback callback, gpointer user_data);
KdGraphMemberResult kd_graph_add_group_member_finish(KdGraphClient *client, GAsyncResult *result,
                                                     GError **error);
/* Whether a Graph error message is the "reference already exists" answer of members/$ref. */
gboolean kd_graph_is_already_member_message(const char *message);

/* PATCH /users/{u} {@name: @value} for a directory extension attribute (@name must start with
 * "extension_", else KD_GRAPH_ERROR_BAD_REQUEST locally); @value NULL clears it. 204. */
void kd_graph_set_user_extension_async(KdGraphClient *client, const char *user, const char *name,
                                       JsonNode *value, KdGraphCallFlags flags,
                                       GCancellable *cancellable, GAsyncReadyCallback callback,
                                       gpointer user_data);
gboolean kd_graph_set_user_extension_finish(KdGraphClient *client, GAsyncResult *result,
                                            GError **error);

/* --- $batch (reference §8.4) ----------------------------------------------------------------- */

#define KD_GRAPH_BATCH_MAX 20

typedef struct {
    char *id;            /* unique within a batch */
    char *method;        /* "GET", "POST", "PATCH", "PUT", "DELETE" */
    char *url;           /* relative to the version: "/users/…" */
    JsonNode *body;      /* or NULL */
    GHashTable *headers; /* name → value; Content-Type: application/json is added for a body */
} KdGraphBatchRequest;

/* @body is copied (may be NULL). */
KdGraphBatchRequest *kd_graph_batch_request_new(const char *id, const char *method, const char *url,
                                                JsonNode *body);
void kd_graph_batch_request_set_header(KdGraphBatchRequest *request, const char *name,
                                       const char *value);
void kd_graph_batch_request_free(KdGraphBatchRequest *request);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(KdGraphBatchRequest, kd_graph_batch_request_free)

typedef struct {
    char *id;
    guint status;
    GHashTable *headers; /* lower-case name → value */
    JsonNode *body;      /* or NULL (204) */
    guint retry_after_s; /* from Retry-After, 0 if none */
    guint attempts;      /* how many times the item was sent (kd_graph_batch_run_async) */
} KdGraphBatchResponse;

void kd_graph_batch_response_free(KdGraphBatchResponse *response);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(KdGraphBatchResponse, kd_graph_batch_response_free)
/* Whether an item's status means "send it again later": 429, 503, 504. */
gboolean kd_graph_batch_response_should_retry(const KdGraphBatchResponse *response);

/*
 * One POST /$batch of 1–20 @requests (a GPtrArray of KdGraphBatchRequest, which the operation
 * references until it completes: do not change it meanwhile). More than 20, none, or a
 * duplicate id is refused locally (KD_GRAPH_ERROR_BAD_REQUEST, http_status 0) without sending.
 * The result is a GPtrArray of KdGraphBatchResponse in the order of @requests, whatever order
 * Graph answered in; an item Graph did not answer is KD_GRAPH_ERROR_BAD_RESPONSE. An HTTP 200
 * says nothing about the items: look at each status.
 */
void kd_graph_batch_async(KdGraphClient *client, GPtrArray *requests, KdGraphCallFlags flags,
                          GCancellable *cancellable, GAsyncReadyCallback callback,
                          gpointer user_data);
GPtrArray *kd_graph_batch_finish(KdGraphClient *client, GAsyncResult *result, GError **error);

/*
 * Any number of @requests, sent in $batch calls of at most 20. Items answered 429, 503 or 504
 * are queued again and sent, only they, after the largest Retry-After among them (capped at
 * 300 s; without one: 1, 2, 4 … s), up to @max_attempts sends per item (0 = 5); 2xx and other
 * 4xx/5xx answers are final. The result is like kd_graph_batch_finish()'s, every item's last
 * answer (an item still throttled after its attempts keeps its 429). A failure of a $batch call
 * itself ends the run with that error.
 */
void kd_graph_batch_run_async(KdGraphClient *client, GPtrArray *requests, guint max_attempts,
                              KdGraphCallFlags flags, GCancellable *cancellable,
                              GAsyncReadyCallback callback, gpointer user_data);
GPtrArray *kd_graph_batch_run_finish(KdGraphClient *client, GAsyncResult *result, GError **error);

G_END_DECLS
