/* kd-log: where keydesk's messages go: the journal under systemd, else stderr; debug on request. */
#include "core/kd-log.h"

#include <stdio.h>
#include <unistd.h>

static gboolean log_verbose;
static gboolean log_to_journal;

static GLogWriterOutput
kd_log_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
    if ((level & G_LOG_LEVEL_DEBUG) && !log_verbose)
        return G_LOG_WRITER_HANDLED;
    if (log_to_journal &&
        g_log_writer_journald(level, fields, n_fields, user_data) == G_LOG_WRITER_HANDLED)
        return G_LOG_WRITER_HANDLED;
    return g_log_writer_standard_streams(level, fields, n_fields, user_data);
}

void
kd_log_init(gboolean verbose)
{
    log_verbose = verbose;
    /* systemd connects stderr to the journal for services: write structured entries then. */
    log_to_journal = g_log_writer_is_journald(fileno(stderr));
    g_log_set_writer_func(kd_log_writer, NULL, NULL);
    if (verbose)
        g_log_set_debug_enabled(TRUE);
}
