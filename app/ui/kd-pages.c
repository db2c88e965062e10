/* kd-pages: the declarative table of pages and of the enrolment flows made from them. */
#include "kd-pages.h"

#include "pages/status/kd-status-page.h"
#include "pages/welcome/kd-welcome-page.h"

static const KdPageEntry default_pages[] = {
    {KD_PAGE_WELCOME, kd_welcome_page_get_type},
    {KD_PAGE_STATUS, kd_status_page_get_type},
};

static const KdPageTable default_table = {
    .pages = default_pages,
    .n_pages = G_N_ELEMENTS(default_pages),
    /* The security-key, authenticator and lost-device flows join this table as they land. */
    .flows = NULL,
    .n_flows = 0,
};

const KdPageTable *
kd_pages_get_default(void)
{
    return &default_table;
}

const KdPageEntry *
kd_page_table_find_page(const KdPageTable *table, const char *id)
{
    for (gsize i = 0; i < table->n_pages; i++)
        if (g_str_equal(table->pages[i].id, id))
            return &table->pages[i];
    return NULL;
}

const KdFlowEntry *
kd_page_table_find_flow(const KdPageTable *table, const char *id)
{
    for (gsize i = 0; i < table->n_flows; i++)
        if (g_str_equal(table->flows[i].id, id))
            return &table->flows[i];
    return NULL;
}
