/* Strict parsing of JSON message bodies, in front of json-c.
 *
 * json-c alone accepts what a payment API must refuse: duplicate keys (it
 * silently keeps the last value), overlong and surrogate UTF-8 sequences,
 * raw control characters in strings, Infinity and NaN. strict_json_parse()
 * checks the raw bytes against RFC 8259 and the paytx limits first, lets
 * json-c build the tree, then verifies that no object lost a key. Fault
 * texts name positions and field names, never values. Reentrant; no global
 * state.
 */
#ifndef PAYTX_STRICT_JSON_H
#define PAYTX_STRICT_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "paytx/message.h"

/* Parse body (len bytes, borrowed, need not be NUL-terminated) into a JSON
 * object. On success returns 0 and *out is a new reference the caller
 * releases with json_object_put. On failure returns PAYTX_ETOOBIG,
 * PAYTX_EUTF8, PAYTX_EJSON, PAYTX_ETYPE (top level not an object),
 * PAYTX_EINVAL (a key containing NUL) or PAYTX_ENOMEM, fills *fault and
 * sets *out to NULL. The content of the top-level member named opaque
 * (borrowed, may be NULL) is private: fault texts never name its keys. */
int strict_json_parse(const char *body, size_t len, const char *opaque,
		      struct json_object **out, struct paytx_fault *fault) PAYTX_MUST_CHECK;

/* May this object key appear in a fault text? True for short names made of
 * [A-Za-z0-9_-], which cannot carry values or break a log line. */
bool strict_json_safe_name(const char *name);

#endif
