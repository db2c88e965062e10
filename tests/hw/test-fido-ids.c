/* test-fido-ids: the generated FIDO USB id table and its binary search, checked against the list
 * it was generated from (hw/data/fido-usb-ids.tsv, read here independently of the generator). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hw/kd-fido-ids.h"

typedef struct {
    guint16 vendor_id;
    guint16 product_id;
    gboolean any_product;
    char *brand;
    char *name;
} Row;

typedef struct {
    GArray *rows;        /* Row, in file order */
    GHashTable *generic; /* vendor id -> vendor name, "" for '-' */
} List;

static guint16
parse_hex4(const char *s)
{
    char *end = NULL;
    guint64 v;

    assert_int_equal(strlen(s), 4);
    v = g_ascii_strtoull(s, &end, 16);
    assert_true(end != NULL && *end == '\0');
    return (guint16)v;
}

static void
row_clear(gpointer data)
{
    Row *row = data;

    g_free(row->brand);
    g_free(row->name);
}

static int
setup(void **state)
{
    List *list = g_new0(List, 1);
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;
    gboolean header = FALSE;

    assert_true(g_file_get_contents(KD_FIDO_IDS_TSV, &text, NULL, NULL));
    list->rows = g_array_new(FALSE, TRUE, sizeof(Row));
    g_array_set_clear_func(list->rows, row_clear);
    list->generic = g_hash_table_new_full(NULL, NULL, NULL, g_free);
    lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l != NULL; l++) {
        g_auto(GStrv) f = NULL;
        Row row = {0};

        if (g_str_has_prefix(*l, "#@generic ")) {
            /* "#@generic VID NAME: WHY", NAME "-" for none */
            g_autofree char *rest = g_strstrip(g_strdup(*l + strlen("#@generic ")));
            char *colon = strchr(rest, ':');
            char *name;

            assert_non_null(colon);
            *colon = '\0';
            assert_true(strlen(rest) > 5 && g_ascii_isspace(rest[4]));
            name = g_strstrip(g_strdup(rest + 5));
            rest[4] = '\0';
            if (strcmp(name, "-") == 0)
                name[0] = '\0';
            g_hash_table_insert(list->generic, GUINT_TO_POINTER(parse_hex4(rest)), name);
            continue;
        }
        if (**l == '#' || **l == '\0')
            continue;
        if (!header) {
            header = TRUE;
            continue;
        }
        f = g_strsplit(*l, "\t", -1);
        assert_int_equal(g_strv_length(f), 5);
        row.vendor_id = parse_hex4(f[0]);
        row.any_product = strcmp(f[1], "*") == 0;
        row.product_id = row.any_product ? 0 : parse_hex4(f[1]);
        row.brand = g_strdup(f[2]);
        row.name = g_strdup(f[3]);
        g_array_append_val(list->rows, row);
    }
    assert_true(list->rows->len > 50);
    *state = list;
    return 0;
}

static int
teardown(void **state)
{
    List *list = *state;

    g_array_unref(list->rows);
    g_hash_table_unref(list->generic);
    g_free(list);
    return 0;
}

static const Row *
list_find(const List *list, guint16 vendor_id, guint16 product_id)
{
    for (guint i = 0; i < list->rows->len; i++) {
        const Row *r = &g_array_index(list->rows, Row, i);

        if (r->vendor_id == vendor_id && (r->any_product || r->product_id == product_id))
            return r;
    }
    return NULL;
}

static const char *
vendor_brand(const List *list, guint16 vendor_id)
{
    for (guint i = 0; i < list->rows->len; i++) {
        const Row *r = &g_array_index(list->rows, Row, i);

        if (r->vendor_id == vendor_id)
            return r->brand;
    }
    return NULL;
}

static void
assert_key(guint16 v, guint16 p, const char *vendor, const char *product)
{
    const char *name = "unset";

    assert_true(kd_fido_ids_lookup(v, p, &name));
    assert_string_equal(name, vendor);
    assert_string_equal(kd_fido_ids_product_name(v, p), product);
    assert_true(kd_fido_ids_lookup(v, p, NULL));
}

static void
assert_not_key(guint16 v, guint16 p, const char *vendor)
{
    const char *name = "unset";

    assert_false(kd_fido_ids_lookup(v, p, &name));
    if (vendor == NULL)
        assert_null(name);
    else
        assert_string_equal(name, vendor);
    assert_null(kd_fido_ids_product_name(v, p));
    assert_false(kd_fido_ids_lookup(v, p, NULL));
}

static void
test_known_keys(void **state)
{
    assert_key(0x1050, 0x0407, "Yubico", "YubiKey 4/5 OTP+FIDO+CCID");
    assert_key(0x1050, 0x0120, "Yubico", "Security Key by Yubico");
    assert_key(0x18d1, 0x5026, "Google", "Titan Security Key");
    assert_key(0x096e, 0x085a, "Feitian", "FS MultiPass FIDO U2F");
    assert_key(0x1ea8, 0xfc25, "Excelsecu", "ExcelSecu FIDO2 Security Key");
    assert_key(0x20a0, 0x42b2, "Nitrokey", "Nitrokey 3");
    assert_key(0x1209, 0xbeee, "SoloKeys", "Solo 2");
    assert_key(0x349e, 0x0022, "Token2", "PIN+ R1/R2/R3 (FIDO+OTP)");
    /* Under another maker's vendor id the brand on the key is reported, not the id's owner. */
    assert_key(0x096e, 0x0880, "Hypersecu", "HyperFIDO");
    assert_key(0x1ea8, 0xf025, "Thetis", "Thetis Key");
}

static void
test_wildcard_vendor(void **state)
{
    assert_key(0x2ccf, 0x0880, "Hypersecu", "HyperFIDO");
    assert_key(0x2ccf, 0x0000, "Hypersecu", "HyperFIDO");
    assert_key(0x2ccf, 0x1234, "Hypersecu", "HyperFIDO");
    assert_key(0x2ccf, 0xffff, "Hypersecu", "HyperFIDO");
    /* The neighbouring vendor ids are not swept in. */
    assert_not_key(0x2cce, 0xffff, NULL);
    assert_not_key(0x2cd0, 0x0000, NULL);
}

static void
test_unlisted_products(void **state)
{
    /* Shared vendor ids: a product not on the list is not a key, and has no vendor name. */
    assert_not_key(0x1209, 0x0001, NULL);
    assert_not_key(0x1209, 0x5071, NULL);
    assert_not_key(0x20a0, 0x4108, NULL); /* Nitrokey Pro: OpenPGP card, no FIDO */
    assert_not_key(0x1d50, 0x6089, NULL);
    /* Vendor ids of one maker who also makes other things: the maker is named. */
    assert_not_key(0x0483, 0x5740, "STMicroelectronics");
    assert_not_key(0x18d1, 0x4ee7, "Google"); /* a Pixel phone */
    assert_not_key(0x096e, 0x0005, "Feitian");
    /* Yubico's OTP-only and CCID-only modes have no FIDO interface. */
    assert_not_key(0x1050, 0x0010, "Yubico");
    assert_not_key(0x1050, 0x0404, "Yubico");
    assert_not_key(0x1050, 0x0030, "Yubico");
    /* A keyboard. */
    assert_not_key(0x046d, 0xc31c, NULL);
}

/* The search at the ends of both tables and between vendors. */
static void
test_edges(void **state)
{
    const List *list = *state;
    const Row *first = &g_array_index(list->rows, Row, 0);
    const Row *last = &g_array_index(list->rows, Row, list->rows->len - 1);

    assert_not_key(0x0000, 0x0000, NULL);
    assert_not_key(0xffff, 0xffff, NULL);
    assert_not_key(0x0001, 0x0001, NULL);
    assert_key(first->vendor_id, first->product_id, first->brand, first->name);
    assert_key(last->vendor_id, last->product_id, last->brand, last->name);
    assert_not_key(first->vendor_id - 1, 0xffff, NULL);
    assert_not_key(last->vendor_id + 1, 0x0000, NULL);
    if (first->product_id > 0 && !first->any_product)
        assert_false(kd_fido_ids_lookup(first->vendor_id, first->product_id - 1, NULL));
    if (last->product_id < 0xffff && !last->any_product)
        assert_false(kd_fido_ids_lookup(last->vendor_id, last->product_id + 1, NULL));
    /* Keys that would be adjacent to a "*" row: the rows around 2ccf. */
    assert_key(0x2c97, 0x6015, "Ledger", "Ledger Stax (U2F+WebUSB)");
    assert_not_key(0x2c97, 0x6016, "Ledger");
    assert_key(0x311f, 0x4a1a, "eWBM", "TrustKey G310");
    assert_not_key(0x311f, 0x0000, "eWBM");
}

/* Every row of the list is found with its brand and name; every one of the 65536 product ids of
 * every listed vendor answers exactly as the list says; and a vendor id missing from the list
 * is unknown. This is the whole behaviour of the table, compared with an independent reading. */
static void
test_whole_list(void **state)
{
    const List *list = *state;
    GHashTable *vendors = g_hash_table_new(NULL, NULL);
    GHashTableIter it;
    gpointer key;
    guint found = 0, expected = 0;

    for (guint i = 0; i < list->rows->len; i++) {
        const Row *r = &g_array_index(list->rows, Row, i);

        assert_key(r->vendor_id, r->product_id, r->brand, r->name);
        g_hash_table_add(vendors, GUINT_TO_POINTER(r->vendor_id));
        expected += r->any_product ? 0x10000 : 1;
    }
    g_hash_table_iter_init(&it, vendors);
    while (g_hash_table_iter_next(&it, &key, NULL)) {
        guint16 v = (guint16)GPOINTER_TO_UINT(key);
        const char *generic = g_hash_table_lookup(list->generic, GUINT_TO_POINTER(v));

        for (guint p = 0; p <= 0xffff; p++) {
            const Row *r = list_find(list, v, (guint16)p);
            const char *name = "unset";
            gboolean hit = kd_fido_ids_lookup(v, (guint16)p, &name);

            assert_int_equal(hit, r != NULL);
            if (r != NULL) {
                assert_string_equal(name, r->brand);
                found++;
            } else if (generic != NULL) {
                if (*generic == '\0')
                    assert_null(name);
                else
                    assert_string_equal(name, generic);
            } else {
                /* A vendor id of one maker: all its rows share the brand, and that is reported. */
                assert_non_null(name);
                assert_string_equal(name, vendor_brand(list, v));
            }
        }
        /* The vendor ids either side, when not listed themselves, are unknown. */
        if (!g_hash_table_contains(vendors, GUINT_TO_POINTER((guint16)(v + 1))))
            assert_not_key((guint16)(v + 1), 0x0000, NULL);
        if (!g_hash_table_contains(vendors, GUINT_TO_POINTER((guint16)(v - 1))))
            assert_not_key((guint16)(v - 1), 0xffff, NULL);
    }
    assert_int_equal(found, expected);
    g_hash_table_unref(vendors);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_keys),        cmocka_unit_test(test_wildcard_vendor),
        cmocka_unit_test(test_unlisted_products), cmocka_unit_test(test_edges),
        cmocka_unit_test(test_whole_list),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
