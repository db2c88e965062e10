/* kd-fido-ids: see kd-fido-ids.h. The lookup is written here; the tables come from
 * kd-fido-ids-table.inc, which scripts/gen-fido-ids writes into the build directory from
 * hw/data/fido-usb-ids.tsv (hw/fido-ids.cmake), sorted by vendor id, then product id. */
#include "hw/kd-fido-ids.h"

struct kd_fido_id {
    guint16 vendor_id;
    guint16 product_id;   /* 0 when any_product */
    gboolean any_product; /* the vendor id is used for FIDO keys only; such a vendor has one row */
    const char *brand;
    const char *name;
};

struct kd_fido_vendor {
    guint16 vendor_id;
    const char *name; /* NULL for an id shared by unrelated makers */
};

#include "kd-fido-ids-table.inc"

static guint32
id_key(guint16 vendor_id, guint16 product_id)
{
    return (guint32)vendor_id << 16 | product_id;
}

/* Binary search for the row of @vendor_id:@product_id. A vendor's "*" row sorts where its product
 * 0000 would, so when there is no exact row, the row just before the insertion point is the only
 * one that can be that vendor's "*". */
static const struct kd_fido_id *
find_id(guint16 vendor_id, guint16 product_id)
{
    const guint32 key = id_key(vendor_id, product_id);
    gsize lo = 0, hi = G_N_ELEMENTS(kd_fido_ids);

    while (lo < hi) {
        gsize mid = lo + (hi - lo) / 2;

        if (id_key(kd_fido_ids[mid].vendor_id, kd_fido_ids[mid].product_id) < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* lo: the first row whose key is >= key. */
    if (lo < G_N_ELEMENTS(kd_fido_ids) && kd_fido_ids[lo].vendor_id == vendor_id &&
        (kd_fido_ids[lo].any_product || kd_fido_ids[lo].product_id == product_id))
        return &kd_fido_ids[lo];
    if (lo > 0 && kd_fido_ids[lo - 1].vendor_id == vendor_id && kd_fido_ids[lo - 1].any_product)
        return &kd_fido_ids[lo - 1];
    return NULL;
}

static const struct kd_fido_vendor *
find_vendor(guint16 vendor_id)
{
    gsize lo = 0, hi = G_N_ELEMENTS(kd_fido_vendors);

    while (lo < hi) {
        gsize mid = lo + (hi - lo) / 2;

        if (kd_fido_vendors[mid].vendor_id == vendor_id)
            return &kd_fido_vendors[mid];
        if (kd_fido_vendors[mid].vendor_id < vendor_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

gboolean
kd_fido_ids_lookup(guint16 vendor_id, guint16 product_id, const char **vendor_name)
{
    const struct kd_fido_id *id = find_id(vendor_id, product_id);

    if (vendor_name != NULL) {
        const struct kd_fido_vendor *vendor = id != NULL ? NULL : find_vendor(vendor_id);

        *vendor_name = id != NULL ? id->brand : vendor != NULL ? vendor->name : NULL;
    }
    return id != NULL;
}

const char *
kd_fido_ids_product_name(guint16 vendor_id, guint16 product_id)
{
    const struct kd_fido_id *id = find_id(vendor_id, product_id);

    return id != NULL ? id->name : NULL;
}
