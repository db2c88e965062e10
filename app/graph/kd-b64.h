/* kd-b64: base64 and base64url for WebAuthn and Graph, with the lenient decoder Graph's ids need.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Standard base64 (RFC 4648 §4, "+/"), padded with "=". Never NULL (an empty string for 0
 * bytes). */
char *kd_b64_encode(const void *data, gsize len);

/* base64url (RFC 4648 §5, "-_"), no padding: what Graph expects for publicKeyCredential.id,
 * clientDataJSON and attestationObject, and what clientDataJSON.challenge must be. */
char *kd_b64url_encode(const void *data, gsize len);

/*
 * Lenient decoding (reference §2.2, §12.3): Graph has sent excludeCredentials ids in standard
 * base64 with padding where base64url was documented, and ids with stray characters.
 *
 * Accepts both alphabets (even mixed in one string), padding absent, partial ("QQ=") or full,
 * and ASCII whitespace anywhere. Rejects (FALSE, nothing stored) any other character, data
 * after padding, too much padding, and a length no encoding can produce (4n+1 characters).
 * Unused low bits of the last character are ignored, as most decoders do.
 *
 * @len is the text's length or -1 if NUL-terminated. On success *@out (may be NULL to only
 * validate) is a new buffer of *@out_len bytes, with one extra NUL byte after the data so that
 * decoded text can be used as a string; free it with g_free().
 */
gboolean kd_b64_decode(const char *text, gssize len, guint8 **out, gsize *out_len);

/* kd_b64_decode() into GBytes; NULL when @text does not decode (or is NULL). */
GBytes *kd_b64_decode_bytes(const char *text);

G_END_DECLS
