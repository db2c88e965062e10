/* kd-fido-ids: the USB vendor/product ids of FIDO security keys, for when a key's HID report
 * descriptor cannot be read. The table is generated at build time from hw/data/fido-usb-ids.tsv
 * by scripts/gen-fido-ids (which also writes the udev rules); never edit the C by hand. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Whether @vendor_id:@product_id is a known FIDO key. *@vendor_name (may be NULL) is set to
 * the vendor's name from the list ("Yubico") when the vendor is known at all. A vendor listed
 * with every product ("*") matches any product id.
 *
 * For a listed key the name is the brand on the key (096e:0880 is "Hypersecu", although 096e is
 * Feitian's id). For an unlisted product of a listed vendor id it is that vendor, or NULL when
 * the id is shared by unrelated makers (1209 pid.codes, 20a0, 1d50); NULL for an unknown vendor.
 * The strings are static. */
gboolean kd_fido_ids_lookup(guint16 vendor_id, guint16 product_id, const char **vendor_name);

/* The product's name from the list ("YubiKey 4/5 OTP+FIDO+CCID"), for when the key's string
 * descriptors cannot be read; NULL when kd_fido_ids_lookup() would return FALSE. Static. */
const char *kd_fido_ids_product_name(guint16 vendor_id, guint16 product_id);

G_END_DECLS
