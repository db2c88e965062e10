/* kd-aaguid-catalogue: lookups in the generated AAGUID table (binary search, sorted by bytes). */
#include "hw/kd-aaguid-catalogue.h"

#include <string.h>

#include "kd-aaguid-table.c" /* generated: kd_aaguid_table[], kd_aaguid_sources[] */

static int
compare_entry(const void *key, const void *member)
{
    const KdAaguidEntry *entry = member;

    return memcmp(key, entry->aaguid, 16);
}

const KdAaguidEntry *
kd_aaguid_catalogue_lookup(const guint8 aaguid[16])
{
    if (aaguid == NULL)
        return NULL;
    return bsearch(aaguid, kd_aaguid_table, G_N_ELEMENTS(kd_aaguid_table), sizeof(KdAaguidEntry),
                   compare_entry);
}

const KdAaguidEntry *
kd_aaguid_catalogue_lookup_string(const char *text)
{
    guint8 aaguid[16];

    if (!kd_aaguid_parse(text, aaguid))
        return NULL;
    return kd_aaguid_catalogue_lookup(aaguid);
}

const KdAaguidEntry *
kd_aaguid_catalogue_entries(gsize *n_entries)
{
    if (n_entries != NULL)
        *n_entries = G_N_ELEMENTS(kd_aaguid_table);
    return kd_aaguid_table;
}

const char *
kd_aaguid_catalogue_sources(void)
{
    return kd_aaguid_sources;
}

char *
kd_aaguid_to_string(const guint8 a[16])
{
    return g_strdup_printf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                           a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11],
                           a[12], a[13], a[14], a[15]);
}

gboolean
kd_aaguid_parse(const char *text, guint8 aaguid[16])
{
    static const guint dashes[] = {8, 13, 18, 23};
    gsize len, n = 0;
    gboolean dashed;

    if (text == NULL)
        return FALSE;
    len = strlen(text);
    if (len != 32 && len != 36)
        return FALSE;
    dashed = len == 36;
    if (dashed)
        for (gsize i = 0; i < G_N_ELEMENTS(dashes); i++)
            if (text[dashes[i]] != '-')
                return FALSE;
    for (gsize i = 0; i < len; i++) {
        int hi, lo;

        if (dashed && (i == 8 || i == 13 || i == 18 || i == 23))
            continue;
        hi = g_ascii_xdigit_value(text[i]);
        lo = i + 1 < len ? g_ascii_xdigit_value(text[i + 1]) : -1;
        if (hi < 0 || lo < 0)
            return FALSE;
        aaguid[n++] = (guint8)(hi << 4 | lo);
        i++;
    }
    return n == 16;
}

gboolean
kd_aaguid_is_zero(const guint8 aaguid[16])
{
    for (int i = 0; i < 16; i++)
        if (aaguid[i] != 0)
            return FALSE;
    return TRUE;
}

char *
kd_aaguid_catalogue_describe(const guint8 aaguid[16])
{
    const KdAaguidEntry *e = kd_aaguid_catalogue_lookup(aaguid);
    g_autofree char *name = NULL, *vendor = NULL;

    if (e == NULL)
        return NULL;
    if (e->vendor == NULL)
        return g_strdup(e->name);
    /* "Security Key NFC by Yubico" already names its vendor. */
    name = g_utf8_casefold(e->name, -1);
    vendor = g_utf8_casefold(e->vendor, -1);
    if (strstr(name, vendor) != NULL)
        return g_strdup(e->name);
    return g_strdup_printf("%s %s", e->vendor, e->name);
}
