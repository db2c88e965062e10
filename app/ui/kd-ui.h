/* kd-ui: one-time setup of keydesk's look: compiled-in resources, the stylesheet, the icon path. */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

/* Call once after gtk_init() (GtkApplication's startup). Safe to call again. */
void kd_ui_init(void);

G_END_DECLS
