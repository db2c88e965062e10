/* kd-status-page: for staff: what this desk is, how it is set up, and its health. */
#include "kd-status-page.h"

#include <glib/gi18n.h>

#include "kd-build-config.h"
#include "core/kd-key-roster.h"
#include "kd-window.h"

struct _KdStatusPage {
    KdPage parent_instance;

    GtkScrolledWindow *scroller;
    GtkLabel *version_value;
    GtkLabel *config_value;
    GtkLabel *tenant_value;
    GtkLabel *client_value;
    GtkLabel *credential_value;
    GtkLabel *graph_value;
    GtkLabel *login_value;
    GtkLabel *network_value;
    GtkLabel *mode_value;
    GtkLabel *flows_value;
    GtkLabel *tap_value;
    GtkLabel *idle_value;
    GtkLabel *tracking_value;
    GtkLabel *state_value;
    GtkLabel *keys_value;
    GtkButton *virtual_button;

    KdKeyRoster *roster; /* the window's, while this page is on screen */
    gulong roster_changed;
};

G_DEFINE_FINAL_TYPE(KdStatusPage, kd_status_page, KD_TYPE_PAGE)

static void
set_value(GtkLabel *label, const char *text)
{
    gtk_label_set_text(label, text != NULL && *text != '\0' ? text : _("Not set"));
}

static char *
describe_credential(const KdConfig *cfg)
{
    if (cfg->certificate_file != NULL)
        return g_strdup_printf(_("Certificate %s (private key %s)"), cfg->certificate_file,
                               cfg->private_key_file);
    if (cfg->client_secret_file != NULL)
        return g_strdup_printf(_("Client secret in %s"), cfg->client_secret_file);
    return g_strdup(_("None: staff sign in with their own account"));
}

static char *
describe_network(const KdConfig *cfg)
{
    g_autofree char *proxy = NULL;

    if (cfg->proxy != NULL) {
        /* A proxy URL may carry a password; staff see where it points, never the password. */
        g_autoptr(GUri) uri = g_uri_parse(cfg->proxy, G_URI_FLAGS_NONE, NULL);
        proxy = uri != NULL
                    ? g_uri_to_string_partial(uri, G_URI_HIDE_USERINFO | G_URI_HIDE_PASSWORD)
                    : g_strdup(_("(unreadable proxy URL)"));
    }
    if (proxy != NULL && cfg->ca_file != NULL)
        return g_strdup_printf(_("Through proxy %s; trusts only the CAs in %s"), proxy,
                               cfg->ca_file);
    if (proxy != NULL)
        return g_strdup_printf(_("Through proxy %s; trusts the system's CAs"), proxy);
    if (cfg->ca_file != NULL)
        return g_strdup_printf(_("Direct; trusts only the CAs in %s"), cfg->ca_file);
    return g_strdup(_("Direct; trusts the system's CAs"));
}

static const char *
flow_name(KdFlow flow)
{
    switch (flow) {
    case KD_FLOW_SECURITY_KEY:
        return _("security key");
    case KD_FLOW_AUTHENTICATOR:
        return _("authenticator app");
    case KD_FLOW_LOST_DEVICE:
        return _("lost device");
    }
    return "?";
}

static char *
describe_flows(KdStatusPage *self, const KdConfig *cfg)
{
    static const KdFlow all[] = {KD_FLOW_SECURITY_KEY, KD_FLOW_AUTHENTICATOR, KD_FLOW_LOST_DEVICE};
    g_autoptr(GArray) offered = kd_window_get_flows(kd_page_get_window(KD_PAGE(self)));
    g_autoptr(GString) enabled = g_string_new(NULL);
    g_autoptr(GString) now = g_string_new(NULL);

    for (gsize i = 0; i < G_N_ELEMENTS(all); i++) {
        if ((cfg->flows & all[i]) == 0)
            continue;
        if (enabled->len > 0)
            g_string_append(enabled, ", ");
        g_string_append(enabled, flow_name(all[i]));
    }
    for (guint i = 0; i < offered->len; i++) {
        const KdFlowEntry *flow = g_array_index(offered, const KdFlowEntry *, i);
        if (now->len > 0)
            g_string_append(now, ", ");
        g_string_append(now, flow_name(flow->flow));
    }
    if (now->len == 0)
        g_string_assign(now, _("none yet in this version of keydesk"));
    return g_strdup_printf(_("Enabled in the configuration: %s. Offered to visitors: %s."),
                           enabled->str, now->str);
}

static char *
describe_tracking(const KdConfig *cfg)
{
    if (cfg->group_id == NULL && cfg->extension_attribute == NULL)
        return g_strdup(_("Not configured: registrations are not recorded in Entra ID"));
    if (cfg->extension_attribute == NULL)
        return g_strdup_printf(_("Registered people join group %s"), cfg->group_id);
    if (cfg->group_id == NULL)
        return g_strdup_printf(_("Registration time written to %s"), cfg->extension_attribute);
    return g_strdup_printf(_("Registered people join group %s; registration time written to %s"),
                           cfg->group_id, cfg->extension_attribute);
}

static void
update_keys(KdStatusPage *self)
{
    GPtrArray *entries = kd_key_roster_get_entries(self->roster);
    const GError *watch_error = kd_key_roster_get_watch_error(self->roster);
    g_autoptr(GString) text = g_string_new(NULL);

    for (guint i = 0; i < entries->len; i++) {
        g_autofree char *line = kd_key_roster_describe(g_ptr_array_index(entries, i));
        if (text->len > 0)
            g_string_append_c(text, '\n');
        g_string_append(text, line);
    }
    if (entries->len == 0)
        g_string_append(text, _("No security key is plugged in."));
    if (watch_error != NULL)
        g_string_append_printf(text, _("\nNot watching USB: %s"), watch_error->message);
    gtk_label_set_text(self->keys_value, text->str);
    gtk_button_set_label(self->virtual_button, kd_key_roster_has_virtual(self->roster)
                                                   ? _("Remove the virtual key")
                                                   : _("Insert a virtual key"));
}

static void
virtual_clicked(GtkButton *button, KdStatusPage *self)
{
    if (self->roster == NULL)
        return;
    if (kd_key_roster_has_virtual(self->roster))
        kd_key_roster_remove_virtual(self->roster);
    else
        kd_key_roster_insert_virtual(self->roster);
}

static void
watch_roster(KdStatusPage *self, KdKeyRoster *roster)
{
    if (self->roster == roster)
        return;
    if (self->roster != NULL)
        g_clear_signal_handler(&self->roster_changed, self->roster);
    g_set_object(&self->roster, roster);
    if (roster != NULL)
        self->roster_changed =
            g_signal_connect_swapped(roster, "changed", G_CALLBACK(update_keys), self);
}

static void
kd_status_page_shown(KdPage *page)
{
    KdStatusPage *self = KD_STATUS_PAGE(page);
    const KdConfig *cfg = kd_page_get_config(page);
    g_autofree char *credential = NULL, *network = NULL, *flows = NULL, *tap = NULL;
    g_autofree char *idle = NULL, *tracking = NULL;

    if (cfg == NULL)
        return;
    /* Staff coming back to this page start reading at the top again. */
    gtk_adjustment_set_value(gtk_scrolled_window_get_vadjustment(self->scroller), 0);
    credential = describe_credential(cfg);
    network = describe_network(cfg);
    flows = describe_flows(self, cfg);
    tracking = describe_tracking(cfg);
    tap = g_strdup_printf(ngettext("Lasts %u minute, usable once", "Lasts %u minutes, usable once",
                                   cfg->tap_lifetime_min),
                          cfg->tap_lifetime_min);
    idle = g_strdup_printf(_("Asks \"Still there?\" after %u s without input, then returns to the "
                             "start %u s later"),
                           cfg->idle_timeout_s, cfg->idle_countdown_s);

    set_value(self->version_value, KD_VERSION);
    set_value(self->config_value, cfg->source);
    set_value(self->tenant_value, cfg->tenant_id);
    set_value(self->client_value, cfg->client_id);
    set_value(self->credential_value, credential);
    set_value(self->graph_value, cfg->graph_url);
    set_value(self->login_value, cfg->login_url);
    set_value(self->network_value, network);
    set_value(self->mode_value, cfg->identity_mode == KD_IDENTITY_OPERATOR
                                    ? _("Operator: staff sign in and choose the visitor")
                                    : _("Self-service: visitors sign in on their own phone"));
    set_value(self->flows_value, flows);
    set_value(self->tap_value, tap);
    set_value(self->idle_value, idle);
    set_value(self->tracking_value, tracking);
    set_value(self->state_value, cfg->state_dir);

    /* The keys at this desk, kept current while the page is on screen; demo mode can plug in
     * the software key. */
    watch_roster(self, kd_window_get_keys(kd_page_get_window(page)));
    gtk_widget_set_visible(GTK_WIDGET(self->virtual_button), cfg->demo && self->roster != NULL);
    if (self->roster != NULL)
        update_keys(self);
}

static void
kd_status_page_unmap(GtkWidget *widget)
{
    watch_roster(KD_STATUS_PAGE(widget), NULL);
    GTK_WIDGET_CLASS(kd_status_page_parent_class)->unmap(widget);
}

static void
kd_status_page_dispose(GObject *object)
{
    watch_roster(KD_STATUS_PAGE(object), NULL);
    G_OBJECT_CLASS(kd_status_page_parent_class)->dispose(object);
}

static void
kd_status_page_locale_changed(KdPage *page)
{
    kd_page_set_title(page, _("Kiosk status"));
    if (gtk_widget_get_mapped(GTK_WIDGET(page)))
        kd_status_page_shown(page);
}

static void
kd_status_page_class_init(KdStatusPageClass *klass)
{
    GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
    KdPageClass *page_class = KD_PAGE_CLASS(klass);

    gtk_widget_class_set_template_from_resource(widget_class,
                                                "/org/keydesk/Keydesk/kd-status-page.ui");
    gtk_widget_class_bind_template_child(widget_class, KdStatusPage, scroller);
    gtk_widget_class_bind_template_child(widget_class, KdStatusPage, version_value);
    gtk_widget_class_bind_template_child(widget_class, KdStatusPage, config_value);
    gtk_widget_class_bind_template_child(widget_class, KdStatusPage, tenant_value);
    gtk_widget_class_bind_template_child(widget_class, KdStatusPage, client_value);
    gtk_widget_class_bind_template_child(widget_class, KdStatusPage, credential_value);
    gtk_widget_class_bind_template_child(widget_class, KdStatusPage, graph_value);
    gtk_widget_class_bind_template_child(widget_class, KdStatusPage, login_value);
    gtk_widget_class_bind_template_child(widget_class, KdStatusPage, network_value);
    gtk_widget_class_bind_template_child(widget_class, KdStatusPage, mode_value);
    gtk_widget_class_bind_template_child(widget_class, KdStatusPage, flows_value);
    gtk_widget_class_bind_template_child(widget_class, KdStatusPage, tap_value);
    gtk_widget_class_bind_template_child(widget_class, KdStatusPage, idle_value);
    gtk_widget_class_bind_template_child(widget_class, KdStatusPage, tracking_value);
    gtk_widget_class_bind_template_child(widget_class, KdStatusPage, state_value);
    gtk_widget_class_bind_template_child(widget_class, KdStatusPage, keys_value);
    gtk_widget_class_bind_template_child(widget_class, KdStatusPage, virtual_button);
    gtk_widget_class_bind_template_callback(widget_class, virtual_clicked);
    G_OBJECT_CLASS(klass)->dispose = kd_status_page_dispose;
    widget_class->unmap = kd_status_page_unmap;
    page_class->shown = kd_status_page_shown;
    page_class->locale_changed = kd_status_page_locale_changed;
}

static void
kd_status_page_init(KdStatusPage *self)
{
    gtk_widget_init_template(GTK_WIDGET(self));
    kd_page_set_title(KD_PAGE(self), _("Kiosk status"));
    kd_page_set_has_continue(KD_PAGE(self), FALSE);
}
