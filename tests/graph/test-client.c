/* test-client: KdGraphClient against the emulator: results, Graph errors, the retry rules
 * (Retry-After, backoff, lost answers, 401), deadlines, cancellation, paging and headers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/kd-graph-auth.h"
#include "graph/kd-graph-client.h"
#include "kd-emulator.h"

#define ADA_PATH  "/users/" KD_EMU_USER_ADA
#define ADA_REGEX "^/v1.0/users/" KD_EMU_USER_ADA "$"

static KdEmulator *emu;

/* --- fixture ------------------------------------------------------------------------------ */

static int
group_setup(void **state)
{
    /* The client must reach the emulator under the production names (CURLOPT_CONNECT_TO), not
     * through a proxy some environment sets. */
    g_unsetenv("https_proxy");
    g_unsetenv("HTTPS_PROXY");
    g_unsetenv("all_proxy");
    g_unsetenv("ALL_PROXY");
    emu = kd_emulator_start(NULL, NULL);
    return 0;
}

static int
group_teardown(void **state)
{
    kd_emulator_stop(&emu);
    return 0;
}

/* A control call that must succeed (2xx). */
static void
control(const char *method, const char *path, const char *body)
{
    guint status = 0;
    JsonNode *node = kd_emulator_call(emu, method, path, body, &status);

    if (status < 200 || status > 299)
        fprintf(stderr, "control %s %s → %u\n", method, path, status);
    assert_true(status >= 200 && status <= 299);
    if (node != NULL)
        json_node_unref(node);
}

static void
add_fault(const char *json)
{
    control("POST", "/_emulator/faults", json);
}

/* The emulator logs a request after it has answered it, so a client may have its answer a
 * moment before the entry exists: wait until the log stops growing before reading or clearing. */
static void
settle_log(void)
{
    guint before = G_MAXUINT;

    for (int i = 0; i < 100; i++) {
        JsonNode *log = kd_emulator_requests(emu, -1);
        JsonArray *all = json_node_get_array(log);
        guint now = 0;

        /* Control calls (these reads among them) are logged too: count the others. */
        for (guint j = 0; j < json_array_get_length(all); j++) {
            JsonObject *e = json_array_get_object_element(all, j);
            const char *p = json_object_get_string_member_with_default(e, "path", "");
            if (p == NULL || !g_str_has_prefix(p, "/_emulator/"))
                now++;
        }
        json_node_unref(log);
        if (now == before)
            return;
        before = now;
        g_usleep(30 * 1000);
    }
}

static void
clear_log(void)
{
    settle_log();
    control("DELETE", "/_emulator/requests", NULL);
}

/* Every test starts from no faults, full throttle buckets and an empty request log. */
static int
test_setup(void **state)
{
    guint status = 0;
    JsonNode *node = kd_emulator_call(emu, "DELETE", "/_emulator/faults", NULL, &status);

    g_clear_pointer(&node, json_node_unref);
    assert_true(status == 200 || status == 204);
    node = kd_emulator_call(emu, "DELETE", "/_emulator/throttle", NULL, &status);
    g_clear_pointer(&node, json_node_unref);
    assert_true(status == 200 || status == 204);
    clear_log();
    return 0;
}

static KdGraphClient *
new_client(void)
{
    const char *port = strrchr(emu->host_port, ':') + 1;
    g_autofree char *graph = g_strdup_printf("graph.microsoft.com:443:127.0.0.1:%s", port);
    g_autofree char *login = g_strdup_printf("login.microsoftonline.com:443:127.0.0.1:%s", port);
    const char *connect_to[] = {graph, login, NULL};
    KdSecret *secret = kd_secret_new_from(KD_EMU_KIOSK_SECRET, strlen(KD_EMU_KIOSK_SECRET));
    KdGraphOptions options = {
        .graph_url = "https://graph.microsoft.com",
        .login_url = "https://login.microsoftonline.com",
        .tenant = KD_EMU_TENANT_ID,
        .client_id = KD_EMU_KIOSK_APP,
        .client_secret = secret,
        .ca_file = emu->ca_file,
        .connect_to = connect_to,
    };
    g_autoptr(GError) error = NULL;
    KdGraphClient *client = kd_graph_client_new(&options, &error);

    kd_secret_unref(secret);
    if (client == NULL)
        fprintf(stderr, "kd_graph_client_new: %s\n", error->message);
    assert_non_null(client);
    kd_graph_client_set_random_seed(client, 42);
    return client;
}

typedef struct {
    gboolean done;
    JsonNode *node;
    GError *error;
    gint64 done_us;
} Result;

static void
result_clear(Result *r)
{
    g_clear_pointer(&r->node, json_node_unref);
    g_clear_error(&r->error);
    r->done = FALSE;
}

static void
on_call(GObject *source, GAsyncResult *res, gpointer data)
{
    Result *r = data;

    r->node = kd_graph_client_call_finish(KD_GRAPH_CLIENT(source), res, &r->error);
    r->done_us = g_get_monotonic_time();
    r->done = TRUE;
}

static void
call(KdGraphClient *client, const char *method, const char *path, const char *body,
     KdGraphCallFlags flags, Result *r)
{
    g_autoptr(JsonNode) node = body != NULL ? json_from_string(body, NULL) : NULL;

    memset(r, 0, sizeof(*r));
    kd_graph_client_call_async(client, method, path, node, flags, NULL, on_call, r);
    assert_true(kd_test_run_until(&r->done, 120000));
}

static void
assert_graph_error(const Result *r, KdGraphErrorCode code)
{
    if (r->error == NULL || !g_error_matches(r->error, KD_GRAPH_ERROR, (int)code))
        fprintf(stderr, "expected %s, got %s\n", kd_graph_error_code_name(code),
                r->error != NULL ? r->error->message : "success");
    assert_true(g_error_matches(r->error, KD_GRAPH_ERROR, (int)code));
    assert_null(r->node);
}

/* Graph requests (not token or control calls) in the log, optionally only those on @path. */
static GPtrArray *
graph_log(const char *method, const char *path)
{
    JsonNode *log;
    JsonArray *all;
    GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);

    settle_log();
    log = kd_emulator_requests(emu, -1);
    all = json_node_get_array(log);
    for (guint i = 0; i < json_array_get_length(all); i++) {
        JsonObject *e = json_array_get_object_element(all, i);
        const char *p = json_object_get_string_member_with_default(e, "path", "");
        const char *m = json_object_get_string_member_with_default(e, "method", "");

        if (!g_str_has_prefix(p, "/v1.0/") && !g_str_has_prefix(p, "/beta/"))
            continue;
        /* @path is matched after the version, as callers write it. */
        if (path != NULL && !g_str_has_prefix(strchr(p + 1, '/'), path))
            continue;
        if (method != NULL && strcmp(m, method) != 0)
            continue;
        g_ptr_array_add(out, json_object_ref(e));
    }
    json_node_unref(log);
    return out;
}

static guint
token_requests(void)
{
    JsonNode *log;
    JsonArray *all;
    guint n = 0;

    settle_log();
    log = kd_emulator_requests(emu, -1);
    all = json_node_get_array(log);
    for (guint i = 0; i < json_array_get_length(all); i++) {
        JsonObject *e = json_array_get_object_element(all, i);
        const char *p = json_object_get_string_member_with_default(e, "path", "");
        if (strstr(p, "/oauth2/v2.0/token") != NULL)
            n++;
    }
    json_node_unref(log);
    return n;
}

/* Waits (up to 10 s) until @n requests matching @method and @path have been logged: requests a
 * client gave up on are logged when the emulator finishes them, and must not leak into the
 * next test's log. */
static GPtrArray *
wait_logged(const char *method, const char *path, guint n)
{
    gint64 until = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    GPtrArray *log = graph_log(method, path);

    while (log->len < n && g_get_monotonic_time() < until) {
        g_ptr_array_unref(log);
        g_usleep(50 * 1000);
        log = graph_log(method, path);
    }
    return log;
}

/* Asserts the number of entries, showing them when it is wrong. */
static void
assert_log_len(GPtrArray *log, guint expect)
{
    if (log->len != expect) {
        for (guint i = 0; i < log->len; i++) {
            g_autoptr(JsonNode) node = json_node_init_object(json_node_alloc(), log->pdata[i]);
            g_autofree char *text = json_to_string(node, FALSE);
            fprintf(stderr, "log[%u]: %s\n", i, text);
        }
    }
    assert_int_equal(log->len, expect);
}

static const char *
entry_string(GPtrArray *log, guint i, const char *name)
{
    JsonObject *e = g_ptr_array_index(log, i);
    JsonNode *n = json_object_get_member(e, name);

    return n != NULL && !JSON_NODE_HOLDS_NULL(n) ? json_node_get_string(n) : NULL;
}

static gint64
entry_int(GPtrArray *log, guint i, const char *name)
{
    JsonObject *e = g_ptr_array_index(log, i);
    JsonNode *n = json_object_get_member(e, name);

    return n != NULL && !JSON_NODE_HOLDS_NULL(n) ? json_node_get_int(n) : -1;
}

static double
entry_ts(GPtrArray *log, guint i)
{
    return json_object_get_double_member(g_ptr_array_index(log, i), "ts");
}

/* The reply form: status and response headers reach the caller. */
typedef struct {
    gboolean done;
    KdGraphReply *reply;
    GError *error;
} ReplyResult;

static void
on_reply(GObject *source, GAsyncResult *res, gpointer data)
{
    ReplyResult *r = data;

    r->reply = kd_graph_client_call_finish_reply(KD_GRAPH_CLIENT(source), res, &r->error);
    r->done = TRUE;
}

static void
test_reply_headers(void **state)
{
    g_autoptr(KdGraphClient) client = new_client();
    ReplyResult r = {0};
    JsonNode *json;

    kd_graph_client_call_async(client, "GET", ADA_PATH, NULL, 0, NULL, on_reply, &r);
    assert_true(kd_test_run_until(&r.done, 60000));
    assert_null(r.error);
    assert_non_null(r.reply);
    assert_int_equal(kd_graph_reply_get_status(r.reply), 200);
    /* Any case; Graph's charge for the request is readable by callers that pace themselves. */
    assert_non_null(kd_graph_reply_get_header(r.reply, "Request-Id"));
    assert_non_null(kd_graph_reply_get_header(r.reply, "x-ms-resource-unit"));
    assert_null(kd_graph_reply_get_header(r.reply, "x-no-such-header"));
    assert_null(kd_graph_reply_take_secret(r.reply));
    json = kd_graph_reply_get_json(r.reply);
    assert_non_null(json);
    assert_string_equal(json_object_get_string_member(json_node_get_object(json), "id"),
                        KD_EMU_USER_ADA);
    kd_graph_reply_free(r.reply);
}

/* A TAP's pass is taken out of the answer before json-glib parses it: the JSON the caller gets
 * holds "" where the pass was, and the pass itself arrives as a KdSecret. */
static void
test_secret_member(void **state)
{
    g_autoptr(KdGraphClient) client = new_client();
    g_autoptr(JsonNode) body = json_from_string("{\"isUsableOnce\": true}", NULL);
    g_autoptr(KdSecret) pass = NULL;
    g_autofree char *id_path = NULL;
    ReplyResult r = {0};
    Result d;
    JsonObject *o;

    kd_graph_client_call_secret_async(client, "POST",
                                      ADA_PATH "/authentication/temporaryAccessPassMethods", body,
                                      0, "temporaryAccessPass", NULL, on_reply, &r);
    assert_true(kd_test_run_until(&r.done, 60000));
    assert_null(r.error);
    assert_non_null(r.reply);
    assert_int_equal(kd_graph_reply_get_status(r.reply), 201);
    o = json_node_get_object(kd_graph_reply_get_json(r.reply));
    assert_non_null(json_object_get_string_member(o, "id"));
    id_path = g_strconcat(ADA_PATH "/authentication/temporaryAccessPassMethods/",
                          json_object_get_string_member(o, "id"), NULL);
    assert_string_equal(json_object_get_string_member(o, "temporaryAccessPass"), "");
    pass = kd_graph_reply_take_secret(r.reply);
    assert_non_null(pass);
    assert_true(kd_secret_get_length(pass) >= 8);
    assert_null(kd_graph_reply_take_secret(r.reply)); /* taken once */
    kd_graph_reply_free(r.reply);
    call(client, "DELETE", id_path, NULL, 0, &d); /* leave Ada as she was */
    assert_null(d.error);
    result_clear(&d);
}

/* A token endpoint that keeps resetting: the client's attempts bound the token requests; the
 * auth layer's own immediate retry does not multiply them. */
static void
test_token_retries_do_not_stack(void **state)
{
    g_autoptr(KdGraphClient) client = new_client();
    Result r;

    kd_graph_client_set_max_attempts(client, 3);
    kd_graph_client_set_backoff(client, 10, 50);
    add_fault("{\"kind\": \"reset\", \"path\": \"/oauth2/v2.0/token\"}");
    call(client, "GET", ADA_PATH, NULL, 0, &r);
    assert_non_null(r.error);
    assert_null(r.node);
    result_clear(&r);
    assert_int_equal(token_requests(), 3);
    {
        g_autoptr(GPtrArray) log = graph_log(NULL, NULL);
        assert_log_len(log, 0);
    }
}

/* --- success, errors, headers --------------------------------------------------------------- */

static void
test_get_json_and_headers(void **state)
{
    g_autoptr(KdGraphClient) client = new_client();
    g_autoptr(GPtrArray) log = NULL;
    Result r;

    call(client, "GET", ADA_PATH, NULL, 0, &r);
    assert_null(r.error);
    assert_non_null(r.node);
    assert_string_equal(json_object_get_string_member(json_node_get_object(r.node), "id"),
                        KD_EMU_USER_ADA);
    result_clear(&r);

    call(client, "GET", ADA_PATH, NULL, KD_GRAPH_CALL_INTERACTIVE, &r);
    assert_null(r.error);
    result_clear(&r);

    log = graph_log("GET", ADA_PATH);
    assert_log_len(log, 2);
    for (guint i = 0; i < 2; i++) {
        assert_true(g_uuid_string_is_valid(entry_string(log, i, "clientRequestId")));
        assert_true(g_str_has_prefix(entry_string(log, i, "userAgent"), "keydesk/"));
        assert_int_equal(entry_int(log, i, "status"), 200);
    }
    /* A fresh GUID per logical call; High priority only when a visitor waits. */
    assert_string_not_equal(entry_string(log, 0, "clientRequestId"),
                            entry_string(log, 1, "clientRequestId"));
    assert_null(entry_string(log, 0, "throttlePriority"));
    assert_string_equal(entry_string(log, 1, "throttlePriority"), "High");
    /* One app token for both calls: the cache works. */
    assert_int_equal(token_requests(), 1);
}

static void
test_not_found(void **state)
{
    g_autoptr(KdGraphClient) client = new_client();
    g_autoptr(GPtrArray) log = NULL;
    const KdGraphErrorInfo *info;
    Result r;

    call(client, "GET", "/users/00000000-0000-4000-8000-0000000000ff", NULL, 0, &r);
    assert_graph_error(&r, KD_GRAPH_ERROR_NOT_FOUND);
    info = kd_graph_error_get_info(r.error);
    assert_non_null(info);
    assert_int_equal(info->http_status, 404);
    assert_string_equal(info->graph_code, "Request_ResourceNotFound");
    assert_non_null(info->graph_message);
    assert_false(info->retryable);
    log = graph_log("GET", "/users/");
    assert_log_len(log, 1); /* a 404 is not retried */
    assert_string_equal(info->request_id, entry_string(log, 0, "requestId"));
    assert_string_equal(info->client_request_id, entry_string(log, 0, "clientRequestId"));
    result_clear(&r);
}

/* An error body that is not Graph's JSON (a gateway's HTML) still gives a usable error. */
static void
test_error_body_not_json(void **state)
{
    g_autoptr(KdGraphClient) client = new_client();
    g_autoptr(GPtrArray) log = NULL;
    const KdGraphErrorInfo *info;
    Result r;

    add_fault("{\"kind\": \"malformed\", \"path\": \"/users/00000000-\"}");
    call(client, "GET", "/users/00000000-0000-4000-8000-0000000000ff", NULL, 0, &r);
    assert_graph_error(&r, KD_GRAPH_ERROR_NOT_FOUND);
    info = kd_graph_error_get_info(r.error);
    assert_int_equal(info->http_status, 404);
    assert_null(info->graph_code);
    log = graph_log("GET", "/users/");
    assert_log_len(log, 1);
    assert_string_equal(info->request_id, entry_string(log, 0, "requestId"));
    result_clear(&r);
}

static void
test_no_content(void **state)
{
    g_autoptr(KdGraphClient) client = new_client();
    Result r;

    call(client, "PATCH", ADA_PATH, "{\"jobTitle\": \"Analyst\"}", 0, &r);
    assert_null(r.error);
    assert_null(r.node); /* 204 */
    result_clear(&r);
    call(client, "GET", ADA_PATH "?$select=id,jobTitle", NULL, 0, &r);
    assert_null(r.error);
    assert_string_equal(json_object_get_string_member(json_node_get_object(r.node), "jobTitle"),
                        "Analyst");
    result_clear(&r);
}

static void
test_bad_request_not_retried(void **state)
{
    g_autoptr(KdGraphClient) client = new_client();
    g_autoptr(GPtrArray) log = NULL;
    Result r;

    call(client, "PATCH", ADA_PATH, "{\"userPrincipalName\": \"x@contoso.onmicrosoft.com\"}", 0,
         &r);
    assert_graph_error(&r, KD_GRAPH_ERROR_BAD_REQUEST);
    assert_string_equal(kd_graph_error_get_info(r.error)->graph_code, "Request_BadRequest");
    log = graph_log("PATCH", NULL);
    assert_log_len(log, 1);
    result_clear(&r);
}

static void
test_extra_fields(void **state)
{
    g_autoptr(KdGraphClient) client = new_client();
    Result r;

    add_fault("{\"kind\": \"extra-fields\", \"path\": \"^/v1.0/\"}");
    call(client, "GET", ADA_PATH, NULL, 0, &r);
    assert_null(r.error);
    assert_true(json_object_has_member(json_node_get_object(r.node), "emulatorUnexpectedField"));
    assert_string_equal(json_object_get_string_member(json_node_get_object(r.node), "id"),
                        KD_EMU_USER_ADA);
    result_clear(&r);
}

static void
test_beta_and_consistency_level(void **state)
{
    g_autoptr(KdGraphClient) client = new_client();
    g_autoptr(GPtrArray) log = NULL;
    Result r;

    /* Advanced queries: the emulator, like Graph, answers 400 without ConsistencyLevel. */
    call(client, "GET",
         "/users?$filter=endswith(userPrincipalName,'contoso.onmicrosoft.com')&$count=true", NULL,
         0, &r);
    assert_null(r.error);
    assert_true(json_object_has_member(json_node_get_object(r.node), "@odata.count"));
    result_clear(&r);
    call(client, "GET", "/users?$search=%22displayName:Ada%22", NULL, 0, &r);
    assert_null(r.error);
    assert_int_equal(
        json_array_get_length(json_object_get_array_member(json_node_get_object(r.node), "value")),
        1);
    result_clear(&r);

    call(client, "GET", ADA_PATH, NULL, KD_GRAPH_CALL_BETA, &r);
    assert_null(r.error);
    result_clear(&r);
    log = graph_log("GET", "/users/");
    assert_log_len(log, 1);
    assert_true(g_str_has_prefix(entry_string(log, 0, "path"), "/beta/users/"));
}

static void
test_escaping(void **state)
{
    g_autoptr(KdGraphClient) client = new_client();
    g_autofree char *a = kd_graph_escape_segment("ada@contoso.onmicrosoft.com");
    g_autofree char *b = kd_graph_escape_segment("gail_fabrikam.com#EXT#@contoso.onmicrosoft.com");
    g_autofree char *c = kd_graph_escape_segment("a/b c~d-e_f.g$h'i\xc3\xa9");
    g_autofree char *ada = g_strconcat("/users/", a, NULL);
    g_autofree char *gail = g_strconcat("/users/", b, NULL);
    Result r;

    assert_string_equal(a, "ada%40contoso.onmicrosoft.com");
    assert_string_equal(b, "gail_fabrikam.com%23EXT%23%40contoso.onmicrosoft.com");
    assert_string_equal(c, "a%2Fb%20c~d-e_f.g%24h%27i%C3%A9");

    /* And Graph (the emulator) finds each of them. */
    call(client, "GET", ada, NULL, 0, &r);
    assert_null(r.error);
    assert_string_equal(json_object_get_string_member(json_node_get_object(r.node), "id"),
                        KD_EMU_USER_ADA);
    result_clear(&r);
    call(client, "GET", gail, NULL, 0, &r);
    assert_null(r.error);
    assert_string_equal(json_object_get_string_member(json_node_get_object(r.node), "id"),
                        "3b1c2d4e-0000-4000-8000-000000000007");
    result_clear(&r);
    /* A UPN starting with '$': only the key form works, as on Graph. */
    call(client, "GET", "/users/%24ops%40contoso.onmicrosoft.com", NULL, 0, &r);
    assert_graph_error(&r, KD_GRAPH_ERROR_BAD_REQUEST);
    result_clear(&r);
    call(client, "GET", "/users('$ops%40contoso.onmicrosoft.com')", NULL, 0, &r);
    assert_null(r.error);
    assert_string_equal(json_object_get_string_member(json_node_get_object(r.node), "id"),
                        "3b1c2d4e-0000-4000-8000-000000000006");
    result_clear(&r);
}

static void
test_retry_after_parse(void **state)
{
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    g_autoptr(GDateTime) later = g_date_time_add_seconds(now, 30);
    g_autofree char *date = g_date_time_format(later, "%a, %d %b %Y %H:%M:%S GMT");
    gint64 ms;

    assert_int_equal(kd_graph_retry_after_ms("2"), 2000);
    assert_int_equal(kd_graph_retry_after_ms(" 0 "), 0);
    assert_int_equal(kd_graph_retry_after_ms(NULL), -1);
    assert_int_equal(kd_graph_retry_after_ms(""), -1);
    assert_int_equal(kd_graph_retry_after_ms("soon"), -1);
    assert_int_equal(kd_graph_retry_after_ms("-3"), -1);
    assert_int_equal(kd_graph_retry_after_ms("99999999999"), 86400 * 1000);
    assert_int_equal(kd_graph_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT"), 0);
    ms = kd_graph_retry_after_ms(date);
    assert_true(ms >= 28000 && ms <= 30000);
}

static void
test_bad_options(void **state)
{
    static const char *const bad[] = {
        "http://graph.microsoft.com",       "https://graph.microsoft.com/v1.0",
        "https://graph.microsoft.com?x=1",  "graph.microsoft.com",
        "https://user@graph.microsoft.com", ""};
    KdGraphOptions options = {
        .login_url = "https://login.microsoftonline.com",
        .tenant = KD_EMU_TENANT_ID,
        .client_id = KD_EMU_KIOSK_APP,
    };

    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;
        options.graph_url = bad[i];
        assert_null(kd_graph_client_new(&options, &error));
        assert_true(g_error_matches(error, KD_GRAPH_ERROR, KD_GRAPH_ERROR_CONFIG));
    }
}

/* --- retries ------------------------------------------------------------------------------ */

static void
test_retry_after_429(void **state)
{
    g_autoptr(KdGraphClient) client = new_client();
    g_autoptr(GPtrArray) log = NULL;
    double gap;
    Result r;

    add_fault("{\"kind\": \"status\", \"status\": 429, \"retryAfter\": 2, \"count\": 1, "
              "\"method\": \"GET\", \"path\": \"" ADA_REGEX "\"}");
    call(client, "GET", ADA_PATH, NULL, 0, &r);
    assert_null(r.error);
    result_clear(&r);
    log = graph_log("GET", ADA_PATH);
    assert_log_len(log, 2);
    assert_int_equal(entry_int(log, 0, "status"), 429);
    assert_int_equal(entry_int(log, 1, "status"), 200);
    gap = entry_ts(log, 1) - entry_ts(log, 0);
    assert_true(gap >= 2.0);
    assert_true(gap < 3.5);
    /* The same logical call: the same client-request-id on the retry. */
    assert_string_equal(entry_string(log, 0, "clientRequestId"),
                        entry_string(log, 1, "clientRequestId"));
}

static void
test_503_backoff(void **state)
{
    g_autoptr(KdGraphClient) client = new_client();
    g_autoptr(GPtrArray) log = NULL;
    double gap;
    Result r;

    add_fault("{\"kind\": \"status\", \"status\": 503, \"count\": 1, \"path\": \"" ADA_REGEX "\"}");
    call(client, "GET", ADA_PATH, NULL, 0, &r);
    assert_null(r.error);
    result_clear(&r);
    log = graph_log("GET", ADA_PATH);
    assert_log_len(log, 2);
    assert_int_equal(entry_int(log, 0, "status"), 503);
    gap = entry_ts(log, 1) - entry_ts(log, 0);
    assert_true(gap < 1.5); /* the first backoff is at most base = 1 s */
    assert_string_equal(entry_string(log, 0, "clientRequestId"),
                        entry_string(log, 1, "clientRequestId"));
}

static void
test_503_exhausts_attempts(void **state)
{
    g_autoptr(KdGraphClient) client = new_client();
    g_autoptr(GPtrArray) log = NULL;
    const KdGraphErrorInfo *info;
    Result r;

    kd_graph_client_set_backoff(client, 20, 200);
    add_fault("{\"kind\": \"status\", \"status\": 503, \"path\": \"" ADA_REGEX "\"}");
    call(client, "GET", ADA_PATH, NULL, 0, &r);
    assert_graph_error(&r, KD_GRAPH_ERROR_UNAVAILABLE);
    info = kd_graph_error_get_info(r.error);
    assert_int_equal(info->http_status, 503);
    assert_true(info->retryable);
    log = graph_log("GET", ADA_PATH);
    assert_log_len(log, 5);
    for (guint i = 1; i < log->len; i++) {
        /* Full jitter: each wait within [0, min(cap, base · 2^n)], plus a request's time. */
        double gap = entry_ts(log, i) - entry_ts(log, i - 1);
        assert_true(gap <= MIN(0.2, 0.02 * (1 << (i - 1))) + 0.5);
        assert_string_equal(entry_string(log, 0, "clientRequestId"),
                            entry_string(log, i, "clientRequestId"));
    }
    result_clear(&r);

    /* Max attempts is configurable. */
    g_clear_pointer(&log, g_ptr_array_unref);
    clear_log();
    kd_graph_client_set_max_attempts(client, 2);
    call(client, "GET", ADA_PATH, NULL, 0, &r);
    assert_graph_error(&r, KD_GRAPH_ERROR_UNAVAILABLE);
    log = graph_log("GET", ADA_PATH);
    assert_log_len(log, 2);
    result_clear(&r);
}

static void
test_deadline_before_retry_after(void **state)
{
    g_autoptr(KdGraphClient) client = new_client();
    g_autoptr(GPtrArray) log = NULL;
    const KdGraphErrorInfo *info;
    gint64 t0;
    Result r;

    add_fault("{\"kind\": \"status\", \"status\": 429, \"retryAfter\": 10, \"path\": \"" ADA_REGEX
              "\"}");
    kd_graph_client_set_deadline(client, 3);
    t0 = g_get_monotonic_time();
    call(client, "GET", ADA_PATH, NULL, 0, &r);
    assert_graph_error(&r, KD_GRAPH_ERROR_DEADLINE);
    /* It said so at once instead of sleeping until the deadline. */
    assert_true(r.done_us - t0 < 2 * G_USEC_PER_SEC);
    info = kd_graph_error_get_info(r.error);
    assert_int_equal(info->http_status, 429);
    assert_int_equal(info->retry_after_s, 10);
    log = graph_log("GET", ADA_PATH);
    assert_log_len(log, 1);
    result_clear(&r);
}

static void
test_deadline_during_request(void **state)
{
    g_autoptr(KdGraphClient) client = new_client();
    g_autoptr(GPtrArray) log = NULL;
    gint64 t0;
    Result r;

    /* Get a token first, so the deadline falls in the slow request itself. */
    call(client, "GET", ADA_PATH, NULL, 0, &r);
    assert_null(r.error);
    result_clear(&r);
    add_fault("{\"kind\": \"latency\", \"ms\": 2500, \"path\": \"" ADA_REGEX "\"}");
    add_fault("{\"kind\": \"latency\", \"ms\": 2500, \"method\": \"POST\", \"path\": \"^/v1.0/\"}");
    kd_graph_client_set_deadline(client, 1);

    t0 = g_get_monotonic_time();
    call(client, "GET", ADA_PATH, NULL, 0, &r);
    assert_graph_error(&r, KD_GRAPH_ERROR_DEADLINE);
    assert_true(r.done_us - t0 < 2 * G_USEC_PER_SEC);
    result_clear(&r);

    /* A write cut off by the deadline may have happened: the caller must check. */
    t0 = g_get_monotonic_time();
    call(client, "POST", ADA_PATH "/revokeSignInSessions", NULL, 0, &r);
    assert_graph_error(&r, KD_GRAPH_ERROR_UNKNOWN_OUTCOME);
    assert_true(r.done_us - t0 < 2 * G_USEC_PER_SEC);
    result_clear(&r);

    /* And it did happen: Graph finished it after the client stopped waiting. */
    log = wait_logged("POST", ADA_PATH "/revokeSignInSessions", 1);
    assert_log_len(log, 1);
    assert_int_equal(entry_int(log, 0, "status"), 200);
    g_clear_pointer(&log, g_ptr_array_unref);
    log = wait_logged("GET", ADA_PATH, 2);
    assert_log_len(log, 2);
}

static void
test_reset_get_retried(void **state)
{
    g_autoptr(KdGraphClient) client = new_client();
    g_autoptr(GPtrArray) log = NULL;
    Result r;

    add_fault("{\"kind\": \"reset\", \"count\": 1, \"method\": \"GET\", \"path\": \"" ADA_REGEX
              "\"}");
    call(client, "GET", ADA_PATH, NULL, 0, &r);
    assert_null(r.error);
    assert_non_null(r.node);
    result_clear(&r);
    log = graph_log("GET", ADA_PATH);
    assert_log_len(log, 2);
    assert_string_equal(entry_string(log, 0, "clientRequestId"),
                        entry_string(log, 1, "clientRequestId"));
}

static void
test_reset_post_unknown_outcome(void **state)
{
    g_autoptr(KdGraphClient) client = new_client();
    g_autoptr(GPtrArray) log = NULL;
    const char *path = ADA_PATH "/revokeSignInSessions";
    Result r;

    add_fault("{\"kind\": \"reset\", \"phase\": \"response\", \"count\": 1, \"method\": \"POST\", "
              "\"path\": \"^/v1.0/\"}");
    call(client, "POST", path, NULL, 0, &r);
    assert_graph_error(&r, KD_GRAPH_ERROR_UNKNOWN_OUTCOME);
    assert_false(kd_graph_error_get_info(r.error)->retryable);
    result_clear(&r);
    log = graph_log("POST", NULL);
    assert_log_len(log, 1); /* never sent again behind the caller's back */

    /* The same POST marked idempotent by its caller is retried. */
    g_clear_pointer(&log, g_ptr_array_unref);
    clear_log();
    add_fault("{\"kind\": \"reset\", \"phase\": \"response\", \"count\": 1, \"method\": \"POST\", "
              "\"path\": \"^/v1.0/\"}");
    call(client, "POST", path, NULL, KD_GRAPH_CALL_IDEMPOTENT, &r);
    assert_null(r.error);
    assert_true(json_object_get_boolean_member(json_node_get_object(r.node), "value"));
    result_clear(&r);
    log = graph_log("POST", NULL);
    assert_log_len(log, 2);
}

static void
test_post_5xx(void **state)
{
    g_autoptr(KdGraphClient) client = new_client();
    g_autoptr(GPtrArray) log = NULL;
    const char *path = ADA_PATH "/revokeSignInSessions";
    Result r;

    kd_graph_client_set_backoff(client, 20, 200);
    /* 500 on a write: an answer (not lost), not retried. */
    add_fault("{\"kind\": \"status\", \"status\": 500, \"count\": 1, \"method\": \"POST\", "
              "\"path\": \"^/v1.0/\"}");
    call(client, "POST", path, NULL, 0, &r);
    assert_graph_error(&r, KD_GRAPH_ERROR_UNAVAILABLE);
    result_clear(&r);
    /* 504: the gateway lost the backend's answer. */
    add_fault("{\"kind\": \"status\", \"status\": 504, \"count\": 1, \"method\": \"POST\", "
              "\"path\": \"^/v1.0/\"}");
    call(client, "POST", path, NULL, 0, &r);
    assert_graph_error(&r, KD_GRAPH_ERROR_UNKNOWN_OUTCOME);
    assert_int_equal(kd_graph_error_get_info(r.error)->http_status, 504);
    result_clear(&r);
    log = graph_log("POST", NULL);
    assert_log_len(log, 2);

    /* 503 and 429 were refused before running: retried for writes too. */
    g_clear_pointer(&log, g_ptr_array_unref);
    clear_log();
    add_fault("{\"kind\": \"status\", \"status\": 503, \"count\": 1, \"method\": \"POST\", "
              "\"path\": \"^/v1.0/\"}");
    add_fault("{\"kind\": \"status\", \"status\": 429, \"retryAfter\": 1, \"count\": 1, "
              "\"method\": \"POST\", \"path\": \"^/v1.0/\"}");
    call(client, "POST", path, NULL, 0, &r);
    assert_null(r.error);
    result_clear(&r);
    log = graph_log("POST", NULL);
    assert_log_len(log, 3);

    /* 500 on a read is retried. */
    add_fault("{\"kind\": \"status\", \"status\": 500, \"count\": 2, \"path\": \"" ADA_REGEX "\"}");
    call(client, "GET", ADA_PATH, NULL, 0, &r);
    assert_null(r.error);
    result_clear(&r);
}

static void
test_truncated_get_retried(void **state)
{
    g_autoptr(KdGraphClient) client = new_client();
    g_autoptr(GPtrArray) log = NULL;
    Result r;

    add_fault("{\"kind\": \"truncate\", \"count\": 1, \"path\": \"" ADA_REGEX "\"}");
    call(client, "GET", ADA_PATH, NULL, 0, &r);
    assert_null(r.error);
    assert_string_equal(json_object_get_string_member(json_node_get_object(r.node), "id"),
                        KD_EMU_USER_ADA);
    result_clear(&r);
    log = graph_log("GET", ADA_PATH);
    assert_log_len(log, 2);
}

static void
test_malformed_bad_response(void **state)
{
    g_autoptr(KdGraphClient) client = new_client();
    g_autoptr(GPtrArray) log = NULL;
    Result r;

    kd_graph_client_set_backoff(client, 20, 200);
    kd_graph_client_set_max_attempts(client, 3);
    add_fault("{\"kind\": \"malformed\", \"path\": \"" ADA_REGEX "\"}");
    call(client, "GET", ADA_PATH, NULL, 0, &r);
    assert_graph_error(&r, KD_GRAPH_ERROR_BAD_RESPONSE);
    assert_int_equal(kd_graph_error_get_info(r.error)->http_status, 200);
    result_clear(&r);
    log = graph_log("GET", ADA_PATH);
    assert_log_len(log, 3);

    /* Once is not enough to fail a read. */
    control("DELETE", "/_emulator/faults", NULL);
    add_fault("{\"kind\": \"malformed\", \"count\": 1, \"path\": \"" ADA_REGEX "\"}");
    call(client, "GET", ADA_PATH, NULL, 0, &r);
    assert_null(r.error);
    result_clear(&r);
}

static gboolean
tick(gpointer data)
{
    (*(guint *)data)++;
    return G_SOURCE_CONTINUE;
}

static void
test_latency_main_loop_runs(void **state)
{
    g_autoptr(KdGraphClient) client = new_client();
    guint ticks = 0, id;
    gint64 t0;
    Result r;

    add_fault("{\"kind\": \"latency\", \"ms\": 300, \"path\": \"" ADA_REGEX "\"}");
    id = g_timeout_add(10, tick, &ticks);
    t0 = g_get_monotonic_time();
    call(client, "GET", ADA_PATH, NULL, 0, &r);
    g_source_remove(id);
    assert_null(r.error);
    assert_true(r.done_us - t0 >= 300 * 1000);
    /* The loop kept turning while the answer was on its way. */
    assert_true(ticks >= 15);
    result_clear(&r);
}

static void
test_token_revoked(void **state)
{
    g_autoptr(KdGraphClient) client = new_client();
    g_autoptr(GPtrArray) log = NULL;
    Result r;

    /* The cached token stops working (revoked): 401, one new token, success. */
    call(client, "GET", ADA_PATH, NULL, 0, &r);
    assert_null(r.error);
    result_clear(&r);
    control("POST", "/_emulator/tokens/revoke", "{\"appId\": \"" KD_EMU_KIOSK_APP "\"}");
    call(client, "GET", ADA_PATH, NULL, 0, &r);
    assert_null(r.error);
    result_clear(&r);
    log = graph_log("GET", ADA_PATH);
    assert_log_len(log, 3);
    assert_int_equal(entry_int(log, 1, "status"), 401);
    assert_int_equal(entry_int(log, 2, "status"), 200);
    assert_int_equal(token_requests(), 2);

    /* revoke-token fault: the same, on a write (a 401 was refused before it ran). */
    add_fault(
        "{\"kind\": \"revoke-token\", \"count\": 1, \"method\": \"POST\", \"path\": \"^/v1.0/\"}");
    call(client, "POST", ADA_PATH "/revokeSignInSessions", NULL, 0, &r);
    assert_null(r.error);
    result_clear(&r);
    assert_int_equal(token_requests(), 3);

    /* And when the fresh token is refused too: UNAUTHORIZED, no third try. */
    g_clear_pointer(&log, g_ptr_array_unref);
    clear_log();
    add_fault("{\"kind\": \"revoke-token\", \"count\": 2, \"path\": \"" ADA_REGEX "\"}");
    call(client, "GET", ADA_PATH, NULL, 0, &r);
    assert_graph_error(&r, KD_GRAPH_ERROR_UNAUTHORIZED);
    assert_int_equal(kd_graph_error_get_info(r.error)->http_status, 401);
    assert_string_equal(kd_graph_error_get_info(r.error)->graph_code, "InvalidAuthenticationToken");
    result_clear(&r);
    log = graph_log("GET", ADA_PATH);
    assert_log_len(log, 2);
    assert_int_equal(token_requests(), 1);
}

static void
test_delegated_without_session(void **state)
{
    g_autoptr(KdGraphClient) client = new_client();
    g_autoptr(GPtrArray) log = NULL;
    Result r;

    assert_null(kd_graph_client_get_session(client));
    kd_graph_client_sign_out(client); /* harmless without a session */
    call(client, "GET", ADA_PATH, NULL, KD_GRAPH_CALL_DELEGATED, &r);
    assert_graph_error(&r, KD_GRAPH_ERROR_UNAUTHORIZED);
    result_clear(&r);
    log = graph_log(NULL, NULL);
    assert_log_len(log, 0);
}

typedef struct {
    gboolean done;
    KdGraphSession *session;
    GError *error;
} SignIn;

static void
on_prompt(const KdDeviceCodePrompt *prompt, gpointer data)
{
    g_autofree char *body = g_strdup_printf(
        "{\"user_code\": \"%s\", \"user\": \"admin@" KD_EMU_DOMAIN "\"}", prompt->user_code);

    /* The operator signs in on their phone. */
    control("POST", "/_emulator/devicecode/approve", body);
}

static void
on_signed_in(GObject *source, GAsyncResult *res, gpointer data)
{
    SignIn *s = data;

    s->session = kd_graph_auth_device_sign_in_finish((KdGraphAuth *)source, res, &s->error);
    s->done = TRUE;
}

/* An operator client: the public (device code) app, no app credential. */
static KdGraphClient *
new_operator_client(void)
{
    const char *port = strrchr(emu->host_port, ':') + 1;
    g_autofree char *graph = g_strdup_printf("graph.microsoft.com:443:127.0.0.1:%s", port);
    g_autofree char *login = g_strdup_printf("login.microsoftonline.com:443:127.0.0.1:%s", port);
    const char *connect_to[] = {graph, login, NULL};
    KdGraphOptions options = {
        .graph_url = "https://graph.microsoft.com",
        .login_url = "https://login.microsoftonline.com",
        .tenant = KD_EMU_TENANT_ID,
        .client_id = KD_EMU_DELEGATED_APP,
        .ca_file = emu->ca_file,
        .connect_to = connect_to,
    };
    g_autoptr(GError) error = NULL;
    KdGraphClient *client = kd_graph_client_new(&options, &error);

    if (client == NULL)
        fprintf(stderr, "kd_graph_client_new: %s\n", error->message);
    assert_non_null(client);
    return client;
}

static void
test_delegated_session(void **state)
{
    g_autoptr(KdGraphClient) client = new_operator_client();
    g_autoptr(GPtrArray) log = NULL;
    SignIn s = {0};
    Result r;

    kd_graph_auth_device_sign_in_async(kd_graph_client_get_auth(client), "User.Read.All", on_prompt,
                                       NULL, NULL, on_signed_in, &s);
    assert_true(kd_test_run_until(&s.done, 30000));
    if (s.error != NULL)
        fprintf(stderr, "sign-in: %s\n", s.error->message);
    assert_non_null(s.session);
    kd_graph_client_set_session(client, s.session);
    assert_true(kd_graph_client_get_session(client) == s.session);
    kd_graph_session_unref(s.session); /* the client keeps its own reference */

    call(client, "GET", ADA_PATH, NULL, KD_GRAPH_CALL_DELEGATED | KD_GRAPH_CALL_INTERACTIVE, &r);
    assert_null(r.error);
    result_clear(&r);
    log = graph_log("GET", ADA_PATH);
    assert_log_len(log, 1);
    assert_string_equal(entry_string(log, 0, "userId"), "3b1c2d4e-0000-4000-8000-000000000001");

    /* The operator's access token is revoked: 401, refreshed once, success. */
    add_fault("{\"kind\": \"revoke-token\", \"count\": 1, \"path\": \"" ADA_REGEX "\"}");
    call(client, "GET", ADA_PATH, NULL, KD_GRAPH_CALL_DELEGATED, &r);
    assert_null(r.error);
    result_clear(&r);
    g_clear_pointer(&log, g_ptr_array_unref);
    log = graph_log("GET", ADA_PATH);
    assert_log_len(log, 3);
    assert_int_equal(entry_int(log, 1, "status"), 401);
    assert_int_equal(entry_int(log, 2, "status"), 200);

    /* Signed out while a delegated call waits to retry: it does not go on with anyone's token. */
    clear_log();
    add_fault("{\"kind\": \"status\", \"status\": 429, \"retryAfter\": 1, \"count\": 1, "
              "\"path\": \"" ADA_REGEX "\"}");
    memset(&r, 0, sizeof(r));
    kd_graph_client_call_async(client, "GET", ADA_PATH, NULL, KD_GRAPH_CALL_DELEGATED, NULL,
                               on_call, &r);
    while (!r.done) {
        g_autoptr(GPtrArray) seen = graph_log("GET", ADA_PATH);
        if (seen->len > 0)
            break;
        g_main_context_iteration(NULL, FALSE);
    }
    kd_graph_client_sign_out(client);
    assert_null(kd_graph_client_get_session(client));
    assert_true(kd_test_run_until(&r.done, 10000));
    assert_graph_error(&r, KD_GRAPH_ERROR_UNAUTHORIZED);
    result_clear(&r);
    g_clear_pointer(&log, g_ptr_array_unref);
    log = graph_log("GET", ADA_PATH);
    assert_log_len(log, 1);

    /* Signed out: delegated calls stop before anything is sent. */
    clear_log();
    call(client, "GET", ADA_PATH, NULL, KD_GRAPH_CALL_DELEGATED, &r);
    assert_graph_error(&r, KD_GRAPH_ERROR_UNAUTHORIZED);
    result_clear(&r);
    g_clear_pointer(&log, g_ptr_array_unref);
    log = graph_log(NULL, NULL);
    assert_log_len(log, 0);
}

/* --- cancellation ------------------------------------------------------------------------- */

typedef struct {
    GCancellable *cancellable;
    gint64 cancelled_us;
} Canceller;

static gboolean
cancel_once_throttled(gpointer data)
{
    Canceller *c = data;
    g_autoptr(GPtrArray) log = graph_log("GET", ADA_PATH);

    if (log->len == 0 || entry_int(log, 0, "status") != 429)
        return G_SOURCE_CONTINUE;
    c->cancelled_us = g_get_monotonic_time();
    g_cancellable_cancel(c->cancellable);
    return G_SOURCE_REMOVE;
}

static void
test_cancel_during_wait(void **state)
{
    g_autoptr(KdGraphClient) client = new_client();
    g_autoptr(GCancellable) cancellable = g_cancellable_new();
    g_autoptr(GPtrArray) log = NULL;
    Canceller c = {cancellable, 0};
    Result r = {0};

    add_fault("{\"kind\": \"status\", \"status\": 429, \"retryAfter\": 5, \"path\": \"" ADA_REGEX
              "\"}");
    g_timeout_add(50, cancel_once_throttled, &c);
    kd_graph_client_call_async(client, "GET", ADA_PATH, NULL, 0, cancellable, on_call, &r);
    assert_true(kd_test_run_until(&r.done, 10000));
    assert_true(g_error_matches(r.error, G_IO_ERROR, G_IO_ERROR_CANCELLED));
    assert_true(c.cancelled_us > 0);
    assert_true(r.done_us - c.cancelled_us < 100 * 1000);
    result_clear(&r);
    log = graph_log("GET", ADA_PATH);
    assert_log_len(log, 1);

    /* Already cancelled: nothing is sent. */
    g_clear_pointer(&log, g_ptr_array_unref);
    clear_log();
    kd_graph_client_call_async(client, "GET", ADA_PATH, NULL, 0, cancellable, on_call, &r);
    assert_true(kd_test_run_until(&r.done, 10000));
    assert_true(g_error_matches(r.error, G_IO_ERROR, G_IO_ERROR_CANCELLED));
    result_clear(&r);
    log = graph_log(NULL, NULL);
    assert_log_len(log, 0);
}

static gboolean
cancel_now(gpointer data)
{
    Canceller *c = data;

    c->cancelled_us = g_get_monotonic_time();
    g_cancellable_cancel(c->cancellable);
    return G_SOURCE_REMOVE;
}

static void
test_cancel_during_request(void **state)
{
    g_autoptr(KdGraphClient) client = new_client();
    g_autoptr(GCancellable) cancellable = g_cancellable_new();
    Canceller c = {cancellable, 0};
    Result r = {0};

    add_fault("{\"kind\": \"latency\", \"ms\": 3000, \"path\": \"" ADA_REGEX "\"}");
    g_timeout_add(700, cancel_now, &c);
    kd_graph_client_call_async(client, "GET", ADA_PATH, NULL, 0, cancellable, on_call, &r);
    assert_true(kd_test_run_until(&r.done, 10000));
    assert_true(g_error_matches(r.error, G_IO_ERROR, G_IO_ERROR_CANCELLED));
    assert_true(r.done_us - c.cancelled_us < 100 * 1000);
    result_clear(&r);
    g_ptr_array_unref(wait_logged("GET", ADA_PATH, 1));
}

/* --- paging and nextLink ------------------------------------------------------------------ */

typedef struct {
    GHashTable *ids;
    guint pages;
    guint stop_after;
    gboolean duplicate;
    gboolean done;
    gboolean ok;
    GError *error;
} Pager;

static gboolean
on_page(JsonArray *page, gpointer data)
{
    Pager *p = data;

    p->pages++;
    for (guint i = 0; i < json_array_get_length(page); i++) {
        const char *id =
            json_object_get_string_member(json_array_get_object_element(page, i), "id");
        if (!g_hash_table_add(p->ids, g_strdup(id)))
            p->duplicate = TRUE;
    }
    return p->stop_after == 0 || p->pages < p->stop_after;
}

static void
on_listed(GObject *source, GAsyncResult *res, gpointer data)
{
    Pager *p = data;

    p->ok = kd_graph_client_list_finish(KD_GRAPH_CLIENT(source), res, &p->error);
    p->done = TRUE;
}

static void
list(KdGraphClient *client, const char *path, guint stop_after, Pager *p)
{
    memset(p, 0, sizeof(*p));
    p->ids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    p->stop_after = stop_after;
    kd_graph_client_list_async(client, path, 0, on_page, p, NULL, on_listed, p);
    assert_true(kd_test_run_until(&p->done, 60000));
}

static void
pager_clear(Pager *p)
{
    g_clear_pointer(&p->ids, g_hash_table_unref);
    g_clear_error(&p->error);
}

static void
test_paging(void **state)
{
    g_autoptr(KdGraphClient) client = new_client();
    g_autoptr(GPtrArray) log = NULL;
    guint users;
    Result r;
    Pager p;

    call(client, "GET", "/users?$top=999&$select=id", NULL, 0, &r);
    assert_null(r.error);
    users =
        json_array_get_length(json_object_get_array_member(json_node_get_object(r.node), "value"));
    assert_true(users >= 5);
    result_clear(&r);

    clear_log();
    list(client, "/users?$top=2", 0, &p);
    assert_true(p.ok);
    assert_null(p.error);
    assert_false(p.duplicate);
    assert_int_equal(g_hash_table_size(p.ids), users);
    assert_int_equal(p.pages, (users + 1) / 2);
    assert_true(g_hash_table_contains(p.ids, KD_EMU_USER_ADA));
    log = graph_log("GET", "/users");
    assert_log_len(log, p.pages);
    /* Each page is its own logical call. */
    assert_string_not_equal(entry_string(log, 0, "clientRequestId"),
                            entry_string(log, 1, "clientRequestId"));
    pager_clear(&p);

    /* Told to stop after the first page: no second request. */
    g_clear_pointer(&log, g_ptr_array_unref);
    clear_log();
    list(client, "/users?$top=2", 1, &p);
    assert_true(p.ok);
    assert_int_equal(p.pages, 1);
    assert_int_equal(g_hash_table_size(p.ids), 2);
    log = graph_log("GET", "/users");
    assert_log_len(log, 1);
    pager_clear(&p);

    /* A page that fails after retries fails the listing. */
    kd_graph_client_set_backoff(client, 10, 50);
    add_fault("{\"kind\": \"status\", \"status\": 503, \"after\": 1, \"path\": \"^/v1.0/users$\"}");
    list(client, "/users?$top=2", 0, &p);
    assert_false(p.ok);
    assert_true(g_error_matches(p.error, KD_GRAPH_ERROR, KD_GRAPH_ERROR_UNAVAILABLE));
    assert_int_equal(p.pages, 1);
    pager_clear(&p);

    /* Not a collection. */
    control("DELETE", "/_emulator/faults", NULL);
    list(client, ADA_PATH, 0, &p);
    assert_false(p.ok);
    assert_true(g_error_matches(p.error, KD_GRAPH_ERROR, KD_GRAPH_ERROR_BAD_RESPONSE));
    pager_clear(&p);
}

static void
test_foreign_next_link_refused(void **state)
{
    g_autoptr(KdGraphClient) client = new_client();
    g_autoptr(GPtrArray) log = NULL;
    /* The emulator itself under another name: reachable, and still refused. */
    g_autofree char *direct = g_strdup_printf("%s/v1.0/users?$top=2", emu->url);
    g_autofree char *userinfo =
        g_strdup_printf("https://graph.microsoft.com@%s/v1.0/users", emu->host_port);
    const char *forged[] = {direct, userinfo, "https://graph.microsoft.com.evil.example/v1.0/users",
                            "http://graph.microsoft.com/v1.0/users", "//evil.example/v1.0/users"};
    Result r;
    Pager p;

    for (gsize i = 0; i < G_N_ELEMENTS(forged); i++) {
        call(client, "GET", forged[i], NULL, 0, &r);
        assert_graph_error(&r, KD_GRAPH_ERROR_BAD_RESPONSE);
        result_clear(&r);
    }
    list(client, direct, 0, &p);
    assert_false(p.ok);
    assert_true(g_error_matches(p.error, KD_GRAPH_ERROR, KD_GRAPH_ERROR_BAD_RESPONSE));
    assert_int_equal(p.pages, 0);
    pager_clear(&p);
    log = graph_log(NULL, NULL);
    assert_log_len(log, 0);
    assert_int_equal(token_requests(), 0);

    /* Our own host, absolute, as nextLinks are: fine. */
    call(client, "GET", "https://graph.microsoft.com/v1.0" ADA_PATH, NULL, 0, &r);
    assert_null(r.error);
    result_clear(&r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_after_parse),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test_setup(test_get_json_and_headers, test_setup),
        cmocka_unit_test_setup(test_not_found, test_setup),
        cmocka_unit_test_setup(test_error_body_not_json, test_setup),
        cmocka_unit_test_setup(test_no_content, test_setup),
        cmocka_unit_test_setup(test_bad_request_not_retried, test_setup),
        cmocka_unit_test_setup(test_extra_fields, test_setup),
        cmocka_unit_test_setup(test_beta_and_consistency_level, test_setup),
        cmocka_unit_test_setup(test_escaping, test_setup),
        cmocka_unit_test_setup(test_retry_after_429, test_setup),
        cmocka_unit_test_setup(test_503_backoff, test_setup),
        cmocka_unit_test_setup(test_503_exhausts_attempts, test_setup),
        cmocka_unit_test_setup(test_deadline_before_retry_after, test_setup),
        cmocka_unit_test_setup(test_deadline_during_request, test_setup),
        cmocka_unit_test_setup(test_reset_get_retried, test_setup),
        cmocka_unit_test_setup(test_reset_post_unknown_outcome, test_setup),
        cmocka_unit_test_setup(test_post_5xx, test_setup),
        cmocka_unit_test_setup(test_truncated_get_retried, test_setup),
        cmocka_unit_test_setup(test_malformed_bad_response, test_setup),
        cmocka_unit_test_setup(test_latency_main_loop_runs, test_setup),
        cmocka_unit_test_setup(test_token_revoked, test_setup),
        cmocka_unit_test_setup(test_delegated_without_session, test_setup),
        cmocka_unit_test_setup(test_delegated_session, test_setup),
        cmocka_unit_test_setup(test_cancel_during_wait, test_setup),
        cmocka_unit_test_setup(test_cancel_during_request, test_setup),
        cmocka_unit_test_setup(test_paging, test_setup),
        cmocka_unit_test_setup(test_reply_headers, test_setup),
        cmocka_unit_test_setup(test_secret_member, test_setup),
        cmocka_unit_test_setup(test_token_retries_do_not_stack, test_setup),
        cmocka_unit_test_setup(test_foreign_next_link_refused, test_setup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
