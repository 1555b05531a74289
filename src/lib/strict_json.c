/* Strict JSON parsing: limits, UTF-8, grammar and duplicate keys, then json-c */
#include <assert.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strict_json.h"

#define SAFE_NAME_MAX 32
#define PATH_MAX_LEN 96

/* One object of the raw text, in document order (order of its '{'). */
struct scan_obj {
	size_t start;                    /* offset of its '{' */
	size_t nkeys;                    /* members as written, duplicates included */
};

struct scan {
	const unsigned char *p;
	size_t len;
	size_t pos;
	struct scan_obj *objs;           /* NULL: do not record objects */
	size_t nobjs;
	size_t cap;
	struct paytx_fault *fault;
};

/* Tree walk that compares json-c's objects with the recorded ones. */
struct walk {
	const struct scan_obj *objs;
	size_t nobjs;
	size_t next;                     /* preorder index of the next object */
	const char *opaque;
	const unsigned char *body;
	size_t len;
	char path[PATH_MAX_LEN];
	struct paytx_fault *fault;
};

__attribute__((format(printf, 3, 4)))
static int fail(struct paytx_fault *fault, int err, const char *fmt, ...)
{
	va_list ap;

	fault->err = err;
	va_start(ap, fmt);
	vsnprintf(fault->text, sizeof(fault->text), fmt, ap);
	va_end(ap);
	return err;
}

static int syntax(struct scan *s, const char *what)
{
	return fail(s->fault, PAYTX_EJSON, "malformed JSON at byte %zu: %s", s->pos, what);
}

/* Length of the UTF-8 sequence at p (n bytes left), 0 if invalid. Overlong
 * forms, UTF-16 surrogates and code points above U+10FFFF are invalid. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t more;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		more = 1;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		more = 2;
		lo = p[0] == 0xe0 ? 0xa0 : lo;
		hi = p[0] == 0xed ? 0x9f : hi;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		more = 3;
		lo = p[0] == 0xf0 ? 0x90 : lo;
		hi = p[0] == 0xf4 ? 0x8f : hi;
	} else {
		return 0;
	}
	if (n <= more || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i <= more; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return more + 1;
}

/* NUL bytes and bad UTF-8 anywhere; counts '{' to size the object table. */
static int check_bytes(const unsigned char *p, size_t len, size_t *nbraces,
		       struct paytx_fault *fault)
{
	size_t i = 0, n;

	*nbraces = 0;
	while (i < len) {
		if (p[i] == '\0')
			return fail(fault, PAYTX_EJSON, "malformed JSON at byte %zu: NUL byte", i);
		if (p[i] == '{')
			(*nbraces)++;
		n = utf8_seq(p + i, len - i);
		if (n == 0)
			return fail(fault, PAYTX_EUTF8, "invalid UTF-8 at byte %zu", i);
		i += n;
	}
	return 0;
}

static int peek(const struct scan *s)
{
	return s->pos < s->len ? s->p[s->pos] : -1;
}

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static bool is_ws(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool only_ws(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_ws(p[i]))
			return false;
	return true;
}

static void skip_ws(struct scan *s)
{
	while (is_ws(peek(s)))
		s->pos++;
}

static int hex4(struct scan *s, unsigned *out)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		int c = peek(s);

		if (is_digit(c))
			v = v * 16 + (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v * 16 + (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v = v * 16 + (unsigned)(c - 'A' + 10);
		else
			return syntax(s, "bad \\u escape");
		s->pos++;
	}
	*out = v;
	return 0;
}

/* After the backslash. Surrogate escapes must come as a proper pair. */
static int scan_escape(struct scan *s, bool key)
{
	size_t at = s->pos - 1;
	int c = peek(s);
	unsigned u, low;
	int err;

	if (c > 0 && strchr("\"\\/bfnrt", c)) {
		s->pos++;
		return 0;
	}
	if (c != 'u')
		return syntax(s, "bad escape");
	s->pos++;
	if ((err = hex4(s, &u)) < 0)
		return err;
	if (u == 0 && key)
		return fail(s->fault, PAYTX_EINVAL, "object key at byte %zu contains NUL", at);
	if (u >= 0xdc00 && u <= 0xdfff)
		return fail(s->fault, PAYTX_EUTF8, "unpaired surrogate escape at byte %zu", at);
	if (u < 0xd800 || u > 0xdbff)
		return 0;
	if (peek(s) != '\\' || s->pos + 1 >= s->len || s->p[s->pos + 1] != 'u')
		return fail(s->fault, PAYTX_EUTF8, "unpaired surrogate escape at byte %zu", at);
	s->pos += 2;
	if ((err = hex4(s, &low)) < 0)
		return err;
	if (low < 0xdc00 || low > 0xdfff)
		return fail(s->fault, PAYTX_EUTF8, "unpaired surrogate escape at byte %zu", at);
	return 0;
}

static int scan_string(struct scan *s, bool key)
{
	int c, err;

	assert(peek(s) == '"');
	s->pos++;
	for (;;) {
		c = peek(s);
		if (c < 0)
			return syntax(s, "unterminated string");
		if (c == '"')
			break;
		if (c < 0x20)
			return syntax(s, "control character in string");
		s->pos++;
		if (c == '\\' && (err = scan_escape(s, key)) < 0)
			return err;
	}
	s->pos++;
	return 0;
}

static int scan_digits(struct scan *s)
{
	if (!is_digit(peek(s)))
		return syntax(s, "bad number");
	while (is_digit(peek(s)))
		s->pos++;
	return 0;
}

static int scan_number(struct scan *s)
{
	int err;

	if (peek(s) == '-')
		s->pos++;
	if (peek(s) == '0')
		s->pos++;
	else if ((err = scan_digits(s)) < 0)
		return err;
	if (peek(s) == '.') {
		s->pos++;
		if ((err = scan_digits(s)) < 0)
			return err;
	}
	if (peek(s) == 'e' || peek(s) == 'E') {
		s->pos++;
		if (peek(s) == '+' || peek(s) == '-')
			s->pos++;
		if ((err = scan_digits(s)) < 0)
			return err;
	}
	return 0;
}

static int scan_literal(struct scan *s, const char *word)
{
	size_t n = strlen(word);

	if (s->len - s->pos < n || memcmp(s->p + s->pos, word, n) != 0)
		return syntax(s, "expected a value");
	s->pos += n;
	return 0;
}

static int scan_value(struct scan *s, unsigned depth);

/* Expect c after optional whitespace, and skip whitespace after it. */
static int expect(struct scan *s, char c, const char *what)
{
	skip_ws(s);
	if (peek(s) != c)
		return syntax(s, what);
	s->pos++;
	skip_ws(s);
	return 0;
}

static int scan_object(struct scan *s, unsigned depth)
{
	struct scan_obj *obj = NULL;
	int err;

	if (s->objs) {
		assert(s->nobjs < s->cap);
		obj = &s->objs[s->nobjs++];
		obj->start = s->pos;
		obj->nkeys = 0;
	}
	if ((err = expect(s, '{', "expected '{'")) < 0)
		return err;
	if (peek(s) == '}') {
		s->pos++;
		return 0;
	}
	for (;;) {
		if (peek(s) != '"')
			return syntax(s, "expected a key");
		if ((err = scan_string(s, true)) < 0 ||
		    (err = expect(s, ':', "expected ':'")) < 0 ||
		    (err = scan_value(s, depth + 1)) < 0)
			return err;
		if (obj)
			obj->nkeys++;
		skip_ws(s);
		if (peek(s) == '}')
			break;
		if ((err = expect(s, ',', "expected ',' or '}'")) < 0)
			return err;
	}
	s->pos++;
	return 0;
}

static int scan_array(struct scan *s, unsigned depth)
{
	int err;

	if ((err = expect(s, '[', "expected '['")) < 0)
		return err;
	if (peek(s) == ']') {
		s->pos++;
		return 0;
	}
	for (;;) {
		if ((err = scan_value(s, depth + 1)) < 0)
			return err;
		skip_ws(s);
		if (peek(s) == ']')
			break;
		if ((err = expect(s, ',', "expected ',' or ']'")) < 0)
			return err;
	}
	s->pos++;
	return 0;
}

/* depth counts values: the top-level value is at depth 1, as in json-c. */
static int scan_value(struct scan *s, unsigned depth)
{
	int c = peek(s);

	if (depth > PAYTX_JSON_DEPTH_MAX)
		return fail(s->fault, PAYTX_EJSON, "nesting too deep: more than %d levels",
			    PAYTX_JSON_DEPTH_MAX);
	if (c == '{')
		return scan_object(s, depth);
	if (c == '[')
		return scan_array(s, depth);
	if (c == '"')
		return scan_string(s, false);
	if (c == '-' || is_digit(c))
		return scan_number(s);
	if (c == 't')
		return scan_literal(s, "true");
	if (c == 'f')
		return scan_literal(s, "false");
	if (c == 'n')
		return scan_literal(s, "null");
	return syntax(s, c < 0 ? "unexpected end" : "expected a value");
}

/* Whole-document grammar check; records every object into s->objs. */
static int scan_document(struct scan *s)
{
	int err;

	skip_ws(s);
	if (s->pos == s->len)
		return syntax(s, "empty body");
	if ((err = scan_value(s, 1)) < 0)
		return err;
	skip_ws(s);
	if (s->pos != s->len)
		return syntax(s, "trailing data after the JSON value");
	return 0;
}

/* Decode the raw key (n bytes at start, quotes included) with json-c and
 * add it to set: 0 if new, 1 if already there (its name, if safe, in name),
 * PAYTX_ENOMEM. */
static int key_seen(struct json_object *set, const unsigned char *start, size_t n,
		    char *name, size_t name_size)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *key;
	const char *k;
	int ret = PAYTX_ENOMEM;

	if (!tok)
		return PAYTX_ENOMEM;
	key = json_tokener_parse_ex(tok, (const char *)start, (int)n);
	json_tokener_free(tok);
	if (!key)
		return PAYTX_ENOMEM; /* the scan accepted it, so json-c ran out of memory */
	k = json_object_get_string(key);
	if (json_object_object_get_ex(set, k, NULL)) {
		snprintf(name, name_size, "%s", strict_json_safe_name(k) ? k : "");
		ret = 1;
	} else if (json_object_object_add(set, k, NULL) == 0) {
		ret = 0;
	}
	json_object_put(key);
	return ret;
}

/* Re-read the object at raw offset start to find which key repeats. */
static int find_dup_key(const unsigned char *body, size_t len, size_t start,
			char *name, size_t name_size)
{
	struct paytx_fault scratch;
	struct scan s = { .p = body, .len = len, .pos = start + 1, .fault = &scratch };
	struct json_object *set = json_object_new_object();
	size_t key_start;
	int ret = 0;

	name[0] = '\0';
	if (!set)
		return PAYTX_ENOMEM;
	skip_ws(&s);
	while (ret == 0 && peek(&s) == '"') {
		key_start = s.pos;
		if (scan_string(&s, true) < 0)
			break;
		ret = key_seen(set, body + key_start, s.pos - key_start, name, name_size);
		if (ret != 0 || expect(&s, ':', "") < 0 || scan_value(&s, 1) < 0)
			break;
		skip_ws(&s);
		if (peek(&s) == ',')
			s.pos++;
		skip_ws(&s);
	}
	json_object_put(set);
	return ret;
}

static int report_dup(struct walk *w, size_t idx, bool hidden)
{
	char name[SAFE_NAME_MAX + 1];
	const char *sep = w->path[0] ? ": " : "";
	int ret = find_dup_key(w->body, w->len, w->objs[idx].start, name, sizeof(name));

	if (ret == PAYTX_ENOMEM)
		return fail(w->fault, PAYTX_ENOMEM, "out of memory");
	if (hidden || !name[0])
		return fail(w->fault, PAYTX_EJSON, "%s%sduplicate key", w->path, sep);
	return fail(w->fault, PAYTX_EJSON, "%s%sduplicate key '%s'", w->path, sep, name);
}

static int walk_value(struct walk *w, struct json_object *v, unsigned depth, bool hidden);

/* Walk a member (key) or element (index) at depth; names it in the path
 * unless its parent is hidden. The opaque top-level member hides below. */
static int walk_child(struct walk *w, struct json_object *v, unsigned depth, bool hidden,
		      const char *key, size_t index)
{
	size_t n = strlen(w->path);
	bool hide = hidden || (key && depth == 2 && w->opaque && strcmp(key, w->opaque) == 0);
	int err;

	if (!hidden && key)
		snprintf(w->path + n, sizeof(w->path) - n, "%s%s", n ? "." : "",
			 strict_json_safe_name(key) ? key : "*");
	else if (!hidden)
		snprintf(w->path + n, sizeof(w->path) - n, "[%zu]", index);
	err = walk_value(w, v, depth, hide);
	w->path[n] = '\0';
	return err;
}

/* Preorder, like the scan: until the first object that lost a key, both
 * sequences of objects are the same, so that object has the same index. */
static int walk_value(struct walk *w, struct json_object *v, unsigned depth, bool hidden)
{
	size_t idx, n;
	int err;

	if (json_object_is_type(v, json_type_array)) {
		n = json_object_array_length(v);
		for (size_t i = 0; i < n; i++)
			if ((err = walk_child(w, json_object_array_get_idx(v, i), depth + 1,
					      hidden, NULL, i)) < 0)
				return err;
		return 0;
	}
	if (!json_object_is_type(v, json_type_object))
		return 0;
	idx = w->next++;
	assert(idx < w->nobjs);
	if ((size_t)json_object_object_length(v) != w->objs[idx].nkeys)
		return report_dup(w, idx, hidden);
	json_object_object_foreach(v, key, val) {
		if ((err = walk_child(w, val, depth + 1, hidden, key, 0)) < 0)
			return err;
	}
	return 0;
}

static int parse_tree(const char *body, size_t len, struct json_object **out,
		      struct paytx_fault *fault)
{
	struct json_tokener *tok = json_tokener_new_ex(PAYTX_JSON_DEPTH_MAX);
	enum json_tokener_error jerr;

	if (!tok)
		return fail(fault, PAYTX_ENOMEM, "out of memory");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	*out = json_tokener_parse_ex(tok, body, (int)len);
	jerr = json_tokener_get_error(tok);
	json_tokener_free(tok);
	if (*out && jerr == json_tokener_success)
		return 0;
	json_object_put(*out);
	*out = NULL;
	/* The scan accepts only what json-c accepts; this is a backstop. */
	if (jerr == json_tokener_error_depth)
		return fail(fault, PAYTX_EJSON, "nesting too deep: more than %d levels",
			    PAYTX_JSON_DEPTH_MAX);
	return fail(fault, PAYTX_EJSON, "malformed JSON: %s", json_tokener_error_desc(jerr));
}

bool strict_json_safe_name(const char *name)
{
	size_t n = 0;

	for (; name[n]; n++) {
		char c = name[n];

		if (n == SAFE_NAME_MAX ||
		    !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) ||
		      c == '_' || c == '-'))
			return false;
	}
	return n > 0;
}

int strict_json_parse(const char *body, size_t len, const char *opaque,
		      struct json_object **out, struct paytx_fault *fault)
{
	struct scan s = { .p = (const unsigned char *)body, .len = len, .fault = fault };
	struct walk w = { .opaque = opaque, .body = s.p, .len = len, .fault = fault };
	size_t nbraces;
	int err;

	*out = NULL;
	if (len > PAYTX_MESSAGE_MAX)
		return fail(fault, PAYTX_ETOOBIG, "message: %zu bytes, more than %d", len,
			    PAYTX_MESSAGE_MAX);
	if (!body && len > 0)
		return fail(fault, PAYTX_EINVAL, "message: no body");
	if ((err = check_bytes(s.p, len, &nbraces, fault)) < 0)
		return err;
	s.cap = nbraces;
	s.objs = malloc((nbraces ? nbraces : 1) * sizeof(*s.objs));
	if (!s.objs)
		return fail(fault, PAYTX_ENOMEM, "out of memory");
	if ((err = scan_document(&s)) < 0)
		goto err_objs;
	if (s.nobjs == 0 || !only_ws(s.p, s.objs[0].start)) {
		err = fail(fault, PAYTX_ETYPE, "message: must be a JSON object");
		goto err_objs;
	}
	if ((err = parse_tree(body, len, out, fault)) < 0)
		goto err_objs;
	w.objs = s.objs;
	w.nobjs = s.nobjs;
	if ((err = walk_value(&w, *out, 1, false)) < 0)
		goto err_tree;
	free(s.objs);
	return 0;

err_tree:
	json_object_put(*out);
	*out = NULL;
err_objs:
	free(s.objs);
	return err;
}
