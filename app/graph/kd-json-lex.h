/* kd-json-lex: a small strict JSON lexer for text that holds secrets. json-glib's scanner copies
 * every string through temporary buffers it frees without wiping; these functions decode a
 * string straight into a KdSecret instead, and never allocate for what they skip. Internal to
 * app/graph (kd-graph-auth parses token answers with it, kd-graph-client takes secrets out of
 * Graph answers before json-glib sees them). */
#pragma once

#include <glib.h>

#include "base/kd-secret.h"

G_BEGIN_DECLS

#define KD_JSON_MAX_DEPTH 32

typedef struct {
    const char *p;
    const char *end;
} KdJsonLexer;

typedef struct {
    KdSecret *secret; /* the decoded string goes here… */
    char *buf;        /* …or here */
    gsize len;
} KdJsonSink;

/* Skips JSON whitespace. */
void kd_json_lex_ws(KdJsonLexer *lx);
/* Skips whitespace, then consumes @c if it is next. */
gboolean kd_json_lex_char(KdJsonLexer *lx, char c);
/* At an opening quote: the raw (still escaped) text between the quotes; checks every escape. */
gboolean kd_json_lex_string(KdJsonLexer *lx, const char **raw, gsize *raw_len);
/* Decodes a string kd_json_lex_string() accepted into @sink (never longer than the raw text;
 * no NUL, no lone surrogate). */
gboolean kd_json_unescape(const char *raw, gsize n, KdJsonSink *sink);
gboolean kd_json_lex_word(KdJsonLexer *lx, const char *word);
/* A JSON number; *@integral and *@value when it is an integer that fits in 64 bits. */
gboolean kd_json_lex_number(KdJsonLexer *lx, gint64 *value, gboolean *integral);
/* Skips one value of any kind, at most KD_JSON_MAX_DEPTH deep. */
gboolean kd_json_lex_skip(KdJsonLexer *lx, int depth);

/*
 * @data (@len bytes, not necessarily NUL-terminated) must be exactly one JSON object. When it
 * has a member @name (top level) whose value is a string, the decoded string goes into a new
 * KdSecret (*@secret) and the value's text in @data is overwritten in place with `""` and
 * spaces, so @data stays valid JSON that no longer holds the secret. *@secret is NULL when the
 * member is absent or not a string. FALSE (and @data untouched, *@secret NULL) when @data is
 * not one well-formed object or repeats @name.
 */
gboolean kd_json_take_secret(char *data, gsize len, const char *name, KdSecret **secret);

G_END_DECLS
