/* kd-page: the contract every kiosk page follows (gnome-initial-setup's GisPage). */
#pragma once

#include <gtk/gtk.h>

#include "core/kd-config.h"
#include "core/kd-session.h"

G_BEGIN_DECLS

typedef struct _KdWindow KdWindow;

#define KD_TYPE_PAGE (kd_page_get_type())
G_DECLARE_DERIVABLE_TYPE(KdPage, kd_page, KD, PAGE, GtkBin)

struct _KdPageClass {
    GtkBinClass parent_class;

    /* Whether the page appears at all with this configuration (a page may decline). Asked of
     * the class, so that a page is only ever built when it is about to be shown. */
    gboolean (*available)(KdPageClass *klass, const KdConfig *config);
    /* The page became the visible one. */
    void (*shown)(KdPage *page);
    /* The UI language changed: re-set any text the page computed itself. */
    void (*locale_changed)(KdPage *page);
    /*
     * The visitor pressed Continue. Return FALSE to move on at once. Return TRUE to say the
     * page started asynchronous work; it must then call kd_page_apply_complete() exactly once,
     * also when @cancellable is cancelled. The window shows the spinner and Cancel meanwhile.
     */
    gboolean (*apply)(KdPage *page, GCancellable *cancellable);
};

/* The window this page lives in, and through it the configuration and the visitor's session. */
KdWindow *kd_page_get_window(KdPage *page);
const KdConfig *kd_page_get_config(KdPage *page);
/* The current visitor's session, or NULL on pages shown without one (welcome, status). */
KdSession *kd_page_get_session(KdPage *page);

const char *kd_page_get_title(KdPage *page);
void kd_page_set_title(KdPage *page, const char *title);
/* Complete pages let the visitor press Continue. */
gboolean kd_page_get_complete(KdPage *page);
void kd_page_set_complete(KdPage *page, gboolean complete);
/* Pages that end a flow (nothing after them) show "Done" instead of "Continue". */
gboolean kd_page_get_has_continue(KdPage *page);
void kd_page_set_has_continue(KdPage *page, gboolean has_continue);

/* Called by the window. */
void kd_page_set_window(KdPage *page, KdWindow *window);
gboolean kd_page_type_available(GType page_type, const KdConfig *config);
void kd_page_shown(KdPage *page);
void kd_page_locale_changed(KdPage *page);
typedef void (*KdPageApplyDone)(KdPage *page, const GError *error, gpointer user_data);
void kd_page_apply_begin(KdPage *page, GCancellable *cancellable, KdPageApplyDone done,
                         gpointer user_data);
gboolean kd_page_get_applying(KdPage *page);

/* Called by a page whose apply() returned TRUE: @error NULL means move on; an error is shown
 * to the visitor (see kd-errors.c) and the page stays. A G_IO_ERROR_CANCELLED error is silent. */
void kd_page_apply_complete(KdPage *page, const GError *error);

G_END_DECLS
