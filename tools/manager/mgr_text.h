/*
 * mgr_text.h - a stored message as the Manager shows it: the header
 * fields decoded, the text (text/plain parts as they are, HTML turned into
 * text by the heuristic stage's converter), the attachments' names; never
 * any HTML, script or remote reference to render.
 *
 * Interface
 *   mgr_text_view() parses the raw message with the engine's MIME parser
 *   and returns {"headers":[[name,value],...], "text":"...",
 *   "text_truncated":bool, "attachments":[{"filename","type","size"}]}.
 *   mgr_text_clean() makes any bytes safe for JSON and for display.
 *
 * Diagnostics: NULL only when out of memory.
 * SECURITY: the message is attacker-controlled.  The parser is bounded
 * (mime_limits defaults); the output is capped (max_text, MGR_TEXT_MAX_HDRS
 * fields of at most MGR_TEXT_MAX_HDR bytes), valid UTF-8, without control
 * characters other than newline and tab.  The browser still has to show it
 * as text (textContent), which it is.
 */
#ifndef SLUICE_MGR_TEXT_H
#define SLUICE_MGR_TEXT_H

#include <jansson.h>
#include <stddef.h>

#define MGR_TEXT_MAX_HDRS 300
#define MGR_TEXT_MAX_HDR 8192

/* Valid UTF-8 copy of s[0..n) (bad bytes become U+FFFD; NUL, CR and
 * control characters but \n and \t dropped), at most max bytes, cut at a
 * character boundary (*cut = 1 then; cut may be NULL).  malloc'd. */
char *mgr_text_clean(const char *s, size_t n, size_t max, int *cut);

json_t *mgr_text_view(const unsigned char *raw, size_t len, size_t max_text);

#endif
