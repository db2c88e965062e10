/* test-auth: kd-graph-auth against the emulator over TLS: app tokens (secret, certificates),
 * the cache, device-code sign-in, id_token validation, refresh, and that no secret reaches the
 * emulator's request log or keydesk's own log. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "graph/kd-graph-auth-private.h"
#include "graph/kd-graph-auth.h"
#include "graph/kd-graph-client.h"
#include "graph/kd-http.h"
#include "kd-emulator.h"

#define ADMIN_UPN "admin@" KD_EMU_DOMAIN
#define ADA_UPN   "ada@" KD_EMU_DOMAIN

static KdEmulator *emu;
static char *tmp_dir;
static char *rsa_cert, *rsa_key;           /* registered on the kiosk app */
static char *ec_cert, *ec_key;             /* registered too (ES256) */
static char *stranger_cert, *stranger_key; /* not registered anywhere */
static GString *log_text;                  /* everything keydesk logged, debug included */
static GPtrArray *seen_tokens;             /* every token value a test got hold of */

/* --- fixtures ------------------------------------------------------------------------------ */

static GLogWriterOutput
capture_log(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
    for (gsize i = 0; i < n_fields; i++) {
        if (g_strcmp0(fields[i].key, "MESSAGE") == 0 && fields[i].value != NULL)
            g_string_append_len(log_text, fields[i].value,
                                fields[i].length < 0 ? (gssize)strlen(fields[i].value)
                                                     : fields[i].length);
    }
    g_string_append_c(log_text, '\n');
    return g_log_writer_default(level, fields, n_fields, user_data);
}

static void
make_credential(const char *name, gboolean ec, char **cert_path, char **key_path)
{
    static long serial = 1;
    EVP_PKEY *key = ec ? EVP_EC_gen("P-256") : EVP_RSA_gen(2048);
    X509 *x = X509_new();
    X509_NAME *subject;
    BIO *bio;
    FILE *f;
    int fd;

    assert_non_null(key);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    subject = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, (const unsigned char *)name, -1, -1, 0);
    X509_set_issuer_name(x, subject);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);

    *cert_path = g_strdup_printf("%s/%s.pem", tmp_dir, name);
    *key_path = g_strdup_printf("%s/%s.key", tmp_dir, name);
    bio = BIO_new_file(*cert_path, "w");
    assert_non_null(bio);
    assert_true(PEM_write_bio_X509(bio, x) == 1);
    BIO_free(bio);
    fd = open(*key_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    assert_non_null(f);
    assert_true(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(key);
}

static int
group_setup(void **state)
{
    GError *error = NULL;
    char *tweak;

    tmp_dir = g_dir_make_tmp("kd-test-auth-XXXXXX", &error);
    assert_non_null(tmp_dir);
    make_credential("kiosk-rsa", FALSE, &rsa_cert, &rsa_key);
    make_credential("kiosk-ec", TRUE, &ec_cert, &ec_key);
    make_credential("stranger", FALSE, &stranger_cert, &stranger_key);
    tweak = g_strdup_printf("t['apps'][0]['certificates'] = [{'pem': open('%s').read()}, "
                            "{'pem': open('%s').read()}]",
                            rsa_cert, ec_cert);
    emu = kd_emulator_start(tweak, NULL);
    g_free(tweak);
    return 0;
}

static void
remove_file(char **path)
{
    unlink(*path);
    g_clear_pointer(path, g_free);
}

static int
group_teardown(void **state)
{
    kd_emulator_stop(&emu);
    remove_file(&rsa_cert);
    remove_file(&rsa_key);
    remove_file(&ec_cert);
    remove_file(&ec_key);
    remove_file(&stranger_cert);
    remove_file(&stranger_key);
    rmdir(tmp_dir);
    g_clear_pointer(&tmp_dir, g_free);
    return 0;
}

static void
emu_control(const char *method, const char *path, const char *body, guint expect_status)
{
    guint status = 0;
    JsonNode *node = kd_emulator_call(emu, method, path, body, &status);

    if (node != NULL)
        json_node_unref(node);
    if (expect_status != 0 && status != expect_status)
        fail_msg("%s %s → %u, expected %u", method, path, status, expect_status);
}

/* Back to the tenant's defaults after every test. */
static int
reset_emulator(void **state)
{
    emu_control("DELETE", "/_emulator/faults", NULL, 0);
    emu_control("PATCH", "/_emulator/settings",
                "{\"accessTokenLifetimeSeconds\": 3600, \"deviceCodeExpiresIn\": 900}", 200);
    return 0;
}

static gint64
last_seq(void)
{
    JsonNode *log = kd_emulator_requests(emu, -1);
    JsonArray *a = json_node_get_array(log);
    gint64 seq = -1;

    for (guint i = 0; i < json_array_get_length(a); i++)
        seq = MAX(seq, json_object_get_int_member(json_array_get_object_element(a, i), "seq"));
    json_node_unref(log);
    return seq;
}

/* Requests after @since whose path ends with @suffix. */
static guint
count_requests(gint64 since, const char *suffix)
{
    JsonNode *log = kd_emulator_requests(emu, since);
    JsonArray *a = json_node_get_array(log);
    guint n = 0;

    for (guint i = 0; i < json_array_get_length(a); i++) {
        const char *path =
            json_object_get_string_member(json_array_get_object_element(a, i), "path");
        if (path != NULL && g_str_has_suffix(path, suffix))
            n++;
    }
    json_node_unref(log);
    return n;
}

typedef struct {
    KdHttp *http;
    KdGraphAuth *auth;
} Client;

static void
client_open(Client *c, const char *client_id, KdSecret *secret, const char *cert, const char *key,
            int alg)
{
    KdHttpOptions http_options = {.ca_file = emu->ca_file, .user_agent = "keydesk-test/1"};
    KdGraphAuthOptions o = {
        .login_url = emu->url,
        .tenant = KD_EMU_TENANT_ID,
        .client_id = client_id,
        .graph_url = emu->url,
        .certificate_file = cert,
        .private_key_file = key,
        .client_secret = secret,
        .assertion_alg = alg,
    };
    GError *error = NULL;

    c->http = kd_http_new(&http_options, NULL);
    assert_non_null(c->http);
    c->auth = kd_graph_auth_new(&o, c->http, &error);
    if (c->auth == NULL)
        fail_msg("kd_graph_auth_new: %s", error->message);
}

static void
client_open_secret(Client *c, const char *value)
{
    KdSecret *secret = kd_secret_new_from(value, strlen(value));

    client_open(c, KD_EMU_KIOSK_APP, secret, NULL, NULL, KD_GRAPH_ASSERTION_PS256);
    kd_secret_unref(secret);
}

static void
client_close(Client *c)
{
    gboolean never = FALSE;

    kd_graph_auth_free(&c->auth);
    kd_http_free(&c->http);
    /* Let cancelled requests complete (kd-http finishes them from an idle). */
    kd_test_run_until(&never, 50);
}

/* --- running the asynchronous calls -------------------------------------------------------- */

typedef struct {
    gboolean done;
    KdGraphAuth *auth;
    KdGraphSession *session; /* for session tokens */
    KdSecret *token;
    KdGraphSession *signed_in;
    GError *error;
    gint64 done_us;
} Result;

static void
result_clear(Result *r)
{
    g_clear_pointer(&r->token, kd_secret_unref);
    g_clear_pointer(&r->signed_in, kd_graph_session_unref);
    g_clear_error(&r->error);
    memset(r, 0, sizeof(*r));
}

static void
remember_token(const KdSecret *token)
{
    g_ptr_array_add(seen_tokens, g_strdup(kd_secret_get_string(token)));
}

static void
on_app_token(GObject *source, GAsyncResult *res, gpointer data)
{
    Result *r = data;

    r->token = kd_graph_auth_app_token_finish(r->auth, res, &r->error);
    if (r->token != NULL)
        remember_token(r->token);
    r->done_us = g_get_monotonic_time();
    r->done = TRUE;
}

static void
on_session_token(GObject *source, GAsyncResult *res, gpointer data)
{
    Result *r = data;

    r->token = kd_graph_session_token_finish(r->session, res, &r->error);
    if (r->token != NULL)
        remember_token(r->token);
    r->done_us = g_get_monotonic_time();
    r->done = TRUE;
}

static void
on_signed_in(GObject *source, GAsyncResult *res, gpointer data)
{
    Result *r = data;

    r->signed_in = kd_graph_auth_device_sign_in_finish(r->auth, res, &r->error);
    r->done_us = g_get_monotonic_time();
    r->done = TRUE;
}

static void
wait_for(Result *r, guint timeout_ms)
{
    if (!kd_test_run_until(&r->done, timeout_ms))
        fail_msg("no answer within %u ms", timeout_ms);
}

static void
app_token(Client *c, gboolean force, Result *r)
{
    memset(r, 0, sizeof(*r));
    r->auth = c->auth;
    kd_graph_auth_app_token_async(c->auth, force, NULL, on_app_token, r);
    wait_for(r, 60000);
}

static void
session_token(Client *c, KdGraphSession *session, gboolean force, Result *r)
{
    memset(r, 0, sizeof(*r));
    r->session = session;
    kd_graph_session_token_async(session, c->auth, force, NULL, on_session_token, r);
    wait_for(r, 60000);
}

static void
assert_token(const Result *r)
{
    if (r->error != NULL)
        fail_msg("unexpected error: %s", r->error->message);
    assert_non_null(r->token);
    assert_true(kd_secret_get_length(r->token) > 100);
}

static const KdGraphErrorInfo *
assert_graph_error(const GError *error, KdGraphErrorCode code)
{
    assert_non_null(error);
    if (!g_error_matches(error, KD_GRAPH_ERROR, (int)code))
        fail_msg("expected %s, got %s %d: %s", kd_graph_error_code_name(code),
                 g_quark_to_string(error->domain), error->code, error->message);
    return kd_graph_error_get_info(error);
}

typedef struct {
    gboolean done;
    KdHttp *http;
    KdHttpResponse *response;
    GError *error;
} Sent;

static void
on_sent(GObject *src, GAsyncResult *res, gpointer data)
{
    Sent *s = data;

    s->response = kd_http_send_finish(s->http, res, &s->error);
    s->done = TRUE;
}

/* What the emulator says a bearer token speaks for (POST /_emulator/tokens/check). */
static JsonObject *
check_token(Client *c, const KdSecret *token)
{
    char *url = g_strconcat(emu->url, "/_emulator/tokens/check", NULL);
    char *bearer = g_strconcat("Bearer ", kd_secret_get_string(token), NULL);
    KdHttpRequest *request = kd_http_request_new("POST", url);
    JsonParser *parser = json_parser_new();
    Sent s = {.http = c->http};
    JsonObject *out;
    const char *body;
    gsize len;

    kd_http_request_add_secret_header(request, "Authorization", bearer);
    explicit_bzero(bearer, strlen(bearer));
    g_free(bearer);
    g_free(url);
    kd_http_send_async(c->http, request, NULL, on_sent, &s);
    assert_true(kd_test_run_until(&s.done, 30000));
    assert_null(s.error);
    assert_int_equal(kd_http_response_get_status(s.response), 200);
    body = g_bytes_get_data(kd_http_response_get_body(s.response), &len);
    assert_true(json_parser_load_from_data(parser, body, (gssize)len, NULL));
    out = json_object_ref(json_node_get_object(json_parser_get_root(parser)));
    kd_http_response_free(&s.response);
    g_object_unref(parser);
    return out;
}

/* --- unit tests: no network ------------------------------------------------------------------ */

static void
test_resource_for_graph_url(void **state)
{
    static const char *const cases[][2] = {
        {"https://graph.microsoft.com", "https://graph.microsoft.com"},
        {"https://graph.microsoft.com/", "https://graph.microsoft.com"},
        {"https://GRAPH.microsoft.us", "https://graph.microsoft.us"},
        {"https://dod-graph.microsoft.us", "https://dod-graph.microsoft.us"},
        {"https://microsoftgraph.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn"},
        {"https://127.0.0.1:8443", "https://graph.microsoft.com"},
        {"https://graph-proxy.example.org", "https://graph.microsoft.com"},
        {"http://graph.microsoft.us", "https://graph.microsoft.com"},
        {"not a url", "https://graph.microsoft.com"},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        char *resource = kd_graph_auth_resource_for(cases[i][0]);
        assert_string_equal(resource, cases[i][1]);
        g_free(resource);
    }
    {
        char *resource = kd_graph_auth_resource_for(NULL);
        assert_string_equal(resource, "https://graph.microsoft.com");
        g_free(resource);
    }
}

static gboolean
parse(const char *json, KdOAuthReply *reply)
{
    return kd_oauth_reply_parse(json, strlen(json), reply);
}

static void
test_reply_parser(void **state)
{
    KdOAuthReply r;

    assert_true(parse(" {\"token_type\":\"Bearer\",\"expires_in\":3599,\"ext_expires_in\":3599,"
                      "\"access_token\":\"eyJ0.a\\/b\\u0041\\ud83d\\ude00\",\"x\":{\"y\":[1,"
                      "{\"z\":null}],\"w\":true},\"n\":-1.5e3}\n",
                      &r));
    assert_string_equal(r.token_type, "Bearer");
    assert_int_equal(r.expires_in, 3599);
    assert_string_equal(kd_secret_get_string(r.access_token), "eyJ0.a/bA\xf0\x9f\x98\x80");
    assert_null(r.refresh_token);
    assert_int_equal(r.interval, -1);
    kd_oauth_reply_clear(&r);

    assert_true(parse("{\"error\":\"invalid_client\",\"error_description\":\"AADSTS7000215: "
                      "x\\r\\nTrace ID: t\",\"error_codes\":[7000215, 1],\"trace_id\":\"t-1\","
                      "\"correlation_id\":\"c-1\",\"expires_in\":\"42\",\"interval\":null}",
                      &r));
    assert_string_equal(r.error, "invalid_client");
    assert_int_equal(r.aadsts, 7000215);
    assert_string_equal(r.trace_id, "t-1");
    assert_string_equal(r.correlation_id, "c-1");
    assert_int_equal(r.expires_in, 42);
    assert_int_equal(r.interval, -1);
    assert_non_null(strstr(r.error_description, "\r\nTrace ID"));
    kd_oauth_reply_clear(&r);

    assert_true(parse("{}", &r));
    kd_oauth_reply_clear(&r);
    /* Wrong types read as absent. */
    assert_true(parse("{\"access_token\":5,\"error_codes\":\"x\",\"expires_in\":1.5}", &r));
    assert_null(r.access_token);
    assert_int_equal(r.aadsts, 0);
    assert_int_equal(r.expires_in, -1);
    kd_oauth_reply_clear(&r);

    static const char *const bad[] = {
        "",
        "[]",
        "{",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "{\"access_token\":\"x\",\"access_token\":\"y\"}", /* which one? */
        "{\"error\":\"\\u0000\"}",
        "{\"access_token\":\"\\u0000\"}",
        "{\"a\":\"\\x\"}",
        "{\"error\":\"\\ud83d\"}",
        "{\"access_token\":\"\\udc00\"}",
        "{\"a\":\"tab\there\"}",
        "{\"a\":01}",
        "{\"a\":tru}",
        "{} {}",
        "{\"a\":1}<html>",
        "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
    };
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        if (parse(bad[i], &r))
            fail_msg("accepted %s", bad[i]);
        assert_null(r.access_token);
        assert_null(r.error);
    }
    /* Embedded NUL outside a string, and a truncated buffer. */
    assert_false(kd_oauth_reply_parse("{\"a\":1}\0", 8, &r));
    assert_false(kd_oauth_reply_parse("{\"access_token\":\"abc\"}", 20, &r));
    assert_null(r.access_token);
}

/* --- id_token validation, with a key of our own ---------------------------------------------- */

static char *
b64url(const void *data, gsize len)
{
    char *s = g_base64_encode(data, len);

    g_strdelimit(s, "+", '-');
    g_strdelimit(s, "/", '_');
    if (strchr(s, '=') != NULL)
        *strchr(s, '=') = '\0';
    return s;
}

static char *
bn_b64url(EVP_PKEY *key, const char *param)
{
    BIGNUM *bn = NULL;
    guint8 buf[1024];
    int n;

    assert_true(EVP_PKEY_get_bn_param(key, param, &bn) == 1);
    n = BN_bn2bin(bn, buf);
    BN_free(bn);
    return b64url(buf, (gsize)n);
}

static JsonNode *
jwks_for(EVP_PKEY *key, const char *kid, const char *issuer)
{
    char *n = bn_b64url(key, OSSL_PKEY_PARAM_RSA_N);
    char *e = bn_b64url(key, OSSL_PKEY_PARAM_RSA_E);
    char *json = g_strdup_printf("{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"other\",\"n\":\"AQAB\","
                                 "\"e\":\"AQAB\"},{\"kty\":\"RSA\",\"use\":\"sig\",\"kid\":\"%s\","
                                 "\"x5t\":\"%s\",\"n\":\"%s\",\"e\":\"%s\"%s%s%s}]}",
                                 kid, kid, n, e, issuer != NULL ? ",\"issuer\":\"" : "",
                                 issuer != NULL ? issuer : "", issuer != NULL ? "\"" : "");
    JsonNode *node = json_from_string(json, NULL);

    assert_non_null(node);
    g_free(json);
    g_free(n);
    g_free(e);
    return node;
}

static char *
sign_jwt(EVP_PKEY *key, const char *header, const char *claims)
{
    char *h = b64url(header, strlen(header));
    char *c = b64url(claims, strlen(claims));
    char *input = g_strconcat(h, ".", c, NULL);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    guint8 sig[1024];
    gsize sig_len = sizeof(sig);
    char *s, *token;

    assert_true(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1);
    assert_true(EVP_DigestSign(md, sig, &sig_len, (const guint8 *)input, strlen(input)) == 1);
    s = b64url(sig, sig_len);
    token = g_strconcat(input, ".", s, NULL);
    EVP_MD_CTX_free(md);
    g_free(h);
    g_free(c);
    g_free(input);
    g_free(s);
    return token;
}

#define ISSUER     "https://login.microsoftonline.com/" KD_EMU_TENANT_ID "/v2.0"
#define ISSUER_TPL "https://login.microsoftonline.com/{tenantid}/v2.0"
#define GOOD_HDR   "{\"typ\":\"JWT\",\"alg\":\"RS256\",\"kid\":\"k1\"}"

static char *
claims_json(gint64 now, const char *aud, const char *iss, const char *tid, const char *extra)
{
    return g_strdup_printf("{\"aud\":\"%s\",\"iss\":\"%s\",\"iat\":%" G_GINT64_FORMAT
                           ",\"nbf\":%" G_GINT64_FORMAT ",\"exp\":%" G_GINT64_FORMAT
                           ",\"name\":\"Ines Admin\",\"preferred_username\":\"%s\",\"oid\":\"%s\","
                           "\"sub\":\"s\",\"tid\":\"%s\",\"ver\":\"2.0\"%s}",
                           aud, iss, now, now, now + 3600, ADMIN_UPN, KD_EMU_USER_ADMIN, tid,
                           extra != NULL ? extra : "");
}

typedef struct {
    const char *what;
    const char *header;
    const char *aud;
    const char *iss;
    const char *tid;
    gint64 shift; /* seconds added to "now" in the claims */
    const char *extra;
} TokenCase;

static gboolean
validate(const char *token, JsonNode *jwks, const char *issuer, gint64 now, KdIdTokenClaims *claims,
         gboolean *unknown_kid, GError **error)
{
    return kd_graph_id_token_validate(token, strlen(token), jwks, issuer, KD_EMU_DELEGATED_APP,
                                      KD_EMU_TENANT_ID, now, claims, unknown_kid, error);
}

static void
test_id_token_validation(void **state)
{
    EVP_PKEY *key = EVP_RSA_gen(2048), *other = EVP_RSA_gen(2048);
    JsonNode *jwks = jwks_for(key, "k1", ISSUER_TPL);
    JsonNode *tampered = jwks_for(other, "k1", NULL); /* same kid, someone else's key */
    gint64 now = g_get_real_time() / G_USEC_PER_SEC;
    KdIdTokenClaims claims;
    gboolean unknown_kid;
    GError *error = NULL;
    char *c, *token;

    /* The good one, with the literal issuer and with the template. */
    c = claims_json(now, KD_EMU_DELEGATED_APP, ISSUER, KD_EMU_TENANT_ID, NULL);
    token = sign_jwt(key, GOOD_HDR, c);
    assert_true(validate(token, jwks, ISSUER, now, &claims, &unknown_kid, &error));
    assert_null(error);
    assert_string_equal(claims.oid, KD_EMU_USER_ADMIN);
    assert_string_equal(claims.upn, ADMIN_UPN);
    assert_string_equal(claims.name, "Ines Admin");
    assert_string_equal(claims.tid, KD_EMU_TENANT_ID);
    kd_id_token_claims_clear(&claims);
    assert_true(validate(token, jwks, ISSUER_TPL, now, &claims, &unknown_kid, &error));
    kd_id_token_claims_clear(&claims);
    /* Within the clock skew both ways. */
    assert_true(validate(token, jwks, ISSUER, now - 200, &claims, &unknown_kid, &error));
    kd_id_token_claims_clear(&claims);

    /* A JWKS whose key for that kid is another one: the signature does not verify. */
    assert_false(validate(token, tampered, ISSUER, now, &claims, &unknown_kid, &error));
    assert_graph_error(error, KD_GRAPH_ERROR_AUTH);
    assert_false(unknown_kid);
    assert_null(claims.oid);
    g_clear_error(&error);

    /* One flipped character in the payload. */
    {
        char *bad = g_strdup(token);
        char *p = strchr(bad, '.') + 5;
        *p = *p == 'A' ? 'B' : 'A';
        assert_false(validate(bad, jwks, ISSUER, now, &claims, &unknown_kid, &error));
        assert_graph_error(error, KD_GRAPH_ERROR_AUTH);
        g_clear_error(&error);
        g_free(bad);
    }
    /* Expired (beyond the skew), not yet valid. */
    assert_false(validate(token, jwks, ISSUER, now + 3600 + 301, &claims, &unknown_kid, &error));
    assert_graph_error(error, KD_GRAPH_ERROR_AUTH);
    g_clear_error(&error);
    assert_false(validate(token, jwks, ISSUER, now - 400, &claims, &unknown_kid, &error));
    assert_graph_error(error, KD_GRAPH_ERROR_AUTH);
    g_clear_error(&error);
    /* A multi-tenant issuer template cannot stand for "our" tenant if the tenant is a name. */
    assert_false(kd_graph_id_token_validate(token, strlen(token), jwks, ISSUER_TPL,
                                            KD_EMU_DELEGATED_APP, KD_EMU_DOMAIN, now, &claims,
                                            &unknown_kid, &error));
    g_clear_error(&error);
    g_free(token);
    g_free(c);

    const TokenCase cases[] = {
        {"wrong audience", GOOD_HDR, KD_EMU_KIOSK_APP, ISSUER, KD_EMU_TENANT_ID, 0, NULL},
        {"wrong issuer", GOOD_HDR, KD_EMU_DELEGATED_APP,
         "https://login.microsoftonline.com/" KD_EMU_TENANT_ID "/", KD_EMU_TENANT_ID, 0, NULL},
        {"other tenant", GOOD_HDR, KD_EMU_DELEGATED_APP,
         "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000001/v2.0",
         "00000000-0000-0000-0000-000000000001", 0, NULL},
        {"alg none", "{\"alg\":\"none\",\"kid\":\"k1\"}", KD_EMU_DELEGATED_APP, ISSUER,
         KD_EMU_TENANT_ID, 0, NULL},
        {"alg HS256", "{\"alg\":\"HS256\",\"kid\":\"k1\"}", KD_EMU_DELEGATED_APP, ISSUER,
         KD_EMU_TENANT_ID, 0, NULL},
        {"no kid", "{\"alg\":\"RS256\"}", KD_EMU_DELEGATED_APP, ISSUER, KD_EMU_TENANT_ID, 0, NULL},
        {"issued in the future", GOOD_HDR, KD_EMU_DELEGATED_APP, ISSUER, KD_EMU_TENANT_ID, 900,
         NULL},
        {"v1 token", GOOD_HDR, KD_EMU_DELEGATED_APP, ISSUER, KD_EMU_TENANT_ID, 0,
         ",\"ver\":\"1.0\"" /* repeated member: json-glib keeps the last */},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        c = claims_json(now + cases[i].shift, cases[i].aud, cases[i].iss, cases[i].tid,
                        cases[i].extra);
        token = sign_jwt(key, cases[i].header, c);
        if (validate(token, jwks, ISSUER_TPL, now, &claims, &unknown_kid, &error))
            fail_msg("accepted: %s", cases[i].what);
        assert_graph_error(error, KD_GRAPH_ERROR_AUTH);
        assert_false(unknown_kid);
        g_clear_error(&error);
        g_free(token);
        g_free(c);
    }

    /* No oid. */
    c = g_strdup_printf("{\"aud\":\"%s\",\"iss\":\"%s\",\"exp\":%" G_GINT64_FORMAT
                        ",\"tid\":\"%s\"}",
                        KD_EMU_DELEGATED_APP, ISSUER, now + 60, KD_EMU_TENANT_ID);
    token = sign_jwt(key, GOOD_HDR, c);
    assert_false(validate(token, jwks, ISSUER, now, &claims, &unknown_kid, &error));
    g_clear_error(&error);
    g_free(token);
    g_free(c);

    /* Signed by a key the JWKS does not have: "fetch the keys again". */
    c = claims_json(now, KD_EMU_DELEGATED_APP, ISSUER, KD_EMU_TENANT_ID, NULL);
    token = sign_jwt(other, "{\"alg\":\"RS256\",\"kid\":\"rotated\"}", c);
    assert_false(validate(token, jwks, ISSUER, now, &claims, &unknown_kid, &error));
    assert_true(unknown_kid);
    assert_graph_error(error, KD_GRAPH_ERROR_AUTH);
    g_clear_error(&error);
    g_free(token);

    /* A key set that is not one: nothing found, nothing critical. */
    static const char *const no_keys[] = {"{}", "{\"keys\": {}}", "{\"keys\": [1, null, []]}",
                                          "[]"};
    for (gsize i = 0; i < G_N_ELEMENTS(no_keys); i++) {
        JsonNode *odd = json_from_string(no_keys[i], NULL);
        char *good = sign_jwt(key, GOOD_HDR, c);
        assert_false(validate(good, odd, ISSUER, now, &claims, &unknown_kid, &error));
        assert_true(unknown_kid);
        g_clear_error(&error);
        json_node_unref(odd);
        g_free(good);
    }

    /* Not a JWT at all. */
    static const char *const junk[] = {"", "a.b", "a.b.c.d", "!!.??.**", "e30.e30.", "e30.e30.AA"};
    for (gsize i = 0; i < G_N_ELEMENTS(junk); i++) {
        assert_false(validate(junk[i], jwks, ISSUER, now, &claims, &unknown_kid, &error));
        assert_graph_error(error, KD_GRAPH_ERROR_AUTH);
        g_clear_error(&error);
    }
    g_free(c);
    json_node_unref(jwks);
    json_node_unref(tampered);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
}

/* --- configuration ------------------------------------------------------------------------- */

static void
expect_config_error(const char *login_url, const char *cert, const char *key)
{
    KdHttpOptions http_options = {.ca_file = emu->ca_file};
    KdHttp *http = kd_http_new(&http_options, NULL);
    KdGraphAuthOptions o = {
        .login_url = login_url,
        .tenant = KD_EMU_TENANT_ID,
        .client_id = KD_EMU_KIOSK_APP,
        .graph_url = "https://graph.microsoft.com",
        .certificate_file = cert,
        .private_key_file = key,
    };
    GError *error = NULL;
    KdGraphAuth *auth = kd_graph_auth_new(&o, http, &error);

    assert_null(auth);
    assert_graph_error(error, KD_GRAPH_ERROR_CONFIG);
    g_error_free(error);
    kd_http_free(&http);
}

static void
test_config_errors(void **state)
{
    char *open_key = g_strdup_printf("%s/world-readable.key", tmp_dir);
    char *enc_key = g_strdup_printf("%s/encrypted.key", tmp_dir);
    char *data = NULL;
    gsize len = 0;
    BIO *in, *out;
    EVP_PKEY *key;

    expect_config_error("http://login.example", NULL, NULL);
    expect_config_error(NULL, NULL, NULL);
    expect_config_error(emu->url, rsa_cert, NULL);
    expect_config_error(emu->url, NULL, rsa_key);
    expect_config_error(emu->url, "/nonexistent/cert.pem", rsa_key);
    expect_config_error(emu->url, rsa_cert, "/nonexistent/key.pem");
    expect_config_error(emu->url, rsa_cert, stranger_key); /* not this certificate's key */
    expect_config_error(emu->url, rsa_cert, rsa_cert);     /* not a key */

    /* A key others can read is refused, however right it is. */
    assert_true(g_file_get_contents(rsa_key, &data, &len, NULL));
    assert_true(g_file_set_contents_full(open_key, data, (gssize)len, G_FILE_SET_CONTENTS_NONE,
                                         0644, NULL));
    explicit_bzero(data, len);
    g_free(data);
    expect_config_error(emu->url, rsa_cert, open_key);

    /* An encrypted key: refused without ever asking for a passphrase on the terminal. */
    in = BIO_new_file(rsa_key, "r");
    key = PEM_read_bio_PrivateKey(in, NULL, NULL, NULL);
    assert_non_null(key);
    out = BIO_new_file(enc_key, "w");
    assert_true(PEM_write_bio_PKCS8PrivateKey(out, key, EVP_aes_256_cbc(), "pass", 4, NULL, NULL) ==
                1);
    BIO_free(out);
    BIO_free(in);
    EVP_PKEY_free(key);
    chmod(enc_key, 0600);
    expect_config_error(emu->url, rsa_cert, enc_key);

    {
        KdHttpOptions http_options = {.ca_file = emu->ca_file};
        KdHttp *http = kd_http_new(&http_options, NULL);
        KdGraphAuthOptions o = {.login_url = emu->url,
                                .tenant = "contoso.onmicrosoft.com/../x",
                                .client_id = KD_EMU_KIOSK_APP};
        GError *error = NULL;
        assert_null(kd_graph_auth_new(&o, http, &error));
        assert_graph_error(error, KD_GRAPH_ERROR_CONFIG);
        g_clear_error(&error);
        kd_http_free(&http);
    }
    /* Without any credential: device code only; app tokens say so. */
    {
        Client c;
        Result r;
        client_open(&c, KD_EMU_KIOSK_APP, NULL, NULL, NULL, KD_GRAPH_ASSERTION_PS256);
        app_token(&c, FALSE, &r);
        assert_graph_error(r.error, KD_GRAPH_ERROR_CONFIG);
        result_clear(&r);
        client_close(&c);
    }
    unlink(open_key);
    unlink(enc_key);
    g_free(open_key);
    g_free(enc_key);
}

/* --- app tokens ---------------------------------------------------------------------------- */

static void
assert_app_token_works(Client *c, const KdSecret *token)
{
    JsonObject *who = check_token(c, token);

    assert_string_equal(json_object_get_string_member(who, "kind"), "app");
    assert_string_equal(json_object_get_string_member(who, "appId"), KD_EMU_KIOSK_APP);
    json_object_unref(who);
}

static void
test_secret(void **state)
{
    Client c;
    Result r;
    gint64 since = last_seq();
    JsonNode *log;
    JsonObject *entry;

    client_open_secret(&c, KD_EMU_KIOSK_SECRET);
    app_token(&c, FALSE, &r);
    assert_token(&r);
    assert_app_token_works(&c, r.token);
    result_clear(&r);

    /* The request as the emulator saw it: a form to the tenant's v2.0 token endpoint, for the
     * Graph resource. */
    log = kd_emulator_requests(emu, since);
    entry = NULL;
    for (guint i = 0; i < json_array_get_length(json_node_get_array(log)) && entry == NULL; i++) {
        JsonObject *e = json_array_get_object_element(json_node_get_array(log), i);
        if (g_str_has_suffix(json_object_get_string_member(e, "path"), "/token"))
            entry = e;
    }
    assert_non_null(entry);
    assert_string_equal(json_object_get_string_member(entry, "path"),
                        "/" KD_EMU_TENANT_ID "/oauth2/v2.0/token");
    assert_int_equal(json_object_get_int_member(entry, "status"), 200);
    assert_non_null(json_object_get_string_member(entry, "clientRequestId"));
    json_node_unref(log);
    client_close(&c);
}

static void
test_wrong_secret(void **state)
{
    Client c;
    Result r;
    const KdGraphErrorInfo *info;

    /* Characters that must be form-encoded reach the emulator intact (and still don't match). */
    client_open_secret(&c, "not the secret+&=%~ \xc3\xa9");
    app_token(&c, FALSE, &r);
    info = assert_graph_error(r.error, KD_GRAPH_ERROR_AUTH);
    assert_int_equal(info->http_status, 401);
    assert_string_equal(info->graph_code, "invalid_client");
    assert_int_equal(info->aadsts, 7000215);
    assert_non_null(info->request_id);
    assert_non_null(info->client_request_id);
    assert_false(info->retryable);
    assert_null(strstr(r.error->message, "not the secret"));
    result_clear(&r);
    client_close(&c);
}

/* The assertion itself: header, claims, and a signature the certificate verifies. */
static void
check_assertion(KdGraphAuth *auth, const char *cert_path, const char *alg)
{
    GError *error = NULL;
    gint64 now = g_get_real_time() / G_USEC_PER_SEC;
    KdSecret *assertion = kd_graph_auth_build_assertion(auth, now, &error);
    char **parts;
    guchar *header, *claims, *sig;
    gsize header_len, claims_len, sig_len;
    JsonNode *h, *c;
    BIO *bio;
    X509 *cert;
    EVP_MD_CTX *md;
    EVP_PKEY_CTX *pctx = NULL;
    char *signed_part, *aud;

    assert_non_null(assertion);
    parts = g_strsplit(kd_secret_get_string(assertion), ".", -1);
    assert_int_equal(g_strv_length(parts), 3);
    for (int i = 0; i < 3; i++) {
        assert_null(strchr(parts[i], '='));
        assert_null(strchr(parts[i], '+'));
        assert_null(strchr(parts[i], '/'));
        for (char *p = parts[i]; *p != '\0'; p++)
            if (*p == '-')
                *p = '+';
            else if (*p == '_')
                *p = '/';
        while (strlen(parts[i]) % 4 != 0) {
            char *padded = g_strconcat(parts[i], "=", NULL);
            g_free(parts[i]);
            parts[i] = padded;
        }
    }
    header = g_base64_decode(parts[0], &header_len);
    claims = g_base64_decode(parts[1], &claims_len);
    sig = g_base64_decode(parts[2], &sig_len);
    h = json_from_string((const char *)header, NULL);
    c = json_from_string((const char *)claims, NULL);
    assert_non_null(h);
    assert_non_null(c);
    assert_string_equal(json_object_get_string_member(json_node_get_object(h), "alg"), alg);
    assert_string_equal(json_object_get_string_member(json_node_get_object(h), "typ"), "JWT");
    assert_true(json_object_has_member(json_node_get_object(h),
                                       strcmp(alg, "RS256") == 0 ? "x5t" : "x5t#S256"));
    aud = g_strconcat(emu->url, "/" KD_EMU_TENANT_ID "/oauth2/v2.0/token", NULL);
    assert_string_equal(json_object_get_string_member(json_node_get_object(c), "aud"), aud);
    assert_string_equal(json_object_get_string_member(json_node_get_object(c), "iss"),
                        KD_EMU_KIOSK_APP);
    assert_string_equal(json_object_get_string_member(json_node_get_object(c), "sub"),
                        KD_EMU_KIOSK_APP);
    assert_int_equal(strlen(json_object_get_string_member(json_node_get_object(c), "jti")), 36);
    assert_int_equal(json_object_get_int_member(json_node_get_object(c), "nbf"), now);
    assert_int_equal(json_object_get_int_member(json_node_get_object(c), "exp"), now + 600);

    bio = BIO_new_file(cert_path, "r");
    cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    md = EVP_MD_CTX_new();
    assert_true(EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, X509_get0_pubkey(cert)) == 1);
    if (strcmp(alg, "PS256") == 0) {
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32);
    }
    if (strcmp(alg, "ES256") == 0) {
        assert_int_equal(sig_len, 64); /* R || S, not DER */
    } else {
        signed_part = g_strndup(kd_secret_get_string(assertion),
                                (gsize)(strrchr(kd_secret_get_string(assertion), '.') -
                                        kd_secret_get_string(assertion)));
        assert_true(EVP_DigestVerify(md, sig, sig_len, (const guchar *)signed_part,
                                     strlen(signed_part)) == 1);
        g_free(signed_part);
    }
    EVP_MD_CTX_free(md);
    X509_free(cert);
    BIO_free(bio);
    json_node_unref(h);
    json_node_unref(c);
    g_free(header);
    g_free(claims);
    g_free(sig);
    g_free(aud);
    g_strfreev(parts);
    kd_secret_unref(assertion);
}

static void
certificate_success(const char *cert, const char *key, int alg, const char *alg_name)
{
    Client c;
    Result r;

    client_open(&c, KD_EMU_KIOSK_APP, NULL, cert, key, alg);
    check_assertion(c.auth, cert, alg_name);
    app_token(&c, FALSE, &r);
    assert_token(&r);
    assert_app_token_works(&c, r.token);
    result_clear(&r);
    /* A second request needs a new jti: the emulator refuses a replayed one. */
    app_token(&c, TRUE, &r);
    assert_token(&r);
    result_clear(&r);
    client_close(&c);
}

static void
test_certificate_ps256(void **state)
{
    certificate_success(rsa_cert, rsa_key, KD_GRAPH_ASSERTION_PS256, "PS256");
}

static void
test_certificate_rs256(void **state)
{
    certificate_success(rsa_cert, rsa_key, KD_GRAPH_ASSERTION_RS256, "RS256");
}

static void
test_certificate_es256(void **state)
{
    certificate_success(ec_cert, ec_key, KD_GRAPH_ASSERTION_PS256, "ES256");
}

static void
test_certificate_not_registered(void **state)
{
    Client c;
    Result r;
    const KdGraphErrorInfo *info;

    client_open(&c, KD_EMU_KIOSK_APP, NULL, stranger_cert, stranger_key, KD_GRAPH_ASSERTION_PS256);
    app_token(&c, FALSE, &r);
    info = assert_graph_error(r.error, KD_GRAPH_ERROR_AUTH);
    assert_int_equal(info->http_status, 401);
    assert_string_equal(info->graph_code, "invalid_client");
    assert_int_equal(info->aadsts, 700027);
    result_clear(&r);
    client_close(&c);
}

static void
test_token_cached_and_forced(void **state)
{
    Client c;
    Result r1, r2, r3;
    gint64 since;

    client_open_secret(&c, KD_EMU_KIOSK_SECRET);
    since = last_seq();
    app_token(&c, FALSE, &r1);
    assert_token(&r1);
    assert_int_equal(count_requests(since, "/oauth2/v2.0/token"), 1);

    since = last_seq();
    app_token(&c, FALSE, &r2);
    assert_token(&r2);
    assert_string_equal(kd_secret_get_string(r1.token), kd_secret_get_string(r2.token));
    assert_int_equal(count_requests(since, "/oauth2/v2.0/token"), 0);

    since = last_seq();
    app_token(&c, TRUE, &r3);
    assert_token(&r3);
    assert_string_not_equal(kd_secret_get_string(r1.token), kd_secret_get_string(r3.token));
    assert_int_equal(count_requests(since, "/oauth2/v2.0/token"), 1);
    /* The dropped token was not wiped under its holder's feet. */
    assert_true(kd_secret_get_length(r1.token) > 100);
    result_clear(&r1);
    result_clear(&r2);
    result_clear(&r3);
    client_close(&c);
}

static void
test_concurrent_callers_share_one_request(void **state)
{
    Client c;
    Result r[6];
    gint64 since;
    GCancellable *cancel = g_cancellable_new();

    client_open_secret(&c, KD_EMU_KIOSK_SECRET);
    emu_control("POST", "/_emulator/faults",
                "{\"kind\": \"latency\", \"ms\": 300, \"path\": \"/oauth2/v2.0/token$\"}", 0);
    since = last_seq();
    for (gsize i = 0; i < G_N_ELEMENTS(r); i++) {
        memset(&r[i], 0, sizeof(r[i]));
        r[i].auth = c.auth;
        /* The last caller gives up; the others still get the token. */
        kd_graph_auth_app_token_async(c.auth, i == 1, i == 5 ? cancel : NULL, on_app_token, &r[i]);
    }
    g_cancellable_cancel(cancel);
    for (gsize i = 0; i < G_N_ELEMENTS(r); i++)
        wait_for(&r[i], 60000);
    assert_true(g_error_matches(r[5].error, G_IO_ERROR, G_IO_ERROR_CANCELLED));
    assert_true(r[5].done_us < r[0].done_us);
    for (gsize i = 0; i < 5; i++) {
        assert_token(&r[i]);
        assert_string_equal(kd_secret_get_string(r[0].token), kd_secret_get_string(r[i].token));
    }
    assert_int_equal(count_requests(since, "/oauth2/v2.0/token"), 1);
    for (gsize i = 0; i < G_N_ELEMENTS(r); i++)
        result_clear(&r[i]);
    g_object_unref(cancel);
    client_close(&c);
}

static void
test_short_lifetime_refreshed_ahead(void **state)
{
    Client c;
    Result r1, r2;
    gint64 since;

    emu_control("PATCH", "/_emulator/settings", "{\"accessTokenLifetimeSeconds\": 200}", 200);
    client_open_secret(&c, KD_EMU_KIOSK_SECRET);
    since = last_seq();
    app_token(&c, FALSE, &r1);
    assert_token(&r1);
    app_token(&c, FALSE, &r2);
    assert_token(&r2);
    /* 200 s left is under the 5 minutes kept in hand: each call fetched a new token. */
    assert_int_equal(count_requests(since, "/oauth2/v2.0/token"), 2);
    assert_string_not_equal(kd_secret_get_string(r1.token), kd_secret_get_string(r2.token));
    result_clear(&r1);
    result_clear(&r2);
    client_close(&c);
}

static void
test_token_endpoint_faults(void **state)
{
    Client c;
    Result r;
    const KdGraphErrorInfo *info;
    gint64 since;

    client_open_secret(&c, KD_EMU_KIOSK_SECRET);

    /* Busy: the client layer retries, this layer says so and passes Retry-After on. */
    emu_control("POST", "/_emulator/faults",
                "{\"kind\": \"status\", \"status\": 503, \"retryAfter\": 7, \"count\": 1, "
                "\"path\": \"/oauth2/v2.0/token$\"}",
                0);
    app_token(&c, FALSE, &r);
    info = assert_graph_error(r.error, KD_GRAPH_ERROR_UNAVAILABLE);
    assert_true(info->retryable);
    assert_int_equal(info->retry_after_s, 7);
    assert_int_equal(info->http_status, 503);
    result_clear(&r);

    emu_control("POST", "/_emulator/faults",
                "{\"kind\": \"status\", \"status\": 429, \"count\": 1, "
                "\"path\": \"/oauth2/v2.0/token$\"}",
                0);
    app_token(&c, FALSE, &r);
    info = assert_graph_error(r.error, KD_GRAPH_ERROR_THROTTLED);
    assert_true(info->retryable);
    result_clear(&r);

    /* A connection reset: a token request is safe to send again, once. */
    emu_control("POST", "/_emulator/faults",
                "{\"kind\": \"reset\", \"count\": 1, \"path\": \"/oauth2/v2.0/token$\"}", 0);
    since = last_seq();
    app_token(&c, FALSE, &r);
    assert_token(&r);
    assert_int_equal(count_requests(since, "/oauth2/v2.0/token"), 2);
    result_clear(&r);

    /* Again and again: after one more try the failure is the caller's. */
    emu_control("POST", "/_emulator/faults",
                "{\"kind\": \"reset\", \"path\": \"/oauth2/v2.0/token$\"}", 0);
    app_token(&c, TRUE, &r);
    info = assert_graph_error(r.error, KD_GRAPH_ERROR_NETWORK);
    assert_true(info->retryable);
    result_clear(&r);
    emu_control("DELETE", "/_emulator/faults", NULL, 0);

    /* Half a body and some HTML. */
    emu_control("POST", "/_emulator/faults",
                "{\"kind\": \"malformed\", \"count\": 1, \"path\": \"/oauth2/v2.0/token$\"}", 0);
    app_token(&c, TRUE, &r);
    assert_graph_error(r.error, KD_GRAPH_ERROR_BAD_RESPONSE);
    result_clear(&r);

    /* Members nobody documented are ignored. */
    emu_control("POST", "/_emulator/faults",
                "{\"kind\": \"extra-fields\", \"count\": 1, \"path\": \"/oauth2/v2.0/token$\"}", 0);
    app_token(&c, TRUE, &r);
    assert_token(&r);
    result_clear(&r);
    client_close(&c);
}

/* --- device code --------------------------------------------------------------------------- */

typedef enum { PROMPT_APPROVE, PROMPT_DECLINE, PROMPT_NOTHING, PROMPT_CANCEL } PromptAction;

typedef struct {
    PromptAction action;
    const char *user;
    GCancellable *cancellable;
    guint prompts;
    char *user_code;
    char *verification_uri;
    char *message;
    guint expires_in_s;
    guint interval_s;
    gint64 cancelled_us;
} Prompt;

static gboolean
cancel_now(gpointer data)
{
    Prompt *p = data;

    p->cancelled_us = g_get_monotonic_time();
    g_cancellable_cancel(p->cancellable);
    return G_SOURCE_REMOVE;
}

static void
on_prompt(const KdDeviceCodePrompt *prompt, gpointer data)
{
    Prompt *p = data;
    char *body;

    p->prompts++;
    p->user_code = g_strdup(prompt->user_code);
    p->verification_uri = g_strdup(prompt->verification_uri);
    p->message = g_strdup(prompt->message);
    p->expires_in_s = prompt->expires_in_s;
    p->interval_s = prompt->interval_s;
    switch (p->action) {
    case PROMPT_APPROVE: /* the person signs in on their phone right away */
        body = g_strdup_printf("{\"user_code\": \"%s\", \"user\": \"%s\"}", prompt->user_code,
                               p->user);
        emu_control("POST", "/_emulator/devicecode/approve", body, 200);
        g_free(body);
        break;
    case PROMPT_DECLINE:
        body = g_strdup_printf("{\"user_code\": \"%s\"}", prompt->user_code);
        emu_control("POST", "/_emulator/devicecode/decline", body, 200);
        g_free(body);
        break;
    case PROMPT_CANCEL: /* after the first poll has gone out */
        g_timeout_add(1500, cancel_now, p);
        break;
    case PROMPT_NOTHING:
        break;
    }
}

static void
prompt_clear(Prompt *p)
{
    g_free(p->user_code);
    g_free(p->verification_uri);
    g_free(p->message);
}

static void
device_sign_in(Client *c, const char *scopes, Prompt *p, Result *r, guint timeout_ms)
{
    memset(r, 0, sizeof(*r));
    r->auth = c->auth;
    kd_graph_auth_device_sign_in_async(c->auth, scopes, on_prompt, p, p->cancellable, on_signed_in,
                                       r);
    wait_for(r, timeout_ms);
}

static void
client_open_operator(Client *c)
{
    client_open(c, KD_EMU_DELEGATED_APP, NULL, NULL, NULL, KD_GRAPH_ASSERTION_PS256);
}

static void
test_device_code_sign_in(void **state)
{
    Client c;
    Prompt p = {.action = PROMPT_APPROVE, .user = ADMIN_UPN};
    Result r, t;
    JsonObject *who;
    gint64 since = last_seq();

    client_open_operator(&c);
    device_sign_in(&c, "User.Read.All UserAuthenticationMethod.ReadWrite.All", &p, &r, 60000);
    if (r.error != NULL)
        fail_msg("sign-in failed: %s", r.error->message);
    assert_int_equal(p.prompts, 1);
    assert_int_equal(strlen(p.user_code), 9);
    assert_string_equal(p.verification_uri, "https://microsoft.com/devicelogin");
    assert_non_null(strstr(p.message, p.user_code));
    assert_int_equal(p.interval_s, 1);
    assert_int_equal(p.expires_in_s, 900);

    assert_non_null(r.signed_in);
    assert_string_equal(kd_graph_session_get_object_id(r.signed_in), KD_EMU_USER_ADMIN);
    assert_string_equal(kd_graph_session_get_upn(r.signed_in), ADMIN_UPN);
    assert_string_equal(kd_graph_session_get_name(r.signed_in), "Ines Admin");

    /* The delegated token works, for that person and those scopes. */
    session_token(&c, r.signed_in, FALSE, &t);
    assert_token(&t);
    who = check_token(&c, t.token);
    assert_string_equal(json_object_get_string_member(who, "kind"), "delegated");
    assert_string_equal(json_object_get_string_member(who, "userId"), KD_EMU_USER_ADMIN);
    assert_string_equal(json_object_get_string_member(who, "appId"), KD_EMU_DELEGATED_APP);
    json_object_unref(who);
    result_clear(&t);

    /* What went out: the devicecode request, polls, discovery and keys once. */
    assert_int_equal(count_requests(since, "/oauth2/v2.0/devicecode"), 1);
    assert_true(count_requests(since, "/oauth2/v2.0/token") >= 1);
    assert_int_equal(count_requests(since, "/openid-configuration"), 1);
    assert_int_equal(count_requests(since, "/discovery/v2.0/keys"), 1);
    result_clear(&r);

    /* A second sign-in on the same auth reuses the keys it has. */
    since = last_seq();
    prompt_clear(&p);
    memset(&p, 0, sizeof(p));
    p.action = PROMPT_APPROVE;
    p.user = ADA_UPN;
    device_sign_in(&c, NULL, &p, &r, 60000);
    assert_null(r.error);
    assert_string_equal(kd_graph_session_get_object_id(r.signed_in), KD_EMU_USER_ADA);
    assert_int_equal(count_requests(since, "/openid-configuration"), 0);
    assert_int_equal(count_requests(since, "/discovery/v2.0/keys"), 0);
    result_clear(&r);
    prompt_clear(&p);
    client_close(&c);
}

static void
test_device_code_declined(void **state)
{
    Client c;
    Prompt p = {.action = PROMPT_DECLINE};
    Result r;
    const KdGraphErrorInfo *info;

    client_open_operator(&c);
    device_sign_in(&c, "User.Read.All", &p, &r, 60000);
    info = assert_graph_error(r.error, KD_GRAPH_ERROR_DECLINED);
    assert_string_equal(info->graph_code, "authorization_declined");
    assert_null(r.signed_in);
    result_clear(&r);
    prompt_clear(&p);
    client_close(&c);
}

static void
test_device_code_expired(void **state)
{
    Client c;
    Prompt p = {.action = PROMPT_NOTHING};
    Result r;
    gint64 start = g_get_monotonic_time();

    emu_control("PATCH", "/_emulator/settings", "{\"deviceCodeExpiresIn\": 3}", 200);
    client_open_operator(&c);
    device_sign_in(&c, "User.Read.All", &p, &r, 60000);
    assert_graph_error(r.error, KD_GRAPH_ERROR_EXPIRED);
    assert_int_equal(p.expires_in_s, 3);
    assert_true(r.done_us - start < 15 * G_USEC_PER_SEC);
    result_clear(&r);
    prompt_clear(&p);
    client_close(&c);
}

static void
test_device_code_cancelled(void **state)
{
    Client c;
    Prompt p = {.action = PROMPT_CANCEL};
    Result r;
    gint64 since;
    gboolean never = FALSE;

    p.cancellable = g_cancellable_new();
    client_open_operator(&c);
    device_sign_in(&c, "User.Read.All", &p, &r, 60000);
    assert_true(g_error_matches(r.error, G_IO_ERROR, G_IO_ERROR_CANCELLED));
    assert_true(p.cancelled_us > 0);
    /* Promptly, even with a poll in flight or a timer pending. */
    assert_true(r.done_us - p.cancelled_us < 500 * 1000);
    /* And nothing polls afterwards. */
    since = last_seq();
    kd_test_run_until(&never, 2500);
    assert_int_equal(count_requests(since, "/oauth2/v2.0/token"), 0);
    result_clear(&r);
    prompt_clear(&p);
    g_object_unref(p.cancellable);
    client_close(&c);
}

static void
test_device_code_slow_down(void **state)
{
    Client c;
    Prompt p = {.action = PROMPT_NOTHING};
    Result r;
    gint64 since = last_seq();
    JsonNode *log;
    JsonArray *a;
    GArray *polls = g_array_new(FALSE, FALSE, sizeof(double));
    guint pending = 0;

    /* The second poll hears slow_down: the next one waits interval + 5 s. */
    emu_control("POST", "/_emulator/faults",
                "{\"kind\": \"status\", \"status\": 400, \"code\": \"slow_down\", \"after\": 1, "
                "\"count\": 1, \"path\": \"/oauth2/v2.0/token$\"}",
                0);
    emu_control("PATCH", "/_emulator/settings", "{\"deviceCodeExpiresIn\": 11}", 200);
    client_open_operator(&c);
    device_sign_in(&c, "User.Read.All", &p, &r, 60000);
    assert_graph_error(r.error, KD_GRAPH_ERROR_EXPIRED);
    log = kd_emulator_requests(emu, since);
    a = json_node_get_array(log);
    for (guint i = 0; i < json_array_get_length(a); i++) {
        JsonObject *e = json_array_get_object_element(a, i);
        if (g_str_has_suffix(json_object_get_string_member(e, "path"), "/oauth2/v2.0/token")) {
            double ts = json_object_get_double_member(e, "ts");
            g_array_append_val(polls, ts);
            pending++;
        }
    }
    /* 1 s, slow_down at ~2 s, then 6 s later (~8 s), then the code expires at 11 s. Whether
     * one last poll lands right at the expiry (and hears expired_token) depends on timer
     * rounding on a busy machine; the spacing after slow_down is what this test is about. */
    assert_in_range(pending, 3, 4);
    assert_true(g_array_index(polls, double, 1) - g_array_index(polls, double, 0) >= 0.9);
    assert_true(g_array_index(polls, double, 2) - g_array_index(polls, double, 1) >= 5.9);
    g_array_unref(polls);
    json_node_unref(log);
    result_clear(&r);
    prompt_clear(&p);
    client_close(&c);
}

static void
test_device_code_metadata_faults(void **state)
{
    Client c;
    Prompt p = {.action = PROMPT_APPROVE, .user = ADMIN_UPN};
    Result r;

    /* The tokens arrive, but the document that says who signs them is garbage: no session. */
    emu_control("POST", "/_emulator/faults",
                "{\"kind\": \"malformed\", \"count\": 1, \"path\": \"openid-configuration$\"}", 0);
    client_open_operator(&c);
    device_sign_in(&c, "User.Read.All", &p, &r, 60000);
    assert_graph_error(r.error, KD_GRAPH_ERROR_BAD_RESPONSE);
    assert_null(r.signed_in);
    result_clear(&r);
    prompt_clear(&p);

    /* The key set is busy. */
    memset(&p, 0, sizeof(p));
    p.action = PROMPT_APPROVE;
    p.user = ADMIN_UPN;
    emu_control("POST", "/_emulator/faults",
                "{\"kind\": \"status\", \"status\": 503, \"count\": 1, \"path\": "
                "\"/discovery/v2.0/keys$\"}",
                0);
    device_sign_in(&c, "User.Read.All", &p, &r, 60000);
    assert_graph_error(r.error, KD_GRAPH_ERROR_UNAVAILABLE);
    result_clear(&r);
    prompt_clear(&p);

    /* Extra members everywhere are ignored, and a lost connection is tried once more. */
    memset(&p, 0, sizeof(p));
    p.action = PROMPT_APPROVE;
    p.user = ADMIN_UPN;
    emu_control("DELETE", "/_emulator/faults", NULL, 0);
    emu_control("POST", "/_emulator/faults",
                "{\"kind\": \"reset\", \"count\": 1, \"path\": \"/discovery/v2.0/keys$\"}", 0);
    emu_control("POST", "/_emulator/faults", "{\"kind\": \"extra-fields\"}", 0);
    device_sign_in(&c, "User.Read.All", &p, &r, 60000);
    if (r.error != NULL)
        fail_msg("sign-in failed: %s", r.error->message);
    assert_string_equal(kd_graph_session_get_object_id(r.signed_in), KD_EMU_USER_ADMIN);
    result_clear(&r);
    prompt_clear(&p);
    client_close(&c);
}

static void
test_refresh(void **state)
{
    Client c;
    Prompt p = {.action = PROMPT_APPROVE, .user = ADMIN_UPN};
    Result r, t1, t2, t3, t4;
    gint64 since;
    JsonObject *who;

    client_open_operator(&c);
    device_sign_in(&c, "User.Read.All", &p, &r, 60000);
    assert_null(r.error);

    since = last_seq();
    session_token(&c, r.signed_in, FALSE, &t1); /* fresh: no request */
    assert_token(&t1);
    assert_int_equal(count_requests(since, "/oauth2/v2.0/token"), 0);

    session_token(&c, r.signed_in, TRUE, &t2); /* forced: refresh_token grant */
    assert_token(&t2);
    assert_string_not_equal(kd_secret_get_string(t1.token), kd_secret_get_string(t2.token));
    assert_int_equal(count_requests(since, "/oauth2/v2.0/token"), 1);

    /* The refresh token rotated: the emulator refuses the old one, so this works only if the
     * session kept the new one. */
    session_token(&c, r.signed_in, TRUE, &t3);
    assert_token(&t3);
    who = check_token(&c, t3.token);
    assert_string_equal(json_object_get_string_member(who, "userId"), KD_EMU_USER_ADMIN);
    json_object_unref(who);

    /* Short-lived access tokens are refreshed ahead of use. */
    emu_control("PATCH", "/_emulator/settings", "{\"accessTokenLifetimeSeconds\": 200}", 200);
    session_token(&c, r.signed_in, TRUE, &t4);
    assert_token(&t4);
    result_clear(&t4);
    since = last_seq();
    session_token(&c, r.signed_in, FALSE, &t4);
    assert_token(&t4);
    assert_int_equal(count_requests(since, "/oauth2/v2.0/token"), 1);
    result_clear(&t4);

    /* Revoked sessions: the refresh fails with invalid_grant, and the session says so. */
    emu_control("POST", "/_emulator/tokens/revoke", "{\"user\": \"" KD_EMU_USER_ADMIN "\"}", 204);
    session_token(&c, r.signed_in, TRUE, &t4);
    assert_graph_error(t4.error, KD_GRAPH_ERROR_AUTH);
    assert_string_equal(kd_graph_error_get_info(t4.error)->graph_code, "invalid_grant");
    assert_int_equal(kd_graph_error_get_info(t4.error)->aadsts, 50173);
    result_clear(&t4);
    /* The dead refresh token is gone: sign in again, no request. */
    since = last_seq();
    session_token(&c, r.signed_in, TRUE, &t4);
    assert_graph_error(t4.error, KD_GRAPH_ERROR_AUTH);
    assert_string_equal(kd_graph_error_get_info(t4.error)->graph_code, "interaction_required");
    assert_int_equal(count_requests(since, "/oauth2/v2.0/token"), 0);
    result_clear(&t4);

    result_clear(&t1);
    result_clear(&t2);
    result_clear(&t3);
    result_clear(&r);
    prompt_clear(&p);
    client_close(&c);
}

static void
test_session_unref_wipes(void **state)
{
    Client c;
    Prompt p = {.action = PROMPT_APPROVE, .user = ADMIN_UPN};
    Result r, t;

    client_open_operator(&c);
    device_sign_in(&c, "User.Read.All", &p, &r, 60000);
    assert_null(r.error);
    session_token(&c, r.signed_in, FALSE, &t);
    assert_token(&t);
    g_clear_pointer(&r.signed_in, kd_graph_session_unref);
    assert_int_equal(kd_secret_get_length(t.token), 0);
    assert_int_equal(kd_secret_get_data(t.token)[0], 0);
    result_clear(&t);
    result_clear(&r);
    prompt_clear(&p);
    client_close(&c);
}

static void
test_free_with_operations_in_flight(void **state)
{
    Client c, op;
    Result app, dev;
    Prompt p = {.action = PROMPT_NOTHING};

    client_open_secret(&c, KD_EMU_KIOSK_SECRET);
    client_open_operator(&op);
    emu_control("POST", "/_emulator/faults",
                "{\"kind\": \"latency\", \"ms\": 2000, \"path\": \"/oauth2/v2.0/token$\"}", 0);
    memset(&app, 0, sizeof(app));
    app.auth = c.auth;
    kd_graph_auth_app_token_async(c.auth, FALSE, NULL, on_app_token, &app);
    memset(&dev, 0, sizeof(dev));
    dev.auth = op.auth;
    kd_graph_auth_device_sign_in_async(op.auth, "User.Read.All", on_prompt, &p, NULL, on_signed_in,
                                       &dev);
    {
        gboolean never = FALSE;
        kd_test_run_until(&never, 1500); /* the prompt is up, a poll is out */
    }
    assert_int_equal(p.prompts, 1);
    kd_graph_auth_free(&c.auth);
    kd_graph_auth_free(&op.auth);
    wait_for(&app, 5000);
    wait_for(&dev, 5000);
    assert_true(g_error_matches(app.error, G_IO_ERROR, G_IO_ERROR_CANCELLED));
    assert_true(g_error_matches(dev.error, G_IO_ERROR, G_IO_ERROR_CANCELLED));
    result_clear(&app);
    result_clear(&dev);
    prompt_clear(&p);
    client_close(&c);
    client_close(&op);
}

/* --- nothing secret anywhere ----------------------------------------------------------------- */

static void
assert_absent(const char *haystack, const char *needle, const char *where)
{
    if (needle != NULL && *needle != '\0' && strstr(haystack, needle) != NULL)
        fail_msg("%s holds a secret (%.12s…)", where, needle);
}

static void
test_nothing_secret_in_logs(void **state)
{
    JsonNode *log = kd_emulator_requests(emu, -1);
    char *requests = json_to_string(log, FALSE);
    const char *const markers[] = {
        KD_EMU_KIOSK_SECRET,
        "not the secret",
        "eyJ",          /* any JWT: access or id token, client assertion */
        "DAQABIQEAAAD", /* the emulator's device codes */
        "1.AQEA",       /* and refresh tokens */
    };

    /* This runs last: every test above has logged by now. */
    assert_non_null(strstr(log_text->str, "app token for"));
    assert_non_null(strstr(log_text->str, "device code: signed in as"));
    for (gsize i = 0; i < G_N_ELEMENTS(markers); i++) {
        assert_absent(log_text->str, markers[i], "keydesk's log");
        assert_absent(requests, markers[i], "the emulator's request log");
    }
    assert_true(seen_tokens->len > 10);
    for (guint i = 0; i < seen_tokens->len; i++) {
        assert_absent(log_text->str, seen_tokens->pdata[i], "keydesk's log");
        assert_absent(requests, seen_tokens->pdata[i], "the emulator's request log");
    }
    g_free(requests);
    json_node_unref(log);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resource_for_graph_url),
        cmocka_unit_test(test_reply_parser),
        cmocka_unit_test(test_id_token_validation),
        cmocka_unit_test_teardown(test_config_errors, reset_emulator),
        cmocka_unit_test_teardown(test_secret, reset_emulator),
        cmocka_unit_test_teardown(test_wrong_secret, reset_emulator),
        cmocka_unit_test_teardown(test_certificate_ps256, reset_emulator),
        cmocka_unit_test_teardown(test_certificate_rs256, reset_emulator),
        cmocka_unit_test_teardown(test_certificate_es256, reset_emulator),
        cmocka_unit_test_teardown(test_certificate_not_registered, reset_emulator),
        cmocka_unit_test_teardown(test_token_cached_and_forced, reset_emulator),
        cmocka_unit_test_teardown(test_concurrent_callers_share_one_request, reset_emulator),
        cmocka_unit_test_teardown(test_short_lifetime_refreshed_ahead, reset_emulator),
        cmocka_unit_test_teardown(test_token_endpoint_faults, reset_emulator),
        cmocka_unit_test_teardown(test_device_code_sign_in, reset_emulator),
        cmocka_unit_test_teardown(test_device_code_declined, reset_emulator),
        cmocka_unit_test_teardown(test_device_code_expired, reset_emulator),
        cmocka_unit_test_teardown(test_device_code_cancelled, reset_emulator),
        cmocka_unit_test_teardown(test_device_code_slow_down, reset_emulator),
        cmocka_unit_test_teardown(test_device_code_metadata_faults, reset_emulator),
        cmocka_unit_test_teardown(test_refresh, reset_emulator),
        cmocka_unit_test_teardown(test_session_unref_wipes, reset_emulator),
        cmocka_unit_test_teardown(test_free_with_operations_in_flight, reset_emulator),
        cmocka_unit_test(test_nothing_secret_in_logs),
    };
    int failed;

    log_text = g_string_new(NULL);
    seen_tokens = g_ptr_array_new_with_free_func(g_free);
    g_log_set_writer_func(capture_log, NULL, NULL);
    failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
    for (guint i = 0; i < seen_tokens->len; i++)
        explicit_bzero(seen_tokens->pdata[i], strlen(seen_tokens->pdata[i]));
    g_ptr_array_unref(seen_tokens);
    g_string_free(log_text, TRUE);
    return failed;
}
