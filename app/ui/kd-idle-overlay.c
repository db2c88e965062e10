/* kd-idle-overlay: the "Still there?" sheet and its countdown, over whatever page is shown. */
#include "kd-idle-overlay.h"

#include <glib/gi18n.h>

struct _KdIdleOverlay {
    GtkEventBox parent_instance;

    GtkLabel *countdown_label;
    GtkButton *still_here_button;
    guint seconds;
};

enum { SIGNAL_STILL_HERE, N_SIGNALS };
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE(KdIdleOverlay, kd_idle_overlay, GTK_TYPE_EVENT_BOX)

static void
still_here_clicked(KdIdleOverlay *self)
{
    g_signal_emit(self, signals[SIGNAL_STILL_HERE], 0);
}

static void
kd_idle_overlay_class_init(KdIdleOverlayClass *klass)
{
    GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);

    gtk_widget_class_set_template_from_resource(widget_class,
                                                "/org/keydesk/Keydesk/kd-idle-overlay.ui");
    gtk_widget_class_bind_template_child(widget_class, KdIdleOverlay, countdown_label);
    gtk_widget_class_bind_template_child(widget_class, KdIdleOverlay, still_here_button);
    gtk_widget_class_bind_template_callback(widget_class, still_here_clicked);
    gtk_widget_class_set_css_name(widget_class, "kd-idle-overlay");

    /**
     * KdIdleOverlay::still-here:
     *
     * The visitor pressed "I'm still here".
     */
    signals[SIGNAL_STILL_HERE] =
        g_signal_new("still-here", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                     G_TYPE_NONE, 0);
}

static void
kd_idle_overlay_init(KdIdleOverlay *self)
{
    gtk_widget_init_template(GTK_WIDGET(self));
}

GtkWidget *
kd_idle_overlay_new(void)
{
    return g_object_new(KD_TYPE_IDLE_OVERLAY, NULL);
}

void
kd_idle_overlay_set_seconds(KdIdleOverlay *overlay, guint seconds)
{
    g_autofree char *text = NULL;

    g_return_if_fail(KD_IS_IDLE_OVERLAY(overlay));
    overlay->seconds = seconds;
    text = g_strdup_printf(ngettext("Going back to the start in %u second",
                                    "Going back to the start in %u seconds", seconds),
                           seconds);
    gtk_label_set_text(overlay->countdown_label, text);
}
