/* kd-json: tolerant accessors for Graph's JSON: a member that is missing or of the wrong type
 * reads as absent, so a surprising body never crashes keydesk (it fails a check instead). */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* @o may be NULL. */
JsonNode *kd_json_member(JsonObject *o, const char *name);
const char *kd_json_get_string(JsonObject *o, const char *name);
gboolean kd_json_get_bool(JsonObject *o, const char *name, gboolean fallback);
/* Integers, and doubles truncated (JSON numbers may arrive either way). */
gint64 kd_json_get_int(JsonObject *o, const char *name, gint64 fallback);
JsonObject *kd_json_get_object(JsonObject *o, const char *name);
JsonArray *kd_json_get_array(JsonObject *o, const char *name);

G_END_DECLS
