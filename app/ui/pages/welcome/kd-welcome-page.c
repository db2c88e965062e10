/* kd-welcome-page: what this desk does, and one big choice per enrolment flow. */
#include "kd-welcome-page.h"

#include <glib/gi18n.h>

#include "kd-window.h"

struct _KdWelcomePage {
    KdPage parent_instance;

    GtkFlowBox *flow_box;
    GtkWidget *no_flows_box;
};

G_DEFINE_FINAL_TYPE(KdWelcomePage, kd_welcome_page, KD_TYPE_PAGE)

static void
flow_tile_clicked(GtkButton *button, KdWelcomePage *self)
{
    const char *flow_id = g_object_get_data(G_OBJECT(button), "kd-flow-id");

    kd_window_start_flow(kd_page_get_window(KD_PAGE(self)), flow_id);
}

static GtkWidget *
make_flow_tile(KdWelcomePage *self, const KdFlowEntry *flow)
{
    g_autoptr(GtkBuilder) builder =
        gtk_builder_new_from_resource("/org/keydesk/Keydesk/kd-flow-tile.ui");
    GtkWidget *tile = GTK_WIDGET(gtk_builder_get_object(builder, "tile"));

    gtk_image_set_from_icon_name(GTK_IMAGE(gtk_builder_get_object(builder, "icon")),
                                 flow->icon_name, GTK_ICON_SIZE_DIALOG);
    gtk_label_set_text(GTK_LABEL(gtk_builder_get_object(builder, "title")), _(flow->title));
    gtk_label_set_text(GTK_LABEL(gtk_builder_get_object(builder, "description")),
                       _(flow->description));
    atk_object_set_name(gtk_widget_get_accessible(tile), _(flow->title));
    g_object_set_data_full(G_OBJECT(tile), "kd-flow-id", g_strdup(flow->id), g_free);
    g_signal_connect(tile, "clicked", G_CALLBACK(flow_tile_clicked), self);
    return g_object_ref(tile);
}

/* Tiles are rebuilt each time the page is shown, so a changed language or configuration
 * is always reflected. */
static void
rebuild_tiles(KdWelcomePage *self)
{
    KdWindow *window = kd_page_get_window(KD_PAGE(self));
    g_autoptr(GArray) flows = NULL;
    g_autoptr(GList) children = NULL;

    if (window == NULL)
        return;
    children = gtk_container_get_children(GTK_CONTAINER(self->flow_box));
    for (GList *l = children; l != NULL; l = l->next)
        gtk_widget_destroy(GTK_WIDGET(l->data));

    flows = kd_window_get_flows(window);
    for (guint i = 0; i < flows->len; i++) {
        GtkWidget *tile = make_flow_tile(self, g_array_index(flows, const KdFlowEntry *, i));
        gtk_flow_box_insert(self->flow_box, tile, -1);
        g_object_unref(tile);
    }
    gtk_widget_set_visible(GTK_WIDGET(self->flow_box), flows->len > 0);
    gtk_widget_set_visible(self->no_flows_box, flows->len == 0);
}

static void
staff_clicked(KdWelcomePage *self)
{
    kd_window_show_page(kd_page_get_window(KD_PAGE(self)), KD_PAGE_STATUS);
}

static void
kd_welcome_page_shown(KdPage *page)
{
    rebuild_tiles(KD_WELCOME_PAGE(page));
}

static void
kd_welcome_page_locale_changed(KdPage *page)
{
    kd_page_set_title(page, _("Welcome"));
    rebuild_tiles(KD_WELCOME_PAGE(page));
}

static void
kd_welcome_page_class_init(KdWelcomePageClass *klass)
{
    GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
    KdPageClass *page_class = KD_PAGE_CLASS(klass);

    gtk_widget_class_set_template_from_resource(widget_class,
                                                "/org/keydesk/Keydesk/kd-welcome-page.ui");
    gtk_widget_class_bind_template_child(widget_class, KdWelcomePage, flow_box);
    gtk_widget_class_bind_template_child(widget_class, KdWelcomePage, no_flows_box);
    gtk_widget_class_bind_template_callback(widget_class, staff_clicked);
    page_class->shown = kd_welcome_page_shown;
    page_class->locale_changed = kd_welcome_page_locale_changed;
}

static void
kd_welcome_page_init(KdWelcomePage *self)
{
    gtk_widget_init_template(GTK_WIDGET(self));
    kd_page_set_title(KD_PAGE(self), _("Welcome"));
    kd_page_set_has_continue(KD_PAGE(self), FALSE);
}
