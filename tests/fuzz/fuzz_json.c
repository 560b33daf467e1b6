/* Fuzz harness for the REST request parser (net/http.h, qs_http_dispatch): the request target
 * (path segments, percent-decoding, query parameters) and the JSON body. The first byte picks
 * the method, the bytes up to the first '\n' are the target, the rest is the body. Checks:
 *   - every answer is a JSON object; an error status carries {"error":{"code","message"}};
 *   - a routed request's parameters are printable UTF-8 and survive a round trip: encoding
 *     them again into a fresh target dispatches to the same parameters;
 *   - the parsed body prints and parses back to an equal value.
 * Any violation aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/utf8.h"
#include "net/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

static const char *const methods[] = {"GET", "POST", "PUT", "DELETE"};

static unsigned h_echo(struct qs_http_request *req, json_t **body, void *arg)
{
	(void)arg;
	uint64_t n = 0;
	int nrc = qs_http_query_u64(req, "n", 1000000, &n);
	bool flag = false;
	int frc = qs_http_query_bool(req, "flag", &flag);
	*body = json_pack("{s:s?,s:s?,s:s?,s:s?,s:s?,s:i,s:I,s:i,s:b,s:O?}", "a",
			  qs_http_param(req, "a"), "b", qs_http_param(req, "b"), "q",
			  qs_http_query(req, "q"), "flagraw", qs_http_query(req, "flag"), "nraw",
			  qs_http_query(req, "n"), "nrc", nrc, "n", (json_int_t)n, "frc", frc,
			  "flag", flag, "body", qs_http_body(req));
	return *body != NULL ? 200 : 500;
}

static const struct qs_http_route routes[] = {
	{"GET", "/r/{a}", "q,n,flag", h_echo, NULL},
	{"POST", "/r/{a}/x/{b}", "q", h_echo, NULL},
	{"PUT", "/", "n", h_echo, NULL},
	{"DELETE", "/r/{a}", NULL, h_echo, NULL},
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

static bool printable_utf8(const char *s)
{
	size_t n = strlen(s);
	if (!qs_utf8_valid_nonul(s, n))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/* Appends s percent-encoded (everything but unreserved characters). */
static size_t encode(char *out, size_t used, size_t cap, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		CHECK(cap - used > 3);
		bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			     (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' ||
			     *p == '~';
		if (plain) {
			out[used++] = (char)*p;
		} else {
			out[used++] = '%';
			out[used++] = hex[*p >> 4];
			out[used++] = hex[*p & 15];
		}
	}
	out[used] = '\0';
	return used;
}

static size_t append(char *out, size_t used, size_t cap, const char *s)
{
	size_t n = strlen(s);
	CHECK(cap - used > n);
	memcpy(out + used, s, n + 1);
	return used + n;
}

static void check_error_shape(json_t *reply)
{
	json_t *e = json_object_get(reply, "error");
	CHECK(json_is_string(json_object_get(e, "code")));
	CHECK(json_is_string(json_object_get(e, "message")));
}

/* Rebuilds a target from the echoed parameters and checks it dispatches to the same. */
static void check_round_trip(const char *method, json_t *reply, const void *body, size_t blen,
			     const struct qs_http_limits *limits)
{
	size_t cap = 3 * 2 * limits->max_url_bytes + 64;
	char *t = malloc(cap);
	CHECK(t != NULL);
	const char *a = json_string_value(json_object_get(reply, "a"));
	const char *b = json_string_value(json_object_get(reply, "b"));
	const char *q = json_string_value(json_object_get(reply, "q"));
	const char *flag = json_string_value(json_object_get(reply, "flagraw"));
	const char *nraw = json_string_value(json_object_get(reply, "nraw"));
	size_t n = 0;
	t[0] = '\0';
	if (a != NULL) {
		n = append(t, n, cap, "/r/");
		n = encode(t, n, cap, a);
	} else {
		n = append(t, n, cap, "/");
	}
	if (b != NULL) {
		n = append(t, n, cap, "/x/");
		n = encode(t, n, cap, b);
	}
	n = append(t, n, cap, "?");
	if (q != NULL) {
		n = append(t, n, cap, "q=");
		n = encode(t, n, cap, q);
		n = append(t, n, cap, "&");
	}
	if (flag != NULL) {
		n = append(t, n, cap, "flag=");
		n = encode(t, n, cap, flag);
		n = append(t, n, cap, "&");
	}
	if (nraw != NULL) {
		n = append(t, n, cap, "n=");
		n = encode(t, n, cap, nraw);
	}
	struct qs_http_limits wide = *limits;
	wide.max_url_bytes = cap;
	json_t *again = NULL;
	unsigned st = qs_http_dispatch(routes, NROUTES, &wide, method, t, n, body, blen, &again);
	CHECK(st == 200);
	CHECK(json_equal(reply, again));
	json_decref(again);
	free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	const char *method = methods[data[0] % 4];
	const char *target = (const char *)data + 1;
	const char *nl = memchr(target, '\n', size - 1);
	size_t tlen = nl != NULL ? (size_t)(nl - target) : size - 1;
	const char *body = nl != NULL ? nl + 1 : NULL;
	size_t blen = nl != NULL ? size - 1 - tlen - 1 : 0;

	struct qs_http_config cfg;
	qs_http_config_default(&cfg);
	cfg.limits.max_body_bytes = 4096;
	cfg.limits.max_url_bytes = 1024;
	json_t *reply = NULL;
	unsigned st = qs_http_dispatch(routes, NROUTES, &cfg.limits, method, target, tlen, body,
				       blen, &reply);
	CHECK(json_is_object(reply));
	CHECK(st == 200 || st == 400 || st == 404 || st == 405 || st == 413 || st == 414);
	if (st != 200) {
		check_error_shape(reply);
	} else {
		static const char *const keys[] = {"a", "b", "q", "flagraw", "nraw"};
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			const char *v = json_string_value(json_object_get(reply, keys[i]));
			CHECK(v == NULL || printable_utf8(v));
		}
		json_t *jb = json_object_get(reply, "body");
		if (!json_is_null(jb)) {
			CHECK(json_is_object(jb) || json_is_array(jb));
			char *text = json_dumps(jb, JSON_COMPACT);
			CHECK(text != NULL);
			json_t *back = json_loads(text, 0, NULL);
			CHECK(back != NULL && json_equal(back, jb));
			json_decref(back);
			free(text);
		}
		check_round_trip(method, reply, body, blen, &cfg.limits);
	}
	json_decref(reply);
	return 0;
}
