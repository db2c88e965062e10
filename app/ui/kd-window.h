/* kd-window: the kiosk's one window: navigation, the visitor's session, busy and errors. */
#pragma once

#include <gtk/gtk.h>

#include "core/kd-config.h"
#include "core/kd-key-roster.h"
#include "core/kd-session.h"
#include "kd-pages.h"

G_BEGIN_DECLS

typedef enum {
    KD_WINDOW_KIOSK = 1 << 0,              /* full screen, undecorated, cannot be closed */
    KD_WINDOW_FIRST_FRAME_MARKER = 1 << 1, /* print FIRST_FRAME on stdout once painted */
} KdWindowFlags;

#define KD_TYPE_WINDOW (kd_window_get_type())
G_DECLARE_FINAL_TYPE(KdWindow, kd_window, KD, WINDOW, GtkApplicationWindow)

/* @config and @table must outlive the window. */
KdWindow *kd_window_new(GtkApplication *app, const KdConfig *config, const KdPageTable *table,
                        KdWindowFlags flags);

const KdConfig *kd_window_get_config(KdWindow *window);
/* The visitor's session while a flow runs, else NULL. */
KdSession *kd_window_get_session(KdWindow *window);

/* The security keys at this desk (USB watching starts once the first frame is on screen). */
KdKeyRoster *kd_window_get_keys(KdWindow *window);

/* The flows this desk offers now: enabled in the config and with their pages available. */
GArray *kd_window_get_flows(KdWindow *window); /* of const KdFlowEntry *; g_array_unref */

/* Starts a visit: a new session, then the flow's first page. */
gboolean kd_window_start_flow(KdWindow *window, const char *flow_id);
/* Shows a page outside any flow (the staff status page). */
void kd_window_show_page(KdWindow *window, const char *page_id);
void kd_window_go_back(KdWindow *window);
/* Ends the visit (wiping the session) and returns to the welcome page. */
void kd_window_go_home(KdWindow *window, KdSessionEndReason reason);
/* The id of the page on screen. */
const char *kd_window_get_current_page(KdWindow *window);

/* Puts a sentence for @error above the page (cancellation is silent). */
void kd_window_show_error(KdWindow *window, const GError *error);

G_END_DECLS
