/* kd-graph-ops: the typed Graph operations keydesk performs, on top of KdGraphClient. */
#include "graph/kd-json.h"
#include "graph/kd-graph-ops.h"

#include <stdint.h>
#include <string.h>

#include "graph/kd-b64.h"

/* Slack when matching a lost registration by its createdDateTime: Graph's times are whole
 * seconds, and the kiosk's clock and Graph's may differ a little. */
#define CLOCK_SKEW_S        120
#define BATCH_MAX_WAIT_S    300
#define BATCH_DEFAULT_TRIES 5
#define SEARCH_MAX_TOP      25

/* --- small helpers ---------------------------------------------------------------------------- */

/* The caller's flags without IDEMPOTENT (only the operation knows), plus the operation's own. */
static KdGraphCallFlags
op_flags(KdGraphCallFlags caller, KdGraphCallFlags own)
{
    return (KdGraphCallFlags)((caller & ~KD_GRAPH_CALL_IDEMPOTENT) | own);
}

static GError *
local_error(KdGraphErrorCode code, const char *message)
{
    return kd_graph_error_new(code, NULL, "%s", message);
}

static GError *
bad_response(const char *what)
{
    return kd_graph_error_new(KD_GRAPH_ERROR_BAD_RESPONSE, NULL,
                              "Graph sent a response keydesk cannot use: %s", what);
}

static gboolean
contains_ci(const char *haystack, const char *needle)
{
    g_autofree char *h = NULL, *n = NULL;

    if (haystack == NULL)
        return FALSE;
    h = g_ascii_strdown(haystack, -1);
    n = g_ascii_strdown(needle, -1);
    return strstr(h, n) != NULL;
}

/* Percent-encodes everything but RFC 3986 unreserved characters and @keep. */
static char *
escape(const char *text, const char *keep)
{
    return g_uri_escape_string(text, keep, FALSE);
}

/* OData string literal content: ' doubled. */
static char *
double_quotes(const char *text)
{
    GString *s = g_string_new(NULL);

    for (const char *p = text; *p != '\0'; p++) {
        if (*p == '\'')
            g_string_append_c(s, '\'');
        g_string_append_c(s, *p);
    }
    return g_string_free(s, FALSE);
}

static gint64
parse_time(const char *text)
{
    g_autoptr(GDateTime) dt = NULL;

    if (text == NULL)
        return 0;
    dt = g_date_time_new_from_iso8601(text, NULL);
    return dt != NULL ? g_date_time_to_unix(dt) : 0;
}

/* --- JSON: tolerant accessors are in kd-json.h; these build on them ------------------------- */

static char *
dup_string(JsonObject *o, const char *name)
{
    return g_strdup(kd_json_get_string(o, name));
}

static guint
get_uint(JsonObject *o, const char *name)
{
    gint64 v = kd_json_get_int(o, name, 0);

    return v < 0 ? 0 : v > G_MAXUINT ? G_MAXUINT : (guint)v;
}

/* The strings of an array member, NULL-terminated, never NULL; other elements are skipped. */
static char **
get_strv(JsonObject *o, const char *name, gboolean lower)
{
    JsonArray *a = kd_json_get_array(o, name);
    GPtrArray *out = g_ptr_array_new();

    for (guint i = 0; a != NULL && i < json_array_get_length(a); i++) {
        JsonNode *n = json_array_get_element(a, i);
        if (JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING)
            g_ptr_array_add(out, lower ? g_ascii_strdown(json_node_get_string(n), -1)
                                       : g_strdup(json_node_get_string(n)));
    }
    g_ptr_array_add(out, NULL);
    return (char **)g_ptr_array_free(out, FALSE);
}

/* A copy of a NULL-terminated string array, or NULL for NULL. */
static char **
strv_copy(const char *const *strv)
{
    GPtrArray *out;

    if (strv == NULL)
        return NULL;
    out = g_ptr_array_new();
    for (gsize i = 0; strv[i] != NULL; i++)
        g_ptr_array_add(out, g_strdup(strv[i]));
    g_ptr_array_add(out, NULL);
    return (char **)g_ptr_array_free(out, FALSE);
}

static JsonObject *
root_object(JsonNode *root)
{
    return root != NULL && JSON_NODE_HOLDS_OBJECT(root) ? json_node_get_object(root) : NULL;
}

/* A task for an operation. A result that arrived is returned even if the caller cancelled just
 * after: a write that happened must not be reported as cancelled. */
static GTask *
op_task_new(KdGraphClient *client, GCancellable *cancellable, GAsyncReadyCallback callback,
            gpointer user_data, gpointer tag)
{
    GTask *task = g_task_new(client, cancellable, callback, user_data);

    g_task_set_source_tag(task, tag);
    g_task_set_check_cancellable(task, FALSE);
    return task;
}

/* --- the common shape of an operation: one call, then parse ----------------------------------- */

typedef gpointer (*ParseFunc)(JsonNode *root, gpointer data, GError **error);

typedef struct {
    ParseFunc parse;
    GDestroyNotify free_result;
    gpointer data;
    GDestroyNotify free_data;
    JsonNode *body; /* kept alive until the call completes */
} Simple;

static void
simple_free(gpointer p)
{
    Simple *s = p;

    if (s->free_data != NULL && s->data != NULL)
        s->free_data(s->data);
    if (s->body != NULL)
        json_node_unref(s->body);
    g_free(s);
}

static void
simple_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
    GTask *task = user_data;
    Simple *s = g_task_get_task_data(task);
    GError *error = NULL;
    JsonNode *root = kd_graph_client_call_finish(KD_GRAPH_CLIENT(source), res, &error);
    gpointer result;

    if (error != NULL) {
        g_task_return_error(task, error);
        goto out;
    }
    result = s->parse(root, s->data, &error);
    if (result == NULL)
        g_task_return_error(task, error != NULL ? error : bad_response("unexpected shape"));
    else
        g_task_return_pointer(task, result, s->free_result);
out:
    if (root != NULL)
        json_node_unref(root);
    g_object_unref(task);
}

/* @body is consumed (may be NULL). */
static void
simple_call(KdGraphClient *client, const char *method, const char *path, JsonNode *body,
            KdGraphCallFlags flags, ParseFunc parse, GDestroyNotify free_result, gpointer data,
            GDestroyNotify free_data, gpointer tag, GCancellable *cancellable,
            GAsyncReadyCallback callback, gpointer user_data)
{
    GTask *task = op_task_new(client, cancellable, callback, user_data, tag);
    Simple *s = g_new0(Simple, 1);

    s->parse = parse;
    s->free_result = free_result;
    s->data = data;
    s->free_data = free_data;
    s->body = body;
    g_task_set_task_data(task, s, simple_free);
    kd_graph_client_call_async(client, method, path, body, flags, cancellable, simple_done, task);
}

static gpointer
finish_pointer(KdGraphClient *client, GAsyncResult *result, gpointer tag, GError **error)
{
    g_return_val_if_fail(g_task_is_valid(result, client), NULL);
    g_return_val_if_fail(g_task_get_source_tag(G_TASK(result)) == tag, NULL);
    return g_task_propagate_pointer(G_TASK(result), error);
}

static void
report_local(KdGraphClient *client, gpointer tag, GAsyncReadyCallback callback, gpointer user_data,
             KdGraphErrorCode code, const char *message)
{
    g_task_report_error(client, callback, user_data, tag, local_error(code, message));
}

/* A parse result for operations whose success carries nothing. */
#define DONE GINT_TO_POINTER(1)

/* --- users ------------------------------------------------------------------------------------ */

#define USER_SELECT "$select=id,displayName,userPrincipalName,accountEnabled,userType,mail"

void
kd_graph_user_free(KdGraphUser *user)
{
    if (user == NULL)
        return;
    g_free(user->id);
    g_free(user->display_name);
    g_free(user->user_principal_name);
    g_free(user->mail);
    g_free(user->user_type);
    g_free(user);
}

char *
kd_graph_user_path(const char *id_or_upn)
{
    g_return_val_if_fail(id_or_upn != NULL, NULL);
    if (id_or_upn[0] == '$') {
        g_autofree char *doubled = double_quotes(id_or_upn);
        g_autofree char *escaped = escape(doubled, "$'");
        return g_strdup_printf("/users('%s')", escaped);
    } else {
        g_autofree char *escaped = escape(id_or_upn, NULL);
        return g_strconcat("/users/", escaped, NULL);
    }
}

static KdGraphUser *
user_from_json(JsonObject *o)
{
    KdGraphUser *user;

    if (kd_json_get_string(o, "id") == NULL)
        return NULL;
    user = g_new0(KdGraphUser, 1);
    user->id = dup_string(o, "id");
    user->display_name = dup_string(o, "displayName");
    user->user_principal_name = dup_string(o, "userPrincipalName");
    user->mail = dup_string(o, "mail");
    user->user_type = dup_string(o, "userType");
    user->account_enabled = kd_json_get_bool(o, "accountEnabled", FALSE);
    return user;
}

static gpointer
parse_user(JsonNode *root, gpointer data, GError **error)
{
    KdGraphUser *user = user_from_json(root_object(root));

    if (user == NULL)
        g_propagate_error(error, bad_response("a user without an id"));
    return user;
}

void
kd_graph_get_user_async(KdGraphClient *client, const char *id_or_upn, KdGraphCallFlags flags,
                        GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
    g_autofree char *base = NULL, *path = NULL;

    g_return_if_fail(KD_IS_GRAPH_CLIENT(client));
    g_return_if_fail(id_or_upn != NULL);
    if (*id_or_upn == '\0') {
        report_local(client, kd_graph_get_user_async, callback, user_data,
                     KD_GRAPH_ERROR_BAD_REQUEST, "No user was named.");
        return;
    }
    base = kd_graph_user_path(id_or_upn);
    path = g_strconcat(base, "?" USER_SELECT, NULL);
    simple_call(client, "GET", path, NULL,
                op_flags(flags, KD_GRAPH_CALL_INTERACTIVE | KD_GRAPH_CALL_IDEMPOTENT), parse_user,
                (GDestroyNotify)kd_graph_user_free, NULL, NULL, kd_graph_get_user_async,
                cancellable, callback, user_data);
}

KdGraphUser *
kd_graph_get_user_finish(KdGraphClient *client, GAsyncResult *result, GError **error)
{
    return finish_pointer(client, result, kd_graph_get_user_async, error);
}

static gpointer
parse_users(JsonNode *root, gpointer data, GError **error)
{
    JsonArray *value = kd_json_get_array(root_object(root), "value");
    GPtrArray *users;

    if (value == NULL) {
        g_propagate_error(error, bad_response("a user list without \"value\""));
        return NULL;
    }
    users = g_ptr_array_new_with_free_func((GDestroyNotify)kd_graph_user_free);
    for (guint i = 0; i < json_array_get_length(value); i++) {
        JsonNode *n = json_array_get_element(value, i);
        KdGraphUser *user =
            JSON_NODE_HOLDS_OBJECT(n) ? user_from_json(json_node_get_object(n)) : NULL;
        if (user != NULL)
            g_ptr_array_add(users, user);
    }
    return users;
}

void
kd_graph_search_users_async(KdGraphClient *client, const char *prefix, guint top,
                            KdGraphCallFlags flags, GCancellable *cancellable,
                            GAsyncReadyCallback callback, gpointer user_data)
{
    g_autofree char *literal = NULL, *filter = NULL, *escaped = NULL, *path = NULL;

    g_return_if_fail(KD_IS_GRAPH_CLIENT(client));
    g_return_if_fail(prefix != NULL);
    if (*prefix == '\0') {
        report_local(client, kd_graph_search_users_async, callback, user_data,
                     KD_GRAPH_ERROR_BAD_REQUEST, "Type at least one character to search for.");
        return;
    }
    if (top == 0 || top > SEARCH_MAX_TOP)
        top = SEARCH_MAX_TOP;
    literal = double_quotes(prefix);
    filter = g_strdup_printf("startswith(displayName,'%s') or startswith(userPrincipalName,'%s') "
                             "or startswith(mail,'%s')",
                             literal, literal, literal);
    escaped = escape(filter, NULL);
    path = g_strdup_printf("/users?$filter=%s&$top=%u&" USER_SELECT, escaped, top);
    simple_call(client, "GET", path, NULL,
                op_flags(flags, KD_GRAPH_CALL_INTERACTIVE | KD_GRAPH_CALL_IDEMPOTENT), parse_users,
                (GDestroyNotify)g_ptr_array_unref, NULL, NULL, kd_graph_search_users_async,
                cancellable, callback, user_data);
}

GPtrArray *
kd_graph_search_users_finish(KdGraphClient *client, GAsyncResult *result, GError **error)
{
    return finish_pointer(client, result, kd_graph_search_users_async, error);
}

/* --- authentication methods --------------------------------------------------------------------
 */

static const struct {
    KdGraphMethodKind kind;
    const char *collection;
    const char *odata_type;
} method_kinds[] = {
    {KD_GRAPH_METHOD_ANY, "methods", NULL},
    {KD_GRAPH_METHOD_PASSWORD, "passwordMethods", "#microsoft.graph.passwordAuthenticationMethod"},
    {KD_GRAPH_METHOD_EMAIL, "emailMethods", "#microsoft.graph.emailAuthenticationMethod"},
    {KD_GRAPH_METHOD_PHONE, "phoneMethods", "#microsoft.graph.phoneAuthenticationMethod"},
    {KD_GRAPH_METHOD_FIDO2, "fido2Methods", "#microsoft.graph.fido2AuthenticationMethod"},
    {KD_GRAPH_METHOD_MICROSOFT_AUTHENTICATOR, "microsoftAuthenticatorMethods",
     "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod"},
    {KD_GRAPH_METHOD_SOFTWARE_OATH, "softwareOathMethods",
     "#microsoft.graph.softwareOathAuthenticationMethod"},
    {KD_GRAPH_METHOD_TEMPORARY_ACCESS_PASS, "temporaryAccessPassMethods",
     "#microsoft.graph.temporaryAccessPassAuthenticationMethod"},
    {KD_GRAPH_METHOD_WINDOWS_HELLO, "windowsHelloForBusinessMethods",
     "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod"},
    {KD_GRAPH_METHOD_PLATFORM_CREDENTIAL, "platformCredentialMethods",
     "#microsoft.graph.platformCredentialAuthenticationMethod"},
    {KD_GRAPH_METHOD_HARDWARE_OATH, "hardwareOathMethods",
     "#microsoft.graph.hardwareOathAuthenticationMethod"},
};

const char *
kd_graph_method_kind_collection(KdGraphMethodKind kind)
{
    for (gsize i = 0; i < G_N_ELEMENTS(method_kinds); i++)
        if (method_kinds[i].kind == kind)
            return method_kinds[i].collection;
    return NULL;
}

const char *
kd_graph_method_kind_odata_type(KdGraphMethodKind kind)
{
    for (gsize i = 0; i < G_N_ELEMENTS(method_kinds); i++)
        if (method_kinds[i].kind == kind)
            return method_kinds[i].odata_type;
    return NULL;
}

KdGraphMethodKind
kd_graph_method_kind_from_odata_type(const char *odata_type)
{
    if (odata_type == NULL)
        return KD_GRAPH_METHOD_OTHER;
    if (odata_type[0] == '#')
        odata_type++;
    for (gsize i = 0; i < G_N_ELEMENTS(method_kinds); i++)
        if (method_kinds[i].odata_type != NULL &&
            g_ascii_strcasecmp(method_kinds[i].odata_type + 1, odata_type) == 0)
            return method_kinds[i].kind;
    return KD_GRAPH_METHOD_OTHER;
}

void
kd_graph_method_free(KdGraphMethod *m)
{
    if (m == NULL)
        return;
    g_free(m->id);
    g_free(m->odata_type);
    g_free(m->display_name);
    g_free(m->created);
    g_free(m->aaguid);
    g_free(m->model);
    g_free(m->attestation_level);
    g_free(m->device_tag);
    g_free(m->phone_app_version);
    g_free(m->phone_number);
    g_free(m->phone_type);
    g_free(m->email_address);
    g_free(m->start);
    g_free(m->usability_reason);
    if (m->json != NULL)
        json_object_unref(m->json);
    g_free(m);
}

/* A method from Graph's JSON; @collection is the kind of the collection it came from (typed
 * collections leave out @odata.type). NULL without an id. */
static KdGraphMethod *
method_from_json(JsonObject *o, KdGraphMethodKind collection)
{
    KdGraphMethod *m;
    const char *type;

    if (o == NULL || kd_json_get_string(o, "id") == NULL)
        return NULL;
    m = g_new0(KdGraphMethod, 1);
    type = kd_json_get_string(o, "@odata.type");
    if (type != NULL) {
        m->kind = kd_graph_method_kind_from_odata_type(type);
        m->odata_type = g_strdup(type);
    } else {
        m->kind = collection == KD_GRAPH_METHOD_ANY ? KD_GRAPH_METHOD_OTHER : collection;
        m->odata_type = g_strdup(kd_graph_method_kind_odata_type(m->kind));
    }
    m->id = dup_string(o, "id");
    m->display_name = dup_string(o, "displayName");
    m->created = dup_string(o, "createdDateTime");
    m->created_unix = parse_time(m->created);
    switch (m->kind) {
    case KD_GRAPH_METHOD_FIDO2:
        m->aaguid = dup_string(o, "aaGuid");
        m->model = dup_string(o, "model");
        m->attestation_level = dup_string(o, "attestationLevel");
        break;
    case KD_GRAPH_METHOD_MICROSOFT_AUTHENTICATOR:
        m->device_tag = dup_string(o, "deviceTag");
        m->phone_app_version = dup_string(o, "phoneAppVersion");
        break;
    case KD_GRAPH_METHOD_PHONE:
        m->phone_number = dup_string(o, "phoneNumber");
        m->phone_type = dup_string(o, "phoneType");
        break;
    case KD_GRAPH_METHOD_EMAIL:
        m->email_address = dup_string(o, "emailAddress");
        break;
    case KD_GRAPH_METHOD_TEMPORARY_ACCESS_PASS:
        m->start = dup_string(o, "startDateTime");
        m->lifetime_minutes = get_uint(o, "lifetimeInMinutes");
        m->is_usable_once = kd_json_get_bool(o, "isUsableOnce", FALSE);
        m->is_usable = kd_json_get_bool(o, "isUsable", FALSE);
        m->usability_reason = dup_string(o, "methodUsabilityReason");
        break;
    default:
        break;
    }
    /* Never keep a pass, should a listing ever carry one. */
    if (m->kind == KD_GRAPH_METHOD_TEMPORARY_ACCESS_PASS &&
        kd_json_get_string(o, "temporaryAccessPass"))
        m->json = NULL;
    else
        m->json = json_object_ref(o);
    return m;
}

typedef struct {
    KdGraphMethodKind kind;
    GPtrArray *methods;
} ListMethods;

static void
list_methods_free(gpointer p)
{
    ListMethods *l = p;

    g_ptr_array_unref(l->methods);
    g_free(l);
}

static gboolean
list_methods_page(JsonArray *page, gpointer data)
{
    ListMethods *l = data;

    for (guint i = 0; i < json_array_get_length(page); i++) {
        JsonNode *n = json_array_get_element(page, i);
        KdGraphMethod *m =
            JSON_NODE_HOLDS_OBJECT(n) ? method_from_json(json_node_get_object(n), l->kind) : NULL;
        if (m != NULL)
            g_ptr_array_add(l->methods, m);
    }
    return TRUE;
}

static void
list_methods_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
    GTask *task = user_data;
    ListMethods *l = g_task_get_task_data(task);
    GError *error = NULL;

    if (kd_graph_client_list_finish(KD_GRAPH_CLIENT(source), res, &error))
        g_task_return_pointer(task, g_ptr_array_ref(l->methods), (GDestroyNotify)g_ptr_array_unref);
    else
        g_task_return_error(task, error);
    g_object_unref(task);
}

static char *
methods_path(const char *user, KdGraphMethodKind kind)
{
    g_autofree char *base = kd_graph_user_path(user);

    return g_strdup_printf("%s/authentication/%s", base, kd_graph_method_kind_collection(kind));
}

static KdGraphCallFlags
methods_flags(KdGraphCallFlags flags, KdGraphMethodKind kind, KdGraphCallFlags own)
{
    flags = op_flags(flags, own);
    if (kind == KD_GRAPH_METHOD_HARDWARE_OATH)
        flags |= KD_GRAPH_CALL_BETA;
    return flags;
}

/* Starts listing into a new task whose data is a ListMethods; @done finishes it. */
static GTask *
start_list_methods(KdGraphClient *client, const char *user, KdGraphMethodKind kind,
                   KdGraphCallFlags flags, GCancellable *cancellable, GAsyncReadyCallback callback,
                   gpointer user_data, gpointer tag, GAsyncReadyCallback done)
{
    GTask *task = op_task_new(client, cancellable, callback, user_data, tag);
    ListMethods *l = g_new0(ListMethods, 1);
    g_autofree char *path = methods_path(user, kind);

    l->kind = kind;
    l->methods = g_ptr_array_new_with_free_func((GDestroyNotify)kd_graph_method_free);
    g_task_set_task_data(task, l, list_methods_free);
    kd_graph_client_list_async(
        client, path,
        methods_flags(flags, kind, KD_GRAPH_CALL_INTERACTIVE | KD_GRAPH_CALL_IDEMPOTENT),
        list_methods_page, l, cancellable, done, task);
    return task;
}

static gboolean
valid_kind(KdGraphMethodKind kind)
{
    return kind >= KD_GRAPH_METHOD_ANY && kind < KD_GRAPH_METHOD_OTHER;
}

void
kd_graph_list_methods_async(KdGraphClient *client, const char *user, KdGraphMethodKind kind,
                            KdGraphCallFlags flags, GCancellable *cancellable,
                            GAsyncReadyCallback callback, gpointer user_data)
{
    g_return_if_fail(KD_IS_GRAPH_CLIENT(client));
    g_return_if_fail(user != NULL && *user != '\0');
    g_return_if_fail(valid_kind(kind));
    start_list_methods(client, user, kind, flags, cancellable, callback, user_data,
                       kd_graph_list_methods_async, list_methods_done);
}

GPtrArray *
kd_graph_list_methods_finish(KdGraphClient *client, GAsyncResult *result, GError **error)
{
    return finish_pointer(client, result, kd_graph_list_methods_async, error);
}

static void
delete_method_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
    GTask *task = user_data;
    GError *error = NULL;
    JsonNode *root = kd_graph_client_call_finish(KD_GRAPH_CLIENT(source), res, &error);
    const KdGraphErrorInfo *info = kd_graph_error_get_info(error);

    if (root != NULL)
        json_node_unref(root);
    if (error == NULL) {
        g_task_return_int(task, KD_GRAPH_DELETE_DONE);
    } else if (g_error_matches(error, KD_GRAPH_ERROR, KD_GRAPH_ERROR_BAD_REQUEST) && info != NULL &&
               contains_ci(info->graph_message, "Cannot delete default method")) {
        g_debug("graph: method is the user's default and others remain: %s", info->graph_message);
        g_task_return_int(task, KD_GRAPH_DELETE_IS_DEFAULT);
        g_error_free(error);
    } else if (g_error_matches(error, KD_GRAPH_ERROR, KD_GRAPH_ERROR_NOT_FOUND) &&
               !(info != NULL && g_strcmp0(info->graph_code, "Request_ResourceNotFound") == 0)) {
        g_task_return_int(task, KD_GRAPH_DELETE_GONE);
        g_error_free(error);
    } else {
        g_task_return_error(task, error);
    }
    g_object_unref(task);
}

void
kd_graph_delete_method_async(KdGraphClient *client, const char *user, KdGraphMethodKind kind,
                             const char *method_id, KdGraphCallFlags flags,
                             GCancellable *cancellable, GAsyncReadyCallback callback,
                             gpointer user_data)
{
    GTask *task;
    g_autofree char *base = NULL, *id = NULL, *path = NULL;

    g_return_if_fail(KD_IS_GRAPH_CLIENT(client));
    g_return_if_fail(user != NULL && *user != '\0');
    g_return_if_fail(method_id != NULL && *method_id != '\0');
    g_return_if_fail(valid_kind(kind));
    base = methods_path(user, kind);
    id = escape(method_id, NULL);
    path = g_strdup_printf("%s/%s", base, id);
    task = op_task_new(client, cancellable, callback, user_data, kd_graph_delete_method_async);
    kd_graph_client_call_async(
        client, "DELETE", path, NULL,
        methods_flags(flags, kind, KD_GRAPH_CALL_INTERACTIVE | KD_GRAPH_CALL_IDEMPOTENT),
        cancellable, delete_method_done, task);
}

KdGraphDeleteResult
kd_graph_delete_method_finish(KdGraphClient *client, GAsyncResult *result, GError **error)
{
    gssize r;

    g_return_val_if_fail(g_task_is_valid(result, client), KD_GRAPH_DELETE_FAILED);
    g_return_val_if_fail(g_task_get_source_tag(G_TASK(result)) == kd_graph_delete_method_async,
                         KD_GRAPH_DELETE_FAILED);
    r = g_task_propagate_int(G_TASK(result), error);
    return r < 0 ? KD_GRAPH_DELETE_FAILED : (KdGraphDeleteResult)r;
}

/* --- FIDO2 ------------------------------------------------------------------------------------ */

void
kd_graph_fido2_options_free(KdGraphFido2Options *o)
{
    if (o == NULL)
        return;
    g_free(o->rp_id);
    g_free(o->rp_name);
    g_clear_pointer(&o->user_id, g_bytes_unref);
    g_free(o->user_name);
    g_free(o->user_display_name);
    g_clear_pointer(&o->challenge, g_bytes_unref);
    g_free(o->challenge_text);
    g_free(o->timeout_datetime);
    g_clear_pointer(&o->exclude_ids, g_ptr_array_unref);
    g_clear_pointer(&o->algorithms, g_array_unref);
    g_free(o->attestation);
    g_free(o->authenticator_attachment);
    g_free(o->user_verification);
    g_free(o);
}

static int
cred_protect_level(const char *policy)
{
    if (policy == NULL)
        return 0;
    if (g_ascii_strcasecmp(policy, "userVerificationOptional") == 0)
        return 1;
    if (g_ascii_strcasecmp(policy, "userVerificationOptionalWithCredentialIDList") == 0)
        return 2;
    if (g_ascii_strcasecmp(policy, "userVerificationRequired") == 0)
        return 3;
    return 0;
}

static gpointer
parse_fido2_options(JsonNode *root, gpointer data, GError **error)
{
    JsonObject *top = root_object(root);
    JsonObject *pk = kd_json_get_object(top, "publicKey");
    JsonObject *rp = kd_json_get_object(pk, "rp"), *user = kd_json_get_object(pk, "user");
    JsonObject *sel = kd_json_get_object(pk, "authenticatorSelection");
    JsonObject *ext = kd_json_get_object(pk, "extensions");
    JsonArray *exclude = kd_json_get_array(pk, "excludeCredentials");
    JsonArray *params = kd_json_get_array(pk, "pubKeyCredParams");
    g_autoptr(KdGraphFido2Options) o = NULL;

    if (pk == NULL || kd_json_get_string(rp, "id") == NULL) {
        g_propagate_error(error, bad_response("creationOptions without publicKey.rp.id"));
        return NULL;
    }
    o = g_new0(KdGraphFido2Options, 1);
    o->rp_id = dup_string(rp, "id");
    o->rp_name = dup_string(rp, "name");
    o->user_id = kd_b64_decode_bytes(kd_json_get_string(user, "id"));
    if (o->user_id == NULL || g_bytes_get_size(o->user_id) == 0) {
        g_propagate_error(error, bad_response("creationOptions whose user.id does not decode"));
        return NULL;
    }
    o->user_name = dup_string(user, "name");
    o->user_display_name = dup_string(user, "displayName");
    o->challenge_text = dup_string(pk, "challenge");
    o->challenge = kd_b64_decode_bytes(o->challenge_text);
    if (o->challenge == NULL || g_bytes_get_size(o->challenge) == 0) {
        g_propagate_error(error, bad_response("creationOptions whose challenge does not decode"));
        return NULL;
    }
    o->timeout_datetime = dup_string(top, "challengeTimeoutDateTime");
    o->timeout_unix = parse_time(o->timeout_datetime);
    o->timeout_ms = get_uint(pk, "timeout");
    o->exclude_ids = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    for (guint i = 0; exclude != NULL && i < json_array_get_length(exclude); i++) {
        JsonNode *n = json_array_get_element(exclude, i);
        const char *text =
            JSON_NODE_HOLDS_OBJECT(n) ? kd_json_get_string(json_node_get_object(n), "id") : NULL;
        GBytes *id = kd_b64_decode_bytes(text);
        if (id == NULL || g_bytes_get_size(id) == 0) {
            /* Graph has sent ids with stray characters (reference §2.2): the key cannot be
             * excluded, which only costs a clearer error if it is the same key. */
            g_debug("graph: skipping excludeCredentials[%u] that does not decode", i);
            o->exclude_skipped++;
            g_clear_pointer(&id, g_bytes_unref);
            continue;
        }
        g_ptr_array_add(o->exclude_ids, id);
    }
    o->algorithms = g_array_new(FALSE, FALSE, sizeof(gint));
    for (guint i = 0; params != NULL && i < json_array_get_length(params); i++) {
        JsonNode *n = json_array_get_element(params, i);
        JsonObject *p = JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
        if (p != NULL && kd_json_member(p, "alg") != NULL) {
            gint alg = (gint)kd_json_get_int(p, "alg", 0);
            g_array_append_val(o->algorithms, alg);
        }
    }
    o->attestation = dup_string(pk, "attestation");
    o->authenticator_attachment = dup_string(sel, "authenticatorAttachment");
    o->require_resident_key = kd_json_get_bool(sel, "requireResidentKey", FALSE);
    o->user_verification = dup_string(sel, "userVerification");
    o->hmac_create_secret = kd_json_get_bool(ext, "hmacCreateSecret", FALSE);
    o->enforce_cred_protect = kd_json_get_bool(ext, "enforceCredentialProtectionPolicy", FALSE);
    o->cred_protect = cred_protect_level(kd_json_get_string(ext, "credentialProtectionPolicy"));
    return g_steal_pointer(&o);
}

void
kd_graph_get_fido2_options_async(KdGraphClient *client, const char *user, guint timeout_minutes,
                                 KdGraphCallFlags flags, GCancellable *cancellable,
                                 GAsyncReadyCallback callback, gpointer user_data)
{
    g_autofree char *base = NULL, *path = NULL;
    KdGraphCallFlags f = op_flags(flags, KD_GRAPH_CALL_INTERACTIVE | KD_GRAPH_CALL_IDEMPOTENT);

    g_return_if_fail(KD_IS_GRAPH_CLIENT(client));
    g_return_if_fail(user != NULL && *user != '\0');
    if (timeout_minutes != 0 && (timeout_minutes < 5 || timeout_minutes > 43200)) {
        report_local(client, kd_graph_get_fido2_options_async, callback, user_data,
                     KD_GRAPH_ERROR_BAD_REQUEST,
                     "The challenge timeout must be between 5 and 43200 minutes.");
        return;
    }
    base = methods_path(user, KD_GRAPH_METHOD_FIDO2);
    if (timeout_minutes == 0) {
        /* v1.0 has no parameter (reference §2.1): the challenge lives 5 minutes. */
        f &= ~KD_GRAPH_CALL_BETA;
        path = g_strconcat(base, "/creationOptions", NULL);
    } else {
        f |= KD_GRAPH_CALL_BETA;
        path = g_strdup_printf("%s/creationOptions(challengeTimeoutInMinutes=%u)", base,
                               timeout_minutes);
    }
    simple_call(client, "GET", path, NULL, f, parse_fido2_options,
                (GDestroyNotify)kd_graph_fido2_options_free, NULL, NULL,
                kd_graph_get_fido2_options_async, cancellable, callback, user_data);
}

KdGraphFido2Options *
kd_graph_get_fido2_options_finish(KdGraphClient *client, GAsyncResult *result, GError **error)
{
    return finish_pointer(client, result, kd_graph_get_fido2_options_async, error);
}

GBytes *
kd_graph_fido2_client_data(const KdGraphFido2Options *options)
{
    g_autofree char *challenge = NULL, *origin = NULL, *origin_json = NULL;
    g_autoptr(JsonNode) node = json_node_new(JSON_NODE_VALUE);
    gsize len = 0;
    const guint8 *data;
    char *json;

    g_return_val_if_fail(options != NULL && options->challenge != NULL, NULL);
    data = g_bytes_get_data(options->challenge, &len);
    challenge = kd_b64url_encode(data, len);
    origin = g_strconcat("https://", options->rp_id, NULL);
    json_node_set_string(node, origin);
    origin_json = json_to_string(node, FALSE);
    /* Member order as WebAuthn serialises it: type, challenge, origin, crossOrigin. */
    json = g_strdup_printf("{\"type\":\"webauthn.create\",\"challenge\":\"%s\",\"origin\":%s,"
                           "\"crossOrigin\":false}",
                           challenge, origin_json);
    return g_bytes_new_take(json, strlen(json));
}

char *
kd_graph_fido2_display_name(const char *name)
{
    g_autofree char *valid = NULL;
    const char *p, *end;
    guint units = 0;

    if (name == NULL)
        return g_strdup("Security key");
    valid = g_utf8_make_valid(name, -1);
    g_strstrip(valid);
    if (*valid == '\0')
        return g_strdup("Security key");
    /* Graph counts UTF-16 code units (a .NET string length): a character outside the BMP is 2. */
    for (p = end = valid; *p != '\0'; p = g_utf8_next_char(p)) {
        guint w = g_utf8_get_char(p) > 0xffff ? 2 : 1;
        if (units + w > 30)
            break;
        units += w;
        end = g_utf8_next_char(p);
    }
    return g_strchomp(g_strndup(valid, (gsize)(end - valid)));
}

typedef struct {
    char *user;
    char *display_name;
    char *aaguid;
    char **known_ids;
    gint64 started_unix;
    KdGraphCallFlags flags;
    JsonNode *body;
    GError *lost; /* the UNKNOWN_OUTCOME being resolved */
    KdGraphMethod *best;
    gboolean recovered;
} Register;

static void
register_free(gpointer p)
{
    Register *r = p;

    g_free(r->user);
    g_free(r->display_name);
    g_free(r->aaguid);
    g_strfreev(r->known_ids);
    if (r->body != NULL)
        json_node_unref(r->body);
    g_clear_error(&r->lost);
    kd_graph_method_free(r->best);
    g_free(r);
}

static void
set_b64url(JsonObject *o, const char *name, GBytes *bytes)
{
    gsize len = 0;
    const guint8 *data = g_bytes_get_data(bytes, &len);
    g_autofree char *text = kd_b64url_encode(data, len);

    json_object_set_string_member(o, name, text);
}

/* Whether @m may be the method a lost POST created. */
static gboolean
register_matches(const Register *r, const KdGraphMethod *m)
{
    if (m->kind != KD_GRAPH_METHOD_FIDO2 || g_strcmp0(m->display_name, r->display_name) != 0)
        return FALSE;
    if (m->created_unix == 0 || m->created_unix < r->started_unix - CLOCK_SKEW_S)
        return FALSE;
    if (r->known_ids != NULL && g_strv_contains((const char *const *)r->known_ids, m->id))
        return FALSE;
    if (r->aaguid != NULL && (m->aaguid == NULL || g_ascii_strcasecmp(m->aaguid, r->aaguid) != 0))
        return FALSE;
    return TRUE;
}

static gboolean
register_page(JsonArray *page, gpointer data)
{
    Register *r = data;

    for (guint i = 0; i < json_array_get_length(page); i++) {
        JsonNode *n = json_array_get_element(page, i);
        KdGraphMethod *m = JSON_NODE_HOLDS_OBJECT(n)
                               ? method_from_json(json_node_get_object(n), KD_GRAPH_METHOD_FIDO2)
                               : NULL;
        if (m != NULL && register_matches(r, m) &&
            (r->best == NULL || m->created_unix >= r->best->created_unix)) {
            kd_graph_method_free(r->best);
            r->best = m;
        } else {
            kd_graph_method_free(m);
        }
    }
    return TRUE;
}

static void
register_listed(GObject *source, GAsyncResult *res, gpointer user_data)
{
    GTask *task = user_data;
    Register *r = g_task_get_task_data(task);
    g_autoptr(GError) error = NULL;
    GError *lost = g_steal_pointer(&r->lost);

    if (!kd_graph_client_list_finish(KD_GRAPH_CLIENT(source), res, &error)) {
        g_prefix_error(&lost,
                       "The security key may or may not be registered (checking failed: "
                       "%s): ",
                       error->message);
        g_task_return_error(task, lost);
    } else if (r->best != NULL) {
        g_info("graph: the answer to a FIDO2 registration was lost; found it by listing (%s)",
               r->best->id);
        g_error_free(lost);
        r->recovered = TRUE;
        g_task_return_pointer(task, g_steal_pointer(&r->best),
                              (GDestroyNotify)kd_graph_method_free);
    } else {
        g_prefix_error(&lost, "The security key was not found among the user's keys, but it may "
                              "still appear: ");
        g_task_return_error(task, lost);
    }
    g_object_unref(task);
}

static void
register_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
    GTask *task = user_data;
    Register *r = g_task_get_task_data(task);
    GError *error = NULL;
    JsonNode *root = kd_graph_client_call_finish(KD_GRAPH_CLIENT(source), res, &error);
    KdGraphMethod *m;

    if (g_error_matches(error, KD_GRAPH_ERROR, KD_GRAPH_ERROR_UNKNOWN_OUTCOME)) {
        g_autofree char *path = methods_path(r->user, KD_GRAPH_METHOD_FIDO2);
        g_info("graph: the answer to a FIDO2 registration was lost; listing the user's keys");
        r->lost = error;
        kd_graph_client_list_async(
            KD_GRAPH_CLIENT(source), path,
            op_flags(r->flags, KD_GRAPH_CALL_INTERACTIVE | KD_GRAPH_CALL_IDEMPOTENT), register_page,
            r, g_task_get_cancellable(task), register_listed, task);
        return;
    }
    if (error != NULL) {
        g_task_return_error(task, error);
    } else if ((m = method_from_json(root_object(root), KD_GRAPH_METHOD_FIDO2)) != NULL) {
        g_task_return_pointer(task, m, (GDestroyNotify)kd_graph_method_free);
    } else {
        g_task_return_error(task, bad_response("a registered key without an id"));
    }
    if (root != NULL)
        json_node_unref(root);
    g_object_unref(task);
}

void
kd_graph_register_fido2_async(KdGraphClient *client, const char *user,
                              const KdGraphFido2Registration *registration, KdGraphCallFlags flags,
                              GCancellable *cancellable, GAsyncReadyCallback callback,
                              gpointer user_data)
{
    const KdGraphFido2Registration *reg = registration;
    g_autofree char *path = NULL;
    JsonObject *body, *pkc, *response;
    Register *r;
    GTask *task;

    g_return_if_fail(KD_IS_GRAPH_CLIENT(client));
    g_return_if_fail(user != NULL && *user != '\0');
    g_return_if_fail(reg != NULL && reg->credential_id != NULL && reg->client_data_json != NULL &&
                     reg->attestation_object != NULL);

    r = g_new0(Register, 1);
    r->user = g_strdup(user);
    r->display_name = kd_graph_fido2_display_name(reg->display_name);
    r->aaguid = g_strdup(reg->aaguid);
    r->known_ids = strv_copy(reg->known_method_ids);
    r->flags = flags;

    /* No @odata.type anywhere: beta has refused bodies that carry it (reference §2.5). */
    response = json_object_new();
    set_b64url(response, "clientDataJSON", reg->client_data_json);
    set_b64url(response, "attestationObject", reg->attestation_object);
    pkc = json_object_new();
    set_b64url(pkc, "id", reg->credential_id);
    json_object_set_object_member(pkc, "response", response);
    json_object_set_object_member(pkc, "clientExtensionResults", json_object_new());
    body = json_object_new();
    json_object_set_string_member(body, "displayName", r->display_name);
    json_object_set_object_member(body, "publicKeyCredential", pkc);
    r->body = json_node_init_object(json_node_alloc(), body);
    json_object_unref(body);

    task = op_task_new(client, cancellable, callback, user_data, kd_graph_register_fido2_async);
    g_task_set_task_data(task, r, register_free);
    path = methods_path(user, KD_GRAPH_METHOD_FIDO2);
    r->started_unix = g_get_real_time() / G_USEC_PER_SEC;
    kd_graph_client_call_async(client, "POST", path, r->body,
                               op_flags(flags, KD_GRAPH_CALL_INTERACTIVE), cancellable,
                               register_done, task);
}

KdGraphMethod *
kd_graph_register_fido2_finish(KdGraphClient *client, GAsyncResult *result, gboolean *recovered,
                               GError **error)
{
    KdGraphMethod *m = finish_pointer(client, result, kd_graph_register_fido2_async, error);
    Register *r = g_task_get_task_data(G_TASK(result));

    if (recovered != NULL)
        *recovered = m != NULL && r->recovered;
    return m;
}

/* --- Temporary Access Pass -------------------------------------------------------------------- */

void
kd_graph_tap_free(KdGraphTap *tap)
{
    if (tap == NULL)
        return;
    g_free(tap->id);
    if (tap->pass != NULL) {
        kd_secret_wipe(tap->pass);
        kd_secret_unref(tap->pass);
    }
    g_free(tap->created);
    g_free(tap->start);
    g_free(tap->usability_reason);
    g_free(tap);
}

/* @pass was taken out of the answer's text before json-glib parsed it (kd-json-lex.h), so no
 * copy of it exists outside locked memory; the JSON holds "" in its place. */
static KdGraphTap *
tap_from_json(JsonObject *o, KdSecret *pass, GError **error)
{
    KdGraphTap *tap;

    if (kd_json_get_string(o, "id") == NULL || pass == NULL || kd_secret_get_length(pass) == 0) {
        g_propagate_error(error, bad_response("a Temporary Access Pass without an id or a pass"));
        return NULL;
    }
    tap = g_new0(KdGraphTap, 1);
    tap->id = dup_string(o, "id");
    tap->pass = kd_secret_ref(pass);
    tap->created = dup_string(o, "createdDateTime");
    tap->start = dup_string(o, "startDateTime");
    tap->start_unix = parse_time(tap->start);
    if (tap->start_unix == 0)
        tap->start_unix = parse_time(tap->created);
    tap->lifetime_minutes = get_uint(o, "lifetimeInMinutes");
    tap->expires_unix =
        tap->start_unix != 0 ? tap->start_unix + 60 * (gint64)tap->lifetime_minutes : 0;
    tap->is_usable_once = kd_json_get_bool(o, "isUsableOnce", FALSE);
    tap->is_usable = kd_json_get_bool(o, "isUsable", FALSE);
    tap->usability_reason = dup_string(o, "methodUsabilityReason");
    return tap;
}

typedef struct {
    char *user;
    KdGraphCallFlags flags;
    JsonNode *body;
    GError *lost;
    ListMethods listed; /* the TAPs found after a lost answer */
    gboolean checked;
} CreateTap;

static void
create_tap_free(gpointer p)
{
    CreateTap *c = p;

    g_free(c->user);
    if (c->body != NULL)
        json_node_unref(c->body);
    g_clear_error(&c->lost);
    g_clear_pointer(&c->listed.methods, g_ptr_array_unref);
    g_free(c);
}

static void
create_tap_listed(GObject *source, GAsyncResult *res, gpointer user_data)
{
    GTask *task = user_data;
    CreateTap *c = g_task_get_task_data(task);
    g_autoptr(GError) error = NULL;
    GError *lost = g_steal_pointer(&c->lost);

    if (kd_graph_client_list_finish(KD_GRAPH_CLIENT(source), res, &error)) {
        c->checked = TRUE;
        g_prefix_error(&lost, "A Temporary Access Pass may have been created (the user has %u): ",
                       c->listed.methods->len);
    } else {
        g_prefix_error(&lost,
                       "A Temporary Access Pass may have been created (listing failed: "
                       "%s): ",
                       error->message);
    }
    g_task_return_error(task, lost);
    g_object_unref(task);
}

static void
create_tap_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
    GTask *task = user_data;
    CreateTap *c = g_task_get_task_data(task);
    GError *error = NULL;
    KdGraphReply *reply = kd_graph_client_call_finish_reply(KD_GRAPH_CLIENT(source), res, &error);
    g_autoptr(KdSecret) pass = reply != NULL ? kd_graph_reply_take_secret(reply) : NULL;
    KdGraphTap *tap;

    if (g_error_matches(error, KD_GRAPH_ERROR, KD_GRAPH_ERROR_UNKNOWN_OUTCOME)) {
        g_autofree char *path = methods_path(c->user, KD_GRAPH_METHOD_TEMPORARY_ACCESS_PASS);
        g_info("graph: the answer to a TAP creation was lost; listing the user's passes");
        c->lost = error;
        c->listed.kind = KD_GRAPH_METHOD_TEMPORARY_ACCESS_PASS;
        c->listed.methods = g_ptr_array_new_with_free_func((GDestroyNotify)kd_graph_method_free);
        kd_graph_client_list_async(
            KD_GRAPH_CLIENT(source), path,
            op_flags(c->flags, KD_GRAPH_CALL_INTERACTIVE | KD_GRAPH_CALL_IDEMPOTENT),
            list_methods_page, &c->listed, g_task_get_cancellable(task), create_tap_listed, task);
        return;
    }
    if (error != NULL) {
        g_task_return_error(task, error);
    } else if ((tap = tap_from_json(root_object(kd_graph_reply_get_json(reply)), pass, &error)) !=
               NULL) {
        g_task_return_pointer(task, tap, (GDestroyNotify)kd_graph_tap_free);
    } else {
        g_task_return_error(task, error);
    }
    kd_graph_reply_free(reply);
    g_object_unref(task);
}

void
kd_graph_create_tap_async(KdGraphClient *client, const char *user, guint lifetime_minutes,
                          gboolean is_usable_once, KdGraphCallFlags flags,
                          GCancellable *cancellable, GAsyncReadyCallback callback,
                          gpointer user_data)
{
    g_autofree char *path = NULL;
    JsonObject *body;
    CreateTap *c;
    GTask *task;

    g_return_if_fail(KD_IS_GRAPH_CLIENT(client));
    g_return_if_fail(user != NULL && *user != '\0');
    c = g_new0(CreateTap, 1);
    c->user = g_strdup(user);
    c->flags = flags;
    body = json_object_new();
    if (lifetime_minutes != 0)
        json_object_set_int_member(body, "lifetimeInMinutes", lifetime_minutes);
    json_object_set_boolean_member(body, "isUsableOnce", is_usable_once);
    c->body = json_node_init_object(json_node_alloc(), body);
    json_object_unref(body);
    task = op_task_new(client, cancellable, callback, user_data, kd_graph_create_tap_async);
    g_task_set_task_data(task, c, create_tap_free);
    path = methods_path(user, KD_GRAPH_METHOD_TEMPORARY_ACCESS_PASS);
    kd_graph_client_call_secret_async(client, "POST", path, c->body,
                                      op_flags(flags, KD_GRAPH_CALL_INTERACTIVE),
                                      "temporaryAccessPass", cancellable, create_tap_done, task);
}

KdGraphTap *
kd_graph_create_tap_finish(KdGraphClient *client, GAsyncResult *result, GPtrArray **existing,
                           GError **error)
{
    KdGraphTap *tap = finish_pointer(client, result, kd_graph_create_tap_async, error);
    CreateTap *c = g_task_get_task_data(G_TASK(result));

    if (existing != NULL)
        *existing = tap == NULL && c->checked ? g_ptr_array_ref(c->listed.methods) : NULL;
    return tap;
}

/* --- sessions --------------------------------------------------------------------------------- */

static gpointer
parse_revoke(JsonNode *root, gpointer data, GError **error)
{
    JsonObject *o = root_object(root);

    /* 200 {"value": true}; a known issue says some tenants answer 204. */
    if (root == NULL || kd_json_get_bool(o, "value", TRUE))
        return DONE;
    g_propagate_error(error, bad_response("revokeSignInSessions answered false"));
    return NULL;
}

void
kd_graph_revoke_sessions_async(KdGraphClient *client, const char *user, KdGraphCallFlags flags,
                               GCancellable *cancellable, GAsyncReadyCallback callback,
                               gpointer user_data)
{
    g_autofree char *base = NULL, *path = NULL;

    g_return_if_fail(KD_IS_GRAPH_CLIENT(client));
    g_return_if_fail(user != NULL && *user != '\0');
    base = kd_graph_user_path(user);
    path = g_strconcat(base, "/revokeSignInSessions", NULL);
    simple_call(client, "POST", path, NULL,
                op_flags(flags, KD_GRAPH_CALL_INTERACTIVE | KD_GRAPH_CALL_IDEMPOTENT), parse_revoke,
                NULL, NULL, NULL, kd_graph_revoke_sessions_async, cancellable, callback, user_data);
}

gboolean
kd_graph_revoke_sessions_finish(KdGraphClient *client, GAsyncResult *result, GError **error)
{
    return finish_pointer(client, result, kd_graph_revoke_sessions_async, error) != NULL;
}

/* --- policies --------------------------------------------------------------------------------- */

static void
policy_target_free(KdGraphPolicyTarget *t)
{
    g_free(t->target_type);
    g_free(t->id);
    g_free(t);
}

void
kd_graph_method_policy_free(KdGraphMethodPolicy *p)
{
    if (p == NULL)
        return;
    g_free(p->id);
    g_clear_pointer(&p->include_targets, g_ptr_array_unref);
    g_clear_pointer(&p->exclude_targets, g_ptr_array_unref);
    g_free(p->key_restrictions_type);
    g_strfreev(p->key_restrictions_aaguids);
    if (p->json != NULL)
        json_object_unref(p->json);
    g_free(p);
}

static GPtrArray *
policy_targets(JsonObject *o, const char *name)
{
    JsonArray *a = kd_json_get_array(o, name);
    GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)policy_target_free);

    for (guint i = 0; a != NULL && i < json_array_get_length(a); i++) {
        JsonNode *n = json_array_get_element(a, i);
        JsonObject *t = JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
        KdGraphPolicyTarget *target;
        if (kd_json_get_string(t, "id") == NULL)
            continue;
        target = g_new0(KdGraphPolicyTarget, 1);
        target->target_type = dup_string(t, "targetType");
        target->id = dup_string(t, "id");
        target->is_registration_required = kd_json_get_bool(t, "isRegistrationRequired", FALSE);
        g_ptr_array_add(out, target);
    }
    return out;
}

static const char *const policy_ids[] = {
    [KD_GRAPH_POLICY_FIDO2] = "Fido2",
    [KD_GRAPH_POLICY_TEMPORARY_ACCESS_PASS] = "TemporaryAccessPass",
    [KD_GRAPH_POLICY_MICROSOFT_AUTHENTICATOR] = "MicrosoftAuthenticator",
};

static gpointer
parse_method_policy(JsonNode *root, gpointer data, GError **error)
{
    JsonObject *o = root_object(root);
    JsonObject *kr = kd_json_get_object(o, "keyRestrictions");
    KdGraphMethodPolicy *p;

    if (o == NULL || kd_json_get_string(o, "state") == NULL) {
        g_propagate_error(error, bad_response("a method configuration without a state"));
        return NULL;
    }
    p = g_new0(KdGraphMethodPolicy, 1);
    p->kind = (KdGraphPolicyKind)GPOINTER_TO_INT(data);
    p->id = dup_string(o, "id");
    p->enabled = g_strcmp0(kd_json_get_string(o, "state"), "enabled") == 0;
    p->include_targets = policy_targets(o, "includeTargets");
    p->exclude_targets = policy_targets(o, "excludeTargets");
    p->is_self_service_registration_allowed =
        kd_json_get_bool(o, "isSelfServiceRegistrationAllowed", FALSE);
    p->is_attestation_enforced = kd_json_get_bool(o, "isAttestationEnforced", FALSE);
    p->key_restrictions_enforced = kd_json_get_bool(kr, "isEnforced", FALSE);
    p->key_restrictions_type = dup_string(kr, "enforcementType");
    p->key_restrictions_aaguids = get_strv(kr, "aaGuids", TRUE);
    p->default_lifetime_minutes = get_uint(o, "defaultLifetimeInMinutes");
    p->minimum_lifetime_minutes = get_uint(o, "minimumLifetimeInMinutes");
    p->maximum_lifetime_minutes = get_uint(o, "maximumLifetimeInMinutes");
    p->default_length = get_uint(o, "defaultLength");
    p->is_usable_once = kd_json_get_bool(o, "isUsableOnce", FALSE);
    p->is_software_oath_enabled = kd_json_get_bool(o, "isSoftwareOathEnabled", FALSE);
    p->json = json_object_ref(o);
    return p;
}

gboolean
kd_graph_method_policy_allows_aaguid(const KdGraphMethodPolicy *policy, const char *aaguid)
{
    g_autofree char *lower = NULL;
    gboolean listed;

    g_return_val_if_fail(policy != NULL, FALSE);
    if (!policy->key_restrictions_enforced)
        return TRUE;
    if (aaguid == NULL)
        return FALSE;
    lower = g_ascii_strdown(aaguid, -1);
    listed = g_strv_contains((const char *const *)policy->key_restrictions_aaguids, lower);
    if (g_strcmp0(policy->key_restrictions_type, "allow") == 0)
        return listed;
    if (g_strcmp0(policy->key_restrictions_type, "block") == 0)
        return !listed;
    return FALSE; /* an enforcement type keydesk does not know: let Graph decide, but warn */
}

void
kd_graph_get_method_policy_async(KdGraphClient *client, KdGraphPolicyKind kind,
                                 KdGraphCallFlags flags, GCancellable *cancellable,
                                 GAsyncReadyCallback callback, gpointer user_data)
{
    g_autofree char *path = NULL;

    g_return_if_fail(KD_IS_GRAPH_CLIENT(client));
    g_return_if_fail(kind >= KD_GRAPH_POLICY_FIDO2 &&
                     kind <= KD_GRAPH_POLICY_MICROSOFT_AUTHENTICATOR);
    path = g_strconcat("/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/",
                       policy_ids[kind], NULL);
    simple_call(client, "GET", path, NULL, op_flags(flags, KD_GRAPH_CALL_IDEMPOTENT),
                parse_method_policy, (GDestroyNotify)kd_graph_method_policy_free,
                GINT_TO_POINTER(kind), NULL, kd_graph_get_method_policy_async, cancellable,
                callback, user_data);
}

KdGraphMethodPolicy *
kd_graph_get_method_policy_finish(KdGraphClient *client, GAsyncResult *result, GError **error)
{
    return finish_pointer(client, result, kd_graph_get_method_policy_async, error);
}

#define SECURITY_DEFAULTS_PATH "/policies/identitySecurityDefaultsEnforcementPolicy"

/* The result pointer encodes the Boolean: 1 = disabled, 2 = enabled. */
static gpointer
parse_security_defaults(JsonNode *root, gpointer data, GError **error)
{
    JsonObject *o = root_object(root);
    JsonNode *n = kd_json_member(o, "isEnabled");

    if (n == NULL || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_BOOLEAN) {
        g_propagate_error(error, bad_response("security defaults without isEnabled"));
        return NULL;
    }
    return GINT_TO_POINTER(json_node_get_boolean(n) ? 2 : 1);
}

void
kd_graph_get_security_defaults_async(KdGraphClient *client, KdGraphCallFlags flags,
                                     GCancellable *cancellable, GAsyncReadyCallback callback,
                                     gpointer user_data)
{
    g_return_if_fail(KD_IS_GRAPH_CLIENT(client));
    simple_call(client, "GET", SECURITY_DEFAULTS_PATH, NULL,
                op_flags(flags, KD_GRAPH_CALL_IDEMPOTENT), parse_security_defaults, NULL, NULL,
                NULL, kd_graph_get_security_defaults_async, cancellable, callback, user_data);
}

gboolean
kd_graph_get_security_defaults_finish(KdGraphClient *client, GAsyncResult *result,
                                      gboolean *enabled, GError **error)
{
    gpointer r = finish_pointer(client, result, kd_graph_get_security_defaults_async, error);

    if (enabled != NULL)
        *enabled = GPOINTER_TO_INT(r) == 2;
    return r != NULL;
}

static gpointer
parse_nothing(JsonNode *root, gpointer data, GError **error)
{
    return DONE;
}

void
kd_graph_set_security_defaults_async(KdGraphClient *client, gboolean enabled,
                                     KdGraphCallFlags flags, GCancellable *cancellable,
                                     GAsyncReadyCallback callback, gpointer user_data)
{
    JsonObject *body;
    JsonNode *node;

    g_return_if_fail(KD_IS_GRAPH_CLIENT(client));
    body = json_object_new();
    json_object_set_boolean_member(body, "isEnabled", enabled);
    node = json_node_init_object(json_node_alloc(), body);
    json_object_unref(body);
    simple_call(client, "PATCH", SECURITY_DEFAULTS_PATH, node,
                op_flags(flags, KD_GRAPH_CALL_IDEMPOTENT), parse_nothing, NULL, NULL, NULL,
                kd_graph_set_security_defaults_async, cancellable, callback, user_data);
}

gboolean
kd_graph_set_security_defaults_finish(KdGraphClient *client, GAsyncResult *result, GError **error)
{
    return finish_pointer(client, result, kd_graph_set_security_defaults_async, error) != NULL;
}

/* --- paged reports: one row callback per item ------------------------------------------------- */

typedef gpointer (*RowParseFunc)(JsonObject *o);
typedef gboolean (*RowCallFunc)(gpointer row, gpointer func, gpointer func_data);

typedef struct {
    RowParseFunc parse;
    RowCallFunc call;
    GDestroyNotify free_row;
    gpointer func;
    gpointer func_data;
} Rows;

static gboolean
rows_page(JsonArray *page, gpointer data)
{
    Rows *rows = data;

    for (guint i = 0; i < json_array_get_length(page); i++) {
        JsonNode *n = json_array_get_element(page, i);
        gpointer row = JSON_NODE_HOLDS_OBJECT(n) ? rows->parse(json_node_get_object(n)) : NULL;
        gboolean more;
        if (row == NULL)
            continue;
        more = rows->call(row, rows->func, rows->func_data);
        rows->free_row(row);
        if (!more)
            return FALSE;
    }
    return TRUE;
}

static void
rows_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
    GTask *task = user_data;
    GError *error = NULL;

    if (kd_graph_client_list_finish(KD_GRAPH_CLIENT(source), res, &error))
        g_task_return_boolean(task, TRUE);
    else
        g_task_return_error(task, error);
    g_object_unref(task);
}

static void
list_rows(KdGraphClient *client, const char *path, KdGraphCallFlags flags, RowParseFunc parse,
          RowCallFunc call, GDestroyNotify free_row, gpointer func, gpointer func_data,
          gpointer tag, GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
    GTask *task = op_task_new(client, cancellable, callback, user_data, tag);
    Rows *rows = g_new0(Rows, 1);

    rows->parse = parse;
    rows->call = call;
    rows->free_row = free_row;
    rows->func = func;
    rows->func_data = func_data;
    g_task_set_task_data(task, rows, g_free);
    kd_graph_client_list_async(client, path, op_flags(flags, KD_GRAPH_CALL_IDEMPOTENT), rows_page,
                               rows, cancellable, rows_done, task);
}

static gboolean
finish_boolean(KdGraphClient *client, GAsyncResult *result, gpointer tag, GError **error)
{
    g_return_val_if_fail(g_task_is_valid(result, client), FALSE);
    g_return_val_if_fail(g_task_get_source_tag(G_TASK(result)) == tag, FALSE);
    return g_task_propagate_boolean(G_TASK(result), error);
}

static void
registration_free(KdGraphRegistrationDetails *r)
{
    g_free(r->id);
    g_free(r->user_principal_name);
    g_free(r->user_display_name);
    g_free(r->user_type);
    g_strfreev(r->methods_registered);
    g_strfreev(r->system_preferred_methods);
    g_free(r->user_preferred_method);
    g_free(r->last_updated);
    if (r->json != NULL)
        json_object_unref(r->json);
    g_free(r);
}

static gpointer
registration_from_json(JsonObject *o)
{
    KdGraphRegistrationDetails *r;

    if (kd_json_get_string(o, "id") == NULL)
        return NULL;
    r = g_new0(KdGraphRegistrationDetails, 1);
    r->id = dup_string(o, "id");
    r->user_principal_name = dup_string(o, "userPrincipalName");
    r->user_display_name = dup_string(o, "userDisplayName");
    r->user_type = dup_string(o, "userType");
    r->is_admin = kd_json_get_bool(o, "isAdmin", FALSE);
    r->is_mfa_registered = kd_json_get_bool(o, "isMfaRegistered", FALSE);
    r->is_mfa_capable = kd_json_get_bool(o, "isMfaCapable", FALSE);
    r->is_passwordless_capable = kd_json_get_bool(o, "isPasswordlessCapable", FALSE);
    r->is_sspr_registered = kd_json_get_bool(o, "isSsprRegistered", FALSE);
    r->is_sspr_enabled = kd_json_get_bool(o, "isSsprEnabled", FALSE);
    r->is_sspr_capable = kd_json_get_bool(o, "isSsprCapable", FALSE);
    r->is_system_preferred_enabled =
        kd_json_get_bool(o, "isSystemPreferredAuthenticationMethodEnabled", FALSE);
    r->methods_registered = get_strv(o, "methodsRegistered", FALSE);
    r->system_preferred_methods = get_strv(o, "systemPreferredAuthenticationMethods", FALSE);
    r->user_preferred_method = dup_string(o, "userPreferredMethodForSecondaryAuthentication");
    r->last_updated = dup_string(o, "lastUpdatedDateTime");
    r->json = json_object_ref(o);
    return r;
}

static gboolean
registration_call(gpointer row, gpointer func, gpointer func_data)
{
    return ((KdGraphRegistrationFunc)func)(row, func_data);
}

void
kd_graph_list_registration_details_async(KdGraphClient *client, const char *filter,
                                         KdGraphRegistrationFunc row, gpointer row_data,
                                         KdGraphCallFlags flags, GCancellable *cancellable,
                                         GAsyncReadyCallback callback, gpointer user_data)
{
    g_autofree char *path = NULL;

    g_return_if_fail(KD_IS_GRAPH_CLIENT(client));
    g_return_if_fail(row != NULL);
    if (filter != NULL && *filter != '\0') {
        g_autofree char *escaped = escape(filter, NULL);
        path = g_strconcat(
            "/reports/authenticationMethods/userRegistrationDetails?$filter=", escaped, NULL);
    } else {
        path = g_strdup("/reports/authenticationMethods/userRegistrationDetails");
    }
    list_rows(client, path, flags, registration_from_json, registration_call,
              (GDestroyNotify)registration_free, (gpointer)row, row_data,
              kd_graph_list_registration_details_async, cancellable, callback, user_data);
}

gboolean
kd_graph_list_registration_details_finish(KdGraphClient *client, GAsyncResult *result,
                                          GError **error)
{
    return finish_boolean(client, result, kd_graph_list_registration_details_async, error);
}

static void
method_count_free(KdGraphMethodCount *c)
{
    g_free(c->method);
    g_free(c);
}

void
kd_graph_method_summary_free(KdGraphMethodSummary *s)
{
    if (s == NULL)
        return;
    g_free(s->user_types);
    g_free(s->user_roles);
    g_clear_pointer(&s->counts, g_ptr_array_unref);
    g_free(s);
}

static gpointer
parse_method_summary(JsonNode *root, gpointer data, GError **error)
{
    JsonObject *o = root_object(root);
    JsonArray *a = kd_json_get_array(o, "userRegistrationMethodCounts");
    KdGraphMethodSummary *s;

    if (a == NULL) {
        g_propagate_error(error, bad_response("a method summary without counts"));
        return NULL;
    }
    s = g_new0(KdGraphMethodSummary, 1);
    s->user_types = dup_string(o, "userTypes");
    s->user_roles = dup_string(o, "userRoles");
    s->total_user_count = kd_json_get_int(o, "totalUserCount", 0);
    s->counts = g_ptr_array_new_with_free_func((GDestroyNotify)method_count_free);
    for (guint i = 0; i < json_array_get_length(a); i++) {
        JsonNode *n = json_array_get_element(a, i);
        JsonObject *c = JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
        KdGraphMethodCount *count;
        if (kd_json_get_string(c, "authenticationMethod") == NULL)
            continue;
        count = g_new0(KdGraphMethodCount, 1);
        count->method = dup_string(c, "authenticationMethod");
        count->user_count = kd_json_get_int(c, "userCount", 0);
        g_ptr_array_add(s->counts, count);
    }
    return s;
}

void
kd_graph_get_registered_by_method_async(KdGraphClient *client, const char *user_types,
                                        const char *user_roles, KdGraphCallFlags flags,
                                        GCancellable *cancellable, GAsyncReadyCallback callback,
                                        gpointer user_data)
{
    g_autofree char *types = NULL, *roles = NULL, *types_e = NULL, *roles_e = NULL, *path = NULL;

    g_return_if_fail(KD_IS_GRAPH_CLIENT(client));
    types = double_quotes(user_types != NULL ? user_types : "all");
    roles = double_quotes(user_roles != NULL ? user_roles : "all");
    types_e = escape(types, "'");
    roles_e = escape(roles, "'");
    path = g_strdup_printf("/reports/authenticationMethods/usersRegisteredByMethod("
                           "includedUserTypes='%s',includedUserRoles='%s')",
                           types_e, roles_e);
    simple_call(client, "GET", path, NULL, op_flags(flags, KD_GRAPH_CALL_IDEMPOTENT),
                parse_method_summary, (GDestroyNotify)kd_graph_method_summary_free, NULL, NULL,
                kd_graph_get_registered_by_method_async, cancellable, callback, user_data);
}

KdGraphMethodSummary *
kd_graph_get_registered_by_method_finish(KdGraphClient *client, GAsyncResult *result,
                                         GError **error)
{
    return finish_pointer(client, result, kd_graph_get_registered_by_method_async, error);
}

/* --- legacy sign-ins -------------------------------------------------------------------------- */

/* reference §7.2: the signIn resource's legacy clientAppUsed values, and older spellings. */
static const char *const legacy_apps[] = {
    "Authenticated SMTP",
    "Autodiscover",
    "Exchange ActiveSync",
    "Exchange Online PowerShell",
    "Exchange Web Services",
    "IMAP4",
    "MAPI over HTTP",
    "Offline Address Book",
    "Outlook Anywhere (RPC over HTTP)",
    "Outlook Service",
    "POP3",
    "Reporting Web Services",
    "Other clients",
    "IMAP",
    "POP",
    "SMTP",
    "MAPI",
    NULL,
};

const char *const *
kd_graph_legacy_client_apps(void)
{
    return legacy_apps;
}

const char *
kd_graph_legacy_client_app(const char *client_app)
{
    if (client_app == NULL)
        return NULL;
    for (gsize i = 0; legacy_apps[i] != NULL; i++)
        if (g_ascii_strcasecmp(legacy_apps[i], client_app) == 0)
            return legacy_apps[i];
    return NULL;
}

static void
sign_in_free(KdGraphSignIn *s)
{
    g_free(s->id);
    g_free(s->created);
    g_free(s->user_id);
    g_free(s->user_principal_name);
    g_free(s->user_display_name);
    g_free(s->app_display_name);
    g_free(s->client_app_used);
    g_free(s->ip_address);
    g_free(s->failure_reason);
    if (s->json != NULL)
        json_object_unref(s->json);
    g_free(s);
}

static gpointer
sign_in_from_json(JsonObject *o)
{
    const char *legacy = kd_graph_legacy_client_app(kd_json_get_string(o, "clientAppUsed"));
    JsonObject *status = kd_json_get_object(o, "status");
    KdGraphSignIn *s;

    if (kd_json_get_string(o, "id") == NULL || legacy == NULL)
        return NULL; /* not legacy after all: whatever the server's filter did */
    s = g_new0(KdGraphSignIn, 1);
    s->id = dup_string(o, "id");
    s->created = dup_string(o, "createdDateTime");
    s->created_unix = parse_time(s->created);
    s->user_id = dup_string(o, "userId");
    s->user_principal_name = dup_string(o, "userPrincipalName");
    s->user_display_name = dup_string(o, "userDisplayName");
    s->app_display_name = dup_string(o, "appDisplayName");
    s->client_app_used = dup_string(o, "clientAppUsed");
    s->legacy_client_app = legacy;
    s->ip_address = dup_string(o, "ipAddress");
    s->error_code = (gint)kd_json_get_int(status, "errorCode", 0);
    s->failure_reason = dup_string(status, "failureReason");
    s->json = json_object_ref(o);
    return s;
}

static gboolean
sign_in_call(gpointer row, gpointer func, gpointer func_data)
{
    return ((KdGraphSignInFunc)func)(row, func_data);
}

void
kd_graph_list_legacy_sign_ins_async(KdGraphClient *client, GDateTime *since, KdGraphSignInFunc row,
                                    gpointer row_data, KdGraphCallFlags flags,
                                    GCancellable *cancellable, GAsyncReadyCallback callback,
                                    gpointer user_data)
{
    GString *filter = g_string_new("(");
    g_autofree char *escaped = NULL, *path = NULL;

    g_return_if_fail(KD_IS_GRAPH_CLIENT(client));
    g_return_if_fail(row != NULL);
    /* clientAppUsed takes eq only, so the values are joined with or (reference §7.2). */
    for (gsize i = 0; legacy_apps[i] != NULL; i++) {
        g_autofree char *literal = double_quotes(legacy_apps[i]);
        g_string_append_printf(filter, "%sclientAppUsed eq '%s'", i > 0 ? " or " : "", literal);
    }
    g_string_append_c(filter, ')');
    if (since != NULL) {
        g_autoptr(GDateTime) utc = g_date_time_to_utc(since);
        g_autofree char *when = g_date_time_format(utc, "%Y-%m-%dT%H:%M:%SZ");
        g_string_append_printf(filter, " and createdDateTime ge %s", when);
    }
    escaped = escape(filter->str, NULL);
    g_string_free(filter, TRUE);
    path = g_strconcat("/auditLogs/signIns?$filter=", escaped, NULL);
    list_rows(client, path, flags, sign_in_from_json, sign_in_call, (GDestroyNotify)sign_in_free,
              (gpointer)row, row_data, kd_graph_list_legacy_sign_ins_async, cancellable, callback,
              user_data);
}

gboolean
kd_graph_list_legacy_sign_ins_finish(KdGraphClient *client, GAsyncResult *result, GError **error)
{
    return finish_boolean(client, result, kd_graph_list_legacy_sign_ins_async, error);
}

/* --- tracking --------------------------------------------------------------------------------- */

gboolean
kd_graph_is_already_member_message(const char *message)
{
    /* "One or more added object references already exist for the following modified
     * properties: 'members'." (reference §6.2) */
    return contains_ci(message, "already exist");
}

static void
add_member_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
    GTask *task = user_data;
    GError *error = NULL;
    JsonNode *root = kd_graph_client_call_finish(KD_GRAPH_CLIENT(source), res, &error);
    const KdGraphErrorInfo *info = kd_graph_error_get_info(error);

    if (root != NULL)
        json_node_unref(root);
    if (error == NULL) {
        g_task_return_int(task, KD_GRAPH_MEMBER_ADDED);
    } else if (g_error_matches(error, KD_GRAPH_ERROR, KD_GRAPH_ERROR_BAD_REQUEST) && info != NULL &&
               kd_graph_is_already_member_message(info->graph_message)) {
        g_task_return_int(task, KD_GRAPH_MEMBER_ALREADY);
        g_error_free(error);
    } else {
        g_task_return_error(task, error);
    }
    g_object_unref(task);
}

void
kd_graph_add_group_member_async(KdGraphClient *client, const char *graph_url, const char *group_id,
                                const char *user_id, KdGraphCallFlags flags,
                                GCancellable *cancellable, GAsyncReadyCallback callback,
                                gpointer user_data)
{
    g_autofree char *gid = NULL, *uid = NULL, *path = NULL, *ref = NULL, *base = NULL;
    JsonObject *body;
    JsonNode *node;
    GTask *task;

    g_return_if_fail(KD_IS_GRAPH_CLIENT(client));
    g_return_if_fail(group_id != NULL && *group_id != '\0');
    g_return_if_fail(user_id != NULL && *user_id != '\0');
    base = g_strdup(graph_url != NULL ? graph_url : kd_graph_client_get_graph_url(client));
    while (g_str_has_suffix(base, "/"))
        base[strlen(base) - 1] = '\0';
    gid = escape(group_id, NULL);
    uid = escape(user_id, NULL);
    path = g_strdup_printf("/groups/%s/members/$ref", gid);
    ref = g_strdup_printf("%s/v1.0/directoryObjects/%s", base, uid);
    body = json_object_new();
    json_object_set_string_member(body, "@odata.id", ref);
    node = json_node_init_object(json_node_alloc(), body);
    json_object_unref(body);
    task = op_task_new(client, cancellable, callback, user_data, kd_graph_add_group_member_async);
    g_task_set_task_data(task, node, (GDestroyNotify)json_node_unref);
    kd_graph_client_call_async(client, "POST", path, node,
                               op_flags(flags, KD_GRAPH_CALL_IDEMPOTENT), cancellable,
                               add_member_done, task);
}

KdGraphMemberResult
kd_graph_add_group_member_finish(KdGraphClient *client, GAsyncResult *result, GError **error)
{
    gssize r;

    g_return_val_if_fail(g_task_is_valid(result, client), KD_GRAPH_MEMBER_FAILED);
    g_return_val_if_fail(g_task_get_source_tag(G_TASK(result)) == kd_graph_add_group_member_async,
                         KD_GRAPH_MEMBER_FAILED);
    r = g_task_propagate_int(G_TASK(result), error);
    return r < 0 ? KD_GRAPH_MEMBER_FAILED : (KdGraphMemberResult)r;
}

void
kd_graph_set_user_extension_async(KdGraphClient *client, const char *user, const char *name,
                                  JsonNode *value, KdGraphCallFlags flags,
                                  GCancellable *cancellable, GAsyncReadyCallback callback,
                                  gpointer user_data)
{
    JsonObject *body;
    JsonNode *node;
    g_autofree char *path = NULL;

    g_return_if_fail(KD_IS_GRAPH_CLIENT(client));
    g_return_if_fail(user != NULL && *user != '\0');
    g_return_if_fail(name != NULL);
    if (!g_str_has_prefix(name, "extension_") || strlen(name) <= strlen("extension_")) {
        report_local(client, kd_graph_set_user_extension_async, callback, user_data,
                     KD_GRAPH_ERROR_BAD_REQUEST,
                     "Only directory extension attributes (extension_…) are written here.");
        return;
    }
    body = json_object_new();
    json_object_set_member(body, name,
                           value != NULL ? json_node_copy(value) : json_node_new(JSON_NODE_NULL));
    node = json_node_init_object(json_node_alloc(), body);
    json_object_unref(body);
    path = kd_graph_user_path(user);
    simple_call(client, "PATCH", path, node, op_flags(flags, KD_GRAPH_CALL_IDEMPOTENT),
                parse_nothing, NULL, NULL, NULL, kd_graph_set_user_extension_async, cancellable,
                callback, user_data);
}

gboolean
kd_graph_set_user_extension_finish(KdGraphClient *client, GAsyncResult *result, GError **error)
{
    return finish_pointer(client, result, kd_graph_set_user_extension_async, error) != NULL;
}

/* --- $batch ----------------------------------------------------------------------------------- */

KdGraphBatchRequest *
kd_graph_batch_request_new(const char *id, const char *method, const char *url, JsonNode *body)
{
    KdGraphBatchRequest *r;

    g_return_val_if_fail(id != NULL && method != NULL && url != NULL, NULL);
    r = g_new0(KdGraphBatchRequest, 1);
    r->id = g_strdup(id);
    r->method = g_ascii_strup(method, -1);
    r->url = g_strdup(url);
    r->body = body != NULL ? json_node_copy(body) : NULL;
    r->headers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    return r;
}

void
kd_graph_batch_request_set_header(KdGraphBatchRequest *r, const char *name, const char *value)
{
    g_return_if_fail(r != NULL && name != NULL && value != NULL);
    g_hash_table_replace(r->headers, g_strdup(name), g_strdup(value));
}

void
kd_graph_batch_request_free(KdGraphBatchRequest *r)
{
    if (r == NULL)
        return;
    g_free(r->id);
    g_free(r->method);
    g_free(r->url);
    if (r->body != NULL)
        json_node_unref(r->body);
    g_hash_table_unref(r->headers);
    g_free(r);
}

void
kd_graph_batch_response_free(KdGraphBatchResponse *r)
{
    if (r == NULL)
        return;
    g_free(r->id);
    if (r->headers != NULL)
        g_hash_table_unref(r->headers);
    if (r->body != NULL)
        json_node_unref(r->body);
    g_free(r);
}

gboolean
kd_graph_batch_response_should_retry(const KdGraphBatchResponse *r)
{
    return r != NULL && (r->status == 429 || r->status == 503 || r->status == 504);
}

static gboolean
has_header_ci(GHashTable *headers, const char *name)
{
    GHashTableIter it;
    gpointer key;

    g_hash_table_iter_init(&it, headers);
    while (g_hash_table_iter_next(&it, &key, NULL))
        if (g_ascii_strcasecmp(key, name) == 0)
            return TRUE;
    return FALSE;
}

/* NULL (and a message in *@why) when @requests cannot be one $batch. */
static gboolean
batch_valid(GPtrArray *requests, guint max, const char **why)
{
    g_autoptr(GHashTable) ids = NULL;

    if (requests == NULL || requests->len == 0) {
        *why = "A $batch needs at least one request.";
        return FALSE;
    }
    if (requests->len > max) {
        *why = "A $batch holds at most 20 requests.";
        return FALSE;
    }
    ids = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; i < requests->len; i++) {
        KdGraphBatchRequest *r = g_ptr_array_index(requests, i);
        if (r == NULL || r->id == NULL || *r->id == '\0' || !g_hash_table_add(ids, r->id)) {
            *why = "Every request in a $batch needs its own id.";
            return FALSE;
        }
    }
    return TRUE;
}

static JsonNode *
batch_body(GPtrArray *requests, gboolean *all_get)
{
    JsonArray *items = json_array_new();
    JsonObject *top = json_object_new();
    JsonNode *node;

    *all_get = TRUE;
    for (guint i = 0; i < requests->len; i++) {
        KdGraphBatchRequest *r = g_ptr_array_index(requests, i);
        JsonObject *item = json_object_new();
        JsonObject *headers = json_object_new();
        GHashTableIter it;
        gpointer k, v;

        if (g_strcmp0(r->method, "GET") != 0)
            *all_get = FALSE;
        json_object_set_string_member(item, "id", r->id);
        json_object_set_string_member(item, "method", r->method);
        json_object_set_string_member(item, "url", r->url);
        g_hash_table_iter_init(&it, r->headers);
        while (g_hash_table_iter_next(&it, &k, &v))
            json_object_set_string_member(headers, k, v);
        if (r->body != NULL) {
            if (!has_header_ci(r->headers, "Content-Type"))
                json_object_set_string_member(headers, "Content-Type", "application/json");
            json_object_set_member(item, "body", json_node_copy(r->body));
        }
        if (json_object_get_size(headers) > 0)
            json_object_set_object_member(item, "headers", headers);
        else
            json_object_unref(headers);
        json_array_add_object_element(items, item);
    }
    json_object_set_array_member(top, "requests", items);
    node = json_node_init_object(json_node_alloc(), top);
    json_object_unref(top);
    return node;
}

/* An item's Retry-After (delta seconds or HTTP-date) in whole seconds, 0 if none. */
static guint
parse_retry_after(const char *value)
{
    gint64 ms = kd_graph_retry_after_ms(value);

    return ms > 0 ? (guint)MIN((ms + 999) / 1000, (gint64)G_MAXUINT) : 0;
}

static KdGraphBatchResponse *
batch_response_from_json(JsonObject *o)
{
    KdGraphBatchResponse *r = g_new0(KdGraphBatchResponse, 1);
    JsonObject *headers = kd_json_get_object(o, "headers");
    JsonNode *body = kd_json_member(o, "body");

    r->id = dup_string(o, "id");
    r->status = get_uint(o, "status");
    r->headers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    if (headers != NULL) {
        JsonObjectIter it;
        const char *name;
        JsonNode *value;
        json_object_iter_init(&it, headers);
        while (json_object_iter_next(&it, &name, &value))
            if (JSON_NODE_HOLDS_VALUE(value) && json_node_get_value_type(value) == G_TYPE_STRING)
                g_hash_table_replace(r->headers, g_ascii_strdown(name, -1),
                                     g_strdup(json_node_get_string(value)));
    }
    if (body != NULL && !JSON_NODE_HOLDS_NULL(body))
        r->body = json_node_copy(body);
    r->retry_after_s = parse_retry_after(g_hash_table_lookup(r->headers, "retry-after"));
    r->attempts = 1;
    return r;
}

typedef struct {
    GPtrArray *requests;
    JsonNode *body;
} Batch;

static void
batch_free(gpointer p)
{
    Batch *b = p;

    g_ptr_array_unref(b->requests);
    json_node_unref(b->body);
    g_free(b);
}

/* The responses in the order of @requests, or NULL with @error. */
static GPtrArray *
batch_match(GPtrArray *requests, JsonNode *root, GError **error)
{
    JsonArray *responses = kd_json_get_array(root_object(root), "responses");
    g_autoptr(GPtrArray) out = NULL;
    g_autoptr(GHashTable) index = NULL;

    if (responses == NULL) {
        g_propagate_error(error, bad_response("a $batch answer without \"responses\""));
        return NULL;
    }
    index = g_hash_table_new(g_str_hash, g_str_equal);
    out = g_ptr_array_new_with_free_func((GDestroyNotify)kd_graph_batch_response_free);
    g_ptr_array_set_size(out, (gint)requests->len);
    for (guint i = 0; i < requests->len; i++) {
        KdGraphBatchRequest *r = g_ptr_array_index(requests, i);
        g_hash_table_insert(index, r->id, GUINT_TO_POINTER(i + 1));
    }
    for (guint i = 0; i < json_array_get_length(responses); i++) {
        JsonNode *n = json_array_get_element(responses, i);
        JsonObject *o = JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
        const char *id = kd_json_get_string(o, "id");
        guint at = id != NULL ? GPOINTER_TO_UINT(g_hash_table_lookup(index, id)) : 0;
        if (at == 0 || g_ptr_array_index(out, at - 1) != NULL || get_uint(o, "status") == 0) {
            g_propagate_error(error, bad_response("a $batch answer for an unknown or repeated "
                                                  "id, or without a status"));
            return NULL;
        }
        g_ptr_array_index(out, at - 1) = batch_response_from_json(o);
    }
    for (guint i = 0; i < out->len; i++) {
        if (g_ptr_array_index(out, i) == NULL) {
            g_propagate_error(error, bad_response("a $batch answer that leaves out a request"));
            return NULL;
        }
    }
    return g_steal_pointer(&out);
}

static void
batch_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
    GTask *task = user_data;
    Batch *b = g_task_get_task_data(task);
    GError *error = NULL;
    JsonNode *root = kd_graph_client_call_finish(KD_GRAPH_CLIENT(source), res, &error);
    GPtrArray *out;

    if (error != NULL)
        g_task_return_error(task, error);
    else if ((out = batch_match(b->requests, root, &error)) != NULL)
        g_task_return_pointer(task, out, (GDestroyNotify)g_ptr_array_unref);
    else
        g_task_return_error(task, error);
    if (root != NULL)
        json_node_unref(root);
    g_object_unref(task);
}

void
kd_graph_batch_async(KdGraphClient *client, GPtrArray *requests, KdGraphCallFlags flags,
                     GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
    const char *why = NULL;
    gboolean all_get;
    Batch *b;
    GTask *task;

    g_return_if_fail(KD_IS_GRAPH_CLIENT(client));
    if (!batch_valid(requests, KD_GRAPH_BATCH_MAX, &why)) {
        report_local(client, kd_graph_batch_async, callback, user_data, KD_GRAPH_ERROR_BAD_REQUEST,
                     why);
        return;
    }
    b = g_new0(Batch, 1);
    b->requests = g_ptr_array_ref(requests);
    b->body = batch_body(requests, &all_get);
    task = op_task_new(client, cancellable, callback, user_data, kd_graph_batch_async);
    g_task_set_task_data(task, b, batch_free);
    /* Sending the batch again is harmless only if every item is a read. */
    kd_graph_client_call_async(client, "POST", "/$batch", b->body,
                               op_flags(flags, all_get ? KD_GRAPH_CALL_IDEMPOTENT : 0), cancellable,
                               batch_done, task);
}

GPtrArray *
kd_graph_batch_finish(KdGraphClient *client, GAsyncResult *result, GError **error)
{
    return finish_pointer(client, result, kd_graph_batch_async, error);
}

/* kd_graph_batch_run_async: rounds of $batch calls; each round sends the queued items in chunks
 * of 20, then waits and queues again the items that were throttled. */
typedef struct {
    GPtrArray *requests;
    KdGraphBatchResponse **responses; /* by request index */
    guint *attempts;
    GArray *queue; /* indices still to send this round */
    GArray *again; /* indices to send next round */
    GArray *chunk; /* indices of the $batch in flight */
    guint max_attempts;
    guint round;
    guint wait_s;
    KdGraphCallFlags flags;
    GSource *timer;
    GSource *cancel_source;
} Run;

static void
run_free(gpointer p)
{
    Run *run = p;

    for (guint i = 0; i < run->requests->len; i++)
        kd_graph_batch_response_free(run->responses[i]);
    g_free(run->responses);
    g_free(run->attempts);
    g_array_unref(run->queue);
    g_array_unref(run->again);
    g_array_unref(run->chunk);
    if (run->timer != NULL) {
        g_source_destroy(run->timer);
        g_source_unref(run->timer);
    }
    if (run->cancel_source != NULL) {
        g_source_destroy(run->cancel_source);
        g_source_unref(run->cancel_source);
    }
    g_ptr_array_unref(run->requests);
    g_free(run);
}

static void run_send(GTask *task);

static void
run_stop_waiting(Run *run)
{
    if (run->timer != NULL) {
        g_source_destroy(run->timer);
        g_clear_pointer(&run->timer, g_source_unref);
    }
    if (run->cancel_source != NULL) {
        g_source_destroy(run->cancel_source);
        g_clear_pointer(&run->cancel_source, g_source_unref);
    }
}

static gboolean
run_waited(gpointer data)
{
    GTask *task = data;

    run_stop_waiting(g_task_get_task_data(task));
    run_send(task);
    return G_SOURCE_REMOVE;
}

static gboolean
run_cancelled(GCancellable *cancellable, gpointer data)
{
    GTask *task = data;
    GError *error = NULL;

    run_stop_waiting(g_task_get_task_data(task));
    g_cancellable_set_error_if_cancelled(cancellable, &error);
    g_task_return_error(task, error);
    g_object_unref(task);
    return G_SOURCE_REMOVE;
}

static void
run_round_done(GTask *task)
{
    Run *run = g_task_get_task_data(task);
    GArray *swap;
    GPtrArray *out;
    GCancellable *cancellable = g_task_get_cancellable(task);

    if (run->again->len == 0) {
        out =
            g_ptr_array_new_full(run->requests->len, (GDestroyNotify)kd_graph_batch_response_free);
        for (guint i = 0; i < run->requests->len; i++) {
            g_ptr_array_add(out, run->responses[i]);
            run->responses[i] = NULL;
        }
        g_task_return_pointer(task, out, (GDestroyNotify)g_ptr_array_unref);
        g_object_unref(task);
        return;
    }
    /* Wait as long as the most demanding item asked, else back off 1, 2, 4 … s. */
    if (run->wait_s == 0)
        run->wait_s = MIN(1u << MIN(run->round - 1, 5u), 30u);
    run->wait_s = MIN(run->wait_s, (guint)BATCH_MAX_WAIT_S);
    g_debug("graph: $batch: %u item(s) throttled, sending them again in %u s", run->again->len,
            run->wait_s);
    swap = run->queue;
    run->queue = run->again;
    run->again = swap;
    g_array_set_size(run->again, 0);
    run->round++;
    run->timer = g_timeout_source_new(run->wait_s * 1000);
    run->wait_s = 0;
    g_source_set_callback(run->timer, run_waited, task, NULL);
    g_source_attach(run->timer, g_task_get_context(task));
    if (cancellable != NULL) {
        run->cancel_source = g_cancellable_source_new(cancellable);
        g_source_set_callback(run->cancel_source, G_SOURCE_FUNC(run_cancelled), task, NULL);
        g_source_attach(run->cancel_source, g_task_get_context(task));
    }
}

static void
run_chunk_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
    GTask *task = user_data;
    Run *run = g_task_get_task_data(task);
    GError *error = NULL;
    g_autoptr(GPtrArray) answers = kd_graph_batch_finish(KD_GRAPH_CLIENT(source), res, &error);

    if (answers == NULL) {
        g_task_return_error(task, error);
        g_object_unref(task);
        return;
    }
    /* The answers are in the order of the chunk. */
    for (guint j = 0; j < run->chunk->len; j++) {
        guint i = g_array_index(run->chunk, guint, j);
        KdGraphBatchResponse *r = g_ptr_array_index(answers, j);

        g_ptr_array_index(answers, j) = NULL;
        r->attempts = run->attempts[i];
        kd_graph_batch_response_free(run->responses[i]);
        run->responses[i] = r;
        if (kd_graph_batch_response_should_retry(r) && run->attempts[i] < run->max_attempts) {
            g_array_append_val(run->again, i);
            run->wait_s = MAX(run->wait_s, r->retry_after_s);
        }
    }
    run_send(task);
}

static void
run_send(GTask *task)
{
    Run *run = g_task_get_task_data(task);
    g_autoptr(GPtrArray) chunk = NULL;
    guint n;

    if (g_task_return_error_if_cancelled(task)) {
        g_object_unref(task);
        return;
    }
    if (run->queue->len == 0) {
        run_round_done(task);
        return;
    }
    n = MIN(run->queue->len, (guint)KD_GRAPH_BATCH_MAX);
    chunk = g_ptr_array_sized_new(n);
    g_array_set_size(run->chunk, 0);
    for (guint j = 0; j < n; j++) {
        guint i = g_array_index(run->queue, guint, j);
        g_array_append_val(run->chunk, i);
        run->attempts[i]++;
        g_ptr_array_add(chunk, g_ptr_array_index(run->requests, i));
    }
    g_array_remove_range(run->queue, 0, n);
    kd_graph_batch_async(KD_GRAPH_CLIENT(g_task_get_source_object(task)), chunk, run->flags,
                         g_task_get_cancellable(task), run_chunk_done, task);
}

void
kd_graph_batch_run_async(KdGraphClient *client, GPtrArray *requests, guint max_attempts,
                         KdGraphCallFlags flags, GCancellable *cancellable,
                         GAsyncReadyCallback callback, gpointer user_data)
{
    const char *why = NULL;
    Run *run;
    GTask *task;

    g_return_if_fail(KD_IS_GRAPH_CLIENT(client));
    if (!batch_valid(requests, G_MAXUINT, &why)) {
        report_local(client, kd_graph_batch_run_async, callback, user_data,
                     KD_GRAPH_ERROR_BAD_REQUEST, why);
        return;
    }
    run = g_new0(Run, 1);
    run->requests = g_ptr_array_ref(requests);
    run->responses = g_new0(KdGraphBatchResponse *, requests->len);
    run->attempts = g_new0(guint, requests->len);
    run->queue = g_array_sized_new(FALSE, FALSE, sizeof(guint), requests->len);
    run->again = g_array_new(FALSE, FALSE, sizeof(guint));
    run->chunk = g_array_new(FALSE, FALSE, sizeof(guint));
    run->max_attempts = max_attempts != 0 ? max_attempts : BATCH_DEFAULT_TRIES;
    run->round = 1;
    run->flags = flags;
    for (guint i = 0; i < requests->len; i++)
        g_array_append_val(run->queue, i);
    task = op_task_new(client, cancellable, callback, user_data, kd_graph_batch_run_async);
    g_task_set_task_data(task, run, run_free);
    run_send(task);
}

GPtrArray *
kd_graph_batch_run_finish(KdGraphClient *client, GAsyncResult *result, GError **error)
{
    return finish_pointer(client, result, kd_graph_batch_run_async, error);
}
