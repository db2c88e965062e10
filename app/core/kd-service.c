/* kd-service: telling systemd that keydesk is up and still alive (sd_notify, watchdog). */
#include "core/kd-service.h"

#include <systemd/sd-daemon.h>

void
kd_service_notify_ready(const char *status)
{
    (void)sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

static gboolean
ping_watchdog(gpointer user_data)
{
    (void)sd_notify(0, "WATCHDOG=1");
    return G_SOURCE_CONTINUE;
}

guint
kd_service_watchdog_start(void)
{
    uint64_t usec = 0;

    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
        return 0;
    g_debug("systemd watchdog every %" G_GUINT64_FORMAT " ms", usec / 1000);
    return g_timeout_add((guint)(usec / 2000), ping_watchdog, NULL);
}

void
kd_service_notify_stopping(void)
{
    (void)sd_notify(0, "STOPPING=1");
}
