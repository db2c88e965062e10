/* kd-pages: the declarative table of pages and of the enrolment flows made from them. */
#pragma once

#include <glib-object.h>

#include "core/kd-config.h"

G_BEGIN_DECLS

typedef struct {
    const char *id; /* also the GtkStack child name */
    GType (*get_type)(void);
} KdPageEntry;

typedef struct {
    const char *id;          /* "security-key" */
    KdFlow flow;             /* the [enrolment] flows entry that enables it */
    const char *title;       /* N_("…"), translated when shown */
    const char *description; /* N_("…") */
    const char *icon_name;
    const char *const *pages; /* page ids in order, NULL-terminated */
} KdFlowEntry;

typedef struct {
    const KdPageEntry *pages;
    gsize n_pages;
    const KdFlowEntry *flows;
    gsize n_flows;
} KdPageTable;

/* Page ids the window relies on. */
#define KD_PAGE_WELCOME "welcome"
#define KD_PAGE_STATUS  "status"

/* keydesk's own table. A flow appears here only once its pages are built. */
const KdPageTable *kd_pages_get_default(void);

const KdPageEntry *kd_page_table_find_page(const KdPageTable *table, const char *id);
const KdFlowEntry *kd_page_table_find_flow(const KdPageTable *table, const char *id);

G_END_DECLS
