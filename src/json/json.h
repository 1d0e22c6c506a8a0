/*
 * json: canonical JSON (shared/DESIGN.md §3) and the hashes built on it.
 *
 *   jansson value ──cjson_canonical()──▶ bytes ──SHA-256──▶ lowercase hex
 *
 * Canonical form: object keys sorted by Unicode code point at every level, array
 * order kept, no whitespace, strings escaping only '"', '\\' and control characters
 * (U+0000..U+001F, as \b \f \n \r \t or \u00xx), non-ASCII emitted as raw UTF-8,
 * numbers printed as RFC 8785 (ECMAScript Number::toString) prints them.
 *
 * One deliberate difference from RFC 8785: DESIGN.md orders keys by code point, RFC 8785
 * by UTF-16 code unit. The two disagree only between keys holding U+E000..U+FFFF and keys
 * holding characters past U+FFFF at the same position (U+FF01 sorts before U+1F600 here,
 * after it in RFC 8785). Integers beyond +-2^53 are printed as the double they round to,
 * as a JavaScript reader would hold them, so canonical text is meant for hashing: jansson
 * cannot read back a plain-digit number beyond int64 (1e20 prints 100000000000000000000).
 */
#ifndef CLAMPD_JSON_H
#define CLAMPD_JSON_H

#include <jansson.h>

#include "core/core.h"

#define CJSON_HEX_LEN 64 /* SHA-256 as lowercase hex, without the NUL */

/* Appends the canonical encoding of v to out. Fails with ERR_TOO_BIG past out->max,
 * ERR_INVAL for a value that has no canonical form (NaN or infinite reals) or nesting
 * deeper than CLAMPD_MAX_JSON_DEPTH, ERR_NOMEM. On failure out may hold a partial prefix. */
int cjson_canonical(const json_t *v, struct dbuf *out);

/* SHA-256 of len bytes, as 64 lowercase hex digits plus NUL in hex. */
void cjson_sha256_hex(const void *data, size_t len, char hex[CJSON_HEX_LEN + 1]);

/* Contract hash of a tool: SHA-256 hex of canonical {"description": d, "name": n,
 * "parameters": p}. description may be NULL or JSON null (hashed as ""); a description
 * that is not a string is hashed as the value it is. input_schema may be NULL or JSON
 * null (hashed as {}). name is a NUL-terminated string: a caller holding a name from
 * JSON must refuse one that contains U+0000, or "a\u0000x" would hash as "a". Returns 0
 * or a negative enum clampd_err (ERR_INVAL for a NULL name, too deep or non-finite
 * values); on failure hex is the empty string. Allocates nothing that outlives the call. */
int cjson_contract_hash(const char *name, const json_t *description, const json_t *input_schema,
                        char hex[CJSON_HEX_LEN + 1]);

/* Call binding: SHA-256 hex of canonical {"params": arguments-or-{}, "tool": name}.
 * arguments may be NULL or JSON null (hashed as {}). Same errors and rules for the tool
 * name as cjson_contract_hash(). */
int cjson_call_binding(const char *tool, const json_t *arguments, char hex[CJSON_HEX_LEN + 1]);

#endif
