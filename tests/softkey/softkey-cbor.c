/* softkey-cbor.c: libcbor helpers for the soft key: shortest-form integers and map look-ups.
 *
 * libfido2 1.12 rejects any reply whose maps are not CTAP2-canonical (ctap2.md §2.2), and
 * libcbor keeps the width the item was built with, so every integer goes through
 * sk_cbor_uint()/sk_cbor_int(), which pick the shortest encoding.
 */
#include <string.h>

#include "softkey-private.h"

cbor_item_t *
sk_cbor_uint(uint64_t v)
{
    if (v <= UINT8_MAX)
        return cbor_build_uint8((uint8_t)v);
    if (v <= UINT16_MAX)
        return cbor_build_uint16((uint16_t)v);
    if (v <= UINT32_MAX)
        return cbor_build_uint32((uint32_t)v);
    return cbor_build_uint64(v);
}

cbor_item_t *
sk_cbor_int(int64_t v)
{
    uint64_t n;

    if (v >= 0)
        return sk_cbor_uint((uint64_t)v);
    n = (uint64_t)(-1 - v);
    if (n <= UINT8_MAX)
        return cbor_build_negint8((uint8_t)n);
    if (n <= UINT16_MAX)
        return cbor_build_negint16((uint16_t)n);
    if (n <= UINT32_MAX)
        return cbor_build_negint32((uint32_t)n);
    return cbor_build_negint64(n);
}

/* Adds k → v to @map and drops the caller's references (the map keeps its own). */
bool
sk_cbor_put(cbor_item_t *map, cbor_item_t *k, cbor_item_t *v)
{
    bool ok = false;

    if (k != NULL && v != NULL)
        ok = cbor_map_add(map, (struct cbor_pair){.key = k, .value = v});
    if (k != NULL)
        cbor_decref(&k);
    if (v != NULL)
        cbor_decref(&v);
    return ok;
}

bool
sk_cbor_get_u64(const cbor_item_t *item, uint64_t *v)
{
    if (item == NULL || !cbor_isa_uint(item))
        return false;
    *v = cbor_get_int(item);
    return true;
}

bool
sk_cbor_get_i64(const cbor_item_t *item, int64_t *v)
{
    uint64_t n;

    if (item == NULL)
        return false;
    if (cbor_isa_uint(item)) {
        n = cbor_get_int(item);
        if (n > INT64_MAX)
            return false;
        *v = (int64_t)n;
        return true;
    }
    if (cbor_isa_negint(item)) {
        n = cbor_get_int(item);
        if (n > INT64_MAX)
            return false;
        *v = -1 - (int64_t)n;
        return true;
    }
    return false;
}

cbor_item_t *
sk_cbor_get(const cbor_item_t *map, uint64_t key)
{
    struct cbor_pair *p;
    size_t n;

    if (map == NULL || !cbor_isa_map(map))
        return NULL;
    p = cbor_map_handle(map);
    n = cbor_map_size(map);
    for (size_t i = 0; i < n; i++) {
        if (cbor_isa_uint(p[i].key) && cbor_get_int(p[i].key) == key)
            return p[i].value;
    }
    return NULL;
}

cbor_item_t *
sk_cbor_get_str(const cbor_item_t *map, const char *key)
{
    struct cbor_pair *p;
    size_t n, klen = strlen(key);

    if (map == NULL || !cbor_isa_map(map))
        return NULL;
    p = cbor_map_handle(map);
    n = cbor_map_size(map);
    for (size_t i = 0; i < n; i++) {
        if (cbor_isa_string(p[i].key) && cbor_string_is_definite(p[i].key) &&
            cbor_string_length(p[i].key) == klen &&
            memcmp(cbor_string_handle(p[i].key), key, klen) == 0)
            return p[i].value;
    }
    return NULL;
}

char *
sk_cbor_strdup(const cbor_item_t *item)
{
    if (item == NULL || !cbor_isa_string(item) || !cbor_string_is_definite(item))
        return NULL;
    return g_strndup((const char *)cbor_string_handle(item), cbor_string_length(item));
}

GByteArray *
sk_cbor_reply(uint8_t status, cbor_item_t *map)
{
    GByteArray *out = g_byte_array_new();
    unsigned char *buf = NULL;
    size_t alloc = 0, len;

    g_byte_array_append(out, &status, 1);
    if (map != NULL) {
        len = cbor_serialize_alloc(map, &buf, &alloc);
        if (len == 0) {
            out->data[0] = SK_ERR_OTHER;
        } else {
            g_byte_array_append(out, buf, (guint)len);
        }
        free(buf);
    }
    return out;
}
