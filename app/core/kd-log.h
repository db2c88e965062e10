/* kd-log: where keydesk's messages go: the journal under systemd, else stderr; debug on request. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Install the writer. Info and above always go out (a kiosk's history lives in the journal);
 * debug only with @verbose. Messages never carry secrets: log ids and lengths, not values. */
void kd_log_init(gboolean verbose);

G_END_DECLS
