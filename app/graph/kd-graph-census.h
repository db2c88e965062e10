/* kd-graph-census: who in the tenant is registered for which authentication method, for the
 * dashboard's progress toward Security Defaults, in one asynchronous, memory-bounded pass. */
#pragma once

#include <gio/gio.h>

#include "graph/kd-graph-client.h"
#include "graph/kd-graph-error.h"

G_BEGIN_DECLS

/*
 * Two ways to the same answer (reference §6.1, §5.1, §8.2-§8.4):
 *
 *  REPORT  GET /reports/authenticationMethods/userRegistrationDetails?$top=999, every page,
 *          and GET /users?$filter=accountEnabled eq false for the disabled accounts (the report
 *          leaves them out). Needs AuditLog.Read.All and an Entra ID P1/P2 licence; a few
 *          requests for the whole tenant, but the report lags behind the directory.
 *  BATCH   GET /users?$select=…&$top=999 page by page, and every enabled user's
 *          /authentication/methods in beta $batch calls of 20 (beta lists hardware OATH tokens,
 *          which v1.0 leaves out but the report counts), several in flight at once, paced to the
 *          tenant's throttling bucket. Also reads /roleManagement/directory/roleAssignments (who
 *          is an admin) and /policies/authenticationMethodsPolicy with the members of the groups
 *          it targets (who may use which method). One request per user: for free-licence
 *          tenants, where the report answers 403.
 *
 * AUTO asks the report for one row first and takes BATCH when that is refused (403, the licence
 * or the permission) — the usual Security Defaults tenant has no P1.
 *
 * Both paths give the same rows and totals on the same directory, with these documented edges:
 * a disabled account is listed (enabled = FALSE) but not examined (it cannot sign in; the report
 * omits it); security questions exist only in the report (no Graph API lists them); BATCH counts
 * only direct role assignments and direct group members of policy targets.
 */
typedef enum {
    KD_GRAPH_CENSUS_AUTO = 0,
    KD_GRAPH_CENSUS_REPORT,
    KD_GRAPH_CENSUS_BATCH,
} KdGraphCensusMode;

/* Method kinds: bits of KdGraphCensusRow.methods (password is never counted: everyone has one). */
typedef enum {
    KD_GRAPH_CENSUS_AUTHENTICATOR = 1 << 0,       /* microsoftAuthenticatorPush/Passwordless */
    KD_GRAPH_CENSUS_PHONE = 1 << 1,               /* mobilePhone, alternateMobilePhone, office */
    KD_GRAPH_CENSUS_FIDO2 = 1 << 2,               /* passKeyDeviceBound*, fido2SecurityKey */
    KD_GRAPH_CENSUS_SOFTWARE_OATH = 1 << 3,       /* softwareOneTimePasscode */
    KD_GRAPH_CENSUS_HARDWARE_OATH = 1 << 4,       /* hardwareOneTimePasscode */
    KD_GRAPH_CENSUS_WINDOWS_HELLO = 1 << 5,       /* windowsHelloForBusiness */
    KD_GRAPH_CENSUS_PLATFORM_CREDENTIAL = 1 << 6, /* macOsSecureEnclaveKey */
    KD_GRAPH_CENSUS_EMAIL = 1 << 7,               /* email (SSPR only, not MFA) */
    KD_GRAPH_CENSUS_TAP = 1 << 8,                 /* temporaryAccessPass */
    KD_GRAPH_CENSUS_SECURITY_QUESTION = 1 << 9,   /* report only */
    KD_GRAPH_CENSUS_OTHER = 1 << 10,              /* a kind this keydesk does not know */
} KdGraphCensusMethod;

#define KD_GRAPH_CENSUS_METHOD_KINDS 11
/* The kinds that make a user "registered for MFA" (the report's isMfaRegistered). */
#define KD_GRAPH_CENSUS_MFA_METHODS                                                  \
    (KD_GRAPH_CENSUS_AUTHENTICATOR | KD_GRAPH_CENSUS_PHONE | KD_GRAPH_CENSUS_FIDO2 | \
     KD_GRAPH_CENSUS_SOFTWARE_OATH | KD_GRAPH_CENSUS_HARDWARE_OATH |                 \
     KD_GRAPH_CENSUS_WINDOWS_HELLO | KD_GRAPH_CENSUS_PLATFORM_CREDENTIAL)

/* Fixed name of one kind ("authenticator", "fido2", …), NULL unless exactly one bit. */
const char *kd_graph_census_method_name(KdGraphCensusMethod kind);
/* The kind of a userRegistrationDetails methodsRegistered value, or of an authentication
 * method's @odata.type (with or without "#microsoft.graph."); 0 for the password (and for NULL),
 * KD_GRAPH_CENSUS_OTHER for anything unknown. */
KdGraphCensusMethod kd_graph_census_method_from_report(const char *value);
KdGraphCensusMethod kd_graph_census_method_from_odata_type(const char *odata_type);

/* The user's default MFA method (userPreferredMethodForSecondaryAuthentication). */
typedef enum {
    KD_GRAPH_CENSUS_DEFAULT_NONE = 0,
    KD_GRAPH_CENSUS_DEFAULT_UNKNOWN, /* BATCH without RESOLVE_DEFAULT: several candidates */
    KD_GRAPH_CENSUS_DEFAULT_PUSH,
    KD_GRAPH_CENSUS_DEFAULT_OATH,
    KD_GRAPH_CENSUS_DEFAULT_SMS,
    KD_GRAPH_CENSUS_DEFAULT_VOICE_MOBILE,
    KD_GRAPH_CENSUS_DEFAULT_VOICE_ALTERNATE_MOBILE,
    KD_GRAPH_CENSUS_DEFAULT_VOICE_OFFICE,
} KdGraphCensusDefault;

/* Graph's value ("push", "sms", …, "none"), "unknown" for UNKNOWN. */
const char *kd_graph_census_default_name(KdGraphCensusDefault method);

/* One user. Strings belong to the census and are valid during the callback only. */
typedef struct {
    const char *id;
    const char *user_principal_name;
    const char *display_name;
    gboolean enabled;
    gboolean guest;
    gboolean admin;          /* holds a directory role (FALSE when admins_known is FALSE) */
    guint methods;           /* KdGraphCensusMethod bits */
    gboolean mfa_registered; /* has a strong method (KD_GRAPH_CENSUS_MFA_METHODS) */
    gboolean mfa_capable;    /* … that the authentication methods policy allows them to use */
    KdGraphCensusDefault default_method;
} KdGraphCensusRow;

/* Called once per user, in no particular order, on the client's main context. */
typedef void (*KdGraphCensusRowFunc)(const KdGraphCensusRow *row, gpointer user_data);

typedef enum {
    /* BATCH: when a user has several methods that could be the default (Authenticator and a
     * phone, say), ask beta …/authentication/signInPreferences (one more request for each such
     * user, typically a tenth of them). Without it their default_method is UNKNOWN; with one
     * candidate it is that one either way. REPORT always knows. */
    KD_GRAPH_CENSUS_RESOLVE_DEFAULT = 1 << 0,
} KdGraphCensusFlags;

typedef struct {
    KdGraphCensusMode mode;
    KdGraphCensusFlags flags;
    KdGraphCallFlags call_flags; /* e.g. KD_GRAPH_CALL_DELEGATED for the operator's token */
    guint initial_batches;       /* $batch calls in flight at the start (0 = 4) */
    guint max_batches;           /* never more than this (0 = 8) */
} KdGraphCensusOptions;

typedef struct {
    KdGraphCensusMode mode; /* the path that answered: REPORT or BATCH */
    /* Every account. */
    guint users, enabled, disabled, members, guests;
    /* Enabled accounts from here on. */
    guint mfa_registered;
    guint mfa_capable;
    guint not_mfa_capable; /* who still has to register (or whom the policy keeps out) */
    guint password_only;   /* no method besides the password */
    guint admins;
    guint admins_without_mfa;                      /* admins that are not MFA-capable */
    guint by_method[KD_GRAPH_CENSUS_METHOD_KINDS]; /* index = bit number of the kind */
    gboolean admins_known;                         /* BATCH: roles were readable */
    gboolean policy_known;                         /* BATCH: the methods policy was readable */
    /* How it went. */
    double seconds;
    guint requests;         /* HTTP requests (a $batch counts once) */
    guint batch_items;      /* $batch items sent, retries included */
    guint throttled_items;  /* items answered 429 (and sent again later) */
    guint resource_units;   /* as Graph charged them (x-ms-resource-unit), where it said */
    guint peak_in_flight;   /* most $batch calls in flight at once */
    double refill_estimate; /* RU per second the pacing settled on (0: never throttled) */
} KdGraphCensusResult;

void kd_graph_census_result_free(KdGraphCensusResult *result);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(KdGraphCensusResult, kd_graph_census_result_free)

/* The index of a kind in by_method[] (its bit number), -1 unless exactly one bit. */
int kd_graph_census_method_index(KdGraphCensusMethod kind);

/*
 * Runs a census. @options may be NULL (AUTO, defaults). @row (may be NULL) sees every user once.
 * Fails with KD_GRAPH_ERROR_FORBIDDEN when the path chosen (or forced) lacks a permission
 * (the message names it), G_IO_ERROR_CANCELLED when @cancellable fires (rows already delivered
 * stay delivered), or the KD_GRAPH_ERROR of a request that could not be completed. Memory stays
 * bounded by about two pages of users, whatever the tenant's size.
 */
void kd_graph_census_async(KdGraphClient *client, const KdGraphCensusOptions *options,
                           KdGraphCensusRowFunc row, gpointer row_data, GCancellable *cancellable,
                           GAsyncReadyCallback callback, gpointer user_data);
KdGraphCensusResult *kd_graph_census_finish(KdGraphClient *client, GAsyncResult *result,
                                            GError **error);

G_END_DECLS
