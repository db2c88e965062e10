/* kd-errors: the one place that turns any keydesk error into a sentence a visitor can act on. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* A translated sentence for the screen. Never contains the technical message, which may name
 * hosts or ids a visitor has no use for; log that separately with kd_errors_log(). */
char *kd_errors_describe(const GError *error);

/* Logs domain, code and message for staff and support. */
void kd_errors_log(const char *context, const GError *error);

G_END_DECLS
