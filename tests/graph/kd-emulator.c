/* kd-emulator: a test fixture that runs tests/graph-emulator for a C test and talks to its
 * control API (blocking calls are fine here: this is test code, not the kiosk). */
#include "kd-emulator.h"

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef KD_SOURCE_DIR
#error "KD_SOURCE_DIR must name the source tree"
#endif

static void
die(const char *what)
{
    fprintf(stderr, "kd-emulator: %s\n", what);
    abort();
}

static void
write_tenant(const char *path, const char *tweak)
{
    g_autofree char *script =
        g_strdup_printf("import json, sys\n"
                        "sys.path.insert(0, '%s/tests/graph-emulator/tests')\n"
                        "import emutest\n"
                        "t = emutest.tenant()\n"
                        "%s\n"
                        "json.dump(t, open(sys.argv[1], 'w'))\n",
                        KD_SOURCE_DIR, tweak != NULL ? tweak : "");
    g_auto(GStrv) argv = g_new0(char *, 5);
    g_autoptr(GError) error = NULL;
    int status = 0;

    argv[0] = g_strdup("/usr/bin/python3");
    argv[1] = g_strdup("-c");
    argv[2] = g_strdup(script);
    argv[3] = g_strdup(path);
    if (!g_spawn_sync(NULL, argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, NULL, NULL, &status, &error) ||
        !g_spawn_check_wait_status(status, NULL))
        die(error != NULL ? error->message : "writing the tenant failed (bad tweak?)");
}

static void
die_with_parent(gpointer data)
{
    /* A test that aborts, or that CTest kills on timeout, must not leave emulators behind. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
}

KdEmulator *
kd_emulator_start(const char *tweak, const char *faults_json)
{
    KdEmulator *emu = g_new0(KdEmulator, 1);
    g_autoptr(GError) error = NULL;
    g_autofree char *tenant = NULL, *state = NULL, *faults = NULL, *script = NULL;
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    int out_fd = -1;
    GString *line = g_string_new(NULL);
    gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
    char **parts;

    emu->dir = g_dir_make_tmp("kd-emulator-XXXXXX", &error);
    if (emu->dir == NULL)
        die(error->message);
    tenant = g_build_filename(emu->dir, "tenant.json", NULL);
    state = g_build_filename(emu->dir, "state", NULL);
    write_tenant(tenant, tweak);
    script = g_build_filename(KD_SOURCE_DIR, "tests", "graph-emulator", "graph-emulator", NULL);
    g_ptr_array_add(argv, g_strdup("/usr/bin/python3"));
    g_ptr_array_add(argv, g_strdup(script));
    g_ptr_array_add(argv, g_strdup("--tenant"));
    g_ptr_array_add(argv, g_strdup(tenant));
    g_ptr_array_add(argv, g_strdup("--state-dir"));
    g_ptr_array_add(argv, g_strdup(state));
    if (faults_json != NULL) {
        faults = g_build_filename(emu->dir, "faults.json", NULL);
        if (!g_file_set_contents(faults, faults_json, -1, &error))
            die(error->message);
        g_ptr_array_add(argv, g_strdup("--faults"));
        g_ptr_array_add(argv, g_strdup(faults));
    }
    g_ptr_array_add(argv, NULL);
    if (!g_spawn_async_with_pipes(NULL, (char **)argv->pdata, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
                                  die_with_parent, NULL, &emu->pid, NULL, &out_fd, NULL, &error))
        die(error->message);

    /* Read the READY line without blocking forever. */
    while (g_get_monotonic_time() < deadline) {
        char c;
        ssize_t n = read(out_fd, &c, 1);
        if (n == 1) {
            if (c == '\n')
                break;
            g_string_append_c(line, c);
            continue;
        }
        if (n == 0)
            break;
        g_usleep(10000);
    }
    close(out_fd);
    if (!g_str_has_prefix(line->str, "READY "))
        die("the emulator did not print READY (see its stderr above)");
    parts = g_strsplit(line->str, " ", 3);
    emu->url = g_strdup(parts[1]);
    emu->host_port = g_strdup(parts[1] + strlen("https://"));
    emu->ca_file = g_strdup(parts[2] + strlen("CA="));
    g_strfreev(parts);
    g_string_free(line, TRUE);
    return emu;
}

void
kd_emulator_stop(KdEmulator **emup)
{
    KdEmulator *emu = *emup;
    int status;

    if (emu == NULL)
        return;
    kill(emu->pid, SIGTERM);
    waitpid(emu->pid, &status, 0);
    g_spawn_close_pid(emu->pid);
    if (emu->dir != NULL) {
        g_auto(GStrv) rm = g_new0(char *, 4);
        rm[0] = g_strdup("rm");
        rm[1] = g_strdup("-rf");
        rm[2] = g_strdup(emu->dir);
        g_spawn_sync(NULL, rm, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
    }
    g_free(emu->url);
    g_free(emu->host_port);
    g_free(emu->ca_file);
    g_free(emu->dir);
    g_free(emu);
    *emup = NULL;
}

static size_t
collect(char *data, size_t size, size_t nmemb, void *user)
{
    g_string_append_len(user, data, (gssize)(size * nmemb));
    return size * nmemb;
}

JsonNode *
kd_emulator_call(KdEmulator *emu, const char *method, const char *path, const char *json_body,
                 guint *status)
{
    CURL *curl = curl_easy_init();
    struct curl_slist *headers = NULL;
    g_autofree char *url = g_strconcat(emu->url, path, NULL);
    GString *body = g_string_new(NULL);
    JsonNode *node = NULL;
    long code = 0;

    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_CAINFO, emu->ca_file);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
    if (json_body != NULL) {
        headers = curl_slist_append(headers, "Content-Type: application/json");
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, json_body);
    }
    if (curl_easy_perform(curl) != CURLE_OK)
        die("control call failed");
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    if (status != NULL)
        *status = (guint)code;
    if (body->len > 0) {
        g_autoptr(JsonParser) parser = json_parser_new();
        if (json_parser_load_from_data(parser, body->str, (gssize)body->len, NULL))
            node = json_node_copy(json_parser_get_root(parser));
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    g_string_free(body, TRUE);
    return node;
}

JsonNode *
kd_emulator_requests(KdEmulator *emu, gint64 since)
{
    g_autofree char *path = g_strdup_printf("/_emulator/requests?since=%" G_GINT64_FORMAT, since);
    JsonNode *root = kd_emulator_call(emu, "GET", path, NULL, NULL);
    JsonNode *value;

    if (root == NULL)
        die("no request log");
    value = json_node_copy(json_object_get_member(json_node_get_object(root), "value"));
    json_node_unref(root);
    return value;
}

static gboolean
timed_out(gpointer data)
{
    *(gboolean *)data = TRUE;
    return G_SOURCE_REMOVE;
}

gboolean
kd_test_run_until(const gboolean *done, guint timeout_ms)
{
    gboolean expired = FALSE;
    guint id = g_timeout_add(timeout_ms, timed_out, &expired);

    while (!*done && !expired)
        g_main_context_iteration(NULL, TRUE);
    if (!expired)
        g_source_remove(id);
    return *done;
}

double
kd_test_slack(double seconds)
{
    return g_getenv("KD_TEST_SLOW") != NULL ? seconds * 10 : seconds;
}
