/* census-run: one registration census (app/graph/kd-graph-census.c) against a Graph URL, for
 * bench/census: prints the elapsed time, the process's peak RSS and the census's own figures.
 *
 * Usage: census-run --url https://127.0.0.1:PORT --ca CA.pem --tenant ID --client-id ID
 *                   --secret-file FILE [--mode auto|report|batch] [--resolve-default]
 * The URL serves both Graph and the identity platform (the emulator does). Output: `key value`
 * lines on stdout: elapsed_s, peak_rss_kb (VmHWM), ru_maxrss_kb (getrusage), the totals. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "graph/kd-graph-census.h"

typedef struct {
    gboolean done;
    KdGraphCensusResult *result;
    GError *error;
    guint rows;
} Run;

static void
on_row(const KdGraphCensusRow *row, gpointer data)
{
    ((Run *)data)->rows++;
}

static void
on_done(GObject *source, GAsyncResult *res, gpointer data)
{
    Run *run = data;

    run->result = kd_graph_census_finish(KD_GRAPH_CLIENT(source), res, &run->error);
    run->done = TRUE;
}

/* The high-water mark of this process's own RSS (VmHWM). getrusage()'s ru_maxrss is printed too,
 * but on Linux it keeps the high-water mark from before execve(): census-run started by a big
 * Python process (bench/census, holding the tenant) would report Python's RSS. */
static long
vm_hwm_kb(void)
{
    g_autofree char *status = NULL;
    const char *line;

    if (!g_file_get_contents("/proc/self/status", &status, NULL, NULL))
        return -1;
    line = strstr(status, "\nVmHWM:");
    return line != NULL ? strtol(line + strlen("\nVmHWM:"), NULL, 10) : -1;
}

static KdSecret *
read_secret(const char *path)
{
    g_autofree char *text = NULL;
    gsize len = 0;
    KdSecret *secret;

    if (!g_file_get_contents(path, &text, &len, NULL))
        return NULL;
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        len--;
    secret = kd_secret_new_from(text, len);
    memset(text, 0, len);
    return secret;
}

int
main(int argc, char **argv)
{
    g_autofree char *url = NULL, *ca = NULL, *tenant = NULL, *client_id = NULL;
    g_autofree char *secret_file = NULL, *mode = NULL;
    gboolean resolve_default = FALSE;
    const GOptionEntry entries[] = {
        {"url", 0, 0, G_OPTION_ARG_STRING, &url, "Graph and login base URL", "URL"},
        {"ca", 0, 0, G_OPTION_ARG_FILENAME, &ca, "CA bundle", "FILE"},
        {"tenant", 0, 0, G_OPTION_ARG_STRING, &tenant, "Tenant id", "ID"},
        {"client-id", 0, 0, G_OPTION_ARG_STRING, &client_id, "App id", "ID"},
        {"secret-file", 0, 0, G_OPTION_ARG_FILENAME, &secret_file, "Client secret file", "FILE"},
        {"mode", 0, 0, G_OPTION_ARG_STRING, &mode, "auto, report or batch", "MODE"},
        {"resolve-default", 0, 0, G_OPTION_ARG_NONE, &resolve_default,
         "Ask signInPreferences when the default method is ambiguous", NULL},
        {NULL}};
    g_autoptr(GOptionContext) context = g_option_context_new(NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(KdGraphClient) client = NULL;
    KdGraphCensusOptions census = {0};
    KdGraphOptions options = {0};
    KdSecret *secret;
    struct rusage usage;
    Run run = {0};
    gint64 start;
    double elapsed;

    g_option_context_add_main_entries(context, entries, NULL);
    if (!g_option_context_parse(context, &argc, &argv, &error) || url == NULL || tenant == NULL ||
        client_id == NULL || secret_file == NULL) {
        fprintf(stderr, "census-run: %s\n",
                error != NULL ? error->message : "--url, --tenant, --client-id, --secret-file");
        return 64;
    }
    secret = read_secret(secret_file);
    if (secret == NULL) {
        fprintf(stderr, "census-run: cannot read %s\n", secret_file);
        return 66;
    }
    options.graph_url = url;
    options.login_url = url;
    options.tenant = tenant;
    options.client_id = client_id;
    options.client_secret = secret;
    options.ca_file = ca;
    client = kd_graph_client_new(&options, &error);
    kd_secret_unref(secret);
    if (client == NULL) {
        fprintf(stderr, "census-run: %s\n", error->message);
        return 1;
    }
    if (g_strcmp0(mode, "report") == 0)
        census.mode = KD_GRAPH_CENSUS_REPORT;
    else if (g_strcmp0(mode, "batch") == 0)
        census.mode = KD_GRAPH_CENSUS_BATCH;
    if (resolve_default)
        census.flags |= KD_GRAPH_CENSUS_RESOLVE_DEFAULT;

    start = g_get_monotonic_time();
    kd_graph_census_async(client, &census, on_row, &run, NULL, on_done, &run);
    while (!run.done)
        g_main_context_iteration(NULL, TRUE);
    elapsed = (double)(g_get_monotonic_time() - start) / G_USEC_PER_SEC;
    getrusage(RUSAGE_SELF, &usage);
    if (run.result == NULL) {
        fprintf(stderr, "census-run: %s\n", run.error->message);
        g_error_free(run.error);
        return 1;
    }
    printf("elapsed_s %.3f\n", elapsed);
    printf("peak_rss_kb %ld\n", vm_hwm_kb());
    printf("ru_maxrss_kb %ld\n", usage.ru_maxrss);
    printf("mode %s\n", run.result->mode == KD_GRAPH_CENSUS_REPORT ? "report" : "batch");
    printf("rows %u\n", run.rows);
    printf("users %u\nenabled %u\nmfa_capable %u\nmfa_registered %u\npassword_only %u\n",
           run.result->users, run.result->enabled, run.result->mfa_capable,
           run.result->mfa_registered, run.result->password_only);
    printf("requests %u\nbatch_items %u\nthrottled_items %u\nresource_units %u\n",
           run.result->requests, run.result->batch_items, run.result->throttled_items,
           run.result->resource_units);
    printf("peak_in_flight %u\nrefill_estimate %.1f\n", run.result->peak_in_flight,
           run.result->refill_estimate);
    kd_graph_census_result_free(run.result);
    return 0;
}
