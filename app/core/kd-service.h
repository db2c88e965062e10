/* kd-service: telling systemd that keydesk is up and still alive (sd_notify, watchdog). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* READY=1 with a status line; does nothing when not started by systemd. */
void kd_service_notify_ready(const char *status);
/* If the unit has WatchdogSec=, ping from the main loop at half the interval, so a frozen UI
 * (the thing a kiosk must never be) gets the service restarted. Returns the source id or 0. */
guint kd_service_watchdog_start(void);
void kd_service_notify_stopping(void);

G_END_DECLS
