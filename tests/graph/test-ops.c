/* test-ops: every typed Graph operation against the emulator: results, errors, lost answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "graph/kd-b64.h"
#include "graph/kd-graph-ops.h"
#include "kd-emulator.h"

#define DOMAIN       "@" KD_EMU_DOMAIN
#define EXT_ENROLLED "extension_3f2a6c1e8d4b4e579a0f2b7c1d9e4f60_mfaKioskEnrolled"

/* --- fixture
 * -------------------------------------------------------------------------------
 */

typedef struct {
    KdEmulator *emu;
    KdGraphClient *client;
    KdSecret *secret;
    gint64 seq; /* request log position of the last mark() */
} Fx;

/* Every Fx alive, so that a failed test (cmocka jumps out of it) still stops its emulator. */
static GPtrArray *live;

static Fx *
fx_new(const char *tweak, const char *faults)
{
    Fx *fx = g_new0(Fx, 1);
    g_autoptr(GError) error = NULL;
    g_autofree char *port = NULL, *graph = NULL, *login = NULL;
    const char *connect_to[3];
    KdGraphOptions options = {0};

    fx->emu = kd_emulator_start(tweak, faults);
    port = g_strdup(strrchr(fx->emu->host_port, ':') + 1);
    graph = g_strdup_printf("graph.microsoft.com:443:127.0.0.1:%s", port);
    login = g_strdup_printf("login.microsoftonline.com:443:127.0.0.1:%s", port);
    connect_to[0] = graph;
    connect_to[1] = login;
    connect_to[2] = NULL;
    fx->secret = kd_secret_new_from(KD_EMU_KIOSK_SECRET, strlen(KD_EMU_KIOSK_SECRET));
    options.graph_url = "https://graph.microsoft.com";
    options.login_url = "https://login.microsoftonline.com";
    options.tenant = KD_EMU_TENANT_ID;
    options.client_id = KD_EMU_KIOSK_APP;
    options.client_secret = fx->secret;
    options.ca_file = fx->emu->ca_file;
    options.connect_to = connect_to;
    options.user_agent = "keydesk-test-ops";
    fx->client = kd_graph_client_new(&options, &error);
    assert_non_null(fx->client);
    fx->seq = -1;
    if (live == NULL)
        live = g_ptr_array_new();
    g_ptr_array_add(live, fx);
    return fx;
}

static void
fx_free(Fx *fx)
{
    g_ptr_array_remove(live, fx);
    g_clear_object(&fx->client);
    kd_secret_unref(fx->secret);
    kd_emulator_stop(&fx->emu);
    /* Let the client's sources that were destroyed with it go. */
    while (g_main_context_iteration(NULL, FALSE))
        ;
    g_free(fx);
}

/* The Graph requests (control calls left out) since the last mark. */
static JsonArray *
graph_log(Fx *fx)
{
    JsonNode *all = kd_emulator_requests(fx->emu, fx->seq);
    JsonArray *a = json_node_get_array(all), *out = json_array_new();

    for (guint i = 0; i < json_array_get_length(a); i++) {
        JsonObject *e = json_array_get_object_element(a, i);
        const char *path = json_object_get_string_member_with_default(e, "path", "");
        if (g_str_has_prefix(path, "/v1.0/") || g_str_has_prefix(path, "/beta/"))
            json_array_add_object_element(out, json_object_ref(e));
    }
    json_node_unref(all);
    return out;
}

static void
mark(Fx *fx)
{
    JsonNode *all = kd_emulator_requests(fx->emu, fx->seq);
    JsonArray *a = json_node_get_array(all);

    if (json_array_get_length(a) > 0)
        fx->seq = json_object_get_int_member(
            json_array_get_object_element(a, json_array_get_length(a) - 1), "seq");
    json_node_unref(all);
}

/* The last Graph request since the mark (not in a batch). */
static JsonObject *
last_request(Fx *fx)
{
    JsonArray *log = graph_log(fx);
    JsonObject *e;

    assert_true(json_array_get_length(log) > 0);
    e = json_object_ref(json_array_get_object_element(log, json_array_get_length(log) - 1));
    json_array_unref(log);
    return e;
}

static JsonNode *
control(Fx *fx, const char *method, const char *path, const char *body)
{
    guint status = 0;
    JsonNode *node = kd_emulator_call(fx->emu, method, path, body, &status);

    if (status >= 300)
        fail_msg("%s %s: %u", method, path, status);
    return node;
}

/* Waiting for an operation: one Wait per call. */
typedef struct {
    gboolean done;
    GAsyncResult *res;
} Wait;

static void
on_done(GObject *source, GAsyncResult *res, gpointer data)
{
    Wait *w = data;

    w->res = g_object_ref(res);
    w->done = TRUE;
}

static GAsyncResult *
wait_res(Wait *w)
{
    assert_true(kd_test_run_until(&w->done, 90000));
    return w->res;
}

static void
wait_clear(Wait *w)
{
    g_clear_object(&w->res);
    w->done = FALSE;
}

static void
assert_graph_error(const GError *error, KdGraphErrorCode code)
{
    if (error == NULL)
        fail_msg("expected %s, got success", kd_graph_error_code_name(code));
    if (!g_error_matches(error, KD_GRAPH_ERROR, (int)code))
        fail_msg("expected %s, got %s %d: %s", kd_graph_error_code_name(code),
                 g_quark_to_string(error->domain), error->code, error->message);
}

/* Synchronous wrappers keep the tests readable. */

static KdGraphUser *
get_user(Fx *fx, const char *who, GError **error)
{
    Wait w = {0};
    KdGraphUser *u;

    kd_graph_get_user_async(fx->client, who, 0, NULL, on_done, &w);
    u = kd_graph_get_user_finish(fx->client, wait_res(&w), error);
    wait_clear(&w);
    return u;
}

static GPtrArray *
list_methods(Fx *fx, const char *who, KdGraphMethodKind kind, GError **error)
{
    Wait w = {0};
    GPtrArray *a;

    kd_graph_list_methods_async(fx->client, who, kind, 0, NULL, on_done, &w);
    a = kd_graph_list_methods_finish(fx->client, wait_res(&w), error);
    wait_clear(&w);
    return a;
}

static KdGraphMethod *
find_kind(GPtrArray *methods, KdGraphMethodKind kind)
{
    for (guint i = 0; i < methods->len; i++) {
        KdGraphMethod *m = g_ptr_array_index(methods, i);
        if (m->kind == kind)
            return m;
    }
    return NULL;
}

static KdGraphDeleteResult
delete_method(Fx *fx, const char *who, KdGraphMethodKind kind, const char *id, GError **error)
{
    Wait w = {0};
    KdGraphDeleteResult r;

    kd_graph_delete_method_async(fx->client, who, kind, id, 0, NULL, on_done, &w);
    r = kd_graph_delete_method_finish(fx->client, wait_res(&w), error);
    wait_clear(&w);
    return r;
}

static KdGraphFido2Options *
get_fido2_options(Fx *fx, const char *who, guint minutes, GError **error)
{
    Wait w = {0};
    KdGraphFido2Options *o;

    kd_graph_get_fido2_options_async(fx->client, who, minutes, 0, NULL, on_done, &w);
    o = kd_graph_get_fido2_options_finish(fx->client, wait_res(&w), error);
    wait_clear(&w);
    return o;
}

/* --- users
 * ------------------------------------------------------------------------------------
 */

static void
test_user_path(void **state)
{
    static const struct {
        const char *in, *out;
    } v[] = {
        {"ada@contoso.com", "/users/ada%40contoso.com"},
        {KD_EMU_USER_ADA, "/users/" KD_EMU_USER_ADA},
        {"$ops@contoso.com", "/users('$ops%40contoso.com')"},
        {"$o'p@x.com", "/users('$o''p%40x.com')"},
        {"gail_fabrikam.com#EXT#@contoso.com", "/users/gail_fabrikam.com%23EXT%23%40contoso.com"},
        {"a b/c?d", "/users/a%20b%2Fc%3Fd"},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(v); i++) {
        g_autofree char *path = kd_graph_user_path(v[i].in);
        assert_string_equal(path, v[i].out);
    }
}

static void
test_users(void **state)
{
    Fx *fx = fx_new(NULL, NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(KdGraphUser) ada = NULL, by_id = NULL, ops = NULL, guest = NULL, none = NULL;
    g_autoptr(GPtrArray) found = NULL;
    JsonObject *req;
    Wait w = {0};

    mark(fx);
    ada = get_user(fx, "ada" DOMAIN, &error);
    assert_null(error);
    assert_string_equal(ada->id, KD_EMU_USER_ADA);
    assert_string_equal(ada->display_name, "Ada Lovelace");
    assert_string_equal(ada->user_principal_name, "ada" DOMAIN);
    assert_string_equal(ada->mail, "ada" DOMAIN);
    assert_string_equal(ada->user_type, "Member");
    assert_true(ada->account_enabled);
    req = last_request(fx);
    assert_string_equal(json_object_get_string_member(req, "path"),
                        "/v1.0/users/ada%40" KD_EMU_DOMAIN "?$select=id,displayName,"
                        "userPrincipalName,accountEnabled,userType,mail");
    /* interactive: a visitor waits */
    assert_string_equal(json_object_get_string_member(req, "throttlePriority"), "High");
    json_object_unref(req);

    by_id = get_user(fx, KD_EMU_USER_ADA, &error);
    assert_null(error);
    assert_string_equal(by_id->user_principal_name, "ada" DOMAIN);

    mark(fx);
    ops = get_user(fx, "$ops" DOMAIN, &error);
    assert_null(error);
    assert_string_equal(ops->id, "3b1c2d4e-0000-4000-8000-000000000006");
    req = last_request(fx);
    assert_true(g_str_has_prefix(json_object_get_string_member(req, "path"),
                                 "/v1.0/users('$ops%40" KD_EMU_DOMAIN "')?"));
    json_object_unref(req);

    guest = get_user(fx, "gail_fabrikam.com#EXT#" DOMAIN, &error);
    assert_null(error);
    assert_string_equal(guest->id, "3b1c2d4e-0000-4000-8000-000000000007");
    assert_string_equal(guest->user_type, "Guest");
    assert_string_equal(guest->mail, "gail@fabrikam.com");

    none = get_user(fx, "nobody" DOMAIN, &error);
    assert_null(none);
    assert_graph_error(error, KD_GRAPH_ERROR_NOT_FOUND);
    g_clear_error(&error);

    /* search: display name, UPN and mail prefixes */
    mark(fx);
    kd_graph_search_users_async(fx->client, "Ada", 0, 0, NULL, on_done, &w);
    found = kd_graph_search_users_finish(fx->client, wait_res(&w), &error);
    wait_clear(&w);
    assert_null(error);
    assert_int_equal(found->len, 1);
    assert_string_equal(((KdGraphUser *)g_ptr_array_index(found, 0))->id, KD_EMU_USER_ADA);
    req = last_request(fx);
    assert_non_null(strstr(json_object_get_string_member(req, "path"), "$top=25"));
    json_object_unref(req);
    g_clear_pointer(&found, g_ptr_array_unref);

    kd_graph_search_users_async(fx->client, "gail@fab", 0, 0, NULL, on_done, &w); /* mail */
    found = kd_graph_search_users_finish(fx->client, wait_res(&w), &error);
    wait_clear(&w);
    assert_null(error);
    assert_int_equal(found->len, 1);
    assert_string_equal(((KdGraphUser *)g_ptr_array_index(found, 0))->user_type, "Guest");
    g_clear_pointer(&found, g_ptr_array_unref);

    kd_graph_search_users_async(fx->client, "O'Neil", 100, 0, NULL, on_done, &w); /* quote */
    found = kd_graph_search_users_finish(fx->client, wait_res(&w), &error);
    wait_clear(&w);
    assert_null(error);
    assert_int_equal(found->len, 0);
    g_clear_pointer(&found, g_ptr_array_unref);

    kd_graph_search_users_async(fx->client, "", 0, 0, NULL, on_done, &w);
    found = kd_graph_search_users_finish(fx->client, wait_res(&w), &error);
    wait_clear(&w);
    assert_null(found);
    assert_graph_error(error, KD_GRAPH_ERROR_BAD_REQUEST);
    fx_free(fx);
}

/* --- methods
 * ----------------------------------------------------------------------------------
 */

static void
test_methods(void **state)
{
    Fx *fx = fx_new(NULL, NULL);
    g_autoptr(GError) error = NULL;
    GPtrArray *all;
    KdGraphMethod *m;

    /* bob: password + Microsoft Authenticator, from the generic collection */
    all = list_methods(fx, "bob" DOMAIN, KD_GRAPH_METHOD_ANY, &error);
    assert_null(error);
    assert_int_equal(all->len, 2);
    assert_non_null(find_kind(all, KD_GRAPH_METHOD_PASSWORD));
    m = find_kind(all, KD_GRAPH_METHOD_MICROSOFT_AUTHENTICATOR);
    assert_non_null(m);
    assert_string_equal(m->display_name, "iPhone 15");
    assert_string_equal(m->device_tag, "SoftwareTokenActivated");
    assert_string_equal(m->phone_app_version, "6.8.7");
    assert_true(m->created_unix > 0);
    g_ptr_array_unref(all);

    /* typed collections carry no @odata.type: the kind comes from the collection
     */
    all = list_methods(fx, KD_EMU_USER_BOB, KD_GRAPH_METHOD_MICROSOFT_AUTHENTICATOR, &error);
    assert_null(error);
    assert_int_equal(all->len, 1);
    m = g_ptr_array_index(all, 0);
    assert_int_equal(m->kind, KD_GRAPH_METHOD_MICROSOFT_AUTHENTICATOR);
    assert_string_equal(m->odata_type,
                        "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod");
    g_ptr_array_unref(all);

    /* carol: a FIDO2 key */
    all = list_methods(fx, "carol" DOMAIN, KD_GRAPH_METHOD_FIDO2, &error);
    assert_null(error);
    assert_int_equal(all->len, 1);
    m = g_ptr_array_index(all, 0);
    assert_string_equal(m->display_name, "YubiKey 5 NFC");
    assert_string_equal(m->aaguid, "cb69481e-8ff7-4039-93ec-0a2729a154a8");
    assert_string_equal(m->model, "YubiKey 5 Series with NFC");
    g_ptr_array_unref(all);

    /* dave: Authenticator + SMS phone */
    all = list_methods(fx, "dave" DOMAIN, KD_GRAPH_METHOD_ANY, &error);
    assert_null(error);
    assert_int_equal(all->len, 3);
    m = find_kind(all, KD_GRAPH_METHOD_PHONE);
    assert_non_null(m);
    assert_string_equal(m->phone_number, "+1 2065550100");
    assert_string_equal(m->phone_type, "mobile");
    g_ptr_array_unref(all);

    all = list_methods(fx, "dave" DOMAIN, KD_GRAPH_METHOD_SOFTWARE_OATH, &error);
    assert_null(error);
    assert_int_equal(all->len, 0);
    g_ptr_array_unref(all);

    all = list_methods(fx, "nobody" DOMAIN, KD_GRAPH_METHOD_ANY, &error);
    assert_null(all);
    assert_graph_error(error, KD_GRAPH_ERROR_NOT_FOUND);
    fx_free(fx);
}

static void
test_delete_default(void **state)
{
    Fx *fx = fx_new(NULL, NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) all = list_methods(fx, "dave" DOMAIN, KD_GRAPH_METHOD_ANY, &error);
    g_autofree char *app_id = NULL, *phone_id = NULL;

    assert_null(error);
    app_id = g_strdup(find_kind(all, KD_GRAPH_METHOD_MICROSOFT_AUTHENTICATOR)->id);
    phone_id = g_strdup(find_kind(all, KD_GRAPH_METHOD_PHONE)->id);

    /* the lost phone's Authenticator is the default while SMS remains */
    assert_int_equal(
        delete_method(fx, "dave" DOMAIN, KD_GRAPH_METHOD_MICROSOFT_AUTHENTICATOR, app_id, &error),
        KD_GRAPH_DELETE_IS_DEFAULT);
    assert_null(error);
    assert_int_equal(delete_method(fx, "dave" DOMAIN, KD_GRAPH_METHOD_PHONE, phone_id, &error),
                     KD_GRAPH_DELETE_DONE);
    assert_null(error);
    assert_int_equal(
        delete_method(fx, "dave" DOMAIN, KD_GRAPH_METHOD_MICROSOFT_AUTHENTICATOR, app_id, &error),
        KD_GRAPH_DELETE_DONE);
    assert_null(error);
    /* again, as a retry after a lost answer would */
    assert_int_equal(
        delete_method(fx, "dave" DOMAIN, KD_GRAPH_METHOD_MICROSOFT_AUTHENTICATOR, app_id, &error),
        KD_GRAPH_DELETE_GONE);
    assert_null(error);
    /* an unknown user stays an error */
    assert_int_equal(
        delete_method(fx, "nobody" DOMAIN, KD_GRAPH_METHOD_MICROSOFT_AUTHENTICATOR, app_id, &error),
        KD_GRAPH_DELETE_FAILED);
    assert_graph_error(error, KD_GRAPH_ERROR_NOT_FOUND);
    g_clear_error(&error);
    /* the kiosk may not touch passwords: an ordinary error */
    assert_int_equal(delete_method(fx, "dave" DOMAIN, KD_GRAPH_METHOD_PASSWORD,
                                   "28c10230-6103-485e-b985-444c60001490", &error),
                     KD_GRAPH_DELETE_FAILED);
    assert_graph_error(error, KD_GRAPH_ERROR_FORBIDDEN);
    fx_free(fx);
}

/* --- FIDO2
 * ------------------------------------------------------------------------------------
 */

static void
test_fido2_options(void **state)
{
    Fx *fx = fx_new(NULL, NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(KdGraphFido2Options) v1 = NULL, beta = NULL, carol = NULL, bad = NULL;
    g_autofree char *reencoded = NULL;
    gint64 now = g_get_real_time() / G_USEC_PER_SEC;
    const guint8 *data;
    gsize len = 0;
    JsonObject *req;
    GBytes *id;

    mark(fx);
    v1 = get_fido2_options(fx, "ada" DOMAIN, 0, &error);
    assert_null(error);
    req = last_request(fx);
    assert_string_equal(json_object_get_string_member(req, "path"),
                        "/v1.0/users/ada%40" KD_EMU_DOMAIN
                        "/authentication/fido2Methods/creationOptions");
    json_object_unref(req);
    assert_string_equal(v1->rp_id, "login.microsoft.com");
    assert_string_equal(v1->rp_name, "Microsoft");
    data = g_bytes_get_data(v1->user_id, &len);
    assert_int_equal(len, 48);
    assert_memory_equal(data, "OF:", 3);
    assert_string_equal(v1->user_name, "ada" DOMAIN);
    assert_string_equal(v1->user_display_name, "Ada Lovelace");
    data = g_bytes_get_data(v1->challenge, &len);
    assert_true(len > 1000);
    reencoded = kd_b64url_encode(data, len);
    assert_string_equal(reencoded, v1->challenge_text);
    assert_true(v1->timeout_unix >= now + 5 * 60 - 5 && v1->timeout_unix <= now + 5 * 60 + 5);
    assert_int_equal(v1->timeout_ms, 60000);
    assert_int_equal(v1->exclude_ids->len, 0);
    assert_int_equal(v1->algorithms->len, 2);
    assert_int_equal(g_array_index(v1->algorithms, gint, 0), -7);
    assert_int_equal(g_array_index(v1->algorithms, gint, 1), -257);
    assert_string_equal(v1->attestation, "direct");
    assert_string_equal(v1->authenticator_attachment, "cross-platform");
    assert_true(v1->require_resident_key);
    assert_string_equal(v1->user_verification, "required");
    assert_true(v1->hmac_create_secret);
    assert_true(v1->enforce_cred_protect);
    assert_int_equal(v1->cred_protect, 1);

    /* beta with a longer challenge */
    mark(fx);
    beta = get_fido2_options(fx, "ada" DOMAIN, 10, &error);
    assert_null(error);
    req = last_request(fx);
    assert_string_equal(json_object_get_string_member(req, "path"),
                        "/beta/users/ada%40" KD_EMU_DOMAIN "/authentication/fido2Methods/"
                        "creationOptions(challengeTimeoutInMinutes=10)");
    json_object_unref(req);
    assert_true(beta->timeout_unix >= now + 600 - 5 && beta->timeout_unix <= now + 600 + 5);
    assert_string_not_equal(beta->challenge_text, v1->challenge_text);

    /* out of range: refused before anything is sent */
    mark(fx);
    bad = get_fido2_options(fx, "ada" DOMAIN, 4, &error);
    assert_null(bad);
    assert_graph_error(error, KD_GRAPH_ERROR_BAD_REQUEST);
    g_clear_error(&error);
    {
        JsonArray *log = graph_log(fx);
        assert_int_equal(json_array_get_length(log), 0);
        json_array_unref(log);
    }

    /* carol's existing key is excluded */
    carol = get_fido2_options(fx, "carol" DOMAIN, 0, &error);
    assert_null(error);
    assert_int_equal(carol->exclude_ids->len, 1);
    id = g_ptr_array_index(carol->exclude_ids, 0);
    data = g_bytes_get_data(id, &len);
    assert_int_equal(len, 21);
    assert_memory_equal(data, "carol-existing-key-id", 21);
    fx_free(fx);
}

/* Carol gets three keys whose ids use '+', '/' and padding in standard base64.
 */
#define CAROL_KEYS                                                             \
    "import base64\n"                                                          \
    "c = [u for u in t['users'] if "                                           \
    "u['userPrincipalName'].startswith('carol@')][0]\n"                        \
    "c['methods'] = [m for m in c['methods'] if m['type'] != 'fido2']\n"       \
    "for i, raw in enumerate([b'\\xfb\\xff\\xbf' * 5 + b'\\x01', "             \
    "b'second-key-id',\n"                                                      \
    "                         b'\\xff\\xfe\\xfd' * 11]):\n"                    \
    "    c['methods'].append({'type': 'fido2', 'displayName': 'Key %d' % i,\n" \
    "        '_credentialId': "                                                \
    "base64.urlsafe_b64encode(raw).decode().rstrip('=')})\n"

static void
test_fido2_exclude_encodings(void **state)
{
    Fx *fx = fx_new(CAROL_KEYS, NULL);
    static const char *const encodings[] = {"base64url", "base64", "mixed", "corrupt"};
    g_autoptr(GBytes) k0 = NULL, k1 = NULL, k2 = NULL;
    guint8 raw0[16], raw2[33];

    for (gsize i = 0; i < 5; i++)
        memcpy(raw0 + 3 * i, "\xfb\xff\xbf", 3);
    raw0[15] = 0x01;
    for (gsize i = 0; i < 11; i++)
        memcpy(raw2 + 3 * i, "\xff\xfe\xfd", 3);
    k0 = g_bytes_new(raw0, sizeof(raw0));
    k1 = g_bytes_new("second-key-id", 13);
    k2 = g_bytes_new(raw2, sizeof(raw2));

    for (gsize e = 0; e < G_N_ELEMENTS(encodings); e++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(KdGraphFido2Options) o = NULL;
        g_autofree char *body =
            g_strdup_printf("{\"fido2ExcludeIdEncoding\": \"%s\"}", encodings[e]);

        json_node_unref(control(fx, "PATCH", "/_emulator/settings", body));
        o = get_fido2_options(fx, "carol" DOMAIN, e == 1 ? 10 : 0, &error);
        assert_null(error);
        if (g_str_equal(encodings[e], "corrupt")) {
            /* ids 0 and 2 carry a stray '!': skipped, never a failure */
            assert_int_equal(o->exclude_skipped, 2);
            assert_int_equal(o->exclude_ids->len, 1);
            assert_true(g_bytes_equal(g_ptr_array_index(o->exclude_ids, 0), k1));
        } else {
            assert_int_equal(o->exclude_skipped, 0);
            assert_int_equal(o->exclude_ids->len, 3);
            assert_true(g_bytes_equal(g_ptr_array_index(o->exclude_ids, 0), k0));
            assert_true(g_bytes_equal(g_ptr_array_index(o->exclude_ids, 1), k1));
            assert_true(g_bytes_equal(g_ptr_array_index(o->exclude_ids, 2), k2));
        }
    }
    fx_free(fx);
}

static void
test_fido2_display_name(void **state)
{
    static const struct {
        const char *in, *out;
    } v[] = {
        {NULL, "Security key"},
        {"   ", "Security key"},
        {"YubiKey 5 NFC", "YubiKey 5 NFC"},
        {"  padded  ", "padded"},
        {"123456789012345678901234567890", "123456789012345678901234567890"},
        {"1234567890123456789012345678901", "123456789012345678901234567890"},
        /* 29 ASCII + é (2 bytes, 1 character) + more: é kept, cut after it */
        {"12345678901234567890123456789\xc3\xa9xyz", "12345678901234567890123456789\xc3\xa9"},
        /* an emoji counts 2 (UTF-16): 29 + 😀 would be 31, so it goes */
        {"12345678901234567890123456789\xf0\x9f\x98\x80", "12345678901234567890123456789"},
        {"YubiKey 5 NFC for Ada Lovelace, serial 12345678", "YubiKey 5 NFC for Ada Lovelace"},
        /* a cut that would leave a trailing space drops it */
        {"12345678901234567890123456789 xyz", "12345678901234567890123456789"},
        {"bad \xff utf8", "bad \xef\xbf\xbd utf8"},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(v); i++) {
        g_autofree char *name = kd_graph_fido2_display_name(v[i].in);
        assert_string_equal(name, v[i].out);
        assert_true(g_utf8_validate(name, -1, NULL));
        assert_true(g_utf8_strlen(name, -1) <= 30);
    }
}

/* Makes a real registration for @o with tests/graph-emulator/tests/fido2util.py
 * (python3-fido2), as libfido2 would with a key. Returns the POST body fields
 * decoded, and checks that the clientDataJSON the authenticator signed is byte
 * for byte what kd_graph_fido2_client_data() builds. */
static void
make_credential(const KdGraphFido2Options *o, GBytes **id, GBytes **cdj, GBytes **att)
{
    static const char script[] = "import base64, json, sys\n"
                                 "sys.path.insert(0, sys.argv[1])\n"
                                 "import fido2util\n"
                                 "cred = fido2util.make_credential(json.loads(sys.argv[2]))\n"
                                 "json.dump(cred.body, sys.stdout)\n";
    g_autofree char *dir =
        g_build_filename(KD_SOURCE_DIR, "tests", "graph-emulator", "tests", NULL);
    g_autofree char *opts =
        g_strdup_printf("{\"publicKey\": {\"rp\": {\"id\": \"%s\"}, \"challenge\": \"%s\"}}",
                        o->rp_id, o->challenge_text);
    g_auto(GStrv) argv = g_new0(char *, 6);
    g_autofree char *out = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autoptr(GBytes) mine = kd_graph_fido2_client_data(o);
    JsonObject *body, *pkc, *resp;
    int status = 0;

    argv[0] = g_strdup("/usr/bin/python3");
    argv[1] = g_strdup("-c");
    argv[2] = g_strdup(script);
    argv[3] = g_strdup(dir);
    argv[4] = g_strdup(opts);
    if (!g_spawn_sync(NULL, argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, NULL, &status, &error) ||
        !g_spawn_check_wait_status(status, NULL))
        fail_msg("fido2util failed: %s", error != NULL ? error->message : "exit status");
    assert_true(json_parser_load_from_data(parser, out, -1, NULL));
    body = json_node_get_object(json_parser_get_root(parser));
    pkc = json_object_get_object_member(body, "publicKeyCredential");
    resp = json_object_get_object_member(pkc, "response");
    *id = kd_b64_decode_bytes(json_object_get_string_member(pkc, "id"));
    *cdj = kd_b64_decode_bytes(json_object_get_string_member(resp, "clientDataJSON"));
    *att = kd_b64_decode_bytes(json_object_get_string_member(resp, "attestationObject"));
    assert_non_null(*id);
    assert_non_null(*cdj);
    assert_non_null(*att);
    assert_true(g_bytes_equal(*cdj, mine));
}

static KdGraphMethod *
register_fido2(Fx *fx, const char *who, const KdGraphFido2Registration *reg, gboolean *recovered,
               GError **error)
{
    Wait w = {0};
    KdGraphMethod *m;

    kd_graph_register_fido2_async(fx->client, who, reg, 0, NULL, on_done, &w);
    m = kd_graph_register_fido2_finish(fx->client, wait_res(&w), recovered, error);
    wait_clear(&w);
    return m;
}

static void
test_fido2_register(void **state)
{
    Fx *fx = fx_new(NULL, NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(KdGraphFido2Options) o = get_fido2_options(fx, "ada" DOMAIN, 0, &error);
    g_autoptr(GBytes) id = NULL, cdj = NULL, att = NULL;
    g_autoptr(KdGraphMethod) m = NULL, again = NULL;
    g_autoptr(GPtrArray) keys = NULL;
    KdGraphFido2Registration reg = {0};
    gboolean recovered = TRUE;
    JsonObject *req, *body, *pkc;
    const char *text;

    assert_null(error);
    make_credential(o, &id, &cdj, &att);
    reg.display_name = "YubiKey 5 NFC for Ada Lovelace, serial 12345678";
    reg.credential_id = id;
    reg.client_data_json = cdj;
    reg.attestation_object = att;
    mark(fx);
    m = register_fido2(fx, "ada" DOMAIN, &reg, &recovered, &error);
    assert_null(error);
    assert_false(recovered);
    assert_int_equal(m->kind, KD_GRAPH_METHOD_FIDO2);
    assert_string_equal(m->display_name, "YubiKey 5 NFC for Ada Lovelace");
    assert_string_equal(m->aaguid, "cb69481e-8ff7-4039-93ec-0a2729a154a8");
    assert_string_equal(m->attestation_level, "notAttested");

    /* the body: base64url without padding, no @odata.type, 30 characters at most
     */
    req = last_request(fx);
    assert_string_equal(json_object_get_string_member(req, "method"), "POST");
    assert_int_equal(json_object_get_int_member(req, "status"), 201);
    assert_string_equal(json_object_get_string_member(req, "throttlePriority"), "High");
    body = json_object_get_object_member(req, "body");
    assert_false(json_object_has_member(body, "@odata.type"));
    assert_string_equal(json_object_get_string_member(body, "displayName"),
                        "YubiKey 5 NFC for Ada Lovelace");
    pkc = json_object_get_object_member(body, "publicKeyCredential");
    assert_false(json_object_has_member(pkc, "@odata.type"));
    assert_int_equal(
        json_object_get_size(json_object_get_object_member(pkc, "clientExtensionResults")), 0);
    text = json_object_get_string_member(pkc, "id");
    assert_null(strpbrk(text, "+/="));
    text = json_object_get_string_member(json_object_get_object_member(pkc, "response"),
                                         "attestationObject");
    assert_null(strpbrk(text, "+/="));
    json_object_unref(req);

    keys = list_methods(fx, "ada" DOMAIN, KD_GRAPH_METHOD_FIDO2, &error);
    assert_null(error);
    assert_int_equal(keys->len, 1);
    assert_string_equal(((KdGraphMethod *)g_ptr_array_index(keys, 0))->id, m->id);

    /* not idempotent: the same registration again is refused (the challenge is
     * used) */
    again = register_fido2(fx, "ada" DOMAIN, &reg, NULL, &error);
    assert_null(again);
    assert_graph_error(error, KD_GRAPH_ERROR_BAD_REQUEST);
    fx_free(fx);
}

#define FIDO2_POST_RESET(phase)                                                 \
    "{\"rules\": [{\"name\": \"lose-answer\", \"method\": \"POST\", "           \
    "\"path\": \"^/v1.0/users/[^/]+/authentication/fido2Methods$\", \"kind\": " \
    "\"reset\", "                                                               \
    "\"phase\": \"" phase "\", \"count\": 1}]}"

static void
test_fido2_register_lost_answer(void **state)
{
    Fx *fx = fx_new(NULL, FIDO2_POST_RESET("response"));
    g_autoptr(GError) error = NULL;
    g_autoptr(KdGraphFido2Options) o = get_fido2_options(fx, "ada" DOMAIN, 0, &error);
    g_autoptr(GBytes) id = NULL, cdj = NULL, att = NULL;
    g_autoptr(KdGraphMethod) m = NULL;
    g_autoptr(JsonArray) log = NULL;
    KdGraphFido2Registration reg = {0};
    const char *const none[] = {NULL};
    gboolean recovered = FALSE;
    JsonNode *state_node;
    JsonArray *methods;
    gboolean seen = FALSE;

    assert_null(error);
    make_credential(o, &id, &cdj, &att);
    reg.display_name = "Key 1234";
    reg.credential_id = id;
    reg.client_data_json = cdj;
    reg.attestation_object = att;
    reg.aaguid = "CB69481E-8FF7-4039-93EC-0A2729A154A8";
    reg.known_method_ids = none;
    mark(fx);
    m = register_fido2(fx, "ada" DOMAIN, &reg, &recovered, &error);
    if (error != NULL)
        fail_msg("%s", error->message);
    assert_true(recovered);
    assert_string_equal(m->display_name, "Key 1234");

    /* it really is the key the emulator stored, and the POST went once */
    state_node = control(fx, "GET", "/_emulator/users/ada" DOMAIN, NULL);
    methods = json_object_get_array_member(json_node_get_object(state_node), "methods");
    for (guint i = 0; i < json_array_get_length(methods); i++) {
        JsonObject *x = json_array_get_object_element(methods, i);
        if (g_strcmp0(json_object_get_string_member_with_default(x, "id", ""), m->id) == 0)
            seen = TRUE;
    }
    assert_true(seen);
    json_node_unref(state_node);
    log = graph_log(fx);
    {
        guint posts = 0, gets = 0;
        for (guint i = 0; i < json_array_get_length(log); i++) {
            JsonObject *e = json_array_get_object_element(log, i);
            if (g_str_equal(json_object_get_string_member(e, "method"), "POST"))
                posts++;
            else if (g_str_has_suffix(json_object_get_string_member(e, "path"), "/fido2Methods"))
                gets++;
        }
        assert_int_equal(posts, 1);
        assert_int_equal(gets, 1);
    }
    fx_free(fx);
}

/* The answer is lost before Graph ran the request: nothing to find. And a key
 * with the same name that already existed is not taken for ours when its id is
 * known. */
#define ADA_SAME_NAME_KEY                             \
    "a = [u for u in t['users'] if "                  \
    "u['userPrincipalName'].startswith('ada@')][0]\n" \
    "a['methods'].append({'type': 'fido2', 'id': "    \
    "'0f0f0f0f-0000-4000-8000-00000000abcd',\n"       \
    "    'displayName': 'Key 1234', 'aaGuid': "       \
    "'cb69481e-8ff7-4039-93ec-0a2729a154a8',\n"       \
    "    '_credentialId': 'b2xkLWtleQ'})\n"

static void
test_fido2_register_lost_request(void **state)
{
    Fx *fx = fx_new(ADA_SAME_NAME_KEY, FIDO2_POST_RESET("request"));
    g_autoptr(GError) error = NULL;
    g_autoptr(KdGraphFido2Options) o = get_fido2_options(fx, "ada" DOMAIN, 0, &error);
    g_autoptr(GBytes) id = NULL, cdj = NULL, att = NULL;
    g_autoptr(KdGraphMethod) m = NULL;
    const char *const known[] = {"0f0f0f0f-0000-4000-8000-00000000abcd", NULL};
    KdGraphFido2Registration reg = {0};
    gboolean recovered = TRUE;
    g_autoptr(GPtrArray) keys = NULL;

    assert_null(error);
    make_credential(o, &id, &cdj, &att);
    reg.display_name = "Key 1234";
    reg.credential_id = id;
    reg.client_data_json = cdj;
    reg.attestation_object = att;
    reg.known_method_ids = known;
    m = register_fido2(fx, "ada" DOMAIN, &reg, &recovered, &error);
    assert_null(m);
    assert_false(recovered);
    assert_graph_error(error, KD_GRAPH_ERROR_UNKNOWN_OUTCOME);
    assert_non_null(strstr(error->message, "not found"));
    keys = list_methods(fx, "ada" DOMAIN, KD_GRAPH_METHOD_FIDO2, NULL);
    assert_int_equal(keys->len, 1); /* only the old one */
    fx_free(fx);
}

/* --- Temporary Access Pass
 * ---------------------------------------------------------------------- */

static KdGraphTap *
create_tap(Fx *fx, const char *who, guint minutes, GPtrArray **existing, GError **error)
{
    Wait w = {0};
    KdGraphTap *tap;

    kd_graph_create_tap_async(fx->client, who, minutes, TRUE, 0, NULL, on_done, &w);
    tap = kd_graph_create_tap_finish(fx->client, wait_res(&w), existing, error);
    wait_clear(&w);
    return tap;
}

static void
test_tap(void **state)
{
    Fx *fx = fx_new(NULL, NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(KdGraphTap) tap = NULL, too_long = NULL, too_short = NULL;
    g_autoptr(GPtrArray) taps = NULL, existing = NULL;
    KdGraphMethod *m;
    JsonObject *req, *body;

    mark(fx);
    tap = create_tap(fx, "ada" DOMAIN, 60, &existing, &error);
    assert_null(error);
    assert_null(existing);
    assert_non_null(tap->id);
    assert_int_equal(kd_secret_get_length(tap->pass), 8);
    assert_true(tap->is_usable_once);
    assert_int_equal(tap->lifetime_minutes, 60);
    assert_int_equal(tap->expires_unix - tap->start_unix, 3600);
    req = last_request(fx);
    body = json_object_get_object_member(req, "body");
    assert_int_equal(json_object_get_int_member(body, "lifetimeInMinutes"), 60);
    assert_true(json_object_get_boolean_member(body, "isUsableOnce"));
    assert_false(json_object_has_member(body, "@odata.type"));
    json_object_unref(req);

    /* the pass works once, as on the visitor's phone */
    {
        g_autofree char *signin =
            g_strdup_printf("{\"method\": \"temporaryAccessPass\", \"pass\": \"%s\"}",
                            kd_secret_get_string(tap->pass));
        json_node_unref(control(fx, "POST", "/_emulator/users/ada" DOMAIN "/signin", signin));
    }

    taps = list_methods(fx, "ada" DOMAIN, KD_GRAPH_METHOD_TEMPORARY_ACCESS_PASS, &error);
    assert_null(error);
    assert_int_equal(taps->len, 1);
    m = g_ptr_array_index(taps, 0);
    assert_string_equal(m->id, tap->id);
    assert_int_equal(m->kind, KD_GRAPH_METHOD_TEMPORARY_ACCESS_PASS);
    assert_true(m->is_usable_once);
    assert_int_equal(m->lifetime_minutes, 60);
    assert_false(m->is_usable);
    assert_string_equal(m->usability_reason, "OneTimeUsed");

    assert_int_equal(
        delete_method(fx, "ada" DOMAIN, KD_GRAPH_METHOD_TEMPORARY_ACCESS_PASS, tap->id, &error),
        KD_GRAPH_DELETE_DONE);
    assert_null(error);

    /* the policy allows 60–480 minutes */
    too_long = create_tap(fx, "ada" DOMAIN, 600, &existing, &error);
    assert_null(too_long);
    assert_null(existing);
    assert_graph_error(error, KD_GRAPH_ERROR_BAD_REQUEST);
    assert_non_null(strstr(kd_graph_error_get_info(error)->graph_message, "60 to 480"));
    g_clear_error(&error);
    too_short = create_tap(fx, "ada" DOMAIN, 5, NULL, &error);
    assert_null(too_short);
    assert_graph_error(error, KD_GRAPH_ERROR_BAD_REQUEST);
    fx_free(fx);
}

#define TAP_POST_RESET                                                    \
    "{\"rules\": [{\"method\": \"POST\", "                                \
    "\"path\": "                                                          \
    "\"^/v1.0/users/[^/]+/authentication/temporaryAccessPassMethods$\", " \
    "\"kind\": \"reset\", \"phase\": \"response\", \"count\": 1}]}"

static void
test_tap_lost_answer(void **state)
{
    Fx *fx = fx_new(NULL, TAP_POST_RESET);
    g_autoptr(GError) error = NULL;
    g_autoptr(KdGraphTap) lost = NULL, tap = NULL;
    g_autoptr(GPtrArray) existing = NULL, after = NULL;
    KdGraphMethod *m;
    g_autoptr(JsonArray) log = NULL;
    guint posts = 0;

    mark(fx);
    lost = create_tap(fx, "bob" DOMAIN, 60, &existing, &error);
    assert_null(lost);
    assert_graph_error(error, KD_GRAPH_ERROR_UNKNOWN_OUTCOME);
    g_clear_error(&error);
    /* never sent twice by the operation */
    log = graph_log(fx);
    for (guint i = 0; i < json_array_get_length(log); i++)
        if (g_str_equal(
                json_object_get_string_member(json_array_get_object_element(log, i), "method"),
                "POST"))
            posts++;
    assert_int_equal(posts, 1);
    /* it did happen: the flow sees the pass, deletes it, creates one again */
    assert_non_null(existing);
    assert_int_equal(existing->len, 1);
    m = g_ptr_array_index(existing, 0);
    /* Graph never shows the pass again */
    assert_true(!json_object_has_member(m->json, "temporaryAccessPass") ||
                json_object_get_null_member(m->json, "temporaryAccessPass"));
    assert_int_equal(
        delete_method(fx, "bob" DOMAIN, KD_GRAPH_METHOD_TEMPORARY_ACCESS_PASS, m->id, &error),
        KD_GRAPH_DELETE_DONE);
    tap = create_tap(fx, "bob" DOMAIN, 60, NULL, &error);
    assert_null(error);
    after = list_methods(fx, "bob" DOMAIN, KD_GRAPH_METHOD_TEMPORARY_ACCESS_PASS, &error);
    assert_int_equal(after->len, 1);
    assert_string_equal(((KdGraphMethod *)g_ptr_array_index(after, 0))->id, tap->id);
    fx_free(fx);
}

/* --- sessions, policies, security defaults
 * -------------------------------------------------- */

static void
test_revoke(void **state)
{
    Fx *fx = fx_new(NULL, NULL);
    g_autoptr(GError) error = NULL;
    Wait w = {0};
    JsonObject *req;

    mark(fx);
    kd_graph_revoke_sessions_async(fx->client, "dave" DOMAIN, 0, NULL, on_done, &w);
    assert_true(kd_graph_revoke_sessions_finish(fx->client, wait_res(&w), &error));
    wait_clear(&w);
    assert_null(error);
    req = last_request(fx);
    assert_string_equal(json_object_get_string_member(req, "path"),
                        "/v1.0/users/dave%40" KD_EMU_DOMAIN "/revokeSignInSessions");
    assert_int_equal(json_object_get_int_member(req, "status"), 200);
    json_object_unref(req);

    kd_graph_revoke_sessions_async(fx->client, "nobody" DOMAIN, 0, NULL, on_done, &w);
    assert_false(kd_graph_revoke_sessions_finish(fx->client, wait_res(&w), &error));
    wait_clear(&w);
    assert_graph_error(error, KD_GRAPH_ERROR_NOT_FOUND);
    fx_free(fx);
}

static KdGraphMethodPolicy *
get_policy(Fx *fx, KdGraphPolicyKind kind)
{
    g_autoptr(GError) error = NULL;
    Wait w = {0};
    KdGraphMethodPolicy *p;

    kd_graph_get_method_policy_async(fx->client, kind, 0, NULL, on_done, &w);
    p = kd_graph_get_method_policy_finish(fx->client, wait_res(&w), &error);
    wait_clear(&w);
    assert_null(error);
    return p;
}

#define YUBIKEY_5 "cb69481e-8ff7-4039-93ec-0a2729a154a8"
#define FIDO2_ALLOW_LIST                                           \
    "t['policies']['fido2'] = {'isAttestationEnforced': True, "    \
    "'keyRestrictions': "                                          \
    "{'isEnforced': True, 'enforcementType': 'allow', 'aaGuids': " \
    "['CB69481E-8FF7-4039-93EC-"                                   \
    "0A2729A154A8']}}\n"

static void
test_policies(void **state)
{
    Fx *fx = fx_new(NULL, NULL);
    g_autoptr(KdGraphMethodPolicy) fido2 = NULL, tap = NULL, app = NULL, allow = NULL;
    KdGraphPolicyTarget *target;
    JsonObject *req;

    mark(fx);
    fido2 = get_policy(fx, KD_GRAPH_POLICY_FIDO2);
    req = last_request(fx);
    assert_string_equal(json_object_get_string_member(req, "path"),
                        "/v1.0/policies/authenticationMethodsPolicy/"
                        "authenticationMethodConfigurations/Fido2");
    /* background: no High priority */
    assert_true(json_object_get_null_member(req, "throttlePriority"));
    json_object_unref(req);
    assert_int_equal(fido2->kind, KD_GRAPH_POLICY_FIDO2);
    assert_string_equal(fido2->id, "Fido2");
    assert_true(fido2->enabled);
    assert_true(fido2->is_self_service_registration_allowed);
    assert_false(fido2->is_attestation_enforced);
    assert_false(fido2->key_restrictions_enforced);
    assert_string_equal(fido2->key_restrictions_type, "block");
    assert_null(fido2->key_restrictions_aaguids[0]);
    assert_int_equal(fido2->include_targets->len, 1);
    target = g_ptr_array_index(fido2->include_targets, 0);
    assert_string_equal(target->id, "all_users");
    assert_string_equal(target->target_type, "group");
    assert_int_equal(fido2->exclude_targets->len, 0);
    assert_true(kd_graph_method_policy_allows_aaguid(fido2, YUBIKEY_5));

    tap = get_policy(fx, KD_GRAPH_POLICY_TEMPORARY_ACCESS_PASS);
    assert_true(tap->enabled);
    assert_int_equal(tap->default_lifetime_minutes, 60);
    assert_int_equal(tap->minimum_lifetime_minutes, 60);
    assert_int_equal(tap->maximum_lifetime_minutes, 480);
    assert_int_equal(tap->default_length, 8);
    assert_false(tap->is_usable_once);

    app = get_policy(fx, KD_GRAPH_POLICY_MICROSOFT_AUTHENTICATOR);
    assert_string_equal(app->id, "MicrosoftAuthenticator");
    assert_true(app->enabled);
    assert_false(app->is_software_oath_enabled);
    fx_free(fx);

    fx = fx_new(FIDO2_ALLOW_LIST, NULL);
    allow = get_policy(fx, KD_GRAPH_POLICY_FIDO2);
    assert_true(allow->is_attestation_enforced);
    assert_true(allow->key_restrictions_enforced);
    assert_string_equal(allow->key_restrictions_type, "allow");
    assert_string_equal(allow->key_restrictions_aaguids[0], YUBIKEY_5);
    assert_true(
        kd_graph_method_policy_allows_aaguid(allow, "CB69481E-8FF7-4039-93EC-0A2729A154A8"));
    assert_false(
        kd_graph_method_policy_allows_aaguid(allow, "a4e9fc6d-4cbe-4758-b8ba-37598bb5bbaa"));
    assert_false(kd_graph_method_policy_allows_aaguid(allow, NULL));
    fx_free(fx);
}

static gboolean
set_security_defaults(Fx *fx, gboolean enabled, GError **error)
{
    Wait w = {0};
    gboolean ok;

    kd_graph_set_security_defaults_async(fx->client, enabled, 0, NULL, on_done, &w);
    ok = kd_graph_set_security_defaults_finish(fx->client, wait_res(&w), error);
    wait_clear(&w);
    return ok;
}

static void
test_security_defaults(void **state)
{
    Fx *fx = fx_new(NULL, NULL);
    g_autoptr(GError) error = NULL;
    gboolean enabled = TRUE;
    Wait w = {0};
    JsonObject *req;

    kd_graph_get_security_defaults_async(fx->client, 0, NULL, on_done, &w);
    assert_true(kd_graph_get_security_defaults_finish(fx->client, wait_res(&w), &enabled, &error));
    wait_clear(&w);
    assert_false(enabled);

    /* the kiosk's own permissions do not include the write */
    assert_false(set_security_defaults(fx, TRUE, &error));
    assert_graph_error(error, KD_GRAPH_ERROR_FORBIDDEN);
    g_clear_error(&error);
    fx_free(fx);

    fx = fx_new("t['apps'][0]['applicationPermissions'].append("
                "'Policy.ReadWrite.SecurityDefaults')\n",
                NULL);
    mark(fx);
    assert_true(set_security_defaults(fx, TRUE, &error));
    assert_null(error);
    req = last_request(fx);
    assert_string_equal(json_object_get_string_member(req, "method"), "PATCH");
    assert_int_equal(json_object_get_int_member(req, "status"), 204);
    assert_true(
        json_object_get_boolean_member(json_object_get_object_member(req, "body"), "isEnabled"));
    json_object_unref(req);

    kd_graph_get_security_defaults_async(fx->client, 0, NULL, on_done, &w);
    assert_true(kd_graph_get_security_defaults_finish(fx->client, wait_res(&w), &enabled, &error));
    wait_clear(&w);
    assert_true(enabled);
    fx_free(fx);
}

/* --- reports
 * ----------------------------------------------------------------------------------
 */

#define MANY_USERS                                 \
    "for i in range(150):\n"                       \
    "    t['users'].append({'userPrincipalName': " \
    "'u%03d@contoso.onmicrosoft.com' % i,\n"       \
    "                       'methods': [{'type': 'password'}]})\n"

typedef struct {
    guint rows;
    guint stop_after;
    gboolean carol_passkey;
    gboolean ada_seen;
} Rows;

static gboolean
on_registration(const KdGraphRegistrationDetails *row, gpointer data)
{
    Rows *r = data;

    r->rows++;
    if (g_strcmp0(row->id, KD_EMU_USER_CAROL) == 0) {
        assert_true(row->is_mfa_registered);
        assert_true(row->is_passwordless_capable);
        r->carol_passkey =
            g_strv_contains((const char *const *)row->methods_registered, "passKeyDeviceBound");
    }
    if (g_strcmp0(row->id, KD_EMU_USER_ADA) == 0) {
        assert_false(row->is_mfa_registered);
        assert_string_equal(row->user_principal_name, "ada" DOMAIN);
        assert_null(row->methods_registered[0]);
        r->ada_seen = TRUE;
    }
    return r->stop_after == 0 || r->rows < r->stop_after;
}

static gboolean
list_registrations(Fx *fx, const char *filter, Rows *rows, GError **error)
{
    Wait w = {0};
    gboolean ok;

    kd_graph_list_registration_details_async(fx->client, filter, on_registration, rows, 0, NULL,
                                             on_done, &w);
    ok = kd_graph_list_registration_details_finish(fx->client, wait_res(&w), error);
    wait_clear(&w);
    return ok;
}

static KdGraphMethodSummary *
registered_by_method(Fx *fx, GError **error)
{
    Wait w = {0};
    KdGraphMethodSummary *s;

    kd_graph_get_registered_by_method_async(fx->client, NULL, NULL, 0, NULL, on_done, &w);
    s = kd_graph_get_registered_by_method_finish(fx->client, wait_res(&w), error);
    wait_clear(&w);
    return s;
}

static void
test_reports(void **state)
{
    Fx *fx = fx_new(MANY_USERS, NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(KdGraphMethodSummary) summary = NULL, none = NULL;
    Rows rows = {0};
    g_autoptr(JsonArray) log = NULL;
    gboolean push = FALSE;

    /* every page (157 rows: two pages of 100) */
    mark(fx);
    assert_true(list_registrations(fx, NULL, &rows, &error));
    assert_null(error);
    assert_int_equal(rows.rows, 157);
    assert_true(rows.carol_passkey);
    assert_true(rows.ada_seen);
    log = graph_log(fx);
    assert_int_equal(json_array_get_length(log), 2);
    g_clear_pointer(&log, json_array_unref);

    /* a filter, percent-encoded here */
    memset(&rows, 0, sizeof(rows));
    assert_true(list_registrations(fx,
                                   "methodsRegistered/any(m:m eq 'passKeyDeviceBound') "
                                   "or userPrincipalName eq 'ada" DOMAIN "'",
                                   &rows, &error));
    assert_int_equal(rows.rows, 2);
    assert_true(rows.carol_passkey && rows.ada_seen);

    /* the row callback stops early: success, one page read */
    memset(&rows, 0, sizeof(rows));
    rows.stop_after = 3;
    mark(fx);
    assert_true(list_registrations(fx, NULL, &rows, &error));
    assert_int_equal(rows.rows, 3);
    log = graph_log(fx);
    assert_int_equal(json_array_get_length(log), 1);

    summary = registered_by_method(fx, &error);
    assert_null(error);
    assert_string_equal(summary->user_types, "all");
    assert_string_equal(summary->user_roles, "all");
    assert_int_equal(summary->total_user_count, 157);
    for (guint i = 0; i < summary->counts->len; i++) {
        KdGraphMethodCount *c = g_ptr_array_index(summary->counts, i);
        if (g_str_equal(c->method, "microsoftAuthenticatorPush")) {
            assert_int_equal(c->user_count, 3);
            push = TRUE;
        }
    }
    assert_true(push);

    /* a tenant without P1/P2 */
    json_node_unref(control(fx, "PATCH", "/_emulator/settings", "{\"license\": \"free\"}"));
    memset(&rows, 0, sizeof(rows));
    assert_false(list_registrations(fx, NULL, &rows, &error));
    assert_graph_error(error, KD_GRAPH_ERROR_FORBIDDEN);
    assert_int_equal(rows.rows, 0);
    g_clear_error(&error);
    none = registered_by_method(fx, &error);
    assert_null(none);
    assert_graph_error(error, KD_GRAPH_ERROR_FORBIDDEN);
    fx_free(fx);
}

#define SIGN_INS                                                                \
    "ids = {u['userPrincipalName'].split('@')[0]: u['id'] for u in "            \
    "t['users']}\n"                                                             \
    "t['signIns'] = [\n"                                                        \
    "  {'minutesAgo': 30, 'userId': ids['ada'], 'clientAppUsed': 'IMAP4'},\n"   \
    "  {'minutesAgo': 40, 'userId': ids['dave'], 'clientAppUsed': 'Exchange "   \
    "ActiveSync'},\n"                                                           \
    "  {'minutesAgo': 50, 'userId': ids['carol'], 'clientAppUsed': "            \
    "'Browser'},\n"                                                             \
    "  {'minutesAgo': 120, 'userId': ids['bob'], 'clientAppUsed': 'POP3',\n"    \
    "   'status': {'errorCode': 50126, 'failureReason': 'Invalid username or "  \
    "password.'}},\n"                                                           \
    "  {'minutesAgo': 60 * 24 * 40, 'userId': ids['bob'], 'clientAppUsed': "    \
    "'IMAP4'},\n"                                                               \
    "  {'minutesAgo': 10, 'userId': ids['ada'], 'clientAppUsed': 'Mobile Apps " \
    "and Desktop "                                                              \
    "clients'},\n"                                                              \
    "]\n"

typedef struct {
    guint rows;
    char *apps;
    gint failed;
} SignIns;

static gboolean
on_sign_in(const KdGraphSignIn *s, gpointer data)
{
    SignIns *r = data;
    char *apps = g_strconcat(r->apps != NULL ? r->apps : "", r->apps != NULL ? "," : "",
                             s->legacy_client_app, NULL);

    g_free(r->apps);
    r->apps = apps;
    r->rows++;
    assert_true(s->created_unix > 0);
    assert_non_null(s->user_principal_name);
    if (s->error_code != 0) {
        r->failed = s->error_code;
        assert_string_equal(s->failure_reason, "Invalid username or password.");
    }
    return TRUE;
}

static gboolean
list_sign_ins(Fx *fx, GDateTime *since, SignIns *r, GError **error)
{
    Wait w = {0};
    gboolean ok;

    memset(r, 0, sizeof(*r));
    kd_graph_list_legacy_sign_ins_async(fx->client, since, on_sign_in, r, 0, NULL, on_done, &w);
    ok = kd_graph_list_legacy_sign_ins_finish(fx->client, wait_res(&w), error);
    wait_clear(&w);
    return ok;
}

static void
test_legacy_sign_ins(void **state)
{
    Fx *fx = fx_new(SIGN_INS, NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    g_autoptr(GDateTime) hour_ago = g_date_time_add_minutes(now, -60);
    SignIns r;

    assert_string_equal(kd_graph_legacy_client_app("exchange activesync"), "Exchange ActiveSync");
    assert_string_equal(kd_graph_legacy_client_app("imap4"), "IMAP4");
    assert_null(kd_graph_legacy_client_app("Browser"));
    assert_null(kd_graph_legacy_client_app("Mobile apps and desktop clients"));
    assert_null(kd_graph_legacy_client_app(NULL));

    /* newest first, within the 30-day retention, legacy only */
    assert_true(list_sign_ins(fx, NULL, &r, &error));
    assert_null(error);
    assert_int_equal(r.rows, 3);
    assert_string_equal(r.apps, "IMAP4,Exchange ActiveSync,POP3");
    assert_int_equal(r.failed, 50126);
    g_free(r.apps);

    assert_true(list_sign_ins(fx, hour_ago, &r, &error));
    assert_int_equal(r.rows, 2);
    assert_string_equal(r.apps, "IMAP4,Exchange ActiveSync");
    g_free(r.apps);

    json_node_unref(control(fx, "PATCH", "/_emulator/settings", "{\"license\": \"free\"}"));
    assert_false(list_sign_ins(fx, NULL, &r, &error));
    assert_graph_error(error, KD_GRAPH_ERROR_FORBIDDEN);
    fx_free(fx);
}

/* --- tracking
 * ---------------------------------------------------------------------------------
 */

static KdGraphMemberResult
add_member(Fx *fx, const char *graph_url, const char *user_id, GError **error)
{
    Wait w = {0};
    KdGraphMemberResult r;

    kd_graph_add_group_member_async(fx->client, graph_url, KD_EMU_GROUP, user_id, 0, NULL, on_done,
                                    &w);
    r = kd_graph_add_group_member_finish(fx->client, wait_res(&w), error);
    wait_clear(&w);
    return r;
}

static void
test_group_member(void **state)
{
    Fx *fx = fx_new(NULL, NULL);
    g_autoptr(GError) error = NULL;
    JsonObject *req, *body;

    mark(fx);
    assert_int_equal(add_member(fx, NULL, KD_EMU_USER_ADA, &error), KD_GRAPH_MEMBER_ADDED);
    assert_null(error);
    req = last_request(fx);
    assert_string_equal(json_object_get_string_member(req, "path"),
                        "/v1.0/groups/" KD_EMU_GROUP "/members/$ref");
    body = json_object_get_object_member(req, "body");
    assert_string_equal(json_object_get_string_member(body, "@odata.id"),
                        "https://graph.microsoft.com/v1.0/directoryObjects/" KD_EMU_USER_ADA);
    assert_int_equal(json_object_get_size(body), 1);
    json_object_unref(req);

    /* twice: already a member, which is success */
    mark(fx);
    assert_int_equal(add_member(fx, "https://graph.microsoft.com/", KD_EMU_USER_ADA, &error),
                     KD_GRAPH_MEMBER_ALREADY);
    assert_null(error);
    assert_true(kd_graph_is_already_member_message(
        "One or more added object references already exist for the following "
        "modified "
        "properties: 'members'."));
    assert_false(kd_graph_is_already_member_message("Invalid object identifier"));
    assert_false(kd_graph_is_already_member_message(NULL));
    req = last_request(fx);
    assert_int_equal(json_object_get_int_member(req, "status"), 400);
    body = json_object_get_object_member(req, "body");
    assert_string_equal(json_object_get_string_member(body, "@odata.id"),
                        "https://graph.microsoft.com/v1.0/directoryObjects/" KD_EMU_USER_ADA);
    json_object_unref(req);

    /* nobody by that id */
    assert_int_equal(add_member(fx, NULL, "3b1c2d4e-0000-4000-8000-0000000000ff", &error),
                     KD_GRAPH_MEMBER_FAILED);
    assert_graph_error(error, KD_GRAPH_ERROR_NOT_FOUND);
    fx_free(fx);
}

#define EXTENSION_PROPERTY                                                              \
    "t['extensionProperties'] = [{'name': '" EXT_ENROLLED "', 'dataType': 'DateTime', " \
    "'targetObjects': ['User']}]\n"

static gboolean
set_extension(Fx *fx, const char *name, JsonNode *value, GError **error)
{
    Wait w = {0};
    gboolean ok;

    kd_graph_set_user_extension_async(fx->client, "ada" DOMAIN, name, value, 0, NULL, on_done, &w);
    ok = kd_graph_set_user_extension_finish(fx->client, wait_res(&w), error);
    wait_clear(&w);
    return ok;
}

static void
test_extension(void **state)
{
    Fx *fx = fx_new(EXTENSION_PROPERTY, NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) when = json_node_new(JSON_NODE_VALUE);
    g_autoptr(JsonArray) log = NULL;
    JsonNode *user;
    JsonObject *ext;

    json_node_set_string(when, "2026-04-20T10:15:30Z");
    assert_true(set_extension(fx, EXT_ENROLLED, when, &error));
    assert_null(error);
    user = control(fx, "GET", "/_emulator/users/ada" DOMAIN, NULL);
    ext = json_object_get_object_member(json_node_get_object(user), "extensions");
    assert_string_equal(json_object_get_string_member(ext, EXT_ENROLLED), "2026-04-20T10:15:30Z");
    json_node_unref(user);
    /* twice is the same (idempotent) */
    assert_true(set_extension(fx, EXT_ENROLLED, when, &error));

    /* an attribute the tenant did not declare */
    assert_false(
        set_extension(fx, "extension_3f2a6c1e8d4b4e579a0f2b7c1d9e4f60_other", when, &error));
    assert_graph_error(error, KD_GRAPH_ERROR_BAD_REQUEST);
    g_clear_error(&error);

    /* not an extension: refused here, nothing sent */
    mark(fx);
    assert_false(set_extension(fx, "displayName", when, &error));
    assert_graph_error(error, KD_GRAPH_ERROR_BAD_REQUEST);
    g_clear_error(&error);
    log = graph_log(fx);
    assert_int_equal(json_array_get_length(log), 0);

    /* NULL clears */
    assert_true(set_extension(fx, EXT_ENROLLED, NULL, &error));
    user = control(fx, "GET", "/_emulator/users/ada" DOMAIN, NULL);
    ext = json_object_get_object_member(json_node_get_object(user), "extensions");
    assert_true(ext == NULL || !json_object_has_member(ext, EXT_ENROLLED) ||
                json_object_get_null_member(ext, EXT_ENROLLED));
    json_node_unref(user);
    fx_free(fx);
}

/* --- $batch
 * -----------------------------------------------------------------------------------
 */

static GPtrArray *
user_gets(guint n)
{
    static const char *const users[] = {KD_EMU_USER_ADMIN, KD_EMU_USER_ADA, KD_EMU_USER_BOB,
                                        KD_EMU_USER_CAROL, KD_EMU_USER_DAVE};
    GPtrArray *a = g_ptr_array_new_with_free_func((GDestroyNotify)kd_graph_batch_request_free);

    for (guint i = 0; i < n; i++) {
        g_autofree char *id = g_strdup_printf("get-%u", i);
        g_autofree char *url =
            g_strdup_printf("/users/%s?$select=id,displayName", users[i % G_N_ELEMENTS(users)]);
        g_ptr_array_add(a, kd_graph_batch_request_new(id, "GET", url, NULL));
    }
    return a;
}

static GPtrArray *
batch(Fx *fx, GPtrArray *requests, GError **error)
{
    Wait w = {0};
    GPtrArray *out;

    kd_graph_batch_async(fx->client, requests, 0, NULL, on_done, &w);
    out = kd_graph_batch_finish(fx->client, wait_res(&w), error);
    wait_clear(&w);
    return out;
}

static GPtrArray *
batch_run(Fx *fx, GPtrArray *requests, guint attempts, GError **error)
{
    Wait w = {0};
    GPtrArray *out;

    kd_graph_batch_run_async(fx->client, requests, attempts, 0, NULL, on_done, &w);
    out = kd_graph_batch_run_finish(fx->client, wait_res(&w), error);
    wait_clear(&w);
    return out;
}

static guint
count_batches(Fx *fx)
{
    g_autoptr(JsonArray) log = graph_log(fx);
    guint n = 0;

    for (guint i = 0; i < json_array_get_length(log); i++)
        if (g_str_has_suffix(
                json_object_get_string_member(json_array_get_object_element(log, i), "path"),
                "/$batch"))
            n++;
    return n;
}

static void
test_batch(void **state)
{
    Fx *fx = fx_new(NULL, NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) too_many = user_gets(21), empty = user_gets(0), twenty = user_gets(20);
    g_autoptr(GPtrArray) dup = user_gets(2), mixed = user_gets(2), out = NULL;
    g_autoptr(JsonNode) ref = NULL;
    KdGraphBatchRequest *r;
    KdGraphBatchResponse *resp;
    JsonObject *o;

    /* refused locally, nothing sent */
    mark(fx);
    assert_null(batch(fx, too_many, &error));
    assert_graph_error(error, KD_GRAPH_ERROR_BAD_REQUEST);
    assert_int_equal(kd_graph_error_get_info(error)->http_status, 0);
    g_clear_error(&error);
    assert_null(batch(fx, empty, &error));
    assert_graph_error(error, KD_GRAPH_ERROR_BAD_REQUEST);
    g_clear_error(&error);
    r = g_ptr_array_index(dup, 1);
    g_free(r->id);
    r->id = g_strdup("get-0");
    assert_null(batch(fx, dup, &error));
    assert_graph_error(error, KD_GRAPH_ERROR_BAD_REQUEST);
    g_clear_error(&error);
    assert_int_equal(count_batches(fx), 0);

    /* 20 reads: every answer matched to its request whatever order Graph used */
    out = batch(fx, twenty, &error);
    assert_null(error);
    assert_int_equal(out->len, 20);
    for (guint i = 0; i < 20; i++) {
        g_autofree char *id = g_strdup_printf("get-%u", i);
        const char *want =
            strstr(((KdGraphBatchRequest *)g_ptr_array_index(twenty, i))->url, "/users/") +
            strlen("/users/");
        resp = g_ptr_array_index(out, i);
        assert_string_equal(resp->id, id);
        assert_int_equal(resp->status, 200);
        o = json_node_get_object(resp->body);
        assert_memory_equal(json_object_get_string_member(o, "id"), want, 36);
        assert_non_null(g_hash_table_lookup(resp->headers, "content-type"));
    }
    g_clear_pointer(&out, g_ptr_array_unref);

    /* a write item, an unknown user: each its own status */
    ref = json_from_string("{\"@odata.id\": "
                           "\"https://graph.microsoft.com/v1.0/directoryObjects/" KD_EMU_USER_BOB
                           "\"}",
                           NULL);
    g_ptr_array_add(mixed, kd_graph_batch_request_new(
                               "add", "POST", "/groups/" KD_EMU_GROUP "/members/$ref", ref));
    g_ptr_array_add(
        mixed, kd_graph_batch_request_new("nobody", "get", "/users/nobody%40" KD_EMU_DOMAIN, NULL));
    out = batch(fx, mixed, &error);
    assert_null(error);
    assert_int_equal(out->len, 4);
    resp = g_ptr_array_index(out, 2);
    assert_string_equal(resp->id, "add");
    assert_int_equal(resp->status, 204);
    assert_null(resp->body);
    resp = g_ptr_array_index(out, 3);
    assert_int_equal(resp->status, 404);
    assert_string_equal(
        json_object_get_string_member(
            json_object_get_object_member(json_node_get_object(resp->body), "error"), "code"),
        "Request_ResourceNotFound");
    assert_false(kd_graph_batch_response_should_retry(resp));
    g_clear_pointer(&out, g_ptr_array_unref);

    /* run: 25 items go as 20 + 5 */
    mark(fx);
    g_ptr_array_unref(twenty);
    twenty = user_gets(25);
    out = batch_run(fx, twenty, 0, &error);
    assert_null(error);
    assert_int_equal(out->len, 25);
    for (guint i = 0; i < 25; i++) {
        resp = g_ptr_array_index(out, i);
        assert_int_equal(resp->status, 200);
        assert_int_equal(resp->attempts, 1);
    }
    assert_int_equal(count_batches(fx), 2);
    fx_free(fx);
}

/* 22 resource units per 10 s: 25 reads cannot all pass at once. */
#define TINY_THROTTLE "t['settings']['throttle'] = {'enabled': True, 'ruPer10s': 22}\n"

static void
test_batch_throttled(void **state)
{
    Fx *fx = fx_new(TINY_THROTTLE, NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) requests = user_gets(25), out = NULL;
    g_autoptr(JsonNode) all = NULL;
    JsonArray *log;
    guint resent = 0, throttled = 0, max_retry_after = 0;
    gint64 started = g_get_monotonic_time();

    mark(fx);
    out = batch_run(fx, requests, 10, &error);
    if (error != NULL)
        fail_msg("%s", error->message);
    assert_int_equal(out->len, 25);
    for (guint i = 0; i < 25; i++) {
        KdGraphBatchResponse *resp = g_ptr_array_index(out, i);
        assert_int_equal(resp->status, 200);
        if (resp->attempts > 1)
            resent++;
    }
    assert_true(resent > 0);
    assert_true(count_batches(fx) >= 3);

    /* the throttled items were answered 429 with Retry-After, and the run waited
     * for it */
    all = kd_emulator_requests(fx->emu, fx->seq);
    log = json_node_get_array(all);
    for (guint i = 0; i < json_array_get_length(log); i++) {
        JsonObject *e = json_array_get_object_element(log, i);
        if (json_object_has_member(e, "batchItem") &&
            json_object_get_int_member(e, "status") == 429) {
            JsonNode *ra = json_object_get_member(e, "retryAfter");
            throttled++;
            if (ra != NULL && JSON_NODE_HOLDS_VALUE(ra))
                max_retry_after = MAX(max_retry_after, (guint)atoi(json_node_get_string(ra)));
        }
    }
    assert_true(throttled >= resent);
    assert_true(max_retry_after >= 1);
    assert_true(g_get_monotonic_time() - started >= (gint64)max_retry_after * G_USEC_PER_SEC);
    fx_free(fx);
}

static gboolean
cancel_later(gpointer data)
{
    g_cancellable_cancel(data);
    return G_SOURCE_REMOVE;
}

/* One resource unit per 10 s: after the first round the other items wait for
 * many seconds. */
static void
test_batch_run_cancel(void **state)
{
    Fx *fx = fx_new("t['settings']['throttle'] = {'enabled': True, 'ruPer10s': 1}\n", NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) requests = user_gets(5);
    g_autoptr(GCancellable) cancel = g_cancellable_new();
    GPtrArray *out;
    Wait w = {0};
    gint64 started = g_get_monotonic_time();

    mark(fx);
    kd_graph_batch_run_async(fx->client, requests, 0, 0, cancel, on_done, &w);
    g_timeout_add(1500, cancel_later, cancel);
    out = kd_graph_batch_run_finish(fx->client, wait_res(&w), &error);
    wait_clear(&w);
    assert_null(out);
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED));
    assert_true(g_get_monotonic_time() - started < 4 * G_USEC_PER_SEC);
    assert_int_equal(count_batches(fx), 1);
    fx_free(fx);
}

static int
teardown(void **state)
{
    while (live != NULL && live->len > 0)
        fx_free(g_ptr_array_index(live, 0));
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_user_path, teardown),
        cmocka_unit_test_teardown(test_users, teardown),
        cmocka_unit_test_teardown(test_methods, teardown),
        cmocka_unit_test_teardown(test_delete_default, teardown),
        cmocka_unit_test_teardown(test_fido2_options, teardown),
        cmocka_unit_test_teardown(test_fido2_exclude_encodings, teardown),
        cmocka_unit_test_teardown(test_fido2_display_name, teardown),
        cmocka_unit_test_teardown(test_fido2_register, teardown),
        cmocka_unit_test_teardown(test_fido2_register_lost_answer, teardown),
        cmocka_unit_test_teardown(test_fido2_register_lost_request, teardown),
        cmocka_unit_test_teardown(test_tap, teardown),
        cmocka_unit_test_teardown(test_tap_lost_answer, teardown),
        cmocka_unit_test_teardown(test_revoke, teardown),
        cmocka_unit_test_teardown(test_policies, teardown),
        cmocka_unit_test_teardown(test_security_defaults, teardown),
        cmocka_unit_test_teardown(test_reports, teardown),
        cmocka_unit_test_teardown(test_legacy_sign_ins, teardown),
        cmocka_unit_test_teardown(test_group_member, teardown),
        cmocka_unit_test_teardown(test_extension, teardown),
        cmocka_unit_test_teardown(test_batch, teardown),
        cmocka_unit_test_teardown(test_batch_throttled, teardown),
        cmocka_unit_test_teardown(test_batch_run_cancel, teardown),
    };
    int failed;

    if (g_getenv("KD_TEST_FILTER") != NULL)
        cmocka_set_test_filter(g_getenv("KD_TEST_FILTER"));
    failed = cmocka_run_group_tests(tests, NULL, NULL);
    g_clear_pointer(&live, g_ptr_array_unref);
    return failed;
}
