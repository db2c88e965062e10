/* main.c: entry point: command line, configuration, and the GtkApplication. Nothing else. */
#include <errno.h>
#include <glib-unix.h>
#include <glib/gi18n.h>
#include <gtk/gtk.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "core/kd-config.h"
#include "core/kd-doctor.h"
#include "core/kd-log.h"
#include "core/kd-service.h"
#include "kd-build-config.h"
#include "kd-pages.h"
#include "kd-ui.h"
#include "kd-window.h"

typedef struct {
    KdConfig *config;
    KdWindowFlags flags;
    KdWindow *window;
} KdMain;

static void
activate(GtkApplication *app, KdMain *m)
{
    if (m->window != NULL) {
        gtk_window_present(GTK_WINDOW(m->window));
        return;
    }
    kd_ui_init();
    m->window = kd_window_new(app, m->config, kd_pages_get_default(), m->flags);
    gtk_window_present(GTK_WINDOW(m->window));
}

static gboolean
on_stop_signal(gpointer user_data)
{
    GApplication *app = user_data;

    /* systemd stops the kiosk with SIGTERM: end the visit cleanly (secrets wiped) and exit 0. */
    g_info("stopping on signal");
    kd_service_notify_stopping();
    g_application_quit(app);
    return G_SOURCE_CONTINUE;
}

static int
check_config(const char *path)
{
    g_autoptr(GPtrArray) problems = g_ptr_array_new_with_free_func(g_free);
    KdConfig *cfg = kd_config_load(path, problems);

    if (cfg != NULL) {
        printf("%s: configuration is valid\n", path);
        kd_config_free(&cfg);
        return EXIT_SUCCESS;
    }
    for (guint i = 0; i < problems->len; i++)
        fprintf(stderr, "%s\n", (const char *)g_ptr_array_index(problems, i));
    fprintf(stderr, ngettext("%s: %u problem found\n", "%s: %u problems found\n", problems->len),
            path, problems->len);
    return EXIT_FAILURE;
}

static gboolean doctor_verbose;

/* `keydesk doctor` prints a checklist on stdout: the Graph client's own notes only with -v. */
static GLogWriterOutput
doctor_log_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer data)
{
    if (!doctor_verbose && (level & (G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO | G_LOG_LEVEL_DEBUG)))
        return G_LOG_WRITER_HANDLED;
    return g_log_writer_standard_streams(level, fields, n_fields, data);
}

/* keydesk doctor [--config FILE] [--verbose]: a subcommand with its own options. */
static int
doctor(int argc, char **argv)
{
    g_autofree char *config_path = NULL;
    const GOptionEntry entries[] = {{"config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path,
                                     N_("Configuration file (default " KD_CONFIG_DEFAULT_PATH ")"),
                                     N_("FILE")},
                                    {"verbose", 'v', 0, G_OPTION_ARG_NONE, &doctor_verbose,
                                     N_("Also print the Graph client's log messages"), NULL},
                                    {NULL}};
    g_autoptr(GOptionContext) context = g_option_context_new(NULL);
    g_autoptr(GError) error = NULL;

    g_set_prgname("keydesk doctor");
    g_option_context_set_summary(
        context, _("Check, without changing anything, that the Microsoft Entra tenant allows what "
                   "this desk's configuration enables: the app credential, its Graph "
                   "permissions, the FIDO2, Temporary Access Pass and Authenticator policies, "
                   "the tracking group and the licence the reports need. Prints one line per "
                   "check (PASS, WARN, FAIL or SKIP) with what to change in Entra."));
    g_option_context_set_description(
        context, _("Exit status: 0 when everything the configuration enables will work, 1 when a "
                   "check failed, 69 when Microsoft Graph cannot be reached (network or TLS), "
                   "78 when the configuration is invalid."));
    g_option_context_add_main_entries(context, entries, KD_GETTEXT_PACKAGE);
    if (!g_option_context_parse(context, &argc, &argv, &error)) {
        fprintf(stderr, "keydesk doctor: %s\n%s\n", error->message,
                _("Try keydesk doctor --help."));
        return EX_USAGE;
    }
    if (argc > 1) {
        fprintf(stderr, "keydesk doctor: %s: %s\n%s\n", _("unexpected argument"), argv[1],
                _("Try keydesk doctor --help."));
        return EX_USAGE;
    }
    g_log_set_writer_func(doctor_log_writer, NULL, NULL);
    return kd_doctor_main(config_path != NULL ? config_path : KD_CONFIG_DEFAULT_PATH, stdout,
                          stderr);
}

static void
setup_i18n(void)
{
    /* KEYDESK_LOCALEDIR lets an uninstalled build (scripts/demo) use its own catalogues. */
    const char *localedir = g_getenv("KEYDESK_LOCALEDIR");

    setlocale(LC_ALL, "");
    bindtextdomain(KD_GETTEXT_PACKAGE, localedir != NULL ? localedir : KD_LOCALEDIR);
    bind_textdomain_codeset(KD_GETTEXT_PACKAGE, "UTF-8");
    textdomain(KD_GETTEXT_PACKAGE);
}

int
main(int argc, char **argv)
{
    g_autofree char *config_path = NULL;
    gboolean opt_check = FALSE, opt_windowed = FALSE, opt_demo = FALSE, opt_version = FALSE;
    gboolean opt_verbose = FALSE, opt_marker = FALSE;
    const GOptionEntry entries[] = {
        {"config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path,
         N_("Configuration file (default " KD_CONFIG_DEFAULT_PATH ")"), N_("FILE")},
        {"check-config", 0, 0, G_OPTION_ARG_NONE, &opt_check,
         N_("Check the configuration, print every problem, and exit"), NULL},
        {"windowed", 'w', 0, G_OPTION_ARG_NONE, &opt_windowed,
         N_("Development: a normal window instead of full screen"), NULL},
        {"demo", 0, 0, G_OPTION_ARG_NONE, &opt_demo,
         N_("Demo mode: built-in configuration, practice tenant, virtual security key"), NULL},
        {"verbose", 'v', 0, G_OPTION_ARG_NONE, &opt_verbose, N_("Log debug messages"), NULL},
        {"version", 0, 0, G_OPTION_ARG_NONE, &opt_version, N_("Print the version and exit"), NULL},
        {"first-frame-marker", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_NONE, &opt_marker,
         "Print FIRST_FRAME when the first frame is painted (tests, benchmarks)", NULL},
        {NULL}};
    g_autoptr(GOptionContext) context = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) problems = NULL;
    g_autoptr(GtkApplication) app = NULL;
    KdMain m = {0};
    int status = EXIT_FAILURE;

    setup_i18n();
    /* A subcommand comes first and has its own options. */
    if (argc >= 2 && strcmp(argv[1], "doctor") == 0)
        return doctor(argc - 1, argv + 1);
    g_set_prgname("keydesk");

    context = g_option_context_new(NULL);
    g_option_context_set_summary(context, _("Walk-up enrolment desk for multi-factor "
                                            "authentication in Microsoft Entra ID."));
    g_option_context_set_description(
        context, _("Commands:\n"
                   "  keydesk doctor [--config FILE]   Check, read-only, that the tenant is set "
                   "up for this desk (see keydesk doctor --help)"));
    g_option_context_add_main_entries(context, entries, KD_GETTEXT_PACKAGE);
    g_option_context_add_group(context, gtk_get_option_group(FALSE));
    if (!g_option_context_parse(context, &argc, &argv, &error)) {
        fprintf(stderr, "keydesk: %s\n%s\n", error->message, _("Try keydesk --help."));
        return EX_USAGE;
    }
    if (opt_version) {
        printf("keydesk %s\n", KD_VERSION);
        return EXIT_SUCCESS;
    }
    if (config_path == NULL && !opt_demo)
        config_path = g_strdup(KD_CONFIG_DEFAULT_PATH);
    if (opt_check)
        return check_config(config_path != NULL ? config_path : KD_CONFIG_DEFAULT_PATH);

    kd_log_init(opt_verbose);

    problems = g_ptr_array_new_with_free_func(g_free);
    m.config = config_path != NULL ? kd_config_load(config_path, problems) : kd_config_new_demo();
    if (m.config == NULL) {
        for (guint i = 0; i < problems->len; i++)
            g_critical("%s", (const char *)g_ptr_array_index(problems, i));
        g_critical("not starting: fix the configuration (check it with keydesk --check-config)");
        /* EX_CONFIG: the unit has RestartPreventExitStatus= for it; restarting cannot help. */
        return EX_CONFIG;
    }
    if (opt_demo)
        m.config->demo = TRUE;

    /* Like cage: a full-screen kiosk as root would hand a walk-up visitor a root session. */
    if (geteuid() == 0 && !opt_windowed && !opt_demo) {
        g_critical("refusing to run the kiosk as root: run it as the unprivileged kiosk user "
                   "(see kiosk/), or use --windowed or --demo for development");
        status = EX_NOPERM;
        goto out;
    }

    m.flags =
        (opt_windowed ? 0 : KD_WINDOW_KIOSK) | (opt_marker ? KD_WINDOW_FIRST_FRAME_MARKER : 0);
    g_info("keydesk %s starting with %s%s", KD_VERSION, m.config->source,
           m.config->demo ? " (demo)" : "");

    app = gtk_application_new("org.keydesk.Keydesk", G_APPLICATION_NON_UNIQUE);
    /* A kiosk has no desktop session to log out of: skip the session-manager round trips. */
    g_object_set(app, "register-session", FALSE, NULL);
    g_signal_connect(app, "activate", G_CALLBACK(activate), &m);
    g_unix_signal_add(SIGTERM, on_stop_signal, app);
    g_unix_signal_add(SIGINT, on_stop_signal, app);
    g_unix_signal_add(SIGHUP, on_stop_signal, app);

    /* Options are parsed above; GApplication sees only the program name. */
    status = g_application_run(G_APPLICATION(app), 1, argv);
    if (m.window != NULL)
        gtk_widget_destroy(GTK_WIDGET(m.window));

out:
    kd_config_free(&m.config);
    return status;
}
