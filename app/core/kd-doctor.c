/* kd-doctor: `keydesk doctor`: a read-only checklist of what the tenant must allow for what this
 * desk's configuration enables, each line saying what to change in Entra and why. */
#include "core/kd-doctor.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "graph/kd-b64.h"
#include "graph/kd-graph-auth.h"
#include "graph/kd-graph-client.h"
#include "graph/kd-graph-ops.h"
#include "graph/kd-http.h"
#include "kd-build-config.h"

#define SECRET_MAX      4096
#define CALL_DEADLINE_S 20

#define ENTRA_METHODS "Entra admin center → Protection → Authentication methods"

/* Graph's answer to a report or sign-in request from a tenant without P1/P2 (reference §6.1). */
#define NO_PREMIUM_CODE "Authentication_RequestFromNonPremiumTenantOrB2CTenant"

typedef enum {
    NEED_ALWAYS = 1 << 0,
    NEED_SECURITY_KEY = 1 << 1,
    NEED_AUTHENTICATOR = 1 << 2,
    NEED_GROUP = 1 << 3,
    NEED_EXTENSION = 1 << 4,
    NEED_DASHBOARD = 1 << 5,
} Need;

/* The application permissions (reference §11), least privileged first: any one listed grants. */
static const struct {
    const char *const names[6];
    guint need;
    KdDoctorStatus missing;
    const char *why;
} permissions[] = {
    {{"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"},
     NEED_ALWAYS,
     KD_DOCTOR_FAIL,
     "keydesk reads the visitor's user object with it"},
    {{"UserAuthMethod-Passkey.ReadWrite.All", "UserAuthenticationMethod.ReadWrite.All"},
     NEED_SECURITY_KEY,
     KD_DOCTOR_FAIL,
     "the security-key flow registers FIDO2 keys with it"},
    {{"UserAuthMethod-TAP.ReadWrite.All", "UserAuthenticationMethod.ReadWrite.All"},
     NEED_AUTHENTICATOR,
     KD_DOCTOR_FAIL,
     "the authenticator flow issues and deletes the Temporary Access Pass with it"},
    {{"UserAuthenticationMethod.Read.All", "UserAuthenticationMethod.ReadWrite.All"},
     NEED_AUTHENTICATOR,
     KD_DOCTOR_FAIL,
     "the authenticator flow watches the user's methods for the new Authenticator with it"},
    {{"Policy.Read.AuthenticationMethod", "Policy.Read.All",
      "Policy.ReadWrite.AuthenticationMethod"},
     NEED_SECURITY_KEY | NEED_AUTHENTICATOR,
     KD_DOCTOR_FAIL,
     "keydesk reads the FIDO2, TAP and Authenticator policies with it before a key or pass is "
     "used"},
    {{"GroupMember.ReadWrite.All", "Group.ReadWrite.All", "Directory.ReadWrite.All"},
     NEED_GROUP,
     KD_DOCTOR_FAIL,
     "every registration is recorded by adding the user to group-id with it"},
    {{"User.ReadWrite.All", "Directory.ReadWrite.All"},
     NEED_EXTENSION,
     KD_DOCTOR_FAIL,
     "every registration is stamped in extension-attribute with it"},
    {{"AuditLog.Read.All"},
     NEED_DASHBOARD,
     KD_DOCTOR_WARN,
     "the dashboard reads the registration report and the sign-in logs with it"},
    {{"Policy.Read.All", "Policy.ReadWrite.ConditionalAccess", "Policy.ReadWrite.SecurityDefaults"},
     NEED_DASHBOARD,
     KD_DOCTOR_WARN,
     "the dashboard shows whether Security Defaults are on with it"},
    {{"RoleManagement.Read.Directory", "RoleManagement.Read.All", "Directory.Read.All",
      "RoleManagement.ReadWrite.Directory", "Directory.ReadWrite.All"},
     NEED_DASHBOARD,
     KD_DOCTOR_WARN,
     "the census tells admins apart with it when the registration report is not available"},
};

typedef struct {
    const KdConfig *cfg;
    GCancellable *cancellable;
    GMainContext *context;
    KdDoctorReport *report;
    KdGraphClient *client;
    KdSecret *secret;
    GHashTable *roles; /* the app's permissions from its token; NULL when unknown */
    char *user_id;     /* a user to probe reads on */
    guint need;
} Doctor;

/* --- the report ------------------------------------------------------------------------------- */

const char *
kd_doctor_status_name(KdDoctorStatus status)
{
    switch (status) {
    case KD_DOCTOR_PASS:
        return "PASS";
    case KD_DOCTOR_WARN:
        return "WARN";
    case KD_DOCTOR_FAIL:
        return "FAIL";
    case KD_DOCTOR_SKIP:
        return "SKIP";
    }
    return "????";
}

static void
check_free(gpointer p)
{
    KdDoctorCheck *c = p;

    g_free(c->name);
    g_free(c->text);
    g_free(c);
}

void
kd_doctor_report_free(KdDoctorReport *report)
{
    if (report == NULL)
        return;
    g_ptr_array_unref(report->checks);
    g_free(report);
}

static void add(Doctor *d, KdDoctorStatus status, const char *name, const char *format, ...)
    G_GNUC_PRINTF(4, 5);

static void
add(Doctor *d, KdDoctorStatus status, const char *name, const char *format, ...)
{
    KdDoctorCheck *c = g_new0(KdDoctorCheck, 1);
    va_list ap;

    c->status = status;
    c->name = g_strdup(name);
    va_start(ap, format);
    c->text = g_strdup_vprintf(format, ap);
    va_end(ap);
    g_ptr_array_add(d->report->checks, c);
}

int
kd_doctor_report_exit_status(const KdDoctorReport *report)
{
    if (report->unreachable)
        return EX_UNAVAILABLE;
    for (guint i = 0; i < report->checks->len; i++) {
        const KdDoctorCheck *c = g_ptr_array_index(report->checks, i);
        if (c->status == KD_DOCTOR_FAIL)
            return 1;
    }
    return 0;
}

void
kd_doctor_report_print(const KdDoctorReport *report, FILE *out)
{
    guint counts[4] = {0};

    for (guint i = 0; i < report->checks->len; i++) {
        const KdDoctorCheck *c = g_ptr_array_index(report->checks, i);
        fprintf(out, "%s  %s: %s\n", kd_doctor_status_name(c->status), c->name, c->text);
        counts[c->status]++;
    }
    if (report->unreachable)
        fprintf(out, "doctor: Microsoft Graph or the identity platform cannot be reached from "
                     "this desk, so nothing else was checked.\n");
    else
        fprintf(out, "doctor: %u passed, %u warnings, %u failed, %u skipped%s\n",
                counts[KD_DOCTOR_PASS], counts[KD_DOCTOR_WARN], counts[KD_DOCTOR_FAIL],
                counts[KD_DOCTOR_SKIP],
                counts[KD_DOCTOR_FAIL] > 0 ? ": fix every FAIL line before the desk goes live."
                                           : ".");
}

/* --- waiting for asynchronous calls on the private context ------------------------------------ */

static void
on_ready(GObject *source, GAsyncResult *res, gpointer data)
{
    *(GAsyncResult **)data = g_object_ref(res);
}

static GAsyncResult *
wait_for(Doctor *d, GAsyncResult **slot)
{
    while (*slot == NULL)
        g_main_context_iteration(d->context, TRUE);
    return *slot;
}

/* GET @path from Graph; NULL with @error on failure. */
static JsonNode *
graph_get(Doctor *d, const char *path, GError **error)
{
    GAsyncResult *res = NULL;
    JsonNode *node;

    kd_graph_client_call_async(d->client, "GET", path, NULL, 0, d->cancellable, on_ready, &res);
    node = kd_graph_client_call_finish(d->client, wait_for(d, &res), error);
    g_object_unref(res);
    return node;
}

static KdGraphMethodPolicy *
get_policy(Doctor *d, KdGraphPolicyKind kind, GError **error)
{
    GAsyncResult *res = NULL;
    KdGraphMethodPolicy *policy;

    kd_graph_get_method_policy_async(d->client, kind, 0, d->cancellable, on_ready, &res);
    policy = kd_graph_get_method_policy_finish(d->client, wait_for(d, &res), error);
    g_object_unref(res);
    return policy;
}

static const KdGraphErrorInfo *
info_of(const GError *error)
{
    static const KdGraphErrorInfo none = {0};
    const KdGraphErrorInfo *info = kd_graph_error_get_info(error);

    return info != NULL ? info : &none;
}

static gboolean
is_premium_refusal(const GError *error)
{
    const KdGraphErrorInfo *info = info_of(error);

    return g_error_matches(error, KD_GRAPH_ERROR, KD_GRAPH_ERROR_FORBIDDEN) &&
           g_strcmp0(info->graph_code, NO_PREMIUM_CODE) == 0;
}

static gboolean
is_unreachable(const GError *error)
{
    return g_error_matches(error, KD_GRAPH_ERROR, KD_GRAPH_ERROR_NETWORK) ||
           g_error_matches(error, KD_GRAPH_ERROR, KD_GRAPH_ERROR_TLS) ||
           g_error_matches(error, KD_GRAPH_ERROR, KD_GRAPH_ERROR_TIMEOUT) ||
           (error != NULL && error->domain == G_TLS_ERROR) ||
           (error != NULL && error->domain == G_IO_ERROR &&
            !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED));
}

static gboolean
is_tls(const GError *error)
{
    return g_error_matches(error, KD_GRAPH_ERROR, KD_GRAPH_ERROR_TLS) ||
           (error != NULL && error->domain == G_TLS_ERROR);
}

/* The FAIL line for a connection that did not happen, and the end of the checks. */
static void
unreachable(Doctor *d, const char *url, const GError *error)
{
    const KdConfig *cfg = d->cfg;

    d->report->unreachable = TRUE;
    if (is_tls(error) && cfg->ca_file != NULL)
        add(d, KD_DOCTOR_FAIL, "Connection",
            "the TLS certificate of %s is not trusted (%s): ca-file %s does not contain the CA "
            "that signed it, so keydesk refuses the connection; put that CA's PEM certificate in "
            "%s (behind a TLS-inspecting proxy, the proxy's CA), or remove ca-file to trust the "
            "system's CAs.",
            url, error->message, cfg->ca_file, cfg->ca_file);
    else if (is_tls(error))
        add(d, KD_DOCTOR_FAIL, "Connection",
            "the TLS certificate of %s is not trusted by the system's CAs (%s), so keydesk "
            "refuses the connection; behind a TLS-inspecting proxy, set ca-file in keydesk.conf "
            "to the proxy CA's PEM bundle.",
            url, error->message);
    else
        add(d, KD_DOCTOR_FAIL, "Connection",
            "cannot reach %s (%s): the desk needs outbound HTTPS to %s and %s; check DNS, the "
            "firewall and the proxy setting in keydesk.conf.",
            url, error->message, cfg->login_url, cfg->graph_url);
}

/* --- connection (no credential needed) -------------------------------------------------------- */

static KdHttpResponse *
http_get(Doctor *d, KdHttp *http, const char *url, GError **error)
{
    GAsyncResult *res = NULL;
    KdHttpResponse *response;

    kd_http_send_async(http, kd_http_request_new("GET", url), d->cancellable, on_ready, &res);
    response = kd_http_send_finish(http, wait_for(d, &res), error);
    g_object_unref(res);
    return response;
}

/* FALSE when the rest cannot be checked (unreachable, or no such tenant). */
static gboolean
check_connection(Doctor *d)
{
    const KdConfig *cfg = d->cfg;
    KdHttpOptions options = {
        .ca_file = cfg->ca_file,
        .proxy = cfg->proxy,
        .user_agent = "keydesk/" KD_VERSION " (doctor)",
        .request_timeout_s = CALL_DEADLINE_S,
    };
    KdHttp *http = kd_http_new(&options, d->context);
    g_autofree char *tenant = g_uri_escape_string(cfg->tenant_id, NULL, FALSE);
    g_autofree char *discovery =
        g_strdup_printf("%s/%s/v2.0/.well-known/openid-configuration", cfg->login_url, tenant);
    g_autofree char *graph = g_strconcat(cfg->graph_url, "/v1.0/organization", NULL);
    g_autoptr(GError) error = NULL;
    KdHttpResponse *response;
    gboolean ok = FALSE;

    /* The identity platform's discovery document: TLS to the login host, and the tenant. */
    response = http_get(d, http, discovery, &error);
    if (response == NULL) {
        unreachable(d, cfg->login_url, error);
        goto out;
    }
    if (kd_http_response_get_status(response) == 400) {
        gsize len = 0;
        const char *body = g_bytes_get_data(kd_http_response_get_body(response), &len);
        g_autofree char *text = g_strndup(body != NULL ? body : "", len);
        if (strstr(text, "AADSTS90002") != NULL) {
            add(d, KD_DOCTOR_FAIL, "Tenant",
                "tenant-id %s is not a tenant the identity platform knows (AADSTS90002), so no "
                "sign-in can work; copy the Tenant ID from Entra admin center → Overview into "
                "tenant-id.",
                cfg->tenant_id);
            kd_http_response_free(&response);
            goto out;
        }
    }
    kd_http_response_free(&response);

    /* Graph itself, unauthenticated: any HTTP answer (401) proves the connection. */
    response = http_get(d, http, graph, &error);
    if (response == NULL) {
        unreachable(d, cfg->graph_url, error);
        goto out;
    }
    kd_http_response_free(&response);
    add(d, KD_DOCTOR_PASS, "Connection", "reached %s (tenant %s) and %s over verified TLS%s%s.",
        cfg->login_url, cfg->tenant_id, cfg->graph_url,
        cfg->proxy != NULL ? " through the proxy " : "",
        cfg->proxy != NULL ? "in keydesk.conf" : "");
    ok = TRUE;
out:
    kd_http_free(&http);
    return ok;
}

/* --- the app credential and its token --------------------------------------------------------- */

/* The secret file's first line, straight into locked memory; NULL with a reason. */
static KdSecret *
read_secret(const char *path, char **why)
{
    KdSecret *secret = NULL;
    guint8 buf[256];
    struct stat st;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    if (fd < 0) {
        *why = g_strdup_printf("cannot open %s: %s", path, g_strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > SECRET_MAX) {
        *why = g_strdup_printf("%s is not a regular file of at most %d bytes", path, SECRET_MAX);
        goto fail;
    }
    secret = kd_secret_new((gsize)st.st_size + 1);
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        if (!kd_secret_append(secret, buf, (gsize)n)) {
            *why = g_strdup_printf("%s grew while it was read", path);
            goto fail;
        }
    }
    if (n < 0) {
        *why = g_strdup_printf("cannot read %s: %s", path, g_strerror(errno));
        goto fail;
    }
    /* The secret alone on one line: the line end is not part of it. */
    while (kd_secret_get_length(secret) > 0) {
        char last = (char)kd_secret_get_data(secret)[kd_secret_get_length(secret) - 1];
        if (last != '\n' && last != '\r' && last != ' ' && last != '\t')
            break;
        kd_secret_backspace(secret);
    }
    if (kd_secret_get_length(secret) == 0) {
        *why = g_strdup_printf("%s is empty", path);
        goto fail;
    }
    memset(buf, 0, sizeof(buf));
    close(fd);
    return secret;
fail:
    memset(buf, 0, sizeof(buf));
    if (secret != NULL)
        kd_secret_unref(secret);
    close(fd);
    return NULL;
}

/* The "roles" claim of an app-only access token: the application permissions granted. Graph's
 * tokens are JWTs today; if one ever is not, the permission lines are skipped. */
static GHashTable *
token_roles(KdSecret *token)
{
    const char *jwt = kd_secret_get_string(token);
    const char *dot1 = strchr(jwt, '.');
    const char *dot2 = dot1 != NULL ? strchr(dot1 + 1, '.') : NULL;
    g_autoptr(JsonParser) parser = NULL;
    guint8 *payload = NULL;
    gsize len = 0;
    GHashTable *roles = NULL;
    JsonNode *root;
    JsonObject *obj;

    if (dot2 == NULL || !kd_b64_decode(dot1 + 1, dot2 - dot1 - 1, &payload, &len))
        return NULL;
    parser = json_parser_new();
    if (json_parser_load_from_data(parser, (const char *)payload, (gssize)len, NULL) &&
        (root = json_parser_get_root(parser)) != NULL && JSON_NODE_HOLDS_OBJECT(root) &&
        (obj = json_node_get_object(root)) != NULL && json_object_has_member(obj, "roles") &&
        JSON_NODE_HOLDS_ARRAY(json_object_get_member(obj, "roles"))) {
        JsonArray *a = json_object_get_array_member(obj, "roles");
        roles = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        for (guint i = 0; i < json_array_get_length(a); i++) {
            JsonNode *n = json_array_get_element(a, i);
            if (JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING)
                g_hash_table_add(roles, g_strdup(json_node_get_string(n)));
        }
    }
    memset(payload, 0, len);
    g_free(payload);
    return roles;
}

static void
credential_refused(Doctor *d, const GError *error)
{
    const KdConfig *cfg = d->cfg;
    const KdGraphErrorInfo *info = info_of(error);
    const char *what = cfg->client_secret_file != NULL ? "client secret" : "certificate";
    g_autofree char *registration = g_strdup_printf(
        "Entra admin center → Applications → App registrations → %s", cfg->client_id);

    switch (info->aadsts) {
    case 7000215:
        add(d, KD_DOCTOR_FAIL, "App credential",
            "Entra refused the client secret (AADSTS7000215, invalid client secret): %s does not "
            "hold a current secret of app %s; create one under %s → Certificates & secrets → New "
            "client secret and put its Value (not its Secret ID) in %s.",
            cfg->client_secret_file, cfg->client_id, registration, cfg->client_secret_file);
        break;
    case 7000222:
        add(d, KD_DOCTOR_FAIL, "App credential",
            "the client secret in %s has expired (AADSTS7000222); create a new one under %s → "
            "Certificates & secrets → New client secret and put its Value in %s.",
            cfg->client_secret_file, registration, cfg->client_secret_file);
        break;
    case 700016:
        add(d, KD_DOCTOR_FAIL, "App credential",
            "there is no app %s in tenant %s (AADSTS700016); set client-id to the Application "
            "(client) ID shown under Entra admin center → Applications → App registrations → "
            "your keydesk app → Overview.",
            cfg->client_id, cfg->tenant_id);
        break;
    case 700027:
        add(d, KD_DOCTOR_FAIL, "App credential",
            "Entra refused the client assertion signed with %s (AADSTS700027): the certificate is "
            "not (or no longer) registered on app %s; upload it under %s → Certificates & "
            "secrets → Certificates → Upload certificate.",
            cfg->certificate_file, cfg->client_id, registration);
        break;
    case 7000112:
        add(d, KD_DOCTOR_FAIL, "App credential",
            "app %s is disabled in the tenant (AADSTS7000112); enable it under Entra admin "
            "center → Applications → Enterprise applications → %s → Properties → Enabled for "
            "users to sign in: Yes.",
            cfg->client_id, cfg->client_id);
        break;
    default:
        add(d, KD_DOCTOR_FAIL, "App credential",
            "the identity platform refused the app's %s%s%.0u (%s); check client-id, tenant-id "
            "and the credential against %s.",
            what, info->aadsts != 0 ? " with AADSTS" : "", info->aadsts, error->message,
            registration);
        break;
    }
}

/* FALSE when nothing more can be checked with the app's own token. */
static gboolean
check_app_token(Doctor *d)
{
    const KdConfig *cfg = d->cfg;
    g_autofree char *why = NULL;
    g_autoptr(GError) error = NULL;
    GAsyncResult *res = NULL;
    KdSecret *token;
    KdGraphOptions options = {
        .graph_url = cfg->graph_url,
        .login_url = cfg->login_url,
        .tenant = cfg->tenant_id,
        .client_id = cfg->client_id,
        .certificate_file = cfg->certificate_file,
        .private_key_file = cfg->private_key_file,
        .ca_file = cfg->ca_file,
        .proxy = cfg->proxy,
        .user_agent = "keydesk/" KD_VERSION " (doctor)",
    };

    if (cfg->client_secret_file != NULL) {
        d->secret = read_secret(cfg->client_secret_file, &why);
        if (d->secret == NULL) {
            add(d, KD_DOCTOR_FAIL, "App credential",
                "%s, so keydesk cannot sign in as app %s; put the client secret's Value alone on "
                "one line in %s (mode 0600).",
                why, cfg->client_id, cfg->client_secret_file);
            return FALSE;
        }
        options.client_secret = d->secret;
    }
    d->client = kd_graph_client_new(&options, &error);
    if (d->client == NULL) {
        add(d, KD_DOCTOR_FAIL, "App credential", "%s.", error->message);
        return FALSE;
    }
    kd_graph_client_set_deadline(d->client, CALL_DEADLINE_S);
    kd_graph_client_set_max_attempts(d->client, 2);

    kd_graph_auth_app_token_async(kd_graph_client_get_auth(d->client), FALSE, d->cancellable,
                                  on_ready, &res);
    token = kd_graph_auth_app_token_finish(kd_graph_client_get_auth(d->client), wait_for(d, &res),
                                           &error);
    g_object_unref(res);
    if (token == NULL) {
        if (is_unreachable(error))
            unreachable(d, cfg->login_url, error);
        else
            credential_refused(d, error);
        return FALSE;
    }
    d->roles = token_roles(token);
    kd_secret_unref(token);
    add(d, KD_DOCTOR_PASS, "App credential",
        "the identity platform issued app %s a token for its %s.", cfg->client_id,
        cfg->client_secret_file != NULL ? "client secret" : "certificate");
    return TRUE;
}

/* --- permissions ------------------------------------------------------------------------------ */

static gboolean
has_role(Doctor *d, const char *name)
{
    return d->roles != NULL && g_hash_table_contains(d->roles, name);
}

static void
check_permissions(Doctor *d)
{
    GString *granted = g_string_new(NULL);
    guint missing = 0;

    if (d->roles == NULL) {
        add(d, KD_DOCTOR_SKIP, "Permissions",
            "the access token does not list the app's permissions, so only the read checks "
            "below test them.");
        g_string_free(granted, TRUE);
        return;
    }
    for (gsize i = 0; i < G_N_ELEMENTS(permissions); i++) {
        const char *by = NULL;

        if ((permissions[i].need & d->need) == 0)
            continue;
        for (gsize k = 0; k < G_N_ELEMENTS(permissions[i].names) && by == NULL; k++)
            if (permissions[i].names[k] != NULL && has_role(d, permissions[i].names[k]))
                by = permissions[i].names[k];
        if (by != NULL) {
            g_string_append_printf(granted, "%s%s", granted->len > 0 ? ", " : "", by);
            continue;
        }
        missing++;
        add(d, permissions[i].missing, "Permission",
            "%s is not granted to app %s, and %s: Entra admin center → Applications → App "
            "registrations → %s → API permissions → Add a permission → Microsoft Graph → "
            "Application permissions → %s, then Grant admin consent.",
            permissions[i].names[0], d->cfg->client_id, permissions[i].why, d->cfg->client_id,
            permissions[i].names[0]);
    }
    if (missing == 0)
        add(d, KD_DOCTOR_PASS, "Permissions",
            "app %s has every application permission the enabled features need (%s).",
            d->cfg->client_id, granted->str);
    g_string_free(granted, TRUE);
}

/* --- read probes ------------------------------------------------------------------------------ */

/* A read the features depend on: FALSE (and a @status line saying why it matters) when Graph
 * refuses it. */
static gboolean
probe(Doctor *d, KdDoctorStatus status, const char *what, const char *path, const char *permission,
      const char *why, JsonNode **out)
{
    g_autoptr(GError) error = NULL;
    JsonNode *node = graph_get(d, path, &error);

    if (node != NULL || error == NULL) {
        if (out != NULL)
            *out = node;
        else if (node != NULL)
            json_node_unref(node);
        return TRUE;
    }
    if (is_unreachable(error)) {
        unreachable(d, d->cfg->graph_url, error);
        return FALSE;
    }
    add(d, status, "Read check",
        "Graph refused to %s (%s), and %s: grant app %s the application permission %s (Entra "
        "admin center → Applications → App registrations → %s → API permissions), then Grant "
        "admin consent.",
        what, error->message, why, d->cfg->client_id, permission, d->cfg->client_id);
    return FALSE;
}

static void
check_reads(Doctor *d)
{
    g_autofree char *user = NULL, *methods = NULL, *taps = NULL, *keys = NULL;
    gboolean authenticator = (d->need & NEED_AUTHENTICATOR) != 0;
    JsonNode *users = NULL;
    gboolean ok;

    ok = probe(d, KD_DOCTOR_FAIL, "list users", "/users?$top=1&$select=id,userPrincipalName",
               "User.Read.All", "keydesk looks visitors up with it", &users);
    if (users != NULL) {
        JsonObject *o = JSON_NODE_HOLDS_OBJECT(users) ? json_node_get_object(users) : NULL;
        JsonArray *a = o != NULL && json_object_has_member(o, "value")
                           ? json_object_get_array_member(o, "value")
                           : NULL;
        if (a != NULL && json_array_get_length(a) > 0) {
            JsonObject *u = json_array_get_object_element(a, 0);
            if (u != NULL && json_object_has_member(u, "id"))
                d->user_id = g_strdup(json_object_get_string_member(u, "id"));
        }
        json_node_unref(users);
    }
    if (!ok || d->report->unreachable)
        return;
    if (d->user_id == NULL) {
        add(d, KD_DOCTOR_SKIP, "Read check",
            "the tenant has no user to read authentication methods of.");
        return;
    }
    user = kd_graph_escape_segment(d->user_id);
    /* Every desk's dashboard reads methods (the census on tenants without P1/P2). */
    methods = g_strdup_printf("/users/%s/authentication/methods", user);
    ok = probe(d, authenticator ? KD_DOCTOR_FAIL : KD_DOCTOR_WARN,
               "read a user's authentication methods", methods, "UserAuthenticationMethod.Read.All",
               authenticator ? "the authenticator flow watches for the new Authenticator with it"
                             : "the dashboard's census reads methods with it",
               NULL);
    if (d->report->unreachable)
        return;
    if (authenticator) {
        taps = g_strdup_printf("/users/%s/authentication/temporaryAccessPassMethods", user);
        ok = probe(d, KD_DOCTOR_FAIL, "read a user's Temporary Access Passes", taps,
                   "UserAuthMethod-TAP.ReadWrite.All",
                   "the authenticator flow deletes a pass once it is used", NULL) &&
             ok;
        if (d->report->unreachable)
            return;
    }
    if (d->need & NEED_SECURITY_KEY) {
        keys = g_strdup_printf("/users/%s/authentication/fido2Methods", user);
        ok = probe(d, KD_DOCTOR_FAIL, "read a user's FIDO2 keys", keys,
                   "UserAuthMethod-Passkey.ReadWrite.All",
                   "the security-key flow confirms a registration with it", NULL) &&
             ok;
        if (d->report->unreachable)
            return;
    }
    if (ok)
        add(d, KD_DOCTOR_PASS, "Read check", "listed a user and read their %s.",
            (d->need & NEED_SECURITY_KEY) && authenticator
                ? "authentication methods, Temporary Access Passes and FIDO2 keys"
            : authenticator                 ? "authentication methods and Temporary Access Passes"
            : (d->need & NEED_SECURITY_KEY) ? "authentication methods and FIDO2 keys"
                                            : "authentication methods");
}

/* A declared directory extension reads back with $select (Graph: 400 when it is not declared). */
static void
check_extension(Doctor *d)
{
    const char *name = d->cfg->extension_attribute;
    g_autofree char *user = NULL, *path = NULL;
    g_autoptr(GError) error = NULL;
    JsonNode *node;

    if (d->user_id == NULL)
        return;
    user = kd_graph_escape_segment(d->user_id);
    path = g_strdup_printf("/users/%s?$select=id,%s", user, name);
    node = graph_get(d, path, &error);
    if (node != NULL) {
        add(d, KD_DOCTOR_PASS, "Extension attribute", "%s is a directory extension of the tenant.",
            name);
        json_node_unref(node);
    } else if (is_unreachable(error)) {
        unreachable(d, d->cfg->graph_url, error);
    } else if (g_error_matches(error, KD_GRAPH_ERROR, KD_GRAPH_ERROR_BAD_REQUEST)) {
        add(d, KD_DOCTOR_FAIL, "Extension attribute",
            "%s is not a directory extension the tenant knows (%s), so no registration can be "
            "stamped: declare it on the app named in its name (POST "
            "/applications/{object id}/extensionProperties with dataType DateTime and "
            "targetObjects User), or remove extension-attribute from %s.",
            name, error->message, d->cfg->source);
    } else {
        add(d, KD_DOCTOR_FAIL, "Extension attribute",
            "Graph refused to read %s (%s): grant app %s User.ReadWrite.All, then Grant admin "
            "consent.",
            name, error->message, d->cfg->client_id);
    }
}

/* --- policies --------------------------------------------------------------------------------- */

/* "all users", "group X", "2 groups", for a policy's include targets. */
static char *
targets_text(const KdGraphMethodPolicy *p, gboolean *all)
{
    GString *s = g_string_new(NULL);

    *all = FALSE;
    for (guint i = 0; p->include_targets != NULL && i < p->include_targets->len; i++) {
        const KdGraphPolicyTarget *t = g_ptr_array_index(p->include_targets, i);
        if (g_strcmp0(t->id, "all_users") == 0)
            *all = TRUE;
        else
            g_string_append_printf(s, "%s%s %s", s->len > 0 ? ", " : "",
                                   g_strcmp0(t->target_type, "user") == 0 ? "user" : "group",
                                   t->id);
    }
    if (*all)
        g_string_assign(s, "all users");
    else if (s->len == 0)
        g_string_assign(s, "nobody");
    return g_string_free(s, FALSE);
}

static gboolean
policy_fetch_failed(Doctor *d, const char *name, const GError *error)
{
    if (is_unreachable(error)) {
        unreachable(d, d->cfg->graph_url, error);
        return TRUE;
    }
    add(d, KD_DOCTOR_FAIL, name,
        "Graph refused to read it (%s): grant app %s Policy.Read.AuthenticationMethod under "
        "Entra admin center → Applications → App registrations → %s → API permissions, then "
        "Grant admin consent; keydesk checks keys and passes against it before using them.",
        error->message, d->cfg->client_id, d->cfg->client_id);
    return TRUE;
}

static void
check_fido2_policy(Doctor *d)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(KdGraphMethodPolicy) p = get_policy(d, KD_GRAPH_POLICY_FIDO2, &error);
    g_autofree char *targets = NULL;
    gboolean all = FALSE, problem = FALSE;
    guint n_aaguids;

    if (p == NULL) {
        policy_fetch_failed(d, "FIDO2 policy", error);
        return;
    }
    targets = targets_text(p, &all);
    if (!p->enabled) {
        add(d, KD_DOCTOR_FAIL, "FIDO2 policy",
            "the Passkey (FIDO2) method is disabled, so Graph refuses every key the desk "
            "registers: " ENTRA_METHODS " → Passkey (FIDO2) → Enable and target → Enable: Yes.");
        return;
    }
    if (!all) {
        problem = TRUE;
        add(d, KD_DOCTOR_WARN, "FIDO2 policy",
            "only %s may register keys, not All users, and Graph refuses a key for anyone else: "
            "make sure visitors are in it, or target All users under " ENTRA_METHODS
            " → Passkey (FIDO2) → Enable and target.",
            targets);
    }
    if (!p->is_self_service_registration_allowed) {
        problem = TRUE;
        add(d, KD_DOCTOR_FAIL, "FIDO2 policy",
            "'Allow self-service set up' is off. Graph's FIDO2 provisioning API fails without it: "
            "Entra admin center → Protection → Authentication methods → Passkey (FIDO2) → "
            "Configure → Allow self-service set up: Yes.");
    }
    if (p->is_attestation_enforced) {
        problem = TRUE;
        add(d, KD_DOCTOR_WARN, "FIDO2 policy",
            "'Enforce attestation' is on, so only keys whose attestation Entra can verify are "
            "accepted: hand out keys listed in the FIDO Alliance Metadata Service (YubiKey 5, "
            "for example), or set Enforce attestation: No under " ENTRA_METHODS
            " → Passkey (FIDO2) → Configure.");
    }
    n_aaguids =
        p->key_restrictions_aaguids != NULL ? g_strv_length(p->key_restrictions_aaguids) : 0;
    if (p->key_restrictions_enforced && g_strcmp0(p->key_restrictions_type, "allow") == 0) {
        problem = TRUE;
        if (n_aaguids == 0)
            add(d, KD_DOCTOR_FAIL, "FIDO2 policy",
                "key restrictions allow an empty list of key models, so Graph refuses every "
                "key: add the AAGUIDs of the keys you hand out, or set Enforce key restrictions: "
                "No under " ENTRA_METHODS " → Passkey (FIDO2) → Configure.");
        else
            add(d, KD_DOCTOR_WARN, "FIDO2 policy",
                "key restrictions allow only %u key model%s (AAGUID %s%s), and the desk refuses "
                "any other key before touching it: hand out only those models, or edit Restrict "
                "specific keys under " ENTRA_METHODS " → Passkey (FIDO2) → Configure.",
                n_aaguids, n_aaguids == 1 ? "" : "s", p->key_restrictions_aaguids[0],
                n_aaguids > 1 ? ", …" : "");
    } else if (p->key_restrictions_enforced && n_aaguids > 0) {
        problem = TRUE;
        add(d, KD_DOCTOR_WARN, "FIDO2 policy",
            "key restrictions block %u key model%s (AAGUID %s%s), and the desk refuses those "
            "keys before touching them: do not hand them out, or edit Restrict specific keys "
            "under " ENTRA_METHODS " → Passkey (FIDO2) → Configure.",
            n_aaguids, n_aaguids == 1 ? "" : "s", p->key_restrictions_aaguids[0],
            n_aaguids > 1 ? ", …" : "");
    }
    if (!problem)
        add(d, KD_DOCTOR_PASS, "FIDO2 policy",
            "enabled for all users, self-service set up allowed, attestation not enforced, no key "
            "restrictions.");
}

static void
check_tap_policy(Doctor *d)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(KdGraphMethodPolicy) p = get_policy(d, KD_GRAPH_POLICY_TEMPORARY_ACCESS_PASS, &error);
    g_autofree char *targets = NULL;
    guint lifetime = d->cfg->tap_lifetime_min;
    gboolean all = FALSE, problem = FALSE;

    if (p == NULL) {
        policy_fetch_failed(d, "TAP policy", error);
        return;
    }
    targets = targets_text(p, &all);
    if (!p->enabled) {
        add(d, KD_DOCTOR_FAIL, "TAP policy",
            "Temporary Access Pass is disabled, so the authenticator flow cannot give visitors a "
            "pass to sign in with on their phone: " ENTRA_METHODS
            " → Temporary Access Pass → Enable and target → Enable: Yes.");
        return;
    }
    if (!all) {
        problem = TRUE;
        add(d, KD_DOCTOR_WARN, "TAP policy",
            "only %s can be given a pass, not All users, and Graph refuses a pass for anyone "
            "else: make sure visitors are in it, or target All users under " ENTRA_METHODS
            " → Temporary Access Pass → Enable and target.",
            targets);
    }
    if (lifetime < p->minimum_lifetime_minutes || lifetime > p->maximum_lifetime_minutes) {
        problem = TRUE;
        add(d, KD_DOCTOR_FAIL, "TAP policy",
            "tap-lifetime = %u minutes is outside the policy's %u–%u minutes, so Graph refuses "
            "every pass the desk asks for: set tap-lifetime between %u and %u in %s, or change "
            "Minimum/Maximum lifetime under " ENTRA_METHODS " → Temporary Access Pass → Configure.",
            lifetime, p->minimum_lifetime_minutes, p->maximum_lifetime_minutes,
            p->minimum_lifetime_minutes, p->maximum_lifetime_minutes, d->cfg->source);
    }
    if (!problem)
        add(d, KD_DOCTOR_PASS, "TAP policy",
            "enabled for all users; tap-lifetime = %u minutes is within the policy's %u–%u "
            "minutes; passes are one-time (%s).",
            lifetime, p->minimum_lifetime_minutes, p->maximum_lifetime_minutes,
            p->is_usable_once ? "the policy requires it" : "keydesk asks for it");
}

static void
check_authenticator_policy(Doctor *d)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(KdGraphMethodPolicy) p =
        get_policy(d, KD_GRAPH_POLICY_MICROSOFT_AUTHENTICATOR, &error);
    g_autofree char *targets = NULL;
    gboolean all = FALSE;

    if (p == NULL) {
        policy_fetch_failed(d, "Authenticator policy", error);
        return;
    }
    targets = targets_text(p, &all);
    if (!p->enabled)
        add(d, KD_DOCTOR_FAIL, "Authenticator policy",
            "Microsoft Authenticator is disabled, so visitors cannot register the "
            "app: " ENTRA_METHODS " → Microsoft Authenticator → Enable and target → Enable: Yes.");
    else if (!all)
        add(d, KD_DOCTOR_WARN, "Authenticator policy",
            "only %s may register Microsoft Authenticator, not All users: make sure visitors are "
            "in it, or target All users under " ENTRA_METHODS
            " → Microsoft Authenticator → Enable and target.",
            targets);
    else
        add(d, KD_DOCTOR_PASS, "Authenticator policy",
            "Microsoft Authenticator is enabled for all users.");
}

/* --- tracking --------------------------------------------------------------------------------- */

static void
check_group(Doctor *d)
{
    const char *gid = d->cfg->group_id;
    g_autofree char *escaped = kd_graph_escape_segment(gid);
    g_autofree char *path = g_strdup_printf(
        "/groups/%s?$select=id,displayName,isAssignableToRole,groupTypes,membershipRule", escaped);
    g_autofree char *members = g_strdup_printf("/groups/%s/members?$top=1&$select=id", escaped);
    g_autoptr(GError) error = NULL;
    JsonNode *node = graph_get(d, path, &error);
    JsonObject *o;
    const char *name;
    gboolean role_assignable, dynamic = FALSE;

    if (node == NULL) {
        if (is_unreachable(error))
            unreachable(d, d->cfg->graph_url, error);
        else if (g_error_matches(error, KD_GRAPH_ERROR, KD_GRAPH_ERROR_NOT_FOUND))
            add(d, KD_DOCTOR_FAIL, "Tracking group",
                "group-id %s does not exist in the tenant, so no registration can be recorded: "
                "create a security group (Entra admin center → Groups → New group, membership "
                "type Assigned, not role-assignable) and put its Object ID in group-id.",
                gid);
        else
            add(d, KD_DOCTOR_FAIL, "Tracking group",
                "Graph refused to read group %s (%s): grant app %s GroupMember.ReadWrite.All, "
                "then Grant admin consent.",
                gid, error->message, d->cfg->client_id);
        return;
    }
    o = JSON_NODE_HOLDS_OBJECT(node) ? json_node_get_object(node) : NULL;
    name = o != NULL ? json_object_get_string_member_with_default(o, "displayName", gid) : gid;
    role_assignable =
        o != NULL && json_object_get_boolean_member_with_default(o, "isAssignableToRole", FALSE);
    if (o != NULL && json_object_has_member(o, "groupTypes") &&
        JSON_NODE_HOLDS_ARRAY(json_object_get_member(o, "groupTypes"))) {
        JsonArray *types = json_object_get_array_member(o, "groupTypes");
        for (guint i = 0; i < json_array_get_length(types); i++)
            if (g_strcmp0(json_array_get_string_element(types, i), "DynamicMembership") == 0)
                dynamic = TRUE;
    }
    if (dynamic) {
        add(d, KD_DOCTOR_FAIL, "Tracking group",
            "'%s' has dynamic membership, and Graph refuses to add members to it by hand: use a "
            "group with membership type Assigned and put its Object ID in group-id.",
            name);
    } else if (role_assignable && !has_role(d, "RoleManagement.ReadWrite.Directory")) {
        add(d, KD_DOCTOR_FAIL, "Tracking group",
            "'%s' is role-assignable, and adding members to such a group also needs "
            "RoleManagement.ReadWrite.Directory, which app %s does not have (and should not: it "
            "could then make anyone an admin): use a group that is not role-assignable.",
            name, d->cfg->client_id);
    } else {
        JsonNode *m = graph_get(d, members, &error);
        if (m == NULL) {
            if (is_unreachable(error))
                unreachable(d, d->cfg->graph_url, error);
            else
                add(d, KD_DOCTOR_FAIL, "Tracking group",
                    "Graph refused to list the members of '%s' (%s): grant app %s "
                    "GroupMember.ReadWrite.All, then Grant admin consent.",
                    name, error->message, d->cfg->client_id);
        } else {
            json_node_unref(m);
            add(d, KD_DOCTOR_PASS, "Tracking group",
                "'%s' exists, is assigned (not dynamic)%s, and its members can be read.", name,
                role_assignable ? ", is role-assignable with the permission it needs"
                                : ", is not role-assignable");
        }
    }
    json_node_unref(node);
}

/* --- the dashboard: report, Security Defaults, sign-ins --------------------------------------- */

static void
check_dashboard(Doctor *d)
{
    g_autoptr(GError) error = NULL;
    JsonNode *node;

    node = graph_get(d, "/reports/authenticationMethods/userRegistrationDetails?$top=1", &error);
    if (node != NULL) {
        add(d, KD_DOCTOR_PASS, "Registration report",
            "readable (Entra ID P1 or P2), so the dashboard's census reads it in a few "
            "requests.");
        json_node_unref(node);
    } else if (is_unreachable(error)) {
        unreachable(d, d->cfg->graph_url, error);
        return;
    } else if (is_premium_refusal(error)) {
        add(d, KD_DOCTOR_WARN, "Registration report",
            "the tenant has no Entra ID P1 or P2 licence, so Graph refuses the report; the "
            "dashboard's census lists users and reads their methods through $batch instead "
            "(nothing to change; slower for large tenants).");
    } else {
        add(d, KD_DOCTOR_WARN, "Registration report",
            "Graph refused it (%s); the dashboard's census uses $batch instead until app %s has "
            "AuditLog.Read.All (API permissions → Add a permission → Microsoft Graph → "
            "Application permissions, then Grant admin consent).",
            error->message, d->cfg->client_id);
    }
    g_clear_error(&error);

    node = graph_get(d, "/policies/identitySecurityDefaultsEnforcementPolicy", &error);
    if (node != NULL) {
        JsonObject *o = JSON_NODE_HOLDS_OBJECT(node) ? json_node_get_object(node) : NULL;
        gboolean on =
            o != NULL && json_object_get_boolean_member_with_default(o, "isEnabled", FALSE);
        add(d, KD_DOCTOR_PASS, "Security Defaults",
            on ? "on; the dashboard shows who would still be blocked at their next sign-in."
               : "off; the dashboard tracks how ready the tenant is to turn them on.");
        json_node_unref(node);
    } else if (is_unreachable(error)) {
        unreachable(d, d->cfg->graph_url, error);
        return;
    } else {
        add(d, KD_DOCTOR_WARN, "Security Defaults",
            "Graph refused to read the policy (%s), so the dashboard cannot show whether they "
            "are on: grant app %s Policy.Read.All, then Grant admin consent.",
            error->message, d->cfg->client_id);
    }
    g_clear_error(&error);

    node = graph_get(d, "/auditLogs/signIns?$top=1", &error);
    if (node != NULL) {
        add(d, KD_DOCTOR_PASS, "Sign-in logs",
            "readable, so the dashboard can show who still signs in with legacy clients.");
        json_node_unref(node);
    } else if (is_unreachable(error)) {
        unreachable(d, d->cfg->graph_url, error);
    } else if (is_premium_refusal(error)) {
        add(d, KD_DOCTOR_SKIP, "Sign-in logs",
            "Graph serves them only to Entra ID P1 or P2 tenants, so the dashboard shows no "
            "legacy sign-ins (nothing to change).");
    } else {
        add(d, KD_DOCTOR_WARN, "Sign-in logs",
            "Graph refused them (%s), so the dashboard shows no legacy sign-ins: grant app %s "
            "AuditLog.Read.All, then Grant admin consent.",
            error->message, d->cfg->client_id);
    }
}

/* --- the whole run ---------------------------------------------------------------------------- */

static char *
flows_text(guint flows)
{
    GString *s = g_string_new(NULL);

    for (guint f = 1; f <= KD_FLOW_LOST_DEVICE; f <<= 1)
        if (flows & f)
            g_string_append_printf(s, "%s%s", s->len > 0 ? ", " : "", kd_flow_to_string((KdFlow)f));
    return g_string_free(s, FALSE);
}

static void
skip_app_checks(Doctor *d, const char *why)
{
    if (d->need & NEED_SECURITY_KEY)
        add(d, KD_DOCTOR_SKIP, "FIDO2 policy", "%s", why);
    if (d->need & NEED_AUTHENTICATOR) {
        add(d, KD_DOCTOR_SKIP, "TAP policy", "%s", why);
        add(d, KD_DOCTOR_SKIP, "Authenticator policy", "%s", why);
    }
    if (d->need & NEED_GROUP)
        add(d, KD_DOCTOR_SKIP, "Tracking group", "%s", why);
    add(d, KD_DOCTOR_SKIP, "Registration report", "%s", why);
}

static gboolean
has_credential(const KdConfig *cfg)
{
    return cfg->client_secret_file != NULL || cfg->certificate_file != NULL;
}

KdDoctorReport *
kd_doctor_run(const KdConfig *config, GCancellable *cancellable)
{
    Doctor d = {.cfg = config, .cancellable = cancellable};
    g_autofree char *flows = flows_text(config->flows);

    d.report = g_new0(KdDoctorReport, 1);
    d.report->checks = g_ptr_array_new_with_free_func(check_free);
    d.context = g_main_context_new();
    g_main_context_push_thread_default(d.context);

    d.need = NEED_ALWAYS | NEED_DASHBOARD;
    if (config->flows & KD_FLOW_SECURITY_KEY)
        d.need |= NEED_SECURITY_KEY;
    if (config->flows & KD_FLOW_AUTHENTICATOR)
        d.need |= NEED_AUTHENTICATOR;
    if (config->group_id != NULL)
        d.need |= NEED_GROUP;
    if (config->extension_attribute != NULL)
        d.need |= NEED_EXTENSION;

    add(&d, KD_DOCTOR_PASS, "Configuration", "%s is valid (identity-mode %s; flows %s%s%s).",
        config->source, kd_identity_mode_to_string(config->identity_mode), flows,
        config->group_id != NULL ? "; tracking group " : "",
        config->group_id != NULL ? config->group_id : "");
    if (!check_connection(&d))
        goto out;
    if (config->flows & KD_FLOW_LOST_DEVICE)
        add(&d, KD_DOCTOR_SKIP, "Lost-device flow",
            "it always runs with the signed-in staff member's own token, so their role "
            "(Authentication Administrator, or Privileged Authentication Administrator for "
            "admins) is checked when they sign in at the desk, not here.");
    if (!has_credential(config)) {
        /* Operator mode with no standing credential: every Graph call is delegated. */
        add(&d, KD_DOCTOR_SKIP, "App credential",
            "none configured (identity-mode %s): every change is made with the signed-in staff "
            "member's token, so the permission and policy checks below need a staff sign-in; "
            "sign in at the desk as an Authentication Administrator to check them there.",
            kd_identity_mode_to_string(config->identity_mode));
        skip_app_checks(&d, "needs a staff sign-in (no app credential configured).");
        goto out;
    }
    if (!check_app_token(&d)) {
        if (!d.report->unreachable)
            skip_app_checks(&d, "not checked: there is no token without a working app "
                                "credential.");
        goto out;
    }
    check_permissions(&d);
    check_reads(&d);
    if (d.report->unreachable)
        goto out;
    if (d.need & NEED_SECURITY_KEY)
        check_fido2_policy(&d);
    if (!d.report->unreachable && (d.need & NEED_AUTHENTICATOR)) {
        check_tap_policy(&d);
        if (!d.report->unreachable)
            check_authenticator_policy(&d);
    }
    if (!d.report->unreachable && (d.need & NEED_GROUP))
        check_group(&d);
    if (!d.report->unreachable && (d.need & NEED_EXTENSION))
        check_extension(&d);
    if (!d.report->unreachable)
        check_dashboard(&d);
out:
    g_clear_object(&d.client);
    if (d.secret != NULL) {
        kd_secret_wipe(d.secret);
        kd_secret_unref(d.secret);
    }
    g_clear_pointer(&d.roles, g_hash_table_unref);
    g_free(d.user_id);
    /* Let the transport finish its own cleanup (idles) before the context goes. */
    while (g_main_context_iteration(d.context, FALSE))
        ;
    g_main_context_pop_thread_default(d.context);
    g_main_context_unref(d.context);
    return d.report;
}

int
kd_doctor_main(const char *config_path, FILE *out, FILE *err)
{
    g_autoptr(GPtrArray) problems = g_ptr_array_new_with_free_func(g_free);
    KdConfig *cfg = kd_config_load(config_path, problems);
    g_autoptr(KdDoctorReport) report = NULL;
    int status;

    if (cfg == NULL) {
        for (guint i = 0; i < problems->len; i++)
            fprintf(err, "%s\n", (const char *)g_ptr_array_index(problems, i));
        fprintf(err,
                "FAIL  Configuration: %s has %u problem%s (listed above); fix them, then run "
                "keydesk doctor again.\n",
                config_path, problems->len, problems->len == 1 ? "" : "s");
        return EX_CONFIG;
    }
    report = kd_doctor_run(cfg, NULL);
    kd_doctor_report_print(report, out);
    status = kd_doctor_report_exit_status(report);
    kd_config_free(&cfg);
    return status;
}
