/* test-json-lex: taking a secret out of a JSON answer before json-glib sees it (kd-json-lex.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <json-glib/json-glib.h>

#include "graph/kd-json-lex.h"

/* Takes @name out of @text; checks what is left still parses, with "" in the secret's place
 * and every other member unchanged. Returns the secret (or NULL). */
static KdSecret *
take(const char *text, const char *name)
{
    g_autofree char *buf = g_strdup(text);
    gsize len = strlen(buf);
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autoptr(JsonParser) original = json_parser_new();
    KdSecret *secret = NULL;
    JsonObject *after, *before;
    GList *members;

    assert_true(kd_json_take_secret(buf, len, name, &secret));
    assert_int_equal(strlen(buf), len); /* same length: overwritten in place */
    assert_true(json_parser_load_from_data(parser, buf, -1, NULL));
    assert_true(json_parser_load_from_data(original, text, -1, NULL));
    after = json_node_get_object(json_parser_get_root(parser));
    before = json_node_get_object(json_parser_get_root(original));
    members = json_object_get_members(before);
    for (GList *m = members; m != NULL; m = m->next) {
        JsonNode *a = json_object_get_member(after, m->data);
        JsonNode *b = json_object_get_member(before, m->data);
        assert_non_null(a);
        if (secret != NULL && strcmp(m->data, name) == 0)
            assert_string_equal(json_node_get_string(a), "");
        else
            assert_true(json_node_equal(a, b));
    }
    g_list_free(members);
    if (secret != NULL)
        assert_null(strstr(buf, kd_secret_get_string(secret)));
    return secret;
}

static void
test_plain(void **state)
{
    g_autoptr(KdSecret) s =
        take("{\"id\": \"6f1d\", \"temporaryAccessPass\": \"Abc-123!xyz\", \"isUsable\": true, "
             "\"lifetimeInMinutes\": 60}",
             "temporaryAccessPass");

    assert_non_null(s);
    assert_string_equal(kd_secret_get_string(s), "Abc-123!xyz");
}

static void
test_escapes(void **state)
{
    /* Quotes, backslashes, \u escapes and a surrogate pair decode into the secret. */
    g_autoptr(KdSecret) s = take(
        "{\"temporaryAccessPass\":\"a\\\"b\\\\c\\u00e9\\ud83d\\ude00\\/\",\"x\":[1,{\"y\":null}]}",
        "temporaryAccessPass");

    assert_non_null(s);
    assert_string_equal(kd_secret_get_string(s), "a\"b\\c\xc3\xa9\xf0\x9f\x98\x80/");
}

static void
test_absent_or_not_a_string(void **state)
{
    assert_null(take("{\"id\": \"1\"}", "temporaryAccessPass"));
    assert_null(take("{}", "temporaryAccessPass"));
    assert_null(take("{\"temporaryAccessPass\": null}", "temporaryAccessPass"));
    assert_null(take("{\"temporaryAccessPass\": 12345}", "temporaryAccessPass"));
    /* Only a top-level member counts. */
    assert_null(take("{\"inner\": {\"temporaryAccessPass\": \"nested\"}}", "temporaryAccessPass"));
}

static void
test_refused(void **state)
{
    const char *bad[] = {
        "",
        "[]",
        "\"temporaryAccessPass\"",
        "{\"temporaryAccessPass\": \"a\", \"temporaryAccessPass\": \"b\"}", /* repeated */
        "{\"temporaryAccessPass\": \"open",
        "{\"temporaryAccessPass\": \"a\"} trailing",
        "{\"temporaryAccessPass\": \"bad \\x escape\"}",
        "{\"temporaryAccessPass\": \"nul \\u0000\"}",
        "{\"temporaryAccessPass\": \"lone \\udc00\"}",
        "{\"a\": [1, 2,]}",
        "{\"a\" 1}",
    };

    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autofree char *buf = g_strdup(bad[i]);
        KdSecret *s = (KdSecret *)&s;

        if (kd_json_take_secret(buf, strlen(buf), "temporaryAccessPass", &s))
            fail_msg("accepted: %s", bad[i]);
        assert_null(s);
        assert_string_equal(buf, bad[i]); /* untouched */
    }
}

static void
test_deep_nesting_refused(void **state)
{
    GString *text = g_string_new("{\"a\": ");

    for (int i = 0; i < 100; i++)
        g_string_append_c(text, '[');
    for (int i = 0; i < 100; i++)
        g_string_append_c(text, ']');
    g_string_append(text, ", \"temporaryAccessPass\": \"x\"}");
    {
        KdSecret *s = NULL;
        assert_false(kd_json_take_secret(text->str, text->len, "temporaryAccessPass", &s));
        assert_null(s);
    }
    g_string_free(text, TRUE);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_absent_or_not_a_string),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_deep_nesting_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
