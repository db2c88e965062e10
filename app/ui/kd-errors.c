/* kd-errors: the one place that turns any keydesk error into a sentence a visitor can act on. */
#include "kd-errors.h"

#include <gio/gio.h>
#include <glib/gi18n.h>

#include "hw/kd-key-error.h"

/* Each layer adds its error domain here as it lands (graph, keys, store), so that the
 * wording stays consistent and lives in one translatable file. */
char *
kd_errors_describe(const GError *error)
{
    if (error == NULL)
        return g_strdup(_("Something went wrong. Please try again."));

    if (error->domain == KD_KEY_ERROR) {
        /* hw/ words every key error for the person holding the key (kd-key-error.c, already
         * translated, with the tries left or the key's PIN rule where they matter). */
        if (error->code == KD_KEY_ERROR_CANCELLED)
            return g_strdup(_("Stopped. Nothing was changed."));
        if (error->message != NULL && *error->message != '\0')
            return g_strdup(error->message);
        return g_strdup(kd_key_error_sentence((KdKeyErrorCode)error->code));
    }

    if (error->domain == G_IO_ERROR) {
        switch (error->code) {
        case G_IO_ERROR_CANCELLED:
            return g_strdup(_("Stopped. Nothing was changed."));
        case G_IO_ERROR_TIMED_OUT:
            return g_strdup(_("This is taking longer than it should. Please try again in a "
                              "moment, or ask a member of staff."));
        case G_IO_ERROR_NETWORK_UNREACHABLE:
        case G_IO_ERROR_HOST_UNREACHABLE:
        case G_IO_ERROR_CONNECTION_REFUSED:
        case G_IO_ERROR_CONNECTION_CLOSED:
            return g_strdup(_("This desk cannot reach Microsoft right now. Your details are "
                              "safe. Please try again in a moment, or ask a member of staff."));
        case G_IO_ERROR_PERMISSION_DENIED:
            return g_strdup(_("This desk is not allowed to do that. Please ask a member of "
                              "staff."));
        default:
            break;
        }
    }
    return g_strdup(_("Something went wrong on this desk. Nothing was lost. Please try again, "
                      "or ask a member of staff for help."));
}

void
kd_errors_log(const char *context, const GError *error)
{
    if (error == NULL)
        return;
    g_warning("%s: %s (%s %d)", context, error->message, g_quark_to_string(error->domain),
              error->code);
}
