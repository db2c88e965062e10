/* kd-idle-overlay: the "Still there?" sheet and its countdown, over whatever page is shown. */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define KD_TYPE_IDLE_OVERLAY (kd_idle_overlay_get_type())
G_DECLARE_FINAL_TYPE(KdIdleOverlay, kd_idle_overlay, KD, IDLE_OVERLAY, GtkEventBox)

GtkWidget *kd_idle_overlay_new(void);
/* Shows "Going back to the start in N seconds". */
void kd_idle_overlay_set_seconds(KdIdleOverlay *overlay, guint seconds);

G_END_DECLS
