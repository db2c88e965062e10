/* kd-config-text: the text side of checking keydesk.conf: values made safe to print, "did you
 * mean" suggestions, and the syntax of GUIDs, DNS names, host:port, directory-extension names
 * and shell arguments. Private to core/kd-config.c (split out of it to keep the schema and
 * its checks readable); pure functions, no state. */
#pragma once

#include <glib.h>
#include <sys/types.h>

G_BEGIN_DECLS

/* A value as it may appear in a problem line: control, bidi and format characters escaped,
 * invalid UTF-8 shown as \xNN, at most 200 characters. */
char *kd_cfg_printable(const char *s);
/* kd_cfg_printable() of a URL whose password (a proxy's) is shown as "****". */
char *kd_cfg_printable_url(const char *url);
/* The candidate closest to @word (case and '_'/'-' folded, at most 2 edits), or NULL. */
const char *kd_cfg_closest(const char *word, const char *const *candidates);
/* " (did you mean 'x'?)" or "": ready to paste into a problem. */
char *kd_cfg_suggestion(const char *word, const char *const *candidates);
/* " (a '#' comment must be on a line of its own)" when @text holds a '#', else "". */
const char *kd_cfg_comment_hint(const char *text);

gboolean kd_cfg_strv_has(const char *const *v, const char *s);
/* "PREFIXaSUFFIX, PREFIXbSUFFIX" */
char *kd_cfg_join_strv(const char *const *v, const char *prefix, const char *suffix);
gboolean kd_cfg_has_control(const char *s);

gboolean kd_cfg_is_guid(const char *s);
gboolean kd_cfg_is_nil_guid(const char *s);
/* An LDH host name (with at least one dot when @need_dot). */
gboolean kd_cfg_is_dns_name(const char *s, gboolean need_dot);
/* Splits "host[:port]" or "[IPv6][:port]": NULL on success, with *@host lower-case (IPv6
 * keeps its brackets) and *@port 0 when none was given; otherwise why it is wrong. */
char *kd_cfg_parse_host_port(const char *s, char **host, guint *port);
/* After host[:port]: NULL when nothing or a lone "/" follows, else the path/query/fragment
 * that keydesk would silently drop. */
const char *kd_cfg_url_tail(const char *rest);
/* extension_<32 lower-case hex digits>_<name> */
gboolean kd_cfg_is_extension_name(const char *s);

/* "a directory", "a socket", … for a stat() mode. */
const char *kd_cfg_file_type_name(mode_t mode);
/* @path for a shell command in a hint, quoted only when needed ("chmod 600 /path"). */
char *kd_cfg_shell_arg(const char *path);

G_END_DECLS
