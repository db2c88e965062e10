/* test-config: every kind of kd-config problem, checked against the exact sentence a person sees.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "core/kd-config.h"

#define GUID_ALLOWED "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, hexadecimal"
#define CLIENT_ALLOWED \
    "allowed: the app registration's Application (client) ID, a GUID (" GUID_ALLOWED ")"
#define TENANT_ALLOWED                                                        \
    "allowed: the tenant's GUID (" GUID_ALLOWED ") or a domain name such as " \
    "contoso.onmicrosoft.com"
#define GROUP_ALLOWED "allowed: the group's Object ID, a GUID (" GUID_ALLOWED ")"
#define HOST_ALLOWED  "allowed: https://host[:port] or host[:port]"
#define PROXY_ALLOWED "allowed: http://, https://, socks5:// or socks5h:// followed by host[:port]"
#define SECRET_ALLOWED \
    "allowed: an existing regular file that only its owner can read (chmod 600 or 400)"
#define FLOWS_ALLOWED  "allowed: security-key, authenticator and/or lost-device, separated by ';'"
#define SYNTAX_ALLOWED "allowed: '[group]' lines, 'key = value' lines and '# comment' lines"

/* The smallest file that passes: every test that wants one problem starts from here. */
#define BASE                                \
    "[kiosk]\n"                             \
    "name = Front desk\n"                   \
    "[tenant]\n"                            \
    "tenant-id = contoso.onmicrosoft.com\n" \
    "client-id = 11111111-2222-3333-4444-555555555555\n"

typedef struct {
    char *dir;  /* a fresh directory per test */
    char *conf; /* $D/keydesk.conf */
    GPtrArray *problems;
} Fixture;

static void
rm_rf(const char *path)
{
    struct stat st;

    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        GDir *d = g_dir_open(path, 0, NULL);
        const char *name;

        while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
            char *child = g_build_filename(path, name, NULL);
            rm_rf(child);
            g_free(child);
        }
        if (d != NULL)
            g_dir_close(d);
        g_rmdir(path);
    } else {
        g_unlink(path);
    }
}

static int
setup(void **state)
{
    Fixture *f = g_new0(Fixture, 1);
    GError *error = NULL;

    f->dir = g_dir_make_tmp("kd-config-XXXXXX", &error);
    if (f->dir == NULL) {
        print_error("g_dir_make_tmp: %s\n", error->message);
        g_error_free(error);
        g_free(f);
        return -1;
    }
    f->conf = g_build_filename(f->dir, "keydesk.conf", NULL);
    f->problems = g_ptr_array_new_with_free_func(g_free);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    Fixture *f = *state;

    rm_rf(f->dir);
    g_free(f->dir);
    g_free(f->conf);
    g_ptr_array_unref(f->problems);
    g_free(f);
    return 0;
}

/* Expected messages name the temp dir; "$D" stands for it and "$C" for the config file. */
static char *
subst(const Fixture *f, const char *tmpl)
{
    GString *s = g_string_new(tmpl);

    g_string_replace(s, "$C", f->conf, 0);
    g_string_replace(s, "$D", f->dir, 0);
    return g_string_free(s, FALSE);
}

/* Writes $D/@name (directories on the way are made) with @mode; returns its path. */
static char *
write_file(const Fixture *f, const char *name, const char *content, mode_t mode)
{
    char *path = g_build_filename(f->dir, name, NULL);
    char *parent = g_path_get_dirname(path);
    char *text = subst(f, content);

    assert_int_equal(g_mkdir_with_parents(parent, 0700), 0);
    assert_true(g_file_set_contents(path, text, -1, NULL));
    assert_int_equal(chmod(path, mode), 0);
    g_free(parent);
    g_free(text);
    return path;
}

static KdConfig *
load(Fixture *f, const char *conf_text)
{
    g_free(write_file(f, "keydesk.conf", conf_text, 0644));
    return kd_config_load(f->conf, f->problems);
}

/* Compares the problem list with the NULL-terminated expected lines, showing both on mismatch. */
static void
expect_problems(const Fixture *f, ...)
{
    GPtrArray *want = g_ptr_array_new_with_free_func(g_free);
    gboolean same;
    const char *line;
    va_list ap;

    va_start(ap, f);
    while ((line = va_arg(ap, const char *)) != NULL)
        g_ptr_array_add(want, subst(f, line));
    va_end(ap);

    same = want->len == f->problems->len;
    for (guint i = 0; same && i < want->len; i++)
        same = strcmp(want->pdata[i], f->problems->pdata[i]) == 0;
    if (!same) {
        for (guint i = 0; i < want->len; i++)
            print_error("want[%u]: %s\n", i, (const char *)want->pdata[i]);
        for (guint i = 0; i < f->problems->len; i++)
            print_error(" got[%u]: %s\n", i, (const char *)f->problems->pdata[i]);
    }
    g_ptr_array_unref(want);
    assert_true(same);
}

/* BASE without one of its ids, for tests that give their own (a repeat would be a problem). */
#define BASE_NO_CLIENT "[kiosk]\nname = Front desk\n[tenant]\ntenant-id = contoso.onmicrosoft.com\n"
#define BASE_NO_TENANT \
    "[kiosk]\nname = Front desk\n[tenant]\nclient-id = 11111111-2222-3333-4444-555555555555\n"

/* @extra appended to an otherwise valid @base must give exactly @expected. */
static void
expect_one_in(Fixture *f, const char *base, const char *extra, const char *expected)
{
    char *text = g_strconcat(base, extra, NULL);
    KdConfig *cfg = load(f, text);

    expect_problems(f, expected, NULL);
    assert_null(cfg);
    g_free(text);
    g_ptr_array_set_size(f->problems, 0);
}

static void
expect_one(Fixture *f, const char *extra, const char *expected)
{
    expect_one_in(f, BASE, extra, expected);
}

static void
expect_ok_in(Fixture *f, const char *base, const char *extra, KdConfig **out)
{
    char *text = g_strconcat(base, extra, NULL);
    KdConfig *cfg = load(f, text);

    expect_problems(f, NULL);
    assert_non_null(cfg);
    g_free(text);
    if (out != NULL)
        *out = cfg;
    else
        kd_config_free(&cfg);
}

static void
expect_ok(Fixture *f, const char *extra, KdConfig **out)
{
    expect_ok_in(f, BASE, extra, out);
}

static void
test_valid_full(void **state)
{
    Fixture *f = *state;
    KdConfig *cfg;
    char *key, *ca, *cert, *state_dir;

    cert = write_file(f, "kiosk.pem", "-----BEGIN CERTIFICATE-----\n", 0644);
    key = write_file(f, "secrets/kiosk.key", "not a key, never read\n", 0600);
    ca = write_file(f, "ca.pem", "-----BEGIN CERTIFICATE-----\n", 0644);
    cfg = load(f, "# a complete desk\n"
                  "[kiosk]\n"
                  "name = Front desk\n"
                  "site = Building 2, ground floor\n"
                  "idle-timeout = 120\n"
                  "idle-countdown = 15\n"
                  "touch-only = true\n"
                  "\n"
                  "[tenant]\n"
                  "tenant-id = 0A1B2C3D-4E5F-4061-8293-A4B5C6D7E8F9\n"
                  "client-id = 11111111-2222-3333-4444-555555555555\n"
                  "certificate-file = kiosk.pem\n"
                  "private-key-file = ./secrets/../secrets/kiosk.key\n"
                  "graph-host = graph.example.test:8443\n"
                  "login-host = HTTPS://Login.Example.test/\n"
                  "ca-file = $D/ca.pem\n"
                  "proxy = http://Proxy.example.test:3128/\n"
                  "\n"
                  "[enrolment]\n"
                  "identity-mode = self\n"
                  "flows = security-key;authenticator;\n"
                  "tap-lifetime = 480\n"
                  "\n"
                  "[tracking]\n"
                  "group-id = 22222222-3333-4444-5555-666666666666\n"
                  "extension-attribute = "
                  "extension_0123456789abcdef0123456789abcdef_mfaRegistered\n"
                  "state-dir = state\n");
    expect_problems(f, NULL);
    assert_non_null(cfg);

    state_dir = g_build_filename(f->dir, "state", NULL);
    assert_string_equal(cfg->source, f->conf);
    assert_false(cfg->demo);
    assert_string_equal(cfg->name, "Front desk");
    assert_string_equal(cfg->site, "Building 2, ground floor");
    assert_int_equal(cfg->idle_timeout_s, 120);
    assert_int_equal(cfg->idle_countdown_s, 15);
    assert_true(cfg->touch_only);
    assert_string_equal(cfg->tenant_id, "0a1b2c3d-4e5f-4061-8293-a4b5c6d7e8f9");
    assert_string_equal(cfg->client_id, "11111111-2222-3333-4444-555555555555");
    assert_string_equal(cfg->certificate_file, cert);
    assert_string_equal(cfg->private_key_file, key);
    assert_null(cfg->client_secret_file);
    assert_string_equal(cfg->graph_url, "https://graph.example.test:8443");
    assert_string_equal(cfg->login_url, "https://login.example.test");
    assert_string_equal(cfg->ca_file, ca);
    assert_string_equal(cfg->proxy, "http://proxy.example.test:3128");
    assert_int_equal(cfg->identity_mode, KD_IDENTITY_SELF);
    assert_int_equal(cfg->flows, KD_FLOW_SECURITY_KEY | KD_FLOW_AUTHENTICATOR);
    assert_int_equal(cfg->tap_lifetime_min, 480);
    assert_string_equal(cfg->group_id, "22222222-3333-4444-5555-666666666666");
    assert_string_equal(cfg->extension_attribute,
                        "extension_0123456789abcdef0123456789abcdef_mfaRegistered");
    assert_string_equal(cfg->state_dir, state_dir);

    kd_config_free(&cfg);
    assert_null(cfg);
    g_free(cert);
    g_free(key);
    g_free(ca);
    g_free(state_dir);
}

static void
test_valid_defaults(void **state)
{
    Fixture *f = *state;
    KdConfig *cfg;

    expect_ok(f, "[tenant]\nproxy =\n[kiosk]\nsite =\n", &cfg);
    assert_null(cfg->site);
    assert_int_equal(cfg->idle_timeout_s, 90);
    assert_int_equal(cfg->idle_countdown_s, 10);
    assert_false(cfg->touch_only);
    assert_string_equal(cfg->tenant_id, "contoso.onmicrosoft.com");
    assert_null(cfg->certificate_file);
    assert_null(cfg->private_key_file);
    assert_null(cfg->client_secret_file);
    assert_string_equal(cfg->graph_url, "https://graph.microsoft.com");
    assert_string_equal(cfg->login_url, "https://login.microsoftonline.com");
    assert_null(cfg->ca_file);
    assert_null(cfg->proxy);
    assert_int_equal(cfg->identity_mode, KD_IDENTITY_OPERATOR);
    assert_int_equal(cfg->flows, KD_FLOW_ALL);
    assert_int_equal(cfg->tap_lifetime_min, 60);
    assert_null(cfg->group_id);
    assert_null(cfg->extension_attribute);
    assert_string_equal(cfg->state_dir, "/var/lib/keydesk");
    kd_config_free(&cfg);
}

static void
test_valid_client_secret(void **state)
{
    Fixture *f = *state;
    KdConfig *cfg;
    char *secret = write_file(f, "client.secret", "never read\n", 0400);

    expect_ok(f, "client-secret-file = client.secret\n[enrolment]\nidentity-mode = self\n", &cfg);
    assert_string_equal(cfg->client_secret_file, secret);
    assert_int_equal(cfg->identity_mode, KD_IDENTITY_SELF);
    kd_config_free(&cfg);
    g_free(secret);
}

static void
test_demo(void **state)
{
    KdConfig *cfg = kd_config_new_demo();
    char *state_dir = g_build_filename(g_get_user_state_dir(), "keydesk-demo", NULL);

    (void)state;
    assert_non_null(cfg);
    assert_true(cfg->demo);
    assert_string_equal(cfg->source, "built-in demo configuration");
    assert_string_equal(cfg->name, "keydesk demo desk");
    assert_string_equal(cfg->site, "Practice tenant: nothing here is real");
    assert_string_equal(cfg->tenant_id, "contoso-demo.onmicrosoft.com");
    assert_string_equal(cfg->client_id, KD_CONFIG_DEMO_CLIENT_ID);
    assert_int_equal(strlen(cfg->client_id), 36);
    assert_int_equal(cfg->identity_mode, KD_IDENTITY_OPERATOR);
    assert_int_equal(cfg->flows, KD_FLOW_ALL);
    assert_int_equal(cfg->idle_timeout_s, 90);
    assert_int_equal(cfg->idle_countdown_s, 10);
    assert_int_equal(cfg->tap_lifetime_min, 60);
    assert_false(cfg->touch_only);
    assert_null(cfg->certificate_file);
    assert_null(cfg->private_key_file);
    assert_null(cfg->client_secret_file);
    assert_string_equal(cfg->graph_url, "https://graph.microsoft.com");
    assert_string_equal(cfg->login_url, "https://login.microsoftonline.com");
    assert_string_equal(cfg->state_dir, state_dir);
    kd_config_free(&cfg);
    assert_null(cfg);
    kd_config_free(&cfg);
    kd_config_free(NULL);
    g_free(state_dir);
}

static void
test_missing_file(void **state)
{
    Fixture *f = *state;

    assert_null(kd_config_load(f->conf, f->problems));
    expect_problems(f, "$C: cannot open the configuration file: No such file or directory", NULL);
}

static void
test_config_not_regular(void **state)
{
    Fixture *f = *state;

    assert_int_equal(g_mkdir(f->conf, 0700), 0);
    assert_null(kd_config_load(f->conf, f->problems));
    expect_problems(f, "$C: is a directory, not a regular file; allowed: a configuration file",
                    NULL);
}

static void
test_config_world_writable(void **state)
{
    Fixture *f = *state;

    g_free(write_file(f, "keydesk.conf", BASE "[kiosk]\nidle-timeout = 5\n", 0666));
    assert_null(kd_config_load(f->conf, f->problems));
    expect_problems(f,
                    "$C: writable by anyone (mode 0666); keydesk refuses a configuration that "
                    "anyone can change. Fix: chmod o-w $C",
                    "$C: [kiosk] idle-timeout = '5': out of range; allowed: 10 to 3600 seconds",
                    NULL);
}

static void
test_syntax_error(void **state)
{
    Fixture *f = *state;

    /* Each broken line is named, and the keys around them are still checked. */
    assert_null(load(f, "name = before any group\n"
                        "[kiosk]\n"
                        "name = Front desk\n"
                        "idle-timeout 30\n"
                        "[tenant\n"
                        "tenant-id = contoso.onmicrosoft.com\n"
                        "client-id = 1234\n"));
    expect_problems(
        f, "$C: line 1: syntax error: Key file does not start with a group; " SYNTAX_ALLOWED,
        "$C: line 4: syntax error: Key file contains line “idle-timeout 30” which is not a "
        "key-value pair, group, or comment; " SYNTAX_ALLOWED,
        "$C: line 5: syntax error: Key file contains line “[tenant” which is not a key-value "
        "pair, group, or comment; " SYNTAX_ALLOWED,
        "$C: [kiosk] tenant-id = 'contoso.onmicrosoft.com': unknown key (it belongs in [tenant]); "
        "allowed: name, site, idle-timeout, idle-countdown, touch-only",
        "$C: [kiosk] client-id = '1234': unknown key (it belongs in [tenant]); allowed: name, "
        "site, idle-timeout, idle-countdown, touch-only",
        "$C: [tenant] tenant-id: required, but not set; " TENANT_ALLOWED,
        "$C: [tenant] client-id: required, but not set; " CLIENT_ALLOWED, NULL);
}

static void
test_syntax_error_data(void **state)
{
    Fixture *f = *state;
    const char data[] = "[kiosk]\nname = a\0b\n";

    assert_null(kd_config_load_data(data, sizeof(data) - 1, "inline", f->dir, f->problems));
    expect_problems(f, "inline: line 2: contains a NUL byte; allowed: text", NULL);
}

static void
test_unknown_group(void **state)
{
    Fixture *f = *state;

    assert_null(load(f, BASE "[tennant]\nproxy = http://p:3128\n[extras]\nx = 1\n"));
    expect_problems(f,
                    "$C: [tennant]: unknown group (did you mean [tenant]?); allowed: [kiosk], "
                    "[tenant], [enrolment], [tracking]",
                    "$C: [extras]: unknown group; allowed: [kiosk], [tenant], [enrolment], "
                    "[tracking]",
                    NULL);
}

static void
test_unknown_key(void **state)
{
    Fixture *f = *state;

    assert_null(load(f, BASE "[kiosk]\n"
                             "idle-timout = 30\n"
                             "Idle_Countdown = 5\n"
                             "colour = blue\n"
                             "state-dir = /srv\n"
                             "name[de] = Empfang\n"));
    expect_problems(f,
                    "$C: [kiosk] idle-timout = '30': unknown key (did you mean 'idle-timeout'?); "
                    "allowed: name, site, idle-timeout, idle-countdown, touch-only",
                    "$C: [kiosk] Idle_Countdown = '5': unknown key (did you mean "
                    "'idle-countdown'?); allowed: name, site, idle-timeout, idle-countdown, "
                    "touch-only",
                    "$C: [kiosk] colour = 'blue': unknown key; allowed: name, site, idle-timeout, "
                    "idle-countdown, touch-only",
                    "$C: [kiosk] state-dir = '/srv': unknown key (it belongs in [tracking]); "
                    "allowed: name, site, idle-timeout, idle-countdown, touch-only",
                    "$C: [kiosk] name[de] = 'Empfang': unknown key; allowed: name, site, "
                    "idle-timeout, idle-countdown, touch-only",
                    NULL);
}

static void
test_duplicate_key(void **state)
{
    Fixture *f = *state;

    /* The repeat hides in a second [kiosk] section, where an admin appending lines puts it. */
    assert_null(
        load(f, BASE "[kiosk]\nidle-timeout = 30\n[tracking]\n[kiosk]\nidle-timeout = 60\n"));
    expect_problems(f,
                    "$C: [kiosk] idle-timeout = '60': set again on line 10 (first set on line 7); "
                    "allowed: each key once",
                    NULL);
}

static void
test_bad_number(void **state)
{
    Fixture *f = *state;

    expect_one(f, "[kiosk]\nidle-timeout = ninety\n",
               "$C: [kiosk] idle-timeout = 'ninety': not a whole number; allowed: 10 to 3600 "
               "seconds");
    expect_one(f, "[kiosk]\nidle-timeout = 90s\n",
               "$C: [kiosk] idle-timeout = '90s': not a whole number; allowed: 10 to 3600 "
               "seconds");
    expect_one(f, "[kiosk]\nidle-timeout = 1.5\n",
               "$C: [kiosk] idle-timeout = '1.5': not a whole number; allowed: 10 to 3600 "
               "seconds");
    expect_one(f, "[enrolment]\ntap-lifetime = 60 # an hour\n",
               "$C: [enrolment] tap-lifetime = '60 # an hour': not a whole number (a '#' comment "
               "must be on a line of its own); allowed: 10 to 43200 minutes");
    expect_one(f, "[kiosk]\nidle-countdown =\n",
               "$C: [kiosk] idle-countdown = '': not a whole number; allowed: 5 to 60 seconds");
}

static void
test_bad_bool(void **state)
{
    Fixture *f = *state;
    KdConfig *cfg;

    expect_one(f, "[kiosk]\ntouch-only = yes\n",
               "$C: [kiosk] touch-only = 'yes': not a boolean; allowed: true or false");
    expect_one(f, "[kiosk]\ntouch-only = 1\n",
               "$C: [kiosk] touch-only = '1': not a boolean; allowed: true or false");
    expect_ok(f, "[kiosk]\ntouch-only = false\n", &cfg);
    assert_false(cfg->touch_only);
    kd_config_free(&cfg);
}

static void
test_out_of_range(void **state)
{
    Fixture *f = *state;
    KdConfig *cfg;

    expect_one(f, "[kiosk]\nidle-timeout = 5\n",
               "$C: [kiosk] idle-timeout = '5': out of range; allowed: 10 to 3600 seconds");
    expect_one(f, "[kiosk]\nidle-timeout = 3601\n",
               "$C: [kiosk] idle-timeout = '3601': out of range; allowed: 10 to 3600 seconds");
    expect_one(f, "[kiosk]\nidle-timeout = -30\n",
               "$C: [kiosk] idle-timeout = '-30': out of range; allowed: 10 to 3600 seconds");
    expect_one(f, "[kiosk]\nidle-timeout = 99999999999999999999999\n",
               "$C: [kiosk] idle-timeout = '99999999999999999999999': out of range; allowed: 10 "
               "to 3600 seconds");
    expect_one(f, "[kiosk]\nidle-countdown = 4\n",
               "$C: [kiosk] idle-countdown = '4': out of range; allowed: 5 to 60 seconds");
    expect_one(f, "[kiosk]\nidle-countdown = 61\n",
               "$C: [kiosk] idle-countdown = '61': out of range; allowed: 5 to 60 seconds");
    expect_one(f, "[enrolment]\ntap-lifetime = 9\n",
               "$C: [enrolment] tap-lifetime = '9': out of range; allowed: 10 to 43200 minutes");
    expect_one(f, "[enrolment]\ntap-lifetime = 43201\n",
               "$C: [enrolment] tap-lifetime = '43201': out of range; allowed: 10 to 43200 "
               "minutes");

    /* The limits themselves are allowed, leading zeros too. */
    expect_ok(f,
              "[kiosk]\nidle-timeout = 3600\nidle-countdown = 060\n[enrolment]\n"
              "tap-lifetime = 43200\n",
              &cfg);
    assert_int_equal(cfg->idle_timeout_s, 3600);
    assert_int_equal(cfg->idle_countdown_s, 60);
    assert_int_equal(cfg->tap_lifetime_min, 43200);
    kd_config_free(&cfg);
}

static void
test_idle_countdown_vs_timeout(void **state)
{
    Fixture *f = *state;

    expect_one(f, "[kiosk]\nidle-timeout = 20\nidle-countdown = 20\n",
               "$C: [kiosk] idle-countdown = '20': not shorter than idle-timeout (20 seconds); "
               "allowed: 5 to 60 seconds, and less than idle-timeout");
    expect_one(f, "[kiosk]\nidle-timeout = 10\n",
               "$C: [kiosk] idle-timeout = '10': not longer than idle-countdown (10 seconds by "
               "default); allowed: 10 to 3600 seconds, and more than idle-countdown");
}

static void
test_bad_identity_mode(void **state)
{
    Fixture *f = *state;

    expect_one(f, "[enrolment]\nidentity-mode = admin\n",
               "$C: [enrolment] identity-mode = 'admin': unknown identity mode; allowed: "
               "operator or self");
    expect_one(f, "[enrolment]\nidentity-mode = operater\n",
               "$C: [enrolment] identity-mode = 'operater': unknown identity mode (did you mean "
               "'operator'?); allowed: operator or self");
}

static void
test_bad_flows(void **state)
{
    Fixture *f = *state;
    KdConfig *cfg;

    assert_null(load(f, BASE "[enrolment]\nflows = security-key;fax;autenticator\n"));
    expect_problems(f,
                    "$C: [enrolment] flows = 'security-key;fax;autenticator': unknown flow 'fax'; "
                    "" FLOWS_ALLOWED,
                    "$C: [enrolment] flows = 'security-key;fax;autenticator': unknown flow "
                    "'autenticator' (did you mean 'authenticator'?); " FLOWS_ALLOWED,
                    NULL);
    g_ptr_array_set_size(f->problems, 0);

    expect_one(f, "[enrolment]\nflows =\n",
               "$C: [enrolment] flows = '': no flow given; " FLOWS_ALLOWED);
    expect_one(f, "[enrolment]\nflows = ;\n",
               "$C: [enrolment] flows = ';': no flow given; " FLOWS_ALLOWED);

    expect_ok(f, "[enrolment]\nflows = lost-device, authenticator\n", &cfg);
    assert_int_equal(cfg->flows, KD_FLOW_LOST_DEVICE | KD_FLOW_AUTHENTICATOR);
    kd_config_free(&cfg);
}

static void
test_bad_guid(void **state)
{
    Fixture *f = *state;
    KdConfig *cfg;

    expect_one_in(f, BASE_NO_CLIENT, "client-id = 1234\n",
                  "$C: [tenant] client-id = '1234': not a GUID; " CLIENT_ALLOWED);
    expect_one_in(f, BASE_NO_CLIENT, "client-id = {11111111-2222-3333-4444-555555555555}\n",
                  "$C: [tenant] client-id = '{11111111-2222-3333-4444-555555555555}': not a GUID; "
                  "" CLIENT_ALLOWED);
    expect_one_in(f, BASE_NO_CLIENT, "client-id = 00000000-0000-0000-0000-000000000000\n",
                  "$C: [tenant] client-id = '00000000-0000-0000-0000-000000000000': the all-zero "
                  "GUID is a placeholder; " CLIENT_ALLOWED);
    expect_one(f, "[tracking]\ngroup-id = 1111111-2222-3333-4444-5555555555555\n",
               "$C: [tracking] group-id = '1111111-2222-3333-4444-5555555555555': not a GUID; "
               "" GROUP_ALLOWED);
    expect_one(f, "[tracking]\ngroup-id = g1111111-2222-3333-4444-555555555555\n",
               "$C: [tracking] group-id = 'g1111111-2222-3333-4444-555555555555': not a GUID; "
               "" GROUP_ALLOWED);
    expect_one_in(
        f, BASE_NO_TENANT, "tenant-id = common\n",
        "$C: [tenant] tenant-id = 'common': not a GUID or a domain name; " TENANT_ALLOWED);
    expect_one_in(f, BASE_NO_TENANT, "tenant-id = contoso..onmicrosoft.com\n",
                  "$C: [tenant] tenant-id = 'contoso..onmicrosoft.com': not a GUID or a domain "
                  "name; " TENANT_ALLOWED);
    expect_one_in(f, BASE_NO_TENANT, "tenant-id = -contoso.com\n",
                  "$C: [tenant] tenant-id = '-contoso.com': not a GUID or a domain name; "
                  "" TENANT_ALLOWED);
    expect_one_in(
        f, BASE_NO_TENANT, "tenant-id = 10.0.0.1\n",
        "$C: [tenant] tenant-id = '10.0.0.1': not a GUID or a domain name; " TENANT_ALLOWED);

    expect_ok_in(f, BASE_NO_TENANT, "tenant-id = 72F988BF-0000-41AF-91AB-2D7CD011DB47\n", &cfg);
    assert_string_equal(cfg->tenant_id, "72f988bf-0000-41af-91ab-2d7cd011db47");
    kd_config_free(&cfg);
    expect_ok_in(f, BASE_NO_TENANT, "tenant-id = Fabrikam.COM\n", &cfg);
    assert_string_equal(cfg->tenant_id, "fabrikam.com");
    kd_config_free(&cfg);
}

static void
test_url_refuses_http(void **state)
{
    Fixture *f = *state;

    expect_one(f, "graph-host = http://graph.microsoft.com\n",
               "$C: [tenant] graph-host = 'http://graph.microsoft.com': scheme 'http' refused: "
               "keydesk only talks to Microsoft over HTTPS; " HOST_ALLOWED);
    expect_one(f, "login-host = ftp://login.microsoftonline.com\n",
               "$C: [tenant] login-host = 'ftp://login.microsoftonline.com': scheme 'ftp' "
               "refused: keydesk only talks to Microsoft over HTTPS; " HOST_ALLOWED);
}

static void
test_bad_url(void **state)
{
    Fixture *f = *state;

    expect_one(f, "graph-host = https://graph.microsoft.com/v1.0\n",
               "$C: [tenant] graph-host = 'https://graph.microsoft.com/v1.0': has a path, query "
               "or fragment ('/v1.0'); " HOST_ALLOWED);
    expect_one(f, "graph-host = graph.microsoft.com?x=1\n",
               "$C: [tenant] graph-host = 'graph.microsoft.com?x=1': has a path, query or "
               "fragment ('?x=1'); " HOST_ALLOWED);
    expect_one(f, "graph-host = https://graph.microsoft.com#top\n",
               "$C: [tenant] graph-host = 'https://graph.microsoft.com#top': has a path, query "
               "or fragment ('#top'); " HOST_ALLOWED);
    expect_one(f, "login-host = https://admin@login.microsoftonline.com\n",
               "$C: [tenant] login-host = 'https://admin@login.microsoftonline.com': contains a "
               "user name before '@'; " HOST_ALLOWED);
    expect_one(f, "login-host = https://login_host.example\n",
               "$C: [tenant] login-host = 'https://login_host.example': host "
               "'login_host.example' is not a valid DNS name or IP address; " HOST_ALLOWED);
    expect_one(f, "login-host = 300.1.1.1\n",
               "$C: [tenant] login-host = '300.1.1.1': host '300.1.1.1' is not a valid DNS name "
               "or IP address; " HOST_ALLOWED);
    expect_one(f, "graph-host = https://localhost:0\n",
               "$C: [tenant] graph-host = 'https://localhost:0': port '0' is out of range 1 to "
               "65535; " HOST_ALLOWED);
    expect_one(f, "graph-host = localhost:65536\n",
               "$C: [tenant] graph-host = 'localhost:65536': port '65536' is out of range 1 to "
               "65535; " HOST_ALLOWED);
    expect_one(f, "graph-host = localhost:https\n",
               "$C: [tenant] graph-host = 'localhost:https': port 'https' is not a number; "
               "" HOST_ALLOWED);
    expect_one(f, "graph-host = localhost:\n",
               "$C: [tenant] graph-host = 'localhost:': ':' without a port number after it; "
               "" HOST_ALLOWED);
    expect_one(f, "graph-host = https://::1\n",
               "$C: [tenant] graph-host = 'https://::1': an IPv6 address must be written in "
               "brackets, such as [2001:db8::1]; " HOST_ALLOWED);
    expect_one(f, "graph-host = https://[::g]:8443\n",
               "$C: [tenant] graph-host = 'https://[::g]:8443': host '[::g]' is not a valid IPv6 "
               "address; " HOST_ALLOWED);
    expect_one(f, "graph-host = https://\n",
               "$C: [tenant] graph-host = 'https://': no host name; " HOST_ALLOWED);
    expect_one(f, "graph-host =\n", "$C: [tenant] graph-host = '': empty; " HOST_ALLOWED);
}

static void
test_url_normalized(void **state)
{
    Fixture *f = *state;
    KdConfig *cfg;

    expect_ok(f, "graph-host = 127.0.0.1:8443\nlogin-host = https://[::1]:8443/\n", &cfg);
    assert_string_equal(cfg->graph_url, "https://127.0.0.1:8443");
    assert_string_equal(cfg->login_url, "https://[::1]:8443");
    kd_config_free(&cfg);
    expect_ok(f, "graph-host = GRAPH.microsoft.us\nlogin-host = https://login.microsoftonline.us\n",
              &cfg);
    assert_string_equal(cfg->graph_url, "https://graph.microsoft.us");
    assert_string_equal(cfg->login_url, "https://login.microsoftonline.us");
    kd_config_free(&cfg);
}

static void
test_bad_proxy(void **state)
{
    Fixture *f = *state;
    KdConfig *cfg;

    expect_one(f, "proxy = ftp://proxy.example.test:21\n",
               "$C: [tenant] proxy = 'ftp://proxy.example.test:21': scheme 'ftp' is not "
               "supported; " PROXY_ALLOWED);
    expect_one(f, "proxy = proxy.example.test:3128\n",
               "$C: [tenant] proxy = 'proxy.example.test:3128': no scheme; " PROXY_ALLOWED);
    expect_one(f, "proxy = http://\n",
               "$C: [tenant] proxy = 'http://': no host name; " PROXY_ALLOWED);
    expect_one(f, "proxy = socks5://proxy.example.test:99999\n",
               "$C: [tenant] proxy = 'socks5://proxy.example.test:99999': port '99999' is out of "
               "range 1 to 65535; " PROXY_ALLOWED);
    /* The password stays in the file; messages mask it. */
    expect_one(f, "proxy = http://kiosk:hunter2@\n",
               "$C: [tenant] proxy = 'http://kiosk:****@': no host name; " PROXY_ALLOWED);

    expect_ok(f, "proxy = SOCKS5H://kiosk:hunter2@Proxy.example.test:1080\n", &cfg);
    assert_string_equal(cfg->proxy, "socks5h://kiosk:hunter2@proxy.example.test:1080");
    kd_config_free(&cfg);
    expect_ok(f, "proxy = https://[2001:db8::1]\n", &cfg);
    assert_string_equal(cfg->proxy, "https://[2001:db8::1]");
    kd_config_free(&cfg);
}

static void
test_missing_required(void **state)
{
    Fixture *f = *state;

    assert_null(load(f, "[kiosk]\nsite = Lobby\n"));
    expect_problems(f,
                    "$C: [kiosk] name: required, but not set; allowed: a short name for this desk, "
                    "shown on every page, such as 'Front desk'",
                    "$C: [tenant] tenant-id: required, but not set; " TENANT_ALLOWED,
                    "$C: [tenant] client-id: required, but not set; " CLIENT_ALLOWED, NULL);
    g_ptr_array_set_size(f->problems, 0);

    assert_null(load(f, "[kiosk]\nname =\n[tenant]\ntenant-id =\nclient-id =\n"));
    expect_problems(f,
                    "$C: [kiosk] name = '': empty; allowed: a short name for this desk, shown on "
                    "every page, such as 'Front desk'",
                    "$C: [tenant] tenant-id = '': empty; " TENANT_ALLOWED,
                    "$C: [tenant] client-id = '': empty; " CLIENT_ALLOWED, NULL);
}

static void
test_credential_exposed(void **state)
{
    Fixture *f = *state;

    g_free(write_file(f, "kiosk.pem", "cert\n", 0644));
    g_free(write_file(f, "kiosk.key", "key\n", 0644));
    expect_one(f, "certificate-file = kiosk.pem\nprivate-key-file = kiosk.key\n",
               "$C: [tenant] private-key-file = 'kiosk.key': readable by group or others (mode "
               "0644); keydesk refuses to start with an exposed credential. Fix: chmod 600 "
               "$D/kiosk.key");
    g_free(write_file(f, "kiosk.key", "key\n", 0640));
    expect_one(f, "certificate-file = kiosk.pem\nprivate-key-file = $D/kiosk.key\n",
               "$C: [tenant] private-key-file = '$D/kiosk.key': readable by group or others "
               "(mode 0640); keydesk refuses to start with an exposed credential. Fix: chmod 600 "
               "$D/kiosk.key");
    g_free(write_file(f, "kiosk.key", "key\n", 0620));
    expect_one(f, "certificate-file = kiosk.pem\nprivate-key-file = kiosk.key\n",
               "$C: [tenant] private-key-file = 'kiosk.key': writable by group or others (mode "
               "0620); keydesk refuses to start with an exposed credential. Fix: chmod 600 "
               "$D/kiosk.key");
    g_free(write_file(f, "my secret", "s3cret\n", 0604));
    expect_one(f, "client-secret-file = my secret\n",
               "$C: [tenant] client-secret-file = 'my secret': readable by group or others (mode "
               "0604); keydesk refuses to start with an exposed credential. Fix: chmod 600 '$D/my "
               "secret'");

    g_free(write_file(f, "kiosk.key", "key\n", 0600));
    expect_ok(f, "certificate-file = kiosk.pem\nprivate-key-file = kiosk.key\n", NULL);
    g_free(write_file(f, "kiosk.key", "key\n", 0400));
    expect_ok(f, "certificate-file = kiosk.pem\nprivate-key-file = kiosk.key\n", NULL);
}

static void
test_credential_unreadable(void **state)
{
    Fixture *f = *state;
    char *dangling = g_build_filename(f->dir, "gone.key", NULL);
    char *dir = g_build_filename(f->dir, "keys", NULL);

    g_free(write_file(f, "kiosk.pem", "cert\n", 0644));
    /* Root reads a mode-000 file, so unreadable here means a dangling link or a directory. */
    assert_int_equal(symlink("/nonexistent/kiosk.key", dangling), 0);
    assert_int_equal(g_mkdir(dir, 0700), 0);
    expect_one(f, "certificate-file = kiosk.pem\nprivate-key-file = gone.key\n",
               "$C: [tenant] private-key-file = 'gone.key': cannot open $D/gone.key: No such file "
               "or directory; " SECRET_ALLOWED);
    expect_one(f, "client-secret-file = keys\n",
               "$C: [tenant] client-secret-file = 'keys': $D/keys is a directory, not a regular "
               "file; " SECRET_ALLOWED);
    g_free(dangling);
    g_free(dir);
}

static void
test_public_files(void **state)
{
    Fixture *f = *state;

    g_free(write_file(f, "kiosk.key", "key\n", 0600));
    expect_one(f, "certificate-file = certs/kiosk.pem\nprivate-key-file = kiosk.key\n",
               "$C: [tenant] certificate-file = 'certs/kiosk.pem': cannot open "
               "$D/certs/kiosk.pem: No such file or directory; allowed: an existing, readable PEM "
               "certificate file");
    g_free(write_file(f, "empty.pem", "", 0644));
    expect_one(f, "certificate-file = empty.pem\nprivate-key-file = kiosk.key\n",
               "$C: [tenant] certificate-file = 'empty.pem': $D/empty.pem is empty; allowed: an "
               "existing, readable PEM certificate file");
    expect_one(f, "ca-file = /nonexistent/ca.pem\n",
               "$C: [tenant] ca-file = '/nonexistent/ca.pem': cannot open /nonexistent/ca.pem: "
               "No such file or directory; allowed: an existing, readable PEM file of CA "
               "certificates");
    g_free(write_file(f, "ca.pem", "ca\n", 0666));
    expect_one(f, "ca-file = ca.pem\n",
               "$C: [tenant] ca-file = 'ca.pem': writable by anyone (mode 0666); keydesk refuses "
               "a CA file that anyone can change. Fix: chmod o-w $D/ca.pem");
    expect_one(f, "ca-file = ~/ca.pem\n",
               "$C: [tenant] ca-file = '~/ca.pem': starts with '~', which is not expanded; "
               "allowed: an existing, readable PEM file of CA certificates");
}

static void
test_credential_pairing(void **state)
{
    Fixture *f = *state;

    g_free(write_file(f, "kiosk.pem", "cert\n", 0644));
    g_free(write_file(f, "kiosk.key", "key\n", 0600));
    g_free(write_file(f, "client.secret", "secret\n", 0600));
    expect_one(f, "certificate-file = kiosk.pem\n",
               "$C: [tenant] certificate-file = 'kiosk.pem': given without private-key-file; "
               "allowed: certificate-file and private-key-file together");
    expect_one(f, "private-key-file = kiosk.key\n",
               "$C: [tenant] private-key-file = 'kiosk.key': given without certificate-file; "
               "allowed: certificate-file and private-key-file together");
    expect_one(f,
               "certificate-file = kiosk.pem\nprivate-key-file = kiosk.key\n"
               "client-secret-file = client.secret\n",
               "$C: [tenant] client-secret-file = 'client.secret': given together with "
               "certificate-file; allowed: either certificate-file with private-key-file, or "
               "client-secret-file");
}

static void
test_self_needs_credential(void **state)
{
    Fixture *f = *state;

    expect_one(f, "[enrolment]\nidentity-mode = self\n",
               "$C: [enrolment] identity-mode = 'self': needs an app credential, and [tenant] "
               "has none; allowed: operator, or self with certificate-file and private-key-file "
               "(or client-secret-file) in [tenant]");
}

static void
test_extension_attribute(void **state)
{
    Fixture *f = *state;
    const char *allowed = "allowed: extension_<application id without dashes: 32 lower-case hex "
                          "digits>_<name>, such as "
                          "extension_0123456789abcdef0123456789abcdef_mfaRegistered";
    const char *bad[] = {
        "mfaRegistered",
        "extension_0123456789ABCDEF0123456789abcdef_mfaRegistered",
        "extension_0123456789abcdef0123456789abcde_mfaRegistered",
        "extension_0123456789abcdef0123456789abcdef_",
        "extension_0123456789abcdef0123456789abcdef_mfa-registered",
        "extension_0123456789abcdef0123456789abcdefmfaRegistered",
    };

    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        char *extra = g_strdup_printf("[tracking]\nextension-attribute = %s\n", bad[i]);
        char *want = g_strdup_printf("$C: [tracking] extension-attribute = '%s': not a directory "
                                     "extension name; %s",
                                     bad[i], allowed);
        expect_one(f, extra, want);
        g_free(extra);
        g_free(want);
    }
}

static void
test_state_dir(void **state)
{
    Fixture *f = *state;
    KdConfig *cfg;
    char *want;

    expect_ok(f, "[tracking]\nstate-dir = ../keydesk-state/./db\n", &cfg);
    want = g_build_filename(g_get_tmp_dir(), "keydesk-state", "db", NULL);
    g_free(cfg->source);
    cfg->source = g_canonicalize_filename(want, NULL);
    g_free(want);
    want = g_steal_pointer(&cfg->source);
    /* g_dir_make_tmp puts $D directly in the temp dir, so ".." lands there. */
    assert_string_equal(cfg->state_dir, want);
    kd_config_free(&cfg);
    g_free(want);

    expect_one(f, "[tracking]\nstate-dir =\n",
               "$C: [tracking] state-dir = '': empty; allowed: an absolute path, or a path "
               "relative to the configuration file's directory");

    /* Text from memory with no directory has nothing to resolve a relative path against. */
    assert_null(kd_config_load_data(BASE "[tracking]\nstate-dir = state\n", (gsize)-1, "inline",
                                    NULL, f->problems));
    expect_problems(f,
                    "inline: [tracking] state-dir = 'state': a relative path, and there is no "
                    "configuration file directory to resolve it against; allowed: an absolute "
                    "path, or a path relative to the configuration file's directory",
                    NULL);
    cfg = kd_config_load_data(BASE "[tracking]\nstate-dir = state\n", (gsize)-1, "inline",
                              "/srv/keydesk", NULL);
    assert_non_null(cfg);
    assert_string_equal(cfg->source, "inline");
    assert_string_equal(cfg->state_dir, "/srv/keydesk/state");
    kd_config_free(&cfg);
}

static void
test_values_made_printable(void **state)
{
    Fixture *f = *state;

    /* A value must not be able to forge a second problem line or reorder the text around it. */
    expect_one(f, "[kiosk]\nsite = Lobby\\nFAKE: [kiosk] all is well\n",
               "$C: [kiosk] site = 'Lobby\\nFAKE: [kiosk] all is well': contains a line break or "
               "another control character; allowed: one line of text saying where the desk is");
    expect_one(f,
               "[kiosk]\ntouch-only = \xe2\x80\xae"
               "eurt\n",
               "$C: [kiosk] touch-only = '\\u202eeurt': not a boolean; allowed: true or false");
    expect_one(f, "[kiosk]\nsite = Caf\xe9\n",
               "$C: [kiosk] site = 'Caf\\xe9': not valid UTF-8 text; allowed: UTF-8 text");
    expect_one(f, "[kiosk]\nsite = C:\\Lobby\n",
               "$C: [kiosk] site = 'C:\\Lobby': contains a backslash escape that cannot be "
               "decoded; allowed: the escapes \\s, \\n, \\t, \\r and \\\\");
}

static void
test_several_problems(void **state)
{
    Fixture *f = *state;

    /* One run must list everything, so an admin fixes the file in one sitting. */
    assert_null(load(f, "[kiosk]\n"
                        "name = Front desk\n"
                        "idle-timeout = 5\n"
                        "touch-only = maybe\n"
                        "[tenant]\n"
                        "tenant-id = contoso.onmicrosoft.com\n"
                        "client-id = not-a-guid\n"
                        "graph-host = http://graph.microsoft.com\n"
                        "[enrolment]\n"
                        "identity-mode = self\n"
                        "flows = kiosk\n"
                        "[tracking]\n"
                        "group-id = 42\n"));
    expect_problems(
        f, "$C: [kiosk] idle-timeout = '5': out of range; allowed: 10 to 3600 seconds",
        "$C: [kiosk] touch-only = 'maybe': not a boolean; allowed: true or false",
        "$C: [tenant] client-id = 'not-a-guid': not a GUID; " CLIENT_ALLOWED,
        "$C: [tenant] graph-host = 'http://graph.microsoft.com': scheme 'http' refused: keydesk "
        "only talks to Microsoft over HTTPS; " HOST_ALLOWED,
        "$C: [enrolment] flows = 'kiosk': unknown flow 'kiosk'; " FLOWS_ALLOWED,
        "$C: [enrolment] identity-mode = 'self': needs an app credential, and [tenant] has none; "
        "allowed: operator, or self with certificate-file and private-key-file (or "
        "client-secret-file) in [tenant]",
        "$C: [tracking] group-id = '42': not a GUID; " GROUP_ALLOWED, NULL);
}

static void
test_to_string(void **state)
{
    (void)state;
    assert_string_equal(kd_identity_mode_to_string(KD_IDENTITY_OPERATOR), "operator");
    assert_string_equal(kd_identity_mode_to_string(KD_IDENTITY_SELF), "self");
    assert_string_equal(kd_flow_to_string(KD_FLOW_SECURITY_KEY), "security-key");
    assert_string_equal(kd_flow_to_string(KD_FLOW_AUTHENTICATOR), "authenticator");
    assert_string_equal(kd_flow_to_string(KD_FLOW_LOST_DEVICE), "lost-device");
    assert_null(kd_flow_to_string(KD_FLOW_ALL));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_valid_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_valid_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_valid_client_secret, setup, teardown),
        cmocka_unit_test(test_demo),
        cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_not_regular, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_world_writable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_syntax_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_syntax_error_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_number, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_bool, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_countdown_vs_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_identity_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_flows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_guid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_url_refuses_http, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_url, setup, teardown),
        cmocka_unit_test_setup_teardown(test_url_normalized, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_proxy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_required, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credential_exposed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credential_unreadable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_public_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credential_pairing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_self_needs_credential, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extension_attribute, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_values_made_printable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_several_problems, setup, teardown),
        cmocka_unit_test(test_to_string),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
