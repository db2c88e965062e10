/* kd-hid-descriptor: see kd-hid-descriptor.h. Item layout: HID 1.11 §6.2.2. */
#include "hw/kd-hid-descriptor.h"

#include <string.h>

#define MAX_DEPTH 16 /* collections nested deeper than this: not a descriptor we trust */
#define MAX_PUSH  8

/* Item types (bits 2-3 of the prefix) and the tags we need (bits 4-7). */
#define TYPE_MAIN          0
#define TYPE_GLOBAL        1
#define TYPE_LOCAL         2
#define MAIN_INPUT         0x8
#define MAIN_OUTPUT        0x9
#define MAIN_COLLECTION    0xa
#define MAIN_END           0xc
#define GLOBAL_USAGE_PAGE  0x0
#define GLOBAL_REPORT_SIZE 0x7
#define GLOBAL_REPORT_CNT  0x9
#define GLOBAL_PUSH        0xa
#define GLOBAL_POP         0xb
#define LOCAL_USAGE        0x0
#define LONG_ITEM          0xfe

typedef struct {
    guint32 usage_page;
    guint32 report_size;
    guint32 report_count;
} Globals;

gboolean
kd_hid_descriptor_parse(const guint8 *data, gsize len, KdHidInfo *info)
{
    Globals g = {0}, stack[MAX_PUSH];
    guint npush = 0, depth = 0;
    guint32 usage = 0;
    gboolean have_usage = FALSE, in_fido = FALSE, found = FALSE;
    guint64 in_bits = 0, out_bits = 0;
    gsize i = 0;

    memset(info, 0, sizeof(*info));
    while (i < len) {
        guint8 prefix = data[i];
        gsize size;
        guint32 value = 0;
        guint type, tag;

        if (prefix == LONG_ITEM) {
            /* bDataSize, bLongItemTag, data: no long item is defined, skip it. */
            if (len - i < 3 || len - i - 3 < data[i + 1])
                return FALSE;
            i += 3 + (gsize)data[i + 1];
            continue;
        }
        size = (prefix & 3) == 3 ? 4 : (prefix & 3);
        if (len - i - 1 < size)
            return FALSE;
        for (gsize k = 0; k < size; k++)
            value |= (guint32)data[i + 1 + k] << (8 * k);
        type = (prefix >> 2) & 3;
        tag = prefix >> 4;
        i += 1 + size;

        if (type == TYPE_GLOBAL) {
            switch (tag) {
            case GLOBAL_USAGE_PAGE:
                g.usage_page = value;
                break;
            case GLOBAL_REPORT_SIZE:
                g.report_size = value;
                break;
            case GLOBAL_REPORT_CNT:
                g.report_count = value;
                break;
            case GLOBAL_PUSH:
                if (npush == MAX_PUSH)
                    return FALSE;
                stack[npush++] = g;
                break;
            case GLOBAL_POP:
                if (npush == 0)
                    return FALSE;
                g = stack[--npush];
                break;
            default:
                break;
            }
        } else if (type == TYPE_LOCAL) {
            /* Only the first Usage counts for a collection (later ones are alternatives). */
            if (tag == LOCAL_USAGE && !have_usage) {
                /* A 4-byte usage carries its own page in the high half (HID 1.11 §6.2.2.8). */
                usage = size == 4 ? value : (g.usage_page << 16) | (value & 0xffff);
                have_usage = TRUE;
            }
        } else if (type == TYPE_MAIN) {
            switch (tag) {
            case MAIN_COLLECTION:
                if (depth == MAX_DEPTH)
                    return FALSE;
                if (depth == 0)
                    in_fido =
                        !found && have_usage &&
                        usage == ((guint32)KD_HID_USAGE_PAGE_FIDO << 16 | KD_HID_USAGE_FIDO_U2F);
                depth++;
                break;
            case MAIN_END:
                if (depth == 0)
                    return FALSE;
                if (--depth == 0 && in_fido) {
                    found = TRUE;
                    in_fido = FALSE;
                }
                break;
            case MAIN_INPUT:
            case MAIN_OUTPUT:
                if (in_fido) {
                    guint64 bits = (guint64)g.report_size * g.report_count;
                    if (tag == MAIN_INPUT)
                        in_bits += bits;
                    else
                        out_bits += bits;
                }
                break;
            default:
                break;
            }
            have_usage = FALSE; /* locals end with every main item */
        }
    }
    if (depth != 0)
        return FALSE;
    info->fido = found;
    if (found) {
        info->in_report_len = (gsize)((in_bits + 7) / 8);
        info->out_report_len = (gsize)((out_bits + 7) / 8);
    }
    return TRUE;
}
