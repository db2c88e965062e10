/* kd-graph-census: who in the tenant is registered for which authentication method (the
 * registration report, or users + methods through paced $batch calls). */
#include "graph/kd-json.h"
#include "graph/kd-graph-census.h"

#include <stdlib.h>
#include <string.h>

#include "graph/kd-graph-ops.h"

#define PAGE_TOP 999
/* Users waiting for their methods: more than this and the next page of users waits. Two pages'
 * worth of small records is the census's whole memory, whatever the tenant's size. */
#define QUEUE_LOW_WATER         1000
#define ITEM_MAX_ATTEMPTS       10
#define DEFAULT_INITIAL_BATCHES 4
#define DEFAULT_MAX_BATCHES     8

/*
 * Pacing (see the comment above controller_observe()): Graph's identity-and-access limit is a
 * token bucket that holds ten seconds of refill ("3500 RU per 10 s"). The census keeps the
 * bucket TARGET_USED full (x-ms-throttle-limit-percentage, which Graph sends above 0.80) so a
 * few batches in flight never overdraw it, and closes the gap within TAU_S.
 */
#define BUCKET_SECONDS 10.0
#define TARGET_USED    0.95
#define TAU_S          1.0
#define ANCHOR_MIN_S   1.0
#define MIN_RATE       0.5 /* RU/s: never stop altogether */

#define USERS_PATH \
    "/users?$select=id,userPrincipalName,displayName,accountEnabled,userType&$top=999"
#define DISABLED_PATH                                                                      \
    "/users?$filter=accountEnabled%20eq%20false&$select=id,userPrincipalName,displayName," \
    "userType&$top=999"
#define REPORT_PATH "/reports/authenticationMethods/userRegistrationDetails"
#define ROLES_PATH  "/roleManagement/directory/roleAssignments?$select=principalId&$top=999"
#define POLICY_PATH "/policies/authenticationMethodsPolicy"

/* --- method kinds ----------------------------------------------------------------------------- */

static const struct {
    KdGraphCensusMethod kind;
    const char *name;
} kind_names[] = {
    {KD_GRAPH_CENSUS_AUTHENTICATOR, "authenticator"},
    {KD_GRAPH_CENSUS_PHONE, "phone"},
    {KD_GRAPH_CENSUS_FIDO2, "fido2"},
    {KD_GRAPH_CENSUS_SOFTWARE_OATH, "softwareOath"},
    {KD_GRAPH_CENSUS_HARDWARE_OATH, "hardwareOath"},
    {KD_GRAPH_CENSUS_WINDOWS_HELLO, "windowsHello"},
    {KD_GRAPH_CENSUS_PLATFORM_CREDENTIAL, "platformCredential"},
    {KD_GRAPH_CENSUS_EMAIL, "email"},
    {KD_GRAPH_CENSUS_TAP, "temporaryAccessPass"},
    {KD_GRAPH_CENSUS_SECURITY_QUESTION, "securityQuestion"},
    {KD_GRAPH_CENSUS_OTHER, "other"},
};

/* The report's methodsRegistered values (reference §6.1; "fido2" became "passKeyDeviceBound",
 * so both are matched). */
static const struct {
    const char *value;
    KdGraphCensusMethod kind;
} report_kinds[] = {
    {"microsoftAuthenticatorPush", KD_GRAPH_CENSUS_AUTHENTICATOR},
    {"microsoftAuthenticatorPasswordless", KD_GRAPH_CENSUS_AUTHENTICATOR},
    {"mobilePhone", KD_GRAPH_CENSUS_PHONE},
    {"alternateMobilePhone", KD_GRAPH_CENSUS_PHONE},
    {"officePhone", KD_GRAPH_CENSUS_PHONE},
    {"fido2", KD_GRAPH_CENSUS_FIDO2},
    {"fido2SecurityKey", KD_GRAPH_CENSUS_FIDO2},
    {"passKeyDeviceBound", KD_GRAPH_CENSUS_FIDO2},
    {"passKeyDeviceBoundAuthenticator", KD_GRAPH_CENSUS_FIDO2},
    {"passKeyDeviceBoundWindowsHello", KD_GRAPH_CENSUS_FIDO2},
    {"passKeySynced", KD_GRAPH_CENSUS_FIDO2},
    {"softwareOneTimePasscode", KD_GRAPH_CENSUS_SOFTWARE_OATH},
    {"hardwareOneTimePasscode", KD_GRAPH_CENSUS_HARDWARE_OATH},
    {"windowsHelloForBusiness", KD_GRAPH_CENSUS_WINDOWS_HELLO},
    {"macOsSecureEnclaveKey", KD_GRAPH_CENSUS_PLATFORM_CREDENTIAL},
    {"email", KD_GRAPH_CENSUS_EMAIL},
    {"temporaryAccessPass", KD_GRAPH_CENSUS_TAP},
    {"securityQuestion", KD_GRAPH_CENSUS_SECURITY_QUESTION},
};

/* authenticationMethod types (reference §5.1; the beta-only ones too). */
static const struct {
    const char *type; /* without "#microsoft.graph." */
    KdGraphCensusMethod kind;
} odata_kinds[] = {
    {"passwordAuthenticationMethod", 0},
    {"microsoftAuthenticatorAuthenticationMethod", KD_GRAPH_CENSUS_AUTHENTICATOR},
    {"passwordlessMicrosoftAuthenticatorAuthenticationMethod", KD_GRAPH_CENSUS_AUTHENTICATOR},
    {"phoneAuthenticationMethod", KD_GRAPH_CENSUS_PHONE},
    {"fido2AuthenticationMethod", KD_GRAPH_CENSUS_FIDO2},
    {"softwareOathAuthenticationMethod", KD_GRAPH_CENSUS_SOFTWARE_OATH},
    {"hardwareOathAuthenticationMethod", KD_GRAPH_CENSUS_HARDWARE_OATH},
    {"windowsHelloForBusinessAuthenticationMethod", KD_GRAPH_CENSUS_WINDOWS_HELLO},
    {"platformCredentialAuthenticationMethod", KD_GRAPH_CENSUS_PLATFORM_CREDENTIAL},
    {"emailAuthenticationMethod", KD_GRAPH_CENSUS_EMAIL},
    {"temporaryAccessPassAuthenticationMethod", KD_GRAPH_CENSUS_TAP},
};

static const char *const default_names[] = {
    [KD_GRAPH_CENSUS_DEFAULT_NONE] = "none",
    [KD_GRAPH_CENSUS_DEFAULT_UNKNOWN] = "unknown",
    [KD_GRAPH_CENSUS_DEFAULT_PUSH] = "push",
    [KD_GRAPH_CENSUS_DEFAULT_OATH] = "oath",
    [KD_GRAPH_CENSUS_DEFAULT_SMS] = "sms",
    [KD_GRAPH_CENSUS_DEFAULT_VOICE_MOBILE] = "voiceMobile",
    [KD_GRAPH_CENSUS_DEFAULT_VOICE_ALTERNATE_MOBILE] = "voiceAlternateMobile",
    [KD_GRAPH_CENSUS_DEFAULT_VOICE_OFFICE] = "voiceOffice",
};

const char *
kd_graph_census_method_name(KdGraphCensusMethod kind)
{
    for (gsize i = 0; i < G_N_ELEMENTS(kind_names); i++)
        if (kind_names[i].kind == kind)
            return kind_names[i].name;
    return NULL;
}

int
kd_graph_census_method_index(KdGraphCensusMethod kind)
{
    guint v = (guint)kind;

    if (v == 0 || (v & (v - 1)) != 0 || v > KD_GRAPH_CENSUS_OTHER)
        return -1;
    return g_bit_nth_lsf(v, -1);
}

KdGraphCensusMethod
kd_graph_census_method_from_report(const char *value)
{
    if (value == NULL)
        return 0;
    for (gsize i = 0; i < G_N_ELEMENTS(report_kinds); i++)
        if (g_ascii_strcasecmp(report_kinds[i].value, value) == 0)
            return report_kinds[i].kind;
    return KD_GRAPH_CENSUS_OTHER;
}

KdGraphCensusMethod
kd_graph_census_method_from_odata_type(const char *odata_type)
{
    const char *t = odata_type;

    if (t == NULL)
        return 0;
    if (*t == '#')
        t++;
    if (g_str_has_prefix(t, "microsoft.graph."))
        t += strlen("microsoft.graph.");
    for (gsize i = 0; i < G_N_ELEMENTS(odata_kinds); i++)
        if (g_ascii_strcasecmp(odata_kinds[i].type, t) == 0)
            return odata_kinds[i].kind;
    return KD_GRAPH_CENSUS_OTHER;
}

const char *
kd_graph_census_default_name(KdGraphCensusDefault method)
{
    if ((guint)method >= G_N_ELEMENTS(default_names))
        return "unknown";
    return default_names[method];
}

static KdGraphCensusDefault
default_from_name(const char *name)
{
    if (name == NULL)
        return KD_GRAPH_CENSUS_DEFAULT_NONE;
    for (guint i = 0; i < G_N_ELEMENTS(default_names); i++)
        if (i != KD_GRAPH_CENSUS_DEFAULT_UNKNOWN && g_ascii_strcasecmp(default_names[i], name) == 0)
            return (KdGraphCensusDefault)i;
    return KD_GRAPH_CENSUS_DEFAULT_UNKNOWN;
}

void
kd_graph_census_result_free(KdGraphCensusResult *result)
{
    g_free(result);
}

/* --- JSON: tolerant accessors are in kd-json.h --------------------------------------------- */

static JsonObject *
element_object(JsonArray *a, guint i)
{
    JsonNode *n = json_array_get_element(a, i);

    return n != NULL && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
}

static JsonObject *
root_object(JsonNode *root)
{
    return root != NULL && JSON_NODE_HOLDS_OBJECT(root) ? json_node_get_object(root) : NULL;
}

/* --- the methods policy (who may use what: the report's isMfaCapable) ------------------------- */

typedef enum {
    RULE_AUTHENTICATOR,
    RULE_SOFTWARE_OATH,
    RULE_FIDO2,
    RULE_SMS,
    RULE_VOICE,
    N_RULES,
} RuleId;

static const char *const rule_config_ids[N_RULES] = {"MicrosoftAuthenticator", "SoftwareOath",
                                                     "Fido2", "Sms", "Voice"};

typedef struct {
    gboolean present;     /* the policy has this configuration */
    gboolean enabled;     /* state == enabled */
    gboolean include_all; /* all_users included */
    gboolean exclude_all; /* all_users excluded */
    GHashTable *include;  /* user ids (from user targets and group members) */
    GHashTable *exclude;
} Rule;

/* A group whose members the policy names, still to be listed. */
typedef struct {
    RuleId rule;
    gboolean exclude;
    char *group_id;
} GroupTarget;

static void
group_target_free(gpointer p)
{
    GroupTarget *g = p;

    g_free(g->group_id);
    g_free(g);
}

/* --- one user on its way through the batch path ----------------------------------------------- */

typedef enum {
    WANT_METHODS,
    WANT_PREFERENCE, /* signInPreferences, for RESOLVE_DEFAULT */
} Want;

typedef struct {
    char *id;
    char *upn;
    char *name;
    gboolean guest;
    guint methods;
    KdGraphCensusDefault default_method;
    Want want;
    guint attempts;
    gint64 due_us; /* not to be sent before (a per-item backoff) */
} Pending;

static void
pending_free(gpointer p)
{
    Pending *u = p;

    if (u == NULL)
        return;
    g_free(u->id);
    g_free(u->upn);
    g_free(u->name);
    g_free(u);
}

/* --- the census ------------------------------------------------------------------------------- */

typedef struct {
    GTask *task;
    KdGraphClient *client;
    GMainContext *context;
    KdGraphCensusOptions opts;
    KdGraphCensusRowFunc row;
    gpointer row_data;
    GCancellable *cancel; /* ours: fires on the caller's cancel and on a failure */
    GCancellable *caller;
    gulong caller_handler;
    GSource *wake; /* idle after the caller cancelled */
    KdGraphCensusResult *result;
    gint64 start_us;
    GError *error; /* the first failure: nothing new starts once it is set */
    guint busy;    /* asynchronous operations in flight (of any kind) */
    gboolean done;

    /* REPORT */
    GHashTable *disabled; /* ids of disabled accounts (the report may or may not list them) */

    /* BATCH: what rows need */
    GHashTable *admins;
    Rule rules[N_RULES];
    gboolean legacy_phone; /* policyMigrationState is not migrationComplete */
    GQueue targets;        /* GroupTarget still to list */
    GroupTarget *target;   /* the one being listed */

    /* BATCH: users and methods */
    GQueue queue; /* Pending, ready to send */
    GQueue later; /* Pending with a due time */
    char *next_page;
    gboolean listing;
    gboolean listed;
    gboolean streaming; /* the users/methods phase has begun */
    guint in_flight;    /* $batch calls */
    GSource *timer;
    gint64 timer_due_us;

    /* BATCH: the throttle controller */
    guint window;
    guint max_window;
    guint ok_streak;
    gboolean paced;
    double rate; /* RU/s to send at while paced */
    double r_est;
    gint64 next_slot_us;
    gint64 pause_until_us;
    gint64 first_send_us;
    double ru_total; /* RU Graph has charged us (as answers report it) */
    gboolean anchor_valid;
    gint64 anchor_us;
    double anchor_ru;
    double anchor_used;
} Census;

static void pump(Census *c);
static void maybe_finish(Census *c);

static void
rules_clear(Census *c)
{
    for (guint i = 0; i < N_RULES; i++) {
        g_clear_pointer(&c->rules[i].include, g_hash_table_unref);
        g_clear_pointer(&c->rules[i].exclude, g_hash_table_unref);
    }
}

static void
census_free(gpointer p)
{
    Census *c = p;

    if (c->caller != NULL) {
        g_cancellable_disconnect(c->caller, c->caller_handler);
        g_object_unref(c->caller);
    }
    if (c->wake != NULL) {
        g_source_destroy(c->wake);
        g_source_unref(c->wake);
    }
    if (c->timer != NULL) {
        g_source_destroy(c->timer);
        g_source_unref(c->timer);
    }
    g_clear_object(&c->cancel);
    g_free(c->result);
    g_clear_error(&c->error);
    g_clear_pointer(&c->disabled, g_hash_table_unref);
    g_clear_pointer(&c->admins, g_hash_table_unref);
    rules_clear(c);
    g_queue_clear_full(&c->targets, group_target_free);
    if (c->target != NULL)
        group_target_free(c->target);
    g_queue_clear_full(&c->queue, pending_free);
    g_queue_clear_full(&c->later, pending_free);
    g_free(c->next_page);
    if (c->context != NULL)
        g_main_context_unref(c->context);
    g_free(c);
}

static gboolean
stopping(Census *c)
{
    return c->error != NULL || g_cancellable_is_cancelled(c->cancel);
}

/* Records the first failure and stops everything else (their cancellations are not errors). */
static void
fail(Census *c, GError *error)
{
    if (c->error == NULL && !g_cancellable_is_cancelled(c->cancel))
        c->error = error;
    else
        g_error_free(error);
    g_cancellable_cancel(c->cancel);
}

/* An error from an operation we started: a cancellation we caused is not the failure. */
static void
fail_from(Census *c, GError *error)
{
    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED) || stopping(c)) {
        g_error_free(error);
        g_cancellable_cancel(c->cancel);
        return;
    }
    fail(c, error);
}

static GError *
forbidden(const GError *cause, const char *what)
{
    const KdGraphErrorInfo *info = kd_graph_error_get_info(cause);
    KdGraphErrorInfo copy = {0};

    if (info != NULL)
        copy = *info;
    return kd_graph_error_new(KD_GRAPH_ERROR_FORBIDDEN, info != NULL ? &copy : NULL, "%s (%s)",
                              what, cause->message);
}

static void
emit(Census *c, const KdGraphCensusRow *row)
{
    KdGraphCensusResult *r = c->result;

    r->users++;
    if (row->guest)
        r->guests++;
    else
        r->members++;
    if (!row->enabled) {
        r->disabled++;
    } else {
        r->enabled++;
        r->mfa_registered += row->mfa_registered ? 1 : 0;
        r->mfa_capable += row->mfa_capable ? 1 : 0;
        r->not_mfa_capable += row->mfa_capable ? 0 : 1;
        r->password_only += row->methods == 0 ? 1 : 0;
        r->admins += row->admin ? 1 : 0;
        r->admins_without_mfa += row->admin && !row->mfa_capable ? 1 : 0;
        for (guint i = 0; i < KD_GRAPH_CENSUS_METHOD_KINDS; i++)
            if (row->methods & (1u << i))
                r->by_method[i]++;
    }
    if (c->row != NULL)
        c->row(row, c->row_data);
}

static void
emit_disabled(Census *c, const char *id, const char *upn, const char *name, gboolean guest)
{
    /* A disabled account cannot sign in: listed, not examined (the report leaves it out). */
    KdGraphCensusRow row = {
        .id = id,
        .user_principal_name = upn,
        .display_name = name,
        .enabled = FALSE,
        .guest = guest,
        .default_method = KD_GRAPH_CENSUS_DEFAULT_NONE,
    };
    emit(c, &row);
}

static gboolean
is_guest(const char *user_type)
{
    return user_type != NULL && g_ascii_strcasecmp(user_type, "guest") == 0;
}

/* --- completion ------------------------------------------------------------------------------- */

static gboolean
batch_work_left(Census *c)
{
    return !c->listed || c->listing || !g_queue_is_empty(&c->queue) ||
           !g_queue_is_empty(&c->later) || c->in_flight > 0;
}

static void
maybe_finish(Census *c)
{
    GTask *task = c->task;

    if (c->done || c->busy > 0)
        return;
    /* Before the users stream begins, the phase that just ended starts the next one. */
    if (!stopping(c) && (!c->streaming || batch_work_left(c)))
        return;
    c->done = TRUE;
    if (c->timer != NULL) {
        g_source_destroy(c->timer);
        g_clear_pointer(&c->timer, g_source_unref);
    }
    c->result->seconds = (double)(g_get_monotonic_time() - c->start_us) / G_USEC_PER_SEC;
    c->result->refill_estimate = c->r_est;
    if (c->error != NULL) {
        g_task_return_error(task, g_steal_pointer(&c->error));
    } else if (g_cancellable_is_cancelled(c->cancel)) {
        g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_CANCELLED, "The census was cancelled");
    } else {
        KdGraphCensusResult *r = g_steal_pointer(&c->result);
        g_task_return_pointer(task, r, (GDestroyNotify)kd_graph_census_result_free);
    }
    g_object_unref(task);
}

/* The caller's cancel may come from anywhere: stop ours and look again from our own context. */
static gboolean
on_wake(gpointer data)
{
    Census *c = data;

    g_clear_pointer(&c->wake, g_source_unref);
    maybe_finish(c);
    return G_SOURCE_REMOVE;
}

static void
on_caller_cancelled(GCancellable *cancellable, gpointer data)
{
    Census *c = data;

    g_cancellable_cancel(c->cancel);
    if (c->wake == NULL) {
        c->wake = g_idle_source_new();
        g_source_set_callback(c->wake, on_wake, c, NULL);
        g_source_attach(c->wake, c->context);
    }
}

/* --- REPORT path ------------------------------------------------------------------------------ */

static gboolean
on_disabled_page(JsonArray *page, gpointer data)
{
    Census *c = data;

    c->result->requests++;
    for (guint i = 0; i < json_array_get_length(page); i++) {
        JsonObject *o = element_object(page, i);
        const char *id = kd_json_get_string(o, "id");
        if (id == NULL || g_hash_table_contains(c->disabled, id))
            continue;
        g_hash_table_add(c->disabled, g_strdup(id));
        emit_disabled(c, id, kd_json_get_string(o, "userPrincipalName"),
                      kd_json_get_string(o, "displayName"),
                      is_guest(kd_json_get_string(o, "userType")));
    }
    return !stopping(c);
}

static gboolean
on_report_page(JsonArray *page, gpointer data)
{
    Census *c = data;

    c->result->requests++;
    for (guint i = 0; i < json_array_get_length(page); i++) {
        JsonObject *o = element_object(page, i);
        const char *id = kd_json_get_string(o, "id");
        JsonArray *methods = kd_json_get_array(o, "methodsRegistered");
        KdGraphCensusRow row = {0};

        if (id == NULL || g_hash_table_contains(c->disabled, id))
            continue;
        row.id = id;
        row.user_principal_name = kd_json_get_string(o, "userPrincipalName");
        row.display_name = kd_json_get_string(o, "userDisplayName");
        row.enabled = TRUE;
        row.guest = is_guest(kd_json_get_string(o, "userType"));
        row.admin = kd_json_get_bool(o, "isAdmin", FALSE);
        for (guint j = 0; methods != NULL && j < json_array_get_length(methods); j++) {
            JsonNode *n = json_array_get_element(methods, j);
            if (JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING)
                row.methods |= kd_graph_census_method_from_report(json_node_get_string(n));
        }
        row.mfa_registered = kd_json_get_bool(o, "isMfaRegistered", FALSE);
        row.mfa_capable = kd_json_get_bool(o, "isMfaCapable", FALSE);
        row.default_method = default_from_name(
            kd_json_get_string(o, "userPreferredMethodForSecondaryAuthentication"));
        emit(c, &row);
    }
    return !stopping(c);
}

static void
on_report_done(GObject *source, GAsyncResult *res, gpointer data)
{
    Census *c = data;
    GError *error = NULL;

    c->busy--;
    if (!kd_graph_client_list_finish(c->client, res, &error))
        fail_from(c, error);
    c->streaming = TRUE;
    c->listed = TRUE;
    maybe_finish(c);
}

static void
on_disabled_done(GObject *source, GAsyncResult *res, gpointer data)
{
    Census *c = data;
    GError *error = NULL;

    c->busy--;
    if (!kd_graph_client_list_finish(c->client, res, &error)) {
        if (g_error_matches(error, KD_GRAPH_ERROR, KD_GRAPH_ERROR_FORBIDDEN)) {
            fail(c, forbidden(error, "Listing the disabled accounts needs User.Read.All"));
            g_error_free(error);
        } else {
            fail_from(c, error);
        }
    }
    if (stopping(c)) {
        maybe_finish(c);
        return;
    }
    c->busy++;
    kd_graph_client_list_async(c->client, REPORT_PATH "?$top=999", c->opts.call_flags,
                               on_report_page, c, c->cancel, on_report_done, c);
}

static void
start_report(Census *c)
{
    c->result->mode = KD_GRAPH_CENSUS_REPORT;
    c->result->admins_known = TRUE;
    c->result->policy_known = TRUE;
    c->disabled = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    c->busy++;
    kd_graph_client_list_async(c->client, DISABLED_PATH, c->opts.call_flags, on_disabled_page, c,
                               c->cancel, on_disabled_done, c);
}

/* --- BATCH path: the throttle controller ------------------------------------------------------ */

/*
 * Every $batch answer tells, item by item, the resource units Graph charged (x-ms-resource-unit)
 * and, once the bucket is more than 80 % used, how used it is (x-ms-throttle-limit-percentage,
 * "used" below: 0.80-1.80). The bucket's capacity is BUCKET_SECONDS of refill, so
 *
 *     used(t) · 10 r = RU charged − r · t + (what was used before we started)
 *
 * and two readings a second or more apart give the refill rate r = ΔRU / (10 Δused + Δt). The
 * first reading after a full bucket gives r = RU / (10 used + t). While the bucket is under 80 %
 * used the census sends as fast as its window of concurrent batches allows (the window grows by
 * one after a window's worth of unthrottled batches). Once readings come, it paces: it sends at
 * r + (level − target) / TAU_S, where level = 10 r (1 − used), so the bucket settles at
 * TARGET_USED and sending matches the refill. A 429 on any item still pauses everything until its
 * Retry-After has passed (the bucket is shared: anything sent meanwhile would be refused and dig
 * deeper), halves the window, and resumes at half the estimated rate.
 */
static void
controller_observe(Census *c, gint64 now, double used, gboolean throttled, gint64 retry_after_ms)
{
    double t;

    if (throttled) {
        gint64 until = now + MAX(retry_after_ms, 1000) * 1000;
        c->pause_until_us = MAX(c->pause_until_us, until);
        c->window = MAX(1, c->window / 2);
        c->ok_streak = 0;
        if (c->r_est <= 0 && used > 0) {
            t = (double)(now - c->first_send_us) / G_USEC_PER_SEC;
            c->r_est = c->ru_total / (BUCKET_SECONDS * used + t);
        }
        c->paced = TRUE;
        c->rate = MAX(MIN_RATE, c->r_est > 0 ? c->r_est / 2 : 1.0);
        c->next_slot_us = MAX(c->next_slot_us, c->pause_until_us);
        c->anchor_valid = FALSE; /* readings across a refusal burst mislead */
        return;
    }
    if (used < 0) {
        c->paced = FALSE;
        c->anchor_valid = FALSE;
        if (c->window < c->max_window && ++c->ok_streak >= c->window) {
            c->window++;
            c->ok_streak = 0;
        }
        return;
    }
    if (c->r_est <= 0) {
        t = (double)(now - c->first_send_us) / G_USEC_PER_SEC;
        c->r_est = MAX(MIN_RATE, c->ru_total / (BUCKET_SECONDS * used + t));
    }
    if (!c->anchor_valid) {
        c->anchor_valid = TRUE;
        c->anchor_us = now;
        c->anchor_ru = c->ru_total;
        c->anchor_used = used;
    } else if ((double)(now - c->anchor_us) / G_USEC_PER_SEC >= ANCHOR_MIN_S) {
        double dt = (double)(now - c->anchor_us) / G_USEC_PER_SEC;
        double denom = BUCKET_SECONDS * (used - c->anchor_used) + dt;
        if (denom > 0.25) {
            double r = (c->ru_total - c->anchor_ru) / denom;
            /* One reading may be off by a batch in flight: move halfway, at most twofold. */
            r = CLAMP(r, c->r_est / 2, c->r_est * 2);
            c->r_est = MAX(MIN_RATE, (c->r_est + r) / 2);
        }
        c->anchor_us = now;
        c->anchor_ru = c->ru_total;
        c->anchor_used = used;
    }
    {
        double level = BUCKET_SECONDS * c->r_est * (1.0 - used);
        double target = BUCKET_SECONDS * c->r_est * (1.0 - TARGET_USED);
        double rate = c->r_est + (level - target) / TAU_S;
        c->rate = CLAMP(rate, MAX(MIN_RATE, c->r_est / 4), c->r_est * 3);
    }
    if (!c->paced)
        c->next_slot_us = now;
    else if (now >= c->next_slot_us && c->window < c->max_window)
        c->window++; /* late for the next slot: the window, not the pace, is what holds back */
    c->paced = TRUE;
}

/* --- BATCH path: rows ------------------------------------------------------------------------- */

static gboolean
rule_allows(Census *c, RuleId id, const char *user_id)
{
    const Rule *r = &c->rules[id];

    if (!r->present)
        return TRUE; /* not governed by the methods policy */
    if (!r->enabled)
        return (id == RULE_SMS || id == RULE_VOICE) && c->legacy_phone;
    if (!r->include_all && !g_hash_table_contains(r->include, user_id))
        return FALSE;
    if (r->exclude_all)
        return FALSE;
    return !g_hash_table_contains(r->exclude, user_id);
}

static gboolean
mfa_capable(Census *c, guint methods, const char *user_id)
{
    if (!c->result->policy_known)
        return (methods & KD_GRAPH_CENSUS_MFA_METHODS) != 0;
    if (methods & (KD_GRAPH_CENSUS_HARDWARE_OATH | KD_GRAPH_CENSUS_WINDOWS_HELLO |
                   KD_GRAPH_CENSUS_PLATFORM_CREDENTIAL))
        return TRUE;
    if ((methods & KD_GRAPH_CENSUS_AUTHENTICATOR) && rule_allows(c, RULE_AUTHENTICATOR, user_id))
        return TRUE;
    if ((methods & KD_GRAPH_CENSUS_SOFTWARE_OATH) && rule_allows(c, RULE_SOFTWARE_OATH, user_id))
        return TRUE;
    if ((methods & KD_GRAPH_CENSUS_FIDO2) && rule_allows(c, RULE_FIDO2, user_id))
        return TRUE;
    if ((methods & KD_GRAPH_CENSUS_PHONE) &&
        (rule_allows(c, RULE_SMS, user_id) || rule_allows(c, RULE_VOICE, user_id)))
        return TRUE;
    return FALSE;
}

static void
emit_pending(Census *c, Pending *u)
{
    KdGraphCensusRow row = {
        .id = u->id,
        .user_principal_name = u->upn,
        .display_name = u->name,
        .enabled = TRUE,
        .guest = u->guest,
        .admin = c->admins != NULL && g_hash_table_contains(c->admins, u->id),
        .methods = u->methods,
        .mfa_registered = (u->methods & KD_GRAPH_CENSUS_MFA_METHODS) != 0,
        .mfa_capable = mfa_capable(c, u->methods, u->id),
        .default_method = u->default_method,
    };
    emit(c, &row);
}

/* What the methods tell about the default: the one value every default-capable method would
 * give, NONE without any, UNKNOWN when they disagree (signInPreferences knows). */
static KdGraphCensusDefault
default_candidate(JsonObject *method, KdGraphCensusMethod kind)
{
    const char *phone_type;

    switch (kind) {
    case KD_GRAPH_CENSUS_AUTHENTICATOR:
        return KD_GRAPH_CENSUS_DEFAULT_PUSH;
    case KD_GRAPH_CENSUS_SOFTWARE_OATH:
    case KD_GRAPH_CENSUS_HARDWARE_OATH:
        return KD_GRAPH_CENSUS_DEFAULT_OATH;
    case KD_GRAPH_CENSUS_PHONE:
        phone_type = kd_json_get_string(method, "phoneType");
        if (phone_type != NULL && g_ascii_strcasecmp(phone_type, "alternateMobile") == 0)
            return KD_GRAPH_CENSUS_DEFAULT_VOICE_ALTERNATE_MOBILE;
        if (phone_type != NULL && g_ascii_strcasecmp(phone_type, "office") == 0)
            return KD_GRAPH_CENSUS_DEFAULT_VOICE_OFFICE;
        return KD_GRAPH_CENSUS_DEFAULT_SMS;
    default:
        return KD_GRAPH_CENSUS_DEFAULT_NONE;
    }
}

/* A 200 for …/authentication/methods. FALSE when the user still needs signInPreferences. */
static gboolean
take_methods(Census *c, Pending *u, JsonNode *body)
{
    JsonArray *value = kd_json_get_array(root_object(body), "value");
    KdGraphCensusDefault dflt = KD_GRAPH_CENSUS_DEFAULT_NONE;

    u->methods = 0;
    for (guint i = 0; value != NULL && i < json_array_get_length(value); i++) {
        JsonObject *m = element_object(value, i);
        KdGraphCensusMethod kind =
            kd_graph_census_method_from_odata_type(kd_json_get_string(m, "@odata.type"));
        KdGraphCensusDefault cand = default_candidate(m, kind);

        u->methods |= kind;
        if (cand == KD_GRAPH_CENSUS_DEFAULT_NONE)
            continue;
        if (dflt == KD_GRAPH_CENSUS_DEFAULT_NONE)
            dflt = cand;
        else if (dflt != cand)
            dflt = KD_GRAPH_CENSUS_DEFAULT_UNKNOWN;
    }
    u->default_method = dflt;
    if (dflt == KD_GRAPH_CENSUS_DEFAULT_UNKNOWN &&
        (c->opts.flags & KD_GRAPH_CENSUS_RESOLVE_DEFAULT)) {
        u->want = WANT_PREFERENCE;
        return FALSE;
    }
    return TRUE;
}

static void
take_preference(Pending *u, JsonNode *body)
{
    const char *pref =
        kd_json_get_string(root_object(body), "userPreferredMethodForSecondaryAuthentication");

    u->default_method = pref != NULL ? default_from_name(pref) : KD_GRAPH_CENSUS_DEFAULT_UNKNOWN;
}

/* --- BATCH path: sending ---------------------------------------------------------------------- */

typedef struct {
    Census *c;
    GPtrArray *requests; /* KdGraphBatchRequest */
    GPtrArray *users;    /* Pending, same order */
} Sent;

static void
sent_free(Sent *s)
{
    g_ptr_array_unref(s->requests);
    g_ptr_array_unref(s->users);
    g_free(s);
}

static gboolean
timer_cb(gpointer data)
{
    Census *c = data;

    g_clear_pointer(&c->timer, g_source_unref);
    c->timer_due_us = 0;
    pump(c);
    return G_SOURCE_REMOVE;
}

static void
arm_timer(Census *c, gint64 due_us)
{
    gint64 now = g_get_monotonic_time();
    guint ms;

    if (c->timer != NULL && c->timer_due_us <= due_us)
        return;
    if (c->timer != NULL) {
        g_source_destroy(c->timer);
        g_clear_pointer(&c->timer, g_source_unref);
    }
    ms = due_us > now ? (guint)MIN((due_us - now + 999) / 1000, (gint64)G_MAXUINT) : 0;
    c->timer = g_timeout_source_new(ms);
    c->timer_due_us = due_us;
    g_source_set_callback(c->timer, timer_cb, c, NULL);
    g_source_attach(c->timer, c->context);
}

static void
requeue_later(Census *c, Pending *u, gint64 due_us)
{
    u->due_us = due_us;
    g_queue_push_tail(&c->later, u);
}

static guint64
header_uint(GHashTable *headers, const char *name, guint64 fallback)
{
    const char *v = headers != NULL ? g_hash_table_lookup(headers, name) : NULL;
    char *end = NULL;
    guint64 n;

    if (v == NULL)
        return fallback;
    n = g_ascii_strtoull(v, &end, 10);
    return end != v ? n : fallback;
}

static double
header_double(GHashTable *headers, const char *name)
{
    const char *v = headers != NULL ? g_hash_table_lookup(headers, name) : NULL;
    char *end = NULL;
    double d;

    if (v == NULL)
        return -1;
    d = g_ascii_strtod(v, &end);
    return end != v ? d : -1;
}

static gint64
item_backoff_ms(guint attempts)
{
    /* No Retry-After (a 503 or 504 without one): 1, 2, 4 … s, with jitter. */
    gint64 base = 1000LL << MIN(attempts, 5u);
    return base / 2 + g_random_int_range(0, (gint32)(base / 2) + 1);
}

static void
on_batch(GObject *source, GAsyncResult *res, gpointer data)
{
    Sent *s = data;
    Census *c = s->c;
    GError *error = NULL;
    g_autoptr(GPtrArray) answers = kd_graph_batch_finish(c->client, res, &error);
    gint64 now = g_get_monotonic_time();
    gboolean throttled = FALSE;
    gint64 retry_after_ms = 0;
    double used = -1;

    c->busy--;
    c->in_flight--;
    if (answers == NULL) {
        fail_from(c, error);
        sent_free(s);
        maybe_finish(c);
        return;
    }
    for (guint i = 0; i < answers->len; i++) {
        KdGraphBatchResponse *a = g_ptr_array_index(answers, i);
        Pending *u = g_ptr_array_index(s->users, i);
        double p = header_double(a->headers, "x-ms-throttle-limit-percentage");
        guint64 ru = header_uint(a->headers, "x-ms-resource-unit", 0);

        c->ru_total += ru > 0 ? (double)ru : 1.0;
        c->result->resource_units += (guint)ru;
        used = MAX(used, p);
        g_ptr_array_index(s->users, i) = NULL;
        if (stopping(c)) {
            pending_free(u);
            continue;
        }
        if (a->status >= 200 && a->status < 300) {
            gboolean complete = u->want == WANT_METHODS ? take_methods(c, u, a->body)
                                                        : (take_preference(u, a->body), TRUE);
            if (complete) {
                emit_pending(c, u);
                pending_free(u);
            } else {
                u->attempts = 0;
                g_queue_push_head(&c->queue, u);
            }
            continue;
        }
        if (a->status == 404) {
            pending_free(u); /* deleted since it was listed */
            continue;
        }
        if (a->status == 403 && u->want == WANT_PREFERENCE) {
            u->default_method = KD_GRAPH_CENSUS_DEFAULT_UNKNOWN;
            emit_pending(c, u);
            pending_free(u);
            continue;
        }
        if (a->status == 403) {
            KdGraphErrorInfo info = {.http_status = 403};
            fail(c, kd_graph_error_new(KD_GRAPH_ERROR_FORBIDDEN, &info,
                                       "Reading users' authentication methods needs "
                                       "UserAuthenticationMethod.Read.All (Graph answered 403 "
                                       "for %s)",
                                       u->id));
            pending_free(u);
            continue;
        }
        if (kd_graph_batch_response_should_retry(a) || a->status == 500) {
            u->attempts++;
            if (u->attempts >= ITEM_MAX_ATTEMPTS) {
                KdGraphErrorInfo info = {.http_status = a->status, .retryable = TRUE};
                fail(c, kd_graph_error_new(a->status == 429 ? KD_GRAPH_ERROR_THROTTLED
                                                            : KD_GRAPH_ERROR_UNAVAILABLE,
                                           &info,
                                           "Graph still answered %u for a user's methods after "
                                           "%u attempts",
                                           a->status, u->attempts));
                pending_free(u);
                continue;
            }
            if (a->status == 429) {
                c->result->throttled_items++;
                throttled = TRUE;
                retry_after_ms = MAX(retry_after_ms, (gint64)MAX(a->retry_after_s, 1u) * 1000);
                g_queue_push_head(&c->queue, u); /* goes first once the pause is over */
            } else if (a->retry_after_s > 0) {
                requeue_later(c, u, now + (gint64)a->retry_after_s * G_USEC_PER_SEC);
            } else {
                requeue_later(c, u, now + item_backoff_ms(u->attempts) * 1000);
            }
            continue;
        }
        {
            KdGraphErrorInfo info = {.http_status = a->status};
            fail(c, kd_graph_error_new(KD_GRAPH_ERROR_BAD_REQUEST, &info,
                                       "Graph answered %u for a user's authentication methods",
                                       a->status));
        }
        pending_free(u);
    }
    if (!stopping(c))
        controller_observe(c, now, used, throttled, retry_after_ms);
    sent_free(s);
    pump(c);
}

static guint
batch_size(Census *c)
{
    /* Paced at a low rate, a whole batch would overdraw a small bucket at once. */
    if (c->paced) {
        double n = c->rate * 0.1;
        return (guint)CLAMP(n, 1.0, (double)KD_GRAPH_BATCH_MAX);
    }
    return KD_GRAPH_BATCH_MAX;
}

static void
send_batch(Census *c, guint n)
{
    Sent *s = g_new0(Sent, 1);
    gint64 now = g_get_monotonic_time();

    s->c = c;
    s->requests = g_ptr_array_new_with_free_func((GDestroyNotify)kd_graph_batch_request_free);
    s->users = g_ptr_array_new_with_free_func(pending_free);
    while (s->requests->len < n && !g_queue_is_empty(&c->queue)) {
        Pending *u = g_queue_pop_head(&c->queue);
        g_autofree char *escaped = kd_graph_escape_segment(u->id);
        g_autofree char *url =
            g_strdup_printf("/users/%s/authentication/%s", escaped,
                            u->want == WANT_METHODS ? "methods" : "signInPreferences");
        g_autofree char *id = g_strdup_printf("%u", s->requests->len + 1);

        g_ptr_array_add(s->requests, kd_graph_batch_request_new(id, "GET", url, NULL));
        g_ptr_array_add(s->users, u);
    }
    if (c->first_send_us == 0)
        c->first_send_us = now;
    if (c->paced)
        c->next_slot_us =
            MAX(c->next_slot_us, now) + (gint64)((double)s->requests->len / c->rate * 1e6);
    c->busy++;
    c->in_flight++;
    c->result->requests++;
    c->result->batch_items += s->requests->len;
    c->result->peak_in_flight = MAX(c->result->peak_in_flight, c->in_flight);
    /* Beta: v1.0 leaves hardware OATH tokens out of /methods, and signInPreferences is beta. */
    kd_graph_batch_async(c->client, s->requests, c->opts.call_flags | KD_GRAPH_CALL_BETA, c->cancel,
                         on_batch, s);
}

static void fetch_users(Census *c);

static void
pump(Census *c)
{
    gint64 now = g_get_monotonic_time();
    gint64 earliest = G_MAXINT64;
    GList *l, *next;

    if (stopping(c) || c->done) {
        maybe_finish(c);
        return;
    }
    /* Items whose backoff has passed go first. */
    for (l = c->later.head; l != NULL; l = next) {
        Pending *u = l->data;
        next = l->next;
        if (u->due_us <= now) {
            g_queue_delete_link(&c->later, l);
            g_queue_push_head(&c->queue, u);
        } else {
            earliest = MIN(earliest, u->due_us);
        }
    }
    fetch_users(c);
    while (c->in_flight < c->window && !g_queue_is_empty(&c->queue)) {
        if (now < c->pause_until_us) {
            arm_timer(c, c->pause_until_us);
            break;
        }
        if (c->paced && now < c->next_slot_us) {
            arm_timer(c, c->next_slot_us);
            break;
        }
        send_batch(c, batch_size(c));
    }
    if (earliest != G_MAXINT64)
        arm_timer(c, earliest);
    maybe_finish(c);
}

/* --- BATCH path: listing users ---------------------------------------------------------------- */

static void
on_users_page(GObject *source, GAsyncResult *res, gpointer data)
{
    Census *c = data;
    GError *error = NULL;
    JsonNode *root = kd_graph_client_call_finish(c->client, res, &error);
    JsonObject *obj = root_object(root);
    JsonArray *value = kd_json_get_array(obj, "value");
    const char *next;

    c->busy--;
    c->listing = FALSE;
    if (error != NULL) {
        if (g_error_matches(error, KD_GRAPH_ERROR, KD_GRAPH_ERROR_FORBIDDEN)) {
            fail(c, forbidden(error, "Listing users needs User.Read.All"));
            g_error_free(error);
        } else {
            fail_from(c, error);
        }
        pump(c);
        return;
    }
    if (value == NULL) {
        fail(c, kd_graph_error_new(KD_GRAPH_ERROR_BAD_RESPONSE, NULL,
                                   "Graph answered a users page without a value array"));
        g_clear_pointer(&root, json_node_unref);
        pump(c);
        return;
    }
    for (guint i = 0; !stopping(c) && i < json_array_get_length(value); i++) {
        JsonObject *o = element_object(value, i);
        const char *id = kd_json_get_string(o, "id");
        gboolean guest = is_guest(kd_json_get_string(o, "userType"));
        Pending *u;

        if (id == NULL)
            continue;
        if (!kd_json_get_bool(o, "accountEnabled", TRUE)) {
            emit_disabled(c, id, kd_json_get_string(o, "userPrincipalName"),
                          kd_json_get_string(o, "displayName"), guest);
            continue;
        }
        u = g_new0(Pending, 1);
        u->id = g_strdup(id);
        u->upn = g_strdup(kd_json_get_string(o, "userPrincipalName"));
        u->name = g_strdup(kd_json_get_string(o, "displayName"));
        u->guest = guest;
        u->want = WANT_METHODS;
        g_queue_push_tail(&c->queue, u);
    }
    next = kd_json_get_string(obj, "@odata.nextLink");
    g_free(c->next_page);
    c->next_page = next != NULL ? g_strdup(next) : NULL;
    c->listed = c->next_page == NULL;
    json_node_unref(root);
    pump(c);
}

static void
fetch_users(Census *c)
{
    if (c->listing || c->listed || stopping(c) || c->next_page == NULL ||
        g_queue_get_length(&c->queue) > QUEUE_LOW_WATER)
        return;
    c->listing = TRUE;
    c->busy++;
    c->result->requests++;
    kd_graph_client_call_async(c->client, "GET", c->next_page, NULL, c->opts.call_flags, c->cancel,
                               on_users_page, c);
}

static void
start_streaming(Census *c)
{
    c->streaming = TRUE;
    c->next_page = g_strdup(USERS_PATH);
    c->window = c->opts.initial_batches;
    c->max_window = c->opts.max_batches;
    pump(c);
}

/* --- BATCH path: what rows need (admins, the methods policy) ---------------------------------- */

static void next_target(Census *c);

static gboolean
on_target_page(JsonArray *page, gpointer data)
{
    Census *c = data;
    Rule *r = &c->rules[c->target->rule];
    GHashTable *set = c->target->exclude ? r->exclude : r->include;

    c->result->requests++;
    for (guint i = 0; i < json_array_get_length(page); i++) {
        const char *id = kd_json_get_string(element_object(page, i), "id");
        if (id != NULL)
            g_hash_table_add(set, g_strdup(id));
    }
    return !stopping(c);
}

static void
on_target_done(GObject *source, GAsyncResult *res, gpointer data)
{
    Census *c = data;
    GError *error = NULL;

    c->busy--;
    g_clear_pointer(&c->target, group_target_free);
    if (!kd_graph_client_list_finish(c->client, res, &error)) {
        if (g_error_matches(error, KD_GRAPH_ERROR, KD_GRAPH_ERROR_NOT_FOUND)) {
            g_error_free(error); /* a deleted group names nobody */
        } else if (g_error_matches(error, KD_GRAPH_ERROR, KD_GRAPH_ERROR_FORBIDDEN)) {
            g_info("census: cannot read the members of a group the methods policy targets "
                   "(%s): MFA-capable counts follow registration only",
                   error->message);
            c->result->policy_known = FALSE;
            g_error_free(error);
        } else {
            fail_from(c, error);
        }
    }
    next_target(c);
}

static void
next_target(Census *c)
{
    g_autofree char *escaped = NULL, *path = NULL;

    if (stopping(c)) {
        maybe_finish(c);
        return;
    }
    c->target = g_queue_pop_head(&c->targets);
    if (c->target == NULL || !c->result->policy_known) {
        g_clear_pointer(&c->target, group_target_free);
        g_queue_clear_full(&c->targets, group_target_free);
        start_streaming(c);
        return;
    }
    escaped = kd_graph_escape_segment(c->target->group_id);
    path = g_strdup_printf("/groups/%s/members?$select=id&$top=999", escaped);
    c->busy++;
    kd_graph_client_list_async(c->client, path, c->opts.call_flags, on_target_page, c, c->cancel,
                               on_target_done, c);
}

static void
parse_targets(Census *c, RuleId id, JsonArray *targets, gboolean exclude)
{
    Rule *r = &c->rules[id];

    for (guint i = 0; targets != NULL && i < json_array_get_length(targets); i++) {
        JsonObject *t = element_object(targets, i);
        const char *tid = kd_json_get_string(t, "id");
        const char *type = kd_json_get_string(t, "targetType");

        if (tid == NULL)
            continue;
        if (g_ascii_strcasecmp(tid, "all_users") == 0) {
            if (exclude)
                r->exclude_all = TRUE;
            else
                r->include_all = TRUE;
        } else if (type != NULL && g_ascii_strcasecmp(type, "user") == 0) {
            g_hash_table_add(exclude ? r->exclude : r->include, g_strdup(tid));
        } else {
            GroupTarget *g = g_new0(GroupTarget, 1);
            g->rule = id;
            g->exclude = exclude;
            g->group_id = g_strdup(tid);
            g_queue_push_tail(&c->targets, g);
        }
    }
}

static void
take_policy(Census *c, JsonObject *policy)
{
    JsonArray *configs = kd_json_get_array(policy, "authenticationMethodConfigurations");
    const char *migration = kd_json_get_string(policy, "policyMigrationState");

    c->legacy_phone = migration == NULL || g_ascii_strcasecmp(migration, "migrationComplete") != 0;
    for (guint i = 0; configs != NULL && i < json_array_get_length(configs); i++) {
        JsonObject *cfg = element_object(configs, i);
        const char *id = kd_json_get_string(cfg, "id");
        const char *state = kd_json_get_string(cfg, "state");

        for (guint k = 0; id != NULL && k < N_RULES; k++) {
            Rule *r = &c->rules[k];
            if (g_ascii_strcasecmp(id, rule_config_ids[k]) != 0)
                continue;
            r->present = TRUE;
            r->enabled = state != NULL && g_ascii_strcasecmp(state, "enabled") == 0;
            if (!r->enabled)
                break;
            parse_targets(c, (RuleId)k, kd_json_get_array(cfg, "includeTargets"), FALSE);
            parse_targets(c, (RuleId)k, kd_json_get_array(cfg, "excludeTargets"), TRUE);
            break;
        }
    }
}

static void
on_policy(GObject *source, GAsyncResult *res, gpointer data)
{
    Census *c = data;
    GError *error = NULL;
    JsonNode *root = kd_graph_client_call_finish(c->client, res, &error);

    c->busy--;
    if (root != NULL) {
        take_policy(c, root_object(root));
        json_node_unref(root);
    } else if (g_error_matches(error, KD_GRAPH_ERROR, KD_GRAPH_ERROR_FORBIDDEN)) {
        g_info("census: cannot read the authentication methods policy (%s): MFA-capable "
               "counts follow registration only (Policy.Read.AuthenticationMethod)",
               error->message);
        c->result->policy_known = FALSE;
        g_error_free(error);
    } else if (error != NULL) {
        fail_from(c, error);
    }
    next_target(c);
}

static gboolean
on_roles_page(JsonArray *page, gpointer data)
{
    Census *c = data;

    c->result->requests++;
    for (guint i = 0; i < json_array_get_length(page); i++) {
        const char *id = kd_json_get_string(element_object(page, i), "principalId");
        if (id != NULL)
            g_hash_table_add(c->admins, g_strdup(id));
    }
    return !stopping(c);
}

static void
on_roles_done(GObject *source, GAsyncResult *res, gpointer data)
{
    Census *c = data;
    GError *error = NULL;

    c->busy--;
    if (!kd_graph_client_list_finish(c->client, res, &error)) {
        if (g_error_matches(error, KD_GRAPH_ERROR, KD_GRAPH_ERROR_FORBIDDEN) ||
            g_error_matches(error, KD_GRAPH_ERROR, KD_GRAPH_ERROR_NOT_FOUND) ||
            g_error_matches(error, KD_GRAPH_ERROR, KD_GRAPH_ERROR_BAD_REQUEST)) {
            g_info("census: cannot read directory role assignments (%s): admins are not "
                   "counted (RoleManagement.Read.Directory)",
                   error->message);
            c->result->admins_known = FALSE;
            g_hash_table_remove_all(c->admins);
            g_error_free(error);
        } else {
            fail_from(c, error);
        }
    }
    if (stopping(c)) {
        maybe_finish(c);
        return;
    }
    c->busy++;
    c->result->requests++;
    kd_graph_client_call_async(c->client, "GET", POLICY_PATH, NULL, c->opts.call_flags, c->cancel,
                               on_policy, c);
}

static void
start_batch(Census *c)
{
    c->result->mode = KD_GRAPH_CENSUS_BATCH;
    c->result->admins_known = TRUE;
    c->result->policy_known = TRUE;
    c->admins = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (guint i = 0; i < N_RULES; i++) {
        c->rules[i].include = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        c->rules[i].exclude = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    }
    c->busy++;
    kd_graph_client_list_async(c->client, ROLES_PATH, c->opts.call_flags, on_roles_page, c,
                               c->cancel, on_roles_done, c);
}

/* --- choosing the path ------------------------------------------------------------------------ */

static void
on_probe(GObject *source, GAsyncResult *res, gpointer data)
{
    Census *c = data;
    GError *error = NULL;
    JsonNode *root = kd_graph_client_call_finish(c->client, res, &error);

    c->busy--;
    if (root != NULL || error == NULL) {
        g_clear_pointer(&root, json_node_unref);
        start_report(c);
        return;
    }
    if (g_error_matches(error, KD_GRAPH_ERROR, KD_GRAPH_ERROR_FORBIDDEN) && !stopping(c)) {
        if (c->opts.mode == KD_GRAPH_CENSUS_AUTO) {
            g_info("census: the registration report is not available (%s): listing users and "
                   "their methods instead",
                   error->message);
            g_error_free(error);
            start_batch(c);
            return;
        }
        fail(c, forbidden(error, "The registration report needs an Entra ID P1 or P2 licence "
                                 "and AuditLog.Read.All"));
        g_error_free(error);
    } else {
        fail_from(c, error);
    }
    maybe_finish(c);
}

void
kd_graph_census_async(KdGraphClient *client, const KdGraphCensusOptions *options,
                      KdGraphCensusRowFunc row, gpointer row_data, GCancellable *cancellable,
                      GAsyncReadyCallback callback, gpointer user_data)
{
    Census *c;

    g_return_if_fail(KD_IS_GRAPH_CLIENT(client));

    c = g_new0(Census, 1);
    c->task = g_task_new(client, cancellable, callback, user_data);
    g_task_set_source_tag(c->task, kd_graph_census_async);
    g_task_set_check_cancellable(c->task, FALSE);
    g_task_set_task_data(c->task, c, census_free);
    c->client = client;
    c->context = g_main_context_ref_thread_default();
    if (options != NULL)
        c->opts = *options;
    if (c->opts.initial_batches == 0)
        c->opts.initial_batches = DEFAULT_INITIAL_BATCHES;
    if (c->opts.max_batches == 0)
        c->opts.max_batches = DEFAULT_MAX_BATCHES;
    c->opts.max_batches = MAX(c->opts.max_batches, 1u);
    c->opts.initial_batches = MIN(c->opts.initial_batches, c->opts.max_batches);
    c->opts.call_flags &= ~(KD_GRAPH_CALL_BETA | KD_GRAPH_CALL_IDEMPOTENT);
    c->row = row;
    c->row_data = row_data;
    c->cancel = g_cancellable_new();
    c->result = g_new0(KdGraphCensusResult, 1);
    c->start_us = g_get_monotonic_time();
    if (cancellable != NULL) {
        c->caller = g_object_ref(cancellable);
        /* Runs at once if already cancelled. */
        c->caller_handler =
            g_cancellable_connect(cancellable, G_CALLBACK(on_caller_cancelled), c, NULL);
    }
    if (g_cancellable_is_cancelled(c->cancel)) {
        maybe_finish(c);
        return;
    }
    if (c->opts.mode == KD_GRAPH_CENSUS_BATCH) {
        start_batch(c);
        return;
    }
    /* One row of the report tells whether it is there at all (licence, permission). */
    c->busy++;
    c->result->requests++;
    kd_graph_client_call_async(c->client, "GET", REPORT_PATH "?$top=1", NULL, c->opts.call_flags,
                               c->cancel, on_probe, c);
}

KdGraphCensusResult *
kd_graph_census_finish(KdGraphClient *client, GAsyncResult *result, GError **error)
{
    g_return_val_if_fail(g_task_is_valid(result, client), NULL);
    g_return_val_if_fail(g_task_get_source_tag(G_TASK(result)) == kd_graph_census_async, NULL);
    return g_task_propagate_pointer(G_TASK(result), error);
}
