/* kd-fido-ids: the USB vendor/product ids of FIDO security keys, for when a key's HID report
 * descriptor cannot be read. The table is generated at build time from hw/data/fido-usb-ids.tsv
 * by scripts/gen-fido-ids (which also writes the udev rules); never edit the C by hand. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Whether @vendor_id:@product_id is a known FIDO key. *@vendor_name (may be NULL) is set to
 * the vendor's name from the list ("Yubico") when the vendor is known at all. A vendor listed
 * with every product ("*") matches any product id. */
gboolean kd_fido_ids_lookup(guint16 vendor_id, guint16 product_id, const char **vendor_name);

G_END_DECLS
