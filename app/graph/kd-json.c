/* kd-json: tolerant accessors for Graph's JSON: a member that is missing or of the wrong type
 * reads as absent, so a surprising body never crashes keydesk (it fails a check instead). */
#include "graph/kd-json.h"

JsonNode *
kd_json_member(JsonObject *o, const char *name)
{
    return o != NULL && json_object_has_member(o, name) ? json_object_get_member(o, name) : NULL;
}

const char *
kd_json_get_string(JsonObject *o, const char *name)
{
    JsonNode *n = kd_json_member(o, name);

    if (n == NULL || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
        return NULL;
    return json_node_get_string(n);
}

gboolean
kd_json_get_bool(JsonObject *o, const char *name, gboolean fallback)
{
    JsonNode *n = kd_json_member(o, name);

    if (n == NULL || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_BOOLEAN)
        return fallback;
    return json_node_get_boolean(n);
}

gint64
kd_json_get_int(JsonObject *o, const char *name, gint64 fallback)
{
    JsonNode *n = kd_json_member(o, name);

    if (n == NULL || !JSON_NODE_HOLDS_VALUE(n))
        return fallback;
    if (json_node_get_value_type(n) == G_TYPE_INT64)
        return json_node_get_int(n);
    if (json_node_get_value_type(n) == G_TYPE_DOUBLE)
        return (gint64)json_node_get_double(n);
    return fallback;
}

JsonObject *
kd_json_get_object(JsonObject *o, const char *name)
{
    JsonNode *n = kd_json_member(o, name);

    return n != NULL && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
}

JsonArray *
kd_json_get_array(JsonObject *o, const char *name)
{
    JsonNode *n = kd_json_member(o, name);

    return n != NULL && JSON_NODE_HOLDS_ARRAY(n) ? json_node_get_array(n) : NULL;
}
