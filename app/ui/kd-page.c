/* kd-page: the contract every kiosk page follows (gnome-initial-setup's GisPage). */
#include "kd-page.h"

#include "kd-window.h"

typedef struct {
    KdWindow *window; /* not a reference: the window owns its pages */
    char *title;
    gboolean complete;
    gboolean has_continue;
    gboolean applying;
    KdPageApplyDone apply_done;
    gpointer apply_done_data;
} KdPagePrivate;

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE(KdPage, kd_page, GTK_TYPE_BIN)

enum { PROP_0, PROP_TITLE, PROP_COMPLETE, PROP_HAS_CONTINUE, PROP_APPLYING, N_PROPS };
static GParamSpec *props[N_PROPS];

static void
kd_page_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
    KdPage *page = KD_PAGE(object);
    KdPagePrivate *priv = kd_page_get_instance_private(page);

    switch (prop_id) {
    case PROP_TITLE:
        g_value_set_string(value, priv->title);
        break;
    case PROP_COMPLETE:
        g_value_set_boolean(value, priv->complete);
        break;
    case PROP_HAS_CONTINUE:
        g_value_set_boolean(value, priv->has_continue);
        break;
    case PROP_APPLYING:
        g_value_set_boolean(value, priv->applying);
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
    }
}

static void
kd_page_set_property(GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
    KdPage *page = KD_PAGE(object);

    switch (prop_id) {
    case PROP_TITLE:
        kd_page_set_title(page, g_value_get_string(value));
        break;
    case PROP_COMPLETE:
        kd_page_set_complete(page, g_value_get_boolean(value));
        break;
    case PROP_HAS_CONTINUE:
        kd_page_set_has_continue(page, g_value_get_boolean(value));
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
    }
}

static void
kd_page_finalize(GObject *object)
{
    KdPagePrivate *priv = kd_page_get_instance_private(KD_PAGE(object));

    g_free(priv->title);
    G_OBJECT_CLASS(kd_page_parent_class)->finalize(object);
}

static gboolean
kd_page_real_available(KdPageClass *klass, const KdConfig *config)
{
    return TRUE;
}

static gboolean
kd_page_real_apply(KdPage *page, GCancellable *cancellable)
{
    return FALSE;
}

static void
kd_page_class_init(KdPageClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);

    object_class->get_property = kd_page_get_property;
    object_class->set_property = kd_page_set_property;
    object_class->finalize = kd_page_finalize;
    klass->available = kd_page_real_available;
    klass->apply = kd_page_real_apply;

    props[PROP_TITLE] =
        g_param_spec_string("title", "Title", "What the page is for", NULL,
                            G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
    props[PROP_COMPLETE] =
        g_param_spec_boolean("complete", "Complete", "Whether Continue may be pressed", FALSE,
                             G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
    props[PROP_HAS_CONTINUE] = g_param_spec_boolean(
        "has-continue", "Has continue", "Whether the page has a Continue button", TRUE,
        G_PARAM_READWRITE | G_PARAM_CONSTRUCT | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
    props[PROP_APPLYING] = g_param_spec_boolean("applying", "Applying", "Asynchronous apply runs",
                                                FALSE, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
    g_object_class_install_properties(object_class, N_PROPS, props);
}

static void
kd_page_init(KdPage *page)
{
}

KdWindow *
kd_page_get_window(KdPage *page)
{
    KdPagePrivate *priv = kd_page_get_instance_private(page);
    return priv->window;
}

const KdConfig *
kd_page_get_config(KdPage *page)
{
    KdPagePrivate *priv = kd_page_get_instance_private(page);
    return priv->window != NULL ? kd_window_get_config(priv->window) : NULL;
}

KdSession *
kd_page_get_session(KdPage *page)
{
    KdPagePrivate *priv = kd_page_get_instance_private(page);
    return priv->window != NULL ? kd_window_get_session(priv->window) : NULL;
}

void
kd_page_set_window(KdPage *page, KdWindow *window)
{
    KdPagePrivate *priv = kd_page_get_instance_private(page);
    priv->window = window;
}

const char *
kd_page_get_title(KdPage *page)
{
    KdPagePrivate *priv = kd_page_get_instance_private(page);
    return priv->title;
}

void
kd_page_set_title(KdPage *page, const char *title)
{
    KdPagePrivate *priv = kd_page_get_instance_private(page);

    if (g_strcmp0(priv->title, title) == 0)
        return;
    g_free(priv->title);
    priv->title = g_strdup(title);
    g_object_notify_by_pspec(G_OBJECT(page), props[PROP_TITLE]);
}

gboolean
kd_page_get_complete(KdPage *page)
{
    KdPagePrivate *priv = kd_page_get_instance_private(page);
    return priv->complete;
}

void
kd_page_set_complete(KdPage *page, gboolean complete)
{
    KdPagePrivate *priv = kd_page_get_instance_private(page);

    complete = !!complete;
    if (priv->complete == complete)
        return;
    priv->complete = complete;
    g_object_notify_by_pspec(G_OBJECT(page), props[PROP_COMPLETE]);
}

gboolean
kd_page_get_has_continue(KdPage *page)
{
    KdPagePrivate *priv = kd_page_get_instance_private(page);
    return priv->has_continue;
}

void
kd_page_set_has_continue(KdPage *page, gboolean has_continue)
{
    KdPagePrivate *priv = kd_page_get_instance_private(page);

    has_continue = !!has_continue;
    if (priv->has_continue == has_continue)
        return;
    priv->has_continue = has_continue;
    g_object_notify_by_pspec(G_OBJECT(page), props[PROP_HAS_CONTINUE]);
}

gboolean
kd_page_type_available(GType page_type, const KdConfig *config)
{
    KdPageClass *klass;
    gboolean available;

    g_return_val_if_fail(g_type_is_a(page_type, KD_TYPE_PAGE), FALSE);
    klass = g_type_class_ref(page_type);
    available = klass->available(klass, config);
    g_type_class_unref(klass);
    return available;
}

void
kd_page_shown(KdPage *page)
{
    if (KD_PAGE_GET_CLASS(page)->shown != NULL)
        KD_PAGE_GET_CLASS(page)->shown(page);
}

void
kd_page_locale_changed(KdPage *page)
{
    if (KD_PAGE_GET_CLASS(page)->locale_changed != NULL)
        KD_PAGE_GET_CLASS(page)->locale_changed(page);
}

gboolean
kd_page_get_applying(KdPage *page)
{
    KdPagePrivate *priv = kd_page_get_instance_private(page);
    return priv->applying;
}

void
kd_page_apply_begin(KdPage *page, GCancellable *cancellable, KdPageApplyDone done,
                    gpointer user_data)
{
    KdPagePrivate *priv = kd_page_get_instance_private(page);

    g_return_if_fail(!priv->applying);
    priv->apply_done = done;
    priv->apply_done_data = user_data;
    priv->applying = TRUE;
    g_object_notify_by_pspec(G_OBJECT(page), props[PROP_APPLYING]);
    if (!KD_PAGE_GET_CLASS(page)->apply(page, cancellable))
        kd_page_apply_complete(page, NULL);
}

void
kd_page_apply_complete(KdPage *page, const GError *error)
{
    KdPagePrivate *priv = kd_page_get_instance_private(page);
    KdPageApplyDone done = priv->apply_done;
    gpointer data = priv->apply_done_data;

    g_return_if_fail(priv->applying);
    priv->applying = FALSE;
    priv->apply_done = NULL;
    priv->apply_done_data = NULL;
    g_object_notify_by_pspec(G_OBJECT(page), props[PROP_APPLYING]);
    if (done != NULL)
        done(page, error, data);
}
