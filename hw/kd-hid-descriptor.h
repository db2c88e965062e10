/* kd-hid-descriptor: just enough of a HID report-descriptor parser to tell a FIDO (CTAPHID)
 * interface from a keyboard, and to learn its report sizes. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define KD_HID_USAGE_PAGE_FIDO 0xf1d0 /* FIDO Alliance usage page */
#define KD_HID_USAGE_FIDO_U2F  0x01   /* "U2F Authenticator Device" (CTAPHID) */

typedef struct {
    gboolean fido;        /* a top-level collection has usage page 0xF1D0, usage 0x01 */
    gsize in_report_len;  /* bytes in that collection's input report (64 on every key) */
    gsize out_report_len; /* bytes in its output report */
} KdHidInfo;

/* Parses @len bytes of @data. Returns FALSE (and leaves *@info zeroed) when the descriptor is
 * malformed: a truncated item, an End Collection or Pop without its opening item, nesting or
 * Push deeper than the parser supports, or a collection left open at the end. A descriptor
 * that parses but has no FIDO collection returns TRUE with info->fido FALSE. When several
 * collections are FIDO, the first one's sizes are returned. */
gboolean kd_hid_descriptor_parse(const guint8 *data, gsize len, KdHidInfo *info);

G_END_DECLS
